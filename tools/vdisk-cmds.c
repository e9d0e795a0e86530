/* SPDX-License-Identifier: MIT */
/* vdisk-cmds.c: the subcommands of the vdisk tool (create, info, map, check,
 * convert, io, bench).  Each is a thin layer over libvdisk's public API
 * (vdisk.h): it parses its command line, prints qemu-img-like text or JSON,
 * and turns failures into exit statuses (1 failure, 2 usage; check has its
 * own).  Helpers other tools share live in cliutil.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cliutil.h"
#include "openfile.h"
#include "vdisk-cmds.h"
#ifdef VDISK_RBD
#include "vrbd.h"
#endif
#include "vdisk-info.h"
#include "vdisk.h"

/* Long options without a one-letter form take values past any character. */
enum {
	OPT_PREALLOC = 256,
	OPT_SUBCLUSTERS,
	OPT_JSON,
	OPT_REPAIR,
	OPT_PATTERN,
	OPT_FLUSH_INTERVAL,
	OPT_CTL,
};

/* Bulk copies and long reads or writes move this much per call: large
 * enough that per-call overhead vanishes, small enough to stay in cache. */
#define CHUNK_BYTES (2u << 20)

/* Buffers are page aligned so O_DIRECT paths below the library never need
 * to bounce them. */
#define BUF_ALIGN 4096u

/* qemu-io's default fill byte, so scripts written for it carry over. */
#define DEFAULT_PATTERN 0xcd

static void *buf_alloc(size_t bytes)
{
	void *p;

	if (posix_memalign(&p, BUF_ALIGN, bytes)) {
		return NULL;
	}
	return p;
}

/* Prints a library failure about 'path'.  The user must be able to tell
 * which file failed, so a sentence that does not name it gets it prefixed. */
static void image_error(const struct errmsg *err, const char *path, int ret)
{
	if (err && err->msg[0] && strstr(err->msg, path)) {
		cli_error("%s", err->msg);
	} else if (err && err->msg[0]) {
		cli_error("%s: %s", path, err->msg);
	} else {
		cli_error("%s: %s", path, strerror(-ret));
	}
}

/* Opens an image, printing the one-line error on failure (vdisk-snap.c too).
 * 'path' may name it in a datastore; a datastore's template is never
 * opened for writing. */
int vdisk_open_image(const char *path, unsigned flags, struct vd_image **imgp)
{
	struct vd_open_opts opts;
	struct errmsg err;
	char *host;
	int ret;

	ret = vdisk_resolve(path, flags & VD_OPEN_RDWR, &host);
	if (ret < 0) {
		return ret;
	}
	vd_open_opts_init(&opts);
	opts.flags = flags;
	errmsg_clear(&err);
	ret = vd_open(host, &opts, imgp, &err);
	if (ret < 0) {
		image_error(&err, path, ret);
	}
	free(host);
	return ret;
}

/* Closes 'img', reporting a failed final flush: data the user believes
 * written may not be. */
static int close_image(struct vd_image *img, const char *path)
{
	int ret = vd_close(img);

	if (ret < 0) {
		cli_error("%s: cannot close the image: %s", path, strerror(-ret));
	}
	return ret;
}

/* Parses a size given on the command line of 'cmd'; a usage error if bad. */
static int parse_size_arg(const char *cmd, const char *what, const char *str, uint64_t *valp)
{
	int ret = cli_parse_size(str, valp);

	if (ret == -ERANGE) {
		cli_usage_error(cmd, "%s '%s' is too large", what, str);
	} else if (ret < 0) {
		cli_usage_error(cmd, "invalid %s '%s'", what, str);
	}
	return ret;
}

static int parse_count_arg(const char *cmd, const char *what, const char *str, uint64_t max,
			   uint64_t *valp)
{
	int ret = cli_parse_u64(str, valp);

	if (ret == 0 && *valp > max) {
		ret = -ERANGE;
	}
	if (ret < 0) {
		cli_usage_error(cmd, "invalid %s '%s'", what, str);
	}
	return ret;
}

static int parse_format(const char *cmd, const char *str, enum vd_format *fmtp)
{
	if (vd_format_parse(str, fmtp) < 0 || *fmtp == VD_FORMAT_AUTO) {
		cli_usage_error(cmd, "unknown format '%s' (raw, vdisk or qcow2)", str);
		return -EINVAL;
	}
	return 0;
}

/* Checks that exactly 'nargs' positional arguments follow the options. */
static int want_args(const char *cmd, int argc, char **argv, int nargs, const char *names)
{
	if (argc - optind < nargs) {
		cli_usage_error(cmd, "missing %s", names);
		return -EINVAL;
	}
	if (argc - optind > nargs) {
		cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + nargs]);
		return -EINVAL;
	}
	return 0;
}

/*
 * create
 */

static const char create_help[] =
    "Usage: vdisk create [-q] [-c CLUSTER] [--subclusters] [--preallocation=MODE]\n"
    "                    [-o OPTIONS] FILE SIZE\n"
    "       vdisk create [-q] [-c CLUSTER] [--subclusters] [-o OPTIONS] -b BACKING\n"
    "                    [-F vdisk] FILE [SIZE]\n"
    "\n"
    "Creates the vdisk image FILE with a virtual size of SIZE bytes; FILE must\n"
    "not exist.  Sizes take a suffix K, M, G or T (powers of 1024).\n"
    "\n"
    "  -b, --backing=BACKING       make FILE a linked clone of the vdisk image\n"
    "                              BACKING: it reads through to BACKING until\n"
    "                              written; SIZE defaults to BACKING's.  A relative\n"
    "                              BACKING is taken from FILE's directory\n"
    "  -F FORMAT                   format of BACKING; must be vdisk\n"
    "  -c, --cluster-size=CLUSTER  allocation unit, a power of 2 from 4K to 2M\n"
    "                              (default 64K; 128K with --subclusters)\n"
    "      --subclusters           split each cluster into 32 subclusters with\n"
    "                              their own state, so that a small write into a\n"
    "                              new cluster or a clone writes only what it\n"
    "                              touches (clusters of at least 128K); older\n"
    "                              readers refuse such an image\n"
    "      --preallocation=MODE    off (default): allocate nothing;\n"
    "                              metadata: map every cluster, file sparse;\n"
    "                              full: also reserve the file's space\n"
    "  -o OPTIONS                  qemu-img style, comma separated: cluster_size=N,\n"
    "                              preallocation=MODE, journal_size=N,\n"
    "                              subclusters=on|off (extended_l2=on|off)\n"
    "  -f FORMAT                   accepted for qemu-img habits; must be vdisk\n"
    "  -q, --quiet                 do not print the 'Formatting' line\n"
    "  -h, --help                  show this help\n";

static const char *const prealloc_names[] = {
    [VD_PREALLOC_OFF] = "off",
    [VD_PREALLOC_METADATA] = "metadata",
    [VD_PREALLOC_FULL] = "full",
};

static int parse_prealloc(const char *str, enum vd_prealloc *modep)
{
	for (unsigned i = 0; i < sizeof(prealloc_names) / sizeof(prealloc_names[0]); i++) {
		if (!strcmp(str, prealloc_names[i])) {
			*modep = (enum vd_prealloc)i;
			return 0;
		}
	}
	cli_usage_error("create", "invalid preallocation mode '%s' (off, metadata or full)", str);
	return -EINVAL;
}

static int parse_u32_size(const char *what, const char *str, uint32_t *valp)
{
	uint64_t v;

	if (parse_size_arg("create", what, str, &v) < 0) {
		return -EINVAL;
	}
	if (v > UINT32_MAX) {
		cli_usage_error("create", "%s '%s' is too large", what, str);
		return -ERANGE;
	}
	*valp = (uint32_t)v;
	return 0;
}

/* Applies one qemu-img style "-o key=value,..." list. */
static int create_parse_o(const char *list, struct vd_create_opts *vo)
{
	char *copy = strdup(list);
	char *save = NULL;
	int ret = 0;

	if (!copy) {
		cli_error("%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	for (char *tok = strtok_r(copy, ",", &save); tok && ret == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *val = strchr(tok, '=');

		if (!val) {
			cli_usage_error("create", "option '%s' needs a value", tok);
			ret = -EINVAL;
			break;
		}
		*val++ = '\0';
		if (!strcmp(tok, "cluster_size")) {
			ret = parse_u32_size("cluster size", val, &vo->cluster_bytes);
		} else if (!strcmp(tok, "preallocation")) {
			ret = parse_prealloc(val, &vo->prealloc);
		} else if (!strcmp(tok, "journal_size")) {
			ret = parse_u32_size("journal size", val, &vo->journal_bytes);
		} else if (!strcmp(tok, "subclusters") || !strcmp(tok, "extended_l2")) {
			if (strcmp(val, "on") && strcmp(val, "off")) {
				cli_usage_error("create", "%s must be on or off", tok);
				ret = -EINVAL;
			}
			vo->subclusters = !strcmp(val, "on");
		} else {
			cli_usage_error("create", "unknown creation option '%s'", tok);
			ret = -EINVAL;
		}
	}
	free(copy);
	return ret;
}

static int create_parse(int argc, char **argv, struct vd_create_opts *vo, bool *quietp)
{
	static const struct option longopts[] = {
	    {"backing", required_argument, NULL, 'b'},
	    {"cluster-size", required_argument, NULL, 'c'},
	    {"preallocation", required_argument, NULL, OPT_PREALLOC},
	    {"subclusters", no_argument, NULL, OPT_SUBCLUSTERS},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	enum vd_format fmt = VD_FORMAT_AUTO;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":b:F:c:o:f:qh", longopts, NULL)) != -1) {
		int ret = 0;

		switch (c) {
		case 'b':
			vo->backing_path = optarg;
			if (!optarg[0]) {
				cli_usage_error("create", "the backing file name is empty");
				ret = -EINVAL;
			}
			break;
		case 'F':
			if (strcmp(optarg, "vdisk")) {
				cli_usage_error("create", "unsupported backing format '%s' (only "
							  "vdisk)", optarg);
				ret = -EINVAL;
			}
			break;
		case 'c':
			ret = parse_u32_size("cluster size", optarg, &vo->cluster_bytes);
			break;
		case OPT_PREALLOC:
			ret = parse_prealloc(optarg, &vo->prealloc);
			break;
		case OPT_SUBCLUSTERS:
			vo->subclusters = true;
			break;
		case 'o':
			ret = create_parse_o(optarg, vo);
			break;
		case 'f':
			ret = parse_format("create", optarg, &fmt);
			if (ret == 0 && fmt != VD_FORMAT_VDISK) {
				cli_usage_error("create", "only the vdisk format can be created");
				ret = -EINVAL;
			}
			break;
		case 'q':
			*quietp = true;
			break;
		case 'h':
			fputs(create_help, stdout);
			return 1;
		default:
			cli_getopt_error("create", c, argv);
			return -EINVAL;
		}
		if (ret < 0) {
			return ret;
		}
	}
	/* Preallocated clusters would hide the backing file's data. */
	if (vo->backing_path && vo->prealloc != VD_PREALLOC_OFF) {
		cli_usage_error("create", "a linked clone (-b) cannot be preallocated");
		return -EINVAL;
	}
	/* A clone's size defaults to its backing file's (size 0). */
	if (vo->backing_path && argc - optind == 1) {
		return 0;
	}
	if (want_args("create", argc, argv, 2, "FILE and SIZE") < 0) {
		return -EINVAL;
	}
	return parse_size_arg("create", "size", argv[optind + 1], &vo->size_bytes);
}

