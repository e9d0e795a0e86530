/* SPDX-License-Identifier: MIT */
/* snapshot.c: internal snapshots.  A snapshot is a copy of the L1 table
 * plus one more reference on each L2 table it points to; data clusters are
 * shared lazily (io.c copies an L2 table up when the disk first writes
 * through a shared one).  So taking a snapshot costs the same whether 1 GiB
 * or 1 TiB is allocated.
 *
 * Deleting frees an unbounded number of clusters, more than one journal
 * transaction holds, so it is made of consistent steps: the snapshot is
 * first flagged DELETING (hidden) in one transaction, then its L1 is cleared
 * one L2 table at a time, each step leaving refcounts exact; a writer that
 * opens the image finishes an interrupted deletion.  Revert moves the disk's
 * current L1 into such a DELETING entry (references move, counts stay) and
 * points the disk at the snapshot's tables in one transaction. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static uint32_t entry_bytes(uint32_t name_bytes)
{
	return sizeof(struct vd_disk_snapshot) + ((name_bytes + 7) & ~7u);
}

static uint32_t l1_block_bytes(uint32_t entries)
{
	return (entries * 8 + 511) & ~511u;
}

static uint64_t clusters_for(const struct vd_image *img, uint64_t bytes)
{
	return (bytes + img->cluster_bytes - 1) >> img->cluster_bits;
}

void vd_snapshots_free(struct vd_image *img)
{
	for (uint32_t i = 0; i < img->nsnaps; i++) {
		free(img->snaps[i].name);
	}
	free(img->snaps);
	img->snaps = NULL;
	img->nsnaps = 0;
}

static int parse_entry(struct vd_image *img, const uint8_t *p, uint32_t room,
		       struct vd_snap *s, uint32_t *usedp)
{
	struct vd_disk_snapshot d;
	uint32_t nb;

	if (room < sizeof(d)) {
		return -EUCLEAN;
	}
	memcpy(&d, p, sizeof(d));
	nb = le32toh(d.name_bytes);
	if (nb == 0 || nb > VD_SNAP_NAME_MAX || entry_bytes(nb) > room ||
	    (le32toh(d.flags) & ~VD_SNAP_KNOWN_FLAGS) || memchr(p + sizeof(d), 0, nb)) {
		return -EUCLEAN;
	}
	s->l1_offset = le64toh(d.l1_offset);
	s->l1_entries = le32toh(d.l1_entries);
	s->flags = le32toh(d.flags);
	s->id = le64toh(d.id);
	s->date_ns = le64toh(d.date_ns);
	s->size_bytes = le64toh(d.size_bytes);
	/* Written so that nothing wraps (found by fuzzing). */
	if ((s->l1_offset & (img->cluster_bytes - 1)) || !s->l1_offset ||
	    s->l1_entries == 0 || s->l1_entries > (UINT32_MAX - 511) / 8 ||
	    s->l1_offset > img->file_bytes ||
	    (uint64_t)s->l1_entries * 8 > img->file_bytes - s->l1_offset) {
		return -EUCLEAN;
	}
	s->name = strndup((const char *)p + sizeof(d), nb);
	if (!s->name) {
		return -ENOMEM;
	}
	*usedp = entry_bytes(nb);
	return 0;
}

int vd_snapshots_load(struct vd_image *img, struct errmsg *err)
{
	uint32_t bytes = img->hdr.snapshot_table_bytes, pos = 0;
	uint8_t *buf;
	int ret = 0;

	if (img->hdr.snapshot_count == 0) {
		return 0;
	}
	if ((img->hdr.snapshot_table_offset & (img->cluster_bytes - 1)) ||
	    img->hdr.snapshot_table_offset > img->file_bytes ||
	    bytes > img->file_bytes - img->hdr.snapshot_table_offset ||
	    bytes > UINT32_MAX - 511 ||
	    img->hdr.snapshot_count > bytes / sizeof(struct vd_disk_snapshot)) {
		errmsg_set(err, "%s: snapshot table at 0x%" PRIx64 " (offset 96) is out of the file",
			   img->path, img->hdr.snapshot_table_offset);
		return -EUCLEAN;
	}
	buf = vd_aligned_alloc((bytes + 511) & ~511u);
	img->snaps = calloc(img->hdr.snapshot_count, sizeof(*img->snaps));
	if (!buf || !img->snaps) {
		free(buf);
		return -ENOMEM;
	}
	ret = vd_meta_read(img, buf, (bytes + 511) & ~511u, img->hdr.snapshot_table_offset);
	for (uint32_t i = 0; i < img->hdr.snapshot_count && ret == 0; i++) {
		uint32_t used;

		ret = parse_entry(img, buf + pos, bytes - pos, &img->snaps[i], &used);
		if (ret == 0) {
			img->nsnaps++;
			pos += used;
		} else if (ret == -EUCLEAN) {
			errmsg_set(err, "%s: snapshot table entry %" PRIu32 " is corrupt", img->path,
				   i);
		}
	}
	free(buf);
	return ret;
}

