/* SPDX-License-Identifier: MIT */
/* vdisk-serve.c: the vdisk commands that talk to the disk server vdiskd
 * over its control socket (docs/vdiskd-rpc.md): serve, unserve, ps; and
 * the lookup that lets info, snapshot and resize go through the daemon
 * when it serves their image.  The socket is --ctl PATH, else
 * $VDISKD_CTL, else vdiskd's default. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cliutil.h"
#include "rpc.h"
#include "vdisk-cmds.h"
#include "vdisk.h"

#define VDISKD_CTL_DEFAULT "/run/vdiskd/vdiskd.sock"
/* A snapshot or a removal waits for the guest's requests in flight. */
#define VDISKD_TIMEOUT_S 60
/* Finding out whether an image is served takes one quick answer; a daemon
 * that does not give it within this is treated as not serving it. */
#define VDISKD_LOOKUP_TIMEOUT_S 5

static const char *ctl_path(const char *opt)
{
	const char *env = getenv("VDISKD_CTL");

	return opt ? opt : env && env[0] ? env : VDISKD_CTL_DEFAULT;
}

/* Sends 'method' with 'params' (taken) and returns the result (the caller
 * puts it) or NULL after printing the error. */
static struct json_object *call(const char *ctl, const char *method, struct json_object *params)
{
	struct json_object *result = NULL;
	struct rpc_client *client;
	struct errmsg err = {{0}};
	int ret = rpc_client_open(ctl_path(ctl), "vdiskd", VDISKD_TIMEOUT_S, &client, &err);

	if (ret == 0) {
		ret = rpc_client_call(client, method, params, &result, NULL, &err);
		rpc_client_close(client);
	}
	json_object_put(params);
	if (ret < 0) {
		cli_error_ret(&err, method, ret);
		return NULL;
	}
	return result;
}

/* An absolute form of 'path' (the daemon has its own working directory). */
static char *absolute(const char *path)
{
	char *abs = realpath(path, NULL);

	if (!abs && path[0] != '/') {
		char cwd[PATH_MAX];

		if (getcwd(cwd, sizeof(cwd)) && asprintf(&abs, "%s/%s", cwd, path) < 0) {
			abs = NULL;
		}
	}
	return abs ? abs : strdup(path);
}

/* The image 'spec' (a path, NAME:rel or [NAME] rel, resolved with the
 * user's registry; a template refused when 'write') as the absolute host
 * path the daemon is sent: a new string, or NULL after saying why. */
static char *image_for_daemon(const char *spec, bool write)
{
	char *host, *img;

	if (vdisk_resolve_served(spec, write, &host) < 0) {
		return NULL;
	}
	if (!strncmp(host, "rbd:", 4)) {
		return host;
	}
	img = absolute(host);
	free(host);
	return img;
}

/*
 * Images served: the commands that would open an image find out first
 * whether vdiskd has it.
 */

/* Whether the daemon's disk entry 'd' is the file 'st' describes.  By
 * device and inode, not by name: the daemon keeps the path it was given,
 * and a symbolic link, a relative path or a datastore spelling name the
 * same file differently. */
static bool same_file(struct json_object *d, const struct stat *st)
{
	struct stat dst;

	return stat(cli_json_str(d, "image", ""), &dst) == 0 && dst.st_dev == st->st_dev &&
	       dst.st_ino == st->st_ino;
}

/* The entry of the file 'st' in disk-list's answer for 'name' (NULL:
 * every disk), as a new reference, or NULL. */
static struct json_object *list_find(struct rpc_client *client, const char *name,
				     const struct stat *st)
{
	struct json_object *params = NULL, *res = NULL, *disks, *found = NULL;
	int ret;

	if (name) {
		params = json_object_new_object();
		json_object_object_add(params, "disk", json_object_new_string(name));
	}
	ret = rpc_client_call(client, "disk-list", params, &res, NULL, NULL);
	json_object_put(params);
	if (ret < 0) {
		return NULL;
	}
	if (json_object_object_get_ex(res, "disks", &disks) &&
	    json_object_is_type(disks, json_type_array)) {
		for (size_t i = 0; !found && i < json_object_array_length(disks); i++) {
			struct json_object *d = json_object_array_get_idx(disks, i);

			if (same_file(d, st)) {
				found = json_object_get(d);
			}
		}
	}
	json_object_put(res);
	return found;
}

