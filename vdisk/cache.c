/* SPDX-License-Identifier: MIT */
/* cache.c: the metadata cache.  L2 tables and refcount blocks are cached a
 * cluster at a time up to a bound; the header sector, L1 table and refcount
 * table are pinned.  Each block remembers which 8-byte chunks changed since
 * the last commit (they become journal records, journal.c) and whether it
 * differs from the file (written back at checkpoints or on eviction).
 *
 * The bound is enforced between operations (vd_cache_trim, and for the
 * request paths vd_cache_trim_async, which writes back through the ring and
 * starts commits in the background), never in the middle of one: evicting a
 * block with uncommitted changes would need a commit, and a commit in the
 * middle of an operation would make half of it durable.  A block whose
 * changes are in a commit still in flight counts as uncommitted (rule 3). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int vd_cache_init(struct vd_image *img)
{
	size_t n = img->cache_limit_bytes / img->cluster_bytes;

	img->hsize = 64;
	while (img->hsize < n * 2 && img->hsize < (1u << 20)) {
		img->hsize <<= 1;
	}
	img->htab = calloc(img->hsize, sizeof(*img->htab));
	return img->htab ? 0 : -ENOMEM;
}

static uint32_t hash(const struct vd_image *img, uint64_t offset)
{
	uint64_t h = (offset >> 9) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(h >> 32) & (img->hsize - 1);
}

static struct vd_mblock *lookup(struct vd_image *img, uint64_t offset)
{
	struct vd_mblock *b = img->htab[hash(img, offset)];

	while (b && b->offset != offset) {
		b = b->hnext;
	}
	return b;
}

static void unlink_block(struct vd_image *img, struct vd_mblock *blk)
{
	struct vd_mblock **pp = &img->htab[hash(img, blk->offset)];

	while (*pp != blk) {
		pp = &(*pp)->hnext;
	}
	*pp = blk->hnext;
	if (blk->dprev) {
		blk->dprev->dnext = blk->dnext;
	} else {
		img->blocks = blk->dnext;
	}
	if (blk->dnext) {
		blk->dnext->dprev = blk->dprev;
	}
	if (!blk->pinned) {
		img->cached_bytes -= blk->bytes;
	}
}

static void free_block(struct vd_mblock *blk)
{
	if (blk) {
		free(blk->data);
		free(blk->jdirty);
		free(blk);
	}
}

static struct vd_mblock *alloc_block(struct vd_image *img, uint64_t offset, uint32_t bytes,
				     bool pinned)
{
	struct vd_mblock *blk = calloc(1, sizeof(*blk));
	size_t nbits = bytes / VD_JCHUNK_BYTES;

	if (!blk) {
		return NULL;
	}
	blk->data = vd_aligned_alloc(bytes);
	blk->jdirty = calloc((nbits + 63) / 64, sizeof(uint64_t));
	if (!blk->data || !blk->jdirty) {
		free_block(blk);
		return NULL;
	}
	blk->offset = offset;
	blk->bytes = bytes;
	blk->pinned = pinned;
	blk->lru_tick = ++img->tick;

	uint32_t h = hash(img, offset);

	blk->hnext = img->htab[h];
	img->htab[h] = blk;
	blk->dnext = img->blocks;
	if (img->blocks) {
		img->blocks->dprev = blk;
	}
	img->blocks = blk;
	if (!pinned) {
		img->cached_bytes += bytes;
	}
	return blk;
}

void vd_cache_fini(struct vd_image *img)
{
	while (img->blocks) {
		struct vd_mblock *blk = img->blocks;

		unlink_block(img, blk);
		free_block(blk);
	}
	free(img->htab);
	img->htab = NULL;
}

/* Metadata reads see the journal's records on read-only opens of a dirty
 * image, so that such an open never needs to write. */
int vd_meta_read(struct vd_image *img, void *buf, uint32_t len, uint64_t off)
{
	int ret = vd_file_pread(&img->file, buf, len, off);

	if (ret == 0) {
		vd_overlay_apply(img, buf, len, off);
	}
	return ret;
}