/* Writes the snapshot list as a new table in new clusters and frees the old
 * one (the header switch is in the same transaction).  The new table's block
 * goes to '*blkp' for the caller to release after the commit. */
static int write_table(struct vd_image *img, struct vd_mblock **blkp)
{
	uint32_t bytes = 0, pos = 0;
	uint64_t old_off = img->hdr.snapshot_table_offset, first = 0;
	uint64_t old_n = clusters_for(img, img->hdr.snapshot_table_bytes);
	struct vd_mblock *blk = NULL;
	int ret;

	for (uint32_t i = 0; i < img->nsnaps; i++) {
		bytes += entry_bytes(strlen(img->snaps[i].name));
	}
	if (bytes) {
		ret = vd_cluster_alloc_run(img, clusters_for(img, bytes), &first);
		if (ret < 0) {
			return ret;
		}
		blk = vd_mblock_new_pinned(img, vd_cluster_off(img, first), (bytes + 511) & ~511u);
		if (!blk) {
			return -ENOMEM;
		}
	}
	for (uint32_t i = 0; i < img->nsnaps; i++) {
		const struct vd_snap *s = &img->snaps[i];
		struct vd_disk_snapshot d = {
			.l1_offset = htole64(s->l1_offset),
			.l1_entries = htole32(s->l1_entries),
			.name_bytes = htole32(strlen(s->name)),
			.id = htole64(s->id),
			.date_ns = htole64(s->date_ns),
			.size_bytes = htole64(s->size_bytes),
			.flags = htole32(s->flags),
		};

		memcpy(blk->data + pos, &d, sizeof(d));
		memcpy(blk->data + pos + sizeof(d), s->name, strlen(s->name));
		pos += entry_bytes(strlen(s->name));
	}
	/* With no snapshots there is no old table, whatever stale offset a
	 * damaged header holds: freeing it could free guest data (fuzzing). */
	for (uint64_t c = 0; c < old_n && old_off && img->hdr.snapshot_count; c++) {
		ret = vd_cluster_unref(img, vd_off_cluster(img, old_off) + c);
		if (ret < 0) {
			return ret;
		}
	}
	img->hdr.snapshot_table_offset = bytes ? vd_cluster_off(img, first) : 0;
	img->hdr.snapshot_table_bytes = bytes;
	img->hdr.snapshot_count = img->nsnaps;
	vd_header_changed(img);
	*blkp = blk;
	return 0;
}

static int find(struct vd_image *img, const char *name, const char *path, struct errmsg *err)
{
	for (uint32_t i = 0; i < img->nsnaps; i++) {
		if (!(img->snaps[i].flags & VD_SNAP_DELETING) && strcmp(img->snaps[i].name, name) == 0) {
			return (int)i;
		}
	}
	errmsg_set(err, "%s: no snapshot named '%s'", path, name);
	return -ENOENT;
}

static int add_snap(struct vd_image *img, const struct vd_snap *s)
{
	struct vd_snap *n = realloc(img->snaps, (img->nsnaps + 1) * sizeof(*n));

	if (!n) {
		return -ENOMEM;
	}
	img->snaps = n;
	n[img->nsnaps] = *s;
	n[img->nsnaps].name = strdup(s->name);
	if (!n[img->nsnaps].name) {
		return -ENOMEM;
	}
	img->nsnaps++;
	return 0;
}

