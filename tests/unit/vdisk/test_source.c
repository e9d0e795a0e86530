/* SPDX-License-Identifier: MIT */
/* test_source.c: sources (raw, vdisk with a backing chain) and the sparse
 * copy engine behind convert, import and the migration copy: what cannot
 * be an image is refused at once, holes stay holes, data and zero runs
 * are described faithfully, progress advances to the total. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

static char dir[64];

static void path_in(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

static void test_fifo_and_directory_refused_at_once(void **state)
{
	struct vd_source *src = NULL;
	struct errmsg err = {{0}};
	enum vd_format fmt;
	char fifo[128];

	path_in(fifo, sizeof(fifo), "fifo");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	/* With no writer a blocking open would never return. */
	assert_int_equal(vd_source_open(fifo, VD_FORMAT_AUTO, 0, &src, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "FIFO"));
	assert_int_equal(vd_source_open(fifo, VD_FORMAT_RAW, 0, &src, &err), -EINVAL);
	assert_int_equal(vd_source_open(fifo, VD_FORMAT_QCOW2, 0, &src, &err), -EINVAL);
	assert_int_equal(vd_format_probe(dir, &fmt, &err), -EINVAL);
	assert_null(src);
	unlink(fifo);
}

static void test_format_probe_and_names(void **state)
{
	struct vd_create_opts co;
	enum vd_format fmt;
	char img[128], raw[128];

	path_in(img, sizeof(img), "probe.vd");
	path_in(raw, sizeof(raw), "probe.raw");
	vd_create_opts_init(&co);
	co.size_bytes = 1 << 20;
	assert_int_equal(vd_create(img, &co, NULL), 0);
	close(open(raw, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(vd_format_probe(img, &fmt, NULL), 0);
	assert_int_equal(fmt, VD_FORMAT_VDISK);
	assert_int_equal(vd_format_probe(raw, &fmt, NULL), 0);
	assert_int_equal(fmt, VD_FORMAT_RAW);
	assert_int_equal(vd_format_parse("qcow2", &fmt), 0);
	assert_int_equal(fmt, VD_FORMAT_QCOW2);
	assert_string_equal(vd_format_name(VD_FORMAT_VDISK), "vdisk");
	assert_int_equal(vd_format_parse("vmdk", &fmt), -EINVAL);
	unlink(img);
	unlink(raw);
}

struct prog {
	uint64_t last, total;
	unsigned calls;
};

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct prog *p = arg;

	assert_true(done >= p->last);
	p->last = done;
	p->total = total;
	p->calls++;
}

/* A clone whose backing file holds data at 1 MiB and which itself writes
 * at 3 MiB, copied into a raw file: both runs are data, the rest stays a
 * hole, and the copy reads back byte for byte. */
static void test_copy_of_a_clone_keeps_holes(void **state)
{
	char base[128], clone[128], out[128];
	struct vd_create_opts co;
	struct vd_image *img;
	struct vd_source *src = NULL;
	struct vd_copy_dest dst = {.fd = -1};
	struct vd_copy_opts opts;
	struct errmsg err = {{0}};
	struct prog prog = {0};
	uint64_t len;
	bool data;
	struct stat st;
	uint8_t buf[4096];

	path_in(base, sizeof(base), "base.vd");
	path_in(clone, sizeof(clone), "clone.vd");
	path_in(out, sizeof(out), "out.raw");
	vd_create_opts_init(&co);
	co.size_bytes = 8 << 20;
	assert_int_equal(vd_create(base, &co, NULL), 0);
	img = tu_open(base, VD_OPEN_RDWR);
	tu_put(img, 1 << 20, 65536, 0xab);
	assert_int_equal(vd_close(img), 0);
	co.backing_path = base;
	co.size_bytes = 0;
	assert_int_equal(vd_create(clone, &co, NULL), 0);
	img = tu_open(clone, VD_OPEN_RDWR);
	tu_put(img, 3 << 20, 65536, 0xcd);
	assert_int_equal(vd_close(img), 0);

	assert_int_equal(vd_source_open(clone, VD_FORMAT_AUTO, 0, &src, &err), 0);
	assert_int_equal(vd_source_format(src), VD_FORMAT_VDISK);
	assert_int_equal(vd_source_size_bytes(src), 8 << 20);
	/* What the backing file provides is data to read (zero detection
	 * keeps its unwritten parts thin in the copy). */
	assert_int_equal(vd_source_extent(src, 1 << 20, 8 << 20, &len, &data, &err), 0);
	assert_true(data);
	assert_int_equal(vd_source_extent(src, 9 << 20, 4096, &len, &data, &err), 0);
	assert_false(data);

	dst.fd = open(out, O_CREAT | O_TRUNC | O_RDWR, 0600);
	assert_true(dst.fd >= 0);
	assert_int_equal(ftruncate(dst.fd, 8 << 20), 0);
	dst.size_bytes = 8 << 20;
	dst.name = out;
	vd_copy_opts_init(&opts);
	opts.progress = on_progress;
	opts.progress_arg = &prog;
	assert_int_equal(vd_copy(src, &dst, &opts, &err), 0);
	assert_true(prog.calls >= 2);
	assert_int_equal(prog.last, 8 << 20);
	assert_int_equal(prog.total, 8 << 20);
	assert_int_equal(fstat(dst.fd, &st), 0);
	/* Two 64 KiB runs of data, nothing else allocated. */
	assert_true((uint64_t)st.st_blocks * 512 <= 2 * 65536 + 8192);
	assert_int_equal(pread(dst.fd, buf, sizeof(buf), 1 << 20), (ssize_t)sizeof(buf));
	assert_int_equal(buf[0], 0xab);
	assert_int_equal(buf[4095], 0xab);
	assert_int_equal(pread(dst.fd, buf, sizeof(buf), 3 << 20), (ssize_t)sizeof(buf));
	assert_int_equal(buf[100], 0xcd);
	assert_int_equal(pread(dst.fd, buf, sizeof(buf), 2 << 20), (ssize_t)sizeof(buf));
	assert_int_equal(buf[7], 0);
	close(dst.fd);
	vd_source_close(src);
	unlink(base);
	unlink(clone);
	unlink(out);
}

/* A snapshot as a source: it reads what the disk held when it was taken,
 * its size then, and only its own clusters as data (no chain). */
static void test_snapshot_source(void **state)
{
	char path[128];
	struct vd_create_opts co;
	struct vd_image *img;
	struct vd_source *src = NULL;
	struct errmsg err = {{0}};
	uint8_t buf[4096];
	uint64_t len;
	bool data;

	path_in(path, sizeof(path), "snap.vd");
	vd_create_opts_init(&co);
	co.size_bytes = 4 << 20;
	assert_int_equal(vd_create(path, &co, NULL), 0);
	img = tu_open(path, VD_OPEN_RDWR);
	tu_put(img, 1 << 20, 65536, 0x11);
	assert_int_equal(vd_snapshot_create(img, "s1", &err), 0);
	tu_put(img, 1 << 20, 65536, 0x22);
	tu_put(img, 2 << 20, 65536, 0x33);
	assert_int_equal(vd_resize(img, 8 << 20, false, &err), 0);
	assert_int_equal(vd_source_from_snapshot(img, "nope", &src, &err), -ENOENT);
	assert_int_equal(vd_source_from_snapshot(img, "s1", &src, &err), 0);
	assert_int_equal(vd_source_size_bytes(src), 4 << 20);
	assert_int_equal(vd_source_extent(src, 1 << 20, 4 << 20, &len, &data, &err), 0);
	assert_true(data);
	assert_int_equal(len, 65536);
	assert_int_equal(vd_source_extent(src, 2 << 20, 4096, &len, &data, &err), 0);
	assert_false(data);
	assert_int_equal(vd_source_pread(src, buf, sizeof(buf), 1 << 20, &err), 0);
	assert_int_equal(buf[0], 0x11);
	assert_int_equal(buf[4095], 0x11);
	assert_int_equal(vd_source_pread(src, buf, sizeof(buf), 2 << 20, &err), 0);
	assert_int_equal(buf[9], 0);
	vd_source_close(src);
	tu_expect(img, 1 << 20, 65536, 0x22);
	assert_int_equal(vd_close(img), 0);
	unlink(path);
}

/* A raw source with data, a hole and a block of written zeros, copied
 * into a vdisk image: the zeros are not allocated either. */
static void test_copy_raw_into_vdisk_skips_zero_blocks(void **state)
{
	char raw[128], out[128];
	struct vd_create_opts co;
	struct vd_source *src = NULL;
	struct vd_copy_dest dst = {.fd = -1};
	struct vd_info info;
	struct errmsg err = {{0}};
	uint8_t block[65536];
	int fd;

	path_in(raw, sizeof(raw), "in.raw");
	path_in(out, sizeof(out), "out.vd");
	fd = open(raw, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	memset(block, 0x5a, sizeof(block));
	assert_int_equal(pwrite(fd, block, sizeof(block), 0), (ssize_t)sizeof(block));
	memset(block, 0, sizeof(block));
	assert_int_equal(pwrite(fd, block, sizeof(block), 1 << 20), (ssize_t)sizeof(block));
	assert_int_equal(ftruncate(fd, 4 << 20), 0);
	close(fd);
	vd_create_opts_init(&co);
	co.size_bytes = 4 << 20;
	assert_int_equal(vd_create(out, &co, NULL), 0);
	dst.img = tu_open(out, VD_OPEN_RDWR);
	dst.size_bytes = 4 << 20;
	assert_int_equal(vd_source_open(raw, VD_FORMAT_RAW, 0, &src, &err), 0);
	assert_int_equal(vd_copy(src, &dst, NULL, &err), 0);
	assert_int_equal(vd_get_info(dst.img, &info), 0);
	assert_int_equal(info.allocated_bytes, 65536);
	tu_expect(dst.img, 0, 65536, 0x5a);
	tu_expect(dst.img, 1 << 20, 65536, 0);
	assert_int_equal(vd_close(dst.img), 0);
	vd_source_close(src);
	unlink(raw);
	unlink(out);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vd-source-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_and_directory_refused_at_once),
		cmocka_unit_test(test_format_probe_and_names),
		cmocka_unit_test(test_copy_of_a_clone_keeps_holes),
		cmocka_unit_test(test_copy_raw_into_vdisk_skips_zero_blocks),
		cmocka_unit_test(test_snapshot_source),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
