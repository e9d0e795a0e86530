/* SPDX-License-Identifier: MIT */
/* rbd-none.c: Ceph datastores in a build without librbd (datastore.h):
 * recorded ones are recognised, and refused with a sentence. */
#include <errno.h>
#include <string.h>

#include "internal.h"

static int refuse(const char *name, struct errmsg *err)
{
	errmsg_set(err, "datastore %s: built without Ceph RBD support (librbd-dev, "
			"librados-dev)", name);
	return -ENOTSUP;
}

int ds_create_rbd(const char *registry, const char *name, const struct ds_rbd *rbd,
		  struct errmsg *err)
{
	return refuse(name, err);
}

int ds_get_rbd(const char *registry, const char *name, struct ds_rbd *rbd, struct errmsg *err)
{
	struct json_object *doc, *rec;
	int ret = ds_registry_read(registry ? registry : ds_registry_path(), &doc, err);

	memset(rbd, 0, sizeof(*rbd));
	if (ret < 0) {
		return ret;
	}
	if (!json_object_object_get_ex(ds_registry_stores(doc), name, &rec)) {
		ret = -ENOENT;
	} else {
		ret = json_object_object_get_ex(rec, "rbd", NULL) ? refuse(name, err) : 0;
	}
	json_object_put(doc);
	return ret;
}

int ds_rbd_ref(const char *registry, const char *spec, const char *name, const struct ds_rbd *rbd,
	       const char *rel, struct ds_ref *ref, struct errmsg *err)
{
	return refuse(name, err);
}

int ds_rbd_images(const char *registry, const char *name, struct ds_rbd_image **imgsp,
		  unsigned *np, struct ds_usage *usage, struct errmsg *err)
{
	*imgsp = NULL;
	*np = 0;
	return refuse(name, err);
}

void ds_rbd_images_free(struct ds_rbd_image *imgs, unsigned n)
{
}
