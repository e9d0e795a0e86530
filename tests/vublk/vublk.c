// SPDX-License-Identifier: MIT
/* vublk.c: the vublk front end's device lifecycle, in QEMU 7.2's message
 * order so that a server built on DPDK's rte_vhost (which expects QEMU) sees
 * what it will see in production:
 *
 *   init  (vhost_user_backend_init, vhost_dev_init, realize):
 *         GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES,
 *         GET_QUEUE_NUM, SET_OWNER, GET_FEATURES, SET_VRING_CALL per queue,
 *         GET_CONFIG
 *   start (vhost_user_blk_start, vhost_dev_start):
 *         SET_FEATURES, GET_INFLIGHT_FD (first start only), SET_INFLIGHT_FD,
 *         SET_FEATURES, SET_MEM_TABLE, per queue SET_VRING_NUM,
 *         SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_KICK, then
 *         SET_VRING_ENABLE 1 per queue and SET_VRING_CALL per queue
 *   stop  (vhost_dev_stop): SET_VRING_ENABLE 0, GET_VRING_BASE per queue
 *
 * SET_FEATURES precedes GET_INFLIGHT_FD because the server sizes the area by
 * ring layout (split or packed), which it learns from the features.  After
 * the server is lost, a queue restarts from used->idx as in QEMU's
 * virtio_queue_restore_last_avail_idx(); the server adds the requests its
 * inflight area marks and resubmits them. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vublk-int.h"

/* What we ack when offered: everything a Linux guest's virtio-blk driver
 * would take that this front end implements. */
#define WANTED_FEATURES                                                                       \
	((1ull << VUBLK_F_SIZE_MAX) | (1ull << VUBLK_F_SEG_MAX) | (1ull << VUBLK_F_GEOMETRY) |   \
	 (1ull << VUBLK_F_RO) | (1ull << VUBLK_F_BLK_SIZE) | (1ull << VUBLK_F_FLUSH) |           \
	 (1ull << VUBLK_F_TOPOLOGY) | (1ull << VUBLK_F_CONFIG_WCE) | (1ull << VUBLK_F_MQ) |      \
	 (1ull << VUBLK_F_DISCARD) | (1ull << VUBLK_F_WRITE_ZEROES) |                            \
	 (1ull << VUBLK_F_INDIRECT_DESC) | (1ull << VUBLK_F_EVENT_IDX) |                         \
	 (1ull << VUBLK_F_PROTOCOL_FEATURES) | (1ull << VUBLK_F_VERSION_1))

#define WANTED_PFEATURES                                                                      \
	((1ull << VUBLK_PF_MQ) | (1ull << VUBLK_PF_REPLY_ACK) | (1ull << VUBLK_PF_CONFIG) |    \
	 (1ull << VUBLK_PF_INFLIGHT_SHMFD))

/* Between connection attempts while the server restarts; QEMU's
 * reconnect=1 waits a second, tests cannot afford that. */
#define RECONNECT_STEP_MS 50

void vublk_opts_init(struct vublk_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->num_queues = 1;
	opts->queue_size = 128;
	opts->mem_bytes = 64ull << 20;
	opts->mem_regions = 1;
	opts->timeout_ms = 5000;
}

static int opts_check(struct vublk_opts *o, struct errmsg *err)
{
	if (o->num_queues == 0) {
		o->num_queues = 1;
	}
	if (o->queue_size == 0) {
		o->queue_size = 128;
	}
	if (o->mem_bytes == 0) {
		o->mem_bytes = 64ull << 20;
	}
	if (o->mem_regions == 0) {
		o->mem_regions = 1;
	}
	if (o->timeout_ms <= 0) {
		o->timeout_ms = 5000;
	}
	if (o->num_queues > VUBLK_MAX_QUEUES) {
		errmsg_set(err, "%u queues: at most %u", o->num_queues, VUBLK_MAX_QUEUES);
		return -EINVAL;
	}
	if (o->queue_size > VUBLK_MAX_QUEUE_SIZE || (o->queue_size & (o->queue_size - 1))) {
		errmsg_set(err, "queue size %u: must be a power of 2 up to %u", o->queue_size,
			   VUBLK_MAX_QUEUE_SIZE);
		return -EINVAL;
	}
	if (o->mem_regions > VUBLK_MAX_REGIONS) {
		errmsg_set(err, "%u memory regions: at most %u", o->mem_regions,
			   VUBLK_MAX_REGIONS);
		return -EINVAL;
	}
	return 0;
}