/* A snapshot or revert changes up to one L1 entry and one L2 refcount per
 * L1 entry in one transaction (docs/vdisk-format.md: about 56 bytes of
 * records each), which must fit in half the journal. */
static bool journal_fits(const struct vd_image *img)
{
	return (uint64_t)img->hdr.l1_entries * VD_JOURNAL_BYTES_PER_L1 <= img->hdr.journal_bytes;
}

static uint64_t next_id(const struct vd_image *img)
{
	uint64_t id = 1;

	for (uint32_t i = 0; i < img->nsnaps; i++) {
		id = img->snaps[i].id >= id ? img->snaps[i].id + 1 : id;
	}
	return id;
}

/* Copies the active L1 into new clusters; no refcount changes. */
static int copy_active_l1(struct vd_image *img, struct vd_snap *s, struct vd_mblock **blkp)
{
	uint32_t bytes = l1_block_bytes(img->hdr.l1_entries);
	struct vd_mblock *blk;
	uint64_t first;
	int ret = vd_cluster_alloc_run(img, clusters_for(img, bytes), &first);

	if (ret < 0) {
		return ret;
	}
	blk = vd_mblock_new_pinned(img, vd_cluster_off(img, first), bytes);
	if (!blk) {
		return -ENOMEM;
	}
	memcpy(blk->data, img->l1_blk->data, bytes);
	s->l1_offset = vd_cluster_off(img, first);
	s->l1_entries = img->hdr.l1_entries;
	s->size_bytes = img->hdr.size_bytes;
	*blkp = blk;
	return 0;
}

/* Commits, then drops the transient blocks. */
static int finish_op(struct vd_image *img, struct vd_mblock *a, struct vd_mblock *b, int ret)
{
	int ret2;

	if (ret == 0) {
		ret = vd_journal_commit(img);
	}
	if (ret == 0) {
		ret2 = vd_mblock_release(img, a);
		ret = ret2 < 0 ? ret2 : vd_mblock_release(img, b);
	}
	return ret;
}

int vd_snapshot_create(struct vd_image *img, const char *name, struct errmsg *err)
{
	struct vd_mblock *l1 = NULL, *table = NULL;
	struct vd_snap s = {.name = (char *)name};
	struct timespec ts;
	int ret;

	if (!img->writable) {
		errmsg_set(err, "%s: opened read-only", img->path);
		return -EROFS;
	}
	if (!name[0] || strlen(name) > VD_SNAP_NAME_MAX) {
		errmsg_set(err, "%s: a snapshot name has 1 to 255 bytes", img->path);
		return -EINVAL;
	}
	if (find(img, name, img->path, NULL) >= 0) {
		errmsg_set(err, "%s: snapshot '%s' exists", img->path, name);
		return -EEXIST;
	}
	if (!journal_fits(img)) {
		errmsg_set(err, "%s: the journal (%u bytes) is too small for a snapshot of a disk "
			   "with %u L1 entries; convert to a new image", img->path,
			   img->hdr.journal_bytes, img->hdr.l1_entries);
		return -EFBIG;
	}
	ret = vd_journal_commit(img);
	if (ret == 0) {
		ret = copy_active_l1(img, &s, &l1);
	}
	for (uint32_t i = 0; i < img->hdr.l1_entries && ret == 0; i++) {
		uint64_t off = vd_get64(img->l1_blk, i) & VD_L1_OFFSET_MASK;

		if (off) {
			ret = vd_refcount_add(img, vd_off_cluster(img, off), 1);
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	s.id = next_id(img);
	s.date_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	if (ret == 0) {
		ret = add_snap(img, &s);
	}
	if (ret == 0) {
		ret = write_table(img, &table);
	}
	ret = finish_op(img, l1, table, ret);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot create snapshot '%s': %s", img->path, name,
			   strerror(-ret));
	}
	return ret;
}

/* Drops one reference to the L2 table at 'l2off'; the last one frees the
 * table and a reference to each of its data clusters. */
