/* SPDX-License-Identifier: MIT */
/* manifest.c: one datastore's manifest and the changes to its entries.
 *
 * Rules, cited below by number (docs/datastores.md gives the argument):
 *  1. Every change is a read-modify-write done whole under an exclusive
 *     flock on DS_LOCK_FILE: read the manifest fresh, change it, save it.
 *     No change is ever made from a copy read earlier, so none is lost.
 *  2. The manifest is only ever replaced by rpc_store_save() (temporary
 *     file, fsync, rename, fsync of the directory): a crash leaves the old
 *     file or the new one, and a reader without the lock sees one whole
 *     version.  The temporary file a crash leaves is removed only under
 *     the lock (rpc_store_load), where no save can be under way.
 *  3. An entry is added "incomplete" before its file is filled, and marked
 *     "ready" only after; an entry is removed only after its file is
 *     deleted.  So a crash leaves at worst an incomplete entry (visible,
 *     removable) or a file no entry names, never a ready entry whose file
 *     is partial or missing.
 *  4. The overcommit limit is checked under the same lock that adds the
 *     entry, counting incomplete entries at their intended size, so two
 *     creates racing each other cannot pass it together.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "rpc.h"
#include "vdisk.h"

static const char *const kind_names[] = {
    [DS_KIND_IMAGE] = "image",
    [DS_KIND_TEMPLATE] = "template",
    [DS_KIND_ISO] = "iso",
};

const char *ds_kind_name(enum ds_kind kind)
{
	return (unsigned)kind <= DS_KIND_ISO ? kind_names[kind] : "unknown";
}

int ds_kind_parse(const char *name, enum ds_kind *kindp)
{
	for (unsigned i = 0; i <= DS_KIND_ISO; i++) {
		if (!strcmp(name, kind_names[i])) {
			*kindp = (enum ds_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *ds_state_name(enum ds_state state)
{
	return state == DS_STATE_READY ? "ready" : "incomplete";
}

void ds_entry_opts_init(struct ds_entry_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->kind = DS_KIND_IMAGE;
}

static struct json_object *doc_entries(struct json_object *doc)
{
	struct json_object *e;

	if (json_object_object_get_ex(doc, "entries", &e) &&
	    json_object_is_type(e, json_type_object)) {
		return e;
	}
	e = json_object_new_object();
	json_object_object_add(doc, "entries", e);
	return e;
}

static const char *doc_str(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string)) {
		return NULL;
	}
	return json_object_get_string(v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Makes 'doc' the handle's manifest (taking the reference) and indexes
 * its entries in path order. */
static int adopt(struct ds_datastore *ds, struct json_object *doc)
{
	struct json_object *entries = doc_entries(doc);
	size_t n = (size_t)json_object_object_length(entries);
	char **keys = calloc(n + 1, sizeof(*keys));
	unsigned i = 0;

	if (!keys) {
		json_object_put(doc);
		return -ENOMEM;
	}
	/* The keys are borrowed from 'doc', which lives as long as they do. */
	json_object_object_foreach(entries, key, val)
	{
		(void)val;
		keys[i++] = key;
	}
	qsort(keys, i, sizeof(*keys), cmp_str);
	json_object_put(ds->doc);
	free(ds->keys);
	ds->doc = doc;
	ds->keys = keys;
	ds->n_keys = i;
	return 0;
}

/* The manifest 'doc' must be datastore 'ds->name'. */
static int check_doc(const struct ds_datastore *ds, struct json_object *doc, struct errmsg *err)
{
	const char *name = doc_str(doc, "name");

	if (!name || strcmp(name, ds->name)) {
		errmsg_set(err, "%s holds datastore '%s', not %s", ds->path, name ? name : "?",
			   ds->name);
		return -ESTALE;
	}
	return 0;
}

