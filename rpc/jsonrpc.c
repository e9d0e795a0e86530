/* SPDX-License-Identifier: MIT */
/* jsonrpc.c: JSON-RPC 2.0 as the specification has it (jsonrpc.org): a
 * request object or a batch array in, a response, an array of them or
 * nothing (notifications) out.  json-c parses; a small scanner over the raw
 * text finds what json-c loses: the exact text of numeric ids (json-c
 * saturates integers past 64 bits) and escaped NUL characters (json-c keeps
 * them in values but C code downstream would cut the string there). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc.h"

/* --------------------------------------------------------- raw scanner */

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
		p++;
	}
	return p;
}

/* 'p' at an opening quote; returns the byte after the closing one. */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\') {
			p++;
		} else if (*p == '"') {
			return p + 1;
		}
	}
	return end;
}

/* Returns the byte after the JSON value starting at 'p' (already parsed by
 * json-c, so well formed). */
static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		char c = *p;

		if (c == '"') {
			p = skip_string(p, end);
			if (depth == 0) {
				return p;
			}
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0) {
				return p;
			}
			if (--depth == 0) {
				return p + 1;
			}
		} else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\r' ||
					  c == '\n')) {
			return p;
		}
		p++;
	}
	return p;
}

/* The raw text of member "id" of the object in [p, end). */
static bool find_raw_id(const char *p, const char *end, const char **idp, size_t *sizep)
{
	bool found = false;

	p = skip_ws(p, end);
	if (p == end || *p != '{') {
		return false;
	}
	p++;
	for (;;) {
		const char *key, *val;

		p = skip_ws(p, end);
		if (p == end || *p != '"') {
			return false;
		}
		key = p;
		p = skip_ws(skip_string(p, end), end);
		if (p == end || *p != ':') {
			return false;
		}
		val = skip_ws(p + 1, end);
		if (val == end) {
			return false;
		}
		p = skip_value(val, end);
		if (p - key >= 4 && memcmp(key, "\"id\"", 4) == 0 && skip_ws(key + 4, end)[0] == ':') {
			*idp = val;
			*sizep = (size_t)(p - val);
			found = true;
		}
		p = skip_ws(p, end);
		if (p == end || *p != ',') {
			return found;
		}
		p++;
	}
}

/* Whether the raw text holds an escape that decodes to NUL. */
static bool has_nul_escape(const char *p, const char *end)
{
	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		size_t run = 0;

		if (!bs) {
			return false;
		}
		while (bs + run < end && bs[run] == '\\') {
			run++;
		}
		if (run % 2 == 1 && end - (bs + run) >= 5 && (bs[run] == 'u' || bs[run] == 'U') &&
		    memcmp(bs + run + 1, "0000", 4) == 0) {
			return true;
		}
		p = bs + run;
	}
	return false;
}

/* ------------------------------------------------------------- replies */

static struct json_object *new_reply(struct json_object *id)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(r, "id", id);
	return r;
}

static struct json_object *error_reply(struct json_object *id, int code, int err_no,
				       const char *message)
{
	struct json_object *r = new_reply(id), *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	if (err_no) {
		struct json_object *data = json_object_new_object();
		const char *name = strerrorname_np(err_no);

		json_object_object_add(data, "errno", json_object_new_int(err_no));
		json_object_object_add(data, "name", json_object_new_string(name ? name : "?"));
		json_object_object_add(e, "data", data);
	}
	json_object_object_add(r, "error", e);
	return r;
}

/* The id to answer with: strings as parsed, numbers as their exact text. */
static struct json_object *reply_id(struct json_object *id, const char *raw, const char *end)
{
	const char *text = NULL;
	size_t size = 0;
	char *copy;
	struct json_object *out;

	if (!json_object_is_type(id, json_type_int) && !json_object_is_type(id, json_type_double)) {
		return json_object_get(id);
	}
	if (!find_raw_id(raw, end, &text, &size) || !(copy = strndup(text, size))) {
		return json_object_get(id);
	}
	out = json_object_new_double_s(json_object_get_double(id), copy);
	free(copy);
	return out;
}

static bool valid_id(struct json_object *id)
{
	switch (json_object_get_type(id)) {
	case json_type_null:
	case json_type_int:
	case json_type_double:
	case json_type_string:
		return true;
	default:
		return false;
	}
}

/* Answers one request object whose raw text is [raw, end).  Returns NULL
 * for a notification. */
