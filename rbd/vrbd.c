/* SPDX-License-Identifier: MIT */
/* vrbd.c: names, connections and the exclusive lock of vrbd.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdisk.h"
#include "vrbd.h"

struct vrbd_cluster {
	rados_t rados;
	char what[640]; /* "the Ceph cluster at MONS (conf FILE)", for messages */
};

bool vrbd_is_spec(const char *s)
{
	return s && strncmp(s, VRBD_PREFIX, strlen(VRBD_PREFIX)) == 0;
}

/* Copies [s, s+n) into a field of 'cap' bytes; false if it does not fit or
 * holds a character the grammar reserves. */
static bool take(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap || memchr(s, '\0', n)) {
		return false;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
	return true;
}

int vrbd_spec_parse(const char *s, struct vrbd_spec *spec, struct errmsg *err)
{
	const char *p, *end, *slash, *at;

	memset(spec, 0, sizeof(*spec));
	if (!vrbd_is_spec(s)) {
		errmsg_set(err, "'%s' is not an RBD name (rbd:POOL/IMAGE)", s ? s : "");
		return -EINVAL;
	}
	p = s + strlen(VRBD_PREFIX);
	end = strchr(p, ':');
	if (!end) {
		end = p + strlen(p);
	}
	slash = memchr(p, '/', (size_t)(end - p));
	if (!slash || slash == p || slash + 1 == end) {
		errmsg_set(err, "'%s': an RBD name is rbd:POOL/IMAGE[@SNAP][:conf=FILE][:id=USER]",
			   s);
		return -EINVAL;
	}
	at = memchr(slash + 1, '@', (size_t)(end - slash - 1));
	if (!take(spec->pool, sizeof(spec->pool), p, (size_t)(slash - p)) ||
	    !take(spec->image, sizeof(spec->image), slash + 1,
		  (size_t)((at ? at : end) - slash - 1)) ||
	    (at && (at + 1 == end || !take(spec->snap, sizeof(spec->snap), at + 1,
					   (size_t)(end - at - 1)))) ||
	    strchr(spec->image, '/')) {
		errmsg_set(err, "'%s': bad pool, image or snapshot name", s);
		return -EINVAL;
	}
	while (*end == ':') {
		const char *opt = end + 1, *eq;

		end = strchr(opt, ':');
		if (!end) {
			end = opt + strlen(opt);
		}
		eq = memchr(opt, '=', (size_t)(end - opt));
		if (eq && (size_t)(eq - opt) == 4 && strncmp(opt, "conf", 4) == 0) {
			if (!take(spec->conf, sizeof(spec->conf), eq + 1, (size_t)(end - eq - 1))) {
				errmsg_set(err, "'%s': configuration path too long", s);
				return -EINVAL;
			}
		} else if (eq && (size_t)(eq - opt) == 2 && strncmp(opt, "id", 2) == 0) {
			if (!take(spec->id, sizeof(spec->id), eq + 1, (size_t)(end - eq - 1))) {
				errmsg_set(err, "'%s': user name too long", s);
				return -EINVAL;
			}
		} else {
			errmsg_set(err, "'%s': unknown option '%.*s' (conf=FILE and id=USER are known)",
				   s, (int)(end - opt), opt);
			return -EINVAL;
		}
	}
	return 0;
}

int vrbd_spec_format(const struct vrbd_spec *spec, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s%s/%s%s%s%s%s%s%s", VRBD_PREFIX, spec->pool, spec->image,
			 spec->snap[0] ? "@" : "", spec->snap, spec->conf[0] ? ":conf=" : "",
			 spec->conf, spec->id[0] ? ":id=" : "", spec->id);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static unsigned timeout_s(void)
{
	const char *env = getenv("VRBD_TIMEOUT");
	long v = env ? strtol(env, NULL, 10) : 0;

	return v > 0 && v < 3600 ? (unsigned)v : VRBD_TIMEOUT_S;
}

