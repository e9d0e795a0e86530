/* SPDX-License-Identifier: MIT */
/* fuzz_image.c: the libFuzzer target for libvdisk's parsers and for the code
 * that trusts what they parsed.  The input is an image file held in memory
 * (memfile.c).  It is opened read-only (journal replayed in memory), then,
 * on a fresh copy, read-write (replayed into the copy); each handle is
 * checked, mapped, read and its snapshots listed and compared, the writable
 * one also repaired, written and flushed, and the file it leaves is opened
 * once more.  Errors are fine; a crash, a leak, a sanitizer report or a
 * broken API promise (checked below, each abort names it) is a bug.
 * replay_main.c runs this same entry point in the normal test suite. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"
#include "memfile.h"

/* The file may grow to this while the library writes: far above what a
 * seed needs, small enough to keep every run in memory. */
#define FILE_MAX_BYTES (64ull << 20)
/* Bytes one open may read and write before the file fails with -EIO: a
 * hostile image can make the library read the same blocks over and over. */
#define IO_BUDGET_BYTES (256ull << 20)
/* Table entries a walk of ours may make the library visit.  vd_map steps
 * cluster by cluster through unmapped space and snapshot accounting entry
 * by entry through each L2 table, so a tiny file can describe a walk of
 * hours; larger images are opened and checked but not walked.  The seeds
 * need at most 8192 per table. */
#define MAX_WALK_ENTRIES (1u << 17)
#define MAX_MAP_CALLS 4096u
#define MAX_SNAPSHOTS 8u
#define MAX_DATA_EXTENTS 8u
#define MAX_ZERO_PROBES 16u
#define MAX_DIFF_RUNS 4096u
#define READ_BYTES (64u * 1024)

struct probe {
	struct vd_image *img;
	struct memfile *file;
	uint64_t size_bytes;            /* virtual */
	uint32_t cluster_bytes;
	uint8_t *buf;                   /* READ_BYTES */
	struct vd_extent data[MAX_DATA_EXTENTS];
	unsigned ndata;
	bool repaired;                  /* checked and repaired with success */
};

static void __attribute__((noreturn, format(printf, 1, 2))) broken(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz_image: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void fix_header_sector(uint8_t *sector)
{
	size_t at = offsetof(struct vd_disk_header, crc32c);

	if (memcmp(sector, VD_MAGIC, 8) == 0) {
		put32(sector + at, vd_crc32c(0, sector, at));
	}
}

/* Header sectors logged in a transaction (journal.c: offset 0, 512 bytes)
 * replace the header at replay and are checked again. */
static void fix_logged_headers(uint8_t *txn, uint32_t txn_bytes)
{
	uint32_t n = get32(txn + offsetof(struct vd_jtxn_header, nrecords));
	uint64_t pos = sizeof(struct vd_jtxn_header);

	for (uint32_t i = 0; i < n && txn_bytes - pos >= sizeof(struct vd_jrecord); i++) {
		uint64_t off = get64(txn + pos + offsetof(struct vd_jrecord, offset));
		uint32_t len = get32(txn + pos + offsetof(struct vd_jrecord, len));

		pos += sizeof(struct vd_jrecord);
		if (len > txn_bytes - pos) {
			return;
		}
		if (off == 0 && len == VD_HEADER_BYTES) {
			fix_header_sector(txn + pos);
		}
		pos += len;
	}
}

/* Follows the transaction chain as journal.c does: magic, sequence number
 * and length must be right, only the checksum is made right. */
static void fix_journal(uint8_t *image, size_t size)
{
	uint64_t joff = get64(image + offsetof(struct vd_disk_header, journal_offset));
	uint64_t seq = get64(image + offsetof(struct vd_disk_header, journal_seq));
	uint64_t room, pos = 0;

	if (joff >= size) {
		return;
	}
	room = min_u64(get32(image + offsetof(struct vd_disk_header, journal_bytes)), size - joff);
	while (room - pos >= sizeof(struct vd_jtxn_header)) {
		uint8_t *txn = image + joff + pos;
		uint32_t bytes = get32(txn + offsetof(struct vd_jtxn_header, txn_bytes));
		uint8_t *crc = txn + offsetof(struct vd_jtxn_header, crc32c);

		if (get32(txn) != VD_JTXN_MAGIC ||
		    get64(txn + offsetof(struct vd_jtxn_header, seq)) != seq ||
		    bytes < sizeof(struct vd_jtxn_header) || bytes > room - pos) {
			return;
		}
		fix_logged_headers(txn, bytes);
		memset(crc, 0, 4);
		put32(crc, vd_crc32c(0, txn, bytes));
		pos += ((uint64_t)bytes + 511) & ~511ull;
		seq++;
	}
}

void fuzz_fix_checksums(uint8_t *image, size_t size)
{
	if (size < VD_HEADER_BYTES || memcmp(image, VD_MAGIC, 8) != 0) {
		return;
	}
	fix_header_sector(image);
	fix_journal(image, size);
}

static void count_sentence(void *arg, const char *sentence)
{
	/* strlen: the sanitizers see a sentence that is not a string. */
	*(size_t *)arg += strlen(sentence) > 0;
}

/* What walking an L1 table costs: its entries, and a whole L2 table per
 * entry set (shared tables are walked once per entry).  The disk's L1 is
 * the pinned block, where replay left it; a snapshot's is counted in the
 * file, as far as it lies inside: entries past the end are no work for a
 * library that checks its offsets, and a crash for one that does not. */
static uint64_t active_l1_cost(const struct vd_image *img)
{
	uint64_t n = img->hdr.l1_entries;

	for (uint32_t i = 0; i < img->hdr.l1_entries; i++) {
		n += vd_get64(img->l1_blk, i) ? img->l2_entries : 0;
	}
	return n;
}

static uint64_t snapshot_l1_cost(const struct probe *p, const struct vd_snap *s)
{
	uint64_t size = p->file->size_bytes, n = 0;

	if (s->l1_offset >= size) {
		return 0;
	}
	for (uint64_t i = 0; i < s->l1_entries && i < (size - s->l1_offset) / 8; i++) {
		n += 1 + (get64(p->file->data + s->l1_offset + i * 8) ? p->img->l2_entries : 0);
	}
	return n;
}

static uint64_t snapshots_cost(const struct probe *p)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < p->img->nsnaps; i++) {
		n += snapshot_l1_cost(p, &p->img->snaps[i]);
	}
	return n;
}

