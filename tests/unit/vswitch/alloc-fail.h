/* SPDX-License-Identifier: MIT */
/* alloc-fail.h: makes the n-th allocation fail, to walk the out-of-memory
 * path of every allocation in a call.  The test program links with
 * -Wl,--wrap=malloc,--wrap=calloc (tests/unit/vswitch/meson.build), which
 * sends the library's and the test's own calls here; include this header
 * in exactly one file of such a program, after cmocka.h. */
#ifndef VSW_TEST_ALLOC_FAIL_H
#define VSW_TEST_ALLOC_FAIL_H

#include <stddef.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);

/* Allocations left before one fails; negative: none fails. */
static long alloc_countdown = -1;

static int alloc_should_fail(void)
{
	if (alloc_countdown < 0) {
		return 0;
	}
	return alloc_countdown-- == 0;
}

void *__wrap_malloc(size_t size)
{
	return alloc_should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return alloc_should_fail() ? NULL : __real_calloc(n, size);
}

/* Calls 'attempt' with the 0th, 1st, 2nd... allocation failing until it
 * succeeds, and checks that each failure returned -ENOMEM.  Returns how
 * many attempts failed: the number of allocations the call makes.  The
 * caller undoes the final, successful attempt. */
static long alloc_fail_walk(int (*attempt)(void *arg), void *arg)
{
	long n;
	int ret;

	for (n = 0;; n++) {
		alloc_countdown = n;
		ret = attempt(arg);
		alloc_countdown = -1;
		if (ret == 0) {
			return n;
		}
		assert_int_equal(ret, -ENOMEM);
	}
}

#endif