int vd_l2_unref(struct vd_image *img, uint64_t l2off)
{
	struct vd_mblock *l2 = NULL;
	uint16_t ref;
	int ret = vd_refcount_get(img, vd_off_cluster(img, l2off), &ref);

	if (ret < 0 || ref != 1) {
		return ret < 0 ? ret : vd_cluster_unref(img, vd_off_cluster(img, l2off));
	}
	ret = vd_mblock_get(img, l2off, &l2);
	for (uint32_t j = 0; j < img->l2_entries && ret == 0; j++) {
		uint64_t e = vd_l2_get(img, l2, j), off = e & VD_L2_OFFSET_MASK;

		ret = vd_check_l2_entry(img, e);
		if (ret == 0 && off) {
			ret = vd_cluster_unref(img, vd_off_cluster(img, off));
		}
	}
	if (l2) {
		vd_mblock_put(l2);
	}
	return ret < 0 ? ret : vd_cluster_unref(img, vd_off_cluster(img, l2off));
}

/* Clears a DELETING snapshot's L1 one table at a time (each step exact, with
 * commits in between as the journal needs), then frees its L1 and entry. */
static int finish_deleting(struct vd_image *img, uint32_t idx)
{
	struct vd_snap s = img->snaps[idx];
	struct vd_mblock *l1, *table = NULL;
	int ret = vd_mblock_pinned(img, s.l1_offset, l1_block_bytes(s.l1_entries), &l1);

	for (uint32_t i = 0; i < s.l1_entries && ret == 0; i++) {
		uint64_t off = vd_get64(l1, i) & VD_L1_OFFSET_MASK;

		if (!off) {
			continue;
		}
		vd_set64(img, l1, i, 0);
		ret = vd_l2_unref(img, off);
		if (ret == 0) {
			ret = vd_meta_boundary(img);
		}
	}
	for (uint64_t c = 0; c < clusters_for(img, s.l1_entries * 8ull) && ret == 0; c++) {
		ret = vd_cluster_unref(img, vd_off_cluster(img, s.l1_offset) + c);
	}
	if (ret == 0) {
		free(img->snaps[idx].name);
		memmove(&img->snaps[idx], &img->snaps[idx + 1],
			(img->nsnaps - idx - 1) * sizeof(*img->snaps));
		img->nsnaps--;
		ret = write_table(img, &table);
	}
	return finish_op(img, ret == 0 ? l1 : NULL, table, ret);
}

int vd_snapshots_resume(struct vd_image *img)
{
	int ret = 0;

	for (uint32_t i = 0; i < img->nsnaps && ret == 0;) {
		if (img->snaps[i].flags & VD_SNAP_DELETING) {
			ret = finish_deleting(img, i);
		} else {
			i++;
		}
	}
	return ret;
}

static int flag_deleting(struct vd_image *img, uint32_t idx)
{
	struct vd_mblock *table = NULL;
	int ret;

	img->snaps[idx].flags |= VD_SNAP_DELETING;
	ret = write_table(img, &table);
	return finish_op(img, NULL, table, ret);
}

int vd_snapshot_delete(struct vd_image *img, const char *name, struct errmsg *err)
{
	int idx = find(img, name, img->path, err), ret;

	if (idx < 0) {
		return idx;
	}
	if (!img->writable) {
		errmsg_set(err, "%s: opened read-only", img->path);
		return -EROFS;
	}
	ret = vd_journal_commit(img);
	if (ret == 0) {
		ret = flag_deleting(img, idx);
	}
	if (ret == 0) {
		ret = finish_deleting(img, idx);
	}
	if (ret < 0) {
		errmsg_set(err, "%s: cannot delete snapshot '%s': %s", img->path, name,
			   strerror(-ret));
	}
	return ret;
}

static int read_l1(struct vd_image *img, const struct vd_snap *s, uint64_t **l1p)
{
	uint32_t bytes = l1_block_bytes(s->l1_entries);
	uint64_t *l1 = vd_aligned_alloc(bytes);
	int ret;

	if (!l1) {
		return -ENOMEM;
	}
	ret = vd_meta_read(img, l1, bytes, s->l1_offset);
	if (ret < 0) {
		free(l1);
		return ret;
	}
	for (uint32_t i = 0; i < s->l1_entries; i++) {
		l1[i] = le64toh(l1[i]);
	}
	*l1p = l1;
	return 0;
}

