/* SPDX-License-Identifier: MIT */
/* rpc.h: what every daemon and command-line client of the project shares:
 * JSON-RPC 2.0 over a Unix stream socket (one JSON text per line each way),
 * method dispatch with parameter accessors and error replies, the client
 * with deadlines, atomic persistence of a daemon's state, and the daemon
 * plumbing (pidfile, signals, claiming a socket path).  Open vSwitch splits
 * the same job into lib/jsonrpc.c, lib/unixctl.c and lib/daemon.c.
 *
 * Conventions: functions return 0 (or a count) or a negative errno and never
 * print or exit; calls a user must understand leave one sentence in a
 * 'struct errmsg'.  Nothing here is thread-safe: a server and its methods
 * run on the one thread that calls rpc_server_run(), a client on the thread
 * that made it.
 *
 * What the server refuses (docs/rpc.md has the user-facing list): requests
 * that are not JSON-RPC 2.0 (-32600), any string with an embedded NUL
 * (-32600: C code would silently cut it), more than one JSON text on a line
 * (-32700), params that are not an object (-32602).  Notifications (no
 * "id") are run and never answered; batches are supported; numeric ids are
 * echoed byte for byte. */
#ifndef RPC_H
#define RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "errmsg.h"

/* JSON-RPC 2.0 error codes; -32000 and below are ours. */
#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_NO_METHOD -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_FAILED -32000
/* The daemon refused the connection: too many open ones. */
#define RPC_BUSY -32001

/* ------------------------------------------------------------- methods */

/* One request being answered, handed to a method. */
struct rpc_call;

/* A method fills rpc_call_result() and returns 0, or returns a negative
 * errno with a sentence in rpc_call_err(); -EINVAL answers "invalid
 * params" (-32602), anything else "failed" (-32000) with the errno in the
 * error's data.  A method that changed state the daemon persists calls
 * rpc_call_set_changed(). */
typedef int (*rpc_method_fn)(struct rpc_call *call);

struct rpc_method {
	const char *name;
	rpc_method_fn fn;
};

void *rpc_call_ctx(const struct rpc_call *call);
struct json_object *rpc_call_result(const struct rpc_call *call);
struct errmsg *rpc_call_err(const struct rpc_call *call);
const char *rpc_call_method(const struct rpc_call *call);
void rpc_call_set_changed(struct rpc_call *call);

/* Member 'key' of the params, or NULL when absent or null (borrowed). */
struct json_object *rpc_param(const struct rpc_call *call, const char *key);
/* A string member; a missing optional one leaves '*outp' NULL.  Returns 0
 * or -EINVAL with a sentence (missing, not a string). */
int rpc_get_str(struct rpc_call *call, const char *key, bool required, const char **outp);
/* An integer member in ['min', 'max']: returns 1 if present, 0 if absent
 * ('*outp' untouched), -EINVAL if mistyped or out of range. */
int rpc_get_uint(struct rpc_call *call, const char *key, uint64_t min, uint64_t max,
		 uint64_t *outp);
/* A boolean member: 1 if present, 0 if absent, -EINVAL if mistyped. */
int rpc_get_bool(struct rpc_call *call, const char *key, bool *outp);
/* An absolute file path member (the daemon's working directory means
 * nothing to its clients), at most 'max_bytes' long (0: PATH_MAX). */
int rpc_get_path(struct rpc_call *call, const char *key, bool required, size_t max_bytes,
		 const char **outp);

/* Runs 'method' of the table 'methods' ('n' entries) with 'params' (an
 * object or NULL) and the daemon's 'ctx'.  On success returns 0 with a new
 * result object in '*resultp'; otherwise a negative errno, the sentence in
 * 'err' and the JSON-RPC error code in '*codep'.  '*changedp' says whether
 * the method changed persistent state.  For replaying saved state through
 * the same checks a client's request gets. */
int rpc_dispatch(const struct rpc_method *methods, size_t n, void *ctx, const char *method,
		 struct json_object *params, struct json_object **resultp, int *codep,
		 bool *changedp, struct errmsg *err);

/* -------------------------------------------------------------- server */

struct rpc_server;

struct rpc_server_opts {
	const char *path;     /* the socket; its directory is created */
	mode_t mode;	      /* of the socket file; 0 = 0660 */
	gid_t group;	      /* its group; (gid_t)-1 = the daemon's */
	const char *name;     /* the daemon's name, for messages */
	const struct rpc_method *methods;
	size_t n_methods;
	void *ctx; /* passed to methods and callbacks */
	/* Called after a method that changed state succeeded and before its
	 * answer goes out (NULL: none): saving it there means a client that
	 * saw success finds it after a restart.  A failure turns the answer
	 * into an error saying the change was applied but not saved. */
	int (*commit)(void *ctx, struct errmsg *err);
	/* Where the server's own notes go (a client dropped); NULL: nowhere. */
	void (*log)(void *ctx, const char *sentence);
	unsigned max_clients;	      /* 0 = 64 */
	unsigned max_clients_per_uid; /* 0 = a quarter of max_clients */
	unsigned idle_timeout_ms;     /* 0 = 60 s; a quiet client is closed */
	size_t max_output_bytes;      /* 0 = 64 MiB of unsent answers */
};

