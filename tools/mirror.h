/* SPDX-License-Identifier: MIT */
/* mirror.h: the copy-and-mirror engine of vdiskd's live migration, on two
 * libvdisk images: the source the guest is served from, and the
 * destination being filled.
 *
 * The destination is cut into granules (the source's cluster size).  A
 * granule is dirty while the destination may differ from the source there
 * and no copy of it has completed; clean once it reads the same.  The
 * caller marks dirty what the source holds that the destination lacks
 * (mirror_mark), then:
 *  - the guest's writes, discards and write-zeroes go to the source and,
 *    when they touch a clean granule, to the destination too, and complete
 *    when both did (the guest sees the source's result: a failing
 *    destination stops the mirror and fails the job, never the guest);
 *    those on dirty granules only go to the source, the copy takes them
 *    later, so the job converges whatever the guest's write rate;
 *  - the copier (mirror_copy_start, from the job's own context) reads runs
 *    of dirty granules from the source and writes them to the destination
 *    (zeros as write-zeroes, so thin stays thin), then marks them clean.
 *    Each granule is copied once, unless the job restarts.
 * A guest write and a copy never overlap in flight: a copy does not start
 * on granules a guest write is changing, and a guest write on granules a
 * copy is moving is turned back with -EINPROGRESS, for the server to hold
 * and retry when mirror_take_retry() says so (at the latest when the copy
 * completes: one chunk, about a millisecond).
 *
 * Threads: every call, and the contexts' polls that run the callbacks,
 * under the one lock the server holds around the images (vdiskd's disk
 * lock).  Requests complete from vd_ctx_poll() of the context they were
 * submitted on; one context may carry both images' requests. */
#ifndef MIRROR_H
#define MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vdisk.h"

struct mirror;

/* Copies in flight at once, and the largest one. */
#define MIRROR_MAX_COPIES 8
#define MIRROR_CHUNK_BYTES (1u << 20)

/* Everything clean.  'src' and 'dst' have the same virtual size, which
 * must not change while the mirror exists. */
int mirror_create(struct vd_image *src, struct vd_image *dst, struct mirror **mp);
/* No request may be in flight through it. */
void mirror_destroy(struct mirror *m);

/* Marks [off, off+len) dirty (whole granules). */
void mirror_mark(struct mirror *m, uint64_t off, uint64_t len);

/* The guest's path: as vd_submit_*() on the source. */
int mirror_writev(struct mirror *m, struct vd_ctx *ctx, const struct iovec *iov, int iovcnt,
		  uint64_t off, vd_cb cb, void *arg);
int mirror_discard(struct mirror *m, struct vd_ctx *ctx, uint64_t off, uint64_t len, vd_cb cb,
		   void *arg);
int mirror_write_zeroes(struct mirror *m, struct vd_ctx *ctx, uint64_t off, uint64_t len,
			vd_cb cb, void *arg);

/* Starts copying the next run of dirty granules no guest write is
 * changing, at most 'max' bytes (0: a whole chunk) and a free copy slot.
 * Returns the bytes started, 0 when nothing can start now, or a negative
 * errno. */
int64_t mirror_copy_start(struct mirror *m, struct vd_ctx *ctx, uint64_t max);

struct mirror_stats {
	uint64_t dirty_bytes;    /* left to copy (granules, at most the size) */
	uint64_t copied_bytes;   /* copied so far */
	uint64_t mirrored_bytes; /* guest bytes written to both images */
	unsigned copies;         /* in flight */
	int error;               /* the first failure (negative errno), or 0 */
	bool error_dst;          /* it was the destination's */
};
void mirror_get_stats(const struct mirror *m, struct mirror_stats *st);
/* Nothing dirty, no copy in flight: the destination reads as the source,
 * and stays so while the mirror lives. */
bool mirror_synced(const struct mirror *m);
/* Whether 'n' bytes at 'buf' (8-byte aligned) are all zero: a copy
 * writes them as write-zeroes. */
bool mirror_all_zero(const void *buf, size_t n);
/* Whether a guest request was turned back since the last call (the server
 * should retry its held requests now). */
bool mirror_take_retry(struct mirror *m);

#endif
