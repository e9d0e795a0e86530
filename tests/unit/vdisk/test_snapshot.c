/* SPDX-License-Identifier: MIT */
/* test_snapshot.c: snapshots through the public API: revert brings data
 * back, diff lists exactly the written clusters, delete frees exactly what
 * nothing else references, chains of snapshots stay independent, a view
 * reads a snapshot as it was taken (through the backing file too), and
 * every step leaves a clean image. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "vdisk.h"

static const char *path = "snap-test.vd";
#define MiB (1u << 20)

static struct vd_image *open_rw(void)
{
	return tu_open(path, VD_OPEN_RDWR);
}

static struct vd_image *fresh(uint64_t size)
{
	struct vd_create_opts o;

	unlink(path);
	vd_create_opts_init(&o);
	o.size_bytes = size;
	assert_int_equal(vd_create(path, &o, NULL), 0);
	return open_rw();
}




static void test_revert_brings_back_the_data(void **state)
{
	struct vd_image *img = fresh(64 * MiB);

	tu_put(img, 0, 4 * MiB, 0xaa);
	assert_int_equal(vd_snapshot_create(img, "base", NULL), 0);
	tu_clean(img);
	tu_put(img, MiB, 64 * 1024, 0xbb);     /* copies one data cluster */
	tu_put(img, 32 * MiB, 4096, 0xcc);     /* allocates a new one */
	tu_put(img, 2 * MiB + 512, 512, 0xdd); /* partial copy-on-write */
	tu_expect(img, MiB, 64 * 1024, 0xbb);
	tu_expect(img, 2 * MiB, 512, 0xaa);
	tu_expect(img, 2 * MiB + 512, 512, 0xdd);
	tu_clean(img);
	assert_int_equal(vd_snapshot_revert(img, "base", NULL), 0);
	tu_clean(img);
	tu_expect(img, 0, 4 * MiB, 0xaa);
	tu_expect(img, 32 * MiB, 4096, 0);
	/* the snapshot stays, and writes after a revert copy again */
	assert_int_equal(vd_snapshot_count(img), 1);
	tu_put(img, 0, 4096, 0xee);
	assert_int_equal(vd_snapshot_revert(img, "base", NULL), 0);
	tu_expect(img, 0, 4096, 0xaa);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
}

struct extents {
	uint64_t off[16], len[16];
	int n;
};

static int collect(void *arg, uint64_t off, uint64_t len)
{
	struct extents *e = arg;

	assert_true(e->n < 16);
	e->off[e->n] = off;
	e->len[e->n] = len;
	e->n++;
	return 0;
}

static void test_diff_lists_the_written_clusters(void **state)
{
	struct vd_image *img = fresh(2048 * MiB);
	struct extents e = {0};

	tu_put(img, 0, MiB, 1);
	assert_int_equal(vd_snapshot_create(img, "s1", NULL), 0);
	tu_put(img, 128 * 1024, 4096, 2);          /* cluster 2 */
	tu_put(img, 1536 * MiB, 3 * 65536, 3);     /* 3 clusters in another L2 table */
	assert_int_equal(vd_snapshot_create(img, "s2", NULL), 0);
	tu_put(img, 64 * MiB, 512, 4);
	assert_int_equal(vd_snapshot_diff(img, "s1", "s2", collect, &e, NULL), 0);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.off[0], 128 * 1024);
	assert_int_equal(e.len[0], 65536);
	assert_int_equal(e.off[1], 1536ull * MiB);
	assert_int_equal(e.len[1], 3 * 65536);
	memset(&e, 0, sizeof(e));
	assert_int_equal(vd_snapshot_diff(img, "s2", NULL, collect, &e, NULL), 0);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.off[0], 64 * MiB);
	memset(&e, 0, sizeof(e));
	assert_int_equal(vd_snapshot_diff(img, "s2", "s2", collect, &e, NULL), 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(vd_snapshot_diff(img, "nope", NULL, collect, &e, NULL), -ENOENT);
	assert_int_equal(vd_close(img), 0);
}

static uint64_t disk_bytes(void)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_blocks * 512ull;
}

