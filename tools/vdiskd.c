/* SPDX-License-Identifier: MIT */
/* vdiskd: the disk server.  Starts DPDK's EAL (no PCI devices; hugepages
 * only when enough are free), the vhost-user-blk server of vdiskd-blk.c,
 * restores the served disks saved in the database, and answers JSON-RPC
 * 2.0 on a Unix socket (docs/vdiskd-rpc.md).  Every change that succeeds is
 * saved before its answer goes out, so a client that saw "ok" finds it
 * again after a restart. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_log.h>

#include "cliutil.h"
#include "eal.h"
#include "datastore.h"
#include "vdiskd.h"

#define CTL_DEFAULT "/run/vdiskd/vdiskd.sock"
#define DB_DEFAULT "/var/lib/vdiskd/disks.json"
/* rte_vhost needs little memory of its own: the guests' RAM is theirs. */
#define EAL_MEM_MB 64

struct daemon {
	const char *ctl_path;
	const char *db_path;
	gid_t ctl_group;
	struct vdd *srv;
	struct rpc_server *server;
	int signal_fd;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void vdd_log(const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "vdiskd[%ld.%03ld]: ", (long)ts.tv_sec, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}

/* -------------------------------------------------------- Persistence */

/* The control thread saves after each change, a migration job at its
 * pivot and end: one at a time, each writing the set as it is then. */
static pthread_mutex_t save_lock = PTHREAD_MUTEX_INITIALIZER;

static int save_config(void *ctx, struct errmsg *err)
{
	struct daemon *d = ctx;
	struct json_object *cfg;
	int ret;

	pthread_mutex_lock(&save_lock);
	cfg = vdd_config_dump(d->srv);
	ret = cfg ? rpc_store_save(d->db_path, cfg, err) : -ENOMEM;
	pthread_mutex_unlock(&save_lock);
	json_object_put(cfg);
	if (ret < 0) {
		vdd_log("%s", err->msg);
	}
	return ret;
}

static int save_from_job(void *ctx)
{
	struct errmsg err = {{0}};

	return save_config(ctx, &err);
}

static int call(struct daemon *d, const char *method, struct json_object *params,
		struct json_object **resultp, struct errmsg *err)
{
	bool changed;
	int code;

	return rpc_dispatch(vdd_methods, vdd_n_methods, d, method, params, resultp, &code,
			    &changed, err);
}

/* A disk saved with a migration running: if the datastore says the copy
 * took over (vdiskd died after the switch), disk-add served the copy and
 * the source's removal is finished here; otherwise the job starts again
 * from the beginning (its begin cleans up what the dead one left). */
static void restore_migration(struct daemon *d, struct json_object *rec,
			      struct json_object *result)
{
	struct json_object *mig, *img, *served, *v, *params, *started = NULL;
	struct errmsg err = {{0}};
	const char *image;

	if (!json_object_object_get_ex(rec, "migration", &mig) || !mig ||
	    !json_object_object_get_ex(rec, "image", &img) ||
	    !json_object_object_get_ex(result, "image", &served)) {
		return;
	}
	image = json_object_get_string(img);
	if (strcmp(image, json_object_get_string(served)) != 0) {
		struct ds_ref src = {0}, dst = {0};
		struct ds_migrate_opts mo;
		struct ds_migrate_result res;

		ds_migrate_opts_init(&mo);
		mo.keep_source = json_object_object_get_ex(mig, "keep-source", &v) &&
				 json_object_get_boolean(v);
		/* The cold path's recovery finishes a switched run. */
		if (ds_locate(NULL, image, &src, &err) > 0 &&
		    ds_locate(NULL, json_object_get_string(served), &dst, &err) > 0) {
			if (ds_migrate(NULL, src.name, src.rel, dst.name, dst.rel, &mo, &res,
				       &err) < 0) {
				vdd_log("finishing the migration of %s: %s", image, err.msg);
			} else {
				vdd_log("finished the migration of %s to %s:%s", image, dst.name,
					dst.rel);
			}
			ds_migrate_result_fini(&res);
		}
		ds_ref_fini(&src);
		ds_ref_fini(&dst);
		return;
	}
	params = json_object_get(mig);
	json_object_object_add(params, "disk", json_object_new_string(image));
	if (call(d, "migrate-start", params, &started, &err) < 0) {
		vdd_log("restarting the migration of %s: %s", image, err.msg);
	}
	json_object_put(started);
	json_object_put(params);
}

/* Replays the saved disks through disk-add, so they obey the same checks;
 * one that fails (its image gone, its socket taken) is logged and
 * skipped, and stays in the database until the set next changes. */
static void restore_config(struct daemon *d)
{
	bool migrated = false;
	struct json_object *cfg, *list;
	struct errmsg err = {{0}};
	int ret = rpc_store_load(d->db_path, &cfg, &err);

	if (ret == -ENOENT) {
		return;
	}
	if (ret < 0) {
		vdd_log("%s; starting empty and leaving it alone", err.msg);
		return;
	}
	if (json_object_object_get_ex(cfg, "disks", &list) &&
	    json_object_is_type(list, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			struct json_object *rec = json_object_array_get_idx(list, i);
			struct json_object *result = NULL, *mig;

			if (call(d, "disk-add", rec, &result, &err) < 0) {
				vdd_log("restoring a disk: %s", err.msg);
			} else if (json_object_object_get_ex(rec, "migration", &mig) && mig) {
				restore_migration(d, rec, result);
				migrated = true;
			}
			json_object_put(result);
		}
	}
	if (migrated) {
		save_config(d, &err);
	}
	json_object_put(cfg);
}

/* -------------------------------------------------------- Control RPC */

static void log_note(void *ctx, const char *sentence)
{
	vdd_log("%s", sentence);
}

static int save_hook(void *ctx, struct errmsg *err)
{
	return save_config(ctx, err);
}

static int open_ctl(struct daemon *d)
{
	struct rpc_server_opts opts;
	struct errmsg err = {{0}};
	int ret;

	rpc_server_opts_init(&opts);
	opts.path = d->ctl_path;
	opts.group = d->ctl_group;
	opts.name = "vdiskd";
	opts.methods = vdd_methods;
	opts.n_methods = vdd_n_methods;
	opts.commit = save_hook;
	opts.log = log_note;
	opts.ctx = d;
	ret = rpc_server_open(&opts, &d->server, &err);
	if (ret < 0) {
		vdd_log("%s", err.msg);
	}
	return ret;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vdiskd [OPTIONS]\n"
		"The disk server: serves vdisk images and raw files to QEMU guests over\n"
		"vhost-user-blk sockets; control it with 'vdisk serve', 'vdisk ps' or JSON-RPC.\n\n"
		"  --ctl PATH        control socket (default %s)\n"
		"  --db PATH         served-disk database (default %s)\n"
		"  --threads N       I/O threads (default: one per CPU, at most 4)\n"
		"  --poll            busy-poll the queues instead of sleeping on events\n"
		"  --cpus LIST       pin the I/O threads to these CPUs (e.g. 2,3)\n"
		"  --hugepages MODE  auto (default), yes, no\n"
		"  --eal ARGS        more EAL arguments, space separated\n"
		"  --pidfile PATH    write the process id there\n"
		"  --group GROUP     group of the control and vhost-user sockets (mode 0660)\n"
		"  -h, --help        this text\n",
		CTL_DEFAULT, DB_DEFAULT);
}

