/* SPDX-License-Identifier: MIT */
/* eal.c: the EAL start shared by vswitchd and vdiskd (eal.h).  Kept out of
 * librpc, which has no DPDK in it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "eal.h"

/* Free hugepage memory in MiB, 0 if none or no hugetlbfs mounted. */
static unsigned long free_hugepage_mb(void)
{
	unsigned long free_pages = 0, size_kb = 0;
	char line[128];
	FILE *f;

	if (access("/dev/hugepages", W_OK) != 0) {
		return 0;
	}
	f = fopen("/proc/meminfo", "r");
	if (!f) {
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "HugePages_Free: %lu", &free_pages);
		sscanf(line, "Hugepagesize: %lu kB", &size_kb);
	}
	fclose(f);
	return free_pages * size_kb / 1024;
}

int eal_parse_huge(const char *text, enum eal_huge *hugep)
{
	if (strcmp(text, "auto") == 0) {
		*hugep = EAL_HUGE_AUTO;
	} else if (strcmp(text, "yes") == 0) {
		*hugep = EAL_HUGE_YES;
	} else if (strcmp(text, "no") == 0) {
		*hugep = EAL_HUGE_NO;
	} else {
		return -EINVAL;
	}
	return 0;
}

int eal_start(const struct eal_opts *opts, struct errmsg *err)
{
	char prefix[64], mem[16], *args[64], *copy = NULL, *save, *tok;
	int argc = 0, ret;

	snprintf(prefix, sizeof(prefix), "%s-%d", opts->name, (int)getpid());
	snprintf(mem, sizeof(mem), "%u", opts->mem_mb);
	args[argc++] = (char *)opts->argv0;
	args[argc++] = "-l";
	args[argc++] = "0";
	args[argc++] = "--no-pci";
	args[argc++] = "--file-prefix";
	args[argc++] = prefix;
	if (opts->huge == EAL_HUGE_NO ||
	    (opts->huge == EAL_HUGE_AUTO && free_hugepage_mb() < 2 * opts->mem_mb)) {
		args[argc++] = "--no-huge";
		args[argc++] = "--no-shconf";
	} else {
		/* No files under /dev/hugepages to leak if we are killed. */
		args[argc++] = "--in-memory";
	}
	args[argc++] = "-m";
	args[argc++] = mem;
	if (opts->extra) {
		copy = strdup(opts->extra);
		if (!copy) {
			errmsg_set(err, "out of memory");
			return -1;
		}
		for (tok = strtok_r(copy, " ", &save); tok && argc < 63;
		     tok = strtok_r(NULL, " ", &save)) {
			args[argc++] = tok;
		}
	}
	args[argc] = NULL;
	ret = rte_eal_init(argc, args);
	free(copy);
	if (ret < 0) {
		errmsg_set(err, "cannot start DPDK's EAL: %s", rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}
