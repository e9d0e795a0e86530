/* SPDX-License-Identifier: MIT */
/* server.c: the control socket of a daemon.  Clients send JSON-RPC lines
 * and read the answers in order.  Everything is non-blocking, so that no
 * client can stall the daemon or the others:
 *
 *  1. A client's answers wait in its own output queue; the server writes
 *     what the socket takes and never waits for a client to read.
 *  2. A client whose unsent answers pass HIGH_WATER_BYTES is not read
 *     from until they drain; past max_output_bytes it is dropped.
 *  3. Each run answers at most LINES_PER_RUN lines of one client before
 *     turning to the next, so a client pipelining thousands of requests
 *     delays another's by at most that many.
 *  4. Connections are limited in all and per user id (SO_PEERCRED); when
 *     a limit is reached the longest-idle connection of the user holding
 *     the most is closed, and if none has been idle a new one is answered
 *     "busy" (RPC_BUSY) and closed.  Connections idle for idle_timeout_ms
 *     are closed.  So one local user cannot lock others out. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"

/* A request line longer than this is not a control request. */
#define MAX_LINE_BYTES (16u << 20)
#define READ_CHUNK_BYTES 65536u
#define HIGH_WATER_BYTES (1u << 20)
#define LINES_PER_RUN 64
/* A connection idle at least this long may be closed to admit another. */
#define EVICTABLE_IDLE_MS 1000
#define MAX_EVENTS 64

struct client {
	int fd;
	uid_t uid;
	char *in; /* received, not yet answered */
	size_t in_len, in_cap;
	char *out; /* answers not yet sent, from out_off */
	size_t out_len, out_off, out_cap;
	uint64_t last_ms; /* last byte moved either way */
	bool reading;	  /* EPOLLIN registered */
	bool writing;	  /* EPOLLOUT registered */
};

struct rpc_server {
	struct rpc_server_opts opts;
	char *path;
	struct rpc_dispatcher disp;
	int listen_fd;
	int ep;
	struct client **clients;
	unsigned n_clients;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void logf_(struct rpc_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct rpc_server *s, const char *fmt, ...)
{
	struct errmsg m;
	va_list ap;

	if (!s->opts.log) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(m.msg, sizeof(m.msg), fmt, ap);
	va_end(ap);
	s->opts.log(s->opts.ctx, m.msg);
}

void rpc_server_opts_init(struct rpc_server_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->mode = 0660;
	opts->group = (gid_t)-1;
	opts->name = "daemon";
}

static void drop_client(struct rpc_server *s, unsigned i, const char *why)
{
	struct client *c = s->clients[i];

	if (why) {
		logf_(s, "closed a control connection of uid %u: %s", (unsigned)c->uid, why);
	}
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	s->clients[i] = s->clients[--s->n_clients];
}

static void set_events(struct rpc_server *s, struct client *c, bool reading, bool writing)
{
	struct epoll_event ev = {.data.ptr = c};

	if (reading == c->reading && writing == c->writing) {
		return;
	}
	ev.events = (reading ? EPOLLIN : 0) | (writing ? EPOLLOUT : 0);
	epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->reading = reading;
	c->writing = writing;
}

static size_t pending_out(const struct client *c)
{
	return c->out_len - c->out_off;
}

/* Queues 'line' (taken) for the client.  Returns -1 if over its bound. */
static int queue_out(struct rpc_server *s, struct client *c, char *line)
{
	size_t n = strlen(line);

	if (pending_out(c) + n > s->opts.max_output_bytes) {
		free(line);
		return -1;
	}
	if (c->out_off && c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
	}
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *grown;

		while (cap < c->out_len + n) {
			cap *= 2;
		}
		grown = realloc(c->out, cap);
		if (!grown) {
			free(line);
			return -1;
		}
		c->out = grown;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, line, n);
	c->out_len += n;
	free(line);
	return 0;
}

