/* SPDX-License-Identifier: MIT */
/* vdiskd-rpc.c: the methods of docs/vdiskd-rpc.md.  Each checks its
 * parameters, calls the server (vdiskd.h) and builds its result; the
 * server's sentence and errno become the JSON-RPC error. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datastore.h"
#include "vdiskd.h"

#define SRV(c) vdd_of_ctx(rpc_call_ctx(c))

/* The disk named by the "disk" parameter (its image or socket path). */
static int get_disk(struct rpc_call *c, struct vdd_disk **dp)
{
	const char *name;
	int ret = rpc_get_str(c, "disk", true, &name);

	if (ret < 0) {
		return ret;
	}
	*dp = vdd_disk_find(SRV(c), name);
	if (!*dp) {
		errmsg_set(rpc_call_err(c), "%s is not served by this vdiskd", name);
		return -ENOENT;
	}
	return 0;
}

static void add_str(struct json_object *o, const char *key, const char *val)
{
	json_object_object_add(o, key, val ? json_object_new_string(val) : NULL);
}

static void add_u64(struct json_object *o, const char *key, uint64_t val)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)val));
}

/* The "image" parameter as a host path (a new string in '*pathp'): an
 * absolute path, or a datastore's "NAME:rel" or "[NAME] rel" resolved with
 * this daemon's registry ($VDISK_DATASTORES, else the default), the
 * spellings every tool takes; or a Ceph RBD image, rbd:POOL/IMAGE (vrbd.h),
 * as it is. */
static int get_image(struct rpc_call *c, char **pathp)
{
	const char *spec;
	char *path;
	int ret = rpc_get_str(c, "image", true, &spec);

	if (ret < 0) {
		return ret;
	}
	if (strncmp(spec, "rbd:", 4) == 0) {
		/* A Ceph RBD image: the back end checks the name. */
		*pathp = strdup(spec);
		return *pathp ? 0 : -ENOMEM;
	}
	ret = ds_resolve(NULL, spec, &path, rpc_call_err(c));
	if (ret < 0) {
		/* A bad spelling or an unknown datastore is the caller's. */
		return ret == -ENOMEM ? ret : -EINVAL;
	}
	if (!strncmp(path, "rbd:", 4)) {
		*pathp = path; /* an image of a datastore that is a Ceph pool */
		return 0;
	}
	if (path[0] != '/' || strlen(path) >= PATH_MAX) {
		errmsg_set(rpc_call_err(c),
			   "parameter 'image' must be an absolute path or NAME:path, not '%s'",
			   spec);
		free(path);
		return -EINVAL;
	}
	*pathp = path;
	return 0;
}

static int m_disk_add(struct rpc_call *c)
{
	struct vdd_disk_opts o = {0};
	uint64_t queues = 1;
	char *image = NULL;
	bool ro = false, vmap = false;
	int ret;

	if ((ret = get_image(c, &image)) < 0 ||
	    (ret = rpc_get_path(c, "socket", true, 0, &o.socket)) < 0 ||
	    (ret = rpc_get_str(c, "format", false, &o.format)) < 0 ||
	    (ret = rpc_get_str(c, "serial", false, &o.serial)) < 0 ||
	    (ret = rpc_get_str(c, "cache", false, &o.cache)) < 0 ||
	    (ret = rpc_get_bool(c, "read-only", &ro)) < 0 ||
	    (ret = rpc_get_bool(c, "volatile-map", &vmap)) < 0 ||
	    (ret = rpc_get_uint(c, "queues", 1, VDD_MAX_QUEUES, &queues)) < 0) {
		goto out;
	}
	o.image = image;
	o.read_only = ro;
	o.volatile_map = vmap;
	o.queues = (unsigned)queues;
	/* A datastore's template (clones read it) or the old copy of a
	 * switched migration is served read-only or not at all. */
	ret = ro || strncmp(image, "rbd:", 4) == 0 ? 0 : ds_check_writable(NULL, image, rpc_call_err(c));
	if (ret == -ESTALE) {
		char *next = NULL;

		/* A live migration switched to its copy and vdiskd died before
		 * it saved so: the datastore names the image in charge. */
		if (ds_successor(NULL, image, &next, NULL) == 1) {
			vdd_log("%s was migrated to %s before a restart: serving that", image, next);
			free(image);
			image = next;
			o.image = image;
			ret = 0;
		}
	}
	if (ret == 0) {
		ret = vdd_disk_add(SRV(c), &o, rpc_call_err(c));
	}
	if (ret < 0) {
		goto out;
	}
	add_str(rpc_call_result(c), "image", o.image);
	add_str(rpc_call_result(c), "socket", o.socket);
	rpc_call_set_changed(c);
out:
	free(image);
	return ret;
}

