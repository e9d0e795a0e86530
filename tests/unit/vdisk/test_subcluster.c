/* SPDX-License-Identifier: MIT */
/* test_subcluster.c: images with subclusters (extended L2 entries): a
 * write into a fresh cluster or a clone fills only the subclusters it
 * touches, untouched ones read zeros or the template, discard and
 * write-zeroes work per subcluster, snapshots, clones, commit, rebase,
 * flatten and resize work, check finds impossible bitmaps, and a random mix
 * of operations reads the same as on an image without subclusters (the
 * oracle). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "testutil.h"
#include "vdisk.h"

#define KiB 1024u
#define MiB (1u << 20)
#define CB (128u * KiB)
/* File names start with sct-: meson runs the test programs in parallel in
 * one directory. */

static void mk(const char *path, uint64_t size, uint32_t cluster, bool sc, const char *backing)
{
	struct vd_create_opts o;
	struct errmsg err = {{0}};

	unlink(path);
	vd_create_opts_init(&o);
	o.size_bytes = size;
	o.cluster_bytes = cluster;
	o.subclusters = sc;
	o.backing_path = backing;
	if (vd_create(path, &o, &err) != 0) {
		fail_msg("create %s: %s", path, err.msg);
	}
}

static uint64_t allocated(struct vd_image *img)
{
	struct vd_info info;

	assert_int_equal(vd_get_info(img, &info), 0);
	return info.allocated_bytes;
}

/* tmpl.vd: 8 MiB, 64 KiB clusters, 0x11 in the first 4 MiB */
static void make_template(bool sc)
{
	struct vd_image *t;

	mk("sct-tmpl.vd", 8 * MiB, sc ? CB : 0, sc, NULL);
	t = tu_open("sct-tmpl.vd", VD_OPEN_RDWR);
	tu_put(t, 0, 4 * MiB, 0x11);
	assert_int_equal(vd_close(t), 0);
}

static void test_create_and_info(void **state)
{
	struct vd_create_opts o;
	struct vd_image *img;
	struct vd_info info;
	struct errmsg err = {{0}};

	(void)state;
	mk("sct-sc.vd", 64 * MiB, 0, true, NULL);
	img = tu_open("sct-sc.vd", 0);
	assert_int_equal(vd_get_info(img, &info), 0);
	assert_int_equal(info.cluster_bytes, CB);
	assert_int_equal(info.subcluster_bytes, 4 * KiB);
	assert_true(info.incompat_features & VD_INCOMPAT_SUBCLUSTERS);
	assert_int_equal(vd_close(img), 0);
	/* 64 KiB clusters would make 2 KiB subclusters */
	unlink("sct-bad.vd");
	vd_create_opts_init(&o);
	o.size_bytes = MiB;
	o.cluster_bytes = 64 * KiB;
	o.subclusters = true;
	assert_int_equal(vd_create("sct-bad.vd", &o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "subclusters"));
	assert_int_equal(access("sct-bad.vd", F_OK), -1);
	/* a preallocated image maps every subcluster, reading zeros */
	unlink("sct-pre.vd");
	o.cluster_bytes = 0;
	o.prealloc = VD_PREALLOC_METADATA;
	assert_int_equal(vd_create("sct-pre.vd", &o, &err), 0);
	img = tu_open("sct-pre.vd", VD_OPEN_RDWR);
	assert_int_equal(allocated(img), MiB);
	tu_expect(img, 0, MiB, 0);
	tu_put(img, 4096, 512, 0x5a);
	tu_expect(img, 4096, 512, 0x5a);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	unlink("sct-pre.vd");
	unlink("sct-sc.vd");
}

