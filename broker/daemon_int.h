/* What the broker daemon's files share (daemon.c: the cells, the data-plane hooks and
 * the loop; daemon_setup.c: opening and closing; daemon_ctl.c: the control socket).
 * Private to broker/. */
#ifndef RTVIO_BROKER_DAEMON_INT_H
#define RTVIO_BROKER_DAEMON_INT_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "admit.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "dataplane.h"
#include "evsig.h"
#include "host.h"
#include "vhost_user.h"
#include "virtq.h"

/* vhost-user messages handled per readiness event and cell: keeps a flooding front
 * end from holding the loop (the socket stays readable and is served again). */
#define VHU_BUDGET 32u
/* ... and per turn of the round, when the broker-wide vhost-user buckets ran short
 * (daemon_vhu.c): what a cell waiting there costs each cell behind it. */
#define VHU_RR_QUANTUM 4u
#define MAX_EVENTS 32
/* How often the call eventfds of the cells notified meanwhile are checked for
 * O_NONBLOCK (check_call_flags). */
#define FLAG_CHECK_NS 10000000ull

enum src_kind { SRC_LISTEN, SRC_CONN, SRC_KICK, SRC_CTL_LISTEN, SRC_CTL_CLIENT, SRC_SIGNAL,
		SRC_WAKE, SRC_ADMIT, SRC_HOST, SRC_POPULATE };

/* What an epoll event points at. */
struct ev_src {
	enum src_kind kind;
	unsigned int cell;  /* SRC_LISTEN, SRC_CONN, SRC_KICK */
	unsigned int queue; /* SRC_KICK */
	unsigned int slot;  /* SRC_CTL_CLIENT */
};

/* A pair of vhost-user token buckets (daemon_vhu.c): messages and heavy ones, their
 * credit (token-ns) as of refill_at. */
struct vhu_buckets {
	uint64_t credit, map_credit, refill_at;
};

/* A cell waiting in the round of the broker-wide buckets, by ticket. */
struct vhu_rr_slot {
	uint64_t ticket;
	unsigned int cell;
};

struct cell {
	struct broker *br;
	unsigned int idx;
	char path[RTVIO_PATH_MAX];
	int listen_fd;
	struct vhu_backend vhu;
	enum broker_cell_state state;
	uint64_t connects, refused;
	uint64_t kicks;                 /* kick events handled (poll = no) */
	bool broken_pending;
	int broken_err;
	const char *broken_why;         /* the cut-off's reason, NULL: ring or memory rules */
	unsigned int broken_queue;
	/* signalled since the last check_call_flags (set by data-plane cores too) */
	atomic_bool notified;
	int kick_reg[VHU_VSOCK_QUEUES]; /* fd registered with epoll, -1 none */
	struct ev_src src_listen, src_conn, src_kick[VHU_VSOCK_QUEUES];
	/* vhost-user budget (daemon_vhu.c): the cell's own buckets, and which of its
	 * sockets wait out of epoll: until vhu_resume_at for its own buckets, or in the
	 * round of the broker-wide ones (rr_wait: what for, rr_ticket: its place). */
	struct vhu_buckets vhu_own;
	uint64_t vhu_resume_at;
	bool conn_paused, listen_paused;
	unsigned int rr_wait;
	uint64_t rr_ticket;
	uint64_t vhu_deferred;          /* times a socket was paused (rtvio stat) */
	/* A connection to undo (cut off, or its front end gone) waits for a token of the
	 * heavy bucket (daemon_cell_drop): its sockets are out of epoll meanwhile, and
	 * drop_next is the state it then leaves the cell in. */
	bool drop_pending;
	enum broker_cell_state drop_next;
	/* Storage the running device uses (core's vq_device keeps pointers into it). */
	struct vq_mem_region mem[VHU_MAX_REGIONS];
	struct vq_device vq[VHU_VSOCK_QUEUES];
	uint64_t inflight[VHU_VSOCK_QUEUES][VQ_INFLIGHT_WORDS(VQ_MAX_SIZE)];
};

