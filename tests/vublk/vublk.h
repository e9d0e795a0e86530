/* SPDX-License-Identifier: MIT */
/* vublk.h: the project's own vhost-user-blk front end, the side QEMU plays,
 * for tests and benchmarks of a disk server without a guest.  It owns guest
 * RAM (a memfd passed with SCM_RIGHTS), split or packed virtqueues with kick
 * and call eventfds, and speaks the vhost-user protocol in QEMU's message order
 * (hw/virtio/vhost-user.c, hw/block/vhost-user-blk.c), including the inflight
 * area QEMU keeps across a server restart.
 *
 * Three layers, each usable alone:
 *   - requests: vublk_submit() builds a well-formed virtio-blk chain, the
 *     completion callback gets the status byte; vublk_io_sync() waits for one;
 *   - raw chains: vublk_raw_*() write any descriptor contents (addresses
 *     outside guest RAM, loops, wrong lengths, wrong directions) so tests can
 *     attack a server and read back what it wrote;
 *   - the device: connect, pause/resume (GET_VRING_BASE), drop the socket
 *     abruptly, reconnect as QEMU does with reconnect=1.
 *
 * All functions return 0 (or a count) on success and a negative errno on
 * failure; none prints.  A handle belongs to one thread.  Completion
 * callbacks run inside vublk_poll() and vublk_wait() on that thread, and
 * may submit new requests. */
#ifndef VUBLK_H
#define VUBLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

struct vublk;

/* virtio-blk request types (virtio 1.2, 5.2.6). */
#define VUBLK_T_IN 0
#define VUBLK_T_OUT 1
#define VUBLK_T_FLUSH 4
#define VUBLK_T_GET_ID 8
#define VUBLK_T_DISCARD 11
#define VUBLK_T_WRITE_ZEROES 13

/* Status bytes the device writes; VUBLK_S_UNTOUCHED is what the library
 * stores before submitting, so "never written" is visible. */
#define VUBLK_S_OK 0
#define VUBLK_S_IOERR 1
#define VUBLK_S_UNSUPP 2
#define VUBLK_S_UNTOUCHED 0xff

#define VUBLK_SECTOR_BYTES 512
#define VUBLK_ID_BYTES 20
/* struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors,
 * le32 flags. */
#define VUBLK_DWZ_BYTES 16
#define VUBLK_WZ_F_UNMAP 1u

/* Virtio feature bits (bit numbers) the front end knows. */
#define VUBLK_F_SIZE_MAX 1
#define VUBLK_F_SEG_MAX 2
#define VUBLK_F_GEOMETRY 4
#define VUBLK_F_RO 5
#define VUBLK_F_BLK_SIZE 6
#define VUBLK_F_FLUSH 9
#define VUBLK_F_TOPOLOGY 10
#define VUBLK_F_CONFIG_WCE 11
#define VUBLK_F_MQ 12
#define VUBLK_F_DISCARD 13
#define VUBLK_F_WRITE_ZEROES 14
#define VUBLK_F_INDIRECT_DESC 28
#define VUBLK_F_EVENT_IDX 29
#define VUBLK_F_PROTOCOL_FEATURES 30
#define VUBLK_F_VERSION_1 32
#define VUBLK_F_RING_PACKED 34

/* vhost-user protocol feature bits the front end can ack. */
#define VUBLK_PF_MQ 0
#define VUBLK_PF_REPLY_ACK 3
#define VUBLK_PF_CONFIG 9
#define VUBLK_PF_INFLIGHT_SHMFD 12

/* Descriptor flags, the same in both ring layouts. */
#define VUBLK_DESC_F_NEXT 1
#define VUBLK_DESC_F_WRITE 2
#define VUBLK_DESC_F_INDIRECT 4

/* Limits of this front end, not of the protocol: a chain built by
 * vublk_submit() has at most VUBLK_MAX_SEGS data descriptors, and QEMU's
 * VIRTQUEUE_MAX_SIZE bounds a queue. */
