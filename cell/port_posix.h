/* The POSIX port of gvsock: makes an ordinary Linux process a cell.
 *
 * rtvio_cell_open() creates the communication region (a memfd of `region` bytes,
 * mapped shared and page-locked when permitted), lays out the rx (0) and tx (1)
 * rings and their buffers inside it with gvsock, connects to the broker's socket
 * for this cell as the vhost-user front end and sends what QEMU 7.2 sends
 * (vhost_front.h); the broker's GET_CONFIG reply gives the cell its CID. The region
 * is the only memory the broker sees; descriptor addresses are guest addresses
 * 0x100000000 + offset.
 *
 * Notifications: one kick eventfd per queue (we write it when core says the broker
 * wants a kick) and one call eventfd per queue (the broker writes it).
 *
 * Threads: every call may be made from any thread; one mutex serialises the stack.
 * Blocking calls (timeout_ms != 0) wait without the mutex: one waiting thread polls
 * the call eventfds and the vhost-user socket, processes what arrived and wakes the
 * others (leader/followers), so several threads of one cell can block at once. The
 * polling role goes to the waiter of highest real-time priority, so that a
 * real-time thread never waits for a lower-priority one to be scheduled.
 *
 * Timeouts (`timeout_ms` arguments): 0 = non-blocking (-EAGAIN / -EINPROGRESS),
 * < 0 = wait as long as it takes, > 0 = at most that many milliseconds (-ETIMEDOUT).
 *
 * Broker gone: EOF on the vhost-user socket (seen by any blocking call, or by
 * rtvio_cell_process) makes the cell dead: every later socket call returns
 * -ECONNRESET, blocked calls return it at once, and rtvio_cell_error() says why
 * (-ECONNRESET: the broker closed the socket; -EIO: the rings were broken).
 *
 * Event loops: rtvio_cell_fd() is an epoll descriptor (pollable, nestable in the
 * caller's poll/epoll) that becomes readable whenever the stack may have news: a
 * call eventfd, the vhost-user socket, or another thread's action (including news
 * that a thread blocked in a call of this cell took from the broker: the loop has
 * an eventfd of its own that only rtvio_cell_process() drains). When it is
 * readable, call rtvio_cell_process() and then retry non-blocking calls (or look at
 * rtvio_poll_events()). Until rtvio_cell_process() runs, it may stay readable; when
 * rtvio_cell_process() leaves work behind (a flood outlasted its bound), it is
 * readable again at once.
 *
 * Real time: after rtvio_cell_open() nothing allocates. Non-blocking calls make no
 * system call except the kick eventfd write when the broker asked for kicks, and an
 * eventfd write to wake another thread of this cell that is blocked or the event
 * loop. */
#ifndef RTVIO_GUEST_PORT_POSIX_H
#define RTVIO_GUEST_PORT_POSIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gvsock.h"

/* Device (guest) address of region offset 0 — deliberately not 0, so that an
 * offset can never pass for an address (QEMU puts RAM at low addresses instead). */
#define RTVIO_CELL_GUEST_BASE 0x100000000ull

struct rtvio_cell_opts {
	uint32_t queue_size;	/* 0: GV_DEFAULT_QUEUE_SIZE */
	uint32_t rx_buf_size;	/* bytes per RX buffer incl. header; 0: 4096 */
	uint32_t tx_payload;	/* largest TX packet payload; 0: 64 KiB */
	uint32_t max_sockets;	/* 0: 64 */
	uint32_t rcvbuf;	/* receive budget per socket; 0: 256 KiB */
	uint64_t connect_timeout_ns; /* gvsock's REQUEST timeout; 0: 2 s */
	int handshake_timeout_ms; /* each vhost-user reply; 0: 5000 */
	int attach_wait_ms;	/* keep retrying while the broker socket is absent or
				 * refuses, up to this long; 0: try once */
	bool no_mlock;		/* do not try to page-lock the region */
	/* Polling: a blocking call spins on the used rings this long before it
	 * sleeps on the call eventfd (0: sleep at once). Costs a core meanwhile. */
	uint32_t poll_us;
	/* Tests only: gv_process calls per pump before it stops with work left
	 * (0 = 64); 1 makes "work left" easy to reach. */
	uint32_t test_pump_calls;
};

struct rtvio_cell;

/* Opens a cell on the broker socket `socket_path`. Returns the cell, or NULL with
 * errno set and a one-line explanation in err (if err is not NULL):
 *   ENOENT / ECONNREFUSED  no broker listening on socket_path;
 *   ENOSPC                 the region is too small for the rings and buffers;
 *   ENOTSUP, EPROTO, ETIMEDOUT, ECONNRESET  the vhost-user handshake failed;
 *   ENOMEM, EMFILE, ...    resources. */
struct rtvio_cell *rtvio_cell_open(const char *socket_path, size_t region,
				   const struct rtvio_cell_opts *opts, char *err, size_t errlen);
/* Detaches (the broker sees EOF and resets our connections) and frees everything.
 * No thread may be inside a call on the cell any more. */
void rtvio_cell_close(struct rtvio_cell *c);