int ds_refresh(struct ds_datastore *ds, struct errmsg *err)
{
	char *mpath = ds_manifest_path(ds->path);
	struct json_object *doc;
	int ret;

	if (!mpath) {
		return -ENOMEM;
	}
	ret = ds_json_read(mpath, &doc, err);
	if (ret == -ENOENT) {
		errmsg_set(err, "datastore %s: %s has no manifest (moved or deleted?)", ds->name,
			   ds->path);
		ret = -ESTALE;
	}
	free(mpath);
	if (ret < 0) {
		return ret;
	}
	ret = check_doc(ds, doc, err);
	if (ret < 0) {
		json_object_put(doc);
		return ret;
	}
	return adopt(ds, doc);
}

static int lookup(const char *registry, const char *name, char **pathp, struct errmsg *err)
{
	struct json_object *doc, *rec;
	const char *path;
	int ret;

	ret = ds_registry_read(registry, &doc, err);
	if (ret < 0) {
		return ret;
	}
	if (json_object_object_get_ex(ds_registry_stores(doc), name, &rec) &&
	    json_object_object_get_ex(rec, "rbd", NULL)) {
		errmsg_set(err, "datastore %s is a Ceph pool: this works on directory datastores "
				"only", name);
		json_object_put(doc);
		return -EMEDIUMTYPE;
	}
	if (!json_object_object_get_ex(ds_registry_stores(doc), name, &rec) ||
	    !(path = doc_str(rec, "path"))) {
		errmsg_set(err, "no datastore named %s (registry %s)", name, registry);
		json_object_put(doc);
		return -ENOENT;
	}
	*pathp = strdup(path);
	json_object_put(doc);
	return *pathp ? 0 : -ENOMEM;
}

int ds_open(const char *registry, const char *name, struct ds_datastore **dsp,
	    struct errmsg *err)
{
	struct ds_datastore *ds;
	const char *id;
	int ret;

	registry = registry ? registry : ds_registry_path();
	ds = calloc(1, sizeof(*ds));
	if (!ds) {
		return -ENOMEM;
	}
	ds->registry = strdup(registry);
	ds->name = strdup(name);
	ret = ds->registry && ds->name ? lookup(registry, name, &ds->path, err) : -ENOMEM;
	if (ret == 0) {
		ret = ds_refresh(ds, err);
	}
	if (ret == 0) {
		id = doc_str(ds->doc, "id");
		ds->id = strdup(id ? id : "");
		ret = ds->id ? 0 : -ENOMEM;
	}
	if (ret < 0) {
		ds_close(ds);
		return ret;
	}
	*dsp = ds;
	return 0;
}

void ds_close(struct ds_datastore *ds)
{
	if (!ds) {
		return;
	}
	json_object_put(ds->doc);
	free(ds->keys);
	free(ds->registry);
	free(ds->name);
	free(ds->path);
	free(ds->id);
	free(ds);
}

const char *ds_name(const struct ds_datastore *ds) { return ds->name; }

const char *ds_path(const struct ds_datastore *ds) { return ds->path; }

const char *ds_id(const struct ds_datastore *ds) { return ds->id; }

static double doc_limit(struct json_object *doc)
{
	struct json_object *v;

	if (!json_object_object_get_ex(doc, "max_overcommit", &v)) {
		return 0;
	}
	return json_object_get_double(v);
}

double ds_max_overcommit(const struct ds_datastore *ds)
{
	return doc_limit(ds->doc);
}

/* --------------------------------------------------------- entries */

static void entry_from_json(const char *key, struct json_object *rec, struct ds_entry *e)
{
	struct json_object *v;
	const char *s;

	memset(e, 0, sizeof(*e));
	e->path = key;
	s = doc_str(rec, "kind");
	if (!s || ds_kind_parse(s, &e->kind) < 0) {
		e->kind = DS_KIND_IMAGE;
	}
	s = doc_str(rec, "state");
	e->state = s && !strcmp(s, "ready") ? DS_STATE_READY : DS_STATE_INCOMPLETE;
	if (json_object_object_get_ex(rec, "created", &v)) {
		e->created_s = json_object_get_int64(v);
	}
	if (json_object_object_get_ex(rec, "size", &v)) {
		e->size_bytes = (uint64_t)json_object_get_int64(v);
	}
	e->origin = doc_str(rec, "origin");
	e->moving_to = doc_str(rec, "moving_to");
}

