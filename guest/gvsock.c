/* gvsock: see gvsock.h. The vsock protocol of virtio 1.2 section 5.10, following
 * Linux's virtio_transport_common behaviour where the spec leaves room (closing
 * handshake, credit updates, SEQPACKET boundaries).
 *
 * Only memcpy/memset/memmove from libc; errno numbers are Linux's, named in
 * gvsock.h and core/rterrno.h, so this file needs no hosted header. */
#include "gvsock.h"

#include <string.h>

#include "rterrno.h"
#include "virtq.h"
#include "vsock.h"

#if GV_EINVAL != RT_EINVAL || GV_ENOSPC != RT_ENOSPC
#error gvsock.h and core/rterrno.h disagree
#endif

#define GV_PORT_ANY 0xFFFFFFFFu
#define GV_EPHEMERAL_FIRST 49152u
#define GV_TX_HDR_STRIDE 48u
#define GV_RSTQ 32u
#define GV_NONE 0xFFFFu
#define GV_DEFAULT_TIMEOUT_NS 2000000000ull

enum gv_state {
	GV_S_FREE = 0,
	GV_S_OPEN,       /* created, not connected */
	GV_S_LISTEN,
	GV_S_CONNECTING, /* REQUEST sent (or pending) */
	GV_S_CONNECTED,  /* including half-closed */
	GV_S_DONE,       /* connection gone (reset, or closed by both); id still held */
	GV_S_LINGER,     /* closed by the application; waiting for the peer's RST */
};

/* Control packets owed to the peer that did not fit in the TX ring yet. */
#define P_REQUEST 0x01u
#define P_RESPONSE 0x02u
#define P_CREDIT_UPDATE 0x04u
#define P_CREDIT_REQUEST 0x08u
#define P_SHUTDOWN 0x10u
#define P_RST 0x20u

struct gv_sock {
	uint8_t state;
	uint8_t type;
	uint8_t pend;          /* P_* */
	uint8_t shut;          /* GV_SHUT_* we have declared */
	uint8_t peer_shut;     /* VSOCK_SHUTDOWN_* the peer has declared */
	uint8_t shut_pend;     /* VSOCK_SHUTDOWN_* flags of a pending SHUTDOWN */
	bool bound;            /* holds local_port exclusively (not an accepted child) */
	bool accepted;         /* child: handed out by gv_accept */
	bool peer_waiting;     /* peer asked for credit while we held unread data */
	bool credit_requested; /* we asked for credit; cleared when a send succeeds */
	bool discard;          /* SEQPACKET: dropping the rest of an oversize message */
	bool tx_blocked;       /* a send failed for TX ring space: wake on reclaim */
	int err;               /* pending asynchronous error (negative errno) or 0 */
	int parent;            /* listener of an unaccepted child, else -1 */
	int next;              /* accept queue link */
	int acc_head, acc_tail;/* listener: unaccepted children, oldest first */
	uint32_t backlog, npending;
	uint32_t local_port;
	uint32_t peer_port;
	uint64_t peer_cid;
	uint32_t want;         /* SEQPACKET: size of the last message refused (POLLOUT) */
	uint64_t deadline;     /* connect or linger timeout; 0 = none */
	struct vsock_credit cr;
	/* receive ring: payload waiting for gv_recv; rcap == cr.buf_alloc */
	uint8_t *rbuf;
	uint64_t *eom, *eor;   /* SEQPACKET: bit per ring byte, set on a message's last */
	uint32_t rcap, rhead, rlen;
	uint32_t msgs;         /* SEQPACKET: complete messages in the ring */
};

struct gv_txent {
	uint16_t hdr;  /* header slot (== index of this entry) */
	uint16_t pay;  /* payload slot, or GV_NONE */
};

struct gv_rst {
	uint64_t cid;
	uint32_t dst_port, src_port;
	uint16_t type;
};

struct gv_stack {
	struct gv_config cfg;
	uint8_t *region;
	uint32_t num;
	struct vq_driver rxq, txq;
	struct vq_drv_slot *rx_slot, *tx_slot;
	struct gv_txent *txent;
	uint16_t *hdr_free, *pay_free;
	uint32_t n_hdr_free, n_pay_free;
	struct gv_sock *sk;
	uint8_t *sockmem;
	uint32_t sockmem_stride;
	struct gv_rst rstq[GV_RSTQ];
	uint32_t rst_head, rst_count;
	uint32_t next_port;
	uint64_t now;
	int dead;            /* sticky: rings broken */
	bool tx_dirty, rx_dirty;
	struct gv_stats st;
};

/* ---- layout ---------------------------------------------------------------------- */

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

int gv_layout_compute(const struct gv_layout_params *p, uint64_t region_size,
		      struct gv_layout *out)
{
	struct gv_layout_params d = { 0 };
	struct vq_layout vl;
	uint64_t off, room, max_slots, slots;

	if (!out)
		return -RT_EINVAL;
	if (p)
		d = *p;
	if (!d.queue_size)
		d.queue_size = GV_DEFAULT_QUEUE_SIZE;
	if (!d.rx_buf_size)
		d.rx_buf_size = GV_DEFAULT_RX_BUF_SIZE;
	if (!d.tx_payload)
		d.tx_payload = GV_DEFAULT_TX_PAYLOAD;
	/* 2 descriptors per data packet, and tokens index a 16-bit slot space. */
	if (d.queue_size < 2 || d.queue_size > VQ_MAX_SIZE ||
	    (d.queue_size & (d.queue_size - 1)))
		return -RT_EINVAL;
	if (d.rx_buf_size <= GV_HDR_SIZE || d.tx_payload == 0 ||
	    d.tx_payload > 0x40000000u)
		return -RT_EINVAL;
	if (vq_layout(d.queue_size, &vl))
		return -RT_EINVAL;

