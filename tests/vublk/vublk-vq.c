// SPDX-License-Identifier: MIT
/* vublk-vq.c: the driver side of a split (virtio 1.2, 2.7) or packed (2.8)
 * virtqueue for the vublk front end: descriptor allocation, virtio-blk
 * chains, making them available, kicks with notification suppression
 * (NO_NOTIFY, EVENT_IDX, the packed event structures), and used entries.
 * A packed queue takes buffer ids from the same free stack a split one
 * takes descriptor slots from, and counts its free ring positions apart.  It also holds the raw API that writes descriptors exactly as a
 * test asks, so the rules below hold for chains we build and are only
 * bookkeeping for raw ones:
 *
 *   1. A descriptor slot is free, or belongs to exactly one request in
 *      flight (vq_req.slots), until a used entry names that request's head.
 *   2. We never read back the descriptor table: a server cannot write it,
 *      but a raw chain may loop, so freeing walks our own slot list.
 *   3. avail->idx is published with release order after the ring entry and
 *      the descriptors; used entries are read after an acquire of used->idx.
 *   4. A used entry that names no request in flight is counted (bad_used)
 *      and otherwise ignored: a buggy server must not corrupt the client. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vublk-int.h"

static uint16_t *avail_used_event(struct vublk_vq *vq)
{
	return (uint16_t *)&vq->avail->ring[vq->num];
}

static uint16_t *used_avail_event(struct vublk_vq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->num];
}

uint16_t vq_used_idx(const struct vublk_vq *vq)
{
	return le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
}

/* SET_VRING_BASE of a fresh queue: a packed one starts at position 0 with
 * its wrap counters at 1 (2.8.1), which QEMU sends in bit 15. */
uint16_t vq_initial_base(const struct vublk_vq *vq)
{
	return vq->packed ? 1u << VRING_WRAP_BIT : 0;
}

int vq_init(struct vublk *dev, struct vublk_vq *vq, unsigned int index)
{
	uint16_t num = dev->opts.queue_size;
	int ret = -ENOMEM;

	memset(vq, 0, sizeof(*vq));
	vq->index = index;
	vq->num = num;
	vq->packed = vu_has_feature(dev->features, VUBLK_F_RING_PACKED);
	vq->kick_fd = -1;
	vq->call_fd = -1;
	vq->desc = mem_alloc(&dev->mem, sizeof(struct vring_desc) * num);
	vq->avail = mem_alloc(&dev->mem, 6 + 2 * num);
	vq->used = mem_alloc(&dev->mem, 6 + sizeof(struct vring_used_elem) * num);
	vq->slot_area = mem_alloc(&dev->mem, VQ_SLOT_BYTES * num);
	if (!vq->desc || !vq->avail || !vq->used || !vq->slot_area) {
		goto out_fini;
	}
	if (vu_has_feature(dev->features, VUBLK_F_INDIRECT_DESC)) {
		vq->indirect = mem_alloc(&dev->mem, sizeof(struct vring_desc) * VQ_CHAIN_MAX * num);
		if (!vq->indirect) {
			goto out_fini;
		}
	}
	vq->free_slots = calloc(num, sizeof(*vq->free_slots));
	vq->req = calloc(num, sizeof(*vq->req));
	if (!vq->free_slots || !vq->req) {
		goto out_fini;
	}
	/* Lowest slots on top of the stack, so a fresh queue uses 0, 1, 2... */
	for (unsigned int i = 0; i < num; i++) {
		vq->free_slots[i] = num - 1 - i;
	}
	vq->nfree = num;
	vq->pfree = num;
	vq->avail_wrap = vq->used_wrap = true;
	vq->base = vq_initial_base(vq);
	/* The same memory, seen as the packed layout (its event structures
	 * are 4 bytes, well within avail and used). */
	vq->pdesc = (volatile struct vring_packed_desc *)vq->desc;
	vq->driver_event = (volatile struct vring_packed_event *)vq->avail;
	vq->device_event = (volatile struct vring_packed_event *)vq->used;
	if (vq->packed && vu_has_feature(dev->features, VUBLK_F_EVENT_IDX)) {
		vq->driver_event->off_wrap = htole16(1u << VRING_WRAP_BIT);
		vq->driver_event->flags = htole16(VRING_EVENT_F_DESC);
	}
	vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->kick_fd < 0 || vq->call_fd < 0) {
		ret = -errno;
		goto out_fini;
	}
	return 0;
