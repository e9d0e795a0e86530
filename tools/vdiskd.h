/* SPDX-License-Identifier: MIT */
/* vdiskd.h: what the disk server's parts share: the main loop (vdiskd.c:
 * EAL, control socket, persistence), the JSON-RPC methods (vdiskd-rpc.c)
 * and the vhost-user-blk server (vdiskd-blk.c: disks, virtqueues, I/O
 * threads).  The server's thread model and request rules are written at
 * the top of vdiskd-blk.c. */
#ifndef VDISKD_H
#define VDISKD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "errmsg.h"
#include "rpc.h"

/* Queues one disk may have: a guest uses one per vCPU. */
#define VDD_MAX_QUEUES 16
/* virtio-blk's GET_ID answer is at most 20 bytes, not terminated. */
#define VDD_SERIAL_BYTES 20

struct vdd;
struct vdd_disk;

struct vdd_opts {
	unsigned threads;       /* I/O threads; 0 = one per online CPU, at most 4 */
	bool poll;              /* busy-poll instead of sleeping on eventfds */
	const int *cpus;        /* pin thread i to cpus[i % n_cpus]; NULL: no pinning */
	unsigned n_cpus;
	/* Saves the served set (vdd_config_dump) where a restart finds it;
	 * called by a migration job at its pivot.  NULL: nothing saved. */
	int (*save)(void *ctx);
	void *save_ctx;
};

struct vdd_disk_opts {
	const char *image;      /* absolute path */
	const char *socket;     /* absolute path of the vhost-user socket */
	const char *format;     /* "auto" (default), "vdisk", "raw" */
	const char *serial;     /* GET_ID answer; NULL: none */
	const char *cache;      /* "none" (default: O_DIRECT) or "writeback" */
	bool read_only;
	/* A write that allocates completes before its mapping is committed:
	 * faster, but lost if vdiskd dies before the guest's next flush
	 * (like qemu-storage-daemon's qcow2).  Default: durable. */
	bool volatile_map;
	unsigned queues;        /* 1..VDD_MAX_QUEUES; 0 = 1 */
};

/* Per operation counters (disk-stats). */
enum vdd_op { VDD_OP_READ, VDD_OP_WRITE, VDD_OP_FLUSH, VDD_OP_DISCARD, VDD_OP_WRITE_ZEROES,
	      VDD_OP_GET_ID, VDD_OP_OTHER, VDD_N_OPS };
/* Latency buckets: bucket i counts requests that took < 2^i microseconds
 * (the last: everything longer than 2^(N-2) us, about 1 s). */
#define VDD_LAT_BUCKETS 22

struct vdd_op_stats {
	uint64_t requests;
	uint64_t bytes;
	uint64_t errors;
	uint64_t latency_us_total;
	uint64_t latency[VDD_LAT_BUCKETS];
};

struct vdd_disk_info {
	const char *image, *socket, *format, *serial, *cache; /* borrowed */
	bool read_only;
	unsigned queues;          /* configured */
	bool connected;           /* a guest's front end is attached */
	const char *virtqueues;   /* "split" or "packed" once the front end
				   * started the device, else NULL (static) */
	bool event_idx;           /* VIRTIO_RING_F_EVENT_IDX negotiated */
	unsigned active_queues;   /* virtqueues being served */
	uint64_t size_bytes;
	uint64_t allocated_bytes;
	uint64_t bytes_read, bytes_written;
	unsigned inflight;        /* in the back end now */
	unsigned held;            /* waiting for space (ENOSPC, EDQUOT) */
	int held_errno;           /* why the last one was held */
	uint64_t queue_requests[VDD_MAX_QUEUES]; /* per virtqueue, since added */
};

const char *vdd_op_name(enum vdd_op op);

int vdd_create(const struct vdd_opts *opts, struct vdd **srvp, struct errmsg *err);
/* Stops the threads and closes every disk (the guests see a disconnect). */
void vdd_destroy(struct vdd *srv);

/* Opens the image and listens on the socket.  Nothing is left behind when
 * it fails. */
int vdd_disk_add(struct vdd *srv, const struct vdd_disk_opts *opts, struct errmsg *err);
/* Removes the disk named by image or socket path.  While a guest is
 * connected, refuses with -EBUSY unless 'force', which disconnects it
 * after its requests in flight completed. */
int vdd_disk_remove(struct vdd *srv, const char *name, bool force, struct errmsg *err);
/* The disk whose image or socket is 'name', or NULL (-ENOENT). */
struct vdd_disk *vdd_disk_find(struct vdd *srv, const char *name);
/* Disks in the order added: first with NULL, then the one before. */
struct vdd_disk *vdd_disk_next(struct vdd *srv, struct vdd_disk *prev);
void vdd_disk_get_info(struct vdd_disk *d, struct vdd_disk_info *info);
void vdd_disk_get_stats(struct vdd_disk *d, struct vdd_op_stats stats[VDD_N_OPS]);
/* The options that recreate the disk (for persistence); borrowed. */
const struct vdd_disk_opts *vdd_disk_opts(struct vdd_disk *d);

