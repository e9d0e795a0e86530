/* SPDX-License-Identifier: MIT */
/* chain.c: backing chains (linked clones) and size changes.  A clone names
 * its backing image in cluster 0 after the header; reads of clusters it
 * never wrote fall through (io.c).  Commit, rebase and flatten are made of
 * ordinary guest writes and one journaled header change, so a crash at any
 * point leaves either the old or the new chain, both consistent. */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Backing chains deeper than this are refused: a loop would recurse. */
#define MAX_CHAIN_DEPTH 32u
#define NAME_BLOCK_BYTES 1024u

char *vd_backing_resolve(const char *image_path, const char *name)
{
	char *copy, *dir, *out;

	if (name[0] == '/') {
		return strdup(name);
	}
	copy = strdup(image_path);
	if (!copy) {
		return NULL;
	}
	dir = dirname(copy);
	if (asprintf(&out, "%s/%s", dir, name) < 0) {
		out = NULL;
	}
	free(copy);
	return out;
}

const char *vd_backing_path(const struct vd_image *img)
{
	return img->backing_name;
}

static int read_name(struct vd_image *img, struct errmsg *err)
{
	uint8_t *buf = vd_aligned_alloc(NAME_BLOCK_BYTES);
	int ret;

	if (!buf) {
		return -ENOMEM;
	}
	ret = vd_meta_read(img, buf, NAME_BLOCK_BYTES, VD_BACKING_NAME_OFFSET);
	if (ret == 0) {
		img->backing_name = strndup((char *)buf, img->hdr.backing_name_bytes);
		ret = img->backing_name ? 0 : -ENOMEM;
	}
	if (ret == 0 && strlen(img->backing_name) != img->hdr.backing_name_bytes) {
		errmsg_set(err, "%s: the backing file name holds a NUL byte", img->path);
		ret = -EUCLEAN;
	}
	free(buf);
	return ret;
}

static int open_backing_as(struct vd_image *img, unsigned flags, struct errmsg *err)
{
	struct vd_open_opts oo;
	struct errmsg inner = {{0}};
	char *path;
	int ret;

	if (img->depth + 1 >= MAX_CHAIN_DEPTH) {
		errmsg_set(err, "%s: backing chain deeper than %u images (a loop?)", img->path,
			   MAX_CHAIN_DEPTH);
		return -ELOOP;
	}
	path = vd_backing_resolve(img->path, img->backing_name);
	if (!path) {
		return -ENOMEM;
	}
	vd_open_opts_init(&oo);
	oo.flags = flags;
	oo.cache_bytes = img->cache_limit_bytes;
	void *arg = img->file.ops && img->file.ops->backing
			    ? img->file.ops->backing(img->file.ops_arg, img->backing_name)
			    : NULL;

	if (arg) {
		ret = vd_open_ops_depth(path, &oo, img->file.ops, arg, img->depth + 1,
					&img->backing, &inner);
	} else {
		ret = vd_open_depth(path, &oo, img->depth + 1, &img->backing, &inner);
	}
	if (ret < 0) {
		errmsg_set(err, "%s: cannot open backing file: %s", img->path,
			   inner.msg[0] ? inner.msg : strerror(-ret));
	}
	free(path);
	return ret;
}

/* Opens the chain below 'img' read-only (shared lock). */
int vd_backing_open(struct vd_image *img, struct errmsg *err)
{
	int ret;

	if (!img->hdr.backing_name_bytes) {
		return 0;
	}
	/* An image behind test ops (the crash harness) may still have a real
	 * backing file: it is only read. */
	ret = read_name(img, err);
	if (ret < 0 || (img->open_flags & VD_OPEN_NO_BACKING)) {
		return ret;
	}
	return open_backing_as(img, img->open_flags & (VD_OPEN_BUFFERED | VD_OPEN_FORCE_SHARE),
			       err);
}

/* Reads guest bytes of a backing image ('img' NULL: none), zeros past its
 * end: a shorter backing image reads as zeros beyond it. */
int vd_backing_read(struct vd_image *img, uint64_t off, void *buf, size_t len)
{
	size_t have = 0;

	if (img && off < img->hdr.size_bytes) {
		have = len < img->hdr.size_bytes - off ? len : img->hdr.size_bytes - off;
	}
	memset((uint8_t *)buf + have, 0, len - have);
	return have ? vd_pread(img, buf, have, off) : 0;
}

