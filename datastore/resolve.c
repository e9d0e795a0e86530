/* SPDX-License-Identifier: MIT */
/* resolve.c: the names of images in datastores, "NAME:rel" and VMware's
 * "[NAME] rel", turned into host paths, and host paths turned back into
 * names.  The one promise kept here: a name never reaches outside its
 * datastore's directory, neither by "..", by an absolute part, nor by a
 * symbolic link on the way. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void ds_ref_fini(struct ds_ref *ref)
{
	if (!ref) {
		return;
	}
	free(ref->name);
	free(ref->rel);
	free(ref->path);
	memset(ref, 0, sizeof(*ref));
}

/* Splits 'spec' into a datastore name (new string) and where the relative
 * part starts.  Returns 1 for a datastore spelling, 0 for anything else. */
static int split_spec(const char *spec, char **namep, const char **relp, struct errmsg *err)
{
	const char *end;

	if (spec[0] == '[') {
		end = strchr(spec, ']');
		if (!end) {
			errmsg_set(err, "'%s': missing ']' after the datastore name", spec);
			return -EINVAL;
		}
		*relp = end + 1 + strspn(end + 1, " ");
		*namep = strndup(spec + 1, (size_t)(end - spec - 1));
	} else {
		end = strchr(spec, ':');
		if (!end || memchr(spec, '/', (size_t)(end - spec))) {
			return 0;
		}
		*relp = end + 1;
		*namep = strndup(spec, (size_t)(end - spec));
	}
	if (!*namep) {
		return -ENOMEM;
	}
	return 1;
}

/* Builds the normalised form of 'rel' in 'out' (PATH_MAX). */
static int normalise(const char *spec, const char *rel, char *out, struct errmsg *err)
{
	size_t len = 0;

	if (rel[0] == '/') {
		errmsg_set(err, "'%s': the path inside a datastore must be relative", spec);
		return -EINVAL;
	}
	while (*rel) {
		size_t n = strcspn(rel, "/");

		if (n == 2 && !strncmp(rel, "..", 2)) {
			errmsg_set(err, "'%s': '..' may not leave the datastore", spec);
			return -EINVAL;
		}
		if (n >= strlen(DS_RESERVED_PREFIX) &&
		    !strncmp(rel, DS_RESERVED_PREFIX, strlen(DS_RESERVED_PREFIX))) {
			errmsg_set(err, "'%s': %.*s is the datastore's own file", spec, (int)n, rel);
			return -EINVAL;
		}
		if (n && !(n == 1 && rel[0] == '.')) {
			if (len + n + 2 > PATH_MAX) {
				errmsg_set(err, "'%s': the path is too long", spec);
				return -ENAMETOOLONG;
			}
			if (len) {
				out[len++] = '/';
			}
			memcpy(out + len, rel, n);
			len += n;
		}
		rel += n;
		rel += *rel == '/';
	}
	out[len] = '\0';
	if (!len) {
		errmsg_set(err, "'%s': no image named after the datastore", spec);
		return -EINVAL;
	}
	return 0;
}

static bool inside(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	return !strncmp(dir, path, n) && (path[n] == '/' || (n == 1 && dir[0] == '/'));
}

/* Every symbolic link on the way from 'dir' to 'rel' must lead inside
 * 'dir'; components that do not exist yet cannot be links. */
static int check_links(const char *spec, const char *dir, const char *rel, struct errmsg *err)
{
	char prefix[PATH_MAX], real[PATH_MAX];
	const char *s = rel;
	struct stat st;

	while (*s) {
		size_t n = strcspn(s, "/");

		snprintf(prefix, sizeof(prefix), "%s/%.*s", dir, (int)(s + n - rel), rel);
		if (lstat(prefix, &st) < 0) {
			return 0;
		}
		if (S_ISLNK(st.st_mode) && (!realpath(prefix, real) || !inside(dir, real))) {
			errmsg_set(err, "'%s': %s is a symbolic link leading outside the datastore",
				   spec, prefix);
			return -EXDEV;
		}
		s += n;
		s += *s == '/';
	}
	return 0;
}

/* The canonical directory of registered datastore 'name' (new string in
 * '*dirp'); -ENOENT when the registry does not have it. */
static int registered_dir(const char *registry, const char *name, char **dirp,
			  struct errmsg *err)
{
	struct json_object *doc, *rec, *p;
	char real[PATH_MAX];
	int ret;

	ret = ds_registry_read(registry, &doc, err);
	if (ret < 0) {
		return ret;
	}
	if (!json_object_object_get_ex(ds_registry_stores(doc), name, &rec) ||
	    !json_object_object_get_ex(rec, "path", &p)) {
		json_object_put(doc);
		return -ENOENT;
	}
	if (!realpath(json_object_get_string(p), real)) {
		ret = -errno;
		errmsg_set(err, "datastore %s: %s: %s", name, json_object_get_string(p),
			   strerror(-ret));
		json_object_put(doc);
		return ret == -ENOENT ? -ESTALE : ret;
	}
	json_object_put(doc);
	*dirp = strdup(real);
	return *dirp ? 0 : -ENOMEM;
}

static int fill_ref(const char *spec, char *name, const char *dir, const char *rel,
		    struct ds_ref *ref, struct errmsg *err)
{
	char norm[PATH_MAX];
	int ret;

	ret = normalise(spec, rel, norm, err);
	if (ret == 0) {
		ret = check_links(spec, dir, norm, err);
	}
	if (ret < 0) {
		free(name);
		return ret;
	}
	ref->name = name;
	ref->rel = strdup(norm);
	ref->path = ds_join(dir, norm);
	if (!ref->rel || !ref->path) {
		ds_ref_fini(ref);
		return -ENOMEM;
	}
	return 1;
}

