/* SPDX-License-Identifier: MIT */
/* test_image.c: creating, opening, reading and writing images through the
 * public API, on real files in a temporary directory: round trips, thin
 * provisioning, discard giving space back, the bounded cache, the async API,
 * and refusal of damaged headers without writing to them. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../vdisk/format.h"
#include "vdisk.h"

/* In the build directory: /tmp may be tmpfs, which has no O_DIRECT. */
static char dir[] = "vdtest.XXXXXX";

static char *path_of(const char *name)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static struct vd_image *make(const char *name, uint64_t size, uint32_t cluster)
{
	struct vd_create_opts o;
	struct vd_open_opts oo;
	struct vd_image *img = NULL;
	struct errmsg err = {{0}};

	unlink(path_of(name));
	vd_create_opts_init(&o);
	o.size_bytes = size;
	o.cluster_bytes = cluster;
	assert_int_equal(vd_create(path_of(name), &o, &err), 0);
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	assert_int_equal(vd_open(path_of(name), &oo, &img, &err), 0);
	return img;
}

static struct vd_image *reopen(const char *name, unsigned flags)
{
	struct vd_open_opts oo;
	struct vd_image *img = NULL;
	struct errmsg err = {{0}};

	vd_open_opts_init(&oo);
	oo.flags = flags;
	assert_int_equal(vd_open(path_of(name), &oo, &img, &err), 0);
	return img;
}

static void fill(void *buf, size_t len, uint8_t v)
{
	memset(buf, v, len);
}

static void assert_pattern(struct vd_image *img, uint64_t off, size_t len, uint8_t v)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(vd_pread(img, buf, len, off), 0);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != v) {
			fail_msg("byte %zu at 0x%llx is 0x%02x, want 0x%02x", i,
				 (unsigned long long)off, buf[i], v);
		}
	}
	free(buf);
}

static uint64_t check_clean(struct vd_image *img)
{
	struct vd_check_result r;
	struct errmsg err = {{0}};

	assert_int_equal(vd_check(img, 0, &r, NULL, NULL, &err), 0);
	assert_int_equal(r.corruptions, 0);
	assert_int_equal(r.leaks, 0);
	return r.allocated_clusters;
}

static void test_unwritten_reads_zero_and_costs_nothing(void **state)
{
	struct vd_image *img = make("a.vd", 1ull << 30, 0);
	struct vd_info info;
	struct stat st;

	assert_pattern(img, 0, 65536, 0);
	assert_pattern(img, (1ull << 30) - 4096, 4096, 0);
	assert_int_equal(vd_get_info(img, &info), 0);
	assert_int_equal(info.allocated_bytes, 0);
	assert_int_equal(info.cluster_bytes, 65536);
	assert_int_equal(vd_close(img), 0);
	assert_int_equal(stat(path_of("a.vd"), &st), 0);
	/* header, 1 MiB journal (sparse), tables: well under 2 MiB on disk */
	assert_true(st.st_blocks * 512 < (2 << 20));
}

static void test_write_read_round_trip_across_clusters(void **state)
{
	struct vd_image *img = make("b.vd", 64 << 20, 4096);
	uint8_t *buf = malloc(1 << 20);

	fill(buf, 1 << 20, 0xab);
	assert_int_equal(vd_pwrite(img, buf, 1 << 20, 3 * 4096 + 512), 0);
	assert_pattern(img, 3 * 4096 + 512, 1 << 20, 0xab);
	assert_pattern(img, 0, 3 * 4096 + 512, 0);
	assert_int_equal(check_clean(img), 257);
	assert_int_equal(vd_close(img), 0);
	img = reopen("b.vd", 0);
	assert_pattern(img, 3 * 4096 + 512, 1 << 20, 0xab);
	assert_int_equal(check_clean(img), 257);
	assert_int_equal(vd_close(img), 0);
	free(buf);
}