static void test_delete_frees_exactly_what_no_one_else_holds(void **state)
{
	struct vd_image *img = fresh(256 * MiB);
	struct vd_snapshot_info si;
	uint64_t before, after;

	tu_put(img, 0, 8 * MiB, 1);
	assert_int_equal(vd_snapshot_create(img, "old", NULL), 0);
	tu_put(img, 0, 4 * MiB, 2);  /* the snapshot alone holds 4 MiB now */
	assert_int_equal(vd_snapshot_get(img, 0, &si), 0);
	assert_string_equal(si.name, "old");
	assert_int_equal(si.referenced_bytes, 8 * MiB);
	/* 4 MiB of data, its own L2 table and its L1 cluster */
	assert_int_equal(si.unique_bytes, 4 * MiB + 2 * 65536);
	assert_int_equal(vd_close(img), 0);
	before = disk_bytes();
	img = open_rw();
	assert_int_equal(vd_snapshot_delete(img, "old", NULL), 0);
	tu_clean(img);
	tu_expect(img, 0, 4 * MiB, 2);
	tu_expect(img, 4 * MiB, 4 * MiB, 1);
	assert_int_equal(vd_snapshot_count(img), 0);
	assert_int_equal(vd_close(img), 0);
	after = disk_bytes();
	assert_true(before - after >= 4 * MiB);
	assert_true(before - after <= 4 * MiB + 4 * 65536);
}

static void test_chains_of_snapshots_stay_independent(void **state)
{
	struct vd_image *img = fresh(64 * MiB);
	char name[8];

	for (int i = 0; i < 5; i++) {
		tu_put(img, (uint64_t)i * MiB, MiB, 0x10 + i);
		tu_put(img, 0, 4096, 0x20 + i);
		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(vd_snapshot_create(img, name, NULL), 0);
	}
	assert_int_equal(vd_snapshot_delete(img, "s1", NULL), 0);
	assert_int_equal(vd_snapshot_delete(img, "s3", NULL), 0);
	tu_clean(img);
	assert_int_equal(vd_snapshot_revert(img, "s2", NULL), 0);
	tu_expect(img, 0, 4096, 0x22);
	tu_expect(img, 2 * MiB, MiB, 0x12);
	tu_expect(img, 3 * MiB, MiB, 0);
	assert_int_equal(vd_snapshot_revert(img, "s0", NULL), 0);
	tu_expect(img, 0, 4096, 0x20);
	tu_expect(img, MiB, MiB, 0);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	assert_int_equal(vd_snapshot_count(img), 3);
	assert_int_equal(vd_snapshot_revert(img, "s4", NULL), 0);
	tu_expect(img, 4 * MiB, MiB, 0x14);
	tu_expect(img, 0, 4096, 0x24);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
}

static void test_snapshot_names_are_checked(void **state)
{
	struct vd_image *img = fresh(MiB);
	struct errmsg err = {{0}};
	char longname[300];

	assert_int_equal(vd_snapshot_create(img, "a", &err), 0);
	assert_int_equal(vd_snapshot_create(img, "a", &err), -EEXIST);
	assert_non_null(strstr(err.msg, "exists"));
	assert_int_equal(vd_snapshot_create(img, "", &err), -EINVAL);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(vd_snapshot_create(img, longname, &err), -EINVAL);
	assert_int_equal(vd_snapshot_delete(img, "b", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no snapshot named 'b'"));
	assert_int_equal(vd_snapshot_revert(img, "b", &err), -ENOENT);
	assert_int_equal(vd_close(img), 0);
	assert_int_equal(vd_open(path, NULL, &img, NULL), 0);
	assert_int_equal(vd_snapshot_create(img, "c", &err), -EROFS);
	assert_int_equal(vd_snapshot_count(img), 1);
	assert_int_equal(vd_close(img), 0);
	unlink(path);
}

/* Review finding: check measured a snapshot's L2 entries against the
 * disk's current size, so a shrink made a valid snapshot look corrupt. */
static void test_check_accepts_snapshots_larger_than_the_disk(void **state)
{
	struct vd_image *img = fresh(16 * MiB);

	tu_put(img, 12 * MiB, MiB, 0x31);
	assert_int_equal(vd_snapshot_create(img, "big", NULL), 0);
	assert_int_equal(vd_discard(img, 8 * MiB, 8 * MiB), 0);
	assert_int_equal(vd_resize(img, 8 * MiB, true, NULL), 0);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	tu_clean(img);
	/* CLI finding: the diff stopped at the disk's current (smaller) size */
	struct extents e = {0};

	assert_int_equal(vd_snapshot_diff(img, "big", NULL, collect, &e, NULL), 0);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.off[0], 12 * MiB);
	assert_int_equal(e.len[0], MiB);
	assert_int_equal(vd_snapshot_delete(img, "big", NULL), 0);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
}

/* 'len' bytes at 'off' of the view all hold 'v'. */
static void view_expect(struct vd_snap_view *view, uint64_t off, uint32_t len, uint8_t v)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(vd_snapshot_view_pread(view, buf, len, off), 0);
	for (uint32_t i = 0; i < len; i++) {
		if (buf[i] != v) {
			fail_msg("byte %u at %llu is 0x%02x, not 0x%02x", i,
				 (unsigned long long)off, buf[i], v);
		}
	}
	free(buf);
}

