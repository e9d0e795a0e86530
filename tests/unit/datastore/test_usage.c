/* SPDX-License-Identifier: MIT */
/* test_usage.c: accounting and what it protects (usage.c, manifest.c):
 * provisioned and allocated sums, the overcommit limit with its sentence
 * and under racing creators, templates pinned by clones in another
 * datastore, and images in use (by this very process) not deleted. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dstest.h"
#include "vdisk.h"

static uint64_t capacity_of(struct ds_datastore *ds)
{
	struct statvfs sv;

	assert_int_equal(statvfs(ds_path(ds), &sv), 0);
	return (uint64_t)sv.f_blocks * sv.f_frsize;
}

/* Makes a vdisk image 'rel' of 'size' bytes in 'ds' (backing 'backing'
 * or none) and registers it. */
static void make_image(struct ds_datastore *ds, const char *rel, uint64_t size,
		       const char *backing)
{
	struct vd_create_opts co;
	struct ds_entry_opts eo;
	struct errmsg err = {{0}};
	char p[256];

	ds_entry_opts_init(&eo);
	eo.size_bytes = size;
	snprintf(p, sizeof(p), "%s/%s", ds_path(ds), rel);
	vd_create_opts_init(&co);
	co.size_bytes = size;
	co.backing_path = backing;
	if (ds_entry_begin(ds, rel, &eo, &err) != 0 || vd_create(p, &co, &err) != 0 ||
	    ds_entry_commit(ds, rel, &err) != 0) {
		fail_msg("%s: %s", rel, err.msg);
	}
}

static void test_provisioned_and_allocated_sums(void **state)
{
	struct ds_datastore *ds = dt_make("acct", 0);
	struct ds_usage u;
	struct stat a, b;
	char p[256];

	make_image(ds, "a.vd", 1 << 20, NULL);
	make_image(ds, "b/b.vd", 3 << 20, NULL);
	assert_int_equal(ds_get_usage(ds, &u, NULL), 0);
	assert_int_equal(u.provisioned_bytes, 4 << 20);
	snprintf(p, sizeof(p), "%s/a.vd", ds_path(ds));
	assert_int_equal(stat(p, &a), 0);
	snprintf(p, sizeof(p), "%s/b/b.vd", ds_path(ds));
	assert_int_equal(stat(p, &b), 0);
	assert_int_equal(u.allocated_bytes, (uint64_t)(a.st_blocks + b.st_blocks) * 512);
	assert_int_equal(u.capacity_bytes, capacity_of(ds));
	assert_true(u.free_bytes <= u.capacity_bytes);
	assert_int_equal(u.n_images, 2);
	assert_true(u.overcommit > 0);
	ds_close(ds);
}

static void test_overcommit_limit_refuses_with_figures(void **state)
{
	struct ds_datastore *ds = dt_make("tight", 1.0);
	uint64_t cap = capacity_of(ds);
	struct ds_entry_opts eo;
	struct errmsg err = {{0}};
	struct ds_entry e;

	ds_entry_opts_init(&eo);
	/* Up to the limit exactly is allowed, a sector more is not. */
	eo.size_bytes = cap;
	assert_int_equal(ds_entry_begin(ds, "all.vd", &eo, &err), 0);
	eo.size_bytes = 512;
	assert_int_equal(ds_entry_begin(ds, "more.vd", &eo, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "datastore tight: adding more.vd (512 B)"));
	assert_non_null(strstr(err.msg, "of capacity"));
	assert_non_null(strstr(err.msg, "overcommit limit of 1.00"));
	assert_int_equal(ds_entry_find(ds, "more.vd", &e), -ENOENT);
	/* Raising the limit lets it through; dropping it removes it. */
	assert_int_equal(ds_set_max_overcommit(ds, 2.0, &err), 0);
	assert_true(ds_max_overcommit(ds) == 2.0);
	assert_int_equal(ds_entry_begin(ds, "more.vd", &eo, &err), 0);
	assert_int_equal(ds_set_max_overcommit(ds, -1, &err), -EINVAL);
	assert_int_equal(ds_set_max_overcommit(ds, 0, &err), 0);
	assert_true(ds_max_overcommit(ds) == 0);
	ds_close(ds);
}

#define RACERS 4

