/* SPDX-License-Identifier: MIT */
/* check.c: consistency check and repair.  Walks every structure the header
 * reaches, counts the references to each cluster and remembers what kind of
 * structure uses it, then compares with the stored refcounts (as qemu-img
 * check does for qcow2: stored above counted is a leak, below is
 * corruption).  Repairs go through the journal like any other change.
 *
 * The rules repair keeps (issue 11: a repair through aliased refcount
 * blocks freed the header, journal and L1 and let new writes land on live
 * data):
 *
 *   1. The guest's mapping is walked before the refcount blocks, so a
 *      refcount table entry that collides with an L2 table or a data
 *      cluster is what is wrong, never the guest's data.  Within the
 *      mapping, an L1 entry naming a cluster that cannot be an L2 table
 *      loses to an L2 entry naming it as data (walk_mapping).
 *   2. A refcount is changed in place only when the refcount structures are
 *      sound: every table entry valid, no block shared or colliding with
 *      anything, every referenced cluster covered.  Then each stored
 *      refcount belongs to exactly one cluster and setting it to the
 *      counted value frees only what nothing references.
 *   3. Otherwise the refcount structures are rebuilt from the references:
 *      a new table and new blocks are written past every referenced
 *      cluster and past the end of the file, made durable, and only then
 *      does one journal transaction switch the header to them.  A crash
 *      before that commit leaves the old (damaged) structures, after it
 *      the new ones; nothing referenced is ever counted free.
 *   4. A snapshot deletion interrupted by a crash (a DELETING entry) is
 *      finished only through structures this check found sound: it writes
 *      refcounts through refcount table entries and frees clusters by their
 *      stored refcounts, so an entry naming guest data, or a refcount below
 *      the references, would let it overwrite or free live data.  Whether
 *      an entry is sound depends on every reference in the image (only the
 *      whole walk shows that it names a data cluster), so a read-write open
 *      runs this check before it finishes one (vd_check_resumable) and
 *      refuses the image when the deletion would go through damage; repair
 *      finishes it itself, after the rebuild.  Damage reached only through
 *      live snapshots, which repair leaves, is not on the deletion's way
 *      (resume_blockers).  A DELETING entry is hidden and about to be freed,
 *      so repair drops its invalid references, as the deletion itself
 *      would, instead of leaving them in the way for ever. */
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
	struct errmsg *err;
	bool repair;
	uint64_t nclusters;
	uint32_t *refs;
	uint8_t *kinds;
	uint8_t *walked;        /* per cluster: L2_WALKED, L2_DEFERRED */
	uint8_t *rt_bad;        /* per refcount table entry: unusable (rule 2) */
	bool rc_broken;         /* the refcount structures need a rebuild */
	uint64_t rc_errors;     /* corruptions a rebuild fixes */
	uint64_t live_snap_errors; /* corruptions reached through live snapshots only */
};

static bool deleting(const struct vd_snap *snap)
{
	return snap && (snap->flags & VD_SNAP_DELETING);
}

/* Counts a corruption found through 'snap' (NULL: the disk's own tables). */
static void snap_corruption(struct checker *ck, const struct vd_snap *snap)
{
	ck->res->corruptions++;
	if (snap && !deleting(snap)) {
		ck->live_snap_errors++;
	}
}

/* Rule 4: the corruptions left that a deletion would go through. */
static uint64_t resume_blockers(const struct checker *ck)
{
	return ck->res->corruptions - ck->res->corruptions_fixed - ck->live_snap_errors;
}

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

/* Counts a contiguous structure; false when some cluster of it failed. */
static bool add_region(struct checker *ck, uint64_t off, uint64_t bytes, enum kind k)
{
	bool ok = true;

	for (uint64_t o = 0; o < bytes; o += ck->img->cluster_bytes) {
		if (!add_ref(ck, off + o, k, "header")) {
			ck->res->corruptions++;
			ok = false;
		}
	}
	return ok;
}

/* An L2 entry that cannot be trusted is unmapped by repair: the guest reads
 * zeros there instead of another structure's bytes.  'snap': the snapshot
 * through which the table was reached first (NULL: the disk). */
