/* SPDX-License-Identifier: MIT */
/* test_check.c: vd_check finds each kind of damage and --repair fixes what
 * is safe: leaked clusters, refcounts below the references, L2 entries with
 * reserved bits, pointing into metadata or beyond the file, and L1 entries
 * beyond the file.  Damage is made through the internal API, committed, and
 * the image reopened, as a crash or a bug would leave it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "internal.h"
#include "testutil.h"

static const char *path = "check-test.vd";

static struct vd_image *open_rw(void)
{
	struct vd_open_opts oo;
	struct vd_image *img = NULL;

	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	assert_int_equal(vd_open(path, &oo, &img, NULL), 0);
	return img;
}

/* A 16 MiB image whose first 8 clusters hold data 0x42. */
static struct vd_image *fresh(void)
{
	struct vd_create_opts o;
	struct vd_image *img;
	uint8_t *buf = malloc(8 * 65536);

	unlink(path);
	vd_create_opts_init(&o);
	o.size_bytes = 16 << 20;
	assert_int_equal(vd_create(path, &o, NULL), 0);
	img = open_rw();
	memset(buf, 0x42, 8 * 65536);
	assert_int_equal(vd_pwrite(img, buf, 8 * 65536, 0), 0);
	free(buf);
	return img;
}

struct counts {
	int lines;
};

static void count_report(void *arg, const char *sentence)
{
	((struct counts *)arg)->lines++;
	assert_true(strlen(sentence) > 10);
}

static struct vd_check_result run(struct vd_image *img, unsigned flags)
{
	struct vd_check_result r;
	struct counts c = {0};
	struct errmsg err = {{0}};

	assert_int_equal(vd_check(img, flags, &r, count_report, &c, &err), 0);
	assert_true(c.lines >= (int)(r.corruptions + r.leaks));
	return r;
}

static void set_l2(struct vd_image *img, uint64_t g, uint64_t v)
{
	struct vd_mblock *l2;
	uint32_t idx;

	assert_int_equal(vd_l2_lookup(img, g, true, &l2, &idx), 0);
	vd_set64(img, l2, idx, v);
	vd_mblock_put(l2);
}

static void assert_data(struct vd_image *img, uint64_t off, uint8_t v)
{
	uint8_t buf[65536];

	assert_int_equal(vd_pread(img, buf, sizeof(buf), off), 0);
	for (size_t i = 0; i < sizeof(buf); i++) {
		assert_int_equal(buf[i], v);
	}
}

static void test_leaked_cluster_is_found_and_repaired(void **state)
{
	struct vd_image *img = fresh();
	struct vd_check_result r;
	uint64_t c;

	/* a cluster with a refcount that nothing references */
	assert_int_equal(vd_cluster_alloc(img, &c), 0);
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	r = run(img, 0);
	assert_int_equal(r.leaks, 1);
	assert_int_equal(r.corruptions, 0);
	r = run(img, VD_CHECK_REPAIR);
	assert_int_equal(r.leaks_fixed, 1);
	r = run(img, 0);
	assert_int_equal(r.leaks, 0);
	assert_data(img, 0, 0x42);
	assert_int_equal(vd_close(img), 0);
}

static void test_refcount_below_references_is_corruption(void **state)
{
	struct vd_image *img = fresh();
	struct vd_check_result r;
	struct vd_extent ext;

	assert_int_equal(vd_map(img, 0, &ext), 0);
	assert_int_equal(vd_refcount_set(img, ext.host_offset >> 16, 0), 0);
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	r = run(img, 0);
	assert_int_equal(r.corruptions, 1);
	r = run(img, VD_CHECK_REPAIR);
	assert_int_equal(r.corruptions_fixed, 1);
	r = run(img, 0);
	assert_int_equal(r.corruptions, 0);
	assert_int_equal(r.leaks, 0);
	/* the repaired cluster was not handed out again: data intact */
	uint8_t buf[65536];

	memset(buf, 0x99, sizeof(buf));
	assert_int_equal(vd_pwrite(img, buf, sizeof(buf), 1 << 20), 0);
	assert_data(img, 0, 0x42);
	assert_int_equal(vd_close(img), 0);
}

static void test_bad_l2_entries_are_unmapped_by_repair(void **state)
{
	struct vd_image *img = fresh();
	struct vd_check_result r;

	set_l2(img, 1, 0x10000 | 0x4);          /* reserved bit */
	set_l2(img, 2, 0x10000);                /* into the journal */
	set_l2(img, 3, 1ull << 40);             /* beyond the file */
	set_l2(img, 4, 0x10000 | VD_L2_ZERO);   /* zero flag with an offset */
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	r = run(img, 0);
	/* 4 bad entries, and the 4 data clusters they pointed to are leaked */
	assert_int_equal(r.corruptions, 4);
	assert_int_equal(r.leaks, 4);
	assert_int_equal(vd_pread(img, (uint8_t[512]){0}, 512, 65536), -EUCLEAN);
	r = run(img, VD_CHECK_REPAIR);
	assert_int_equal(r.corruptions_fixed, 4);
	assert_int_equal(r.leaks_fixed, 4);
	r = run(img, 0);
	assert_int_equal(r.corruptions + r.leaks, 0);
	assert_data(img, 65536, 0);
	assert_data(img, 0, 0x42);
	assert_data(img, 5 * 65536, 0x42);
	assert_int_equal(vd_close(img), 0);
}

