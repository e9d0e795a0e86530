/* SPDX-License-Identifier: MIT */
/* open-latency.c: times a read-write vd_open of an image and the first
 * guest read and write after it (close left out), for the open-time figure
 * of docs/benchmarks.md.  Prints the medians of N runs in milliseconds:
 * "open first-read first-write".  Usage: open-latency IMAGE N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vdisk.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 5;
	double *ms = calloc(3 * (n > 0 ? n : 1), sizeof(*ms));
	struct errmsg err = {{0}};
	void *buf = aligned_alloc(4096, 4096);

	if (argc < 2 || n < 1 || !ms || !buf) {
		fprintf(stderr, "usage: open-latency IMAGE N\n");
		return 2;
	}
	memset(buf, 0x5a, 4096);
	for (int i = 0; i < n; i++) {
		struct vd_open_opts oo;
		struct vd_image *img;
		uint64_t off;
		double t0 = now_ms(), t1, t2;

		vd_open_opts_init(&oo);
		oo.flags = VD_OPEN_RDWR;
		if (vd_open(argv[1], &oo, &img, &err) < 0) {
			fprintf(stderr, "open-latency: %s\n", err.msg);
			return 1;
		}
		t1 = now_ms();
		/* Somewhere in the middle of the disk, a different place each run. */
		off = (vd_size_bytes(img) / 2 + (uint64_t)i * (1u << 20)) % vd_size_bytes(img);
		off &= ~4095ull;
		if (vd_pread(img, buf, 4096, off) < 0) {
			fprintf(stderr, "open-latency: read failed\n");
			return 1;
		}
		t2 = now_ms();
		if (vd_pwrite(img, buf, 4096, off) < 0) {
			fprintf(stderr, "open-latency: write failed\n");
			return 1;
		}
		ms[i] = t1 - t0;
		ms[n + i] = t2 - t1;
		ms[2 * n + i] = now_ms() - t2;
		if (vd_close(img) < 0) {
			fprintf(stderr, "open-latency: close failed\n");
			return 1;
		}
	}
	for (int k = 0; k < 3; k++) {
		qsort(ms + k * n, n, sizeof(*ms), cmp_double);
		printf("%.3f%s", ms[k * n + n / 2], k < 2 ? " " : "\n");
	}
	free(ms);
	free(buf);
	return 0;
}
