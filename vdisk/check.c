/* SPDX-License-Identifier: MIT */
/* check.c: consistency check and repair.  Walks every structure the header
 * reaches, counts the references to each cluster and remembers what kind of
 * structure uses it, then compares with the stored refcounts (as qemu-img
 * check does for qcow2: stored above counted is a leak, below is
 * corruption).  Repairs go through the journal like any other change. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum kind {
	K_FREE, K_HEADER, K_JOURNAL, K_L1, K_REFTABLE, K_REFBLOCK, K_L2, K_DATA, K_SNAPTABLE,
};

static const char *const kind_names[] = {
	"free", "header", "journal", "L1 table", "refcount table", "refcount block",
	"L2 table", "data", "snapshot table",
};

struct checker {
	struct vd_image *img;
	struct vd_check_result *res;
	vd_report_fn report;
	void *arg;
	bool repair;
	uint64_t nclusters;
	uint32_t *refs;
	uint8_t *kinds;
};

static void __attribute__((format(printf, 2, 3))) say(struct checker *ck, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!ck->report) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ck->report(ck->arg, buf);
}

/* Counts one reference; false (and a report) when it cannot be counted. */
static bool add_ref(struct checker *ck, uint64_t off, enum kind k, const char *from)
{
	uint64_t c = off >> ck->img->cluster_bits;

	if (off & (ck->img->cluster_bytes - 1)) {
		say(ck, "ERROR %s: %s offset 0x%" PRIx64 " is not cluster aligned", from,
		    kind_names[k], off);
		return false;
	}
	if (c >= ck->nclusters) {
		say(ck, "ERROR %s: %s at 0x%" PRIx64 " lies beyond the end of the file", from,
		    kind_names[k], off);
		return false;
	}
	if (ck->kinds[c] != K_FREE && (ck->kinds[c] != k || (k != K_DATA && k != K_L2))) {
		say(ck, "ERROR %s: %s at 0x%" PRIx64 " overlaps a %s", from, kind_names[k], off,
		    kind_names[ck->kinds[c]]);
		return false;
	}
	ck->kinds[c] = k;
	ck->refs[c]++;
	return true;
}

static void add_region(struct checker *ck, uint64_t off, uint64_t bytes, enum kind k)
{
	for (uint64_t o = 0; o < bytes; o += ck->img->cluster_bytes) {
		if (!add_ref(ck, off + o, k, "header")) {
			ck->res->corruptions++;
		}
	}
}

/* An L2 entry that cannot be trusted is unmapped by repair: the guest reads
 * zeros there instead of another structure's bytes. */
static int bad_l2_entry(struct checker *ck, uint64_t l2off, uint32_t j, uint32_t l1i,
			bool in_snapshot)
{
	struct vd_mblock *l2;
	int ret;

	ck->res->corruptions++;
	if (!ck->repair || in_snapshot) {
		return 0;
	}
	ret = vd_mblock_get(ck->img, l2off, &l2);
	if (ret < 0) {
		return ret;
	}
	vd_set64(ck->img, l2, j, 0);
	vd_mblock_put(l2);
	ck->res->corruptions_fixed++;
	say(ck, "Repairing L2 entry %" PRIu64 ": unmapped",
	    (uint64_t)l1i * ck->img->l2_entries + j);
	return 0;
}

/* Through the cache: an open writer's newest tables may not be on disk. */
static int walk_l2(struct checker *ck, uint64_t l2off, uint32_t l1i, uint8_t *buf,
		   bool in_snapshot, uint64_t guest_clusters)
{
	struct vd_image *img = ck->img;
	struct vd_mblock *blk;
	char from[64];
	int ret = vd_mblock_get(img, l2off, &blk);

	if (ret < 0) {
		return ret;
	}
	memcpy(buf, blk->data, img->cluster_bytes);
	vd_mblock_put(blk);
	ret = vd_cache_trim(img);
	if (ret < 0) {
		return ret;
	}
	for (uint32_t j = 0; j < img->l2_entries && ret == 0; j++) {
		uint64_t e, off;

		memcpy(&e, buf + (size_t)j * 8, 8);
		e = le64toh(e);
		off = e & VD_L2_OFFSET_MASK;
		snprintf(from, sizeof(from), "L2 table at 0x%" PRIx64 " entry %" PRIu32, l2off, j);
		if ((e & VD_L2_RESERVED_MASK) || ((e & VD_L2_ZERO) && off)) {
			say(ck, "ERROR %s: invalid entry 0x%016" PRIx64, from, e);
			ret = bad_l2_entry(ck, l2off, j, l1i, in_snapshot);
		} else if (off && (uint64_t)l1i * img->l2_entries + j >= guest_clusters) {
			say(ck, "ERROR %s: maps a cluster beyond the virtual size", from);
			ret = bad_l2_entry(ck, l2off, j, l1i, in_snapshot);
		} else if (off && !add_ref(ck, off, K_DATA, from)) {
			ret = bad_l2_entry(ck, l2off, j, l1i, in_snapshot);
		} else if (off) {
			ck->res->allocated_clusters++;
		}
	}
	return ret;
}

