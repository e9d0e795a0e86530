// SPDX-License-Identifier: MIT
/* vublk-cli.c: the vublk tool, a guest-less client of a vhost-user-blk
 * server over libvublk: info (features, config), io (qemu-io-like commands
 * with verifiable patterns), malicious (the catalogue of bad descriptors),
 * inflight (writes held across a server kill -9) and bench
 * (vublk-bench.c).  Tests and benchmarks call it; see README.md here. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "cliutil.h"
#include "vublk-cli.h"

/* Large io commands go out in pieces of this size, well under any server's
 * size_max * seg_max that we know of (qemu-storage-daemon: 2 MiB). */
#define IO_CHUNK_BYTES (128u << 10)
#define IO_TIMEOUT_MS 30000
#define DEFAULT_FILL 0xcd /* qemu-io's */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void pattern_fill(void *buf, uint64_t offset, uint32_t bytes, uint64_t seed)
{
	uint8_t *p = buf;

	for (uint32_t i = 0; i < bytes; i++) {
		uint64_t at = offset + i;
		uint64_t w = splitmix64(seed + at / 8);

		p[i] = (uint8_t)(w >> (8 * (at % 8)));
	}
}

uint64_t pattern_check(const void *buf, uint64_t offset, uint32_t bytes, uint64_t seed,
		       uint64_t *badp)
{
	const uint8_t *p = buf;
	uint64_t first = UINT64_MAX;

	*badp = 0;
	for (uint32_t i = 0; i < bytes; i++) {
		uint64_t at = offset + i;

		if (p[i] != (uint8_t)(splitmix64(seed + at / 8) >> (8 * (at % 8)))) {
			if ((*badp)++ == 0) {
				first = at;
			}
		}
	}
	return first;
}

int conn_opt(const char *cmd, int c, const char *arg, struct conn_args *ca)
{
	uint64_t v;

	switch (c) {
	case 'q':
	case 'Q':
	case 'R':
		if (cli_parse_u64(arg, &v) < 0 || v > 1000000) {
			cli_usage_error(cmd, "invalid number '%s'", arg);
			return -1;
		}
		if (c == 'q') {
			ca->opts.num_queues = v;
		} else if (c == 'Q') {
			ca->opts.queue_size = v;
		} else {
			ca->opts.reconnect_ms = v;
		}
		return 1;
	case 'm':
		if (cli_parse_size(arg, &v) < 0 || v < (1u << 20)) {
			cli_usage_error(cmd, "invalid memory size '%s' (at least 1M)", arg);
			return -1;
		}
		ca->opts.mem_bytes = v;
		return 1;
	case 'j':
		ca->json = true;
		return 1;
	case CONN_OPT_PACKED:
		ca->opts.packed = true;
		return 1;
	case CONN_OPT_NO_EVENT_IDX:
		ca->opts.refuse_features |= 1ull << VUBLK_F_EVENT_IDX;
		return 1;
	}
	return 0;
}

struct vublk *conn_open(const char *path, const struct vublk_opts *opts)
{
	struct errmsg err = {{0}};
	struct vublk *dev;
	int ret = vublk_connect(path, opts, &dev, &err);

	if (ret < 0) {
		cli_error_ret(&err, path, ret);
		return NULL;
	}
	return dev;
}

/* Parses "[options] SOCK" for commands with only the shared options plus
 * 'extra' handled by 'fn'.  Returns the socket path or NULL (usage error
 * printed, exit 2). */
static const char *parse_common(const char *cmd, int argc, char **argv, struct conn_args *ca,
				const char *usage)
{
	static const struct option longopts[] = {CONN_LONG_OPTS, {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":" CONN_SHORT_OPTS "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			exit(0);
		}
		if (conn_opt(cmd, c, optarg, ca) != 1) {
			if (c == '?' || c == ':') {
				cli_getopt_error(cmd, c, argv);
			}
			return NULL;
		}
	}
	if (argc - optind != 1) {
		cli_usage_error(cmd, "expects exactly one socket path");
		return NULL;
	}
	return argv[optind];
}

/*
 * info
 */

static const char info_usage[] =
	"Usage: vublk info [options] SOCK\n"
	"Connects to the vhost-user-blk server at SOCK and prints the features it\n"
	"offers and we acked, the queue count and the config space.\n" CONN_HELP;

static struct json_object *feature_list(uint64_t bits, const char *(*name)(unsigned int))
{
	struct json_object *arr = json_object_new_array();

