#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cold migration (vdisk migrate) between datastores of a private registry:
# an image with snapshots moves with each snapshot's contents and its
# allocation (sharing kept, within 1%); a linked clone keeps reading its
# template, which stays in the source datastore (and stays protected), or
# takes a copy of it with --with-backing; --keep-source; an image held
# open is refused; a destination that fills up fails with the source
# intact; a crash (VDISK_MIGRATE_CRASH_AT) at each step leaves exactly one
# image in charge and the next run cleans up or finishes.  The tmpfs this
# mounts is unmounted, and every process it starts is stopped by its PID.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3 mkfifo cmp

export VDISK_DATASTORES=$TMP/registry.json
mnt=$TMP/small
cleanup()
{
	stop_holders
	if mountpoint -q "$mnt" 2>/dev/null; then
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	fi
	chmod -R u+w "$TMP" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

A=$TMP/a
B=$TMP/b
expect_ok migrate --help
expect_out "Usage: vdisk migrate"
expect_rc 2 migrate
expect_one_line_error "missing IMAGE"
expect_rc 2 migrate -Z a:x.vd --to b
expect_one_line_error "-Z"
expect_ok datastore create a "$A"
expect_ok datastore create b "$B"

# Prints member $2 of entry $1 ("ds:rel") of a manifest, "-" if absent,
# "none" if there is no such entry.
entry()
{
	local ds=${1%%:*} rel=${1#*:} dir
	dir=$([ "$ds" = a ] && echo "$A" || { [ "$ds" = b ] && echo "$B" || echo "$mnt/ds"; })
	"$PYTHON" -c 'import json, sys
e = json.load(open(sys.argv[1]))["entries"].get(sys.argv[2])
print("none" if e is None else e.get(sys.argv[3], "-"))' "$dir/.vdisk-datastore.json" "$rel" "$2"
}

reads()
{
	expect_ok io -q -r -c "read -P $2 $3 $4" "$1"
}

# Snapshot $2 of the image file $1 reads pattern $3 at $4 for $5: checked
# on a sparse copy outside every datastore, reverted there.
snap_reads()
{
	cp --sparse=always "$1" "$TMP/snapcheck.vd"
	chmod u+w "$TMP/snapcheck.vd"
	expect_ok snapshot revert "$TMP/snapcheck.vd" "$2"
	expect_ok io -q -r -c "read -P $3 $4 $5" "$TMP/snapcheck.vd"
	rm -f "$TMP/snapcheck.vd"
}

no_partials()
{
	if find "$@" -name '.vdisk-datastore-partial.*' | grep -q .; then
		fail "a partial copy was left: $(find "$@" -name '.vdisk-datastore-partial.*')"
	fi
}

within_1pct()
{
	"$PYTHON" -c 'import sys; a, b = int(sys.argv[1]), int(sys.argv[2]); sys.exit(abs(a - b) * 100 > a)' "$1" "$2" ||
		fail "allocation $2 is not within 1% of $1"
}

# An image whose snapshots share most clusters: s1 holds 0x11 over 16M,
# s2 rewrote 4M of it with 0x22, the disk rewrote another 2M with 0x33.
make_snapped()
{
	expect_ok create -q "$1" 64M
	expect_ok io -q -c 'write -P 0x11 0 16M' "$1"
	expect_ok snapshot create "$1" s1
	expect_ok io -q -c 'write -P 0x22 4M 4M' "$1"
	expect_ok snapshot create "$1" s2
	expect_ok io -q -c 'write -P 0x33 10M 2M' "$1"
}

check_snapped()
{
	reads "$1" 0x11 0 4M
	reads "$1" 0x22 4M 4M
	reads "$1" 0x33 10M 2M
	reads "$1" 0x11 12M 4M
	reads "$1" 0 16M 48M
	snap_reads "$2" s1 0x11 0 16M
	snap_reads "$2" s2 0x22 4M 4M
	snap_reads "$2" s2 0x11 8M 8M
}

# --- an image with snapshots
make_snapped a:vm/snap.vd
src_alloc=$(disk_bytes "$A/vm/snap.vd")
expect_ok migrate a:vm/snap.vd --to b
expect_out "a:vm/snap.vd -> b:vm/snap.vd"
[ ! -e "$A/vm/snap.vd" ] || fail "the source file is still there"
[ "$(entry a:vm/snap.vd state)" = none ] || fail "the source entry is still there"
[ "$(entry b:vm/snap.vd state)" = ready ] || fail "the destination is not ready"
[ "$(entry b:vm/snap.vd origin)" = a:vm/snap.vd ] || fail "origin not recorded"
within_1pct "$src_alloc" "$(disk_bytes "$B/vm/snap.vd")"
expect_ok check b:vm/snap.vd
expect_ok snapshot list b:vm/snap.vd
expect_out s1
expect_out s2
check_snapped b:vm/snap.vd "$B/vm/snap.vd"
no_partials "$A" "$B"
# And to another path, back again.
expect_ok migrate b:vm/snap.vd --to a:moved/back.vd
check_snapped a:moved/back.vd "$A/moved/back.vd"
expect_rc 1 migrate a:moved/back.vd --to a:moved/back.vd
expect_one_line_error "already there"
expect_rc 2 migrate a:moved/back.vd
expect_one_line_error "missing --to"
expect_rc 1 migrate a:moved/back.vd --to nosuch
expect_one_line_error "nosuch"
expect_rc 1 migrate a:nothere.vd --to b
expect_one_line_error

# --- a linked clone; its template stays in a, referenced, and protected
expect_ok create -q a:tpl/gold.vd 32M
expect_ok io -q -c 'write -P 0x5a 0 8M' a:tpl/gold.vd
expect_ok template a:tpl/gold.vd
expect_ok create -q -b a:tpl/gold.vd a:vm/clone.vd
expect_ok io -q -c 'write -P 0x77 1M 1M' a:vm/clone.vd
expect_ok info --json a:vm/clone.vd
[ "$(json_get backing_file)" = ../tpl/gold.vd ] || fail "clone's backing is not relative"
expect_ok migrate a:vm/clone.vd --to b
expect_ok info --json b:vm/clone.vd
[ "$(json_get backing_file)" = "$A/tpl/gold.vd" ] ||
	fail "the relative backing reference was not rewritten: $(json_get backing_file)"
reads b:vm/clone.vd 0x5a 0 1M
reads b:vm/clone.vd 0x77 1M 1M
reads b:vm/clone.vd 0x5a 2M 6M
expect_ok check b:vm/clone.vd
expect_rc 1 rm a:tpl/gold.vd
expect_one_line_error "b:vm/clone.vd"
expect_rc 1 migrate a:tpl/gold.vd --to b
expect_one_line_error "--with-backing"
[ "$(entry b:tpl/gold.vd state)" = none ] || fail "a refused template move left an entry"
# An absolute reference is kept as it is; a relative one that still
# reaches the template too.
expect_ok migrate b:vm/clone.vd --to a:other/clone.vd
expect_ok info --json a:other/clone.vd
[ "$(json_get backing_file)" = "$A/tpl/gold.vd" ] || fail "backing into a: $(json_get backing_file)"
reads a:other/clone.vd 0x77 1M 1M
expect_ok create -q -b a:tpl/gold.vd a:vm/clone3.vd
expect_ok migrate a:vm/clone3.vd --to a:vm2/clone3.vd
expect_ok info --json a:vm2/clone3.vd
[ "$(json_get backing_file)" = ../tpl/gold.vd ] || fail "a relative reference that works was changed"
expect_ok migrate a:vm2/clone3.vd --to a:clone3.vd
expect_ok info --json a:clone3.vd
[ "$(json_get backing_file)" = tpl/gold.vd ] || fail "relative rewrite: $(json_get backing_file)"
reads a:clone3.vd 0x5a 0 8M
expect_ok rm a:clone3.vd

# --- --with-backing: the template is copied and the clone uses the copy;
# a second clone reuses that copy
expect_ok create -q -b a:tpl/gold.vd a:vm/clone2.vd
expect_ok io -q -c 'write -P 0x66 3M 1M' a:vm/clone2.vd
expect_ok migrate --with-backing a:other/clone.vd --to b:vm/clone.vd
[ "$(entry b:tpl/gold.vd kind)" = template ] || fail "the template copy is not a template"
[ "$(entry b:tpl/gold.vd origin)" = a:tpl/gold.vd ] || fail "the template copy's origin"
[ "$(stat -c %a "$B/tpl/gold.vd")" = 444 ] || fail "the template copy is writable"
expect_ok info --json b:vm/clone.vd
[ "$(json_get backing_file)" = ../tpl/gold.vd ] || fail "with-backing: $(json_get backing_file)"
reads b:vm/clone.vd 0x77 1M 1M
reads b:vm/clone.vd 0x5a 4M 4M
expect_ok migrate --with-backing a:vm/clone2.vd --to b
expect_ok info --json b:vm/clone2.vd
[ "$(json_get backing_file)" = ../tpl/gold.vd ] || fail "reuse: $(json_get backing_file)"
reads b:vm/clone2.vd 0x66 3M 1M
reads b:vm/clone2.vd 0x5a 0 3M
# The original template now has no clones: it may move, and stays one.
expect_ok migrate a:tpl/gold.vd --to b:tpl/gold2.vd
[ "$(entry b:tpl/gold2.vd kind)" = template ] || fail "a moved template is no template"
[ "$(stat -c %a "$B/tpl/gold2.vd")" = 444 ] || fail "a moved template is writable"

# --- --keep-source
make_snapped a:keep.vd
expect_ok migrate --keep-source a:keep.vd --to b
[ "$(entry a:keep.vd state)" = ready ] || fail "--keep-source removed the source"
[ "$(entry a:keep.vd moving_to)" = - ] || fail "--keep-source left moving_to"
check_snapped a:keep.vd "$A/keep.vd"
check_snapped b:keep.vd "$B/keep.vd"

# --- an image in use is refused, with who holds it
make_snapped a:busy.vd
mkfifo "$TMP/hold"
"$VDISK" io a:busy.vd <"$TMP/hold" >"$TMP/holder.out" 2>&1 &
holder=$!
holders+=("$holder")
exec 7>"$TMP/hold"
echo 'read 0 4k' >&7
for _ in $(seq 200); do
	grep -q "read" "$TMP/holder.out" && break
	sleep 0.05
done
expect_rc 1 migrate a:busy.vd --to b
expect_one_line_error "moves live"
expect_err "in use by vdisk (pid $holder)"
[ "$(entry b:busy.vd state)" = none ] || fail "a refused migration left an entry"
[ "$(entry a:busy.vd moving_to)" = - ] || fail "a refused migration left moving_to"
kill "$holder"
wait "$holder" 2>/dev/null || true
exec 7>&-
holders=()
expect_ok migrate a:busy.vd --to b
check_snapped b:busy.vd "$B/busy.vd"

# --- a destination that fills up
mkdir "$mnt"
if mount -t tmpfs -o size=8M tmpfs "$mnt" 2>/dev/null; then
	expect_ok datastore create small "$mnt/ds"
	make_snapped a:big.vd
	before=$(sha "$A/big.vd")
	expect_rc 1 migrate a:big.vd --to small
	expect_one_line_error "No space left on device"
	expect_err "datastore small is full"
	[ "$(entry small:big.vd state)" = none ] || fail "a failed copy left an entry"
	[ ! -e "$mnt/ds/big.vd" ] || fail "a failed copy left a file"
	no_partials "$mnt/ds"
	[ "$(entry a:big.vd state)" = ready ] || fail "the source entry changed"
	[ "$(entry a:big.vd moving_to)" = - ] || fail "a failed copy left moving_to"
	[ "$(sha "$A/big.vd")" = "$before" ] || fail "the source file changed"
	expect_ok check a:big.vd
	check_snapped a:big.vd "$A/big.vd"
	expect_ok datastore remove small
	umount "$mnt"
else
	echo "note: cannot mount a tmpfs here; the full-destination case is skipped" >&2
fi

# --- crashes: each step, then the same command again
for at in copy verify switch remove; do
	make_snapped "a:crash-$at.vd"
	set +e
	VDISK_MIGRATE_CRASH_AT=$at "$VDISK" migrate "a:crash-$at.vd" --to b >/dev/null 2>&1
	rc=$?
	set -e
	[ "$rc" = 99 ] || fail "crash at $at: exit status $rc"
	[ "$(entry "a:crash-$at.vd" moving_to)" = "b:crash-$at.vd" ] || fail "crash at $at: no moving_to"
	expect_ok ls a
	printf '%s\n' "$OUT" | grep -q "^crash-$at.vd  *moving " || fail "ls does not show it moving"
	if [ "$at" = remove ]; then
		# Switched: the destination is the image.
		[ "$(entry "b:crash-$at.vd" state)" = ready ] || fail "crash at $at: not switched"
		check_snapped "b:crash-$at.vd" "$B/crash-$at.vd"
		# The old copy is no longer the image: writes to it are refused.
		expect_rc 1 io -q -c 'write -P 0x11 0 4k' "a:crash-$at.vd"
		expect_one_line_error "was migrated to b:crash-$at.vd"
	else
		# Not switched: the source is the image, whole and clean.
		[ "$(entry "a:crash-$at.vd" state)" = ready ] || fail "crash at $at: source not ready"
		[ "$(entry "b:crash-$at.vd" state)" = incomplete ] ||
			fail "crash at $at: the destination is $(entry "b:crash-$at.vd" state)"
		expect_ok check "a:crash-$at.vd"
		check_snapped "a:crash-$at.vd" "$A/crash-$at.vd"
		# Still the image: it takes writes (the same bytes, so the
		# checks after the next run still hold).
		expect_ok io -q -c 'write -P 0x11 0 4k' "a:crash-$at.vd"
	fi
	expect_ok migrate "a:crash-$at.vd" --to b
	if [ "$at" = remove ]; then
		expect_out "had already switched to b:crash-$at.vd"
	else
		expect_out "removed the partial copy"
		expect_out "a:crash-$at.vd -> b:crash-$at.vd"
	fi
	[ "$(entry "a:crash-$at.vd" state)" = none ] || fail "crash at $at: the source stayed"
	[ ! -e "$A/crash-$at.vd" ] || fail "crash at $at: the source file stayed"
	[ "$(entry "b:crash-$at.vd" state)" = ready ] || fail "crash at $at: not finished"
	expect_ok check "b:crash-$at.vd"
	check_snapped "b:crash-$at.vd" "$B/crash-$at.vd"
	no_partials "$A" "$B"
done

# A crash in the copy of a template (--with-backing), then the run again.
expect_ok create -q a:tpl/t2.vd 16M
expect_ok io -q -c 'write -P 0x44 0 8M' a:tpl/t2.vd
expect_ok template a:tpl/t2.vd
expect_ok create -q -b a:tpl/t2.vd a:c2.vd
expect_ok io -q -c 'write -P 0x45 0 1M' a:c2.vd
set +e
VDISK_MIGRATE_CRASH_AT=copy "$VDISK" migrate --with-backing a:c2.vd --to b >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 99 ] || fail "crash in a template copy: exit status $rc"
[ "$(entry b:tpl/t2.vd state)" = incomplete ] || fail "crash in a template copy: $(entry b:tpl/t2.vd state)"
expect_ok migrate --with-backing a:c2.vd --to b
reads b:c2.vd 0x45 0 1M
reads b:c2.vd 0x44 1M 7M
[ "$(entry b:tpl/t2.vd state)" = ready ] || fail "template copy not redone"
no_partials "$A" "$B"
echo "migrate: all checks passed"
