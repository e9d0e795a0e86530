/* SPDX-License-Identifier: MIT */
/* blk-backend-vdisk.c: the "vdisk" back end of blk-backend.h: a libvdisk
 * image, each queue a vd_ctx of the asynchronous API.  The image handle is
 * not thread-safe; the server's disk lock serialises every call here, and
 * each vd_ctx serves this one image only, so the callbacks vd_ctx_poll()
 * runs touch no other image's state. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk-backend.h"
#include "mirror.h"
#include "vdisk-info.h"
#include "vdisk.h"

struct vdisk_backend {
	struct blk_backend base;
	struct vd_image *img;
	struct mirror *mirror; /* a live migration's, or NULL */
};

struct vdisk_queue {
	struct blk_queue base;
	struct vd_ctx *ctx;
};

static struct vd_image *IMG(struct blk_backend *b)
{
	return ((struct vdisk_backend *)b)->img;
}

static struct vdisk_queue *VQ(struct blk_queue *q)
{
	return (struct vdisk_queue *)q;
}

/* The image a queue serves now: it changes at a live migration's pivot. */
static struct vd_image *QIMG(struct blk_queue *q)
{
	return IMG(q->backend);
}

static struct mirror *MIRROR(struct blk_queue *q)
{
	return ((struct vdisk_backend *)q->backend)->mirror;
}

static bool vdisk_probe(int fd)
{
	char magic[8];

	return pread(fd, magic, sizeof(magic), 0) == sizeof(magic) &&
	       memcmp(magic, "VDISKIMG", sizeof(magic)) == 0;
}

static int vdisk_open(const char *path, const struct blk_open_opts *opts, struct blk_backend **bp,
		      struct errmsg *err)
{
	struct vd_open_opts vopts;
	struct vdisk_backend *b = calloc(1, sizeof(*b));
	int ret;

	if (!b) {
		return -ENOMEM;
	}
	vd_open_opts_init(&vopts);
	/* The guest outlives vdiskd (kill -9, restart, inflight resubmission):
	 * a write it was told is done must survive this process, so a write
	 * that maps a new cluster completes after the commit of its mapping,
	 * unless the disk was added with volatile-map. */
	vopts.flags = (opts->read_only ? 0 : VD_OPEN_RDWR) |
		      (opts->read_only || opts->volatile_map ? 0 : VD_OPEN_DURABLE_MAP) |
		      (opts->buffered ? VD_OPEN_BUFFERED : 0);
	ret = vd_open(path, &vopts, &b->img, err);
	if (ret < 0) {
		free(b);
		return ret;
	}
	b->base.cls = &blk_backend_vdisk;
	*bp = &b->base;
	return 0;
}

static int vdisk_close(struct blk_backend *b)
{
	int ret = vd_close(IMG(b));

	free(b);
	return ret;
}

static uint64_t vdisk_size_bytes(struct blk_backend *b)
{
	return vd_size_bytes(IMG(b));
}

static uint64_t vdisk_allocated_bytes(struct blk_backend *b)
{
	struct vd_info info;

	return vd_get_info(IMG(b), &info) == 0 ? info.allocated_bytes : 0;
}

static int vdisk_resize(struct blk_backend *b, uint64_t size_bytes, struct errmsg *err)
{
	return vd_resize(IMG(b), size_bytes, false, err);
}

static int vdisk_snapshot_create(struct blk_backend *b, const char *name, struct errmsg *err)
{
	return vd_snapshot_create(IMG(b), name, err);
}

static int vdisk_snapshot_delete(struct blk_backend *b, const char *name, struct errmsg *err)
{
	return vd_snapshot_delete(IMG(b), name, err);
}

static int vdisk_describe(struct blk_backend *b, const char *path, struct json_object **objp,
			  struct errmsg *err)
{
	return vdisk_info_json(IMG(b), path, objp, err);
}

static int vdisk_queue_create(struct blk_backend *b, unsigned depth, struct blk_queue **qp)
{
	struct vdisk_queue *q = calloc(1, sizeof(*q));
	int ret;

	if (!q) {
		return -ENOMEM;
	}
	ret = vd_ctx_create(depth, &q->ctx);
	if (ret < 0) {
		free(q);
		return ret;
	}
	q->base.cls = b->cls;
	q->base.backend = b;
	*qp = &q->base;
	return 0;
}

