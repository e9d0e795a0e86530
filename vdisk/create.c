/* SPDX-License-Identifier: MIT */
/* create.c: laying out a new image, and describing an open one.  A new image
 * is written directly (not through the journal): the file is new, so a crash
 * leaves either no header (written last) or a complete image.
 *
 * Layout at creation: cluster 0 header | journal | L1 | refcount table |
 * refcount blocks | (preallocation) L2 tables | data clusters. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_JOURNAL_BYTES (1u << 20)
#define MIN_JOURNAL_CLUSTERS 8u

struct layout {
	uint64_t cluster_bytes, n_guest, l1_entries, journal_bytes;
	uint64_t l1_clusters, rt_clusters, rb_count, total_clusters;
	uint64_t journal_off, l1_off, rt_off, rb_off, l2_off, data_off;
	bool prealloc;
	bool sc;                /* subclusters: 16-byte L2 entries */
};

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

static int plan(const struct vd_create_opts *o, struct layout *l, const char *path,
		struct errmsg *err)
{
	uint64_t c = o->cluster_bytes ? o->cluster_bytes
				      : (o->subclusters ? VD_DEFAULT_SC_CLUSTER_BYTES
							: VD_DEFAULT_CLUSTER_BYTES);
	uint64_t rbe = c / 2, base;

	if (c < VD_MIN_CLUSTER_BYTES || c > VD_MAX_CLUSTER_BYTES || (c & (c - 1))) {
		errmsg_set(err, "%s: cluster size %" PRIu64 " is not a power of two from 4 KiB "
			   "to 2 MiB", path, c);
		return -EINVAL;
	}
	if (o->size_bytes % VD_SECTOR_BYTES || o->size_bytes > VD_MAX_SIZE_BYTES) {
		errmsg_set(err, "%s: size %" PRIu64 " is not a multiple of 512 up to 2^56 bytes",
			   path, o->size_bytes);
		return -EINVAL;
	}
	if (o->prealloc > VD_PREALLOC_FULL) {
		errmsg_set(err, "%s: unknown preallocation mode", path);
		return -EINVAL;
	}
	if (o->subclusters && c < (1u << VD_SC_MIN_CLUSTER_BITS)) {
		errmsg_set(err, "%s: subclusters need clusters of at least %u KiB (32 "
			   "subclusters of 4 KiB)", path, (1u << VD_SC_MIN_CLUSTER_BITS) / 1024);
		return -EINVAL;
	}
	memset(l, 0, sizeof(*l));
	l->cluster_bytes = c;
	l->sc = o->subclusters;
	l->n_guest = div_up(o->size_bytes, c);
	l->l1_entries = div_up(l->n_guest, c / (l->sc ? 16 : 8));
	l->l1_entries = l->l1_entries ? l->l1_entries : 1;
	if (l->l1_entries > UINT32_MAX / 8) {
		errmsg_set(err, "%s: size too large for cluster size %" PRIu64, path, c);
		return -EFBIG;
	}
	l->journal_bytes = o->journal_bytes;
	if (!l->journal_bytes) {
		/* 1 MiB, at least 8 clusters, and room for a snapshot of every
		 * L1 entry (VD_JOURNAL_BYTES_PER_L1). */
		l->journal_bytes = DEFAULT_JOURNAL_BYTES;
		if (l->journal_bytes < MIN_JOURNAL_CLUSTERS * c) {
			l->journal_bytes = MIN_JOURNAL_CLUSTERS * c;
		}
		if (l->journal_bytes < l->l1_entries * VD_JOURNAL_BYTES_PER_L1) {
			l->journal_bytes = l->l1_entries * VD_JOURNAL_BYTES_PER_L1;
		}
	}
	l->journal_bytes = div_up(l->journal_bytes, c) * c;
	if (l->journal_bytes < MIN_JOURNAL_CLUSTERS * c || l->journal_bytes > UINT32_MAX / 2) {
		errmsg_set(err, "%s: journal must be %" PRIu64 " bytes (8 clusters) to 2 GiB",
			   path, MIN_JOURNAL_CLUSTERS * c);
		return -EINVAL;
	}
	l->prealloc = o->prealloc != VD_PREALLOC_OFF;
	l->l1_clusters = div_up(l->l1_entries * 8, c);
	l->rt_clusters = div_up(div_up(vd_reftable_cover(l->n_guest, l->l1_entries), rbe) * 8, c);
	base = 1 + l->journal_bytes / c + l->l1_clusters + l->rt_clusters;
	if (l->prealloc) {
		base += l->l1_entries + l->n_guest;
	}
	l->rb_count = 1;
	while (div_up(base + l->rb_count, rbe) > l->rb_count) {
		l->rb_count = div_up(base + l->rb_count, rbe);
	}
	l->total_clusters = base + l->rb_count;
	l->journal_off = c;
	l->l1_off = l->journal_off + l->journal_bytes;
	l->rt_off = l->l1_off + l->l1_clusters * c;
	l->rb_off = l->rt_off + l->rt_clusters * c;
	l->l2_off = l->rb_off + l->rb_count * c;
	l->data_off = l->l2_off + (l->prealloc ? l->l1_entries * c : 0);
	return 0;
}

