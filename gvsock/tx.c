/* gvsock's transmit path: header and payload slots, the TX ring, control packets
 * owed to a peer and RST replies to packets for no connection. */
#include "gv_internal.h"

bool gv_tx_room(const struct gv_stack *s, uint32_t npkt, uint32_t npay)
{
	return !s->dead && s->n_hdr_free >= npkt && s->n_pay_free >= npay &&
	       vq_driver_num_free(&s->txq) >= npkt + npay + s->desc_reserved;
}

/* Puts one packet on the TX ring (not yet published). The caller has checked
 * gv_tx_room(). The header and payload are written into region memory before
 * vq_driver_add, and vq_driver_publish orders those writes before the avail index. */
void gv_tx_put(struct gv_stack *s, const struct vsock_hdr *h, const void *payload)
{
	const struct gv_layout *l = &s->cfg.layout;
	uint16_t hs = s->hdr_free[--s->n_hdr_free];
	struct gv_txent *e = &s->txent[hs];
	struct vq_buf b[2];
	unsigned int n = 1;
	int r;

	vsock_hdr_encode(h, s->region + l->tx_hdrs + (uint64_t)hs * GV_TX_HDR_STRIDE);
	b[0].addr = s->cfg.region_dev + l->tx_hdrs + (uint64_t)hs * GV_TX_HDR_STRIDE;
	b[0].len = GV_HDR_SIZE;
	e->pay = GV_NONE;
	/* Control packets come with no payload and len 0 (the test of payload also
	 * tells the compiler so). */
	if (h->len && payload) {
		uint16_t ps = gv_pay_take(s);
		uint64_t off = l->tx_bufs + (uint64_t)ps * l->tx_payload;

		gv_memcpy(s->region + off, payload, h->len);
		b[1].addr = s->cfg.region_dev + off;
		b[1].len = h->len;
		e->pay = ps;
		n = 2;
	}
	r = vq_driver_add(&s->txq, b, n, NULL, 0, e);
	if (r) {
		/* Only a broken ring refuses after gv_tx_room(): give the slots back. */
		if (e->pay != GV_NONE)
			gv_pay_unused(s, e->pay);
		s->hdr_free[s->n_hdr_free++] = hs;
		(void)gv_fail(s, r);
		return;
	}
	s->tx_dirty = true;
	s->st.tx_packets++;
	s->st.tx_bytes += h->len;
}

void gv_hdr_for(struct gv_stack *s, struct gv_sock *k, uint16_t op, uint32_t flags,
		    uint32_t len, struct vsock_hdr *h)
{
	h->src_cid = s->cfg.cid;
	h->dst_cid = k->peer_cid;
	h->src_port = k->local_port;
	h->dst_port = k->peer_port;
	h->len = len;
	h->type = k->type;
	h->op = op;
	h->flags = flags;
	/* Every packet tells the peer our buf_alloc and fwd_cnt. */
	vsock_credit_to_peer(&k->cr, h);
}

/* Sends the header-only packet p of socket k if the TX ring has room. */
static bool ctrl_now(struct gv_stack *s, struct gv_sock *k, uint8_t p)
{
	struct vsock_hdr h;
	uint16_t op;
	uint32_t flags = 0;

	if (!gv_tx_avail(s, 1, 0))
		return false;
	switch (p) {
	case P_REQUEST:
		op = VSOCK_OP_REQUEST;
		break;
	case P_RESPONSE:
		op = VSOCK_OP_RESPONSE;
		break;
	case P_CREDIT_UPDATE:
		op = VSOCK_OP_CREDIT_UPDATE;
		s->st.credit_updates_sent++;
		break;
	case P_CREDIT_REQUEST:
		op = VSOCK_OP_CREDIT_REQUEST;
		s->st.credit_requests_sent++;
		break;
	case P_SHUTDOWN:
		op = VSOCK_OP_SHUTDOWN;
		flags = k->shut_pend;
		k->shut_pend = 0;
		break;
	default:
		op = VSOCK_OP_RST;
		break;
	}
	gv_hdr_for(s, k, op, flags, 0, &h);
	gv_tx_put(s, &h, NULL);
	return true;
}

/* Sends the control packets k owes, in protocol order (a RESPONSE before the
 * SHUTDOWN of a connection closed at once, say), as far as the TX ring has room;
 * the rest stays in k->pend for a later gv_process. */
void gv_ctrl_flush(struct gv_stack *s, struct gv_sock *k)
{
	static const uint8_t order[] = { P_REQUEST, P_RESPONSE, P_CREDIT_UPDATE,
					 P_CREDIT_REQUEST, P_SHUTDOWN, P_RST };

	for (unsigned int i = 0; i < sizeof(order) && k->pend; i++) {
		if (!(k->pend & order[i]))
			continue;
		if (!ctrl_now(s, k, order[i]))
			return;
		k->pend &= (uint8_t)~order[i];
	}
}

/* Owes the peer control packet p: sent now unless earlier ones still wait. */
void gv_ctrl(struct gv_stack *s, struct gv_sock *k, uint8_t p)
{
	k->pend |= p;
	gv_ctrl_flush(s, k);
}