static int m_disk_remove(struct rpc_call *c)
{
	const char *name;
	bool force = false;
	int ret;

	if ((ret = rpc_get_str(c, "disk", true, &name)) < 0 ||
	    (ret = rpc_get_bool(c, "force", &force)) < 0) {
		return ret;
	}
	ret = vdd_disk_remove(SRV(c), name, force, rpc_call_err(c));
	if (ret == 0) {
		rpc_call_set_changed(c);
	}
	return ret;
}

static struct json_object *disk_json(struct vdd_disk *d)
{
	struct json_object *o = json_object_new_object(), *qs = json_object_new_array();
	struct vdd_disk_info i;

	vdd_disk_get_info(d, &i);
	add_str(o, "image", i.image);
	add_str(o, "socket", i.socket);
	add_str(o, "format", i.format);
	add_str(o, "cache", i.cache);
	add_str(o, "serial", i.serial);
	json_object_object_add(o, "read-only", json_object_new_boolean(i.read_only));
	json_object_object_add(o, "volatile-map",
			       json_object_new_boolean(vdd_disk_opts(d)->volatile_map));
	add_str(o, "state", i.held ? "held" : i.connected ? "connected" : "waiting");
	json_object_object_add(o, "connected", json_object_new_boolean(i.connected));
	add_str(o, "virtqueues", i.virtqueues);
	json_object_object_add(o, "event-idx", json_object_new_boolean(i.event_idx));
	add_u64(o, "queues", i.queues);
	add_u64(o, "active-queues", i.active_queues);
	add_u64(o, "size", i.size_bytes);
	add_u64(o, "allocated", i.allocated_bytes);
	add_u64(o, "bytes-read", i.bytes_read);
	add_u64(o, "bytes-written", i.bytes_written);
	add_u64(o, "inflight", i.inflight);
	add_u64(o, "held", i.held);
	add_str(o, "held-reason", i.held ? strerror(i.held_errno) : NULL);
	for (unsigned q = 0; q < i.queues; q++) {
		json_object_array_add(qs, json_object_new_int64((int64_t)i.queue_requests[q]));
	}
	json_object_object_add(o, "queue-requests", qs);
	return o;
}

static int m_disk_list(struct rpc_call *c)
{
	struct json_object *list = json_object_new_array();
	struct vdd_disk *d;
	const char *name;
	int ret = rpc_get_str(c, "disk", false, &name);

	if (ret < 0) {
		json_object_put(list);
		return ret;
	}
	for (d = vdd_disk_next(SRV(c), NULL); d; d = vdd_disk_next(SRV(c), d)) {
		const struct vdd_disk_opts *o = vdd_disk_opts(d);

		if (!name || strcmp(name, o->image) == 0 || strcmp(name, o->socket) == 0) {
			json_object_array_add(list, disk_json(d));
		}
	}
	json_object_object_add(rpc_call_result(c), "disks", list);
	return 0;
}

