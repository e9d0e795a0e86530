/* SPDX-License-Identifier: MIT */
/* bridge.h: the bridge's state, shared by bridge.c (configuration, counters
 * and forwarding database calls) and forward.c (the per-frame decision).
 * Internal to vswitch/. */
#ifndef VSW_BRIDGE_H
#define VSW_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "mac-table.h"
#include "vswitch.h"

#define VSW_VID_SLOTS (VLAN_VID_MAX + 1) /* arrays indexed by VID; 0 unused */

struct vsw_bport {
	bool in_use;
	char name[VSW_NAME_BYTES];
	char type[VSW_PORT_TYPE_BYTES];
	struct vlan_port *vlan;
	void *tx_ctx;
	uint32_t mac_limit; /* as configured; 0: the bridge's */
	struct vsw_counters counters;
};

/* Each VLAN's member ports, as one array in compressed-row form: VLAN v's
 * ports are ports[off[v]] .. ports[off[v + 1] - 1], ascending.  Rebuilt
 * whole on every port change, so flooding walks members only. */
struct vsw_flood_lists {
	uint32_t *off;   /* VSW_VID_SLOTS + 1 offsets */
	uint16_t *ports;
};

struct vsw_bridge {
	char name[VSW_NAME_BYTES];
	uint16_t max_ports;
	uint32_t mac_capacity;
	uint32_t port_mac_limit;
	struct vsw_bport *ports;            /* 'max_ports' slots */
	struct vsw_mac_table *macs;
	struct vsw_counters *vlan_counters; /* VSW_VID_SLOTS, by VID */
	struct vsw_flood_lists flood;
};

static inline struct vsw_bport *vsw_bport_get(const struct vsw_bridge *br, uint16_t port_no)
{
	if (port_no >= br->max_ports || !br->ports[port_no].in_use) {
		return NULL;
	}
	return &br->ports[port_no];
}

static inline uint32_t vsw_flood_count(const struct vsw_bridge *br, uint16_t vid)
{
	return br->flood.off[vid + 1] - br->flood.off[vid];
}

#endif
