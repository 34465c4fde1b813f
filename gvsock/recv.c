/* gv_recv: bytes (STREAM) or one whole message (SEQPACKET) out of a socket's
 * receive ring. */
#include "gv_internal.h"

int gv_recv_empty(struct gv_sock *k)
{
	if (k->state == GV_S_DONE) {
		int e = k->err;

		k->err = 0;
		return e;
	}
	if (k->state == GV_S_CONNECTING)
		return -GV_EAGAIN;
	if (k->state != GV_S_CONNECTED)
		return -GV_ENOTCONN;
	if ((k->peer_shut & VSOCK_SHUTDOWN_SEND) || (k->shut & GV_SHUT_RD))
		return 0;
	return -GV_EAGAIN;
}

int gv_recv(struct gv_stack *s, int id, void *buf, size_t len, unsigned int flags,
	    unsigned int *out_flags)
{
	struct gv_sock *k = gv_sock_get(s, id);
	uint32_t n, mlen;
	unsigned int of = 0;

	if (out_flags)
		*out_flags = 0;
	if (!k)
		return -GV_EINVAL;
	if (len > 0x7FFFFFFFu)
		len = 0x7FFFFFFFu;
	if (k->hold_max || k->nheld)
		return gv_recv_zc(s, k, buf, (uint32_t)len, flags, out_flags);
	if (k->type == GV_SOCK_STREAM) {
		if (k->rlen == 0)
			return gv_recv_empty(k);
		n = k->rlen < len ? k->rlen : (uint32_t)len;
		gv_rbuf_peek(k, 0, buf, n);
		if (!(flags & GV_MSG_PEEK)) {
			gv_consume(s, k, n);
			gv_tx_publish(s);
		}
		return (int)n;
	}
	if (k->msgs == 0) {
		if (k->rlen == k->rcap && k->rlen) {
			/* A message larger than the whole budget: hand out its first part,
			 * drop the rest up to its end. */
			n = k->rlen < len ? k->rlen : (uint32_t)len;
			gv_rbuf_peek(k, 0, buf, n);
			if (out_flags)
				*out_flags = GV_MSG_TRUNC;
			if (!(flags & GV_MSG_PEEK)) {
				k->discard = true;
				gv_consume(s, k, k->rlen);
				gv_tx_publish(s);
			}
			return (int)n;
		}
		return gv_recv_empty(k);
	}
	mlen = gv_rbuf_next_eom(k) + 1;
	n = mlen < len ? mlen : (uint32_t)len;
	gv_rbuf_peek(k, 0, buf, n);
	if (mlen > len)
		of |= GV_MSG_TRUNC;
	{
		uint32_t last = gv_rbuf_pos(k, mlen - 1);

		if (gv_bit_test(k->eor, last))
			of |= GV_MSG_EOR;
		if (!(flags & GV_MSG_PEEK)) {
			gv_bit_clear(k->eom, last);
			gv_bit_clear(k->eor, last);
			k->msgs--;
			gv_consume(s, k, mlen);
			gv_tx_publish(s);
		}
	}
	if (out_flags)
		*out_flags = of;
	return (int)n;
}