static int m_disk_stats(struct rpc_call *c)
{
	struct vdd_op_stats st[VDD_N_OPS];
	struct json_object *ops = json_object_new_object();
	struct vdd_disk *d;
	int ret = get_disk(c, &d);

	if (ret < 0) {
		json_object_put(ops);
		return ret;
	}
	vdd_disk_get_stats(d, st);
	for (int op = 0; op < VDD_N_OPS; op++) {
		struct json_object *o = json_object_new_object(), *h = json_object_new_array();

		add_u64(o, "requests", st[op].requests);
		add_u64(o, "bytes", st[op].bytes);
		add_u64(o, "errors", st[op].errors);
		add_u64(o, "latency-us-avg",
			st[op].requests ? st[op].latency_us_total / st[op].requests : 0);
		/* Bucket i: requests that took less than 2^i us ("lt-us");
		 * only the non-empty ones. */
		for (int b = 0; b < VDD_LAT_BUCKETS; b++) {
			struct json_object *e;

			if (!st[op].latency[b]) {
				continue;
			}
			e = json_object_new_object();
			if (b < VDD_LAT_BUCKETS - 1) {
				add_u64(e, "lt-us", 1ull << b);
			} else {
				json_object_object_add(e, "lt-us", NULL);
			}
			add_u64(e, "count", st[op].latency[b]);
			json_object_array_add(h, e);
		}
		json_object_object_add(o, "latency-histogram", h);
		json_object_object_add(ops, vdd_op_name(op), o);
	}
	add_str(rpc_call_result(c), "image", vdd_disk_opts(d)->image);
	json_object_object_add(rpc_call_result(c), "ops", ops);
	return 0;
}

static int m_disk_info(struct rpc_call *c)
{
	struct json_object *o, *result = rpc_call_result(c);
	struct vdd_disk *d;
	int ret = get_disk(c, &d);

	if (ret < 0 || (ret = vdd_disk_describe(d, &o, rpc_call_err(c))) < 0) {
		return ret;
	}
	/* The description is the result itself, as `vdisk info --json`. */
	json_object_object_foreach(o, key, val) {
		json_object_object_add(result, key, json_object_get(val));
	}
	json_object_put(o);
	return 0;
}

static int m_disk_resize(struct rpc_call *c)
{
	struct vdd_disk *d;
	uint64_t size, pause_us = 0;
	int ret;

	if ((ret = get_disk(c, &d)) < 0) {
		return ret;
	}
	ret = rpc_get_uint(c, "size", 512, (uint64_t)1 << 56, &size);
	if (ret <= 0) {
		if (ret == 0) {
			errmsg_set(rpc_call_err(c), "missing parameter 'size'");
		}
		return -EINVAL;
	}
	ret = vdd_disk_resize(d, size, &pause_us, rpc_call_err(c));
	if (ret < 0) {
		return ret;
	}
	add_u64(rpc_call_result(c), "size", size);
	add_u64(rpc_call_result(c), "pause-us", pause_us);
	return 0;
}

static int snapshot(struct rpc_call *c, bool delete)
{
	struct vdd_disk *d;
	const char *name;
	uint64_t pause_us = 0;
	int ret;

	if ((ret = get_disk(c, &d)) < 0 || (ret = rpc_get_str(c, "name", true, &name)) < 0) {
		return ret;
	}
	ret = vdd_disk_snapshot(d, name, delete, &pause_us, rpc_call_err(c));
	if (ret < 0) {
		return ret;
	}
	add_str(rpc_call_result(c), "name", name);
	add_u64(rpc_call_result(c), "pause-us", pause_us);
	return 0;
}

static int m_snapshot_create(struct rpc_call *c)
{
	return snapshot(c, false);
}

static int m_snapshot_delete(struct rpc_call *c)
{
	return snapshot(c, true);
}

static int m_disk_flush(struct rpc_call *c)
{
	struct vdd_disk *d;
	int ret = get_disk(c, &d);

	return ret < 0 ? ret : vdd_disk_flush(d, rpc_call_err(c));
}