static int sock_connect(struct vublk *dev)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, ret;

	if (strlen(dev->path) >= sizeof(sa.sun_path)) {
		errmsg_set(&dev->err, "%s: socket path too long", dev->path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, dev->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		errmsg_set(&dev->err, "socket: %s", strerror(-ret));
		return ret;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		errmsg_set(&dev->err, "%s: cannot connect: %s", dev->path, strerror(-ret));
		close(fd);
		return ret;
	}
	dev->sock = fd;
	return 0;
}

static void config_decode(struct vublk_config *c, const uint8_t *b)
{
	/* The device is little-endian and so is every host we run on; the
	 * offsets are struct virtio_blk_config's. */
	memset(c, 0, sizeof(*c));
	memcpy(&c->capacity_sectors, b + 0, 8);
	memcpy(&c->size_max, b + 8, 4);
	memcpy(&c->seg_max, b + 12, 4);
	memcpy(&c->cylinders, b + 16, 2);
	c->heads = b[18];
	c->sectors = b[19];
	memcpy(&c->blk_size, b + 20, 4);
	c->physical_block_exp = b[24];
	c->alignment_offset = b[25];
	memcpy(&c->min_io_size, b + 26, 2);
	memcpy(&c->opt_io_size, b + 28, 4);
	c->writeback = b[32];
	memcpy(&c->num_queues, b + 34, 2);
	memcpy(&c->max_discard_sectors, b + 36, 4);
	memcpy(&c->max_discard_seg, b + 40, 4);
	memcpy(&c->discard_sector_alignment, b + 44, 4);
	memcpy(&c->max_write_zeroes_sectors, b + 48, 4);
	memcpy(&c->max_write_zeroes_seg, b + 52, 4);
	c->write_zeroes_may_unmap = b[56];
}

static int get_config(struct vublk *dev)
{
	struct vu_config cfg = {.offset = 0, .size = VU_BLK_CONFIG_BYTES};
	uint32_t bytes = VU_CONFIG_HDR_BYTES + VU_BLK_CONFIG_BYTES;
	int ret;

	ret = vu_send(dev, VU_GET_CONFIG, 0, &cfg, bytes, NULL, 0);
	if (ret < 0) {
		return ret;
	}
	ret = vu_recv(dev, VU_GET_CONFIG, &cfg, bytes, NULL);
	if (ret < 0) {
		return ret;
	}
	/* A zero-size reply is how libvhost-user and DPDK say "failed". */
	if ((uint32_t)ret != bytes || cfg.size != VU_BLK_CONFIG_BYTES) {
		errmsg_set(&dev->err, "%s: GET_CONFIG failed (reply of %d bytes, config size %u)",
			   dev->path, ret, cfg.size);
		return -EIO;
	}
	config_decode(&dev->cfg, cfg.region);
	return 0;
}

/* First connect: learn what the server offers.  Reconnect: insist on the
 * same, since the rings already run with the features acked then. */
