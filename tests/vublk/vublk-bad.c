// SPDX-License-Identifier: MIT
/* vublk-bad.c: the catalogue of malformed virtio-blk requests a hostile
 * guest can make, run through vublk's raw chain API, and the checks on what
 * the server did with each: the status byte, the used entry, whether it
 * wrote anywhere no device-writable descriptor allowed (every element sits
 * in its own pages among canary bytes, and all free guest RAM holds the
 * canary too), and whether the queue still serves a good request.
 *
 * Most cases are rows of descriptor specs; loops, over-long chains,
 * indirect tables and ring-level damage have small builders of their own.
 * The same catalogue runs on packed queues: a row's descriptors then take
 * consecutive ring slots ('next' means nothing there), indirect tables are
 * written in the packed layout, and the cases that only a split ring can
 * express (loops through 'next', the avail index) give way to their packed
 * counterpart (a chain running into a slot not made available). */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vublk-int.h"

/* Neither 0x00 nor 0xff, so neither zeroing nor an untouched status byte
 * passes for it. */
#define CANARY 0xa5
#define PAGE 4096
#define MAX_SPECS 8
#define MAX_AREAS 8
#define MAX_WRITABLE 64
#define NOT_NEXT (-1)
#define RAW_NEXT(v) (0x10000 | (v))

enum loc {
	L_HDR = 1,    /* the 16-byte outhdr, 'off' into it */
	L_DATA,       /* the data buffer */
	L_STATUS,     /* the status byte */
	L_DWZ,        /* the discard/write-zeroes segment */
	L_RAM_END,    /* 'off' from the end of guest RAM */
	L_HOLE,       /* 'off' into the hole between regions 0 and 1 */
	L_HOLE_START, /* 'off' from the end of region 0 (negative: inside) */
	L_GPA,        /* 'off' is the address */
};

enum sector_at { S_ZERO, S_CAP, S_CAP_M1, S_MAX };

enum need { N_NONE, N_DISCARD, N_WZ, N_INDIRECT, N_HOLE, N_RO, N_SPLIT, N_PACKED,
	    N_SPLIT_INDIRECT };

struct dspec {
	uint8_t loc;
	int64_t off;
	uint32_t len;
	uint16_t flags;
	int32_t next; /* chain position, RAW_NEXT(slot) or NOT_NEXT */
};

struct bad_ctx;

struct bad_case {
	const char *name;
	const char *what;
	enum vublk_bad_expect expect;
	uint32_t type;
	uint8_t sector_at;
	uint32_t data_bytes;
	uint32_t num_sectors; /* discard / write-zeroes segment */
	uint32_t dwz_flags;
	uint8_t need;
	bool ok_harmless; /* lenient mode lets an OK status pass: nothing moves */
	int (*build)(struct bad_ctx *c);
	unsigned int nspecs;
	struct dspec d[MAX_SPECS];
};

struct area {
	uint8_t *p;
	size_t bytes;
	uint8_t *copy;
};

struct range {
	const uint8_t *p;
	uint32_t len;
};

struct bad_ctx {
	struct vublk *dev;
	unsigned int q;
	const struct bad_case *bc;
	struct vublk_chain chain;
	uint16_t head;
	uint8_t *hdr, *data, *status, *dwz;
	struct area areas[MAX_AREAS];
	unsigned int nareas;
	struct range writable[MAX_WRITABLE];
	unsigned int nwritable;
	uint64_t ram_end;     /* guest-physical end of RAM */
	uint64_t region0_end;
	bool hole;            /* a hole follows region 0 */
	bool done;
	int status_v;
	uint32_t used_bytes;
};

#define N VUBLK_DESC_F_NEXT
#define W VUBLK_DESC_F_WRITE
#define D(l, o, n, f, nx) {.loc = (l), .off = (o), .len = (n), .flags = (f), .next = (nx)}
/* The well-formed pieces. */
#define HDR(nx) D(L_HDR, 0, 16, N, nx)
#define STATUS D(L_STATUS, 0, 1, W, NOT_NEXT)

static int build_loop_self(struct bad_ctx *c);
static int build_loop_two(struct bad_ctx *c);
static int build_over_seg_max(struct bad_ctx *c);
static int build_whole_ring(struct bad_ctx *c);
static int build_indirect_loop(struct bad_ctx *c);
static int build_indirect_nested(struct bad_ctx *c);
static int build_indirect_len(struct bad_ctx *c);
static int build_indirect_outside(struct bad_ctx *c);
static int build_indirect_next(struct bad_ctx *c);
static int build_head_range(struct bad_ctx *c);
static int build_avail_jump(struct bad_ctx *c);
static int build_unfinished(struct bad_ctx *c);

