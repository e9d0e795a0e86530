/* SPDX-License-Identifier: MIT */
/* test_vset.c: VLAN sets (vlan/vset.c): membership at the edges of 1-4094,
 * iteration, the "10,20-30" text form in both directions, and every way a
 * list can be malformed, each leaving the set as it was. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errmsg.h"
#include "vlan.h"

static int set_setup(void **state)
{
	struct vlan_set *set;

	if (vlan_set_create(&set) < 0) {
		return -1;
	}
	*state = set;
	return 0;
}

static int set_teardown(void **state)
{
	vlan_set_destroy(*state);
	return 0;
}

static void assert_format(const struct vlan_set *set, const char *expect)
{
	char text[VLAN_SET_TEXT_MAX_BYTES];

	assert_int_equal(vlan_set_format(set, text, sizeof(text)), (int)strlen(expect));
	assert_string_equal(text, expect);
}

/* Makes '*set' the members of 'text', which must parse. */
static void parse_ok(struct vlan_set *set, const char *text)
{
	struct errmsg err = {{0}};

	assert_int_equal(vlan_set_parse(set, text, &err), 0);
	assert_string_equal(err.msg, "");
}

/* --- Membership --- */

static void test_new_set_is_empty_and_holds_nothing(void **state)
{
	struct vlan_set *set = *state;
	unsigned int vid;

	assert_true(vlan_set_is_empty(set));
	assert_int_equal(vlan_set_count(set), 0);
	assert_int_equal(vlan_set_next(set, 0), 0);
	for (vid = 0; vid <= 0xffff; vid++) {
		assert_false(vlan_set_contains(set, (uint16_t)vid));
	}
	assert_format(set, "");
}

static void test_add_and_remove_each_vid_alone(void **state)
{
	struct vlan_set *set = *state;
	unsigned int vid;

	for (vid = VLAN_VID_MIN; vid <= VLAN_VID_MAX; vid++) {
		assert_int_equal(vlan_set_add(set, (uint16_t)vid), 0);
		assert_true(vlan_set_contains(set, (uint16_t)vid));
		assert_false(vlan_set_contains(set, (uint16_t)(vid - 1)));
		assert_false(vlan_set_contains(set, (uint16_t)(vid + 1)));
		assert_int_equal(vlan_set_count(set), 1);
		assert_int_equal(vlan_set_next(set, 0), vid);
		assert_int_equal(vlan_set_next(set, (uint16_t)vid), 0);
		assert_int_equal(vlan_set_remove(set, (uint16_t)vid), 0);
		assert_true(vlan_set_is_empty(set));
	}
}

static void test_vid_zero_and_4095_and_above_are_never_members(void **state)
{
	struct vlan_set *set = *state;
	const uint16_t bad[] = {0, 4095, 4096, 0xffff};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vlan_set_add(set, bad[i]), -EINVAL);
		assert_int_equal(vlan_set_remove(set, bad[i]), -EINVAL);
		assert_false(vlan_set_contains(set, bad[i]));
	}
	assert_true(vlan_set_is_empty(set));
	assert_int_equal(vlan_set_add_range(set, 1, 4094), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(vlan_set_contains(set, bad[i]));
	}
}

static void test_null_set_contains_nothing(void **state)
{
	assert_false(vlan_set_contains(NULL, 1));
	assert_false(vlan_set_contains(NULL, 100));
}

static void test_add_range_adds_inclusive_bounds_only(void **state)
{
	struct vlan_set *set = *state;
	unsigned int vid;

	assert_int_equal(vlan_set_add_range(set, 20, 30), 0);
	assert_int_equal(vlan_set_count(set), 11);
	for (vid = 0; vid <= 4095; vid++) {
		assert_int_equal(vlan_set_contains(set, (uint16_t)vid), vid >= 20 && vid <= 30);
	}
	assert_int_equal(vlan_set_add_range(set, 4000, 4000), 0);
	assert_int_equal(vlan_set_count(set), 12);
}

