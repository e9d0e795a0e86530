/* SPDX-License-Identifier: MIT */
/* internal.h: what the files of libdatastore share and callers never see:
 * the open handle, lock files, JSON reads without a lock, and the sizes
 * accounting needs.  registry.c keeps the registry, manifest.c a
 * datastore's entries, resolve.c the names of images, usage.c the figures. */
#ifndef DS_INTERNAL_H
#define DS_INTERNAL_H

#include <json-c/json.h>

#include "datastore.h"

struct ds_datastore {
	char *registry;		   /* the registry it was opened from */
	char *name;
	char *path;		   /* canonical directory */
	char *id;
	struct json_object *doc;   /* the manifest as last read */
	char **keys;		   /* entry paths in order, 'n_keys' of them */
	unsigned n_keys;
};

/* Opens (creating) 'path' and takes flock 'op' on it; returns the
 * descriptor, which releases the lock when closed, or a negative errno. */
int ds_lock_file(const char *path, int op, struct errmsg *err);

/* Reads the JSON object at 'path' without a lock: every writer replaces
 * the file by rename(2), so a reader sees one whole version.  -ENOENT when
 * missing, -EINVAL with a sentence when it is not an object. */
int ds_json_read(const char *path, struct json_object **docp, struct errmsg *err);

/* The registry as a document, {} when there is none (unlocked read). */
int ds_registry_read(const char *registry, struct json_object **docp, struct errmsg *err);
/* A datastore's id: 32 hex digits, random, into 'buf' ('size' >= 33). */
void ds_random_id(char *buf, size_t size);
/* Takes the registry's lock and reads it; returns the lock's descriptor. */
int ds_registry_lock(const char *registry, struct json_object **docp, struct errmsg *err);
/* Fills 'ref' for image 'rel' of Ceph datastore 'name' (rbd.c); 1 or a
 * negative errno. */
int ds_rbd_ref(const char *registry, const char *spec, const char *name, const struct ds_rbd *rbd,
	       const char *rel, struct ds_ref *ref, struct errmsg *err);
/* The member "datastores" of a registry document (created if missing). */
struct json_object *ds_registry_stores(struct json_object *doc);

/* "DIR/" DS_MANIFEST_FILE and "DIR/" DS_LOCK_FILE, new strings. */
char *ds_manifest_path(const char *dir);
char *ds_lock_path(const char *dir);
/* 'ds->path' + "/" + 'rel', a new string. */
char *ds_join(const char *dir, const char *rel);

/* The virtual size of the file 'path' holding an entry of 'kind'. */
int ds_file_size(const char *path, enum ds_kind kind, uint64_t *sizep);
/* Sum of the virtual sizes of the entries of manifest 'doc' of datastore
 * 'dir' (an incomplete entry or unreadable file counts its recorded size). */
uint64_t ds_provisioned(const char *dir, struct json_object *doc);
/* Names the processes in 'u' ("vdiskd (pid 12)") into 'buf'. */
struct vd_users;
void ds_describe_users(const struct vd_users *u, char *buf, size_t size);
/* qemu-img's human sizes ("1.5 GiB"), for sentences. */
char *ds_human(uint64_t bytes, char *buf, size_t size);

/* A change to the manifest 'doc' (rule 1 of manifest.c); may act on files
 * too, since it runs under the lock.  Returns 0 to save 'doc', 1 to leave
 * the manifest as it is, or a negative errno. */
typedef int (*ds_change_fn)(struct ds_datastore *ds, struct json_object *doc, void *arg,
			    struct errmsg *err);
/* Runs 'fn' on a fresh read of the manifest under its exclusive lock and
 * saves the result atomically; the handle then holds the new manifest. */
int ds_change(struct ds_datastore *ds, ds_change_fn fn, void *arg, struct errmsg *err);

int ds_kind_parse(const char *name, enum ds_kind *kindp);

#endif