static void test_fresh_write_fills_only_touched_subclusters(void **state)
{
	struct vd_image *img;
	struct vd_extent e;

	(void)state;
	mk("sct-sc.vd", 8 * MiB, 0, true, NULL);
	img = tu_open("sct-sc.vd", VD_OPEN_RDWR);
	tu_put(img, CB + 8 * KiB, 4 * KiB, 0x22);
	assert_int_equal(allocated(img), 4 * KiB);
	tu_expect(img, CB, 8 * KiB, 0);
	tu_expect(img, CB + 8 * KiB, 4 * KiB, 0x22);
	tu_expect(img, CB + 12 * KiB, CB - 12 * KiB, 0);
	assert_int_equal(vd_map(img, CB, &e), 0);
	assert_int_equal(e.state, VD_EXTENT_UNALLOCATED);
	assert_int_equal(e.length, 8 * KiB);
	assert_int_equal(vd_map(img, CB + 8 * KiB, &e), 0);
	assert_int_equal(e.state, VD_EXTENT_DATA);
	assert_int_equal(e.length, 4 * KiB);
	/* a partial subcluster in the same cluster: filled, the rest zeros */
	tu_put(img, CB + 64 * KiB + 512, 512, 0x33);
	assert_int_equal(allocated(img), 8 * KiB);
	tu_expect(img, CB + 64 * KiB, 512, 0);
	tu_expect(img, CB + 64 * KiB + 512, 512, 0x33);
	tu_expect(img, CB + 64 * KiB + 1024, 3 * KiB, 0);
	/* in place over an allocated one */
	tu_put(img, CB + 8 * KiB + 1024, 1024, 0x44);
	tu_expect(img, CB + 8 * KiB, 1024, 0x22);
	tu_expect(img, CB + 8 * KiB + 1024, 1024, 0x44);
	assert_int_equal(allocated(img), 8 * KiB);
	/* a write across two clusters and several subclusters */
	tu_put(img, 3 * CB - 6 * KiB, 20 * KiB, 0x55);
	tu_expect(img, 3 * CB - 6 * KiB, 20 * KiB, 0x55);
	tu_expect(img, 3 * CB - 8 * KiB, 2 * KiB, 0);
	tu_expect(img, 3 * CB + 14 * KiB, 2 * KiB, 0);
	assert_int_equal(allocated(img), 8 * KiB + 24 * KiB);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	img = tu_open("sct-sc.vd", 0);
	tu_expect(img, CB + 8 * KiB + 1024, 1024, 0x44);
	tu_expect(img, CB + 64 * KiB + 512, 512, 0x33);
	tu_expect(img, 3 * CB - 6 * KiB, 20 * KiB, 0x55);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	unlink("sct-sc.vd");
}

static void test_clone_write_copies_up_only_partial_subclusters(void **state)
{
	struct vd_image *c;
	struct vd_extent e;

	(void)state;
	make_template(false);
	mk("sct-clone.vd", 0, 0, true, "sct-tmpl.vd");
	c = tu_open("sct-clone.vd", VD_OPEN_RDWR);
	tu_put(c, MiB + 4 * KiB, 4 * KiB, 0x22);
	assert_int_equal(allocated(c), 4 * KiB);
	tu_expect(c, MiB, 4 * KiB, 0x11);
	tu_expect(c, MiB + 4 * KiB, 4 * KiB, 0x22);
	tu_expect(c, MiB + 8 * KiB, CB - 8 * KiB, 0x11);
	assert_int_equal(vd_map(c, MiB, &e), 0);
	assert_int_equal(e.state, VD_EXTENT_BACKING);
	assert_int_equal(e.length, 4 * KiB);
	/* 512 bytes: one subcluster copied up from the template */
	tu_put(c, MiB + 64 * KiB + 512, 512, 0x33);
	assert_int_equal(allocated(c), 8 * KiB);
	tu_expect(c, MiB + 64 * KiB, 512, 0x11);
	tu_expect(c, MiB + 64 * KiB + 512, 512, 0x33);
	tu_expect(c, MiB + 64 * KiB + 1024, 3 * KiB, 0x11);
	/* beyond the template's data: zeros around the write */
	tu_put(c, 6 * MiB + 100 * 512, 512, 0x44);
	tu_expect(c, 6 * MiB + 96 * 512, 4 * 512, 0);
	tu_expect(c, 6 * MiB + 100 * 512, 512, 0x44);
	tu_expect(c, 6 * MiB + 101 * 512, 3 * 512, 0);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
	c = tu_open("sct-clone.vd", 0);
	tu_expect(c, MiB, 4 * KiB, 0x11);
	tu_expect(c, MiB + 4 * KiB, 4 * KiB, 0x22);
	tu_expect(c, MiB + 64 * KiB + 512, 512, 0x33);
	tu_expect(c, MiB + 64 * KiB + 1024, 3 * KiB, 0x11);
	assert_int_equal(vd_close(c), 0);
	c = tu_open("sct-tmpl.vd", 0);
	tu_expect(c, 0, 4 * MiB, 0x11);
	assert_int_equal(vd_close(c), 0);
	unlink("sct-clone.vd");
	unlink("sct-tmpl.vd");
}

