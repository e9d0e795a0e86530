/* SPDX-License-Identifier: MIT */
/* vdisk-rbd.c: the image commands on Ceph RBD images (an image of a
 * datastore that is a Ceph pool, or rbd:POOL/IMAGE), through libvrbd and
 * librbd, with the output and JSON shapes the commands have for vdisk
 * images.  So far: create (and linked clones of a protected snapshot),
 * info, rm, snapshot create/list/revert/delete and resize (those two through
 * vdiskd when it serves the image: vdisk-snap.c), flatten, template (which
 * protects a snapshot clones may be made of);
 * the others refuse RBD images with a sentence (vdisk_resolve). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "datastore.h"
#include "vdisk-cmds.h"
#include "vdisk-info.h"
#include "vrbd.h"

int vdisk_rbd_spec(const char *spec, struct vrbd_spec *vs)
{
	struct errmsg err = {{0}};
	char *name;
	int ret;

	ret = ds_resolve(NULL, spec, &name, &err);
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return ret;
	}
	if (strncmp(name, VRBD_PREFIX, strlen(VRBD_PREFIX)) != 0) {
		free(name);
		return 0;
	}
	ret = vrbd_spec_parse(name, vs, &err);
	free(name);
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return ret;
	}
	return 1;
}

int vdisk_rbd_create(const char *spec, const struct vrbd_spec *vs, uint64_t size_bytes,
		     bool quiet)
{
	struct errmsg err = {{0}};
	int ret;

	if (size_bytes == 0 || size_bytes % 512) {
		cli_error("%s: an RBD image needs a size, a multiple of 512 bytes", spec);
		return CLI_EXIT_FAILURE;
	}
	if (!quiet) {
		printf("Formatting '%s', fmt=rbd size=%" PRIu64 "\n", spec, size_bytes);
		fflush(stdout);
	}
	ret = vrbd_create(vs, size_bytes, &err);
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

int vdisk_rbd_rm(const char *spec, const struct vrbd_spec *vs)
{
	struct errmsg err = {{0}};
	int ret = vrbd_remove(vs, &err);

	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

/* info's "snapshots" for an RBD image: the keys of a vdisk image's
 * (unique and referenced bytes are not known without a diff: 0). */
static struct json_object *snapshots_json(rbd_image_t rbd)
{
	struct json_object *arr = json_object_new_array();
	rbd_snap_info_t snaps[128];
	int n = 128;

	n = rbd_snap_list(rbd, snaps, &n);
	for (int i = 0; i < n; i++) {
		struct json_object *s = json_object_new_object();
		struct timespec ts = {0};
		char date[32];

		rbd_snap_get_timestamp(rbd, snaps[i].id, &ts);
		vdisk_format_date((uint64_t)ts.tv_sec, date, sizeof(date));
		json_object_object_add(s, "id", json_object_new_uint64(snaps[i].id));
		json_object_object_add(s, "name", json_object_new_string(snaps[i].name));
		json_object_object_add(s, "date", json_object_new_string(date));
		json_object_object_add(s, "date_sec", json_object_new_uint64((uint64_t)ts.tv_sec));
		json_object_object_add(s, "date_nsec", json_object_new_uint64((uint64_t)ts.tv_nsec));
		json_object_object_add(s, "virtual_size", json_object_new_uint64(snaps[i].size));
		json_object_object_add(s, "unique_bytes", json_object_new_uint64(0));
		json_object_object_add(s, "referenced_bytes", json_object_new_uint64(0));
		json_object_array_add(arr, s);
	}
	if (n > 0) {
		rbd_snap_list_end(snaps);
	}
	return arr;
}

static const char *const feature_names[] = {
    "layering", "striping", "exclusive-lock", "object-map", "fast-diff", "deep-flatten",
    "journaling", "data-pool", "operations", "migrating", "non-primary",
};

