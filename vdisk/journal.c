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
	int ret;

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
	int ret;

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
