/* SPDX-License-Identifier: MIT */
/* vdisk-info.h: an image's description as one JSON object, the one `vdisk
 * info --json` prints.  Built in one place so that the vdisk tool (an image
 * it opened) and vdiskd (an image it serves, answering disk-info) cannot
 * describe an image differently; the tool prints its text form from the
 * same object. */
#ifndef VDISK_INFO_H
#define VDISK_INFO_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "errmsg.h"

struct vd_image;

/* Stores in '*arrayp' a new JSON array with one object per snapshot of
 * 'img' (id, name, date, date_sec, date_nsec, virtual_size, unique_bytes,
 * referenced_bytes); the caller puts it.  Returns 0, or a negative errno
 * with a sentence naming 'path' in 'err' (NULL allowed).  Reads the
 * snapshots' tables: synchronous, no request may be in flight on 'img'. */
int vdisk_snapshots_json(struct vd_image *img, const char *path, struct json_object **arrayp,
			 struct errmsg *err);

/* Stores in '*objp' a new object describing 'img' as 'path' (its
 * "filename"): sizes, layout, state, feature bits, backing file and
 * snapshots (docs/man/vdisk.1.md lists the keys).  Same contract as
 * vdisk_snapshots_json(). */
int vdisk_info_json(struct vd_image *img, const char *path, struct json_object **objp,
		    struct errmsg *err);

/* Formats 'date_s' (seconds since the epoch) in local time as qemu-img
 * does ("2026-01-31 12:00:00"; "-" if it cannot).  The text forms format
 * "date_sec" again on the reader's side: vdiskd's time zone need not be
 * the user's. */
void vdisk_format_date(uint64_t date_s, char *buf, size_t len);

#endif
