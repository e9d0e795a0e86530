/* SPDX-License-Identifier: MIT */
/* test_forward.c: bridges, ports and the per-frame decision (vswitch/
 * bridge.c, forward.c).  Named cases state each behaviour on a bridge with
 * one port of every VLAN mode; a property test then sends many random
 * frames between random ports and checks every answer against a reference
 * model written here from the rules, not from the code: the same outputs
 * and bytes, no frame ever seen outside its VLAN, and counters that add up
 * (every frame received is forwarded or dropped with one reason). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc-fail.h"
#include "errmsg.h"
#include "frames.h"
#include "vswitch.h"

#define T0 5000000u
#define AGING_MS (300u * 1000)
#define MAX_OUTS 64
#define BUF_BYTES 9200
#define HEADROOM 64

/* The ports of the named cases, numbered in the order they are added:
 * VLAN 10 has A1 A2 TR NT NU TUN, VLAN 20 has A3 TR TR2 NT, VLAN 30 has TR
 * NU, VLAN 40 has LONE alone. */
enum {
	A1,   /* access 10 */
	A2,   /* access 10 */
	A3,   /* access 20 */
	TR,   /* trunk 10,20,30 */
	TR2,  /* trunk 20 */
	NT,   /* native-tagged, native 10, trunk 20 */
	NU,   /* native-untagged, native 30, trunk 10 */
	TUN,  /* dot1q-tunnel, service VLAN 10, 802.1ad */
	LONE, /* access 40 */
	N_PORTS
};

struct port_desc {
	const char *name;
	enum vlan_port_mode mode;
	uint16_t tag;
	const char *trunks;
};

static const struct port_desc fixture_ports[N_PORTS] = {
	[A1] = {"a1", VLAN_MODE_ACCESS, 10, NULL},
	[A2] = {"a2", VLAN_MODE_ACCESS, 10, NULL},
	[A3] = {"a3", VLAN_MODE_ACCESS, 20, NULL},
	[TR] = {"tr", VLAN_MODE_TRUNK, 0, "10,20,30"},
	[TR2] = {"tr2", VLAN_MODE_TRUNK, 0, "20"},
	[NT] = {"nt", VLAN_MODE_NATIVE_TAGGED, 10, "20"},
	[NU] = {"nu", VLAN_MODE_NATIVE_UNTAGGED, 30, "10"},
	[TUN] = {"tun", VLAN_MODE_DOT1Q_TUNNEL, 10, NULL},
	[LONE] = {"lone", VLAN_MODE_ACCESS, 40, NULL},
};

static struct vsw_bridge *br;
static int tx_ctx[N_PORTS];
static struct vsw_output outs[MAX_OUTS];
static struct vsw_verdict verdict;
static uint64_t now = T0;

/* Adds a port described by 'd' with tx context 'ctx' and MAC limit
 * 'mac_limit'; returns its number. */
static uint16_t port_add(struct vsw_bridge *b, const struct port_desc *d, void *ctx,
			 uint32_t mac_limit)
{
	struct vsw_port_opts opts;
	struct vlan_set *trunks = NULL;
	struct errmsg err = {{0}};
	uint16_t port_no = VSW_PORT_NONE;

	vsw_port_opts_init(&opts);
	opts.name = d->name;
	opts.type = "test";
	opts.vlan.mode = d->mode;
	opts.vlan.tag = d->tag;
	opts.tx_ctx = ctx;
	opts.mac_limit = mac_limit;
	if (d->trunks) {
		assert_int_equal(vlan_set_create(&trunks), 0);
		assert_int_equal(vlan_set_parse(trunks, d->trunks, NULL), 0);
		opts.vlan.trunks = trunks;
	}
	assert_int_equal(vsw_port_add(b, &opts, &port_no, &err), 0);
	assert_string_equal(err.msg, "");
	vlan_set_destroy(trunks);
	return port_no;
}

static struct vsw_bridge *bridge_make(const struct vsw_bridge_opts *opts)
{
	struct vsw_bridge_opts defaults;
	struct vsw_bridge *b = NULL;
	struct errmsg err = {{0}};

	vsw_bridge_opts_init(&defaults);
	defaults.hash_seed = 42;
	assert_int_equal(vsw_bridge_create(opts ? opts : &defaults, &b, &err), 0);
	assert_non_null(b);
	return b;
}

static int fixture_setup(void **state)
{
	int i;

	br = bridge_make(NULL);
	for (i = 0; i < N_PORTS; i++) {
		assert_int_equal(port_add(br, &fixture_ports[i], &tx_ctx[i], 0), i);
	}
	now = T0;
	return 0;
}

static int fixture_teardown(void **state)
{
	vsw_bridge_destroy(br);
	br = NULL;
	return 0;
}

/* Forwards 'len' bytes at 'frame' in through 'in'; returns the outputs. */
static int send_frame(uint16_t in, const uint8_t *frame, size_t len)
{
	int n;

	memset(outs, 0xee, sizeof(outs));
	n = vsw_forward(br, in, frame, (uint32_t)len, now, &verdict, outs, MAX_OUTS);
	assert_true(n >= 0);
	assert_int_equal(n, verdict.n_outputs);
	assert_int_equal(verdict.first_output, 0);
	if (n > 0) {
		assert_int_equal(verdict.drop, VSW_DROP_NONE);
	} else {
		assert_int_not_equal(verdict.drop, VSW_DROP_NONE);
	}
	return n;
}

/* Sends a minimum-size frame with the given addresses and tags. */
static int send_simple(uint16_t in, const uint8_t *dst, const uint8_t *src,
		       const struct ftag *tags, unsigned int n_tags)
{
	uint8_t frame[128];
	size_t len = frame_make(frame, dst, src, tags, n_tags, MIN_PAYLOAD_BYTES, 0);

	return send_frame(in, frame, len);
}

struct exp {
	uint16_t port;
	enum vsw_edit edit;
	uint16_t tpid; /* PUSH and REWRITE */
	uint16_t vid;
	uint8_t pcp;
};

static void expect_outputs(int n, const struct exp *e, int n_exp)
{
	int i;

	assert_int_equal(n, n_exp);
	for (i = 0; i < n_exp; i++) {
		assert_int_equal(outs[i].port_no, e[i].port);
		assert_ptr_equal(outs[i].tx_ctx, &tx_ctx[e[i].port]);
		assert_int_equal(outs[i].edit, e[i].edit);
		if (e[i].edit == VSW_EDIT_PUSH || e[i].edit == VSW_EDIT_REWRITE) {
			assert_int_equal(outs[i].tag.tpid, e[i].tpid);
			assert_int_equal(outs[i].tag.vid, e[i].vid);
			assert_int_equal(outs[i].tag.pcp, e[i].pcp);
		}
	}
}

static struct vsw_counters port_counters(uint16_t port)
{
	struct vsw_counters c;

	assert_int_equal(vsw_port_get_counters(br, port, &c), 0);
	return c;
}

static struct vsw_counters vlan_counters(uint16_t vid)
{
	struct vsw_counters c;

	assert_int_equal(vsw_vlan_get_counters(br, vid, &c), 0);
	return c;
}

static const struct ftag q10 = {TPID_Q, 10, 0};
static const struct ftag q20 = {TPID_Q, 20, 0};

/* --- Bridges and ports --- */

static void test_bridge_rejects_bad_options(void **state)
{
	struct vsw_bridge_opts opts;
	struct vsw_bridge *b = NULL;
	struct errmsg err = {{0}};

	vsw_bridge_opts_init(&opts);
	assert_int_equal(opts.mac_capacity, 8192);
	assert_int_equal(opts.mac_aging_s, 300);
	opts.mac_capacity = 0;
	assert_int_equal(vsw_bridge_create(&opts, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "capacity"));
	vsw_bridge_opts_init(&opts);
	opts.mac_aging_s = 0;
	assert_int_equal(vsw_bridge_create(&opts, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "aging"));
	vsw_bridge_opts_init(&opts);
	opts.max_ports = 0;
	assert_int_equal(vsw_bridge_create(&opts, &b, &err), -EINVAL);
	opts.max_ports = VSW_PORT_NONE;
	assert_int_equal(vsw_bridge_create(&opts, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "max_ports"));
	vsw_bridge_opts_init(&opts);
	opts.name = "";
	assert_int_equal(vsw_bridge_create(&opts, &b, &err), -EINVAL);
	assert_null(b);
	opts.name = "br0";
	assert_int_equal(vsw_bridge_create(&opts, &b, NULL), 0);
	assert_string_equal(vsw_bridge_name(b), "br0");
	assert_int_equal(vsw_bridge_max_ports(b), VSW_MAX_PORTS_DEFAULT);
	vsw_bridge_destroy(b);
	vsw_bridge_destroy(NULL);
}

