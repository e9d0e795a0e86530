/* SPDX-License-Identifier: MIT */
/* test_tag.c: tag parsing, push and pop on byte buffers (vlan/tag.c).  Every
 * TCI value is round-tripped, every short length is tried, and each failure
 * is checked to leave the buffer exactly as it was. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "frames.h"
#include "vlan.h"

#define BUF_BYTES 256

/* A buffer and a snapshot of it, to prove a failed call changed nothing. */
struct fixture {
	uint8_t bytes[BUF_BYTES];
	struct vlan_buf buf;
	uint8_t saved_bytes[BUF_BYTES];
	struct vlan_buf saved_buf;
};

/* Puts a frame with 'n_tags' tags at offset 'head' of 'fx'. */
static void fixture_frame(struct fixture *fx, size_t head, const struct vlan_tag *tags,
			  unsigned int n_tags, size_t payload_bytes)
{
	memset(fx->bytes, 0xee, sizeof(fx->bytes));
	fx->buf.base = fx->bytes;
	fx->buf.head_bytes = head;
	fx->buf.cap_bytes = sizeof(fx->bytes);
	fx->buf.len_bytes =
		frame_build(fx->bytes + head, tags, n_tags, FRAME_ETHERTYPE_IPV4, payload_bytes);
}

static void fixture_save(struct fixture *fx)
{
	memcpy(fx->saved_bytes, fx->bytes, sizeof(fx->bytes));
	fx->saved_buf = fx->buf;
}

static void assert_unchanged(const struct fixture *fx)
{
	assert_memory_equal(fx->bytes, fx->saved_bytes, sizeof(fx->bytes));
	assert_ptr_equal(fx->buf.base, fx->saved_buf.base);
	assert_int_equal(fx->buf.head_bytes, fx->saved_buf.head_bytes);
	assert_int_equal(fx->buf.len_bytes, fx->saved_buf.len_bytes);
	assert_int_equal(fx->buf.cap_bytes, fx->saved_buf.cap_bytes);
}

static void assert_tag_equal(const struct vlan_tag *a, const struct vlan_tag *b)
{
	assert_int_equal(a->tpid, b->tpid);
	assert_int_equal(a->vid, b->vid);
	assert_int_equal(a->pcp, b->pcp);
	assert_int_equal(a->dei, b->dei);
}

/* --- TPIDs --- */

static void test_tpid_recognises_only_8021q_and_8021ad(void **state)
{
	unsigned int tpid;

	for (tpid = 0; tpid <= 0xffff; tpid++) {
		bool expect = tpid == 0x8100 || tpid == 0x88a8;

		assert_int_equal(vlan_tpid_is_vlan((uint16_t)tpid), expect);
	}
}

/* --- Parse --- */

