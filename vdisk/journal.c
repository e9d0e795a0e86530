/* SPDX-License-Identifier: MIT */
/* journal.c: the write-ahead metadata journal.  A commit turns the changed
 * chunks of cached metadata blocks into one transaction of redo records; a
 * checkpoint writes the blocks in place and retires the journal; replay
 * applies the valid transactions after a crash (docs/vdisk-format.md,
 * "Crash consistency", rules 1-5).  The journal is linear: transactions are
 * appended from its start and a checkpoint starts it over with the next
 * sequence number, which makes older transactions invalid. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TXN_ALIGN 512u

static uint32_t align_up32(uint32_t v, uint32_t a)
{
	return (v + a - 1) / a * a;
}

static bool chunk_dirty(const struct vd_mblock *b, uint32_t c)
{
	return b->jdirty[c / 64] & (1ull << (c % 64));
}

/* Emits (when 'out' is set) one record per run of changed chunks of 'b';
 * returns the bytes those records take and counts them in '*nrecp'. */
static size_t block_records(const struct vd_mblock *b, uint8_t *out, uint32_t *nrecp)
{
	uint32_t nchunks = b->bytes / VD_JCHUNK_BYTES;
	size_t total = 0;
	uint32_t c = 0;

	while (c < nchunks) {
		uint32_t start, len;

		if (!chunk_dirty(b, c)) {
			c++;
			continue;
		}
		start = c;
		while (c < nchunks && chunk_dirty(b, c)) {
			c++;
		}
		/* The header sector is always logged whole, with its crc. */
		if (b->offset == 0 && b->bytes == VD_HEADER_BYTES) {
			start = 0;
			c = nchunks;
		}
		len = (c - start) * VD_JCHUNK_BYTES;
		if (out) {
			struct vd_jrecord rec = {
				.offset = htole64(b->offset + (uint64_t)start * VD_JCHUNK_BYTES),
				.len = htole32(len),
			};

			memcpy(out + total, &rec, sizeof(rec));
			memcpy(out + total + sizeof(rec), b->data + (size_t)start * VD_JCHUNK_BYTES,
			       len);
		}
		total += sizeof(struct vd_jrecord) + len;
		(*nrecp)++;
	}
	return total;
}

static size_t all_records(const struct vd_image *img, uint8_t *out, uint32_t *nrecp)
{
	size_t total = 0;

	*nrecp = 0;
	for (const struct vd_mblock *b = img->blocks; b; b = b->dnext) {
		if (b->has_jdirty && !b->is_new) {
			total += block_records(b, out ? out + total : NULL, nrecp);
		}
	}
	return total;
}

static void forget_changes(struct vd_image *img)
{
	for (struct vd_mblock *b = img->blocks; b; b = b->dnext) {
		if (b->has_jdirty) {
			memset(b->jdirty, 0,
			       (b->bytes / VD_JCHUNK_BYTES + 63) / 64 * sizeof(uint64_t));
			b->has_jdirty = false;
		}
		b->is_new = false;
	}
	img->meta_changed = false;
	img->pending_record_bytes = 0;
}

/* Rule 1: blocks allocated in this transaction, and the guest data the
 * transaction points to, are durable before the transaction is written. */
static int write_new_blocks(struct vd_image *img)
{
	int ret = vd_file_grow(img, img->end_clusters);

	for (struct vd_mblock *b = img->blocks; b && ret == 0; b = b->dnext) {
		if (b->is_new) {
			ret = vd_file_pwrite(&img->file, b->data, b->bytes, b->offset);
			b->wb_dirty = false;
		}
	}
	return ret < 0 ? ret : vd_file_sync(&img->file);
}

