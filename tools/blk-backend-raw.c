/* SPDX-License-Identifier: MIT */
/* blk-backend-raw.c: the "raw" back end of blk-backend.h: a plain file (or
 * block device), guest sector N at byte N*512, each queue its own io_uring.
 * O_DIRECT unless the cache mode is "writeback"; a guest buffer O_DIRECT
 * cannot take (not 512-byte aligned) goes through a second, buffered
 * descriptor, which the kernel keeps coherent with direct I/O.  Locked like
 * a vdisk image (the same open file description lock bytes), so vdisk and
 * vdiskd see each other. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include "blk-backend.h"

/* The lock bytes of vdisk/image.c: one "in use" byte (write lock: a
 * writer, read lock: readers) and one byte per holder's pid. */
#define LOCK_USE_BYTE (1ll << 50)
#define LOCK_PID_BASE ((1ll << 50) + (1ll << 32))
#define LOCK_PID_SPAN (1ll << 23)

struct raw_backend {
	struct blk_backend base;
	int fd;          /* O_DIRECT unless buffered */
	int buffered_fd; /* for unaligned guest buffers */
	bool block_device;
	uint64_t size_bytes;
	char *path;
};

struct raw_queue {
	struct blk_queue base;
	struct io_uring ring;
	int efd;
	unsigned inflight;
};

struct raw_req {
	blk_cb cb;
	void *arg;
};

static struct raw_backend *RB(struct blk_backend *b)
{
	return (struct raw_backend *)b;
}

static struct raw_queue *RQ(struct blk_queue *q)
{
	return (struct raw_queue *)q;
}

static int ofd_lock(int fd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

static int lock_file(struct raw_backend *b, bool writer, struct errmsg *err)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_PID_BASE,
			   .l_len = LOCK_PID_SPAN};
	int ret = ofd_lock(b->fd, writer ? F_WRLCK : F_RDLCK, LOCK_USE_BYTE, 1);

	if (ret == 0) {
		ret = ofd_lock(b->fd, F_RDLCK, LOCK_PID_BASE + getpid(), 1);
	}
	if (ret == -EAGAIN || ret == -EACCES) {
		if (fcntl(b->fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
			errmsg_set(err, "%s: in use by process %ld", b->path,
				   (long)(fl.l_start - LOCK_PID_BASE));
		} else {
			errmsg_set(err, "%s: in use by another process", b->path);
		}
		return -EBUSY;
	}
	if (ret < 0) {
		errmsg_set(err, "%s: cannot lock: %s", b->path, strerror(-ret));
	}
	return ret;
}

static int raw_size(struct raw_backend *b, struct errmsg *err)
{
	struct stat st;
	uint64_t bytes;

	if (fstat(b->fd, &st) != 0) {
		errmsg_set(err, "%s: %s", b->path, strerror(errno));
		return -errno;
	}
	b->block_device = S_ISBLK(st.st_mode);
	if (b->block_device) {
		if (ioctl(b->fd, BLKGETSIZE64, &bytes) != 0) {
			errmsg_set(err, "%s: cannot read the device size: %s", b->path,
				   strerror(errno));
			return -errno;
		}
	} else {
		bytes = (uint64_t)st.st_size;
	}
	/* A tail shorter than a sector cannot be addressed by the guest. */
	b->size_bytes = bytes / 512 * 512;
	return 0;
}

static int raw_open(const char *path, const struct blk_open_opts *opts, struct blk_backend **bp,
		    struct errmsg *err)
{
	int oflags = O_CLOEXEC | (opts->read_only ? O_RDONLY : O_RDWR);
	struct raw_backend *b = calloc(1, sizeof(*b));
	int ret;