/* Stores 'name' (NULL: none) in cluster 0, through the journal. */
static int store_name(struct vd_image *img, const char *name)
{
	size_t len = name ? strlen(name) : 0;
	struct vd_mblock *blk;
	char *copy = name ? strdup(name) : NULL;
	int ret;

	if (len > VD_BACKING_NAME_MAX || (name && !copy)) {
		free(copy);
		return name && !copy ? -ENOMEM : -ENAMETOOLONG;
	}
	ret = vd_mblock_pinned(img, VD_BACKING_NAME_OFFSET, NAME_BLOCK_BYTES, &blk);
	if (ret < 0) {
		free(copy);
		return ret;
	}
	memset(blk->data, 0, NAME_BLOCK_BYTES);
	memcpy(blk->data, name ? name : "", len);
	vd_mblock_mark(img, blk, 0, NAME_BLOCK_BYTES);
	img->hdr.backing_name_bytes = len;
	vd_header_changed(img);
	ret = vd_journal_commit(img);
	if (ret == 0) {
		ret = vd_mblock_release(img, blk);
	}
	if (ret == 0) {
		free(img->backing_name);
		img->backing_name = copy;
	} else {
		free(copy);
	}
	return ret;
}

/* Copies guest range [off, off+len) from 'src' (the guest's view, chain
 * included) into 'dst'. */
static int copy_range(struct vd_image *src, struct vd_image *dst, uint64_t off, uint64_t len,
		      uint8_t *buf, size_t buf_bytes)
{
	int ret = 0;

	while (len && ret == 0) {
		size_t n = len < buf_bytes ? len : buf_bytes;

		ret = vd_pread(src, buf, n, off);
		if (ret == 0) {
			ret = vd_pwrite(dst, buf, n, off);
		}
		off += n;
		len -= n;
	}
	return ret;
}

static int reopen_backing(struct vd_image *img, unsigned flags, struct errmsg *err)
{
	int ret = vd_close(img->backing);

	img->backing = NULL;
	if (ret < 0) {
		return ret;
	}
	return open_backing_as(img, flags, err);
}

int vd_commit(struct vd_image *img, struct errmsg *err)
{
	size_t buf_bytes = 1u << 20;
	uint8_t *buf;
	uint64_t off = 0;
	int ret, ret2;

	if (!img->backing) {
		errmsg_set(err, "%s: has no backing file to commit into", img->path);
		return -EINVAL;
	}
	if (!img->writable) {
		errmsg_set(err, "%s: opened read-only", img->path);
		return -EROFS;
	}
	if (img->nsnaps) {
		/* Emptying the disk would leave its snapshots reading through a
		 * backing image that now holds other data. */
		errmsg_set(err, "%s: has snapshots, which a commit would change; delete them first",
			   img->path);
		return -EBUSY;
	}
	buf = vd_aligned_alloc(buf_bytes);
	if (!buf) {
		return -ENOMEM;
	}
	ret = reopen_backing(img, VD_OPEN_RDWR | (img->open_flags & VD_OPEN_BUFFERED), err);
	if (ret == 0 && img->backing->hdr.size_bytes < img->hdr.size_bytes) {
		uint64_t old_size = img->backing->hdr.size_bytes;

		ret = vd_resize(img->backing, img->hdr.size_bytes, false, err);
		/* The clone read zeros past the old end; a backing image with a
		 * backing image of its own would now read that one's data. */
		if (ret == 0 && img->backing->backing) {
			ret = vd_write_zeroes(img->backing, old_size,
					      img->hdr.size_bytes - old_size);
		}
	}
	while (ret == 0 && off < img->hdr.size_bytes) {
		struct vd_extent e;

		ret = vd_map(img, off, &e);
		if (ret < 0) {
			break;
		}
		if (e.state == VD_EXTENT_DATA) {
			ret = copy_range(img, img->backing, e.offset, e.length, buf, buf_bytes);
		} else if (e.state == VD_EXTENT_ZERO) {
			ret = vd_write_zeroes(img->backing, e.offset, e.length);
		}
		off = e.offset + e.length;
	}
	if (ret == 0) {
		ret = vd_flush(img->backing);
	}
	/* The data is in the backing image now: let the clone read through. */
	if (ret == 0) {
		ret = vd_unmap_clusters(img, 0, img->hdr.size_bytes, true);
	}
	if (ret == 0) {
		ret = vd_journal_commit(img);
	}
	free(buf);
	/* Always back to a read-only backing image: a clone whose backing
	 * handle is missing would read zeros where the template has data. */
	ret2 = reopen_backing(img, img->open_flags & (VD_OPEN_BUFFERED | VD_OPEN_FORCE_SHARE), err);
	ret = ret < 0 ? ret : ret2;
	if (ret < 0 && err && !err->msg[0]) {
		errmsg_set(err, "%s: commit failed: %s", img->path, strerror(-ret));
	}
	return ret;
}

