/* SPDX-License-Identifier: MIT */
/* image.c: creating, opening, closing and describing images.  The header is
 * validated field by field before anything it points to is trusted; a
 * read-write open replays the journal, marks the image in use
 * (JOURNAL_DIRTY) and builds the free map; close checkpoints and clears the
 * mark. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "openfile.h"

#define DEFAULT_CACHE_BYTES (4u << 20)
/* A transaction holds at most about three clusters of records (copying an
 * L2 table up raises a refcount block's worth of refcounts), and commits are
 * forced at an eighth of the journal: eight clusters always suffice. */
#define MIN_JOURNAL_CLUSTERS 8u

void vd_create_opts_init(struct vd_create_opts *opts)
{
	/* cluster_bytes 0: the default, which depends on 'subclusters'. */
	memset(opts, 0, sizeof(*opts));
}

void vd_open_opts_init(struct vd_open_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
}

void vd_header_to_disk(const struct vd_disk_header *h, struct vd_disk_header *d)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->magic, VD_MAGIC, 8);
	d->version = htole32(h->version);
	d->header_bytes = htole32(h->header_bytes);
	d->incompat_features = htole64(h->incompat_features);
	d->compat_features = htole64(h->compat_features);
	d->autoclear_features = htole64(h->autoclear_features);
	d->cluster_bits = htole32(h->cluster_bits);
	d->l1_entries = htole32(h->l1_entries);
	d->size_bytes = htole64(h->size_bytes);
	d->l1_offset = htole64(h->l1_offset);
	d->refcount_table_offset = htole64(h->refcount_table_offset);
	d->refcount_table_clusters = htole32(h->refcount_table_clusters);
	d->journal_bytes = htole32(h->journal_bytes);
	d->journal_offset = htole64(h->journal_offset);
	d->journal_seq = htole64(h->journal_seq);
	d->snapshot_table_offset = htole64(h->snapshot_table_offset);
	d->snapshot_table_bytes = htole32(h->snapshot_table_bytes);
	d->snapshot_count = htole32(h->snapshot_count);
	d->backing_name_bytes = htole32(h->backing_name_bytes);
	d->create_time_ns = htole64(h->create_time_ns);
	d->crc32c = htole32(vd_crc32c(0, d, offsetof(struct vd_disk_header, crc32c)));
}

/* Converts and checks what can be checked without the file: -EINVAL for a
 * file that is not an image at all, -EUCLEAN for a damaged one,
 * -EOPNOTSUPP for one that needs features we lack. */
