/* SPDX-License-Identifier: MIT */
/* vswitchd: the switch daemon.  Starts DPDK's EAL (no PCI devices; with
 * hugepages when the host has enough free, else --no-huge), the datapath
 * of vswitch-dp.h, restores the saved configuration, and answers
 * JSON-RPC 2.0 on a Unix socket (docs/vswitch-rpc.md).  Every change that
 * succeeds is saved before its answer goes out, so a client that saw "ok"
 * finds it again after a restart. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "cliutil.h"
#include "vswitch-dp.h"
#include "vswitchd.h"

#define CTL_DEFAULT "/run/vswitch/vswitchd.sock"
#define DB_DEFAULT "/var/lib/vswitch/conf.json"
#define MAX_CLIENTS 32
#define MAX_LINE (16u << 20)
/* Memory for the packet pool and DPDK's own needs, either way. */
#define EAL_MEM_MB 256

struct client {
	int fd;
	char *buf;
	size_t len, cap;
};

struct daemon {
	const char *ctl_path;
	const char *db_path;
	struct vsw_dp *dp;
	int listen_fd;
	int signal_fd;
	struct client clients[MAX_CLIENTS];
	unsigned int n_clients;
};

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vswitchd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---------------------------------------------------------------- EAL */

/* Free hugepage memory in MiB, 0 if none or no hugetlbfs mounted. */
static unsigned long free_hugepage_mb(void)
{
	unsigned long free_pages = 0, size_kb = 0;
	char line[128];
	FILE *f;

	if (access("/dev/hugepages", W_OK) != 0) {
		return 0;
	}
	f = fopen("/proc/meminfo", "r");
	if (!f) {
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "HugePages_Free: %lu", &free_pages);
		sscanf(line, "Hugepagesize: %lu kB", &size_kb);
	}
	fclose(f);
	return free_pages * size_kb / 1024;
}

enum huge_mode { HUGE_AUTO, HUGE_YES, HUGE_NO };

static int eal_start(const char *argv0, enum huge_mode huge, const char *extra)
{
	char prefix[64], mem[16], *args[64], *copy = NULL, *save, *tok;
	int argc = 0, ret;

	snprintf(prefix, sizeof(prefix), "vswitchd-%d", (int)getpid());
	snprintf(mem, sizeof(mem), "%d", EAL_MEM_MB);
	args[argc++] = (char *)argv0;
	args[argc++] = "-l";
	args[argc++] = "0";
	args[argc++] = "--no-pci";
	args[argc++] = "--file-prefix";
	args[argc++] = prefix;
	if (huge == HUGE_NO || (huge == HUGE_AUTO && free_hugepage_mb() < 2 * EAL_MEM_MB)) {
		args[argc++] = "--no-huge";
		args[argc++] = "--no-shconf";
	} else {
		/* No files under /dev/hugepages to leak if we are killed. */
		args[argc++] = "--in-memory";
	}
	args[argc++] = "-m";
	args[argc++] = mem;
	if (extra) {
		copy = strdup(extra);
		for (tok = strtok_r(copy, " ", &save); tok && argc < 63;
		     tok = strtok_r(NULL, " ", &save)) {
			args[argc++] = tok;
		}
	}
	args[argc] = NULL;
	ret = rte_eal_init(argc, args);
	free(copy);
	if (ret < 0) {
		logmsg("cannot start DPDK's EAL: %s", rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

/* -------------------------------------------------------- Persistence */

static int mkdirs_for(const char *path)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
				return -errno;
			}
			*p = '/';
		}
	}
	return 0;
}

/* Writes the configuration next to the file and renames it over, so a
 * crash leaves the old one or the new one, never half of either. */