/* Control operations.  Each drains the disk (no new request starts, those
 * in flight complete), acts, and resumes; '*pause_usp' (may be NULL) is how
 * long the guest's requests were held up. */
int vdd_disk_resize(struct vdd_disk *d, uint64_t size_bytes, uint64_t *pause_usp,
		    struct errmsg *err);
int vdd_disk_snapshot(struct vdd_disk *d, const char *name, bool delete, uint64_t *pause_usp,
		      struct errmsg *err);
int vdd_disk_flush(struct vdd_disk *d, struct errmsg *err);
/* Stores in '*objp' the back end's description of the disk (vdisk-info.h:
 * what `vdisk info --json` shows); -ENOTSUP for a back end that has none.
 * Drains like the operations above: the description reads metadata
 * through the image handle, which no request may be using meanwhile. */
int vdd_disk_describe(struct vdd_disk *d, struct json_object **objp, struct errmsg *err);
/* Retries the requests held for lack of space now. */
void vdd_disk_retry(struct vdd_disk *d);

/* Live migration of a served disk to another datastore (vdiskd-migrate.c;
 * docs/vdiskd-rpc.md, migrate-*).  One job per disk; while it runs the
 * disk cannot be resized, snapshotted or removed (-EBUSY). */
struct vdd_migrate_opts {
	const char *to_name;  /* destination datastore */
	const char *to_rel;   /* NULL: the source's relative path */
	bool keep_source;     /* leave the source as an independent image */
	uint64_t bandwidth;   /* bytes per second for the copy; 0: no limit */
};
int vdd_migrate_start(struct vdd_disk *d, const struct vdd_migrate_opts *o,
		      struct errmsg *err);
int vdd_migrate_cancel(struct vdd_disk *d, struct errmsg *err);
int vdd_migrate_set_bandwidth(struct vdd_disk *d, uint64_t bandwidth, struct errmsg *err);
/* The running or last job of a disk (docs/vdiskd-rpc.md, migrate-status). */
struct vdd_migrate_info {
	const char *source, *destination; /* "NAME:rel"; borrowed */
	const char *to_name, *to_rel;     /* as started (to_rel may be NULL) */
	const char *phase;
	bool running;
	bool resumable;   /* running and not yet pivoted: a restart takes it up */
	bool keep_source;
	bool pivoted;     /* pivot_us is the guest's pause at the pivot */
	uint64_t done, total, mirrored;   /* bytes */
	uint64_t rate;                    /* bytes per second so far */
	bool has_eta;                     /* eta_ms known (running, moving) */
	uint64_t eta_ms;
	uint64_t elapsed_ms, bandwidth, pivot_us;
	char error[512];                  /* "" unless it failed */
};
/* -ENOENT when the disk never had a job. */
int vdd_migrate_get_info(struct vdd_disk *d, struct vdd_migrate_info *info);
bool vdd_job_running(struct vdd_disk *d);
/* Stops a running job as a crash would (the destination is left for the
 * next start to clean up) and waits for it: vdiskd is shutting down. */
void vdd_job_stop(struct vdd_disk *d);
void vdd_job_free(struct vdd_disk *d);

/* What the job needs of the server (vdiskd-blk.c).  pause drains the disk
 * and returns with its lock held and nothing in flight; resume undoes it. */
struct vdd_job;
struct blk_backend;
uint64_t vdd_disk_pause(struct vdd_disk *d);
void vdd_disk_resume(struct vdd_disk *d, uint64_t t0, uint64_t *pause_usp);
void vdd_disk_lock(struct vdd_disk *d);
void vdd_disk_unlock(struct vdd_disk *d);
struct blk_backend *vdd_disk_backend(struct vdd_disk *d);
struct vdd *vdd_disk_server(struct vdd_disk *d);
struct vdd_job *vdd_disk_job(struct vdd_disk *d);
void vdd_disk_set_job(struct vdd_disk *d, struct vdd_job *job);
/* The pivot, paused: the disk is served from 'path' from now on. */
int vdd_disk_set_image(struct vdd_disk *d, const char *path);
int vdd_save(struct vdd *srv);

/* CLOCK_MONOTONIC in nanoseconds (vdiskd-blk.c). */
uint64_t vdd_now_ns(void);

/* Logging (vdiskd.c): one line on stderr. */
void vdd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The methods of docs/vdiskd-rpc.md (vdiskd-rpc.c). */
extern const struct rpc_method vdd_methods[];
extern const size_t vdd_n_methods;
/* The server behind the methods' context pointer (vdiskd.c). */
struct vdd *vdd_of_ctx(void *ctx);
/* The served set as disk-add parameters: {"disks": [...]}, each with the
 * "migration" a resumable job needs to start again (vdd_migrate_info).  Holds the disks' list lock
 * (vdd_lock_disks: no vdd_disk_find inside). */
void vdd_lock_disks(struct vdd *srv);
void vdd_unlock_disks(struct vdd *srv);
struct json_object *vdd_config_dump(struct vdd *srv);

#endif
