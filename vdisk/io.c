/* SPDX-License-Identifier: MIT */
/* io.c: guest I/O.  A request is split at cluster boundaries, mapped through
 * the L1/L2 tables (allocating on write), and the host-contiguous runs go to
 * io_uring as one SQE each; unallocated ranges of reads are zero-filled in
 * place.  Copy-on-write of a shared cluster is done synchronously, merged
 * with the guest's data, before the L2 entry points to the copy (rule 6);
 * it is rare (first write after a snapshot) and keeps ordering simple.  The
 * synchronous calls at the end wrap the asynchronous ones. */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

struct vd_req;

struct vd_sub {
	struct vd_req *req;
	struct iovec *iov;
	int iovcnt;
	size_t len;
	bool is_read;
	int fd;
	uint64_t host_off;
};

struct vd_req {
	struct vd_ctx *ctx;
	struct vd_image *img;
	vd_cb cb;
	void *arg;
	int ret;
	unsigned pending;               /* SQEs not yet completed */
	bool is_read;
	uint8_t *bounce;                /* aligned copy of misaligned buffers */
	const struct iovec *user_iov;
	int user_iovcnt;
	size_t len;
	struct vd_req *next;            /* on the done list */
};

struct vd_ctx {
	struct io_uring ring;
	unsigned depth;
	unsigned inflight;
	bool polling;           /* inside vd_ctx_poll */
	int efd;
	struct vd_req *done_head, *done_tail;
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

void vd_ctx_destroy(struct vd_ctx *ctx)
{
	if (!ctx) {
		return;
	}
	while (ctx->inflight) {
		if (vd_ctx_poll(ctx, 1) < 0) {
			break;
		}
	}
	io_uring_queue_exit(&ctx->ring);
	close(ctx->efd);
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

static void done_push(struct vd_req *req)
{
	struct vd_ctx *ctx = req->ctx;
	uint64_t one = 1;

	req->next = NULL;
	if (ctx->done_tail) {
		ctx->done_tail->next = req;
	} else {
		ctx->done_head = req;
	}
	ctx->done_tail = req;
	/* Requests completed outside vd_ctx_poll (at submission) must wake an
	 * event loop waiting on the eventfd; inside it, the loop is running
	 * and a write per completion would cost a syscall each. */
	if (!ctx->polling && write(ctx->efd, &one, sizeof(one)) < 0) {
		/* The counter is saturated: a wakeup is pending anyway. */
	}
}

static void req_finish(struct vd_req *req)
{
	struct vd_ctx *ctx = req->ctx;

	if (req->bounce && req->is_read && req->ret == 0) {
		iov_copy(req->bounce, req->user_iov, req->user_iovcnt, 0, req->len, true);
	}
	free(req->bounce);
	ctx->inflight--;
	req->cb(req->arg, req->ret);
	free(req);
}

/* A short write to a regular file means the kernel stopped where the
 * next byte would fail (ENOSPC, EDQUOT, EFBIG): write the rest, so the
 * request ends with that error rather than a made-up EIO, and succeeds if
 * the space came back.  Returns 0 when the rest was queued. */
static int resubmit_rest(struct vd_sub *sub, size_t done)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&sub->req->ctx->ring);
	int i = 0;

	if (!sqe) {
		return -EAGAIN;
	}
	sub->host_off += done;
	sub->len -= done;
	while (done >= sub->iov[i].iov_len) {
		done -= sub->iov[i++].iov_len;
	}
	sub->iov[i].iov_base = (char *)sub->iov[i].iov_base + done;
	sub->iov[i].iov_len -= done;
	memmove(sub->iov, sub->iov + i, sizeof(*sub->iov) * (size_t)(sub->iovcnt - i));
	sub->iovcnt -= i;
	io_uring_prep_writev(sqe, sub->fd, sub->iov, sub->iovcnt, sub->host_off);
	io_uring_sqe_set_data(sqe, sub);
	return 0;
}

static void sub_complete(struct vd_sub *sub, int res)
{
	struct vd_req *req = sub->req;

	if (res > 0 && (size_t)res < sub->len && !sub->is_read && req->ret == 0 &&
	    resubmit_rest(sub, (size_t)res) == 0) {
		return;
	}
	if (res < 0) {
		if (req->ret == 0) {
			req->ret = res;
		}
	} else if ((size_t)res < sub->len) {
		if (sub->is_read) {
			/* Past the end of the file: sparse, reads as zeros. */
			iov_memset(sub->iov, sub->iovcnt, res, sub->len - res);
		} else if (req->ret == 0) {
			req->ret = -EIO;
		}
	}
	free(sub->iov);
	free(sub);
	if (--req->pending == 0) {
		done_push(req);
	}
}

