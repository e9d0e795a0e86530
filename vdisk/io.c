/* SPDX-License-Identifier: MIT */
/* io.c: guest I/O as per-request state machines on io_uring.  A request
 * walks its range a cluster piece at a time, maps each piece through the
 * L1/L2 tables and queues the host-contiguous runs as one ring I/O each.
 * Everything a piece may wait for is a step on the ring: a metadata block
 * that is not cached is read by the ring while the request parks on the
 * cache entry (the completion puts it back on its context's ready list and
 * the walk resumes at the same piece), and so are copy-up reads, the
 * backing chain's reads, partial-cluster zeroing and the journal commit of
 * a flush (journal.c, group commit).  The synchronous calls
 * at the end wrap the asynchronous ones; the sync L2 lookup serves the
 * tools (snapshot, chain, check, map).
 *
 * Invariants of the request state machine, cited as (An):
 *  (A1) A piece changes metadata only once every block it needs is cached
 *       and referenced by its request, so a piece either parks before any
 *       change or runs to its end without waiting; a resumed piece starts
 *       over and finds its earlier changes made.
 *  (A2) A write that allocates a data cluster takes it off the free map
 *       during the walk, but sets its refcount and points the L2 entry at
 *       it only when its data has landed: any commit in between has neither
 *       (rule 1 holds for every commit, and nothing leaks).
 *  (A3) Guest clusters being allocated, copied up or unmapped are held by
 *       their request from the walk to its metadata update; an overlapping
 *       write, discard or write-zeroes waits for the holder (qcow2's cluster
 *       allocation in flight).  A write in place needs no hold: its cluster
 *       stays its own until a discard frees it, and a freed cluster is not
 *       reused before the next checkpoint (rule 5).
 *  (A4) Copy-up (a partial write over a shared cluster or over the backing
 *       chain) reads the old contents through the ring, through the backing
 *       image's own asynchronous path (which may park too), merges the
 *       guest's bytes and writes the whole new cluster before (A2) maps it
 *       (rule 6).
 *  (A5) With subclusters (docs/vdisk-format.md 5.5), an allocated bit is set
 *       only once the whole subcluster's host bytes have been written: the
 *       guest's bytes, merged with zeros or the backing chain's where the
 *       write covers it partly (A4 at subcluster scale), at the point (A2)
 *       names.  A request changes one entry in one piece at most, so two
 *       pieces never allocate two clusters for one entry. */
#include <errno.h>
#include <linux/falloc.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

struct vd_ctx {
	struct io_uring ring;
	unsigned depth;
	unsigned inflight;              /* guest requests */
	unsigned ring_inflight;         /* SQEs not yet completed */
	bool polling;                   /* inside vd_ctx_poll */
	int efd;
	struct vd_req *done_head, *done_tail;   /* to call back */
	struct vd_req *ready_head, *ready_tail; /* woken, to resume */
	struct vd_aio *hook_head, *hook_tail;   /* test-hook I/O to run */
	struct vd_aio *wait_head, *wait_tail;   /* I/O waiting for an SQE */
	uint8_t *zeros;                 /* for partial-cluster zeroing */
	uint32_t zeros_bytes;
};

enum req_kind { RQ_READ, RQ_WRITE, RQ_DISCARD, RQ_ZERO, RQ_FLUSH };

/* A data cluster allocated by a write, mapped when its data landed (A2).
 * With subclusters, also the subclusters a write filled in a cluster it
 * already had: their allocated bits are set at the same point. */
enum alloc_kind {
	AK_CLUSTER,     /* a new cluster replaces the entry (no subclusters) */
	AK_SC_NEW,      /* a new cluster: the subclusters in 'mask', and those a
			 * shared cluster it replaces had allocated, copied */
	AK_SC_FILL,     /* subclusters 'mask' of the entry's own cluster 'c' */
};

struct alloc_rec {
	uint64_t c;                     /* the new host cluster */
	uint64_t old;                   /* the L2 entry it replaces */
	struct vd_mblock *l2;
	uint32_t idx;
	uint32_t mask;                  /* subclusters written */
	enum alloc_kind kind;
	uint32_t zmask;                 /* subclusters a write-zeroes unmaps */
};

/* Runs of pieces contiguous in the request's buffer and in the file (or
 * in guest space, for the backing chain's part of a read). */
struct span {
	uint64_t at;
	size_t skip, len;
};

struct vd_req {
	struct vd_ctx *ctx;
	struct vd_image *img;
	vd_cb cb;
	void *arg;
	int ret;
	enum req_kind kind;
	bool user;                      /* a guest request, not a child read */
	const struct iovec *iov;
	int iovcnt;
	struct iovec one;
	uint8_t *bounce;                /* aligned copy of misaligned buffers */
	const struct iovec *user_iov;
	int user_iovcnt;
	struct iovec *owned_iov;        /* a child's slice of its parent's */
	uint64_t off;
	size_t len, pos;                /* bytes; 'pos' walked so far */
	unsigned pending;               /* steps in flight, +1 while walking */
	struct span run, back;
	struct alloc_rec *allocs;
	unsigned nallocs, cap_allocs;
	struct vd_mblock **pins;        /* blocks it references (A1) */
	unsigned npins, cap_pins, piece_pins;
	/* 'pins' and 'owned_iov' of most requests, without a malloc each */
	struct vd_mblock *pins_inline[8];
	struct iovec iov_inline[4];
	bool keep_pins;                 /* the piece's pins serve an alloc */
	bool commit_wait;               /* parked on a commit (DURABLE_MAP) */
	bool holding;                   /* (A3) guest clusters [first, end) */
	uint64_t hold_first, hold_end;
	struct vd_req *hnext;           /* on img->holders */
	struct vd_req *waiters;         /* parked on this request's hold */
	struct vd_req *wnext;           /* on a waiter list */
	struct vd_req *next;            /* on the done or ready list */
	void (*child_done)(struct vd_req *child);
	void *child_arg;
};

int vd_ctx_create(unsigned depth, struct vd_ctx **ctxp)
{
	struct vd_ctx *ctx = calloc(1, sizeof(*ctx));
	int ret;

	if (!ctx) {
		return -ENOMEM;
	}
	ctx->depth = depth ? depth : 128;
	ret = io_uring_queue_init(ctx->depth * 2 > 4096 ? 4096 : ctx->depth * 2, &ctx->ring, 0);
	if (ret < 0) {
		free(ctx);
		return ret;
	}
	ctx->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctx->efd < 0) {
		ret = -errno;
		goto out_ring;
	}
	ret = io_uring_register_eventfd(&ctx->ring, ctx->efd);
	if (ret < 0) {
		goto out_efd;
	}
	*ctxp = ctx;
	return 0;
out_efd:
	close(ctx->efd);
out_ring:
	io_uring_queue_exit(&ctx->ring);
	free(ctx);
	return ret;
}

static bool ctx_busy(const struct vd_ctx *ctx)
{
	return ctx->inflight || ctx->ring_inflight || ctx->hook_head || ctx->wait_head ||
	       ctx->ready_head;
}

void vd_ctx_destroy(struct vd_ctx *ctx)
{
	if (!ctx) {
		return;
	}
	while (ctx_busy(ctx)) {
		if (vd_ctx_poll(ctx, 1) < 0) {
			break;
		}
		if (!ctx->ring_inflight && !ctx->hook_head && !ctx->ready_head &&
		    !ctx->wait_head && ctx->inflight) {
			/* Parked on another context's step: nothing here moves. */
			break;
		}
	}
	io_uring_queue_exit(&ctx->ring);
	close(ctx->efd);
	free(ctx->zeros);
	free(ctx);
}

int vd_ctx_event_fd(struct vd_ctx *ctx)
{
	return ctx->efd;
}

unsigned vd_ctx_inflight(const struct vd_ctx *ctx)
{
	return ctx->inflight;
}

static void ctx_kick(struct vd_ctx *ctx)
{
	uint64_t one = 1;

	/* Work made ready outside vd_ctx_poll (at submission, or by another
	 * context's completion) must wake an event loop waiting on the
	 * eventfd; inside it, the loop is running and a write per completion
	 * would cost a syscall each. */
	if (!ctx->polling && write(ctx->efd, &one, sizeof(one)) < 0) {
		/* The counter is saturated: a wakeup is pending anyway. */
	}
}


static bool aio_to_ring(struct vd_ctx *ctx, struct vd_aio *aio)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ctx->ring);
	int fd = aio->img->file.fd;

	if (!sqe) {
		io_uring_submit(&ctx->ring);
		sqe = io_uring_get_sqe(&ctx->ring);
	}
	if (!sqe) {
		return false;
	}
	if (aio->op == VD_AIO_FSYNC) {
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	} else if (aio->op == VD_AIO_PUNCH) {
		io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					aio->off, aio->len);
	} else if (aio->iovcnt == 1 && aio->op == VD_AIO_READ) {
		io_uring_prep_read(sqe, fd, aio->iov[0].iov_base, aio->len, aio->off);
	} else if (aio->iovcnt == 1) {
		io_uring_prep_write(sqe, fd, aio->iov[0].iov_base, aio->len, aio->off);
	} else if (aio->op == VD_AIO_READ) {
		io_uring_prep_readv(sqe, fd, aio->iov, aio->iovcnt, aio->off);
	} else {
		io_uring_prep_writev(sqe, fd, aio->iov, aio->iovcnt, aio->off);
	}
	io_uring_sqe_set_data(sqe, aio);
	ctx->ring_inflight++;
	return true;
}

static void aio_queue(struct vd_aio **head, struct vd_aio **tail, struct vd_aio *aio)
{
	aio->next = NULL;
	if (*tail) {
		(*tail)->next = aio;
	} else {
		*head = aio;
	}
	*tail = aio;
}

/* Queues 'aio' on the ring (or the hook queue); its 'done' runs from
 * vd_ctx_poll, never from here. */
void vd_aio_start(struct vd_ctx *ctx, struct vd_aio *aio)
{
	if (aio->img->file.ops) {
		aio_queue(&ctx->hook_head, &ctx->hook_tail, aio);
		ctx_kick(ctx);
	} else if (ctx->wait_head || !aio_to_ring(ctx, aio)) {
		aio_queue(&ctx->wait_head, &ctx->wait_tail, aio);
		ctx_kick(ctx);
	}
}

void vd_aio_rw(struct vd_ctx *ctx, struct vd_aio *aio, struct vd_image *img, enum vd_aio_op op,
	       void *buf, size_t len, uint64_t off, vd_aio_fn done)
{
	aio->img = img;
	aio->op = op;
	aio->one = (struct iovec){.iov_base = buf, .iov_len = len};
	aio->iov = &aio->one;
	aio->iovcnt = 1;
	aio->len = len;
	aio->off = off;
	aio->done = done;
	vd_aio_start(ctx, aio);
}

