/* SPDX-License-Identifier: MIT */
/* source.c: any image the library can read, seen the same way, and the
 * sparse copy engine on top of it (contracts in vdisk.h, "Sources and
 * copies").  A source describes itself as runs of data and runs that read
 * as zeros, from what its format knows: SEEK_DATA/SEEK_HOLE for a raw
 * file, vd_map() for a vdisk image, the L1/L2 mapping for qcow2 (qcow2.c).
 * The copy writes only data, and of that only blocks that are not all
 * zeros, so thin images stay thin through convert, import, export and the
 * migration copy. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "openfile.h"
#include "internal.h"
#include "qcow2.h"

/* The copy's unit: large enough for sequential speed, small enough that
 * progress moves and a buffer costs little. */
#define COPY_CHUNK_BYTES (2u << 20)

struct vd_source {
	char *path;
	enum vd_format fmt;
	uint64_t size_bytes;
	int fd;		      /* raw */
	bool seek_data;	      /* raw: SEEK_DATA/SEEK_HOLE work here */
	struct vd_image *img; /* vdisk */
	bool own_img;	      /* opened here, closed here */
	struct vd_snap_view *view; /* a snapshot of 'img' (owned) */
	bool chain;	      /* with 'view': 'img' has a backing chain */
	struct vd_qcow2 *qcow2;
	const struct vd_source_ops *ops; /* vd_source_from_ops */
	void *ops_arg;
};

static const char *const format_names[] = {
	[VD_FORMAT_AUTO] = "auto", [VD_FORMAT_RAW] = "raw", [VD_FORMAT_VDISK] = "vdisk",
	[VD_FORMAT_QCOW2] = "qcow2",
};

const char *vd_format_name(enum vd_format fmt)
{
	return (unsigned)fmt < sizeof(format_names) / sizeof(format_names[0]) ? format_names[fmt]
									      : "unknown";
}