/* Queues one host I/O of 'len' bytes of the request's buffer at 'skip'. */
static int queue_io(struct vd_req *req, struct vd_image *img, const struct iovec *iov,
		    int iovcnt, size_t skip, size_t len, uint64_t host_off)
{
	struct vd_sub *sub = calloc(1, sizeof(*sub));
	struct io_uring_sqe *sqe;
	int ret;

	if (!sub) {
		return -ENOMEM;
	}
	ret = iov_slice(iov, iovcnt, skip, len, &sub->iov, &sub->iovcnt);
	if (ret < 0) {
		free(sub);
		return ret;
	}
	sub->req = req;
	sub->len = len;
	sub->is_read = req->is_read;
	sub->fd = img->file.fd;
	sub->host_off = host_off;
	req->pending++;
	if (img->file.ops) {
		/* Test hook: the recorded file is synchronous. */
		size_t done = 0;

		ret = 0;
		for (int i = 0; i < sub->iovcnt && ret == 0; i++) {
			ret = req->is_read ? vd_file_pread(&img->file, sub->iov[i].iov_base,
							   sub->iov[i].iov_len, host_off + done)
					   : vd_file_pwrite(&img->file, sub->iov[i].iov_base,
							    sub->iov[i].iov_len, host_off + done);
			done += sub->iov[i].iov_len;
		}
		sub_complete(sub, ret < 0 ? ret : (int)len);
		return 0;
	}
	sqe = io_uring_get_sqe(&req->ctx->ring);
	if (!sqe) {
		io_uring_submit(&req->ctx->ring);
		sqe = io_uring_get_sqe(&req->ctx->ring);
	}
	if (!sqe) {
		req->pending--;
		free(sub->iov);
		free(sub);
		return -EAGAIN;
	}
	if (sub->iovcnt == 1 && req->is_read) {
		io_uring_prep_read(sqe, img->file.fd, sub->iov[0].iov_base, len, host_off);
	} else if (sub->iovcnt == 1) {
		io_uring_prep_write(sqe, img->file.fd, sub->iov[0].iov_base, len, host_off);
	} else if (req->is_read) {
		io_uring_prep_readv(sqe, img->file.fd, sub->iov, sub->iovcnt, host_off);
	} else {
		io_uring_prep_writev(sqe, img->file.fd, sub->iov, sub->iovcnt, host_off);
	}
	io_uring_sqe_set_data(sqe, sub);
	return 0;
}

int vd_check_l2_entry(struct vd_image *img, uint64_t e)
{
	uint64_t off = e & VD_L2_OFFSET_MASK;

	if ((e & VD_L2_RESERVED_MASK) || ((e & VD_L2_ZERO) && off) ||
	    (off & (img->cluster_bytes - 1)) ||
	    off + img->cluster_bytes > vd_cluster_off(img, img->end_clusters > 0
							      ? img->end_clusters
							      : (img->file_bytes +
								 img->cluster_bytes - 1) >>
									img->cluster_bits)) {
		return -EUCLEAN;
	}
	return 0;
}

/* Copies the L2 table at L1 index 'i' shared with a snapshot, so the active
 * disk can change it: the copy's data clusters gain a reference. */