	memset(out, 0, sizeof(*out));
	out->queue_size = d.queue_size;
	off = 0;
	out->rx_desc = off + vl.desc_off;
	out->rx_avail = off + vl.avail_off;
	out->rx_used = off + vl.used_off;
	off = align_up(off + vl.total, 64);
	out->tx_desc = off + vl.desc_off;
	out->tx_avail = off + vl.avail_off;
	out->tx_used = off + vl.used_off;
	off = align_up(off + vl.total, 64);
	out->rx_bufs = off;
	out->rx_buf_count = d.queue_size;
	out->rx_buf_size = d.rx_buf_size;
	off = align_up(off + (uint64_t)d.queue_size * d.rx_buf_size, 64);
	out->tx_hdrs = off;
	off = align_up(off + (uint64_t)d.queue_size * GV_TX_HDR_STRIDE, 64);
	out->tx_bufs = off;
	out->tx_payload = d.tx_payload;
	if (off >= region_size)
		return -RT_ENOSPC;
	room = region_size - off;
	max_slots = d.queue_size / 2;
	slots = room / d.tx_payload;
	if (d.tx_slots) {
		if (d.tx_slots > max_slots)
			return -RT_EINVAL;
		if (slots < d.tx_slots)
			return -RT_ENOSPC;
		slots = d.tx_slots;
	} else if (slots > max_slots) {
		slots = max_slots;
	}
	if (slots == 0)
		return -RT_ENOSPC;
	out->tx_slot_count = (uint32_t)slots;
	out->footprint = off + slots * d.tx_payload;
	return 0;
}

/* ---- stack storage ------------------------------------------------------------------ */

struct gv_carve {
	size_t stack, sk, rx_slot, tx_slot, txent, hdr_free, pay_free, sockmem, total;
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
	off = align_up(off + sizeof(struct gv_stack), 64);
	v->sk = off;
	off = align_up(off + (size_t)c->max_sockets * sizeof(struct gv_sock), 64);
	v->rx_slot = off;
	off = align_up(off + (size_t)num * sizeof(struct vq_drv_slot), 64);
	v->tx_slot = off;
	off = align_up(off + (size_t)num * sizeof(struct vq_drv_slot), 64);
	v->txent = off;
	off = align_up(off + (size_t)num * sizeof(struct gv_txent), 64);
	v->hdr_free = off;
	off = align_up(off + (size_t)num * sizeof(uint16_t), 64);
	v->pay_free = off;
	off = align_up(off + (size_t)c->layout.tx_slot_count * sizeof(uint16_t), 64);
	v->stride = (uint32_t)align_up(c->rcvbuf, 64);
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

static uint8_t *rx_buf(struct gv_stack *s, uint32_t i)
{
	return s->region + s->cfg.layout.rx_bufs + (uint64_t)i * s->cfg.layout.rx_buf_size;
}

static int rx_post(struct gv_stack *s, uint32_t i)
{
	const struct gv_layout *l = &s->cfg.layout;
	struct vq_buf b = {
		.addr = s->cfg.region_dev + l->rx_bufs + (uint64_t)i * l->rx_buf_size,
		.len = l->rx_buf_size,
	};
	int r = vq_driver_add(&s->rxq, NULL, 0, &b, 1, rx_buf(s, i));

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
		return -RT_EINVAL;
	carve(cfg, &v);
	if (mem_size < v.total)
		return -RT_ENOSPC;
	memset(mem, 0, v.total);
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
	s->sockmem = m + v.sockmem;
	s->sockmem_stride = v.stride;
	s->next_port = GV_EPHEMERAL_FIRST;

	ring.num = s->num;
	ring.desc = (struct vring_desc *)(void *)(s->region + l->rx_desc);
	ring.avail = (struct vring_avail *)(void *)(s->region + l->rx_avail);
	ring.used = (struct vring_used *)(void *)(s->region + l->rx_used);
	if (vq_driver_init(&s->rxq, &ring, s->rx_slot, feat(cfg)))
		return -RT_EINVAL;
	ring.desc = (struct vring_desc *)(void *)(s->region + l->tx_desc);
	ring.avail = (struct vring_avail *)(void *)(s->region + l->tx_avail);
	ring.used = (struct vring_used *)(void *)(s->region + l->tx_used);
	if (vq_driver_init(&s->txq, &ring, s->tx_slot, feat(cfg)))
		return -RT_EINVAL;

	/* Free lists are stacks; hand out low slots first (nicer to read in dumps). */
	for (i = 0; i < s->num; i++) {
		s->txent[i].hdr = (uint16_t)i;
		s->txent[i].pay = GV_NONE;
		s->hdr_free[i] = (uint16_t)(s->num - 1 - i);
	}
	s->n_hdr_free = s->num;
	for (i = 0; i < l->tx_slot_count; i++)
		s->pay_free[i] = (uint16_t)(l->tx_slot_count - 1 - i);
	s->n_pay_free = l->tx_slot_count;
	for (i = 0; i < cfg->max_sockets; i++)
		s->sk[i].state = GV_S_FREE;

	for (i = 0; i < l->rx_buf_count; i++)
		if (rx_post(s, i))
			return -RT_EINVAL;
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

/* ---- transmit ------------------------------------------------------------------------ */

static int fail(struct gv_stack *s, int err);

static bool tx_room(const struct gv_stack *s, uint32_t npkt, uint32_t npay)
{
	return !s->dead && s->n_hdr_free >= npkt && s->n_pay_free >= npay &&
	       vq_driver_num_free(&s->txq) >= npkt + npay;
}

/* Puts one packet on the TX ring (not yet published). The caller has checked
 * tx_room(). The header and payload are written into region memory before
 * vq_driver_add, and vq_driver_publish orders those writes before the avail index. */
static void tx_put(struct gv_stack *s, const struct vsock_hdr *h, const void *payload)
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
		uint16_t ps = s->pay_free[--s->n_pay_free];
		uint64_t off = l->tx_bufs + (uint64_t)ps * l->tx_payload;

		memcpy(s->region + off, payload, h->len);
		b[1].addr = s->cfg.region_dev + off;
		b[1].len = h->len;
		e->pay = ps;
		n = 2;
	}
	r = vq_driver_add(&s->txq, b, n, NULL, 0, e);
	if (r) {
		/* Only a broken ring refuses after tx_room(): give the slots back. */
		if (e->pay != GV_NONE)
			s->pay_free[s->n_pay_free++] = e->pay;
		s->hdr_free[s->n_hdr_free++] = hs;
		(void)fail(s, r);
		return;
	}
	s->tx_dirty = true;
	s->st.tx_packets++;
	s->st.tx_bytes += h->len;
}