static const struct bad_case cases[] = {
	{"hdr-outside-ram", "header descriptor beyond the end of guest RAM", VUBLK_BAD_ERROR,
	 VUBLK_T_IN, S_ZERO, 4096, .nspecs = 3,
	 .d = {D(L_RAM_END, 0x1000, 16, N, 1), D(L_DATA, 0, 4096, W | N, 2), STATUS}},
	{"data-outside-ram", "read into a buffer beyond the end of guest RAM", VUBLK_BAD_ERROR,
	 VUBLK_T_IN, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_RAM_END, 0x10000, 4096, W | N, 2), STATUS}},
	{"write-from-outside-ram", "write from a buffer beyond the end of guest RAM",
	 VUBLK_BAD_ERROR, VUBLK_T_OUT, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_RAM_END, 0x10000, 4096, N, 2), STATUS}},
	{"data-straddles-ram-end", "read buffer starting 2 KiB before the end of guest RAM",
	 VUBLK_BAD_ERROR, VUBLK_T_IN, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_RAM_END, -2048, 4096, W | N, 2), STATUS}},
	{"data-in-hole", "read buffer in the hole between two memory regions", VUBLK_BAD_ERROR,
	 VUBLK_T_IN, S_ZERO, 4096, .need = N_HOLE, .nspecs = 3,
	 .d = {HDR(1), D(L_HOLE, 0x1000, 4096, W | N, 2), STATUS}},
	{"data-into-hole", "read buffer running from the end of region 0 into the hole",
	 VUBLK_BAD_ERROR, VUBLK_T_IN, S_ZERO, 4096, .need = N_HOLE, .nspecs = 3,
	 .d = {HDR(1), D(L_HOLE_START, -2048, 4096, W | N, 2), STATUS}},
	{"status-outside-ram", "status byte beyond the end of guest RAM", VUBLK_BAD_NO_STATUS,
	 VUBLK_T_IN, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 4096, W | N, 2), D(L_RAM_END, 0x2000, 1, W, NOT_NEXT)}},
	{"addr-wraps", "buffer whose address plus length wraps past 2^64", VUBLK_BAD_ERROR,
	 VUBLK_T_IN, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_GPA, -0x1000, 0x2000, W | N, 2), STATUS}},
	{"len-4g", "read buffer of 4 GiB - 1 starting in guest RAM", VUBLK_BAD_ERROR, VUBLK_T_IN,
	 S_ZERO, 4096, .nspecs = 3, .d = {HDR(1), D(L_DATA, 0, 0xffffffffu, W | N, 2), STATUS}},
	{"desc-len-zero", "a zero-length descriptor inside a read", VUBLK_BAD_ANY, VUBLK_T_IN,
	 S_ZERO, 4096, .nspecs = 4,
	 .d = {HDR(1), D(L_DATA, 0, 0, W | N, 2), D(L_DATA, 0, 4096, W | N, 3), STATUS}},
	{"hdr-short", "header descriptor of 8 bytes", VUBLK_BAD_ERROR, VUBLK_T_IN, S_ZERO, 4096,
	 .nspecs = 3, .d = {D(L_HDR, 0, 8, N, 1), D(L_DATA, 0, 4096, W | N, 2), STATUS}},
	{"hdr-split", "header split over two descriptors (legal framing)", VUBLK_BAD_OK,
	 VUBLK_T_IN, S_ZERO, 4096, .nspecs = 4,
	 .d = {D(L_HDR, 0, 8, N, 1), D(L_HDR, 8, 8, N, 2), D(L_DATA, 0, 4096, W | N, 3), STATUS}},
	{"hdr-writable", "header in a device-writable descriptor", VUBLK_BAD_ERROR, VUBLK_T_IN,
	 S_ZERO, 4096, .nspecs = 3,
	 .d = {D(L_HDR, 0, 16, W | N, 1), D(L_DATA, 0, 4096, W | N, 2), STATUS}},
	{"no-status", "flush with a header and nothing else", VUBLK_BAD_NO_STATUS, VUBLK_T_FLUSH,
	 S_ZERO, 0, .nspecs = 1, .d = {D(L_HDR, 0, 16, 0, NOT_NEXT)}},
	{"status-readonly", "flush whose status byte is device-readable", VUBLK_BAD_NO_STATUS,
	 VUBLK_T_FLUSH, S_ZERO, 0, .nspecs = 2, .d = {HDR(1), D(L_STATUS, 0, 1, 0, NOT_NEXT)}},
	{"status-readonly-after-read", "read whose status byte is device-readable",
	 VUBLK_BAD_NO_STATUS, VUBLK_T_IN, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 4096, W | N, 2), D(L_STATUS, 0, 1, 0, NOT_NEXT)}},
	{"status-len-zero", "flush whose status descriptor has length 0", VUBLK_BAD_NO_STATUS,
	 VUBLK_T_FLUSH, S_ZERO, 0, .nspecs = 2, .d = {HDR(1), D(L_STATUS, 0, 0, W, NOT_NEXT)}},
	/* Both directions wrong: a server may read it as a transfer of zero
	 * bytes (qemu-storage-daemon answers OK). */
	{"read-into-readonly", "read whose data descriptor is device-readable", VUBLK_BAD_ERROR,
	 VUBLK_T_IN, S_ZERO, 4096, .ok_harmless = true, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 4096, N, 2), STATUS}},
	{"write-from-writable", "write whose data descriptor is device-writable",
	 VUBLK_BAD_ERROR, VUBLK_T_OUT, S_ZERO, 4096, .ok_harmless = true, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 4096, W | N, 2), STATUS}},
	{"read-len-unaligned", "read of 1000 bytes (not whole sectors)", VUBLK_BAD_ERROR,
	 VUBLK_T_IN, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 1000, W | N, 2), STATUS}},
	{"write-len-unaligned", "write of 1000 bytes (not whole sectors)", VUBLK_BAD_ERROR,
	 VUBLK_T_OUT, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 1000, N, 2), STATUS}},
	{"read-past-end", "read at the capacity", VUBLK_BAD_ERROR, VUBLK_T_IN, S_CAP, 4096,
	 .nspecs = 3, .d = {HDR(1), D(L_DATA, 0, 4096, W | N, 2), STATUS}},
	{"read-straddles-end", "read of 8 sectors from the last sector", VUBLK_BAD_ERROR,
	 VUBLK_T_IN, S_CAP_M1, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 4096, W | N, 2), STATUS}},
	{"read-sector-overflow", "read at sector 2^64 - 1", VUBLK_BAD_ERROR, VUBLK_T_IN, S_MAX,
	 4096, .nspecs = 3, .d = {HDR(1), D(L_DATA, 0, 4096, W | N, 2), STATUS}},
	{"write-past-end", "write at the capacity", VUBLK_BAD_ERROR, VUBLK_T_OUT, S_CAP, 4096,
	 .nspecs = 3, .d = {HDR(1), D(L_DATA, 0, 4096, N, 2), STATUS}},
	{"write-straddles-end", "write of 8 sectors from the last sector", VUBLK_BAD_ERROR,
	 VUBLK_T_OUT, S_CAP_M1, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 4096, N, 2), STATUS}},
	{"write-on-read-only", "write to a device that offers VIRTIO_BLK_F_RO", VUBLK_BAD_ERROR,
	 VUBLK_T_OUT, S_ZERO, 4096, .need = N_RO, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 4096, N, 2), STATUS}},
	{"discard-past-end", "discard of 8 sectors at the capacity", VUBLK_BAD_ERROR,
	 VUBLK_T_DISCARD, S_CAP, 0, 8, 0, N_DISCARD, .nspecs = 3,
	 .d = {HDR(1), D(L_DWZ, 0, 16, N, 2), STATUS}},
	{"discard-unmap-flag", "discard with the unmap flag (the spec wants UNSUPP)",
	 VUBLK_BAD_UNSUPP, VUBLK_T_DISCARD, S_ZERO, 0, 8, VUBLK_WZ_F_UNMAP, N_DISCARD,
	 .nspecs = 3, .d = {HDR(1), D(L_DWZ, 0, 16, N, 2), STATUS}},
	{"discard-seg-short", "discard whose segment is 8 bytes", VUBLK_BAD_ERROR,
	 VUBLK_T_DISCARD, S_ZERO, 0, 8, 0, N_DISCARD, .nspecs = 3,
	 .d = {HDR(1), D(L_DWZ, 0, 8, N, 2), STATUS}},
	{"write-zeroes-past-end", "write-zeroes of 8 sectors at the capacity", VUBLK_BAD_ERROR,
	 VUBLK_T_WRITE_ZEROES, S_CAP, 0, 8, 0, N_WZ, .nspecs = 3,
	 .d = {HDR(1), D(L_DWZ, 0, 16, N, 2), STATUS}},
	{"write-zeroes-bad-flags", "write-zeroes with undefined flag bits", VUBLK_BAD_ERROR,
	 VUBLK_T_WRITE_ZEROES, S_ZERO, 0, 8, 0xfffffffe, N_WZ, .nspecs = 3,
	 .d = {HDR(1), D(L_DWZ, 0, 16, N, 2), STATUS}},
	{"flush-with-data", "flush carrying 4 KiB of device-readable data", VUBLK_BAD_ANY,
	 VUBLK_T_FLUSH, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 4096, N, 2), STATUS}},
	{"get-id-short", "get-id into an 8-byte buffer (the id is 20)", VUBLK_BAD_ANY,
	 VUBLK_T_GET_ID, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 8, W | N, 2), STATUS}},
	{"type-scsi", "legacy SCSI command type 2", VUBLK_BAD_UNSUPP, 2, S_ZERO, 0, .nspecs = 2,
	 .d = {HDR(1), STATUS}},
	{"type-unknown", "request type 0xffffffff", VUBLK_BAD_UNSUPP, 0xffffffffu, S_ZERO, 0,
	 .nspecs = 2, .d = {HDR(1), STATUS}},
	{"type-unknown-with-data", "request type 0x7f with 4 KiB device-writable data",
	 VUBLK_BAD_UNSUPP, 0x7f, S_ZERO, 4096, .nspecs = 3,
	 .d = {HDR(1), D(L_DATA, 0, 4096, W | N, 2), STATUS}},
	{"loop-self", "descriptor whose next is itself", VUBLK_BAD_NO_STATUS, VUBLK_T_IN, S_ZERO,
	 4096, .need = N_SPLIT, .build = build_loop_self},
	{"loop-two", "two descriptors pointing at each other", VUBLK_BAD_NO_STATUS, VUBLK_T_IN,
	 S_ZERO, 4096, .need = N_SPLIT, .build = build_loop_two},
	{"next-out-of-range", "next index 0xffff", VUBLK_BAD_NO_STATUS, VUBLK_T_IN, S_ZERO, 4096,
	 .need = N_SPLIT, .nspecs = 2,
	 .d = {HDR(RAW_NEXT(0xffff)), D(L_DATA, 0, 4096, W, NOT_NEXT)}},
	{"over-seg-max", "read with one data descriptor more than seg_max", VUBLK_BAD_ANY,
	 VUBLK_T_IN, S_ZERO, 0, .build = build_over_seg_max},
	{"whole-ring-chain", "read chaining every descriptor of the queue", VUBLK_BAD_ANY,
	 VUBLK_T_IN, S_ZERO, 0, .build = build_whole_ring},
	{"indirect-loop", "indirect table whose entry points at itself", VUBLK_BAD_NO_STATUS,
	 VUBLK_T_IN, S_ZERO, 4096, .need = N_SPLIT_INDIRECT, .build = build_indirect_loop},
	{"indirect-nested", "indirect descriptor inside an indirect table", VUBLK_BAD_ANY, VUBLK_T_IN, S_ZERO, 4096, .need = N_INDIRECT,
	 .build = build_indirect_nested},
	{"indirect-len-unaligned", "indirect table of 40 bytes (2.5 descriptors)",
	 VUBLK_BAD_NO_STATUS, VUBLK_T_IN, S_ZERO, 4096, .need = N_INDIRECT,
	 .build = build_indirect_len},
	{"indirect-outside-ram", "indirect table beyond the end of guest RAM",
	 VUBLK_BAD_NO_STATUS, VUBLK_T_IN, S_ZERO, 4096, .need = N_INDIRECT,
	 .build = build_indirect_outside},
	{"indirect-and-next", "descriptor with both INDIRECT and NEXT", VUBLK_BAD_ANY,
	 VUBLK_T_IN, S_ZERO, 4096, .need = N_INDIRECT, .build = build_indirect_next},
	{"head-out-of-range", "avail ring entry naming descriptor queue_size + 3",
	 VUBLK_BAD_RING, VUBLK_T_IN, S_ZERO, 4096, .build = build_head_range},
	{"avail-idx-jump", "avail index moved by queue_size + 1", VUBLK_BAD_RING, VUBLK_T_IN,
	 S_ZERO, 4096, .need = N_SPLIT, .build = build_avail_jump},
	{"chain-unfinished", "packed chain whose last slot has NEXT, the slot after it not "
	 "available", VUBLK_BAD_RING, VUBLK_T_IN, S_ZERO, 4096, .need = N_PACKED,
	 .build = build_unfinished},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