/* Runs a test-hook I/O; -EINPROGRESS from the hook means "not yet" (the
 * tests' slow step) and leaves it queued. */
static int hook_run(struct vd_aio *aio)
{
	const struct vd_file_ops *ops = aio->img->file.ops;
	void *arg = aio->img->file.ops_arg;
	uint64_t off = aio->off;

	if (aio->op == VD_AIO_FSYNC) {
		return ops->sync(arg);
	}
	if (aio->op == VD_AIO_PUNCH) {
		return ops->punch(arg, aio->off, aio->len);
	}
	for (int i = 0; i < aio->iovcnt; i++) {
		size_t done = 0, l = aio->iov[i].iov_len;
		char *p = aio->iov[i].iov_base;

		while (done < l) {
			ssize_t n = aio->op == VD_AIO_READ ? ops->pread(arg, p + done, l - done, off)
							: ops->pwrite(arg, p + done, l - done, off);

			if (n < 0) {
				return (int)n;
			}
			if (n == 0 && aio->op == VD_AIO_READ) {
				memset(p + done, 0, l - done);
				n = l - done;
			} else if (n == 0) {
				return -EIO;
			}
			done += n;
			off += n;
		}
	}
	return (int)aio->len;
}

/* Copies 'len' bytes at byte 'skip' of an iovec into 'iov' slices. */
static int iov_slice(const struct iovec *src, int cnt, size_t skip, size_t len,
		     struct iovec **outp, int *outcntp)
{
	struct iovec *out = malloc(sizeof(*out) * (cnt ? cnt : 1));
	int n = 0;

	if (!out) {
		return -ENOMEM;
	}
	for (int i = 0; i < cnt && len; i++) {
		size_t l = src[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		out[n].iov_base = (char *)src[i].iov_base + skip;
		out[n].iov_len = l - skip < len ? l - skip : len;
		len -= out[n].iov_len;
		skip = 0;
		n++;
	}
	*outp = out;
	*outcntp = n;
	return 0;
}

static void iov_memset(const struct iovec *iov, int cnt, size_t skip, size_t len)
{
	for (int i = 0; i < cnt && len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l = l - skip < len ? l - skip : len;
		memset((char *)iov[i].iov_base + skip, 0, l);
		len -= l;
		skip = 0;
	}
}

static void iov_copy(void *dst, const struct iovec *iov, int cnt, size_t skip, size_t len,
		     bool to_iov)
{
	char *p = dst;

	for (int i = 0; i < cnt && len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l = l - skip < len ? l - skip : len;
		if (to_iov) {
			memcpy((char *)iov[i].iov_base + skip, p, l);
		} else {
			memcpy(p, (char *)iov[i].iov_base + skip, l);
		}
		p += l;
		len -= l;
		skip = 0;
	}
}

static void list_push(struct vd_req **head, struct vd_req **tail, struct vd_req *req)
{
	req->next = NULL;
	if (*tail) {
		(*tail)->next = req;
	} else {
		*head = req;
	}
	*tail = req;
}

static void done_push(struct vd_req *req)
{
	list_push(&req->ctx->done_head, &req->ctx->done_tail, req);
	ctx_kick(req->ctx);
}

/* Wakes the requests on a waiter list: each resumes its walk from its own
 * context's poll loop. */
static void wake_all(struct vd_req **listp)
{
	struct vd_req *w = *listp;

	*listp = NULL;
	while (w) {
		struct vd_req *next = w->wnext;

		w->wnext = NULL;
		list_push(&w->ctx->ready_head, &w->ctx->ready_tail, w);
		ctx_kick(w->ctx);
		w = next;
	}
}

static void park(struct vd_req **listp, struct vd_req *req)
{
	req->wnext = *listp;
	*listp = req;
}

void vd_req_park(struct vd_req **listp, struct vd_req *req)
{
	park(listp, req);
}

void vd_req_wake_all(struct vd_req **listp)
{
	wake_all(listp);
}

static void req_free(struct vd_req *req)
{
	if (req->owned_iov != req->iov_inline) {
		free(req->owned_iov);
	}
	if (req->pins != req->pins_inline) {
		free(req->pins);
	}
	free(req->allocs);
	free(req);
}

static void req_finish(struct vd_req *req)
{
	struct vd_ctx *ctx = req->ctx;

	if (req->bounce && req->kind == RQ_READ && req->ret == 0) {
		iov_copy(req->bounce, req->user_iov, req->user_iovcnt, 0, req->len, true);
	}
	free(req->bounce);
	ctx->inflight--;
	req->cb(req->arg, req->ret);
	req_free(req);
}

static void req_fail(struct vd_req *req, int ret)
{
	if (ret < 0 && req->ret == 0) {
		req->ret = ret;
	}
}

static void req_put(struct vd_req *req);
static void req_walk(struct vd_req *req);
static bool ctx_run(struct vd_ctx *ctx);

/* Metadata blocks: a request references what it uses (A1). */
static int pin_add(struct vd_req *req, struct vd_mblock *blk)
{
	for (unsigned i = req->piece_pins; i < req->npins; i++) {
		if (req->pins[i] == blk) {
			return 0;
		}
	}
	if (!req->cap_pins) {
		req->pins = req->pins_inline;
		req->cap_pins = 8;
	}
	if (req->npins == req->cap_pins) {
		unsigned cap = req->cap_pins * 2;
		struct vd_mblock **p = malloc(cap * sizeof(*p));

		if (!p) {
			return -ENOMEM;
		}
		memcpy(p, req->pins, req->npins * sizeof(*p));
		if (req->pins != req->pins_inline) {
			free(req->pins);
		}
		req->pins = p;
		req->cap_pins = cap;
	}
	blk->refs++;
	blk->lru_tick = ++req->img->tick;
	req->pins[req->npins++] = blk;
	return 0;
}

static void pins_release(struct vd_req *req, unsigned from)
{
	for (unsigned i = from; i < req->npins; i++) {
		vd_mblock_put(req->pins[i]);
	}
	req->npins = from;
}

struct load {
	struct vd_aio aio;
	struct vd_mblock *blk;
};

static void load_done(struct vd_aio *aio, int res)
{
	struct load *ld = (struct load *)aio;
	struct vd_mblock *blk = ld->blk;
	struct vd_image *img = aio->img;

	blk->loading = false;
	blk->refs--;
	if (res >= 0 && (size_t)res < blk->bytes) {
		/* Past the end of the file: reads as zeros. */
		memset(blk->data + res, 0, blk->bytes - res);
	}
	if (res < 0) {
		for (struct vd_req *w = blk->waiters; w; w = w->wnext) {
			req_fail(w, res);
		}
	} else {
		vd_overlay_apply(img, blk->data, blk->bytes, blk->offset);
	}
	wake_all(&blk->waiters);
	if (res < 0) {
		vd_mblock_load_failed(img, blk);
	}
	free(ld);
}

/* Makes the metadata block at 'offset' available to the request: returns 0
 * with it referenced, or -EWOULDBLOCK with the request parked on the block
 * while the ring reads it. */
static int need(struct vd_req *req, uint64_t offset, struct vd_mblock **blkp)
{
	struct vd_image *img = req->img;
	struct vd_mblock *blk = vd_mblock_lookup_any(img, offset);
	struct load *ld;

	if (blk && blk->loading) {
		park(&blk->waiters, req);
		return -EWOULDBLOCK;
	}
	if (blk) {
		/* A table pointing at the header, an L1 or the refcount table:
		 * only a corrupt image does that. */
		if (blk->pinned || blk->bytes != img->cluster_bytes) {
			return -EUCLEAN;
		}
		*blkp = blk;
		return pin_add(req, blk);
	}
	ld = calloc(1, sizeof(*ld));
	blk = ld ? vd_mblock_start_load(img, offset) : NULL;
	if (!blk) {
		free(ld);
		return -ENOMEM;
	}
	ld->blk = blk;
	blk->load_ctx = req->ctx;
	park(&blk->waiters, req);
	vd_aio_rw(req->ctx, &ld->aio, img, VD_AIO_READ, blk->data, blk->bytes, offset, load_done);
	return -EWOULDBLOCK;
}

/* A synchronous caller (a tool) found the block at 'offset' being read by
 * 'ctx': runs that context, on this thread (vdisk.h), until the read is
 * done. */
int vd_ctx_wait_block(struct vd_ctx *ctx, struct vd_image *img, uint64_t offset)
{
	for (;;) {
		struct vd_mblock *blk = vd_mblock_lookup_any(img, offset);
		int ret;

		if (!blk || !blk->loading) {
			return 0;
		}
		ret = vd_ctx_step(ctx);
		if (ret < 0) {
			return ret;
		}
	}
}

/* Moves 'ctx' on by one round, waiting for one ring completion if nothing
 * could move without; -EDEADLK when nothing is in flight at all. */
int vd_ctx_step(struct vd_ctx *ctx)
{
	int ret;

	if (ctx_run(ctx)) {
		return 0;
	}
	if (!ctx->ring_inflight && !io_uring_sq_ready(&ctx->ring)) {
		return ctx->hook_head ? 0 : -EDEADLK;
	}
	ret = io_uring_submit_and_wait(&ctx->ring, 1);
	return ret < 0 && ret != -EINTR ? ret : 0;
}

/* (A3) Waits for any other request holding guest cluster 'g'. */
static int wait_holder(struct vd_req *req, uint64_t first, uint64_t end)
{
	for (struct vd_req *h = req->img->holders; h; h = h->hnext) {
		if (h != req && first < h->hold_end && h->hold_first < end) {
			park(&h->waiters, req);
			return -EWOULDBLOCK;
		}
	}
	return 0;
}

static int hold(struct vd_req *req, uint64_t first, uint64_t end)
{
	int ret;

	if (req->holding) {
		return 0;
	}
	ret = wait_holder(req, first, end);
	if (ret < 0) {
		return ret;
	}
	req->holding = true;
	req->hold_first = first;
	req->hold_end = end;
	req->hnext = req->img->holders;
	req->img->holders = req;
	return 0;
}

static void unhold(struct vd_req *req)
{
	struct vd_req **pp = &req->img->holders;

	if (!req->holding) {
		return;
	}
	while (*pp != req) {
		pp = &(*pp)->hnext;
	}
	*pp = req->hnext;
	req->holding = false;
	wake_all(&req->waiters);
}

/* Chooses a cluster to allocate and makes its refcount block available;
 * nothing is taken yet (A1). */
static int alloc_prepare(struct vd_req *req, uint64_t *cp, bool *at_endp)
{
	struct vd_image *img = req->img;
	struct vd_mblock *rb;

	for (;;) {
		uint64_t rb_off = 0;
		int ret = vd_cluster_peek(img, false, cp, at_endp, &rb_off);

		if (ret == -EWOULDBLOCK) {
			/* Learning a region of the free map needs its block. */
			ret = need(req, rb_off, &rb);
			if (ret == 0) {
				continue;
			}
		}
		if (ret < 0) {
			return ret;
		}
		ret = vd_rb_prepare(img, *cp, &rb_off);
		if (ret == 1) {
			/* Creating the block took a cluster, maybe this one. */
			continue;
		}
		return ret < 0 ? ret : need(req, rb_off, &rb);
	}
}

/* Takes a cluster chosen by alloc_prepare and sets its refcount to 1 (for
 * metadata: a table written whole at the commit, rule 1). */
static int alloc_meta(struct vd_req *req, uint64_t c, bool at_end)
{
	bool unknown;
	int ret = vd_cluster_take(req->img, c, at_end, &unknown);

	return ret < 0 ? ret : vd_refcount_set(req->img, c, 1);
}

/* Copies the L2 table at L1 index 'i', shared with a snapshot, once every
 * refcount block it touches is cached (A1). */
static int l2_copy_up(struct vd_req *req, uint32_t i, struct vd_mblock *old,
		      struct vd_mblock **newp)
{
	struct vd_image *img = req->img;
	struct vd_mblock *nb, *rb;
	uint64_t c, rb_off;
	bool at_end;
	int ret;