static void test_add_range_rejects_bad_bounds_and_changes_nothing(void **state)
{
	struct vlan_set *set = *state;

	assert_int_equal(vlan_set_add(set, 5), 0);
	assert_int_equal(vlan_set_add_range(set, 0, 10), -EINVAL);
	assert_int_equal(vlan_set_add_range(set, 10, 4095), -EINVAL);
	assert_int_equal(vlan_set_add_range(set, 30, 20), -EINVAL);
	assert_int_equal(vlan_set_count(set), 1);
	assert_true(vlan_set_contains(set, 5));
}

static void test_full_range_holds_4094_vlans_and_iterates_in_order(void **state)
{
	struct vlan_set *set = *state;
	unsigned int expect = 1, n = 0;
	uint16_t vid;

	assert_int_equal(vlan_set_add_range(set, VLAN_VID_MIN, VLAN_VID_MAX), 0);
	assert_int_equal(vlan_set_count(set), 4094);
	for (vid = vlan_set_next(set, 0); vid; vid = vlan_set_next(set, vid)) {
		assert_int_equal(vid, expect);
		expect++;
		n++;
	}
	assert_int_equal(n, 4094);
	assert_int_equal(vlan_set_next(set, 4094), 0);
	assert_int_equal(vlan_set_next(set, 4095), 0);
	assert_int_equal(vlan_set_next(set, 0xffff), 0);
}

static void test_next_skips_gaps_across_words(void **state)
{
	struct vlan_set *set = *state;

	assert_int_equal(vlan_set_add(set, 63), 0);
	assert_int_equal(vlan_set_add(set, 64), 0);
	assert_int_equal(vlan_set_add(set, 1000), 0);
	assert_int_equal(vlan_set_add(set, 4094), 0);
	assert_int_equal(vlan_set_next(set, 0), 63);
	assert_int_equal(vlan_set_next(set, 63), 64);
	assert_int_equal(vlan_set_next(set, 64), 1000);
	assert_int_equal(vlan_set_next(set, 500), 1000);
	assert_int_equal(vlan_set_next(set, 1000), 4094);
	assert_int_equal(vlan_set_next(set, 4094), 0);
}

static void test_clone_copy_equal_and_clear(void **state)
{
	struct vlan_set *set = *state, *copy;

	assert_int_equal(vlan_set_add_range(set, 100, 200), 0);
	assert_int_equal(vlan_set_clone(set, &copy), 0);
	assert_true(vlan_set_equal(set, copy));
	assert_int_equal(vlan_set_add(copy, 7), 0);
	assert_false(vlan_set_equal(set, copy));
	assert_false(vlan_set_contains(set, 7)); /* a clone shares nothing */
	vlan_set_copy(copy, set);
	assert_true(vlan_set_equal(set, copy));
	vlan_set_clear(copy);
	assert_true(vlan_set_is_empty(copy));
	assert_int_equal(vlan_set_count(set), 101);
	vlan_set_destroy(copy);
}

static void test_destroy_accepts_null(void **state)
{
	vlan_set_destroy(NULL);
}

/* --- Parse --- */

static void test_parse_reads_single_ids_and_ranges(void **state)
{
	struct vlan_set *set = *state;

	parse_ok(set, "10,20-30");
	assert_int_equal(vlan_set_count(set), 12);
	assert_true(vlan_set_contains(set, 10));
	assert_true(vlan_set_contains(set, 20));
	assert_true(vlan_set_contains(set, 30));
	assert_false(vlan_set_contains(set, 11));
	assert_false(vlan_set_contains(set, 31));
}

static void test_parse_of_empty_or_blank_text_gives_empty_set(void **state)
{
	struct vlan_set *set = *state;

	parse_ok(set, "1-100");
	parse_ok(set, "");
	assert_true(vlan_set_is_empty(set));
	parse_ok(set, "1-100");
	parse_ok(set, "  \t ");
	assert_true(vlan_set_is_empty(set));
}

