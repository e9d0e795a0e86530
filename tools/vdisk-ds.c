/* SPDX-License-Identifier: MIT */
/* vdisk-ds.c: the vdisk commands on datastores (datastore create, list,
 * remove and set; ls, import, export, rm, template) and the glue every
 * other command uses to take "NAME:rel" and "[NAME] rel" for a file:
 * vdisk_resolve() for images it opens, vdisk_target_begin()/_end() for
 * files it creates, so they are registered.  Thin layers over
 * libdatastore (datastore.h); import and export are convert with a
 * datastore on one side. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cliutil.h"
#include "datastore.h"
#include "vdisk-cmds.h"
#ifdef VDISK_RBD
#include "vrbd.h"
#endif
#include "vdisk.h"

enum {
	OPT_JSON = 256,
	OPT_MAX_OVERCOMMIT,
	OPT_FORCE,
	OPT_DELETE_FILES,
	OPT_CLEAR,
	OPT_ISO,
	OPT_TO,
	OPT_KEEP_SOURCE,
	OPT_WITH_BACKING,
	OPT_STATUS,
	OPT_CANCEL,
	OPT_BANDWIDTH,
	OPT_RBD,
	OPT_CEPH_CONF,
	OPT_ID,
};

/*
 * Names of images, for every command.
 */

/* Refuses a write to a datastore's template (root would pass its 0444),
 * and to the old copy of an image a migration has switched away from
 * (ds_check_writable). */
static int refuse_write(const char *spec, const char *path)
{
	struct errmsg err = {{0}};
	int ret = ds_check_writable(NULL, path, &err);

	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
	}
	return ret;
}

static int resolve(const char *spec, bool write, bool rbd_ok, char **pathp)
{
	struct errmsg err = {{0}};
	int ret;

	ret = ds_resolve(NULL, spec, pathp, &err);
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return ret;
	}
	if (!strncmp(*pathp, "rbd:", 4)) {
		if (rbd_ok) {
			return 0;
		}
#ifdef VDISK_RBD
		cli_error("%s: a Ceph RBD image: vdiskd serves it (vdisk serve), this command "
			  "does not handle RBD images yet", spec);
#else
		cli_error("%s: a Ceph RBD image: this vdisk was built without Ceph RBD support",
			  spec);
#endif
		free(*pathp);
		*pathp = NULL;
		return -EMEDIUMTYPE;
	}
	if (write) {
		ret = refuse_write(spec, *pathp);
	}
	if (ret < 0) {
		free(*pathp);
		*pathp = NULL;
		return ret;
	}
	return 0;
}

int vdisk_resolve(const char *spec, bool write, char **pathp)
{
	return resolve(spec, write, false, pathp);
}

int vdisk_resolve_served(const char *spec, bool write, char **pathp)
{
	return resolve(spec, write, true, pathp);
}

int vdisk_target_begin(const char *spec, bool iso, uint64_t size_bytes, struct vdisk_target *t)
{
	struct ds_entry_opts eo;
	struct errmsg err = {{0}};
	struct ds_ref ref;
	int ret;

	memset(t, 0, sizeof(*t));
	ret = ds_parse_ref(NULL, spec, &ref, &err);
	/* A host path inside a datastore is registered just the same. */
	if (ret == 0) {
		ret = ds_locate(NULL, spec, &ref, &err);
	}
	if (ret <= 0) {
		t->path = ret == 0 ? strdup(spec) : NULL;
		if (ret < 0) {
			cli_error_ret(&err, spec, ret);
		}
		return ret < 0 ? ret : t->path ? 0 : -ENOMEM;
	}
	ret = ds_open(NULL, ref.name, &t->ds, &err);
	if (ret == 0) {
		ds_entry_opts_init(&eo);
		eo.kind = iso ? DS_KIND_ISO : DS_KIND_IMAGE;
		eo.size_bytes = size_bytes;
		ret = ds_entry_begin(t->ds, ref.rel, &eo, &err);
	}
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		ds_close(t->ds);
		ds_ref_fini(&ref);
		t->ds = NULL;
		return ret;
	}
	t->iso = iso;
	t->path = ref.path;
	t->rel = ref.rel;
	free(ref.name);
	return 0;
}

int vdisk_target_end(struct vdisk_target *t, bool ok)
{
	struct errmsg err = {{0}};
	int ret = 0;

	if (t->ds && ok) {
		if (t->iso) {
			chmod(t->path, 0444);
		}
		ret = ds_entry_commit(t->ds, t->rel, &err);
	} else if (t->ds) {
		ret = ds_entry_abort(t->ds, t->rel, &err);
	}
	if (ret < 0) {
		cli_error_ret(&err, t->path, ret);
	}
	ds_close(t->ds);
	free(t->path);
	free(t->rel);
	memset(t, 0, sizeof(*t));
	return ret;
}

/*
 * Shared option handling.
 */

static int parse_ratio(const char *cmd, const char *str, double *ratiop)
{
	char *end;
	double v;

	if (!strcmp(str, "none")) {
		*ratiop = 0;
		return 0;
	}
	v = strtod(str, &end);
	if (end == str || *end || !isfinite(v) || v <= 0) {
		cli_usage_error(cmd, "invalid overcommit ratio '%s' (a positive number or none)",
				str);
		return -EINVAL;
	}
	*ratiop = v;
	return 0;
}

static int check_nargs(const char *cmd, int argc, char **argv, int min, int max,
		       const char *names)
{
	int n = argc - optind;

	if (n < min) {
		cli_usage_error(cmd, "missing %s", names);
		return -EINVAL;
	}
	if (n > max) {
		cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + max]);
		return -EINVAL;
	}
	return 0;
}

/* Options every command here may take; each sets 'allowed' to the ones
 * it does. */
struct ds_opts {
	bool json, force, delete_files, clear, iso, progress, max_set, keep_source, with_backing;
	bool status, cancel, bandwidth_set;
	uint64_t bandwidth;
	const char *to;
	double max_overcommit;
	const char *fmt;
	const char *cluster;
	const char *rbd, *ceph_conf, *id;
};

