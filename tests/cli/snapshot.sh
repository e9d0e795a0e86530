#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vdisk snapshot: create, list (text and JSON), diff (text and JSON), revert
# restoring the data, delete freeing the space only the snapshot held,
# and the refusals: unknown or duplicate names, options that do not apply.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3

# Prints the Python expression $1 over d, the JSON value in OUT.
json_expr()
{
	printf '%s' "$OUT" | "$PYTHON" -c 'import json, sys
d = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$1"
}

img=$TMP/snap.vd
expect_ok create -q "$img" 64M

# No snapshots: list prints nothing, like qemu-img snapshot -l, or [].
expect_ok snapshot list "$img"
[ -z "$OUT" ] || fail "list of an image without snapshots printed: $OUT"
expect_ok snapshot list --json "$img"
[ "$(json_expr d)" = "[]" ] || fail "empty list JSON: $OUT"

# s1: 4M of 0x11.  s2: then 1M of 0x22 over the second MiB.  The disk
# then also gets 1M of 0x33 at 8M.
expect_ok io -q -c 'write -P 0x11 0 4M' "$img"
expect_ok snapshot create "$img" s1
[ -z "$OUT" ] || fail "snapshot create printed: $OUT"
expect_ok io -q -c 'write -P 0x22 1M 1M' "$img"
expect_ok snapshot create "$img" s2
expect_ok io -q -c 'write -P 0x33 8M 1M' "$img"
expect_ok check "$img"

expect_ok snapshot list "$img"
expect_out "Snapshot list:"
header=$(printf '%s\n' "$OUT" | sed -n 2p)
for col in ID NAME DATE "VM SIZE" UNIQUE REFERENCED; do
	case $header in
	*"$col"*) ;;
	*) fail "list header lacks $col: $header" ;;
	esac
done
date_re='[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}'
printf '%s\n' "$OUT" | grep -qE "^1 +s1 +$date_re +64 MiB " ||
	fail "no row for s1 with a date and the virtual size"
printf '%s\n' "$OUT" | grep -qE '^2 +s2 ' || fail "no row for s2"

# The same numbers in JSON: ids in order, the virtual size, what each maps,
# a date of today (local time as qemu-img prints it, and seconds).
expect_ok snapshot list --json "$img"
printf '%s' "$OUT" >"$TMP/list.json"
"$PYTHON" - "$TMP/list.json" "$(date +%s)" <<'PY' || fail "snapshot list JSON"
import json, sys, time
snaps = json.load(open(sys.argv[1]))
now = int(sys.argv[2])
M = 1 << 20
assert [s['id'] for s in snaps] == [1, 2], snaps
assert [s['name'] for s in snaps] == ['s1', 's2'], snaps
for s in snaps:
    assert s['virtual_size'] == 64 * M, s
    assert s['referenced_bytes'] == 4 * M, s
    assert 0 < s['unique_bytes'], s
    assert now - 600 <= s['date_sec'] <= now + 1, s
    assert 0 <= s['date_nsec'] < 10**9, s
    assert s['date'] == time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(s['date_sec'])), s
# s1 alone holds the 0x11 copy of the second MiB; s2 shares all its data
# with the disk.
assert snaps[0]['unique_bytes'] >= M, snaps[0]
assert snaps[1]['unique_bytes'] < M, snaps[1]
PY

# info shows the same list; its JSON carries it as "snapshots".
expect_ok info "$img"
expect_out "Snapshot list:"
printf '%s\n' "$OUT" | grep -qE '^1 +s1 ' || fail "info lacks s1"
expect_ok info --json "$img"
[ "$(json_expr '[s["name"] for s in d["snapshots"]]')" = "['s1', 's2']" ] ||
	fail "info JSON snapshots"
[ "$(json_expr '(d["backing_file"], d["chain_depth"])')" = "(None, 0)" ] ||
	fail "info JSON of an image without a backing file"

# diff: the ranges that changed, in text and JSON; TO omitted is the disk.
expect_ok snapshot diff "$img" s1 s2
want=$(printf 'Offset          Length\n0x100000        0x100000')
[ "$OUT" = "$want" ] || fail "diff s1 s2: $OUT"
expect_ok snapshot diff --json "$img" s1 s2
[ "$OUT" = '[{ "offset": 1048576, "length": 1048576 }]' ] || fail "diff --json s1 s2: $OUT"
expect_ok snapshot diff --json "$img" s2
[ "$OUT" = '[{ "offset": 8388608, "length": 1048576 }]' ] || fail "diff --json s2: $OUT"
expect_ok snapshot diff --output=json "$img" s1
[ "$(json_expr '[(e["offset"] >> 20, e["length"] >> 20) for e in d]')" = "[(1, 1), (8, 1)]" ] ||
	fail "diff s1 to the disk: $OUT"
