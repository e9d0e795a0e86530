/* SPDX-License-Identifier: MIT */
/* vdisk.h: create, open, read, write, map and check vdisk images.
 *
 * A vdisk image is a thin-provisioned virtual disk in one host file (the
 * format is specified in docs/vdisk-format.md).  Metadata changes go through
 * a write-ahead journal, so an image opens consistent after a crash at any
 * instant and every write acknowledged before a completed flush reads back.
 *
 * Conventions: every function returns 0 (or a count) on success and a
 * negative errno on failure; none prints or exits.  Calls a user must
 * understand take a last 'struct errmsg *' (NULL allowed) and leave one
 * sentence in it naming the file and the cause.  An image handle is not
 * thread-safe: use it from one thread at a time.  Guest offsets and lengths
 * are in bytes and must be multiples of 512 (VD_SECTOR_BYTES). */
#ifndef VDISK_H
#define VDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "errmsg.h"

#define VD_SECTOR_BYTES 512u
#define VD_MIN_CLUSTER_BYTES (4u * 1024)
#define VD_MAX_CLUSTER_BYTES (2u * 1024 * 1024)
#define VD_DEFAULT_CLUSTER_BYTES (64u * 1024)
/* Virtual sizes beyond 2^56 bytes would overflow L2 entry offsets. */
#define VD_MAX_SIZE_BYTES (1ull << 56)

struct vd_image; /* opaque */
struct vd_ctx;   /* opaque: one io_uring, one per thread or queue */

enum vd_prealloc {
	VD_PREALLOC_OFF,      /* nothing allocated: the file is a few clusters */
	VD_PREALLOC_METADATA, /* every cluster mapped, the file sparse */
	VD_PREALLOC_FULL,     /* every cluster mapped and its space reserved */
};

struct vd_create_opts {
	uint64_t size_bytes;     /* virtual size, multiple of 512 */
	uint32_t cluster_bytes;  /* power of 2 in [4 KiB, 2 MiB]; 0 = 64 KiB */
	enum vd_prealloc prealloc;
	uint32_t journal_bytes;  /* 0 = default (1 MiB, at least 8 clusters) */
	/* A linked clone of this vdisk image (NULL: none).  Stored as given; a
	 * relative path is taken from the new image's directory.  size_bytes
	 * 0 means the backing image's size. */
	const char *backing_path;
	/* Split each cluster into 32 subclusters (incompatible feature
	 * SUBCLUSTERS); cluster_bytes 0 then means 128 KiB, and it must be
	 * at least 128 KiB.  Default false. */
	bool subclusters;
};

/* Fills 'opts' with defaults (size 0, cluster_bytes 0: 64 KiB clusters, or
 * 128 KiB with subclusters; no preallocation, no subclusters). */
void vd_create_opts_init(struct vd_create_opts *opts);

/* Creates a new image at 'path'; fails with -EEXIST if the file exists. */
int vd_create(const char *path, const struct vd_create_opts *opts, struct errmsg *err);

/* Flags for vd_open_opts.flags. */
#define VD_OPEN_RDWR 0x1       /* default is read-only */
#define VD_OPEN_BUFFERED 0x2   /* use the page cache instead of O_DIRECT */
/* Read without taking the shared lock, even while a writer has the image
 * (like qemu-img -U): what is read may be stale or inconsistent. */
#define VD_OPEN_FORCE_SHARE 0x4
/* Do not open the backing chain (to repair a clone whose backing file
 * moved, with vd_rebase unsafe): reads that would fall through to it fail
 * with -ENOLINK instead of returning wrong data. */
#define VD_OPEN_NO_BACKING 0x8
/* A write that allocates (or copies up) a cluster, and a write-zeroes,
 * complete only once the mapping they changed is committed, as after a
 * flush: what the writer was told is written survives the death of this
 * process, though not a power failure without a flush.  For servers whose
 * guests outlive them (vdiskd: kill -9 and restart).  Writes into clusters
 * already allocated are not slowed; allocating ones cost a shared commit
 * (two fsyncs for all the writes that arrive meanwhile). */