/* A block with no change since the last commit holds committed contents, so
 * (rule 3) it may be written in place at any time. */
static bool uncommitted(const struct vd_mblock *blk)
{
	return blk->has_jdirty || blk->is_new || blk->in_txn;
}

static int write_back(struct vd_image *img, struct vd_mblock *blk)
{
	int ret;

	if (!blk->wb_dirty) {
		return 0;
	}
	ret = vd_file_pwrite(&img->file, blk->data, blk->bytes, blk->offset);
	if (ret == 0) {
		blk->wb_dirty = false;
	}
	return ret;
}

/* Evicts unreferenced, committed blocks, least recently used first, until
 * 'need' more bytes fit under the bound or nothing more can go.  Without
 * 'may_write' (the asynchronous paths), only blocks that equal the file
 * go; the others are written back by vd_cache_trim_async. */
static int evict(struct vd_image *img, size_t need, bool may_write)
{
	while (img->cached_bytes + need > img->cache_limit_bytes) {
		struct vd_mblock *victim = NULL;
		int ret;

		for (struct vd_mblock *b = img->blocks; b; b = b->dnext) {
			if (b->pinned || b->refs || b->loading || b->wb_busy || uncommitted(b) ||
			    (!may_write && b->wb_dirty)) {
				continue;
			}
			if (!victim || b->lru_tick < victim->lru_tick ||
			    (victim->wb_dirty && !b->wb_dirty)) {
				victim = b;
			}
		}
		if (!victim) {
			return 0;
		}
		ret = write_back(img, victim);
		if (ret < 0) {
			return ret;
		}
		unlink_block(img, victim);
		free_block(victim);
	}
	return 0;
}

struct wb {
	struct vd_aio aio;
	uint8_t *buf;
	uint64_t gen;
};

static void wb_done(struct vd_aio *aio, int res)
{
	struct wb *wb = (struct wb *)aio;
	struct vd_image *img = aio->img;
	struct vd_mblock *b = lookup(img, aio->off);

	if (b) {
		b->wb_busy = false;
		if (res >= 0 && (size_t)res == aio->len && b->mod_gen == wb->gen) {
			b->wb_dirty = false;
		}
	}
	free(wb->buf);
	free(wb);
	if (--img->wb_inflight == 0 && img->ckpt_waiting) {
		vd_journal_ckpt_resume(img);
	}
}

/* Writes a copy of committed block 'b' back through the ring (rule 3: its
 * contents are no newer than the last durable transaction). */
static int write_back_async(struct vd_image *img, struct vd_ctx *ctx, struct vd_mblock *b)
{
	struct wb *wb = calloc(1, sizeof(*wb));

	if (wb) {
		wb->buf = vd_aligned_alloc(b->bytes);
	}
	if (!wb || !wb->buf) {
		free(wb);
		return -ENOMEM;
	}
	memcpy(wb->buf, b->data, b->bytes);
	wb->gen = b->mod_gen;
	b->wb_busy = true;
	img->wb_inflight++;
	img->wb_ctx = ctx;
	vd_aio_rw(ctx, &wb->aio, img, VD_AIO_WRITE, wb->buf, b->bytes, b->offset, wb_done);
	return 0;
}

/* At the end of a request: drops clean blocks over the bound, starts ring
 * write-backs of committed changed ones (none while a commit is in flight:
 * its checkpoint may write the same blocks), and starts a commit when only
 * uncommitted blocks are left.  The cache may stay over its bound until
 * those complete. */
