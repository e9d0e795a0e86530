/* SPDX-License-Identifier: MIT */
/* test_async.c: the asynchronous API does not block.  A submit on a cold
 * cache, a copy-up from the backing chain and a partial write-zeroes return
 * before their I/O is done and make no blocking call; a request waiting on
 * a slow step does not hold up requests on other images; and random
 * workloads with many requests in flight (backing chains, partial
 * write-zeroes, discards, snapshots between drains) leave the same disk as
 * the synchronous calls, checking clean. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "testutil.h"

#define CL 4096u

static void cb_count(void *arg, int ret)
{
	int *st = arg;

	assert_int_equal(ret, 0);
	(*st)++;
}

static void make_image(const char *path, uint64_t size, uint32_t cluster, const char *backing)
{
	struct vd_create_opts co;

	unlink(path);
	vd_create_opts_init(&co);
	co.size_bytes = size;
	co.cluster_bytes = cluster;
	co.backing_path = backing;
	assert_int_equal(vd_create(path, &co, NULL), 0);
}

static struct vd_image *open_cache(const char *path, size_t cache_bytes)
{
	struct vd_open_opts oo;
	struct vd_image *img = NULL;
	struct errmsg err = {{0}};

	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	oo.cache_bytes = cache_bytes;
	if (vd_open(path, &oo, &img, &err) != 0) {
		fail_msg("open %s: %s", path, err.msg);
	}
	return img;
}

/* Polls until 'done' reaches 'want'. */
static void drain(struct vd_ctx *ctx, int *done, int want)
{
	while (*done < want) {
		assert_true(vd_ctx_poll(ctx, 1) >= 0);
	}
}

/* A template with data in every L2 table's range, and a clone of it: the
 * clone's first reads and partial writes miss the cache and read through
 * to the template; none of that may happen inside the submit calls. */
static void test_cold_submits_return_before_their_io(void **state)
{
	const uint64_t size = 64ull << 20;
	struct vd_image *t, *img;
	struct vd_ctx *ctx;
	uint8_t *buf = aligned_alloc(4096, 3 * CL), *rd = aligned_alloc(4096, 3 * CL);
	struct iovec wiov = {buf, 1024}, riov = {rd, 3 * CL};
	uint64_t calls;
	int done = 0;

	make_image("async-t.vd", size, CL, NULL);
	t = tu_open("async-t.vd", VD_OPEN_RDWR);
	for (uint64_t off = 0; off < size; off += 8ull << 20) {
		tu_put(t, off, 3 * CL, 0x33);
	}
	assert_int_equal(vd_close(t), 0);
	make_image("async-c.vd", 0, CL, "async-t.vd");
	img = open_cache("async-c.vd", 0);
	tu_put(img, 40ull << 20, CL, 0x44);
	assert_int_equal(vd_close(img), 0);

	img = open_cache("async-c.vd", 0);
	assert_int_equal(vd_ctx_create(16, &ctx), 0);
	calls = img->file.sync_calls + img->backing->file.sync_calls;
	memset(buf, 0x55, CL);
	/* a read through the clone's cold tables to the template's */
	assert_int_equal(vd_submit_readv(ctx, img, &riov, 1, 8ull << 20, cb_count, &done), 0);
	/* a partial write: copy-up of the template's cluster */
	assert_int_equal(vd_submit_writev(ctx, img, &wiov, 1, (16ull << 20) + 1024, cb_count,
					  &done), 0);
	/* a partial write-zeroes of the clone's own data and of the template's */
	assert_int_equal(vd_submit_write_zeroes(ctx, img, (40ull << 20) + 512, 1024, cb_count,
						&done), 0);
	assert_int_equal(vd_submit_write_zeroes(ctx, img, (24ull << 20) + 2048, 512, cb_count,
						&done), 0);
	assert_int_equal(done, 0);
	assert_int_equal(vd_ctx_inflight(ctx), 4);
	drain(ctx, &done, 4);
	/* the journal commit of a flush is ring I/O too */
	assert_int_equal(vd_submit_flush(ctx, img, cb_count, &done), 0);
	assert_int_equal(done, 4);
	drain(ctx, &done, 5);
	assert_int_equal(img->file.sync_calls + img->backing->file.sync_calls, calls);
	for (size_t i = 0; i < 3 * CL; i++) {
		assert_int_equal(rd[i], 0x33);
	}
	vd_ctx_destroy(ctx);
	tu_expect(img, 16ull << 20, 1024, 0x33);
	tu_expect(img, (16ull << 20) + 1024, 1024, 0x55);
	tu_expect(img, (16ull << 20) + 2048, 2 * CL - 2048, 0x33);
	tu_expect(img, 40ull << 20, 512, 0x44);
	tu_expect(img, (40ull << 20) + 512, 1024, 0);
	tu_expect(img, (40ull << 20) + 1536, CL - 1536, 0x44);
	tu_expect(img, 24ull << 20, 2048, 0x33);
	tu_expect(img, (24ull << 20) + 2048, 512, 0);
	tu_expect(img, (24ull << 20) + 2560, CL - 2560, 0x33);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	free(buf);
	free(rd);
	unlink("async-c.vd");
	unlink("async-t.vd");
}

