/* SPDX-License-Identifier: MIT */
/* replay_main.c: a fuzz target without libFuzzer, for the normal test
 * suite (gcc, ASan): fuzz_replay (fuzz_image.c) and fuzz_qcow2_replay
 * (fuzz_qcow2.c).  Runs LLVMFuzzerTestOneInput over every
 * file given or found in the directories given, and over deterministic
 * mutations of each: bit flips, bytes set to 0 or 0xff, truncations,
 * random 8-byte overwrites and boundary values in the header fields and in
 * the tables the header points to.  So the suite explores damaged images
 * on every run, not only when someone runs the fuzzer. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_target.h"

/* Inputs larger than this are skipped (libFuzzer runs use -max_len 4 MiB). */
#define MAX_INPUT_BYTES (16u << 20)
#define MAX_STACKED 4u

/* ASan and UBSan call this before they exit on a report; absent without
 * sanitizers, as is LeakSanitizer's check.  A check costs as much as a run,
 * so it is made after each file (its mutations included), or with -l after
 * each input, to name the input that leaked. */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static char current[600];
static const char *prog = "fuzz_replay";

static void say_current(void)
{
	if (write(STDERR_FILENO, current, strlen(current)) < 0) {
		/* Dying anyway. */
	}
}

static void on_abort(int sig)
{
	say_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* xorshift64*: the same mutations on every machine and run. */
static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return n ? rnd_next(s) % n : 0;
}

/* A position inside the file, in one of the regions more often than not. */
static uint64_t pick_pos(uint64_t *s, const uint8_t *img, size_t size, uint64_t align)
{
	struct fuzz_region r[8];
	unsigned n = fuzz_regions(img, size, r, 8);
	uint64_t pos = rnd(s, size);

	if (rnd(s, 4)) {
		struct fuzz_region *g = &r[rnd(s, n)];

		if (g->off < size && g->bytes) {
			pos = g->off + rnd(s, g->bytes < size - g->off ? g->bytes : size - g->off);
		}
	}
	pos &= ~(align - 1);
	return pos + align <= size ? pos : 0;
}

/* Values that sit on the boundaries the parsers check. */
static uint64_t boundary_value(uint64_t *s, uint64_t old, size_t size)
{
	static const uint64_t fixed[] = {
		0, 1, 8, 0x1ff, 0x200, 0x1000, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
		0x100000000ull, 1ull << 56, (1ull << 56) + 512, 0x00fffffffffffe00ull,
		0x8000000000000000ull, UINT64_MAX,
	};
	switch (rnd(s, 6)) {
	case 0:
		return fixed[rnd(s, sizeof(fixed) / sizeof(fixed[0]))];
	case 1:
		return old + 1 - 2 * rnd(s, 2);
	case 2:
		return size + 512 * rnd(s, 3) - 512;
	case 3:
		return old << (1 + rnd(s, 8));
	case 4:
		return old ^ (1ull << rnd(s, 64));
	default:
		return rnd(s, size) & ~0x1ffull;
	}
}

static void set_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		p[i] = v >> (8 * i);
	}
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v |= (uint64_t)p[i] << (8 * i);
	}
	return v;
}

/* Applies one mutation to 'img' ('*sizep' bytes; may shrink). */
static void mutate_once(uint64_t *s, uint8_t *img, size_t *sizep)
{
	size_t size = *sizep;
	uint64_t pos;
	unsigned width;

	if (size < 8) {
		return;
	}
	switch (rnd(s, 8)) {
	case 0:
		pos = pick_pos(s, img, size, 1);
		img[pos] ^= 1u << rnd(s, 8);
		break;
	case 1:
		pos = pick_pos(s, img, size, 1);
		img[pos] = rnd(s, 2) ? 0xff : 0;
		break;
	case 2:
		/* Whole sectors or clusters gone, or a torn last sector. */
		*sizep = rnd(s, 2) ? size - rnd(s, size) : (size - 1) & ~(size_t)(rnd(s, 2) ? 511 : 4095);
		break;
	case 3:
	case 4:
		pos = pick_pos(s, img, size, 8);
		set_le(img + pos, rnd_next(s), 8);
		break;
	default:
		/* A header field (4 or 8 bytes, 4-aligned) or a table entry at a
		 * boundary value. */
		if (rnd(s, 3) == 0) {
			width = rnd(s, 2) ? 4 : 8;
			pos = rnd(s, 128 / 4) * 4;
		} else {
			width = 8;
			pos = pick_pos(s, img, size, 8);
		}
		if (pos + width <= size) {
			set_le(img + pos, boundary_value(s, get_le(img + pos, width), size), width);
		}
		break;
	}
}

static uint64_t name_hash(const char *path)
{
	const char *base = strrchr(path, '/');
	uint64_t h = 0xcbf29ce484222325ull;

	for (base = base ? base + 1 : path; *base; base++) {
		h = (h ^ (uint8_t)*base) * 0x100000001b3ull;
	}
	return h;
}

/* Builds mutation 'k' (0: the file itself) of 'orig' into 'out'. */
static size_t make_input(const char *path, const uint8_t *orig, size_t size, unsigned k,
			 uint8_t *out)
{
	uint64_t s = name_hash(path) ^ (k * 0x9e3779b97f4a7c15ull);
	unsigned n = 1 + rnd(&s, MAX_STACKED);

	memcpy(out, orig, size);
	if (k == 0) {
		return size;
	}
	rnd_next(&s);
	for (unsigned i = 0; i < n; i++) {
		mutate_once(&s, out, &size);
	}
	return size;
}

