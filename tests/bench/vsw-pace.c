/* SPDX-License-Identifier: MIT */
/* vsw-pace.c: a small DPDK client for the switch's light-load and latency
 * figures, which testpmd cannot give: it sends timestamped frames on its
 * first port at a set rate, or one at a time after set silences, receives
 * them on its second port and prints latency percentiles.  One thread, two
 * net_virtio_user ports given as --vdev, like the benchmark's testpmd.
 *
 *   vsw-pace EAL-ARGS -- --rate PPS --secs S [--warmup S] [--size BYTES]
 *                        [--cpu-pid PID] [--deadline-ms MS]
 *   vsw-pace EAL-ARGS -- --gaps US[xN],US[xN],... [--repeat N] [--deadline-ms MS]
 *
 * --rate: frames evenly spaced (one per 1/PPS), latency of every frame
 * sent after the warm-up; with --cpu-pid, also the CPU time of that
 * process (every thread, /proc/PID/task/N/schedstat) over the same
 * window, in percent of one core.  --gaps: for each gap in turn, stay
 * silent that long, send one frame (N frames back to back with xN) and
 * wait for it (all of them); the latency of each (of the last).
 * A frame not back within --deadline-ms (default 100) counts as lost and
 * the exit status is 1: tests/switch uses --gaps to check that no frame
 * is stranded while the switch sleeps.  Exit 2: bad arguments; 3: the
 * ports did not come up.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

#define PACE_ETHERTYPE 0x88b5 /* IEEE local experimental */
#define PACE_MAGIC 0x76737770u
#define PACE_MAX_GAPS 256
#define PACE_RING 1024
#define PACE_BURST 32

struct pace_hdr {
	uint8_t dst[6];
	uint8_t src[6];
	uint16_t type_be;
	uint32_t magic;
	uint64_t seq;
	uint64_t tx_tsc;
} __attribute__((packed));

struct pace_opts {
	uint64_t rate_pps;
	double secs;
	double warmup_secs;
	uint32_t size_bytes; /* Ethernet frame without FCS */
	int cpu_pid;
	uint64_t deadline_ms;
	uint64_t gaps_us[PACE_MAX_GAPS];
	unsigned int gap_frames[PACE_MAX_GAPS]; /* sent after each gap */
	unsigned int n_gaps;
	unsigned int repeat;
};

struct pace {
	struct rte_mempool *pool;
	uint64_t hz;
	uint64_t seq;
	uint64_t sent, received, late;
	uint64_t *lat_ns; /* per sample */
	size_t n_lat, cap_lat;
	uint64_t sample_from_seq; /* frames before it are warm-up */
};

static const uint8_t mac0[6] = {0x02, 0, 0, 0, 0, 0};
static const uint8_t mac1[6] = {0x02, 0, 0, 0, 0, 1};

static void usage(void)
{
	fprintf(stderr, "usage: vsw-pace EAL-ARGS -- --rate PPS --secs S [--warmup S] [--size N] "
			"[--cpu-pid PID] [--deadline-ms MS]\n"
			"       vsw-pace EAL-ARGS -- --gaps US[xN],US[xN],... [--repeat N] "
			"[--deadline-ms MS]\n");
	exit(2);
}

static int parse_gaps(const char *s, struct pace_opts *o)
{
	char *copy = strdup(s), *save = NULL, *tok, *end;

	if (!copy) {
		return -ENOMEM;
	}
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->n_gaps == PACE_MAX_GAPS) {
			free(copy);
			return -E2BIG;
		}
		errno = 0;
		o->gaps_us[o->n_gaps] = strtoull(tok, &end, 10);
		o->gap_frames[o->n_gaps] = 1;
		if (!errno && end != tok && *end == 'x') {
			char *n = end + 1;

			o->gap_frames[o->n_gaps] = (unsigned int)strtoul(n, &end, 10);
			if (end == n || o->gap_frames[o->n_gaps] == 0 ||
			    o->gap_frames[o->n_gaps] > PACE_RING / 2) {
				errno = EINVAL;
			}
		}
		if (errno || *end || end == tok) {
			free(copy);
			return -EINVAL;
		}
		o->n_gaps++;
	}
	free(copy);
	return o->n_gaps ? 0 : -EINVAL;
}