/* Writes 'n' u64 entries at 'off', entry i = fn(i), a cluster at a time. */
static int write_u64s(struct vd_file *f, uint64_t off, uint64_t n, uint64_t cb,
		      uint64_t (*fn)(const struct layout *, uint64_t), const struct layout *l)
{
	uint64_t *buf = vd_aligned_alloc(cb);
	uint64_t per = cb / 8;
	int ret = 0;

	if (!buf) {
		return -ENOMEM;
	}
	for (uint64_t first = 0; first < n && ret == 0; first += per) {
		memset(buf, 0, cb);
		for (uint64_t i = first; i < n && i < first + per; i++) {
			buf[i - first] = htole64(fn(l, i));
		}
		ret = vd_file_pwrite(f, buf, cb, off + first * 8);
	}
	free(buf);
	return ret;
}

static uint64_t rt_entry(const struct layout *l, uint64_t i)
{
	return i < l->rb_count ? l->rb_off + i * l->cluster_bytes : 0;
}

static uint64_t l1_entry(const struct layout *l, uint64_t i)
{
	return l->prealloc ? l->l2_off + i * l->cluster_bytes : 0;
}

/* u64 word 'i' of the preallocated L2 tables: with subclusters, every
 * second word is a bitmap with all 32 subclusters allocated (the sparse
 * data cluster reads as zeros). */
static uint64_t l2_entry(const struct layout *l, uint64_t i)
{
	uint64_t g = l->sc ? i / 2 : i;

	if (g >= l->n_guest) {
		return 0;
	}
	if (l->sc && (i & 1)) {
		return VD_SC_BITMAP(VD_SC_ALL, 0);
	}
	return l->data_off + g * l->cluster_bytes;
}

static int write_refblocks(struct vd_file *f, const struct layout *l)
{
	uint64_t rbe = l->cluster_bytes / 2;
	uint16_t *buf = vd_aligned_alloc(l->cluster_bytes);
	int ret = 0;

	if (!buf) {
		return -ENOMEM;
	}
	for (uint64_t r = 0; r < l->rb_count && ret == 0; r++) {
		memset(buf, 0, l->cluster_bytes);
		for (uint64_t k = 0; k < rbe && r * rbe + k < l->total_clusters; k++) {
			buf[k] = htole16(1);
		}
		ret = vd_file_pwrite(f, buf, l->cluster_bytes, l->rb_off + r * l->cluster_bytes);
	}
	free(buf);
	return ret;
}

static int write_backing_name(struct vd_file *f, const char *name)
{
	uint8_t *buf = vd_aligned_alloc(1024);
	int ret;

	if (!buf) {
		return -ENOMEM;
	}
	memset(buf, 0, 1024);
	memcpy(buf, name, strlen(name));
	ret = vd_file_pwrite(f, buf, 1024, VD_BACKING_NAME_OFFSET);
	free(buf);
	return ret;
}

