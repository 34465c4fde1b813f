/* A gvsock socket's receive ring: payload waiting for gv_recv, the SEQPACKET
 * boundary bits beside it, and the credit the peer hears of as it drains. */
#include "gv_internal.h"

/* Appends payload to the receive ring (room checked by vsock_credit_rx). */
void gv_rbuf_put(struct gv_sock *k, const uint8_t *p, uint32_t len)
{
	uint32_t tail = gv_rbuf_pos(k, k->rlen);
	uint32_t first = k->rcap - tail;

	if (first > len)
		first = len;
	gv_memcpy(k->rbuf + tail, p, first);
	gv_memcpy(k->rbuf, p + first, len - first);
	k->rlen += len;
}

/* Copies len bytes from offset `skip` past the read position. */
void gv_rbuf_peek(const struct gv_sock *k, uint32_t skip, uint8_t *out, uint32_t len)
{
	uint32_t pos = gv_rbuf_pos(k, skip);
	uint32_t first = k->rcap - pos;

	if (first > len)
		first = len;
	gv_memcpy(out, k->rbuf + pos, first);
	gv_memcpy(out + first, k->rbuf, len - first);
}

/* Tells the peer about consumed space when it would otherwise stall:
 *  - half the buffer has been consumed unannounced (a one-way flow hears nothing
 *    else);
 *  - it asked (CREDIT_REQUEST) while we held unread data: a gvsock SEQPACKET sender
 *    needs room for a whole message of a size we do not know, so every consumption
 *    is announced until it sends again (rx_rw) or the buffer is empty and announced;
 *  - the reader can take nothing more while the peer sees no room at all: a sender
 *    that splits a SEQPACKET message over credit windows (Linux) waits without
 *    asking, and our reader waits for the rest of the message it holds the start
 *    of. Either a read or an arrival can complete that picture, so both check.
 *    (A STREAM reader finds nothing queued only with less than half the buffer
 *    unannounced, so its peer always sees room then; the rule costs it nothing.)
 * Each announcement follows a consumption, so there is at most one per read. */
void gv_credit_check(struct gv_stack *s, struct gv_sock *k)
{
	uint32_t un = vsock_credit_unannounced(&k->cr);
	bool starved;

	if (k->state != GV_S_CONNECTED || un == 0)
		return;
	starved = (k->type == GV_SOCK_SEQPACKET ? k->msgs == 0 : k->rlen + k->hlen == 0) &&
		  vsock_peer_free(k->cr.buf_alloc, k->cr.rx_cnt, k->cr.last_fwd_cnt) == 0;
	if (un >= k->cr.buf_alloc / 2 || k->peer_waiting || starved) {
		if (k->rlen == 0 && k->hlen == 0)
			k->peer_waiting = false;
		gv_ctrl(s, k, P_CREDIT_UPDATE);
	}
}

void gv_consume(struct gv_stack *s, struct gv_sock *k, uint32_t n)
{
	k->rhead = gv_rbuf_pos(k, n);
	k->rlen -= n;
	vsock_credit_consumed(&k->cr, n);
	gv_credit_check(s, k);
}

/* Ring offset (from the read position) of the first message end, or rlen. */
uint32_t gv_rbuf_next_eom(const struct gv_sock *k)
{
	uint32_t i = 0;

	while (i < k->rlen) {
		uint32_t pos = gv_rbuf_pos(k, i);
		uint64_t w = k->eom[pos / 64] >> (pos % 64);

		if (w)
			return i + gv_ctz64(w);
		i += 64 - pos % 64;
	}
	return k->rlen;
}