static void test_port_add_rejects_and_names(void **state)
{
	struct vsw_port_opts opts;
	struct errmsg err = {{0}};
	uint16_t port_no = 77;
	char long_type[VSW_PORT_TYPE_BYTES + 1];

	vsw_port_opts_init(&opts);
	opts.name = "a1";
	opts.vlan.tag = 10;
	assert_int_equal(vsw_port_add(br, &opts, &port_no, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "a1"));
	opts.name = "";
	assert_int_equal(vsw_port_add(br, &opts, &port_no, &err), -EINVAL);
	opts.name = NULL;
	assert_int_equal(vsw_port_add(br, &opts, &port_no, &err), -EINVAL);
	opts.name = "bad";
	opts.vlan.tag = 0; /* an access port needs a VLAN */
	assert_int_equal(vsw_port_add(br, &opts, &port_no, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "port bad:"));
	opts.vlan.tag = 10;
	memset(long_type, 'x', sizeof(long_type) - 1);
	long_type[sizeof(long_type) - 1] = '\0';
	opts.type = long_type;
	assert_int_equal(vsw_port_add(br, &opts, &port_no, &err), -EINVAL);
	assert_int_equal(port_no, 77); /* written only on success */
	assert_int_equal(vsw_port_find(br, "bad"), -ENOENT);

	assert_int_equal(vsw_port_find(br, "tun"), TUN);
	assert_int_equal(vsw_port_find(br, NULL), -ENOENT);
	assert_string_equal(vsw_port_name(br, NT), "nt");
	assert_string_equal(vsw_port_type(br, NT), "test");
	assert_ptr_equal(vsw_port_tx_ctx(br, NT), &tx_ctx[NT]);
	assert_int_equal(vlan_port_mode(vsw_port_vlan(br, NT)), VLAN_MODE_NATIVE_TAGGED);
	assert_null(vsw_port_name(br, N_PORTS));
	assert_null(vsw_port_type(br, VSW_PORT_NONE));
	assert_null(vsw_port_vlan(br, N_PORTS));
	assert_null(vsw_port_tx_ctx(br, N_PORTS));
	assert_int_equal(vsw_port_next(br, -1), A1);
	assert_int_equal(vsw_port_next(br, A1), A2);
	assert_int_equal(vsw_port_next(br, LONE), -ENOENT);
}

static void test_port_numbers_reused_after_remove(void **state)
{
	const struct port_desc d = {"new", VLAN_MODE_ACCESS, 10, NULL};

	assert_int_equal(vsw_port_remove(br, A2), 0);
	assert_int_equal(vsw_port_remove(br, A2), -ENODEV);
	assert_int_equal(vsw_port_remove(br, 999), -ENODEV);
	assert_int_equal(vsw_port_find(br, "a2"), -ENOENT);
	assert_int_equal(vsw_port_next(br, A1), A3);
	assert_int_equal(port_add(br, &d, &tx_ctx[A2], 0), A2);
	assert_int_equal(port_add(br, &(struct port_desc){"more", VLAN_MODE_ACCESS, 10, NULL},
				  NULL, 0),
			 N_PORTS);
}

static void test_bridge_full_of_ports(void **state)
{
	struct vsw_bridge_opts opts;
	struct vsw_bridge *b;
	struct vsw_port_opts popts;
	struct errmsg err = {{0}};
	uint16_t port_no;

	vsw_bridge_opts_init(&opts);
	opts.max_ports = 2;
	b = bridge_make(&opts);
	port_add(b, &fixture_ports[A1], NULL, 0);
	port_add(b, &fixture_ports[A2], NULL, 0);
	vsw_port_opts_init(&popts);
	popts.name = "third";
	popts.vlan.tag = 10;
	assert_int_equal(vsw_port_add(b, &popts, &port_no, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "2 ports"));
	vsw_bridge_destroy(b);
}

static int bridge_attempt(void *arg)
{
	struct vsw_bridge_opts opts;
	struct errmsg err = {{0}};
	int ret;

	vsw_bridge_opts_init(&opts);
	ret = vsw_bridge_create(&opts, arg, &err);
	if (ret == -ENOMEM) {
		assert_non_null(strstr(err.msg, "out of memory"));
	}
	return ret;
}

struct add_attempt {
	struct vsw_port_opts opts;
	uint16_t port_no;
};

static int port_attempt(void *arg)
{
	struct add_attempt *a = arg;
	struct errmsg err = {{0}};
	int ret;

	ret = vsw_port_add(br, &a->opts, &a->port_no, &err);
	if (ret == -ENOMEM) {
		assert_int_equal(vsw_port_find(br, a->opts.name), -ENOENT);
		assert_non_null(strstr(err.msg, "memory"));
	}
	return ret;
}

static int set_vlan_attempt(void *arg)
{
	struct vlan_port_opts *vopts = arg;
	int ret;

	ret = vsw_port_set_vlan(br, A2, vopts, NULL);
	if (ret == -ENOMEM) {
		assert_int_equal(vlan_port_tag(vsw_port_vlan(br, A2)), 10);
	}
	return ret;
}

/* Every allocation of a configuration call may fail: the call says so and
 * leaves the bridge as it was (ASan's leak check covers the rest). */
static void test_configuration_out_of_memory(void **state)
{
	struct vsw_bridge *b = NULL;
	struct add_attempt add;
	struct vlan_port_opts vopts;

	assert_true(alloc_fail_walk(bridge_attempt, &b) >= 4);
	vsw_bridge_destroy(b);
	vsw_port_opts_init(&add.opts);
	add.opts.name = "late";
	add.opts.vlan.tag = 10;
	assert_true(alloc_fail_walk(port_attempt, &add) >= 3);
	assert_int_equal(add.port_no, N_PORTS);
	assert_int_equal(send_simple(A1, mac_bcast, station(1), NULL, 0), 6);
	vlan_port_opts_init(&vopts);
	vopts.tag = 20;
	assert_true(alloc_fail_walk(set_vlan_attempt, &vopts) >= 3);
	assert_int_equal(send_simple(A1, mac_bcast, station(1), NULL, 0), 5);
}

/* --- Flooding --- */

static void test_unknown_unicast_floods_within_vlan_only(void **state)
{
	const struct exp e[] = {
		{A2, VSW_EDIT_NONE, 0, 0, 0},        {TR, VSW_EDIT_PUSH, TPID_Q, 10, 0},
		{NT, VSW_EDIT_PUSH, TPID_Q, 10, 0},  {NU, VSW_EDIT_PUSH, TPID_Q, 10, 0},
		{TUN, VSW_EDIT_NONE, 0, 0, 0},
	};

	expect_outputs(send_simple(A1, station(99), station(1), NULL, 0), e, 5);
	assert_true(verdict.flooded);
	assert_int_equal(verdict.vid, 10);
	assert_int_equal(port_counters(A1).flooded, 1);
	assert_int_equal(vlan_counters(10).flooded, 1);
	assert_int_equal(port_counters(A3).tx_packets, 0);
	assert_int_equal(port_counters(TR2).tx_packets, 0);
	assert_int_equal(port_counters(LONE).tx_packets, 0);
}

static void test_broadcast_and_multicast_flood_within_vlan(void **state)
{
	const struct ftag q20p5 = {TPID_Q, 20, 5};
	const struct exp e20[] = {
		{A3, VSW_EDIT_POP, 0, 0, 0},
		{TR2, VSW_EDIT_NONE, 0, 0, 0},
		{NT, VSW_EDIT_NONE, 0, 0, 0},
	};
	const struct exp e30[] = {{TR, VSW_EDIT_PUSH, TPID_Q, 30, 0}};

	expect_outputs(send_simple(TR, mac_bcast, station(1), &q20p5, 1), e20, 3);
	assert_int_equal(verdict.vid, 20);
	assert_true(verdict.flooded);
	expect_outputs(send_simple(NU, mac_mcast, station(2), NULL, 0), e30, 1);
	assert_int_equal(verdict.vid, 30);
	assert_true(verdict.flooded);
	/* A multicast destination is never learned as a station. */
	expect_outputs(send_simple(NU, mac_mcast, station(2), NULL, 0), e30, 1);
	assert_true(verdict.flooded);
}

static void test_alone_in_vlan_is_no_output(void **state)
{
	assert_int_equal(send_simple(LONE, mac_bcast, station(1), NULL, 0), 0);
	assert_int_equal(verdict.drop, VSW_DROP_NO_OUTPUT);
	assert_int_equal(verdict.vid, 40);
	assert_int_equal(port_counters(LONE).rx_drops[VSW_DROP_NO_OUTPUT], 1);
	assert_int_equal(vlan_counters(40).rx_drops[VSW_DROP_NO_OUTPUT], 1);
	assert_int_equal(vlan_counters(40).flooded, 1);
}

/* --- Learning and unicast --- */

