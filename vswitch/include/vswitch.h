/* SPDX-License-Identifier: MIT */
/* vswitch.h: the core of the VLAN-aware switch, with no DPDK in it.  A
 * bridge holds ports, each with a libvlan port configuration; for every
 * frame received on a port it learns the source, looks up the destination
 * in its forwarding database (keyed by VLAN and MAC) and answers with the
 * ports the frame leaves through and, for each, how to edit its VLAN tags.
 * The datapath (rx, copies, tx) does the rest with those answers.
 *
 * Guarantees, whatever the frame:
 *  - A frame never leaves through the port it came in on.
 *  - A frame leaves only through ports that carry its VLAN, as libvlan
 *    decides on ingress and egress: no frame changes VLAN (no escape).
 *  - Broadcast, multicast and unknown unicast flood only within the VLAN.
 *  - Every frame received is counted once: forwarded (one or more outputs)
 *    or dropped with one reason, on its port and, once it has one, on its
 *    VLAN.  rx_packets == frames forwarded + sum of rx_drops.
 *
 * Conventions:
 *  - Functions return 0 (or a count) on success and a negative errno on
 *    failure; out-parameters ending in 'p' are written only on success.
 *    Configuration calls take a last 'struct errmsg *err' (NULL allowed).
 *  - Time is passed in ('now_ms': milliseconds, any epoch, never
 *    decreasing); nothing here reads a clock, so tests control aging.
 *  - A bridge is used by one thread at a time: the datapath thread, with
 *    configuration calls posted to it or serialised by the caller's lock.
 *  - Nothing prints or exits; per-frame calls never allocate.
 */
#ifndef VSWITCH_H
#define VSWITCH_H

#include <stdbool.h>
#include <stdint.h>

#include "vlan.h"
#include "vswitch-limits.h"

struct errmsg;

/* Open vSwitch's defaults (mac-table-size, mac-aging-time). */
#define VSW_MAC_CAPACITY_DEFAULT 8192
#define VSW_MAC_AGING_S_DEFAULT 300
/* A host runs tens of guests with a few vNICs each; raise it in the opts. */
#define VSW_MAX_PORTS_DEFAULT 256
#define VSW_PORT_NONE UINT16_MAX

#define VSW_PORT_TYPE_BYTES 32 /* provider type tags, with the NUL */

/* The most bytes of a frame the per-frame calls read: addresses, up to
 * VLAN_MAX_TAGS tags and a type field.  A frame in a chain of buffers needs
 * only this much (or all of it, if shorter) in its first one. */
#define VSW_PEEK_BYTES (VLAN_ETH_ADDRS_BYTES + VLAN_MAX_TAGS * VLAN_TAG_BYTES + 2)

/* ------------------------------------------------------------- Bridges */

struct vsw_bridge; /* opaque */

struct vsw_bridge_opts {
	const char *name;        /* for messages; copied; NULL: "bridge" */
	uint32_t mac_capacity;   /* forwarding entries, 1..16777216;
				  * default VSW_MAC_CAPACITY_DEFAULT */
	uint32_t mac_aging_s;    /* idle seconds before a learned entry goes,
				  * >= 1; default VSW_MAC_AGING_S_DEFAULT */
	uint32_t port_mac_limit; /* learned entries one port may hold unless
				  * the port says otherwise; 0 (default): the
				  * capacity, eviction alone keeps order */
	uint16_t max_ports;      /* port numbers 0..max_ports-1, 1..65534;
				  * default VSW_MAX_PORTS_DEFAULT */
	uint64_t hash_seed;      /* 0 (default): a random one, so guests cannot
				  * aim their MACs at one hash chain */
};

void vsw_bridge_opts_init(struct vsw_bridge_opts *opts);
/* Makes an empty bridge into '*brp'.  Returns 0, -EINVAL for an option out
 * of range, or -ENOMEM, with a sentence in 'err'. */
int vsw_bridge_create(const struct vsw_bridge_opts *opts, struct vsw_bridge **brp,
		      struct errmsg *err);
/* Frees 'br' with its ports and forwarding database (NULL: no-op). */
void vsw_bridge_destroy(struct vsw_bridge *br);
/* Borrowed until the bridge is destroyed. */
const char *vsw_bridge_name(const struct vsw_bridge *br);
/* An output array this long always holds one frame's outputs. */
uint16_t vsw_bridge_max_ports(const struct vsw_bridge *br);

