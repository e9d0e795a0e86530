/* SPDX-License-Identifier: MIT */
/* test_crash.c: the crash-state harness (after SQLite's test6.c).  The image
 * lives in an in-memory file whose every write, flush, punch and truncate is
 * recorded below the format code.  For every point of the recorded stream,
 * the harness builds crash states: everything up to the last flush is
 * durable, and of the writes after it all, none, a random subset, or a
 * random subset in reverse order survive.  Each state is opened read-only
 * (journal replayed in memory) and read-write (replayed into the file), must
 * check clean, and every sector must hold what the last completed flush
 * guaranteed or a value written after that flush. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

enum op_type { OP_WRITE, OP_SYNC, OP_PUNCH, OP_TRUNC };

struct op {
	enum op_type type;
	int file;                /* which file, when two share a log */
	uint64_t off, len;
	uint8_t *data;
};

struct mfile {
	uint8_t *data;
	uint64_t size, cap;
	/* every byte at or past it is zero: copies stop there (a file that
	 * libvdisk grew by truncation, 8 MiB at a time with 128 KiB clusters,
	 * is mostly zeros, and copying them dominated the subcluster runs) */
	uint64_t wend;
	bool record;
	struct op *ops;
	size_t nops, cap_ops;
	int id;
	struct mfile *log;       /* the file whose ops array records this one's */
	struct mfile *backing;   /* what the image's backing name opens */
};

static void mf_reserve(struct mfile *f, uint64_t size)
{
	if (size > f->cap && !f->data) {
		/* calloc maps large buffers lazily: the zeros of a file grown by
		 * truncation (libvdisk grows in steps of 64 clusters, 8 MiB with
		 * the subcluster runs' 128 KiB clusters) cost nothing until used. */
		f->data = calloc(size, 1);
		assert_non_null(f->data);
		f->cap = size;
	} else if (size > f->cap) {
		uint64_t cap = size * 2;

		f->data = realloc(f->data, cap);
		assert_non_null(f->data);
		memset(f->data + f->cap, 0, cap - f->cap);
		f->cap = cap;
	}
}

static void mf_apply(struct mfile *f, const struct op *op)
{
	switch (op->type) {
	case OP_WRITE:
		mf_reserve(f, op->off + op->len);
		memcpy(f->data + op->off, op->data, op->len);
		if (op->off + op->len > f->size) {
			f->size = op->off + op->len;
		}
		if (op->off + op->len > f->wend) {
			f->wend = op->off + op->len;
		}
		break;
	case OP_PUNCH:
		if (op->off < f->size) {
			uint64_t n = op->off + op->len > f->size ? f->size - op->off : op->len;

			memset(f->data + op->off, 0, n);
		}
		break;
	case OP_TRUNC:
		mf_reserve(f, op->off);
		if (op->off < f->size) {
			memset(f->data + op->off, 0, f->size - op->off);
		}
		f->size = op->off;
		f->wend = f->wend < op->off ? f->wend : op->off;
		break;
	case OP_SYNC:
		break;
	}
}

static void mf_do(struct mfile *f, enum op_type type, uint64_t off, uint64_t len,
		  const void *data)
{
	struct op op = {.type = type, .file = f->id, .off = off, .len = len};

	if (data) {
		op.data = malloc(len);
		assert_non_null(op.data);
		memcpy(op.data, data, len);
	}
	mf_apply(f, &op);
	if (!f->record) {
		free(op.data);
		return;
	}
	f = f->log ? f->log : f;
	if (f->nops == f->cap_ops) {
		f->cap_ops = f->cap_ops ? f->cap_ops * 2 : 1024;
		f->ops = realloc(f->ops, f->cap_ops * sizeof(*f->ops));
		assert_non_null(f->ops);
	}
	f->ops[f->nops++] = op;
}

static ssize_t mf_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	struct mfile *f = arg;

	if (off >= f->size) {
		return 0;
	}
	len = off + len > f->size ? f->size - off : len;
	memcpy(buf, f->data + off, len);
	return len;
}

static ssize_t mf_pwrite(void *arg, const void *buf, size_t len, uint64_t off)
{
	mf_do(arg, OP_WRITE, off, len, buf);
	return len;
}

