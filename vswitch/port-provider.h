/* SPDX-License-Identifier: MIT */
/* port-provider.h: the plug-in interface for port types, after Open
 * vSwitch's lib/netdev-provider.h.  Each type (vhost-user server and client,
 * host tap, uplink onto a kernel interface) fills in one struct
 * vsw_port_class; the datapath opens ports through it, moves packets with
 * rx_burst/tx_burst, and hands each received burst to vsw_forward_burst()
 * (vswitch.h), whose port numbers and tx contexts it maps to the devices
 * opened here.  The switch core never calls a provider.
 *
 * Packets are DPDK mbufs, declared but not defined here, so this header
 * builds without DPDK; only the providers and the datapath look inside.
 *
 * Threads: open and close run on the control thread.  rx_burst, tx_burst
 * and rx_notify on one queue run on one datapath thread at a time (queues
 * are the unit of parallelism).  get_stats and link_up may run on any
 * thread concurrently with the datapath, so providers keep counters that
 * can be read while they change (per-queue, or atomic).
 *
 * Errors are negative errnos; 'err' takes one sentence naming the port.
 */
#ifndef VSW_PORT_PROVIDER_H
#define VSW_PORT_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "vswitch-dp.h"

struct errmsg;
struct rte_mbuf;
struct rte_mempool;

/* A port's own counters (struct vsw_port_stats) are declared in
 * vswitch-dp.h, which shows them to the control thread. */

/* What the datapath asks a provider to open.  Types ignore what they have
 * no use for. */
struct vsw_port_params {
	const char *name;       /* the switch's port name, for messages */
	const char *path;       /* vhost-user: the socket path; tap: the
				 * interface to create; uplink: the kernel
				 * interface (or device) to attach to */
	uint16_t n_rxq;         /* queues wanted, >= 1; a device may give fewer */
	uint16_t n_txq;
	uint32_t mtu_bytes;     /* largest payload, 9000 for jumbo frames;
				 * 0: 1500 */
	const uint8_t *mac;     /* 6 bytes for devices with an address of their
				 * own (tap); NULL: the device's choice */
	struct rte_mempool *mempool; /* where rx_burst takes its mbufs */

	/* The datapath's hooks for devices whose state changes on a thread of
	 * their own (a guest connecting to a vhost-user socket).  'quiesce'
	 * returns once no datapath thread is inside rx_burst/tx_burst of any
	 * port, so a provider can retire an old device handle before reusing
	 * its number; 'changed' tells the datapath to ask wait_fd() and
	 * link_up() again.  Both may be NULL for types that never need them;
	 * neither may be called from a context the datapath could be waiting
	 * on. */
	void (*quiesce)(void *hook_ctx);
	void (*changed)(void *hook_ctx);
	void *hook_ctx;
};

/* The base of every open port: providers embed it as the first member of
 * their own struct and convert back with a cast. */
struct vsw_portdev {
	const struct vsw_port_class *pclass;
	/* Queues in use, set by open().  A vhost-user provider changes them
	 * on rte_vhost's thread as a guest sets up queues, so the datapath
	 * reads them afresh where it uses them and copes with a change
	 * between two reads. */
	uint16_t n_rxq;
	uint16_t n_txq;
};

struct vsw_port_class {
	/* The type tag, as in vsw_port_opts.type and in vswitchctl: "vhost-user"
	 * (the switch listens), "vhost-user-client" (the switch connects),
	 * "host" (a tap device), "uplink". */
	const char *type;

	/* Opens a port of this type and stores it, with 'pclass', n_rxq and
	 * n_txq set, in '*devp'.  A vhost-user port opens before its guest
	 * connects: until then it receives nothing and tx_burst sends nothing
	 * (client ports keep reconnecting, server ports keep listening).
	 * Returns 0, or a negative errno with a sentence in 'err'. */
	int (*open)(const struct vsw_port_params *params, struct vsw_portdev **devp,
		    struct errmsg *err);

	/* Closes 'dev' and frees it; packets it still holds are freed.  Never
	 * called while a datapath thread may still use the port. */
	void (*close)(struct vsw_portdev *dev);

	/* Receives up to 'n_max' frames from 'queue' into 'pkts'; returns how
	 * many (0 when idle or disconnected).  The caller owns them.  Never
	 * blocks. */
	uint16_t (*rx_burst)(struct vsw_portdev *dev, uint16_t queue, struct rte_mbuf **pkts,
			     uint16_t n_max);

	/* Sends 'n' frames on 'queue' (< n_txq) and returns how many went.
	 * Takes every one of them either way: the unsent are freed and
	 * counted in tx_dropped, and the caller counts them with
	 * vsw_port_count_tx_failed().  The datapath picks the queue by flow
	 * (flow-hash.h); a provider whose peer has disabled that queue sends
	 * on an enabled one instead (vsw_queue_remap), never drops for it.
	 * Never blocks. */
	uint16_t (*tx_burst)(struct vsw_portdev *dev, uint16_t queue, struct rte_mbuf **pkts,
			     uint16_t n);

	/* Copies the device's counters into '*stats'.  Returns 0 or a
	 * negative errno. */
	int (*get_stats)(const struct vsw_portdev *dev, struct vsw_port_stats *stats);

	/* True if frames can flow: the guest is connected, the link up. */
	bool (*link_up)(const struct vsw_portdev *dev);

	/* Event mode, instead of busy polling.  May be NULL for a type that
	 * only polls.  Returns a descriptor that becomes readable when 'queue'
	 * has frames (vhost-user: the queue's kick eventfd; tap: the tap fd),
	 * or -EAGAIN while there is none yet (a guest not connected: ask again
	 * after link_up turns true).  The provider owns the descriptor; it may
	 * change when a guest reconnects. */
	int (*wait_fd)(struct vsw_portdev *dev, uint16_t queue);

	/* Asks the other side to signal wait_fd() for new frames on 'queue'
	 * ('enable'), or to stop because the datapath polls.  May be NULL if
	 * the descriptor always signals (tap).  Returns 0 or a negative
	 * errno.  The datapath enables, checks rx_burst once more, then
	 * sleeps, so that no frame arriving in between is missed. */
	int (*rx_notify)(struct vsw_portdev *dev, uint16_t queue, bool enable);
};

/* VSW_PORT_MAX_QUEUES and the MTU limits are in vswitch-limits.h. */

/* The providers built with DPDK (port-vhost.c, port-tap.c, port-uplink.c). */
extern const struct vsw_port_class vsw_port_class_vhost_server;
extern const struct vsw_port_class vsw_port_class_vhost_client;
extern const struct vsw_port_class vsw_port_class_host;
extern const struct vsw_port_class vsw_port_class_uplink;

/* The class whose type tag is 'type', or NULL. */
const struct vsw_port_class *vsw_port_class_find(const char *type);

#endif
