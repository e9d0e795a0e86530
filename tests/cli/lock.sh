#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Image locking as the tool shows it: while one vdisk io writes an image, a
# second writer and plain readers are refused with "FILE: in use by process
# PID", -U (force-share) readers get through; readers share; a template
# used by a running clone cannot be written.  Every process this starts is
# stopped by its PID.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3 mkfifo

# Holders, by PID, stopped on any exit (lib.sh's trap only removes $TMP).
cleanup()
{
	stop_holders
	rm -rf "$TMP"
}
trap cleanup EXIT

# Starts "vdisk io ARGS..." reading commands from a fifo on fd $1, output
# in $TMP/holder-$1.out; sets HOLDER to its PID.
start_holder()
{
	local fd=$1
	shift
	mkfifo "$TMP/fifo-$fd"
	"$VDISK" io "$@" <"$TMP/fifo-$fd" >"$TMP/holder-$fd.out" 2>&1 &
	HOLDER=$!
	holders+=("$HOLDER")
	eval "exec $fd>\"\$TMP/fifo-$fd\""
}

# Sends one command to the holder on fd $1 and waits until its output
# contains $3 (commands run in order, so earlier ones are done too).
holder_do()
{
	local fd=$1 cmd=$2 want=$3
	printf '%s\n' "$cmd" >&"$fd"
	for _ in $(seq 200); do
		grep -q "$want" "$TMP/holder-$fd.out" && return 0
		sleep 0.05
	done
	fail "the holder never answered '$cmd': $(cat "$TMP/holder-$fd.out")"
}

# Stops holder $2 (a PID) on fd $1, checking it was still running.
stop_holder()
{
	local fd=$1 pid=$2
	kill -0 "$pid" 2>/dev/null || fail "holder $pid died early: $(cat "$TMP/holder-$fd.out")"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	eval "exec $fd>&-"
	holders=("${holders[@]/$pid/}")
}

img=$TMP/locked.vd
expect_ok create -q "$img" 16M
expect_ok io -q -c 'write -P 0x11 0 1M' "$img"

# Runs vdisk ARGS..., which must fail naming the writer.
refused()
{
	expect_rc 1 "$@"
	expect_one_line_error "$img: in use by process $writer"
}

# One writer, holding the image open, its data flushed (the read answers
# after the flush ran).
start_holder 3 "$img"
writer=$HOLDER
holder_do 3 "write -P 0x22 0 64k" "wrote 65536/65536"
printf 'flush\n' >&3
holder_do 3 "read -P 0x22 0 64k" "read 65536/65536"

# Every other writer is refused with the library's sentence naming the PID,
# and the file stays as it was.
before=$(sha "$img")
refused io -c 'write 0 4k' "$img"
refused snapshot create "$img" s
refused snapshot delete "$img" s
refused resize "$img" +1M
refused check --repair "$img"
refused rebase -u -b "" "$img"
refused flatten "$img"
# As with qemu-img, plain readers are refused too: the writer may change
# anything under them.
refused info "$img"
refused map "$img"
refused check "$img"
refused snapshot list "$img"
refused snapshot diff "$img" s
refused io -r -c 'read 0 4k' "$img"
[ "$(sha "$img")" = "$before" ] || fail "a refused open changed the image"

# -U reads anyway, and sees what the writer flushed.
expect_ok info -U "$img"
expect_out "image: $img"
expect_out "state: dirty"
expect_ok info -U --json "$img"
[ "$(json_get virtual_size)" -eq $((16 << 20)) ] || fail "info -U --json"
expect_ok info --force-share "$img"
expect_ok map -U "$img"
expect_out "data"
expect_ok check -U "$img"
expect_ok io -r -U -c 'read -P 0x22 0 64k' -c 'read -P 0x11 64k 960k' "$img"
expect_ok io -U -c 'read -P 0x22 0 64k' "$img"
expect_ok snapshot list -U "$img"
[ "$(sha "$img")" = "$before" ] || fail "a -U reader changed the image"

# -U is for reading only.
expect_rc 2 io -U -c 'write 0 4k' "$img"
expect_one_line_error "-r"
expect_rc 2 check -U --repair "$img"
expect_one_line_error "--repair"
expect_rc 2 snapshot create -U "$img" s
expect_one_line_error "list and diff"

# The writer still works, then stops (by PID, so its image stays dirty).
holder_do 3 "write -P 0x33 1M 64k" "wrote 65536/65536 bytes at offset 1048576"
stop_holder 3 "$writer"
expect_ok io -c 'read -P 0x22 0 64k' -c 'read -P 0x11 64k 960k' "$img"
expect_ok check "$img"
expect_ok snapshot create "$img" after

# Readers share the image; a writer is refused, naming the reader.
start_holder 4 -r "$img"
reader=$HOLDER
holder_do 4 "read -P 0x22 0 64k" "read 65536/65536"
expect_ok info "$img"
expect_ok io -c 'read -P 0x22 0 64k' "$img"
expect_rc 1 io -c 'write 0 4k' "$img"
expect_one_line_error "$img: in use by process $reader"
stop_holder 4 "$reader"
expect_ok io -c 'write -P 0x44 0 4k' "$img"

# A template serves any number of clones at once, and cannot be written
# (or committed into) while one runs.
base=$TMP/base.vd
expect_ok create -q "$base" 8M
expect_ok io -q -c 'write -P 0x55 0 8M' "$base"
expect_ok create -q -b base.vd "$TMP/c1.vd"
expect_ok create -q -b base.vd "$TMP/c2.vd"
start_holder 5 "$TMP/c1.vd"
clone_writer=$HOLDER
holder_do 5 "write -P 0x66 0 64k" "wrote 65536/65536"
expect_ok io -c 'write -P 0x77 0 64k' -c 'read -P 0x55 64k 1M' "$TMP/c2.vd"
expect_ok info "$base"
expect_rc 1 io -c 'write 0 4k' "$base"
expect_one_line_error "$base: in use by process $clone_writer"
expect_rc 1 commit "$TMP/c2.vd"
expect_one_line_error "in use by process $clone_writer"
expect_ok io -c 'read -P 0x77 0 64k' -c 'read -P 0x55 64k 1M' "$TMP/c2.vd"
stop_holder 5 "$clone_writer"
expect_ok commit "$TMP/c2.vd"
expect_ok io -c 'read -P 0x77 0 64k' "$base"
echo "lock: ok"
