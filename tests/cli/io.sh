#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vdisk io: pattern round trips, verification failures, discard and
# write-zeroes reading back as zeros, command sequencing and refusals.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

img=$TMP/io.vd
expect_ok create -q "$img" 16M

expect_ok io -c 'write -P 0x5a 0 64k' "$img"
[ "$OUT" = "wrote 65536/65536 bytes at offset 0" ] || fail "write line: $OUT"
expect_ok io -c 'read -P 0x5a 0 64k' "$img"
[ "$OUT" = "read 65536/65536 bytes at offset 0" ] || fail "read line: $OUT"

# Several commands in one run, in order; decimal patterns; large and
# unaligned-to-cluster ranges; the default fill byte 0xcd.
expect_ok io -c 'write -P 17 1M 3M' -c 'read -P 0x11 1M 3M' -c 'write 5M 4608' \
	-c 'read -P 0xcd 5M 4608' -c flush "$img"
expect_out "wrote 3145728/3145728 bytes at offset 1048576"
expect_out "read 3145728/3145728 bytes at offset 1048576"
expect_out "read 4608/4608 bytes at offset 5242880"

# A mismatch names the first bad byte and how many are bad, and fails.
expect_rc 1 io -c 'read -P 0x5b 0 64k' "$img"
expect_out "Pattern verification failed at offset 0, 65536 bytes"
expect_ok io -c 'write -P 0x22 4k 4k' "$img"
expect_rc 1 io -c 'read -P 0x5a 0 64k' "$img"
expect_out "Pattern verification failed at offset 4096, 4096 bytes"

# The first failing command stops the run: the write after it never runs.
expect_rc 1 io -c 'read -P 0x00 0 4k' -c 'write -P 0x77 8M 4k' "$img"
expect_ok io -c 'read -P 0 8M 4k' "$img"

# Never-written space reads as zeros.
expect_ok io -c 'read -P 0 10M 6M' "$img"

# discard and zero (and write -z) of whole clusters read back as zeros,
# and leave their neighbours alone.
expect_ok io -c 'write -P 0x44 2M 512k' "$img"
expect_ok io -c 'discard 2M 128k' -c 'zero 2176k 128k' -c 'write -z 2304k 64k' "$img"
expect_out "discard 131072/131072 bytes at offset 2097152"
expect_out "wrote 131072/131072 bytes at offset 2228224"
expect_ok io -c 'read -P 0 2M 320k' -c 'read -P 0x44 2368k 64k' -c 'read -P 0x44 2496k 64k' \
	"$img"

# Commands from standard input, as a script.
printf 'write -P 0x33 12M 4k\n# a comment\n\nread -P 0x33 12M 4k\n' >"$TMP/script"
run_stdin "$TMP/script" io "$img"
[ "$RC" -eq 0 ] || fail "io from stdin exited $RC"
expect_out "read 4096/4096 bytes at offset 12582912"
printf 'read -P 0x34 12M 4k\nwrite -P 0x35 12M 4k\n' >"$TMP/script"
run_stdin "$TMP/script" io "$img"
[ "$RC" -eq 1 ] || fail "a failing stdin script exited $RC"
expect_ok io -c 'read -P 0x33 12M 4k' "$img"

# Refusals: unaligned, beyond the end, unknown commands, bad arguments,
# writes to a read-only open.
for cmd in 'read 100 512' 'read 0 100' 'write 16M 512' 'read 15M 2M' 'discard 17M 64k' \
	'frob 0 512' 'read -P 0x100 0 512' 'read -X 0 512' 'read 0' 'read x 512' 'flush now'; do
	expect_rc 1 io -c "$cmd" "$img"
	expect_one_line_error
done
before=$(sha "$img")
expect_rc 1 io -r -c 'write 0 4k' "$img"
expect_one_line_error "read-only"
[ "$(sha "$img")" = "$before" ] || fail "a read-only io changed the image"
expect_ok io -r -c 'read 0 4k' "$img"
expect_ok io -q -c 'read -P 0x5a 0 4k' -c 'read -q 0 4k' "$img"
[ -z "$OUT" ] || fail "-q printed: $OUT"

# Reads alone open read-only: the file is left byte for byte.
expect_ok io -c 'read 0 1M' -c help "$img"
[ "$(sha "$img")" = "$before" ] || fail "a read-only io run changed the image"

# O_DIRECT and the page cache give the same bytes.
expect_ok io -t none -c 'write -P 0x99 7M 8k' -c 'read -P 0x99 7M 8k' "$img"
expect_ok io -t writeback -c 'read -P 0x99 7M 8k' "$img"

# write-zeroes inside a cluster zeroes exactly its range: at the start of
# a cluster, in its middle, at its end.
expect_ok io -c 'write -P 0x66 6M 64k' -c 'zero 6M 512' -c 'read -P 0 6M 512' \
	-c 'read -P 0x66 6291968 65024' "$img"
expect_ok io -c 'write -P 0x67 7M 64k' -c 'zero 7172k 4k' -c 'read -P 0x67 7M 4k' \
	-c 'read -P 0 7172k 4k' -c 'read -P 0x67 7176k 56k' "$img"
expect_ok io -c 'write -P 0x68 9M 64k' -c 'zero 9276k 4k' -c 'read -P 0x68 9M 60k' \
	-c 'read -P 0 9276k 4k' "$img"
expect_ok check "$img"
echo "io: ok"