	for (uint32_t j = 0; j < img->l2_entries; j++) {
		uint64_t e = vd_l2_get(img, old, j), off = e & VD_L2_OFFSET_MASK;

		ret = vd_check_l2_entry(img, e);
		if (ret == 0 && off) {
			ret = vd_rb_prepare(img, vd_off_cluster(img, off), &rb_off);
			ret = ret < 0 ? ret : need(req, rb_off, &rb);
		}
		if (ret < 0) {
			return ret;
		}
	}
	ret = alloc_prepare(req, &c, &at_end);
	if (ret == 0) {
		ret = alloc_meta(req, c, at_end);
	}
	if (ret < 0) {
		return ret;
	}
	c = at_end ? img->end_clusters - 1 : c;
	nb = vd_mblock_new(img, vd_cluster_off(img, c));
	if (!nb) {
		return -ENOMEM;
	}
	memcpy(nb->data, old->data, img->cluster_bytes);
	for (uint32_t j = 0; j < img->l2_entries && ret == 0; j++) {
		uint64_t off = vd_l2_get(img, old, j) & VD_L2_OFFSET_MASK;

		if (off) {
			ret = vd_refcount_add(img, vd_off_cluster(img, off), 1);
		}
	}
	if (ret == 0) {
		ret = vd_cluster_unref(img, vd_off_cluster(img, old->offset));
	}
	if (ret == 0) {
		vd_set64(img, img->l1_blk, i, vd_cluster_off(img, c));
		ret = pin_add(req, nb);
	}
	vd_mblock_put(nb);
	if (ret == 0) {
		*newp = nb;
	}
	return ret;
}

/* -EUCLEAN for an active L1 entry that cannot name an L2 table: reserved
 * bits, unaligned, past the end of the file, or on the header, journal,
 * active L1 or refcount table, whose bytes would be read as a mapping and
 * changed by guest writes (found by repair_prop: an L1 entry naming the
 * journal read a journal record as a mapping); 0 otherwise, 0 included. */
static int l1_entry_check(const struct vd_image *img, uint64_t e)
{
	uint64_t off = e & VD_L1_OFFSET_MASK;

	if (!e) {
		return 0;
	}
	if ((e & VD_L1_RESERVED_MASK) || (off & (img->cluster_bytes - 1)) ||
	    off + img->cluster_bytes > (img->writable ? vd_cluster_off(img, img->end_clusters)
						       : img->file_bytes + img->cluster_bytes) ||
	    vd_fixed_metadata(img, vd_off_cluster(img, off))) {
		return -EUCLEAN;
	}
	return 0;
}

/* Finds the L2 table of guest cluster 'g' (NULL: none, when not
 * 'for_write').  With 'for_write', a missing table is created and a shared
 * one copied, so the caller may change it.  May park (-EWOULDBLOCK). */
static int l2_find(struct vd_req *req, uint64_t g, bool for_write, struct vd_mblock **l2p,
		   uint32_t *idxp)
{
	struct vd_image *img = req->img;
	uint32_t i = g / img->l2_entries;
	uint64_t e = vd_get64(img->l1_blk, i), off = e & VD_L1_OFFSET_MASK, c;
	struct vd_mblock *l2, *rb;
	uint16_t ref;
	bool at_end;
	int ret;

	*l2p = NULL;
	*idxp = g % img->l2_entries;
	ret = l1_entry_check(img, e);
	if (ret < 0) {
		return ret;
	}
	if (!off && !for_write) {
		return 0;
	}
	if (!off) {
		ret = alloc_prepare(req, &c, &at_end);
		if (ret == 0) {
			ret = alloc_meta(req, c, at_end);
		}
		if (ret < 0) {
			return ret;
		}
		c = at_end ? img->end_clusters - 1 : c;
		l2 = vd_mblock_new(img, vd_cluster_off(img, c));
		if (!l2) {
			return -ENOMEM;
		}
		vd_set64(img, img->l1_blk, i, vd_cluster_off(img, c));
		ret = pin_add(req, l2);
		vd_mblock_put(l2);
		*l2p = l2;
		return ret;
	}
	ret = need(req, off, &l2);
	if (ret < 0 || !for_write) {
		*l2p = ret < 0 ? NULL : l2;
		return ret;
	}
	ret = vd_rb_prepare(img, vd_off_cluster(img, off), &c);
	ret = ret < 0 ? ret : need(req, c, &rb);
	ret = ret < 0 ? ret : vd_refcount_get(img, vd_off_cluster(img, off), &ref);
	if (ret == 0 && ref > 1) {
		ret = l2_copy_up(req, i, l2, &l2);
	}
	if (ret == 0) {
		*l2p = l2;
	}
	return ret;
}

/* Refcount of the data cluster at host offset 'off', its block made
 * available first. */
static int data_ref(struct vd_req *req, uint64_t off, uint16_t *refp)
{
	struct vd_mblock *rb;
	uint64_t rb_off;
	int ret = vd_rb_prepare(req->img, vd_off_cluster(req->img, off), &rb_off);

	ret = ret < 0 ? ret : need(req, rb_off, &rb);
	return ret < 0 ? ret : vd_refcount_get(req->img, vd_off_cluster(req->img, off), refp);
}

/* Host I/O of 'len' bytes of the request's buffer at 'skip'. */
struct sub {
	struct vd_aio aio;
	struct vd_req *req;
	struct iovec *iov;
};

/* A short write means the kernel stopped where the next byte would fail
 * (ENOSPC, EDQUOT, EFBIG).  The rest is written here, synchronously: it
 * happens only at that edge, and it ends the request with the real error
 * (vdiskd holds ENOSPC requests; a made-up EIO would fail the guest), or
 * with success if the space came back. */
static int write_rest(struct vd_aio *aio, size_t done)
{
	size_t rest = aio->len - done, at = 0;
	uint8_t *buf = vd_aligned_alloc(rest);
	int ret;

	if (!buf) {
		return -ENOMEM;
	}
	for (int i = 0; i < aio->iovcnt; i++) {
		size_t n = aio->iov[i].iov_len;

		if (done >= n) {
			done -= n;
			continue;
		}
		memcpy(buf + at, (const uint8_t *)aio->iov[i].iov_base + done, n - done);
		at += n - done;
		done = 0;
	}
	ret = vd_file_pwrite(&aio->img->file, buf, rest, aio->off + (aio->len - rest));
	free(buf);
	return ret;
}

static void sub_done(struct vd_aio *aio, int res)
{
	struct sub *sub = (struct sub *)aio;
	struct vd_req *req = sub->req;

	if (res >= 0 && (size_t)res < aio->len) {
		if (aio->op == VD_AIO_READ) {
			/* Past the end of the file: sparse, reads as zeros. */
			iov_memset(sub->iov, aio->iovcnt, res, aio->len - res);
		} else {
			res = write_rest(aio, (size_t)res);
		}
	}
	req_fail(req, res < 0 ? res : 0);
	free(sub->iov);
	free(sub);
	req_put(req);
}

static int queue_io(struct vd_req *req, enum vd_aio_op op, const struct iovec *iov, int iovcnt,
		    size_t skip, size_t len, uint64_t host_off)
{
	struct sub *sub = calloc(1, sizeof(*sub));
	int cnt, ret;

	if (!sub) {
		return -ENOMEM;
	}
	ret = iov_slice(iov, iovcnt, skip, len, &sub->iov, &cnt);
	if (ret < 0) {
		free(sub);
		return ret;
	}
	sub->req = req;
	sub->aio.img = req->img;
	sub->aio.op = op;
	sub->aio.iov = sub->iov;
	sub->aio.iovcnt = cnt;
	sub->aio.len = len;
	sub->aio.off = host_off;
	sub->aio.done = sub_done;
	req->pending++;
	vd_aio_start(req->ctx, &sub->aio);
	return 0;
}

static int run_flush(struct vd_req *req)
{
	int ret = 0;

	if (req->run.len) {
		ret = queue_io(req, req->kind == RQ_READ ? VD_AIO_READ : VD_AIO_WRITE, req->iov,
			       req->iovcnt, req->run.skip, req->run.len, req->run.at);
		req->run.len = 0;
	}
	return ret;
}

/* Adds the piece of 'n' buffer bytes at 'skip' going to host 'host'. */
static int run_add(struct vd_req *req, uint64_t host, size_t skip, size_t n)
{
	int ret = 0;

	if (req->run.len && host != req->run.at + req->run.len) {
		ret = run_flush(req);
	}
	if (!req->run.len) {
		req->run.at = host;
		req->run.skip = skip;
	}
	req->run.len += n;
	return ret;
}

/* A read of the backing image into a buffer of the parent's: its own
 * request, walking the backing image's tables (and parking on them). */
static int child_read(struct vd_req *parent, const struct iovec *iov, int iovcnt, size_t skip,
		      uint64_t goff, size_t len, void (*done)(struct vd_req *), void *arg)
{
	struct vd_image *b = parent->img->backing;
	size_t have = 0;
	struct vd_req *child;
	int ret;

	if (!b) {
		/* VD_OPEN_NO_BACKING: no data to give, and zeros would lie. */
		return -ENOLINK;
	}
	if (goff < b->hdr.size_bytes) {
		have = len < b->hdr.size_bytes - goff ? len : b->hdr.size_bytes - goff;
	}
	/* Beyond a shorter backing image: zeros (docs/vdisk-format.md 12.3). */
	iov_memset(iov, iovcnt, skip + have, len - have);
	child = calloc(1, sizeof(*child));
	if (!child) {
		return -ENOMEM;
	}
	ret = iov_slice(iov, iovcnt, skip, have, &child->owned_iov, &child->iovcnt);
	if (ret < 0) {
		free(child);
		return ret;
	}
	child->ctx = parent->ctx;
	child->img = b;
	child->kind = RQ_READ;
	child->iov = child->owned_iov;
	child->off = goff;
	child->len = have;
	child->pending = 1;
	child->child_done = done;
	child->child_arg = arg;
	req_walk(child);
	return 0;
}

static void back_done(struct vd_req *child)
{
	struct vd_req *parent = child->child_arg;

	req_fail(parent, child->ret);
	req_put(parent);
}

static int back_flush(struct vd_req *req)
{
	int ret = 0;

	if (req->back.len) {
		req->pending++;
		ret = child_read(req, req->iov, req->iovcnt, req->back.skip, req->back.at,
				 req->back.len, back_done, req);
		if (ret < 0) {
			req->pending--;
		}
		req->back.len = 0;
	}
	return ret;
}

/* 'n' bytes at guest 'goff' (buffer byte 'skip') in one state: at host
 * offset 'host' when it is not 0, else from the backing chain when 'fall'
 * (unallocated), else zeros. */
static int read_seg(struct vd_req *req, uint64_t goff, size_t skip, size_t n, uint64_t host,
		    bool fall)
{
	int ret;

	if (host) {
		ret = back_flush(req);
		return ret < 0 ? ret : run_add(req, host, skip, n);
	}
	ret = run_flush(req);
	if (ret == 0 && fall && req->img->backing_name) {
		if (req->back.len && req->back.at + req->back.len == goff) {
			req->back.len += n;
			return 0;
		}
		ret = back_flush(req);
		req->back = (struct span){.at = goff, .skip = skip, .len = n};
		return ret;
	}
	if (ret == 0) {
		ret = back_flush(req);
	}
	iov_memset(req->iov, req->iovcnt, skip, n);
	return ret;
}

enum sc_state { SC_UNALLOC, SC_DATA, SC_ZERO };

static enum sc_state sc_state(uint64_t bm, uint32_t s)
{
	return (VD_SC_ALLOC(bm) >> s) & 1 ? SC_DATA : (VD_SC_ZERO(bm) >> s) & 1 ? SC_ZERO
										 : SC_UNALLOC;
}

/* A read piece in a cluster with subclusters: one segment per run of
 * subclusters in the same state. */
static int read_sc(struct vd_req *req, uint64_t goff, size_t n, uint64_t host, uint64_t bm)
{
	struct vd_image *img = req->img;
	uint32_t in0 = goff & (img->cluster_bytes - 1), in = in0, end = in0 + n;
	int ret = 0;

	while (in < end && ret == 0) {
		uint32_t k = in >> img->sc_bits, seg_end;
		enum sc_state st = sc_state(bm, k);

		while (((k + 1) << img->sc_bits) < end && sc_state(bm, k + 1) == st) {
			k++;
		}
		seg_end = ((k + 1) << img->sc_bits) < end ? (k + 1) << img->sc_bits : end;
		ret = read_seg(req, goff + (in - in0), req->pos + (in - in0), seg_end - in,
			       st == SC_DATA ? host + in : 0, st == SC_UNALLOC);
		in = seg_end;
	}
	return ret;
}

static int read_piece(struct vd_req *req, uint64_t goff, size_t n)
{
	struct vd_image *img = req->img;
	struct vd_mblock *l2;
	uint32_t idx;
	uint64_t e = 0, bm = 0, host;
	int ret = l2_find(req, vd_off_cluster(img, goff), false, &l2, &idx);

	if (ret < 0) {
		return ret;
	}
	if (l2) {
		e = vd_l2_get(img, l2, idx);
		bm = vd_l2_get_bitmap(img, l2, idx);
		ret = vd_check_l2_ext(img, e, bm);
		if (ret < 0) {
			return ret;
		}
	}
	host = e & VD_L2_OFFSET_MASK;
	if (img->l2_shift) {
		/* A host cluster with no allocated bit maps nothing. */
		return read_sc(req, goff, n, host, bm);
	}
	return read_seg(req, goff, req->pos, n,
			host ? host + (goff & (img->cluster_bytes - 1)) : 0, e == 0);
}

/* (A4) A new cluster written whole: old contents (the shared cluster, the
 * backing chain's, or zeros) merged with the guest's bytes. */
struct merge {
	struct vd_aio aio;
	struct vd_req *req;
	uint8_t *buf;
	uint64_t dst;
	uint32_t bytes;                 /* a cluster, or a subcluster */
	uint32_t in_off;
	size_t n, skip;
};

/* Where the old contents of a merge come from. */
enum merge_src {
	MS_ZEROS,
	MS_HOST,        /* a data cluster of this image */
	MS_BACKING,     /* the backing chain's guest bytes */
};

static void merge_free(struct merge *m, int res)
{
	struct vd_req *req = m->req;

	req_fail(req, res);
	free(m->buf);
	free(m);
	req_put(req);
}

static void merge_written(struct vd_aio *aio, int res)
{
	merge_free((struct merge *)aio, res >= 0 && (size_t)res < aio->len ? -EIO
									  : (res < 0 ? res : 0));
}

static void merge_write(struct merge *m, int res)
{
	struct vd_req *req = m->req;

	if (res < 0) {
		merge_free(m, res);
		return;
	}
	if (req->kind == RQ_ZERO) {
		memset(m->buf + m->in_off, 0, m->n);
	} else {
		iov_copy(m->buf + m->in_off, req->iov, req->iovcnt, m->skip, m->n, false);
	}
	vd_aio_rw(req->ctx, &m->aio, req->img, VD_AIO_WRITE, m->buf, m->bytes, m->dst,
		  merge_written);
}

static void merge_read(struct vd_aio *aio, int res)
{
	if (res >= 0 && (size_t)res < aio->len) {
		memset((uint8_t *)aio->one.iov_base + res, 0, aio->len - res);
	}
	merge_write((struct merge *)aio, res < 0 ? res : 0);
}

static void merge_back(struct vd_req *child)
{
	merge_write(child->child_arg, child->ret);
}

/* Writes 'bytes' at host 'dst': the old contents of guest [gbase, gbase +
 * bytes) from 'src' ('from': the host offset for MS_HOST), with the
 * request's 'n' bytes at buffer byte 'skip' over them at 'in_off'. */
static int merge_run(struct vd_req *req, enum merge_src src, uint64_t from, uint64_t gbase,
		     uint32_t bytes, uint32_t in_off, size_t n, size_t skip, uint64_t dst)
{
	struct vd_image *img = req->img;
	struct merge *m = calloc(1, sizeof(*m));
	struct iovec one;
	int ret = 0;

	if (m) {
		m->buf = vd_aligned_alloc(bytes);
	}
	if (!m || !m->buf) {
		free(m);
		return -ENOMEM;
	}
	m->req = req;
	m->dst = dst;
	m->bytes = bytes;
	m->in_off = in_off;
	m->n = n;
	m->skip = skip;
	one = (struct iovec){.iov_base = m->buf, .iov_len = bytes};
	req->pending++;
	switch (src) {
	case MS_HOST:
		vd_aio_rw(req->ctx, &m->aio, img, VD_AIO_READ, m->buf, bytes, from, merge_read);
		break;
	case MS_BACKING:
		ret = child_read(req, &one, 1, 0, gbase, bytes, merge_back, m);
		break;
	case MS_ZEROS:
		memset(m->buf, 0, bytes);
		merge_write(m, 0);
		break;
	}
	if (ret < 0) {
		req->pending--;
		free(m->buf);
		free(m);
	}
	return ret;
}

static int merge_start(struct vd_req *req, uint64_t e, uint64_t gbase, uint32_t in_off,
		       size_t n, uint64_t dst)
{
	struct vd_image *img = req->img;
	enum merge_src src = (e & VD_L2_OFFSET_MASK) ? MS_HOST
			     : (e == 0 && img->backing_name) ? MS_BACKING
							     : MS_ZEROS;

	return merge_run(req, src, e & VD_L2_OFFSET_MASK, gbase, img->cluster_bytes, in_off, n,
			 req->pos, dst);
}

static int alloc_record(struct vd_req *req, uint64_t c, uint64_t old, struct vd_mblock *l2,
			uint32_t idx, enum alloc_kind kind, uint32_t mask)
{
	if (req->nallocs == req->cap_allocs) {
		unsigned cap = req->cap_allocs ? req->cap_allocs * 2 : 4;
		struct alloc_rec *a = realloc(req->allocs, cap * sizeof(*a));

		if (!a) {
			return -ENOMEM;
		}
		req->allocs = a;
		req->cap_allocs = cap;
	}
	req->allocs[req->nallocs++] = (struct alloc_rec){c, old, l2, idx, mask, kind, 0};
	req->keep_pins = true;
	return 0;
}

/* The subclusters that guest [goff, goff + n) (inside one cluster) covers
 * whole; the disk's last subcluster counts as whole when the range reaches
 * the end. */
static uint32_t whole_sc_mask(const struct vd_image *img, uint64_t goff, size_t n)
{
	uint64_t smask = img->sc_bytes - 1, end = goff + n;
	uint64_t base = goff & ~(uint64_t)(img->cluster_bytes - 1);
	uint64_t a = (goff + smask) & ~smask;
	uint64_t b = end == img->hdr.size_bytes ? (end + smask) & ~smask : end & ~smask;

	if (a >= b) {
		return 0;
	}
	return vd_sc_mask((uint32_t)((a - base) >> img->sc_bits),
			  (uint32_t)((b - base) >> img->sc_bits));
}

/* Writes the touched subclusters of a piece into host cluster 'dst': the
 * request's bytes go straight to the allocated ones ('alloc', when 'dst' is
 * their cluster) and to those it covers whole; a partly covered one is
 * written whole, merged with what the guest reads there now (zeros, the
 * backing chain's, or, copying a shared cluster, its bytes at 'old_host'),
 * so that an allocated subcluster never holds stale bytes (A5). */
static int write_subclusters(struct vd_req *req, uint64_t goff, size_t n, uint64_t dst,
			     uint32_t alloc, uint32_t zero, bool fresh, uint32_t zmask,
			     uint64_t old_host)
{
	struct vd_image *img = req->img;
	uint32_t sc = img->sc_bytes, in_off = goff & (img->cluster_bytes - 1);
	uint64_t gbase = goff - in_off;
	int ret = 0;

	for (uint32_t k = in_off >> img->sc_bits; k << img->sc_bits < in_off + n && ret == 0; k++) {
		uint32_t a = k * sc > in_off ? k * sc : in_off;
		uint32_t b = (k + 1) * sc < in_off + n ? (k + 1) * sc : in_off + n;
		size_t skip = req->pos + (a - in_off);
		bool falls = !((zero >> k) & 1) && img->backing_name;
		bool in_place = (alloc >> k) & 1 && !old_host;
		enum merge_src src = (alloc >> k) & 1 ? MS_HOST : falls ? MS_BACKING : MS_ZEROS;

		if ((zmask >> k) & 1) {
			continue; /* unmapped when the rest has landed */
		}
		if (in_place && req->kind == RQ_ZERO) {
			ret = run_flush(req);
			ret = ret < 0 ? ret : queue_io(req, VD_AIO_WRITE,
						       &(struct iovec){req->ctx->zeros, b - a}, 1, 0,
						       b - a, dst + a);
		} else if (in_place ||
			   (req->kind == RQ_WRITE &&
			    (b - a == sc || (fresh && !falls && src == MS_ZEROS)))) {
			/* A fresh cluster past the file's old end reads as
			 * zeros already (rule 6). */
			ret = run_add(req, dst + a, skip, b - a);
		} else {
			ret = run_flush(req);
			ret = ret < 0 ? ret : merge_run(req, src, old_host + k * sc,
						       gbase + k * sc, sc, a - k * sc, b - a, skip,
						       dst + k * sc);
		}
	}
	return ret;
}

/* Copies the allocated subclusters 'copy' of a shared cluster at host
 * 'from' into the new cluster 'dst', a run of adjacent ones per I/O pair;
 * the others stay unallocated or zero in the copy's entry. */
static int copy_subclusters(struct vd_req *req, uint64_t from, uint64_t dst, uint32_t copy)
{
	struct vd_image *img = req->img;
	int ret = 0;

	while (copy && ret == 0) {
		uint32_t k = __builtin_ctz(copy), end = k;

		while (end < VD_SC_PER_CLUSTER && ((copy >> end) & 1)) {
			end++;
		}
		copy &= ~vd_sc_mask(k, end);
		ret = merge_run(req, MS_HOST, from + ((uint64_t)k << img->sc_bits), 0,
				(end - k) << img->sc_bits, 0, 0, 0,
				dst + ((uint64_t)k << img->sc_bits));
	}
	return ret;
}

/* A write piece in an image with subclusters.  In place where every
 * touched subcluster is allocated in a cluster of this image's alone;
 * else the touched subclusters are filled in the entry's own cluster, or
 * in a new one when it has none; a cluster shared with a snapshot is copied
 * subcluster by subcluster (the allocated ones only).  The bitmaps change
 * only when the data has landed (A2). */
static int write_piece_sc(struct vd_req *req, uint64_t goff, size_t n)
{
	struct vd_image *img = req->img;
	uint64_t g = vd_off_cluster(img, goff), e, bm, off, c;
	uint32_t idx, in_off = goff & (img->cluster_bytes - 1), alloc, zero, mask, zmask = 0;
	struct vd_mblock *l2;
	enum alloc_kind kind;
	uint16_t ref = 0;
	bool at_end, unknown = true;
	int ret = req->holding ? 0 : wait_holder(req, g, g + 1);

	ret = ret < 0 ? ret : l2_find(req, g, true, &l2, &idx);
	if (ret < 0) {
		return ret;
	}
	e = vd_l2_get(img, l2, idx);
	bm = vd_l2_get_bitmap(img, l2, idx);
	off = e & VD_L2_OFFSET_MASK;
	alloc = VD_SC_ALLOC(bm);
	zero = VD_SC_ZERO(bm);
	mask = vd_sc_mask(in_off >> img->sc_bits, ((in_off + n - 1) >> img->sc_bits) + 1);
	ret = vd_check_l2_ext(img, e, bm);
	if (ret == 0 && off) {
		ret = data_ref(req, off, &ref);
	}
	if (ret < 0) {
		return ret;
	}
	if (req->kind == RQ_ZERO && !(alloc & mask) &&
	    ((zero & mask) == mask || !img->backing_name)) {
		return 0; /* reads as zeros already */
	}
	if (off && ref == 1 && (alloc & mask) == mask &&
	    !(req->kind == RQ_ZERO && whole_sc_mask(img, goff, n))) {
		return write_subclusters(req, goff, n, off, alloc, zero, false, 0, 0);
	}
	if (!vd_journal_room(img, req)) {
		return -EWOULDBLOCK;
	}
	ret = hold(req, g, vd_off_cluster(img, req->off + req->len - 1) + 1);
	if (ret < 0) {
		return ret;
	}
	if (off && ref == 1) {
		kind = AK_SC_FILL;
		c = vd_off_cluster(img, off);
	} else {
		/* With 'off' (a shared cluster) the new one replaces it, and
		 * the entry's allocated bits carry over to the copy. */
		kind = AK_SC_NEW;
		ret = alloc_prepare(req, &c, &at_end);
		ret = ret < 0 ? ret : vd_cluster_take(img, c, at_end, &unknown);
		if (ret < 0) {
			return ret;
		}
		c = at_end ? img->end_clusters - 1 : c;
	}
	/* A write-zeroes unmaps the subclusters it covers whole, in the same
	 * metadata update as the partial ones it fills (one per entry). */
	if (req->kind == RQ_ZERO) {
		zmask = whole_sc_mask(img, goff, n);
	}
	ret = alloc_record(req, c, e, l2, idx, kind,
			   mask & ~(kind == AK_SC_FILL ? alloc : 0) & ~zmask);
	if (ret < 0) {
		if (kind != AK_SC_FILL) {
			vd_cluster_untake(img, c);
		}
		return ret;
	}
	req->allocs[req->nallocs - 1].zmask = zmask;
	if (kind == AK_SC_FILL || !off) {
		return write_subclusters(req, goff, n, vd_cluster_off(img, c),
					 kind == AK_SC_FILL ? alloc : 0, zero,
					 kind == AK_SC_NEW && !unknown, zmask, 0);
	}
	ret = run_flush(req);
	ret = ret < 0 ? ret : copy_subclusters(req, off, vd_cluster_off(img, c), alloc & ~mask);
	return ret < 0 ? ret : write_subclusters(req, goff, n, vd_cluster_off(img, c), alloc,
						 zero, !unknown, zmask, off);
}

/* A write piece (or the partial-cluster part of a write-zeroes): in place
 * when the cluster is this image's alone, else into a new cluster, mapped
 * when the data has landed (A2). */
static int write_piece(struct vd_req *req, uint64_t goff, size_t n)
{
	struct vd_image *img = req->img;
	uint64_t g = vd_off_cluster(img, goff), e, off, c;
	uint32_t idx, in_off = goff & (img->cluster_bytes - 1);
	struct vd_mblock *l2;
	uint16_t ref = 0;
	bool at_end, unknown;
	int ret = req->holding ? 0 : wait_holder(req, g, g + 1);

	ret = ret < 0 ? ret : l2_find(req, g, true, &l2, &idx);
	if (ret < 0) {
		return ret;
	}
	e = vd_get64(l2, idx);
	off = e & VD_L2_OFFSET_MASK;
	ret = vd_check_l2_entry(img, e);
	if (ret == 0 && off) {
		ret = data_ref(req, off, &ref);
	}
	if (ret < 0) {
		return ret;
	}
	if (req->kind == RQ_ZERO && !off && !(e == 0 && img->backing_name)) {
		return 0; /* reads as zeros already */
	}
	if (off && ref == 1 && req->kind == RQ_ZERO) {
		return queue_io(req, VD_AIO_WRITE, &(struct iovec){req->ctx->zeros, n}, 1, 0, n,
				off + in_off);
	}
	if (off && ref == 1) {
		return run_add(req, off + in_off, req->pos, n);
	}
	if (!vd_journal_room(img, req)) {
		return -EWOULDBLOCK;
	}
	ret = hold(req, g, vd_off_cluster(img, req->off + req->len - 1) + 1);
	ret = ret < 0 ? ret : alloc_prepare(req, &c, &at_end);
	ret = ret < 0 ? ret : vd_cluster_take(img, c, at_end, &unknown);
	if (ret < 0) {
		return ret;
	}
	c = at_end ? img->end_clusters - 1 : c;
	ret = alloc_record(req, c, e, l2, idx, AK_CLUSTER, VD_SC_ALL);
	if (ret < 0) {
		vd_cluster_untake(img, c);
		return ret;
	}
	/* Rule 6: a partial write keeps the rest of the cluster as the guest
	 * saw it (shared data, the backing chain's, zeros); a new cluster of
	 * unknown contents is written whole. */
	if (req->kind == RQ_WRITE && (n == img->cluster_bytes ||
				      (!off && !(e == 0 && img->backing_name) && !unknown))) {
		return run_add(req, vd_cluster_off(img, c) + in_off, req->pos, n);
	}
	ret = run_flush(req);
	return ret < 0 ? ret : merge_start(req, e, goff - in_off, in_off, n, vd_cluster_off(img, c));
}

/* Unmaps whole guest cluster 'g' (discard, write-zeroes): entry 0, or ZERO
 * in a clone so that the backing image does not show through.  With no
 * table there, skips to the table's end or 'whole_end' (in '*np'). */
static int unmap_piece(struct vd_req *req, uint64_t goff, uint64_t whole_end, size_t *np)
{
	struct vd_image *img = req->img;
	uint64_t g = vd_off_cluster(img, goff), e, off;
	uint64_t want = img->backing_name ? VD_L2_ZERO : 0, want_bm = 0;
	struct vd_mblock *l2, *rb;
	uint32_t idx;
	int ret;

	if (img->l2_shift) {
		/* No ZERO flag: all 32 subclusters zero instead. */
		want_bm = want ? VD_SC_BITMAP(0, VD_SC_ALL) : 0;
		want = 0;
	}
	if (!vd_journal_room(img, req)) {
		return -EWOULDBLOCK;
	}
	ret = l2_find(req, g, false, &l2, &idx);
	if (ret < 0) {
		return ret;
	}
	if (!l2 && !want && !want_bm) {
		/* No table: the whole table's range is unallocated. */
		uint64_t end = vd_cluster_off(img, (g / img->l2_entries + 1) * img->l2_entries);

		*np = (end < whole_end ? end : whole_end) - goff;
		return 0;
	}
	e = l2 ? vd_l2_get(img, l2, idx) : 0;
	if (l2 && e == want && vd_l2_get_bitmap(img, l2, idx) == want_bm) {
		return 0;
	}
	ret = l2 ? vd_check_l2_ext(img, e, vd_l2_get_bitmap(img, l2, idx)) : 0;
	ret = ret < 0 ? ret : l2_find(req, g, true, &l2, &idx);
	if (ret < 0) {
		return ret;
	}
	e = vd_l2_get(img, l2, idx);
	off = e & VD_L2_OFFSET_MASK;
	if (off) {
		uint64_t rb_off;

		ret = vd_rb_prepare(img, vd_off_cluster(img, off), &rb_off);
		ret = ret < 0 ? ret : need(req, rb_off, &rb);
		if (ret < 0) {
			return ret;
		}
	}
	vd_l2_set(img, l2, idx, want);
	if (img->l2_shift) {
		vd_l2_set_bitmap(img, l2, idx, want_bm);
	}
	ret = off ? vd_cluster_unref(img, vd_off_cluster(img, off)) : 0;
	if (img->pending_record_bytes > img->hdr.journal_bytes / 8) {
		/* A long unmap commits as it goes, as the synchronous one did. */
		vd_journal_kick(img, req->ctx);
	}
	return ret;
}

/* Unmaps the whole subclusters of guest [goff, goff + n), inside one
 * cluster: not allocated, and zero in a clone so that the backing image
 * does not show through.  A cluster left with no allocated subcluster
 * loses its host cluster.  The host bytes of an unmapped subcluster stay
 * as they were (not punched): nothing reads them until a write fills the
 * subcluster whole again. */
static int unmap_sc_piece(struct vd_req *req, uint64_t goff, size_t n)
{
	struct vd_image *img = req->img;
	uint64_t g = vd_off_cluster(img, goff), e, bm, off;
	uint32_t in_off = goff & (img->cluster_bytes - 1), idx, alloc, zero;
	uint32_t mask = vd_sc_mask(in_off >> img->sc_bits,
				   (uint32_t)((in_off + n + img->sc_bytes - 1) >> img->sc_bits));
	struct vd_mblock *l2, *rb;
	int ret;

	if (!vd_journal_room(img, req)) {
		return -EWOULDBLOCK;
	}
	ret = l2_find(req, g, false, &l2, &idx);
	if (ret < 0 || (!l2 && !img->backing_name)) {
		return ret;
	}
	e = l2 ? vd_l2_get(img, l2, idx) : 0;
	bm = l2 ? vd_l2_get_bitmap(img, l2, idx) : 0;
	ret = vd_check_l2_ext(img, e, bm);
	if (ret < 0) {
		return ret;
	}
	alloc = VD_SC_ALLOC(bm) & ~mask;
	zero = img->backing_name ? VD_SC_ZERO(bm) | mask : VD_SC_ZERO(bm) & ~mask;
	if (VD_SC_BITMAP(alloc, zero) == bm) {
		return 0;
	}
	ret = l2_find(req, g, true, &l2, &idx);
	if (ret < 0) {
		return ret;
	}
	off = e & VD_L2_OFFSET_MASK;
	if (off && !alloc) {
		uint64_t rb_off;

		ret = vd_rb_prepare(img, vd_off_cluster(img, off), &rb_off);
		ret = ret < 0 ? ret : need(req, rb_off, &rb);
		if (ret < 0) {
			return ret;
		}
		vd_l2_set(img, l2, idx, 0);
		ret = vd_cluster_unref(img, vd_off_cluster(img, off));
	}
	vd_l2_set_bitmap(img, l2, idx, VD_SC_BITMAP(alloc, zero));
	return ret;
}

/* Discard and write-zeroes of a part of a cluster with subclusters: whole
 * subclusters are unmapped; partial ones are left alone by discard, and
 * written with zeros by write-zeroes, which then handles the whole part
 * as one write (so that one request changes an entry once: two fills of
 * one cluster would each allocate it). */
static int unmap_sc_part(struct vd_req *req, uint64_t goff, size_t n)
{
	struct vd_image *img = req->img;
	uint32_t whole = whole_sc_mask(img, goff, n), in_off = goff & (img->cluster_bytes - 1);
	uint32_t touched = vd_sc_mask(in_off >> img->sc_bits,
				      ((in_off + (uint32_t)n - 1) >> img->sc_bits) + 1);
	uint32_t first;

	if (req->kind == RQ_ZERO && whole != touched) {
		return write_piece_sc(req, goff, n);
	}
	if (!whole) {
		return 0;
	}
	first = __builtin_ctz(whole);
	return unmap_sc_piece(req, (goff - in_off) + ((uint64_t)first << img->sc_bits),
			      (size_t)__builtin_popcount(whole) << img->sc_bits);
}

/* One piece of the request at 'pos'; sets '*np' to the bytes it covered. */
static int do_piece(struct vd_req *req, size_t *np)
{
	struct vd_image *img = req->img;
	uint64_t goff = req->off + req->pos, mask = img->cluster_bytes - 1;
	size_t n = img->cluster_bytes - (goff & mask);
	bool whole;

	n = n < req->len - req->pos ? n : req->len - req->pos;
	*np = n;
	switch (req->kind) {
	case RQ_READ:
		return read_piece(req, goff, n);
	case RQ_WRITE:
		return img->l2_shift ? write_piece_sc(req, goff, n) : write_piece(req, goff, n);
	case RQ_DISCARD:
	case RQ_ZERO:
		/* The disk's last cluster counts as whole when the range
		 * reaches the end. */
		whole = !(goff & mask) && (n == img->cluster_bytes || goff + n == img->hdr.size_bytes);
		if (whole) {
			uint64_t end = req->off + req->len;

			if (end != img->hdr.size_bytes) {
				end &= ~mask;
			}
			return unmap_piece(req, goff, end, np);
		}
		if (img->l2_shift) {
			return unmap_sc_part(req, goff, n);
		}
		return req->kind == RQ_ZERO ? write_piece(req, goff, n) : 0;
	case RQ_FLUSH:
		break;
	}
	return -EINVAL;
}

/* Walks the request from 'pos'; returns when it parks (a waiter list will
 * put it back on its context's ready list) or when every piece is queued. */
static void req_walk(struct vd_req *req)
{
	while (req->pos < req->len && req->ret == 0) {
		size_t n;
		int ret;

		req->keep_pins = false;
		ret = do_piece(req, &n);
		if (ret == -EWOULDBLOCK) {
			return;
		}
		if (req->keep_pins) {
			req->piece_pins = req->npins;
		} else {
			pins_release(req, req->piece_pins);
		}
		if (ret < 0) {
			req_fail(req, ret);
			break;
		}
		req->pos += n;
	}
	req_fail(req, run_flush(req));
	req_fail(req, back_flush(req));
	req_put(req);
}

/* (A2) Maps the clusters a write allocated, now that their data is there. */
static int apply_allocs(struct vd_req *req)
{
	struct vd_image *img = req->img;
	int ret = 0;

	for (unsigned i = 0; i < req->nallocs && ret == 0; i++) {
		struct alloc_rec *a = &req->allocs[i];
		uint64_t old = a->old & VD_L2_OFFSET_MASK, bm;

		/* AK_SC_FILL: the entry's own cluster, no new reference. */
		ret = a->kind == AK_SC_FILL ? 0 : vd_refcount_set(img, a->c, 1);
		if (ret == 0 && a->kind != AK_SC_FILL) {
			vd_l2_set(img, a->l2, a->idx, vd_cluster_off(img, a->c));
		}
		if (ret == 0 && img->l2_shift) {
			bm = vd_l2_get_bitmap(img, a->l2, a->idx);
			/* AK_SC_NEW over a shared cluster: its allocated bits were
			 * copied with their data (copy_subclusters). */
			bm = VD_SC_BITMAP((VD_SC_ALLOC(bm) | a->mask) & ~a->zmask,
					  (VD_SC_ZERO(bm) & ~a->mask & ~a->zmask) |
						  (img->backing_name ? a->zmask : 0));
			vd_l2_set_bitmap(img, a->l2, a->idx, bm);
		}
		if (a->kind == AK_SC_FILL) {
			continue;
		}
		if (ret == 0 && old) {
			ret = vd_cluster_unref(img, vd_off_cluster(img, old));
		}
	}
	return ret;
}

static void req_end(struct vd_req *req)
{
	struct vd_image *img = req->img;
	bool remapped = req->nallocs && req->ret == 0;

	if (req->commit_wait) {
		/* Back from the commit that made its mapping durable. */
		done_push(req);
		return;
	}
	if (remapped) {
		req_fail(req, apply_allocs(req));
	} else {
		for (unsigned i = 0; i < req->nallocs; i++) {
			if (req->allocs[i].kind != AK_SC_FILL) {
				vd_cluster_untake(img, req->allocs[i].c);
			}
		}
	}
	req->piece_pins = 0;
	pins_release(req, 0);
	unhold(req);
	if (!req->user) {
		req->child_done(req);
		req_free(req);
		return;
	}
	if (req->kind != RQ_READ && req->kind != RQ_FLUSH && img->writable) {
		req_fail(req, vd_meta_boundary_async(img, req->ctx));
		if (req->ret == 0 && (img->open_flags & VD_OPEN_DURABLE_MAP) &&
		    (remapped || req->kind == RQ_ZERO)) {
			/* The new mapping lives in memory until a commit: park
			 * the request on the next one, like a flush. */
			req->commit_wait = true;
			req->pending = 1;
			vd_journal_flush(img, req->ctx, req);
			return;
		}
	}
	done_push(req);
}

static void req_put(struct vd_req *req)
{
	if (--req->pending == 0) {
		req_end(req);
	}
}

/* A flush parked on a commit (journal.c): the commit is durable, or failed. */
void vd_req_done(struct vd_req *req, int ret)
{
	req_fail(req, ret);
	req_put(req);
}

void vd_req_done_all(struct vd_req **listp, int ret)
{
	struct vd_req *w = *listp;

	*listp = NULL;
	while (w) {
		struct vd_req *next = w->wnext;

		w->wnext = NULL;
		vd_req_done(w, ret);
		w = next;
	}
}

static bool iov_aligned(const struct iovec *iov, int cnt, uint32_t align, size_t *lenp)
{
	bool ok = true;

	*lenp = 0;
	for (int i = 0; i < cnt; i++) {
		ok &= ((uintptr_t)iov[i].iov_base % align) == 0 && iov[i].iov_len % align == 0;
		*lenp += iov[i].iov_len;
	}
	return ok;
}

/* The alignment a guest buffer needs: reads that fall through to a backing
 * image go to its file with the caller's buffer, so the strictest of the
 * chain (an image in memory or on a file without O_DIRECT, with a backing
 * image opened O_DIRECT, read misaligned buffers with EINVAL: found by the
 * crash harness's clone run, in a build without ASan, whose large mallocs
 * are not 512-byte aligned). */
static uint32_t chain_align(const struct vd_image *img)
{
	uint32_t a = 1;

	for (; img; img = img->backing) {
		a = img->file.align_bytes > a ? img->file.align_bytes : a;
	}
	return a;
}

static int check_range(struct vd_image *img, uint64_t off, uint64_t len)
{
	if (off % VD_SECTOR_BYTES || len % VD_SECTOR_BYTES || off > img->hdr.size_bytes ||
	    len > img->hdr.size_bytes - off) {
		return -EINVAL;
	}
	return 0;
}

static struct vd_req *req_new(struct vd_ctx *ctx, struct vd_image *img, enum req_kind kind,
			      vd_cb cb, void *arg)
{
	struct vd_req *req = calloc(1, sizeof(*req));

	if (req) {
		req->ctx = ctx;
		req->img = img;
		req->kind = kind;
		req->cb = cb;
		req->arg = arg;
		req->user = true;
		req->pending = 1; /* held until the walk is done */
	}
	return req;
}

static int submit_rw(struct vd_ctx *ctx, struct vd_image *img, const struct iovec *iov,
		     int iovcnt, uint64_t off, vd_cb cb, void *arg, bool is_read)
{
	struct vd_req *req;
	size_t len;
	bool aligned = iov_aligned(iov, iovcnt, chain_align(img), &len);
	int ret = check_range(img, off, len);

	if (ret < 0) {
		return ret;
	}
	if (!is_read && !img->writable) {
		return -EROFS;
	}
	if (ctx->inflight >= ctx->depth) {
		return -EAGAIN;
	}
	req = req_new(ctx, img, is_read ? RQ_READ : RQ_WRITE, cb, arg);
	if (!req) {
		return -ENOMEM;
	}
	req->off = off;
	req->len = len;
	/* The walk may park: keep the caller's iovec array (vdisk.h). */
	if (iovcnt > 0 && iovcnt <= 4) {
		memcpy(req->iov_inline, iov, iovcnt * sizeof(*iov));
		req->owned_iov = req->iov_inline;
		req->iovcnt = iovcnt;
	} else {
		ret = iov_slice(iov, iovcnt, 0, len, &req->owned_iov, &req->iovcnt);
		if (ret < 0) {
			free(req);
			return ret;
		}
	}
	req->iov = req->owned_iov;
	if (!aligned) {
		req->bounce = vd_aligned_alloc(len);
		if (!req->bounce) {
			req_free(req);
			return -ENOMEM;
		}
		req->user_iov = req->owned_iov;
		req->user_iovcnt = req->iovcnt;
		if (!is_read) {
			iov_copy(req->bounce, iov, iovcnt, 0, len, false);
		}
		req->one = (struct iovec){.iov_base = req->bounce, .iov_len = len};
		req->iov = &req->one;
		req->iovcnt = 1;
	}
	ctx->inflight++;
	req_walk(req);
	return 0;
}

int vd_submit_readv(struct vd_ctx *ctx, struct vd_image *img, const struct iovec *iov,
		    int iovcnt, uint64_t off, vd_cb cb, void *arg)
{
	return submit_rw(ctx, img, iov, iovcnt, off, cb, arg, true);
}

int vd_submit_writev(struct vd_ctx *ctx, struct vd_image *img, const struct iovec *iov,
		     int iovcnt, uint64_t off, vd_cb cb, void *arg)
{
	return submit_rw(ctx, img, iov, iovcnt, off, cb, arg, false);
}

int vd_submit_flush(struct vd_ctx *ctx, struct vd_image *img, vd_cb cb, void *arg)
{
	struct vd_req *req;

	if (ctx->inflight >= ctx->depth) {
		return -EAGAIN;
	}
	req = req_new(ctx, img, RQ_FLUSH, cb, arg);
	if (!req) {
		return -ENOMEM;
	}
	ctx->inflight++;
	if (img->writable) {
		/* Completes when a commit (or a bare fsync, when nothing
		 * changed) started after this point is durable (rules 1, 2). */
		vd_journal_flush(img, ctx, req);
	} else {
		req_put(req);
	}
	return 0;
}

static int ctx_zeros(struct vd_ctx *ctx, uint32_t bytes)
{
	if (ctx->zeros_bytes >= bytes) {
		return 0;
	}
	free(ctx->zeros);
	ctx->zeros = vd_aligned_alloc(bytes);
	if (!ctx->zeros) {
		ctx->zeros_bytes = 0;
		return -ENOMEM;
	}
	memset(ctx->zeros, 0, bytes);
	ctx->zeros_bytes = bytes;
	return 0;
}

static int submit_unmap(struct vd_ctx *ctx, struct vd_image *img, uint64_t off, uint64_t len,
			vd_cb cb, void *arg, bool zero)
{
	struct vd_req *req;
	int ret = check_range(img, off, len);

	if (ret < 0) {
		return ret;
	}
	if (!img->writable) {
		return -EROFS;
	}
	if (ctx->inflight >= ctx->depth) {
		return -EAGAIN;
	}
	ret = zero ? ctx_zeros(ctx, img->cluster_bytes) : 0;
	req = ret == 0 ? req_new(ctx, img, zero ? RQ_ZERO : RQ_DISCARD, cb, arg) : NULL;
	if (!req) {
		return -ENOMEM;
	}
	req->off = off;
	req->len = len;
	ctx->inflight++;
	if (len == 0) {
		req_put(req);
		return 0;
	}
	/* (A3) The whole range is held: its clusters are unmapped in turn. */
	ret = hold(req, vd_off_cluster(img, off), vd_off_cluster(img, off + len - 1) + 1);
	if (ret == 0) {
		req_walk(req);
	}
	return 0;
}

int vd_submit_discard(struct vd_ctx *ctx, struct vd_image *img, uint64_t off, uint64_t len,
		      vd_cb cb, void *arg)
{
	return submit_unmap(ctx, img, off, len, cb, arg, false);
}

int vd_submit_write_zeroes(struct vd_ctx *ctx, struct vd_image *img, uint64_t off,
			   uint64_t len, vd_cb cb, void *arg)
{
	return submit_unmap(ctx, img, off, len, cb, arg, true);
}

/* Resumes a request taken off a waiter list.  A discard or write-zeroes
 * first takes its hold (A3). */
static void req_resume(struct vd_req *req)
{
	struct vd_image *img = req->img;

	if ((req->kind == RQ_DISCARD || req->kind == RQ_ZERO) && !req->holding && req->ret == 0 &&
	    hold(req, vd_off_cluster(img, req->off),
		 vd_off_cluster(img, req->off + req->len - 1) + 1) == -EWOULDBLOCK) {
		return;
	}
	req_walk(req);
}

static unsigned run_hooks(struct vd_ctx *ctx)
{
	struct vd_aio *stalled_head = NULL, *stalled_tail = NULL;
	unsigned ran = 0;

	while (ctx->hook_head) {
		struct vd_aio *aio = ctx->hook_head;
		int res;

		ctx->hook_head = aio->next;
		if (!ctx->hook_head) {
			ctx->hook_tail = NULL;
		}
		res = hook_run(aio);
		if (res == -EINPROGRESS) {
			aio_queue(&stalled_head, &stalled_tail, aio);
			continue;
		}
		aio->done(aio, res);
		ran++;
	}
	ctx->hook_head = stalled_head;
	ctx->hook_tail = stalled_tail;
	return ran;
}

static void run_waiting(struct vd_ctx *ctx)
{
	while (ctx->wait_head) {
		struct vd_aio *aio = ctx->wait_head;

		if (!aio_to_ring(ctx, aio)) {
			break;
		}
		ctx->wait_head = aio->next;
		if (!ctx->wait_head) {
			ctx->wait_tail = NULL;
		}
	}
}

static void run_ready(struct vd_ctx *ctx)
{
	while (ctx->ready_head) {
		struct vd_req *req = ctx->ready_head;

		ctx->ready_head = req->next;
		if (!ctx->ready_head) {
			ctx->ready_tail = NULL;
		}
		req_resume(req);
	}
}

static int run_done(struct vd_ctx *ctx)
{
	int n = 0;

	while (ctx->done_head) {
		struct vd_req *req = ctx->done_head;

		ctx->done_head = req->next;
		if (!ctx->done_head) {
			ctx->done_tail = NULL;
		}
		req_finish(req);
		n++;
	}
	return n;
}

int vd_ctx_submit(struct vd_ctx *ctx)
{
	int ret = 0;

	run_waiting(ctx);
	if (io_uring_sq_ready(&ctx->ring)) {
		ret = io_uring_submit(&ctx->ring);
	}
	return ret < 0 ? ret : 0;
}

/* Runs everything that can move without waiting: completed ring I/O, test
 * hook I/O, woken requests; returns whether anything ran. */
static bool ctx_run(struct vd_ctx *ctx)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	bool ready = ctx->ready_head != NULL;

