/* SPDX-License-Identifier: MIT */
/* rbd.c: datastores that are Ceph pools (datastore.h, "Ceph RBD
 * datastores").  The registry records the pool, configuration file and
 * user; everything else is asked of the cluster through libvrbd, which
 * bounds every wait. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"
#include "rpc.h"
#include "vrbd.h"

static void copy_field(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

int ds_get_rbd(const char *registry, const char *name, struct ds_rbd *rbd, struct errmsg *err)
{
	struct json_object *doc, *rec, *r, *v;
	int ret;

	registry = registry ? registry : ds_registry_path();
	memset(rbd, 0, sizeof(*rbd));
	ret = ds_registry_read(registry, &doc, err);
	if (ret < 0) {
		return ret;
	}
	if (!json_object_object_get_ex(ds_registry_stores(doc), name, &rec)) {
		errmsg_set(err, "no datastore named %s (registry %s)", name, registry);
		json_object_put(doc);
		return -ENOENT;
	}
	ret = json_object_object_get_ex(rec, "rbd", &r) && json_object_is_type(r, json_type_object);
	if (ret) {
		copy_field(rbd->pool, sizeof(rbd->pool),
			   json_object_object_get_ex(r, "pool", &v) ? json_object_get_string(v) : "");
		copy_field(rbd->conf, sizeof(rbd->conf),
			   json_object_object_get_ex(r, "conf", &v) ? json_object_get_string(v) : "");
		copy_field(rbd->id, sizeof(rbd->id),
			   json_object_object_get_ex(r, "id", &v) ? json_object_get_string(v) : "");
	}
	json_object_put(doc);
	return ret;
}

int ds_create_rbd(const char *registry, const char *name, const struct ds_rbd *rbd,
		  struct errmsg *err)
{
	struct json_object *doc, *stores, *rec, *r;
	struct vrbd_cluster *c;
	rados_ioctx_t io;
	char id[40];
	int fd, ret;

	registry = registry ? registry : ds_registry_path();
	if (!ds_name_valid(name)) {
		errmsg_set(err, "'%s' is not a datastore name (letters, digits, '.', '_', '-', "
				"at most %d; not rbd)", name, DS_NAME_MAX_LEN);
		return -EINVAL;
	}
	if (!rbd->pool[0] || strpbrk(rbd->pool, "/@:")) {
		errmsg_set(err, "'%s' is not a pool name", rbd->pool);
		return -EINVAL;
	}
	ret = vrbd_connect(rbd->conf, rbd->id, &c, err);
	if (ret < 0) {
		return ret;
	}
	ret = vrbd_pool_open(c, rbd->pool, &io, err);
	if (ret == 0) {
		rados_ioctx_destroy(io);
	}
	vrbd_disconnect(c);
	if (ret < 0) {
		return ret;
	}
	fd = ds_registry_lock(registry, &doc, err);
	if (fd < 0) {
		return fd;
	}
	stores = ds_registry_stores(doc);
	if (json_object_object_get_ex(stores, name, &rec)) {
		errmsg_set(err, "a datastore named %s already exists", name);
		ret = -EEXIST;
	} else {
		ds_random_id(id, sizeof(id));
		rec = json_object_new_object();
		r = json_object_new_object();
		json_object_object_add(r, "pool", json_object_new_string(rbd->pool));
		if (rbd->conf[0]) {
			json_object_object_add(r, "conf", json_object_new_string(rbd->conf));
		}
		if (rbd->id[0]) {
			json_object_object_add(r, "id", json_object_new_string(rbd->id));
		}
		json_object_object_add(rec, "rbd", r);
		json_object_object_add(rec, "id", json_object_new_string(id));
		json_object_object_add(stores, name, rec);
		ret = rpc_store_save(registry, doc, err);
	}
	json_object_put(doc);
	close(fd);
	return ret;
}

int ds_rbd_ref(const char *registry, const char *spec, const char *name, const struct ds_rbd *rbd,
	       const char *rel, struct ds_ref *ref, struct errmsg *err)
{
	struct vrbd_spec vs;
	char buf[sizeof(vs.conf) + 512];
	int ret;

	(void)registry;
	const char *at = strchr(rel, '@');

	/* An RBD image name has no directories, and ':' belongs to the rbd:
	 * grammar; IMAGE@SNAP names a snapshot (a clone's parent). */
	memset(&vs, 0, sizeof(vs));
	if (!rel[0] || rel[0] == '@' || strpbrk(rel, "/:") || (at && (!at[1] || strchr(at + 1, '@'))) ||
	    (size_t)((at ? at : rel + strlen(rel)) - rel) >= sizeof(vs.image) ||
	    (at && strlen(at + 1) >= sizeof(vs.snap))) {
		errmsg_set(err, "'%s': %s is a Ceph pool: name an image in it, IMAGE or IMAGE@SNAP "
				"(no '/' or ':')", spec, name);
		return -EINVAL;
	}
	copy_field(vs.pool, sizeof(vs.pool), rbd->pool);
	snprintf(vs.image, sizeof(vs.image), "%.*s", (int)((at ? at : rel + strlen(rel)) - rel), rel);
	if (at) {
		copy_field(vs.snap, sizeof(vs.snap), at + 1);
	}
	copy_field(vs.conf, sizeof(vs.conf), rbd->conf);
	copy_field(vs.id, sizeof(vs.id), rbd->id);
	ret = vrbd_spec_format(&vs, buf, sizeof(buf));
	if (ret < 0) {
		errmsg_set(err, "'%s': name too long", spec);
		return ret;
	}
	ref->name = strdup(name);
	ref->rel = strdup(rel);
	ref->path = strdup(buf);
	ref->rbd = true;
	if (!ref->name || !ref->rel || !ref->path) {
		ds_ref_fini(ref);
		return -ENOMEM;
	}
	return 1;
}

