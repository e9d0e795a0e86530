/* SPDX-License-Identifier: MIT */
/* test_portmode.c: port configuration and the ingress and egress decisions
 * (vlan/portmode.c).  Named cases state each behaviour; a table then pins
 * the ingress answer for every port mode against every kind of frame, and
 * forwarding runs every frame between every pair of ports both in canonical
 * (untagged) form and with its tag kept, which must give the same bytes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "errmsg.h"
#include "frames.h"
#include "vlan.h"

#define FRAME_MAX_BYTES 128
#define HEADROOM_BYTES 32

/* Makes a port or fails the test; 'trunks' and 'cvlans' are list texts,
 * NULL for none. */
static struct vlan_port *port_make(enum vlan_port_mode mode, uint16_t tag, const char *trunks,
				   const char *cvlans, uint16_t tunnel_tpid)
{
	struct vlan_set *trunk_set = NULL, *cvlan_set = NULL;
	struct vlan_port_opts opts;
	struct vlan_port *port = NULL;
	struct errmsg err = {{0}};

	vlan_port_opts_init(&opts);
	opts.mode = mode;
	opts.tag = tag;
	opts.tunnel_tpid = tunnel_tpid;
	if (trunks) {
		assert_int_equal(vlan_set_create(&trunk_set), 0);
		assert_int_equal(vlan_set_parse(trunk_set, trunks, NULL), 0);
		opts.trunks = trunk_set;
	}
	if (cvlans) {
		assert_int_equal(vlan_set_create(&cvlan_set), 0);
		assert_int_equal(vlan_set_parse(cvlan_set, cvlans, NULL), 0);
		opts.cvlans = cvlan_set;
	}
	assert_int_equal(vlan_port_create(&opts, &port, &err), 0);
	assert_string_equal(err.msg, "");
	vlan_set_destroy(trunk_set);
	vlan_set_destroy(cvlan_set);
	return port;
}

/* Expects vlan_port_create() to refuse 'opts' with -EINVAL and a sentence
 * containing 'words'. */
static void assert_create_fails(const struct vlan_port_opts *opts, const char *words)
{
	struct vlan_port *port = NULL;
	struct errmsg err = {{0}};

	assert_int_equal(vlan_port_create(opts, &port, &err), -EINVAL);
	assert_null(port); /* out-parameters are written only on success */
	assert_non_null(strstr(err.msg, words));
}

/* --- The ports and frames every table below refers to --- */

enum port_id {
	P_ACCESS,          /* access, VLAN 10 */
	P_TRUNK,           /* trunk 20,30 */
	P_TRUNK_EMPTY,     /* trunk with an empty list: no VLAN */
	P_NATIVE_TAGGED,   /* native 10, trunk 20,30 */
	P_NATIVE_UNTAGGED, /* native 10, trunk 20,30 */
	P_TUNNEL,          /* service VLAN 10, 802.1ad */
	P_TUNNEL_CVLANS,   /* service VLAN 10, customer VLAN 20 only */
	P_TUNNEL_8021Q,    /* service VLAN 10 with an 802.1Q service tag */
	P_TRUNK_ALL,       /* trunk 1-4094, the uplink of the forwarding tests */
	P_COUNT
};

static struct vlan_port *ports[P_COUNT];

static int ports_setup(void **state)
{
	ports[P_ACCESS] = port_make(VLAN_MODE_ACCESS, 10, NULL, NULL, 0);
	ports[P_TRUNK] = port_make(VLAN_MODE_TRUNK, 0, "20,30", NULL, 0);
	ports[P_TRUNK_EMPTY] = port_make(VLAN_MODE_TRUNK, 0, "", NULL, 0);
	ports[P_NATIVE_TAGGED] = port_make(VLAN_MODE_NATIVE_TAGGED, 10, "20,30", NULL, 0);
	ports[P_NATIVE_UNTAGGED] = port_make(VLAN_MODE_NATIVE_UNTAGGED, 10, "20,30", NULL, 0);
	ports[P_TUNNEL] = port_make(VLAN_MODE_DOT1Q_TUNNEL, 10, NULL, NULL, 0);
	ports[P_TUNNEL_CVLANS] = port_make(VLAN_MODE_DOT1Q_TUNNEL, 10, NULL, "20", 0);
	ports[P_TUNNEL_8021Q] = port_make(VLAN_MODE_DOT1Q_TUNNEL, 10, NULL, NULL, VLAN_TPID_8021Q);
	ports[P_TRUNK_ALL] = port_make(VLAN_MODE_TRUNK, 0, "1-4094", NULL, 0);
	return 0;
}

static int ports_teardown(void **state)
{
	size_t i;

	for (i = 0; i < P_COUNT; i++) {
		vlan_port_destroy(ports[i]);
		ports[i] = NULL;
	}
	return 0;
}

enum frame_id {
	F_UNTAGGED,
	F_PRIO,           /* 802.1Q VID 0, PCP 5, DEI */
	F_PRIO_STACKED,   /* priority tag, then 802.1Q VID 20 */
	F_TAG10,          /* 802.1Q VID 10, PCP 3 */
	F_TAG20,
	F_TAG99,
	F_AD20,           /* 802.1ad VID 20, PCP 3 */
	F_DOUBLE_20_30,   /* 802.1ad 20 outside 802.1Q 30 */
	F_DOUBLE_10_20,   /* 802.1Q 10 outside 802.1Q 20: the double-tagging attack */
	F_RESERVED,       /* 802.1Q VID 4095 */
	F_SHORT,          /* 10 bytes */
	F_CUT,            /* a tag's TPID, then the frame ends */
	F_COUNT
};

static const char *const frame_names[F_COUNT] = {
	"untagged", "prio", "prio-stacked", "tag10", "tag20", "tag99", "ad20",
	"double-20-30", "double-10-20", "reserved", "short", "cut",
};

