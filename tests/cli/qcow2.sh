#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vdisk convert reading qcow2 natively: versions 2 and 3, clusters of 512 B
# to 2 MiB, zero clusters (plain and preallocated), discards, backing chains
# (qcow2 and raw, format recorded or probed, relative names), internal
# snapshots.  Each converts to vdisk and back to raw equal byte for byte to
# qemu-img's own raw conversion and no fatter than the qcow2.  Compressed,
# encrypted, truncated and damaged images are refused on one line with no
# output left, and a few hundred randomly damaged images crash nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3 qemu-img qemu-io
# One case below runs from another folder.
VDISK=$(realpath "$VDISK")

q2()
{
	"$PYTHON" "$HERE/qcow2img.py" "$@"
}

# qemu-io on the qcow2 $1 with the -c commands that follow.
qio()
{
	local img=$1
	shift
	qemu-io -f qcow2 "$@" "$img" >/dev/null
}

# The vdisk image $2 allocates no more than the vdisk clusters that hold
# what qemu-img map calls data anywhere in the chain of the qcow2 $1.
expect_thin()
{
	local in=$1 vd=$2 alloc cs bound
	expect_ok info --json "$vd"
	alloc=$(json_get allocated_bytes)
	cs=$(json_get cluster_size)
	qemu-img map --output=json "$in" >"$TMP/qmap.json"
	bound=$("$PYTHON" - "$TMP/qmap.json" "$cs" <<'PY'
import json, sys
cs = int(sys.argv[2])
clusters = set()
for e in json.load(open(sys.argv[1])):
    if e['data']:
        clusters.update(range(e['start'] // cs, (e['start'] + e['length'] + cs - 1) // cs))
print(len(clusters) * cs)
PY
)
	[ "$alloc" -le "$bound" ] || fail "$in: vdisk allocates $alloc bytes, qcow2 data needs $bound"
}

# No cluster of the vdisk image $1 in [$2, $2 + $3) holds data.
expect_no_data()
{
	local vd=$1 start=$2 len=$3
	expect_ok map --json "$vd"
	printf '%s' "$OUT" | "$PYTHON" -c '
import json, sys
s, n = int(sys.argv[1]), int(sys.argv[2])
for e in json.load(sys.stdin):
    if e["data"] and e["start"] < s + n and s < e["start"] + e["length"]:
        sys.exit("data at %d+%d" % (e["start"], e["length"]))' "$start" "$len" ||
		fail "$vd: [$start, +$len) should hold no data"
}

# Converts the qcow2 $1 to vdisk and back to raw, and straight to raw, and
# compares both with qemu-img convert; the vdisk is named $TMP/$2.vd.
roundtrip()
{
	local in=$1 name=$2
	expect_ok convert "$in" "$TMP/$name.vd"
	[ -z "$ERR" ] || fail "$name: convert printed on stderr"
	expect_ok check "$TMP/$name.vd"
	expect_ok convert -O raw "$TMP/$name.vd" "$TMP/$name.raw"
	qemu-img convert -O raw "$in" "$TMP/$name.ref"
	cmp "$TMP/$name.ref" "$TMP/$name.raw" || fail "$name: qcow2 -> vdisk -> raw differs from qemu-img"
	expect_ok convert -f qcow2 -O raw "$in" "$TMP/$name.direct"
	cmp "$TMP/$name.ref" "$TMP/$name.direct" || fail "$name: qcow2 -> raw differs from qemu-img"
	expect_thin "$in" "$TMP/$name.vd"
	rm -f "$TMP/$name.raw" "$TMP/$name.direct"
}

# IN must be refused ($1: a word the sentence must hold) with one line naming
# it, status 1 and no output file, whichever the output format.
expect_refused()
{
	local word=$1 in=$2
	for fmt in vdisk raw; do
		expect_rc 1 convert -O "$fmt" "$in" "$TMP/refused.out"
		expect_one_line_error "$in"
		expect_err "$word"
		[ ! -e "$TMP/refused.out" ] || fail "convert -O $fmt $in left its output"
	done
}

# 1. Versions 2 and 3, every cluster size: data, zeros over data (a
# preallocated zero cluster in v3), zeros over nothing (a plain zero
# cluster), an aligned discard, a partial last cluster.
for cs in 512 4k 64k 2M; do
	for compat in 0.10 1.1; do
		img=$TMP/c$cs-$compat.qcow2
		qemu-img create -q -f qcow2 -o "compat=$compat,cluster_size=$cs" "$img" 16M
		qio "$img" -c 'write -P 0x11 0 4k' -c 'write -P 0x22 100k 200k' \
			-c 'write -P 0x33 3M 1M' -c 'write -z 3584k 128k' -c 'write -z 6M 1M' \
			-c 'write -P 0x44 8M 4M' -c 'discard 8M 2M' -c 'write -P 0x55 16383k 1k'
		roundtrip "$img" "c$cs-$compat"
		expect_no_data "$TMP/c$cs-$compat.vd" $((3584 << 10)) $((128 << 10))
		expect_no_data "$TMP/c$cs-$compat.vd" $((6 << 20)) $((1 << 20))
		expect_no_data "$TMP/c$cs-$compat.vd" $((8 << 20)) $((2 << 20))
		expect_ok io -c 'read -P 0x22 100k 200k' -c 'read -P 0x33 3M 512k' \
			-c 'read -P 0 3584k 128k' -c 'read -P 0x44 10M 2M' \
			-c 'read -P 0x55 16383k 1k' "$TMP/c$cs-$compat.vd"
	done
done
# The v3 images really hold both kinds of zero cluster, so both were read.
stats=$(q2 "$TMP/c64k-1.1.qcow2" stats)
case $stats in
*zero_plain=0* | *zero_alloc=0*) fail "c64k-1.1.qcow2 lacks a kind of zero cluster: $stats" ;;
esac

# 2. A three-file chain with relative names in two folders: top (64K) over
# sub/mid (512 B clusters) over base (4K, smaller than the disk).  Zeros and
# discards in the top hide the base's data; partial writes copy the rest of
# the cluster up; the top reaches past the end of the base.
mkdir -p "$TMP/chain/sub"
base=$TMP/chain/base.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4k "$base" 12M
qio "$base" -c 'write -P 0xa1 0 5M' -c 'write -P 0xa2 6M 6M'
qemu-img create -q -f qcow2 -o cluster_size=512 -b ../base.qcow2 -F qcow2 \
	"$TMP/chain/sub/mid.qcow2" 14M
qio "$TMP/chain/sub/mid.qcow2" -c 'write -P 0xa3 2M 4k' -c 'write -z 7M 64k'
top=$TMP/chain/top.qcow2
qemu-img create -q -f qcow2 -b sub/mid.qcow2 -F qcow2 "$top" 16M
qio "$top" -c 'write -P 0xb2 1M 64k' -c 'write -P 0xb3 2052k 8k' -c 'write -z 4M 1M' \
	-c 'discard 8M 1M' -c 'write -P 0xb4 13M 64k'
roundtrip "$top" chain
expect_no_data "$TMP/chain.vd" $((4 << 20)) $((1 << 20))
expect_no_data "$TMP/chain.vd" $((8 << 20)) $((1 << 20))
expect_no_data "$TMP/chain.vd" $((14 << 20)) $((2 << 20))
expect_ok io -c 'read -P 0xa1 0 1M' -c 'read -P 0xb2 1M 64k' -c 'read -P 0xa3 2M 4k' \
	-c 'read -P 0xb3 2052k 8k' -c 'read -P 0 4M 1M' -c 'read -P 0 7M 64k' \
	-c 'read -P 0xa2 9M 3M' -c 'read -P 0xb4 13M 64k' "$TMP/chain.vd"
# IN named relative to another folder still finds its chain.
cd "$TMP/chain/sub"
expect_ok convert -O raw ../top.qcow2 "$TMP/chain-rel.raw"
cd - >/dev/null
cmp "$TMP/chain.ref" "$TMP/chain-rel.raw" || fail "relative IN: differs"
# Without the backing format extension the backing file's format is probed.
cp "$top" "$TMP/chain/probe.qcow2"
q2 "$TMP/chain/probe.qcow2" hide-ext 0xe2792aca
expect_ok convert -O raw "$TMP/chain/probe.qcow2" "$TMP/probe.raw"
cmp "$TMP/chain.ref" "$TMP/probe.raw" || fail "probed qcow2 backing: differs"

# 3. qcow2 over a sparse raw file, recorded and probed.
rawb=$TMP/chain/base.raw
truncate -s 8M "$rawb"
dd if=/dev/urandom of="$rawb" bs=64k count=16 conv=notrunc status=none
dd if=/dev/urandom of="$rawb" bs=64k count=8 seek=80 conv=notrunc status=none
overraw=$TMP/chain/over-raw.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4k -b base.raw -F raw "$overraw" 12M
qio "$overraw" -c 'write -P 0xd1 512k 8k' -c 'write -z 5M 256k' -c 'write -P 0xd2 9M 4k'
roundtrip "$overraw" over-raw
expect_no_data "$TMP/over-raw.vd" $((5 << 20)) $((256 << 10))
expect_no_data "$TMP/over-raw.vd" $((2 << 20)) $((2 << 20))
cp "$overraw" "$TMP/chain/over-raw-probe.qcow2"
q2 "$TMP/chain/over-raw-probe.qcow2" hide-ext 0xe2792aca
expect_ok convert -O raw "$TMP/chain/over-raw-probe.qcow2" "$TMP/over-raw-probe.raw"
cmp "$TMP/over-raw.ref" "$TMP/over-raw-probe.raw" || fail "probed raw backing: differs"

# 4. Internal snapshots: the active state converts, not a snapshot's.
snap=$TMP/snap.qcow2
qemu-img create -q -f qcow2 "$snap" 8M
qio "$snap" -c 'write -P 0xc1 0 4M'
qemu-img snapshot -c s1 "$snap"
qio "$snap" -c 'write -P 0xc2 1M 1M' -c 'write -z 2M 512k' -c 'discard 3M 1M'
qemu-img snapshot -c s2 "$snap"
qio "$snap" -c 'write -P 0xc3 5M 64k'
roundtrip "$snap" snap
expect_ok io -c 'read -P 0xc1 0 1M' -c 'read -P 0xc2 1M 1M' -c 'read -P 0 2M 512k' \
	-c 'read -P 0 3M 1M' -c 'read -P 0xc3 5M 64k' "$TMP/snap.vd"
expect_no_data "$TMP/snap.vd" $((3 << 20)) $((1 << 20))

# 5. Refusals, each on one line naming the file, with no output left.
src=$TMP/c64k-1.1.qcow2
mkdir "$TMP/bad"
qemu-img convert -c -O qcow2 "$src" "$TMP/bad/compressed.qcow2"
expect_refused "compressed clusters are not supported" "$TMP/bad/compressed.qcow2"
# LUKS times its key derivation and gives up ("Unable to get accurate CPU
# usage") on a loaded machine now and then: try again, and fall back on
# the old AES method, encrypted all the same.
for try in 1 2 3 aes; do
	if [ "$try" = aes ]; then
		qemu-img create -q -f qcow2 --object secret,id=s0,data=x \
			-o encrypt.format=aes,encrypt.key-secret=s0 "$TMP/bad/luks.qcow2" 4M
	elif qemu-img create -q -f qcow2 --object secret,id=s0,data=x \
		-o encrypt.format=luks,encrypt.key-secret=s0 "$TMP/bad/luks.qcow2" 4M; then
		break
	fi
done
expect_refused "encrypted" "$TMP/bad/luks.qcow2"
qemu-img create -q -f qcow2 -o extended_l2=on "$TMP/bad/extl2.qcow2" 4M
expect_refused "extended L2" "$TMP/bad/extl2.qcow2"
qemu-img create -q -f qcow2 -o data_file="$TMP/bad/data.bin" "$TMP/bad/datafile.qcow2" 4M
expect_refused "external data file" "$TMP/bad/datafile.qcow2"
flen=$(stat -c %s "$src")
cp "$src" "$TMP/bad/half.qcow2"
truncate -s $((flen / 2)) "$TMP/bad/half.qcow2"
expect_refused "beyond the end of the file" "$TMP/bad/half.qcow2"
cp "$src" "$TMP/bad/header-cut.qcow2"
truncate -s 60 "$TMP/bad/header-cut.qcow2"
expect_refused "too short" "$TMP/bad/header-cut.qcow2"
cp "$src" "$TMP/bad/l1-past-eof.qcow2"
q2 "$TMP/bad/l1-past-eof.qcow2" set 40 '>Q' $(((flen / 65536 + 16) * 65536))
expect_refused "l1_table_offset (header offset 40)" "$TMP/bad/l1-past-eof.qcow2"
cp "$src" "$TMP/bad/l1-unaligned.qcow2"
q2 "$TMP/bad/l1-unaligned.qcow2" set 40 '>Q' 0x30008
expect_refused "l1_table_offset (header offset 40)" "$TMP/bad/l1-unaligned.qcow2"
cp "$src" "$TMP/bad/cluster-bits.qcow2"
q2 "$TMP/bad/cluster-bits.qcow2" set 20 '>I' 30
expect_refused "cluster_bits (header offset 20)" "$TMP/bad/cluster-bits.qcow2"
cp "$src" "$TMP/bad/l1-small.qcow2"
q2 "$TMP/bad/l1-small.qcow2" set 24 '>Q' $((1 << 40))
expect_refused "l1_size (header offset 36)" "$TMP/bad/l1-small.qcow2"
cp "$src" "$TMP/bad/corrupt.qcow2"
q2 "$TMP/bad/corrupt.qcow2" set 72 '>Q' 2
expect_refused "marked corrupt" "$TMP/bad/corrupt.qcow2"
cp "$src" "$TMP/bad/unknown.qcow2"
q2 "$TMP/bad/unknown.qcow2" set 72 '>Q' 0x20
expect_refused "unknown incompatible feature bit 5" "$TMP/bad/unknown.qcow2"
cp "$src" "$TMP/bad/version.qcow2"
q2 "$TMP/bad/version.qcow2" set 4 '>I' 4
expect_refused "version 4" "$TMP/bad/version.qcow2"
cp "$top" "$TMP/chain/orphan.qcow2"
mv "$TMP/chain/sub/mid.qcow2" "$TMP/chain/sub/mid.away"
expect_refused "$TMP/chain/sub/mid.qcow2" "$TMP/chain/orphan.qcow2"
mv "$TMP/chain/sub/mid.away" "$TMP/chain/sub/mid.qcow2"
head -c 65536 /dev/urandom >"$TMP/bad/random.bin"
expect_rc 1 convert -f qcow2 "$TMP/bad/random.bin" "$TMP/refused.out"
expect_one_line_error "not a qcow2 image"
expect_rc 2 convert -O qcow2 "$src" "$TMP/refused.out"
expect_one_line_error "qcow2"
[ ! -e "$TMP/refused.out" ] || fail "convert -O qcow2 left its output"

# 6. Randomly damaged copies of three small images (v3 with 512-byte
# clusters and both kinds of zero cluster, v2, a chain top): no crash, no
# sanitizer report, and every refusal one "vdisk:" line.
seed=${QCOW2_FUZZ_SEED:-20240601}
count=${QCOW2_FUZZ_COUNT:-100}
fz=$TMP/fuzz
mkdir "$fz"
qemu-img create -q -f qcow2 -o cluster_size=512 "$fz/v3.qcow2" 1M
qio "$fz/v3.qcow2" -c 'write -P 1 0 16k' -c 'write -z 8k 4k' -c 'write -z 512k 8k' \
	-c 'write -P 2 1020k 4k'
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k "$fz/v2.qcow2" 2M
qio "$fz/v2.qcow2" -c 'write -P 3 4k 64k' -c 'write -P 4 1M 8k'
qemu-img create -q -f qcow2 -o cluster_size=4k "$fz/base.qcow2" 2M
qio "$fz/base.qcow2" -c 'write -P 5 0 2M'
qemu-img create -q -f qcow2 -o cluster_size=4k -b base.qcow2 -F qcow2 "$fz/top.qcow2" 2M
qio "$fz/top.qcow2" -c 'write -P 6 64k 4k' -c 'write -z 1M 64k'
for b in v3 v2 top; do
	mkdir "$fz/$b"
	cp "$fz/base.qcow2" "$fz/$b/base.qcow2"
	q2 "$fz/$b.qcow2" fuzz "$fz/$b" "$count" "$seed"
done
ok=0
refused=0
for f in "$fz"/*/*.qcow2.*; do
	run convert -O raw "$f" "$TMP/fuzz.raw"
	rm -f "$TMP/fuzz.raw"
	if [ "$RC" -eq 0 ]; then
		ok=$((ok + 1))
	else
		expect_one_line_error
		refused=$((refused + 1))
	fi
done
[ "$refused" -gt 0 ] || fail "no damaged image was refused: the damage did nothing"
echo "qcow2: fuzz seed $seed: $((ok + refused)) damaged images, $refused refused, $ok read"
echo "qcow2: ok"
