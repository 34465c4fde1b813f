/* The socket calls: gvsock's, with the cell's lock taken and an optional wait
 * (port_posix.h). */
#include "port_posix.h"
#include "port_cell.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

/* Short calls: take the lock and refuse on a dead cell ... */
static int enter(struct rtvio_cell *c)
{
	pthread_mutex_lock(&c->lock);
	return c->dead ? -ECONNRESET : 0;
}

/* ... and on the way out, tell waiting threads when this call changed a socket's
 * state in a way only we know about (a close, a shutdown); news from the broker
 * reaches them through gvsock's wake hook and the call eventfds instead. */
static int leave(struct rtvio_cell *c, int rc, bool changed)
{
	if (changed)
		port_wake_waiters(c);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int rtvio_socket(struct rtvio_cell *c, unsigned int type)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_socket(c->stack, type);
	return leave(c, rc, false);
}

int rtvio_bind(struct rtvio_cell *c, int id, uint32_t port)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_bind(c->stack, id, port);
	return leave(c, rc, false);
}

int rtvio_listen(struct rtvio_cell *c, int id, uint32_t port, uint32_t backlog)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_listen(c->stack, id, port, backlog);
	return leave(c, rc, false);
}

int rtvio_shutdown(struct rtvio_cell *c, int id, unsigned int how)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_shutdown(c->stack, id, how);
	return leave(c, rc, true);
}

int rtvio_max_message(struct rtvio_cell *c, int id)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_max_message(c->stack, id);
	return leave(c, rc, false);
}

int rtvio_sock_error(struct rtvio_cell *c, int id)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_sock_error(c->stack, id);
	return leave(c, rc, false);
}

int rtvio_close(struct rtvio_cell *c, int id)
{
	int rc;

	/* Even on a dead cell the id must become free. */
	pthread_mutex_lock(&c->lock);
	rc = gv_close(c->stack, id);
	return leave(c, rc, true);
}

unsigned int rtvio_poll_events(struct rtvio_cell *c, int id)
{
	unsigned int ev;

	pthread_mutex_lock(&c->lock);
	ev = c->dead ? GV_POLLERR | GV_POLLHUP : gv_poll_events(c->stack, id);
	pthread_mutex_unlock(&c->lock);
	return ev;
}

/* What every blocking call holds while it waits: the cell's lock, its place among
 * the waiters, its deadline and the priority it waits with. */
struct blocking {
	uint64_t deadline;
	int prio;
	int timeout_ms;
};

static void block_begin(struct rtvio_cell *c, struct blocking *b, int timeout_ms)
{
	b->deadline = port_deadline_of(timeout_ms);
	b->prio = timeout_ms ? port_thread_prio() : 0;
	b->timeout_ms = timeout_ms;
	pthread_mutex_lock(&c->lock);
	c->waiters++;
}

/* Waits for news (0), or says why not: the deadline passed, or a non-blocking call
 * (-EAGAIN from the caller's last attempt stays the answer). */
static int block_wait(struct rtvio_cell *c, const struct blocking *b, int last)
{
	if (b->timeout_ms == 0)
		return last;
	return port_wait_locked(c, b->deadline, b->prio);
}

static void block_end(struct rtvio_cell *c, const struct blocking *b)
{
	port_wait_done(c, b->prio);
	c->waiters--;
	pthread_mutex_unlock(&c->lock);
}

/* One attempt of a blocking call, under the cell's lock: a gv_* call that says
 * -EAGAIN while it has to wait. */
struct attempt {
	int (*fn)(struct rtvio_cell *c, const struct attempt *a);
	int id;
	/* What the call reads or fills in, by kind. */
	void *buf;
	size_t len;
	unsigned int flags, *out_flags;
	const void **cptr;
	void **ptr;
	size_t *lenp;
	uint64_t *peer_cid;
	uint32_t *peer_port;
};

/* Repeats a->fn until it says something other than -EAGAIN, the cell is gone or the
 * deadline passes. Each round tries once, pumps the rings and tries again before it
 * waits. dead_first: a cell whose broker is gone is refused at once; otherwise what
 * was delivered before stays readable. */
static int block_until(struct rtvio_cell *c, int timeout_ms, const struct attempt *a,
		       bool dead_first)
{
	struct blocking b;
	int rc;

	block_begin(c, &b, timeout_ms);
	for (;;) {
		rc = dead_first && c->dead ? -ECONNRESET : a->fn(c, a);
		if (rc != -EAGAIN)
			break;
		if (c->dead) {
			rc = -ECONNRESET;
			break;
		}
		port_pump(c);
		rc = a->fn(c, a);
		if (rc != -EAGAIN || (rc = block_wait(c, &b, rc)))
			break;
	}
	block_end(c, &b);
	return rc;
}