/* The disk-list entry of the file 'path' ('st'), or NULL.  vdisk serve
 * hands the daemon the canonical path, so asking for that one disk finds
 * it at once; only then are all of them listed.  (disk-list counts each
 * listed disk's allocated clusters, which is not free on a large image.) */
static struct json_object *find_disk(struct rpc_client *client, const char *path,
				     const struct stat *st)
{
	char *canon = realpath(path, NULL);
	struct json_object *found = canon ? list_find(client, canon, st) : NULL;

	free(canon);
	return found ? found : list_find(client, NULL, st);
}

/*
 * The image's lock decides, and the daemon is asked only when it is held:
 * the lock is the one authority on whether anybody has the image open (it
 * sees every opener, vdiskd or not, even on other hosts of a shared file
 * system), so a command on an image nobody holds never depends on a daemon
 * being up or answering, and a daemon's list is believed only for an image
 * someone does hold.  Checking before the open rather than after an -EBUSY
 * also finds images vdiskd serves read-only, whose shared lock lets our
 * own read-only open succeed: info must still say who serves them.  The
 * race (served or unserved between the look and the open) costs no
 * safety: the open then fails on the lock or the daemon on "not served",
 * each with its own clear sentence.
 */
static int served_find(const char *ctl, const char *path, struct vdisk_served *s)
{
	struct json_object *res = NULL, *disk;
	struct rpc_client *client;
	struct vd_users users;
	struct stat st;

	if (vd_image_users(path, &users, NULL) < 0 || !users.in_use || stat(path, &st) < 0) {
		return 0;
	}
	if (rpc_client_open(ctl_path(ctl), "vdiskd", VDISKD_LOOKUP_TIMEOUT_S, &client, NULL) < 0) {
		return 0;
	}
	disk = find_disk(client, path, &st);
	if (disk && rpc_client_call(client, "version", NULL, &res, NULL, NULL) == 0) {
		s->ctl = strdup(ctl_path(ctl));
		s->pid = (long)cli_json_u64(res, "pid");
		s->disk = disk;
		disk = NULL;
		json_object_put(res);
	}
	json_object_put(disk);
	rpc_client_close(client);
	return s->disk ? 1 : 0;
}

/* An RBD image has no lock file to look at first: the daemon is asked by
 * name (disk-add keeps the rbd: name it was given, and vdisk serve sends
 * the one vdisk_resolve_served() makes), and a daemon that is not running
 * serves nothing.  A server on another host holds the exclusive lock; the
 * librbd calls then say so. */
static int served_find_rbd(const char *ctl, const char *name, struct vdisk_served *s)
{
	struct json_object *params, *res = NULL, *disks, *ver = NULL;
	struct rpc_client *client;
	int ret = 0;

	if (rpc_client_open(ctl_path(ctl), "vdiskd", VDISKD_LOOKUP_TIMEOUT_S, &client, NULL) < 0) {
		return 0;
	}
	params = json_object_new_object();
	json_object_object_add(params, "disk", json_object_new_string(name));
	if (rpc_client_call(client, "disk-list", params, &res, NULL, NULL) == 0 &&
	    json_object_object_get_ex(res, "disks", &disks) &&
	    json_object_array_length(disks) == 1 &&
	    rpc_client_call(client, "version", NULL, &ver, NULL, NULL) == 0) {
		s->ctl = strdup(ctl_path(ctl));
		s->pid = (long)cli_json_u64(ver, "pid");
		s->disk = json_object_get(json_object_array_get_idx(disks, 0));
		ret = s->ctl ? 1 : -ENOMEM;
	}
	json_object_put(params);
	json_object_put(res);
	json_object_put(ver);
	rpc_client_close(client);
	return ret;
}

