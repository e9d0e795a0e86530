// SPDX-License-Identifier: MIT
/* test_vublk.c: the vublk front end against a scripted backend thread that
 * records every vhost-user message: QEMU's message order, the inflight fd
 * kept across a reconnect (qemu-storage-daemon 7.2 cannot show it: it does
 * not offer INFLIGHT_SHMFD), queue bases after a crash (used->idx) and after
 * a pause (GET_VRING_BASE), and a feature downgrade refused on reconnect;
 * packed rings: required once asked for, and QEMU's stale base after a crash
 * (it keeps no packed index to restore from). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "vublk-int.h"

#define MAX_MSGS 256
#define PF_WANTED ((1ull << VUBLK_PF_MQ) | (1ull << VUBLK_PF_REPLY_ACK) | (1ull << VUBLK_PF_CONFIG) | \
		   (1ull << VUBLK_PF_INFLIGHT_SHMFD))

struct backend {
	char path[108];
	int listen_fd;
	pthread_t thread;
	int connections;        /* to serve, then exit */
	uint64_t features;      /* offered; the second connection may differ */
	uint64_t features2;
	int nmsgs;
	uint32_t msgs[MAX_MSGS];
	int conn_of[MAX_MSGS];  /* which connection each message came on */
	ino_t inflight_given;   /* GET_INFLIGHT_FD's memfd */
	ino_t inflight_set[4];  /* SET_INFLIGHT_FD's, per connection */
	uint32_t base[4][2];    /* SET_VRING_BASE per connection and queue */
	bool complete_first;    /* on the first kick, complete the first request */
	volatile struct vring_desc *desc;
	volatile struct vring_used *used;
	uint8_t *ram;           /* the front end's mapping: same process */
	uint16_t num;
};

static int read_full(int fd, void *buf, size_t n, int *fdp)
{
	char control[CMSG_SPACE(sizeof(int) * 8)];
	size_t done = 0;

	while (done < n) {
		struct iovec iov = {(char *)buf + done, n - done};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
				   .msg_controllen = sizeof(control)};
		ssize_t r = recvmsg(fd, &m, 0);

		if (r <= 0) {
			return -1;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			int nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fds[8];

			memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
			for (int i = 0; i < nfd; i++) {
				if (fdp && *fdp < 0) {
					*fdp = fds[i];
				} else {
					close(fds[i]);
				}
			}
		}
		done += r;
	}
	return 0;
}

static void reply(int fd, uint32_t req, const void *payload, uint32_t bytes, int pass_fd)
{
	struct vu_hdr h = {req, VU_VERSION | VU_FLAG_REPLY, bytes};
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)payload, bytes}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};

	if (pass_fd >= 0) {
		struct cmsghdr *c;

		memset(control, 0, sizeof(control));
		m.msg_control = control;
		m.msg_controllen = sizeof(control);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	assert_true(sendmsg(fd, &m, MSG_NOSIGNAL) == (ssize_t)(sizeof(h) + bytes));
}

/* Completes the chain at the first avail entry: status byte 0, used idx 1. */
static void complete_first(struct backend *b, volatile struct vring_avail *avail)
{
	uint16_t head = avail->ring[0], i = head;

	while (b->desc[i].flags & VUBLK_DESC_F_NEXT) {
		i = b->desc[i].next;
	}
	/* One region at guest-physical 0 and mmap offset 0. */
	b->ram[b->desc[i].addr] = 0;
	b->used->ring[0].id = head;
	b->used->ring[0].len = 1;
	__atomic_store_n(&b->used->idx, 1, __ATOMIC_RELEASE);
}

