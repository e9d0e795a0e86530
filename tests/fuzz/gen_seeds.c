/* SPDX-License-Identifier: MIT */
/* gen_seeds.c: writes the fuzz seed corpus (tests/fuzz/corpus/) with the
 * real library: small valid images with data, discards, snapshots, and
 * images caught with their journal full (the bytes of an open writer's
 * file, or of one interrupted in the middle of deleting a snapshot).  Each
 * is made in a memfile (memfile.c), checked clean, and stored at the length
 * the library left it.  Rerun after a format change:
 *     fuzz_gen_seeds tests/fuzz/corpus */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memfile.h"

#define MIB (1024u * 1024)
#define MAX_CAPTURES 64u

/* The file's bytes at each sync, while capturing. */
struct captures {
	bool on;
	unsigned n;
	uint8_t *data[MAX_CAPTURES];
	uint64_t size[MAX_CAPTURES];
};

struct seed {
	struct memfile file;
	struct vd_image *img;
	uint32_t cluster_bytes;
	uint8_t *buf;
	struct captures cap;
	const char *dir;
	const char *name;
};

static void __attribute__((noreturn)) fail(const struct seed *s, const char *what, int ret)
{
	fprintf(stderr, "fuzz_gen_seeds: %s: %s: %s\n", s->name, what, strerror(-ret));
	exit(1);
}

static void must(const struct seed *s, const char *what, int ret)
{
	if (ret < 0) {
		fail(s, what, ret);
	}
}

static void capture(void *arg, const struct memfile *mf)
{
	struct captures *c = arg;
	uint64_t held = mf->size_bytes < mf->cap_bytes ? mf->size_bytes : mf->cap_bytes;

	if (!c->on || c->n == MAX_CAPTURES) {
		return;
	}
	c->data[c->n] = calloc(1, mf->size_bytes ? mf->size_bytes : 1);
	if (!c->data[c->n]) {
		return;
	}
	memcpy(c->data[c->n], mf->data, held);
	c->size[c->n++] = mf->size_bytes;
}

static void begin_sc(struct seed *s, const char *name, uint64_t size_bytes,
		     uint32_t cluster_bytes, bool subclusters)
{
	struct vd_create_opts co;
	struct vd_open_opts oo;

	s->name = name;
	s->cluster_bytes = cluster_bytes;
	must(s, "memfile", memfile_init(&s->file, NULL, 0, 64ull * MIB));
	s->file.sync_hook = capture;
	s->file.sync_hook_arg = &s->cap;
	vd_create_opts_init(&co);
	co.size_bytes = size_bytes;
	co.cluster_bytes = cluster_bytes;
	co.journal_bytes = 8 * cluster_bytes;
	co.subclusters = subclusters;
	must(s, "create", vd_create_with_ops(name, &co, &memfile_ops, &s->file, NULL));
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	must(s, "open", vd_open_with_ops(name, &oo, &memfile_ops, &s->file, &s->img, NULL));
}

static void begin(struct seed *s, const char *name, uint64_t size_bytes, uint32_t cluster_bytes)
{
	begin_sc(s, name, size_bytes, cluster_bytes, false);
}

/* Guest data that differs per sector, so misplaced sectors show. */
static void put(struct seed *s, uint64_t off, size_t len, uint8_t tag)
{
	for (size_t i = 0; i < len; i++) {
		s->buf[i] = (uint8_t)(tag + (i / VD_SECTOR_BYTES) * 7 + (i & 0x3f));
	}
	must(s, "write", vd_pwrite(s->img, s->buf, len, off));
}

static void snap(struct seed *s, const char *name)
{
	must(s, name, vd_snapshot_create(s->img, name, NULL));
}

/* Opens the stored bytes read-only, as the fuzz target does, and insists
 * that they check clean. */
static void verify(const struct seed *s, const uint8_t *data, uint64_t size)
{
	struct vd_check_result res;
	struct vd_image *img;
	struct memfile mf;

	must(s, "memfile", memfile_init(&mf, data, size, size));
	mf.read_only = true;
	must(s, "reopen", vd_open_with_ops(s->name, NULL, &memfile_ops, &mf, &img, NULL));
	must(s, "check", vd_check(img, 0, &res, NULL, NULL, NULL));
	if (res.corruptions || res.leaks) {
		fail(s, "check found damage", -EUCLEAN);
	}
	vd_close(img);
	memfile_fini(&mf);
}