static void vdisk_queue_destroy(struct blk_queue *q)
{
	if (q) {
		vd_ctx_destroy(VQ(q)->ctx);
		free(q);
	}
}

static int vdisk_queue_event_fd(struct blk_queue *q)
{
	return vd_ctx_event_fd(VQ(q)->ctx);
}

static int vdisk_queue_poll(struct blk_queue *q)
{
	return vd_ctx_poll(VQ(q)->ctx, 0);
}

static unsigned vdisk_queue_inflight(struct blk_queue *q)
{
	return vd_ctx_inflight(VQ(q)->ctx);
}

static int vdisk_readv(struct blk_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
		       blk_cb cb, void *arg)
{
	return vd_submit_readv(VQ(q)->ctx, QIMG(q), iov, iovcnt, off, cb, arg);
}

static int vdisk_writev(struct blk_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
			blk_cb cb, void *arg)
{
	if (MIRROR(q)) {
		return mirror_writev(MIRROR(q), VQ(q)->ctx, iov, iovcnt, off, cb, arg);
	}
	return vd_submit_writev(VQ(q)->ctx, QIMG(q), iov, iovcnt, off, cb, arg);
}

static int vdisk_flush(struct blk_queue *q, blk_cb cb, void *arg)
{
	/* With a mirror, the source carries the guarantee until the pivot,
	 * which flushes the destination. */
	return vd_submit_flush(VQ(q)->ctx, QIMG(q), cb, arg);
}

static int vdisk_discard(struct blk_queue *q, uint64_t off, uint64_t len, blk_cb cb, void *arg)
{
	if (MIRROR(q)) {
		return mirror_discard(MIRROR(q), VQ(q)->ctx, off, len, cb, arg);
	}
	return vd_submit_discard(VQ(q)->ctx, QIMG(q), off, len, cb, arg);
}

/* libvdisk frees whole clusters inside a zeroed range either way; without
 * 'unmap' the guest only loses the promise that the space stays reserved,
 * which a thin image never made. */
static int vdisk_write_zeroes(struct blk_queue *q, uint64_t off, uint64_t len, bool unmap,
			      blk_cb cb, void *arg)
{
	if (MIRROR(q)) {
		return mirror_write_zeroes(MIRROR(q), VQ(q)->ctx, off, len, cb, arg);
	}
	return vd_submit_write_zeroes(VQ(q)->ctx, QIMG(q), off, len, cb, arg);
}

const struct blk_backend_class blk_backend_vdisk = {
	.name = "vdisk",
	.probe = vdisk_probe,
	.open = vdisk_open,
	.close = vdisk_close,
	.size_bytes = vdisk_size_bytes,
	.allocated_bytes = vdisk_allocated_bytes,
	.resize = vdisk_resize,
	.snapshot_create = vdisk_snapshot_create,
	.snapshot_delete = vdisk_snapshot_delete,
	.describe = vdisk_describe,
	.queue_create = vdisk_queue_create,
	.queue_destroy = vdisk_queue_destroy,
	.queue_event_fd = vdisk_queue_event_fd,
	.queue_poll = vdisk_queue_poll,
	.queue_inflight = vdisk_queue_inflight,
	.readv = vdisk_readv,
	.writev = vdisk_writev,
	.flush = vdisk_flush,
	.discard = vdisk_discard,
	.write_zeroes = vdisk_write_zeroes,
};

struct vd_image *blk_vdisk_image(struct blk_backend *b)
{
	return b->cls == &blk_backend_vdisk ? IMG(b) : NULL;
}

void blk_vdisk_set_mirror(struct blk_backend *b, struct mirror *m)
{
	((struct vdisk_backend *)b)->mirror = m;
}

struct vd_image *blk_vdisk_swap(struct blk_backend *b, struct vd_image *img)
{
	struct vdisk_backend *vb = (struct vdisk_backend *)b;
	struct vd_image *old = vb->img;

	vb->img = img;
	return old;
}
