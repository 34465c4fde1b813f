/* gv_send: STREAM sends what the peer's credit and the TX slots take now;
 * SEQPACKET sends a whole message or nothing. */
#include "gv_internal.h"

/* Common checks before sending: 0 or the error send must return. */
int gv_send_state(struct gv_stack *s, struct gv_sock *k)
{
	if (k->state == GV_S_DONE) {
		int e = k->err;

		if (e) {
			k->err = 0;
			return e;
		}
		return -GV_EPIPE;
	}
	if (k->state == GV_S_CONNECTING)
		return -GV_EAGAIN;
	if (k->state != GV_S_CONNECTED)
		return -GV_ENOTCONN;
	if (s->dead)
		return -GV_ECONNRESET;
	if ((k->shut & GV_SHUT_WR) || (k->peer_shut & VSOCK_SHUTDOWN_RCV))
		return -GV_EPIPE;
	if (k->pend & (P_REQUEST | P_RESPONSE)) {
		gv_ctrl_flush(s, k);
		if (k->pend & (P_REQUEST | P_RESPONSE)) {
			k->tx_blocked = true;
			return -GV_EAGAIN;
		}
	}
	return 0;
}

/* True when the peer has room for a whole SEQPACKET message of len bytes. */
bool gv_seq_credit(struct gv_stack *s, struct gv_sock *k, uint32_t len)
{
	if (vsock_credit_peer_free(&k->cr) >= len)
		return true;
	k->want = len;
	if (!k->credit_requested) {
		/* Our view of the peer's space may be stale: ask once per stall.
		 * The answer and every later consumption by the peer come as
		 * CREDIT_UPDATEs (it knows we wait), so asking again before a
		 * send succeeds would only bounce control packets around. */
		k->credit_requested = true;
		gv_ctrl(s, k, P_CREDIT_REQUEST);
		gv_tx_publish(s);
	}
	return false;
}

static uint32_t max_msg(const struct gv_stack *s, const struct gv_sock *k)
{
	uint64_t m = (uint64_t)s->cfg.layout.tx_slot_count * s->cfg.layout.tx_payload;

	if (m > k->cr.peer_buf_alloc)
		m = k->cr.peer_buf_alloc;
	if (m > 0x7FFFFFFFu)
		m = 0x7FFFFFFFu;
	return (uint32_t)m;
}

int gv_max_message(const struct gv_stack *s, int id)
{
	const struct gv_sock *k = gv_sock_get(s, id);

	if (!k || k->state != GV_S_CONNECTED)
		return -GV_ENOTCONN;
	return (int)max_msg(s, k);
}

static int send_seqpacket(struct gv_stack *s, struct gv_sock *k, const uint8_t *p,
			  uint32_t len, bool eor)
{
	uint32_t tp = s->cfg.layout.tx_payload;
	uint32_t npkt = gv_npkt(len, tp);
	uint32_t off = 0;

	if (len > max_msg(s, k))
		return -GV_EMSGSIZE;
	if (!gv_seq_credit(s, k, len))
		return -GV_EAGAIN;
	if (!gv_tx_avail(s, npkt, npkt)) {
		k->want = len;
		k->tx_blocked = true;
		return -GV_EAGAIN;
	}
	while (off < len) {
		struct vsock_hdr h;
		uint32_t n = len - off < tp ? len - off : tp;
		uint32_t fl = 0;

		if (off + n == len)
			fl = VSOCK_SEQ_EOM | (eor ? VSOCK_SEQ_EOR : 0);
		(void)vsock_credit_take(&k->cr, n);
		gv_hdr_for(s, k, VSOCK_OP_RW, fl, n, &h);
		gv_tx_put(s, &h, p + off);
		off += n;
	}
	k->pend &= (uint8_t)~P_CREDIT_UPDATE; /* the RW headers carried it */
	k->want = 0;
	k->credit_requested = false;
	gv_tx_publish(s);
	return (int)len;
}

static int send_stream(struct gv_stack *s, struct gv_sock *k, const uint8_t *p, uint32_t len)
{
	uint32_t tp = s->cfg.layout.tx_payload;
	uint32_t off = 0;

	while (off < len) {
		struct vsock_hdr h;
		uint32_t n = len - off < tp ? len - off : tp;
		uint32_t fr = vsock_credit_peer_free(&k->cr);

		if (fr == 0)
			break;
		if (!gv_tx_avail(s, 1, 1)) {
			k->tx_blocked = true;
			break;
		}
		if (n > fr)
			n = fr;
		(void)vsock_credit_take(&k->cr, n);
		gv_hdr_for(s, k, VSOCK_OP_RW, 0, n, &h);
		gv_tx_put(s, &h, p + off);
		off += n;
	}
	if (off)
		k->pend &= (uint8_t)~P_CREDIT_UPDATE;
	gv_tx_publish(s);
	return off ? (int)off : -GV_EAGAIN;
}

int gv_send(struct gv_stack *s, int id, const void *buf, size_t len, bool eor)
{
	struct gv_sock *k = gv_sock_get(s, id);
	int r;

	if (!k)
		return -GV_EINVAL;
	r = gv_send_state(s, k);
	if (r)
		return r;
	if (len == 0)
		return 0;
	if (len > 0x7FFFFFFFu) {
		if (k->type == GV_SOCK_SEQPACKET)
			return -GV_EMSGSIZE;
		len = 0x7FFFFFFFu;
	}
	if (k->type == GV_SOCK_SEQPACKET)
		return send_seqpacket(s, k, buf, (uint32_t)len, eor);
	return send_stream(s, k, buf, (uint32_t)len);
}

