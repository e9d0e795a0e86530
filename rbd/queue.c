/* SPDX-License-Identifier: MIT */
/* queue.c: librbd's asynchronous calls with their completions brought to
 * the caller's thread (vrbd.h, "Asynchronous I/O").  librbd calls back on
 * its own threads; there a completion takes the queue's lock only to join
 * the done list, and bumps the eventfd the caller sleeps on, so no code of
 * the caller ever runs on librbd's threads and there is no thread per
 * request. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vrbd.h"

struct vrbd_req {
	struct vrbd_queue *q;
	vrbd_cb cb;
	void *arg;
	rbd_completion_t c;
	int ret;
	struct vrbd_req *next;
};

struct vrbd_queue {
	rbd_image_t rbd;
	int efd;
	unsigned inflight;	/* the caller's thread only */
	pthread_mutex_t lock;	/* 'done' (librbd's threads add to it) */
	struct vrbd_req *done, **done_tail;
};

int vrbd_queue_create(struct vrbd_image *img, struct vrbd_queue **qp)
{
	struct vrbd_queue *q = calloc(1, sizeof(*q));

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
	q->rbd = img->rbd;
	*qp = q;
	return 0;
}

/* On a librbd thread. */
static void aio_done(rbd_completion_t c, void *arg)
{
	struct vrbd_req *r = arg;
	struct vrbd_queue *q = r->q;
	ssize_t ret = rbd_aio_get_return_value(c);

	r->ret = ret < 0 ? (int)ret : 0;
	r->next = NULL;
	pthread_mutex_lock(&q->lock);
	*q->done_tail = r;
	q->done_tail = &r->next;
	pthread_mutex_unlock(&q->lock);
	eventfd_write(q->efd, 1);
}

int vrbd_queue_poll(struct vrbd_queue *q, int timeout_ms)
{
	struct pollfd pfd = {.fd = q->efd, .events = POLLIN};
	struct vrbd_req *list, *next;
	eventfd_t cnt;
	int n = 0;

	if (timeout_ms != 0 && q->inflight > 0) {
		pthread_mutex_lock(&q->lock);
		list = q->done;
		pthread_mutex_unlock(&q->lock);
		if (!list) {
			poll(&pfd, 1, timeout_ms);
		}
	}
	eventfd_read(q->efd, &cnt);
	pthread_mutex_lock(&q->lock);
	list = q->done;
	q->done = NULL;
	q->done_tail = &q->done;
	pthread_mutex_unlock(&q->lock);
	for (struct vrbd_req *r = list; r; r = next) {
		next = r->next;
		q->inflight--;
		rbd_aio_release(r->c);
		r->cb(r->arg, r->ret);
		free(r);
		n++;
	}
	return n;
}

void vrbd_queue_destroy(struct vrbd_queue *q)
{
	if (!q) {
		return;
	}
	while (q->inflight) {
		vrbd_queue_poll(q, 100);
	}
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

int vrbd_queue_fd(const struct vrbd_queue *q)
{
	return q->efd;
}

unsigned vrbd_queue_inflight(const struct vrbd_queue *q)
{
	return q->inflight;
}

static struct vrbd_req *req_new(struct vrbd_queue *q, vrbd_cb cb, void *arg)
{
	struct vrbd_req *r = calloc(1, sizeof(*r));

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

/* Counts a request librbd took, or frees one it refused. */
static int issued(struct vrbd_queue *q, struct vrbd_req *r, int ret)
{
	if (ret < 0) {
		rbd_aio_release(r->c);
		free(r);
		return ret;
	}
	q->inflight++;
	return 0;
}

int vrbd_readv(struct vrbd_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
	       vrbd_cb cb, void *arg)
{
	struct vrbd_req *r = req_new(q, cb, arg);

	return r ? issued(q, r, rbd_aio_readv(q->rbd, iov, iovcnt, off, r->c)) : -ENOMEM;
}

int vrbd_writev(struct vrbd_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
		vrbd_cb cb, void *arg)
{
	struct vrbd_req *r = req_new(q, cb, arg);

	return r ? issued(q, r, rbd_aio_writev(q->rbd, iov, iovcnt, off, r->c)) : -ENOMEM;
}

int vrbd_flush(struct vrbd_queue *q, vrbd_cb cb, void *arg)
{
	struct vrbd_req *r = req_new(q, cb, arg);

	return r ? issued(q, r, rbd_aio_flush(q->rbd, r->c)) : -ENOMEM;
}

int vrbd_discard(struct vrbd_queue *q, uint64_t off, uint64_t len, vrbd_cb cb, void *arg)
{
	struct vrbd_req *r = req_new(q, cb, arg);

	return r ? issued(q, r, rbd_aio_discard(q->rbd, off, len, r->c)) : -ENOMEM;
}

int vrbd_write_zeroes(struct vrbd_queue *q, uint64_t off, uint64_t len, bool unmap, vrbd_cb cb,
		      void *arg)
{
	struct vrbd_req *r = req_new(q, cb, arg);
	/* Without unmap the zeros must keep their space. */
	int zflags = unmap ? 0 : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION;

	return r ? issued(q, r, rbd_aio_write_zeroes(q->rbd, off, len, r->c, zflags, 0))
		 : -ENOMEM;
}