static void test_view_reads_a_snapshot_as_taken(void **state)
{
	const char *base = "snap-view-base.vd";
	struct vd_create_opts o;
	struct vd_snap_view *view;
	struct vd_image *img, *b;
	uint64_t len;
	bool held;

	unlink(base);
	vd_create_opts_init(&o);
	o.size_bytes = 16 * MiB;
	assert_int_equal(vd_create(base, &o, NULL), 0);
	b = tu_open(base, VD_OPEN_RDWR);
	tu_put(b, 0, 16 * MiB, 0x42);
	assert_int_equal(vd_close(b), 0);
	unlink(path);
	vd_create_opts_init(&o);
	o.backing_path = base;
	assert_int_equal(vd_create(path, &o, NULL), 0);
	img = open_rw();
	tu_put(img, MiB, MiB, 0xaa);
	assert_int_equal(vd_snapshot_create(img, "s", NULL), 0);
	tu_put(img, MiB, 64 * 1024, 0xbb);
	tu_put(img, 4 * MiB, MiB, 0xcc);
	assert_int_equal(vd_write_zeroes(img, 8 * MiB, MiB), 0);
	assert_int_equal(vd_snapshot_view_open(img, "nope", &view, NULL), -ENOENT);
	assert_int_equal(vd_snapshot_view_open(img, "s", &view, NULL), 0);
	assert_int_equal(vd_snapshot_view_size(view), 16 * MiB);
	view_expect(view, 0, MiB, 0x42);	  /* never written: the backing file */
	view_expect(view, MiB, MiB, 0xaa);	  /* not what the disk says now */
	view_expect(view, 4 * MiB, MiB, 0x42);
	view_expect(view, 8 * MiB, MiB, 0x42);
	view_expect(view, MiB + 100, 1000, 0xaa); /* any offset and length */
	assert_int_equal(vd_snapshot_view_extent(view, 0, 16 * MiB, &len, &held), 0);
	assert_false(held);
	assert_int_equal(len, MiB);
	assert_int_equal(vd_snapshot_view_extent(view, MiB, 16 * MiB, &len, &held), 0);
	assert_true(held);
	assert_int_equal(len, MiB);
	assert_int_equal(vd_snapshot_view_extent(view, 16 * MiB, 1, &len, &held), -EINVAL);
	assert_int_equal(vd_snapshot_view_pread(view, &held, 1, 16 * MiB), -EINVAL);
	vd_snapshot_view_close(view);
	tu_expect(img, MiB, 64 * 1024, 0xbb);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	unlink(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revert_brings_back_the_data),
		cmocka_unit_test(test_diff_lists_the_written_clusters),
		cmocka_unit_test(test_delete_frees_exactly_what_no_one_else_holds),
		cmocka_unit_test(test_chains_of_snapshots_stay_independent),
		cmocka_unit_test(test_snapshot_names_are_checked),
		cmocka_unit_test(test_check_accepts_snapshots_larger_than_the_disk),
		cmocka_unit_test(test_view_reads_a_snapshot_as_taken),
	};

	return cmocka_run_group_tests_name("vdisk_snapshot", tests, NULL, NULL);
}