static int bad_l2_entry(struct checker *ck, uint64_t l2off, uint32_t j, uint32_t l1i,
			const struct vd_snap *snap)
{
	struct vd_mblock *l2;
	int ret;

	snap_corruption(ck, snap);
	if (!ck->repair || (snap && !deleting(snap))) {
		return 0;
	}
	ret = vd_mblock_get(ck->img, l2off, &l2);
	if (ret < 0) {
		return ret;
	}
	vd_l2_set(ck->img, l2, j, 0);
	if (ck->img->l2_shift) {
		vd_l2_set_bitmap(ck->img, l2, j, 0);
	}
	vd_mblock_put(l2);
	ck->res->corruptions_fixed++;
	say(ck, "Repairing L2 entry %" PRIu64 ": unmapped",
	    (uint64_t)l1i * ck->img->l2_entries + j);
	return 0;
}

/* Through the cache: an open writer's newest tables may not be on disk. */
static int walk_l2(struct checker *ck, uint64_t l2off, uint32_t l1i, uint8_t *buf,
		   const struct vd_snap *snap, uint64_t guest_clusters)
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
		uint64_t e, bm = 0, off;

		memcpy(&e, buf + ((size_t)j << img->l2_shift) * 8, 8);
		e = le64toh(e);
		if (img->l2_shift) {
			memcpy(&bm, buf + ((size_t)j * 2 + 1) * 8, 8);
			bm = le64toh(bm);
		}
		off = e & VD_L2_OFFSET_MASK;
		snprintf(from, sizeof(from), "L2 table at 0x%" PRIx64 " entry %" PRIu32, l2off, j);
		if ((e & (img->l2_shift ? VD_L2_EXT_RESERVED_MASK : VD_L2_RESERVED_MASK)) ||
		    ((e & VD_L2_ZERO) && off)) {
			say(ck, "ERROR %s: invalid entry 0x%016" PRIx64, from, e);
			ret = bad_l2_entry(ck, l2off, j, l1i, snap);
		} else if (VD_SC_ALLOC(bm) & VD_SC_ZERO(bm)) {
			say(ck, "ERROR %s: subclusters 0x%08" PRIx32 " are both allocated and zero",
			    from, VD_SC_ALLOC(bm) & VD_SC_ZERO(bm));
			ret = bad_l2_entry(ck, l2off, j, l1i, snap);
		} else if (VD_SC_ALLOC(bm) && !off) {
			say(ck, "ERROR %s: subclusters allocated without a host cluster", from);
			ret = bad_l2_entry(ck, l2off, j, l1i, snap);
		} else if ((off || bm) && (uint64_t)l1i * img->l2_entries + j >= guest_clusters) {
			say(ck, "ERROR %s: maps a cluster beyond the virtual size", from);
			ret = bad_l2_entry(ck, l2off, j, l1i, snap);
		} else if (off && !add_ref(ck, off, K_DATA, from)) {
			ret = bad_l2_entry(ck, l2off, j, l1i, snap);
		} else if (off) {
			ck->res->allocated_clusters++;
		}
	}
	return ret;
}

#define L2_WALKED 1u
#define L2_DEFERRED 2u

/* Whether the cluster at 'off' could be an L2 table: every entry 0, ZERO,
 * or a valid offset inside the file.  A real table almost always is; guest
 * data almost never is, unless it reads as all zeros, which as a table maps
 * nothing (zeros either way). */
static bool plausible_l2(struct checker *ck, uint64_t off)
{
	struct vd_image *img = ck->img;
	struct vd_mblock *blk;
	bool ok = true;

	if (vd_mblock_get(img, off, &blk) < 0) {
		return true; /* add_ref decides, as for any other reference */
	}
	for (uint32_t j = 0; j < img->l2_entries && ok; j++) {
		uint64_t e = vd_l2_get(img, blk, j), o = e & VD_L2_OFFSET_MASK;
		uint64_t bm = vd_l2_get_bitmap(img, blk, j);

		ok = (e == 0 && !VD_SC_ALLOC(bm)) || (e == VD_L2_ZERO && !img->l2_shift) ||
		     (!(e & (VD_L2_RESERVED_MASK | VD_L2_ZERO)) &&
		      !(o & (img->cluster_bytes - 1)) && (o >> img->cluster_bits) < ck->nclusters);
		ok = ok && !(VD_SC_ALLOC(bm) & VD_SC_ZERO(bm));
	}
	vd_mblock_put(blk);
	return ok;
}