static int m_disk_retry(struct rpc_call *c)
{
	struct vdd_disk *d;
	int ret = get_disk(c, &d);

	if (ret == 0) {
		vdd_disk_retry(d);
	}
	return ret;
}

/* migrate-status's object for the disk's job, or NULL when it had none. */
static struct json_object *migrate_json(struct vdd_disk *d)
{
	struct vdd_migrate_info i;
	struct json_object *o;

	if (vdd_migrate_get_info(d, &i) < 0) {
		return NULL;
	}
	o = json_object_new_object();
	add_str(o, "disk", vdd_disk_opts(d)->image);
	add_str(o, "source", i.source);
	add_str(o, "destination", i.destination);
	add_str(o, "phase", i.phase);
	json_object_object_add(o, "running", json_object_new_boolean(i.running));
	add_u64(o, "done", i.done);
	add_u64(o, "total", i.total);
	add_u64(o, "mirrored", i.mirrored);
	add_u64(o, "rate", i.rate);
	if (i.has_eta) {
		add_u64(o, "eta-ms", i.eta_ms);
	} else {
		json_object_object_add(o, "eta-ms", NULL);
	}
	add_u64(o, "elapsed-ms", i.elapsed_ms);
	add_u64(o, "bandwidth", i.bandwidth);
	json_object_object_add(o, "keep-source", json_object_new_boolean(i.keep_source));
	if (i.pivoted) {
		add_u64(o, "pivot-us", i.pivot_us);
	}
	add_str(o, "error", i.error[0] ? i.error : NULL);
	return o;
}

/* What starts a job again after a restart (the saved set's "migration"),
 * or NULL when nothing is to be taken up. */
static struct json_object *migrate_config(struct vdd_disk *d)
{
	struct vdd_migrate_info i;
	struct json_object *o;

	if (vdd_migrate_get_info(d, &i) < 0 || !i.resumable) {
		return NULL;
	}
	o = json_object_new_object();
	add_str(o, "to", i.to_name);
	if (i.to_rel) {
		add_str(o, "to-path", i.to_rel);
	}
	json_object_object_add(o, "keep-source", json_object_new_boolean(i.keep_source));
	add_u64(o, "bandwidth", i.bandwidth);
	return o;
}

/* "to": "NAME" or "NAME:path" of the destination. */
static int m_migrate_start(struct rpc_call *c)
{
	struct vdd_migrate_opts o = {0};
	struct vdd_disk *d;
	const char *to, *to_path = NULL;
	char *name = NULL, *rel = NULL;
	bool keep = false;
	int ret;

	if ((ret = get_disk(c, &d)) < 0 || (ret = rpc_get_str(c, "to", true, &to)) < 0 ||
	    (ret = rpc_get_str(c, "to-path", false, &to_path)) < 0 ||
	    (ret = rpc_get_bool(c, "keep-source", &keep)) < 0 ||
	    (ret = rpc_get_uint(c, "bandwidth", 0, UINT64_MAX / 2, &o.bandwidth)) < 0) {
		return ret;
	}
	if (ds_split_target(to, &name, &rel) < 0) {
		return -ENOMEM;
	}
	if (rel) {
		to_path = rel;
	}
	o.to_name = name;
	o.to_rel = to_path && to_path[0] ? to_path : NULL;
	o.keep_source = keep;
	ret = vdd_migrate_start(d, &o, rpc_call_err(c));
	if (ret == 0) {
		struct json_object *st = migrate_json(d);

		json_object_object_foreach(st, key, val) {
			json_object_object_add(rpc_call_result(c), key, json_object_get(val));
		}
		json_object_put(st);
		rpc_call_set_changed(c);
	}
	free(name);
	free(rel);
	return ret;
}

