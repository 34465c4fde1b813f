/* gvsock's socket table: slots and their receive memory, local ports, and what
 * happens to a slot when its connection ends. */
#include "gv_internal.h"

struct gv_sock *gv_sock_get(const struct gv_stack *s, int id)
{
	if (id < 0 || (uint32_t)id >= s->cfg.max_sockets)
		return NULL;
	if (s->sk[id].state == GV_S_FREE || s->sk[id].state == GV_S_LINGER)
		return NULL;
	return &s->sk[id];
}

void gv_wake(struct gv_stack *s, struct gv_sock *k)
{
	if (s->cfg.ops->wake)
		s->cfg.ops->wake(s->cfg.ctx, gv_sock_id(s, k));
}

/* Sets up a fresh socket in slot k: its receive ring lives in the slot's share of
 * the socket memory. SEQPACKET spends a fifth of it on the two boundary bitmaps. */
void gv_sock_setup(struct gv_stack *s, struct gv_sock *k, unsigned int type)
{
	uint8_t *mem = s->sockmem + (size_t)gv_sock_id(s, k) * s->sockmem_stride;
	uint32_t rcap;

	gv_memset(k, 0, sizeof(*k));
	k->state = GV_S_OPEN;
	k->type = (uint8_t)type;
	k->parent = -1;
	k->next = -1;
	k->acc_head = k->acc_tail = -1;
	k->hold_head = k->hold_tail = GV_NONE;
	k->local_port = GV_PORT_ANY;
	if (type == GV_SOCK_SEQPACKET) {
		/* 4/5 of rcvbuf (<= 2^30) rounded down, in 32 bits: floor(4r/5) =
		 * 4 floor(r/5) + floor(4 (r mod 5) / 5). */
		rcap = (4 * (s->cfg.rcvbuf / 5) + 4 * (s->cfg.rcvbuf % 5) / 5) & ~63u;
		k->eom = (uint64_t *)(void *)mem;
		k->eor = k->eom + rcap / 64;
		k->rbuf = mem + 2 * (rcap / 8);
		/* A previous socket in this slot may have left marks of unread
		 * messages behind. */
		gv_memset(mem, 0, 2 * (rcap / 8));
	} else {
		rcap = s->cfg.rcvbuf;
		k->rbuf = mem;
	}
	k->rcap = rcap;
	vsock_credit_init(&k->cr, rcap);
}

/* Free-running counters start at test_counter_base (0 in real use): both ends of a
 * connection count the same bytes from the same origin. */
void gv_credit_base(struct gv_stack *s, struct gv_sock *k)
{
	uint32_t b = s->cfg.test_counter_base;

	k->cr.tx_cnt = b;
	k->cr.fwd_cnt = b;
	k->cr.rx_cnt = b;
	k->cr.last_fwd_cnt = b;
	k->cr.peer_fwd_cnt = b;
}

struct gv_sock *gv_sock_alloc(struct gv_stack *s)
{
	for (uint32_t i = 0; i < s->cfg.max_sockets; i++)
		if (s->sk[i].state == GV_S_FREE)
			return &s->sk[i];
	return NULL;
}

bool gv_port_in_use(const struct gv_stack *s, uint32_t port)
{
	for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
		const struct gv_sock *k = &s->sk[i];

		if (k->state != GV_S_FREE && k->bound && k->local_port == port)
			return true;
	}
	return false;
}

int gv_bind_ephemeral(struct gv_stack *s, struct gv_sock *k)
{
	/* At most max_sockets ports are held by sockets and GV_RSTQ by RSTs still
	 * queued (a new connection from such a port could be reset by the old RST), so
	 * max_sockets + GV_RSTQ + 1 tries find one. */
	for (uint32_t n = 0; n <= s->cfg.max_sockets + GV_RSTQ; n++) {
		uint32_t p = s->next_port;

		s->next_port = p >= GV_PORT_ANY - 1 ? GV_EPHEMERAL_FIRST : p + 1;
		if (!gv_port_in_use(s, p) && !gv_rstq_holds(s, p)) {
			k->local_port = p;
			k->bound = true;
			return 0;
		}
	}
	return -GV_EADDRNOTAVAIL;
}

void gv_sock_free(struct gv_stack *s, struct gv_sock *k)
{
	gv_zc_drop(s, k);
	k->state = GV_S_FREE;
	k->bound = false;
	k->pend = 0;
}

/* The connection is gone; the application still holds the id (or, for a lingering
 * or unaccepted socket, nobody does and the slot is freed). */
void gv_conn_gone(struct gv_stack *s, struct gv_sock *k, int err)
{
	k->deadline = 0;
	k->pend &= (uint8_t)P_RST;
	if (k->state == GV_S_LINGER) {
		if (!k->pend || gv_rst_park(s, k))
			gv_sock_free(s, k);
		return;
	}
	if (k->parent >= 0) {
		/* Unaccepted child: unlink it from its listener's queue and free it. */
		struct gv_sock *l = &s->sk[k->parent];
		int id = gv_sock_id(s, k), *pp = &l->acc_head, prev = -1;

		while (*pp >= 0 && *pp != id) {
			prev = *pp;
			pp = &s->sk[*pp].next;
		}
		if (*pp == id) {
			*pp = k->next;
			if (l->acc_tail == id)
				l->acc_tail = prev;
			l->npending--;
		}
		k->parent = -1;
		if (!k->pend || gv_rst_park(s, k))
			gv_sock_free(s, k);
		else
			k->state = GV_S_LINGER;
		return;
	}
	k->state = GV_S_DONE;
	if (err)
		k->err = err;
	gv_wake(s, k);
}

/* Ends k's connection toward the peer. A REQUEST still owed (the TX ring never had
 * room for it) never reached the peer: there is nothing to reset, and no RST goes. */
void gv_send_rst(struct gv_stack *s, struct gv_sock *k)
{
	bool request_sent = !(k->pend & P_REQUEST);

	k->pend = 0;
	if (request_sent)
		gv_ctrl(s, k, P_RST);
}

