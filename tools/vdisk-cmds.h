/* SPDX-License-Identifier: MIT */
/* vdisk-cmds.h: the subcommands of the vdisk tool.  vdisk.c picks one by
 * name and hands it the rest of the command line, argv[0] being the
 * command's name; each returns the process exit status. */
#ifndef VDISK_CMDS_H
#define VDISK_CMDS_H

int vdisk_cmd_create(int argc, char **argv);
int vdisk_cmd_info(int argc, char **argv);
int vdisk_cmd_map(int argc, char **argv);
int vdisk_cmd_check(int argc, char **argv);
int vdisk_cmd_convert(int argc, char **argv);
int vdisk_cmd_io(int argc, char **argv);
int vdisk_cmd_bench(int argc, char **argv);

#endif