static int describe(struct vrbd_image *img, const char *spec, struct json_object **objp)
{
	struct json_object *o = json_object_new_object(), *feats = json_object_new_array(),
			   *users = json_object_new_array();
	rbd_linked_image_spec_t parent;
	rbd_image_watcher_t w[8];
	rbd_snap_spec_t psnap;
	uint64_t size, alloc, features = 0;
	rbd_image_info_t st;
	size_t nw = 8;
	int ret;

	if ((ret = rbd_get_size(img->rbd, &size)) < 0 ||
	    (ret = rbd_stat(img->rbd, &st, sizeof(st))) < 0 ||
	    (ret = vrbd_allocated_bytes(img, &alloc)) < 0) {
		json_object_put(o);
		json_object_put(feats);
		json_object_put(users);
		return ret;
	}
	json_object_object_add(o, "filename", json_object_new_string(spec));
	json_object_object_add(o, "format", json_object_new_string("rbd"));
	json_object_object_add(o, "virtual_size", json_object_new_uint64(size));
	json_object_object_add(o, "cluster_size", json_object_new_uint64(st.obj_size));
	json_object_object_add(o, "allocated_bytes", json_object_new_uint64(alloc));
	json_object_object_add(o, "actual_size", json_object_new_uint64(alloc));
	if (rbd_get_parent(img->rbd, &parent, &psnap) == 0) {
		char buf[VRBD_NAME_MAX * 3 + 4];

		snprintf(buf, sizeof(buf), "%s/%s@%s", parent.pool_name, parent.image_name,
			 psnap.name);
		json_object_object_add(o, "backing_file", json_object_new_string(buf));
		json_object_object_add(o, "chain_depth", json_object_new_int(1));
		rbd_linked_image_spec_cleanup(&parent);
		rbd_snap_spec_cleanup(&psnap);
	} else {
		json_object_object_add(o, "backing_file", NULL);
		json_object_object_add(o, "chain_depth", json_object_new_int(0));
	}
	rbd_get_features(img->rbd, &features);
	for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++) {
		if (features & (1ull << i)) {
			json_object_array_add(feats, json_object_new_string(feature_names[i]));
		}
	}
	json_object_object_add(o, "rbd_features", feats);
	if (rbd_watchers_list(img->rbd, w, &nw) == 0) {
		for (size_t i = 0; i < nw; i++) {
			char buf[320];

			snprintf(buf, sizeof(buf), "client.%llu at %s", (unsigned long long)w[i].id,
				 w[i].addr);
			json_object_array_add(users, json_object_new_string(buf));
		}
		rbd_watchers_list_cleanup(w, nw);
	}
	json_object_object_add(o, "users", users);
	json_object_object_add(o, "snapshots", snapshots_json(img->rbd));
	*objp = o;
	return 0;
}

int vdisk_rbd_info(const char *spec, const struct vrbd_spec *vs, bool json)
{
	struct errmsg err = {{0}};
	struct vrbd_image *img;
	struct json_object *o, *arr;
	char human[CLI_HUMAN_SIZE_LEN];
	int ret;

	ret = vrbd_open(vs, 0, &img, &err);
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return CLI_EXIT_FAILURE;
	}
	ret = describe(img, spec, &o);
	vrbd_close(img);
	if (ret < 0) {
		cli_error("%s: %s", spec, strerror(-ret));
		return CLI_EXIT_FAILURE;
	}
	if (json) {
		ret = cli_json_print(stdout, o);
		json_object_put(o);
		return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
	}
	printf("image: %s\n", spec);
	printf("file format: rbd\n");
	printf("virtual size: %s (%" PRIu64 " bytes)\n",
	       cli_human_size(cli_json_u64(o, "virtual_size"), human, sizeof(human)),
	       cli_json_u64(o, "virtual_size"));
	printf("disk size: %s\n",
	       cli_human_size(cli_json_u64(o, "actual_size"), human, sizeof(human)));
	printf("cluster_size: %" PRIu64 "\n", cli_json_u64(o, "cluster_size"));
	if (cli_json_str(o, "backing_file", NULL)) {
		printf("backing file: %s\n", cli_json_str(o, "backing_file", NULL));
	}
	printf("rbd features:");
	arr = json_object_object_get(o, "rbd_features");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		printf(" %s", json_object_get_string(json_object_array_get_idx(arr, i)));
	}
	printf("\n");
	arr = json_object_object_get(o, "users");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		printf("in use by: %s\n", json_object_get_string(json_object_array_get_idx(arr, i)));
	}
	vdisk_snapshots_print(json_object_object_get(o, "snapshots"));
	json_object_put(o);
	return CLI_EXIT_OK;
}

/* The clients other than 'img' itself that watch it: a server or QEMU. */
static int other_users(struct vrbd_image *img, char *buf, size_t size)
{
	uint64_t self = rados_get_instance_id(vrbd_rados(img->cluster));
	rbd_image_watcher_t w[8];
	size_t n = 8;
	int others = 0;

	buf[0] = '\0';
	if (rbd_watchers_list(img->rbd, w, &n) < 0) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if ((uint64_t)w[i].id != self && others++ == 0) {
			snprintf(buf, size, "client.%llu at %s", (unsigned long long)w[i].id, w[i].addr);
		}
	}
	rbd_watchers_list_cleanup(w, n);
	return others;
}

