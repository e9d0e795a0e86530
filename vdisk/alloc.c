/* SPDX-License-Identifier: MIT */
/* alloc.c: refcounts and free space.  Refcounts live in refcount blocks
 * found through the pinned refcount table; free space is an in-memory
 * bitmap learned lazily, one region (the clusters one refcount block
 * covers) at a time: when the region's refcount block is first read for
 * any reason, or when an allocation finds no known free cluster (at most
 * one region is read per allocation, then the end of the file is taken).
 * So opening an image reads no refcount block, whatever its size.  A freed
 * cluster waits for the next checkpoint before it is reused (rule 5) and is
 * hole-punched then, so a reused cluster reads as zeros (rule 6).  Clusters
 * found free in a refcount block are zeroed only when reused: punching them
 * when learned would destroy data if a refcount were wrong. */
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
	if (!img->freemap) {
		/* calloc of a large map maps zero pages: an open touches none
		 * of it (1 TiB of 64 KiB clusters: 4 MiB) until regions are
		 * learned. */
		m = calloc(words, sizeof(*m));
	} else {
		m = realloc(img->freemap, words * sizeof(*m));
		if (m) {
			memset(m + old_words, 0, (words - old_words) * sizeof(*m));
		}
	}
	if (!m) {
		return -ENOMEM;
	}
	img->freemap = m;
	img->freemap_bits = nbits;
	return 0;
}

/* One bit per refcount table entry: the region's free clusters are in the
 * free map. */
static int regions_reserve(struct vd_image *img, uint64_t nregions)
{
	uint64_t words = (nregions + 63) / 64, old_words = (img->region_bits + 63) / 64;
	uint64_t *m;

	if (nregions <= img->region_bits) {
		return 0;
	}
	m = realloc(img->region_known, words * sizeof(*m));
	if (!m) {
		return -ENOMEM;
	}
	memset(m + old_words, 0, (words - old_words) * sizeof(*m));
	img->region_known = m;
	img->region_bits = words * 64;
	return 0;
}