static int negotiate(struct vublk *dev, bool again)
{
	uint64_t offered, poffered = 0, nq = 1;
	int ret;

	ret = vu_get_u64(dev, VU_GET_FEATURES, &offered);
	if (ret < 0) {
		return ret;
	}
	if (vu_has_feature(offered, VUBLK_F_PROTOCOL_FEATURES)) {
		ret = vu_get_u64(dev, VU_GET_PROTOCOL_FEATURES, &poffered);
		if (ret < 0) {
			return ret;
		}
	}
	if (again) {
		if ((offered & dev->features) != dev->features ||
		    (poffered & dev->pfeatures) != dev->pfeatures) {
			errmsg_set(&dev->err, "%s: the restarted server offers fewer features "
				   "(0x%llx, protocol 0x%llx) than were acked (0x%llx, 0x%llx)",
				   dev->path, (unsigned long long)offered,
				   (unsigned long long)poffered, (unsigned long long)dev->features,
				   (unsigned long long)dev->pfeatures);
			return -ENOTSUP;
		}
	} else {
		dev->offered_features = offered;
		dev->offered_pfeatures = poffered;
		dev->features = offered & WANTED_FEATURES & ~dev->opts.refuse_features;
		if (dev->opts.packed) {
			if (!vu_has_feature(offered, VUBLK_F_RING_PACKED)) {
				errmsg_set(&dev->err, "%s: the server does not offer packed "
					   "virtqueues (VIRTIO_F_RING_PACKED)", dev->path);
				return -ENOTSUP;
			}
			dev->features |= 1ull << VUBLK_F_RING_PACKED;
		}
		dev->pfeatures = poffered & WANTED_PFEATURES & ~dev->opts.refuse_protocol_features;
		if (!vu_has_feature(dev->features, VUBLK_F_VERSION_1)) {
			errmsg_set(&dev->err, "%s: the server does not offer VIRTIO_F_VERSION_1",
				   dev->path);
			return -ENOTSUP;
		}
		if (!vu_has_feature(dev->pfeatures, VUBLK_PF_CONFIG)) {
			errmsg_set(&dev->err, "%s: the server does not offer the CONFIG protocol "
				   "feature, so the capacity cannot be read", dev->path);
			return -ENOTSUP;
		}
	}
	if (poffered) {
		ret = vu_set_u64(dev, VU_SET_PROTOCOL_FEATURES, dev->pfeatures);
		if (ret < 0) {
			return ret;
		}
	}
	if (vu_has_feature(dev->pfeatures, VUBLK_PF_MQ)) {
		ret = vu_get_u64(dev, VU_GET_QUEUE_NUM, &nq);
		if (ret < 0) {
			return ret;
		}
	}
	dev->max_queues = nq;
	if (dev->opts.num_queues > nq) {
		errmsg_set(&dev->err, "%s: %u queues asked, the server has %llu", dev->path,
			   dev->opts.num_queues, (unsigned long long)nq);
		return -ENOTSUP;
	}
	return 0;
}

/* vhost_dev_init after the backend init, and the realize's GET_CONFIG. */
static int dev_init(struct vublk *dev)
{
	uint64_t features;
	int ret;

	ret = vu_send(dev, VU_SET_OWNER, 0, NULL, 0, NULL, 0);
	if (ret < 0) {
		return ret;
	}
	ret = vu_get_u64(dev, VU_GET_FEATURES, &features);
	if (ret < 0) {
		return ret;
	}
	for (unsigned int i = 0; i < dev->nvqs; i++) {
		ret = vu_set_vring_fd(dev, VU_SET_VRING_CALL, i, dev->vqs[i].call_fd);
		if (ret < 0) {
			return ret;
		}
	}
	return get_config(dev);
}

static int get_inflight(struct vublk *dev)
{
	struct vu_inflight inf = {.num_queues = dev->nvqs, .queue_size = dev->opts.queue_size};
	int fd = -1, ret;
	void *addr;

	ret = vu_send(dev, VU_GET_INFLIGHT_FD, 0, &inf, sizeof(inf), NULL, 0);
	if (ret < 0) {
		return ret;
	}
	ret = vu_recv(dev, VU_GET_INFLIGHT_FD, &inf, sizeof(inf), &fd);
	if (ret < 0) {
		return ret;
	}
	if (inf.mmap_bytes == 0) {
		/* The server declines to track; QEMU carries on without. */
		if (fd >= 0) {
			close(fd);
		}
		return 0;
	}
	if (fd < 0) {
		errmsg_set(&dev->err, "%s: GET_INFLIGHT_FD: %llu bytes but no fd", dev->path,
			   (unsigned long long)inf.mmap_bytes);
		return -EPROTO;
	}
	addr = mmap(NULL, inf.mmap_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, inf.mmap_offset);
	if (addr == MAP_FAILED) {
		ret = -errno;
		errmsg_set(&dev->err, "%s: cannot map the inflight area (%llu bytes): %s",
			   dev->path, (unsigned long long)inf.mmap_bytes, strerror(-ret));
		close(fd);
		return ret;
	}
	dev->inflight_fd = fd;
	dev->inflight_addr = addr;
	dev->inflight_bytes = inf.mmap_bytes;
	dev->inflight_offset = inf.mmap_offset;
	return 0;
}

static int set_inflight(struct vublk *dev)
{
	struct vu_inflight inf = {.mmap_bytes = dev->inflight_bytes,
				  .mmap_offset = dev->inflight_offset,
				  .num_queues = dev->nvqs,
				  .queue_size = dev->opts.queue_size};

	return vu_send(dev, VU_SET_INFLIGHT_FD, 0, &inf, sizeof(inf), &dev->inflight_fd, 1);
}

