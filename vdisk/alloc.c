/* SPDX-License-Identifier: MIT */
/* alloc.c: refcounts and free space.  Refcounts live in refcount blocks
 * found through the pinned refcount table; free space is an in-memory
 * bitmap built at open from the refcounts.  A freed cluster waits for the
 * next checkpoint before it is reused (rule 5) and is hole-punched then, so
 * a reused cluster reads as zeros (rule 6).  Clusters found free at open are
 * zeroed only when reused: punching at open would destroy data if a refcount
 * were wrong. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The file grows by at least this many clusters (and an eighth of its
 * length) at a time: ftruncate per cluster would cost a syscall per
 * allocating write. */
#define GROW_MIN_CLUSTERS 64u

static bool bit_get(const uint64_t *map, uint64_t i)
{
	return map[i / 64] & (1ull << (i % 64));
}

static void bit_put(uint64_t *map, uint64_t i, bool v)
{
	if (v) {
		map[i / 64] |= 1ull << (i % 64);
	} else {
		map[i / 64] &= ~(1ull << (i % 64));
	}
}

/* freemap holds two bits per cluster: [2i] free, [2i+1] contents unknown. */
static int freemap_reserve(struct vd_image *img, uint64_t nbits)
{
	uint64_t words, old_words = (img->freemap_bits * 2 + 63) / 64;
	uint64_t *m;

	if (nbits <= img->freemap_bits) {
		return 0;
	}
	nbits = nbits < img->freemap_bits * 2 ? img->freemap_bits * 2 : nbits;
	words = (nbits * 2 + 63) / 64;
	m = realloc(img->freemap, words * sizeof(*m));
	if (!m) {
		return -ENOMEM;
	}
	memset(m + old_words, 0, (words - old_words) * sizeof(*m));
	img->freemap = m;
	img->freemap_bits = nbits;
	return 0;
}

static bool is_free(const struct vd_image *img, uint64_t c)
{
	return c < img->freemap_bits && bit_get(img->freemap, 2 * c);
}

static void set_free(struct vd_image *img, uint64_t c, bool free_, bool unknown)
{
	bit_put(img->freemap, 2 * c, free_);
	bit_put(img->freemap, 2 * c + 1, unknown);
}

static int rb_locate(struct vd_image *img, uint64_t cluster, bool create,
		     struct vd_mblock **rbp, uint32_t *idxp);

static bool in_region(const struct vd_image *img, uint64_t c, uint64_t off, uint64_t bytes)
{
	uint64_t first = off >> img->cluster_bits;

	return c >= first && c < first + ((bytes + img->cluster_bytes - 1) >> img->cluster_bits);
}

/* The header cluster, journal, active L1 and refcount table: whatever a
 * (corrupt) refcount says, these are never free (found by fuzzing). */
static bool fixed_metadata(const struct vd_image *img, uint64_t c)
{
	return c == 0 || in_region(img, c, img->hdr.journal_offset, img->hdr.journal_bytes) ||
	       in_region(img, c, img->hdr.l1_offset, img->hdr.l1_entries * 8ull) ||
	       in_region(img, c, img->hdr.refcount_table_offset,
			 (uint64_t)img->hdr.refcount_table_clusters * img->cluster_bytes);
}

int vd_file_grow(struct vd_image *img, uint64_t end_clusters)
{
	uint64_t want = vd_cluster_off(img, end_clusters), grow;
	int ret;

	if (want <= img->file_bytes) {
		return 0;
	}
	grow = vd_cluster_off(img, GROW_MIN_CLUSTERS);
	grow = img->file_bytes / 8 > grow ? img->file_bytes / 8 : grow;
	grow = (grow + img->cluster_bytes - 1) & ~((uint64_t)img->cluster_bytes - 1);
	if (want < img->file_bytes + grow) {
		want = img->file_bytes + grow;
	}
	ret = vd_file_truncate(&img->file, want);
	if (ret == 0) {
		img->file_bytes = want;
	}
	return ret;
}