/* Rule 4: a DELETING snapshot's L1 entry that names no valid L2 table is
 * set to 0, as step 2 of the deletion would, without lowering a refcount:
 * the reference was not counted.  Committed at once, so that the table can
 * leave the cache before anything else reads it from the file. */
static int drop_deleting_l1_entry(struct checker *ck, const struct vd_snap *snap, uint32_t i)
{
	struct vd_image *img = ck->img;
	struct vd_mblock *l1;
	int ret = vd_mblock_pinned(img, snap->l1_offset,
				   ((uint32_t)snap->l1_entries * 8 + 511) & ~511u, &l1);

	if (ret < 0) {
		return ret;
	}
	vd_set64(img, l1, i, 0);
	ret = vd_journal_commit(img);
	if (ret == 0) {
		ret = vd_mblock_release(img, l1);
	}
	if (ret == 0) {
		ck->res->corruptions_fixed++;
		say(ck, "Repairing L1 entry %" PRIu32 " of a snapshot being deleted: dropped", i);
	}
	return ret;
}

/* Walks an L1 table: the disk's ('snap' NULL, from the pinned block, the
 * only one repair changes) or a snapshot's (read from the file).  The table
 * pass counts the L2 tables its entries name; the data pass, once every L1
 * table has had its table pass, walks each of those L2 tables once.  So an
 * L2 entry that names another L2 table is the error, never the table and
 * the guest data behind it (found by repair_prop). */
static int walk_l1(struct checker *ck, const struct vd_snap *snap, int pass)
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
		bool valid = !(e & VD_L1_RESERVED_MASK) && !(off & (img->cluster_bytes - 1)) &&
			     (off >> img->cluster_bits) < ck->nclusters;
		uint64_t c = off >> img->cluster_bits;

		if (pass == 0 && valid && ck->kinds[c] == K_FREE && !(ck->walked[c] & L2_DEFERRED) &&
		    !plausible_l2(ck, off)) {
			/* Counted after the data: if an L2 entry names
			 * the cluster as data, this entry is the error. */
			ck->walked[c] |= L2_DEFERRED;
			continue;
		}
		if (pass == 0 && valid && (ck->walked[c] & L2_DEFERRED)) {
			continue;
		}
		if (pass == 2 && !(valid && (ck->walked[c] & L2_DEFERRED))) {
			continue;
		}
		if (pass == 1) {
			/* Each L2 table once, and only what the table pass
			 * counted as one. */
			if (valid && ck->kinds[c] == K_L2 && !(ck->walked[c] & L2_WALKED)) {
				ck->walked[c] |= L2_WALKED;
				ret = walk_l2(ck, off, i, buf, snap,
					      snap ? (snap->size_bytes + img->cluster_bytes - 1) >>
							     img->cluster_bits
						   : img->guest_clusters);
			}
			continue;
		}
		if ((e & VD_L1_RESERVED_MASK) || !add_ref(ck, off, K_L2, from)) {
			if (e & VD_L1_RESERVED_MASK) {
				say(ck, "ERROR %s: invalid entry 0x%016" PRIx64, from, e);
			}
			snap_corruption(ck, snap);
			if (ck->repair && !snap) {
				vd_set64(img, img->l1_blk, i, 0);
				ck->res->corruptions_fixed++;
				say(ck, "Repairing %s: unmapped its L2 table", from);
			} else if (ck->repair && deleting(snap)) {
				ret = drop_deleting_l1_entry(ck, snap, i);
			}
			continue;
		}
		if (pass == 2 && !(ck->walked[c] & L2_WALKED)) {
			ck->walked[c] |= L2_WALKED;
			ret = walk_l2(ck, off, i, buf, snap,
				      snap ? (snap->size_bytes + img->cluster_bytes - 1) >>
						     img->cluster_bits
					   : img->guest_clusters);
		}
	}
	free(buf);
	free(copy);
	return ret;
}

