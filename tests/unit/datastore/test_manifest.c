/* SPDX-License-Identifier: MIT */
/* test_manifest.c: the manifest and the registry (manifest.c,
 * registry.c): creation and its refusals, entries through begin, commit
 * and abort, processes changing one datastore at once losing nothing, a
 * process killed while writing leaving the old or the new manifest, and
 * removal that keeps files unless told. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dstest.h"

static void test_create_registers_and_refuses_clashes(void **state)
{
	struct ds_datastore *ds = dt_make("alpha", 0);
	struct errmsg err = {{0}};
	char dir[128], inner[160], mpath[160];
	char **names;

	assert_string_equal(ds_name(ds), "alpha");
	assert_int_equal(strlen(ds_id(ds)), 32);
	snprintf(mpath, sizeof(mpath), "%s/" DS_MANIFEST_FILE, ds_path(ds));
	assert_int_equal(access(mpath, R_OK), 0);
	assert_int_equal(ds_list(registry, &names, NULL), 1);
	assert_string_equal(names[0], "alpha");
	ds_names_free(names);

	/* A taken name, a taken directory, one inside another, a bad name. */
	assert_int_equal(ds_create(registry, "alpha", dt_path(dir, sizeof(dir), "b"), NULL, &err),
			 -EEXIST);
	assert_non_null(strstr(err.msg, "already exists"));
	assert_int_equal(ds_create(registry, "beta", ds_path(ds), NULL, &err), -EEXIST);
	snprintf(inner, sizeof(inner), "%s/sub", ds_path(ds));
	assert_int_equal(ds_create(registry, "beta", inner, NULL, &err), -EINVAL);
	assert_int_equal(ds_create(registry, "../x", dir, NULL, &err), -EINVAL);
	assert_int_equal(ds_create(registry, "", dir, NULL, &err), -EINVAL);
	assert_int_equal(ds_open(registry, "nope", &ds, &err) == -ENOENT, 1);
	ds_close(ds);
}

static void test_begin_commit_abort(void **state)
{
	struct ds_datastore *ds = dt_make("steps", 0);
	struct ds_entry_opts eo;
	struct errmsg err = {{0}};
	struct ds_entry e;
	char p[160];
	int fd;

	ds_entry_opts_init(&eo);
	eo.size_bytes = 1 << 20;
	assert_int_equal(ds_entry_begin(ds, "d/x.vd", &eo, &err), 0);
	assert_int_equal(ds_entry_find(ds, "d/x.vd", &e), 0);
	assert_int_equal(e.state, DS_STATE_INCOMPLETE);
	assert_int_equal(e.size_bytes, 1 << 20);
	/* Its directory was made, so the caller can create the file. */
	snprintf(p, sizeof(p), "%s/d/x.vd", ds_path(ds));
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ds_entry_begin(ds, "d/x.vd", &eo, &err), -EEXIST);
	assert_int_equal(ds_entry_abort(ds, "d/x.vd", &err), 0);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(ds_entry_find(ds, "d/x.vd", &e), -ENOENT);

	assert_int_equal(ds_entry_begin(ds, "y.vd", &eo, &err), 0);
	assert_int_equal(ds_entry_commit(ds, "y.vd", &err), 0);
	assert_int_equal(ds_entry_find(ds, "y.vd", &e), 0);
	assert_int_equal(e.state, DS_STATE_READY);
	/* A complete entry is not aborted: that would delete a good image. */
	assert_int_equal(ds_entry_abort(ds, "y.vd", &err), -EINVAL);
	assert_int_equal(ds_entry_commit(ds, "nothing.vd", &err), -ENOENT);
	/* Names the library is handed directly obey the same grammar. */
	assert_int_equal(ds_entry_begin(ds, "../out.vd", &eo, &err), -EINVAL);
	assert_int_equal(ds_entry_begin(ds, "/abs.vd", &eo, &err), -EINVAL);
	assert_int_equal(ds_entry_begin(ds, DS_MANIFEST_FILE, &eo, &err), -EINVAL);
	/* A file no entry names is not overwritten. */
	snprintf(p, sizeof(p), "%s/stray.vd", ds_path(ds));
	close(open(p, O_CREAT | O_WRONLY, 0644));
	assert_int_equal(ds_entry_begin(ds, "stray.vd", &eo, &err), -EEXIST);
	assert_int_equal(ds_entry_add(ds, "stray.vd", &eo, &err), 0);
	assert_int_equal(ds_entry_find(ds, "stray.vd", &e), 0);
	assert_int_equal(e.state, DS_STATE_READY);
	ds_close(ds);
}