int vdisk_cmd_create(int argc, char **argv)
{
	struct vdisk_target t;
	struct vd_create_opts vo;
	struct errmsg err;
	const char *spec;
	char *backing = NULL, *path = NULL;
	bool quiet = false;
	int ret;

	vd_create_opts_init(&vo);
	ret = create_parse(argc, argv, &vo, &quiet);
	if (ret != 0) {
		return ret > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	/* FILE and BACKING may name datastores (vdisk-ds.c). */
	spec = argv[optind];
#ifdef VDISK_RBD
	{
		struct vrbd_spec vs;

		ret = vdisk_rbd_spec(spec, &vs);
		if (ret < 0) {
			return CLI_EXIT_FAILURE;
		}
		if (ret > 0 && vo.backing_path) {
			return vdisk_rbd_clone(spec, &vs, vo.backing_path, quiet);
		}
		if (ret > 0) {
			return vdisk_rbd_create(spec, &vs, vo.size_bytes, quiet);
		}
	}
#endif
	if (vdisk_resolve(spec, false, &path) < 0 ||
	    (vo.backing_path && vdisk_backing_name(spec, vo.backing_path, &backing) < 0)) {
		free(path);
		return CLI_EXIT_FAILURE;
	}
	vo.backing_path = backing;
	/* The Formatting line shows the size the clone will get; if the
	 * backing file cannot be opened, vd_create() says why. */
	if (vo.backing_path && vo.size_bytes == 0 &&
	    vdisk_backing_size(path, vo.backing_path, &vo.size_bytes) < 0) {
		quiet = true;
	}
	free(path);
	if (vdisk_target_begin(spec, false, vo.size_bytes, &t) < 0) {
		free(backing);
		return CLI_EXIT_FAILURE;
	}
	if (!quiet) {
		printf("Formatting '%s', fmt=vdisk size=%" PRIu64, spec, vo.size_bytes);
		if (vo.backing_path) {
			printf(" backing_file=%s", vo.backing_path);
		}
		printf(" cluster_size=%u preallocation=%s",
		       vo.cluster_bytes ? vo.cluster_bytes
					: (vo.subclusters ? VD_DEFAULT_SC_CLUSTER_BYTES
							  : VD_DEFAULT_CLUSTER_BYTES),
		       prealloc_names[vo.prealloc]);
		if (vo.subclusters) {
			printf(" subclusters=on");
		}
		if (vo.journal_bytes) {
			printf(" journal_size=%u", vo.journal_bytes);
		}
		printf("\n");
		fflush(stdout);
	}
	errmsg_clear(&err);
	ret = vd_create(t.path, &vo, &err);
	if (ret < 0) {
		image_error(&err, spec, ret);
	}
	if (vdisk_target_end(&t, ret == 0) < 0) {
		ret = -EIO;
	}
	free(backing);
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/*
 * Shared by the reporting commands: "CMD [--json] FILE".
 */

struct report_opts {
	bool json;
	bool repair;
	bool force_share; /* -U: VD_OPEN_FORCE_SHARE */
	const char *ctl;  /* info --ctl: vdiskd's control socket */
};

/* 'allow': OPT_REPAIR and OPT_CTL are accepted only by the commands that
 * name them here. */
static int report_parse(const char *cmd, const char *help, int allow, int argc, char **argv,
			struct report_opts *ro)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, OPT_JSON},
	    {"output", required_argument, NULL, 'O'},
	    {"repair", no_argument, NULL, OPT_REPAIR},
	    {"force-share", no_argument, NULL, 'U'},
	    {"ctl", required_argument, NULL, OPT_CTL},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:rUh", longopts, NULL)) != -1) {
		enum vd_format fmt = VD_FORMAT_AUTO;

		switch (c) {
		case OPT_JSON:
			ro->json = true;
			break;
		case 'U':
			ro->force_share = true;
			break;
		case 'O':
			/* qemu-img's spelling: --output=json|human */
			if (strcmp(optarg, "json") && strcmp(optarg, "human")) {
				cli_usage_error(cmd, "invalid output format '%s' (human or json)",
						optarg);
				return -EINVAL;
			}
			ro->json = !strcmp(optarg, "json");
			break;
		case 'f':
			if (parse_format(cmd, optarg, &fmt) < 0) {
				return -EINVAL;
			}
			if (fmt != VD_FORMAT_VDISK) {
				cli_usage_error(cmd, "only vdisk images can be inspected");
				return -EINVAL;
			}
			break;
		case OPT_CTL:
			if (allow != OPT_CTL) {
				cli_usage_error(cmd, "unknown option '--ctl'");
				return -EINVAL;
			}
			ro->ctl = optarg;
			break;
		case 'r':
		case OPT_REPAIR:
			if (allow != OPT_REPAIR) {
				/* getopt accepted it, so optopt says nothing here. */
				cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
				return -EINVAL;
			}
			ro->repair = true;
			break;
		case 'h':
			fputs(help, stdout);
			return 1;
		default:
			cli_getopt_error(cmd, c, argv);
			return -EINVAL;
		}
	}
	/* As qemu-img: sharing an image with its writer is only safe for
	 * reading. */
	if (ro->force_share && ro->repair) {
		cli_usage_error(cmd, "-U (--force-share) cannot be used with --repair");
		return -EINVAL;
	}
	return want_args(cmd, argc, argv, 1, "FILE");
}

static unsigned report_open_flags(const struct report_opts *ro)
{
	return ro->force_share ? VD_OPEN_FORCE_SHARE : 0;
}

/*
 * info
 */

static const char info_help[] =
    "Usage: vdisk info [--json] [-U] [--ctl PATH] FILE\n"
    "\n"
    "Shows the virtual size, cluster size, backing file, space use, state,\n"
    "feature bits and snapshots of the vdisk image FILE.  Opens it read-only: a\n"
    "journal left by a crash is replayed in memory, never into the file.  When\n"
    "vdiskd serves FILE, asks the daemon instead and says which process serves\n"
    "it on which socket.\n"
    "\n"
    "      --json            print one JSON object (also --output=json)\n"
    "  -U, --force-share     open FILE even while a writer has it (what is read\n"
    "                        may be stale or inconsistent); vdiskd is not asked\n"
    "      --ctl PATH        vdiskd's control socket (default $VDISKD_CTL, else\n"
    "                        /run/vdiskd/vdiskd.sock)\n"
    "  -h, --help            show this help\n";

static void print_size_line(const char *label, uint64_t bytes)
{
	char human[CLI_HUMAN_SIZE_LEN];

	printf("%s: %s (%" PRIu64 " bytes)\n", label, cli_human_size(bytes, human, sizeof(human)),
	       bytes);
}

/* Hex as in the header, then the names a reader knows, then what it does
 * not (which for incompatible bits would have refused the open). */
static void print_features(const char *label, uint64_t bits, uint64_t known)
{
	printf("%s: 0x%" PRIx64, label, bits);
	if (known == VD_INCOMPAT_KNOWN && (bits & VD_INCOMPAT_JOURNAL_DIRTY)) {
		printf(" (journal_dirty)");
	}
	if (known == VD_INCOMPAT_KNOWN && (bits & VD_INCOMPAT_SUBCLUSTERS)) {
		printf(" (subclusters)");
	}
	if (bits & ~known) {
		printf(" (unknown 0x%" PRIx64 ")", bits & ~known);
	}
	printf("\n");
}

static void print_size_key(struct json_object *o, const char *label, const char *key)
{
	print_size_line(label, cli_json_u64(o, key));
}

/* The text form of vdisk_info_json()'s object 'o' for the file the user
 * named 'path'. */
static void info_print_text(struct json_object *o, const char *path)
{
	char human[CLI_HUMAN_SIZE_LEN];

	printf("image: %s\n", path);
	printf("file format: vdisk\n");
	printf("format version: %" PRIu64 "\n", cli_json_u64(o, "format_version"));
	print_size_key(o, "virtual size", "virtual_size");
	printf("disk size: %s\n",
	       cli_human_size(cli_json_u64(o, "actual_size"), human, sizeof(human)));
	printf("cluster_size: %" PRIu64 "\n", cli_json_u64(o, "cluster_size"));
	if (cli_json_u64(o, "subcluster_size")) {
		printf("subcluster_size: %" PRIu64 " (32 per cluster)\n",
		       cli_json_u64(o, "subcluster_size"));
	}
	if (cli_json_str(o, "backing_file", NULL)) {
		printf("backing file: %s\n", cli_json_str(o, "backing_file", NULL));
		printf("backing file format: vdisk\n");
		printf("backing file chain depth: %" PRIu64 "\n", cli_json_u64(o, "chain_depth"));
	}
	print_size_key(o, "allocated size", "allocated_bytes");
	print_size_key(o, "metadata size", "metadata_bytes");
	print_size_key(o, "file length", "file_length");
	print_size_key(o, "journal size", "journal_size");
	printf("state: %s\n", json_object_get_boolean(json_object_object_get(o, "dirty"))
				      ? "dirty" : "clean");
	print_features("incompatible features", cli_json_u64(o, "incompatible_features"),
		       VD_INCOMPAT_KNOWN);
	print_features("compatible features", cli_json_u64(o, "compatible_features"),
		       VD_COMPAT_KNOWN);
	print_features("autoclear features", cli_json_u64(o, "autoclear_features"),
		       VD_AUTOCLEAR_KNOWN);
}

/* "served_by" of info's JSON: who serves the image (null: nobody). */
static struct json_object *served_json(const struct vdisk_served *s)
{
	struct json_object *o = json_object_new_object(), *d = s->disk;

	json_object_object_add(o, "program", json_object_new_string("vdiskd"));
	json_object_object_add(o, "pid", json_object_new_int64(s->pid));
	json_object_object_add(o, "control_socket", json_object_new_string(s->ctl));
	json_object_object_add(o, "image", json_object_new_string(vdisk_served_image(s)));
	json_object_object_add(o, "socket",
			       json_object_new_string(cli_json_str(d, "socket", "")));
	json_object_object_add(o, "read_only",
			       json_object_new_boolean(json_object_get_boolean(
				   json_object_object_get(d, "read-only"))));
	json_object_object_add(o, "state", json_object_new_string(cli_json_str(d, "state", "")));
	return o;
}

