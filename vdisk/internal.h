/* SPDX-License-Identifier: MIT */
/* internal.h: libvdisk's internal state and the calls its modules make of
 * each other.  image.c opens and creates, cache.c holds metadata blocks,
 * journal.c commits and replays them, alloc.c keeps refcounts and free space,
 * io.c moves guest data, check.c verifies.  The numbered rules cited in the
 * code are the writer rules of docs/vdisk-format.md, section "Crash
 * consistency". */
#ifndef VD_INTERNAL_H
#define VD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <endian.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "format.h"
#include "vdisk.h"

/* The host file.  'ops' NULL means plain syscalls on 'fd'; tests install
 * their own ops to record every write and flush (the crash harness). */
struct vd_file_ops {
	ssize_t (*pread)(void *arg, void *buf, size_t len, uint64_t off);
	ssize_t (*pwrite)(void *arg, const void *buf, size_t len, uint64_t off);
	int (*sync)(void *arg);
	int (*punch)(void *arg, uint64_t off, uint64_t len);
	int (*truncate)(void *arg, uint64_t size);
	int (*size)(void *arg, uint64_t *sizep);
	/* Optional: the ops argument of the backing file 'name' names, so
	 * that a backing chain can live behind the same ops (the crash
	 * harness records commits into it); NULL: a real file. */
	void *(*backing)(void *arg, const char *name);
};

struct vd_file {
	int fd;
	const struct vd_file_ops *ops;
	void *ops_arg;
	uint32_t align_bytes; /* buffer and length alignment the fd needs */
	bool direct;
	/* blocking reads, writes, flushes and punches made through the calls
	 * below since open; the asynchronous paths make none (tests check
	 * this).  Truncation, which they may make, is counted apart. */
	uint64_t sync_calls;
	uint64_t truncate_calls;
};

int vd_file_pread(struct vd_file *f, void *buf, size_t len, uint64_t off);
int vd_file_pwrite(struct vd_file *f, const void *buf, size_t len, uint64_t off);
int vd_file_sync(struct vd_file *f);
int vd_file_punch(struct vd_file *f, uint64_t off, uint64_t len);
int vd_file_truncate(struct vd_file *f, uint64_t size);
int vd_file_size(struct vd_file *f, uint64_t *sizep);
void *vd_aligned_alloc(size_t bytes);

uint32_t vd_crc32c(uint32_t crc, const void *buf, size_t len);

/* A metadata block: an L2 table or refcount block (one cluster, in the
 * bounded cache), or a pinned table (header sector, L1, refcount table).
 * 'jdirty' has one bit per 8 bytes changed since the last commit; those runs
 * become journal records. */
#define VD_JCHUNK_BYTES 8u
/* Journal bytes per L1 entry a disk needs so that one snapshot or revert
 * transaction fits in half the journal (see snapshot.c). */
#define VD_JOURNAL_BYTES_PER_L1 128u

struct vd_mblock {
	uint64_t offset;        /* host offset of the block */
	uint32_t bytes;
	uint8_t *data;          /* aligned, 'bytes' long */
	uint64_t *jdirty;       /* bytes / 8 bits */
	bool has_jdirty;        /* some bit in jdirty is set */
	bool is_new;            /* allocated since the last commit (rule 1) */
	bool wb_dirty;          /* differs from the file; written at checkpoint */
	bool pinned;            /* never evicted */
	unsigned refs;          /* users inside the current operation */
	bool loading;           /* a ring read is filling 'data' (io.c) */
	bool in_txn;            /* its changes are in the commit in flight */
	bool wb_busy;           /* a write-back of a copy is in flight */
	uint64_t mod_gen;       /* counts changes, to tell a write-back stale */
	struct vd_ctx *load_ctx;        /* the context whose ring reads it */
	struct vd_req *waiters;         /* requests parked until it is read */
	uint64_t lru_tick;
	struct vd_mblock *hnext;                /* hash chain */
	struct vd_mblock *dnext, *dprev;        /* list of all cached blocks */
};

/* Overlay of journal records, for read-only opens of a dirty image. */
struct vd_overlay {
	uint64_t offset;
	uint32_t len;
	uint8_t *data;
};

struct vd_ctx;
struct vd_req;

/* One I/O on a context's ring, or through the test hook (which runs it
 * from vd_ctx_poll in issue order); 'done' runs from vd_ctx_poll (io.c). */
struct vd_aio;
typedef void (*vd_aio_fn)(struct vd_aio *aio, int res);

