/* SPDX-License-Identifier: MIT */
/* call.c: method dispatch and the parameter accessors methods use.  A
 * method sees its request only through struct rpc_call, so the same method
 * answers a client's request and the replay of saved state. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

struct rpc_call {
	const char *method;
	struct json_object *params; /* an object or NULL */
	struct json_object *result;
	struct errmsg *err;
	void *ctx;
	bool changed;
};

void *rpc_call_ctx(const struct rpc_call *call)
{
	return call->ctx;
}

struct json_object *rpc_call_result(const struct rpc_call *call)
{
	return call->result;
}

struct errmsg *rpc_call_err(const struct rpc_call *call)
{
	return call->err;
}

const char *rpc_call_method(const struct rpc_call *call)
{
	return call->method;
}

void rpc_call_set_changed(struct rpc_call *call)
{
	call->changed = true;
}

struct json_object *rpc_param(const struct rpc_call *call, const char *key)
{
	struct json_object *v;

	if (!call->params || !json_object_object_get_ex(call->params, key, &v) ||
	    json_object_is_type(v, json_type_null)) {
		return NULL;
	}
	return v;
}

int rpc_get_str(struct rpc_call *call, const char *key, bool required, const char **outp)
{
	struct json_object *v = rpc_param(call, key);

	*outp = NULL;
	if (!v) {
		if (required) {
			errmsg_set(call->err, "missing parameter '%s'", key);
			return -EINVAL;
		}
		return 0;
	}
	if (!json_object_is_type(v, json_type_string)) {
		errmsg_set(call->err, "parameter '%s' must be a string", key);
		return -EINVAL;
	}
	/* The server refuses NUL in any string already; a replayed file
	 * goes through here too. */
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
		errmsg_set(call->err, "parameter '%s' holds a NUL character", key);
		return -EINVAL;
	}
	*outp = json_object_get_string(v);
	return 0;
}

int rpc_get_uint(struct rpc_call *call, const char *key, uint64_t min, uint64_t max,
		 uint64_t *outp)
{
	struct json_object *v = rpc_param(call, key);
	int64_t n;

	if (!v) {
		return 0;
	}
	if (!json_object_is_type(v, json_type_int)) {
		errmsg_set(call->err, "parameter '%s' must be an integer", key);
		return -EINVAL;
	}
	n = json_object_get_int64(v);
	/* json-c saturates what does not fit in int64; such a value is out
	 * of every range we accept anyway. */
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max) {
		errmsg_set(call->err, "parameter '%s' out of range %llu-%llu", key,
			   (unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	*outp = (uint64_t)n;
	return 1;
}

int rpc_get_bool(struct rpc_call *call, const char *key, bool *outp)
{
	struct json_object *v = rpc_param(call, key);

	if (!v) {
		return 0;
	}
	if (!json_object_is_type(v, json_type_boolean)) {
		errmsg_set(call->err, "parameter '%s' must be true or false", key);
		return -EINVAL;
	}
	*outp = json_object_get_boolean(v);
	return 1;
}

int rpc_get_path(struct rpc_call *call, const char *key, bool required, size_t max_bytes,
		 const char **outp)
{
	int ret = rpc_get_str(call, key, required, outp);

	if (ret < 0 || !*outp) {
		return ret;
	}
	if ((*outp)[0] != '/') {
		errmsg_set(call->err, "parameter '%s' must be an absolute path, not '%s'", key,
			   *outp);
		return -EINVAL;
	}
	if (strlen(*outp) > (max_bytes ? max_bytes : PATH_MAX - 1)) {
		errmsg_set(call->err, "parameter '%s' is longer than %zu bytes", key,
			   max_bytes ? max_bytes : (size_t)PATH_MAX - 1);
		return -EINVAL;
	}
	return 0;
}

int rpc_dispatch(const struct rpc_method *methods, size_t n, void *ctx, const char *method,
		 struct json_object *params, struct json_object **resultp, int *codep,
		 bool *changedp, struct errmsg *err)
{
	struct rpc_call call = {.method = method, .params = params, .err = err, .ctx = ctx};
	int ret;

	*changedp = false;
	errmsg_clear(err);
	if (params && !json_object_is_type(params, json_type_object)) {
		errmsg_set(err, "params must be an object");
		*codep = RPC_INVALID_PARAMS;
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(methods[i].name, method) != 0) {
			continue;
		}
		call.result = json_object_new_object();
		if (!call.result) {
			*codep = RPC_FAILED;
			return -ENOMEM;
		}
		ret = methods[i].fn(&call);
		*changedp = call.changed;
		if (ret < 0) {
			json_object_put(call.result);
			if (err && !err->msg[0]) {
				errmsg_set(err, "%s: %s", method, strerror(-ret));
			}
			*codep = ret == -EINVAL ? RPC_INVALID_PARAMS : RPC_FAILED;
			return ret;
		}
		*resultp = call.result;
		return 0;
	}
	errmsg_set(err, "no method named '%s'", method);
	*codep = RPC_NO_METHOD;
	return -ENOSYS;
}
