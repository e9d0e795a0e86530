/* SPDX-License-Identifier: MIT */
/* fileio.c: synchronous access to the host file for metadata, through the
 * test hook when one is installed.  Guest data goes through io.c instead. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void *vd_aligned_alloc(size_t bytes)
{
	void *p;

	if (posix_memalign(&p, 4096, bytes ? bytes : 1)) {
		return NULL;
	}
	return p;
}

static int pread_unaligned(struct vd_file *f, void *buf, size_t len, uint64_t off)
{
	uint64_t a = f->align_bytes, start = off / a * a, end = (off + len + a - 1) / a * a;
	uint8_t *tmp = vd_aligned_alloc(end - start);
	int ret;

	if (!tmp) {
		return -ENOMEM;
	}
	ret = vd_file_pread(f, tmp, end - start, start);
	if (ret == 0) {
		memcpy(buf, tmp + (off - start), len);
	}
	free(tmp);
	return ret;
}

static bool misaligned(const struct vd_file *f, const void *buf, size_t len, uint64_t off);

/* Reads past the end of the file read as zeros, as sparse clusters do. */
int vd_file_pread(struct vd_file *f, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	f->sync_calls++;
	if (!f->ops && misaligned(f, buf, len, off)) {
		return pread_unaligned(f, buf, len, off);
	}

	while (done < len) {
		ssize_t n;

		if (f->ops) {
			n = f->ops->pread(f->ops_arg, (char *)buf + done, len - done, off + done);
		} else {
			n = pread(f->fd, (char *)buf + done, len - done, off + done);
		}
		if (n < 0) {
			if (!f->ops && errno == EINTR) {
				continue;
			}
			return f->ops ? (int)n : -errno;
		}
		if (n == 0) {
			memset((char *)buf + done, 0, len - done);
			break;
		}
		done += n;
	}
	return 0;
}

/* O_DIRECT wants buffer, length and offset aligned; journal replay writes
 * records of any 8-byte granularity, so those go through an aligned
 * read-modify-write of the sectors they touch. */
static int pwrite_unaligned(struct vd_file *f, const void *buf, size_t len, uint64_t off)
{
	uint64_t a = f->align_bytes, start = off / a * a, end = (off + len + a - 1) / a * a;
	uint8_t *tmp = vd_aligned_alloc(end - start);
	int ret;

	if (!tmp) {
		return -ENOMEM;
	}
	ret = vd_file_pread(f, tmp, end - start, start);
	if (ret == 0) {
		memcpy(tmp + (off - start), buf, len);
		ret = vd_file_pwrite(f, tmp, end - start, start);
	}
	free(tmp);
	return ret;
}

static bool misaligned(const struct vd_file *f, const void *buf, size_t len, uint64_t off)
{
	return f->direct && ((uintptr_t)buf % 4096 || len % f->align_bytes || off % f->align_bytes);
}

int vd_file_pwrite(struct vd_file *f, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	f->sync_calls++;
	if (!f->ops && misaligned(f, buf, len, off)) {
		return pwrite_unaligned(f, buf, len, off);
	}

	while (done < len) {
		ssize_t n;

		if (f->ops) {
			n = f->ops->pwrite(f->ops_arg, (const char *)buf + done, len - done,
					   off + done);
		} else {
			n = pwrite(f->fd, (const char *)buf + done, len - done, off + done);
		}
		if (n < 0) {
			if (!f->ops && errno == EINTR) {
				continue;
			}
			return f->ops ? (int)n : -errno;
		}
		if (n == 0) {
			return -EIO;
		}
		done += n;
	}
	return 0;
}

int vd_file_sync(struct vd_file *f)
{
	f->sync_calls++;
	if (f->ops) {
		return f->ops->sync(f->ops_arg);
	}
	return fdatasync(f->fd) < 0 ? -errno : 0;
}

/* Makes [off, off+len) read as zeros and frees its blocks where the file
 * system can; falls back to zeroing, then to writing zeros. */
int vd_file_punch(struct vd_file *f, uint64_t off, uint64_t len)
{
	static const size_t chunk = 1u << 20;
	void *zeros;
	int ret = 0;

	f->sync_calls++;
	if (f->ops) {
		return f->ops->punch(f->ops_arg, off, len);
	}
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0) {
		return 0;
	}
	if (fallocate(f->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len) == 0) {
		return 0;
	}
	zeros = vd_aligned_alloc(chunk);
	if (!zeros) {
		return -ENOMEM;
	}
	memset(zeros, 0, chunk);
	for (uint64_t done = 0; done < len && ret == 0; done += chunk) {
		size_t n = len - done < chunk ? len - done : chunk;

		ret = vd_file_pwrite(f, zeros, n, off + done);
	}
	free(zeros);
	return ret;
}

int vd_file_truncate(struct vd_file *f, uint64_t size)
{
	f->truncate_calls++;
	if (f->ops) {
		return f->ops->truncate(f->ops_arg, size);
	}
	return ftruncate(f->fd, size) < 0 ? -errno : 0;
}

int vd_file_size(struct vd_file *f, uint64_t *sizep)
{
	struct stat st;

	if (f->ops) {
		return f->ops->size(f->ops_arg, sizep);
	}
	if (fstat(f->fd, &st) < 0) {
		return -errno;
	}
	*sizep = st.st_size;
	return 0;
}