static void hdr_for(struct gv_stack *s, struct gv_sock *k, uint16_t op, uint32_t flags,
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

	if (!tx_room(s, 1, 0))
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
	hdr_for(s, k, op, flags, 0, &h);
	tx_put(s, &h, NULL);
	return true;
}

/* Sends the control packets k owes, in protocol order (a RESPONSE before the
 * SHUTDOWN of a connection closed at once, say), as far as the TX ring has room;
 * the rest stays in k->pend for a later gv_process. */
static void flush_pend(struct gv_stack *s, struct gv_sock *k)
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
static void ctrl(struct gv_stack *s, struct gv_sock *k, uint8_t p)
{
	k->pend |= p;
	flush_pend(s, k);
}

/* RST toward a peer that has no socket here (packet for an unknown connection). */
static void rst_reply(struct gv_stack *s, const struct vsock_hdr *in)
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
	if (s->rst_count == 0 && tx_room(s, 1, 0)) {
		tx_put(s, &h, NULL);
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

static void flush_rstq(struct gv_stack *s)
{
	while (s->rst_count && tx_room(s, 1, 0)) {
		struct gv_rst *q = &s->rstq[s->rst_head];
		struct vsock_hdr h = {
			.src_cid = s->cfg.cid,
			.dst_cid = q->cid,
			.src_port = q->src_port,
			.dst_port = q->dst_port,
			.type = q->type,
			.op = VSOCK_OP_RST,
		};

		tx_put(s, &h, NULL);
		s->rst_head = (s->rst_head + 1) % GV_RSTQ;
		s->rst_count--;
	}
}

static void tx_publish(struct gv_stack *s)
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

/* ---- sockets: bookkeeping --------------------------------------------------------- */

static struct gv_sock *sock_get(const struct gv_stack *s, int id)
{
	if (id < 0 || (uint32_t)id >= s->cfg.max_sockets)
		return NULL;
	if (s->sk[id].state == GV_S_FREE || s->sk[id].state == GV_S_LINGER)
		return NULL;
	return &s->sk[id];
}

static int sock_id(const struct gv_stack *s, const struct gv_sock *k)
{
	return (int)(k - s->sk);
}

static void wake(struct gv_stack *s, struct gv_sock *k)
{
	if (s->cfg.ops->wake)
		s->cfg.ops->wake(s->cfg.ctx, sock_id(s, k));
}

/* Sets up a fresh socket in slot k: its receive ring lives in the slot's share of
 * the socket memory. SEQPACKET spends a fifth of it on the two boundary bitmaps. */
static void sock_setup(struct gv_stack *s, struct gv_sock *k, unsigned int type)
{
	uint8_t *mem = s->sockmem + (size_t)sock_id(s, k) * s->sockmem_stride;
	uint32_t rcap;

	memset(k, 0, sizeof(*k));
	k->state = GV_S_OPEN;
	k->type = (uint8_t)type;
	k->parent = -1;
	k->next = -1;
	k->acc_head = k->acc_tail = -1;
	k->local_port = GV_PORT_ANY;
	if (type == GV_SOCK_SEQPACKET) {
		rcap = (uint32_t)(((uint64_t)s->cfg.rcvbuf * 4 / 5) & ~63ull);
		k->eom = (uint64_t *)(void *)mem;
		k->eor = k->eom + rcap / 64;
		k->rbuf = mem + 2 * (rcap / 8);
		/* A previous socket in this slot may have left marks of unread
		 * messages behind. */
		memset(mem, 0, 2 * (rcap / 8));
	} else {
		rcap = s->cfg.rcvbuf;
		k->rbuf = mem;
	}
	k->rcap = rcap;
	vsock_credit_init(&k->cr, rcap);
}

/* Free-running counters start at test_counter_base (0 in real use): both ends of a
 * connection count the same bytes from the same origin. */
static void credit_base(struct gv_stack *s, struct gv_sock *k)
{
	uint32_t b = s->cfg.test_counter_base;

	k->cr.tx_cnt = b;
	k->cr.fwd_cnt = b;
	k->cr.rx_cnt = b;
	k->cr.last_fwd_cnt = b;
	k->cr.peer_fwd_cnt = b;
}

static struct gv_sock *sock_alloc(struct gv_stack *s)
{
	for (uint32_t i = 0; i < s->cfg.max_sockets; i++)
		if (s->sk[i].state == GV_S_FREE)
			return &s->sk[i];
	return NULL;
}

static bool port_in_use(const struct gv_stack *s, uint32_t port)
{
	for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
		const struct gv_sock *k = &s->sk[i];

		if (k->state != GV_S_FREE && k->bound && k->local_port == port)
			return true;
	}
	return false;
}