static void test_parse_replaces_previous_members(void **state)
{
	struct vlan_set *set = *state;

	parse_ok(set, "1-10");
	parse_ok(set, "20");
	assert_int_equal(vlan_set_count(set), 1);
	assert_true(vlan_set_contains(set, 20));
}

static void test_parse_allows_blanks_around_items(void **state)
{
	struct vlan_set *set = *state;

	parse_ok(set, " 10 , 20 - 30\t,\t40 ");
	assert_format(set, "10,20-30,40");
}

static void test_parse_accepts_extremes_overlaps_and_duplicates(void **state)
{
	struct vlan_set *set = *state;

	parse_ok(set, "1-4094");
	assert_int_equal(vlan_set_count(set), 4094);
	parse_ok(set, "1,4094");
	assert_format(set, "1,4094");
	parse_ok(set, "5-15,1-10,10,10,12-12");
	assert_format(set, "1-15");
	parse_ok(set, "007,0100");
	assert_format(set, "7,100");
}

static void test_parse_rejects_malformed_lists_and_changes_nothing(void **state)
{
	static const char *const bad[] = {
		"0", "4095", "1-4095", "0-10", "99999999999999999999999", "30-20", "1,,2", "1,",
		",1", ",", "-5", "5-", "5--6", "1-2-3", "abc", "10a", "1 2", "0x10", "+5",
		"1;2", "1.5", "١", "10,20-", " - ", "4096",
	};
	struct vlan_set *set = *state, *before;
	struct errmsg err;
	size_t i;

	parse_ok(set, "7,8,100-200");
	assert_int_equal(vlan_set_clone(set, &before), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		assert_int_equal(vlan_set_parse(set, bad[i], &err), -EINVAL);
		assert_true(vlan_set_equal(set, before));
		assert_non_null(strstr(err.msg, "VLAN list"));
		assert_non_null(strstr(err.msg, "offset"));
	}
	assert_int_equal(vlan_set_parse(set, NULL, &err), -EINVAL);
	assert_true(vlan_set_equal(set, before));
	vlan_set_destroy(before);
}

static void test_parse_error_names_the_offending_offset(void **state)
{
	struct vlan_set *set = *state;
	struct errmsg err = {{0}};

	assert_int_equal(vlan_set_parse(set, "10,20,4095", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"4095\" at offset 6"));
	assert_int_equal(vlan_set_parse(set, "10,30-20", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "30-20 at offset 3"));
	assert_int_equal(vlan_set_parse(set, "10;20", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "';' at offset 2"));
	assert_int_equal(vlan_set_parse(set, "10,", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "expected a VLAN ID at offset 3"));
}

static void test_parse_without_errmsg_still_fails_cleanly(void **state)
{
	struct vlan_set *set = *state;

	assert_int_equal(vlan_set_parse(set, "bogus", NULL), -EINVAL);
	assert_int_equal(vlan_set_parse(set, "12", NULL), 0);
	assert_true(vlan_set_contains(set, 12));
}

/* --- Format --- */

static void test_format_writes_runs_as_ranges(void **state)
{
	struct vlan_set *set = *state;

	assert_int_equal(vlan_set_add(set, 10), 0);
	assert_format(set, "10");
	assert_int_equal(vlan_set_add(set, 11), 0);
	assert_format(set, "10-11");
	assert_int_equal(vlan_set_add_range(set, 20, 30), 0);
	assert_int_equal(vlan_set_add(set, 4094), 0);
	assert_format(set, "10-11,20-30,4094");
	vlan_set_clear(set);
	assert_int_equal(vlan_set_add_range(set, 1, 4094), 0);
	assert_format(set, "1-4094");
}

