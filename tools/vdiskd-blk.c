/* SPDX-License-Identifier: MIT */
/* vdiskd-blk.c: the vhost-user-blk server.  DPDK's rte_vhost is used as an
 * external back end: it speaks the vhost-user protocol and maps guest
 * memory; this file takes requests from the virtqueues (split or packed,
 * with EVENT_IDX if the front end acks it: vring.c holds the ring layouts,
 * this file what a chain means to a disk), checks and maps their buffers,
 * drives the disk's back end (blk-backend.h) asynchronously with every
 * request of every queue in flight at once, and completes them.
 *
 * Threads.  'threads' I/O threads (default: one per online CPU, at most 4)
 * each own a set of virtqueues, across disks: queue q of a disk goes to
 * thread (disk's first thread + q) % threads, so the queues of one disk are
 * spread over several cores and the disks over all of them.  A queue is
 * only ever touched by its thread.  The back end (an image handle, not
 * thread-safe) is shared by the queues of its disk: every back-end call is
 * made under the disk's lock, and each queue has its own back-end I/O ring,
 * so the lock is held only to submit and to run completions, never while
 * the kernel moves data.  In event mode (the default) a thread sleeps in
 * epoll on the kick eventfds and back-end completion eventfds of its
 * queues, so an idle server burns no CPU; in poll mode it spins over its
 * queues on a pinned core.  The control thread (JSON-RPC) and rte_vhost's
 * thread (connections) talk to the I/O threads through flags, a wake-up
 * eventfd per thread and the disk's condition variable.
 *
 * A request goes FREE -> (popped) PARSED -> SUBMITTED -> DONE -> FREE, or
 * PARSED -> DONE at once (bad request, GET_ID), or SUBMITTED -> HELD ->
 * SUBMITTED (no space, retried), or PARSED -> DEFERRED -> SUBMITTED (popped
 * while the disk drained).  The rules:
 *
 *  1. A chain is marked in rte_vhost's inflight area before the next one is
 *     read, and only then does the queue move past it.  So after a crash
 *     the chains popped and not completed are exactly those the front end
 *     sees marked, and DPDK's resubmit list is right.  (A packed ring
 *     restarts at the used position the area committed, moved on by the
 *     resubmitted chains: vring.c.)
 *  2. Completion order: data and status byte in guest memory, then
 *     set_last_inflight_io, the used entry (split: used->idx, packed: the
 *     descriptor's flags, with release order), and only then the inflight
 *     mark is cleared.  A crash between the two is repaired by DPDK from
 *     last_inflight_io.
 *  3. A write is completed to the guest only after the back end completed
 *     it; a FLUSH completes only after every write completed before it was
 *     submitted is durable (the back end's flush contract).
 *  4. Guest memory is touched only while the device exists: destroy_device
 *     waits until every request of the device has left the back end before
 *     it returns (rte_vhost unmaps the memory after it).  Held and deferred
 *     requests stay marked in the inflight area and are resubmitted by the
 *     next connection.
 *  5. Everything the guest wrote is read once into local variables
 *     (descriptor fields, the request header) before it is checked and
 *     used; every buffer is mapped through rte_vhost_va_from_guest_pa with
 *     its whole length checked, a chain is at most VDD_MAX_SEGS long,
 *     readable before writable, no nested indirect tables, for both ring
 *     layouts through one walk (vr_walk_next); a packed chain running past
 *     the ring or into a slot not made available stops the queue, as an
 *     avail index too far ahead does on a split one.  A bad request
 *     is completed with IOERR (or UNSUPP for an unknown type), logged at
 *     most a few times a second, and the queue goes on.
 *  6. While a disk drains (snapshot, resize, describe, remove), no request is
 *     submitted: a popped one waits on its queue's deferred list.  So does
 *     a write a live migration turns back (its range is being copied).  The
 *     drainer holds the disk lock while it acts, so the operation sees
 *     exactly the writes completed before it and none after.
 *  7. A request the back end refuses with ENOSPC or EDQUOT is held, never
 *     failed: it waits on its queue's held list, in order, and is
 *     resubmitted every VDD_RETRY_MS or when told to retry.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* rte_vhost_slave_config_change() is still "experimental" in 22.11. */
#define ALLOW_EXPERIMENTAL_API
#include <rte_vhost.h>

#include "blk-backend.h"
#include "vdiskd.h"
#include "vring.h"

/* Longest descriptor chain (and indirect table) taken: seg_max data
 * segments plus header and status. */
#define VDD_SEG_MAX 126
#define VDD_MAX_SEGS (VDD_SEG_MAX + 2)
/* A descriptor may straddle two memory regions. */
#define VDD_MAX_IOV (2 * VDD_MAX_SEGS)
/* Largest data segment: Linux splits bigger buffers. */
#define VDD_SIZE_MAX (1u << 20)
/* One discard or write-zeroes range per request, up to 1 GiB. */
#define VDD_MAX_DISCARD_SECTORS (1u << 21)
/* Held requests are retried this often while space is missing. */
#define VDD_RETRY_MS 1000
/* Guest errors logged per disk per second at most. */
#define VDD_LOG_BURST 5

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

/* GET_CONFIG and friends, as rte_vhost hands them to pre_msg_handle (the
 * vhost-user wire layout, packed). */
#define VHU_GET_VRING_BASE 11
#define VHU_GET_QUEUE_NUM 17
#define VHU_GET_CONFIG 24
#define VHU_SET_CONFIG 25

struct vhu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct {
			uint32_t index;
			uint32_t num;
		} state;
		struct {
			uint32_t offset;
			uint32_t size;
			uint32_t flags;
			uint8_t region[256];
		} cfg;
	} payload;
} __attribute__((packed));

enum req_state { REQ_FREE, REQ_PARSED, REQ_SUBMITTED, REQ_HELD, REQ_DEFERRED };

struct vdd_queue;

struct vdd_req {
	struct vdd_queue *q;
	enum req_state state;
	uint16_t id;             /* its index in q->reqs: head or buffer id */
	struct vr_elem elem;     /* the chain it came in */
	uint32_t type;
	enum vdd_op op;
	uint64_t off, len;       /* bytes on the disk */
	bool unmap;
	struct iovec *iov;       /* VDD_MAX_IOV: the data buffers */
	int iovcnt;
	uint8_t *status;
	uint32_t used_len;       /* bytes written into guest buffers */
	uint64_t start_ns;
	struct vdd_req *next;    /* on the held or deferred list */
};

struct req_list {
	struct vdd_req *head, *tail;
	unsigned n;
};

struct vdd_worker;

struct vdd_queue {
	struct vdd_disk *disk;
	struct vdd_worker *worker;
	uint16_t index;
	int vid;
	struct vr_queue ring;    /* split or packed (vring.h) */
	struct blk_queue *bq;
	struct vdd_req *reqs;    /* ring.size, by head or buffer id */
	struct iovec *iovs;      /* ring.size * VDD_MAX_IOV */
	unsigned inflight;       /* in the back end (disk lock) */
	struct req_list held;    /* rule 7 (disk lock) */
	struct req_list deferred; /* rule 6 (worker only) */
	bool resubmit;           /* inflight entries to resubmit first */
	bool broken;             /* the guest broke the ring: stop popping */
	atomic_bool stopping;    /* destroy_device wants it detached */
	atomic_bool detached;
	atomic_bool service;     /* an event came */
	uint64_t last_retry_ns;
	atomic_uint_fast64_t requests;
	struct vdd_queue *wnext; /* on the worker's list */
};

struct vdd_worker {
	struct vdd *srv;
	pthread_t tid;
	int epfd;
	int wakefd;
	int cpu;                 /* -1: not pinned */
	pthread_mutex_t lock;    /* 'attach' */
	struct vdd_queue *attach; /* handed over, not yet on 'queues' */
	struct vdd_queue *queues; /* the thread's own list */
	atomic_bool stop;
	atomic_bool retry;       /* retry held requests now */
};

