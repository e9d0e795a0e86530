// SPDX-License-Identifier: MIT
/* vublk-bench.c: 'vublk bench', a fio-like load on a vhost-user-blk server
 * from one thread: QD requests in flight on each of Q queues, random or
 * sequential, read, write or a mix, for a fixed time; prints ops/s, MiB/s
 * and completion latency percentiles.  Waits on the call eventfds by
 * default (as a guest with interrupts would), or busy-polls with --poll.
 * --rate paces submissions at a fixed rate, --timeline reports the largest
 * latency per interval (where a live migration's stalls show), and SIGINT or
 * SIGTERM ends the run early with a report, so a caller can run it for as
 * long as something else takes. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cliutil.h"
#include "vublk-cli.h"

static const char bench_usage[] =
	"Usage: vublk bench [options] SOCK\n"
	"Drives the server at SOCK with QD requests per queue for a fixed time.\n"
	"  -w, --rw MODE        randread (default), randwrite, read, write, randrw\n"
	"  -b, --bs SIZE        bytes per request (default 4K)\n"
	"  -d, --qd N           requests in flight per queue (default 32)\n"
	"  -t, --time SECONDS   run time (default 5)\n"
	"  -M, --mix PERCENT    reads in randrw (default 70)\n"
	"  -s, --size SIZE      use only the first SIZE bytes of the disk\n"
	"  -p, --poll           busy-poll the used rings instead of sleeping\n"
	"  -r, --rate OPS       submit OPS requests per second in all (a request\n"
	"                       due while QD are in flight goes when one ends)\n"
	"  -T, --timeline MS    report ops and the largest latency per MS interval\n"
	"                       (by submission time; with -j only)\n"
	"SIGINT or SIGTERM ends the run early; the report covers what ran.\n" CONN_HELP;

struct bench_slot {
	struct bench *b;
	unsigned int q;
	void *buf;
	uint64_t start_ns;
	bool busy;
};

struct bench {
	struct vublk *dev;
	bool random, read_only, write_only;
	unsigned int mix;
	uint32_t bs;
	uint64_t blocks;     /* bs-sized blocks in the range used */
	uint64_t next_block; /* sequential cursor */
	uint64_t rng;
	uint64_t end_ns;
	bool stopping;
	uint64_t ops, errors, submit_errors;
	uint32_t *lat_ns;    /* one per completion */
	size_t nlat, caplat;
	/* --rate: the next request is due at next_ns, then every interval_ns. */
	uint64_t interval_ns, next_ns;
	/* --timeline: per step_ns interval from start_ns, by submission time. */
	uint64_t start_ns, step_ns;
	uint64_t *tl_ops;
	uint32_t *tl_max_ns;
	size_t ntl;
};

/* Set by SIGINT/SIGTERM: no more submissions, drain, report. */
static volatile sig_atomic_t bench_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	bench_stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void bench_done(void *opaque, int status, uint32_t used_bytes);

static int bench_submit(struct bench_slot *slot)
{
	struct bench *b = slot->b;
	uint64_t block = b->random ? xorshift(&b->rng) % b->blocks : b->next_block++ % b->blocks;
	bool read = b->read_only || (!b->write_only && xorshift(&b->rng) % 100 < b->mix);
	struct vublk_io io = {.type = read ? VUBLK_T_IN : VUBLK_T_OUT,
			      .sector = block * (b->bs / VUBLK_SECTOR_BYTES),
			      .buf = slot->buf, .bytes = b->bs};

	slot->start_ns = now_ns();
	slot->busy = true;
	return vublk_submit(b->dev, slot->q, &io, bench_done, slot);
}

static void timeline_add(struct bench *b, uint64_t start_ns, uint64_t lat_ns)
{
	size_t i;

	if (!b->ntl) {
		return;
	}
	i = (start_ns - b->start_ns) / b->step_ns;
	/* A request still in flight at the planned end lands in the last one. */
	i = i < b->ntl ? i : b->ntl - 1;
	b->tl_ops[i]++;
	if (lat_ns > b->tl_max_ns[i]) {
		b->tl_max_ns[i] = lat_ns > UINT32_MAX ? UINT32_MAX : (uint32_t)lat_ns;
	}
}