out_fini:
	vq_fini(dev, vq);
	return ret;
}

void vq_fini(struct vublk *dev, struct vublk_vq *vq)
{
	mem_free(&dev->mem, (void *)vq->desc);
	mem_free(&dev->mem, (void *)vq->avail);
	mem_free(&dev->mem, (void *)vq->used);
	mem_free(&dev->mem, vq->slot_area);
	mem_free(&dev->mem, (void *)vq->indirect);
	for (unsigned int i = 0; vq->req && i < vq->num; i++) {
		free(vq->req[i].long_slots);
	}
	free(vq->bogus.long_slots);
	free(vq->free_slots);
	free(vq->req);
	if (vq->kick_fd >= 0) {
		close(vq->kick_fd);
	}
	if (vq->call_fd >= 0) {
		close(vq->call_fd);
	}
	memset(vq, 0, sizeof(*vq));
	vq->kick_fd = -1;
	vq->call_fd = -1;
}

static void desc_write(volatile struct vring_desc *d, uint64_t gpa, uint32_t len, uint16_t flags,
		       uint16_t next)
{
	d->addr = htole64(gpa);
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16(next);
}

/* (rule 3) the entry and everything it points at before the index. */
static void avail_publish(struct vublk_vq *vq, uint16_t head)
{
	vq->avail->ring[vq->avail_idx % vq->num] = htole16(head);
	vq->avail_idx++;
	__atomic_store_n(&vq->avail->idx, htole16(vq->avail_idx), __ATOMIC_RELEASE);
	vq->st.submitted++;
	vq->st.inflight++;
}

static void advance(struct vublk_vq *vq, uint16_t *pos, bool *wrap, uint16_t n)
{
	*pos = (uint16_t)(*pos + n);
	if (*pos >= vq->num) {
		*pos = (uint16_t)(*pos - vq->num);
		*wrap = !*wrap;
	}
}

/* Writes ring descriptor 'slot' of a packed queue without making it
 * available: with neither AVAIL nor USED set, no wrap counter matches. */
static void pdesc_write(volatile struct vring_packed_desc *d, uint64_t gpa, uint32_t len,
			uint16_t flags, uint16_t id)
{
	d->addr = htole64(gpa);
	d->len = htole32(len);
	d->id = htole16(id);
	d->flags = htole16(flags & ~(VRING_PACKED_F_AVAIL | VRING_PACKED_F_USED));
}

/* (rule 3) makes the 'n' descriptors written at next_avail available
 * under buffer id 'id': the rest of the chain first, then its head with
 * release order (2.8.21). */
static void packed_publish(struct vublk_vq *vq, unsigned int n, uint16_t id)
{
	uint16_t head_flags = 0;

	for (unsigned int i = 0; i < n; i++) {
		unsigned int at = vq->next_avail + i;
		bool wrap = at >= vq->num ? !vq->avail_wrap : vq->avail_wrap;
		volatile struct vring_packed_desc *d = &vq->pdesc[at % vq->num];
		uint16_t f = le16toh(d->flags) & ~(VRING_PACKED_F_AVAIL | VRING_PACKED_F_USED);

		/* 2.8.1: AVAIL is the wrap counter, USED its inverse. */
		f |= wrap ? VRING_PACKED_F_AVAIL : VRING_PACKED_F_USED;
		d->id = htole16(id);
		if (i == 0) {
			head_flags = f;
		} else {
			d->flags = htole16(f);
		}
	}
	__atomic_store_n(&vq->pdesc[vq->next_avail].flags, htole16(head_flags), __ATOMIC_RELEASE);
	advance(vq, &vq->next_avail, &vq->avail_wrap, (uint16_t)n);
	vq->pfree -= n;
	vq->added += n;
	vq->st.submitted++;
	vq->st.inflight++;
}

