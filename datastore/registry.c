/* SPDX-License-Identifier: MIT */
/* registry.c: the host's list of datastores, one JSON file mapping names
 * to directories (docs/datastores.md), and the calls that create, remove
 * and list datastores.  A change takes the registry's lock file, then (lock
 * order) the manifest's; readers take no lock, since every writer replaces
 * the whole file with rename(2). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "rpc.h"
#include "vdisk.h"

const char *ds_registry_path(void)
{
	const char *env = getenv(DS_REGISTRY_ENV);

	return env && env[0] ? env : DS_REGISTRY_DEFAULT;
}

bool ds_name_valid(const char *name)
{
	size_t len = strlen(name);

	/* "rbd:POOL/IMAGE" names a Ceph image (QEMU's spelling), so "rbd" can
	 * name no datastore. */
	if (!strcmp(name, "rbd")) {
		return false;
	}

	if (len == 0 || len > DS_NAME_MAX_LEN || !isalnum((unsigned char)name[0])) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
			return false;
		}
	}
	return true;
}

void ds_create_opts_init(struct ds_create_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
}

int ds_lock_file(const char *path, int op, struct errmsg *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	int ret;

	if (fd < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot open the lock file: %s", path, strerror(-ret));
		return ret;
	}
	while (flock(fd, op) < 0) {
		if (errno != EINTR) {
			ret = -errno;
			errmsg_set(err, "%s: cannot lock: %s", path, strerror(-ret));
			close(fd);
			return ret;
		}
	}
	return fd;
}

int ds_json_read(const char *path, struct json_object **docp, struct errmsg *err)
{
	struct json_object *doc;

	if (access(path, F_OK) != 0) {
		return -errno;
	}
	doc = json_object_from_file(path);
	if (!doc || !json_object_is_type(doc, json_type_object)) {
		errmsg_set(err, "%s: not a JSON object (%s)", path,
			   doc ? "wrong type" : json_util_get_last_err());
		json_object_put(doc);
		return -EINVAL;
	}
	*docp = doc;
	return 0;
}

struct json_object *ds_registry_stores(struct json_object *doc)
{
	struct json_object *stores;

	if (json_object_object_get_ex(doc, "datastores", &stores) &&
	    json_object_is_type(stores, json_type_object)) {
		return stores;
	}
	stores = json_object_new_object();
	json_object_object_add(doc, "datastores", stores);
	return stores;
}

static struct json_object *registry_new(void)
{
	struct json_object *doc = json_object_new_object();

	json_object_object_add(doc, "format", json_object_new_string("vdisk-datastores"));
	json_object_object_add(doc, "version", json_object_new_int(1));
	json_object_object_add(doc, "datastores", json_object_new_object());
	return doc;
}

int ds_registry_read(const char *registry, struct json_object **docp, struct errmsg *err)
{
	int ret = ds_json_read(registry, docp, err);

	if (ret == -ENOENT) {
		*docp = registry_new();
		return 0;
	}
	if (ret < 0 && ret != -EINVAL) {
		errmsg_set(err, "%s: cannot read the registry: %s", registry, strerror(-ret));
	}
	return ret;
}

/* Takes the registry's lock and reads it (with rpc_store_load, which may
 * now safely remove a temporary file a crashed writer left).  Returns the
 * lock descriptor. */
int ds_registry_lock(const char *registry, struct json_object **docp, struct errmsg *err)
{
	char lock[PATH_MAX + 8];
	int fd, ret;

	ret = rpc_mkdirs_for(registry);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot create its directory: %s", registry, strerror(-ret));
		return ret;
	}
	snprintf(lock, sizeof(lock), "%s.lock", registry);
	fd = ds_lock_file(lock, LOCK_EX, err);
	if (fd < 0) {
		return fd;
	}
	ret = rpc_store_load(registry, docp, err);
	if (ret == -ENOENT) {
		*docp = registry_new();
		ret = 0;
	}
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