static int save_config(struct daemon *d)
{
	struct json_object *cfg = rpc_config_dump(d->dp);
	const char *text = json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PRETTY);
	char tmp[PATH_MAX + 8];
	FILE *f;
	int ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", d->db_path);
	f = fopen(tmp, "w");
	if (!f) {
		ret = -errno;
	} else {
		if (fprintf(f, "%s\n", text) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
			ret = -errno;
		}
		if (fclose(f) != 0 && ret == 0) {
			ret = -errno;
		}
		if (ret == 0 && rename(tmp, d->db_path) != 0) {
			ret = -errno;
		}
	}
	json_object_put(cfg);
	if (ret < 0) {
		logmsg("cannot save the configuration to %s: %s", d->db_path, strerror(-ret));
		unlink(tmp);
	}
	return ret;
}

static void restore_call(struct daemon *d, const char *method, struct json_object *params)
{
	struct json_object *result = NULL;
	struct errmsg err = {{0}};
	bool changed;
	int code;

	if (rpc_call(d->dp, method, params, &result, &code, &changed, &err) < 0) {
		logmsg("restoring %s: %s", method, err.msg);
	}
	json_object_put(result);
}

static void restore_list(struct daemon *d, struct json_object *obj, const char *key,
			 const char *method)
{
	struct json_object *list;

	if (!json_object_object_get_ex(obj, key, &list) ||
	    !json_object_is_type(list, json_type_array)) {
		return;
	}
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *item = json_object_array_get_idx(list, i);

		restore_call(d, method, item);
		if (strcmp(method, "add-br") == 0) {
			restore_list(d, item, "ports", "add-port");
		}
	}
}

/* Replays the saved configuration through the RPC methods, so it obeys
 * the same checks; what fails (a socket another process took meanwhile)
 * is logged and skipped. */
static int restore_config(struct daemon *d)
{
	struct json_object *cfg;

	if (access(d->db_path, F_OK) != 0) {
		return 0;
	}
	cfg = json_object_from_file(d->db_path);
	if (!cfg || !json_object_is_type(cfg, json_type_object)) {
		logmsg("%s is not a configuration file (%s); starting empty and leaving it "
		       "alone", d->db_path, json_util_get_last_err());
		json_object_put(cfg);
		return -EINVAL;
	}
	restore_list(d, cfg, "bridges", "add-br");
	restore_list(d, cfg, "fdb", "fdb-add");
	json_object_put(cfg);
	return 0;
}

/* -------------------------------------------------------- Control RPC */