struct vdd_disk {
	struct vdd *srv;
	struct vdd_disk_opts opts; /* strings owned */
	char serial[VDD_SERIAL_BYTES];
	struct blk_backend *backend;
	pthread_mutex_t lock;      /* back end calls, 'inflight', 'held' */
	pthread_cond_t cond;       /* inflight reached 0, a queue detached */
	unsigned inflight;
	uint64_t allocated_bytes;  /* last counted with nothing in flight */
	unsigned held;
	int held_errno;
	atomic_bool draining;
	atomic_uint_fast64_t size_bytes;
	unsigned first_worker;
	bool registered;           /* the vhost-user socket exists */
	/* Connection state, written by rte_vhost's thread. */
	atomic_int vid;            /* -1: none */
	atomic_bool connected;
	atomic_bool running;
	atomic_uint_fast64_t features; /* negotiated; 0: no device */
	struct rte_vhost_memory *mem;
	struct vdd_queue *queues[VDD_MAX_QUEUES];
	/* Statistics: one writer per queue, summed on reading. */
	pthread_mutex_t stats_lock;
	struct vdd_op_stats stats[VDD_N_OPS];
	uint64_t queue_requests[VDD_MAX_QUEUES];
	uint64_t bytes_read, bytes_written;
	/* Live migration: the job (vdiskd-migrate.c), and image paths the
	 * disk was served from before a pivot (readers may still hold them). */
	struct vdd_job *job;
	char *old_images[4];
	unsigned n_old_images;
	/* Guest error logging. */
	uint64_t log_window_ns;
	unsigned log_count, log_dropped;
	struct vdd_disk *next;
};

struct vdd {
	struct vdd_opts opts;
	struct vdd_worker *workers;
	unsigned n_workers;
	unsigned next_worker;
	pthread_mutex_t lock;      /* 'disks' (control and vhost threads) */
	struct vdd_disk *disks;
};

/* rte_vhost's callbacks know a device id only. */
static struct vdd_disk *_Atomic disk_by_vid[RTE_MAX_VHOST_DEVICE];
static struct vdd *the_srv;

uint64_t vdd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *vdd_op_name(enum vdd_op op)
{
	static const char *const names[] = {"read", "write", "flush", "discard",
					    "write-zeroes", "get-id", "other"};

	return op < VDD_N_OPS ? names[op] : "?";
}

/* Rule 5: a guest's mistakes are logged, a few per second per disk. */
static void guest_error(struct vdd_disk *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void guest_error(struct vdd_disk *d, const char *fmt, ...)
{
	uint64_t now = vdd_now_ns();
	char buf[256];
	va_list ap;
	bool print;

	pthread_mutex_lock(&d->stats_lock);
	if (now - d->log_window_ns > 1000000000u) {
		if (d->log_dropped) {
			vdd_log("disk %s: %u more guest errors not shown", d->opts.image,
				d->log_dropped);
		}
		d->log_window_ns = now;
		d->log_count = 0;
		d->log_dropped = 0;
	}
	print = d->log_count++ < VDD_LOG_BURST;
	if (!print) {
		d->log_dropped++;
	}
	pthread_mutex_unlock(&d->stats_lock);
	if (print) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		vdd_log("disk %s: guest error: %s", d->opts.image, buf);
	}
}

static void wake(struct vdd_worker *w)
{
	uint64_t one = 1;

	if (write(w->wakefd, &one, sizeof(one)) < 0) {
		/* The counter is full: the thread is awake anyway. */
	}
}

static void wake_all(struct vdd *srv)
{
	for (unsigned i = 0; i < srv->n_workers; i++) {
		wake(&srv->workers[i]);
	}
}

/* ------------------------------------------------------------ completion */

static void account(struct vdd_req *r, int status)
{
	struct vdd_disk *d = r->q->disk;
	struct vdd_op_stats *s = &d->stats[r->op];
	uint64_t us = (vdd_now_ns() - r->start_ns) / 1000;
	unsigned b = 0;

	while (b < VDD_LAT_BUCKETS - 1 && us >= (1ull << b)) {
		b++;
	}
	pthread_mutex_lock(&d->stats_lock);
	s->requests++;
	s->latency_us_total += us;
	s->latency[b]++;
	if (status != VIRTIO_BLK_S_OK) {
		s->errors++;
	} else if (r->op == VDD_OP_READ || r->op == VDD_OP_WRITE) {
		s->bytes += r->len;
		if (r->op == VDD_OP_READ) {
			d->bytes_read += r->len;
		} else {
			d->bytes_written += r->len;
		}
	} else if (r->op == VDD_OP_DISCARD || r->op == VDD_OP_WRITE_ZEROES) {
		s->bytes += r->len;
	}
	d->queue_requests[r->q->index]++;
	pthread_mutex_unlock(&d->stats_lock);
}

/* Rule 2. */
static void complete(struct vdd_req *r, uint8_t status)
{
	struct vdd_queue *q = r->q;

	if (r->status) {
		*r->status = status;
	}
	account(r, status);
	vr_push(&q->ring, &r->elem, r->used_len);
	r->state = REQ_FREE;
	atomic_fetch_add_explicit(&q->requests, 1, memory_order_relaxed);
}

static void list_push(struct req_list *l, struct vdd_req *r)
{
	r->next = NULL;
	if (l->tail) {
		l->tail->next = r;
	} else {
		l->head = r;
	}
	l->tail = r;
	l->n++;
}

static struct vdd_req *list_pop(struct req_list *l)
{
	struct vdd_req *r = l->head;

	if (r) {
		l->head = r->next;
		if (!l->head) {
			l->tail = NULL;
		}
		l->n--;
	}
	return r;
}

static bool no_space(int ret)
{
	return ret == -ENOSPC || ret == -EDQUOT;
}

/* Rule 7; disk lock held. */
static void hold(struct vdd_req *r, int ret)
{
	struct vdd_disk *d = r->q->disk;

	if (d->held == 0) {
		vdd_log("disk %s: holding requests: %s (retrying every %d ms, or on disk-retry)",
			d->opts.image, strerror(-ret), VDD_RETRY_MS);
	}
	r->state = REQ_HELD;
	list_push(&r->q->held, r);
	d->held++;
	d->held_errno = -ret;
}

