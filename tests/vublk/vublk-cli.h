/* SPDX-License-Identifier: MIT */
/* vublk-cli.h: what the commands of the vublk tool share: the connection
 * options every command takes and the seeded data pattern that io writes
 * and verifies (tests reproduce it in Python to check a disk file). */
#ifndef VUBLK_CLI_H
#define VUBLK_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "vublk.h"

/* Options shared by every command; they fill 'opts'. */
struct conn_args {
	struct vublk_opts opts;
	bool json;
};

/* Parses the shared option 'c' with 'arg'; returns 1 if it was one, 0 if
 * not, -1 after printing a usage error. */
int conn_opt(const char *cmd, int c, const char *arg, struct conn_args *ca);
#define CONN_SHORT_OPTS "q:Q:m:R:j"
/* Long-only options, beyond any character. */
#define CONN_OPT_PACKED 0x100
#define CONN_OPT_NO_EVENT_IDX 0x101
#define CONN_LONG_OPTS                                                                        \
	{"queues", required_argument, NULL, 'q'}, {"queue-size", required_argument, NULL, 'Q'}, \
	{"mem", required_argument, NULL, 'm'}, {"reconnect", required_argument, NULL, 'R'},     \
	{"json", no_argument, NULL, 'j'}, {"packed", no_argument, NULL, CONN_OPT_PACKED},       \
	{"no-event-idx", no_argument, NULL, CONN_OPT_NO_EVENT_IDX}
#define CONN_HELP                                                                             \
	"  -q, --queues N       virtqueues to start (default 1)\n"                            \
	"  -Q, --queue-size N   descriptors per queue, power of 2 (default 128)\n"            \
	"  -m, --mem SIZE       guest RAM (default 64M)\n"                                    \
	"  -R, --reconnect MS   reconnect for up to MS when the server goes away\n"           \
	"      --packed         packed virtqueues (fails if the server has none)\n"         \
	"      --no-event-idx   do not ack VIRTIO_RING_F_EVENT_IDX\n"                        \
	"  -j, --json           machine-readable output\n"

/* Connects, printing the error; returns NULL on failure. */
struct vublk *conn_open(const char *path, const struct vublk_opts *opts);

/* The seeded pattern: the 8-byte little-endian word at absolute disk offset
 * 8*k is splitmix64(seed + k), so a misplaced sector never matches. */
void pattern_fill(void *buf, uint64_t offset, uint32_t bytes, uint64_t seed);
/* Returns the offset of the first byte of 'buf' (at disk 'offset') that
 * differs from the pattern, or UINT64_MAX if none; counts them in '*badp'. */
uint64_t pattern_check(const void *buf, uint64_t offset, uint32_t bytes, uint64_t seed,
		       uint64_t *badp);

int cmd_bench(int argc, char **argv);

#endif