int vd_cache_trim_async(struct vd_image *img, struct vd_ctx *ctx)
{
	int64_t over;
	int ret = evict(img, 0, false);

	if (ret < 0 || img->cached_bytes <= img->cache_limit_bytes || !img->writable) {
		return ret;
	}
	over = (int64_t)(img->cached_bytes - img->cache_limit_bytes);
	for (struct vd_mblock *b = img->blocks; b && over > 0 && !img->jc_busy; b = b->dnext) {
		if (b->pinned || b->refs || b->loading || uncommitted(b)) {
			continue;
		}
		if (b->wb_busy) {
			over -= b->bytes;
		} else if (b->wb_dirty) {
			ret = write_back_async(img, ctx, b);
			if (ret < 0) {
				return ret;
			}
			over -= b->bytes;
		}
	}
	if (over > 0) {
		vd_journal_kick(img, ctx);
	}
	return 0;
}

/* The cached block at 'offset', or NULL; reads nothing. */
struct vd_mblock *vd_mblock_find(struct vd_image *img, uint64_t offset)
{
	struct vd_mblock *blk = lookup(img, offset);

	return blk && !blk->pinned && !blk->loading && blk->bytes == img->cluster_bytes ? blk
											 : NULL;
}

/* Any block at 'offset', being read or not. */
struct vd_mblock *vd_mblock_lookup_any(struct vd_image *img, uint64_t offset)
{
	return lookup(img, offset);
}

/* Inserts a block the caller is about to read through the ring: it stays
 * 'loading' (and referenced, so it is not evicted) until the read
 * completes.  Eviction to make room writes nothing back synchronously when
 * called here... see evict(). */
struct vd_mblock *vd_mblock_start_load(struct vd_image *img, uint64_t offset)
{
	struct vd_mblock *blk;

	if (evict(img, img->cluster_bytes, false) < 0) {
		return NULL;
	}
	blk = alloc_block(img, offset, img->cluster_bytes, false);
	if (blk) {
		blk->loading = true;
		blk->refs = 1;
	}
	return blk;
}

void vd_mblock_load_failed(struct vd_image *img, struct vd_mblock *blk)
{
	unlink_block(img, blk);
	free_block(blk);
}

int vd_mblock_get(struct vd_image *img, uint64_t offset, struct vd_mblock **blkp)
{
	struct vd_mblock *blk = lookup(img, offset);
	int ret;

	while (blk && blk->loading) {
		/* A synchronous caller (a tool) meets a ring read in flight:
		 * it waits for that context, on this thread (vdisk.h). */
		ret = vd_ctx_wait_block(blk->load_ctx, img, offset);
		if (ret < 0) {
			return ret;
		}
		blk = lookup(img, offset);
	}

	/* A table pointing at the header, an L1 or the refcount table: only a
	 * corrupt image does that (found by fuzzing). */
	if (blk && (blk->pinned || blk->bytes != img->cluster_bytes)) {
		return -EUCLEAN;
	}
	if (!blk) {
		ret = evict(img, img->cluster_bytes, true);
		if (ret < 0) {
			return ret;
		}
		blk = alloc_block(img, offset, img->cluster_bytes, false);
		if (!blk) {
			return -ENOMEM;
		}
		ret = vd_meta_read(img, blk->data, blk->bytes, offset);
		if (ret < 0) {
			unlink_block(img, blk);
			free_block(blk);
			return ret;
		}
	}
	blk->lru_tick = ++img->tick;
	blk->refs++;
	*blkp = blk;
	return 0;
}

/* A block for a cluster allocated in this operation: zeroed, and written
 * whole before the transaction that points to it (rule 1). */
struct vd_mblock *vd_mblock_new(struct vd_image *img, uint64_t offset)
{
	struct vd_mblock *blk;

	vd_mblock_drop(img, offset);
	blk = alloc_block(img, offset, img->cluster_bytes, false);
	if (!blk) {
		return NULL;
	}
	memset(blk->data, 0, blk->bytes);
	blk->is_new = true;
	blk->wb_dirty = true;
	blk->mod_gen = ++img->tick;
	blk->refs = 1;
	img->meta_changed = true;
	return blk;
}