static const struct option ds_longopts[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"max-overcommit", required_argument, NULL, OPT_MAX_OVERCOMMIT},
    {"force", no_argument, NULL, OPT_FORCE},
    {"delete-files", no_argument, NULL, OPT_DELETE_FILES},
    {"clear", no_argument, NULL, OPT_CLEAR},
    {"iso", no_argument, NULL, OPT_ISO},
    {"to", required_argument, NULL, OPT_TO},
    {"keep-source", no_argument, NULL, OPT_KEEP_SOURCE},
    {"with-backing", no_argument, NULL, OPT_WITH_BACKING},
    {"status", no_argument, NULL, OPT_STATUS},
    {"cancel", no_argument, NULL, OPT_CANCEL},
    {"bandwidth", required_argument, NULL, OPT_BANDWIDTH},
    {"rbd", required_argument, NULL, OPT_RBD},
    {"ceph-conf", required_argument, NULL, OPT_CEPH_CONF},
    {"id", required_argument, NULL, OPT_ID},
    {"progress", no_argument, NULL, 'p'},
    {"cluster-size", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Parses the options of 'cmd' ('shortopts' and the long ones in 'allowed',
 * a string of their OPT_ values as characters offset from 256).  Returns
 * 0, 1 after --help, or -EINVAL after a usage error. */
static int parse_opts(const char *cmd, const char *help, const char *shortopts,
		      const int *allowed, int argc, char **argv, struct ds_opts *o)
{
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, ds_longopts, NULL)) != -1) {
		bool ok = c < 256 && (c == '?' || c == ':' || strchr(shortopts, c));

		for (const int *a = allowed; !ok && *a; a++) {
			ok = *a == c;
		}
		if (!ok) {
			cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
			return -EINVAL;
		}
		switch (c) {
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_MAX_OVERCOMMIT:
			if (parse_ratio(cmd, optarg, &o->max_overcommit) < 0) {
				return -EINVAL;
			}
			o->max_set = true;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case OPT_DELETE_FILES:
			o->delete_files = true;
			break;
		case OPT_CLEAR:
			o->clear = true;
			break;
		case OPT_RBD:
			o->rbd = optarg;
			break;
		case OPT_CEPH_CONF:
			o->ceph_conf = optarg;
			break;
		case OPT_ID:
			o->id = optarg;
			break;
		case OPT_ISO:
			o->iso = true;
			break;
		case OPT_TO:
			o->to = optarg;
			break;
		case OPT_KEEP_SOURCE:
			o->keep_source = true;
			break;
		case OPT_WITH_BACKING:
			o->with_backing = true;
			break;
		case OPT_STATUS:
			o->status = true;
			break;
		case OPT_CANCEL:
			o->cancel = true;
			break;
		case OPT_BANDWIDTH:
			if (cli_parse_size(optarg, &o->bandwidth) < 0) {
				cli_usage_error(cmd, "bad --bandwidth '%s' (bytes per second, with "
						     "K, M or G; 0: no limit)", optarg);
				return -EINVAL;
			}
			o->bandwidth_set = true;
			break;
		case 'p':
			o->progress = true;
			break;
		case 'f':
		case 'O':
			o->fmt = optarg;
			break;
		case 'c':
			o->cluster = optarg;
			break;
		case 'h':
			fputs(help, stdout);
			return 1;
		default:
			cli_getopt_error(cmd, c, argv);
			return -EINVAL;
		}
	}
	return 0;
}

