/* SPDX-License-Identifier: MIT */
/* memfile.h: an image file held in memory, behind libvdisk's file hook
 * (struct vd_file_ops, vdisk/internal.h).  The fuzz target opens every input
 * through it and gen_seeds.c creates the seed images in it.  Its length and
 * the bytes moved through it are capped, so that a hostile image makes the
 * library fail with an error instead of eating the machine. */
#ifndef FUZZ_MEMFILE_H
#define FUZZ_MEMFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

struct memfile {
	uint8_t *data;            /* mapped, 'cap_bytes' long, zero past the length */
	uint64_t size_bytes;      /* the file's length */
	uint64_t dirty_bytes;     /* past this, 'data' has never been written */
	uint64_t cap_bytes;       /* at least 'max_bytes' and the initial length */
	uint64_t max_bytes;       /* writes and truncates beyond fail: -EFBIG */
	uint64_t budget_bytes;    /* left to read and write, then -EIO */
	bool read_only;           /* any change aborts: the library promised none */
	bool keep_header;         /* punching the header sector aborts */
	/* Called after each sync (gen_seeds.c captures crash states there). */
	void (*sync_hook)(void *arg, const struct memfile *mf);
	void *sync_hook_arg;
};

extern const struct vd_file_ops memfile_ops;

/* Makes 'mf' a file holding a copy of 'size' bytes at 'data'.  Returns 0 or
 * -ENOMEM. */
int memfile_init(struct memfile *mf, const void *data, size_t size, uint64_t max_bytes);
void memfile_fini(struct memfile *mf);
/* A copy of the whole file (holes as zeros) for the caller to free, or
 * NULL. */
uint8_t *memfile_bytes(const struct memfile *mf);

#endif