static void served_print_text(struct json_object *sb)
{
	printf("served by: vdiskd (pid %" PRIu64 ", control socket %s)\n",
	       cli_json_u64(sb, "pid"), cli_json_str(sb, "control_socket", "-"));
	printf("served on: %s (%s, %s)\n", cli_json_str(sb, "socket", "-"),
	       json_object_get_boolean(json_object_object_get(sb, "read_only")) ? "read-only"
										  : "read-write",
	       cli_json_str(sb, "state", "-"));
}

/* Prints 'o' (taken), the description of 'path', in the form asked. */
static int info_show(struct json_object *o, const char *path, bool json)
{
	struct json_object *snapshots = NULL, *sb = NULL;
	int ret = 0;

	/* The name the user gave, as for an image opened here. */
	json_object_object_add(o, "filename", json_object_new_string(path));
	if (json) {
		ret = cli_json_print(stdout, o);
	} else {
		info_print_text(o, path);
		if (json_object_object_get_ex(o, "served_by", &sb) && sb) {
			served_print_text(sb);
		}
		if (json_object_object_get_ex(o, "snapshots", &snapshots) && snapshots) {
			vdisk_snapshots_print(snapshots);
		}
	}
	json_object_put(o);
	return ret;
}

/* info on an image vdiskd serves: the daemon describes it from its own
 * handle (disk-info).  Opening the file here with -U would read what the
 * daemon last wrote back, which can lag its journal and cache or be caught
 * half-way through a checkpoint; the daemon's answer is exact. */
static int info_served(const struct vdisk_served *s, const char *path, bool json)
{
	struct json_object *o = vdisk_served_call(s, "disk-info", NULL);

	if (!o) {
		return -EIO;
	}
	json_object_object_add(o, "served_by", served_json(s));
	return info_show(o, path, json);
}

