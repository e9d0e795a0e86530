/* SPDX-License-Identifier: MIT */
/* blk-backend.h: the disks vdiskd serves, behind one small table of
 * functions, the way Open vSwitch's ports sit behind netdev-provider.h.
 * The server's virtqueue code (vdiskd-blk.c) calls only this; it knows
 * nothing of image formats.  Three back ends exist: "vdisk" (libvdisk
 * images, blk-backend-vdisk.c), "raw" (a plain file on io_uring,
 * blk-backend-raw.c) and, when built with librbd, "rbd" (Ceph RBD images
 * named rbd:POOL/IMAGE, blk-backend-rbd.c).
 *
 * Threads: a back end is opened and closed on one thread and may then be
 * used from several, but never at the same time: the server holds the
 * disk's lock around every call.  Each virtqueue has its own 'struct
 * blk_queue' (an I/O ring), so requests of different queues are in flight
 * together.  Requests complete from queue_poll() with 0 or a negative
 * errno; a submit call that returns an error never calls its callback.
 * Guest buffers must stay valid until the callback runs.  A write,
 * discard or write-zeroes may be turned back with -EINPROGRESS while a
 * live migration copies its range (mirror.h): the server holds it and
 * retries it when told (vdd_disk_retry), never fails it. */
#ifndef BLK_BACKEND_H
#define BLK_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "errmsg.h"

struct blk_backend_class;
struct json_object;

struct blk_backend {
	const struct blk_backend_class *cls;
};

struct blk_queue {
	const struct blk_backend_class *cls;
	struct blk_backend *backend;
};

typedef void (*blk_cb)(void *arg, int ret);

struct blk_open_opts {
	bool read_only;
	bool buffered; /* page cache (cache mode "writeback") instead of O_DIRECT */
	bool volatile_map; /* vdisk: no VD_OPEN_DURABLE_MAP (vdiskd.h) */
};

struct blk_backend_class {
	const char *name;
	/* Whether the file open in 'fd' is in this back end's format (for
	 * format "auto"); NULL: anything (raw). */
	bool (*probe)(int fd);
	/* Opens and locks 'path' (a second writer gets -EBUSY and a sentence
	 * naming the holder). */
	int (*open)(const char *path, const struct blk_open_opts *opts, struct blk_backend **bp,
		    struct errmsg *err);
	/* Flushes and closes; no request may be in flight. */
	int (*close)(struct blk_backend *b);
	uint64_t (*size_bytes)(struct blk_backend *b);
	/* Guest bytes the disk holds (for disk-list); 0 if unknown. */
	uint64_t (*allocated_bytes)(struct blk_backend *b);
	/* Control operations, with no request in flight on any queue.  NULL
	 * when the back end cannot do them (raw files have no snapshots). */
	int (*resize)(struct blk_backend *b, uint64_t size_bytes, struct errmsg *err);
	int (*snapshot_create)(struct blk_backend *b, const char *name, struct errmsg *err);
	int (*snapshot_delete)(struct blk_backend *b, const char *name, struct errmsg *err);
	/* Stores in '*objp' a new JSON object describing the disk as `vdisk
	 * info --json` does (vdisk-info.h), 'path' its "filename"; with no
	 * request in flight (it may read metadata).  NULL: the format has
	 * nothing to say beyond disk-list. */
	int (*describe)(struct blk_backend *b, const char *path, struct json_object **objp,
			struct errmsg *err);

	/* An I/O context able to keep 'depth' requests in flight. */
	int (*queue_create)(struct blk_backend *b, unsigned depth, struct blk_queue **qp);
	/* Completes what is in flight (waiting for it), then frees 'q'. */
	void (*queue_destroy)(struct blk_queue *q);
	/* Readable when completions wait; borrowed until queue_destroy. */
	int (*queue_event_fd)(struct blk_queue *q);
	/* Hands queued requests to the kernel, runs the callbacks of those
	 * completed, never waits.  Returns how many ran or a negative errno. */
	int (*queue_poll)(struct blk_queue *q);
	unsigned (*queue_inflight)(struct blk_queue *q);

	int (*readv)(struct blk_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
		     blk_cb cb, void *arg);
	int (*writev)(struct blk_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
		      blk_cb cb, void *arg);
	/* Makes every write completed before it durable. */
	int (*flush)(struct blk_queue *q, blk_cb cb, void *arg);
	int (*discard)(struct blk_queue *q, uint64_t off, uint64_t len, blk_cb cb, void *arg);
	/* 'unmap': the range may give its space back to the host. */
	int (*write_zeroes)(struct blk_queue *q, uint64_t off, uint64_t len, bool unmap, blk_cb cb,
			    void *arg);
};

extern const struct blk_backend_class blk_backend_vdisk;

/* Live migration (vdiskd-migrate.c) and the vdisk back end, with no
 * request in flight: its image (NULL for another back end); a mirror in
 * its write path (NULL: none); and the pivot, which serves 'img' from now
 * on and returns the image it replaces, for the caller to close. */
struct mirror;
struct vd_image;
struct vd_image *blk_vdisk_image(struct blk_backend *b);
void blk_vdisk_set_mirror(struct blk_backend *b, struct mirror *m);
struct vd_image *blk_vdisk_swap(struct blk_backend *b, struct vd_image *img);
extern const struct blk_backend_class blk_backend_raw;
#ifdef VDD_RBD
extern const struct blk_backend_class blk_backend_rbd;
#endif

/* Opens 'path' with the back end named 'format' ("vdisk", "raw", or
 * "auto": vdisk when the file starts with the vdisk magic, else raw).
 * Refuses what is not a regular file or a block device.  A name starting
 * with "rbd:" is a Ceph RBD image (format "auto" or "rbd"). */
int blk_backend_open(const char *path, const char *format, const struct blk_open_opts *opts,
		     struct blk_backend **bp, struct errmsg *err);

#endif
