/* SPDX-License-Identifier: MIT */
/* blk-backend-rbd.c: the "rbd" back end of blk-backend.h: a Ceph RBD image
 * (rbd:POOL/IMAGE, libvrbd's names) through librbd's asynchronous calls.
 *
 * librbd completes requests on its own threads.  A completion only moves
 * the request onto its queue's done list and bumps the queue's eventfd; the
 * server's thread runs the callback from queue_poll under the disk's lock
 * like any other back end's, so nothing of the server runs on librbd's
 * threads and no thread exists per request.  Writes are completed by
 * librbd once the cluster has them (no cache: cache mode "none", the
 * default) or once in librbd's write-back cache (cache mode "writeback"),
 * which a flush then writes out: either way a completed flush covers every
 * write completed before it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk-backend.h"
#include "vrbd.h"

struct rbd_backend {
	struct blk_backend base;
	struct vrbd_image *img;
	uint64_t size_bytes;
};

struct rbd_req;

struct rbd_queue {
	struct blk_queue base;
	rbd_image_t rbd;
	int efd;
	unsigned inflight;         /* the server's thread only */
	pthread_mutex_t lock;      /* 'done' (librbd's threads add to it) */
	struct rbd_req *done, **done_tail;
};

struct rbd_req {
	struct rbd_queue *q;
	blk_cb cb;
	void *arg;
	rbd_completion_t c;
	int ret;
	struct rbd_req *next;
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

	if (!q) {
		return -ENOMEM;
	}
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		free(q);
		return -errno;
	}
	pthread_mutex_init(&q->lock, NULL);
	q->done_tail = &q->done;
	q->rbd = BB(b)->img->rbd;
	q->base.cls = b->cls;
	q->base.backend = b;
	*qp = &q->base;
	return 0;
}

/* On a librbd thread. */
static void aio_done(rbd_completion_t c, void *arg)
{
	struct rbd_req *r = arg;
	struct rbd_queue *q = r->q;
	ssize_t ret = rbd_aio_get_return_value(c);

	r->ret = ret < 0 ? (int)ret : 0;
	r->next = NULL;
	pthread_mutex_lock(&q->lock);
	*q->done_tail = r;
	q->done_tail = &r->next;
	pthread_mutex_unlock(&q->lock);
	eventfd_write(q->efd, 1);
}

static int rbd_queue_poll(struct blk_queue *bq)
{
	struct rbd_queue *q = BQ(bq);
	struct rbd_req *list, *next;
	eventfd_t cnt;
	int n = 0;

	eventfd_read(q->efd, &cnt);
	pthread_mutex_lock(&q->lock);
	list = q->done;
	q->done = NULL;
	q->done_tail = &q->done;
	pthread_mutex_unlock(&q->lock);
	for (struct rbd_req *r = list; r; r = next) {
		next = r->next;
		q->inflight--;
		rbd_aio_release(r->c);
		r->cb(r->arg, r->ret);
		free(r);
		n++;
	}
	return n;
}

static void rbd_queue_destroy(struct blk_queue *bq)
{
	struct rbd_queue *q = BQ(bq);

	if (!q) {
		return;
	}
	/* librbd's operations end within the client's timeouts (vrbd.h). */
	while (q->inflight) {
		struct pollfd pfd = {.fd = q->efd, .events = POLLIN};

		rbd_queue_poll(bq);
		if (q->inflight) {
			poll(&pfd, 1, 100);
		}
	}
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static int rbd_queue_event_fd(struct blk_queue *q)
{
	return BQ(q)->efd;
}

static unsigned rbd_queue_inflight(struct blk_queue *q)
{
	return BQ(q)->inflight;
}

static struct rbd_req *req_new(struct rbd_queue *q, blk_cb cb, void *arg)
{
	struct rbd_req *r = calloc(1, sizeof(*r));

	if (!r) {
		return NULL;
	}
	r->q = q;
	r->cb = cb;
	r->arg = arg;
	if (rbd_aio_create_completion(r, aio_done, &r->c) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

/* Accounts a request librbd took, or frees one it refused (its callback
 * then never runs, as blk-backend.h says). */
static int issued(struct rbd_queue *q, struct rbd_req *r, int ret)
{
	if (ret < 0) {
		rbd_aio_release(r->c);
		free(r);
		return ret;
	}
	q->inflight++;
	return 0;
}

static int rbd_readv(struct blk_queue *bq, const struct iovec *iov, int iovcnt, uint64_t off,
		     blk_cb cb, void *arg)
{
	struct rbd_queue *q = BQ(bq);
	struct rbd_req *r = req_new(q, cb, arg);

	return r ? issued(q, r, rbd_aio_readv(q->rbd, iov, iovcnt, off, r->c)) : -ENOMEM;
}

static int rbd_writev(struct blk_queue *bq, const struct iovec *iov, int iovcnt, uint64_t off,
		      blk_cb cb, void *arg)
{
	struct rbd_queue *q = BQ(bq);
	struct rbd_req *r = req_new(q, cb, arg);

	return r ? issued(q, r, rbd_aio_writev(q->rbd, iov, iovcnt, off, r->c)) : -ENOMEM;
}

static int rbd_flush_req(struct blk_queue *bq, blk_cb cb, void *arg)
{
	struct rbd_queue *q = BQ(bq);
	struct rbd_req *r = req_new(q, cb, arg);

	return r ? issued(q, r, rbd_aio_flush(q->rbd, r->c)) : -ENOMEM;
}

static int rbd_discard_req(struct blk_queue *bq, uint64_t off, uint64_t len, blk_cb cb,
			   void *arg)
{
	struct rbd_queue *q = BQ(bq);
	struct rbd_req *r = req_new(q, cb, arg);

	return r ? issued(q, r, rbd_aio_discard(q->rbd, off, len, r->c)) : -ENOMEM;
}

static int rbd_write_zeroes_req(struct blk_queue *bq, uint64_t off, uint64_t len, bool unmap,
				blk_cb cb, void *arg)
{
	struct rbd_queue *q = BQ(bq);
	struct rbd_req *r = req_new(q, cb, arg);
	/* Without unmap the zeros must keep their space. */
	int zflags = unmap ? 0 : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION;

	return r ? issued(q, r, rbd_aio_write_zeroes(q->rbd, off, len, r->c, zflags, 0))
		 : -ENOMEM;
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
