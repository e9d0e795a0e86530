/* SPDX-License-Identifier: MIT */
/* mac-table.h: the switch's forwarding database, (VLAN, MAC) -> port, with
 * aging, a per-port limit and Open vSwitch's eviction policy: when the table
 * is full, the entry to go is the least recently seen one of the port that
 * has learned the most, so one flooding port cannot push out the others.
 * Internal to vswitch/: forward.c learns and looks up per frame, bridge.c
 * serves the vsw_fdb_*() calls of vswitch.h with it.
 *
 * Time is whatever the caller passes in 'now_ms' (milliseconds, any epoch,
 * never decreasing); the table reads no clock, so tests control aging.  An
 * entry not seen for the aging time or longer is gone for every call, even
 * before vsw_mac_age() reclaims its slot.
 *
 * Nothing here allocates after vsw_mac_table_create().  One thread at a time.
 */
#ifndef VSW_MAC_TABLE_H
#define VSW_MAC_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "vswitch-limits.h"

#define VSW_MAC_NO_PORT UINT16_MAX /* "no port" and "any port" */
/* VSW_MAC_CAPACITY_MAX (vswitch-limits.h), 2^24, keeps index arithmetic in
 * 32 bits with room for twice as many buckets. */

struct vsw_mac_table;

struct vsw_mac_table_opts {
	uint32_t capacity;   /* entries, 1..VSW_MAC_CAPACITY_MAX */
	uint64_t aging_ms;   /* idle time after which a learned entry is gone, >= 1 */
	uint16_t n_ports;    /* port numbers are 0..n_ports-1; 1..VSW_MAC_NO_PORT */
	uint32_t port_limit; /* learned entries one port may hold; 0: 'capacity' */
	uint64_t seed;       /* hash key, so guests cannot aim at one bucket */
};

/* What vsw_mac_learn() did. */
enum vsw_mac_learn {
	VSW_MAC_LEARNED,         /* a new entry */
	VSW_MAC_REFRESHED,       /* known on this port: age reset */
	VSW_MAC_MOVED,           /* known on another port: now on this one */
	VSW_MAC_STATIC,          /* a static entry on this port: nothing to do */
	VSW_MAC_STATIC_CONFLICT, /* a static entry on another port: kept there */
	VSW_MAC_NO_SPACE,        /* every entry is static: not learned */
};

struct vsw_mac_stats {
	uint32_t entries;        /* in use now, static included */
	uint32_t static_entries; /* of which static */
	uint64_t learned;        /* new entries learned */
	uint64_t moved;          /* stations that moved to another port */
	uint64_t expired;        /* entries gone by aging */
	uint64_t evicted_full;   /* evicted because the table was full */
	uint64_t evicted_limit;  /* evicted because their port reached its limit */
	uint64_t static_conflicts; /* a static station seen on another port */
	uint64_t no_space;       /* not learned: the table held only static entries */
};

/* One port's share of the table: what it holds and what it lost, so a port
 * that floods the table with new sources shows its own losses. */
struct vsw_mac_port_stats {
	uint32_t entries;       /* learned entries it holds now */
	uint32_t limit;         /* the most it may hold */
	uint64_t learned;       /* entries that came to it: new stations and
				 * stations that moved to it */
	uint64_t evicted_limit; /* its entries evicted to keep its limit */
	uint64_t evicted_full;  /* its entries evicted because the table was
				 * full and it had learned the most */
};

/* One entry, as vsw_mac_foreach() shows it. */
struct vsw_mac_info {
	uint8_t mac[6];
	uint16_t vid;
	uint16_t port;
	bool is_static;
	uint64_t seen_ms; /* last time learning saw it; 0 for static entries */
};

/* Allocates a table into '*tablep'.  Returns 0, -EINVAL for an option out of
 * range, or -ENOMEM. */
