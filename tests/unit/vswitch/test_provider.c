/* SPDX-License-Identifier: MIT */
/* test_provider.c: shows that port-provider.h and vswitch.h are enough to
 * build a datapath.  A test port type keeps frames in memory rings (one side
 * plays the guest); a miniature datapath polls it, hands bursts to
 * vsw_forward_burst(), carries out the edits on copies, sends, reports tx
 * failures and captures a port to pcap.  The DPDK datapath will do the same
 * with real mbufs and vhost-user, tap and uplink providers. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "errmsg.h"
#include "frames.h"
#include "pcap.h"
#include "port-provider.h"
#include "vswitch.h"

/* The test's stand-in for DPDK's mbuf: one segment with headroom, as the
 * datapath's mempool would hand out (port-provider.h only declares it). */
#define MBUF_BYTES 9300
#define MBUF_HEADROOM 128
struct rte_mbuf {
	uint8_t buf[MBUF_BYTES];
	uint16_t data_off;
	uint32_t data_len;
};

static unsigned int mbufs_live; /* leak check */

static struct rte_mbuf *mbuf_alloc(void)
{
	struct rte_mbuf *m = malloc(sizeof(*m));

	assert_non_null(m);
	m->data_off = MBUF_HEADROOM;
	m->data_len = 0;
	mbufs_live++;
	return m;
}

static void mbuf_free(struct rte_mbuf *m)
{
	mbufs_live--;
	free(m);
}

static uint8_t *mbuf_data(struct rte_mbuf *m)
{
	return m->buf + m->data_off;
}

/* --- The test port type: memory rings --- */

#define RING_SLOTS 256

struct ring_dev {
	struct vsw_portdev base; /* first, as port-provider.h asks */
	struct rte_mbuf *rx[RING_SLOTS]; /* what the far side sent us */
	unsigned int rx_head, rx_n;
	struct rte_mbuf *tx[RING_SLOTS]; /* what the far side received */
	unsigned int tx_n;
	unsigned int tx_room;            /* frames the far side still takes */
	struct vsw_port_stats stats;
	int efd;
	bool notify;
	bool up;
};

static struct ring_dev *ring_of(const struct vsw_portdev *dev)
{
	return (struct ring_dev *)dev;
}

static int ring_open(const struct vsw_port_params *params, struct vsw_portdev **devp,
		     struct errmsg *err);

static void ring_close(struct vsw_portdev *dev)
{
	struct ring_dev *r = ring_of(dev);
	unsigned int i;

	for (i = 0; i < r->rx_n; i++) {
		mbuf_free(r->rx[(r->rx_head + i) % RING_SLOTS]);
	}
	for (i = 0; i < r->tx_n; i++) {
		mbuf_free(r->tx[i]);
	}
	close(r->efd);
	free(r);
}

static uint16_t ring_rx_burst(struct vsw_portdev *dev, uint16_t queue, struct rte_mbuf **pkts,
			      uint16_t n_max)
{
	struct ring_dev *r = ring_of(dev);
	uint16_t n = 0;

	assert_int_equal(queue, 0);
	while (n < n_max && r->rx_n > 0) {
		pkts[n] = r->rx[r->rx_head];
		r->stats.rx_packets++;
		r->stats.rx_bytes += pkts[n]->data_len;
		r->rx_head = (r->rx_head + 1) % RING_SLOTS;
		r->rx_n--;
		n++;
	}
	return n;
}

static uint16_t ring_tx_burst(struct vsw_portdev *dev, uint16_t queue, struct rte_mbuf **pkts,
			      uint16_t n)
{
	struct ring_dev *r = ring_of(dev);
	uint16_t sent = 0, i;

	for (i = 0; i < n; i++) {
		if (r->up && r->tx_room > 0 && r->tx_n < RING_SLOTS) {
			r->tx[r->tx_n++] = pkts[i];
			r->tx_room--;
			r->stats.tx_packets++;
			r->stats.tx_bytes += pkts[i]->data_len;
			sent++;
		} else {
			mbuf_free(pkts[i]); /* the provider owns all 'n' */
			r->stats.tx_dropped++;
		}
	}
	return sent;
}

static int ring_get_stats(const struct vsw_portdev *dev, struct vsw_port_stats *stats)
{
	*stats = ring_of(dev)->stats;
	return 0;
}

static bool ring_link_up(const struct vsw_portdev *dev)
{
	return ring_of(dev)->up;
}

