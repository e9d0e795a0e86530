/* SPDX-License-Identifier: MIT */
/* vdiskd-migrate.c: live migration of a served disk to another datastore
 * (docs/datastores.md, "Live migration").  One job thread per migrating
 * disk runs the datastore protocol of datastore.h (ds_live_*) around the
 * copy:
 *
 *  prepare    the destination is created in the other datastore (same
 *             size, cluster size and backing file), its entry incomplete;
 *  snapshots  each snapshot, oldest first, is written into the
 *             destination's active layer (only what changed since the one
 *             before) and taken there under its name, so snapshots keep
 *             sharing their clusters; the source's snapshots are read
 *             through a second, lock-free handle (they cannot change: no
 *             snapshot operation is allowed while the job runs);
 *  copy       under one short pause, what the active layer holds beyond
 *             the last snapshot is marked dirty and the mirror (mirror.h)
 *             enters the guest's write path; the copier then moves dirty
 *             runs, MIRROR_MAX_COPIES at a time, at the bandwidth asked;
 *  pivot      once nothing is dirty: pause (the requests in flight drain),
 *             flush the destination, switch the datastore entry (from here
 *             on the destination is the image), serve the destination
 *             through the same socket and queues, resume; then vdiskd's
 *             saved set names the destination, and the source is deleted
 *             (or released with keep_source).
 *
 * A failure or a cancel before the switch takes the mirror out (paused),
 * deletes the destination and leaves the source in charge; the guest sees
 * nothing of it.  vdiskd's saved set records a running job, so after a
 * crash the restarted daemon serves whichever image the datastore says is
 * in charge and starts the job again (docs/vdiskd.md). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blk-backend.h"
#include "datastore.h"
#include "mirror.h"
#include "vdiskd.h"
#include "vdisk.h"

/* The destination is flushed this often during the copy, so the flush in
 * the pivot's pause has little left to write, and so that no flush holds
 * the device (and the guest's writes) long: 256 MiB stalled the guest
 * about 200 ms here, 32 MiB about 30 (docs/benchmarks.md, issue 9). */
#define FLUSH_EVERY_BYTES (32ull << 20)
#define SNAP_CHUNK_BYTES (1u << 20)

enum phase {
	PH_PREPARE,
	PH_SNAPSHOTS,
	PH_COPY,
	PH_PIVOT,
	PH_FINISH,
	PH_DONE,
	PH_FAILED,
	PH_CANCELLED,
	PH_STOPPED,
};

static const char *const phase_names[] = {
    "prepare", "snapshots", "copy", "pivot", "finish", "done", "failed", "cancelled", "stopped",
};

struct vdd_job {
	struct vdd_disk *d;
	pthread_t tid;
	bool joinable;
	char *to_name, *to_rel;
	bool keep_source;
	atomic_uint_fast64_t bandwidth;
	atomic_bool cancel, stop;

	/* Status, under 'lock'. */
	pthread_mutex_t lock;
	enum phase phase;
	char *src_spec, *dst_spec, *src_path, *dst_path;
	uint64_t total, done, mirrored;
	uint64_t start_ns, end_ns, pivot_us;
	char error[512];

	/* The job thread's own. */
	struct ds_live *live;
	struct vd_image *src, *dst;
	struct mirror *mirror;
	bool installed;
	struct vd_ctx *ctx;
	uint64_t tokens, refill_ns, flushed_at;
};

static void set_phase(struct vdd_job *j, enum phase p)
{
	pthread_mutex_lock(&j->lock);
	j->phase = p;
	pthread_mutex_unlock(&j->lock);
}

static void add_done(struct vdd_job *j, uint64_t n)
{
	pthread_mutex_lock(&j->lock);
	j->done += n;
	pthread_mutex_unlock(&j->lock);
}

/* Test hook: VDISKD_MIGRATE_CRASH_AT=copy|pivot|switched|saved dies there,
 * as kill -9 would, so the tests can reach each window exactly. */