/* What vd_check visits: the L1 tables as above, the refcount table and
 * the block behind each entry, the snapshot table cluster by cluster, and
 * every cluster of the image, which for a writer ends where the last
 * refcount says (alloc.c). */
static uint64_t check_cost(const struct probe *p)
{
	const struct vd_image *img = p->img;
	uint64_t rt_entries = img->rt_blk->bytes / 8;
	uint64_t n = rt_entries + active_l1_cost(img) + snapshots_cost(p) +
		     img->hdr.snapshot_table_bytes / img->cluster_bytes +
		     (img->file_bytes >> img->cluster_bits) + img->end_clusters;

	for (uint64_t i = 0; i < rt_entries; i++) {
		n += vd_get64(img->rt_blk, i) ? img->rb_entries : 0;
	}
	return n;
}

/* Returns true when the check ran and left nothing corrupt. */
static bool run_check(struct probe *p, unsigned flags)
{
	struct vd_check_result res;
	struct errmsg err = {{0}};
	size_t sentences = 0;

	if (check_cost(p) > MAX_WALK_ENTRIES) {
		return false;
	}
	if (vd_check(p->img, flags, &res, count_sentence, &sentences, &err) < 0) {
		return false;
	}
	if (res.corruptions_fixed > res.corruptions || res.leaks_fixed > res.leaks) {
		broken("vd_check fixed more than it found (%llu/%llu corruptions, %llu/%llu leaks)",
		       (unsigned long long)res.corruptions_fixed,
		       (unsigned long long)res.corruptions, (unsigned long long)res.leaks_fixed,
		       (unsigned long long)res.leaks);
	}
	return res.corruptions == res.corruptions_fixed;
}

/* Reads [off, off+len) clipped to the disk and to sectors; returns the bytes
 * read into p->buf, 0 when nothing was (an error is fine). */
static size_t read_at(struct probe *p, uint64_t off, uint64_t len)
{
	off &= ~(uint64_t)(VD_SECTOR_BYTES - 1);
	if (off >= p->size_bytes) {
		return 0;
	}
	len = min_u64(min_u64(len, READ_BYTES), p->size_bytes - off) & ~(VD_SECTOR_BYTES - 1ull);
	if (!len || vd_pread(p->img, p->buf, len, off) < 0) {
		return 0;
	}
	return len;
}