	for (unsigned int b = 0; b < 64; b++) {
		if ((bits >> b) & 1) {
			char buf[16];
			const char *n = name(b);

			if (!n) {
				snprintf(buf, sizeof(buf), "bit%u", b);
				n = buf;
			}
			json_object_array_add(arr, json_object_new_string(n));
		}
	}
	return arr;
}

static struct json_object *config_json(const struct vublk_config *c)
{
	struct json_object *o = json_object_new_object();

#define ADD(f) json_object_object_add(o, #f, json_object_new_int64(c->f))
	ADD(capacity_sectors);
	ADD(size_max);
	ADD(seg_max);
	ADD(cylinders);
	ADD(heads);
	ADD(sectors);
	ADD(blk_size);
	ADD(physical_block_exp);
	ADD(alignment_offset);
	ADD(min_io_size);
	ADD(opt_io_size);
	ADD(writeback);
	ADD(num_queues);
	ADD(max_discard_sectors);
	ADD(max_discard_seg);
	ADD(discard_sector_alignment);
	ADD(max_write_zeroes_sectors);
	ADD(max_write_zeroes_seg);
	ADD(write_zeroes_may_unmap);
#undef ADD
	return o;
}

static int cmd_info(int argc, char **argv)
{
	struct conn_args ca;
	struct json_object *o, *cfg;
	struct vublk *dev;
	const char *path;

	vublk_opts_init(&ca.opts);
	ca.json = false;
	path = parse_common("info", argc, argv, &ca, info_usage);
	if (!path) {
		return CLI_EXIT_USAGE;
	}
	dev = conn_open(path, &ca.opts);
	if (!dev) {
		return CLI_EXIT_FAILURE;
	}
	cfg = config_json(vublk_config(dev));
	o = json_object_new_object();
	json_object_object_add(o, "features_offered",
			       feature_list(vublk_offered_features(dev), vublk_feature_name));
	json_object_object_add(o, "features_acked",
			       feature_list(vublk_features(dev), vublk_feature_name));
	json_object_object_add(o, "protocol_features_offered",
			       feature_list(vublk_offered_protocol_features(dev),
					    vublk_protocol_feature_name));
	json_object_object_add(o, "protocol_features_acked",
			       feature_list(vublk_protocol_features(dev),
					    vublk_protocol_feature_name));
	json_object_object_add(o, "max_queues", json_object_new_int(vublk_max_queues(dev)));
	json_object_object_add(o, "inflight_area",
			       json_object_new_boolean(vublk_inflight_area(dev, NULL) != NULL));
	json_object_object_add(o, "config", cfg);
	if (ca.json) {
		cli_json_print(stdout, o);
	} else {
		json_object_object_foreach(o, key, val)
		{
			if (json_object_is_type(val, json_type_object)) {
				printf("%s:\n", key);
				json_object_object_foreach(val, k2, v2)
				{
					printf("  %-26s %s\n", k2, json_object_to_json_string(v2));
				}
			} else {
				printf("%-28s %s\n", key,
				       json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN));
			}
		}
	}
	json_object_put(o);
	return vublk_close(dev) < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/*
 * io
 */

static const char io_usage[] =
	"Usage: vublk io [options] -c CMD [-c CMD]... SOCK\n"
	"Runs qemu-io-like commands in order through the server at SOCK; the\n"
	"first failure stops the run (exit 1).  Offsets and lengths take K/M/G.\n"
	"  read [-P BYTE | -S SEED] [-s SEGS] [-i] OFF LEN   verify against a\n"
	"        byte or the seeded pattern (see README)\n"
	"  write [-P BYTE | -S SEED] [-s SEGS] [-i] OFF LEN  (default fill 0xcd)\n"
	"  zero [-u] OFF LEN      write-zeroes (-u: may unmap)\n"
	"  discard OFF LEN\n"
	"  flush\n"
	"  get-id                 prints the device id\n"
	"  type N [LEN]           request of raw type N (with LEN bytes of\n"
	"                         device-writable data); prints the status\n"
	"  queue N                later commands use queue N\n"
	"  hold                   prints 'hold' and waits for a line on stdin\n"
	"  drop | reconnect | pause | resume   connection and ring lifecycle\n"
	"  stats                  per-queue counters\n" CONN_HELP
	"  -c, --cmd CMD        a command (repeatable)\n";

struct io_state {
	struct vublk *dev;
	unsigned int q;
	uint8_t *buf; /* guest RAM, IO_CHUNK_BYTES */
	struct conn_args ca;
};