static void crash_point(const char *where)
{
	const char *at = getenv("VDISKD_MIGRATE_CRASH_AT");

	if (at && strcmp(at, where) == 0) {
		vdd_log("VDISKD_MIGRATE_CRASH_AT=%s: dying here", where);
		_exit(99);
	}
}

static bool stopping(struct vdd_job *j)
{
	return atomic_load(&j->cancel) || atomic_load(&j->stop);
}

/* The bandwidth limit, a token bucket holding at most a tenth of a
 * second's bytes (and at least a chunk).  Returns the bytes that may be
 * copied now: 'want' when there is no limit. */
static uint64_t tokens(struct vdd_job *j, uint64_t want)
{
	uint64_t bw = atomic_load(&j->bandwidth), now = vdd_now_ns(), burst;

	if (bw == 0) {
		j->refill_ns = now;
		return want;
	}
	burst = bw / 10 > MIRROR_CHUNK_BYTES ? bw / 10 : MIRROR_CHUNK_BYTES;
	j->tokens += (now - j->refill_ns) * bw / 1000000000u;
	j->refill_ns = now;
	if (j->tokens > burst) {
		j->tokens = burst;
	}
	return want < j->tokens ? want : j->tokens;
}

static void spend(struct vdd_job *j, uint64_t n)
{
	j->tokens = j->tokens > n ? j->tokens - n : 0;
}

/* Waits until 'n' bytes may go; false on a cancel. */
static bool pace(struct vdd_job *j, uint64_t n)
{
	while (tokens(j, n) < n) {
		if (stopping(j)) {
			return false;
		}
		usleep(2000);
	}
	spend(j, n);
	return !stopping(j);
}


/* ---------------------------------------------------------- the snapshots */

struct range {
	uint64_t off, len;
};

struct ranges {
	struct range *v;
	size_t n, cap;
	uint64_t bytes;
};

static int range_add(void *arg, uint64_t off, uint64_t len)
{
	struct ranges *r = arg;

	if (r->n && r->v[r->n - 1].off + r->v[r->n - 1].len == off) {
		r->v[r->n - 1].len += len;
	} else {
		if (r->n == r->cap) {
			size_t cap = r->cap ? 2 * r->cap : 64;
			struct range *v = realloc(r->v, cap * sizeof(*v));

			if (!v) {
				return -ENOMEM;
			}
			r->v = v;
			r->cap = cap;
		}
		r->v[r->n++] = (struct range){off, len};
	}
	r->bytes += len;
	return 0;
}

/* What snapshot 'i' holds that the one before does not (for the first:
 * what it holds in this file at all). */
static int snapshot_ranges(struct vd_image *ro, struct vd_snap_view *view, const char *prev,
			   const char *name, struct ranges *r, struct errmsg *err)
{
	uint64_t size = vd_snapshot_view_size(view), off = 0, len;
	bool held;
	int ret;

	if (prev) {
		return vd_snapshot_diff(ro, prev, name, range_add, r, err);
	}
	while (off < size) {
		ret = vd_snapshot_view_extent(view, off, size - off, &len, &held);
		if (ret < 0) {
			errmsg_set(err, "snapshot %s: reading its map: %s", name, strerror(-ret));
			return ret;
		}
		if (held && (ret = range_add(r, off, len)) < 0) {
			return ret;
		}
		off += len;
	}
	return 0;
}

static int copy_ranges(struct vdd_job *j, struct vd_snap_view *view, const struct ranges *r,
		       uint8_t *buf, struct errmsg *err)
{
	uint64_t size = vd_snapshot_view_size(view);

	for (size_t i = 0; i < r->n; i++) {
		uint64_t off = r->v[i].off, end = off + r->v[i].len;

		end = end > size ? size : end;
		while (off < end) {
			uint64_t n = end - off < SNAP_CHUNK_BYTES ? end - off : SNAP_CHUNK_BYTES;
			int ret;

			if (!pace(j, n)) {
				return -ECANCELED;
			}
			ret = vd_snapshot_view_pread(view, buf, n, off);
			if (ret < 0) {
				errmsg_set(err, "reading the source's snapshot at %" PRIu64 ": %s", off,
					   strerror(-ret));
				return ret;
			}
			ret = mirror_all_zero(buf, n) ? vd_write_zeroes(j->dst, off, n)
					       : vd_pwrite(j->dst, buf, n, off);
			if (ret < 0) {
				errmsg_set(err, "writing %s: %s", j->dst_spec, strerror(-ret));
				return ret;
			}
			add_done(j, n);
			off += n;
		}
	}
	return 0;
}

