/* SPDX-License-Identifier: MIT */
/* vswitchctl-fmt.c: turns vswitchd's answers into the text vswitchctl prints
 * (vswitchctl-fmt.h).  The daemon is the authority on what an answer holds,
 * so nothing here fails: a missing member prints as "?" or is left out, and
 * members this file does not know are ignored (--json shows everything). */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "vswitchctl-fmt.h"

/* The member 'key' of 'obj'; NULL when 'obj' is no object, the member is
 * missing, or it is JSON null. */
static struct json_object *member(struct json_object *obj, const char *key)
{
	struct json_object *val = NULL;

	if (!json_object_is_type(obj, json_type_object)) {
		return NULL;
	}
	json_object_object_get_ex(obj, key, &val);
	return val;
}

/* A member as text, "?" when missing.  Numbers and strings alike, so a
 * port given by number or by name both print.  Borrowed from 'obj'. */
static const char *text(struct json_object *obj, const char *key)
{
	struct json_object *val = member(obj, key);

	return val ? json_object_get_string(val) : "?";
}

static uint64_t counter(struct json_object *obj, const char *key)
{
	struct json_object *val = member(obj, key);

	return json_object_is_type(val, json_type_int) ? json_object_get_uint64(val) : 0;
}

static size_t array_len(struct json_object *arr)
{
	return json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
}

static bool is_zero(struct json_object *val)
{
	return json_object_is_type(val, json_type_int) && json_object_get_int64(val) == 0;
}

/* -------------------------------------------------------------- show */

/* Port members in the order shown; others are left to --json. */
static const char *const port_keys[] = {
    "port_no", "type",	 "socket", "ifname", "vlan_mode", "tag",
    "trunks",  "queues", "mtu",	   "link",   "mac_limit", "capture",
};

/* Leaves out values that mean "none", as ovs-vsctl show leaves out empty
 * columns: a trunk's tag 0, an empty VLAN list, mac_limit 0 (the bridge's
 * limit applies) and queues on ports that have no queues to offer. */
static bool port_key_shown(struct json_object *port, const char *key, struct json_object *val)
{
	if (!val ||
	    (json_object_is_type(val, json_type_boolean) && !json_object_get_boolean(val))) {
		return false;
	}
	if (json_object_is_type(val, json_type_string) && json_object_get_string_len(val) == 0) {
		return false;
	}
	if ((!strcmp(key, "tag") || !strcmp(key, "mac_limit")) && is_zero(val)) {
		return false;
	}
	if (!strcmp(key, "queues")) {
		return !strncmp(text(port, "type"), "vhost-user", strlen("vhost-user"));
	}
	return true;
}

/* A running capture, "FILE (N packets so far)" when the daemon says so. */
static const char *capture_text(struct json_object *val, char *buf, size_t size_bytes)
{
	if (!json_object_is_type(val, json_type_object)) {
		return json_object_get_string(val);
	}
	snprintf(buf, size_bytes, "%s (%s packets so far)", text(val, "file"),
		 text(val, "packets"));
	return buf;
}

static void print_port(FILE *f, struct json_object *port)
{
	char buf[4200]; /* a path of PATH_MAX and a count */

	fprintf(f, "    Port %s\n", text(port, "name"));
	for (size_t i = 0; i < sizeof(port_keys) / sizeof(port_keys[0]); i++) {
		const char *key = port_keys[i];
		struct json_object *val = member(port, key);

		if (port_key_shown(port, key, val)) {
			fprintf(f, "        %s: %s\n", key,
				strcmp(key, "capture") ? json_object_get_string(val)
						       : capture_text(val, buf, sizeof(buf)));
		}
	}
}

static void print_bridge(FILE *f, struct json_object *br)
{
	struct json_object *ports = member(br, "ports");

	fprintf(f, "Bridge %s\n", text(br, "name"));
	fprintf(f, "    mac_aging_s: %s\n", text(br, "mac_aging_s"));
	fprintf(f, "    mac_capacity: %s\n", text(br, "mac_capacity"));
	for (size_t i = 0; i < array_len(ports); i++) {
		print_port(f, json_object_array_get_idx(ports, i));
	}
}

void vsctl_print_show(FILE *f, struct json_object *result)
{
	struct json_object *bridges = member(result, "bridges");

	for (size_t i = 0; i < array_len(bridges); i++) {
		print_bridge(f, json_object_array_get_idx(bridges, i));
	}
	/* Last, as ovs-vsctl show ends with ovs_version: it concerns the
	 * whole daemon, not a bridge. */
	fprintf(f, "mode: %s\n", text(result, "mode"));
}

/* ---------------------------------------------------------- fdb-show */

/* ovs-appctl fdb/show gives port numbers five columns; names may be
 * longer, so the column grows to the longest one. */
#define FDB_PORT_MIN_WIDTH 5

/* "entries 8192 of 8192 (2 static); learned ..., evicted 91808 (full) 0
 * (limit)": one line, so a flood shows at a glance. */
static void print_fdb_stats(FILE *f, struct json_object *s)
{
	if (!s) {
		return;
	}
	fprintf(f,
		"entries %s of %s (%s static); learned %s, moved %s, expired %s, "
		"evicted %s (table full) %s (port limit)\n",
		text(s, "entries"), text(s, "capacity"), text(s, "static_entries"),
		text(s, "learned"), text(s, "moved"), text(s, "expired"), text(s, "evicted_full"),
		text(s, "evicted_limit"));
}

