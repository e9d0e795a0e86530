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
#include "rpc.h"
#include "vswitch-limits.h"
#include "vswitchctl-fmt.h"

#define VSWITCHCTL_VERSION "0.1.0"
#define DEFAULT_CTL_PATH "/run/vswitch/vswitchd.sock"
#define DEFAULT_TIMEOUT_S 10
/* poll() counts milliseconds in an int. */
#define MAX_TIMEOUT_S (INT_MAX / 1000 - 1)

/* How often capture --wait asks whether the capture still runs: soon
 * enough to feel immediate, seldom enough to cost the daemon nothing. */
#define CAPTURE_POLL_MS 100

/* The protocol's limits are vswitch-limits.h's, shared with vswitchd. */
#define NAME_MAX_BYTES (VSW_NAME_BYTES - 1)
#define NAME_CHARS VSW_NAME_CHARS
#define IFNAME_MAX_BYTES VSW_IFNAME_MAX_BYTES
#define VLAN_MIN VSW_VLAN_MIN
#define VLAN_MAX VSW_VLAN_MAX
#define QUEUES_MAX VSW_PORT_MAX_QUEUES
#define MTU_MIN VSW_PORT_MTU_MIN
#define MTU_MAX VSW_PORT_MTU_MAX
#define MAC_CAPACITY_MAX VSW_MAC_CAPACITY_MAX
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

static const char *const vlan_modes[] = VSW_VLAN_MODES;
static const char *const port_types[] = VSW_PORT_TYPES;

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

/* One connection to vswitchd (librpc's client); requests on it are
 * answered in order. */
struct rpc {
	struct rpc_client *client;
	struct errmsg err; /* why the last call failed */
};

static int ctl_open(struct rpc *rpc, const char *path, int timeout_s)
{
	rpc->client = NULL;
	errmsg_clear(&rpc->err);
	return rpc_client_open(path, "vswitchd", timeout_s, &rpc->client, &rpc->err);
}

static void ctl_close(struct rpc *rpc)
{
	rpc_client_close(rpc->client);
}

/* Sends 'method' with 'params' (borrowed) and waits for the answer.
 * Returns 0 with the result in '*resultp' (the caller puts it) or a
 * negative errno with the sentence in rpc->err. */
static int ctl_call(struct rpc *rpc, const char *method, struct json_object *params,
		    struct json_object **resultp)
{
	return rpc_client_call(rpc->client, method, params, resultp, NULL, &rpc->err);
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

	if (ctl_call(rpc, cmd->name, req->params, &result) < 0) {
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
	int ret = ctl_call(rpc, "show", params, &result);

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
	ret = ctl_call(rpc, "capture-stop", params, resultp);
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

/* Milliseconds until 'deadline' (cli_now() seconds), rounded up. */
static int ms_left(double deadline)
{
	double left_ms = (deadline - cli_now()) * 1000;

	return left_ms <= 0 ? 0 : (int)left_ms + 1;
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
	if (ctl_call(rpc, "capture", req->params, &result) < 0) {
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
	} else if (ret == PARSED && ctl_open(&rpc, ctl_path, timeout_s) < 0) {
		cli_error("%s", rpc.err.msg);
		ctl_close(&rpc);
		ret = CLI_EXIT_FAILURE;
	} else if (ret == PARSED) {
		ret = (cmd->run ? cmd->run : run_plain)(cmd, &req, &rpc);
		ctl_close(&rpc);
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
