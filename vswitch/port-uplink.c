/* SPDX-License-Identifier: MIT */
/* port-uplink.c: "uplink" ports onto an existing kernel interface (a NIC,
 * a bond, one end of a veth pair) through DPDK's af_packet PMD, which maps
 * a PACKET_MMAP ring of that interface.
 *
 * The PMD has no receive interrupts, so for event mode the port opens a
 * second packet socket on the interface that keeps one byte of each frame
 * the interface receives (a four-instruction BPF filter, which also skips
 * the frames we send ourselves).  Its only job is to become readable: the
 * datapath sleeps on it edge-triggered, and rx_notify(true) empties it
 * just before, so a frame arriving later raises a new edge.
 */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "errmsg.h"
#include "port-provider.h"
#include "port-stats.h"

#define UPLINK_RING_DESCS 1024

struct uplink_port {
	struct vsw_portdev base; /* first: the datapath casts */
	char name[64];
	char vdev[RTE_ETH_NAME_MAX_LEN];
	uint16_t port_id;
	int wake_fd;
	struct vsw_port_counters counters;
};

/* Accept the first byte of every frame not of type PACKET_OUTGOING. */
static int open_wake_socket(unsigned int ifindex)
{
	static struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = {.len = 4, .filter = code};
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = (int)ifindex,
	};
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));

	if (fd < 0) {
		return -errno;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

static int uplink_start(struct uplink_port *p, const struct vsw_port_params *params,
			struct errmsg *err)
{
	struct rte_eth_conf conf = {0};
	uint32_t mtu = params->mtu_bytes ? params->mtu_bytes : VSW_PORT_MTU_DEFAULT;
	int ret;

	conf.rxmode.mtu = mtu;
	ret = rte_eth_dev_configure(p->port_id, 1, 1, &conf);
	if (ret == 0) {
		ret = rte_eth_rx_queue_setup(p->port_id, 0, UPLINK_RING_DESCS, SOCKET_ID_ANY, NULL,
					     params->mempool);
	}
	if (ret == 0) {
		ret = rte_eth_tx_queue_setup(p->port_id, 0, UPLINK_RING_DESCS, SOCKET_ID_ANY,
					     NULL);
	}
	if (ret == 0) {
		ret = rte_eth_dev_start(p->port_id);
	}
	if (ret == 0) {
		/* A switch port takes every frame, not just its own address's. */
		ret = rte_eth_promiscuous_enable(p->port_id);
	}
	if (ret < 0) {
		errmsg_set(err, "port %s: cannot start af_packet on %s: %s", p->name,
			   params->path, strerror(-ret));
	}
	return ret;
}

static int uplink_open(const struct vsw_port_params *params, struct vsw_portdev **devp,
		       struct errmsg *err)
{
	char args[128];
	struct uplink_port *p;
	unsigned int ifindex;
	int ret;

	if (!params->path || !params->path[0]) {
		errmsg_set(err, "port %s: an uplink needs an interface name", params->name);
		return -EINVAL;
	}
	ifindex = if_nametoindex(params->path);
	if (ifindex == 0) {
		errmsg_set(err, "port %s: no interface named '%s'", params->name, params->path);
		return -ENODEV;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		return -ENOMEM;
	}
	p->base.pclass = &vsw_port_class_uplink;
	p->base.n_rxq = 1;
	p->base.n_txq = 1;
	snprintf(p->name, sizeof(p->name), "%s", params->name);
	/* vdev names start with the driver's; the interface makes it unique. */
	snprintf(p->vdev, sizeof(p->vdev), "net_af_packet_%s", params->path);
	snprintf(args, sizeof(args), "iface=%s,qpairs=1", params->path);
	p->wake_fd = open_wake_socket(ifindex);
	if (p->wake_fd < 0) {
		ret = p->wake_fd;
		errmsg_set(err, "port %s: cannot open a packet socket on %s: %s", p->name,
			   params->path, strerror(-ret));
		free(p);
		return ret;
	}
	ret = rte_eal_hotplug_add("vdev", p->vdev, args);
	if (ret < 0) {
		errmsg_set(err, "port %s: af_packet cannot attach to %s (see the log)", p->name,
			   params->path);
		goto fail_wake;
	}
	ret = rte_eth_dev_get_port_by_name(p->vdev, &p->port_id);
	if (ret == 0) {
		ret = uplink_start(p, params, err);
	}
	if (ret < 0) {
		rte_eal_hotplug_remove("vdev", p->vdev);
		goto fail_wake;
	}
	*devp = &p->base;
	return 0;

fail_wake:
	close(p->wake_fd);
	free(p);
	return ret < 0 ? ret : -EIO;
}

static void uplink_close(struct vsw_portdev *dev)
{
	struct uplink_port *p = (struct uplink_port *)dev;

	rte_eth_dev_stop(p->port_id);
	rte_eth_dev_close(p->port_id);
	rte_eal_hotplug_remove("vdev", p->vdev);
	close(p->wake_fd);
	free(p);
}

static uint16_t uplink_rx_burst(struct vsw_portdev *dev, uint16_t queue, struct rte_mbuf **pkts,
				uint16_t n_max)
{
	struct uplink_port *p = (struct uplink_port *)dev;
	uint16_t n = rte_eth_rx_burst(p->port_id, queue, pkts, n_max);

	vsw_port_counters_rx(&p->counters, pkts, n);
	return n;
}

static uint16_t uplink_tx_burst(struct vsw_portdev *dev, uint16_t queue, struct rte_mbuf **pkts,
				uint16_t n)
{
	struct uplink_port *p = (struct uplink_port *)dev;
	uint64_t bytes = 0;
	uint16_t i, sent;

	/* Sum before sending: the PMD owns (and may free) what it took. */
	for (i = 0; i < n; i++) {
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
	}
	sent = rte_eth_tx_burst(p->port_id, queue, pkts, n);
	for (i = sent; i < n; i++) {
		bytes -= rte_pktmbuf_pkt_len(pkts[i]);
	}
	vsw_counter_add(&p->counters.tx_packets, sent);
	vsw_counter_add(&p->counters.tx_bytes, bytes);
	if (sent < n) {
		vsw_counter_add(&p->counters.tx_dropped, n - sent);
		rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	}
	return sent;
}

static int uplink_get_stats(const struct vsw_portdev *dev, struct vsw_port_stats *stats)
{
	vsw_port_counters_read(&((const struct uplink_port *)dev)->counters, stats);
	return 0;
}

static bool uplink_link_up(const struct vsw_portdev *dev)
{
	struct rte_eth_link link;

	if (rte_eth_link_get_nowait(((const struct uplink_port *)dev)->port_id, &link) != 0) {
		return false;
	}
	return link.link_status == RTE_ETH_LINK_UP;
}

static int uplink_wait_fd(struct vsw_portdev *dev, uint16_t queue)
{
	return ((struct uplink_port *)dev)->wake_fd;
}

static int uplink_rx_notify(struct vsw_portdev *dev, uint16_t queue, bool enable)
{
	struct uplink_port *p = (struct uplink_port *)dev;
	uint8_t byte;

	if (enable) {
		while (recv(p->wake_fd, &byte, 1, MSG_DONTWAIT) >= 0) {
		}
	}
	return 0;
}

const struct vsw_port_class vsw_port_class_uplink = {
	.type = "uplink",
	.open = uplink_open,
	.close = uplink_close,
	.rx_burst = uplink_rx_burst,
	.tx_burst = uplink_tx_burst,
	.get_stats = uplink_get_stats,
	.link_up = uplink_link_up,
	.wait_fd = uplink_wait_fd,
	.rx_notify = uplink_rx_notify,
};

const struct vsw_port_class *vsw_port_class_find(const char *type)
{
	static const struct vsw_port_class *const classes[] = {
		&vsw_port_class_vhost_server,
		&vsw_port_class_vhost_client,
		&vsw_port_class_host,
		&vsw_port_class_uplink,
	};

	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (strcmp(classes[i]->type, type) == 0) {
			return classes[i];
		}
	}
	return NULL;
}
