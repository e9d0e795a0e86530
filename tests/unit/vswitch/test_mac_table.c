/* SPDX-License-Identifier: MIT */
/* test_mac_table.c: the forwarding database (vswitch/mac-table.c).  Named
 * cases pin learning, aging at the 300 s boundary with the injected clock,
 * the per-port limit, eviction from the biggest learner, moves, static
 * entries and flushes; a randomised run then checks the invariants after
 * every operation: limits and capacity hold, a learned station is found
 * where it was last seen, and a full table evicts from a biggest port. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc-fail.h"
#include "mac-table.h"

#define AGING_MS (300u * 1000)
#define T0 1000000u /* an arbitrary start, so that no test relies on 0 */

/* A locally administered unicast MAC numbered 'n'. */
static const uint8_t *mac(uint32_t n)
{
	static uint8_t bufs[8][6];
	static unsigned int next;
	uint8_t *m = bufs[next++ % 8];

	m[0] = 0x02;
	m[1] = 0x00;
	m[2] = (uint8_t)(n >> 24);
	m[3] = (uint8_t)(n >> 16);
	m[4] = (uint8_t)(n >> 8);
	m[5] = (uint8_t)n;
	return m;
}

static struct vsw_mac_table *table_make(uint32_t capacity, uint16_t n_ports, uint32_t port_limit)
{
	struct vsw_mac_table_opts opts = {
		.capacity = capacity,
		.aging_ms = AGING_MS,
		.n_ports = n_ports,
		.port_limit = port_limit,
		.seed = 0x1234,
	};
	struct vsw_mac_table *t = NULL;

	assert_int_equal(vsw_mac_table_create(&opts, &t), 0);
	assert_non_null(t);
	return t;
}

static struct vsw_mac_stats stats_of(const struct vsw_mac_table *t)
{
	struct vsw_mac_stats s;

	vsw_mac_get_stats(t, &s);
	return s;
}

static void test_create_rejects_bad_options(void **state)
{
	struct vsw_mac_table_opts good = {
		.capacity = 8, .aging_ms = 1, .n_ports = 1, .port_limit = 0, .seed = 1};
	struct vsw_mac_table_opts o;
	struct vsw_mac_table *t = NULL;

	o = good;
	o.capacity = 0;
	assert_int_equal(vsw_mac_table_create(&o, &t), -EINVAL);
	o = good;
	o.capacity = VSW_MAC_CAPACITY_MAX + 1;
	assert_int_equal(vsw_mac_table_create(&o, &t), -EINVAL);
	o = good;
	o.aging_ms = 0;
	assert_int_equal(vsw_mac_table_create(&o, &t), -EINVAL);
	o = good;
	o.n_ports = 0;
	assert_int_equal(vsw_mac_table_create(&o, &t), -EINVAL);
	o = good;
	o.n_ports = VSW_MAC_NO_PORT;
	assert_int_equal(vsw_mac_table_create(&o, &t), -EINVAL);
	assert_int_equal(vsw_mac_table_create(NULL, &t), -EINVAL);
	assert_null(t);
	assert_int_equal(vsw_mac_table_create(&good, &t), 0);
	vsw_mac_table_destroy(t);
	vsw_mac_table_destroy(NULL);
}

static void test_learns_keyed_by_vlan_and_mac(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);

	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0), VSW_MAC_NO_PORT);
	assert_int_equal(vsw_mac_learn(t, 10, mac(1), 2, T0), VSW_MAC_LEARNED);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0), 2);
	/* The same station in another VLAN is another entry. */
	assert_int_equal(vsw_mac_lookup(t, 20, mac(1), T0), VSW_MAC_NO_PORT);
	assert_int_equal(vsw_mac_learn(t, 20, mac(1), 3, T0), VSW_MAC_LEARNED);
	assert_int_equal(vsw_mac_lookup(t, 20, mac(1), T0), 3);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0), 2);
	assert_int_equal(vsw_mac_learn(t, 10, mac(1), 2, T0 + 5), VSW_MAC_REFRESHED);
	assert_int_equal(stats_of(t).entries, 2);
	assert_int_equal(stats_of(t).learned, 2);
	assert_int_equal(vsw_mac_port_count(t, 2), 1);
	assert_int_equal(vsw_mac_port_count(t, 3), 1);
	assert_int_equal(vsw_mac_port_count(t, 99), 0);
	vsw_mac_table_destroy(t);
}

