/* SPDX-License-Identifier: MIT */
/* vdisk.c: entry point of the vdisk tool, the qemu-img of vdisk images.
 * Finds the subcommand named on the command line and runs it; the commands
 * themselves live in vdisk-cmds.c and (snapshots, backing chains, resize)
 * vdisk-snap.c, datastores in vdisk-ds.c, shared helpers in cliutil.c.  The manual is
 * docs/man/vdisk.1.md. */
#include <stdio.h>
#include <string.h>

#include "cliutil.h"
#include "vdisk-cmds.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
    {"create", vdisk_cmd_create, "create a new image"},
    {"info", vdisk_cmd_info, "show an image's size, layout and state"},
    {"map", vdisk_cmd_map, "show which guest ranges hold data"},
    {"check", vdisk_cmd_check, "check an image's metadata, optionally repair it"},
    {"convert", vdisk_cmd_convert, "copy between raw and vdisk images, keeping holes"},
    {"io", vdisk_cmd_io, "run read, write, discard and flush commands on an image"},
    {"bench", vdisk_cmd_bench, "measure I/O throughput with many requests in flight"},
    {"snapshot", vdisk_cmd_snapshot, "create, list, revert, delete and compare snapshots"},
    {"commit", vdisk_cmd_commit, "write a linked clone's data into its backing file"},
    {"rebase", vdisk_cmd_rebase, "change an image's backing file"},
    {"flatten", vdisk_cmd_flatten, "copy in what the backing chain provides, drop it"},
    {"resize", vdisk_cmd_resize, "change an image's virtual size"},
    {"datastore", vdisk_cmd_datastore, "create, list, remove datastores, set their limits"},
    {"ls", vdisk_cmd_ls, "list a datastore's images, templates and ISO images"},
    {"import", vdisk_cmd_import, "copy an image into a datastore"},
    {"export", vdisk_cmd_export, "copy an image out of a datastore"},
    {"rm", vdisk_cmd_rm, "delete an image of a datastore"},
    {"template", vdisk_cmd_template, "make a datastore image a template, or an image again"},
    {"migrate", vdisk_cmd_migrate, "move an image (and its snapshots) to another datastore"},
    {"serve", vdisk_cmd_serve, "have vdiskd serve an image over vhost-user-blk"},
    {"unserve", vdisk_cmd_unserve, "have vdiskd stop serving an image"},
    {"ps", vdisk_cmd_ps, "list the images vdiskd serves"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: vdisk COMMAND [OPTIONS]... ARGS...\n"
		   "       vdisk COMMAND --help\n"
		   "       vdisk --help | --version\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	}
	fprintf(f, "\nSizes take a suffix K, M, G, T, P or E (powers of 1024).\n"
		   "Exit status: 0 success, 1 failure, 2 usage error; see 'vdisk check --help'.\n");
}

int main(int argc, char **argv)
{
	const char *name;

	cli_set_progname("vdisk");
	if (argc < 2) {
		cli_usage_error(NULL, "missing command");
		return CLI_EXIT_USAGE;
	}
	name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		/* "vdisk help CMD" is "vdisk CMD --help". */
		if (argc > 2 && name[0] != '-') {
			for (size_t i = 0; i < NCOMMANDS; i++) {
				if (!strcmp(argv[2], commands[i].name)) {
					char *help_argv[] = {argv[2], (char *)"--help", NULL};

					return commands[i].run(2, help_argv);
				}
			}
		}
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		printf("vdisk version 0.1.0\n");
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (!strcmp(name, commands[i].name)) {
			return commands[i].run(argc - 1, argv + 1);
		}
	}
	cli_usage_error(NULL, "unknown command '%s'", name);
	return CLI_EXIT_USAGE;
}
