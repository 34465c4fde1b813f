/* The broker daemon: one vhost-user socket per configured cell, the control socket,
 * and the single-threaded loop that runs the data plane.
 *
 * The loop either busy-polls (poll = yes: dp_run back to back, the sockets checked
 * with a zero timeout every BROKER_POLL_CHECK_NS) or sleeps in epoll on the kick
 * eventfds, the sockets and the signalfd (poll = no), waking no later than the next
 * policing/regulation deadline the data plane names. vhost-user messages, accepts,
 * disconnects and control requests are handled in that same thread between data-path
 * steps: they are start-up, teardown and monitoring work (they may allocate, map and
 * unmap), never part of a step.
 *
 * Every object is allocated in broker_open(); the loop allocates nothing except in
 * the control handlers (jansson), which are monitoring work. */
#ifndef RTVIO_BROKER_DAEMON_H
#define RTVIO_BROKER_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct dp;
struct rtvio_config;

/* How often the busy-polling loop looks at its sockets and signals. */
#define BROKER_POLL_CHECK_NS 100000ull

enum broker_cell_state {
	BROKER_CELL_WAITING,   /* no front end connected */
	BROKER_CELL_CONNECTED, /* a front end is connected (device running or not) */
	BROKER_CELL_BROKEN,    /* cut off after breaking its ring rules; may reconnect */
};

struct broker_cell_info {
	const char *name;
	uint32_t cid;
	enum broker_cell_state state;
	bool running;          /* rings started and attached to the data plane */
	uint64_t connects;     /* front ends accepted so far */
	uint64_t refused;      /* connections refused (one already connected) */
	uint64_t kicks;        /* kick events handled (poll = no) */
	int broken_err;        /* why it was last cut off (-errno), 0 if never */
	uint64_t vhu_deferred; /* times its socket waited for its vhost-user budget period */
};

struct broker_opts {
	bool verbose;
};

/* Creates the socket directory (0700) if missing, removes stale sockets, listens on
 * <socket_dir>/<cell>.sock for every cell and on <socket_dir>/control.sock, creates
 * the data plane. The broker keeps its own copy of cfg with room for the cells and
 * flows [broker] max_cells and max_flows allow (broker/live.h); broker_config()
 * returns that copy, whose vacant slots callers skip. On failure writes one line into err
 * and returns -errno (nothing is left behind). */
int broker_open(const struct rtvio_config *cfg, const struct broker_opts *opts,
		struct broker **out, char *err, size_t errlen);

/* Applies the real-time settings of [broker] (pinning, SCHED_FIFO, mlockall); each
 * one that cannot be applied gives a warning line on stderr and a fallback. */
void broker_apply_rt(struct broker *b);

/* Serves until broker_stop() or SIGTERM/SIGINT (blocked and read through a
 * signalfd created by broker_open()). Returns 0 after a clean stop, -errno when the
 * loop itself fails. */
int broker_run(struct broker *b);

/* Asks the loop to return (from a control request, or another thread in tests:
 * only sets a flag and wakes the loop). */
void broker_stop(struct broker *b);

/* Detaches every cell (its peers' connections are reset), closes every socket and
 * unlinks the socket files, frees everything. */
void broker_close(struct broker *b);

/* ---- Introspection (control socket, tests); call from the loop's thread, or
 * after broker_run returned. ---- */
const struct rtvio_config *broker_config(const struct broker *b);
struct dp *broker_dp(const struct broker *b);
unsigned broker_ncells(const struct broker *b);
int broker_cell_info(const struct broker *b, unsigned cell, struct broker_cell_info *out);
uint64_t broker_uptime_ns(const struct broker *b);
/* Changes applied since start (`rtvio stat`: generation). */
uint64_t broker_generation(const struct broker *b);
/* Slot `cell` holds a cell (slots beyond those in use are vacant: live.h). */
bool broker_cell_present(const struct broker *b, unsigned cell);
const char *broker_cell_state_name(enum broker_cell_state s);

#endif