static int write_txn(struct vd_image *img)
{
	struct vd_jtxn_header th;
	uint32_t nrec, bytes, padded;
	size_t rec_bytes = all_records(img, NULL, &nrec);
	uint8_t *buf;
	int ret;

	if (nrec == 0) {
		return 0;
	}
	bytes = sizeof(th) + rec_bytes;
	padded = align_up32(bytes, TXN_ALIGN);
	if (img->journal_used_bytes + padded > img->hdr.journal_bytes) {
		/* Commits are made early enough (vd_meta_boundary) that this
		 * means a single operation larger than the journal. */
		return -EFBIG;
	}
	buf = vd_aligned_alloc(padded);
	if (!buf) {
		return -ENOMEM;
	}
	memset(buf, 0, padded);
	all_records(img, buf + sizeof(th), &nrec);
	th = (struct vd_jtxn_header){
		.magic = htole32(VD_JTXN_MAGIC),
		.nrecords = htole32(nrec),
		.seq = htole64(img->journal_seq),
		.txn_bytes = htole32(bytes),
	};
	memcpy(buf, &th, sizeof(th));
	th.crc32c = htole32(vd_crc32c(0, buf, bytes));
	memcpy(buf, &th, sizeof(th));
	ret = vd_file_pwrite(&img->file, buf, padded,
			     img->hdr.journal_offset + img->journal_used_bytes);
	free(buf);
	if (ret < 0) {
		return ret;
	}
	/* Rule 2: the flush that acknowledges the transaction. */
	ret = vd_file_sync(&img->file);
	if (ret < 0) {
		return ret;
	}
	img->journal_used_bytes += padded;
	img->journal_seq++;
	return 0;
}

int vd_journal_commit(struct vd_image *img)
{
	int ret = vd_async_drain(img);

	if (ret < 0) {
		return ret;
	}
	if (!img->meta_changed) {
		return 0;
	}
	if (!img->writable) {
		return -EROFS;
	}
	ret = write_new_blocks(img);
	if (ret < 0) {
		return ret;
	}
	ret = write_txn(img);
	if (ret < 0) {
		return ret;
	}
	forget_changes(img);
	if (img->journal_used_bytes > img->hdr.journal_bytes / 2) {
		return vd_journal_checkpoint(img);
	}
	return 0;
}

/* Rule 4.  Callers commit first, so every cached block is committed. */
int vd_journal_checkpoint(struct vd_image *img)
{
	struct vd_disk_header *d;
	int ret = vd_async_drain(img);

	if (ret < 0) {
		return ret;
	}
	if (img->meta_changed) {
		return -EINVAL;
	}
	ret = vd_cache_writeback(img);
	if (ret == 0) {
		ret = vd_file_sync(&img->file);
	}
	if (ret < 0) {
		return ret;
	}
	img->hdr.journal_seq = img->journal_seq;
	d = (struct vd_disk_header *)img->header_blk->data;
	vd_header_to_disk(&img->hdr, d);
	ret = vd_file_pwrite(&img->file, d, VD_HEADER_BYTES, 0);
	if (ret == 0) {
		ret = vd_file_sync(&img->file);
	}
	if (ret < 0) {
		return ret;
	}
	img->header_blk->wb_dirty = false;
	img->journal_used_bytes = 0;
	return vd_release_pending_free(img);
}

/* Called when an operation has finished: commits early enough that the next
 * transaction always fits (an operation changes at most a few clusters'
 * worth of chunks, and the journal holds at least eight clusters), and keeps
 * the cache within its bound. */
int vd_meta_boundary(struct vd_image *img)
{
	int ret = 0;

	if (!img->writable) {
		return vd_cache_trim(img);
	}
	if (img->pending_record_bytes > img->hdr.journal_bytes / 8) {
		ret = vd_journal_commit(img);
	}
	return ret < 0 ? ret : vd_cache_trim(img);
}

void vd_overlay_apply(const struct vd_image *img, void *buf, uint32_t len, uint64_t off)
{
	for (size_t i = 0; i < img->noverlay; i++) {
		const struct vd_overlay *o = &img->overlay[i];
		uint64_t lo = o->offset > off ? o->offset : off;
		uint64_t hi = o->offset + o->len < off + len ? o->offset + o->len : off + len;

		if (lo < hi) {
			memcpy((char *)buf + (lo - off), o->data + (lo - o->offset), hi - lo);
		}
	}
}

void vd_overlay_free(struct vd_image *img)
{
	for (size_t i = 0; i < img->noverlay; i++) {
		free(img->overlay[i].data);
	}
	free(img->overlay);
	img->overlay = NULL;
	img->noverlay = 0;
}

