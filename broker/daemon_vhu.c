/* The loop's vhost-user budget (docs/broker.md "vhost-user budget").
 *
 * Each cell: [broker] vhost_user_budget = N/P, vhost_user_maps = M/Q, two token
 * buckets, one of N messages (accepted connections included) refilled N per P, one
 * of M heavy messages (vhu_msg_heavy: memory-table changes, device stops) refilled M
 * per Q, both full at start. The whole broker: vhost_user_total = Ng/Pg and
 * vhost_user_total_maps = Mg/Qg, the same pair once for all cells. Every message
 * takes a token of its cell's message bucket and of the total one, a heavy message
 * one of each heavy bucket as well.
 *
 * Beyond its own buckets the loop stops watching the cell's socket (or its listening
 * socket) until its tokens are back: the cell waits on its own socket, nothing is
 * dropped, and the loop never blocks nor spins on a socket it is not reading.
 *
 * Beyond the total buckets the cell waits in the round: its sockets leave epoll too,
 * it takes a ticket, and when total tokens are back the cells of the round are served
 * in ticket order, each while what it waits for is there, at most VHU_RR_QUANTUM
 * messages; a cell with more to say takes a new ticket (behind every cell waiting).
 * While anyone waits in the round, no other cell draws on the total buckets: it
 * takes a ticket. So a cell that enters the round waits at most until each cell ahead
 * of it had one turn: with n cells, at most (n - 1) (VHU_RR_QUANTUM + 1) + 1 total
 * message tokens (a turn may accept a connection too) and (n - 1) max(1,
 * min(VHU_RR_QUANTUM, M)) + 1 heavy ones, whatever a flooding cell does
 * (docs/broker.md, "Liveness").
 *
 * Undoing a connection that has a memory table or a running device (a cut-off, a
 * front end gone: the data plane's detach, the unmapping) is heavy work too and
 * takes a heavy token of both; without them the connection waits out of epoll
 * (daemon_cell_drop).
 *
 * In any interval of length t the loop thus handles at most min(n N (1 + t/P),
 * Ng (1 + t/Pg)) messages and min(n M (1 + t/Q), Mg (1 + t/Qg)) heavy ones: what
 * `rtvio analyze` charges (analysis/an_vhu.c). Credit is kept in token-nanoseconds:
 * a token costs the bucket's period, and its size accrues per nanosecond. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"

/* What a cell in the round waits for (cell.rr_wait). */
enum { RR_CONN = 1u, RR_LISTEN = 2u, RR_DROP = 4u };

/* A pair of buckets' sizes and periods. */
struct vhu_rates {
	uint64_t msgs, period, maps, map_period;
};

static struct vhu_rates own_rates(const struct broker *b)
{
	const struct rtvio_broker_cfg *k = &b->cfg->broker;

	return (struct vhu_rates){ k->vhu_msgs, k->vhu_period_ns, k->vhu_maps,
				   k->vhu_map_period_ns };
}

static struct vhu_rates total_rates(const struct broker *b)
{
	const struct rtvio_broker_cfg *k = &b->cfg->broker;

	return (struct vhu_rates){ k->vhu_total_msgs, k->vhu_total_period_ns, k->vhu_total_maps,
				   k->vhu_total_map_period_ns };
}

/* Credit grows by `rate` per ns since the last refill, up to rate * period. */
static uint64_t refill(uint64_t credit, uint64_t rate, uint64_t period, uint64_t dt)
{
	uint64_t cap = rate * period; /* at most 1024 * 1 s: no overflow */

	if (dt >= period || credit + dt * rate >= cap)
		return cap;
	return credit + dt * rate;
}

/* The tokens of a pair of buckets now (both refilled up to now). A fresh pair starts
 * at 0 and is full at once: dt is the whole uptime. */
static struct vhu_allow level(struct vhu_buckets *v, const struct vhu_rates *r, uint64_t now)
{
	uint64_t dt = now - v->refill_at;

