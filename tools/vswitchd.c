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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>

#include "cliutil.h"
#include "eal.h"
#include "vswitch-dp.h"
#include "vswitchd.h"

#define CTL_DEFAULT "/run/vswitch/vswitchd.sock"
#define DB_DEFAULT "/var/lib/vswitch/conf.json"
#define CAPTURE_DIR_DEFAULT "/var/lib/vswitch/captures"
/* Memory for the packet pool and DPDK's own needs, either way. */
#define EAL_MEM_MB 256

struct daemon {
	const char *ctl_path;
	const char *db_path;
	const char *capture_dir;
	gid_t ctl_group;
	struct vsw_dp *dp;
	struct rpc_server *server;
	int signal_fd;
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

/* -------------------------------------------------------- Persistence */

/* Saves the configuration after every change, before the answer goes
 * out, so a client that saw "ok" finds it again after a restart. */
static int save_config(void *ctx, struct errmsg *err)
{
	struct daemon *d = ctx;
	struct json_object *cfg = rpc_config_dump(d->dp);
	int ret = cfg ? rpc_store_save(d->db_path, cfg, err) : -ENOMEM;

	json_object_put(cfg);
	if (ret < 0) {
		logmsg("%s", err->msg);
	}
	return ret;
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
		struct json_object *result = NULL;
		struct errmsg err = {{0}};
		bool changed;
		int code;

		if (rpc_dispatch(vswd_methods, vswd_n_methods, d, method, item, &result, &code,
				 &changed, &err) < 0) {
			logmsg("restoring %s: %s", method, err.msg);
		}
		json_object_put(result);
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
	struct errmsg err = {{0}};
	int ret = rpc_store_load(d->db_path, &cfg, &err);

	if (ret == -ENOENT) {
		return 0;
	}
	if (ret < 0) {
		logmsg("%s; starting empty and leaving it alone", err.msg);
		return ret;
	}
	restore_list(d, cfg, "bridges", "add-br");
	restore_list(d, cfg, "fdb", "fdb-add");
	json_object_put(cfg);
	return 0;
}

/* -------------------------------------------------------- Control RPC */

static void log_note(void *ctx, const char *sentence)
{
	logmsg("%s", sentence);
}

static int open_ctl(struct daemon *d)
{
	struct rpc_server_opts opts;
	struct errmsg err = {{0}};
	int ret;

	rpc_server_opts_init(&opts);
	opts.path = d->ctl_path;
	opts.group = d->ctl_group;
	opts.name = "vswitchd";
	opts.methods = vswd_methods;
	opts.n_methods = vswd_n_methods;
	opts.ctx = d;
	opts.commit = save_config;
	opts.log = log_note;
	ret = rpc_server_open(&opts, &d->server, &err);
	if (ret < 0) {
		logmsg("%s", err.msg);
	}
	return ret;
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
		"  --group GROUP     group of the control and vhost-user sockets (mode 0660)\n"
		"  --capture-dir DIR the one directory captures are written in (default %s)\n"
		"  -h, --help        this text\n",
		CTL_DEFAULT, DB_DEFAULT, 2 * EAL_MEM_MB, CAPTURE_DIR_DEFAULT);
}

static int make_capture_dir(const char *dir)
{
	char probe[PATH_MAX];
	int ret;

	snprintf(probe, sizeof(probe), "%s/.", dir);
	ret = rpc_mkdirs_for(probe);
	if (ret < 0) {
		logmsg("cannot create the capture directory %s: %s", dir, strerror(-ret));
	}
	return ret;
}

struct vsw_dp *vswd_dp(void *ctx)
{
	return ((struct daemon *)ctx)->dp;
}

gid_t vswd_socket_group(void *ctx)
{
	return ((struct daemon *)ctx)->ctl_group;
}

const char *vswd_capture_dir(void *ctx)
{
	return ((struct daemon *)ctx)->capture_dir;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"ctl", required_argument, NULL, 'c'},   {"db", required_argument, NULL, 'd'},
		{"poll", no_argument, NULL, 'p'},        {"poll-cpu", required_argument, NULL, 'C'},
		{"hugepages", required_argument, NULL, 'H'}, {"eal", required_argument, NULL, 'e'},
		{"pidfile", required_argument, NULL, 'P'}, {"help", no_argument, NULL, 'h'},
		{"group", required_argument, NULL, 'g'},
		{"capture-dir", required_argument, NULL, 'D'},
		{NULL, 0, NULL, 0},
	};
	struct daemon d = {.ctl_path = CTL_DEFAULT, .db_path = DB_DEFAULT, .ctl_group = (gid_t)-1,
			   .capture_dir = CAPTURE_DIR_DEFAULT};
	struct vsw_dp_opts dp_opts;
	struct errmsg err = {{0}};
	struct eal_opts eal = {.argv0 = argv[0], .name = "vswitchd", .mem_mb = EAL_MEM_MB};
	const char *pidfile = NULL;
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
			if (eal_parse_huge(optarg, &eal.huge) < 0) {
				cli_usage_error(NULL, "--hugepages takes auto, yes or no");
				return CLI_EXIT_USAGE;
			}
			break;
		case 'e': eal.extra = optarg; break;
		case 'P': pidfile = optarg; break;
		case 'D': d.capture_dir = optarg; break;
		case 'g':
			if (rpc_parse_group(optarg, &d.ctl_group) < 0) {
				cli_usage_error(NULL, "unknown group '%s'", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: cli_getopt_error(NULL, c, argv); return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_usage_error(NULL, "unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	d.signal_fd = rpc_signal_fd();
	if (rpc_mkdirs_for(d.db_path) < 0) {
		logmsg("cannot create the directory of %s: %s", d.db_path, strerror(errno));
		return 1;
	}
	if (make_capture_dir(d.capture_dir) < 0) {
		return 1;
	}
	/* Before the EAL: a second daemon on the same socket fails fast. */
	if (open_ctl(&d) < 0) {
		return 1;
	}
	if (eal_start(&eal, &err) < 0) {
		logmsg("%s", err.msg);
		goto out;
	}
	if (vsw_dp_create(&dp_opts, &d.dp, &err) < 0) {
		logmsg("%s", err.msg);
		goto out_eal;
	}
	restore_config(&d);
	if (pidfile && rpc_pidfile_write(pidfile, &err) < 0) {
		logmsg("%s", err.msg);
	}
	logmsg("ready on %s (%s mode)", d.ctl_path, dp_opts.poll ? "poll" : "event");
	rpc_server_loop(d.server, d.signal_fd); /* until SIGTERM or SIGINT */
	logmsg("stopping");
	status = 0;
	rpc_server_close(d.server);
	d.server = NULL;
	vsw_dp_destroy(d.dp);
out_eal:
	rte_eal_cleanup();
out:
	rpc_server_close(d.server);
	if (pidfile) {
		unlink(pidfile);
	}
	return status;
}
