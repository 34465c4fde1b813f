/* gvsock's zero copy (gvsock.h): TX payload slots lent to the sender, RX buffers held
 * for the receiver to read in place. Either way the broker's copy is the only one. */
#include "gv_internal.h"

/* ---- Receiving ---- */

int gv_set_zerocopy(struct gv_stack *s, int id, uint32_t max_bufs)
{
	struct gv_sock *k = gv_sock_get(s, id);

	if (!k || max_bufs > s->num)
		return -GV_EINVAL;
	k->hold_max = max_bufs;
	return 0;
}

/* Whether the packet now arriving keeps its RX buffer. Only while the ring is
 * empty, so that held pieces always precede the ring's bytes; a SEQPACKET message
 * is held whole or not at all (the limit is checked at its first packet), so no
 * message straddles the two. */
bool gv_hold_wanted(const struct gv_sock *k)
{
	if (k->hold_msg)
		return true;
	return k->hold_max && k->rlen == 0 && k->nheld < k->hold_max;
}

/* Keeps the RX buffer gv_rx_one is looking at (s->rx_cur) on k's held list. */
void gv_hold_put(struct gv_stack *s, struct gv_sock *k, uint32_t len, uint8_t flags)
{
	uint16_t i = (uint16_t)s->rx_cur;
	struct gv_hold *h = &s->hold[i];

	h->off = 0;
	h->len = len;
	h->flags = flags;
	h->next = GV_NONE;
	if (k->hold_tail != GV_NONE)
		s->hold[k->hold_tail].next = i;
	else
		k->hold_head = i;
	k->hold_tail = i;
	k->nheld++;
	k->hlen += len;
	if (k->type == GV_SOCK_SEQPACKET) {
		k->hold_msg = !(flags & GV_MSG_EOM);
		if (flags & GV_MSG_EOM)
			k->msgs++;
	}
	s->rx_held = true;
}

/* Unlinks the oldest held buffer and posts it again. */
static void hold_pop(struct gv_stack *s, struct gv_sock *k)
{
	uint16_t i = k->hold_head;

	k->hold_head = s->hold[i].next;
	if (k->hold_head == GV_NONE)
		k->hold_tail = GV_NONE;
	k->nheld--;
	if (!s->dead && gv_rx_post(s, i))
		(void)gv_fail(s, -GV_EINVAL);
}

static void loan_return(struct gv_stack *s, struct gv_sock *k)
{
	if (!k->loaned)
		return;
	gv_pay_unused(s, k->loan_pay);
	s->hdr_free[s->n_hdr_free++] = k->loan_hdr;
	s->desc_reserved -= 2;
	k->loaned = false;
	/* Its room may be what another socket waits for: no completion will say so. */
	gv_tx_wake_blocked(s);
}

/* The socket's unread held buffers go back to the broker and its loan to the free
 * lists (close, or the slot is freed). */
void gv_zc_drop(struct gv_stack *s, struct gv_sock *k)
{
	while (k->hold_head != GV_NONE)
		hold_pop(s, k);
	k->hlen = 0;
	k->hold_msg = false;
	k->lent = 0;
	loan_return(s, k);
}

/* The oldest unread piece: held buffer first, then the ring up to its wrap or the
 * next message end. Length, 0 when nothing is queued. */
static uint32_t piece(struct gv_stack *s, struct gv_sock *k, const uint8_t **p,
		      unsigned int *fl)
{
	uint32_t n;

	*fl = 0;
	if (k->hold_head != GV_NONE) {
		const struct gv_hold *h = &s->hold[k->hold_head];

		*p = gv_rx_buf(s, k->hold_head) + GV_HDR_SIZE + h->off;
		*fl = h->flags;
		return h->len - h->off;
	}
	if (k->rlen == 0)
		return 0;
	n = k->rcap - k->rhead;
	if (n > k->rlen)
		n = k->rlen;
	if (k->type == GV_SOCK_SEQPACKET) {
		uint32_t e = gv_rbuf_next_eom(k);

		if (e < n) {
			n = e + 1;
			*fl = GV_MSG_EOM;
			if (gv_bit_test(k->eor, gv_rbuf_pos(k, e)))
				*fl |= GV_MSG_EOR;
		}
	}
	*p = k->rbuf + k->rhead;
	return n;
}