static void parse_opts(int argc, char **argv, struct pace_opts *o)
{
	static const struct option longopts[] = {
		{"rate", required_argument, NULL, 'r'},   {"secs", required_argument, NULL, 's'},
		{"warmup", required_argument, NULL, 'w'}, {"size", required_argument, NULL, 'z'},
		{"cpu-pid", required_argument, NULL, 'p'}, {"deadline-ms", required_argument, NULL, 'd'},
		{"gaps", required_argument, NULL, 'g'},   {"repeat", required_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->secs = 5;
	o->warmup_secs = 1;
	o->size_bytes = 60;
	o->deadline_ms = 100;
	o->repeat = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o->rate_pps = strtoull(optarg, NULL, 10); break;
		case 's': o->secs = atof(optarg); break;
		case 'w': o->warmup_secs = atof(optarg); break;
		case 'z': o->size_bytes = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'p': o->cpu_pid = atoi(optarg); break;
		case 'd': o->deadline_ms = strtoull(optarg, NULL, 10); break;
		case 'g':
			if (parse_gaps(optarg, o) < 0) {
				fprintf(stderr, "vsw-pace: --gaps takes microseconds, each with an "
						"optional xFRAMES (at most %d), comma-separated, "
						"at most %d\n", PACE_RING / 2, PACE_MAX_GAPS);
				exit(2);
			}
			break;
		case 'n': o->repeat = (unsigned int)strtoul(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (optind != argc || (!o->rate_pps == !o->n_gaps) || o->secs <= 0 || o->repeat == 0 ||
	    o->size_bytes < sizeof(struct pace_hdr) || o->size_bytes > 1514 ||
	    o->deadline_ms == 0) {
		usage();
	}
}

static int port_start(uint16_t port, struct rte_mempool *pool)
{
	struct rte_eth_conf conf;
	struct rte_eth_link link;
	int ret, i;

	memset(&conf, 0, sizeof(conf));
	ret = rte_eth_dev_configure(port, 1, 1, &conf);
	if (ret == 0) {
		ret = rte_eth_rx_queue_setup(port, 0, PACE_RING, SOCKET_ID_ANY, NULL, pool);
	}
	if (ret == 0) {
		ret = rte_eth_tx_queue_setup(port, 0, PACE_RING, SOCKET_ID_ANY, NULL);
	}
	if (ret == 0) {
		ret = rte_eth_dev_start(port);
	}
	if (ret < 0) {
		return ret;
	}
	for (i = 0; i < 100; i++) {
		if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status) {
			return 0;
		}
		rte_delay_ms(100);
	}
	return -ETIMEDOUT;
}

static struct rte_mbuf *make_frame(struct pace *pc, const uint8_t *src, const uint8_t *dst,
				   uint32_t size_bytes)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pc->pool);
	struct pace_hdr *h;
	char *data;

	if (!m) {
		return NULL;
	}
	data = rte_pktmbuf_append(m, (uint16_t)size_bytes);
	if (!data) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memset(data, 0, size_bytes);
	h = (struct pace_hdr *)data;
	memcpy(h->dst, dst, 6);
	memcpy(h->src, src, 6);
	h->type_be = rte_cpu_to_be_16(PACE_ETHERTYPE);
	h->magic = PACE_MAGIC;
	h->seq = pc->seq++;
	h->tx_tsc = rte_rdtsc();
	return m;
}

/* Sends one frame from port 0 to port 1; false if the ring was full. */
static bool send_one(struct pace *pc, uint32_t size_bytes)
{
	struct rte_mbuf *m = make_frame(pc, mac0, mac1, size_bytes);

	if (!m) {
		return false;
	}
	if (rte_eth_tx_burst(0, 0, &m, 1) != 1) {
		rte_pktmbuf_free(m);
		pc->seq--;
		return false;
	}
	pc->sent++;
	return true;
}

static void record(struct pace *pc, uint64_t ns)
{
	uint64_t *grown;

	if (pc->n_lat == pc->cap_lat) {
		pc->cap_lat = pc->cap_lat ? 2 * pc->cap_lat : 65536;
		grown = realloc(pc->lat_ns, pc->cap_lat * sizeof(*grown));
		if (!grown) {
			fprintf(stderr, "vsw-pace: out of memory\n");
			exit(1);
		}
		pc->lat_ns = grown;
	}
	pc->lat_ns[pc->n_lat++] = ns;
}

/* Takes what both ports received; returns the frames of ours that came
 * back on port 1, recording the latency of those after the warm-up. */