/* One element of a chain: the bytes it covers and whether the device
 * writes them. */
struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static unsigned int chain_segs(struct vublk *dev, struct vublk_vq *vq, const struct vublk_io *io,
			       uint16_t head, struct seg *segs)
{
	uint8_t *slot = vq->slot_area + (size_t)head * VQ_SLOT_BYTES;
	bool dwz = io->type == VUBLK_T_DISCARD || io->type == VUBLK_T_WRITE_ZEROES;
	bool dev_writes = io->type == VUBLK_T_IN || io->type == VUBLK_T_GET_ID;
	unsigned int n = 0, nseg = io->segs ? io->segs : 1;
	uint64_t gpa = vublk_gpa(dev, io->buf);

	segs[n++] = (struct seg){vublk_gpa(dev, slot), 16, false};
	if (dwz && !io->buf) {
		segs[n++] = (struct seg){vublk_gpa(dev, slot + VQ_SLOT_DWZ), VUBLK_DWZ_BYTES, false};
	} else if (io->buf) {
		uint32_t each = io->bytes / nseg / VUBLK_SECTOR_BYTES * VUBLK_SECTOR_BYTES;
		uint32_t left = io->bytes;

		if (each == 0) {
			each = io->bytes / nseg ? io->bytes / nseg : 1;
		}
		for (unsigned int i = 0; i < nseg && left; i++) {
			uint32_t len = i == nseg - 1 || each > left ? left : each;

			segs[n++] = (struct seg){gpa, len, dev_writes};
			gpa += len;
			left -= len;
		}
	}
	segs[n++] = (struct seg){vublk_gpa(dev, slot + VQ_SLOT_STATUS), 1, true};
	return n;
}

static void slot_fill(struct vublk_vq *vq, const struct vublk_io *io, uint16_t head)
{
	uint8_t *slot = vq->slot_area + (size_t)head * VQ_SLOT_BYTES;
	bool dwz = io->type == VUBLK_T_DISCARD || io->type == VUBLK_T_WRITE_ZEROES;
	uint32_t type = htole32(io->type), prio = htole32(io->ioprio);
	uint64_t sector = htole64(dwz ? 0 : io->sector);

	memset(slot, 0, VQ_SLOT_BYTES);
	memcpy(slot, &type, 4);
	memcpy(slot + 4, &prio, 4);
	memcpy(slot + 8, &sector, 8);
	if (dwz) {
		uint64_t s = htole64(io->sector);
		uint32_t num = htole32(io->num_sectors), flags = htole32(io->dwz_flags);

		memcpy(slot + VQ_SLOT_DWZ, &s, 8);
		memcpy(slot + VQ_SLOT_DWZ + 8, &num, 4);
		memcpy(slot + VQ_SLOT_DWZ + 12, &flags, 4);
	}
	slot[VQ_SLOT_STATUS] = VUBLK_S_UNTOUCHED;
}

static int io_check(struct vublk *dev, const struct vublk_io *io)
{
	if (io->segs > VUBLK_MAX_SEGS) {
		return -EINVAL;
	}
	if (io->indirect && !vu_has_feature(dev->features, VUBLK_F_INDIRECT_DESC)) {
		return -EINVAL;
	}
	if (io->buf && (vublk_gpa(dev, io->buf) == UINT64_MAX ||
			vublk_gpa(dev, (uint8_t *)io->buf + io->bytes - (io->bytes > 0)) == UINT64_MAX)) {
		return -EINVAL;
	}
	return 0;
}

static uint16_t slot_pop(struct vublk_vq *vq)
{
	return vq->free_slots[--vq->nfree];
}

/* Writes a packed chain for buffer id 'id' at next_avail: the segments, or
 * one INDIRECT descriptor for a table of them (2.8.19: entries in order,
 * only WRITE meaningful). */
