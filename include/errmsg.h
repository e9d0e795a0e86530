/* SPDX-License-Identifier: MIT */
/* errmsg.h: the one-sentence error message that library calls a user must
 * understand (open, create, check, migrate) leave for the tool to print.
 * Shared by every library; header-only so no library depends on another. */
#ifndef ERRMSG_H
#define ERRMSG_H

#include <stdarg.h>
#include <stdio.h>

struct errmsg {
	char msg[512];
};

/* Formats one sentence into 'err' (NULL: ignored).  Never fails. */
static inline void __attribute__((format(printf, 2, 3)))
errmsg_set(struct errmsg *err, const char *fmt, ...)
{
	va_list ap;

	if (!err) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

static inline void errmsg_clear(struct errmsg *err)
{
	if (err) {
		err->msg[0] = '\0';
	}
}

#endif
