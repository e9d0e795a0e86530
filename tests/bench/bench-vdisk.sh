#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs vdisk beside its anchors on the same file system in one go and prints
# ops/s with ratios: `vdisk bench` on a vdisk image, `qemu-img bench` on a
# qcow2 image (64 KiB clusters) and on a raw file, and fio (io_uring,
# O_DIRECT) on a raw file as the limit.
#
# qemu-img bench can only step through the image; "random" for it is a
# stride of 4 KiB x 104729 (a prime) modulo the power-of-two image size,
# which visits every 4 KiB block once in a scattered order.  vdisk runs that
# same stride (compared with qemu-img) and, with --pattern rand, uniformly
# random offsets (compared with fio's randread/randwrite).
#
# Usage: tests/bench/bench-vdisk.sh [BUILD_DIR]   (env: BENCH_DIR, SIZE_MB)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-release}
vdisk=$build/tools/vdisk
dir=${BENCH_DIR:-$build/bench-tmp}
size_mb=${SIZE_MB:-1024}
size=$((size_mb << 20))
stride=$((4096 * 104729))

for t in qemu-img fio python3; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing (run scripts/setup.sh)" >&2; exit 1; }
done
[ -x "$vdisk" ] || { echo "bench: no $vdisk; build first" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT

secs() { sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p'; }

# run_bench TOOL FILE COUNT DEPTH SIZE WRITE(0/1) STEP -> ops/s
run_bench() {
	local tool=$1 file=$2 count=$3 depth=$4 bs=$5 write=$6 step=$7 args=() s
	[ "$write" = 1 ] && args+=(-w)
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	if [ "$tool" = vdisk ] || [ "$tool" = vdisk-rand ]; then
		[ "$tool" = vdisk-rand ] && args+=(--pattern rand)
		s=$("$vdisk" bench -c "$count" -d "$depth" -s "$bs" -S "$step" -t none "${args[@]}" "$file" | secs)
	else
		local fmt=qcow2
		[[ $file == *.raw ]] && fmt=raw
		s=$(qemu-img bench -f "$fmt" -c "$count" -d "$depth" -s "$bs" -S "$step" -t none \
			-i io_uring "${args[@]}" "$file" | secs)
	fi
	python3 -c "print(round($count / $s))"
}

# run_fio FILE COUNT DEPTH BS RW -> ops/s
run_fio() {
	local file=$1 count=$2 depth=$3 bs=$4 rw=$5
	sync
	fio --name=b --filename="$file" --ioengine=io_uring --direct=1 --rw="$rw" \
		--bs="$bs" --iodepth="$depth" --size="$size" --number_ios="$count" \
		--randrepeat=1 --norandommap --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print(round(j["read"]["iops"] + j["write"]["iops"]))'
}

fresh_images() {
	rm -f "$dir"/img.vd "$dir"/img.qcow2 "$dir"/img.raw
	"$vdisk" create -c 64K "$dir/img.vd" "$size" >/dev/null
	qemu-img create -q -f qcow2 -o cluster_size=65536 "$dir/img.qcow2" "$size"
	truncate -s "$size" "$dir/img.raw"
}

filled_images() {
	fresh_images
	# Sequential 1 MiB writes over the whole disk allocate every cluster.
	local n=$((size >> 20))
	"$vdisk" bench -w -c "$n" -d 8 -s 1M -t none "$dir/img.vd" >/dev/null
	qemu-img bench -q -f qcow2 -w -c "$n" -d 8 -s 1M -t none "$dir/img.qcow2" >/dev/null 2>&1 ||
		qemu-img bench -f qcow2 -w -c "$n" -d 8 -s 1M -t none "$dir/img.qcow2" >/dev/null
	dd if=/dev/zero of="$dir/img.raw" bs=1M count="$n" oflag=direct conv=notrunc status=none
}

rows=()
row() {
	# name vdisk(stride or sequential) vdisk(random) qcow2 raw fio
	rows+=("$1|$2|$3|$4|$5|$6")
}

echo "bench: $size_mb MiB images in $dir ($(stat -f -c %T "$dir")), $(nproc) cores" >&2
filled_images
echo "bench: 4K random read, depth 1" >&2
c=20000
row "4K random read, QD1, allocated" \
	"$(run_bench vdisk "$dir/img.vd" $c 1 4096 0 $stride)" \
	"$(run_bench vdisk-rand "$dir/img.vd" $c 1 4096 0 $stride)" \
	"$(run_bench qemu "$dir/img.qcow2" $c 1 4096 0 $stride)" \
	"$(run_bench qemu "$dir/img.raw" $c 1 4096 0 $stride)" \
	"$(run_fio "$dir/img.raw" $c 1 4k randread)"
echo "bench: 4K random read, depth 32" >&2
c=100000
row "4K random read, QD32, allocated" \
	"$(run_bench vdisk "$dir/img.vd" $c 32 4096 0 $stride)" \
	"$(run_bench vdisk-rand "$dir/img.vd" $c 32 4096 0 $stride)" \
	"$(run_bench qemu "$dir/img.qcow2" $c 32 4096 0 $stride)" \
	"$(run_bench qemu "$dir/img.raw" $c 32 4096 0 $stride)" \
	"$(run_fio "$dir/img.raw" $c 32 4k randread)"
echo "bench: 4K random write, depth 32, allocated" >&2
row "4K random write, QD32, allocated" \
	"$(run_bench vdisk "$dir/img.vd" $c 32 4096 1 $stride)" \
	"$(run_bench vdisk-rand "$dir/img.vd" $c 32 4096 1 $stride)" \
	"$(run_bench qemu "$dir/img.qcow2" $c 32 4096 1 $stride)" \
	"$(run_bench qemu "$dir/img.raw" $c 32 4096 1 $stride)" \
	"$(run_fio "$dir/img.raw" $c 32 4k randwrite)"

echo "bench: 4K random write, depth 32, fresh (allocating)" >&2
c=$((size / 65536))
fresh_images
v=$(run_bench vdisk "$dir/img.vd" $c 32 4096 1 $stride)
q=$(run_bench qemu "$dir/img.qcow2" $c 32 4096 1 $stride)
r=$(run_bench qemu "$dir/img.raw" $c 32 4096 1 $stride)
rm -f "$dir/img.vd" "$dir/img.raw"
"$vdisk" create -c 64K "$dir/img.vd" "$size" >/dev/null
vr=$(run_bench vdisk-rand "$dir/img.vd" $c 32 4096 1 $stride)
truncate -s "$size" "$dir/img.raw"
row "4K random write, QD32, fresh" "$v" "$vr" "$q" "$r" "$(run_fio "$dir/img.raw" $c 32 4k randwrite)"

echo "bench: 1M sequential write, depth 4, fresh" >&2
c=$((size >> 20))
fresh_images
v=$(run_bench vdisk "$dir/img.vd" $c 4 1048576 1 1048576)
q=$(run_bench qemu "$dir/img.qcow2" $c 4 1048576 1 1048576)
r=$(run_bench qemu "$dir/img.raw" $c 4 1048576 1 1048576)
rm -f "$dir/img.raw"
truncate -s "$size" "$dir/img.raw"
row "1M sequential write, QD4, fresh" "$v" "$v" "$q" "$r" "$(run_fio "$dir/img.raw" $c 4 1m write)"

printf '\n| workload | vdisk (stride/seq) | vdisk (random) | qcow2 (qemu-img) | raw (qemu-img) | raw (fio, random) | vdisk/qcow2 | vdisk/fio |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
for r in "${rows[@]}"; do
	IFS='|' read -r name v vr q raw f <<<"$r"
	python3 -c "print('| $name | $v | $vr | $q | $raw | $f | %.2fx | %.2fx |' % ($v / $q, $vr / $f))"
done
echo
echo "ops/s. vdisk/qcow2: the same stride (or sequence) through vdisk bench and qemu-img bench;"
echo "vdisk/fio: uniformly random offsets through vdisk bench --pattern rand and fio."

# Open time of fully mapped images (preallocation=metadata: every cluster
# mapped, the file sparse): a read-write open must not read every refcount
# block.  tests/bench/open-latency prints medians of 5 (ms).
lat=$build/tests/bench/open-latency
if [ -x "$lat" ]; then
	echo
	echo "| fully mapped image (64 KiB clusters) | read-write vd_open (ms) | first 4K read (ms) | first 4K write (ms) |"
	echo "|---|---:|---:|---:|"
	for gib in 64 1024; do
		rm -f "$dir/big.vd"
		"$vdisk" create -c 64K --preallocation=metadata "$dir/big.vd" "${gib}G" >/dev/null
		read -r o r w <<<"$("$lat" "$dir/big.vd" 5)"
		echo "| $gib GiB | $o | $r | $w |"
	done
	rm -f "$dir/big.vd"
fi
