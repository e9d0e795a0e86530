/* SPDX-License-Identifier: MIT */
/* datapath.c: the DPDK datapath of vswitch-dp.h.  One thread moves every
 * port's frames: receive a burst, let the core decide (vsw_forward_burst),
 * edit and copy as the outputs need, batch per output port, send.
 *
 * Copies: a frame with one output is edited in place.  A frame with
 * several shares its mbuf among the outputs that send it unchanged (a
 * reference each) and gives a private copy to each output that edits it,
 * since sends are batched and an edit in place would show in the others.
 *
 * Queues: frames for a port with several transmit queues are spread over
 * them by flow hash at flush time (flush_spread), each flow on one queue
 * so it keeps its order; a single-queue port is sent as one burst, with no
 * hashing.
 *
 * Locking: the datapath thread holds dp->lock while it works and drops it
 * between rounds and while it naps or sleeps.  The control thread announces itself
 * in 'ctl_waiting' so a polling datapath steps aside instead of winning
 * the unfair mutex forever.  Devices are opened and closed with the lock
 * released: rte_vhost's thread takes it (through the quiesce hook) and
 * closing a vhost-user port waits for that thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "errmsg.h"
#include "flow-hash.h"
#include "pcap.h"
#include "port-provider.h"
#include "vswitch-dp.h"
#include "vswitch.h"

#define DP_BURST 32
#define DP_TXBUF 64
#define DP_HOUSEKEEPING_MS 1000u
#define DP_MAX_EVENTS 64
/* Event mode's pacing (docs/vswitch.md, "Event mode"): the thread spins
 * while a window of DP_NAP_MIN_US brings at least DP_HEAVY frames, naps
 * with guest kicks off below that, and sleeps on kicks once DP_IDLE_US
 * passed without a frame.  A nap starts at DP_NAP_MIN_US and doubles, up
 * to DP_NAP_MAX_US, after each nap that gathered fewer than DP_NAP_GROW
 * frames; one that gathered DP_NAP_SHRINK or more starts over at the
 * shortest, and DP_HEAVY after the shortest goes back to spinning. */
#define DP_NAP_MIN_US 100u
#define DP_NAP_MAX_US 400u
#define DP_HEAVY DP_BURST
#define DP_NAP_GROW DP_BURST
#define DP_NAP_SHRINK (2 * DP_BURST)
#define DP_IDLE_US 1000u
/* Timer slack for the naps: the default 50 us would double them. */
#define DP_NAP_SLACK_NS 1000ul
/* Per bridge: room for a burst of unicast frames plus one full flood. */
#define DP_OUTPUTS(max_ports) (2u * DP_BURST + (max_ports))
/* Data room for one mbuf: a 1518-byte frame in one segment; jumbo frames
 * chain several, which every provider handles. */
#define DP_MBUF_DATA (RTE_MBUF_DEFAULT_BUF_SIZE)

struct dp_bridge;

struct dp_port {
	char name[VSW_NAME_BYTES];
	char type[VSW_PORT_TYPE_BYTES];
	char path[PATH_MAX];
	uint16_t queues;
	uint32_t mtu_bytes;
	uint32_t mac_limit;
	struct dp_bridge *br;
	uint16_t port_no;
	struct vsw_portdev *dev;
	bool tx_pending; /* in dp->pending */
	uint16_t n_tx;
	struct rte_mbuf *tx[DP_TXBUF];
	struct vsw_pcap *cap;
	char cap_file[PATH_MAX];
	uint64_t cap_max;         /* 0: no limit */
	uint64_t cap_deadline_ms; /* 0: none */
	bool cap_done;            /* ended by itself, not yet collected */
	uint64_t cap_done_frames;
	struct dp_port *next;     /* dp->ports */
};

struct dp_bridge {
	char name[VSW_NAME_BYTES];
	struct vsw_bridge *core;
	uint32_t mac_aging_s;
	uint32_t mac_capacity;
	struct vsw_output *outputs;
	unsigned int max_outputs;
	struct dp_bridge *next; /* dp->bridges, in order of creation */
};

struct vsw_dp {
	pthread_mutex_t lock;
	atomic_int ctl_waiting;
	atomic_bool stop;
	atomic_uint gen; /* bumped when wake-up descriptors may have changed */
	pthread_t thread;
	bool thread_started;
	bool poll;
	int poll_cpu;
	struct rte_mempool *mempool;
	struct dp_bridge *bridges;
	struct dp_port *ports;
	/* datapath thread only: */
	struct dp_port **pending;
	unsigned int n_pending, pending_cap;
	int wake_fd; /* eventfd: control and providers wake the thread */
	int ep;
	unsigned int ep_gen;
	int *dups; /* our duplicates of the ports' descriptors in 'ep' */
	unsigned int n_dups;
	uint64_t next_housekeeping_ms;
	/* event mode's pacing, in TSC cycles: */
	bool napping;          /* below DP_HEAVY a window: nap between rounds */
	unsigned int nap_us;   /* the next nap, while napping */
	unsigned int gathered; /* by the last nap, so far */
	uint64_t window_start; /* of the current spinning window */
	unsigned int window_frames;
	uint64_t last_frame;   /* the last round that received a frame */
	uint64_t window_cycles, idle_cycles;
};

/* TSC cycles per millisecond, set once the EAL has measured the TSC.  The
 * datapath reads the clock every round, and clock_gettime() showed up at
 * 6% of a polling thread's time; the TSC costs a few cycles. */
