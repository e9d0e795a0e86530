/* SPDX-License-Identifier: MIT */
/* snapshot-latency.c: times vd_snapshot_create alone (open and close left
 * out), for tests/bench/bench-snapshot.py.  Prints the median of N runs in
 * milliseconds.  Usage: snapshot-latency IMAGE N */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vdisk.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct vd_open_opts oo;
	struct vd_image *img;
	struct errmsg err = {{0}};
	int n = argc > 2 ? atoi(argv[2]) : 5;
	double *ms = calloc(n > 0 ? n : 1, sizeof(*ms));

	if (argc < 2 || n < 1 || !ms) {
		fprintf(stderr, "usage: snapshot-latency IMAGE N\n");
		return 2;
	}
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	if (vd_open(argv[1], &oo, &img, &err) < 0) {
		fprintf(stderr, "snapshot-latency: %s\n", err.msg);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		char name[32];

		snprintf(name, sizeof(name), "lat%d", i);
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (vd_snapshot_create(img, name, &err) < 0) {
			fprintf(stderr, "snapshot-latency: %s\n", err.msg);
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		ms[i] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
	}
	qsort(ms, n, sizeof(*ms), cmp_double);
	printf("%.3f\n", ms[n / 2]);
	free(ms);
	return vd_close(img) < 0;
}
