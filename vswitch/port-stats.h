/* SPDX-License-Identifier: MIT */
/* port-stats.h: the device counters every provider keeps.  The datapath
 * thread is their only writer and the control thread reads them while
 * they change, so each is a relaxed atomic: no torn 64-bit reads, and no
 * locked instruction on the fast path (a load and a store, not an add). */
#ifndef VSW_PORT_STATS_H
#define VSW_PORT_STATS_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "port-provider.h"

struct vsw_port_counters {
	uint64_t rx_packets, rx_bytes, rx_dropped, rx_errors;
	uint64_t tx_packets, tx_bytes, tx_dropped, tx_errors;
};

static inline void vsw_counter_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void vsw_port_counters_rx(struct vsw_port_counters *c, struct rte_mbuf **pkts,
					uint16_t n)
{
	uint64_t bytes = 0;

	for (uint16_t i = 0; i < n; i++) {
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
	}
	if (n) {
		vsw_counter_add(&c->rx_packets, n);
		vsw_counter_add(&c->rx_bytes, bytes);
	}
}

/* Counts the first 'sent' of 'n' frames as sent, the rest as dropped. */
static inline void vsw_port_counters_tx(struct vsw_port_counters *c, struct rte_mbuf **pkts,
					uint16_t n, uint16_t sent)
{
	uint64_t bytes = 0;

	for (uint16_t i = 0; i < sent; i++) {
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
	}
	if (sent) {
		vsw_counter_add(&c->tx_packets, sent);
		vsw_counter_add(&c->tx_bytes, bytes);
	}
	if (n > sent) {
		vsw_counter_add(&c->tx_dropped, n - sent);
	}
}

static inline void vsw_port_counters_read(const struct vsw_port_counters *c,
					  struct vsw_port_stats *s)
{
	s->rx_packets = __atomic_load_n(&c->rx_packets, __ATOMIC_RELAXED);
	s->rx_bytes = __atomic_load_n(&c->rx_bytes, __ATOMIC_RELAXED);
	s->rx_dropped = __atomic_load_n(&c->rx_dropped, __ATOMIC_RELAXED);
	s->rx_errors = __atomic_load_n(&c->rx_errors, __ATOMIC_RELAXED);
	s->tx_packets = __atomic_load_n(&c->tx_packets, __ATOMIC_RELAXED);
	s->tx_bytes = __atomic_load_n(&c->tx_bytes, __ATOMIC_RELAXED);
	s->tx_dropped = __atomic_load_n(&c->tx_dropped, __ATOMIC_RELAXED);
	s->tx_errors = __atomic_load_n(&c->tx_errors, __ATOMIC_RELAXED);
}

#endif