static void test_read_only_check_writes_nothing(void **state)
{
	struct vd_image *img = fresh();
	struct vd_check_result r;
	struct errmsg err = {{0}};
	uint64_t c;

	assert_int_equal(vd_cluster_alloc(img, &c), 0);
	assert_int_equal(vd_close(img), 0);
	assert_int_equal(vd_open(path, NULL, &img, NULL), 0);
	assert_int_equal(vd_check(img, VD_CHECK_REPAIR, &r, NULL, NULL, &err), -EROFS);
	assert_non_null(strstr(err.msg, "read-write"));
	r = run(img, 0);
	assert_int_equal(r.leaks, 1);
	assert_int_equal(vd_close(img), 0);
	unlink(path);
}

/* Review finding: the refcount table never grew, so an image resized far
 * past its creation size failed writes once the file outgrew it. */
static void test_resize_grows_the_refcount_table(void **state)
{
	struct vd_create_opts o;
	struct vd_image *img;
	uint32_t before;
	uint8_t buf[4096];

	unlink(path);
	vd_create_opts_init(&o);
	o.size_bytes = 4 << 20;
	o.cluster_bytes = 4096;
	assert_int_equal(vd_create(path, &o, NULL), 0);
	img = open_rw();
	before = img->hdr.refcount_table_clusters;
	assert_int_equal(vd_resize(img, 64ull << 30, false, NULL), 0);
	assert_true(img->hdr.refcount_table_clusters > before);
	/* it covers four times the new guest clusters */
	assert_true((uint64_t)img->hdr.refcount_table_clusters * 512 * 2048 >= 4 * (16ull << 20));
	memset(buf, 0x5c, sizeof(buf));
	assert_int_equal(vd_pwrite(img, buf, sizeof(buf), (64ull << 30) - 4096), 0);
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	struct vd_check_result r = run(img, 0);

	assert_int_equal(r.corruptions + r.leaks, 0);
	assert_int_equal(vd_pread(img, buf, sizeof(buf), (64ull << 30) - 4096), 0);
	assert_int_equal(buf[100], 0x5c);
	assert_int_equal(vd_close(img), 0);
	unlink(path);
}

/* Fuzzer finding: a damaged header with snapshot_count 0 but a stale
 * table offset pointing at guest data made the next snapshot free that data
 * as the "old table". */
static void test_stale_snapshot_table_offset_frees_nothing(void **state)
{
	struct vd_image *img = fresh();
	struct vd_extent e;
	uint8_t buf[512];

	assert_int_equal(vd_map(img, 0, &e), 0);
	img->hdr.snapshot_table_offset = e.host_offset;
	img->hdr.snapshot_table_bytes = 4096;
	img->hdr.snapshot_count = 0;
	vd_header_changed(img);
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	assert_int_equal(vd_snapshot_create(img, "s", NULL), 0);
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	assert_int_equal(vd_pread(img, buf, sizeof(buf), 0), 0);
	assert_int_equal(buf[0], 0x42);
	assert_int_equal(buf[511], 0x42);
	assert_int_equal(vd_close(img), 0);
	unlink(path);
}

static void poke64(uint64_t off, uint64_t v)
{
	int fd = open(path, O_RDWR);

	v = htole64(v);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &v, 8, (off_t)off), 8);
	close(fd);
}

static uint64_t file_bytes(void)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* Closes 'img' and makes refcount table entry 'entry' point at 'target'
 * in the file, as a bit flip or a bug would; returns the image reopened. */
static struct vd_image *damage_reftable(struct vd_image *img, uint64_t entry, uint64_t target)
{
	uint64_t rt = img->hdr.refcount_table_offset;

	assert_int_equal(vd_close(img), 0);
	poke64(rt + entry * 8, target);
	return open_rw();
}

/* Issue 11: the last refcount table entry aliased to the first block.
 * Repair zeroed the refcounts of the header, journal, L1 and data through
 * the alias, the file grew to 16 TiB and new writes reused live clusters. */