static int copy_snapshots(struct vdd_job *j, struct errmsg *err)
{
	struct vd_open_opts oo;
	struct vd_image *ro = NULL;
	struct ranges *rs = NULL;
	char **names = NULL;
	uint8_t *buf = NULL;
	int n, ret;

	vd_open_opts_init(&oo);
	/* vdiskd holds the source's lock; its snapshots are immutable while
	 * the job runs, so a reader without the lock reads them right. */
	oo.flags = VD_OPEN_FORCE_SHARE | VD_OPEN_BUFFERED;
	ret = vd_open(j->src_path, &oo, &ro, err);
	if (ret < 0) {
		return ret;
	}
	n = vd_snapshot_count(ro);
	if (n <= 0) {
		vd_close(ro);
		return n;
	}
	set_phase(j, PH_SNAPSHOTS);
	j->refill_ns = vdd_now_ns();
	names = calloc((size_t)n, sizeof(*names));
	rs = calloc((size_t)n, sizeof(*rs));
	ret = names && rs && posix_memalign((void **)&buf, 4096, SNAP_CHUNK_BYTES) == 0 ? 0
											 : -ENOMEM;
	for (int i = 0; i < n && ret == 0; i++) {
		struct vd_snapshot_info si;
		struct vd_snap_view *view;

		ret = vd_snapshot_get(ro, (unsigned)i, &si);
		if (ret == 0) {
			names[i] = strdup(si.name);
			ret = names[i] ? vd_snapshot_view_open(ro, names[i], &view, err) : -ENOMEM;
		}
		if (ret == 0) {
			ret = snapshot_ranges(ro, view, i ? names[i - 1] : NULL, names[i], &rs[i], err);
			vd_snapshot_view_close(view);
			pthread_mutex_lock(&j->lock);
			j->total += rs[i].bytes;
			pthread_mutex_unlock(&j->lock);
		}
	}
	for (int i = 0; i < n && ret == 0; i++) {
		struct vd_snap_view *view;

		ret = vd_snapshot_view_open(ro, names[i], &view, err);
		if (ret < 0) {
			break;
		}
		if (vd_size_bytes(j->dst) != vd_snapshot_view_size(view)) {
			ret = vd_resize(j->dst, vd_snapshot_view_size(view), true, err);
		}
		if (ret == 0) {
			ret = copy_ranges(j, view, &rs[i], buf, err);
		}
		vd_snapshot_view_close(view);
		if (ret == 0) {
			ret = vd_snapshot_create(j->dst, names[i], err);
		}
	}
	for (int i = 0; i < n && names; i++) {
		free(names[i]);
		if (rs) {
			free(rs[i].v);
		}
	}
	free(names);
	free(rs);
	free(buf);
	vd_close(ro);
	return ret < 0 ? ret : n;
}

/* --------------------------------------------------------------- the copy */

struct mark_arg {
	struct mirror *m;
	uint64_t bytes;
};

static int mark(void *arg, uint64_t off, uint64_t len)
{
	struct mark_arg *a = arg;

	mirror_mark(a->m, off, len);
	a->bytes += len;
	return 0;
}

/* Paused: what the active layer holds that the destination does not. */
static int mark_active(struct vdd_job *j, const char *last_snapshot, uint64_t *bytesp,
		       struct errmsg *err)
{
	struct mark_arg a = {.m = j->mirror};
	uint64_t size = vd_size_bytes(j->src), off = 0;
	struct vd_extent e;
	int ret = 0;