/* Flushes that arrive while a commit is in flight share the next one. */
static void test_flushes_share_a_commit(void **state)
{
	struct vd_image *img;
	struct vd_ctx *ctx;
	uint8_t *buf = aligned_alloc(4096, 8 * CL);
	uint64_t seq, calls;
	int done = 0;

	make_image("async-g.vd", 64ull << 20, CL, NULL);
	img = open_cache("async-g.vd", 0);
	assert_int_equal(vd_ctx_create(64, &ctx), 0);
	memset(buf, 0x66, 8 * CL);
	seq = img->journal_seq;
	calls = img->file.sync_calls;
	/* A flush covers the writes completed before it starts (virtio-blk's
	 * rule), so the writes complete first: whether a write still in
	 * flight makes a later commit depends on the machine's speed. */
	for (int i = 0; i < 8; i++) {
		struct iovec iov = {buf + i * CL, CL};

		/* each write allocates (a new L2 table every 2 MiB) */
		assert_int_equal(vd_submit_writev(ctx, img, &iov, 1, i * (3ull << 20), cb_count,
						  &done), 0);
	}
	drain(ctx, &done, 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(vd_submit_flush(ctx, img, cb_count, &done), 0);
	}
	drain(ctx, &done, 16);
	/* eight flushes: the first starts a commit, the seven that arrive
	 * while it is in flight share at most one more */
	assert_true(img->journal_seq - seq <= 2);
	assert_true(img->journal_seq - seq >= 1);
	assert_int_equal(img->file.sync_calls, calls);
	vd_ctx_destroy(ctx);
	for (int i = 0; i < 8; i++) {
		tu_expect(img, i * (3ull << 20), CL, 0x66);
	}
	assert_int_equal(vd_close(img), 0);
	img = tu_open("async-g.vd", 0);
	for (int i = 0; i < 8; i++) {
		tu_expect(img, i * (3ull << 20), CL, 0x66);
	}
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	free(buf);
	unlink("async-g.vd");
}

/* An in-memory file whose reads can be held back: the hook answers
 * -EINPROGRESS ("not yet") while 'stall' is set, as a slow disk would. */
struct mfile {
	uint8_t *data;
	uint64_t size, cap;
	bool stall;
};

static void mf_reserve(struct mfile *f, uint64_t size)
{
	if (size > f->cap) {
		f->data = realloc(f->data, size * 2);
		assert_non_null(f->data);
		memset(f->data + f->cap, 0, size * 2 - f->cap);
		f->cap = size * 2;
	}
}

static ssize_t mf_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	struct mfile *f = arg;

	if (f->stall) {
		return -EINPROGRESS;
	}
	if (off >= f->size) {
		return 0;
	}
	len = off + len > f->size ? f->size - off : len;
	memcpy(buf, f->data + off, len);
	return len;
}

static ssize_t mf_pwrite(void *arg, const void *buf, size_t len, uint64_t off)
{
	struct mfile *f = arg;

	mf_reserve(f, off + len);
	memcpy(f->data + off, buf, len);
	f->size = off + len > f->size ? off + len : f->size;
	return len;
}

static int mf_sync(void *arg)
{
	return 0;
}

static int mf_punch(void *arg, uint64_t off, uint64_t len)
{
	struct mfile *f = arg;

	if (off < f->size) {
		memset(f->data + off, 0, off + len > f->size ? f->size - off : len);
	}
	return 0;
}

static int mf_truncate(void *arg, uint64_t size)
{
	struct mfile *f = arg;

	mf_reserve(f, size);
	if (size < f->size) {
		memset(f->data + size, 0, f->size - size);
	}
	f->size = size;
	return 0;
}

