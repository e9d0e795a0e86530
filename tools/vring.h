/* SPDX-License-Identifier: MIT */
/* vring.h: the device side of one virtqueue for vdiskd-blk.c, split (virtio
 * 1.2, 2.7) or packed (2.8) behind one interface: take a chain, walk its
 * descriptors (indirect tables included), complete it with a used entry,
 * decide whether the guest wants an interrupt or a kick (flags, EVENT_IDX,
 * the packed event structures), and keep rte_vhost's inflight area right so
 * a restarted server resubmits what a dead one left.  The request layer
 * (what a chain means to a disk) stays in vdiskd-blk.c.
 *
 * A queue belongs to one thread; only vr_set_callfd() may be called from
 * another (rte_vhost's, when the front end replaces the call eventfd).
 * Everything read from guest memory is read once into local variables, and
 * every index the guest gives is range-checked before use. */
#ifndef VRING_H
#define VRING_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_vhost.h>

/* Descriptor flags the walk returns, the same bits in both layouts. */
#define VR_F_NEXT 1u
#define VR_F_WRITE 2u
#define VR_F_INDIRECT 4u

struct vr_queue {
	int vid;
	uint16_t index;
	uint16_t size;            /* descriptors */
	bool packed;
	bool event_idx;           /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool inflight;            /* rte_vhost keeps an inflight area for it */
	bool kicks_on;            /* event mode: the guest is to kick us */
	struct rte_vhost_inflight_info_packed *inflight_packed;
	struct rte_vhost_vring vr;
	struct rte_vhost_memory *mem;
	/* Split: free-running indices.  Packed: ring positions below 'size'
	 * and the wrap counters (virtio 1.2, 2.8.1). */
	uint16_t avail;           /* next chain to take */
	uint16_t used;            /* next used entry to write */
	bool avail_wrap, used_wrap;
	/* Interrupts: where 'used' stood at the last one (EVENT_IDX). */
	uint16_t signalled;
	bool signalled_wrap;
	bool signalled_valid;
	bool need_call;           /* entries pushed since the last vr_notify() */
	uint32_t pushed;          /* entries pushed since the last decision */
	uint64_t calls;           /* interrupts sent */
	pthread_mutex_t call_lock; /* 'callfd' against SET_VRING_CALL */
	int callfd;               /* -1 while the front end replaces it */
};

/* A taken chain: what its walk and its completion need. */
struct vr_elem {
	uint16_t id;              /* split: the head; packed: the buffer id */
	uint16_t pos;             /* split: the head; packed: the ring position
				   * of the first descriptor, or the inflight
				   * entry when resubmitted */
	uint16_t ndesc;           /* packed: ring descriptors it takes */
	uint16_t inflight;        /* packed: its rte_vhost inflight entry */
	bool resubmitted;         /* packed: walk the inflight area's copies */
};

/* One descriptor, read once from guest memory. */
struct vr_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;           /* VR_F_WRITE; never NEXT or INDIRECT */
	bool last;                /* the chain's last descriptor */
};

/* A walk over one chain, following 'next' (split), positions (packed),
 * an indirect table or the inflight area's copies. */
struct vr_walk {
	const struct vr_queue *q;
	const struct vr_elem *e;
	int kind;
	const void *table;        /* an indirect table, mapped */
	uint32_t n;               /* entries of the table or chain */
	uint32_t i;               /* next entry to read */
	uint32_t k;               /* entries read so far (packed ring) */
	unsigned count, max;
	bool done;
	bool broken_link;         /* the last descriptor's link leaves the table */
};

/* Sets 'q' up for queue 'index' of device 'vid', whose features are
 * 'features', restoring the indices rte_vhost holds (for a packed ring
 * with an inflight area, those of the inflight area: QEMU keeps no index of
 * its own for it).  'mem' is borrowed.  Returns 0, or -EAGAIN when the ring
 * is not set up yet. */
int vr_init(struct vr_queue *q, int vid, uint16_t index, uint64_t features,
	    struct rte_vhost_memory *mem);
void vr_fini(struct vr_queue *q);

/* Kicks from the guest on (event mode) or off (poll mode). */
void vr_kicks(struct vr_queue *q, bool on);

/* Looks at the next available chain without taking it: 1 and '*e' filled,
 * 0 if there is none, or -EPROTO when the guest broke the ring ('*why'
 * says how; stop taking from it). */
int vr_peek(struct vr_queue *q, struct vr_elem *e, const char **why);
/* Takes the chain vr_peek() found: marks it in the inflight area, then
 * moves past it (vdiskd-blk.c's rule 1). */
void vr_take(struct vr_queue *q, struct vr_elem *e);
/* Moves past a chain naming an id that cannot be served (out of range, in
 * flight already): a split head is skipped, a packed chain is taken and
 * completed at once with nothing written, so its ring slots come back. */
void vr_drop(struct vr_queue *q, struct vr_elem *e);

/* Gives the next chain a dead server left in flight (1), or 0 when none is
 * left.  The chain is taken already. */
int vr_resubmitted(struct vr_queue *q, struct vr_elem *e);

/* Starts a walk over 'e''s descriptors, at most 'max' of them. */
void vr_walk_init(struct vr_walk *w, const struct vr_queue *q, const struct vr_elem *e,
		  unsigned max);
/* The next descriptor of the walk (1), 0 after the last one, or a negative
 * errno with '*why' for a chain the guest got wrong: -EINVAL (misplaced or
 * malformed indirect descriptor, next out of the table), -EFAULT (table
 * outside guest memory), -E2BIG (too long or looping). */
int vr_walk_next(struct vr_walk *w, struct vr_desc *d, const char **why);

/* Completes 'e' with 'len' bytes written into its buffers (rule 2 of
 * vdiskd-blk.c: the used entry, then the inflight mark cleared). */
void vr_push(struct vr_queue *q, const struct vr_elem *e, uint32_t len);
/* Interrupts the guest if entries were pushed and it wants to hear of
 * them. */
void vr_notify(struct vr_queue *q);
/* After a round of taking: asks the guest to kick for the next chain and
 * returns true if one is already there (no kick will come for it). */
bool vr_rearm(struct vr_queue *q);

/* The indices to hand back at GET_VRING_BASE, 'unsent' taken chains
 * treated as not taken (split; a packed ring's come back from the inflight
 * area). */
void vr_base(const struct vr_queue *q, unsigned unsent, uint16_t *availp, uint16_t *usedp);

/* The front end replaced the call eventfd: 'fd' (-1 while it does). */
void vr_set_callfd(struct vr_queue *q, int fd);

#endif