/* Walks an L1 table: the disk's ('snap' NULL, from the pinned block, the
 * only one repair changes) or a snapshot's (read from the file). */
static int walk_l1(struct checker *ck, const struct vd_snap *snap)
{
	struct vd_image *img = ck->img;
	uint8_t *buf = vd_aligned_alloc(img->cluster_bytes);
	uint32_t n = snap ? snap->l1_entries : img->hdr.l1_entries;
	uint64_t *copy = snap ? vd_aligned_alloc(((uint64_t)n * 8 + 511) & ~511ull) : NULL;
	char from[300];
	int ret = 0;

	if (!buf || (snap && !copy)) {
		free(buf);
		return -ENOMEM;
	}
	if (snap) {
		ret = vd_meta_read(img, copy, ((uint64_t)n * 8 + 511) & ~511ull, snap->l1_offset);
	}
	for (uint32_t i = 0; i < n && ret == 0; i++) {
		uint64_t e = snap ? le64toh(copy[i]) : vd_get64(img->l1_blk, i);
		uint64_t off = e & VD_L1_OFFSET_MASK;

		snprintf(from, sizeof(from), "%s%s%sL1 entry %" PRIu32, snap ? "snapshot '" : "",
			 snap ? snap->name : "", snap ? "' " : "", i);
		if (!e) {
			continue;
		}
		if ((e & VD_L1_RESERVED_MASK) || !add_ref(ck, off, K_L2, from)) {
			if (e & VD_L1_RESERVED_MASK) {
				say(ck, "ERROR %s: invalid entry 0x%016" PRIx64, from, e);
			}
			ck->res->corruptions++;
			if (ck->repair && !snap) {
				vd_set64(img, img->l1_blk, i, 0);
				ck->res->corruptions_fixed++;
				say(ck, "Repairing %s: unmapped its L2 table", from);
			}
			continue;
		}
		if (ck->refs[off >> img->cluster_bits] == 1) {
			ret = walk_l2(ck, off, i, buf, snap != NULL,
				      snap ? (snap->size_bytes + img->cluster_bytes - 1) >>
						     img->cluster_bits
					   : img->guest_clusters);
		}
	}
	free(buf);
	free(copy);
	return ret;
}

static int walk_snapshots(struct checker *ck)
{
	struct vd_image *img = ck->img;
	int ret = 0;

	add_region(ck, img->hdr.snapshot_table_offset, img->hdr.snapshot_table_bytes,
		   K_SNAPTABLE);
	for (uint32_t i = 0; i < img->nsnaps && ret == 0; i++) {
		add_region(ck, img->snaps[i].l1_offset, img->snaps[i].l1_entries * 8ull, K_L1);
		ret = walk_l1(ck, &img->snaps[i]);
	}
	return ret;
}

static void walk_reftable(struct checker *ck)
{
	struct vd_image *img = ck->img;

	for (uint64_t i = 0; i < img->rt_blk->bytes / 8; i++) {
		uint64_t off = vd_get64(img->rt_blk, i);
		char from[48];

		snprintf(from, sizeof(from), "refcount table entry %" PRIu64, i);
		if (off && !add_ref(ck, off, K_REFBLOCK, from)) {
			ck->res->corruptions++;
		}
	}
}

static int fix_refcount(struct checker *ck, uint64_t c, uint32_t have, uint32_t want)
{
	int ret;

	if (have > want) {
		ck->res->leaks++;
		say(ck, "Leaked cluster %" PRIu64 " refcount=%" PRIu32 " reference=%" PRIu32, c,
		    have, want);
	} else {
		ck->res->corruptions++;
		say(ck, "ERROR cluster %" PRIu64 " refcount=%" PRIu32 " reference=%" PRIu32, c,
		    have, want);
	}
	if (!ck->repair || want > VD_REFCOUNT_MAX) {
		return 0;
	}
	ret = vd_refcount_set(ck->img, c, want);
	if (ret == 0 && have > want) {
		ck->res->leaks_fixed++;
	} else if (ret == 0) {
		ck->res->corruptions_fixed++;
	}
	return ret < 0 ? ret : vd_meta_boundary(ck->img);
}

/* Compares one refcount block's worth of clusters (a copy of the block, or
 * NULL where there is none: all stored refcounts 0). */