static int l2_copy_up(struct vd_image *img, uint32_t i, struct vd_mblock *old,
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
		uint64_t e = vd_get64(old, j), off = e & VD_L2_OFFSET_MASK;

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
	if ((e & VD_L1_RESERVED_MASK) || (off & (img->cluster_bytes - 1)) ||
	    off + img->cluster_bytes > (img->writable ? vd_cluster_off(img, img->end_clusters)
						       : img->file_bytes + img->cluster_bytes)) {
		return off || (e & VD_L1_RESERVED_MASK) ? -EUCLEAN : 0;
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

		ret = l2_copy_up(img, i, l2, &copy);
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

/* Reads the guest cluster at 'goff' (cluster aligned), whose L2 entry is
 * 'e', as the guest sees it now: data, zeros, or the backing chain's. */
static int read_cluster_now(struct vd_image *img, uint64_t e, uint64_t goff, void *buf)
{
	uint64_t off = e & VD_L2_OFFSET_MASK;

	if (off) {
		return vd_file_pread(&img->file, buf, img->cluster_bytes, off);
	}
	memset(buf, 0, img->cluster_bytes);
	if (e == 0 && img->backing_name) {
		return img->backing ? vd_backing_read(img->backing, goff, buf, img->cluster_bytes)
				    : -ENOLINK;
	}
	return 0;
}

/* Rule 6: a cluster that will be only partly written and must keep other
 * contents (a shared cluster being copied) is written whole, merged with
 * the guest's data, before the L2 entry points to it. */
static int write_merged(struct vd_req *req, const struct iovec *iov, int iovcnt, size_t skip,
			uint64_t e, uint64_t goff, size_t n, uint64_t new_c)
{
	uint32_t in_off = goff & (req->img->cluster_bytes - 1);
	struct vd_image *img = req->img;
	uint8_t *buf = vd_aligned_alloc(img->cluster_bytes);
	int ret;

	if (!buf) {
		return -ENOMEM;
	}
	ret = read_cluster_now(img, e, goff - in_off, buf);
	if (ret == 0) {
		iov_copy(buf + in_off, iov, iovcnt, skip, n, false);
		ret = vd_file_pwrite(&img->file, buf, img->cluster_bytes,
				     vd_cluster_off(img, new_c));
	}
	free(buf);
	return ret;
}

/* Maps one cluster-bounded piece of a write, allocating as needed.  Sets
 * '*hostp' to where the guest data goes, or 0 when it was already written
 * (merged into a copy). */
static int map_for_write(struct vd_req *req, const struct iovec *iov, int iovcnt, size_t skip,
			 uint64_t goff, size_t n, uint64_t *hostp)
{
	struct vd_image *img = req->img;
	uint64_t g = vd_off_cluster(img, goff), e, off, c;
	uint32_t idx, in_off = goff & (img->cluster_bytes - 1);
	struct vd_mblock *l2;
	uint16_t ref = 0;
	int ret = vd_l2_lookup(img, g, true, &l2, &idx);

	if (ret < 0) {
		return ret;
	}
	e = vd_get64(l2, idx);
	off = e & VD_L2_OFFSET_MASK;
	ret = vd_check_l2_entry(img, e);
	if (ret == 0 && off) {
		ret = vd_refcount_get(img, vd_off_cluster(img, off), &ref);
	}
	if (ret < 0 || (off && ref == 1)) {
		*hostp = off + in_off;
		goto out;
	}
	ret = vd_cluster_alloc(img, &c);
	if (ret < 0) {
		goto out;
	}
	*hostp = vd_cluster_off(img, c) + in_off;
	/* Rule 6: a partial write keeps the rest of the cluster as the guest
	 * saw it: shared data, or the backing chain's. */
	if ((off || (e == 0 && img->backing_name)) && n < img->cluster_bytes) {
		ret = write_merged(req, iov, iovcnt, skip, e, goff, n, c);
		*hostp = 0;
	}
	if (ret == 0 && off) {
		ret = vd_cluster_unref(img, vd_off_cluster(img, off));
	}
	if (ret == 0) {
		/* A fresh cluster reads as zeros (rule 6): no fill needed. */
		vd_set64(img, l2, idx, vd_cluster_off(img, c));
	}
out:
	vd_mblock_put(l2);
	return ret;
}

/* Maps a piece of a read: '*hostp' 0 means it reads as zeros, or from the
 * backing chain when '*backp' is set. */
static int map_for_read(struct vd_image *img, uint64_t goff, uint64_t *hostp, bool *backp)
{
	uint64_t g = vd_off_cluster(img, goff), e;
	struct vd_mblock *l2;
	uint32_t idx;
	int ret = vd_l2_lookup(img, g, false, &l2, &idx);

	*hostp = 0;
	*backp = img->backing_name != NULL;
	if (ret < 0 || !l2) {
		return ret;
	}
	e = vd_get64(l2, idx);
	*backp = e == 0 && img->backing_name;
	vd_mblock_put(l2);
	ret = vd_check_l2_entry(img, e);
	if (ret == 0 && (e & VD_L2_OFFSET_MASK)) {
		*hostp = (e & VD_L2_OFFSET_MASK) + (goff & (img->cluster_bytes - 1));
	}
	return ret;
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

static struct vd_req *req_new(struct vd_ctx *ctx, struct vd_image *img, vd_cb cb, void *arg)
{
	struct vd_req *req = calloc(1, sizeof(*req));

	if (req) {
		req->ctx = ctx;
		req->img = img;
		req->cb = cb;
		req->arg = arg;
	}
	return req;
}

/* A run of pieces contiguous both in the guest buffer and in the file. */
struct run {
	uint64_t host;
	size_t skip, len;
};

/* Adds a piece at 'host' (0: none, which ends the run) of 'n' buffer bytes
 * at 'skip'; queues the run when the piece does not continue it. */
static int run_add(struct vd_req *req, struct vd_image *img, const struct iovec *iov,
		   int iovcnt, struct run *r, uint64_t host, size_t skip, size_t n)
{
	int ret = 0;

	if (r->len && (!host || host != r->host + r->len)) {
		ret = queue_io(req, img, iov, iovcnt, r->skip, r->len, r->host);
		r->len = 0;
	}
	if (host) {
		if (!r->len) {
			r->host = host;
			r->skip = skip;
		}
		r->len += n;
	}
	return ret;
}

static int run_end(struct vd_req *req, struct vd_image *img, const struct iovec *iov,
		   int iovcnt, struct run *r, int ret)
{
	if (ret == 0 && r->len) {
		ret = queue_io(req, img, iov, iovcnt, r->skip, r->len, r->host);
	}
	return ret;
}

/* Reads guest bytes [off, off+len) of 'img' into the request's buffer at
 * 'skip', cluster by cluster, merging host-contiguous pieces into one I/O
 * and falling through to the backing chain (which may be shorter: zeros
 * beyond its end) for what 'img' never wrote. */
static int read_range(struct vd_req *req, struct vd_image *img, const struct iovec *iov,
		      int iovcnt, size_t skip, uint64_t off, size_t len)
{
	struct run run = {0};
	size_t done = 0;
	int ret = 0;

	while (done < len && ret == 0) {
		uint64_t goff = off + done, host;
		size_t n = img->cluster_bytes - (goff & (img->cluster_bytes - 1));
		bool back;

		if (goff >= img->hdr.size_bytes) {
			iov_memset(iov, iovcnt, skip + done, len - done);
			break;
		}
		n = n < len - done ? n : len - done;
		n = n < img->hdr.size_bytes - goff ? n : img->hdr.size_bytes - goff;
		ret = map_for_read(img, goff, &host, &back);
		if (ret == 0) {
			ret = run_add(req, img, iov, iovcnt, &run, host, skip + done, n);
		}
		if (ret == 0 && !host && back) {
			/* VD_OPEN_NO_BACKING: no data to give, and zeros would lie. */
			ret = img->backing ? read_range(req, img->backing, iov, iovcnt, skip + done,
							goff, n)
					   : -ENOLINK;
		} else if (ret == 0 && !host) {
			iov_memset(iov, iovcnt, skip + done, n);
		}
		done += n;
	}
	return run_end(req, img, iov, iovcnt, &run, ret);
}

/* Walks a write cluster by cluster, allocating, and merges host-contiguous
 * pieces into one I/O.  On error the pieces already queued still complete;
 * the error is the request's result. */
static int write_range(struct vd_req *req, const struct iovec *iov, int iovcnt, uint64_t off,
		       size_t len)
{
	struct vd_image *img = req->img;
	struct run run = {0};
	size_t skip = 0;
	int ret = 0;

	while (skip < len && ret == 0) {
		uint64_t goff = off + skip, host;
		size_t n = img->cluster_bytes - (goff & (img->cluster_bytes - 1));

		n = n < len - skip ? n : len - skip;
		ret = map_for_write(req, iov, iovcnt, skip, goff, n, &host);
		if (ret == 0) {
			ret = run_add(req, img, iov, iovcnt, &run, host, skip, n);
		}
		skip += n;
	}
	return run_end(req, img, iov, iovcnt, &run, ret);
}

static int check_range(struct vd_image *img, uint64_t off, uint64_t len)
{
	if (off % VD_SECTOR_BYTES || len % VD_SECTOR_BYTES || off > img->hdr.size_bytes ||
	    len > img->hdr.size_bytes - off) {
		return -EINVAL;
	}
	return 0;
}

static int submit_rw(struct vd_ctx *ctx, struct vd_image *img, const struct iovec *iov,
		     int iovcnt, uint64_t off, vd_cb cb, void *arg, bool is_read)
{
	struct vd_req *req;
	struct iovec bounce_iov;
	size_t len;
	bool aligned = iov_aligned(iov, iovcnt, img->file.align_bytes, &len);
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
	req = req_new(ctx, img, cb, arg);
	if (!req) {
		return -ENOMEM;
	}
	req->is_read = is_read;
	req->len = len;
	if (!aligned) {
		req->bounce = vd_aligned_alloc(len);
		if (!req->bounce) {
			free(req);
			return -ENOMEM;
		}
		req->user_iov = iov;
		req->user_iovcnt = iovcnt;
		if (!is_read) {
			iov_copy(req->bounce, iov, iovcnt, 0, len, false);
		}
		bounce_iov = (struct iovec){.iov_base = req->bounce, .iov_len = len};
		iov = &bounce_iov;
		iovcnt = 1;
	}
	ctx->inflight++;
	req->pending = 1; /* held until the walk is done */
	req->ret = is_read ? read_range(req, img, iov, iovcnt, 0, off, len)
			   : write_range(req, iov, iovcnt, off, len);
	ret = vd_meta_boundary(img);
	if (req->ret == 0 && ret < 0) {
		req->ret = ret;
	}
	if (--req->pending == 0) {
		done_push(req);
	}
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

static void flush_cqe(struct vd_req *req, int res)
{
	if (res < 0) {
		req->ret = res;
	}
	if (--req->pending == 0) {
		done_push(req);
	}
}

int vd_submit_flush(struct vd_ctx *ctx, struct vd_image *img, vd_cb cb, void *arg)
{
	struct io_uring_sqe *sqe;
	struct vd_req *req;

	if (ctx->inflight >= ctx->depth) {
		return -EAGAIN;
	}
	req = req_new(ctx, img, cb, arg);
	if (!req) {
		return -ENOMEM;
	}
	ctx->inflight++;
	if (!img->writable) {
		done_push(req);
		return 0;
	}
	if (img->meta_changed || img->file.ops) {
		/* The commit flushes the data too (rules 1 and 2). */
		req->ret = img->meta_changed ? vd_journal_commit(img) : vd_file_sync(&img->file);
		done_push(req);
		return 0;
	}
	sqe = io_uring_get_sqe(&ctx->ring);
	if (!sqe) {
		io_uring_submit(&ctx->ring);
		sqe = io_uring_get_sqe(&ctx->ring);
	}
	if (!sqe) {
		req->ret = vd_file_sync(&img->file);
		done_push(req);
		return 0;
	}
	io_uring_prep_fsync(sqe, img->file.fd, IORING_FSYNC_DATASYNC);
	/* Tag flushes by the low bit; subs and reqs are at least 8-aligned. */
	io_uring_sqe_set_data64(sqe, (uintptr_t)req | 1);
	req->pending = 1;
	return 0;
}

/* Unmaps the whole clusters inside [off, off+len): they read as zeros (a
 * clone marks them ZERO so that its backing image does not show through),
 * or, with 'to_backing', from the backing chain again. */
int vd_unmap_clusters(struct vd_image *img, uint64_t off, uint64_t len, bool to_backing)
{
	uint64_t first = (off + img->cluster_bytes - 1) >> img->cluster_bits;
	uint64_t end = (off + len) >> img->cluster_bits;
	uint64_t want = img->backing_name && !to_backing ? VD_L2_ZERO : 0;
	int ret = 0;

	/* The last, partial cluster of the disk counts as whole. */
	if (off + len == img->hdr.size_bytes) {
		end = img->guest_clusters;
	}
	for (uint64_t g = first; g < end && ret == 0; g++) {
		struct vd_mblock *l2;
		uint32_t idx;
		uint64_t e;

		ret = vd_l2_lookup(img, g, want != 0, &l2, &idx);
		if (ret < 0 || !l2) {
			/* No table: the whole table's range is unallocated. */
			g = (g / img->l2_entries + 1) * img->l2_entries - 1;
			continue;
		}
		e = vd_get64(l2, idx);
		vd_mblock_put(l2);
		if (e == want) {
			continue;
		}
		ret = vd_check_l2_entry(img, e);
		if (ret == 0) {
			ret = vd_l2_lookup(img, g, true, &l2, &idx);
		}
		if (ret == 0) {
			vd_set64(img, l2, idx, want);
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

/* Writes zeros over [off, off+len), a cluster piece at a time, where the
 * guest does not already read zeros (it may span two partial clusters). */
static int zero_partial(struct vd_image *img, uint64_t off, uint64_t len)
{
	uint8_t *zeros = NULL;
	int ret = 0;

	while (len && ret == 0) {
		uint64_t n = img->cluster_bytes - (off & (img->cluster_bytes - 1)), host;
		bool back;

		n = n < len ? n : len;
		ret = map_for_read(img, off, &host, &back);
		if (ret == 0 && (host || back)) {
			if (!zeros) {
				zeros = vd_aligned_alloc(img->cluster_bytes);
				ret = zeros ? 0 : -ENOMEM;
				if (zeros) {
					memset(zeros, 0, img->cluster_bytes);
				}
			}
			ret = ret < 0 ? ret : vd_pwrite(img, zeros, n, off);
		}
		off += n;
		len -= n;
	}
	free(zeros);
	return ret;
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
	req = req_new(ctx, img, cb, arg);
	if (!req) {
		return -ENOMEM;
	}
	ctx->inflight++;
	if (zero) {
		/* Whole clusters [first, last) are unmapped below; the pieces
		 * before and after them are written with zeros.  The disk's
		 * last cluster counts as whole when the range reaches the end. */
		uint64_t mask = img->cluster_bytes - 1, end = off + len;
		uint64_t first = (off + mask) & ~mask;
		uint64_t last = end == img->hdr.size_bytes ? (end + mask) & ~mask : end & ~mask;

		if (first >= last) {
			ret = zero_partial(img, off, len);
		} else {
			ret = zero_partial(img, off, first - off);
			if (ret == 0 && last < end) {
				ret = zero_partial(img, last, end - last);
			}
		}
	}
	if (ret == 0) {
		ret = vd_unmap_clusters(img, off, len, false);
	}
	req->ret = ret;
	done_push(req);
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

static void handle_cqe(struct io_uring_cqe *cqe)
{
	uint64_t data = io_uring_cqe_get_data64(cqe);

	if (data & 1) {
		flush_cqe((struct vd_req *)(uintptr_t)(data & ~1ull), cqe->res);
	} else {
		sub_complete((struct vd_sub *)(uintptr_t)data, cqe->res);
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

	if (io_uring_sq_ready(&ctx->ring)) {
		ret = io_uring_submit(&ctx->ring);
	}
	return ret < 0 ? ret : 0;
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
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret;

		ctx->polling = true;
		io_uring_for_each_cqe(&ctx->ring, head, cqe) {
			handle_cqe(cqe);
			seen++;
		}
		io_uring_cq_advance(&ctx->ring, seen);
		ctx->polling = false;
		n += run_done(ctx);
		if (n >= min_complete || ctx->inflight == 0) {
			ret = vd_ctx_submit(ctx);
			return ret < 0 ? ret : (int)n;
		}
		ret = io_uring_submit_and_wait(&ctx->ring, 1);
		if (ret < 0 && ret != -EINTR) {
			return ret;
		}
	}
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

static int sync_ctx(struct vd_image *img)
{
	return img->sync_ctx ? 0 : vd_ctx_create(4, &img->sync_ctx);
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
		uint64_t g = vd_off_cluster(img, pos), e = 0, host;
		enum vd_extent_state s;
		struct vd_mblock *l2;
		uint32_t idx;

		ret = vd_l2_lookup(img, g, false, &l2, &idx);
		if (ret < 0) {
			break;
		}
		if (l2) {
			e = vd_get64(l2, idx);
			vd_mblock_put(l2);
			ret = vd_check_l2_entry(img, e);
			if (ret < 0) {
				break;
			}
		}
		host = e & VD_L2_OFFSET_MASK;
		s = host ? VD_EXTENT_DATA
			 : (e & VD_L2_ZERO) ? VD_EXTENT_ZERO
			 : img->backing_name ? VD_EXTENT_BACKING
					    : VD_EXTENT_UNALLOCATED;
		if (pos == off) {
			state = s;
			host0 = host + (off & (img->cluster_bytes - 1));
		} else if (s != state || (s == VD_EXTENT_DATA && host0 + (pos - off) !=
								 host)) {
			break;
		}
		pos = vd_cluster_off(img, g + 1);
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