static void bench_done(void *opaque, int status, uint32_t used_bytes)
{
	struct bench_slot *slot = opaque;
	struct bench *b = slot->b;
	uint64_t t = now_ns();

	b->ops++;
	slot->busy = false;
	timeline_add(b, slot->start_ns, t - slot->start_ns);
	if (status != VUBLK_S_OK) {
		b->errors++;
	}
	if (b->nlat == b->caplat) {
		size_t cap = b->caplat ? b->caplat * 2 : 1 << 16;
		uint32_t *p = realloc(b->lat_ns, cap * sizeof(*p));

		if (p) {
			b->lat_ns = p;
			b->caplat = cap;
		}
	}
	if (b->nlat < b->caplat) {
		uint64_t d = t - slot->start_ns;

		b->lat_ns[b->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	}
	/* With --rate the main loop submits when the next request is due. */
	if (!b->interval_ns && t < b->end_ns && !bench_stop && bench_submit(slot) < 0) {
		b->submit_errors++;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const struct bench *b, double p)
{
	size_t i;

	if (b->nlat == 0) {
		return 0;
	}
	i = (size_t)ceil(p / 100.0 * b->nlat);
	i = i ? i - 1 : 0;
	return b->lat_ns[i < b->nlat ? i : b->nlat - 1] / 1000.0;
}

static int parse_mode(const char *s, struct bench *b)
{
	static const struct {
		const char *name;
		bool random, read_only, write_only;
	} modes[] = {{"randread", true, true, false},  {"randwrite", true, false, true},
		     {"read", false, true, false},     {"write", false, false, true},
		     {"randrw", true, false, false}};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (!strcmp(s, modes[i].name)) {
			b->random = modes[i].random;
			b->read_only = modes[i].read_only;
			b->write_only = modes[i].write_only;
			return 0;
		}
	}
	return -1;
}

/* The intervals up to the end of the run: start_ns is CLOCK_MONOTONIC, so a
 * caller can line them up with its own clock. */
static struct json_object *timeline_json(const struct bench *b)
{
	struct json_object *o = json_object_new_object(), *ops = json_object_new_array(),
			   *max = json_object_new_array();
	size_t n = (b->end_ns - b->start_ns) / b->step_ns + 1;

	n = n < b->ntl ? n : b->ntl;
	for (size_t i = 0; i < n; i++) {
		json_object_array_add(ops, json_object_new_int64((int64_t)b->tl_ops[i]));
		json_object_array_add(max, json_object_new_double(round(b->tl_max_ns[i] / 100.0) / 10));
	}
	json_object_object_add(o, "start_ns", json_object_new_int64((int64_t)b->start_ns));
	json_object_object_add(o, "step_ms", json_object_new_double(b->step_ns / 1e6));
	json_object_object_add(o, "ops", ops);
	json_object_object_add(o, "max_us", max);
	return o;
}

static void bench_report(const struct bench *b, const char *mode, unsigned int qd,
			 unsigned int nq, double secs, bool json)
{
	double iops = b->ops / secs, mibs = iops * b->bs / (1 << 20), mean = 0;
	uint64_t kicks = 0, calls = 0;

	for (size_t i = 0; i < b->nlat; i++) {
		mean += b->lat_ns[i];
	}
	/* Notifications each way: what EVENT_IDX is there to save. */
	for (unsigned int q = 0; q < nq; q++) {
		struct vublk_qstats st;

		vublk_queue_stats(b->dev, q, &st);
		kicks += st.kicks;
		calls += st.calls;
	}
	mean = b->nlat ? mean / b->nlat / 1000.0 : 0;
	if (json) {
		struct json_object *o = json_object_new_object(), *lat = json_object_new_object();

		json_object_object_add(o, "rw", json_object_new_string(mode));
		json_object_object_add(o, "bs", json_object_new_int64(b->bs));
		json_object_object_add(o, "qd", json_object_new_int(qd));
		json_object_object_add(o, "queues", json_object_new_int(nq));
		json_object_object_add(o, "seconds", json_object_new_double(secs));
		json_object_object_add(o, "ops", json_object_new_int64(b->ops));
		json_object_object_add(o, "errors", json_object_new_int64(b->errors));
		json_object_object_add(o, "ops_per_sec", json_object_new_int64(llround(iops)));
		json_object_object_add(o, "mib_per_sec", json_object_new_double(round(mibs * 10) / 10));
		json_object_object_add(lat, "mean", json_object_new_double(round(mean * 10) / 10));
		json_object_object_add(lat, "p50", json_object_new_double(pct_us(b, 50)));
		json_object_object_add(lat, "p99", json_object_new_double(pct_us(b, 99)));
		json_object_object_add(lat, "p999", json_object_new_double(pct_us(b, 99.9)));
		json_object_object_add(lat, "max", json_object_new_double(pct_us(b, 100)));
		json_object_object_add(o, "lat_us", lat);
		json_object_object_add(o, "kicks", json_object_new_int64((int64_t)kicks));
		json_object_object_add(o, "calls", json_object_new_int64((int64_t)calls));
		if (b->interval_ns) {
			json_object_object_add(o, "rate",
					       json_object_new_int64(llround(1e9 / b->interval_ns)));
		}
		if (b->ntl) {
			json_object_object_add(o, "timeline", timeline_json(b));
		}
		cli_json_print(stdout, o);
		json_object_put(o);
		return;
	}
	printf("%s bs=%u qd=%u queues=%u: %.0f ops/s, %.1f MiB/s, %" PRIu64 " errors\n", mode, b->bs,
	       qd, nq, iops, mibs, b->errors);
	printf("latency us: mean %.1f p50 %.1f p99 %.1f p99.9 %.1f max %.1f\n", mean, pct_us(b, 50),
	       pct_us(b, 99), pct_us(b, 99.9), pct_us(b, 100));
	printf("notifications: %" PRIu64 " kicks, %" PRIu64 " calls\n", kicks, calls);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000u, .tv_nsec = ns % 1000000000u};

	nanosleep(&ts, NULL);
}