static int set_mem_table(struct vublk *dev)
{
	struct vu_mem_table table;
	int fds[VUBLK_MAX_REGIONS];

	mem_table(&dev->mem, &table);
	for (unsigned int i = 0; i < table.nregions; i++) {
		fds[i] = dev->mem.fd;
	}
	return vu_send_ack(dev, VU_SET_MEM_TABLE, &table,
			   8 + table.nregions * sizeof(struct vu_mem_region), fds, table.nregions);
}

static int vq_start(struct vublk *dev, struct vublk_vq *vq)
{
	struct vu_vring_addr addr = {
		.index = vq->index,
		.desc_uaddr = (uint64_t)(uintptr_t)vq->desc,
		.used_uaddr = (uint64_t)(uintptr_t)vq->used,
		.avail_uaddr = (uint64_t)(uintptr_t)vq->avail,
	};
	int ret;

	ret = vu_set_state(dev, VU_SET_VRING_NUM, vq->index, vq->num);
	if (ret == 0) {
		ret = vu_set_state(dev, VU_SET_VRING_BASE, vq->index, vq->base);
	}
	if (ret == 0) {
		ret = vu_send(dev, VU_SET_VRING_ADDR, 0, &addr, sizeof(addr), NULL, 0);
	}
	if (ret == 0) {
		ret = vu_set_vring_fd(dev, VU_SET_VRING_KICK, vq->index, vq->kick_fd);
	}
	return ret;
}

static int dev_start(struct vublk *dev)
{
	bool inflight = vu_has_feature(dev->pfeatures, VUBLK_PF_INFLIGHT_SHMFD);
	int ret;

	ret = vu_set_u64(dev, VU_SET_FEATURES, dev->features);
	if (ret == 0 && inflight && dev->inflight_fd < 0) {
		ret = get_inflight(dev);
	}
	if (ret == 0 && dev->inflight_fd >= 0) {
		ret = set_inflight(dev);
	}
	if (ret == 0) {
		ret = vu_set_u64(dev, VU_SET_FEATURES, dev->features);
	}
	if (ret == 0) {
		ret = set_mem_table(dev);
	}
	for (unsigned int i = 0; ret == 0 && i < dev->nvqs; i++) {
		ret = vq_start(dev, &dev->vqs[i]);
	}
	/* Rings start disabled once PROTOCOL_FEATURES is acked. */
	for (unsigned int i = 0; ret == 0 && i < dev->nvqs; i++) {
		if (vu_has_feature(dev->features, VUBLK_F_PROTOCOL_FEATURES)) {
			ret = vu_set_state(dev, VU_SET_VRING_ENABLE, i, 1);
		}
	}
	for (unsigned int i = 0; ret == 0 && i < dev->nvqs; i++) {
		ret = vu_set_vring_fd(dev, VU_SET_VRING_CALL, i, dev->vqs[i].call_fd);
	}
	if (ret < 0) {
		return ret;
	}
	dev->started = true;
	dev->paused = false;
	dev->lost = false;
	return 0;
}

static int dev_stop(struct vublk *dev)
{
	int ret = 0;

	for (unsigned int i = 0; ret == 0 && i < dev->nvqs; i++) {
		if (vu_has_feature(dev->features, VUBLK_F_PROTOCOL_FEATURES)) {
			ret = vu_set_state(dev, VU_SET_VRING_ENABLE, i, 0);
		}
	}
	for (unsigned int i = 0; ret == 0 && i < dev->nvqs; i++) {
		uint32_t base;

		ret = vu_get_state(dev, VU_GET_VRING_BASE, i, &base);
		if (ret == 0) {
			dev->vqs[i].base = base;
		}
	}
	if (ret < 0) {
		return ret;
	}
	dev->started = false;
	dev->paused = true;
	return 0;
}

static void dev_free(struct vublk *dev)
{
	for (unsigned int i = 0; i < dev->nvqs; i++) {
		vq_fini(dev, &dev->vqs[i]);
	}
	free(dev->vqs);
	if (dev->inflight_addr) {
		munmap(dev->inflight_addr, dev->inflight_bytes);
	}
	if (dev->inflight_fd >= 0) {
		close(dev->inflight_fd);
	}
	if (dev->sock >= 0) {
		close(dev->sock);
	}
	mem_fini(&dev->mem);
	free(dev->path);
	free(dev);
}

