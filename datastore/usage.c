/* SPDX-License-Identifier: MIT */
/* usage.c: what a datastore and its images measure: capacity and free
 * space from statvfs, provisioned (virtual sizes) and allocated (host
 * blocks) from the entries' files, each image's chain, snapshots and
 * users, and the clones that pin a template.  Reads only: images are
 * opened with VD_OPEN_FORCE_SHARE, so measuring never waits on or
 * disturbs a writer. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "internal.h"
#include "vdisk.h"

static int open_peek(const char *path, unsigned extra, struct vd_image **imgp)
{
	struct vd_open_opts oo;

	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_FORCE_SHARE | VD_OPEN_BUFFERED | extra;
	return vd_open(path, &oo, imgp, NULL);
}

int ds_file_size(const char *path, enum ds_kind kind, uint64_t *sizep)
{
	struct vd_image *img;
	struct stat st;
	int ret;

	if (kind == DS_KIND_ISO) {
		if (stat(path, &st) < 0) {
			return -errno;
		}
		*sizep = (uint64_t)st.st_size;
		return 0;
	}
	ret = open_peek(path, VD_OPEN_NO_BACKING, &img);
	if (ret == 0) {
		*sizep = vd_size_bytes(img);
		vd_close(img);
	}
	return ret;
}

uint64_t ds_provisioned(const char *dir, struct json_object *doc)
{
	struct json_object *entries;
	uint64_t sum = 0;

	if (!json_object_object_get_ex(doc, "entries", &entries)) {
		return 0;
	}
	json_object_object_foreach(entries, key, rec)
	{
		struct json_object *v;
		uint64_t size = 0;
		char *p = ds_join(dir, key);
		bool ready = json_object_object_get_ex(rec, "state", &v) &&
			     !strcmp(json_object_get_string(v), "ready");
		enum ds_kind kind = DS_KIND_IMAGE;

		if (json_object_object_get_ex(rec, "kind", &v)) {
			ds_kind_parse(json_object_get_string(v), &kind);
		}
		/* An incomplete file is still being written: its intended size
		 * counts, not what it says now. */
		if (!ready || !p || ds_file_size(p, kind, &size) < 0) {
			size = json_object_object_get_ex(rec, "size", &v)
				   ? (uint64_t)json_object_get_int64(v)
				   : 0;
		}
		sum += size;
		free(p);
	}
	return sum;
}

static void comm_of(long pid, char *buf, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = fopen(path, "re");
	if (!f || !fgets(buf, (int)size, f)) {
		snprintf(buf, size, "process");
	}
	buf[strcspn(buf, "\n")] = '\0';
	if (f) {
		fclose(f);
	}
}

void ds_describe_users(const struct vd_users *u, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	if (!u->in_use) {
		return;
	}
	for (unsigned i = 0; i < u->n_pids && n < size; i++) {
		char comm[32];

		comm_of(u->pids[i], comm, sizeof(comm));
		n += (size_t)snprintf(buf + n, size - n, "%s%s (pid %ld)", i ? ", " : "", comm,
				      u->pids[i]);
	}
	if (u->n_pids == 0) {
		snprintf(buf, size, "a process on another host or outside this one's view");
	}
}

int ds_get_usage(struct ds_datastore *ds, struct ds_usage *u, struct errmsg *err)
{
	struct statvfs sv;
	struct ds_entry e;
	int ret;

	memset(u, 0, sizeof(*u));
	ret = ds_refresh(ds, err);
	if (ret < 0) {
		return ret;
	}
	if (statvfs(ds->path, &sv) < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot measure the file system: %s", ds->path, strerror(-ret));
		return ret;
	}
	u->capacity_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
	u->free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	u->provisioned_bytes = ds_provisioned(ds->path, ds->doc);
	for (unsigned i = 0; i < ds->n_keys; i++) {
		char *p = ds_join(ds->path, ds->keys[i]);
		struct stat st;

		ds_entry_get(ds, i, &e);
		if (p && stat(p, &st) == 0) {
			u->allocated_bytes += (uint64_t)st.st_blocks * 512;
		}
		free(p);
		u->n_images += e.kind == DS_KIND_IMAGE;
		u->n_templates += e.kind == DS_KIND_TEMPLATE;
		u->n_isos += e.kind == DS_KIND_ISO;
		u->n_incomplete += e.state != DS_STATE_READY;
	}
	u->overcommit = u->capacity_bytes
			    ? (double)u->provisioned_bytes / (double)u->capacity_bytes
			    : 0;
	return 0;
}

void ds_image_info_fini(struct ds_image_info *info)
{
	for (unsigned i = 0; i < info->chain_len; i++) {
		free(info->chain[i]);
	}
	for (unsigned i = 0; i < info->n_snapshots; i++) {
		free(info->snapshots[i]);
	}
	free(info->snapshots);
	memset(info, 0, sizeof(*info));
}

/* The host path of the backing file of 'img' opened from 'path', or NULL:
 * a relative name is taken from the image's directory, as libvdisk does. */
static char *backing_of(struct vd_image *img, const char *path)
{
	const char *b = vd_backing_path(img);
	char *copy, *slash, *out;

	if (!b) {
		return NULL;
	}
	if (b[0] == '/') {
		return strdup(b);
	}
	copy = strdup(path);
	if (!copy) {
		return NULL;
	}
	slash = strrchr(copy, '/');
	if (slash) {
		*slash = '\0';
	}
	if (asprintf(&out, "%s/%s", slash ? copy : ".", b) < 0) {
		out = NULL;
	}
	free(copy);
	return out;
}

