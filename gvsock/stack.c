/* gvsock: the stack in caller storage. The vsock protocol of virtio 1.2 section
 * 5.10, following Linux's virtio_transport_common behaviour where the spec leaves room
 * (closing handshake, credit updates, SEQPACKET boundaries); gv_internal.h lists the
 * files. This one carves the caller's storage, sets up both rings and posts the RX
 * buffers. */
#include "gv_internal.h"

/* Where each part of the caller storage starts (offsets into it) and its total. */
struct gv_carve {
	size_t stack, sk, rx_slot, tx_slot, txent, hdr_free, pay_free, hold, sockmem, total;
	uint32_t stride;
};

static bool cfg_valid(const struct gv_config *c)
{
	const struct gv_layout *l = &c->layout;

	if (!c->ops || !c->ops->kick || !c->ops->now_ns || !c->region)
		return false;
	if ((uintptr_t)c->region % 64)
		return false;
	if (c->max_sockets < 1 || c->max_sockets > 4096)
		return false;
	if (c->rcvbuf < 128 || c->rcvbuf > 0x40000000u)
		return false;
	if (l->queue_size < 2 || l->queue_size > VQ_MAX_SIZE ||
	    (l->queue_size & (l->queue_size - 1)))
		return false;
	if (l->footprint > c->region_size || l->rx_buf_count != l->queue_size ||
	    l->rx_buf_size <= GV_HDR_SIZE || l->tx_slot_count == 0 ||
	    l->tx_slot_count > l->queue_size / 2 || l->tx_payload == 0)
		return false;
	/* Device addresses of the whole region must not wrap. */
	if (c->region_dev + c->region_size < c->region_dev)
		return false;
	return true;
}

static void carve(const struct gv_config *c, struct gv_carve *v)
{
	size_t off = 0;
	uint32_t num = c->layout.queue_size;

	v->stack = off;
	off = gv_align_up(off + sizeof(struct gv_stack), 64);
	v->sk = off;
	off = gv_align_up(off + (size_t)c->max_sockets * sizeof(struct gv_sock), 64);
	v->rx_slot = off;
	off = gv_align_up(off + (size_t)num * sizeof(struct vq_drv_slot), 64);
	v->tx_slot = off;
	off = gv_align_up(off + (size_t)num * sizeof(struct vq_drv_slot), 64);
	v->txent = off;
	off = gv_align_up(off + (size_t)num * sizeof(struct gv_txent), 64);
	v->hdr_free = off;
	off = gv_align_up(off + (size_t)num * sizeof(uint16_t), 64);
	v->pay_free = off;
	off = gv_align_up(off + (size_t)c->layout.tx_slot_count * sizeof(uint16_t), 64);
	v->hold = off;
	off = gv_align_up(off + (size_t)num * sizeof(struct gv_hold), 64);
	v->stride = (uint32_t)gv_align_up(c->rcvbuf, 64);
	v->sockmem = off;
	off += (size_t)c->max_sockets * v->stride;
	v->total = off;
}

size_t gv_stack_mem_size(const struct gv_config *cfg)
{
	struct gv_carve v;

	if (!cfg || !cfg_valid(cfg))
		return 0;
	carve(cfg, &v);
	return v.total;
}

static uint64_t feat(const struct gv_config *c)
{
	uint64_t f = 1ull << VIRTIO_F_VERSION_1;

	if (c->event_idx)
		f |= 1ull << VIRTIO_F_EVENT_IDX;
	return f;
}

uint8_t *gv_rx_buf(struct gv_stack *s, uint32_t i)
{
	return s->region + s->cfg.layout.rx_bufs + (uint64_t)i * s->cfg.layout.rx_buf_size;
}

int gv_rx_post(struct gv_stack *s, uint32_t i)
{
	const struct gv_layout *l = &s->cfg.layout;
	struct vq_buf b = {
		.addr = s->cfg.region_dev + l->rx_bufs + (uint64_t)i * l->rx_buf_size,
		.len = l->rx_buf_size,
	};
	int r = vq_driver_add(&s->rxq, NULL, 0, &b, 1, gv_rx_buf(s, i));

	if (r == 0)
		s->rx_dirty = true;
	return r;
}

