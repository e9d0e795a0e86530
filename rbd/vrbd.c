/* SPDX-License-Identifier: MIT */
/* vrbd.c: names, connections and the exclusive lock of vrbd.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	bool writable = flags & VRBD_WRITABLE;
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
	if (writable) {
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