static int bind_ephemeral(struct gv_stack *s, struct gv_sock *k)
{
	/* At most max_sockets ports are held, so max_sockets + 1 tries find one. */
	for (uint32_t n = 0; n <= s->cfg.max_sockets; n++) {
		uint32_t p = s->next_port;

		s->next_port = p >= GV_PORT_ANY - 1 ? GV_EPHEMERAL_FIRST : p + 1;
		if (!port_in_use(s, p)) {
			k->local_port = p;
			k->bound = true;
			return 0;
		}
	}
	return -GV_EADDRNOTAVAIL;
}

static void sock_free(struct gv_sock *k)
{
	k->state = GV_S_FREE;
	k->bound = false;
	k->pend = 0;
}

/* The connection is gone; the application still holds the id (or, for a lingering
 * or unaccepted socket, nobody does and the slot is freed). */
static void conn_gone(struct gv_stack *s, struct gv_sock *k, int err)
{
	k->deadline = 0;
	k->pend &= (uint8_t)P_RST;
	if (k->state == GV_S_LINGER) {
		if (!k->pend)
			sock_free(k);
		return;
	}
	if (k->parent >= 0) {
		/* Unaccepted child: unlink it from its listener's queue and free it. */
		struct gv_sock *l = &s->sk[k->parent];
		int id = sock_id(s, k), *pp = &l->acc_head, prev = -1;

		while (*pp >= 0 && *pp != id) {
			prev = *pp;
			pp = &s->sk[*pp].next;
		}
		if (*pp == id) {
			*pp = k->next;
			if (l->acc_tail == id)
				l->acc_tail = prev;
			l->npending--;
		}
		k->parent = -1;
		if (!k->pend)
			sock_free(k);
		else
			k->state = GV_S_LINGER;
		return;
	}
	k->state = GV_S_DONE;
	if (err)
		k->err = err;
	wake(s, k);
}

static void send_rst(struct gv_stack *s, struct gv_sock *k)
{
	k->pend = 0;
	ctrl(s, k, P_RST);
}

/* ---- receive ------------------------------------------------------------------------ */

static void bit_set(uint64_t *map, uint32_t i)
{
	map[i / 64] |= 1ull << (i % 64);
}

static void bit_clear(uint64_t *map, uint32_t i)
{
	map[i / 64] &= ~(1ull << (i % 64));
}