	v->refill_at = now;
	v->credit = refill(v->credit, r->msgs, r->period, dt);
	v->map_credit = refill(v->map_credit, r->maps, r->map_period, dt);
	return (struct vhu_allow){ .msgs = (unsigned int)(v->credit / r->period),
				   .maps = (unsigned int)(v->map_credit / r->map_period) };
}

static void spend(struct vhu_buckets *v, const struct vhu_rates *r, unsigned int msgs,
		  unsigned int maps)
{
	v->credit -= (uint64_t)msgs * r->period;
	v->map_credit -= (uint64_t)maps * r->map_period;
}

/* When the bucket of `rate` holding `credit` has a quarter of its tokens (at least
 * one) again: a flood is woken for a batch, not for every token. */
static uint64_t token_at(uint64_t now, uint64_t credit, uint64_t rate, uint64_t period)
{
	uint64_t want = (rate + 3) / 4 * period;
	uint64_t need = credit >= want ? 0 : want - credit;

	return now + (need + rate - 1) / rate;
}

static uint64_t msgs_at(const struct vhu_buckets *v, const struct vhu_rates *r, uint64_t now)
{
	return token_at(now, v->credit, r->msgs, r->period);
}

static uint64_t maps_at(const struct vhu_buckets *v, const struct vhu_rates *r, uint64_t now)
{
	return token_at(now, v->map_credit, r->maps, r->map_period);
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static unsigned int min_u(unsigned int a, unsigned int b)
{
	return a < b ? a : b;
}

/* May c draw on the total buckets now: it has the round's turn, or nobody waits. */
static struct vhu_allow total_for(struct cell *c, uint64_t now)
{
	struct broker *b = c->br;
	struct vhu_rates r = total_rates(b);

	if (b->vhu_turn != c && b->vhu_rr_any)
		return (struct vhu_allow){ 0, 0 };
	return level(&b->vhu_total, &r, now);
}

/* What a cell in the round needs: a message token (accept, light or heavy message),
 * a heavy one (heavy message, undoing the connection). */
static void need_of(const struct cell *c, bool *light, bool *heavy)
{
	*light = *heavy = false;
	if (c->rr_wait & RR_DROP) {
		*heavy = true;
		return;
	}
	if (c->rr_wait & RR_CONN) {
		*light = true;
		*heavy = vhu_msg_heavy(&c->vhu, &c->vhu.rd.msg);
	}
	if (c->rr_wait & RR_LISTEN)
		*light = true;
}

/* Do both its own buckets and the total ones hold what c waits for? */
static bool servable(struct cell *c, uint64_t now)
{
	struct broker *b = c->br;
	struct vhu_rates ro = own_rates(b), rt = total_rates(b);
	struct vhu_allow own = level(&c->vhu_own, &ro, now);
	struct vhu_allow tot = level(&b->vhu_total, &rt, now);
	bool light, heavy;

	need_of(c, &light, &heavy);
	return (!light || (own.msgs && tot.msgs)) && (!heavy || (own.maps && tot.maps));
}

/* When c's wait in the round is worth looking at again. */
static uint64_t round_due(struct cell *c, uint64_t now)
{
	struct broker *b = c->br;
	struct vhu_rates ro = own_rates(b), rt = total_rates(b);
	uint64_t at = now;
	bool light, heavy;

	if (servable(c, now))
		return now;
	need_of(c, &light, &heavy);
	if (light)
		at = max64(at, max64(msgs_at(&c->vhu_own, &ro, now),
				     msgs_at(&b->vhu_total, &rt, now)));
	if (heavy)
		at = max64(at, max64(maps_at(&c->vhu_own, &ro, now),
				     maps_at(&b->vhu_total, &rt, now)));
	return at;
}

static void arm(struct broker *b, uint64_t at)
{
	if (!b->vhu_any_paused || at < b->vhu_resume_due)
		b->vhu_resume_due = at;
	b->vhu_any_paused = true;
}

/* fd leaves epoll until `at` (daemon_vhu_resume puts it back). */
static void pause_fd(struct cell *c, int fd, bool *paused, uint64_t at)
{
	if (!*paused)
		daemon_ep_del(c->br, fd);
	*paused = true;
	c->vhu_deferred++;
	if (!(c->conn_paused && c->listen_paused) || at < c->vhu_resume_at)
		c->vhu_resume_at = at;
	arm(c->br, at);
}

/* c waits in the round for `what`; a cell already in it keeps its ticket. */
static void wait_round(struct cell *c, unsigned int what, uint64_t now)
{
	struct broker *b = c->br;

	if ((what & (RR_CONN | RR_DROP)) && !c->conn_paused && c->vhu.sock >= 0)
		daemon_ep_del(b, c->vhu.sock);
	if ((what & (RR_CONN | RR_DROP)) && c->vhu.sock >= 0)
		c->conn_paused = true;
	if ((what & (RR_LISTEN | RR_DROP)) && !c->listen_paused && c->listen_fd >= 0)
		daemon_ep_del(b, c->listen_fd);
	if ((what & (RR_LISTEN | RR_DROP)) && c->listen_fd >= 0)
		c->listen_paused = true;
	if (!c->rr_wait) {
		c->rr_ticket = b->vhu_rr_seq++;
		c->vhu_deferred++;
	}
	c->rr_wait |= what;
	b->vhu_rr_any = true;
	arm(b, round_due(c, now));
}

int daemon_vhu_service(struct cell *c, uint64_t now)
{
	struct broker *b = c->br;
	struct vhu_rates ro = own_rates(b), rt = total_rates(b);
	struct vhu_allow own = level(&c->vhu_own, &ro, now);
	struct vhu_allow tot = total_for(c, now);
	bool turn = b->vhu_turn == c;
	/* At most VHU_BUDGET per loop turn (VHU_RR_QUANTUM per turn of the round) as
	 * well, so that the other cells' sockets and the data path get their turn
	 * between. */
	unsigned int lim = turn ? VHU_RR_QUANTUM : VHU_BUDGET;
	struct vhu_allow start = { .msgs = min_u(min_u(own.msgs, tot.msgs), lim),
				   .maps = min_u(own.maps, tot.maps) };
	struct vhu_allow a = start;
	int rc = vhu_backend_service_allow(&c->vhu, &a);
	unsigned int msgs = start.msgs - a.msgs, maps = start.maps - a.maps;
	bool heavy;

	spend(&c->vhu_own, &ro, msgs, maps);
	spend(&b->vhu_total, &rt, msgs, maps);
	if (rc != 1)
		return rc > 0 ? 0 : rc;
	/* rc 1: a message is waiting (read, and unhandled). An empty bucket of the cell's
	 * own pauses the socket; an empty total one puts the cell in the round; a spent
	 * loop turn pauses it until the next one: the held message may have emptied the
	 * socket, which then would not be readable again (reconnect serves it). */
	heavy = vhu_msg_heavy(&c->vhu, &c->vhu.rd.msg);
	if (own.msgs == msgs)
		pause_fd(c, c->vhu.sock, &c->conn_paused, msgs_at(&c->vhu_own, &ro, now));
	else if (heavy && own.maps == maps)
		pause_fd(c, c->vhu.sock, &c->conn_paused, maps_at(&c->vhu_own, &ro, now));
	else if (turn || tot.msgs == msgs || (heavy && tot.maps == maps))
		wait_round(c, RR_CONN, now);
	else if (msgs == lim)
		pause_fd(c, c->vhu.sock, &c->conn_paused, now);
	return 0;
}

bool daemon_vhu_accept(struct cell *c, uint64_t now)
{
	struct broker *b = c->br;
	struct vhu_rates ro = own_rates(b), rt = total_rates(b);
	struct vhu_allow own = level(&c->vhu_own, &ro, now);
	struct vhu_allow tot;

	/* An accept is a message: the device's start and stop it may lead to come
	 * with its SET_MEM_TABLE, a heavy one. The connection waits in the listening
	 * socket's backlog meanwhile. */
	if (!own.msgs) {
		pause_fd(c, c->listen_fd, &c->listen_paused, msgs_at(&c->vhu_own, &ro, now));
		return false;
	}
	tot = total_for(c, now);
	if (!tot.msgs) {
		wait_round(c, RR_LISTEN, now);
		return false;
	}
	spend(&c->vhu_own, &ro, 1, 0);
	spend(&b->vhu_total, &rt, 1, 0);
	return true;
}

bool daemon_vhu_take_heavy(struct cell *c, uint64_t now)
{
	struct broker *b = c->br;
	struct vhu_rates ro = own_rates(b), rt = total_rates(b);

	if (!level(&c->vhu_own, &ro, now).maps || !total_for(c, now).maps)
		return false;
	spend(&c->vhu_own, &ro, 0, 1);
	spend(&b->vhu_total, &rt, 0, 1);
	return true;
}

/* Both of the cell's sockets leave epoll until a heavy token of its own and a total
 * one are there: the connection is not read meanwhile (its end of file would keep
 * it readable), and a new front end waits in the backlog until the old one is gone.
 * Short of its own token the cell waits for its bucket, else in the round. */
void daemon_vhu_defer_drop(struct cell *c, enum broker_cell_state next, uint64_t now)
{
	struct broker *b = c->br;
	struct vhu_rates ro = own_rates(b);

	c->drop_pending = true;
	c->drop_next = next;
	c->state = next;
	if (c->rr_wait || level(&c->vhu_own, &ro, now).maps) {
		wait_round(c, RR_DROP, now);
		return;
	}
	c->vhu_deferred++;
	if (!c->conn_paused && c->vhu.sock >= 0)
		daemon_ep_del(b, c->vhu.sock);
	if (!c->listen_paused && c->listen_fd >= 0)
		daemon_ep_del(b, c->listen_fd);
	c->conn_paused = c->listen_paused = true;
	c->vhu_resume_at = maps_at(&c->vhu_own, &ro, now);
	arm(b, c->vhu_resume_at);
}

void daemon_vhu_forget_conn(struct cell *c)
{
	c->conn_paused = false;
	c->rr_wait &= ~(RR_CONN | RR_DROP);
	/* A listening socket that waited with the connection is watched again at the
	 * next look (daemon_vhu_resume). */
	if (!c->rr_wait && c->listen_paused) {
		c->vhu_resume_at = 0;
		arm(c->br, 0);
	}
}

/* The listening socket goes back into epoll once nothing is left to undo. */
static void relisten(struct cell *c)
{
	if (!c->listen_paused || c->drop_pending)
		return;
	c->listen_paused = false;
	if (c->listen_fd >= 0 && daemon_ep_add(c->br, c->listen_fd, &c->src_listen) < 0)
		CLOG(c, "cannot watch its socket again: %s", strerror(errno));
}

/* The connection goes back into epoll; the message that found the budget spent was
 * already read, and is handled now (epoll reports only what the socket still holds). */
static void reconnect(struct cell *c, uint64_t now)
{
	struct broker *b = c->br;

	c->conn_paused = false;
	if (c->vhu.sock >= 0 && daemon_ep_add(b, c->vhu.sock, &c->src_conn) < 0) {
		CLOG(c, "cannot watch the connection again: %s", strerror(errno));
		daemon_cell_disconnect(c, BROKER_CELL_WAITING);
	} else if (c->vhu.sock >= 0 && c->vhu.rd.have) {
		daemon_cell_service(c, now);
		daemon_update_must_poll(b);
	}
}

/* The connection is undone (it holds the tokens). */
static void undo(struct cell *c, uint64_t now)
{
	if (!daemon_vhu_take_heavy(c, now))
		return;
	daemon_cell_disconnect(c, c->drop_next);
	daemon_update_must_poll(c->br);
}

/* c's turn in the round: what it waited for, within VHU_RR_QUANTUM messages. */
static void take_turn(struct cell *c, uint64_t now)
{
	struct broker *b = c->br;
	unsigned int w = c->rr_wait;

	c->rr_wait = 0;
	b->vhu_turn = c;
	if (w & RR_DROP) {
		undo(c, now);
		if (c->drop_pending)
			c->rr_wait |= RR_DROP; /* keeps its ticket: not served after all */
		relisten(c);
	} else {
		if ((w & RR_CONN) && c->conn_paused)
			reconnect(c, now);
		if ((w & RR_LISTEN) && !c->drop_pending) {
			relisten(c);
			daemon_cell_accept(c, now);
		}
	}
	b->vhu_turn = NULL;
}

static int by_ticket(const void *x, const void *y)
{
	const struct vhu_rr_slot *a = x, *b = y;

	return a->ticket < b->ticket ? -1 : a->ticket > b->ticket;
}

/* One pass over the round, in ticket order: every cell that waited before the pass
 * and whose tokens are there takes its turn (one that cannot keeps its place). */
static void serve_round(struct broker *b, uint64_t now)
{
	uint64_t seq = b->vhu_rr_seq;
	unsigned int n = 0;

	for (unsigned int i = 0; i < b->ncells; i++)
		if (b->cells[i].rr_wait)
			b->vhu_rr[n++] = (struct vhu_rr_slot){ b->cells[i].rr_ticket, i };
	qsort(b->vhu_rr, n, sizeof(*b->vhu_rr), by_ticket);
	for (unsigned int k = 0; k < n; k++) {
		struct cell *c = &b->cells[b->vhu_rr[k].cell];

		if (c->rr_wait && c->rr_ticket < seq && servable(c, now))
			take_turn(c, now);
	}
}

/* When the round is next worth a look; UINT64_MAX when nobody waits in it. */
static uint64_t round_next(struct broker *b, uint64_t now)
{
	uint64_t due = UINT64_MAX;

	b->vhu_rr_any = false;
	for (unsigned int i = 0; i < b->ncells; i++) {
		struct cell *c = &b->cells[i];
		uint64_t at;

		if (!c->rr_wait)
			continue;
		b->vhu_rr_any = true;
		at = round_due(c, now);
		if (at < due)
			due = at;
	}
	return due;
}

/* Puts back a descriptor paused for the cell's own buckets; a connection that cannot
 * be watched again is dropped (it would never be read). */
static void resume_cell(struct cell *c, uint64_t now)
{
	struct vhu_rates ro = own_rates(c->br);

	if (c->drop_pending) {
		if (!level(&c->vhu_own, &ro, now).maps) {
			c->vhu_resume_at = maps_at(&c->vhu_own, &ro, now);
			return;
		}
		/* Its own token is back: the total one comes through the round. */
		wait_round(c, RR_DROP, now);
		return;
	}
	if (c->conn_paused)
		reconnect(c, now);
	/* Serving the connection may have set it aside to be undone, or sent the cell
	 * to the round: the listening socket then waits with it. */
	if (!c->rr_wait)
		relisten(c);
}

void daemon_vhu_resume(struct broker *b, uint64_t now)
{
	uint64_t due = UINT64_MAX, rr;

	if (b->vhu_rr_any)
		serve_round(b, now);
	for (unsigned int i = 0; i < b->ncells; i++) {
		struct cell *c = &b->cells[i];

		if ((!c->conn_paused && !c->listen_paused) || c->rr_wait)
			continue;
		if (now < c->vhu_resume_at) {
			if (c->vhu_resume_at < due)
				due = c->vhu_resume_at;
			continue;
		}
		resume_cell(c, now);
		/* Serving what waited may have spent the budget again. */
		if ((c->conn_paused || c->listen_paused) && !c->rr_wait && c->vhu_resume_at < due)
			due = c->vhu_resume_at;
	}
	rr = round_next(b, now);
	if (rr < due)
		due = rr;
	b->vhu_any_paused = due != UINT64_MAX;
	b->vhu_resume_due = due;
}
