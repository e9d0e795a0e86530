/* SPDX-License-Identifier: MIT */
/* test_migrate.c: ds_migrate() as a library call (migrate.c): the steps
 * reported in order, the result, each refusal with nothing left behind,
 * and recovery from leftovers made by hand: it removes the copy a run left
 * with its own origin and never an entry of another origin.
 * tests/cli/migrate.sh covers contents, snapshots, chains and crashes. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dstest.h"
#include "vdisk.h"

static void make_image(struct ds_datastore *ds, const char *rel, const char *backing)
{
	struct vd_create_opts co;
	struct ds_entry_opts eo;
	struct vd_open_opts oo;
	struct vd_image *img;
	struct errmsg err = {{0}};
	char p[256], buf[65536];

	ds_entry_opts_init(&eo);
	eo.size_bytes = 8 << 20;
	snprintf(p, sizeof(p), "%s/%s", ds_path(ds), rel);
	vd_create_opts_init(&co);
	co.size_bytes = 8 << 20;
	co.backing_path = backing;
	if (ds_entry_begin(ds, rel, &eo, &err) != 0 || vd_create(p, &co, &err) != 0 ||
	    ds_entry_commit(ds, rel, &err) != 0) {
		fail_msg("%s: %s", rel, err.msg);
	}
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR | VD_OPEN_BUFFERED;
	assert_int_equal(vd_open(p, &oo, &img, &err), 0);
	memset(buf, 0x5c, sizeof(buf));
	assert_int_equal(vd_pwrite(img, buf, sizeof(buf), 1 << 20), 0);
	assert_int_equal(vd_close(img), 0);
}

struct steps {
	char seen[64];
	size_t n;
};

static void record(void *arg, enum ds_migrate_step step, const char *what, uint64_t done,
		   uint64_t total)
{
	struct steps *s = arg;
	char c = "cvsr"[step];

	(void)what;
	assert_true(done <= total || total == 0);
	if (s->n == 0 || s->seen[s->n - 1] != c) {
		assert_true(s->n + 1 < sizeof(s->seen));
		s->seen[s->n++] = c;
	}
}

static bool exists(struct ds_datastore *ds, const char *rel)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", ds_path(ds), rel);
	return access(p, F_OK) == 0;
}

static void refresh(struct ds_datastore *ds)
{
	assert_int_equal(ds_refresh(ds, NULL), 0);
}

static void test_steps_and_result(void **state)
{
	struct ds_datastore *a = dt_make("a1", 0), *b = dt_make("b1", 0);
	struct ds_migrate_result res;
	struct ds_migrate_opts mo;
	struct errmsg err = {{0}};
	struct steps s = {0};
	struct ds_entry e;

	make_image(a, "vm/x.vd", NULL);
	ds_migrate_opts_init(&mo);
	mo.progress = record;
	mo.progress_arg = &s;
	assert_int_equal(ds_migrate(registry, "a1", "vm/x.vd", "b1", "y.vd", &mo, &res, &err), 0);
	assert_string_equal(s.seen, "cvsr");
	assert_string_equal(res.dest, "b1:y.vd");
	assert_int_equal(res.recovered, 0);
	assert_true(res.copied_bytes > 0);
	ds_migrate_result_fini(&res);
	refresh(a);
	refresh(b);
	assert_int_equal(ds_entry_find(a, "vm/x.vd", &e), -ENOENT);
	assert_false(exists(a, "vm/x.vd"));
	assert_int_equal(ds_entry_find(b, "y.vd", &e), 0);
	assert_int_equal(e.state, DS_STATE_READY);
	assert_string_equal(e.origin, "a1:vm/x.vd");
	ds_close(a);
	ds_close(b);
}

/* Each refusal: the error, and the source as it was, without moving_to,
 * and no entry in the destination. */
static void expect_refused(const char *src, const char *dst_rel, bool with_backing, int want,
			   const char *words)
{
	struct ds_datastore *a, *b;
	struct ds_migrate_result res;
	struct ds_migrate_opts mo;
	struct errmsg err = {{0}};
	struct ds_entry e;

	ds_migrate_opts_init(&mo);
	mo.with_backing = with_backing;
	assert_int_equal(ds_migrate(registry, "a2", src, "b2", dst_rel, &mo, &res, &err), want);
	if (!strstr(err.msg, words)) {
		fail_msg("'%s' lacks '%s'", err.msg, words);
	}
	assert_int_equal(ds_open(registry, "a2", &a, NULL), 0);
	assert_int_equal(ds_open(registry, "b2", &b, NULL), 0);
	assert_int_equal(ds_entry_find(a, src, &e), 0);
	assert_int_equal(e.state, DS_STATE_READY);
	assert_null(e.moving_to);
	assert_true(exists(a, src));
	if (want != -EEXIST) {
		assert_int_equal(ds_entry_find(b, dst_rel ? dst_rel : src, &e), -ENOENT);
	}
	ds_close(a);
	ds_close(b);
}