static int try_accept(struct rtvio_cell *c, const struct attempt *a)
{
	return gv_accept(c->stack, a->id, a->peer_cid, a->peer_port);
}

static int try_recv(struct rtvio_cell *c, const struct attempt *a)
{
	return gv_recv(c->stack, a->id, a->buf, a->len, a->flags, a->out_flags);
}

static int try_loan(struct rtvio_cell *c, const struct attempt *a)
{
	return gv_loan(c->stack, a->id, a->len, a->ptr);
}

static int try_borrow(struct rtvio_cell *c, const struct attempt *a)
{
	return gv_borrow(c->stack, a->id, a->cptr, a->lenp, a->out_flags);
}

int rtvio_connect(struct rtvio_cell *c, int id, uint64_t cid, uint32_t port, int timeout_ms)
{
	struct blocking b;
	int rc;

	block_begin(c, &b, timeout_ms);
	rc = c->dead ? -ECONNRESET : gv_connect(c->stack, id, cid, port);
	while (rc == -EINPROGRESS && timeout_ms) {
		port_pump(c);
		if (!c->dead && !gv_sock_connecting(c->stack, id)) {
			/* Answered: refused, timed out or reset (the pending error), or
			 * connected, even when the peer left no room to write or has
			 * already shut the connection down again; the next calls say so. */
			rc = gv_sock_error(c->stack, id);
			break;
		}
		rc = port_wait_locked(c, b.deadline, b.prio);
		if (!rc)
			rc = -EINPROGRESS;
	}
	block_end(c, &b);
	return rc;
}

int rtvio_accept(struct rtvio_cell *c, int id, uint64_t *peer_cid, uint32_t *peer_port,
		 int timeout_ms)
{
	const struct attempt a = { .fn = try_accept, .id = id, .peer_cid = peer_cid,
				   .peer_port = peer_port };

	return block_until(c, timeout_ms, &a, true);
}

ssize_t rtvio_send(struct rtvio_cell *c, int id, const void *buf, size_t len,
		   unsigned int flags, int timeout_ms)
{
	const uint8_t *p = buf;
	struct blocking b;
	size_t done = 0;
	int rc;

	if (len > INT32_MAX)
		len = INT32_MAX;
	block_begin(c, &b, timeout_ms);
	for (bool pumped = false;;) {
		if (c->dead) {
			rc = -ECONNRESET;
			break;
		}
		rc = gv_send(c->stack, id, p + done, len - done, flags & RTVIO_MSG_EOR);
		if (rc > 0) {
			done += (size_t)rc;
			pumped = false;
			/* A SEQPACKET send is all or nothing; a STREAM one may be partial. */
			if (done >= len)
				break;
			continue;
		}
		if (rc != -EAGAIN)
			break;
		/* Credit and TX slots come back with the broker's completions. */
		if (!pumped) {
			port_pump(c);
			pumped = true;
			continue;
		}
		if ((rc = block_wait(c, &b, rc)))
			break;
	}
	block_end(c, &b);
	if (done)
		return (ssize_t)done;
	return rc;
}

ssize_t rtvio_recv(struct rtvio_cell *c, int id, void *buf, size_t len, unsigned int flags,
		   unsigned int *out_flags, int timeout_ms)
{
	const struct attempt a = { .fn = try_recv, .id = id, .buf = buf, .len = len,
				   .flags = flags, .out_flags = out_flags };

	return block_until(c, timeout_ms, &a, false);
}


/* ---- Zero copy ---- */

int rtvio_set_zerocopy(struct rtvio_cell *c, int id, uint32_t max_bufs)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_set_zerocopy(c->stack, id, max_bufs);
	return leave(c, rc, false);
}

int rtvio_loan(struct rtvio_cell *c, int id, size_t len, void **ptr, int timeout_ms)
{
	const struct attempt a = { .fn = try_loan, .id = id, .len = len, .ptr = ptr };

	return block_until(c, timeout_ms, &a, true);
}

int rtvio_commit(struct rtvio_cell *c, int id, size_t len, unsigned int flags)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	/* On a dead cell gv_commit gives the loan back and says why. */
	rc = gv_commit(c->stack, id, len, flags & RTVIO_MSG_EOR);
	return leave(c, rc, false);
}

int rtvio_borrow(struct rtvio_cell *c, int id, const void **ptr, size_t *len,
		 unsigned int *out_flags, int timeout_ms)
{
	const struct attempt a = { .fn = try_borrow, .id = id, .cptr = ptr, .lenp = len,
				   .out_flags = out_flags };

	return block_until(c, timeout_ms, &a, false);
}

int rtvio_release(struct rtvio_cell *c, int id, size_t n)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = gv_release(c->stack, id, n);
	return leave(c, rc, false);
}
