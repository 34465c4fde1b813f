/* `rtvio cell`: runs a process cell's configured workload (cli/main.c lists it). Exit
 * status 0 when every message was intact and in order, 1 when not (or the broker was
 * unreachable), 2 bad input or usage: cell_args.c's usage says which case is which. */
#ifndef RTVIO_CELL_CMD_H
#define RTVIO_CELL_CMD_H

int cmd_cell(int argc, char **argv); /* cmd_cell.c */
/* `rtvio hostile`: a cell that misbehaves on purpose (cmd_hostile.c). Exit status 0
 * when it attached at least once, 1 when never, 2 on usage errors. */
int cmd_hostile(int argc, char **argv);

#endif