/* The clients watching 'img' ("client.4123 at ADDR, ..."). */
static void watchers(rbd_image_t img, char *buf, size_t size, bool *in_use)
{
	rbd_image_watcher_t w[8];
	size_t n = 8, len = 0;

	buf[0] = '\0';
	*in_use = false;
	if (rbd_watchers_list(img, w, &n) < 0) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(buf + len, size - len, "%sclient.%llu at %s", i ? ", " : "",
				 (unsigned long long)w[i].id, w[i].addr);

		if (k < 0 || (size_t)k >= size - len) {
			break;
		}
		len += (size_t)k;
	}
	*in_use = n > 0;
	rbd_watchers_list_cleanup(w, n);
}

static int describe(rados_ioctx_t io, const char *name, struct ds_rbd_image *im)
{
	struct vrbd_image v = {.io = io};
	rbd_linked_image_spec_t parent;
	rbd_snap_spec_t psnap;
	rbd_snap_info_t snaps[64];
	int ns = 64, ret;

	im->name = strdup(name);
	if (!im->name) {
		return -ENOMEM;
	}
	ret = rbd_open_read_only(io, name, &v.rbd, NULL);
	if (ret < 0) {
		return ret;
	}
	if ((ret = rbd_get_size(v.rbd, &im->size_bytes)) < 0 ||
	    (ret = vrbd_allocated_bytes(&v, &im->allocated_bytes)) < 0) {
		goto out;
	}
	if (rbd_get_parent(v.rbd, &parent, &psnap) == 0) {
		if (asprintf(&im->parent, "%s/%s@%s", parent.pool_name, parent.image_name,
			     psnap.name) < 0) {
			im->parent = NULL;
		}
		rbd_linked_image_spec_cleanup(&parent);
		rbd_snap_spec_cleanup(&psnap);
	}
	ns = rbd_snap_list(v.rbd, snaps, &ns);
	if (ns > 0) {
		im->snapshots = calloc((size_t)ns, sizeof(char *));
		im->protected_snaps = calloc((size_t)ns, sizeof(bool));
		for (int i = 0; im->snapshots && im->protected_snaps && i < ns; i++) {
			int prot = 0;

			im->snapshots[i] = strdup(snaps[i].name);
			rbd_snap_is_protected(v.rbd, snaps[i].name, &prot);
			im->protected_snaps[i] = prot;
			im->n_snapshots++;
		}
		rbd_snap_list_end(snaps);
	}
	watchers(v.rbd, im->users, sizeof(im->users), &im->in_use);
	ret = 0;
out:
	rbd_close(v.rbd);
	return ret;
}

