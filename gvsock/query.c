/* gvsock's socket queries: poll events, connect state, the pending error, the
 * addresses and the receive budget; the diagnostics of slots and TX resources. */
#include "gv_internal.h"

unsigned int gv_poll_events(struct gv_stack *s, int id)
{
	const struct gv_sock *k = gv_sock_get(s, id);
	unsigned int ev = 0;

	if (!k)
		return GV_POLLERR | GV_POLLHUP;
	if (k->err)
		ev |= GV_POLLERR;
	switch (k->state) {
	case GV_S_LISTEN:
		if (k->acc_head >= 0)
			ev |= GV_POLLIN;
		break;
	case GV_S_DONE:
		ev |= GV_POLLIN | GV_POLLHUP | GV_POLLRDHUP;
		break;
	case GV_S_CONNECTED:
		if (k->type == GV_SOCK_STREAM ? k->rlen + k->hlen > 0
					      : (k->msgs > 0 || k->rlen + k->hlen == k->rcap))
			ev |= GV_POLLIN;
		if ((k->peer_shut & VSOCK_SHUTDOWN_SEND) || (k->shut & GV_SHUT_RD))
			ev |= GV_POLLIN | GV_POLLRDHUP;
		if ((k->shut & GV_SHUT_WR) || (k->peer_shut & VSOCK_SHUTDOWN_RCV)) {
			ev |= GV_POLLOUT; /* send fails at once with -EPIPE */
		} else if (!(k->pend & (P_REQUEST | P_RESPONSE))) {
			uint32_t want = k->type == GV_SOCK_SEQPACKET && k->want ? k->want : 1;
			uint32_t tp = s->cfg.layout.tx_payload;
			uint32_t npkt = k->type == GV_SOCK_SEQPACKET
						? gv_npkt(want, tp)
						: 1;

			if (vsock_credit_peer_free(&k->cr) >= want && gv_tx_avail(s, npkt, npkt))
				ev |= GV_POLLOUT;
		}
		if ((k->shut & (GV_SHUT_RD | GV_SHUT_WR)) == (GV_SHUT_RD | GV_SHUT_WR) &&
		    k->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND))
			ev |= GV_POLLHUP;
		break;
	default:
		break;
	}
	if (s->dead)
		ev |= GV_POLLERR | GV_POLLHUP;
	return ev;
}

bool gv_sock_connecting(const struct gv_stack *s, int id)
{
	const struct gv_sock *k = gv_sock_get(s, id);

	return k && k->state == GV_S_CONNECTING;
}

int gv_sock_error(struct gv_stack *s, int id)
{
	struct gv_sock *k = gv_sock_get(s, id);
	int e;

	if (!k)
		return -GV_EINVAL;
	e = k->err;
	k->err = 0;
	return e;
}

int gv_sock_name(const struct gv_stack *s, int id, uint32_t *local_port, uint64_t *peer_cid,
		 uint32_t *peer_port)
{
	const struct gv_sock *k = gv_sock_get(s, id);

	if (!k)
		return -GV_EINVAL;
	if (local_port)
		*local_port = k->local_port;
	if (peer_cid)
		*peer_cid = k->peer_cid;
	if (peer_port)
		*peer_port = k->peer_port;
	return 0;
}

uint32_t gv_sock_buf_alloc(const struct gv_stack *s, int id)
{
	const struct gv_sock *k = gv_sock_get(s, id);

	return k ? k->cr.buf_alloc : 0;
}

/* A diagnostic snapshot: the device's indices are read once each, relaxed (nothing
 * is done with them but reporting). */
static void ring_pos(const struct vq_driver *q, bool event_idx, struct gv_ring_pos *out)
{
	out->published = q->published;
	out->used = shm_load_relaxed(&q->ring.used->idx);
	out->taken = q->last_used;
	out->avail_event = event_idx ? shm_load_relaxed(vq_avail_event(&q->ring)) : 0;
}

void gv_tx_info(const struct gv_stack *s, struct gv_tx_info *out)
{
	out->hdr_free = s->n_hdr_free;
	out->pay_free = s->n_pay_free;
	out->desc_free = vq_driver_num_free(&s->txq);
	out->rst_queued = s->rst_count;
	ring_pos(&s->txq, s->cfg.event_idx, &out->tx);
	ring_pos(&s->rxq, s->cfg.event_idx, &out->rx);
}

int gv_slot_info(const struct gv_stack *s, uint32_t i, struct gv_slot_info *out)
{
	const struct gv_sock *k;

	if (i >= s->cfg.max_sockets)
		return -GV_EINVAL;
	k = &s->sk[i];
	*out = (struct gv_slot_info){ .state = k->state, .type = k->type, .pend = k->pend,
				      .err = k->err, .local_port = k->local_port,
				      .peer_port = k->peer_port, .peer_cid = k->peer_cid,
				      .deadline = k->deadline };
	return 0;
}

const char *gv_slot_state_name(unsigned int state)
{
	static const char *const names[] = { "free", "open", "listen", "connecting",
					     "connected", "done", "linger" };

	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}
