/* SPDX-License-Identifier: MIT */
/* wire.h: the Ethernet header and VLAN tag as they lie in a frame, and the
 * big-endian loads and stores that convert at that boundary.  Internal to
 * libvlan: tag.c reads and writes frames only through these. */
#ifndef VLAN_WIRE_H
#define VLAN_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "vlan.h"

/* Byte arrays rather than uint16_t fields: frames sit at any alignment, so
 * the structs must have alignment 1 and no padding. */
struct vlan_wire_eth {
	uint8_t dst[VLAN_MAC_BYTES];
	uint8_t src[VLAN_MAC_BYTES];
	uint8_t type_be[2]; /* ethertype, or a TPID when a tag follows */
};
_Static_assert(sizeof(struct vlan_wire_eth) == VLAN_ETH_HDR_BYTES, "Ethernet header is 14 bytes");
_Static_assert(offsetof(struct vlan_wire_eth, type_be) == VLAN_ETH_ADDRS_BYTES,
	       "a tag goes right after the two addresses");

/* What a push inserts at offset 12.  The TCI packs PCP (bits 15-13), DEI
 * (bit 12) and VID (bits 11-0). */
struct vlan_wire_tag {
	uint8_t tpid_be[2];
	uint8_t tci_be[2];
};
_Static_assert(sizeof(struct vlan_wire_tag) == VLAN_TAG_BYTES, "a VLAN tag is 4 bytes");

#define VLAN_TCI_PCP_SHIFT 13
#define VLAN_TCI_DEI 0x1000
#define VLAN_TCI_VID_MASK 0x0fff

static inline uint16_t vlan_load_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void vlan_store_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

#endif