struct options {
	unsigned mutations;
	long only;              /* -1: all */
	const char *write_to;
	bool verbose;
	bool leak_each;
	unsigned files, runs;
};

static int read_file(const char *path, uint8_t **datap, size_t *sizep)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t n = 0;
	long len;

	if (!f) {
		return -errno;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && len <= MAX_INPUT_BYTES &&
	    fseek(f, 0, SEEK_SET) == 0) {
		data = malloc(len ? len : 1);
		n = data ? fread(data, 1, len, f) : 0;
	}
	fclose(f);
	if (!data || n != (size_t)len) {
		free(data);
		return -EIO;
	}
	*datap = data;
	*sizep = n;
	return 0;
}

static int write_input(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	bool ok = f && fwrite(data, 1, size, f) == size;

	if (f && fclose(f) != 0) {
		ok = false;
	}
	return ok ? 0 : -errno;
}

static void leak_check(void)
{
	if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check()) {
		say_current();
		exit(1);
	}
}

static int run_file(struct options *o, const char *path)
{
	uint8_t *orig = NULL, *input;
	size_t size = 0;
	int ret = read_file(path, &orig, &size);

	if (ret < 0) {
		fprintf(stderr, "%s: %s: cannot read: %s\n", prog, path, strerror(-ret));
		return ret;
	}
	input = malloc(size ? size : 1);
	for (unsigned k = 0; input && k <= o->mutations; k++) {
		size_t n;

		if (o->only >= 0 && k != (unsigned long)o->only) {
			continue;
		}
		n = make_input(path, orig, size, k, input);
		snprintf(current, sizeof(current), "%s: failed on %s mutation %u "
			 "(reproduce: %s -n %u -m %u -w OUT %s)\n", prog, path, k, prog, k, k, path);
		if (o->write_to) {
			fuzz_fix_checksums(input, n);
			ret = write_input(o->write_to, input, n);
			break;
		}
		if (o->verbose) {
			fprintf(stderr, "%s mutation %u: %zu bytes\n", path, k, n);
		}
		LLVMFuzzerTestOneInput(input, n);
		if (o->leak_each) {
			leak_check();
		}
		o->runs++;
	}
	snprintf(current, sizeof(current), "%s: leak in %s or its mutations 1-%u "
		 "(run with -l to name the input)\n", prog, path, o->mutations);
	leak_check();
	o->files++;
	free(input);
	free(orig);
	return input ? ret : -ENOMEM;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files of a directory, sorted (the run is the same whatever readdir's
 * order); a directory that does not exist holds nothing. */
static int run_dir(struct options *o, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;
	int ret = 0;

	if (!d) {
		return errno == ENOENT ? 0 : -errno;
	}
	while ((e = readdir(d))) {
		char **p;

		if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0) {
			continue;
		}
		p = realloc(names, (n + 1) * sizeof(*names));
		if (!p || asprintf(&p[n], "%s/%s", dir, e->d_name) < 0) {
			names = p ? p : names;
			ret = -ENOMEM;
			break;
		}
		names = p;
		n++;
	}
	closedir(d);
	if (n) {
		qsort(names, n, sizeof(*names), name_cmp);
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (ret == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
			ret = run_file(o, names[i]);
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

static int usage(void)
{
	fprintf(stderr, "usage: %s [-n COUNT] [-m INDEX] [-w OUT] [-lv] PATH...\n"
			"  PATH      an input file, or a directory of them (missing: empty)\n"
			"  -n COUNT  also run COUNT deterministic mutations of each input\n"
			"  -m INDEX  run only mutation INDEX (0: the input itself)\n"
			"  -w OUT    write that input, checksums fixed, to OUT instead of running it\n"
			"  -l        look for leaks after each input, not each file\n"
			"  -v        name each input as it runs\n", prog);
	return 2;
}

int main(int argc, char **argv)
{
	struct options o = {.only = -1};
	struct timespec t0, t1;
	int opt, ret = 0;

	prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	while ((opt = getopt(argc, argv, "n:m:w:lv")) != -1) {
		switch (opt) {
		case 'n':
			o.mutations = strtoul(optarg, NULL, 0);
			break;
		case 'm':
			o.only = strtol(optarg, NULL, 0);
			break;
		case 'w':
			o.write_to = optarg;
			break;
		case 'l':
			o.leak_each = true;
			break;
		case 'v':
			o.verbose = true;
			break;
		default:
			return usage();
		}
	}
	if (optind == argc || (o.write_to && (o.only < 0 || argc - optind != 1))) {
		return usage();
	}
	if (__sanitizer_set_death_callback) {
		__sanitizer_set_death_callback(say_current);
	}
	signal(SIGABRT, on_abort);
	signal(SIGSEGV, on_abort);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = optind; i < argc && ret == 0; i++) {
		struct stat st;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			ret = run_dir(&o, argv[i]);
		} else {
			ret = run_file(&o, argv[i]);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ret < 0) {
		fprintf(stderr, "%s: %s\n", prog, strerror(-ret));
		return 1;
	}
	if (!o.write_to) {
		printf("%s: %u inputs from %u files in %.1f s\n", prog, o.runs, o.files,
		       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	return 0;
}