static bool all_zero(const uint8_t *buf, size_t len)
{
	return len == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0);
}

/* vd_map and vd_pread look the same tables up: what the map calls unwritten
 * reads as zeros, what it calls data reads as the file holds it. */
static void check_extent(struct probe *p, const struct vd_extent *e, unsigned *zero_probes)
{
	size_t n;

	if (e->state == VD_EXTENT_DATA && p->ndata < MAX_DATA_EXTENTS) {
		p->data[p->ndata++] = *e;
		n = read_at(p, e->offset, e->length);
		for (size_t i = 0; i < n; i++) {
			uint64_t host = e->host_offset + i;
			uint8_t want = host < min_u64(p->file->size_bytes, p->file->cap_bytes)
					       ? p->file->data[host] : 0;

			if (p->buf[i] != want) {
				broken("guest byte 0x%llx reads 0x%02x, its host byte 0x%llx "
				       "holds 0x%02x", (unsigned long long)(e->offset + i),
				       p->buf[i], (unsigned long long)host, want);
			}
		}
	} else if ((e->state == VD_EXTENT_ZERO || e->state == VD_EXTENT_UNALLOCATED) &&
		   *zero_probes < MAX_ZERO_PROBES) {
		(*zero_probes)++;
		n = read_at(p, e->offset, min_u64(e->length, 4096));
		if (!all_zero(p->buf, n)) {
			broken("extent at 0x%llx is mapped %s but does not read as zeros",
			       (unsigned long long)e->offset,
			       e->state == VD_EXTENT_ZERO ? "zero" : "unallocated");
		}
	}
}

static void map_disk(struct probe *p)
{
	unsigned calls = 0, zero_probes = 0;
	uint64_t off = 0;

	if (p->img->guest_clusters > MAX_WALK_ENTRIES) {
		return;
	}
	p->ndata = 0;
	while (off < p->size_bytes && calls++ < MAX_MAP_CALLS) {
		struct vd_extent e;

		if (vd_map(p->img, off, &e) < 0) {
			off = (off | (p->cluster_bytes - 1)) + 1;
			continue;
		}
		if (e.offset != off || e.length == 0 || e.length > p->size_bytes - off ||
		    e.length % VD_SECTOR_BYTES || e.state > VD_EXTENT_BACKING) {
			broken("vd_map(0x%llx) gave offset 0x%llx length 0x%llx state %d on a "
			       "disk of 0x%llx bytes", (unsigned long long)off,
			       (unsigned long long)e.offset, (unsigned long long)e.length,
			       (int)e.state, (unsigned long long)p->size_bytes);
		}
		check_extent(p, &e, &zero_probes);
		off += e.length;
	}
}

static void read_ranges(struct probe *p)
{
	uint64_t mid = p->size_bytes / 2;

	read_at(p, 0, READ_BYTES);
	read_at(p, mid, 4096);
	read_at(p, p->size_bytes - min_u64(p->size_bytes, 8192), 8192);
	/* Two clusters at once, merged into one request where contiguous. */
	read_at(p, mid & ~(uint64_t)(p->cluster_bytes - 1), 2ull * p->cluster_bytes);
	read_at(p, p->cluster_bytes - VD_SECTOR_BYTES, 2 * VD_SECTOR_BYTES);
}

struct diff_seen {
	uint64_t size_bytes, end;
	unsigned runs;
};

static int diff_run(void *arg, uint64_t offset, uint64_t length)
{
	struct diff_seen *d = arg;

	if (offset < d->end || length == 0 || offset >= d->size_bytes ||
	    length > d->size_bytes - offset) {
		broken("vd_snapshot_diff gave run 0x%llx+0x%llx after 0x%llx on a disk of "
		       "0x%llx bytes", (unsigned long long)offset, (unsigned long long)length,
		       (unsigned long long)d->end, (unsigned long long)d->size_bytes);
	}
	d->end = offset + length;
	return ++d->runs >= MAX_DIFF_RUNS;
}

static bool snapshots_walkable(const struct probe *p)
{
	return active_l1_cost(p->img) + snapshots_cost(p) <= MAX_WALK_ENTRIES;
}

