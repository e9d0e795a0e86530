/* SPDX-License-Identifier: MIT */
/* gen_frame_seeds.c: writes the seed corpus of the frame fuzz target
 * (tests/fuzz/frames-corpus/) in the input encoding of fuzz_frames.h: a
 * handful of scenes a switch meets, each a starting point the fuzzer
 * mutates from.  Rerun after an encoding change:
 *     fuzz_gen_frame_seeds tests/fuzz/frames-corpus */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_frames.h"
#include "vlan.h"

/* Indexes into FF_VIDS: 1, 10, 20, 30, 4094, 10, 0, 4095. */
enum { V1, V10, V20, V30, V4094, V10B, V0, V4095 };
#define VM(i) (1u << (i)) /* a VID in a trunk or cvlans mask */
/* Tag TPID indexes. */
enum { Q, AD, T9100 };
/* MAC indexes (fuzz_frames.c): stations 0-7, then these. */
enum { BCAST = FF_MAC_BROADCAST, MCAST, RESERVED, ZERO };
#define IPV4 0x08, 0x00

struct seed {
	uint8_t b[1 << 16];
	size_t n;
};

static void put(struct seed *s, const uint8_t *p, size_t n)
{
	if (s->n + n > sizeof(s->b)) {
		fprintf(stderr, "fuzz_gen_frame_seeds: seed too big\n");
		exit(1);
	}
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

#define PUT(s, ...) put(s, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))

static void bridge(struct seed *s, unsigned n_ports, unsigned passes, uint8_t sizes)
{
	s->n = 0;
	PUT(s, FF_BRIDGE(n_ports, passes), sizes);
}

/* mode (with FF_CFG_* flags), tag index, trunk mask, cvlans mask, TPID
 * index, MAC limit index. */
static void cfg(struct seed *s, uint8_t mode, uint8_t tag, uint8_t trunks, uint8_t cvlans,
		uint8_t tpid, uint8_t limit)
{
	PUT(s, mode, tag, trunks, cvlans, tpid, limit);
}

static void burst(struct seed *s, uint8_t in_port, unsigned count, uint8_t io)
{
	PUT(s, FF_OP_BURST, in_port, (uint8_t)(count - 1), io);
}

static void length(struct seed *s, unsigned len)
{
	if (len < 0xe0) {
		PUT(s, (uint8_t)len, 0);
		return;
	}
	for (unsigned v = 0; v <= 0x1fff; v++) {
		if (v * FF_LEN_MAX / 0x1fff >= len) {
			PUT(s, (uint8_t)(0xe0 | v >> 8), (uint8_t)v);
			return;
		}
	}
}

/* A frame with 'n_tags' tags from 'tags' (TPID index, PCP, VID index
 * triples), a type, a length and no overwrites; seg as given. */
static void frame(struct seed *s, uint8_t dst, uint8_t src, unsigned n_tags,
		  const uint8_t *tags, uint8_t type_hi, uint8_t type_lo, unsigned len, uint8_t seg)
{
	PUT(s, dst, src, (uint8_t)n_tags);
	for (unsigned i = 0; i < n_tags; i++) {
		PUT(s, FF_TAG(tags[3 * i], tags[3 * i + 1]), tags[3 * i + 2]);
	}
	PUT(s, type_hi, type_lo);
	length(s, len);
	PUT(s, 0, seg);
}

static void plain(struct seed *s, uint8_t dst, uint8_t src, unsigned len)
{
	frame(s, dst, src, 0, NULL, IPV4, len, 0);
}

static void tagged(struct seed *s, uint8_t dst, uint8_t src, uint8_t tpid, uint8_t vid,
		   unsigned len)
{
	frame(s, dst, src, 1, (const uint8_t[]){tpid, 0, vid}, IPV4, len, 0);
}

static void repeat(struct seed *s, unsigned len)
{
	PUT(s, FF_FRAME_REPEAT);
	length(s, len);
	PUT(s, 0, 0);
}

static void write_seed(const char *dir, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f) != 0) {
		fprintf(stderr, "fuzz_gen_frame_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* Three access ports in VLAN 10, one in 20, a trunk: learning, unicast,
 * broadcast, unknown unicast, bad sources, reserved groups. */
static void seed_access(struct seed *s)
{
	bridge(s, 5, 1, FF_SIZES(0, 0, 0, 1));
	for (unsigned i = 0; i < 3; i++) {
		cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 0);
	}
	cfg(s, VLAN_MODE_ACCESS, V20, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_TRUNK, 0, VM(V10) | VM(V20), 0, 0, 0);
	burst(s, 0, 4, FF_IO(3, 3, 0));
	plain(s, BCAST, 0, 60);
	plain(s, 1, 0, 64);
	plain(s, MCAST, 0, 100);
	plain(s, RESERVED, 0, 60);
	burst(s, 1, 3, FF_IO(3, 3, 0));
	plain(s, 0, 1, 1514);
	plain(s, 2, 1, 60);
	plain(s, 0, ZERO, 60);
	burst(s, 4, 3, FF_IO(3, 3, 0));
	tagged(s, 0, 5, Q, V10, 64);
	tagged(s, BCAST, 6, AD, V20, 64);
	tagged(s, 5, 7, Q, V30, 64);
	burst(s, 3, 2, FF_IO(3, 3, 0));
	plain(s, 6, 3, 60);
	tagged(s, 6, 3, Q, V20, 60);
}

/* Every mode: trunk, native-tagged, native-untagged, tunnels with 802.1ad,
 * 802.1Q and cvlans; frames with 0-3 tags of each TPID, priority tags,
 * VID 4095. */
static void seed_modes(struct seed *s)
{
	static const uint8_t qinq[] = {AD, 0, V10, Q, 3, V20};
	static const uint8_t prio_q[] = {Q, 5, V0, Q, 0, V20};
	static const uint8_t three[] = {AD, 0, V10, Q, 0, V0, Q, 0, V30};
	static const uint8_t odd[] = {T9100, 0, V20, Q, 0, V10};

	bridge(s, 7, 1, FF_SIZES(0, 0, 0, 0));
	cfg(s, VLAN_MODE_TRUNK, 0, VM(V10) | VM(V20) | VM(V30), 0, 0, 0);
	cfg(s, VLAN_MODE_NATIVE_TAGGED, V10, VM(V20), 0, 0, 0);
	cfg(s, VLAN_MODE_NATIVE_UNTAGGED, V30, VM(V10), 0, 0, 0);
	cfg(s, VLAN_MODE_DOT1Q_TUNNEL, V10, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_DOT1Q_TUNNEL, V10, 0, VM(V20) | VM(V30), 2, 0);
	cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_ACCESS, V30, 0, 0, 0, 0);
	burst(s, 0, 6, FF_IO(3, 3, 0));
	frame(s, BCAST, 0, 2, qinq, IPV4, 80, 0);
	frame(s, BCAST, 0, 3, three, IPV4, 90, 0);
	tagged(s, BCAST, 0, Q, V4095, 64);
	tagged(s, BCAST, 0, Q, V0, 64);
	frame(s, BCAST, 0, 2, odd, IPV4, 70, 0);
	tagged(s, 3, 0, AD, V30, 64);
	burst(s, 1, 4, FF_IO(3, 3, 0));
	plain(s, BCAST, 1, 60);
	tagged(s, BCAST, 1, Q, V0, 60);
	frame(s, BCAST, 1, 2, prio_q, IPV4, 60, 0);
	tagged(s, 0, 1, Q, V20, 60);
	burst(s, 2, 3, FF_IO(3, 3, 0));
	plain(s, BCAST, 2, 60);
	tagged(s, BCAST, 2, Q, V10, 60);
	frame(s, BCAST, 2, 2, (const uint8_t[]){Q, 0, V10, Q, 0, V30}, IPV4, 60, 0);
	burst(s, 3, 3, FF_IO(3, 3, 0));
	plain(s, BCAST, 3, 60);
	tagged(s, BCAST, 3, Q, V20, 60);
	frame(s, BCAST, 3, 3, (const uint8_t[]){Q, 0, V0, Q, 0, V0, Q, 0, V0}, IPV4, 60, 0);
	burst(s, 4, 3, FF_IO(3, 3, 0));
	tagged(s, BCAST, 4, Q, V20, 60);
	tagged(s, BCAST, 4, Q, V1, 60);
	frame(s, 0, 4, 2, prio_q, IPV4, 60, 0);
}