#define VD_OPEN_DURABLE_MAP 0x10
/* A read-write open finishes a snapshot deletion (or revert) that a crash
 * interrupted, after checking the image, and fails with -EUCLEAN when the
 * deletion would go through damaged metadata.  This flag leaves it pending
 * instead, for vd_check with VD_CHECK_REPAIR, which finishes it once the
 * image is repaired ('vdisk check --repair' opens so).  Meanwhile the
 * pending deletion's clusters stay counted and nothing is lost. */
#define VD_OPEN_NO_RESUME 0x20

struct vd_open_opts {
	unsigned flags;
	/* Bound on cached metadata (L2 tables and refcount blocks), in bytes;
	 * 0 = 4 MiB.  At least four clusters are always cached. */
	size_t cache_bytes;
};

void vd_open_opts_init(struct vd_open_opts *opts);

/* Opens 'path'.  A journal left by a crash is replayed: into the file for a
 * read-write open, in memory only for a read-only one, which never writes to
 * the file.  Images are locked with open file description locks (they hold
 * across threads and on NFS): a writer excludes every other opener, a reader
 * excludes writers; the loser gets -EBUSY and "FILE: in use by process N".
 * On success stores a new handle in '*imagep'; on failure leaves it
 * untouched. */
int vd_open(const char *path, const struct vd_open_opts *opts, struct vd_image **imagep,
	    struct errmsg *err);

/* Flushes, checkpoints the journal, marks the image clean and frees 'img'
 * (NULL: no-op).  Returns the flush result; the handle is gone either way. */
int vd_close(struct vd_image *img);

/* Who has an image open, as its locks show. */
#define VD_USERS_MAX 16
struct vd_users {
	bool in_use;	   /* some opener holds the image's lock */
	bool writer;	   /* one of them has it read-write */
	unsigned n_pids;   /* holders found on this host, at most VD_USERS_MAX */
	long pids[VD_USERS_MAX];
};

/* Describes who holds the file at 'path' without opening it as an image
 * (it may be any file: an ISO).  in_use comes from libvdisk's lock itself,
 * which sees holders on other hosts of a shared file system, and from any
 * lock /proc/locks shows on the file (another program's, QEMU's); the
 * process ids are this host's holders only.  Openers with
 * VD_OPEN_FORCE_SHARE hold no lock and are not seen. */
int vd_image_users(const char *path, struct vd_users *users, struct errmsg *err);

/* Incompatible feature bits (a reader that does not know one must refuse). */
#define VD_INCOMPAT_JOURNAL_DIRTY ((uint64_t)1 << 0) /* journal may hold records */
/* Extended L2 entries: each cluster is 32 subclusters with their own
 * allocated and zero state (docs/vdisk-format.md, section 5.5). */
#define VD_INCOMPAT_SUBCLUSTERS ((uint64_t)1 << 1)
#define VD_INCOMPAT_KNOWN (VD_INCOMPAT_JOURNAL_DIRTY | VD_INCOMPAT_SUBCLUSTERS)
/* The cluster size an image with subclusters gets when none is asked:
 * 32 subclusters of 4 KiB, so a 4 KiB write never copies anything up. */
#define VD_DEFAULT_SC_CLUSTER_BYTES (128u * 1024)
/* Compatible and auto-clear bits: none defined in version 1. */
#define VD_COMPAT_KNOWN ((uint64_t)0)
#define VD_AUTOCLEAR_KNOWN ((uint64_t)0)