char *ds_join(const char *dir, const char *rel)
{
	char *out;

	return asprintf(&out, "%s/%s", dir, rel) < 0 ? NULL : out;
}

char *ds_manifest_path(const char *dir)
{
	return ds_join(dir, DS_MANIFEST_FILE);
}

char *ds_lock_path(const char *dir)
{
	return ds_join(dir, DS_LOCK_FILE);
}

/* True if one of 'a' and 'b' (canonical directories) contains the other. */
static bool paths_nest(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), l = la < lb ? la : lb;

	return strncmp(a, b, l) == 0 && (la == lb || (la < lb ? b[la] : a[lb]) == '/' ||
					 (l == 1 && a[0] == '/'));
}

/* Refuses 'name' or 'dir' if the registry has them, or a datastore
 * nesting with 'dir': the name of an image must say which datastore holds
 * it. */
static int registry_check_new(struct json_object *stores, const char *name, const char *dir,
			      struct errmsg *err)
{
	json_object_object_foreach(stores, key, val)
	{
		struct json_object *p;
		const char *other = json_object_object_get_ex(val, "path", &p)
					? json_object_get_string(p)
					: "";

		if (!strcmp(key, name)) {
			errmsg_set(err, "a datastore named %s already exists (at %s)", name, other);
			return -EEXIST;
		}
		if (!strcmp(other, dir)) {
			errmsg_set(err, "%s is already datastore %s", dir, key);
			return -EEXIST;
		}
		if (paths_nest(other, dir)) {
			errmsg_set(err, "%s and datastore %s (%s) would lie one inside the other",
				   dir, key, other);
			return -EINVAL;
		}
	}
	return 0;
}

void ds_random_id(char *buf, size_t size)
{
	unsigned char raw[16] = {0};
	size_t n = 0;

	/* A clock fallback keeps ids distinct enough if getrandom is
	 * unavailable; they name datastores, they guard nothing. */
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(raw, &ts, sizeof(ts) < sizeof(raw) ? sizeof(ts) : sizeof(raw));
		raw[15] ^= (unsigned char)getpid();
	}
	for (size_t i = 0; i < sizeof(raw) && n + 3 <= size; i++) {
		n += (size_t)snprintf(buf + n, size - n, "%02x", raw[i]);
	}
}

static struct json_object *manifest_new(const char *name, double max_overcommit)
{
	struct json_object *doc = json_object_new_object();
	char id[40];

	ds_random_id(id, sizeof(id));
	json_object_object_add(doc, "format", json_object_new_string("vdisk-datastore"));
	json_object_object_add(doc, "version", json_object_new_int(1));
	json_object_object_add(doc, "name", json_object_new_string(name));
	json_object_object_add(doc, "id", json_object_new_string(id));
	json_object_object_add(doc, "created", json_object_new_int64((int64_t)time(NULL)));
	if (max_overcommit > 0) {
		json_object_object_add(doc, "max_overcommit", json_object_new_double(max_overcommit));
	}
	json_object_object_add(doc, "entries", json_object_new_object());
	return doc;
}

/* Writes a new manifest into 'dir', or adopts the one there if it is
 * datastore 'name'.  Stores its id in 'idbuf'. */
static int manifest_init(const char *dir, const char *name, const struct ds_create_opts *opts,
			 char *idbuf, size_t idsize, struct errmsg *err)
{
	char *mpath = ds_manifest_path(dir), *lpath = ds_lock_path(dir);
	struct json_object *doc = NULL, *v;
	int fd, ret = -ENOMEM;

	if (!mpath || !lpath) {
		goto out;
	}
	fd = ds_lock_file(lpath, LOCK_EX, err);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	ret = rpc_store_load(mpath, &doc, err);
	if (ret == 0) {
		const char *have = json_object_object_get_ex(doc, "name", &v)
				       ? json_object_get_string(v)
				       : "";

		if (strcmp(have, name)) {
			errmsg_set(err, "%s already holds datastore '%s'", dir, have);
			ret = -EEXIST;
			goto out_unlock;
		}
		if (opts->max_overcommit > 0) {
			json_object_object_add(doc, "max_overcommit",
					       json_object_new_double(opts->max_overcommit));
		}
	} else if (ret == -ENOENT) {
		doc = manifest_new(name, opts->max_overcommit);
	} else {
		goto out_unlock;
	}
	ret = rpc_store_save(mpath, doc, err);
	if (ret == 0) {
		chmod(mpath, 0644);
		json_object_object_get_ex(doc, "id", &v);
		snprintf(idbuf, idsize, "%s", json_object_get_string(v));
	}
out_unlock:
	close(fd);
out:
	json_object_put(doc);
	free(mpath);
	free(lpath);
	return ret;
}