/* Copies into 'img' every cluster it does not hold whose contents differ
 * between the current chain (none: zeros) and 'nb' (NULL: zeros).  Copies
 * are real data writes, never ZERO entries: those would read through to
 * the new backing image once the name switches. */
static int copy_differences(struct vd_image *img, struct vd_image *nb, uint8_t *a, uint8_t *b)
{
	uint64_t off = 0;
	int ret = 0;

	while (ret == 0 && off < img->hdr.size_bytes) {
		struct vd_extent e;

		ret = vd_map(img, off, &e);
		if (ret < 0 || (e.state != VD_EXTENT_BACKING && e.state != VD_EXTENT_UNALLOCATED)) {
			off = e.offset + e.length;
			continue;
		}
		/* A piece per cluster, up to its end: with subclusters an extent
		 * may start inside one. */
		for (uint64_t p = e.offset, n = 0; p < e.offset + e.length && ret == 0; p += n) {
			n = img->cluster_bytes - (p & (img->cluster_bytes - 1));
			n = n < e.offset + e.length - p ? n : e.offset + e.length - p;
			ret = vd_backing_read(img->backing, p, a, n);
			if (ret == 0) {
				ret = vd_backing_read(nb, p, b, n);
			}
			if (ret == 0 && memcmp(a, b, n) != 0) {
				ret = vd_pwrite(img, a, n, p);
			}
		}
		off = e.offset + e.length;
	}
	return ret;
}

int vd_rebase(struct vd_image *img, const char *backing_path, bool unsafe, struct errmsg *err)
{
	struct vd_image *nb = NULL, *old;
	struct vd_open_opts oo;
	struct errmsg inner = {{0}};
	uint8_t *a = NULL, *b = NULL;
	char *resolved = NULL;
	int ret = 0;

	if (!img->writable) {
		errmsg_set(err, "%s: opened read-only", img->path);
		return -EROFS;
	}
	if (backing_path && !backing_path[0]) {
		backing_path = NULL;
	}
	if (backing_path) {
		resolved = vd_backing_resolve(img->path, backing_path);
		vd_open_opts_init(&oo);
		oo.flags = img->open_flags & (VD_OPEN_BUFFERED | VD_OPEN_FORCE_SHARE);
		ret = resolved ? vd_open_depth(resolved, &oo, img->depth + 1, &nb, &inner) : -ENOMEM;
		free(resolved);
		if (ret < 0) {
			errmsg_set(err, "%s: cannot open new backing file: %s", img->path,
				   inner.msg[0] ? inner.msg : strerror(-ret));
			return ret;
		}
	}
	if (!unsafe && img->nsnaps) {
		/* Snapshots read through the backing chain too, and only the
		 * disk's clusters get copied: their contents would change. */
		vd_close(nb);
		errmsg_set(err, "%s: has snapshots, whose contents a rebase would change; delete "
			   "them first (or rebase -u if the new backing file has the same data)",
			   img->path);
		return -EBUSY;
	}
	if (!unsafe) {
		a = vd_aligned_alloc(img->cluster_bytes);
		b = vd_aligned_alloc(img->cluster_bytes);
		ret = a && b ? copy_differences(img, nb, a, b) : -ENOMEM;
	}
	if (ret == 0) {
		ret = vd_journal_commit(img);
	}
	if (ret == 0) {
		ret = store_name(img, backing_path);
	}
	free(a);
	free(b);
	if (ret < 0) {
		vd_close(nb);
		errmsg_set(err, "%s: rebase failed: %s", img->path, strerror(-ret));
		return ret;
	}
	old = img->backing;
	img->backing = nb;
	return vd_close(old);
}

