/* SPDX-License-Identifier: MIT */
/* datastore.h: datastores, named storage containers for images.
 *
 * A datastore is a directory on a local or shared file system holding a
 * manifest (DS_MANIFEST_FILE): its name, id, optional overcommit limit and
 * one entry per image, template or ISO it holds.  A registry file (one per
 * host, DS_REGISTRY_DEFAULT or $VDISK_DATASTORES) maps names to
 * directories.  Images are named "NAME:relative/path" or, as VMware spells
 * it, "[NAME] relative/path"; a relative path never leaves its directory.
 *
 * Every change to a manifest or the registry is a read-modify-write under
 * an exclusive flock(2) on a lock file beside it, written with
 * rpc_store_save(): two processes changing one datastore never lose an
 * entry, and a crash leaves the old manifest or the new one
 * (docs/datastores.md has the argument).  Lock order: the registry before
 * a manifest, never the reverse.
 *
 * Adding an image is three steps, so a copy that fails or crashes half way
 * leaves no entry that looks complete, and so a migration can move an
 * image between datastores: ds_entry_begin() records it "incomplete" after
 * checking the overcommit limit; the caller fills the file; then
 * ds_entry_commit() marks it ready (the one atomic switch) or
 * ds_entry_abort() removes the file and the entry.
 *
 * Conventions: functions return 0 (or a count) or a negative errno and
 * never print; calls a user must understand leave one sentence in 'err'
 * (NULL allowed).  Calls that take a 'registry' path accept NULL for
 * ds_registry_path().  Every call may block on file locks and disk I/O: not
 * for an event loop.  A handle is used from one thread at a time. */
#ifndef DATASTORE_H
#define DATASTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

#define DS_REGISTRY_DEFAULT "/var/lib/vdisk/datastores.json"
#define DS_REGISTRY_ENV "VDISK_DATASTORES"
/* In the datastore's directory; names starting with DS_RESERVED_PREFIX are
 * the datastore's own and cannot be images. */
#define DS_MANIFEST_FILE ".vdisk-datastore.json"
#define DS_LOCK_FILE ".vdisk-datastore.lock"
#define DS_RESERVED_PREFIX ".vdisk-datastore"
/* Letters, digits, '.', '_' and '-', starting with a letter or digit; not
 * "rbd", which names Ceph images (rbd:POOL/IMAGE). */
#define DS_NAME_MAX_LEN 64

enum ds_kind {
	DS_KIND_IMAGE,	  /* a vdisk image */
	DS_KIND_TEMPLATE, /* a read-only vdisk image, a base for linked clones */
	DS_KIND_ISO,	  /* a raw read-only file (CD image) */
};

enum ds_state {
	DS_STATE_READY,
	DS_STATE_INCOMPLETE, /* being created, imported or migrated in */
};

/* "image", "template", "iso"; "ready", "incomplete". */
const char *ds_kind_name(enum ds_kind kind);
const char *ds_state_name(enum ds_state state);

/* $VDISK_DATASTORES when set and not empty, else DS_REGISTRY_DEFAULT. */
const char *ds_registry_path(void);
bool ds_name_valid(const char *name);

/* ----------------------------------------------------------- registry */

struct ds_create_opts {
	/* Largest provisioned / capacity ratio allowed; 0 = no limit. */
	double max_overcommit;
};

void ds_create_opts_init(struct ds_create_opts *opts);

/* Registers datastore 'name' at directory 'path' (created if missing,
 * stored as an absolute path) and writes its manifest.  A directory that
 * already holds a manifest of the same name (a shared file system another
 * host registered) is adopted as it is; one of another name is refused
 * with -EEXIST, as are a taken name and a directory already registered. */
int ds_create(const char *registry, const char *name, const char *path,
	      const struct ds_create_opts *opts, struct errmsg *err);

#define DS_REMOVE_FORCE 0x1	   /* even while it holds entries */
#define DS_REMOVE_DELETE_FILES 0x2 /* also delete its images and manifest */

/* Unregisters 'name'.  Refused with -ENOTEMPTY while it holds entries,
 * unless DS_REMOVE_FORCE.  Files are left alone (the manifest too, so it
 * can be registered again) unless DS_REMOVE_DELETE_FILES, which deletes
 * every entry's file, the manifest and lock file, and the directory if it
 * is then empty; an image in use refuses it all with -EBUSY. */
int ds_remove(const char *registry, const char *name, unsigned flags, struct errmsg *err);

/* Stores in '*namesp' a new NULL-terminated array of the registered names,
 * sorted; free it with ds_names_free().  A missing registry is empty. */