/* Makes 'path' an existing canonical directory in 'out' (PATH_MAX). */
static int make_dir(const char *path, char *out, struct errmsg *err)
{
	char probe[PATH_MAX];
	struct stat st;
	int ret;

	snprintf(probe, sizeof(probe), "%s/x", path);
	ret = rpc_mkdirs_for(probe);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot create the directory: %s", path, strerror(-ret));
		return ret;
	}
	if (!realpath(path, out) || stat(out, &st) < 0) {
		ret = -errno;
		errmsg_set(err, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (!S_ISDIR(st.st_mode)) {
		errmsg_set(err, "%s is not a directory", path);
		return -ENOTDIR;
	}
	return 0;
}

int ds_create(const char *registry, const char *name, const char *path,
	      const struct ds_create_opts *opts, struct errmsg *err)
{
	struct json_object *doc, *stores, *rec;
	struct ds_create_opts defaults;
	char dir[PATH_MAX], id[40];
	int fd, ret;

	registry = registry ? registry : ds_registry_path();
	if (!opts) {
		ds_create_opts_init(&defaults);
		opts = &defaults;
	}
	if (!ds_name_valid(name)) {
		errmsg_set(err, "'%s' is not a datastore name (letters, digits, '.', '_', '-', "
				"at most %d; not rbd)", name, DS_NAME_MAX_LEN);
		return -EINVAL;
	}
	if (opts->max_overcommit < 0) {
		errmsg_set(err, "the overcommit limit must be positive");
		return -EINVAL;
	}
	ret = make_dir(path, dir, err);
	if (ret < 0) {
		return ret;
	}
	fd = ds_registry_lock(registry, &doc, err);
	if (fd < 0) {
		return fd;
	}
	stores = ds_registry_stores(doc);
	ret = registry_check_new(stores, name, dir, err);
	if (ret == 0) {
		ret = manifest_init(dir, name, opts, id, sizeof(id), err);
	}
	if (ret == 0) {
		rec = json_object_new_object();
		json_object_object_add(rec, "path", json_object_new_string(dir));
		json_object_object_add(rec, "id", json_object_new_string(id));
		json_object_object_add(stores, name, rec);
		ret = rpc_store_save(registry, doc, err);
		chmod(registry, 0644);
	}
	json_object_put(doc);
	close(fd);
	return ret;
}

/* Deletes every entry's file, refusing first if any is in use. */
static int delete_files(struct ds_datastore *ds, struct errmsg *err)
{
	char users[256];

	for (unsigned i = 0; i < ds->n_keys; i++) {
		char *p = ds_join(ds->path, ds->keys[i]);
		struct vd_users u;

		if (p && vd_image_users(p, &u, NULL) == 0 && u.in_use) {
			ds_describe_users(&u, users, sizeof(users));
			errmsg_set(err, "%s:%s is in use by %s", ds->name, ds->keys[i], users);
			free(p);
			return -EBUSY;
		}
		free(p);
	}
	for (unsigned i = 0; i < ds->n_keys; i++) {
		char *p = ds_join(ds->path, ds->keys[i]);

		if (p && unlink(p) < 0 && errno != ENOENT) {
			int ret = -errno;

			errmsg_set(err, "%s: cannot delete: %s", p, strerror(-ret));
			free(p);
			return ret;
		}
		free(p);
	}
	return 0;
}

static int remove_locked(const char *registry, struct ds_datastore *ds, unsigned flags,
			 struct errmsg *err)
{
	char *mpath, *lpath;
	int fd, ret;

	if (ds->n_keys && !(flags & DS_REMOVE_FORCE)) {
		errmsg_set(err, "datastore %s holds %u entr%s (remove them first, or force it)",
			   ds->name, ds->n_keys, ds->n_keys == 1 ? "y" : "ies");
		return -ENOTEMPTY;
	}
	if (!(flags & DS_REMOVE_DELETE_FILES)) {
		return 0;
	}
	mpath = ds_manifest_path(ds->path);
	lpath = ds_lock_path(ds->path);
	fd = lpath ? ds_lock_file(lpath, LOCK_EX, err) : -ENOMEM;
	ret = fd < 0 ? fd : ds_refresh(ds, err);
	if (ret == 0) {
		ret = delete_files(ds, err);
	}
	if (ret == 0 && unlink(mpath) < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot delete: %s", mpath, strerror(-ret));
	}
	if (ret == 0) {
		unlink(lpath);
		rmdir(ds->path); /* only if empty: other files stay */
	}
	if (fd >= 0) {
		close(fd);
	}
	free(mpath);
	free(lpath);
	return ret;
}

int ds_remove(const char *registry, const char *name, unsigned flags, struct errmsg *err)
{
	struct ds_datastore *ds = NULL;
	struct json_object *doc, *stores;
	int fd, ret;

	registry = registry ? registry : ds_registry_path();
	fd = ds_registry_lock(registry, &doc, err);
	if (fd < 0) {
		return fd;
	}
	stores = ds_registry_stores(doc);
	if (!json_object_object_get_ex(stores, name, NULL)) {
		errmsg_set(err, "no datastore named %s (registry %s)", name, registry);
		ret = -ENOENT;
		goto out;
	}
	ret = ds_open(registry, name, &ds, err);
	/* A datastore whose directory is gone can still be unregistered, and
	 * so can a Ceph pool (its images stay in the pool: `rbd rm` deletes
	 * them, this never does). */
	if (ret == 0) {
		ret = remove_locked(registry, ds, flags, err);
	} else if (ret == -EMEDIUMTYPE && (flags & DS_REMOVE_DELETE_FILES)) {
		errmsg_set(err, "datastore %s is a Ceph pool: its images are not deleted here "
				"(rbd rm), remove it without --delete-files", name);
	} else if ((ret == -ESTALE || ret == -ENOENT || ret == -EMEDIUMTYPE) &&
		   !(flags & DS_REMOVE_DELETE_FILES)) {
		ret = 0;
	}
	if (ret == 0) {
		json_object_object_del(stores, name);
		ret = rpc_store_save(registry, doc, err);
	}
out:
	ds_close(ds);
	json_object_put(doc);
	close(fd);
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ds_list(const char *registry, char ***namesp, struct errmsg *err)
{
	struct json_object *doc, *stores;
	char **names;
	size_t n = 0;
	int ret;

	registry = registry ? registry : ds_registry_path();
	ret = ds_registry_read(registry, &doc, err);
	if (ret < 0) {
		return ret;
	}
	stores = ds_registry_stores(doc);
	names = calloc((size_t)json_object_object_length(stores) + 1, sizeof(*names));
	if (!names) {
		json_object_put(doc);
		return -ENOMEM;
	}
	json_object_object_foreach(stores, key, val)
	{
		(void)val;
		names[n] = strdup(key);
		if (!names[n]) {
			ds_names_free(names);
			json_object_put(doc);
			return -ENOMEM;
		}
		n++;
	}
	qsort(names, n, sizeof(*names), cmp_str);
	json_object_put(doc);
	*namesp = names;
	return (int)n;
}

void ds_names_free(char **names)
{
	for (size_t i = 0; names && names[i]; i++) {
		free(names[i]);
	}
	free(names);
}