static void test_refusals(void **state)
{
	struct ds_datastore *a = dt_make("a2", 0), *b = dt_make("b2", 0);
	struct ds_entry_opts eo;
	struct vd_open_opts oo;
	struct vd_image *img;
	char p[256], outside[256];
	int fd;

	make_image(a, "x.vd", NULL);
	make_image(b, "taken.vd", NULL);
	expect_refused("x.vd", "taken.vd", false, -EEXIST, "already exists");

	snprintf(p, sizeof(p), "%s/x.vd", ds_path(a));
	vd_open_opts_init(&oo);
	oo.flags = VD_OPEN_RDWR;
	assert_int_equal(vd_open(p, &oo, &img, NULL), 0);
	expect_refused("x.vd", NULL, false, -EBUSY, "moves live");
	vd_close(img);

	/* A backing file outside every datastore cannot be copied along. */
	dt_path(outside, sizeof(outside), "outside.vd");
	{
		struct vd_create_opts co;

		vd_create_opts_init(&co);
		co.size_bytes = 8 << 20;
		assert_int_equal(vd_create(outside, &co, NULL), 0);
	}
	make_image(a, "clone.vd", outside);
	expect_refused("clone.vd", NULL, true, -EXDEV, "in no datastore");

	snprintf(p, sizeof(p), "%s/cd.iso", ds_path(a));
	fd = open(p, O_CREAT | O_WRONLY, 0444);
	assert_true(fd >= 0);
	close(fd);
	ds_entry_opts_init(&eo);
	eo.kind = DS_KIND_ISO;
	assert_int_equal(ds_entry_add(a, "cd.iso", &eo, NULL), 0);
	expect_refused("cd.iso", NULL, false, -EOPNOTSUPP, "ISO");
	ds_close(a);
	ds_close(b);
}

/* A run that died in its copy left: moving_to on the source, an
 * incomplete entry of its origin, a partial file.  The next run removes
 * them and migrates. */
static void test_recovers_own_leftovers(void **state)
{
	struct ds_datastore *a = dt_make("a3", 0), *b = dt_make("b3", 0);
	struct ds_migrate_result res;
	struct ds_migrate_opts mo;
	struct ds_entry_opts eo;
	struct errmsg err = {{0}};
	struct ds_entry e;
	char p[256];
	int fd;

	make_image(a, "x.vd", NULL);
	assert_int_equal(ds_entry_set_moving(a, "x.vd", "b3:x.vd", NULL), 0);
	ds_entry_opts_init(&eo);
	eo.size_bytes = 8 << 20;
	eo.origin = "a3:x.vd";
	assert_int_equal(ds_entry_begin(b, "x.vd", &eo, NULL), 0);
	snprintf(p, sizeof(p), "%s/.vdisk-datastore-partial.x.vd", ds_path(b));
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "half", 4), 4);
	close(fd);

	/* Before the switch the source is the image. */
	assert_int_equal(ds_entry_in_charge(a, "x.vd", NULL), 0);
	ds_migrate_opts_init(&mo);
	assert_int_equal(ds_migrate(registry, "a3", "x.vd", "b3", NULL, &mo, &res, &err), 0);
	assert_int_equal(res.recovered, DS_MIGRATE_CLEANED);
	ds_migrate_result_fini(&res);
	refresh(b);
	assert_int_equal(ds_entry_find(b, "x.vd", &e), 0);
	assert_int_equal(e.state, DS_STATE_READY);
	assert_int_equal(access(p, F_OK), -1);
	ds_close(a);
	ds_close(b);
}

/* moving_to names an incomplete entry another process is creating (its
 * origin is not the source): recovery leaves it alone. */
