#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vdisk map: data, zero and unallocated ranges after writes, discards and
# write-zeroes, in text and JSON; JSON ranges tile the disk and are merged.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3

img=$TMP/map.vd
expect_ok create -q "$img" 4M

# A fresh image is one unallocated range.
expect_ok map --json "$img"
[ "$OUT" = '[{ "start": 0, "length": 4194304, "state": "unallocated", "present": false, "data": false, "zero": true }]' ] ||
	fail "fresh map: $OUT"
expect_ok map "$img"
expect_out "Offset          Length          Mapped to       State"
expect_out "0               0x400000        -               unallocated"

expect_ok io -c 'write -P 1 0 128k' -c 'write -P 2 1M 64k' -c 'write -P 3 2M 256k' \
	-c 'discard 2M 64k' -c 'zero 2176k 64k' "$img"

expect_ok map --json "$img"
printf '%s' "$OUT" >"$TMP/map.json"
"$PYTHON" - "$TMP/map.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
size = 4 << 20
K = 1024
pos = 0
for e in m:
    assert e['start'] == pos, ('gap or overlap', e)
    assert e['length'] > 0, e
    assert e['state'] in ('data', 'zero', 'unallocated'), e
    assert e['data'] == (e['state'] == 'data'), e
    assert e['zero'] == (e['state'] != 'data'), e
    assert ('offset' in e) == (e['state'] == 'data'), e
    pos += e['length']
assert pos == size, ('map does not cover the disk', pos)
for a, b in zip(m, m[1:]):
    same = a['state'] == b['state']
    if same and a['state'] == 'data':
        same = a['offset'] + a['length'] == b['offset']
    assert not same, ('unmerged neighbours', a, b)


def state_at(off):
    for e in m:
        if e['start'] <= off < e['start'] + e['length']:
            return e['state']


def host_at(off):
    for e in m:
        if e['start'] <= off < e['start'] + e['length']:
            return e['offset'] + off - e['start']


expect = [(0, 128 * K, 'data'), (128 * K, 1024 * K, 'hole'),
          (1024 * K, 1088 * K, 'data'), (1088 * K, 2048 * K, 'hole'),
          (2048 * K, 2112 * K, 'hole'), (2112 * K, 2176 * K, 'data'),
          (2176 * K, 2240 * K, 'hole'), (2240 * K, 2304 * K, 'data'),
          (2304 * K, size, 'hole')]
for start, end, want in expect:
    for off in range(start, end, 64 * K):
        got = state_at(off)
        if want == 'data':
            assert got == 'data', (off, got)
        else:
            assert got in ('zero', 'unallocated'), (off, got)
# Data ranges map to distinct, cluster-aligned places of the file.
hosts = [host_at(o) for o in (0, 64 * K, 1024 * K, 2112 * K, 2240 * K)]
assert len(set(hosts)) == 5, hosts
assert all(h % (64 * K) == 0 for h in hosts), hosts
PY

# The text map lists the same ranges, with host offsets for data.
expect_ok map "$img"
expect_out "Offset          Length          Mapped to       State"
"$PYTHON" - "$TMP/map.json" "$TMP/.out" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().splitlines()[1:]
assert len(lines) == len(m), (len(lines), len(m))
for e, line in zip(m, lines):
    f = line.split()
    assert int(f[0], 0) == e['start'] and int(f[1], 0) == e['length'], (e, line)
    assert f[3] == e['state'], (e, line)
    if e['state'] == 'data':
        assert int(f[2], 0) == e['offset'], (e, line)
    else:
        assert f[2] == '-', line
PY

# Preallocated metadata maps the whole disk as data.
expect_ok create -q --preallocation=metadata "$TMP/pre.vd" 1M
expect_ok map --json "$TMP/pre.vd"
printf '%s' "$OUT" | "$PYTHON" -c '
import json, sys
m = json.load(sys.stdin)
assert all(e["state"] == "data" for e in m), m
assert sum(e["length"] for e in m) == 1 << 20, m'
expect_rc 1 map "$TMP/nothing.vd"
expect_one_line_error "$TMP/nothing.vd"
echo "map: ok"