static void test_unicast_goes_to_learned_port_with_its_tag_action(void **state)
{
	const struct ftag q10p3 = {TPID_Q, 10, 3};
	const struct exp to_tr[] = {{TR, VSW_EDIT_PUSH, TPID_Q, 10, 0}};
	const struct exp to_a1[] = {{A1, VSW_EDIT_POP, 0, 0, 0}};
	const struct exp to_nu[] = {{NU, VSW_EDIT_PUSH, TPID_Q, 10, 0}};

	send_simple(A1, mac_bcast, station(1), NULL, 0);      /* learns 1 on A1 */
	send_simple(TR, mac_bcast, station(2), &q10p3, 1);    /* learns 2 on TR */
	assert_int_equal(vsw_fdb_lookup(br, 10, station(2), now), TR);
	expect_outputs(send_simple(A1, station(2), station(1), NULL, 0), to_tr, 1);
	assert_false(verdict.flooded);
	expect_outputs(send_simple(TR, station(1), station(2), &q10p3, 1), to_a1, 1);
	assert_false(verdict.flooded);
	/* Keyed by VLAN: station 2 is unknown in VLAN 30, so that floods. */
	send_simple(NU, mac_bcast, station(3), &q10, 1); /* 3 on NU, VLAN 10 */
	expect_outputs(send_simple(A1, station(3), station(1), NULL, 0), to_nu, 1);
	assert_int_equal(send_simple(NU, station(2), station(3), NULL, 0), 1); /* VLAN 30 */
	assert_true(verdict.flooded);
	assert_int_equal(port_counters(A1).flooded, 1);
}

static void test_never_back_out_of_ingress_port(void **state)
{
	send_simple(A1, mac_bcast, station(3), NULL, 0);
	assert_int_equal(send_simple(A1, station(3), station(4), NULL, 0), 0);
	assert_int_equal(verdict.drop, VSW_DROP_SAME_PORT);
	assert_int_equal(port_counters(A1).rx_drops[VSW_DROP_SAME_PORT], 1);
	assert_int_equal(vlan_counters(10).rx_drops[VSW_DROP_SAME_PORT], 1);
	assert_int_equal(port_counters(A1).tx_packets, 0);
}

static void test_station_move_follows_the_station(void **state)
{
	struct vsw_fdb_stats s;
	const struct exp to_a2[] = {{A2, VSW_EDIT_POP, 0, 0, 0}};

	send_simple(A1, mac_bcast, station(5), NULL, 0);
	send_simple(A2, mac_bcast, station(5), NULL, 0);
	expect_outputs(send_simple(TR, station(5), station(6), &q10, 1), to_a2, 1);
	vsw_fdb_get_stats(br, &s);
	assert_int_equal(s.moved, 1);
	assert_int_equal(s.learned, 2);
}

static void test_aging_at_300_s_makes_unicast_flood_again(void **state)
{
	send_simple(TR, mac_bcast, station(2), &q10, 1);
	now += AGING_MS - 1;
	assert_int_equal(send_simple(A1, station(2), station(1), NULL, 0), 1);
	assert_false(verdict.flooded);
	now += 1; /* station 2 has now been silent for exactly the aging time */
	assert_int_equal(send_simple(A1, station(2), station(1), NULL, 0), 5);
	assert_true(verdict.flooded);
	assert_int_equal(vsw_bridge_age(br, now), 1); /* station 2; 1 is fresh */
	assert_int_equal(vsw_fdb_lookup(br, 10, station(1), now), A1);
}

static void test_port_mac_limit_from_port_and_bridge(void **state)
{
	struct vsw_bridge_opts opts;
	struct vsw_bridge *b;
	struct vsw_fdb_stats s;
	uint16_t p0, p1;
	uint8_t frame[128];
	size_t len;
	unsigned int i;

	vsw_bridge_opts_init(&opts);
	opts.port_mac_limit = 4;
	b = bridge_make(&opts);
	p0 = port_add(b, &fixture_ports[A1], NULL, 0);
	p1 = port_add(b, &fixture_ports[A2], NULL, 2);
	for (i = 0; i < 10; i++) {
		len = frame_make(frame, mac_bcast, station(100 + i), NULL, 0, 46, 0);
		assert_int_equal(vsw_forward(b, p0, frame, (uint32_t)len, T0, &verdict, outs, 8),
				 1);
		len = frame_make(frame, mac_bcast, station(200 + i), NULL, 0, 46, 0);
		assert_int_equal(vsw_forward(b, p1, frame, (uint32_t)len, T0, &verdict, outs, 8),
				 1);
	}
	vsw_fdb_get_stats(b, &s);
	assert_int_equal(s.entries, 6);
	assert_int_equal(s.evicted_limit, 14);
	assert_int_equal(vsw_fdb_lookup(b, 10, station(109), T0), p0);
	assert_int_equal(vsw_fdb_lookup(b, 10, station(105), T0), -ENOENT);
	assert_int_equal(vsw_port_set_mac_limit(b, p0, 1), 0);
	vsw_fdb_get_stats(b, &s);
	assert_int_equal(s.entries, 3);
	assert_int_equal(vsw_port_set_mac_limit(b, 9, 1), -ENODEV);
	vsw_bridge_destroy(b);
}

/* --- VLAN rules on ingress and egress --- */

static void test_tagged_frames_on_access_port_dropped_and_counted(void **state)
{
	const struct ftag double_tag[] = {{TPID_Q, 10, 0}, {TPID_Q, 20, 0}};

	assert_int_equal(send_simple(A1, mac_bcast, station(1), double_tag, 2), 0);
	assert_int_equal(verdict.drop, VSW_DROP_TAGGED_ON_ACCESS);
	assert_int_equal(verdict.vid, 0);
	assert_int_equal(send_simple(A1, mac_bcast, station(1), &q10, 1), 0);
	assert_int_equal(send_simple(A1, mac_bcast, station(1), &q20, 1), 0);
	assert_int_equal(port_counters(A1).rx_packets, 3);
	assert_int_equal(port_counters(A1).rx_drops[VSW_DROP_TAGGED_ON_ACCESS], 3);
	/* Refused by its port's VLAN rules, it belongs to no VLAN. */
	assert_int_equal(vlan_counters(10).rx_packets, 0);
	assert_int_equal(vlan_counters(20).rx_packets, 0);
	assert_int_equal(vsw_fdb_lookup(br, 10, station(1), now), -ENOENT);
	assert_int_equal(vsw_fdb_lookup(br, 20, station(1), now), -ENOENT);
}

static void test_trunk_refuses_vlans_outside_its_list(void **state)
{
	const struct ftag q40 = {TPID_Q, 40, 0}, q4095 = {TPID_Q, 4095, 0};

	assert_int_equal(send_simple(TR2, mac_bcast, station(1), &q10, 1), 0);
	assert_int_equal(verdict.drop, VSW_DROP_NOT_ALLOWED);
	assert_int_equal(send_simple(TR, mac_bcast, station(1), &q40, 1), 0);
	assert_int_equal(verdict.drop, VSW_DROP_NOT_ALLOWED);
	assert_int_equal(send_simple(TR, mac_bcast, station(1), NULL, 0), 0);
	assert_int_equal(verdict.drop, VSW_DROP_UNTAGGED_NO_NATIVE);
	assert_int_equal(send_simple(TR, mac_bcast, station(1), &q4095, 1), 0);
	assert_int_equal(verdict.drop, VSW_DROP_RESERVED_VID);
	assert_int_equal(port_counters(TR2).rx_drops[VSW_DROP_NOT_ALLOWED], 1);
	assert_int_equal(port_counters(TR).rx_drops[VSW_DROP_NOT_ALLOWED], 1);
	assert_int_equal(port_counters(TR).rx_drops[VSW_DROP_UNTAGGED_NO_NATIVE], 1);
	assert_int_equal(port_counters(TR).rx_drops[VSW_DROP_RESERVED_VID], 1);
	assert_int_equal(vlan_counters(40).rx_packets, 0);
	assert_int_equal(port_counters(LONE).tx_packets, 0);
}

static void test_malformed_frames_dropped(void **state)
{
	uint8_t frame[64];

	frame_make(frame, mac_bcast, station(1), &q10, 1, 0, 0);
	assert_int_equal(send_frame(TR, frame, 10), 0);
	assert_int_equal(verdict.drop, VSW_DROP_MALFORMED);
	assert_int_equal(send_frame(TR, frame, 16), 0); /* ends inside the tag */
	assert_int_equal(verdict.drop, VSW_DROP_MALFORMED);
	assert_int_equal(port_counters(TR).rx_bytes, 26);
}

static void test_priority_tag_on_access_kept_as_priority(void **state)
{
	const struct ftag prio6 = {TPID_Q, 0, 6};
	const struct exp e[] = {
		{A2, VSW_EDIT_POP, 0, 0, 0},           {TR, VSW_EDIT_REWRITE, TPID_Q, 10, 6},
		{NT, VSW_EDIT_REWRITE, TPID_Q, 10, 6}, {NU, VSW_EDIT_REWRITE, TPID_Q, 10, 6},
		{TUN, VSW_EDIT_POP, 0, 0, 0},
	};

	expect_outputs(send_simple(A1, mac_bcast, station(1), &prio6, 1), e, 5);
	assert_int_equal(port_counters(A2).tx_bytes, 60);
	assert_int_equal(port_counters(TR).tx_bytes, 64);
}