static void test_entry_expires_at_exactly_300_s(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);

	vsw_mac_learn(t, 10, mac(1), 1, T0);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 + AGING_MS - 1), 1);
	assert_int_equal(vsw_mac_age(t, T0 + AGING_MS - 1), 0);
	assert_int_equal(stats_of(t).entries, 1);
	/* Gone for lookups at the boundary even before the tick reclaims it. */
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 + AGING_MS), VSW_MAC_NO_PORT);
	assert_int_equal(vsw_mac_age(t, T0 + AGING_MS), 1);
	assert_int_equal(stats_of(t).entries, 0);
	assert_int_equal(stats_of(t).expired, 1);
	assert_int_equal(vsw_mac_port_count(t, 1), 0);
	vsw_mac_table_destroy(t);
}

static void test_refresh_restarts_the_aging_clock(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);

	vsw_mac_learn(t, 10, mac(1), 1, T0);
	vsw_mac_learn(t, 10, mac(2), 1, T0);
	assert_int_equal(vsw_mac_learn(t, 10, mac(1), 1, T0 + 200000), VSW_MAC_REFRESHED);
	assert_int_equal(vsw_mac_age(t, T0 + AGING_MS), 1); /* mac(2) only */
	assert_int_equal(vsw_mac_lookup(t, 10, mac(2), T0 + AGING_MS), VSW_MAC_NO_PORT);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 + 200000 + AGING_MS - 1), 1);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 + 200000 + AGING_MS), VSW_MAC_NO_PORT);
	/* A lookup is not a sign of life: only the station's own frames are. */
	vsw_mac_learn(t, 10, mac(3), 2, T0);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(3), T0 + AGING_MS - 1), 2);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(3), T0 + AGING_MS), VSW_MAC_NO_PORT);
	vsw_mac_table_destroy(t);
}

static void test_aging_walks_every_port(void **state)
{
	struct vsw_mac_table *t = table_make(64, 8, 0);
	uint32_t i;

	for (i = 0; i < 32; i++) {
		vsw_mac_learn(t, 10, mac(i), (uint16_t)(i % 8), T0 + i * 1000);
	}
	/* Entries 0..9 were seen at or before T0 + 9 s. */
	assert_int_equal(vsw_mac_age(t, T0 + 9000 + AGING_MS), 10);
	for (i = 0; i < 32; i++) {
		assert_int_equal(vsw_mac_lookup(t, 10, mac(i), T0 + 9000 + AGING_MS),
				 i < 10 ? VSW_MAC_NO_PORT : i % 8);
	}
	assert_int_equal(vsw_mac_age(t, T0 + 31000 + AGING_MS), 22);
	assert_int_equal(stats_of(t).entries, 0);
	vsw_mac_table_destroy(t);
}

static void test_expired_station_relearns_as_new_not_moved(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);

	vsw_mac_learn(t, 10, mac(1), 1, T0);
	assert_int_equal(vsw_mac_learn(t, 10, mac(1), 2, T0 + AGING_MS), VSW_MAC_LEARNED);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 + AGING_MS), 2);
	assert_int_equal(stats_of(t).moved, 0);
	assert_int_equal(stats_of(t).expired, 1);
	assert_int_equal(stats_of(t).entries, 1);
	assert_int_equal(vsw_mac_port_count(t, 1), 0);
	vsw_mac_table_destroy(t);
}

static void test_time_going_backwards_does_not_expire(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);

	vsw_mac_learn(t, 10, mac(1), 1, T0);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 - 500), 1);
	assert_int_equal(vsw_mac_age(t, 0), 0);
	vsw_mac_table_destroy(t);
}