enum vd_aio_op { VD_AIO_READ, VD_AIO_WRITE, VD_AIO_FSYNC, VD_AIO_PUNCH };

struct vd_aio {
	vd_aio_fn done;
	struct vd_image *img;           /* whose file */
	enum vd_aio_op op;
	const struct iovec *iov;
	int iovcnt;
	struct iovec one;               /* 'iov' of a single-buffer I/O */
	uint64_t off;
	size_t len;
	struct vd_aio *next;            /* on the hook or backlog queue */
};

struct vd_snap {
	uint64_t l1_offset;
	uint32_t l1_entries;
	uint32_t flags;
	uint64_t id, date_ns, size_bytes;
	char *name;
};

struct vd_image {
	char *path;
	struct vd_file file;
	bool writable;
	struct vd_disk_header hdr;      /* host byte order */
	uint32_t cluster_bits;
	uint32_t cluster_bytes;
	uint32_t l2_entries;            /* entries per L2 table */
	uint32_t l2_shift;              /* log2 of u64 words per L2 entry: 1 with subclusters */
	uint32_t sc_bits;               /* log2 of the subcluster size (0: none) */
	uint32_t sc_bytes;              /* cluster_bytes when there are none */
	uint32_t rb_entries;            /* refcounts per refcount block */
	uint64_t guest_clusters;

	/* metadata cache */
	struct vd_mblock *header_blk;   /* sector 0 */
	struct vd_mblock *l1_blk;
	struct vd_mblock *rt_blk;       /* refcount table */
	struct vd_mblock **htab;
	uint32_t hsize;
	struct vd_mblock *blocks;       /* all blocks, pinned ones included */
	size_t cache_limit_bytes;
	size_t cached_bytes;            /* unpinned blocks only */
	uint64_t tick;

	/* journal */
	uint64_t journal_seq;           /* seq of the next transaction */
	uint32_t journal_used_bytes;
	size_t pending_record_bytes;    /* estimate of the next transaction */
	bool meta_changed;              /* something uncommitted */
	bool journal_dirty_flag_set;    /* JOURNAL_DIRTY is on disk */
	struct vd_overlay *overlay;     /* read-only replay */
	size_t noverlay;

	/* free space: clusters [0, end_clusters) are inside the image; 'freemap'
	 * marks the ones free to reuse now, 'pending_free' the ones freed since
	 * the last checkpoint (rule 5) */
	uint64_t end_clusters;
	uint64_t file_bytes;            /* last known length of the file */
	uint64_t *freemap;
	uint64_t freemap_bits;
	uint64_t free_hint;
	uint64_t *pending_free;
	size_t npending_free, pending_free_cap;
	/* regions (one refcount block's clusters) whose free clusters are in
	 * 'freemap'; the others are learned lazily (alloc.c) */
	uint64_t *region_known;
	uint64_t region_bits;
	uint64_t learn_next;            /* no unknown region below this one */
	/* clusters freed before a checkpoint in flight, released when its
	 * header is durable (rule 5) */
	uint64_t *ckpt_free;
	size_t nckpt_free;

	struct vd_snap *snaps;
	uint32_t nsnaps;

	char *backing_name;             /* as stored in the image */
	struct vd_image *backing;       /* opened read-only */
	unsigned open_flags;
	unsigned depth;                 /* in the chain: 0 = top */

	bool was_dirty;                 /* JOURNAL_DIRTY was set at open */
	struct vd_ctx *sync_ctx;        /* for the synchronous calls */

	/* asynchronous requests (io.c): those holding guest clusters for an
	 * allocation or unmap in flight, which overlapping writers wait for */
	struct vd_req *holders;

	/* asynchronous commits (journal.c): one commit (and the checkpoint
	 * that may follow it) in flight at a time, on 'jc_ctx' */
	struct vd_ctx *jc_ctx;
	bool jc_busy;
	bool jc_want;                   /* commit again when it is done */
	int jc_error;                   /* a failed commit: the image is stuck */
	struct vd_req *jc_next;         /* flushes the next commit completes */
	struct vd_req *room_waiters;    /* writers waiting for journal room */
	/* write-backs of evicted blocks in flight (cache.c) */
	unsigned wb_inflight;
	struct vd_ctx *wb_ctx;
	bool ckpt_waiting;              /* a checkpoint waits for them */
	void *jc;                       /* the commit in flight */

};