/* Removes the learned entries idle for the aging time at 'now_ms' and
 * returns how many.  Entries past their age are already ignored by
 * forwarding; this frees their slots.  Cheap (one step per port plus one
 * per entry removed): call it every second or so. */
uint32_t vsw_bridge_age(struct vsw_bridge *br, uint64_t now_ms);

/* --------------------------------------------------------------- Ports */

struct vsw_port_opts {
	const char *name;           /* required, unique in the bridge; copied */
	const char *type;           /* the provider's type tag ("vhost-user-client",
				     * "tap", ...); copied; the core only
				     * reports it; NULL: "" */
	struct vlan_port_opts vlan; /* VLAN mode; the sets in it are copied */
	void *tx_ctx;               /* the datapath's, handed back with each
				     * output through this port */
	uint32_t mac_limit;         /* learned entries this port may hold;
				     * 0: the bridge's port_mac_limit */
};

void vsw_port_opts_init(struct vsw_port_opts *opts);
/* Adds a port and stores its number (the lowest free one) in '*port_nop'.
 * Returns 0; -EINVAL for a bad name or VLAN configuration; -EEXIST if the
 * name is taken; -ENOSPC if the bridge has max_ports ports; -ENOMEM. */
int vsw_port_add(struct vsw_bridge *br, const struct vsw_port_opts *opts, uint16_t *port_nop,
		 struct errmsg *err);
/* Removes a port with every forwarding entry pointing to it, static ones
 * too; its number may be reused.  Returns 0 or -ENODEV. */
int vsw_port_remove(struct vsw_bridge *br, uint16_t port_no);
/* Gives a port a new VLAN configuration.  Its entries in VLANs it no longer
 * carries go, static ones too.  Returns 0; -ENODEV; -EINVAL with a
 * sentence; -ENOMEM (the old configuration then stays). */
int vsw_port_set_vlan(struct vsw_bridge *br, uint16_t port_no, const struct vlan_port_opts *vlan,
		      struct errmsg *err);
/* Sets a port's MAC limit (0: the bridge's), evicting its oldest learned
 * entries down to it.  Returns 0 or -ENODEV. */
int vsw_port_set_mac_limit(struct vsw_bridge *br, uint16_t port_no, uint32_t mac_limit);

/* The number of the port named 'name', or -ENOENT. */
int vsw_port_find(const struct vsw_bridge *br, const char *name);
/* The smallest port number in use above 'after' (-1 to start), or -ENOENT:
 * for (p = vsw_port_next(br, -1); p >= 0; p = vsw_port_next(br, p)). */
int vsw_port_next(const struct vsw_bridge *br, int after);
/* A port's name, type tag, VLAN configuration, tx context; NULL if there
 * is no such port.  Borrowed until the port is removed or reconfigured. */
const char *vsw_port_name(const struct vsw_bridge *br, uint16_t port_no);
const char *vsw_port_type(const struct vsw_bridge *br, uint16_t port_no);
const struct vlan_port *vsw_port_vlan(const struct vsw_bridge *br, uint16_t port_no);
void *vsw_port_tx_ctx(const struct vsw_bridge *br, uint16_t port_no);

/* ---------------------------------------------------------- Forwarding */

/* Why a frame, or one copy of it, was dropped: libvlan's reasons with the
 * same values (see enum vlan_drop), then the switch's own.  An index into
 * the counters below. */
enum vsw_drop {
	VSW_DROP_NONE = VLAN_DROP_NONE,
	VSW_DROP_MALFORMED = VLAN_DROP_MALFORMED,
	VSW_DROP_RESERVED_VID = VLAN_DROP_RESERVED_VID,
	VSW_DROP_TAGGED_ON_ACCESS = VLAN_DROP_TAGGED_ON_ACCESS,
	VSW_DROP_NOT_ALLOWED = VLAN_DROP_NOT_ALLOWED,
	VSW_DROP_UNTAGGED_NO_NATIVE = VLAN_DROP_UNTAGGED_NO_NATIVE,
	VSW_DROP_PRIORITY_STACKED = VLAN_DROP_PRIORITY_STACKED,
	VSW_DROP_NOT_MEMBER = VLAN_DROP_NOT_MEMBER,
	VSW_DROP_TAG_EXPOSED = VLAN_DROP_TAG_EXPOSED,
	VSW_DROP_BAD_SOURCE = VLAN_DROP_COUNT, /* source MAC multicast or zero */
	VSW_DROP_RESERVED_GROUP, /* to 01:80:c2:00:00:00-0f (STP, LACP, LLDP...):
				  * 802.1D forbids bridges to forward them */
	VSW_DROP_SAME_PORT,      /* the destination lives on the ingress port */
	VSW_DROP_NO_OUTPUT,      /* no other port took it: alone in its VLAN,
				  * or every output refused it on egress (the
				  * reasons are counted on those ports) */
	VSW_DROP_TX_FAILED,      /* the datapath could not send a copy */
	VSW_DROP_COUNT
};