static void test_spares_other_origin(void **state)
{
	struct ds_datastore *a = dt_make("a4", 0), *b = dt_make("b4", 0);
	struct ds_migrate_result res;
	struct ds_migrate_opts mo;
	struct ds_entry_opts eo;
	struct errmsg err = {{0}};
	struct ds_entry e;

	make_image(a, "x.vd", NULL);
	assert_int_equal(ds_entry_set_moving(a, "x.vd", "b4:x.vd", NULL), 0);
	ds_entry_opts_init(&eo);
	eo.size_bytes = 8 << 20;
	assert_int_equal(ds_entry_begin(b, "x.vd", &eo, NULL), 0);

	ds_migrate_opts_init(&mo);
	/* The source is free again (moving_to cleared), the destination
	 * taken: -EEXIST, and the other entry is still there. */
	assert_int_equal(ds_migrate(registry, "a4", "x.vd", "b4", NULL, &mo, &res, &err),
			 -EEXIST);
	assert_int_equal(res.recovered, DS_MIGRATE_CLEANED);
	refresh(a);
	refresh(b);
	assert_int_equal(ds_entry_find(b, "x.vd", &e), 0);
	assert_int_equal(e.state, DS_STATE_INCOMPLETE);
	assert_int_equal(ds_entry_find(a, "x.vd", &e), 0);
	assert_null(e.moving_to);
	/* Elsewhere it goes. */
	assert_int_equal(ds_migrate(registry, "a4", "x.vd", "b4", "z.vd", &mo, &res, &err), 0);
	ds_migrate_result_fini(&res);
	ds_close(a);
	ds_close(b);
}

/* The switch was made, the source's removal was not: the next run only
 * removes it (here keeping it: --keep-source), without copying. */
static void test_finishes_after_switch(void **state)
{
	struct ds_datastore *a = dt_make("a5", 0), *b = dt_make("b5", 0);
	struct ds_migrate_result res;
	struct ds_migrate_opts mo;
	struct errmsg err = {{0}};
	struct steps s = {0};
	struct ds_entry e;

	make_image(a, "x.vd", NULL);
	ds_migrate_opts_init(&mo);
	mo.keep_source = true;
	assert_int_equal(ds_migrate(registry, "a5", "x.vd", "b5", NULL, &mo, &res, &err), 0);
	ds_migrate_result_fini(&res);
	/* As if the run had died between the switch and step 5. */
	assert_int_equal(ds_entry_set_moving(a, "x.vd", "b5:x.vd", NULL), 0);
	assert_int_equal(ds_entry_in_charge(a, "x.vd", &err), -ESTALE);
	assert_non_null(strstr(err.msg, "was migrated to b5:x.vd"));
	assert_int_equal(ds_entry_in_charge(b, "x.vd", NULL), 0);
	mo.keep_source = false;
	mo.progress = record;
	mo.progress_arg = &s;
	assert_int_equal(ds_migrate(registry, "a5", "x.vd", "b5", NULL, &mo, &res, &err), 0);
	assert_int_equal(res.recovered, DS_MIGRATE_FINISHED);
	assert_int_equal(res.copied_bytes, 0);
	assert_string_equal(res.dest, "b5:x.vd");
	assert_string_equal(s.seen, "r");
	ds_migrate_result_fini(&res);
	refresh(a);
	assert_int_equal(ds_entry_find(a, "x.vd", &e), -ENOENT);
	assert_false(exists(a, "x.vd"));
	ds_close(a);
	ds_close(b);
}

/* A partial file whose entry was deleted by hand (vdisk rm after a
 * crash) does not block the next run; one a live process holds does. */
static void test_stale_partial(void **state)
{
	struct ds_datastore *a = dt_make("a6", 0), *b = dt_make("b6", 0);
	struct ds_migrate_result res;
	struct ds_migrate_opts mo;
	struct errmsg err = {{0}};
	struct ds_entry e;
	char p[256];
	int fd;

	make_image(a, "x.vd", NULL);
	make_image(a, "y.vd", NULL);
	snprintf(p, sizeof(p), "%s/.vdisk-datastore-partial.y.vd", ds_path(b));
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	ds_migrate_opts_init(&mo);
	assert_int_equal(ds_migrate(registry, "a6", "y.vd", "b6", NULL, &mo, &res, &err), 0);
	ds_migrate_result_fini(&res);

	snprintf(p, sizeof(p), "%s/.vdisk-datastore-partial.x.vd", ds_path(b));
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_int_equal(ds_migrate(registry, "a6", "x.vd", "b6", NULL, &mo, &res, &err),
			 -EBUSY);
	assert_non_null(strstr(err.msg, "another process"));
	close(fd);
	refresh(a);
	refresh(b);
	assert_true(exists(a, "x.vd"));
	assert_int_equal(ds_entry_find(a, "x.vd", &e), 0);
	assert_null(e.moving_to);
	assert_int_equal(ds_entry_find(b, "x.vd", &e), -ENOENT);
	assert_true(exists(b, ".vdisk-datastore-partial.x.vd"));
	ds_close(a);
	ds_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_steps_and_result),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_recovers_own_leftovers),
	    cmocka_unit_test(test_spares_other_origin),
	    cmocka_unit_test(test_finishes_after_switch),
	    cmocka_unit_test(test_stale_partial),
	};

	return cmocka_run_group_tests(tests, dt_setup, dt_teardown);
}