static bool bit_test(const uint64_t *map, uint32_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

/* Appends payload to the receive ring (room checked by vsock_credit_rx). */
static void ring_put(struct gv_sock *k, const uint8_t *p, uint32_t len)
{
	uint32_t tail = (k->rhead + k->rlen) % k->rcap;
	uint32_t first = k->rcap - tail;

	if (first > len)
		first = len;
	memcpy(k->rbuf + tail, p, first);
	memcpy(k->rbuf, p + first, len - first);
	k->rlen += len;
}

/* Copies len bytes from offset `skip` past the read position. */
static void ring_peek(const struct gv_sock *k, uint32_t skip, uint8_t *out, uint32_t len)
{
	uint32_t pos = (uint32_t)(((uint64_t)k->rhead + skip) % k->rcap);
	uint32_t first = k->rcap - pos;

	if (first > len)
		first = len;
	memcpy(out, k->rbuf + pos, first);
	memcpy(out + first, k->rbuf, len - first);
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
static void credit_check(struct gv_stack *s, struct gv_sock *k)
{
	uint32_t un = vsock_credit_unannounced(&k->cr);
	bool starved;

	if (k->state != GV_S_CONNECTED || un == 0)
		return;
	starved = (k->type == GV_SOCK_SEQPACKET ? k->msgs == 0 : k->rlen == 0) &&
		  vsock_peer_free(k->cr.buf_alloc, k->cr.rx_cnt, k->cr.last_fwd_cnt) == 0;
	if (un >= k->cr.buf_alloc / 2 || k->peer_waiting || starved) {
		if (k->rlen == 0)
			k->peer_waiting = false;
		ctrl(s, k, P_CREDIT_UPDATE);
	}
}

static void consume(struct gv_stack *s, struct gv_sock *k, uint32_t n)
{
	k->rhead = (uint32_t)(((uint64_t)k->rhead + n) % k->rcap);
	k->rlen -= n;
	vsock_credit_consumed(&k->cr, n);
	credit_check(s, k);
}

static void rx_rw(struct gv_stack *s, struct gv_sock *k, const struct vsock_hdr *h,
		  const uint8_t *payload)
{
	bool eom = k->type == GV_SOCK_SEQPACKET && (h->flags & VSOCK_SEQ_EOM);

	if (vsock_credit_rx(&k->cr, h->len)) {
		/* The peer sent beyond the credit we gave: it is broken or hostile. */
		s->st.rx_bad_credit++;
		send_rst(s, k);
		conn_gone(s, k, -GV_ECONNRESET);
		return;
	}
	k->peer_waiting = false; /* it found enough credit to send */
	if (k->discard) {
		/* Rest of a message that could never fit: drop it, give the credit back. */
		vsock_credit_consumed(&k->cr, h->len);
		if (eom)
			k->discard = false;
	} else if (h->len) {
		/* (An empty message has no byte to mark: not representable, dropped.) */
		ring_put(k, payload, h->len);
		if (eom) {
			uint32_t last = (uint32_t)(((uint64_t)k->rhead + k->rlen - 1) % k->rcap);

			bit_set(k->eom, last);
			if (h->flags & VSOCK_SEQ_EOR)
				bit_set(k->eor, last);
			k->msgs++;
		}
	}
	credit_check(s, k);
	/* Data to read, or at least the peer's credit from the header: a sender
	 * waiting for POLLOUT may go on either way. */
	wake(s, k);
}

static void rx_listen(struct gv_stack *s, struct gv_sock *l, const struct vsock_hdr *h)
{
	struct gv_sock *k;

	if (h->op != VSOCK_OP_REQUEST) {
		if (h->op != VSOCK_OP_RST)
			rst_reply(s, h);
		return;
	}
	if (l->npending >= l->backlog || !(k = sock_alloc(s))) {
		rst_reply(s, h);
		return;
	}
	sock_setup(s, k, l->type);
	credit_base(s, k);
	k->state = GV_S_CONNECTED;
	k->local_port = l->local_port;
	k->peer_cid = h->src_cid;
	k->peer_port = h->src_port;
	k->parent = sock_id(s, l);
	vsock_credit_from_peer(&k->cr, h);
	if (l->acc_tail >= 0)
		s->sk[l->acc_tail].next = sock_id(s, k);
	else
		l->acc_head = sock_id(s, k);
	l->acc_tail = sock_id(s, k);
	l->npending++;
	ctrl(s, k, P_RESPONSE);
	wake(s, l);
}

static void rx_conn(struct gv_stack *s, struct gv_sock *k, const struct vsock_hdr *h,
		    const uint8_t *payload)
{
	if (h->op == VSOCK_OP_RST) {
		if (k->state == GV_S_CONNECTING)
			conn_gone(s, k, -GV_ECONNREFUSED);
		else if (k->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND))
			conn_gone(s, k, 0); /* orderly end after the peer's SHUTDOWN */
		else
			conn_gone(s, k, -GV_ECONNRESET);
		return;
	}
	if (k->state == GV_S_CONNECTING) {
		if (h->op != VSOCK_OP_RESPONSE) {
			send_rst(s, k);
			conn_gone(s, k, -GV_ECONNREFUSED);
			return;
		}
		vsock_credit_from_peer(&k->cr, h);
		k->state = GV_S_CONNECTED;
		k->deadline = 0;
		wake(s, k);
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
		wake(s, k);
		return;
	case VSOCK_OP_CREDIT_REQUEST:
		if (k->state == GV_S_CONNECTED) {
			if (k->rlen)
				k->peer_waiting = true;
			ctrl(s, k, P_CREDIT_UPDATE);
			wake(s, k); /* its header carried the peer's credit too */
		}
		return;
	case VSOCK_OP_SHUTDOWN:
		k->peer_shut |= (uint8_t)(h->flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND));
		if (k->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) &&
		    (k->state == GV_S_LINGER || k->rlen == 0)) {
			/* Both directions are over: end it with RST, as Linux does. */
			send_rst(s, k);
			conn_gone(s, k, 0);
			return;
		}
		wake(s, k);
		return;
	case VSOCK_OP_RESPONSE:
	case VSOCK_OP_REQUEST:
	default:
		/* Out of place on an established connection: a confused peer. */
		send_rst(s, k);
		conn_gone(s, k, -GV_ECONNRESET);
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
static void rx_one(struct gv_stack *s, uint8_t *buf, uint32_t used)
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
			rst_reply(s, &h);
		return;
	}
	if (k->state == GV_S_LISTEN)
		rx_listen(s, k, &h);
	else
		rx_conn(s, k, &h, buf + GV_HDR_SIZE);
}

/* ---- the work loop ---------------------------------------------------------------------- */

static void tx_reclaim_one(struct gv_stack *s, struct gv_txent *e)
{
	if (e->pay != GV_NONE) {
		s->pay_free[s->n_pay_free++] = e->pay;
		e->pay = GV_NONE;
	}
	s->hdr_free[s->n_hdr_free++] = e->hdr;
}

static void timeouts(struct gv_stack *s)
{
	for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
		struct gv_sock *k = &s->sk[i];

		if (!k->deadline || k->deadline > s->now)
			continue;
		if (k->state == GV_S_CONNECTING) {
			send_rst(s, k);
			conn_gone(s, k, -GV_ETIMEDOUT);
		} else if (k->state == GV_S_LINGER) {
			/* The peer never answered our SHUTDOWN: end it ourselves. */
			send_rst(s, k);
			conn_gone(s, k, 0);
		}
	}
}

static void flush_all(struct gv_stack *s)
{
	flush_rstq(s);
	for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
		struct gv_sock *k = &s->sk[i];

		if (k->state == GV_S_FREE)
			continue;
		if (k->pend)
			flush_pend(s, k);
		if (k->state == GV_S_LINGER && !k->deadline && !k->pend)
			sock_free(k);
	}
}

