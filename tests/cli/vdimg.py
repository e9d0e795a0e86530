#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# vdimg.py: reads and pokes the on-disk structures of a vdisk image for the
# tests in tests/cli (layout: vdisk/format.h, docs/vdisk-format.md), keeping
# the header's CRC-32C right unless told not to.
#
#   vdimg.py FILE get FIELD
#   vdimg.py FILE set FIELD VALUE [--no-crc]
#   vdimg.py FILE crc-ok                    exit 0 if the stored crc matches
#   vdimg.py FILE l2-get GUEST_CLUSTER
#   vdimg.py FILE l2-set GUEST_CLUSTER VALUE
#   vdimg.py FILE ref-set HOST_CLUSTER VALUE
#   vdimg.py FILE rt-get INDEX              refcount table entry (-1: the last)
#   vdimg.py FILE rt-set INDEX VALUE
import struct
import sys

FIELDS = {
    # name: (offset, struct format)
    'magic': (0, '8s'),
    'version': (8, '<I'),
    'header_bytes': (12, '<I'),
    'incompat': (16, '<Q'),
    'compat': (24, '<Q'),
    'autoclear': (32, '<Q'),
    'cluster_bits': (40, '<I'),
    'l1_entries': (44, '<I'),
    'size': (48, '<Q'),
    'l1_offset': (56, '<Q'),
    'refcount_table_offset': (64, '<Q'),
    'refcount_table_clusters': (72, '<I'),
    'journal_bytes': (76, '<I'),
    'journal_offset': (80, '<Q'),
    'crc32c': (508, '<I'),
}
OFFSET_MASK = 0x00fffffffffffe00


def crc32c(data):
    """CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init and
    final xor ~0."""
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def read_at(f, off, fmt):
    f.seek(off)
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        sys.exit('%s: short read at %d' % (f.name, off))
    return struct.unpack(fmt, data)[0]


def write_at(f, off, fmt, value):
    f.seek(off)
    f.write(struct.pack(fmt, value))


def fix_crc(f):
    f.seek(0)
    hdr = f.read(508)
    write_at(f, 508, '<I', crc32c(hdr))


def l2_entry_offset(f, gc):
    bits = read_at(f, 40, '<I')
    l1 = read_at(f, 56, '<Q')
    per_table = (1 << bits) // 8
    l1e = read_at(f, l1 + (gc // per_table) * 8, '<Q') & OFFSET_MASK
    if not l1e:
        sys.exit('guest cluster %d has no L2 table' % gc)
    return l1e + (gc % per_table) * 8


def refcount_offset(f, hc):
    bits = read_at(f, 40, '<I')
    rt = read_at(f, 64, '<Q')
    per_block = (1 << bits) // 2
    blk = read_at(f, rt + (hc // per_block) * 8, '<Q')
    if not blk:
        sys.exit('host cluster %d has no refcount block' % hc)
    return blk + (hc % per_block) * 2


def main():
    path, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(path, 'r+b') as f:
        if cmd == 'get':
            off, fmt = FIELDS[args[0]]
            v = read_at(f, off, fmt)
            print(v.decode('latin-1') if isinstance(v, bytes) else v)
        elif cmd == 'set':
            off, fmt = FIELDS[args[0]]
            value = args[1].encode() if fmt.endswith('s') else int(args[1], 0)
            write_at(f, off, fmt, value)
            if '--no-crc' not in args:
                fix_crc(f)
        elif cmd == 'crc-ok':
            f.seek(0)
            hdr = f.read(508)
            sys.exit(0 if crc32c(hdr) == read_at(f, 508, '<I') else 1)
        elif cmd == 'l2-get':
            print(read_at(f, l2_entry_offset(f, int(args[0], 0)), '<Q'))
        elif cmd == 'l2-set':
            write_at(f, l2_entry_offset(f, int(args[0], 0)), '<Q', int(args[1], 0))
        elif cmd == 'ref-set':
            write_at(f, refcount_offset(f, int(args[0], 0)), '<H', int(args[1], 0))
        elif cmd in ('rt-get', 'rt-set'):
            rt = read_at(f, 64, '<Q')
            entries = read_at(f, 72, '<I') * (1 << read_at(f, 40, '<I')) // 8
            i = int(args[0], 0) % entries
            if cmd == 'rt-get':
                print(read_at(f, rt + i * 8, '<Q'))
            else:
                write_at(f, rt + i * 8, '<Q', int(args[1], 0))
        else:
            sys.exit('unknown command ' + cmd)


main()
