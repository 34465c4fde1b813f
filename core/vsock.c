/* The virtio-vsock packet layer: see vsock.h. */
#include "vsock.h"

/*@ requires \valid_read(h) && \valid(out + (0 .. VSOCK_HDR_SIZE - 1));
    requires \separated(h, out + (0 .. VSOCK_HDR_SIZE - 1));
    assigns out[0 .. VSOCK_HDR_SIZE - 1]; */
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_SIZE])
{
	le64_store(out + 0, h->src_cid);
	le64_store(out + 8, h->dst_cid);
	le32_store(out + 16, h->src_port);
	le32_store(out + 20, h->dst_port);
	le32_store(out + 24, h->len);
	le16_store(out + 28, h->type);
	le16_store(out + 30, h->op);
	le32_store(out + 32, h->flags);
	le32_store(out + 36, h->buf_alloc);
	le32_store(out + 40, h->fwd_cnt);
}

/* The peer's bytes are read only here, each once; *h is then device-private (the
 * proof: h is separate from in, and nothing but *h is written). */
/*@ requires \valid(h) && \valid_read(in + (0 .. VSOCK_HDR_SIZE - 1));
    requires \separated(h, in + (0 .. VSOCK_HDR_SIZE - 1));
    assigns *h; */
void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t in[VSOCK_HDR_SIZE])
{
	/* One volatile pass copies the bytes the peer may still be writing; every
	 * field then comes from the private copy. */
	const volatile uint8_t *s = in;
	uint8_t b[VSOCK_HDR_SIZE];

	/*@ loop invariant 0 <= i <= VSOCK_HDR_SIZE;
	    loop assigns i, b[0 .. VSOCK_HDR_SIZE - 1];
	    loop variant VSOCK_HDR_SIZE - i; */
	for (unsigned int i = 0; i < VSOCK_HDR_SIZE; i++)
		b[i] = s[i];
	h->src_cid = le64_load(b + 0);
	h->dst_cid = le64_load(b + 8);
	h->src_port = le32_load(b + 16);
	h->dst_port = le32_load(b + 20);
	h->len = le32_load(b + 24);
	h->type = le16_load(b + 28);
	h->op = le16_load(b + 30);
	h->flags = le32_load(b + 32);
	h->buf_alloc = le32_load(b + 36);
	h->fwd_cnt = le32_load(b + 40);
}

/*@ requires \valid(c);
    assigns *c; */
void vsock_credit_init(struct vsock_credit *c, uint32_t buf_alloc)
{
	*c = (struct vsock_credit){ .buf_alloc = buf_alloc };
}

/*@ requires \valid(c) && \valid_read(h) && \separated(c, h);
    assigns c->peer_buf_alloc, c->peer_fwd_cnt; */
void vsock_credit_from_peer(struct vsock_credit *c, const struct vsock_hdr *h)
{
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
}

/*@ requires \valid(c) && \valid(h) && \separated(c, h);
    assigns h->buf_alloc, h->fwd_cnt, c->last_fwd_cnt; */
void vsock_credit_to_peer(struct vsock_credit *c, struct vsock_hdr *h)
{
	h->buf_alloc = c->buf_alloc;
	h->fwd_cnt = c->fwd_cnt;
	c->last_fwd_cnt = c->fwd_cnt;
}

/*@ requires \valid(c);
    assigns c->tx_cnt;
    ensures \result <= want && \result <= c->peer_buf_alloc; */
uint32_t vsock_credit_take(struct vsock_credit *c, uint32_t want)
{
	uint32_t free = vsock_credit_peer_free(c);
	uint32_t n = want < free ? want : free;

	c->tx_cnt += n;
	return n;
}

/*@ requires \valid(c);
    assigns c->rx_cnt;
    ensures \result == 0 || \result == -RT_EPROTO;
    ensures \result == 0 ==> len <= c->buf_alloc;
    ensures \result != 0 ==> c->rx_cnt == \old(c->rx_cnt); */
int vsock_credit_rx(struct vsock_credit *c, uint32_t len)
{
	/* What we advertised is room for buf_alloc - (rx_cnt - fwd_cnt) more bytes:
	 * the same arithmetic the peer does on its side. */
	if (len > vsock_peer_free(c->buf_alloc, c->rx_cnt, c->fwd_cnt))
		return -RT_EPROTO;
	c->rx_cnt += len;
	return 0;
}

/*@ requires \valid(c);
    assigns c->fwd_cnt; */
void vsock_credit_consumed(struct vsock_credit *c, uint32_t len)
{
	c->fwd_cnt += len;
}