static void test_misaligned_buffers_are_bounced(void **state)
{
	struct vd_image *img = make("c.vd", 16 << 20, 0);
	uint8_t *raw = malloc(8192 + 1), *p = raw + 1;

	fill(p, 8192, 0x5a);
	assert_int_equal(vd_pwrite(img, p, 8192, 1024), 0);
	memset(p, 0, 8192);
	assert_int_equal(vd_pread(img, p, 8192, 1024), 0);
	for (int i = 0; i < 8192; i++) {
		assert_int_equal(p[i], 0x5a);
	}
	assert_int_equal(vd_close(img), 0);
	free(raw);
}

static void test_bad_ranges_are_refused(void **state)
{
	struct vd_image *img = make("d.vd", 1 << 20, 0);
	uint8_t buf[4096];

	assert_int_equal(vd_pread(img, buf, 512, 1 << 20), -EINVAL);
	assert_int_equal(vd_pwrite(img, buf, 1024, (1 << 20) - 512), -EINVAL);
	assert_int_equal(vd_pread(img, buf, 100, 0), -EINVAL);
	assert_int_equal(vd_pwrite(img, buf, 512, 3), -EINVAL);
	assert_int_equal(vd_close(img), 0);
	img = reopen("d.vd", 0);
	assert_int_equal(vd_pwrite(img, buf, 512, 0), -EROFS);
	assert_int_equal(vd_close(img), 0);
}

static void test_discard_gives_space_back(void **state)
{
	struct vd_image *img = make("e.vd", 64 << 20, 0);
	uint8_t *buf = malloc(16 << 20);
	struct stat before, after;
	struct vd_info info;

	fill(buf, 16 << 20, 0x11);
	assert_int_equal(vd_pwrite(img, buf, 16 << 20, 0), 0);
	assert_int_equal(vd_flush(img), 0);
	assert_int_equal(stat(path_of("e.vd"), &before), 0);
	assert_int_equal(vd_discard(img, 0, 16 << 20), 0);
	assert_pattern(img, 0, 65536, 0);
	assert_int_equal(vd_get_info(img, &info), 0);
	assert_int_equal(info.allocated_bytes, 0);
	assert_int_equal(check_clean(img), 0);
	assert_int_equal(vd_close(img), 0);
	assert_int_equal(stat(path_of("e.vd"), &after), 0);
	assert_true(before.st_blocks * 512 >= (16 << 20));
	assert_true(after.st_blocks * 512 < (4 << 20));
	free(buf);
}

static void test_write_zeroes_frees_whole_and_zeroes_partial(void **state)
{
	struct vd_image *img = make("f.vd", 8 << 20, 0);
	uint8_t *buf = malloc(1 << 20);
	struct vd_extent ext;

	fill(buf, 1 << 20, 0x77);
	assert_int_equal(vd_pwrite(img, buf, 1 << 20, 0), 0);
	/* zero from 32K to 256K+4K: partial head and tail, 3 whole clusters */
	assert_int_equal(vd_write_zeroes(img, 32768, 262144 - 32768 + 4096), 0);
	assert_pattern(img, 0, 32768, 0x77);
	assert_pattern(img, 32768, 262144 - 32768 + 4096, 0);
	assert_pattern(img, 262144 + 4096, 65536 - 4096, 0x77);
	assert_int_equal(vd_map(img, 65536, &ext), 0);
	assert_int_equal(ext.state, VD_EXTENT_UNALLOCATED);
	assert_int_equal(ext.length, 3 * 65536);
	assert_int_equal(check_clean(img), 16 - 3);
	/* discard of a partial cluster changes nothing */
	assert_int_equal(vd_discard(img, 0, 4096), 0);
	assert_pattern(img, 0, 4096, 0x77);
	assert_int_equal(vd_close(img), 0);
	free(buf);
}