	if (last_snapshot) {
		ret = vd_snapshot_diff(j->src, last_snapshot, NULL, mark, &a, err);
	} else {
		while (ret == 0 && off < size) {
			ret = vd_map(j->src, off, &e);
			if (ret == 0 && e.length == 0) {
				ret = -EIO;
			}
			if (ret == 0 && (e.state == VD_EXTENT_DATA || e.state == VD_EXTENT_ZERO)) {
				mark(&a, e.offset, e.length);
			}
			off = e.offset + e.length;
		}
		if (ret < 0) {
			errmsg_set(err, "mapping %s: %s", j->src_spec, strerror(-ret));
		}
	}
	*bytesp = a.bytes;
	return ret;
}

static void flush_done(void *arg, int ret)
{
	int *p = arg;

	*p = ret;
}

/* Runs the job context's completions; wakes the I/O threads when the
 * mirror turned guest writes back. */
static void run_ctx(struct vdd_job *j)
{
	bool retry;

	vdd_disk_lock(j->d);
	vd_ctx_poll(j->ctx, 0);
	retry = mirror_take_retry(j->mirror);
	vdd_disk_unlock(j->d);
	if (retry) {
		vdd_disk_retry(j->d);
	}
}

static void wait_ctx(struct vdd_job *j, int timeout_ms)
{
	struct pollfd p = {.fd = vd_ctx_event_fd(j->ctx), .events = POLLIN};

	poll(&p, 1, timeout_ms);
	run_ctx(j);
}

/* Submits a flush of the destination on the job's context and waits. */
static int flush_dst(struct vdd_job *j)
{
	int result = 1, ret;

	vdd_disk_lock(j->d);
	ret = vd_submit_flush(j->ctx, j->dst, flush_done, &result);
	vdd_disk_unlock(j->d);
	while (ret == 0 && result == 1) {
		wait_ctx(j, 10);
	}
	return ret < 0 ? ret : result;
}

/* Until nothing is dirty, a failure or a cancel. */
static int copy_loop(struct vdd_job *j, struct errmsg *err)
{
	struct mirror_stats st;
	uint64_t last_done = 0;

	for (;;) {
		bool wait_tokens = false;

		vdd_disk_lock(j->d);
		mirror_get_stats(j->mirror, &st);
		if (st.error == 0 && !stopping(j)) {
			while (st.copies < MIRROR_MAX_COPIES) {
				uint64_t allow = tokens(j, MIRROR_CHUNK_BYTES);
				int64_t n;

				/* Less than a granule: wait for the bucket. */
				if (allow < vd_cluster_bytes(j->src)) {
					wait_tokens = true;
					break;
				}
				n = mirror_copy_start(j->mirror, j->ctx, allow);
				if (n <= 0) {
					break;
				}
				spend(j, (uint64_t)n);
				st.copies++;
			}
			vd_ctx_submit(j->ctx);
		}
		mirror_get_stats(j->mirror, &st);
		vdd_disk_unlock(j->d);
		pthread_mutex_lock(&j->lock);
		j->done += st.copied_bytes - last_done;
		j->mirrored = st.mirrored_bytes;
		pthread_mutex_unlock(&j->lock);
		last_done = st.copied_bytes;
		if (st.error) {
			errmsg_set(err, "%s %s: %s", st.error_dst ? "writing" : "reading",
				   st.error_dst ? j->dst_spec : j->src_spec, strerror(-st.error));
			return st.error;
		}
		if (st.copies == 0 && (stopping(j) || st.dirty_bytes == 0)) {
			break;
		}
		if (st.copied_bytes - j->flushed_at >= FLUSH_EVERY_BYTES) {
			int ret = flush_dst(j);

			if (ret < 0) {
				errmsg_set(err, "flushing %s: %s", j->dst_spec, strerror(-ret));
				return ret;
			}
			j->flushed_at = st.copied_bytes;
		}
		wait_ctx(j, wait_tokens ? 2 : 50);
	}
	return stopping(j) ? -ECANCELED : 0;
}

/* ------------------------------------------------------------- the pivot */