/* Consumes n bytes of the oldest piece (n <= its length). Whatever consumes it ends
 * a borrow of it (a recv between gv_borrow and gv_release, say): a release of the old
 * length would consume the next piece instead, past its end. */
static void piece_consume(struct gv_stack *s, struct gv_sock *k, uint32_t n)
{
	k->lent = 0;
	if (k->hold_head != GV_NONE) {
		struct gv_hold *h = &s->hold[k->hold_head];

		h->off += n;
		k->hlen -= n;
		if (h->off == h->len) {
			if (h->flags & GV_MSG_EOM)
				k->msgs--;
			hold_pop(s, k);
		}
		vsock_credit_consumed(&k->cr, n);
		gv_credit_check(s, k);
		return;
	}
	if (k->type == GV_SOCK_SEQPACKET && n) {
		uint32_t last = gv_rbuf_pos(k, n - 1);

		if (gv_bit_test(k->eom, last)) {
			gv_bit_clear(k->eom, last);
			gv_bit_clear(k->eor, last);
			k->msgs--;
		}
	}
	gv_consume(s, k, n);
}

int gv_borrow(struct gv_stack *s, int id, const void **ptr, size_t *len,
	      unsigned int *out_flags)
{
	struct gv_sock *k = gv_sock_get(s, id);
	const uint8_t *p = NULL;
	unsigned int fl;
	uint32_t n;

	if (out_flags)
		*out_flags = 0;
	if (!k || !ptr || !len)
		return -GV_EINVAL;
	n = piece(s, k, &p, &fl);
	k->lent = n;
	if (n == 0)
		return gv_recv_empty(k);
	*ptr = p;
	*len = n;
	if (out_flags)
		*out_flags = fl;
	return (int)n;
}

int gv_release(struct gv_stack *s, int id, size_t n)
{
	struct gv_sock *k = gv_sock_get(s, id);

	if (!k || n > k->lent)
		return -GV_EINVAL;
	if (n == 0)
		return 0;
	piece_consume(s, k, (uint32_t)n);
	gv_tx_publish(s); /* the reposted buffer and any credit update */
	return 0;
}

/* SEQPACKET: one message larger than the whole budget fills it with no end in
 * sight; hand out its first part and drop the rest (as gv_recv does). */
static int recv_zc_oversize(struct gv_stack *s, struct gv_sock *k, uint8_t *buf,
			    uint32_t len, unsigned int *of)
{
	uint32_t done = 0, n;
	const uint8_t *p;
	unsigned int fl;

	while ((n = piece(s, k, &p, &fl)) != 0) {
		uint32_t c = len - done < n ? len - done : n;

		gv_memcpy(buf + done, p, c);
		done += c;
		piece_consume(s, k, n);
	}
	k->discard = true;
	k->hold_msg = false;
	*of = GV_MSG_TRUNC;
	return (int)done;
}

/* gv_recv on a socket that holds RX buffers: the same results, from the pieces. */
int gv_recv_zc(struct gv_stack *s, struct gv_sock *k, uint8_t *buf, uint32_t len,
	       unsigned int flags, unsigned int *out_flags)
{
	bool seq = k->type == GV_SOCK_SEQPACKET;
	uint32_t done = 0, n;
	unsigned int fl = 0, of = 0;
	const uint8_t *p;
	int r;

	if (seq && k->msgs == 0) {
		if (k->rlen + k->hlen != k->rcap || k->rcap == 0 || (flags & GV_MSG_PEEK))
			return gv_recv_empty(k);
		r = recv_zc_oversize(s, k, buf, len, &of);
		if (out_flags)
			*out_flags = of;
		gv_tx_publish(s);
		return r;
	}
	while ((n = piece(s, k, &p, &fl)) != 0) {
		uint32_t c = len - done < n ? len - done : n;

		gv_memcpy(buf + done, p, c);
		done += c;
		if (flags & GV_MSG_PEEK)
			break;
		if (seq && c < n)
			of |= GV_MSG_TRUNC; /* the rest of the message is dropped */
		piece_consume(s, k, seq ? n : c);
		if ((seq && (fl & GV_MSG_EOM)) || (!seq && done == len))
			break;
	}
	if (seq && (fl & GV_MSG_EOM))
		of |= fl & GV_MSG_EOR;
	if (out_flags)
		*out_flags = of;
	if (done == 0 && !seq)
		return gv_recv_empty(k);
	gv_tx_publish(s);
	return (int)done;
}

