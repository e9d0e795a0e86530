/* SPDX-License-Identifier: MIT */
/* vswitch-dp.h: the switch's DPDK datapath.  It owns the bridges (the core
 * of vswitch.h), opens their ports through the port providers, and runs one
 * datapath thread that receives bursts, asks the core where each frame
 * goes, edits tags, copies only when outputs differ, and sends.
 *
 * Event mode (the default) adapts to the load: it spins while a 100 us
 * window brings a full burst, naps between rounds below that (100 us,
 * doubling up to 400 us while naps gather less than a burst), and
 * after 1 ms without a frame sleeps in epoll on every queue's wake-up
 * descriptor (vhost-user kick eventfds, tap descriptors, an uplink's
 * packet socket) with guest notifications enabled only while it sleeps,
 * so an idle switch costs one wake-up a second (MAC aging).  Poll mode
 * spins on one core.  docs/vswitch.md says why.
 *
 * The control thread (vswitchd's RPC server) calls everything here.  Each
 * call takes the datapath's lock, which the datapath thread holds while it
 * works on a burst; reads of bridge state go through vsw_dp_lock() and
 * vsw_dp_bridge(), then the core's own calls (vsw_port_get_counters(),
 * vsw_fdb_dump(), ...).  The EAL must be initialised first.
 *
 * Functions return 0 or a negative errno with a sentence in 'err'.
 */
#ifndef VSWITCH_DP_H
#define VSWITCH_DP_H

#include <stdbool.h>
#include <stdint.h>

#include "vlan.h"
#include "vswitch.h"

struct errmsg;
struct vsw_dp;

struct vsw_dp_opts {
	bool poll;          /* busy-poll instead of sleeping */
	int poll_cpu;       /* poll mode: pin the datapath thread; -1: no */
	uint32_t n_mbufs;   /* packet buffers; 0: 16383 */
};

void vsw_dp_opts_init(struct vsw_dp_opts *opts);
/* Makes the packet pool and starts the datapath thread. */
int vsw_dp_create(const struct vsw_dp_opts *opts, struct vsw_dp **dpp, struct errmsg *err);
/* Stops the thread, closes every port, frees everything (NULL: no-op). */
void vsw_dp_destroy(struct vsw_dp *dp);

int vsw_dp_bridge_add(struct vsw_dp *dp, const struct vsw_bridge_opts *opts, struct errmsg *err);
/* Removes a bridge with its ports; -ENODEV if there is none. */
int vsw_dp_bridge_del(struct vsw_dp *dp, const char *name, struct errmsg *err);

struct vsw_dp_port_config {
	const char *name;           /* unique among all bridges */
	const char *type;           /* a provider: vhost-user, vhost-user-client,
				     * host, uplink */
	const char *path;           /* socket (vhost-user) or interface */
	uint16_t queues;            /* vhost-user: the most queue pairs polled
				     * (those the guest sets up); 0: 8 */
	uint32_t mtu_bytes;         /* 0: 1500; at most 9000 */
	uint32_t mac_limit;         /* 0: the bridge's */
	struct vlan_port_opts vlan;
};

void vsw_dp_port_config_init(struct vsw_dp_port_config *cfg);
/* Opens the port's device and adds it to 'bridge'.  -ENODEV: no such
 * bridge; -EEXIST: the name is taken; -EINVAL: a bad setting; the
 * provider's errors (-EADDRINUSE for a socket in use, -EPERM, ...). */
int vsw_dp_port_add(struct vsw_dp *dp, const char *bridge, const struct vsw_dp_port_config *cfg,
		    uint16_t *port_nop, struct errmsg *err);
/* Removes a port and closes its device (a server socket file goes). */
int vsw_dp_port_del(struct vsw_dp *dp, const char *port, struct errmsg *err);
int vsw_dp_port_set_vlan(struct vsw_dp *dp, const char *port, const struct vlan_port_opts *vlan,
			 struct errmsg *err);
int vsw_dp_port_set_mac_limit(struct vsw_dp *dp, const char *port, uint32_t mac_limit,
			      struct errmsg *err);

/* Starts writing every frame the port receives and sends to a pcap file,
 * until 'max_frames' (0: no limit) or 'seconds' (0: no limit) or
 * vsw_dp_capture_stop().  -EBUSY if the port already captures. */
int vsw_dp_capture_start(struct vsw_dp *dp, const char *port, const char *file,
			 uint64_t max_frames, uint32_t seconds, struct errmsg *err);
/* Stops it and reports the frames written; for a capture that already
 * ended by itself, reports it (once).  -ENOENT if there is neither. */
int vsw_dp_capture_stop(struct vsw_dp *dp, const char *port, uint64_t *framesp,
			struct errmsg *err);

/* ------------------------------------------------ Reading, under lock */

void vsw_dp_lock(struct vsw_dp *dp);
void vsw_dp_unlock(struct vsw_dp *dp);
/* The clock the datapath gives the core, in ms: the TSC once a datapath
 * exists (monotonic, any epoch), CLOCK_MONOTONIC before. */
uint64_t vsw_dp_now_ms(void);
bool vsw_dp_polling(const struct vsw_dp *dp);

struct vsw_dp_bridge_info {
	const char *name;
	struct vsw_bridge *bridge;
	uint32_t mac_aging_s;
	uint32_t mac_capacity;
};
/* The bridges in the order they were added: index 0, 1, ... until
 * -ENOENT. */
int vsw_dp_bridge_at(struct vsw_dp *dp, unsigned int index, struct vsw_dp_bridge_info *info);
int vsw_dp_bridge_find(struct vsw_dp *dp, const char *name, struct vsw_dp_bridge_info *info);

/* A port's own counters, as its device sees them (the switch's view per
 * port and VLAN is struct vsw_counters in vswitch.h). */
struct vsw_port_stats {
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t rx_dropped; /* lost before the switch saw them: no buffers,
			      * a guest ring the datapath did not drain */
	uint64_t rx_errors;  /* malformed descriptors, oversized frames */
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t tx_dropped; /* given to the device but not sent: a full
			      * guest ring, no guest */
	uint64_t tx_errors;
};

struct vsw_dp_port_info {
	const char *bridge;
	uint16_t port_no;
	const char *type;
	const char *path;
	uint16_t queues;
	uint32_t mtu_bytes;
	uint32_t mac_limit;
	bool link_up;
	bool capturing;             /* a capture runs */
	uint64_t captured;          /* frames written by the running capture,
				     * or by one that ended by itself */
	const char *capture_file;   /* NULL if neither */
	struct vsw_port_stats device;
};
/* Strings borrowed until the lock is released. */
int vsw_dp_port_info(struct vsw_dp *dp, const char *port, struct vsw_dp_port_info *info);

#endif