/* Closes an image the disk no longer serves.  A commit or write-back of it
 * may still be in flight on the I/O threads' contexts: they finish it as
 * they run; once none is, closing (a checkpoint: several writes and
 * fsyncs) touches no context and runs without the disk's lock, so the
 * guest does not wait for it.  Past a second, it closes under the lock,
 * which drives those contexts itself (and may then complete guest
 * requests here: the threads are told to look at their queues). */
static int close_released(struct vdd_disk *d, struct vd_image *img)
{
	int ret;

	for (int i = 0; i < 1000; i++) {
		bool busy;

		vdd_disk_lock(d);
		busy = vd_busy(img);
		vdd_disk_unlock(d);
		if (!busy) {
			return vd_close(img);
		}
		usleep(1000);
	}
	vdd_disk_lock(d);
	ret = vd_close(img);
	vdd_disk_unlock(d);
	vdd_disk_retry(d);
	return ret;
}

static int pivot(struct vdd_job *j, struct errmsg *err)
{
	struct vdd_disk *d = j->d;
	struct vd_image *old;
	uint64_t t0, pause_us;
	int ret;

	set_phase(j, PH_PIVOT);
	/* Most of what the pause's flush would write, written now. */
	ret = flush_dst(j);
	if (ret < 0) {
		errmsg_set(err, "flushing %s: %s", j->dst_spec, strerror(-ret));
		return ret;
	}
	t0 = vdd_disk_pause(d);
	if (!mirror_synced(j->mirror)) {
		vdd_disk_resume(d, t0, NULL);
		errmsg_set(err, "%s: the mirror lost its sync", j->dst_spec);
		return -EIO;
	}
	ret = vd_flush(j->dst);
	if (ret < 0) {
		errmsg_set(err, "flushing %s: %s", j->dst_spec, strerror(-ret));
	}
	if (ret == 0) {
		crash_point("pivot");
		/* The switch: from here on the destination is the image. */
		ret = ds_live_switch(j->live, err);
	}
	if (ret < 0) {
		vdd_disk_resume(d, t0, NULL);
		return ret;
	}
	crash_point("switched");
	blk_vdisk_set_mirror(vdd_disk_backend(d), NULL);
	j->installed = false;
	old = blk_vdisk_swap(vdd_disk_backend(d), j->dst);
	vd_set_durable_map(j->dst, !vdd_disk_opts(d)->volatile_map);
	j->dst = NULL;
	j->src = NULL; /* 'old' now, closed below */
	ret = vdd_disk_set_image(d, j->dst_path);
	vdd_disk_resume(d, t0, &pause_us);
	pthread_mutex_lock(&j->lock);
	j->pivot_us = pause_us;
	j->phase = PH_FINISH;
	pthread_mutex_unlock(&j->lock);
	vdd_log("disk %s: now served from %s (%s); the guest paused %" PRIu64 " us",
		j->src_spec, j->dst_path, j->dst_spec, pause_us);
	if (ret < 0 || vdd_save(vdd_disk_server(d)) < 0) {
		vdd_log("disk %s: the saved set still names the source: a restart serves "
			"%s all the same (the datastore says it is the image)",
			j->dst_spec, j->dst_spec);
	}
	crash_point("saved");
	ret = ds_live_finish(j->live, err);
	if (ret < 0) {
		vdd_log("disk %s: %s (the next 'vdisk migrate %s' removes it)", j->dst_spec,
			err->msg, j->src_spec);
	}
	ret = close_released(d, old);
	if (ret < 0) {
		vdd_log("disk %s: closing the old image: %s", j->src_spec, strerror(-ret));
	}
	return 0;
}

/* ------------------------------------------------------------- the thread */

/* Takes the mirror out and closes the destination; no copy in flight. */
static void unwind(struct vdd_job *j)
{
	struct vdd_disk *d = j->d;

	if (j->ctx) {
		while (vd_ctx_inflight(j->ctx) > 0) {
			wait_ctx(j, 10);
		}
	}
	if (j->installed) {
		uint64_t t0 = vdd_disk_pause(d);

		blk_vdisk_set_mirror(vdd_disk_backend(d), NULL);
		j->installed = false;
		vdd_disk_resume(d, t0, NULL);
	}
	if (j->dst) {
		close_released(d, j->dst);
		j->dst = NULL;
	}
}

