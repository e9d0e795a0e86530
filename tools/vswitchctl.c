/* SPDX-License-Identifier: MIT */
/* vswitchctl.c: the command-line client of vswitchd.  Checks a command's
 * arguments, sends the command as one JSON-RPC 2.0 request over the daemon's
 * control socket (docs/vswitch-rpc.md) and prints the answer: as text through
 * vswitchctl-fmt.c, or as JSON.  It keeps no state, so a script can do the
 * same with socat.  The manual is docs/man/vswitchctl.1.md. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cliutil.h"
#include "vswitchctl-fmt.h"

#define VSWITCHCTL_VERSION "0.1.0"
#define DEFAULT_CTL_PATH "/run/vswitch/vswitchd.sock"
#define DEFAULT_TIMEOUT_S 10
/* poll() counts milliseconds in an int. */
#define MAX_TIMEOUT_S (INT_MAX / 1000 - 1)

/* The longest answer accepted, newline included.  A show or fdb-show of a
 * switch at its largest (16 Mi MAC entries aside) is a few MiB; anything
 * longer is a daemon gone wrong, and must not eat the client's memory. */
#define MAX_LINE_BYTES (16u << 20)
/* First size of the receive buffer; it doubles up to MAX_LINE_BYTES. */
#define RECV_BUF_BYTES 65536u

/* How often capture --wait asks whether the capture still runs: soon
 * enough to feel immediate, seldom enough to cost the daemon nothing. */
#define CAPTURE_POLL_MS 100

/* Limits of docs/vswitch-rpc.md, and of the vswitch library behind it
 * (vswitch.h) where the protocol inherits them unsaid. */
#define NAME_MAX_BYTES 63
#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"
#define IFNAME_MAX_BYTES 15 /* Linux's IFNAMSIZ less the NUL */
#define VLAN_MIN 1
#define VLAN_MAX 4094
#define QUEUES_MAX 8
#define MTU_MIN 68 /* the least Linux lets an Ethernet device have */
#define MTU_MAX 9000
#define MAC_CAPACITY_MAX 16777216
#define SOCKET_PATH_MAX_BYTES (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Parsing functions return this to go on, or else the exit status. */
#define PARSED (-1)

/* ------------------------------------------------------------ arguments */

/* What an operand or option value is, which decides how it is checked and
 * how it travels in the request's params. */
enum arg_kind {
	ARG_NAME,   /* bridge or port name: 1-63 of NAME_CHARS */
	ARG_IFNAME, /* kernel interface name */
	ARG_PATH,   /* a file; sent absolute, the daemon has its own cwd */
	ARG_VLAN,   /* VLAN id, 1-4094; sent as a number */
	ARG_MAC,    /* sent in lower case */
	ARG_MODE,   /* VLAN mode */
	ARG_TRUNKS, /* VLAN list, sent as typed */
	ARG_TYPE,   /* port type */
	ARG_UINT,   /* integer 'min'..'max'; sent as a number */
	ARG_FLAG,   /* an option without value; sent as true */
	ARG_WAIT,   /* capture --wait: for vswitchctl only, not sent */
};

struct arg {
	const char *name;   /* option name without "--", or the operand as the
			     * synopsis spells it */
	const char *member; /* params member it fills */
	enum arg_kind kind;
	const char *what;    /* names the value in messages */
	uint64_t min, max;   /* ARG_UINT: range; ARG_PATH: max bytes (0: any) */
	const char *metavar; /* option's value in the help; NULL: no value */
	const char *help;    /* options only */
};

static const char *const vlan_modes[] = {
    "access", "trunk", "native-untagged", "native-tagged", "dot1q-tunnel", NULL,
};
static const char *const port_types[] = {
    "vhost-user", "vhost-user-client", "host", "uplink", NULL,
};

/* A request being built from the command line. */
struct request {
	struct json_object *params; /* owned */
	bool wait;		    /* capture --wait */
	bool help;		    /* --help: print it and do nothing else */
	bool json;		    /* print the result as JSON */
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++) {
		if (!strcmp(*list, s)) {
			return true;
		}
	}
	return false;
}

static int value_name(const char *cmd, const struct arg *a, const char *text,
		      struct json_object **valp)
{
	size_t len = strlen(text);

	if (len == 0 || len > NAME_MAX_BYTES || strspn(text, NAME_CHARS) != len) {
		cli_usage_error(cmd,
				"bad %s '%s': must be 1-%d letters, digits, '_', '.', ':' or '-'",
				a->what, text, NAME_MAX_BYTES);
		return CLI_EXIT_USAGE;
	}
	*valp = json_object_new_string(text);
	return PARSED;
}

/* The kernel's dev_valid_name(), so that a name it would refuse fails here
 * with a message rather than deep in the daemon. */
static int value_ifname(const char *cmd, const struct arg *a, const char *text,
			struct json_object **valp)
{
	size_t len = strlen(text);
	bool ok = len > 0 && len <= IFNAME_MAX_BYTES && strcmp(text, ".") && strcmp(text, "..");

	for (const char *p = text; ok && *p; p++) {
		ok = *p != '/' && *p != ':' && !isspace((unsigned char)*p);
	}
	if (!ok) {
		cli_usage_error(cmd,
				"bad interface name '%s': must be 1-%d bytes without '/', ':' or "
				"blanks",
				text, IFNAME_MAX_BYTES);
		return CLI_EXIT_USAGE;
	}
	*valp = json_object_new_string(text);
	return PARSED;
}

/* Returns 'path' made absolute against our working directory, to free. */
static char *absolute_path(const char *path)
{
	char *cwd, *abs;

	if (path[0] == '/') {
		return strdup(path);
	}
	cwd = getcwd(NULL, 0);
	if (!cwd) {
		return NULL;
	}
	if (asprintf(&abs, "%s/%s", cwd, path) < 0) {
		abs = NULL;
	}
	free(cwd);
	return abs;
}

static int value_path(const char *cmd, const struct arg *a, const char *text,
		      struct json_object **valp)
{
	char *abs;