/* The double-tagging attack: a native VLAN's tag in front of another's,
 * from a trunk and from native ports, towards access ports. */
static void seed_double_tag(struct seed *s)
{
	static const uint8_t attack[] = {Q, 0, V10, Q, 0, V20};
	static const uint8_t attack_prio[] = {Q, 0, V10, Q, 0, V0, Q, 0, V20};

	bridge(s, 5, 1, FF_SIZES(0, 0, 0, 0));
	cfg(s, VLAN_MODE_NATIVE_UNTAGGED, V10, VM(V20), 0, 0, 0);
	cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_ACCESS, V20, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_TRUNK, 0, VM(V10) | VM(V20), 0, 0, 0);
	cfg(s, VLAN_MODE_NATIVE_UNTAGGED, V20, VM(V10), 0, 0, 0);
	burst(s, 3, 4, FF_IO(3, 3, 0));
	frame(s, BCAST, 0, 2, attack, IPV4, 64, 0);
	frame(s, BCAST, 0, 3, attack_prio, IPV4, 64, 0);
	frame(s, 1, 0, 2, (const uint8_t[]){AD, 0, V10, AD, 0, V20}, IPV4, 64, 0);
	frame(s, BCAST, 0, 2, (const uint8_t[]){Q, 0, V20, Q, 0, V0}, IPV4, 64, 0);
	burst(s, 0, 3, FF_IO(3, 3, 0));
	frame(s, BCAST, 1, 2, attack, IPV4, 64, 0);
	frame(s, BCAST, 1, 1, (const uint8_t[]){Q, 0, V20}, IPV4, 64, 0);
	frame(s, BCAST, 1, 2, (const uint8_t[]){Q, 0, V0, Q, 0, V20}, IPV4, 64, 0);
}

