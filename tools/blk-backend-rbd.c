/* SPDX-License-Identifier: MIT */
/* blk-backend-rbd.c: the "rbd" back end of blk-backend.h: a Ceph RBD image
 * (rbd:POOL/IMAGE, libvrbd's names) through librbd's asynchronous calls.
 *
 * Each virtqueue has a libvrbd queue: librbd completes requests on its own
 * threads, where a completion only joins the queue's done list and bumps
 * its eventfd; the server's thread runs the callback from queue_poll under
 * the disk's lock like any other back end's, so nothing of the server runs
 * on librbd's threads and no thread exists per request.  Writes are completed by
 * librbd once the cluster has them (no cache: cache mode "none", the
 * default) or once in librbd's write-back cache (cache mode "writeback"),
 * which a flush then writes out: either way a completed flush covers every
 * write completed before it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk-backend.h"
#include "vrbd.h"

struct rbd_backend {
	struct blk_backend base;
	struct vrbd_image *img;
	uint64_t size_bytes;
};

struct rbd_queue {
	struct blk_queue base;
	struct vrbd_queue *vq;
};

static struct rbd_backend *BB(struct blk_backend *b)
{
	return (struct rbd_backend *)b;
}

static struct rbd_queue *BQ(struct blk_queue *q)
{
	return (struct rbd_queue *)q;
}

static int rbd_backend_open(const char *name, const struct blk_open_opts *opts,
			    struct blk_backend **bp, struct errmsg *err)
{
	struct rbd_backend *b = calloc(1, sizeof(*b));
	struct vrbd_spec spec;
	int ret;

	if (!b) {
		return -ENOMEM;
	}
	ret = vrbd_spec_parse(name, &spec, err);
	if (ret == 0) {
		ret = vrbd_open(&spec,
				(opts->read_only ? 0 : VRBD_WRITABLE) |
					(opts->buffered ? VRBD_CACHE : 0),
				&b->img, err);
	}
	if (ret == 0) {
		ret = rbd_get_size(b->img->rbd, &b->size_bytes);
		if (ret < 0) {
			errmsg_set(err, "%s: cannot read its size: %s", name, strerror(-ret));
			vrbd_close(b->img);
		}
	}
	if (ret < 0) {
		free(b);
		return ret;
	}
	b->size_bytes = b->size_bytes / 512 * 512;
	b->base.cls = &blk_backend_rbd;
	*bp = &b->base;
	return 0;
}

static int rbd_backend_close(struct blk_backend *bb)
{
	struct rbd_backend *b = BB(bb);
	int ret = rbd_flush(b->img->rbd);

	vrbd_close(b->img);
	free(b);
	return ret;
}

static uint64_t rbd_backend_size_bytes(struct blk_backend *b)
{
	return BB(b)->size_bytes;
}

static uint64_t rbd_backend_allocated_bytes(struct blk_backend *b)
{
	uint64_t bytes;

	return vrbd_allocated_bytes(BB(b)->img, &bytes) == 0 ? bytes : 0;
}

static int rbd_backend_resize(struct blk_backend *bb, uint64_t size_bytes, struct errmsg *err)
{
	struct rbd_backend *b = BB(bb);
	int ret;

	if (size_bytes < b->size_bytes) {
		errmsg_set(err, "%s: shrinking a served disk is refused", b->img->name);
		return -EINVAL;
	}
	ret = rbd_resize(b->img->rbd, size_bytes);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot resize: %s", b->img->name, strerror(-ret));
		return ret;
	}
	b->size_bytes = size_bytes;
	return 0;
}

static int rbd_backend_snapshot(struct blk_backend *bb, const char *name, bool remove,
				struct errmsg *err)
{
	struct rbd_backend *b = BB(bb);
	int ret = remove ? rbd_snap_remove(b->img->rbd, name) : rbd_snap_create(b->img->rbd, name);

	if (ret < 0) {
		errmsg_set(err, "%s: cannot %s snapshot '%s': %s", b->img->name,
			   remove ? "delete" : "create", name,
			   ret == -EEXIST   ? "it exists"
			   : ret == -ENOENT ? "no such snapshot"
					    : strerror(-ret));
	}
	return ret;
}

static int rbd_backend_snapshot_create(struct blk_backend *b, const char *name,
				       struct errmsg *err)
{
	return rbd_backend_snapshot(b, name, false, err);
}

static int rbd_backend_snapshot_delete(struct blk_backend *b, const char *name,
				       struct errmsg *err)
{
	return rbd_backend_snapshot(b, name, true, err);
}

static int rbd_queue_create(struct blk_backend *b, unsigned depth, struct blk_queue **qp)
{
	struct rbd_queue *q = calloc(1, sizeof(*q));
	int ret;

	if (!q) {
		return -ENOMEM;
	}
	ret = vrbd_queue_create(BB(b)->img, &q->vq);
	if (ret < 0) {
		free(q);
		return ret;
	}
	q->base.cls = b->cls;
	q->base.backend = b;
	*qp = &q->base;
	return 0;
}

static void rbd_queue_destroy(struct blk_queue *bq)
{
	if (bq) {
		vrbd_queue_destroy(BQ(bq)->vq);
		free(bq);
	}
}

static int rbd_queue_event_fd(struct blk_queue *q)
{
	return vrbd_queue_fd(BQ(q)->vq);
}

static int rbd_queue_poll(struct blk_queue *q)
{
	return vrbd_queue_poll(BQ(q)->vq, 0);
}

static unsigned rbd_queue_inflight(struct blk_queue *q)
{
	return vrbd_queue_inflight(BQ(q)->vq);
}

static int rbd_readv(struct blk_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
		     blk_cb cb, void *arg)
{
	return vrbd_readv(BQ(q)->vq, iov, iovcnt, off, cb, arg);
}

static int rbd_writev(struct blk_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
		      blk_cb cb, void *arg)
{
	return vrbd_writev(BQ(q)->vq, iov, iovcnt, off, cb, arg);
}

static int rbd_flush_req(struct blk_queue *q, blk_cb cb, void *arg)
{
	return vrbd_flush(BQ(q)->vq, cb, arg);
}

static int rbd_discard_req(struct blk_queue *q, uint64_t off, uint64_t len, blk_cb cb,
			   void *arg)
{
	return vrbd_discard(BQ(q)->vq, off, len, cb, arg);
}

static int rbd_write_zeroes_req(struct blk_queue *q, uint64_t off, uint64_t len, bool unmap,
				blk_cb cb, void *arg)
{
	return vrbd_write_zeroes(BQ(q)->vq, off, len, unmap, cb, arg);
}

const struct blk_backend_class blk_backend_rbd = {
	.name = "rbd",
	.open = rbd_backend_open,
	.close = rbd_backend_close,
	.size_bytes = rbd_backend_size_bytes,
	.allocated_bytes = rbd_backend_allocated_bytes,
	.resize = rbd_backend_resize,
	.snapshot_create = rbd_backend_snapshot_create,
	.snapshot_delete = rbd_backend_snapshot_delete,
	.queue_create = rbd_queue_create,
	.queue_destroy = rbd_queue_destroy,
	.queue_event_fd = rbd_queue_event_fd,
	.queue_poll = rbd_queue_poll,
	.queue_inflight = rbd_queue_inflight,
	.readv = rbd_readv,
	.writev = rbd_writev,
	.flush = rbd_flush_req,
	.discard = rbd_discard_req,
	.write_zeroes = rbd_write_zeroes_req,
};