static int write_layout(struct vd_file *f, const struct vd_create_opts *o,
			const struct layout *l, int fd)
{
	struct vd_disk_header h = {0}, *d;
	struct timespec ts;
	int ret;

	ret = vd_file_truncate(f, l->total_clusters * l->cluster_bytes);
	if (ret == 0) {
		ret = write_refblocks(f, l);
	}
	if (ret == 0) {
		ret = write_u64s(f, l->rt_off, l->rt_clusters * l->cluster_bytes / 8,
				 l->cluster_bytes, rt_entry, l);
	}
	if (ret == 0) {
		ret = write_u64s(f, l->l1_off, l->l1_entries, l->cluster_bytes, l1_entry, l);
	}
	if (ret == 0 && l->prealloc) {
		ret = write_u64s(f, l->l2_off, l->l1_entries * (l->cluster_bytes / 8),
				 l->cluster_bytes, l2_entry, l);
	}
	if (ret == 0 && o->backing_path) {
		ret = write_backing_name(f, o->backing_path);
	}
	if (ret == 0 && o->prealloc == VD_PREALLOC_FULL && fd >= 0 &&
	    fallocate(fd, 0, l->data_off, l->n_guest * l->cluster_bytes) < 0) {
		ret = -errno;
	}
	if (ret == 0) {
		ret = vd_file_sync(f);
	}
	if (ret < 0) {
		return ret;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	h.version = VD_VERSION;
	h.header_bytes = VD_HEADER_BYTES;
	h.cluster_bits = __builtin_ctzll(l->cluster_bytes);
	h.l1_entries = l->l1_entries;
	h.size_bytes = o->size_bytes;
	h.l1_offset = l->l1_off;
	h.refcount_table_offset = l->rt_off;
	h.refcount_table_clusters = l->rt_clusters;
	h.journal_bytes = l->journal_bytes;
	h.journal_offset = l->journal_off;
	h.journal_seq = 1;
	h.incompat_features = l->sc ? VD_INCOMPAT_SUBCLUSTERS : 0;
	h.create_time_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	h.backing_name_bytes = o->backing_path ? strlen(o->backing_path) : 0;
	d = vd_aligned_alloc(VD_HEADER_BYTES);
	if (!d) {
		return -ENOMEM;
	}
	vd_header_to_disk(&h, d);
	ret = vd_file_pwrite(f, d, VD_HEADER_BYTES, 0);
	free(d);
	return ret < 0 ? ret : vd_file_sync(f);
}

/* A clone's backing image must open as a vdisk; its size is the default. */
static int check_backing(const char *path, struct vd_create_opts *o,
			 const struct vd_file_ops *ops, void *ops_arg, struct errmsg *err)
{
	struct vd_open_opts oo;
	struct vd_image *b;
	struct errmsg inner = {{0}};
	char *resolved;
	int ret;

	if (strlen(o->backing_path) > VD_BACKING_NAME_MAX) {
		errmsg_set(err, "%s: backing file name longer than %u bytes", path,
			   VD_BACKING_NAME_MAX);
		return -ENAMETOOLONG;
	}
	resolved = vd_backing_resolve(path, o->backing_path);
	if (!resolved) {
		return -ENOMEM;
	}
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_FORCE_SHARE;
	void *arg = ops && ops->backing ? ops->backing(ops_arg, o->backing_path) : NULL;

	if (arg) {
		ret = vd_open_with_ops(resolved, &oo, ops, arg, &b, &inner);
	} else {
		ret = vd_open(resolved, &oo, &b, &inner);
	}
	free(resolved);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot use backing file: %s", path, inner.msg);
		return ret;
	}
	if (o->size_bytes == 0) {
		o->size_bytes = vd_size_bytes(b);
	}
	return vd_close(b);
}