static void wake_tx_blocked(struct gv_stack *s)
{
	for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
		struct gv_sock *k = &s->sk[i];

		if (k->state != GV_S_FREE && k->tx_blocked) {
			k->tx_blocked = false;
			wake(s, k);
		}
	}
}

/* The broker broke the ring rules (core's error err): the stack is dead for good. */
static int fail(struct gv_stack *s, int err)
{
	(void)err; /* core's reason; the port learns -EIO, the stats count it */
	if (!s->dead) {
		s->dead = -GV_EIO;
		s->st.ring_errors++;
		/* Nothing can be sent or received any more: every connection is gone. */
		for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
			struct gv_sock *k = &s->sk[i];

			if (k->state == GV_S_FREE)
				continue;
			k->pend = 0;
			if (k->state == GV_S_CONNECTING || k->state == GV_S_CONNECTED ||
			    k->state == GV_S_LINGER)
				conn_gone(s, k, -GV_ECONNRESET);
			else
				wake(s, k);
		}
	}
	return s->dead;
}

int gv_process(struct gv_stack *s)
{
	int handled = 0;
	bool more = true;
	uint32_t rounds = 0;
	uint64_t tx0 = s->st.tx_packets;

	if (s->dead)
		return s->dead;
	s->now = s->cfg.ops->now_ns(s->cfg.ctx);
	timeouts(s);
	/* Bounded: under a flood we return with callbacks still disabled and a
	 * positive count, and the port calls again before it sleeps. */
	while (more && rounds++ < 8) {
		uint32_t freed = 0;
		void *tok;
		uint32_t len;
		int r;

		vq_driver_disable_cb(&s->rxq);
		vq_driver_disable_cb(&s->txq);
		while ((r = vq_driver_get_used(&s->txq, &tok, &len)) == 1) {
			tx_reclaim_one(s, tok);
			freed++;
		}
		if (r < 0)
			return fail(s, r);
		while ((r = vq_driver_get_used(&s->rxq, &tok, &len)) == 1) {
			uint8_t *b = tok;
			/* The token is our own pointer (core keeps it privately). */
			uint32_t i = (uint32_t)(((uint64_t)(b - s->region) - s->cfg.layout.rx_bufs) /
						s->cfg.layout.rx_buf_size);

			rx_one(s, b, len);
			handled++;
			if (rx_post(s, i))
				return fail(s, -RT_EINVAL);
			/* A reply rx_one put on the TX ring found it broken (tx_put). */
			if (s->dead)
				return s->dead;
		}
		if (r < 0)
			return fail(s, r);
		handled += (int)freed;
		flush_all(s);
		if (freed)
			wake_tx_blocked(s);
		tx_publish(s);
		if (s->dead)
			return s->dead;
		more = vq_driver_enable_cb(&s->rxq);
		more = vq_driver_enable_cb(&s->txq) || more;
	}
	/* Packets sent (replies, timeouts) count as work done too. */
	handled += (int)(s->st.tx_packets - tx0);
	return more ? (handled ? handled : 1) : handled;
}

uint64_t gv_next_deadline(const struct gv_stack *s)
{
	uint64_t d = UINT64_MAX;

	for (uint32_t i = 0; i < s->cfg.max_sockets; i++)
		if (s->sk[i].state != GV_S_FREE && s->sk[i].deadline &&
		    s->sk[i].deadline < d)
			d = s->sk[i].deadline;
	return d;
}

/* ---- the socket API -------------------------------------------------------------------- */

int gv_socket(struct gv_stack *s, unsigned int type)
{
	struct gv_sock *k;

	if (type != GV_SOCK_STREAM && type != GV_SOCK_SEQPACKET)
		return -RT_EINVAL;
	if (type == GV_SOCK_SEQPACKET && !s->cfg.seqpacket)
		return -GV_EPROTONOSUPPORT;
	k = sock_alloc(s);
	if (!k)
		return -GV_EMFILE;
	sock_setup(s, k, type);
	return sock_id(s, k);
}

int gv_bind(struct gv_stack *s, int id, uint32_t port)
{
	struct gv_sock *k = sock_get(s, id);

	if (!k || k->state != GV_S_OPEN || k->bound)
		return -RT_EINVAL;
	if (port == GV_PORT_ANY)
		return bind_ephemeral(s, k);
	if (port_in_use(s, port))
		return -GV_EADDRINUSE;
	k->local_port = port;
	k->bound = true;
	return 0;
}

int gv_connect(struct gv_stack *s, int id, uint64_t cid, uint32_t port)
{
	struct gv_sock *k = sock_get(s, id);
	int r;

	if (!k)
		return -RT_EINVAL;
	if (k->state == GV_S_CONNECTING)
		return -GV_EALREADY;
	if (k->state == GV_S_CONNECTED)
		return -GV_EISCONN;
	if (k->state != GV_S_OPEN)
		return -RT_EINVAL;
	if (s->dead)
		return s->dead;
	if (!k->bound && (r = bind_ephemeral(s, k)))
		return r;
	credit_base(s, k);
	k->peer_cid = cid;
	k->peer_port = port;
	k->state = GV_S_CONNECTING;
	k->err = 0;
	k->deadline = s->cfg.ops->now_ns(s->cfg.ctx) + s->cfg.connect_timeout_ns;
	ctrl(s, k, P_REQUEST);
	tx_publish(s);
	return -GV_EINPROGRESS;
}