static int ring_wait_fd(struct vsw_portdev *dev, uint16_t queue)
{
	struct ring_dev *r = ring_of(dev);

	return r->up ? r->efd : -EAGAIN;
}

static int ring_rx_notify(struct vsw_portdev *dev, uint16_t queue, bool enable)
{
	ring_of(dev)->notify = enable;
	return 0;
}

static const struct vsw_port_class ring_class = {
	.type = "test-ring",
	.open = ring_open,
	.close = ring_close,
	.rx_burst = ring_rx_burst,
	.tx_burst = ring_tx_burst,
	.get_stats = ring_get_stats,
	.link_up = ring_link_up,
	.wait_fd = ring_wait_fd,
	.rx_notify = ring_rx_notify,
};

static int ring_open(const struct vsw_port_params *params, struct vsw_portdev **devp,
		     struct errmsg *err)
{
	struct ring_dev *r;

	if (!params->name || params->n_rxq == 0 || params->n_txq == 0) {
		errmsg_set(err, "%s: needs a name and queues", params->name ? params->name : "?");
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		return -ENOMEM;
	}
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0) {
		free(r);
		return -errno;
	}
	r->base.pclass = &ring_class;
	r->base.n_rxq = 1; /* a device may give fewer queues than asked */
	r->base.n_txq = 1;
	r->tx_room = RING_SLOTS;
	r->up = true;
	*devp = &r->base;
	return 0;
}

/* The far side sends a frame to the switch. */
static void ring_inject(struct vsw_portdev *dev, const uint8_t *frame, size_t len)
{
	struct ring_dev *r = ring_of(dev);
	struct rte_mbuf *m = mbuf_alloc();
	uint64_t one = 1;

	assert_true(r->rx_n < RING_SLOTS);
	memcpy(mbuf_data(m), frame, len);
	m->data_len = (uint32_t)len;
	r->rx[(r->rx_head + r->rx_n) % RING_SLOTS] = m;
	r->rx_n++;
	if (r->notify) {
		assert_int_equal(write(r->efd, &one, sizeof(one)), sizeof(one));
	}
}

/* --- A miniature datapath --- */

#define DP_PORTS 4
#define BURST 32

struct dp_port {
	struct vsw_portdev *dev;
	uint16_t port_no;
	struct vsw_pcap *capture_rx; /* NULL: not captured */
	struct rte_mbuf *txq[BURST * DP_PORTS];
	uint16_t n_txq;
};

struct datapath {
	struct vsw_bridge *br;
	struct dp_port ports[DP_PORTS];
	unsigned int n_ports;
	unsigned int max_outputs;
	uint64_t now_ms;
};

static struct rte_mbuf *mbuf_copy(const struct rte_mbuf *m)
{
	struct rte_mbuf *c = mbuf_alloc();

	memcpy(mbuf_data(c), m->buf + m->data_off, m->data_len);
	c->data_len = m->data_len;
	return c;
}

/* Carries out one output on 'm' (the datapath's to consume) and queues it. */
static void dp_output(struct datapath *dp, const struct vsw_output *out, struct rte_mbuf *m)
{
	struct dp_port *to = out->tx_ctx;
	struct vlan_buf vb = {.base = m->buf, .head_bytes = m->data_off, .len_bytes = m->data_len,
			      .cap_bytes = sizeof(m->buf)};

	assert_int_equal(to->port_no, out->port_no);
	if (vsw_output_apply(out, &vb) < 0) {
		mbuf_free(m);
		vsw_port_count_tx_failed(dp->br, out->port_no, 1);
		return;
	}
	m->data_off = (uint16_t)vb.head_bytes;
	m->data_len = (uint32_t)vb.len_bytes;
	to->txq[to->n_txq++] = m;
}

/* The last output takes the frame itself; the others take copies. */
static void dp_fan_out(struct datapath *dp, struct rte_mbuf *m, const struct vsw_verdict *v,
		       const struct vsw_output *outs)
{
	uint16_t j;

	if (v->n_outputs == 0) {
		mbuf_free(m);
		return;
	}
	for (j = 0; j + 1 < v->n_outputs; j++) {
		dp_output(dp, &outs[v->first_output + j], mbuf_copy(m));
	}
	dp_output(dp, &outs[v->first_output + j], m);
}