struct io_args {
	int fill;       /* -P, -1 none */
	bool seeded;    /* -S */
	uint64_t seed;
	unsigned int segs;
	bool indirect;
	bool unmap;
	uint64_t off;
	uint64_t len;
};

static const char *status_name(int status)
{
	switch (status) {
	case VUBLK_S_OK:
		return "OK";
	case VUBLK_S_IOERR:
		return "IOERR";
	case VUBLK_S_UNSUPP:
		return "UNSUPP";
	case VUBLK_S_UNTOUCHED:
		return "never written";
	}
	return "unknown";
}

/* One request; prints why it failed. */
static int io_do(struct io_state *st, const char *what, struct vublk_io *io)
{
	int ret = vublk_io_sync(st->dev, st->q, io, IO_TIMEOUT_MS, NULL);

	if (ret < 0) {
		cli_error("%s: %s", what, strerror(-ret));
		return -1;
	}
	if (ret != VUBLK_S_OK) {
		cli_error("%s at sector %" PRIu64 ": status %d (%s)", what, io->sector, ret,
			  status_name(ret));
		return -1;
	}
	return 0;
}

static int io_rw(struct io_state *st, const struct io_args *a, bool write)
{
	uint64_t bad = 0, first_bad = UINT64_MAX;

	if (a->off % VUBLK_SECTOR_BYTES || a->len % VUBLK_SECTOR_BYTES) {
		cli_error("%s: offset and length must be multiples of 512", write ? "write" : "read");
		return -1;
	}
	for (uint64_t done = 0; done < a->len;) {
		uint32_t n = a->len - done < IO_CHUNK_BYTES ? a->len - done : IO_CHUNK_BYTES;
		struct vublk_io io = {.type = write ? VUBLK_T_OUT : VUBLK_T_IN,
				      .sector = (a->off + done) / VUBLK_SECTOR_BYTES,
				      .buf = st->buf, .bytes = n, .segs = a->segs,
				      .indirect = a->indirect};

		if (write && a->seeded) {
			pattern_fill(st->buf, a->off + done, n, a->seed);
		} else if (write) {
			memset(st->buf, a->fill >= 0 ? a->fill : DEFAULT_FILL, n);
		}
		if (io_do(st, write ? "write" : "read", &io) < 0) {
			return -1;
		}
		if (!write && a->seeded) {
			uint64_t b, f = pattern_check(st->buf, a->off + done, n, a->seed, &b);

			if (b && bad == 0) {
				first_bad = f;
			}
			bad += b;
		} else if (!write && a->fill >= 0) {
			for (uint32_t i = 0; i < n; i++) {
				if (st->buf[i] != a->fill && bad++ == 0) {
					first_bad = a->off + done + i;
				}
			}
		}
		done += n;
	}
	printf("%s %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", write ? "wrote" : "read",
	       a->len, a->len, a->off);
	if (bad) {
		printf("Pattern verification failed at offset %" PRIu64 ", %" PRIu64 " bytes\n",
		       first_bad, bad);
		return -1;
	}
	return 0;
}

static int io_range(struct io_state *st, const struct io_args *a, uint32_t type)
{
	const char *what = type == VUBLK_T_DISCARD ? "discard" : "zero";

	if (a->off % VUBLK_SECTOR_BYTES || a->len % VUBLK_SECTOR_BYTES) {
		cli_error("%s: offset and length must be multiples of 512", what);
		return -1;
	}
	for (uint64_t done = 0; done < a->len;) {
		/* One segment of at most 4 GiB - 512 bytes of sectors. */
		uint64_t n = a->len - done < (1ull << 31) ? a->len - done : (1ull << 31);
		struct vublk_io io = {.type = type,
				      .sector = (a->off + done) / VUBLK_SECTOR_BYTES,
				      .num_sectors = n / VUBLK_SECTOR_BYTES,
				      .dwz_flags = a->unmap ? VUBLK_WZ_F_UNMAP : 0};

		if (io_do(st, what, &io) < 0) {
			return -1;
		}
		done += n;
	}
	printf("%s %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n",
	       type == VUBLK_T_DISCARD ? "discarded" : "zeroed", a->len, a->len, a->off);
	return 0;
}

static int io_get_id(struct io_state *st)
{
	struct vublk_io io = {.type = VUBLK_T_GET_ID, .buf = st->buf, .bytes = VUBLK_ID_BYTES};
	char id[VUBLK_ID_BYTES + 1] = {0};

	memset(st->buf, 0, VUBLK_ID_BYTES);
	if (io_do(st, "get-id", &io) < 0) {
		return -1;
	}
	memcpy(id, st->buf, VUBLK_ID_BYTES);
	printf("id: %s\n", id);
	return 0;
}

