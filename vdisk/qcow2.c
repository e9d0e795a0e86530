/* SPDX-License-Identifier: MIT */
/* qcow2.c: the qcow2 reader behind vd_source (source.c) (API and contracts in
 * qcow2.h), written from QEMU's docs/interop/qcow2.txt.  Reading needs only
 * the header and the active L1/L2 mapping: refcounts and snapshot tables are
 * never read, so an image with internal snapshots converts as its current
 * state and a stale refcount (the dirty bit) does no harm.  Fields are
 * converted from big-endian where they are read and range-checked before
 * anything trusts them; open walks the whole mapping once, so damage is
 * refused before convert creates its output. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */
#define QCOW2_V2_HEADER_BYTES 72u
#define QCOW2_V3_HEADER_BYTES 104u
/* The spec's minimum (512-byte clusters) and QEMU's maximum (2 MiB), which
 * also bounds what one L2 table costs us in memory. */
#define QCOW2_MIN_CLUSTER_BITS 9u
#define QCOW2_MAX_CLUSTER_BITS 21u
/* QEMU refuses L1 tables over 32 MiB; so do we, which caps what a damaged
 * header can make us allocate. */
#define QCOW2_MAX_L1_BYTES (32ull << 20)
#define QCOW2_MAX_BACKING_NAME_BYTES 1023u /* the spec's limit */
/* QEMU's limit; bounds the snapshot table we check the extent of. */
#define QCOW2_MAX_SNAPSHOTS 65536u
/* A snapshot table entry is at least this long (bytes 0-39 are fixed). */
#define QCOW2_MIN_SNAPSHOT_BYTES 40u
#define QCOW2_MAX_REFCOUNT_ORDER 6u /* 64-bit refcounts */
/* Deeper chains are surely loops: an image naming itself or an ancestor. */
#define QCOW2_MAX_CHAIN 64u

/* Header extension types. */
#define QCOW2_EXT_END 0u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_NAMES 0x6803f857u
/* Long enough for any format name QEMU knows. */
#define QCOW2_MAX_FORMAT_NAME 31u

/* Incompatible feature bits (header bytes 72-79).  Dirty means stale
 * refcounts, which we never read; a compression type matters only to
 * compressed clusters, which are refused one by one. */
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN                                                                       \
	(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DATA_FILE |                \
	 QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2)

#define QCOW2_CRYPT_NONE 0u
#define QCOW2_CRYPT_AES 1u
#define QCOW2_CRYPT_LUKS 2u

/* L1 entry: bits 9-55 the L2 table's offset, 63 "refcount is one". */
#define QCOW2_L1_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_L1_RESERVED_MASK 0x7f000000000001ffull
/* L2 entry (standard cluster): bit 0 reads as zeros (version 3), bits 9-55
 * the host cluster, 62 compressed, 63 "refcount is one". */
#define QCOW2_L2_ZERO (1ull << 0)
#define QCOW2_L2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_L2_RESERVED_MASK 0x3f000000000001feull
#define QCOW2_L2_COMPRESSED (1ull << 62)
#define QCOW2_L2_COPIED (1ull << 63)

/* The header as stored: big-endian, bytes 0-103.  Version 2 stops at byte
 * 72; header_from_disk() gives its version 3 fields their implied values. */
struct qcow2_disk_header {
	uint32_t magic;			  /* 0-3 */
	uint32_t version;		  /* 4-7 */
	uint64_t backing_file_offset;	  /* 8-15: 0 = no backing file */
	uint32_t backing_file_size;	  /* 16-19: name length, bytes */
	uint32_t cluster_bits;		  /* 20-23 */
	uint64_t size;			  /* 24-31: virtual size, bytes */
	uint32_t crypt_method;		  /* 32-35 */
	uint32_t l1_size;		  /* 36-39: entries */
	uint64_t l1_table_offset;	  /* 40-47 */
	uint64_t refcount_table_offset;	  /* 48-55 */
	uint32_t refcount_table_clusters; /* 56-59 */
	uint32_t nb_snapshots;		  /* 60-63 */
	uint64_t snapshots_offset;	  /* 64-71 */
	uint64_t incompatible_features;	  /* 72-79: version 3 from here */
	uint64_t compatible_features;	  /* 80-87 */
	uint64_t autoclear_features;	  /* 88-95 */
	uint32_t refcount_order;	  /* 96-99 */
	uint32_t header_length;		  /* 100-103: bytes */
};

_Static_assert(sizeof(struct qcow2_disk_header) == QCOW2_V3_HEADER_BYTES,
	       "qcow2 header is 104 bytes");
_Static_assert(offsetof(struct qcow2_disk_header, incompatible_features) == QCOW2_V2_HEADER_BYTES,
	       "version 3 fields start at byte 72");
_Static_assert(offsetof(struct qcow2_disk_header, header_length) == 100,
	       "header_length is bytes 100-103");

/* One entry of the feature name table extension. */
struct qcow2_feature_name {
	uint8_t type;  /* 0 incompatible, 1 compatible, 2 autoclear */
	uint8_t bit;   /* 0-63 */
	char name[46]; /* zero padded, not terminated when full */
};

_Static_assert(sizeof(struct qcow2_feature_name) == 48, "feature name entry is 48 bytes");

