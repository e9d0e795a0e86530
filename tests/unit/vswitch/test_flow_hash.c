/* SPDX-License-Identifier: MIT */
/* test_flow_hash.c: the flow hash and queue choice of vswitch/flow-hash.c.
 * A flow keeps one queue (whatever its payload, priority or fragment),
 * every field of the flow counts, many flows spread evenly over 2, 4 and 8
 * queues, no read goes past the frame (every prefix of a frame is hashed
 * from a buffer of exactly its size, for ASan to watch), and a queue the
 * guest has not enabled is always moved onto one it has. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flow-hash.h"

#define FRAME_MAX 128

/* What a test frame carries.  vid 0: untagged. */
struct flow {
	uint8_t dst[6], src[6];
	uint16_t vid;
	uint8_t pcp;
	int ipv6;           /* else IPv4 */
	uint32_t saddr, daddr; /* IPv6: the last 4 bytes of each address */
	uint8_t proto;
	uint16_t sport, dport;
	uint16_t frag;      /* IPv4 flags and offset field, host order */
	uint8_t payload;    /* seeds the bytes after the headers */
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* Writes the frame for 'f' at 'out' (FRAME_MAX bytes); returns its length.
 * Written byte by byte from the header layouts, not with the code under
 * test. */
static size_t build(const struct flow *f, uint8_t *out)
{
	size_t off = 12;

	memset(out, 0, FRAME_MAX);
	memcpy(out, f->dst, 6);
	memcpy(out + 6, f->src, 6);
	if (f->vid) {
		put16(out + off, 0x8100);
		put16(out + off + 2, (uint16_t)(f->pcp << 13 | f->vid));
		off += 4;
	}
	if (f->ipv6) {
		put16(out + off, 0x86dd);
		off += 2;
		out[off] = 0x60;
		put16(out + off + 4, 16);
		out[off + 6] = f->proto;
		out[off + 7] = 64;
		out[off + 8] = 0xfd;
		put32(out + off + 20, f->saddr);
		out[off + 24] = 0xfd;
		put32(out + off + 36, f->daddr);
		off += 40;
	} else {
		put16(out + off, 0x0800);
		off += 2;
		out[off] = 0x45;
		put16(out + off + 2, 36);
		put16(out + off + 6, f->frag);
		out[off + 8] = 64;
		out[off + 9] = f->proto;
		put32(out + off + 12, f->saddr);
		put32(out + off + 16, f->daddr);
		off += 20;
	}
	/* A fragment after the first carries payload where the ports were. */
	if ((f->frag & 0x1fff) == 0) {
		put16(out + off, f->sport);
		put16(out + off + 2, f->dport);
	} else {
		put32(out + off, 0xdeadbeef ^ f->payload);
	}
	off += 4;
	for (int i = 0; i < 12; i++) {
		out[off++] = (uint8_t)(f->payload + 31 * i);
	}
	return off;
}

static uint32_t hash_of(const struct flow *f)
{
	uint8_t buf[FRAME_MAX];
	size_t n = build(f, buf);

	return vsw_flow_hash(buf, n);
}

static struct flow udp_flow(void)
{
	struct flow f = {
		.dst = {0x02, 0, 0, 0, 0, 0x01},
		.src = {0x02, 0, 0, 0, 0, 0x02},
		.vid = 10,
		.saddr = 0xc0a80001,
		.daddr = 0xc0a80002,
		.proto = 17,
		.sport = 1024,
		.dport = 4789,
	};