static void dp_flush(struct datapath *dp)
{
	struct dp_port *p;
	uint16_t sent;
	unsigned int i;

	for (i = 0; i < dp->n_ports; i++) {
		p = &dp->ports[i];
		if (p->n_txq == 0) {
			continue;
		}
		sent = p->dev->pclass->tx_burst(p->dev, 0, p->txq, p->n_txq);
		if (sent < p->n_txq) {
			vsw_port_count_tx_failed(dp->br, p->port_no, p->n_txq - sent);
		}
		p->n_txq = 0;
	}
}

/* One poll of one port: rx, capture, decide (in as many rounds as the
 * output array needs), fan out, tx. */
static void dp_poll(struct datapath *dp, struct dp_port *in)
{
	struct rte_mbuf *pkts[BURST];
	struct vsw_pkt frames[BURST];
	struct vsw_verdict verdicts[BURST];
	struct vsw_output *outs = calloc(dp->max_outputs, sizeof(*outs));
	uint16_t n, i;
	int done, k;

	assert_non_null(outs);
	n = in->dev->pclass->rx_burst(in->dev, 0, pkts, BURST);
	for (i = 0; i < n; i++) {
		frames[i].data = mbuf_data(pkts[i]);
		frames[i].len_bytes = pkts[i]->data_len;
		if (in->capture_rx) {
			assert_int_equal(vsw_pcap_write(in->capture_rx, dp->now_ms * 1000,
							frames[i].data, frames[i].len_bytes),
					 0);
		}
	}
	for (i = 0; i < n; i += (uint16_t)done) {
		done = vsw_forward_burst(dp->br, in->port_no, frames + i, n - i, dp->now_ms,
					 verdicts, outs, dp->max_outputs);
		assert_true(done > 0);
		for (k = 0; k < done; k++) {
			dp_fan_out(dp, pkts[i + k], &verdicts[k], outs);
		}
		dp_flush(dp);
	}
	free(outs);
}

static void dp_run(struct datapath *dp)
{
	unsigned int i;

	for (i = 0; i < dp->n_ports; i++) {
		dp_poll(dp, &dp->ports[i]);
	}
}

/* Opens a ring port and adds it to the bridge with the given VLAN mode. */
static struct dp_port *dp_add(struct datapath *dp, const char *name, enum vlan_port_mode mode,
			      uint16_t tag, const char *trunks)
{
	struct vsw_port_params params = {.name = name, .path = name, .n_rxq = 4, .n_txq = 4,
					 .mtu_bytes = 9000};
	struct dp_port *p = &dp->ports[dp->n_ports];
	struct vsw_port_opts opts;
	struct vlan_set *set = NULL;
	struct errmsg err = {{0}};

	assert_int_equal(ring_class.open(&params, &p->dev, &err), 0);
	assert_ptr_equal(p->dev->pclass, &ring_class);
	vsw_port_opts_init(&opts);
	opts.name = name;
	opts.type = p->dev->pclass->type;
	opts.vlan.mode = mode;
	opts.vlan.tag = tag;
	opts.tx_ctx = p;
	if (trunks) {
		assert_int_equal(vlan_set_create(&set), 0);
		assert_int_equal(vlan_set_parse(set, trunks, NULL), 0);
		opts.vlan.trunks = set;
	}
	assert_int_equal(vsw_port_add(dp->br, &opts, &p->port_no, &err), 0);
	vlan_set_destroy(set);
	dp->n_ports++;
	return p;
}

static struct datapath dp;
static struct dp_port *pa, *pb, *pc, *pt;

/* a, b: access 10; c: access 20; t: trunk 10,20. */
static int dp_setup(void **state)
{
	struct vsw_bridge_opts opts;

	memset(&dp, 0, sizeof(dp));
	vsw_bridge_opts_init(&opts);
	opts.name = "br-test";
	assert_int_equal(vsw_bridge_create(&opts, &dp.br, NULL), 0);
	dp.max_outputs = vsw_bridge_max_ports(dp.br);
	dp.now_ms = 1000;
	pa = dp_add(&dp, "a", VLAN_MODE_ACCESS, 10, NULL);
	pb = dp_add(&dp, "b", VLAN_MODE_ACCESS, 10, NULL);
	pc = dp_add(&dp, "c", VLAN_MODE_ACCESS, 20, NULL);
	pt = dp_add(&dp, "t", VLAN_MODE_TRUNK, 0, "10,20");
	return 0;
}