static int overlay_add(struct vd_image *img, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct vd_overlay *o = realloc(img->overlay, (img->noverlay + 1) * sizeof(*o));

	if (!o) {
		return -ENOMEM;
	}
	img->overlay = o;
	o = &o[img->noverlay];
	o->data = malloc(len);
	if (!o->data) {
		return -ENOMEM;
	}
	memcpy(o->data, data, len);
	o->offset = off;
	o->len = len;
	img->noverlay++;
	return 0;
}

/* Checks one transaction at 'p' (up to 'room' bytes); returns its length or
 * 0 when it is not a valid next transaction (the end of the journal). */
static uint32_t txn_valid(const uint8_t *p, uint32_t room, uint64_t seq)
{
	struct vd_jtxn_header th;
	uint32_t bytes, crc, pos;
	uint8_t *copy;

	if (room < sizeof(th)) {
		return 0;
	}
	memcpy(&th, p, sizeof(th));
	bytes = le32toh(th.txn_bytes);
	if (le32toh(th.magic) != VD_JTXN_MAGIC || le64toh(th.seq) != seq ||
	    bytes < sizeof(th) || bytes > room) {
		return 0;
	}
	copy = malloc(bytes);
	if (!copy) {
		return 0;
	}
	memcpy(copy, p, bytes);
	memset(copy + offsetof(struct vd_jtxn_header, crc32c), 0, 4);
	crc = vd_crc32c(0, copy, bytes);
	free(copy);
	if (crc != le32toh(th.crc32c)) {
		return 0;
	}
	/* The records must tile the transaction exactly. */
	pos = sizeof(th);
	for (uint32_t i = 0; i < le32toh(th.nrecords); i++) {
		struct vd_jrecord rec;

		if (bytes - pos < sizeof(rec)) {
			return 0;
		}
		memcpy(&rec, p + pos, sizeof(rec));
		pos += sizeof(rec);
		if (le32toh(rec.len) == 0 || le32toh(rec.len) % 8 || le32toh(rec.len) > bytes - pos ||
		    le64toh(rec.offset) > VD_MAX_SIZE_BYTES ||
		    (le64toh(rec.offset) < VD_HEADER_BYTES &&
		     (le64toh(rec.offset) != 0 || le32toh(rec.len) != VD_HEADER_BYTES))) {
			return 0;
		}
		pos += le32toh(rec.len);
	}
	return pos == bytes ? bytes : 0;
}

static int apply_txn(struct vd_image *img, const uint8_t *p, bool apply)
{
	struct vd_jtxn_header th;
	uint32_t pos = sizeof(th);
	int ret = 0;

	memcpy(&th, p, sizeof(th));
	for (uint32_t i = 0; i < le32toh(th.nrecords) && ret == 0; i++) {
		struct vd_jrecord rec;

		memcpy(&rec, p + pos, sizeof(rec));
		pos += sizeof(rec);
		if (apply) {
			ret = vd_file_pwrite(&img->file, p + pos, le32toh(rec.len),
					     le64toh(rec.offset));
		} else {
			ret = overlay_add(img, le64toh(rec.offset), p + pos, le32toh(rec.len));
		}
		pos += le32toh(rec.len);
	}
	return ret;
}

/* Replays the journal: into the file ('apply'), or into the in-memory
 * overlay.  Sets img->journal_seq past the last valid transaction and
 * returns how many were found. */
int vd_journal_replay(struct vd_image *img, bool apply, struct errmsg *err)
{
	uint32_t size = img->hdr.journal_bytes, pos = 0;
	uint64_t seq = img->hdr.journal_seq;
	uint8_t *j = vd_aligned_alloc(size);
	int ret, n = 0;

	if (!j) {
		return -ENOMEM;
	}
	ret = vd_file_pread(&img->file, j, size, img->hdr.journal_offset);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot read the journal: %s", img->path, strerror(-ret));
		goto out;
	}
	for (;;) {
		uint32_t bytes = txn_valid(j + pos, size - pos, seq);

		if (!bytes) {
			break;
		}
		ret = apply_txn(img, j + pos, apply);
		if (ret < 0) {
			errmsg_set(err, "%s: cannot replay the journal: %s", img->path,
				   strerror(-ret));
			goto out;
		}
		n++;
		seq++;
		pos += align_up32(bytes, TXN_ALIGN);
		if (pos >= size) {
			break;
		}
	}
	img->journal_seq = seq;
	img->journal_used_bytes = 0;
	if (apply && n > 0) {
		ret = vd_file_sync(&img->file);
	}
	ret = ret < 0 ? ret : n;