int vd_format_parse(const char *name, enum vd_format *fmtp)
{
	for (unsigned i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcmp(name, format_names[i]) == 0) {
			*fmtp = (enum vd_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

int vd_file_open_checked(const char *path, int oflags, int *fdp, struct errmsg *err)
{
	int fd = openfile_open(path, oflags | O_CLOEXEC, 0, true, err);

	if (fd < 0) {
		return fd;
	}
	*fdp = fd;
	return 0;
}

int vd_format_probe(const char *path, enum vd_format *fmtp, struct errmsg *err)
{
	char magic[8];
	ssize_t n;
	int fd, ret;

	ret = vd_file_open_checked(path, O_RDONLY, &fd, err);
	if (ret < 0) {
		return ret;
	}
	n = pread(fd, magic, sizeof(magic), 0);
	ret = n < 0 ? -errno : 0;
	close(fd);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot read: %s", path, strerror(-ret));
		return ret;
	}
	if (n == sizeof(magic) && memcmp(magic, VD_MAGIC, sizeof(magic)) == 0) {
		*fmtp = VD_FORMAT_VDISK;
	} else if (vd_qcow2_probe(magic, (size_t)n)) {
		*fmtp = VD_FORMAT_QCOW2;
	} else {
		*fmtp = VD_FORMAT_RAW;
	}
	return 0;
}

static int raw_open(struct vd_source *src, struct errmsg *err)
{
	struct stat st;
	off_t end;
	int ret;

	ret = vd_file_open_checked(src->path, O_RDONLY, &src->fd, err);
	if (ret < 0) {
		return ret;
	}
	src->seek_data = true;
	if (fstat(src->fd, &st) == 0 && S_ISREG(st.st_mode)) {
		src->size_bytes = (uint64_t)st.st_size;
		return 0;
	}
	end = lseek(src->fd, 0, SEEK_END);
	if (end < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot find its size: %s", src->path, strerror(-ret));
		return ret;
	}
	src->size_bytes = (uint64_t)end;
	return 0;
}

static int format_open(struct vd_source *src, unsigned open_flags, struct errmsg *err)
{
	struct vd_open_opts opts;
	int ret;

	switch (src->fmt) {
	case VD_FORMAT_QCOW2:
		/* The reader checks the whole image and chain now, so what it
		 * refuses is refused before anything is written. */
		ret = vd_qcow2_open(src->path, &src->qcow2, err);
		if (ret == 0) {
			src->size_bytes = vd_qcow2_size_bytes(src->qcow2);
		}
		return ret;
	case VD_FORMAT_VDISK:
		vd_open_opts_init(&opts);
		opts.flags = open_flags & ~VD_OPEN_RDWR;
		ret = vd_open(src->path, &opts, &src->img, err);
		if (ret == 0) {
			src->own_img = true;
			src->size_bytes = vd_size_bytes(src->img);
		}
		return ret;
	default:
		return raw_open(src, err);
	}
}

int vd_source_open(const char *path, enum vd_format fmt, unsigned open_flags,
		   struct vd_source **srcp, struct errmsg *err)
{
	struct vd_source *src = calloc(1, sizeof(*src));
	int ret;

	if (!src || !(src->path = strdup(path))) {
		free(src);
		return -ENOMEM;
	}
	src->fd = -1;
	src->fmt = fmt;
	if (fmt == VD_FORMAT_AUTO) {
		ret = vd_format_probe(path, &src->fmt, err);
		if (ret < 0) {
			goto out_free;
		}
	} else if (fmt != VD_FORMAT_VDISK) {
		/* vd_open checks what it opens itself. */
		int fd;

		ret = vd_file_open_checked(path, O_RDONLY, &fd, err);
		if (ret < 0) {
			goto out_free;
		}
		close(fd);
	}
	ret = format_open(src, open_flags, err);
	if (ret < 0) {
		goto out_free;
	}
	*srcp = src;
	return 0;
out_free:
	vd_source_close(src);
	return ret;
}

int vd_source_from_image(struct vd_image *img, struct vd_source **srcp)
{
	struct vd_source *src = calloc(1, sizeof(*src));

	if (!src || !(src->path = strdup(vd_path(img)))) {
		free(src);
		return -ENOMEM;
	}
	src->fd = -1;
	src->fmt = VD_FORMAT_VDISK;
	src->img = img;
	src->size_bytes = vd_size_bytes(img);
	*srcp = src;
	return 0;
}

int vd_source_from_snapshot(struct vd_image *img, const char *name, struct vd_source **srcp,
			    struct errmsg *err)
{
	struct vd_source *src;
	int ret = vd_source_from_image(img, &src);

	if (ret < 0) {
		return ret;
	}
	ret = vd_snapshot_view_open(img, name, &src->view, err);
	if (ret < 0) {
		vd_source_close(src);
		return ret;
	}
	src->size_bytes = vd_snapshot_view_size(src->view);
	src->chain = vd_backing_path(img) != NULL;
	*srcp = src;
	return 0;
}

void vd_source_close(struct vd_source *src)
{
	if (!src) {
		return;
	}
	vd_snapshot_view_close(src->view);
	if (src->own_img) {
		vd_close(src->img);
	}
	vd_qcow2_close(src->qcow2);
	if (src->fd >= 0) {
		close(src->fd);
	}
	if (src->ops && src->ops->close) {
		src->ops->close(src->ops_arg);
	}
	free(src->path);
	free(src);
}

uint64_t vd_source_size_bytes(const struct vd_source *src)
{
	return src->size_bytes;
}

enum vd_format vd_source_format(const struct vd_source *src)
{
	return src->fmt;
}

/* A raw file at 'off': data, or a hole that surely reads as zeros.
 * Without SEEK_DATA everything is data (zero detection still keeps the
 * copy thin). */
static void raw_extent(struct vd_source *src, uint64_t off, uint64_t max, uint64_t *lenp,
		       bool *datap)
{
	off_t data, hole;

	*lenp = max;
	*datap = true;
	if (!src->seek_data) {
		return;
	}
	data = lseek(src->fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno == ENXIO) {
		*datap = false; /* a hole runs to the end of the file */
		return;
	}
	if (data < 0) {
		src->seek_data = false;
		return;
	}
	if ((uint64_t)data > off) {
		*datap = false;
		*lenp = (uint64_t)data - off < max ? (uint64_t)data - off : max;
		return;
	}
	hole = lseek(src->fd, (off_t)off, SEEK_HOLE);
	if (hole > (off_t)off && (uint64_t)hole - off < max) {
		*lenp = (uint64_t)hole - off;
	}
}

static int vdisk_extent(struct vd_source *src, uint64_t off, uint64_t max, uint64_t *lenp,
			bool *datap, struct errmsg *err)
{
	struct vd_extent e;
	bool held;
	int ret;

	if (src->view) {
		ret = vd_snapshot_view_extent(src->view, off, max, lenp, &held);
		if (ret < 0) {
			errmsg_set(err, "%s: cannot map the snapshot at guest offset %#" PRIx64 ": %s",
				   src->path, off, strerror(-ret));
		}
		/* What it does not hold reads through the chain, if any. */
		*datap = held || src->chain;
		return ret;
	}
	ret = vd_map(src->img, off, &e);

	if (ret < 0) {
		errmsg_set(err, "%s: cannot map guest offset %#" PRIx64 ": %s", src->path, off,
			   strerror(-ret));
		return ret;
	}
	if (e.offset != off || e.length == 0) {
		errmsg_set(err, "%s: a bad extent at guest offset %#" PRIx64, src->path, off);
		return -EIO;
	}
	*lenp = e.length < max ? e.length : max;
	/* What a backing chain provides must be read and copied. */
	*datap = e.state == VD_EXTENT_DATA || e.state == VD_EXTENT_BACKING;
	return 0;
}

static int qcow2_extent(struct vd_source *src, uint64_t off, uint64_t max, uint64_t *lenp,
			bool *datap, struct errmsg *err)
{
	struct vd_qcow2_extent e;
	int ret = vd_qcow2_map(src->qcow2, off, max, &e, err);

	if (ret < 0) {
		return ret;
	}
	*lenp = e.length < max ? e.length : max;
	/* Zero clusters and what no file of the chain holds stay unwritten. */
	*datap = e.state == VD_QCOW2_DATA || e.state == VD_QCOW2_BACKING;
	return 0;
}

int vd_source_from_ops(const struct vd_source_ops *ops, void *arg, uint64_t size_bytes,
		       const char *name, struct vd_source **srcp)
{
	struct vd_source *src = calloc(1, sizeof(*src));

	if (!src || !(src->path = strdup(name ? name : "source"))) {
		free(src);
		return -ENOMEM;
	}
	src->fmt = VD_FORMAT_RAW;
	src->fd = -1;
	src->size_bytes = size_bytes;
	src->ops = ops;
	src->ops_arg = arg;
	*srcp = src;
	return 0;
}

int vd_source_extent(struct vd_source *src, uint64_t off, uint64_t max, uint64_t *lenp,
		     bool *datap, struct errmsg *err)
{
	if (max == 0) {
		return -EINVAL;
	}
	if (off >= src->size_bytes) {
		*lenp = max;
		*datap = false;
		return 0;
	}
	if (max > src->size_bytes - off) {
		max = src->size_bytes - off;
	}
	if (src->ops) {
		int ret = src->ops->extent(src->ops_arg, off, max, lenp, datap);

		if (ret < 0) {
			errmsg_set(err, "%s: cannot map offset %" PRIu64 ": %s", src->path, off,
				   strerror(-ret));
		}
		return ret;
	}
	switch (src->fmt) {
	case VD_FORMAT_VDISK:
		return vdisk_extent(src, off, max, lenp, datap, err);
	case VD_FORMAT_QCOW2:
		return qcow2_extent(src, off, max, lenp, datap, err);
	default:
		raw_extent(src, off, max, lenp, datap);
		return 0;
	}
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		if (n == 0) {
			memset((char *)buf + done, 0, len - done); /* past the end */
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

int vd_source_pread(struct vd_source *src, void *buf, size_t len, uint64_t off,
		    struct errmsg *err)
{
	int ret;

	if (src->ops) {
		if (off >= src->size_bytes) {
			memset(buf, 0, len);
			return 0;
		}
		if (len > src->size_bytes - off) {
			memset((char *)buf + (src->size_bytes - off), 0,
			       len - (size_t)(src->size_bytes - off));
			len = (size_t)(src->size_bytes - off);
		}
		ret = src->ops->pread(src->ops_arg, buf, len, off);
		if (ret < 0) {
			errmsg_set(err, "%s: read of %zu bytes at offset %" PRIu64 " failed: %s",
				   src->path, len, off, strerror(-ret));
		}
		return ret;
	}
	switch (src->fmt) {
	case VD_FORMAT_QCOW2:
		return vd_qcow2_pread(src->qcow2, buf, len, off, err);
	case VD_FORMAT_VDISK:
		/* vd_pread takes whole sectors within the disk. */
		if (off >= src->size_bytes) {
			memset(buf, 0, len);
			return 0;
		}
		ret = src->view ? vd_snapshot_view_pread(src->view, buf, len, off)
				: vd_pread(src->img, buf, len, off);
		break;
	default:
		ret = pread_full(src->fd, buf, len, off);
		break;
	}
	if (ret < 0) {
		errmsg_set(err, "%s: read of %zu bytes at offset %" PRIu64 " failed: %s", src->path,
			   len, off, strerror(-ret));
	}
	return ret;
}

/* ------------------------------------------------------------- copying */

void vd_copy_opts_init(struct vd_copy_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->zero_block_bytes = 4096;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		if (n == 0) {
			return -EIO;
		}
		done += (size_t)n;
	}
	return 0;
}

static int dest_write(const struct vd_copy_dest *dst, const void *buf, size_t len, uint64_t off,
		      struct errmsg *err)
{
	int ret = dst->img	 ? vd_pwrite(dst->img, buf, len, off)
		  : dst->fd >= 0 ? pwrite_full(dst->fd, buf, len, off)
				 : dst->write(dst->write_arg, buf, len, off);

	if (ret < 0) {
		errmsg_set(err, "%s: write of %zu bytes at offset %" PRIu64 " failed: %s",
			   dst->name ? dst->name : "destination", len, off, strerror(-ret));
	}
	return ret;
}

static bool is_zero(const unsigned char *p, size_t len)
{
	/* Comparing the buffer with itself shifted by one byte checks all of
	 * it at memcmp's speed. */
	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

/* Writes what 'buf' holds for [off, off+len) except runs of zeros that
 * fill whole aligned blocks of 'zero_block' bytes. */
static int write_nonzero(const struct vd_copy_dest *dst, const unsigned char *buf, size_t len,
			 uint64_t off, uint64_t zero_block, struct errmsg *err)
{
	size_t run_start = 0, pos = 0;
	int ret;

	if (zero_block == 0 || dst->fill_holes) {
		return dest_write(dst, buf, len, off, err);
	}
	while (pos < len) {
		uint64_t blk_end = ((off + pos) / zero_block + 1) * zero_block - off;
		size_t n = blk_end < len ? blk_end - pos : len - pos;

		if (is_zero(buf + pos, n)) {
			if (pos > run_start) {
				ret = dest_write(dst, buf + run_start, pos - run_start,
						 off + run_start, err);
				if (ret < 0) {
					return ret;
				}
			}
			run_start = pos + n;
		}
		pos += n;
	}
	return pos > run_start ? dest_write(dst, buf + run_start, pos - run_start, off + run_start, err)
			       : 0;
}

/* The source's extent at 'off', at most 'max' long, ending on a multiple
 * of 'align' (unless it ends at 'max'): a vdisk destination takes whole
 * sectors, so a hole shorter than a sector is copied as data. */
static int aligned_extent(struct vd_source *src, uint64_t off, uint64_t max, uint64_t align,
			  uint64_t *lenp, bool *datap, struct errmsg *err)
{
	uint64_t len, end;
	int ret = vd_source_extent(src, off, max, &len, datap, err);

	if (ret < 0) {
		return ret;
	}
	end = off + len;
	if (end % align && len < max) {
		end = *datap ? end + align - end % align : end - end % align;
		if (end <= off) {
			end = off + align;
			*datap = true;
		}
		if (end > off + max) {
			end = off + max;
		}
	}
	*lenp = end - off;
	return 0;
}

/* Copies one chunk-bounded piece starting at 'off'; returns its length. */
static int64_t copy_step(struct vd_source *src, const struct vd_copy_dest *dst,
			 const struct vd_copy_opts *opts, unsigned char *buf, uint64_t off,
			 struct errmsg *err)
{
	uint64_t align = dst->img ? VD_SECTOR_BYTES : 1;
	uint64_t chunk_end = (off / COPY_CHUNK_BYTES + 1) * COPY_CHUNK_BYTES;
	uint64_t max = (chunk_end < dst->size_bytes ? chunk_end : dst->size_bytes) - off;
	uint64_t len, more;
	bool data, more_data;
	int ret;

	ret = aligned_extent(src, off, max, align, &len, &data, err);
	/* Gather neighbouring data extents into one read. */
	while (ret == 0 && data && len < max) {
		ret = aligned_extent(src, off + len, max - len, align, &more, &more_data, err);
		if (ret < 0 || !more_data) {
			break;
		}
		len += more;
	}
	if (ret < 0) {
		return ret;
	}
	if (data) {
		ret = vd_source_pread(src, buf, len, off, err);
		if (ret == 0) {
			ret = write_nonzero(dst, buf, len, off, opts->zero_block_bytes, err);
		}
	} else if (dst->fill_holes) {
		memset(buf, 0, len);
		ret = dest_write(dst, buf, len, off, err);
	}
	return ret < 0 ? ret : (int64_t)len;
}

int vd_copy(struct vd_source *src, const struct vd_copy_dest *dst, const struct vd_copy_opts *opts,
	    struct errmsg *err)
{
	struct vd_copy_opts defaults;
	unsigned char *buf;
	uint64_t off = 0;
	int ret = 0;

	if (!opts) {
		vd_copy_opts_init(&defaults);
		opts = &defaults;
	}
	if (opts->zero_block_bytes > COPY_CHUNK_BYTES || (!dst->img && dst->fd < 0 && !dst->write)) {
		return -EINVAL;
	}
	buf = vd_aligned_alloc(COPY_CHUNK_BYTES);
	if (!buf) {
		return -ENOMEM;
	}
	if (opts->progress) {
		opts->progress(opts->progress_arg, 0, dst->size_bytes);
	}
	while (off < dst->size_bytes) {
		int64_t n = copy_step(src, dst, opts, buf, off, err);

		if (n < 0) {
			ret = (int)n;
			break;
		}
		off += (uint64_t)n;
		if (opts->progress) {
			opts->progress(opts->progress_arg, off, dst->size_bytes);
		}
	}
	free(buf);
	return ret;
}