#define VUBLK_MAX_SEGS 64
#define VUBLK_MAX_QUEUE_SIZE 1024
#define VUBLK_MAX_QUEUES 64
#define VUBLK_MAX_REGIONS 8

struct vublk_opts {
	unsigned int num_queues;   /* 0: 1 */
	unsigned int queue_size;   /* descriptors, power of 2; 0: 128 (QEMU's) */
	uint64_t mem_bytes;        /* guest RAM; 0: 64 MiB; rounded up to 4 KiB */
	unsigned int mem_regions;  /* guest RAM split into this many table
				    * entries (1..8); 0: 1 */
	uint64_t region_gap_bytes; /* guest-physical hole between regions */
	uint64_t refuse_features;  /* virtio bits never acked, even if offered */
	uint64_t refuse_protocol_features;
	int timeout_ms;            /* per vhost-user reply; 0: 5000 */
	int reconnect_ms;          /* > 0: vublk_wait() reconnects for up to
				    * this long when the server goes away */
	bool kick_after_reconnect; /* kick queues with requests in flight once
				    * reconnected; QEMU does not, so off */
	bool packed;               /* packed virtqueues (VIRTIO_F_RING_PACKED,
				    * QEMU's packed=on); connecting fails if the
				    * server does not offer them */
};

/* Fills 'opts' with the defaults above. */
void vublk_opts_init(struct vublk_opts *opts);

/* The device's config space (struct virtio_blk_config), host byte order. */
struct vublk_config {
	uint64_t capacity_sectors;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
};

/* Per-queue counters, since connect (they survive reconnects). */
struct vublk_qstats {
	uint64_t submitted;  /* requests made available */
	uint64_t completed;  /* used entries matched to a request */
	uint64_t errors;     /* completions whose status was not VUBLK_S_OK */
	uint64_t kicks;      /* kick eventfd writes */
	uint64_t calls;      /* call eventfd wake-ups */
	uint64_t bad_used;   /* used entries naming no request in flight */
	uint32_t inflight;   /* available, not yet used */
};

/* Connects to the vhost-user-blk server at socket 'path', negotiates
 * features, reads the config space and starts 'opts->num_queues' queues
 * (NULL: defaults).  On success stores a new handle in '*devp'.  Fails with
 * -ENOTSUP (and a sentence in 'err') if the server lacks VERSION_1, the
 * CONFIG protocol feature or enough queues.  May block for opts->timeout_ms
 * per message. */
int vublk_connect(const char *path, const struct vublk_opts *opts, struct vublk **devp,
		  struct errmsg *err);

/* Stops the queues as QEMU does (SET_VRING_ENABLE 0, GET_VRING_BASE), closes
 * the socket and frees everything (NULL: no-op).  Callbacks of requests
 * still in flight never run.  Returns the first error of the stop messages;
 * the handle is gone either way. */
int vublk_close(struct vublk *dev);

/* Borrowed until close: the config space read at the last (re)connect. */
const struct vublk_config *vublk_config(const struct vublk *dev);
/* Asks the server again (GET_CONFIG), e.g. after a resize. */
int vublk_refresh_config(struct vublk *dev);

uint64_t vublk_offered_features(const struct vublk *dev);
uint64_t vublk_features(const struct vublk *dev); /* acked */
uint64_t vublk_offered_protocol_features(const struct vublk *dev);
uint64_t vublk_protocol_features(const struct vublk *dev); /* acked */
unsigned int vublk_max_queues(const struct vublk *dev);   /* GET_QUEUE_NUM */
unsigned int vublk_num_queues(const struct vublk *dev);
unsigned int vublk_queue_size(const struct vublk *dev);
bool vublk_connected(const struct vublk *dev);
/* The sentence of the last protocol failure ("" if none), borrowed until
 * close; for callers of vublk_wait() and vublk_poll(), which take no
 * errmsg. */