/* libvlan's names, then "bad-source", "reserved-group", "same-port",
 * "no-output", "tx-failed"; "unknown" for other values.  Static storage. */
const char *vsw_drop_name(enum vsw_drop reason);

/* How to turn the frame as received into the frame to send on one port. */
enum vsw_edit {
	VSW_EDIT_NONE,    /* send the bytes as received */
	VSW_EDIT_POP,     /* remove the outer tag */
	VSW_EDIT_PUSH,    /* insert 'tag' as the new outer tag */
	VSW_EDIT_REWRITE, /* replace the outer tag with 'tag' (same length) */
};

struct vsw_output {
	void *tx_ctx;        /* the output port's, from vsw_port_opts */
	uint16_t port_no;
	uint8_t edit;        /* enum vsw_edit */
	struct vlan_tag tag; /* for PUSH and REWRITE */
};

/* Bytes the frame gains (+4), loses (-4) or keeps (0) by 'edit'. */
int vsw_edit_delta_bytes(enum vsw_edit edit);
/* Carries out 'out->edit' on the frame in 'buf' (a copy for this output, or
 * the original if this is its only output).  Returns 0, or the errno of
 * vlan_tag_pop() / vlan_tag_push(): -ENOSPC without 4 bytes of head- or
 * tailroom to push into. */
int vsw_output_apply(const struct vsw_output *out, struct vlan_buf *buf);

/* The answer for one frame. */
struct vsw_verdict {
	uint32_t first_output; /* index of its first output in the outputs array */
	uint16_t n_outputs;    /* 0 if dropped; outputs in ascending port order */
	uint16_t vid;          /* the VLAN it entered; 0 if dropped before */
	uint8_t drop;          /* enum vsw_drop, VSW_DROP_NONE if n_outputs > 0 */
	bool flooded;          /* broadcast, multicast or unknown unicast */
};

/* One frame of a burst: its first bytes, contiguous (at least VSW_PEEK_BYTES
 * of them, or the whole frame), and the whole frame's length, which is what
 * the counters add. */
struct vsw_pkt {
	const uint8_t *data;
	uint32_t len_bytes;
};

/* Decides 'n_pkts' frames received on 'in_port' at 'now_ms', in order:
 * learns, counts, and writes verdicts[i] and the outputs of frame i into
 * 'outputs' from verdicts[i].first_output on.  A frame is taken only if
 * 'max_outputs' still has room for as many outputs as its VLAN has member
 * ports; decisions stop at the first that does not fit, which has then had
 * no effect.  Returns the number of frames decided, -ENOSPC if not even the
 * first fits (give at least vsw_bridge_max_ports() outputs), or -ENODEV
 * for an unknown 'in_port'.  The frames are only read. */
int vsw_forward_burst(struct vsw_bridge *br, uint16_t in_port, const struct vsw_pkt *pkts,
		      unsigned int n_pkts, uint64_t now_ms, struct vsw_verdict *verdicts,
		      struct vsw_output *outputs, unsigned int max_outputs);
/* The same for one frame; returns its number of outputs (0: dropped), or
 * -ENOSPC or -ENODEV as above. */
int vsw_forward(struct vsw_bridge *br, uint16_t in_port, const uint8_t *frame, uint32_t len_bytes,
		uint64_t now_ms, struct vsw_verdict *verdict, struct vsw_output *outputs,
		unsigned int max_outputs);

/* Counts 'n_pkts' copies that the datapath could not send through
 * 'port_no' (a full ring, a guest gone) as VSW_DROP_TX_FAILED, on the port
 * only: by then the datapath no longer knows their VLAN. */
void vsw_port_count_tx_failed(struct vsw_bridge *br, uint16_t port_no, uint32_t n_pkts);

/* ------------------------------------------------------------ Counters */

/* A port's or a VLAN's counters.  Bytes are frame lengths without FCS, as
 * received ('rx_') or as sent after the edit ('tx_').  For a VLAN, rx counts
 * the frames that entered it, and rx_drops what was dropped after that:
 * frames refused by their ingress port's VLAN rules belong to no VLAN and
 * count on the port only. */
