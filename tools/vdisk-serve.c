/* SPDX-License-Identifier: MIT */
/* vdisk-serve.c: the vdisk commands that talk to the disk server vdiskd
 * over its control socket (docs/vdiskd-rpc.md): serve, unserve, ps.  The
 * socket is --ctl PATH, else $VDISKD_CTL, else vdiskd's default. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cliutil.h"
#include "rpc.h"
#include "vdisk-cmds.h"

#define VDISKD_CTL_DEFAULT "/run/vdiskd/vdiskd.sock"
/* A snapshot or a removal waits for the guest's requests in flight. */
#define VDISKD_TIMEOUT_S 60

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

static const char serve_help[] =
	"Usage: vdisk serve [--ctl PATH] --socket PATH [--read-only] [--queues N]\n"
	"                   [--serial ID] IMAGE\n\n"
	"Asks vdiskd to serve IMAGE to a QEMU guest on the vhost-user-blk socket\n"
	"PATH.  The control socket is --ctl, $VDISKD_CTL, or " VDISKD_CTL_DEFAULT ".\n";

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
	img = absolute(argv[optind]);
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
	img = absolute(argv[optind]);
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

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "-";
}

static long long jint(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? (long long)json_object_get_int64(v) : 0;
}

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

			printf("%-32s %-28s %-9s %6lld %12lld %12lld\n", jstr(d, "image"),
			       jstr(d, "socket"), jstr(d, "state"), jint(d, "queues"),
			       jint(d, "bytes-read"), jint(d, "bytes-written"));
		}
	}
	json_object_put(res);
	return 0;
}
