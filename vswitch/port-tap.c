/* SPDX-License-Identifier: MIT */
/* port-tap.c: "host" ports, a tap interface on the host through which the
 * host's own stack (or its 802.1Q sub-interfaces, for a trunk) joins the
 * bridge.  libvlan creates the tap with the tun ioctl and sets its MTU and
 * state over netlink; frames move with plain read() and writev() on the
 * non-blocking descriptor, which is also what event mode sleeps on.  No
 * virtio-net header: offloads are off on every port, so frames are whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <rte_mbuf.h>

#include "errmsg.h"
#include "port-provider.h"
#include "port-stats.h"
#include "vlan.h"

/* A frame from the tap is at most the MTU plus a header and two tags;
 * anything up to 64 KiB is read whole so it can be counted and dropped. */
#define TAP_FRAME_MAX 65536u

struct tap_port {
	struct vsw_portdev base; /* first: the datapath casts */
	char name[64];
	char ifname[VLAN_IFNAME_BYTES];
	int fd;
	uint32_t frame_max; /* MTU + Ethernet header + two tags */
	struct rte_mempool *mempool;
	struct vsw_port_counters counters;
	uint8_t spill[TAP_FRAME_MAX]; /* what does not fit the first mbuf */
};

static int tap_configure(struct tap_port *p, uint32_t mtu, struct errmsg *err)
{
	struct vlan_nl *nl;
	int ret;

	ret = vlan_nl_open(&nl, err);
	if (ret < 0) {
		return ret;
	}
	ret = vlan_link_set_mtu(nl, p->ifname, mtu, err);
	if (ret == 0) {
		ret = vlan_link_set_up(nl, p->ifname, true, err);
	}
	vlan_nl_close(nl);
	return ret;
}

static int tap_open(const struct vsw_port_params *params, struct vsw_portdev **devp,
		    struct errmsg *err)
{
	struct vlan_tap_opts opts;
	struct tap_port *p;
	uint32_t mtu = params->mtu_bytes ? params->mtu_bytes : VSW_PORT_MTU_DEFAULT;
	const char *ifname = params->path && params->path[0] ? params->path : params->name;
	int ret, flags;

	if (strlen(ifname) >= VLAN_IFNAME_BYTES) {
		errmsg_set(err, "port %s: interface name '%s' longer than %d bytes", params->name,
			   ifname, VLAN_IFNAME_BYTES - 1);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		return -ENOMEM;
	}
	p->base.pclass = &vsw_port_class_host;
	p->base.n_rxq = 1;
	p->base.n_txq = 1;
	snprintf(p->name, sizeof(p->name), "%s", params->name);
	snprintf(p->ifname, sizeof(p->ifname), "%s", ifname);
	p->frame_max = mtu + VLAN_ETH_HDR_BYTES + 2 * VLAN_TAG_BYTES;
	p->mempool = params->mempool;