int vublk_connect(const char *path, const struct vublk_opts *opts, struct vublk **devp,
		  struct errmsg *err)
{
	struct vublk *dev;
	int ret;

	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		return -ENOMEM;
	}
	dev->sock = -1;
	dev->inflight_fd = -1;
	dev->mem.fd = -1;
	if (opts) {
		dev->opts = *opts;
	} else {
		vublk_opts_init(&dev->opts);
	}
	ret = opts_check(&dev->opts, err);
	if (ret < 0) {
		goto out_free;
	}
	dev->path = strdup(path);
	if (!dev->path) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = mem_init(&dev->mem, &dev->opts, err);
	if (ret < 0) {
		goto out_free;
	}
	ret = sock_connect(dev);
	if (ret == 0) {
		ret = negotiate(dev, false);
	}
	if (ret < 0) {
		goto out_err;
	}
	dev->vqs = calloc(dev->opts.num_queues, sizeof(*dev->vqs));
	if (!dev->vqs) {
		ret = -ENOMEM;
		goto out_err;
	}
	for (unsigned int i = 0; i < dev->opts.num_queues; i++) {
		ret = vq_init(dev, &dev->vqs[i], i);
		if (ret < 0) {
			errmsg_set(&dev->err, "queue %u: guest RAM of %llu bytes is too small for "
				   "the rings", i, (unsigned long long)dev->mem.bytes);
			goto out_err;
		}
		dev->nvqs++;
	}
	ret = dev_init(dev);
	if (ret == 0) {
		ret = dev_start(dev);
	}
	if (ret < 0) {
		goto out_err;
	}
	*devp = dev;
	return 0;
out_err:
	if (err) {
		*err = dev->err;
	}
out_free:
	dev_free(dev);
	return ret;
}

int vublk_close(struct vublk *dev)
{
	int ret = 0;

	if (!dev) {
		return 0;
	}
	if (dev->sock >= 0 && dev->started) {
		ret = dev_stop(dev);
	}
	dev_free(dev);
	return ret;
}

int vublk_pause(struct vublk *dev)
{
	if (!dev->started) {
		return dev->sock < 0 ? -ENOTCONN : -EALREADY;
	}
	return dev_stop(dev);
}

int vublk_resume(struct vublk *dev)
{
	if (dev->sock < 0) {
		return -ENOTCONN;
	}
	if (dev->started) {
		return -EALREADY;
	}
	return dev_start(dev);
}

void vublk_drop(struct vublk *dev)
{
	if (dev->sock >= 0) {
		close(dev->sock);
		dev->sock = -1;
	}
	if (dev->started) {
		dev->lost = true;
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vublk_reconnect(struct vublk *dev, int timeout_ms, struct errmsg *err)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int ret;

	vublk_drop(dev);
	/* virtio_queue_restore_last_avail_idx(): what the device last
	 * returned is all we know; a clean pause left exact bases instead. */
	if (dev->lost && !vu_has_feature(dev->features, VUBLK_F_RING_PACKED)) {
		/* Packed: QEMU has no such index to read, and sends the stale
		 * base it has; the server's inflight area knows better. */
		for (unsigned int i = 0; i < dev->nvqs; i++) {
			dev->vqs[i].base = vq_used_idx(&dev->vqs[i]);
		}
	}
	/* The whole sequence is retried: a restarting server may accept
	 * before it is ready, or die again half-way. */
	for (;;) {
		ret = sock_connect(dev);
		if (ret == 0) {
			ret = negotiate(dev, true);
		}
		if (ret == 0) {
			ret = dev_init(dev);
		}
		if (ret == 0) {
			ret = dev_start(dev);
		}
		if (ret == 0 || ret == -ENOTSUP || now_ms() >= deadline) {
			break;
		}
		vublk_drop(dev);
		sleep_ms(RECONNECT_STEP_MS);
	}
	if (ret < 0) {
		vublk_drop(dev);
		if (err) {
			*err = dev->err;
		}
		return ret;
	}
	dev->reconnects++;
	if (dev->opts.kick_after_reconnect) {
		uint64_t one = 1;

		for (unsigned int i = 0; i < dev->nvqs; i++) {
			if (dev->vqs[i].st.inflight && write(dev->vqs[i].kick_fd, &one, 8) == 8) {
				dev->vqs[i].st.kicks++;
			}
		}
	}
	return 0;
}

int vublk_refresh_config(struct vublk *dev)
{
	return get_config(dev);
}

void vublk_kick(struct vublk *dev, int q)
{
	for (unsigned int i = 0; i < dev->nvqs; i++) {
		if (q < 0 || (unsigned int)q == i) {
			vq_kick(dev, &dev->vqs[i]);
		}
	}
}

/* Server death shows only on the socket; look there now and then while
 * polling finds nothing, so busy pollers notice without a syscall per
 * round. */
#define IDLE_POLLS_PER_CHECK 256

int vublk_poll(struct vublk *dev, int q)
{
	int n = 0;

	if (q >= 0 && (unsigned int)q >= dev->nvqs) {
		return -EINVAL;
	}
	vublk_kick(dev, q);
	for (unsigned int i = 0; i < dev->nvqs; i++) {
		if (q < 0 || (unsigned int)q == i) {
			n += vq_poll(dev, &dev->vqs[i]);
		}
	}
	if (n == 0 && ++dev->idle_polls >= IDLE_POLLS_PER_CHECK) {
		dev->idle_polls = 0;
		if (!vu_socket_alive(dev)) {
			return -ENOTCONN;
		}
	}
	return n;
}

static void drain_calls(struct vublk *dev, struct pollfd *pfds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t count;

		if (pfds[i].revents && read(pfds[i].fd, &count, sizeof(count)) == sizeof(count)) {
			dev->vqs[i].st.calls++;
		}
	}
}