bool vd_region_known(const struct vd_image *img, uint64_t region)
{
	return region < img->region_bits && bit_get(img->region_known, region);
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
 * (corrupt) refcount says, these are never free (found by fuzzing), and
 * whatever a (corrupt) L1 or L2 entry says, never an L2 table or guest data
 * (io.c). */
bool vd_fixed_metadata(const struct vd_image *img, uint64_t c)
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

/* Puts region 'r' into the free map from its refcount block's contents
 * ('rb' NULL: it has none, every refcount is 0).  Clusters freed since the
 * last checkpoint stay taken (rule 5); a refcount beyond the end of the
 * file (only a corrupt image has one) is ignored.  'all_used': the table
 * entry is invalid, so the region's refcounts are unknown and none of its
 * clusters is free until check --repair rebuilds the table. */
static int region_learn(struct vd_image *img, uint64_t r, const uint8_t *rb, bool all_used)
{
	uint64_t first = r * img->rb_entries, lowest = UINT64_MAX;
	int ret = regions_reserve(img, r + 1);

	if (ret == 0) {
		ret = freemap_reserve(img, first + img->rb_entries + 1);
	}
	if (ret < 0) {
		return ret;
	}
	for (uint32_t k = 0; k < img->rb_entries; k++) {
		uint64_t c = first + k;
		uint16_t v = 0;

		if (rb) {
			memcpy(&v, rb + (size_t)k * 2, 2);
		}
		if (all_used && c < img->end_clusters) {
			set_free(img, c, false, false);
			continue;
		}
		if (v && c >= img->end_clusters) {
			/* Only a corrupt image counts a cluster beyond the file
			 * (a refcount block aliased into a far table entry,
			 * issue 11): trusting it would grow the file to reach
			 * it, and readers refuse references beyond the file
			 * anyway. */
			v = 0;
		}
		set_free(img, c, v == 0, v == 0);
		if (!v && lowest == UINT64_MAX) {
			lowest = c;
		}
	}
	for (size_t i = 0; i < img->npending_free; i++) {
		uint64_t c = img->pending_free[i];

		if (c >= first && c < first + img->rb_entries) {
			set_free(img, c, false, false);
		}
	}
	for (size_t i = 0; i < img->nckpt_free; i++) {
		uint64_t c = img->ckpt_free[i];

		if (c >= first && c < first + img->rb_entries) {
			set_free(img, c, false, false);
		}
	}
	bit_put(img->region_known, r, true);
	if (lowest < img->free_hint) {
		img->free_hint = lowest;
	}
	return 0;
}

/* Learns region 'r' if its refcount block needs no read; returns 1 if it
 * stays unknown because the block is not cached. */
static int region_learn_cached(struct vd_image *img, uint64_t r)
{
	uint64_t off = r < img->rt_blk->bytes / 8 ? vd_get64(img->rt_blk, r) : 0;
	struct vd_mblock *rb;

	if (vd_region_known(img, r)) {
		return 0;
	}
	if (!off) {
		return region_learn(img, r, NULL, false);
	}
	if ((off & (img->cluster_bytes - 1)) || off > VD_L1_OFFSET_MASK) {
		/* Refusing the open would refuse the repair too (issue 11). */
		return region_learn(img, r, NULL, true);
	}
	rb = vd_mblock_find(img, off);
	return rb ? region_learn(img, r, rb->data, false) : 1;
}

/* The host offset of region 'r''s refcount block, when learning the region
 * needs a read (0: it does not). */
uint64_t vd_region_rb_offset(struct vd_image *img, uint64_t r)
{
	uint64_t off = r < img->rt_blk->bytes / 8 ? vd_get64(img->rt_blk, r) : 0;

	if ((off & (img->cluster_bytes - 1)) || off > VD_L1_OFFSET_MASK) {
		return 0; /* learned as all used, without a read */
	}
	return off && !vd_region_known(img, r) && !vd_mblock_find(img, off) ? off : 0;
}

/* Reads region 'r''s refcount block through the cache (blocking) and learns
 * the region. */
static int region_learn_sync(struct vd_image *img, uint64_t r)
{
	uint64_t off = vd_get64(img->rt_blk, r);
	struct vd_mblock *rb;
	int ret;

	if ((off & (img->cluster_bytes - 1)) || off > VD_L1_OFFSET_MASK) {
		return -EUCLEAN;
	}
	ret = vd_mblock_get(img, off, &rb);
	if (ret < 0) {
		return ret;
	}
	ret = region_learn_cached(img, r);
	vd_mblock_put(rb);
	return ret;
}

/* Makes sure the regions of clusters [first, first + n) are known. */
static int learn_range(struct vd_image *img, uint64_t first, uint64_t n, bool may_read)
{
	for (uint64_t r = first / img->rb_entries; r <= (first + n - 1) / img->rb_entries; r++) {
		int ret = region_learn_cached(img, r);

		if (ret == 1) {
			ret = may_read ? region_learn_sync(img, r) : -EWOULDBLOCK;
		}
		if (ret < 0) {
			return ret;
		}
	}
	return 0;
}

/* Extends the image by 'n' clusters at its end. */
static int take_end(struct vd_image *img, uint64_t n, uint64_t *firstp, bool may_read)
{
	uint64_t first = img->end_clusters;
	int ret = learn_range(img, first, n, may_read);

	if (ret < 0) {
		return ret;
	}
	if (img->end_clusters != first) {
		/* Learning found a refcount past the end: take from there. */
		return take_end(img, n, firstp, may_read);
	}
	ret = freemap_reserve(img, first + n + 1);
	if (ret < 0) {
		return ret;
	}
	ret = vd_file_grow(img, first + n);
	if (ret < 0) {
		return ret;
	}
	for (uint64_t c = first; c < first + n; c++) {
		set_free(img, c, false, false);
	}
	img->end_clusters = first + n;
	*firstp = first;
	return 0;
}

/* The lowest known free cluster at or after 'from', or 'end_clusters'. */
static uint64_t scan_free(const struct vd_image *img, uint64_t from)
{
	const uint64_t even = 0x5555555555555555ull;
	uint64_t c = from;

	while (c < img->end_clusters) {
		uint64_t w = img->freemap[(2 * c) / 64] & even;

		if ((2 * c) % 64 == 0 && w == 0) {
			c += 32;
			continue;
		}
		if (is_free(img, c) && !vd_fixed_metadata(img, c)) {
			return c;
		}
		c++;
	}
	return img->end_clusters;
}

/* The first region below the end of the file not yet learned, or none
 * (UINT64_MAX). */
static uint64_t next_unknown_region(struct vd_image *img)
{
	uint64_t nregions = (img->end_clusters + img->rb_entries - 1) / img->rb_entries;

	while (img->learn_next < nregions && vd_region_known(img, img->learn_next)) {
		img->learn_next++;
	}
	return img->learn_next < nregions ? img->learn_next : UINT64_MAX;
}

/* Chooses the cluster the next single-cluster allocation takes, without
 * taking it: the lowest known free cluster; else, after learning at most
 * one unknown region (a read, if 'may_read'; otherwise -EWOULDBLOCK and
 * '*rb_offp' names the refcount block to read first), the end of the file.
 * '*at_endp' says which. */
int vd_cluster_peek(struct vd_image *img, bool may_read, uint64_t *clusterp, bool *at_endp,
		    uint64_t *rb_offp)
{
	uint64_t c = scan_free(img, img->free_hint), r;
	int ret;

	img->free_hint = c;
	*at_endp = false;
	if (c < img->end_clusters) {
		*clusterp = c;
		return 0;
	}
	r = next_unknown_region(img);
	if (r != UINT64_MAX) {
		ret = region_learn_cached(img, r);
		if (ret == 1 && !may_read) {
			*rb_offp = vd_get64(img->rt_blk, r);
			return -EWOULDBLOCK;
		}
		if (ret == 1) {
			ret = region_learn_sync(img, r);
		}
		if (ret < 0) {
			return ret;
		}
		c = scan_free(img, img->free_hint);
		img->free_hint = c;
		if (c < img->end_clusters) {
			*clusterp = c;
			return 0;
		}
	}
	r = img->end_clusters / img->rb_entries;
	ret = region_learn_cached(img, r);
	if (ret == 1 && !may_read) {
		*rb_offp = vd_get64(img->rt_blk, r);
		return -EWOULDBLOCK;
	}
	if (ret == 1) {
		ret = region_learn_sync(img, r);
	}
	if (ret < 0) {
		return ret;
	}
	if (img->end_clusters / img->rb_entries != r) {
		return vd_cluster_peek(img, may_read, clusterp, at_endp, rb_offp);
	}
	*clusterp = img->end_clusters;
	*at_endp = true;
	return 0;
}

/* Takes cluster 'c' chosen by vd_cluster_peek off the free map, without
 * setting its refcount.  '*unknownp' says its contents may not read as
 * zeros (it was found free, never punched): the caller writes it whole or
 * punches it (rule 6). */
int vd_cluster_take(struct vd_image *img, uint64_t c, bool at_end, bool *unknownp)
{
	uint64_t first;

	*unknownp = false;
	if (at_end) {
		return take_end(img, 1, &first, false);
	}
	*unknownp = bit_get(img->freemap, 2 * c + 1);
	set_free(img, c, false, false);
	img->free_hint = c + 1;
	return 0;
}

/* Gives back a cluster taken and never referenced (a failed write). */
void vd_cluster_untake(struct vd_image *img, uint64_t c)
{
	if (c < img->end_clusters && vd_region_known(img, c / img->rb_entries)) {
		set_free(img, c, true, true);
		if (c < img->free_hint) {
			img->free_hint = c;
		}
	}
}

/* Takes a cluster off the free map (or the end of the file) without setting
 * its refcount; a reused cluster of unknown contents is zeroed first. */
static int pick_cluster(struct vd_image *img, uint64_t *clusterp)
{
	uint64_t c, rb_off;
	bool at_end, unknown;
	int ret = vd_cluster_peek(img, true, &c, &at_end, &rb_off);

	if (ret == 0) {
		ret = vd_cluster_take(img, c, at_end, &unknown);
	}
	if (ret == 0 && !at_end && unknown) {
		ret = vd_file_punch(&img->file, vd_cluster_off(img, c), img->cluster_bytes);
	}
	if (ret == 0) {
		*clusterp = at_end ? img->end_clusters - 1 : c;
	}
	return ret;
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
		if (ret == 0 && !vd_region_known(img, rt_index)) {
			/* Read anyway: the region's free clusters cost nothing more. */
			ret = region_learn(img, rt_index, (*rbp)->data, false);
		}
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
	uint64_t c = 0;
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
	int ret = take_end(img, n, &first, true);

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
	if (ref == 0 || (ref == 1 && vd_fixed_metadata(img, cluster))) {
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
/* Makes freed clusters [first, first + n) available: 'unknown' when the
 * punch failed (a reuse writes them whole, rule 6). */
void vd_release_run(struct vd_image *img, uint64_t first, uint64_t n, bool unknown)
{
	/* A cluster past the image's end was freed through a corrupt
	 * reference: there is nothing there to reuse. */
	for (uint64_t c = first; c < first + n && c < img->end_clusters; c++) {
		/* An unknown region learns it from its refcount block. */
		if (vd_region_known(img, c / img->rb_entries)) {
			set_free(img, c, true, unknown);
		}
	}
	if (first < img->free_hint) {
		img->free_hint = first;
	}
}

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
		vd_release_run(img, first, n, unknown);
		i += n;
	}
	img->npending_free = 0;
	return 0;
}

/* Starts the free map at open without reading any refcount block: no
 * region is known yet (the regions learn themselves, see the top). */
int vd_freemap_init(struct vd_image *img)
{
	img->end_clusters = (img->file_bytes + img->cluster_bytes - 1) >> img->cluster_bits;
	img->free_hint = 0;
	img->learn_next = 0;
	return freemap_reserve(img, img->end_clusters + 1);
}

/* Forgets the free map and builds it again from the refcounts in the file
 * (check --repair, once it has replaced the refcount structures; nothing is
 * pending free then). */
int vd_freemap_rebuild(struct vd_image *img)
{
	if (img->freemap) {
		memset(img->freemap, 0, (img->freemap_bits * 2 + 63) / 64 * sizeof(uint64_t));
	}
	if (img->region_known) {
		memset(img->region_known, 0, (img->region_bits + 63) / 64 * sizeof(uint64_t));
	}
	return vd_freemap_init(img);
}

void vd_freemap_fini(struct vd_image *img)
{
	free(img->region_known);
	img->region_known = NULL;
	free(img->ckpt_free);
	img->ckpt_free = NULL;
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
		ret = take_end(img, n, &first, true);
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

/* Learns region 'r' as all used, without reading its refcount block: its
 * refcount table entry names something that is not one (check --repair,
 * which rebuilds the structures; reading "the block" would read another
 * structure, or find the active L1 or the table itself pinned there). */
int vd_region_learn_used(struct vd_image *img, uint64_t r)
{
	return vd_region_known(img, r) ? 0 : region_learn(img, r, NULL, true);
}

/* Marks clusters the metadata references as in use, whatever their stored
 * refcounts say (check --repair, before it corrects them). */
int vd_freemap_reserve_used(struct vd_image *img, const uint32_t *refs, uint64_t n)
{
	/* Learn every region first: one learned later would take its free
	 * clusters from the refcounts being corrected. */
	int ret = n ? learn_range(img, 0, n, true) : 0;

	if (ret == 0) {
		ret = freemap_reserve(img, n + 1);
	}

	for (uint64_t c = 0; c < n && ret == 0; c++) {
		if (refs[c] && c < img->end_clusters) {
			set_free(img, c, false, false);
		}
	}
	return ret;
}

/* For an allocation of 'cluster' whose refcount is set later (when its data
 * has landed, io.c): makes sure its refcount block exists, creating it now
 * when the refcount table has none there (a change consistent on its own:
 * a new block holding its own refcount), and returns the block's offset for
 * the caller to have it read: 0, or 1 when it created the block. */
int vd_rb_prepare(struct vd_image *img, uint64_t cluster, uint64_t *rb_offp)
{
	uint64_t rt_index = cluster / img->rb_entries, off;
	struct vd_mblock *rb;
	uint32_t idx;
	int ret;

	if (rt_index >= img->rt_blk->bytes / 8) {
		return -ENOSPC;
	}
	off = vd_get64(img->rt_blk, rt_index);
	if (off) {
		if ((off & (img->cluster_bytes - 1)) || off > VD_L1_OFFSET_MASK) {
			return -EUCLEAN;
		}
		*rb_offp = off;
		return 0;
	}
	ret = rb_locate(img, cluster, true, &rb, &idx);
	if (ret < 0) {
		return ret;
	}
	*rb_offp = rb->offset;
	vd_mblock_put(rb);
	return 1;
}