int ds_list(const char *registry, char ***namesp, struct errmsg *err);
void ds_names_free(char **names);

/* ----------------------------------------------------- one datastore */

struct ds_datastore; /* opaque */

/* Opens datastore 'name' and reads its manifest.  -ENOENT: no such name;
 * -ESTALE: its directory holds no manifest or one of another name. */
int ds_open(const char *registry, const char *name, struct ds_datastore **dsp,
	    struct errmsg *err);
void ds_close(struct ds_datastore *ds);

/* Borrowed until ds_close(). */
const char *ds_name(const struct ds_datastore *ds);
const char *ds_path(const struct ds_datastore *ds); /* canonical, absolute */
const char *ds_id(const struct ds_datastore *ds);
/* 0: no limit. */
double ds_max_overcommit(const struct ds_datastore *ds);
/* Changes the limit (0: none).  Allowed even below what is provisioned:
 * it refuses only what would add more. */
int ds_set_max_overcommit(struct ds_datastore *ds, double ratio, struct errmsg *err);

/* Reads the manifest again (other processes may have changed it). */
int ds_refresh(struct ds_datastore *ds, struct errmsg *err);

struct ds_entry {
	const char *path; /* relative to the datastore; borrowed until the
			   * next call on the handle */
	enum ds_kind kind;
	enum ds_state state;
	int64_t created_s;     /* CLOCK_REALTIME seconds */
	uint64_t size_bytes;   /* virtual size when recorded */
	const char *origin;    /* where it came from (migration), or NULL */
	const char *moving_to; /* set by ds_entry_set_moving(), or NULL */
};

/* Entries in path order, as of the last read of the manifest. */
unsigned ds_entry_count(const struct ds_datastore *ds);
int ds_entry_get(const struct ds_datastore *ds, unsigned index, struct ds_entry *entry);
/* -ENOENT when 'rel' is not an entry. */
int ds_entry_find(const struct ds_datastore *ds, const char *rel, struct ds_entry *entry);

/* ------------------------------------------------ names of images */

/* An image named inside a datastore. */
struct ds_ref {
	char *name; /* the datastore */
	char *rel;  /* normalised: no "." or empty components */
	char *path; /* absolute host path, or for a Ceph pool the image's
		     * rbd:POOL/IMAGE:conf=FILE:id=USER name (vrbd.h) */
	bool rbd;   /* the datastore is a Ceph pool */
};

void ds_ref_fini(struct ds_ref *ref);

/* Parses 'spec'.  "NAME:rel" and "[NAME] rel" name an image of a
 * registered datastore: returns 1 with 'ref' filled (free it with
 * ds_ref_fini).  Anything else is a host path: returns 0, 'ref' zeroed;
 * so is "a:b" when no datastore is called "a" but a file "a:b" exists
 * (else -ENOENT: no such datastore).  Refused with -EINVAL: an empty or
 * absolute relative path, a ".." component, a name starting with
 * DS_RESERVED_PREFIX; with -EXDEV: a symbolic link on the way that points
 * outside the datastore's directory.  The image need not exist. */
int ds_parse_ref(const char *registry, const char *spec, struct ds_ref *ref,
		 struct errmsg *err);

/* For callers that only want a host path (vdiskd's disk-add): stores in
 * '*pathp' a new string, the resolved path of a datastore spelling or a
 * copy of any other 'spec'.  Refusals as ds_parse_ref(). */
int ds_resolve(const char *registry, const char *spec, char **pathp, struct errmsg *err);

/* Splits a migration's destination "NAME[:PATH]" into new strings: the
 * datastore's name and the path in it ('*relp' NULL when there is none or
 * it is empty: the source's own).  Checked later, as any name. */
int ds_split_target(const char *to, char **namep, char **relp);
/* The reverse: if the host path 'path' (which must exist) lies inside a
 * registered datastore, returns 1 with 'ref' filled; else 0. */
int ds_locate(const char *registry, const char *path, struct ds_ref *ref, struct errmsg *err);

/* The path from the directory of 'from' to 'to', both normalised paths
 * relative to one datastore: "vms/c.vd" to "tpl/t.vd" is "../tpl/t.vd", as
 * vdisk create -b stores a backing file of the same datastore (so the
 * datastore can be mounted elsewhere).  A new string, or NULL (ENOMEM). */
char *ds_relative_path(const char *from, const char *to);

/* ------------------------------------------------ Ceph RBD datastores */