int vd_header_from_disk(const struct vd_disk_header *d, struct vd_disk_header *h)
{
	memset(h, 0, sizeof(*h));
	if (memcmp(d->magic, VD_MAGIC, 8) != 0) {
		return -EINVAL;
	}
	memcpy(h->magic, d->magic, 8);
	h->version = le32toh(d->version);
	h->header_bytes = le32toh(d->header_bytes);
	h->incompat_features = le64toh(d->incompat_features);
	h->compat_features = le64toh(d->compat_features);
	h->autoclear_features = le64toh(d->autoclear_features);
	h->cluster_bits = le32toh(d->cluster_bits);
	h->l1_entries = le32toh(d->l1_entries);
	h->size_bytes = le64toh(d->size_bytes);
	h->l1_offset = le64toh(d->l1_offset);
	h->refcount_table_offset = le64toh(d->refcount_table_offset);
	h->refcount_table_clusters = le32toh(d->refcount_table_clusters);
	h->journal_bytes = le32toh(d->journal_bytes);
	h->journal_offset = le64toh(d->journal_offset);
	h->journal_seq = le64toh(d->journal_seq);
	h->snapshot_table_offset = le64toh(d->snapshot_table_offset);
	h->snapshot_table_bytes = le32toh(d->snapshot_table_bytes);
	h->snapshot_count = le32toh(d->snapshot_count);
	h->backing_name_bytes = le32toh(d->backing_name_bytes);
	h->create_time_ns = le64toh(d->create_time_ns);
	h->crc32c = le32toh(d->crc32c);
	return 0;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* Range checks of every header field, with the field named for the user. */
static int header_validate(const struct vd_disk_header *h, const struct vd_disk_header *raw,
			   uint64_t file_bytes, const char *path, struct errmsg *err)
{
	uint64_t cb, need_l1;

	if (vd_crc32c(0, raw, offsetof(struct vd_disk_header, crc32c)) != h->crc32c) {
		errmsg_set(err, "%s: header checksum mismatch (bytes 508-511): header is corrupt",
			   path);
		return -EUCLEAN;
	}
	if (h->version != VD_VERSION) {
		errmsg_set(err, "%s: unsupported format version %" PRIu32 " (this build reads %u)",
			   path, h->version, VD_VERSION);
		return -EOPNOTSUPP;
	}
	if (h->header_bytes != VD_HEADER_BYTES) {
		errmsg_set(err, "%s: header_bytes (offset 12) is %" PRIu32 ", not 512", path,
			   h->header_bytes);
		return -EUCLEAN;
	}
	if (h->incompat_features & ~VD_INCOMPAT_KNOWN) {
		errmsg_set(err, "%s: unknown incompatible features 0x%" PRIx64
			   " (offset 16): refusing to open", path,
			   h->incompat_features & ~VD_INCOMPAT_KNOWN);
		return -EOPNOTSUPP;
	}
	if (h->cluster_bits < 12 || h->cluster_bits > 21) {
		errmsg_set(err, "%s: cluster_bits (offset 40) is %" PRIu32 ", outside 12..21",
			   path, h->cluster_bits);
		return -EUCLEAN;
	}
	if ((h->incompat_features & VD_INCOMPAT_SUBCLUSTERS) &&
	    h->cluster_bits < VD_SC_MIN_CLUSTER_BITS) {
		errmsg_set(err, "%s: cluster_bits (offset 40) is %" PRIu32 ", below the %u "
			   "that subclusters need", path, h->cluster_bits, VD_SC_MIN_CLUSTER_BITS);
		return -EUCLEAN;
	}
	cb = 1ull << h->cluster_bits;
	if (h->size_bytes % VD_SECTOR_BYTES || h->size_bytes > VD_MAX_SIZE_BYTES) {
		errmsg_set(err, "%s: virtual size %" PRIu64 " (offset 48) is not a multiple of "
			   "512 below 2^56", path, h->size_bytes);
		return -EUCLEAN;
	}
	need_l1 = div_up(div_up(h->size_bytes, cb),
			 cb / ((h->incompat_features & VD_INCOMPAT_SUBCLUSTERS) ? 16 : 8));
	if (h->l1_entries < need_l1 || h->l1_entries > (UINT32_MAX - 511) / 8) {
		errmsg_set(err, "%s: l1_entries (offset 44) is %" PRIu32 ", the size needs %" PRIu64,
			   path, h->l1_entries, need_l1);
		return -EUCLEAN;
	}
	struct {
		const char *name;
		unsigned at;
		uint64_t off, bytes;
	} regions[] = {
		{"L1 table", 56, h->l1_offset, (uint64_t)h->l1_entries * 8},
		{"refcount table", 64, h->refcount_table_offset,
		 (uint64_t)h->refcount_table_clusters * cb},
		{"journal", 80, h->journal_offset, h->journal_bytes},
	};
	for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
		if (regions[i].off == 0 || regions[i].off % cb || regions[i].bytes == 0) {
			errmsg_set(err, "%s: %s offset 0x%" PRIx64 " (offset %u) is not a cluster "
				   "boundary after the header", path, regions[i].name,
				   regions[i].off, regions[i].at);
			return -EUCLEAN;
		}
		if (regions[i].off > file_bytes || regions[i].bytes > file_bytes - regions[i].off) {
			errmsg_set(err, "%s: %s at 0x%" PRIx64 " lies beyond the end of the file",
				   path, regions[i].name, regions[i].off);
			return -EUCLEAN;
		}
	}
	if (h->journal_bytes % cb || h->journal_bytes / cb < MIN_JOURNAL_CLUSTERS) {
		errmsg_set(err, "%s: journal_bytes (offset 76) is %" PRIu32 ", not at least %u "
			   "whole clusters", path, h->journal_bytes, MIN_JOURNAL_CLUSTERS);
		return -EUCLEAN;
	}
	if (h->backing_name_bytes > VD_BACKING_NAME_MAX) {
		errmsg_set(err, "%s: backing_name_bytes (offset 112) is %" PRIu32
			   ", above %u", path, h->backing_name_bytes, VD_BACKING_NAME_MAX);
		return -EUCLEAN;
	}
	return 0;
}

