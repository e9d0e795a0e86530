/* SPDX-License-Identifier: MIT */
/* eal.h: how the project's DPDK daemons (vswitchd, vdiskd) start DPDK's
 * EAL: no PCI devices, a file prefix of their own (so several daemons and
 * test processes coexist), hugepages when enough are free and otherwise
 * --no-huge --no-shconf, plus whatever the user adds with --eal. */
#ifndef TOOLS_EAL_H
#define TOOLS_EAL_H

#include "errmsg.h"

enum eal_huge { EAL_HUGE_AUTO, EAL_HUGE_YES, EAL_HUGE_NO };

struct eal_opts {
	const char *argv0;
	const char *name;     /* prefix of the EAL file prefix ("vswitchd") */
	enum eal_huge huge;
	unsigned mem_mb;      /* EAL memory; hugepages are used in auto mode
			       * only when twice this much is free */
	const char *extra;    /* more EAL arguments, space separated; NULL */
};

/* Parses "auto", "yes" or "no" into '*hugep'; -EINVAL otherwise. */
int eal_parse_huge(const char *text, enum eal_huge *hugep);
/* Starts the EAL.  Returns 0, or -1 with the reason in 'err'. */
int eal_start(const struct eal_opts *opts, struct errmsg *err);

#endif