static void serve_one(struct backend *b, int fd, int conn)
{
	volatile struct vring_avail *avail = NULL;

	for (;;) {
		union {
			uint64_t u64;
			struct vu_vring_state st;
			struct vu_vring_addr addr;
			struct vu_mem_table mem;
			struct vu_config cfg;
			struct vu_inflight inf;
		} p;
		struct vu_hdr h;
		int mfd = -1;

		if (read_full(fd, &h, sizeof(h), &mfd) < 0 || read_full(fd, &p, h.size, &mfd) < 0) {
			break;
		}
		if (b->nmsgs < MAX_MSGS) {
			b->conn_of[b->nmsgs] = conn;
			b->msgs[b->nmsgs++] = h.request;
		}
		switch (h.request) {
		case VU_GET_FEATURES:
			p.u64 = conn == 0 ? b->features : b->features2;
			reply(fd, h.request, &p.u64, 8, -1);
			break;
		case VU_GET_PROTOCOL_FEATURES:
			p.u64 = PF_WANTED | (1ull << 8) /* PAGEFAULT: not ours to ack */;
			reply(fd, h.request, &p.u64, 8, -1);
			break;
		case VU_GET_QUEUE_NUM:
			p.u64 = 2;
			reply(fd, h.request, &p.u64, 8, -1);
			break;
		case VU_GET_CONFIG:
			assert_int_equal(p.cfg.size, 60);
			memset(p.cfg.region, 0, 60);
			p.cfg.region[1] = 8; /* capacity 2048 sectors, little-endian */
			reply(fd, h.request, &p.cfg, h.size, -1);
			break;
		case VU_GET_INFLIGHT_FD: {
			int ifd = memfd_create("inflight", MFD_CLOEXEC);
			struct stat st;

			assert_int_equal(ftruncate(ifd, 4096), 0);
			fstat(ifd, &st);
			b->inflight_given = st.st_ino;
			p.inf.mmap_bytes = 4096;
			p.inf.mmap_offset = 0;
			reply(fd, h.request, &p.inf, sizeof(p.inf), ifd);
			close(ifd);
			break;
		}
		case VU_SET_INFLIGHT_FD: {
			struct stat st;

			assert_true(mfd >= 0);
			fstat(mfd, &st);
			b->inflight_set[conn] = st.st_ino;
			break;
		}
		case VU_SET_MEM_TABLE:
			assert_true(mfd >= 0);
			assert_true(h.flags & VU_FLAG_NEED_REPLY);
			assert_int_equal(p.mem.regions[0].gpa, 0);
			b->ram = (uint8_t *)(uintptr_t)p.mem.regions[0].uaddr;
			p.u64 = 0;
			reply(fd, h.request, &p.u64, 8, -1);
			break;
		case VU_SET_VRING_NUM:
			b->num = p.st.num;
			break;
		case VU_SET_VRING_BASE:
			b->base[conn][p.st.index] = p.st.num;
			break;
		case VU_SET_VRING_ADDR:
			if (p.addr.index == 0) {
				b->desc = (volatile struct vring_desc *)(uintptr_t)p.addr.desc_uaddr;
				b->used = (volatile struct vring_used *)(uintptr_t)p.addr.used_uaddr;
				avail = (volatile struct vring_avail *)(uintptr_t)p.addr.avail_uaddr;
			}
			break;
		case VU_GET_VRING_BASE:
			p.st.num = 7;
			reply(fd, h.request, &p.st, sizeof(p.st), -1);
			break;
		}
		if (mfd >= 0) {
			close(mfd);
		}
		/* Once, and before any reply lets the front end go on and
		 * perhaps unmap its RAM. */
		if (b->complete_first && avail && avail->idx > 0) {
			b->complete_first = false;
			complete_first(b, avail);
		}
	}
}

static void *backend_main(void *arg)
{
	struct backend *b = arg;

	for (int conn = 0; conn < b->connections; conn++) {
		int fd = accept(b->listen_fd, NULL, NULL);

		if (fd < 0) {
			break;
		}
		serve_one(b, fd, conn);
		close(fd);
	}
	return NULL;
}

static struct backend *backend_start(int connections, uint64_t features2)
{
	struct backend *b = calloc(1, sizeof(*b));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(b->path, sizeof(b->path), "/tmp/test_vublk.%d.sock", getpid());
	unlink(b->path);
	strcpy(sa.sun_path, b->path);
	b->connections = connections;
	b->features = (1ull << VUBLK_F_VERSION_1) | (1ull << VUBLK_F_PROTOCOL_FEATURES) |
		      (1ull << VUBLK_F_FLUSH) | (1ull << VUBLK_F_MQ);
	b->features2 = features2 ? features2 : b->features;
	b->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(b->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(b->listen_fd, 4), 0);
	return b;
}