enum layer_format {
	LAYER_PROBE,
	LAYER_QCOW2,
	LAYER_RAW,
};

/* What one L2 entry says about its guest cluster. */
enum cluster_kind {
	CLUSTER_DATA,
	CLUSTER_ZERO,
	CLUSTER_UNALLOCATED,
};

/* One file of the chain: a qcow2 image, or a raw file (no tables). */
struct vd_qcow2 {
	char *path; /* for messages */
	int fd;
	uint64_t file_bytes;
	uint64_t size_bytes; /* virtual size */
	bool raw;
	bool seek_data; /* raw: SEEK_DATA and SEEK_HOLE work */
	uint32_t version;
	unsigned cluster_bits;
	uint64_t cluster_bytes;
	unsigned l2_bits;	 /* log2 of the entries in one L2 table */
	uint64_t guest_clusters; /* covering the virtual size */
	uint64_t *l1;		 /* host order; entries checked at open */
	uint64_t l1_entries;	 /* those the virtual size needs */
	uint64_t *l2;		 /* the L2 table read last, host order */
	uint64_t l2_offset;	 /* where it came from; 0: none */
	struct vd_qcow2 *backing;	 /* NULL: none */
};

/* What open learns from the header area and needs later. */
struct header_info {
	struct qcow2_disk_header h;			/* host order */
	char backing_format[QCOW2_MAX_FORMAT_NAME + 1]; /* "": not recorded */
};

static int layer_open(const char *path, enum layer_format fmt, unsigned depth, struct vd_qcow2 **qp,
		      struct errmsg *err);

static uint32_t get_be32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v)); /* the buffer may not be aligned */
	return be32toh(v);
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Names in messages come from the image (backing file names, feature
 * names) and may hold anything; a control character must not break the
 * one-line message, nor reach the terminal. */
static int printable(int ret, struct errmsg *err)
{
	if (err) {
		for (char *c = err->msg; *c; c++) {
			if ((unsigned char)*c < 0x20 || *c == 0x7f) {
				*c = '?';
			}
		}
	}
	return ret;
}

bool vd_qcow2_probe(const void *buf, size_t len) { return len >= 4 && get_be32(buf) == QCOW2_MAGIC; }

/* Reads exactly 'len' bytes of metadata at 'off', which the caller has
 * checked lie inside the file; a short read means the file shrank. */
static int read_meta(struct vd_qcow2 *q, void *buf, size_t len, uint64_t off, const char *what,
		     struct errmsg *err)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(q->fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			int ret = -errno;

			errmsg_set(err, "%s: cannot read %s at %#" PRIx64 ": %s", q->path, what,
				   off, strerror(-ret));
			return ret;
		}
		if (n == 0) {
			errmsg_set(err,
				   "%s: %s at %#" PRIx64 " is cut short by the end of the file",
				   q->path, what, off);
			return -EUCLEAN;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Reads guest data at host offset 'off'.  Bytes past the end of the file
 * read as zeros, as QEMU reads them: a last cluster may be partly written. */
static int read_data(struct vd_qcow2 *q, void *buf, size_t len, uint64_t off, struct errmsg *err)
{
	size_t n = (size_t)min_u64(len, off < q->file_bytes ? q->file_bytes - off : 0);
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(q->fd, (char *)buf + done, n - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			int ret = -errno;

			errmsg_set(err, "%s: cannot read %zu bytes at %#" PRIx64 ": %s", q->path,
				   len, off, strerror(-ret));
			return ret;
		}
		if (r == 0) {
			break;
		}
		done += (size_t)r;
	}
	memset((char *)buf + done, 0, len - done);
	return 0;
}

static void header_from_disk(const struct qcow2_disk_header *d, struct qcow2_disk_header *h)
{
	h->magic = be32toh(d->magic);
	h->version = be32toh(d->version);
	h->backing_file_offset = be64toh(d->backing_file_offset);
	h->backing_file_size = be32toh(d->backing_file_size);
	h->cluster_bits = be32toh(d->cluster_bits);
	h->size = be64toh(d->size);
	h->crypt_method = be32toh(d->crypt_method);
	h->l1_size = be32toh(d->l1_size);
	h->l1_table_offset = be64toh(d->l1_table_offset);
	h->refcount_table_offset = be64toh(d->refcount_table_offset);
	h->refcount_table_clusters = be32toh(d->refcount_table_clusters);
	h->nb_snapshots = be32toh(d->nb_snapshots);
	h->snapshots_offset = be64toh(d->snapshots_offset);
	if (h->version < 3) {
		/* Bytes 72 on are header extensions here, not fields. */
		h->incompatible_features = 0;
		h->compatible_features = 0;
		h->autoclear_features = 0;
		h->refcount_order = 4;
		h->header_length = QCOW2_V2_HEADER_BYTES;
		return;
	}
	h->incompatible_features = be64toh(d->incompatible_features);
	h->compatible_features = be64toh(d->compatible_features);
	h->autoclear_features = be64toh(d->autoclear_features);
	h->refcount_order = be32toh(d->refcount_order);
	h->header_length = be32toh(d->header_length);
}