struct vsw_counters {
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets; /* copies decided for sending, tx-failed included */
	uint64_t tx_bytes;
	uint64_t flooded;    /* received frames flooded */
	uint64_t rx_drops[VSW_DROP_COUNT]; /* received frames dropped, by reason */
	uint64_t tx_drops[VSW_DROP_COUNT]; /* copies refused on egress, by reason */
};

/* Copies the counters of a port (-ENODEV if none) or of VLAN 'vid' (-EINVAL
 * unless 1-4094) into '*out'. */
int vsw_port_get_counters(const struct vsw_bridge *br, uint16_t port_no,
			  struct vsw_counters *out);
int vsw_vlan_get_counters(const struct vsw_bridge *br, uint16_t vid, struct vsw_counters *out);
/* Sum of the drops of 'c' over every reason. */
uint64_t vsw_counters_rx_dropped(const struct vsw_counters *c);
uint64_t vsw_counters_tx_dropped(const struct vsw_counters *c);

/* ---------------------------------------------- Forwarding database */

struct vsw_fdb_entry {
	uint8_t mac[VLAN_MAC_BYTES];
	uint16_t vid;
	uint16_t port_no;
	bool is_static;
	uint64_t age_ms; /* since its station was last seen; 0 if static */
};

struct vsw_fdb_stats {
	uint32_t entries;          /* now, static included */
	uint32_t static_entries;
	uint32_t capacity;
	uint64_t learned;          /* new entries learned */
	uint64_t moved;            /* stations seen on another port, moved */
	uint64_t expired;          /* aged out */
	uint64_t evicted_full;     /* evicted from the biggest learner: table full */
	uint64_t evicted_limit;    /* evicted from a port at its MAC limit */
	uint64_t static_conflicts; /* a static station's MAC on another port */
	uint64_t no_space;         /* not learned: table full of static entries */
};

/* One port's share of the forwarding database.  A port that sources frames
 * from ever new MACs loses its own oldest entries, to its limit or, with the
 * table full, as the biggest learner; these say how many it lost. */
struct vsw_port_fdb_stats {
	uint32_t entries;       /* learned entries it holds now */
	uint32_t limit;         /* the most it may hold (the capacity if no limit) */
	uint64_t learned;       /* new stations learned on it, and moved to it */
	uint64_t evicted_limit; /* its entries evicted to keep its MAC limit */
	uint64_t evicted_full;  /* its entries evicted because the table was full */
};

/* Adds or replaces the entry for ('vid', 'mac') with a static one on
 * 'port_no': it never ages, moves or is evicted.  Returns 0; -ENODEV; -EINVAL
 * for a bad VID, a multicast or zero 'mac', or a port not in 'vid';
 * -ENOSPC if the table holds only static entries. */
int vsw_fdb_add_static(struct vsw_bridge *br, uint16_t vid, const uint8_t *mac, uint16_t port_no);
/* Removes the entry for ('vid', 'mac'), static or learned.  Returns 0 or
 * -ENOENT. */
int vsw_fdb_del(struct vsw_bridge *br, uint16_t vid, const uint8_t *mac);
/* Removes the entries on 'port_no' (VSW_PORT_NONE: any port) in 'vid' (0:
 * any VLAN), static ones only if 'statics'; returns how many went. */
uint32_t vsw_fdb_flush(struct vsw_bridge *br, uint16_t port_no, uint16_t vid, bool statics);
/* Calls 'cb' for each live entry at 'now_ms' in no particular order, and
 * stops at and returns the first non-zero value it returns; else 0.  'cb'
 * must not call into the bridge. */
int vsw_fdb_dump(const struct vsw_bridge *br, uint64_t now_ms,
		 int (*cb)(const struct vsw_fdb_entry *entry, void *arg), void *arg);
/* The port 'mac' lives on in 'vid' at 'now_ms', or -ENOENT. */
int vsw_fdb_lookup(const struct vsw_bridge *br, uint16_t vid, const uint8_t *mac,
		   uint64_t now_ms);
void vsw_fdb_get_stats(const struct vsw_bridge *br, struct vsw_fdb_stats *stats);
/* Copies a port's share into '*stats'.  Returns 0 or -ENODEV.  Counting
 * starts when the port is added. */
int vsw_port_get_fdb_stats(const struct vsw_bridge *br, uint16_t port_no,
			   struct vsw_port_fdb_stats *stats);

#endif