static void backend_run(struct backend *b)
{
	assert_int_equal(pthread_create(&b->thread, NULL, backend_main, b), 0);
}

static void backend_stop(struct backend *b)
{
	shutdown(b->listen_fd, SHUT_RDWR);
	pthread_join(b->thread, NULL);
	close(b->listen_fd);
	unlink(b->path);
}

static void test_vublk_follows_qemu_message_order(void **state)
{
	static const uint32_t expected[] = {
		VU_GET_FEATURES, VU_GET_PROTOCOL_FEATURES, VU_SET_PROTOCOL_FEATURES,
		VU_GET_QUEUE_NUM, VU_SET_OWNER, VU_GET_FEATURES, VU_SET_VRING_CALL,
		VU_GET_CONFIG, VU_SET_FEATURES, VU_GET_INFLIGHT_FD, VU_SET_INFLIGHT_FD,
		VU_SET_FEATURES, VU_SET_MEM_TABLE, VU_SET_VRING_NUM, VU_SET_VRING_BASE,
		VU_SET_VRING_ADDR, VU_SET_VRING_KICK, VU_SET_VRING_ENABLE, VU_SET_VRING_CALL,
		VU_SET_VRING_ENABLE, VU_GET_VRING_BASE,
	};
	struct backend *b = backend_start(1, 0);
	struct vublk *dev;

	backend_run(b);
	assert_int_equal(vublk_connect(b->path, NULL, &dev, NULL), 0);
	assert_int_equal(vublk_config(dev)->capacity_sectors, 2048);
	assert_int_equal(vublk_max_queues(dev), 2);
	/* Only what we know is acked, whatever else is offered. */
	assert_int_equal(vublk_protocol_features(dev), PF_WANTED);
	assert_non_null(vublk_inflight_area(dev, NULL));
	assert_int_equal(vublk_close(dev), 0);
	backend_stop(b);
	assert_int_equal(b->nmsgs, sizeof(expected) / sizeof(expected[0]));
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		assert_int_equal(b->msgs[i], expected[i]);
	}
	free(b);
}

static void noop_done(void *opaque, int status, uint32_t used_bytes)
{
	int *count = opaque;

	(*count)++;
	assert_int_equal(status, 0);
}

static void test_vublk_reconnect_keeps_inflight_fd_and_restarts_from_used(void **state)
{
	struct backend *b = backend_start(3, 0);
	struct vublk_opts opts;
	struct vublk_qstats st;
	struct vublk *dev;
	void *buf;
	int done = 0;

	b->complete_first = true;
	backend_run(b);
	vublk_opts_init(&opts);
	opts.num_queues = 2;
	assert_int_equal(vublk_connect(b->path, &opts, &dev, NULL), 0);
	buf = vublk_alloc(dev, 4096);
	for (int i = 0; i < 3; i++) {
		struct vublk_io io = {.type = VUBLK_T_IN, .sector = i, .buf = buf, .bytes = 512};

		assert_int_equal(vublk_submit(dev, 0, &io, noop_done, &done), 0);
	}
	/* The backend completes the first when it next reads a message; a
	 * crash of QEMU's peer leaves two in flight. */
	assert_int_equal(vublk_pause(dev), 0); /* bases 7 from GET_VRING_BASE */
	assert_int_equal(vublk_resume(dev), 0);
	assert_int_equal(vublk_poll(dev, 0), 1);
	assert_int_equal(done, 1);
	vublk_drop(dev);
	assert_false(vublk_connected(dev));
	assert_int_equal(vublk_reconnect(dev, 2000, NULL), 0);
	vublk_queue_stats(dev, 0, &st);
	assert_int_equal(st.inflight, 2);
	assert_int_equal(vublk_reconnects(dev), 1);
	vublk_close(dev);
	backend_stop(b);
	/* One GET_INFLIGHT_FD in all; the same memfd went back each time. */
	int gets = 0;

	for (int i = 0; i < b->nmsgs; i++) {
		gets += b->msgs[i] == VU_GET_INFLIGHT_FD;
	}
	assert_int_equal(gets, 1);
	assert_true(b->inflight_set[0] == b->inflight_given);
	assert_true(b->inflight_set[1] == b->inflight_given);
	/* First start from 0, the resume from GET_VRING_BASE's 7 (the second
	 * SET_VRING_BASE of connection 0 overwrote the first), the reconnect
	 * from used->idx = 1, like virtio_queue_restore_last_avail_idx(). */
	assert_int_equal(b->base[0][0], 7);
	assert_int_equal(b->base[0][1], 7);
	assert_int_equal(b->base[1][0], 1);
	assert_int_equal(b->base[1][1], 0);
	free(b);
}

