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

/* An image vdiskd serves: info, snapshot and resize go through the daemon
 * for it instead of opening it (vdisk-serve.c). */
struct vdisk_served {
	char *ctl;		  /* the control socket that answered */
	long pid;		  /* vdiskd's process id */
	struct json_object *disk; /* its disk-list entry: image, socket, size, ... */
};

/* Whether the image 'spec' names (a path or a datastore's spelling,
 * resolved as vdisk_resolve() does with 'write') is served by the vdiskd at
 * control socket 'ctl' (NULL: $VDISKD_CTL, else the default).  The daemon
 * is asked only when the image's lock is held.  Returns 1 with 's' filled
 * (free it with vdisk_served_fini), 0 when not served (no lock held, no
 * daemon answering, or one serving other images: the caller opens the
 * image as usual and meets the lock there), or a negative errno after
 * printing why 'spec' names no file. */
int vdisk_served_lookup(const char *ctl, const char *spec, bool write, struct vdisk_served *s);
void vdisk_served_fini(struct vdisk_served *s);
/* The image as the daemon names it (borrowed from 's'). */
const char *vdisk_served_image(const struct vdisk_served *s);
/* Calls 'method' on the daemon serving 's' with 'params' (taken; NULL: an
 * empty object), to which it adds "disk".  Returns the result (the caller
 * puts it), or NULL after printing the daemon's sentence. */
struct json_object *vdisk_served_call(const struct vdisk_served *s, const char *method,
				      struct json_object *params);

/* Live migration through the daemon (vdisk migrate on a served image):
 * starts the job and follows it to its end ('progress': a line on stderr
 * when it is a terminal); --cancel, or a new --bandwidth (bytes/s, 0: no
 * limit) for the running job; --status of one image ('spec') or of all
 * ('spec' NULL).  Each returns a CLI_EXIT_* status after printing. */
int vdisk_migrate_served(const struct vdisk_served *s, const char *to, bool keep_source,
			 uint64_t bandwidth, bool progress);
int vdisk_migrate_control(const struct vdisk_served *s, bool cancel, uint64_t bandwidth);
int vdisk_migrate_status(const char *ctl, const char *spec, bool json);

/* Prints qemu-img's "Snapshot list:" table of the JSON array 'snapshots'
 * (vdisk-info.h), nothing when it is empty (vdisk-snap.c; info uses it). */
void vdisk_snapshots_print(struct json_object *snapshots);

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
/* The same for the commands that hand the image to vdiskd (serve,
 * unserve), which also takes a Ceph RBD image (rbd:POOL/IMAGE, or an image
 * of a datastore that is a Ceph pool): '*pathp' is then its rbd: name.
 * vdisk_resolve() refuses those with a sentence. */
int vdisk_resolve_served(const char *spec, bool write, char **pathp);

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

/* Ceph RBD images (vdisk-rbd.c; built with librbd).  vdisk_rbd_spec()
 * resolves 'spec' (an image of a datastore that is a Ceph pool, or
 * rbd:POOL/IMAGE): 1 with '*vs' filled, 0 for anything else, or a
 * negative errno after saying why.  The commands return an exit status. */
#ifdef VDISK_RBD
struct vrbd_spec;
int vdisk_rbd_spec(const char *spec, struct vrbd_spec *vs);
int vdisk_rbd_create(const char *spec, const struct vrbd_spec *vs, uint64_t size_bytes,
		     bool quiet);
int vdisk_rbd_info(const char *spec, const struct vrbd_spec *vs, bool json);
int vdisk_rbd_rm(const char *spec, const struct vrbd_spec *vs);
/* 'sub': create, delete, revert, list (diff is refused). */
int vdisk_rbd_snapshot(const char *sub, const char *spec, const struct vrbd_spec *vs,
		       const char *name, bool json);
/* The image's size (0 or a negative errno after saying why), and resize. */
int vdisk_rbd_size(const char *spec, const struct vrbd_spec *vs, uint64_t *sizep);
int vdisk_rbd_resize(const char *spec, const struct vrbd_spec *vs, uint64_t size_bytes,
		     bool shrink);
/* A linked clone of the protected snapshot 'parent_spec' (NAME:IMAGE@SNAP). */
int vdisk_rbd_clone(const char *spec, const struct vrbd_spec *vs, const char *parent_spec,
		    bool quiet);
int vdisk_rbd_flatten(const char *spec, const struct vrbd_spec *vs);
/* Protects snapshot IMAGE@SNAP so clones may be made of it (clear:
 * unprotects it, refused while clones use it). */
int vdisk_rbd_template(const char *spec, const struct vrbd_spec *vs, bool clear);
#endif

#endif
