/* SPDX-License-Identifier: MIT */
/* churn.c: the switch tests' own DPDK client for port churn
 * (tests/switch/test_abuse.py).  testpmd needs about a second to start;
 * this attaches and detaches a net_virtio_user port inside one process, so
 * a thousand reconnections take a minute, not an hour.
 *
 * It keeps one receiving port attached to one vhost-user socket for the
 * whole run, and for each cycle hot-plugs a sending port on another socket:
 * attach, configure, start, send --frames frames to the receiver's MAC,
 * wait until the receiver has them all (or --wait-ms passed), stop, close,
 * detach.  Each frame carries its cycle number, so a frame that arrives
 * in a later cycle is told apart from a fresh one.  At the end it prints
 * one JSON object: cycles done, frames sent and received, the cycles in
 * which the receiver got nothing or not everything, and the slowest cycle.
 *
 * usage: churn EAL-ARGS -- --tx-sock PATH --rx-sock PATH [--cycles N]
 *                          [--frames N] [--wait-ms N]
 * EAL-ARGS: for example --no-pci --no-huge --no-shconf -m 256
 * --file-prefix UNIQUE -l 0 (one lcore: everything runs on the main one).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#define TX_DEV "net_virtio_user_churn_tx"
#define RX_DEV "net_virtio_user_churn_rx"
#define TX_MAC "02:00:00:00:c0:01"
#define RX_MAC "02:00:00:00:c0:02"
#define FRAME_BYTES 60
#define ETHERTYPE_EXPERIMENTAL 0x88b5
#define MAGIC 0x43485552u /* "CHUR" */
#define RING_SIZE 256
#define N_MBUFS 8191
#define BURST 32

struct opts {
	const char *tx_sock;
	const char *rx_sock;
	unsigned long cycles;
	unsigned long frames;
	unsigned long wait_ms;
};

struct totals {
	uint64_t sent;
	uint64_t received;  /* frames of the cycle they were sent in */
	uint64_t late;      /* frames of an earlier cycle */
	uint64_t other;     /* frames that are not ours */
	uint64_t empty_cycles;   /* the receiver got nothing */
	uint64_t partial_cycles; /* it got some, not all */
	unsigned long first_empty; /* 1-based; 0: none */
	double slowest_ms;
};

static struct rte_mempool *pool;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int parse_ulong(const char *text, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(text, &end, 10);
	return errno || *end || text[0] == '-' || *out == 0 || *out > max ? -1 : 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	o->cycles = 200;
	o->frames = 32;
	o->wait_ms = 5000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (!v) {
			bad = 1;
		} else if (strcmp(a, "--tx-sock") == 0) {
			o->tx_sock = v;
		} else if (strcmp(a, "--rx-sock") == 0) {
			o->rx_sock = v;
		} else if (strcmp(a, "--cycles") == 0) {
			bad = parse_ulong(v, 1000000, &o->cycles);
		} else if (strcmp(a, "--frames") == 0) {
			bad = parse_ulong(v, RING_SIZE / 2, &o->frames);
		} else if (strcmp(a, "--wait-ms") == 0) {
			bad = parse_ulong(v, 600000, &o->wait_ms);
		} else {
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "churn: bad argument '%s%s%s'\n", a, v ? " " : "", v ? v : "");
			return -1;
		}
		i++;
	}
	if (!o->tx_sock || !o->rx_sock) {
		fprintf(stderr, "churn: --tx-sock and --rx-sock are required\n");
		return -1;
	}
	return 0;
}

/* Hot-plugs the virtio-user port 'name' on 'sock', configures one queue
 * pair and starts it.  Returns its port id or a negative errno. */
static int port_attach(const char *name, const char *sock, const char *mac)
{
	struct rte_eth_conf conf;
	char args[512];
	uint16_t port;
	int ret;

	snprintf(args, sizeof(args), "path=%s,queues=1,mac=%s", sock, mac);
	ret = rte_eal_hotplug_add("vdev", name, args);
	if (ret < 0) {
		fprintf(stderr, "churn: attach %s on %s: %s\n", name, sock, rte_strerror(-ret));
		return ret;
	}
	ret = rte_eth_dev_get_port_by_name(name, &port);
	if (ret < 0) {
		fprintf(stderr, "churn: %s attached but has no port\n", name);
		return ret;
	}
	memset(&conf, 0, sizeof(conf));
	if ((ret = rte_eth_dev_configure(port, 1, 1, &conf)) < 0 ||
	    (ret = rte_eth_rx_queue_setup(port, 0, RING_SIZE, SOCKET_ID_ANY, NULL, pool)) < 0 ||
	    (ret = rte_eth_tx_queue_setup(port, 0, RING_SIZE, SOCKET_ID_ANY, NULL)) < 0 ||
	    (ret = rte_eth_dev_start(port)) < 0) {
		fprintf(stderr, "churn: set up %s: %s\n", name, rte_strerror(-ret));
		return ret;
	}
	return port;
}

/* Stops, closes and detaches; returns 0 or a negative errno. */
static int port_detach(const char *name, uint16_t port)
{
	int ret;

	if ((ret = rte_eth_dev_stop(port)) < 0 || (ret = rte_eth_dev_close(port)) < 0) {
		fprintf(stderr, "churn: stop %s: %s\n", name, rte_strerror(-ret));
		return ret;
	}
	ret = rte_eal_hotplug_remove("vdev", name);
	if (ret < 0) {
		fprintf(stderr, "churn: detach %s: %s\n", name, rte_strerror(-ret));
	}
	return ret;
}