/* The snapshot table and the snapshots' L1 tables are found from the
 * header, validated at open, like the active L1: counted before any L2
 * table, so a stray L1 or L2 entry pointing at them is what gets unmapped
 * (repair would otherwise write guest data over a snapshot's table). */
static void add_snapshot_regions(struct checker *ck)
{
	struct vd_image *img = ck->img;

	add_region(ck, img->hdr.snapshot_table_offset, img->hdr.snapshot_table_bytes,
		   K_SNAPTABLE);
	for (uint32_t i = 0; i < img->nsnaps; i++) {
		add_region(ck, img->snaps[i].l1_offset, img->snaps[i].l1_entries * 8ull, K_L1);
	}
}

/* Pass 0 counts the L2 tables every L1 table names (those that do not look
 * like one are deferred), pass 1 walks their data, pass 2 counts and walks
 * the deferred ones, which lose to any data reference; active disk first. */
static int walk_mapping(struct checker *ck)
{
	struct vd_image *img = ck->img;
	int ret = 0;

	for (int pass = 0; pass < 3 && ret == 0; pass++) {
		ret = walk_l1(ck, NULL, pass);
		for (uint32_t i = 0; i < img->nsnaps && ret == 0; i++) {
			ret = walk_l1(ck, &img->snaps[i], pass);
		}
	}
	return ret;
}

/* After the guest's mapping (rule 1): the refcount blocks. */
static void walk_reftable(struct checker *ck)
{
	struct vd_image *img = ck->img;

	for (uint64_t i = 0; i < img->rt_blk->bytes / 8; i++) {
		uint64_t off = vd_get64(img->rt_blk, i);
		char from[48];

		snprintf(from, sizeof(from), "refcount table entry %" PRIu64, i);
		if (off && ((off & VD_L1_RESERVED_MASK) || !add_ref(ck, off, K_REFBLOCK, from))) {
			if (off & VD_L1_RESERVED_MASK) {
				say(ck, "ERROR %s: invalid entry 0x%016" PRIx64, from, off);
			}
			ck->res->corruptions++;
			ck->rt_bad[i] = 1;
			ck->rc_broken = true;
			ck->rc_errors++;
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
		ck->rc_errors++;
		say(ck, "ERROR cluster %" PRIu64 " refcount=%" PRIu32 " reference=%" PRIu32, c,
		    have, want);
	}
	/* Through damaged structures a stored refcount may be another
	 * cluster's too: the rebuild puts it right instead (rule 2). */
	if (!ck->repair || ck->rc_broken || want > VD_REFCOUNT_MAX) {
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

		if (ck->rt_bad[i]) {
			/* Unusable (reported by walk_reftable): what it holds
			 * says nothing about these clusters. */
			continue;
		}
		if (!off) {
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
				ck->rc_broken = true;
				ck->rc_errors++;
				say(ck, "ERROR cluster %" PRIu64 " is beyond the refcount table", c);
			}
		}
	}
	free(copy);
	return ret;
}

/* The refcount blocks a layout needs: one per region (a block's worth of
 * clusters) holding a referenced cluster below 'first', or a cluster of the
 * new structures at ['first', 'first' + 'len'). */
static uint64_t blocks_needed(const struct checker *ck, uint64_t first, uint64_t len)
{
	uint64_t rb = ck->img->rb_entries, n = 0, last = UINT64_MAX;

	for (uint64_t c = 0; c < first && c < ck->nclusters; c++) {
		if (ck->refs[c] && c / rb != last) {
			last = c / rb;
			n++;
		}
	}
	n += (first + len - 1) / rb - first / rb + 1;
	return last == first / rb ? n - 1 : n;
}

struct rc_layout {
	uint64_t first;         /* cluster of the new table; blocks follow it */
	uint64_t table_clusters;
	uint64_t blocks;
	uint64_t entries;       /* of the new table */
};

/* Places the new structures at 'first': their own refcounts need blocks,
 * more blocks may need a larger table, so iterate to the fixed point (it
 * only grows, and each round adds at most a cluster or two). */
