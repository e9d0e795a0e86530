/* SPDX-License-Identifier: MIT */
/* port-vhost.c: vhost-user ports on DPDK's rte_vhost, with its built-in
 * virtio-net backend doing the ring work.  Two types share this code:
 * "vhost-user", where the switch listens on the socket and QEMU connects,
 * and "vhost-user-client", where QEMU listens and the switch connects and
 * keeps reconnecting every second (rte_vhost's reconnect thread), so that
 * either side can restart without the other noticing more than a pause.
 *
 * A guest appears and goes on rte_vhost's own thread (new_device,
 * destroy_device).  The port publishes the device id ('vid') in an atomic
 * the datapath reads once per burst.  destroy_device withdraws it and then
 * waits for the datapath to pass between rounds (the 'quiesce' hook)
 * before it returns: rte_vhost frees the device, and may give its number to
 * the next guest to connect (to this port or any other), only after
 * destroy_device returns, so by then no burst that read the old id is
 * still running, and none can start.  Waiting there is safe because
 * rte_vhost 22.11 calls destroy_device with no queue lock held (its message
 * handler leaves GET_VRING_BASE and RESET_OWNER unlocked for exactly this,
 * "destroy_device waits for queues to be inactive"; a disconnect and
 * rte_vhost_driver_unregister hold none either), so the datapath, which
 * may spin on a queue lock inside a burst, is never waiting for this
 * thread.  docs/vswitch.md, "Locking", has the whole argument.
 *
 * Multiqueue: the guest enables queue pairs one by one
 * (vring_state_changed), maybe fewer than it set up.  The port keeps which
 * receive rings of the guest are ready in 'rxq_ready', and tx_burst moves
 * a queue the guest has not enabled onto one it has (vsw_queue_remap), so
 * the datapath can spread frames over n_txq queues by flow without knowing
 * the guest's choice.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_net.h>
#include <rte_mbuf.h>
#include <rte_vhost.h>

#include "errmsg.h"
#include "flow-hash.h"
#include "port-provider.h"
#include "port-stats.h"
#include "rpc.h"

/* A guest's transmit ring (our receive side) of queue pair q is vring
 * 2q+1, its receive ring 2q: virtio-net's numbering. */
#define GUEST_TX_VRING(q) ((uint16_t)(2 * (q) + 1))
#define GUEST_RX_VRING(q) ((uint16_t)(2 * (q)))

struct vhost_port {
	struct vsw_portdev base; /* first: the datapath casts */
	char name[64];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool client;
	uint16_t max_queues;       /* queue pairs polled at most */
	atomic_int vid;            /* -1: no guest */
	/* Bit q: the guest's receive ring of queue pair q (q < max_queues) is
	 * ready, as rte_vhost last said of device 'ready_vid' (ports_lock).
	 * Read by tx_burst once per burst. */
	atomic_uint rxq_ready;
	int ready_vid;
	struct rte_mempool *mempool;
	void (*quiesce)(void *hook_ctx);
	void (*changed)(void *hook_ctx);
	void *hook_ctx;
	struct vsw_port_counters counters;
	struct vhost_port *next; /* in 'ports', for the callbacks */
};

/* The callbacks get a device id, from which rte_vhost gives the socket
 * path: this list maps it back to the port.  Short, so a list. */
static pthread_mutex_t ports_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vhost_port *ports;

static struct vhost_port *port_by_vid(int vid)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct vhost_port *p;

	if (rte_vhost_get_ifname(vid, path, sizeof(path)) != 0) {
		return NULL;
	}
	for (p = ports; p; p = p->next) {
		if (strcmp(p->path, path) == 0) {
			return p;
		}
	}
	return NULL;
}

/* Starts tracking the rings of device 'vid' on 'p' (ports_lock held). */
static void track_device(struct vhost_port *p, int vid)
{
	if (p->ready_vid != vid) {
		p->ready_vid = vid;
		atomic_store(&p->rxq_ready, 0);
	}
}

/* Sets the queues the datapath polls and spreads over from the rings the
 * guest set up (a guest uses as many pairs as it has vCPUs, up to what
 * QEMU's queues= offers), within our cap.  Returns true if they changed.
 * The datapath may use the old counts for one round: rx_burst checks the
 * ring exists, tx_burst remaps a queue not enabled. */
