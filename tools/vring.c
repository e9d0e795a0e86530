/* SPDX-License-Identifier: MIT */
/* vring.c: split and packed virtqueues, device side (vring.h).  The rules
 * of vdiskd-blk.c's header hold here: (1) a chain is marked in the inflight
 * area before the queue moves past it, (2) its used entry is written before
 * the mark is cleared, (5) guest data is read once and checked before use.
 *
 * Packed rings (virtio 1.2, 2.8).  A chain takes consecutive ring slots;
 * its buffer id sits in its last descriptor; a used entry goes at the next
 * used slot whatever order buffers complete in, and the used position moves
 * by the number of slots the buffer took.  rte_vhost's packed inflight area
 * copies a taken chain's descriptors into a free list of its own (they are
 * overwritten by used entries while still in flight), so a resubmitted
 * chain is walked from those copies, and after a restart the queue starts
 * at the used position the area committed, moved on by every resubmitted
 * chain: what lies between belongs to chains in flight or to chains
 * completed out of order, and is not to be taken again.
 *
 * Interrupts are decided here and written to the call eventfd directly:
 * rte_vhost_vring_call() judges EVENT_IDX from rte_vhost's own used index,
 * which an external back end never moves, so it would skip interrupts the
 * guest asked for. */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <string.h>
#include <sys/eventfd.h>

#include "vring.h"

#define AVAIL_F (1u << VRING_PACKED_DESC_F_AVAIL)
#define USED_F (1u << VRING_PACKED_DESC_F_USED)
#define WRAP_BIT 15

enum walk_kind { W_SPLIT, W_SPLIT_TABLE, W_PACKED, W_PACKED_TABLE, W_INFLIGHT };

/* virtio 1.2, 2.7.10: an event at 'event' lies in (old, new]. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

static volatile uint16_t *split_used_event(const struct vr_queue *q)
{
	return (volatile uint16_t *)&q->vr.avail->ring[q->size];
}

static volatile uint16_t *split_avail_event(const struct vr_queue *q)
{
	return (volatile uint16_t *)&q->vr.used->ring[q->size];
}

static void advance(const struct vr_queue *q, uint16_t *pos, bool *wrap, uint16_t n)
{
	*pos = (uint16_t)(*pos + n);
	if (*pos >= q->size) {
		*pos = (uint16_t)(*pos - q->size);
		*wrap = !*wrap;
	}
}

/* 2.8.1: the driver sets AVAIL to its wrap counter and USED to the inverse. */
static bool packed_avail(uint16_t flags, bool wrap)
{
	return !!(flags & AVAIL_F) == wrap && !!(flags & USED_F) != wrap;
}

static uint16_t packed_flags(const struct vr_queue *q, uint16_t pos)
{
	return __atomic_load_n(&q->vr.desc_packed[pos].flags, __ATOMIC_ACQUIRE);
}

int vr_init(struct vr_queue *q, int vid, uint16_t index, uint64_t features,
	    struct rte_vhost_memory *mem)
{
	struct rte_vhost_ring_inflight inf;
	uint16_t avail, used;

	memset(q, 0, sizeof(*q));
	q->vid = vid;
	q->index = index;
	q->mem = mem;
	q->callfd = -1;
	pthread_mutex_init(&q->call_lock, NULL);
	if (rte_vhost_get_vhost_vring(vid, index, &q->vr) != 0 || !q->vr.desc || !q->vr.avail ||
	    !q->vr.used || q->vr.size == 0) {
		return -EAGAIN;
	}
	q->size = q->vr.size;
	q->packed = features & (1ULL << VIRTIO_F_RING_PACKED);
	q->event_idx = features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
	q->callfd = q->vr.callfd;
	if (rte_vhost_get_vhost_ring_inflight(vid, index, &inf) == 0) {
		q->inflight = q->packed ? inf.inflight_packed != NULL : inf.inflight_split != NULL;
		q->inflight_packed = q->packed ? inf.inflight_packed : NULL;
	}
	if (!q->packed) {
		if (rte_vhost_get_vring_base(vid, index, &avail, &used) != 0) {
			return -EIO;
		}
		q->avail = avail;
		q->used = __atomic_load_n(&q->vr.used->idx, __ATOMIC_ACQUIRE);
		return 0;
	}
	/* QEMU keeps no packed index across a lost server and sends a stale
	 * base; the inflight area holds the true one. */
	if ((!q->inflight ||
	     rte_vhost_get_vring_base_from_inflight(vid, index, &avail, &used) != 0) &&
	    rte_vhost_get_vring_base(vid, index, &avail, &used) != 0) {
		return -EIO;
	}
	q->avail = avail & 0x7fff;
	q->avail_wrap = avail >> WRAP_BIT;
	q->used = used & 0x7fff;
	q->used_wrap = used >> WRAP_BIT;
	if (q->avail >= q->size || q->used >= q->size) {
		return -EIO;
	}
	return 0;
}