static void test_parse_untagged_frame_has_no_tags(void **state)
{
	uint8_t frame[BUF_BYTES];
	struct vlan_frame info;
	size_t len;

	len = frame_build(frame, NULL, 0, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	assert_int_equal(vlan_frame_parse(frame, len, &info), 0);
	assert_int_equal(info.n_tags, 0);
	assert_int_equal(info.ethertype, FRAME_ETHERTYPE_IPV4);
	assert_int_equal(info.payload_offset_bytes, 14);
}

static void test_parse_single_8021q_tag(void **state)
{
	struct vlan_tag tag = {.tpid = VLAN_TPID_8021Q, .vid = 100, .pcp = 5, .dei = true};
	uint8_t frame[BUF_BYTES];
	struct vlan_frame info;
	size_t len;

	len = frame_build(frame, &tag, 1, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	assert_int_equal(vlan_frame_parse(frame, len, &info), 0);
	assert_int_equal(info.n_tags, 1);
	assert_tag_equal(&info.tags[0], &tag);
	assert_int_equal(info.ethertype, FRAME_ETHERTYPE_IPV4);
	assert_int_equal(info.payload_offset_bytes, 18);
}

static void test_parse_8021ad_over_8021q_gives_outer_first(void **state)
{
	struct vlan_tag tags[2] = {tag_ad(300, 1), tag_q(42, 6)};
	uint8_t frame[BUF_BYTES];
	struct vlan_frame info;
	size_t len;

	len = frame_build(frame, tags, 2, 0x86dd, 10);
	assert_int_equal(vlan_frame_parse(frame, len, &info), 0);
	assert_int_equal(info.n_tags, 2);
	assert_tag_equal(&info.tags[0], &tags[0]);
	assert_tag_equal(&info.tags[1], &tags[1]);
	assert_int_equal(info.ethertype, 0x86dd);
	assert_int_equal(info.payload_offset_bytes, 22);
}

static void test_parse_reports_three_tags_of_four_and_next_tpid(void **state)
{
	struct vlan_tag tags[4] = {tag_ad(1, 0), tag_q(0, 5), tag_q(3, 0), tag_q(4, 0)};
	uint8_t frame[BUF_BYTES];
	struct vlan_frame info;
	size_t len;

	len = frame_build(frame, tags, 4, FRAME_ETHERTYPE_IPV4, 10);
	assert_int_equal(vlan_frame_parse(frame, len, &info), 0);
	assert_int_equal(info.n_tags, VLAN_MAX_TAGS);
	assert_int_equal(info.tags[0].vid, 1);
	assert_int_equal(info.tags[1].vid, 0);
	assert_int_equal(info.tags[1].pcp, 5);
	assert_int_equal(info.tags[2].vid, 3);
	assert_int_equal(info.ethertype, VLAN_TPID_8021Q);
	assert_int_equal(info.payload_offset_bytes, 26);
}

static void test_parse_rejects_null_and_frames_shorter_than_header(void **state)
{
	uint8_t frame[BUF_BYTES];
	struct vlan_frame info;
	size_t len;

	frame_build(frame, NULL, 0, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	for (len = 0; len < VLAN_ETH_HDR_BYTES; len++) {
		assert_int_equal(vlan_frame_parse(frame, len, &info), -EINVAL);
	}
	assert_int_equal(vlan_frame_parse(NULL, 60, &info), -EINVAL);
	assert_int_equal(vlan_frame_parse(frame, VLAN_ETH_HDR_BYTES, &info), 0);
}

static void test_parse_rejects_outer_tag_cut_short(void **state)
{
	struct vlan_tag tag = tag_q(7, 0);
	struct vlan_frame info = {.n_tags = 99};
	uint8_t frame[BUF_BYTES];
	size_t len;

	frame_build(frame, &tag, 1, FRAME_ETHERTYPE_IPV4, 0);
	for (len = VLAN_ETH_HDR_BYTES; len < 18; len++) {
		assert_int_equal(vlan_frame_parse(frame, len, &info), -EINVAL);
		assert_int_equal(info.n_tags, 99); /* untouched on failure */
	}
	assert_int_equal(vlan_frame_parse(frame, 18, &info), 0);
	assert_int_equal(info.n_tags, 1);
	assert_int_equal(info.payload_offset_bytes, 18);
}

static void test_parse_rejects_inner_tags_cut_short(void **state)
{
	struct vlan_tag tags[3] = {tag_ad(7, 0), tag_q(0, 0), tag_q(8, 0)};
	uint8_t frame[BUF_BYTES];
	struct vlan_frame info;
	size_t len;
	unsigned int n_tags;

	for (n_tags = 2; n_tags <= 3; n_tags++) {
		frame_build(frame, tags, n_tags, FRAME_ETHERTYPE_IPV4, 0);
		for (len = 14 + 4 * (n_tags - 1); len < 14 + 4 * n_tags; len++) {
			assert_int_equal(vlan_frame_parse(frame, len, &info), -EINVAL);
		}
		assert_int_equal(vlan_frame_parse(frame, len, &info), 0);
		assert_int_equal(info.n_tags, n_tags);
	}
}

static void test_parse_unpacks_every_tci(void **state)
{
	uint8_t frame[BUF_BYTES];
	struct vlan_frame info;
	unsigned int tci;
	size_t len;

	len = frame_build(frame, NULL, 0, 0x8100, 10); /* rewrite the TCI below */
	for (tci = 0; tci <= 0xffff; tci++) {
		frame[14] = (uint8_t)(tci >> 8);
		frame[15] = (uint8_t)tci;
		frame[16] = 0x08;
		frame[17] = 0x00;
		assert_int_equal(vlan_frame_parse(frame, len, &info), 0);
		assert_int_equal(info.n_tags, 1);
		assert_int_equal(info.tags[0].vid, tci & 0xfff);
		assert_int_equal(info.tags[0].dei, (tci >> 12) & 1);
		assert_int_equal(info.tags[0].pcp, tci >> 13);
	}
}

/* --- Push --- */

static void test_push_without_headroom_moves_payload_into_tailroom(void **state)
{
	struct vlan_tag tag = {.tpid = VLAN_TPID_8021Q, .vid = 10, .pcp = 3, .dei = true};
	uint8_t expect[BUF_BYTES];
	struct fixture fx;
	size_t expect_len;

	fixture_frame(&fx, 0, NULL, 0, FRAME_PAYLOAD_BYTES);
	expect_len = frame_build(expect, &tag, 1, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	assert_int_equal(vlan_tag_push(&fx.buf, &tag), 0);
	assert_int_equal(fx.buf.head_bytes, 0);
	assert_int_equal(fx.buf.len_bytes, expect_len);
	assert_memory_equal(vlan_buf_data(&fx.buf), expect, expect_len);
	assert_int_equal(fx.bytes[expect_len], 0xee); /* nothing written past the frame */
}

static void test_push_with_headroom_moves_only_addresses(void **state)
{
	struct vlan_tag tag = tag_ad(4094, 7);
	uint8_t expect[BUF_BYTES];
	struct fixture fx;
	size_t expect_len;

	fixture_frame(&fx, 32, NULL, 0, FRAME_PAYLOAD_BYTES);
	fixture_save(&fx);
	expect_len = frame_build(expect, &tag, 1, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	assert_int_equal(vlan_tag_push(&fx.buf, &tag), 0);
	assert_int_equal(fx.buf.head_bytes, 28);
	assert_int_equal(fx.buf.len_bytes, expect_len);
	assert_memory_equal(vlan_buf_data(&fx.buf), expect, expect_len);
	/* Type and payload stayed where they were: only 12 bytes moved. */
	assert_memory_equal(fx.bytes + 32 + 12, fx.saved_bytes + 32 + 12, 2 + FRAME_PAYLOAD_BYTES);
	assert_memory_equal(fx.bytes + 32 + 60, fx.saved_bytes + 32 + 60, BUF_BYTES - 92);
}

static void test_push_uses_tailroom_when_headroom_is_under_four_bytes(void **state)
{
	struct vlan_tag tag = tag_q(5, 0);
	uint8_t expect[BUF_BYTES];
	struct fixture fx;
	size_t expect_len;

	fixture_frame(&fx, 3, NULL, 0, 20);
	expect_len = frame_build(expect, &tag, 1, FRAME_ETHERTYPE_IPV4, 20);
	assert_int_equal(vlan_tag_push(&fx.buf, &tag), 0);
	assert_int_equal(fx.buf.head_bytes, 3);
	assert_memory_equal(vlan_buf_data(&fx.buf), expect, expect_len);
}

static void test_push_fits_in_exactly_four_bytes_of_tailroom(void **state)
{
	struct vlan_tag tag = tag_q(5, 0);
	struct fixture fx;

	fixture_frame(&fx, 0, NULL, 0, 20);
	fx.buf.cap_bytes = fx.buf.len_bytes + VLAN_TAG_BYTES;
	assert_int_equal(vlan_tag_push(&fx.buf, &tag), 0);
	assert_int_equal(fx.buf.len_bytes, fx.buf.cap_bytes);
	assert_int_equal(fx.bytes[fx.buf.cap_bytes], 0xee);
}

static void test_push_without_room_fails_with_enospc_and_changes_nothing(void **state)
{
	struct vlan_tag tag = tag_q(5, 0);
	struct fixture fx;
	size_t slack;

	for (slack = 0; slack < VLAN_TAG_BYTES; slack++) {
		fixture_frame(&fx, 0, NULL, 0, 20);
		fx.buf.cap_bytes = fx.buf.len_bytes + slack;
		fixture_save(&fx);
		assert_int_equal(vlan_tag_push(&fx.buf, &tag), -ENOSPC);
		assert_unchanged(&fx);
	}
	/* Headroom of 3 and tailroom of 0 do not add up to a tag either. */
	fixture_frame(&fx, 3, NULL, 0, 20);
	fx.buf.cap_bytes = 3 + fx.buf.len_bytes;
	fixture_save(&fx);
	assert_int_equal(vlan_tag_push(&fx.buf, &tag), -ENOSPC);
	assert_unchanged(&fx);
}

static void test_push_rejects_unpushable_tags_and_changes_nothing(void **state)
{
	struct vlan_tag bad[] = {
		{.tpid = VLAN_TPID_8021Q, .vid = 4095},
		{.tpid = VLAN_TPID_8021Q, .vid = 0xffff},
		{.tpid = VLAN_TPID_8021Q, .vid = 1, .pcp = 8},
		{.tpid = 0x0800, .vid = 1},
		{.tpid = 0x9100, .vid = 1},
		{.tpid = 0, .vid = 1},
	};
	struct fixture fx;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fixture_frame(&fx, 8, NULL, 0, 20);
		fixture_save(&fx);
		assert_int_equal(vlan_tag_push(&fx.buf, &bad[i]), -EINVAL);
		assert_unchanged(&fx);
	}
	fixture_frame(&fx, 8, NULL, 0, 20);
	fixture_save(&fx);
	assert_int_equal(vlan_tag_push(&fx.buf, NULL), -EINVAL);
	assert_unchanged(&fx);
}

static void test_push_rejects_inconsistent_buffers(void **state)
{
	struct vlan_tag tag = tag_q(5, 0);
	uint8_t bytes[64] = {0};
	struct vlan_buf cases[] = {
		{.base = NULL, .head_bytes = 0, .len_bytes = 20, .cap_bytes = 64},
		{.base = bytes, .head_bytes = 65, .len_bytes = 0, .cap_bytes = 64},
		{.base = bytes, .head_bytes = 50, .len_bytes = 20, .cap_bytes = 64},
		{.base = bytes, .head_bytes = 0, .len_bytes = 65, .cap_bytes = 64},
		{.base = bytes, .head_bytes = SIZE_MAX, .len_bytes = 20, .cap_bytes = 64},
		{.base = bytes, .head_bytes = 8, .len_bytes = SIZE_MAX - 4, .cap_bytes = 64},
		{.base = bytes, .head_bytes = 0, .len_bytes = 13, .cap_bytes = 64},
		{.base = bytes, .head_bytes = 0, .len_bytes = 0, .cap_bytes = 64},
	};
	struct vlan_buf before;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		before = cases[i];
		assert_int_equal(vlan_tag_push(&cases[i], &tag), -EINVAL);
		assert_int_equal(vlan_tag_pop(&cases[i], NULL), -EINVAL);
		assert_memory_equal(&cases[i], &before, sizeof(before));
	}
	assert_int_equal(vlan_tag_push(NULL, &tag), -EINVAL);
	assert_int_equal(vlan_tag_pop(NULL, NULL), -EINVAL);
}

static void test_push_accepts_priority_tag_with_vid_zero(void **state)
{
	struct vlan_tag tag = tag_q(0, 6);
	struct vlan_frame info;
	struct fixture fx;

	fixture_frame(&fx, 4, NULL, 0, 20);
	assert_int_equal(vlan_tag_push(&fx.buf, &tag), 0);
	assert_int_equal(vlan_frame_parse(vlan_buf_data(&fx.buf), fx.buf.len_bytes, &info), 0);
	assert_int_equal(info.n_tags, 1);
	assert_tag_equal(&info.tags[0], &tag);
}

static void test_push_on_tagged_frame_makes_new_tag_outermost(void **state)
{
	struct vlan_tag inner = tag_q(10, 1), outer = tag_ad(20, 2);
	struct vlan_tag both[2] = {outer, inner};
	uint8_t expect[BUF_BYTES];
	struct fixture fx;
	size_t expect_len;

	fixture_frame(&fx, 0, &inner, 1, 30);
	expect_len = frame_build(expect, both, 2, FRAME_ETHERTYPE_IPV4, 30);
	assert_int_equal(vlan_tag_push(&fx.buf, &outer), 0);
	assert_int_equal(fx.buf.len_bytes, expect_len);
	assert_memory_equal(vlan_buf_data(&fx.buf), expect, expect_len);
}

static void test_push_works_on_bare_ethernet_header(void **state)
{
	struct vlan_tag tag = tag_q(9, 0);
	uint8_t expect[BUF_BYTES];
	struct fixture fx;

	fixture_frame(&fx, 0, NULL, 0, 0);
	assert_int_equal(fx.buf.len_bytes, VLAN_ETH_HDR_BYTES);
	frame_build(expect, &tag, 1, FRAME_ETHERTYPE_IPV4, 0);
	assert_int_equal(vlan_tag_push(&fx.buf, &tag), 0);
	assert_int_equal(fx.buf.len_bytes, 18);
	assert_memory_equal(vlan_buf_data(&fx.buf), expect, 18);
}

/* --- Pop --- */

static void test_pop_returns_tag_and_leaves_untagged_frame(void **state)
{
	struct vlan_tag tag = {.tpid = VLAN_TPID_8021AD, .vid = 333, .pcp = 4, .dei = true};
	struct vlan_tag got = {0};
	uint8_t expect[BUF_BYTES];
	struct fixture fx;
	size_t expect_len;

	fixture_frame(&fx, 0, &tag, 1, FRAME_PAYLOAD_BYTES);
	expect_len = frame_build(expect, NULL, 0, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	assert_int_equal(vlan_tag_pop(&fx.buf, &got), 0);
	assert_tag_equal(&got, &tag);
	assert_int_equal(fx.buf.head_bytes, 4); /* the frame now starts 4 bytes later */
	assert_int_equal(fx.buf.len_bytes, expect_len);
	assert_memory_equal(vlan_buf_data(&fx.buf), expect, expect_len);
}

static void test_push_then_pop_round_trips_every_tag(void **state)
{
	struct fixture fx;
	struct vlan_tag tag, got;
	uint8_t original[BUF_BYTES];
	unsigned int vid, pcp, dei, tpid_i;
	const uint16_t tpids[2] = {VLAN_TPID_8021Q, VLAN_TPID_8021AD};
	size_t len;

	len = frame_build(original, NULL, 0, FRAME_ETHERTYPE_IPV4, 8);
	fixture_frame(&fx, 16, NULL, 0, 8);
	for (tpid_i = 0; tpid_i < 2; tpid_i++) {
		for (vid = 0; vid <= VLAN_VID_MAX; vid++) {
			for (pcp = 0; pcp <= VLAN_PCP_MAX; pcp++) {
				for (dei = 0; dei <= 1; dei++) {
					tag.tpid = tpids[tpid_i];
					tag.vid = (uint16_t)vid;
					tag.pcp = (uint8_t)pcp;
					tag.dei = dei != 0;
					assert_int_equal(vlan_tag_push(&fx.buf, &tag), 0);
					assert_int_equal(vlan_tag_pop(&fx.buf, &got), 0);
					assert_tag_equal(&got, &tag);
					assert_int_equal(fx.buf.head_bytes, 16);
					assert_int_equal(fx.buf.len_bytes, len);
					assert_memory_equal(vlan_buf_data(&fx.buf), original, len);
				}
			}
		}
	}
}

static void test_pop_untagged_frame_fails_with_enoent_and_changes_nothing(void **state)
{
	struct fixture fx;

	fixture_frame(&fx, 0, NULL, 0, 20);
	fixture_save(&fx);
	assert_int_equal(vlan_tag_pop(&fx.buf, NULL), -ENOENT);
	assert_unchanged(&fx);
}

static void test_pop_of_tag_cut_short_fails_with_einval(void **state)
{
	struct vlan_tag tag = tag_q(5, 0);
	struct fixture fx;
	size_t len;

	for (len = VLAN_ETH_HDR_BYTES; len < 18; len++) {
		fixture_frame(&fx, 0, &tag, 1, 0);
		fx.buf.len_bytes = len;
		fixture_save(&fx);
		assert_int_equal(vlan_tag_pop(&fx.buf, NULL), -EINVAL);
		assert_unchanged(&fx);
	}
	fixture_frame(&fx, 0, &tag, 1, 0);
	assert_int_equal(vlan_tag_pop(&fx.buf, NULL), 0);
	assert_int_equal(fx.buf.len_bytes, VLAN_ETH_HDR_BYTES);
}

static void test_pop_of_double_tagged_frame_exposes_inner_tag(void **state)
{
	struct vlan_tag tags[2] = {tag_ad(100, 0), tag_q(200, 3)};
	struct vlan_frame info;
	struct vlan_tag got;
	struct fixture fx;

	fixture_frame(&fx, 0, tags, 2, 20);
	assert_int_equal(vlan_tag_pop(&fx.buf, &got), 0);
	assert_tag_equal(&got, &tags[0]);
	assert_int_equal(vlan_frame_parse(vlan_buf_data(&fx.buf), fx.buf.len_bytes, &info), 0);
	assert_int_equal(info.n_tags, 1);
	assert_tag_equal(&info.tags[0], &tags[1]);
}

static void test_pop_leaves_headroom_that_next_push_reuses(void **state)
{
	struct vlan_tag tag = tag_q(77, 0);
	struct fixture fx;

	fixture_frame(&fx, 0, &tag, 1, 20);
	assert_int_equal(vlan_tag_pop(&fx.buf, NULL), 0);
	assert_int_equal(fx.buf.head_bytes, 4);
	fx.buf.cap_bytes = fx.buf.head_bytes + fx.buf.len_bytes; /* no tailroom at all */
	assert_int_equal(vlan_tag_push(&fx.buf, &tag), 0);
	assert_int_equal(fx.buf.head_bytes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tpid_recognises_only_8021q_and_8021ad),
		cmocka_unit_test(test_parse_untagged_frame_has_no_tags),
		cmocka_unit_test(test_parse_single_8021q_tag),
		cmocka_unit_test(test_parse_8021ad_over_8021q_gives_outer_first),
		cmocka_unit_test(test_parse_reports_three_tags_of_four_and_next_tpid),
		cmocka_unit_test(test_parse_rejects_null_and_frames_shorter_than_header),
		cmocka_unit_test(test_parse_rejects_outer_tag_cut_short),
		cmocka_unit_test(test_parse_rejects_inner_tags_cut_short),
		cmocka_unit_test(test_parse_unpacks_every_tci),
		cmocka_unit_test(test_push_without_headroom_moves_payload_into_tailroom),
		cmocka_unit_test(test_push_with_headroom_moves_only_addresses),
		cmocka_unit_test(test_push_uses_tailroom_when_headroom_is_under_four_bytes),
		cmocka_unit_test(test_push_fits_in_exactly_four_bytes_of_tailroom),
		cmocka_unit_test(test_push_without_room_fails_with_enospc_and_changes_nothing),
		cmocka_unit_test(test_push_rejects_unpushable_tags_and_changes_nothing),
		cmocka_unit_test(test_push_rejects_inconsistent_buffers),
		cmocka_unit_test(test_push_accepts_priority_tag_with_vid_zero),
		cmocka_unit_test(test_push_on_tagged_frame_makes_new_tag_outermost),
		cmocka_unit_test(test_push_works_on_bare_ethernet_header),
		cmocka_unit_test(test_pop_returns_tag_and_leaves_untagged_frame),
		cmocka_unit_test(test_push_then_pop_round_trips_every_tag),
		cmocka_unit_test(test_pop_untagged_frame_fails_with_enoent_and_changes_nothing),
		cmocka_unit_test(test_pop_of_tag_cut_short_fails_with_einval),
		cmocka_unit_test(test_pop_of_double_tagged_frame_exposes_inner_tag),
		cmocka_unit_test(test_pop_leaves_headroom_that_next_push_reuses),
	};

	return cmocka_run_group_tests_name("vlan_tag", tests, NULL, NULL);
}