int vd_snapshot_revert(struct vd_image *img, const char *name, struct errmsg *err)
{
	struct vd_snap trash = {.name = "", .flags = VD_SNAP_DELETING};
	struct vd_mblock *tl1 = NULL, *table = NULL;
	int idx = find(img, name, img->path, err), ret;
	uint64_t *l1 = NULL;

	if (idx < 0) {
		return idx;
	}
	if (!img->writable) {
		errmsg_set(err, "%s: opened read-only", img->path);
		return -EROFS;
	}
	if (img->snaps[idx].l1_entries != img->hdr.l1_entries ||
	    img->snaps[idx].size_bytes != img->hdr.size_bytes) {
		errmsg_set(err, "%s: snapshot '%s' has another virtual size", img->path, name);
		return -EOPNOTSUPP;
	}
	if (!journal_fits(img)) {
		errmsg_set(err, "%s: the journal (%u bytes) is too small to revert a disk with %u "
			   "L1 entries", img->path, img->hdr.journal_bytes, img->hdr.l1_entries);
		return -EFBIG;
	}
	ret = vd_journal_commit(img);
	if (ret == 0) {
		ret = read_l1(img, &img->snaps[idx], &l1);
	}
	/* The disk's tables move to the trash entry: their counts stay. */
	if (ret == 0) {
		ret = copy_active_l1(img, &trash, &tl1);
	}
	for (uint32_t i = 0; i < img->hdr.l1_entries && ret == 0; i++) {
		uint64_t off = l1[i] & VD_L1_OFFSET_MASK;

		vd_set64(img, img->l1_blk, i, off);
		if (off) {
			ret = vd_refcount_add(img, vd_off_cluster(img, off), 1);
		}
	}
	trash.id = next_id(img);
	trash.name = "(revert)";
	if (ret == 0) {
		ret = add_snap(img, &trash);
	}
	if (ret == 0) {
		ret = write_table(img, &table);
	}
	ret = finish_op(img, tl1, table, ret);
	free(l1);
	if (ret == 0) {
		ret = finish_deleting(img, img->nsnaps - 1);
	}
	if (ret < 0) {
		errmsg_set(err, "%s: cannot revert to snapshot '%s': %s", img->path, name,
			   strerror(-ret));
	}
	return ret;
}

int vd_snapshot_count(struct vd_image *img)
{
	int n = 0;

	for (uint32_t i = 0; i < img->nsnaps; i++) {
		n += !(img->snaps[i].flags & VD_SNAP_DELETING);
	}
	return n;
}

/* Counts what a snapshot maps and what only it holds: a table only it
 * references, and the data clusters only that table references. */
static int account(struct vd_image *img, const struct vd_snap *s, uint64_t *uniquep,
		   uint64_t *refp)
{
	uint64_t *l1 = NULL, unique = 0, refd = 0;
	int ret = read_l1(img, s, &l1);

	for (uint32_t i = 0; i < s->l1_entries && ret == 0; i++) {
		uint64_t off = l1[i] & VD_L1_OFFSET_MASK;
		struct vd_mblock *l2;
		uint16_t tref = 0;

		if (!off) {
			continue;
		}
		ret = vd_refcount_get(img, vd_off_cluster(img, off), &tref);
		if (ret < 0 || (ret = vd_mblock_get(img, off, &l2)) < 0) {
			break;
		}
		unique += tref == 1;
		for (uint32_t j = 0; j < img->l2_entries && ret == 0; j++) {
			uint64_t d = vd_l2_get(img, l2, j) & VD_L2_OFFSET_MASK;
			uint16_t dref = 0;

			if (!d) {
				continue;
			}
			refd++;
			ret = vd_refcount_get(img, vd_off_cluster(img, d), &dref);
			unique += ret == 0 && tref == 1 && dref == 1;
		}
		vd_mblock_put(l2);
		if (ret == 0) {
			ret = vd_cache_trim(img);
		}
	}
	unique += clusters_for(img, s->l1_entries * 8ull);
	free(l1);
	*uniquep = unique << img->cluster_bits;
	*refp = refd << img->cluster_bits;
	return ret;
}

