/* SPDX-License-Identifier: MIT */
/* mirror.c: see mirror.h.  The dirty set is a bitmap of granules; guest
 * writes in flight are a list (the copier checks a run against it before
 * it starts), copies in flight a small array (a guest write checks its
 * range against it).  Both lists are short: a copy checks at most the
 * requests of the disk's queues, a guest write at most MIRROR_MAX_COPIES
 * ranges. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mirror.h"

struct mreq {
	struct mirror *m;
	uint64_t off, len;
	unsigned pending;
	int src_ret;
	vd_cb cb;
	void *arg;
	struct mreq *prev, *next; /* in flight, or the free list (next) */
};

enum copy_state { COPY_FREE, COPY_READING, COPY_WRITING };

struct copy {
	struct mirror *m;
	enum copy_state state;
	uint64_t off, len;
	uint8_t *buf;
	struct vd_ctx *ctx;
	unsigned pending;
	int ret;
};

struct mirror {
	struct vd_image *src, *dst;
	uint64_t size, gran, n_gran;
	uint64_t *dirty;
	uint64_t n_dirty;
	uint64_t cursor; /* granule where the copier looks next */
	struct mreq *active, *free;
	struct copy copies[MIRROR_MAX_COPIES];
	unsigned n_copies;
	uint64_t copied, mirrored;
	int error;
	bool error_dst;
	bool retry;
};

static bool is_dirty(const struct mirror *m, uint64_t g)
{
	return m->dirty[g / 64] >> (g % 64) & 1;
}

static void set_dirty(struct mirror *m, uint64_t g, bool on)
{
	uint64_t bit = (uint64_t)1 << (g % 64);

	if (on && !(m->dirty[g / 64] & bit)) {
		m->dirty[g / 64] |= bit;
		m->n_dirty++;
	} else if (!on && (m->dirty[g / 64] & bit)) {
		m->dirty[g / 64] &= ~bit;
		m->n_dirty--;
	}
}

int mirror_create(struct vd_image *src, struct vd_image *dst, struct mirror **mp)
{
	struct mirror *m = calloc(1, sizeof(*m));

	if (!m) {
		return -ENOMEM;
	}
	m->src = src;
	m->dst = dst;
	m->size = vd_size_bytes(src);
	m->gran = vd_cluster_bytes(src);
	m->n_gran = (m->size + m->gran - 1) / m->gran;
	m->dirty = calloc((m->n_gran + 63) / 64 + 1, sizeof(uint64_t));
	if (!m->dirty) {
		free(m);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < MIRROR_MAX_COPIES; i++) {
		m->copies[i].m = m;
		if (posix_memalign((void **)&m->copies[i].buf, 4096, MIRROR_CHUNK_BYTES) != 0) {
			mirror_destroy(m);
			return -ENOMEM;
		}
	}
	*mp = m;
	return 0;
}

void mirror_destroy(struct mirror *m)
{
	struct mreq *r;

	if (!m) {
		return;
	}
	while ((r = m->free)) {
		m->free = r->next;
		free(r);
	}
	for (unsigned i = 0; i < MIRROR_MAX_COPIES; i++) {
		free(m->copies[i].buf);
	}
	free(m->dirty);
	free(m);
}