void rpc_server_opts_init(struct rpc_server_opts *opts);

/* Listens on opts->path, claimed as rpc_unix_listen() does. */
int rpc_server_open(const struct rpc_server_opts *opts, struct rpc_server **serverp,
		    struct errmsg *err);
/* Closes every connection and the socket, and removes the socket file
 * (NULL: no-op). */
void rpc_server_close(struct rpc_server *server);
/* A descriptor that polls readable when rpc_server_run() has work. */
int rpc_server_fd(const struct rpc_server *server);
/* Accepts, reads, answers and writes what is ready, without blocking, and
 * closes idle clients.  Returns the milliseconds until it next needs to
 * run for a timeout (-1: none), for the caller's poll(). */
int rpc_server_run(struct rpc_server *server);
/* Serves until 'stop_fd' (a daemon's signalfd) polls readable: the main
 * loop of a daemon whose control thread does nothing else.  Returns 0, or
 * a negative errno if poll() fails. */
int rpc_server_loop(struct rpc_server *server, int stop_fd);
/* Connections open now. */
unsigned rpc_server_n_clients(const struct rpc_server *server);

/* -------------------------------------------------------------- client */

struct rpc_client;

/* Connects to the daemon called 'name' (for messages) at 'path'; every call
 * waits at most 'timeout_s' (0: for ever). */
int rpc_client_open(const char *path, const char *name, int timeout_s,
		    struct rpc_client **clientp, struct errmsg *err);
void rpc_client_close(struct rpc_client *client);
/* Sends 'method' with 'params' (borrowed; NULL: none) and waits for the
 * answer.  Returns 0 with the result object in '*resultp' (the caller puts
 * it), -EREMOTEIO when the daemon answered with an error (its sentence is
 * in 'err', its code in '*codep' if not NULL), or another negative errno
 * when the exchange failed. */
int rpc_client_call(struct rpc_client *client, const char *method, struct json_object *params,
		    struct json_object **resultp, int *codep, struct errmsg *err);

/* ------------------------------------------------------- persistence */

/* Writes 'doc' to 'path' so that a crash at any instant leaves the old file
 * or the new one: a temporary file, fsync, rename, fsync of the
 * directory. */
int rpc_store_save(const char *path, struct json_object *doc, struct errmsg *err);
/* Reads 'path' into '*docp' (an object).  Returns -ENOENT when there is no
 * file, -EINVAL with a sentence when it is not a JSON object.  Removes a
 * temporary file a crash in rpc_store_save() left behind. */
int rpc_store_load(const char *path, struct json_object **docp, struct errmsg *err);

/* ------------------------------------------------------------ daemons */

/* Creates the directories leading to 'path' (mode 0755). */
int rpc_mkdirs_for(const char *path);
/* Blocks SIGINT and SIGTERM in this thread (call it before starting any
 * thread, so they all inherit it), ignores SIGPIPE, and returns a signalfd
 * that reads them. */
int rpc_signal_fd(void);
/* Writes this process's id to 'path', replacing what was there. */
int rpc_pidfile_write(const char *path, struct errmsg *err);

/* Claims 'path' for a Unix socket that will listen there: a socket file
 * nobody answers on (left by a killed process) is removed; one a process
 * listens on is refused with -EADDRINUSE; any other file is left alone and
 * refused with -EEXIST; a missing directory gives -ENOENT.  'what' names
 * the socket in the sentence ("control socket"). */
int rpc_unix_claim(const char *path, const char *what, struct errmsg *err);
/* Claims 'path' and listens on it with 'mode' and 'group' ((gid_t)-1:
 * unchanged).  Returns the listening descriptor (non-blocking,
 * close-on-exec) or a negative errno. */
int rpc_unix_listen(const char *path, mode_t mode, gid_t group, const char *what,
		    struct errmsg *err);
/* Gives an existing socket file 'mode' and 'group' ((gid_t)-1: unchanged),
 * for sockets a library (rte_vhost) created. */
int rpc_unix_set_mode(const char *path, mode_t mode, gid_t group, struct errmsg *err);
/* Parses a group name or number into '*gidp'. */
int rpc_parse_group(const char *text, gid_t *gidp);

#endif
