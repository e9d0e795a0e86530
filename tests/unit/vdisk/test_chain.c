/* SPDX-License-Identifier: MIT */
/* test_chain.c: linked clones and size changes: reads fall through the
 * chain, writes copy up without touching the template, discard on a clone
 * hides the template, commit/rebase/flatten keep the guest's view, resize
 * grows and refuses to drop data, and a template in use cannot be written. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "vdisk.h"

#define MiB (1u << 20)


static void mk(const char *path, uint64_t size, uint32_t cluster, const char *backing)
{
	struct vd_create_opts o;
	struct errmsg err = {{0}};

	unlink(path);
	vd_create_opts_init(&o);
	o.size_bytes = size;
	o.cluster_bytes = cluster;
	o.backing_path = backing;
	if (vd_create(path, &o, &err) != 0) {
		fail_msg("create %s: %s", path, err.msg);
	}
}





/* base.vd: 8 MiB with 0x11 in the first 4 MiB */
static void make_template(void)
{
	struct vd_image *t;

	mk("base.vd", 8 * MiB, 0, NULL);
	t = tu_open("base.vd", VD_OPEN_RDWR);
	tu_put(t, 0, 4 * MiB, 0x11);
	assert_int_equal(vd_close(t), 0);
}

static void test_clone_reads_through_and_copies_up(void **state)
{
	struct vd_image *c, *t;
	struct vd_extent e;
	struct vd_info info;

	make_template();
	mk("clone.vd", 0, 4096, "base.vd");   /* size from the template, smaller clusters */
	c = tu_open("clone.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_size_bytes(c), 8 * MiB);
	assert_string_equal(vd_backing_path(c), "base.vd");
	tu_expect(c, 0, 4 * MiB, 0x11);
	tu_expect(c, 4 * MiB, 4 * MiB, 0);
	tu_put(c, MiB + 512, 512, 0x22);          /* partial: rest copied from base */
	tu_expect(c, MiB, 512, 0x11);
	tu_expect(c, MiB + 512, 512, 0x22);
	tu_expect(c, MiB + 1024, 3072, 0x11);
	assert_int_equal(vd_map(c, 0, &e), 0);
	assert_int_equal(e.state, VD_EXTENT_BACKING);
	assert_int_equal(e.length, MiB);
	assert_int_equal(vd_get_info(c, &info), 0);
	assert_int_equal(info.chain_depth, 1);
	assert_int_equal(info.allocated_bytes, 4096);
	/* the template is read-locked: nobody may write it under the clone */
	struct vd_open_opts oo;
	struct errmsg err = {{0}};

	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	assert_int_equal(vd_open("base.vd", &oo, &t, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "in use by process"));
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
	t = tu_open("base.vd", 0);
	tu_expect(t, MiB, 4096, 0x11);
	assert_int_equal(vd_close(t), 0);
}

static void test_discard_on_a_clone_hides_the_template(void **state)
{
	struct vd_image *c;

	make_template();
	mk("clone.vd", 0, 0, "base.vd");
	c = tu_open("clone.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_discard(c, 0, MiB), 0);
	assert_int_equal(vd_write_zeroes(c, 2 * MiB + 4096, 8192), 0);
	tu_expect(c, 0, MiB, 0);
	tu_expect(c, MiB, MiB, 0x11);
	tu_expect(c, 2 * MiB, 4096, 0x11);
	tu_expect(c, 2 * MiB + 4096, 8192, 0);
	tu_expect(c, 2 * MiB + 12288, 4096, 0x11);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
}

static void test_chains_of_three_and_commit(void **state)
{
	struct vd_image *c, *m;

	make_template();
	mk("mid.vd", 0, 0, "base.vd");
	m = tu_open("mid.vd", VD_OPEN_RDWR);
	tu_put(m, 2 * MiB, MiB, 0x33);
	assert_int_equal(vd_close(m), 0);
	mk("top.vd", 0, 0, "mid.vd");
	c = tu_open("top.vd", VD_OPEN_RDWR);
	tu_put(c, 6 * MiB, 65536, 0x44);
	assert_int_equal(vd_write_zeroes(c, 0, 65536), 0);
	tu_expect(c, 0, 65536, 0);
	tu_expect(c, 65536, MiB, 0x11);
	tu_expect(c, 2 * MiB, MiB, 0x33);
	tu_expect(c, 6 * MiB, 65536, 0x44);
	/* commit top into mid: mid now holds it, top reads through */
	assert_int_equal(vd_commit(c, NULL), 0);
	struct vd_info info;

	assert_int_equal(vd_get_info(c, &info), 0);
	assert_int_equal(info.allocated_bytes, 0);
	assert_int_equal(info.chain_depth, 2);
	tu_expect(c, 0, 65536, 0);
	tu_expect(c, 6 * MiB, 65536, 0x44);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
	m = tu_open("mid.vd", 0);
	tu_expect(m, 6 * MiB, 65536, 0x44);
	tu_expect(m, 0, 65536, 0);
	tu_expect(m, 65536, 4096, 0x11);
	tu_clean(m);
	assert_int_equal(vd_close(m), 0);
}

static void test_rebase_and_flatten_keep_the_guest_view(void **state)
{
	struct vd_image *c, *o;

	make_template();
	mk("other.vd", 8 * MiB, 0, NULL);
	o = tu_open("other.vd", VD_OPEN_RDWR);
	tu_put(o, 0, MiB, 0x11);      /* same as base in the first MiB only */
	tu_put(o, 5 * MiB, MiB, 0x55);
	assert_int_equal(vd_close(o), 0);
	mk("clone.vd", 0, 0, "base.vd");
	c = tu_open("clone.vd", VD_OPEN_RDWR);
	tu_put(c, 7 * MiB, 4096, 0x77);
	assert_int_equal(vd_rebase(c, "other.vd", false, NULL), 0);
	assert_string_equal(vd_backing_path(c), "other.vd");
	tu_expect(c, 0, 4 * MiB, 0x11);
	tu_expect(c, 4 * MiB, MiB, 0);
	tu_expect(c, 5 * MiB, MiB, 0);       /* other's 0x55 copied over by zeros */
	tu_expect(c, 7 * MiB, 4096, 0x77);
	tu_clean(c);
	/* unsafe: only the pointer changes, so other's data now shows */
	assert_int_equal(vd_close(c), 0);
	mk("clone2.vd", 0, 0, "base.vd");
	c = tu_open("clone2.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_rebase(c, "other.vd", true, NULL), 0);
	tu_expect(c, 5 * MiB, MiB, 0x55);
	tu_expect(c, 2 * MiB, MiB, 0);
	assert_int_equal(vd_flatten(c, NULL), 0);
	assert_null(vd_backing_path(c));
	assert_int_equal(vd_close(c), 0);
	unlink("other.vd");
	c = tu_open("clone2.vd", 0);
	tu_expect(c, 0, MiB, 0x11);
	tu_expect(c, 5 * MiB, MiB, 0x55);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
}

static void test_missing_backing_file_is_a_clear_error(void **state)
{
	struct vd_image *c = NULL;
	struct errmsg err = {{0}};
	struct vd_create_opts o;

	make_template();
	mk("clone.vd", 0, 0, "base.vd");
	unlink("base.vd");
	assert_int_equal(vd_open("clone.vd", NULL, &c, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "clone.vd: cannot open backing file"));
	assert_null(c);
	vd_create_opts_init(&o);
	o.backing_path = "nope.vd";
	unlink("c3.vd");
	assert_int_equal(vd_create("c3.vd", &o, &err), -ENOENT);
	assert_int_equal(access("c3.vd", F_OK), -1);
}

static void test_resize_grows_and_refuses_to_drop_data(void **state)
{
	struct vd_image *img;
	struct errmsg err = {{0}};

	mk("r.vd", 16 * MiB, 4096, NULL);   /* 4K clusters: one L1 cluster covers 1 GiB */
	img = tu_open("r.vd", VD_OPEN_RDWR);
	tu_put(img, 15 * MiB, MiB, 0x66);
	assert_int_equal(vd_resize(img, 4096ull * MiB, false, &err), 0);   /* moves the L1 */
	assert_int_equal(vd_size_bytes(img), 4096ull * MiB);
	tu_expect(img, 15 * MiB, MiB, 0x66);
	tu_expect(img, 3000ull * MiB, MiB, 0);
	tu_put(img, 4095ull * MiB, MiB, 0x67);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	img = tu_open("r.vd", VD_OPEN_RDWR);
	tu_expect(img, 4095ull * MiB, MiB, 0x67);
	assert_int_equal(vd_resize(img, 8 * MiB, false, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--shrink"));
	assert_int_equal(vd_resize(img, 8 * MiB, true, &err), -ENOTEMPTY);
	assert_non_null(strstr(err.msg, "beyond the new end"));
	assert_int_equal(vd_discard(img, 8 * MiB, 4088ull * MiB), 0);
	assert_int_equal(vd_resize(img, 8 * MiB, true, &err), 0);
	assert_int_equal(vd_size_bytes(img), 8 * MiB);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	img = tu_open("r.vd", 0);
	assert_int_equal(vd_size_bytes(img), 8 * MiB);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
}

/* Review finding: a safe rebase of a standalone image onto a backing file
 * copied nothing, so the new backing file's data showed through. */
static void test_safe_rebase_from_none_keeps_zeros(void **state)
{
	struct vd_image *c, *o;

	mk("other.vd", 8 * MiB, 0, NULL);
	o = tu_open("other.vd", VD_OPEN_RDWR);
	tu_put(o, 0, 2 * MiB, 0x55);
	assert_int_equal(vd_close(o), 0);
	mk("alone.vd", 8 * MiB, 0, NULL);
	c = tu_open("alone.vd", VD_OPEN_RDWR);
	tu_put(c, MiB, 4096, 0x12);
	assert_int_equal(vd_rebase(c, "other.vd", false, NULL), 0);
	tu_expect(c, 0, MiB, 0);
	tu_expect(c, MiB, 4096, 0x12);
	tu_expect(c, MiB + 4096, MiB - 4096, 0);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
}

/* Review finding: flattening a clone larger than its backing image left
 * stale bytes where the backing image ends. */
static void test_flatten_of_a_clone_larger_than_its_template(void **state)
{
	struct vd_image *c;

	make_template();                     /* 8 MiB, 0x11 in the first 4 */
	mk("big.vd", 16 * MiB, 0, "base.vd");
	c = tu_open("big.vd", VD_OPEN_RDWR);
	tu_put(c, 12 * MiB, 4096, 0x13);
	assert_int_equal(vd_flatten(c, NULL), 0);
	tu_expect(c, 0, 4 * MiB, 0x11);
	tu_expect(c, 4 * MiB, 8 * MiB, 0);
	tu_expect(c, 12 * MiB, 4096, 0x13);
	tu_expect(c, 12 * MiB + 4096, 4 * MiB - 4096, 0);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
}

/* Review finding: commit, rebase and flatten changed what the clone's
 * snapshots read; they are refused while snapshots exist. */
static void test_chain_operations_refuse_images_with_snapshots(void **state)
{
	struct vd_image *c;
	struct errmsg err = {{0}};

	make_template();
	mk("clone.vd", 0, 0, "base.vd");
	c = tu_open("clone.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_snapshot_create(c, "s", NULL), 0);
	assert_int_equal(vd_commit(c, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "snapshots"));
	assert_int_equal(vd_flatten(c, &err), -EBUSY);
	assert_int_equal(vd_rebase(c, NULL, false, &err), -EBUSY);
	assert_string_equal(vd_backing_path(c), "base.vd");
	tu_expect(c, 0, MiB, 0x11);
	assert_int_equal(vd_close(c), 0);
}

/* Review finding: committing into a smaller backing image that has its own
 * backing image exposed the grandparent's data past the old end. */
static void test_commit_into_a_smaller_backing_image_keeps_zeros(void **state)
{
	struct vd_image *c, *g;

	mk("grand.vd", 16 * MiB, 0, NULL);
	g = tu_open("grand.vd", VD_OPEN_RDWR);
	tu_put(g, 0, 16 * MiB, 0x21);
	assert_int_equal(vd_close(g), 0);
	mk("small.vd", 8 * MiB, 0, "grand.vd");
	mk("top.vd", 16 * MiB, 0, "small.vd");
	c = tu_open("top.vd", VD_OPEN_RDWR);
	tu_expect(c, 10 * MiB, MiB, 0);
	tu_put(c, 0, 4096, 0x22);
	assert_int_equal(vd_commit(c, NULL), 0);
	tu_expect(c, 0, 4096, 0x22);
	tu_expect(c, 4096, 4096, 0x21);
	tu_expect(c, 8 * MiB, 8 * MiB, 0);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
}

/* CLI finding: a clone whose template moved could not be repaired with an
 * unsafe rebase, because opening it opened the (missing) chain. */
static void test_unsafe_rebase_repairs_a_moved_template(void **state)
{
	struct vd_image *c;
	uint8_t buf[4096];

	make_template();
	mk("clone.vd", 0, 0, "base.vd");
	assert_int_equal(rename("base.vd", "moved.vd"), 0);
	c = tu_open("clone.vd", VD_OPEN_RDWR | VD_OPEN_NO_BACKING);
	/* nothing to read through: an error, never silent zeros */
	assert_int_equal(vd_pread(c, buf, sizeof(buf), 0), -ENOLINK);
	assert_int_equal(vd_pwrite(c, buf, 512, 0), -ENOLINK);
	assert_int_equal(vd_rebase(c, "moved.vd", true, NULL), 0);
	assert_int_equal(vd_close(c), 0);
	c = tu_open("clone.vd", 0);
	tu_expect(c, 0, MiB, 0x11);
	assert_int_equal(vd_close(c), 0);
	unlink("moved.vd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clone_reads_through_and_copies_up),
		cmocka_unit_test(test_discard_on_a_clone_hides_the_template),
		cmocka_unit_test(test_chains_of_three_and_commit),
		cmocka_unit_test(test_rebase_and_flatten_keep_the_guest_view),
		cmocka_unit_test(test_missing_backing_file_is_a_clear_error),
		cmocka_unit_test(test_resize_grows_and_refuses_to_drop_data),
		cmocka_unit_test(test_safe_rebase_from_none_keeps_zeros),
		cmocka_unit_test(test_flatten_of_a_clone_larger_than_its_template),
		cmocka_unit_test(test_chain_operations_refuse_images_with_snapshots),
		cmocka_unit_test(test_commit_into_a_smaller_backing_image_keeps_zeros),
		cmocka_unit_test(test_unsafe_rebase_repairs_a_moved_template),
	};

	return cmocka_run_group_tests_name("vdisk_chain", tests, NULL, NULL);
}