void vr_fini(struct vr_queue *q) { pthread_mutex_destroy(&q->call_lock); }

void vr_kicks(struct vr_queue *q, bool on)
{
	if (!q->packed) {
		/* NO_NOTIFY for a driver without EVENT_IDX; with it, avail_event
		 * (an index the driver reaches once per 2^16 requests when
		 * polling leaves it alone). */
		if (on) {
			__atomic_and_fetch(&q->vr.used->flags, (uint16_t)~VRING_USED_F_NO_NOTIFY,
					   __ATOMIC_RELEASE);
			__atomic_store_n(split_avail_event(q), q->avail, __ATOMIC_RELEASE);
		} else {
			__atomic_or_fetch(&q->vr.used->flags, VRING_USED_F_NO_NOTIFY,
					  __ATOMIC_RELEASE);
		}
	} else if (!on) {
		__atomic_store_n(&q->vr.device_event->flags, VRING_PACKED_EVENT_FLAG_DISABLE,
				 __ATOMIC_RELEASE);
	} else if (q->event_idx) {
		__atomic_store_n(&q->vr.device_event->off_wrap,
				 (uint16_t)(q->avail | q->avail_wrap << WRAP_BIT),
				 __ATOMIC_RELEASE);
		__atomic_store_n(&q->vr.device_event->flags, VRING_PACKED_EVENT_FLAG_DESC,
				 __ATOMIC_RELEASE);
	} else {
		__atomic_store_n(&q->vr.device_event->flags, VRING_PACKED_EVENT_FLAG_ENABLE,
				 __ATOMIC_RELEASE);
	}
	q->kicks_on = on;
}

/* -------------------------------------------------------------- taking */

static int peek_split(struct vr_queue *q, struct vr_elem *e, const char **why)
{
	uint16_t idx = __atomic_load_n(&q->vr.avail->idx, __ATOMIC_ACQUIRE);

	if ((uint16_t)(idx - q->avail) > q->size) {
		*why = "avail index more than a ring ahead";
		return -EPROTO;
	}
	if (idx == q->avail) {
		return 0;
	}
	e->id = q->vr.avail->ring[q->avail % q->size];
	e->pos = e->id;
	e->ndesc = 1;
	e->inflight = UINT16_MAX;
	e->resubmitted = false;
	return 1;
}

/* The chain's extent: consecutive available slots while NEXT is set. */
static int peek_packed(struct vr_queue *q, struct vr_elem *e, const char **why)
{
	uint16_t pos = q->avail, flags = packed_flags(q, pos);
	bool wrap = q->avail_wrap;
	uint16_t n = 1;

	if (!packed_avail(flags, wrap)) {
		return 0;
	}
	while (flags & VR_F_NEXT) {
		if (n == q->size) {
			*why = "descriptor chain longer than the ring";
			return -EPROTO;
		}
		advance(q, &pos, &wrap, 1);
		flags = packed_flags(q, pos);
		if (!packed_avail(flags, wrap)) {
			*why = "chain runs into a descriptor not made available";
			return -EPROTO;
		}
		n++;
	}
	e->id = q->vr.desc_packed[pos].id;
	e->pos = q->avail;
	e->ndesc = n;
	e->inflight = UINT16_MAX;
	e->resubmitted = false;
	return 1;
}