/* RST toward a peer that has no socket here (packet for an unknown connection). */
void gv_rst_reply(struct gv_stack *s, const struct vsock_hdr *in)
{
	struct vsock_hdr h = {
		.src_cid = s->cfg.cid,
		.dst_cid = in->src_cid,
		.src_port = in->dst_port,
		.dst_port = in->src_port,
		.type = in->type,
		.op = VSOCK_OP_RST,
	};
	struct gv_rst *q;

	/* Older replies go first; queue this one behind them. */
	if (s->rst_count == 0 && gv_tx_avail(s, 1, 0)) {
		gv_tx_put(s, &h, NULL);
		return;
	}
	if (s->rst_count == GV_RSTQ) {
		/* The peer's connect times out instead: bounded memory wins. */
		s->st.rst_dropped++;
		return;
	}
	q = &s->rstq[(s->rst_head + s->rst_count++) % GV_RSTQ];
	q->cid = in->src_cid;
	q->dst_port = in->src_port;
	q->src_port = in->dst_port;
	q->type = in->type;
}

/* The connection of k has ended and all it still owes its peer is the RST the TX
 * ring had no room for: the RST waits in the reply queue instead (behind the replies
 * queued before it), so the slot need not wait for the ring. False (k unchanged)
 * when k owes more than that RST or the queue is full. */
bool gv_rst_park(struct gv_stack *s, struct gv_sock *k)
{
	struct gv_rst *q;

	if (k->pend != P_RST || s->rst_count == GV_RSTQ)
		return false;
	q = &s->rstq[(s->rst_head + s->rst_count++) % GV_RSTQ];
	q->cid = k->peer_cid;
	q->dst_port = k->peer_port;
	q->src_port = k->local_port;
	q->type = k->type;
	k->pend = 0;
	s->st.rst_parked++;
	return true;
}

/* A queued RST leaves from this local port. */
bool gv_rstq_holds(const struct gv_stack *s, uint32_t port)
{
	for (uint32_t i = 0; i < s->rst_count; i++)
		if (s->rstq[(s->rst_head + i) % GV_RSTQ].src_port == port)
			return true;
	return false;
}

void gv_rstq_flush(struct gv_stack *s)
{
	while (s->rst_count && gv_tx_avail(s, 1, 0)) {
		struct gv_rst *q = &s->rstq[s->rst_head];
		struct vsock_hdr h = {
			.src_cid = s->cfg.cid,
			.dst_cid = q->cid,
			.src_port = q->src_port,
			.dst_port = q->dst_port,
			.type = q->type,
			.op = VSOCK_OP_RST,
		};

		gv_tx_put(s, &h, NULL);
		s->rst_head = (s->rst_head + 1) % GV_RSTQ;
		s->rst_count--;
	}
}

void gv_tx_publish(struct gv_stack *s)
{
	if (s->tx_dirty) {
		s->tx_dirty = false;
		if (vq_driver_publish(&s->txq))
			s->cfg.ops->kick(s->cfg.ctx, GV_QUEUE_TX);
	}
	if (s->rx_dirty) {
		s->rx_dirty = false;
		if (vq_driver_publish(&s->rxq))
			s->cfg.ops->kick(s->cfg.ctx, GV_QUEUE_RX);
	}
}

void gv_tx_reclaim(struct gv_stack *s, struct gv_txent *e)
{
	if (e->pay != GV_NONE) {
		gv_pay_free(s, e->pay);
		e->pay = GV_NONE;
	}
	s->hdr_free[s->n_hdr_free++] = e->hdr;
}

/* Puts one data packet whose payload the caller already wrote into slot ps (a
 * loan), with header slot hs; both were taken off the free lists by the loan. */
void gv_tx_put_slots(struct gv_stack *s, const struct vsock_hdr *h, uint16_t hs, uint16_t ps)
{
	const struct gv_layout *l = &s->cfg.layout;
	struct gv_txent *e = &s->txent[hs];
	uint64_t off = l->tx_bufs + (uint64_t)ps * l->tx_payload;
	struct vq_buf b[2];
	int r;

	vsock_hdr_encode(h, s->region + l->tx_hdrs + (uint64_t)hs * GV_TX_HDR_STRIDE);
	b[0].addr = s->cfg.region_dev + l->tx_hdrs + (uint64_t)hs * GV_TX_HDR_STRIDE;
	b[0].len = GV_HDR_SIZE;
	b[1].addr = s->cfg.region_dev + off;
	b[1].len = h->len;
	e->pay = ps;
	r = vq_driver_add(&s->txq, b, 2, NULL, 0, e);
	if (r) {
		gv_pay_unused(s, ps);
		s->hdr_free[s->n_hdr_free++] = hs;
		e->pay = GV_NONE;
		(void)gv_fail(s, r);
		return;
	}
	s->tx_dirty = true;
	s->st.tx_packets++;
	s->st.tx_bytes += h->len;
}
