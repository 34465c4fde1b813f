/* News in a cell: what arrives from the broker (call eventfds, the vhost-user
 * socket, gvsock's progress) and who must hear of it (followers, the poller, the
 * event loop). Everything here runs with the cell's lock held. */
#include "port_posix.h"
#include "port_cell.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

/* Makes rtvio_cell_fd() readable for an event loop, if there is one (lock held):
 * loop_fd is written at most once until rtvio_cell_process drains it. */
void port_wake_loop(struct rtvio_cell *c)
{
	uint64_t one = 1;

	if (c->fd_used && !c->loop_written &&
	    write(c->loop_fd, &one, sizeof(one)) == sizeof(one))
		c->loop_written = true;
}

/* Something other threads may wait for has changed (lock held). Followers get the
 * condition; a thread inside poll() gets wake_fd, and an event loop watching
 * rtvio_cell_fd() (unless it is the caller: `from_loop`) loop_fd, each written at
 * most once until drained. */
void port_wake_others(struct rtvio_cell *c, bool from_loop)
{
	uint64_t one = 1;

	if (c->waiters)
		pthread_cond_broadcast(&c->cond);
	if (c->poller && !c->wake_written &&
	    write(c->wake_fd, &one, sizeof(one)) == sizeof(one))
		c->wake_written = true;
	if (!from_loop)
		port_wake_loop(c);
}

void port_wake_waiters(struct rtvio_cell *c)
{
	port_wake_others(c, false);
}

void port_op_wake(void *ctx, int id)
{
	struct rtvio_cell *c = ctx;

	(void)id;
	port_wake_others(c, c->in_process);
}

void port_drain_eventfd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

void port_mark_dead(struct rtvio_cell *c, int why)
{
	if (c->dead)
		return;
	c->dead = why;
	/* Everyone blocked must learn it now. */
	pthread_cond_broadcast(&c->cond);
	if (c->poller && !c->wake_written) {
		uint64_t one = 1;

		if (write(c->wake_fd, &one, sizeof(one)) == sizeof(one))
			c->wake_written = true;
	}
	port_wake_loop(c);
}

/* The broker never sends requests to a front end on this socket; whatever comes is
 * read and dropped, and end of file means the broker is gone. Lock held; the
 * socket is non-blocking. */
void port_check_socket(struct rtvio_cell *c)
{
	int rc;

	while (!c->dead) {
		rc = vhu_reader_read(c->sock, &c->reader);
		if (rc == 0)
			return;
		if (rc < 0) {
			port_mark_dead(c, -ECONNRESET);
			return;
		}
		vhu_reader_reset(&c->reader);
	}
}

/* Lock held: everything that can be done without blocking. gvsock returns a
 * positive count while there may be more (it then leaves the used-buffer
 * notifications off), so it is called until it reports nothing; a flood that
 * outlasts the bound leaves `c->more` set and the next wait does not sleep. */
void port_pump(struct rtvio_cell *c)
{
	int rc = 0;

	if (c->dead)
		return;
	for (uint32_t i = 0; i < c->pump_calls; i++) {
		rc = gv_process(c->stack);
		if (rc <= 0)
			break;
	}
	c->more = rc > 0;
	if (rc < 0)
		port_mark_dead(c, -EIO);
	else if (c->more)
		/* Work left with the used-buffer notifications still off: no call
		 * eventfd will say so, so whoever sleeps on the cell, the event loop
		 * included, must be told to look again. */
		port_wake_others(c, false);
}