static int run(struct vdd_job *j, struct errmsg *err)
{
	struct vdd_disk *d = j->d;
	struct vd_create_opts co;
	struct vd_open_opts oo;
	char *last = NULL;
	uint64_t t0, bytes = 0;
	int n, ret;

	vd_create_opts_init(&co);
	co.size_bytes = vd_size_bytes(j->src);
	co.cluster_bytes = vd_cluster_bytes(j->src);
	co.subclusters = vd_subcluster_bytes(j->src) != 0;
	co.backing_path = ds_live_dest_backing(j->live);
	ret = vd_create(j->dst_path, &co, err);
	if (ret < 0) {
		return ret;
	}
	vd_open_opts_init(&oo);
	/* The source carries the guest's guarantee until the pivot. */
	oo.flags = VD_OPEN_RDWR |
		   (vdd_disk_opts(d)->cache && !strcmp(vdd_disk_opts(d)->cache, "writeback")
			    ? VD_OPEN_BUFFERED : 0);
	ret = vd_open(j->dst_path, &oo, &j->dst, err);
	if (ret < 0) {
		return ret;
	}
	n = copy_snapshots(j, err);
	if (n < 0) {
		return n;
	}
	if (n > 0) {
		struct vd_snapshot_info si;

		ret = vd_snapshot_get(j->dst, (unsigned)n - 1, &si);
		last = ret == 0 ? strdup(si.name) : NULL;
		if (!last) {
			return ret < 0 ? ret : -ENOMEM;
		}
	}
	ret = vd_ctx_create(4 * MIRROR_MAX_COPIES, &j->ctx);
	if (ret == 0 && vd_size_bytes(j->dst) != vd_size_bytes(j->src)) {
		ret = vd_resize(j->dst, vd_size_bytes(j->src), true, err);
	}
	if (ret == 0) {
		ret = mirror_create(j->src, j->dst, &j->mirror);
	}
	if (ret < 0 || stopping(j)) {
		free(last);
		return ret < 0 ? ret : -ECANCELED;
	}
	set_phase(j, PH_COPY);
	t0 = vdd_disk_pause(d);
	ret = mark_active(j, last, &bytes, err);
	if (ret == 0) {
		blk_vdisk_set_mirror(vdd_disk_backend(d), j->mirror);
		j->installed = true;
	}
	vdd_disk_resume(d, t0, NULL);
	free(last);
	if (ret < 0) {
		return ret;
	}
	pthread_mutex_lock(&j->lock);
	j->total += bytes;
	pthread_mutex_unlock(&j->lock);
	crash_point("copy");
	ret = copy_loop(j, err);
	return ret < 0 ? ret : pivot(j, err);
}

static void *job_main(void *arg)
{
	struct vdd_job *j = arg;
	struct errmsg err = {{0}};
	enum phase end;
	int ret = run(j, &err);

	if (ret == 0) {
		end = PH_DONE;
	} else {
		end = atomic_load(&j->stop) ? PH_STOPPED
		      : atomic_load(&j->cancel) && ret == -ECANCELED ? PH_CANCELLED
								     : PH_FAILED;
		unwind(j);
		if (end != PH_STOPPED) {
			struct errmsg ignored = {{0}};

			/* The source is in charge again; its copy goes. */
			if (ds_live_abandon(j->live, &ignored) < 0) {
				vdd_log("disk %s: removing the partial copy %s: %s (the next "
					"migration removes it)", j->src_spec, j->dst_spec, ignored.msg);
			}
		}
	}
	if (j->ctx) {
		vd_ctx_destroy(j->ctx);
		j->ctx = NULL;
	}
	mirror_destroy(j->mirror);
	j->mirror = NULL;
	ds_live_free(j->live);
	j->live = NULL;
	pthread_mutex_lock(&j->lock);
	j->phase = end;
	j->end_ns = vdd_now_ns();
	if (end == PH_FAILED) {
		snprintf(j->error, sizeof(j->error), "%s",
			 err.msg[0] ? err.msg : strerror(-ret));
	}
	pthread_mutex_unlock(&j->lock);
	if (end == PH_DONE) {
		vdd_log("disk %s: migrated to %s", j->src_spec, j->dst_spec);
	} else if (end == PH_FAILED) {
		vdd_log("disk %s: migration to %s failed, the source stays in charge: %s",
			j->src_spec, j->dst_spec, j->error);
	} else {
		vdd_log("disk %s: migration to %s %s", j->src_spec, j->dst_spec, phase_names[end]);
	}
	/* The job's record leaves the saved set (not when vdiskd stops: the
	 * restart takes the job up again). */
	if (end != PH_STOPPED) {
		vdd_save(vdd_disk_server(j->d));
	}
	return NULL;
}