void vd_mblock_put(struct vd_mblock *blk)
{
	if (blk && !blk->pinned) {
		blk->refs--;
	}
}

int vd_mblock_pinned(struct vd_image *img, uint64_t offset, uint32_t bytes,
		     struct vd_mblock **blkp)
{
	struct vd_mblock *blk;
	int ret;

	if (lookup(img, offset)) {
		/* Two tables in one place: a corrupt image. */
		return -EUCLEAN;
	}
	blk = alloc_block(img, offset, bytes, true);
	if (!blk) {
		return -ENOMEM;
	}
	ret = vd_meta_read(img, blk->data, bytes, offset);
	if (ret < 0) {
		unlink_block(img, blk);
		free_block(blk);
		return ret;
	}
	*blkp = blk;
	return 0;
}

void vd_mblock_mark(struct vd_image *img, struct vd_mblock *blk, uint32_t off, uint32_t len)
{
	blk->mod_gen = ++img->tick;
	img->meta_changed = true;
	blk->wb_dirty = true;
	if (blk->is_new) {
		return;
	}
	for (uint32_t c = off / VD_JCHUNK_BYTES; c <= (off + len - 1) / VD_JCHUNK_BYTES; c++) {
		uint64_t bit = 1ull << (c % 64);

		if (!(blk->jdirty[c / 64] & bit)) {
			blk->jdirty[c / 64] |= bit;
			img->pending_record_bytes += VD_JCHUNK_BYTES + sizeof(struct vd_jrecord);
		}
	}
	blk->has_jdirty = true;
}

/* A pinned block for metadata allocated in this operation (a snapshot's L1
 * copy, a new snapshot table): zeroed, written whole at commit (rule 1). */
struct vd_mblock *vd_mblock_new_pinned(struct vd_image *img, uint64_t offset, uint32_t bytes)
{
	struct vd_mblock *blk = alloc_block(img, offset, bytes, true);

	if (blk) {
		memset(blk->data, 0, bytes);
		blk->is_new = true;
		blk->wb_dirty = true;
		img->meta_changed = true;
	}
	return blk;
}

/* Writes back (committed contents only, rule 3) and frees a block the
 * caller no longer needs cached. */
int vd_mblock_release(struct vd_image *img, struct vd_mblock *blk)
{
	int ret;

	if (!blk) {
		return 0;
	}
	if (uncommitted(blk)) {
		return -EBUSY;
	}
	ret = write_back(img, blk);
	unlink_block(img, blk);
	free_block(blk);
	return ret;
}

/* Forgets a freed cluster's cached contents: nothing may write them back.
 * A block still in use by this operation stays (only a corrupt image frees
 * a cluster that is also a table being walked, as the fuzzer found). */
void vd_mblock_drop(struct vd_image *img, uint64_t offset)
{
	struct vd_mblock *blk = lookup(img, offset);

	if (blk && !blk->pinned && !blk->refs) {
		unlink_block(img, blk);
		free_block(blk);
	}
}

/* Writes every committed block that differs from the file (rule 3: callers
 * commit first).  The header sector is the checkpoint's to write. */
int vd_cache_writeback(struct vd_image *img)
{
	for (struct vd_mblock *b = img->blocks; b; b = b->dnext) {
		int ret;

		if (b == img->header_blk || uncommitted(b)) {
			continue;
		}
		ret = write_back(img, b);
		if (ret < 0) {
			return ret;
		}
	}
	return 0;
}

/* At an operation boundary: bring the cache back under its bound, committing
 * if only blocks with uncommitted changes are left to evict. */
int vd_cache_trim(struct vd_image *img)
{
	int ret = vd_async_drain(img);

	ret = ret < 0 ? ret : evict(img, 0, true);
	if (ret < 0 || img->cached_bytes <= img->cache_limit_bytes || !img->writable) {
		return ret;
	}
	ret = vd_journal_commit(img);
	if (ret < 0) {
		return ret;
	}
	return evict(img, 0, true);
}
