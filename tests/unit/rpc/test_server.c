/* SPDX-License-Identifier: MIT */
/* test_server.c: the control server against clients that misbehave (never
 * read, pipeline thousands of requests, sit idle, open too many
 * connections), the client library against it, socket permissions, and
 * the atomic state file.  The server runs on the test's own thread except
 * where the client library must block: then on a second thread. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "rpc.h"

static char dir[64];
static char sock_path[128];

static int m_version(struct rpc_call *c)
{
	json_object_object_add(rpc_call_result(c), "version", json_object_new_string("1"));
	return 0;
}

/* A big answer, so that a client that never reads fills its queue. */
static int m_big(struct rpc_call *c)
{
	static char blob[16384];

	memset(blob, 'x', sizeof(blob) - 1);
	json_object_object_add(rpc_call_result(c), "blob", json_object_new_string(blob));
	return 0;
}

static const struct rpc_method methods[] = {{"version", m_version}, {"big", m_big}};

static struct rpc_server *open_server(unsigned max_clients, unsigned idle_ms)
{
	struct rpc_server_opts opts;
	struct rpc_server *s = NULL;
	struct errmsg err = {{0}};

	rpc_server_opts_init(&opts);
	opts.path = sock_path;
	opts.name = "testd";
	opts.methods = methods;
	opts.n_methods = 2;
	opts.max_clients = max_clients;
	opts.max_clients_per_uid = max_clients;
	opts.idle_timeout_ms = idle_ms;
	opts.max_output_bytes = 4u << 20;
	assert_int_equal(rpc_server_open(&opts, &s, &err), 0);
	return s;
}

static int connect_raw(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, sock_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void run_for(struct rpc_server *s, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		struct pollfd p = {.fd = rpc_server_fd(s), .events = POLLIN};

		poll(&p, 1, 5);
		rpc_server_run(s);
	}
}

/* Runs the server until 'fd' has a whole line to read or 'rounds' pass;
 * returns the line (static) or NULL. */
static const char *answer_of(struct rpc_server *s, int fd, int rounds)
{
	static char buf[65536];
	size_t len = 0;

	for (int i = 0; i < rounds; i++) {
		ssize_t n;

		run_for(s, 1);
		n = recv(fd, buf + len, sizeof(buf) - len - 1, MSG_DONTWAIT);
		if (n > 0) {
			len += (size_t)n;
			buf[len] = '\0';
			if (memchr(buf, '\n', len)) {
				return buf;
			}
		} else if (n == 0) {
			return NULL;
		}
	}
	return NULL;
}

static const char version_req[] = "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":1}\n";