static int parse_cpus(const char *text, int *cpus, unsigned *np)
{
	char *copy = strdup(text), *save, *tok;
	unsigned n = 0;
	uint64_t v;
	int ret = 0;

	if (!copy) {
		return -ENOMEM;
	}
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n >= 64 || cli_parse_u64(tok, &v) < 0 || v >= CPU_SETSIZE) {
			ret = -EINVAL;
			break;
		}
		cpus[n++] = (int)v;
	}
	free(copy);
	*np = n;
	return ret < 0 || n == 0 ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"ctl", required_argument, NULL, 'c'},    {"db", required_argument, NULL, 'd'},
		{"threads", required_argument, NULL, 't'}, {"poll", no_argument, NULL, 'p'},
		{"cpus", required_argument, NULL, 'C'},   {"hugepages", required_argument, NULL, 'H'},
		{"eal", required_argument, NULL, 'e'},    {"pidfile", required_argument, NULL, 'P'},
		{"group", required_argument, NULL, 'g'},  {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct daemon d = {.ctl_path = CTL_DEFAULT, .db_path = DB_DEFAULT, .ctl_group = (gid_t)-1};
	struct eal_opts eal = {.argv0 = argv[0], .name = "vdiskd", .mem_mb = EAL_MEM_MB};
	struct vdd_opts vopts = {0};
	struct errmsg err = {{0}};
	const char *pidfile = NULL;
	static int cpus[64];
	uint64_t v;
	int c, status = 1;

	cli_set_progname("vdiskd");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': d.ctl_path = optarg; break;
		case 'd': d.db_path = optarg; break;
		case 't':
			if (cli_parse_u64(optarg, &v) < 0 || v < 1 || v > 64) {
				cli_usage_error(NULL, "--threads takes 1-64");
				return CLI_EXIT_USAGE;
			}
			vopts.threads = (unsigned)v;
			break;
		case 'p': vopts.poll = true; break;
		case 'C':
			if (parse_cpus(optarg, cpus, &vopts.n_cpus) < 0) {
				cli_usage_error(NULL, "bad CPU list '%s'", optarg);
				return CLI_EXIT_USAGE;
			}
			vopts.cpus = cpus;
			break;
		case 'H':
			if (eal_parse_huge(optarg, &eal.huge) < 0) {
				cli_usage_error(NULL, "--hugepages takes auto, yes or no");
				return CLI_EXIT_USAGE;
			}
			break;
		case 'e': eal.extra = optarg; break;
		case 'P': pidfile = optarg; break;
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
		vdd_log("cannot create the directory of %s: %s", d.db_path, strerror(errno));
		return 1;
	}
	/* Before the EAL: a second daemon on the same socket fails fast. */
	if (open_ctl(&d) < 0) {
		return 1;
	}
	if (eal_start(&eal, &err) < 0) {
		vdd_log("%s", err.msg);
		goto out;
	}
	/* rte_vhost narrates every vhost-user message at INFO. */
	rte_log_set_level_pattern("lib.vhost.*", RTE_LOG_WARNING);
	vopts.save = save_from_job;
	vopts.save_ctx = &d;
	if (vdd_create(&vopts, &d.srv, &err) < 0) {
		vdd_log("%s", err.msg);
		goto out_eal;
	}
	restore_config(&d);
	if (pidfile && rpc_pidfile_write(pidfile, &err) < 0) {
		vdd_log("%s", err.msg);
	}
	vdd_log("ready on %s (%s mode)", d.ctl_path, vopts.poll ? "poll" : "event");
	rpc_server_loop(d.server, d.signal_fd); /* until SIGTERM or SIGINT */
	vdd_log("stopping");
	status = 0;
	rpc_server_close(d.server);
	d.server = NULL;
	vdd_destroy(d.srv);
out_eal:
	rte_eal_cleanup();
out:
	rpc_server_close(d.server);
	if (pidfile) {
		unlink(pidfile);
	}
	return status;
}

struct vdd *vdd_of_ctx(void *ctx)
{
	return ((struct daemon *)ctx)->srv;
}