unsigned ds_entry_count(const struct ds_datastore *ds)
{
	return ds->n_keys;
}

int ds_entry_get(const struct ds_datastore *ds, unsigned index, struct ds_entry *entry)
{
	struct json_object *rec;

	if (index >= ds->n_keys) {
		return -ERANGE;
	}
	json_object_object_get_ex(doc_entries(ds->doc), ds->keys[index], &rec);
	entry_from_json(ds->keys[index], rec, entry);
	return 0;
}

int ds_entry_find(const struct ds_datastore *ds, const char *rel, struct ds_entry *entry)
{
	for (unsigned i = 0; i < ds->n_keys; i++) {
		if (!strcmp(ds->keys[i], rel)) {
			return ds_entry_get(ds, i, entry);
		}
	}
	return -ENOENT;
}

/* ---------------------------------------------------------- changes */

int ds_change(struct ds_datastore *ds, ds_change_fn fn, void *arg, struct errmsg *err)
{
	char *mpath = ds_manifest_path(ds->path), *lpath = ds_lock_path(ds->path);
	struct json_object *doc = NULL;
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
	if (ret == -ENOENT) {
		errmsg_set(err, "datastore %s: %s has no manifest", ds->name, ds->path);
		ret = -ESTALE;
	}
	if (ret == 0) {
		ret = check_doc(ds, doc, err);
	}
	if (ret == 0) {
		ret = fn(ds, doc, arg, err);
	}
	if (ret == 0) {
		/* (rule 2) */
		ret = rpc_store_save(mpath, doc, err);
		chmod(mpath, 0644);
	}
	if (ret >= 0) {
		ret = adopt(ds, json_object_get(doc));
	}
	close(fd);
out:
	json_object_put(doc);
	free(mpath);
	free(lpath);
	return ret;
}

static struct json_object *find_rec(struct json_object *doc, const char *rel)
{
	struct json_object *rec;

	return json_object_object_get_ex(doc_entries(doc), rel, &rec) ? rec : NULL;
}

static int need_rec(struct ds_datastore *ds, struct json_object *doc, const char *rel,
		    struct json_object **recp, struct errmsg *err)
{
	*recp = find_rec(doc, rel);
	if (!*recp) {
		errmsg_set(err, "%s:%s is not in the datastore", ds->name, rel);
		return -ENOENT;
	}
	return 0;
}

char *ds_human(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	unsigned i = 0;

	while (i < 6 && v >= 999.5) {
		v /= 1024;
		i++;
	}
	snprintf(buf, size, "%.3g %s", v, units[i]);
	return buf;
}

/* (rule 4) Refuses 'add_bytes' more if they would pass the limit. */
static int check_overcommit(struct ds_datastore *ds, struct json_object *doc, const char *rel,
			    uint64_t add_bytes, struct errmsg *err)
{
	double limit = doc_limit(doc);
	char a[32], p[32], c[32];
	struct statvfs sv;
	uint64_t cap, prov;

	if (limit <= 0) {
		return 0;
	}
	if (statvfs(ds->path, &sv) < 0) {
		int ret = -errno;

		errmsg_set(err, "%s: cannot measure the file system: %s", ds->path, strerror(-ret));
		return ret;
	}
	cap = (uint64_t)sv.f_blocks * sv.f_frsize;
	prov = ds_provisioned(ds->path, doc) + add_bytes;
	if ((double)prov <= limit * (double)cap) {
		return 0;
	}
	errmsg_set(err, "datastore %s: adding %s (%s) would provision %s on %s of capacity, "
			"a ratio of %.2f, over the overcommit limit of %.2f", ds->name, rel,
		   ds_human(add_bytes, a, sizeof(a)), ds_human(prov, p, sizeof(p)),
		   ds_human(cap, c, sizeof(c)), cap ? (double)prov / (double)cap : INFINITY, limit);
	return -ENOSPC;
}