static void test_port_limit_evicts_that_ports_least_recent(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 3);

	vsw_mac_learn(t, 10, mac(1), 1, T0);
	vsw_mac_learn(t, 10, mac(2), 1, T0 + 1);
	vsw_mac_learn(t, 10, mac(3), 1, T0 + 2);
	vsw_mac_learn(t, 10, mac(9), 2, T0 + 2);
	/* mac(1) is refreshed, so mac(2) is now the least recently seen. */
	vsw_mac_learn(t, 10, mac(1), 1, T0 + 3);
	assert_int_equal(vsw_mac_learn(t, 10, mac(4), 1, T0 + 4), VSW_MAC_LEARNED);
	assert_int_equal(vsw_mac_port_count(t, 1), 3);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(2), T0 + 4), VSW_MAC_NO_PORT);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 + 4), 1);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(3), T0 + 4), 1);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(4), T0 + 4), 1);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(9), T0 + 4), 2);
	assert_int_equal(stats_of(t).evicted_limit, 1);
	assert_int_equal(stats_of(t).evicted_full, 0);
	vsw_mac_table_destroy(t);
}

static void test_port_limit_set_per_port_and_lowered(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);
	uint32_t i;

	for (i = 0; i < 10; i++) {
		vsw_mac_learn(t, 10, mac(i), 1, T0 + i);
	}
	assert_int_equal(vsw_mac_set_port_limit(t, 1, 4), 0);
	assert_int_equal(vsw_mac_port_count(t, 1), 4);
	for (i = 0; i < 10; i++) {
		assert_int_equal(vsw_mac_lookup(t, 10, mac(i), T0 + 10),
				 i < 6 ? VSW_MAC_NO_PORT : 1);
	}
	assert_int_equal(stats_of(t).evicted_limit, 6);
	/* Other ports keep the table default: the capacity. */
	for (i = 100; i < 150; i++) {
		vsw_mac_learn(t, 10, mac(i), 2, T0 + 20);
	}
	assert_int_equal(vsw_mac_port_count(t, 2), 50);
	/* 0 is "no limit of its own"; out-of-range ports are refused. */
	assert_int_equal(vsw_mac_set_port_limit(t, 1, 0), 0);
	assert_int_equal(vsw_mac_set_port_limit(t, 4, 1), -EINVAL);
	vsw_mac_table_destroy(t);
}

static void test_full_table_evicts_from_biggest_learner(void **state)
{
	struct vsw_mac_table *t = table_make(8, 4, 0);
	uint32_t i;

	vsw_mac_learn(t, 10, mac(100), 0, T0);
	vsw_mac_learn(t, 10, mac(101), 0, T0 + 1);
	for (i = 0; i < 6; i++) {
		vsw_mac_learn(t, 10, mac(i), 1, T0 + 2 + i);
	}
	assert_int_equal(stats_of(t).entries, 8);
	/* Port 0 learns one more: port 1 (6 entries) pays with its oldest. */
	assert_int_equal(vsw_mac_learn(t, 10, mac(102), 0, T0 + 10), VSW_MAC_LEARNED);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(0), T0 + 10), VSW_MAC_NO_PORT);
	assert_int_equal(vsw_mac_port_count(t, 0), 3);
	assert_int_equal(vsw_mac_port_count(t, 1), 5);
	assert_int_equal(stats_of(t).evicted_full, 1);
	/* Port 2 arrives: it takes from port 1 until the two balance. */
	vsw_mac_learn(t, 10, mac(200), 2, T0 + 11);
	vsw_mac_learn(t, 10, mac(201), 2, T0 + 12);
	assert_int_equal(vsw_mac_port_count(t, 1), 3);
	assert_int_equal(vsw_mac_port_count(t, 0), 3);
	assert_int_equal(vsw_mac_port_count(t, 2), 2);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(100), T0 + 12), 0);
	vsw_mac_table_destroy(t);
}