/* Configuration under traffic: reconfigure, remove and re-add ports,
 * static entries, flushes, limits, aging; and options that must be
 * refused (a trunk with a tag, an access port with trunks, tags 0 and
 * 4095, TPID 0x9100). */
static void seed_config(struct seed *s)
{
	bridge(s, 4, 1, FF_SIZES(0, 1, 0, 2));
	cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 3);
	cfg(s, VLAN_MODE_TRUNK, 0, VM(V10) | VM(V20) | VM(V0) | VM(V4095), 0, 0, 0);
	cfg(s, VLAN_MODE_NATIVE_TAGGED, V20, VM(V10), 0, 0, 0);
	burst(s, 0, 2, FF_IO(3, 3, 0));
	plain(s, BCAST, 0, 60);
	plain(s, 1, 0, 60);
	PUT(s, FF_OP_FDB_ADD, 1, V10, 1);
	PUT(s, FF_OP_FDB_ADD, 2, V20, 2);
	PUT(s, FF_OP_FDB_ADD, 0, V20, 3);
	PUT(s, FF_OP_FDB_ADD, 0, V10, MCAST);
	burst(s, 0, 1, FF_IO(3, 3, 0));
	plain(s, 1, 0, 60);
	PUT(s, FF_OP_SET_VLAN, 1, VLAN_MODE_ACCESS, V20, 0, 0, 0, 0);
	burst(s, 0, 1, FF_IO(3, 3, 0));
	plain(s, 1, 0, 60);
	PUT(s, FF_OP_SET_VLAN, 2, VLAN_MODE_TRUNK | FF_CFG_TAG_ANY, V10, VM(V10), 0, 0, 0);
	PUT(s, FF_OP_SET_VLAN, 0, VLAN_MODE_ACCESS | FF_CFG_TRUNKS_ANY, V10, VM(V20), 0, 0, 0);
	PUT(s, FF_OP_SET_VLAN, 0, VLAN_MODE_ACCESS, V0, 0, 0, 0, 0);
	PUT(s, FF_OP_SET_VLAN, 0, VLAN_MODE_ACCESS, V4095, 0, 0, 0, 0);
	PUT(s, FF_OP_SET_VLAN, 3, VLAN_MODE_DOT1Q_TUNNEL, V20, 0, 0, 4, 0);
	PUT(s, FF_OP_SET_VLAN, 3, VLAN_MODE_ACCESS | FF_CFG_TPID_ANY, V20, 0, 0, 3, 0);
	PUT(s, FF_OP_SET_VLAN, 3, VLAN_MODE_DOT1Q_TUNNEL, V20, 0, VM(V10), 3, 0);
	PUT(s, FF_OP_REMOVE, 1);
	PUT(s, FF_OP_ADD, 0x80, VLAN_MODE_ACCESS, V10, 0, 0, 0, 0);
	PUT(s, FF_OP_ADD, 1, VLAN_MODE_ACCESS, V10, 0, 0, 0, 2);
	burst(s, 3, 2, FF_IO(3, 3, 0));
	plain(s, BCAST, 4, 60);
	tagged(s, BCAST, 4, Q, V10, 60);
	PUT(s, FF_OP_TICK, 3, FF_OP_AGE, FF_OP_TICK, 5, FF_OP_AGE);
	PUT(s, FF_OP_FLUSH, 0x80, 0x80, 0, FF_OP_FLUSH, 2, V10, 1);
	PUT(s, FF_OP_FDB_DEL, V10, 1, FF_OP_LIMIT, 0, 1, FF_OP_LIMIT, 9, 0);
	PUT(s, FF_OP_ADD, 2, VLAN_MODE_ACCESS, V1, 0, 0, 0, 0);
	PUT(s, FF_OP_ADD, 3, VLAN_MODE_ACCESS, V1, 0, 0, 0, 0);
	PUT(s, FF_OP_ADD, 4, VLAN_MODE_ACCESS, V1, 0, 0, 0, 0);
}

