/* `rtvio cell`: runs a process cell's configured workload (cli/main.c lists it). Exit
 * status 0 when every message was intact and in order, 1 when not (or the broker was
 * unreachable), 2 bad input or usage: cell_args.c's usage says which case is which. */
#ifndef RTVIO_CELL_CMD_H
#define RTVIO_CELL_CMD_H

int cmd_cell(int argc, char **argv); /* cmd_cell.c */

#endif
