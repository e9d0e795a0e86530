/* SPDX-License-Identifier: MIT */
/* repair_prop.c: the property check --repair must keep (issue 11), over
 * the seed corpus and deterministic mutants of it.  For each image, what
 * every guest cluster holds is read from the undamaged image; then each
 * mutant (refcount table entries aliased to another block, pointed at
 * metadata, at data or past the file; refcounts, L1 and L2 entries
 * overwritten; bytes flipped in any table) is opened read-write and:
 *
 *   1. every guest cluster that reads back as in the undamaged image before
 *      the repair still does after it;
 *   2. after the repair, check finds no leak and no corruption other than
 *      what repair reported it leaves (damage reached only through
 *      snapshots, section 11 of docs/vdisk-format.md);
 *   3. new writes (to clusters that read wrong, and to unallocated ones)
 *      change no cluster of step 1, before and after a reopen, and check
 *      stays as clean;
 *   4. the file does not grow past twice its size plus a few clusters.
 *
 *   repair_prop [-n MUTANTS] [-s SEED] FILE|DIR...
 *
 * The test suite runs 24 mutants per seed image; tests/fuzz/README.md
 * gives the longer run. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_target.h"
#include "memfile.h"

#define MAX_INPUT_BYTES (16u << 20)
/* New clusters written after a repair, at most, per kind (wrong and
 * unallocated): enough to reach freed clusters and the end of the file. */
#define MAX_NEW_WRITES 24u

struct totals {
	unsigned images, mutants, unopenable, refused, repaired, kept_clusters;
	unsigned open_refused; /* plain read-write opens refused as damaged */
};

struct subject {
	const char *name;
	const uint8_t *orig;
	size_t size;
	uint64_t disk_bytes;
	uint32_t cluster_bytes;
	uint64_t nclusters;     /* guest clusters */
	uint8_t *want;          /* the undamaged image's guest bytes */
	char what[160];         /* the mutation, for failure messages */
};

