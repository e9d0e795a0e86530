/* SPDX-License-Identifier: MIT */
/* qcow2.h: internal to libvdisk.  A read-only reader of qcow2 images
 * (versions 2 and 3) behind vd_source (vdisk.h: import, convert, migration), written from QEMU's format specification alone
 * (docs/interop/qcow2.txt); no QEMU code or library is involved.  It maps
 * guest ranges through the image's backing chain (qcow2 or raw files) and
 * reads them.  What it cannot read faithfully (compressed clusters,
 * encryption, external data files, extended L2 entries) is refused at open
 * with one sentence naming the file.
 *
 * Conventions as in vdisk.h: 0 or a negative errno; calls a user must
 * understand leave one sentence in a 'struct errmsg' (NULL allowed).  A
 * handle is not thread-safe. */
#ifndef VDISK_QCOW2_H
#define VDISK_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

struct vd_qcow2; /* opaque: one open image and its backing chain */

/* True when the first 'len' bytes of a file, at 'buf', start with the qcow2
 * magic "QFI\xfb". */
bool vd_qcow2_probe(const void *buf, size_t len);

/* Opens the qcow2 image at 'path' read-only with its whole backing chain.  A
 * backing file name is taken relative to the directory of the image naming
 * it; its format is the one the image records, else probed (qcow2 by its
 * magic, otherwise raw).  Every header field is range-checked and the whole
 * active L1/L2 mapping walked, so a damaged or unsupported image fails here,
 * not halfway through a copy: -EUCLEAN damaged, -EOPNOTSUPP unsupported,
 * -EINVAL not qcow2.  On success stores a new handle in '*qp'. */
int vd_qcow2_open(const char *path, struct vd_qcow2 **qp, struct errmsg *err);

/* Closes 'q' and its backing chain (NULL: no-op). */
void vd_qcow2_close(struct vd_qcow2 *q);

/* The virtual size in bytes. */
uint64_t vd_qcow2_size_bytes(const struct vd_qcow2 *q);

enum vd_qcow2_state {
	VD_QCOW2_DATA,	   /* this file holds the bytes */
	VD_QCOW2_BACKING,	   /* not here: a file down the backing chain holds them */
	VD_QCOW2_ZERO,	   /* the zero flag: zeros, whatever the chain holds */
	VD_QCOW2_UNALLOCATED, /* not here, and zeros (or nothing) all down the chain */
};

struct vd_qcow2_extent {
	uint64_t length; /* bytes, > 0 */
	enum vd_qcow2_state state;
};

/* Describes the run of guest bytes starting at 'off' that has one state,
 * at most 'max' (> 0) bytes long.  Offsets at or past the virtual size read
 * as zeros and are described as unallocated. */
int vd_qcow2_map(struct vd_qcow2 *q, uint64_t off, uint64_t max, struct vd_qcow2_extent *ext,
	      struct errmsg *err);

/* Reads 'len' guest bytes at 'off' into 'buf', through the backing chain;
 * bytes past the virtual size read as zeros. */
int vd_qcow2_pread(struct vd_qcow2 *q, void *buf, size_t len, uint64_t off, struct errmsg *err);

/* Opens 'path' with 'oflags' (O_CLOEXEC added) into '*fdp' if it can be
 * an image: a regular file or a block device.  Anything else gets -EINVAL
 * and a sentence, at once (a FIFO is not waited on). */
int vd_file_open_checked(const char *path, int oflags, int *fdp, struct errmsg *err);

#endif