static void test_flooding_port_cannot_push_out_others(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);
	uint32_t i;

	for (i = 0; i < 10; i++) {
		vsw_mac_learn(t, 10, mac(i), 0, T0);
		vsw_mac_learn(t, 20, mac(i), 2, T0);
	}
	for (i = 1000; i < 11000; i++) {
		assert_int_equal(vsw_mac_learn(t, 10, mac(i), 1, T0 + i), VSW_MAC_LEARNED);
	}
	for (i = 0; i < 10; i++) {
		assert_int_equal(vsw_mac_lookup(t, 10, mac(i), T0 + 11000), 0);
		assert_int_equal(vsw_mac_lookup(t, 20, mac(i), T0 + 11000), 2);
	}
	assert_int_equal(vsw_mac_port_count(t, 1), 44);
	/* And the flooder keeps its newest. */
	assert_int_equal(vsw_mac_lookup(t, 10, mac(10999), T0 + 11000), 1);
	vsw_mac_table_destroy(t);
}

/* Each port's share tells who lost what: the flooder's counters account for
 * every entry it learned, the others show no loss. */
static void test_port_stats_show_what_the_flooder_lost(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);
	struct vsw_mac_port_stats ps;
	uint32_t i;

	for (i = 0; i < 10; i++) {
		vsw_mac_learn(t, 10, mac(i), 0, T0);
	}
	for (i = 1000; i < 2000; i++) {
		vsw_mac_learn(t, 10, mac(i), 1, T0 + i);
	}
	assert_int_equal(vsw_mac_get_port_stats(t, 1, &ps), 0);
	assert_int_equal(ps.entries, 54);
	assert_int_equal(ps.limit, 64);
	assert_int_equal(ps.learned, 1000);
	assert_int_equal(ps.evicted_full, 1000 - 54);
	assert_int_equal(ps.evicted_limit, 0);
	assert_int_equal(vsw_mac_get_port_stats(t, 0, &ps), 0);
	assert_int_equal(ps.entries, 10);
	assert_int_equal(ps.learned, 10);
	assert_int_equal(ps.evicted_full + ps.evicted_limit, 0);

	/* Under a limit, the losses count as the port's limit evictions. */
	assert_int_equal(vsw_mac_set_port_limit(t, 1, 20), 0);
	for (i = 2000; i < 2100; i++) {
		vsw_mac_learn(t, 10, mac(i), 1, T0 + i);
	}
	assert_int_equal(vsw_mac_get_port_stats(t, 1, &ps), 0);
	assert_int_equal(ps.entries, 20);
	assert_int_equal(ps.limit, 20);
	assert_int_equal(ps.learned, 1100);
	assert_int_equal(ps.evicted_full, 1000 - 54);
	assert_int_equal(ps.evicted_limit, 54 - 20 + 100);
	assert_int_equal(ps.learned - ps.evicted_full - ps.evicted_limit, ps.entries);
	assert_int_equal(stats_of(t).evicted_limit, ps.evicted_limit);

	/* A station moving in counts as learned on its new port. */
	vsw_mac_learn(t, 10, mac(3), 2, T0 + 3000);
	assert_int_equal(vsw_mac_get_port_stats(t, 2, &ps), 0);
	assert_int_equal(ps.learned, 1);
	assert_int_equal(ps.entries, 1);

	vsw_mac_clear_port_stats(t, 1);
	assert_int_equal(vsw_mac_get_port_stats(t, 1, &ps), 0);
	assert_int_equal(ps.learned + ps.evicted_full + ps.evicted_limit, 0);
	assert_int_equal(ps.entries, 20);
	assert_int_equal(vsw_mac_get_port_stats(t, 4, &ps), -EINVAL);
	vsw_mac_table_destroy(t);
}

static void test_full_table_reclaims_expired_before_evicting(void **state)
{
	struct vsw_mac_table *t = table_make(4, 4, 0);

	vsw_mac_learn(t, 10, mac(1), 0, T0);                /* will expire */
	vsw_mac_learn(t, 10, mac(2), 1, T0 + AGING_MS / 2); /* biggest learner */
	vsw_mac_learn(t, 10, mac(3), 1, T0 + AGING_MS / 2);
	vsw_mac_learn(t, 10, mac(4), 1, T0 + AGING_MS / 2);
	assert_int_equal(vsw_mac_learn(t, 10, mac(5), 2, T0 + AGING_MS), VSW_MAC_LEARNED);
	assert_int_equal(stats_of(t).evicted_full, 0);
	assert_int_equal(stats_of(t).expired, 1);
	assert_int_equal(vsw_mac_port_count(t, 1), 3);
	vsw_mac_table_destroy(t);
}

