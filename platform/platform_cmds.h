/* `rtvio membench` and `rtvio hog` (cli/main.c lists them). Exit status: 0 success,
 * 1 the answer is "no", 2 bad input or usage; `--help` prints the usage on stdout and
 * returns 0. */
#ifndef RTVIO_PLATFORM_CMDS_H
#define RTVIO_PLATFORM_CMDS_H

int cmd_membench(int argc, char **argv); /* cmd_membench.c */
int cmd_hog(int argc, char **argv);      /* cmd_hog.c */

#endif
