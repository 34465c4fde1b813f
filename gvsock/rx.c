/* gvsock's receive path: each used RX buffer is validated once, in private memory,
 * then handed to its listener or its connection's state machine. */
#include "gv_internal.h"

static void rx_rw(struct gv_stack *s, struct gv_sock *k, const struct vsock_hdr *h,
		  const uint8_t *payload)
{
	bool eom = k->type == GV_SOCK_SEQPACKET && (h->flags & VSOCK_SEQ_EOM);

	if (vsock_credit_rx(&k->cr, h->len)) {
		/* The peer sent beyond the credit we gave: it is broken or hostile. */
		s->st.rx_bad_credit++;
		gv_send_rst(s, k);
		gv_conn_gone(s, k, -GV_ECONNRESET);
		return;
	}
	k->peer_waiting = false; /* it found enough credit to send */
	if (k->discard) {
		/* Rest of a message that could never fit: drop it, give the credit back. */
		vsock_credit_consumed(&k->cr, h->len);
		if (eom)
			k->discard = false;
	} else if (h->len && gv_hold_wanted(k)) {
		gv_hold_put(s, k, h->len, (uint8_t)((eom ? GV_MSG_EOM : 0) |
			    (eom && (h->flags & VSOCK_SEQ_EOR) ? GV_MSG_EOR : 0)));
	} else if (h->len) {
		/* (An empty message has no byte to mark: not representable, dropped.) */
		gv_rbuf_put(k, payload, h->len);
		if (eom) {
			uint32_t last = gv_rbuf_pos(k, k->rlen - 1);

			gv_bit_set(k->eom, last);
			if (h->flags & VSOCK_SEQ_EOR)
				gv_bit_set(k->eor, last);
			k->msgs++;
		}
	}
	gv_credit_check(s, k);
	/* Data to read, or at least the peer's credit from the header: a sender
	 * waiting for POLLOUT may go on either way. */
	gv_wake(s, k);
}

static void rx_listen(struct gv_stack *s, struct gv_sock *l, const struct vsock_hdr *h)
{
	struct gv_sock *k;

	if (h->op != VSOCK_OP_REQUEST) {
		if (h->op != VSOCK_OP_RST)
			gv_rst_reply(s, h);
		return;
	}
	if (l->npending >= l->backlog || !(k = gv_sock_alloc(s))) {
		gv_rst_reply(s, h);
		return;
	}
	gv_sock_setup(s, k, l->type);
	gv_credit_base(s, k);
	k->state = GV_S_CONNECTED;
	k->local_port = l->local_port;
	k->peer_cid = h->src_cid;
	k->peer_port = h->src_port;
	k->parent = gv_sock_id(s, l);
	k->hold_max = l->hold_max;
	vsock_credit_from_peer(&k->cr, h);
	if (l->acc_tail >= 0)
		s->sk[l->acc_tail].next = gv_sock_id(s, k);
	else
		l->acc_head = gv_sock_id(s, k);
	l->acc_tail = gv_sock_id(s, k);
	l->npending++;
	gv_ctrl(s, k, P_RESPONSE);
	gv_wake(s, l);
}

