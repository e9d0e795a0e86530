/* SPDX-License-Identifier: MIT */
/* fuzz_image.h: the fuzz target's entry points, shared by the libFuzzer
 * build (libFuzzer supplies main) and replay_main.c (the test suite's
 * main). */
#ifndef FUZZ_IMAGE_H
#define FUZZ_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Runs one input as an image file.  Always returns 0; a bug aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Recomputes, in place, the header checksum and the checksums of the
 * journal transactions (and of header sectors inside them) that are
 * otherwise valid, so that mutated bytes reach the code behind the
 * checksums.  The target does this to every input before opening it; the
 * result is the image a reproducer should be given to the vdisk tool. */
void fuzz_fix_checksums(uint8_t *image, size_t size);

#endif