/* ------------------------------------------------------------------- API */

static bool running(const struct vdd_job *j)
{
	return j && j->phase < PH_DONE;
}

bool vdd_job_running(struct vdd_disk *d)
{
	struct vdd_job *j = vdd_disk_job(d);
	bool r;

	if (!j) {
		return false;
	}
	pthread_mutex_lock(&j->lock);
	r = running(j);
	pthread_mutex_unlock(&j->lock);
	return r;
}

void vdd_job_free(struct vdd_disk *d)
{
	struct vdd_job *j = vdd_disk_job(d);

	if (!j) {
		return;
	}
	if (j->joinable) {
		pthread_join(j->tid, NULL);
	}
	pthread_mutex_destroy(&j->lock);
	free(j->to_name);
	free(j->to_rel);
	free(j->src_spec);
	free(j->dst_spec);
	free(j->src_path);
	free(j->dst_path);
	free(j);
	vdd_disk_set_job(d, NULL);
}

void vdd_job_stop(struct vdd_disk *d)
{
	struct vdd_job *j = vdd_disk_job(d);

	if (j && j->joinable) {
		atomic_store(&j->stop, true);
		pthread_join(j->tid, NULL);
		j->joinable = false;
	}
}

int vdd_migrate_start(struct vdd_disk *d, const struct vdd_migrate_opts *o,
		      struct errmsg *err)
{
	const struct vdd_disk_opts *dopts = vdd_disk_opts(d);
	struct vd_image *img = blk_vdisk_image(vdd_disk_backend(d));
	struct ds_migrate_opts mo;
	struct vdd_job *j;
	int ret;

	if (vdd_job_running(d)) {
		errmsg_set(err, "%s: a migration is running already", dopts->image);
		return -EBUSY;
	}
	if (!img) {
		errmsg_set(err, "%s: only vdisk images move live", dopts->image);
		return -EOPNOTSUPP;
	}
	if (dopts->read_only) {
		errmsg_set(err, "%s is served read-only: migrate it cold (vdisk migrate after "
				"disk-remove)", dopts->image);
		return -EROFS;
	}
	vdd_job_free(d);
	j = calloc(1, sizeof(*j));
	if (!j) {
		return -ENOMEM;
	}
	pthread_mutex_init(&j->lock, NULL);
	j->d = d;
	j->src = img;
	j->keep_source = o->keep_source;
	atomic_store(&j->bandwidth, o->bandwidth);
	j->to_name = strdup(o->to_name);
	j->to_rel = o->to_rel ? strdup(o->to_rel) : NULL;
	j->src_path = strdup(dopts->image);
	ret = j->to_name && j->src_path && (!o->to_rel || j->to_rel) ? 0 : -ENOMEM;
	ds_migrate_opts_init(&mo);
	mo.keep_source = o->keep_source;
	if (ret == 0) {
		ret = ds_live_begin(NULL, dopts->image, vd_backing_path(img), o->to_name, o->to_rel,
				    &mo, &j->live, err);
	}
	if (ret == 0) {
		j->src_spec = strdup(ds_live_src_spec(j->live));
		j->dst_spec = strdup(ds_live_dest_spec(j->live));
		j->dst_path = strdup(ds_live_dest_path(j->live));
		ret = j->src_spec && j->dst_spec && j->dst_path ? 0 : -ENOMEM;
	}
	if (ret < 0) {
		if (j->live) {
			struct errmsg ignored;

			ds_live_abandon(j->live, &ignored);
			ds_live_free(j->live);
		}
		vdd_disk_set_job(d, j);
		vdd_job_free(d);
		return ret;
	}
	j->start_ns = vdd_now_ns();
	j->phase = PH_PREPARE;
	vdd_disk_set_job(d, j);
	ret = -pthread_create(&j->tid, NULL, job_main, j);
	if (ret < 0) {
		struct errmsg ignored;

		ds_live_abandon(j->live, &ignored);
		ds_live_free(j->live);
		vdd_job_free(d);
		errmsg_set(err, "cannot start the job thread: %s", strerror(-ret));
		return ret;
	}
	j->joinable = true;
	vdd_log("disk %s: migrating %s to %s", dopts->image, j->src_spec, j->dst_spec);
	return 0;
}