static struct json_object *error_reply(struct json_object *id, int code, int err_no,
				       const char *message)
{
	struct json_object *r = json_object_new_object(), *e = json_object_new_object();
	struct json_object *data = json_object_new_object();

	json_object_object_add(r, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(r, "id", id ? json_object_get(id) : NULL);
	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	if (err_no) {
		json_object_object_add(data, "errno", json_object_new_int(err_no));
		json_object_object_add(data, "name",
				       json_object_new_string(strerrorname_np(err_no)
								      ? strerrorname_np(err_no)
								      : "?"));
	}
	json_object_object_add(e, "data", data);
	json_object_object_add(r, "error", e);
	return r;
}

static struct json_object *handle_request(struct daemon *d, const char *line)
{
	struct json_object *req = json_tokener_parse(line), *id = NULL, *method, *params = NULL;
	struct json_object *result = NULL, *reply;
	struct errmsg err = {{0}};
	bool changed;
	int code, ret;

	if (!req) {
		return error_reply(NULL, RPC_PARSE_ERROR, 0, "the request is not valid JSON");
	}
	json_object_object_get_ex(req, "id", &id);
	json_object_object_get_ex(req, "params", &params);
	if (!json_object_is_type(req, json_type_object) ||
	    !json_object_object_get_ex(req, "method", &method) ||
	    !json_object_is_type(method, json_type_string)) {
		reply = error_reply(id, RPC_INVALID_REQUEST, 0,
				    "a request is an object with a string 'method'");
		json_object_put(req);
		return reply;
	}
	ret = rpc_call(d->dp, json_object_get_string(method), params, &result, &code, &changed,
		       &err);
	if (ret == 0 && changed && save_config(d) < 0) {
		/* Applied but not saved: say so rather than pretend. */
		json_object_put(result);
		snprintf(err.msg, sizeof(err.msg),
			 "applied, but the configuration could not be saved to %s", d->db_path);
		ret = -EIO;
		code = RPC_FAILED;
	}
	if (ret < 0) {
		reply = error_reply(id, code, -ret, err.msg);
	} else {
		reply = json_object_new_object();
		json_object_object_add(reply, "jsonrpc", json_object_new_string("2.0"));
		json_object_object_add(reply, "id", id ? json_object_get(id) : NULL);
		json_object_object_add(reply, "result", result);
	}
	json_object_put(req);
	return reply;
}

static void drop_client(struct daemon *d, unsigned int i)
{
	close(d->clients[i].fd);
	free(d->clients[i].buf);
	d->clients[i] = d->clients[--d->n_clients];
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads what the client sent and answers every complete line.  Returns
 * -1 when the client is gone or misbehaves. */
static int serve_client(struct daemon *d, struct client *cl)
{
	char *nl;
	ssize_t n;

	if (cl->cap - cl->len < 4096) {
		size_t cap = cl->cap ? cl->cap * 2 : 8192;
		char *grown = cap > MAX_LINE + 8192 ? NULL : realloc(cl->buf, cap);

		if (!grown) {
			return -1;
		}
		cl->buf = grown;
		cl->cap = cap;
	}
	n = recv(cl->fd, cl->buf + cl->len, cl->cap - cl->len - 1, 0);
	if (n <= 0) {
		return -1;
	}
	cl->len += (size_t)n;
	cl->buf[cl->len] = '\0';
	while ((nl = memchr(cl->buf, '\n', cl->len)) != NULL) {
		struct json_object *reply;
		const char *text;
		int ret;

		*nl = '\0';
		reply = handle_request(d, cl->buf);
		text = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
		ret = send_all(cl->fd, text, strlen(text));
		if (ret == 0) {
			ret = send_all(cl->fd, "\n", 1);
		}
		json_object_put(reply);
		cl->len -= (size_t)(nl + 1 - cl->buf);
		memmove(cl->buf, nl + 1, cl->len);
		if (ret < 0) {
			return -1;
		}
	}
	return cl->len > MAX_LINE ? -1 : 0;
}

/* Listens on the control socket.  A socket file nobody answers on is a
 * leftover of a killed daemon and goes; a live one means another vswitchd
 * runs there. */
static int open_ctl(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 5};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		logmsg("control socket path too long: %s", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (mkdirs_for(path) < 0) {
		logmsg("cannot create the directory of %s: %s", path, strerror(errno));
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		logmsg("another vswitchd is running on %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0) {
		logmsg("cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	chmod(path, 0660);
	/* A client that stops reading cannot stall the daemon for long. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static void accept_client(struct daemon *d)
{
	struct timeval tv = {.tv_sec = 5};
	int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		return;
	}
	if (d->n_clients == MAX_CLIENTS) {
		close(fd);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	d->clients[d->n_clients++] = (struct client){.fd = fd};
}

static void serve(struct daemon *d)
{
	struct pollfd pfds[MAX_CLIENTS + 2];

	for (;;) {
		unsigned int n = 0;

		pfds[n++] = (struct pollfd){.fd = d->signal_fd, .events = POLLIN};
		pfds[n++] = (struct pollfd){.fd = d->listen_fd, .events = POLLIN};
		for (unsigned int i = 0; i < d->n_clients; i++) {
			pfds[n++] = (struct pollfd){.fd = d->clients[i].fd, .events = POLLIN};
		}
		if (poll(pfds, n, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return;
		}
		if (pfds[0].revents) {
			return; /* SIGTERM or SIGINT */
		}
		/* Clients first, from the end: drop_client() moves the last. */
		for (unsigned int i = d->n_clients; i-- > 0;) {
			if (pfds[2 + i].revents && serve_client(d, &d->clients[i]) < 0) {
				drop_client(d, i);
			}
		}
		if (pfds[1].revents) {
			accept_client(d);
		}
	}
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vswitchd [OPTIONS]\n"
		"The VLAN-aware virtual switch daemon; control it with vswitchctl.\n\n"
		"  --ctl PATH        control socket (default %s)\n"
		"  --db PATH         configuration file (default %s)\n"
		"  --poll            busy-poll one core instead of sleeping on events\n"
		"  --poll-cpu N      the CPU the polling thread is pinned to\n"
		"  --hugepages MODE  auto (default: use them if %d MiB are free), yes, no\n"
		"  --eal ARGS        more EAL arguments, space separated\n"
		"  --pidfile PATH    write the process id there\n"
		"  -h, --help        this text\n",
		CTL_DEFAULT, DB_DEFAULT, 2 * EAL_MEM_MB);
}

static int block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	/* Blocked before any thread starts, so all of them inherit it and
	 * only the signalfd sees the signal. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"ctl", required_argument, NULL, 'c'},   {"db", required_argument, NULL, 'd'},
		{"poll", no_argument, NULL, 'p'},        {"poll-cpu", required_argument, NULL, 'C'},
		{"hugepages", required_argument, NULL, 'H'}, {"eal", required_argument, NULL, 'e'},
		{"pidfile", required_argument, NULL, 'P'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct daemon d = {.ctl_path = CTL_DEFAULT, .db_path = DB_DEFAULT, .listen_fd = -1};
	struct vsw_dp_opts dp_opts;
	struct errmsg err = {{0}};
	enum huge_mode huge = HUGE_AUTO;
	const char *eal_extra = NULL, *pidfile = NULL;
	uint64_t cpu;
	int c, status = 1;

	cli_set_progname("vswitchd");
	vsw_dp_opts_init(&dp_opts);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': d.ctl_path = optarg; break;
		case 'd': d.db_path = optarg; break;
		case 'p': dp_opts.poll = true; break;
		case 'C':
			if (cli_parse_u64(optarg, &cpu) < 0 || cpu >= CPU_SETSIZE) {
				cli_usage_error(NULL, "bad CPU number '%s'", optarg);
				return CLI_EXIT_USAGE;
			}
			dp_opts.poll_cpu = (int)cpu;
			break;
		case 'H':
			if (strcmp(optarg, "auto") == 0) {
				huge = HUGE_AUTO;
			} else if (strcmp(optarg, "yes") == 0) {
				huge = HUGE_YES;
			} else if (strcmp(optarg, "no") == 0) {
				huge = HUGE_NO;
			} else {
				cli_usage_error(NULL, "--hugepages takes auto, yes or no");
				return CLI_EXIT_USAGE;
			}
			break;
		case 'e': eal_extra = optarg; break;
		case 'P': pidfile = optarg; break;
		case 'h': usage(stdout); return 0;
		default: cli_getopt_error(NULL, c, argv); return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_usage_error(NULL, "unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	d.signal_fd = block_signals();
	if (mkdirs_for(d.db_path) < 0) {
		logmsg("cannot create the directory of %s: %s", d.db_path, strerror(errno));
		return 1;
	}
	d.listen_fd = open_ctl(d.ctl_path);
	if (d.listen_fd < 0) {
		return 1;
	}
	if (eal_start(argv[0], huge, eal_extra) < 0) {
		goto out;
	}
	if (vsw_dp_create(&dp_opts, &d.dp, &err) < 0) {
		logmsg("%s", err.msg);
		goto out_eal;
	}
	restore_config(&d);
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");

		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
	}
	logmsg("ready on %s (%s mode)", d.ctl_path, dp_opts.poll ? "poll" : "event");
	serve(&d);
	logmsg("stopping");
	status = 0;
	while (d.n_clients) {
		drop_client(&d, 0);
	}
	vsw_dp_destroy(d.dp);
out_eal:
	rte_eal_cleanup();
out:
	close(d.listen_fd);
	unlink(d.ctl_path);
	if (pidfile) {
		unlink(pidfile);
	}
	return status;
}