struct vd_info {
	uint32_t version;
	uint64_t size_bytes;        /* virtual size */
	uint32_t cluster_bytes;
	uint32_t subcluster_bytes;  /* 0: no subclusters */
	/* guest data held in clusters of this file (with subclusters: the
	 * allocated subclusters) */
	uint64_t allocated_bytes;
	uint64_t metadata_bytes;    /* header, journal, tables */
	uint64_t file_bytes;        /* length of the host file */
	uint64_t disk_bytes;        /* host blocks actually used by the file */
	uint32_t journal_bytes;
	bool dirty;                 /* the last writer did not close it */
	uint64_t incompat_features;
	uint64_t compat_features;
	uint64_t autoclear_features;
	uint64_t cache_bytes;       /* the metadata cache's bound */
	const char *backing_path;   /* as stored; NULL: none; borrowed */
	unsigned chain_depth;       /* images below this one */
};

int vd_get_info(struct vd_image *img, struct vd_info *info);
uint64_t vd_size_bytes(const struct vd_image *img);
uint32_t vd_cluster_bytes(const struct vd_image *img);
/* The subcluster size, 0 for an image without subclusters. */
uint32_t vd_subcluster_bytes(const struct vd_image *img);
/* Whether a commit or write-back of 'img' is in flight on some context.
 * With no request in flight and none to come (an image a server stopped
 * using), false means the synchronous calls, vd_close() included, touch
 * no context: another thread may make them while those contexts serve
 * other images. */
bool vd_busy(const struct vd_image *img);
/* Turns VD_OPEN_DURABLE_MAP on or off for requests submitted from now on
 * (a live migration's destination takes the guest's guarantee at the
 * pivot; until then the source carries it). */
void vd_set_durable_map(struct vd_image *img, bool on);
/* The path the image was opened with; borrowed until vd_close(). */
const char *vd_path(const struct vd_image *img);

/* Synchronous I/O, for tools.  Each returns 0 or a negative errno; reads and
 * writes past the virtual size fail with -EINVAL. */
int vd_pread(struct vd_image *img, void *buf, size_t len, uint64_t off);
int vd_pwrite(struct vd_image *img, const void *buf, size_t len, uint64_t off);
/* Makes every completed write durable. */
int vd_flush(struct vd_image *img);
/* Gives whole clusters inside [off, off+len) back to the host file system;
 * the range then reads as zeros.  Partial clusters are left as they are. */
int vd_discard(struct vd_image *img, uint64_t off, uint64_t len);
/* Makes [off, off+len) read as zeros, freeing whole clusters inside it. */
int vd_write_zeroes(struct vd_image *img, uint64_t off, uint64_t len);

