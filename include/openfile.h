/* SPDX-License-Identifier: MIT */
/* openfile.h: opening a file a user names as an image (libvdisk's images,
 * the tools' raw and qcow2 files) without blocking on what cannot be one.
 * A FIFO opened for reading waits for a writer for ever, a directory or a
 * socket fails later with a confusing error; these are refused at open, in
 * one sentence.  Header-only, like errmsg.h, so no library depends on
 * another. */
#ifndef OPENFILE_H
#define OPENFILE_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"

static inline const char *openfile_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	default:
		return "not a regular file";
	}
}

/* Refuses 'mode' unless it is a regular file or, with 'allow_blockdev', a
 * block device: -EINVAL and one sentence in 'err'. */
static inline int openfile_check_mode(const char *path, mode_t mode, bool allow_blockdev,
				      struct errmsg *err)
{
	if (S_ISREG(mode) || (allow_blockdev && S_ISBLK(mode))) {
		return 0;
	}
	errmsg_set(err, "%s: is %s; an image must be a regular file%s", path,
		   openfile_kind(mode), allow_blockdev ? " or a block device" : "");
	return -EINVAL;
}

/* open(2) of 'path' with 'oflags' that never blocks on a FIFO: the file is
 * opened non-blocking, its type checked with fstat, then O_NONBLOCK is
 * cleared again.  When the file system refuses O_DIRECT, opens without it
 * (F_GETFL tells which).  Returns the descriptor, or a negative errno with one
 * sentence in 'err' (NULL allowed).  'mode' is used with O_CREAT. */
static inline int openfile_open(const char *path, int oflags, mode_t mode, bool allow_blockdev,
				struct errmsg *err)
{
	struct stat st;
	int fd = open(path, oflags | O_NONBLOCK, mode);
	int ret;

	if (fd < 0 && errno == EINVAL && (oflags & O_DIRECT)) {
		/* The file system cannot do direct I/O: buffered it is. */
		fd = open(path, (oflags & ~O_DIRECT) | O_NONBLOCK, mode);
	}
	if (fd < 0) {
		ret = -errno;
		/* A FIFO without a reader refuses a non-blocking writer with
		 * ENXIO, a directory a writer with EISDIR: name what the file
		 * is rather than that. */
		if ((ret == -ENXIO || ret == -EISDIR) && stat(path, &st) == 0 &&
		    openfile_check_mode(path, st.st_mode, allow_blockdev, err) < 0) {
			return -EINVAL;
		}
		errmsg_set(err, "%s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot stat: %s", path, strerror(-ret));
		goto out_close;
	}
	ret = openfile_check_mode(path, st.st_mode, allow_blockdev, err);
	if (ret < 0) {
		goto out_close;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot open: %s", path, strerror(-ret));
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return ret;
}

#endif