const char *vublk_last_error(const struct vublk *dev);
/* Counts successful reconnects since vublk_connect(). */
unsigned int vublk_reconnects(const struct vublk *dev);
void vublk_queue_stats(const struct vublk *dev, unsigned int q, struct vublk_qstats *st);
/* The inflight area shared with the server (NULL if INFLIGHT_SHMFD was not
 * negotiated or the server gave none), for tests that inspect it. */
const void *vublk_inflight_area(const struct vublk *dev, size_t *bytesp);

/*
 * Guest RAM.  Request buffers must lie in it; the allocator hands out
 * 4 KiB-aligned blocks that never straddle two memory-table regions.
 */

/* Returns zeroed guest memory of at least 'bytes', or NULL when full. */
void *vublk_alloc(struct vublk *dev, size_t bytes);
/* Gives back a block from vublk_alloc() (NULL: no-op). */
void vublk_free(struct vublk *dev, void *ptr);
/* Guest-physical address of 'ptr', or UINT64_MAX if it is not guest RAM. */
uint64_t vublk_gpa(const struct vublk *dev, const void *ptr);

struct vublk_region {
	uint64_t gpa;   /* guest-physical start */
	uint64_t bytes;
	void *host;     /* where this process sees it */
};
/* Copies the memory table into 'regions' (room for VUBLK_MAX_REGIONS) and
 * returns how many regions there are. */
unsigned int vublk_regions(const struct vublk *dev, struct vublk_region *regions);

/* Fills every byte of guest RAM that is not allocated, rings excluded, with
 * 'byte', and counts the bytes that no longer hold it (storing the first
 * changed guest-physical address in '*first_gpap' if any).  Tests use the
 * pair to prove a server wrote nowhere it was not given. */
void vublk_fill_free(struct vublk *dev, uint8_t byte);
uint64_t vublk_check_free(const struct vublk *dev, uint8_t byte, uint64_t *first_gpap);

/*
 * Requests.
 */

/* Runs once per request, from vublk_poll() or vublk_wait().  'status' is
 * the status byte the device wrote (VUBLK_S_UNTOUCHED if it wrote none) or,
 * for raw chains without a status pointer, -ENODATA.  'used_bytes' is the
 * length the device put in the used ring. */
typedef void vublk_done_fn(void *opaque, int status, uint32_t used_bytes);

struct vublk_io {
	uint32_t type;         /* VUBLK_T_*, or any value to test a server */
	uint32_t ioprio;
	uint64_t sector;       /* IN, OUT; DISCARD and WRITE_ZEROES: range start */
	void *buf;             /* guest RAM: IN/OUT data, GET_ID's 20 bytes; NULL:
				* no data descriptor */
	uint32_t bytes;        /* of 'buf' */
	uint32_t num_sectors;  /* DISCARD, WRITE_ZEROES */
	uint32_t dwz_flags;    /* WRITE_ZEROES: VUBLK_WZ_F_UNMAP */
	unsigned int segs;     /* split 'buf' into this many descriptors (at
				* 512-byte boundaries); 0: 1 */
	bool indirect;         /* chain in an indirect table (needs
				* VUBLK_F_INDIRECT_DESC acked) */
};

/* Builds a virtio-blk chain for 'io' on queue 'q' and makes it available;
 * the kick waits for vublk_kick(), vublk_poll() or vublk_wait().  'buf'
 * must stay valid until 'done' runs.  DISCARD and WRITE_ZEROES with a NULL
 * 'buf' get one segment made of sector, num_sectors and dwz_flags; with a
 * 'buf' it holds the caller's segments.  Other types send 'buf' as data,
 * device-writable for IN and GET_ID.  Works while disconnected too, as a
 * guest keeps queueing while QEMU has lost its server: the requests wait in
 * the ring for the reconnect.  Returns 0, -EAGAIN when the queue has too few
 * free descriptors, -EINVAL for a buffer outside guest RAM, more than
 * VUBLK_MAX_SEGS segments or indirect without VUBLK_F_INDIRECT_DESC. */
