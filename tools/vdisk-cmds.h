/* SPDX-License-Identifier: MIT */
/* vdisk-cmds.h: the subcommands of the vdisk tool.  vdisk.c picks one by
 * name and hands it the rest of the command line, argv[0] being the
 * command's name; each returns the process exit status.  Those that change
 * an image's snapshots or chain live in vdisk-snap.c, those on datastores
 * in vdisk-ds.c, the rest in vdisk-cmds.c. */
#ifndef VDISK_CMDS_H
#define VDISK_CMDS_H

#include <stdbool.h>
#include <stdint.h>

#include "errmsg.h"

struct json_object;
struct vd_image;

int vdisk_cmd_create(int argc, char **argv);
int vdisk_cmd_info(int argc, char **argv);
int vdisk_cmd_map(int argc, char **argv);
int vdisk_cmd_check(int argc, char **argv);
int vdisk_cmd_convert(int argc, char **argv);
int vdisk_cmd_io(int argc, char **argv);
int vdisk_cmd_bench(int argc, char **argv);
int vdisk_cmd_snapshot(int argc, char **argv);
int vdisk_cmd_commit(int argc, char **argv);
int vdisk_cmd_rebase(int argc, char **argv);
int vdisk_cmd_flatten(int argc, char **argv);
int vdisk_cmd_resize(int argc, char **argv);
int vdisk_cmd_datastore(int argc, char **argv);
int vdisk_cmd_ls(int argc, char **argv);
int vdisk_cmd_import(int argc, char **argv);
int vdisk_cmd_export(int argc, char **argv);
int vdisk_cmd_rm(int argc, char **argv);
int vdisk_cmd_template(int argc, char **argv);
int vdisk_cmd_migrate(int argc, char **argv);
/* vdisk-serve.c: clients of vdiskd's control socket. */
int vdisk_cmd_serve(int argc, char **argv);
int vdisk_cmd_unserve(int argc, char **argv);
int vdisk_cmd_ps(int argc, char **argv);

/* Shared by info and snapshot list (vdisk-snap.c).  Each returns 0, or a
 * negative errno with a sentence naming 'path' in 'err' (NULL allowed). */

/* Prints qemu-img's "Snapshot list:" table of 'img', nothing if it has no
 * snapshots. */
int vdisk_snapshots_print(struct vd_image *img, const char *path, struct errmsg *err);
/* Stores in '*arrayp' a new JSON array with one object per snapshot; the
 * caller puts it. */
int vdisk_snapshots_json(struct vd_image *img, const char *path, struct json_object **arrayp,
			 struct errmsg *err);

/* For create -b without a size: the virtual size of 'backing' as the new
 * image 'path' will see it (a relative name is taken from the directory of
 * 'path').  Prints nothing; on failure vd_create() will explain. */
int vdisk_backing_size(const char *path, const char *backing, uint64_t *sizep);

/* Opens 'path' with vd_open 'flags'; on failure prints one `vdisk:` line
 * naming the file and returns the negative errno. */
int vdisk_open_image(const char *path, unsigned flags, struct vd_image **imgp);

/* Names of files (vdisk-ds.c).  Every command that takes an image path
 * also takes a datastore's "NAME:rel" and "[NAME] rel". */

/* Stores in '*pathp' (a new string) the host path 'spec' names.  With
 * 'write', a datastore's template is refused.  On failure prints one
 * `vdisk:` line and returns a negative errno. */
int vdisk_resolve(const char *spec, bool write, char **pathp);

/* What create -b stores as the backing name for image 'image_spec':
 * 'backing_spec' itself when it is a host path; a datastore spelling
 * becomes a path relative to the image's directory when both are in one
 * datastore, else the host path.  A new string in '*namep'. */
int vdisk_backing_name(const char *image_spec, const char *backing_spec, char **namep);

/* A file a command is about to create.  In a datastore (by its spelling or
 * a host path inside one) it is registered: incomplete at begin, after the
 * overcommit check, and ready or gone at end. */
struct ds_datastore;
struct vdisk_target {
	char *path; /* where to create it */
	struct ds_datastore *ds; /* NULL: not in a datastore */
	char *rel;
	bool iso;
};

/* 'iso': a raw file (an ISO image) rather than a vdisk image.  Prints one
 * line and returns a negative errno when refused. */
int vdisk_target_begin(const char *spec, bool iso, uint64_t size_bytes, struct vdisk_target *t);
/* Commits ('ok') or aborts (deleting the file) the entry, and frees 't'. */
int vdisk_target_end(struct vdisk_target *t, bool ok);

#endif
