/* Each cell's vhost-user budget ([broker] vhost_user_budget, vhost_user_maps;
 * docs/broker.md "vhost-user budget"): the loop handles at most vhu_msgs messages from
 * one cell's socket per period, of them at most vhu_maps memory-table changes or
 * accepted connections. Beyond that the loop stops watching the cell's socket (or its
 * listening socket) until the period ends: the cell waits on its own socket, nothing
 * is dropped, and the loop never blocks nor spins on a socket it is not reading.
 *
 * A period opens at the first work after the previous one ended, so that in any
 * interval of length t a cell gets at most ceil(t / period) + 1 periods' worth: what
 * `rtvio analyze` charges (analysis/an_vhu.c). */
#include <errno.h>
#include <string.h>

#include "daemon_int.h"

/* What the cell may still have done in its current period (a new one opens when the
 * last has ended). */
static struct vhu_allow *allow_now(struct cell *c, uint64_t now)
{
	const struct rtvio_broker_cfg *k = &c->br->cfg->broker;

	if (now >= c->vhu_period_end) {
		c->vhu_left.msgs = k->vhu_msgs;
		c->vhu_left.maps = k->vhu_maps;
		c->vhu_period_end = now + k->vhu_period_ns;
	}
	return &c->vhu_left;
}

/* fd leaves epoll until the cell's period ends (daemon_vhu_resume puts it back). */
static void pause_fd(struct cell *c, int fd, bool *paused)
{
	struct broker *b = c->br;

	daemon_ep_del(b, fd);
	*paused = true;
	c->vhu_deferred++;
	if (!b->vhu_any_paused || c->vhu_period_end < b->vhu_resume_due)
		b->vhu_resume_due = c->vhu_period_end;
	b->vhu_any_paused = true;
}

int daemon_vhu_service(struct cell *c, uint64_t now)
{
	struct vhu_allow *left = allow_now(c, now);
	/* At most VHU_BUDGET per loop turn as well, so that the other cells' sockets
	 * and the data path get their turn between. */
	unsigned int turn = left->msgs < VHU_BUDGET ? left->msgs : VHU_BUDGET;
	struct vhu_allow a = { .msgs = turn, .maps = left->maps };
	int rc = vhu_backend_service_allow(&c->vhu, &a);

	left->msgs -= turn - a.msgs;
	left->maps = a.maps;
	/* rc 1: a message is waiting (read, unhandled when it is a memory-table change
	 * beyond the allowance). Only a spent period pauses the socket; a spent turn
	 * leaves it readable for the next one. */
	if (rc == 1 && (!left->msgs ||
			(vhu_request_maps(c->vhu.rd.msg.hdr.request) && !left->maps)))
		pause_fd(c, c->vhu.sock, &c->conn_paused);
	return rc > 0 ? 0 : rc;
}

bool daemon_vhu_accept(struct cell *c, uint64_t now)
{
	struct vhu_allow *left = allow_now(c, now);

	if (left->msgs && left->maps) {
		left->msgs--;
		left->maps--;
		return true;
	}
	/* The connection waits in the listening socket's backlog. */
	pause_fd(c, c->listen_fd, &c->listen_paused);
	return false;
}

void daemon_vhu_forget_conn(struct cell *c)
{
	c->conn_paused = false;
}

/* Puts a paused descriptor back; a connection that cannot be watched again is
 * dropped (it would never be read). */
static void resume_cell(struct cell *c)
{
	struct broker *b = c->br;

	if (c->conn_paused) {
		c->conn_paused = false;
		if (c->vhu.sock >= 0 && daemon_ep_add(b, c->vhu.sock, &c->src_conn) < 0) {
			CLOG(c, "cannot watch the connection again: %s", strerror(errno));
			daemon_cell_disconnect(c, BROKER_CELL_WAITING);
		}
	}
	if (c->listen_paused) {
		c->listen_paused = false;
		if (c->listen_fd >= 0 && daemon_ep_add(b, c->listen_fd, &c->src_listen) < 0)
			CLOG(c, "cannot watch its socket again: %s", strerror(errno));
	}
}

void daemon_vhu_resume(struct broker *b, uint64_t now)
{
	uint64_t due = UINT64_MAX;

	b->vhu_any_paused = false;
	for (unsigned int i = 0; i < b->ncells; i++) {
		struct cell *c = &b->cells[i];

		if (!c->conn_paused && !c->listen_paused)
			continue;
		if (now < c->vhu_period_end) {
			if (c->vhu_period_end < due)
				due = c->vhu_period_end;
			continue;
		}
		resume_cell(c);
	}
	if (due != UINT64_MAX) {
		b->vhu_any_paused = true;
		b->vhu_resume_due = due;
	}
}