static void test_discard_and_write_zeroes_per_subcluster(void **state)
{
	struct vd_image *img, *c;

	(void)state;
	mk("sct-sc.vd", 8 * MiB, 0, true, NULL);
	img = tu_open("sct-sc.vd", VD_OPEN_RDWR);
	tu_put(img, 0, CB, 0x22);
	assert_int_equal(allocated(img), CB);
	/* whole subclusters 1-2 go, the partial ones around stay */
	assert_int_equal(vd_discard(img, 4 * KiB - 512, 8 * KiB + 1024), 0);
	assert_int_equal(allocated(img), CB - 8 * KiB);
	tu_expect(img, 0, 4 * KiB, 0x22);
	tu_expect(img, 4 * KiB, 8 * KiB, 0);
	tu_expect(img, 12 * KiB, CB - 12 * KiB, 0x22);
	/* write-zeroes also zeroes the partial ones */
	assert_int_equal(vd_write_zeroes(img, 20 * KiB - 512, 8 * KiB + 1024), 0);
	tu_expect(img, 16 * KiB, 4 * KiB - 512, 0x22);
	tu_expect(img, 20 * KiB - 512, 8 * KiB + 1024, 0);
	tu_expect(img, 28 * KiB + 512, 4 * KiB - 512, 0x22);
	assert_int_equal(allocated(img), CB - 16 * KiB);
	/* the last allocated subcluster gone: the host cluster is freed */
	assert_int_equal(vd_discard(img, 0, 4 * KiB), 0);
	assert_int_equal(vd_discard(img, 12 * KiB, CB - 12 * KiB), 0);
	assert_int_equal(allocated(img), 0);
	tu_expect(img, 0, CB, 0);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	unlink("sct-sc.vd");

	/* in a clone, unmapped subclusters hide the template */
	make_template(false);
	mk("sct-clone.vd", 0, 0, true, "sct-tmpl.vd");
	c = tu_open("sct-clone.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_write_zeroes(c, 2 * MiB + 4 * KiB, 8 * KiB), 0);
	assert_int_equal(vd_discard(c, 3 * MiB + 512, 16 * KiB), 0);
	assert_int_equal(allocated(c), 0);
	tu_expect(c, 2 * MiB, 4 * KiB, 0x11);
	tu_expect(c, 2 * MiB + 4 * KiB, 8 * KiB, 0);
	tu_expect(c, 2 * MiB + 12 * KiB, 4 * KiB, 0x11);
	tu_expect(c, 3 * MiB, 4 * KiB, 0x11);
	tu_expect(c, 3 * MiB + 4 * KiB, 12 * KiB, 0);
	tu_expect(c, 3 * MiB + 16 * KiB, 4 * KiB, 0x11);
	/* a write into a zero subcluster merges with zeros, not the template */
	tu_put(c, 2 * MiB + 4 * KiB + 512, 512, 0x66);
	tu_expect(c, 2 * MiB + 4 * KiB, 512, 0);
	tu_expect(c, 2 * MiB + 4 * KiB + 512, 512, 0x66);
	tu_expect(c, 2 * MiB + 5 * KiB, 3 * KiB, 0);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
	unlink("sct-clone.vd");
	unlink("sct-tmpl.vd");
}

static void test_snapshots_keep_their_subclusters(void **state)
{
	struct vd_snap_view *v;
	struct vd_image *img;
	uint8_t buf[4096];

	(void)state;
	make_template(false);
	mk("sct-clone.vd", 0, 0, true, "sct-tmpl.vd");
	img = tu_open("sct-clone.vd", VD_OPEN_RDWR);
	tu_put(img, 8 * KiB, 4 * KiB, 0x22);
	assert_int_equal(vd_snapshot_create(img, "s1", NULL), 0);
	/* the shared cluster is copied whole, as the guest sees it */
	tu_put(img, 8 * KiB + 512, 512, 0x33);
	tu_put(img, 64 * KiB, 4 * KiB, 0x44);
	tu_expect(img, 0, 8 * KiB, 0x11);
	tu_expect(img, 8 * KiB, 512, 0x22);
	tu_expect(img, 8 * KiB + 512, 512, 0x33);
	tu_expect(img, 8 * KiB + 1024, 3 * KiB, 0x22);
	tu_expect(img, 12 * KiB, 52 * KiB, 0x11);
	tu_expect(img, 64 * KiB, 4 * KiB, 0x44);
	assert_int_equal(vd_snapshot_view_open(img, "s1", &v, NULL), 0);
	assert_int_equal(vd_snapshot_view_pread(v, buf, sizeof(buf), 8 * KiB), 0);
	for (size_t i = 0; i < sizeof(buf); i++) {
		assert_int_equal(buf[i], 0x22);
	}
	assert_int_equal(vd_snapshot_view_pread(v, buf, sizeof(buf), 64 * KiB), 0);
	for (size_t i = 0; i < sizeof(buf); i++) {
		assert_int_equal(buf[i], 0x11);
	}
	vd_snapshot_view_close(v);
	tu_clean(img);
	assert_int_equal(vd_snapshot_revert(img, "s1", NULL), 0);
	tu_expect(img, 8 * KiB, 4 * KiB, 0x22);
	tu_expect(img, 64 * KiB, 4 * KiB, 0x11);
	tu_clean(img);
	assert_int_equal(vd_snapshot_delete(img, "s1", NULL), 0);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	unlink("sct-clone.vd");
	unlink("sct-tmpl.vd");
}

static void test_clone_of_a_template_with_subclusters(void **state)
{
	struct vd_image *t, *c;

	(void)state;
	mk("sct-tmpl.vd", 8 * MiB, 0, true, NULL);
	t = tu_open("sct-tmpl.vd", VD_OPEN_RDWR);
	tu_put(t, 4 * KiB, 4 * KiB, 0x11);
	assert_int_equal(vd_write_zeroes(t, 16 * KiB, 4 * KiB), 0);
	assert_int_equal(vd_close(t), 0);
	mk("sct-clone.vd", 0, 64 * KiB, false, "sct-tmpl.vd");
	c = tu_open("sct-clone.vd", VD_OPEN_RDWR);
	tu_expect(c, 0, 4 * KiB, 0);
	tu_expect(c, 4 * KiB, 4 * KiB, 0x11);
	tu_expect(c, 8 * KiB, 56 * KiB, 0);
	tu_put(c, 6 * KiB, 512, 0x22);
	tu_expect(c, 4 * KiB, 2 * KiB, 0x11);
	tu_expect(c, 6 * KiB, 512, 0x22);
	tu_expect(c, 6 * KiB + 512, 1536, 0x11);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
	unlink("sct-clone.vd");
	unlink("sct-tmpl.vd");
}

/* A clone with data, partly filled and zero subclusters. */
static void sc_clone_with_everything(uint8_t *view)
{
	struct vd_image *c;

	mk("sct-clone.vd", 0, 0, true, "sct-tmpl.vd");
	c = tu_open("sct-clone.vd", VD_OPEN_RDWR);
	tu_put(c, 4 * KiB, 4 * KiB, 0x22);
	tu_put(c, MiB + 64 * KiB + 512, 512, 0x33);
	tu_put(c, 5 * MiB + 1024, 1024, 0x34);
	assert_int_equal(vd_write_zeroes(c, 2 * MiB + 4 * KiB, 8 * KiB), 0);
	assert_int_equal(vd_discard(c, 3 * MiB, 128 * KiB), 0);
	assert_int_equal(vd_pread(c, view, 8 * MiB, 0), 0);
	assert_int_equal(vd_close(c), 0);
}

static void expect_view(const char *path, const uint8_t *view, uint8_t *buf)
{
	struct vd_image *img = tu_open(path, 0);

	assert_int_equal(vd_pread(img, buf, 8 * MiB, 0), 0);
	assert_memory_equal(buf, view, 8 * MiB);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
}

/* Commit, flatten and safe rebase keep the guest's view of a clone with
 * subclusters; commit leaves the clone empty, reading through. */
static void test_commit_flatten_rebase(void **state)
{
	uint8_t *view = malloc(8 * MiB), *buf = malloc(8 * MiB);
	struct vd_image *c, *t;
	struct errmsg err = {{0}};

	(void)state;
	make_template(false);
	sc_clone_with_everything(view);
	c = tu_open("sct-clone.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_commit(c, &err), 0);
	assert_int_equal(allocated(c), 0);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
	expect_view("sct-clone.vd", view, buf);
	expect_view("sct-tmpl.vd", view, buf);

	make_template(false);
	sc_clone_with_everything(view);
	c = tu_open("sct-clone.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_flatten(c, &err), 0);
	assert_null(vd_backing_path(c));
	assert_int_equal(vd_close(c), 0);
	expect_view("sct-clone.vd", view, buf);

	make_template(false);
	mk("sct-other.vd", 8 * MiB, 0, false, NULL);
	t = tu_open("sct-other.vd", VD_OPEN_RDWR);
	tu_put(t, MiB, 2 * MiB, 0x77);
	assert_int_equal(vd_close(t), 0);
	sc_clone_with_everything(view);
	c = tu_open("sct-clone.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_rebase(c, "sct-other.vd", false, &err), 0);
	assert_int_equal(vd_close(c), 0);
	expect_view("sct-clone.vd", view, buf);
	free(view);
	free(buf);
	unlink("sct-clone.vd");
	unlink("sct-tmpl.vd");
	unlink("sct-other.vd");
}

static void poke_u64(const char *path, uint64_t off, uint64_t v)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	v = htole64(v);
	assert_int_equal(pwrite(fd, &v, 8, off), 8);
	close(fd);
}

struct runs {
	uint64_t off[8], len[8];
	unsigned n;
};

static int add_run(void *arg, uint64_t off, uint64_t len)
{
	struct runs *r = arg;

	assert_true(r->n < 8);
	r->off[r->n] = off;
	r->len[r->n++] = len;
	return 0;
}

/* Diff names subclusters: a 4 KiB write into a cluster no snapshot shares
 * is one 4 KiB run, a write-zeroes of two subclusters one 8 KiB run. */
static void test_snapshot_diff_per_subcluster(void **state)
{
	struct vd_image *img;
	struct runs r = {0};

	(void)state;
	mk("sct-sc.vd", 8 * MiB, 0, true, NULL);
	img = tu_open("sct-sc.vd", VD_OPEN_RDWR);
	tu_put(img, 0, 4 * KiB, 0x22);
	assert_int_equal(vd_snapshot_create(img, "a", NULL), 0);
	tu_put(img, MiB + 8 * KiB, 4 * KiB, 0x23);
	assert_int_equal(vd_write_zeroes(img, 2 * MiB + 16 * KiB, 8 * KiB), 0);
	tu_put(img, 3 * MiB, 4 * KiB, 0x24);
	assert_int_equal(vd_snapshot_create(img, "b", NULL), 0);
	assert_int_equal(vd_snapshot_diff(img, "a", "b", add_run, &r, NULL), 0);
	/* write-zeroes in a clusterless range of an image without a backing
	 * file changes nothing: it already read zeros */
	assert_int_equal(r.n, 2);
	assert_int_equal(r.off[0], MiB + 8 * KiB);
	assert_int_equal(r.len[0], 4 * KiB);
	assert_int_equal(r.off[1], 3 * MiB);
	assert_int_equal(r.len[1], 4 * KiB);
	/* against the disk: a shared cluster's write shows its allocated
	 * subclusters (the copy is not compared byte by byte) */
	tu_put(img, 512, 512, 0x25);
	memset(&r, 0, sizeof(r));
	assert_int_equal(vd_snapshot_diff(img, "b", NULL, add_run, &r, NULL), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.off[0], 0);
	assert_int_equal(r.len[0], 4 * KiB);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	unlink("sct-sc.vd");
}

/* Resize: grow, write past the old end, shrink refused while a subcluster
 * past the new end is mapped, allowed once it is discarded. */
static void test_resize_with_subclusters(void **state)
{
	struct vd_image *img;
	struct errmsg err = {{0}};

	(void)state;
	mk("sct-sc.vd", 8 * MiB, 0, true, NULL);
	img = tu_open("sct-sc.vd", VD_OPEN_RDWR);
	tu_put(img, 0, 4 * KiB, 0x11);
	assert_int_equal(vd_resize(img, 64 * MiB, false, &err), 0);
	tu_put(img, 40 * MiB + 4 * KiB, 4 * KiB, 0x22);
	tu_expect(img, 40 * MiB, 4 * KiB, 0);
	tu_expect(img, 40 * MiB + 4 * KiB, 4 * KiB, 0x22);
	tu_put(img, 7 * MiB + 8 * KiB, 4 * KiB, 0x33);
	assert_int_equal(vd_resize(img, 7 * MiB, true, &err), -ENOTEMPTY);
	assert_int_equal(vd_discard(img, 40 * MiB, 128 * KiB), 0);
	assert_int_equal(vd_resize(img, 7 * MiB, true, &err), -ENOTEMPTY);
	assert_int_equal(vd_resize(img, 8 * MiB, true, &err), 0);
	tu_expect(img, 7 * MiB + 8 * KiB, 4 * KiB, 0x33);
	tu_expect(img, 0, 4 * KiB, 0x11);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	img = tu_open("sct-sc.vd", 0);
	assert_int_equal(vd_size_bytes(img), 8 * MiB);
	tu_expect(img, 7 * MiB + 8 * KiB, 4 * KiB, 0x33);
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	unlink("sct-sc.vd");
}

/* Impossible bitmaps are corruption that check reports and repair unmaps;
 * a clean image with every state in it reports nothing. */
static void test_check_finds_impossible_bitmaps(void **state)
{
	struct vd_check_result r;
	struct vd_image *img;
	uint64_t l2off;
	uint8_t buf[4096];

	(void)state;
	mk("sct-sc.vd", 8 * MiB, 0, true, NULL);
	img = tu_open("sct-sc.vd", VD_OPEN_RDWR);
	tu_put(img, 0, 4 * KiB, 0x22);
	tu_put(img, CB + 4 * KiB, 4 * KiB, 0x23);
	tu_put(img, 2 * CB, CB, 0x24);
	assert_int_equal(vd_discard(img, 2 * CB + 8 * KiB, 8 * KiB), 0);
	l2off = vd_get64(img->l1_blk, 0) & VD_L1_OFFSET_MASK;
	tu_clean(img);
	assert_int_equal(vd_close(img), 0);
	/* entry 0: subcluster 0 allocated and zero; entry 3: no host cluster
	 * but an allocated subcluster */
	poke_u64("sct-sc.vd", l2off + 8, VD_SC_BITMAP(1, 1));
	poke_u64("sct-sc.vd", l2off + 3 * 16 + 8, VD_SC_BITMAP(4, 0));
	/* entry 1: a host cluster with no allocated subcluster is valid and
	 * maps nothing */
	poke_u64("sct-sc.vd", l2off + 16 + 8, 0);
	img = tu_open("sct-sc.vd", 0);
	tu_expect(img, CB, CB, 0);
	assert_int_equal(vd_pread(img, buf, sizeof(buf), 0), -EUCLEAN);
	assert_int_equal(vd_pread(img, buf, sizeof(buf), 3 * CB), -EUCLEAN);
	assert_int_equal(vd_check(img, 0, &r, tu_say, "sct-sc.vd", NULL), 0);
	assert_int_equal(r.corruptions, 2);
	assert_int_equal(vd_close(img), 0);
	img = tu_open("sct-sc.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_check(img, VD_CHECK_REPAIR, &r, tu_say, "sct-sc.vd", NULL), 0);
	assert_int_equal(r.corruptions_fixed, 2);
	tu_clean(img);
	tu_expect(img, 0, CB, 0);
	tu_expect(img, CB, CB, 0);
	tu_expect(img, 2 * CB + 8 * KiB, 8 * KiB, 0);
	tu_expect(img, 2 * CB + 16 * KiB, CB - 16 * KiB, 0x24);
	tu_expect(img, 3 * CB, CB, 0);
	assert_int_equal(vd_close(img), 0);
	unlink("sct-sc.vd");
}

/* Concurrent asynchronous writes into one fresh cluster of a clone: each
 * fills its subclusters, none blocks on the file. */
struct aw {
	int done, err;
};

static void aw_cb(void *arg, int ret)
{
	struct aw *w = arg;

	w->done++;
	if (ret < 0) {
		w->err = ret;
	}
}

static void test_async_writes_into_one_cluster(void **state)
{
	struct vd_image *c;
	struct vd_ctx *ctx;
	struct aw w = {0};
	uint8_t *bufs[8];
	uint64_t sync0;

	(void)state;
	make_template(false);
	mk("sct-clone.vd", 0, 0, true, "sct-tmpl.vd");
	c = tu_open("sct-clone.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_ctx_create(16, &ctx), 0);
	sync0 = c->file.sync_calls;
	for (int i = 0; i < 8; i++) {
		struct iovec iov;

		bufs[i] = vd_aligned_alloc(4096);
		memset(bufs[i], 0x30 + i, 4096);
		/* subclusters 0, 2, 4, ...: partial (1 KiB) for odd i */
		iov.iov_base = bufs[i];
		iov.iov_len = i & 1 ? 1024 : 4096;
		assert_int_equal(vd_submit_writev(ctx, c, &iov, 1, 2 * MiB + i * 8 * KiB, aw_cb, &w),
				 0);
	}
	assert_int_equal(vd_submit_flush(ctx, c, aw_cb, &w), 0);
	while (w.done < 9) {
		assert_true(vd_ctx_poll(ctx, 1) >= 0);
	}
	assert_int_equal(w.err, 0);
	assert_int_equal(c->file.sync_calls, sync0);
	vd_ctx_destroy(ctx);
	for (int i = 0; i < 8; i++) {
		uint32_t n = i & 1 ? 1024 : 4096;

		tu_expect(c, 2 * MiB + i * 8 * KiB, n, 0x30 + i);
		if (n < 4096) {
			tu_expect(c, 2 * MiB + i * 8 * KiB + n, 4096 - n, 0x11);
		}
		tu_expect(c, 2 * MiB + i * 8 * KiB + 4096, 4096, 0x11);
		free(bufs[i]);
	}
	assert_int_equal(allocated(c), 8 * 4 * KiB);
	tu_clean(c);

	/* After a snapshot: a partial write copies the shared cluster's
	 * allocated subclusters, a write-zeroes unmaps and zero-fills; all
	 * on the ring too. */
	assert_int_equal(vd_snapshot_create(c, "s", NULL), 0);
	assert_int_equal(vd_ctx_create(16, &ctx), 0);
	sync0 = c->file.sync_calls;
	w = (struct aw){0};
	{
		struct iovec iov = {bufs[0] = vd_aligned_alloc(4096), 512};

		memset(bufs[0], 0x40, 4096);
		assert_int_equal(vd_submit_writev(ctx, c, &iov, 1, 2 * MiB + 8 * KiB + 512, aw_cb,
						  &w), 0);
		assert_int_equal(vd_submit_write_zeroes(ctx, c, 2 * MiB + CB + 512, 8 * KiB, aw_cb,
							&w), 0);
		assert_int_equal(vd_submit_flush(ctx, c, aw_cb, &w), 0);
		while (w.done < 3) {
			assert_true(vd_ctx_poll(ctx, 1) >= 0);
		}
		free(bufs[0]);
	}
	assert_int_equal(w.err, 0);
	assert_int_equal(c->file.sync_calls, sync0);
	vd_ctx_destroy(ctx);
	tu_expect(c, 2 * MiB + 8 * KiB, 512, 0x31);
	tu_expect(c, 2 * MiB + 8 * KiB + 512, 512, 0x40);
	tu_expect(c, 2 * MiB + 8 * KiB + 1024, 3 * KiB, 0x11);
	tu_expect(c, 2 * MiB + 16 * KiB, 4 * KiB, 0x32);
	tu_expect(c, 2 * MiB + 12 * KiB, 4 * KiB, 0x11);
	tu_expect(c, 2 * MiB + CB, 512, 0x11);
	tu_expect(c, 2 * MiB + CB + 512, 8 * KiB, 0);
	tu_expect(c, 2 * MiB + CB + 8 * KiB + 512, 4 * KiB - 512, 0x11);
	tu_clean(c);
	assert_int_equal(vd_close(c), 0);
	unlink("sct-clone.vd");
	unlink("sct-tmpl.vd");
}

/* The oracle: the same random writes, discards, write-zeroes, snapshots
 * and reverts on a clone with subclusters and one without read the same,
 * byte for byte, as a model in memory says. */
static void test_random_operations_match_an_image_without(void **state)
{
	struct vd_image *a, *b;
	uint8_t *x = malloc(8 * MiB), *y = malloc(8 * MiB), *buf = malloc(256 * KiB);
	uint8_t *model = malloc(8 * MiB);
	uint8_t *smodel[3] = {malloc(8 * MiB), malloc(8 * MiB), malloc(8 * MiB)};
	/* SC_SEED and SC_OPS run other mixes (a longer local stress). */
	unsigned seed = getenv("SC_SEED") ? (unsigned)atoi(getenv("SC_SEED")) : 12345;
	int nops = getenv("SC_OPS") ? atoi(getenv("SC_OPS")) : 400;
	unsigned nsnap = 0, serial = 0;
	char names[3][16];

	memset(model, 0x11, 4 * MiB);
	memset(model + 4 * MiB, 0, 4 * MiB);

	(void)state;
	make_template(false);
	mk("sct-a.vd", 0, 0, true, "sct-tmpl.vd");
	mk("sct-b.vd", 0, 64 * KiB, false, "sct-tmpl.vd");
	a = tu_open("sct-a.vd", VD_OPEN_RDWR);
	b = tu_open("sct-b.vd", VD_OPEN_RDWR);
	for (int i = 0; i < nops; i++) {
		uint64_t off = (uint64_t)(rand_r(&seed) % (8 * MiB / 512)) * 512;
		uint64_t len = (uint64_t)(1 + rand_r(&seed) % (rand_r(&seed) % 4 ? 16 : 512)) * 512;
		int op = rand_r(&seed) % 10;

		len = off + len > 8 * MiB ? 8 * MiB - off : len;
		if (i % 23 == 11 && nsnap < 3) {
			snprintf(names[nsnap], sizeof(names[nsnap]), "s%u", serial++);
			assert_int_equal(vd_snapshot_create(a, names[nsnap], NULL), 0);
			assert_int_equal(vd_snapshot_create(b, names[nsnap], NULL), 0);
			memcpy(smodel[nsnap++], model, 8 * MiB);
		} else if (i % 23 == 17 && nsnap > 0) {
			unsigned k = rand_r(&seed) % nsnap;

			if (rand_r(&seed) % 2) {
				assert_int_equal(vd_snapshot_revert(a, names[k], NULL), 0);
				assert_int_equal(vd_snapshot_revert(b, names[k], NULL), 0);
				memcpy(model, smodel[k], 8 * MiB);
			}
			assert_int_equal(vd_snapshot_delete(a, names[k], NULL), 0);
			assert_int_equal(vd_snapshot_delete(b, names[k], NULL), 0);
			nsnap--;
			memcpy(names[k], names[nsnap], sizeof(names[k]));
			memcpy(smodel[k], smodel[nsnap], 8 * MiB);
		}
		if (getenv("SC_TRACE")) {
			print_message("op %d: %d off 0x%llx len 0x%llx\n", i, op,
				      (unsigned long long)off, (unsigned long long)len);
		}
		if (op < 6) {
			memset(model + off, i & 0xff, len);
		} else {
			memset(model + off, 0, len);
		}
		if (op < 6) {
			memset(buf, i & 0xff, len);
			assert_int_equal(vd_pwrite(a, buf, len, off), 0);
			assert_int_equal(vd_pwrite(b, buf, len, off), 0);
		} else if (op < 8) {
			assert_int_equal(vd_write_zeroes(a, off, len), 0);
			assert_int_equal(vd_write_zeroes(b, off, len), 0);
		} else {
			/* Discard may leave partial parts alone: compare what
			 * both promise, by zeroing the ranges afterwards. */
			assert_int_equal(vd_discard(a, off, len), 0);
			assert_int_equal(vd_write_zeroes(a, off, len), 0);
			assert_int_equal(vd_write_zeroes(b, off, len), 0);
		}
		if (i % 10 == 9) {
			assert_int_equal(vd_flush(a), 0);
			assert_int_equal(vd_pread(a, x, 8 * MiB, 0), 0);
			assert_int_equal(vd_pread(b, y, 8 * MiB, 0), 0);
			if (memcmp(y, model, 8 * MiB) != 0) {
				fail_msg("the image without subclusters differs at op %d", i);
			}
			assert_memory_equal(x, model, 8 * MiB);
			tu_clean(a);
		}
	}
	assert_int_equal(vd_close(a), 0);
	a = tu_open("sct-a.vd", 0);
	assert_int_equal(vd_pread(a, x, 8 * MiB, 0), 0);
	assert_int_equal(vd_pread(b, y, 8 * MiB, 0), 0);
	assert_memory_equal(x, y, 8 * MiB);
	tu_clean(a);
	assert_int_equal(vd_close(a), 0);
	assert_int_equal(vd_close(b), 0);
	free(x);
	free(y);
	free(buf);
	free(model);
	for (int k = 0; k < 3; k++) {
		free(smodel[k]);
	}
	unlink("sct-a.vd");
	unlink("sct-b.vd");
	unlink("sct-tmpl.vd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_info),
		cmocka_unit_test(test_fresh_write_fills_only_touched_subclusters),
		cmocka_unit_test(test_clone_write_copies_up_only_partial_subclusters),
		cmocka_unit_test(test_discard_and_write_zeroes_per_subcluster),
		cmocka_unit_test(test_snapshots_keep_their_subclusters),
		cmocka_unit_test(test_clone_of_a_template_with_subclusters),
		cmocka_unit_test(test_commit_flatten_rebase),
		cmocka_unit_test(test_check_finds_impossible_bitmaps),
		cmocka_unit_test(test_resize_with_subclusters),
		cmocka_unit_test(test_snapshot_diff_per_subcluster),
		cmocka_unit_test(test_async_writes_into_one_cluster),
		cmocka_unit_test(test_random_operations_match_an_image_without),
	};

	return cmocka_run_group_tests_name("vdisk_subcluster", tests, NULL, NULL);
}