static int compare_range(struct checker *ck, uint64_t base, const uint16_t *stored)
{
	int ret = 0;

	for (uint32_t k = 0; k < ck->img->rb_entries && ret == 0; k++) {
		uint64_t c = base + k;
		uint32_t want = c < ck->nclusters ? ck->refs[c] : 0;
		uint32_t have = stored ? le16toh(stored[k]) : 0;

		if (!stored && c >= ck->nclusters) {
			break;
		}
		if (have != want) {
			ret = fix_refcount(ck, c, have, want);
		}
	}
	return ret;
}

static int compare_refcounts(struct checker *ck)
{
	struct vd_image *img = ck->img;
	uint64_t rt_entries = img->rt_blk->bytes / 8;
	uint16_t *copy = vd_aligned_alloc(img->cluster_bytes);
	int ret = 0;

	if (!copy) {
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < rt_entries && ret == 0; i++) {
		uint64_t off = vd_get64(img->rt_blk, i), base = i * img->rb_entries;
		struct vd_mblock *rb;

		if (!off || (off & (img->cluster_bytes - 1)) ||
		    (off >> img->cluster_bits) >= ck->nclusters) {
			/* Missing or unusable (reported by walk_reftable). */
			ret = base < ck->nclusters ? compare_range(ck, base, NULL) : 0;
			continue;
		}
		ret = vd_mblock_get(img, off, &rb);
		if (ret < 0) {
			break;
		}
		memcpy(copy, rb->data, img->cluster_bytes);
		vd_mblock_put(rb);
		ret = compare_range(ck, base, copy);
	}
	if (ret == 0 && rt_entries * img->rb_entries < ck->nclusters) {
		for (uint64_t c = rt_entries * img->rb_entries; c < ck->nclusters; c++) {
			if (ck->refs[c]) {
				ck->res->corruptions++;
				say(ck, "ERROR cluster %" PRIu64 " is beyond the refcount table", c);
			}
		}
	}
	free(copy);
	return ret;
}

static int run_check(struct checker *ck)
{
	struct vd_image *img = ck->img;
	int ret;

	add_region(ck, 0, img->cluster_bytes, K_HEADER);
	add_region(ck, img->hdr.journal_offset, img->hdr.journal_bytes, K_JOURNAL);
	add_region(ck, img->hdr.l1_offset, (uint64_t)img->hdr.l1_entries * 8, K_L1);
	add_region(ck, img->hdr.refcount_table_offset,
		   (uint64_t)img->hdr.refcount_table_clusters * img->cluster_bytes, K_REFTABLE);
	walk_reftable(ck);
	ret = walk_l1(ck, NULL);
	if (ret == 0) {
		ret = walk_snapshots(ck);
	}
	if (ret == 0 && ck->repair) {
		/* Clusters the metadata uses must not be handed out while
		 * the refcounts are being put right. */
		ret = vd_freemap_reserve_used(img, ck->refs, ck->nclusters);
	}
	if (ret == 0) {
		ret = compare_refcounts(ck);
	}
	if (ret == 0 && ck->repair) {
		ret = vd_journal_commit(img);
		if (ret == 0) {
			ret = vd_journal_checkpoint(img);
		}
	}
	return ret;
}

int vd_check(struct vd_image *img, unsigned flags, struct vd_check_result *res,
	     vd_report_fn report, void *arg, struct errmsg *err)
{
	struct checker ck = {
		.img = img, .res = res, .report = report, .arg = arg,
		.repair = flags & VD_CHECK_REPAIR,
	};
	uint64_t file_bytes;
	int ret;

	memset(res, 0, sizeof(*res));
	if (ck.repair && !img->writable) {
		errmsg_set(err, "%s: repair needs the image opened read-write", img->path);
		return -EROFS;
	}
	ret = vd_file_size(&img->file, &file_bytes);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot stat: %s", img->path, strerror(-ret));
		return ret;
	}
	ck.nclusters = (file_bytes + img->cluster_bytes - 1) >> img->cluster_bits;
	if (img->writable && img->end_clusters > ck.nclusters) {
		ck.nclusters = img->end_clusters;
	}
	ck.refs = calloc(ck.nclusters + 1, sizeof(*ck.refs));
	ck.kinds = calloc(ck.nclusters + 1, 1);
	res->total_clusters = img->guest_clusters;
	ret = ck.refs && ck.kinds ? run_check(&ck) : -ENOMEM;
	if (ret < 0) {
		errmsg_set(err, "%s: check failed: %s", img->path, strerror(-ret));
	}
	free(ck.refs);
	free(ck.kinds);
	return ret;
}