int vublk_wait(struct vublk *dev, int q, int timeout_ms)
{
	struct pollfd pfds[VUBLK_MAX_QUEUES + 1];
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
	int n;

	for (;;) {
		unsigned int nq = 0;
		int wait_ms, ret;

		n = vublk_poll(dev, q);
		if (n != 0 && n != -ENOTCONN) {
			return n;
		}
		if (dev->sock < 0) {
			if (dev->opts.reconnect_ms <= 0 ||
			    vublk_reconnect(dev, dev->opts.reconnect_ms, NULL) < 0) {
				return -ENOTCONN;
			}
			continue;
		}
		for (unsigned int i = 0; i < dev->nvqs; i++) {
			/* Index by queue so drain_calls() counts the right one. */
			pfds[i].fd = dev->vqs[i].call_fd;
			pfds[i].events = POLLIN;
			nq++;
		}
		pfds[nq].fd = dev->sock;
		pfds[nq].events = POLLIN | POLLRDHUP;
		if (now_ms() >= deadline) {
			return 0;
		}
		wait_ms = deadline == INT64_MAX ? -1 : (int)(deadline - now_ms());
		ret = poll(pfds, nq + 1, wait_ms);
		if (ret < 0 && errno != EINTR) {
			return -errno;
		}
		if (ret > 0) {
			drain_calls(dev, pfds, nq);
			if (pfds[nq].revents) {
				vu_socket_alive(dev);
			}
		}
	}
}

struct sync_result {
	bool done;
	int status;
	uint32_t used_bytes;
};

static void sync_done(void *opaque, int status, uint32_t used_bytes)
{
	struct sync_result *r = opaque;

	r->done = true;
	r->status = status;
	r->used_bytes = used_bytes;
}

int vublk_io_sync(struct vublk *dev, unsigned int q, const struct vublk_io *io,
		  int timeout_ms, uint32_t *used_bytesp)
{
	struct sync_result r = {0};
	int64_t deadline = now_ms() + timeout_ms;
	uint16_t head;
	int ret;

	if (q >= dev->nvqs) {
		return -EINVAL;
	}
	ret = vq_submit(dev, &dev->vqs[q], io, sync_done, &r, &head);
	if (ret < 0) {
		return ret;
	}
	while (!r.done) {
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		ret = vublk_wait(dev, q, (int)left);
		if (ret < 0) {
			break;
		}
	}
	if (!r.done) {
		/* Our result lives on this stack frame; detach it. */
		dev->vqs[q].req[head].done = NULL;
		return ret < 0 ? ret : -ETIMEDOUT;
	}
	if (used_bytesp) {
		*used_bytesp = r.used_bytes;
	}
	return r.status;
}

int vublk_call_fd(const struct vublk *dev, unsigned int q)
{
	return q < dev->nvqs ? dev->vqs[q].call_fd : -1;
}

const struct vublk_config *vublk_config(const struct vublk *dev)
{
	return &dev->cfg;
}

