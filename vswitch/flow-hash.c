/* SPDX-License-Identifier: MIT */
/* flow-hash.c: the flow hash and queue choice of flow-hash.h.
 *
 * The hash is MurmurHash3's 32-bit block mix over the header fields, read
 * as 32-bit words, and its finalizer: a handful of multiplies per frame,
 * and every input bit reaches the high bits that vsw_flow_queue() keeps.
 * Only the datapath of a port with several queues calls it, once per frame
 * at transmit; a single-queue port never does.
 */
#include <string.h>

#include "flow-hash.h"
#include "vlan.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_SCTP_ 132
#define IPV4_MIN_HDR_BYTES 20
#define IPV4_MF_OFFSET_MASK 0x3fff /* more-fragments flag and fragment offset */
#define IPV6_HDR_BYTES 40
#define L4_PORTS_BYTES 4 /* source and destination port, the same in all three */

static uint32_t rotl32(uint32_t x, unsigned int r)
{
	return (x << r) | (x >> (32 - r));
}

static uint32_t mix(uint32_t h, uint32_t w)
{
	w *= 0xcc9e2d51u;
	w = rotl32(w, 15);
	w *= 0x1b873593u;
	h ^= w;
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

static uint32_t finish(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v)); /* any order will do, the same every time */
	return v;
}

static uint16_t rd16be(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Mixes in 'n' bytes (a multiple of 4) at 'p'. */
static uint32_t mix_bytes(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 4) {
		h = mix(h, rd32(p + i));
	}
	return h;
}

/* IPv4 at 'ip', 'len' bytes of it in the frame. */
static uint32_t mix_ipv4(uint32_t h, const uint8_t *ip, size_t len)
{
	size_t ihl;

	if (len < IPV4_MIN_HDR_BYTES) {
		return h;
	}
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	h = mix_bytes(h, ip + 12, 8); /* source and destination address */
	h = mix(h, ip[9]);
	if (ihl < IPV4_MIN_HDR_BYTES || (rd16be(ip + 6) & IPV4_MF_OFFSET_MASK) != 0) {
		return h; /* a fragment: the first has the ports, the others not */
	}
	if ((ip[9] == IPPROTO_TCP_ || ip[9] == IPPROTO_UDP_ || ip[9] == IPPROTO_SCTP_) &&
	    len >= ihl + L4_PORTS_BYTES) {
		h = mix(h, rd32(ip + ihl));
	}
	return h;
}

/* IPv6 at 'ip', 'len' bytes of it.  Ports only when the transport header
 * follows at once: walking extension headers for the few packets that have
 * them would cost every packet a loop, and a fragment header would hide
 * the ports of all but the first fragment anyway. */
static uint32_t mix_ipv6(uint32_t h, const uint8_t *ip, size_t len)
{
	uint8_t next;

	if (len < IPV6_HDR_BYTES) {
		return h;
	}
	next = ip[6];
	h = mix_bytes(h, ip + 8, 32); /* source and destination address */
	h = mix(h, next);
	if ((next == IPPROTO_TCP_ || next == IPPROTO_UDP_ || next == IPPROTO_SCTP_) &&
	    len >= IPV6_HDR_BYTES + L4_PORTS_BYTES) {
		h = mix(h, rd32(ip + IPV6_HDR_BYTES));
	}
	return h;
}

uint32_t vsw_flow_hash(const uint8_t *frame, size_t len_bytes)
{
	uint32_t h = 0;
	size_t off = VLAN_ETH_ADDRS_BYTES;
	uint16_t type;

	if (len_bytes < VLAN_ETH_HDR_BYTES) {
		/* Runts still get a queue, always the same one. */
		for (size_t i = 0; i < len_bytes; i++) {
			h = mix(h, frame[i]);
		}
		return finish(h);
	}
	h = mix_bytes(h, frame, VLAN_ETH_ADDRS_BYTES);
	type = rd16be(frame + off);
	for (int tags = 0; tags < VLAN_MAX_TAGS &&
			   (type == VLAN_TPID_8021Q || type == VLAN_TPID_8021AD) &&
			   len_bytes >= off + VLAN_TAG_BYTES + 2;
	     tags++) {
		/* The VID, not the priority: a flow is the same flow whatever
		 * its PCP, and must not be reordered by a change of it. */
		h = mix(h, (uint32_t)type << 16 | (rd16be(frame + off + 2) & 0x0fff));
		off += VLAN_TAG_BYTES;
		type = rd16be(frame + off);
	}
	h = mix(h, type);
	off += 2;
	if (type == ETHERTYPE_IPV4) {
		h = mix_ipv4(h, frame + off, len_bytes - off);
	} else if (type == ETHERTYPE_IPV6) {
		h = mix_ipv6(h, frame + off, len_bytes - off);
	}
	return finish(h);
}

uint16_t vsw_queue_remap(uint32_t enabled, uint16_t queue)
{
	unsigned int n = (unsigned int)__builtin_popcount(enabled), k;

	if ((queue < 32 && (enabled >> queue) & 1u) || n == 0) {
		return queue;
	}
	for (k = queue % n; k > 0; k--) {
		enabled &= enabled - 1; /* drop the lowest enabled queue */
	}
	return (uint16_t)__builtin_ctz(enabled);
}
