/* The virtio-vsock packet layer: see vsock.h. */
#include "vsock.h"

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

void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t in[VSOCK_HDR_SIZE])
{
	/* One volatile pass copies the bytes the peer may still be writing; every
	 * field then comes from the private copy. */
	const volatile uint8_t *s = in;
	uint8_t b[VSOCK_HDR_SIZE];

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

void vsock_credit_init(struct vsock_credit *c, uint32_t buf_alloc)
{
	*c = (struct vsock_credit){ .buf_alloc = buf_alloc };
}

void vsock_credit_from_peer(struct vsock_credit *c, const struct vsock_hdr *h)
{
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
}

void vsock_credit_to_peer(struct vsock_credit *c, struct vsock_hdr *h)
{
	h->buf_alloc = c->buf_alloc;
	h->fwd_cnt = c->fwd_cnt;
	c->last_fwd_cnt = c->fwd_cnt;
}

uint32_t vsock_credit_take(struct vsock_credit *c, uint32_t want)
{
	uint32_t free = vsock_credit_peer_free(c);
	uint32_t n = want < free ? want : free;

	c->tx_cnt += n;
	return n;
}

int vsock_credit_rx(struct vsock_credit *c, uint32_t len)
{
	/* What we advertised is room for buf_alloc - (rx_cnt - fwd_cnt) more bytes:
	 * the same arithmetic the peer does on its side. */
	if (len > vsock_peer_free(c->buf_alloc, c->rx_cnt, c->fwd_cnt))
		return -RT_EPROTO;
	c->rx_cnt += len;
	return 0;
}

void vsock_credit_consumed(struct vsock_credit *c, uint32_t len)
{
	c->fwd_cnt += len;
}