static int mf_size(void *arg, uint64_t *sizep)
{
	*sizep = ((struct mfile *)arg)->size;
	return 0;
}

static const struct vd_file_ops mf_ops = {
	.pread = mf_pread, .pwrite = mf_pwrite, .sync = mf_sync,
	.punch = mf_punch, .truncate = mf_truncate, .size = mf_size,
};

static struct vd_image *mem_image(struct mfile *f, const char *name, bool create)
{
	struct vd_create_opts co;
	struct vd_open_opts oo;
	struct vd_image *img;

	vd_create_opts_init(&co);
	co.size_bytes = 16ull << 20;
	co.cluster_bytes = CL;
	if (create) {
		assert_int_equal(vd_create_with_ops(name, &co, &mf_ops, f, NULL), 0);
	}
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	assert_int_equal(vd_open_with_ops(name, &oo, &mf_ops, f, &img, NULL), 0);
	return img;
}

static void test_a_slow_step_holds_up_no_other_request(void **state)
{
	struct mfile fa = {0}, fb = {0};
	struct vd_image *a = mem_image(&fa, "slow", true), *b = mem_image(&fb, "fast", true);
	struct vd_ctx *ctx, *ctx2;
	uint8_t *ra = aligned_alloc(4096, CL), *rb = aligned_alloc(4096, CL);
	struct iovec ia = {ra, CL}, ib = {rb, CL};
	int da = 0, db = 0, db2 = 0;

	tu_put(a, 5 * CL, CL, 0xa5);
	tu_put(b, 7 * CL, CL, 0xb7);
	assert_int_equal(vd_close(a), 0);
	assert_int_equal(vd_close(b), 0);
	a = mem_image(&fa, "slow", false);
	b = mem_image(&fb, "fast", false);
	assert_int_equal(vd_ctx_create(8, &ctx), 0);
	assert_int_equal(vd_ctx_create(8, &ctx2), 0);
	fa.stall = true;
	/* 'a' misses its L2 table and parks on a read that does not come */
	assert_int_equal(vd_submit_readv(ctx, a, &ia, 1, 5 * CL, cb_count, &da), 0);
	assert_true(vd_ctx_poll(ctx, 0) >= 0);
	assert_int_equal(da, 0);
	/* 'b' on the same context, and on another, completes meanwhile */
	assert_int_equal(vd_submit_readv(ctx, b, &ib, 1, 7 * CL, cb_count, &db), 0);
	for (int i = 0; i < 100 && db == 0; i++) {
		assert_true(vd_ctx_poll(ctx, 0) >= 0);
	}
	assert_int_equal(db, 1);
	assert_int_equal(rb[0], 0xb7);
	assert_int_equal(vd_submit_writev(ctx2, b, &ib, 1, 9 * CL, cb_count, &db2), 0);
	drain(ctx2, &db2, 1);
	assert_int_equal(da, 0);
	assert_int_equal(vd_ctx_inflight(ctx), 1);
	fa.stall = false;
	drain(ctx, &da, 1);
	assert_int_equal(ra[0], 0xa5);
	assert_int_equal(ra[CL - 1], 0xa5);
	vd_ctx_destroy(ctx);
	vd_ctx_destroy(ctx2);
	tu_expect(b, 9 * CL, CL, 0xb7);
	assert_int_equal(vd_close(a), 0);
	assert_int_equal(vd_close(b), 0);
	free(fa.data);
	free(fb.data);
	free(ra);
	free(rb);
}

/* The property: random requests, up to 'depth' in flight on guest ranges
 * that do not overlap, give the disk the synchronous model says, reads in
 * flight see it, and the image checks clean.  Snapshots are taken,
 * reverted and deleted between drains. */
#define PDISK (4u << 20)

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

struct preq {
	bool busy;
	uint64_t off, len;
	bool is_read;
	uint8_t *buf, *want;
	int *done;
};

static void preq_cb(void *arg, int ret)
{
	struct preq *p = arg;

	assert_int_equal(ret, 0);
	if (p->is_read && memcmp(p->buf, p->want, p->len) != 0) {
		fail_msg("async read at 0x%llx+%llu differs from the model",
			 (unsigned long long)p->off, (unsigned long long)p->len);
	}
	p->busy = false;
	(*p->done)++;
}