/* image.c */
void vd_header_to_disk(const struct vd_disk_header *h, struct vd_disk_header *d);
int vd_header_from_disk(const struct vd_disk_header *d, struct vd_disk_header *h);
void vd_header_changed(struct vd_image *img);
int vd_open_with_ops(const char *path, const struct vd_open_opts *opts,
		     const struct vd_file_ops *ops, void *ops_arg, struct vd_image **imagep,
		     struct errmsg *err);
int vd_open_depth(const char *path, const struct vd_open_opts *opts, unsigned depth,
		  struct vd_image **imagep, struct errmsg *err);
int vd_open_ops_depth(const char *path, const struct vd_open_opts *opts,
		      const struct vd_file_ops *ops, void *ops_arg, unsigned depth,
		      struct vd_image **imagep, struct errmsg *err);
int vd_create_with_ops(const char *path, const struct vd_create_opts *opts,
		       const struct vd_file_ops *ops, void *ops_arg, struct errmsg *err);

/* cache.c */
int vd_cache_init(struct vd_image *img);
void vd_cache_fini(struct vd_image *img);
int vd_mblock_get(struct vd_image *img, uint64_t offset, struct vd_mblock **blkp);
struct vd_mblock *vd_mblock_new(struct vd_image *img, uint64_t offset);
void vd_mblock_put(struct vd_mblock *blk);
struct vd_mblock *vd_mblock_find(struct vd_image *img, uint64_t offset);
struct vd_mblock *vd_mblock_lookup_any(struct vd_image *img, uint64_t offset);
struct vd_mblock *vd_mblock_start_load(struct vd_image *img, uint64_t offset);
void vd_mblock_load_failed(struct vd_image *img, struct vd_mblock *blk);
int vd_ctx_wait_block(struct vd_ctx *ctx, struct vd_image *img, uint64_t offset);
int vd_cache_trim_async(struct vd_image *img, struct vd_ctx *ctx);
void vd_cache_wb_drained(struct vd_image *img);
int vd_mblock_pinned(struct vd_image *img, uint64_t offset, uint32_t bytes,
		     struct vd_mblock **blkp);
void vd_mblock_mark(struct vd_image *img, struct vd_mblock *blk, uint32_t off, uint32_t len);
void vd_mblock_drop(struct vd_image *img, uint64_t offset);
int vd_cache_writeback(struct vd_image *img);
int vd_cache_trim(struct vd_image *img);
int vd_meta_read(struct vd_image *img, void *buf, uint32_t len, uint64_t off);
struct vd_mblock *vd_mblock_new_pinned(struct vd_image *img, uint64_t offset, uint32_t bytes);
int vd_mblock_release(struct vd_image *img, struct vd_mblock *blk);

static inline uint64_t vd_get64(const struct vd_mblock *b, uint32_t idx)
{
	uint64_t v;

	__builtin_memcpy(&v, b->data + (size_t)idx * 8, 8);
	return le64toh(v);
}

static inline void vd_set64(struct vd_image *img, struct vd_mblock *b, uint32_t idx, uint64_t v)
{
	v = htole64(v);
	__builtin_memcpy(b->data + (size_t)idx * 8, &v, 8);
	vd_mblock_mark(img, b, idx * 8, 8);
}

/* L2 entries: one u64, or two with subclusters (word 1: the bitmaps). */
static inline uint64_t vd_l2_get(const struct vd_image *img, const struct vd_mblock *b,
				 uint32_t idx)
{
	return vd_get64(b, idx << img->l2_shift);
}

static inline uint64_t vd_l2_get_bitmap(const struct vd_image *img, const struct vd_mblock *b,
					uint32_t idx)
{
	return img->l2_shift ? vd_get64(b, (idx << 1) + 1) : 0;
}

static inline void vd_l2_set(struct vd_image *img, struct vd_mblock *b, uint32_t idx,
			     uint64_t e)
{
	vd_set64(img, b, idx << img->l2_shift, e);
}

static inline void vd_l2_set_bitmap(struct vd_image *img, struct vd_mblock *b, uint32_t idx,
				    uint64_t bm)
{
	vd_set64(img, b, (idx << 1) + 1, bm);
}

/* Bits [first, end) of a subcluster bitmap. */
static inline uint32_t vd_sc_mask(uint32_t first, uint32_t end)
{
	return (uint32_t)((((uint64_t)1 << end) - 1) & ~(((uint64_t)1 << first) - 1));
}