static int status_of(int ret)
{
	return ret > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/*
 * datastore create | list | remove | set
 */

static const char datastore_help[] =
    "Usage: vdisk datastore create [--max-overcommit RATIO] NAME PATH\n"
    "       vdisk datastore create NAME --rbd POOL [--ceph-conf FILE] [--id USER]\n"
    "       vdisk datastore list [--json]\n"
    "       vdisk datastore remove [--force [--delete-files]] NAME\n"
    "       vdisk datastore set --max-overcommit RATIO|none NAME\n"
    "\n"
    "Manages datastores: named directories holding images, templates and ISO\n"
    "images, listed in the registry $VDISK_DATASTORES (default\n" DS_REGISTRY_DEFAULT ").\n"
    "\n"
    "  create   registers PATH (created if missing) as datastore NAME; a\n"
    "           directory that already holds datastore NAME is adopted; with\n"
    "           --rbd, the Ceph pool POOL (reached with FILE, default\n"
    "           /etc/ceph/ceph.conf, as client.USER, default admin) is datastore\n"
    "           NAME, its RBD images NAME:IMAGE (vdiskd serves them)\n"
    "  list     shows each datastore's path, capacity, free space, provisioned\n"
    "           (virtual sizes) and allocated bytes, overcommit ratio, entries\n"
    "  remove   unregisters NAME, refused while it holds entries unless\n"
    "           --force; files are deleted only with --delete-files\n"
    "  set      changes the overcommit limit\n"
    "\n"
    "      --max-overcommit=RATIO  refuse a create, clone or import that would\n"
    "                              make provisioned / capacity exceed RATIO\n"
    "      --json                  print JSON\n"
    "  -h, --help                  show this help\n";

static int create_rbd(const char *name, const struct ds_opts *o)
{
	struct errmsg err = {{0}};
	struct ds_rbd rbd;
	int ret;

	memset(&rbd, 0, sizeof(rbd));
	if (o->max_set) {
		cli_usage_error("datastore create", "--max-overcommit is for directories");
		return CLI_EXIT_USAGE;
	}
	if (snprintf(rbd.pool, sizeof(rbd.pool), "%s", o->rbd) >= (int)sizeof(rbd.pool) ||
	    snprintf(rbd.conf, sizeof(rbd.conf), "%s", o->ceph_conf ? o->ceph_conf : "") >=
		    (int)sizeof(rbd.conf) ||
	    snprintf(rbd.id, sizeof(rbd.id), "%s", o->id ? o->id : "") >= (int)sizeof(rbd.id)) {
		cli_usage_error("datastore create", "pool, configuration or user name too long");
		return CLI_EXIT_USAGE;
	}
	ret = ds_create_rbd(NULL, name, &rbd, &err);
	if (ret < 0) {
		cli_error_ret(&err, name, ret);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

static int ds_create_cmd(int argc, char **argv)
{
	static const int allowed[] = {OPT_MAX_OVERCOMMIT, OPT_RBD, OPT_CEPH_CONF, OPT_ID, 0};
	struct ds_create_opts co;
	struct ds_opts o = {0};
	struct errmsg err = {{0}};
	int ret;

	ret = parse_opts("datastore create", datastore_help, ":h", allowed, argc, argv, &o);
	if (ret == 0 && o.rbd) {
		if (check_nargs("datastore create", argc, argv, 1, 1, "NAME") < 0) {
			return CLI_EXIT_USAGE;
		}
		return create_rbd(argv[optind], &o);
	}
	if (ret == 0 && (o.ceph_conf || o.id)) {
		cli_usage_error("datastore create", "--ceph-conf and --id go with --rbd");
		return CLI_EXIT_USAGE;
	}
	if (ret != 0 || check_nargs("datastore create", argc, argv, 2, 2, "NAME and PATH") < 0) {
		return status_of(ret);
	}
	ds_create_opts_init(&co);
	co.max_overcommit = o.max_overcommit;
	ret = ds_create(NULL, argv[optind], argv[optind + 1], &co, &err);
	if (ret < 0) {
		cli_error_ret(&err, argv[optind], ret);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

static struct json_object *usage_json(struct ds_datastore *ds, const struct ds_usage *u)
{
	struct json_object *o = json_object_new_object();
	double limit = ds_max_overcommit(ds);

	json_object_object_add(o, "name", json_object_new_string(ds_name(ds)));
	json_object_object_add(o, "path", json_object_new_string(ds_path(ds)));
	json_object_object_add(o, "id", json_object_new_string(ds_id(ds)));
	json_object_object_add(o, "capacity", json_object_new_uint64(u->capacity_bytes));
	json_object_object_add(o, "free", json_object_new_uint64(u->free_bytes));
	json_object_object_add(o, "provisioned", json_object_new_uint64(u->provisioned_bytes));
	json_object_object_add(o, "allocated", json_object_new_uint64(u->allocated_bytes));
	json_object_object_add(o, "overcommit", json_object_new_double(u->overcommit));
	json_object_object_add(o, "max_overcommit",
			       limit > 0 ? json_object_new_double(limit) : NULL);
	json_object_object_add(o, "images", json_object_new_int(u->n_images));
	json_object_object_add(o, "templates", json_object_new_int(u->n_templates));
	json_object_object_add(o, "isos", json_object_new_int(u->n_isos));
	json_object_object_add(o, "incomplete", json_object_new_int(u->n_incomplete));
	return o;
}

static void usage_text(struct ds_datastore *ds, const struct ds_usage *u)
{
	char cap[CLI_HUMAN_SIZE_LEN], fr[CLI_HUMAN_SIZE_LEN], prov[CLI_HUMAN_SIZE_LEN],
	    alloc[CLI_HUMAN_SIZE_LEN], lim[16] = "-";

	if (ds_max_overcommit(ds) > 0) {
		snprintf(lim, sizeof(lim), "%.2f", ds_max_overcommit(ds));
	}
	printf("%-16s %-32s %10s %10s %11s %10s %6.2f %6s %6u\n", ds_name(ds), ds_path(ds),
	       cli_human_size(u->capacity_bytes, cap, sizeof(cap)),
	       cli_human_size(u->free_bytes, fr, sizeof(fr)),
	       cli_human_size(u->provisioned_bytes, prov, sizeof(prov)),
	       cli_human_size(u->allocated_bytes, alloc, sizeof(alloc)), u->overcommit, lim,
	       u->n_images + u->n_templates + u->n_isos);
}

/* One datastore's line or object; a datastore that cannot be read is
 * reported and counted, the others still listed. */
/* A Ceph pool's line or object: capacity and free space as the cluster
 * reports them ("-" / null when it reports none), provisioned and
 * allocated counted over its images. */
static int list_rbd(const char *name, const struct ds_rbd *rbd, struct json_object *array)
{
	char where[sizeof(rbd->pool) + 8], cap[CLI_HUMAN_SIZE_LEN], fr[CLI_HUMAN_SIZE_LEN],
	    prov[CLI_HUMAN_SIZE_LEN], alloc[CLI_HUMAN_SIZE_LEN];
	struct ds_rbd_image *imgs;
	struct errmsg err = {{0}};
	struct ds_usage u;
	struct json_object *o;
	unsigned n;
	int ret;

	snprintf(where, sizeof(where), "rbd:%s", rbd->pool);
	ret = ds_rbd_images(NULL, name, &imgs, &n, &u, &err);
	if (ret < 0) {
		cli_error_ret(&err, name, ret);
		if (array) {
			o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string(name));
			json_object_object_add(o, "error", json_object_new_string(err.msg));
			json_object_array_add(array, o);
		}
		return ret;
	}
	ds_rbd_images_free(imgs, n);
	if (array) {
		o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "kind", json_object_new_string("rbd"));
		json_object_object_add(o, "pool", json_object_new_string(rbd->pool));
		json_object_object_add(o, "ceph_conf",
				       rbd->conf[0] ? json_object_new_string(rbd->conf) : NULL);
		json_object_object_add(o, "user",
				       json_object_new_string(rbd->id[0] ? rbd->id : "admin"));
		json_object_object_add(o, "capacity",
				       u.capacity_bytes ? json_object_new_uint64(u.capacity_bytes)
							: NULL);
		json_object_object_add(o, "free",
				       u.capacity_bytes ? json_object_new_uint64(u.free_bytes) : NULL);
		json_object_object_add(o, "provisioned", json_object_new_uint64(u.provisioned_bytes));
		json_object_object_add(o, "allocated", json_object_new_uint64(u.allocated_bytes));
		json_object_object_add(o, "images", json_object_new_int(u.n_images));
		json_object_array_add(array, o);
		return 0;
	}
	printf("%-16s %-32s %10s %10s %11s %10s %6s %6s %6u\n", name, where,
	       u.capacity_bytes ? cli_human_size(u.capacity_bytes, cap, sizeof(cap)) : "-",
	       u.capacity_bytes ? cli_human_size(u.free_bytes, fr, sizeof(fr)) : "-",
	       cli_human_size(u.provisioned_bytes, prov, sizeof(prov)),
	       cli_human_size(u.allocated_bytes, alloc, sizeof(alloc)), "-", "-", u.n_images);
	return 0;
}

static int list_one(const char *name, struct json_object *array)
{
	struct ds_datastore *ds;
	struct errmsg err = {{0}};
	struct ds_usage u;
	struct ds_rbd rbd;
	int ret;

	if (ds_get_rbd(NULL, name, &rbd, NULL) == 1) {
		return list_rbd(name, &rbd, array);
	}
	ret = ds_open(NULL, name, &ds, &err);
	if (ret == 0) {
		ret = ds_get_usage(ds, &u, &err);
	}
	if (ret < 0) {
		cli_error_ret(&err, name, ret);
	} else if (array) {
		json_object_array_add(array, usage_json(ds, &u));
	} else {
		usage_text(ds, &u);
	}
	if (ret < 0 && array) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "error", json_object_new_string(err.msg));
		json_object_array_add(array, o);
	}
	ds_close(ds);
	return ret;
}

static int ds_list_cmd(int argc, char **argv)
{
	static const int allowed[] = {OPT_JSON, 0};
	struct json_object *array = NULL;
	struct errmsg err = {{0}};
	struct ds_opts o = {0};
	char **names;
	int ret, failed = 0;

	ret = parse_opts("datastore list", datastore_help, ":h", allowed, argc, argv, &o);
	if (ret != 0 || check_nargs("datastore list", argc, argv, 0, 0, "") < 0) {
		return status_of(ret);
	}
	ret = ds_list(NULL, &names, &err);
	if (ret < 0) {
		cli_error_ret(&err, ds_registry_path(), ret);
		return CLI_EXIT_FAILURE;
	}
	if (o.json) {
		array = json_object_new_array();
	} else {
		printf("%-16s %-32s %10s %10s %11s %10s %6s %6s %6s\n", "NAME", "PATH", "CAPACITY",
		       "FREE", "PROVISIONED", "ALLOCATED", "RATIO", "LIMIT", "IMAGES");
	}
	for (int i = 0; names[i]; i++) {
		failed |= list_one(names[i], array) < 0;
	}
	if (array) {
		cli_json_print(stdout, array);
		json_object_put(array);
	}
	ds_names_free(names);
	return failed ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

static int ds_remove_cmd(int argc, char **argv)
{
	static const int allowed[] = {OPT_FORCE, OPT_DELETE_FILES, 0};
	struct errmsg err = {{0}};
	struct ds_opts o = {0};
	int ret;

	ret = parse_opts("datastore remove", datastore_help, ":h", allowed, argc, argv, &o);
	if (ret != 0 || check_nargs("datastore remove", argc, argv, 1, 1, "NAME") < 0) {
		return status_of(ret);
	}
	if (o.delete_files && !o.force) {
		cli_usage_error("datastore remove", "--delete-files needs --force");
		return CLI_EXIT_USAGE;
	}
	ret = ds_remove(NULL, argv[optind],
			(o.force ? DS_REMOVE_FORCE : 0) | (o.delete_files ? DS_REMOVE_DELETE_FILES : 0),
			&err);
	if (ret < 0) {
		cli_error_ret(&err, argv[optind], ret);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

static int ds_set_cmd(int argc, char **argv)
{
	static const int allowed[] = {OPT_MAX_OVERCOMMIT, 0};
	struct ds_datastore *ds;
	struct errmsg err = {{0}};
	struct ds_opts o = {0};
	int ret;

	ret = parse_opts("datastore set", datastore_help, ":h", allowed, argc, argv, &o);
	if (ret != 0 || check_nargs("datastore set", argc, argv, 1, 1, "NAME") < 0) {
		return status_of(ret);
	}
	if (!o.max_set) {
		cli_usage_error("datastore set", "nothing to set (--max-overcommit)");
		return CLI_EXIT_USAGE;
	}
	ret = ds_open(NULL, argv[optind], &ds, &err);
	if (ret == 0) {
		ret = ds_set_max_overcommit(ds, o.max_overcommit, &err);
		ds_close(ds);
	}
	if (ret < 0) {
		cli_error_ret(&err, argv[optind], ret);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

int vdisk_cmd_datastore(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} subs[] = {
	    {"create", ds_create_cmd},
	    {"list", ds_list_cmd},
	    {"remove", ds_remove_cmd},
	    {"set", ds_set_cmd},
	};

	if (argc < 2) {
		cli_usage_error("datastore", "missing subcommand (create, list, remove, set)");
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(datastore_help, stdout);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (!strcmp(argv[1], subs[i].name)) {
			return subs[i].run(argc - 1, argv + 1);
		}
	}
	cli_usage_error("datastore", "unknown subcommand '%s'", argv[1]);
	return CLI_EXIT_USAGE;
}

/*
 * ls
 */

static const char ls_help[] =
    "Usage: vdisk ls [--json] NAME\n"
    "\n"
    "Lists the images, templates and ISO images of datastore NAME: kind, virtual\n"
    "size, allocated size (host blocks), backing chain, snapshots, and whether a\n"
    "process has it open (and which).\n"
    "\n"
    "      --json      print a JSON array, one object per entry\n"
    "  -h, --help      show this help\n";

/* A backing file's name as the user knows it: NAME:rel when it lies in a
 * datastore, else its host path.  A new string. */
static char *display_name(const char *path)
{
	struct ds_ref ref;
	char *out = NULL;

	if (ds_locate(NULL, path, &ref, NULL) > 0 && asprintf(&out, "%s:%s", ref.name, ref.rel) < 0) {
		out = NULL;
	}
	ds_ref_fini(&ref);
	return out ? out : strdup(path);
}

static struct json_object *entry_json(const struct ds_entry *e, const struct ds_image_info *in)
{
	struct json_object *o = json_object_new_object(), *chain = json_object_new_array(),
			   *snaps = json_object_new_array();

	for (unsigned i = 0; i < in->chain_len; i++) {
		json_object_array_add(chain, json_object_new_string(in->chain[i]));
	}
	for (unsigned i = 0; i < in->n_snapshots; i++) {
		json_object_array_add(snaps, json_object_new_string(in->snapshots[i]));
	}
	json_object_object_add(o, "path", json_object_new_string(e->path));
	json_object_object_add(o, "kind", json_object_new_string(ds_kind_name(e->kind)));
	json_object_object_add(o, "state", json_object_new_string(ds_state_name(e->state)));
	json_object_object_add(o, "created", json_object_new_int64(e->created_s));
	json_object_object_add(o, "virtual_size", json_object_new_uint64(in->size_bytes));
	json_object_object_add(o, "allocated", json_object_new_uint64(in->allocated_bytes));
	json_object_object_add(o, "backing_chain", chain);
	json_object_object_add(o, "snapshots", snaps);
	json_object_object_add(o, "origin", e->origin ? json_object_new_string(e->origin) : NULL);
	json_object_object_add(o, "moving_to",
			       e->moving_to ? json_object_new_string(e->moving_to) : NULL);
	json_object_object_add(o, "in_use", json_object_new_boolean(in->in_use));
	json_object_object_add(o, "users", in->in_use ? json_object_new_string(in->users) : NULL);
	return o;
}

static void entry_text(const struct ds_entry *e, const struct ds_image_info *in)
{
	const char *kind = e->state != DS_STATE_READY ? "incomplete" : ds_kind_name(e->kind);
	char vs[CLI_HUMAN_SIZE_LEN], al[CLI_HUMAN_SIZE_LEN];
	char chain[512] = "-";
	size_t n = 0;

	for (unsigned i = 0; i < in->chain_len && n < sizeof(chain); i++) {
		char *d = display_name(in->chain[i]);

		n += (size_t)snprintf(chain + n, sizeof(chain) - n, "%s%s", i ? " > " : "",
				      d ? d : in->chain[i]);
		free(d);
	}
	/* A migration (or one a crash interrupted) is taking it elsewhere;
	 * running 'vdisk migrate' again finishes or undoes it. */
	if (e->state == DS_STATE_READY && e->moving_to) {
		kind = "moving";
	}
	printf("%-24s %-10s %10s %10s %5u  %-28s %s%s\n", e->path, kind,
	       cli_human_size(in->size_bytes, vs, sizeof(vs)),
	       cli_human_size(in->allocated_bytes, al, sizeof(al)), in->n_snapshots, chain,
	       in->in_use ? "" : "-", in->users);
}

static int ls_entries(struct ds_datastore *ds, struct json_object *array)
{
	int failed = 0;

	for (unsigned i = 0; i < ds_entry_count(ds); i++) {
		struct ds_image_info in;
		struct errmsg err = {{0}};
		struct ds_entry e;
		int ret;

		ds_entry_get(ds, i, &e);
		ret = ds_image_info(ds, e.path, &in, &err);
		if (ret < 0) {
			cli_error_ret(&err, e.path, ret);
			failed = 1;
			continue;
		}
		if (array) {
			json_object_array_add(array, entry_json(&e, &in));
		} else {
			entry_text(&e, &in);
		}
		ds_image_info_fini(&in);
	}
	return failed;
}

/* vdisk ls of a Ceph pool: its RBD images, with the columns and JSON
 * fields of a directory's entries where they mean the same (an image is
 * kind "image"; "backing_chain" holds the parent snapshot of a clone,
 * "in_use" says whether clients watch it), and "protected_snapshots", the
 * snapshots clones may be made of. */
static int ls_rbd(const char *name, bool json)
{
	char virt[CLI_HUMAN_SIZE_LEN], alloc[CLI_HUMAN_SIZE_LEN];
	struct ds_rbd_image *imgs;
	struct errmsg err = {{0}};
	struct json_object *array = NULL;
	unsigned n;
	int ret;

	ret = ds_rbd_images(NULL, name, &imgs, &n, NULL, &err);
	if (ret < 0) {
		cli_error_ret(&err, name, ret);
		return CLI_EXIT_FAILURE;
	}
	if (json) {
		array = json_object_new_array();
	} else {
		printf("%-24s %-10s %10s %10s %5s  %-28s %s\n", "PATH", "KIND", "VIRTUAL",
		       "ALLOCATED", "SNAPS", "BACKING", "IN USE");
	}
	for (unsigned i = 0; i < n; i++) {
		const struct ds_rbd_image *im = &imgs[i];

		if (array) {
			struct json_object *o = json_object_new_object(), *sn = json_object_new_array(),
					   *pr = json_object_new_array(), *chain = json_object_new_array();

			json_object_object_add(o, "path", json_object_new_string(im->name));
			json_object_object_add(o, "kind", json_object_new_string("image"));
			json_object_object_add(o, "state", json_object_new_string("ready"));
			json_object_object_add(o, "virtual_size", json_object_new_uint64(im->size_bytes));
			json_object_object_add(o, "allocated", json_object_new_uint64(im->allocated_bytes));
			if (im->parent) {
				json_object_array_add(chain, json_object_new_string(im->parent));
			}
			json_object_object_add(o, "backing_chain", chain);
			for (unsigned j = 0; j < im->n_snapshots; j++) {
				json_object_array_add(sn, json_object_new_string(im->snapshots[j]));
				if (im->protected_snaps[j]) {
					json_object_array_add(pr, json_object_new_string(im->snapshots[j]));
				}
			}
			json_object_object_add(o, "snapshots", sn);
			json_object_object_add(o, "protected_snapshots", pr);
			json_object_object_add(o, "in_use", json_object_new_boolean(im->in_use));
			json_object_object_add(o, "users", json_object_new_string(im->users));
			json_object_array_add(array, o);
			continue;
		}
		printf("%-24s %-10s %10s %10s %5u  %-28s %s\n", im->name, "image",
		       cli_human_size(im->size_bytes, virt, sizeof(virt)),
		       cli_human_size(im->allocated_bytes, alloc, sizeof(alloc)), im->n_snapshots,
		       im->parent ? im->parent : "-", im->in_use ? im->users : "-");
	}
	if (array) {
		cli_json_print(stdout, array);
		json_object_put(array);
	}
	ds_rbd_images_free(imgs, n);
	return CLI_EXIT_OK;
}

int vdisk_cmd_ls(int argc, char **argv)
{
	static const int allowed[] = {OPT_JSON, 0};
	struct json_object *array = NULL;
	struct ds_datastore *ds;
	struct errmsg err = {{0}};
	struct ds_opts o = {0};
	int ret, failed;

	ret = parse_opts("ls", ls_help, ":h", allowed, argc, argv, &o);
	if (ret != 0 || check_nargs("ls", argc, argv, 1, 1, "NAME") < 0) {
		return status_of(ret);
	}
	{
		struct ds_rbd rbd;

		if (ds_get_rbd(NULL, argv[optind], &rbd, NULL) == 1) {
			return ls_rbd(argv[optind], o.json);
		}
	}
	ret = ds_open(NULL, argv[optind], &ds, &err);
	if (ret < 0) {
		cli_error_ret(&err, argv[optind], ret);
		return CLI_EXIT_FAILURE;
	}
	if (o.json) {
		array = json_object_new_array();
	} else {
		printf("%-24s %-10s %10s %10s %5s  %-28s %s\n", "PATH", "KIND", "VIRTUAL",
		       "ALLOCATED", "SNAPS", "BACKING", "IN USE");
	}
	failed = ls_entries(ds, array);
	if (array) {
		cli_json_print(stdout, array);
		json_object_put(array);
	}
	ds_close(ds);
	return failed ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/*
 * import, export: convert with a datastore on one side.
 */

static const char import_help[] =
    "Usage: vdisk import [-p] [-f FMT] [-c CLUSTER] [--iso] SRC NAME:PATH\n"
    "\n"
    "Copies the image SRC (raw, vdisk or qcow2, with its backing chain) into a\n"
    "new thin vdisk image in a datastore and registers it.  The overcommit limit\n"
    "is checked before a byte is copied; a copy that fails (a full file system)\n"
    "leaves neither a file nor an entry.\n"
    "\n"
    "  -f FMT                 format of SRC (default: by its magic, else raw)\n"
    "  -c, --cluster-size=N   cluster size of the new image (default 64K)\n"
    "      --iso              copy SRC byte for byte as a read-only ISO image\n"
    "  -p, --progress         show progress on stderr when it is a terminal\n"
    "  -h, --help             show this help\n";

static const char export_help[] =
    "Usage: vdisk export [-p] [-O raw|vdisk] NAME:PATH DEST\n"
    "\n"
    "Copies an image of a datastore, with everything its backing chain\n"
    "provides, to the file DEST outside it, thin: holes stay holes.  A vdisk\n"
    "DEST must not exist; a raw one is overwritten.\n"
    "\n"
    "  -O FMT           format of DEST, raw (default) or vdisk\n"
    "  -p, --progress   show progress on stderr when it is a terminal\n"
    "  -h, --help       show this help\n";

/* Runs "vdisk convert" with the arguments in 'av' (NULL-terminated). */
static int run_convert(char **av)
{
	int ac = 0;

	while (av[ac]) {
		ac++;
	}
	return vdisk_cmd_convert(ac, av);
}

int vdisk_cmd_import(int argc, char **argv)
{
	static const int allowed[] = {OPT_ISO, 0};
	struct ds_opts o = {0};
	struct ds_ref ref;
	bool raw_out;
	char *av[12];
	int ret, n = 0;

	ret = parse_opts("import", import_help, ":f:c:ph", allowed, argc, argv, &o);
	if (ret != 0 || check_nargs("import", argc, argv, 2, 2, "SRC and NAME:PATH") < 0) {
		return status_of(ret);
	}
	if (o.iso && o.cluster) {
		cli_usage_error("import", "an ISO image has no clusters (-c)");
		return CLI_EXIT_USAGE;
	}
	/* Only into a datastore: elsewhere this is plain convert. */
	ret = ds_parse_ref(NULL, argv[optind + 1], &ref, NULL);
	if (ret == 0) {
		ret = ds_locate(NULL, argv[optind + 1], &ref, NULL);
	}
	/* A Ceph pool takes raw guest data (an RBD image). */
	if (ret > 0 && ref.rbd && o.cluster) {
		cli_usage_error("import", "an RBD image has no clusters (-c)");
		ds_ref_fini(&ref);
		return CLI_EXIT_USAGE;
	}
	raw_out = o.iso || (ret > 0 && ref.rbd);
	ds_ref_fini(&ref);
	if (ret == 0) {
		cli_usage_error("import", "'%s' is not in a datastore (NAME:PATH); use convert",
				argv[optind + 1]);
		return CLI_EXIT_USAGE;
	}
	av[n++] = (char *)"convert";
	av[n++] = (char *)"-O";
	av[n++] = (char *)(raw_out ? "raw" : "vdisk");
	if (o.fmt) {
		av[n++] = (char *)"-f";
		av[n++] = (char *)o.fmt;
	}
	if (o.cluster) {
		av[n++] = (char *)"-c";
		av[n++] = (char *)o.cluster;
	}
	if (o.progress) {
		av[n++] = (char *)"-p";
	}
	av[n++] = argv[optind];
	av[n++] = argv[optind + 1];
	av[n] = NULL;
	return run_convert(av);
}

int vdisk_cmd_export(int argc, char **argv)
{
	static const int allowed[] = {0};
	struct ds_opts o = {0};
	char *av[10];
	int ret, n = 0;

	ret = parse_opts("export", export_help, ":O:ph", allowed, argc, argv, &o);
	if (ret != 0 || check_nargs("export", argc, argv, 2, 2, "NAME:PATH and DEST") < 0) {
		return status_of(ret);
	}
	if (o.fmt && strcmp(o.fmt, "raw") && strcmp(o.fmt, "vdisk")) {
		cli_usage_error("export", "unknown output format '%s' (raw or vdisk)", o.fmt);
		return CLI_EXIT_USAGE;
	}
	av[n++] = (char *)"convert";
	av[n++] = (char *)"-O";
	av[n++] = (char *)(o.fmt ? o.fmt : "raw");
	if (o.progress) {
		av[n++] = (char *)"-p";
	}
	av[n++] = argv[optind];
	av[n++] = argv[optind + 1];
	av[n] = NULL;
	return run_convert(av);
}

/*
 * rm, template
 */

static const char rm_help[] =
    "Usage: vdisk rm NAME:PATH\n"
    "\n"
    "Deletes an image, template or ISO image of a datastore and its entry.\n"
    "Refused while a process has it open, and for a template while images in\n"
    "any registered datastore use it as their backing file.\n"
    "\n"
    "  -h, --help      show this help\n";

static const char template_help[] =
    "Usage: vdisk template [--clear] NAME:PATH\n"
    "\n"
    "Makes an image of a datastore a template: a read-only base for linked\n"
    "clones (vdisk create -b NAME:PATH CLONE).  Writes to it through vdisk are\n"
    "refused, its file mode becomes 0444, and it cannot be deleted while clones\n"
    "use it.  --clear makes it an image again (refused while clones use it).\n"
    "\n"
    "  -h, --help      show this help\n";

/* Opens the datastore of the entry 'spec' names (a datastore spelling or
 * a host path inside one); with 'dsp' NULL, only names it. */
static int open_entry(const char *spec, struct ds_datastore **dsp, struct ds_ref *ref)
{
	struct errmsg err = {{0}};
	int ret;

	ret = ds_parse_ref(NULL, spec, ref, &err);
	if (ret == 0) {
		ret = ds_locate(NULL, spec, ref, &err);
		if (ret == 0) {
			cli_error("%s: not in a datastore", spec);
			return -ENOENT;
		}
	}
	if (ret > 0 && dsp) {
		ret = ds_open(NULL, ref->name, dsp, &err);
	}
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		ds_ref_fini(ref);
	}
	return ret;
}

int vdisk_cmd_rm(int argc, char **argv)
{
	static const int allowed[] = {0};
	struct ds_datastore *ds;
	struct errmsg err = {{0}};
	struct ds_opts o = {0};
	struct ds_ref ref;
	int ret;

	ret = parse_opts("rm", rm_help, ":h", allowed, argc, argv, &o);
	if (ret != 0 || check_nargs("rm", argc, argv, 1, 1, "NAME:PATH") < 0) {
		return status_of(ret);
	}
#ifdef VDISK_RBD
	{
		struct vrbd_spec vs;

		ret = vdisk_rbd_spec(argv[optind], &vs);
		if (ret != 0) {
			return ret < 0 ? CLI_EXIT_FAILURE : vdisk_rbd_rm(argv[optind], &vs);
		}
	}
#endif
	if (open_entry(argv[optind], &ds, &ref) < 0) {
		return CLI_EXIT_FAILURE;
	}
	ret = ds_entry_delete(ds, ref.rel, &err);
	if (ret < 0) {
		cli_error_ret(&err, argv[optind], ret);
	}
	ds_close(ds);
	ds_ref_fini(&ref);
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

int vdisk_cmd_template(int argc, char **argv)
{
	static const int allowed[] = {OPT_CLEAR, 0};
	struct ds_datastore *ds;
	struct errmsg err = {{0}};
	struct ds_opts o = {0};
	struct ds_ref ref;
	int ret;

	ret = parse_opts("template", template_help, ":h", allowed, argc, argv, &o);
	if (ret != 0 || check_nargs("template", argc, argv, 1, 1, "NAME:PATH") < 0) {
		return status_of(ret);
	}
#ifdef VDISK_RBD
	{
		struct vrbd_spec vs;

		ret = vdisk_rbd_spec(argv[optind], &vs);
		if (ret != 0) {
			return ret < 0 ? CLI_EXIT_FAILURE
				       : vdisk_rbd_template(argv[optind], &vs, o.clear);
		}
	}
#endif
	if (open_entry(argv[optind], &ds, &ref) < 0) {
		return CLI_EXIT_FAILURE;
	}
	ret = ds_entry_set_kind(ds, ref.rel, o.clear ? DS_KIND_IMAGE : DS_KIND_TEMPLATE, &err);
	if (ret < 0) {
		cli_error_ret(&err, argv[optind], ret);
	}
	ds_close(ds);
	ds_ref_fini(&ref);
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/*
 * create -b NAME:PATH
 */

int vdisk_backing_name(const char *image_spec, const char *backing_spec, char **namep)
{
	struct ds_ref img = {0}, back = {0};
	struct errmsg err = {{0}};
	int ret;

	ret = ds_parse_ref(NULL, backing_spec, &back, &err);
	if (ret < 0) {
		cli_error_ret(&err, backing_spec, ret);
		return ret;
	}
	if (ret == 0) {
		*namep = strdup(backing_spec);
		return *namep ? 0 : -ENOMEM;
	}
	ret = ds_parse_ref(NULL, image_spec, &img, NULL);
	if (ret == 0) {
		ret = ds_locate(NULL, image_spec, &img, NULL);
	}
	/* Within one datastore the link stays relative, so the datastore can
	 * be mounted elsewhere; across datastores it is the host path. */
	if (ret > 0 && !strcmp(img.name, back.name)) {
		*namep = ds_relative_path(img.rel, back.rel);
	} else {
		*namep = strdup(back.path);
	}
	ds_ref_fini(&img);
	ds_ref_fini(&back);
	return *namep ? 0 : -ENOMEM;
}

/*
 * migrate
 */

static const char migrate_help[] =
    "Usage: vdisk migrate [-p] [--keep-source] [--with-backing] [--bandwidth RATE]\n"
    "                     IMAGE --to NAME[:PATH]\n"
    "       vdisk migrate --status [--json] [IMAGE]\n"
    "       vdisk migrate --cancel IMAGE\n"
    "       vdisk migrate --bandwidth RATE IMAGE\n"
    "\n"
    "Moves IMAGE (NAME:PATH, [NAME] PATH, or a host path inside a datastore),\n"
    "with all its snapshots, to datastore NAME (at PATH, default its path in\n"
    "its own datastore) while no one has it open.  Copies only the clusters the\n"
    "file holds, so the copy is as thin as the source and snapshots still share\n"
    "their clusters; checks the copy (vdisk check, the disk read back against\n"
    "the source, every byte of every snapshot); then switches the inventory and\n"
    "deletes the source.  A backing file (a template) stays where it is and\n"
    "stays referenced.  A template that clones use is refused.\n"
    "\n"
    "An image vdiskd serves moves live: vdiskd copies it (snapshots first) while\n"
    "the guest runs, mirrors the guest's writes into what it has copied, then\n"
    "switches the guest to the copy with a pause of a few milliseconds, and\n"
    "deletes the source.  The command follows the job to its end; the job runs\n"
    "in vdiskd, and survives the command.  --status shows bytes done and total,\n"
    "rate, ETA and phase; --cancel stops it, deletes the partial copy and leaves\n"
    "the source in charge; --bandwidth limits the copy, and changes the limit\n"
    "of a running job.  A job vdiskd was killed in is taken up when it restarts.\n"
    "An image open by another process is refused.\n"
    "After a crash or a kill, run the same command again: it removes the\n"
    "partial copy and starts over, or, if the switch was made, only deletes\n"
    "the source.\n"
    "\n"
    "      --to=NAME[:PATH]  the destination datastore (and path in it)\n"
    "      --keep-source     keep the source as an independent image\n"
    "      --with-backing    copy the backing chain too (reusing copies an\n"
    "                        earlier migration made) and use the copies\n"
    "      --bandwidth=RATE  live: bytes per second for the copy (K, M, G; 0: none)\n"
    "      --status          live: the state of the job(s)\n"
    "      --json            with --status: JSON\n"
    "      --cancel          live: stop the job, keep the source\n"
    "  -p, --progress        show progress on stderr when it is a terminal\n"
    "  -h, --help            show this help\n"
    "\n"
    "For tests only: VDISK_MIGRATE_CRASH_AT=copy|verify|switch|remove makes the\n"
    "process exit at once (status 99, as if killed) mid-copy, once the copy is\n"
    "durable, just before the switch, or just after it.\n";

struct migrate_progress {
	bool show;
	const char *crash_at; /* VDISK_MIGRATE_CRASH_AT, test only */
	long last;
};

static void migrate_progress(void *arg, enum ds_migrate_step step, const char *what,
			     uint64_t done, uint64_t total)
{
	struct migrate_progress *p = arg;
	const char *name = ds_migrate_step_name(step);
	long now;

	/* Half way through a copy, or at the step: the instants a crash
	 * test wants (docs/datastores.md, "Migration"). */
	if (p->crash_at && !strcmp(p->crash_at, name) &&
	    (step != DS_MIGRATE_COPY || (done > 0 && done >= total / 2))) {
		_exit(99);
	}
	if (!p->show) {
		return;
	}
	if (step != DS_MIGRATE_COPY) {
		fprintf(stderr, "\r\033[K%s: %s\n", what, name);
		p->last = -1;
		return;
	}
	now = total ? (long)((double)done * 10000.0 / (double)total) : 10000;
	if (now != p->last) {
		p->last = now;
		fprintf(stderr, "\r%s: copy (%3.2f/100%%)", what, (double)now / 100.0);
	}
}

int vdisk_cmd_migrate(int argc, char **argv)
{
	static const int allowed[] = {OPT_TO,	  OPT_KEEP_SOURCE, OPT_WITH_BACKING, OPT_STATUS,
				      OPT_CANCEL, OPT_BANDWIDTH,   OPT_JSON,	     0};
	struct vdisk_served served;
	struct migrate_progress prog = {.last = -1};
	struct ds_migrate_result res;
	struct ds_migrate_opts mo;
	struct ds_ref src, dst = {0};
	struct errmsg err = {{0}};
	struct ds_opts o = {0};
	char *dname, *dpath, *full = NULL;
	int ret;

	ret = parse_opts("migrate", migrate_help, ":ph", allowed, argc, argv, &o);
	if (ret != 0) {
		return status_of(ret);
	}
	if (o.status) {
		if (check_nargs("migrate", argc, argv, 0, 1, "IMAGE") < 0) {
			return CLI_EXIT_USAGE;
		}
		return vdisk_migrate_status(NULL, optind < argc ? argv[optind] : NULL, o.json);
	}
	if (check_nargs("migrate", argc, argv, 1, 1, "IMAGE") < 0) {
		return CLI_EXIT_USAGE;
	}
	if (o.cancel || (o.bandwidth_set && !o.to)) {
		/* A running job's: it can only be vdiskd's. */
		ret = vdisk_served_lookup(NULL, argv[optind], false, &served);
		if (ret == 0) {
			cli_error("%s is not served by vdiskd: no live migration to %s",
				  argv[optind], o.cancel ? "cancel" : "change");
		}
		if (ret <= 0) {
			return CLI_EXIT_FAILURE;
		}
		ret = vdisk_migrate_control(&served, o.cancel, o.bandwidth);
		vdisk_served_fini(&served);
		return ret;
	}
	if (!o.to) {
		cli_usage_error("migrate", "missing --to NAME[:PATH]");
		return CLI_EXIT_USAGE;
	}
	/* Not resolved for writing: an old copy a switched migration left is
	 * what this command finishes, and templates are the library's to
	 * refuse. */
	ret = vdisk_served_lookup(NULL, argv[optind], false, &served);
	if (ret < 0) {
		return CLI_EXIT_FAILURE;
	}
	if (ret > 0) {
		if (o.with_backing) {
			cli_error("%s is served: --with-backing is for cold migration (a live one "
				  "keeps the backing file where it is)", argv[optind]);
			ret = CLI_EXIT_FAILURE;
		} else {
			ret = vdisk_migrate_served(&served, o.to, o.keep_source, o.bandwidth,
						   o.progress);
		}
		vdisk_served_fini(&served);
		return ret;
	}
	if (open_entry(argv[optind], NULL, &src) < 0) {
		return CLI_EXIT_FAILURE;
	}
	if (ds_split_target(o.to, &dname, &dpath) < 0) {
		ds_ref_fini(&src);
		return CLI_EXIT_FAILURE;
	}
	/* The destination path goes through the same checks as any name. */
	if (asprintf(&full, "%s:%s", dname, dpath ? dpath : src.rel) < 0) {
		full = NULL;
	}
	ret = full ? ds_parse_ref(NULL, full, &dst, &err) : -ENOMEM;
	if (ret == 0) {
		cli_error("%s: no datastore named %s", o.to, dname);
		ret = -ENOENT;
	} else if (ret < 0) {
		cli_error_ret(&err, o.to, ret);
	}
	if (ret > 0) {
		ds_migrate_opts_init(&mo);
		mo.keep_source = o.keep_source;
		mo.with_backing = o.with_backing;
		prog.show = o.progress && isatty(STDERR_FILENO);
		prog.crash_at = getenv("VDISK_MIGRATE_CRASH_AT");
		mo.progress = migrate_progress;
		mo.progress_arg = &prog;
		ret = ds_migrate(NULL, src.name, src.rel, dst.name, dst.rel, &mo, &res, &err);
		if (ret < 0) {
			cli_error_ret(&err, argv[optind], ret);
		} else {
			if (res.recovered & DS_MIGRATE_CLEANED) {
				printf("removed the partial copy an interrupted migration left\n");
			}
			if (res.recovered & DS_MIGRATE_FINISHED) {
				printf("an interrupted migration had already switched to %s; finished "
				       "it\n", res.dest);
			} else {
				printf("%s:%s -> %s\n", src.name, src.rel, res.dest);
			}
		}
		ds_migrate_result_fini(&res);
	}
	free(full);
	free(dname);
	free(dpath);
	ds_ref_fini(&src);
	ds_ref_fini(&dst);
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