static void test_double_tag_from_trunk_not_exposed_on_access(void **state)
{
	const struct ftag q10_20[] = {{TPID_Q, 10, 0}, {TPID_Q, 20, 0}};
	const struct exp e[] = {
		{NT, VSW_EDIT_NONE, 0, 0, 0},
		{NU, VSW_EDIT_NONE, 0, 0, 0},
		{TUN, VSW_EDIT_POP, 0, 0, 0},
	};
	struct vsw_counters c10;

	expect_outputs(send_simple(TR, mac_bcast, station(1), q10_20, 2), e, 3);
	assert_int_equal(port_counters(A1).tx_drops[VSW_DROP_TAG_EXPOSED], 1);
	assert_int_equal(port_counters(A2).tx_drops[VSW_DROP_TAG_EXPOSED], 1);
	assert_int_equal(vlan_counters(10).tx_drops[VSW_DROP_TAG_EXPOSED], 2);
	c10 = vlan_counters(10);
	assert_int_equal(vsw_counters_tx_dropped(&c10), 2);
	assert_int_equal(port_counters(A3).tx_packets + port_counters(A3).tx_bytes, 0);
	/* Unicast to a station behind an access port: refused, so dropped. */
	send_simple(A1, mac_bcast, station(5), NULL, 0);
	assert_int_equal(send_simple(TR, station(5), station(1), q10_20, 2), 0);
	assert_int_equal(verdict.drop, VSW_DROP_NO_OUTPUT);
	assert_int_equal(port_counters(TR).rx_drops[VSW_DROP_NO_OUTPUT], 1);
	assert_int_equal(port_counters(A1).tx_drops[VSW_DROP_TAG_EXPOSED], 2);
}

static void test_dot1q_tunnel_pushes_service_tag(void **state)
{
	const struct ftag c99 = {TPID_Q, 99, 2};
	const struct exp tagged[] = {
		{TR, VSW_EDIT_PUSH, TPID_AD, 10, 0},
		{NT, VSW_EDIT_PUSH, TPID_AD, 10, 0},
		{NU, VSW_EDIT_PUSH, TPID_AD, 10, 0},
	};
	const struct exp untagged[] = {
		{A1, VSW_EDIT_NONE, 0, 0, 0},         {A2, VSW_EDIT_NONE, 0, 0, 0},
		{TR, VSW_EDIT_PUSH, TPID_AD, 10, 0},  {NT, VSW_EDIT_PUSH, TPID_AD, 10, 0},
		{NU, VSW_EDIT_PUSH, TPID_AD, 10, 0},
	};

	/* A customer VLAN never reaches access ports untagged. */
	expect_outputs(send_simple(TUN, mac_bcast, station(1), &c99, 1), tagged, 3);
	assert_int_equal(verdict.vid, 10);
	expect_outputs(send_simple(TUN, mac_bcast, station(1), NULL, 0), untagged, 5);
}

static void test_per_vlan_counters(void **state)
{
	struct vsw_counters c10, c20, a1;
	int i;

	for (i = 0; i < 3; i++) {
		send_simple(A1, mac_bcast, station(1), NULL, 0);
	}
	for (i = 0; i < 2; i++) {
		send_simple(A3, mac_bcast, station(2), NULL, 0);
	}
	send_simple(A1, mac_bcast, station(1), &q20, 1); /* dropped, no VLAN */
	c10 = vlan_counters(10);
	c20 = vlan_counters(20);
	assert_int_equal(c10.rx_packets, 3);
	assert_int_equal(c10.rx_bytes, 180);
	assert_int_equal(c10.flooded, 3);
	assert_int_equal(c10.tx_packets, 15);
	assert_int_equal(c10.tx_bytes, 3 * (60 + 64 + 64 + 64 + 60));
	assert_int_equal(vsw_counters_rx_dropped(&c10), 0);
	assert_int_equal(c20.rx_packets, 2);
	assert_int_equal(c20.tx_packets, 6);
	assert_int_equal(c20.tx_bytes, 6 * 64);
	a1 = port_counters(A1);
	assert_int_equal(vsw_counters_rx_dropped(&a1), 1);
	assert_int_equal(vsw_vlan_get_counters(br, 0, &c10), -EINVAL);
	assert_int_equal(vsw_vlan_get_counters(br, 4095, &c10), -EINVAL);
	assert_int_equal(vsw_port_get_counters(br, N_PORTS, &c10), -ENODEV);
}

/* A VID hidden behind two priority tags must not reach an access port,
 * where the guest's stack would strip them and find VLAN 30. */
static void test_stacked_priority_tags_do_not_hide_a_vid(void **state)
{
	const struct ftag hidden[] = {{TPID_Q, 0, 1}, {TPID_Q, 0, 2}, {TPID_Q, 30, 0}};

	send_simple(TUN, mac_bcast, station(1), hidden, 3);
	assert_int_equal(port_counters(A1).tx_drops[VSW_DROP_TAG_EXPOSED], 1);
	assert_int_equal(port_counters(A2).tx_drops[VSW_DROP_TAG_EXPOSED], 1);
}

/* --- Source and destination checks --- */

static void test_bad_source_dropped_and_not_learned(void **state)
{
	assert_int_equal(send_simple(A1, mac_bcast, mac_mcast, NULL, 0), 0);
	assert_int_equal(verdict.drop, VSW_DROP_BAD_SOURCE);
	assert_int_equal(send_simple(A1, mac_bcast, mac_bcast, NULL, 0), 0);
	assert_int_equal(send_simple(A1, mac_bcast, mac_zero, NULL, 0), 0);
	assert_int_equal(port_counters(A1).rx_drops[VSW_DROP_BAD_SOURCE], 3);
	assert_int_equal(vlan_counters(10).rx_drops[VSW_DROP_BAD_SOURCE], 3);
	assert_int_equal(vlan_counters(10).rx_packets, 3);
	assert_int_equal(vsw_fdb_lookup(br, 10, mac_zero, now), -ENOENT);
}

static void test_reserved_group_not_forwarded(void **state)
{
	uint8_t lacp[6], above[6];

	memcpy(lacp, mac_stp, 6);
	lacp[5] = 0x02;
	memcpy(above, mac_stp, 6);
	above[5] = 0x10;
	assert_int_equal(send_simple(A1, mac_stp, station(1), NULL, 0), 0);
	assert_int_equal(verdict.drop, VSW_DROP_RESERVED_GROUP);
	assert_int_equal(send_simple(A1, lacp, station(1), NULL, 0), 0);
	assert_int_equal(vsw_fdb_lookup(br, 10, station(1), now), -ENOENT);
	assert_int_equal(send_simple(A1, above, station(1), NULL, 0), 5);
	assert_int_equal(port_counters(A1).rx_drops[VSW_DROP_RESERVED_GROUP], 2);
}

/* --- Jumbo frames --- */

static void test_jumbo_9000_byte_frame_forwarded_intact(void **state)
{
	static uint8_t frame[9000], buf[BUF_BYTES];
	struct vlan_buf vb;
	struct ftag tag;
	size_t len;

	send_simple(TR, mac_bcast, station(2), &q10, 1);
	send_simple(A2, mac_bcast, station(3), NULL, 0);
	len = frame_make(frame, station(2), station(1), NULL, 0, 9000 - 14, 0x5a);
	assert_int_equal(len, 9000);
	assert_int_equal(send_frame(A1, frame, len), 1);
	assert_int_equal(outs[0].port_no, TR);
	memcpy(buf + HEADROOM, frame, len);
	vb = (struct vlan_buf){.base = buf, .head_bytes = HEADROOM, .len_bytes = len,
			       .cap_bytes = sizeof(buf)};
	assert_int_equal(vsw_output_apply(&outs[0], &vb), 0);
	assert_int_equal(vb.len_bytes, 9004);
	assert_memory_equal(vlan_buf_data(&vb), frame, 12);
	assert_true(frame_outer_tag(vlan_buf_data(&vb), vb.len_bytes, &tag));
	assert_int_equal(tag.vid, 10);
	assert_memory_equal(vlan_buf_data(&vb) + 16, frame + 12, len - 12);
	assert_int_equal(port_counters(TR).tx_bytes, 64 + 9004); /* after A2's broadcast */
	/* To an access port: no edit, the same 9000 bytes. */
	len = frame_make(frame, station(3), station(1), NULL, 0, 9000 - 14, 0x5a);
	assert_int_equal(send_frame(A1, frame, len), 1);
	assert_int_equal(outs[0].port_no, A2);
	assert_int_equal(outs[0].edit, VSW_EDIT_NONE);
	assert_int_equal(port_counters(A2).tx_bytes, 60 + 9000); /* after TR's broadcast */
	assert_int_equal(port_counters(A1).rx_bytes, 18000);
}

/* --- Bursts --- */