static bool set_queue_counts(struct vhost_port *p, int vid)
{
	uint16_t n_vrings = rte_vhost_get_vring_num(vid);
	uint16_t pairs = n_vrings / 2 < p->max_queues ? n_vrings / 2 : p->max_queues;

	if (pairs == 0) {
		pairs = 1;
	}
	if (pairs == p->base.n_rxq) {
		return false;
	}
	p->base.n_rxq = pairs;
	p->base.n_txq = pairs;
	return true;
}

static int on_new_device(int vid)
{
	struct vhost_port *p;
	uint16_t i, n_vrings = rte_vhost_get_vring_num(vid);

	pthread_mutex_lock(&ports_lock);
	p = port_by_vid(vid);
	if (!p) {
		pthread_mutex_unlock(&ports_lock);
		return -1;
	}
	/* Interrupts from the guest stay off until the datapath sleeps. */
	for (i = 0; i < n_vrings; i++) {
		rte_vhost_enable_guest_notification(vid, i, 0);
	}
	/* No wait for the datapath here: every burst that could hold this
	 * number from an earlier device ended before that device's
	 * destroy_device returned. */
	track_device(p, vid);
	set_queue_counts(p, vid);
	atomic_store(&p->vid, vid);
	if (p->changed) {
		p->changed(p->hook_ctx);
	}
	pthread_mutex_unlock(&ports_lock);
	return 0;
}

/* rte_vhost says ring 'vring' of 'vid' became ready for frames or stopped
 * being so.  Called with the device's queue locks held (and maybe before
 * new_device): it must not wait for the datapath. */
static int on_vring_state_changed(int vid, uint16_t vring, int enable)
{
	struct vhost_port *p;

	pthread_mutex_lock(&ports_lock);
	p = port_by_vid(vid);
	if (p) {
		track_device(p, vid);
		/* Even rings are the guest's receive rings: our transmit side. */
		if (vring % 2 == 0 && vring / 2 < p->max_queues) {
			unsigned int bit = 1u << (vring / 2);

			if (enable) {
				atomic_fetch_or(&p->rxq_ready, bit);
			} else {
				atomic_fetch_and(&p->rxq_ready, ~bit);
			}
		}
		if (atomic_load(&p->vid) == vid && set_queue_counts(p, vid) && p->changed) {
			p->changed(p->hook_ctx);
		}
	}
	pthread_mutex_unlock(&ports_lock);
	return 0;
}

static void on_destroy_device(int vid)
{
	struct vhost_port *p;

	pthread_mutex_lock(&ports_lock);
	p = port_by_vid(vid);
	if (p && atomic_load(&p->vid) == vid) {
		atomic_store(&p->vid, -1);
		if (p->changed) {
			p->changed(p->hook_ctx);
		}
	}
	if (p && p->ready_vid == vid) {
		p->ready_vid = -1;
		atomic_store(&p->rxq_ready, 0);
	}
	pthread_mutex_unlock(&ports_lock);
	/* Closes the race of a burst that read 'vid' before it was withdrawn
	 * (file comment): rte_vhost frees the device and may reuse its
	 * number once this returns.  Waited for even when 'vid' was no longer
	 * the published one (a second connection to a server socket replaced
	 * it), since a burst may have read it before that.  'p' stays: closing
	 * the port unregisters the socket first, and that waits for the
	 * callbacks or makes this one.  ports_lock is released first, as the
	 * control thread takes the datapath's lock and ports_lock the other
	 * way round. */
	if (p && p->quiesce) {
		p->quiesce(p->hook_ctx);
	}
}

static const struct rte_vhost_device_ops vhost_ops = {
	.new_device = on_new_device,
	.destroy_device = on_destroy_device,
	.vring_state_changed = on_vring_state_changed,
};

/* What the guest may negotiate.  Offloads go, as Open vSwitch does by
 * default: a guest's 64 KiB TSO frame or partial checksum would reach
 * tap ports and guests that never agreed to take them.  Mergeable receive
 * buffers, multiqueue and the control queue stay; the same set is offered
 * on every reconnect. */