static void store(const struct seed *s, const uint8_t *data, uint64_t size)
{
	char path[512];
	FILE *f;

	verify(s, data, size);
	snprintf(path, sizeof(path), "%s/%s.vd", s->dir, s->name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		fail(s, path, -errno);
	}
	printf("%s: %llu bytes\n", path, (unsigned long long)size);
}

/* Stores the first 'size' bytes of the file as it is now. */
static void store_now(struct seed *s, uint64_t size)
{
	uint8_t *copy = memfile_bytes(&s->file);

	if (!copy) {
		fail(s, "copy", -ENOMEM);
	}
	store(s, copy, size < s->file.size_bytes ? size : s->file.size_bytes);
	free(copy);
}

/* The file as an open writer leaves it: JOURNAL_DIRTY set, transactions in
 * the journal.  The file grows ahead of use (alloc.c); stored without that
 * zero tail, it is the state of a writer that grew it less. */
static void store_open(struct seed *s)
{
	must(s, "flush", vd_flush(s->img));
	store_now(s, vd_cluster_off(s->img, s->img->end_clusters));
}

static void end(struct seed *s, bool keep)
{
	must(s, "close", vd_close(s->img));
	if (keep) {
		store_now(s, s->file.size_bytes);
	}
	for (unsigned i = 0; i < s->cap.n; i++) {
		free(s->cap.data[i]);
	}
	memset(&s->cap, 0, sizeof(s->cap));
	memfile_fini(&s->file);
}

static void seed_plain(struct seed *s)
{
	begin(s, "c4k-empty", 1 * MIB, 4096);
	end(s, true);

	begin(s, "c4k-data", 4 * MIB, 4096);
	put(s, 0, 8192, 1);
	put(s, MIB + 512, 4096, 2);
	put(s, 4 * MIB - 4096, 4096, 3);
	end(s, true);

	begin(s, "c4k-odd-size", MIB + 1536, 4096);
	put(s, 0, 512, 4);
	put(s, MIB, 1536, 5);
	end(s, true);

	/* 64 KiB clusters: 12 of metadata, so one data cluster more or less
	 * is 7% of the file; these two keep to one. */
	begin(s, "c64k-data", 8 * MIB, 65536);
	put(s, 0, 512, 6);
	put(s, 65536 - 1024, 1024, 7);
	end(s, true);
}

/* Subclusters (128 KiB clusters of 32 x 4 KiB): every subcluster state in
 * one table, a partly filled cluster, and a cluster copied after a
 * snapshot (all 32 allocated).  The file is mostly metadata clusters. */
static void seed_subclusters(struct seed *s)
{
	begin_sc(s, "c128k-subclusters", 4 * MIB, 128 * 1024, true);
	put(s, 4096, 4096, 10);
	put(s, 131072 + 512, 1024, 11);
	put(s, 262144, 65536, 12);
	must(s, "discard", vd_discard(s->img, 262144 + 8192, 8192));
	must(s, "zeroes", vd_write_zeroes(s->img, 262144 + 32768 + 512, 8192));
	snap(s, "s1");
	put(s, 4096 + 512, 512, 13);
	end(s, true);
}

static void seed_discards(struct seed *s)
{
	begin(s, "c4k-discard", 2 * MIB, 4096);
	put(s, 0, 65536, 8);
	must(s, "discard", vd_discard(s->img, 8192, 16384));
	must(s, "zeroes", vd_write_zeroes(s->img, 32768 + 512, 8192));
	put(s, MIB, 16384, 9);
	must(s, "discard", vd_discard(s->img, MIB + 4096, 4096));
	end(s, true);
}

static void seed_snapshots(struct seed *s)
{
	begin(s, "c4k-snapshots", 2 * MIB, 4096);
	put(s, 0, 16384, 10);
	snap(s, "base");
	put(s, 4096, 4096, 11);
	put(s, MIB, 8192, 12);
	snap(s, "second");
	put(s, 8192 + 512, 512, 13);
	end(s, true);

	begin(s, "c4k-revert-delete", 2 * MIB, 4096);
	put(s, 0, 8192, 14);
	snap(s, "a");
	put(s, 4096, 8192, 15);
	snap(s, "b");
	must(s, "revert", vd_snapshot_revert(s->img, "a", NULL));
	must(s, "delete", vd_snapshot_delete(s->img, "b", NULL));
	put(s, 2 * MIB - 4096, 4096, 16);
	end(s, true);

	/* Four L2 tables, two of them shared with a snapshot. */
	begin(s, "c4k-8m-tables", 8 * MIB, 4096);
	for (unsigned i = 0; i < 4; i++) {
		put(s, i * 2ull * MIB + 4096 * i, 4096, 17 + i);
	}
	snap(s, "tables");
	put(s, 2 * MIB, 4096, 21);
	end(s, true);
}