static void test_station_moves_and_is_counted(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);

	vsw_mac_learn(t, 10, mac(1), 1, T0);
	assert_int_equal(vsw_mac_learn(t, 10, mac(1), 2, T0 + 1), VSW_MAC_MOVED);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 + 1), 2);
	assert_int_equal(vsw_mac_port_count(t, 1), 0);
	assert_int_equal(vsw_mac_port_count(t, 2), 1);
	assert_int_equal(stats_of(t).moved, 1);
	assert_int_equal(stats_of(t).entries, 1);
	/* Moving resets its age too. */
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 + 1 + AGING_MS - 1), 2);
	assert_int_equal(vsw_mac_learn(t, 10, mac(1), 1, T0 + 2), VSW_MAC_MOVED);
	assert_int_equal(stats_of(t).moved, 2);
	vsw_mac_table_destroy(t);
}

static void test_move_into_full_port_evicts_its_oldest_not_the_mover(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 2);

	vsw_mac_learn(t, 10, mac(1), 1, T0);
	vsw_mac_learn(t, 10, mac(2), 2, T0 + 1);
	vsw_mac_learn(t, 10, mac(3), 2, T0 + 2);
	assert_int_equal(vsw_mac_learn(t, 10, mac(1), 2, T0 + 3), VSW_MAC_MOVED);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 + 3), 2);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(2), T0 + 3), VSW_MAC_NO_PORT);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(3), T0 + 3), 2);
	assert_int_equal(vsw_mac_port_count(t, 2), 2);
	vsw_mac_table_destroy(t);
}

static void test_static_entry_never_ages_or_moves(void **state)
{
	struct vsw_mac_table *t = table_make(64, 8, 0);

	assert_int_equal(vsw_mac_add_static(t, 10, mac(1), 3), 0);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0), 3);
	assert_int_equal(vsw_mac_learn(t, 10, mac(1), 4, T0), VSW_MAC_STATIC_CONFLICT);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0), 3);
	assert_int_equal(vsw_mac_learn(t, 10, mac(1), 3, T0), VSW_MAC_STATIC);
	assert_int_equal(vsw_mac_age(t, UINT64_MAX), 0);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), UINT64_MAX), 3);
	assert_int_equal(stats_of(t).static_conflicts, 1);
	assert_int_equal(stats_of(t).static_entries, 1);
	assert_int_equal(stats_of(t).moved, 0);
	/* Statics are not learned entries: no port count, no port limit. */
	assert_int_equal(vsw_mac_port_count(t, 3), 0);
	vsw_mac_table_destroy(t);
}

static void test_static_replaces_learned_and_back(void **state)
{
	struct vsw_mac_table *t = table_make(64, 8, 0);

	vsw_mac_learn(t, 10, mac(1), 1, T0);
	assert_int_equal(vsw_mac_add_static(t, 10, mac(1), 2), 0);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0), 2);
	assert_int_equal(vsw_mac_port_count(t, 1), 0);
	assert_int_equal(stats_of(t).entries, 1);
	/* Re-adding moves the static entry: the administrator may. */
	assert_int_equal(vsw_mac_add_static(t, 10, mac(1), 5), 0);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0), 5);
	assert_int_equal(stats_of(t).static_entries, 1);
	/* Deleted, the station is learned like any other again. */
	assert_int_equal(vsw_mac_del(t, 10, mac(1)), 0);
	assert_int_equal(stats_of(t).static_entries, 0);
	assert_int_equal(vsw_mac_learn(t, 10, mac(1), 1, T0), VSW_MAC_LEARNED);
	vsw_mac_table_destroy(t);
}