	if (!b || !(b->path = strdup(path))) {
		free(b);
		return -ENOMEM;
	}
	b->buffered_fd = open(path, oflags);
	if (b->buffered_fd < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot open: %s", path, strerror(errno));
		goto out_free;
	}
	b->fd = opts->buffered ? dup(b->buffered_fd) : open(path, oflags | O_DIRECT);
	if (b->fd < 0 && errno == EINVAL) {
		b->fd = dup(b->buffered_fd); /* a file system without O_DIRECT */
	}
	if (b->fd < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot open: %s", path, strerror(errno));
		goto out_close;
	}
	ret = lock_file(b, !opts->read_only, err);
	if (ret == 0) {
		ret = raw_size(b, err);
	}
	if (ret < 0) {
		goto out_close2;
	}
	b->base.cls = &blk_backend_raw;
	*bp = &b->base;
	return 0;
out_close2:
	close(b->fd);
out_close:
	close(b->buffered_fd);
out_free:
	free(b->path);
	free(b);
	return ret;
}

static int raw_close(struct blk_backend *bb)
{
	struct raw_backend *b = RB(bb);
	int ret = fdatasync(b->fd) == 0 ? 0 : -errno;

	close(b->fd);
	close(b->buffered_fd);
	free(b->path);
	free(b);
	return ret == -EINVAL ? 0 : ret;
}

static uint64_t raw_size_bytes(struct blk_backend *b)
{
	return RB(b)->size_bytes;
}

static uint64_t raw_allocated_bytes(struct blk_backend *b)
{
	struct stat st;

	return fstat(RB(b)->fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static int raw_resize(struct blk_backend *bb, uint64_t size_bytes, struct errmsg *err)
{
	struct raw_backend *b = RB(bb);

	if (b->block_device) {
		errmsg_set(err, "%s: a block device cannot be resized here", b->path);
		return -ENOTSUP;
	}
	if (size_bytes < b->size_bytes) {
		errmsg_set(err, "%s: shrinking a served disk is refused", b->path);
		return -EINVAL;
	}
	if (ftruncate(b->fd, (off_t)size_bytes) != 0) {
		errmsg_set(err, "%s: cannot resize: %s", b->path, strerror(errno));
		return -errno;
	}
	b->size_bytes = size_bytes;
	return 0;
}

static int raw_queue_create(struct blk_backend *b, unsigned depth, struct blk_queue **qp)
{
	struct raw_queue *q = calloc(1, sizeof(*q));
	int ret;

	if (!q) {
		return -ENOMEM;
	}
	ret = io_uring_queue_init(depth ? depth : 128, &q->ring, 0);
	if (ret < 0) {
		goto out_free;
	}
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		ret = -errno;
		goto out_ring;
	}
	ret = io_uring_register_eventfd(&q->ring, q->efd);
	if (ret < 0) {
		goto out_efd;
	}
	q->base.cls = b->cls;
	q->base.backend = b;
	*qp = &q->base;
	return 0;
out_efd:
	close(q->efd);
out_ring:
	io_uring_queue_exit(&q->ring);
out_free:
	free(q);
	return ret;
}

static int reap(struct raw_queue *q)
{
	struct io_uring_cqe *cqe;
	int n = 0;

	while (io_uring_peek_cqe(&q->ring, &cqe) == 0) {
		struct raw_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&q->ring, cqe);
		q->inflight--;
		r->cb(r->arg, res > 0 ? 0 : res);
		free(r);
		n++;
	}
	return n;
}

static void raw_queue_destroy(struct blk_queue *bq)
{
	struct raw_queue *q = RQ(bq);
	struct io_uring_cqe *cqe;

	if (!q) {
		return;
	}
	io_uring_submit(&q->ring);
	while (q->inflight && io_uring_wait_cqe(&q->ring, &cqe) == 0) {
		reap(q);
	}
	io_uring_queue_exit(&q->ring);
	close(q->efd);
	free(q);
}

static int raw_queue_event_fd(struct blk_queue *q)
{
	return RQ(q)->efd;
}