static void test_vublk_reconnect_refuses_fewer_features(void **state)
{
	struct backend *b = backend_start(2, (1ull << VUBLK_F_VERSION_1) |
						(1ull << VUBLK_F_PROTOCOL_FEATURES));
	struct errmsg err = {{0}};
	struct vublk *dev;

	backend_run(b);
	assert_int_equal(vublk_connect(b->path, NULL, &dev, NULL), 0);
	vublk_drop(dev);
	assert_int_equal(vublk_reconnect(dev, 2000, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "fewer features"));
	vublk_close(dev);
	backend_stop(b);
	free(b);
}

static void test_vublk_packed_needs_the_server_to_offer_it(void **state)
{
	struct backend *b = backend_start(1, 0);
	struct errmsg err = {{0}};
	struct vublk_opts opts;
	struct vublk *dev = NULL;

	backend_run(b);
	vublk_opts_init(&opts);
	opts.packed = true;
	assert_int_equal(vublk_connect(b->path, &opts, &dev, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "packed"));
	assert_null(dev);
	backend_stop(b);
	free(b);
}

static void test_vublk_packed_reconnect_sends_the_stale_base(void **state)
{
	struct backend *b = backend_start(2, 0);
	struct vublk_opts opts;
	struct vublk_qstats st;
	struct vublk *dev;
	void *buf;

	b->features |= 1ull << VUBLK_F_RING_PACKED;
	b->features2 = b->features;
	backend_run(b);
	vublk_opts_init(&opts);
	opts.packed = true;
	assert_int_equal(vublk_connect(b->path, &opts, &dev, NULL), 0);
	assert_true(vu_has_feature(vublk_features(dev), VUBLK_F_RING_PACKED));
	buf = vublk_alloc(dev, 4096);
	for (int i = 0; i < 3; i++) {
		struct vublk_io io = {.type = VUBLK_T_IN, .sector = i, .buf = buf, .bytes = 512};

		assert_int_equal(vublk_submit(dev, 0, &io, NULL, NULL), 0);
	}
	vublk_kick(dev, 0);
	vublk_drop(dev);
	assert_int_equal(vublk_reconnect(dev, 2000, NULL), 0);
	vublk_queue_stats(dev, 0, &st);
	assert_int_equal(st.inflight, 3);
	vublk_close(dev);
	backend_stop(b);
	/* Position 0, wrap counter 1 (bit 15), at the start and again after
	 * the crash: three chains were made available in between. */
	assert_int_equal(b->base[0][0], 0x8000);
	assert_int_equal(b->base[1][0], 0x8000);
	free(b);
}

static void test_vublk_connect_refuses_bad_options(void **state)
{
	struct vublk_opts opts;
	struct errmsg err = {{0}};
	struct vublk *dev = NULL;

	vublk_opts_init(&opts);
	opts.queue_size = 100;
	assert_int_equal(vublk_connect("/nonexistent.sock", &opts, &dev, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "power of 2"));
	vublk_opts_init(&opts);
	assert_int_equal(vublk_connect("/nonexistent.sock", &opts, &dev, &err), -ENOENT);
	assert_null(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vublk_follows_qemu_message_order),
		cmocka_unit_test(test_vublk_reconnect_keeps_inflight_fd_and_restarts_from_used),
		cmocka_unit_test(test_vublk_reconnect_refuses_fewer_features),
		cmocka_unit_test(test_vublk_packed_needs_the_server_to_offer_it),
		cmocka_unit_test(test_vublk_packed_reconnect_sends_the_stale_base),
		cmocka_unit_test(test_vublk_connect_refuses_bad_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
