/* The subcommands the broker component provides (cli/main.c lists them). Exit status:
 * 0 success, 1 the answer is "no", 2 bad input or usage; `--help` prints the usage on
 * stdout and returns 0. */
#ifndef RTVIO_BROKER_CMDS_H
#define RTVIO_BROKER_CMDS_H

int cmd_broker(int argc, char **argv);    /* cmd_broker.c */
int cmd_stat(int argc, char **argv);      /* cmd_stat.c */
int cmd_calibrate(int argc, char **argv); /* cmd_calibrate.c */
/* cmd_change.c: run-time changes. kind "cell" or "flow", argv[1] "add" or "remove". */
int cmd_change(const char *kind, int argc, char **argv);
int cmd_flow(int argc, char **argv);
int cmd_config(int argc, char **argv);

#endif
