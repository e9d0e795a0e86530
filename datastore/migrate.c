/* SPDX-License-Identifier: MIT */
/* migrate.c: cold migration of an image between datastores, and the
 * pieces live migration will reuse (the sparse file copy, the switch, the
 * recovery of an interrupted run).
 *
 * The protocol, for source A:s and destination B:d (docs/datastores.md,
 * "Migration", has the argument):
 *   0. Hold the source open (the lock: no one else writes it, vdiskd
 *      cannot serve it) until it is removed or released.
 *   1. A's entry records moving_to "B:d".
 *   2. B's entry "d" is added incomplete, origin "A:s" (overcommit checked).
 *   3. The file is copied, sparse, to B/dir/.vdisk-datastore-partial.base
 *      (a name no entry can have), fsynced, compared byte for byte, made
 *      clean (journal checkpointed, backing reference rewritten if
 *      needed), checked, compared as a disk; then renamed to B/d, and the
 *      directory fsynced.
 *   4. B's entry is marked ready: the switch, one manifest rename.
 *   5. A's file and entry are removed (--keep-source: moving_to cleared).
 * Invariants:
 *   I1. Before 4, A's entry is ready and its file untouched but for the
 *       journal's own consistent states: the source is the image.  B holds
 *       at most an incomplete entry with origin "A:s" and its file.
 *   I2. After 4, B's entry is ready with a complete, verified file: the
 *       destination is the image.  A's entry, if still there, says
 *       moving_to "B:d" and names a ready entry with origin "A:s".
 *   I3. A later run takes the source's lock first (so it never races a run
 *       in progress), then reads moving_to: target ready with our origin
 *       means step 5 is left; otherwise it aborts B's incomplete entry of
 *       our origin (file included) and clears moving_to, then copies anew.
 *       An entry whose origin is not ours is never touched.
 * The partial file is held with flock(LOCK_EX) while it is written, so a
 * recovery can tell a copy in progress (a template two migrations copy
 * with --with-backing) from one a crash left.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "internal.h"
#include "rpc.h"
#include "vdisk.h"

#define PARTIAL_PREFIX DS_RESERVED_PREFIX "-partial."
#define COPY_CHUNK_BYTES (4u << 20)
#define CMP_CHUNK_BYTES (1u << 20)

static const char *const step_names[] = {
    [DS_MIGRATE_COPY] = "copy",
    [DS_MIGRATE_VERIFY] = "verify",
    [DS_MIGRATE_SWITCH] = "switch",
    [DS_MIGRATE_REMOVE] = "remove",
};

const char *ds_migrate_step_name(enum ds_migrate_step step)
{
	return (unsigned)step <= DS_MIGRATE_REMOVE ? step_names[step] : "unknown";
}

void ds_migrate_opts_init(struct ds_migrate_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
}

void ds_migrate_result_fini(struct ds_migrate_result *res)
{
	if (res) {
		free(res->dest);
		memset(res, 0, sizeof(*res));
	}
}

struct mig {
	const char *registry;
	const struct ds_migrate_opts *opts;
	struct ds_migrate_result *res;
	struct ds_datastore *sds, *dds;
	const char *src_rel, *dst_rel;
	char *src_path, *src_spec, *dst_spec;
	struct vd_image *src; /* held for the whole run: the lock */
	const char *backing;  /* the source's backing reference, or NULL */
};

static void progress(struct mig *m, enum ds_migrate_step step, const char *what, uint64_t done,
		     uint64_t total)
{
	if (m->opts->progress) {
		m->opts->progress(m->opts->progress_arg, step, what, done, total);
	}
}

static char *spec_of(const struct ds_datastore *ds, const char *rel)
{
	char *s;

	return asprintf(&s, "%s:%s", ds_name(ds), rel) < 0 ? NULL : s;
}

/* B/dir/.vdisk-datastore-partial.base for 'rel' of 'ds': beside the final
 * name (so the rename is atomic) and reserved (so no entry is called so). */
static char *partial_path(const struct ds_datastore *ds, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	char *p;
	int n;

	if (slash) {
		n = asprintf(&p, "%s/%.*s/" PARTIAL_PREFIX "%s", ds_path(ds), (int)(slash - rel), rel,
			     slash + 1);
	} else {
		n = asprintf(&p, "%s/" PARTIAL_PREFIX "%s", ds_path(ds), rel);
	}
	return n < 0 ? NULL : p;
}

static int fsync_dir_of(const char *path)
{
	char *copy = strdup(path), *slash;
	int fd, ret = 0;

	if (!copy) {
		return -ENOMEM;
	}
	slash = strrchr(copy, '/');
	if (slash) {
		*slash = '\0';
	}
	fd = open(slash ? copy : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		ret = -errno;
	}
	if (fd >= 0) {
		close(fd);
	}
	free(copy);
	return ret;
}

char *ds_relative_path(const char *from, const char *to)
{
	size_t common = 0, up = 0;
	char *out;

	for (size_t i = 0; from[i] && from[i] == to[i]; i++) {
		if (from[i] == '/') {
			common = i + 1;
		}
	}
	for (const char *p = from + common; *p; p++) {
		up += *p == '/';
	}
	out = malloc(up * 3 + strlen(to + common) + 1);
	if (!out) {
		return NULL;
	}
	out[0] = '\0';
	while (up--) {
		strcat(out, "../");
	}
	strcat(out, to + common);
	return out;
}

/* The backing name image 'rel' of 'ds' should store for the file at host
 * path 'target': relative inside one datastore, else the host path. */
static char *name_for(struct mig *m, struct ds_datastore *ds, const char *rel, const char *target)
{
	struct ds_ref ref;
	char *out;

	if (ds_locate(m->registry, target, &ref, NULL) > 0 && !strcmp(ref.name, ds_name(ds))) {
		out = ds_relative_path(rel, ref.rel);
	} else {
		out = strdup(target);
	}
	ds_ref_fini(&ref);
	return out;
}

/* The canonical host path 'name' (a backing reference) designates for an
 * image at 'image_path', or NULL if it does not exist. */