/* Why a connect failed, in words a user can act on. */
static const char *connect_cause(int ret)
{
	switch (ret) {
	case -ETIMEDOUT:
		return "no monitor answered (is the cluster running, is the address right?)";
	case -EACCES:
	case -EPERM:
		return "authentication refused (wrong key, or no such user)";
	case -ENOENT:
		return "no keyring or key for the user";
	default:
		return NULL;
	}
}

int vrbd_connect(const char *conf, const char *id, struct vrbd_cluster **cp, struct errmsg *err)
{
	struct vrbd_cluster *c = calloc(1, sizeof(*c));
	char mons[256] = "", secs[16];
	const char *cause;
	int ret;

	*cp = NULL;
	if (!c) {
		return -ENOMEM;
	}
	ret = rados_create(&c->rados, id && *id ? id : NULL);
	if (ret < 0) {
		errmsg_set(err, "cannot set up a Ceph client as '%s': %s", id && *id ? id : "admin",
			   strerror(-ret));
		free(c);
		return ret;
	}
	ret = rados_conf_read_file(c->rados, conf && *conf ? conf : NULL);
	if (ret < 0) {
		errmsg_set(err, "cannot read the Ceph configuration %s: %s",
			   conf && *conf ? conf : "(/etc/ceph/ceph.conf)", strerror(-ret));
		goto fail;
	}
	/* librados waits for ever by default on a cluster that does not
	 * answer (a stopped monitor, a full or stopped OSD): bound every
	 * wait, the connect's and each later operation's. */
	snprintf(secs, sizeof(secs), "%u", timeout_s());
	if ((ret = rados_conf_set(c->rados, "client_mount_timeout", secs)) < 0 ||
	    (ret = rados_conf_set(c->rados, "rados_mon_op_timeout", secs)) < 0 ||
	    (ret = rados_conf_set(c->rados, "rados_osd_op_timeout", secs)) < 0) {
		errmsg_set(err, "cannot configure the Ceph client: %s", strerror(-ret));
		goto fail;
	}
	rados_conf_get(c->rados, "mon_host", mons, sizeof(mons));
	snprintf(c->what, sizeof(c->what), "the Ceph cluster at %s (%s, client.%s)",
		 mons[0] ? mons : "(no mon_host)", conf && *conf ? conf : "default configuration",
		 id && *id ? id : "admin");
	if (!mons[0]) {
		errmsg_set(err, "%s: no monitor address configured", c->what);
		ret = -EINVAL;
		goto fail;
	}
	ret = rados_connect(c->rados);
	if (ret < 0) {
		cause = connect_cause(ret);
		errmsg_set(err, "%s: cannot connect: %s", c->what, cause ? cause : strerror(-ret));
		goto fail;
	}
	*cp = c;
	return 0;
fail:
	rados_shutdown(c->rados);
	free(c);
	return ret;
}

void vrbd_disconnect(struct vrbd_cluster *c)
{
	if (c) {
		rados_shutdown(c->rados);
		free(c);
	}
}

rados_t vrbd_rados(struct vrbd_cluster *c)
{
	return c->rados;
}

int vrbd_pool_open(struct vrbd_cluster *c, const char *pool, rados_ioctx_t *iop,
		   struct errmsg *err)
{
	int ret = rados_ioctx_create(c->rados, pool, iop);

	if (ret == -ENOENT) {
		errmsg_set(err, "%s: no pool '%s'", c->what, pool);
	} else if (ret < 0) {
		errmsg_set(err, "%s: cannot open pool '%s': %s", c->what, pool, strerror(-ret));
	}
	return ret;
}

/* Takes the exclusive lock for good: a lock taken with rbd_lock_acquire is
 * not handed to a peer that asks for it, so a second server is refused
 * instead of the two trading the image back and forth. */
