#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# qcow2img.py: reads, pokes and damages qcow2 images for tests/cli/qcow2.sh
# (layout: QEMU's docs/interop/qcow2.txt; every number big-endian).
#
#   qcow2img.py FILE stats                 counts of each kind of L2 entry
#   qcow2img.py FILE set OFFSET FMT VALUE  packs VALUE with struct FMT ('>Q')
#   qcow2img.py FILE hide-ext TYPE         renames a header extension so
#                                          readers skip it
#   qcow2img.py FILE fuzz OUTDIR COUNT SEED  writes COUNT damaged copies
import os
import random
import struct
import sys

OFFSET_MASK = 0x00fffffffffffe00
ZERO = 1
COMPRESSED = 1 << 62
COPIED = 1 << 63

# Header fields: (offset, struct format).
FIELDS = [
    (4, '>I'),    # version
    (8, '>Q'),    # backing_file_offset
    (16, '>I'),   # backing_file_size
    (20, '>I'),   # cluster_bits
    (24, '>Q'),   # size
    (32, '>I'),   # crypt_method
    (36, '>I'),   # l1_size
    (40, '>Q'),   # l1_table_offset
    (48, '>Q'),   # refcount_table_offset
    (56, '>I'),   # refcount_table_clusters
    (60, '>I'),   # nb_snapshots
    (64, '>Q'),   # snapshots_offset
    (72, '>Q'),   # incompatible_features
    (96, '>I'),   # refcount_order
    (100, '>I'),  # header_length
]


def header(data):
    """cluster_bits, l1_size, l1_offset; zeros for a file cut too short."""
    if len(data) < 48:
        return 0, 0, 0
    return (struct.unpack_from('>I', data, 20)[0], struct.unpack_from('>I', data, 36)[0],
            struct.unpack_from('>Q', data, 40)[0])


def l2_tables(data):
    """Yields the file offset of each L2 table the active L1 table names
    (those entries of it that lie inside the file)."""
    cluster_bits, l1_size, l1_offset = header(data)
    for i in range(l1_size):
        if l1_offset + 8 * i + 8 > len(data):
            break
        entry = struct.unpack_from('>Q', data, l1_offset + 8 * i)[0]
        if entry & OFFSET_MASK:
            yield entry & OFFSET_MASK


def stats(path):
    data = open(path, 'rb').read()
    cluster_bits = header(data)[0]
    counts = {'data': 0, 'zero_plain': 0, 'zero_alloc': 0, 'compressed': 0}
    for table in l2_tables(data):
        for j in range(1 << (cluster_bits - 3)):
            e = struct.unpack_from('>Q', data, table + 8 * j)[0]
            if e & COMPRESSED:
                counts['compressed'] += 1
            elif e & ZERO:
                counts['zero_alloc' if e & OFFSET_MASK else 'zero_plain'] += 1
            elif e & OFFSET_MASK:
                counts['data'] += 1
    print(' '.join('%s=%d' % kv for kv in counts.items()))


def poke(path, offset, fmt, value):
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(struct.pack(fmt, value))


def hide_ext(path, ext_type):
    data = bytearray(open(path, 'rb').read())
    version = struct.unpack_from('>I', data, 4)[0]
    pos = 72 if version == 2 else struct.unpack_from('>I', data, 100)[0]
    while pos + 8 <= len(data):
        t, n = struct.unpack_from('>II', data, pos)
        if t == 0:
            break
        if t == ext_type:
            poke(path, pos, '>I', 0x0badf00d)
            return
        pos += 8 + (n + 7) // 8 * 8
    sys.exit('extension %#x not found' % ext_type)


def interesting(rng, file_bytes, cluster):
    return rng.choice([
        0, 1, 7, 8, 9, 21, 22, 63, 64, 0xff, 0xffff, 0xffffffff, 0x7fffffff,
        0xffffffffffffffff, 1 << 63, 1 << 62, 1 << 56, file_bytes,
        file_bytes - 8, file_bytes + cluster, file_bytes // cluster * cluster,
        cluster, cluster + 8, rng.getrandbits(64), rng.getrandbits(32),
        rng.randrange(0, max(file_bytes, 1)),
    ])


def mutate(data, rng):
    """Damages 'data' (a bytearray) in one of several ways, in place."""
    cluster_bits, l1_size, l1_offset = header(data)
    cluster = 1 << min(max(cluster_bits, 9), 21)
    n = len(data)
    how = rng.randrange(6) if n >= 104 else 4 + rng.randrange(2)
    if how == 0:  # a header field set to an edge value
        off, fmt = rng.choice(FIELDS)
        bits = struct.calcsize(fmt) * 8
        struct.pack_into(fmt, data, off, interesting(rng, n, cluster) % (1 << bits))
    elif how == 1:  # bytes flipped in the metadata near the start
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(min(n, 8 * cluster))] ^= 1 << rng.randrange(8)
    elif how == 2:  # an L1 entry
        if l1_size and l1_offset + 8 * l1_size <= n:
            i = rng.randrange(l1_size)
            struct.pack_into('>Q', data, l1_offset + 8 * i, interesting(rng, n, cluster))
    elif how == 3:  # an L2 entry: odd offsets and flags
        tables = [t for t in l2_tables(data) if t + cluster <= n]
        if not 9 <= cluster_bits <= 21:
            tables = []
        if tables:
            t = rng.choice(tables)
            j = rng.randrange(cluster // 8)
            v = interesting(rng, n, cluster) & OFFSET_MASK
            v |= rng.choice([0, ZERO, COMPRESSED, COPIED, COPIED | ZERO, 0x1fe])
            struct.pack_into('>Q', data, t + 8 * j, v)
    elif how == 4:  # cut short
        del data[rng.randrange(n):]
    else:  # random bytes anywhere
        for _ in range(rng.randint(1, 32)):
            data[rng.randrange(n)] = rng.randrange(256)


def fuzz(path, outdir, count, seed):
    rng = random.Random(seed)
    base = open(path, 'rb').read()
    name = os.path.basename(path)
    for i in range(count):
        data = bytearray(base)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            if data:
                mutate(data, rng)
        with open(os.path.join(outdir, '%s.%04d' % (name, i)), 'wb') as f:
            f.write(data)


def main():
    path, cmd = sys.argv[1], sys.argv[2]
    if cmd == 'stats':
        stats(path)
    elif cmd == 'set':
        poke(path, int(sys.argv[3], 0), sys.argv[4], int(sys.argv[5], 0))
    elif cmd == 'hide-ext':
        hide_ext(path, int(sys.argv[3], 0))
    elif cmd == 'fuzz':
        fuzz(path, sys.argv[3], int(sys.argv[4]), int(sys.argv[5], 0))
    else:
        sys.exit('unknown command ' + cmd)


if __name__ == '__main__':
    main()