static void __attribute__((noreturn, format(printf, 2, 3)))
fail(const struct subject *s, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "repair_prop: %s, mutant '%s': ", s->name, s->what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* xorshift64*: the same mutants on every machine and run. */
static uint64_t rnd(uint64_t *st, uint64_t n)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return n ? (*st * 0x2545f4914f6cdd1dull) % n : 0;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

/* 'flags': of vd_open_opts; NULL 'err' is fine. */
static int open_image(const struct subject *s, struct memfile *mf, const uint8_t *bytes,
		      size_t size, unsigned flags, struct vd_image **imgp, struct errmsg *err)
{
	struct vd_open_opts oo;
	int ret = memfile_init(mf, bytes, size, 4 * (uint64_t)size + (64u << 20));

	if (ret < 0) {
		fail(s, "memfile: %s", strerror(-ret));
	}
	mf->keep_header = true;
	vd_open_opts_init(&oo);
	oo.flags = flags;
	ret = vd_open_with_ops(s->name, &oo, &memfile_ops, mf, imgp, err);
	if (ret < 0) {
		memfile_fini(mf);
	}
	return ret;
}

static bool cluster_is(struct vd_image *img, const struct subject *s, uint64_t g,
		       const uint8_t *want, uint8_t *buf)
{
	uint64_t off = g * s->cluster_bytes;
	uint64_t len = s->disk_bytes - off < s->cluster_bytes ? s->disk_bytes - off
							       : s->cluster_bytes;

	return vd_pread(img, buf, len, off) == 0 && memcmp(buf, want, len) == 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Reads the undamaged image's guest bytes once. */
static int load_subject(struct subject *s)
{
	struct vd_image *img;
	struct memfile mf;
	int ret;

	snprintf(s->what, sizeof(s->what), "none");
	ret = open_image(s, &mf, s->orig, s->size, 0, &img, NULL);
	if (ret < 0) {
		return ret;
	}
	s->disk_bytes = vd_size_bytes(img);
	s->cluster_bytes = vd_cluster_bytes(img);
	s->nclusters = (s->disk_bytes + s->cluster_bytes - 1) / s->cluster_bytes;
	s->want = calloc(1, s->disk_bytes + 1);
	if (!s->want || vd_pread(img, s->want, s->disk_bytes, 0) < 0) {
		fail(s, "cannot read the undamaged image");
	}
	vd_close(img);
	memfile_fini(&mf);
	return 0;
}

/* A cluster-aligned offset somewhere in the file, or just past it. */
static uint64_t some_cluster(uint64_t *st, const struct subject *s)
{
	uint64_t n = (s->size + s->cluster_bytes - 1) / s->cluster_bytes;

	return rnd(st, n + 2) * s->cluster_bytes;
}

/* One mutation of 'img' (a copy of the seed); says what in 's->what'. */
static void mutate(struct subject *s, uint8_t *img, uint64_t *st)
{
	uint64_t cb = s->cluster_bytes, rt = get64(img + 64), l1 = get64(img + 56);
	uint64_t rt_entries = (uint64_t)get32(img + 72) * cb / 8;
	uint64_t l1_entries = get32(img + 44), i = rnd(st, rt_entries), j, v;
	uint64_t rb0 = rt + 8 <= s->size ? get64(img + rt) : 0;

	switch (rnd(st, 8)) {
	case 0: /* issue 11: a far entry aliased to the first block */
		j = rnd(st, 2) ? rt_entries - 1 : 1 + rnd(st, rt_entries - 1);
		put64(img + rt + j * 8, rb0);
		snprintf(s->what, sizeof(s->what), "refcount table entry %" PRIu64 " = entry 0",
			 j);
		break;
	case 1: /* an entry pointing at some cluster, metadata or data */
		v = some_cluster(st, s);
		put64(img + rt + i * 8, v);
		snprintf(s->what, sizeof(s->what), "refcount table entry %" PRIu64 " = 0x%" PRIx64,
			 i, v);
		break;
	case 2: /* entry 0 moved onto another structure */
		v = some_cluster(st, s);
		put64(img + rt, v);
		snprintf(s->what, sizeof(s->what), "refcount table entry 0 = 0x%" PRIx64, v);
		break;
	case 3: /* a refcount of the first block overwritten */
		j = rnd(st, s->size / cb + 1);
		v = rnd(st, 3);
		if (rb0 && rb0 + cb <= s->size && j < cb / 2) {
			img[rb0 + 2 * j] = (uint8_t)v;
			img[rb0 + 2 * j + 1] = 0;
		}
		snprintf(s->what, sizeof(s->what), "refcount of cluster %" PRIu64 " = %" PRIu64,
			 j, v);
		break;
	case 4: /* an L1 entry pointing at some cluster */
		j = rnd(st, l1_entries);
		v = some_cluster(st, s);
		if (l1 + j * 8 + 8 <= s->size) {
			put64(img + l1 + j * 8, v);
		}
		snprintf(s->what, sizeof(s->what), "L1 entry %" PRIu64 " = 0x%" PRIx64, j, v);
		break;
	case 5: { /* an L2 entry of the first table pointing at some cluster */
		uint64_t l2 = l1 + 8 <= s->size ? get64(img + l1) & VD_L1_OFFSET_MASK : 0;

		j = rnd(st, cb / 8);
		v = some_cluster(st, s);
		if (l2 && l2 + cb <= s->size) {
			put64(img + l2 + j * 8, v);
		}
		snprintf(s->what, sizeof(s->what), "L2 entry %" PRIu64 " = 0x%" PRIx64, j, v);
		break;
	}
	default: { /* eight random bytes in the table region */
		uint64_t at = cb + rnd(st, s->size > cb ? s->size - cb : 1);

		at = at + 8 <= s->size ? at & ~7ull : 512;
		v = rnd(st, 2) ? rnd(st, 1ull << 62) : rnd(st, 1u << 16);
		put64(img + at, v);
		snprintf(s->what, sizeof(s->what), "bytes 0x%" PRIx64 " = 0x%" PRIx64, at, v);
		break;
	}
	}
	fuzz_fix_checksums(img, s->size);
}

static void print_sentence(void *arg, const char *sentence)
{
	fprintf(stderr, "repair_prop: %s: %s\n", (const char *)arg, sentence);
}

/* Step 2: the repaired image checks as clean as repair promised. */
static void expect_clean(const struct subject *s, struct vd_image *img, uint64_t left)
{
	struct vd_check_result r;

	if (vd_check(img, 0, &r, NULL, NULL, NULL) < 0) {
		fail(s, "check after the repair failed");
	}
	if (r.leaks || r.corruptions > left) {
		vd_check(img, 0, &r, print_sentence, (void *)"check", NULL);
		fail(s, "after the repair check finds %" PRIu64 " leaks and %" PRIu64
		     " corruptions (%" PRIu64 " left unrepaired)", r.leaks, r.corruptions, left);
	}
}

static void verify_kept(const struct subject *s, struct vd_image *img, const uint8_t *good,
			const uint8_t *fill, uint8_t *buf, const char *when)
{
	for (uint64_t g = 0; g < s->nclusters; g++) {
		const uint8_t *want = fill[g] ? buf + s->cluster_bytes : s->want + g * s->cluster_bytes;

		if (fill[g]) {
			memset(buf + s->cluster_bytes, fill[g], s->cluster_bytes);
		}
		if ((good[g] || fill[g]) && !cluster_is(img, s, g, want, buf)) {
			fail(s, "guest cluster %" PRIu64 " changed %s", g, when);
		}
	}
}

/* Step 3: writes to clusters that read wrong and to unallocated ones. */
static void write_new(const struct subject *s, struct vd_image *img, const uint8_t *good,
		      uint8_t *fill, uint8_t *buf)
{
	unsigned wrong = 0, empty = 0;
	int ret;

	for (uint64_t g = 0; g < s->nclusters; g++) {
		uint64_t off = g * s->cluster_bytes;
		uint64_t len = s->disk_bytes - off < s->cluster_bytes ? s->disk_bytes - off
								       : s->cluster_bytes;
		bool was_empty = all_zero(s->want + off, len);

		if ((good[g] && !was_empty) || (!good[g] && wrong == MAX_NEW_WRITES) ||
		    (good[g] && empty == MAX_NEW_WRITES)) {
			continue;
		}
		*(good[g] ? &empty : &wrong) += 1;
		fill[g] = (uint8_t)(0x80 | (g % 127));
		memset(buf, fill[g], len);
		ret = vd_pwrite(img, buf, len, off);
		if (ret == -EFBIG) {
			fail(s, "writing guest cluster %" PRIu64 " grows the file past %" PRIu64
			     " bytes", g, 4 * (uint64_t)s->size + (64u << 20));
		}
		if (ret < 0) {
			fill[g] = 0; /* refused (EUCLEAN, ENOSPC): no harm done */
		}
	}
	if (vd_flush(img) < 0) {
		fail(s, "flush after the new writes failed");
	}
}

static void verify_open(const struct subject *s, struct vd_image *img, const uint8_t *good,
			uint8_t *buf, const char *when)
{
	for (uint64_t g = 0; g < s->nclusters; g++) {
		if (good[g] && !cluster_is(img, s, g, s->want + g * s->cluster_bytes, buf)) {
			fail(s, "guest cluster %" PRIu64 " changed %s", g, when);
		}
	}
}

/* Step 0: a plain read-write open (which finishes an interrupted snapshot
 * deletion) keeps every cluster that reads back, or refuses the image as
 * damaged, in one sentence. */
static void plain_open(const struct subject *s, struct totals *t, const uint8_t *bytes,
		       const uint8_t *good, uint8_t *buf)
{
	struct errmsg err = {{0}};
	struct vd_image *img;
	struct memfile mf;
	uint8_t *after;
	uint64_t size;
	int ret = open_image(s, &mf, bytes, s->size, VD_OPEN_RDWR, &img, &err);

	if (ret == -EUCLEAN) {
		if (!err.msg[0]) {
			fail(s, "the read-write open refused the image without a message");
		}
		t->open_refused++;
		return;
	}
	if (ret < 0) {
		return; /* as the open for the repair might have: not this test's concern */
	}
	verify_open(s, img, good, buf, "by a read-write open");
	/* What the open changed reaches the file at the checkpoint. */
	if (vd_close(img) < 0) {
		fail(s, "close after a read-write open failed");
	}
	size = mf.size_bytes;
	after = memfile_bytes(&mf);
	memfile_fini(&mf);
	if (!after || open_image(s, &mf, after, size, 0, &img, NULL) < 0) {
		fail(s, "the image does not open again after a read-write open");
	}
	verify_open(s, img, good, buf, "after a read-write open and a close");
	vd_close(img);
	memfile_fini(&mf);
	free(after);
}

static void run_mutant(struct subject *s, struct totals *t, const uint8_t *bytes)
{
	uint8_t *good = calloc(s->nclusters, 1), *fill = calloc(s->nclusters, 1);
	uint8_t *buf = malloc(2 * (size_t)s->cluster_bytes);
	struct vd_check_result res;
	struct errmsg err = {{0}};
	struct vd_image *img;
	struct memfile mf;
	uint8_t *after;
	uint64_t left, size;

	if (!good || !fill || !buf) {
		fail(s, "out of memory");
	}
	t->mutants++;
	/* As 'vdisk check --repair' opens: an interrupted snapshot deletion
	 * is left to the repair (the open would go through the damage). */
	if (open_image(s, &mf, bytes, s->size, VD_OPEN_RDWR | VD_OPEN_NO_RESUME, &img, NULL) < 0) {
		t->unopenable++;
		goto out;
	}
	for (uint64_t g = 0; g < s->nclusters; g++) {
		good[g] = cluster_is(img, s, g, s->want + g * s->cluster_bytes, buf);
	}
	plain_open(s, t, bytes, good, buf);
	if (vd_check(img, VD_CHECK_REPAIR, &res, NULL, NULL, &err) < 0) {
		/* A refusal must say why, in one sentence. */
		if (!err.msg[0]) {
			fail(s, "repair failed without a message");
		}
		fprintf(stderr, "repair_prop: %s, mutant '%s': repair refused: %s\n", s->name,
			s->what, err.msg);
		t->refused++;
		vd_close(img);
		memfile_fini(&mf);
		goto out;
	}
	t->repaired++;
	left = res.corruptions - res.corruptions_fixed;
	verify_kept(s, img, good, fill, buf, "by the repair");
	expect_clean(s, img, left);
	write_new(s, img, good, fill, buf);
	verify_kept(s, img, good, fill, buf, "by new writes");
	expect_clean(s, img, left);
	if (vd_close(img) < 0) {
		fail(s, "close after the repair failed");
	}
	size = mf.size_bytes;
	if (size > 2 * (uint64_t)s->size + 64ull * s->cluster_bytes) {
		fail(s, "the file grew from %zu to %" PRIu64 " bytes", s->size, size);
	}
	after = memfile_bytes(&mf);
	memfile_fini(&mf);
	if (!after || open_image(s, &mf, after, size, VD_OPEN_RDWR, &img, NULL) < 0) {
		fail(s, "the repaired image does not open again");
	}
	verify_kept(s, img, good, fill, buf, "after a reopen");
	expect_clean(s, img, left);
	for (uint64_t g = 0; g < s->nclusters; g++) {
		t->kept_clusters += good[g] && !fill[g];
	}
	vd_close(img);
	memfile_fini(&mf);
	free(after);
out:
	free(good);
	free(fill);
	free(buf);
}

static void run_file(const char *path, unsigned nmutants, uint64_t seed, struct totals *t)
{
	struct subject s = {.name = path};
	uint8_t *orig, *copy;
	struct stat st;
	FILE *f = fopen(path, "rb");

	if (!f || fstat(fileno(f), &st) < 0 || st.st_size > MAX_INPUT_BYTES) {
		fprintf(stderr, "repair_prop: %s: cannot read or too large\n", path);
		exit(1);
	}
	s.size = (size_t)st.st_size;
	orig = malloc(s.size + 1);
	copy = malloc(s.size + 1);
	if (!orig || !copy || fread(orig, 1, s.size, f) != s.size) {
		fprintf(stderr, "repair_prop: %s: cannot read\n", path);
		exit(1);
	}
	fclose(f);
	s.orig = orig;
	if (s.size < 4096 || load_subject(&s) < 0) {
		fprintf(stderr, "repair_prop: %s: not an image that opens\n", path);
		exit(1);
	}
	t->images++;
	for (unsigned m = 0; m < nmutants; m++) {
		uint64_t st64 = seed ^ (0x9e3779b97f4a7c15ull * (m + 1)) ^ s.size;

		memcpy(copy, orig, s.size);
		mutate(&s, copy, &st64);
		run_mutant(&s, t, copy);
	}
	free(s.want);
	free(orig);
	free(copy);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .vd files of a directory, in name order so runs repeat. */
static void run_dir(const char *dir, unsigned nmutants, uint64_t seed, struct totals *t)
{
	char *names[256];
	size_t n = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d) {
		run_file(dir, nmutants, seed, t);
		return;
	}
	while ((de = readdir(d)) && n < 256) {
		size_t len = strlen(de->d_name);

		if (len > 3 && !strcmp(de->d_name + len - 3, ".vd")) {
			if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
				exit(1);
			}
			n++;
		}
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		run_file(names[i], nmutants, seed, t);
		free(names[i]);
	}
}

int main(int argc, char **argv)
{
	struct totals t = {0};
	unsigned nmutants = 24;
	uint64_t seed = 11;
	int opt;

	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n') {
			nmutants = (unsigned)strtoul(optarg, NULL, 0);
		} else if (opt == 's') {
			seed = strtoull(optarg, NULL, 0);
		} else {
			fprintf(stderr, "usage: repair_prop [-n MUTANTS] [-s SEED] FILE|DIR...\n");
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		run_dir(argv[i], nmutants, seed, &t);
	}
	printf("repair_prop: %u images, %u mutants: %u did not open, %u repairs refused, "
	       "%u repaired; %u guest clusters kept through repair and new writes; "
	       "%u plain read-write opens refused as damaged\n",
	       t.images, t.mutants, t.unopenable, t.refused, t.repaired, t.kept_clusters,
	       t.open_refused);
	return t.images ? 0 : 1;
}