static int dp_teardown(void **state)
{
	unsigned int i;

	for (i = 0; i < dp.n_ports; i++) {
		assert_int_equal(vsw_port_remove(dp.br, dp.ports[i].port_no), 0);
		dp.ports[i].dev->pclass->close(dp.ports[i].dev);
	}
	vsw_bridge_destroy(dp.br);
	assert_int_equal(mbufs_live, 0);
	return 0;
}

static struct ring_dev *ring(struct dp_port *p)
{
	return ring_of(p->dev);
}

/* --- Cases --- */

static void test_ring_class_follows_the_contract(void **state)
{
	struct vsw_port_params params = {.name = "x", .n_rxq = 0, .n_txq = 1};
	struct vsw_portdev *dev = NULL;
	struct vsw_port_stats stats;
	struct errmsg err = {{0}};

	assert_int_equal(ring_class.open(&params, &dev, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "x:"));
	assert_null(dev);
	assert_int_equal(pa->dev->n_rxq, 1);
	assert_true(pa->dev->pclass->link_up(pa->dev));
	assert_true(pa->dev->pclass->wait_fd(pa->dev, 0) >= 0);
	assert_int_equal(pa->dev->pclass->get_stats(pa->dev, &stats), 0);
	assert_int_equal(stats.rx_packets, 0);
	assert_string_equal(vsw_port_type(dp.br, pa->port_no), "test-ring");
	ring(pa)->up = false;
	assert_false(pa->dev->pclass->link_up(pa->dev));
	assert_int_equal(pa->dev->pclass->wait_fd(pa->dev, 0), -EAGAIN);
}

static void test_frames_flow_end_to_end(void **state)
{
	uint8_t frame[128], want[132];
	const struct ftag q10 = {TPID_Q, 10, 0};
	struct vsw_counters c;
	struct vsw_port_stats stats;
	size_t len, want_len;

	len = frame_make(frame, mac_bcast, station(1), NULL, 0, MIN_PAYLOAD_BYTES, 7);
	ring_inject(pa->dev, frame, len);
	dp_run(&dp);
	assert_int_equal(ring(pa)->tx_n, 0);
	assert_int_equal(ring(pc)->tx_n, 0);
	assert_int_equal(ring(pb)->tx_n, 1);
	assert_int_equal(ring(pb)->tx[0]->data_len, len);
	assert_memory_equal(mbuf_data(ring(pb)->tx[0]), frame, len);
	want_len = frame_make(want, mac_bcast, station(1), &q10, 1, MIN_PAYLOAD_BYTES, 7);
	assert_int_equal(ring(pt)->tx_n, 1);
	assert_int_equal(ring(pt)->tx[0]->data_len, want_len);
	assert_memory_equal(mbuf_data(ring(pt)->tx[0]), want, want_len);
	/* The reply, tagged, finds station 1 behind port a alone. */
	len = frame_make(frame, station(1), station(2), &q10, 1, MIN_PAYLOAD_BYTES, 8);
	ring_inject(pt->dev, frame, len);
	dp_run(&dp);
	want_len = frame_make(want, station(1), station(2), NULL, 0, MIN_PAYLOAD_BYTES, 8);
	assert_int_equal(ring(pa)->tx_n, 1);
	assert_memory_equal(mbuf_data(ring(pa)->tx[0]), want, want_len);
	assert_int_equal(ring(pb)->tx_n, 1);
	/* The core's view and the device's agree. */
	assert_int_equal(vsw_port_get_counters(dp.br, pt->port_no, &c), 0);
	assert_int_equal(pt->dev->pclass->get_stats(pt->dev, &stats), 0);
	assert_int_equal(c.rx_packets, stats.rx_packets);
	assert_int_equal(c.rx_bytes, stats.rx_bytes);
	assert_int_equal(c.tx_packets, stats.tx_packets);
	assert_int_equal(c.tx_bytes, stats.tx_bytes);
}

static void test_tx_failure_counted_in_core_and_device(void **state)
{
	uint8_t frame[128];
	struct vsw_counters c;
	struct vsw_port_stats stats;
	size_t len;

	ring(pt)->tx_room = 0;
	len = frame_make(frame, mac_bcast, station(1), NULL, 0, MIN_PAYLOAD_BYTES, 0);
	ring_inject(pa->dev, frame, len);
	ring_inject(pa->dev, frame, len);
	dp_run(&dp);
	assert_int_equal(ring(pb)->tx_n, 2);
	assert_int_equal(pt->dev->pclass->get_stats(pt->dev, &stats), 0);
	assert_int_equal(stats.tx_dropped, 2);
	assert_int_equal(vsw_port_get_counters(dp.br, pt->port_no, &c), 0);
	assert_int_equal(c.tx_packets, 2);
	assert_int_equal(c.tx_drops[VSW_DROP_TX_FAILED], 2);
}