int gv_listen(struct gv_stack *s, int id, uint32_t port, uint32_t backlog)
{
	struct gv_sock *k = sock_get(s, id);

	if (!k || backlog < 1)
		return -RT_EINVAL;
	if (k->state == GV_S_LISTEN) {
		k->backlog = backlog;
		return 0;
	}
	if (k->state != GV_S_OPEN)
		return -RT_EINVAL;
	if (!k->bound) {
		int r = gv_bind(s, id, port);

		if (r)
			return r;
	} else if (port != k->local_port && port != GV_PORT_ANY) {
		return -RT_EINVAL;
	}
	k->state = GV_S_LISTEN;
	k->backlog = backlog;
	return 0;
}

int gv_accept(struct gv_stack *s, int id, uint64_t *peer_cid, uint32_t *peer_port)
{
	struct gv_sock *l = sock_get(s, id), *k;
	int c;

	if (!l || l->state != GV_S_LISTEN)
		return -RT_EINVAL;
	c = l->acc_head;
	if (c < 0)
		return -GV_EAGAIN;
	k = &s->sk[c];
	l->acc_head = k->next;
	if (l->acc_head < 0)
		l->acc_tail = -1;
	l->npending--;
	k->next = -1;
	k->parent = -1;
	k->accepted = true;
	if (peer_cid)
		*peer_cid = k->peer_cid;
	if (peer_port)
		*peer_port = k->peer_port;
	return c;
}

/* Common checks before sending: 0 or the error send must return. */
static int send_state(struct gv_stack *s, struct gv_sock *k)
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
		flush_pend(s, k);
		if (k->pend & (P_REQUEST | P_RESPONSE)) {
			k->tx_blocked = true;
			return -GV_EAGAIN;
		}
	}
	return 0;
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
	const struct gv_sock *k = sock_get(s, id);

	if (!k || k->state != GV_S_CONNECTED)
		return -GV_ENOTCONN;
	return (int)max_msg(s, k);
}

static int send_seqpacket(struct gv_stack *s, struct gv_sock *k, const uint8_t *p,
			  uint32_t len, bool eor)
{
	uint32_t tp = s->cfg.layout.tx_payload;
	uint32_t npkt = (uint32_t)(((uint64_t)len + tp - 1) / tp);
	uint32_t off = 0;

	if (len > max_msg(s, k))
		return -GV_EMSGSIZE;
	if (vsock_credit_peer_free(&k->cr) < len) {
		k->want = len;
		if (!k->credit_requested) {
			/* Our view of the peer's space may be stale: ask once per stall.
			 * The answer and every later consumption by the peer come as
			 * CREDIT_UPDATEs (it knows we wait), so asking again before a
			 * send succeeds would only bounce control packets around. */
			k->credit_requested = true;
			ctrl(s, k, P_CREDIT_REQUEST);
			tx_publish(s);
		}
		return -GV_EAGAIN;
	}
	if (!tx_room(s, npkt, npkt)) {
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
		hdr_for(s, k, VSOCK_OP_RW, fl, n, &h);
		tx_put(s, &h, p + off);
		off += n;
	}
	k->pend &= (uint8_t)~P_CREDIT_UPDATE; /* the RW headers carried it */
	k->want = 0;
	k->credit_requested = false;
	tx_publish(s);
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
		if (!tx_room(s, 1, 1)) {
			k->tx_blocked = true;
			break;
		}
		if (n > fr)
			n = fr;
		(void)vsock_credit_take(&k->cr, n);
		hdr_for(s, k, VSOCK_OP_RW, 0, n, &h);
		tx_put(s, &h, p + off);
		off += n;
	}
	if (off)
		k->pend &= (uint8_t)~P_CREDIT_UPDATE;
	tx_publish(s);
	return off ? (int)off : -GV_EAGAIN;
}

int gv_send(struct gv_stack *s, int id, const void *buf, size_t len, bool eor)
{
	struct gv_sock *k = sock_get(s, id);
	int r;

	if (!k)
		return -RT_EINVAL;
	r = send_state(s, k);
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

/* Ring offset (from the read position) of the first message end, or rlen. */
static uint32_t next_eom(const struct gv_sock *k)
{
	uint32_t i = 0;

	while (i < k->rlen) {
		uint32_t pos = (uint32_t)(((uint64_t)k->rhead + i) % k->rcap);
		uint64_t w = k->eom[pos / 64] >> (pos % 64);

		if (w)
			return i + (uint32_t)__builtin_ctzll(w);
		i += 64 - pos % 64;
	}
	return k->rlen;
}

static int recv_empty(struct gv_sock *k)
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
	struct gv_sock *k = sock_get(s, id);
	uint32_t n, mlen;
	unsigned int of = 0;

	if (out_flags)
		*out_flags = 0;
	if (!k)
		return -RT_EINVAL;
	if (len > 0x7FFFFFFFu)
		len = 0x7FFFFFFFu;
	if (k->type == GV_SOCK_STREAM) {
		if (k->rlen == 0)
			return recv_empty(k);
		n = k->rlen < len ? k->rlen : (uint32_t)len;
		ring_peek(k, 0, buf, n);
		if (!(flags & GV_MSG_PEEK)) {
			consume(s, k, n);
			tx_publish(s);
		}
		return (int)n;
	}
	if (k->msgs == 0) {
		if (k->rlen == k->rcap && k->rlen) {
			/* A message larger than the whole budget: hand out its first part,
			 * drop the rest up to its end. */
			n = k->rlen < len ? k->rlen : (uint32_t)len;
			ring_peek(k, 0, buf, n);
			if (out_flags)
				*out_flags = GV_MSG_TRUNC;
			if (!(flags & GV_MSG_PEEK)) {
				k->discard = true;
				consume(s, k, k->rlen);
				tx_publish(s);
			}
			return (int)n;
		}
		return recv_empty(k);
	}
	mlen = next_eom(k) + 1;
	n = mlen < len ? mlen : (uint32_t)len;
	ring_peek(k, 0, buf, n);
	if (mlen > len)
		of |= GV_MSG_TRUNC;
	{
		uint32_t last = (uint32_t)(((uint64_t)k->rhead + mlen - 1) % k->rcap);

		if (bit_test(k->eor, last))
			of |= GV_MSG_EOR;
		if (!(flags & GV_MSG_PEEK)) {
			bit_clear(k->eom, last);
			bit_clear(k->eor, last);
			k->msgs--;
			consume(s, k, mlen);
			tx_publish(s);
		}
	}
	if (out_flags)
		*out_flags = of;
	return (int)n;
}