static int lock_image(struct vrbd_image *img, struct errmsg *err)
{
	int ret = rbd_lock_acquire(img->rbd, RBD_LOCK_MODE_EXCLUSIVE);
	rbd_lock_mode_t mode;
	char *owners[4];
	size_t n = 4;

	if (ret == 0) {
		img->locked = true;
		return 0;
	}
	if (rbd_lock_get_owners(img->rbd, &mode, owners, &n) == 0 && n > 0) {
		errmsg_set(err, "%s: in use: %s holds its exclusive lock", img->name, owners[0]);
		rbd_lock_get_owners_cleanup(owners, n);
	} else {
		errmsg_set(err, "%s: cannot take its exclusive lock: %s", img->name,
			   strerror(-ret));
	}
	return ret == -EROFS || ret == -EBUSY || ret == -EAGAIN ? -EBUSY : ret;
}

int vrbd_open(const struct vrbd_spec *spec, unsigned flags, struct vrbd_image **ip,
	      struct errmsg *err)
{
	struct vrbd_image *img = calloc(1, sizeof(*img));
	bool writable = flags & (VRBD_WRITABLE | VRBD_MAINTENANCE);
	uint64_t features = 0;
	int ret;

	*ip = NULL;
	if (!img) {
		return -ENOMEM;
	}
	snprintf(img->name, sizeof(img->name), "%s/%s%s%s", spec->pool, spec->image,
		 spec->snap[0] ? "@" : "", spec->snap);
	ret = vrbd_connect(spec->conf, spec->id, &img->cluster, err);
	if (ret < 0) {
		free(img);
		return ret;
	}
	ret = vrbd_pool_open(img->cluster, spec->pool, &img->io, err);
	if (ret < 0) {
		vrbd_disconnect(img->cluster);
		free(img);
		return ret;
	}
	/* Without the cache a completed write is in the cluster (QEMU's
	 * cache=none does the same). */
	rados_conf_set(img->cluster->rados, "rbd_cache", flags & VRBD_CACHE ? "true" : "false");
	if (writable && spec->snap[0]) {
		errmsg_set(err, "rbd:%s: a snapshot is read-only", img->name);
		ret = -EROFS;
		goto fail;
	}
	ret = writable ? rbd_open(img->io, spec->image, &img->rbd, NULL)
		       : rbd_open_read_only(img->io, spec->image, &img->rbd,
					    spec->snap[0] ? spec->snap : NULL);
	if (ret < 0) {
		errmsg_set(err, "%s: %s: %s", img->cluster->what, img->name,
			   ret == -ENOENT ? "no such image or snapshot" : strerror(-ret));
		goto fail;
	}
	if (flags & VRBD_WRITABLE) {
		if (rbd_get_features(img->rbd, &features) == 0 &&
		    !(features & RBD_FEATURE_EXCLUSIVE_LOCK)) {
			errmsg_set(err, "%s: the image lacks the exclusive-lock feature, so two "
				   "hosts could write it at once (rbd feature enable %s exclusive-lock)",
				   img->name, img->name);
			ret = -EPERM;
			goto fail;
		}
		ret = lock_image(img, err);
		if (ret < 0) {
			goto fail;
		}
	}
	*ip = img;
	return 0;
fail:
	vrbd_close(img);
	return ret;
}

void vrbd_close(struct vrbd_image *img)
{
	if (!img) {
		return;
	}
	if (img->rbd) {
		if (img->locked) {
			rbd_lock_release(img->rbd);
		}
		rbd_close(img->rbd);
	}
	if (img->io) {
		rados_ioctx_destroy(img->io);
	}
	vrbd_disconnect(img->cluster);
	free(img);
}

static int count_extent(uint64_t off, size_t len, int exists, void *arg)
{
	if (exists) {
		*(uint64_t *)arg += len;
	}
	return 0;
}

int vrbd_allocated_bytes(struct vrbd_image *img, uint64_t *bytes)
{
	uint64_t size;
	int ret = rbd_get_size(img->rbd, &size);

	*bytes = 0;
	if (ret < 0) {
		return ret;
	}
	/* whole_object: with fast-diff this reads the object map only. */
	return rbd_diff_iterate2(img->rbd, NULL, 0, size, 0, 1, count_extent, bytes);
}

