/* What the files of the POSIX port share (port_posix.h is the API): the cell itself,
 * and the steps the open, wake, wait, loop and socket files call in each other. Every
 * function here but port_set_err, port_thread_prio and port_deadline_of runs with the
 * cell's lock held. Private to cell/. */
#ifndef RTVIO_CELL_PORT_CELL_H
#define RTVIO_CELL_PORT_CELL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gvsock.h"
#include "port_posix.h"
#include "vhost_front.h"

struct rtvio_cell {
	pthread_mutex_t lock;	/* serialises the stack and everything below */
	pthread_cond_t cond;	/* followers wait here for the poller's news */

	/* Fixed at open. */
	int sock;		/* vhost-user socket (non-blocking after the handshake) */
	int memfd;
	uint8_t *region;
	size_t region_size;
	void *stack_mem;
	size_t stack_mem_size;
	struct gv_stack *stack;
	int kick[VHU_VSOCK_QUEUES];
	int call[VHU_VSOCK_QUEUES];
	int wake_fd;		/* eventfd: news for the thread in poll() */
	int loop_fd;		/* eventfd: news for the event loop; drained only by
				 * rtvio_cell_process, so a blocked thread cannot take it */
	int epfd;		/* rtvio_cell_fd(): call fds, sock, loop_fd */
	uint32_t pump_calls;	/* gv_process calls per pump */
	uint64_t poll_ns;	/* spin this long before sleeping (opts.poll_us) */
	uint64_t cid;
	uint64_t features;
	bool mlocked;
	struct gv_layout layout;
	struct gv_ops ops;
	struct gv_config gcfg;

	/* Under lock. */
	uint64_t spin_back_ns;	/* last spin: its thread back on cpu after a gap, 0 none */
	unsigned int spinning;	/* threads spinning on the used rings (lock dropped) */
	uint64_t spin_news_ns;	/* last spin: when it saw news, 0 none */
	int dead;		/* 0, -ECONNRESET or -EIO; sticky */
	bool interrupted;
	bool poller;		/* a thread is in poll() on the fds */
	int poller_prio;	/* its SCHED_FIFO/RR priority, 0 for others */
	int want_prio;		/* a waiter of this priority asked to poll; -1 none */
	bool wake_written;	/* wake_fd has an unread count */
	bool loop_written;	/* loop_fd has an unread count */
	bool fd_used;		/* someone asked for rtvio_cell_fd() */
	bool in_process;	/* inside rtvio_cell_process(): the event loop itself */
	bool more;		/* the last pump stopped with work left */
	unsigned int waiters;	/* threads inside a blocking call */
	struct vhu_reader reader; /* anything the broker sends after the handshake */
};

/* ---- port_posix.c ---- */

/* A one-line explanation into err (when err is not NULL). */
void port_set_err(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- port_attach.c ---- */

/* What gvsock needs but the CID and features, which the handshake adds. */
void port_gv_config(struct rtvio_cell *c, const struct rtvio_cell_opts *opts);
/* Connects to the broker's socket for this cell and runs the vhost-user handshake
 * (the stack is built half-way through); the socket is non-blocking after. Called
 * before the cell is shared: no lock. */
int port_attach(struct rtvio_cell *c, const char *socket_path,
		const struct rtvio_cell_opts *opts, char *err, size_t errlen);

/* ---- port_wake.c ---- */

void port_wake_loop(struct rtvio_cell *c);
void port_wake_others(struct rtvio_cell *c, bool from_loop);
void port_wake_waiters(struct rtvio_cell *c);
/* gvsock's wake hook (struct gv_ops). */
void port_op_wake(void *ctx, int id);
void port_drain_eventfd(int fd);
void port_mark_dead(struct rtvio_cell *c, int why);
void port_check_socket(struct rtvio_cell *c);
void port_pump(struct rtvio_cell *c);

/* ---- port_wait.c ---- */

int port_thread_prio(void);
int port_wait_locked(struct rtvio_cell *c, uint64_t deadline, int prio);
void port_wait_done(struct rtvio_cell *c, int prio);
uint64_t port_deadline_of(int timeout_ms);

#endif