void vsctl_print_fdb(FILE *f, struct json_object *result)
{
	struct json_object *entries = member(result, "entries");
	size_t n = array_len(entries);
	int width = FDB_PORT_MIN_WIDTH;

	for (size_t i = 0; i < n; i++) {
		int len = (int)strlen(text(json_object_array_get_idx(entries, i), "port"));

		width = len > width ? len : width;
	}
	fprintf(f, "%*s  VLAN  MAC                Age\n", width, "port");
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(entries, i);
		struct json_object *is_static = member(e, "static");

		fprintf(f, "%*s  %4s  %-17s  %3s\n", width, text(e, "port"), text(e, "vlan"),
			text(e, "mac"),
			is_static && json_object_get_boolean(is_static) ? "static"
									: text(e, "age_s"));
	}
	print_fdb_stats(f, member(result, "stats"));
}

/* ------------------------------------------------------------- stats */

/* Wide enough for a day of 100 Gb/s in bytes (about 10^15) to line up. */
#define STATS_COLUMN_WIDTH 16

/* "    rx drops: tagged-on-access 2, not-allowed 1"; nothing when no reason
 * counted a drop. */
static void print_drops(FILE *f, const char *label, struct json_object *drops)
{
	bool any = false;

	if (!json_object_is_type(drops, json_type_object)) {
		return;
	}
	json_object_object_foreach(drops, reason, count)
	{
		if (is_zero(count)) {
			continue;
		}
		if (!any) {
			fprintf(f, "    %s:", label);
		}
		fprintf(f, "%s %s %s", any ? "," : "", reason, json_object_get_string(count));
		any = true;
	}
	if (any) {
		fputc('\n', f);
	}
}

static void print_direction(FILE *f, struct json_object *c, const char *dir)
{
	char packets[32], bytes[32], dropped[32];

	snprintf(packets, sizeof(packets), "%s_packets", dir);
	snprintf(bytes, sizeof(bytes), "%s_bytes", dir);
	snprintf(dropped, sizeof(dropped), "%s_dropped", dir);
	fprintf(f, "    %s %*" PRIu64 " %*" PRIu64 " %*" PRIu64 "\n", dir, STATS_COLUMN_WIDTH,
		counter(c, packets), STATS_COLUMN_WIDTH, counter(c, bytes), STATS_COLUMN_WIDTH,
		counter(c, dropped));
}

/* The COUNTERS of docs/vswitch-rpc.md, shared by ports and VLANs. */
static void print_counters(FILE *f, struct json_object *c)
{
	fprintf(f, "       %*s %*s %*s\n", STATS_COLUMN_WIDTH, "packets", STATS_COLUMN_WIDTH,
		"bytes", STATS_COLUMN_WIDTH, "dropped");
	print_direction(f, c, "rx");
	print_direction(f, c, "tx");
	fprintf(f, "    flooded: %" PRIu64 "\n", counter(c, "flooded"));
	print_drops(f, "rx drops", member(c, "rx_drops"));
	print_drops(f, "tx drops", member(c, "tx_drops"));
}

/* The port's share of the forwarding table and what it lost of it. */
static void print_port_fdb(FILE *f, struct json_object *fdb)
{
	if (!fdb) {
		return;
	}
	fprintf(f, "    fdb: %s entries (limit %s), %s learned, evicted %s (port limit) %s (table full)\n",
		text(fdb, "entries"), text(fdb, "limit"), text(fdb, "learned"),
		text(fdb, "evicted_limit"), text(fdb, "evicted_full"));
}

/* What the port's device (vhost ring, tap, NIC) counted, apart from the
 * switch: frames lost there never reached the switch's counters. */
static void print_device(FILE *f, struct json_object *dev)
{
	if (!dev) {
		return;
	}
	fprintf(f,
		"    device rx: %" PRIu64 " packets, %" PRIu64 " bytes, %" PRIu64
		" dropped, %" PRIu64 " errors\n",
		counter(dev, "rx_packets"), counter(dev, "rx_bytes"), counter(dev, "rx_dropped"),
		counter(dev, "rx_errors"));
	fprintf(f,
		"    device tx: %" PRIu64 " packets, %" PRIu64 " bytes, %" PRIu64
		" dropped, %" PRIu64 " errors\n",
		counter(dev, "tx_packets"), counter(dev, "tx_bytes"), counter(dev, "tx_dropped"),
		counter(dev, "tx_errors"));
}

void vsctl_print_stats(FILE *f, struct json_object *result)
{
	struct json_object *ports = member(result, "ports");
	struct json_object *vlans = member(result, "vlans");

	for (size_t i = 0; i < array_len(ports); i++) {
		struct json_object *port = json_object_array_get_idx(ports, i);

		fprintf(f, "port %s:\n", text(port, "name"));
		print_counters(f, port);
		print_port_fdb(f, member(port, "fdb"));
		print_device(f, member(port, "device"));
	}
	for (size_t i = 0; i < array_len(vlans); i++) {
		struct json_object *vlan = json_object_array_get_idx(vlans, i);

		fprintf(f, "vlan %s:\n", text(vlan, "vlan"));
		print_counters(f, vlan);
	}
}

/* ------------------------------------------------------ the small ones */

void vsctl_print_version(FILE *f, struct json_object *result)
{
	fprintf(f, "vswitchd %s\n", text(result, "version"));
}

void vsctl_print_capture(FILE *f, struct json_object *result)
{
	if (member(result, "file")) {
		fprintf(f, "%s packets written to %s\n", text(result, "packets"),
			text(result, "file"));
	} else {
		fprintf(f, "%s packets written\n", text(result, "packets"));
	}
}