static int io_type(struct io_state *st, uint64_t type, uint64_t len)
{
	struct vublk_io io = {.type = type, .buf = len ? st->buf : NULL, .bytes = len};
	int ret;

	if (len > IO_CHUNK_BYTES || type > UINT32_MAX) {
		cli_error("type: type or length out of range");
		return -1;
	}
	ret = vublk_io_sync(st->dev, st->q, &io, IO_TIMEOUT_MS, NULL);
	if (ret < 0) {
		cli_error("type %" PRIu64 ": %s", type, strerror(-ret));
		return -1;
	}
	printf("type %" PRIu64 ": status %d (%s)\n", type, ret, status_name(ret));
	return 0;
}

static int io_hold(void)
{
	char line[64];

	printf("hold\n");
	fflush(stdout);
	return fgets(line, sizeof(line), stdin) ? 0 : -1;
}

static int io_stats(struct io_state *st)
{
	for (unsigned int q = 0; q < vublk_num_queues(st->dev); q++) {
		struct vublk_qstats s;

		vublk_queue_stats(st->dev, q, &s);
		printf("queue %u: submitted %" PRIu64 " completed %" PRIu64 " errors %" PRIu64
		       " kicks %" PRIu64 " calls %" PRIu64 " bad_used %" PRIu64 " inflight %u\n",
		       q, s.submitted, s.completed, s.errors, s.kicks, s.calls, s.bad_used,
		       s.inflight);
	}
	printf("reconnects %u\n", vublk_reconnects(st->dev));
	return 0;
}

static int io_lifecycle(struct io_state *st, const char *name)
{
	struct errmsg err = {{0}};
	int ret = 0;

	if (!strcmp(name, "drop")) {
		vublk_drop(st->dev);
	} else if (!strcmp(name, "reconnect")) {
		ret = vublk_reconnect(st->dev, st->ca.opts.reconnect_ms > 0 ?
					       st->ca.opts.reconnect_ms : 10000, &err);
	} else if (!strcmp(name, "pause")) {
		ret = vublk_pause(st->dev);
	} else {
		ret = vublk_resume(st->dev);
	}
	if (ret < 0) {
		cli_error_ret(&err, name, ret);
		return -1;
	}
	printf("%s ok\n", name);
	return 0;
}

static int parse_words(char *cmd, char **words, int max)
{
	int n = 0;

	words[n++] = "io";
	for (char *tok = strtok(cmd, " \t"); tok; tok = strtok(NULL, " \t")) {
		if (n == max - 1) {
			return -1;
		}
		words[n++] = tok;
	}
	words[n] = NULL;
	return n;
}

static int io_parse_args(const char *name, int argc, char **argv, struct io_args *a,
			 int want_pos)
{
	int c;

	/* 0, not 1: glibc then forgets the previous command's permutation
	 * state too ('zero -u OFF LEN' left it pointing past the words of the
	 * next command, which then "expects 2 arguments"). */
	optind = 0;
	opterr = 0;
	while ((c = getopt(argc, argv, ":P:S:s:iu")) != -1) {
		uint64_t v;

		if (c == '?' || c == ':' || (optarg && cli_parse_u64(optarg, &v) < 0)) {
			cli_error("%s: bad option or argument", name);
			return -1;
		}
		switch (c) {
		case 'P':
			a->fill = v & 0xff;
			break;
		case 'S':
			a->seeded = true;
			a->seed = v;
			break;
		case 's':
			a->segs = v;
			break;
		case 'i':
			a->indirect = true;
			break;
		case 'u':
			a->unmap = true;
			break;
		}
	}
	if (argc - optind != want_pos) {
		cli_error("%s: expects %d arguments", name, want_pos);
		return -1;
	}
	if (want_pos == 2 && (cli_parse_size(argv[optind], &a->off) < 0 ||
			      cli_parse_size(argv[optind + 1], &a->len) < 0)) {
		cli_error("%s: invalid offset or length", name);
		return -1;
	}
	return 0;
}

