/* SPDX-License-Identifier: MIT */
/* vdisk-snap.c: the vdisk commands that change an image's history or its
 * place in a backing chain: snapshot (create, list, revert, delete, diff),
 * commit, rebase, flatten and resize; also the snapshot table and backing
 * size lookup that info and create in vdisk-cmds.c share.  Same conventions
 * as there: thin layers over vdisk.h, qemu-img-like text or JSON, exit 1
 * with the library's sentence on failure, 2 on usage errors. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cliutil.h"
#include "vdisk-cmds.h"
#ifdef VDISK_RBD
#include "vrbd.h"
#endif
#include "vdisk-info.h"
#include "vdisk.h"

/* Long options without a one-letter form take values past any character. */
enum {
	OPT_JSON = 256,
	OPT_OUTPUT,
	OPT_SHRINK,
	OPT_CTL,
};

typedef int (*snapshot_change_fn)(struct vd_image *img, const char *name, struct errmsg *err);

/* Everything one of these commands may be given; each takes a subset. */
struct cmd_opts {
	bool json;
	bool force_share;
	bool quiet;
	bool unsafe;		   /* rebase -u */
	bool shrink;		   /* resize --shrink */
	const char *backing;	   /* rebase -b: NULL not given, "" none */
	const char *name;	   /* snapshot NAME or FROM */
	const char *to;		   /* snapshot diff TO; NULL: the current disk */
	int size_sign;		   /* resize: +1 grow by, -1 shrink by, 0 absolute */
	uint64_t size_bytes;	   /* resize */
	snapshot_change_fn change; /* snapshot create, revert or delete */
	const char *ctl;	   /* vdiskd's control socket; NULL: the default */
};

typedef int (*image_op)(struct vd_image *img, const char *path, const struct cmd_opts *co,
			struct errmsg *err);

/* How one command's command line looks. */
struct cmd_spec {
	const char *name; /* as in messages: "rebase", "snapshot diff" */
	const char *help;
	const char *shortopts; /* for getopt_long, with a leading ':' */
	const struct option *longopts;
	int min_args;
	int max_args;
	const char *arg_names[2]; /* the required operands, for "missing ..." */
};


/* Opens 'path', runs 'op' on it and closes it.  A failed close fails the
 * command: after a change, it means the change may not be durable. */
static int run_op(const char *path, unsigned flags, image_op op, const struct cmd_opts *co)
{
	struct vd_image *img;
	struct errmsg err;
	int ret, ret2;

	if (vdisk_open_image(path, flags, &img) < 0) {
		return CLI_EXIT_FAILURE;
	}
	errmsg_clear(&err);
	ret = op(img, path, co, &err);
	if (ret < 0) {
		cli_error_ret(&err, path, ret);
	}
	fflush(stdout);
	ret2 = vd_close(img);
	if (ret2 < 0 && ret >= 0) {
		cli_error("%s: cannot close the image: %s", path, strerror(-ret2));
		ret = ret2;
	}
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

static int parse_opt(const struct cmd_spec *spec, int c, char **argv, struct cmd_opts *co)
{
	switch (c) {
	case OPT_JSON:
		co->json = true;
		return 0;
	case OPT_OUTPUT:
		/* qemu-img's spelling: --output=json|human */
		if (strcmp(optarg, "json") && strcmp(optarg, "human")) {
			cli_usage_error(spec->name, "invalid output format '%s' (human or json)",
					optarg);
			return -EINVAL;
		}
		co->json = !strcmp(optarg, "json");
		return 0;
	case 'U':
		co->force_share = true;
		return 0;
	case 'q':
		co->quiet = true;
		return 0;
	case 'u':
		co->unsafe = true;
		return 0;
	case OPT_SHRINK:
		co->shrink = true;
		return 0;
	case OPT_CTL:
		co->ctl = optarg;
		return 0;
	case 'b':
		co->backing = optarg;
		return 0;
	case 'f':
	case 'F':
		/* Accepted for qemu-img habits: only vdisk images chain. */
		if (strcmp(optarg, "vdisk")) {
			cli_usage_error(spec->name, "unsupported format '%s' (only vdisk)", optarg);
			return -EINVAL;
		}
		return 0;
	case 'h':
		fputs(spec->help, stdout);
		return 1;
	default:
		cli_getopt_error(spec->name, c, argv);
		return -EINVAL;
	}
}

/* Parses options and checks the operand count.  Returns 0, 1 when --help
 * was printed, or a negative errno after a usage error. */
static int parse_cmd(const struct cmd_spec *spec, int argc, char **argv, struct cmd_opts *co)
{
	int c, n;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, spec->shortopts, spec->longopts, NULL)) != -1) {
		int ret = parse_opt(spec, c, argv, co);

		if (ret != 0) {
			return ret;
		}
	}
	n = argc - optind;
	if (n < spec->min_args) {
		cli_usage_error(spec->name, "missing %s%s%s", spec->arg_names[n],
				n + 1 < spec->min_args ? " and " : "",
				n + 1 < spec->min_args ? spec->arg_names[n + 1] : "");
		return -EINVAL;
	}
	if (n > spec->max_args) {
		cli_usage_error(spec->name, "unexpected argument '%s'",
				argv[optind + spec->max_args]);
		return -EINVAL;
	}
	return 0;
}