static unsigned int receive(struct pace *pc, uint64_t deadline_cycles)
{
	struct rte_mbuf *pkts[PACE_BURST];
	unsigned int ours = 0;

	for (uint16_t port = 0; port < 2; port++) {
		uint16_t n = rte_eth_rx_burst(port, 0, pkts, PACE_BURST);
		uint64_t now = rte_rdtsc();

		for (uint16_t i = 0; i < n; i++) {
			const struct pace_hdr *h = rte_pktmbuf_mtod(pkts[i], const struct pace_hdr *);

			if (port == 1 && rte_pktmbuf_data_len(pkts[i]) >= sizeof(*h) &&
			    h->magic == PACE_MAGIC &&
			    h->type_be == rte_cpu_to_be_16(PACE_ETHERTYPE)) {
				uint64_t cyc = now - h->tx_tsc;

				ours++;
				pc->received++;
				if (cyc > deadline_cycles) {
					pc->late++;
				}
				if (h->seq >= pc->sample_from_seq) {
					record(pc, cyc * 1000000000ull / pc->hz);
				}
			}
		}
		rte_pktmbuf_free_bulk(pkts, n);
	}
	return ours;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *sorted, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);

	return n ? (double)sorted[i] / 1000.0 : 0.0;
}

static void print_latency(const char *what, uint64_t *ns, size_t n)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	printf("%s: samples %zu p50_us %.1f p90_us %.1f p99_us %.1f max_us %.1f\n", what, n,
	       pct_us(ns, n, 50), pct_us(ns, n, 90), pct_us(ns, n, 99), n ? ns[n - 1] / 1000.0 : 0);
}

/* Run time of every thread of 'pid' in ns, from schedstat; 0 if gone. */
static uint64_t proc_run_ns(int pid)
{
	char dir[64], path[64 + 256 + 16];
	unsigned long long ns;
	uint64_t total = 0;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/task", pid);
	d = opendir(dir);
	if (!d) {
		return 0;
	}
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.') {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s/schedstat", dir, e->d_name);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%llu", &ns) == 1) {
				total += ns;
			}
			fclose(f);
		}
	}
	closedir(d);
	return total;
}

/* Teaches the switch both addresses, so the measured frames are known
 * unicast: one frame each way, answered or not. */
static void learn(struct pace *pc)
{
	struct rte_mbuf *m;
	uint64_t end;

	m = make_frame(pc, mac1, mac0, 60);
	if (m && rte_eth_tx_burst(1, 0, &m, 1) != 1) {
		rte_pktmbuf_free(m);
	}
	end = rte_rdtsc() + pc->hz / 10;
	while (rte_rdtsc() < end) {
		receive(pc, UINT64_MAX);
	}
	pc->received = 0;
	pc->late = 0;
	pc->n_lat = 0;
}

static int run_rate(struct pace *pc, const struct pace_opts *o)
{
	uint64_t period = pc->hz / o->rate_pps, start = rte_rdtsc();
	uint64_t measure_from = start + (uint64_t)(o->warmup_secs * (double)pc->hz);
	uint64_t end = measure_from + (uint64_t)(o->secs * (double)pc->hz);
	uint64_t deadline = o->deadline_ms * pc->hz / 1000, next = start, cpu0 = 0, cpu1, drain;
	uint64_t sent_measured = 0, full = 0;
	bool measuring = false;

	pc->sample_from_seq = UINT64_MAX;
	while (rte_rdtsc() < end) {
		uint64_t now = rte_rdtsc();

		if (!measuring && now >= measure_from) {
			measuring = true;
			pc->sample_from_seq = pc->seq;
			cpu0 = o->cpu_pid ? proc_run_ns(o->cpu_pid) : 0;
			measure_from = now;
		}
		if (now >= next) {
			if (send_one(pc, o->size_bytes)) {
				sent_measured += measuring;
				next += period;
			} else {
				full++;
			}
			/* Behind by more than a few frames (we were preempted):
			 * skip them rather than send a burst. */
			if (now > next + 4 * period) {
				next = now + period;
			}
		}
		receive(pc, deadline);
	}
	cpu1 = o->cpu_pid ? proc_run_ns(o->cpu_pid) : 0;
	end = rte_rdtsc();
	drain = end + deadline;
	while (rte_rdtsc() < drain) {
		receive(pc, deadline);
	}
	printf("rate: target_pps %" PRIu64 " sent_pps %.0f ring_full %" PRIu64
	       " sent %" PRIu64 " received %" PRIu64 " lost %" PRIu64 " late %" PRIu64 "\n",
	       o->rate_pps, (double)sent_measured * pc->hz / (double)(end - measure_from), full,
	       pc->sent, pc->received, pc->sent - pc->received, pc->late);
	if (o->cpu_pid) {
		printf("switch_cpu_pct %.2f\n",
		       (double)(cpu1 - cpu0) / 1e9 / ((double)(end - measure_from) / pc->hz) * 100);
	}
	print_latency("latency", pc->lat_ns, pc->n_lat);
	return pc->sent == pc->received && pc->late == 0 ? 0 : 1;
}