/* Reads and checks the header sector (through the overlay, when there is
 * one). */
static int read_header(struct vd_image *img, struct errmsg *err)
{
	struct vd_disk_header *raw = vd_aligned_alloc(VD_HEADER_BYTES);
	int ret;

	if (!raw) {
		return -ENOMEM;
	}
	ret = vd_meta_read(img, raw, VD_HEADER_BYTES, 0);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot read the header: %s", img->path, strerror(-ret));
		goto out;
	}
	if (img->file_bytes < VD_HEADER_BYTES) {
		errmsg_set(err, "%s: not a vdisk image (the file is only %" PRIu64 " bytes)",
			   img->path, img->file_bytes);
		ret = -EINVAL;
		goto out;
	}
	ret = vd_header_from_disk(raw, &img->hdr);
	if (ret == -EINVAL) {
		errmsg_set(err, "%s: not a vdisk image (bad magic)", img->path);
		goto out;
	}
	ret = header_validate(&img->hdr, raw, img->file_bytes, img->path, err);
out:
	free(raw);
	return ret;
}

static void set_geometry(struct vd_image *img)
{
	img->cluster_bits = img->hdr.cluster_bits;
	img->cluster_bytes = 1u << img->cluster_bits;
	img->l2_shift = (img->hdr.incompat_features & VD_INCOMPAT_SUBCLUSTERS) ? 1 : 0;
	img->l2_entries = img->cluster_bytes / (8u << img->l2_shift);
	img->sc_bits = img->l2_shift ? img->cluster_bits - 5 : img->cluster_bits;
	img->sc_bytes = 1u << img->sc_bits;
	img->rb_entries = img->cluster_bytes / 2;
	img->guest_clusters = div_up(img->hdr.size_bytes, img->cluster_bytes);
}

void vd_header_changed(struct vd_image *img)
{
	vd_header_to_disk(&img->hdr, (struct vd_disk_header *)img->header_blk->data);
	vd_mblock_mark(img, img->header_blk, 0, VD_HEADER_BYTES);
}

static int write_header_now(struct vd_image *img)
{
	struct vd_disk_header *d = (struct vd_disk_header *)img->header_blk->data;
	int ret;

	vd_header_to_disk(&img->hdr, d);
	ret = vd_file_pwrite(&img->file, d, VD_HEADER_BYTES, 0);
	return ret < 0 ? ret : vd_file_sync(&img->file);
}

/* Lock layout, far beyond any data (locks may lie past the end of a file):
 * one byte a writer holds exclusively and readers share, and one byte per
 * holder at LOCK_PID_BASE + pid, because F_OFD_GETLK cannot say who holds a
 * lock but can say where it is. */
#define LOCK_USE_BYTE (1ll << 50)
#define LOCK_PID_BASE ((1ll << 50) + (1ll << 32))
#define LOCK_PID_SPAN (1ll << 23) /* above pid_max's limit of 2^22 */

static int ofd_lock(int fd, short type, off_t start, off_t len, int cmd)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};

	return fcntl(fd, cmd, &fl) < 0 ? -errno : 0;
}

static long lock_holder(int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_PID_BASE,
			   .l_len = LOCK_PID_SPAN};

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type == F_UNLCK) {
		return -1;
	}
	return (long)(fl.l_start - LOCK_PID_BASE);
}

