#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vdisk bench: read and write runs through the asynchronous API print
# qemu-img's lines and ops/s; writes land where the offsets say.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

img=$TMP/bench.vd
expect_ok create -q "$img" 64M

expect_ok bench -c 1000 "$img"
expect_out "Sending 1000 read requests, 4096 bytes each, 64 in parallel (starting at offset 0, step size 4096)"
expect_out "Run completed in "
printf '%s\n' "$OUT" | grep -qE '^ops/s: [0-9]+  MB/s: [0-9]+\.[0-9]{2}$' || fail "ops/s line"

expect_ok bench -w -c 1000 "$img"
expect_out "Sending 1000 write requests, 4096 bytes each, 64 in parallel"
printf '%s\n' "$OUT" | grep -qE '^ops/s: [0-9]+' || fail "ops/s line (write)"
# 1000 sequential 4K writes from 0 fill [0, 4000K) with 0xcd.
expect_ok io -c 'read -P 0xcd 0 4000k' -c 'read -P 0 4000k 1M' "$img"

# Offsets and steps, random offsets, the page cache, flushes, small depth,
# bigger requests, wrapping round a small image.
expect_ok bench -w -c 200 -o 8M -S 64k -s 8k "$img"
expect_out "(starting at offset 8388608, step size 65536)"
expect_ok io -c 'read -P 0xcd 8M 8k' -c 'read -P 0 8200k 56k' -c 'read -P 0xcd 8256k 8k' "$img"
expect_ok bench -w -c 1000 --pattern rand -o 32M "$img"
expect_out "random offsets"
# The strided run above ended below 21M; random ones stay at 32M and up.
expect_ok io -c 'read -P 0 21M 11M' "$img"
expect_ok bench -c 1000 --pattern rand -t writeback "$img"
expect_ok bench -w -c 1000 --flush-interval 100 -t writeback "$img"
expect_out "Sending flush every 100 requests"
expect_ok bench -c 1000 -d 1 -s 64k "$img"
expect_ok create -q "$TMP/small.vd" 1M
expect_ok bench -w -c 1000 -d 16 "$TMP/small.vd"
expect_ok io -c 'read -P 0xcd 0 1M' "$TMP/small.vd"
expect_ok bench -q -c 100 "$img"
[ "$(printf '%s\n' "$OUT" | wc -l)" -eq 1 ] || fail "-q prints one line"

expect_ok check "$img"
expect_ok check "$TMP/small.vd"

# Requests that do not fit the image fail before any I/O.
expect_rc 1 bench -c 10 -o 64M "$img"
expect_one_line_error "$img"
expect_rc 1 bench -c 10 -s 2M "$TMP/small.vd"
expect_one_line_error "$TMP/small.vd"
expect_rc 1 bench -c 10 "$TMP/missing.vd"
expect_one_line_error "$TMP/missing.vd"
echo "bench: ok"
