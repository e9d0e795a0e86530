/* SPDX-License-Identifier: MIT */
/* daemon.c: the plumbing every daemon of the project needs the same way:
 * directories for its files, signals read from a descriptor, a pidfile, and
 * Unix socket paths claimed safely (a stale socket replaced, a live one or
 * any other file never touched). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rpc.h"

/* Pending connections a listener holds before connect() waits. */
#define LISTEN_BACKLOG 64

int rpc_mkdirs_for(const char *path)
{
	char dir[PATH_MAX];

	if (strlen(path) >= sizeof(dir)) {
		return -ENAMETOOLONG;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
				return -errno;
			}
			*p = '/';
		}
	}
	return 0;
}

int rpc_signal_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	/* Blocked before any thread starts, so all of them inherit it and
	 * only the signalfd sees the signal. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

int rpc_pidfile_write(const char *path, struct errmsg *err)
{
	FILE *f = fopen(path, "w");
	int ret = 0;

	if (!f) {
		ret = -errno;
		errmsg_set(err, "cannot write the pidfile %s: %s", path, strerror(-ret));
		return ret;
	}
	if (fprintf(f, "%d\n", (int)getpid()) < 0) {
		ret = -EIO;
	}
	if (fclose(f) != 0 && ret == 0) {
		ret = -errno;
	}
	if (ret < 0) {
		errmsg_set(err, "cannot write the pidfile %s: %s", path, strerror(-ret));
	}
	return ret;
}

static int fill_addr(struct sockaddr_un *sa, const char *path, const char *what,
		     struct errmsg *err)
{
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa->sun_path)) {
		errmsg_set(err, "%s path %s is longer than %zu bytes", what, path,
			   sizeof(sa->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

int rpc_unix_claim(const char *path, const char *what, struct errmsg *err)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, ret;

	ret = fill_addr(&sa, path, what, err);
	if (ret < 0) {
		return ret;
	}
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT) {
			char dir[PATH_MAX];
			char *slash;

			snprintf(dir, sizeof(dir), "%s", path);
			slash = strrchr(dir, '/');
			if (slash && slash != dir) {
				*slash = '\0';
				if (access(dir, F_OK) != 0) {
					errmsg_set(err, "%s %s: directory %s does not exist", what,
						   path, dir);
					return -ENOENT;
				}
			}
			return 0;
		}
		ret = -errno;
		errmsg_set(err, "%s %s: %s", what, path, strerror(-ret));
		return ret;
	}
	if (!S_ISSOCK(st.st_mode)) {
		errmsg_set(err, "%s %s: a file that is not a socket is there; not replacing it",
			   what, path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return -errno;
	}
	/* Non-blocking: a live listener with a full backlog answers EAGAIN,
	 * which is live too. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN ||
	    errno == EINPROGRESS) {
		close(fd);
		errmsg_set(err, "%s %s is in use by another process", what, path);
		return -EADDRINUSE;
	}
	close(fd);
	if (unlink(path) != 0 && errno != ENOENT) {
		ret = -errno;
		errmsg_set(err, "%s %s: cannot remove the stale socket: %s", what, path,
			   strerror(-ret));
		return ret;
	}
	return 0;
}

int rpc_unix_set_mode(const char *path, mode_t mode, gid_t group, struct errmsg *err)
{
	int ret;

	if (group != (gid_t)-1 && chown(path, (uid_t)-1, group) != 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot give it group %u: %s", path, (unsigned)group,
			   strerror(-ret));
		return ret;
	}
	if (chmod(path, mode) != 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot set mode %04o: %s", path, (unsigned)mode,
			   strerror(-ret));
		return ret;
	}
	return 0;
}

int rpc_unix_listen(const char *path, mode_t mode, gid_t group, const char *what,
		    struct errmsg *err)
{
	struct sockaddr_un sa;
	mode_t old_umask;
	int fd, ret;

	ret = rpc_unix_claim(path, what, err);
	if (ret < 0) {
		return ret;
	}
	fill_addr(&sa, path, what, err);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return -errno;
	}
	/* No window in which the socket exists with looser permissions. */
	old_umask = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	umask(old_umask);
	if (ret == 0 && listen(fd, LISTEN_BACKLOG) != 0) {
		ret = -errno;
	}
	if (ret < 0) {
		errmsg_set(err, "cannot listen on %s %s: %s", what, path, strerror(-ret));
		close(fd);
		return ret;
	}
	ret = rpc_unix_set_mode(path, mode, group, err);
	if (ret < 0) {
		close(fd);
		unlink(path);
		return ret;
	}
	return fd;
}

int rpc_parse_group(const char *text, gid_t *gidp)
{
	struct group *gr = getgrnam(text);
	char *end;
	unsigned long n;

	if (gr) {
		*gidp = gr->gr_gid;
		return 0;
	}
	errno = 0;
	n = strtoul(text, &end, 10);
	if (!*text || *end || errno || n >= (unsigned long)(gid_t)-1) {
		return -EINVAL;
	}
	*gidp = (gid_t)n;
	return 0;
}
