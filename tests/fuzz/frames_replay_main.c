/* SPDX-License-Identifier: MIT */
/* frames_replay_main.c: the frame fuzz target (fuzz_frames.c) without
 * libFuzzer, for the normal test suite (gcc, ASan, UBSan).  Runs
 * LLVMFuzzerTestOneInput over every file given or found in the directories
 * given, and over deterministic mutations of each: bit flips, bytes set to
 * 0, 0xff or a random value, random bytes inserted or appended, ranges
 * deleted or repeated (so ops and frames come again, shifted), and
 * truncations.  The input encoding is a byte stream of small picks, so
 * every mutation is another valid run of the switch. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_frames.h"

/* libFuzzer runs use -max_len 65536; mutations may add a little. */
#define MAX_INPUT_BYTES (1u << 20)
#define MAX_GROWTH 256u
#define MAX_STACKED 4u

extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static char current[600];

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

/* Applies one mutation to 'in' ('*sizep' bytes, room for MAX_GROWTH more
 * per mutation). */
static void mutate_once(uint64_t *s, uint8_t *in, size_t *sizep)
{
	size_t size = *sizep, pos = rnd(s, size + 1), n;

	switch (rnd(s, 8)) {
	case 0:
		if (pos < size) {
			in[pos] ^= (uint8_t)(1u << rnd(s, 8));
		}
		break;
	case 1:
		if (pos < size) {
			in[pos] = (uint8_t[]){0, 0xff, 0x80, 0x7f}[rnd(s, 4)];
		}
		break;
	case 2:
		if (pos < size) {
			in[pos] = (uint8_t)rnd_next(s);
		}
		break;
	case 3: /* insert random bytes */
		n = 1 + rnd(s, 16);
		memmove(in + pos + n, in + pos, size - pos);
		for (size_t i = 0; i < n; i++) {
			in[pos + i] = (uint8_t)rnd_next(s);
		}
		*sizep = size + n;
		break;
	case 4: /* delete a range */
		n = rnd(s, size - pos + 1);
		n = n > 64 ? 64 : n;
		memmove(in + pos, in + pos + n, size - pos - n);
		*sizep = size - n;
		break;
	case 5: /* repeat a range where it is */
		n = rnd(s, size - pos + 1);
		n = n > MAX_GROWTH ? MAX_GROWTH : n;
		memmove(in + pos + n, in + pos, size - pos);
		*sizep = size + n;
		break;
	case 6:
		*sizep = pos;
		break;
	default: /* append random bytes: more ops */
		n = 1 + rnd(s, 64);
		for (size_t i = 0; i < n; i++) {
			in[size + i] = (uint8_t)rnd_next(s);
		}
		*sizep = size + n;
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

/* Builds mutation 'k' (0: the file itself) of 'orig' into 'out', which has
 * room for MAX_STACKED * MAX_GROWTH bytes more. */
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
	long only; /* -1: all */
	const char *write_to;
	bool verbose;
	unsigned files, runs;
};

static int read_input(const char *path, uint8_t **datap, size_t *sizep)
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
	int ret = read_input(path, &orig, &size);

	if (ret < 0) {
		fprintf(stderr, "fuzz_frames_replay: %s: cannot read: %s\n", path, strerror(-ret));
		return ret;
	}
	input = malloc(size + MAX_STACKED * MAX_GROWTH);
	for (unsigned k = 0; input && k <= o->mutations; k++) {
		size_t n;

		if (o->only >= 0 && k != (unsigned long)o->only) {
			continue;
		}
		n = make_input(path, orig, size, k, input);
		snprintf(current, sizeof(current),
			 "fuzz_frames_replay: failed on %s mutation %u "
			 "(write it out: fuzz_frames_replay -m %u -w OUT %s)\n",
			 path, k, k, path);
		if (o->write_to) {
			ret = write_input(o->write_to, input, n);
			break;
		}
		if (o->verbose) {
			fprintf(stderr, "%s mutation %u: %zu bytes\n", path, k, n);
		}
		LLVMFuzzerTestOneInput(input, n);
		o->runs++;
	}
	snprintf(current, sizeof(current), "fuzz_frames_replay: leak in %s or its mutations\n",
		 path);
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

/* Files of a directory, sorted; a directory that does not exist holds
 * nothing. */
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
	fprintf(stderr, "usage: fuzz_frames_replay [-n COUNT] [-m INDEX] [-w OUT] [-v] PATH...\n"
			"  PATH      an input file, or a directory of them (missing: empty)\n"
			"  -n COUNT  also run COUNT deterministic mutations of each input\n"
			"  -m INDEX  run only mutation INDEX (0: the input itself)\n"
			"  -w OUT    write that input to OUT instead of running it\n"
			"  -v        name each input as it runs\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct options o = {.only = -1};
	struct timespec t0, t1;
	int opt, ret = 0;

	while ((opt = getopt(argc, argv, "n:m:w:v")) != -1) {
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
	signal(SIGILL, on_abort);
	signal(SIGTRAP, on_abort);
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
		fprintf(stderr, "fuzz_frames_replay: %s\n", strerror(-ret));
		return 1;
	}
	if (!o.write_to) {
		printf("fuzz_frames_replay: %u inputs from %u files, %llu frames, in %.1f s\n",
		       o.runs, o.files, (unsigned long long)fuzz_frames_count(),
		       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	return 0;
}