/* A table of 4 entries, one learned entry per port, aging in a second:
 * eviction, limits and reclaim under new sources. */
static void seed_small_table(struct seed *s)
{
	bridge(s, 3, 1, FF_SIZES(2, 1, 2, 0));
	cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 3);
	cfg(s, VLAN_MODE_TRUNK, 0, VM(V10) | VM(V20), 0, 0, 3);
	burst(s, 1, 6, FF_IO(3, 3, 0));
	for (uint8_t m = 0; m < 6; m++) {
		plain(s, 7, m, 60);
	}
	burst(s, 2, 4, FF_IO(3, 3, 0));
	tagged(s, 0, 6, Q, V10, 60);
	tagged(s, 0, 7, Q, V20, 60);
	tagged(s, 3, 6, Q, V10, 60);
	tagged(s, 3, 6, Q, V20, 60);
	PUT(s, FF_OP_FDB_ADD, 0, V10, 2, FF_OP_FDB_ADD, 0, V10, 3);
	PUT(s, FF_OP_FDB_ADD, 1, V10, 4, FF_OP_FDB_ADD, 1, V10, 5, FF_OP_FDB_ADD, 2, V20, 6);
	burst(s, 0, 2, FF_IO(3, 3, 0));
	plain(s, 4, 0, 60);
	plain(s, 5, 1, 60);
	PUT(s, FF_OP_TICK, 3, FF_OP_TICK, 1);
	burst(s, 0, 1, FF_IO(3, 3, 0));
	plain(s, 2, 7, 60);
	PUT(s, FF_OP_AGE);
}