/* A datastore may be a Ceph pool instead of a directory: its images are the
 * pool's RBD images ("NAME:image" resolves to the rbd: name vdiskd serves),
 * the pool itself is the inventory (no manifest), and the cluster is
 * reached with the configuration file and user recorded at create.  The
 * calls above that work on a directory's manifest (ds_open and what takes
 * its handle) refuse such a datastore with -EMEDIUMTYPE and a sentence.
 * Without librbd at build time every call here fails with -ENOTSUP. */
struct ds_rbd {
	char pool[128];
	char conf[4096]; /* "": Ceph's default search path */
	char id[128];	 /* "": admin */
};

/* Registers datastore 'name' as pool 'rbd->pool', after connecting to the
 * cluster and finding the pool (so a typo is refused now, not at first
 * use).  Refusals as ds_create() for the name. */
int ds_create_rbd(const char *registry, const char *name, const struct ds_rbd *rbd,
		  struct errmsg *err);
/* 1 with '*rbd' filled when 'name' is a Ceph pool, 0 for a directory,
 * -ENOENT when there is no such datastore. */
int ds_get_rbd(const char *registry, const char *name, struct ds_rbd *rbd, struct errmsg *err);

struct ds_rbd_image {
	char *name;
	uint64_t size_bytes;
	uint64_t allocated_bytes; /* its own objects holding data */
	char *parent;		  /* "pool/image@snap" it is a clone of, or NULL */
	char **snapshots;	  /* names, oldest first */
	bool *protected_snaps;	  /* per snapshot: clones may be made of it */
	unsigned n_snapshots;
	/* The clients watching it ("client.4123 at 127.0.0.1:0/2051"), "" when
	 * none: a server or QEMU has it open. */
	char users[256];
	bool in_use;
};

struct ds_usage;
/* The pool's images by name, in '*imgsp' (free with ds_rbd_images_free);
 * 'usage' (NULL allowed) gets provisioned (sum of sizes) and allocated
 * bytes, counts, and the capacity and free space the cluster reports
 * (0 when it reports none: a cluster without a manager daemon). */
int ds_rbd_images(const char *registry, const char *name, struct ds_rbd_image **imgsp,
		  unsigned *np, struct ds_usage *usage, struct errmsg *err);
void ds_rbd_images_free(struct ds_rbd_image *imgs, unsigned n);

/* --------------------------------------------------- changing entries */

struct ds_entry_opts {
	enum ds_kind kind;
	uint64_t size_bytes;   /* the virtual size it will have */
	const char *origin;    /* NULL: none */
};

void ds_entry_opts_init(struct ds_entry_opts *opts);

/* Records 'rel' as incomplete, creating missing directories on its way.
 * -EEXIST if it is an entry or its file exists; -ENOSPC with a sentence
 * naming provisioned, capacity and the limit if its size would pass the
 * overcommit limit. */
int ds_entry_begin(struct ds_datastore *ds, const char *rel, const struct ds_entry_opts *opts,
		   struct errmsg *err);
/* Marks an incomplete 'rel' ready: from here on it is in the inventory. */
int ds_entry_commit(struct ds_datastore *ds, const char *rel, struct errmsg *err);
/* Deletes the file of an incomplete 'rel' and its entry. */
int ds_entry_abort(struct ds_datastore *ds, const char *rel, struct errmsg *err);
/* Registers the existing file 'rel' as ready, overcommit checked (for
 * images made in the directory by other means). */
int ds_entry_add(struct ds_datastore *ds, const char *rel, const struct ds_entry_opts *opts,
		 struct errmsg *err);
/* For migration: records that 'rel' is being moved to 'target' (NULL:
 * no longer).  The entry stays authoritative until the destination's
 * ds_entry_commit(); a recovery that finds the target ready removes it. */
int ds_entry_set_moving(struct ds_datastore *ds, const char *rel, const char *target,
			struct errmsg *err);

/* Makes image 'rel' a template (file mode 0444) or, with DS_KIND_IMAGE, an
 * image again (0644), which is refused with -EBUSY while clones use it. */
int ds_entry_set_kind(struct ds_datastore *ds, const char *rel, enum ds_kind kind,
		      struct errmsg *err);

/* Deletes the file of entry 'rel' and the entry.  Refused with -EBUSY
 * while a process has it open, or while it is a template that images in
 * any registered datastore use as their backing file. */
int ds_entry_delete(struct ds_datastore *ds, const char *rel, struct errmsg *err);

/* ---------------------------------------------------------- accounting */

