#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An image whose writer was killed: info reports it dirty without writing
# to it, a read-only open sees the flushed data (journal replayed in
# memory), and the next read-write open replays it and leaves it clean.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3 mkfifo

img=$TMP/dirty.vd
expect_ok create -q "$img" 16M
expect_ok io -q -c 'write -P 0x11 0 1M' "$img"

mkfifo "$TMP/fifo"
"$VDISK" io "$img" <"$TMP/fifo" >"$TMP/writer.out" 2>&1 &
writer=$!
exec 3>"$TMP/fifo"
printf 'write -P 0x22 0 64k\nwrite -P 0x33 4M 128k\nflush\nread 0 512\n' >&3
for _ in $(seq 100); do
	grep -q 'read 512/512' "$TMP/writer.out" && break
	sleep 0.1
done
grep -q 'read 512/512' "$TMP/writer.out" || fail "the writer never answered: $(cat "$TMP/writer.out")"
kill -9 "$writer"
wait "$writer" 2>/dev/null || true
exec 3>&-

before=$(sha "$img")
expect_ok info --json "$img"
[ "$(json_get dirty)" = true ] || fail "a killed writer's image is not dirty"
expect_ok info "$img"
expect_out "state: dirty"
expect_ok io -c 'read -P 0x22 0 64k' -c 'read -P 0x11 64k 960k' -c 'read -P 0x33 4M 128k' "$img"
expect_ok map "$img"
[ "$(sha "$img")" = "$before" ] || fail "read-only opens of a dirty image wrote to it"

expect_ok check --repair "$img"
expect_ok info --json "$img"
[ "$(json_get dirty)" = false ] || fail "still dirty after a read-write open"
expect_ok io -c 'read -P 0x22 0 64k' -c 'read -P 0x11 64k 960k' -c 'read -P 0x33 4M 128k' "$img"
expect_ok check "$img"
echo "dirty: ok"