static void test_static_rejects_bad_arguments(void **state)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
	static const uint8_t zero[6];
	struct vsw_mac_table *t = table_make(64, 8, 0);

	assert_int_equal(vsw_mac_add_static(t, 0, mac(1), 1), -EINVAL);
	assert_int_equal(vsw_mac_add_static(t, 4095, mac(1), 1), -EINVAL);
	assert_int_equal(vsw_mac_add_static(t, 10, bcast, 1), -EINVAL);
	assert_int_equal(vsw_mac_add_static(t, 10, mcast, 1), -EINVAL);
	assert_int_equal(vsw_mac_add_static(t, 10, zero, 1), -EINVAL);
	assert_int_equal(vsw_mac_add_static(t, 10, NULL, 1), -EINVAL);
	assert_int_equal(vsw_mac_add_static(t, 10, mac(1), 8), -EINVAL);
	assert_int_equal(stats_of(t).entries, 0);
	assert_int_equal(vsw_mac_add_static(t, 4094, mac(1), 7), 0);
	vsw_mac_table_destroy(t);
}

static void test_statics_are_never_evicted(void **state)
{
	struct vsw_mac_table *t = table_make(4, 4, 0);

	assert_int_equal(vsw_mac_add_static(t, 10, mac(1), 0), 0);
	assert_int_equal(vsw_mac_add_static(t, 10, mac(2), 0), 0);
	assert_int_equal(vsw_mac_add_static(t, 10, mac(3), 0), 0);
	assert_int_equal(vsw_mac_learn(t, 10, mac(10), 1, T0), VSW_MAC_LEARNED);
	/* Full: the one learned entry is the only one that can go. */
	assert_int_equal(vsw_mac_learn(t, 10, mac(11), 2, T0 + 1), VSW_MAC_LEARNED);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(10), T0 + 1), VSW_MAC_NO_PORT);
	/* A static entry evicts the learned one too... */
	assert_int_equal(vsw_mac_add_static(t, 10, mac(4), 0), 0);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(11), T0 + 1), VSW_MAC_NO_PORT);
	/* ...and then nothing is left to evict. */
	assert_int_equal(vsw_mac_learn(t, 10, mac(12), 1, T0 + 2), VSW_MAC_NO_SPACE);
	assert_int_equal(vsw_mac_add_static(t, 10, mac(5), 0), -ENOSPC);
	assert_int_equal(stats_of(t).no_space, 1);
	assert_int_equal(stats_of(t).entries, 4);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(1), T0 + 2), 0);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(4), T0 + 2), 0);
	vsw_mac_table_destroy(t);
}

static void test_del_reports_missing(void **state)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);

	assert_int_equal(vsw_mac_del(t, 10, mac(1)), -ENOENT);
	vsw_mac_learn(t, 10, mac(1), 1, T0);
	assert_int_equal(vsw_mac_del(t, 20, mac(1)), -ENOENT);
	assert_int_equal(vsw_mac_del(t, 0, mac(1)), -ENOENT);
	assert_int_equal(vsw_mac_del(t, 10, NULL), -ENOENT);
	assert_int_equal(vsw_mac_del(t, 10, mac(1)), 0);
	assert_int_equal(vsw_mac_del(t, 10, mac(1)), -ENOENT);
	assert_int_equal(vsw_mac_port_count(t, 1), 0);
	assert_int_equal(stats_of(t).entries, 0);
	vsw_mac_table_destroy(t);
}

/* Ports 0-2 in VLANs 10 and 20, one learned station each, plus one static
 * per port in VLAN 10: 9 entries. */
static struct vsw_mac_table *flush_fixture(void)
{
	struct vsw_mac_table *t = table_make(64, 4, 0);
	uint16_t p;

	for (p = 0; p < 3; p++) {
		vsw_mac_learn(t, 10, mac(p), p, T0);
		vsw_mac_learn(t, 20, mac(p), p, T0);
		assert_int_equal(vsw_mac_add_static(t, 10, mac(100 + p), p), 0);
	}
	assert_int_equal(stats_of(t).entries, 9);
	return t;
}