int gv_shutdown(struct gv_stack *s, int id, unsigned int how)
{
	struct gv_sock *k = sock_get(s, id);
	uint8_t f = 0;

	if (!k || !how || (how & ~(GV_SHUT_RD | GV_SHUT_WR)))
		return -RT_EINVAL;
	if (k->state != GV_S_CONNECTED)
		return -GV_ENOTCONN;
	if ((how & GV_SHUT_RD) && !(k->shut & GV_SHUT_RD))
		f |= VSOCK_SHUTDOWN_RCV;
	if ((how & GV_SHUT_WR) && !(k->shut & GV_SHUT_WR))
		f |= VSOCK_SHUTDOWN_SEND;
	k->shut |= (uint8_t)how;
	if (!f)
		return 0;
	k->shut_pend |= f;
	ctrl(s, k, P_SHUTDOWN);
	tx_publish(s);
	wake(s, k);
	return 0;
}

int gv_close(struct gv_stack *s, int id)
{
	struct gv_sock *k = sock_get(s, id);

	if (!k)
		return -RT_EINVAL;
	switch (k->state) {
	case GV_S_LISTEN:
		while (k->acc_head >= 0) {
			struct gv_sock *c = &s->sk[k->acc_head];

			send_rst(s, c);
			conn_gone(s, c, 0);
		}
		sock_free(k);
		break;
	case GV_S_CONNECTING:
		send_rst(s, k);
		k->state = GV_S_LINGER;
		conn_gone(s, k, 0);
		break;
	case GV_S_CONNECTED:
		if (k->parent >= 0) {
			/* Not accepted yet: cannot happen through the API (no id given out). */
			return -RT_EINVAL;
		}
		k->state = GV_S_LINGER;
		k->rlen = 0;
		k->msgs = 0;
		if (k->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) || s->dead) {
			send_rst(s, k);
			conn_gone(s, k, 0);
			break;
		}
		k->deadline = s->cfg.ops->now_ns(s->cfg.ctx) + s->cfg.close_timeout_ns;
		k->shut_pend = (uint8_t)(VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
		k->pend &= (uint8_t)~P_CREDIT_UPDATE;
		ctrl(s, k, P_SHUTDOWN);
		break;
	case GV_S_DONE:
		if (k->pend) {
			k->state = GV_S_LINGER;
			k->deadline = 0;
		} else {
			sock_free(k);
		}
		break;
	default:
		sock_free(k);
		break;
	}
	tx_publish(s);
	return 0;
}

unsigned int gv_poll_events(const struct gv_stack *s, int id)
{
	const struct gv_sock *k = sock_get(s, id);
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
		if (k->type == GV_SOCK_STREAM ? k->rlen > 0
					      : (k->msgs > 0 || k->rlen == k->rcap))
			ev |= GV_POLLIN;
		if ((k->peer_shut & VSOCK_SHUTDOWN_SEND) || (k->shut & GV_SHUT_RD))
			ev |= GV_POLLIN | GV_POLLRDHUP;
		if ((k->shut & GV_SHUT_WR) || (k->peer_shut & VSOCK_SHUTDOWN_RCV)) {
			ev |= GV_POLLOUT; /* send fails at once with -EPIPE */
		} else if (!(k->pend & (P_REQUEST | P_RESPONSE))) {
			uint32_t want = k->type == GV_SOCK_SEQPACKET && k->want ? k->want : 1;
			uint32_t tp = s->cfg.layout.tx_payload;
			uint32_t npkt = k->type == GV_SOCK_SEQPACKET
						? (uint32_t)(((uint64_t)want + tp - 1) / tp)
						: 1;

			if (vsock_credit_peer_free(&k->cr) >= want && tx_room(s, npkt, npkt))
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
	const struct gv_sock *k = sock_get(s, id);

	return k && k->state == GV_S_CONNECTING;
}

int gv_sock_error(struct gv_stack *s, int id)
{
	struct gv_sock *k = sock_get(s, id);
	int e;

	if (!k)
		return -RT_EINVAL;
	e = k->err;
	k->err = 0;
	return e;
}

int gv_sock_name(const struct gv_stack *s, int id, uint32_t *local_port, uint64_t *peer_cid,
		 uint32_t *peer_port)
{
	const struct gv_sock *k = sock_get(s, id);

	if (!k)
		return -RT_EINVAL;
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
	const struct gv_sock *k = sock_get(s, id);

	return k ? k->cr.buf_alloc : 0;
}
