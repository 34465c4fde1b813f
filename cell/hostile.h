/* `rtvio hostile` (cmd_hostile.c): what its files share. Private to cell/. */
#ifndef RTVIO_CELL_HOSTILE_H
#define RTVIO_CELL_HOSTILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hostile_raw.h"

/* Ports of the hostile pair's own flows: the helper cell streams to the hostile
 * cell on HOSTILE_SINK_PORT and listens for its SEQPACKET messages on
 * HOSTILE_BIG_PORT. */
#define HOSTILE_SINK_PORT 900u
#define HOSTILE_BIG_PORT 901u
#define HOSTILE_MAX_CONNS 4

struct hostile;

struct hostile_mode {
	const char *name;
	const char *what;	/* one line for the usage text */
	uint32_t rx_len;	/* RX buffer length it posts (0: RAW_RXBUF) */
	bool helper;		/* needs the helper cell's traffic */
	bool keep_rx;		/* never gives RX buffers back, never grants credit */
	void (*setup)(struct hostile *h);	/* after each attach */
	void (*step)(struct hostile *h);	/* one non-blocking round */
};

/* One connection the helper opened to us. */
struct hostile_conn {
	bool open;
	uint64_t peer_cid;
	uint32_t peer_port, port;
	uint16_t type;
	uint32_t fwd_cnt, announced;
};

struct hostile {
	const struct hostile_mode *mode;
	const char *path;		/* the hostile cell's vhost-user socket */
	uint64_t victim_cid;
	uint32_t victim_port;
	uint64_t helper_cid;		/* 0 without a helper */
	struct hraw r;
	bool attached;
	bool sock_unread;		/* the mode does not read its vhost-user replies */
	unsigned long steps;
	uint16_t next_port;
	struct hostile_conn conn[HOSTILE_MAX_CONNS];
	bool big_open, big_asked;	/* our SEQPACKET connection to the helper */
	uint32_t big_port;
	/* What it did. */
	unsigned long attaches, attach_failures, cut_off, detached, packets_sent,
		packets_received, vhu_sent, memtables, punched, punch_refused;
};

extern atomic_bool hostile_stop;

/* hostile_modes.c */
extern const struct hostile_mode hostile_modes[];
extern const unsigned int hostile_nmodes;
/* The RX side every mode shares: answers the helper's REQUEST, grants credit
 * (unless the mode keeps its RX buffers), follows our own SEQPACKET connection. */
void hostile_rx(struct hostile *h);

/* hostile_helper.c: a well-behaved cell (the POSIX port) that streams to the
 * hostile cell and takes its SEQPACKET messages, so that the hostile cell has
 * traffic to misbehave with. */
struct hostile_helper;
struct hostile_helper *hostile_helper_start(const char *path, uint64_t hostile_cid);
uint64_t hostile_helper_cid(const struct hostile_helper *hp);
/* Stops it; returns messages it got through (sent + received). */
unsigned long hostile_helper_stop(struct hostile_helper *hp);

#endif