int vdisk_served_lookup(const char *ctl, const char *spec, bool write, struct vdisk_served *s)
{
	char *path;
	int ret;

	memset(s, 0, sizeof(*s));
	ret = vdisk_resolve_served(spec, write, &path);
	if (ret < 0) {
		return ret;
	}
	ret = strncmp(path, "rbd:", 4) ? served_find(ctl, path, s) : served_find_rbd(ctl, path, s);
	free(path);
	return ret;
}

void vdisk_served_fini(struct vdisk_served *s)
{
	free(s->ctl);
	json_object_put(s->disk);
	memset(s, 0, sizeof(*s));
}

const char *vdisk_served_image(const struct vdisk_served *s)
{
	return cli_json_str(s->disk, "image", "");
}

struct json_object *vdisk_served_call(const struct vdisk_served *s, const char *method,
				      struct json_object *params)
{
	if (!params) {
		params = json_object_new_object();
	}
	json_object_object_add(params, "disk", json_object_new_string(vdisk_served_image(s)));
	return call(s->ctl, method, params);
}

static const char serve_help[] =
	"Usage: vdisk serve [--ctl PATH] --socket PATH [--read-only] [--queues N]\n"
	"                   [--serial ID] IMAGE\n\n"
	"Asks vdiskd to serve IMAGE (a path, NAME:rel or [NAME] rel) to a QEMU guest\n"
	"on the vhost-user-blk socket PATH.  The control socket is --ctl,\n"
	"$VDISKD_CTL, or " VDISKD_CTL_DEFAULT ".\n";

int vdisk_cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"ctl", required_argument, NULL, 'c'},  {"socket", required_argument, NULL, 's'},
		{"read-only", no_argument, NULL, 'r'},  {"queues", required_argument, NULL, 'q'},
		{"serial", required_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *ctl = NULL, *sock = NULL, *serial = NULL;
	struct json_object *params, *res;
	uint64_t queues = 1;
	bool ro = false;
	char *img, *abs_sock;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:rq:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': ctl = optarg; break;
		case 's': sock = optarg; break;
		case 'r': ro = true; break;
		case 'S': serial = optarg; break;
		case 'q':
			if (cli_parse_u64(optarg, &queues) < 0) {
				cli_usage_error("serve", "bad queue count '%s'", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h': fputs(serve_help, stdout); return 0;
		default: cli_getopt_error("serve", c, argv); return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !sock) {
		cli_usage_error("serve", "want one IMAGE and --socket PATH");
		return CLI_EXIT_USAGE;
	}
	/* A datastore's spelling is resolved here, with the user's registry,
	 * like every other command's image; the daemon gets a host path.  A
	 * template is refused read-write, as for any writer. */
	img = image_for_daemon(argv[optind], !ro);
	if (!img) {
		return CLI_EXIT_FAILURE;
	}
	abs_sock = absolute(sock);
	params = json_object_new_object();
	json_object_object_add(params, "image", json_object_new_string(img));
	json_object_object_add(params, "socket", json_object_new_string(abs_sock));
	json_object_object_add(params, "read-only", json_object_new_boolean(ro));
	json_object_object_add(params, "queues", json_object_new_int64((int64_t)queues));
	if (serial) {
		json_object_object_add(params, "serial", json_object_new_string(serial));
	}
	res = call(ctl, "disk-add", params);
	free(img);
	free(abs_sock);
	json_object_put(res);
	return res ? 0 : CLI_EXIT_FAILURE;
}

static const char unserve_help[] =
	"Usage: vdisk unserve [--ctl PATH] [--force] IMAGE\n\n"
	"Asks vdiskd to stop serving IMAGE (or the disk on socket IMAGE).  Refused\n"
	"while a guest is connected, unless --force disconnects it.\n";

int vdisk_cmd_unserve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"ctl", required_argument, NULL, 'c'}, {"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0},
	};
	const char *ctl = NULL;
	struct json_object *params, *res;
	bool force = false;
	char *img;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': ctl = optarg; break;
		case 'f': force = true; break;
		case 'h': fputs(unserve_help, stdout); return 0;
		default: cli_getopt_error("unserve", c, argv); return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		cli_usage_error("unserve", "want one IMAGE");
		return CLI_EXIT_USAGE;
	}
	img = image_for_daemon(argv[optind], false);
	if (!img) {
		return CLI_EXIT_FAILURE;
	}
	params = json_object_new_object();
	json_object_object_add(params, "disk", json_object_new_string(img));
	json_object_object_add(params, "force", json_object_new_boolean(force));
	res = call(ctl, "disk-remove", params);
	free(img);
	json_object_put(res);
	return res ? 0 : CLI_EXIT_FAILURE;
}