static void test_burst_stops_where_outputs_run_out(void **state)
{
	static uint8_t frames[3][64];
	struct vsw_pkt pkts[3];
	struct vsw_verdict v[3];
	int i;

	for (i = 0; i < 3; i++) {
		pkts[i].data = frames[i];
		pkts[i].len_bytes = (uint32_t)frame_make(frames[i], mac_bcast, station(1 + i), NULL,
							 0, MIN_PAYLOAD_BYTES, 0);
	}
	/* VLAN 10 has six members: room for fewer is refused outright... */
	assert_int_equal(vsw_forward_burst(br, A1, pkts, 3, now, v, outs, 5), -ENOSPC);
	assert_int_equal(port_counters(A1).rx_packets, 0);
	assert_int_equal(vsw_fdb_lookup(br, 10, station(1), now), -ENOENT);
	/* ...and a burst stops at the first frame that may not fit. */
	assert_int_equal(vsw_forward_burst(br, A1, pkts, 3, now, v, outs, 12), 2);
	assert_int_equal(v[0].first_output, 0);
	assert_int_equal(v[0].n_outputs, 5);
	assert_int_equal(v[1].first_output, 5);
	assert_int_equal(v[1].n_outputs, 5);
	assert_int_equal(port_counters(A1).rx_packets, 2);
	assert_int_equal(vsw_fdb_lookup(br, 10, station(3), now), -ENOENT);
	assert_int_equal(vsw_forward_burst(br, A1, pkts + 2, 1, now, v, outs, 6), 1);
	assert_int_equal(vsw_forward_burst(br, A1, pkts, 0, now, v, outs, 0), 0);
	/* Dropped frames need no room at all. */
	pkts[0].len_bytes = 10;
	assert_int_equal(vsw_forward_burst(br, A1, pkts, 1, now, v, NULL, 0), 1);
	assert_int_equal(v[0].drop, VSW_DROP_MALFORMED);
	assert_int_equal(vsw_forward_burst(br, N_PORTS, pkts, 1, now, v, outs, 64), -ENODEV);
	assert_int_equal(vsw_forward(br, VSW_PORT_NONE, frames[0], 60, now, v, outs, 64), -ENODEV);
}

/* A repeated frame skips learning only if learning again would change
 * nothing: a source the table refuses counts in its statistics each time,
 * in a burst as one by one (found by tests/fuzz/fuzz_frames.c). */
static void test_burst_repeats_count_refused_sources(void **state)
{
	uint8_t frame[64];
	struct vsw_pkt pkts[3];
	struct vsw_verdict v[3];
	struct vsw_fdb_stats st;
	struct vsw_bridge_opts opts;
	int i;

	/* Station 1 is static on A2; its frames from A1 are refused. */
	assert_int_equal(vsw_fdb_add_static(br, 10, station(1), A2), 0);
	send_simple(A2, mac_bcast, station(2), NULL, 0);
	frame_make(frame, station(2), station(1), NULL, 0, MIN_PAYLOAD_BYTES, 0);
	for (i = 0; i < 3; i++) {
		pkts[i] = (struct vsw_pkt){.data = frame, .len_bytes = 60};
	}
	assert_int_equal(vsw_forward_burst(br, A1, pkts, 3, now, v, outs, MAX_OUTS), 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(v[i].n_outputs, 1);
		assert_int_equal(outs[v[i].first_output].port_no, A2);
	}
	vsw_fdb_get_stats(br, &st);
	assert_int_equal(st.static_conflicts, 3);

	/* A table of one static entry has no room for station 3. */
	vsw_bridge_destroy(br);
	vsw_bridge_opts_init(&opts);
	opts.mac_capacity = 1;
	opts.hash_seed = 42;
	br = bridge_make(&opts);
	for (i = 0; i < N_PORTS; i++) {
		assert_int_equal(port_add(br, &fixture_ports[i], &tx_ctx[i], 0), i);
	}
	assert_int_equal(vsw_fdb_add_static(br, 10, station(1), A2), 0);
	frame_make(frame, station(1), station(3), NULL, 0, MIN_PAYLOAD_BYTES, 0);
	assert_int_equal(vsw_forward_burst(br, A1, pkts, 3, now, v, outs, MAX_OUTS), 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(v[i].n_outputs, 1);
	}
	vsw_fdb_get_stats(br, &st);
	assert_int_equal(st.no_space, 3);
	assert_int_equal(st.learned, 0);
}

/* --- Reconfiguration --- */

static void test_removed_port_takes_its_entries(void **state)
{
	const struct port_desc d = {"tr-again", VLAN_MODE_TRUNK, 0, "10"};

	send_simple(TR, mac_bcast, station(2), &q10, 1);
	assert_int_equal(vsw_fdb_add_static(br, 10, station(7), TR), 0);
	assert_int_equal(vsw_port_remove(br, TR), 0);
	assert_int_equal(vsw_fdb_lookup(br, 10, station(2), now), -ENOENT);
	assert_int_equal(vsw_fdb_lookup(br, 10, station(7), now), -ENOENT);
	assert_int_equal(send_simple(A1, station(2), station(1), NULL, 0), 4);
	assert_true(verdict.flooded);
	/* The number comes back, the entries do not. */
	assert_int_equal(port_add(br, &d, &tx_ctx[TR], 0), TR);
	assert_int_equal(send_simple(A1, station(2), station(1), NULL, 0), 5);
	assert_true(verdict.flooded);
	assert_int_equal(port_counters(TR).tx_packets, 1);
}

static void test_set_vlan_moves_port_and_forgets_old_vlan(void **state)
{
	struct vlan_port_opts vopts;
	struct errmsg err = {{0}};
	const struct exp e20[] = {
		{A2, VSW_EDIT_NONE, 0, 0, 0},
		{TR, VSW_EDIT_PUSH, TPID_Q, 20, 0},
		{TR2, VSW_EDIT_PUSH, TPID_Q, 20, 0},
		{NT, VSW_EDIT_PUSH, TPID_Q, 20, 0},
	};

	send_simple(A2, mac_bcast, station(4), NULL, 0);
	assert_int_equal(vsw_fdb_add_static(br, 10, station(8), A2), 0);
	vlan_port_opts_init(&vopts);
	vopts.tag = 20;
	assert_int_equal(vsw_port_set_vlan(br, A2, &vopts, &err), 0);
	assert_int_equal(vsw_fdb_lookup(br, 10, station(4), now), -ENOENT);
	assert_int_equal(vsw_fdb_lookup(br, 10, station(8), now), -ENOENT);
	assert_int_equal(send_simple(A1, mac_bcast, station(1), NULL, 0), 4);
	expect_outputs(send_simple(A3, mac_bcast, station(5), NULL, 0), e20, 4);
	vopts.tag = 0;
	assert_int_equal(vsw_port_set_vlan(br, A2, &vopts, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "port a2:"));
	assert_int_equal(vlan_port_tag(vsw_port_vlan(br, A2)), 20);
	assert_int_equal(vsw_port_set_vlan(br, N_PORTS, &vopts, &err), -ENODEV);
}

/* --- Forwarding database calls --- */

struct dump_seen {
	unsigned int n;
	unsigned int n_static;
	uint64_t age_of_station1;
};

static int dump_cb(const struct vsw_fdb_entry *e, void *arg)
{
	struct dump_seen *seen = arg;

	seen->n++;
	seen->n_static += e->is_static;
	if (memcmp(e->mac, station(1), 6) == 0) {
		seen->age_of_station1 = e->age_ms;
		assert_int_equal(e->port_no, A1);
		assert_int_equal(e->vid, 10);
	}
	return 0;
}

static int stop_cb(const struct vsw_fdb_entry *e, void *arg)
{
	return -EINTR;
}

static void test_fdb_static_dump_flush(void **state)
{
	struct dump_seen seen = {0};
	struct vsw_fdb_stats s;
	const struct exp to_a2[] = {{A2, VSW_EDIT_POP, 0, 0, 0}};

	assert_int_equal(vsw_fdb_add_static(br, 20, station(9), A1), -EINVAL); /* not in 20 */
	assert_int_equal(vsw_fdb_add_static(br, 10, station(9), N_PORTS), -ENODEV);
	assert_int_equal(vsw_fdb_add_static(br, 10, mac_bcast, A2), -EINVAL);
	assert_int_equal(vsw_fdb_add_static(br, 10, station(9), A2), 0);
	/* Static: the station's frames on another port do not move it. */
	send_simple(A1, mac_bcast, station(9), NULL, 0);
	expect_outputs(send_simple(TR, station(9), station(2), &q10, 1), to_a2, 1);
	now += 10 * AGING_MS;
	expect_outputs(send_simple(TR, station(9), station(2), &q10, 1), to_a2, 1);
	send_simple(A1, mac_bcast, station(1), NULL, 0);
	now += 1500;
	assert_int_equal(vsw_fdb_dump(br, now, dump_cb, &seen), 0);
	assert_int_equal(seen.n, 3); /* 9 static, 2 on TR, 1 on A1 */
	assert_int_equal(seen.n_static, 1);
	assert_int_equal(seen.age_of_station1, 1500);
	assert_int_equal(vsw_fdb_dump(br, now, stop_cb, NULL), -EINTR);
	vsw_fdb_get_stats(br, &s);
	assert_int_equal(s.capacity, 8192);
	assert_int_equal(s.static_conflicts, 1);
	assert_int_equal(s.entries, 3);
	assert_int_equal(vsw_fdb_flush(br, VSW_PORT_NONE, 0, false), 2);
	assert_int_equal(vsw_fdb_lookup(br, 10, station(9), now), A2);
	assert_int_equal(vsw_fdb_del(br, 10, station(9)), 0);
	assert_int_equal(vsw_fdb_del(br, 10, station(9)), -ENOENT);
	assert_int_equal(vsw_fdb_lookup(br, 0, station(9), now), -ENOENT);
	assert_int_equal(vsw_fdb_lookup(br, 10, NULL, now), -ENOENT);
}

/* --- Helpers of the public API --- */

