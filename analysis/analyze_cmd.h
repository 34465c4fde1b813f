/* `rtvio analyze` (cli/main.c lists it). Exit status: 0 every real-time flow meets its
 * deadline, 1 not (or overload), 2 bad input or usage. */
#ifndef RTVIO_ANALYZE_CMD_H
#define RTVIO_ANALYZE_CMD_H

int cmd_analyze(int argc, char **argv); /* cmd_analyze.c */

#endif