static void packed_chain(struct vublk *dev, struct vublk_vq *vq, const struct vublk_io *io,
			 uint16_t id, const struct seg *segs, unsigned int nseg)
{
	struct vq_req *req = &vq->req[id];

	if (io->indirect) {
		volatile struct vring_packed_desc *table =
			(volatile struct vring_packed_desc *)(vq->indirect + (size_t)id * VQ_CHAIN_MAX);

		for (unsigned int i = 0; i < nseg; i++) {
			pdesc_write(&table[i], segs[i].gpa, segs[i].len,
				    segs[i].write ? VUBLK_DESC_F_WRITE : 0, 0);
		}
		pdesc_write(&vq->pdesc[vq->next_avail], vublk_gpa(dev, (const void *)table),
			    nseg * sizeof(struct vring_packed_desc), VUBLK_DESC_F_INDIRECT, id);
		req->ndesc = 1;
		return;
	}
	for (unsigned int i = 0; i < nseg; i++) {
		pdesc_write(&vq->pdesc[(vq->next_avail + i) % vq->num], segs[i].gpa, segs[i].len,
			    (segs[i].write ? VUBLK_DESC_F_WRITE : 0) |
			    (i + 1 < nseg ? VUBLK_DESC_F_NEXT : 0), id);
	}
	req->ndesc = (uint16_t)nseg;
}

int vq_submit(struct vublk *dev, struct vublk_vq *vq, const struct vublk_io *io,
	      vublk_done_fn *done, void *opaque, uint16_t *headp)
{
	struct seg segs[VQ_CHAIN_MAX];
	unsigned int nseg, need;
	struct vq_req *req;
	uint16_t head;
	int ret;

	ret = io_check(dev, io);
	if (ret < 0) {
		return ret;
	}
	need = io->indirect ? 1 : (io->buf ? (io->segs ? io->segs : 1) : 1) + 2;
	if (vq->packed ? vq->nfree == 0 || vq->pfree < need : vq->nfree < need) {
		return -EAGAIN;
	}
	head = slot_pop(vq);
	req = &vq->req[head];
	req->nslots = 0;
	req->slots[req->nslots++] = head;
	slot_fill(vq, io, head);
	nseg = chain_segs(dev, vq, io, head, segs);
	if (vq->packed) {
		packed_chain(dev, vq, io, head, segs, nseg);
	} else if (io->indirect) {
		volatile struct vring_desc *table = vq->indirect + (size_t)head * VQ_CHAIN_MAX;

		for (unsigned int i = 0; i < nseg; i++) {
			desc_write(&table[i], segs[i].gpa, segs[i].len,
				   (segs[i].write ? VUBLK_DESC_F_WRITE : 0) |
				   (i + 1 < nseg ? VUBLK_DESC_F_NEXT : 0), i + 1 < nseg ? i + 1 : 0);
		}
		desc_write(&vq->desc[head], vublk_gpa(dev, (const void *)table),
			   nseg * sizeof(struct vring_desc), VUBLK_DESC_F_INDIRECT, 0);
	} else {
		uint16_t cur = head;

		/* The data may have produced fewer segments than 'need'
		 * reserved (a short buffer split many ways): pop as we go. */
		for (unsigned int i = 0; i < nseg; i++) {
			uint16_t next = i + 1 < nseg ? slot_pop(vq) : 0;

			if (i + 1 < nseg) {
				req->slots[req->nslots++] = next;
			}
			desc_write(&vq->desc[cur], segs[i].gpa, segs[i].len,
				   (segs[i].write ? VUBLK_DESC_F_WRITE : 0) |
				   (i + 1 < nseg ? VUBLK_DESC_F_NEXT : 0), next);
			cur = next;
		}
	}
	req->done = done;
	req->opaque = opaque;
	req->status = vq->slot_area + (size_t)head * VQ_SLOT_BYTES + VQ_SLOT_STATUS;
	req->active = true;
	if (vq->packed) {
		packed_publish(vq, req->ndesc, head);
	} else {
		avail_publish(vq, head);
	}
	if (headp) {
		*headp = head;
	}
	return 0;
}