/* Reads the fixed header and checks the fields that say how to read the
 * rest: magic, version, header length, cluster size. */
static int read_header(struct vd_qcow2 *q, struct qcow2_disk_header *h, struct errmsg *err)
{
	struct qcow2_disk_header d;
	size_t n = (size_t)min_u64(sizeof(d), q->file_bytes);
	int ret;

	memset(&d, 0, sizeof(d));
	ret = read_meta(q, &d, n, 0, "the header", err);
	if (ret < 0) {
		return ret;
	}
	if (!vd_qcow2_probe(&d, n)) {
		errmsg_set(err, "%s: not a qcow2 image (no QFI\\xfb magic)", q->path);
		return -EINVAL;
	}
	if (q->file_bytes < QCOW2_V2_HEADER_BYTES) {
		errmsg_set(err, "%s: the file (%" PRIu64 " bytes) is too short for a qcow2 header",
			   q->path, q->file_bytes);
		return -EUCLEAN;
	}
	header_from_disk(&d, h);
	if (h->version != 2 && h->version != 3) {
		errmsg_set(err,
			   "%s: qcow2 version %" PRIu32 " (header offset 4) is not supported "
			   "(2 or 3)",
			   q->path, h->version);
		return -EOPNOTSUPP;
	}
	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
		errmsg_set(err, "%s: cluster_bits (header offset 20) is %" PRIu32 ", not 9 to 21",
			   q->path, h->cluster_bits);
		return -EUCLEAN;
	}
	if (h->version >= 3 &&
	    (h->header_length < QCOW2_V3_HEADER_BYTES || h->header_length % 8 ||
	     h->header_length > (1u << h->cluster_bits) || h->header_length > q->file_bytes)) {
		errmsg_set(err,
			   "%s: header_length (header offset 100) is %" PRIu32 ", not a "
			   "multiple of 8 from 104 to the cluster size inside the file",
			   q->path, h->header_length);
		return -EUCLEAN;
	}
	if (h->refcount_order > QCOW2_MAX_REFCOUNT_ORDER) {
		errmsg_set(err, "%s: refcount_order (header offset 96) is %" PRIu32 ", above 6",
			   q->path, h->refcount_order);
		return -EUCLEAN;
	}
	q->version = h->version;
	q->cluster_bits = h->cluster_bits;
	q->cluster_bytes = 1ull << h->cluster_bits;
	q->l2_bits = h->cluster_bits - 3; /* 8-byte entries */
	q->size_bytes = h->size;
	return 0;
}

/* Names incompatible feature 'bit' from the image's own feature name table
 * when it has one, so an unknown feature can be reported by name. */
static void feature_name(const unsigned char *table, size_t bytes, unsigned bit, char *name,
			 size_t name_len)
{
	struct qcow2_feature_name f;

	name[0] = '\0';
	for (size_t pos = 0; bytes - pos >= sizeof(f); pos += sizeof(f)) {
		memcpy(&f, table + pos, sizeof(f));
		if (f.type == 0 && f.bit == bit) {
			snprintf(name, name_len, " (\"%.*s\")",
				 (int)strnlen(f.name, sizeof(f.name)), f.name);
			return;
		}
	}
}