static int io_run_one(struct io_state *st, char *cmd)
{
	char *words[32];
	int n = parse_words(cmd, words, 32);
	struct io_args a = {.fill = -1};
	const char *name;

	if (n < 2) {
		cli_error("empty or overlong io command");
		return -1;
	}
	name = words[1];
	if (!strcmp(name, "read") || !strcmp(name, "write")) {
		if (io_parse_args(name, n - 1, words + 1, &a, 2) < 0) {
			return -1;
		}
		return io_rw(st, &a, name[0] == 'w');
	}
	if (!strcmp(name, "zero") || !strcmp(name, "discard")) {
		if (io_parse_args(name, n - 1, words + 1, &a, 2) < 0) {
			return -1;
		}
		return io_range(st, &a, name[0] == 'z' ? VUBLK_T_WRITE_ZEROES : VUBLK_T_DISCARD);
	}
	if (!strcmp(name, "flush") && n == 2) {
		struct vublk_io io = {.type = VUBLK_T_FLUSH};

		if (io_do(st, "flush", &io) < 0) {
			return -1;
		}
		printf("flush ok\n");
		return 0;
	}
	if (!strcmp(name, "get-id") && n == 2) {
		return io_get_id(st);
	}
	if (!strcmp(name, "type") && (n == 3 || n == 4)) {
		uint64_t type, len = 0;

		if (cli_parse_u64(words[2], &type) < 0 ||
		    (n == 4 && cli_parse_size(words[3], &len) < 0)) {
			cli_error("type: invalid number");
			return -1;
		}
		return io_type(st, type, len);
	}
	if (!strcmp(name, "queue") && n == 3) {
		uint64_t q;

		if (cli_parse_u64(words[2], &q) < 0 || q >= vublk_num_queues(st->dev)) {
			cli_error("queue: no queue '%s' (%u started)", words[2],
				  vublk_num_queues(st->dev));
			return -1;
		}
		st->q = q;
		return 0;
	}
	if (!strcmp(name, "hold") && n == 2) {
		return io_hold();
	}
	if (!strcmp(name, "stats") && n == 2) {
		return io_stats(st);
	}
	if ((!strcmp(name, "drop") || !strcmp(name, "reconnect") || !strcmp(name, "pause") ||
	     !strcmp(name, "resume")) && n == 2) {
		return io_lifecycle(st, name);
	}
	cli_error("unknown io command or wrong arguments: '%s'", name);
	return -1;
}

static int cmd_io(int argc, char **argv)
{
	static const struct option longopts[] = {CONN_LONG_OPTS, {"cmd", required_argument, NULL, 'c'},
						 {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct io_state st = {0};
	char **cmds = calloc(argc, sizeof(*cmds));
	int ncmds = 0, c, rc = CLI_EXIT_OK;

	vublk_opts_init(&st.ca.opts);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":" CONN_SHORT_OPTS "c:h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(io_usage, stdout);
			free(cmds);
			return CLI_EXIT_OK;
		} else if (c == 'c') {
			cmds[ncmds++] = optarg;
		} else if (conn_opt("io", c, optarg, &st.ca) != 1) {
			if (c == '?' || c == ':') {
				cli_getopt_error("io", c, argv);
			}
			free(cmds);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || ncmds == 0) {
		cli_usage_error("io", "expects -c CMD and one socket path");
		free(cmds);
		return CLI_EXIT_USAGE;
	}
	/* Later getopt() calls parse command words: keep the path first. */
	const char *path = argv[optind];

	st.dev = conn_open(path, &st.ca.opts);
	if (!st.dev) {
		free(cmds);
		return CLI_EXIT_FAILURE;
	}
	st.buf = vublk_alloc(st.dev, IO_CHUNK_BYTES);
	for (int i = 0; i < ncmds && rc == CLI_EXIT_OK; i++) {
		char *copy = strdup(cmds[i]);

		if (!copy || io_run_one(&st, copy) < 0) {
			rc = CLI_EXIT_FAILURE;
		}
		free(copy);
	}
	fflush(stdout);
	/* The stop messages' result is not the commands' result: a run
	 * may end with the server gone on purpose. */
	vublk_close(st.dev);
	free(cmds);
	return rc;
}

/*
 * malicious
 */

static const char bad_usage[] =
	"Usage: vublk malicious [options] SOCK\n"
	"Sends each malformed request of the catalogue on a fresh connection\n"
	"(guest RAM in two regions with a 1 GiB hole) and reports what the\n"
	"server did.  Exit 1 if a case fails the chosen level or the server\n"
	"stops accepting connections.\n"
	"  -s, --strict         every request completes as the catalogue expects,\n"
	"                       on a connection that keeps serving\n"
	"                       (default: lenient: no stray writes, no OK status\n"
	"                       for an invalid request, the server survives)\n"
	"  -c, --case NAME      only this case (repeatable)\n"
	"  -t, --timeout MS     wait per request (default 1000)\n"
	"  (here the queue size defaults to 256 and guest RAM to 8M)\n"
	"  -l, --list           list the cases\n" CONN_HELP;

static bool case_selected(const char *name, char **only, int nonly)
{
	if (nonly == 0) {
		return true;
	}
	for (int i = 0; i < nonly; i++) {
		if (!strcmp(only[i], name)) {
			return true;
		}
	}
	return false;
}

static struct json_object *bad_json(unsigned int i, const struct vublk_bad_result *r, bool pass)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "case", json_object_new_string(vublk_bad_name(i)));
	json_object_object_add(o, "expect",
			       json_object_new_string(vublk_bad_expect_name(vublk_bad_expect(i))));
	json_object_object_add(o, "skipped", json_object_new_boolean(r->skipped));
	json_object_object_add(o, "completed", json_object_new_boolean(r->completed));
	json_object_object_add(o, "status", json_object_new_int(r->status));
	json_object_object_add(o, "used_bytes", json_object_new_int64(r->used_bytes));
	json_object_object_add(o, "disconnected", json_object_new_boolean(r->disconnected));
	json_object_object_add(o, "stray_bytes", json_object_new_int64(r->stray_bytes));
	json_object_object_add(o, "alive", json_object_new_boolean(r->alive));
	json_object_object_add(o, "pass", json_object_new_boolean(pass));
	return o;
}