int vd_create_with_ops(const char *path, const struct vd_create_opts *opts,
		       const struct vd_file_ops *ops, void *ops_arg, struct errmsg *err)
{
	struct vd_file f = {.fd = -1, .ops = ops, .ops_arg = ops_arg, .align_bytes = 1};
	struct vd_create_opts o = *opts;
	struct layout l;
	int ret = o.backing_path ? check_backing(path, &o, ops, ops_arg, err) : 0;

	if (ret == 0 && o.backing_path && o.prealloc != VD_PREALLOC_OFF) {
		/* Mapped clusters would hide the backing image entirely. */
		errmsg_set(err, "%s: preallocation cannot be combined with a backing file", path);
		ret = -EINVAL;
	}
	opts = &o;
	if (ret == 0) {
		ret = plan(opts, &l, path, err);
	}
	if (ret < 0) {
		return ret;
	}
	if (!ops) {
		f.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (f.fd < 0) {
			ret = -errno;
			errmsg_set(err, "%s: cannot create: %s", path, strerror(-ret));
			return ret;
		}
	}
	ret = write_layout(&f, opts, &l, f.fd);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot write the new image: %s", path, strerror(-ret));
	}
	if (f.fd >= 0) {
		close(f.fd);
		if (ret < 0) {
			unlink(path);
		}
	}
	return ret;
}

int vd_create(const char *path, const struct vd_create_opts *opts, struct errmsg *err)
{
	errmsg_clear(err);
	return vd_create_with_ops(path, opts, NULL, NULL, err);
}

/* Counts the L2 tables and data clusters the active L1 reaches. */
static int count_mapped(struct vd_image *img, uint64_t *l2p, uint64_t *datap)
{
	*l2p = *datap = 0;
	for (uint32_t i = 0; i < img->hdr.l1_entries; i++) {
		uint64_t l2off = vd_get64(img->l1_blk, i) & VD_L1_OFFSET_MASK;
		struct vd_mblock *l2;
		int ret;

		if (!l2off) {
			continue;
		}
		ret = vd_mblock_get(img, l2off, &l2);
		if (ret < 0) {
			return ret;
		}
		(*l2p)++;
		for (uint32_t j = 0; j < img->l2_entries; j++) {
			if (!(vd_l2_get(img, l2, j) & VD_L2_OFFSET_MASK)) {
				continue;
			}
			/* In subclusters: only those that hold data count. */
			*datap += img->l2_shift ? (uint64_t)__builtin_popcount(
							  VD_SC_ALLOC(vd_l2_get_bitmap(img, l2, j)))
						: 1;
		}
		vd_mblock_put(l2);
		ret = vd_cache_trim(img);
		if (ret < 0) {
			return ret;
		}
	}
	return 0;
}

int vd_get_info(struct vd_image *img, struct vd_info *info)
{
	uint64_t l2s, data, rbs = 0;
	struct stat st;
	int ret;

	memset(info, 0, sizeof(*info));
	ret = count_mapped(img, &l2s, &data);
	if (ret < 0) {
		return ret;
	}
	for (uint64_t i = 0; i < img->rt_blk->bytes / 8; i++) {
		rbs += vd_get64(img->rt_blk, i) != 0;
	}
	info->version = img->hdr.version;
	info->size_bytes = img->hdr.size_bytes;
	info->cluster_bytes = img->cluster_bytes;
	info->subcluster_bytes = img->l2_shift ? img->sc_bytes : 0;
	info->allocated_bytes = data * (img->l2_shift ? img->sc_bytes : img->cluster_bytes);
	info->metadata_bytes = (1 + img->hdr.journal_bytes / img->cluster_bytes + rbs + l2s +
				img->hdr.refcount_table_clusters +
				div_up(img->hdr.l1_entries * 8ull, img->cluster_bytes)) *
			       img->cluster_bytes;
	info->journal_bytes = img->hdr.journal_bytes;
	/* An image we hold open for writing is dirty on disk only because of
	 * us; report what the last writer left. */
	info->dirty = img->was_dirty;
	info->incompat_features = img->hdr.incompat_features &
				  ~(img->writable ? VD_INCOMPAT_JOURNAL_DIRTY : 0);
	info->compat_features = img->hdr.compat_features;
	info->autoclear_features = img->hdr.autoclear_features;
	info->cache_bytes = img->cache_limit_bytes;
	info->backing_path = img->backing_name;
	for (struct vd_image *b = img->backing; b; b = b->backing) {
		info->chain_depth++;
	}
	ret = vd_file_size(&img->file, &info->file_bytes);
	if (ret == 0 && !img->file.ops && fstat(img->file.fd, &st) == 0) {
		info->disk_bytes = (uint64_t)st.st_blocks * 512;
	}
	return ret;
}