int vublk_submit(struct vublk *dev, unsigned int q, const struct vublk_io *io,
		 vublk_done_fn *done, void *opaque);

/* Notifies the device of new requests on 'q' (all queues if q < 0), unless
 * it asked not to be (VRING_USED_F_NO_NOTIFY, or EVENT_IDX's avail_event). */
void vublk_kick(struct vublk *dev, int q);

/* Kicks, then runs the callbacks of every completed request on 'q' (all if
 * q < 0) without blocking.  Returns how many completed, or -ENOTCONN if the
 * server has gone away (completions found before that still ran). */
int vublk_poll(struct vublk *dev, int q);

/* As vublk_poll(), but if nothing has completed waits up to 'timeout_ms'
 * (-1: forever) on the call eventfds and the socket.  Returns the number
 * completed (0 on timeout), or -ENOTCONN when the server went away and no
 * reconnect was configured or it failed within opts->reconnect_ms. */
int vublk_wait(struct vublk *dev, int q, int timeout_ms);

/* Submits 'io' and waits up to 'timeout_ms' for it.  Returns its status byte
 * (0..255) or a negative errno (-ETIMEDOUT: no completion; the request stays
 * in flight and its later completion is discarded). */
int vublk_io_sync(struct vublk *dev, unsigned int q, const struct vublk_io *io,
		  int timeout_ms, uint32_t *used_bytesp);

/* The call eventfd of queue 'q', for callers with their own event loop. */
int vublk_call_fd(const struct vublk *dev, unsigned int q);

/*
 * Raw chains: descriptor contents are written exactly as given.
 */

struct vublk_desc {
	uint64_t addr;  /* guest-physical */
	uint32_t len;
	uint16_t flags; /* VUBLK_DESC_F_* or anything else */
	uint16_t next;  /* a descriptor-table index, any value */
};

struct vublk_chain {
	unsigned int n;                         /* reserved descriptor slots */
	uint16_t slot[VUBLK_MAX_QUEUE_SIZE];    /* their table indices */
	uint16_t id;                      /* packed: the buffer id reserved */
	const volatile uint8_t *status;   /* read at completion; NULL: none */
};

/* Reserves 'n' free slots of queue 'q''s descriptor table (up to all of
 * them) and lists them in 'chain'.  On a packed queue the slots are the
 * next 'n' ring positions, in chain order, plus a free buffer id; 'next'
 * fields mean nothing there, and no other request may be submitted on the
 * queue before the chain is published or released.  Returns 0, -EAGAIN or
 * -EINVAL (n is 0 or larger than the queue). */
int vublk_raw_reserve(struct vublk *dev, unsigned int q, unsigned int n,
		      struct vublk_chain *chain);
/* Writes table entry 'chain->slot[i]' of queue 'q'. */
void vublk_raw_set(struct vublk *dev, unsigned int q, const struct vublk_chain *chain,
		   unsigned int i, const struct vublk_desc *desc);
/* Puts 'head' in the avail ring (any 16-bit value: a reserved slot, or a
 * bogus index at or beyond the queue size) and tracks the chain until a
 * used entry names 'head'.  Packed: 'head' is the buffer id written in the
 * chain's descriptors (chain->id, or a bogus one), and the slots become
 * available, the first one last.  One bogus head may be outstanding per queue.
 * The reserved slots return to the free list at completion. */
int vublk_raw_publish(struct vublk *dev, unsigned int q, const struct vublk_chain *chain,
		      uint16_t head, vublk_done_fn *done, void *opaque);
/* Returns unpublished reserved slots. */
void vublk_raw_release(struct vublk *dev, unsigned int q, const struct vublk_chain *chain);
/* Moves the avail index by 'delta' without writing ring entries, so the
 * device sees more (or fewer) requests than exist.  Breaks the queue; use
 * last, then reconnect or close.  No-op on a packed queue (no index). */