static void bad_line(unsigned int i, const struct vublk_bad_result *r, bool pass)
{
	char what[64];

	if (r->skipped) {
		printf("%-28s %-9s skipped\n", vublk_bad_name(i),
		       vublk_bad_expect_name(vublk_bad_expect(i)));
		return;
	}
	if (r->completed) {
		snprintf(what, sizeof(what), "status=%d(%s) used=%u", r->status,
			 r->status < 0 ? "none" : status_name(r->status), r->used_bytes);
	} else {
		snprintf(what, sizeof(what), "no completion");
	}
	printf("%-28s %-9s %-32s%s%s stray=%" PRIu64 " %s\n", vublk_bad_name(i),
	       vublk_bad_expect_name(vublk_bad_expect(i)), what,
	       r->disconnected ? " disconnected" : "", r->alive ? " alive" : " not-serving",
	       r->stray_bytes, pass ? "PASS" : "FAIL");
}

static int cmd_malicious(int argc, char **argv)
{
	static const struct option longopts[] = {
		CONN_LONG_OPTS, {"strict", no_argument, NULL, 's'},
		{"case", required_argument, NULL, 'c'}, {"timeout", required_argument, NULL, 't'},
		{"list", no_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct conn_args ca = {.json = false};
	char **only = calloc(argc, sizeof(*only));
	int nonly = 0, c, timeout_ms = 1000, failed = 0, rc = CLI_EXIT_OK;
	bool strict = false;
	struct json_object *arr = json_object_new_array();
	struct vublk *dev;

	vublk_opts_init(&ca.opts);
	ca.opts.mem_regions = 2;
	ca.opts.region_gap_bytes = 1ull << 30;
	ca.opts.timeout_ms = 2000;
	/* Room for a chain one longer than a typical seg_max (126); RAM
	 * small enough to canary-check in full after every case. */
	ca.opts.queue_size = 256;
	ca.opts.mem_bytes = 8 << 20;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":" CONN_SHORT_OPTS "sc:t:lh", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(bad_usage, stdout);
			goto out;
		} else if (c == 'l') {
			for (unsigned int i = 0; i < vublk_bad_count(); i++) {
				printf("%-28s %-9s %s\n", vublk_bad_name(i),
				       vublk_bad_expect_name(vublk_bad_expect(i)), vublk_bad_what(i));
			}
			goto out;
		} else if (c == 's') {
			strict = true;
		} else if (c == 'c') {
			only[nonly++] = optarg;
		} else if (c == 't') {
			timeout_ms = atoi(optarg);
		} else if (conn_opt("malicious", c, optarg, &ca) != 1) {
			if (c == '?' || c == ':') {
				cli_getopt_error("malicious", c, argv);
			}
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	if (argc - optind != 1 || timeout_ms <= 0) {
		cli_usage_error("malicious", "expects one socket path");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	for (int k = 0; k < nonly; k++) {
		bool known = false;

		for (unsigned int i = 0; i < vublk_bad_count(); i++) {
			known = known || !strcmp(vublk_bad_name(i), only[k]);
		}
		if (!known) {
			cli_usage_error("malicious", "no case '%s' (see --list)", only[k]);
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	for (unsigned int i = 0; i < vublk_bad_count(); i++) {
		struct vublk_bad_result r;
		bool pass;
		int ret;

		if (!case_selected(vublk_bad_name(i), only, nonly)) {
			continue;
		}
		dev = conn_open(argv[optind], &ca.opts);
		if (!dev) {
			cli_error("%s: the server no longer accepts connections", vublk_bad_name(i));
			rc = CLI_EXIT_FAILURE;
			goto out;
		}
		ret = vublk_bad_run(dev, 0, i, timeout_ms, &r);
		vublk_close(dev);
		if (ret < 0) {
			cli_error("%s: cannot set up: %s", vublk_bad_name(i), strerror(-ret));
			rc = CLI_EXIT_FAILURE;
			goto out;
		}
		pass = r.skipped || (strict ? r.pass_strict : r.pass_lenient);
		failed += !pass;
		if (ca.json) {
			json_object_array_add(arr, bad_json(i, &r, pass));
		} else {
			bad_line(i, &r, pass);
			fflush(stdout);
		}
	}
	/* The last word: does the server still serve a fresh connection? */
	dev = conn_open(argv[optind], &ca.opts);
	if (dev) {
		void *buf = vublk_alloc(dev, 4096);
		struct vublk_io io = {.type = VUBLK_T_IN, .buf = buf, .bytes = 4096};

		if (vublk_io_sync(dev, 0, &io, 5000, NULL) != VUBLK_S_OK) {
			cli_error("the server accepts connections but no longer serves reads");
			failed++;
		}
		vublk_close(dev);
	} else {
		failed++;
	}
	if (ca.json) {
		cli_json_print(stdout, arr);
	} else {
		printf("%d case(s) failed (%s)\n", failed, strict ? "strict" : "lenient");
	}
	rc = failed ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
out:
	json_object_put(arr);
	free(only);
	return rc;
}

/*
 * inflight
 */

static const char inflight_usage[] =
	"Usage: vublk inflight [options] SOCK\n"
	"Submits N writes of the seeded pattern (write k at offset k * BS), prints\n"
	"'ready INFLIGHT' once the server has held some for 300 ms, then waits\n"
	"for every completion, reconnecting when the server dies (kill it after\n"
	"'ready', start it again).  Exit 0 if all N completed with OK.\n"
	"  -n, --count N        writes (default 16)\n"
	"  -b, --bs SIZE        bytes per write (default 64K)\n"
	"  -S, --seed SEED      pattern seed (default 1)\n"
	"  -r, --reads N        once writes are held, N 4 KiB reads past them that\n"
	"                       complete before 'ready', out of order (default 0);\n"
	"                       a restarted server must not serve them again\n"
	"  -t, --timeout MS     for everything after 'ready' (default 30000)\n"
	"  -k, --kick           kick the queue once reconnected (a server without\n"
	"                       the inflight area needs it to replay the ring; QEMU\n"
	"                       does not, so by default neither do we)\n" CONN_HELP;

struct inflight_state {
	unsigned int done;
	unsigned int ok;
};

static void inflight_done(void *opaque, int status, uint32_t used_bytes)
{
	struct inflight_state *s = opaque;

	s->done++;
	s->ok += status == VUBLK_S_OK;
}

static int cmd_inflight(int argc, char **argv)
{
	static const struct option longopts[] = {
		CONN_LONG_OPTS, {"count", required_argument, NULL, 'n'},
		{"bs", required_argument, NULL, 'b'}, {"seed", required_argument, NULL, 'S'},
		{"timeout", required_argument, NULL, 't'}, {"kick", no_argument, NULL, 'k'},
		{"reads", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct conn_args ca = {.json = false};
	uint64_t count = 16, bs = 64 << 10, seed = 1, timeout_ms = 30000, reads = 0;
	struct inflight_state s = {0}, rs = {0};
	struct vublk_qstats qs;
	struct vublk *dev;
	double end;
	int c;

	vublk_opts_init(&ca.opts);
	ca.opts.reconnect_ms = 20000;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":" CONN_SHORT_OPTS "n:b:S:t:r:kh", longopts, NULL)) !=
	       -1) {
		int bad = 0;

		switch (c) {
		case 'h':
			fputs(inflight_usage, stdout);
			return CLI_EXIT_OK;
		case 'n':
			bad = cli_parse_u64(optarg, &count) < 0;
			break;
		case 'b':
			bad = cli_parse_size(optarg, &bs) < 0 || bs % 512 || bs == 0 || bs > (1 << 20);
			break;
		case 'S':
			bad = cli_parse_u64(optarg, &seed) < 0;
			break;
		case 't':
			bad = cli_parse_u64(optarg, &timeout_ms) < 0;
			break;
		case 'r':
			bad = cli_parse_u64(optarg, &reads) < 0 || reads > 64;
			break;
		case 'k':
			ca.opts.kick_after_reconnect = true;
			break;
		default:
			if (conn_opt("inflight", c, optarg, &ca) == 1) {
				break;
			}
			if (c == '?' || c == ':') {
				cli_getopt_error("inflight", c, argv);
			}
			return CLI_EXIT_USAGE;
		}
		if (bad) {
			cli_usage_error("inflight", "invalid value '%s'", optarg);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || count == 0 || count > 128) {
		cli_usage_error("inflight", "expects one socket path and 1..128 writes");
		return CLI_EXIT_USAGE;
	}
	ca.opts.mem_bytes = count * bs + (reads << 12) + (16 << 20);
	dev = conn_open(argv[optind], &ca.opts);
	if (!dev) {
		return CLI_EXIT_FAILURE;
	}
	for (uint64_t k = 0; k < count; k++) {
		uint8_t *buf = vublk_alloc(dev, bs);
		struct vublk_io io = {.type = VUBLK_T_OUT, .sector = k * bs / 512, .buf = buf,
				      .bytes = bs};

		pattern_fill(buf, k * bs, bs, seed);
		if (!buf || vublk_submit(dev, 0, &io, inflight_done, &s) < 0) {
			cli_error("cannot submit write %" PRIu64, k);
			vublk_close(dev);
			return CLI_EXIT_FAILURE;
		}
	}
	vublk_kick(dev, 0);
	end = cli_now() + 0.3;
	while (cli_now() < end && s.done < count) {
		vublk_wait(dev, 0, 20);
	}
	/* Reads complete past the held writes: their used entries land where
	 * the writes' descriptors were (packed), and their chains stay in
	 * the ring beyond them. */
	for (uint64_t k = 0; k < reads; k++) {
		struct vublk_io io = {.type = VUBLK_T_IN, .sector = (count * bs >> 9) + k * 8,
				      .buf = vublk_alloc(dev, 4096), .bytes = 4096};

		if (!io.buf || vublk_submit(dev, 0, &io, inflight_done, &rs) < 0) {
			cli_error("cannot submit read %" PRIu64, k);
			vublk_close(dev);
			return CLI_EXIT_FAILURE;
		}
	}
	end = cli_now() + 5;
	while (cli_now() < end && rs.done < reads) {
		vublk_wait(dev, 0, 20);
	}
	vublk_queue_stats(dev, 0, &qs);
	printf("ready %u\n", qs.inflight);
	fflush(stdout);
	end = cli_now() + timeout_ms / 1000.0;
	while (s.done < count && cli_now() < end) {
		if (vublk_wait(dev, 0, 100) == -ENOTCONN) {
			cli_error("the server is gone and did not come back (%s)",
				  vublk_last_error(dev));
			break;
		}
	}
	vublk_queue_stats(dev, 0, &qs);
	printf("completed %u/%" PRIu64 " ok %u reconnects %u reads %u/%" PRIu64
	       " bad_used %" PRIu64 "\n",
	       s.done, count, s.ok, vublk_reconnects(dev), rs.ok, reads, qs.bad_used);
	vublk_close(dev);
	return s.ok == count && rs.ok == reads && rs.done == reads && qs.bad_used == 0
		       ? CLI_EXIT_OK
		       : CLI_EXIT_FAILURE;
}

static const char main_usage[] =
	"Usage: vublk COMMAND [options] SOCK\n"
	"A vhost-user-blk front end (QEMU's side) for tests and benchmarks.\n"
	"Commands: info, io, bench, malicious, inflight; 'vublk COMMAND --help'.\n";

int main(int argc, char **argv)
{
	cli_set_progname("vublk");
	if (argc < 2) {
		fputs(main_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(main_usage, stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "info")) {
		return cmd_info(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "io")) {
		return cmd_io(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "bench")) {
		return cmd_bench(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "malicious")) {
		return cmd_malicious(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "inflight")) {
		return cmd_inflight(argc - 1, argv + 1);
	}
	cli_usage_error(NULL, "unknown command '%s'", argv[1]);
	return CLI_EXIT_USAGE;
}