static void test_format_fails_with_enospc_when_one_byte_short(void **state)
{
	struct vlan_set *set = *state;
	char text[32];
	size_t len = strlen("10,20-30");

	parse_ok(set, "10,20-30");
	memset(text, 'x', sizeof(text));
	assert_int_equal(vlan_set_format(set, text, len + 1), (int)len);
	assert_string_equal(text, "10,20-30");
	for (size_t size = 1; size <= len; size++) {
		memset(text, 'x', sizeof(text));
		assert_int_equal(vlan_set_format(set, text, size), -ENOSPC);
		assert_string_equal(text, "");
		assert_int_equal(text[size], 'x'); /* nothing past 'size' */
	}
	assert_int_equal(vlan_set_format(set, text, 0), -ENOSPC);
}

static void test_format_of_worst_case_set_fits_max_text(void **state)
{
	struct vlan_set *set = *state;
	char *text;
	unsigned int vid;
	int len;

	/* Every other VID: the most items, hence the longest text. */
	for (vid = 1; vid <= VLAN_VID_MAX; vid += 2) {
		assert_int_equal(vlan_set_add(set, (uint16_t)vid), 0);
	}
	text = malloc(VLAN_SET_TEXT_MAX_BYTES);
	assert_non_null(text);
	len = vlan_set_format(set, text, VLAN_SET_TEXT_MAX_BYTES);
	assert_true(len > 0);
	assert_true((size_t)len < VLAN_SET_TEXT_MAX_BYTES);
	assert_int_equal(strlen(text), (size_t)len);
	assert_memory_equal(text, "1,3,5,", 6);
	free(text);
}

static void test_format_and_parse_round_trip_random_sets(void **state)
{
	struct vlan_set *set = *state, *back;
	char text[VLAN_SET_TEXT_MAX_BYTES];
	unsigned int seed = 12345, round, i, n;

	assert_int_equal(vlan_set_create(&back), 0);
	for (round = 0; round < 200; round++) {
		vlan_set_clear(set);
		n = (round * 7) % 300;
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			assert_int_equal(vlan_set_add(set, (uint16_t)(1 + (seed >> 8) % 4094)), 0);
		}
		if (round % 5 == 0) {
			assert_int_equal(vlan_set_add_range(set, (uint16_t)(1 + round), 4094), 0);
		}
		assert_true(vlan_set_format(set, text, sizeof(text)) >= 0);
		parse_ok(back, text);
		assert_true(vlan_set_equal(set, back));
	}
	vlan_set_destroy(back);
}

#define SET_TEST(fn) cmocka_unit_test_setup_teardown(fn, set_setup, set_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		SET_TEST(test_new_set_is_empty_and_holds_nothing),
		SET_TEST(test_add_and_remove_each_vid_alone),
		SET_TEST(test_vid_zero_and_4095_and_above_are_never_members),
		cmocka_unit_test(test_null_set_contains_nothing),
		SET_TEST(test_add_range_adds_inclusive_bounds_only),
		SET_TEST(test_add_range_rejects_bad_bounds_and_changes_nothing),
		SET_TEST(test_full_range_holds_4094_vlans_and_iterates_in_order),
		SET_TEST(test_next_skips_gaps_across_words),
		SET_TEST(test_clone_copy_equal_and_clear),
		cmocka_unit_test(test_destroy_accepts_null),
		SET_TEST(test_parse_reads_single_ids_and_ranges),
		SET_TEST(test_parse_of_empty_or_blank_text_gives_empty_set),
		SET_TEST(test_parse_replaces_previous_members),
		SET_TEST(test_parse_allows_blanks_around_items),
		SET_TEST(test_parse_accepts_extremes_overlaps_and_duplicates),
		SET_TEST(test_parse_rejects_malformed_lists_and_changes_nothing),
		SET_TEST(test_parse_error_names_the_offending_offset),
		SET_TEST(test_parse_without_errmsg_still_fails_cleanly),
		SET_TEST(test_format_writes_runs_as_ranges),
		SET_TEST(test_format_fails_with_enospc_when_one_byte_short),
		SET_TEST(test_format_of_worst_case_set_fits_max_text),
		SET_TEST(test_format_and_parse_round_trip_random_sets),
	};

	return cmocka_run_group_tests_name("vlan_vset", tests, NULL, NULL);
}