/* Bursts of one flow (the repeat fast path), chained views, too little
 * room for outputs, and copies without head- or tailroom. */
static void seed_bursts(struct seed *s)
{
	bridge(s, 4, 1, FF_SIZES(0, 0, 0, 0));
	cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_TRUNK, 0, VM(V10), 0, 0, 0);
	cfg(s, VLAN_MODE_NATIVE_UNTAGGED, V1, VM(V10), 0, 0, 0);
	burst(s, 1, 1, FF_IO(3, 3, 0));
	plain(s, BCAST, 1, 60);
	burst(s, 2, 1, FF_IO(3, 3, 0));
	tagged(s, BCAST, 2, Q, V10, 60);
	burst(s, 0, 8, FF_IO(0, 0, 12));
	plain(s, 1, 0, 1514);
	repeat(s, 1514);
	repeat(s, 60);
	repeat(s, 9018);
	plain(s, 2, 0, 200);
	repeat(s, 26);
	frame(s, 1, 0, 0, NULL, IPV4, 4000, FF_SEG_CHAINED);
	repeat(s, 25);
	burst(s, 2, 6, FF_IO(1, 1, 13));
	tagged(s, 0, 2, Q, V10, 1514);
	repeat(s, 1000);
	tagged(s, BCAST, 2, Q, V10, 300);
	repeat(s, 300);
	frame(s, 1, 2, 1, (const uint8_t[]){Q, 7, V10}, IPV4, 9018, FF_SEG_CHAINED | 5);
	repeat(s, 64);
	burst(s, 3, 4, FF_IO(0, 0, 15));
	plain(s, BCAST, 3, 60);
	repeat(s, 60);
	tagged(s, BCAST, 3, Q, V10, 60);
	tagged(s, BCAST, 3, Q, V0, 60);
}

/* Lengths at every boundary the parser checks: 0, inside the addresses,
 * 13 and 14, a tag cut short, 26, jumbo. */
static void seed_lengths(struct seed *s)
{
	static const unsigned lens[] = {0, 1, 6, 12, 13, 14, 15, 17, 18, 21, 22, 25, 26, 27};
	static const uint8_t three[] = {Q, 0, V10, AD, 0, V20, Q, 0, V30};

	bridge(s, 3, 1, FF_SIZES(0, 0, 0, 0));
	cfg(s, VLAN_MODE_TRUNK, 0, VM(V10) | VM(V20) | VM(V30), 0, 0, 0);
	cfg(s, VLAN_MODE_DOT1Q_TUNNEL, V10, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 0);
	burst(s, 0, 14, FF_IO(3, 3, 0));
	for (unsigned i = 0; i < 14; i++) {
		frame(s, BCAST, 0, 3, three, IPV4, lens[i], 0);
	}
	burst(s, 1, 14, FF_IO(0, 3, 0));
	for (unsigned i = 0; i < 14; i++) {
		frame(s, BCAST, 1, 2, three, IPV4, lens[i], 0);
	}
	burst(s, 2, 3, FF_IO(2, 2, 0));
	plain(s, BCAST, 2, FF_LEN_MAX);
	plain(s, BCAST, 2, 9000);
	plain(s, BCAST, 2, 0xe0);
}

/* xorshift64*, for the traffic seeds: the same bytes on every run. */
static uint64_t rnd(uint64_t *st, uint64_t n)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return (*st * 0x2545f4914f6cdd1dull) % n;
}

/* Bulk traffic on the bridge of seed_modes(): 'bursts' bursts of 32
 * frames, each tagged as its ingress port expects most of the time, with
 * now and then a tick, an aging pass or a static entry.  Inputs this long
 * keep the fuzzer's time in frames rather than in making bridges. */