/* Returns the oldest snapshot's name (to free), or NULL. */
static char *list_snapshots(struct probe *p)
{
	struct vd_snapshot_info info;
	int n = vd_snapshot_count(p->img);
	char *first = NULL;

	if (n < 0 || (uint32_t)n > p->img->nsnaps) {
		broken("vd_snapshot_count is %d with %u table entries", n, p->img->nsnaps);
	}
	if (n == 0 || !snapshots_walkable(p)) {
		return NULL;
	}
	for (unsigned i = 0; i < (unsigned)n && i < MAX_SNAPSHOTS; i++) {
		if (vd_snapshot_get(p->img, i, &info) < 0) {
			continue;
		}
		if (strlen(info.name) > VD_SNAP_NAME_MAX) {
			broken("snapshot %u has a %zu-byte name", i, strlen(info.name));
		}
		if (!first) {
			first = strdup(info.name);
		}
	}
	if (vd_snapshot_get(p->img, n, &info) != -ENOENT) {
		broken("vd_snapshot_get(%d) of %d snapshots did not fail with -ENOENT", n, n);
	}
	return first;
}

static void diff_snapshot(struct probe *p, const char *name)
{
	struct diff_seen d = {.size_bytes = p->size_bytes};

	if (name && snapshots_walkable(p)) {
		vd_snapshot_diff(p->img, name, NULL, diff_run, &d, NULL);
	}
}

/* Writes 'len' bytes of 'fill' at 'off' and reads them back: on a repaired
 * image, a write that succeeded reads back.  (On a damaged one, a cluster
 * whose refcount says free may be metadata too, and be written over.) */
static void write_back_check(struct probe *p, uint64_t off, size_t len, uint8_t fill)
{
	if (off >= p->size_bytes || len > p->size_bytes - off || len > READ_BYTES) {
		return;
	}
	memset(p->buf, fill, len);
	if (vd_pwrite(p->img, p->buf, len, off) < 0) {
		return;
	}
	memset(p->buf, ~fill, len);
	if (vd_pread(p->img, p->buf, len, off) < 0 || !p->repaired) {
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (p->buf[i] != fill) {
			broken("wrote 0x%02x at guest 0x%llx, read back 0x%02x at +%zu", fill,
			       (unsigned long long)off, p->buf[i], i);
		}
	}
}

/* Changes the image the way a user would (some of the changes chosen by
 * 'choice', a hash of the input): the metadata just checked and repaired is
 * now relied on, and the snapshot table is written anew. */
static void change_image(struct probe *p, const char *snap, uint32_t choice)
{
	uint64_t c = p->cluster_bytes;

	if (choice & 1) {
		vd_discard(p->img, 0, min_u64(p->size_bytes, 2 * c));
	}
	if ((choice & 2) && p->size_bytes > VD_SECTOR_BYTES) {
		vd_write_zeroes(p->img, VD_SECTOR_BYTES,
				min_u64(p->size_bytes - VD_SECTOR_BYTES, 2 * c));
	}
	if (snap && (choice & 4)) {
		vd_snapshot_revert(p->img, snap, NULL);
	}
	vd_snapshot_create(p->img, "fuzz", NULL);
	if (snap && (choice & 16)) {
		vd_snapshot_delete(p->img, snap, NULL);
	}
	/* One cluster more or less: the L1 and refcount table may move. */
	if (choice & 128) {
		vd_resize(p->img, p->size_bytes + c, false, NULL);
	} else if ((choice & 256) && p->size_bytes > c) {
		vd_resize(p->img, (p->size_bytes - 1) / c * c, true, NULL);
	}
	p->size_bytes = vd_size_bytes(p->img);
	write_back_check(p, 0, min_u64(4096, p->size_bytes), 0xa5);
	write_back_check(p, c - VD_SECTOR_BYTES, 2 * VD_SECTOR_BYTES, 0x5a);
	write_back_check(p, p->size_bytes - VD_SECTOR_BYTES, VD_SECTOR_BYTES, 0x3c);
	vd_flush(p->img);
}

static void probe_image(struct probe *p, uint32_t choice)
{
	struct vd_info info;
	char *snap;

	p->size_bytes = vd_size_bytes(p->img);
	p->cluster_bytes = vd_cluster_bytes(p->img);
	if (active_l1_cost(p->img) <= MAX_WALK_ENTRIES) {
		vd_get_info(p->img, &info);
	}
	run_check(p, 0);
	/* Half the writers work on the image as it came: the allocator and the
	 * write path must survive refcounts that repair would have fixed. */
	if (p->img->writable && !(choice & 64)) {
		p->repaired = run_check(p, VD_CHECK_REPAIR);
	}
	map_disk(p);
	read_ranges(p);
	snap = list_snapshots(p);
	diff_snapshot(p, snap);
	if (p->img->writable) {
		change_image(p, snap, choice);
		map_disk(p);
		run_check(p, 0);
	}
	free(snap);
}