/* Refuses the incompatible features this reader cannot honour. */
static int check_features(struct vd_qcow2 *q, uint64_t incompat, const unsigned char *names,
			  size_t names_bytes, struct errmsg *err)
{
	uint64_t unknown = incompat & ~QCOW2_INCOMPAT_KNOWN;
	char name[64];

	if (unknown) {
		unsigned bit = (unsigned)__builtin_ctzll(unknown);

		feature_name(names, names_bytes, bit, name, sizeof(name));
		errmsg_set(err,
			   "%s: unknown incompatible feature bit %u%s (header offset 72); "
			   "run qemu-img convert first",
			   q->path, bit, name);
		return -EOPNOTSUPP;
	}
	if (incompat & QCOW2_INCOMPAT_CORRUPT) {
		errmsg_set(err,
			   "%s: the image is marked corrupt; repair it with qemu-img check "
			   "-r all first",
			   q->path);
		return -EUCLEAN;
	}
	if (incompat & QCOW2_INCOMPAT_DATA_FILE) {
		errmsg_set(err,
			   "%s: external data files are not supported; run qemu-img convert "
			   "first",
			   q->path);
		return -EOPNOTSUPP;
	}
	if (incompat & QCOW2_INCOMPAT_EXTL2) {
		errmsg_set(err,
			   "%s: extended L2 entries (subclusters) are not supported; run "
			   "qemu-img convert first",
			   q->path);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Walks the header extensions in 'area' (the first 'end' bytes of the
 * file): records the backing format, then checks the feature bits with the
 * feature name table at hand. */
static int parse_extensions(struct vd_qcow2 *q, struct header_info *hi, const unsigned char *area,
			    uint64_t end, struct errmsg *err)
{
	const unsigned char *names = NULL;
	size_t names_bytes = 0;
	uint64_t pos = hi->h.header_length;

	while (pos < end && end - pos >= 8) {
		uint32_t type = get_be32(area + pos);
		uint32_t len = get_be32(area + pos + 4);
		uint64_t at = pos;

		if (type == QCOW2_EXT_END) {
			break;
		}
		pos += 8;
		if (len > end - pos) {
			errmsg_set(err,
				   "%s: header extension %#" PRIx32 " at %#" PRIx64 " is %" PRIu32
				   " bytes, past the end of the header area",
				   q->path, type, at, len);
			return -EUCLEAN;
		}
		if (type == QCOW2_EXT_BACKING_FORMAT) {
			if (len == 0 || len > QCOW2_MAX_FORMAT_NAME) {
				errmsg_set(err,
					   "%s: the backing format extension at %#" PRIx64
					   " is %" PRIu32 " bytes long, not 1 to %u",
					   q->path, at, len, QCOW2_MAX_FORMAT_NAME);
				return -EUCLEAN;
			}
			memcpy(hi->backing_format, area + pos, len);
			hi->backing_format[len] = '\0';
		} else if (type == QCOW2_EXT_FEATURE_NAMES) {
			names = area + pos;
			names_bytes = len;
		}
		/* Extensions are padded to 8 bytes; 'len' <= end - pos, so no overflow. */
		pos += ((uint64_t)len + 7) / 8 * 8;
	}
	return check_features(q, hi->h.incompatible_features, names, names_bytes, err);
}

/* Reads the header area (header, extensions and backing name share the
 * first cluster) and parses the extensions. */
static int read_header_area(struct vd_qcow2 *q, struct header_info *hi, struct errmsg *err)
{
	const struct qcow2_disk_header *h = &hi->h;
	uint64_t end = min_u64(q->cluster_bytes, q->file_bytes);
	unsigned char *area;
	int ret;

	/* The backing name, when it follows the extensions, ends their area. */
	if (h->backing_file_offset > h->header_length && h->backing_file_offset < end) {
		end = h->backing_file_offset;
	}
	area = malloc((size_t)end);
	if (!area) {
		return -ENOMEM;
	}
	ret = read_meta(q, area, (size_t)end, 0, "the header extensions", err);
	if (ret == 0) {
		ret = parse_extensions(q, hi, area, end, err);
	}
	free(area);
	return ret;
}

/* Checks that a table of 'bytes' at 'off', named by header field 'field' at
 * header offset 'at', is cluster aligned, clear of the header and inside the
 * file. */
static int check_table(struct vd_qcow2 *q, const char *field, unsigned at, uint64_t off,
		       uint64_t bytes, struct errmsg *err)
{
	if (off % q->cluster_bytes || off == 0) {
		errmsg_set(err,
			   "%s: %s (header offset %u) is %#" PRIx64 ", not a cluster boundary "
			   "after the header",
			   q->path, field, at, off);
		return -EUCLEAN;
	}
	if (off > q->file_bytes || bytes > q->file_bytes - off) {
		errmsg_set(err,
			   "%s: %s (header offset %u) is %#" PRIx64 ": the table's %" PRIu64
			   " bytes lie beyond the end of the file (%" PRIu64 " bytes)",
			   q->path, field, at, off, bytes, q->file_bytes);
		return -EUCLEAN;
	}
	return 0;
}

/* Checks the fields that place things in the file and sizes the L1 table
 * the virtual size needs. */
static int check_layout(struct vd_qcow2 *q, const struct qcow2_disk_header *h, struct errmsg *err)
{
	uint64_t cb = q->cluster_bytes;
	int ret;

	if (h->crypt_method == QCOW2_CRYPT_AES || h->crypt_method == QCOW2_CRYPT_LUKS) {
		errmsg_set(err,
			   "%s: encrypted images (%s) are not supported; decrypt it with "
			   "qemu-img convert first",
			   q->path, h->crypt_method == QCOW2_CRYPT_AES ? "AES" : "LUKS");
		return -EOPNOTSUPP;
	}
	if (h->crypt_method != QCOW2_CRYPT_NONE) {
		errmsg_set(err, "%s: crypt_method (header offset 32) is %" PRIu32 ", not 0, 1 or 2",
			   q->path, h->crypt_method);
		return -EUCLEAN;
	}
	/* Round up without overflow: the size may be anything up to 2^64 - 1. */
	q->guest_clusters = (h->size >> q->cluster_bits) + !!(h->size & (cb - 1));
	q->l1_entries =
	    (q->guest_clusters >> q->l2_bits) + !!(q->guest_clusters & ((1ull << q->l2_bits) - 1));
	if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		errmsg_set(err,
			   "%s: l1_size (header offset 36) is %" PRIu32 " entries, over the "
			   "32 MiB QEMU allows",
			   q->path, h->l1_size);
		return -EUCLEAN;
	}
	if (q->l1_entries > h->l1_size) {
		errmsg_set(err,
			   "%s: l1_size (header offset 36) is %" PRIu32 " entries, too few "
			   "for the virtual size %" PRIu64
			   " (header offset 24), which needs %" PRIu64,
			   q->path, h->l1_size, h->size, q->l1_entries);
		return -EUCLEAN;
	}
	if (h->l1_size > 0) {
		ret = check_table(q, "l1_table_offset", 40, h->l1_table_offset,
				  (uint64_t)h->l1_size * 8, err);
		if (ret < 0) {
			return ret;
		}
	}
	if (h->refcount_table_clusters == 0) {
		errmsg_set(err, "%s: refcount_table_clusters (header offset 56) is 0", q->path);
		return -EUCLEAN;
	}
	ret = check_table(q, "refcount_table_offset", 48, h->refcount_table_offset,
			  (uint64_t)h->refcount_table_clusters * cb, err);
	if (ret < 0) {
		return ret;
	}
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
		errmsg_set(err, "%s: nb_snapshots (header offset 60) is %" PRIu32 ", over %u",
			   q->path, h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
		return -EUCLEAN;
	}
	if (h->nb_snapshots > 0) {
		return check_table(q, "snapshots_offset", 64, h->snapshots_offset,
				   (uint64_t)h->nb_snapshots * QCOW2_MIN_SNAPSHOT_BYTES, err);
	}
	return 0;
}

/* Checks L1 entry 'index', stored at file offset 'at'. */
static int check_l1_entry(struct vd_qcow2 *q, uint64_t entry, uint64_t index, uint64_t at,
			  struct errmsg *err)
{
	uint64_t l2 = entry & QCOW2_L1_OFFSET_MASK;

	if (entry & QCOW2_L1_RESERVED_MASK) {
		errmsg_set(err,
			   "%s: L1 entry %" PRIu64 " (at %#" PRIx64 ") is %#" PRIx64
			   ", with reserved bits set",
			   q->path, index, at, entry);
		return -EUCLEAN;
	}
	if (l2 % q->cluster_bytes) {
		errmsg_set(err,
			   "%s: L1 entry %" PRIu64 " (at %#" PRIx64 ") points to an L2 table "
			   "at %#" PRIx64 ", not cluster aligned",
			   q->path, index, at, l2);
		return -EUCLEAN;
	}
	if (l2 > q->file_bytes || q->cluster_bytes > q->file_bytes - l2) {
		errmsg_set(err,
			   "%s: L1 entry %" PRIu64 " (at %#" PRIx64 ") points to an L2 table "
			   "at %#" PRIx64 ", beyond the end of the file",
			   q->path, index, at, l2);
		return -EUCLEAN;
	}
	return 0;
}

static int read_l1(struct vd_qcow2 *q, const struct qcow2_disk_header *h, struct errmsg *err)
{
	uint64_t i;
	int ret;

	/* At least one entry, so that an empty disk needs no special case. */
	q->l1 = calloc(q->l1_entries ? q->l1_entries : 1, sizeof(*q->l1));
	if (!q->l1) {
		return -ENOMEM;
	}
	ret = read_meta(q, q->l1, q->l1_entries * 8, h->l1_table_offset, "the L1 table", err);
	if (ret < 0) {
		return ret;
	}
	for (i = 0; i < q->l1_entries; i++) {
		q->l1[i] = be64toh(q->l1[i]);
		ret = check_l1_entry(q, q->l1[i], i, h->l1_table_offset + i * 8, err);
		if (ret < 0) {
			return ret;
		}
	}
	return 0;
}

/* Checks the L2 entry of guest cluster 'cluster'.  A data cluster must start
 * inside the file; one ending past it reads zeros there (read_data). */
static int check_l2_entry(struct vd_qcow2 *q, uint64_t entry, uint64_t cluster, struct errmsg *err)
{
	uint64_t host = entry & QCOW2_L2_OFFSET_MASK;
	uint64_t guest = cluster << q->cluster_bits;

	if (entry & QCOW2_L2_COMPRESSED) {
		errmsg_set(err,
			   "%s: compressed clusters are not supported; run qemu-img convert "
			   "first",
			   q->path);
		return -EOPNOTSUPP;
	}
	if (entry & QCOW2_L2_RESERVED_MASK) {
		errmsg_set(err,
			   "%s: the L2 entry of guest offset %#" PRIx64 " is %#" PRIx64
			   ", with reserved bits set",
			   q->path, guest, entry);
		return -EUCLEAN;
	}
	if ((entry & QCOW2_L2_ZERO) && q->version < 3) {
		errmsg_set(err,
			   "%s: the L2 entry of guest offset %#" PRIx64 " has the zero flag, "
			   "which version 2 images lack",
			   q->path, guest);
		return -EUCLEAN;
	}
	if (host % q->cluster_bytes) {
		errmsg_set(err,
			   "%s: the L2 entry of guest offset %#" PRIx64 " points to host "
			   "offset %#" PRIx64 ", not cluster aligned",
			   q->path, guest, host);
		return -EUCLEAN;
	}
	if (entry & QCOW2_L2_ZERO) {
		return 0; /* a preallocated zero cluster is never read */
	}
	if (host == 0 && (entry & QCOW2_L2_COPIED)) {
		errmsg_set(err,
			   "%s: the L2 entry of guest offset %#" PRIx64 " maps host offset 0, "
			   "the header",
			   q->path, guest);
		return -EUCLEAN;
	}
	if (host >= q->file_bytes) {
		errmsg_set(err,
			   "%s: the L2 entry of guest offset %#" PRIx64 " points to host "
			   "offset %#" PRIx64 ", beyond the end of the file (%" PRIu64 " bytes)",
			   q->path, guest, host, q->file_bytes);
		return -EUCLEAN;
	}
	return 0;
}

/* Makes the L2 table at 'off' (checked by check_l1_entry) the cached one. */
static int load_l2(struct vd_qcow2 *q, uint64_t off, struct errmsg *err)
{
	uint64_t n = q->cluster_bytes / 8;
	int ret;

	if (q->l2_offset == off) {
		return 0;
	}
	q->l2_offset = 0;
	ret = read_meta(q, q->l2, (size_t)q->cluster_bytes, off, "an L2 table", err);
	if (ret < 0) {
		return ret;
	}
	for (uint64_t i = 0; i < n; i++) {
		q->l2[i] = be64toh(q->l2[i]);
	}
	q->l2_offset = off;
	return 0;
}

/* The L2 entry of guest cluster 'cluster' (< guest_clusters), checked, and
 * in '*spanp' how many clusters from it share that answer: the rest of the
 * table when its L1 entry is empty, else 1.  Skipping empty tables whole
 * keeps a walk over a huge, empty disk cheap. */
static int lookup(struct vd_qcow2 *q, uint64_t cluster, uint64_t *entryp, uint64_t *spanp,
		  struct errmsg *err)
{
	uint64_t per_table = 1ull << q->l2_bits;
	uint64_t l2 = q->l1[cluster >> q->l2_bits] & QCOW2_L1_OFFSET_MASK;
	uint64_t entry;
	int ret;

	if (l2 == 0) {
		*entryp = 0;
		*spanp = per_table - (cluster & (per_table - 1));
		return 0;
	}
	ret = load_l2(q, l2, err);
	if (ret < 0) {
		return ret;
	}
	entry = q->l2[cluster & (per_table - 1)];
	ret = check_l2_entry(q, entry, cluster, err);
	if (ret < 0) {
		return ret;
	}
	*entryp = entry;
	*spanp = 1;
	return 0;
}

/* Checks every L2 entry of the virtual disk once, so that damage or an
 * unsupported cluster is refused at open rather than halfway through a
 * copy.  Costs one read of each L2 table. */
static int walk_mapping(struct vd_qcow2 *q, struct errmsg *err)
{
	uint64_t cluster, entry, span;
	int ret;

	for (cluster = 0; cluster < q->guest_clusters; cluster += span) {
		ret = lookup(q, cluster, &entry, &span, err);
		if (ret < 0) {
			return ret;
		}
	}
	return 0;
}

static enum cluster_kind kind_of(uint64_t entry)
{
	if (entry & QCOW2_L2_ZERO) {
		return CLUSTER_ZERO;
	}
	return (entry & QCOW2_L2_OFFSET_MASK) ? CLUSTER_DATA : CLUSTER_UNALLOCATED;
}

/* Describes the run of guest bytes at 'off' (inside the virtual size), at
 * most 'max' long, of one kind in this file; with 'contiguous', a data run
 * also has contiguous host offsets, starting at '*hostp'. */
static int map_local(struct vd_qcow2 *q, uint64_t off, uint64_t max, bool contiguous,
		     enum cluster_kind *kindp, uint64_t *hostp, uint64_t *lenp, struct errmsg *err)
{
	uint64_t in = off & (q->cluster_bytes - 1);
	uint64_t cluster = off >> q->cluster_bits;
	uint64_t entry, span, host, next_host, len;
	enum cluster_kind kind;
	int ret;

	ret = lookup(q, cluster, &entry, &span, err);
	if (ret < 0) {
		return ret;
	}
	kind = kind_of(entry);
	host = (entry & QCOW2_L2_OFFSET_MASK) + in;
	next_host = (entry & QCOW2_L2_OFFSET_MASK) + q->cluster_bytes;
	len = min_u64((span << q->cluster_bits) - in, max);
	cluster += span;
	while (len < max) {
		ret = lookup(q, cluster, &entry, &span, err);
		if (ret < 0) {
			return ret;
		}
		if (kind_of(entry) != kind || (kind == CLUSTER_DATA && contiguous &&
					       (entry & QCOW2_L2_OFFSET_MASK) != next_host)) {
			break;
		}
		next_host += q->cluster_bytes; /* data entries have a span of 1 */
		len += min_u64(span << q->cluster_bits, max - len);
		cluster += span;
	}
	*kindp = kind;
	*hostp = kind == CLUSTER_DATA ? host : 0;
	*lenp = len;
	return 0;
}

/* A raw file's holes read as zeros; SEEK_DATA finds them where the file
 * system can, and everything is data where it cannot. */
static void raw_map(struct vd_qcow2 *q, uint64_t off, uint64_t max, struct vd_qcow2_extent *ext)
{
	off_t data, hole;

	ext->length = max;
	ext->state = VD_QCOW2_DATA;
	if (!q->seek_data) {
		return;
	}
	data = lseek(q->fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno == ENXIO) {
		ext->state = VD_QCOW2_UNALLOCATED; /* a hole to the end of the file */
		return;
	}
	if (data < 0) {
		q->seek_data = false;
		return;
	}
	if ((uint64_t)data > off) {
		ext->state = VD_QCOW2_UNALLOCATED;
		ext->length = min_u64((uint64_t)data - off, max);
		return;
	}
	hole = lseek(q->fd, (off_t)off, SEEK_HOLE);
	if (hole > (off_t)off && (uint64_t)hole - off < max) {
		ext->length = (uint64_t)hole - off;
	}
}

int vd_qcow2_map(struct vd_qcow2 *q, uint64_t off, uint64_t max, struct vd_qcow2_extent *ext,
	      struct errmsg *err)
{
	struct vd_qcow2_extent below;
	enum cluster_kind kind;
	uint64_t host, len;
	int ret;

	if (max == 0) {
		return -EINVAL;
	}
	if (off >= q->size_bytes) {
		ext->length = max;
		ext->state = VD_QCOW2_UNALLOCATED;
		return 0;
	}
	max = min_u64(max, q->size_bytes - off);
	if (q->raw) {
		raw_map(q, off, max, ext);
		return 0;
	}
	ret = map_local(q, off, max, false, &kind, &host, &len, err);
	if (ret < 0) {
		return printable(ret, err);
	}
	ext->length = len;
	if (kind == CLUSTER_DATA) {
		ext->state = VD_QCOW2_DATA;
	} else if (kind == CLUSTER_ZERO) {
		ext->state = VD_QCOW2_ZERO; /* hides the backing chain */
	} else if (!q->backing) {
		ext->state = VD_QCOW2_UNALLOCATED;
	} else {
		ret = vd_qcow2_map(q->backing, off, len, &below, err);
		if (ret < 0) {
			return ret;
		}
		ext->length = below.length;
		ext->state = below.state == VD_QCOW2_DATA || below.state == VD_QCOW2_BACKING
				 ? VD_QCOW2_BACKING
				 : VD_QCOW2_UNALLOCATED;
	}
	return 0;
}

/* Reads one run map_local() described. */
static int read_run(struct vd_qcow2 *q, enum cluster_kind kind, uint64_t host, void *buf, size_t len,
		    uint64_t off, struct errmsg *err)
{
	if (kind == CLUSTER_DATA) {
		return read_data(q, buf, len, host, err);
	}
	if (kind == CLUSTER_UNALLOCATED && q->backing) {
		return vd_qcow2_pread(q->backing, buf, len, off, err);
	}
	memset(buf, 0, len);
	return 0;
}

int vd_qcow2_pread(struct vd_qcow2 *q, void *buf, size_t len, uint64_t off, struct errmsg *err)
{
	unsigned char *p = buf;
	enum cluster_kind kind;
	uint64_t host, run;
	int ret;

	while (len > 0) {
		if (off >= q->size_bytes) {
			memset(p, 0, len);
			return 0;
		}
		run = min_u64(len, q->size_bytes - off);
		if (q->raw) {
			ret = read_data(q, p, (size_t)run, off, err);
		} else {
			ret = map_local(q, off, run, true, &kind, &host, &run, err);
			if (ret == 0) {
				ret = read_run(q, kind, host, p, (size_t)run, off, err);
			}
		}
		if (ret < 0) {
			return printable(ret, err);
		}
		p += run;
		off += run;
		len -= (size_t)run;
	}
	return 0;
}

/* A backing file name is relative to the directory of the image naming it,
 * not to ours.  Returns a string to free, or NULL. */
static char *backing_path(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	char *path;

	if (name[0] == '/' || !slash) {
		return strdup(name);
	}
	if (asprintf(&path, "%.*s/%s", (int)(slash - image), image, name) < 0) {
		return NULL;
	}
	return path;
}

/* Reads the backing file name and settles the backing file's format. */
static int backing_name(struct vd_qcow2 *q, const struct header_info *hi, char *name,
			enum layer_format *fmtp, struct errmsg *err)
{
	const struct qcow2_disk_header *h = &hi->h;
	uint64_t end = min_u64(q->cluster_bytes, q->file_bytes);
	int ret;

	if (h->backing_file_size == 0 || h->backing_file_size > QCOW2_MAX_BACKING_NAME_BYTES) {
		errmsg_set(err,
			   "%s: backing_file_size (header offset 16) is %" PRIu32 ", not 1 to "
			   "1023",
			   q->path, h->backing_file_size);
		return -EUCLEAN;
	}
	if (h->backing_file_offset < h->header_length || h->backing_file_offset > end ||
	    h->backing_file_size > end - h->backing_file_offset) {
		errmsg_set(err,
			   "%s: backing_file_offset (header offset 8) is %#" PRIx64 ", which "
			   "puts the name outside the first cluster after the header",
			   q->path, h->backing_file_offset);
		return -EUCLEAN;
	}
	ret = read_meta(q, name, h->backing_file_size, h->backing_file_offset,
			"the backing file name", err);
	if (ret < 0) {
		return ret;
	}
	name[h->backing_file_size] = '\0';
	if (strlen(name) != h->backing_file_size) {
		errmsg_set(err, "%s: the backing file name holds a NUL byte", q->path);
		return -EUCLEAN;
	}
	*fmtp = LAYER_PROBE;
	if (!strcmp(hi->backing_format, "qcow2")) {
		*fmtp = LAYER_QCOW2;
	} else if (!strcmp(hi->backing_format, "raw")) {
		*fmtp = LAYER_RAW;
	} else if (hi->backing_format[0]) {
		errmsg_set(err,
			   "%s: the backing file %s is in format '%s'; only qcow2 and raw "
			   "backing files are supported",
			   q->path, name, hi->backing_format);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int open_backing(struct vd_qcow2 *q, const struct header_info *hi, unsigned depth,
			struct errmsg *err)
{
	char name[QCOW2_MAX_BACKING_NAME_BYTES + 1];
	enum layer_format fmt;
	struct errmsg sub;
	char *path;
	int ret;

	if (hi->h.backing_file_offset == 0) {
		return 0;
	}
	ret = backing_name(q, hi, name, &fmt, err);
	if (ret < 0) {
		return ret;
	}
	if (depth + 1 >= QCOW2_MAX_CHAIN) {
		errmsg_set(err, "%s: the backing chain is deeper than %u images (a loop?)", q->path,
			   QCOW2_MAX_CHAIN);
		return -ELOOP;
	}
	path = backing_path(q->path, name);
	if (!path) {
		return -ENOMEM;
	}
	errmsg_clear(&sub);
	ret = layer_open(path, fmt, depth + 1, &q->backing, &sub);
	if (ret < 0 && sub.msg[0]) {
		/* The backing file's sentence names it; say whose backing file it is. */
		errmsg_set(err, "%s: backing file %.400s", q->path, sub.msg);
	} else if (ret < 0) {
		errmsg_set(err, "%s: backing file %.400s: %s", q->path, path, strerror(-ret));
	}
	free(path);
	return ret;
}

/* Reads and checks everything but the data of a qcow2 file. */
static int qcow2_layer_init(struct vd_qcow2 *q, unsigned depth, struct errmsg *err)
{
	struct header_info hi;
	int ret;

	memset(&hi, 0, sizeof(hi));
	ret = read_header(q, &hi.h, err);
	if (ret < 0) {
		return ret;
	}
	ret = read_header_area(q, &hi, err);
	if (ret < 0) {
		return ret;
	}
	ret = check_layout(q, &hi.h, err);
	if (ret < 0) {
		return ret;
	}
	ret = read_l1(q, &hi.h, err);
	if (ret < 0) {
		return ret;
	}
	q->l2 = malloc((size_t)q->cluster_bytes);
	if (!q->l2) {
		return -ENOMEM;
	}
	ret = walk_mapping(q, err);
	if (ret < 0) {
		return ret;
	}
	return open_backing(q, &hi, depth, err);
}

static int file_open(struct vd_qcow2 *q, const char *path, struct errmsg *err)
{
	struct stat st;
	off_t end;
	int ret;

	q->path = strdup(path);
	if (!q->path) {
		return -ENOMEM;
	}
	q->fd = -1;
	ret = vd_file_open_checked(path, O_RDONLY, &q->fd, err);
	if (ret < 0) {
		return ret;
	}
	if (fstat(q->fd, &st) < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	if (S_ISREG(st.st_mode)) {
		q->file_bytes = (uint64_t)st.st_size;
		return 0;
	}
	end = lseek(q->fd, 0, SEEK_END);
	if (end < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot find its size: %s", path, strerror(-ret));
		return ret;
	}
	q->file_bytes = (uint64_t)end;
	return 0;
}

/* A backing file whose format the image does not record: qcow2 by its
 * magic, otherwise raw. */
static int probe_format(struct vd_qcow2 *q, enum layer_format *fmtp, struct errmsg *err)
{
	unsigned char magic[4];
	size_t n = (size_t)min_u64(sizeof(magic), q->file_bytes);
	int ret = read_meta(q, magic, n, 0, "the magic", err);

	if (ret < 0) {
		return ret;
	}
	*fmtp = vd_qcow2_probe(magic, n) ? LAYER_QCOW2 : LAYER_RAW;
	return 0;
}

static int layer_open(const char *path, enum layer_format fmt, unsigned depth, struct vd_qcow2 **qp,
		      struct errmsg *err)
{
	struct vd_qcow2 *q = calloc(1, sizeof(*q));
	int ret;

	if (!q) {
		return -ENOMEM;
	}
	q->fd = -1;
	ret = file_open(q, path, err);
	if (ret == 0 && fmt == LAYER_PROBE) {
		ret = probe_format(q, &fmt, err);
	}
	if (ret == 0 && fmt == LAYER_RAW) {
		q->raw = true;
		q->seek_data = true;
		q->size_bytes = q->file_bytes;
	} else if (ret == 0) {
		ret = qcow2_layer_init(q, depth, err);
	}
	if (ret < 0) {
		vd_qcow2_close(q);
		return ret;
	}
	*qp = q;
	return 0;
}

int vd_qcow2_open(const char *path, struct vd_qcow2 **qp, struct errmsg *err)
{
	return printable(layer_open(path, LAYER_QCOW2, 0, qp, err), err);
}

void vd_qcow2_close(struct vd_qcow2 *q)
{
	if (!q) {
		return;
	}
	vd_qcow2_close(q->backing);
	if (q->fd >= 0) {
		close(q->fd);
	}
	free(q->l2);
	free(q->l1);
	free(q->path);
	free(q);
}

uint64_t vd_qcow2_size_bytes(const struct vd_qcow2 *q) { return q->size_bytes; }