static int plan_layout(struct checker *ck, uint64_t first, struct rc_layout *lay)
{
	struct vd_image *img = ck->img;
	uint64_t rb = img->rb_entries;
	uint64_t cover = vd_reftable_cover(img->guest_clusters, img->hdr.l1_entries);
	uint64_t t = 1, b = 1;

	if (cover < img->rt_blk->bytes / 8 * rb) {
		cover = img->rt_blk->bytes / 8 * rb;
	}
	for (int round = 0; round < 64; round++) {
		uint64_t end = first + t + b, entries, t2, b2;

		entries = ((end > cover ? end : cover) + rb - 1) / rb;
		t2 = (entries * 8 + img->cluster_bytes - 1) >> img->cluster_bits;
		b2 = blocks_needed(ck, first, t2 + b);
		if (t2 == t && b2 == b) {
			if (t > UINT32_MAX / img->cluster_bytes) {
				return -EFBIG;
			}
			*lay = (struct rc_layout){first, t, b, t * img->cluster_bytes / 8};
			return 0;
		}
		t = t2;
		b = b2;
	}
	return -EFBIG;
}

/* Writes the new table and blocks (rule 3: before anything points at them)
 * and makes them durable. */
static int write_structures(struct checker *ck, const struct rc_layout *lay)
{
	struct vd_image *img = ck->img;
	uint64_t rb = img->rb_entries, next = lay->first + lay->table_clusters;
	uint64_t new_end = next + lay->blocks, written = 0;
	size_t tbytes = lay->table_clusters * img->cluster_bytes;
	uint64_t *table = vd_aligned_alloc(tbytes);
	uint16_t *blk = vd_aligned_alloc(img->cluster_bytes);
	int ret = 0;

	if (!table || !blk) {
		ret = -ENOMEM;
		goto out;
	}
	memset(table, 0, tbytes);
	for (uint64_t r = 0; r * rb < new_end && ret == 0; r++) {
		bool used = false;

		for (uint64_t k = 0; k < rb; k++) {
			uint64_t c = r * rb + k;
			uint32_t v = c < lay->first ? (c < ck->nclusters ? ck->refs[c] : 0)
						    : c < new_end;

			blk[k] = htole16((uint16_t)v);
			used |= v != 0;
		}
		if (!used) {
			continue;
		}
		if (written == lay->blocks) {
			ret = -EIO; /* the plan counted fewer: a bug, stop */
			break;
		}
		table[r] = htole64(vd_cluster_off(img, next + written));
		ret = vd_file_pwrite(&img->file, blk, img->cluster_bytes,
				     vd_cluster_off(img, next + written));
		written++;
	}
	if (ret == 0 && written != lay->blocks) {
		ret = -EIO;
	}
	if (ret == 0) {
		ret = vd_file_pwrite(&img->file, table, tbytes, vd_cluster_off(img, lay->first));
	}
	if (ret == 0) {
		ret = vd_file_sync(&img->file);
	}
out:
	free(table);
	free(blk);
	return ret;
}

/* Points the image at the new structures: the cache forgets the old blocks,
 * the free map is learned again from the new ones, and one transaction
 * switches the header (rule 3). */
static int switch_structures(struct checker *ck, const struct rc_layout *lay)
{
	struct vd_image *img = ck->img;
	struct vd_mblock *old = img->rt_blk, *nb;
	int ret;

	for (uint64_t i = 0; i < old->bytes / 8; i++) {
		uint64_t off = vd_get64(old, i);

		if (off && !(off & VD_L1_RESERVED_MASK)) {
			vd_mblock_drop(img, off & ~((uint64_t)img->cluster_bytes - 1));
		}
	}
	ret = vd_mblock_pinned(img, vd_cluster_off(img, lay->first),
			       lay->table_clusters * img->cluster_bytes, &nb);
	if (ret < 0) {
		return ret;
	}
	img->rt_blk = nb;
	img->hdr.refcount_table_offset = vd_cluster_off(img, lay->first);
	img->hdr.refcount_table_clusters = lay->table_clusters;
	vd_header_changed(img);
	ret = vd_file_size(&img->file, &img->file_bytes);
	if (ret == 0) {
		ret = vd_freemap_rebuild(img);
	}
	if (ret == 0) {
		ret = vd_journal_commit(img);
	}
	if (ret == 0) {
		ret = vd_journal_checkpoint(img);
	}
	return ret == 0 ? vd_mblock_release(img, old) : ret;
}

