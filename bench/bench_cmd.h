/* `rtvio bench` (cli/main.c lists it). Exit status: 0 the report was written, 1 a
 * scenario could not run at all, 2 bad input or usage (its usage says more). */
#ifndef RTVIO_BENCH_CMD_H
#define RTVIO_BENCH_CMD_H

int cmd_bench(int argc, char **argv); /* cmd_bench.c */

#endif