/* Connects and opens the pool of 'spec', for the calls that work on an
 * image by name. */
static int pool_of(const struct vrbd_spec *spec, struct vrbd_cluster **cp, rados_ioctx_t *iop,
		   struct errmsg *err)
{
	int ret = vrbd_connect(spec->conf, spec->id, cp, err);

	if (ret == 0) {
		ret = vrbd_pool_open(*cp, spec->pool, iop, err);
		if (ret < 0) {
			vrbd_disconnect(*cp);
		}
	}
	return ret;
}

/* The options every image made here gets. */
static rbd_image_options_t image_options(void)
{
	rbd_image_options_t opts;

	rbd_image_options_create(&opts);
	rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FORMAT, 2);
	rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FEATURES,
				     RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK |
					     RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF |
					     RBD_FEATURE_DEEP_FLATTEN);
	return opts;
}

int vrbd_create(const struct vrbd_spec *spec, uint64_t size_bytes, struct errmsg *err)
{
	struct vrbd_cluster *c;
	rbd_image_options_t opts;
	rados_ioctx_t io;
	int ret;

	ret = pool_of(spec, &c, &io, err);
	if (ret < 0) {
		return ret;
	}
	opts = image_options();
	ret = rbd_create4(io, spec->image, size_bytes, opts);
	rbd_image_options_destroy(opts);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot create %s/%s: %s", c->what, spec->pool, spec->image,
			   ret == -EEXIST ? "it exists" : strerror(-ret));
	}
	rados_ioctx_destroy(io);
	vrbd_disconnect(c);
	return ret;
}

int vrbd_remove(const struct vrbd_spec *spec, struct errmsg *err)
{
	struct vrbd_cluster *c;
	rbd_image_watcher_t w[4];
	rados_ioctx_t io;
	rbd_image_t img;
	size_t nw = 4;
	int ret;

	ret = pool_of(spec, &c, &io, err);
	if (ret < 0) {
		return ret;
	}
	/* librbd refuses an image with watchers too, but only says EBUSY. */
	ret = rbd_open_read_only(io, spec->image, &img, NULL);
	if (ret == 0) {
		if (rbd_watchers_list(img, w, &nw) == 0) {
			if (nw > 0) {
				errmsg_set(err, "%s/%s is in use by client.%llu at %s", spec->pool,
					   spec->image, (unsigned long long)w[0].id, w[0].addr);
				ret = -EBUSY;
			}
			rbd_watchers_list_cleanup(w, nw);
		}
		rbd_close(img);
	}
	if (ret == 0) {
		ret = rbd_remove(io, spec->image);
		if (ret < 0) {
			errmsg_set(err, "%s: cannot delete %s/%s: %s", c->what, spec->pool,
				   spec->image,
				   ret == -ENOTEMPTY ? "it has snapshots"
				   : ret == -EBUSY   ? "it is in use or has clones"
						     : strerror(-ret));
		}
	} else if (ret == -ENOENT) {
		errmsg_set(err, "%s: %s/%s: no such image", c->what, spec->pool, spec->image);
	} else if (ret != -EBUSY) {
		errmsg_set(err, "%s: %s/%s: %s", c->what, spec->pool, spec->image, strerror(-ret));
	}
	rados_ioctx_destroy(io);
	vrbd_disconnect(c);
	return ret;
}

int vrbd_clone(const struct vrbd_spec *parent, const struct vrbd_spec *child,
	       struct errmsg *err)
{
	struct vrbd_cluster *c;
	rbd_image_options_t opts;
	rados_ioctx_t cio, pio;
	int ret;