static int lock_image(struct vd_image *img, unsigned flags, struct errmsg *err)
{
	bool writer = flags & VD_OPEN_RDWR;
	int ret;

	if (!writer && (flags & VD_OPEN_FORCE_SHARE)) {
		return 0;
	}
	ret = ofd_lock(img->file.fd, writer ? F_WRLCK : F_RDLCK, LOCK_USE_BYTE, 1, F_OFD_SETLK);
	if (ret == 0) {
		ret = ofd_lock(img->file.fd, F_RDLCK, LOCK_PID_BASE + getpid(), 1, F_OFD_SETLK);
	}
	if (ret == -EAGAIN || ret == -EACCES) {
		long pid = lock_holder(img->file.fd);

		if (pid > 0) {
			errmsg_set(err, "%s: in use by process %ld", img->path, pid);
		} else {
			errmsg_set(err, "%s: in use by another process", img->path);
		}
		return -EBUSY;
	}
	if (ret < 0) {
		errmsg_set(err, "%s: cannot lock: %s", img->path, strerror(-ret));
	}
	return ret;
}

static void users_add_pid(struct vd_users *u, long pid)
{
	for (unsigned i = 0; i < u->n_pids; i++) {
		if (u->pids[i] == pid) {
			return;
		}
	}
	if (u->n_pids < VD_USERS_MAX) {
		u->pids[u->n_pids++] = pid;
	}
}

/* One line of /proc/locks: "N: OFDLCK ADVISORY  READ -1 fe:00:1234 START END".
 * OFD locks show no pid there, but our pid bytes show their offset; any
 * other lock on the file (QEMU's on an ISO) means in use too, and POSIX
 * and flock locks do show their pid. */
static void users_from_line(const char *line, dev_t dev, ino_t ino, struct vd_users *u)
{
	unsigned maj, min;
	unsigned long long inode;
	long long start;
	long pid;
	char kind[16], type[16];

	if (sscanf(line, "%*d: %15s %*s %15s %ld %x:%x:%llu %lld", kind, type, &pid, &maj, &min,
		   &inode, &start) != 7) {
		return;
	}
	if (maj != major(dev) || min != minor(dev) || inode != (unsigned long long)ino) {
		return;
	}
	u->in_use = true;
	if (strcmp(kind, "OFDLCK")) {
		if (pid > 0) {
			users_add_pid(u, pid);
		}
		return;
	}
	if (start == LOCK_USE_BYTE && !strcmp(type, "WRITE")) {
		u->writer = true;
	}
	if (start >= LOCK_PID_BASE && start < LOCK_PID_BASE + LOCK_PID_SPAN) {
		users_add_pid(u, (long)(start - LOCK_PID_BASE));
	}
}

int vd_image_users(const char *path, struct vd_users *u, struct errmsg *err)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_USE_BYTE,
			   .l_len = 1};
	char line[256];
	struct stat st;
	FILE *f;
	int fd, ret = 0;

	memset(u, 0, sizeof(*u));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot open: %s", path, strerror(-ret));
		goto out;
	}
	/* Asking the lock itself works on a shared file system too, where
	 * the holders may be on other hosts. */
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot query its lock: %s", path, strerror(-ret));
		goto out;
	}
	u->in_use = fl.l_type != F_UNLCK;
	u->writer = fl.l_type == F_WRLCK;
	f = fopen("/proc/locks", "re");
	while (f && fgets(line, sizeof(line), f)) {
		users_from_line(line, st.st_dev, st.st_ino, u);
	}
	if (f) {
		fclose(f);
	}
	if (u->in_use && u->n_pids == 0) {
		long pid = lock_holder(fd);

		if (pid > 0) {
			u->pids[u->n_pids++] = pid;
		}
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	return ret;
}

static int open_fd(struct vd_image *img, const char *path, unsigned flags, struct errmsg *err)
{
	int oflags = O_CLOEXEC | ((flags & VD_OPEN_RDWR) ? O_RDWR : O_RDONLY);
	uint8_t *probe;
	ssize_t n;

	/* Regular files only: the image grows and shrinks with the file, and
	 * a FIFO would block the open for ever. */
	img->file.fd = openfile_open(path, oflags | ((flags & VD_OPEN_BUFFERED) ? 0 : O_DIRECT),
				     0, false, err);
	if (img->file.fd < 0) {
		return img->file.fd;
	}
	img->file.direct = fcntl(img->file.fd, F_GETFL) & O_DIRECT;
	img->file.align_bytes = img->file.direct ? VD_SECTOR_BYTES : 1;
	if (!img->file.direct) {
		return 0;
	}
	/* Some file systems want 4 KiB direct I/O; beyond that, buffered. */
	probe = vd_aligned_alloc(4096);
	if (!probe) {
		return -ENOMEM;
	}
	n = pread(img->file.fd, probe, VD_SECTOR_BYTES, 0);
	if (n < 0 && errno == EINVAL) {
		img->file.align_bytes = 4096;
		n = pread(img->file.fd, probe, 4096, 0);
		if (n < 0 && errno == EINVAL) {
			int fl = fcntl(img->file.fd, F_GETFL);

			fcntl(img->file.fd, F_SETFL, fl & ~O_DIRECT);
			img->file.direct = false;
			img->file.align_bytes = 1;
		}
	}
	free(probe);
	return 0;
}