unsigned int vublk_bad_count(void)
{
	return NCASES;
}

const char *vublk_bad_name(unsigned int i)
{
	return i < NCASES ? cases[i].name : NULL;
}

const char *vublk_bad_what(unsigned int i)
{
	return i < NCASES ? cases[i].what : NULL;
}

enum vublk_bad_expect vublk_bad_expect(unsigned int i)
{
	return i < NCASES ? cases[i].expect : VUBLK_BAD_ANY;
}

const char *vublk_bad_expect_name(enum vublk_bad_expect expect)
{
	switch (expect) {
	case VUBLK_BAD_ERROR:
		return "error";
	case VUBLK_BAD_UNSUPP:
		return "unsupp";
	case VUBLK_BAD_OK:
		return "ok";
	case VUBLK_BAD_ANY:
		return "any";
	case VUBLK_BAD_NO_STATUS:
		return "no-status";
	case VUBLK_BAD_RING:
		return "ring";
	}
	return "?";
}

/* Pages for one element, all canary. */
static uint8_t *area_new(struct bad_ctx *c, size_t bytes)
{
	struct area *a;

	if (c->nareas == MAX_AREAS) {
		return NULL;
	}
	a = &c->areas[c->nareas];
	a->bytes = (bytes + PAGE - 1) / PAGE * PAGE;
	if (a->bytes == 0) {
		a->bytes = PAGE;
	}
	a->p = vublk_alloc(c->dev, a->bytes);
	if (!a->p) {
		return NULL;
	}
	memset(a->p, CANARY, a->bytes);
	c->nareas++;
	return a->p;
}