/* Sends what the socket takes now.  Returns -1 when the client is gone. */
static int flush_out(struct client *c)
{
	while (pending_out(c)) {
		ssize_t n = send(c->fd, c->out + c->out_off, pending_out(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				return 0;
			}
			return -1;
		}
		c->out_off += (size_t)n;
		c->last_ms = now_ms();
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Answers up to LINES_PER_RUN complete lines.  Returns 1 if lines remain
 * to answer, 0 if not, -1 to drop the client. */
static int answer_lines(struct rpc_server *s, struct client *c)
{
	for (int n = 0; n < LINES_PER_RUN; n++) {
		char *nl = c->in_len ? memchr(c->in, '\n', c->in_len) : NULL;
		char *answer;
		size_t used;

		if (!nl) {
			return c->in_len > MAX_LINE_BYTES ? -1 : 0;
		}
		if (pending_out(c) > HIGH_WATER_BYTES) {
			return 1; /* (rule 2) wait for the client to read */
		}
		used = (size_t)(nl - c->in) + 1;
		answer = rpc_jsonrpc_answer(&s->disp, c->in, used - 1);
		c->in_len -= used;
		memmove(c->in, c->in + used, c->in_len);
		if (answer && queue_out(s, c, answer) < 0) {
			return -1;
		}
	}
	return memchr(c->in, '\n', c->in_len) ? 1 : 0;
}

/* Reads what the socket holds.  Returns -1 when the client is gone. */
static int read_in(struct client *c)
{
	ssize_t n;

	if (c->in_cap - c->in_len < READ_CHUNK_BYTES) {
		size_t cap = c->in_cap ? c->in_cap * 2 : 2 * READ_CHUNK_BYTES;
		char *grown;

		if (cap > MAX_LINE_BYTES + 2 * READ_CHUNK_BYTES) {
			return -1;
		}
		grown = realloc(c->in, cap);
		if (!grown) {
			return -1;
		}
		c->in = grown;
		c->in_cap = cap;
	}
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n == 0) {
		return -1;
	}
	if (n < 0) {
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	}
	c->in_len += (size_t)n;
	c->last_ms = now_ms();
	return 0;
}

/* Answers, writes and re-arms one client.  Returns 1 if it has lines left
 * to answer, 0 if not, -1 to drop it. */
static int service(struct rpc_server *s, struct client *c)
{
	int more = answer_lines(s, c);

	if (more < 0 || flush_out(c) < 0) {
		return -1;
	}
	set_events(s, c, pending_out(c) <= HIGH_WATER_BYTES, pending_out(c) > 0);
	return more;
}

static unsigned count_uid(const struct rpc_server *s, uid_t uid)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->n_clients; i++) {
		n += s->clients[i]->uid == uid;
	}
	return n;
}

/* The longest-idle client of 'uid', if it has been idle long enough. */
static int evictable(const struct rpc_server *s, uid_t uid, uint64_t now)
{
	int best = -1;

	for (unsigned i = 0; i < s->n_clients; i++) {
		const struct client *c = s->clients[i];

		if (c->uid != uid || pending_out(c) || now - c->last_ms < EVICTABLE_IDLE_MS) {
			continue;
		}
		if (best < 0 || c->last_ms < s->clients[best]->last_ms) {
			best = (int)i;
		}
	}
	return best;
}

/* (rule 4) Makes room for a client of 'uid'; false if there is none. */
static bool make_room(struct rpc_server *s, uid_t uid, uint64_t now)
{
	uid_t biggest = uid;
	unsigned most = 0;
	int victim;

	if (count_uid(s, uid) >= s->opts.max_clients_per_uid) {
		victim = evictable(s, uid, now);
	} else if (s->n_clients >= s->opts.max_clients) {
		for (unsigned i = 0; i < s->n_clients; i++) {
			unsigned n = count_uid(s, s->clients[i]->uid);

			if (n > most) {
				most = n;
				biggest = s->clients[i]->uid;
			}
		}
		victim = evictable(s, biggest, now);
	} else {
		return true;
	}
	if (victim < 0) {
		return false;
	}
	drop_client(s, (unsigned)victim, "idle, and its user holds the most connections");
	return true;
}

static void refuse_busy(struct rpc_server *s, int fd, uid_t uid)
{
	char msg[256];
	char *line;

	snprintf(msg, sizeof(msg), "%s is busy: too many control connections are open (%u)",
		 s->opts.name, s->n_clients);
	line = rpc_jsonrpc_error_line(RPC_BUSY, EBUSY, msg);
	if (line) {
		/* Best effort: a fresh socket's buffer takes one short line. */
		(void)!send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
		free(line);
	}
	logf_(s, "refused a control connection of uid %u: too many open", (unsigned)uid);
	close(fd);
}

static void accept_clients(struct rpc_server *s)
{
	for (;;) {
		struct ucred cred = {.uid = (uid_t)-1};
		socklen_t len = sizeof(cred);
		struct epoll_event ev;
		struct client *c;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			return;
		}
		getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
		if (!make_room(s, cred.uid, now_ms())) {
			refuse_busy(s, fd, cred.uid);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		*c = (struct client){.fd = fd, .uid = cred.uid, .last_ms = now_ms(),
				     .reading = true};
		ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			free(c);
			continue;
		}
		s->clients[s->n_clients++] = c;
	}
}

static int find_client(const struct rpc_server *s, const struct client *c)
{
	for (unsigned i = 0; i < s->n_clients; i++) {
		if (s->clients[i] == c) {
			return (int)i;
		}
	}
	return -1;
}