static void test_flush_by_port_vlan_and_all(void **state)
{
	struct vsw_mac_table *t = flush_fixture();

	assert_int_equal(vsw_mac_flush(t, 1, 0, false), 2);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(101), T0), 1);
	assert_int_equal(vsw_mac_flush(t, 1, 0, true), 1);
	assert_int_equal(vsw_mac_flush(t, VSW_MAC_NO_PORT, 20, false), 2);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(0), T0), 0);
	assert_int_equal(vsw_mac_flush(t, 0, 10, true), 2);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(2), T0), 2);
	assert_int_equal(vsw_mac_flush(t, VSW_MAC_NO_PORT, 0, false), 1);
	assert_int_equal(stats_of(t).entries, 1);
	assert_int_equal(vsw_mac_flush(t, VSW_MAC_NO_PORT, 0, true), 1);
	assert_int_equal(stats_of(t).entries, 0);
	assert_int_equal(stats_of(t).static_entries, 0);
	vsw_mac_table_destroy(t);
}

static bool vid_is_10(uint16_t vid, void *arg)
{
	(void)arg;
	return vid == 10;
}

static void test_flush_vids_takes_statics_of_that_port(void **state)
{
	struct vsw_mac_table *t = flush_fixture();

	assert_int_equal(vsw_mac_flush_vids(t, 2, vid_is_10, NULL), 2);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(102), T0), VSW_MAC_NO_PORT);
	assert_int_equal(vsw_mac_lookup(t, 20, mac(2), T0), 2);
	assert_int_equal(vsw_mac_lookup(t, 10, mac(101), T0), 1);
	assert_int_equal(stats_of(t).entries, 7);
	vsw_mac_table_destroy(t);
}

struct collect {
	unsigned int n;
	unsigned int n_static;
	unsigned int stop_after;
};

static int collect_one(const struct vsw_mac_info *info, void *arg)
{
	struct collect *c = arg;

	c->n++;
	c->n_static += info->is_static;
	if (!info->is_static) {
		assert_int_equal(info->port, info->mac[5] % 3);
		assert_int_equal(info->seen_ms, T0);
	}
	return c->n == c->stop_after ? 42 : 0;
}

static void test_foreach_lists_live_entries_and_stops(void **state)
{
	struct vsw_mac_table *t = flush_fixture();
	struct collect c = {0};

	assert_int_equal(vsw_mac_foreach(t, T0, collect_one, &c), 0);
	assert_int_equal(c.n, 9);
	assert_int_equal(c.n_static, 3);
	memset(&c, 0, sizeof(c));
	assert_int_equal(vsw_mac_foreach(t, T0 + AGING_MS, collect_one, &c), 0);
	assert_int_equal(c.n, 3); /* the learned ones have expired */
	memset(&c, 0, sizeof(c));
	c.stop_after = 4;
	assert_int_equal(vsw_mac_foreach(t, T0, collect_one, &c), 42);
	assert_int_equal(c.n, 4);
	vsw_mac_table_destroy(t);
}

static int create_attempt(void *arg)
{
	struct vsw_mac_table_opts opts = {.capacity = 100, .aging_ms = 1, .n_ports = 4, .seed = 1};

	return vsw_mac_table_create(&opts, arg);
}

static void test_create_out_of_memory_leaks_nothing(void **state)
{
	struct vsw_mac_table *t = NULL;

	assert_int_equal(alloc_fail_walk(create_attempt, &t), 5);
	assert_non_null(t);
	vsw_mac_table_destroy(t);
}

/* --- Randomised: the invariants after every operation --- */

#define R_PORTS 6
#define R_CAPACITY 48
#define R_STATIONS 200

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t bound)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % bound);
}

static void check_totals(const struct vsw_mac_table *t, const uint32_t *limits)
{
	struct vsw_mac_stats s = stats_of(t);
	uint32_t sum = 0;
	uint16_t p;

	for (p = 0; p < R_PORTS; p++) {
		assert_true(vsw_mac_port_count(t, p) <= limits[p]);
		sum += vsw_mac_port_count(t, p);
	}
	assert_int_equal(sum + s.static_entries, s.entries);
	assert_true(s.entries <= R_CAPACITY);
}

/* Learns, and checks that an eviction for a full table came from a port
 * that had the most learned entries just before. */