int vd_snapshot_get(struct vd_image *img, unsigned index, struct vd_snapshot_info *info)
{
	for (uint32_t i = 0; i < img->nsnaps; i++) {
		const struct vd_snap *s = &img->snaps[i];

		if ((s->flags & VD_SNAP_DELETING) || index-- > 0) {
			continue;
		}
		info->name = s->name;
		info->id = s->id;
		info->date_ns = s->date_ns;
		info->size_bytes = s->size_bytes;
		return account(img, s, &info->unique_bytes, &info->referenced_bytes);
	}
	return -ENOENT;
}

/* An L1 as an array: a snapshot's (read) or the disk's (copied). */
static int l1_of(struct vd_image *img, const char *name, uint64_t **l1p, uint32_t *np,
		 struct errmsg *err)
{
	int idx;

	if (!name) {
		uint64_t *l1 = malloc(img->hdr.l1_entries * 8ull);

		if (!l1) {
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < img->hdr.l1_entries; i++) {
			l1[i] = vd_get64(img->l1_blk, i);
		}
		*l1p = l1;
		*np = img->hdr.l1_entries;
		return 0;
	}
	idx = find(img, name, img->path, err);
	if (idx < 0) {
		return idx;
	}
	*np = img->snaps[idx].l1_entries;
	return read_l1(img, &img->snaps[idx], l1p);
}

static int load_l2(struct vd_image *img, uint64_t off, uint64_t *out)
{
	struct vd_mblock *l2;
	int ret;

	if (!off) {
		memset(out, 0, img->cluster_bytes);
		return 0;
	}
	ret = vd_mblock_get(img, off, &l2);
	if (ret < 0) {
		return ret;
	}
	/* Every u64 word: with subclusters, entries and bitmaps alike. */
	for (uint32_t j = 0; j < img->cluster_bytes / 8; j++) {
		out[j] = vd_get64(l2, j);
	}
	vd_mblock_put(l2);
	return vd_cache_trim(img);
}

struct diff_run {
	vd_extent_fn fn;
	void *arg;
	uint64_t start, len, limit;
};

static int diff_emit(struct diff_run *r, uint64_t off, uint64_t len)
{
	int ret = 0;

	if (off >= r->limit) {
		return 0;
	}
	len = off + len > r->limit ? r->limit - off : len;
	if (r->len && r->start + r->len == off) {
		r->len += len;
		return 0;
	}
	if (r->len) {
		ret = r->fn(r->arg, r->start, r->len);
	}
	r->start = off;
	r->len = len;
	return ret;
}

/* The subclusters of two extended entries (word 0 and bitmaps each) whose
 * contents may differ: a different state, or data in different host
 * clusters (a copy made on write counts as different: it is not read). */
static uint32_t sc_differ(uint64_t ea, uint64_t ba, uint64_t eb, uint64_t bb)
{
	uint32_t d = (VD_SC_ALLOC(ba) ^ VD_SC_ALLOC(bb)) | (VD_SC_ZERO(ba) ^ VD_SC_ZERO(bb));

	if ((ea & VD_L2_OFFSET_MASK) != (eb & VD_L2_OFFSET_MASK)) {
		d |= VD_SC_ALLOC(ba) & VD_SC_ALLOC(bb);
	}
	return d;
}

/* Emits what differs between entry 'j' of the L2 tables 'ta' and 'tb' (all
 * their u64 words) at guest offset 'goff'. */
static int diff_entry(struct vd_image *img, struct diff_run *run, const uint64_t *ta,
		      const uint64_t *tb, uint32_t j, uint64_t goff)
{
	uint32_t d;
	int ret = 0;

	if (!img->l2_shift) {
		return ta[j] != tb[j] ? diff_emit(run, goff, img->cluster_bytes) : 0;
	}
	d = sc_differ(ta[2 * j], ta[2 * j + 1], tb[2 * j], tb[2 * j + 1]);
	for (uint32_t k = 0; d && ret == 0; k++, d >>= 1) {
		if (d & 1) {
			ret = diff_emit(run, goff + ((uint64_t)k << img->sc_bits), img->sc_bytes);
		}
	}
	return ret;
}