static int mf_sync(void *arg)
{
	mf_do(arg, OP_SYNC, 0, 0, NULL);
	return 0;
}

static int mf_punch(void *arg, uint64_t off, uint64_t len)
{
	mf_do(arg, OP_PUNCH, off, len, NULL);
	return 0;
}

static int mf_truncate(void *arg, uint64_t size)
{
	mf_do(arg, OP_TRUNC, size, 0, NULL);
	return 0;
}

static int mf_size(void *arg, uint64_t *sizep)
{
	*sizep = ((struct mfile *)arg)->size;
	return 0;
}

static void *mf_backing(void *arg, const char *name)
{
	return ((struct mfile *)arg)->backing;
}

static const struct vd_file_ops mf_ops = {
	.pread = mf_pread, .pwrite = mf_pwrite, .sync = mf_sync,
	.punch = mf_punch, .truncate = mf_truncate, .size = mf_size,
	.backing = mf_backing,
};

/* The guest model: one byte value per sector (every byte of a sector holds
 * it).  'durable' is what the last completed flush guarantees; 'since'
 * lists what was written after it. */
#define DISK_BYTES (2u << 20)
#define CLUSTER 4096u
#define NSECT (DISK_BYTES / 512)

struct epoch {
	size_t flush_op;         /* log length when the flush returned */
	uint8_t durable[NSECT];
};

struct written {
	size_t first_op;         /* log length when the operation started */
	uint32_t sect, nsect;
	uint8_t value;
};

struct run {
	struct mfile file;
	struct mfile initial;    /* the file when recording began */
	size_t open_op;          /* crash points start here */
	struct epoch *epochs;
	size_t nepochs;
	struct written *w;
	size_t nw;
	uint8_t model[NSECT];
	uint64_t states;
	int snap_ops;
	int batches;             /* asynchronous batches (async_batch) */
	/* a check --repair run: a state may still hold the damage, which a
	 * second repair must then fix without losing data */
	bool repair_run;
	uint64_t repaired_again;
};

static void note_write(struct run *r, uint32_t sect, uint32_t nsect, uint8_t v)
{
	r->w = realloc(r->w, (r->nw + 1) * sizeof(*r->w));
	assert_non_null(r->w);
	r->w[r->nw++] = (struct written){r->file.nops, sect, nsect, v};
	memset(r->model + sect, v, nsect);
}