int gv_stack_init(const struct gv_config *cfg, void *mem, size_t mem_size,
		  struct gv_stack **out)
{
	struct gv_carve v;
	struct gv_stack *s;
	struct vq_ring ring;
	uint8_t *m = mem;
	const struct gv_layout *l;
	uint32_t i;

	if (!cfg || !out || !mem || (uintptr_t)mem % 16 || !cfg_valid(cfg))
		return -GV_EINVAL;
	carve(cfg, &v);
	if (mem_size < v.total)
		return -GV_ENOSPC;
	gv_memset(mem, 0, v.total);
	s = (struct gv_stack *)(void *)(m + v.stack);
	s->cfg = *cfg;
	if (!s->cfg.connect_timeout_ns)
		s->cfg.connect_timeout_ns = GV_DEFAULT_TIMEOUT_NS;
	if (!s->cfg.close_timeout_ns)
		s->cfg.close_timeout_ns = GV_DEFAULT_TIMEOUT_NS;
	l = &s->cfg.layout;
	s->region = cfg->region;
	s->num = l->queue_size;
	s->sk = (struct gv_sock *)(void *)(m + v.sk);
	s->rx_slot = (struct vq_drv_slot *)(void *)(m + v.rx_slot);
	s->tx_slot = (struct vq_drv_slot *)(void *)(m + v.tx_slot);
	s->txent = (struct gv_txent *)(void *)(m + v.txent);
	s->hdr_free = (uint16_t *)(void *)(m + v.hdr_free);
	s->pay_free = (uint16_t *)(void *)(m + v.pay_free);
	s->hold = (struct gv_hold *)(void *)(m + v.hold);
	s->sockmem = m + v.sockmem;
	s->sockmem_stride = v.stride;
	s->next_port = GV_EPHEMERAL_FIRST;

	ring.num = s->num;
	ring.desc = (struct vring_desc *)(void *)(s->region + l->rx_desc);
	ring.avail = (struct vring_avail *)(void *)(s->region + l->rx_avail);
	ring.used = (struct vring_used *)(void *)(s->region + l->rx_used);
	if (vq_driver_init(&s->rxq, &ring, s->rx_slot, feat(cfg)))
		return -GV_EINVAL;
	ring.desc = (struct vring_desc *)(void *)(s->region + l->tx_desc);
	ring.avail = (struct vring_avail *)(void *)(s->region + l->tx_avail);
	ring.used = (struct vring_used *)(void *)(s->region + l->tx_used);
	if (vq_driver_init(&s->txq, &ring, s->tx_slot, feat(cfg)))
		return -GV_EINVAL;

	/* The header free list is a stack, the payload one a ring (gv_pay_take); both
	 * hand out low slots first (nicer to read in dumps). */
	for (i = 0; i < s->num; i++) {
		s->txent[i].hdr = (uint16_t)i;
		s->txent[i].pay = GV_NONE;
		s->hdr_free[i] = (uint16_t)(s->num - 1 - i);
	}
	s->n_hdr_free = s->num;
	for (i = 0; i < l->tx_slot_count; i++)
		s->pay_free[i] = (uint16_t)i;
	s->n_pay_free = l->tx_slot_count;
	s->pay_head = 0;
	for (i = 0; i < cfg->max_sockets; i++)
		s->sk[i].state = GV_S_FREE;

	for (i = 0; i < l->rx_buf_count; i++)
		if (gv_rx_post(s, i))
			return -GV_EINVAL;
	/* The broker is not attached yet: publishing only makes the buffers visible
	 * once it looks; gv_start kicks. */
	(void)vq_driver_publish(&s->rxq);
	s->rx_dirty = false;
	*out = s;
	return 0;
}

void gv_start(struct gv_stack *s)
{
	s->cfg.ops->kick(s->cfg.ctx, GV_QUEUE_RX);
	s->cfg.ops->kick(s->cfg.ctx, GV_QUEUE_TX);
}

uint64_t gv_local_cid(const struct gv_stack *s)
{
	return s->cfg.cid;
}

void gv_get_stats(const struct gv_stack *s, struct gv_stats *out)
{
	*out = s->st;
}