int vd_snapshot_diff(struct vd_image *img, const char *from, const char *to, vd_extent_fn fn,
		     void *arg, struct errmsg *err)
{
	uint64_t *a = NULL, *b = NULL, *ta, *tb;
	uint32_t na = 0, nb = 0;
	/* Up to the larger side: a snapshot may be larger than a shrunk disk. */
	struct diff_run run = {.fn = fn, .arg = arg, .limit = img->hdr.size_bytes};
	uint64_t span = (uint64_t)img->l2_entries << img->cluster_bits;
	int ret = l1_of(img, from, &a, &na, err);

	if (ret == 0) {
		ret = l1_of(img, to, &b, &nb, err);
	}
	for (uint32_t i = 0; ret == 0 && i < img->nsnaps; i++) {
		const struct vd_snap *s = &img->snaps[i];

		if (!(s->flags & VD_SNAP_DELETING) && s->size_bytes > run.limit &&
		    (strcmp(s->name, from) == 0 || (to && strcmp(s->name, to) == 0))) {
			run.limit = s->size_bytes;
		}
	}
	ta = vd_aligned_alloc(img->cluster_bytes);
	tb = vd_aligned_alloc(img->cluster_bytes);
	if (ret == 0 && (!ta || !tb)) {
		ret = -ENOMEM;
	}
	for (uint32_t i = 0; i < (na > nb ? na : nb) && ret == 0; i++) {
		uint64_t ea = i < na ? a[i] & VD_L1_OFFSET_MASK : 0;
		uint64_t eb = i < nb ? b[i] & VD_L1_OFFSET_MASK : 0;

		/* The same table (or none on both sides): nothing changed. */
		if (ea == eb) {
			continue;
		}
		ret = load_l2(img, ea, ta);
		if (ret == 0) {
			ret = load_l2(img, eb, tb);
		}
		for (uint32_t j = 0; j < img->l2_entries && ret == 0; j++) {
			ret = diff_entry(img, &run, ta, tb, j,
					 i * span + ((uint64_t)j << img->cluster_bits));
		}
	}
	if (ret == 0 && run.len) {
		ret = fn(arg, run.start, run.len);
	}
	free(a);
	free(b);
	free(ta);
	free(tb);
	return ret;
}

/* A snapshot read as it was taken: its L1 copied once, one L2 table kept
 * (the last one used), data read straight from the file. */
struct vd_snap_view {
	struct vd_image *img;
	uint64_t *l1;
	uint32_t l1_entries;
	uint64_t size_bytes;
	uint64_t *l2;	       /* cluster_bytes: the table at l2_off */
	uint64_t l2_off;       /* UINT64_MAX: none loaded */
};

int vd_snapshot_view_open(struct vd_image *img, const char *name, struct vd_snap_view **viewp,
			  struct errmsg *err)
{
	struct vd_snap_view *v;
	int idx = find(img, name, img->path, err);
	int ret;

	if (idx < 0) {
		return idx;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		return -ENOMEM;
	}
	v->img = img;
	v->l1_entries = img->snaps[idx].l1_entries;
	v->size_bytes = img->snaps[idx].size_bytes;
	v->l2_off = UINT64_MAX;
	v->l2 = vd_aligned_alloc(img->cluster_bytes);
	ret = v->l2 ? read_l1(img, &img->snaps[idx], &v->l1) : -ENOMEM;
	if (ret < 0) {
		errmsg_set(err, "%s: cannot read snapshot '%s': %s", img->path, name, strerror(-ret));
		vd_snapshot_view_close(v);
		return ret;
	}
	*viewp = v;
	return 0;
}

void vd_snapshot_view_close(struct vd_snap_view *v)
{
	if (v) {
		free(v->l1);
		free(v->l2);
		free(v);
	}
}

uint64_t vd_snapshot_view_size(const struct vd_snap_view *v)
{
	return v->size_bytes;
}