struct broker {
	const struct rtvio_config *cfg; /* &live */
	/* The configuration in force, in capacity slots (live.h); admit.c changes it. */
	struct rtvio_config live;
	struct admit *adm;
	struct ev_src src_admit;
	/* Faults the cells' memory in off the loop (populate.h); src_pop: a job ended. */
	struct vhu_pop pop;
	struct ev_src src_pop;
	/* Which client a deferred change reply is for: a slot may be reused meanwhile. */
	uint64_t ctl_ticket[CTL_MAX_CLIENTS], next_ticket;
	unsigned int ctl_current;
	struct broker_opts opts;
	struct dp *dp;
	struct cell *cells;
	unsigned int ncells;
	int ep;
	int kick_ep;	/* several cores: the kick descriptors alone, relayed while the
			 * data plane's write gate holds the loop (daemon_hook_gate_wait) */
	int sig_fd, wake_fd;
	int qos_fd;	/* the PM QoS hold ([broker] pm_qos), -1 none */
	int ctl_fd;
	char ctl_path[RTVIO_PATH_MAX];
	struct ctl_client ctl[CTL_MAX_CLIENTS];
	struct ev_src src_ctl_listen, src_sig, src_wake, src_ctl[CTL_MAX_CLIENTS];
	sigset_t old_mask;
	bool mask_set;
	atomic_bool stop;
	uint64_t start_ns;
	bool any_broken;
	atomic_bool any_notified; /* some cell's notified is set */
	uint64_t flags_due;     /* next check_call_flags */
	struct evsig evsig;     /* every eventfd a cell holds is signalled through it */
	/* ... except, with several data-plane cores, the data plane's notifications:
	 * those of the control path go through this one (under the control lock), each
	 * core's through its own (after the core released the data plane's mutex). */
	struct evsig dp_evsig;
	struct evsig dp_core_evsig[RTVIO_MAX_BROKER_CORES];
	bool multicore;
	bool must_poll; /* some running cell gave no kick fd: poll = no cannot sleep long */
	struct host *host;      /* the [host] cell's endpoint, NULL when none (host.h) */
	bool vhu_any_paused;    /* some cell's socket waits for its budget period */
	uint64_t vhu_resume_due; /* the earliest such period's end */
	/* The broker-wide vhost-user buckets and their round (daemon_vhu.c): whether
	 * anyone waits in it, the next ticket, the cell whose turn it is (NULL: none),
	 * and room to sort the round (ncells slots). */
	struct vhu_buckets vhu_total;
	bool vhu_rr_any;
	uint64_t vhu_rr_seq;
	struct cell *vhu_turn;
	struct vhu_rr_slot *vhu_rr;
	struct ev_src src_host;
};

/* Per-cell lines, under the cell's rate limit (a front end can provoke them). */
#define CLOG(c, ...) vhu_log(&(c)->vhu, __VA_ARGS__)

/* daemon.c */
extern const struct vhu_dev_ops daemon_dev_ops;
void daemon_hook_notify(void *ctx, unsigned cell, unsigned queue);
void daemon_hook_notify_flush(void *ctx);
void daemon_hook_notify_core(void *ctx, unsigned core, unsigned cell, unsigned queue);
void daemon_hook_notify_flush_core(void *ctx, unsigned core);
void daemon_hook_conn_limit(void *ctx, unsigned cell, uint32_t limit, uint64_t count);
void daemon_hook_broken(void *ctx, unsigned cell, int err);
void daemon_hook_wake(void *ctx);
void daemon_hook_gate_wait(void *ctx, uint64_t until_ns);
int daemon_ep_add(struct broker *b, int fd, struct ev_src *src);
void daemon_ep_del(struct broker *b, int fd);
void daemon_cell_disconnect(struct cell *c, enum broker_cell_state next);
/* The cell's front end must go (cut off, gone): at once when undoing it is light or
 * the cell's heavy vhost-user bucket has a token, else once it has one. */
void daemon_cell_drop(struct cell *c, enum broker_cell_state next, uint64_t now);
void daemon_update_must_poll(struct broker *b);
/* A front end knocks on the cell's listening socket: accepted within the vhost-user
 * budget (or refused when one is connected). */
void daemon_cell_accept(struct cell *c, uint64_t now);
/* The cell's vhost-user socket is readable (or a message it sent waits read):
 * handled within its budget; a front end that must go is disconnected. */
void daemon_cell_service(struct cell *c, uint64_t now);

/* daemon_vhu.c: the vhost-user budget (per cell and broker-wide) */
/* Serves the cell's socket within its budget; pauses it when the budget is spent.
 * 0, or the negative errno of vhu_backend_service (drop the connection). */
int daemon_vhu_service(struct cell *c, uint64_t now);
/* May a connection be accepted now (charged as one message)? Else the
 * listening socket pauses. */
bool daemon_vhu_accept(struct cell *c, uint64_t now);
/* Takes a heavy token of the cell's and of the total buckets if both have one (and
 * the round lets the cell draw). */
bool daemon_vhu_take_heavy(struct cell *c, uint64_t now);
/* Undoing the cell's connection waits for a heavy token: its socket and its listening
 * socket leave epoll until then (daemon_vhu_resume undoes it). */
void daemon_vhu_defer_drop(struct cell *c, enum broker_cell_state next, uint64_t now);
/* The connection is gone: nothing of it to put back into epoll. */
void daemon_vhu_forget_conn(struct cell *c);
/* Puts back every paused socket whose cell has a token again, and serves the round
 * of the broker-wide buckets. */
void daemon_vhu_resume(struct broker *b, uint64_t now);

/* daemon_ctl.c */
void daemon_ctl_accept(struct broker *b);
void daemon_ctl_client_event(struct broker *b, unsigned int slot);
void daemon_ctl_client_after(struct broker *b, unsigned int slot, int rc);
uint64_t daemon_ctl_expire(struct broker *b, uint64_t now);

#endif