static const char ps_help[] =
	"Usage: vdisk ps [--ctl PATH] [--json]\n\n"
	"Lists the disks vdiskd serves: image, socket, state, queues, bytes moved.\n";

int vdisk_cmd_ps(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"ctl", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0},
	};
	struct json_object *res, *disks;
	const char *ctl = NULL;
	bool json = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': ctl = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(ps_help, stdout); return 0;
		default: cli_getopt_error("ps", c, argv); return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_usage_error("ps", "unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	res = call(ctl, "disk-list", NULL);
	if (!res) {
		return CLI_EXIT_FAILURE;
	}
	if (json) {
		cli_json_print(stdout, res);
	} else if (json_object_object_get_ex(res, "disks", &disks)) {
		printf("%-32s %-28s %-9s %6s %12s %12s\n", "IMAGE", "SOCKET", "STATE", "QUEUES",
		       "READ", "WRITTEN");
		for (size_t i = 0; i < json_object_array_length(disks); i++) {
			struct json_object *d = json_object_array_get_idx(disks, i);

			printf("%-32s %-28s %-9s %6lld %12lld %12lld\n", cli_json_str(d, "image", "-"),
			       cli_json_str(d, "socket", "-"), cli_json_str(d, "state", "-"), (long long)cli_json_u64(d, "queues"),
			       (long long)cli_json_u64(d, "bytes-read"), (long long)cli_json_u64(d, "bytes-written"));
		}
	}
	json_object_put(res);
	return 0;
}

/*
 * Live migration: vdisk migrate on an image vdiskd serves.
 */

static void print_job(const struct json_object *job_c)
{
	struct json_object *job = (struct json_object *)job_c;
	char done[32], total[32], rate[32];
	uint64_t t = cli_json_u64(job, "total"), eta = cli_json_u64(job, "eta-ms");
	const char *error = cli_json_str(job, "error", NULL);

	cli_human_size(cli_json_u64(job, "done"), done, sizeof(done));
	cli_human_size(t, total, sizeof(total));
	cli_human_size(cli_json_u64(job, "rate"), rate, sizeof(rate));
	printf("%s -> %s: %s, %s of %s (%.1f%%), %s/s", cli_json_str(job, "source", "?"),
	       cli_json_str(job, "destination", "?"), cli_json_str(job, "phase", "?"), done, total,
	       t ? 100.0 * (double)cli_json_u64(job, "done") / (double)t : 100.0, rate);
	if (eta) {
		printf(", ETA %llu s", (unsigned long long)(eta + 999) / 1000);
	}
	if (error) {
		printf(": %s", error);
	}
	putchar('\n');
}

int vdisk_migrate_status(const char *ctl, const char *spec, bool json)
{
	struct json_object *params = json_object_new_object(), *res, *jobs;
	char *path = NULL;

	if (spec) {
		path = image_for_daemon(spec, false);
		if (!path) {
			json_object_put(params);
			return CLI_EXIT_FAILURE;
		}
		json_object_object_add(params, "disk", json_object_new_string(path));
		free(path);
	}
	res = call(ctl, "migrate-status", params);
	if (!res) {
		return CLI_EXIT_FAILURE;
	}
	if (json) {
		cli_json_print(stdout, res);
	} else if (json_object_object_get_ex(res, "jobs", &jobs)) {
		if (json_object_array_length(jobs) == 0) {
			printf("no migration\n");
		}
		for (size_t i = 0; i < json_object_array_length(jobs); i++) {
			print_job(json_object_array_get_idx(jobs, i));
		}
	}
	json_object_put(res);
	return CLI_EXIT_OK;
}