static void test_drop_names_are_distinct(void **state)
{
	int i, j;

	for (i = 0; i < VSW_DROP_COUNT; i++) {
		assert_string_not_equal(vsw_drop_name((enum vsw_drop)i), "unknown");
		for (j = 0; j < i; j++) {
			assert_string_not_equal(vsw_drop_name((enum vsw_drop)i),
						vsw_drop_name((enum vsw_drop)j));
		}
	}
	assert_string_equal(vsw_drop_name(VSW_DROP_TAGGED_ON_ACCESS), "tagged-on-access");
	assert_string_equal(vsw_drop_name(VSW_DROP_SAME_PORT), "same-port");
	assert_string_equal(vsw_drop_name(VSW_DROP_COUNT), "unknown");
	assert_string_equal(vsw_drop_name((enum vsw_drop)-1), "unknown");
}

static void test_tx_failed_counted(void **state)
{
	vsw_port_count_tx_failed(br, TR, 3);
	vsw_port_count_tx_failed(br, N_PORTS, 3);
	assert_int_equal(port_counters(TR).tx_drops[VSW_DROP_TX_FAILED], 3);
}

/* Applies 'out' to 'frame' placed with 'head' bytes before it and 'tail'
 * after; checks the result against 'want'. */
static void check_apply(const struct vsw_output *out, const uint8_t *frame, size_t len,
			size_t head, size_t tail, const uint8_t *want, size_t want_len, int ret)
{
	uint8_t buf[256];
	struct vlan_buf vb = {.base = buf, .head_bytes = head, .len_bytes = len,
			      .cap_bytes = head + len + tail};

	memcpy(buf + head, frame, len);
	assert_int_equal(vsw_output_apply(out, &vb), ret);
	if (ret < 0) {
		assert_int_equal(vb.len_bytes, len);
		assert_memory_equal(vlan_buf_data(&vb), frame, len);
	} else {
		assert_int_equal(vb.len_bytes, want_len);
		assert_memory_equal(vlan_buf_data(&vb), want, want_len);
		assert_int_equal((long)want_len - (long)len, vsw_edit_delta_bytes(out->edit));
	}
}

static void test_output_edits_on_buffers(void **state)
{
	const struct ftag t10p1 = {TPID_Q, 10, 1}, s30 = {TPID_AD, 30, 0}, prio = {TPID_Q, 0, 4};
	const struct ftag p10p4 = {TPID_Q, 10, 4};
	uint8_t plain[80], tagged[84], stagged[84], prio_tagged[84], rewritten[84];
	size_t lp, lt, ls, lr;
	struct vsw_output out = {0};

	lp = frame_make(plain, station(1), station(2), NULL, 0, 46, 9);
	lt = frame_make(tagged, station(1), station(2), &t10p1, 1, 46, 9);
	ls = frame_make(stagged, station(1), station(2), &s30, 1, 46, 9);
	frame_make(prio_tagged, station(1), station(2), &prio, 1, 46, 9);
	lr = frame_make(rewritten, station(1), station(2), &p10p4, 1, 46, 9);
	out.edit = VSW_EDIT_NONE;
	check_apply(&out, tagged, lt, 0, 0, tagged, lt, 0);
	out.edit = VSW_EDIT_POP;
	check_apply(&out, tagged, lt, 0, 0, plain, lp, 0);
	check_apply(&out, plain, lp, 8, 8, NULL, 0, -ENOENT);
	out.edit = VSW_EDIT_PUSH;
	out.tag = (struct vlan_tag){.tpid = TPID_Q, .vid = 10, .pcp = 1};
	check_apply(&out, plain, lp, 4, 0, tagged, lt, 0); /* into headroom */
	check_apply(&out, plain, lp, 0, 4, tagged, lt, 0); /* into tailroom */
	check_apply(&out, plain, lp, 3, 3, NULL, 0, -ENOSPC);
	out.tag = (struct vlan_tag){.tpid = TPID_AD, .vid = 30};
	check_apply(&out, plain, lp, 4, 0, stagged, ls, 0);
	out.edit = VSW_EDIT_REWRITE;
	out.tag = (struct vlan_tag){.tpid = TPID_Q, .vid = 10, .pcp = 4};
	check_apply(&out, prio_tagged, lr, 0, 0, rewritten, lr, 0); /* no room needed */
	check_apply(&out, plain, lp, 4, 4, NULL, 0, -ENOENT);
	/* A tag push refuses leaves the frame as it was. */
	out.tag.vid = 4095;
	check_apply(&out, prio_tagged, lr, 0, 0, NULL, 0, -EINVAL);
	assert_int_equal(vsw_edit_delta_bytes((enum vsw_edit)99), 0);
}

/* --- Property test against a reference model --- */

/* The model's view of a port, from the rules in vlan.h, not from libvlan. */
struct mport {
	enum vlan_port_mode mode;
	uint16_t tag;
	const char *trunks_text;
	bool trunks[4096];
};

#define M_PORTS 10
#define M_STATIONS 8
#define M_FRAMES 30000
#define M_FRAME_BYTES 160

static const struct port_desc model_ports[M_PORTS] = {
	{"acc10a", VLAN_MODE_ACCESS, 10, NULL},
	{"acc10b", VLAN_MODE_ACCESS, 10, NULL},
	{"acc20", VLAN_MODE_ACCESS, 20, NULL},
	{"trunk", VLAN_MODE_TRUNK, 0, "10,20,30"},
	{"trunk20", VLAN_MODE_TRUNK, 0, "20"},
	{"nat-t", VLAN_MODE_NATIVE_TAGGED, 10, "20"},
	{"nat-u", VLAN_MODE_NATIVE_UNTAGGED, 30, "10,20"},
	{"tunnel", VLAN_MODE_DOT1Q_TUNNEL, 10, NULL},
	{"empty", VLAN_MODE_TRUNK, 0, ""},
	{"acc40", VLAN_MODE_ACCESS, 40, NULL},
};

struct model {
	struct mport ports[M_PORTS];
	/* fdb[vid][station]: port + 1, 0 if unknown; seen time */
	uint8_t fdb[4096][M_STATIONS];
	uint64_t seen[4096][M_STATIONS];
	/* expected counters */
	uint64_t rx[M_PORTS], rx_drops[M_PORTS][VSW_DROP_COUNT], tx[M_PORTS], tx_bytes[M_PORTS];
	uint64_t tx_drops[M_PORTS][VSW_DROP_COUNT], forwarded[M_PORTS];
	uint64_t vlan_rx[4096], vlan_tx[4096];
};

static bool m_member(const struct mport *p, uint16_t vid)
{
	switch (p->mode) {
	case VLAN_MODE_ACCESS:
	case VLAN_MODE_DOT1Q_TUNNEL:
		return vid == p->tag;
	case VLAN_MODE_TRUNK:
		return p->trunks[vid];
	case VLAN_MODE_NATIVE_TAGGED:
	case VLAN_MODE_NATIVE_UNTAGGED:
		return vid == p->tag || p->trunks[vid];
	}
	return false;
}

struct mframe {
	const uint8_t *bytes;
	size_t len;
	unsigned int n_tags; /* up to 3 parsed */
	struct ftag tags[3];
	bool more_tags;      /* a fourth tag follows the three */
	bool malformed;
};

static void m_parse(struct mframe *f)
{
	size_t off = 12;
	uint16_t type;

	f->n_tags = 0;
	f->more_tags = false;
	f->malformed = f->len < 14;
	if (f->malformed) {
		return;
	}
	for (;;) {
		type = (uint16_t)(f->bytes[off] << 8 | f->bytes[off + 1]);
		if ((type != TPID_Q && type != TPID_AD) || f->n_tags == 3) {
			f->more_tags = f->n_tags == 3 && (type == TPID_Q || type == TPID_AD);
			return;
		}
		if (f->len < off + 6) {
			f->malformed = true;
			return;
		}
		frame_outer_tag(f->bytes + off - 12, f->len - off + 12, &f->tags[f->n_tags]);
		f->n_tags++;
		off += 4;
	}
}

/* The VID of the first tag from 'first' on that carries one, looking
 * through every priority tag; behind three tags it is unknown (4095). */
static uint16_t m_inner(const struct mframe *f, unsigned int first)
{
	for (unsigned int i = first; i < f->n_tags; i++) {
		if (f->tags[i].vid != 0) {
			return f->tags[i].vid;
		}
	}
	return f->more_tags ? 4095 : 0;
}

/* The model's ingress: the VLAN (0: dropped, with '*drop'), whether the
 * outer tag comes off, the tag to put on tagged egress, and the inner VID. */
struct mclass {
	uint16_t vid;
	enum vsw_drop drop;
	bool strip_outer;
	struct ftag vlan_tag;
	uint16_t cvid;
};

static struct mclass m_ingress_tagged(const struct mport *p, const struct mframe *f)
{
	struct mclass c = {0};
	const struct ftag *outer = &f->tags[0];