/* Creates the directories between the datastore and 'rel'. */
static int make_parents(struct ds_datastore *ds, const char *rel, struct errmsg *err)
{
	char *p = ds_join(ds->path, rel);
	int ret;

	if (!p) {
		return -ENOMEM;
	}
	ret = rpc_mkdirs_for(p);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot create its directory: %s", p, strerror(-ret));
	}
	free(p);
	return ret;
}

struct add_arg {
	const char *rel;
	const struct ds_entry_opts *opts;
	bool exists; /* the file is there already (ds_entry_add) */
};

static int do_add(struct ds_datastore *ds, struct json_object *doc, void *arg,
		  struct errmsg *err)
{
	const struct add_arg *a = arg;
	struct json_object *rec;
	struct stat st;
	char *p;
	int ret;

	if (find_rec(doc, a->rel)) {
		errmsg_set(err, "%s:%s already exists", ds->name, a->rel);
		return -EEXIST;
	}
	p = ds_join(ds->path, a->rel);
	if (!p) {
		return -ENOMEM;
	}
	ret = lstat(p, &st) == 0 ? 0 : -errno;
	free(p);
	if (a->exists && ret < 0) {
		errmsg_set(err, "%s:%s: %s", ds->name, a->rel, strerror(-ret));
		return ret;
	}
	if (!a->exists && ret == 0) {
		errmsg_set(err, "%s:%s already exists (a file no entry names)", ds->name, a->rel);
		return -EEXIST;
	}
	ret = check_overcommit(ds, doc, a->rel, a->opts->size_bytes, err);
	if (ret == 0 && !a->exists) {
		ret = make_parents(ds, a->rel, err);
	}
	if (ret < 0) {
		return ret;
	}
	rec = json_object_new_object();
	json_object_object_add(rec, "kind", json_object_new_string(ds_kind_name(a->opts->kind)));
	json_object_object_add(rec, "state",
			       json_object_new_string(a->exists ? "ready" : "incomplete"));
	json_object_object_add(rec, "created", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(rec, "size", json_object_new_int64((int64_t)a->opts->size_bytes));
	if (a->opts->origin) {
		json_object_object_add(rec, "origin", json_object_new_string(a->opts->origin));
	}
	json_object_object_add(doc_entries(doc), a->rel, rec);
	return 0;
}

/* Entry names come from ds_parse_ref(), which refuses escapes; these
 * calls may also be handed a name directly (vdiskd, tests), so the same
 * grammar is enforced here. */
static int check_rel(const char *rel, struct errmsg *err)
{
	const char *s = rel;

	if (!rel[0] || rel[0] == '/') {
		errmsg_set(err, "'%s' is not a relative path", rel);
		return -EINVAL;
	}
	while (*s) {
		size_t n = strcspn(s, "/");

		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && !strncmp(s, "..", 2)) ||
		    !strncmp(s, DS_RESERVED_PREFIX, strlen(DS_RESERVED_PREFIX))) {
			errmsg_set(err, "'%s' is not a normalised path inside a datastore", rel);
			return -EINVAL;
		}
		s += n;
		s += *s == '/';
	}
	if (rel[strlen(rel) - 1] == '/') {
		errmsg_set(err, "'%s' names a directory, not a file", rel);
		return -EINVAL;
	}
	return 0;
}

int ds_entry_begin(struct ds_datastore *ds, const char *rel, const struct ds_entry_opts *opts,
		   struct errmsg *err)
{
	struct add_arg a = {.rel = rel, .opts = opts, .exists = false};
	int ret = check_rel(rel, err);

