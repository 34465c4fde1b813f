/* `rtvio demo`: a broker and the process cells of a config, with a per-flow table. */
#ifndef RTVIO_CLI_CMD_DEMO_H
#define RTVIO_CLI_CMD_DEMO_H

int cmd_demo(int argc, char **argv); /* cmd_demo.c */

#endif