/* Asynchronous I/O on io_uring.
 *
 * A context owns one ring and may serve any number of images; it must be
 * used from one thread.  Requests complete in any order by calling 'cb'
 * from vd_ctx_poll() with 0 or a negative errno.  Buffers must stay valid
 * until the callback runs; the iovec array itself may be reused as soon as
 * the submit call returns.  Submit calls only queue: requests reach the
 * kernel, in one batch, at the next vd_ctx_submit() or vd_ctx_poll().
 *
 * What waits, and where.  Every step a request may wait for is an I/O on
 * the context's ring, and the request resumes from vd_ctx_poll() when it
 * completes: reading an L2 table or refcount block the metadata cache does
 * not hold, reading the backing chain (each backing image through its own
 * tables, which may miss too), copy-up of a partly written cluster (read
 * the old or backing contents, write the merged cluster, then map it),
 * zeroing a partial cluster, and the journal: a flush completes when a
 * commit started after it was submitted is durable (new tables written,
 * fsync, transaction appended, fsync, all on the ring); flushes that
 * arrive while a commit is in flight share the next one (group commit).
 * Commits also start in the background when the pending changes pass an
 * eighth of the journal or the cache must evict changed blocks, and a
 * checkpoint (tables written in place, fsync, header, fsync, freed
 * clusters punched) follows a commit that leaves the journal over half
 * full, on the ring too.  Evicting a changed block writes a copy back
 * through the ring.  Requests on overlapping clusters while an allocation
 * or unmap is in flight wait for it; a request that would change metadata
 * while a commit is in flight and a quarter of the journal is already
 * pending waits for that commit.  So a submit call never reads or writes
 * the file itself, and a request waiting on a slow step holds up no other
 * request.
 *
 * What can still block the calling thread (on write paths only):
 *  - ftruncate(2) to extend the file, when an allocation reaches its end
 *    and when a commit starts (at most once per 64 clusters or an eighth
 *    of the file's length);
 *  - creating a refcount block when the file grows past what the existing
 *    ones cover (once per 2^(2*cluster_bits-1) bytes of file: 2 GiB with
 *    64 KiB clusters), which may read one refcount block.
 * The metadata cache may exceed its bound while requests in flight hold
 * blocks or changed blocks await their commit or write-back; it returns
 * under it when those complete.  After a commit fails (an I/O error), every
 * later flush and metadata change of the image fails with its errno: close
 * the image (reopening replays what was committed).
 *
 * Several contexts may serve one image only from a single thread: a
 * request parked on a read that another context started resumes when that
 * context is polled.  The synchronous calls (vd_pread ... vd_check,
 * snapshots, chain operations, vd_close) block; call them only with no
 * request in flight on the image, on the thread that polls its contexts:
 * they first wait for a commit or write-back still in flight (driving the
 * context that started it).  Destroy a context only when no request is in
 * flight on it; destroying it finishes the background I/O it carries. */
typedef void (*vd_cb)(void *arg, int ret);

/* Creates a context able to keep 'depth' guest requests in flight (0 = 128). */
int vd_ctx_create(unsigned depth, struct vd_ctx **ctxp);
void vd_ctx_destroy(struct vd_ctx *ctx);
/* An eventfd that becomes readable when completions are waiting, for event
 * loops; borrowed until the context is destroyed. */
int vd_ctx_event_fd(struct vd_ctx *ctx);
/* Hands the queued requests to the kernel.  Returns 0 or a negative errno. */
int vd_ctx_submit(struct vd_ctx *ctx);
/* Submits what is queued, then runs the callbacks of completed requests,
 * waiting until at least 'min_complete' have run (or none is in flight).
 * Callbacks may submit new requests.  Returns how many ran. */
int vd_ctx_poll(struct vd_ctx *ctx, unsigned min_complete);
/* Requests submitted and not yet completed. */
unsigned vd_ctx_inflight(const struct vd_ctx *ctx);

/* Each returns 0 when the request was queued ('cb' will run exactly once,
 * from vd_ctx_poll(), never from the submit call) or a negative errno when
 * it was refused ('cb' will not run).  -EAGAIN: the context is full; poll
 * and try again.  A write, discard or write-zeroes that completed before a
 * flush was submitted is durable when the flush completes. */
int vd_submit_readv(struct vd_ctx *ctx, struct vd_image *img, const struct iovec *iov,
		    int iovcnt, uint64_t off, vd_cb cb, void *arg);
int vd_submit_writev(struct vd_ctx *ctx, struct vd_image *img, const struct iovec *iov,
		     int iovcnt, uint64_t off, vd_cb cb, void *arg);
int vd_submit_flush(struct vd_ctx *ctx, struct vd_image *img, vd_cb cb, void *arg);
int vd_submit_discard(struct vd_ctx *ctx, struct vd_image *img, uint64_t off, uint64_t len,
		      vd_cb cb, void *arg);
int vd_submit_write_zeroes(struct vd_ctx *ctx, struct vd_image *img, uint64_t off,
			   uint64_t len, vd_cb cb, void *arg);

/* The mapping of guest space, like qemu-img map. */
enum vd_extent_state {
	VD_EXTENT_DATA,        /* held in a cluster of this file at host_offset */
	VD_EXTENT_ZERO,        /* reads as zeros, no space used */
	VD_EXTENT_UNALLOCATED, /* never written: reads as zeros */
	VD_EXTENT_BACKING,     /* never written here: reads from the backing chain */
};

