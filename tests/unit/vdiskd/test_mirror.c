/* SPDX-License-Identifier: MIT */
/* test_mirror.c: the copy-and-mirror engine of live migration (tools/mirror.c)
 * on real images in a temporary directory, one context, no server: the copy
 * makes the destination read as the source, zeros stay thin, guest writes
 * reach the destination only where it is already copied, a guest write and
 * a copy in flight on the same range never overlap, and a failing
 * destination fails the job but never the guest's request. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "mirror.h"
#include "testutil.h"
#include "vdisk.h"

#define CL 65536u
#define SIZE (64u * CL)

struct fix {
	char dir[64];
	char src_path[96], dst_path[96];
	struct vd_image *src, *dst;
	struct vd_ctx *ctx;
	struct mirror *m;
};

static void make(const char *path)
{
	struct vd_create_opts co;
	struct errmsg err = {{0}};

	vd_create_opts_init(&co);
	co.size_bytes = SIZE;
	co.cluster_bytes = CL;
	if (vd_create(path, &co, &err) != 0) {
		fail_msg("create %s: %s", path, err.msg);
	}
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_mirror.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->src_path, sizeof(f->src_path), "%s/src.vd", f->dir);
	snprintf(f->dst_path, sizeof(f->dst_path), "%s/dst.vd", f->dir);
	make(f->src_path);
	make(f->dst_path);
	f->src = tu_open(f->src_path, VD_OPEN_RDWR | VD_OPEN_BUFFERED);
	f->dst = tu_open(f->dst_path, VD_OPEN_RDWR | VD_OPEN_BUFFERED);
	assert_int_equal(vd_ctx_create(64, &f->ctx), 0);
	assert_int_equal(mirror_create(f->src, f->dst, &f->m), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	/* A failed test may leave copies in flight: their callbacks use the
	 * mirror. */
	while (vd_ctx_inflight(f->ctx) > 0 && vd_ctx_poll(f->ctx, 1) >= 0) {
	}
	vd_ctx_destroy(f->ctx);
	mirror_destroy(f->m);
	vd_close(f->src);
	vd_close(f->dst);
	unlink(f->src_path);
	unlink(f->dst_path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void done_cb(void *arg, int ret)
{
	*(int *)arg = ret;
}

static void drain(struct fix *f)
{
	while (vd_ctx_inflight(f->ctx) > 0) {
		assert_true(vd_ctx_poll(f->ctx, 1) >= 0);
	}
}

/* Copies until synced, as the job's loop does. */
static void copy_all(struct fix *f)
{
	while (!mirror_synced(f->m)) {
		struct mirror_stats st;

		while (mirror_copy_start(f->m, f->ctx, 0) > 0) {
		}
		mirror_get_stats(f->m, &st);
		assert_int_equal(st.error, 0);
		assert_true(vd_ctx_poll(f->ctx, 1) >= 0);
	}
}

static int guest_write(struct fix *f, uint64_t off, uint32_t len, uint8_t v, int *result)
{
	static uint8_t bufs[8][2 * CL];
	static unsigned next;
	uint8_t *buf = bufs[next++ % 8];
	struct iovec iov = {buf, len};

	memset(buf, v, len);
	*result = 1;
	return mirror_writev(f->m, f->ctx, &iov, 1, off, done_cb, result);
}

static void test_copy(void **state)
{
	struct fix *f = *state;
	struct vd_info info;

	tu_put(f->src, 0, 3 * CL, 0x11);
	tu_put(f->src, 10 * CL, CL, 0x00); /* data that is all zeros */
	tu_put(f->src, 63 * CL, CL, 0x22);
	mirror_mark(f->m, 0, 3 * CL);
	mirror_mark(f->m, 10 * CL, CL);
	mirror_mark(f->m, 63 * CL, CL);
	copy_all(f);
	tu_expect(f->dst, 0, 3 * CL, 0x11);
	tu_expect(f->dst, 3 * CL, 60 * CL, 0x00);
	tu_expect(f->dst, 63 * CL, CL, 0x22);
	/* The zero cluster was written as zeros: no data allocated for it. */
	assert_int_equal(vd_get_info(f->dst, &info), 0);
	assert_int_equal(info.allocated_bytes, 4 * CL);
	struct mirror_stats st;
	mirror_get_stats(f->m, &st);
	assert_int_equal(st.copied_bytes, 5 * CL);
	assert_int_equal(st.dirty_bytes, 0);
}

static void test_mirrored_writes(void **state)
{
	struct fix *f = *state;
	int r1, r2;

	tu_put(f->src, 0, 8 * CL, 0x11);
	mirror_mark(f->m, 0, 8 * CL);
	/* Granules 0..3 copied, 4..7 still dirty. */
	assert_int_equal(mirror_copy_start(f->m, f->ctx, 4 * CL), 4 * CL);
	drain(f);
	/* Into copied granules: both images.  Into dirty ones: the source. */
	assert_int_equal(guest_write(f, CL, CL, 0x33, &r1), 0);
	assert_int_equal(guest_write(f, 5 * CL, CL, 0x44, &r2), 0);
	drain(f);
	assert_int_equal(r1, 0);
	assert_int_equal(r2, 0);
	tu_expect(f->dst, CL, CL, 0x33);
	tu_expect(f->dst, 5 * CL, CL, 0x00);
	tu_expect(f->src, 5 * CL, CL, 0x44);
	struct mirror_stats st;
	mirror_get_stats(f->m, &st);
	assert_int_equal(st.mirrored_bytes, CL);
	/* The copy then takes the source's newer bytes. */
	copy_all(f);
	tu_expect(f->dst, 0, CL, 0x11);
	tu_expect(f->dst, CL, CL, 0x33);
	tu_expect(f->dst, 5 * CL, CL, 0x44);
	tu_expect(f->dst, 6 * CL, 2 * CL, 0x11);
	/* Synced: a write anywhere now reaches both. */
	assert_int_equal(guest_write(f, 7 * CL, CL, 0x55, &r1), 0);
	drain(f);
	tu_expect(f->dst, 7 * CL, CL, 0x55);
}

static void test_conflicts(void **state)
{
	struct fix *f = *state;
	int r1, r2;

	tu_put(f->src, 0, 4 * CL, 0x11);
	mirror_mark(f->m, 0, 4 * CL);
	/* A copy of granules 0..1 in flight: a write on granule 1 waits, one
	 * on granule 3 goes. */
	assert_int_equal(mirror_copy_start(f->m, f->ctx, 2 * CL), 2 * CL);
	assert_false(mirror_take_retry(f->m));
	assert_int_equal(guest_write(f, CL + 4096, 4096, 0x66, &r1), -EINPROGRESS);
	assert_true(mirror_take_retry(f->m));
	assert_int_equal(guest_write(f, 3 * CL, CL, 0x77, &r2), 0);
	/* And the copier does not start on granule 3 while that write is in
	 * flight: only granule 2 is left for it. */
	assert_int_equal(mirror_copy_start(f->m, f->ctx, 0), CL);
	drain(f);
	assert_int_equal(r2, 0);
	assert_true(mirror_take_retry(f->m)); /* the copies ended */
	assert_int_equal(guest_write(f, CL + 4096, 4096, 0x66, &r1), 0);
	drain(f);
	copy_all(f);
	tu_expect(f->dst, CL + 4096, 4096, 0x66);
	tu_expect(f->dst, 3 * CL, CL, 0x77);
	tu_expect(f->dst, 0, CL, 0x11);
	tu_expect(f->dst, 2 * CL, CL, 0x11);
}

static void test_failing_destination(void **state)
{
	struct fix *f = *state;
	struct mirror_stats st;
	int r;

	/* A destination opened read-only refuses every write. */
	mirror_destroy(f->m);
	vd_close(f->dst);
	f->dst = tu_open(f->dst_path, 0);
	assert_int_equal(mirror_create(f->src, f->dst, &f->m), 0);
	mirror_mark(f->m, 8 * CL, CL);
	assert_int_equal(guest_write(f, 0, CL, 0x12, &r), 0);
	drain(f);
	assert_int_equal(r, 0); /* the guest got the source's result */
	tu_expect(f->src, 0, CL, 0x12);
	mirror_get_stats(f->m, &st);
	assert_true(st.error < 0);
	assert_true(st.error_dst);
	/* The copier stops; later guest writes go to the source alone. */
	assert_int_equal(mirror_copy_start(f->m, f->ctx, 0), st.error);
	assert_false(mirror_synced(f->m));
	assert_int_equal(guest_write(f, CL, CL, 0x13, &r), 0);
	drain(f);
	assert_int_equal(r, 0);
	tu_expect(f->src, CL, CL, 0x13);
}

static void test_all_zero(void **state)
{
	uint64_t buf[5] = {0};

	(void)state;
	assert_true(mirror_all_zero(buf, sizeof(buf)));
	assert_true(mirror_all_zero(buf, 3));
	((uint8_t *)buf)[38] = 1;
	assert_false(mirror_all_zero(buf, sizeof(buf)));
	assert_true(mirror_all_zero(buf, 38));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mirrored_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failing_destination, setup, teardown),
	    cmocka_unit_test(test_all_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