struct ds_usage {
	uint64_t capacity_bytes;    /* of the file system */
	uint64_t free_bytes;	    /* available to this user */
	uint64_t provisioned_bytes; /* sum of the entries' virtual sizes */
	uint64_t allocated_bytes;   /* sum of the host space their files use */
	double overcommit;	    /* provisioned / capacity */
	unsigned n_images, n_templates, n_isos, n_incomplete;
};

/* Measures the datastore now (opens every image for its virtual size). */
int ds_get_usage(struct ds_datastore *ds, struct ds_usage *usage, struct errmsg *err);

#define DS_CHAIN_MAX 16

struct ds_image_info {
	uint64_t size_bytes;	  /* virtual */
	uint64_t allocated_bytes; /* host space of the file */
	/* The backing files below it, nearest first, as host paths (new
	 * strings); chain_len <= DS_CHAIN_MAX. */
	char *chain[DS_CHAIN_MAX];
	unsigned chain_len;
	char **snapshots; /* names, new strings */
	unsigned n_snapshots;
	/* "vdiskd (pid 12), vdisk (pid 40)", "another host or process", or ""
	 * when not in use. */
	char users[256];
	bool in_use;
};

/* Describes entry 'rel' by reading its file (never writing, never
 * locking).  Free with ds_image_info_fini(). */
int ds_image_info(struct ds_datastore *ds, const char *rel, struct ds_image_info *info,
		  struct errmsg *err);
void ds_image_info_fini(struct ds_image_info *info);

/* Stores in '*clonesp' a new NULL-terminated array of "NAME:rel" for
 * every image in a registered datastore whose backing file is the host
 * path 'path'; free it with ds_names_free(). */
int ds_find_clones(const char *registry, const char *path, char ***clonesp, struct errmsg *err);

/* ---------------------------------------------------------- migration */

/* Cold migration: moves an image no one has open from one datastore to
 * another (docs/datastores.md, "Migration", has the protocol and the
 * crash argument).  The file is copied sparse (only its data extents), so
 * snapshots keep sharing their clusters and the destination's allocation
 * is the source's; the copy is fsynced, compared byte for byte, made
 * clean, checked (vd_check), and its disk and each snapshot compared with
 * the source's, guest byte for guest byte, before one manifest rename
 * makes it the image.  Until that switch the source
 * is the image and a crash leaves an incomplete destination entry, which
 * the next ds_migrate() of the source removes before copying again; after
 * it the destination is, and the next run only removes the source. */

enum ds_migrate_step {
	DS_MIGRATE_COPY,   /* a file is being copied: done/total in bytes */
	DS_MIGRATE_VERIFY, /* the copy is complete and durable: checking it */
	DS_MIGRATE_SWITCH, /* verified: about to make it the image */
	DS_MIGRATE_REMOVE, /* switched: about to remove (or release) the source */
};

/* "copy", "verify", "switch", "remove". */
const char *ds_migrate_step_name(enum ds_migrate_step step);

/* Called from the migrating thread: at least once per step, and as the
 * copy of each file ('what': "NAME:rel" of its source) advances. */
typedef void (*ds_migrate_progress_fn)(void *arg, enum ds_migrate_step step, const char *what,
				       uint64_t done_bytes, uint64_t total_bytes);

struct ds_migrate_opts {
	/* Leave the source as an independent image instead of deleting it. */
	bool keep_source;
	/* Copy the backing chain too (each template to the same relative
	 * path in the destination, reused there if an earlier migration put
	 * it there) and point the image at the copies.  Without it a backing
	 * file stays where it is and stays referenced; a relative reference
	 * the new location would break is rewritten. */
	bool with_backing;
	ds_migrate_progress_fn progress; /* NULL: none */
	void *progress_arg;
};

void ds_migrate_opts_init(struct ds_migrate_opts *opts);

#define DS_MIGRATE_CLEANED 0x1	/* removed a partial copy an earlier run left */
#define DS_MIGRATE_FINISHED 0x2 /* an earlier run had switched: only finished it */

struct ds_migrate_result {
	unsigned recovered;	     /* DS_MIGRATE_CLEANED, DS_MIGRATE_FINISHED */
	char *dest;		     /* "NAME:rel" now in charge; new string */
	uint64_t copied_bytes;	     /* data bytes copied, backing files included */
	unsigned n_backing_copied;   /* backing files copied (with_backing) */
	unsigned n_backing_reused;   /* found already copied in the destination */
};

void ds_migrate_result_fini(struct ds_migrate_result *res);