static uint64_t gpa(struct bad_ctx *c, const void *p)
{
	return vublk_gpa(c->dev, p);
}

/* Notes what a device-writable descriptor lets the device touch, if it lies
 * in one of our areas. */
static void note_writable(struct bad_ctx *c, uint64_t addr, uint32_t len)
{
	for (unsigned int i = 0; i < c->nareas; i++) {
		uint64_t start = gpa(c, c->areas[i].p), end = start + c->areas[i].bytes;

		if (addr >= start && addr < end) {
			uint64_t n = end - addr < len ? end - addr : len;
			const uint8_t *p = c->areas[i].p + (addr - start);
			struct range *last = c->nwritable ? &c->writable[c->nwritable - 1] : NULL;

			/* Adjacent segments of one buffer make one range. */
			if (last && last->p + last->len == p) {
				last->len += n;
			} else if (c->nwritable < MAX_WRITABLE) {
				c->writable[c->nwritable++] = (struct range){p, n};
			}
		}
	}
}

static bool packed(const struct bad_ctx *c)
{
	return vu_has_feature(vublk_features(c->dev), VUBLK_F_RING_PACKED);
}

/* Entry of an indirect table, in the queue's layout (a packed table's
 * entries follow each other: 'next' is dropped). */
static void put_desc(volatile struct vring_desc *d, struct bad_ctx *c, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	if (packed(c)) {
		volatile struct vring_packed_desc *p = (volatile struct vring_packed_desc *)d;

		p->addr = htole64(addr);
		p->len = htole32(len);
		p->id = 0;
		p->flags = htole16(flags);
	} else {
		d->addr = htole64(addr);
		d->len = htole32(len);
		d->flags = htole16(flags);
		d->next = htole16(next);
	}
	if (flags & VUBLK_DESC_F_WRITE) {
		note_writable(c, addr, len);
	}
}