/* The L2 entry of the cluster holding guest offset 'off'. */
static int view_entry(struct vd_snap_view *v, uint64_t off, uint64_t *entp, uint64_t *bmp)
{
	struct vd_image *img = v->img;
	uint64_t cl = off >> img->cluster_bits;
	uint64_t i1 = cl / img->l2_entries, l2off;
	int ret;

	l2off = i1 < v->l1_entries ? v->l1[i1] & VD_L1_OFFSET_MASK : 0;
	if (l2off != v->l2_off) {
		ret = load_l2(img, l2off, v->l2);
		if (ret < 0) {
			v->l2_off = UINT64_MAX;
			return ret;
		}
		v->l2_off = l2off;
	}
	*entp = v->l2[(cl % img->l2_entries) << img->l2_shift];
	*bmp = img->l2_shift ? v->l2[((cl % img->l2_entries) << 1) + 1] : 0;
	return 0;
}

/* The part of the snapshot's entry (word 0 'ent', bitmaps 'bm') that
 * holds guest offset 'off' as an entry without subclusters would say it:
 * '*hostp' the host offset of 'off' (0: none), '*zerop' reads zeros; sets
 * '*np' to the bytes from 'off' in that state (at most to the cluster's
 * end). */
static void view_state(const struct vd_image *img, uint64_t off, uint64_t ent, uint64_t bm,
		       uint64_t *hostp, bool *zerop, uint64_t *np)
{
	uint64_t cb = img->cluster_bytes, in = off & (cb - 1), host = ent & VD_L2_OFFSET_MASK;
	uint32_t k;

	*np = cb - in;
	if (!img->l2_shift) {
		*hostp = host ? host + in : 0;
		*zerop = ent & VD_L2_ZERO;
		return;
	}
	k = in >> img->sc_bits;
	*np = ((uint64_t)(k + 1) << img->sc_bits) - in;
	*hostp = (VD_SC_ALLOC(bm) >> k) & 1 ? host + in : 0;
	*zerop = (VD_SC_ZERO(bm) >> k) & 1;
}

int vd_snapshot_view_extent(struct vd_snap_view *v, uint64_t off, uint64_t max, uint64_t *lenp,
			    bool *heldp)
{
	uint64_t cb = v->img->cluster_bytes, len = 0;
	bool first = true, held = false;

	if (off >= v->size_bytes || max == 0) {
		return -EINVAL;
	}
	max = max > v->size_bytes - off ? v->size_bytes - off : max;
	while (len < max) {
		uint64_t ent, bm = 0, n = cb - ((off + len) & (cb - 1)), host = 0;
		int ret = view_entry(v, off + len, &ent, &bm);
		bool h, zero;

		if (ret < 0) {
			return ret;
		}
		view_state(v->img, off + len, ent, bm, &host, &zero, &n);
		h = host != 0;
		if (!first && h != held) {
			break;
		}
		held = h;
		first = false;
		len += n;
	}
	*lenp = len > max ? max : len;
	*heldp = held;
	return 0;
}

int vd_snapshot_view_pread(struct vd_snap_view *v, void *buf, size_t len, uint64_t off)
{
	struct vd_image *img = v->img;
	uint64_t cb = img->cluster_bytes;
	uint8_t *p = buf;

	if (off > v->size_bytes || len > v->size_bytes - off) {
		return -EINVAL;
	}
	while (len) {
		uint64_t ent = 0, bm = 0, host = 0, part = cb;
		int ret = view_entry(v, off, &ent, &bm);
		bool zero = false;
		size_t n;

		if (ret == 0) {
			view_state(img, off, ent, bm, &host, &zero, &part);
		}
		n = len < part ? len : (size_t)part;
		if (ret == 0 && host) {
			ret = vd_file_pread(&img->file, p, n, host);
		} else if (ret == 0 && !zero && img->backing &&
			   off < vd_size_bytes(img->backing)) {
			/* Never written here: what the backing chain says, as
			 * for the disk (a rebase is refused while snapshots
			 * exist, so the chain is the one it was taken on). */
			uint64_t bsize = vd_size_bytes(img->backing);
			size_t in_b = off + n > bsize ? (size_t)(bsize - off) : n;

			memset(p + in_b, 0, n - in_b);
			ret = vd_pread(img->backing, p, in_b, off);
		} else if (ret == 0) {
			memset(p, 0, n);
		}
		if (ret < 0) {
			return ret;
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}