static struct rte_mbuf *make_frame(uint32_t cycle, uint32_t seq)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	uint8_t *f;
	uint32_t words[3] = {MAGIC, cycle, seq};

	if (!m) {
		return NULL;
	}
	f = (uint8_t *)rte_pktmbuf_append(m, FRAME_BYTES);
	memset(f, 0, FRAME_BYTES);
	rte_ether_unformat_addr(RX_MAC, (struct rte_ether_addr *)f);
	rte_ether_unformat_addr(TX_MAC, (struct rte_ether_addr *)(f + 6));
	f[12] = ETHERTYPE_EXPERIMENTAL >> 8;
	f[13] = ETHERTYPE_EXPERIMENTAL & 0xff;
	memcpy(f + 14, words, sizeof(words));
	return m;
}

/* Takes what the receiver has; returns the frames of 'cycle' among them. */
static uint64_t receive(uint16_t port, uint32_t cycle, struct totals *t)
{
	struct rte_mbuf *pkts[BURST];
	uint64_t mine = 0;
	uint16_t n;

	while ((n = rte_eth_rx_burst(port, 0, pkts, BURST)) > 0) {
		for (uint16_t i = 0; i < n; i++) {
			const uint8_t *f = rte_pktmbuf_mtod(pkts[i], const uint8_t *);
			uint32_t words[3];

			if (rte_pktmbuf_data_len(pkts[i]) < 14 + sizeof(words) ||
			    f[12] != ETHERTYPE_EXPERIMENTAL >> 8 ||
			    f[13] != (ETHERTYPE_EXPERIMENTAL & 0xff)) {
				t->other++;
				continue;
			}
			memcpy(words, f + 14, sizeof(words));
			if (words[0] != MAGIC) {
				t->other++;
			} else if (words[1] == cycle) {
				mine++;
			} else {
				t->late++;
			}
		}
		rte_pktmbuf_free_bulk(pkts, n);
	}
	t->received += mine;
	return mine;
}

/* One reconnection; returns 0, or a negative errno if the port could not
 * be set up or taken down (the run stops there). */
static int cycle_once(const struct opts *o, uint16_t rx_port, uint32_t cycle, struct totals *t)
{
	double start = now_ms(), deadline;
	uint64_t got = 0, sent = 0;
	int port, ret;

	port = port_attach(TX_DEV, o->tx_sock, TX_MAC);
	if (port < 0) {
		return port;
	}
	deadline = start + (double)o->wait_ms;
	/* The switch may not poll the new ring yet: what waits in it is
	 * sent once it does, so keep offering until the ring took all. */
	while (sent < o->frames && now_ms() < deadline) {
		struct rte_mbuf *pkts[BURST];
		uint16_t n = 0, done;

		while (n < BURST && sent + n < o->frames) {
			pkts[n] = make_frame(cycle, (uint32_t)(sent + n));
			if (!pkts[n]) {
				fprintf(stderr, "churn: the mbuf pool ran dry in cycle %" PRIu32 "\n",
					cycle);
				return -ENOMEM;
			}
			n++;
		}
		done = rte_eth_tx_burst((uint16_t)port, 0, pkts, n);
		rte_pktmbuf_free_bulk(pkts + done, n - done);
		sent += done;
		got += receive(rx_port, cycle, t);
	}
	t->sent += sent;
	while (got < sent && now_ms() < deadline) {
		got += receive(rx_port, cycle, t);
	}
	if (got == 0) {
		t->empty_cycles++;
		if (!t->first_empty) {
			t->first_empty = cycle;
		}
	} else if (got < o->frames) {
		t->partial_cycles++;
	}
	ret = port_detach(TX_DEV, (uint16_t)port);
	if (now_ms() - start > t->slowest_ms) {
		t->slowest_ms = now_ms() - start;
	}
	return ret;
}

int main(int argc, char **argv)
{
	struct totals t = {0};
	unsigned long done = 0;
	struct opts o = {0};
	double start;
	int ret, rx_port;

	ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		fprintf(stderr, "churn: EAL: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= ret;
	argv += ret;
	if (parse_args(argc, argv, &o) < 0) {
		rte_eal_cleanup();
		return 2;
	}
	pool = rte_pktmbuf_pool_create("churn", N_MBUFS, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	if (!pool) {
		fprintf(stderr, "churn: mbuf pool: %s\n", rte_strerror(rte_errno));
		rte_eal_cleanup();
		return 1;
	}
	rx_port = port_attach(RX_DEV, o.rx_sock, RX_MAC);
	if (rx_port < 0) {
		rte_eal_cleanup();
		return 1;
	}
	start = now_ms();
	while (done < o.cycles) {
		if (cycle_once(&o, (uint16_t)rx_port, (uint32_t)(done + 1), &t) < 0) {
			break;
		}
		done++;
	}
	printf("{\"cycles\":%lu,\"cycles_asked\":%lu,\"frames_per_cycle\":%lu,\"sent\":%" PRIu64
	       ",\"received\":%" PRIu64 ",\"late\":%" PRIu64 ",\"other\":%" PRIu64
	       ",\"empty_cycles\":%" PRIu64 ",\"first_empty\":%lu,\"partial_cycles\":%" PRIu64
	       ",\"slowest_ms\":%.1f,\"seconds\":%.2f,\"mbufs_free\":%u,\"mbufs\":%u}\n",
	       done, o.cycles, o.frames, t.sent, t.received, t.late, t.other, t.empty_cycles,
	       t.first_empty, t.partial_cycles, t.slowest_ms, (now_ms() - start) / 1e3,
	       rte_mempool_avail_count(pool), N_MBUFS);
	fflush(stdout);
	port_detach(RX_DEV, (uint16_t)rx_port);
	rte_mempool_free(pool);
	rte_eal_cleanup();
	return done == o.cycles ? 0 : 1;
}