static void test_freed_clusters_are_reused_after_checkpoint(void **state)
{
	struct vd_image *img = make("g.vd", 64 << 20, 0);
	uint8_t *buf = malloc(4 << 20);
	struct stat st1, st2;

	fill(buf, 4 << 20, 1);
	assert_int_equal(vd_pwrite(img, buf, 4 << 20, 0), 0);
	assert_int_equal(vd_close(img), 0);
	assert_int_equal(stat(path_of("g.vd"), &st1), 0);
	img = reopen("g.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_discard(img, 0, 4 << 20), 0);
	assert_int_equal(vd_close(img), 0);
	img = reopen("g.vd", VD_OPEN_RDWR);
	fill(buf, 4 << 20, 2);
	assert_int_equal(vd_pwrite(img, buf, 4 << 20, 32 << 20), 0);
	assert_pattern(img, 32 << 20, 4 << 20, 2);
	assert_pattern(img, 0, 4 << 20, 0);
	check_clean(img);
	assert_int_equal(vd_close(img), 0);
	assert_int_equal(stat(path_of("g.vd"), &st2), 0);
	/* the file did not grow: the discarded clusters were reused */
	assert_true(st2.st_size <= st1.st_size);
	free(buf);
}

static void test_map_reports_extents(void **state)
{
	struct vd_image *img = make("h.vd", 4 << 20, 0);
	uint8_t buf[65536];
	struct vd_extent ext;

	fill(buf, sizeof(buf), 3);
	assert_int_equal(vd_pwrite(img, buf, sizeof(buf), 0), 0);
	assert_int_equal(vd_pwrite(img, buf, sizeof(buf), 65536), 0);
	assert_int_equal(vd_map(img, 0, &ext), 0);
	assert_int_equal(ext.state, VD_EXTENT_DATA);
	assert_int_equal(ext.length, 2 * 65536);
	assert_true(ext.host_offset != 0);
	assert_int_equal(vd_map(img, 2 * 65536, &ext), 0);
	assert_int_equal(ext.state, VD_EXTENT_UNALLOCATED);
	assert_int_equal(ext.offset + ext.length, 4 << 20);
	assert_int_equal(vd_map(img, 4 << 20, &ext), -EINVAL);
	assert_int_equal(vd_close(img), 0);
}

static void test_cache_stays_bounded_under_scattered_writes(void **state)
{
	struct vd_create_opts o;
	struct vd_open_opts oo;
	struct vd_image *img;
	struct vd_info info;
	uint8_t buf[4096];

	unlink(path_of("i.vd"));
	vd_create_opts_init(&o);
	o.size_bytes = 4ull << 30;
	o.cluster_bytes = 4096; /* one L2 table covers 2 MiB */
	assert_int_equal(vd_create(path_of("i.vd"), &o, NULL), 0);
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	oo.cache_bytes = 16 * 4096;
	assert_int_equal(vd_open(path_of("i.vd"), &oo, &img, NULL), 0);
	for (int i = 0; i < 300; i++) {
		fill(buf, sizeof(buf), (uint8_t)i);
		assert_int_equal(vd_pwrite(img, buf, sizeof(buf), (uint64_t)i * (8 << 20)), 0);
	}
	assert_int_equal(vd_get_info(img, &info), 0);
	assert_int_equal(info.cache_bytes, 16 * 4096);
	for (int i = 0; i < 300; i++) {
		assert_pattern(img, (uint64_t)i * (8 << 20), 4096, (uint8_t)i);
	}
	check_clean(img);
	assert_int_equal(vd_close(img), 0);
	img = reopen("i.vd", 0);
	for (int i = 0; i < 300; i += 7) {
		assert_pattern(img, (uint64_t)i * (8 << 20), 4096, (uint8_t)i);
	}
	check_clean(img);
	assert_int_equal(vd_close(img), 0);
}

struct acount {
	int done, errors;
};

static void acb(void *arg, int ret)
{
	struct acount *c = arg;

	c->done++;
	c->errors += ret != 0;
}

static void test_async_keeps_many_requests_in_flight(void **state)
{
	struct vd_image *img = make("j.vd", 64 << 20, 0);
	struct vd_ctx *ctx;
	struct acount c = {0};
	uint8_t *bufs;
	struct iovec iov[64];

	assert_int_equal(posix_memalign((void **)&bufs, 4096, 64 * 4096), 0);
	assert_int_equal(vd_ctx_create(32, &ctx), 0);
	assert_true(vd_ctx_event_fd(ctx) >= 0);
	for (int i = 0; i < 64; i++) {
		memset(bufs + i * 4096, i + 1, 4096);
		iov[i] = (struct iovec){bufs + i * 4096, 4096};
		int ret;

		while ((ret = vd_submit_writev(ctx, img, &iov[i], 1, (uint64_t)i * 262144, acb,
					       &c)) == -EAGAIN) {
			assert_true(vd_ctx_poll(ctx, 1) >= 1);
		}
		assert_int_equal(ret, 0);
		assert_true(vd_ctx_inflight(ctx) <= 32);
	}
	while (vd_ctx_inflight(ctx)) {
		assert_true(vd_ctx_poll(ctx, 1) >= 0);
	}
	assert_int_equal(c.done, 64);
	assert_int_equal(c.errors, 0);
	for (int i = 0; i < 64; i++) {
		assert_pattern(img, (uint64_t)i * 262144, 4096, i + 1);
	}
	vd_ctx_destroy(ctx);
	assert_int_equal(vd_close(img), 0);
	free(bufs);
}

static void test_preallocation_maps_every_cluster(void **state)
{
	struct vd_create_opts o;
	struct vd_image *img;
	struct vd_extent ext;
	struct stat st;

	for (int mode = VD_PREALLOC_METADATA; mode <= VD_PREALLOC_FULL; mode++) {
		unlink(path_of("k.vd"));
		vd_create_opts_init(&o);
		o.size_bytes = 8 << 20;
		o.prealloc = mode;
		assert_int_equal(vd_create(path_of("k.vd"), &o, NULL), 0);
		img = reopen("k.vd", 0);
		assert_int_equal(vd_map(img, 0, &ext), 0);
		assert_int_equal(ext.state, VD_EXTENT_DATA);
		assert_int_equal(ext.length, 8 << 20);
		assert_pattern(img, 0, 65536, 0);
		assert_int_equal(check_clean(img), 128);
		assert_int_equal(vd_close(img), 0);
		assert_int_equal(stat(path_of("k.vd"), &st), 0);
		if (mode == VD_PREALLOC_FULL) {
			assert_true(st.st_blocks * 512 >= (8 << 20));
		} else {
			assert_true(st.st_blocks * 512 < (4 << 20));
		}
	}
}

/* vd_map over ranges with no L2 table: one extent per state, its length
 * exact around a written cluster, on a 16 TiB image (the walk takes whole
 * L2 ranges at once; cluster by cluster it took 2^28 steps). */
static void test_map_of_a_huge_sparse_image(void **state)
{
	const uint64_t size = (uint64_t)16 << 40, mid = (uint64_t)5 << 40;
	struct vd_create_opts o;
	struct vd_image *img;
	struct vd_extent ext;
	uint8_t buf[4096];

	unlink(path_of("huge.vd"));
	vd_create_opts_init(&o);
	o.size_bytes = size;
	assert_int_equal(vd_create(path_of("huge.vd"), &o, NULL), 0);
	img = reopen("huge.vd", VD_OPEN_RDWR);
	assert_int_equal(vd_map(img, 0, &ext), 0);
	assert_int_equal(ext.state, VD_EXTENT_UNALLOCATED);
	assert_int_equal(ext.length, size);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(vd_pwrite(img, buf, sizeof(buf), mid + 4096), 0);
	assert_int_equal(vd_map(img, 4096, &ext), 0);
	assert_int_equal(ext.state, VD_EXTENT_UNALLOCATED);
	assert_int_equal(ext.offset + ext.length, mid);
	assert_int_equal(vd_map(img, mid, &ext), 0);
	assert_int_equal(ext.state, VD_EXTENT_DATA);
	assert_int_equal(ext.length, 65536);
	assert_int_equal(vd_map(img, mid + 65536, &ext), 0);
	assert_int_equal(ext.state, VD_EXTENT_UNALLOCATED);
	assert_int_equal(ext.offset + ext.length, size);
	assert_int_equal(vd_close(img), 0);
	unlink(path_of("huge.vd"));
}

static void test_create_refuses_bad_options(void **state)
{
	struct vd_create_opts o;
	struct errmsg err = {{0}};

	vd_create_opts_init(&o);
	o.size_bytes = 1 << 20;
	o.cluster_bytes = 3000;
	assert_int_equal(vd_create(path_of("l.vd"), &o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cluster size"));
	o.cluster_bytes = 1024;
	assert_int_equal(vd_create(path_of("l.vd"), &o, &err), -EINVAL);
	o.cluster_bytes = 4 << 20;
	assert_int_equal(vd_create(path_of("l.vd"), &o, &err), -EINVAL);
	o.cluster_bytes = 0;
	o.size_bytes = 1000;
	assert_int_equal(vd_create(path_of("l.vd"), &o, &err), -EINVAL);
	assert_int_equal(access(path_of("l.vd"), F_OK), -1);
	o.size_bytes = 1 << 20;
	assert_int_equal(vd_create(path_of("l.vd"), &o, &err), 0);
	assert_int_equal(vd_create(path_of("l.vd"), &o, &err), -EEXIST);
}

/* Corrupts the header with 'fn' (recomputing the crc when 'fix_crc'),
 * expects vd_open to fail with 'want' and leave the file untouched. */
static uint32_t crc32c_sw(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = ~0u;

	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++) {
			crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
		}
	}
	return ~crc;
}

static void corrupt_and_open(size_t at, const void *bytes, size_t n, bool fix_crc, int want,
			     const char *msg)
{
	struct vd_create_opts o;
	struct vd_image *img = NULL;
	struct errmsg err = {{0}};
	uint8_t hdr[512], after[512];
	struct stat st1, st2;
	int fd;

	unlink(path_of("m.vd"));
	vd_create_opts_init(&o);
	o.size_bytes = 1 << 20;
	assert_int_equal(vd_create(path_of("m.vd"), &o, NULL), 0);
	fd = open(path_of("m.vd"), O_RDWR);
	assert_int_equal(pread(fd, hdr, 512, 0), 512);
	memcpy(hdr + at, bytes, n);
	if (fix_crc) {
		uint32_t crc = crc32c_sw(hdr, 508);

		memcpy(hdr + 508, &crc, 4);
	}
	assert_int_equal(pwrite(fd, hdr, 512, 0), 512);
	close(fd);
	assert_int_equal(stat(path_of("m.vd"), &st1), 0);
	for (int rw = 0; rw < 2; rw++) {
		struct vd_open_opts oo;

		vd_open_opts_init(&oo);
		oo.flags = rw ? VD_OPEN_RDWR : 0;
		assert_int_equal(vd_open(path_of("m.vd"), &oo, &img, &err), want);
		assert_null(img);
		assert_non_null(strstr(err.msg, path_of("m.vd")));
		if (!strstr(err.msg, msg)) {
			fail_msg("message '%s' lacks '%s'", err.msg, msg);
		}
	}
	fd = open(path_of("m.vd"), O_RDONLY);
	assert_int_equal(pread(fd, after, 512, 0), 512);
	close(fd);
	assert_memory_equal(hdr, after, 512);
	assert_int_equal(stat(path_of("m.vd"), &st2), 0);
	assert_int_equal(st1.st_size, st2.st_size);
	assert_int_equal(st1.st_mtime, st2.st_mtime);
}

static void test_damaged_headers_are_refused_untouched(void **state)
{
	uint64_t v64;
	uint32_t v32;

	corrupt_and_open(0, "QFI\xfb", 4, true, -EINVAL, "not a vdisk image");
	corrupt_and_open(60, "\x01", 1, false, -EUCLEAN, "checksum");
	v32 = 2;
	corrupt_and_open(8, &v32, 4, true, -EOPNOTSUPP, "version 2");
	v64 = 1ull << 40;
	corrupt_and_open(16, &v64, 8, true, -EOPNOTSUPP, "incompatible features");
	v32 = 30;
	corrupt_and_open(40, &v32, 4, true, -EUCLEAN, "cluster_bits");
	v64 = 1000;
	corrupt_and_open(48, &v64, 8, true, -EUCLEAN, "virtual size");
	v64 = 1ull << 40;
	corrupt_and_open(48, &v64, 8, true, -EUCLEAN, "l1_entries");
	v64 = 1ull << 40;
	corrupt_and_open(56, &v64, 8, true, -EUCLEAN, "beyond the end of the file");
	v64 = 4096 + 3;
	corrupt_and_open(64, &v64, 8, true, -EUCLEAN, "cluster boundary");
	v32 = 4096;
	corrupt_and_open(76, &v32, 4, true, -EUCLEAN, "journal_bytes");
}

static void test_short_and_foreign_files_are_refused(void **state)
{
	struct vd_image *img = NULL;
	struct errmsg err = {{0}};
	int fd;

	fd = open(path_of("empty"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
	close(fd);
	assert_int_equal(vd_open(path_of("empty"), NULL, &img, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a vdisk image"));
	fd = open(path_of("raw"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	assert_int_equal(vd_open(path_of("raw"), NULL, &img, &err), -EINVAL);
	assert_int_equal(vd_open(path_of("nonexistent"), NULL, &img, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "cannot open"));
	assert_null(img);
}

static void test_dirty_flag_is_set_while_open(void **state)
{
	struct vd_image *img = make("n.vd", 1 << 20, 0), *ro;
	struct vd_info info;

	ro = reopen("n.vd", VD_OPEN_FORCE_SHARE);
	assert_int_equal(vd_get_info(ro, &info), 0);
	assert_true(info.dirty);
	assert_int_equal(vd_close(ro), 0);
	assert_int_equal(vd_close(img), 0);
	ro = reopen("n.vd", 0);
	assert_int_equal(vd_get_info(ro, &info), 0);
	assert_false(info.dirty);
	assert_int_equal(info.incompat_features, 0);
	assert_int_equal(vd_close(ro), 0);
}

static void test_second_writer_is_refused_with_the_holders_pid(void **state)
{
	struct vd_image *img = make("o.vd", 1 << 20, 0), *other = NULL;
	struct vd_open_opts oo;
	struct errmsg err = {{0}};
	char want[64];

	vd_open_opts_init(&oo);
	snprintf(want, sizeof(want), "in use by process %d", (int)getpid());
	for (unsigned flags = 0; flags <= VD_OPEN_RDWR; flags += VD_OPEN_RDWR) {
		oo.flags = flags;
		assert_int_equal(vd_open(path_of("o.vd"), &oo, &other, &err), -EBUSY);
		assert_null(other);
		assert_non_null(strstr(err.msg, want));
		assert_non_null(strstr(err.msg, path_of("o.vd")));
	}
	/* force-share readers still get in, and see the data */
	oo.flags = VD_OPEN_FORCE_SHARE;
	assert_int_equal(vd_open(path_of("o.vd"), &oo, &other, &err), 0);
	assert_int_equal(vd_close(other), 0);
	assert_int_equal(vd_close(img), 0);
	/* readers share; a writer then waits for them all */
	struct vd_image *r1 = reopen("o.vd", 0), *r2 = reopen("o.vd", 0);

	oo.flags = VD_OPEN_RDWR;
	assert_int_equal(vd_open(path_of("o.vd"), &oo, &other, &err), -EBUSY);
	assert_int_equal(vd_close(r1), 0);
	assert_int_equal(vd_close(r2), 0);
	assert_int_equal(vd_open(path_of("o.vd"), &oo, &other, &err), 0);
	assert_int_equal(vd_close(other), 0);
}

/* Bug found by the CLI tests: zeroing part of a cluster starting at its
 * first byte did nothing. */
static void test_write_zeroes_sub_cluster_at_cluster_start(void **state)
{
	struct vd_image *img = make("p.vd", 16 << 20, 0);
	uint8_t buf[65536];

	fill(buf, sizeof(buf), 0x66);
	assert_int_equal(vd_pwrite(img, buf, sizeof(buf), 6 << 20), 0);
	assert_int_equal(vd_write_zeroes(img, 6 << 20, 512), 0);
	assert_pattern(img, 6 << 20, 512, 0);
	assert_pattern(img, (6 << 20) + 512, 65536 - 512, 0x66);
	/* across two partial clusters, neither whole */
	assert_int_equal(vd_pwrite(img, buf, sizeof(buf), 7 << 20), 0);
	assert_int_equal(vd_write_zeroes(img, (7 << 20) - 4096, 8192), 0);
	assert_pattern(img, 7 << 20, 4096, 0);
	assert_pattern(img, (7 << 20) + 4096, 4096, 0x66);
	check_clean(img);
	assert_int_equal(vd_close(img), 0);
}

/* Bug found by the CLI tests: replaying a journal into an image opened with
 * O_DIRECT wrote unaligned records and failed with EINVAL. */
static void test_journal_replays_after_a_killed_writer(void **state)
{
	struct vd_image *img = make("q.vd", 16 << 20, 0);
	struct vd_info info;
	int status;
	pid_t pid;

	assert_int_equal(vd_close(img), 0);
	pid = fork();
	if (pid == 0) {
		uint8_t buf[65536];
		struct vd_image *w = reopen("q.vd", VD_OPEN_RDWR);

		memset(buf, 0x22, sizeof(buf));
		if (vd_pwrite(w, buf, sizeof(buf), 3 << 20) || vd_flush(w)) {
			_exit(1);
		}
		_exit(0); /* no close: the journal holds the transaction */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	img = reopen("q.vd", 0);
	assert_int_equal(vd_get_info(img, &info), 0);
	assert_true(info.dirty);
	assert_pattern(img, 3 << 20, 65536, 0x22);
	assert_int_equal(vd_close(img), 0);
	img = reopen("q.vd", VD_OPEN_RDWR);
	assert_pattern(img, 3 << 20, 65536, 0x22);
	check_clean(img);
	assert_int_equal(vd_close(img), 0);
	img = reopen("q.vd", 0);
	assert_int_equal(vd_get_info(img, &info), 0);
	assert_false(info.dirty);
	assert_pattern(img, 3 << 20, 65536, 0x22);
	assert_int_equal(vd_close(img), 0);
}

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unwritten_reads_zero_and_costs_nothing),
		cmocka_unit_test(test_write_read_round_trip_across_clusters),
		cmocka_unit_test(test_misaligned_buffers_are_bounced),
		cmocka_unit_test(test_bad_ranges_are_refused),
		cmocka_unit_test(test_discard_gives_space_back),
		cmocka_unit_test(test_write_zeroes_frees_whole_and_zeroes_partial),
		cmocka_unit_test(test_freed_clusters_are_reused_after_checkpoint),
		cmocka_unit_test(test_map_reports_extents),
		cmocka_unit_test(test_cache_stays_bounded_under_scattered_writes),
		cmocka_unit_test(test_async_keeps_many_requests_in_flight),
		cmocka_unit_test(test_preallocation_maps_every_cluster),
		cmocka_unit_test(test_map_of_a_huge_sparse_image),
		cmocka_unit_test(test_create_refuses_bad_options),
		cmocka_unit_test(test_damaged_headers_are_refused_untouched),
		cmocka_unit_test(test_short_and_foreign_files_are_refused),
		cmocka_unit_test(test_dirty_flag_is_set_while_open),
		cmocka_unit_test(test_second_writer_is_refused_with_the_holders_pid),
		cmocka_unit_test(test_write_zeroes_sub_cluster_at_cluster_start),
		cmocka_unit_test(test_journal_replays_after_a_killed_writer),
	};

	return cmocka_run_group_tests_name("vdisk_image", tests, setup, teardown);
}