/* Moves image or template 'src_rel' of datastore 'src_name' to 'dst_rel'
 * (NULL: the same relative path) of datastore 'dst_name'.  The source is
 * held open (read-write, so no one else can open it; a template read-only,
 * which keeps writers out) from before the first check to its removal.
 * Refused: an image in use (-EBUSY, naming the users: a served image needs
 * live migration), a template that clones use (-EBUSY), an ISO
 * (-EOPNOTSUPP), an incomplete entry (-EINVAL), an existing destination
 * (-EEXIST), a destination over its overcommit limit (-ENOSPC).  A copy
 * that fails (-ENOSPC on a full file system, -EIO) or does not verify
 * (-EUCLEAN) leaves the source in charge and nothing in the destination
 * (with 'with_backing', backing files already copied stay there, ready,
 * to be reused).  Blocks for the whole copy: for tools and job threads. */
int ds_migrate(const char *registry, const char *src_name, const char *src_rel,
	       const char *dst_name, const char *dst_rel, const struct ds_migrate_opts *opts,
	       struct ds_migrate_result *res, struct errmsg *err);

/* Live migration (vdiskd's): the same protocol, with the copy (and the
 * mirroring of the guest's writes) left to the caller, which holds the
 * source open read-write for the whole job (its lock keeps every other
 * migration and writer out).  In order: ds_live_begin() (steps 1 and 2:
 * after cleaning up what an earlier run left, 'moving_to' on the source
 * and the destination's incomplete entry); the caller creates the image at
 * ds_live_dest_path(), storing ds_live_dest_backing() as its backing
 * reference, and fills it; ds_live_switch() (step 4: from here on the
 * destination is the image) or ds_live_abandon() (the destination's file
 * and entry deleted, the source in charge); ds_live_finish() after the
 * switch (step 5: the source deleted, or released with keep_source).  The
 * handle is freed with ds_live_free() at any point; a job that is never
 * switched nor abandoned (a crash) is cleaned up by the next begin. */
struct ds_live; /* opaque */
/* 'src_path': the source's host path, an image of a datastore; 'backing':
 * the backing reference it stores (NULL: none).  -ESTALE, with a
 * sentence, when an earlier run had switched (the copy is the image);
 * refusals otherwise as ds_migrate(). */
int ds_live_begin(const char *registry, const char *src_path, const char *backing,
		  const char *dst_name, const char *dst_rel, const struct ds_migrate_opts *opts,
		  struct ds_live **lp, struct errmsg *err);
/* "NAME:rel" of each side, the destination's host path, and the backing
 * reference it must store (NULL: none); borrowed from the handle. */
const char *ds_live_src_spec(const struct ds_live *l);
const char *ds_live_dest_spec(const struct ds_live *l);
const char *ds_live_dest_path(const struct ds_live *l);
const char *ds_live_dest_backing(const struct ds_live *l);
int ds_live_switch(struct ds_live *l, struct errmsg *err);
int ds_live_finish(struct ds_live *l, struct errmsg *err);
/* Before the switch only (a no-op after it); close the destination first. */
int ds_live_abandon(struct ds_live *l, struct errmsg *err);
void ds_live_free(struct ds_live *l);
/* For a server restarting after a crash: when the image at host path
 * 'path' was switched away from (its entry moves to a ready copy whose
 * origin it is), returns 1 with the copy's host path in '*nextp' (a new
 * string); 0 when 'path' is still the image (or in no datastore). */
int ds_successor(const char *registry, const char *path, char **nextp, struct errmsg *err);
/* Whether entry 'rel' of 'ds' is still the image, for whoever would open
 * it to write (vdisk's commands, vdiskd's disk-add): -ESTALE, with a
 * sentence, once a migration has switched to its copy (moving_to names a
 * ready entry whose origin is this one) and only the source's removal is
 * left; also when the datastore moving_to names cannot be read, since
 * the copy may then be the image.  0 otherwise: a migration in progress
 * holds the image's lock, and one a crash stopped before the switch left
 * the source in charge. */
int ds_entry_in_charge(struct ds_datastore *ds, const char *rel, struct errmsg *err);

/* Whether the host path 'path' may be opened to write, as far as the
 * datastores know (the vdisk tool's writers, vdiskd's read-write
 * disk-add): -EROFS, with a sentence naming it, for a datastore's template
 * (clones may read it); ds_entry_in_charge()'s refusal for the old copy of
 * a switched migration; 0 for anything else, a path in no datastore or in
 * one that cannot be read included (the open then says what matters). */
int ds_check_writable(const char *registry, const char *path, struct errmsg *err);

#endif