/* --rate: submits every request due by 't' on a free slot; '*wait_ns' is
 * then how long until the next one is due, or UINT64_MAX when none is (all
 * slots busy: a completion wakes the loop; or the run is over). */
static int bench_pace(struct bench *b, struct bench_slot *slots, unsigned int n, uint64_t t,
		      uint64_t *wait_ns)
{
	*wait_ns = UINT64_MAX;
	if (bench_stop) {
		return 0;
	}
	for (unsigned int i = 0; i < n && b->next_ns <= t && b->next_ns < b->end_ns; i++) {
		int ret;

		if (slots[i].busy) {
			continue;
		}
		ret = bench_submit(&slots[i]);
		if (ret < 0) {
			return ret;
		}
		b->next_ns += b->interval_ns;
	}
	if (b->next_ns > t && b->next_ns < b->end_ns) {
		*wait_ns = b->next_ns - t;
	}
	return 0;
}

static int bench_run(struct bench *b, unsigned int nq, unsigned int qd, double secs, bool poll)
{
	struct bench_slot *slots = calloc((size_t)nq * qd, sizeof(*slots));
	unsigned int n = nq * qd;
	uint64_t start;
	int ret = 0;

	if (!slots) {
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		slots[i] = (struct bench_slot){.b = b, .q = i / qd, .buf = vublk_alloc(b->dev, b->bs)};
		if (!slots[i].buf) {
			free(slots);
			return -ENOMEM;
		}
		memset(slots[i].buf, 0x5a, b->bs);
	}
	start = now_ns();
	b->start_ns = b->next_ns = start;
	b->end_ns = start + (uint64_t)(secs * 1e9);
	for (unsigned int i = 0; i < n && ret == 0 && !b->interval_ns; i++) {
		ret = bench_submit(&slots[i]);
	}
	/* Past the end (or a signal) nothing is submitted; drain what is in
	 * flight. */
	while (ret >= 0) {
		uint64_t wait_ns = UINT64_MAX;
		bool idle = true;

		if (b->interval_ns) {
			ret = bench_pace(b, slots, n, now_ns(), &wait_ns);
			if (ret < 0) {
				break;
			}
		}
		for (unsigned int q = 0; q < nq; q++) {
			struct vublk_qstats st;

			vublk_queue_stats(b->dev, q, &st);
			idle = idle && st.inflight == 0;
		}
		if (idle && wait_ns == UINT64_MAX) {
			break;
		}
		if (idle) {
			sleep_ns(wait_ns);
		} else if (poll) {
			ret = vublk_poll(b->dev, -1);
		} else if (wait_ns == UINT64_MAX || wait_ns >= 1000000) {
			/* Whole milliseconds: vublk_wait() wakes early on a completion. */
			ret = vublk_wait(b->dev, -1,
					 wait_ns == UINT64_MAX ? 1000 : (int)(wait_ns / 1000000));
		} else {
			/* Due within a millisecond and others in flight (QD > 1):
			 * short sleeps between polls. */
			ret = vublk_poll(b->dev, -1);
			if (ret == 0) {
				sleep_ns(wait_ns < 20000 ? wait_ns : 20000);
			}
		}
	}
	b->end_ns = now_ns();
	free(slots);
	if (ret < 0) {
		return ret;
	}
	qsort(b->lat_ns, b->nlat, sizeof(*b->lat_ns), cmp_u32);
	return (int)((b->end_ns - start) / 1000); /* microseconds, fits for a bench */
}