int vdd_migrate_cancel(struct vdd_disk *d, struct errmsg *err)
{
	struct vdd_job *j = vdd_disk_job(d);

	if (!vdd_job_running(d)) {
		errmsg_set(err, "%s: no migration is running", vdd_disk_opts(d)->image);
		return -ENOENT;
	}
	atomic_store(&j->cancel, true);
	/* Cancel is synchronous: the source is in charge when it returns,
	 * unless the pivot was already under way (then the job completes). */
	pthread_join(j->tid, NULL);
	j->joinable = false;
	pthread_mutex_lock(&j->lock);
	if (j->phase == PH_DONE) {
		errmsg_set(err, "%s: too late, the migration to %s completed", j->src_spec,
			   j->dst_spec);
		pthread_mutex_unlock(&j->lock);
		return -EALREADY;
	}
	pthread_mutex_unlock(&j->lock);
	return 0;
}

int vdd_migrate_set_bandwidth(struct vdd_disk *d, uint64_t bandwidth, struct errmsg *err)
{
	if (!vdd_job_running(d)) {
		errmsg_set(err, "%s: no migration is running", vdd_disk_opts(d)->image);
		return -ENOENT;
	}
	atomic_store(&vdd_disk_job(d)->bandwidth, bandwidth);
	return 0;
}

int vdd_migrate_get_info(struct vdd_disk *d, struct vdd_migrate_info *info)
{
	struct vdd_job *j = vdd_disk_job(d);
	uint64_t elapsed;

	memset(info, 0, sizeof(*info));
	if (!j) {
		return -ENOENT;
	}
	info->source = j->src_spec;
	info->destination = j->dst_spec;
	info->to_name = j->to_name;
	info->to_rel = j->to_rel;
	info->keep_source = j->keep_source;
	info->bandwidth = atomic_load(&j->bandwidth);
	pthread_mutex_lock(&j->lock);
	info->phase = phase_names[j->phase];
	info->running = running(j);
	/* Past the pivot the destination is served: nothing to take up. */
	info->resumable = info->running && j->phase < PH_FINISH;
	info->pivoted = j->phase == PH_FINISH || j->phase == PH_DONE;
	info->pivot_us = j->pivot_us;
	elapsed = (info->running ? vdd_now_ns() : j->end_ns) - j->start_ns;
	info->elapsed_ms = elapsed / 1000000;
	info->done = j->done;
	info->total = j->total > j->done ? j->total : j->done;
	info->mirrored = j->mirrored;
	info->rate = elapsed > 1000000 ? j->done * 1000000000u / elapsed : 0;
	info->has_eta = info->running && info->rate && j->total > j->done;
	if (info->has_eta) {
		info->eta_ms = (j->total - j->done) * 1000 / info->rate;
	}
	snprintf(info->error, sizeof(info->error), "%s", j->error);
	pthread_mutex_unlock(&j->lock);
	return 0;
}