/* virtio 1.2, 2.7.10: notify if the device's event index lies in the range
 * of indices published since the last notification. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

/* 2.8.10: the device's event structure; with EVENT_IDX and DESC, a kick
 * when the descriptor at off_wrap was among those made available since
 * the last one (positions of the previous lap count as negative, as in
 * Linux's virtqueue_kick_prepare_packed()). */
static bool packed_want_kick(struct vublk *dev, struct vublk_vq *vq)
{
	uint16_t flags = le16toh(__atomic_load_n(&vq->device_event->flags, __ATOMIC_RELAXED));
	uint16_t off_wrap, event;

	if (!vu_has_feature(dev->features, VUBLK_F_EVENT_IDX) || flags != VRING_EVENT_F_DESC) {
		return flags != VRING_EVENT_F_DISABLE;
	}
	off_wrap = le16toh(__atomic_load_n(&vq->device_event->off_wrap, __ATOMIC_RELAXED));
	event = off_wrap & 0x7fff;
	if ((bool)(off_wrap >> VRING_WRAP_BIT) != vq->avail_wrap) {
		event = (uint16_t)(event - vq->num);
	}
	return need_event(event, vq->next_avail, (uint16_t)(vq->next_avail - vq->added));
}

void vq_kick(struct vublk *dev, struct vublk_vq *vq)
{
	uint64_t one = 1;
	bool kick;

	if (vq->packed) {
		if (vq->added == 0) {
			return;
		}
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		kick = packed_want_kick(dev, vq);
		vq->added = 0;
		if (kick && write(vq->kick_fd, &one, sizeof(one)) == sizeof(one)) {
			vq->st.kicks++;
		}
		return;
	}
	if (vq->avail_idx == vq->kicked_idx) {
		return;
	}
	/* The index store must be visible before we read the device's
	 * suppression state, or both sides may decide to sleep. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vu_has_feature(dev->features, VUBLK_F_EVENT_IDX)) {
		uint16_t event = le16toh(__atomic_load_n(used_avail_event(vq), __ATOMIC_RELAXED));

		kick = need_event(event, vq->avail_idx, vq->kicked_idx);
	} else {
		kick = !(le16toh(vq->used->flags) & VRING_USED_F_NO_NOTIFY);
	}
	vq->kicked_idx = vq->avail_idx;
	if (kick && write(vq->kick_fd, &one, sizeof(one)) == sizeof(one)) {
		vq->st.kicks++;
	}
}

static void req_finish(struct vublk_vq *vq, struct vq_req *req, uint32_t used_bytes)
{
	vublk_done_fn *done = req->done;
	void *opaque = req->opaque;
	int status = req->status ? *req->status : -ENODATA;
	const uint16_t *slots = req->long_slots ? req->long_slots : req->slots;

	/* (rule 2) our own slot list, never the table.  Packed: the buffer id
	 * (its ring positions came back as the used entry was read). */
	if (vq->packed) {
		if (req != &vq->bogus) {
			vq->free_slots[vq->nfree++] = (uint16_t)(req - vq->req);
		}
	} else {
		for (unsigned int i = 0; i < req->nslots; i++) {
			vq->free_slots[vq->nfree++] = slots[i];
		}
	}
	free(req->long_slots);
	req->long_slots = NULL;
	req->active = false;
	vq->st.inflight--;
	vq->st.completed++;
	if (status != VUBLK_S_OK) {
		vq->st.errors++;
	}
	if (done) {
		done(opaque, status, used_bytes);
	}
}

static void used_complete(struct vublk_vq *vq, uint32_t id, uint32_t len)
{
	if (id < vq->num && vq->req[id].active) {
		req_finish(vq, &vq->req[id], len);
	} else if (vq->bogus.active && id == vq->bogus_head) {
		req_finish(vq, &vq->bogus, len);
	} else {
		vq->st.bad_used++; /* (rule 4) */
	}
}

static bool packed_used(const struct vublk_vq *vq, uint16_t *flagsp)
{
	uint16_t f = le16toh(__atomic_load_n(&vq->pdesc[vq->next_used].flags, __ATOMIC_ACQUIRE));

	*flagsp = f;
	/* 2.8.1: a used descriptor has AVAIL and USED both equal to the
	 * device's wrap counter. */
	return !!(f & VRING_PACKED_F_AVAIL) == vq->used_wrap &&
	       !!(f & VRING_PACKED_F_USED) == vq->used_wrap;
}

