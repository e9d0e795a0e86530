/* SPDX-License-Identifier: MIT */
/* testutil.h: helpers the vdisk test programs share: open or fail with the
 * library's sentence, write and check one-byte patterns, and assert that
 * check finds nothing (printing what it found otherwise).  Include after
 * cmocka.h. */
#ifndef VD_TESTUTIL_H
#define VD_TESTUTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vdisk.h"

static inline struct vd_image *tu_open(const char *path, unsigned flags)
{
	struct vd_open_opts oo;
	struct vd_image *img = NULL;
	struct errmsg err = {{0}};

	vd_open_opts_init(&oo);
	oo.flags = flags;
	if (vd_open(path, &oo, &img, &err) != 0) {
		fail_msg("open %s: %s", path, err.msg);
	}
	return img;
}

static inline void tu_put(struct vd_image *img, uint64_t off, uint32_t len, uint8_t v)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	memset(buf, v, len);
	assert_int_equal(vd_pwrite(img, buf, len, off), 0);
	free(buf);
}

static inline void tu_expect(struct vd_image *img, uint64_t off, uint32_t len, uint8_t v)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(vd_pread(img, buf, len, off), 0);
	for (uint32_t i = 0; i < len; i++) {
		if (buf[i] != v) {
			fail_msg("%s: byte %u at 0x%llx is 0x%02x, want 0x%02x", vd_path(img), i,
				 (unsigned long long)off, buf[i], v);
		}
	}
	free(buf);
}

static inline void tu_say(void *arg, const char *sentence)
{
	print_message("check %s: %s\n", (const char *)arg, sentence);
}

static inline void tu_clean(struct vd_image *img)
{
	struct vd_check_result r;

	assert_int_equal(vd_check(img, 0, &r, tu_say, (void *)vd_path(img), NULL), 0);
	assert_int_equal(r.corruptions, 0);
	assert_int_equal(r.leaks, 0);
}

#endif