/* ---- Sending ---- */

/* Bytes a loan of len may have now (0: wait), or a negative error. */
static int loan_size(struct gv_stack *s, struct gv_sock *k, int id, size_t len)
{
	uint32_t tp = s->cfg.layout.tx_payload, fr;
	int m;

	if (k->type == GV_SOCK_SEQPACKET) {
		m = gv_max_message(s, id);
		if (m < 0)
			return m;
		if (len > tp || len > (size_t)m)
			return -GV_EMSGSIZE;
		return gv_seq_credit(s, k, (uint32_t)len) ? (int)len : 0;
	}
	fr = vsock_credit_peer_free(&k->cr);
	if (len > tp)
		len = tp;
	return (int)(len < fr ? len : fr);
}

int gv_loan(struct gv_stack *s, int id, size_t len, void **ptr)
{
	struct gv_sock *k = gv_sock_get(s, id);
	const struct gv_layout *l = &s->cfg.layout;
	int r;

	if (!k || !ptr)
		return -GV_EINVAL;
	if (k->loaned)
		return -GV_EALREADY;
	r = gv_send_state(s, k);
	if (r)
		return r;
	if (len == 0)
		return -GV_EINVAL;
	r = loan_size(s, k, id, len);
	if (r <= 0)
		return r ? r : -GV_EAGAIN;
	if (!gv_tx_avail(s, 1, 1)) {
		k->want = (uint32_t)r;
		k->tx_blocked = true;
		return -GV_EAGAIN;
	}
	k->loan_hdr = s->hdr_free[--s->n_hdr_free];
	k->loan_pay = gv_pay_take(s);
	s->desc_reserved += 2; /* header and payload: commit cannot fail for room */
	k->loan_len = (uint32_t)r;
	k->loaned = true;
	*ptr = s->region + l->tx_bufs + (uint64_t)k->loan_pay * l->tx_payload;
	return r;
}

int gv_commit(struct gv_stack *s, int id, size_t len, bool eor)
{
	struct gv_sock *k = gv_sock_get(s, id);
	struct vsock_hdr h;
	uint32_t fl = 0;
	int r;

	if (!k || !k->loaned || len > k->loan_len)
		return -GV_EINVAL;
	r = gv_send_state(s, k);
	if (r || len == 0) {
		loan_return(s, k);
		return r;
	}
	/* Another send on this socket may have taken credit since the loan. */
	if (vsock_credit_peer_free(&k->cr) < len)
		return -GV_EAGAIN;
	if (k->type == GV_SOCK_SEQPACKET)
		fl = VSOCK_SEQ_EOM | (eor ? VSOCK_SEQ_EOR : 0);
	(void)vsock_credit_take(&k->cr, (uint32_t)len);
	gv_hdr_for(s, k, VSOCK_OP_RW, fl, (uint32_t)len, &h);
	s->desc_reserved -= 2;
	k->loaned = false;
	gv_tx_put_slots(s, &h, k->loan_hdr, k->loan_pay);
	k->pend &= (uint8_t)~P_CREDIT_UPDATE; /* the RW header carried it */
	k->want = 0;
	k->credit_requested = false;
	gv_tx_publish(s);
	return (int)len;
}