	io_uring_for_each_cqe(&ctx->ring, head, cqe) {
		struct vd_aio *aio = io_uring_cqe_get_data(cqe);

		ctx->ring_inflight--;
		aio->done(aio, cqe->res);
		seen++;
	}
	io_uring_cq_advance(&ctx->ring, seen);
	seen += run_hooks(ctx);
	run_ready(ctx);
	run_waiting(ctx);
	return seen || ready;
}

/* Submitting and waiting in one io_uring_enter is what keeps the syscall
 * count per request below one at depth. */
int vd_ctx_poll(struct vd_ctx *ctx, unsigned min_complete)
{
	unsigned n = 0;
	uint64_t cnt;

	if (read(ctx->efd, &cnt, sizeof(cnt)) < 0) {
		/* Nothing signalled: fine, we look at the rings anyway. */
	}
	for (;;) {
		bool moved;
		int ret;

		ctx->polling = true;
		moved = ctx_run(ctx);
		ctx->polling = false;
		n += run_done(ctx);
		if (n >= min_complete || ctx->inflight == 0) {
			ret = vd_ctx_submit(ctx);
			return ret < 0 ? ret : (int)n;
		}
		if (moved || ctx->ready_head || ctx->done_head) {
			continue;
		}
		if (!ctx->ring_inflight && !io_uring_sq_ready(&ctx->ring)) {
			/* Only stalled hook I/O, or requests parked on another
			 * context's step: nothing to wait for here. */
			ret = vd_ctx_submit(ctx);
			return ret < 0 ? ret : (int)n;
		}
		ret = io_uring_submit_and_wait(&ctx->ring, 1);
		if (ret < 0 && ret != -EINTR) {
			return ret;
		}
	}
}