static int m_migrate_status(struct rpc_call *c)
{
	struct json_object *list = json_object_new_array();
	struct vdd_disk *d;
	const char *name;
	int ret = rpc_get_str(c, "disk", false, &name);

	if (ret == 0 && name && !vdd_disk_find(SRV(c), name)) {
		errmsg_set(rpc_call_err(c), "%s is not served by this vdiskd", name);
		ret = -ENOENT;
	}
	if (ret < 0) {
		json_object_put(list);
		return ret;
	}
	for (d = vdd_disk_next(SRV(c), NULL); d; d = vdd_disk_next(SRV(c), d)) {
		const struct vdd_disk_opts *o = vdd_disk_opts(d);
		struct json_object *st;

		if (name && strcmp(name, o->image) && strcmp(name, o->socket)) {
			continue;
		}
		st = migrate_json(d);
		if (st) {
			json_object_array_add(list, st);
		}
	}
	json_object_object_add(rpc_call_result(c), "jobs", list);
	return 0;
}

static int m_migrate_cancel(struct rpc_call *c)
{
	struct vdd_disk *d;
	int ret = get_disk(c, &d);

	if (ret == 0) {
		ret = vdd_migrate_cancel(d, rpc_call_err(c));
	}
	if (ret == 0) {
		rpc_call_set_changed(c);
	}
	return ret;
}

static int m_migrate_set(struct rpc_call *c)
{
	struct vdd_disk *d;
	uint64_t bw = 0;
	int ret;

	if ((ret = get_disk(c, &d)) < 0 ||
	    (ret = rpc_get_uint(c, "bandwidth", 0, UINT64_MAX / 2, &bw)) < 0) {
		return ret;
	}
	if (ret == 0) {
		errmsg_set(rpc_call_err(c), "missing parameter 'bandwidth'");
		return -EINVAL;
	}
	ret = vdd_migrate_set_bandwidth(d, bw, rpc_call_err(c));
	if (ret == 0) {
		rpc_call_set_changed(c);
	}
	return ret;
}

static int m_version(struct rpc_call *c)
{
	add_str(rpc_call_result(c), "version", VDD_VERSION);
	add_u64(rpc_call_result(c), "pid", (uint64_t)getpid());
	return 0;
}

const struct rpc_method vdd_methods[] = {
	{"disk-add", m_disk_add},
	{"disk-remove", m_disk_remove},
	{"disk-list", m_disk_list},
	{"disk-stats", m_disk_stats},
	{"disk-info", m_disk_info},
	{"disk-resize", m_disk_resize},
	{"disk-flush", m_disk_flush},
	{"disk-retry", m_disk_retry},
	{"snapshot-create", m_snapshot_create},
	{"snapshot-delete", m_snapshot_delete},
	{"migrate-start", m_migrate_start},
	{"migrate-status", m_migrate_status},
	{"migrate-cancel", m_migrate_cancel},
	{"migrate-set", m_migrate_set},
	{"version", m_version},
};
const size_t vdd_n_methods = sizeof(vdd_methods) / sizeof(vdd_methods[0]);

struct json_object *vdd_config_dump(struct vdd *srv)
{
	struct json_object *doc = json_object_new_object(), *list = json_object_new_array();
	struct vdd_disk *d;

	/* A migration job saves too, from its own thread. */
	vdd_lock_disks(srv);
	for (d = vdd_disk_next(srv, NULL); d; d = vdd_disk_next(srv, d)) {
		const struct vdd_disk_opts *o = vdd_disk_opts(d);
		struct json_object *e = json_object_new_object();

		add_str(e, "image", o->image);
		add_str(e, "socket", o->socket);
		add_str(e, "format", o->format);
		if (o->serial) {
			add_str(e, "serial", o->serial);
		}
		add_str(e, "cache", o->cache);
		json_object_object_add(e, "read-only", json_object_new_boolean(o->read_only));
		if (o->volatile_map) {
			json_object_object_add(e, "volatile-map", json_object_new_boolean(true));
		}
		add_u64(e, "queues", o->queues);
		json_object_object_add(e, "migration", migrate_config(d));
		json_object_array_add(list, e);
	}
	vdd_unlock_disks(srv);
	json_object_object_add(doc, "disks", list);
	return doc;
}