int vr_peek(struct vr_queue *q, struct vr_elem *e, const char **why)
{
	return q->packed ? peek_packed(q, e, why) : peek_split(q, e, why);
}

void vr_take(struct vr_queue *q, struct vr_elem *e)
{
	if (!q->packed) {
		rte_vhost_set_inflight_desc_split(q->vid, q->index, e->id);
		q->avail++;
		return;
	}
	/* rte_vhost cannot record a chain of the whole ring (its loop ends
	 * where it starts): such a chain is served but not tracked. */
	if (q->inflight && e->ndesc < q->size &&
	    rte_vhost_set_inflight_desc_packed(q->vid, q->index, e->pos,
					       (uint16_t)((e->pos + e->ndesc - 1) % q->size),
					       &e->inflight) != 0) {
		e->inflight = UINT16_MAX;
	}
	advance(q, &q->avail, &q->avail_wrap, e->ndesc);
}

void vr_drop(struct vr_queue *q, struct vr_elem *e)
{
	if (!q->packed) {
		q->avail++;
		return;
	}
	vr_take(q, e);
	vr_push(q, e, 0);
}

int vr_resubmitted(struct vr_queue *q, struct vr_elem *e)
{
	struct rte_vhost_ring_inflight inf;
	struct rte_vhost_resubmit_info *ri;

	if (rte_vhost_get_vhost_ring_inflight(q->vid, q->index, &inf) != 0 ||
	    !inf.resubmit_inflight) {
		return 0;
	}
	ri = inf.resubmit_inflight;
	/* The list is sorted newest first: take it from the end. */
	while (ri->resubmit_num > 0) {
		uint16_t idx = ri->resubmit_list[--ri->resubmit_num].index;
		const struct rte_vhost_inflight_desc_packed *d;

		if (idx >= q->size) {
			continue;
		}
		memset(e, 0, sizeof(*e));
		e->inflight = UINT16_MAX;
		if (!q->packed) {
			e->id = e->pos = idx;
			e->ndesc = 1;
			return 1;
		}
		d = &inf.inflight_packed->desc[idx];
		if (d->num == 0 || d->num >= q->size || d->last >= q->size) {
			continue;
		}
		e->id = inf.inflight_packed->desc[d->last].id;
		e->pos = idx;
		e->ndesc = d->num;
		e->inflight = idx;
		e->resubmitted = true;
		advance(q, &q->avail, &q->avail_wrap, e->ndesc);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------- walking */

void vr_walk_init(struct vr_walk *w, const struct vr_queue *q, const struct vr_elem *e,
		  unsigned max)
{
	memset(w, 0, sizeof(*w));
	w->q = q;
	w->e = e;
	w->max = max;
	w->i = e->pos;
	w->n = q->size;
	w->kind = !q->packed ? W_SPLIT : e->resubmitted ? W_INFLIGHT : W_PACKED;
}

static const void *map_table(const struct vr_queue *q, uint64_t gpa, uint32_t len)
{
	uint64_t mapped = len;
	uint64_t va = rte_vhost_va_from_guest_pa(q->mem, gpa, &mapped);

	return va && mapped == len ? (const void *)(uintptr_t)va : NULL;
}

/* Reads entry w->i (or the packed slot after the last) into 'd' with the
 * raw flags, and moves on.  Returns -EINVAL when the chain's link leaves
 * the table: known only after this descriptor, so reported by the next
 * call, as a walk that reached the descriptor and then broke. */
static int read_desc(struct vr_walk *w, struct vr_desc *d, uint16_t *flags)
{
	const struct vr_queue *q = w->q;
	struct rte_vhost_inflight_info_packed *inf = q->inflight_packed;
	struct vring_packed_desc p;
	struct vring_desc s;

	switch (w->kind) {
	case W_SPLIT:
	case W_SPLIT_TABLE:
		/* Read once: the guest may change it under us. */
		memcpy(&s,
		       w->kind == W_SPLIT ? (const void *)&q->vr.desc[w->i]
					  : (const struct vring_desc *)w->table + w->i,
		       sizeof(s));
		d->addr = s.addr;
		d->len = s.len;
		*flags = s.flags;
		d->last = !(s.flags & VR_F_NEXT);
		w->i = s.next;
		return !d->last && s.next >= w->n ? -EINVAL : 0;
	case W_PACKED:
		memcpy(&p, (const void *)&q->vr.desc_packed[(w->e->pos + w->k) % q->size],
		       sizeof(p));
		w->k++;
		d->last = w->k == w->e->ndesc; /* the extent vr_peek() found */
		break;
	case W_PACKED_TABLE:
		/* 2.8.19: entries follow each other; NEXT means nothing. */
		memcpy(&p, (const struct vring_packed_desc *)w->table + w->i, sizeof(p));
		w->i++;
		d->last = w->i == w->n;
		p.flags &= (uint16_t)~VR_F_NEXT;
		break;
	default: /* W_INFLIGHT: rte_vhost's copies, linked by 'next' */
		p.addr = inf->desc[w->i].addr;
		p.len = inf->desc[w->i].len;
		p.flags = inf->desc[w->i].flags;
		w->k++;
		d->last = w->k == w->e->ndesc;
		w->i = inf->desc[w->i].next;
		if (!d->last && w->i >= q->size) {
			return -EINVAL;
		}
		break;
	}
	d->addr = p.addr;
	d->len = p.len;
	*flags = p.flags & (uint16_t) ~(AVAIL_F | USED_F);
	if (w->kind == W_PACKED && !d->last) {
		*flags |= VR_F_NEXT; /* as a split chain link */
	}
	return 0;
}

int vr_walk_next(struct vr_walk *w, struct vr_desc *d, const char **why)
{
	for (;;) {
		bool in_table = w->kind == W_SPLIT_TABLE || w->kind == W_PACKED_TABLE;
		uint16_t flags;
		int link;

		if (w->done) {
			return 0;
		}
		if (w->broken_link) {
			*why = "next descriptor out of the table";
			return -EINVAL;
		}
		link = read_desc(w, d, &flags);
		if (flags & VR_F_INDIRECT) {
			uint32_t n = d->len / sizeof(struct vring_desc);

			if (in_table || w->count > 0 || !d->last) {
				*why = "misplaced indirect descriptor";
				return -EINVAL;
			}
			if (d->len == 0 || d->len % sizeof(struct vring_desc) || n > w->max) {
				*why = "bad indirect table length";
				return -EINVAL;
			}
			w->table = map_table(w->q, d->addr, d->len);
			if (!w->table) {
				*why = "indirect table outside guest memory";
				return -EFAULT;
			}
			w->kind = w->q->packed ? W_PACKED_TABLE : W_SPLIT_TABLE;
			w->n = n;
			w->i = 0;
			continue;
		}
		if (++w->count > w->max) {
			*why = "descriptor chain too long or looping";
			return -E2BIG;
		}
		d->flags = flags & VR_F_WRITE;
		w->done = d->last;
		w->broken_link = link < 0;
		return 1;
	}
}

/* ---------------------------------------------------------- completing */

void vr_push(struct vr_queue *q, const struct vr_elem *e, uint32_t len)
{
	struct vring_packed_desc *d;
	uint16_t flags;

	q->need_call = true;
	q->pushed++;
	if (!q->packed) {
		struct vring_used_elem *u = &q->vr.used->ring[q->used % q->size];

		rte_vhost_set_last_inflight_io_split(q->vid, q->index, e->id);
		u->id = e->id;
		u->len = len;
		q->used++;
		__atomic_store_n(&q->vr.used->idx, q->used, __ATOMIC_RELEASE);
		rte_vhost_clr_inflight_desc_split(q->vid, q->index, q->used, e->id);
		return;
	}
	d = &q->vr.desc_packed[q->used];
	flags = q->used_wrap ? (uint16_t)(AVAIL_F | USED_F) : 0;
	if (len) {
		flags |= VR_F_WRITE;
	}
	d->id = e->id;
	d->len = len;
	if (e->inflight < q->size) {
		rte_vhost_set_last_inflight_io_packed(q->vid, q->index, e->inflight);
	}
	/* 2.8.9: the flags last, so the driver sees id and len first. */
	__atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
	if (e->inflight < q->size) {
		rte_vhost_clr_inflight_desc_packed(q->vid, q->index, e->inflight);
	}
	advance(q, &q->used, &q->used_wrap, e->ndesc);
}

static bool want_call_split(struct vr_queue *q)
{
	uint16_t event, old = q->signalled;
	bool valid = q->signalled_valid;

	if (!q->event_idx) {
		return !(__atomic_load_n(&q->vr.avail->flags, __ATOMIC_RELAXED) &
			 VRING_AVAIL_F_NO_INTERRUPT);
	}
	event = __atomic_load_n(split_used_event(q), __ATOMIC_RELAXED);
	return !valid || need_event(event, q->used, old);
}

/* 2.8.10: DESC asks for an interrupt once the used entry at off_wrap is
 * written; positions of the previous lap count as negative. */
static bool want_call_packed(struct vr_queue *q)
{
	uint16_t flags = __atomic_load_n(&q->vr.driver_event->flags, __ATOMIC_RELAXED);
	uint16_t off_wrap, off, old = q->signalled;

	if (!q->event_idx || flags != VRING_PACKED_EVENT_FLAG_DESC) {
		return flags != VRING_PACKED_EVENT_FLAG_DISABLE;
	}
	if (!q->signalled_valid) {
		return true;
	}
	off_wrap = __atomic_load_n(&q->vr.driver_event->off_wrap, __ATOMIC_ACQUIRE);
	off = off_wrap & 0x7fff;
	if (q->signalled_wrap != q->used_wrap) {
		old = (uint16_t)(old - q->size);
	}
	if ((bool)(off_wrap >> WRAP_BIT) != q->used_wrap) {
		off = (uint16_t)(off - q->size);
	}
	return need_event(off, q->used, old);
}

static void call(struct vr_queue *q)
{
	pthread_mutex_lock(&q->call_lock);
	if (q->callfd >= 0 && eventfd_write(q->callfd, 1) == 0) {
		q->calls++;
	}
	pthread_mutex_unlock(&q->call_lock);
}

void vr_notify(struct vr_queue *q)
{
	bool want;

	if (!q->need_call) {
		return;
	}
	q->need_call = false;
	/* The used entries must be visible before we read the driver's
	 * suppression state, or both sides may decide to sleep. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	want = q->packed ? want_call_packed(q) : want_call_split(q);
	/* More pushed than a ring holds since the last interrupt: the
	 * indices may have lapped the driver's event, so call anyway. */
	if (q->event_idx && q->pushed >= q->size) {
		want = true;
	}
	q->signalled = q->used;
	q->signalled_wrap = q->used_wrap;
	q->signalled_valid = true;
	q->pushed = 0;
	if (want) {
		call(q);
	}
}

bool vr_rearm(struct vr_queue *q)
{
	if (!q->packed) {
		if (q->event_idx && q->kicks_on) {
			__atomic_store_n(split_avail_event(q), q->avail, __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
		}
		return __atomic_load_n(&q->vr.avail->idx, __ATOMIC_ACQUIRE) != q->avail;
	}
	if (q->event_idx && q->kicks_on) {
		__atomic_store_n(&q->vr.device_event->off_wrap,
				 (uint16_t)(q->avail | q->avail_wrap << WRAP_BIT),
				 __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	return packed_avail(packed_flags(q, q->avail), q->avail_wrap);
}

void vr_base(const struct vr_queue *q, unsigned unsent, uint16_t *availp, uint16_t *usedp)
{
	if (!q->packed) {
		*availp = (uint16_t)(q->avail - unsent);
		*usedp = q->used;
		return;
	}
	*availp = (uint16_t)(q->avail | q->avail_wrap << WRAP_BIT);
	*usedp = (uint16_t)(q->used | q->used_wrap << WRAP_BIT);
}

void vr_set_callfd(struct vr_queue *q, int fd)
{
	pthread_mutex_lock(&q->call_lock);
	q->callfd = fd;
	/* An interrupt may have been due while the front end swapped the
	 * eventfd; a spurious one costs the guest a look at the ring. */
	if (fd >= 0 && eventfd_write(fd, 1) == 0) {
		q->calls++;
	}
	pthread_mutex_unlock(&q->call_lock);
}