static void seed_traffic(struct seed *s, uint64_t st, unsigned passes, uint8_t sizes,
			 unsigned bursts)
{
	/* What each port of seed_modes() takes: -1 untagged, else a VID index. */
	static const int8_t expects[7][3] = {
		{V10, V20, V30}, {-1, V10, V20}, {-1, V30, V10}, {-1, V20, V30},
		{-1, V20, V30}, {-1, -1, -1}, {-1, -1, -1},
	};
	static const unsigned lens[8] = {60, 64, 128, 300, 590, 1000, 1514, 9018};

	bridge(s, 7, passes, sizes);
	cfg(s, VLAN_MODE_TRUNK, 0, VM(V10) | VM(V20) | VM(V30), 0, 0, 0);
	cfg(s, VLAN_MODE_NATIVE_TAGGED, V10, VM(V20), 0, 0, 0);
	cfg(s, VLAN_MODE_NATIVE_UNTAGGED, V30, VM(V10), 0, 0, 0);
	cfg(s, VLAN_MODE_DOT1Q_TUNNEL, V10, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_DOT1Q_TUNNEL, V10, 0, VM(V20) | VM(V30), 2, 0);
	cfg(s, VLAN_MODE_ACCESS, V10, 0, 0, 0, 0);
	cfg(s, VLAN_MODE_ACCESS, V30, 0, 0, 0, 0);
	for (unsigned b = 0; b < bursts; b++) {
		uint8_t in = (uint8_t)rnd(&st, 7);

		burst(s, in, 32, FF_IO(3, 3, rnd(&st, 16)));
		for (unsigned i = 0; i < 32; i++) {
			int vid = expects[in][rnd(&st, 3)];
			uint8_t dst = rnd(&st, 4) ? (uint8_t)rnd(&st, 8) : BCAST;
			uint8_t src = (uint8_t)(in + 8 * rnd(&st, 2)) % 8;
			unsigned len = lens[rnd(&st, 8)] - (unsigned)rnd(&st, 4);

			if (i > 0 && rnd(&st, 4) == 0) {
				repeat(s, len);
			} else if (vid < 0) {
				plain(s, dst, src, len);
			} else {
				tagged(s, dst, src, (uint8_t)rnd(&st, 2), (uint8_t)vid, len);
			}
		}
		switch (rnd(&st, 8)) {
		case 0:
			PUT(s, FF_OP_TICK, (uint8_t)rnd(&st, 8));
			break;
		case 1:
			PUT(s, FF_OP_AGE);
			break;
		case 2:
			PUT(s, FF_OP_FDB_ADD, (uint8_t)rnd(&st, 7), (uint8_t)rnd(&st, 4),
			    (uint8_t)rnd(&st, 8));
			break;
		default:
			break;
		}
	}
}

int main(int argc, char **argv)
{
	static struct seed s;

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_gen_frame_seeds DIR\n");
		return 2;
	}
	seed_access(&s);
	write_seed(argv[1], "access.bin", &s);
	seed_modes(&s);
	write_seed(argv[1], "modes.bin", &s);
	seed_double_tag(&s);
	write_seed(argv[1], "double-tag.bin", &s);
	seed_config(&s);
	write_seed(argv[1], "config.bin", &s);
	seed_small_table(&s);
	write_seed(argv[1], "small-table.bin", &s);
	seed_bursts(&s);
	write_seed(argv[1], "bursts.bin", &s);
	seed_lengths(&s);
	write_seed(argv[1], "lengths.bin", &s);
	seed_traffic(&s, 1, 4, FF_SIZES(0, 0, 0, 0), 40);
	write_seed(argv[1], "traffic.bin", &s);
	seed_traffic(&s, 2, 8, FF_SIZES(3, 1, 2, 1), 40);
	write_seed(argv[1], "traffic-small-table.bin", &s);
	return 0;
}