static const uint64_t disabled_features =
	(1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
	(1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) |
	(1ULL << VIRTIO_NET_F_HOST_ECN) | (1ULL << VIRTIO_NET_F_HOST_UFO) |
	(1ULL << VIRTIO_NET_F_GUEST_TSO4) | (1ULL << VIRTIO_NET_F_GUEST_TSO6) |
	(1ULL << VIRTIO_NET_F_GUEST_ECN) | (1ULL << VIRTIO_NET_F_GUEST_UFO);

static bool path_taken(const char *path)
{
	struct vhost_port *p;

	for (p = ports; p; p = p->next) {
		if (strcmp(p->path, path) == 0) {
			return true;
		}
	}
	return false;
}

static int vhost_open(const struct vsw_port_params *params, bool client,
		      struct vsw_portdev **devp, struct errmsg *err)
{
	struct vhost_port *p;
	uint16_t queues = params->n_rxq ? params->n_rxq : VSW_PORT_MAX_QUEUES;
	int ret;

	if (!params->path || !params->path[0]) {
		errmsg_set(err, "port %s: a vhost-user port needs a socket path", params->name);
		return -EINVAL;
	}
	if (strlen(params->path) >= sizeof(p->path)) {
		errmsg_set(err, "port %s: socket path longer than %zu bytes", params->name,
			   sizeof(p->path) - 1);
		return -ENAMETOOLONG;
	}
	if (queues > VSW_PORT_MAX_QUEUES) {
		errmsg_set(err, "port %s: at most %d queues", params->name, VSW_PORT_MAX_QUEUES);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		return -ENOMEM;
	}
	p->base.n_rxq = 1; /* until a guest says how many it uses */
	p->base.n_txq = 1;
	p->max_queues = queues;
	snprintf(p->name, sizeof(p->name), "%s", params->name);
	memcpy(p->path, params->path, strlen(params->path) + 1);
	p->client = client;
	atomic_init(&p->vid, -1);
	atomic_init(&p->rxq_ready, 0);
	p->ready_vid = -1;
	p->mempool = params->mempool;
	p->quiesce = params->quiesce;
	p->changed = params->changed;
	p->hook_ctx = params->hook_ctx;

	pthread_mutex_lock(&ports_lock);
	if (path_taken(p->path)) {
		pthread_mutex_unlock(&ports_lock);
		errmsg_set(err, "port %s: socket %s is already used by another port", p->name,
			   p->path);
		free(p);
		return -EADDRINUSE;
	}
	/* rte_vhost's bind() fails on any existing file: a socket a killed
	 * switch left goes, a live one or anything else is refused. */
	ret = 0;
	if (!client) {
		char what[VSW_NAME_BYTES + 16];

		snprintf(what, sizeof(what), "port %s: socket", p->name);
		ret = rpc_unix_claim(p->path, what, err);
	}
	if (ret == 0) {
		p->next = ports;
		ports = p;
	}
	pthread_mutex_unlock(&ports_lock);
	if (ret < 0) {
		free(p);
		return ret;
	}

	ret = rte_vhost_driver_register(p->path, client ? RTE_VHOST_USER_CLIENT : 0);
	if (ret == 0 && rte_vhost_driver_disable_features(p->path, disabled_features) != 0) {
		ret = -1;
	}
	if (ret == 0 && rte_vhost_driver_callback_register(p->path, &vhost_ops) != 0) {
		ret = -1;
	}
	if (ret == 0 && rte_vhost_driver_start(p->path) != 0) {
		ret = -1;
	}
	if (ret != 0) {
		/* rte_vhost logs the reason; bind() failing is the usual one. */
		errmsg_set(err, "port %s: cannot %s vhost-user socket %s (see the log)", p->name,
			   client ? "connect to" : "listen on", p->path);
		rte_vhost_driver_unregister(p->path);
		p->base.pclass = NULL;
		goto fail;
	}
	p->base.pclass = client ? &vsw_port_class_vhost_client : &vsw_port_class_vhost_server;
	*devp = &p->base;
	return 0;

fail:
	pthread_mutex_lock(&ports_lock);
	for (struct vhost_port **pp = &ports; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&ports_lock);
	free(p);
	return -EIO;
}

static int vhost_server_open(const struct vsw_port_params *params, struct vsw_portdev **devp,
			     struct errmsg *err)
{
	return vhost_open(params, false, devp, err);
}

static int vhost_client_open(const struct vsw_port_params *params, struct vsw_portdev **devp,
			     struct errmsg *err)
{
	return vhost_open(params, true, devp, err);
}

static void vhost_close(struct vsw_portdev *dev)
{
	struct vhost_port *p = (struct vhost_port *)dev;

	/* Destroys a connected device through on_destroy_device, which must
	 * still find the port: unlink it from the list only afterwards.
	 * rte_vhost removes a server's socket file itself. */
	rte_vhost_driver_unregister(p->path);
	pthread_mutex_lock(&ports_lock);
	for (struct vhost_port **pp = &ports; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&ports_lock);
	free(p);
}

static uint16_t vhost_rx_burst(struct vsw_portdev *dev, uint16_t queue, struct rte_mbuf **pkts,
			       uint16_t n_max)
{
	struct vhost_port *p = (struct vhost_port *)dev;
	int vid = atomic_load_explicit(&p->vid, memory_order_acquire);
	uint16_t n;

	if (vid < 0 || GUEST_TX_VRING(queue) >= rte_vhost_get_vring_num(vid)) {
		return 0;
	}
	n = rte_vhost_dequeue_burst(vid, GUEST_TX_VRING(queue), p->mempool, pkts, n_max);
	vsw_port_counters_rx(&p->counters, pkts, n);
	return n;
}

static uint16_t vhost_tx_burst(struct vsw_portdev *dev, uint16_t queue, struct rte_mbuf **pkts,
			       uint16_t n)
{
	struct vhost_port *p = (struct vhost_port *)dev;
	int vid = atomic_load_explicit(&p->vid, memory_order_acquire);
	uint16_t sent = 0;

	if (vid >= 0) {
		/* A queue the guest has not enabled would drop them all. */
		queue = vsw_queue_remap(atomic_load_explicit(&p->rxq_ready, memory_order_relaxed),
					queue);
		/* rte_vhost copies into the guest's buffers and leaves the
		 * mbufs to us, sent or not. */
		sent = rte_vhost_enqueue_burst(vid, GUEST_RX_VRING(queue), pkts, n);
	}
	vsw_port_counters_tx(&p->counters, pkts, n, sent);
	rte_pktmbuf_free_bulk(pkts, n);
	return sent;
}

static int vhost_get_stats(const struct vsw_portdev *dev, struct vsw_port_stats *stats)
{
	const struct vhost_port *p = (const struct vhost_port *)dev;

	vsw_port_counters_read(&p->counters, stats);
	return 0;
}

static bool vhost_link_up(const struct vsw_portdev *dev)
{
	const struct vhost_port *p = (const struct vhost_port *)dev;

	return atomic_load(&((struct vhost_port *)p)->vid) >= 0;
}

static int vhost_wait_fd(struct vsw_portdev *dev, uint16_t queue)
{
	struct vhost_port *p = (struct vhost_port *)dev;
	struct rte_vhost_vring vring;
	int vid = atomic_load(&p->vid);

	if (vid < 0 || GUEST_TX_VRING(queue) >= rte_vhost_get_vring_num(vid)) {
		return -EAGAIN;
	}
	if (rte_vhost_get_vhost_vring(vid, GUEST_TX_VRING(queue), &vring) != 0 ||
	    vring.kickfd < 0) {
		return -EAGAIN;
	}
	return vring.kickfd;
}

static int vhost_rx_notify(struct vsw_portdev *dev, uint16_t queue, bool enable)
{
	struct vhost_port *p = (struct vhost_port *)dev;
	int vid = atomic_load(&p->vid);

	if (vid < 0 || GUEST_TX_VRING(queue) >= rte_vhost_get_vring_num(vid)) {
		return -EAGAIN;
	}
	return rte_vhost_enable_guest_notification(vid, GUEST_TX_VRING(queue), enable) == 0
		       ? 0
		       : -EIO;
}

const struct vsw_port_class vsw_port_class_vhost_server = {
	.type = "vhost-user",
	.open = vhost_server_open,
	.close = vhost_close,
	.rx_burst = vhost_rx_burst,
	.tx_burst = vhost_tx_burst,
	.get_stats = vhost_get_stats,
	.link_up = vhost_link_up,
	.wait_fd = vhost_wait_fd,
	.rx_notify = vhost_rx_notify,
};

const struct vsw_port_class vsw_port_class_vhost_client = {
	.type = "vhost-user-client",
	.open = vhost_client_open,
	.close = vhost_close,
	.rx_burst = vhost_rx_burst,
	.tx_burst = vhost_tx_burst,
	.get_stats = vhost_get_stats,
	.link_up = vhost_link_up,
	.wait_fd = vhost_wait_fd,
	.rx_notify = vhost_rx_notify,
};