	return ret < 0 ? ret : ds_change(ds, do_add, &a, err);
}

int ds_entry_add(struct ds_datastore *ds, const char *rel, const struct ds_entry_opts *opts,
		 struct errmsg *err)
{
	struct add_arg a = {.rel = rel, .opts = opts, .exists = true};
	int ret = check_rel(rel, err);

	return ret < 0 ? ret : ds_change(ds, do_add, &a, err);
}

static int do_commit(struct ds_datastore *ds, struct json_object *doc, void *arg,
		     struct errmsg *err)
{
	struct json_object *rec;
	int ret = need_rec(ds, doc, arg, &rec, err);

	if (ret == 0) {
		json_object_object_add(rec, "state", json_object_new_string("ready"));
	}
	return ret;
}

int ds_entry_commit(struct ds_datastore *ds, const char *rel, struct errmsg *err)
{
	return ds_change(ds, do_commit, (void *)rel, err);
}

/* (rule 3) The file goes before the entry. */
static int unlink_entry(struct ds_datastore *ds, struct json_object *doc, const char *rel,
			struct errmsg *err)
{
	char *p = ds_join(ds->path, rel);
	int ret = 0;

	if (!p) {
		return -ENOMEM;
	}
	if (unlink(p) < 0 && errno != ENOENT) {
		ret = -errno;
		errmsg_set(err, "%s: cannot delete: %s", p, strerror(-ret));
	}
	free(p);
	if (ret == 0) {
		json_object_object_del(doc_entries(doc), rel);
	}
	return ret;
}

static int do_abort(struct ds_datastore *ds, struct json_object *doc, void *arg,
		    struct errmsg *err)
{
	struct json_object *rec;
	const char *state;
	int ret = need_rec(ds, doc, arg, &rec, err);

	if (ret < 0) {
		return ret;
	}
	state = doc_str(rec, "state");
	if (state && !strcmp(state, "ready")) {
		errmsg_set(err, "%s:%s is complete: delete it instead", ds->name, (char *)arg);
		return -EINVAL;
	}
	return unlink_entry(ds, doc, arg, err);
}

int ds_entry_abort(struct ds_datastore *ds, const char *rel, struct errmsg *err)
{
	return ds_change(ds, do_abort, (void *)rel, err);
}

struct moving_arg {
	const char *rel;
	const char *target;
};

static int do_moving(struct ds_datastore *ds, struct json_object *doc, void *arg,
		     struct errmsg *err)
{
	const struct moving_arg *m = arg;
	struct json_object *rec;
	int ret = need_rec(ds, doc, m->rel, &rec, err);

	if (ret == 0 && m->target) {
		json_object_object_add(rec, "moving_to", json_object_new_string(m->target));
	} else if (ret == 0) {
		json_object_object_del(rec, "moving_to");
	}
	return ret;
}

int ds_entry_set_moving(struct ds_datastore *ds, const char *rel, const char *target,
			struct errmsg *err)
{
	struct moving_arg m = {.rel = rel, .target = target};

	return ds_change(ds, do_moving, &m, err);
}

/* Refuses with -EBUSY if images of any registered datastore use the
 * entry at host path 'path' as their backing file. */
static int refuse_clones(struct ds_datastore *ds, const char *rel, const char *what,
			 struct errmsg *err)
{
	char *p = ds_join(ds->path, rel);
	char **clones = NULL;
	int ret;

	if (!p) {
		return -ENOMEM;
	}
	ret = ds_find_clones(ds->registry, p, &clones, err);
	free(p);
	if (ret > 0) {
		errmsg_set(err, "cannot %s template %s:%s: %d clone%s use%s it (%s%s)", what,
			   ds->name, rel, ret, ret == 1 ? "" : "s", ret == 1 ? "s" : "",
			   clones[0], ret > 1 ? ", ..." : "");
		ret = -EBUSY;
	}
	ds_names_free(clones);
	return ret;
}