uint64_t vublk_offered_features(const struct vublk *dev)
{
	return dev->offered_features;
}

uint64_t vublk_features(const struct vublk *dev)
{
	return dev->features;
}

uint64_t vublk_offered_protocol_features(const struct vublk *dev)
{
	return dev->offered_pfeatures;
}

uint64_t vublk_protocol_features(const struct vublk *dev)
{
	return dev->pfeatures;
}

unsigned int vublk_max_queues(const struct vublk *dev)
{
	return dev->max_queues;
}

unsigned int vublk_num_queues(const struct vublk *dev)
{
	return dev->nvqs;
}

unsigned int vublk_queue_size(const struct vublk *dev)
{
	return dev->opts.queue_size;
}

const char *vublk_last_error(const struct vublk *dev)
{
	return dev->err.msg;
}

bool vublk_connected(const struct vublk *dev)
{
	return dev->sock >= 0;
}

unsigned int vublk_reconnects(const struct vublk *dev)
{
	return dev->reconnects;
}

void vublk_queue_stats(const struct vublk *dev, unsigned int q, struct vublk_qstats *st)
{
	if (q < dev->nvqs) {
		*st = dev->vqs[q].st;
	} else {
		memset(st, 0, sizeof(*st));
	}
}

const void *vublk_inflight_area(const struct vublk *dev, size_t *bytesp)
{
	if (bytesp) {
		*bytesp = dev->inflight_addr ? dev->inflight_bytes : 0;
	}
	return dev->inflight_addr;
}

const char *vublk_type_name(uint32_t type)
{
	switch (type) {
	case VUBLK_T_IN:
		return "in";
	case VUBLK_T_OUT:
		return "out";
	case VUBLK_T_FLUSH:
		return "flush";
	case VUBLK_T_GET_ID:
		return "get-id";
	case VUBLK_T_DISCARD:
		return "discard";
	case VUBLK_T_WRITE_ZEROES:
		return "write-zeroes";
	}
	return "unknown";
}

const char *vublk_feature_name(unsigned int bit)
{
	static const char *const names[64] = {
		[VUBLK_F_SIZE_MAX] = "SIZE_MAX",
		[VUBLK_F_SEG_MAX] = "SEG_MAX",
		[VUBLK_F_GEOMETRY] = "GEOMETRY",
		[VUBLK_F_RO] = "RO",
		[VUBLK_F_BLK_SIZE] = "BLK_SIZE",
		[VUBLK_F_FLUSH] = "FLUSH",
		[VUBLK_F_TOPOLOGY] = "TOPOLOGY",
		[VUBLK_F_CONFIG_WCE] = "CONFIG_WCE",
		[VUBLK_F_MQ] = "MQ",
		[VUBLK_F_DISCARD] = "DISCARD",
		[VUBLK_F_WRITE_ZEROES] = "WRITE_ZEROES",
		[24] = "NOTIFY_ON_EMPTY",
		[26] = "LOG_ALL",
		[27] = "ANY_LAYOUT",
		[VUBLK_F_INDIRECT_DESC] = "RING_INDIRECT_DESC",
		[VUBLK_F_EVENT_IDX] = "RING_EVENT_IDX",
		[VUBLK_F_PROTOCOL_FEATURES] = "PROTOCOL_FEATURES",
		[VUBLK_F_VERSION_1] = "VERSION_1",
		[33] = "ACCESS_PLATFORM",
		[34] = "RING_PACKED",
		[35] = "IN_ORDER",
		[36] = "ORDER_PLATFORM",
		[37] = "SR_IOV",
		[38] = "NOTIFICATION_DATA",
		[40] = "RING_RESET",
	};

	return bit < 64 ? names[bit] : NULL;
}

const char *vublk_protocol_feature_name(unsigned int bit)
{
	static const char *const names[64] = {
		"MQ", "LOG_SHMFD", "RARP", "REPLY_ACK", "NET_MTU", "BACKEND_REQ",
		"CROSS_ENDIAN", "CRYPTO_SESSION", "PAGEFAULT", "CONFIG", "BACKEND_SEND_FD",
		"HOST_NOTIFIER", "INFLIGHT_SHMFD", "RESET_DEVICE", "INBAND_NOTIFICATIONS",
		"CONFIGURE_MEM_SLOTS", "STATUS",
	};

	return bit < 64 ? names[bit] : NULL;
}
