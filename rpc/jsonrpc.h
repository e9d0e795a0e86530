/* SPDX-License-Identifier: MIT */
/* jsonrpc.h: internal to librpc.  Turns one received line into the line to
 * send back, by the rules of JSON-RPC 2.0 (server.c does the sockets). */
#ifndef RPC_JSONRPC_H
#define RPC_JSONRPC_H

#include <stddef.h>

#include "rpc.h"

struct rpc_dispatcher {
	const struct rpc_method *methods;
	size_t n_methods;
	void *ctx;
	int (*commit)(void *ctx, struct errmsg *err);
	const char *name;
};

/* Answers the request (or batch) in 'line' of 'size' bytes, newline
 * excluded.  Returns the answer with its newline (the caller frees it),
 * NULL when there is nothing to answer (notifications) or no memory. */
char *rpc_jsonrpc_answer(const struct rpc_dispatcher *d, const char *line, size_t size);

/* A one-line error answer with id null, for refusals before any request
 * is read (the caller frees it). */
char *rpc_jsonrpc_error_line(int code, int err_no, const char *message);

#endif