struct vd_extent {
	uint64_t offset;       /* guest offset */
	uint64_t length;
	enum vd_extent_state state;
	uint64_t host_offset;  /* DATA only; the run is contiguous in the file */
};

/* Describes the longest run starting at guest offset 'off' (< size) that has
 * one state and, for data, contiguous host offsets. */
int vd_map(struct vd_image *img, uint64_t off, struct vd_extent *ext);

/* Backing chains (linked clones).  Backing images are opened read-only with
 * a shared lock, so a template serves any number of clones but cannot be
 * written under them.  Reads of clusters a clone never wrote fall through
 * the chain; a partial write copies the rest of the cluster up. */

/* The backing path as stored (NULL: none); borrowed until vd_close(). */
const char *vd_backing_path(const struct vd_image *img);
/* Writes every cluster the image holds into its backing image (which must
 * not be in use elsewhere), then empties the image so it reads through. */
int vd_commit(struct vd_image *img, struct errmsg *err);
/* Makes 'backing_path' (NULL or "": none) the backing image.  Unless
 * 'unsafe', first copies into the image every cluster whose contents would
 * change, so the guest sees the same disk; with 'unsafe', only the stored
 * path changes. */
int vd_rebase(struct vd_image *img, const char *backing_path, bool unsafe, struct errmsg *err);
/* Copies everything the chain provides and drops the backing image. */
int vd_flatten(struct vd_image *img, struct errmsg *err);
/* Changes the virtual size.  Shrinking needs 'shrink' and is refused with
 * -ENOTEMPTY while clusters beyond the new end are allocated. */
int vd_resize(struct vd_image *img, uint64_t size_bytes, bool shrink, struct errmsg *err);

/* Snapshots.  Taking one costs a copy of the L1 table and a reference on
 * each L2 table, whatever the amount of data; the clusters are shared until
 * the disk writes over them.  Each call commits before it returns.  No
 * request may be in flight on the image during these calls. */
struct vd_snapshot_info {
	const char *name;          /* borrowed until the next snapshot call */
	uint64_t id;
	uint64_t date_ns;          /* CLOCK_REALTIME when taken */
	uint64_t size_bytes;       /* virtual size when taken */
	uint64_t unique_bytes;     /* what deleting it would free */
	uint64_t referenced_bytes; /* guest data it maps */
};

int vd_snapshot_count(struct vd_image *img);
/* Describes snapshot 'index' (0 = oldest); walks its tables for the byte
 * counts. */
int vd_snapshot_get(struct vd_image *img, unsigned index, struct vd_snapshot_info *info);
/* -EEXIST if 'name' is taken, -EINVAL if it is empty or over 255 bytes. */
int vd_snapshot_create(struct vd_image *img, const char *name, struct errmsg *err);
/* Makes the disk what it was when 'name' was taken; the snapshot stays. */
int vd_snapshot_revert(struct vd_image *img, const char *name, struct errmsg *err);
/* Frees exactly the clusters nothing else references. */
int vd_snapshot_delete(struct vd_image *img, const char *name, struct errmsg *err);

/* A snapshot read as it was taken, without reverting to it (to compare a
 * copy of the image, to export one).  A view holds the snapshot's L1 table;
 * it is valid until the next snapshot call on 'img' or vd_close(), and is
 * used, like the image, from one thread with no request in flight. */
struct vd_snap_view; /* opaque */

int vd_snapshot_view_open(struct vd_image *img, const char *name, struct vd_snap_view **viewp,
			  struct errmsg *err);
void vd_snapshot_view_close(struct vd_snap_view *view);
/* The virtual size when it was taken. */
uint64_t vd_snapshot_view_size(const struct vd_snap_view *view);
/* Describes the run at 'off' (< size), at most 'max' (> 0) bytes, whose
 * clusters all are ('*heldp' true) or all are not held in this file's data
 * clusters (then they read as zeros or through the backing chain). */