static void seed_journals(struct seed *s)
{
	begin(s, "c4k-journal", 2 * MIB, 4096);
	put(s, 0, 4096, 22);
	put(s, MIB, 8192, 23);
	must(s, "discard", vd_discard(s->img, MIB, 4096));
	store_open(s);
	end(s, false);

	begin(s, "c4k-journal-snap", 2 * MIB, 4096);
	put(s, 0, 8192, 24);
	snap(s, "s");
	put(s, 4096, 4096, 25);
	store_open(s);
	end(s, false);

	/* Enough transactions to fill the journal past a checkpoint: stale
	 * ones with old sequence numbers lie after the live ones.  Writes and
	 * discards over a few clusters change metadata without using much
	 * space. */
	begin(s, "c4k-journal-wrapped", 4 * MIB, 4096);
	for (unsigned i = 0; i < 300; i++) {
		uint64_t off = (uint64_t)(i * 7 % 40) * 4096 * 3;

		put(s, off, 512, 26 + i);
		if (i % 3 == 2) {
			must(s, "discard", vd_discard(s->img, off, 4096));
		}
		if (i % 5 == 4) {
			must(s, "flush", vd_flush(s->img));
		}
	}
	if (s->img->journal_seq < s->img->hdr.journal_seq + 2 || s->img->hdr.journal_seq < 3) {
		fail(s, "the journal did not wrap", -EINVAL);
	}
	store_open(s);
	end(s, false);

	begin(s, "c64k-journal", MIB, 65536);
	put(s, 0, 4096, 27);
	put(s, 8192 + 512, 1024, 28);
	store_open(s);
	end(s, false);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* A deletion caught after the transaction that flags the snapshot
 * DELETING: a writer opening the image must finish it. */
static void seed_deleting(struct seed *s)
{
	struct vd_image *img;
	struct memfile mf;
	unsigned i;

	begin(s, "c4k-deleting", 8 * MIB, 4096);
	for (i = 0; i < 4; i++) {
		put(s, i * 2ull * MIB, 8192, 30 + i);
	}
	snap(s, "doomed");
	for (i = 0; i < 4; i++) {
		put(s, i * 2ull * MIB + 4096, 4096, 34 + i);
	}
	must(s, "flush", vd_flush(s->img));
	s->cap.on = true;
	must(s, "delete", vd_snapshot_delete(s->img, "doomed", NULL));
	s->cap.on = false;
	for (i = 0; i < s->cap.n; i++) {
		must(s, "memfile", memfile_init(&mf, s->cap.data[i], s->cap.size[i], s->cap.size[i]));
		mf.read_only = true;
		must(s, "open capture", vd_open_with_ops(s->name, NULL, &memfile_ops, &mf, &img, NULL));
		if (img->nsnaps > (uint32_t)vd_snapshot_count(img)) {
			vd_close(img);
			memfile_fini(&mf);
			break;
		}
		vd_close(img);
		memfile_fini(&mf);
	}
	if (i == s->cap.n) {
		fail(s, "no state with the snapshot flagged DELETING", -ENOENT);
	}
	/* Its tail is the file's growth ahead of use: zeros nothing uses. */
	while (s->cap.size[i] > 4096 && all_zero(s->cap.data[i] + s->cap.size[i] - 4096, 4096)) {
		s->cap.size[i] -= 4096;
	}
	store(s, s->cap.data[i], s->cap.size[i]);
	end(s, false);
}

int main(int argc, char **argv)
{
	struct seed s = {0};

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_gen_seeds DIR\n");
		return 2;
	}
	s.dir = argv[1];
	s.buf = malloc(65536);
	if (!s.buf) {
		return 1;
	}
	seed_plain(&s);
	seed_discards(&s);
	seed_snapshots(&s);
	seed_journals(&s);
	seed_deleting(&s);
	seed_subclusters(&s);
	free(s.buf);
	return 0;
}
