/* SPDX-License-Identifier: MIT */
/* frames.h: builds the Ethernet frames the libvlan tests feed to tag.c and
 * portmode.c, byte by byte and independently of the library, so a bug in
 * the library's packing cannot hide in the fixture. */
#ifndef VLAN_TEST_FRAMES_H
#define VLAN_TEST_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vlan.h"

#define FRAME_ETHERTYPE_IPV4 0x0800
#define FRAME_PAYLOAD_BYTES 46 /* pads an untagged frame to the 60-byte minimum */

/* Writes a frame with tags 'tags[0..n_tags)' (outer first), 'ethertype' and
 * 'payload_bytes' of a counting pattern at 'out'; returns its length.
 * 'out' must hold 18 + 4 * n_tags + payload_bytes bytes. */
static inline size_t frame_build(uint8_t *out, const struct vlan_tag *tags, unsigned int n_tags,
				 uint16_t ethertype, size_t payload_bytes)
{
	static const uint8_t addrs[VLAN_ETH_ADDRS_BYTES] = {
		0x02, 0x00, 0x00, 0x00, 0x00, 0x01, /* destination */
		0x02, 0x00, 0x00, 0x00, 0x00, 0x02, /* source */
	};
	size_t off = VLAN_ETH_ADDRS_BYTES;
	unsigned int i;
	uint16_t tci;

	memcpy(out, addrs, sizeof(addrs));
	for (i = 0; i < n_tags; i++) {
		tci = (uint16_t)((tags[i].pcp << 13) | (tags[i].dei ? 0x1000 : 0) | tags[i].vid);
		out[off++] = (uint8_t)(tags[i].tpid >> 8);
		out[off++] = (uint8_t)tags[i].tpid;
		out[off++] = (uint8_t)(tci >> 8);
		out[off++] = (uint8_t)tci;
	}
	out[off++] = (uint8_t)(ethertype >> 8);
	out[off++] = (uint8_t)ethertype;
	for (i = 0; i < payload_bytes; i++) {
		out[off++] = (uint8_t)(0xa0 + i);
	}
	return off;
}

static inline struct vlan_tag tag_q(uint16_t vid, uint8_t pcp)
{
	struct vlan_tag tag = {.tpid = VLAN_TPID_8021Q, .vid = vid, .pcp = pcp, .dei = false};

	return tag;
}

static inline struct vlan_tag tag_ad(uint16_t vid, uint8_t pcp)
{
	struct vlan_tag tag = {.tpid = VLAN_TPID_8021AD, .vid = vid, .pcp = pcp, .dei = false};

	return tag;
}

#endif