static int pin_tables(struct vd_image *img)
{
	uint32_t l1_bytes = (img->hdr.l1_entries * 8 + 511) & ~511u;
	int ret;

	ret = vd_mblock_pinned(img, 0, VD_HEADER_BYTES, &img->header_blk);
	if (ret == 0) {
		ret = vd_mblock_pinned(img, img->hdr.l1_offset, l1_bytes, &img->l1_blk);
	}
	if (ret == 0) {
		ret = vd_mblock_pinned(img, img->hdr.refcount_table_offset,
				       img->hdr.refcount_table_clusters * img->cluster_bytes,
				       &img->rt_blk);
	}
	return ret;
}

/* Replays a journal left by a writer that did not close the image. */
static int recover(struct vd_image *img, struct errmsg *err)
{
	int n = vd_journal_replay(img, img->writable, err);

	if (n < 0) {
		return n;
	}
	if (n > 0) {
		/* The records may have changed the header itself. */
		uint64_t seq = img->journal_seq;
		int ret = read_header(img, err);

		if (ret < 0) {
			return ret;
		}
		img->journal_seq = seq;
	}
	img->hdr.journal_seq = img->journal_seq;
	return 0;
}

static void image_free(struct vd_image *img)
{
	if (!img) {
		return;
	}
	vd_ctx_destroy(img->sync_ctx);
	vd_close(img->backing);
	free(img->backing_name);
	vd_cache_fini(img);
	vd_freemap_fini(img);
	vd_snapshots_free(img);
	vd_overlay_free(img);
	if (img->file.fd >= 0) {
		close(img->file.fd);
	}
	free(img->path);
	free(img);
}

static int open_common(const char *path, const struct vd_open_opts *opts,
		       const struct vd_file_ops *ops, void *ops_arg, unsigned depth,
		       struct vd_image **imagep, struct errmsg *err)
{
	struct vd_open_opts defaults;
	struct vd_image *img = calloc(1, sizeof(*img));
	int ret;