out:
	free(j);
	return ret;
}

/* Asynchronous commits, for the request paths (io.c).  One commit is in
 * flight per image at a time; its steps are ring I/O:
 *
 *   snapshot (memory only) -> write new blocks -> fsync (rule 1)
 *     -> write the transaction -> fsync (rule 2): flushes complete
 *     -> [checkpoint: write copies in place -> fsync -> header -> fsync
 *         (rule 4) -> punch the clusters freed before it (rule 5)]
 *
 * The snapshot takes the records of every change made so far and copies
 * the blocks to write, so requests keep changing metadata while the commit
 * is in flight; those changes go to the next commit.  A block whose changes
 * are in the commit in flight counts as uncommitted (rule 3) until the
 * transaction is durable.  Flushes that arrive during a commit wait for the
 * next one, which starts when it is done and serves them all (group
 * commit).  A commit that will leave the journal over half full copies,
 * in the same snapshot, every block that differs from the file, so the
 * checkpoint writes exactly the state of that transaction; no commit
 * starts until its header is durable (rule 4). */
struct jcommit;

struct jio {
	struct vd_aio aio;
	struct jcommit *jc;
	uint8_t *buf;
	uint64_t gen;           /* the block's mod_gen when copied */
	struct jio *next;
};

struct jcommit {
	struct vd_image *img;
	struct vd_ctx *ctx;
	struct vd_req *waiters;         /* flushes it completes */
	unsigned pending;               /* I/O of the current step */
	int ret;
	int step;
	struct jio *news;               /* new blocks (rule 1) */
	struct jio *copies;             /* checkpoint copies */
	struct jio *txn;
	struct jio hdr;
	bool ckpt;
	bool empty;                     /* nothing changed: an fsync */
	uint64_t next_seq;              /* journal_seq after the transaction */
	uint64_t *freed;                /* released by the checkpoint */
	size_t nfreed;
	struct jio fsync;
};

enum { JC_NEW, JC_SYNC1, JC_TXN, JC_SYNC2, JC_CKPT, JC_SYNC3, JC_HDR, JC_SYNC4, JC_PUNCH,
       JC_DONE };

static void jc_next_step(struct jcommit *jc);

static struct jio *jio_copy(struct jcommit *jc, const void *data, uint32_t bytes, uint64_t off)
{
	struct jio *io = calloc(1, sizeof(*io));

	if (!io) {
		return NULL;
	}
	io->buf = vd_aligned_alloc(bytes);
	if (!io->buf) {
		free(io);
		return NULL;
	}
	memcpy(io->buf, data, bytes);
	io->jc = jc;
	io->aio.one = (struct iovec){.iov_base = io->buf, .iov_len = bytes};
	io->aio.off = off;
	io->aio.len = bytes;
	return io;
}

static void jio_free_list(struct jio *io)
{
	while (io) {
		struct jio *next = io->next;

		free(io->buf);
		free(io);
		io = next;
	}
}

static void jio_done(struct vd_aio *aio, int res)
{
	struct jio *io = (struct jio *)aio;
	struct jcommit *jc = io->jc;

	if (res >= 0 && aio->op != VD_AIO_FSYNC && aio->op != VD_AIO_PUNCH &&
	    (size_t)res < aio->len) {
		res = -EIO;
	}
	if (res < 0 && aio->op == VD_AIO_PUNCH) {
		/* The clusters stay of unknown contents (reused written whole). */
		io->gen = 1;
		res = 0;
	}
	if (res < 0 && jc->ret == 0) {
		jc->ret = res;
	}
	if (res >= 0 && jc->step == JC_CKPT) {
		/* The block is clean if it did not change since the copy. */
		struct vd_mblock *b = vd_mblock_lookup_any(jc->img, aio->off);

		if (b && b->mod_gen == io->gen) {
			b->wb_dirty = false;
		}
	}
	if (--jc->pending == 0) {
		jc_next_step(jc);
	}
}