/* An L2 entry naming the header, the journal, the active L1 or the
 * refcount table (a corrupt image) would show their bytes as guest data
 * and have guest writes land on them: refused like an entry past the end. */
int vd_check_l2_entry(struct vd_image *img, uint64_t e)
{
	uint64_t off = e & VD_L2_OFFSET_MASK;

	if ((e & (img->l2_shift ? VD_L2_EXT_RESERVED_MASK : VD_L2_RESERVED_MASK)) ||
	    ((e & VD_L2_ZERO) && off) ||
	    (off & (img->cluster_bytes - 1)) ||
	    off + img->cluster_bytes > vd_cluster_off(img, img->end_clusters > 0
							      ? img->end_clusters
							      : (img->file_bytes +
								 img->cluster_bytes - 1) >>
									img->cluster_bits) ||
	    (off && vd_fixed_metadata(img, vd_off_cluster(img, off)))) {
		return -EUCLEAN;
	}
	return 0;
}

/* An extended entry (word 0 'e', bitmaps 'bm'): also no subcluster both
 * allocated and zero, and no allocated one without a host cluster. */
int vd_check_l2_ext(struct vd_image *img, uint64_t e, uint64_t bm)
{
	int ret = vd_check_l2_entry(img, e);

	if (ret == 0 && img->l2_shift &&
	    ((VD_SC_ALLOC(bm) & VD_SC_ZERO(bm)) ||
	     (VD_SC_ALLOC(bm) && !(e & VD_L2_OFFSET_MASK)))) {
		return -EUCLEAN;
	}
	return ret;
}

