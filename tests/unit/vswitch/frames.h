/* SPDX-License-Identifier: MIT */
/* frames.h: builds the Ethernet frames the switch tests send, byte by byte
 * and without libvlan, so that a packing bug in the library cannot hide in
 * the fixture; plus the station addresses the tests use. */
#ifndef VSW_TEST_FRAMES_H
#define VSW_TEST_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ETHERTYPE_IPV4 0x0800
#define TPID_Q 0x8100
#define TPID_AD 0x88a8
#define MIN_PAYLOAD_BYTES 46 /* pads an untagged frame to 60 bytes */

struct ftag {
	uint16_t tpid;
	uint16_t vid;
	uint8_t pcp;
};

static const uint8_t mac_bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t mac_mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb};
static const uint8_t mac_stp[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00};
static const uint8_t mac_zero[6];

/* Station 'n': a locally administered unicast address. */
static inline const uint8_t *station(unsigned int n)
{
	static uint8_t macs[16][6];
	static unsigned int next;
	uint8_t *m = macs[next++ % 16];

	m[0] = 0x02;
	m[1] = 0x5a;
	m[2] = 0x00;
	m[3] = (uint8_t)(n >> 16);
	m[4] = (uint8_t)(n >> 8);
	m[5] = (uint8_t)n;
	return m;
}

/* Writes 'dst', 'src', the tags (outer first), an IPv4 type and a payload
 * whose bytes depend on 'seed' and position, at 'out'; returns the length.
 * 'out' must hold 14 + 4 * n_tags + payload_bytes bytes. */
static inline size_t frame_make(uint8_t *out, const uint8_t *dst, const uint8_t *src,
				const struct ftag *tags, unsigned int n_tags, size_t payload_bytes,
				uint8_t seed)
{
	size_t off = 12, i;
	uint16_t tci;

	memcpy(out, dst, 6);
	memcpy(out + 6, src, 6);
	for (i = 0; i < n_tags; i++) {
		tci = (uint16_t)(tags[i].pcp << 13 | tags[i].vid);
		out[off++] = (uint8_t)(tags[i].tpid >> 8);
		out[off++] = (uint8_t)tags[i].tpid;
		out[off++] = (uint8_t)(tci >> 8);
		out[off++] = (uint8_t)tci;
	}
	out[off++] = ETHERTYPE_IPV4 >> 8;
	out[off++] = ETHERTYPE_IPV4 & 0xff;
	for (i = 0; i < payload_bytes; i++) {
		out[off++] = (uint8_t)(seed + i * 7);
	}
	return off;
}

/* Reads the outer tag of 'frame' into '*tag'; false if it has none. */
static inline int frame_outer_tag(const uint8_t *frame, size_t len, struct ftag *tag)
{
	uint16_t tpid, tci;

	if (len < 18) {
		return 0;
	}
	tpid = (uint16_t)(frame[12] << 8 | frame[13]);
	if (tpid != TPID_Q && tpid != TPID_AD) {
		return 0;
	}
	tci = (uint16_t)(frame[14] << 8 | frame[15]);
	tag->tpid = tpid;
	tag->vid = tci & 0xfff;
	tag->pcp = (uint8_t)(tci >> 13);
	return 1;
}

#endif