static void jio_issue(struct jcommit *jc, struct jio *io, enum vd_aio_op op)
{
	jc->pending++;
	io->jc = jc;
	if (op == VD_AIO_FSYNC || op == VD_AIO_PUNCH) {
		io->aio.img = jc->img;
		io->aio.op = op;
		io->aio.done = jio_done;
		vd_aio_start(jc->ctx, &io->aio);
		return;
	}
	vd_aio_rw(jc->ctx, &io->aio, jc->img, op, io->buf, io->aio.len, io->aio.off, jio_done);
}

static void jc_fsync(struct jcommit *jc)
{
	memset(&jc->fsync, 0, sizeof(jc->fsync));
	jio_issue(jc, &jc->fsync, VD_AIO_FSYNC);
}

/* Takes the transaction and the copies to write, in memory, at one instant. */
static int jc_snapshot(struct jcommit *jc)
{
	struct vd_image *img = jc->img;
	uint32_t nrec, bytes, padded;
	size_t rec_bytes;
	int ret;

	if (!img->meta_changed) {
		jc->empty = true;
		return 0;
	}
	/* Blocking: ftruncate, rarely (alloc.c, vdisk.h). */
	ret = vd_file_grow(img, img->end_clusters);
	if (ret < 0) {
		return ret;
	}
	rec_bytes = all_records(img, NULL, &nrec);
	bytes = sizeof(struct vd_jtxn_header) + rec_bytes;
	padded = align_up32(bytes, TXN_ALIGN);
	if (nrec && img->journal_used_bytes + padded > img->hdr.journal_bytes) {
		return -EFBIG;
	}
	for (struct vd_mblock *b = img->blocks; b; b = b->dnext) {
		if (b->is_new) {
			struct jio *io = jio_copy(jc, b->data, b->bytes, b->offset);

			if (!io) {
				return -ENOMEM;
			}
			io->next = jc->news;
			jc->news = io;
			b->wb_dirty = false;
		}
	}
	if (nrec) {
		struct vd_jtxn_header th = {
			.magic = htole32(VD_JTXN_MAGIC),
			.nrecords = htole32(nrec),
			.seq = htole64(img->journal_seq),
			.txn_bytes = htole32(bytes),
		};
		uint8_t *buf = vd_aligned_alloc(padded);

		jc->txn = calloc(1, sizeof(*jc->txn));
		if (!buf || !jc->txn) {
			free(buf);
			return -ENOMEM;
		}
		memset(buf, 0, padded);
		all_records(img, buf + sizeof(th), &nrec);
		memcpy(buf, &th, sizeof(th));
		th.crc32c = htole32(vd_crc32c(0, buf, bytes));
		memcpy(buf, &th, sizeof(th));
		jc->txn->buf = buf;
		jc->txn->aio.off = img->hdr.journal_offset + img->journal_used_bytes;
		jc->txn->aio.len = padded;
		img->journal_used_bytes += padded;
		img->journal_seq++;
	}
	for (struct vd_mblock *b = img->blocks; b; b = b->dnext) {
		b->in_txn = b->has_jdirty || b->is_new;
	}
	forget_changes(img);
	jc->next_seq = img->journal_seq;
	jc->ckpt = img->journal_used_bytes > img->hdr.journal_bytes / 2;
	if (!jc->ckpt) {
		return 0;
	}
	for (struct vd_mblock *b = img->blocks; b; b = b->dnext) {
		struct jio *io;

		if (b == img->header_blk || !b->wb_dirty || b->loading) {
			continue;
		}
		io = jio_copy(jc, b->data, b->bytes, b->offset);
		if (!io) {
			return -ENOMEM;
		}
		io->gen = b->mod_gen;
		io->next = jc->copies;
		jc->copies = io;
	}
	/* Rule 5: what was freed up to this transaction is reused only once
	 * the checkpoint's header is durable. */
	jc->freed = img->pending_free;
	jc->nfreed = img->npending_free;
	img->pending_free = NULL;
	img->npending_free = img->pending_free_cap = 0;
	img->ckpt_free = jc->freed;
	img->nckpt_free = jc->nfreed;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void jc_punch(struct jcommit *jc)
{
	struct vd_image *img = jc->img;
	size_t i = 0;

	qsort(jc->freed, jc->nfreed, sizeof(uint64_t), cmp_u64);
	jc->copies = NULL;
	while (i < jc->nfreed) {
		uint64_t first = jc->freed[i], n = 1;
		struct jio *io = calloc(1, sizeof(*io));

		while (i + n < jc->nfreed && jc->freed[i + n] == first + n) {
			n++;
		}
		if (!io) {
			jc->ret = -ENOMEM;
			break;
		}
		io->aio.off = vd_cluster_off(img, first);
		io->aio.len = vd_cluster_off(img, n);
		io->next = jc->copies;
		jc->copies = io;
		i += n;
	}
	for (struct jio *io = jc->copies; io; io = io->next) {
		jio_issue(jc, io, VD_AIO_PUNCH);
	}
}

static void jc_release(struct jcommit *jc)
{
	struct vd_image *img = jc->img;

	for (struct jio *io = jc->copies; io; io = io->next) {
		vd_release_run(img, vd_off_cluster(img, io->aio.off),
			       vd_off_cluster(img, io->aio.len), io->gen != 0);
	}
	img->ckpt_free = NULL;
	img->nckpt_free = 0;
	free(jc->freed);
	jc->freed = NULL;
}

static void jc_finish(struct jcommit *jc)
{
	struct vd_image *img = jc->img;
	struct vd_ctx *ctx = jc->ctx;
	int ret = jc->ret;

	jio_free_list(jc->news);
	jio_free_list(jc->copies);
	jio_free_list(jc->txn);
	free(jc->hdr.buf);
	free(jc->freed);
	if (ret < 0) {
		img->jc_error = ret;
		img->ckpt_free = NULL;
		img->nckpt_free = 0;
	}
	img->jc_busy = false;
	img->jc = NULL;
	free(jc);
	vd_req_wake_all(&img->room_waiters);
	if (img->jc_next || img->jc_want) {
		img->jc_want = false;
		vd_journal_kick(img, ctx);
	}
}

static void jc_complete_waiters(struct jcommit *jc, int ret)
{
	struct vd_req *list = jc->waiters;

	jc->waiters = NULL;
	vd_req_done_all(&list, ret);
}

static void jc_next_step(struct jcommit *jc)
{
	struct vd_image *img = jc->img;

	if (jc->ret < 0) {
		if (jc->step <= JC_SYNC2) {
			jc_complete_waiters(jc, jc->ret);
		}
		jc_finish(jc);
		return;
	}
	jc->step++;
	switch (jc->step) {
	case JC_SYNC1:
		/* Rule 1: new blocks and the data they map are durable first. */
		jc_fsync(jc);
		return;
	case JC_TXN:
		if (!jc->txn) {
			jc_next_step(jc);
			return;
		}
		jio_issue(jc, jc->txn, VD_AIO_WRITE);
		return;
	case JC_SYNC2:
		jc_fsync(jc);
		return;
	case JC_CKPT:
		for (struct vd_mblock *b = img->blocks; b; b = b->dnext) {
			b->in_txn = false;
		}
		/* Rule 2: the flushes waiting for it are done. */
		jc_complete_waiters(jc, 0);
		if (!jc->ckpt) {
			jc_finish(jc);
			return;
		}
		if (img->wb_inflight) {
			/* A write-back of an older copy must land first. */
			img->ckpt_waiting = true;
			return;
		}
		vd_journal_ckpt_resume(img);
		return;
	case JC_SYNC3:
		jc_fsync(jc);
		return;
	case JC_HDR: {
		struct vd_disk_header h = img->hdr;

		h.journal_seq = jc->next_seq;
		jc->hdr.buf = vd_aligned_alloc(VD_HEADER_BYTES);
		if (!jc->hdr.buf) {
			jc->ret = -ENOMEM;
			jc_finish(jc);
			return;
		}
		vd_header_to_disk(&h, (struct vd_disk_header *)jc->hdr.buf);
		jc->hdr.aio.off = 0;
		jc->hdr.aio.len = VD_HEADER_BYTES;
		jio_issue(jc, &jc->hdr, VD_AIO_WRITE);
		return;
	}
	case JC_SYNC4:
		jc_fsync(jc);
		return;
	case JC_PUNCH:
		/* Rule 4: the header is durable; the journal starts over. */
		img->hdr.journal_seq = jc->next_seq;
		img->header_blk->wb_dirty = false;
		img->journal_used_bytes = 0;
		jio_free_list(jc->copies);
		jc->copies = NULL;
		jc_punch(jc);
		if (jc->pending == 0) {
			jc_next_step(jc);
		}
		return;
	case JC_DONE:
		jc_release(jc);
		jc_finish(jc);
		return;
	}
}

/* The checkpoint's in-place writes (JC_CKPT), once no write-back of an
 * older copy is in flight. */
void vd_journal_ckpt_resume(struct vd_image *img)
{
	struct jcommit *jc = img->jc;

	img->ckpt_waiting = false;
	for (struct jio *io = jc->copies; io; io = io->next) {
		jio_issue(jc, io, VD_AIO_WRITE);
	}
	if (jc->pending == 0) {
		jc_next_step(jc);
	}
}

/* Starts a commit of everything changed so far, on 'ctx', unless one is in
 * flight (then another follows it). */
void vd_journal_kick(struct vd_image *img, struct vd_ctx *ctx)
{
	struct jcommit *jc;
	int ret;

	if (img->jc_busy) {
		img->jc_want = true;
		return;
	}
	if (img->jc_error) {
		struct vd_req *list = img->jc_next;

		img->jc_next = NULL;
		vd_req_done_all(&list, img->jc_error);
		return;
	}
	if (!img->meta_changed && !img->jc_next) {
		return;
	}
	jc = calloc(1, sizeof(*jc));
	if (!jc) {
		struct vd_req *list = img->jc_next;

		img->jc_next = NULL;
		vd_req_done_all(&list, -ENOMEM);
		return;
	}
	jc->img = img;
	jc->ctx = ctx;
	jc->waiters = img->jc_next;
	img->jc_next = NULL;
	img->jc_busy = true;
	img->jc_ctx = ctx;
	img->jc = jc;
	jc->step = JC_NEW;
	ret = jc_snapshot(jc);
	if (ret < 0) {
		jc->ret = ret;
		jc_next_step(jc);
		return;
	}
	if (jc->empty) {
		/* Nothing changed: the flush is an fsync. */
		jc->step = JC_SYNC2;
		jc_fsync(jc);
		return;
	}
	for (struct jio *io = jc->news; io; io = io->next) {
		jio_issue(jc, io, VD_AIO_WRITE);
	}
	if (jc->pending == 0) {
		jc_next_step(jc);
	}
}

/* Parks flush 'req' until a commit started after now is durable. */
void vd_journal_flush(struct vd_image *img, struct vd_ctx *ctx, struct vd_req *req)
{
	vd_req_park(&img->jc_next, req);
	vd_journal_kick(img, ctx);
}

/* Whether a request may change metadata now: while a commit is in flight,
 * the changes waiting for the next one are kept under a quarter of the
 * journal, so that it fits (at least half is free when it starts). */
bool vd_journal_room(struct vd_image *img, struct vd_req *req)
{
	if (!img->jc_busy || img->pending_record_bytes <= img->hdr.journal_bytes / 4) {
		return true;
	}
	img->jc_want = true;
	vd_req_park(&img->room_waiters, req);
	return false;
}

/* At the end of a request: commit in the background when the changes
 * pending pass an eighth of the journal, and keep the cache in bound. */
int vd_meta_boundary_async(struct vd_image *img, struct vd_ctx *ctx)
{
	if (img->jc_error) {
		return img->jc_error;
	}
	if (img->pending_record_bytes > img->hdr.journal_bytes / 8) {
		vd_journal_kick(img, ctx);
	}
	return vd_cache_trim_async(img, ctx);
}

/* Lets the synchronous calls run: waits for the commit and write-backs in
 * flight (on this thread, vdisk.h). */
bool vd_busy(const struct vd_image *img)
{
	return img->jc_busy || img->wb_inflight;
}

int vd_async_drain(struct vd_image *img)
{
	while (img->jc_busy || img->wb_inflight) {
		int ret = vd_ctx_step(img->jc_busy ? img->jc_ctx : img->wb_ctx);

		if (ret < 0) {
			return ret;
		}
	}
	return img->jc_error;
}