static void random_learn(struct vsw_mac_table *t, uint64_t now)
{
	uint32_t before[R_PORTS], most = 0, station = rnd(R_STATIONS);
	uint16_t port = (uint16_t)rnd(R_PORTS), vid = (uint16_t)(10 + rnd(3)), p;
	uint64_t full_before = stats_of(t).evicted_full;
	enum vsw_mac_learn r;

	for (p = 0; p < R_PORTS; p++) {
		before[p] = vsw_mac_port_count(t, p);
		most = before[p] > most ? before[p] : most;
	}
	r = vsw_mac_learn(t, vid, mac(station), port, now);
	if (r == VSW_MAC_NO_SPACE || r == VSW_MAC_STATIC_CONFLICT) {
		return;
	}
	assert_int_equal(vsw_mac_lookup(t, vid, mac(station), now), port);
	if (stats_of(t).evicted_full == full_before) {
		return;
	}
	for (p = 0; p < R_PORTS; p++) {
		if (p != port && vsw_mac_port_count(t, p) < before[p]) {
			assert_int_equal(before[p], most);
		}
	}
}

static void test_random_operations_keep_invariants(void **state)
{
	struct vsw_mac_table *t = table_make(R_CAPACITY, R_PORTS, 0);
	uint32_t limits[R_PORTS], i, op;
	uint64_t now = T0;
	uint16_t p;

	for (p = 0; p < R_PORTS; p++) {
		limits[p] = p < 2 ? 5 : R_CAPACITY;
		assert_int_equal(vsw_mac_set_port_limit(t, p, p < 2 ? 5 : 0), 0);
	}
	for (i = 0; i < 200000; i++) {
		op = rnd(1000);
		now += rnd(4000);
		if (op < 900) {
			random_learn(t, now);
		} else if (op < 920) {
			vsw_mac_add_static(t, (uint16_t)(10 + rnd(3)), mac(rnd(R_STATIONS)),
					   (uint16_t)rnd(R_PORTS));
		} else if (op < 960) {
			vsw_mac_del(t, (uint16_t)(10 + rnd(3)), mac(rnd(R_STATIONS)));
		} else if (op < 980) {
			vsw_mac_age(t, now);
		} else if (op < 985) {
			vsw_mac_flush(t, (uint16_t)rnd(R_PORTS), 0, rnd(2));
		} else {
			now += AGING_MS / 4;
		}
		check_totals(t, limits);
	}
	vsw_mac_table_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_rejects_bad_options),
		cmocka_unit_test(test_learns_keyed_by_vlan_and_mac),
		cmocka_unit_test(test_entry_expires_at_exactly_300_s),
		cmocka_unit_test(test_refresh_restarts_the_aging_clock),
		cmocka_unit_test(test_aging_walks_every_port),
		cmocka_unit_test(test_expired_station_relearns_as_new_not_moved),
		cmocka_unit_test(test_time_going_backwards_does_not_expire),
		cmocka_unit_test(test_port_limit_evicts_that_ports_least_recent),
		cmocka_unit_test(test_port_limit_set_per_port_and_lowered),
		cmocka_unit_test(test_full_table_evicts_from_biggest_learner),
		cmocka_unit_test(test_flooding_port_cannot_push_out_others),
		cmocka_unit_test(test_port_stats_show_what_the_flooder_lost),
		cmocka_unit_test(test_full_table_reclaims_expired_before_evicting),
		cmocka_unit_test(test_station_moves_and_is_counted),
		cmocka_unit_test(test_move_into_full_port_evicts_its_oldest_not_the_mover),
		cmocka_unit_test(test_static_entry_never_ages_or_moves),
		cmocka_unit_test(test_static_replaces_learned_and_back),
		cmocka_unit_test(test_static_rejects_bad_arguments),
		cmocka_unit_test(test_statics_are_never_evicted),
		cmocka_unit_test(test_del_reports_missing),
		cmocka_unit_test(test_flush_by_port_vlan_and_all),
		cmocka_unit_test(test_flush_vids_takes_statics_of_that_port),
		cmocka_unit_test(test_foreach_lists_live_entries_and_stops),
		cmocka_unit_test(test_create_out_of_memory_leaks_nothing),
		cmocka_unit_test(test_random_operations_keep_invariants),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