/* The back end's callback; runs inside queue_poll() under the disk lock. */
static void backend_done(void *arg, int ret)
{
	struct vdd_req *r = arg;
	struct vdd_queue *q = r->q;
	struct vdd_disk *d = q->disk;

	q->inflight--;
	d->inflight--;
	if (no_space(ret)) {
		hold(r, ret);
	} else {
		if (ret < 0) {
			vdd_log("disk %s: %s of %" PRIu64 " bytes at %" PRIu64 " failed: %s",
				d->opts.image, vdd_op_name(r->op), r->len, r->off, strerror(-ret));
		}
		complete(r, ret < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
	}
	if (d->inflight == 0) {
		pthread_cond_broadcast(&d->cond);
	}
}

/* Hands 'r' to the back end; disk lock held. */
static void submit(struct vdd_req *r)
{
	struct vdd_queue *q = r->q;
	struct vdd_disk *d = q->disk;
	const struct blk_backend_class *c = q->bq->cls;
	int ret;

	switch (r->op) {
	case VDD_OP_READ:
		ret = c->readv(q->bq, r->iov, r->iovcnt, r->off, backend_done, r);
		break;
	case VDD_OP_WRITE:
		ret = c->writev(q->bq, r->iov, r->iovcnt, r->off, backend_done, r);
		break;
	case VDD_OP_FLUSH:
		ret = c->flush(q->bq, backend_done, r);
		break;
	case VDD_OP_DISCARD:
		ret = c->discard(q->bq, r->off, r->len, backend_done, r);
		break;
	case VDD_OP_WRITE_ZEROES:
		ret = c->write_zeroes(q->bq, r->off, r->len, r->unmap, backend_done, r);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	if (ret == 0) {
		r->state = REQ_SUBMITTED;
		q->inflight++;
		d->inflight++;
	} else if (no_space(ret)) {
		hold(r, ret);
	} else if (ret == -EINPROGRESS) {
		/* A live migration is copying the range: wait like a request
		 * popped during a drain (the copy ends within a millisecond or
		 * so, and the job wakes the threads). */
		r->state = REQ_DEFERRED;
		list_push(&q->deferred, r);
	} else {
		vdd_log("disk %s: %s at %" PRIu64 " refused: %s", d->opts.image,
			vdd_op_name(r->op), r->off, strerror(-ret));
		complete(r, VIRTIO_BLK_S_IOERR);
	}
}

/* -------------------------------------------------------------- parsing */

/* Maps guest [gpa, gpa+len) into iovecs at 'iov[*n]'.  Rule 5. */
static int map_buf(struct vdd_queue *q, uint64_t gpa, uint64_t len, struct iovec *iov, int *n)
{
	if (gpa + len < gpa) {
		return -EFAULT;
	}
	while (len > 0) {
		uint64_t chunk = len;
		uint64_t va;

		if (*n >= VDD_MAX_IOV) {
			return -E2BIG;
		}
		va = rte_vhost_va_from_guest_pa(q->ring.mem, gpa, &chunk);
		if (!va || chunk == 0) {
			return -EFAULT;
		}
		iov[*n].iov_base = (void *)(uintptr_t)va;
		iov[*n].iov_len = chunk;
		(*n)++;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

struct chain {
	int n_read, n_write;   /* iovecs: readable first, then writable */
	uint64_t read_bytes, write_bytes;
	/* The chain's last descriptor, when the walk reached it: where the
	 * status byte goes even if another buffer was bad. */
	bool have_last;
	struct vr_desc last;
};

/* Walks r's chain, split or packed, into r->iov.  A buffer outside guest
 * memory fails the walk but it goes on to find the last descriptor; a
 * broken chain stops it.  Rule 5. */
static int walk_chain(struct vdd_queue *q, struct vdd_req *r, struct chain *ch, const char **why)
{
	struct vr_walk walk;
	struct vr_desc desc;
	int n = 0, ret = 0, more;

	memset(ch, 0, sizeof(*ch));
	vr_walk_init(&walk, &q->ring, &r->elem, VDD_MAX_SEGS);
	while ((more = vr_walk_next(&walk, &desc, why)) > 0) {
		if (desc.flags & VR_F_WRITE) {
			ch->write_bytes += desc.len;
		} else if (ch->write_bytes) {
			*why = "readable descriptor after a writable one";
			ret = ret ? ret : -EINVAL;
		} else {
			ch->read_bytes += desc.len;
		}
		if (desc.len && ret == 0) {
			int before = n, mret = map_buf(q, desc.addr, desc.len, r->iov, &n);

			if (mret < 0) {
				*why = mret == -E2BIG ? "too many segments"
						      : "buffer outside guest memory";
				ret = mret;
			} else if (desc.flags & VR_F_WRITE) {
				ch->n_write += n - before;
			} else {
				ch->n_read += n - before;
			}
		}
		if (desc.last) {
			ch->have_last = true;
			ch->last = desc;
		}
	}
	return more < 0 ? more : ret;
}

/* After a failed walk: the status byte, if the last descriptor is a
 * writable buffer in guest memory. */
static uint8_t *salvage_status(struct vdd_queue *q, const struct chain *ch)
{
	uint64_t len = 1, va;

	if (!ch->have_last || !(ch->last.flags & VR_F_WRITE) || ch->last.len == 0 ||
	    ch->last.addr + ch->last.len < ch->last.addr) {
		return NULL;
	}
	va = rte_vhost_va_from_guest_pa(q->ring.mem, ch->last.addr + ch->last.len - 1, &len);
	return va && len == 1 ? (uint8_t *)(uintptr_t)va : NULL;
}

/* Copies 'len' bytes at byte 'skip' of 'iov' to 'buf'. */
static void iov_read(const struct iovec *iov, int cnt, size_t skip, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (int i = 0; i < cnt && len; i++) {
		size_t n;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - skip < len ? iov[i].iov_len - skip : len;
		memcpy(p, (uint8_t *)iov[i].iov_base + skip, n);
		skip = 0;
		p += n;
		len -= n;
	}
}

/* Drops 'bytes' from the front of iov[0..*cnt), in place. */
static void iov_trim_front(struct iovec *iov, int *cnt, size_t bytes)
{
	int i = 0;

	while (i < *cnt && bytes >= iov[i].iov_len) {
		bytes -= iov[i].iov_len;
		i++;
	}
	if (i < *cnt) {
		iov[i].iov_base = (uint8_t *)iov[i].iov_base + bytes;
		iov[i].iov_len -= bytes;
	}
	memmove(iov, iov + i, (size_t)(*cnt - i) * sizeof(*iov));
	*cnt -= i;
}

/* Takes the last byte off iov[0..*cnt) and returns where it is. */
static uint8_t *iov_take_last(struct iovec *iov, int *cnt)
{
	struct iovec *last = &iov[*cnt - 1];
	uint8_t *p = (uint8_t *)last->iov_base + last->iov_len - 1;

	if (--last->iov_len == 0) {
		(*cnt)--;
	}
	return p;
}

static bool range_ok(struct vdd_disk *d, uint64_t off, uint64_t len)
{
	uint64_t size = atomic_load(&d->size_bytes);

	return off <= size && len <= size - off;
}

/* Checks a request the type needs no disk for or cannot take.  Returns the
 * status to complete with at once, or -1 to submit it. */
static int classify(struct vdd_queue *q, struct vdd_req *r, struct chain *ch, uint64_t sector)
{
	struct vdd_disk *d = q->disk;
	struct virtio_blk_discard_write_zeroes seg;
	uint64_t data_read = ch->read_bytes - sizeof(struct virtio_blk_outhdr);
	uint64_t data_write = ch->write_bytes - 1;
	bool ro = d->opts.read_only;

	r->off = sector << 9;
	if (sector > (UINT64_MAX >> 9)) {
		guest_error(d, "sector %" PRIu64 " overflows", sector);
		return VIRTIO_BLK_S_IOERR;
	}
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		r->op = VDD_OP_READ;
		r->len = data_write;
		if (data_read || data_write % 512) {
			guest_error(d, "read with %" PRIu64 " data bytes", data_write);
			return VIRTIO_BLK_S_IOERR;
		}
		r->used_len = (uint32_t)ch->write_bytes;
		break;
	case VIRTIO_BLK_T_OUT:
		r->op = VDD_OP_WRITE;
		r->len = data_read;
		if (data_write || data_read % 512) {
			guest_error(d, "write with %" PRIu64 " data bytes", data_read);
			return VIRTIO_BLK_S_IOERR;
		}
		if (ro) {
			guest_error(d, "write to a read-only disk");
			return VIRTIO_BLK_S_IOERR;
		}
		break;
	case VIRTIO_BLK_T_FLUSH:
		r->op = VDD_OP_FLUSH;
		r->off = 0;
		if (data_read || data_write) {
			guest_error(d, "flush with data");
			return VIRTIO_BLK_S_IOERR;
		}
		return -1;
	case VIRTIO_BLK_T_GET_ID:
		r->op = VDD_OP_GET_ID;
		if (data_read || data_write == 0) {
			guest_error(d, "get-id without a buffer");
			return VIRTIO_BLK_S_IOERR;
		}
		return VIRTIO_BLK_S_OK; /* filled by the caller */
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		r->op = r->type == VIRTIO_BLK_T_DISCARD ? VDD_OP_DISCARD : VDD_OP_WRITE_ZEROES;
		if (data_write || data_read != sizeof(seg)) {
			guest_error(d, "%s with %" PRIu64 " bytes of ranges (one range of %zu)",
				    vdd_op_name(r->op), data_read, sizeof(seg));
			return VIRTIO_BLK_S_IOERR;
		}
		iov_read(r->iov, ch->n_read, sizeof(struct virtio_blk_outhdr), &seg, sizeof(seg));
		if (ro) {
			guest_error(d, "%s on a read-only disk", vdd_op_name(r->op));
			return VIRTIO_BLK_S_IOERR;
		}
		if ((r->op == VDD_OP_DISCARD && (seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)) ||
		    (seg.flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)) {
			return VIRTIO_BLK_S_UNSUPP;
		}
		if (seg.num_sectors > VDD_MAX_DISCARD_SECTORS || seg.sector > (UINT64_MAX >> 9)) {
			guest_error(d, "%s of %u sectors", vdd_op_name(r->op), seg.num_sectors);
			return VIRTIO_BLK_S_IOERR;
		}
		r->off = seg.sector << 9;
		r->len = (uint64_t)seg.num_sectors << 9;
		r->unmap = seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		break;
	default:
		r->op = VDD_OP_OTHER;
		guest_error(d, "unknown request type %u", r->type);
		return VIRTIO_BLK_S_UNSUPP;
	}
	if (!range_ok(d, r->off, r->len)) {
		guest_error(d, "%s of %" PRIu64 " bytes at %" PRIu64 " beyond the end",
			    vdd_op_name(r->op), r->len, r->off);
		return VIRTIO_BLK_S_IOERR;
	}
	return -1;
}

/* Parses the request in 'r->elem'.  Returns true when it is to be
 * submitted; otherwise it has been completed. */
static bool parse(struct vdd_queue *q, struct vdd_req *r)
{
	struct vdd_disk *d = q->disk;
	struct virtio_blk_outhdr hdr;
	const char *why = NULL;
	struct chain ch;
	int status;

	r->start_ns = vdd_now_ns();
	r->state = REQ_PARSED;
	r->status = NULL;
	r->used_len = 0;
	r->len = 0;
	r->op = VDD_OP_OTHER;
	r->iovcnt = 0;
	if (walk_chain(q, r, &ch, &why) < 0) {
		guest_error(d, "queue %u request %u: %s", q->index, r->id, why);
		r->status = salvage_status(q, &ch);
		r->used_len = r->status ? 1 : 0;
		complete(r, VIRTIO_BLK_S_IOERR);
		return false;
	}
	if (ch.write_bytes < 1 || ch.read_bytes < sizeof(hdr)) {
		guest_error(d, "queue %u request %u: no %s", q->index, r->id,
			    ch.write_bytes < 1 ? "writable status byte" : "request header");
		if (ch.write_bytes >= 1) {
			int nw = ch.n_write;

			r->status = iov_take_last(r->iov + ch.n_read, &nw);
			r->used_len = 1;
		}
		complete(r, VIRTIO_BLK_S_IOERR);
		return false;
	}
	iov_read(r->iov, ch.n_read, 0, &hdr, sizeof(hdr));
	r->type = hdr.type;
	/* The status byte is the last writable one; the data lie between. */
	{
		struct iovec *w = r->iov + ch.n_read;
		int nw = ch.n_write;

		r->status = iov_take_last(w, &nw);
		ch.n_write = nw;
	}
	r->used_len = 1;
	status = classify(q, r, &ch, hdr.sector);
	if (r->type == VIRTIO_BLK_T_OUT || r->type == VIRTIO_BLK_T_IN) {
		if (r->type == VIRTIO_BLK_T_OUT) {
			r->iovcnt = ch.n_read;
			iov_trim_front(r->iov, &r->iovcnt, sizeof(hdr));
		} else {
			memmove(r->iov, r->iov + ch.n_read, (size_t)ch.n_write * sizeof(*r->iov));
			r->iovcnt = ch.n_write;
		}
	}
	if (status == VIRTIO_BLK_S_OK && r->op == VDD_OP_GET_ID) {
		struct iovec *w = r->iov + ch.n_read;
		uint8_t id[VDD_SERIAL_BYTES];
		size_t n = 0;

		memcpy(id, d->serial, sizeof(id));
		for (int i = 0; i < ch.n_write && n < sizeof(id); i++) {
			size_t k = w[i].iov_len < sizeof(id) - n ? w[i].iov_len : sizeof(id) - n;

			memcpy(w[i].iov_base, id + n, k);
			n += k;
		}
		r->used_len = (uint32_t)n + 1;
	}
	if (status >= 0) {
		complete(r, (uint8_t)status);
		return false;
	}
	if (r->len == 0 && (r->op == VDD_OP_READ || r->op == VDD_OP_WRITE)) {
		complete(r, VIRTIO_BLK_S_OK);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ the queue */

/* The request slot for chain 'e', or NULL (logged) when its id is out of
 * the ring or already in flight. */
static struct vdd_req *req_for(struct vdd_queue *q, const struct vr_elem *e)
{
	if (e->id >= q->ring.size || q->reqs[e->id].state != REQ_FREE) {
		guest_error(q->disk, "queue %u: %s %u %s", q->index,
			    q->ring.packed ? "buffer id" : "head", e->id,
			    e->id >= q->ring.size ? "out of the ring" : "already in flight");
		return NULL;
	}
	q->reqs[e->id].elem = *e;
	return &q->reqs[e->id];
}

/* Resubmits what the inflight area says a dead server left (rule 1). */
static void resubmit(struct vdd_queue *q, struct vdd_req **batch, unsigned *n)
{
	struct vr_elem e;
	unsigned count = 0;

	q->resubmit = false;
	while (vr_resubmitted(&q->ring, &e) > 0) {
		struct vdd_req *r = req_for(q, &e);

		count++;
		if (!r) {
			/* Give its ring slots back (a packed ring's used
			 * position must move past them). */
			if (q->ring.packed) {
				vr_push(&q->ring, &e, 0);
			}
			continue;
		}
		if (parse(q, r)) {
			batch[(*n)++] = r;
		}
	}
	if (count) {
		vdd_log("disk %s: queue %u: resubmitting %u requests a previous run left in flight",
			q->disk->opts.image, q->index, count);
	}
}

/* Pops what the guest made available, up to 'max' requests.  Rule 1. */
static unsigned pop(struct vdd_queue *q, struct vdd_req **batch, unsigned max)
{
	const char *why = NULL;
	struct vr_elem e;
	unsigned n = 0;
	int ret;

	while (n < max && (ret = vr_peek(&q->ring, &e, &why)) != 0) {
		struct vdd_req *r;

		if (ret < 0) {
			guest_error(q->disk, "queue %u: %s", q->index, why);
			q->broken = true;
			break;
		}
		r = req_for(q, &e);
		if (!r) {
			vr_drop(&q->ring, &e);
			continue;
		}
		vr_take(&q->ring, &r->elem);
		if (parse(q, r)) {
			batch[n++] = r;
		}
	}
	return n;
}

/* Submits what 'batch', the deferred list and (when due) the held list
 * hold; disk lock held.  Rule 6: nothing while the disk drains. */
static void submit_all(struct vdd_queue *q, struct vdd_req **batch, unsigned n, bool retry_held)
{
	struct vdd_disk *d = q->disk;
	struct req_list held;
	struct vdd_req *r;

	if (atomic_load(&d->draining)) {
		for (unsigned i = 0; i < n; i++) {
			batch[i]->state = REQ_DEFERRED;
			list_push(&q->deferred, batch[i]);
		}
		return;
	}
	if (retry_held && q->held.n) {
		held = q->held;
		memset(&q->held, 0, sizeof(q->held));
		d->held -= held.n;
		while ((r = list_pop(&held))) {
			submit(r);
		}
		if (d->held == 0) {
			vdd_log("disk %s: held requests resubmitted", d->opts.image);
		}
	}
	/* submit() may defer a request again: take the list first. */
	held = q->deferred;
	memset(&q->deferred, 0, sizeof(q->deferred));
	while ((r = list_pop(&held))) {
		submit(r);
	}
	for (unsigned i = 0; i < n; i++) {
		submit(batch[i]);
	}
}

/* Everything a queue's thread does for it on an event or a poll round. */
static void service(struct vdd_queue *q, bool retry_all)
{
	struct vdd_disk *d = q->disk;
	struct vdd_req *batch[256];
	bool stopping = atomic_load(&q->stopping);
	bool retry = retry_all;
	uint64_t now;
	unsigned n = 0;

	if (!stopping && q->resubmit) {
		resubmit(q, batch, &n);
	}
	if (!stopping && !q->broken && !atomic_load(&d->draining)) {
		n += pop(q, batch + n, 256 - n);
		/* A ring longer than the batch, or a chain made available as
		 * the guest saw our event index: no kick will come for what
		 * is left, so come back without sleeping. */
		if (!q->broken && vr_rearm(&q->ring)) {
			atomic_store(&q->service, true);
		}
	}
	if (q->held.n && !retry) {
		now = vdd_now_ns();
		if (now - q->last_retry_ns >= VDD_RETRY_MS * 1000000ull) {
			retry = true;
		}
	}
	pthread_mutex_lock(&d->lock);
	if (!stopping) {
		if (retry) {
			q->last_retry_ns = vdd_now_ns();
		}
		submit_all(q, batch, n, retry);
	} else {
		for (unsigned i = 0; i < n; i++) {
			batch[i]->state = REQ_DEFERRED;
			list_push(&q->deferred, batch[i]);
		}
	}
	q->bq->cls->queue_poll(q->bq);
	pthread_mutex_unlock(&d->lock);
	vr_notify(&q->ring);
}

/* ----------------------------------------------------------- the threads */

enum src_kind { SRC_WAKE, SRC_QUEUE };

/* Edge-triggered: a kick or a completion wakes the worker once, and the
 * eventfd's counter is never read back to zero (its value means nothing
 * here), which saves a read per request, and one that fails with EAGAIN
 * whenever the other source woke the worker.  service() takes everything
 * the rings hold each time, so nothing waits for a second edge. */
static int epoll_add(struct vdd_worker *w, int fd, void *ptr, bool edge)
{
	struct epoll_event ev = {.events = EPOLLIN | (edge ? EPOLLET : 0), .data.ptr = ptr};

	return epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

/* Takes the queues handed over by rte_vhost's thread. */
static void take_attached(struct vdd_worker *w)
{
	struct vdd_queue *q, *next;

	pthread_mutex_lock(&w->lock);
	q = w->attach;
	w->attach = NULL;
	pthread_mutex_unlock(&w->lock);
	for (; q; q = next) {
		next = q->wnext;
		/* Event mode: the guest kicks us; poll mode: it need not.  Set
		 * here, not with rte_vhost_enable_guest_notification(), which
		 * takes a lock rte_vhost may hold while it attaches the queue. */
		vr_kicks(&q->ring, !w->srv->opts.poll);
		if (!w->srv->opts.poll) {
			if (q->ring.vr.kickfd >= 0) {
				epoll_add(w, q->ring.vr.kickfd, q, true);
			}
			epoll_add(w, q->bq->cls->queue_event_fd(q->bq), q, true);
		}
		q->wnext = w->queues;
		w->queues = q;
		atomic_store(&q->service, true);
	}
}

/* Rule 4: a stopping queue leaves once nothing of it is in the back end. */
static void release_stopped(struct vdd_worker *w)
{
	struct vdd_queue **pq = &w->queues;

	while (*pq) {
		struct vdd_queue *q = *pq;
		struct vdd_disk *d = q->disk;
		bool idle;

		if (!atomic_load(&q->stopping)) {
			pq = &q->wnext;
			continue;
		}
		pthread_mutex_lock(&d->lock);
		idle = q->inflight == 0;
		pthread_mutex_unlock(&d->lock);
		if (!idle) {
			pq = &q->wnext;
			continue;
		}
		if (!w->srv->opts.poll) {
			if (q->ring.vr.kickfd >= 0) {
				epoll_ctl(w->epfd, EPOLL_CTL_DEL, q->ring.vr.kickfd, NULL);
			}
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, q->bq->cls->queue_event_fd(q->bq), NULL);
		}
		*pq = q->wnext;
		pthread_mutex_lock(&d->lock);
		atomic_store(&q->detached, true);
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
	}
}

static void *worker_main(void *arg)
{
	struct vdd_worker *w = arg;
	struct epoll_event evs[64];

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	while (!atomic_load(&w->stop)) {
		bool held = false, again = false, retry;
		int n, timeout;

		for (struct vdd_queue *q = w->queues; q; q = q->wnext) {
			held |= q->held.n > 0 || q->deferred.n > 0;
			again |= atomic_load(&q->service);
		}
		timeout = w->srv->opts.poll || again ? 0 : held ? VDD_RETRY_MS / 4 : -1;
		n = epoll_wait(w->epfd, evs, 64, timeout);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == w) {
				uint64_t cnt;

				if (read(w->wakefd, &cnt, sizeof(cnt)) < 0) {
					/* Spurious. */
				}
				take_attached(w);
				/* A drain ended or a queue is stopping: look at all. */
				for (struct vdd_queue *q = w->queues; q; q = q->wnext) {
					atomic_store(&q->service, true);
				}
			} else {
				atomic_store(&((struct vdd_queue *)evs[i].data.ptr)->service, true);
			}
		}
		retry = atomic_exchange(&w->retry, false);
		for (struct vdd_queue *q = w->queues; q; q = q->wnext) {
			if (w->srv->opts.poll || atomic_exchange(&q->service, false) || held ||
			    retry) {
				service(q, retry);
			}
		}
		release_stopped(w);
	}
	return NULL;
}

/* ------------------------------------------------------ vhost callbacks */

static struct vdd_disk *disk_of_vid(int vid)
{
	return vid >= 0 && vid < RTE_MAX_VHOST_DEVICE ? atomic_load(&disk_by_vid[vid]) : NULL;
}

static void detach_queue(struct vdd_disk *d, struct vdd_queue *q);
static void release_device(struct vdd_disk *d);

static void fill_config(struct vdd_disk *d, struct virtio_blk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = atomic_load(&d->size_bytes) >> 9;
	cfg->size_max = VDD_SIZE_MAX;
	cfg->seg_max = VDD_SEG_MAX;
	cfg->blk_size = 512;
	cfg->num_queues = (uint16_t)d->opts.queues;
	cfg->max_discard_sectors = VDD_MAX_DISCARD_SECTORS;
	cfg->max_discard_seg = 1;
	cfg->discard_sector_alignment = 8;
	cfg->max_write_zeroes_sectors = VDD_MAX_DISCARD_SECTORS;
	cfg->max_write_zeroes_seg = 1;
	cfg->write_zeroes_may_unmap = 1;
}

/* DPDK 22.11 answers GET_CONFIG for vDPA devices only; the config space of
 * an external back end is answered here, as SPDK does. */
static enum rte_vhost_msg_result pre_msg(int vid, void *raw)
{
	struct vdd_disk *d = disk_of_vid(vid);
	struct vhu_msg *msg = raw;
	struct virtio_blk_config cfg;

	if (!d) {
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	}
	switch (msg->request) {
	case VHU_GET_CONFIG:
		if (msg->payload.cfg.size > sizeof(msg->payload.cfg.region) ||
		    msg->payload.cfg.offset > sizeof(cfg) ||
		    msg->payload.cfg.size > sizeof(cfg) - msg->payload.cfg.offset) {
			return RTE_VHOST_MSG_RESULT_ERR;
		}
		fill_config(d, &cfg);
		memcpy(msg->payload.cfg.region, (uint8_t *)&cfg + msg->payload.cfg.offset,
		       msg->payload.cfg.size);
		return RTE_VHOST_MSG_RESULT_REPLY;
	case VHU_SET_CONFIG:
		/* Nothing in our config space is writable (no CONFIG_WCE). */
		return RTE_VHOST_MSG_RESULT_OK;
	case VHU_GET_VRING_BASE:
		/* Before rte_vhost reads the index: the queue's thread lets go
		 * of it and hands its index back (rule 4).  No queue lock is
		 * held for this message, so waiting here is safe. */
		if (msg->payload.state.index < VDD_MAX_QUEUES &&
		    d->queues[msg->payload.state.index]) {
			detach_queue(d, d->queues[msg->payload.state.index]);
		}
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	case VHU_GET_QUEUE_NUM:
		/* So QEMU refuses num-queues beyond what the disk serves. */
		msg->payload.u64 = d->opts.queues;
		msg->size = sizeof(msg->payload.u64);
		return RTE_VHOST_MSG_RESULT_REPLY;
	default:
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	}
}

static const struct rte_vhost_user_extern_ops extern_ops = {.pre_msg_handle = pre_msg};

static struct vdd_disk *disk_of_path(int vid)
{
	char path[PATH_MAX];
	struct vdd_disk *d;

	if (rte_vhost_get_ifname(vid, path, sizeof(path)) != 0) {
		return NULL;
	}
	pthread_mutex_lock(&the_srv->lock);
	for (d = the_srv->disks; d; d = d->next) {
		if (strcmp(d->opts.socket, path) == 0) {
			break;
		}
	}
	pthread_mutex_unlock(&the_srv->lock);
	return d;
}

static int on_new_connection(int vid)
{
	struct vdd_disk *d = disk_of_path(vid);

	if (!d || vid >= RTE_MAX_VHOST_DEVICE) {
		return -1;
	}
	atomic_store(&disk_by_vid[vid], d);
	atomic_store(&d->connected, true);
	rte_vhost_extern_callback_register(vid, &extern_ops, NULL);
	vdd_log("disk %s: front end connected on %s", d->opts.image, d->opts.socket);
	return 0;
}

static void on_destroy_connection(int vid)
{
	struct vdd_disk *d = disk_of_vid(vid);

	if (d) {
		/* rte_vhost frees the memory after this returns. */
		release_device(d);
		atomic_store(&disk_by_vid[vid], NULL);
		atomic_store(&d->connected, false);
		vdd_log("disk %s: front end disconnected", d->opts.image);
	}
}

static void queue_free(struct vdd_queue *q)
{
	if (!q) {
		return;
	}
	if (q->bq) {
		pthread_mutex_lock(&q->disk->lock);
		q->bq->cls->queue_destroy(q->bq);
		pthread_mutex_unlock(&q->disk->lock);
	}
	free(q->reqs);
	free(q->iovs);
	vr_fini(&q->ring);
	free(q);
}

static int attach_queue(struct vdd_disk *d, int vid, uint16_t index)
{
	struct vdd *srv = d->srv;
	struct vdd_queue *q;
	struct vdd_worker *w;
	uint64_t features;
	int ret;

	if (index >= VDD_MAX_QUEUES || d->queues[index]) {
		return 0;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		return -ENOMEM;
	}
	q->disk = d;
	q->vid = vid;
	q->index = index;
	ret = rte_vhost_get_negotiated_features(vid, &features) == 0 ? 0 : -EIO;
	if (ret == 0) {
		ret = vr_init(&q->ring, vid, index, features, d->mem);
	}
	if (ret < 0) {
		vr_fini(&q->ring);
		free(q);
		/* -EAGAIN: not set up yet, vring_state_changed brings it. */
		return ret == -EAGAIN ? 0 : ret;
	}
	q->reqs = calloc(q->ring.size, sizeof(*q->reqs));
	q->iovs = calloc((size_t)q->ring.size * VDD_MAX_IOV, sizeof(*q->iovs));
	if (!q->reqs || !q->iovs) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < q->ring.size; i++) {
		q->reqs[i].q = q;
		q->reqs[i].id = (uint16_t)i;
		q->reqs[i].iov = q->iovs + (size_t)i * VDD_MAX_IOV;
	}
	ret = d->backend->cls->queue_create(d->backend, q->ring.size, &q->bq);
	if (ret < 0) {
		goto fail;
	}
	q->resubmit = true;
	d->queues[index] = q;
	w = &srv->workers[(d->first_worker + index) % srv->n_workers];
	q->worker = w;
	pthread_mutex_lock(&w->lock);
	q->wnext = w->attach;
	w->attach = q;
	pthread_mutex_unlock(&w->lock);
	wake(w);
	return 0;
fail:
	queue_free(q);
	return ret;
}

/* Rule 4: waits until the queue's thread let go of it. */
static void detach_queue(struct vdd_disk *d, struct vdd_queue *q)
{
	uint16_t avail, used;

	atomic_store(&q->stopping, true);
	wake(q->worker);
	pthread_mutex_lock(&d->lock);
	while (!atomic_load(&q->detached)) {
		pthread_cond_wait(&d->cond, &d->lock);
	}
	d->held -= q->held.n;
	pthread_mutex_unlock(&d->lock);
	/* Held and deferred requests stay marked in the inflight area; the
	 * front end gets the index as if they had not been popped (a packed
	 * ring's next start reads its index from the inflight area), and the
	 * next connection's resubmit list brings them back (rule 4). */
	vr_base(&q->ring, q->held.n + q->deferred.n, &avail, &used);
	rte_vhost_set_vring_base(q->vid, q->index, avail, used);
	d->queues[q->index] = NULL;
	queue_free(q);
}

/* The device-wide state the queues share: its memory table.  rte_vhost
 * calls new_device only once every vring the front end touched is ready,
 * and SeaBIOS sets up only the first queue of a multi-queue disk, so a
 * queue may start before new_device (from vring_state_changed). */
static int ensure_device(struct vdd_disk *d, int vid)
{
	uint64_t features;

	if (d->mem) {
		return 0;
	}
	if (rte_vhost_get_mem_table(vid, &d->mem) != 0) {
		vdd_log("disk %s: no guest memory table", d->opts.image);
		return -EIO;
	}
	if (rte_vhost_get_negotiated_features(vid, &features) == 0) {
		atomic_store(&d->features, features);
	}
	atomic_store(&d->vid, vid);
	return 0;
}

static void release_device(struct vdd_disk *d)
{
	for (unsigned i = 0; i < VDD_MAX_QUEUES; i++) {
		if (d->queues[i]) {
			detach_queue(d, d->queues[i]);
		}
	}
	atomic_store(&d->running, false);
	atomic_store(&d->features, 0);
	atomic_store(&d->vid, -1);
	free(d->mem);
	d->mem = NULL;
}

static int on_new_device(int vid)
{
	struct vdd_disk *d = disk_of_vid(vid);
	uint16_t n;

	if (!d || ensure_device(d, vid) < 0) {
		return -1;
	}
	n = rte_vhost_get_vring_num(vid);
	for (uint16_t i = 0; i < n && i < d->opts.queues; i++) {
		attach_queue(d, vid, i);
	}
	atomic_store(&d->running, true);
	vdd_log("disk %s: guest started %u queue(s)", d->opts.image, n);
	return 0;
}

static void on_destroy_device(int vid)
{
	struct vdd_disk *d = disk_of_vid(vid);

	if (d) {
		release_device(d);
	}
}

/* Runs with rte_vhost's queue locks held: hands work to the queue's
 * thread and waits for nothing longer than an eventfd write (the call
 * lock, vring.h).  A disable does not stop the queue: rte_vhost disables a
 * ring for the time of every SET_VRING_CALL, and the guest's memory stays
 * mapped until GET_VRING_BASE or the disconnect, where the queue is
 * detached (rule 4); it only takes the call eventfd away. */
static int on_vring_state_changed(int vid, uint16_t index, int enable)
{
	struct vdd_disk *d = disk_of_vid(vid);
	struct rte_vhost_vring vr;

	if (!d || index >= d->opts.queues) {
		return 0;
	}
	if (d->queues[index]) {
		/* SET_VRING_CALL closes the call eventfd between a disable and
		 * an enable: the queue's thread must not write to it then. */
		if (!enable) {
			vr_set_callfd(&d->queues[index]->ring, -1);
		} else if (rte_vhost_get_vhost_vring(vid, index, &vr) == 0) {
			vr_set_callfd(&d->queues[index]->ring, vr.callfd);
		}
	} else if (enable && ensure_device(d, vid) == 0) {
		attach_queue(d, vid, index);
	}
	return 0;
}

static const struct rte_vhost_device_ops vhost_ops = {
	.new_device = on_new_device,
	.destroy_device = on_destroy_device,
	.vring_state_changed = on_vring_state_changed,
	.new_connection = on_new_connection,
	.destroy_connection = on_destroy_connection,
};

/* ------------------------------------------------------------ the disks */

static uint64_t features_of(const struct vdd_disk *d)
{
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VHOST_USER_F_PROTOCOL_FEATURES) |
		     (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | (1ULL << VIRTIO_RING_F_EVENT_IDX) |
		     (1ULL << VIRTIO_F_RING_PACKED) | (1ULL << VIRTIO_BLK_F_SIZE_MAX) |
		     (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_MQ);

	if (d->opts.read_only) {
		f |= 1ULL << VIRTIO_BLK_F_RO;
	} else {
		f |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	}
	return f;
}

static const uint64_t protocol_features =
	(1ULL << VHOST_USER_PROTOCOL_F_MQ) | (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
	(1ULL << VHOST_USER_PROTOCOL_F_CONFIG) | (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |
	(1ULL << VHOST_USER_PROTOCOL_F_SLAVE_REQ);

static void disk_free(struct vdd_disk *d)
{
	if (!d) {
		return;
	}
	vdd_job_free(d);
	free((char *)d->opts.image);
	for (unsigned i = 0; i < d->n_old_images && i < 4; i++) {
		free(d->old_images[i]);
	}
	free((char *)d->opts.socket);
	free((char *)d->opts.format);
	free((char *)d->opts.serial);
	free((char *)d->opts.cache);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->stats_lock);
	pthread_cond_destroy(&d->cond);
	free(d);
}

static int copy_opts(struct vdd_disk *d, const struct vdd_disk_opts *o)
{
	d->opts.image = strdup(o->image);
	d->opts.socket = strdup(o->socket);
	d->opts.format = strdup(o->format ? o->format : "auto");
	d->opts.serial = o->serial ? strdup(o->serial) : NULL;
	d->opts.cache = strdup(o->cache ? o->cache : "none");
	d->opts.read_only = o->read_only;
	d->opts.volatile_map = o->volatile_map;
	d->opts.queues = o->queues ? o->queues : 1;
	if (!d->opts.image || !d->opts.socket || !d->opts.format || !d->opts.cache ||
	    (o->serial && !d->opts.serial)) {
		return -ENOMEM;
	}
	if (d->opts.serial) {
		memcpy(d->serial, d->opts.serial, strlen(d->opts.serial));
	}
	return 0;
}

static int check_opts(struct vdd *srv, const struct vdd_disk_opts *o, struct errmsg *err)
{
	if (o->queues > VDD_MAX_QUEUES) {
		errmsg_set(err, "queues must be 1-%d", VDD_MAX_QUEUES);
		return -EINVAL;
	}
	if (o->serial && strlen(o->serial) > VDD_SERIAL_BYTES) {
		errmsg_set(err, "serial '%s' longer than %d bytes", o->serial, VDD_SERIAL_BYTES);
		return -EINVAL;
	}
	if (o->cache && strcmp(o->cache, "none") != 0 && strcmp(o->cache, "writeback") != 0) {
		errmsg_set(err, "unknown cache mode '%s': use none or writeback", o->cache);
		return -EINVAL;
	}
	if (strlen(o->socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		errmsg_set(err, "socket path %s longer than %zu bytes", o->socket,
			   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	for (struct vdd_disk *d = srv->disks; d; d = d->next) {
		if (strcmp(d->opts.image, o->image) == 0) {
			errmsg_set(err, "%s is already served on %s", o->image, d->opts.socket);
			return -EEXIST;
		}
		if (strcmp(d->opts.socket, o->socket) == 0) {
			errmsg_set(err, "socket %s already serves %s", o->socket, d->opts.image);
			return -EADDRINUSE;
		}
	}
	return 0;
}

static int register_socket(struct vdd_disk *d, struct errmsg *err)
{
	const char *path = d->opts.socket;
	int ret = rpc_unix_claim(path, "vhost-user socket", err);

	if (ret < 0) {
		return ret;
	}
	if (rte_vhost_driver_register(path, 0) != 0) {
		errmsg_set(err, "cannot register vhost-user socket %s (see the log)", path);
		return -EIO;
	}
	if (rte_vhost_driver_set_features(path, features_of(d)) != 0 ||
	    rte_vhost_driver_set_protocol_features(path, protocol_features) != 0 ||
	    rte_vhost_driver_callback_register(path, &vhost_ops) != 0) {
		errmsg_set(err, "cannot set up vhost-user socket %s", path);
		rte_vhost_driver_unregister(path);
		return -EIO;
	}
	if (rte_vhost_driver_start(path) != 0) {
		errmsg_set(err, "cannot listen on vhost-user socket %s (see the log)", path);
		rte_vhost_driver_unregister(path);
		return -EIO;
	}
	rpc_unix_set_mode(path, 0660, (gid_t)-1, NULL);
	d->registered = true;
	return 0;
}

int vdd_disk_add(struct vdd *srv, const struct vdd_disk_opts *o, struct errmsg *err)
{
	struct blk_open_opts bo = {.read_only = o->read_only,
				   .buffered = o->cache && strcmp(o->cache, "writeback") == 0,
				   .volatile_map = o->volatile_map};
	struct vdd_disk *d, **pd;
	int ret;

	pthread_mutex_lock(&srv->lock);
	ret = check_opts(srv, o, err);
	pthread_mutex_unlock(&srv->lock);
	if (ret < 0) {
		return ret;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		return -ENOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->stats_lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	atomic_init(&d->vid, -1);
	d->srv = srv;
	ret = copy_opts(d, o);
	if (ret < 0) {
		goto fail;
	}
	ret = blk_backend_open(d->opts.image, d->opts.format, &bo, &d->backend, err);
	if (ret < 0) {
		goto fail;
	}
	atomic_store(&d->size_bytes, d->backend->cls->size_bytes(d->backend));
	d->first_worker = srv->next_worker++ % srv->n_workers;
	/* On the list before the socket listens: the callbacks look it up. */
	pthread_mutex_lock(&srv->lock);
	for (pd = &srv->disks; *pd; pd = &(*pd)->next) {
	}
	*pd = d;
	pthread_mutex_unlock(&srv->lock);
	ret = register_socket(d, err);
	if (ret < 0) {
		pthread_mutex_lock(&srv->lock);
		for (pd = &srv->disks; *pd != d; pd = &(*pd)->next) {
		}
		*pd = d->next;
		pthread_mutex_unlock(&srv->lock);
		d->backend->cls->close(d->backend);
		goto fail;
	}
	vdd_log("serving %s (%s, %s%s, %u queue(s)) on %s", d->opts.image,
		d->backend->cls->name, d->opts.read_only ? "read-only" : "read-write",
		bo.buffered ? ", page cache" : "", d->opts.queues, d->opts.socket);
	return 0;
fail:
	disk_free(d);
	return ret;
}

struct vdd_disk *vdd_disk_find(struct vdd *srv, const char *name)
{
	struct vdd_disk *d;

	pthread_mutex_lock(&srv->lock);
	for (d = srv->disks; d; d = d->next) {
		if (strcmp(d->opts.image, name) == 0 || strcmp(d->opts.socket, name) == 0) {
			break;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return d;
}

struct vdd_disk *vdd_disk_next(struct vdd *srv, struct vdd_disk *prev)
{
	return prev ? prev->next : srv->disks;
}

static void disk_close(struct vdd_disk *d)
{
	int ret;

	if (d->registered) {
		/* Disconnects the guest: destroy_device runs here, on this
		 * thread, and waits for the requests in flight (rule 4). */
		rte_vhost_driver_unregister(d->opts.socket);
		unlink(d->opts.socket);
		d->registered = false;
	}
	ret = d->backend->cls->close(d->backend);
	if (ret < 0) {
		vdd_log("disk %s: closing: %s", d->opts.image, strerror(-ret));
	}
}

int vdd_disk_remove(struct vdd *srv, const char *name, bool force, struct errmsg *err)
{
	struct vdd_disk *d = vdd_disk_find(srv, name), **pd;

	if (!d) {
		errmsg_set(err, "%s is not served", name);
		return -ENOENT;
	}
	if (vdd_job_running(d)) {
		errmsg_set(err, "%s: a migration is running; cancel it first", d->opts.image);
		return -EBUSY;
	}
	if (atomic_load(&d->connected) && !force) {
		errmsg_set(err, "%s: a guest is connected on %s (use force to disconnect it)",
			   d->opts.image, d->opts.socket);
		return -EBUSY;
	}
	disk_close(d);
	pthread_mutex_lock(&srv->lock);
	for (pd = &srv->disks; *pd != d; pd = &(*pd)->next) {
	}
	*pd = d->next;
	pthread_mutex_unlock(&srv->lock);
	vdd_log("no longer serving %s", d->opts.image);
	disk_free(d);
	return 0;
}

const struct vdd_disk_opts *vdd_disk_opts(struct vdd_disk *d)
{
	return &d->opts;
}

void vdd_disk_get_info(struct vdd_disk *d, struct vdd_disk_info *info)
{
	uint64_t features;

	memset(info, 0, sizeof(*info));
	info->image = d->opts.image;
	info->socket = d->opts.socket;
	info->format = d->backend->cls->name;
	info->serial = d->opts.serial;
	info->cache = d->opts.cache;
	info->read_only = d->opts.read_only;
	info->queues = d->opts.queues;
	info->connected = atomic_load(&d->connected);
	features = atomic_load(&d->features);
	if (features) {
		info->virtqueues = features & (1ULL << VIRTIO_F_RING_PACKED) ? "packed" : "split";
		info->event_idx = features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
	}
	info->size_bytes = atomic_load(&d->size_bytes);
	pthread_mutex_lock(&d->lock);
	/* The vdisk back end counts by walking the mapping with libvdisk's
	 * synchronous calls, which vdisk.h allows only with no request in
	 * flight on the image: while requests are, the last count stands. */
	if (d->inflight == 0) {
		d->allocated_bytes = d->backend->cls->allocated_bytes(d->backend);
	}
	info->allocated_bytes = d->allocated_bytes;
	info->inflight = d->inflight;
	info->held = d->held;
	info->held_errno = d->held ? d->held_errno : 0;
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < VDD_MAX_QUEUES; i++) {
		info->active_queues += d->queues[i] != NULL;
	}
	pthread_mutex_lock(&d->stats_lock);
	info->bytes_read = d->bytes_read;
	info->bytes_written = d->bytes_written;
	memcpy(info->queue_requests, d->queue_requests, sizeof(info->queue_requests));
	pthread_mutex_unlock(&d->stats_lock);
}

void vdd_disk_get_stats(struct vdd_disk *d, struct vdd_op_stats stats[VDD_N_OPS])
{
	pthread_mutex_lock(&d->stats_lock);
	memcpy(stats, d->stats, sizeof(d->stats));
	pthread_mutex_unlock(&d->stats_lock);
}

/* Rule 6: returns with the disk lock held and nothing in the back end. */
static uint64_t drain_begin(struct vdd_disk *d)
{
	uint64_t t0 = vdd_now_ns();

	pthread_mutex_lock(&d->lock);
	atomic_store(&d->draining, true);
	while (d->inflight > 0) {
		pthread_cond_wait(&d->cond, &d->lock);
	}
	return t0;
}

static void drain_end(struct vdd_disk *d, uint64_t t0, uint64_t *pause_usp)
{
	atomic_store(&d->draining, false);
	pthread_mutex_unlock(&d->lock);
	wake_all(d->srv);
	if (pause_usp) {
		*pause_usp = (vdd_now_ns() - t0) / 1000;
	}
}

int vdd_disk_resize(struct vdd_disk *d, uint64_t size_bytes, uint64_t *pause_usp,
		    struct errmsg *err)
{
	const struct blk_backend_class *c = d->backend->cls;
	uint64_t t0;
	int ret, vid;

	if (d->opts.read_only) {
		errmsg_set(err, "%s is served read-only", d->opts.image);
		return -EROFS;
	}
	if (size_bytes % 512) {
		errmsg_set(err, "size %" PRIu64 " is not a multiple of 512", size_bytes);
		return -EINVAL;
	}
	if (vdd_job_running(d)) {
		errmsg_set(err, "%s: a migration is running; resize it after", d->opts.image);
		return -EBUSY;
	}
	if (size_bytes < atomic_load(&d->size_bytes)) {
		errmsg_set(err, "%s: a served disk can only grow", d->opts.image);
		return -EINVAL;
	}
	t0 = drain_begin(d);
	ret = c->resize(d->backend, size_bytes, err);
	if (ret == 0) {
		atomic_store(&d->size_bytes, c->size_bytes(d->backend));
	}
	drain_end(d, t0, pause_usp);
	vid = atomic_load(&d->vid);
	if (ret == 0 && vid >= 0 && rte_vhost_slave_config_change(vid, false) != 0) {
		vdd_log("disk %s: the front end was not told of the new size", d->opts.image);
	}
	return ret;
}

int vdd_disk_snapshot(struct vdd_disk *d, const char *name, bool delete, uint64_t *pause_usp,
		      struct errmsg *err)
{
	const struct blk_backend_class *c = d->backend->cls;
	uint64_t t0;
	int ret;

	if (!(delete ? c->snapshot_delete : c->snapshot_create)) {
		errmsg_set(err, "%s: a %s disk has no snapshots", d->opts.image, c->name);
		return -ENOTSUP;
	}
	if (d->opts.read_only) {
		errmsg_set(err, "%s is served read-only", d->opts.image);
		return -EROFS;
	}
	if (vdd_job_running(d)) {
		errmsg_set(err, "%s: a migration is running (it copies the snapshots as they are)",
			   d->opts.image);
		return -EBUSY;
	}
	t0 = drain_begin(d);
	ret = delete ? c->snapshot_delete(d->backend, name, err)
		     : c->snapshot_create(d->backend, name, err);
	drain_end(d, t0, pause_usp);
	return ret;
}

static void flush_done(void *arg, int ret)
{
	*(int *)arg = ret;
}

int vdd_disk_flush(struct vdd_disk *d, struct errmsg *err)
{
	const struct blk_backend_class *c = d->backend->cls;
	struct blk_queue *bq;
	int ret, result = 1;
	uint64_t t0;

	if (d->opts.read_only) {
		return 0;
	}
	t0 = drain_begin(d);
	ret = c->queue_create(d->backend, 1, &bq);
	if (ret == 0) {
		ret = c->flush(bq, flush_done, &result);
		while (ret == 0 && result == 1) {
			c->queue_poll(bq);
			if (result == 1) {
				usleep(100);
			}
		}
		c->queue_destroy(bq);
		if (ret == 0) {
			ret = result;
		}
	}
	drain_end(d, t0, NULL);
	if (ret < 0) {
		errmsg_set(err, "%s: flush failed: %s", d->opts.image, strerror(-ret));
	}
	return ret;
}

int vdd_disk_describe(struct vdd_disk *d, struct json_object **objp, struct errmsg *err)
{
	const struct blk_backend_class *c = d->backend->cls;
	uint64_t t0;
	int ret;

	if (!c->describe) {
		errmsg_set(err, "%s: a %s disk has no more to describe than disk-list shows",
			   d->opts.image, c->name);
		return -ENOTSUP;
	}
	t0 = drain_begin(d);
	ret = c->describe(d->backend, d->opts.image, objp, err);
	drain_end(d, t0, NULL);
	return ret;
}

void vdd_disk_retry(struct vdd_disk *d)
{
	for (unsigned i = 0; i < d->srv->n_workers; i++) {
		atomic_store(&d->srv->workers[i].retry, true);
	}
	wake_all(d->srv);
}

/* ------------------------------------------------ for live migration */

void vdd_lock_disks(struct vdd *srv)
{
	pthread_mutex_lock(&srv->lock);
}

void vdd_unlock_disks(struct vdd *srv)
{
	pthread_mutex_unlock(&srv->lock);
}

uint64_t vdd_disk_pause(struct vdd_disk *d)
{
	return drain_begin(d);
}

void vdd_disk_resume(struct vdd_disk *d, uint64_t t0, uint64_t *pause_usp)
{
	drain_end(d, t0, pause_usp);
}

void vdd_disk_lock(struct vdd_disk *d)
{
	pthread_mutex_lock(&d->lock);
}

void vdd_disk_unlock(struct vdd_disk *d)
{
	pthread_mutex_unlock(&d->lock);
}

struct blk_backend *vdd_disk_backend(struct vdd_disk *d)
{
	return d->backend;
}

struct vdd *vdd_disk_server(struct vdd_disk *d)
{
	return d->srv;
}

struct vdd_job *vdd_disk_job(struct vdd_disk *d)
{
	return d->job;
}

void vdd_disk_set_job(struct vdd_disk *d, struct vdd_job *job)
{
	d->job = job;
}

int vdd_disk_set_image(struct vdd_disk *d, const char *path)
{
	char *copy = strdup(path);

	if (!copy || d->n_old_images == 4) {
		free(copy);
		return -ENOMEM;
	}
	/* disk-list and the threads' log lines may be reading the old one. */
	d->old_images[d->n_old_images++] = (char *)d->opts.image;
	d->opts.image = copy;
	return 0;
}

int vdd_save(struct vdd *srv)
{
	return srv->opts.save ? srv->opts.save(srv->opts.save_ctx) : 0;
}

/* ----------------------------------------------------------- the server */

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 4 ? 4 : (unsigned)n;
}

static void stop_workers(struct vdd *srv, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		atomic_store(&srv->workers[i].stop, true);
		wake(&srv->workers[i]);
		pthread_join(srv->workers[i].tid, NULL);
		close(srv->workers[i].epfd);
		close(srv->workers[i].wakefd);
		pthread_mutex_destroy(&srv->workers[i].lock);
	}
}

static int start_worker(struct vdd *srv, unsigned i)
{
	struct vdd_worker *w = &srv->workers[i];
	int ret;

	w->srv = srv;
	w->cpu = srv->opts.n_cpus ? srv->opts.cpus[i % srv->opts.n_cpus] : -1;
	pthread_mutex_init(&w->lock, NULL);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->epfd < 0 || w->wakefd < 0 || epoll_add(w, w->wakefd, w, false) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = -pthread_create(&w->tid, NULL, worker_main, w);
	if (ret == 0) {
		char name[16];

		snprintf(name, sizeof(name), "vdiskd-io%u", i % 100);
		pthread_setname_np(w->tid, name);
		return 0;
	}
fail:
	if (w->epfd >= 0) {
		close(w->epfd);
	}
	if (w->wakefd >= 0) {
		close(w->wakefd);
	}
	pthread_mutex_destroy(&w->lock);
	return ret;
}

int vdd_create(const struct vdd_opts *opts, struct vdd **srvp, struct errmsg *err)
{
	struct vdd *srv = calloc(1, sizeof(*srv));
	unsigned i;
	int ret = 0;

	if (!srv) {
		return -ENOMEM;
	}
	srv->opts = *opts;
	srv->n_workers = opts->threads ? opts->threads : default_threads();
	srv->workers = calloc(srv->n_workers, sizeof(*srv->workers));
	if (!srv->workers) {
		free(srv);
		return -ENOMEM;
	}
	pthread_mutex_init(&srv->lock, NULL);
	for (i = 0; i < srv->n_workers; i++) {
		ret = start_worker(srv, i);
		if (ret < 0) {
			errmsg_set(err, "cannot start I/O thread %u: %s", i, strerror(-ret));
			stop_workers(srv, i);
			free(srv->workers);
			free(srv);
			return ret;
		}
	}
	the_srv = srv;
	*srvp = srv;
	return 0;
}

void vdd_destroy(struct vdd *srv)
{
	struct vdd_disk *d;

	if (!srv) {
		return;
	}
	for (d = srv->disks; d; d = d->next) {
		vdd_job_stop(d);
	}
	while ((d = srv->disks)) {
		disk_close(d);
		srv->disks = d->next;
		disk_free(d);
	}
	stop_workers(srv, srv->n_workers);
	pthread_mutex_destroy(&srv->lock);
	free(srv->workers);
	free(srv);
	the_srv = NULL;
}