/* Waits for the job on 's', drawing a progress line on stderr when asked
 * (and a terminal).  Returns the job's last status (the caller puts it). */
static struct json_object *follow(const struct vdisk_served *s, const char *image, bool show)
{
	struct json_object *params, *res, *jobs, *job = NULL;

	for (;;) {
		params = json_object_new_object();
		json_object_object_add(params, "disk", json_object_new_string(image));
		res = call(s->ctl, "migrate-status", params);
		if (!res) {
			return NULL;
		}
		job = NULL;
		if (json_object_object_get_ex(res, "jobs", &jobs) &&
		    json_object_array_length(jobs) > 0) {
			job = json_object_get(json_object_array_get_idx(jobs, 0));
		}
		json_object_put(res);
		if (!job) {
			cli_error("%s: vdiskd has no migration for it any more", image);
			return NULL;
		}
		if (show) {
			uint64_t t = cli_json_u64(job, "total");

			fprintf(stderr, "\r\033[K%s: %s (%3.2f/100%%)", cli_json_str(job, "source", "?"),
				cli_json_str(job, "phase", "?"),
				t ? 100.0 * (double)cli_json_u64(job, "done") / (double)t : 0.0);
		}
		if (!json_object_get_boolean(json_object_object_get(job, "running"))) {
			if (show) {
				fputc('\n', stderr);
			}
			return job;
		}
		json_object_put(job);
		usleep(200000);
	}
}

int vdisk_migrate_served(const struct vdisk_served *s, const char *to, bool keep_source,
			 uint64_t bandwidth, bool progress)
{
	struct json_object *params = json_object_new_object(), *res, *job;
	char image[PATH_MAX];
	const char *phase;
	int ret = CLI_EXIT_FAILURE;

	/* The job is followed by the disk's socket: at the pivot its image
	 * becomes the destination. */
	snprintf(image, sizeof(image), "%s", cli_json_str(s->disk, "socket", ""));
	json_object_object_add(params, "to", json_object_new_string(to));
	json_object_object_add(params, "keep-source", json_object_new_boolean(keep_source));
	json_object_object_add(params, "bandwidth", json_object_new_uint64(bandwidth));
	res = vdisk_served_call(s, "migrate-start", params);
	if (!res) {
		return CLI_EXIT_FAILURE;
	}
	json_object_put(res);
	job = follow(s, image, progress && isatty(STDERR_FILENO));
	if (!job) {
		return CLI_EXIT_FAILURE;
	}
	phase = cli_json_str(job, "phase", "?");
	if (!strcmp(phase, "done")) {
		char copied[32];

		cli_human_size(cli_json_u64(job, "done"), copied, sizeof(copied));
		printf("%s -> %s (live: %s copied, the guest paused %llu us at the pivot)\n",
		       cli_json_str(job, "source", "?"), cli_json_str(job, "destination", "?"), copied,
		       (unsigned long long)cli_json_u64(job, "pivot-us"));
		ret = CLI_EXIT_OK;
	} else if (!strcmp(phase, "cancelled")) {
		cli_error("%s: the migration was cancelled; %s stays the image", image,
			  cli_json_str(job, "source", "?"));
	} else {
		cli_error("%s: migration %s: %s; %s stays the image", image, phase,
			  cli_json_str(job, "error", "vdiskd stopped"), cli_json_str(job, "source", "?"));
	}
	json_object_put(job);
	return ret;
}

int vdisk_migrate_control(const struct vdisk_served *s, bool cancel, uint64_t bandwidth)
{
	struct json_object *params = NULL, *res;

	if (!cancel) {
		params = json_object_new_object();
		json_object_object_add(params, "bandwidth", json_object_new_uint64(bandwidth));
	}
	res = vdisk_served_call(s, cancel ? "migrate-cancel" : "migrate-set", params);
	json_object_put(res);
	return res ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}