static int raw_queue_poll(struct blk_queue *bq)
{
	struct raw_queue *q = RQ(bq);
	uint64_t cnt;
	int ret;

	if (read(q->efd, &cnt, sizeof(cnt)) < 0) {
		/* Nothing signalled; the ring is looked at anyway. */
	}
	if (io_uring_sq_ready(&q->ring)) {
		ret = io_uring_submit(&q->ring);
		if (ret < 0) {
			return ret;
		}
	}
	return reap(q);
}

static unsigned raw_queue_inflight(struct blk_queue *q)
{
	return RQ(q)->inflight;
}

/* An SQE with its request, or NULL (-EAGAIN: poll and retry). */
static struct io_uring_sqe *get_sqe(struct raw_queue *q, blk_cb cb, void *arg)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct raw_req *r;

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
	if (!sqe || !(r = malloc(sizeof(*r)))) {
		return NULL;
	}
	r->cb = cb;
	r->arg = arg;
	io_uring_sqe_set_data(sqe, r);
	q->inflight++;
	return sqe;
}

static bool iov_direct_ok(const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & 511) {
			return false;
		}
	}
	return true;
}

static int raw_rw(struct blk_queue *bq, bool write, const struct iovec *iov, int iovcnt,
		  uint64_t off, blk_cb cb, void *arg)
{
	struct raw_queue *q = RQ(bq);
	struct raw_backend *b = RB(bq->backend);
	int fd = iov_direct_ok(iov, iovcnt) ? b->fd : b->buffered_fd;
	struct io_uring_sqe *sqe = get_sqe(q, cb, arg);

	if (!sqe) {
		return -EAGAIN;
	}
	if (write) {
		io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, off);
	} else {
		io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, off);
	}
	return 0;
}

static int raw_readv(struct blk_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
		     blk_cb cb, void *arg)
{
	return raw_rw(q, false, iov, iovcnt, off, cb, arg);
}

static int raw_writev(struct blk_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
		      blk_cb cb, void *arg)
{
	return raw_rw(q, true, iov, iovcnt, off, cb, arg);
}

static int raw_flush(struct blk_queue *bq, blk_cb cb, void *arg)
{
	struct io_uring_sqe *sqe = get_sqe(RQ(bq), cb, arg);

	if (!sqe) {
		return -EAGAIN;
	}
	io_uring_prep_fsync(sqe, RB(bq->backend)->fd, IORING_FSYNC_DATASYNC);
	return 0;
}

static int raw_fallocate(struct blk_queue *bq, int mode, uint64_t off, uint64_t len, blk_cb cb,
			 void *arg)
{
	struct io_uring_sqe *sqe = get_sqe(RQ(bq), cb, arg);

	if (!sqe) {
		return -EAGAIN;
	}
	io_uring_prep_fallocate(sqe, RB(bq->backend)->fd, mode, off, len);
	return 0;
}

static int raw_discard(struct blk_queue *q, uint64_t off, uint64_t len, blk_cb cb, void *arg)
{
	return raw_fallocate(q, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len, cb, arg);
}

static int raw_write_zeroes(struct blk_queue *q, uint64_t off, uint64_t len, bool unmap,
			    blk_cb cb, void *arg)
{
	int mode = unmap ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE;

	return raw_fallocate(q, mode | FALLOC_FL_KEEP_SIZE, off, len, cb, arg);
}

const struct blk_backend_class blk_backend_raw = {
	.name = "raw",
	.open = raw_open,
	.close = raw_close,
	.size_bytes = raw_size_bytes,
	.allocated_bytes = raw_allocated_bytes,
	.resize = raw_resize,
	.queue_create = raw_queue_create,
	.queue_destroy = raw_queue_destroy,
	.queue_event_fd = raw_queue_event_fd,
	.queue_poll = raw_queue_poll,
	.queue_inflight = raw_queue_inflight,
	.readv = raw_readv,
	.writev = raw_writev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
};
