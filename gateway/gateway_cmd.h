/* `rtvio gateway CONFIG REMOTE`: the gateway cell of [remote REMOTE], carrying that
 * remote's flows between this broker and Cyclone DDS (gateway.h, docs/gateway.md).
 * Exit status: 0 clean stop, 1 the broker or DDS failed, 2 bad usage or config. */
#ifndef RTVIO_GATEWAY_GATEWAY_CMD_H
#define RTVIO_GATEWAY_GATEWAY_CMD_H

int cmd_gateway(int argc, char **argv); /* cmd_gateway.c */

#endif