static int parse_status(int ret)
{
	return ret > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/*
 * The snapshot table, for 'snapshot list' and 'info'.
 */

/* Prints qemu-img's "Snapshot list:" table of the array 'snapshots' (as
 * vdisk_snapshots_json() builds it), nothing when it is empty. */
void vdisk_snapshots_print(struct json_object *snapshots)
{
	size_t n = json_object_array_length(snapshots);

	/* Like qemu-img: no heading for an image without snapshots. */
	if (n == 0) {
		return;
	}
	printf("Snapshot list:\n");
	printf("%-9s %-20s %-19s %10s %10s %11s\n", "ID", "NAME", "DATE", "VM SIZE", "UNIQUE",
	       "REFERENCED");
	for (size_t i = 0; i < n; i++) {
		struct json_object *si = json_object_array_get_idx(snapshots, i);
		char date[32], vm[CLI_HUMAN_SIZE_LEN], uniq[CLI_HUMAN_SIZE_LEN],
		    refd[CLI_HUMAN_SIZE_LEN];

		vdisk_format_date(cli_json_u64(si, "date_sec"), date, sizeof(date));
		printf("%-9" PRIu64 " %-20s %-19s %10s %10s %11s\n", cli_json_u64(si, "id"),
		       cli_json_str(si, "name", "-"), date,
		       cli_human_size(cli_json_u64(si, "virtual_size"), vm, sizeof(vm)),
		       cli_human_size(cli_json_u64(si, "unique_bytes"), uniq, sizeof(uniq)),
		       cli_human_size(cli_json_u64(si, "referenced_bytes"), refd,
				      sizeof(refd)));
	}
}

static int snapshots_show(struct json_object *snapshots, bool json)
{
	if (json) {
		return cli_json_print(stdout, snapshots);
	}
	vdisk_snapshots_print(snapshots);
	return 0;
}

/*
 * snapshot
 */

static const char snapshot_help[] =
    "Usage: vdisk snapshot create FILE NAME\n"
    "       vdisk snapshot list [--json] [-U] FILE\n"
    "       vdisk snapshot revert FILE NAME\n"
    "       vdisk snapshot delete FILE NAME\n"
    "       vdisk snapshot diff [--json] [-U] FILE FROM [TO]\n"
    "\n"
    "Manages the internal snapshots of the vdisk image FILE.  Taking one costs\n"
    "about one table whatever the amount of data: the disk and its snapshots\n"
    "share clusters until the disk writes over them.\n"
    "\n"
    "  create   take snapshot NAME (1 to 255 bytes) of the disk as it is now\n"
    "  list     show each snapshot's ID, NAME, DATE (local time), VM SIZE (the\n"
    "           virtual size when taken), UNIQUE (bytes only it holds: what\n"
    "           deleting it frees) and REFERENCED (guest data it maps)\n"
    "  revert   make the disk what it was when NAME was taken; NAME stays\n"
    "  delete   delete NAME, freeing the clusters nothing else holds\n"
    "  diff     list the guest ranges (whole clusters, or subclusters) that\n"
    "           differ between snapshot FROM and snapshot TO, or the current\n"
    "           disk when TO is omitted; found from the metadata, without\n"
    "           reading data\n"
    "\n"
    "When vdiskd serves FILE, create and delete go through the daemon (the\n"
    "snapshot is one instant of the guest's writes) and list asks it; revert\n"
    "and diff refuse.\n"
    "\n"
    "      --json            list, diff: print JSON (also --output=json)\n"
    "  -U, --force-share     list, diff: read FILE even while a writer has it open\n"
    "                        (what is read may be stale); vdiskd is not asked\n"
    "      --ctl PATH        vdiskd's control socket (default $VDISKD_CTL, else\n"
    "                        /run/vdiskd/vdiskd.sock)\n"
    "  -q, --quiet           nothing is printed (create and delete on a served\n"
    "                        image otherwise say the guest's pause)\n"
    "  -h, --help            show this help\n";

static const struct option snapshot_longopts[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"force-share", no_argument, NULL, 'U'},
    {"quiet", no_argument, NULL, 'q'},
    {"ctl", required_argument, NULL, OPT_CTL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct snapshot_sub {
	struct cmd_spec spec;
	snapshot_change_fn change; /* the library call; NULL: a reporting subcommand */
	image_op run;
};

static int snapshot_change(struct vd_image *img, const char *path, const struct cmd_opts *co,
			   struct errmsg *err);
static int snapshot_list(struct vd_image *img, const char *path, const struct cmd_opts *co,
			 struct errmsg *err);
static int snapshot_diff(struct vd_image *img, const char *path, const struct cmd_opts *co,
			 struct errmsg *err);

#define SNAPSHOT_SPEC(sub, min, max, arg2)                                                         \
	{                                                                                          \
		.name = "snapshot " sub, .help = snapshot_help, .shortopts = ":Uqh",               \
		.longopts = snapshot_longopts, .min_args = min, .max_args = max,                   \
		.arg_names = {"FILE", arg2},                                                       \
	}

static const struct snapshot_sub snapshot_subs[] = {
    {SNAPSHOT_SPEC("create", 2, 2, "NAME"), vd_snapshot_create, snapshot_change},
    {SNAPSHOT_SPEC("revert", 2, 2, "NAME"), vd_snapshot_revert, snapshot_change},
    {SNAPSHOT_SPEC("delete", 2, 2, "NAME"), vd_snapshot_delete, snapshot_change},
    {SNAPSHOT_SPEC("list", 1, 1, NULL), NULL, snapshot_list},
    {SNAPSHOT_SPEC("diff", 2, 3, "FROM"), NULL, snapshot_diff},
};

#define SNAPSHOT_NSUBS (sizeof(snapshot_subs) / sizeof(snapshot_subs[0]))

static int snapshot_change(struct vd_image *img, const char *path, const struct cmd_opts *co,
			   struct errmsg *err)
{
	(void)path;
	return co->change(img, co->name, err);
}

static int snapshot_list(struct vd_image *img, const char *path, const struct cmd_opts *co,
			 struct errmsg *err)
{
	struct json_object *arr;
	int ret = vdisk_snapshots_json(img, path, &arr, err);

	if (ret == 0) {
		ret = snapshots_show(arr, co->json);
		json_object_put(arr);
	}
	return ret;
}

struct diff_printer {
	bool json;
	unsigned long printed;
};

/* Streams each run as it is found: a diff of a large disk can be long. */
static int diff_print(void *arg, uint64_t offset, uint64_t length)
{
	struct diff_printer *dp = arg;
	struct json_object *o;

	if (!dp->json) {
		if (dp->printed++ == 0) {
			printf("%-16s%s\n", "Offset", "Length");
		}
		printf("%#-16" PRIx64 "%#" PRIx64 "\n", offset, length);
		return 0;
	}
	o = json_object_new_object();
	json_object_object_add(o, "offset", json_object_new_uint64(offset));
	json_object_object_add(o, "length", json_object_new_uint64(length));
	printf("%s%s", dp->printed++ ? ",\n" : "[",
	       json_object_to_json_string_ext(o, JSON_C_TO_STRING_SPACED));
	json_object_put(o);
	return 0;
}

static int snapshot_diff(struct vd_image *img, const char *path, const struct cmd_opts *co,
			 struct errmsg *err)
{
	struct diff_printer dp = {.json = co->json};
	int ret = vd_snapshot_diff(img, co->name, co->to, diff_print, &dp, err);

	(void)path;
	if (dp.json && (ret == 0 || dp.printed)) {
		printf("%s\n", dp.printed ? "]" : "[]");
	}
	return ret;
}

static const struct snapshot_sub *snapshot_find(const char *name)
{
	for (size_t i = 0; i < SNAPSHOT_NSUBS; i++) {
		if (!strcmp(name, snapshot_subs[i].spec.name + strlen("snapshot "))) {
			return &snapshot_subs[i];
		}
	}
	return NULL;
}

/* Finds the subcommand in argv[1]; 1 after --help, <0 after a usage error. */
static int snapshot_pick(int argc, char **argv, const struct snapshot_sub **subp)
{
	if (argc < 2) {
		cli_usage_error("snapshot", "missing a subcommand (create, list, revert, delete "
					    "or diff)");
		return -EINVAL;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(snapshot_help, stdout);
		return 1;
	}
	*subp = snapshot_find(argv[1]);
	if (*subp) {
		return 0;
	}
	if (argv[1][0] == '-') {
		cli_usage_error("snapshot", "unknown option '%s' (the subcommand comes first)",
				argv[1]);
	} else {
		cli_usage_error("snapshot", "unknown subcommand '%s'", argv[1]);
	}
	return -EINVAL;
}

/* A snapshot subcommand on an image vdiskd serves.  Create and delete are
 * the daemon's (it drains the guest's writes first, so the snapshot is
 * one instant); list asks it for the table.  Revert would change the disk
 * under a running guest and diff reads the file, so both refuse and say
 * what to do. */
static int snapshot_served(const struct snapshot_sub *sub, const struct vdisk_served *s,
			   const char *spec, const struct cmd_opts *co)
{
	struct json_object *params, *res, *snapshots;
	int ret = 0;

	if (sub->change == vd_snapshot_create || sub->change == vd_snapshot_delete) {
		params = json_object_new_object();
		json_object_object_add(params, "name", json_object_new_string(co->name));
		res = vdisk_served_call(s, sub->change == vd_snapshot_create ? "snapshot-create"
									    : "snapshot-delete",
					params);
		if (res && !co->quiet) {
			/* The daemon held the guest's I/O for it: say how long. */
			printf("Snapshot '%s' %s by vdiskd (pid %ld); the guest's I/O paused %llu us.\n",
			       co->name, sub->change == vd_snapshot_create ? "created" : "deleted",
			       s->pid, (unsigned long long)cli_json_u64(res, "pause-us"));
		}
		json_object_put(res);
		return res ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
	}
	if (sub->run == snapshot_list) {
		res = vdisk_served_call(s, "disk-info", NULL);
		if (!res) {
			return CLI_EXIT_FAILURE;
		}
		if (json_object_object_get_ex(res, "snapshots", &snapshots)) {
			ret = snapshots_show(snapshots, co->json);
		}
		json_object_put(res);
		return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
	}
	cli_error("%s is served by vdiskd (pid %ld, control socket %s): '%s' %s", spec, s->pid,
		  s->ctl, sub->spec.name,
		  sub->change ? "needs the image offline ('vdisk unserve' it first)"
			      : "reads the file: -U reads it anyway (what is read may be stale)");
	return CLI_EXIT_FAILURE;
}

int vdisk_cmd_snapshot(int argc, char **argv)
{
	const struct snapshot_sub *sub = NULL;
	struct vdisk_served served;
	struct cmd_opts co = {0};
	int ret = snapshot_pick(argc, argv, &sub);

	if (ret != 0) {
		return parse_status(ret);
	}
	argc--;
	argv++;
	ret = parse_cmd(&sub->spec, argc, argv, &co);
	if (ret != 0) {
		return parse_status(ret);
	}
	/* As qemu-img: sharing is only safe for reading. */
	if (sub->change && (co.force_share || co.json)) {
		cli_usage_error(sub->spec.name, "%s only applies to list and diff",
				co.force_share ? "-U (--force-share)" : "--json");
		return CLI_EXIT_USAGE;
	}
	co.name = argv[optind + 1];
	co.to = optind + 2 < argc ? argv[optind + 2] : NULL;
	co.change = sub->change;
	/* -U asks for the file itself, whoever has it. */
	ret = co.force_share ? 0 : vdisk_served_lookup(co.ctl, argv[optind], sub->change, &served);
	if (ret < 0) {
		return CLI_EXIT_FAILURE;
	}
	if (ret > 0) {
		ret = snapshot_served(sub, &served, argv[optind], &co);
		vdisk_served_fini(&served);
		return ret;
	}
#ifdef VDISK_RBD
	{
		struct vrbd_spec vs;

		ret = vdisk_rbd_spec(argv[optind], &vs);
		if (ret != 0) {
			return ret < 0 ? CLI_EXIT_FAILURE
				       : vdisk_rbd_snapshot(sub->spec.name + strlen("snapshot "),
							    argv[optind], &vs, co.name, co.json);
		}
	}
#endif
	if (sub->change) {
		return run_op(argv[optind], VD_OPEN_RDWR, sub->run, &co);
	}
	return run_op(argv[optind], co.force_share ? VD_OPEN_FORCE_SHARE : 0, sub->run, &co);
}

/*
 * commit, rebase, flatten
 */

static const char commit_help[] =
    "Usage: vdisk commit [-q] FILE\n"
    "\n"
    "Writes every cluster the linked clone FILE holds into its backing file, then\n"
    "empties FILE so that it reads through again; the guest sees the same disk.\n"
    "The backing file must not be in use by anything else (other clones\n"
    "included): it is opened read-write for the copy.\n"
    "\n"
    "  -f FMT                accepted for qemu-img habits; must be vdisk\n"
    "  -q, --quiet           do not print 'Image committed.'\n"
    "  -h, --help            show this help\n";

static const char rebase_help[] =
    "Usage: vdisk rebase [-u] [-q] [-F vdisk] -b BACKING FILE\n"
    "\n"
    "Makes BACKING the backing file of the vdisk image FILE; -b \"\" leaves it\n"
    "with none.  A relative BACKING is taken from FILE's directory.  First\n"
    "copies into FILE every cluster whose contents would change, so the guest\n"
    "sees the same disk afterwards.\n"
    "\n"
    "  -b, --backing=BACKING new backing file (\"\": none); required\n"
    "  -u, --unsafe          only change the stored name, copy nothing: for a\n"
    "                        BACKING known to hold the same data (a copy); the\n"
    "                        old backing file need not exist (it moved)\n"
    "  -F FMT, -f FMT        accepted for qemu-img habits; must be vdisk\n"
    "  -q, --quiet           accepted for qemu-img habits; nothing is printed\n"
    "  -h, --help            show this help\n";

static const char flatten_help[] =
    "Usage: vdisk flatten [-q] FILE\n"
    "\n"
    "Copies into the linked clone FILE everything its backing chain provides\n"
    "and drops the backing file, so FILE stands alone (rebase -b \"\").\n"
    "\n"
    "  -f FMT                accepted for qemu-img habits; must be vdisk\n"
    "  -q, --quiet           accepted; nothing is printed\n"
    "  -h, --help            show this help\n";

static const struct option quiet_longopts[] = {
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option rebase_longopts[] = {
    {"backing", required_argument, NULL, 'b'},
    {"unsafe", no_argument, NULL, 'u'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int op_commit(struct vd_image *img, const char *path, const struct cmd_opts *co,
		     struct errmsg *err)
{
	(void)path;
	(void)co;
	return vd_commit(img, err);
}

static int op_rebase(struct vd_image *img, const char *path, const struct cmd_opts *co,
		     struct errmsg *err)
{
	(void)path;
	return vd_rebase(img, co->backing, co->unsafe, err);
}

static int op_flatten(struct vd_image *img, const char *path, const struct cmd_opts *co,
		      struct errmsg *err)
{
	(void)path;
	(void)co;
	return vd_flatten(img, err);
}

/* Copies go through the page cache: the library flushes before it
 * switches the chain, and O_DIRECT would make each cluster a round trip. */
#define COPY_FLAGS (VD_OPEN_RDWR | VD_OPEN_BUFFERED)

int vdisk_cmd_commit(int argc, char **argv)
{
	static const struct cmd_spec spec = {
	    .name = "commit", .help = commit_help, .shortopts = ":f:qh",
	    .longopts = quiet_longopts, .min_args = 1, .max_args = 1, .arg_names = {"FILE"},
	};
	struct cmd_opts co = {0};
	int ret = parse_cmd(&spec, argc, argv, &co);

	if (ret != 0) {
		return parse_status(ret);
	}
	ret = run_op(argv[optind], COPY_FLAGS, op_commit, &co);
	if (ret == CLI_EXIT_OK && !co.quiet) {
		printf("Image committed.\n");
	}
	return ret;
}

int vdisk_cmd_rebase(int argc, char **argv)
{
	static const struct cmd_spec spec = {
	    .name = "rebase", .help = rebase_help, .shortopts = ":b:uF:f:qh",
	    .longopts = rebase_longopts, .min_args = 1, .max_args = 1, .arg_names = {"FILE"},
	};
	struct cmd_opts co = {0};
	char *backing = NULL;
	int ret = parse_cmd(&spec, argc, argv, &co);

	if (ret != 0) {
		return parse_status(ret);
	}
	if (!co.backing) {
		cli_usage_error("rebase", "missing -b BACKING (-b \"\" for none)");
		return CLI_EXIT_USAGE;
	}
	/* A datastore's name for BACKING is stored as a path (vdisk-ds.c). */
	if (co.backing[0] && vdisk_backing_name(argv[optind], co.backing, &backing) < 0) {
		return CLI_EXIT_FAILURE;
	}
	if (backing) {
		co.backing = backing;
	}
	/* -u repairs a clone whose backing file moved: do not open the old one. */
	ret = run_op(argv[optind], COPY_FLAGS | (co.unsafe ? VD_OPEN_NO_BACKING : 0), op_rebase,
		     &co);
	free(backing);
	return ret;
}

int vdisk_cmd_flatten(int argc, char **argv)
{
	static const struct cmd_spec spec = {
	    .name = "flatten", .help = flatten_help, .shortopts = ":f:qh",
	    .longopts = quiet_longopts, .min_args = 1, .max_args = 1, .arg_names = {"FILE"},
	};
	struct cmd_opts co = {0};
	int ret = parse_cmd(&spec, argc, argv, &co);

	if (ret != 0) {
		return parse_status(ret);
	}
#ifdef VDISK_RBD
	{
		struct vrbd_spec vs;

		ret = vdisk_rbd_spec(argv[optind], &vs);
		if (ret != 0) {
			return ret < 0 ? CLI_EXIT_FAILURE : vdisk_rbd_flatten(argv[optind], &vs);
		}
	}
#endif
	return run_op(argv[optind], COPY_FLAGS, op_flatten, &co);
}

/*
 * resize
 */

static const char resize_help[] =
    "Usage: vdisk resize [-q] [--shrink] [--ctl PATH] FILE [+|-]SIZE\n"
    "\n"
    "Changes the virtual size of the vdisk image FILE to SIZE, or grows it by\n"
    "SIZE (+SIZE) or shrinks it by SIZE (-SIZE), as qemu-img resize does.\n"
    "Sizes take a suffix K, M, G or T and must leave a multiple of 512.  Growing\n"
    "adds space that reads as zeros (or from the backing file, if it is larger).\n"
    "When vdiskd serves FILE, the daemon resizes it and tells the guest; a served\n"
    "disk only grows.\n"
    "\n"
    "      --shrink          allow a smaller size; refused while clusters beyond\n"
    "                        the new end are allocated: discard them first\n"
    "  -f FMT                accepted for qemu-img habits; must be vdisk\n"
    "  -q, --quiet           do not print 'Image resized.'\n"
    "      --ctl PATH        vdiskd's control socket (default $VDISKD_CTL, else\n"
    "                        /run/vdiskd/vdiskd.sock)\n"
    "  -h, --help            show this help\n";

static const struct option resize_longopts[] = {
    {"shrink", no_argument, NULL, OPT_SHRINK},
    {"quiet", no_argument, NULL, 'q'},
    {"ctl", required_argument, NULL, OPT_CTL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_resize_size(const char *str, struct cmd_opts *co)
{
	int ret;

	co->size_sign = *str == '+' ? 1 : *str == '-' ? -1 : 0;
	ret = cli_parse_size(str + (co->size_sign != 0), &co->size_bytes);
	if (ret == -ERANGE) {
		cli_usage_error("resize", "size '%s' is too large", str);
	} else if (ret < 0) {
		cli_usage_error("resize", "invalid size '%s'", str);
	}
	return ret;
}

/* The size resize asks for, from the current size 'cur'. */
static int resize_target(const char *path, uint64_t cur, const struct cmd_opts *co,
			 uint64_t *sizep, struct errmsg *err)
{
	uint64_t size = co->size_bytes;

	if (co->size_sign > 0 && size > UINT64_MAX - cur) {
		errmsg_set(err, "%s: the new size is too large", path);
		return -EINVAL;
	}
	if (co->size_sign < 0 && size >= cur) {
		errmsg_set(err,
			   "%s: the new size must be positive (the image has %" PRIu64 " bytes)",
			   path, cur);
		return -EINVAL;
	}
	if (co->size_sign) {
		size = co->size_sign > 0 ? cur + size : cur - size;
	}
	if (size == 0) {
		errmsg_set(err, "%s: the new size must be positive", path);
		return -EINVAL;
	}
	*sizep = size;
	return 0;
}

static int op_resize(struct vd_image *img, const char *path, const struct cmd_opts *co,
		     struct errmsg *err)
{
	uint64_t size;
	int ret = resize_target(path, vd_size_bytes(img), co, &size, err);

	return ret < 0 ? ret : vd_resize(img, size, co->shrink, err);
}

/* resize on an image vdiskd serves: the daemon drains the guest's
 * requests, resizes, and tells the guest of its new capacity.  It only
 * grows a served disk (a guest does not expect its disk to shrink under
 * it) and says so. */
static int resize_served(const struct vdisk_served *s, const char *spec,
			 const struct cmd_opts *co)
{
	struct json_object *params, *res;
	struct errmsg err;
	uint64_t size;
	int ret;

	errmsg_clear(&err);
	ret = resize_target(spec, cli_json_u64(s->disk, "size"), co, &size, &err);
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return CLI_EXIT_FAILURE;
	}
	params = json_object_new_object();
	json_object_object_add(params, "size", json_object_new_uint64(size));
	res = vdisk_served_call(s, "disk-resize", params);
	json_object_put(res);
	return res ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

/* resize of an image nobody serves: a Ceph RBD image through librbd, any
 * other through libvdisk. */
static int resize_unserved(const char *spec, const struct cmd_opts *co)
{
#ifdef VDISK_RBD
	struct errmsg err = {{0}};
	struct vrbd_spec vs;
	uint64_t cur, size;
	int ret = vdisk_rbd_spec(spec, &vs);

	if (ret < 0 || (ret > 0 && vdisk_rbd_size(spec, &vs, &cur) < 0)) {
		return CLI_EXIT_FAILURE;
	}
	if (ret > 0) {
		if (resize_target(spec, cur, co, &size, &err) < 0) {
			cli_error_ret(&err, spec, -EINVAL);
			return CLI_EXIT_FAILURE;
		}
		return vdisk_rbd_resize(spec, &vs, size, co->shrink);
	}
#endif
	return run_op(spec, VD_OPEN_RDWR, op_resize, co);
}

int vdisk_cmd_resize(int argc, char **argv)
{
	struct cmd_spec spec = {
	    .name = "resize", .help = resize_help, .shortopts = ":f:qh",
	    .longopts = resize_longopts, .min_args = 2, .max_args = 2,
	    .arg_names = {"FILE", "SIZE"},
	};
	struct vdisk_served served;
	struct cmd_opts co = {0};
	const char *size_arg = NULL;
	int ret;

	/* "-1G" would read as an option: take it out first, as qemu-img does. */
	if (argc > 2 && argv[argc - 1][0] == '-' && isdigit((unsigned char)argv[argc - 1][1])) {
		size_arg = argv[--argc];
		spec.min_args = spec.max_args = 1;
	}
	ret = parse_cmd(&spec, argc, argv, &co);
	if (ret != 0) {
		return parse_status(ret);
	}
	if (parse_resize_size(size_arg ? size_arg : argv[optind + 1], &co) < 0) {
		return CLI_EXIT_USAGE;
	}
	ret = vdisk_served_lookup(co.ctl, argv[optind], true, &served);
	if (ret < 0) {
		return CLI_EXIT_FAILURE;
	}
	if (ret > 0) {
		ret = resize_served(&served, argv[optind], &co);
		vdisk_served_fini(&served);
	} else {
		ret = resize_unserved(argv[optind], &co);
	}
	if (ret == CLI_EXIT_OK && !co.quiet) {
		printf("Image resized.\n");
	}
	return ret;
}

/*
 * For create -b without a size.
 */

int vdisk_backing_size(const char *path, const char *backing, uint64_t *sizep)
{
	struct vd_open_opts oo;
	struct vd_image *b;
	char *copy = strdup(path), *full = NULL;
	int ret = -ENOMEM;

	/* The library takes a relative name from the new image's directory. */
	if (copy && backing[0] == '/') {
		full = strdup(backing);
	} else if (copy && asprintf(&full, "%s/%s", dirname(copy), backing) < 0) {
		full = NULL;
	}
	if (full) {
		vd_open_opts_init(&oo);
		oo.flags = VD_OPEN_FORCE_SHARE;
		ret = vd_open(full, &oo, &b, NULL);
	}
	if (full && ret == 0) {
		*sizep = vd_size_bytes(b);
		vd_close(b);
	}
	free(full);
	free(copy);
	return ret;
}