static void test_moving_mark_round_trip(void **state)
{
	struct ds_datastore *ds = dt_make("mover", 0);
	struct ds_entry_opts eo;
	struct ds_entry e;

	ds_entry_opts_init(&eo);
	eo.origin = "other:src.vd";
	assert_int_equal(ds_entry_begin(ds, "m.vd", &eo, NULL), 0);
	assert_int_equal(ds_entry_commit(ds, "m.vd", NULL), 0);
	assert_int_equal(ds_entry_set_moving(ds, "m.vd", "far:m.vd", NULL), 0);
	assert_int_equal(ds_refresh(ds, NULL), 0);
	assert_int_equal(ds_entry_find(ds, "m.vd", &e), 0);
	assert_string_equal(e.origin, "other:src.vd");
	assert_string_equal(e.moving_to, "far:m.vd");
	assert_int_equal(ds_entry_set_moving(ds, "m.vd", NULL, NULL), 0);
	assert_int_equal(ds_entry_find(ds, "m.vd", &e), 0);
	assert_null(e.moving_to);
	ds_close(ds);
}

#define CHANGERS 8
#define PER_CHANGER 25

/* One process's share: begin and commit its own names, each change a
 * separate locked read-modify-write. */
static int changer(int id)
{
	struct ds_datastore *ds;
	struct ds_entry_opts eo;
	char rel[32];

	if (ds_open(registry, "busy", &ds, NULL) != 0) {
		return 1;
	}
	ds_entry_opts_init(&eo);
	for (int i = 0; i < PER_CHANGER; i++) {
		snprintf(rel, sizeof(rel), "c%d/%d.vd", id, i);
		if (ds_entry_begin(ds, rel, &eo, NULL) != 0 || ds_entry_commit(ds, rel, NULL) != 0) {
			return 1;
		}
	}
	ds_close(ds);
	return 0;
}

static void test_concurrent_changers_lose_no_entry(void **state)
{
	struct ds_datastore *ds = dt_make("busy", 0);
	pid_t pids[CHANGERS];
	struct ds_entry e;

	for (int i = 0; i < CHANGERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			_exit(changer(i));
		}
	}
	for (int i = 0; i < CHANGERS; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(ds_refresh(ds, NULL), 0);
	assert_int_equal(ds_entry_count(ds), CHANGERS * PER_CHANGER);
	for (unsigned i = 0; i < ds_entry_count(ds); i++) {
		assert_int_equal(ds_entry_get(ds, i, &e), 0);
		assert_int_equal(e.state, DS_STATE_READY);
	}
	ds_close(ds);
}

/* Adds k0, k1, ... until killed. */
_Noreturn static void crasher(void)
{
	struct ds_datastore *ds;
	struct ds_entry_opts eo;
	char rel[32];

	if (ds_open(registry, "crashy", &ds, NULL) != 0) {
		_exit(1);
	}
	ds_entry_opts_init(&eo);
	for (unsigned i = 0;; i++) {
		snprintf(rel, sizeof(rel), "k%u", i);
		if (ds_entry_begin(ds, rel, &eo, NULL) != 0) {
			_exit(1);
		}
	}
}

