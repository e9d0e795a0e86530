/* SPDX-License-Identifier: MIT */
/* vswitchctl-fmt.h: the text forms of vswitchd's answers that vswitchctl
 * prints without --json (show, fdb-show, stats, version, capture-stop).  Each
 * takes the "result" object of one answer (docs/vswitch-rpc.md) and copes
 * with members that are missing or mistyped by printing what it can. */
#ifndef VSWITCHCTL_FMT_H
#define VSWITCHCTL_FMT_H

#include <stdio.h>

#include <json-c/json.h>

/* Bridges and their ports, in the manner of 'ovs-vsctl show'. */
void vsctl_print_show(FILE *f, struct json_object *result);
/* The forwarding table, in the manner of 'ovs-appctl fdb/show'. */
void vsctl_print_fdb(FILE *f, struct json_object *result);
/* One table of counters per port, then per VLAN. */
void vsctl_print_stats(FILE *f, struct json_object *result);
/* "vswitchd VERSION". */
void vsctl_print_version(FILE *f, struct json_object *result);
/* "N packets written to FILE" (FILE when the answer names it), for an
 * ended capture. */
void vsctl_print_capture(FILE *f, struct json_object *result);

#endif