static void test_issue11_aliased_refcount_block_is_rebuilt(void **state)
{
	struct vd_image *img = fresh();
	uint64_t last = img->rt_blk->bytes / 8 - 1, size;
	struct vd_check_result r;

	img = damage_reftable(img, last, vd_get64(img->rt_blk, 0));
	size = file_bytes();
	r = run(img, 0);
	assert_true(r.corruptions >= 1);
	r = run(img, VD_CHECK_REPAIR);
	assert_int_equal(r.corruptions_fixed, r.corruptions);
	r = run(img, 0);
	assert_int_equal(r.corruptions + r.leaks, 0);
	assert_true(file_bytes() < size + (1 << 20));
	for (int i = 0; i < 8; i++) {
		assert_data(img, i * 65536ull, 0x42);
	}
	tu_put(img, 8 << 20, 2 << 20, 0x77);
	for (int i = 0; i < 8; i++) {
		assert_data(img, i * 65536ull, 0x42);
	}
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	tu_clean(img);
	tu_expect(img, 0, 8 * 65536, 0x42);
	tu_expect(img, 8 << 20, 2 << 20, 0x77);
	assert_true(file_bytes() < size + (4 << 20));
	assert_int_equal(vd_close(img), 0);
	unlink(path);
}

/* Issue 11: the free map trusted the alias's refcounts of clusters 16 TiB
 * away and moved the end of the image there, so the next run of clusters
 * appended (a snapshot's L1 table) grew the file to 16 TiB. */
static void test_issue11_aliased_refcounts_do_not_grow_the_file(void **state)
{
	struct vd_image *img = fresh();
	uint64_t last = img->rt_blk->bytes / 8 - 1;

	img = damage_reftable(img, last, vd_get64(img->rt_blk, 0));
	tu_put(img, 8 << 20, 2 << 20, 0x77);
	assert_true(file_bytes() < (64 << 20));
	assert_int_equal(vd_snapshot_create(img, "s", NULL), 0);
	assert_true(file_bytes() < (64 << 20));
	tu_expect(img, 0, 8 * 65536, 0x42);
	assert_int_equal(vd_close(img), 0);
	unlink(path);
}

/* A refcount block that lands on guest data: the table entry is what is
 * wrong (rule 1 of check.c), so the data stays and the refcounts move. */
static void test_refcount_block_on_guest_data_keeps_the_data(void **state)
{
	struct vd_image *img = fresh();
	struct vd_check_result r;
	struct vd_extent e;

	assert_int_equal(vd_map(img, 3 * 65536, &e), 0);
	img = damage_reftable(img, 1, e.host_offset);
	r = run(img, 0);
	assert_true(r.corruptions >= 1);
	r = run(img, VD_CHECK_REPAIR);
	r = run(img, 0);
	assert_int_equal(r.corruptions + r.leaks, 0);
	tu_expect(img, 0, 8 * 65536, 0x42);
	tu_put(img, 1 << 20, 4 << 20, 0x55);
	tu_expect(img, 0, 8 * 65536, 0x42);
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	tu_clean(img);
	tu_expect(img, 0, 8 * 65536, 0x42);
	tu_expect(img, 1 << 20, 4 << 20, 0x55);
	assert_int_equal(vd_close(img), 0);
	unlink(path);
}

/* Issue 11: an invalid refcount table entry made every read-write open
 * fail with "run 'vdisk check --repair'", which opens read-write too.  The
 * image now opens, allocates nothing the entry covers, and repair rebuilds
 * the table. */
static void test_issue11_invalid_refcount_entry_can_be_repaired(void **state)
{
	struct vd_image *img = fresh();
	struct vd_check_result r;

	img = damage_reftable(img, 0, vd_get64(img->rt_blk, 0) | 0x200);
	r = run(img, 0);
	assert_true(r.corruptions >= 1);
	/* every cluster is covered by the damaged entry 0: nothing to take */
	assert_int_equal(vd_pwrite(img, (uint8_t[65536]){0}, 65536, 8 << 20), -EUCLEAN);
	r = run(img, VD_CHECK_REPAIR);
	assert_int_equal(r.corruptions_fixed, r.corruptions);
	r = run(img, 0);
	assert_int_equal(r.corruptions + r.leaks, 0);
	tu_put(img, 8 << 20, 1 << 20, 0x66);
	tu_expect(img, 0, 8 * 65536, 0x42);
	assert_int_equal(vd_close(img), 0);
	img = open_rw();
	tu_clean(img);
	tu_expect(img, 0, 8 * 65536, 0x42);
	tu_expect(img, 8 << 20, 1 << 20, 0x66);
	assert_int_equal(vd_close(img), 0);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaked_cluster_is_found_and_repaired),
		cmocka_unit_test(test_refcount_below_references_is_corruption),
		cmocka_unit_test(test_bad_l2_entries_are_unmapped_by_repair),
		cmocka_unit_test(test_read_only_check_writes_nothing),
		cmocka_unit_test(test_resize_grows_the_refcount_table),
		cmocka_unit_test(test_stale_snapshot_table_offset_frees_nothing),
		cmocka_unit_test(test_issue11_aliased_refcount_block_is_rebuilt),
		cmocka_unit_test(test_issue11_aliased_refcounts_do_not_grow_the_file),
		cmocka_unit_test(test_refcount_block_on_guest_data_keeps_the_data),
		cmocka_unit_test(test_issue11_invalid_refcount_entry_can_be_repaired),
	};

	return cmocka_run_group_tests_name("vdisk_check", tests, NULL, NULL);
}