void vublk_raw_avail_bump(struct vublk *dev, unsigned int q, uint16_t delta);

/*
 * The device's lifecycle.
 */

/* Stops every queue as QEMU does when the guest pauses (SET_VRING_ENABLE 0
 * then GET_VRING_BASE), keeping the connection; requests in flight stay in
 * flight.  vublk_resume() starts them again from the returned bases. */
int vublk_pause(struct vublk *dev);
int vublk_resume(struct vublk *dev);

/* Closes the socket without any message, as a crashing QEMU would; guest
 * RAM, rings and requests in flight stay. */
void vublk_drop(struct vublk *dev);

/* Connects again to the same path (retrying until 'timeout_ms' runs out),
 * replays the whole start sequence with the same features, the same guest
 * RAM and the saved inflight area, and restarts each queue from its used
 * index as QEMU does after losing its server.  Returns -ENOTSUP if the new
 * server offers fewer features than were acked. */
int vublk_reconnect(struct vublk *dev, int timeout_ms, struct errmsg *err);

/*
 * The catalogue of malformed requests (vublk-bad.c): what a hostile guest
 * can put in a ring, each with what a robust server does with it.
 */

enum vublk_bad_expect {
	VUBLK_BAD_ERROR,     /* completes with IOERR or UNSUPP */
	VUBLK_BAD_UNSUPP,    /* completes with UNSUPP (the spec says so) */
	VUBLK_BAD_OK,        /* unusual but legal: completes with OK */
	VUBLK_BAD_ANY,       /* completes, any status */
	VUBLK_BAD_NO_STATUS, /* no usable status byte: completes, writes none */
	VUBLK_BAD_RING,      /* breaks the queue: only the server's survival
			      * and a new connection's service count */
};

struct vublk_bad_result {
	bool skipped;        /* needs a feature or layout this device lacks */
	bool completed;      /* a used entry came back */
	int status;          /* as for vublk_done_fn */
	uint32_t used_bytes;
	bool disconnected;   /* the server closed the connection */
	uint64_t stray_bytes; /* bytes written where no writable descriptor
			       * allowed it (free guest RAM included) */
	uint64_t stray_gpa;  /* the first of them */
	bool alive;          /* a good read on the same connection then
			      * completed with OK */
	bool pass_strict;    /* everything as 'expect' says */
	bool pass_lenient;   /* no stray write, no OK status where an error
			      * is due; disconnecting or ignoring is allowed */
};

/* Number of cases, and the name, one-line description and expectation of
 * case 'i' (NULL for an index out of range). */
unsigned int vublk_bad_count(void);
const char *vublk_bad_name(unsigned int i);
const char *vublk_bad_what(unsigned int i);
enum vublk_bad_expect vublk_bad_expect(unsigned int i);
const char *vublk_bad_expect_name(enum vublk_bad_expect expect);

/* Runs case 'i' on queue 'q' of 'dev', waiting up to 'timeout_ms' for the
 * completion, then checks guest RAM and the queue's liveness.  Leaves the
 * queue unusable for some cases: use a fresh connection per case.  Wants
 * guest RAM in two regions with a hole for the hole cases (they are
 * skipped otherwise).  Returns 0 with '*res' filled, or a negative errno if
 * the case could not be set up. */
int vublk_bad_run(struct vublk *dev, unsigned int q, unsigned int i, int timeout_ms,
		  struct vublk_bad_result *res);

/* Name of a VUBLK_T_ type ("in", "out", ...; "unknown" otherwise), of a
 * virtio feature bit and of a protocol feature bit (NULL if unnamed). */
const char *vublk_type_name(uint32_t type);
const char *vublk_feature_name(unsigned int bit);
const char *vublk_protocol_feature_name(unsigned int bit);

#endif
