#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vdisk check: clean images exit 0 without being touched; a leaked cluster
# exits 3 and a reference past the end of the file exits 2, and --repair
# fixes both; an aliased refcount block is rebuilt (issue 11); an
# interrupted snapshot deletion is not finished through a damaged refcount
# table (issue 11); JSON output parses.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3
poke()
{
	"$PYTHON" "$HERE/vdimg.py" "$@"
}

img=$TMP/check.vd
expect_ok create -q "$img" 64M
expect_ok check "$img"
expect_out "No errors were found on the image."
expect_ok io -q -c 'write -P 7 0 1M' -c 'write 32M 64k' -c 'discard 512k 128k' "$img"
before=$(sha "$img")
expect_ok check "$img"
expect_out "No errors were found on the image."
expect_ok check --json "$img"
[ "$(json_get corruptions)" -eq 0 ] && [ "$(json_get leaks)" -eq 0 ] || fail "json counts"
[ "$(json_get check_errors)" -eq 0 ] || fail "check_errors"
[ "$(json_get allocated_clusters)" -gt 0 ] || fail "allocated_clusters"
[ "$(sha "$img")" = "$before" ] || fail "check changed the image"
expect_ok check --repair "$img"
expect_out "No errors were found on the image."

# A leak: a refcount on a cluster nothing references (past the end of the
# file, inside the first refcount block).
cp "$img" "$TMP/leak.vd"
flen=$(stat -c %s "$TMP/leak.vd")
poke "$TMP/leak.vd" ref-set $((flen / 65536 + 2)) 1
before=$(sha "$TMP/leak.vd")
expect_rc 3 check "$TMP/leak.vd"
expect_out "1 leaked clusters were found on the image."
[ "$(sha "$TMP/leak.vd")" = "$before" ] || fail "check without --repair changed the image"
expect_rc 3 check --json "$TMP/leak.vd"
[ "$(json_get leaks)" -eq 1 ] || fail "json leaks"
expect_ok check --repair "$TMP/leak.vd"
expect_out "Double checking the fixed image now..."
expect_out "No errors were found on the image."
expect_ok check "$TMP/leak.vd"
expect_ok io -c 'read -P 7 0 512k' -c 'read -P 0 512k 128k' -c 'read -P 7 640k 384k' \
	"$TMP/leak.vd"

# A corruption: an L2 entry pointing far past the end of the file.
cp "$img" "$TMP/bad.vd"
poke "$TMP/bad.vd" l2-set 100 $((1 << 40))
expect_rc 2 check "$TMP/bad.vd"
expect_out "errors were found on the image."
expect_rc 2 check --output=json "$TMP/bad.vd"
[ "$(json_get corruptions)" -ge 1 ] || fail "json corruptions"
expect_ok check --repair --json "$TMP/bad.vd"
[ "$(json_get corruptions_fixed)" -ge 1 ] || fail "json corruptions_fixed"
[ "$(json_get corruptions)" -eq 0 ] || fail "corruptions left after repair"
expect_ok check "$TMP/bad.vd"
expect_ok io -c 'read -P 0 6400k 64k' -c 'read -P 7 0 512k' "$TMP/bad.vd"

# Issue 11: the last refcount table entry aliased to the first refcount
# block.  Repair used to free the header, journal and L1 through the alias,
# grow the file to 16 TiB and let the next write reuse live clusters.
alias=$TMP/alias.vd
expect_ok create -q "$alias" 16M
expect_ok io -q -c 'write -P 5 0 4M' "$alias"
poke "$alias" rt-set -1 "$(poke "$alias" rt-get 0)"
expect_rc 2 check "$alias"
expect_out "refcount structures are damaged"
expect_ok check --repair "$alias"
expect_out "Rebuilt the refcount structures"
expect_out "No errors were found on the image."
[ "$(stat -c %s "$alias")" -lt $((64 << 20)) ] || fail "repair grew the file"
expect_ok check "$alias"
expect_ok io -c 'write -P 9 8M 2M' -c 'read -P 5 0 4M' -c 'read -P 9 8M 2M' "$alias"
expect_ok check "$alias"
expect_out "No errors were found on the image."
[ "$(stat -c %s "$alias")" -lt $((64 << 20)) ] || fail "writing grew the file"

# A refcount table entry naming the active L1 table: the repair read "the
# block" through it (the L1, pinned in the cache) and failed instead of
# rebuilding (found by repair_prop).
onl1=$TMP/onl1.vd
expect_ok create -q "$onl1" 16M
expect_ok io -q -c 'write -P 6 0 1M' "$onl1"
poke "$onl1" rt-set 0 "$(poke "$onl1" get l1_offset)"
expect_rc 2 check "$onl1"
expect_ok check --repair "$onl1"
expect_out "Rebuilt the refcount structures"
expect_out "No errors were found on the image."
expect_ok io -c 'write -P 8 4M 1M' -c 'read -P 6 0 1M' -c 'read -P 8 4M 1M' "$onl1"
expect_ok check "$onl1"
expect_out "No errors were found on the image."

# Issue 11: an image with a snapshot deletion a crash interrupted, whose
# refcount table entry 0 names a guest data cluster.  Finishing the
# deletion would lower refcounts inside that data: a read-write open
# refuses the image, check --repair rebuilds the refcounts and then
# finishes the deletion, and the guest's bytes are those of before.
del=$TMP/deleting.vd
cp "$HERE/../fuzz/corpus/c4k-deleting.vd" "$del"
chmod u+w "$del"
expect_ok convert -O raw "$del" "$TMP/deleting-before.raw"
expect_ok map "$del"
data=$(printf '%s\n' "$OUT" | awk '$4 == "data" { print $3; exit }')
[ -n "$data" ] || fail "the seed image maps no data"
poke "$del" rt-set 0 "$((data))"
expect_rc 1 io -c 'write -P 3 4M 4k' "$del"
expect_one_line_error "a snapshot deletion interrupted by a crash cannot be finished"
expect_ok convert -O raw "$del" "$TMP/deleting-refused.raw"
cmp -s "$TMP/deleting-before.raw" "$TMP/deleting-refused.raw" || fail "the refused open changed the disk"
expect_ok check --repair "$del"
expect_out "Rebuilt the refcount structures"
expect_out "Finished the deletion of a snapshot that a crash had interrupted"
expect_out "No errors were found on the image."
expect_ok convert -O raw "$del" "$TMP/deleting-after.raw"
cmp -s "$TMP/deleting-before.raw" "$TMP/deleting-after.raw" || fail "the repair changed the disk"
expect_ok io -c 'write -P 3 4M 64k' -c 'read -P 3 4M 64k' "$del"
expect_ok check "$del"
expect_out "No errors were found on the image."

expect_rc 1 check "$TMP/missing.vd"
expect_one_line_error "$TMP/missing.vd"
echo "check: ok"