int cmd_bench(int argc, char **argv)
{
	static const struct option longopts[] = {
		CONN_LONG_OPTS, {"rw", required_argument, NULL, 'w'},
		{"bs", required_argument, NULL, 'b'}, {"qd", required_argument, NULL, 'd'},
		{"time", required_argument, NULL, 't'}, {"mix", required_argument, NULL, 'M'},
		{"size", required_argument, NULL, 's'}, {"poll", no_argument, NULL, 'p'},
		{"rate", required_argument, NULL, 'r'}, {"timeline", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct sigaction sa = {.sa_handler = on_stop_signal};
	struct conn_args ca = {.json = false};
	struct bench b = {.mix = 70, .bs = 4096, .rng = 0x2545f4914f6cdd1dull};
	const char *mode = "randread";
	uint64_t v, qd = 32, size = 0, rate = 0;
	double secs = 5, step_ms = 0;
	bool poll = false;
	int c, us;

	vublk_opts_init(&ca.opts);
	parse_mode(mode, &b);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":" CONN_SHORT_OPTS "w:b:d:t:M:s:pr:T:h", longopts, NULL)) !=
	       -1) {
		int bad = 0;

		switch (c) {
		case 'h':
			fputs(bench_usage, stdout);
			return CLI_EXIT_OK;
		case 'w':
			mode = optarg;
			bad = parse_mode(optarg, &b) < 0;
			break;
		case 'b':
			bad = cli_parse_size(optarg, &v) < 0 || v == 0 || v % 512 || v > (4 << 20);
			b.bs = v;
			break;
		case 'd':
			bad = cli_parse_u64(optarg, &qd) < 0 || qd == 0 || qd > 1024;
			break;
		case 't':
			secs = atof(optarg);
			bad = !(secs > 0 && secs <= 2000);
			break;
		case 'M':
			bad = cli_parse_u64(optarg, &v) < 0 || v > 100;
			b.mix = v;
			break;
		case 's':
			bad = cli_parse_size(optarg, &size) < 0;
			break;
		case 'p':
			poll = true;
			break;
		case 'r':
			bad = cli_parse_u64(optarg, &rate) < 0 || rate == 0 || rate > 10000000;
			break;
		case 'T':
			step_ms = atof(optarg);
			bad = !(step_ms >= 0.1 && step_ms <= 60000);
			break;
		default:
			if (conn_opt("bench", c, optarg, &ca) == 1) {
				break;
			}
			if (c == '?' || c == ':') {
				cli_getopt_error("bench", c, argv);
			}
			return CLI_EXIT_USAGE;
		}
		if (bad) {
			cli_usage_error("bench", "invalid value '%s'", optarg);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cli_usage_error("bench", "expects one socket path");
		return CLI_EXIT_USAGE;
	}
	/* A chain per request: each queue needs qd * 3 descriptors. */
	if (ca.opts.queue_size < qd * 3) {
		ca.opts.queue_size = 1;
		while (ca.opts.queue_size < qd * 3) {
			ca.opts.queue_size <<= 1;
		}
	}
	ca.opts.mem_bytes = (uint64_t)ca.opts.num_queues * qd * ((b.bs + 4095) / 4096 * 4096) +
			    (32 << 20);
	b.dev = conn_open(argv[optind], &ca.opts);
	if (!b.dev) {
		return CLI_EXIT_FAILURE;
	}
	v = vublk_config(b.dev)->capacity_sectors * VUBLK_SECTOR_BYTES;
	if (size && size < v) {
		v = size;
	}
	b.blocks = v / b.bs;
	if (b.blocks == 0) {
		cli_error("bench: the disk is smaller than one block");
		vublk_close(b.dev);
		return CLI_EXIT_FAILURE;
	}
	if (rate) {
		b.interval_ns = 1000000000u / rate;
	}
	if (step_ms > 0) {
		b.step_ns = (uint64_t)(step_ms * 1e6);
		b.ntl = (size_t)(secs * 1e9 / b.step_ns) + 1;
		b.tl_ops = calloc(b.ntl, sizeof(*b.tl_ops));
		b.tl_max_ns = calloc(b.ntl, sizeof(*b.tl_max_ns));
		if (!b.tl_ops || !b.tl_max_ns) {
			cli_error("bench: %s", strerror(ENOMEM));
			vublk_close(b.dev);
			free(b.tl_ops);
			free(b.tl_max_ns);
			return CLI_EXIT_FAILURE;
		}
	}
	/* No SA_RESTART: the wait returns to the loop, which stops submitting. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	us = bench_run(&b, ca.opts.num_queues, qd, secs, poll);
	if (us < 0) {
		cli_error("bench: %s", strerror(-us));
		vublk_close(b.dev);
		free(b.lat_ns);
		free(b.tl_ops);
		free(b.tl_max_ns);
		return CLI_EXIT_FAILURE;
	}
	bench_report(&b, mode, qd, ca.opts.num_queues, us / 1e6, ca.json);
	vublk_close(b.dev);
	free(b.lat_ns);
	free(b.tl_ops);
	free(b.tl_max_ns);
	return b.errors || b.submit_errors ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