struct kind_arg {
	const char *rel;
	enum ds_kind kind;
};

static int do_kind(struct ds_datastore *ds, struct json_object *doc, void *arg,
		   struct errmsg *err)
{
	const struct kind_arg *k = arg;
	struct json_object *rec;
	struct ds_entry e;
	char *p;
	int ret = need_rec(ds, doc, k->rel, &rec, err);

	if (ret < 0) {
		return ret;
	}
	entry_from_json(k->rel, rec, &e);
	if (e.kind == DS_KIND_ISO || k->kind == DS_KIND_ISO || e.state != DS_STATE_READY) {
		errmsg_set(err, "%s:%s is %s %s: only a complete image can become a template",
			   ds->name, k->rel, e.state == DS_STATE_READY ? "an" : "an incomplete",
			   ds_kind_name(e.kind));
		return -EINVAL;
	}
	if (e.kind == k->kind) {
		return 1;
	}
	if (e.kind == DS_KIND_TEMPLATE) {
		ret = refuse_clones(ds, k->rel, "unmark", err);
		if (ret < 0) {
			return ret;
		}
	}
	p = ds_join(ds->path, k->rel);
	if (!p) {
		return -ENOMEM;
	}
	/* The mode keeps other writers out; the tool refuses root too. */
	if (chmod(p, k->kind == DS_KIND_TEMPLATE ? 0444 : 0644) < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot change its mode: %s", p, strerror(-ret));
	}
	free(p);
	if (ret == 0) {
		json_object_object_add(rec, "kind", json_object_new_string(ds_kind_name(k->kind)));
	}
	return ret;
}

int ds_entry_set_kind(struct ds_datastore *ds, const char *rel, enum ds_kind kind,
		      struct errmsg *err)
{
	struct kind_arg k = {.rel = rel, .kind = kind};

	return ds_change(ds, do_kind, &k, err);
}

static int do_delete(struct ds_datastore *ds, struct json_object *doc, void *arg,
		     struct errmsg *err)
{
	const char *rel = arg;
	struct json_object *rec;
	struct vd_users u;
	struct ds_entry e;
	char users[256];
	char *p;
	int ret = need_rec(ds, doc, rel, &rec, err);

	if (ret < 0) {
		return ret;
	}
	entry_from_json(rel, rec, &e);
	if (e.kind == DS_KIND_TEMPLATE) {
		ret = refuse_clones(ds, rel, "delete", err);
		if (ret < 0) {
			return ret;
		}
	}
	p = ds_join(ds->path, rel);
	if (!p) {
		return -ENOMEM;
	}
	ret = vd_image_users(p, &u, NULL);
	free(p);
	if (ret == 0 && u.in_use) {
		ds_describe_users(&u, users, sizeof(users));
		errmsg_set(err, "%s:%s is in use by %s", ds->name, rel, users);
		return -EBUSY;
	}
	return unlink_entry(ds, doc, rel, err);
}

int ds_entry_delete(struct ds_datastore *ds, const char *rel, struct errmsg *err)
{
	return ds_change(ds, do_delete, (void *)rel, err);
}

static int do_limit(struct ds_datastore *ds, struct json_object *doc, void *arg,
		    struct errmsg *err)
{
	double ratio = *(double *)arg;

	if (ratio > 0) {
		json_object_object_add(doc, "max_overcommit", json_object_new_double(ratio));
	} else {
		json_object_object_del(doc, "max_overcommit");
	}
	return 0;
}

int ds_set_max_overcommit(struct ds_datastore *ds, double ratio, struct errmsg *err)
{
	if (!(ratio >= 0) || isinf(ratio)) {
		errmsg_set(err, "the overcommit limit must be a positive number");
		return -EINVAL;
	}
	return ds_change(ds, do_limit, &ratio, err);
}
