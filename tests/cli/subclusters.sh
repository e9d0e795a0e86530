#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Subclusters: create --subclusters (and -o subclusters=on), info showing
# them (text and JSON), a clone whose 4 KiB writes allocate 4 KiB, check
# clean, snapshots and their diff per subcluster, convert --subclusters,
# resize, flatten and commit keeping the guest's view.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3

img=$TMP/sc.vd
expect_ok create --subclusters "$img" 16M
want="Formatting '$img', fmt=vdisk size=16777216"
[ "$OUT" = "$want cluster_size=131072 preallocation=off subclusters=on" ] ||
	fail "Formatting line: $OUT"
expect_ok info "$img"
expect_out "cluster_size: 131072"
expect_out "subcluster_size: 4096 (32 per cluster)"
expect_out "incompatible features: 0x2 (subclusters)"
expect_ok info --json "$img"
[ "$(json_get subcluster_size)" -eq 4096 ] || fail "JSON subcluster_size"
[ "$(json_get incompatible_features)" -eq 2 ] || fail "JSON incompatible_features"

# An image without them says 0 in JSON and nothing in text.
plain=$TMP/plain.vd
expect_ok create -q "$plain" 1M
expect_ok info --json "$plain"
[ "$(json_get subcluster_size)" -eq 0 ] || fail "plain JSON subcluster_size"
expect_ok info "$plain"
case $OUT in
*subcluster*) fail "a plain image shows subclusters" ;;
esac

# Too small a cluster, and -o spelling.
expect_rc 1 create -q --subclusters -c 64K "$TMP/bad.vd" 1M
expect_one_line_error "subclusters"
[ ! -e "$TMP/bad.vd" ] || fail "a refused create left a file"
expect_ok create -q -o subclusters=on,cluster_size=256K "$TMP/o.vd" 1M
expect_ok info --json "$TMP/o.vd"
[ "$(json_get subcluster_size)" -eq 8192 ] || fail "-o subclusters=on with 256K clusters"
expect_rc 2 create -q -o subclusters=maybe "$TMP/o2.vd" 1M

# Writes fill only the subclusters they touch.
expect_ok io -q -c 'write -P 0x22 132k 4k' -c 'write -P 0x23 201216 512' "$img"
expect_ok info --json "$img"
[ "$(json_get allocated_bytes)" -eq 8192 ] || fail "allocated after two small writes"
expect_ok io -c 'read -P 0 128k 4k' -c 'read -P 0x22 132k 4k' -c 'read -P 0 136k 60k' \
	-c 'read -P 0 196k 512' -c 'read -P 0x23 201216 512' -c 'read -P 0 201728 3k' "$img"
expect_ok map "$img"
expect_out "0x21000         0x1000"
expect_ok check "$img"

# A clone of a fully written template: a 4 KiB write allocates 4 KiB, the
# template's bytes read around it, and the template does not change.
base=$TMP/base.vd
expect_ok create -q "$base" 8M
expect_ok io -q -c 'write -P 0x11 0 8M' "$base"
base_sha=$(sha "$base")
clone=$TMP/clone.vd
expect_ok create -q --subclusters -b base.vd "$clone"
expect_ok io -q -c 'write -P 0x33 1M 4k' -c 'write -P 0x34 3146240 512' "$clone"
expect_ok info --json "$clone"
[ "$(json_get allocated_bytes)" -eq 8192 ] || fail "clone allocated $(json_get allocated_bytes)"
expect_ok io -c 'read -P 0x11 0 1M' -c 'read -P 0x33 1M 4k' -c 'read -P 0x11 1052672 2093056' \
	-c 'read -P 0x11 3M 512' -c 'read -P 0x34 3146240 512' -c 'read -P 0x11 3146752 3583k' \
	"$clone"
[ "$(sha "$base")" = "$base_sha" ] || fail "writing the clone changed the template"
expect_ok io -q -c 'discard 1M 4k' -c 'write -z 3M 4k' "$clone"
expect_ok io -c 'read -P 0 1M 4k' -c 'read -P 0x11 1052672 4k' -c 'read -P 0 3M 4k' "$clone"
expect_ok check "$clone"

# Snapshots: a write after one copies the cluster; revert brings it back.
expect_ok io -q -c 'write -P 0x44 2M 4k' "$clone"
expect_ok snapshot create "$clone" s1
expect_ok io -q -c 'write -P 0x55 2098176 512' "$clone"
expect_ok io -c 'read -P 0x44 2M 1k' -c 'read -P 0x55 2098176 512' -c 'read -P 0x44 2098688 2560' \
	-c 'read -P 0x11 2101248 124k' "$clone"
