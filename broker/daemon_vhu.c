/* Each cell's vhost-user budget ([broker] vhost_user_budget = N/P, vhost_user_maps =
 * M/Q; docs/broker.md "vhost-user budget"): two token buckets per cell, one of N
 * messages (accepted connections included) refilled N per P, one of M heavy messages
 * (vhu_msg_heavy: memory-table changes, device stops) refilled M per Q, both full at
 * start. Beyond them the loop stops watching the cell's socket (or its listening
 * socket) until tokens are back: the cell waits on its own socket, nothing is
 * dropped, and the loop never blocks nor spins on a socket it is not reading.
 *
 * Undoing a connection that has a memory table or a running device (a cut-off, a
 * front end gone: the data plane's detach, the unmapping) is heavy work too and takes
 * a heavy token; without one, the connection waits out of epoll (daemon_cell_drop).
 *
 * In any interval of length t the loop thus handles at most N (1 + t/P) messages and
 * M (1 + t/Q) heavy ones for one cell: what `rtvio analyze` charges
 * (analysis/an_vhu.c). Credit is kept in token-nanoseconds: a token costs the
 * bucket's period, and its size accrues per nanosecond. */
#include <errno.h>
#include <string.h>

#include "daemon_int.h"

/* Credit grows by `rate` per ns since the last refill, up to rate * period. */
static uint64_t refill(uint64_t credit, uint64_t rate, uint64_t period, uint64_t dt)
{
	uint64_t cap = rate * period; /* at most 1024 * 1 s: no overflow */

	if (dt >= period || credit + dt * rate >= cap)
		return cap;
	return credit + dt * rate;
}

/* What the cell may have done now (both buckets refilled up to now). */
static struct vhu_allow allow_now(struct cell *c, uint64_t now)
{
	const struct rtvio_broker_cfg *k = &c->br->cfg->broker;
	uint64_t dt = now - c->vhu_refill_at;

	/* A fresh slot starts at 0 and gets full buckets: dt is the whole uptime. */
	c->vhu_refill_at = now;
	c->vhu_credit = refill(c->vhu_credit, k->vhu_msgs, k->vhu_period_ns, dt);
	c->vhu_map_credit = refill(c->vhu_map_credit, k->vhu_maps, k->vhu_map_period_ns, dt);
	return (struct vhu_allow){ .msgs = (unsigned int)(c->vhu_credit / k->vhu_period_ns),
				   .maps = (unsigned int)(c->vhu_map_credit /
							  k->vhu_map_period_ns) };
}

static void charge(struct cell *c, unsigned int msgs, unsigned int maps)
{
	const struct rtvio_broker_cfg *k = &c->br->cfg->broker;

	c->vhu_credit -= (uint64_t)msgs * k->vhu_period_ns;
	c->vhu_map_credit -= (uint64_t)maps * k->vhu_map_period_ns;
}

/* When the bucket of `rate` holding `credit` has a quarter of its tokens (at least
 * one) again: a flood is woken for a batch, not for every token. */
static uint64_t token_at(uint64_t now, uint64_t credit, uint64_t rate, uint64_t period)
{
	uint64_t want = (rate + 3) / 4 * period;
	uint64_t need = credit >= want ? 0 : want - credit;

	return now + (need + rate - 1) / rate;
}

/* fd leaves epoll until `at` (daemon_vhu_resume puts it back). */
static void pause_fd(struct cell *c, int fd, bool *paused, uint64_t at)
{
	struct broker *b = c->br;

	daemon_ep_del(b, fd);
	*paused = true;
	c->vhu_deferred++;
	if (!(c->conn_paused && c->listen_paused) || at < c->vhu_resume_at)
		c->vhu_resume_at = at;
	if (!b->vhu_any_paused || at < b->vhu_resume_due)
		b->vhu_resume_due = at;
	b->vhu_any_paused = true;
}

int daemon_vhu_service(struct cell *c, uint64_t now)
{
	const struct rtvio_broker_cfg *k = &c->br->cfg->broker;
	struct vhu_allow left = allow_now(c, now);
	/* At most VHU_BUDGET per loop turn as well, so that the other cells' sockets
	 * and the data path get their turn between. */
	unsigned int turn = left.msgs < VHU_BUDGET ? left.msgs : VHU_BUDGET;
	struct vhu_allow a = { .msgs = turn, .maps = left.maps };
	int rc = vhu_backend_service_allow(&c->vhu, &a);

	charge(c, turn - a.msgs, left.maps - a.maps);
	/* rc 1: a message is waiting (read, and unhandled). Only an empty bucket pauses
	 * the socket; a spent turn leaves it readable for the next one. */
	if (rc == 1 && left.msgs == turn - a.msgs)
		pause_fd(c, c->vhu.sock, &c->conn_paused,
			 token_at(now, c->vhu_credit, k->vhu_msgs, k->vhu_period_ns));
	else if (rc == 1 && !a.maps && vhu_msg_heavy(&c->vhu, &c->vhu.rd.msg))
		pause_fd(c, c->vhu.sock, &c->conn_paused,
			 token_at(now, c->vhu_map_credit, k->vhu_maps, k->vhu_map_period_ns));
	return rc > 0 ? 0 : rc;
}