static struct json_object *answer_one(const struct rpc_dispatcher *d, struct json_object *req,
				      const char *raw, const char *end)
{
	struct json_object *id = NULL, *version, *method, *params = NULL, *result = NULL;
	struct errmsg err = {{0}};
	bool has_id, changed;
	int code, ret;

	if (!json_object_is_type(req, json_type_object)) {
		return error_reply(NULL, RPC_INVALID_REQUEST, 0, "a request must be a JSON object");
	}
	has_id = json_object_object_get_ex(req, "id", &id);
	if (has_id && !valid_id(id)) {
		return error_reply(NULL, RPC_INVALID_REQUEST, 0,
				   "a request id must be a string, a number or null");
	}
	if (!json_object_object_get_ex(req, "jsonrpc", &version) ||
	    !json_object_is_type(version, json_type_string) ||
	    strcmp(json_object_get_string(version), "2.0") != 0) {
		return error_reply(reply_id(id, raw, end), RPC_INVALID_REQUEST, 0,
				   "a request must have \"jsonrpc\": \"2.0\"");
	}
	if (!json_object_object_get_ex(req, "method", &method) ||
	    !json_object_is_type(method, json_type_string)) {
		return error_reply(reply_id(id, raw, end), RPC_INVALID_REQUEST, 0,
				   "a request must have a string 'method'");
	}
	json_object_object_get_ex(req, "params", &params);
	if (has_nul_escape(raw, end)) {
		return error_reply(reply_id(id, raw, end), RPC_INVALID_REQUEST, 0,
				   "strings must not contain NUL characters");
	}
	ret = rpc_dispatch(d->methods, d->n_methods, d->ctx, json_object_get_string(method),
			   json_object_is_type(params, json_type_null) ? NULL : params, &result,
			   &code, &changed, &err);
	if (ret == 0 && changed && d->commit) {
		struct errmsg why = {{0}};

		if (d->commit(d->ctx, &why) < 0) {
			/* Applied but not saved: say so rather than pretend. */
			json_object_put(result);
			errmsg_set(&err, "applied, but not saved: %s", why.msg);
			ret = -EIO;
			code = RPC_FAILED;
		}
	}
	if (!has_id) {
		json_object_put(result);
		return NULL;
	}
	if (ret < 0) {
		return error_reply(reply_id(id, raw, end), code, -ret, err.msg);
	}
	{
		struct json_object *r = new_reply(reply_id(id, raw, end));

		json_object_object_add(r, "result", result);
		return r;
	}
}

/* Answers a batch: an array of answers, or NULL if all were
 * notifications. */
static struct json_object *answer_batch(const struct rpc_dispatcher *d, struct json_object *reqs,
					const char *raw, const char *end)
{
	size_t n = json_object_array_length(reqs);
	struct json_object *out;
	const char *p;

	if (n == 0) {
		return error_reply(NULL, RPC_INVALID_REQUEST, 0, "an empty batch");
	}
	out = json_object_new_array();
	p = skip_ws(raw, end) + 1; /* past '[' */
	for (size_t i = 0; i < n; i++) {
		const char *start = skip_ws(p, end), *stop = skip_value(start, end);
		struct json_object *a = answer_one(d, json_object_array_get_idx(reqs, i), start,
						   stop);

		if (a) {
			json_object_array_add(out, a);
		}
		p = skip_ws(stop, end);
		if (p < end && *p == ',') {
			p++;
		}
	}
	if (json_object_array_length(out) == 0) {
		json_object_put(out);
		return NULL;
	}
	return out;
}

static char *to_line(struct json_object *o)
{
	const char *text;
	char *line = NULL;

	if (!o) {
		return NULL;
	}
	/* Plain output has no newline inside: strings escape theirs. */
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						 JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text && asprintf(&line, "%s\n", text) < 0) {
		line = NULL;
	}
	json_object_put(o);
	return line;
}

char *rpc_jsonrpc_error_line(int code, int err_no, const char *message)
{
	return to_line(error_reply(NULL, code, err_no, message));
}

char *rpc_jsonrpc_answer(const struct rpc_dispatcher *d, const char *line, size_t size)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *req, *answer;
	const char *end = line + size;
	size_t used;

	if (!tok) {
		return NULL;
	}
	req = json_tokener_parse_ex(tok, line, (int)size);
	if (json_tokener_get_error(tok) == json_tokener_continue) {
		/* A bare number waits for more digits: the line's end ends it. */
		req = json_tokener_parse_ex(tok, "\n", 1);
		used = size;
	} else {
		used = json_tokener_get_parse_end(tok);
	}
	if (json_tokener_get_error(tok) != json_tokener_success || !req) {
		answer = error_reply(NULL, RPC_PARSE_ERROR, 0, "the request is not valid JSON");
	} else if (skip_ws(line + used, end) != end) {
		answer = error_reply(NULL, RPC_PARSE_ERROR, 0,
				     "more than one JSON text on the line");
	} else if (json_object_is_type(req, json_type_array)) {
		answer = answer_batch(d, req, line, end);
	} else {
		answer = answer_one(d, req, line, end);
	}
	json_object_put(req);
	json_tokener_free(tok);
	return to_line(answer);
}