void mirror_mark(struct mirror *m, uint64_t off, uint64_t len)
{
	uint64_t g, end;

	if (len == 0 || off >= m->size) {
		return;
	}
	end = off + len > m->size ? m->size : off + len;
	for (g = off / m->gran; g * m->gran < end; g++) {
		set_dirty(m, g, true);
	}
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Whole granules around [off, off+len). */
static void granules(const struct mirror *m, uint64_t off, uint64_t len, uint64_t *g0,
		     uint64_t *g1)
{
	*g0 = off / m->gran;
	*g1 = len ? (off + len - 1) / m->gran + 1 : *g0;
	if (*g1 > m->n_gran) {
		*g1 = m->n_gran;
	}
}

static bool copying(const struct mirror *m, uint64_t off, uint64_t len)
{
	uint64_t g0, g1;

	granules(m, off, len, &g0, &g1);
	for (unsigned i = 0; i < MIRROR_MAX_COPIES; i++) {
		const struct copy *c = &m->copies[i];

		if (c->state != COPY_FREE &&
		    overlaps(g0 * m->gran, (g1 - g0) * m->gran, c->off, c->len)) {
			return true;
		}
	}
	return false;
}

/* Whether a write on [off, off+len) must reach the destination too. */
static bool touches_clean(const struct mirror *m, uint64_t off, uint64_t len)
{
	uint64_t g0, g1;

	granules(m, off, len, &g0, &g1);
	for (uint64_t g = g0; g < g1; g++) {
		if (!is_dirty(m, g)) {
			return true;
		}
	}
	return false;
}

static void fail(struct mirror *m, int ret, bool dst)
{
	if (m->error == 0) {
		m->error = ret;
		m->error_dst = dst;
	}
}

/* ------------------------------------------------------- the guest's path */

static struct mreq *mreq_get(struct mirror *m)
{
	struct mreq *r = m->free;

	if (r) {
		m->free = r->next;
	} else {
		r = malloc(sizeof(*r));
	}
	return r;
}

static void mreq_finish(struct mreq *r)
{
	struct mirror *m = r->m;
	vd_cb cb = r->cb;
	void *arg = r->arg;
	int ret = r->src_ret;

	if (r->prev) {
		r->prev->next = r->next;
	} else {
		m->active = r->next;
	}
	if (r->next) {
		r->next->prev = r->prev;
	}
	r->next = m->free;
	m->free = r;
	cb(arg, ret);
}

static void src_done(void *arg, int ret)
{
	struct mreq *r = arg;

	r->src_ret = ret;
	if (--r->pending == 0) {
		mreq_finish(r);
	}
}

static void dst_done(void *arg, int ret)
{
	struct mreq *r = arg;

	if (ret < 0) {
		fail(r->m, ret, true);
	} else {
		r->m->mirrored += r->len;
	}
	if (--r->pending == 0) {
		mreq_finish(r);
	}
}

enum wop { W_WRITE, W_DISCARD, W_ZEROES };

static int submit_one(struct vd_ctx *ctx, struct vd_image *img, enum wop op,
		      const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len, vd_cb cb,
		      void *arg)
{
	switch (op) {
	case W_WRITE:
		return vd_submit_writev(ctx, img, iov, iovcnt, off, cb, arg);
	case W_DISCARD:
		return vd_submit_discard(ctx, img, off, len, cb, arg);
	default:
		return vd_submit_write_zeroes(ctx, img, off, len, cb, arg);
	}
}

static int guest_write(struct mirror *m, struct vd_ctx *ctx, enum wop op,
		       const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len, vd_cb cb,
		       void *arg)
{
	struct mreq *r;
	int ret;

	if (m->error) {
		/* The job is failing: the source alone, as without a mirror. */
		return submit_one(ctx, m->src, op, iov, iovcnt, off, len, cb, arg);
	}
	if (copying(m, off, len)) {
		m->retry = true;
		return -EINPROGRESS;
	}
	r = mreq_get(m);
	if (!r) {
		return -ENOMEM;
	}
	*r = (struct mreq){.m = m, .off = off, .len = len, .pending = 1, .cb = cb, .arg = arg};
	ret = submit_one(ctx, m->src, op, iov, iovcnt, off, len, src_done, r);
	if (ret < 0) {
		r->next = m->free;
		m->free = r;
		return ret;
	}
	r->next = m->active;
	if (m->active) {
		m->active->prev = r;
	}
	m->active = r;
	if (touches_clean(m, off, len)) {
		ret = submit_one(ctx, m->dst, op, iov, iovcnt, off, len, dst_done, r);
		if (ret < 0) {
			fail(m, ret, true);
		} else {
			r->pending++;
		}
	}
	return 0;
}

int mirror_writev(struct mirror *m, struct vd_ctx *ctx, const struct iovec *iov, int iovcnt,
		  uint64_t off, vd_cb cb, void *arg)
{
	uint64_t len = 0;

	for (int i = 0; i < iovcnt; i++) {
		len += iov[i].iov_len;
	}
	return guest_write(m, ctx, W_WRITE, iov, iovcnt, off, len, cb, arg);
}

int mirror_discard(struct mirror *m, struct vd_ctx *ctx, uint64_t off, uint64_t len, vd_cb cb,
		   void *arg)
{
	return guest_write(m, ctx, W_DISCARD, NULL, 0, off, len, cb, arg);
}

int mirror_write_zeroes(struct mirror *m, struct vd_ctx *ctx, uint64_t off, uint64_t len,
			vd_cb cb, void *arg)
{
	return guest_write(m, ctx, W_ZEROES, NULL, 0, off, len, cb, arg);
}

/* ------------------------------------------------------------- the copier */

bool mirror_all_zero(const void *buf, size_t n)
{
	const uint64_t *w = buf;
	const uint8_t *p = buf;

	for (size_t i = 0; i < n / 8; i++) {
		if (w[i]) {
			return false;
		}
	}
	for (size_t i = n / 8 * 8; i < n; i++) {
		if (p[i]) {
			return false;
		}
	}
	return true;
}

static void copy_end(struct copy *c)
{
	struct mirror *m = c->m;
	uint64_t g0, g1;

	if (c->ret < 0) {
		fail(m, c->ret, c->state == COPY_WRITING);
	} else {
		granules(m, c->off, c->len, &g0, &g1);
		for (uint64_t g = g0; g < g1; g++) {
			set_dirty(m, g, false);
		}
		m->copied += c->len;
	}
	c->state = COPY_FREE;
	m->n_copies--;
	/* Guest writes turned back on this range may go now. */
	m->retry = true;
}

static void copy_written(void *arg, int ret)
{
	struct copy *c = arg;

	if (ret < 0 && c->ret == 0) {
		c->ret = ret;
	}
	if (--c->pending == 0) {
		copy_end(c);
	}
}

/* The source's bytes are in the buffer: each run of zero granules becomes
 * one write-zeroes (thin stays thin), each run of data one write. */
static void copy_read(void *arg, int ret)
{
	struct copy *c = arg;
	struct mirror *m = c->m;
	uint64_t pos = 0;

	if (ret < 0) {
		fail(m, ret, false); /* the source's read */
	}
	c->state = COPY_WRITING;
	c->ret = ret;
	c->pending = 1; /* until every write is submitted */
	while (c->ret == 0 && pos < c->len) {
		bool zero = mirror_all_zero(c->buf + pos, m->gran < c->len - pos ? m->gran : c->len - pos);
		uint64_t run = 0;
		struct iovec iov;

		while (pos + run < c->len) {
			uint64_t k = c->len - pos - run < m->gran ? c->len - pos - run : m->gran;

			if (mirror_all_zero(c->buf + pos + run, k) != zero) {
				break;
			}
			run += k;
		}
		iov.iov_base = c->buf + pos;
		iov.iov_len = run;
		ret = zero ? vd_submit_write_zeroes(c->ctx, m->dst, c->off + pos, run, copy_written,
						    c)
			   : vd_submit_writev(c->ctx, m->dst, &iov, 1, c->off + pos, copy_written, c);
		if (ret == 0) {
			c->pending++;
		} else {
			c->ret = ret;
		}
		pos += run;
	}
	copy_written(c, 0);
}

/* Whether a guest write in flight changes [off, off+len). */
static bool written(const struct mirror *m, uint64_t off, uint64_t len)
{
	for (const struct mreq *r = m->active; r; r = r->next) {
		if (overlaps(off, len, r->off, r->len)) {
			return true;
		}
	}
	return false;
}

/* Whether granule 'g' cannot be copied now: a copy or a guest write is
 * in flight on it. */
static bool busy(const struct mirror *m, uint64_t g)
{
	return copying(m, g * m->gran, m->gran) || written(m, g * m->gran, m->gran);
}

int64_t mirror_copy_start(struct mirror *m, struct vd_ctx *ctx, uint64_t max)
{
	uint64_t max_g, scanned = 0, g, n = 0;
	struct copy *c = NULL;
	struct iovec iov;
	int ret;

	if (m->error || m->n_dirty == 0 || m->n_copies == MIRROR_MAX_COPIES) {
		return m->error;
	}
	for (unsigned i = 0; i < MIRROR_MAX_COPIES && !c; i++) {
		c = m->copies[i].state == COPY_FREE ? &m->copies[i] : NULL;
	}
	max = max == 0 || max > MIRROR_CHUNK_BYTES ? MIRROR_CHUNK_BYTES : max;
	max_g = max / m->gran ? max / m->gran : 1;
	/* One pass over the bitmap at most, from the cursor, wrapping: a
	 * granule a guest write is changing is passed over and found again
	 * next time. */
	g = m->cursor;
	while (scanned < m->n_gran) {
		if (g >= m->n_gran) {
			g = 0;
		}
		if (g % 64 == 0 && m->dirty[g / 64] == 0) {
			/* A clean word at once. */
			scanned += 64;
			g += 64;
			continue;
		}
		if (is_dirty(m, g) && !busy(m, g)) {
			break;
		}
		scanned++;
		g++;
	}
	if (scanned < m->n_gran) {
		n = 1;
		while (n < max_g && g + n < m->n_gran && is_dirty(m, g + n) && !busy(m, g + n)) {
			n++;
		}
	}
	if (scanned >= m->n_gran) {
		return 0;
	}
	c->off = g * m->gran;
	c->len = n * m->gran;
	if (c->off + c->len > m->size) {
		c->len = m->size - c->off;
	}
	c->ctx = ctx;
	c->ret = 0;
	iov.iov_base = c->buf;
	iov.iov_len = c->len;
	ret = vd_submit_readv(ctx, m->src, &iov, 1, c->off, copy_read, c);
	if (ret < 0) {
		return ret;
	}
	c->state = COPY_READING;
	m->n_copies++;
	m->cursor = g + n;
	return (int64_t)c->len;
}

void mirror_get_stats(const struct mirror *m, struct mirror_stats *st)
{
	uint64_t dirty = m->n_dirty * m->gran;

	st->dirty_bytes = dirty > m->size ? m->size : dirty;
	st->copied_bytes = m->copied;
	st->mirrored_bytes = m->mirrored;
	st->copies = m->n_copies;
	st->error = m->error;
	st->error_dst = m->error_dst;
}

bool mirror_synced(const struct mirror *m)
{
	return m->n_dirty == 0 && m->n_copies == 0 && m->error == 0;
}

bool mirror_take_retry(struct mirror *m)
{
	bool r = m->retry;

	m->retry = false;
	return r;
}