/* Copies the L2 table at L1 index 'i' shared with a snapshot, so the active
 * disk can change it: the copy's data clusters gain a reference. */
static int l2_copy_up_sync(struct vd_image *img, uint32_t i, struct vd_mblock *old,
		      struct vd_mblock **newp)
{
	struct vd_mblock *nb;
	uint64_t c;
	int ret = vd_cluster_alloc(img, &c);

	if (ret < 0) {
		return ret;
	}
	nb = vd_mblock_new(img, vd_cluster_off(img, c));
	if (!nb) {
		return -ENOMEM;
	}
	memcpy(nb->data, old->data, img->cluster_bytes);
	for (uint32_t j = 0; j < img->l2_entries && ret == 0; j++) {
		uint64_t e = vd_l2_get(img, old, j), off = e & VD_L2_OFFSET_MASK;

		ret = vd_check_l2_entry(img, e);
		if (ret == 0 && off) {
			ret = vd_refcount_add(img, vd_off_cluster(img, off), 1);
		}
	}
	if (ret == 0) {
		ret = vd_cluster_unref(img, vd_off_cluster(img, old->offset));
	}
	if (ret == 0) {
		vd_set64(img, img->l1_blk, i, vd_cluster_off(img, c));
		*newp = nb;
		return 0;
	}
	vd_mblock_put(nb);
	return ret;
}
/* Finds the L2 table for guest cluster 'g'.  '*l2p' is NULL when there is
 * none and 'for_write' is false; with 'for_write', a missing table is
 * created and a shared one copied, so the caller may change it. */