/* Rule 3: new refcount structures from the references, past everything
 * referenced and past the end of the file. */
static int rebuild_refcounts(struct checker *ck)
{
	struct vd_image *img = ck->img;
	uint64_t file_bytes, first;
	struct rc_layout lay;
	int ret;

	for (uint64_t c = 0; c < ck->nclusters; c++) {
		if (ck->kinds[c] == K_REFTABLE || ck->kinds[c] == K_REFBLOCK) {
			ck->refs[c] = 0; /* replaced, so free */
		}
		if (ck->refs[c] > VD_REFCOUNT_MAX) {
			errmsg_set(ck->err, "%s: cluster %" PRIu64 " has %" PRIu32 " references, "
				   "more than a refcount holds: the refcounts cannot be rebuilt",
				   img->path, c, ck->refs[c]);
			return -EMLINK;
		}
	}
	ret = vd_file_size(&img->file, &file_bytes);
	if (ret < 0) {
		return ret;
	}
	first = (file_bytes + img->cluster_bytes - 1) >> img->cluster_bits;
	for (uint64_t c = first; c < ck->nclusters; c++) {
		if (ck->refs[c]) {
			first = c + 1;
		}
	}
	ret = plan_layout(ck, first, &lay);
	if (ret == 0) {
		ret = write_structures(ck, &lay);
	}
	if (ret == 0) {
		ret = switch_structures(ck, &lay);
	}
	if (ret < 0) {
		errmsg_set(ck->err, "%s: rebuilding the refcount structures failed: %s; the "
			   "image still has its old ones", img->path, strerror(-ret));
		return ret;
	}
	say(ck, "Rebuilt the refcount structures: a %" PRIu64 "-cluster refcount table at "
	    "0x%" PRIx64 " and %" PRIu64 " refcount blocks after it", lay.table_clusters,
	    vd_cluster_off(img, lay.first), lay.blocks);
	ck->res->corruptions_fixed += ck->rc_errors;
	ck->res->leaks_fixed = ck->res->leaks;
	return 0;
}

static bool has_deleting(const struct vd_image *img)
{
	for (uint32_t i = 0; i < img->nsnaps; i++) {
		if (deleting(&img->snaps[i])) {
			return true;
		}
	}
	return false;
}

/* Rule 4: after the repair, a deletion a crash interrupted (left pending
 * by the open, VD_OPEN_NO_RESUME) is finished when nothing on its way is
 * still damaged: the refcounts are then exact, so it frees exactly what
 * only the deleted snapshot referenced. */
static int finish_deletions(struct checker *ck)
{
	struct vd_image *img = ck->img;
	int ret;

	if (!has_deleting(img)) {
		return 0;
	}
	if (resume_blockers(ck)) {
		say(ck, "The deletion of a snapshot that a crash interrupted stays pending: "
		    "it would go through damage that repair cannot fix");
		return 0;
	}
	ret = vd_snapshots_resume(img);
	if (ret == 0) {
		ret = vd_journal_checkpoint(img);
	}
	if (ret < 0) {
		errmsg_set(ck->err, "%s: the repair is done, but finishing the interrupted "
			   "deletion of a snapshot failed: %s", img->path, strerror(-ret));
		return ret;
	}
	say(ck, "Finished the deletion of a snapshot that a crash had interrupted");
	return 0;
}

