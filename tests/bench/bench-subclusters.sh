#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# 4 KiB writes into a fresh linked clone of a fully written template, in
# interleaved rounds on one file system: vdisk (64 KiB clusters), vdisk
# with subclusters (128 KiB clusters, 32 x 4 KiB; and 512 KiB, 32 x 16 KiB),
# qcow2 (64 KiB clusters) and qcow2 with extended_l2=on (128 KiB clusters).  Every clone is new for
# every run, and every tool writes the same offsets: qemu-img bench can only
# step, so all use a stride of 4 KiB x 104729 (a prime) modulo the image
# size, which scatters the writes over the template.
#
# Usage: tests/bench/bench-subclusters.sh [BUILD_DIR]
#        (env: BENCH_DIR, SIZE_MB, ROUNDS, COUNT1, COUNT32)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-release}
vdisk=$build/tools/vdisk
dir=${BENCH_DIR:-$build/bench-sc}
size_mb=${SIZE_MB:-1024}
rounds=${ROUNDS:-3}
stride=$((4096 * 104729))

for t in qemu-img python3; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }
done
[ -x "$vdisk" ] || { echo "bench: no $vdisk; build first" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
cd "$dir"

secs() { sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p'; }

# Templates: every cluster written (64 KiB sequential writes).
fill=$((size_mb * 16))
"$vdisk" create -q tmpl.vd "${size_mb}M"
"$vdisk" bench -q -w -c "$fill" -d 32 -s 64k tmpl.vd >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=64k tmpl.qcow2 "${size_mb}M"
qemu-img bench -w -c "$fill" -d 32 -s 64k -t none -i io_uring tmpl.qcow2 >/dev/null

# one KIND COUNT DEPTH -> ops/s on a new clone
one() {
	local kind=$1 count=$2 depth=$3 s
	rm -f clone.*
	case $kind in
	vdisk) "$vdisk" create -q -b tmpl.vd clone.vd ;;
	vdisk-sc) "$vdisk" create -q --subclusters -b tmpl.vd clone.vd ;;
	vdisk-sc512) "$vdisk" create -q --subclusters -c 512k -b tmpl.vd clone.vd ;;
	qcow2) qemu-img create -q -f qcow2 -b tmpl.qcow2 -F qcow2 -o cluster_size=64k clone.qcow2 ;;
	qcow2-el2) qemu-img create -q -f qcow2 -b tmpl.qcow2 -F qcow2 \
		-o cluster_size=128k,extended_l2=on clone.qcow2 ;;
	esac
	sync
	if [[ $kind == vdisk* ]]; then
		s=$("$vdisk" bench -w -c "$count" -d "$depth" -s 4k -S "$stride" -t none clone.vd | secs)
	else
		s=$(qemu-img bench -w -c "$count" -d "$depth" -s 4k -S "$stride" -t none -i io_uring \
			clone.qcow2 | secs)
	fi
	python3 -c "print(round($count / $s))"
}

kinds=(vdisk vdisk-sc vdisk-sc512 qcow2 qcow2-el2)
declare -A res
for depth in 1 32; do
	count=${COUNT1:-4000}
	[ "$depth" = 32 ] && count=${COUNT32:-20000}
	for r in $(seq "$rounds"); do
		for k in "${kinds[@]}"; do
			res[$depth,$k]+="$(one "$k" "$count" "$depth") "
		done
	done
done
python3 - "$rounds" "${kinds[*]}" "$(for key in "${!res[@]}"; do echo "$key=${res[$key]}"; done)" <<'PY'
import statistics, sys
kinds = sys.argv[2].split()
res = {}
for line in sys.argv[3].splitlines():
    key, vals = line.split("=")
    res[key] = [int(v) for v in vals.split()]
print("| clone 4K randwrite | " + " | ".join(kinds) +
      " | vdisk-sc : vdisk | vdisk-sc : qcow2 | vdisk-sc : qcow2-el2 |")
print("|---|" + "---:|" * (len(kinds) + 3))
for depth in ("1", "32"):
    med = {k: statistics.median(res[depth + "," + k]) for k in kinds}
    cells = ["%d [%d-%d]" % (med[k], min(res[depth + "," + k]), max(res[depth + "," + k]))
             for k in kinds]
    print("| QD%s | %s | %.2f | %.2f | %.2f |" % (depth, " | ".join(cells),
          med["vdisk-sc"] / med["vdisk"], med["vdisk-sc"] / med["qcow2"],
          med["vdisk-sc"] / med["qcow2-el2"]))
PY
