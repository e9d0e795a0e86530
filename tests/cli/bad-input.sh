#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Files that are not good vdisk images: random bytes, empty, truncated, and
# headers with one field broken (magic, version, an unknown incompatible
# feature, the L1 table past the end of the file, a bad crc, a bad cluster
# size).  Every command must refuse each with one "vdisk: ..." line naming
# the file, a non-zero status short of a signal, and leave it unchanged.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3
poke()
{
	"$PYTHON" "$HERE/vdimg.py" "$@"
}

good=$TMP/good.vd
expect_ok create -q "$good" 16M
expect_ok io -q -c 'write -P 0x42 0 256k' "$good"
# The test's CRC-32C agrees with the library's, or the cases below would
# test nothing but a checksum mismatch.
poke "$good" crc-ok || fail "vdimg.py computes a different crc32c than the library"
flen=$(stat -c %s "$good")

mkdir "$TMP/bad"
head -c 65536 /dev/urandom >"$TMP/bad/random.bin"
: >"$TMP/bad/empty.vd"
cp "$good" "$TMP/bad/truncated.vd"
truncate -s 100 "$TMP/bad/truncated.vd"
cp "$good" "$TMP/bad/magic.vd"
poke "$TMP/bad/magic.vd" set magic XDISKIMG
cp "$good" "$TMP/bad/version.vd"
poke "$TMP/bad/version.vd" set version 2
cp "$good" "$TMP/bad/incompat.vd"
poke "$TMP/bad/incompat.vd" set incompat 0x20
cp "$good" "$TMP/bad/incompat63.vd"
poke "$TMP/bad/incompat63.vd" set incompat 0x8000000000000000
cp "$good" "$TMP/bad/l1-past-eof.vd"
poke "$TMP/bad/l1-past-eof.vd" set l1_offset $(((flen / 65536 + 16) * 65536))
cp "$good" "$TMP/bad/crc.vd"
poke "$TMP/bad/crc.vd" set size $((32 << 20)) --no-crc
cp "$good" "$TMP/bad/cluster-bits.vd"
poke "$TMP/bad/cluster-bits.vd" set cluster_bits 30
cp "$good" "$TMP/bad/size-huge.vd"
poke "$TMP/bad/size-huge.vd" set size 0xfffffffffffffe00

for f in "$TMP"/bad/*; do
	sum=$(sha "$f")
	for cmd in "info" "info --json" "map" "map --json" "check" "check --repair" \
		"io -c read_0_4k" "io -c write_0_4k" "bench -c 10" "bench -w -c 10" \
		"convert -f vdisk -O raw"; do
		read -ra args <<<"$cmd"
		for i in "${!args[@]}"; do
			args[$i]=${args[$i]//_/ }
		done
		if [ "${args[0]}" = convert ]; then
			run "${args[@]}" "$f" "$TMP/out.raw"
			[ ! -e "$TMP/out.raw" ] || rm -f "$TMP/out.raw"
		else
			run "${args[@]}" "$f"
		fi
		[ "$RC" -ne 0 ] || fail "vdisk $cmd $f succeeded"
		expect_one_line_error "$f"
		[ "$(sha "$f")" = "$sum" ] || fail "vdisk $cmd changed $f"
	done
done
echo "bad-input: ok"
