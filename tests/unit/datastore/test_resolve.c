/* SPDX-License-Identifier: MIT */
/* test_resolve.c: names of images (resolve.c): both spellings give one
 * host path, normalised; everything that would leave the datastore's
 * directory is refused ("..", absolute parts, symbolic links pointing
 * out); host paths stay host paths; and a host path inside a datastore is
 * found again. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dstest.h"

static struct ds_datastore *store;

static int setup(void **state)
{
	if (dt_setup(state) != 0) {
		return -1;
	}
	store = dt_make("vol", 0);
	return 0;
}

static int teardown(void **state)
{
	ds_close(store);
	return dt_teardown(state);
}

static void expect_path(const char *spec, const char *rel)
{
	struct errmsg err = {{0}};
	struct ds_ref ref;
	char want[256];

	snprintf(want, sizeof(want), "%s/%s", ds_path(store), rel);
	if (ds_parse_ref(registry, spec, &ref, &err) != 1) {
		fail_msg("%s: %s", spec, err.msg);
	}
	assert_string_equal(ref.name, "vol");
	assert_string_equal(ref.rel, rel);
	assert_string_equal(ref.path, want);
	ds_ref_fini(&ref);
}

static void expect_refused(const char *spec, int want_errno, const char *words)
{
	struct errmsg err = {{0}};
	struct ds_ref ref;
	char *path = NULL;

	assert_int_equal(ds_parse_ref(registry, spec, &ref, &err), want_errno);
	assert_null(ref.path);
	if (!strstr(err.msg, words)) {
		fail_msg("%s: message '%s' lacks '%s'", spec, err.msg, words);
	}
	assert_int_equal(ds_resolve(registry, spec, &path, NULL), want_errno);
	assert_null(path);
}

static void test_both_spellings_resolve_alike(void **state)
{
	char *path;

	expect_path("vol:a.vd", "a.vd");
	expect_path("[vol] a.vd", "a.vd");
	expect_path("[vol]a.vd", "a.vd");
	expect_path("vol:dir//./b.vd", "dir/b.vd");
	expect_path("[vol] dir/sub/c.vd", "dir/sub/c.vd");
	assert_int_equal(ds_resolve(registry, "vol:x/y.vd", &path, NULL), 0);
	assert_non_null(strstr(path, "/vol/x/y.vd"));
	free(path);
}

static void test_escapes_refused(void **state)
{
	expect_refused("vol:../x.vd", -EINVAL, "'..'");
	expect_refused("vol:a/../../x.vd", -EINVAL, "'..'");
	expect_refused("[vol] ..", -EINVAL, "'..'");
	expect_refused("vol:/etc/passwd", -EINVAL, "relative");
	expect_refused("[vol] /etc/passwd", -EINVAL, "relative");
	expect_refused("vol:", -EINVAL, "no image");
	expect_refused("vol:./", -EINVAL, "no image");
	expect_refused("vol:" DS_MANIFEST_FILE, -EINVAL, "datastore's own");
	expect_refused("vol:sub/" DS_LOCK_FILE, -EINVAL, "datastore's own");
	expect_refused("[vol a.vd", -EINVAL, "missing ']'");
	expect_refused("[nope] a.vd", -ENOENT, "no datastore named nope");
	expect_refused("nope:a.vd", -ENOENT, "no datastore named nope");
}

static void test_links_out_refused_links_in_allowed(void **state)
{
	char link[256], target[256];

	/* A link to a file outside, a directory outside, and one that
	 * dangles are all refused; a link inside is followed. */
	snprintf(link, sizeof(link), "%s/out.vd", ds_path(store));
	assert_int_equal(symlink("/etc/hostname", link), 0);
	expect_refused("vol:out.vd", -EXDEV, "symbolic link");
	snprintf(link, sizeof(link), "%s/outdir", ds_path(store));
	assert_int_equal(symlink(scratch, link), 0);
	expect_refused("vol:outdir/x.vd", -EXDEV, "symbolic link");
	expect_refused("[vol] outdir/vol/x.vd", -EXDEV, "symbolic link");
	snprintf(link, sizeof(link), "%s/dangling", ds_path(store));
	assert_int_equal(symlink("/nonexistent/dir", link), 0);
	expect_refused("vol:dangling/x.vd", -EXDEV, "symbolic link");

	snprintf(target, sizeof(target), "%s/real", ds_path(store));
	assert_int_equal(mkdir(target, 0755), 0);
	snprintf(link, sizeof(link), "%s/alias", ds_path(store));
	assert_int_equal(symlink("real", link), 0);
	expect_path("vol:alias/x.vd", "alias/x.vd");
}

static void test_host_paths_stay_host_paths(void **state)
{
	struct ds_ref ref;
	char file[128], *path;

	assert_int_equal(ds_parse_ref(registry, "/tmp/x.vd", &ref, NULL), 0);
	assert_int_equal(ds_parse_ref(registry, "./vol:x.vd", &ref, NULL), 0);
	assert_int_equal(ds_parse_ref(registry, "plain.vd", &ref, NULL), 0);
	assert_int_equal(ds_parse_ref(registry, "dir/a:b", &ref, NULL), 0);
	/* "a:b" is a file name when it is a file and "a" no datastore. */
	dt_path(file, sizeof(file), "odd:name");
	close(open(file, O_CREAT | O_WRONLY, 0644));
	assert_int_equal(chdir(scratch), 0);
	assert_int_equal(ds_parse_ref(registry, "odd:name", &ref, NULL), 0);
	assert_int_equal(ds_resolve(registry, "odd:name", &path, NULL), 0);
	assert_string_equal(path, "odd:name");
	free(path);
	assert_int_equal(chdir("/"), 0);
}

static void test_locate_finds_the_datastore(void **state)
{
	struct ds_ref ref;
	char p[256];

	snprintf(p, sizeof(p), "%s/real/new.vd", ds_path(store));
	assert_int_equal(ds_locate(registry, p, &ref, NULL), 1);
	assert_string_equal(ref.name, "vol");
	assert_string_equal(ref.rel, "real/new.vd");
	ds_ref_fini(&ref);
	/* Through a link inside, the canonical name is found. */
	snprintf(p, sizeof(p), "%s/alias/new.vd", ds_path(store));
	assert_int_equal(ds_locate(registry, p, &ref, NULL), 1);
	assert_string_equal(ref.rel, "real/new.vd");
	ds_ref_fini(&ref);
	assert_int_equal(ds_locate(registry, "/tmp", &ref, NULL), 0);
	assert_int_equal(ds_locate(registry, scratch, &ref, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_both_spellings_resolve_alike),
	    cmocka_unit_test(test_escapes_refused),
	    cmocka_unit_test(test_links_out_refused_links_in_allowed),
	    cmocka_unit_test(test_host_paths_stay_host_paths),
	    cmocka_unit_test(test_locate_finds_the_datastore),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