static void rx_conn(struct gv_stack *s, struct gv_sock *k, const struct vsock_hdr *h,
		    const uint8_t *payload)
{
	if (h->op == VSOCK_OP_RST) {
		if (k->state == GV_S_CONNECTING)
			gv_conn_gone(s, k, -GV_ECONNREFUSED);
		else if (k->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND))
			gv_conn_gone(s, k, 0); /* orderly end after the peer's SHUTDOWN */
		else
			gv_conn_gone(s, k, -GV_ECONNRESET);
		return;
	}
	if (k->state == GV_S_CONNECTING) {
		if (h->op != VSOCK_OP_RESPONSE) {
			gv_send_rst(s, k);
			gv_conn_gone(s, k, -GV_ECONNREFUSED);
			return;
		}
		vsock_credit_from_peer(&k->cr, h);
		k->state = GV_S_CONNECTED;
		k->deadline = 0;
		gv_wake(s, k);
		return;
	}
	vsock_credit_from_peer(&k->cr, h);
	switch (h->op) {
	case VSOCK_OP_RW:
		if (k->state == GV_S_LINGER) {
			/* Closed: nobody will read it; keep the peer's credit intact. */
			if (!vsock_credit_rx(&k->cr, h->len))
				vsock_credit_consumed(&k->cr, h->len);
			return;
		}
		rx_rw(s, k, h, payload);
		return;
	case VSOCK_OP_CREDIT_UPDATE:
		gv_wake(s, k);
		return;
	case VSOCK_OP_CREDIT_REQUEST:
		if (k->state == GV_S_CONNECTED) {
			if (k->rlen || k->hlen)
				k->peer_waiting = true;
			gv_ctrl(s, k, P_CREDIT_UPDATE);
			gv_wake(s, k); /* its header carried the peer's credit too */
		}
		return;
	case VSOCK_OP_SHUTDOWN:
		k->peer_shut |= (uint8_t)(h->flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND));
		if (k->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) &&
		    (k->state == GV_S_LINGER || (k->rlen == 0 && k->hlen == 0))) {
			/* Both directions are over: end it with RST, as Linux does. */
			gv_send_rst(s, k);
			gv_conn_gone(s, k, 0);
			return;
		}
		gv_wake(s, k);
		return;
	case VSOCK_OP_RESPONSE:
	case VSOCK_OP_REQUEST:
	default:
		/* Out of place on an established connection: a confused peer. */
		gv_send_rst(s, k);
		gv_conn_gone(s, k, -GV_ECONNRESET);
		return;
	}
}

static struct gv_sock *lookup(struct gv_stack *s, const struct vsock_hdr *h)
{
	struct gv_sock *listener = NULL;

	for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
		struct gv_sock *k = &s->sk[i];

		if (k->local_port != h->dst_port)
			continue;
		switch (k->state) {
		case GV_S_CONNECTING:
		case GV_S_CONNECTED:
		case GV_S_LINGER:
			if (k->peer_cid == h->src_cid && k->peer_port == h->src_port &&
			    k->type == h->type)
				return k;
			break;
		case GV_S_LISTEN:
			if (k->type == h->type)
				listener = k;
			break;
		default:
			break;
		}
	}
	return listener;
}

/* One used RX buffer: validate, deliver, repost. */
void gv_rx_one(struct gv_stack *s, uint8_t *buf, uint32_t used)
{
	const struct gv_layout *l = &s->cfg.layout;
	struct vsock_hdr h;
	struct gv_sock *k;

	if (used < GV_HDR_SIZE || used > l->rx_buf_size) {
		s->st.rx_bad_len++;
		return;
	}
	/* Read once into private memory; payload is copied out once, below. */
	vsock_hdr_decode(&h, buf);
	if (h.len > used - GV_HDR_SIZE) {
		s->st.rx_bad_len++;
		return;
	}
	if (h.op < VSOCK_OP_REQUEST || h.op > VSOCK_OP_CREDIT_REQUEST ||
	    !(h.type == VSOCK_TYPE_STREAM ||
	      (h.type == VSOCK_TYPE_SEQPACKET && s->cfg.seqpacket)) ||
	    h.dst_cid != s->cfg.cid || (h.op != VSOCK_OP_RW && h.len != 0)) {
		s->st.rx_bad_hdr++;
		return;
	}
	s->st.rx_packets++;
	s->st.rx_bytes += h.len;
	k = lookup(s, &h);
	if (!k) {
		s->st.rx_no_sock++;
		if (h.op != VSOCK_OP_RST)
			gv_rst_reply(s, &h);
		return;
	}
	if (k->state == GV_S_LISTEN)
		rx_listen(s, k, &h);
	else
		rx_conn(s, k, &h, buf + GV_HDR_SIZE);
}

