/* SPDX-License-Identifier: MIT */
/* store.c: a daemon's persistent state as one JSON file, replaced
 * atomically: write a temporary file, fsync it, rename it over, fsync the
 * directory (without the last step the rename itself may not survive a
 * power cut). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rpc.h"

static void tmp_name(const char *path, char *buf, size_t size)
{
	snprintf(buf, size, "%s.tmp", path);
}

static int sync_dir_of(const char *path)
{
	char copy[PATH_MAX];
	int fd, ret = 0;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	if (fsync(fd) != 0) {
		ret = -errno;
	}
	close(fd);
	return ret;
}

static int write_all(int fd, const char *buf, size_t size)
{
	while (size) {
		ssize_t n = write(fd, buf, size);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		buf += n;
		size -= (size_t)n;
	}
	return 0;
}

int rpc_store_save(const char *path, struct json_object *doc, struct errmsg *err)
{
	const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY);
	char tmp[PATH_MAX + 8];
	int fd, ret;

	tmp_name(path, tmp, sizeof(tmp));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = write_all(fd, text, strlen(text));
	if (ret == 0) {
		ret = write_all(fd, "\n", 1);
	}
	if (ret == 0 && fsync(fd) != 0) {
		ret = -errno;
	}
	if (close(fd) != 0 && ret == 0) {
		ret = -errno;
	}
	if (ret == 0 && rename(tmp, path) != 0) {
		ret = -errno;
	}
	if (ret == 0) {
		ret = sync_dir_of(path);
	}
out:
	if (ret < 0) {
		errmsg_set(err, "cannot save the state to %s: %s", path, strerror(-ret));
		unlink(tmp);
	}
	return ret;
}

int rpc_store_load(const char *path, struct json_object **docp, struct errmsg *err)
{
	char tmp[PATH_MAX + 8];
	struct json_object *doc;

	/* A temporary file is a save that never reached its rename: the
	 * file itself is still the last complete state. */
	tmp_name(path, tmp, sizeof(tmp));
	unlink(tmp);
	if (access(path, F_OK) != 0) {
		return -errno;
	}
	doc = json_object_from_file(path);
	if (!doc || !json_object_is_type(doc, json_type_object)) {
		errmsg_set(err, "%s is not a state file (%s)", path,
			   doc ? "not a JSON object" : json_util_get_last_err());
		json_object_put(doc);
		return -EINVAL;
	}
	*docp = doc;
	return 0;
}