static bool overlaps(const struct preq *q, int n, uint64_t off, uint64_t len, uint32_t cl)
{
	uint64_t a = off / cl, b = (off + len - 1) / cl;

	for (int i = 0; i < n; i++) {
		if (q[i].busy && a <= (q[i].off + q[i].len - 1) / cl && q[i].off / cl <= b) {
			return true;
		}
	}
	return false;
}

static void property_run(bool clone, uint32_t cl, size_t cache_bytes, int nops)
{
	enum { DEPTH = 8 };
	struct preq q[DEPTH] = {{0}};
	uint8_t *model = calloc(1, PDISK), *tmodel = malloc(PDISK), *snapm[2];
	struct vd_image *img;
	struct vd_ctx *ctx;
	int done = 0, submitted = 0, nsnap = 0;

	for (int i = 0; i < 2; i++) {
		snapm[i] = malloc(PDISK);
	}
	if (clone) {
		struct vd_image *t;

		make_image("prop-t.vd", PDISK, cl, NULL);
		t = tu_open("prop-t.vd", VD_OPEN_RDWR);
		for (uint32_t s = 0; s < PDISK / 512; s++) {
			memset(tmodel + s * 512, s < PDISK / 1024 ? s % 251 + 1 : 0, 512);
		}
		assert_int_equal(vd_pwrite(t, tmodel, PDISK, 0), 0);
		assert_int_equal(vd_close(t), 0);
		memcpy(model, tmodel, PDISK);
		make_image("prop.vd", 0, cl, "prop-t.vd");
	} else {
		make_image("prop.vd", PDISK, cl, NULL);
	}
	img = open_cache("prop.vd", cache_bytes);
	assert_int_equal(vd_ctx_create(DEPTH, &ctx), 0);
	for (int i = 0; i < DEPTH; i++) {
		q[i].buf = aligned_alloc(4096, 4 * cl);
		q[i].want = malloc(4 * cl);
		q[i].done = &done;
	}
	for (int op = 0; op < nops; op++) {
		uint32_t kind = rnd(20);
		uint64_t off = rnd(PDISK / 512) * 512, len = (1 + rnd(4 * cl / 512)) * 512;
		struct preq *p = NULL;
		int ret;

		len = off + len > PDISK ? PDISK - off : len;
		if (kind >= 18) {
			/* drain, then a snapshot operation or a flush */
			drain(ctx, &done, submitted);
			if (kind == 18 && nsnap < 2 && !clone) {
				char name[16];

				snprintf(name, sizeof(name), "s%d", nsnap);
				assert_int_equal(vd_snapshot_create(img, name, NULL), 0);
				memcpy(snapm[nsnap++], model, PDISK);
			} else if (kind == 19 && nsnap > 0 && rnd(2)) {
				char name[16];

				snprintf(name, sizeof(name), "s%d", nsnap - 1);
				assert_int_equal(vd_snapshot_revert(img, name, NULL), 0);
				memcpy(model, snapm[nsnap - 1], PDISK);
				if (rnd(2)) {
					assert_int_equal(vd_snapshot_delete(img, name, NULL), 0);
					nsnap--;
				}
			} else {
				assert_int_equal(vd_flush(img), 0);
			}
			continue;
		}
		while (overlaps(q, DEPTH, off, len, cl) || vd_ctx_inflight(ctx) == DEPTH) {
			assert_true(vd_ctx_poll(ctx, 1) >= 0);
		}
		for (int i = 0; i < DEPTH && !p; i++) {
			p = q[i].busy ? NULL : &q[i];
		}
		assert_non_null(p);
		*p = (struct preq){true, off, len, kind < 6, p->buf, p->want, &done};
		if (kind < 6) {
			struct iovec iov = {p->buf, len};

			memcpy(p->want, model + off, len);
			ret = vd_submit_readv(ctx, img, &iov, 1, off, preq_cb, p);
		} else if (kind < 13) {
			struct iovec iov = {p->buf, len};

			memset(p->buf, 1 + rnd(255), len);
			memcpy(model + off, p->buf, len);
			ret = vd_submit_writev(ctx, img, &iov, 1, off, preq_cb, p);
		} else if (kind < 16) {
			memset(model + off, 0, len);
			ret = vd_submit_write_zeroes(ctx, img, off, len, preq_cb, p);
		} else {
			/* discard frees whole clusters only: model those */
			uint64_t first = (off + cl - 1) / cl * cl, end = (off + len) / cl * cl;

			if (off + len == PDISK) {
				end = PDISK;
			}
			if (end > first) {
				memset(model + first, 0, end - first);
			}
			ret = vd_submit_discard(ctx, img, off, len, preq_cb, p);
		}
		assert_int_equal(ret, 0);
		submitted++;
	}
	drain(ctx, &done, submitted);
	vd_ctx_destroy(ctx);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	img = tu_open("prop.vd", 0);
	{
		uint8_t *disk = malloc(PDISK);

		assert_int_equal(vd_pread(img, disk, PDISK, 0), 0);
		for (uint64_t i = 0; i < PDISK; i++) {
			if (disk[i] != model[i]) {
				fail_msg("byte 0x%llx reads 0x%02x, the model says 0x%02x",
					 (unsigned long long)i, disk[i], model[i]);
			}
		}
		free(disk);
	}
	assert_int_equal(vd_close(img), 0);
	for (int i = 0; i < DEPTH; i++) {
		free(q[i].buf);
		free(q[i].want);
	}
	for (int i = 0; i < 2; i++) {
		free(snapm[i]);
	}
	free(model);
	free(tmodel);
	unlink("prop.vd");
	unlink("prop-t.vd");
}