static char *resolve_backing(const char *image_path, const char *name)
{
	char *joined = NULL, *slash, real[PATH_MAX];
	const char *dir = image_path;
	int n;

	if (name[0] == '/') {
		return realpath(name, real) ? strdup(real) : NULL;
	}
	slash = strrchr(image_path, '/');
	n = slash ? asprintf(&joined, "%.*s/%s", (int)(slash - dir), dir, name)
		  : asprintf(&joined, "%s", name);
	if (n < 0) {
		return NULL;
	}
	slash = realpath(joined, real) ? strdup(real) : NULL;
	free(joined);
	return slash;
}

/*
 * The sparse copy.
 */

struct copier {
	struct mig *m;
	const char *what;
	uint64_t done, total;
	bool plain; /* copy_file_range refused: pread/pwrite */
	char *buf;
};

/* Calls 'fn' for each data extent of 'fd' (SEEK_DATA/SEEK_HOLE, so holes,
 * which cost nothing, are never read). */
static int for_each_data(int fd, uint64_t size, int (*fn)(void *arg, uint64_t off, uint64_t len),
			 void *arg)
{
	uint64_t pos = 0;

	while (pos < size) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA), hole;
		int ret;

		if (data < 0) {
			return errno == ENXIO ? 0 : -errno;
		}
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0) {
			return -errno;
		}
		ret = fn(arg, (uint64_t)data, (uint64_t)(hole - data));
		if (ret < 0) {
			return ret;
		}
		pos = (uint64_t)hole;
	}
	return 0;
}

static int count_data(void *arg, uint64_t off, uint64_t len)
{
	(void)off;
	*(uint64_t *)arg += len;
	return 0;
}

static int copy_plain(struct copier *c, int in, int out, uint64_t off, size_t len)
{
	ssize_t n;

	if (!c->buf) {
		c->buf = malloc(COPY_CHUNK_BYTES);
		if (!c->buf) {
			return -ENOMEM;
		}
	}
	n = pread(in, c->buf, len, (off_t)off);
	if (n <= 0) {
		return n < 0 ? -errno : -EIO;
	}
	len = (size_t)n;
	for (size_t w = 0; w < len;) {
		n = pwrite(out, c->buf + w, len - w, (off_t)(off + w));
		if (n < 0) {
			return -errno;
		}
		w += (size_t)n;
	}
	return (int)len;
}

/* Copies up to 'len' bytes at 'off'; returns how many or a negative errno. */
static int copy_some(struct copier *c, int in, int out, uint64_t off, size_t len)
{
	loff_t a = (loff_t)off, b = (loff_t)off;
	ssize_t n;

	if (!c->plain) {
		/* In-kernel, and a reflink where the file system shares blocks. */
		n = copy_file_range(in, &a, out, &b, len, 0);
		if (n > 0) {
			return (int)n;
		}
		if (n == 0) {
			return -EIO; /* the source shrank under us */
		}
		if (errno != EXDEV && errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) {
			return -errno;
		}
		c->plain = true;
	}
	return copy_plain(c, in, out, off, len);
}

struct copy_arg {
	struct copier *c;
	int in, out;
};

static int copy_extent(void *arg, uint64_t off, uint64_t len)
{
	struct copy_arg *a = arg;

	while (len) {
		size_t chunk = len > COPY_CHUNK_BYTES ? COPY_CHUNK_BYTES : (size_t)len;
		int n = copy_some(a->c, a->in, a->out, off, chunk);

		if (n < 0) {
			return n;
		}
		off += (uint64_t)n;
		len -= (uint64_t)n;
		a->c->done += (uint64_t)n;
		progress(a->c->m, DS_MIGRATE_COPY, a->c->what, a->c->done, a->c->total);
	}
	return 0;
}

struct cmp_arg {
	int a, b;
	char *ba, *bb;
	uint64_t bad_off;
};

static int cmp_extent(void *arg, uint64_t off, uint64_t len)
{
	struct cmp_arg *c = arg;

	while (len) {
		size_t chunk = len > CMP_CHUNK_BYTES ? CMP_CHUNK_BYTES : (size_t)len;
		ssize_t na = pread(c->a, c->ba, chunk, (off_t)off);
		ssize_t nb = pread(c->b, c->bb, chunk, (off_t)off);

		if (na < 0 || nb < 0) {
			return -errno;
		}
		if (na != (ssize_t)chunk || nb != (ssize_t)chunk || memcmp(c->ba, c->bb, chunk)) {
			c->bad_off = off;
			return -EUCLEAN;
		}
		off += chunk;
		len -= chunk;
	}
	return 0;
}

/* Every data byte of 'in' is in 'out' at the same offset (read back after
 * the fsync, through the page cache: this catches a wrong copy, not a
 * medium that loses what it acknowledged). */
static int compare_files(int in, int out, uint64_t size, const char *what, struct errmsg *err)
{
	struct cmp_arg c = {.a = in, .b = out};
	struct stat st;
	int ret;

	if (fstat(out, &st) < 0) {
		return -errno;
	}
	if ((uint64_t)st.st_size != size) {
		errmsg_set(err, "%s: the copy has %lld bytes, not %llu", what, (long long)st.st_size,
			   (unsigned long long)size);
		return -EUCLEAN;
	}
	c.ba = malloc(CMP_CHUNK_BYTES);
	c.bb = malloc(CMP_CHUNK_BYTES);
	ret = c.ba && c.bb ? for_each_data(in, size, cmp_extent, &c) : -ENOMEM;
	if (ret == -EUCLEAN) {
		errmsg_set(err, "%s: the copy differs from the source at file offset %llu", what,
			   (unsigned long long)c.bad_off);
	}
	free(c.ba);
	free(c.bb);
	return ret;
}

/*
 * One file into the destination: copy, verify, rename.
 */

struct job {
	const char *what;	/* "A:rel" of the source */
	const char *src_path;
	struct vd_image *src;	/* the source, open (for the disk comparison) */
	struct ds_datastore *ds; /* the destination */
	const char *rel;
	enum ds_kind kind;
	const char *backing;	/* the backing name to store; NULL: as copied */
	char *final, *partial;
	int fd;			/* the partial file, flock'ed; -1 when closed */
	bool made;		/* this run created the partial file */
};

/* A partial file already there when the entry was just added (so no live
 * copy into this name has an entry) is a crash's leftover whose entry was
 * removed by hand: deleted, unless a process still holds its lock. */