/* Chain position 'i' of the reserved slots. */
static void set_desc(struct bad_ctx *c, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
		     int32_t next)
{
	struct vublk_desc d = {.addr = addr, .len = len, .flags = flags};

	if (next >= 0x10000) {
		d.next = next & 0xffff;
	} else if (next >= 0) {
		d.next = c->chain.slot[next];
	}
	vublk_raw_set(c->dev, c->q, &c->chain, i, &d);
	if (flags & VUBLK_DESC_F_WRITE) {
		note_writable(c, addr, len);
	}
}

/* What the avail ring (split) or the descriptors (packed) name. */
static uint16_t chain_head(const struct bad_ctx *c)
{
	return packed(c) ? c->chain.id : c->chain.slot[0];
}

static uint64_t sector_of(struct bad_ctx *c)
{
	uint64_t cap = vublk_config(c->dev)->capacity_sectors;

	switch (c->bc->sector_at) {
	case S_CAP:
		return cap;
	case S_CAP_M1:
		return cap - 1;
	case S_MAX:
		return UINT64_MAX;
	}
	return 0;
}

/* The elements every case may point at. */
static int elements(struct bad_ctx *c)
{
	const struct bad_case *bc = c->bc;
	uint32_t type = htole32(bc->type);
	uint64_t sector = htole64(bc->type == VUBLK_T_DISCARD || bc->type == VUBLK_T_WRITE_ZEROES ?
				  0 : sector_of(c));

	c->hdr = area_new(c, 16);
	c->status = area_new(c, 1);
	c->data = area_new(c, bc->data_bytes ? bc->data_bytes : PAGE);
	c->dwz = area_new(c, 16);
	if (!c->hdr || !c->status || !c->data || !c->dwz) {
		return -ENOMEM;
	}
	memcpy(c->hdr, &type, 4);
	memset(c->hdr + 4, 0, 4);
	memcpy(c->hdr + 8, &sector, 8);
	c->status[0] = VUBLK_S_UNTOUCHED;
	if (bc->data_bytes) {
		memset(c->data, 0x5a, bc->data_bytes);
	}
	if (bc->type == VUBLK_T_DISCARD || bc->type == VUBLK_T_WRITE_ZEROES) {
		uint64_t s = htole64(sector_of(c));
		uint32_t n = htole32(bc->num_sectors), f = htole32(bc->dwz_flags);

		memcpy(c->dwz, &s, 8);
		memcpy(c->dwz + 8, &n, 4);
		memcpy(c->dwz + 12, &f, 4);
	}
	return 0;
}

static uint64_t spec_addr(struct bad_ctx *c, const struct dspec *d)
{
	switch (d->loc) {
	case L_HDR:
		return gpa(c, c->hdr) + d->off;
	case L_DATA:
		return gpa(c, c->data) + d->off;
	case L_STATUS:
		return gpa(c, c->status) + d->off;
	case L_DWZ:
		return gpa(c, c->dwz) + d->off;
	case L_RAM_END:
		return c->ram_end + d->off;
	case L_HOLE:
		return c->region0_end + d->off;
	case L_HOLE_START:
		return c->region0_end + d->off;
	case L_GPA:
		return (uint64_t)d->off;
	}
	return 0;
}