	vlan_tap_opts_init(&opts);
	opts.name = p->ifname;
	opts.mac = params->mac;
	ret = vlan_tap_create(&opts, &p->fd, err);
	if (ret < 0) {
		free(p);
		return ret;
	}
	flags = fcntl(p->fd, F_GETFL);
	if (flags < 0 || fcntl(p->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = tap_configure(p, mtu, err);
	if (ret < 0) {
		goto fail;
	}
	*devp = &p->base;
	return 0;

fail:
	close(p->fd); /* the device is not persistent: it goes with the fd */
	free(p);
	return ret;
}

static void tap_close(struct vsw_portdev *dev)
{
	struct tap_port *p = (struct tap_port *)dev;

	close(p->fd);
	free(p);
}

/* Puts the 'len' bytes read into 'm' and 'spill' into a chain of mbufs. */
static int tap_spill(struct tap_port *p, struct rte_mbuf *m, size_t len)
{
	size_t room = rte_pktmbuf_tailroom(m);
	size_t done = room;

	rte_pktmbuf_append(m, (uint16_t)room);
	while (done < len) {
		struct rte_mbuf *seg = rte_pktmbuf_alloc(p->mempool);
		size_t n;

		if (!seg) {
			return -ENOMEM;
		}
		n = RTE_MIN((size_t)rte_pktmbuf_tailroom(seg), len - done);
		memcpy(rte_pktmbuf_append(seg, (uint16_t)n), p->spill + (done - room), n);
		if (rte_pktmbuf_chain(m, seg) != 0) {
			rte_pktmbuf_free(seg);
			return -EOVERFLOW;
		}
		done += n;
	}
	return 0;
}

static uint16_t tap_rx_burst(struct vsw_portdev *dev, uint16_t queue, struct rte_mbuf **pkts,
			     uint16_t n_max)
{
	struct tap_port *p = (struct tap_port *)dev;
	uint16_t n = 0;

	while (n < n_max) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(p->mempool);
		struct iovec iov[2];
		ssize_t len;

		if (!m) {
			vsw_counter_add(&p->counters.rx_dropped, 1);
			break;
		}
		iov[0].iov_base = rte_pktmbuf_mtod(m, void *);
		iov[0].iov_len = rte_pktmbuf_tailroom(m);
		iov[1].iov_base = p->spill;
		iov[1].iov_len = sizeof(p->spill);
		len = readv(p->fd, iov, 2);
		if (len <= 0) {
			rte_pktmbuf_free(m);
			break;
		}
		if ((size_t)len > p->frame_max) {
			/* The host ignored our MTU (or GSO slipped through). */
			vsw_counter_add(&p->counters.rx_errors, 1);
			rte_pktmbuf_free(m);
			continue;
		}
		if ((size_t)len <= iov[0].iov_len) {
			rte_pktmbuf_append(m, (uint16_t)len);
		} else if (tap_spill(p, m, (size_t)len) < 0) {
			vsw_counter_add(&p->counters.rx_dropped, 1);
			rte_pktmbuf_free(m);
			continue;
		}
		pkts[n++] = m;
	}
	vsw_port_counters_rx(&p->counters, pkts, n);
	return n;
}

static uint16_t tap_tx_burst(struct vsw_portdev *dev, uint16_t queue, struct rte_mbuf **pkts,
			     uint16_t n)
{
	struct tap_port *p = (struct tap_port *)dev;
	uint16_t i, sent = 0;

	for (i = 0; i < n; i++) {
		struct iovec iov[16];
		struct rte_mbuf *seg;
		int cnt = 0;

		for (seg = pkts[i]; seg && cnt < 16; seg = seg->next) {
			iov[cnt].iov_base = rte_pktmbuf_mtod(seg, void *);
			iov[cnt].iov_len = rte_pktmbuf_data_len(seg);
			cnt++;
		}
		if (seg || writev(p->fd, iov, cnt) < 0) {
			/* EAGAIN: the host does not read fast enough. */
			continue;
		}
		/* Keep the sent ones first for the counters. */
		struct rte_mbuf *t = pkts[sent];
		pkts[sent++] = pkts[i];
		pkts[i] = t;
	}
	vsw_port_counters_tx(&p->counters, pkts, n, sent);
	rte_pktmbuf_free_bulk(pkts, n);
	return sent;
}

static int tap_get_stats(const struct vsw_portdev *dev, struct vsw_port_stats *stats)
{
	vsw_port_counters_read(&((const struct tap_port *)dev)->counters, stats);
	return 0;
}

static bool tap_link_up(const struct vsw_portdev *dev)
{
	return true;
}

static int tap_wait_fd(struct vsw_portdev *dev, uint16_t queue)
{
	return ((struct tap_port *)dev)->fd;
}

const struct vsw_port_class vsw_port_class_host = {
	.type = "host",
	.open = tap_open,
	.close = tap_close,
	.rx_burst = tap_rx_burst,
	.tx_burst = tap_tx_burst,
	.get_stats = tap_get_stats,
	.link_up = tap_link_up,
	.wait_fd = tap_wait_fd,
	.rx_notify = NULL,
};