	return f;
}

static void test_one_flow_one_hash(void **state)
{
	struct flow a = udp_flow(), b = a;

	b.payload = 99;
	assert_int_equal(hash_of(&a), hash_of(&b));
	b.pcp = 5; /* a priority change must not move (and reorder) the flow */
	assert_int_equal(hash_of(&a), hash_of(&b));
	a.ipv6 = b.ipv6 = 1;
	assert_int_equal(hash_of(&a), hash_of(&b));
}

static void test_every_field_counts(void **state)
{
	const struct flow base = udp_flow();
	uint32_t h0 = hash_of(&base);
	struct flow f;

	f = base, f.dst[5] ^= 1;
	assert_int_not_equal(hash_of(&f), h0);
	f = base, f.src[0] ^= 0x10;
	assert_int_not_equal(hash_of(&f), h0);
	f = base, f.vid = 11;
	assert_int_not_equal(hash_of(&f), h0);
	f = base, f.vid = 0;
	assert_int_not_equal(hash_of(&f), h0);
	f = base, f.saddr++;
	assert_int_not_equal(hash_of(&f), h0);
	f = base, f.daddr++;
	assert_int_not_equal(hash_of(&f), h0);
	f = base, f.proto = 6;
	assert_int_not_equal(hash_of(&f), h0);
	f = base, f.sport++;
	assert_int_not_equal(hash_of(&f), h0);
	f = base, f.dport++;
	assert_int_not_equal(hash_of(&f), h0);
	f = base, f.ipv6 = 1;
	assert_int_not_equal(hash_of(&f), h0);
	/* IPv6 reads its own addresses and ports. */
	f = base, f.ipv6 = 1;
	h0 = hash_of(&f);
	f.saddr++;
	assert_int_not_equal(hash_of(&f), h0);
	f.saddr--, f.sport++;
	assert_int_not_equal(hash_of(&f), h0);
	/* A protocol without ports: they are not read. */
	f = base, f.proto = 47;
	h0 = hash_of(&f);
	f.sport++;
	assert_int_equal(hash_of(&f), h0);
}

static void test_fragments_follow_the_first(void **state)
{
	struct flow first = udp_flow(), later = udp_flow(), whole = udp_flow();

	first.frag = 0x2000;  /* more fragments, offset 0: has the ports */
	later.frag = 0x0003;  /* the last one, at offset 24 bytes */
	later.payload = 7;
	assert_int_equal(hash_of(&first), hash_of(&later));
	/* Different datagrams of other ports still share it: they cannot be
	 * told apart from their later fragments. */
	whole.sport = 9;
	whole.frag = 0x2000;
	assert_int_equal(hash_of(&whole), hash_of(&first));
}

/* 'n' flows made by 'vary' spread over 'queues' within 'slack' of even. */
static void check_spread(void (*vary)(struct flow *, unsigned int), unsigned int n,
			 uint16_t queues, double slack)
{
	unsigned int count[8] = {0};

	for (unsigned int i = 0; i < n; i++) {
		struct flow f = udp_flow();
		uint16_t q;

		vary(&f, i);
		q = vsw_flow_queue(hash_of(&f), queues);
		assert_true(q < queues);
		count[q]++;
	}
	for (uint16_t q = 0; q < queues; q++) {
		double share = (double)count[q] / n;

		if (share < (1.0 - slack) / queues || share > (1.0 + slack) / queues) {
			fail_msg("%u flows over %u queues: queue %u has %u", n, queues, q, count[q]);
		}
	}
}

static void vary_sport(struct flow *f, unsigned int i)
{
	f->sport = (uint16_t)(1024 + i);
}

/* What testpmd's txonly mode does with --txonly-multi-flow. */
static void vary_saddr(struct flow *f, unsigned int i)
{
	f->saddr += i;
}

static void vary_mac_non_ip(struct flow *f, unsigned int i)
{
	f->src[4] = (uint8_t)(i >> 8);
	f->src[5] = (uint8_t)i;
	f->proto = 47;
}

static void vary_vid(struct flow *f, unsigned int i)
{
	f->vid = (uint16_t)(1 + i % 4094);
}

static void vary_v6_dport(struct flow *f, unsigned int i)
{
	f->ipv6 = 1;
	f->dport = (uint16_t)i;
}

static void test_many_flows_spread(void **state)
{
	static const uint16_t queues[] = {2, 4, 8};

	for (unsigned int i = 0; i < 3; i++) {
		check_spread(vary_sport, 4096, queues[i], 0.15);
		check_spread(vary_saddr, 4096, queues[i], 0.15);
		check_spread(vary_mac_non_ip, 4096, queues[i], 0.15);
		check_spread(vary_vid, 4094, queues[i], 0.15);
		check_spread(vary_v6_dport, 4096, queues[i], 0.15);
	}
	/* Even the 64 flows of one burst use both of two queues. */
	check_spread(vary_saddr, 64, 2, 0.5);
}

static void test_never_reads_past_the_frame(void **state)
{
	struct flow flows[3] = {udp_flow(), udp_flow(), udp_flow()};
	uint8_t full[FRAME_MAX];

	flows[1].ipv6 = 1;
	flows[2].vid = 0;
	for (unsigned int k = 0; k < 3; k++) {
		size_t n = build(&flows[k], full);

		for (size_t len = 0; len <= n; len++) {
			/* Exactly 'len' bytes on the heap: ASan reports a read
			 * one past them. */
			uint8_t *p = malloc(len ? len : 1);

			assert_non_null(p);
			memcpy(p, full, len);
			(void)vsw_flow_hash(p, len);
			free(p);
		}
	}
	/* Three tags and a truncated fourth. */
	uint8_t tags[26] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2,
			    0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x81, 0x00, 0, 7, 0x81, 0x00};

	for (size_t len = 0; len <= sizeof(tags); len++) {
		uint8_t *p = malloc(len ? len : 1);

		assert_non_null(p);
		memcpy(p, tags, len);
		(void)vsw_flow_hash(p, len);
		free(p);
	}
}

static void test_queue_range(void **state)
{
	for (uint16_t n = 1; n <= 8; n++) {
		assert_int_equal(vsw_flow_queue(0, n), 0);
		assert_int_equal(vsw_flow_queue(UINT32_MAX, n), n - 1);
	}
}

static void test_remap_onto_enabled_queues(void **state)
{
	/* Every enabled queue stays; every other goes to an enabled one. */
	for (uint32_t mask = 1; mask < 256; mask++) {
		for (uint16_t q = 0; q < 40; q++) {
			uint16_t r = vsw_queue_remap(mask, q);

			assert_true(r < 8);
			assert_true((mask >> r) & 1u);
			if (q < 32 && ((mask >> q) & 1u)) {
				assert_int_equal(r, q);
			}
		}
	}
	/* A guest that enabled one pair of two takes everything on it. */
	assert_int_equal(vsw_queue_remap(0x1, 1), 0);
	/* Queues 1 and 3 enabled: 0 and 2 share them out, one each. */
	assert_int_equal(vsw_queue_remap(0xa, 0), 1);
	assert_int_equal(vsw_queue_remap(0xa, 2), 1);
	assert_int_equal(vsw_queue_remap(0xa, 1), 1);
	assert_int_equal(vsw_queue_remap(0xa, 3), 3);
	assert_int_equal(vsw_queue_remap(0x5, 1), 2);
	assert_int_equal(vsw_queue_remap(0x5, 3), 2);
	/* Nothing enabled yet: the queue asked for (its send fails as before). */
	assert_int_equal(vsw_queue_remap(0, 3), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_flow_one_hash),
		cmocka_unit_test(test_every_field_counts),
		cmocka_unit_test(test_fragments_follow_the_first),
		cmocka_unit_test(test_many_flows_spread),
		cmocka_unit_test(test_never_reads_past_the_frame),
		cmocka_unit_test(test_queue_range),
		cmocka_unit_test(test_remap_onto_enabled_queues),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