int vd_l2_lookup(struct vd_image *img, uint64_t g, bool for_write, struct vd_mblock **l2p,
		 uint32_t *idxp)
{
	uint32_t i = g / img->l2_entries;
	uint64_t e = vd_get64(img->l1_blk, i), off = e & VD_L1_OFFSET_MASK, c;
	struct vd_mblock *l2;
	uint16_t ref;
	int ret;

	*l2p = NULL;
	*idxp = g % img->l2_entries;
	ret = l1_entry_check(img, e);
	if (ret < 0) {
		return ret;
	}
	if (!off) {
		if (!for_write) {
			return 0;
		}
		ret = vd_cluster_alloc(img, &c);
		if (ret < 0) {
			return ret;
		}
		l2 = vd_mblock_new(img, vd_cluster_off(img, c));
		if (!l2) {
			return -ENOMEM;
		}
		vd_set64(img, img->l1_blk, i, vd_cluster_off(img, c));
		*l2p = l2;
		return 0;
	}
	ret = vd_mblock_get(img, off, &l2);
	if (ret < 0 || !for_write) {
		*l2p = ret < 0 ? NULL : l2;
		return ret;
	}
	ret = vd_refcount_get(img, vd_off_cluster(img, off), &ref);
	if (ret == 0 && ref > 1) {
		struct vd_mblock *copy;

		ret = l2_copy_up_sync(img, i, l2, &copy);
		vd_mblock_put(l2);
		l2 = ret == 0 ? copy : NULL;
	}
	if (ret < 0) {
		vd_mblock_put(l2);
		return ret;
	}
	*l2p = l2;
	return 0;
}

