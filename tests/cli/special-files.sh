#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Files that cannot be images (issue 11): a FIFO given to any command that
# opens a file the user names used to block in open(2) for ever.  Every
# command must refuse a FIFO, a directory or a character device at once,
# with one line naming the file, and leave the FIFO without a writer.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need timeout mkfifo

# Like run, but a command still running after 10 s has hung: that fails.
run_bounded()
{
	set +e
	timeout 10 "$VDISK" "$@" >"$TMP/.out" 2>"$TMP/.err"
	RC=$?
	set -e
	OUT=$(cat "$TMP/.out")
	ERR=$(cat "$TMP/.err")
	[ "$RC" -ne 124 ] || fail "vdisk $* hung"
	if grep -qE 'Sanitizer|runtime error:' "$TMP/.err" || [ "$RC" -ge 128 ]; then
		fail "vdisk $* crashed or reported a sanitizer error"
	fi
}

refused()
{
	local what=$1
	shift
	run_bounded "$@"
	[ "$RC" -ne 0 ] || fail "vdisk $* accepted $what"
	expect_one_line_error "is $what"
}

good=$TMP/good.vd
expect_ok create -q "$good" 4M
mkfifo "$TMP/fifo"
mkdir "$TMP/dir"

for f in "$TMP/fifo:a FIFO" "$TMP/dir:a directory" "/dev/null:a character device"; do
	path=${f%%:*}
	what=${f#*:}
	# '@' stands for the file, '_' for a space inside an argument.
	for cmd in "info @" "info --json @" "map @" "check @" "check --repair @" \
		"io -c read_0_4k @" "io -c write_0_4k @" "bench -c 10 @" "snapshot list @" \
		"snapshot create @ s" "snapshot diff @ s" "resize @ 4M" "flatten @" \
		"rebase -u -b $good @" "commit @"; do
		read -ra args <<<"$cmd"
		for i in "${!args[@]}"; do
			args[$i]=${args[$i]//_/ }
			[ "${args[$i]}" != @ ] || args[$i]=$path
		done
		refused "$what" "${args[@]}"
	done
	# convert's inputs: detected, vdisk, raw and qcow2; and a raw output.
	for fmt in "" "-f vdisk" "-f raw" "-f qcow2"; do
		read -ra args <<<"$fmt"
		refused "$what" convert "${args[@]}" -O vdisk "$path" "$TMP/out.vd"
		[ ! -e "$TMP/out.vd" ] || fail "convert from $what left an output"
	done
	refused "$what" create -q -b "$path" "$TMP/clone.vd"
	expect_ok create -q "$TMP/clone.vd" 4M
	refused "$what" rebase -b "$path" "$TMP/clone.vd"
	rm -f "$TMP/clone.vd"
done
# A FIFO as raw output: the writer side would block too without a reader.
refused "a FIFO" convert -O raw "$good" "$TMP/fifo"
[ -p "$TMP/fifo" ] || fail "convert replaced the FIFO"
echo "special-files: ok"
