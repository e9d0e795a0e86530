/* SPDX-License-Identifier: MIT */
/* vublk-int.h: what the files of the vublk front end share and nothing
 * outside them sees: the handle, the virtqueue state (split or packed), the
 * vhost-user message layouts (docs/interop/vhost-user.rst) and the internal
 * calls of vublk-msg.c (framing), vublk-mem.c (guest RAM) and vublk-vq.c
 * (rings). */
#ifndef VUBLK_INT_H
#define VUBLK_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "vublk.h"

/* Front-end requests (vhost-user.rst, "Front-end message types"). */
enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_SET_MEM_TABLE = 5,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
	VU_GET_INFLIGHT_FD = 31,
	VU_SET_INFLIGHT_FD = 32,
};

/* Header flags: version 1 in bits 0-1, bit 2 marks a reply, bit 3 asks for
 * one (REPLY_ACK). */
#define VU_VERSION 0x1u
#define VU_FLAG_REPLY (1u << 2)
#define VU_FLAG_NEED_REPLY (1u << 3)
/* A vring fd message with this bit carries no fd (polling mode). */
#define VU_VRING_NOFD (1u << 8)

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes after this header */
};
_Static_assert(sizeof(struct vu_hdr) == 12, "vhost-user header is 12 bytes");

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_uaddr; /* front-end virtual addresses, like QEMU's */
	uint64_t used_uaddr;
	uint64_t avail_uaddr;
	uint64_t log_gpa;
};
_Static_assert(sizeof(struct vu_vring_addr) == 40, "vring address payload");

struct vu_mem_region {
	uint64_t gpa;
	uint64_t bytes;
	uint64_t uaddr;
	uint64_t mmap_offset;
};

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region regions[VUBLK_MAX_REGIONS];
};
_Static_assert(sizeof(struct vu_mem_table) == 8 + 8 * 32, "memory table payload");

/* QEMU sends header + sizeof(struct virtio_blk_config) = 12 + 60 bytes;
 * libvhost-user refuses a larger config than it knows. */
#define VU_CONFIG_HDR_BYTES 12
#define VU_BLK_CONFIG_BYTES 60
#define VU_CONFIG_MAX_BYTES 256
struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VU_CONFIG_MAX_BYTES];
};

struct vu_inflight {
	uint64_t mmap_bytes;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint8_t padding[4];
};
_Static_assert(sizeof(struct vu_inflight) == 24, "inflight payload");

/* Split-ring layout (virtio 1.2, 2.7), little-endian in guest RAM. */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct vring_desc) == 16, "split descriptor");

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* num entries, then used_event */
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[]; /* num entries, then avail_event */
};

#define VRING_USED_F_NO_NOTIFY 1

/* Packed-ring layout (virtio 1.2, 2.8): one descriptor ring, the driver's
 * and the device's event suppression structures. */
struct vring_packed_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};
_Static_assert(sizeof(struct vring_packed_desc) == 16, "packed descriptor");

struct vring_packed_event {
	uint16_t off_wrap; /* descriptor position, wrap counter in bit 15 */
	uint16_t flags;    /* VRING_EVENT_F_* */
};

#define VRING_PACKED_F_AVAIL (1u << 7)
#define VRING_PACKED_F_USED (1u << 15)
#define VRING_EVENT_F_ENABLE 0
#define VRING_EVENT_F_DISABLE 1
#define VRING_EVENT_F_DESC 2
#define VRING_WRAP_BIT 15

/* Per head slot: outhdr (16 bytes), one discard/write-zeroes segment (16)
 * and the status byte, 64 bytes apart so a server overrunning one cannot
 * hide in the next slot's header. */
#define VQ_SLOT_BYTES 64
#define VQ_SLOT_DWZ 16
#define VQ_SLOT_STATUS 32
/* Header, VUBLK_MAX_SEGS data descriptors, status: the longest chain. */
#define VQ_CHAIN_MAX (VUBLK_MAX_SEGS + 2)

struct vq_req {
	vublk_done_fn *done; /* NULL: completion discarded */
	void *opaque;
	const volatile uint8_t *status;
	uint16_t nslots;
	uint16_t slots[VQ_CHAIN_MAX];
	uint16_t *long_slots; /* a raw chain longer than 'slots' (malloc) */
	uint16_t ndesc;       /* packed: ring descriptors the chain took */
	bool active;
};

/* A split queue uses desc, avail and used; a packed one the same memory
 * as pdesc, driver_event and device_event. */
