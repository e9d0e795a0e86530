/* SPDX-License-Identifier: MIT */
/* vswitchd.h: what the daemon's two halves share: the main loop
 * (vswitchd.c: EAL, the control socket, persistence) and the JSON-RPC
 * methods (vswitchd-rpc.c), which work on the datapath of vswitch-dp.h
 * (the methods' context pointer). */
#ifndef VSWITCHD_H
#define VSWITCHD_H

#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "rpc.h"

struct vsw_dp;

/* The methods of docs/vswitch-rpc.md. */
extern const struct rpc_method vswd_methods[];
extern const size_t vswd_n_methods;
/* The datapath behind the methods' context pointer. */
struct vsw_dp *vswd_dp(void *ctx);
/* The one directory captures may be written in (--capture-dir). */
const char *vswd_capture_dir(void *ctx);
/* The group vhost-user server sockets get ((gid_t)-1: the daemon's). */
gid_t vswd_socket_group(void *ctx);

/* The persistent configuration: bridges with their settings, ports as the
 * add-port parameters that recreate them, static FDB entries as fdb-add
 * parameters.  Returns a new object or NULL (out of memory). */
struct json_object *rpc_config_dump(struct vsw_dp *dp);

#endif