uint64_t rtvio_cell_cid(const struct rtvio_cell *c);
/* True when the region and the stack's memory are page-locked. */
bool rtvio_cell_mlocked(const struct rtvio_cell *c);
/* Negotiated virtio features (VIRTIO_VSOCK_F_SEQPACKET is bit 1). */
uint64_t rtvio_cell_features(const struct rtvio_cell *c);
/* 0 while the broker is there; -ECONNRESET once it closed the socket; -EIO once the
 * rings were found broken. Sticky. */
int rtvio_cell_error(struct rtvio_cell *c);
/* The epoll descriptor described above; owned by the cell. */
int rtvio_cell_fd(struct rtvio_cell *c);
/* Non-blocking: drains the notification eventfds, checks the vhost-user socket for
 * EOF, runs gv_process. Returns 0, or rtvio_cell_error() once dead. */
int rtvio_cell_process(struct rtvio_cell *c);
/* Makes every blocking call on the cell, now and later, return -EINTR (for a clean
 * stop from a signal-handling thread). Non-blocking calls keep working. */
void rtvio_cell_interrupt(struct rtvio_cell *c);
void rtvio_cell_stats(struct rtvio_cell *c, struct gv_stats *out);
/* Diagnostics of polling (opts.poll_us), for the last spin of a blocking call:
 * when its thread came back on its cpu after being preempted (0: it was not), and
 * when it saw the broker's completion (0: it saw none and slept), CLOCK_MONOTONIC
 * ns. Against a message's send stamp they split its latency into waiting for the
 * cpu and waiting for the broker (docs/bench.md, size). */
void rtvio_cell_spin_times(struct rtvio_cell *c, uint64_t *back_ns, uint64_t *news_ns);
/* Diagnostics: the real-time priority of the thread now polling for the cell (0
 * for a normal thread), or -1 when no thread is waiting. */
int rtvio_cell_poller_prio(struct rtvio_cell *c);

/* ---- Sockets: gvsock's calls with the lock taken and an optional wait ------------ */

#define RTVIO_SOCK_STREAM GV_SOCK_STREAM
#define RTVIO_SOCK_SEQPACKET GV_SOCK_SEQPACKET
#define RTVIO_MSG_EOR 0x1u	/* rtvio_send: set EOR on a SEQPACKET message */

int rtvio_socket(struct rtvio_cell *c, unsigned int type);
int rtvio_bind(struct rtvio_cell *c, int id, uint32_t port);
int rtvio_listen(struct rtvio_cell *c, int id, uint32_t port, uint32_t backlog);
/* 0 once the peer accepted (it may have shut the connection down again already, or
 * left no room to write yet: the next send or recv tells); -ECONNREFUSED (no
 * listener, or no flow permits it: the broker answers RST), -ETIMEDOUT,
 * -EINPROGRESS (timeout_ms == 0), gvsock's errors. */
int rtvio_connect(struct rtvio_cell *c, int id, uint64_t cid, uint32_t port, int timeout_ms);
/* New socket id, or -EAGAIN / -ETIMEDOUT / -EINTR / gvsock's errors. */
int rtvio_accept(struct rtvio_cell *c, int id, uint64_t *peer_cid, uint32_t *peer_port,
		 int timeout_ms);
/* STREAM: a blocking send returns once all len bytes are queued, or with the count
 * queued so far when it times out or is interrupted after queueing some (-ETIMEDOUT
 * / -EINTR if none). SEQPACKET: the whole message or an error (-EMSGSIZE above
 * rtvio_max_message()). flags: RTVIO_MSG_EOR. */
ssize_t rtvio_send(struct rtvio_cell *c, int id, const void *buf, size_t len,
		   unsigned int flags, int timeout_ms);
/* gv_recv with a wait: bytes (> 0), 0 at end of stream, or an error. flags and
 * out_flags are gvsock's GV_MSG_*; out_flags may be NULL. */
ssize_t rtvio_recv(struct rtvio_cell *c, int id, void *buf, size_t len, unsigned int flags,
		   unsigned int *out_flags, int timeout_ms);
int rtvio_shutdown(struct rtvio_cell *c, int id, unsigned int how);
/* Releases the id (gv_close: never blocks; the stack finishes the close). Works on a
 * dead cell too. */
int rtvio_close(struct rtvio_cell *c, int id);
unsigned int rtvio_poll_events(struct rtvio_cell *c, int id);
int rtvio_max_message(struct rtvio_cell *c, int id);
int rtvio_sock_error(struct rtvio_cell *c, int id);

/* ---- Zero copy: gvsock's loan/commit and borrow/release (gvsock.h) ------------------
 * rtvio_loan waits like rtvio_send for credit and a TX slot; rtvio_borrow waits like
 * rtvio_recv for a piece. The pointers stay good until commit / release / close. */
int rtvio_set_zerocopy(struct rtvio_cell *c, int id, uint32_t max_bufs);
int rtvio_loan(struct rtvio_cell *c, int id, size_t len, void **ptr, int timeout_ms);
/* flags: RTVIO_MSG_EOR. */
int rtvio_commit(struct rtvio_cell *c, int id, size_t len, unsigned int flags);
int rtvio_borrow(struct rtvio_cell *c, int id, const void **ptr, size_t *len,
		 unsigned int *out_flags, int timeout_ms);
int rtvio_release(struct rtvio_cell *c, int id, size_t n);

#endif