static int run_check(struct checker *ck)
{
	struct vd_image *img = ck->img;
	int ret;

	if (ck->repair) {
		/* Clusters freed before the check (a snapshot deletion
		 * finished at open) must not become free after it, when the
		 * repair may have found them referenced. */
		ret = vd_journal_commit(img);
		if (ret == 0) {
			ret = vd_journal_checkpoint(img);
		}
		if (ret < 0) {
			return ret;
		}
	}
	add_region(ck, 0, img->cluster_bytes, K_HEADER);
	add_region(ck, img->hdr.journal_offset, img->hdr.journal_bytes, K_JOURNAL);
	add_region(ck, img->hdr.l1_offset, (uint64_t)img->hdr.l1_entries * 8, K_L1);
	add_snapshot_regions(ck);
	/* The table itself is named by the header (CRC-protected) and pinned
	 * in the cache, where no L2 table can be read: counted with the
	 * header's other structures. */
	if (!add_region(ck, img->hdr.refcount_table_offset,
			(uint64_t)img->hdr.refcount_table_clusters * img->cluster_bytes,
			K_REFTABLE)) {
		ck->rc_broken = true;
		ck->rc_errors++;
	}
	ret = walk_mapping(ck);
	if (ret == 0) {
		walk_reftable(ck);
		if (ck->rc_broken) {
			say(ck, "ERROR the refcount structures are damaged%s",
			    ck->repair ? "; rebuilding them from the references"
				       : " ('vdisk check --repair' rebuilds them)");
		}
	}
	for (uint64_t i = 0; i < img->rt_blk->bytes / 8 && ret == 0 && ck->repair; i++) {
		if (ck->rt_bad[i]) {
			/* Never read through the entry (found by repair_prop:
			 * an entry naming the active L1 failed the repair). */
			ret = vd_region_learn_used(img, i);
		}
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
	if (ret == 0 && ck->repair && ck->rc_broken) {
		ret = rebuild_refcounts(ck);
	}
	if (ret == 0 && ck->repair) {
		ret = finish_deletions(ck);
	}
	return ret;
}

/* Runs the check; '*blockersp' (may be NULL): the corruptions left that
 * an interrupted deletion would go through (rule 4). */
static int check_image(struct vd_image *img, unsigned flags, struct vd_check_result *res,
		       vd_report_fn report, void *arg, uint64_t *blockersp, struct errmsg *err)
{
	struct checker ck = {
		.img = img, .res = res, .report = report, .arg = arg, .err = err,
		.repair = flags & VD_CHECK_REPAIR,
	};
	uint64_t file_bytes;
	int ret;

	memset(res, 0, sizeof(*res));
	errmsg_clear(err);
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
	ck.walked = calloc(ck.nclusters + 1, 1);
	ck.rt_bad = calloc(img->rt_blk->bytes / 8 + 1, 1);
	res->total_clusters = img->guest_clusters;
	ret = ck.refs && ck.kinds && ck.walked && ck.rt_bad ? run_check(&ck) : -ENOMEM;
	if (ret < 0 && (!err || !err->msg[0])) {
		errmsg_set(err, "%s: check failed: %s", img->path, strerror(-ret));
	}
	if (blockersp) {
		*blockersp = resume_blockers(&ck);
	}
	free(ck.refs);
	free(ck.kinds);
	free(ck.walked);
	free(ck.rt_bad);
	return ret;
}

int vd_check(struct vd_image *img, unsigned flags, struct vd_check_result *res,
	     vd_report_fn report, void *arg, struct errmsg *err)
{
	return check_image(img, flags, res, report, arg, NULL, err);
}

/* Rule 4, for a read-write open about to finish an interrupted deletion:
 * 0 when it may, -EUCLEAN (and why, in one sentence) when the deletion
 * would go through damaged metadata.  Costs a whole check, but only after
 * a crash interrupted a deletion (qcow2 likewise checks a dirty image with
 * lazy refcounts at open). */
int vd_check_resumable(struct vd_image *img, struct errmsg *err)
{
	struct vd_check_result res;
	uint64_t blockers = 0;
	int ret;

	if (!has_deleting(img)) {
		return 0;
	}
	ret = check_image(img, 0, &res, NULL, NULL, &blockers, err);
	if (ret == 0 && blockers) {
		errmsg_set(err, "%s: a snapshot deletion interrupted by a crash cannot be "
			   "finished: the image has %" PRIu64 " errors on its way "
			   "(run 'vdisk check --repair')", img->path, blockers);
		ret = -EUCLEAN;
	}
	return ret;
}