static void note_flush(struct run *r)
{
	r->epochs = realloc(r->epochs, (r->nepochs + 1) * sizeof(*r->epochs));
	assert_non_null(r->epochs);
	r->epochs[r->nepochs].flush_op = r->file.nops;
	memcpy(r->epochs[r->nepochs].durable, r->model, NSECT);
	r->nepochs++;
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(uint64_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state % n;
}

/* Runs a mixed workload on a small image with a tiny journal and cache, so
 * that commits, checkpoints, evictions and reuse all happen often. */
/* The template of the clone runs: every sector of its first half holds
 * (sector % 13) + 1, the rest reads zeros. */
#define TEMPLATE "crash-template.vd"

static uint8_t template_value(uint32_t sect)
{
	return sect < NSECT / 2 ? (uint8_t)(sect % 13 + 1) : 0;
}

static void make_template(void)
{
	struct vd_create_opts co;
	struct vd_open_opts oo;
	struct vd_image *t;
	uint8_t *buf = malloc(DISK_BYTES / 2);

	unlink(TEMPLATE);
	vd_create_opts_init(&co);
	co.size_bytes = DISK_BYTES;
	assert_int_equal(vd_create(TEMPLATE, &co, NULL), 0);
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	assert_int_equal(vd_open(TEMPLATE, &oo, &t, NULL), 0);
	for (uint32_t s = 0; s < NSECT / 2; s++) {
		memset(buf + s * 512, template_value(s), 512);
	}
	assert_int_equal(vd_pwrite(t, buf, DISK_BYTES / 2, 0), 0);
	assert_int_equal(vd_close(t), 0);
	free(buf);
}

static void batch_cb(void *arg, int ret)
{
	assert_int_equal(ret, 0);
	(*(int *)arg)++;
}

/* Requests in flight together on a context: two writes or write-zeroes on
 * clusters apart (allocations and copy-ups in flight at once, mapped as
 * their data lands), then two flushes submitted together (the second
 * waits for the commit after the first: group commit). */
static void async_batch(struct run *r, struct vd_image *img, struct vd_ctx *ctx, uint8_t *buf,
			uint8_t *value)
{
	uint32_t per = CLUSTER / 512, half = NSECT / 2;
	int done = 0;

	for (int i = 0; i < 2; i++) {
		/* request i stays in its half of the disk, away from the other */
		uint32_t sect = i * half + rnd(half - 2 * per), nsect = 1 + rnd(per + per / 2);

		if (rnd(3) == 0) {
			note_write(r, sect, nsect, 0);
			assert_int_equal(vd_submit_write_zeroes(ctx, img, sect * 512ull,
								nsect * 512ull, batch_cb, &done), 0);
		} else {
			struct iovec iov = {buf + i * 2 * CLUSTER, nsect * 512};

			*value = *value == 255 ? 1 : *value + 1;
			memset(iov.iov_base, *value, nsect * 512);
			note_write(r, sect, nsect, *value);
			assert_int_equal(vd_submit_writev(ctx, img, &iov, 1, sect * 512ull, batch_cb,
							  &done), 0);
		}
	}
	while (done < 2) {
		assert_true(vd_ctx_poll(ctx, 1) >= 0);
	}
	assert_int_equal(vd_submit_flush(ctx, img, batch_cb, &done), 0);
	assert_int_equal(vd_submit_flush(ctx, img, batch_cb, &done), 0);
	while (done < 4) {
		assert_true(vd_ctx_poll(ctx, 1) >= 0);
	}
	note_flush(r);
}

/* With 'sc', the image has subclusters: 128 KiB clusters of 32 x 4 KiB,
 * so the same 4 KiB-scale writes, discards and copy-ups that fill whole
 * clusters in the plain run fill subclusters here (discard frees whole
 * subclusters, which are CLUSTER bytes: the model is the same). */
#define SC_CLUSTER (128u * 1024)

static void workload(struct run *r, int nops, bool clone, bool sc)
{
	struct vd_create_opts co;
	struct vd_open_opts oo;
	struct vd_image *img;
	struct vd_ctx *ctx;
	uint8_t *buf = aligned_alloc(4096, 4 * CLUSTER);
	uint8_t value = 0;
	/* live snapshots and the model of the disk when each was taken */
	struct {
		char name[16];
		uint8_t model[NSECT];
	} *snaps = calloc(4, sizeof(*snaps));
	int nsnaps = 0, serial = 0;

	vd_create_opts_init(&co);
	co.size_bytes = DISK_BYTES;
	co.cluster_bytes = sc ? SC_CLUSTER : CLUSTER;
	co.subclusters = sc;
	co.journal_bytes = 8 * co.cluster_bytes;
	if (clone) {
		make_template();
		co.backing_path = TEMPLATE;
		for (uint32_t sct = 0; sct < NSECT; sct++) {
			r->model[sct] = template_value(sct);
		}
	}
	assert_int_equal(vd_create_with_ops("mem", &co, &mf_ops, &r->file, NULL), 0);
	mf_reserve(&r->initial, r->file.size + 1);
	memcpy(r->initial.data, r->file.data, r->file.size);
	r->initial.size = r->file.size;
	r->file.record = true;
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	oo.cache_bytes = 6 * co.cluster_bytes;
	assert_int_equal(vd_open_with_ops("mem", &oo, &mf_ops, &r->file, &img, NULL), 0);
	r->open_op = r->file.nops;
	note_flush(r);
	assert_int_equal(vd_ctx_create(8, &ctx), 0);
	for (int i = 0; i < nops; i++) {
		uint32_t kind = rnd(14);
		uint32_t sect = rnd(NSECT), nsect = 1 + rnd(3 * CLUSTER / 512);

		nsect = sect + nsect > NSECT ? NSECT - sect : nsect;
		if (kind < 6) {
			value = value == 255 ? 1 : value + 1;
			memset(buf, value, nsect * 512);
			note_write(r, sect, nsect, value);
			assert_int_equal(vd_pwrite(img, buf, nsect * 512, sect * 512ull), 0);
		} else if (kind < 7) {
			/* discard frees only whole clusters; model those */
			uint32_t per = CLUSTER / 512;
			uint32_t first = (sect + per - 1) / per * per, end = (sect + nsect) / per * per;

			if (end > first) {
				note_write(r, first, end - first, 0);
			}
			assert_int_equal(vd_discard(img, sect * 512ull, nsect * 512ull), 0);
		} else if (kind < 8) {
			note_write(r, sect, nsect, 0);
			assert_int_equal(vd_write_zeroes(img, sect * 512ull, nsect * 512ull), 0);
		} else if (kind < 10) {
			assert_int_equal(vd_flush(img), 0);
			note_flush(r);
		} else if (kind == 10 && nsnaps < 4) {
			/* a snapshot commits, so completed writes are durable */
			snprintf(snaps[nsnaps].name, sizeof(snaps[nsnaps].name), "s%d", serial++);
			memcpy(snaps[nsnaps].model, r->model, NSECT);
			assert_int_equal(vd_snapshot_create(img, snaps[nsnaps].name, NULL), 0);
			nsnaps++;
			r->snap_ops++;
			note_flush(r);
		} else if (kind == 11 && nsnaps > 0) {
			int k = rnd(nsnaps);

			assert_int_equal(vd_snapshot_delete(img, snaps[k].name, NULL), 0);
			snaps[k] = snaps[--nsnaps];
			r->snap_ops++;
			note_flush(r);
		} else if (kind == 12 && nsnaps > 0) {
			int k = rnd(nsnaps);

			/* a crash inside the revert may show the old disk or the
			 * snapshot's: record the snapshot's sectors as writes */
			for (uint32_t sct = 0; sct < NSECT; sct++) {
				if (snaps[k].model[sct] != r->model[sct]) {
					note_write(r, sct, 1, snaps[k].model[sct]);
				}
			}
			assert_int_equal(vd_snapshot_revert(img, snaps[k].name, NULL), 0);
			r->snap_ops++;
			note_flush(r);
		} else if (kind == 13) {
			async_batch(r, img, ctx, buf, &value);
			r->batches++;
		}
	}
	vd_ctx_destroy(ctx);
	assert_int_equal(vd_close(img), 0);
	note_flush(r);
	free(snaps);
	free(buf);
}

/* Which epoch's guarantee holds at crash point 'k' (ops [0, k) happened). */
static const struct epoch *epoch_at(const struct run *r, size_t k)
{
	const struct epoch *e = &r->epochs[0];

	for (size_t i = 0; i < r->nepochs; i++) {
		if (r->epochs[i].flush_op <= k) {
			e = &r->epochs[i];
		}
	}
	return e;
}

/* The values each sector may hold after a crash at 'k': what the epoch made
 * durable, or anything written after the epoch's flush (256 bits each). */
static uint64_t (*allowed_values(const struct run *r, const struct epoch *e, size_t k))[4]
{
	uint64_t (*ok)[4] = calloc(NSECT, sizeof(*ok));

	assert_non_null(ok);
	for (uint32_t s = 0; s < NSECT; s++) {
		ok[s][e->durable[s] / 64] |= 1ull << (e->durable[s] % 64);
	}
	for (size_t i = 0; i < r->nw; i++) {
		const struct written *w = &r->w[i];

		if (w->first_op < e->flush_op || w->first_op > k) {
			continue;
		}
		for (uint32_t s = w->sect; s < w->sect + w->nsect; s++) {
			ok[s][w->value / 64] |= 1ull << (w->value % 64);
		}
	}
	return ok;
}

static void verify_state(struct run *r, const uint8_t *bytes, uint64_t size, uint64_t wend,
			 size_t k, bool writable)
{
	struct mfile f = {0};
	struct vd_open_opts oo;
	struct vd_image *img = NULL;
	struct vd_check_result res;
	struct errmsg err = {{0}};
	const struct epoch *e = epoch_at(r, k);
	uint8_t *disk = malloc(DISK_BYTES);
	uint64_t (*ok)[4] = allowed_values(r, e, k);

	mf_reserve(&f, size + 1);
	memcpy(f.data, bytes, wend < size ? wend : size);
	f.size = size;
	f.wend = wend;
	vd_open_opts_init(&oo);
	oo.flags = writable ? VD_OPEN_RDWR : 0;
	if (vd_open_with_ops("crash", &oo, &mf_ops, &f, &img, &err) != 0) {
		fail_msg("crash point %zu: open failed: %s", k, err.msg);
	}
	assert_int_equal(vd_check(img, 0, &res, NULL, NULL, &err), 0);
	if (r->repair_run && (res.corruptions || res.leaks) && writable) {
		assert_int_equal(vd_check(img, VD_CHECK_REPAIR, &res, NULL, NULL, &err), 0);
		assert_int_equal(vd_check(img, 0, &res, NULL, NULL, &err), 0);
		r->repaired_again++;
	} else if (r->repair_run) {
		res.corruptions = res.leaks = 0; /* read-only: the damage may stay */
	}
	if (res.corruptions || res.leaks) {
		fail_msg("crash point %zu (%s): %llu corruptions, %llu leaks", k,
			 writable ? "rw" : "ro", (unsigned long long)res.corruptions,
			 (unsigned long long)res.leaks);
	}
	assert_int_equal(vd_pread(img, disk, DISK_BYTES, 0), 0);
	for (uint32_t s = 0; s < NSECT; s++) {
		uint8_t v = disk[s * 512];

		for (int b = 1; b < 512; b++) {
			if (disk[s * 512 + b] != v) {
				fail_msg("crash point %zu: sector %u is torn", k, s);
			}
		}
		if (!(ok[s][v / 64] & (1ull << (v % 64)))) {
			fail_msg("crash point %zu (%s): sector %u reads 0x%02x, flushed 0x%02x", k,
				 writable ? "rw" : "ro", s, v, e->durable[s]);
		}
	}
	assert_int_equal(vd_close(img), 0);
	free(ok);
	free(disk);
	free(f.data);
	r->states++;
}

/* Builds the state of a crash after ops [0, k): 'base' holds the durable
 * prefix [0, sync_end); of the ops after it, those 'pick' selects are
 * applied, forwards or backwards. */
static void crash_state(struct run *r, const struct mfile *base, size_t sync_end, size_t k,
			int variant)
{
	struct mfile s = {0};
	size_t n = k - sync_end;
	bool *pick = calloc(n + 1, sizeof(bool));

	mf_reserve(&s, base->size + 1);
	memcpy(s.data, base->data, base->wend < base->size ? base->wend : base->size);
	s.size = base->size;
	s.wend = base->wend;
	for (size_t i = 0; i < n; i++) {
		pick[i] = variant == 0 || (variant >= 2 && rnd(2));
	}
	for (size_t j = 0; j < n; j++) {
		size_t i = variant == 3 ? n - 1 - j : j;

		if (pick[i]) {
			mf_apply(&s, &r->file.ops[sync_end + i]);
		}
	}
	verify_state(r, s.data, s.size, s.wend, k, variant != 1);
	if (variant == 0) {
		verify_state(r, s.data, s.size, s.wend, k, false);
	}
	free(s.data);
	free(pick);
}

static void explore(struct run *r, size_t stride)
{
	struct mfile base = {0};
	size_t sync_end = 0;

	mf_reserve(&base, r->initial.cap);
	memcpy(base.data, r->initial.data, r->initial.size);
	base.size = r->initial.size;
	base.wend = r->initial.size;

	for (size_t k = 0; k <= r->file.nops; k++) {
		if (k > 0 && r->file.ops[k - 1].type == OP_SYNC) {
			for (size_t i = sync_end; i < k; i++) {
				mf_apply(&base, &r->file.ops[i]);
			}
			sync_end = k;
		}
		if (k < r->open_op || (k % stride && k != r->file.nops)) {
			continue;
		}
		for (int variant = 0; variant < 4; variant++) {
			if (variant > 0 && k == sync_end) {
				break;
			}
			crash_state(r, &base, sync_end, k, variant);
		}
	}
	free(base.data);
}

static void free_run(struct run *r)
{
	for (size_t i = 0; i < r->file.nops; i++) {
		free(r->file.ops[i].data);
	}
	free(r->file.ops);
	free(r->file.data);
	free(r->initial.data);
	free(r->epochs);
	free(r->w);
}

static void run_harness(int nops, bool clone, bool sc)
{
	struct run *r = calloc(1, sizeof(*r));

	workload(r, nops, clone, sc);
	explore(r, 1);
	printf("crash harness%s%s: %zu recorded operations (%d snapshot create/delete/revert, "
	       "%d asynchronous batches), %llu crash states opened and verified\n",
	       clone ? " (linked clone)" : "", sc ? " (subclusters)" : "",
	       r->file.nops - r->open_op, r->snap_ops, r->batches,
	       (unsigned long long)r->states);
	assert_true(r->batches > 0);
	assert_true(r->states > (clone || sc ? 300u : 1000u));
	free_run(r);
	free(r);
}

static int ops_from_env(int dflt)
{
	const char *env = getenv("VD_CRASH_OPS");

	return env ? atoi(env) : dflt;
}

static void test_crash_at_every_point_opens_clean_with_flushed_data(void **state)
{
	run_harness(ops_from_env(180), false, false);
}

/* A clone's copy-up merges template data into new clusters: a crash must
 * never expose a half-merged cluster or lose the template's bytes. */
static void test_crash_in_a_linked_clone_keeps_template_data(void **state)
{
	run_harness(ops_from_env(180) / 2, true, false);
	unlink(TEMPLATE);
}

/* Subcluster writes, fills of partial subclusters, per-subcluster discard
 * and write-zeroes, whole-cluster copies under snapshots. */
static void test_crash_with_subclusters(void **state)
{
	/* Fewer operations than the plain runs: each state of a file with
	 * 128 KiB clusters costs several times as much to copy and check. */
	run_harness(ops_from_env(180) / 3, false, true);
}

/* Copy-up of single subclusters from the template into a clone. */
static void test_crash_with_subclusters_in_a_linked_clone(void **state)
{
	run_harness(ops_from_env(180) / 3, true, true);
	unlink(TEMPLATE);
}

/* Commit: a clone (file 0) and its backing image (file 1) live in memory
 * and share one log of operations; a flush only makes its own file's
 * writes durable.  Crash states combine both files cut at the same point.
 * Commit copies the clone's data down, flushes the backing image, then
 * empties the clone: whatever the crash point, the guest's disk must read
 * as before, with every flushed write, and both images must check clean. */
static void copy_file(struct mfile *dst, const struct mfile *src)
{
	memset(dst, 0, sizeof(*dst));
	mf_reserve(dst, src->size + 1);
	memcpy(dst->data, src->data, src->size);
	dst->size = src->size;
	dst->wend = src->size;
}

static void verify_pair(struct run *r, const struct mfile *top, const struct mfile *base,
			size_t k, bool writable)
{
	struct mfile t, b;
	struct vd_open_opts oo;
	struct vd_image *img = NULL;
	struct vd_check_result res;
	struct errmsg err = {{0}};
	const struct epoch *e = epoch_at(r, k);
	uint8_t *disk = malloc(DISK_BYTES);
	uint64_t (*ok)[4] = allowed_values(r, e, k);

	copy_file(&t, top);
	copy_file(&b, base);
	b.id = 1;
	t.backing = &b;
	vd_open_opts_init(&oo);
	oo.flags = writable ? VD_OPEN_RDWR : 0;
	if (vd_open_with_ops("top", &oo, &mf_ops, &t, &img, &err) != 0) {
		fail_msg("commit crash point %zu: open failed: %s", k, err.msg);
	}
	for (struct vd_image *i = img; i; i = i->backing) {
		assert_int_equal(vd_check(i, 0, &res, NULL, NULL, &err), 0);
		if (res.corruptions || res.leaks) {
			fail_msg("commit crash point %zu: %s has %llu corruptions, %llu leaks", k,
				 i == img ? "the clone" : "the backing image",
				 (unsigned long long)res.corruptions, (unsigned long long)res.leaks);
		}
	}
	assert_int_equal(vd_pread(img, disk, DISK_BYTES, 0), 0);
	for (uint32_t s = 0; s < NSECT; s++) {
		uint8_t v = disk[s * 512];

		if (!(ok[s][v / 64] & (1ull << (v % 64))) || disk[s * 512 + 511] != v) {
			fail_msg("commit crash point %zu (%s): sector %u reads 0x%02x, flushed 0x%02x",
				 k, writable ? "rw" : "ro", s, v, e->durable[s]);
		}
	}
	assert_int_equal(vd_close(img), 0);
	free(ok);
	free(disk);
	free(t.data);
	free(b.data);
	r->states++;
}

static void commit_workload(struct run *r, struct mfile *base, struct mfile *initial_base)
{
	struct vd_create_opts co;
	struct vd_open_opts oo;
	struct vd_image *img;
	uint8_t *buf = malloc(DISK_BYTES / 2);
	uint8_t value = 0x80;

	vd_create_opts_init(&co);
	co.size_bytes = DISK_BYTES;
	co.cluster_bytes = CLUSTER;
	co.journal_bytes = 8 * CLUSTER;
	base->id = 1;
	assert_int_equal(vd_create_with_ops("base", &co, &mf_ops, base, NULL), 0);
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	assert_int_equal(vd_open_with_ops("base", &oo, &mf_ops, base, &img, NULL), 0);
	for (uint32_t s = 0; s < NSECT / 2; s++) {
		memset(buf + s * 512, template_value(s), 512);
	}
	assert_int_equal(vd_pwrite(img, buf, DISK_BYTES / 2, 0), 0);
	assert_int_equal(vd_close(img), 0);
	for (uint32_t s = 0; s < NSECT; s++) {
		r->model[s] = template_value(s);
	}
	r->file.backing = base;
	co.backing_path = "base";
	assert_int_equal(vd_create_with_ops("top", &co, &mf_ops, &r->file, NULL), 0);
	copy_file(&r->initial, &r->file);
	copy_file(initial_base, base);
	r->file.record = base->record = true;
	base->log = &r->file;
	oo.cache_bytes = 6 * CLUSTER;
	assert_int_equal(vd_open_with_ops("top", &oo, &mf_ops, &r->file, &img, NULL), 0);
	r->open_op = r->file.nops;
	note_flush(r);
	for (int i = 0; i < 60; i++) {
		uint32_t sect = rnd(NSECT), nsect = 1 + rnd(3 * CLUSTER / 512);

		nsect = sect + nsect > NSECT ? NSECT - sect : nsect;
		if (i == 40) {
			assert_int_equal(vd_commit(img, NULL), 0);
			note_flush(r);
		} else if (rnd(8) == 0) {
			assert_int_equal(vd_flush(img), 0);
			note_flush(r);
		} else if (rnd(8) == 0) {
			note_write(r, sect, nsect, 0);
			assert_int_equal(vd_write_zeroes(img, sect * 512ull, nsect * 512ull), 0);
		} else {
			value = value == 255 ? 0x80 : value + 1;
			memset(buf, value, nsect * 512);
			note_write(r, sect, nsect, value);
			assert_int_equal(vd_pwrite(img, buf, nsect * 512, sect * 512ull), 0);
		}
	}
	assert_int_equal(vd_close(img), 0);
	note_flush(r);
	free(buf);
}

/* Applies, to 'dst' (a copy of the durable state), the unflushed ops of
 * file 'id' in [from, k) that 'variant' keeps: all, none, a random subset,
 * or a random subset in reverse. */
static void apply_tail(struct run *r, struct mfile *dst, int id, size_t from, size_t k,
		       int variant)
{
	size_t n = k - from;
	bool *pick = calloc(n + 1, sizeof(bool));

	for (size_t i = 0; i < n; i++) {
		pick[i] = r->file.ops[from + i].file == id &&
			  (variant == 0 || (variant >= 2 && rnd(2)));
	}
	for (size_t j = 0; j < n; j++) {
		size_t i = variant == 3 ? n - 1 - j : j;

		if (pick[i]) {
			mf_apply(dst, &r->file.ops[from + i]);
		}
	}
	free(pick);
}

static void test_crash_during_commit_keeps_the_disk(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	struct mfile base = {0}, initial_base = {0}, dur[2];
	size_t sync_end[2] = {0, 0};

	commit_workload(r, &base, &initial_base);
	copy_file(&dur[0], &r->initial);
	copy_file(&dur[1], &initial_base);
	for (size_t k = 0; k <= r->file.nops; k++) {
		if (k > 0 && r->file.ops[k - 1].type == OP_SYNC) {
			int f = r->file.ops[k - 1].file;

			for (size_t i = sync_end[f]; i < k; i++) {
				if (r->file.ops[i].file == f) {
					mf_apply(&dur[f], &r->file.ops[i]);
				}
			}
			sync_end[f] = k;
		}
		if (k < r->open_op) {
			continue;
		}
		for (int variant = 0; variant < 4; variant++) {
			struct mfile t, b;

			copy_file(&t, &dur[0]);
			copy_file(&b, &dur[1]);
			apply_tail(r, &t, 0, sync_end[0], k, variant);
			apply_tail(r, &b, 1, sync_end[1], k, variant);
			verify_pair(r, &t, &b, k, variant != 1);
			free(t.data);
			free(b.data);
		}
	}
	printf("crash harness (commit of a linked clone): %zu recorded operations on two "
	       "files, %llu crash states opened and verified\n",
	       r->file.nops - r->open_op, (unsigned long long)r->states);
	assert_true(r->states > 300);
	free(dur[0].data);
	free(dur[1].data);
	free(base.data);
	free(initial_base.data);
	free_run(r);
	free(r);
}

/* Issue 11: check --repair of an image whose refcount table has entries
 * aliased to its first block (the rebuild: new table and blocks, then the
 * header switch).  At every crash point the image opens with its data, and
 * is either repaired or still damaged in a way a second repair fixes. */
static void test_crash_during_repair_keeps_the_data(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	struct vd_create_opts co;
	struct vd_open_opts oo;
	struct vd_check_result res;
	struct vd_image *img;
	uint8_t *buf = malloc(DISK_BYTES / 2);
	uint64_t rt, rb0, last;

	vd_create_opts_init(&co);
	co.size_bytes = DISK_BYTES;
	co.cluster_bytes = CLUSTER;
	co.journal_bytes = 8 * CLUSTER;
	assert_int_equal(vd_create_with_ops("mem", &co, &mf_ops, &r->file, NULL), 0);
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	oo.cache_bytes = 6 * CLUSTER;
	assert_int_equal(vd_open_with_ops("mem", &oo, &mf_ops, &r->file, &img, NULL), 0);
	for (uint32_t sct = 0; sct < NSECT / 2; sct++) {
		r->model[sct] = (uint8_t)(sct % 251 + 1);
		memset(buf + sct * 512, r->model[sct], 512);
	}
	assert_int_equal(vd_pwrite(img, buf, DISK_BYTES / 2, 0), 0);
	rt = img->hdr.refcount_table_offset;
	last = img->rt_blk->bytes / 8 - 1;
	assert_int_equal(vd_close(img), 0);
	memcpy(&rb0, r->file.data + rt, 8);
	memcpy(r->file.data + rt + 8, &rb0, 8);
	memcpy(r->file.data + rt + last * 8, &rb0, 8);

	mf_reserve(&r->initial, r->file.size + 1);
	memcpy(r->initial.data, r->file.data, r->file.size);
	r->initial.size = r->file.size;
	r->repair_run = true;
	r->file.record = true;
	assert_int_equal(vd_open_with_ops("mem", &oo, &mf_ops, &r->file, &img, NULL), 0);
	r->open_op = r->file.nops;
	note_flush(r);
	assert_int_equal(vd_check(img, VD_CHECK_REPAIR, &res, NULL, NULL, NULL), 0);
	assert_true(res.corruptions_fixed >= 2);
	assert_int_equal(vd_close(img), 0);
	note_flush(r);
	explore(r, 1);
	printf("crash harness (repair): %zu recorded operations, %llu crash states opened and "
	       "verified, %llu repaired again\n", r->file.nops - r->open_op,
	       (unsigned long long)r->states, (unsigned long long)r->repaired_again);
	/* some states are before the header switch, some after */
	assert_true(r->repaired_again > 0 && r->repaired_again < r->states);
	free_run(r);
	free(r);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_at_every_point_opens_clean_with_flushed_data),
		cmocka_unit_test(test_crash_in_a_linked_clone_keeps_template_data),
		cmocka_unit_test(test_crash_with_subclusters),
		cmocka_unit_test(test_crash_with_subclusters_in_a_linked_clone),
		cmocka_unit_test(test_crash_during_commit_keeps_the_disk),
		cmocka_unit_test(test_crash_during_repair_keeps_the_data),
	};

	return cmocka_run_group_tests_name("vdisk_crash", tests, NULL, NULL);
}
