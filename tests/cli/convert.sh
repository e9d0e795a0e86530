#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vdisk convert: raw -> vdisk -> raw round trips equal by cmp and stay thin
# both ways; format detection, odd sizes, refusals; qemu-img and qemu-io as
# an oracle when they are installed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3

size=$((64 << 20))
raw=$TMP/in.raw
# A sparse raw file: random data in a few places, one stretch of written
# (allocated) zeros that must not be copied, and a partial last block.
truncate -s "$size" "$raw"
dd if=/dev/urandom of="$raw" bs=64k count=1 conv=notrunc status=none
dd if=/dev/urandom of="$raw" bs=4k count=3 seek=2500 conv=notrunc status=none
dd if=/dev/zero of="$raw" bs=1M count=8 seek=20 conv=notrunc status=none
dd if=/dev/urandom of="$raw" bs=512 count=1 seek=$((size / 512 - 1)) conv=notrunc status=none

expect_ok convert -O vdisk "$raw" "$TMP/a.vd"
[ -z "$ERR" ] || fail "convert printed on stderr"
expect_ok info --json "$TMP/a.vd"
[ "$(json_get virtual_size)" -eq "$size" ] || fail "virtual size"
alloc=$(json_get allocated_bytes)
[ "$alloc" -le $((512 << 10)) ] || fail "vdisk output allocates $alloc bytes for 76K of data"
[ "$alloc" -gt 0 ] || fail "vdisk output holds no data"
expect_ok check "$TMP/a.vd"

expect_ok convert -O raw "$TMP/a.vd" "$TMP/back.raw"
cmp "$raw" "$TMP/back.raw" || fail "raw -> vdisk -> raw differs"
[ "$(disk_bytes "$TMP/back.raw")" -lt $((4 << 20)) ] ||
	fail "raw output is not sparse: $(disk_bytes "$TMP/back.raw") bytes used"

# The same with the formats detected, other cluster sizes, vdisk -> vdisk.
expect_ok convert "$raw" "$TMP/b.vd"
expect_ok convert -f vdisk -c 4k "$TMP/b.vd" "$TMP/c.vd"
expect_ok info --json "$TMP/c.vd"
[ "$(json_get cluster_size)" -eq 4096 ] || fail "cluster size of c.vd"
expect_ok convert -c 2M "$TMP/c.vd" "$TMP/d.vd"
expect_ok convert -O raw "$TMP/d.vd" "$TMP/d.raw"
cmp "$raw" "$TMP/d.raw" || fail "raw -> vdisk -> vdisk(4k) -> vdisk(2M) -> raw differs"

# raw -> raw keeps the bytes and makes holes of zeros.
expect_ok convert -f raw -O raw "$raw" "$TMP/e.raw"
cmp "$raw" "$TMP/e.raw" || fail "raw -> raw differs"
[ "$(disk_bytes "$TMP/e.raw")" -lt "$(disk_bytes "$raw")" ] || fail "raw -> raw kept the zeros"

# A raw output is overwritten, a vdisk output never is.
head -c 100000 /dev/urandom >"$TMP/old.raw"
expect_ok convert -O raw "$TMP/a.vd" "$TMP/old.raw"
cmp "$raw" "$TMP/old.raw" || fail "overwriting a raw file"
before=$(sha "$TMP/b.vd")
expect_rc 1 convert "$raw" "$TMP/b.vd"
expect_one_line_error "$TMP/b.vd"
[ "$(sha "$TMP/b.vd")" = "$before" ] || fail "convert changed an existing vdisk output"

# A file is not converted onto itself.
cp "$raw" "$TMP/self.raw"
before=$(sha "$TMP/self.raw")
expect_rc 1 convert -O raw "$TMP/self.raw" "$TMP/self.raw"
expect_one_line_error "same file"
[ "$(sha "$TMP/self.raw")" = "$before" ] || fail "convert onto itself changed the file"