int vd_snapshot_view_extent(struct vd_snap_view *view, uint64_t off, uint64_t max,
			    uint64_t *lenp, bool *heldp);
/* Reads guest bytes of the snapshot, through the backing chain; -EINVAL
 * past its size.  Any offset and length. */
int vd_snapshot_view_pread(struct vd_snap_view *view, void *buf, size_t len, uint64_t off);

/* Called for each run of guest bytes that differ; a non-zero return stops
 * the walk and is returned. */
typedef int (*vd_extent_fn)(void *arg, uint64_t offset, uint64_t length);

/* Lists the clusters that changed between snapshot 'from' and snapshot 'to'
 * (NULL: the current disk), from the metadata alone, without reading
 * data. */
int vd_snapshot_diff(struct vd_image *img, const char *from, const char *to, vd_extent_fn fn,
		     void *arg, struct errmsg *err);

/* Consistency check.  Problems are reported one sentence at a time through
 * 'report' (may be NULL) as they are found. */
struct vd_check_result {
	uint64_t corruptions;       /* found */
	uint64_t leaks;             /* clusters with a refcount and no reference */
	uint64_t corruptions_fixed;
	uint64_t leaks_fixed;
	uint64_t allocated_clusters;
	uint64_t total_clusters;    /* guest clusters */
};

#define VD_CHECK_REPAIR 0x1 /* needs a read-write handle */

typedef void (*vd_report_fn)(void *arg, const char *sentence);

/* Checks 'img': references out of the file, overlapping references, wrong
 * and leaked refcounts, corrupt table entries.  With VD_CHECK_REPAIR, fixes
 * refcounts and leaks, and unmaps (reads as zeros) entries that point outside
 * the file or into metadata; when the refcount structures themselves are
 * damaged (invalid, aliased or colliding entries), rebuilds them from the
 * references at the end of the file instead.  A repair never frees a
 * cluster something references.  A repair also finishes a snapshot
 * deletion a crash interrupted (left pending by VD_OPEN_NO_RESUME) when
 * nothing on its way stays damaged.  Returns 0 when the check ran (whatever it
 * found), a negative errno when it could not run or the repair could not be
 * made (then with one sentence in 'err'; the image keeps its old refcount
 * structures). */
int vd_check(struct vd_image *img, unsigned flags, struct vd_check_result *res,
	     vd_report_fn report, void *arg, struct errmsg *err);

/* ---------------------------------------------------- Sources and copies */

/* Any image the library reads, seen one way, for 'vdisk convert', import
 * and export, and the migration copy: a raw file or block device, a vdisk
 * image with its backing chain, or a qcow2 image (versions 2 and 3) with
 * its chain.  A source describes itself as runs that hold data and runs
 * that read as zeros, so a copy can stay thin.  Read-only; one thread. */
enum vd_format {
	VD_FORMAT_AUTO,	 /* by the magic: vdisk, qcow2, else raw */
	VD_FORMAT_RAW,
	VD_FORMAT_VDISK,
	VD_FORMAT_QCOW2,
};

struct vd_source; /* opaque */

/* "auto", "raw", "vdisk", "qcow2"; parse returns -EINVAL for others. */
const char *vd_format_name(enum vd_format fmt);
int vd_format_parse(const char *name, enum vd_format *fmtp);
/* The format of the file at 'path', by its first bytes. */
int vd_format_probe(const char *path, enum vd_format *fmtp, struct errmsg *err);

/* Opens 'path' as a source of format 'fmt'.  Only regular files and block
 * devices are images: anything else (a FIFO, a socket, a directory) is
 * refused with -EINVAL at once, never waited on.  'open_flags' are
 * VD_OPEN_* flags for a vdisk image (FORCE_SHARE, BUFFERED; never RDWR).
 * A qcow2 image is checked whole here (-EUCLEAN damaged, -EOPNOTSUPP
 * compressed, encrypted or with an external data file). */