expect_ok snapshot diff "$img" s1
expect_out "0x800000        0x100000"
expect_ok snapshot diff --json "$img" s2 s1
[ "$OUT" = '[{ "offset": 1048576, "length": 1048576 }]' ] || fail "diff s2 s1: $OUT"
expect_ok snapshot diff --json "$img" s1 s1
[ "$OUT" = "[]" ] || fail "diff of a snapshot with itself: $OUT"
expect_ok snapshot diff "$img" s1 s1
[ -z "$OUT" ] || fail "text diff without changes printed: $OUT"

# revert restores the data; the snapshots stay.
expect_ok snapshot revert "$img" s1
expect_ok io -c 'read -P 0x11 0 4M' -c 'read -P 0 4M 60M' "$img"
expect_ok snapshot revert "$img" s2
expect_ok io -c 'read -P 0x11 0 1M' -c 'read -P 0x22 1M 1M' -c 'read -P 0x11 2M 2M' \
	-c 'read -P 0 8M 1M' "$img"
expect_ok snapshot list --json "$img"
[ "$(json_expr 'len(d)')" -eq 2 ] || fail "revert changed the snapshot list"
expect_ok snapshot diff --json "$img" s2
[ "$OUT" = "[]" ] || fail "the disk differs from s2 right after reverting to it: $OUT"
expect_ok check "$img"

# Refusals name the snapshot and leave the image as it was.
before=$(sha "$img")
for cmd in revert delete; do
	expect_rc 1 snapshot "$cmd" "$img" nope
	expect_one_line_error "$img: no snapshot named 'nope'"
done
expect_rc 1 snapshot diff "$img" nope
expect_one_line_error "no snapshot named 'nope'"
expect_rc 1 snapshot diff "$img" s1 nope
expect_one_line_error "no snapshot named 'nope'"
[ -z "$OUT" ] || fail "a failed diff printed: $OUT"
expect_rc 1 snapshot create "$img" s1
expect_one_line_error "$img: snapshot 's1' exists"
expect_rc 1 snapshot create "$img" ""
expect_one_line_error "1 to 255 bytes"
expect_rc 1 snapshot create "$img" "$(printf 'x%.0s' $(seq 256))"
expect_one_line_error "1 to 255 bytes"
expect_rc 1 snapshot list "$TMP/missing.vd"
expect_one_line_error "$TMP/missing.vd"
[ "$(sha "$img")" = "$before" ] || fail "a refused snapshot command changed the image"

# Usage errors exit 2 with one line; --help works at every level.
for args in "" "frob $img" "-Z" "create $img" "create" "diff $img" "list $img extra" \
	"create --json $img x" "revert -U $img s1" "list --output=xml $img" "list --frob $img"; do
	# shellcheck disable=SC2086 # the words are meant to split
	expect_rc 2 snapshot $args
	expect_one_line_error
done
for sub in "" create list revert delete diff; do
	# shellcheck disable=SC2086
	expect_ok snapshot $sub --help
	expect_out "Usage: vdisk snapshot create FILE NAME"
done
expect_ok help snapshot
expect_out "vdisk snapshot diff [--json] [-U] FILE FROM [TO]"

# delete frees what only the snapshot held: 8M of data the disk has since
# overwritten.  The file's blocks on disk drop by about that much.
del=$TMP/delete.vd
expect_ok create -q "$del" 32M
expect_ok io -q -c 'write -P 0x44 0 8M' -c flush "$del"
expect_ok snapshot create "$del" keep
expect_ok io -q -c 'write -P 0x55 0 8M' "$del"
expect_ok snapshot list --json "$del"
unique=$(json_expr 'd[0]["unique_bytes"]')
[ "$unique" -ge $((8 << 20)) ] || fail "the snapshot holds 8M alone; it reports $unique bytes"
used_before=$(disk_bytes "$del")
expect_ok snapshot delete "$del" keep
used_after=$(disk_bytes "$del")
[ "$used_after" -le $((used_before - (7 << 20))) ] ||
	fail "deleting the snapshot freed $((used_before - used_after)) bytes, want about 8M"
expect_ok snapshot list "$del"
[ -z "$OUT" ] || fail "deleted snapshot still listed: $OUT"
expect_ok io -c 'read -P 0x55 0 8M' -c 'read -P 0 8M 24M' "$del"
expect_ok info --json "$del"
[ "$(json_get allocated_bytes)" -eq $((8 << 20)) ] || fail "allocated after delete"
expect_ok check "$del"

# Deleting one of several keeps the others and their data.
expect_ok snapshot delete "$img" s1
expect_ok snapshot list --json "$img"
[ "$(json_expr '[(s["id"], s["name"]) for s in d]')" = "[(2, 's2')]" ] ||
	fail "list after deleting s1"
expect_ok io -q -c 'write -P 0x66 0 4M' "$img"
expect_ok snapshot revert "$img" s2
expect_ok io -c 'read -P 0x11 0 1M' -c 'read -P 0x22 1M 1M' "$img"
expect_ok check "$img"
echo "snapshot: ok"
