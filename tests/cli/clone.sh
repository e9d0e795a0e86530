#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Linked clones: create -b, reads falling through, writes that leave the
# template alone, a chain of three, commit, rebase (safe and -u), flatten,
# and resize; info showing the backing file and the chain's depth.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3

# base: 16M, 0x11 in its first 4M.
base=$TMP/base.vd
expect_ok create -q "$base" 16M
expect_ok io -q -c 'write -P 0x11 0 4M' "$base"
base_sha=$(sha "$base")

# A relative backing name is taken from the clone's directory.
clone=$TMP/clone.vd
expect_ok create -b base.vd -F vdisk "$clone"
want="Formatting '$clone', fmt=vdisk size=16777216 backing_file=base.vd"
[ "$OUT" = "$want cluster_size=65536 preallocation=off" ] || fail "Formatting line: $OUT"
expect_ok info "$clone"
expect_out "virtual size: 16 MiB (16777216 bytes)"
expect_out "backing file: base.vd"
expect_out "backing file chain depth: 1"
expect_ok info --json "$clone"
[ "$(json_get backing_file)" = base.vd ] || fail "JSON backing_file"
[ "$(json_get chain_depth)" -eq 1 ] || fail "JSON chain_depth"
[ "$(json_get allocated_bytes)" -eq 0 ] || fail "a new clone holds data"
expect_ok info "$base"
case $OUT in
*"backing file"*) fail "an image without a backing file shows one" ;;
esac

# Reads fall through; the map says where from.
expect_ok io -c 'read -P 0x11 0 4M' -c 'read -P 0 4M 12M' "$clone"
expect_ok map "$clone"
expect_out "0               0x1000000       -               backing"

# Writes land in the clone, a partial cluster copied up around them; the
# template's file does not change by a byte.
expect_ok io -q -c 'write -P 0x22 1M 64k' -c 'write -P 0x23 2097664 512' "$clone"
expect_ok io -c 'read -P 0x11 0 1M' -c 'read -P 0x22 1M 64k' -c 'read -P 0x11 1088k 960k' \
	-c 'read -P 0x11 2M 512' -c 'read -P 0x23 2097664 512' -c 'read -P 0x11 2098176 1023488' \
	"$clone"
expect_ok io -c 'read -P 0x11 0 4M' "$base"
[ "$(sha "$base")" = "$base_sha" ] || fail "writing the clone changed the template"
expect_ok check "$clone"

# A chain of three: top (bigger than the chain) on mid on base.
mid=$TMP/mid.vd
top=$TMP/top.vd
expect_ok create -q -b "$base" "$mid"
expect_ok io -q -c 'write -P 0x33 3M 1M' "$mid"
expect_ok create -b "$mid" "$top" 32M
expect_out "size=33554432 backing_file=$mid "
expect_ok io -q -c 'write -P 0x44 8M 1M' "$top"
expect_ok info "$top"
expect_out "backing file: $mid"
expect_out "backing file chain depth: 2"
expect_ok info --json "$top"
[ "$(json_get chain_depth)" -eq 2 ] || fail "top's chain depth"
expect_ok io -c 'read -P 0x11 0 3M' -c 'read -P 0x33 3M 1M' -c 'read -P 0 4M 4M' \
	-c 'read -P 0x44 8M 1M' -c 'read -P 0 9M 23M' "$top"

# commit: top's data goes down into mid, top empties and reads the same;
# base, two levels down, is untouched.
expect_ok commit "$top"
[ "$OUT" = "Image committed." ] || fail "commit printed: $OUT"
expect_ok info --json "$top"
[ "$(json_get allocated_bytes)" -eq 0 ] || fail "top still holds data after commit"
expect_ok io -c 'read -P 0x11 0 3M' -c 'read -P 0x33 3M 1M' -c 'read -P 0x44 8M 1M' "$top"
expect_ok io -c 'read -P 0x44 8M 1M' -c 'read -P 0x33 3M 1M' "$mid"
[ "$(sha "$base")" = "$base_sha" ] || fail "commit into mid changed base"
expect_ok check "$mid"
expect_ok commit -q "$top"
[ -z "$OUT" ] || fail "commit -q printed: $OUT"
expect_rc 1 commit "$base"
expect_one_line_error "$base: has no backing file to commit into"

# rebase: a safe one keeps what the guest sees, -u only renames.
other=$TMP/other.vd
expect_ok create -q "$other" 16M
expect_ok io -q -c 'write -P 0x55 0 16M' "$other"
cp "$clone" "$TMP/clone2.vd"
clone2=$TMP/clone2.vd
expect_ok rebase -b other.vd "$clone"
[ -z "$OUT" ] || fail "rebase printed: $OUT"
expect_ok info "$clone"
expect_out "backing file: other.vd"
expect_ok io -c 'read -P 0x11 0 1M' -c 'read -P 0x22 1M 64k' -c 'read -P 0x11 1088k 960k' \
	-c 'read -P 0x23 2097664 512' -c 'read -P 0x11 3M 1M' -c 'read -P 0 4M 12M' "$clone"