/* Extends the image by 'n' clusters at its end. */
static int take_end(struct vd_image *img, uint64_t n, uint64_t *firstp)
{
	uint64_t first = img->end_clusters;
	int ret = freemap_reserve(img, first + n + 1);

	if (ret < 0) {
		return ret;
	}
	ret = vd_file_grow(img, first + n);
	if (ret < 0) {
		return ret;
	}
	img->end_clusters = first + n;
	*firstp = first;
	return 0;
}

/* Takes a cluster off the free map (or the end of the file) without setting
 * its refcount; a reused cluster of unknown contents is zeroed first. */
static int pick_cluster(struct vd_image *img, uint64_t *clusterp)
{
	for (uint64_t c = img->free_hint; c < img->end_clusters; c++) {
		if (!is_free(img, c) || fixed_metadata(img, c)) {
			continue;
		}
		if (bit_get(img->freemap, 2 * c + 1)) {
			int ret = vd_file_punch(&img->file, vd_cluster_off(img, c),
						img->cluster_bytes);

			if (ret < 0) {
				return ret;
			}
		}
		set_free(img, c, false, false);
		img->free_hint = c + 1;
		*clusterp = c;
		return 0;
	}
	img->free_hint = img->end_clusters + 1;
	return take_end(img, 1, clusterp);
}

int vd_refcount_get(struct vd_image *img, uint64_t cluster, uint16_t *refp)
{
	struct vd_mblock *rb;
	uint32_t idx;
	uint16_t v;
	int ret = rb_locate(img, cluster, false, &rb, &idx);

	if (ret < 0) {
		return ret;
	}
	if (!rb) {
		*refp = 0;
		return 0;
	}
	memcpy(&v, rb->data + (size_t)idx * 2, 2);
	*refp = le16toh(v);
	vd_mblock_put(rb);
	return 0;
}

int vd_refcount_set(struct vd_image *img, uint64_t cluster, uint16_t ref)
{
	struct vd_mblock *rb;
	uint32_t idx;
	uint16_t v = htole16(ref);
	int ret = rb_locate(img, cluster, true, &rb, &idx);

	if (ret < 0) {
		return ret;
	}
	memcpy(rb->data + (size_t)idx * 2, &v, 2);
	vd_mblock_mark(img, rb, idx * 2, 2);
	vd_mblock_put(rb);
	return 0;
}

int vd_refcount_add(struct vd_image *img, uint64_t cluster, int delta)
{
	uint16_t ref;
	int ret = vd_refcount_get(img, cluster, &ref);

	if (ret < 0) {
		return ret;
	}
	if ((delta < 0 && ref < -delta) || (delta > 0 && (uint32_t)(ref + delta) > VD_REFCOUNT_MAX)) {
		/* A refcount about to go below zero means the image is corrupt;
		 * one about to overflow means too many snapshots share it. */
		return delta < 0 ? -EUCLEAN : -EMLINK;
	}
	return vd_refcount_set(img, cluster, ref + delta);
}

/* Finds the refcount block for 'cluster'; with 'create', makes a missing
 * one.  '*rbp' is NULL (refcount 0) when there is none and none is made. */
static int rb_locate(struct vd_image *img, uint64_t cluster, bool create,
		     struct vd_mblock **rbp, uint32_t *idxp)
{
	uint64_t rt_index = cluster / img->rb_entries, off, c;
	struct vd_mblock *rb;
	int ret;

	*rbp = NULL;
	*idxp = cluster % img->rb_entries;
	if (rt_index >= img->rt_blk->bytes / 8) {
		/* The refcount table is sized at creation to cover several
		 * times the virtual size (image.c). */
		return create ? -ENOSPC : 0;
	}
	off = vd_get64(img->rt_blk, rt_index);
	if (off) {
		if ((off & (img->cluster_bytes - 1)) || off > VD_L1_OFFSET_MASK) {
			return -EUCLEAN;
		}
		ret = vd_mblock_get(img, off, rbp);
		return ret;
	}
	if (!create) {
		return 0;
	}
	ret = pick_cluster(img, &c);
	if (ret < 0) {
		return ret;
	}
	rb = vd_mblock_new(img, vd_cluster_off(img, c));
	if (!rb) {
		return -ENOMEM;
	}
	vd_set64(img, img->rt_blk, rt_index, vd_cluster_off(img, c));
	/* The new block's own refcount may live in itself or in another block. */
	ret = vd_refcount_set(img, c, 1);
	if (ret < 0) {
		vd_mblock_put(rb);
		return ret;
	}
	*rbp = rb;
	return 0;
}