static void test_socket_gets_mode_0660_whatever_the_umask(void **state)
{
	mode_t old = umask(022);
	struct rpc_server *s = open_server(8, 0);
	struct stat st;

	umask(old);
	assert_int_equal(stat(sock_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	rpc_server_close(s);
	assert_int_not_equal(access(sock_path, F_OK), 0);
}

static void test_claim_refuses_live_socket_and_plain_file(void **state)
{
	struct rpc_server *s = open_server(8, 0);
	struct errmsg err = {{0}};
	int fd;

	assert_int_equal(rpc_unix_claim(sock_path, "control socket", &err), -EADDRINUSE);
	assert_non_null(strstr(err.msg, "in use"));
	rpc_server_close(s);
	/* A stale socket (its listener gone) is replaced. */
	fd = rpc_unix_listen(sock_path, 0600, (gid_t)-1, "socket", &err);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(rpc_unix_claim(sock_path, "socket", &err), 0);
	assert_int_not_equal(access(sock_path, F_OK), 0);
	/* A plain file is never removed. */
	close(open(sock_path, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(rpc_unix_claim(sock_path, "socket", &err), -EEXIST);
	assert_int_equal(access(sock_path, F_OK), 0);
	unlink(sock_path);
	snprintf(err.msg, sizeof(err.msg), "-");
	assert_int_equal(rpc_unix_claim("/nonexistent-dir-xyz/s.sock", "socket", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "does not exist"));
}

/* A client that pipelines thousands of requests and never reads its
 * answers must not delay another client's answer for long, and is
 * eventually throttled, not waited for. */
static void test_pipelining_client_that_never_reads_does_not_stall_others(void **state)
{
	struct rpc_server *s = open_server(8, 0);
	int hog = connect_raw(), other;
	char req[128];
	int sent = 0;

	fcntl(hog, F_SETFL, O_NONBLOCK);
	snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":1}\n");
	/* Until the server stops reading it (its answers pile up unread). */
	for (int stuck = 0; sent < 20000 && stuck < 50;) {
		if (send(hog, req, strlen(req), MSG_NOSIGNAL) < 0) {
			stuck++;
			run_for(s, 1);
			continue;
		}
		stuck = 0;
		sent++;
	}
	assert_true(sent > 1000);
	other = connect_raw();
	assert_int_equal(send(other, version_req, strlen(version_req), 0), (ssize_t)strlen(version_req));
	/* A handful of runs: each answers at most 64 of the hog's lines. */
	assert_non_null(strstr(answer_of(s, other, 20) ?: "", "\"version\":\"1\""));
	close(other);
	close(hog);
	rpc_server_close(s);
}

static void test_idle_connections_are_closed(void **state)
{
	struct rpc_server *s = open_server(8, 200);
	int fd = connect_raw();
	char c;
	int timeout;

	run_for(s, 2);
	assert_int_equal(rpc_server_n_clients(s), 1);
	timeout = rpc_server_run(s);
	assert_true(timeout > 0 && timeout <= 200);
	usleep(250 * 1000);
	rpc_server_run(s);
	assert_int_equal(rpc_server_n_clients(s), 0);
	assert_int_equal(recv(fd, &c, 1, 0), 0);
	close(fd);
	rpc_server_close(s);
}

/* Connections past the limit: the longest-idle one is closed to admit a
 * new one; if none is idle the new one hears "busy". */
static void test_connection_limit_evicts_idle_or_says_busy(void **state)
{
	struct rpc_server *s = open_server(4, 0);
	struct rpc_client *cl = NULL;
	struct json_object *res = NULL;
	struct errmsg err = {{0}};
	int fds[4], extra;
	char c;

	for (int i = 0; i < 4; i++) {
		fds[i] = connect_raw();
	}
	run_for(s, 3);
	assert_int_equal(rpc_server_n_clients(s), 4);
	/* Nobody idle yet: the fifth is refused with a sentence. */
	extra = connect_raw();
	{
		const char *line = answer_of(s, extra, 10);

		assert_non_null(line);
		assert_non_null(strstr(line, "busy"));
		assert_non_null(strstr(line, "-32001"));
	}
	close(extra);
	/* The client library shows that sentence. */
	assert_int_equal(rpc_client_open(sock_path, "testd", 2, &cl, &err), 0);
	run_for(s, 3);
	assert_int_equal(rpc_client_call(cl, "version", NULL, &res, NULL, &err), -EREMOTEIO);
	assert_non_null(strstr(err.msg, "testd is busy"));
	rpc_client_close(cl);
	/* Once they have been idle a second, a new one gets in. */
	usleep(1100 * 1000);
	extra = connect_raw();
	assert_int_equal(send(extra, version_req, strlen(version_req), 0), (ssize_t)strlen(version_req));
	assert_non_null(strstr(answer_of(s, extra, 20) ?: "", "\"version\":\"1\""));
	assert_int_equal(rpc_server_n_clients(s), 4);
	assert_int_equal(recv(fds[0], &c, 1, MSG_DONTWAIT), 0);
	for (int i = 0; i < 4; i++) {
		close(fds[i]);
	}
	close(extra);
	rpc_server_close(s);
}

static volatile int stop_thread;

static void *serve_thread(void *arg)
{
	struct rpc_server *s = arg;

	while (!stop_thread) {
		run_for(s, 1);
	}
	return NULL;
}

static void test_client_calls_and_reports_errors(void **state)
{
	struct rpc_server *s = open_server(8, 0);
	struct rpc_client *cl = NULL;
	struct json_object *res = NULL;
	struct errmsg err = {{0}};
	pthread_t t;
	int code = 0;

	stop_thread = 0;
	pthread_create(&t, NULL, serve_thread, s);
	assert_int_equal(rpc_client_open(sock_path, "testd", 5, &cl, &err), 0);
	assert_int_equal(rpc_client_call(cl, "version", NULL, &res, &code, &err), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(res, "version")), "1");
	json_object_put(res);
	assert_int_equal(rpc_client_call(cl, "nope", NULL, &res, &code, &err), -EREMOTEIO);
	assert_int_equal(code, RPC_NO_METHOD);
	assert_non_null(strstr(err.msg, "nope"));
	rpc_client_close(cl);
	stop_thread = 1;
	pthread_join(t, NULL);
	rpc_server_close(s);
	assert_int_equal(rpc_client_open(sock_path, "testd", 5, &cl, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "is testd running?"));
}

static void test_store_is_atomic_and_cleans_stale_temporary(void **state)
{
	char path[160], tmp[170];
	struct json_object *doc = json_object_new_object(), *back = NULL;
	struct errmsg err = {{0}};
	FILE *f;

	snprintf(path, sizeof(path), "%s/state.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(rpc_store_load(path, &back, &err), -ENOENT);
	json_object_object_add(doc, "disks", json_object_new_int(3));
	assert_int_equal(rpc_store_save(path, doc, &err), 0);
	assert_int_not_equal(access(tmp, F_OK), 0);
	/* A crash between writing the temporary file and renaming it. */
	f = fopen(tmp, "w");
	fputs("{\"disks\": 4", f);
	fclose(f);
	assert_int_equal(rpc_store_load(path, &back, &err), 0);
	assert_int_equal(json_object_get_int(json_object_object_get(back, "disks")), 3);
	assert_int_not_equal(access(tmp, F_OK), 0);
	json_object_put(back);
	/* A damaged file is refused with a sentence, not half-read. */
	f = fopen(path, "w");
	fputs("[1,2", f);
	fclose(f);
	assert_int_equal(rpc_store_load(path, &back, &err), -EINVAL);
	assert_non_null(strstr(err.msg, path));
	unlink(path);
	json_object_put(doc);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/rpc-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/ctl.sock", dir);
	return 0;
}

static int teardown(void **state)
{
	unlink(sock_path);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socket_gets_mode_0660_whatever_the_umask),
		cmocka_unit_test(test_claim_refuses_live_socket_and_plain_file),
		cmocka_unit_test(test_pipelining_client_that_never_reads_does_not_stall_others),
		cmocka_unit_test(test_idle_connections_are_closed),
		cmocka_unit_test(test_connection_limit_evicts_idle_or_says_busy),
		cmocka_unit_test(test_client_calls_and_reports_errors),
		cmocka_unit_test(test_store_is_atomic_and_cleans_stale_temporary),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