/* The ring positions the buffer named 'id' took, or 1 for an id no chain
 * in flight has (rule 4: counted by used_complete()). */
static uint16_t packed_ndesc(const struct vublk_vq *vq, uint32_t id)
{
	if (id < vq->num && vq->req[id].active) {
		return vq->req[id].ndesc;
	}
	if (vq->bogus.active && id == vq->bogus_head) {
		return vq->bogus.ndesc;
	}
	return 1;
}

static int vq_poll_packed(struct vublk *dev, struct vublk_vq *vq)
{
	int n = 0;
	uint16_t flags;

	for (;;) {
		while (packed_used(vq, &flags)) {
			volatile struct vring_packed_desc *d = &vq->pdesc[vq->next_used];
			uint32_t id = le16toh(d->id), len = le32toh(d->len);
			uint16_t ndesc = packed_ndesc(vq, id);

			/* Before the callback, which may reuse the id. */
			advance(vq, &vq->next_used, &vq->used_wrap, ndesc);
			vq->pfree += ndesc;
			used_complete(vq, id, len);
			n++;
		}
		if (!vu_has_feature(dev->features, VUBLK_F_EVENT_IDX)) {
			break;
		}
		/* An interrupt at the next used entry; then look once more so
		 * one written before the device saw our event is not missed. */
		__atomic_store_n(&vq->driver_event->off_wrap,
				 htole16((uint16_t)(vq->next_used | vq->used_wrap << VRING_WRAP_BIT)),
				 __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (!packed_used(vq, &flags)) {
			break;
		}
	}
	return n;
}

int vq_poll(struct vublk *dev, struct vublk_vq *vq)
{
	int n = 0;

	if (vq->packed) {
		return vq_poll_packed(dev, vq);
	}

	for (;;) {
		uint16_t used_idx = vq_used_idx(vq);

		if ((uint16_t)(used_idx - vq->last_used) > vq->num) {
			/* (rule 4) an index no ring of this size can reach:
			 * resynchronise rather than read garbage forever. */
			vq->st.bad_used++;
			vq->last_used = used_idx;
		}
		while (vq->last_used != used_idx) {
			volatile struct vring_used_elem *e = &vq->used->ring[vq->last_used % vq->num];
			uint32_t id = le32toh(e->id), len = le32toh(e->len);

			vq->last_used++;
			used_complete(vq, id, len);
			n++;
		}
		if (!vu_has_feature(dev->features, VUBLK_F_EVENT_IDX)) {
			break;
		}
		/* Ask for a call at the next entry, then look once more so an
		 * entry pushed before the device saw our index is not missed. */
		__atomic_store_n(avail_used_event(vq), htole16(vq->last_used), __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (vq_used_idx(vq) == vq->last_used) {
			break;
		}
	}
	return n;
}

int vublk_submit(struct vublk *dev, unsigned int q, const struct vublk_io *io,
		 vublk_done_fn *done, void *opaque)
{
	if (q >= dev->nvqs) {
		return -EINVAL;
	}
	return vq_submit(dev, &dev->vqs[q], io, done, opaque, NULL);
}

int vublk_raw_reserve(struct vublk *dev, unsigned int q, unsigned int n,
		      struct vublk_chain *chain)
{
	struct vublk_vq *vq;

	if (q >= dev->nvqs || n == 0 || n > dev->vqs[q].num) {
		return -EINVAL;
	}
	vq = &dev->vqs[q];
	if (vq->packed ? vq->nfree == 0 || vq->pfree < n : vq->nfree < n) {
		return -EAGAIN;
	}
	memset(chain, 0, sizeof(*chain));
	if (vq->packed) {
		chain->id = slot_pop(vq);
		for (unsigned int i = 0; i < n; i++) {
			chain->slot[chain->n++] = (uint16_t)((vq->next_avail + i) % vq->num);
		}
		return 0;
	}
	for (unsigned int i = 0; i < n; i++) {
		chain->slot[chain->n++] = slot_pop(vq);
	}
	return 0;
}

void vublk_raw_set(struct vublk *dev, unsigned int q, const struct vublk_chain *chain,
		   unsigned int i, const struct vublk_desc *desc)
{
	if (q >= dev->nvqs || i >= chain->n) {
		return;
	}
	if (dev->vqs[q].packed) {
		pdesc_write(&dev->vqs[q].pdesc[chain->slot[i]], desc->addr, desc->len, desc->flags,
			    chain->id);
		return;
	}
	desc_write(&dev->vqs[q].desc[chain->slot[i]], desc->addr, desc->len, desc->flags,
		   desc->next);
}

static int raw_publish_packed(struct vublk_vq *vq, const struct vublk_chain *chain,
			      uint16_t head, vublk_done_fn *done, void *opaque)
{
	struct vq_req *req;

	if (head >= vq->num) {
		if (vq->bogus.active) {
			return -EBUSY;
		}
		req = &vq->bogus;
		vq->bogus_head = head;
		/* No used entry will name the reserved id. */
		vq->free_slots[vq->nfree++] = chain->id;
	} else if (head == chain->id) {
		req = &vq->req[head];
	} else {
		return -EINVAL; /* would alias another request's id */
	}
	req->nslots = 0;
	req->ndesc = (uint16_t)chain->n;
	req->done = done;
	req->opaque = opaque;
	req->status = chain->status;
	req->active = true;
	packed_publish(vq, chain->n, head);
	return 0;
}

int vublk_raw_publish(struct vublk *dev, unsigned int q, const struct vublk_chain *chain,
		      uint16_t head, vublk_done_fn *done, void *opaque)
{
	struct vublk_vq *vq;
	struct vq_req *req = NULL;

	if (q >= dev->nvqs) {
		return -EINVAL;
	}
	vq = &dev->vqs[q];
	if (vq->packed) {
		return raw_publish_packed(vq, chain, head, done, opaque);
	}
	if (head >= vq->num) {
		if (vq->bogus.active) {
			return -EBUSY;
		}
		req = &vq->bogus;
		vq->bogus_head = head;
	} else {
		for (unsigned int i = 0; i < chain->n; i++) {
			if (chain->slot[i] == head) {
				req = &vq->req[head];
			}
		}
		if (!req) {
			return -EINVAL; /* would alias another request's head */
		}
	}
	req->nslots = chain->n;
	if (chain->n > VQ_CHAIN_MAX) {
		req->long_slots = malloc(sizeof(chain->slot[0]) * chain->n);
		if (!req->long_slots) {
			return -ENOMEM;
		}
		memcpy(req->long_slots, chain->slot, sizeof(chain->slot[0]) * chain->n);
	} else {
		memcpy(req->slots, chain->slot, sizeof(chain->slot[0]) * chain->n);
	}
	req->done = done;
	req->opaque = opaque;
	req->status = chain->status;
	req->active = true;
	avail_publish(vq, head);
	return 0;
}

void vublk_raw_release(struct vublk *dev, unsigned int q, const struct vublk_chain *chain)
{
	if (q >= dev->nvqs) {
		return;
	}
	if (dev->vqs[q].packed) {
		dev->vqs[q].free_slots[dev->vqs[q].nfree++] = chain->id;
		return;
	}
	for (unsigned int i = 0; i < chain->n; i++) {
		dev->vqs[q].free_slots[dev->vqs[q].nfree++] = chain->slot[i];
	}
}

void vublk_raw_avail_bump(struct vublk *dev, unsigned int q, uint16_t delta)
{
	struct vublk_vq *vq;

	if (q >= dev->nvqs) {
		return;
	}
	vq = &dev->vqs[q];
	if (vq->packed) {
		return;
	}
	vq->avail_idx += delta;
	__atomic_store_n(&vq->avail->idx, htole16(vq->avail_idx), __ATOMIC_RELEASE);
}