static size_t frame_make(enum frame_id id, uint8_t *out)
{
	const struct vlan_tag prio = {.tpid = VLAN_TPID_8021Q, .vid = 0, .pcp = 5, .dei = true};
	struct vlan_tag tags[2];

	switch (id) {
	case F_UNTAGGED:
		return frame_build(out, NULL, 0, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	case F_PRIO:
		return frame_build(out, &prio, 1, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	case F_PRIO_STACKED:
		tags[0] = prio;
		tags[1] = tag_q(20, 0);
		return frame_build(out, tags, 2, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	case F_TAG10:
	case F_TAG20:
	case F_TAG99:
		tags[0] = tag_q(id == F_TAG10 ? 10 : id == F_TAG20 ? 20 : 99, 3);
		return frame_build(out, tags, 1, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	case F_AD20:
		tags[0] = tag_ad(20, 3);
		return frame_build(out, tags, 1, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	case F_DOUBLE_20_30:
		tags[0] = tag_ad(20, 3);
		tags[1] = tag_q(30, 1);
		return frame_build(out, tags, 2, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	case F_DOUBLE_10_20:
		tags[0] = tag_q(10, 3);
		tags[1] = tag_q(20, 1);
		return frame_build(out, tags, 2, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	case F_RESERVED:
		tags[0] = tag_q(4095, 3);
		return frame_build(out, tags, 1, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	case F_SHORT:
		frame_build(out, NULL, 0, FRAME_ETHERTYPE_IPV4, 0);
		return 10;
	case F_CUT:
		tags[0] = tag_q(20, 0);
		frame_build(out, tags, 1, FRAME_ETHERTYPE_IPV4, 0);
		return 16;
	case F_COUNT:
		break;
	}
	fail();
	return 0;
}

static struct vlan_ingress ingress(enum port_id port, enum frame_id frame)
{
	uint8_t bytes[FRAME_MAX_BYTES];
	enum vlan_ingress_action action;
	struct vlan_ingress in;
	size_t len;


	len = frame_make(frame, bytes);
	action = vlan_ingress_decide(ports[port], bytes, len, &in);
	assert_int_equal(action, in.action);
	return in;
}

static void assert_dropped(enum port_id port, enum frame_id frame, enum vlan_drop reason)
{
	struct vlan_ingress in = ingress(port, frame);

	assert_int_equal(in.action, VLAN_INGRESS_DROP);
	assert_string_equal(vlan_drop_name(in.drop), vlan_drop_name(reason));
}

static void assert_meta(const struct vlan_meta *meta, uint16_t tpid, uint16_t vid, uint8_t pcp,
			bool dei, uint16_t cvid)
{
	assert_int_equal(meta->vlan.tpid, tpid);
	assert_int_equal(meta->vlan.vid, vid);
	assert_int_equal(meta->vlan.pcp, pcp);
	assert_int_equal(meta->vlan.dei, dei);
	assert_int_equal(meta->cvid, cvid);
}

/* --- Names --- */

static void test_mode_names_are_ovs_names_and_parse_back(void **state)
{
	static const char *const names[] = {
		"access", "trunk", "native-tagged", "native-untagged", "dot1q-tunnel",
	};
	enum vlan_port_mode mode;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_string_equal(vlan_port_mode_name((enum vlan_port_mode)i), names[i]);
		assert_int_equal(vlan_port_mode_parse(names[i], &mode), 0);
		assert_int_equal(mode, i);
	}
	assert_string_equal(vlan_port_mode_name((enum vlan_port_mode)99), "unknown");
	assert_string_equal(vlan_port_mode_name((enum vlan_port_mode)-1), "unknown");
}

static void test_mode_parse_rejects_unknown_names_and_leaves_mode(void **state)
{
	static const char *const bad[] = {"", "Access", "trunk ", "native", "qinq", "unknown"};
	enum vlan_port_mode mode = VLAN_MODE_TRUNK;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vlan_port_mode_parse(bad[i], &mode), -EINVAL);
		assert_int_equal(mode, VLAN_MODE_TRUNK);
	}
	assert_int_equal(vlan_port_mode_parse(NULL, &mode), -EINVAL);
}

static void test_drop_names_are_distinct(void **state)
{
	int i, j;

	for (i = 0; i < VLAN_DROP_COUNT; i++) {
		assert_string_not_equal(vlan_drop_name((enum vlan_drop)i), "unknown");
		for (j = 0; j < i; j++) {
			assert_string_not_equal(vlan_drop_name((enum vlan_drop)i),
						vlan_drop_name((enum vlan_drop)j));
		}
	}
	assert_string_equal(vlan_drop_name(VLAN_DROP_COUNT), "unknown");
	assert_string_equal(vlan_drop_name(VLAN_DROP_TAGGED_ON_ACCESS), "tagged-on-access");
}

/* --- Configuration --- */

static void test_create_rejects_tag_outside_1_4094_for_tagged_modes(void **state)
{
	const enum vlan_port_mode modes[] = {
		VLAN_MODE_ACCESS, VLAN_MODE_NATIVE_TAGGED, VLAN_MODE_NATIVE_UNTAGGED,
		VLAN_MODE_DOT1Q_TUNNEL,
	};
	const uint16_t bad[] = {0, 4095, 4096, 0xffff};
	struct vlan_port_opts opts;
	size_t i, j;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			vlan_port_opts_init(&opts);
			opts.mode = modes[i];
			opts.tag = bad[j];
			assert_create_fails(&opts, "needs a tag in 1-4094");
		}
	}
}

static void test_create_rejects_tag_on_plain_trunk(void **state)
{
	struct vlan_port_opts opts;

	vlan_port_opts_init(&opts);
	opts.mode = VLAN_MODE_TRUNK;
	opts.tag = 10;
	assert_create_fails(&opts, "native-untagged");
}

static void test_create_rejects_trunk_list_on_access_and_tunnel(void **state)
{
	struct vlan_set *trunks, *empty;
	struct vlan_port_opts opts;
	struct vlan_port *port;

	assert_int_equal(vlan_set_create(&trunks), 0);
	assert_int_equal(vlan_set_create(&empty), 0);
	assert_int_equal(vlan_set_add(trunks, 20), 0);
	vlan_port_opts_init(&opts);
	opts.tag = 10;
	opts.trunks = trunks;
	opts.mode = VLAN_MODE_ACCESS;
	assert_create_fails(&opts, "takes no trunk list");
	opts.mode = VLAN_MODE_DOT1Q_TUNNEL;
	assert_create_fails(&opts, "takes no trunk list");
	/* An empty list says nothing, so it is no contradiction. */
	opts.trunks = empty;
	assert_int_equal(vlan_port_create(&opts, &port, NULL), 0);
	vlan_port_destroy(port);
	vlan_set_destroy(trunks);
	vlan_set_destroy(empty);
}

static void test_create_rejects_cvlans_and_tunnel_tpid_outside_tunnel(void **state)
{
	struct vlan_port_opts opts;
	struct vlan_set *cvlans;

	assert_int_equal(vlan_set_create(&cvlans), 0);
	vlan_port_opts_init(&opts);
	opts.mode = VLAN_MODE_NATIVE_TAGGED;
	opts.tag = 10;
	opts.cvlans = cvlans;
	assert_create_fails(&opts, "only to dot1q-tunnel");
	opts.cvlans = NULL;
	opts.tunnel_tpid = VLAN_TPID_8021AD;
	assert_create_fails(&opts, "only to dot1q-tunnel");
	vlan_set_destroy(cvlans);
}

static void test_create_rejects_tunnel_tpid_that_is_no_vlan_tpid(void **state)
{
	struct vlan_port_opts opts;

	vlan_port_opts_init(&opts);
	opts.mode = VLAN_MODE_DOT1Q_TUNNEL;
	opts.tag = 10;
	opts.tunnel_tpid = 0x9100;
	assert_create_fails(&opts, "0x9100");
}

static void test_create_rejects_unknown_mode(void **state)
{
	struct vlan_port_opts opts;

	vlan_port_opts_init(&opts);
	opts.mode = (enum vlan_port_mode)17;
	opts.tag = 10;
	assert_create_fails(&opts, "unknown VLAN mode");
}

static void test_create_copies_sets_so_caller_may_change_them(void **state)
{
	struct vlan_set *trunks, *cvlans;
	struct vlan_port_opts opts;
	struct vlan_port *trunk, *tunnel;

	assert_int_equal(vlan_set_create(&trunks), 0);
	assert_int_equal(vlan_set_create(&cvlans), 0);
	assert_int_equal(vlan_set_add(trunks, 20), 0);
	assert_int_equal(vlan_set_add(cvlans, 30), 0);
	vlan_port_opts_init(&opts);
	opts.mode = VLAN_MODE_TRUNK;
	opts.trunks = trunks;
	assert_int_equal(vlan_port_create(&opts, &trunk, NULL), 0);
	vlan_port_opts_init(&opts);
	opts.mode = VLAN_MODE_DOT1Q_TUNNEL;
	opts.tag = 5;
	opts.cvlans = cvlans;
	assert_int_equal(vlan_port_create(&opts, &tunnel, NULL), 0);
	vlan_set_clear(trunks);
	vlan_set_destroy(cvlans);
	assert_true(vlan_set_contains(vlan_port_trunks(trunk), 20));
	assert_true(vlan_set_contains(vlan_port_cvlans(tunnel), 30));
	assert_ptr_not_equal(vlan_port_trunks(trunk), trunks);
	vlan_set_destroy(trunks);
	vlan_port_destroy(trunk);
	vlan_port_destroy(tunnel);
}

static void test_getters_report_configuration(void **state)
{
	assert_int_equal(vlan_port_mode(ports[P_ACCESS]), VLAN_MODE_ACCESS);
	assert_int_equal(vlan_port_tag(ports[P_ACCESS]), 10);
	assert_true(vlan_set_is_empty(vlan_port_trunks(ports[P_ACCESS])));
	assert_null(vlan_port_cvlans(ports[P_ACCESS]));
	assert_int_equal(vlan_port_tpid(ports[P_ACCESS]), VLAN_TPID_8021Q);

	assert_int_equal(vlan_port_mode(ports[P_TRUNK]), VLAN_MODE_TRUNK);
	assert_int_equal(vlan_port_tag(ports[P_TRUNK]), 0);
	assert_int_equal(vlan_set_count(vlan_port_trunks(ports[P_TRUNK])), 2);

	assert_int_equal(vlan_port_mode(ports[P_NATIVE_UNTAGGED]), VLAN_MODE_NATIVE_UNTAGGED);
	assert_int_equal(vlan_port_tag(ports[P_NATIVE_UNTAGGED]), 10);

	assert_int_equal(vlan_port_mode(ports[P_TUNNEL]), VLAN_MODE_DOT1Q_TUNNEL);
	assert_int_equal(vlan_port_tpid(ports[P_TUNNEL]), VLAN_TPID_8021AD);
	assert_null(vlan_port_cvlans(ports[P_TUNNEL]));
	assert_int_equal(vlan_set_count(vlan_port_cvlans(ports[P_TUNNEL_CVLANS])), 1);
	assert_int_equal(vlan_port_tpid(ports[P_TUNNEL_8021Q]), VLAN_TPID_8021Q);
}

static void test_destroy_accepts_null(void **state)
{
	vlan_port_destroy(NULL);
}

static void test_membership_per_mode(void **state)
{
	unsigned int vid;

	for (vid = 0; vid <= 4095; vid++) {
		uint16_t v = (uint16_t)vid;
		bool in_trunks = v == 20 || v == 30;

		assert_int_equal(vlan_port_is_member(ports[P_ACCESS], v), v == 10);
		assert_int_equal(vlan_port_is_member(ports[P_TRUNK], v), in_trunks);
		assert_false(vlan_port_is_member(ports[P_TRUNK_EMPTY], v));
		assert_int_equal(vlan_port_is_member(ports[P_NATIVE_TAGGED], v),
				 in_trunks || v == 10);
		assert_int_equal(vlan_port_is_member(ports[P_NATIVE_UNTAGGED], v),
				 in_trunks || v == 10);
		assert_int_equal(vlan_port_is_member(ports[P_TUNNEL], v), v == 10);
		assert_int_equal(vlan_port_is_member(ports[P_TRUNK_ALL], v),
				 v >= 1 && v <= 4094);
	}
}

/* --- Ingress, by behaviour --- */

static void test_access_accepts_untagged_into_its_vlan(void **state)
{
	struct vlan_ingress in = ingress(P_ACCESS, F_UNTAGGED);

	assert_int_equal(in.action, VLAN_INGRESS_ACCEPT);
	assert_int_equal(in.drop, VLAN_DROP_NONE);
	assert_meta(&in.meta, VLAN_TPID_8021Q, 10, 0, false, 0);
}

static void test_access_treats_priority_tag_as_untagged_keeping_priority(void **state)
{
	struct vlan_ingress in = ingress(P_ACCESS, F_PRIO);

	assert_int_equal(in.action, VLAN_INGRESS_POP_PRIORITY);
	assert_meta(&in.meta, VLAN_TPID_8021Q, 10, 5, true, 0);
}

static void test_access_drops_tagged_frame_even_in_its_own_vlan(void **state)
{
	assert_dropped(P_ACCESS, F_TAG10, VLAN_DROP_TAGGED_ON_ACCESS);
	assert_dropped(P_ACCESS, F_TAG20, VLAN_DROP_TAGGED_ON_ACCESS);
	assert_dropped(P_ACCESS, F_AD20, VLAN_DROP_TAGGED_ON_ACCESS);
}

static void test_access_drops_double_tagged_frame(void **state)
{
	assert_dropped(P_ACCESS, F_DOUBLE_10_20, VLAN_DROP_TAGGED_ON_ACCESS);
	assert_dropped(P_ACCESS, F_DOUBLE_20_30, VLAN_DROP_TAGGED_ON_ACCESS);
}

static void test_access_drops_tag_hidden_behind_priority_tag(void **state)
{
	assert_dropped(P_ACCESS, F_PRIO_STACKED, VLAN_DROP_TAGGED_ON_ACCESS);
}

static void test_trunk_accepts_listed_vlan_tagged(void **state)
{
	struct vlan_ingress in = ingress(P_TRUNK, F_TAG20);

	assert_int_equal(in.action, VLAN_INGRESS_ACCEPT_TAGGED);
	assert_meta(&in.meta, VLAN_TPID_8021Q, 20, 3, false, 0);
}

static void test_trunk_outer_tag_decides_for_double_tagged_frame(void **state)
{
	struct vlan_ingress in = ingress(P_TRUNK, F_DOUBLE_20_30);

	assert_int_equal(in.action, VLAN_INGRESS_ACCEPT_TAGGED);
	assert_meta(&in.meta, VLAN_TPID_8021AD, 20, 3, false, 30);
	/* Inner 20 is listed, but outer 10 is not: the outer tag decides. */
	assert_dropped(P_TRUNK, F_DOUBLE_10_20, VLAN_DROP_NOT_ALLOWED);
}

static void test_trunk_keeps_8021ad_tpid_of_outer_tag(void **state)
{
	struct vlan_ingress in = ingress(P_TRUNK, F_AD20);

	assert_int_equal(in.action, VLAN_INGRESS_ACCEPT_TAGGED);
	assert_meta(&in.meta, VLAN_TPID_8021AD, 20, 3, false, 0);
}

static void test_trunk_without_native_drops_untagged_and_priority_tagged(void **state)
{
	assert_dropped(P_TRUNK, F_UNTAGGED, VLAN_DROP_UNTAGGED_NO_NATIVE);
	assert_dropped(P_TRUNK, F_PRIO, VLAN_DROP_UNTAGGED_NO_NATIVE);
	assert_dropped(P_TRUNK, F_PRIO_STACKED, VLAN_DROP_UNTAGGED_NO_NATIVE);
}

static void test_trunk_drops_vlan_not_in_list(void **state)
{
	assert_dropped(P_TRUNK, F_TAG10, VLAN_DROP_NOT_ALLOWED);
	assert_dropped(P_TRUNK, F_TAG99, VLAN_DROP_NOT_ALLOWED);
}

static void test_empty_trunk_list_means_no_vlan_not_all(void **state)
{
	assert_dropped(P_TRUNK_EMPTY, F_TAG10, VLAN_DROP_NOT_ALLOWED);
	assert_dropped(P_TRUNK_EMPTY, F_TAG20, VLAN_DROP_NOT_ALLOWED);
	assert_dropped(P_TRUNK_EMPTY, F_DOUBLE_20_30, VLAN_DROP_NOT_ALLOWED);
	assert_dropped(P_TRUNK_EMPTY, F_UNTAGGED, VLAN_DROP_UNTAGGED_NO_NATIVE);
}

static void test_native_ports_put_untagged_frames_in_native_vlan(void **state)
{
	const enum port_id natives[] = {P_NATIVE_TAGGED, P_NATIVE_UNTAGGED};
	struct vlan_ingress in;
	size_t i;

	for (i = 0; i < 2; i++) {
		in = ingress(natives[i], F_UNTAGGED);
		assert_int_equal(in.action, VLAN_INGRESS_ACCEPT);
		assert_meta(&in.meta, VLAN_TPID_8021Q, 10, 0, false, 0);
		in = ingress(natives[i], F_PRIO);
		assert_int_equal(in.action, VLAN_INGRESS_POP_PRIORITY);
		assert_meta(&in.meta, VLAN_TPID_8021Q, 10, 5, true, 0);
	}
}

static void test_native_ports_accept_native_vlan_tagged_too(void **state)
{
	struct vlan_ingress in;

	in = ingress(P_NATIVE_TAGGED, F_TAG10);
	assert_int_equal(in.action, VLAN_INGRESS_ACCEPT_TAGGED);
	assert_meta(&in.meta, VLAN_TPID_8021Q, 10, 3, false, 0);
	in = ingress(P_NATIVE_UNTAGGED, F_TAG10);
	assert_int_equal(in.action, VLAN_INGRESS_ACCEPT_TAGGED);
	assert_meta(&in.meta, VLAN_TPID_8021Q, 10, 3, false, 0);
	assert_dropped(P_NATIVE_UNTAGGED, F_TAG99, VLAN_DROP_NOT_ALLOWED);
}

static void test_native_ports_drop_tag_hidden_behind_priority_tag(void **state)
{
	assert_dropped(P_NATIVE_TAGGED, F_PRIO_STACKED, VLAN_DROP_PRIORITY_STACKED);
	assert_dropped(P_NATIVE_UNTAGGED, F_PRIO_STACKED, VLAN_DROP_PRIORITY_STACKED);
}

static void test_tunnel_puts_every_frame_in_service_vlan(void **state)
{
	const enum frame_id frames[] = {F_UNTAGGED, F_PRIO, F_PRIO_STACKED, F_TAG10,
					F_TAG99, F_AD20, F_DOUBLE_20_30};
	const uint16_t cvids[] = {0, 0, 20, 10, 99, 20, 20};
	struct vlan_ingress in;
	size_t i;

	for (i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		in = ingress(P_TUNNEL, frames[i]);
		assert_int_equal(in.action, VLAN_INGRESS_ACCEPT); /* no tag to pop */
		assert_meta(&in.meta, VLAN_TPID_8021AD, 10, 0, false, cvids[i]);
	}
}

static void test_tunnel_cvlans_filter_only_tagged_customer_frames(void **state)
{
	struct vlan_ingress in;

	assert_int_equal(ingress(P_TUNNEL_CVLANS, F_UNTAGGED).action, VLAN_INGRESS_ACCEPT);
	assert_int_equal(ingress(P_TUNNEL_CVLANS, F_PRIO).action, VLAN_INGRESS_ACCEPT);
	in = ingress(P_TUNNEL_CVLANS, F_TAG20);
	assert_int_equal(in.action, VLAN_INGRESS_ACCEPT);
	assert_meta(&in.meta, VLAN_TPID_8021AD, 10, 0, false, 20);
	assert_dropped(P_TUNNEL_CVLANS, F_TAG10, VLAN_DROP_NOT_ALLOWED);
	assert_dropped(P_TUNNEL_CVLANS, F_TAG99, VLAN_DROP_NOT_ALLOWED);
	assert_dropped(P_TUNNEL_CVLANS, F_DOUBLE_10_20, VLAN_DROP_NOT_ALLOWED);
}

static void test_tunnel_cvlans_filter_reads_vid_behind_priority_tag(void **state)
{
	struct vlan_tag tags[2] = {tag_q(0, 5), tag_q(30, 0)};
	uint8_t bytes[FRAME_MAX_BYTES];
	struct vlan_ingress in;
	size_t len;

	in = ingress(P_TUNNEL_CVLANS, F_PRIO_STACKED); /* priority, then 20 */
	assert_int_equal(in.action, VLAN_INGRESS_ACCEPT);
	assert_meta(&in.meta, VLAN_TPID_8021AD, 10, 0, false, 20);
	len = frame_build(bytes, tags, 2, FRAME_ETHERTYPE_IPV4, 10);
	assert_int_equal(vlan_ingress_decide(ports[P_TUNNEL_CVLANS], bytes, len, &in),
			 VLAN_INGRESS_DROP);
	assert_int_equal(in.drop, VLAN_DROP_NOT_ALLOWED);
}

static void test_trunk_reads_customer_vid_behind_priority_tag(void **state)
{
	struct vlan_tag tags[3] = {tag_ad(20, 0), tag_q(0, 5), tag_q(30, 0)};
	uint8_t bytes[FRAME_MAX_BYTES];
	struct vlan_ingress in;
	size_t len;

	len = frame_build(bytes, tags, 3, FRAME_ETHERTYPE_IPV4, 10);
	assert_int_equal(vlan_ingress_decide(ports[P_TRUNK], bytes, len, &in),
			 VLAN_INGRESS_ACCEPT_TAGGED);
	assert_meta(&in.meta, VLAN_TPID_8021AD, 20, 0, false, 30);
	len = frame_build(bytes, tags, 2, FRAME_ETHERTYPE_IPV4, 10);
	assert_int_equal(vlan_ingress_decide(ports[P_TRUNK], bytes, len, &in),
			 VLAN_INGRESS_ACCEPT_TAGGED);
	assert_int_equal(in.meta.cvid, 0); /* a priority tag alone carries no VID */
}

static void test_tunnel_uses_configured_service_tpid(void **state)
{
	struct vlan_ingress in = ingress(P_TUNNEL_8021Q, F_TAG20);

	assert_meta(&in.meta, VLAN_TPID_8021Q, 10, 0, false, 20);
}

static void test_reserved_vid_is_dropped_on_every_port(void **state)
{
	size_t p;

	for (p = 0; p < P_COUNT; p++) {
		assert_dropped((enum port_id)p, F_RESERVED, VLAN_DROP_RESERVED_VID);
	}
}

static void test_every_short_or_cut_frame_is_malformed_on_every_port(void **state)
{
	uint8_t bytes[FRAME_MAX_BYTES];
	struct vlan_tag tags[3] = {tag_ad(20, 0), tag_q(0, 0), tag_q(30, 0)};
	struct vlan_ingress in;
	size_t p, len, n_tags;

	for (p = 0; p < P_COUNT; p++) {
		for (n_tags = 0; n_tags <= 3; n_tags++) {
			frame_build(bytes, tags, (unsigned int)n_tags, FRAME_ETHERTYPE_IPV4, 0);
			for (len = 0; len < 14 + 4 * n_tags; len++) {
				assert_int_equal(vlan_ingress_decide(ports[p], bytes, len, &in),
						 VLAN_INGRESS_DROP);
				assert_int_equal(in.drop, VLAN_DROP_MALFORMED);
			}
		}
		assert_int_equal(vlan_ingress_decide(ports[p], NULL, 64, &in), VLAN_INGRESS_DROP);
		assert_int_equal(in.drop, VLAN_DROP_MALFORMED);
	}
}

/* --- Ingress, every port against every frame --- */

struct expect {
	enum vlan_ingress_action action;
	enum vlan_drop drop;
	uint16_t tpid, vid;
	uint8_t pcp;
	bool dei;
	uint16_t cvid;
};

#define DROP(r) {VLAN_INGRESS_DROP, VLAN_DROP_##r, 0, 0, 0, false, 0}
#define IN(act, tpid, vid, pcp, dei, cvid) \
	{VLAN_INGRESS_##act, VLAN_DROP_NONE, tpid, vid, pcp, dei, cvid}
#define Q VLAN_TPID_8021Q
#define AD VLAN_TPID_8021AD
#define BAD DROP(RESERVED_VID), DROP(MALFORMED), DROP(MALFORMED)

/* Columns follow enum frame_id: untagged, prio, prio-stacked, tag10, tag20,
 * tag99, ad20, double-20-30, double-10-20, then reserved, short, cut. */
static const struct expect ingress_table[P_COUNT][F_COUNT] = {
	[P_ACCESS] = {IN(ACCEPT, Q, 10, 0, false, 0), IN(POP_PRIORITY, Q, 10, 5, true, 0),
		      DROP(TAGGED_ON_ACCESS), DROP(TAGGED_ON_ACCESS), DROP(TAGGED_ON_ACCESS),
		      DROP(TAGGED_ON_ACCESS), DROP(TAGGED_ON_ACCESS), DROP(TAGGED_ON_ACCESS),
		      DROP(TAGGED_ON_ACCESS), BAD},
	[P_TRUNK] = {DROP(UNTAGGED_NO_NATIVE), DROP(UNTAGGED_NO_NATIVE),
		     DROP(UNTAGGED_NO_NATIVE), DROP(NOT_ALLOWED),
		     IN(ACCEPT_TAGGED, Q, 20, 3, false, 0), DROP(NOT_ALLOWED),
		     IN(ACCEPT_TAGGED, AD, 20, 3, false, 0),
		     IN(ACCEPT_TAGGED, AD, 20, 3, false, 30), DROP(NOT_ALLOWED), BAD},
	[P_TRUNK_EMPTY] = {DROP(UNTAGGED_NO_NATIVE), DROP(UNTAGGED_NO_NATIVE),
			   DROP(UNTAGGED_NO_NATIVE), DROP(NOT_ALLOWED), DROP(NOT_ALLOWED),
			   DROP(NOT_ALLOWED), DROP(NOT_ALLOWED), DROP(NOT_ALLOWED),
			   DROP(NOT_ALLOWED), BAD},
	[P_NATIVE_TAGGED] = {IN(ACCEPT, Q, 10, 0, false, 0), IN(POP_PRIORITY, Q, 10, 5, true, 0),
			     DROP(PRIORITY_STACKED), IN(ACCEPT_TAGGED, Q, 10, 3, false, 0),
			     IN(ACCEPT_TAGGED, Q, 20, 3, false, 0), DROP(NOT_ALLOWED),
			     IN(ACCEPT_TAGGED, AD, 20, 3, false, 0),
			     IN(ACCEPT_TAGGED, AD, 20, 3, false, 30),
			     IN(ACCEPT_TAGGED, Q, 10, 3, false, 20), BAD},
	[P_NATIVE_UNTAGGED] = {IN(ACCEPT, Q, 10, 0, false, 0),
			       IN(POP_PRIORITY, Q, 10, 5, true, 0), DROP(PRIORITY_STACKED),
			       IN(ACCEPT_TAGGED, Q, 10, 3, false, 0),
			       IN(ACCEPT_TAGGED, Q, 20, 3, false, 0), DROP(NOT_ALLOWED),
			       IN(ACCEPT_TAGGED, AD, 20, 3, false, 0),
			       IN(ACCEPT_TAGGED, AD, 20, 3, false, 30),
			       IN(ACCEPT_TAGGED, Q, 10, 3, false, 20), BAD},
	[P_TUNNEL] = {IN(ACCEPT, AD, 10, 0, false, 0), IN(ACCEPT, AD, 10, 0, false, 0),
		      IN(ACCEPT, AD, 10, 0, false, 20), IN(ACCEPT, AD, 10, 0, false, 10),
		      IN(ACCEPT, AD, 10, 0, false, 20), IN(ACCEPT, AD, 10, 0, false, 99),
		      IN(ACCEPT, AD, 10, 0, false, 20), IN(ACCEPT, AD, 10, 0, false, 20),
		      IN(ACCEPT, AD, 10, 0, false, 10), BAD},
	[P_TUNNEL_CVLANS] = {IN(ACCEPT, AD, 10, 0, false, 0), IN(ACCEPT, AD, 10, 0, false, 0),
			     IN(ACCEPT, AD, 10, 0, false, 20), DROP(NOT_ALLOWED),
			     IN(ACCEPT, AD, 10, 0, false, 20), DROP(NOT_ALLOWED),
			     IN(ACCEPT, AD, 10, 0, false, 20), IN(ACCEPT, AD, 10, 0, false, 20),
			     DROP(NOT_ALLOWED), BAD},
	[P_TUNNEL_8021Q] = {IN(ACCEPT, Q, 10, 0, false, 0), IN(ACCEPT, Q, 10, 0, false, 0),
			    IN(ACCEPT, Q, 10, 0, false, 20), IN(ACCEPT, Q, 10, 0, false, 10),
			    IN(ACCEPT, Q, 10, 0, false, 20), IN(ACCEPT, Q, 10, 0, false, 99),
			    IN(ACCEPT, Q, 10, 0, false, 20), IN(ACCEPT, Q, 10, 0, false, 20),
			    IN(ACCEPT, Q, 10, 0, false, 10), BAD},
	[P_TRUNK_ALL] = {DROP(UNTAGGED_NO_NATIVE), DROP(UNTAGGED_NO_NATIVE),
			 DROP(UNTAGGED_NO_NATIVE), IN(ACCEPT_TAGGED, Q, 10, 3, false, 0),
			 IN(ACCEPT_TAGGED, Q, 20, 3, false, 0),
			 IN(ACCEPT_TAGGED, Q, 99, 3, false, 0),
			 IN(ACCEPT_TAGGED, AD, 20, 3, false, 0),
			 IN(ACCEPT_TAGGED, AD, 20, 3, false, 30),
			 IN(ACCEPT_TAGGED, Q, 10, 3, false, 20), BAD},
};

static void test_ingress_of_every_frame_on_every_port_matches_table(void **state)
{
	uint8_t bytes[FRAME_MAX_BYTES], copy[FRAME_MAX_BYTES];
	struct vlan_ingress in, again;
	const struct expect *e;
	size_t p, f, len;

	for (p = 0; p < P_COUNT; p++) {
		for (f = 0; f < F_COUNT; f++) {
			e = &ingress_table[p][f];
			len = frame_make((enum frame_id)f, bytes);
			memcpy(copy, bytes, len);
			vlan_ingress_decide(ports[p], bytes, len, &in);
			if (in.action != e->action || in.drop != e->drop ||
			    in.meta.vlan.vid != e->vid || in.meta.cvid != e->cvid) {
				print_message("port %zu (%s), frame %s: action %d, drop %s\n", p,
					      vlan_port_mode_name(vlan_port_mode(ports[p])),
					      frame_names[f], (int)in.action,
					      vlan_drop_name(in.drop));
			}
			assert_int_equal(in.action, e->action);
			assert_string_equal(vlan_drop_name(in.drop), vlan_drop_name(e->drop));
			if (e->action != VLAN_INGRESS_DROP) {
				assert_meta(&in.meta, e->tpid, e->vid, e->pcp, e->dei, e->cvid);
			}
			/* Pure: the frame is untouched and a second call agrees. */
			assert_memory_equal(bytes, copy, len);
			vlan_ingress_decide(ports[p], bytes, len, &again);
			assert_memory_equal(&in, &again, sizeof(in));
		}
	}
}

/* --- Egress --- */

static struct vlan_egress egress(enum port_id port, uint16_t vid, uint16_t cvid, bool tagged)
{
	struct vlan_meta meta = {.vlan = tag_q(vid, 2), .cvid = cvid};
	enum vlan_egress_action action;
	struct vlan_egress eg;

	action = vlan_egress_decide(ports[port], &meta, tagged, &eg);
	assert_int_equal(action, eg.action);
	assert_int_equal(eg.drop == VLAN_DROP_NONE, eg.action != VLAN_EGRESS_DROP);
	return eg;
}

static void test_egress_access_sends_own_vlan_untagged_and_drops_others(void **state)
{
	assert_int_equal(egress(P_ACCESS, 10, 0, false).action, VLAN_EGRESS_KEEP);
	assert_int_equal(egress(P_ACCESS, 10, 0, true).action, VLAN_EGRESS_STRIP);
	assert_int_equal(egress(P_ACCESS, 20, 0, false).action, VLAN_EGRESS_DROP);
	assert_int_equal(egress(P_ACCESS, 20, 0, true).action, VLAN_EGRESS_DROP);
}

static void test_egress_trunk_sends_listed_vlans_tagged_and_drops_others(void **state)
{
	struct vlan_egress eg;

	eg = egress(P_TRUNK, 20, 0, false);
	assert_int_equal(eg.action, VLAN_EGRESS_PUSH);
	assert_int_equal(eg.push.vid, 20);
	assert_int_equal(eg.push.pcp, 2);
	assert_int_equal(eg.push.tpid, VLAN_TPID_8021Q);
	assert_int_equal(egress(P_TRUNK, 30, 0, true).action, VLAN_EGRESS_KEEP);
	assert_int_equal(egress(P_TRUNK, 10, 0, false).action, VLAN_EGRESS_DROP);
	assert_int_equal(egress(P_TRUNK, 10, 0, true).action, VLAN_EGRESS_DROP);
	assert_int_equal(egress(P_TRUNK_EMPTY, 20, 0, true).action, VLAN_EGRESS_DROP);
}

static void test_egress_push_carries_meta_tpid_and_priority(void **state)
{
	struct vlan_meta meta = {.vlan = {.tpid = VLAN_TPID_8021AD, .vid = 30, .pcp = 7,
					  .dei = true}};
	struct vlan_egress eg;

	assert_int_equal(vlan_egress_decide(ports[P_TRUNK], &meta, false, &eg), VLAN_EGRESS_PUSH);
	assert_int_equal(eg.push.tpid, VLAN_TPID_8021AD);
	assert_int_equal(eg.push.vid, 30);
	assert_int_equal(eg.push.pcp, 7);
	assert_true(eg.push.dei);
	/* Meta made by hand without a TPID gets 802.1Q. */
	meta.vlan.tpid = 0;
	assert_int_equal(vlan_egress_decide(ports[P_TRUNK], &meta, false, &eg), VLAN_EGRESS_PUSH);
	assert_int_equal(eg.push.tpid, VLAN_TPID_8021Q);
}

static void test_egress_native_untagged_sends_native_vlan_untagged(void **state)
{
	assert_int_equal(egress(P_NATIVE_UNTAGGED, 10, 0, false).action, VLAN_EGRESS_KEEP);
	assert_int_equal(egress(P_NATIVE_UNTAGGED, 10, 0, true).action, VLAN_EGRESS_STRIP);
	assert_int_equal(egress(P_NATIVE_UNTAGGED, 20, 0, false).action, VLAN_EGRESS_PUSH);
	assert_int_equal(egress(P_NATIVE_UNTAGGED, 20, 0, true).action, VLAN_EGRESS_KEEP);
	assert_int_equal(egress(P_NATIVE_UNTAGGED, 99, 0, false).action, VLAN_EGRESS_DROP);
}

static void test_egress_native_tagged_sends_native_vlan_tagged(void **state)
{
	assert_int_equal(egress(P_NATIVE_TAGGED, 10, 0, false).action, VLAN_EGRESS_PUSH);
	assert_int_equal(egress(P_NATIVE_TAGGED, 10, 0, true).action, VLAN_EGRESS_KEEP);
	assert_int_equal(egress(P_NATIVE_TAGGED, 30, 0, false).action, VLAN_EGRESS_PUSH);
	assert_int_equal(egress(P_NATIVE_TAGGED, 99, 0, true).action, VLAN_EGRESS_DROP);
}

static void test_egress_tunnel_strips_service_tag_and_filters_customer_vlan(void **state)
{
	assert_int_equal(egress(P_TUNNEL, 10, 0, false).action, VLAN_EGRESS_KEEP);
	assert_int_equal(egress(P_TUNNEL, 10, 123, true).action, VLAN_EGRESS_STRIP);
	assert_int_equal(egress(P_TUNNEL, 20, 10, true).action, VLAN_EGRESS_DROP);
	assert_int_equal(egress(P_TUNNEL_CVLANS, 10, 20, true).action, VLAN_EGRESS_STRIP);
	assert_int_equal(egress(P_TUNNEL_CVLANS, 10, 0, false).action, VLAN_EGRESS_KEEP);
	assert_int_equal(egress(P_TUNNEL_CVLANS, 10, 30, true).action, VLAN_EGRESS_DROP);
	assert_int_equal(egress(P_TUNNEL_CVLANS, 10, 30, false).action, VLAN_EGRESS_DROP);
}

static void test_egress_drops_untagged_frame_that_would_expose_inner_tag(void **state)
{
	struct vlan_egress eg;

	eg = egress(P_ACCESS, 10, 20, false);
	assert_int_equal(eg.action, VLAN_EGRESS_DROP);
	assert_int_equal(eg.drop, VLAN_DROP_TAG_EXPOSED);
	assert_int_equal(egress(P_ACCESS, 10, 20, true).drop, VLAN_DROP_TAG_EXPOSED);
	assert_int_equal(egress(P_NATIVE_UNTAGGED, 10, 20, true).drop, VLAN_DROP_TAG_EXPOSED);
	/* Tagged egress keeps the inner tag inside: no exposure. */
	assert_int_equal(egress(P_NATIVE_UNTAGGED, 20, 30, true).action, VLAN_EGRESS_KEEP);
	assert_int_equal(egress(P_NATIVE_TAGGED, 10, 20, false).action, VLAN_EGRESS_PUSH);
	assert_int_equal(egress(P_TRUNK, 20, 30, false).action, VLAN_EGRESS_PUSH);
	/* A tunnel port exists to carry the customer's tags. */
	assert_int_equal(egress(P_TUNNEL, 10, 20, true).action, VLAN_EGRESS_STRIP);
	/* Not a member trumps exposure. */
	assert_int_equal(egress(P_ACCESS, 11, 20, false).drop, VLAN_DROP_NOT_MEMBER);
}

static void test_egress_never_sends_vlan_0_or_4095(void **state)
{
	size_t p;

	for (p = 0; p < P_COUNT; p++) {
		assert_int_equal(egress((enum port_id)p, 0, 0, false).action, VLAN_EGRESS_DROP);
		assert_int_equal(egress((enum port_id)p, 4095, 0, true).action, VLAN_EGRESS_DROP);
	}
}

/* 'tagged' says only what the frame looks like now, never whether it may go:
 * for every port and VLAN, PUSH from untagged pairs with KEEP from tagged,
 * KEEP from untagged with STRIP from tagged, and DROP with DROP. */
static void test_egress_tagged_flag_changes_only_how_never_whether(void **state)
{
	enum vlan_egress_action plain, tagged;
	unsigned int vid;
	size_t p;

	for (p = 0; p < P_COUNT; p++) {
		for (vid = 0; vid <= 4095; vid++) {
			plain = egress((enum port_id)p, (uint16_t)vid, 0, false).action;
			tagged = egress((enum port_id)p, (uint16_t)vid, 0, true).action;
			assert_int_equal(egress((enum port_id)p, (uint16_t)vid, 0, false).drop,
					 plain == VLAN_EGRESS_DROP ? VLAN_DROP_NOT_MEMBER
								   : VLAN_DROP_NONE);
			switch (plain) {
			case VLAN_EGRESS_PUSH:
				assert_int_equal(tagged, VLAN_EGRESS_KEEP);
				break;
			case VLAN_EGRESS_KEEP:
				assert_int_equal(tagged, VLAN_EGRESS_STRIP);
				break;
			case VLAN_EGRESS_DROP:
				assert_int_equal(tagged, VLAN_EGRESS_DROP);
				break;
			case VLAN_EGRESS_STRIP:
				fail_msg("an untagged frame cannot be stripped");
			}
			assert_int_equal(plain != VLAN_EGRESS_DROP,
					 vlan_port_is_member(ports[p], (uint16_t)vid));
		}
	}
}

/* --- Applying decisions --- */

static void test_ingress_apply_pops_only_for_tagged_and_priority_decisions(void **state)
{
	uint8_t bytes[FRAME_MAX_BYTES];
	struct vlan_buf buf = {.base = bytes, .cap_bytes = sizeof(bytes)};
	struct vlan_ingress in = {0};
	const struct vlan_tag tag = tag_q(20, 0);
	struct vlan_frame info;

	buf.len_bytes = frame_build(bytes, &tag, 1, FRAME_ETHERTYPE_IPV4, 10);
	in.action = VLAN_INGRESS_ACCEPT;
	assert_int_equal(vlan_ingress_apply(&buf, &in), 0);
	assert_int_equal(buf.len_bytes, 28);
	in.action = VLAN_INGRESS_ACCEPT_TAGGED;
	assert_int_equal(vlan_ingress_apply(&buf, &in), 0);
	assert_int_equal(buf.len_bytes, 24);
	assert_int_equal(vlan_frame_parse(vlan_buf_data(&buf), buf.len_bytes, &info), 0);
	assert_int_equal(info.n_tags, 0);
	in.action = VLAN_INGRESS_POP_PRIORITY;
	assert_int_equal(vlan_ingress_apply(&buf, &in), -ENOENT); /* nothing left to pop */
	in.action = VLAN_INGRESS_DROP;
	assert_int_equal(vlan_ingress_apply(&buf, &in), -EINVAL);
}

static void test_egress_apply_carries_out_each_action(void **state)
{
	uint8_t bytes[FRAME_MAX_BYTES], expect[FRAME_MAX_BYTES];
	struct vlan_buf buf = {.base = bytes, .head_bytes = 8, .cap_bytes = sizeof(bytes)};
	struct vlan_egress eg = {0};
	size_t len;

	buf.len_bytes = frame_build(bytes + 8, NULL, 0, FRAME_ETHERTYPE_IPV4, 10);
	eg.action = VLAN_EGRESS_KEEP;
	assert_int_equal(vlan_egress_apply(&buf, &eg), 0);
	assert_int_equal(buf.len_bytes, 24);
	eg.action = VLAN_EGRESS_PUSH;
	eg.push = tag_ad(55, 6);
	assert_int_equal(vlan_egress_apply(&buf, &eg), 0);
	len = frame_build(expect, &eg.push, 1, FRAME_ETHERTYPE_IPV4, 10);
	assert_int_equal(buf.len_bytes, len);
	assert_memory_equal(vlan_buf_data(&buf), expect, len);
	eg.action = VLAN_EGRESS_STRIP;
	assert_int_equal(vlan_egress_apply(&buf, &eg), 0);
	len = frame_build(expect, NULL, 0, FRAME_ETHERTYPE_IPV4, 10);
	assert_memory_equal(vlan_buf_data(&buf), expect, len);
	eg.action = VLAN_EGRESS_DROP;
	assert_int_equal(vlan_egress_apply(&buf, &eg), -EINVAL);
	eg.action = VLAN_EGRESS_PUSH;
	eg.push.vid = 4095;
	assert_int_equal(vlan_egress_apply(&buf, &eg), -EINVAL);
}

/* --- Forwarding: ingress on one port, egress on another --- */

/* Runs the 'len' bytes of 'frame' in through 'in' and out through 'out',
 * keeping an ACCEPT_TAGGED frame's tag if 'keep_tag' (else canonical form).
 * Returns the output length in 'result', or -1 if ingress dropped it, -2 if
 * egress did. */
static int forward(enum port_id in, enum port_id out, const uint8_t *frame, size_t len,
		   bool keep_tag, uint8_t *result)
{
	uint8_t bytes[FRAME_MAX_BYTES + HEADROOM_BYTES];
	struct vlan_buf buf = {.base = bytes, .head_bytes = HEADROOM_BYTES,
			       .len_bytes = len, .cap_bytes = sizeof(bytes)};
	struct vlan_ingress ing;
	struct vlan_egress eg;
	bool tagged = false;

	memcpy(bytes + HEADROOM_BYTES, frame, len);
	if (vlan_ingress_decide(ports[in], frame, len, &ing) == VLAN_INGRESS_DROP) {
		return -1;
	}
	if (keep_tag && ing.action == VLAN_INGRESS_ACCEPT_TAGGED) {
		tagged = true;
	} else {
		assert_int_equal(vlan_ingress_apply(&buf, &ing), 0);
	}
	if (vlan_egress_decide(ports[out], &ing.meta, tagged, &eg) == VLAN_EGRESS_DROP) {
		return -2;
	}
	assert_int_equal(vlan_egress_apply(&buf, &eg), 0);
	memcpy(result, vlan_buf_data(&buf), buf.len_bytes);
	return (int)buf.len_bytes;
}

/* Forwards 'frame_in' from 'in' to 'out' both ways and checks the result is
 * the frame 'expect_tags' describes (NULL, 0: dropped). */
static void assert_forwards(enum port_id in, enum port_id out, enum frame_id frame_in,
			    const struct vlan_tag *expect_tags, unsigned int n_tags)
{
	uint8_t frame[FRAME_MAX_BYTES], result[FRAME_MAX_BYTES], expect[FRAME_MAX_BYTES];
	size_t len, expect_len;
	int pass;

	len = frame_make(frame_in, frame);
	expect_len = frame_build(expect, expect_tags, n_tags, FRAME_ETHERTYPE_IPV4,
				 FRAME_PAYLOAD_BYTES);
	for (pass = 0; pass < 2; pass++) {
		bool keep_tag = pass == 1;

		assert_int_equal(forward(in, out, frame, len, keep_tag, result), (int)expect_len);
		assert_memory_equal(result, expect, expect_len);
	}
}

static void test_access_to_trunk_pushes_port_vlan_with_guest_priority(void **state)
{
	struct vlan_tag expect = {.tpid = VLAN_TPID_8021Q, .vid = 10, .pcp = 5, .dei = true};

	assert_forwards(P_ACCESS, P_TRUNK_ALL, F_PRIO, &expect, 1);
	expect.pcp = 0;
	expect.dei = false;
	assert_forwards(P_ACCESS, P_TRUNK_ALL, F_UNTAGGED, &expect, 1);
}

static void test_trunk_to_access_strips_tag(void **state)
{
	struct vlan_tag tag10 = tag_q(10, 3);

	assert_forwards(P_TRUNK_ALL, P_ACCESS, F_TAG10, NULL, 0);
	assert_forwards(P_TRUNK_ALL, P_TRUNK_ALL, F_TAG10, &tag10, 1);
}

static void test_access_to_access_in_same_vlan_sends_priority_frame_untagged(void **state)
{
	assert_forwards(P_ACCESS, P_ACCESS, F_PRIO, NULL, 0);
	assert_forwards(P_ACCESS, P_NATIVE_UNTAGGED, F_PRIO, NULL, 0);
}

static void test_tunnel_to_trunk_wraps_customer_frame_in_service_tag(void **state)
{
	struct vlan_tag tags[3] = {tag_ad(10, 0), tag_q(20, 3)};

	assert_forwards(P_TUNNEL, P_TRUNK_ALL, F_TAG20, tags, 2);
	assert_forwards(P_TUNNEL, P_TRUNK_ALL, F_UNTAGGED, tags, 1);
	tags[1] = tag_q(10, 3);
	tags[2] = tag_q(20, 1);
	assert_forwards(P_TUNNEL, P_TRUNK_ALL, F_DOUBLE_10_20, tags, 3);
}

static void test_qinq_from_trunk_to_tunnel_exposes_customer_tag(void **state)
{
	uint8_t frame[FRAME_MAX_BYTES], result[FRAME_MAX_BYTES], expect[FRAME_MAX_BYTES];
	struct vlan_tag in_tags[2] = {tag_ad(10, 0), tag_q(20, 4)};
	size_t len, expect_len;

	len = frame_build(frame, in_tags, 2, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	expect_len = frame_build(expect, &in_tags[1], 1, FRAME_ETHERTYPE_IPV4,
				 FRAME_PAYLOAD_BYTES);
	assert_int_equal(forward(P_TRUNK_ALL, P_TUNNEL, frame, len, false, result),
			 (int)expect_len);
	assert_memory_equal(result, expect, expect_len);
	assert_int_equal(forward(P_TRUNK_ALL, P_TUNNEL, frame, len, true, result),
			 (int)expect_len);
	assert_memory_equal(result, expect, expect_len);
	/* cvlans 20 lets it through; a customer VLAN outside it stays out. */
	assert_int_equal(forward(P_TRUNK_ALL, P_TUNNEL_CVLANS, frame, len, true, result),
			 (int)expect_len);
	in_tags[1] = tag_q(30, 4);
	len = frame_build(frame, in_tags, 2, FRAME_ETHERTYPE_IPV4, FRAME_PAYLOAD_BYTES);
	assert_int_equal(forward(P_TRUNK_ALL, P_TUNNEL_CVLANS, frame, len, true, result), -2);
}

static void test_native_untagged_sends_native_vlan_bare_and_others_tagged(void **state)
{
	struct vlan_tag tag20 = tag_q(20, 3);

	assert_forwards(P_TRUNK_ALL, P_NATIVE_UNTAGGED, F_TAG10, NULL, 0);
	assert_forwards(P_TRUNK_ALL, P_NATIVE_UNTAGGED, F_TAG20, &tag20, 1);
}

static void test_double_tagging_attack_from_access_reaches_no_port(void **state)
{
	uint8_t frame[FRAME_MAX_BYTES], result[FRAME_MAX_BYTES];
	size_t len, out;

	len = frame_make(F_DOUBLE_10_20, frame);
	for (out = 0; out < P_COUNT; out++) {
		assert_int_equal(forward(P_ACCESS, (enum port_id)out, frame, len, false, result),
				 -1);
	}
	len = frame_make(F_PRIO_STACKED, frame);
	for (out = 0; out < P_COUNT; out++) {
		assert_int_equal(forward(P_ACCESS, (enum port_id)out, frame, len, false, result),
				 -1);
	}
}

/* Whether a switch keeps tags in flight or strips them at ingress must not
 * show on the wire. */
static void test_forwarding_with_tag_kept_or_stripped_gives_same_bytes(void **state)
{
	uint8_t frame[FRAME_MAX_BYTES], plain[FRAME_MAX_BYTES], kept[FRAME_MAX_BYTES];
	size_t in, out, f, len;
	int plain_len, kept_len;

	for (in = 0; in < P_COUNT; in++) {
		for (out = 0; out < P_COUNT; out++) {
			for (f = 0; f < F_COUNT; f++) {
				len = frame_make((enum frame_id)f, frame);
				plain_len = forward((enum port_id)in, (enum port_id)out, frame, len,
						    false, plain);
				kept_len = forward((enum port_id)in, (enum port_id)out, frame, len,
						   true, kept);
				assert_int_equal(plain_len, kept_len);
				if (plain_len > 0) {
					assert_memory_equal(plain, kept, (size_t)plain_len);
				}
			}
		}
	}
}

/* Rules 4 and 5 together: a frame that leaves a port, read back by that
 * same port's ingress (as the far end of the link would read it), lands in
 * the VLAN it was forwarded in.  A frame that would hop VLANs fails this. */
static void test_every_forwarded_frame_reads_back_in_the_same_vlan(void **state)
{
	uint8_t frame[FRAME_MAX_BYTES], result[FRAME_MAX_BYTES];
	struct vlan_ingress first, back;
	size_t in, out, f, len;
	int got;

	for (in = 0; in < P_COUNT; in++) {
		for (out = 0; out < P_COUNT; out++) {
			for (f = 0; f < F_COUNT; f++) {
				len = frame_make((enum frame_id)f, frame);
				got = forward((enum port_id)in, (enum port_id)out, frame, len,
					      false, result);
				if (got < 0) {
					continue;
				}
				vlan_ingress_decide(ports[in], frame, len, &first);
				vlan_ingress_decide(ports[out], result, (size_t)got, &back);
				assert_int_not_equal(back.action, VLAN_INGRESS_DROP);
				assert_int_equal(back.meta.vlan.vid, first.meta.vlan.vid);
			}
		}
	}
}

static void test_native_vlan_hop_through_native_untagged_port_is_dropped(void **state)
{
	uint8_t frame[FRAME_MAX_BYTES], result[FRAME_MAX_BYTES];
	size_t len;

	/* 802.1Q 10 outside 802.1Q 20: VLAN 10 is native on both ports.
	 * Sent on untagged, the far end would put it in VLAN 20. */
	len = frame_make(F_DOUBLE_10_20, frame);
	assert_int_equal(forward(P_NATIVE_TAGGED, P_NATIVE_UNTAGGED, frame, len, false, result),
			 -2);
	assert_int_equal(forward(P_NATIVE_UNTAGGED, P_NATIVE_UNTAGGED, frame, len, true, result),
			 -2);
	assert_int_equal(forward(P_TRUNK_ALL, P_ACCESS, frame, len, false, result), -2);
	/* Tagged egress is safe: the far end sees VLAN 10 outermost. */
	assert_int_equal(forward(P_NATIVE_UNTAGGED, P_NATIVE_TAGGED, frame, len, false, result),
			 (int)len);
	assert_memory_equal(result, frame, len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_names_are_ovs_names_and_parse_back),
		cmocka_unit_test(test_mode_parse_rejects_unknown_names_and_leaves_mode),
		cmocka_unit_test(test_drop_names_are_distinct),
		cmocka_unit_test(test_create_rejects_tag_outside_1_4094_for_tagged_modes),
		cmocka_unit_test(test_create_rejects_tag_on_plain_trunk),
		cmocka_unit_test(test_create_rejects_trunk_list_on_access_and_tunnel),
		cmocka_unit_test(test_create_rejects_cvlans_and_tunnel_tpid_outside_tunnel),
		cmocka_unit_test(test_create_rejects_tunnel_tpid_that_is_no_vlan_tpid),
		cmocka_unit_test(test_create_rejects_unknown_mode),
		cmocka_unit_test(test_create_copies_sets_so_caller_may_change_them),
		cmocka_unit_test(test_getters_report_configuration),
		cmocka_unit_test(test_destroy_accepts_null),
		cmocka_unit_test(test_membership_per_mode),
		cmocka_unit_test(test_access_accepts_untagged_into_its_vlan),
		cmocka_unit_test(test_access_treats_priority_tag_as_untagged_keeping_priority),
		cmocka_unit_test(test_access_drops_tagged_frame_even_in_its_own_vlan),
		cmocka_unit_test(test_access_drops_double_tagged_frame),
		cmocka_unit_test(test_access_drops_tag_hidden_behind_priority_tag),
		cmocka_unit_test(test_trunk_accepts_listed_vlan_tagged),
		cmocka_unit_test(test_trunk_outer_tag_decides_for_double_tagged_frame),
		cmocka_unit_test(test_trunk_keeps_8021ad_tpid_of_outer_tag),
		cmocka_unit_test(test_trunk_without_native_drops_untagged_and_priority_tagged),
		cmocka_unit_test(test_trunk_drops_vlan_not_in_list),
		cmocka_unit_test(test_empty_trunk_list_means_no_vlan_not_all),
		cmocka_unit_test(test_native_ports_put_untagged_frames_in_native_vlan),
		cmocka_unit_test(test_native_ports_accept_native_vlan_tagged_too),
		cmocka_unit_test(test_native_ports_drop_tag_hidden_behind_priority_tag),
		cmocka_unit_test(test_tunnel_puts_every_frame_in_service_vlan),
		cmocka_unit_test(test_tunnel_cvlans_filter_only_tagged_customer_frames),
		cmocka_unit_test(test_tunnel_cvlans_filter_reads_vid_behind_priority_tag),
		cmocka_unit_test(test_trunk_reads_customer_vid_behind_priority_tag),
		cmocka_unit_test(test_tunnel_uses_configured_service_tpid),
		cmocka_unit_test(test_reserved_vid_is_dropped_on_every_port),
		cmocka_unit_test(test_every_short_or_cut_frame_is_malformed_on_every_port),
		cmocka_unit_test(test_ingress_of_every_frame_on_every_port_matches_table),
		cmocka_unit_test(test_egress_access_sends_own_vlan_untagged_and_drops_others),
		cmocka_unit_test(test_egress_trunk_sends_listed_vlans_tagged_and_drops_others),
		cmocka_unit_test(test_egress_push_carries_meta_tpid_and_priority),
		cmocka_unit_test(test_egress_native_untagged_sends_native_vlan_untagged),
		cmocka_unit_test(test_egress_native_tagged_sends_native_vlan_tagged),
		cmocka_unit_test(test_egress_tunnel_strips_service_tag_and_filters_customer_vlan),
		cmocka_unit_test(test_egress_drops_untagged_frame_that_would_expose_inner_tag),
		cmocka_unit_test(test_egress_never_sends_vlan_0_or_4095),
		cmocka_unit_test(test_egress_tagged_flag_changes_only_how_never_whether),
		cmocka_unit_test(test_ingress_apply_pops_only_for_tagged_and_priority_decisions),
		cmocka_unit_test(test_egress_apply_carries_out_each_action),
		cmocka_unit_test(test_access_to_trunk_pushes_port_vlan_with_guest_priority),
		cmocka_unit_test(test_trunk_to_access_strips_tag),
		cmocka_unit_test(test_access_to_access_in_same_vlan_sends_priority_frame_untagged),
		cmocka_unit_test(test_tunnel_to_trunk_wraps_customer_frame_in_service_tag),
		cmocka_unit_test(test_qinq_from_trunk_to_tunnel_exposes_customer_tag),
		cmocka_unit_test(test_native_untagged_sends_native_vlan_bare_and_others_tagged),
		cmocka_unit_test(test_double_tagging_attack_from_access_reaches_no_port),
		cmocka_unit_test(test_forwarding_with_tag_kept_or_stripped_gives_same_bytes),
		cmocka_unit_test(test_every_forwarded_frame_reads_back_in_the_same_vlan),
		cmocka_unit_test(test_native_vlan_hop_through_native_untagged_port_is_dropped),
	};

	return cmocka_run_group_tests_name("vlan_portmode", tests, ports_setup, ports_teardown);
}
