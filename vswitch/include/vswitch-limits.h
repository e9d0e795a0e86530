/* SPDX-License-Identifier: MIT */
/* vswitch-limits.h: the limits and grammar of the switch's control
 * protocol (docs/vswitch-rpc.md), in one place for the daemon that enforces
 * them and the client that checks them before sending (vswitchctl includes
 * this header without linking the switch).  Header-only, no DPDK. */
#ifndef VSWITCH_LIMITS_H
#define VSWITCH_LIMITS_H

#include <stdbool.h>
#include <string.h>

/* Bridge and port names: 1-63 bytes of VSW_NAME_CHARS (with the NUL, 64). */
#define VSW_NAME_BYTES 64
#define VSW_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"
/* Linux's IFNAMSIZ less the NUL, for host and uplink interface names. */
#define VSW_IFNAME_MAX_BYTES 15
/* VLAN ids (802.1Q reserves 0 and 4095; vlan.h's VLAN_VID_MAX). */
#define VSW_VLAN_MIN 1
#define VSW_VLAN_MAX 4094
/* Queue pairs a vhost-user port polls at most (a guest uses one per vCPU). */
#define VSW_PORT_MAX_QUEUES 8
/* 68 is the least Linux lets an Ethernet device have; 9000 the usual jumbo
 * frame, which the datapath carries as mbuf chains. */
#define VSW_PORT_MTU_MIN 68u
#define VSW_PORT_MTU_MAX 9000u
#define VSW_PORT_MTU_DEFAULT 1500u
/* MAC table entries per bridge at most: 2^24 keeps the table's index
 * arithmetic in 32 bits with room for twice as many buckets. */
#define VSW_MAC_CAPACITY_MAX (1u << 24)

/* Port types the daemon knows, NULL-terminated. */
#define VSW_PORT_TYPES {"vhost-user", "vhost-user-client", "host", "uplink", NULL}
/* VLAN modes, NULL-terminated (vlan.h parses them). */
#define VSW_VLAN_MODES {"access", "trunk", "native-untagged", "native-tagged", "dot1q-tunnel", NULL}

static inline bool vsw_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < VSW_NAME_BYTES && strspn(s, VSW_NAME_CHARS) == n;
}

#endif