static int read_snapshots(struct vd_image *img, struct ds_image_info *info)
{
	struct vd_snapshot_info si;
	int n = vd_snapshot_count(img);

	if (n <= 0) {
		return n;
	}
	info->snapshots = calloc((size_t)n, sizeof(char *));
	if (!info->snapshots) {
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		int ret = vd_snapshot_get(img, (unsigned)i, &si);

		if (ret < 0) {
			return ret;
		}
		info->snapshots[i] = strdup(si.name);
		if (!info->snapshots[i]) {
			return -ENOMEM;
		}
		info->n_snapshots++;
	}
	return 0;
}

/* Walks the backing chain one file at a time (each opened without its own
 * chain), so a missing link is shown rather than failing the listing. */
static void read_chain(struct vd_image *img, const char *path, struct ds_image_info *info)
{
	char *next = backing_of(img, path);

	while (next && info->chain_len < DS_CHAIN_MAX) {
		struct vd_image *b;

		info->chain[info->chain_len++] = next;
		if (open_peek(next, VD_OPEN_NO_BACKING, &b) < 0) {
			return;
		}
		next = backing_of(b, next);
		vd_close(b);
	}
	free(next);
}

int ds_image_info(struct ds_datastore *ds, const char *rel, struct ds_image_info *info,
		  struct errmsg *err)
{
	struct vd_image *img;
	struct vd_users u;
	struct ds_entry e;
	struct stat st;
	char *p;
	int ret;

	memset(info, 0, sizeof(*info));
	ret = ds_entry_find(ds, rel, &e);
	if (ret < 0) {
		errmsg_set(err, "%s:%s is not in the datastore", ds->name, rel);
		return ret;
	}
	p = ds_join(ds->path, rel);
	if (!p) {
		return -ENOMEM;
	}
	if (stat(p, &st) < 0) {
		ret = -errno;
		errmsg_set(err, "%s:%s: %s", ds->name, rel, strerror(-ret));
		goto out;
	}
	info->allocated_bytes = (uint64_t)st.st_blocks * 512;
	info->size_bytes = e.kind == DS_KIND_ISO ? (uint64_t)st.st_size : e.size_bytes;
	if (vd_image_users(p, &u, NULL) == 0) {
		info->in_use = u.in_use;
		ds_describe_users(&u, info->users, sizeof(info->users));
	}
	if (e.kind == DS_KIND_ISO || e.state != DS_STATE_READY) {
		goto out;
	}
	ret = open_peek(p, VD_OPEN_NO_BACKING, &img);
	if (ret < 0) {
		errmsg_set(err, "%s:%s: cannot open: %s", ds->name, rel, strerror(-ret));
		goto out;
	}
	info->size_bytes = vd_size_bytes(img);
	read_chain(img, p, info);
	ret = read_snapshots(img, info);
	vd_close(img);
	if (ret < 0) {
		errmsg_set(err, "%s:%s: cannot read its snapshots: %s", ds->name, rel,
			   strerror(-ret));
	}
out:
	free(p);
	if (ret < 0) {
		ds_image_info_fini(info);
	}
	return ret;
}

static int push_name(char ***listp, size_t *np, const char *ds, const char *rel)
{
	char **grown = realloc(*listp, (*np + 2) * sizeof(char *));

	if (!grown) {
		return -ENOMEM;
	}
	*listp = grown;
	if (asprintf(&grown[*np], "%s:%s", ds, rel) < 0) {
		grown[*np] = NULL;
		return -ENOMEM;
	}
	grown[++*np] = NULL;
	return 0;
}

/* Adds to the list every image of 'ds' whose backing file is 'target'. */
static int clones_in(struct ds_datastore *ds, const char *target, char ***listp, size_t *np)
{
	for (unsigned i = 0; i < ds->n_keys; i++) {
		char *p = ds_join(ds->path, ds->keys[i]), *b = NULL;
		char real[PATH_MAX];
		struct vd_image *img;
		bool match = false;
		int ret = 0;

		if (p && open_peek(p, VD_OPEN_NO_BACKING, &img) == 0) {
			b = backing_of(img, p);
			vd_close(img);
		}
		match = b && realpath(b, real) && !strcmp(real, target);
		if (match) {
			ret = push_name(listp, np, ds->name, ds->keys[i]);
		}
		free(b);
		free(p);
		if (ret < 0) {
			return ret;
		}
	}
	return 0;
}

int ds_find_clones(const char *registry, const char *path, char ***clonesp, struct errmsg *err)
{
	char **names = NULL, **list = NULL;
	char target[PATH_MAX];
	size_t n = 0;
	int ret;

	registry = registry ? registry : ds_registry_path();
	if (!realpath(path, target)) {
		ret = -errno;
		errmsg_set(err, "%s: %s", path, strerror(-ret));
		return ret;
	}
	ret = ds_list(registry, &names, err);
	for (int i = 0; ret >= 0 && names[i]; i++) {
		struct ds_datastore *ds;

		/* A datastore that cannot be read now holds no clone we can
		 * see; that is the honest answer, not a failure. */
		if (ds_open(registry, names[i], &ds, NULL) < 0) {
			continue;
		}
		ret = clones_in(ds, target, &list, &n);
		ds_close(ds);
	}
	ds_names_free(names);
	if (ret < 0) {
		ds_names_free(list);
		return ret;
	}
	if (!list) {
		list = calloc(1, sizeof(char *));
		if (!list) {
			return -ENOMEM;
		}
	}
	*clonesp = list;
	return (int)n;
}
