/* The host endpoint's private objects, shared by host.c (set-up, listeners, accept)
 * and host_bridge.c (one bridge: a gvsock socket joined to a Unix socket). */
#ifndef RTVIO_BROKER_HOST_INTERNAL_H
#define RTVIO_BROKER_HOST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "gvsock.h"
#include "host.h"
#include "virtq.h"

/* Longest "CONNECT P\n" line a host program may send. */
#define HOST_LINE_MAX 32u
/* A host program that has not sent its line within this long loses its bridge slot
 * to the next connection that needs one (hb_alloc). */
#define HOST_HELLO_NS 1000000000ull

enum hb_state {
	HB_FREE,
	HB_HELLO,      /* host program connected: reading "CONNECT P\n" */
	HB_CONNECTING, /* gv_connect toward the cell in progress */
	HB_OPEN,       /* bytes flow both ways */
};

struct host_bridge {
	enum hb_state state;
	int fd;             /* the Unix socket, non-blocking */
	int id;             /* the gvsock socket, -1 none */
	uint32_t ev;        /* epoll interest registered for fd */
	uint64_t since;     /* HB_HELLO: when the host program connected */
	bool fd_eof;        /* the host program sent its last byte */
	bool cell_eof;      /* the cell sent its last byte */
	bool shut_cell;     /* SHUTDOWN(SEND) toward the cell sent */
	bool shut_fd;       /* shutdown(SHUT_WR) toward the host program done */
	uint32_t in_len;    /* host program -> cell, not yet taken by gv_send */
	uint32_t out_len;   /* cell -> host program, not yet written */
	uint8_t in[HOST_BUF];
	uint8_t out[HOST_BUF];
};

struct host_listener {
	int id;             /* gvsock listener on `port` */
	uint32_t port;
};

struct host {
	const struct rtvio_config *cfg;
	unsigned int cell;
	struct dp *dp;
	bool attached;
	int ep;             /* epoll over listen_fd and every bridge's fd */
	int listen_fd;      /* <uds_path> */
	char path[RTVIO_PATH_MAX];
	/* The pseudo-cell's region (its "guest memory") and stack. */
	uint8_t *region;
	uint64_t region_size;
	void *stack_mem;
	struct gv_stack *st;
	struct vq_mem_region mem;
	struct vq_device vq[2];
	uint64_t inflight[2][VQ_INFLIGHT_WORDS(VQ_MAX_SIZE)];
	struct host_listener *lis;
	unsigned int nlis;
	struct host_bridge *br;
	unsigned int nbr;
	/* The pass budget (model_host_pass): bridges stepped and bytes copied per
	 * host_step; `left` counts down the bytes of the current one. Bridges and
	 * listeners are served round robin from `next_br` and `next_lis`. */
	struct model_host_pass pass;
	uint64_t left;
	unsigned int next_br, next_lis;
};

/* host_bridge.c */
/* A free bridge slot, else one whose host program has sat in HB_HELLO for
 * HOST_HELLO_NS (closed first), else NULL. */
struct host_bridge *hb_alloc(struct host *h);
/* Starts a bridge for a connection the cell opened (accepted on a listener). */
void hb_from_cell(struct host *h, int id, uint32_t port);
/* Starts a bridge for a host program that connected to uds_path. */
void hb_from_host(struct host *h, int fd);
/* One bounded round of work: at most MODEL_HOST_BRIDGE_CALLS system calls, and bytes
 * copied taken from h->left. True when anything moved. */
bool hb_step(struct host *h, struct host_bridge *b);
/* Whether a bridge not stepped this pass has work a step could do now that its
 * Unix socket's readiness does not show: a connection answered, bytes toward the
 * cell it can take, bytes from the cell with room for them, an end to pass on. */
bool hb_pending(struct host *h, struct host_bridge *b);
/* Closes both sides and frees the slot. */
void hb_close(struct host *h, struct host_bridge *b);

#endif