static int build_specs(struct bad_ctx *c)
{
	const struct bad_case *bc = c->bc;
	int ret = vublk_raw_reserve(c->dev, c->q, bc->nspecs, &c->chain);

	if (ret < 0) {
		return ret;
	}
	for (unsigned int i = 0; i < bc->nspecs; i++) {
		set_desc(c, i, spec_addr(c, &bc->d[i]), bc->d[i].len, bc->d[i].flags, bc->d[i].next);
	}
	c->head = chain_head(c);
	return 0;
}

static int build_loop_self(struct bad_ctx *c)
{
	int ret = vublk_raw_reserve(c->dev, c->q, 2, &c->chain);

	if (ret == 0) {
		set_desc(c, 0, gpa(c, c->hdr), 16, N, 1);
		set_desc(c, 1, gpa(c, c->data), 4096, W | N, 1);
		c->head = chain_head(c);
	}
	return ret;
}

static int build_loop_two(struct bad_ctx *c)
{
	int ret = vublk_raw_reserve(c->dev, c->q, 2, &c->chain);

	if (ret == 0) {
		set_desc(c, 0, gpa(c, c->hdr), 16, N, 1);
		set_desc(c, 1, gpa(c, c->data), 4096, W | N, 0);
		c->head = chain_head(c);
	}
	return ret;
}

/* Header, 'nseg' data descriptors of 512 bytes, status. */
static int build_read_segs(struct bad_ctx *c, unsigned int nseg)
{
	uint8_t *buf = area_new(c, (size_t)nseg * 512);
	int ret;

	if (!buf) {
		return -ENOMEM;
	}
	ret = vublk_raw_reserve(c->dev, c->q, nseg + 2, &c->chain);
	if (ret < 0) {
		return ret;
	}
	set_desc(c, 0, gpa(c, c->hdr), 16, N, 1);
	for (unsigned int i = 0; i < nseg; i++) {
		set_desc(c, i + 1, gpa(c, buf) + 512 * i, 512, W | N, i + 2);
	}
	set_desc(c, nseg + 1, gpa(c, c->status), 1, W, NOT_NEXT);
	c->head = chain_head(c);
	return 0;
}

static int build_over_seg_max(struct bad_ctx *c)
{
	uint32_t seg_max = vublk_config(c->dev)->seg_max;

	if (!vu_has_feature(vublk_features(c->dev), VUBLK_F_SEG_MAX) || seg_max == 0 ||
	    seg_max + 3 > vublk_queue_size(c->dev)) {
		return -ENOTSUP;
	}
	return build_read_segs(c, seg_max + 1);
}

static int build_whole_ring(struct bad_ctx *c)
{
	return build_read_segs(c, vublk_queue_size(c->dev) - 2);
}

/* One ring descriptor pointing at an indirect table of 'n' entries of
 * 'table_bytes' at 'table_gpa' (ours unless the caller moves it). */
static volatile struct vring_desc *indirect_table(struct bad_ctx *c, uint64_t *table_gpa)
{
	volatile struct vring_desc *t = (volatile struct vring_desc *)area_new(c, PAGE);

	if (t) {
		*table_gpa = gpa(c, (const void *)t);
	}
	return t;
}

static int build_indirect(struct bad_ctx *c, int variant)
{
	volatile struct vring_desc *t;
	uint64_t tgpa = 0;
	uint32_t tlen = 3 * sizeof(struct vring_desc);
	uint16_t head_flags = VUBLK_DESC_F_INDIRECT;
	int ret;

	t = indirect_table(c, &tgpa);
	if (!t) {
		return -ENOMEM;
	}
	put_desc(&t[0], c, gpa(c, c->hdr), 16, N, 1);
	put_desc(&t[1], c, gpa(c, c->data), 4096, W | N, 2);
	put_desc(&t[2], c, gpa(c, c->status), 1, W, 0);
	switch (variant) {
	case 0: /* loop */
		put_desc(&t[1], c, gpa(c, c->data), 4096, W | N, 1);
		break;
	case 1: /* nested */
		put_desc(&t[1], c, tgpa, tlen, VUBLK_DESC_F_INDIRECT | N, 2);
		break;
	case 2: /* length */
		tlen = 40;
		break;
	case 3: /* outside */
		tgpa = c->ram_end + 0x4000;
		break;
	case 4: /* indirect and next */
		head_flags |= N;
		break;
	}
	ret = vublk_raw_reserve(c->dev, c->q, variant == 4 ? 2 : 1, &c->chain);
	if (ret < 0) {
		return ret;
	}
	set_desc(c, 0, tgpa, tlen, head_flags, variant == 4 ? 1 : NOT_NEXT);
	if (variant == 4) {
		set_desc(c, 1, gpa(c, c->status), 1, W, NOT_NEXT);
	}
	c->head = chain_head(c);
	return 0;
}