/* journal.c */
int vd_journal_commit(struct vd_image *img);
int vd_journal_checkpoint(struct vd_image *img);
int vd_journal_replay(struct vd_image *img, bool apply, struct errmsg *err);
int vd_meta_boundary(struct vd_image *img);
int vd_meta_boundary_async(struct vd_image *img, struct vd_ctx *ctx);
void vd_journal_kick(struct vd_image *img, struct vd_ctx *ctx);
void vd_journal_flush(struct vd_image *img, struct vd_ctx *ctx, struct vd_req *req);
bool vd_journal_room(struct vd_image *img, struct vd_req *req);
void vd_journal_ckpt_resume(struct vd_image *img);
int vd_async_drain(struct vd_image *img);
void vd_overlay_apply(const struct vd_image *img, void *buf, uint32_t len, uint64_t off);
void vd_overlay_free(struct vd_image *img);

/* alloc.c */
int vd_refcount_get(struct vd_image *img, uint64_t cluster, uint16_t *refp);
int vd_refcount_set(struct vd_image *img, uint64_t cluster, uint16_t ref);
int vd_refcount_add(struct vd_image *img, uint64_t cluster, int delta);
int vd_cluster_alloc(struct vd_image *img, uint64_t *clusterp);
int vd_cluster_alloc_run(struct vd_image *img, uint64_t n, uint64_t *firstp);
int vd_cluster_unref(struct vd_image *img, uint64_t cluster);
int vd_freemap_init(struct vd_image *img);
bool vd_region_known(const struct vd_image *img, uint64_t region);
uint64_t vd_region_rb_offset(struct vd_image *img, uint64_t region);
int vd_cluster_peek(struct vd_image *img, bool may_read, uint64_t *clusterp, bool *at_endp,
		    uint64_t *rb_offp);
int vd_cluster_take(struct vd_image *img, uint64_t c, bool at_end, bool *unknownp);
void vd_cluster_untake(struct vd_image *img, uint64_t c);
int vd_freemap_rebuild(struct vd_image *img);
void vd_freemap_fini(struct vd_image *img);
int vd_freemap_reserve_used(struct vd_image *img, const uint32_t *refs, uint64_t n);
int vd_release_pending_free(struct vd_image *img);
void vd_release_run(struct vd_image *img, uint64_t first, uint64_t n, bool unknown);
int vd_reftable_grow(struct vd_image *img, uint64_t cover_clusters);
uint64_t vd_reftable_cover(uint64_t guest_clusters, uint64_t l1_entries);
bool vd_fixed_metadata(const struct vd_image *img, uint64_t cluster);
int vd_region_learn_used(struct vd_image *img, uint64_t r);
int vd_file_grow(struct vd_image *img, uint64_t end_clusters);

/* chain.c */
int vd_backing_open(struct vd_image *img, struct errmsg *err);
char *vd_backing_resolve(const char *image_path, const char *name);
int vd_backing_read(struct vd_image *img, uint64_t off, void *buf, size_t len);

/* snapshot.c */
int vd_snapshots_load(struct vd_image *img, struct errmsg *err);
int vd_snapshots_resume(struct vd_image *img);
void vd_snapshots_free(struct vd_image *img);
int vd_l2_unref(struct vd_image *img, uint64_t l2off);

/* check.c */
int vd_check_resumable(struct vd_image *img, struct errmsg *err);

/* io.c */
int vd_check_l2_entry(struct vd_image *img, uint64_t e);
int vd_check_l2_ext(struct vd_image *img, uint64_t e, uint64_t bm);
int vd_unmap_clusters(struct vd_image *img, uint64_t off, uint64_t len, bool to_backing);
int vd_rb_prepare(struct vd_image *img, uint64_t cluster, uint64_t *rb_offp);
void vd_aio_start(struct vd_ctx *ctx, struct vd_aio *aio);
void vd_aio_rw(struct vd_ctx *ctx, struct vd_aio *aio, struct vd_image *img,
	       enum vd_aio_op op, void *buf, size_t len, uint64_t off, vd_aio_fn done);
void vd_req_park(struct vd_req **listp, struct vd_req *req);
void vd_req_wake_all(struct vd_req **listp);
void vd_req_done(struct vd_req *req, int ret);
void vd_req_done_all(struct vd_req **listp, int ret);
int vd_ctx_step(struct vd_ctx *ctx);
int vd_l2_lookup(struct vd_image *img, uint64_t guest_cluster, bool alloc_table,
		 struct vd_mblock **l2p, uint32_t *idxp);

static inline uint64_t vd_cluster_off(const struct vd_image *img, uint64_t cluster)
{
	return cluster << img->cluster_bits;
}

static inline uint64_t vd_off_cluster(const struct vd_image *img, uint64_t off)
{
	return off >> img->cluster_bits;
}

#endif