	if (!parent->snap[0]) {
		errmsg_set(err, "%s/%s: a clone is made of a snapshot (IMAGE@SNAP)", parent->pool,
			   parent->image);
		return -EINVAL;
	}
	ret = pool_of(child, &c, &cio, err);
	if (ret < 0) {
		return ret;
	}
	ret = vrbd_pool_open(c, parent->pool, &pio, err);
	if (ret == 0) {
		opts = image_options();
		ret = rbd_clone3(pio, parent->image, parent->snap, cio, child->image, opts);
		rbd_image_options_destroy(opts);
		if (ret < 0) {
			errmsg_set(err, "%s: cannot clone %s/%s@%s as %s/%s: %s", c->what,
				   parent->pool, parent->image, parent->snap, child->pool,
				   child->image,
				   ret == -EEXIST   ? "the clone exists"
				   : ret == -ENOENT ? "no such image or snapshot"
				   : ret == -EINVAL ? "the snapshot is not protected (vdisk template "
						      "IMAGE@SNAP protects it)"
						    : strerror(-ret));
		}
		rados_ioctx_destroy(pio);
	}
	rados_ioctx_destroy(cio);
	vrbd_disconnect(c);
	return ret;
}

struct extent_probe {
	uint64_t off, end; /* the range asked */
	uint64_t first_end; /* end of the run starting at 'off' */
	bool data, found;
};

/* rbd_diff_iterate2 reports the existing objects in order: the run at
 * 'off' is data up to the end of the first one that covers it, or zeros
 * up to the start of the first one after it. */
static int probe_extent(uint64_t off, size_t len, int exists, void *arg)
{
	struct extent_probe *p = arg;

	if (!exists || p->found) {
		return 0;
	}
	p->found = true;
	if (off <= p->off) {
		p->data = true;
		p->first_end = off + len;
	} else {
		p->first_end = off;
	}
	return -EEXIST; /* stop: the first one tells */
}

static int source_extent(void *arg, uint64_t off, uint64_t max, uint64_t *lenp, bool *datap)
{
	struct vrbd_image *img = arg;
	struct extent_probe p = {.off = off, .end = off + max};
	int ret = rbd_diff_iterate2(img->rbd, NULL, off, max, 1, 1, probe_extent, &p);

	if (ret < 0 && ret != -EEXIST) {
		return ret;
	}
	*datap = p.found && p.data;
	*lenp = !p.found ? max : (p.first_end > p.end ? p.end : p.first_end) - off;
	if (*lenp == 0) {
		*lenp = max;
	}
	return 0;
}

static int source_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	struct vrbd_image *img = arg;
	size_t done = 0;

	while (done < len) {
		ssize_t n = rbd_read(img->rbd, off + done, len - done, (char *)buf + done);

		if (n < 0) {
			return (int)n;
		}
		if (n == 0) {
			memset((char *)buf + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

static void source_close(void *arg)
{
	vrbd_close(arg);
}

static const struct vd_source_ops source_ops = {
	.extent = source_extent,
	.pread = source_pread,
	.close = source_close,
};

int vrbd_source_open(const struct vrbd_spec *spec, struct vd_source **srcp, struct errmsg *err)
{
	struct vrbd_image *img;
	uint64_t size;
	int ret = vrbd_open(spec, 0, &img, err);

	if (ret < 0) {
		return ret;
	}
	ret = rbd_get_size(img->rbd, &size);
	if (ret == 0) {
		ret = vd_source_from_ops(&source_ops, img, size, img->name, srcp);
	}
	if (ret < 0) {
		errmsg_set(err, "%s: %s", img->name, strerror(-ret));
		vrbd_close(img);
	}
	return ret;
}

int vrbd_copy_write(void *arg, const void *buf, size_t len, uint64_t off)
{
	struct vrbd_image *img = arg;
	size_t done = 0;

	while (done < len) {
		ssize_t n = rbd_write(img->rbd, off + done, len - done, (const char *)buf + done);

		if (n <= 0) {
			return n < 0 ? (int)n : -EIO;
		}
		done += (size_t)n;
	}
	return 0;
}