int vsw_mac_table_create(const struct vsw_mac_table_opts *opts, struct vsw_mac_table **tablep);
/* Frees 'table' (NULL: no-op). */
void vsw_mac_table_destroy(struct vsw_mac_table *table);

/* Records that 'mac' was seen as a source on 'port' in 'vid' at 'now_ms',
 * evicting an entry if the port's limit or the table's capacity requires.
 * 'vid' must be 1-4094, 'port' below n_ports, 'mac' a unicast address: the
 * caller (the datapath) has checked them.  Static entries never move. */
enum vsw_mac_learn vsw_mac_learn(struct vsw_mac_table *table, uint16_t vid, const uint8_t *mac,
				 uint16_t port, uint64_t now_ms);

/* The port 'mac' was learned on in 'vid', or VSW_MAC_NO_PORT.  Looking up
 * does not refresh: only a station's own frames keep it alive. */
uint16_t vsw_mac_lookup(const struct vsw_mac_table *table, uint16_t vid, const uint8_t *mac,
			uint64_t now_ms);

/* Adds or replaces the entry for ('vid', 'mac') with a static one on 'port':
 * it never ages, moves or gets evicted.  If the table is full, the eviction
 * policy makes room.  Returns 0; -EINVAL for a bad VID, port or a multicast
 * or zero 'mac'; -ENOSPC if every entry is static already. */
int vsw_mac_add_static(struct vsw_mac_table *table, uint16_t vid, const uint8_t *mac,
		       uint16_t port);
/* Removes the entry for ('vid', 'mac'), static or learned, expired or not.
 * Returns 0, or -ENOENT if there is none. */
int vsw_mac_del(struct vsw_mac_table *table, uint16_t vid, const uint8_t *mac);

/* Removes the entries on 'port' (VSW_MAC_NO_PORT: any) in 'vid' (0: any);
 * static ones only if 'statics'.  Returns how many went. */
uint32_t vsw_mac_flush(struct vsw_mac_table *table, uint16_t port, uint16_t vid, bool statics);

/* Removes the entries on 'port', static ones too, whose VID 'gone' says
 * true for; returns how many went.  For a port that leaves VLANs. */
uint32_t vsw_mac_flush_vids(struct vsw_mac_table *table, uint16_t port,
			    bool (*gone)(uint16_t vid, void *arg), void *arg);

/* Reclaims the entries that are gone by 'now_ms'; returns how many.  Costs
 * one step per port plus one per entry removed, so it may run often. */
uint32_t vsw_mac_age(struct vsw_mac_table *table, uint64_t now_ms);

/* Sets the number of learned entries 'port' may hold (0: capacity),
 * evicting its least recently seen ones if it holds more.  Returns 0, or
 * -EINVAL for a port out of range. */
int vsw_mac_set_port_limit(struct vsw_mac_table *table, uint16_t port, uint32_t limit);

/* Learned (dynamic) entries on 'port', live or expired but not reclaimed. */
uint32_t vsw_mac_port_count(const struct vsw_mac_table *table, uint16_t port);
void vsw_mac_get_stats(const struct vsw_mac_table *table, struct vsw_mac_stats *stats);
/* Copies 'port's share into '*stats'.  Returns 0, or -EINVAL for a port out
 * of range. */
int vsw_mac_get_port_stats(const struct vsw_mac_table *table, uint16_t port,
			   struct vsw_mac_port_stats *stats);
/* Zeroes 'port's learned and evicted counts, for a port number given to a
 * new port.  Its entries and limit stay. */
void vsw_mac_clear_port_stats(struct vsw_mac_table *table, uint16_t port);

/* Calls 'cb' for each live entry at 'now_ms', in no particular order; stops
 * at and returns the first non-zero value 'cb' returns, else 0.  'cb' must
 * not change the table. */
int vsw_mac_foreach(const struct vsw_mac_table *table, uint64_t now_ms,
		    int (*cb)(const struct vsw_mac_info *info, void *arg), void *arg);

#endif
