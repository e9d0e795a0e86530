/* SPDX-License-Identifier: MIT */
/* fuzz_target.h: what a file-format fuzz target provides (fuzz_image.c:
 * vdisk images; fuzz_qcow2.c: qcow2 images), shared by the libFuzzer build
 * (libFuzzer supplies main) and replay_main.c (the test suite's main, which
 * runs a target over a corpus and deterministic mutations of it). */
#ifndef FUZZ_TARGET_H
#define FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

/* Runs one input as an image file.  Always returns 0; a bug aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Recomputes, in place, the checksums the format has (vdisk: the header's
 * and those of otherwise valid journal transactions), so that mutated bytes
 * reach the code behind them.  The target does this to every input before
 * opening it; the result is the file a reproducer should be given to the
 * tools.  A format without checksums leaves the bytes alone. */
void fuzz_fix_checksums(uint8_t *image, size_t size);

/* A byte range of a file where damage matters. */
struct fuzz_region {
	uint64_t off, bytes;
};

/* Fills at most 'max' regions of 'img' ('size' bytes) where the mutations
 * should land more often than not: the header and the tables it names,
 * read from the header however damaged.  Returns how many. */
unsigned fuzz_regions(const uint8_t *img, size_t size, struct fuzz_region *r, unsigned max);

#endif
