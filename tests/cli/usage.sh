#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The command line itself: --help everywhere, usage errors exit 2 with one
# "vdisk: ..." line, unknown commands and options are refused.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

expect_ok --help
expect_out "Usage: vdisk COMMAND"
expect_ok --version
expect_out "vdisk version"
for cmd in create info map check convert io bench; do
	expect_ok "$cmd" --help
	expect_out "Usage: vdisk $cmd"
	expect_ok help "$cmd"
	expect_out "Usage: vdisk $cmd"
	expect_rc 2 "$cmd" --no-such-option
	expect_one_line_error "--no-such-option"
	expect_rc 2 "$cmd" -Z
	expect_one_line_error "-Z"
	expect_rc 2 "$cmd"
	expect_one_line_error "missing"
done

expect_rc 2
expect_one_line_error "missing command"
expect_rc 2 frobnicate
expect_one_line_error "frobnicate"

# Options that need an argument, and extra arguments.
expect_rc 2 create "$TMP/a.vd" 1M -c
expect_one_line_error "-c"
expect_rc 2 info "$TMP/a" "$TMP/b"
expect_one_line_error "unexpected argument"
expect_rc 2 info --output=xml "$TMP/a"
expect_one_line_error "xml"
expect_rc 2 convert -O qcow2 "$TMP/a" "$TMP/b"
expect_one_line_error "qcow2"
expect_rc 2 convert -O raw -c 64k "$TMP/a" "$TMP/b"
expect_one_line_error "-c"
expect_rc 2 io -t bogus -c flush "$TMP/a"
expect_one_line_error "bogus"
expect_rc 2 bench -s 1000 "$TMP/a"
expect_one_line_error "512"
expect_rc 2 bench --flush-interval 10 "$TMP/a"
expect_one_line_error "-w"
expect_rc 2 bench --pattern zigzag "$TMP/a"
expect_one_line_error "zigzag"
expect_rc 2 bench -d 0 "$TMP/a"
expect_one_line_error "depth"
[ ! -e "$TMP/a" ] || fail "a usage error created a file"
echo "usage: ok"