int vd_flatten(struct vd_image *img, struct errmsg *err)
{
	if (!img->backing) {
		return 0;
	}
	return vd_rebase(img, NULL, false, err);
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* Any cluster mapped (data or zero) at or after guest cluster 'first'? */
static int mapped_beyond(struct vd_image *img, uint64_t first, bool *yesp)
{
	*yesp = false;
	for (uint64_t g = first; g < img->guest_clusters && !*yesp;) {
		struct vd_mblock *l2;
		uint32_t idx;
		int ret = vd_l2_lookup(img, g, false, &l2, &idx);

		if (ret < 0) {
			return ret;
		}
		if (!l2) {
			g = (g / img->l2_entries + 1) * img->l2_entries;
			continue;
		}
		for (; idx < img->l2_entries && g < img->guest_clusters; idx++, g++) {
			*yesp |= vd_l2_get(img, l2, idx) != 0 ||
				 vd_l2_get_bitmap(img, l2, idx) != 0;
		}
		vd_mblock_put(l2);
	}
	return 0;
}

/* Gives the active L1 'n' entries: in place when its clusters have room,
 * else in new clusters (the old ones are freed in the same transaction). */
static int resize_l1(struct vd_image *img, uint32_t n)
{
	uint64_t have = div_up(img->hdr.l1_entries * 8ull, img->cluster_bytes);
	uint64_t need = div_up(n * 8ull, img->cluster_bytes), first;
	uint32_t bytes = (n * 8 + 511) & ~511u;
	struct vd_mblock *old = img->l1_blk, *nb;
	int ret;

	if (need <= have) {
		/* Same clusters, bigger or smaller view: drop and reread. */
		ret = vd_mblock_release(img, old);
		if (ret == 0) {
			ret = vd_mblock_pinned(img, img->hdr.l1_offset, bytes, &img->l1_blk);
		}
		if (ret == 0 && n < img->hdr.l1_entries) {
			memset(img->l1_blk->data + n * 8, 0, bytes - n * 8);
		}
		/* Clusters a smaller L1 no longer uses hold only zero entries;
		 * they go with the header change, in one transaction. */
		img->hdr.l1_entries = n;
		for (uint64_t c = need; c < have && ret == 0; c++) {
			ret = vd_cluster_unref(img, vd_off_cluster(img, img->hdr.l1_offset) + c);
		}
		return ret;
	}
	ret = vd_cluster_alloc_run(img, need, &first);
	if (ret < 0) {
		return ret;
	}
	nb = vd_mblock_new_pinned(img, vd_cluster_off(img, first), bytes);
	if (!nb) {
		return -ENOMEM;
	}
	memcpy(nb->data, old->data, img->hdr.l1_entries * 8ull);
	/* The header moves first: the old clusters are then no longer the
	 * L1, which vd_cluster_unref refuses to free. */
	img->l1_blk = nb;
	img->hdr.l1_offset = vd_cluster_off(img, first);
	img->hdr.l1_entries = n;
	for (uint64_t c = 0; c < have && ret == 0; c++) {
		ret = vd_cluster_unref(img, vd_off_cluster(img, old->offset) + c);
	}
	/* The header switch goes in the same transaction as the move. */
	vd_header_changed(img);
	if (ret == 0) {
		ret = vd_journal_commit(img);
	}
	return ret == 0 ? vd_mblock_release(img, old) : ret;
}

int vd_resize(struct vd_image *img, uint64_t size_bytes, bool shrink, struct errmsg *err)
{
	uint64_t clusters = div_up(size_bytes, img->cluster_bytes);
	uint64_t l1 = div_up(clusters, img->l2_entries);
	bool busy;
	int ret;

	if (!img->writable) {
		errmsg_set(err, "%s: opened read-only", img->path);
		return -EROFS;
	}
	if (size_bytes % VD_SECTOR_BYTES || size_bytes > VD_MAX_SIZE_BYTES || l1 > UINT32_MAX / 8) {
		errmsg_set(err, "%s: size %" PRIu64 " is not a multiple of 512 up to 2^56", img->path,
			   size_bytes);
		return -EINVAL;
	}
	if (size_bytes < img->hdr.size_bytes) {
		if (!shrink) {
			errmsg_set(err, "%s: shrinking needs --shrink", img->path);
			return -EINVAL;
		}
		ret = mapped_beyond(img, clusters, &busy);
		if (ret == 0 && busy) {
			errmsg_set(err, "%s: data lies beyond the new end (%" PRIu64 " bytes); "
				   "discard it first", img->path, size_bytes);
			return -ENOTEMPTY;
		}
		/* L2 tables wholly beyond the end are empty: free them. */
		for (uint64_t i = l1 ? l1 : 1; i < img->hdr.l1_entries && ret == 0; i++) {
			uint64_t off = vd_get64(img->l1_blk, i) & VD_L1_OFFSET_MASK;

			if (off) {
				vd_set64(img, img->l1_blk, i, 0);
				ret = vd_l2_unref(img, off);
			}
		}
		if (ret < 0) {
			return ret;
		}
	}
	ret = vd_journal_commit(img);
	if (ret == 0 && size_bytes > img->hdr.size_bytes) {
		ret = vd_reftable_grow(img, vd_reftable_cover(clusters, l1));
	}
	if (ret == 0 && l1 != img->hdr.l1_entries && l1 > 0) {
		ret = resize_l1(img, l1);
	}
	if (ret == 0) {
		img->hdr.size_bytes = size_bytes;
		img->guest_clusters = clusters;
		vd_header_changed(img);
		ret = vd_journal_commit(img);
	}
	if (ret < 0) {
		errmsg_set(err, "%s: resize failed: %s", img->path, strerror(-ret));
	}
	return ret;
}