expect_ok check "$clone"
# diff names the subcluster that changed, not the 128 KiB cluster
expect_ok snapshot diff --json "$clone" s1
[ "$OUT" = '[{ "offset": 2097152, "length": 4096 }]' ] || fail "diff s1 to the disk: $OUT"
expect_ok snapshot revert "$clone" s1
expect_ok io -c 'read -P 0x44 2M 4k' -c 'read -P 0x11 2101248 124k' "$clone"
expect_ok check "$clone"

expect_ok snapshot diff --json "$clone" s1
[ "$OUT" = "[]" ] || fail "diff after the revert: $OUT"

expect_ok snapshot delete "$clone" s1
expect_ok check "$clone"

# Resize works: grown, written past the old end, shrunk back.
expect_ok resize "$clone" 16M
expect_ok io -q -c 'write -P 0x66 12M 4k' "$clone"
expect_ok io -c 'read -P 0 8M 4M' -c 'read -P 0x66 12M 4k' -c 'read -P 0x11 0 1M' "$clone"
expect_ok io -q -c 'write -z 8M 8M' "$clone"
expect_ok check "$clone"

# convert --subclusters keeps them (and copies the chain's view).
expect_ok convert --subclusters "$clone" "$TMP/conv.vd"
expect_ok info --json "$TMP/conv.vd"
[ "$(json_get subcluster_size)" -eq 4096 ] || fail "convert --subclusters"
expect_ok io -c 'read -P 0x11 0 1M' -c 'read -P 0 1M 4k' -c 'read -P 0x44 2M 4k' "$TMP/conv.vd"
expect_ok check "$TMP/conv.vd"
expect_rc 2 convert --subclusters -O raw "$clone" "$TMP/conv.raw"

# Flatten and commit keep the guest's view (checked by sha of a raw copy).
expect_ok convert -O raw "$clone" "$TMP/view.raw"
view_sha=$(sha "$TMP/view.raw")
cp "$clone" "$TMP/flat.vd"
expect_ok flatten "$TMP/flat.vd"
expect_ok info --json "$TMP/flat.vd"
[ "$(json_get backing_file)" = None ] || fail "flatten left a backing file"
expect_ok convert -O raw "$TMP/flat.vd" "$TMP/flat.raw"
[ "$(sha "$TMP/flat.raw")" = "$view_sha" ] || fail "flatten changed the guest's view"
expect_ok check "$TMP/flat.vd"
expect_ok commit "$clone"
expect_ok info --json "$clone"
[ "$(json_get allocated_bytes)" -eq 0 ] || fail "commit left data in the clone"
expect_ok convert -O raw "$clone" "$TMP/commit.raw"
[ "$(sha "$TMP/commit.raw")" = "$view_sha" ] || fail "commit changed the guest's view"
expect_ok check "$clone"
expect_ok check "$base"

# Cold migration to another datastore keeps the feature, the data and
# the snapshots.
export VDISK_DATASTORES=$TMP/registry.json
expect_ok datastore create a "$TMP/dsa"
expect_ok datastore create b "$TMP/dsb"
expect_ok create -q --subclusters a:vm/m.vd 8M
expect_ok io -q -c 'write -P 0x71 4k 4k' -c 'write -P 0x72 1049088 512' a:vm/m.vd
expect_ok snapshot create a:vm/m.vd s
expect_ok io -q -c 'write -P 0x73 4608 512' a:vm/m.vd
expect_ok migrate a:vm/m.vd --to b
expect_ok info --json b:vm/m.vd
[ "$(json_get subcluster_size)" -eq 4096 ] || fail "migrate lost the subclusters"
expect_ok io -c 'read -P 0 0 4k' -c 'read -P 0x71 4k 512' -c 'read -P 0x73 4608 512' \
	-c 'read -P 0x71 5k 3k' -c 'read -P 0x72 1049088 512' b:vm/m.vd
expect_ok snapshot diff --json b:vm/m.vd s
[ "$OUT" = '[{ "offset": 4096, "length": 4096 }]' ] || fail "diff after migrate: $OUT"
expect_ok check b:vm/m.vd

# A clone without subclusters of a template with them reads through.
expect_ok create -q -b sc.vd "$TMP/c2.vd"
expect_ok io -c 'read -P 0x22 132k 4k' -c 'read -P 0 136k 60k' -c 'read -P 0x23 201216 512' \
	"$TMP/c2.vd"
echo "subclusters: ok"