int vd_source_open(const char *path, enum vd_format fmt, unsigned open_flags,
		   struct vd_source **srcp, struct errmsg *err);
/* A source reading the open image 'img', which must outlive it and is not
 * closed with it (the migration copy reads an image vdiskd serves). */
int vd_source_from_image(struct vd_image *img, struct vd_source **srcp);
/* A source reading snapshot 'name' of the open image 'img' as it was taken
 * (through the backing chain), without reverting to it; valid, like a
 * snapshot view, until the next snapshot call on 'img'. */
int vd_source_from_snapshot(struct vd_image *img, const char *name, struct vd_source **srcp,
			    struct errmsg *err);
/* A source the library does not read itself (a Ceph RBD image, libvrbd):
 * 'ops' describe its runs and read its bytes (past 'size_bytes' the
 * source reads zeros without asking); 'ops->close' (may be NULL) gets
 * 'arg' at vd_source_close().  Its format reads as raw. */
struct vd_source_ops {
	int (*extent)(void *arg, uint64_t off, uint64_t max, uint64_t *lenp, bool *datap);
	int (*pread)(void *arg, void *buf, size_t len, uint64_t off);
	void (*close)(void *arg);
};
int vd_source_from_ops(const struct vd_source_ops *ops, void *arg, uint64_t size_bytes,
		       const char *name, struct vd_source **srcp);
void vd_source_close(struct vd_source *src);
uint64_t vd_source_size_bytes(const struct vd_source *src);
enum vd_format vd_source_format(const struct vd_source *src);
/* Describes the run at 'off', at most 'max' (> 0) bytes: '*datap' true if
 * it must be read, false if it reads as zeros (a hole, an unallocated or
 * zero cluster, past the end). */
int vd_source_extent(struct vd_source *src, uint64_t off, uint64_t max, uint64_t *lenp,
		     bool *datap, struct errmsg *err);
/* Reads guest bytes, through backing chains; past the end reads zeros. */
int vd_source_pread(struct vd_source *src, void *buf, size_t len, uint64_t off,
		    struct errmsg *err);

/* Called as a copy advances, from the copying thread. */
typedef void (*vd_progress_fn)(void *arg, uint64_t done_bytes, uint64_t total_bytes);

struct vd_copy_opts {
	/* Aligned blocks of this many zero bytes are not written (holes stay
	 * holes); 0 writes every byte the source holds.  At most 2 MiB. */
	uint64_t zero_block_bytes;
	vd_progress_fn progress; /* NULL: none */
	void *progress_arg;
};

/* Zero blocks of 4 KiB, no progress. */
void vd_copy_opts_init(struct vd_copy_opts *opts);

/* Where a copy writes: a vdisk image open read-write, or (img NULL) a
 * descriptor of a raw file or device, or (img NULL, fd < 0) 'write', for
 * a destination the library does not know (a Ceph RBD image). */
struct vd_copy_dest {
	struct vd_image *img;
	int fd;
	int (*write)(void *arg, const void *buf, size_t len, uint64_t off);
	void *write_arg;
	/* The destination holds old bytes where the source reads zeros (a
	 * device, a reused file): write zeros there too. */
	bool fill_holes;
	uint64_t size_bytes; /* bytes to copy; past the source's end: zeros */
	const char *name;    /* for messages */
};

/* Copies the first dst->size_bytes of 'src' to 'dst', writing only data
 * (and of it only blocks not all zeros).  Does not flush 'dst'.  Blocks:
 * synchronous I/O, for tools and job threads, never an event loop. */
int vd_copy(struct vd_source *src, const struct vd_copy_dest *dst,
	    const struct vd_copy_opts *opts, struct errmsg *err);

#endif