static int cmp_image(const void *a, const void *b)
{
	return strcmp(((const struct ds_rbd_image *)a)->name, ((const struct ds_rbd_image *)b)->name);
}

int ds_rbd_images(const char *registry, const char *name, struct ds_rbd_image **imgsp,
		  unsigned *np, struct ds_usage *usage, struct errmsg *err)
{
	struct ds_rbd_image *imgs = NULL;
	struct rados_cluster_stat_t cs;
	struct vrbd_cluster *c;
	struct ds_rbd rbd;
	rados_ioctx_t io;
	rbd_image_spec_t *specs = NULL;
	size_t n = 0;
	int ret;

	*imgsp = NULL;
	*np = 0;
	if (usage) {
		memset(usage, 0, sizeof(*usage));
	}
	ret = ds_get_rbd(registry, name, &rbd, err);
	if (ret == 0) {
		errmsg_set(err, "datastore %s is a directory, not a Ceph pool", name);
		return -EMEDIUMTYPE;
	}
	if (ret < 0) {
		return ret;
	}
	ret = vrbd_connect(rbd.conf, rbd.id, &c, err);
	if (ret < 0) {
		return ret;
	}
	ret = vrbd_pool_open(c, rbd.pool, &io, err);
	if (ret < 0) {
		vrbd_disconnect(c);
		return ret;
	}
	ret = rbd_list2(io, NULL, &n);
	if (ret == -ERANGE && n > 0) {
		specs = calloc(n, sizeof(*specs));
		ret = specs ? rbd_list2(io, specs, &n) : -ENOMEM;
	}
	if (ret < 0) {
		errmsg_set(err, "datastore %s: cannot list pool %s: %s", name, rbd.pool,
			   strerror(-ret));
		goto out;
	}
	imgs = calloc(n ? n : 1, sizeof(*imgs));
	if (!imgs) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ret = describe(io, specs[i].name, &imgs[*np]);
		if (ret == -ENOENT) {
			free(imgs[*np].name); /* removed meanwhile */
			memset(&imgs[*np], 0, sizeof(imgs[*np]));
			continue;
		}
		(*np)++;
		if (ret < 0) {
			errmsg_set(err, "datastore %s: image %s: %s", name, specs[i].name,
				   strerror(-ret));
			goto out;
		}
	}
	qsort(imgs, *np, sizeof(*imgs), cmp_image);
	if (usage) {
		for (unsigned i = 0; i < *np; i++) {
			usage->provisioned_bytes += imgs[i].size_bytes;
			usage->allocated_bytes += imgs[i].allocated_bytes;
			usage->n_images++;
		}
		/* The cluster's figures come from its manager daemon; without
		 * one they read 0, shown as unknown. */
		if (rados_cluster_stat(vrbd_rados(c), &cs) == 0 && cs.kb > 0) {
			usage->capacity_bytes = cs.kb * 1024;
			usage->free_bytes = cs.kb_avail * 1024;
			usage->overcommit =
				(double)usage->provisioned_bytes / (double)usage->capacity_bytes;
		}
	}
	ret = 0;
out:
	if (specs) {
		rbd_image_spec_list_cleanup(specs, n);
		free(specs);
	}
	rados_ioctx_destroy(io);
	vrbd_disconnect(c);
	if (ret < 0) {
		ds_rbd_images_free(imgs, *np);
		*np = 0;
		return ret;
	}
	*imgsp = imgs;
	return 0;
}

void ds_rbd_images_free(struct ds_rbd_image *imgs, unsigned n)
{
	if (!imgs) {
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < imgs[i].n_snapshots; j++) {
			free(imgs[i].snapshots[j]);
		}
		free(imgs[i].snapshots);
		free(imgs[i].protected_snaps);
		free(imgs[i].parent);
		free(imgs[i].name);
	}
	free(imgs);
}