	if (f->n_tags == 0 || outer->vid == 0) {
		if (p->mode == VLAN_MODE_TRUNK) {
			c.drop = VSW_DROP_UNTAGGED_NO_NATIVE;
		} else if (f->n_tags > 1) {
			c.drop = VSW_DROP_PRIORITY_STACKED;
		} else {
			c.vid = p->tag;
			c.strip_outer = f->n_tags == 1;
			c.vlan_tag = (struct ftag){TPID_Q, p->tag, f->n_tags ? outer->pcp : 0};
		}
		return c;
	}
	if (!m_member(p, outer->vid)) {
		c.drop = VSW_DROP_NOT_ALLOWED;
		return c;
	}
	c.vid = outer->vid;
	c.strip_outer = true;
	c.vlan_tag = *outer;
	c.cvid = m_inner(f, 1);
	return c;
}

static struct mclass m_ingress(const struct mport *p, const struct mframe *f)
{
	struct mclass c = {0};

	if (f->malformed) {
		c.drop = VSW_DROP_MALFORMED;
	} else if (f->n_tags > 0 && f->tags[0].vid == 4095) {
		c.drop = VSW_DROP_RESERVED_VID;
	} else if (p->mode == VLAN_MODE_ACCESS) {
		if (f->n_tags > 1 || (f->n_tags == 1 && f->tags[0].vid != 0)) {
			c.drop = VSW_DROP_TAGGED_ON_ACCESS;
		} else {
			c.vid = p->tag;
			c.strip_outer = f->n_tags == 1;
			c.vlan_tag = (struct ftag){TPID_Q, p->tag, f->n_tags ? f->tags[0].pcp : 0};
		}
	} else if (p->mode == VLAN_MODE_DOT1Q_TUNNEL) {
		c.vid = p->tag;
		c.vlan_tag = (struct ftag){TPID_AD, p->tag, 0};
		c.cvid = m_inner(f, 0);
	} else {
		c = m_ingress_tagged(p, f);
	}
	return c;
}

/* The bytes port 'p' sends, or a drop reason. */
static enum vsw_drop m_egress(const struct mport *p, const struct mframe *f,
			      const struct mclass *c, uint8_t *out, size_t *lenp)
{
	bool want_tag = p->mode == VLAN_MODE_TRUNK || p->mode == VLAN_MODE_NATIVE_TAGGED ||
			(p->mode == VLAN_MODE_NATIVE_UNTAGGED && c->vid != p->tag);
	size_t skip = c->strip_outer ? 4 : 0;
	uint16_t tci;

	if (!m_member(p, c->vid)) {
		return VSW_DROP_NOT_MEMBER;
	}
	if (!want_tag && c->cvid != 0 && p->mode != VLAN_MODE_DOT1Q_TUNNEL) {
		return VSW_DROP_TAG_EXPOSED;
	}
	memcpy(out, f->bytes, 12);
	*lenp = 12;
	if (want_tag) {
		tci = (uint16_t)(c->vlan_tag.pcp << 13 | c->vlan_tag.vid);
		out[12] = (uint8_t)(c->vlan_tag.tpid >> 8);
		out[13] = (uint8_t)c->vlan_tag.tpid;
		out[14] = (uint8_t)(tci >> 8);
		out[15] = (uint8_t)tci;
		*lenp = 16;
	}
	memcpy(out + *lenp, f->bytes + 12 + skip, f->len - 12 - skip);
	*lenp += f->len - 12 - skip;
	return VSW_DROP_NONE;
}

static int m_station(const uint8_t *mac)
{
	int i;

	for (i = 0; i < M_STATIONS; i++) {
		if (memcmp(mac, station((unsigned int)i), 6) == 0) {
			return i;
		}
	}
	return -1;
}

/* The destination's port per the model's table, -1 if unknown. */
static int m_lookup(struct model *m, uint16_t vid, int st)
{
	if (st < 0 || m->fdb[vid][st] == 0 || now - m->seen[vid][st] >= AGING_MS) {
		return -1;
	}
	return m->fdb[vid][st] - 1;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t rnd(uint32_t bound)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % bound);
}

static const uint8_t *random_dst(void)
{
	uint32_t r = rnd(100);

	if (r < 60) {
		return station(rnd(M_STATIONS));
	}
	if (r < 80) {
		return mac_bcast;
	}
	if (r < 95) {
		return mac_mcast;
	}
	return r < 97 ? mac_stp : station(1000); /* 1000: never a source */
}

static const uint8_t *random_src(void)
{
	uint32_t r = rnd(100);

	if (r < 97) {
		return station(rnd(M_STATIONS));
	}
	return r < 99 ? mac_mcast : mac_zero;
}

static struct ftag random_tag(void)
{
	static const uint16_t vids[] = {0, 10, 20, 30, 40, 99, 4095};
	struct ftag t;

	t.tpid = rnd(4) ? TPID_Q : TPID_AD;
	t.vid = vids[rnd(sizeof(vids) / sizeof(vids[0]))];
	t.pcp = (uint8_t)rnd(8);
	return t;
}

static size_t random_frame(uint8_t *out)
{
	struct ftag tags[3];
	unsigned int n = rnd(10), i;
	size_t len;

	n = n < 4 ? 0 : n < 8 ? 1 : n < 9 ? 2 : 3;
	for (i = 0; i < n; i++) {
		tags[i] = random_tag();
	}
	len = frame_make(out, random_dst(), random_src(), tags, n, 30 + rnd(90),
			 (uint8_t)rnd(256));
	if (rnd(100) == 0) {
		len = rnd(20); /* cut short, maybe inside a tag */
	}
	return len;
}

/* No escape: port 'p' carries 'vid', and the frame 'out' it sends reads as
 * 'vid' at the far end.  Where it leaves tagged, its outer tag says 'vid'.
 * Where it leaves untagged, no VID may show in front, even behind priority
 * tags, or a guest's 802.1Q stack (Linux strips priority tags one by one)
 * would take the frame into that VLAN.  A tunnel port's frames carry the
 * customer's own tags: nothing to check there. */
static void check_no_escape(const struct mport *p, const uint8_t *out, size_t len, uint16_t vid)
{
	bool tagged = p->mode == VLAN_MODE_TRUNK || p->mode == VLAN_MODE_NATIVE_TAGGED ||
		      (p->mode == VLAN_MODE_NATIVE_UNTAGGED && vid != p->tag);
	unsigned int n_priority = 0;
	struct ftag tag;
	size_t off = 0;

	assert_true(m_member(p, vid));
	if (p->mode == VLAN_MODE_DOT1Q_TUNNEL) {
		return;
	}
	if (tagged) {
		assert_true(frame_outer_tag(out, len, &tag));
		assert_int_equal(tag.vid, vid);
		return;
	}
	while (frame_outer_tag(out + off, len - off, &tag)) {
		assert_int_equal(tag.vid, 0);
		n_priority++;
		off += 4;
	}
}

static void check_one_output(struct model *m, const struct vsw_output *o, const struct mframe *f,
			     const uint8_t *want, size_t want_len)
{
	static uint8_t buf[HEADROOM + M_FRAME_BYTES + 16];
	struct vlan_buf vb = {.base = buf, .head_bytes = HEADROOM, .len_bytes = f->len,
			      .cap_bytes = HEADROOM + f->len};

	memcpy(buf + HEADROOM, f->bytes, f->len);
	assert_int_equal(vsw_output_apply(o, &vb), 0);
	assert_int_equal(vb.len_bytes, want_len);
	assert_memory_equal(vlan_buf_data(&vb), want, want_len);
	assert_ptr_equal(o->tx_ctx, &m->ports[o->port_no]);
	check_no_escape(&m->ports[o->port_no], vlan_buf_data(&vb), vb.len_bytes,
			verdict.vid);
}

/* Which ports the model sends to, before egress refusals: -1 if flooding. */
static int m_target(struct model *m, uint16_t in, const struct mframe *f, uint16_t vid,
		    enum vsw_drop *dropp)
{
	int src = m_station(f->bytes + 6), dst;

	*dropp = VSW_DROP_NONE;
	if ((f->bytes[6] & 1) || memcmp(f->bytes + 6, mac_zero, 6) == 0) {
		*dropp = VSW_DROP_BAD_SOURCE;
		return -2;
	}
	if (memcmp(f->bytes, mac_stp, 6) == 0) {
		*dropp = VSW_DROP_RESERVED_GROUP;
		return -2;
	}
	m->fdb[vid][src] = (uint8_t)(in + 1);
	m->seen[vid][src] = now;
	dst = (f->bytes[0] & 1) ? -1 : m_lookup(m, vid, m_station(f->bytes));
	if (dst == in) {
		*dropp = VSW_DROP_SAME_PORT;
		return -2;
	}
	return dst;
}

static void m_drop(struct model *m, uint16_t in, enum vsw_drop drop)
{
	m->rx_drops[in][drop]++;
	assert_int_equal(verdict.n_outputs, 0);
	assert_int_equal(verdict.drop, drop);
}