	if (!opts) {
		vd_open_opts_init(&defaults);
		opts = &defaults;
	}
	if (!img) {
		return -ENOMEM;
	}
	img->file.fd = -1;
	img->open_flags = opts->flags;
	img->depth = depth;
	img->path = strdup(path);
	img->writable = opts->flags & VD_OPEN_RDWR;
	if (!img->path) {
		ret = -ENOMEM;
		goto out_free;
	}
	if (ops) {
		img->file.ops = ops;
		img->file.ops_arg = ops_arg;
		img->file.align_bytes = 1;
	} else {
		ret = open_fd(img, path, opts->flags, err);
		if (ret == 0) {
			ret = lock_image(img, opts->flags, err);
		}
		if (ret < 0) {
			goto out_free;
		}
	}
	ret = vd_file_size(&img->file, &img->file_bytes);
	if (ret == 0) {
		ret = read_header(img, err);
	}
	if (ret < 0) {
		goto out_free;
	}
	img->was_dirty = img->hdr.incompat_features & VD_INCOMPAT_JOURNAL_DIRTY;
	img->journal_seq = img->hdr.journal_seq;
	if (img->was_dirty) {
		ret = recover(img, err);
		if (ret < 0) {
			goto out_free;
		}
	}
	set_geometry(img);
	img->cache_limit_bytes = opts->cache_bytes ? opts->cache_bytes : DEFAULT_CACHE_BYTES;
	if (img->cache_limit_bytes < 4ull * img->cluster_bytes) {
		img->cache_limit_bytes = 4ull * img->cluster_bytes;
	}
	ret = vd_cache_init(img);
	if (ret == 0) {
		ret = pin_tables(img);
	}
	if (ret == 0) {
		ret = vd_snapshots_load(img, err);
	}
	if (ret == 0) {
		ret = vd_backing_open(img, err);
	}
	if (ret == 0 && img->writable) {
		ret = vd_freemap_init(img);
	}
	if (ret == 0 && img->writable && !(opts->flags & VD_OPEN_NO_RESUME)) {
		/* The deletion finished below writes refcounts through the
		 * refcount table and frees clusters by their refcounts: only
		 * through structures a check has found sound (check.c, rule
		 * 4), and before this open has written anything. */
		ret = vd_check_resumable(img, err);
	}
	if (ret == 0 && img->writable) {
		/* Mark the image in use; this also retires a replayed journal. */
		img->hdr.incompat_features |= VD_INCOMPAT_JOURNAL_DIRTY;
		img->hdr.autoclear_features &= VD_AUTOCLEAR_KNOWN;
		ret = write_header_now(img);
		img->journal_dirty_flag_set = ret == 0;
	}
	if (ret == 0 && img->writable && !(opts->flags & VD_OPEN_NO_RESUME)) {
		/* A deletion (or revert) interrupted by a crash is finished. */
		ret = vd_snapshots_resume(img);
	}
	if (ret < 0) {
		if (err && !err->msg[0]) {
			errmsg_set(err, "%s: cannot open: %s", path, strerror(-ret));
		}
		goto out_free;
	}
	*imagep = img;
	return 0;
out_free:
	image_free(img);
	return ret;
}

int vd_open_with_ops(const char *path, const struct vd_open_opts *opts,
		     const struct vd_file_ops *ops, void *ops_arg, struct vd_image **imagep,
		     struct errmsg *err)
{
	return open_common(path, opts, ops, ops_arg, 0, imagep, err);
}

int vd_open_ops_depth(const char *path, const struct vd_open_opts *opts,
		      const struct vd_file_ops *ops, void *ops_arg, unsigned depth,
		      struct vd_image **imagep, struct errmsg *err)
{
	return open_common(path, opts, ops, ops_arg, depth, imagep, err);
}

int vd_open_depth(const char *path, const struct vd_open_opts *opts, unsigned depth,
		  struct vd_image **imagep, struct errmsg *err)
{
	return open_common(path, opts, NULL, NULL, depth, imagep, err);
}

int vd_open(const char *path, const struct vd_open_opts *opts, struct vd_image **imagep,
	    struct errmsg *err)
{
	if (err) {
		errmsg_clear(err);
	}
	return vd_open_with_ops(path, opts, NULL, NULL, imagep, err);
}

int vd_close(struct vd_image *img)
{
	int ret = 0;

	if (!img) {
		return 0;
	}
	if (img->writable) {
		ret = vd_journal_commit(img);
		if (ret == 0) {
			ret = vd_journal_checkpoint(img);
		}
		if (ret == 0 && img->file_bytes > vd_cluster_off(img, img->end_clusters)) {
			ret = vd_file_truncate(&img->file, vd_cluster_off(img, img->end_clusters));
		}
		if (ret == 0) {
			img->hdr.incompat_features &= ~VD_INCOMPAT_JOURNAL_DIRTY;
			ret = write_header_now(img);
		}
	}
	image_free(img);
	return ret;
}

uint64_t vd_size_bytes(const struct vd_image *img)
{
	return img->hdr.size_bytes;
}

void vd_set_durable_map(struct vd_image *img, bool on)
{
	if (on) {
		img->open_flags |= VD_OPEN_DURABLE_MAP;
	} else {
		img->open_flags &= ~(unsigned)VD_OPEN_DURABLE_MAP;
	}
}

uint32_t vd_cluster_bytes(const struct vd_image *img)
{
	return img->cluster_bytes;
}

uint32_t vd_subcluster_bytes(const struct vd_image *img)
{
	return img->l2_shift ? img->sc_bytes : 0;
}

const char *vd_path(const struct vd_image *img)
{
	return img->path;
}