# A raw size that is not whole sectors is padded with zeros in a vdisk.
head -c 1000 /dev/urandom >"$TMP/odd.raw"
expect_ok convert "$TMP/odd.raw" "$TMP/odd.vd"
expect_ok info --json "$TMP/odd.vd"
[ "$(json_get virtual_size)" -eq 1024 ] || fail "odd size rounds to 1024"
expect_ok convert -O raw "$TMP/odd.vd" "$TMP/odd2.raw"
[ "$(stat -c %s "$TMP/odd2.raw")" -eq 1024 ] || fail "odd size back to raw"
cmp -n 1000 "$TMP/odd.raw" "$TMP/odd2.raw" || fail "odd size data"
cmp -i 1000:0 -n 24 "$TMP/odd2.raw" /dev/zero || fail "odd size padding is not zeros"

# -p writes nothing when stderr is not a terminal; -S 0 copies zeros.
expect_ok convert -p -S 0 -O vdisk "$raw" "$TMP/z.vd"
[ -z "$ERR" ] || fail "-p printed to a non-terminal"
expect_ok info --json "$TMP/z.vd"
[ "$(json_get allocated_bytes)" -ge $((8 << 20)) ] || fail "-S 0 did not copy the zeros"

# Failures: a missing input, a bad vdisk input, an unwritable output.
expect_rc 1 convert "$TMP/none.raw" "$TMP/none.vd"
expect_one_line_error "$TMP/none.raw"
expect_rc 1 convert -f vdisk "$raw" "$TMP/f.vd"
expect_one_line_error "$raw"
[ ! -e "$TMP/f.vd" ] || fail "a failed convert left its output"
expect_rc 1 convert -O raw "$raw" "$TMP/no/such/dir.raw"
expect_one_line_error "$TMP/no/such/dir.raw"

# qemu as the oracle: what qemu-io writes into a raw file, vdisk reads back
# after conversion, and what vdisk converts back qemu-img finds identical.
if command -v qemu-img >/dev/null && command -v qemu-io >/dev/null; then
	q=$TMP/q.raw
	qemu-img create -q -f raw "$q" 4M
	qemu-io -f raw -c 'write -P 0x5a 1M 64k' -c 'write -P 0xa5 3M 4k' "$q" >/dev/null
	expect_ok convert -O vdisk "$q" "$TMP/q.vd"
	expect_ok io -c 'read -P 0x5a 1M 64k' -c 'read -P 0xa5 3M 4k' -c 'read -P 0 0 1M' \
		-c 'read -P 0 1088k 1984k' "$TMP/q.vd"
	expect_ok convert -O raw "$TMP/q.vd" "$TMP/q2.raw"
	qemu-img compare -q -f raw -F raw "$q" "$TMP/q2.raw" || fail "qemu-img compare: differs"
	out=$(qemu-io -f raw -c 'read -P 0x5a 1M 64k' "$TMP/q2.raw")
	case $out in
	*"read 65536/65536 bytes at offset 1048576"*) ;;
	*) fail "qemu-io read back: $out" ;;
	esac
	# qemu-img map agrees on where the raw output holds data.
	qemu-img map -f raw --output=json "$TMP/q2.raw" | "$PYTHON" -c '
import json, sys
m = json.load(sys.stdin)
data = [(e["start"], e["length"]) for e in m if e["data"]]
covered = sum(l for s, l in data)
assert covered <= 1 << 20, data
assert any(s <= 1 << 20 < s + l for s, l in data), data
assert any(s <= 3 << 20 < s + l for s, l in data), data'
	# And a vdisk image written by vdisk io converts to what qemu-io reads.
	expect_ok create -q "$TMP/w.vd" 2M
	expect_ok io -c 'write -P 0x3c 512k 192k' "$TMP/w.vd"
	expect_ok convert -O raw "$TMP/w.vd" "$TMP/w.raw"
	out=$(qemu-io -f raw -c 'read -P 0x3c 512k 192k' -c 'read -P 0 0 512k' "$TMP/w.raw")
	case $out in
	*failed*) fail "qemu-io finds: $out" ;;
	esac
else
	echo "convert: qemu-img/qemu-io not installed, oracle part skipped"
fi
echo "convert: ok"
