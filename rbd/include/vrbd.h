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

/* Opens the image (a snapshot only read-only).  VRBD_WRITABLE takes the
 * image's exclusive lock and keeps it until vrbd_close: another client
 * holding it gets -EBUSY and a sentence naming the owner; a dead owner's
 * lock is broken (its client blocklisted) once the cluster has seen it
 * die. */
int vrbd_open(const struct vrbd_spec *spec, unsigned flags, struct vrbd_image **ip,
	      struct errmsg *err);
void vrbd_close(struct vrbd_image *img);
/* Bytes of the image's own objects holding data (its parent's not counted). */
int vrbd_allocated_bytes(struct vrbd_image *img, uint64_t *bytes);

#endif