static int build_indirect_loop(struct bad_ctx *c)
{
	return build_indirect(c, 0);
}

static int build_indirect_nested(struct bad_ctx *c)
{
	return build_indirect(c, 1);
}

static int build_indirect_len(struct bad_ctx *c)
{
	return build_indirect(c, 2);
}

static int build_indirect_outside(struct bad_ctx *c)
{
	return build_indirect(c, 3);
}

static int build_indirect_next(struct bad_ctx *c)
{
	return build_indirect(c, 4);
}

static int build_good_read(struct bad_ctx *c)
{
	int ret = vublk_raw_reserve(c->dev, c->q, 3, &c->chain);

	if (ret == 0) {
		set_desc(c, 0, gpa(c, c->hdr), 16, N, 1);
		set_desc(c, 1, gpa(c, c->data), 4096, W | N, 2);
		set_desc(c, 2, gpa(c, c->status), 1, W, NOT_NEXT);
	}
	return ret;
}

/* A good read whose status slot says NEXT: the slot after it was never
 * made available, so the chain cannot be complete. */
static int build_unfinished(struct bad_ctx *c)
{
	int ret = vublk_raw_reserve(c->dev, c->q, 3, &c->chain);

	if (ret == 0) {
		set_desc(c, 0, gpa(c, c->hdr), 16, N, 1);
		set_desc(c, 1, gpa(c, c->data), 4096, W | N, 2);
		set_desc(c, 2, gpa(c, c->status), 1, W | N, NOT_NEXT);
		c->head = chain_head(c);
	}
	return ret;
}

static int build_head_range(struct bad_ctx *c)
{
	int ret = build_good_read(c);

	c->head = vublk_queue_size(c->dev) + 3;
	return ret;
}

static int build_avail_jump(struct bad_ctx *c)
{
	int ret = build_good_read(c);

	c->head = chain_head(c);
	return ret;
}

static int needs_met(struct bad_ctx *c)
{
	uint64_t f = vublk_features(c->dev);

	switch (c->bc->need) {
	case N_DISCARD:
		return vu_has_feature(f, VUBLK_F_DISCARD);
	case N_WZ:
		return vu_has_feature(f, VUBLK_F_WRITE_ZEROES);
	case N_INDIRECT:
		return vu_has_feature(f, VUBLK_F_INDIRECT_DESC);
	case N_HOLE:
		return c->hole;
	case N_RO:
		return vu_has_feature(f, VUBLK_F_RO);
	case N_SPLIT:
		return !packed(c);
	case N_PACKED:
		return packed(c);
	case N_SPLIT_INDIRECT:
		return !packed(c) && vu_has_feature(f, VUBLK_F_INDIRECT_DESC);
	}
	return 1;
}

static void layout(struct bad_ctx *c)
{
	struct vublk_region r[VUBLK_MAX_REGIONS];
	unsigned int n = vublk_regions(c->dev, r);

	c->ram_end = r[n - 1].gpa + r[n - 1].bytes;
	c->region0_end = r[0].gpa + r[0].bytes;
	c->hole = n > 1 && r[1].gpa >= c->region0_end + 2 * PAGE + 0x1000;
	/* A hole case must not aim past the hole into region 1, nor a
	 * RAM-end case (offsets up to 64 KiB) wrap. */
}

static void bad_done(void *opaque, int status, uint32_t used_bytes)
{
	struct bad_ctx *c = opaque;

	c->done = true;
	c->status_v = status;
	c->used_bytes = used_bytes;
}

static bool in_writable(const struct bad_ctx *c, const uint8_t *p)
{
	for (unsigned int i = 0; i < c->nwritable; i++) {
		if (p >= c->writable[i].p && p < c->writable[i].p + c->writable[i].len) {
			return true;
		}
	}
	return false;
}

static void check_strays(struct bad_ctx *c, struct vublk_bad_result *res)
{
	res->stray_bytes = vublk_check_free(c->dev, CANARY, &res->stray_gpa);
	for (unsigned int i = 0; i < c->nareas; i++) {
		const struct area *a = &c->areas[i];

		for (size_t j = 0; j < a->bytes; j++) {
			if (a->p[j] != a->copy[j] && !in_writable(c, a->p + j)) {
				if (res->stray_bytes++ == 0) {
					res->stray_gpa = gpa(c, a->p + j);
				}
			}
		}
	}
}

/* A plain 4 KiB read at sector 0 on the same queue. */
static bool still_serves(struct vublk *dev, unsigned int q, void *buf, int timeout_ms)
{
	struct vublk_io io = {.type = VUBLK_T_IN, .buf = buf, .bytes = 4096};

	if (!vublk_connected(dev)) {
		return false;
	}
	return vublk_io_sync(dev, q, &io, timeout_ms, NULL) == VUBLK_S_OK;
}