static void silence(struct pace *pc, uint64_t us)
{
	uint64_t end = rte_rdtsc() + us * pc->hz / 1000000;

	/* Long silences sleep, so the client costs the machine nothing;
	 * the last millisecond spins, so the frame leaves on time. */
	if (us > 2000) {
		usleep((useconds_t)(us - 1000));
	}
	while (rte_rdtsc() < end) {
		receive(pc, UINT64_MAX);
	}
}

static int run_gaps(struct pace *pc, const struct pace_opts *o)
{
	uint64_t deadline = o->deadline_ms * pc->hz / 1000;
	uint64_t *per_gap[PACE_MAX_GAPS] = {0};
	unsigned int lost = 0;

	pc->sample_from_seq = 0;
	for (unsigned int g = 0; g < o->n_gaps; g++) {
		per_gap[g] = calloc(o->repeat, sizeof(uint64_t));
		if (!per_gap[g]) {
			return 1;
		}
	}
	for (unsigned int r = 0; r < o->repeat; r++) {
		for (unsigned int g = 0; g < o->n_gaps; g++) {
			unsigned int want = o->gap_frames[g];
			uint64_t t0, got = 0;

			silence(pc, o->gaps_us[g]);
			pc->n_lat = 0;
			t0 = rte_rdtsc();
			for (unsigned int i = 0; i < want; i++) {
				while (!send_one(pc, o->size_bytes)) {
					got += receive(pc, UINT64_MAX);
				}
			}
			while (got < want && rte_rdtsc() - t0 < deadline) {
				got += receive(pc, UINT64_MAX);
			}
			if (got < want || pc->n_lat < want) {
				printf("gap_us %" PRIu64 "x%u repeat %u: LOST %" PRIu64
				       " (not back within %" PRIu64 " ms)\n",
				       o->gaps_us[g], want, r, want - got, o->deadline_ms);
				per_gap[g][r] = UINT64_MAX;
				lost++;
				continue;
			}
			/* The last frame's: it waited longest for its turn. */
			per_gap[g][r] = pc->lat_ns[pc->n_lat - 1];
		}
	}
	for (unsigned int g = 0; g < o->n_gaps; g++) {
		char what[64];

		if (o->gap_frames[g] == 1) {
			snprintf(what, sizeof(what), "gap_us %" PRIu64, o->gaps_us[g]);
		} else {
			snprintf(what, sizeof(what), "gap_us %" PRIu64 "x%u", o->gaps_us[g],
				 o->gap_frames[g]);
		}
		print_latency(what, per_gap[g], o->repeat);
		free(per_gap[g]);
	}
	printf("gaps: sent %" PRIu64 " lost %u\n", pc->sent, lost);
	return lost ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct pace_opts o;
	struct pace pc = {0};
	int n, ret;

	n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "vsw-pace: cannot start DPDK's EAL\n");
		return 3;
	}
	argc -= n;
	argv += n;
	optind = 1;
	parse_opts(argc, argv, &o);
	if (rte_eth_dev_count_avail() != 2) {
		fprintf(stderr, "vsw-pace: needs two ports (--vdev net_virtio_user0,... and 1)\n");
		return 2;
	}
	pc.hz = rte_get_tsc_hz();
	pc.pool = rte_pktmbuf_pool_create("pace", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					  SOCKET_ID_ANY);
	if (!pc.pool || port_start(0, pc.pool) < 0 || port_start(1, pc.pool) < 0) {
		fprintf(stderr, "vsw-pace: the ports did not come up\n");
		return 3;
	}
	learn(&pc);
	pc.sent = 0;
	ret = o.rate_pps ? run_rate(&pc, &o) : run_gaps(&pc, &o);
	fflush(stdout);
	free(pc.lat_ns);
	rte_eth_dev_stop(0);
	rte_eth_dev_stop(1);
	rte_eth_dev_close(0);
	rte_eth_dev_close(1);
	rte_eal_cleanup();
	return ret;
}