int ds_parse_ref(const char *registry, const char *spec, struct ds_ref *ref,
		 struct errmsg *err)
{
	struct stat st;
	const char *rel;
	char *name = NULL, *dir = NULL;
	int ret;

	registry = registry ? registry : ds_registry_path();
	memset(ref, 0, sizeof(*ref));
	/* rbd:POOL/IMAGE names a Ceph image itself, whatever the registry
	 * holds (QEMU's spelling; a datastore cannot be called "rbd" and be
	 * reached by "rbd:..."). */
	if (!strncmp(spec, "rbd:", 4)) {
		return 0;
	}
	ret = split_spec(spec, &name, &rel, err);
	if (ret <= 0) {
		return ret;
	}
	{
		struct ds_rbd rbd;

		if (ds_get_rbd(registry, name, &rbd, NULL) == 1) {
			ret = ds_rbd_ref(registry, spec, name, &rbd, rel, ref, err);
			free(name);
			return ret;
		}
	}
	ret = registered_dir(registry, name, &dir, err);
	if (ret == -ENOENT) {
		/* "a:b" stays a file name when it is one and "a" is no datastore. */
		if (spec[0] != '[' && (!ds_name_valid(name) || lstat(spec, &st) == 0)) {
			free(name);
			return 0;
		}
		errmsg_set(err, "'%s': no datastore named %s (registry %s)", spec, name, registry);
	}
	if (ret < 0) {
		free(name);
		return ret;
	}
	ret = fill_ref(spec, name, dir, rel, ref, err);
	free(dir);
	return ret;
}

int ds_resolve(const char *registry, const char *spec, char **pathp, struct errmsg *err)
{
	struct ds_ref ref;
	int ret = ds_parse_ref(registry, spec, &ref, err);

	if (ret < 0) {
		return ret;
	}
	*pathp = ret ? ref.path : strdup(spec);
	ref.path = NULL;
	ds_ref_fini(&ref);
	return *pathp ? 0 : -ENOMEM;
}

/* The canonical form of 'path', which may not exist yet: its directory's
 * canonical form and its last component. */
static int canonical(const char *path, char *out)
{
	char *a, *b;
	char dir[PATH_MAX];
	int ret = 0;

	if (realpath(path, out)) {
		return 0;
	}
	if (errno != ENOENT) {
		return -errno;
	}
	a = strdup(path);
	b = strdup(path);
	if (!a || !b) {
		ret = -ENOMEM;
	} else if (!realpath(dirname(a), dir)) {
		ret = -errno;
	} else if (strlen(dir) + strlen(basename(b)) + 2 > PATH_MAX) {
		ret = -ENAMETOOLONG;
	} else {
		strcpy(out, strcmp(dir, "/") ? dir : "");
		strcat(out, "/");
		strcat(out, basename(b));
	}
	free(a);
	free(b);
	return ret;
}

int ds_locate(const char *registry, const char *path, struct ds_ref *ref, struct errmsg *err)
{
	struct json_object *doc, *p;
	char real[PATH_MAX], dir[PATH_MAX];
	int ret;

	registry = registry ? registry : ds_registry_path();
	memset(ref, 0, sizeof(*ref));
	if (canonical(path, real) < 0) {
		return 0;
	}
	ret = ds_registry_read(registry, &doc, err);
	if (ret < 0) {
		return ret;
	}
	ret = 0;
	json_object_object_foreach(ds_registry_stores(doc), key, val)
	{
		if (!json_object_object_get_ex(val, "path", &p) ||
		    !realpath(json_object_get_string(p), dir) || !inside(dir, real)) {
			continue;
		}
		ref->name = strdup(key);
		ref->rel = strdup(real + strlen(dir) + (strcmp(dir, "/") != 0));
		ref->path = strdup(real);
		ret = ref->name && ref->rel && ref->path ? 1 : -ENOMEM;
		if (ret < 0) {
			ds_ref_fini(ref);
		}
		break;
	}
	json_object_put(doc);
	return ret;
}

int ds_check_writable(const char *registry, const char *path, struct errmsg *err)
{
	struct ds_datastore *ds;
	struct ds_entry e;
	struct ds_ref ref;
	int ret;

	if (ds_locate(registry, path, &ref, NULL) <= 0) {
		return 0;
	}
	ret = ds_open(registry, ref.name, &ds, NULL);
	if (ret < 0) {
		/* The datastore cannot be read: the open will say why, if it
		 * matters. */
		ds_ref_fini(&ref);
		return 0;
	}
	if (ds_entry_find(ds, ref.rel, &e) == 0 && e.kind == DS_KIND_TEMPLATE) {
		errmsg_set(err, "%s is template %s:%s: it is read-only while it may have clones "
			   "('vdisk template --clear' makes it an image again)",
			   path, ref.name, ref.rel);
		ret = -EROFS;
	} else {
		ret = ds_entry_in_charge(ds, ref.rel, err);
	}
	ds_close(ds);
	ds_ref_fini(&ref);
	return ret;
}

int ds_split_target(const char *to, char **namep, char **relp)
{
	const char *colon = strchr(to, ':');

	*namep = colon ? strndup(to, (size_t)(colon - to)) : strdup(to);
	*relp = colon && colon[1] ? strdup(colon + 1) : NULL;
	if (!*namep || (colon && colon[1] && !*relp)) {
		free(*namep);
		free(*relp);
		*namep = *relp = NULL;
		return -ENOMEM;
	}
	return 0;
}
