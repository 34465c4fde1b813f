/* The rtvio subcommands. Each lives with the component it drives and follows one
 * convention: exit status 0 success, 1 the answer is "no", 2 bad input or usage;
 * `--help` prints its usage on stdout and returns 0. */
#ifndef RTVIO_CLI_COMMANDS_H
#define RTVIO_CLI_COMMANDS_H

int cmd_broker(int argc, char **argv);    /* broker/cmd_broker.c */
int cmd_stat(int argc, char **argv);      /* broker/cmd_stat.c */
int cmd_cell(int argc, char **argv);      /* cell/cmd_cell.c */
int cmd_demo(int argc, char **argv);      /* cli/cmd_demo.c */
int cmd_analyze(int argc, char **argv);   /* analysis/cmd_analyze.c */
int cmd_calibrate(int argc, char **argv); /* broker/cmd_calibrate.c */
int cmd_membench(int argc, char **argv);  /* platform/cmd_membench.c */
int cmd_hog(int argc, char **argv);       /* platform/cmd_hog.c */
int cmd_bench(int argc, char **argv);     /* bench/cmd_bench.c */

#endif