int vdisk_rbd_snapshot(const char *sub, const char *spec, const struct vrbd_spec *vs,
		       const char *name, bool json)
{
	bool list = !strcmp(sub, "list");
	struct errmsg err = {{0}};
	struct vrbd_image *img;
	char users[320];
	int ret;

	if (!strcmp(sub, "diff")) {
		cli_error("%s: snapshot diff of RBD images is not supported yet", spec);
		return CLI_EXIT_FAILURE;
	}
	ret = vrbd_open(vs, list ? 0 : VRBD_MAINTENANCE, &img, &err);
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return CLI_EXIT_FAILURE;
	}
	if (list) {
		struct json_object *arr = snapshots_json(img->rbd);

		if (json) {
			ret = cli_json_print(stdout, arr);
		} else {
			vdisk_snapshots_print(arr);
		}
		json_object_put(arr);
	} else if (!strcmp(sub, "create")) {
		ret = rbd_snap_create(img->rbd, name);
	} else if (!strcmp(sub, "delete")) {
		ret = rbd_snap_remove(img->rbd, name);
	} else if (other_users(img, users, sizeof(users)) > 0) {
		/* A guest would see its disk change under it, as with a vdisk
		 * image vdiskd serves. */
		cli_error("%s: in use by %s: a disk in use cannot be reverted", spec, users);
		ret = -EBUSY;
	} else {
		ret = rbd_snap_rollback(img->rbd, name);
	}
	vrbd_close(img);
	if (ret < 0 && ret != -EBUSY) {
		cli_error("%s: snapshot %s %s: %s", spec, sub, name ? name : "",
			  ret == -EEXIST   ? "a snapshot of that name exists"
			  : ret == -ENOENT ? "no such snapshot"
			  : ret == -EBUSY  ? "it is protected or has clones"
					   : strerror(-ret));
	}
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

int vdisk_rbd_size(const char *spec, const struct vrbd_spec *vs, uint64_t *sizep)
{
	struct errmsg err = {{0}};
	struct vrbd_image *img;
	int ret = vrbd_open(vs, 0, &img, &err);

	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return ret;
	}
	ret = rbd_get_size(img->rbd, sizep);
	vrbd_close(img);
	if (ret < 0) {
		cli_error("%s: %s", spec, strerror(-ret));
	}
	return ret;
}

int vdisk_rbd_resize(const char *spec, const struct vrbd_spec *vs, uint64_t size_bytes,
		     bool shrink)
{
	struct errmsg err = {{0}};
	struct vrbd_image *img;
	uint64_t cur = 0;
	int ret = vrbd_open(vs, VRBD_MAINTENANCE, &img, &err);

	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return CLI_EXIT_FAILURE;
	}
	ret = rbd_get_size(img->rbd, &cur);
	if (ret == 0 && size_bytes < cur && !shrink) {
		cli_error("%s: shrinking loses the data beyond the new end: use --shrink", spec);
		ret = -EINVAL;
	} else if (ret == 0) {
		ret = rbd_resize(img->rbd, size_bytes);
		if (ret < 0) {
			cli_error("%s: cannot resize: %s", spec, strerror(-ret));
		}
	}
	vrbd_close(img);
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

int vdisk_rbd_clone(const char *spec, const struct vrbd_spec *vs, const char *parent_spec,
		    bool quiet)
{
	struct errmsg err = {{0}};
	struct vrbd_spec pvs;
	int ret = vdisk_rbd_spec(parent_spec, &pvs);

	if (ret == 0) {
		cli_error("%s: the backing image of an RBD clone is a snapshot of an RBD image "
			  "(NAME:IMAGE@SNAP), not %s", spec, parent_spec);
		return CLI_EXIT_FAILURE;
	}
	if (ret < 0) {
		return CLI_EXIT_FAILURE;
	}
	if (!quiet) {
		printf("Formatting '%s', fmt=rbd backing_file=%s\n", spec, parent_spec);
		fflush(stdout);
	}
	ret = vrbd_clone(&pvs, vs, &err);
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

int vdisk_rbd_flatten(const char *spec, const struct vrbd_spec *vs)
{
	struct errmsg err = {{0}};
	struct vrbd_image *img;
	int ret = vrbd_open(vs, VRBD_MAINTENANCE, &img, &err);

	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return CLI_EXIT_FAILURE;
	}
	ret = rbd_flatten(img->rbd);
	vrbd_close(img);
	if (ret < 0) {
		cli_error("%s: cannot flatten: %s", spec,
			  ret == -EINVAL ? "it is not a clone" : strerror(-ret));
	}
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

int vdisk_rbd_template(const char *spec, const struct vrbd_spec *vs, bool clear)
{
	struct vrbd_spec base = *vs;
	struct errmsg err = {{0}};
	struct vrbd_image *img;
	int ret;

	if (!vs->snap[0]) {
		cli_error("%s: an RBD template is a snapshot: name it IMAGE@SNAP", spec);
		return CLI_EXIT_FAILURE;
	}
	base.snap[0] = '\0';
	ret = vrbd_open(&base, VRBD_MAINTENANCE, &img, &err);
	if (ret < 0) {
		cli_error_ret(&err, spec, ret);
		return CLI_EXIT_FAILURE;
	}
	ret = clear ? rbd_snap_unprotect(img->rbd, vs->snap) : rbd_snap_protect(img->rbd, vs->snap);
	vrbd_close(img);
	if (ret == -EBUSY && !clear) {
		ret = 0; /* already protected */
	}
	if (ret < 0) {
		cli_error("%s: cannot %s the snapshot: %s", spec, clear ? "unprotect" : "protect",
			  ret == -EBUSY	   ? "clones use it"
			  : ret == -ENOENT ? "no such snapshot"
			  : ret == -EINVAL ? "it is not protected"
					   : strerror(-ret));
	}
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