expect_ok check "$clone"
expect_ok rebase -u -b "$other" "$clone2"
expect_ok info --json "$clone2"
[ "$(json_get backing_file)" = "$other" ] || fail "rebase -u did not store the new name"
expect_ok io -c 'read -P 0x55 0 1M' -c 'read -P 0x22 1M 64k' -c 'read -P 0x55 4M 12M' "$clone2"
expect_rc 2 rebase "$clone2"
expect_one_line_error "-b"
expect_rc 1 rebase -b "$TMP/missing.vd" "$clone2"
expect_one_line_error "$TMP/missing.vd"
expect_ok info --json "$clone2"
[ "$(json_get backing_file)" = "$other" ] || fail "a failed rebase changed the backing file"

# rebase -b "": no backing file, same disk.
expect_ok rebase -b "" "$clone2"
expect_ok info --json "$clone2"
[ "$(json_get backing_file)" = None ] || fail "rebase -b '' kept a backing file"
[ "$(json_get chain_depth)" -eq 0 ] || fail "chain depth after rebase -b ''"
expect_ok io -c 'read -P 0x55 0 1M' -c 'read -P 0x22 1M 64k' -c 'read -P 0x55 4M 12M' "$clone2"

# flatten: the clone stands alone; the template can go.
expect_ok flatten "$clone"
expect_ok info --json "$clone"
[ "$(json_get backing_file)" = None ] || fail "flatten kept a backing file"
[ "$(json_get chain_depth)" -eq 0 ] || fail "chain depth after flatten"
expect_ok create -q -b other.vd "$TMP/orphan.vd"
mv "$other" "$TMP/other.gone"
expect_ok io -c 'read -P 0x11 0 1M' -c 'read -P 0x22 1M 64k' -c 'read -P 0x23 2097664 512' \
	-c 'read -P 0x11 3M 1M' -c 'read -P 0 4M 12M' "$clone"
expect_ok check "$clone"
expect_ok flatten "$clone"
# A clone whose template is gone does not open, and names what is missing.
expect_rc 1 info "$TMP/orphan.vd"
expect_one_line_error "other.vd"
mv "$TMP/other.gone" "$other"
expect_ok info "$TMP/orphan.vd"

# resize: grow (absolute and relative), shrink only with --shrink and only
# once nothing is allocated beyond the new end.
expect_ok resize "$clone" +16M
[ "$OUT" = "Image resized." ] || fail "resize printed: $OUT"
expect_ok info --json "$clone"
[ "$(json_get virtual_size)" -eq $((32 << 20)) ] || fail "resize +16M"
expect_ok io -c 'read -P 0 16M 16M' -c 'write -P 0x66 20M 64k' "$clone"
expect_ok resize -q "$clone" 48M
[ -z "$OUT" ] || fail "resize -q printed: $OUT"
before=$(sha "$clone")
expect_rc 1 resize "$clone" 16M
expect_one_line_error "--shrink"
expect_rc 1 resize --shrink "$clone" -32M
expect_one_line_error "discard it first"
expect_rc 1 resize --shrink "$clone" -48M
expect_one_line_error "positive"
[ "$(sha "$clone")" = "$before" ] || fail "a refused resize changed the image"
expect_ok io -q -c 'discard 20M 64k' "$clone"
expect_ok resize --shrink "$clone" -32M
expect_ok info --json "$clone"
[ "$(json_get virtual_size)" -eq $((16 << 20)) ] || fail "resize --shrink -32M"
expect_ok io -c 'read -P 0x11 0 1M' -c 'read -P 0x22 1M 64k' "$clone"
expect_ok check "$clone"

# A clone grown past its template reads zeros beyond the template's end.
expect_ok create -q -b "$base" "$TMP/grown.vd"
expect_ok resize "$TMP/grown.vd" 24M
expect_ok io -c 'read -P 0x11 0 4M' -c 'read -P 0 4M 20M' "$TMP/grown.vd"
expect_ok check "$TMP/grown.vd"

# Refusals of create -b: a missing template (no file left), preallocation,
# another backing format.
expect_rc 1 create -b "$TMP/missing.vd" "$TMP/bad.vd"
expect_one_line_error "$TMP/missing.vd"
[ ! -e "$TMP/bad.vd" ] || fail "a failed create -b left a file"
expect_rc 2 create --preallocation=metadata -b "$base" "$TMP/bad.vd"
expect_one_line_error "preallocated"
expect_rc 2 create -b "$base" -F raw "$TMP/bad.vd"
expect_one_line_error "raw"
expect_rc 2 create -b "" "$TMP/bad.vd" 1M
expect_one_line_error "empty"
expect_rc 2 create "$TMP/bad.vd"
expect_one_line_error "SIZE"
[ ! -e "$TMP/bad.vd" ] || fail "a usage error created a file"

# Usage: --help, missing operands, unknown options.
for cmd in commit rebase flatten resize; do
	expect_ok "$cmd" --help
	expect_out "Usage: vdisk $cmd"
	expect_rc 2 "$cmd"
	expect_one_line_error "missing"
	expect_rc 2 "$cmd" --no-such-option "$clone"
	expect_one_line_error "--no-such-option"
done
expect_rc 2 resize "$clone"
expect_one_line_error "missing SIZE"
expect_rc 2 resize "$clone" 1X
expect_one_line_error "1X"
[ "$(sha "$base")" = "$base_sha" ] || fail "the template changed"
echo "clone: ok"
