/* SPDX-License-Identifier: MIT */
/* client.c: the client side of the control socket, for the CLIs: one
 * request at a time, each bounded by a deadline, answers checked against
 * JSON-RPC 2.0 before anything in them is believed. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rpc.h"

/* The longest answer accepted, newline included: a daemon gone wrong must
 * not eat the client's memory. */
#define MAX_LINE_BYTES (64u << 20)
#define RECV_BUF_BYTES 65536u

struct rpc_client {
	int fd;
	char *path;
	char *name;
	int timeout_s;
	int next_id;
	char *buf; /* received, not yet consumed */
	size_t len_bytes, cap_bytes;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int rpc_client_open(const char *path, const char *name, int timeout_s,
		    struct rpc_client **clientp, struct errmsg *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	/* connect() on a Unix socket waits while the daemon's backlog is
	 * full, for as long as SO_SNDTIMEO allows, then fails with EAGAIN. */
	struct timeval tv = {.tv_sec = timeout_s};
	struct rpc_client *c;
	int ret;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		errmsg_set(err, "control socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	c = calloc(1, sizeof(*c));
	if (!c) {
		return -ENOMEM;
	}
	*c = (struct rpc_client){.fd = -1, .timeout_s = timeout_s, .next_id = 1,
				 .path = strdup(path), .name = strdup(name)};
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!c->path || !c->name || c->fd < 0) {
		ret = c->fd < 0 ? -errno : -ENOMEM;
		errmsg_set(err, "cannot create a socket: %s", strerror(-ret));
		goto out_free;
	}
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		ret = -errno;
		if (ret == -EAGAIN) {
			errmsg_set(err, "%s at %s did not accept the connection within %d s", name,
				   path, timeout_s);
		} else {
			errmsg_set(err, "cannot reach %s at %s: %s%s%s%s", name, path,
				   strerror(-ret),
				   ret == -ENOENT || ret == -ECONNREFUSED ? " (is " : "",
				   ret == -ENOENT || ret == -ECONNREFUSED ? name : "",
				   ret == -ENOENT || ret == -ECONNREFUSED ? " running?)" : "");
		}
		goto out_free;
	}
	*clientp = c;
	return 0;
out_free:
	rpc_client_close(c);
	return ret;
}

void rpc_client_close(struct rpc_client *c)
{
	if (!c) {
		return;
	}
	if (c->fd >= 0) {
		close(c->fd);
	}
	free(c->buf);
	free(c->path);
	free(c->name);
	free(c);
}

/* Milliseconds poll() may wait until 'deadline' (0: none, -1 for poll()),
 * rounded up so the last wait is not a spin. */
static int ms_left(double deadline)
{
	double left_ms;

	if (!deadline) {
		return -1;
	}
	left_ms = (deadline - now_s()) * 1000;
	return left_ms <= 0 ? 0 : (int)left_ms + 1;
}

/* Waits until the socket is ready for 'events'.  Returns 0 or -ETIMEDOUT;
 * errors and hang-ups are left for send() or recv() to report. */
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

static int send_all(struct rpc_client *c, const char *data, size_t size, double deadline)
{
	while (size) {
		int ret = wait_ready(c->fd, POLLOUT, deadline);
		ssize_t n;

		if (ret < 0) {
			return ret;
		}
		/* MSG_NOSIGNAL: a daemon that hangs up is an error to report,
		 * not a SIGPIPE to die of. */
		n = send(c->fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -errno;
		}
		if (n > 0) {
			data += n;
			size -= (size_t)n;
		}
	}
	return 0;
}

static int send_request(struct rpc_client *c, int id, const char *method,
			struct json_object *params, double deadline)
{
	struct json_object *req = json_object_new_object();
	const char *text;
	int ret;

	json_object_object_add(req, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(req, "id", json_object_new_int(id));
	json_object_object_add(req, "method", json_object_new_string(method));
	if (params) {
		json_object_object_add(req, "params", json_object_get(params));
	}
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	ret = send_all(c, text, strlen(text), deadline);
	if (ret == 0) {
		ret = send_all(c, "\n", 1, deadline);
	}
	json_object_put(req);
	return ret;
}

/* Appends what the socket holds to the buffer.  Returns 0, -ENODATA at the
 * end of the stream, -EMSGSIZE when the buffer is full, or an errno. */
static int recv_more(struct rpc_client *c, double deadline)
{
	ssize_t n;
	int ret;

	if (c->len_bytes == c->cap_bytes) {
		size_t cap = c->cap_bytes ? 2 * c->cap_bytes : RECV_BUF_BYTES;
		char *buf;

		if (c->cap_bytes >= MAX_LINE_BYTES) {
			return -EMSGSIZE;
		}
		cap = cap < MAX_LINE_BYTES ? cap : MAX_LINE_BYTES;
		buf = realloc(c->buf, cap);
		if (!buf) {
			return -ENOMEM;
		}
		c->buf = buf;
		c->cap_bytes = cap;
	}
	ret = wait_ready(c->fd, POLLIN, deadline);
	if (ret < 0) {
		return ret;
	}
	n = recv(c->fd, c->buf + c->len_bytes, c->cap_bytes - c->len_bytes, MSG_DONTWAIT);
	if (n == 0) {
		return -ENODATA;
	}
	if (n < 0) {
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	}
	c->len_bytes += (size_t)n;
	return 0;
}

static int read_line(struct rpc_client *c, double deadline, size_t *sizep)
{
	size_t scanned = 0;

	for (;;) {
		char *nl = c->len_bytes > scanned
				   ? memchr(c->buf + scanned, '\n', c->len_bytes - scanned)
				   : NULL;
		int ret;

		if (nl) {
			*sizep = (size_t)(nl - c->buf) + 1;
			return 0;
		}
		scanned = c->len_bytes;
		ret = recv_more(c, deadline);
		if (ret < 0) {
			return ret;
		}
	}
}

static int exchange_error(struct rpc_client *c, int ret, struct errmsg *err)
{
	switch (ret) {
	case -ETIMEDOUT:
		errmsg_set(err, "%s at %s did not answer within %d s", c->name, c->path,
			   c->timeout_s);
		break;
	case -ENODATA:
		errmsg_set(err, "%s at %s closed the connection without answering", c->name,
			   c->path);
		break;
	case -EMSGSIZE:
		errmsg_set(err, "%s at %s sent an answer longer than %u MiB", c->name, c->path,
			   MAX_LINE_BYTES >> 20);
		break;
	default:
		errmsg_set(err, "lost the connection to %s at %s: %s", c->name, c->path,
			   strerror(-ret));
		break;
	}
	return ret;
}

static int malformed(struct rpc_client *c, const char *why, struct errmsg *err)
{
	errmsg_set(err, "%s at %s sent a malformed answer: %s", c->name, c->path, why);
	return -EPROTO;
}

/* The daemon's sentence, shown as it is; the code if it left none. */
static int daemon_error(struct rpc_client *c, struct json_object *error, int *codep,
			struct errmsg *err)
{
	struct json_object *msg = NULL, *code = NULL;