int vdisk_cmd_info(int argc, char **argv)
{
	struct report_opts ro = {0};
	struct vdisk_served served;
	struct json_object *o;
	struct vd_image *img;
	struct errmsg err;
	const char *path;
	int ret;

	ret = report_parse("info", info_help, OPT_CTL, argc, argv, &ro);
	if (ret != 0) {
		return ret > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	path = argv[optind];
#ifdef VDISK_RBD
	{
		struct vrbd_spec vs;

		ret = vdisk_rbd_spec(path, &vs);
		if (ret != 0) {
			return ret < 0 ? CLI_EXIT_FAILURE : vdisk_rbd_info(path, &vs, ro.json);
		}
	}
#endif
	/* -U asks for the file itself, whoever has it. */
	ret = ro.force_share ? 0 : vdisk_served_lookup(ro.ctl, path, false, &served);
	if (ret < 0) {
		return CLI_EXIT_FAILURE;
	}
	if (ret > 0) {
		ret = info_served(&served, path, ro.json);
		vdisk_served_fini(&served);
		return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
	}
	if (vdisk_open_image(path, report_open_flags(&ro), &img) < 0) {
		return CLI_EXIT_FAILURE;
	}
	errmsg_clear(&err);
	ret = vdisk_info_json(img, path, &o, &err);
	vd_close(img);
	if (ret < 0) {
		image_error(&err, path, ret);
		return CLI_EXIT_FAILURE;
	}
	json_object_object_add(o, "served_by", NULL);
	return info_show(o, path, ro.json) < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/*
 * map
 */

static const char map_help[] =
    "Usage: vdisk map [--json] [-U] FILE\n"
    "\n"
    "Lists the guest ranges of the vdisk image FILE with their state: data (held\n"
    "in the file, at the offset shown), zero (reads as zeros, no space used),\n"
    "unallocated (never written, reads as zeros) or backing (never written in a\n"
    "linked clone, reads from its backing chain).  Neighbouring ranges of one\n"
    "state are merged, data ones only where their host offsets continue.\n"
    "\n"
    "      --json            print a JSON array, one object per range, like\n"
    "                        qemu-img map --output=json (also --output=json)\n"
    "  -U, --force-share     open FILE even while a writer has it (what is read\n"
    "                        may be stale or inconsistent)\n"
    "  -h, --help            show this help\n";

static const char *const extent_names[] = {
    [VD_EXTENT_DATA] = "data",
    [VD_EXTENT_ZERO] = "zero",
    [VD_EXTENT_UNALLOCATED] = "unallocated",
    [VD_EXTENT_BACKING] = "backing",
};

struct map_printer {
	bool json;
	unsigned long printed;
};

static void map_print_text(struct map_printer *mp, const struct vd_extent *e)
{
	if (mp->printed == 0) {
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "State");
	}
	printf("%#-16" PRIx64 "%#-16" PRIx64, e->offset, e->length);
	if (e->state == VD_EXTENT_DATA) {
		printf("%#-16" PRIx64, e->host_offset);
	} else {
		printf("%-16s", "-");
	}
	printf("%s\n", extent_names[e->state]);
}

/* One object per line, streamed, so a fragmented image of many terabytes
 * does not build its whole map in memory. */
static void map_print_json(struct map_printer *mp, const struct vd_extent *e)
{
	struct json_object *o = json_object_new_object();
	/* Like qemu-img: data the backing chain provides is data too. */
	bool data = e->state == VD_EXTENT_DATA || e->state == VD_EXTENT_BACKING;

	json_object_object_add(o, "start", json_object_new_uint64(e->offset));
	json_object_object_add(o, "length", json_object_new_uint64(e->length));
	json_object_object_add(o, "state", json_object_new_string(extent_names[e->state]));
	json_object_object_add(o, "present",
			       json_object_new_boolean(e->state != VD_EXTENT_UNALLOCATED));
	json_object_object_add(o, "data", json_object_new_boolean(data));
	json_object_object_add(o, "zero", json_object_new_boolean(!data));
	if (e->state == VD_EXTENT_DATA) {
		json_object_object_add(o, "offset", json_object_new_uint64(e->host_offset));
	}
	if (e->state == VD_EXTENT_BACKING) {
		json_object_object_add(o, "depth", json_object_new_int(1));
	}
	printf("%s%s", mp->printed ? ",\n" : "[",
	       json_object_to_json_string_ext(o, JSON_C_TO_STRING_SPACED));
	json_object_put(o);
}

static void map_emit(struct map_printer *mp, const struct vd_extent *e)
{
	if (mp->json) {
		map_print_json(mp, e);
	} else {
		map_print_text(mp, e);
	}
	mp->printed++;
}

static bool extents_merge(const struct vd_extent *a, const struct vd_extent *b)
{
	if (a->state != b->state || a->offset + a->length != b->offset) {
		return false;
	}
	return a->state != VD_EXTENT_DATA || a->host_offset + a->length == b->host_offset;
}

static int map_image(struct vd_image *img, const char *path, struct map_printer *mp)
{
	uint64_t size = vd_size_bytes(img);
	struct vd_extent run = {0}, e;

	for (uint64_t off = 0; off < size; off += e.length) {
		int ret = vd_map(img, off, &e);

		if (ret < 0) {
			cli_error("%s: cannot map guest offset %#" PRIx64 ": %s", path, off,
				  strerror(-ret));
			return ret;
		}
		/* A map that does not advance would loop forever. */
		if (e.offset != off || e.length == 0 || e.state > VD_EXTENT_BACKING) {
			cli_error("%s: the library returned a bad extent at guest offset %#" PRIx64,
				  path, off);
			return -EIO;
		}
		if (e.length > size - off) {
			e.length = size - off;
		}
		if (run.length && extents_merge(&run, &e)) {
			run.length += e.length;
		} else {
			if (run.length) {
				map_emit(mp, &run);
			}
			run = e;
		}
	}
	if (run.length) {
		map_emit(mp, &run);
	}
	return 0;
}

int vdisk_cmd_map(int argc, char **argv)
{
	struct report_opts ro = {0};
	struct map_printer mp = {0};
	struct vd_image *img;
	const char *path;
	int ret;

	ret = report_parse("map", map_help, 0, argc, argv, &ro);
	if (ret != 0) {
		return ret > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	path = argv[optind];
	if (vdisk_open_image(path, report_open_flags(&ro), &img) < 0) {
		return CLI_EXIT_FAILURE;
	}
	mp.json = ro.json;
	ret = map_image(img, path, &mp);
	if (mp.json) {
		printf("%s\n", mp.printed ? "]" : "[]");
	}
	vd_close(img);
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/*
 * check
 */

/* qemu-img check's exit statuses, which scripts test for. */
#define CHECK_EXIT_CORRUPT 2
#define CHECK_EXIT_LEAKS 3

static const char check_help[] =
    "Usage: vdisk check [--repair | -U] [--json] FILE\n"
    "\n"
    "Checks the metadata of the vdisk image FILE: references outside the file,\n"
    "overlapping references, wrong or leaked refcounts, corrupt table entries.\n"
    "Each problem is printed as it is found, then a summary.\n"
    "\n"
    "  -r, --repair          fix refcounts and leaks, and unmap entries that point\n"
    "                        outside the file or into metadata (their data then\n"
    "                        reads as zeros); opens FILE read-write and checks\n"
    "                        again afterwards\n"
    "      --json            print one JSON object (also --output=json)\n"
    "  -U, --force-share     check FILE even while a writer has it (what is read\n"
    "                        may be stale: expect false alarms); not with --repair\n"
    "  -h, --help            show this help\n"
    "\n"
    "Exit status: 0 no errors, 1 the check could not run, 2 corruption found\n"
    "(and not repaired), 3 only leaked clusters found.\n";

struct check_state {
	bool json;
	struct json_object *messages;
};

static void check_report(void *arg, const char *sentence)
{
	struct check_state *cs = arg;

	if (cs->json) {
		json_object_array_add(cs->messages, json_object_new_string(sentence));
	} else {
		printf("%s\n", sentence);
	}
}

static int check_run(struct vd_image *img, const char *path, unsigned flags, struct check_state *cs,
		     struct vd_check_result *res)
{
	struct errmsg err;
	int ret;

	memset(res, 0, sizeof(*res));
	errmsg_clear(&err);
	ret = vd_check(img, flags, res, check_report, cs, &err);
	if (ret < 0) {
		image_error(&err, path, ret);
	}
	return ret;
}

static void check_print_text(const struct vd_check_result *res)
{
	if (res->corruptions) {
		printf("\n%" PRIu64 " errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image may corrupt it.\n",
		       res->corruptions);
	}
	if (res->leaks) {
		printf("\n%" PRIu64 " leaked clusters were found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n",
		       res->leaks);
	}
	if (!res->corruptions && !res->leaks) {
		printf("No errors were found on the image.\n");
	}
	if (res->total_clusters) {
		printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated clusters\n",
		       res->allocated_clusters, res->total_clusters,
		       100.0 * (double)res->allocated_clusters / (double)res->total_clusters);
	}
}

static int check_print_json(const char *path, struct check_state *cs,
			    const struct vd_check_result *res, const struct vd_check_result *fixed)
{
	struct json_object *o = json_object_new_object();
	int ret;

	json_object_object_add(o, "filename", json_object_new_string(path));
	json_object_object_add(o, "format", json_object_new_string("vdisk"));
	json_object_object_add(o, "check_errors", json_object_new_int(0));
	json_object_object_add(o, "corruptions", json_object_new_uint64(res->corruptions));
	json_object_object_add(o, "leaks", json_object_new_uint64(res->leaks));
	json_object_object_add(o, "corruptions_fixed",
			       json_object_new_uint64(fixed->corruptions_fixed));
	json_object_object_add(o, "leaks_fixed", json_object_new_uint64(fixed->leaks_fixed));
	json_object_object_add(o, "allocated_clusters",
			       json_object_new_uint64(res->allocated_clusters));
	json_object_object_add(o, "total_clusters", json_object_new_uint64(res->total_clusters));
	json_object_object_add(o, "messages", json_object_get(cs->messages));
	ret = cli_json_print(stdout, o);
	json_object_put(o);
	return ret;
}

/* Runs the check, and with 'repair' a second, read-only pass, whose result
 * is what remains and what the exit status reports, as qemu-img does. */
static int check_image(struct vd_image *img, const char *path, bool repair, struct check_state *cs)
{
	struct vd_check_result first, final;

	if (check_run(img, path, repair ? VD_CHECK_REPAIR : 0, cs, &first) < 0) {
		return CLI_EXIT_FAILURE;
	}
	final = first;
	if (repair && (first.corruptions || first.leaks)) {
		if (!cs->json) {
			printf("The following inconsistencies were found and repaired:\n\n"
			       "    %" PRIu64 " leaked clusters\n    %" PRIu64 " corruptions\n\n"
			       "Double checking the fixed image now...\n",
			       first.leaks_fixed, first.corruptions_fixed);
		}
		if (check_run(img, path, 0, cs, &final) < 0) {
			return CLI_EXIT_FAILURE;
		}
	}
	if (cs->json) {
		if (check_print_json(path, cs, &final, &first) < 0) {
			return CLI_EXIT_FAILURE;
		}
	} else {
		check_print_text(&final);
	}
	if (final.corruptions) {
		return CHECK_EXIT_CORRUPT;
	}
	return final.leaks ? CHECK_EXIT_LEAKS : CLI_EXIT_OK;
}

int vdisk_cmd_check(int argc, char **argv)
{
	struct report_opts ro = {0};
	struct check_state cs = {0};
	struct vd_image *img;
	const char *path;
	int ret, status;

	ret = report_parse("check", check_help, OPT_REPAIR, argc, argv, &ro);
	if (ret != 0) {
		return ret > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	path = argv[optind];
	/* A repair finishes an interrupted snapshot deletion itself, after
	 * it has made the refcounts sound (the open would go through them). */
	if (vdisk_open_image(path, ro.repair ? VD_OPEN_RDWR | VD_OPEN_NO_RESUME
					     : report_open_flags(&ro), &img) < 0) {
		return CLI_EXIT_FAILURE;
	}
	cs.json = ro.json;
	cs.messages = json_object_new_array();
	status = check_image(img, path, ro.repair, &cs);
	json_object_put(cs.messages);
	/* A repair is only done once it is flushed. */
	if (close_image(img, path) < 0) {
		status = CLI_EXIT_FAILURE;
	}
	return status;
}

/*
 * convert
 */

static const char convert_help[] =
    "Usage: vdisk convert [-p] [-f FMT] [-O FMT] [-c CLUSTER] [--subclusters] [-S SIZE]\n"
    "                     IN OUT\n"
    "\n"
    "Copies the image IN to a new image OUT, keeping it thin: ranges IN does not\n"
    "hold (holes of a raw file, unallocated or zero ranges of a vdisk or qcow2\n"
    "image) and blocks of zeros are not written, so they stay holes (raw) or\n"
    "unallocated (vdisk) in OUT.  A vdisk OUT must not exist; a raw OUT is\n"
    "overwritten.  A qcow2 IN is read with its backing chain.\n"
    "\n"
    "  -f FMT               format of IN, raw, vdisk or qcow2 (default: by IN's\n"
    "                       magic, else raw)\n"
    "  -O FMT               format of OUT, raw or vdisk (default vdisk)\n"
    "  -c, --cluster-size=CLUSTER\n"
    "                       cluster size of a vdisk OUT (default 64K; 128K with\n"
    "                       --subclusters)\n"
    "      --subclusters    give a vdisk OUT subclusters (as create does)\n"
    "  -S SIZE              smallest run of zeros left unwritten, a multiple of\n"
    "                       512 (default 4K; 0 writes every byte IN holds)\n"
    "  -p, --progress       show progress on stderr when it is a terminal\n"
    "  -h, --help           show this help\n";

struct convert_opts {
	enum vd_format in_fmt;
	enum vd_format out_fmt;
	uint32_t cluster_bytes;
	uint64_t zero_block_bytes;
	bool progress;
	bool subclusters;
};

/* Where it writes to: the tool creates OUT, libvdisk's copy engine fills
 * it (vd_copy). */
struct dest {
	const char *path;
	enum vd_format fmt;
	struct vd_copy_dest cd;
	bool created; /* vdisk OUT: this run made the file */
};

struct progress {
	bool enabled;
	long last; /* hundredths of a percent last printed */
};

static void progress_update(void *arg, uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	long now;

	if (!p->enabled) {
		return;
	}
	now = total ? (long)((double)done * 10000.0 / (double)total) : 10000;
	if (now != p->last) {
		p->last = now;
		fprintf(stderr, "    (%3.2f/100%%)\r", (double)now / 100.0);
	}
}

static int dest_open(struct dest *dst, uint32_t cluster_bytes, bool subclusters)
{
	struct vd_create_opts vo;
	struct errmsg err;
	struct stat st;
	int ret;

	dst->cd.name = dst->path;
	if (dst->fmt == VD_FORMAT_VDISK) {
		vd_create_opts_init(&vo);
		vo.size_bytes = dst->cd.size_bytes;
		vo.cluster_bytes = cluster_bytes;
		vo.subclusters = subclusters;
		errmsg_clear(&err);
		ret = vd_create(dst->path, &vo, &err);
		if (ret < 0) {
			image_error(&err, dst->path, ret);
			return ret;
		}
		dst->created = true;
		return vdisk_open_image(dst->path, VD_OPEN_RDWR | VD_OPEN_BUFFERED, &dst->cd.img);
	}
	/* Truncating first turns every byte into a hole, so only data need be
	 * written; a device keeps its old bytes, so there zeros are written. */
	errmsg_clear(&err);
	dst->cd.fd = openfile_open(dst->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644, true,
				   &err);
	if (dst->cd.fd < 0 || fstat(dst->cd.fd, &st) < 0) {
		ret = dst->cd.fd < 0 ? dst->cd.fd : -errno;
		cli_error("%s", dst->cd.fd < 0 ? err.msg : strerror(-ret));
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		dst->cd.fill_holes = true;
		return 0;
	}
	if (ftruncate(dst->cd.fd, (off_t)dst->cd.size_bytes) < 0) {
		ret = -errno;
		cli_error("%s: cannot set its size: %s", dst->path, strerror(-ret));
		return ret;
	}
	return 0;
}

/* Flushes and closes OUT; with 'failed' a vdisk OUT this run created is
 * removed, since a half-copied image is worse than none. */
static int dest_close(struct dest *dst, bool failed)
{
	int ret = 0;

	/* After a failure the image is deleted: its close failing too (a
	 * full file system) is no news. */
	if (dst->cd.img) {
		ret = failed ? vd_close(dst->cd.img) : close_image(dst->cd.img, dst->path);
		dst->cd.img = NULL;
	}
	if (dst->cd.fd >= 0) {
		if (!failed && fsync(dst->cd.fd) < 0) {
			ret = -errno;
			cli_error("%s: cannot flush: %s", dst->path, strerror(-ret));
		}
		if (close(dst->cd.fd) < 0 && ret == 0) {
			ret = -errno;
			cli_error("%s: cannot close: %s", dst->path, strerror(-ret));
		}
		dst->cd.fd = -1;
	}
	if ((failed || ret < 0) && dst->created) {
		unlink(dst->path);
	}
	return ret;
}

static int convert_copy(struct vd_source *src, struct dest *dst, const struct convert_opts *co)
{
	struct progress prog = {.enabled = co->progress && isatty(STDERR_FILENO), .last = -1};
	struct vd_copy_opts opts;
	struct errmsg err = {{0}};
	int ret;

	vd_copy_opts_init(&opts);
	opts.zero_block_bytes = co->zero_block_bytes;
	opts.progress = progress_update;
	opts.progress_arg = &prog;
	ret = vd_copy(src, &dst->cd, &opts, &err);
	if (prog.enabled) {
		fputc('\n', stderr);
	}
	if (ret < 0) {
		image_error(&err, dst->path, ret);
	}
	return ret;
}

/* Refuses to convert a file onto itself: the raw OUT's truncation would
 * destroy IN before a byte was read. */
static int check_distinct(const char *in, const char *out)
{
	struct stat a, b;

	if (stat(in, &a) < 0) {
		cli_error("%s: cannot open: %s", in, strerror(errno));
		return -errno;
	}
	if (stat(out, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		cli_error("%s and %s are the same file", in, out);
		return -EINVAL;
	}
	return 0;
}

static int convert_parse(int argc, char **argv, struct convert_opts *co)
{
	static const struct option longopts[] = {
	    {"cluster-size", required_argument, NULL, 'c'},
	    {"subclusters", no_argument, NULL, OPT_SUBCLUSTERS},
	    {"progress", no_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:O:c:S:ph", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_format("convert", optarg, &co->in_fmt) < 0) {
				return -EINVAL;
			}
			break;
		case 'O':
			if (parse_format("convert", optarg, &co->out_fmt) < 0) {
				return -EINVAL;
			}
			break;
		case 'c':
			if (parse_size_arg("convert", "cluster size", optarg, &v) < 0) {
				return -EINVAL;
			}
			co->cluster_bytes = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
			break;
		case 'S':
			if (parse_size_arg("convert", "zero block size", optarg, &v) < 0) {
				return -EINVAL;
			}
			if (v % VD_SECTOR_BYTES || v > CHUNK_BYTES) {
				cli_usage_error("convert", "-S must be a multiple of 512 up to 2M");
				return -EINVAL;
			}
			co->zero_block_bytes = v;
			break;
		case 'p':
			co->progress = true;
			break;
		case OPT_SUBCLUSTERS:
			co->subclusters = true;
			break;
		case 'h':
			fputs(convert_help, stdout);
			return 1;
		default:
			cli_getopt_error("convert", c, argv);
			return -EINVAL;
		}
	}
	if (co->out_fmt == VD_FORMAT_QCOW2) {
		cli_usage_error("convert", "qcow2 is read, not written: OUT is raw or vdisk");
		return -EINVAL;
	}
	if ((co->cluster_bytes || co->subclusters) && co->out_fmt != VD_FORMAT_VDISK) {
		cli_usage_error("convert", "-c and --subclusters apply only to a vdisk output");
		return -EINVAL;
	}
	return want_args("convert", argc, argv, 2, "IN and OUT");
}

#ifdef VDISK_RBD
/* convert into a Ceph RBD image (import into a pool): it is created at the
 * source's size, filled with the copy engine (only data; runs of zeros
 * stay unwritten, so thin stays thin), flushed, and deleted again if the
 * copy fails. */
static int convert_to_rbd(struct vd_source *src, const char *out_spec,
			  const struct vrbd_spec *vs, const struct convert_opts *co)
{
	struct dest dst = {.path = out_spec, .cd = {.fd = -1, .write = vrbd_copy_write}};
	struct errmsg err = {{0}};
	struct vrbd_image *img;
	int ret;

	if (co->out_fmt != VD_FORMAT_RAW || co->cluster_bytes || co->subclusters) {
		cli_error("%s: an RBD image holds raw guest data: convert to it with -O raw "
			  "(and no -c or --subclusters)", out_spec);
		return -EINVAL;
	}
	dst.cd.size_bytes = (vd_source_size_bytes(src) + 511) / 512 * 512;
	dst.cd.name = out_spec;
	ret = vrbd_create(vs, dst.cd.size_bytes, &err);
	if (ret == 0) {
		ret = vrbd_open(vs, VRBD_WRITABLE, &img, &err);
		if (ret < 0) {
			vrbd_remove(vs, NULL);
		}
	}
	if (ret < 0) {
		cli_error_ret(&err, out_spec, ret);
		return ret;
	}
	dst.cd.write_arg = img;
	ret = convert_copy(src, &dst, co);
	if (ret == 0) {
		ret = rbd_flush(img->rbd);
		if (ret < 0) {
			cli_error("%s: flush failed: %s", out_spec, strerror(-ret));
		}
	}
	vrbd_close(img);
	if (ret < 0) {
		vrbd_remove(vs, NULL);
	}
	return ret;
}
#endif

static int convert_run(const char *in_spec, const char *out_spec, struct convert_opts *co)
{
	struct dest dst = {.cd = {.fd = -1}};
	struct vd_source *src = NULL;
	struct vdisk_target t = {0};
	struct errmsg err = {{0}};
	char *in = NULL;
	bool in_rbd_src = false; /* 'in' names an RBD image, not a file */
	int ret;

#ifdef VDISK_RBD
	struct vrbd_spec in_vs, out_vs;
	int in_rbd = vdisk_rbd_spec(in_spec, &in_vs), out_rbd;

	if (in_rbd < 0) {
		return CLI_EXIT_FAILURE;
	}
	if (in_rbd > 0) {
		ret = vrbd_source_open(&in_vs, &src, &err);
		if (ret < 0) {
			cli_error_ret(&err, in_spec, ret);
			return CLI_EXIT_FAILURE;
		}
		in = strdup(in_spec);
		in_rbd_src = true;
	}
	out_rbd = vdisk_rbd_spec(out_spec, &out_vs);
	if (out_rbd != 0) {
		ret = -EINVAL;
		if (out_rbd > 0 && !src) {
			ret = vdisk_resolve(in_spec, false, &in);
			if (ret == 0) {
				ret = vd_source_open(in, co->in_fmt, VD_OPEN_BUFFERED, &src, &err);
				if (ret < 0) {
					image_error(&err, in_spec, ret);
				}
			}
		}
		if (out_rbd > 0 && src) {
			ret = convert_to_rbd(src, out_spec, &out_vs, co);
		}
		vd_source_close(src);
		free(in);
		return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
	}
	ret = src ? 0 : vdisk_resolve(in_spec, false, &in);
	if (ret == 0 && !src) {
#else
	ret = vdisk_resolve(in_spec, false, &in);
	if (ret == 0) {
#endif
		ret = vd_source_open(in, co->in_fmt, VD_OPEN_BUFFERED, &src, &err);
		if (ret < 0) {
			image_error(&err, in_spec, ret);
		}
	}
	if (ret < 0) {
		free(in);
		return CLI_EXIT_FAILURE;
	}
	/* A vdisk holds whole sectors: a raw IN's tail is padded with zeros. */
	dst.cd.size_bytes = vd_source_size_bytes(src);
	if (co->out_fmt == VD_FORMAT_VDISK && dst.cd.size_bytes % VD_SECTOR_BYTES) {
		dst.cd.size_bytes += VD_SECTOR_BYTES - dst.cd.size_bytes % VD_SECTOR_BYTES;
	}
	/* Into a datastore a raw OUT can only be an ISO image. */
	ret = vdisk_target_begin(out_spec, co->out_fmt == VD_FORMAT_RAW, dst.cd.size_bytes, &t);
	if (ret == 0) {
		dst.path = t.path;
		dst.fmt = co->out_fmt;
		ret = in_rbd_src ? 0 : check_distinct(in, dst.path);
	}
	if (ret == 0) {
		ret = dest_open(&dst, co->cluster_bytes, co->subclusters);
	}
	if (ret == 0) {
		ret = convert_copy(src, &dst, co);
	}
	if (dst.path && dest_close(&dst, ret < 0) < 0) {
		ret = -EIO;
	}
	if (t.path && vdisk_target_end(&t, ret == 0) < 0) {
		ret = -EIO;
	}
	vd_source_close(src);
	free(in);
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

int vdisk_cmd_convert(int argc, char **argv)
{
	struct convert_opts co = {.out_fmt = VD_FORMAT_VDISK, .zero_block_bytes = 4096};
	int ret;

	ret = convert_parse(argc, argv, &co);
	if (ret != 0) {
		return ret > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	return convert_run(argv[optind], argv[optind + 1], &co);
}

/*
 * io
 */

static const char io_help[] =
    "Usage: vdisk io [-r [-U]] [-q] [-t CACHE] [-f FMT] [-c CMD]... FILE\n"
    "\n"
    "Runs I/O commands on the vdisk image FILE, like qemu-io: each -c in order,\n"
    "or, without -c, one per line from standard input.  The first command that\n"
    "fails stops the run with exit status 1.  FILE is opened read-only when every\n"
    "command only reads, read-write otherwise.\n"
    "\n"
    "  -c, --cmd=CMD        run CMD (repeatable)\n"
    "  -r, --read-only      open read-only even for writing commands (they fail)\n"
    "  -U, --force-share    with a read-only open: open FILE even while a writer\n"
    "                       has it (what is read may be stale)\n"
    "  -t, --cache=CACHE    writeback (default, page cache) or none (O_DIRECT)\n"
    "  -n, --nocache        same as -t none\n"
    "  -f FMT               accepted for qemu-io habits; must be vdisk\n"
    "  -q, --quiet          do not print a line per command\n"
    "  -h, --help           show this help\n"
    "\n"
    "Commands; OFF and LEN are multiples of 512 and take suffixes (64k, 1M):\n"
    "  read [-P PATTERN] [-q] OFF LEN\n"
    "                       read; with -P check every byte equals PATTERN\n"
    "  write [-P PATTERN] [-z] [-q] OFF LEN\n"
    "                       write PATTERN (a byte, default 0xcd); -z writes zeros\n"
    "  zero OFF LEN         make the range read as zeros (write -z)\n"
    "  discard OFF LEN      give the range's whole clusters back; it reads as zeros\n"
    "  flush                make every completed write durable\n"
    "  help                 list the commands\n";

#define IO_MAX_WORDS 16

/* What `vdisk io` drives: a vdisk image through libvdisk, or a Ceph RBD
 * image through librbd. */
struct io_ops {
	int (*pread)(void *h, void *buf, size_t len, uint64_t off);
	int (*pwrite)(void *h, const void *buf, size_t len, uint64_t off);
	int (*write_zeroes)(void *h, uint64_t off, uint64_t len);
	int (*discard)(void *h, uint64_t off, uint64_t len);
	int (*flush)(void *h);
};

static int vd_io_pread(void *h, void *buf, size_t len, uint64_t off)
{
	return vd_pread(h, buf, len, off);
}

static int vd_io_pwrite(void *h, const void *buf, size_t len, uint64_t off)
{
	return vd_pwrite(h, buf, len, off);
}

static int vd_io_write_zeroes(void *h, uint64_t off, uint64_t len)
{
	return vd_write_zeroes(h, off, len);
}

static int vd_io_discard(void *h, uint64_t off, uint64_t len)
{
	return vd_discard(h, off, len);
}

static int vd_io_flush(void *h)
{
	return vd_flush(h);
}

static const struct io_ops vdisk_io_ops = {
	.pread = vd_io_pread,
	.pwrite = vd_io_pwrite,
	.write_zeroes = vd_io_write_zeroes,
	.discard = vd_io_discard,
	.flush = vd_io_flush,
};

#ifdef VDISK_RBD
static int rbd_io_pread(void *h, void *buf, size_t len, uint64_t off)
{
	struct vrbd_image *img = h;

	for (size_t done = 0; done < len;) {
		ssize_t n = rbd_read(img->rbd, off + done, len - done, (char *)buf + done);

		if (n <= 0) {
			return n < 0 ? (int)n : -EIO;
		}
		done += (size_t)n;
	}
	return 0;
}

static int rbd_io_write_zeroes(void *h, uint64_t off, uint64_t len)
{
	ssize_t n = rbd_write_zeroes(((struct vrbd_image *)h)->rbd, off, len, 0, 0);

	return n < 0 ? (int)n : 0;
}

static int rbd_io_discard(void *h, uint64_t off, uint64_t len)
{
	int n = rbd_discard(((struct vrbd_image *)h)->rbd, off, len);

	return n < 0 ? n : 0;
}

static int rbd_io_flush(void *h)
{
	return rbd_flush(((struct vrbd_image *)h)->rbd);
}

static const struct io_ops rbd_io_ops = {
	.pread = rbd_io_pread,
	.pwrite = vrbd_copy_write,
	.write_zeroes = rbd_io_write_zeroes,
	.discard = rbd_io_discard,
	.flush = rbd_io_flush,
};
#endif

struct io_state {
	struct vd_image *img;
	const struct io_ops *ops;
	void *h;		  /* 'img', or the RBD image */
	const char *path;
	uint64_t size;
	unsigned char *buf; /* CHUNK_BYTES, for reads and pattern writes */
	bool read_only;
	bool quiet;
};

struct io_args {
	uint64_t off;
	uint64_t len;
	int pattern; /* -1: none given */
	bool zero;
	bool quiet;
};

struct io_command {
	const char *name;
	const char *opts; /* getopt string of the command's options */
	bool range;	  /* takes OFF LEN */
	bool writes;
	int (*run)(struct io_state *st, const struct io_args *a);
};

static int io_read(struct io_state *st, const struct io_args *a);
static int io_write(struct io_state *st, const struct io_args *a);
static int io_zero(struct io_state *st, const struct io_args *a);
static int io_discard(struct io_state *st, const struct io_args *a);
static int io_flush(struct io_state *st, const struct io_args *a);
static int io_list(struct io_state *st, const struct io_args *a);

static const struct io_command io_commands[] = {
    {"read", "+:P:q", true, false, io_read}, {"write", "+:P:zq", true, true, io_write},
    {"zero", "+:q", true, true, io_zero},    {"discard", "+:q", true, true, io_discard},
    {"flush", "+:", false, true, io_flush},  {"help", "+:", false, false, io_list},
};

#define IO_NCOMMANDS (sizeof(io_commands) / sizeof(io_commands[0]))

static const struct io_command *io_find(const char *name)
{
	for (size_t i = 0; i < IO_NCOMMANDS; i++) {
		if (!strcmp(name, io_commands[i].name)) {
			return &io_commands[i];
		}
	}
	return NULL;
}

static size_t io_min(uint64_t a, size_t b) { return a < b ? (size_t)a : b; }

/* Counts bytes of 'p' that differ from 'pattern', noting the first. */
static void count_mismatches(const unsigned char *p, size_t len, int pattern, uint64_t off,
			     uint64_t *badp, uint64_t *first_badp)
{
	if (len && p[0] == pattern && !memcmp(p, p + 1, len - 1)) {
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (p[i] != pattern) {
			if (*badp == 0) {
				*first_badp = off + i;
			}
			(*badp)++;
		}
	}
}

static void io_report(const struct io_state *st, const struct io_args *a, const char *verb)
{
	if (!st->quiet && !a->quiet) {
		printf("%s %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", verb, a->len,
		       a->len, a->off);
	}
}

static int io_failed(const struct io_state *st, const char *what, uint64_t off, int ret)
{
	cli_error("%s: %s at offset %" PRIu64 " failed: %s", st->path, what, off, strerror(-ret));
	return ret;
}

static int io_read(struct io_state *st, const struct io_args *a)
{
	uint64_t bad = 0, first_bad = 0;

	for (uint64_t done = 0; done < a->len;) {
		size_t n = io_min(a->len - done, CHUNK_BYTES);
		int ret = st->ops->pread(st->h, st->buf, n, a->off + done);

		if (ret < 0) {
			return io_failed(st, "read", a->off + done, ret);
		}
		if (a->pattern >= 0) {
			count_mismatches(st->buf, n, a->pattern, a->off + done, &bad, &first_bad);
		}
		done += n;
	}
	/* qemu-io's wording and behaviour: report, then still print the read. */
	if (bad) {
		printf("Pattern verification failed at offset %" PRIu64 ", %" PRIu64 " bytes\n",
		       first_bad, bad);
	}
	io_report(st, a, "read");
	return bad ? -EILSEQ : 0;
}

static int io_write(struct io_state *st, const struct io_args *a)
{
	if (a->zero) {
		return io_zero(st, a);
	}
	memset(st->buf, a->pattern >= 0 ? a->pattern : DEFAULT_PATTERN,
	       io_min(a->len, CHUNK_BYTES));
	for (uint64_t done = 0; done < a->len;) {
		size_t n = io_min(a->len - done, CHUNK_BYTES);
		int ret = st->ops->pwrite(st->h, st->buf, n, a->off + done);

		if (ret < 0) {
			return io_failed(st, "write", a->off + done, ret);
		}
		done += n;
	}
	io_report(st, a, "wrote");
	return 0;
}

static int io_zero(struct io_state *st, const struct io_args *a)
{
	int ret = a->len ? st->ops->write_zeroes(st->h, a->off, a->len) : 0;

	if (ret < 0) {
		return io_failed(st, "write zeroes", a->off, ret);
	}
	io_report(st, a, "wrote");
	return 0;
}

static int io_discard(struct io_state *st, const struct io_args *a)
{
	int ret = a->len ? st->ops->discard(st->h, a->off, a->len) : 0;

	if (ret < 0) {
		return io_failed(st, "discard", a->off, ret);
	}
	io_report(st, a, "discard");
	return 0;
}

static int io_flush(struct io_state *st, const struct io_args *a)
{
	int ret = st->ops->flush(st->h);

	(void)a;
	if (ret < 0) {
		cli_error("%s: flush failed: %s", st->path, strerror(-ret));
	}
	return ret;
}

static int io_list(struct io_state *st, const struct io_args *a)
{
	const char *cmds = strstr(io_help, "Commands;");

	(void)st;
	(void)a;
	fputs(cmds ? cmds : io_help, stdout);
	return 0;
}

static int io_parse_byte(const char *cmd, const char *str, int *valp)
{
	uint64_t v;

	if (cli_parse_u64(str, &v) < 0 || v > 0xff) {
		cli_error("%s: invalid pattern '%s' (a byte: 0-255 or 0x00-0xff)", cmd, str);
		return -EINVAL;
	}
	*valp = (int)v;
	return 0;
}

static int io_parse_num(const char *cmd, const char *what, const char *str, uint64_t *valp)
{
	if (cli_parse_size(str, valp) < 0) {
		cli_error("%s: invalid %s '%s'", cmd, what, str);
		return -EINVAL;
	}
	return 0;
}

static int io_check_range(const struct io_state *st, const char *cmd, const struct io_args *a)
{
	if (a->off % VD_SECTOR_BYTES || a->len % VD_SECTOR_BYTES) {
		cli_error("%s: offset %" PRIu64 " and length %" PRIu64
			  " must be multiples of %u bytes",
			  cmd, a->off, a->len, VD_SECTOR_BYTES);
		return -EINVAL;
	}
	if (a->off > st->size || a->len > st->size - a->off) {
		cli_error("%s: %s: range of %" PRIu64 " bytes at offset %" PRIu64
			  " lies beyond the virtual size %" PRIu64,
			  st->path, cmd, a->len, a->off, st->size);
		return -EINVAL;
	}
	return 0;
}

/* Parses the words of one command into 'a'. */
static int io_parse(const struct io_state *st, const struct io_command *cmd, int n, char **words,
		    struct io_args *a)
{
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt(n, words, cmd->opts)) != -1) {
		if (c == 'P' && io_parse_byte(cmd->name, optarg, &a->pattern) < 0) {
			return -EINVAL;
		} else if (c == 'z') {
			a->zero = true;
		} else if (c == 'q') {
			a->quiet = true;
		} else if (c == ':' || c == '?') {
			cli_error("%s: %s option '-%c'", cmd->name,
				  c == ':' ? "missing the argument of" : "unknown", optopt);
			return -EINVAL;
		}
	}
	if (n - optind != (cmd->range ? 2 : 0)) {
		cli_error("%s: expected %s", cmd->name,
			  cmd->range ? "OFF and LEN" : "no arguments");
		return -EINVAL;
	}
	if (!cmd->range) {
		return 0;
	}
	if (io_parse_num(cmd->name, "offset", words[optind], &a->off) < 0 ||
	    io_parse_num(cmd->name, "length", words[optind + 1], &a->len) < 0) {
		return -EINVAL;
	}
	return io_check_range(st, cmd->name, a);
}

/* Splits 'line' at blanks in place; returns the word count or -E2BIG. */
static int io_split(char *line, char **words, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *w = strtok_r(line, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == max) {
			return -E2BIG;
		}
		words[n++] = w;
	}
	return n;
}

static int io_exec(struct io_state *st, const char *line)
{
	char *words[IO_MAX_WORDS + 1];
	struct io_args a = {.pattern = -1};
	const struct io_command *cmd;
	char *copy = strdup(line);
	int n, ret = -EINVAL;

	if (!copy) {
		cli_error("%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	n = io_split(copy, words, IO_MAX_WORDS);
	if (n == 0 || words[0][0] == '#') {
		ret = 0;
		goto out;
	}
	if (n < 0) {
		cli_error("command '%s' has too many words", line);
		goto out;
	}
	words[n] = NULL;
	cmd = io_find(words[0]);
	if (!cmd) {
		cli_error("unknown io command '%s' (try 'help')", words[0]);
		goto out;
	}
	if (io_parse(st, cmd, n, words, &a) < 0) {
		goto out;
	}
	if (cmd->writes && st->read_only) {
		cli_error("%s: %s: the image is open read-only", st->path, cmd->name);
		goto out;
	}
	ret = cmd->run(st, &a);
out:
	free(copy);
	return ret;
}

/* Reads commands from standard input.  At a terminal a failure is shown
 * and the session goes on; from a script it stops, as -c does. */
static int io_stdin(struct io_state *st)
{
	bool tty = isatty(STDIN_FILENO);
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;

	for (;;) {
		if (tty) {
			printf("vdisk-io> ");
			fflush(stdout);
		}
		if (getline(&line, &cap, stdin) < 0) {
			break;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (!strcmp(line, "quit") || !strcmp(line, "exit") || !strcmp(line, "q")) {
			break;
		}
		ret = io_exec(st, line);
		/* Whoever feeds a pipe waits for each answer before the next. */
		fflush(stdout);
		if (ret < 0 && !tty) {
			break;
		}
	}
	free(line);
	return ret;
}

/* Decides read-only from the first word of each command. */
static bool io_only_reads(char **cmds, int ncmds)
{
	for (int i = 0; i < ncmds; i++) {
		const char *s = cmds[i] + strspn(cmds[i], " \t");
		size_t len = strcspn(s, " \t");

		bool reads = len == 4 && (!strncmp(s, "read", 4) || !strncmp(s, "help", 4));

		if (len && !reads) {
			return false;
		}
	}
	return ncmds > 0;
}

struct io_opts {
	char **cmds;
	int ncmds;
	bool read_only;
	bool quiet;
	bool force_share;
	unsigned cache_flags;
};

static int parse_cache(const char *cmd, const char *str, unsigned *flagsp)
{
	if (!strcmp(str, "none")) {
		*flagsp = 0;
	} else if (!strcmp(str, "writeback")) {
		*flagsp = VD_OPEN_BUFFERED;
	} else {
		cli_usage_error(cmd, "invalid cache mode '%s' (none or writeback)", str);
		return -EINVAL;
	}
	return 0;
}

static int io_parse_opts(int argc, char **argv, struct io_opts *io)
{
	static const struct option longopts[] = {
	    {"cmd", required_argument, NULL, 'c'},
	    {"read-only", no_argument, NULL, 'r'},
	    {"force-share", no_argument, NULL, 'U'},
	    {"cache", required_argument, NULL, 't'},
	    {"nocache", no_argument, NULL, 'n'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	enum vd_format fmt = VD_FORMAT_AUTO;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:rUt:nf:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			io->cmds[io->ncmds++] = optarg;
			break;
		case 'r':
			io->read_only = true;
			break;
		case 'U':
			io->force_share = true;
			break;
		case 't':
			if (parse_cache("io", optarg, &io->cache_flags) < 0) {
				return -EINVAL;
			}
			break;
		case 'n':
			io->cache_flags = 0;
			break;
		case 'f':
			if (parse_format("io", optarg, &fmt) < 0 || fmt != VD_FORMAT_VDISK) {
				if (fmt != VD_FORMAT_AUTO) {
					cli_usage_error("io", "only vdisk images are supported");
				}
				return -EINVAL;
			}
			break;
		case 'q':
			io->quiet = true;
			break;
		case 'h':
			fputs(io_help, stdout);
			return 1;
		default:
			cli_getopt_error("io", c, argv);
			return -EINVAL;
		}
	}
	/* As qemu-io: sharing an image with its writer is only safe for
	 * reading. */
	if (io->force_share && !io->read_only && !io_only_reads(io->cmds, io->ncmds)) {
		cli_usage_error("io", "-U (--force-share) needs a read-only open (-r)");
		return -EINVAL;
	}
	return want_args("io", argc, argv, 1, "FILE");
}

static int io_run(struct io_state *st, const struct io_opts *io)
{
	if (io->ncmds == 0) {
		return io_stdin(st);
	}
	for (int i = 0; i < io->ncmds; i++) {
		int ret = io_exec(st, io->cmds[i]);

		if (ret < 0) {
			return ret;
		}
	}
	return 0;
}

int vdisk_cmd_io(int argc, char **argv)
{
	struct io_opts io = {.cache_flags = VD_OPEN_BUFFERED};
	struct io_state st = {0};
	int ret, status = CLI_EXIT_FAILURE;

	io.cmds = calloc(argc, sizeof(*io.cmds));
	if (!io.cmds) {
		cli_error("%s", strerror(ENOMEM));
		return CLI_EXIT_FAILURE;
	}
	ret = io_parse_opts(argc, argv, &io);
	if (ret != 0) {
		free(io.cmds);
		return ret > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	st.path = argv[optind];
	st.quiet = io.quiet;
	st.read_only = io.read_only || io_only_reads(io.cmds, io.ncmds);
	st.buf = buf_alloc(CHUNK_BYTES);
	if (!st.buf) {
		cli_error("%s", strerror(ENOMEM));
		goto out_free;
	}
#ifdef VDISK_RBD
	{
		struct errmsg err = {{0}};
		struct vrbd_image *rimg;
		struct vrbd_spec vs;

		ret = vdisk_rbd_spec(st.path, &vs);
		if (ret < 0) {
			goto out_free;
		}
		if (ret > 0) {
			/* Writing takes the exclusive lock, as vdiskd does: a served
			 * image is refused, never written by two at once. */
			ret = vrbd_open(&vs, st.read_only ? 0 : VRBD_WRITABLE, &rimg, &err);
			if (ret < 0) {
				cli_error_ret(&err, st.path, ret);
				goto out_free;
			}
			st.ops = &rbd_io_ops;
			st.h = rimg;
			if (rbd_get_size(rimg->rbd, &st.size) == 0 && io_run(&st, &io) == 0) {
				status = CLI_EXIT_OK;
			}
			fflush(stdout);
			if (!st.read_only && rbd_flush(rimg->rbd) < 0) {
				status = CLI_EXIT_FAILURE;
			}
			vrbd_close(rimg);
			goto out_free;
		}
	}
#endif
	if (vdisk_open_image(st.path,
		       io.cache_flags | (st.read_only ? 0 : VD_OPEN_RDWR) |
			   (io.force_share ? VD_OPEN_FORCE_SHARE : 0),
		       &st.img) < 0) {
		goto out_free;
	}
	st.ops = &vdisk_io_ops;
	st.h = st.img;
	st.size = vd_size_bytes(st.img);
	if (io_run(&st, &io) == 0) {
		status = CLI_EXIT_OK;
	}
	fflush(stdout);
	if (close_image(st.img, st.path) < 0) {
		status = CLI_EXIT_FAILURE;
	}
out_free:
	free(st.buf);
	free(io.cmds);
	return status;
}

/*
 * bench
 */

static const char bench_help[] =
    "Usage: vdisk bench [-c COUNT] [-d DEPTH] [-s SIZE] [-o OFFSET] [-S STEP] [-w]\n"
    "                   [--pattern=seq|rand] [--flush-interval=N] [-t CACHE] FILE\n"
    "\n"
    "Measures I/O on the vdisk image FILE like qemu-img bench: sends COUNT\n"
    "requests of SIZE bytes through the asynchronous API, keeping DEPTH in\n"
    "flight, and reports the time taken, operations and megabytes (10^6 bytes)\n"
    "per second.  A Ceph RBD image is measured through librbd's asynchronous\n"
    "calls (cache none: librbd's cache off).\n"
    "\n"
    "  -c, --count=COUNT    requests to send (default 75000)\n"
    "  -d, --depth=DEPTH    requests in flight (default 64)\n"
    "  -s, --size=SIZE      bytes per request, a multiple of 512 (default 4K)\n"
    "  -o, --offset=OFFSET  offset of the first request (default 0)\n"
    "  -S, --step=STEP      distance between requests (default SIZE); offsets\n"
    "                       wrap to 0 past the end of the image\n"
    "  -w, --write          write (0xcd bytes) instead of reading\n"
    "      --pattern=MODE   seq (default): offsets advance by STEP;\n"
    "                       rand: uniformly random SIZE-aligned offsets in\n"
    "                       [OFFSET, image size), the same sequence every run\n"
    "      --flush-interval=N\n"
    "                       with -w, wait for requests in flight and flush\n"
    "                       after every N requests\n"
    "  -t, --cache=CACHE    none (default, O_DIRECT) or writeback (page cache)\n"
    "  -q, --quiet          print only the ops/s line\n"
    "  -h, --help           show this help\n";

struct bench_opts {
	uint64_t count;
	uint64_t depth;
	uint64_t size;
	uint64_t offset;
	uint64_t step;
	bool step_set;
	bool write;
	bool random;
	bool quiet;
	uint64_t flush_interval;
	unsigned cache_flags;
};

struct bench;

struct bench_req {
	struct bench *b;
	struct iovec iov;
	uint64_t off;
};

struct bench {
	const struct bench_opts *bo;
	struct vd_ctx *ctx;
	struct vd_image *img;
#ifdef VDISK_RBD
	struct vrbd_image *rimg; /* a Ceph RBD image instead of 'img' */
	struct vrbd_queue *rq;
#endif
	const char *path;
	uint64_t image_size;
	uint64_t next_off; /* offset of the next request */
	uint64_t submitted;
	uint64_t completed;
	struct bench_req *reqs;	 /* 'depth' of them */
	struct bench_req **idle; /* stack of requests not in flight */
	size_t nidle;
	int error; /* first failure */
	uint64_t error_off;
	bool flush_done;
	int flush_ret;
};

static void bench_req_done(void *arg, int ret)
{
	struct bench_req *r = arg;
	struct bench *b = r->b;

	if (ret < 0 && b->error == 0) {
		b->error = ret;
		b->error_off = r->off;
	}
	b->completed++;
	b->idle[b->nidle++] = r;
}

static void bench_flush_done(void *arg, int ret)
{
	struct bench *b = arg;

	b->flush_ret = ret;
	b->flush_done = true;
}

/* lrand48() gives 31 bits; two make a 62-bit number, whose modulo bias
 * over any image's count of slots is negligible. */
static uint64_t bench_random_offset(const struct bench *b)
{
	uint64_t slots = (b->image_size - b->bo->offset) / b->bo->size;
	uint64_t r = ((uint64_t)lrand48() << 31) ^ (uint64_t)lrand48();

	return b->bo->offset + (r % slots) * b->bo->size;
}

/* qemu-img bench's stepping: advance by STEP modulo the image size; a
 * request that would cross the end starts over at 0 instead. */
static void bench_advance(struct bench *b)
{
	uint64_t next;

	if (b->bo->random) {
		b->next_off = bench_random_offset(b);
		return;
	}
	next = b->next_off + b->bo->step % b->image_size;
	if (next >= b->image_size) {
		next -= b->image_size;
	}
	if (b->bo->size > b->image_size - next) {
		next = 0;
	}
	b->next_off = next;
}

static unsigned bench_inflight(const struct bench *b)
{
#ifdef VDISK_RBD
	if (b->rq) {
		return vrbd_queue_inflight(b->rq);
	}
#endif
	return vd_ctx_inflight(b->ctx);
}

static int bench_submit(struct bench *b)
{
	struct bench_req *r = b->idle[b->nidle - 1];
	int ret;

	r->off = b->next_off;
#ifdef VDISK_RBD
	if (b->rq) {
		ret = b->bo->write ? vrbd_writev(b->rq, &r->iov, 1, r->off, bench_req_done, r)
				   : vrbd_readv(b->rq, &r->iov, 1, r->off, bench_req_done, r);
	} else
#endif
	if (b->bo->write) {
		ret = vd_submit_writev(b->ctx, b->img, &r->iov, 1, r->off, bench_req_done, r);
	} else {
		ret = vd_submit_readv(b->ctx, b->img, &r->iov, 1, r->off, bench_req_done, r);
	}
	if (ret < 0) {
		return ret;
	}
	b->nidle--;
	b->submitted++;
	bench_advance(b);
	return 0;
}

static int bench_poll(struct bench *b)
{
	int ret;

#ifdef VDISK_RBD
	if (b->rq) {
		ret = vrbd_queue_poll(b->rq, -1);
		return ret < 0 ? ret : 0;
	}
#endif
	ret = vd_ctx_poll(b->ctx, 1);
	return ret < 0 ? ret : 0;
}

/* qemu-img bench drains before each flush, so the flush covers every
 * write sent before it. */
static int bench_flush(struct bench *b)
{
	int ret;

	while (bench_inflight(b) > 0) {
		ret = bench_poll(b);
		if (ret < 0) {
			return ret;
		}
	}
	b->flush_done = false;
#ifdef VDISK_RBD
	if (b->rq) {
		ret = vrbd_flush(b->rq, bench_flush_done, b);
	} else
#endif
	ret = vd_submit_flush(b->ctx, b->img, bench_flush_done, b);
	while (ret == 0 && !b->flush_done) {
		ret = bench_poll(b);
	}
	return ret < 0 ? ret : b->flush_ret;
}

/* Keeps 'depth' requests in flight until 'count' have completed. */
static int bench_loop(struct bench *b)
{
	const struct bench_opts *bo = b->bo;
	int ret = 0;

	while (b->completed < bo->count && b->error == 0 && ret == 0) {
		while (b->submitted < bo->count && b->nidle > 0 && ret == 0) {
			ret = bench_submit(b);
			if (ret == -EAGAIN && bench_inflight(b) > 0) {
				ret = 0;
				break;
			}
			if (ret == 0 && bo->flush_interval &&
			    b->submitted % bo->flush_interval == 0) {
				ret = bench_flush(b);
			}
		}
		if (ret == 0 && bench_inflight(b) > 0) {
			ret = bench_poll(b);
		}
	}
	while (bench_inflight(b) > 0 && bench_poll(b) == 0) {
	}
	if (ret < 0) {
		cli_error("%s: cannot send a request at offset %" PRIu64 ": %s", b->path,
			  b->next_off, strerror(-ret));
		return ret;
	}
	if (b->error < 0) {
		cli_error("%s: %s of %" PRIu64 " bytes at offset %" PRIu64 " failed: %s", b->path,
			  bo->write ? "write" : "read", bo->size, b->error_off,
			  strerror(-b->error));
		return b->error;
	}
	return 0;
}

static int bench_setup(struct bench *b)
{
	const struct bench_opts *bo = b->bo;
	int ret;

	b->reqs = calloc(bo->depth, sizeof(*b->reqs));
	b->idle = calloc(bo->depth, sizeof(*b->idle));
	if (!b->reqs || !b->idle) {
		cli_error("%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < bo->depth; i++) {
		struct bench_req *r = &b->reqs[i];

		r->b = b;
		r->iov.iov_len = bo->size;
		r->iov.iov_base = buf_alloc(bo->size);
		if (!r->iov.iov_base) {
			cli_error("cannot allocate %" PRIu64 " buffers of %" PRIu64 " bytes",
				  bo->depth, bo->size);
			return -ENOMEM;
		}
		memset(r->iov.iov_base, bo->write ? DEFAULT_PATTERN : 0, bo->size);
		b->idle[b->nidle++] = r;
	}
#ifdef VDISK_RBD
	if (b->rimg) {
		ret = vrbd_queue_create(b->rimg, &b->rq);
		if (ret < 0) {
			cli_error("%s: %s", b->path, strerror(-ret));
		}
		return ret;
	}
#endif
	ret = vd_ctx_create((unsigned)bo->depth, &b->ctx);
	if (ret < 0) {
		cli_error("cannot create an I/O context of depth %" PRIu64 ": %s", bo->depth,
			  strerror(-ret));
	}
	return ret;
}

static void bench_teardown(struct bench *b)
{
	if (b->ctx) {
		vd_ctx_destroy(b->ctx);
	}
#ifdef VDISK_RBD
	vrbd_queue_destroy(b->rq);
	b->rq = NULL;
#endif
	if (b->reqs) {
		for (uint64_t i = 0; i < b->bo->depth; i++) {
			free(b->reqs[i].iov.iov_base);
		}
	}
	free(b->reqs);
	free(b->idle);
}

/* Checks what needs the image's size: every request must fit in it. */
static int bench_check_range(struct bench *b)
{
	const struct bench_opts *bo = b->bo;

	if (bo->offset > b->image_size || bo->size > b->image_size - bo->offset) {
		cli_error("%s: a request of %" PRIu64 " bytes at offset %" PRIu64
			  " does not fit in the virtual size %" PRIu64,
			  b->path, bo->size, bo->offset, b->image_size);
		return -EINVAL;
	}
	return 0;
}

static void bench_print_header(const struct bench *b)
{
	const struct bench_opts *bo = b->bo;

	printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %" PRIu64 " in parallel ",
	       bo->count, bo->write ? "write" : "read", bo->size, bo->depth);
	if (bo->random) {
		printf("(random offsets from %" PRIu64 ", aligned to %" PRIu64 ")\n", bo->offset,
		       bo->size);
	} else {
		printf("(starting at offset %" PRIu64 ", step size %" PRIu64 ")\n", bo->offset,
		       bo->step);
	}
	if (bo->flush_interval) {
		printf("Sending flush every %" PRIu64 " requests\n", bo->flush_interval);
	}
	fflush(stdout);
}

static void bench_print_result(const struct bench *b, double secs)
{
	double ops = secs > 0 ? (double)b->completed / secs : 0;

	if (!b->bo->quiet) {
		printf("Run completed in %.3f seconds.\n", secs);
	}
	printf("ops/s: %.0f  MB/s: %.2f\n", ops, ops * (double)b->bo->size / 1e6);
}

static int bench_run(struct bench *b)
{
	double start;
	int ret;

	if (b->img) {
		b->image_size = vd_size_bytes(b->img);
	}
	ret = bench_check_range(b);
	if (ret < 0) {
		return ret;
	}
	ret = bench_setup(b);
	if (ret < 0) {
		return ret;
	}
	srand48(1);
	b->next_off = b->bo->random ? bench_random_offset(b) : b->bo->offset;
	if (!b->bo->quiet) {
		bench_print_header(b);
	}
	start = cli_now();
	ret = bench_loop(b);
	if (ret == 0) {
		bench_print_result(b, cli_now() - start);
	}
	return ret;
}

/* Depths past this gain nothing and would only pin memory in the ring. */
#define BENCH_MAX_DEPTH 4096u

static int bench_parse_opt(int c, char **argv, struct bench_opts *bo)
{
	switch (c) {
	case 'c':
		return parse_count_arg("bench", "count", optarg, UINT64_MAX, &bo->count);
	case 'd':
		return parse_count_arg("bench", "depth", optarg, BENCH_MAX_DEPTH, &bo->depth);
	case 's':
		return parse_size_arg("bench", "request size", optarg, &bo->size);
	case 'o':
		return parse_size_arg("bench", "offset", optarg, &bo->offset);
	case 'S':
		bo->step_set = true;
		return parse_size_arg("bench", "step", optarg, &bo->step);
	case 'w':
		bo->write = true;
		return 0;
	case 'q':
		bo->quiet = true;
		return 0;
	case 't':
		return parse_cache("bench", optarg, &bo->cache_flags);
	case OPT_PATTERN:
		if (strcmp(optarg, "seq") && strcmp(optarg, "rand")) {
			cli_usage_error("bench", "invalid pattern '%s' (seq or rand)", optarg);
			return -EINVAL;
		}
		bo->random = !strcmp(optarg, "rand");
		return 0;
	case OPT_FLUSH_INTERVAL:
		return parse_count_arg("bench", "flush interval", optarg, UINT64_MAX,
				       &bo->flush_interval);
	default:
		cli_getopt_error("bench", c, argv);
		return -EINVAL;
	}
}

static int bench_check_opts(const struct bench_opts *bo)
{
	if (bo->depth == 0) {
		cli_usage_error("bench", "the depth must be at least 1");
	} else if (bo->size == 0 || bo->size % VD_SECTOR_BYTES || bo->size > UINT32_MAX) {
		cli_usage_error("bench", "the request size must be a multiple of %u bytes",
				VD_SECTOR_BYTES);
	} else if (bo->offset % VD_SECTOR_BYTES || bo->step % VD_SECTOR_BYTES) {
		cli_usage_error("bench", "the offset and step must be multiples of %u bytes",
				VD_SECTOR_BYTES);
	} else if (bo->flush_interval && !bo->write) {
		cli_usage_error("bench", "--flush-interval applies only to write runs (-w)");
	} else {
		return 0;
	}
	return -EINVAL;
}

static int bench_parse(int argc, char **argv, struct bench_opts *bo)
{
	static const struct option longopts[] = {
	    {"count", required_argument, NULL, 'c'},
	    {"depth", required_argument, NULL, 'd'},
	    {"size", required_argument, NULL, 's'},
	    {"offset", required_argument, NULL, 'o'},
	    {"step", required_argument, NULL, 'S'},
	    {"write", no_argument, NULL, 'w'},
	    {"cache", required_argument, NULL, 't'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"pattern", required_argument, NULL, OPT_PATTERN},
	    {"flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:d:s:o:S:wt:qh", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(bench_help, stdout);
			return 1;
		}
		if (bench_parse_opt(c, argv, bo) < 0) {
			return -EINVAL;
		}
	}
	if (!bo->step_set) {
		bo->step = bo->size;
	}
	if (bench_check_opts(bo) < 0) {
		return -EINVAL;
	}
	return want_args("bench", argc, argv, 1, "FILE");
}

int vdisk_cmd_bench(int argc, char **argv)
{
	struct bench_opts bo = {.count = 75000, .depth = 64, .size = 4096};
	struct bench b = {.bo = &bo};
	int ret;

	ret = bench_parse(argc, argv, &bo);
	if (ret != 0) {
		return ret > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	b.path = argv[optind];
#ifdef VDISK_RBD
	{
		struct errmsg err = {{0}};
		struct vrbd_spec vs;

		ret = vdisk_rbd_spec(b.path, &vs);
		if (ret < 0) {
			return CLI_EXIT_FAILURE;
		}
		/* librbd's cache as -t says (none by default, like O_DIRECT);
		 * writing takes the exclusive lock, as vdisk io does. */
		if (ret > 0) {
			ret = vrbd_open(&vs,
					(bo.write ? VRBD_WRITABLE : 0) |
						(bo.cache_flags & VD_OPEN_BUFFERED ? VRBD_CACHE : 0),
					&b.rimg, &err);
			if (ret == 0) {
				ret = rbd_get_size(b.rimg->rbd, &b.image_size);
			}
			if (ret == 0) {
				ret = bench_run(&b);
			} else {
				cli_error_ret(&err, b.path, ret);
			}
			bench_teardown(&b);
			vrbd_close(b.rimg);
			return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
		}
	}
#endif
	if (vdisk_open_image(b.path, bo.cache_flags | (bo.write ? VD_OPEN_RDWR : 0), &b.img) < 0) {
		return CLI_EXIT_FAILURE;
	}
	ret = bench_run(&b);
	bench_teardown(&b);
	if (close_image(b.img, b.path) < 0) {
		ret = -EIO;
	}
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