static void test_racing_creators_cannot_pass_the_limit_together(void **state)
{
	struct ds_datastore *ds = dt_make("race", 1.0);
	uint64_t cap = capacity_of(ds);
	pid_t pids[RACERS];
	int won = 0;

	/* Each wants 60% of the capacity: only one may have it. */
	for (int i = 0; i < RACERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct ds_entry_opts eo;
			char rel[16];

			ds_entry_opts_init(&eo);
			eo.size_bytes = cap / 10 * 6;
			snprintf(rel, sizeof(rel), "r%d.vd", i);
			_exit(ds_entry_begin(ds, rel, &eo, NULL) == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < RACERS; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		won += WEXITSTATUS(status) == 0;
	}
	assert_int_equal(won, 1);
	assert_int_equal(ds_refresh(ds, NULL), 0);
	assert_int_equal(ds_entry_count(ds), 1);
	ds_close(ds);
}

static void test_template_pinned_by_clones_elsewhere(void **state)
{
	struct ds_datastore *base = dt_make("base", 0), *vms = dt_make("vms", 0);
	struct errmsg err = {{0}};
	struct ds_entry e;
	char tpl[256];
	struct stat st;

	make_image(base, "gold.vd", 1 << 20, NULL);
	snprintf(tpl, sizeof(tpl), "%s/gold.vd", ds_path(base));
	assert_int_equal(ds_entry_set_kind(base, "gold.vd", DS_KIND_TEMPLATE, &err), 0);
	assert_int_equal(stat(tpl, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0444);
	assert_int_equal(ds_entry_find(base, "gold.vd", &e), 0);
	assert_int_equal(e.kind, DS_KIND_TEMPLATE);

	make_image(vms, "clone.vd", 1 << 20, tpl);
	assert_int_equal(ds_entry_delete(base, "gold.vd", &err), -EBUSY);
	assert_non_null(strstr(err.msg, "1 clone uses it (vms:clone.vd)"));
	assert_int_equal(ds_entry_set_kind(base, "gold.vd", DS_KIND_IMAGE, &err), -EBUSY);
	assert_int_equal(access(tpl, F_OK), 0);

	assert_int_equal(ds_entry_delete(vms, "clone.vd", &err), 0);
	assert_int_equal(ds_entry_set_kind(base, "gold.vd", DS_KIND_IMAGE, &err), 0);
	assert_int_equal(stat(tpl, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(ds_entry_delete(base, "gold.vd", &err), 0);
	assert_int_equal(access(tpl, F_OK), -1);
	ds_close(base);
	ds_close(vms);
}

static void test_image_in_use_not_deleted(void **state)
{
	struct ds_datastore *ds = dt_make("inuse", 0);
	struct vd_open_opts oo;
	struct vd_image *img;
	struct errmsg err = {{0}};
	struct ds_image_info info;
	struct vd_users u;
	char p[256], want[64];

	make_image(ds, "busy.vd", 1 << 20, NULL);
	snprintf(p, sizeof(p), "%s/busy.vd", ds_path(ds));
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	assert_int_equal(vd_open(p, &oo, &img, &err), 0);

	assert_int_equal(vd_image_users(p, &u, &err), 0);
	assert_true(u.in_use && u.writer);
	assert_int_equal(u.n_pids, 1);
	assert_int_equal(u.pids[0], (long)getpid());
	snprintf(want, sizeof(want), "(pid %ld)", (long)getpid());
	assert_int_equal(ds_entry_delete(ds, "busy.vd", &err), -EBUSY);
	assert_non_null(strstr(err.msg, want));
	assert_int_equal(ds_image_info(ds, "busy.vd", &info, &err), 0);
	assert_true(info.in_use);
	assert_non_null(strstr(info.users, want));
	ds_image_info_fini(&info);

	assert_int_equal(vd_close(img), 0);
	assert_int_equal(vd_image_users(p, &u, &err), 0);
	assert_false(u.in_use);
	assert_int_equal(ds_entry_delete(ds, "busy.vd", &err), 0);
	ds_close(ds);
}

static void test_foreign_lock_counts_as_in_use(void **state)
{
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 1};
	struct vd_users u;
	char p[256];
	int fd;

	/* What QEMU does to a raw file (an ISO) it has open. */
	dt_path(p, sizeof(p), "cd.iso");
	fd = open(p, O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	assert_int_equal(vd_image_users(p, &u, NULL), 0);
	assert_false(u.in_use);
	assert_int_equal(fcntl(fd, F_SETLK, &fl), 0);
	assert_int_equal(vd_image_users(p, &u, NULL), 0);
	assert_true(u.in_use);
	assert_false(u.writer);
	assert_int_equal(u.n_pids, 1);
	assert_int_equal(u.pids[0], (long)getpid());
	close(fd);
	assert_int_equal(vd_image_users(p, &u, NULL), 0);
	assert_false(u.in_use);
	assert_int_equal(vd_image_users("/nonexistent/x", &u, NULL), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_provisioned_and_allocated_sums),
	    cmocka_unit_test(test_overcommit_limit_refuses_with_figures),
	    cmocka_unit_test(test_racing_creators_cannot_pass_the_limit_together),
	    cmocka_unit_test(test_template_pinned_by_clones_elsewhere),
	    cmocka_unit_test(test_image_in_use_not_deleted),
	    cmocka_unit_test(test_foreign_lock_counts_as_in_use),
	};

	return cmocka_run_group_tests(tests, dt_setup, dt_teardown);
}
