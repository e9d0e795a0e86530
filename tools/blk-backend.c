/* SPDX-License-Identifier: MIT */
/* blk-backend.c: choosing the back end of blk-backend.h for a file. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk-backend.h"
#ifdef VDD_RBD
#include "vrbd.h"
#endif

static const struct blk_backend_class *const classes[] = {&blk_backend_vdisk, &blk_backend_raw};

int blk_backend_open(const char *path, const char *format, const struct blk_open_opts *opts,
		     struct blk_backend **bp, struct errmsg *err)
{
	const struct blk_backend_class *cls = NULL;
	struct stat st;
	int fd;

	if (strncmp(path, "rbd:", 4) == 0) {
#ifdef VDD_RBD
		if (format && strcmp(format, "auto") != 0 && strcmp(format, "rbd") != 0) {
			errmsg_set(err, "%s: an RBD image is served with format rbd, not '%s'",
				   path, format);
			return -EINVAL;
		}
		return blk_backend_rbd.open(path, opts, bp, err);
#else
		errmsg_set(err, "%s: this vdiskd was built without Ceph RBD support (librbd-dev)",
			   path);
		return -ENOTSUP;
#endif
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int ret = -errno;

		errmsg_set(err, "%s: cannot open: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		close(fd);
		errmsg_set(err, "%s: not a regular file or a block device", path);
		return -EINVAL;
	}
	if (!format || strcmp(format, "auto") == 0) {
		cls = blk_backend_vdisk.probe(fd) ? &blk_backend_vdisk : &blk_backend_raw;
	} else {
		for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
			if (strcmp(classes[i]->name, format) == 0) {
				cls = classes[i];
			}
		}
	}
	close(fd);
	if (!cls) {
		errmsg_set(err, "unknown format '%s': use auto, vdisk or raw", format);
		return -EINVAL;
	}
	return cls->open(path, opts, bp, err);
}
