/* SPDX-License-Identifier: MIT */
/* format.h: the on-disk structures of a vdisk image, as docs/vdisk-format.md
 * specifies them.  Everything on disk is little-endian; structs here are the
 * exact byte layout and are converted only where they are read or written.
 * Internal to libvdisk and its tests. */
#ifndef VD_FORMAT_H
#define VD_FORMAT_H

#include <stdint.h>

#define VD_MAGIC "VDISKIMG"
#define VD_VERSION 1u
/* The header fills one 512-byte sector so that writing it is atomic. */
#define VD_HEADER_BYTES 512u
/* The backing file name lives in cluster 0 right after the header. */
#define VD_BACKING_NAME_OFFSET 512u
#define VD_BACKING_NAME_MAX 1023u

struct vd_disk_header {
	char magic[8];                   /* 0-7     "VDISKIMG" */
	uint32_t version;                /* 8-11    1 */
	uint32_t header_bytes;           /* 12-15   512 */
	uint64_t incompat_features;      /* 16-23 */
	uint64_t compat_features;        /* 24-31 */
	uint64_t autoclear_features;     /* 32-39 */
	uint32_t cluster_bits;           /* 40-43   12..21 */
	uint32_t l1_entries;             /* 44-47 */
	uint64_t size_bytes;             /* 48-55   virtual size */
	uint64_t l1_offset;              /* 56-63 */
	uint64_t refcount_table_offset;  /* 64-71 */
	uint32_t refcount_table_clusters;/* 72-75 */
	uint32_t journal_bytes;          /* 76-79 */
	uint64_t journal_offset;         /* 80-87 */
	uint64_t journal_seq;            /* 88-95   seq of the first valid txn */
	uint64_t snapshot_table_offset;  /* 96-103  0: none */
	uint32_t snapshot_table_bytes;   /* 104-107 */
	uint32_t snapshot_count;         /* 108-111 */
	uint32_t backing_name_bytes;     /* 112-115 0: no backing file */
	uint32_t reserved0;              /* 116-119 */
	uint64_t create_time_ns;         /* 120-127 */
	uint8_t reserved[380];           /* 128-507 zero */
	uint32_t crc32c;                 /* 508-511 over bytes 0-507 */
};
_Static_assert(sizeof(struct vd_disk_header) == VD_HEADER_BYTES, "header is one sector");

/* L1 entry: offset of an L2 table (cluster aligned), 0 = none. */
#define VD_L1_OFFSET_MASK 0x00fffffffffffe00ull
#define VD_L1_RESERVED_MASK (~VD_L1_OFFSET_MASK)

/* L2 entry: host offset of a data cluster in bits 9-55, flags below. */
#define VD_L2_OFFSET_MASK 0x00fffffffffffe00ull
#define VD_L2_ZERO 0x1ull /* reads as zeros; offset must be 0 */
#define VD_L2_RESERVED_MASK (~(VD_L2_OFFSET_MASK | VD_L2_ZERO))

/* Extended L2 entries (incompatible feature SUBCLUSTERS): 16 bytes per
 * guest cluster.  Word 0 is the host offset in bits 9-55, everything else
 * reserved (no ZERO flag: zeros are per subcluster).  Word 1 holds two
 * bitmaps over the 32 subclusters of c / 32 bytes: bits 0-31 "allocated"
 * (reads the host cluster at offset + i * c / 32), bits 32-63 "zero".
 * Neither bit: unallocated (the backing chain, or zeros).  Both: corrupt.
 * An entry with offset 0 has no allocated bit. */
#define VD_SC_PER_CLUSTER 32u
#define VD_L2_EXT_RESERVED_MASK (~VD_L2_OFFSET_MASK)
#define VD_SC_ALLOC(bm) ((uint32_t)(bm))
#define VD_SC_ZERO(bm) ((uint32_t)((bm) >> 32))
#define VD_SC_BITMAP(alloc, zero) ((uint64_t)(alloc) | ((uint64_t)(zero) << 32))
#define VD_SC_ALL 0xffffffffu
/* Subclusters are at least 4 KiB (128 KiB clusters), so that every
 * subcluster I/O is a whole number of the 4 KiB blocks O_DIRECT needs. */
#define VD_SC_MIN_CLUSTER_BITS 17u

/* Refcounts are 16-bit, one per host cluster, in refcount blocks of one
 * cluster; the refcount table holds the blocks' offsets (0: all free). */
#define VD_REFCOUNT_MAX 0xffffu

/* Journal transaction: a header, records, then zero padding to a sector.
 * seq must equal the header's journal_seq for the first transaction and
 * rise by one for each next one; a bad magic, seq or crc ends the journal. */
#define VD_JTXN_MAGIC 0x54584a56u /* "VJXT" */
struct vd_jtxn_header {
	uint32_t magic;
	uint32_t nrecords;
	uint64_t seq;
	uint32_t txn_bytes;   /* header + records, before padding */
	uint32_t crc32c;      /* over txn_bytes with this field zero */
	uint64_t reserved;
};
_Static_assert(sizeof(struct vd_jtxn_header) == 32, "txn header size");

/* A record: after replay, bytes [offset, offset+len) of the file hold data. */
struct vd_jrecord {
	uint64_t offset;
	uint32_t len;         /* data bytes, a multiple of 8, not 0 */
	uint32_t reserved;
	/* uint8_t data[len]; */
};
_Static_assert(sizeof(struct vd_jrecord) == 16, "record header size");

/* Snapshot table entry, fixed part; the name follows, padded to 8. */
struct vd_disk_snapshot {
	uint64_t l1_offset;
	uint32_t l1_entries;
	uint32_t name_bytes;  /* 1..255 */
	uint64_t id;
	uint64_t date_ns;
	uint64_t size_bytes;  /* virtual size when taken */
	uint32_t flags;       /* VD_SNAP_* */
	uint32_t reserved;
};
/* Being deleted: hidden, and its L1 is cleared table by table; a writer
 * that opens the image finishes the job. */
#define VD_SNAP_DELETING 0x1u
#define VD_SNAP_KNOWN_FLAGS VD_SNAP_DELETING
#define VD_SNAP_NAME_MAX 255u
_Static_assert(sizeof(struct vd_disk_snapshot) == 48, "snapshot entry size");

#endif
