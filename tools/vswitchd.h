/* SPDX-License-Identifier: MIT */
/* vswitchd.h: what the daemon's two halves share: the main loop
 * (vswitchd.c: EAL, the control socket, persistence) and the JSON-RPC
 * methods (vswitchd-rpc.c), which work on the datapath of vswitch-dp.h. */
#ifndef VSWITCHD_H
#define VSWITCHD_H

#include <stdbool.h>

#include <json-c/json.h>

#include "errmsg.h"

struct vsw_dp;

/* JSON-RPC 2.0 error codes (docs/vswitch-rpc.md). */
#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_NO_METHOD -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_FAILED -32000

/* Calls 'method' with 'params' (an object, or NULL for none).  On success
 * returns 0 with a new result object in '*resultp'; otherwise a negative
 * errno with a sentence in 'err' and the JSON-RPC code in '*codep'.
 * '*changedp' tells whether the configuration changed (so it must be
 * saved). */
int rpc_call(struct vsw_dp *dp, const char *method, struct json_object *params,
	     struct json_object **resultp, int *codep, bool *changedp, struct errmsg *err);

/* The persistent configuration: bridges with their settings, ports as the
 * add-port parameters that recreate them, static FDB entries as fdb-add
 * parameters.  Returns a new object or NULL (out of memory). */
struct json_object *rpc_config_dump(struct vsw_dp *dp);

#endif