static void judge(const struct bad_case *bc, struct vublk_bad_result *res)
{
	bool err_status = res->status == VUBLK_S_IOERR || res->status == VUBLK_S_UNSUPP;
	bool strict = res->stray_bytes == 0;

	switch (bc->expect) {
	case VUBLK_BAD_ERROR:
		strict = strict && res->completed && err_status;
		break;
	case VUBLK_BAD_UNSUPP:
		strict = strict && res->completed && res->status == VUBLK_S_UNSUPP;
		break;
	case VUBLK_BAD_OK:
		strict = strict && res->completed && res->status == VUBLK_S_OK;
		break;
	case VUBLK_BAD_ANY:
		strict = strict && res->completed;
		break;
	case VUBLK_BAD_NO_STATUS:
		strict = strict && res->completed &&
			 (res->status == VUBLK_S_UNTOUCHED || res->status == -ENODATA);
		break;
	case VUBLK_BAD_RING:
		break;
	}
	res->pass_strict = strict && (bc->expect == VUBLK_BAD_RING || res->alive);
	res->pass_lenient = res->stray_bytes == 0;
	if ((bc->expect == VUBLK_BAD_ERROR || bc->expect == VUBLK_BAD_UNSUPP) && res->completed &&
	    res->status == VUBLK_S_OK && !bc->ok_harmless) {
		res->pass_lenient = false;
	}
}

static void wait_done(struct bad_ctx *c, int timeout_ms, struct vublk_bad_result *res)
{
	int64_t left = timeout_ms;

	/* vublk_wait() returns early on any completion: loop on ours. */
	while (!c->done && left > 0) {
		int ret = vublk_wait(c->dev, c->q, 50);

		if (ret == -ENOTCONN) {
			res->disconnected = true;
			break;
		}
		left -= 50;
	}
}

int vublk_bad_run(struct vublk *dev, unsigned int q, unsigned int i, int timeout_ms,
		  struct vublk_bad_result *res)
{
	struct bad_ctx *c;
	void *probe;
	int ret;

	memset(res, 0, sizeof(*res));
	if (i >= NCASES || q >= dev->nvqs) {
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	probe = vublk_alloc(dev, 4096);
	if (!c || !probe) {
		ret = -ENOMEM;
		goto out_free;
	}
	c->dev = dev;
	c->q = q;
	c->bc = &cases[i];
	layout(c);
	if (!needs_met(c)) {
		res->skipped = true;
		ret = 0;
		goto out_free;
	}
	ret = elements(c);
	if (ret == 0) {
		ret = c->bc->build ? c->bc->build(c) : build_specs(c);
	}
	/* After the build: reserving a chain clears it. */
	c->chain.status = c->status;
	if (ret == -ENOTSUP) {
		res->skipped = true;
		ret = 0;
		goto out_free;
	}
	if (ret < 0) {
		goto out_free;
	}
	for (unsigned int a = 0; a < c->nareas; a++) {
		c->areas[a].copy = malloc(c->areas[a].bytes);
		if (!c->areas[a].copy) {
			ret = -ENOMEM;
			goto out_free;
		}
		memcpy(c->areas[a].copy, c->areas[a].p, c->areas[a].bytes);
	}
	vublk_fill_free(dev, CANARY);
	ret = vublk_raw_publish(dev, q, &c->chain, c->head, bad_done, c);
	if (ret < 0) {
		vublk_raw_release(dev, q, &c->chain);
		goto out_free;
	}
	if (c->bc->build == build_avail_jump) {
		vublk_raw_avail_bump(dev, q, vublk_queue_size(dev) + 1);
	}
	wait_done(c, timeout_ms, res);
	res->completed = c->done;
	res->status = c->status_v;
	res->used_bytes = c->used_bytes;
	check_strays(c, res);
	if (!c->done) {
		/* The request may still complete; its callback must not reach
		 * freed memory, and its buffers must stay ours. */
		struct vublk_vq *vq = &dev->vqs[q];

		if (c->head < vq->num) {
			vq->req[c->head].done = NULL;
		} else {
			vq->bogus.done = NULL;
		}
		c->nareas = 0;
	}
	res->alive = still_serves(dev, q, probe, timeout_ms);
	res->disconnected = res->disconnected || !vublk_connected(dev);
	judge(c->bc, res);
	ret = 0;
out_free:
	if (c) {
		for (unsigned int a = 0; a < c->nareas; a++) {
			free(c->areas[a].copy);
			vublk_free(dev, c->areas[a].p);
		}
		for (unsigned int a = c->nareas; a < MAX_AREAS; a++) {
			free(c->areas[a].copy);
		}
	}
	vublk_free(dev, probe);
	free(c);
	return ret;
}