int vd_cluster_alloc(struct vd_image *img, uint64_t *clusterp)
{
	uint64_t c;
	int ret = pick_cluster(img, &c);

	if (ret < 0) {
		return ret;
	}
	ret = vd_refcount_set(img, c, 1);
	if (ret < 0) {
		return ret;
	}
	*clusterp = c;
	return 0;
}

/* Appends 'n' contiguous clusters at the end of the image (refcount 1). */
int vd_cluster_alloc_run(struct vd_image *img, uint64_t n, uint64_t *firstp)
{
	uint64_t first;
	int ret = take_end(img, n, &first);

	for (uint64_t i = 0; i < n && ret == 0; i++) {
		ret = vd_refcount_set(img, first + i, 1);
	}
	if (ret == 0 && firstp) {
		*firstp = first;
	}
	return ret;
}

int vd_cluster_unref(struct vd_image *img, uint64_t cluster)
{
	uint16_t ref;
	int ret = vd_refcount_get(img, cluster, &ref);

	if (ret < 0) {
		return ret;
	}
	if (ref == 0 || (ref == 1 && fixed_metadata(img, cluster))) {
		return -EUCLEAN;
	}
	ret = vd_refcount_set(img, cluster, ref - 1);
	if (ret < 0 || ref > 1) {
		return ret;
	}
	vd_mblock_drop(img, vd_cluster_off(img, cluster));
	if (img->npending_free == img->pending_free_cap) {
		size_t cap = img->pending_free_cap ? img->pending_free_cap * 2 : 64;
		uint64_t *p = realloc(img->pending_free, cap * sizeof(*p));

		if (!p) {
			return -ENOMEM;
		}
		img->pending_free = p;
		img->pending_free_cap = cap;
	}
	img->pending_free[img->npending_free++] = cluster;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* After a checkpoint: punch the clusters freed since the last one, in runs,
 * and make them available. */
int vd_release_pending_free(struct vd_image *img)
{
	size_t i = 0;

	if (!img->npending_free) {
		return 0;
	}
	qsort(img->pending_free, img->npending_free, sizeof(uint64_t), cmp_u64);
	while (i < img->npending_free) {
		uint64_t first = img->pending_free[i], n = 1;
		bool unknown;

		while (i + n < img->npending_free && img->pending_free[i + n] == first + n) {
			n++;
		}
		unknown = vd_file_punch(&img->file, vd_cluster_off(img, first),
					vd_cluster_off(img, n)) < 0;
		/* A cluster past the image's end was freed through a corrupt
		 * reference: there is nothing there to reuse. */
		for (uint64_t c = first; c < first + n && c < img->end_clusters; c++) {
			set_free(img, c, true, unknown);
		}
		if (first < img->free_hint) {
			img->free_hint = first;
		}
		i += n;
	}
	img->npending_free = 0;
	return 0;
}

/* Builds the free map from the refcounts: clusters inside the file with
 * refcount 0 are free (contents unknown). */
int vd_freemap_build(struct vd_image *img)
{
	uint64_t rt_entries = img->rt_blk->bytes / 8;
	uint8_t *buf = vd_aligned_alloc(img->cluster_bytes);
	int ret = 0;

	if (!buf) {
		return -ENOMEM;
	}
	img->end_clusters = (img->file_bytes + img->cluster_bytes - 1) >> img->cluster_bits;
	ret = freemap_reserve(img, img->end_clusters + 1);
	for (uint64_t c = 0; c < img->end_clusters && ret == 0; c++) {
		set_free(img, c, true, true);
	}
	for (uint64_t i = 0; i < rt_entries && ret == 0; i++) {
		uint64_t off = vd_get64(img->rt_blk, i);

		if (!off) {
			continue;
		}
		if ((off & (img->cluster_bytes - 1)) || off > VD_L1_OFFSET_MASK) {
			/* The refcounts of these clusters are unknown: none is
			 * free, and allocating one fails (rb_locate), until
			 * check --repair rebuilds the table (issue 11: refusing
			 * the open refused the repair too). */
			for (uint64_t c = i * img->rb_entries;
			     c < (i + 1) * img->rb_entries && c < img->end_clusters; c++) {
				set_free(img, c, false, false);
			}
			continue;
		}
		ret = vd_meta_read(img, buf, img->cluster_bytes, off);
		for (uint32_t k = 0; k < img->rb_entries && ret == 0; k++) {
			uint64_t c = i * img->rb_entries + k;
			uint16_t v;

			memcpy(&v, buf + (size_t)k * 2, 2);
			if (!v) {
				continue;
			}
			if (c >= img->end_clusters) {
				/* Only a corrupt image counts a cluster beyond the
				 * file (a refcount block aliased into a far table
				 * entry, issue 11): trusting it would grow the file
				 * to reach it.  Readers refuse references beyond
				 * the file anyway. */
				continue;
			}
			set_free(img, c, false, false);
		}
	}
	free(buf);
	img->free_hint = 0;
	return ret;
}

/* Forgets the free map and builds it again from the refcounts in the file
 * (check --repair, once it has replaced the refcount structures; nothing is
 * pending free then). */
int vd_freemap_rebuild(struct vd_image *img)
{
	if (img->freemap) {
		memset(img->freemap, 0, (img->freemap_bits * 2 + 63) / 64 * sizeof(uint64_t));
	}
	return vd_freemap_build(img);
}

void vd_freemap_fini(struct vd_image *img)
{
	free(img->freemap);
	free(img->pending_free);
	img->freemap = NULL;
	img->pending_free = NULL;
}

/* The refcount table covers four times the guest clusters, so snapshots
 * and copies can at least triple the file; resize grows it to keep that. */
uint64_t vd_reftable_cover(uint64_t guest_clusters, uint64_t l1_entries)
{
	return 4 * (guest_clusters + l1_entries) + 64;
}

/* Moves the refcount table to new, larger clusters at the end of the file,
 * in one transaction with the header switch.  The new table is in place
 * before the refcounts of its own clusters are set, so they may lie beyond
 * what the old one covered. */
int vd_reftable_grow(struct vd_image *img, uint64_t cover_clusters)
{
	struct vd_mblock *old = img->rt_blk, *nb;
	uint64_t entries = (cover_clusters + img->rb_entries - 1) / img->rb_entries;
	uint64_t n = (entries * 8 + img->cluster_bytes - 1) >> img->cluster_bits, first;
	uint64_t old_first = vd_off_cluster(img, img->hdr.refcount_table_offset);
	uint64_t old_n = img->hdr.refcount_table_clusters;
	int ret;

	if (entries <= old->bytes / 8) {
		return 0;
	}
	if (n > UINT32_MAX / img->cluster_bytes) {
		return -EFBIG;
	}
	ret = vd_journal_commit(img);
	if (ret == 0) {
		ret = take_end(img, n, &first);
	}
	if (ret < 0) {
		return ret;
	}
	nb = vd_mblock_new_pinned(img, vd_cluster_off(img, first), n * img->cluster_bytes);
	if (!nb) {
		return -ENOMEM;
	}
	memcpy(nb->data, old->data, old->bytes);
	img->rt_blk = nb;
	img->hdr.refcount_table_offset = vd_cluster_off(img, first);
	img->hdr.refcount_table_clusters = n;
	vd_header_changed(img);
	for (uint64_t c = first; c < first + n && ret == 0; c++) {
		ret = vd_refcount_set(img, c, 1);
	}
	for (uint64_t c = old_first; c < old_first + old_n && ret == 0; c++) {
		ret = vd_cluster_unref(img, c);
	}
	if (ret == 0) {
		ret = vd_journal_commit(img);
	}
	return ret == 0 ? vd_mblock_release(img, old) : ret;
}

/* Marks clusters the metadata references as in use, whatever their stored
 * refcounts say (check --repair, before it corrects them). */
int vd_freemap_reserve_used(struct vd_image *img, const uint32_t *refs, uint64_t n)
{
	int ret = freemap_reserve(img, n + 1);

	for (uint64_t c = 0; c < n && ret == 0; c++) {
		if (refs[c] && c < img->end_clusters) {
			set_free(img, c, false, false);
		}
	}
	return ret;
}