static uint64_t tsc_per_ms;

uint64_t vsw_dp_now_ms(void)
{
	struct timespec ts;

	if (tsc_per_ms) {
		return rte_rdtsc() / tsc_per_ms;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void vsw_dp_lock(struct vsw_dp *dp)
{
	atomic_fetch_add(&dp->ctl_waiting, 1);
	pthread_mutex_lock(&dp->lock);
	atomic_fetch_sub(&dp->ctl_waiting, 1);
}

void vsw_dp_unlock(struct vsw_dp *dp)
{
	pthread_mutex_unlock(&dp->lock);
}

static void dp_wake(struct vsw_dp *dp)
{
	uint64_t one = 1;

	atomic_fetch_add(&dp->gen, 1);
	if (write(dp->wake_fd, &one, sizeof(one)) < 0) {
		/* The counter is full: the thread has a wake-up pending anyway. */
	}
}

/* Port provider hooks, called on rte_vhost's thread. */
static void hook_quiesce(void *ctx)
{
	struct vsw_dp *dp = ctx;

	vsw_dp_lock(dp);
	vsw_dp_unlock(dp);
}

static void hook_changed(void *ctx)
{
	dp_wake(ctx);
}

bool vsw_dp_polling(const struct vsw_dp *dp)
{
	return dp->poll;
}

/* ------------------------------------------------------------ Capture */

static void capture_frame(struct dp_port *p, const struct rte_mbuf *m, uint64_t now_us)
{
	struct iovec iov[16];
	unsigned int n = 0;

	for (const struct rte_mbuf *s = m; s && n < 16; s = s->next) {
		iov[n].iov_base = rte_pktmbuf_mtod(s, void *);
		iov[n].iov_len = rte_pktmbuf_data_len(s);
		n++;
	}
	vsw_pcap_writev(p->cap, now_us, iov, n);
}

/* Ends a capture that reached its count or time; capture_stop() still
 * reports it once, so a client that waited learns how many it got. */
static void capture_end(struct dp_port *p)
{
	p->cap_done_frames = vsw_pcap_frames(p->cap);
	p->cap_done = vsw_pcap_close(p->cap) == 0;
	p->cap = NULL;
}

static void capture_burst(struct dp_port *p, struct rte_mbuf **pkts, uint16_t n)
{
	uint64_t now_us;

	if (!p->cap || n == 0) {
		return;
	}
	now_us = wall_us();
	for (uint16_t i = 0; i < n && p->cap; i++) {
		capture_frame(p, pkts[i], now_us);
		if (p->cap_max && vsw_pcap_frames(p->cap) >= p->cap_max) {
			capture_end(p);
		}
	}
}

/* ----------------------------------------------------------- Sending */

/* Sends the port's 'n' frames over its 'n_txq' queues, each frame on the
 * queue of its flow (flow-hash.h), so a multiqueue guest's receive work
 * spreads over its vCPUs while each flow keeps its order: a counting sort
 * by queue, stable, then one burst per queue.  Returns how many went. */
static uint16_t flush_spread(struct dp_port *p, uint16_t n, uint16_t n_txq)
{
	struct rte_mbuf *sorted[DP_TXBUF];
	uint8_t queue_of[DP_TXBUF];
	uint16_t start[VSW_PORT_MAX_QUEUES + 1] = {0};
	uint16_t sent = 0;

	if (n_txq > VSW_PORT_MAX_QUEUES) {
		n_txq = VSW_PORT_MAX_QUEUES;
	}
	for (uint16_t i = 0; i < n; i++) {
		const struct rte_mbuf *m = p->tx[i];
		uint32_t h = vsw_flow_hash(rte_pktmbuf_mtod(m, const uint8_t *),
					   rte_pktmbuf_data_len(m));

		queue_of[i] = (uint8_t)vsw_flow_queue(h, n_txq);
		start[queue_of[i] + 1]++;
	}
	for (uint16_t q = 0; q < n_txq; q++) {
		start[q + 1] += start[q];
	}
	for (uint16_t i = 0; i < n; i++) {
		sorted[start[queue_of[i]]++] = p->tx[i];
	}
	/* start[q] is now where queue q's frames end. */
	for (uint16_t q = 0, first = 0; q < n_txq; first = start[q], q++) {
		if (start[q] > first) {
			sent += p->dev->pclass->tx_burst(p->dev, q, sorted + first,
							 (uint16_t)(start[q] - first));
		}
	}
	return sent;
}

static void port_flush(struct vsw_dp *dp, struct dp_port *p)
{
	uint16_t n = p->n_tx, n_txq, sent;

	if (n == 0) {
		return;
	}
	capture_burst(p, p->tx, n);
	p->n_tx = 0;
	/* Read once: a vhost-user provider changes it when the guest sets up
	 * more queues.  One queue, the common case, costs no hashing. */
	n_txq = p->dev->n_txq;
	if (n_txq > 1) {
		sent = flush_spread(p, n, n_txq);
	} else {
		sent = p->dev->pclass->tx_burst(p->dev, 0, p->tx, n);
	}
	if (sent < n) {
		vsw_port_count_tx_failed(p->br->core, p->port_no, n - sent);
	}
}

static void port_enqueue(struct vsw_dp *dp, struct dp_port *p, struct rte_mbuf *m)
{
	if (p->n_tx == DP_TXBUF) {
		port_flush(dp, p);
	}
	p->tx[p->n_tx++] = m;
	if (!p->tx_pending) {
		p->tx_pending = true;
		dp->pending[dp->n_pending++] = p;
	}
}

static void flush_pending(struct vsw_dp *dp)
{
	for (unsigned int i = 0; i < dp->n_pending; i++) {
		port_flush(dp, dp->pending[i]);
		dp->pending[i]->tx_pending = false;
	}
	dp->n_pending = 0;
}

/* Carries out an output's tag edit on the mbuf's first segment. */
static int mbuf_apply(const struct vsw_output *out, struct rte_mbuf *m)
{
	struct vlan_buf buf = {
		.base = m->buf_addr,
		.head_bytes = m->data_off,
		.len_bytes = m->data_len,
		.cap_bytes = m->buf_len,
	};
	int ret = vsw_output_apply(out, &buf);

	if (ret < 0) {
		return ret;
	}
	m->pkt_len = m->pkt_len - m->data_len + (uint32_t)buf.len_bytes;
	m->data_off = (uint16_t)buf.head_bytes;
	m->data_len = (uint16_t)buf.len_bytes;
	return 0;
}

static void send_edited(struct vsw_dp *dp, struct dp_bridge *br, const struct vsw_output *out,
			struct rte_mbuf *m)
{
	if (mbuf_apply(out, m) < 0) {
		rte_pktmbuf_free(m);
		vsw_port_count_tx_failed(br->core, out->port_no, 1);
		return;
	}
	port_enqueue(dp, out->tx_ctx, m);
}

static void dispatch(struct vsw_dp *dp, struct dp_bridge *br, struct rte_mbuf *m,
		     const struct vsw_verdict *v)
{
	const struct vsw_output *outs = br->outputs + v->first_output;
	unsigned int shared = 0;

	if (v->n_outputs == 0) {
		rte_pktmbuf_free(m);
		return;
	}
	if (v->n_outputs == 1) {
		send_edited(dp, br, &outs[0], m);
		return;
	}
	for (unsigned int i = 0; i < v->n_outputs; i++) {
		shared += outs[i].edit == VSW_EDIT_NONE;
	}
	if (shared > 1) {
		for (struct rte_mbuf *s = m; s; s = s->next) {
			rte_mbuf_refcnt_update(s, (int16_t)(shared - 1));
		}
	}
	for (unsigned int i = 0; i < v->n_outputs; i++) {
		struct rte_mbuf *c;

		if (outs[i].edit == VSW_EDIT_NONE) {
			port_enqueue(dp, outs[i].tx_ctx, m);
			continue;
		}
		c = rte_pktmbuf_copy(m, dp->mempool, 0, UINT32_MAX);
		if (!c) {
			vsw_port_count_tx_failed(br->core, outs[i].port_no, 1);
			continue;
		}
		send_edited(dp, br, &outs[i], c);
	}
	if (shared == 0) {
		rte_pktmbuf_free(m);
	}
}

/* --------------------------------------------------------- Receiving */

static unsigned int rx_queue(struct vsw_dp *dp, struct dp_port *p, uint16_t q, uint64_t now_ms)
{
	struct rte_mbuf *pkts[DP_BURST];
	struct vsw_pkt vp[DP_BURST];
	struct vsw_verdict verdicts[DP_BURST];
	struct dp_bridge *br = p->br;
	uint16_t n = p->dev->pclass->rx_burst(p->dev, q, pkts, DP_BURST);
	unsigned int done = 0;

	if (n == 0) {
		return 0;
	}
	capture_burst(p, pkts, n);
	for (uint16_t i = 0; i < n; i++) {
		vp[i].data = rte_pktmbuf_mtod(pkts[i], const uint8_t *);
		vp[i].len_bytes = rte_pktmbuf_pkt_len(pkts[i]);
		/* The core reads the headers from the first segment only. */
		if (rte_pktmbuf_data_len(pkts[i]) < RTE_MIN(vp[i].len_bytes, (uint32_t)VSW_PEEK_BYTES)) {
			vp[i].len_bytes = rte_pktmbuf_data_len(pkts[i]);
		}
	}
	while (done < n) {
		int k = vsw_forward_burst(br->core, p->port_no, vp + done, n - done, now_ms,
					  verdicts, br->outputs, br->max_outputs);

		if (k <= 0) {
			/* Cannot happen with DP_OUTPUTS >= max ports; be safe. */
			rte_pktmbuf_free_bulk(pkts + done, n - done);
			break;
		}
		for (int i = 0; i < k; i++) {
			dispatch(dp, br, pkts[done + i], &verdicts[i]);
		}
		done += (unsigned int)k;
	}
	return n;
}

static unsigned int dp_round(struct vsw_dp *dp, uint64_t now_ms)
{
	unsigned int did = 0;

	for (struct dp_port *p = dp->ports; p; p = p->next) {
		for (uint16_t q = 0; q < p->dev->n_rxq; q++) {
			did += rx_queue(dp, p, q, now_ms);
		}
	}
	flush_pending(dp);
	return did;
}

static void housekeeping(struct vsw_dp *dp, uint64_t now_ms)
{
	if (now_ms < dp->next_housekeeping_ms) {
		return;
	}
	dp->next_housekeeping_ms = now_ms + DP_HOUSEKEEPING_MS;
	for (struct dp_bridge *br = dp->bridges; br; br = br->next) {
		vsw_bridge_age(br->core, now_ms);
	}
	for (struct dp_port *p = dp->ports; p; p = p->next) {
		if (p->cap && p->cap_deadline_ms && now_ms >= p->cap_deadline_ms) {
			capture_end(p);
		} else if (p->cap) {
			/* So that tcpdump can read a running capture. */
			vsw_pcap_flush(p->cap);
		}
	}
}

/* ------------------------------------------------------------ Sleeping */

static void set_notify(struct vsw_dp *dp, bool enable)
{
	for (struct dp_port *p = dp->ports; p; p = p->next) {
		if (!p->dev->pclass->rx_notify) {
			continue;
		}
		for (uint16_t q = 0; q < p->dev->n_rxq; q++) {
			p->dev->pclass->rx_notify(p->dev, q, enable);
		}
	}
}

static void epoll_add(int ep, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = fd};

	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Builds a new epoll set from the ports' current descriptors.  It holds
 * duplicates, so a descriptor a provider closes (a guest's kick eventfd
 * when it disconnects) cannot be confused with a new one of that number. */
static void rebuild_epoll(struct vsw_dp *dp)
{
	unsigned int n = 0, cap = 0;

	dp->ep_gen = atomic_load(&dp->gen);
	for (unsigned int i = 0; i < dp->n_dups; i++) {
		close(dp->dups[i]);
	}
	dp->n_dups = 0;
	if (dp->ep >= 0) {
		close(dp->ep);
	}
	dp->ep = epoll_create1(EPOLL_CLOEXEC);
	if (dp->ep < 0) {
		return;
	}
	epoll_add(dp->ep, dp->wake_fd);
	/* Room for every queue a port may have, not the n_rxq of now: a
	 * vhost-user provider raises it on rte_vhost's thread while a guest
	 * sets up queues, maybe between this count and the loop below. */
	for (struct dp_port *p = dp->ports; p; p = p->next) {
		cap += VSW_PORT_MAX_QUEUES;
	}
	free(dp->dups);
	dp->dups = calloc(cap ? cap : 1, sizeof(int));
	if (!dp->dups) {
		return;
	}
	for (struct dp_port *p = dp->ports; p; p = p->next) {
		if (!p->dev->pclass->wait_fd) {
			continue;
		}
		for (uint16_t q = 0; q < p->dev->n_rxq && n < cap; q++) {
			int fd = p->dev->pclass->wait_fd(p->dev, q);
			int d = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;

			if (d >= 0) {
				dp->dups[n++] = d;
				epoll_add(dp->ep, d);
			}
		}
	}
	dp->n_dups = n;
}

/* Called with the lock held and nothing received in the last round. */
static void dp_sleep(struct vsw_dp *dp)
{
	struct epoll_event evs[DP_MAX_EVENTS];
	uint64_t now_ms, timeout_ms;
	uint64_t junk;

	set_notify(dp, true);
	/* A frame that came between the last round and the enabling raised
	 * no wake-up: look once more before sleeping. */
	if (dp_round(dp, vsw_dp_now_ms()) == 0) {
		if (dp->ep < 0 || dp->ep_gen != atomic_load(&dp->gen)) {
			rebuild_epoll(dp);
		}
		now_ms = vsw_dp_now_ms();
		timeout_ms = dp->next_housekeeping_ms > now_ms ? dp->next_housekeeping_ms - now_ms
							       : 0;
		pthread_mutex_unlock(&dp->lock);
		if (dp->ep >= 0) {
			epoll_wait(dp->ep, evs, DP_MAX_EVENTS, (int)timeout_ms);
		} else {
			usleep(1000);
		}
		if (read(dp->wake_fd, &junk, sizeof(junk)) < 0) {
			/* Nothing to take: a port woke us. */
		}
		pthread_mutex_lock(&dp->lock);
	}
	set_notify(dp, false);
}

/* Sleeps 'us' with kicks left off: frames gather in the rings and the
 * next round takes them as one burst, for the price of one timer wake-up. */
static void dp_nap(struct vsw_dp *dp, unsigned int us)
{
	struct timespec ts = {.tv_nsec = (long)us * 1000};

	pthread_mutex_unlock(&dp->lock);
	nanosleep(&ts, NULL);
	pthread_mutex_lock(&dp->lock);
}

static void new_window(struct vsw_dp *dp, uint64_t now)
{
	dp->napping = false;
	dp->gathered = 0;
	dp->window_start = now;
	dp->window_frames = 0;
}

/* Event mode, after a round that received 'did' frames: spin on, nap or
 * sleep (docs/vswitch.md, "Event mode").  Spinning is judged a window of
 * DP_NAP_MIN_US at a time: a window that brought fewer than DP_HEAVY
 * frames would have fitted in one nap's burst, so the thread naps.  While
 * napping, the rounds after a nap repeat as long as each takes a full
 * burst, so a nap's frames are all taken before the next; then what the
 * nap gathered sets the next: under DP_NAP_GROW (a burst) twice as long,
 * up to DP_NAP_MAX_US, so at a light load the thread wakes less often and
 * takes more per wake-up; DP_NAP_SHRINK (two bursts) or more means the
 * nap was too long for the load, so the next is the shortest again, and a
 * full burst after the shortest puts the thread back to spinning.  Either
 * way the rings are looked at every DP_NAP_MAX_US at the latest while
 * frames come, and kicks are asked for only after DP_IDLE_US without one. */
static void event_step(struct vsw_dp *dp, unsigned int did)
{
	uint64_t now = rte_rdtsc();
	unsigned int got;

	if (did) {
		dp->last_frame = now;
	}
	if (!dp->napping) {
		dp->window_frames += did;
		if (now - dp->window_start < dp->window_cycles) {
			return;
		}
		if (dp->window_frames >= DP_HEAVY) {
			new_window(dp, now);
			return;
		}
		dp->napping = true;
		dp->nap_us = DP_NAP_MIN_US;
	} else {
		dp->gathered += did;
		if (did >= DP_BURST) {
			/* The ring may hold more of this nap's frames. */
			return;
		}
		got = dp->gathered;
		dp->gathered = 0;
		if (dp->nap_us <= DP_NAP_MIN_US && got >= DP_HEAVY) {
			new_window(dp, now);
			return;
		}
		if (got >= DP_NAP_SHRINK) {
			dp->nap_us = DP_NAP_MIN_US;
		} else if (got < DP_NAP_GROW) {
			dp->nap_us = RTE_MIN(2 * dp->nap_us, DP_NAP_MAX_US);
		}
	}
	if (now - dp->last_frame < dp->idle_cycles) {
		dp_nap(dp, dp->nap_us);
		return;
	}
	dp_sleep(dp);
	/* Woken by a frame, most likely: spin a window in case more follow. */
	now = rte_rdtsc();
	dp->last_frame = now;
	new_window(dp, now);
}

static void *dp_main(void *arg)
{
	struct vsw_dp *dp = arg;
	uint64_t hz = rte_get_tsc_hz();

	/* An lcore id gives the thread its own mempool cache. */
	rte_thread_register();
	if (dp->poll && dp->poll_cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(dp->poll_cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	dp->window_cycles = hz / 1000000 * DP_NAP_MIN_US;
	dp->idle_cycles = hz / 1000000 * DP_IDLE_US;
	prctl(PR_SET_TIMERSLACK, DP_NAP_SLACK_NS, 0, 0, 0);
	pthread_mutex_lock(&dp->lock);
	new_window(dp, rte_rdtsc());
	while (!atomic_load(&dp->stop)) {
		uint64_t now_ms = vsw_dp_now_ms();
		unsigned int did = dp_round(dp, now_ms);

		housekeeping(dp, now_ms);
		if (!dp->poll) {
			event_step(dp, did);
		}
		if (atomic_load(&dp->ctl_waiting)) {
			pthread_mutex_unlock(&dp->lock);
			while (atomic_load(&dp->ctl_waiting)) {
				sched_yield();
			}
			pthread_mutex_lock(&dp->lock);
		}
	}
	pthread_mutex_unlock(&dp->lock);
	rte_thread_unregister();
	return NULL;
}

/* ------------------------------------------------------ Control side */

void vsw_dp_opts_init(struct vsw_dp_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->poll_cpu = -1;
}

int vsw_dp_create(const struct vsw_dp_opts *opts, struct vsw_dp **dpp, struct errmsg *err)
{
	struct vsw_dp_opts defaults;
	struct vsw_dp *dp;
	char pool[RTE_MEMPOOL_NAMESIZE];
	int ret;

	if (!opts) {
		vsw_dp_opts_init(&defaults);
		opts = &defaults;
	}
	dp = calloc(1, sizeof(*dp));
	if (!dp) {
		return -ENOMEM;
	}
	if (!tsc_per_ms && rte_get_tsc_hz() >= 1000) {
		tsc_per_ms = rte_get_tsc_hz() / 1000;
	}
	pthread_mutex_init(&dp->lock, NULL);
	dp->poll = opts->poll;
	dp->poll_cpu = opts->poll_cpu;
	dp->ep = -1;
	dp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (dp->wake_fd < 0) {
		ret = -errno;
		free(dp);
		return ret;
	}
	snprintf(pool, sizeof(pool), "vsw_mbufs_%p", (void *)dp);
	dp->mempool = rte_pktmbuf_pool_create(pool, opts->n_mbufs ? opts->n_mbufs : 16383, 256, 0,
					      DP_MBUF_DATA, SOCKET_ID_ANY);
	if (!dp->mempool) {
		ret = -rte_errno;
		errmsg_set(err, "cannot allocate packet buffers: %s", rte_strerror(rte_errno));
		close(dp->wake_fd);
		free(dp);
		return ret < 0 ? ret : -ENOMEM;
	}
	ret = pthread_create(&dp->thread, NULL, dp_main, dp);
	if (ret != 0) {
		errmsg_set(err, "cannot start the datapath thread: %s", strerror(ret));
		rte_mempool_free(dp->mempool);
		close(dp->wake_fd);
		free(dp);
		return -ret;
	}
	pthread_setname_np(dp->thread, "vswitch-dp");
	dp->thread_started = true;
	*dpp = dp;
	return 0;
}

static struct dp_bridge *find_bridge(struct vsw_dp *dp, const char *name)
{
	for (struct dp_bridge *br = dp->bridges; br; br = br->next) {
		if (strcmp(br->name, name) == 0) {
			return br;
		}
	}
	return NULL;
}

static struct dp_port *find_port(struct vsw_dp *dp, const char *name)
{
	for (struct dp_port *p = dp->ports; p; p = p->next) {
		if (strcmp(p->name, name) == 0) {
			return p;
		}
	}
	return NULL;
}

int vsw_dp_bridge_add(struct vsw_dp *dp, const struct vsw_bridge_opts *opts, struct errmsg *err)
{
	struct dp_bridge *br, **tail;
	int ret;

	if (!opts->name || !opts->name[0] || strlen(opts->name) >= VSW_NAME_BYTES) {
		errmsg_set(err, "a bridge needs a name of 1 to %d bytes", VSW_NAME_BYTES - 1);
		return -EINVAL;
	}
	br = calloc(1, sizeof(*br));
	if (!br) {
		return -ENOMEM;
	}
	snprintf(br->name, sizeof(br->name), "%s", opts->name);
	ret = vsw_bridge_create(opts, &br->core, err);
	if (ret < 0) {
		free(br);
		return ret;
	}
	br->mac_aging_s = opts->mac_aging_s ? opts->mac_aging_s : VSW_MAC_AGING_S_DEFAULT;
	br->mac_capacity = opts->mac_capacity ? opts->mac_capacity : VSW_MAC_CAPACITY_DEFAULT;
	br->max_outputs = DP_OUTPUTS(vsw_bridge_max_ports(br->core));
	br->outputs = calloc(br->max_outputs, sizeof(*br->outputs));
	if (!br->outputs) {
		vsw_bridge_destroy(br->core);
		free(br);
		return -ENOMEM;
	}
	vsw_dp_lock(dp);
	if (find_bridge(dp, br->name)) {
		vsw_dp_unlock(dp);
		errmsg_set(err, "bridge %s already exists", br->name);
		vsw_bridge_destroy(br->core);
		free(br->outputs);
		free(br);
		return -EEXIST;
	}
	for (tail = &dp->bridges; *tail; tail = &(*tail)->next) {
	}
	*tail = br;
	vsw_dp_unlock(dp);
	return 0;
}

/* Takes the port out of the datapath (lock held); the caller closes its
 * device once the lock is released. */
static void unlink_port(struct vsw_dp *dp, struct dp_port *p)
{
	for (struct dp_port **pp = &dp->ports; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	vsw_port_remove(p->br->core, p->port_no);
	if (p->cap) {
		capture_end(p);
	}
	atomic_fetch_add(&dp->gen, 1);
}

static void free_port(struct dp_port *p)
{
	/* Frames still queued were flushed by the round that queued them. */
	p->dev->pclass->close(p->dev);
	free(p);
}

int vsw_dp_bridge_del(struct vsw_dp *dp, const char *name, struct errmsg *err)
{
	struct dp_port *gone = NULL, *p, *next;
	struct dp_bridge *br = NULL;

	vsw_dp_lock(dp);
	for (struct dp_bridge **bp = &dp->bridges; *bp; bp = &(*bp)->next) {
		if (strcmp((*bp)->name, name) == 0) {
			br = *bp;
			*bp = br->next;
			break;
		}
	}
	if (!br) {
		vsw_dp_unlock(dp);
		errmsg_set(err, "no bridge named %s", name);
		return -ENODEV;
	}
	for (p = dp->ports; p; p = next) {
		next = p->next;
		if (p->br == br) {
			unlink_port(dp, p);
			p->next = gone;
			gone = p;
		}
	}
	vsw_dp_unlock(dp);
	dp_wake(dp);
	for (p = gone; p; p = next) {
		next = p->next;
		free_port(p);
	}
	vsw_bridge_destroy(br->core);
	free(br->outputs);
	free(br);
	return 0;
}

void vsw_dp_port_config_init(struct vsw_dp_port_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	vlan_port_opts_init(&cfg->vlan);
}

static int check_port_config(const struct vsw_dp_port_config *cfg,
			     const struct vsw_port_class **pclassp, struct errmsg *err)
{
	if (!cfg->name || !cfg->name[0] || strlen(cfg->name) >= VSW_NAME_BYTES) {
		errmsg_set(err, "a port needs a name of 1 to %d bytes", VSW_NAME_BYTES - 1);
		return -EINVAL;
	}
	*pclassp = cfg->type ? vsw_port_class_find(cfg->type) : NULL;
	if (!*pclassp) {
		errmsg_set(err, "port %s: unknown type '%s' (vhost-user, vhost-user-client, host, "
				"uplink)", cfg->name, cfg->type ? cfg->type : "");
		return -EINVAL;
	}
	if (cfg->mtu_bytes > VSW_PORT_MTU_MAX || (cfg->mtu_bytes && cfg->mtu_bytes < VSW_PORT_MTU_MIN)) {
		errmsg_set(err, "port %s: MTU %u out of range %u-%u", cfg->name, cfg->mtu_bytes, VSW_PORT_MTU_MIN,
			   VSW_PORT_MTU_MAX);
		return -EINVAL;
	}
	if (cfg->queues > VSW_PORT_MAX_QUEUES) {
		errmsg_set(err, "port %s: %u queues, at most %d", cfg->name, cfg->queues,
			   VSW_PORT_MAX_QUEUES);
		return -EINVAL;
	}
	if (cfg->path && strlen(cfg->path) >= PATH_MAX) {
		return -ENAMETOOLONG;
	}
	return 0;
}

static struct dp_port *new_port(const struct vsw_dp_port_config *cfg)
{
	struct dp_port *p = calloc(1, sizeof(*p));

	if (!p) {
		return NULL;
	}
	snprintf(p->name, sizeof(p->name), "%s", cfg->name);
	snprintf(p->type, sizeof(p->type), "%s", cfg->type);
	snprintf(p->path, sizeof(p->path), "%s", cfg->path ? cfg->path : "");
	p->queues = cfg->queues ? cfg->queues : VSW_PORT_MAX_QUEUES;
	p->mtu_bytes = cfg->mtu_bytes ? cfg->mtu_bytes : VSW_PORT_MTU_DEFAULT;
	p->mac_limit = cfg->mac_limit;
	return p;
}

/* Makes room in dp->pending for one more port (lock held). */
static int grow_pending(struct vsw_dp *dp)
{
	unsigned int n = 1;
	struct dp_port **grown;

	for (struct dp_port *p = dp->ports; p; p = p->next) {
		n++;
	}
	if (n <= dp->pending_cap) {
		return 0;
	}
	grown = realloc(dp->pending, n * 2 * sizeof(*grown));
	if (!grown) {
		return -ENOMEM;
	}
	dp->pending = grown;
	dp->pending_cap = n * 2;
	return 0;
}

static int insert_port(struct vsw_dp *dp, const char *bridge, struct dp_port *p,
		       const struct vsw_dp_port_config *cfg, struct errmsg *err)
{
	struct vsw_port_opts opts;
	struct dp_bridge *br = find_bridge(dp, bridge);
	int ret;

	if (!br) {
		errmsg_set(err, "no bridge named %s", bridge);
		return -ENODEV;
	}
	if (find_port(dp, p->name)) {
		errmsg_set(err, "a port named %s already exists", p->name);
		return -EEXIST;
	}
	ret = grow_pending(dp);
	if (ret < 0) {
		return ret;
	}
	vsw_port_opts_init(&opts);
	opts.name = p->name;
	opts.type = p->type;
	opts.vlan = cfg->vlan;
	opts.tx_ctx = p;
	opts.mac_limit = cfg->mac_limit;
	ret = vsw_port_add(br->core, &opts, &p->port_no, err);
	if (ret < 0) {
		return ret;
	}
	p->br = br;
	p->next = dp->ports;
	dp->ports = p;
	atomic_fetch_add(&dp->gen, 1);
	return 0;
}

int vsw_dp_port_add(struct vsw_dp *dp, const char *bridge, const struct vsw_dp_port_config *cfg,
		    uint16_t *port_nop, struct errmsg *err)
{
	const struct vsw_port_class *pclass;
	struct vsw_port_params params = {0};
	struct vlan_port *check;
	struct dp_port *p;
	int ret;

	ret = check_port_config(cfg, &pclass, err);
	if (ret < 0) {
		return ret;
	}
	/* Refuse a bad VLAN setting before a device exists. */
	ret = vlan_port_create(&cfg->vlan, &check, err);
	if (ret < 0) {
		return ret;
	}
	vlan_port_destroy(check);
	vsw_dp_lock(dp);
	ret = !find_bridge(dp, bridge) ? -ENODEV : find_port(dp, cfg->name) ? -EEXIST : 0;
	vsw_dp_unlock(dp);
	if (ret == -ENODEV) {
		errmsg_set(err, "no bridge named %s", bridge);
		return ret;
	}
	if (ret == -EEXIST) {
		errmsg_set(err, "a port named %s already exists", cfg->name);
		return ret;
	}
	p = new_port(cfg);
	if (!p) {
		return -ENOMEM;
	}
	params.name = p->name;
	params.path = p->path;
	params.n_rxq = p->queues;
	params.n_txq = p->queues;
	params.mtu_bytes = p->mtu_bytes;
	params.mempool = dp->mempool;
	params.quiesce = hook_quiesce;
	params.changed = hook_changed;
	params.hook_ctx = dp;
	ret = pclass->open(&params, &p->dev, err);
	if (ret < 0) {
		free(p);
		return ret;
	}
	vsw_dp_lock(dp);
	ret = insert_port(dp, bridge, p, cfg, err);
	vsw_dp_unlock(dp);
	if (ret < 0) {
		free_port(p);
		return ret;
	}
	dp_wake(dp);
	if (port_nop) {
		*port_nop = p->port_no;
	}
	return 0;
}

int vsw_dp_port_del(struct vsw_dp *dp, const char *port, struct errmsg *err)
{
	struct dp_port *p;

	vsw_dp_lock(dp);
	p = find_port(dp, port);
	if (p) {
		unlink_port(dp, p);
	}
	vsw_dp_unlock(dp);
	if (!p) {
		errmsg_set(err, "no port named %s", port);
		return -ENODEV;
	}
	dp_wake(dp);
	free_port(p);
	return 0;
}

int vsw_dp_port_set_vlan(struct vsw_dp *dp, const char *port, const struct vlan_port_opts *vlan,
			 struct errmsg *err)
{
	struct dp_port *p;
	int ret;

	vsw_dp_lock(dp);
	p = find_port(dp, port);
	ret = p ? vsw_port_set_vlan(p->br->core, p->port_no, vlan, err) : -ENODEV;
	vsw_dp_unlock(dp);
	if (!p) {
		errmsg_set(err, "no port named %s", port);
	}
	return ret;
}

int vsw_dp_port_set_mac_limit(struct vsw_dp *dp, const char *port, uint32_t mac_limit,
			      struct errmsg *err)
{
	struct dp_port *p;
	int ret = -ENODEV;

	vsw_dp_lock(dp);
	p = find_port(dp, port);
	if (p) {
		ret = vsw_port_set_mac_limit(p->br->core, p->port_no, mac_limit);
		p->mac_limit = mac_limit;
	}
	vsw_dp_unlock(dp);
	if (!p) {
		errmsg_set(err, "no port named %s", port);
	}
	return ret;
}

int vsw_dp_capture_start(struct vsw_dp *dp, const char *port, const char *file,
			 uint64_t max_frames, uint32_t seconds, struct errmsg *err)
{
	struct dp_port *p;
	int ret = 0;

	if (strlen(file) >= PATH_MAX) {
		return -ENAMETOOLONG;
	}
	vsw_dp_lock(dp);
	p = find_port(dp, port);
	if (!p) {
		errmsg_set(err, "no port named %s", port);
		ret = -ENODEV;
	} else if (p->cap) {
		errmsg_set(err, "port %s is already being captured to %s", port, p->cap_file);
		ret = -EBUSY;
	} else {
		p->cap_done = false;
		ret = vsw_pcap_open(file, 0, &p->cap, err);
	}
	if (ret == 0) {
		snprintf(p->cap_file, sizeof(p->cap_file), "%s", file);
		p->cap_max = max_frames;
		p->cap_deadline_ms = seconds ? vsw_dp_now_ms() + seconds * 1000ull : 0;
	}
	vsw_dp_unlock(dp);
	return ret;
}

int vsw_dp_capture_stop(struct vsw_dp *dp, const char *port, uint64_t *framesp,
			struct errmsg *err)
{
	struct dp_port *p;
	uint64_t frames = 0;
	int ret = 0;

	vsw_dp_lock(dp);
	p = find_port(dp, port);
	if (!p) {
		errmsg_set(err, "no port named %s", port);
		ret = -ENODEV;
	} else if (p->cap) {
		frames = vsw_pcap_frames(p->cap);
		ret = vsw_pcap_close(p->cap);
		p->cap = NULL;
		if (ret < 0) {
			errmsg_set(err, "capture of %s to %s: %s", port, p->cap_file,
				   strerror(-ret));
		}
	} else if (p->cap_done) {
		frames = p->cap_done_frames;
	} else {
		errmsg_set(err, "port %s is not being captured", port);
		ret = -ENOENT;
	}
	if (p) {
		p->cap_done = false;
	}
	vsw_dp_unlock(dp);
	if (ret == 0 && framesp) {
		*framesp = frames;
	}
	return ret;
}

static void fill_bridge_info(const struct dp_bridge *br, struct vsw_dp_bridge_info *info)
{
	info->name = br->name;
	info->bridge = br->core;
	info->mac_aging_s = br->mac_aging_s;
	info->mac_capacity = br->mac_capacity;
}

int vsw_dp_bridge_at(struct vsw_dp *dp, unsigned int index, struct vsw_dp_bridge_info *info)
{
	struct dp_bridge *br = dp->bridges;

	while (br && index--) {
		br = br->next;
	}
	if (!br) {
		return -ENOENT;
	}
	fill_bridge_info(br, info);
	return 0;
}

int vsw_dp_bridge_find(struct vsw_dp *dp, const char *name, struct vsw_dp_bridge_info *info)
{
	struct dp_bridge *br = find_bridge(dp, name);

	if (!br) {
		return -ENODEV;
	}
	fill_bridge_info(br, info);
	return 0;
}

int vsw_dp_port_info(struct vsw_dp *dp, const char *port, struct vsw_dp_port_info *info)
{
	struct dp_port *p = find_port(dp, port);

	if (!p) {
		return -ENODEV;
	}
	memset(info, 0, sizeof(*info));
	info->bridge = p->br->name;
	info->port_no = p->port_no;
	info->type = p->type;
	info->path = p->path;
	info->queues = p->queues;
	info->mtu_bytes = p->mtu_bytes;
	info->mac_limit = p->mac_limit;
	info->link_up = p->dev->pclass->link_up(p->dev);
	info->capturing = p->cap != NULL;
	info->captured = p->cap ? vsw_pcap_frames(p->cap) : p->cap_done_frames;
	info->capture_file = p->cap || p->cap_done ? p->cap_file : NULL;
	p->dev->pclass->get_stats(p->dev, &info->device);
	return 0;
}

void vsw_dp_destroy(struct vsw_dp *dp)
{
	if (!dp) {
		return;
	}
	if (dp->thread_started) {
		atomic_store(&dp->stop, true);
		dp_wake(dp);
		pthread_join(dp->thread, NULL);
	}
	while (dp->bridges) {
		vsw_dp_bridge_del(dp, dp->bridges->name, NULL);
	}
	for (unsigned int i = 0; i < dp->n_dups; i++) {
		close(dp->dups[i]);
	}
	free(dp->dups);
	free(dp->pending);
	if (dp->ep >= 0) {
		close(dp->ep);
	}
	close(dp->wake_fd);
	rte_mempool_free(dp->mempool);
	pthread_mutex_destroy(&dp->lock);
	free(dp);
}
