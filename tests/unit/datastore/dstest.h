/* SPDX-License-Identifier: MIT */
/* dstest.h: what the libdatastore test programs share: a scratch
 * directory with a private registry in it, removed at the end, and a
 * datastore made in one call.  Include after cmocka.h. */
#ifndef DS_DSTEST_H
#define DS_DSTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datastore.h"

static char scratch[64];
static char registry[128];

static inline int dt_setup(void **state)
{
	snprintf(scratch, sizeof(scratch), "/tmp/ds-test.XXXXXX");
	if (!mkdtemp(scratch)) {
		return -1;
	}
	snprintf(registry, sizeof(registry), "%s/registry.json", scratch);
	return 0;
}

static inline int dt_teardown(void **state)
{
	char cmd[128];

	/* Templates are mode 0444 and directories may be nested. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	return system(cmd) == 0 ? 0 : -1;
}

/* "SCRATCH/NAME", a static buffer per call site is enough for tests. */
static inline char *dt_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", scratch, name);
	return buf;
}

/* Creates datastore 'name' in SCRATCH/'name' with 'limit' and opens it. */
static inline struct ds_datastore *dt_make(const char *name, double limit)
{
	struct ds_create_opts co;
	struct ds_datastore *ds = NULL;
	struct errmsg err = {{0}};
	char dir[128];

	ds_create_opts_init(&co);
	co.max_overcommit = limit;
	if (ds_create(registry, name, dt_path(dir, sizeof(dir), name), &co, &err) != 0 ||
	    ds_open(registry, name, &ds, &err) != 0) {
		fail_msg("datastore %s: %s", name, err.msg);
	}
	return ds;
}

#endif