static int remove_stale_partial(const char *partial)
{
	int fd = open(partial, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0) {
		return errno == ENOENT ? 0 : -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -EBUSY;
	} else if (unlink(partial) < 0 && errno != ENOENT) {
		ret = -errno;
	}
	close(fd);
	return ret;
}

static int create_partial(struct job *j, struct errmsg *err)
{
	int ret = remove_stale_partial(j->partial);

	if (ret < 0) {
		errmsg_set(err, "%s: %s", j->partial,
			   ret == -EBUSY ? "another process is writing it" : strerror(-ret));
		return ret;
	}
	j->fd = open(j->partial, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (j->fd < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot create: %s", j->partial, strerror(-ret));
		return ret;
	}
	j->made = true;
	/* A new file: no one else can hold its lock. */
	return flock(j->fd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0;
}

/* A copy of this run failed before its switch: its partial file, then
 * (rule 3) its entry and, if renamed already, its file go. */
static void abandon(struct job *j)
{
	struct errmsg ignored;

	if (j->made) {
		unlink(j->partial);
	}
	if (j->fd >= 0) {
		close(j->fd);
		j->fd = -1;
	}
	ds_entry_abort(j->ds, j->rel, &ignored);
}

static int copy_file(struct mig *m, struct job *j, struct errmsg *err)
{
	struct copier c = {.m = m, .what = j->what};
	struct copy_arg a = {.c = &c, .out = j->fd};
	struct statvfs sv;
	char done[32], need[32], fr[32];
	struct stat st;
	int ret;

	a.in = open(j->src_path, O_RDONLY | O_CLOEXEC);
	if (a.in < 0 || fstat(a.in, &st) < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot read: %s", j->src_path, strerror(-ret));
		goto out;
	}
	ret = for_each_data(a.in, (uint64_t)st.st_size, count_data, &c.total);
	progress(m, DS_MIGRATE_COPY, j->what, 0, c.total);
	if (ret == 0) {
		ret = for_each_data(a.in, (uint64_t)st.st_size, copy_extent, &a);
	}
	if (ret == 0 && ftruncate(j->fd, st.st_size) < 0) {
		ret = -errno;
	}
	if (ret == 0 && fsync(j->fd) < 0) {
		ret = -errno;
	}
	if (ret == -ENOSPC || ret == -EDQUOT) {
		statvfs(ds_path(j->ds), &sv);
		errmsg_set(err, "datastore %s is full: %s of %s copied to %s:%s, %s free: %s",
			   ds_name(j->ds), ds_human(c.done, done, sizeof(done)),
			   ds_human(c.total, need, sizeof(need)), ds_name(j->ds), j->rel,
			   ds_human((uint64_t)sv.f_bavail * sv.f_frsize, fr, sizeof(fr)),
			   strerror(-ret));
	} else if (ret < 0) {
		errmsg_set(err, "copying %s to %s:%s: %s", j->what, ds_name(j->ds), j->rel,
			   strerror(-ret));
	}
	if (ret == 0) {
		m->res->copied_bytes += c.done;
		progress(m, DS_MIGRATE_VERIFY, j->what, 0, 0);
		ret = compare_files(a.in, j->fd, (uint64_t)st.st_size, j->what, err);
	}
out:
	if (a.in >= 0) {
		close(a.in);
	}
	free(c.buf);
	return ret;
}

/* The copy was taken while the source was open read-write, so it says
 * "journal dirty": open it read-write (which replays the journal, as after
 * a crash, which is what the format guarantees is consistent), rewrite
 * the backing reference, and close it (checkpoint, clean header).  The
 * chain is not opened: a relative reference may not resolve from here
 * until it is rewritten. */
static int make_clean(struct job *j, struct errmsg *err)
{
	struct vd_open_opts oo;
	struct vd_image *img;
	int ret;

	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR | VD_OPEN_BUFFERED | VD_OPEN_NO_BACKING;
	ret = vd_open(j->partial, &oo, &img, err);
	if (ret < 0) {
		return ret;
	}
	if (j->backing) {
		ret = vd_rebase(img, j->backing, true, err);
	}
	if (vd_close(img) < 0 && ret == 0) {
		ret = -EIO;
		errmsg_set(err, "%s: cannot close the copy", j->partial);
	}
	return ret;
}

struct disk_cmp {
	struct vd_source *a, *b;
	char *ba, *bb;
};

static int zeros(const char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* Guest bytes [off, off+len) of 'b' read as zeros (the source's do). */
static int cmp_zero_run(struct disk_cmp *d, uint64_t off, uint64_t len, struct errmsg *err)
{
	while (len) {
		uint64_t n;
		bool data;
		int ret = vd_source_extent(d->b, off, len, &n, &data, err);

		if (ret < 0) {
			return ret;
		}
		n = n > CMP_CHUNK_BYTES ? CMP_CHUNK_BYTES : n;
		if (data) {
			ret = vd_source_pread(d->b, d->bb, n, off, err);
			if (ret < 0) {
				return ret;
			}
			if (!zeros(d->bb, n)) {
				return -EUCLEAN;
			}
		}
		off += n;
		len -= n;
	}
	return 0;
}

/* Sources 'a' and 'b' read the same, guest byte for guest byte, through
 * their chains: what 'a' reads as data is read on both sides, and where it
 * reads zeros only what 'b' holds is read.  'which' names the side in the
 * sentence ("the copy", "snapshot s1 of the copy"). */
static int compare_sources(struct vd_source *a, struct vd_source *b, const char *what,
			   const char *which, struct errmsg *err)
{
	struct disk_cmp d = {.a = a, .b = b};
	uint64_t size = vd_source_size_bytes(a), off = 0;
	int ret = 0;

	if (vd_source_size_bytes(b) != size) {
		errmsg_set(err, "%s: the virtual size of %s differs", what, which);
		return -EUCLEAN;
	}
	d.ba = malloc(CMP_CHUNK_BYTES);
	d.bb = malloc(CMP_CHUNK_BYTES);
	if (!d.ba || !d.bb) {
		ret = -ENOMEM;
	}
	while (ret == 0 && off < size) {
		uint64_t n;
		bool data;

		ret = vd_source_extent(d.a, off, CMP_CHUNK_BYTES, &n, &data, err);
		if (ret == 0 && data) {
			ret = vd_source_pread(d.a, d.ba, n, off, err);
			if (ret == 0) {
				ret = vd_source_pread(d.b, d.bb, n, off, err);
			}
			if (ret == 0 && memcmp(d.ba, d.bb, n)) {
				ret = -EUCLEAN;
			}
		} else if (ret == 0) {
			ret = cmp_zero_run(&d, off, n, err);
		}
		if (ret == -EUCLEAN) {
			errmsg_set(err, "%s: %s reads differently near guest offset %llu", what, which,
				   (unsigned long long)off);
		}
		off += n;
	}
	free(d.ba);
	free(d.bb);
	return ret;
}

/* The two images read the same (the disk, or snapshot 'name' of each). */
static int compare_images(struct vd_image *ia, struct vd_image *ib, const char *name,
			  const char *what, struct errmsg *err)
{
	struct vd_source *a = NULL, *b = NULL;
	char which[128];
	int ret;

	if (name) {
		snprintf(which, sizeof(which), "snapshot %s of the copy", name);
		ret = vd_source_from_snapshot(ia, name, &a, err);
		if (ret == 0) {
			ret = vd_source_from_snapshot(ib, name, &b, err);
		}
	} else {
		snprintf(which, sizeof(which), "the copy");
		ret = vd_source_from_image(ia, &a);
		if (ret == 0) {
			ret = vd_source_from_image(ib, &b);
		}
	}
	if (ret == 0) {
		ret = compare_sources(a, b, what, which, err);
	}
	vd_source_close(a);
	vd_source_close(b);
	return ret;
}

static int same_snapshots(struct vd_image *a, struct vd_image *b, const char *what,
			  struct errmsg *err)
{
	int n = vd_snapshot_count(a);

	if (n != vd_snapshot_count(b)) {
		errmsg_set(err, "%s: the copy has %d snapshots, not %d", what, vd_snapshot_count(b),
			   n);
		return -EUCLEAN;
	}
	for (int i = 0; i < n; i++) {
		struct vd_snapshot_info sa, sb;
		char *name;
		int ret = vd_snapshot_get(a, (unsigned)i, &sa);

		name = ret == 0 ? strdup(sa.name) : NULL;
		if (ret == 0 && !name) {
			ret = -ENOMEM;
		}
		if (ret == 0) {
			ret = vd_snapshot_get(b, (unsigned)i, &sb);
		}
		if (ret == 0 && (strcmp(name, sb.name) || sa.size_bytes != sb.size_bytes ||
				 sa.referenced_bytes != sb.referenced_bytes ||
				 sa.unique_bytes != sb.unique_bytes)) {
			errmsg_set(err, "%s: snapshot %s differs in the copy", what, name);
			ret = -EUCLEAN;
		}
		if (ret == 0) {
			ret = compare_images(a, b, name, what, err);
		}
		free(name);
		if (ret < 0) {
			return ret;
		}
	}
	return 0;
}

/* The clean copy passes vd_check, has the same snapshots (names, sizes,
 * what each references and holds alone: sharing kept), and it and each
 * snapshot read as the source's do.  (compare_files() already found the
 * file the same byte for byte before the copy was opened; this checks
 * what the cleaning and the backing rewrite left.) */
static int verify(struct job *j, struct errmsg *err)
{
	struct vd_check_result cr;
	struct vd_open_opts oo;
	struct vd_image *img;
	int ret;

	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_BUFFERED;
	ret = vd_open(j->partial, &oo, &img, err);
	if (ret < 0) {
		return ret;
	}
	ret = vd_check(img, 0, &cr, NULL, NULL, err);
	if (ret == 0 && (cr.corruptions || cr.leaks)) {
		errmsg_set(err, "%s: the copy does not check clean (%llu corruptions, %llu leaks)",
			   j->what, (unsigned long long)cr.corruptions,
			   (unsigned long long)cr.leaks);
		ret = -EUCLEAN;
	}
	if (ret == 0) {
		ret = same_snapshots(j->src, img, j->what, err);
	}
	if (ret == 0) {
		ret = compare_images(j->src, img, NULL, j->what, err);
	}
	vd_close(img);
	return ret;
}

/* Copies the file into the job's partial name, verifies it and renames
 * it to its final name; its entry is still incomplete. */
static int copy_verify_rename(struct mig *m, struct job *j, struct errmsg *err)
{
	int ret = create_partial(j, err);

	if (ret == 0) {
		ret = copy_file(m, j, err);
	}
	if (ret == 0) {
		ret = make_clean(j, err);
	}
	if (ret == 0) {
		ret = verify(j, err);
	}
	if (ret == 0 && j->kind == DS_KIND_TEMPLATE && chmod(j->partial, 0444) < 0) {
		ret = -errno;
	}
	if (ret == 0 && (fsync(j->fd) < 0 || rename(j->partial, j->final) < 0)) {
		ret = -errno;
		errmsg_set(err, "%s: cannot rename the copy: %s", j->final, strerror(-ret));
	}
	if (ret == 0) {
		ret = fsync_dir_of(j->final);
	}
	return ret;
}

static int job_init(struct job *j, struct ds_datastore *ds, const char *rel)
{
	j->ds = ds;
	j->rel = rel;
	j->fd = -1;
	j->final = ds_join(ds_path(ds), rel);
	j->partial = partial_path(ds, rel);
	return j->final && j->partial ? 0 : -ENOMEM;
}

static void job_fini(struct job *j)
{
	if (j->fd >= 0) {
		close(j->fd);
	}
	free(j->final);
	free(j->partial);
}

/* Removes what an unfinished copy into 'rel' of 'ds' left: the partial
 * file, then (rule 3) the incomplete entry and its file.  -EBUSY if a live
 * copy holds the file's flock. */
static int undo_copy(struct ds_datastore *ds, const char *rel, struct errmsg *err)
{
	char *partial = partial_path(ds, rel), *final = ds_join(ds_path(ds), rel);
	const char *paths[2] = {partial, final};
	int ret = partial && final ? 0 : -ENOMEM;

	for (int i = 0; i < 2 && ret == 0; i++) {
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);

		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
			errmsg_set(err, "%s:%s is being copied by another process", ds_name(ds), rel);
			ret = -EBUSY;
		}
		if (fd >= 0) {
			close(fd);
		}
	}
	if (ret == 0 && unlink(partial) < 0 && errno != ENOENT) {
		ret = -errno;
		errmsg_set(err, "%s: cannot delete: %s", partial, strerror(-ret));
	}
	if (ret == 0) {
		ret = ds_entry_abort(ds, rel, err);
	}
	free(partial);
	free(final);
	return ret;
}

/*
 * --with-backing: the chain, deepest first.
 */

static int place_backing(struct mig *m, const char *host, char **placedp, struct errmsg *err);

/* Copies the template at 'ref' into the same relative path of the
 * destination, its own backing placed first.  Leaves its host path in the
 * destination in '*placedp'. */
static int copy_backing(struct mig *m, const struct ds_ref *ref, enum ds_kind kind,
			char **placedp, struct errmsg *err)
{
	struct job j = {.src_path = ref->path, .kind = kind};
	char *below = NULL, *below_name = NULL, *below_placed = NULL, *what = NULL;
	struct ds_entry_opts eo;
	struct vd_open_opts oo;
	int ret;

	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_BUFFERED;
	/* A shared lock: writers stay out while it is copied, clones may read. */
	ret = vd_open(ref->path, &oo, &j.src, err);
	if (ret < 0) {
		return ret;
	}
	if (vd_backing_path(j.src)) {
		below = resolve_backing(ref->path, vd_backing_path(j.src));
		ret = below ? place_backing(m, below, &below_placed, err) : -ENOENT;
	}
	if (ret == 0 && below_placed) {
		below_name = name_for(m, m->dds, ref->rel, below_placed);
		ret = below_name ? 0 : -ENOMEM;
	}
	j.backing = below_name;
	if (ret == 0 && asprintf(&what, "%s:%s", ref->name, ref->rel) < 0) {
		what = NULL;
		ret = -ENOMEM;
	}
	j.what = what;
	if (ret == 0) {
		ret = job_init(&j, m->dds, ref->rel);
	}
	if (ret == 0) {
		ds_entry_opts_init(&eo);
		eo.kind = kind;
		eo.size_bytes = vd_size_bytes(j.src);
		eo.origin = j.what;
		ret = ds_entry_begin(m->dds, ref->rel, &eo, err);
		if (ret == 0) {
			ret = copy_verify_rename(m, &j, err);
			if (ret == 0) {
				ret = ds_entry_commit(m->dds, ref->rel, err);
			}
			if (ret < 0) {
				abandon(&j);
			}
		}
	}
	if (ret == 0) {
		m->res->n_backing_copied++;
		*placedp = j.final;
		j.final = NULL;
	}
	job_fini(&j);
	vd_close(j.src);
	free(what);
	free(below);
	free(below_name);
	free(below_placed);
	return ret;
}

/* Where the chain file at host path 'host' is in the destination: itself
 * if it already lies there, an earlier copy of it (an entry whose origin
 * names it), or a new copy.  A new string in '*placedp'. */
static int place_backing(struct mig *m, const char *host, char **placedp, struct errmsg *err)
{
	struct ds_datastore *ods = NULL;
	struct ds_ref ref;
	struct ds_entry e, oe;
	char *origin = NULL;
	int ret;

	ret = ds_locate(m->registry, host, &ref, err);
	if (ret == 0) {
		errmsg_set(err, "backing file %s is in no datastore: --with-backing copies only "
				"datastore images", host);
		return -EXDEV;
	}
	if (ret < 0) {
		return ret;
	}
	if (!strcmp(ref.name, ds_name(m->dds))) {
		*placedp = strdup(ref.path);
		ret = *placedp ? 0 : -ENOMEM;
		goto out;
	}
	ret = ds_open(m->registry, ref.name, &ods, err);
	if (ret == 0 && ds_entry_find(ods, ref.rel, &oe) < 0) {
		errmsg_set(err, "backing file %s:%s has no entry in its datastore", ref.name, ref.rel);
		ret = -ENOENT;
	}
	if (ret == 0 && asprintf(&origin, "%s:%s", ref.name, ref.rel) < 0) {
		origin = NULL;
		ret = -ENOMEM;
	}
	if (ret == 0) {
		ret = ds_refresh(m->dds, err);
	}
	if (ret == 0 && ds_entry_find(m->dds, ref.rel, &e) == 0) {
		bool ours = e.origin && !strcmp(e.origin, origin);

		if (ours && e.state == DS_STATE_READY) {
			m->res->n_backing_reused++;
			*placedp = ds_join(ds_path(m->dds), ref.rel);
			ret = *placedp ? 0 : -ENOMEM;
			goto out;
		}
		if (ours) {
			/* A copy a crash interrupted. */
			ret = undo_copy(m->dds, ref.rel, err);
			m->res->recovered |= ret == 0 ? DS_MIGRATE_CLEANED : 0;
		} else {
			errmsg_set(err, "%s:%s exists and is not a copy of backing file %s",
				   ds_name(m->dds), ref.rel, origin);
			ret = -EEXIST;
		}
	}
	if (ret == 0) {
		ret = copy_backing(m, &ref, oe.kind, placedp, err);
	}
out:
	free(origin);
	ds_close(ods);
	ds_ref_fini(&ref);
	return ret;
}

/*
 * The source: its lock, its end.
 */

static int lock_source(struct mig *m, enum ds_kind kind, struct errmsg *err)
{
	struct vd_open_opts oo;
	struct vd_users u;
	char users[256];
	int ret;

	vd_open_opts_init(&oo);
	/* A template is never written (its mode is 0444): a shared lock keeps
	 * writers out.  An image is opened read-write, which excludes every
	 * other opener, vdiskd included, and replays a journal a crash left. */
	oo.flags = VD_OPEN_BUFFERED | (kind == DS_KIND_TEMPLATE ? 0 : VD_OPEN_RDWR);
	ret = vd_open(m->src_path, &oo, &m->src, err);
	if (ret == -EBUSY && vd_image_users(m->src_path, &u, NULL) == 0) {
		ds_describe_users(&u, users, sizeof(users));
		errmsg_set(err, "%s is in use by %s: an image vdiskd serves moves live through "
				"that vdiskd (is $VDISKD_CTL its control socket?); stop any other "
				"user first",
			   m->src_spec, users[0] ? users : "another process");
	}
	return ret;
}

struct remove_arg {
	const char *rel;
	const char *target;
	const char *path;
};

/* Deletes the source's file and entry, under A's lock, if it still says
 * it moved to 'target'.  The caller holds the image open: nobody else can
 * have it (rule 3: the file goes before the entry). */
static int do_remove_source(struct ds_datastore *ds, struct json_object *doc, void *arg,
			    struct errmsg *err)
{
	const struct remove_arg *r = arg;
	struct json_object *entries, *rec, *v;
	int ret;

	if (!json_object_object_get_ex(doc, "entries", &entries) ||
	    !json_object_object_get_ex(entries, r->rel, &rec)) {
		return 1;
	}
	if (!json_object_object_get_ex(rec, "moving_to", &v) ||
	    strcmp(json_object_get_string(v), r->target)) {
		errmsg_set(err, "%s:%s no longer says it moves to %s", ds_name(ds), r->rel,
			   r->target);
		return -ESTALE;
	}
	if (unlink(r->path) < 0 && errno != ENOENT) {
		ret = -errno;
		errmsg_set(err, "%s: cannot delete: %s", r->path, strerror(-ret));
		return ret;
	}
	json_object_object_del(entries, r->rel);
	return 0;
}

/* Step 5, after the switch. */
static int release_source(struct mig *m, const char *target, struct errmsg *err)
{
	struct remove_arg r = {.rel = m->src_rel, .target = target, .path = m->src_path};

	progress(m, DS_MIGRATE_REMOVE, m->src_spec, 0, 0);
	if (m->opts->keep_source) {
		return ds_entry_set_moving(m->sds, m->src_rel, NULL, err);
	}
	return ds_change(m->sds, do_remove_source, &r, err);
}

/* (I3) A run found moving_to on the source ('target', a copy: the
 * manifest it came from is replaced by the changes made here).  Returns 1
 * when the earlier run had switched (now finished), 0 when its leftovers
 * are gone. */
static int recover(struct mig *m, const char *target, struct errmsg *err)
{
	struct ds_datastore *tds = NULL;
	char *name = strdup(target), *rel;
	struct ds_entry e;
	int ret;

	rel = name ? strchr(name, ':') : NULL;
	if (!rel) {
		ret = name ? -EINVAL : -ENOMEM;
		errmsg_set(err, "%s: moving_to '%s' is not NAME:path", m->src_spec, target);
		goto out;
	}
	*rel++ = '\0';
	/* Unreachable, the destination may have switched: deciding for the
	 * source could put two images in charge, so this stops. */
	ret = ds_open(m->registry, name, &tds, err);
	if (ret == 0 && ds_entry_find(tds, rel, &e) == 0 && e.origin &&
	    !strcmp(e.origin, m->src_spec)) {
		if (e.state == DS_STATE_READY) {
			ret = release_source(m, target, err);
			m->res->recovered |= DS_MIGRATE_FINISHED;
			m->res->dest = strdup(target);
			ret = ret < 0 ? ret : 1;
			goto out;
		}
		ret = undo_copy(tds, rel, err);
	}
	if (ret == 0) {
		ret = ds_entry_set_moving(m->sds, m->src_rel, NULL, err);
		m->res->recovered |= DS_MIGRATE_CLEANED;
	}
out:
	ds_close(tds);
	free(name);
	return ret;
}

/* Refuses what cannot or must not move. */
static int check_source(struct mig *m, const struct ds_entry *e, struct errmsg *err)
{
	char **clones = NULL;
	int ret;

	if (e->kind == DS_KIND_ISO) {
		errmsg_set(err, "%s is an ISO image: use export and import", m->src_spec);
		return -EOPNOTSUPP;
	}
	if (e->state != DS_STATE_READY && !e->moving_to) {
		errmsg_set(err, "%s is incomplete", m->src_spec);
		return -EINVAL;
	}
	if (!strcmp(ds_name(m->sds), ds_name(m->dds)) && !strcmp(m->src_rel, m->dst_rel)) {
		errmsg_set(err, "%s is already there", m->src_spec);
		return -EINVAL;
	}
	if (e->kind != DS_KIND_TEMPLATE) {
		return 0;
	}
	/* Clones name the template by its path: moving it would break them.
	 * Their own migration with --with-backing copies it instead. */
	ret = ds_find_clones(m->registry, m->src_path, &clones, err);
	if (ret > 0) {
		errmsg_set(err, "template %s has %d clone%s (%s%s): moving it would break them; "
				"migrate the clones with --with-backing, which copies it",
			   m->src_spec, ret, ret == 1 ? "" : "s", clones[0], ret > 1 ? ", ..." : "");
		ret = -EBUSY;
	}
	ds_names_free(clones);
	return ret;
}

/* The backing name the destination must store, or NULL to keep the one
 * copied: without --with-backing, an absolute one, or a relative one that
 * still reaches the same file, is kept. */
static int dest_backing(struct mig *m, const char *dst_path, char **namep, struct errmsg *err)
{
	const char *stored = m->backing;
	char *old = NULL, *now = NULL, *placed = NULL;
	int ret = 0;

	*namep = NULL;
	if (!stored) {
		return 0;
	}
	old = resolve_backing(m->src_path, stored);
	if (!old) {
		errmsg_set(err, "%s: backing file %s not found", m->src_spec, stored);
		return -ENOENT;
	}
	if (m->opts->with_backing) {
		ret = place_backing(m, old, &placed, err);
		if (ret == 0) {
			*namep = name_for(m, m->dds, m->dst_rel, placed);
			ret = *namep ? 0 : -ENOMEM;
		}
	} else if (stored[0] != '/') {
		now = resolve_backing(dst_path, stored);
		if (!now || strcmp(now, old)) {
			*namep = name_for(m, m->dds, m->dst_rel, old);
			ret = *namep ? 0 : -ENOMEM;
		}
	}
	free(old);
	free(now);
	free(placed);
	return ret;
}

/* Steps 1 and 2: the source says where it moves, the destination's entry
 * is added incomplete (overcommit checked); on failure the source's
 * moving_to is cleared again. */
static int begin_move(struct mig *m, enum ds_kind kind, uint64_t size, struct errmsg *err)
{
	struct ds_entry_opts eo;
	int ret = ds_entry_set_moving(m->sds, m->src_rel, m->dst_spec, err);

	if (ret < 0) {
		return ret;
	}
	ds_entry_opts_init(&eo);
	eo.kind = kind;
	eo.size_bytes = size;
	eo.origin = m->src_spec;
	ret = ds_entry_begin(m->dds, m->dst_rel, &eo, err);
	if (ret < 0) {
		struct errmsg ignored;

		ds_entry_set_moving(m->sds, m->src_rel, NULL, &ignored);
	}
	return ret;
}

/* Steps 1 to 5 once the source is held and checked. */
static int move(struct mig *m, struct errmsg *err)
{
	struct job j = {.what = m->src_spec, .src = m->src};
	char *backing = NULL;
	struct ds_entry e;
	int ret;

	ds_entry_find(m->sds, m->src_rel, &e);
	j.kind = e.kind;
	ret = job_init(&j, m->dds, m->dst_rel);
	if (ret == 0) {
		ret = rpc_mkdirs_for(j.final);
	}
	if (ret == 0) {
		ret = dest_backing(m, j.final, &backing, err);
	}
	j.backing = backing;
	j.src_path = m->src_path;
	if (ret == 0) {
		ret = begin_move(m, e.kind, vd_size_bytes(m->src), err);
	}
	if (ret < 0) {
		goto out;
	}
	ret = copy_verify_rename(m, &j, err);
	if (ret == 0) {
		progress(m, DS_MIGRATE_SWITCH, m->src_spec, 0, 0);
		ret = ds_entry_commit(m->dds, m->dst_rel, err);
	}
	if (ret < 0) {
		struct errmsg ignored;

		abandon(&j);
		ds_entry_set_moving(m->sds, m->src_rel, NULL, &ignored);
		goto out;
	}
	m->res->dest = strdup(m->dst_spec);
	ret = release_source(m, m->dst_spec, err);
out:
	job_fini(&j);
	free(backing);
	return ret;
}

/* Opens both datastores, names the source and destination, and checks
 * the source's entry ('*e'). */
static int mig_setup(struct mig *m, const char *src_name, const char *dst_name,
		     struct ds_entry *e, struct errmsg *err)
{
	int ret = ds_open(m->registry, src_name, &m->sds, err);

	if (ret == 0) {
		ret = ds_open(m->registry, dst_name, &m->dds, err);
	}
	if (ret < 0) {
		return ret;
	}
	m->src_path = ds_join(ds_path(m->sds), m->src_rel);
	m->src_spec = spec_of(m->sds, m->src_rel);
	m->dst_spec = spec_of(m->dds, m->dst_rel);
	if (!m->src_path || !m->src_spec || !m->dst_spec) {
		return -ENOMEM;
	}
	ret = ds_entry_find(m->sds, m->src_rel, e);
	if (ret < 0) {
		errmsg_set(err, "%s is not in the datastore", m->src_spec);
		return ret;
	}
	return check_source(m, e, err);
}

/* With the source held: finishes or cleans up what an earlier run left
 * (recover).  1: that run had switched and is now finished. */
static int mig_recover(struct mig *m, struct errmsg *err)
{
	struct ds_entry e;
	char *target;
	int ret;

	if (ds_refresh(m->sds, NULL) < 0 || ds_entry_find(m->sds, m->src_rel, &e) < 0 ||
	    !e.moving_to) {
		return 0;
	}
	target = strdup(e.moving_to);
	ret = target ? recover(m, target, err) : -ENOMEM;
	free(target);
	return ret;
}

static void mig_teardown(struct mig *m)
{
	vd_close(m->src);
	ds_close(m->sds);
	ds_close(m->dds);
	free(m->src_path);
	free(m->src_spec);
	free(m->dst_spec);
}

int ds_migrate(const char *registry, const char *src_name, const char *src_rel,
	       const char *dst_name, const char *dst_rel, const struct ds_migrate_opts *opts,
	       struct ds_migrate_result *res, struct errmsg *err)
{
	struct mig m = {.opts = opts, .res = res, .src_rel = src_rel,
			.dst_rel = dst_rel ? dst_rel : src_rel};
	struct ds_entry e;
	int ret;

	memset(res, 0, sizeof(*res));
	m.registry = registry ? registry : ds_registry_path();
	ret = mig_setup(&m, src_name, dst_name, &e, err);
	if (ret < 0) {
		goto out;
	}
	/* A missing file may be a switched run's removed source. */
	ret = lock_source(&m, e.kind, err);
	if (ret == 0 || ret == -ENOENT) {
		/* The lock is taken: what the manifest says now is no live
		 * run's. */
		int r = mig_recover(&m, err);

		if (r != 0) {
			ret = r > 0 ? 0 : r;
			goto out;
		}
		ret = m.src ? 0 : -ENOENT;
	}
	if (ret == 0) {
		m.backing = vd_backing_path(m.src);
		ret = move(&m, err);
	}
out:
	mig_teardown(&m);
	return ret;
}

/*
 * Live migration: the same steps, the copy left to vdiskd.
 */

struct ds_live {
	struct mig m;
	struct ds_migrate_opts opts;
	struct ds_migrate_result res;
	char *src_name, *src_rel, *dst_name, *dst_rel;
	char *backing_in;  /* the source's reference */
	char *dst_path;
	char *dst_backing; /* what the destination must store, or NULL */
	bool begun, switched;
};

void ds_live_free(struct ds_live *l)
{
	if (!l) {
		return;
	}
	mig_teardown(&l->m);
	ds_migrate_result_fini(&l->res);
	free(l->src_name);
	free(l->src_rel);
	free(l->dst_name);
	free(l->dst_rel);
	free(l->backing_in);
	free(l->dst_path);
	free(l->dst_backing);
	free(l);
}

int ds_live_begin(const char *registry, const char *src_path, const char *backing,
		  const char *dst_name, const char *dst_rel, const struct ds_migrate_opts *opts,
		  struct ds_live **lp, struct errmsg *err)
{
	struct ds_live *l = calloc(1, sizeof(*l));
	struct ds_ref ref = {0};
	struct ds_entry e;
	uint64_t size;
	int ret;

	*lp = NULL;
	if (!l) {
		return -ENOMEM;
	}
	l->opts = *opts;
	l->opts.progress = NULL;
	l->m.opts = &l->opts;
	l->m.res = &l->res;
	l->m.registry = registry ? registry : ds_registry_path();
	ret = ds_locate(l->m.registry, src_path, &ref, err);
	if (ret == 0) {
		errmsg_set(err, "%s is in no datastore: live migration moves images between "
				"datastores", src_path);
		ret = -EINVAL;
	}
	if (ret < 0) {
		goto fail;
	}
	l->src_name = ref.name;
	l->src_rel = ref.rel;
	ref.name = ref.rel = NULL;
	ds_ref_fini(&ref);
	l->dst_name = strdup(dst_name);
	l->dst_rel = strdup(dst_rel ? dst_rel : l->src_rel);
	l->backing_in = backing ? strdup(backing) : NULL;
	if (!l->dst_name || !l->dst_rel || (backing && !l->backing_in)) {
		ret = -ENOMEM;
		goto fail;
	}
	l->m.src_rel = l->src_rel;
	l->m.dst_rel = l->dst_rel;
	l->m.backing = l->backing_in;
	ret = mig_setup(&l->m, l->src_name, l->dst_name, &e, err);
	if (ret == 0 && e.kind != DS_KIND_IMAGE) {
		errmsg_set(err, "%s is a %s: only images are served read-write and move live",
			   l->m.src_spec, ds_kind_name(e.kind));
		ret = -EOPNOTSUPP;
	}
	size = e.size_bytes;
	/* The caller holds the image: what the manifest says is no live run's.
	 * One that had switched made the copy the image: the caller serves a
	 * stale one, and recovering would delete it under its feet. */
	if (ret == 0) {
		ret = ds_entry_in_charge(l->m.sds, l->src_rel, err);
	}
	if (ret == 0) {
		ret = mig_recover(&l->m, err);
	}
	if (ret < 0) {
		goto fail;
	}
	l->dst_path = ds_join(ds_path(l->m.dds), l->dst_rel);
	ret = l->dst_path ? 0 : -ENOMEM;
	if (ret == 0) {
		ret = dest_backing(&l->m, l->dst_path, &l->dst_backing, err);
	}
	if (ret == 0) {
		ret = begin_move(&l->m, DS_KIND_IMAGE, size, err);
	}
	if (ret < 0) {
		goto fail;
	}
	l->begun = true;
	*lp = l;
	return 0;
fail:
	ds_live_free(l);
	return ret;
}

const char *ds_live_src_spec(const struct ds_live *l)
{
	return l->m.src_spec;
}

const char *ds_live_dest_spec(const struct ds_live *l)
{
	return l->m.dst_spec;
}

const char *ds_live_dest_path(const struct ds_live *l)
{
	return l->dst_path;
}

const char *ds_live_dest_backing(const struct ds_live *l)
{
	return l->dst_backing ? l->dst_backing : l->backing_in;
}

int ds_live_switch(struct ds_live *l, struct errmsg *err)
{
	int ret = ds_entry_commit(l->m.dds, l->dst_rel, err);

	l->switched = ret == 0;
	return ret;
}

int ds_live_finish(struct ds_live *l, struct errmsg *err)
{
	return release_source(&l->m, l->m.dst_spec, err);
}

int ds_live_abandon(struct ds_live *l, struct errmsg *err)
{
	int ret;

	if (!l->begun || l->switched) {
		return 0;
	}
	ret = undo_copy(l->m.dds, l->dst_rel, err);
	if (ret == 0) {
		ret = ds_entry_set_moving(l->m.sds, l->src_rel, NULL, err);
	}
	l->begun = ret < 0;
	return ret;
}

int ds_successor(const char *registry, const char *path, char **nextp, struct errmsg *err)
{
	struct ds_datastore *ds = NULL, *tds = NULL;
	struct ds_ref ref = {0};
	struct ds_entry e;
	char *target = NULL, *trel;
	int ret;

	*nextp = NULL;
	registry = registry ? registry : ds_registry_path();
	ret = ds_locate(registry, path, &ref, err);
	if (ret <= 0) {
		return ret;
	}
	ret = ds_open(registry, ref.name, &ds, err);
	if (ret == 0 && ds_entry_find(ds, ref.rel, &e) == 0 && e.moving_to) {
		target = strdup(e.moving_to);
		trel = target ? strchr(target, ':') : NULL;
		ret = target ? 0 : -ENOMEM;
		if (trel) {
			*trel++ = '\0';
			ret = ds_open(registry, target, &tds, err);
			if (ret == 0 && ds_entry_find(tds, trel, &e) == 0 &&
			    e.state == DS_STATE_READY && e.origin) {
				char *spec = spec_of(ds, ref.rel);

				if (spec && !strcmp(spec, e.origin)) {
					*nextp = ds_join(ds_path(tds), trel);
					ret = *nextp ? 1 : -ENOMEM;
				}
				free(spec);
			}
		}
	}
	ds_close(tds);
	ds_close(ds);
	free(target);
	ds_ref_fini(&ref);
	return ret < 0 ? ret : *nextp ? 1 : 0;
}

int ds_entry_in_charge(struct ds_datastore *ds, const char *rel, struct errmsg *err)
{
	struct ds_datastore *tds = NULL;
	struct ds_entry e;
	char *name, *trel, *spec;
	int ret;

	if (ds_entry_find(ds, rel, &e) < 0 || !e.moving_to) {
		return 0;
	}
	name = strdup(e.moving_to);
	spec = spec_of(ds, rel);
	trel = name ? strchr(name, ':') : NULL;
	ret = name && spec ? 0 : -ENOMEM;
	if (ret == 0 && !trel) {
		errmsg_set(err, "%s: moving_to '%s' is not NAME:path", spec, name);
		ret = -EINVAL;
	}
	if (ret == 0) {
		*trel++ = '\0';
		ret = ds_open(ds->registry, name, &tds, err);
	}
	if (ret == 0 && ds_entry_find(tds, trel, &e) == 0 && e.state == DS_STATE_READY &&
	    e.origin && !strcmp(e.origin, spec)) {
		errmsg_set(err, "%s was migrated to %s:%s, which is the image now; 'vdisk migrate "
				"%s --to %s:%s' again deletes this old copy",
			   spec, name, trel, spec, name, trel);
		ret = -ESTALE;
	}
	ds_close(tds);
	free(name);
	free(spec);
	return ret;
}