	if (!text[0]) {
		cli_usage_error(cmd, "the %s is empty", a->what);
		return CLI_EXIT_USAGE;
	}
	abs = absolute_path(text);
	if (!abs) {
		cli_error("%s: cannot make it absolute: %s", text, strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	if (a->max && strlen(abs) > a->max) {
		cli_usage_error(cmd, "%s '%s' is too long: at most %" PRIu64 " bytes", a->what, abs,
				a->max);
		free(abs);
		return CLI_EXIT_USAGE;
	}
	*valp = json_object_new_string(abs);
	free(abs);
	return PARSED;
}

static int value_vlan(const char *cmd, const struct arg *a, const char *text,
		      struct json_object **valp)
{
	uint64_t vid;

	if (cli_parse_u64(text, &vid) < 0 || vid < VLAN_MIN || vid > VLAN_MAX) {
		cli_usage_error(cmd, "bad VLAN id '%s': must be %d-%d", text, VLAN_MIN, VLAN_MAX);
		return CLI_EXIT_USAGE;
	}
	*valp = json_object_new_int((int)vid);
	return PARSED;
}

static int value_uint(const char *cmd, const struct arg *a, const char *text,
		      struct json_object **valp)
{
	uint64_t v;

	if (cli_parse_u64(text, &v) < 0 || v < a->min || v > a->max) {
		cli_usage_error(cmd, "bad %s '%s': must be %" PRIu64 "-%" PRIu64, a->what, text,
				a->min, a->max);
		return CLI_EXIT_USAGE;
	}
	*valp = json_object_new_int64((int64_t)v);
	return PARSED;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Six bytes of two hex digits each, colon separated: the form show and
 * fdb-show print, so that what one prints another takes. */
static int value_mac(const char *cmd, const struct arg *a, const char *text,
		     struct json_object **valp)
{
	const char *p = text;
	unsigned char mac[6];
	char canon[18];

	for (int i = 0; i < 6; i++, p += 3) {
		int hi = hex_digit(p[0]), lo = hi < 0 ? -1 : hex_digit(p[1]);

		if (lo < 0 || p[2] != (i < 5 ? ':' : '\0')) {
			cli_usage_error(cmd,
					"bad MAC address '%s': must be six hex bytes like "
					"52:54:00:12:34:56",
					text);
			return CLI_EXIT_USAGE;
		}
		mac[i] = (unsigned char)(hi << 4 | lo);
	}
	snprintf(canon, sizeof(canon), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
	*valp = json_object_new_string(canon);
	return PARSED;
}

static int value_choice(const char *cmd, const struct arg *a, const char *text,
			const char *const *choices, const char *spelled, struct json_object **valp)
{
	if (!in_list(choices, text)) {
		cli_usage_error(cmd, "bad %s '%s': must be %s", a->what, text, spelled);
		return CLI_EXIT_USAGE;
	}
	*valp = json_object_new_string(text);
	return PARSED;
}

/* One VLAN id of a list at '*pp', blanks around it skipped.  On failure
 * leaves the reason in 'why'. */
static bool read_list_vid(const char *text, const char **pp, unsigned *vidp, char *why,
			  size_t why_size)
{
	const char *p = *pp, *start;
	unsigned vid = 0;

	while (*p == ' ' || *p == '\t') {
		p++;
	}
	if (!isdigit((unsigned char)*p)) {
		snprintf(why, why_size, "expected a VLAN id at offset %td", p - text);
		return false;
	}
	/* Values stop growing past VLAN_MAX: out of range either way, and a
	 * long run of digits cannot overflow. */
	for (start = p; isdigit((unsigned char)*p); p++) {
		vid = vid > VLAN_MAX ? vid : vid * 10 + (unsigned)(*p - '0');
	}
	if (vid < VLAN_MIN || vid > VLAN_MAX) {
		snprintf(why, why_size, "%.*s is not a VLAN id %d-%d", (int)(p - start), start,
			 VLAN_MIN, VLAN_MAX);
		return false;
	}
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	*pp = p;
	*vidp = vid;
	return true;
}

/* Checks a VLAN list as the daemon reads it (vlan_set_parse() in vlan.h):
 * VLAN ids and ranges a-b with a <= b, comma separated, blanks allowed
 * around items; empty or blank is the empty list. */
static bool trunks_ok(const char *text, char *why, size_t why_size)
{
	const char *p = text + strspn(text, " \t");
	unsigned first, last;

	if (!*p) {
		return true;
	}
	for (;;) {
		if (!read_list_vid(text, &p, &first, why, why_size)) {
			return false;
		}
		last = first;
		if (*p == '-') {
			p++;
			if (!read_list_vid(text, &p, &last, why, why_size)) {
				return false;
			}
		}
		if (first > last) {
			snprintf(why, why_size, "range %u-%u runs backwards", first, last);
			return false;
		}
		if (!*p) {
			return true;
		}
		if (*p != ',') {
			snprintf(why, why_size, "unexpected '%c' at offset %td", *p, p - text);
			return false;
		}
		p++;
	}
}

static int value_trunks(const char *cmd, const char *text, struct json_object **valp)
{
	char why[128];

	if (!trunks_ok(text, why, sizeof(why))) {
		cli_usage_error(cmd, "bad VLAN list '%s': %s", text, why);
		return CLI_EXIT_USAGE;
	}
	*valp = json_object_new_string(text);
	return PARSED;
}

/* Checks 'text' as 'a' wants it and stores its JSON form in '*valp'.
 * Returns PARSED, or the exit status after printing why not. */
static int arg_value(const char *cmd, const struct arg *a, const char *text,
		     struct json_object **valp)
{
	switch (a->kind) {
	case ARG_NAME:
		return value_name(cmd, a, text, valp);
	case ARG_IFNAME:
		return value_ifname(cmd, a, text, valp);
	case ARG_PATH:
		return value_path(cmd, a, text, valp);
	case ARG_VLAN:
		return value_vlan(cmd, a, text, valp);
	case ARG_MAC:
		return value_mac(cmd, a, text, valp);
	case ARG_MODE:
		return value_choice(cmd, a, text, vlan_modes,
				    "access, trunk, native-untagged, native-tagged or dot1q-tunnel",
				    valp);
	case ARG_TRUNKS:
		return value_trunks(cmd, text, valp);
	case ARG_TYPE:
		return value_choice(cmd, a, text, port_types,
				    "vhost-user, vhost-user-client, host or uplink", valp);
	case ARG_UINT:
		return value_uint(cmd, a, text, valp);
	case ARG_FLAG:
		*valp = json_object_new_boolean(1);
		return PARSED;
	case ARG_WAIT: /* add_arg() keeps it from the params */
		break;
	}
	return CLI_EXIT_USAGE;
}

static int add_arg(const char *cmd, const struct arg *a, const char *text, struct request *req)
{
	struct json_object *val = NULL;
	int ret;

	if (a->kind == ARG_WAIT) {
		req->wait = true;
		return PARSED;
	}
	ret = arg_value(cmd, a, text, &val);
	if (ret == PARSED) {
		json_object_object_add(req->params, a->member, val);
	}
	return ret;
}

/* ---------------------------------------------------- the command table */

struct rpc;

struct command {
	const char *name;	    /* also the JSON-RPC method */
	const char *synopsis;	    /* what follows the name */
	const char *summary;	    /* one line for the help */
	const struct arg *operands; /* in synopsis order */
	size_t n_operands;
	size_t min_operands; /* the rest are optional */
	bool optional_first; /* the optional operand leads: [BR] PORT */
	const struct arg *options;
	size_t n_options;
	/* Checks that span arguments; returns PARSED or the exit status. */
	int (*check)(const char *cmd, struct json_object *params);
	/* Runs the command; NULL: send the request and print the result. */
	int (*run)(const struct command *cmd, struct request *req, struct rpc *rpc);
	/* Prints the result as text; NULL: print nothing, like ovs-vsctl. */
	void (*print)(FILE *f, struct json_object *result);
};

#define OPERANDS(a) .operands = (a), .n_operands = ARRAY_SIZE(a)
#define OPTIONS(a) .options = (a), .n_options = ARRAY_SIZE(a)

#define OPERAND_BR                                                                                 \
	{                                                                                          \
		.name = "BR", .member = "bridge", .kind = ARG_NAME, .what = "bridge name"          \
	}
#define OPERAND_PORT                                                                               \
	{                                                                                          \
		.name = "PORT", .member = "port", .kind = ARG_NAME, .what = "port name"            \
	}
#define OPERAND_VLAN                                                                               \
	{                                                                                          \
		.name = "VLAN", .member = "vlan", .kind = ARG_VLAN, .what = "VLAN id"              \
	}
#define OPERAND_MAC                                                                                \
	{                                                                                          \
		.name = "MAC", .member = "mac", .kind = ARG_MAC, .what = "MAC address"             \
	}

#define OPTION_VLAN_MODE                                                                           \
	{                                                                                          \
		.name = "vlan-mode", .member = "vlan_mode", .kind = ARG_MODE, .what = "VLAN mode", \
		.metavar = "MODE",                                                                 \
		.help = "access (default), trunk, native-untagged, native-tagged or dot1q-tunnel"  \
	}
#define OPTION_TAG                                                                                 \
	{                                                                                          \
		.name = "tag", .member = "tag", .kind = ARG_VLAN, .metavar = "N",                  \
		.help = "the access, native or service VLAN, 1-4094"                               \
	}
#define OPTION_TRUNKS                                                                              \
	{                                                                                          \
		.name = "trunks", .member = "trunks", .kind = ARG_TRUNKS, .metavar = "LIST",       \
		.help = "VLANs a trunk carries, like 10,20-30 (\"\" for none)"                     \
	}
#define OPTION_MAC_LIMIT                                                                           \
	{                                                                                          \
		.name = "mac-limit", .member = "mac_limit", .kind = ARG_UINT, .what = "MAC limit", \
		.max = UINT32_MAX, .metavar = "N",                                                 \
		.help = "MACs the port may have learned at once (0: the bridge's capacity)"        \
	}

static const struct arg br_operands[] = {OPERAND_BR};
static const struct arg port_operands[] = {OPERAND_PORT};
static const struct arg br_port_operands[] = {OPERAND_BR, OPERAND_PORT};
static const struct arg fdb_add_operands[] = {OPERAND_BR, OPERAND_PORT, OPERAND_VLAN, OPERAND_MAC};
static const struct arg fdb_del_operands[] = {OPERAND_BR, OPERAND_VLAN, OPERAND_MAC};
static const struct arg capture_operands[] = {
    OPERAND_PORT,
    {.name = "FILE", .member = "file", .kind = ARG_PATH, .what = "capture file name"},
};

static const struct arg add_br_options[] = {
    {.name = "mac-aging",
     .member = "mac_aging_s",
     .kind = ARG_UINT,
     .what = "MAC aging time",
     .min = 1,
     .max = UINT32_MAX,
     .metavar = "S",
     .help = "seconds before an idle learned MAC is forgotten (default 300)"},
    {.name = "mac-capacity",
     .member = "mac_capacity",
     .kind = ARG_UINT,
     .what = "MAC table capacity",
     .min = 1,
     .max = MAC_CAPACITY_MAX,
     .metavar = "N",
     .help = "entries of the forwarding table (default 8192)"},
};

static const struct arg add_port_options[] = {
    {.name = "type",
     .member = "type",
     .kind = ARG_TYPE,
     .what = "port type",
     .metavar = "TYPE",
     .help = "vhost-user, vhost-user-client, host or uplink (required)"},
    {.name = "socket",
     .member = "socket",
     .kind = ARG_PATH,
     .what = "socket path",
     .max = SOCKET_PATH_MAX_BYTES,
     .metavar = "PATH",
     .help = "the vhost-user socket (vhost-user types, required)"},
    {.name = "ifname",
     .member = "ifname",
     .kind = ARG_IFNAME,
     .metavar = "NAME",
     .help = "the kernel interface (host: default PORT; uplink)"},
    OPTION_VLAN_MODE,
    OPTION_TAG,
    OPTION_TRUNKS,
    {.name = "queues",
     .member = "queues",
     .kind = ARG_UINT,
     .what = "queue count",
     .min = 1,
     .max = QUEUES_MAX,
     .metavar = "N",
     .help = "queue pairs offered to the guest (vhost-user types; default 1)"},
    {.name = "mtu",
     .member = "mtu",
     .kind = ARG_UINT,
     .what = "MTU",
     .min = MTU_MIN,
     .max = MTU_MAX,
     .metavar = "N",
     .help = "largest payload the port takes (default 1500)"},
    OPTION_MAC_LIMIT,
};

static const struct arg set_port_options[] = {
    OPTION_VLAN_MODE,
    OPTION_TAG,
    OPTION_TRUNKS,
    OPTION_MAC_LIMIT,
};

static const struct arg fdb_flush_options[] = {
    {.name = "port",
     .member = "port",
     .kind = ARG_NAME,
     .what = "port name",
     .metavar = "P",
     .help = "only the entries of port P"},
    {.name = "vlan",
     .member = "vlan",
     .kind = ARG_VLAN,
     .metavar = "N",
     .help = "only the entries of VLAN N"},
    {.name = "static",
     .member = "static",
     .kind = ARG_FLAG,
     .help = "static entries too (default: learned ones only)"},
};

static const struct arg capture_options[] = {
    {.name = "count",
     .member = "count",
     .kind = ARG_UINT,
     .what = "frame count",
     .min = 1,
     .max = INT64_MAX,
     .metavar = "N",
     .help = "stop after N frames"},
    {.name = "seconds",
     .member = "seconds",
     .kind = ARG_UINT,
     .what = "duration",
     .min = 1,
     .max = UINT32_MAX,
     .metavar = "S",
     .help = "stop after S seconds"},
    {.name = "wait",
     .kind = ARG_WAIT,
     .help = "wait for the capture to end (Ctrl-C stops it) and print the frames written"},
};

static bool has_param(struct json_object *params, const char *key)
{
	return json_object_object_get_ex(params, key, NULL);
}

static const char *param_string(struct json_object *params, const char *key)
{
	struct json_object *val;

	return json_object_object_get_ex(params, key, &val) ? json_object_get_string(val) : NULL;
}

/* VLAN members that contradict the mode ('mode' NULL: not given, the port
 * keeps its own, which only the daemon knows).  A mode given starts from
 * its defaults, so the ones that need a tag must be given one. */
static int check_vlan_members(const char *cmd, struct json_object *params, const char *mode)
{
	bool trunk = mode && !strcmp(mode, "trunk");
	bool has_trunks = mode && (trunk || !strncmp(mode, "native-", strlen("native-")));

	if (!mode) {
		return PARSED;
	}
	if (trunk && has_param(params, "tag")) {
		cli_usage_error(cmd,
				"--tag does not apply to --vlan-mode trunk (it has no untagged "
				"VLAN)");
		return CLI_EXIT_USAGE;
	}
	if (!has_trunks && has_param(params, "trunks")) {
		cli_usage_error(cmd, "--trunks does not apply to --vlan-mode %s", mode);
		return CLI_EXIT_USAGE;
	}
	/* Access alone has a default tag (1). */
	if (!trunk && strcmp(mode, "access") && !has_param(params, "tag")) {
		cli_usage_error(cmd, "--vlan-mode %s needs --tag", mode);
		return CLI_EXIT_USAGE;
	}
	return PARSED;
}

static int check_add_port(const char *cmd, struct json_object *params)
{
	const char *type = param_string(params, "type");
	const char *mode = param_string(params, "vlan_mode");
	bool vhost;

	if (!type) {
		cli_usage_error(cmd,
				"missing --type (vhost-user, vhost-user-client, host or uplink)");
		return CLI_EXIT_USAGE;
	}
	vhost = !strncmp(type, "vhost-user", strlen("vhost-user"));
	if (vhost && !has_param(params, "socket")) {
		cli_usage_error(cmd, "a %s port needs --socket PATH", type);
		return CLI_EXIT_USAGE;
	}
	if (!vhost && (has_param(params, "socket") || has_param(params, "queues"))) {
		cli_usage_error(cmd, "--%s applies to vhost-user ports only",
				has_param(params, "socket") ? "socket" : "queues");
		return CLI_EXIT_USAGE;
	}
	if (vhost && has_param(params, "ifname")) {
		cli_usage_error(cmd, "--ifname applies to host and uplink ports only");
		return CLI_EXIT_USAGE;
	}
	return check_vlan_members(cmd, params, mode ? mode : "access");
}

static int check_set_port(const char *cmd, struct json_object *params)
{
	/* One member is the PORT operand. */
	if (json_object_object_length(params) < 2) {
		cli_usage_error(cmd, "nothing to set: give --vlan-mode, --tag, --trunks or "
				     "--mac-limit");
		return CLI_EXIT_USAGE;
	}
	return check_vlan_members(cmd, params, param_string(params, "vlan_mode"));
}

static int run_capture(const struct command *cmd, struct request *req, struct rpc *rpc);

static const struct command commands[] = {
    {.name = "add-br",
     .synopsis = "BR [--mac-aging S] [--mac-capacity N]",
     .summary = "create bridge BR",
     OPERANDS(br_operands),
     .min_operands = 1,
     OPTIONS(add_br_options)},
    {.name = "del-br",
     .synopsis = "BR",
     .summary = "delete bridge BR and its ports",
     OPERANDS(br_operands),
     .min_operands = 1},
    {.name = "add-port",
     .synopsis = "BR PORT --type TYPE [OPTION]...",
     .summary = "add port PORT to bridge BR",
     OPERANDS(br_port_operands),
     .min_operands = 2,
     OPTIONS(add_port_options),
     .check = check_add_port},
    {.name = "del-port",
     .synopsis = "[BR] PORT",
     .summary = "delete port PORT (which must be BR's, if BR is given)",
     OPERANDS(br_port_operands),
     .min_operands = 1,
     .optional_first = true},
    {.name = "set-port",
     .synopsis = "PORT [--vlan-mode MODE] [--tag N] [--trunks LIST] [--mac-limit N]",
     .summary = "change the VLAN settings or MAC limit of PORT",
     OPERANDS(port_operands),
     .min_operands = 1,
     OPTIONS(set_port_options),
     .check = check_set_port},
    {.name = "show",
     .synopsis = "[BR]",
     .summary = "show the bridges (or BR) and their ports",
     OPERANDS(br_operands),
     .print = vsctl_print_show},
    {.name = "fdb-show",
     .synopsis = "BR",
     .summary = "list the forwarding table of BR",
     OPERANDS(br_operands),
     .min_operands = 1,
     .print = vsctl_print_fdb},
    {.name = "fdb-add",
     .synopsis = "BR PORT VLAN MAC",
     .summary = "add a static forwarding entry: MAC in VLAN is on PORT",
     OPERANDS(fdb_add_operands),
     .min_operands = 4},
    {.name = "fdb-del",
     .synopsis = "BR VLAN MAC",
     .summary = "delete a forwarding entry",
     OPERANDS(fdb_del_operands),
     .min_operands = 3},
    {.name = "fdb-flush",
     .synopsis = "BR [--port P] [--vlan N] [--static]",
     .summary = "delete learned (and static) forwarding entries",
     OPERANDS(br_operands),
     .min_operands = 1,
     OPTIONS(fdb_flush_options)},
    {.name = "stats",
     .synopsis = "BR [PORT]",
     .summary = "show the counters of BR's ports (or PORT) and VLANs",
     OPERANDS(br_port_operands),
     .min_operands = 1,
     .print = vsctl_print_stats},
    {.name = "capture",
     .synopsis = "PORT FILE [--count N] [--seconds S] [--wait]",
     .summary = "write the frames crossing PORT to FILE in pcap format",
     OPERANDS(capture_operands),
     .min_operands = 2,
     OPTIONS(capture_options),
     .run = run_capture},
    {.name = "capture-stop",
     .synopsis = "PORT",
     .summary = "stop the capture on PORT",
     OPERANDS(port_operands),
     .min_operands = 1,
     .print = vsctl_print_capture},
    {.name = "version",
     .synopsis = "",
     .summary = "show the version of vswitchd",
     .print = vsctl_print_version},
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (!strcmp(commands[i].name, name)) {
			return &commands[i];
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------ help */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vswitchctl [--ctl PATH] [--json] [--timeout S] COMMAND [ARG]...\n"
		"       vswitchctl COMMAND --help\n"
		"       vswitchctl --help | --version\n\n"
		"Controls vswitchd, the virtual switch daemon, through its control socket.\n\n"
		"Options:\n"
		"  --ctl PATH     vswitchd's socket (default $VSWITCH_CTL, else\n"
		"                 " DEFAULT_CTL_PATH ")\n"
		"  --json         print vswitchd's answer as JSON\n"
		"  --timeout S    seconds to wait for vswitchd, 0 for ever (default %d)\n"
		"  -h, --help     print this help\n"
		"  --version      print the version of vswitchctl\n\n"
		"Commands:\n",
		DEFAULT_TIMEOUT_S);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
	}
	fprintf(f, "\nExit status: 0 success, 1 failure, 2 usage error.\n");
}

static void command_help(FILE *f, const struct command *cmd)
{
	/* The summary is a phrase in the command list, a sentence here. */
	fprintf(f, "Usage: vswitchctl [GLOBAL OPTION]... %s %s\n\n%c%s.\n", cmd->name,
		cmd->synopsis, toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
	if (cmd->n_options) {
		fprintf(f, "\nOptions:\n");
	}
	for (size_t i = 0; i < cmd->n_options; i++) {
		const struct arg *a = &cmd->options[i];
		char spelled[64];

		snprintf(spelled, sizeof(spelled), "--%s%s%s", a->name, a->metavar ? " " : "",
			 a->metavar ? a->metavar : "");
		fprintf(f, "  %-20s %s\n", spelled, a->help);
	}
}

/* --------------------------------------------------- parsing a command */

/* The offset of option values in getopt_long()'s answers, clear of the
 * characters it returns itself. */
#define OPT_BASE 256

static int parse_options(const struct command *cmd, int argc, char **argv, struct request *req)
{
	struct option *longopts = calloc(cmd->n_options + 2, sizeof(*longopts));
	int c, ret = PARSED;

	if (!longopts) {
		cli_error("out of memory");
		return CLI_EXIT_FAILURE;
	}
	for (size_t i = 0; i < cmd->n_options; i++) {
		const struct arg *a = &cmd->options[i];

		longopts[i] = (struct option){a->name, a->metavar ? required_argument : no_argument,
					      NULL, OPT_BASE + (int)i};
	}
	longopts[cmd->n_options] = (struct option){"help", no_argument, NULL, 'h'};
	optind = 0;
	opterr = 0;
	while (ret == PARSED && !req->help &&
	       (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			req->help = true;
		} else if (c >= OPT_BASE) {
			ret = add_arg(cmd->name, &cmd->options[c - OPT_BASE], optarg, req);
		} else {
			cli_getopt_error(cmd->name, c, argv);
			ret = CLI_EXIT_USAGE;
		}
	}
	free(longopts);
	return ret;
}

static int parse_operands(const struct command *cmd, int argc, char **argv, struct request *req)
{
	size_t given = (size_t)(argc - optind);
	size_t skip = cmd->optional_first && given < cmd->n_operands ? cmd->n_operands - given : 0;
	int ret = PARSED;

	if (given < cmd->min_operands) {
		/* With the optional operand first, the required ones are last. */
		size_t missing =
		    given + (cmd->optional_first ? cmd->n_operands - cmd->min_operands : 0);

		cli_usage_error(cmd->name, "missing %s", cmd->operands[missing].what);
		return CLI_EXIT_USAGE;
	}
	if (given > cmd->n_operands) {
		cli_usage_error(cmd->name, "unexpected argument '%s'",
				argv[optind + cmd->n_operands]);
		return CLI_EXIT_USAGE;
	}
	for (size_t i = 0; i < given && ret == PARSED; i++) {
		ret = add_arg(cmd->name, &cmd->operands[skip + i], argv[optind + (int)i], req);
	}
	return ret;
}

/* Fills 'req' from the command line of 'cmd' (argv[0] is its name).
 * Returns PARSED, or the exit status after printing why not. */
static int parse_command(const struct command *cmd, int argc, char **argv, struct request *req)
{
	int ret = parse_options(cmd, argc, argv, req);

	if (ret != PARSED || req->help) {
		return ret;
	}
	ret = parse_operands(cmd, argc, argv, req);
	if (ret == PARSED && cmd->check) {
		ret = cmd->check(cmd->name, req->params);
	}
	return ret;
}

/* ------------------------------------------------------- the connection */

/* One connection to vswitchd; requests on it are answered in order. */
struct rpc {
	int fd;
	const char *path;
	int timeout_s; /* per request; 0: no limit */
	int next_id;
	char *buf;	   /* bytes received and not yet consumed */
	size_t len_bytes;  /* in 'buf' */
	size_t cap_bytes;  /* of 'buf' */
	struct errmsg err; /* why the last call failed */
};

static int rpc_open(struct rpc *rpc, const char *path, int timeout_s)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	/* connect() on a Unix socket waits while the daemon's backlog is full,
	 * for as long as SO_SNDTIMEO allows, then fails with EAGAIN. */
	struct timeval tv = {.tv_sec = timeout_s};
	int err;

	*rpc = (struct rpc){.fd = -1, .path = path, .timeout_s = timeout_s, .next_id = 1};
	memcpy(addr.sun_path, path, strlen(path) + 1); /* length checked with --ctl */
	rpc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (rpc->fd < 0) {
		err = errno;
		errmsg_set(&rpc->err, "cannot create a socket: %s", strerror(err));
		return -err;
	}
	setsockopt(rpc->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(rpc->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
		return 0;
	}
	err = errno;
	if (err == EAGAIN) {
		errmsg_set(&rpc->err, "vswitchd at %s did not accept the connection within %d s",
			   path, timeout_s);
	} else {
		errmsg_set(&rpc->err, "cannot reach vswitchd at %s: %s%s", path, strerror(err),
			   err == ENOENT || err == ECONNREFUSED ? " (is vswitchd running?)" : "");
	}
	return -err;
}

static void rpc_close(struct rpc *rpc)
{
	if (rpc->fd >= 0) {
		close(rpc->fd);
	}
	free(rpc->buf);
}

/* Milliseconds poll() may wait until 'deadline' (cli_now() seconds; 0: no
 * deadline, -1 for poll()).  Rounded up so the last wait is not a spin. */
static int ms_left(double deadline)
{
	double left_ms;

	if (!deadline) {
		return -1;
	}
	left_ms = (deadline - cli_now()) * 1000;
	return left_ms <= 0 ? 0 : (int)left_ms + 1;
}

/* Waits until the socket is ready for 'events'.  Returns 0 or -ETIMEDOUT;
 * errors and hang-ups are left for the next send() or recv() to report. */
static int wait_ready(int fd, short events, double deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	for (;;) {
		int n = poll(&pfd, 1, ms_left(deadline));

		if (n > 0) {
			return 0;
		}
		if (n == 0) {
			return -ETIMEDOUT;
		}
		if (errno != EINTR) {
			return -errno;
		}
	}
}

static int send_all(struct rpc *rpc, const char *data, size_t size_bytes, double deadline)
{
	while (size_bytes) {
		int ret = wait_ready(rpc->fd, POLLOUT, deadline);
		ssize_t n;

		if (ret < 0) {
			return ret;
		}
		/* MSG_NOSIGNAL: a daemon that hangs up is an error to report,
		 * not a SIGPIPE to die of. */
		n = send(rpc->fd, data, size_bytes, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -errno;
		}
		if (n > 0) {
			data += n;
			size_bytes -= (size_t)n;
		}
	}
	return 0;
}

static int send_request(struct rpc *rpc, int id, const char *method, struct json_object *params,
			double deadline)
{
	struct json_object *req = json_object_new_object();
	const char *text;
	int ret;

	json_object_object_add(req, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(req, "id", json_object_new_int(id));
	json_object_object_add(req, "method", json_object_new_string(method));
	json_object_object_add(req, "params", json_object_get(params));
	/* Plain output has no newline inside: strings escape theirs. */
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	ret = send_all(rpc, text, strlen(text), deadline);
	if (ret == 0) {
		ret = send_all(rpc, "\n", 1, deadline);
	}
	json_object_put(req);
	return ret;
}

/* Appends what the socket holds to the buffer, growing it up to
 * MAX_LINE_BYTES.  Returns 0, -ENODATA at the end of the stream, -EMSGSIZE
 * when the buffer is full, or another negative errno. */
static int recv_more(struct rpc *rpc, double deadline)
{
	ssize_t n;
	int ret;

	if (rpc->len_bytes == rpc->cap_bytes) {
		size_t cap = rpc->cap_bytes ? 2 * rpc->cap_bytes : RECV_BUF_BYTES;
		char *buf;

		if (rpc->cap_bytes >= MAX_LINE_BYTES) {
			return -EMSGSIZE;
		}
		cap = cap < MAX_LINE_BYTES ? cap : MAX_LINE_BYTES;
		buf = realloc(rpc->buf, cap);
		if (!buf) {
			return -ENOMEM;
		}
		rpc->buf = buf;
		rpc->cap_bytes = cap;
	}
	ret = wait_ready(rpc->fd, POLLIN, deadline);
	if (ret < 0) {
		return ret;
	}
	n = recv(rpc->fd, rpc->buf + rpc->len_bytes, rpc->cap_bytes - rpc->len_bytes, MSG_DONTWAIT);
	if (n == 0) {
		return -ENODATA;
	}
	if (n < 0) {
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	}
	rpc->len_bytes += (size_t)n;
	return 0;
}

/* Receives until the buffer holds a whole line; stores its length, newline
 * included, in '*sizep'.  Returns 0 or a negative errno (see recv_more). */
static int read_line(struct rpc *rpc, double deadline, size_t *sizep)
{
	size_t scanned = 0;

	for (;;) {
		char *nl = rpc->len_bytes > scanned
			       ? memchr(rpc->buf + scanned, '\n', rpc->len_bytes - scanned)
			       : NULL;
		int ret;

		if (nl) {
			*sizep = (size_t)(nl - rpc->buf) + 1;
			return 0;
		}
		scanned = rpc->len_bytes;
		ret = recv_more(rpc, deadline);
		if (ret < 0) {
			return ret;
		}
	}
}

static void consume(struct rpc *rpc, size_t size_bytes)
{
	memmove(rpc->buf, rpc->buf + size_bytes, rpc->len_bytes - size_bytes);
	rpc->len_bytes -= size_bytes;
}

/* Puts the sentence for a failed exchange in rpc->err; returns 'ret'. */
static int exchange_error(struct rpc *rpc, int ret)
{
	switch (ret) {
	case -ETIMEDOUT:
		errmsg_set(&rpc->err, "vswitchd at %s did not answer within %d s", rpc->path,
			   rpc->timeout_s);
		break;
	case -ENODATA:
		errmsg_set(&rpc->err, "vswitchd at %s closed the connection without answering",
			   rpc->path);
		break;
	case -EMSGSIZE:
		errmsg_set(&rpc->err, "vswitchd at %s sent an answer longer than %u MiB", rpc->path,
			   MAX_LINE_BYTES >> 20);
		break;
	default:
		errmsg_set(&rpc->err, "lost the connection to vswitchd at %s: %s", rpc->path,
			   strerror(-ret));
		break;
	}
	return ret;
}

static int malformed(struct rpc *rpc, const char *why)
{
	errmsg_set(&rpc->err, "vswitchd at %s sent a malformed answer: %s", rpc->path, why);
	return -EPROTO;
}

/* The daemon's sentence, shown as it is (docs/vswitch-rpc.md: "fit to show
 * to a user as is"); the code if a daemon ever leaves the sentence out. */
static int daemon_error(struct rpc *rpc, struct json_object *error)
{
	struct json_object *msg = NULL, *code = NULL;

	json_object_object_get_ex(error, "message", &msg);
	json_object_object_get_ex(error, "code", &code);
	if (json_object_is_type(msg, json_type_string) && json_object_get_string_len(msg)) {
		errmsg_set(&rpc->err, "%s", json_object_get_string(msg));
	} else {
		errmsg_set(&rpc->err, "vswitchd at %s failed with error %s", rpc->path,
			   code ? json_object_get_string(code) : "?");
	}
	return -EREMOTEIO;
}

/* Takes the result or the error out of a parsed answer to request 'id'. */
static int answer_result(struct rpc *rpc, int id, struct json_object *answer,
			 struct json_object **resultp)
{
	struct json_object *version = NULL, *aid = NULL, *error = NULL, *result = NULL;
	bool is_error;

	if (!json_object_is_type(answer, json_type_object)) {
		return malformed(rpc, "not a JSON object");
	}
	json_object_object_get_ex(answer, "jsonrpc", &version);
	if (!json_object_is_type(version, json_type_string) ||
	    strcmp(json_object_get_string(version), "2.0")) {
		return malformed(rpc, "not JSON-RPC 2.0");
	}
	is_error = json_object_object_get_ex(answer, "error", &error);
	json_object_object_get_ex(answer, "id", &aid);
	/* An error about a request the daemon could not read has id null. */
	if (!(json_object_is_type(aid, json_type_int) && json_object_get_int64(aid) == id) &&
	    !(is_error && !aid)) {
		return malformed(rpc, "it answers another request");
	}
	if (is_error) {
		return daemon_error(rpc, error);
	}
	if (!json_object_object_get_ex(answer, "result", &result)) {
		return malformed(rpc, "neither result nor error");
	}
	if (!json_object_is_type(result, json_type_object)) {
		return malformed(rpc, "the result is not an object");
	}
	*resultp = json_object_get(result);
	return 0;
}

static bool only_blanks(const char *s, size_t size_bytes)
{
	for (size_t i = 0; i < size_bytes; i++) {
		if (!isspace((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* Parses the line of 'size_bytes' at the head of the buffer. */
static int parse_answer(struct rpc *rpc, int id, size_t size_bytes, struct json_object **resultp)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *answer;
	enum json_tokener_error jerr;
	int ret;

	if (!tok) {
		errmsg_set(&rpc->err, "out of memory");
		return -ENOMEM;
	}
	/* The newline is passed too: it ends a bare number the tokener
	 * would otherwise wait to see continue. */
	answer = json_tokener_parse_ex(tok, rpc->buf, (int)size_bytes);
	jerr = json_tokener_get_error(tok);
	if (jerr != json_tokener_success) {
		ret = malformed(rpc, json_tokener_error_desc(jerr));
	} else if (!only_blanks(rpc->buf + json_tokener_get_parse_end(tok),
				size_bytes - json_tokener_get_parse_end(tok))) {
		ret = malformed(rpc, "more than one JSON value on the line");
	} else {
		ret = answer_result(rpc, id, answer, resultp);
	}
	json_object_put(answer);
	json_tokener_free(tok);
	return ret;
}

/* Sends 'method' with 'params' (borrowed) and waits for the answer.
 * Returns 0 with the result in '*resultp' (the caller puts it),
 * -EREMOTEIO when vswitchd answered with an error, or another negative
 * errno when the exchange failed; rpc->err then holds the sentence. */
static int rpc_call(struct rpc *rpc, const char *method, struct json_object *params,
		    struct json_object **resultp)
{
	double deadline = rpc->timeout_s ? cli_now() + rpc->timeout_s : 0;
	int id = rpc->next_id++;
	size_t size_bytes = 0;
	int ret;

	ret = send_request(rpc, id, method, params, deadline);
	if (ret == 0) {
		ret = read_line(rpc, deadline, &size_bytes);
	}
	if (ret < 0) {
		return exchange_error(rpc, ret);
	}
	ret = parse_answer(rpc, id, size_bytes, resultp);
	consume(rpc, size_bytes);
	return ret;
}

/* -------------------------------------------------------------- running */

static void print_result(const struct command *cmd, const struct request *req,
			 struct json_object *result)
{
	if (req->json) {
		cli_json_print(stdout, result);
	} else if (cmd->print) {
		cmd->print(stdout, result);
	}
}

static int run_plain(const struct command *cmd, struct request *req, struct rpc *rpc)
{
	struct json_object *result;

	if (rpc_call(rpc, cmd->name, req->params, &result) < 0) {
		cli_error("%s", rpc->err.msg);
		return CLI_EXIT_FAILURE;
	}
	print_result(cmd, req, result);
	json_object_put(result);
	return CLI_EXIT_OK;
}

/* Set by SIGINT, SIGTERM and SIGHUP during capture --wait, so that a wait
 * cut short still stops the capture it started. */
static volatile sig_atomic_t stop_requested;

static void request_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void catch_stop_signals(void)
{
	/* No SA_RESTART: the signal must cut the wait between polls short. */
	struct sigaction sa = {.sa_handler = request_stop};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* What capture --wait knows of the capture it started.  The strings are
 * borrowed from the request's params. */
struct capture_wait {
	const char *port;
	const char *file; /* absolute */
	uint64_t seconds; /* 0: no limit */
};

static uint64_t param_u64(struct json_object *params, const char *key)
{
	struct json_object *val;

	return json_object_object_get_ex(params, key, &val) ? json_object_get_uint64(val) : 0;
}

/* json_object_array_length() asserts on anything but an array. */
static size_t array_len(struct json_object *arr)
{
	return json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
}

/* The port 'name' in the answer to show, or NULL. */
static struct json_object *find_port(struct json_object *show, const char *name)
{
	struct json_object *bridges = NULL, *ports = NULL, *port_name = NULL;

	json_object_object_get_ex(show, "bridges", &bridges);
	for (size_t i = 0; i < array_len(bridges); i++) {
		ports = NULL;
		json_object_object_get_ex(json_object_array_get_idx(bridges, i), "ports", &ports);
		for (size_t j = 0; j < array_len(ports); j++) {
			struct json_object *port = json_object_array_get_idx(ports, j);

			if (json_object_object_get_ex(port, "name", &port_name) &&
			    !strcmp(json_object_get_string(port_name), name)) {
				return port;
			}
		}
	}
	return NULL;
}

/* Asks show whether the capture on 'w->port' still runs.  Returns 0, or a
 * negative errno with the sentence in rpc->err. */
static int capture_running(struct rpc *rpc, const struct capture_wait *w, bool *runningp)
{
	struct json_object *params = json_object_new_object();
	struct json_object *result, *port, *capture = NULL;
	int ret = rpc_call(rpc, "show", params, &result);

	json_object_put(params);
	if (ret < 0) {
		return ret;
	}
	port = find_port(result, w->port);
	if (port) {
		struct json_object *running = NULL;

		json_object_object_get_ex(port, "capture", &capture);
		json_object_object_get_ex(capture, "running", &running);
		*runningp = running && json_object_get_boolean(running);
	} else {
		errmsg_set(&rpc->err, "port %s was deleted during the capture", w->port);
		ret = -ENODEV;
	}
	json_object_put(result);
	return ret;
}

static int stop_capture(struct rpc *rpc, const struct capture_wait *w, struct json_object **resultp)
{
	struct json_object *params = json_object_new_object();
	int ret;

	json_object_object_add(params, "port", json_object_new_string(w->port));
	ret = rpc_call(rpc, "capture-stop", params, resultp);
	json_object_put(params);
	if (ret == 0) {
		if (!json_object_object_get_ex(*resultp, "file", NULL)) {
			json_object_object_add(*resultp, "file", json_object_new_string(w->file));
		}
		return CLI_EXIT_OK;
	}
	cli_error("%s", rpc->err.msg);
	return CLI_EXIT_FAILURE;
}

/* Polls until the capture ends, stopping it at its deadline or on a
 * signal.  Stores what capture-stop would answer in '*resultp'. */
static int wait_capture(struct rpc *rpc, const struct capture_wait *w, struct json_object **resultp)
{
	double deadline = w->seconds ? cli_now() + (double)w->seconds : 0;
	bool running;

	for (;;) {
		int sleep_ms = CAPTURE_POLL_MS;

		if (stop_requested || (deadline && cli_now() >= deadline)) {
			return stop_capture(rpc, w, resultp);
		}
		if (capture_running(rpc, w, &running) < 0) {
			cli_error("%s", rpc->err.msg);
			return CLI_EXIT_FAILURE;
		}
		if (!running) {
			/* Ended by its count: capture-stop still reports it. */
			return stop_capture(rpc, w, resultp);
		}
		if (deadline && ms_left(deadline) < sleep_ms) {
			sleep_ms = ms_left(deadline);
		}
		poll(NULL, 0, sleep_ms); /* a signal ends it early */
	}
}

/* capture --wait keeps 'seconds' to itself and stops the capture with
 * capture-stop when they are up: capture-stop's answer is the only way to
 * learn how many frames were written. */
static int run_capture(const struct command *cmd, struct request *req, struct rpc *rpc)
{
	struct capture_wait w = {
	    .port = param_string(req->params, "port"),
	    .file = param_string(req->params, "file"),
	    .seconds = param_u64(req->params, "seconds"),
	};
	struct json_object *result;
	int ret;

	if (!req->wait) {
		return run_plain(cmd, req, rpc);
	}
	json_object_object_del(req->params, "seconds");
	/* Before the capture starts, so that no Ctrl-C leaves it running. */
	catch_stop_signals();
	if (rpc_call(rpc, "capture", req->params, &result) < 0) {
		cli_error("%s", rpc->err.msg);
		return CLI_EXIT_FAILURE;
	}
	json_object_put(result);
	ret = wait_capture(rpc, &w, &result);
	if (ret == CLI_EXIT_OK) {
		if (req->json) {
			cli_json_print(stdout, result);
		} else {
			vsctl_print_capture(stdout, result);
		}
		json_object_put(result);
	}
	return ret;
}

static int run_command(const struct command *cmd, int argc, char **argv, const char *ctl_path,
		       int timeout_s, bool json)
{
	struct request req = {.params = json_object_new_object(), .json = json};
	struct rpc rpc;
	int ret = parse_command(cmd, argc, argv, &req);

	if (req.help) {
		command_help(stdout, cmd);
		ret = CLI_EXIT_OK;
	} else if (ret == PARSED && rpc_open(&rpc, ctl_path, timeout_s) < 0) {
		cli_error("%s", rpc.err.msg);
		rpc_close(&rpc);
		ret = CLI_EXIT_FAILURE;
	} else if (ret == PARSED) {
		ret = (cmd->run ? cmd->run : run_plain)(cmd, &req, &rpc);
		rpc_close(&rpc);
	}
	json_object_put(req.params);
	return ret;
}

/* ------------------------------------------------------------------ main */

/* Global options, before the command. */
struct globals {
	const char *ctl_path;
	int timeout_s; /* 0: no limit */
	bool json;
};

enum {
	OPT_CTL = OPT_BASE,
	OPT_JSON,
	OPT_TIMEOUT,
	OPT_VERSION,
};

static int parse_timeout(const char *text, int *timeout_sp)
{
	uint64_t s;

	if (cli_parse_u64(text, &s) < 0 || s > MAX_TIMEOUT_S) {
		cli_usage_error(NULL, "bad timeout '%s': must be 0-%d seconds", text,
				MAX_TIMEOUT_S);
		return CLI_EXIT_USAGE;
	}
	*timeout_sp = (int)s;
	return PARSED;
}

static int check_ctl_path(const char *path)
{
	if (!path[0] || strlen(path) > SOCKET_PATH_MAX_BYTES) {
		cli_usage_error(NULL, "bad control socket path '%s': must be 1-%zu bytes", path,
				SOCKET_PATH_MAX_BYTES);
		return CLI_EXIT_USAGE;
	}
	return PARSED;
}

static int parse_globals(int argc, char **argv, struct globals *g)
{
	static const struct option longopts[] = {
	    {"ctl", required_argument, NULL, OPT_CTL},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	const char *env = getenv("VSWITCH_CTL");
	int c, ret = PARSED;

	*g = (struct globals){.ctl_path = env && env[0] ? env : DEFAULT_CTL_PATH,
			      .timeout_s = DEFAULT_TIMEOUT_S};
	optind = 0;
	opterr = 0;
	/* '+': stop at the command, whose options are its own. */
	while (ret == PARSED && (c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_CTL:
			g->ctl_path = optarg;
			break;
		case OPT_JSON:
			g->json = true;
			break;
		case OPT_TIMEOUT:
			ret = parse_timeout(optarg, &g->timeout_s);
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case OPT_VERSION:
			printf("vswitchctl version %s\n", VSWITCHCTL_VERSION);
			return CLI_EXIT_OK;
		default:
			cli_getopt_error(NULL, c, argv);
			return CLI_EXIT_USAGE;
		}
	}
	return ret == PARSED ? check_ctl_path(g->ctl_path) : ret;
}

/* "vswitchctl help [COMMAND]", as vdisk has it. */
static int help_command(int argc, char **argv)
{
	const struct command *cmd = argc > 1 ? find_command(argv[1]) : NULL;

	if (argc > 1 && !cmd) {
		cli_usage_error(NULL, "unknown command '%s'", argv[1]);
		return CLI_EXIT_USAGE;
	}
	if (cmd) {
		command_help(stdout, cmd);
	} else {
		usage(stdout);
	}
	return CLI_EXIT_OK;
}

/* A full disk or a closed pipe under stdout must not pass for success. */
static int finish_output(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("cannot write the output: %s", strerror(errno));
		return status ? status : CLI_EXIT_FAILURE;
	}
	return status;
}

int main(int argc, char **argv)
{
	const struct command *cmd;
	struct globals g;
	int ret;

	cli_set_progname("vswitchctl");
	ret = parse_globals(argc, argv, &g);
	if (ret != PARSED) {
		return finish_output(ret);
	}
	if (optind >= argc) {
		cli_usage_error(NULL, "missing command");
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[optind], "help")) {
		return finish_output(help_command(argc - optind, argv + optind));
	}
	cmd = find_command(argv[optind]);
	if (!cmd) {
		cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	ret = run_command(cmd, argc - optind, argv + optind, g.ctl_path, g.timeout_s, g.json);
	return finish_output(ret);
}