struct vublk_vq {
	unsigned int index;
	uint16_t num;
	bool packed;
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	volatile struct vring_packed_desc *pdesc;
	volatile struct vring_packed_event *driver_event;
	volatile struct vring_packed_event *device_event;
	uint8_t *slot_area;              /* num * VQ_SLOT_BYTES */
	volatile struct vring_desc *indirect; /* num * VQ_CHAIN_MAX, or NULL */
	int kick_fd;
	int call_fd;
	uint16_t avail_idx;   /* ours; mirrors avail->idx */
	uint16_t kicked_idx;  /* avail_idx when we last decided on a kick */
	uint16_t last_used;   /* next used entry to read */
	uint16_t base;        /* next SET_VRING_BASE */
	uint16_t *free_slots; /* stack of free descriptor indices (packed:
			       * of free buffer ids) */
	uint16_t nfree;
	/* Packed: ring positions and wrap counters (2.8.1), free slots. */
	uint16_t next_avail;
	uint16_t next_used;
	bool avail_wrap, used_wrap;
	uint16_t pfree;       /* ring descriptors not in flight */
	uint16_t added;       /* descriptors made available since the last kick */
	struct vq_req *req;   /* by head slot */
	struct vq_req bogus;  /* a raw chain published under a bogus head */
	uint16_t bogus_head;
	struct vublk_qstats st;
};

struct vublk_mem {
	int fd;               /* the memfd: all regions are slices of it */
	uint8_t *base;        /* one MAP_SHARED mapping of the whole memfd */
	uint64_t bytes;
	unsigned int nregions;
	uint64_t region_bytes;
	uint64_t region_gap_bytes;
	uint32_t npages;
	uint32_t *alloc_pages; /* at a block's first page: its page count */
	uint8_t *page_used;
};

struct vublk {
	char *path;
	struct vublk_opts opts;
	int sock;             /* -1 while disconnected */
	struct vublk_mem mem;
	struct vublk_vq *vqs;
	unsigned int nvqs;
	uint64_t offered_features;
	uint64_t features;
	uint64_t offered_pfeatures;
	uint64_t pfeatures;
	unsigned int max_queues;
	struct vublk_config cfg;
	int inflight_fd;      /* -1: none */
	void *inflight_addr;
	uint64_t inflight_bytes;
	uint64_t inflight_offset;
	bool started;         /* rings given to the server */
	bool paused;          /* bases came from GET_VRING_BASE */
	bool lost;            /* socket died while started: restore from used */
	unsigned int reconnects;
	unsigned int idle_polls; /* empty polls since the last socket check */
	struct errmsg err;    /* the sentence of the last failure */
};

/* vublk-msg.c */
int vu_send(struct vublk *dev, uint32_t request, uint32_t flags, const void *payload,
	    uint32_t bytes, const int *fds, unsigned int nfds);
int vu_recv(struct vublk *dev, uint32_t request, void *payload, uint32_t bytes, int *fdp);
int vu_get_u64(struct vublk *dev, uint32_t request, uint64_t *valp);
int vu_set_u64(struct vublk *dev, uint32_t request, uint64_t val);
int vu_set_state(struct vublk *dev, uint32_t request, uint32_t index, uint32_t num);
int vu_get_state(struct vublk *dev, uint32_t request, uint32_t index, uint32_t *nump);
int vu_set_vring_fd(struct vublk *dev, uint32_t request, uint32_t index, int fd);
int vu_send_ack(struct vublk *dev, uint32_t request, const void *payload, uint32_t bytes,
		const int *fds, unsigned int nfds);
const char *vu_request_name(uint32_t request);
bool vu_socket_alive(struct vublk *dev);

/* vublk-mem.c */
int mem_init(struct vublk_mem *mem, const struct vublk_opts *opts, struct errmsg *err);
void mem_fini(struct vublk_mem *mem);
void *mem_alloc(struct vublk_mem *mem, uint64_t bytes);
void mem_free(struct vublk_mem *mem, void *ptr);
uint64_t mem_gpa(const struct vublk_mem *mem, const void *ptr);
void mem_table(const struct vublk_mem *mem, struct vu_mem_table *table);

/* vublk-vq.c */
int vq_init(struct vublk *dev, struct vublk_vq *vq, unsigned int index);
void vq_fini(struct vublk *dev, struct vublk_vq *vq);
int vq_poll(struct vublk *dev, struct vublk_vq *vq);
void vq_kick(struct vublk *dev, struct vublk_vq *vq);
uint16_t vq_used_idx(const struct vublk_vq *vq);
uint16_t vq_initial_base(const struct vublk_vq *vq);
int vq_submit(struct vublk *dev, struct vublk_vq *vq, const struct vublk_io *io,
	      vublk_done_fn *done, void *opaque, uint16_t *headp);

static inline bool vu_has_feature(uint64_t features, unsigned int bit)
{
	return (features >> bit) & 1;
}

#endif