static void test_random_async_workload_matches_the_model(void **state)
{
	property_run(false, CL, 4 * CL, 3000);
	property_run(false, 64 * 1024, 0, 1500);
}

static void test_random_async_workload_in_a_clone_matches_the_model(void **state)
{
	property_run(true, CL, 4 * CL, 3000);
	property_run(true, 64 * 1024, 0, 1500);
}

/* VD_OPEN_DURABLE_MAP: writes that map new clusters (a fresh cluster, a
 * copy-up in a clone) and a write-zeroes, completed and never flushed,
 * survive the death of the process that wrote them (vdiskd's kill -9). */
static void test_durable_map_survives_the_process(void **state)
{
	const uint64_t size = 16ull << 20;
	struct vd_image *img;
	pid_t pid;
	int status;

	make_image("async-dt.vd", size, CL, NULL);
	img = tu_open("async-dt.vd", VD_OPEN_RDWR);
	tu_put(img, 0, 4 * CL, 0x11);
	assert_int_equal(vd_close(img), 0);
	make_image("async-dc.vd", size, CL, "async-dt.vd");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct vd_open_opts oo;
		struct vd_ctx *ctx;
		uint8_t *buf = aligned_alloc(4096, CL);
		struct iovec full = {buf, CL}, part = {buf, 512};
		int done = 0;

		vd_open_opts_init(&oo);
		oo.flags = VD_OPEN_RDWR | VD_OPEN_DURABLE_MAP;
		if (!buf || vd_open("async-dc.vd", &oo, &img, NULL) != 0 ||
		    vd_ctx_create(8, &ctx) != 0) {
			_exit(2);
		}
		memset(buf, 0x22, CL);
		/* a fresh cluster, a copy-up of a template cluster, a
		 * write-zeroes over another template cluster */
		if (vd_submit_writev(ctx, img, &full, 1, 8ull << 20, cb_count, &done) != 0 ||
		    vd_submit_writev(ctx, img, &part, 1, CL + 512, cb_count, &done) != 0 ||
		    vd_submit_write_zeroes(ctx, img, 2 * CL, CL, cb_count, &done) != 0) {
			_exit(3);
		}
		while (done < 3) {
			if (vd_ctx_poll(ctx, 1) < 0) {
				_exit(4);
			}
		}
		_exit(0); /* no flush, no close: as kill -9 would */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	img = tu_open("async-dc.vd", 0);
	tu_expect(img, 8ull << 20, CL, 0x22);
	tu_expect(img, 0, CL + 512, 0x11);
	tu_expect(img, CL + 512, 512, 0x22);
	tu_expect(img, CL + 1024, CL - 1024, 0x11);
	tu_expect(img, 2 * CL, CL, 0);
	tu_expect(img, 3 * CL, CL, 0x11);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	unlink("async-dc.vd");
	unlink("async-dt.vd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cold_submits_return_before_their_io),
		cmocka_unit_test(test_flushes_share_a_commit),
		cmocka_unit_test(test_durable_map_survives_the_process),
		cmocka_unit_test(test_a_slow_step_holds_up_no_other_request),
		cmocka_unit_test(test_random_async_workload_matches_the_model),
		cmocka_unit_test(test_random_async_workload_in_a_clone_matches_the_model),
	};

	return cmocka_run_group_tests_name("vdisk_async", tests, NULL, NULL);
}
