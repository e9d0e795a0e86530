/* SPDX-License-Identifier: MIT */
/* vrbd.h: Ceph RBD images for the vdisk tool, libdatastore and vdiskd.
 * librbd and librados do the work; this library holds what every user of
 * them here needs the same way: the "rbd:POOL/IMAGE" name grammar, a
 * connection that never hangs (every wait has a timeout) and errors that
 * name the cluster and the cause in one sentence, and the exclusive lock
 * that keeps two servers (two hosts) from writing one image.
 *
 * Names: rbd:POOL/IMAGE[@SNAP][:conf=FILE][:id=USER], the grammar of
 * QEMU's rbd driver for the options it shares.  FILE defaults to Ceph's
 * search path (/etc/ceph/ceph.conf), USER to "admin".
 *
 * Threads: a vrbd_image is used from one thread at a time; librbd's own
 * threads run the asynchronous completions (the caller bridges them). */
#ifndef VRBD_H
#define VRBD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "errmsg.h"

#define VRBD_PREFIX "rbd:"
#define VRBD_NAME_MAX 128

struct vrbd_spec {
	char pool[VRBD_NAME_MAX];
	char image[VRBD_NAME_MAX];
	char snap[VRBD_NAME_MAX];   /* "": the image itself */
	char conf[4096];            /* "": Ceph's default search path */
	char id[VRBD_NAME_MAX];     /* "": admin */
};

/* Whether 's' names an RBD image (starts with "rbd:"). */
bool vrbd_is_spec(const char *s);
/* Parses 's'; -EINVAL and a sentence when it is not in the grammar. */
int vrbd_spec_parse(const char *s, struct vrbd_spec *spec, struct errmsg *err);
/* Writes the canonical name of 'spec' into buf; -ENAMETOOLONG if short. */
int vrbd_spec_format(const struct vrbd_spec *spec, char *buf, size_t len);

/* Seconds any connect or cluster operation may take before it fails with
 * -ETIMEDOUT ($VRBD_TIMEOUT overrides it; librados's defaults wait for
 * ever on a stopped cluster). */
#define VRBD_TIMEOUT_S 10

struct vrbd_cluster;
/* Connects as client.'id' with the configuration 'conf' (either may be NULL
 * or ""). */
int vrbd_connect(const char *conf, const char *id, struct vrbd_cluster **cp, struct errmsg *err);
void vrbd_disconnect(struct vrbd_cluster *c);
rados_t vrbd_rados(struct vrbd_cluster *c);
/* The pool's I/O context (-ENOENT: no such pool). */
int vrbd_pool_open(struct vrbd_cluster *c, const char *pool, rados_ioctx_t *iop,
		   struct errmsg *err);

struct vrbd_image {
	struct vrbd_cluster *cluster;
	rados_ioctx_t io;
	rbd_image_t rbd;
	bool locked;                /* we own the exclusive lock */
	char name[VRBD_NAME_MAX * 3 + 8]; /* POOL/IMAGE[@SNAP], for messages */
};

/* vrbd_open flags. */
#define VRBD_WRITABLE 0x1u /* take and keep the exclusive lock */
#define VRBD_CACHE 0x2u    /* librbd's write-back cache (flush makes durable) */
/* Read-write without taking the lock: for snapshot, resize and rollback
 * calls, which librbd hands to the lock's owner when there is one (a
 * server), so they are one instant of its writes. */
#define VRBD_MAINTENANCE 0x4u

/* Opens the image (a snapshot only read-only).  VRBD_WRITABLE takes the
 * image's exclusive lock and keeps it until vrbd_close: another client
 * holding it gets -EBUSY and a sentence naming the owner; a dead owner's
 * lock is broken (its client blocklisted) once the cluster has seen it
 * die. */
int vrbd_open(const struct vrbd_spec *spec, unsigned flags, struct vrbd_image **ip,
	      struct errmsg *err);
void vrbd_close(struct vrbd_image *img);
/* Creates the image 'spec' names, of 'size_bytes', thin, with the features
 * vdiskd and QEMU rely on (layering for clones, exclusive-lock,
 * object-map and fast-diff for allocation and diffs, deep-flatten).
 * -EEXIST when it exists. */
int vrbd_create(const struct vrbd_spec *spec, uint64_t size_bytes, struct errmsg *err);
/* Creates 'child' as a linked clone of snapshot 'parent' (spec with a
 * snapshot), which must be protected; the clone gets create's features
 * and the parent's size. */
int vrbd_clone(const struct vrbd_spec *parent, const struct vrbd_spec *child,
	       struct errmsg *err);
/* Deletes the image 'spec' names: refused with -EBUSY, naming the
 * clients, while one has it open (a served disk), and with -ENOTEMPTY
 * while it has snapshots. */
int vrbd_remove(const struct vrbd_spec *spec, struct errmsg *err);
/* A libvdisk source (vdisk.h) reading the image or snapshot 'spec' names,
 * through its parent for a clone; its runs come from the object map
 * (whole objects), so a copy reads only objects that exist.  The image is
 * closed with the source. */
struct vd_source;
int vrbd_source_open(const struct vrbd_spec *spec, struct vd_source **srcp, struct errmsg *err);
/* vd_copy_dest.write for an image open read-write ('arg' a vrbd_image). */
int vrbd_copy_write(void *arg, const void *buf, size_t len, uint64_t off);
/* Asynchronous I/O on an open image with the completions run on the
 * caller's thread (vdiskd's queues, vdisk bench): librbd completes on its
 * own threads, where a completion only joins the queue's done list and
 * bumps its eventfd; vrbd_queue_poll() runs the callbacks.  A queue is used
 * from one thread at a time; a submit that fails never calls back. */
struct vrbd_queue;
typedef void (*vrbd_cb)(void *arg, int ret);
int vrbd_queue_create(struct vrbd_image *img, struct vrbd_queue **qp);
/* Waits for every request in flight (each ends within the client's
 * timeouts), then frees 'q'. */
void vrbd_queue_destroy(struct vrbd_queue *q);
/* Readable when completions wait (never read it yourself). */
int vrbd_queue_fd(const struct vrbd_queue *q);
unsigned vrbd_queue_inflight(const struct vrbd_queue *q);
/* Runs the callbacks of what completed, waiting up to 'timeout_ms' (-1:
 * for ever, 0: not at all) when nothing has.  Returns how many ran. */
int vrbd_queue_poll(struct vrbd_queue *q, int timeout_ms);
/* 'ret' is 0 or a negative errno; reads past the end are the caller's. */
int vrbd_readv(struct vrbd_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
	       vrbd_cb cb, void *arg);
int vrbd_writev(struct vrbd_queue *q, const struct iovec *iov, int iovcnt, uint64_t off,
		vrbd_cb cb, void *arg);
/* Completes once every write completed before it is in the cluster. */
int vrbd_flush(struct vrbd_queue *q, vrbd_cb cb, void *arg);
int vrbd_discard(struct vrbd_queue *q, uint64_t off, uint64_t len, vrbd_cb cb, void *arg);
/* 'unmap': the range may give its space back; else it stays allocated. */
int vrbd_write_zeroes(struct vrbd_queue *q, uint64_t off, uint64_t len, bool unmap, vrbd_cb cb,
		      void *arg);

/* Bytes of the image's own objects holding data (its parent's not counted). */
int vrbd_allocated_bytes(struct vrbd_image *img, uint64_t *bytes);

#endif