	json_object_object_get_ex(error, "message", &msg);
	json_object_object_get_ex(error, "code", &code);
	if (codep) {
		*codep = code ? json_object_get_int(code) : RPC_FAILED;
	}
	if (json_object_is_type(msg, json_type_string) && json_object_get_string_len(msg)) {
		errmsg_set(err, "%s", json_object_get_string(msg));
	} else {
		errmsg_set(err, "%s at %s failed with error %s", c->name, c->path,
			   code ? json_object_get_string(code) : "?");
	}
	return -EREMOTEIO;
}

static int answer_result(struct rpc_client *c, int id, struct json_object *answer,
			 struct json_object **resultp, int *codep, struct errmsg *err)
{
	struct json_object *version = NULL, *aid = NULL, *error = NULL, *result = NULL;
	bool is_error;

	if (!json_object_is_type(answer, json_type_object)) {
		return malformed(c, "not a JSON object", err);
	}
	json_object_object_get_ex(answer, "jsonrpc", &version);
	if (!json_object_is_type(version, json_type_string) ||
	    strcmp(json_object_get_string(version), "2.0")) {
		return malformed(c, "not JSON-RPC 2.0", err);
	}
	is_error = json_object_object_get_ex(answer, "error", &error);
	json_object_object_get_ex(answer, "id", &aid);
	/* An error about a request the daemon could not read has id null. */
	if (!(json_object_is_type(aid, json_type_int) && json_object_get_int64(aid) == id) &&
	    !(is_error && !aid)) {
		return malformed(c, "it answers another request", err);
	}
	if (is_error) {
		return daemon_error(c, error, codep, err);
	}
	if (!json_object_object_get_ex(answer, "result", &result)) {
		return malformed(c, "neither result nor error", err);
	}
	if (!json_object_is_type(result, json_type_object)) {
		return malformed(c, "the result is not an object", err);
	}
	*resultp = json_object_get(result);
	return 0;
}

static bool only_blanks(const char *s, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		if (!isspace((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static int parse_answer(struct rpc_client *c, int id, size_t size,
			struct json_object **resultp, int *codep, struct errmsg *err)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *answer;
	enum json_tokener_error jerr;
	int ret;

	if (!tok) {
		return -ENOMEM;
	}
	/* The newline is passed too: it ends a bare number the tokener
	 * would otherwise wait to see continue. */
	answer = json_tokener_parse_ex(tok, c->buf, (int)size);
	jerr = json_tokener_get_error(tok);
	if (jerr != json_tokener_success) {
		ret = malformed(c, json_tokener_error_desc(jerr), err);
	} else if (!only_blanks(c->buf + json_tokener_get_parse_end(tok),
				size - json_tokener_get_parse_end(tok))) {
		ret = malformed(c, "more than one JSON value on the line", err);
	} else {
		ret = answer_result(c, id, answer, resultp, codep, err);
	}
	json_object_put(answer);
	json_tokener_free(tok);
	return ret;
}

int rpc_client_call(struct rpc_client *c, const char *method, struct json_object *params,
		    struct json_object **resultp, int *codep, struct errmsg *err)
{
	double deadline = c->timeout_s ? now_s() + c->timeout_s : 0;
	int id = c->next_id++;
	size_t size = 0;
	int ret;

	ret = send_request(c, id, method, params, deadline);
	if (ret == 0) {
		ret = read_line(c, deadline, &size);
	}
	if (ret < 0) {
		/* A refused connection's "busy" line may be waiting: say that
		 * rather than "connection reset". */
		if (!c->len_bytes) {
			recv_more(c, now_s() + 0.1);
		}
		if (c->len_bytes && memchr(c->buf, '\n', c->len_bytes)) {
			size = (size_t)((char *)memchr(c->buf, '\n', c->len_bytes) - c->buf) + 1;
		} else {
			return exchange_error(c, ret, err);
		}
	}
	ret = parse_answer(c, id, size, resultp, codep, err);
	memmove(c->buf, c->buf + size, c->len_bytes - size);
	c->len_bytes -= size;
	return ret;
}