/* The entries k0..kN must be a prefix: the manifest is some whole
 * version, never a torn or merged one. */
static unsigned check_prefix(struct ds_datastore *ds)
{
	unsigned n = ds_entry_count(ds);
	struct ds_entry e;
	char rel[32];

	for (unsigned i = 0; i < n; i++) {
		snprintf(rel, sizeof(rel), "k%u", i);
		assert_int_equal(ds_entry_find(ds, rel, &e), 0);
	}
	return n;
}

static void test_killed_writer_leaves_old_or_new_manifest(void **state)
{
	struct ds_datastore *ds = dt_make("crashy", 0);
	struct ds_entry_opts eo;
	unsigned last = 0, n;

	ds_entry_opts_init(&eo);
	srand((unsigned)time(NULL));
	for (int round = 0; round < 30; round++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			crasher();
		}
		usleep(10000 + (useconds_t)(rand() % 50000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
		/* A reader without the lock sees one whole version... */
		assert_int_equal(ds_refresh(ds, NULL), 0);
		n = check_prefix(ds);
		assert_true(n >= last);
		last = n;
		/* ...and the next writer, under the lock, clears what the
		 * killed one left and goes on from where it stopped. */
		for (unsigned i = 0; i < 50; i++) {
			char rel[32];

			snprintf(rel, sizeof(rel), "k%u", n);
			if (ds_entry_begin(ds, rel, &eo, NULL) == 0) {
				break;
			}
		}
		assert_int_equal(ds_refresh(ds, NULL), 0);
		last = check_prefix(ds);
	}
	assert_true(last > 30);
	ds_close(ds);
}

static void test_remove_keeps_files_unless_told(void **state)
{
	struct ds_datastore *ds = dt_make("gone", 0);
	struct ds_entry_opts eo;
	struct errmsg err = {{0}};
	char dir[128], p[160];

	snprintf(dir, sizeof(dir), "%s", ds_path(ds));
	ds_entry_opts_init(&eo);
	snprintf(p, sizeof(p), "%s/keep.vd", dir);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	assert_int_equal(ds_entry_add(ds, "keep.vd", &eo, NULL), 0);
	ds_close(ds);

	assert_int_equal(ds_remove(registry, "gone", 0, &err), -ENOTEMPTY);
	assert_non_null(strstr(err.msg, "holds 1 entry"));
	assert_int_equal(ds_remove(registry, "gone", DS_REMOVE_FORCE, &err), 0);
	assert_int_equal(ds_open(registry, "gone", &ds, &err), -ENOENT);
	assert_int_equal(access(p, F_OK), 0);

	/* Registering the directory again finds its entries. */
	assert_int_equal(ds_create(registry, "gone", dir, NULL, &err), 0);
	assert_int_equal(ds_open(registry, "gone", &ds, &err), 0);
	assert_int_equal(ds_entry_count(ds), 1);
	ds_close(ds);
	/* Under another name it is refused: it is datastore "gone". */
	assert_int_equal(ds_remove(registry, "gone", DS_REMOVE_FORCE, &err), 0);
	assert_int_equal(ds_create(registry, "other", dir, NULL, &err), -EEXIST);
	assert_int_equal(ds_create(registry, "gone", dir, NULL, &err), 0);

	assert_int_equal(ds_remove(registry, "gone", DS_REMOVE_FORCE | DS_REMOVE_DELETE_FILES, &err),
			 0);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(access(dir, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_registers_and_refuses_clashes),
	    cmocka_unit_test(test_begin_commit_abort),
	    cmocka_unit_test(test_moving_mark_round_trip),
	    cmocka_unit_test(test_concurrent_changers_lose_no_entry),
	    cmocka_unit_test(test_killed_writer_leaves_old_or_new_manifest),
	    cmocka_unit_test(test_remove_keeps_files_unless_told),
	};

	return cmocka_run_group_tests(tests, dt_setup, dt_teardown);
}