/* Opens 'file', probes the handle and closes it.  Returns the open's error
 * (with its sentence in 'err'), vd_close's, or 1 when the handle was
 * repaired with success and closed without error. */
static int open_and_probe(struct memfile *file, unsigned flags, uint32_t choice, uint8_t *buf,
			  struct errmsg *err)
{
	struct probe p = {.file = file, .buf = buf};
	struct vd_open_opts oo;
	int ret;

	vd_open_opts_init(&oo);
	oo.flags = flags;
	/* A small cache makes eviction and write-back happen on small images. */
	oo.cache_bytes = (choice & 32) ? 1 : 0;
	file->read_only = !(flags & VD_OPEN_RDWR);
	file->keep_header = true;
	file->budget_bytes = IO_BUDGET_BYTES;
	errmsg_clear(err);
	ret = vd_open_with_ops("fuzz.vd", &oo, &memfile_ops, file, &p.img, err);
	if (ret < 0) {
		return ret;
	}
	if (vd_size_bytes(p.img) > 0) {
		probe_image(&p, choice);
	}
	ret = vd_close(p.img);
	return ret == 0 && p.repaired ? 1 : ret;
}

/* FNV-1a of the first 64 KiB (header, journal and first tables of small
 * images).  Not a CRC: a CRC over the header sector and its own checksum
 * is the same for every header. */
static uint32_t choose(const uint8_t *image, size_t size)
{
	uint32_t h = 2166136261u ^ (uint32_t)size;

	for (size_t i = 0; i < size && i < 64 * 1024; i++) {
		h = (h ^ image[i]) * 16777619u;
	}
	return h;
}

/* Copies the input into 'file' with its checksums fixed; false if there is
 * no memory. */
static bool load(struct memfile *file, const uint8_t *data, size_t size, uint32_t *choicep)
{
	if (memfile_init(file, data, size, FILE_MAX_BYTES) < 0) {
		return false;
	}
	fuzz_fix_checksums(file->data, size);
	*choicep = choose(file->data, size);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errmsg err;
	struct memfile file;
	uint8_t *buf = malloc(READ_BYTES);
	uint32_t choice;

	if (buf && load(&file, data, size, &choice)) {
		open_and_probe(&file, 0, choice, buf, &err);
		memfile_fini(&file);
	}
	if (buf && load(&file, data, size, &choice)) {
		/* What a writer closed cleanly after a successful repair must open
		 * again.  (Writing to a damaged image without repair may well
		 * break it further.) */
		if (open_and_probe(&file, VD_OPEN_RDWR, choice, buf, &err) == 1) {
			int ret = open_and_probe(&file, 0, choice >> 8, buf, &err);

			if (ret < 0 && ret != -EIO) {
				broken("the image a writer closed cleanly no longer opens: %s",
				       err.msg);
			}
		}
		memfile_fini(&file);
	}
	free(buf);
	return 0;
}

/* Where damage matters: the header, the first clusters (journal, L1,
 * refcount table and block at creation), and the tables the header names
 * wherever they are. */
unsigned fuzz_regions(const uint8_t *img, size_t size, struct fuzz_region *r, unsigned max)
{
	uint32_t bits = size >= VD_HEADER_BYTES ? get32(img + 40) : 12;
	uint64_t c = 1ull << (bits >= 12 && bits <= 21 ? bits : 12);
	unsigned n = 0;

	if (max < 7) {
		return 0;
	}
	r[n++] = (struct fuzz_region){0, VD_HEADER_BYTES};
	r[n++] = (struct fuzz_region){0, 16 * c};
	if (size < VD_HEADER_BYTES) {
		return n;
	}
	r[n++] = (struct fuzz_region){get64(img + 56), (uint64_t)get32(img + 44) * 8};
	r[n++] = (struct fuzz_region){get64(img + 64), (uint64_t)get32(img + 72) * c};
	r[n++] = (struct fuzz_region){get64(img + 80), 4096};
	r[n++] = (struct fuzz_region){get64(img + 96), get32(img + 104)};
	if (get64(img + 64) < size - 8) {
		r[n++] = (struct fuzz_region){get64(img + get64(img + 64)), c};
	}
	return n;
}
