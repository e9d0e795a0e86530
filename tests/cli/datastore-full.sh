#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A full datastore: on a 4 MiB tmpfs this test mounts (and unmounts at the
# end), an import and a preallocated create that run out of space fail
# with one line naming ENOSPC, and leave neither a partial image nor a
# manifest entry; the manifest stays whole and the datastore usable.
# Skips (77) where mounting is not permitted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3 mount umount

export VDISK_DATASTORES=$TMP/registry.json
mnt=$TMP/small
mkdir "$mnt"
if ! mount -t tmpfs -o size=4M tmpfs "$mnt" 2>/dev/null; then
	echo "SKIP: cannot mount a tmpfs here" >&2
	exit 77
fi
cleanup()
{
	umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

# Entries of datastore full, as a Python list of paths.
entries()
{
	expect_ok ls --json full
	printf '%s' "$OUT" | "$PYTHON" -c 'import json, sys; print([e["path"] for e in json.load(sys.stdin)])'
}

expect_ok datastore create full "$mnt/ds"
expect_ok create -q full:small.vd 1M
head -c 16M /dev/urandom >"$TMP/big.raw"

expect_rc 1 import "$TMP/big.raw" full:big.vd
expect_one_line_error "No space left on device"
[ ! -e "$mnt/ds/big.vd" ] || fail "a failed import left a partial image"
[ "$(entries)" = "['small.vd']" ] || fail "a failed import left an entry"

expect_rc 1 create --preallocation=full full:fat.vd 64M
expect_one_line_error "No space left on device"
[ ! -e "$mnt/ds/fat.vd" ] || fail "a failed create left a partial image"
[ "$(entries)" = "['small.vd']" ] || fail "a failed create left an entry"

"$PYTHON" -c 'import json, sys; json.load(open(sys.argv[1]))' "$mnt/ds/.vdisk-datastore.json" ||
	fail "the manifest is not whole"
ls -a "$mnt/ds" | grep -q '\.tmp$' && fail "a temporary manifest was left behind"
# Still usable once the space is back.
head -c 1M /dev/urandom >"$TMP/one.raw"
expect_ok import "$TMP/one.raw" full:one.vd
[ "$(entries)" = "['one.vd', 'small.vd']" ] || fail "import after ENOSPC"
expect_ok datastore remove --force full
echo "datastore-full: all checks passed"