/* Sends one frame through the bridge and the model; compares the two. */
static void model_step(struct model *m, uint16_t in, const struct mframe *f)
{
	static uint8_t want[M_FRAME_BYTES + 16];
	struct mclass c = m_ingress(&m->ports[in], f);
	enum vsw_drop drop, eg;
	size_t want_len;
	int n, dst, k = 0;
	uint16_t p;

	n = send_frame(in, f->bytes, f->len);
	m->rx[in]++;
	assert_int_equal(verdict.vid, c.vid);
	if (c.vid == 0) {
		m_drop(m, in, c.drop);
		return;
	}
	m->vlan_rx[c.vid]++;
	dst = m_target(m, in, f, c.vid, &drop);
	if (drop != VSW_DROP_NONE) {
		m_drop(m, in, drop);
		return;
	}
	assert_int_equal(verdict.flooded, dst < 0);
	for (p = 0; p < M_PORTS; p++) {
		if (p == in || !(dst < 0 ? m_member(&m->ports[p], c.vid) : p == dst)) {
			continue;
		}
		eg = m_egress(&m->ports[p], f, &c, want, &want_len);
		if (eg != VSW_DROP_NONE) {
			m->tx_drops[p][eg]++;
			continue;
		}
		assert_true(k < n);
		assert_int_equal(outs[k].port_no, p);
		check_one_output(m, &outs[k], f, want, want_len);
		m->tx[p]++;
		m->tx_bytes[p] += want_len;
		m->vlan_tx[c.vid]++;
		k++;
	}
	assert_int_equal(k, n);
	if (n == 0) {
		m_drop(m, in, VSW_DROP_NO_OUTPUT);
	} else {
		m->forwarded[in]++;
	}
}

static void check_model_counters(const struct model *m)
{
	struct vsw_counters c;
	uint16_t p, vid;
	int r;

	for (p = 0; p < M_PORTS; p++) {
		c = port_counters(p);
		assert_int_equal(c.rx_packets, m->rx[p]);
		assert_int_equal(c.tx_packets, m->tx[p]);
		assert_int_equal(c.tx_bytes, m->tx_bytes[p]);
		for (r = 0; r < VSW_DROP_COUNT; r++) {
			assert_int_equal(c.rx_drops[r], m->rx_drops[p][r]);
			assert_int_equal(c.tx_drops[r], m->tx_drops[p][r]);
		}
		/* rx = forwarded + dropped, for every port */
		assert_int_equal(c.rx_packets, m->forwarded[p] + vsw_counters_rx_dropped(&c));
	}
	for (vid = 1; vid <= 4094; vid++) {
		c = vlan_counters(vid);
		assert_int_equal(c.rx_packets, m->vlan_rx[vid]);
		assert_int_equal(c.tx_packets, m->vlan_tx[vid]);
	}
}

static void test_random_frames_match_reference_model(void **state)
{
	static struct model m;
	static uint8_t frame[M_FRAME_BYTES];
	struct mframe f;
	uint16_t p;
	int i;

	vsw_bridge_destroy(br);
	br = bridge_make(NULL);
	memset(&m, 0, sizeof(m));
	for (p = 0; p < M_PORTS; p++) {
		assert_int_equal(port_add(br, &model_ports[p], &m.ports[p], 0), p);
		m.ports[p].mode = model_ports[p].mode;
		m.ports[p].tag = model_ports[p].tag;
		if (model_ports[p].trunks) {
			struct vlan_set *s;

			assert_int_equal(vlan_set_create(&s), 0);
			assert_int_equal(vlan_set_parse(s, model_ports[p].trunks, NULL), 0);
			for (i = 1; i <= 4094; i++) {
				m.ports[p].trunks[i] = vlan_set_contains(s, (uint16_t)i);
			}
			vlan_set_destroy(s);
		}
	}
	now = T0;
	for (i = 0; i < M_FRAMES; i++) {
		f.bytes = frame;
		f.len = random_frame(frame);
		m_parse(&f);
		model_step(&m, (uint16_t)rnd(M_PORTS), &f);
		now += rnd(30) == 0 ? rnd(2 * AGING_MS) : rnd(50);
		if (rnd(500) == 0) {
			vsw_bridge_age(br, now);
		}
	}
	check_model_counters(&m);
}

/* The burst path reuses the decision of a frame repeated from the one
 * before it (forward.c, repeats()).  Bursts of random frames, each often
 * repeated, must get exactly the verdicts, outputs and counters that the
 * same frames get one at a time on an identical bridge. */
#define B_FRAMES 20000
#define B_BURST 32

static void test_bursts_decide_like_single_frames(void **state)
{
	static uint8_t frames[B_BURST][M_FRAME_BYTES];
	static struct vsw_output bouts[B_BURST * M_PORTS], souts[M_PORTS];
	struct vsw_verdict bv[B_BURST], sv;
	struct vsw_pkt pkts[B_BURST];
	struct vsw_bridge *single = bridge_make(NULL);
	int done = 0, p, ctx[M_PORTS];

	vsw_bridge_destroy(br);
	br = bridge_make(NULL);
	for (p = 0; p < M_PORTS; p++) {
		assert_int_equal(port_add(br, &model_ports[p], &ctx[p], 0), p);
		assert_int_equal(port_add(single, &model_ports[p], &ctx[p], 0), p);
	}
	now = T0;
	while (done < B_FRAMES) {
		uint16_t in = (uint16_t)rnd(M_PORTS);
		unsigned int n = 1 + rnd(B_BURST), i, k;
		int got;

		for (i = 0; i < n; i++) {
			/* Half the frames repeat the one before, as one flow does. */
			if (i > 0 && rnd(2)) {
				memcpy(frames[i], frames[i - 1], sizeof(frames[i]));
				pkts[i].len_bytes = pkts[i - 1].len_bytes;
			} else {
				pkts[i].len_bytes = (uint32_t)random_frame(frames[i]);
			}
			pkts[i].data = frames[i];
		}
		got = vsw_forward_burst(br, in, pkts, n, now, bv, bouts, B_BURST * M_PORTS);
		assert_int_equal(got, (int)n);
		for (i = 0; i < n; i++) {
			assert_int_equal(vsw_forward(single, in, pkts[i].data, pkts[i].len_bytes, now,
						     &sv, souts, M_PORTS),
					 bv[i].n_outputs);
			assert_int_equal(sv.vid, bv[i].vid);
			assert_int_equal(sv.drop, bv[i].drop);
			assert_int_equal(sv.flooded, bv[i].flooded);
			for (k = 0; k < sv.n_outputs; k++) {
				const struct vsw_output *b = &bouts[bv[i].first_output + k];

				assert_int_equal(souts[k].port_no, b->port_no);
				assert_int_equal(souts[k].edit, b->edit);
				assert_memory_equal(&souts[k].tag, &b->tag, sizeof(b->tag));
			}
		}
		done += (int)n;
		now += rnd(30) == 0 ? rnd(2 * AGING_MS) : rnd(50);
	}
	for (p = 0; p < M_PORTS; p++) {
		struct vsw_counters a, b;

		assert_int_equal(vsw_port_get_counters(br, (uint16_t)p, &a), 0);
		assert_int_equal(vsw_port_get_counters(single, (uint16_t)p, &b), 0);
		assert_memory_equal(&a, &b, sizeof(a));
	}
	for (uint16_t vid = 1; vid <= 4094; vid++) {
		struct vsw_counters a, b;

		assert_int_equal(vsw_vlan_get_counters(br, vid, &a), 0);
		assert_int_equal(vsw_vlan_get_counters(single, vid, &b), 0);
		assert_memory_equal(&a, &b, sizeof(a));
	}
	vsw_bridge_destroy(single);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bridge_rejects_bad_options),
		T(test_port_add_rejects_and_names),
		T(test_port_numbers_reused_after_remove),
		cmocka_unit_test(test_bridge_full_of_ports),
		T(test_configuration_out_of_memory),
		T(test_unknown_unicast_floods_within_vlan_only),
		T(test_broadcast_and_multicast_flood_within_vlan),
		T(test_alone_in_vlan_is_no_output),
		T(test_unicast_goes_to_learned_port_with_its_tag_action),
		T(test_never_back_out_of_ingress_port),
		T(test_station_move_follows_the_station),
		T(test_aging_at_300_s_makes_unicast_flood_again),
		cmocka_unit_test(test_port_mac_limit_from_port_and_bridge),
		T(test_tagged_frames_on_access_port_dropped_and_counted),
		T(test_trunk_refuses_vlans_outside_its_list),
		T(test_malformed_frames_dropped),
		T(test_priority_tag_on_access_kept_as_priority),
		T(test_double_tag_from_trunk_not_exposed_on_access),
		T(test_dot1q_tunnel_pushes_service_tag),
		T(test_stacked_priority_tags_do_not_hide_a_vid),
		T(test_per_vlan_counters),
		T(test_bad_source_dropped_and_not_learned),
		T(test_reserved_group_not_forwarded),
		T(test_jumbo_9000_byte_frame_forwarded_intact),
		T(test_burst_stops_where_outputs_run_out),
		T(test_burst_repeats_count_refused_sources),
		T(test_removed_port_takes_its_entries),
		T(test_set_vlan_moves_port_and_forgets_old_vlan),
		T(test_fdb_static_dump_flush),
		T(test_drop_names_are_distinct),
		T(test_tx_failed_counted),
		cmocka_unit_test(test_output_edits_on_buffers),
		T(test_random_frames_match_reference_model),
		T(test_bursts_decide_like_single_frames),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
