/* SPDX-License-Identifier: MIT */
/* cliutil.h: helpers every command-line tool of the project shares (vdisk,
 * and later vdiskd and vswitchctl): one-line error messages in the house
 * format, size parsing with K/M/G/T suffixes, qemu-style human sizes, JSON
 * output and option-parsing diagnostics.  Nothing here knows about images. */
#ifndef CLIUTIL_H
#define CLIUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "errmsg.h"

/* Exit statuses shared by the tools; 'vdisk check' adds its own above 1. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

/* Long enough for "1023 EiB" and the like, with room to spare. */
#define CLI_HUMAN_SIZE_LEN 32

/* Names the program in every message ('name' is borrowed for the process
 * lifetime); "vdisk" when never called. */
void cli_set_progname(const char *name);
const char *cli_progname(void);

/* Prints "PROG: <message>" as one line on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a failed library call: the sentence in 'err' when the library left
 * one, otherwise "WHAT: strerror(-ret)".  'err' may be NULL. */
void cli_error_ret(const struct errmsg *err, const char *what, int ret);

/* Reports a usage error of command 'cmd' (NULL: the program itself) on one
 * line, pointing at its --help. */
void cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports what getopt_long() objected to.  'c' is its return value ('?' or
 * ':', with opterr = 0 and a leading ':' in the option string), 'argv' the
 * vector it parsed. */
void cli_getopt_error(const char *cmd, int c, char *const argv[]);

/* Parses a byte count: decimal digits, or 0x and hex digits, optionally
 * followed by a suffix K, M, G, T, P or E (powers of 1024, either case,
 * optionally followed by "iB" or "B"), or "B" for bytes.  A decimal number
 * with a suffix may have a fraction ("1.5G") if the result is whole bytes.
 * Returns 0 with the value in '*bytesp', -EINVAL for malformed text or
 * -ERANGE when it does not fit in 64 bits. */
int cli_parse_size(const char *str, uint64_t *bytesp);

/* Parses a plain unsigned decimal (or 0x hex) number into '*valp'.  Returns
 * 0, -EINVAL or -ERANGE. */
int cli_parse_u64(const char *str, uint64_t *valp);

/* Formats 'bytes' as qemu-img does: three significant digits and a binary
 * unit, switching unit at 1000 ("977 KiB", "1 GiB", "512 B").  Returns 'buf'. */
char *cli_human_size(uint64_t bytes, char *buf, size_t buflen);

/* Prints 'obj' pretty-printed with a final newline to 'f'.  Returns 0 or a
 * negative errno when the stream reported an error. */
int cli_json_print(FILE *f, struct json_object *obj);

/* Member 'key' of the object 'o' as an unsigned integer (0 when absent or
 * not a number), or as a string ('dflt' when absent or null; borrowed from
 * 'o'). */
uint64_t cli_json_u64(struct json_object *o, const char *key);
const char *cli_json_str(struct json_object *o, const char *key, const char *dflt);

/* Seconds on the monotonic clock, for timing runs. */
double cli_now(void);

#endif