bool daemon_vhu_accept(struct cell *c, uint64_t now)
{
	const struct rtvio_broker_cfg *k = &c->br->cfg->broker;
	struct vhu_allow left = allow_now(c, now);

	/* An accept is a message: the device's start and stop it may lead to come
	 * with its SET_MEM_TABLE, a heavy one. */
	if (left.msgs) {
		charge(c, 1, 0);
		return true;
	}
	/* The connection waits in the listening socket's backlog. */
	pause_fd(c, c->listen_fd, &c->listen_paused,
		 token_at(now, c->vhu_credit, k->vhu_msgs, k->vhu_period_ns));
	return false;
}

bool daemon_vhu_take_heavy(struct cell *c, uint64_t now)
{
	if (!allow_now(c, now).maps)
		return false;
	charge(c, 0, 1);
	return true;
}

/* Both of the cell's sockets leave epoll until the heavy bucket has a token: the
 * connection is not read meanwhile (its end of file would keep it readable), and a
 * new front end waits in the backlog until the old one is gone. Counted once. */
void daemon_vhu_defer_drop(struct cell *c, enum broker_cell_state next, uint64_t now)
{
	const struct rtvio_broker_cfg *k = &c->br->cfg->broker;
	struct broker *b = c->br;
	uint64_t at = token_at(now, c->vhu_map_credit, k->vhu_maps, k->vhu_map_period_ns);

	c->drop_pending = true;
	c->drop_next = next;
	c->state = next;
	c->vhu_deferred++;
	if (!c->conn_paused && c->vhu.sock >= 0)
		daemon_ep_del(b, c->vhu.sock);
	if (!c->listen_paused && c->listen_fd >= 0)
		daemon_ep_del(b, c->listen_fd);
	c->conn_paused = c->listen_paused = true;
	c->vhu_resume_at = at;
	if (!b->vhu_any_paused || at < b->vhu_resume_due)
		b->vhu_resume_due = at;
	b->vhu_any_paused = true;
}

void daemon_vhu_forget_conn(struct cell *c)
{
	c->conn_paused = false;
}

/* Puts a paused descriptor back; a connection that cannot be watched again is
 * dropped (it would never be read). The message that found the budget spent was
 * already read: it is handled now, since epoll reports only what the socket still
 * holds. */
static void resume_cell(struct cell *c, uint64_t now)
{
	const struct rtvio_broker_cfg *k = &c->br->cfg->broker;
	struct broker *b = c->br;

	if (c->drop_pending) {
		if (!daemon_vhu_take_heavy(c, now)) {
			c->vhu_resume_at = token_at(now, c->vhu_map_credit, k->vhu_maps,
						    k->vhu_map_period_ns);
			return;
		}
		/* The connection is closed, not watched again; the listening socket is. */
		daemon_cell_disconnect(c, c->drop_next);
		daemon_update_must_poll(b);
	}
	if (c->conn_paused) {
		c->conn_paused = false;
		if (c->vhu.sock >= 0 && daemon_ep_add(b, c->vhu.sock, &c->src_conn) < 0) {
			CLOG(c, "cannot watch the connection again: %s", strerror(errno));
			daemon_cell_disconnect(c, BROKER_CELL_WAITING);
		} else if (c->vhu.sock >= 0 && c->vhu.rd.have) {
			daemon_cell_service(c, now);
			daemon_update_must_poll(b);
		}
	}
	/* Serving the connection may have set it aside to be undone: the listening
	 * socket then waits with it. */
	if (c->listen_paused && !c->drop_pending) {
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
		if (now < c->vhu_resume_at) {
			if (c->vhu_resume_at < due)
				due = c->vhu_resume_at;
			continue;
		}
		resume_cell(c, now);
		/* Serving what waited may have spent the budget again. */
		if ((c->conn_paused || c->listen_paused) && c->vhu_resume_at < due)
			due = c->vhu_resume_at;
	}
	b->vhu_any_paused = due != UINT64_MAX;
	b->vhu_resume_due = due;
}