static void handle_event(struct rpc_server *s, struct client *c, uint32_t events)
{
	int i = find_client(s, c);

	if (i < 0) {
		return; /* dropped earlier in this run */
	}
	if ((events & EPOLLIN) && read_in(c) < 0) {
		drop_client(s, (unsigned)i, NULL);
		return;
	}
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		drop_client(s, (unsigned)i, NULL);
		return;
	}
	if (service(s, c) < 0) {
		drop_client(s, (unsigned)i, "it sent an over-long line or does not read its answers");
	}
}

int rpc_server_run(struct rpc_server *s)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t now, next = UINT64_MAX;
	bool more = false;
	int n = epoll_wait(s->ep, evs, MAX_EVENTS, 0);

	for (int i = 0; i < n; i++) {
		if (!evs[i].data.ptr) {
			accept_clients(s);
		} else {
			handle_event(s, evs[i].data.ptr, evs[i].events);
		}
	}
	/* (rule 3) lines left from an earlier run, and idle timeouts. */
	now = now_ms();
	for (unsigned i = s->n_clients; i-- > 0;) {
		struct client *c = s->clients[i];
		uint64_t deadline = c->last_ms + s->opts.idle_timeout_ms;
		int r = 0;

		if (c->in_len && memchr(c->in, '\n', c->in_len)) {
			r = service(s, c);
		}
		if (r < 0) {
			drop_client(s, i, "it does not read its answers");
			continue;
		}
		more |= r > 0;
		if (now >= deadline) {
			drop_client(s, i, "idle too long");
			continue;
		}
		next = deadline < next ? deadline : next;
	}
	if (more) {
		return 0;
	}
	return next == UINT64_MAX ? -1 : (int)(next - now);
}

int rpc_server_loop(struct rpc_server *s, int stop_fd)
{
	struct pollfd pfds[2] = {
		{.fd = stop_fd, .events = POLLIN},
		{.fd = s->ep, .events = POLLIN},
	};
	int timeout_ms = -1;

	for (;;) {
		if (poll(pfds, 2, timeout_ms) < 0 && errno != EINTR) {
			return -errno;
		}
		if (pfds[0].revents) {
			return 0;
		}
		timeout_ms = rpc_server_run(s);
	}
}

int rpc_server_fd(const struct rpc_server *s)
{
	return s->ep;
}

unsigned rpc_server_n_clients(const struct rpc_server *s)
{
	return s->n_clients;
}

int rpc_server_open(const struct rpc_server_opts *opts, struct rpc_server **serverp,
		    struct errmsg *err)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	struct rpc_server *s;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s) {
		return -ENOMEM;
	}
	s->opts = *opts;
	if (!s->opts.max_clients) {
		s->opts.max_clients = 64;
	}
	if (!s->opts.max_clients_per_uid) {
		s->opts.max_clients_per_uid = (s->opts.max_clients + 3) / 4;
	}
	if (!s->opts.idle_timeout_ms) {
		s->opts.idle_timeout_ms = 60000;
	}
	if (!s->opts.max_output_bytes) {
		s->opts.max_output_bytes = 64u << 20;
	}
	if (!s->opts.mode) {
		s->opts.mode = 0660;
	}
	s->disp = (struct rpc_dispatcher){.methods = opts->methods, .n_methods = opts->n_methods,
					  .ctx = opts->ctx, .commit = opts->commit,
					  .name = opts->name};
	s->listen_fd = -1;
	s->path = strdup(opts->path);
	s->clients = calloc(s->opts.max_clients, sizeof(*s->clients));
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!s->path || !s->clients || s->ep < 0) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = rpc_mkdirs_for(opts->path);
	if (ret < 0) {
		errmsg_set(err, "cannot create the directory of %s: %s", opts->path,
			   strerror(-ret));
		goto out_free;
	}
	ret = rpc_unix_listen(opts->path, s->opts.mode, opts->group, "control socket", err);
	if (ret < 0) {
		goto out_free;
	}
	s->listen_fd = ret;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->listen_fd, &ev) != 0) {
		ret = -errno;
		goto out_close;
	}
	*serverp = s;
	return 0;
out_close:
	close(s->listen_fd);
	unlink(opts->path);
out_free:
	if (s->ep >= 0) {
		close(s->ep);
	}
	free(s->clients);
	free(s->path);
	free(s);
	return ret;
}

void rpc_server_close(struct rpc_server *s)
{
	if (!s) {
		return;
	}
	while (s->n_clients) {
		drop_client(s, 0, NULL);
	}
	close(s->listen_fd);
	unlink(s->path);
	close(s->ep);
	free(s->clients);
	free(s->path);
	free(s);
}