static void test_bursts_larger_than_output_room(void **state)
{
	uint8_t frame[128];
	size_t len;
	int i;

	/* VLAN 10 has 3 members: 8 outputs hold 2 frames per round. */
	dp.max_outputs = 8;
	for (i = 0; i < 20; i++) {
		len = frame_make(frame, mac_bcast, station(1), NULL, 0, MIN_PAYLOAD_BYTES,
				 (uint8_t)i);
		ring_inject(pa->dev, frame, len);
	}
	dp_run(&dp);
	assert_int_equal(ring(pb)->tx_n, 20);
	assert_int_equal(ring(pt)->tx_n, 20);
	for (i = 0; i < 20; i++) {
		assert_int_equal(mbuf_data(ring(pb)->tx[i])[14], (uint8_t)i); /* in order */
	}
}

static void test_event_mode_wakes_on_frames(void **state)
{
	struct vsw_portdev *dev = pa->dev;
	struct pollfd pfd = {.events = POLLIN};
	uint8_t frame[128];
	uint64_t count;
	size_t len;

	len = frame_make(frame, mac_bcast, station(1), NULL, 0, MIN_PAYLOAD_BYTES, 0);
	pfd.fd = dev->pclass->wait_fd(dev, 0);
	/* Polling mode: no signal. */
	ring_inject(dev, frame, len);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	/* Event mode: enable, check once more, sleep. */
	assert_int_equal(dev->pclass->rx_notify(dev, 0, true), 0);
	dp_run(&dp);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	ring_inject(dev, frame, len);
	assert_int_equal(poll(&pfd, 1, 0), 1);
	assert_int_equal(read(pfd.fd, &count, sizeof(count)), sizeof(count));
	dp_run(&dp);
	assert_int_equal(ring(pb)->tx_n, 2);
	assert_int_equal(poll(&pfd, 1, 0), 0);
}

static void test_capture_a_port_to_pcap(void **state)
{
	char dir[] = "/tmp/vsw-dp-XXXXXX", path[64];
	static uint8_t jumbo[9000], file[20000];
	uint8_t frame[128];
	struct vsw_pcap *pcap;
	size_t len, jumbo_len, file_len, off;
	FILE *f;
	unsigned int n = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a.pcap", dir);
	assert_int_equal(vsw_pcap_open(path, 0, &pcap, NULL), 0);
	pa->capture_rx = pcap;
	len = frame_make(frame, mac_bcast, station(1), NULL, 0, MIN_PAYLOAD_BYTES, 0);
	jumbo_len = frame_make(jumbo, station(2), station(1), NULL, 0, 9000 - 14, 1);
	ring_inject(pa->dev, frame, len);
	ring_inject(pa->dev, jumbo, jumbo_len);
	dp.now_ms = 1700000000000ull;
	dp_run(&dp);
	pa->capture_rx = NULL;
	assert_int_equal(vsw_pcap_close(pcap), 0);
	f = fopen(path, "rb");
	assert_non_null(f);
	file_len = fread(file, 1, sizeof(file), f);
	fclose(f);
	unlink(path);
	rmdir(dir);
	for (off = VSW_PCAP_FILE_HDR_BYTES; off < file_len; n++) {
		uint32_t incl;

		memcpy(&incl, file + off + 8, 4);
		assert_memory_equal(file + off + 16, n == 0 ? frame : jumbo, incl);
		assert_int_equal(incl, n == 0 ? len : jumbo_len);
		off += 16 + incl;
	}
	assert_int_equal(n, 2);
	assert_int_equal(off, file_len);
	assert_int_equal(ring(pt)->tx_n, 2); /* the jumbo frame was flooded */
	assert_int_equal(ring(pt)->tx[1]->data_len, 9004);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, dp_setup, dp_teardown)
	const struct CMUnitTest tests[] = {
		T(test_ring_class_follows_the_contract),
		T(test_frames_flow_end_to_end),
		T(test_tx_failure_counted_in_core_and_device),
		T(test_bursts_larger_than_output_room),
		T(test_event_mode_wakes_on_frames),
		T(test_capture_a_port_to_pcap),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