/* Unmaps the whole clusters inside [off, off+len): they read as zeros (a
 * clone marks them ZERO so that its backing image does not show through),
 * or, with 'to_backing', from the backing chain again. */
int vd_unmap_clusters(struct vd_image *img, uint64_t off, uint64_t len, bool to_backing)
{
	uint64_t first = (off + img->cluster_bytes - 1) >> img->cluster_bits;
	uint64_t end = (off + len) >> img->cluster_bits;
	uint64_t want = img->backing_name && !to_backing ? VD_L2_ZERO : 0, want_bm = 0;
	int ret = 0;

	if (img->l2_shift) {
		/* No ZERO flag: all 32 subclusters zero instead. */
		want_bm = want ? VD_SC_BITMAP(0, VD_SC_ALL) : 0;
		want = 0;
	}
	/* The last, partial cluster of the disk counts as whole. */
	if (off + len == img->hdr.size_bytes) {
		end = img->guest_clusters;
	}
	for (uint64_t g = first; g < end && ret == 0; g++) {
		struct vd_mblock *l2;
		uint32_t idx;
		uint64_t e, bm;

		ret = vd_l2_lookup(img, g, want != 0 || want_bm != 0, &l2, &idx);
		if (ret < 0 || !l2) {
			/* No table: the whole table's range is unallocated. */
			g = (g / img->l2_entries + 1) * img->l2_entries - 1;
			continue;
		}
		e = vd_l2_get(img, l2, idx);
		bm = vd_l2_get_bitmap(img, l2, idx);
		vd_mblock_put(l2);
		if (e == want && bm == want_bm) {
			continue;
		}
		ret = vd_check_l2_ext(img, e, bm);
		if (ret == 0) {
			ret = vd_l2_lookup(img, g, true, &l2, &idx);
		}
		if (ret == 0) {
			vd_l2_set(img, l2, idx, want);
			if (img->l2_shift) {
				vd_l2_set_bitmap(img, l2, idx, want_bm);
			}
			vd_mblock_put(l2);
			if (e & VD_L2_OFFSET_MASK) {
				ret = vd_cluster_unref(img, vd_off_cluster(img, e & VD_L2_OFFSET_MASK));
			}
		}
		if (ret == 0) {
			ret = vd_meta_boundary(img);
		}
	}
	return ret;
}

/* The synchronous calls: one private context per image. */
struct sync_wait {
	bool done;
	int ret;
};

static void sync_cb(void *arg, int ret)
{
	struct sync_wait *w = arg;

	w->done = true;
	w->ret = ret;
}

/* Also waits for the commit or write-backs another context has in flight
 * on the image: the synchronous calls run with nothing in flight. */
static int sync_ctx(struct vd_image *img)
{
	int ret = img->sync_ctx ? 0 : vd_ctx_create(4, &img->sync_ctx);

	return ret < 0 ? ret : vd_async_drain(img);
}

static int sync_wait(struct vd_image *img, struct sync_wait *w, int ret)
{
	while (ret == 0 && !w->done) {
		ret = vd_ctx_poll(img->sync_ctx, 1);
		ret = ret < 0 ? ret : 0;
	}
	return ret < 0 ? ret : w->ret;
}

int vd_pread(struct vd_image *img, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct sync_wait w = {0};
	int ret = sync_ctx(img);

	if (ret == 0) {
		ret = vd_submit_readv(img->sync_ctx, img, &iov, 1, off, sync_cb, &w);
	}
	return sync_wait(img, &w, ret);
}

int vd_pwrite(struct vd_image *img, const void *buf, size_t len, uint64_t off)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct sync_wait w = {0};
	int ret = sync_ctx(img);

	if (ret == 0) {
		ret = vd_submit_writev(img->sync_ctx, img, &iov, 1, off, sync_cb, &w);
	}
	return sync_wait(img, &w, ret);
}

int vd_flush(struct vd_image *img)
{
	struct sync_wait w = {0};
	int ret = sync_ctx(img);

	if (ret == 0) {
		ret = vd_submit_flush(img->sync_ctx, img, sync_cb, &w);
	}
	return sync_wait(img, &w, ret);
}

int vd_discard(struct vd_image *img, uint64_t off, uint64_t len)
{
	struct sync_wait w = {0};
	int ret = sync_ctx(img);

	if (ret == 0) {
		ret = vd_submit_discard(img->sync_ctx, img, off, len, sync_cb, &w);
	}
	return sync_wait(img, &w, ret);
}

int vd_write_zeroes(struct vd_image *img, uint64_t off, uint64_t len)
{
	struct sync_wait w = {0};
	int ret = sync_ctx(img);

	if (ret == 0) {
		ret = vd_submit_write_zeroes(img->sync_ctx, img, off, len, sync_cb, &w);
	}
	return sync_wait(img, &w, ret);
}

int vd_map(struct vd_image *img, uint64_t off, struct vd_extent *ext)
{
	enum vd_extent_state state = VD_EXTENT_UNALLOCATED;
	uint64_t pos = off, host0 = 0;
	int ret = 0;

	if (off >= img->hdr.size_bytes) {
		return -EINVAL;
	}
	while (pos < img->hdr.size_bytes) {
		uint64_t g = vd_off_cluster(img, pos), e = 0, bm = 0, host, step;
		uint32_t k = (pos & (img->cluster_bytes - 1)) >> img->sc_bits;
		enum vd_extent_state s;
		struct vd_mblock *l2;
		uint32_t idx;

		ret = vd_l2_lookup(img, g, false, &l2, &idx);
		if (ret < 0) {
			break;
		}
		if (l2) {
			e = vd_l2_get(img, l2, idx);
			bm = vd_l2_get_bitmap(img, l2, idx);
			vd_mblock_put(l2);
			ret = vd_check_l2_ext(img, e, bm);
			if (ret < 0) {
				break;
			}
		}
		host = e & VD_L2_OFFSET_MASK;
		/* With subclusters, one subcluster per step. */
		step = img->l2_shift ? img->sc_bytes : img->cluster_bytes;
		if (img->l2_shift) {
			enum sc_state st = sc_state(bm, k);

			host = st == SC_DATA ? host + ((uint64_t)k << img->sc_bits) : 0;
			e = st == SC_ZERO ? VD_L2_ZERO : 0;
		}
		s = host ? VD_EXTENT_DATA
			 : (e & VD_L2_ZERO) ? VD_EXTENT_ZERO
			 : img->backing_name ? VD_EXTENT_BACKING
					    : VD_EXTENT_UNALLOCATED;
		if (pos == off) {
			state = s;
			host0 = host + (off & (step - 1));
		} else if (s != state || (s == VD_EXTENT_DATA && host0 + (pos - off) !=
								 host)) {
			break;
		}
		/* No L2 table: its whole range is one state, in one step (an
		 * empty 16 TiB image maps in a few thousand steps, not 2^28). */
		pos = l2 ? (pos & ~(step - 1)) + step
			 : vd_cluster_off(img, (g / img->l2_entries + 1) * img->l2_entries);
	}
	if (ret < 0 && pos == off) {
		return ret;
	}
	ext->offset = off;
	ext->length = (pos < img->hdr.size_bytes ? pos : img->hdr.size_bytes) - off;
	ext->state = state;
	ext->host_offset = state == VD_EXTENT_DATA ? host0 : 0;
	vd_cache_trim(img);
	return 0;
}
