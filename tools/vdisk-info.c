/* SPDX-License-Identifier: MIT */
/* vdisk-info.c: an image's description as JSON (vdisk-info.h), shared by
 * the vdisk tool's info and snapshot list and by vdiskd's disk-info.  The
 * keys are qemu-img's where it has one. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vdisk-info.h"
#include "vdisk.h"

void vdisk_format_date(uint64_t date_s, char *buf, size_t len)
{
	time_t t = (time_t)date_s;
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm)) {
		snprintf(buf, len, "-");
	}
}

static struct json_object *snapshot_json(const struct vd_snapshot_info *si)
{
	struct json_object *o = json_object_new_object();
	char date[32];

	vdisk_format_date(si->date_ns / 1000000000u, date, sizeof(date));
	json_object_object_add(o, "id", json_object_new_uint64(si->id));
	json_object_object_add(o, "name", json_object_new_string(si->name));
	json_object_object_add(o, "date", json_object_new_string(date));
	json_object_object_add(o, "date_sec", json_object_new_uint64(si->date_ns / 1000000000u));
	json_object_object_add(o, "date_nsec", json_object_new_uint64(si->date_ns % 1000000000u));
	json_object_object_add(o, "virtual_size", json_object_new_uint64(si->size_bytes));
	json_object_object_add(o, "unique_bytes", json_object_new_uint64(si->unique_bytes));
	json_object_object_add(o, "referenced_bytes", json_object_new_uint64(si->referenced_bytes));
	return o;
}

int vdisk_snapshots_json(struct vd_image *img, const char *path, struct json_object **arrayp,
			 struct errmsg *err)
{
	struct json_object *arr;
	int n = vd_snapshot_count(img);

	if (n < 0) {
		errmsg_set(err, "%s: cannot count snapshots: %s", path, strerror(-n));
		return n;
	}
	arr = json_object_new_array();
	for (int i = 0; i < n; i++) {
		struct vd_snapshot_info si;
		int ret = vd_snapshot_get(img, (unsigned)i, &si);

		if (ret < 0) {
			errmsg_set(err, "%s: cannot read snapshot %d: %s", path, i + 1,
				   strerror(-ret));
			json_object_put(arr);
			return ret;
		}
		json_object_array_add(arr, snapshot_json(&si));
	}
	*arrayp = arr;
	return 0;
}

static void add_u64(struct json_object *o, const char *key, uint64_t val)
{
	json_object_object_add(o, key, json_object_new_uint64(val));
}

int vdisk_info_json(struct vd_image *img, const char *path, struct json_object **objp,
		    struct errmsg *err)
{
	struct json_object *o, *snapshots;
	struct vd_info in;
	int ret;

	memset(&in, 0, sizeof(in));
	ret = vd_get_info(img, &in);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot read the image's information: %s", path,
			   strerror(-ret));
		return ret;
	}
	ret = vdisk_snapshots_json(img, path, &snapshots, err);
	if (ret < 0) {
		return ret;
	}
	o = json_object_new_object();
	json_object_object_add(o, "filename", json_object_new_string(path));
	json_object_object_add(o, "format", json_object_new_string("vdisk"));
	json_object_object_add(o, "format_version", json_object_new_int64(in.version));
	add_u64(o, "virtual_size", in.size_bytes);
	json_object_object_add(o, "cluster_size", json_object_new_int64(in.cluster_bytes));
	/* 0: the image has no subclusters */
	json_object_object_add(o, "subcluster_size", json_object_new_int64(in.subcluster_bytes));
	add_u64(o, "allocated_bytes", in.allocated_bytes);
	add_u64(o, "metadata_bytes", in.metadata_bytes);
	add_u64(o, "file_length", in.file_bytes);
	add_u64(o, "actual_size", in.disk_bytes);
	json_object_object_add(o, "journal_size", json_object_new_int64(in.journal_bytes));
	json_object_object_add(o, "dirty", json_object_new_boolean(in.dirty));
	add_u64(o, "incompatible_features", in.incompat_features);
	add_u64(o, "compatible_features", in.compat_features);
	add_u64(o, "autoclear_features", in.autoclear_features);
	/* null rather than absent, so scripts need not test for the key */
	json_object_object_add(o, "backing_file",
			       in.backing_path ? json_object_new_string(in.backing_path) : NULL);
	json_object_object_add(o, "chain_depth", json_object_new_int64(in.chain_depth));
	json_object_object_add(o, "snapshots", snapshots);
	*objp = o;
	return 0;
}
