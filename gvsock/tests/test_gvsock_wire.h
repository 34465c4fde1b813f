/* Test fixture for gvsock: two cells (stacks) in one process, each with its own
 * region, joined by a tiny "wire" that plays the broker with core's DEVICE side. It
 * pops a cell's TX chains (header and payload may be split over descriptors), checks
 * src_cid like the broker does, and writes the packet into the other cell's RX
 * buffers, splitting it in pieces that fit (each with its own header; SEQPACKET
 * EOM/EOR only on the last piece), then completes the TX chain. A fake clock drives
 * timeouts. The wire can also hold traffic back, drop it, or inject raw bytes into a
 * cell's RX buffers (hostile broker). */
#ifndef RTVIO_GUEST_TEST_GVSOCK_WIRE_H
#define RTVIO_GUEST_TEST_GVSOCK_WIRE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gvsock.h"
#include "virtq.h"
#include "vsock.h"

#define WIRE_GPA 0x100000000ull
#define WIRE_MAX_PKT (GV_HDR_SIZE + 65536u)

struct wire;

struct cell {
	struct wire *w;
	uint64_t cid;
	uint8_t *region;
	size_t region_size;
	struct gv_layout lay;
	void *mem;
	struct gv_stack *st;
	struct vq_mem_region mr;
	struct vq_device rx, tx;
	uint64_t *infl_rx, *infl_tx;
	unsigned int kicks[2];
	unsigned int wakes;
	/* The TX packet being delivered from this cell (the broker's private copy). */
	bool busy;
	uint16_t head;
	uint8_t pkt[WIRE_MAX_PKT];
	uint32_t pkt_len; /* header + payload */
	uint32_t done;    /* payload bytes delivered */
	/* Packets seen leaving this cell, by op, and the last header. */
	unsigned int sent_ops[8];
	struct vsock_hdr last;
};

struct wire {
	struct cell c[2];
	uint64_t now;
	bool hold;             /* leave TX chains on the rings */
	bool drop;             /* complete TX chains without delivering */
	uint32_t piece;        /* largest payload per RX piece; 0 = what fits */
};

static inline void wire_kick(void *ctx, unsigned int q)
{
	struct cell *c = ctx;

	if (q < 2)
		c->kicks[q]++;
}

static inline uint64_t wire_now(void *ctx)
{
	struct cell *c = ctx;

	return c->w->now;
}

static inline void wire_wake(void *ctx, int id)
{
	struct cell *c = ctx;

	(void)id;
	c->wakes++;
}

static const struct gv_ops wire_ops = {
	.kick = wire_kick,
	.now_ns = wire_now,
	.wake = wire_wake,
};

struct wire_opts {
	size_t region;            /* 0 = 2 MiB */
	struct gv_layout_params lp;
	uint32_t max_sockets;     /* 0 = 8 */
	uint32_t rcvbuf;          /* 0 = 64 KiB */
	uint32_t counter_base;
	bool event_idx;
};

static inline int cell_init(struct wire *w, int i, uint64_t cid, const struct wire_opts *o)
{
	struct cell *c = &w->c[i];
	struct gv_config cfg = { 0 };
	struct vq_ring r;
	size_t need;
	int err;

	c->w = w;
	c->cid = cid;
	c->region_size = o->region ? o->region : 2u << 20;
	c->region = aligned_alloc(4096, c->region_size);
	if (!c->region)
		return -12;
	memset(c->region, 0xA5, c->region_size);
	err = gv_layout_compute(&o->lp, c->region_size, &c->lay);
	if (err)
		return err;
	cfg.cid = cid;
	cfg.seqpacket = true;
	cfg.event_idx = o->event_idx;
	cfg.region = c->region;
	cfg.region_dev = WIRE_GPA;
	cfg.region_size = c->region_size;
	cfg.layout = c->lay;
	cfg.max_sockets = o->max_sockets ? o->max_sockets : 8;
	cfg.rcvbuf = o->rcvbuf ? o->rcvbuf : 65536;
	cfg.ops = &wire_ops;
	cfg.ctx = c;
	cfg.test_counter_base = o->counter_base;
	need = gv_stack_mem_size(&cfg);
	if (!need)
		return -22;
	c->mem = aligned_alloc(64, (need + 63) & ~(size_t)63);
	err = gv_stack_init(&cfg, c->mem, need, &c->st);
	if (err)
		return err;

	/* The broker's view: one region at WIRE_GPA, rings translated through it. */
	c->mr = (struct vq_mem_region){ .gpa = WIRE_GPA, .size = c->region_size, .host = c->region };
	c->infl_rx = calloc(VQ_INFLIGHT_WORDS(c->lay.queue_size), sizeof(uint64_t));
	c->infl_tx = calloc(VQ_INFLIGHT_WORDS(c->lay.queue_size), sizeof(uint64_t));
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (o->event_idx ? 1ull << VIRTIO_F_EVENT_IDX : 0);

	r.num = c->lay.queue_size;
	r.desc = (void *)(c->region + c->lay.rx_desc);
	r.avail = (void *)(c->region + c->lay.rx_avail);
	r.used = (void *)(c->region + c->lay.rx_used);
	err = vq_device_init(&c->rx, &r, &c->mr, 1, c->infl_rx, f, 0);
	if (err)
		return err;
	r.desc = (void *)(c->region + c->lay.tx_desc);
	r.avail = (void *)(c->region + c->lay.tx_avail);
	r.used = (void *)(c->region + c->lay.tx_used);
	err = vq_device_init(&c->tx, &r, &c->mr, 1, c->infl_tx, f, 0);
	if (err)
		return err;
	gv_start(c->st);
	return 0;
}

static inline int wire_init(struct wire *w, const struct wire_opts *o)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->now = 1000000000ull;
	err = cell_init(w, 0, 3, o);
	if (!err)
		err = cell_init(w, 1, 4, o);
	return err;
}

static inline void wire_fini(struct wire *w)
{
	for (int i = 0; i < 2; i++) {
		free(w->c[i].region);
		free(w->c[i].mem);
		free(w->c[i].infl_rx);
		free(w->c[i].infl_tx);
	}
}

/* Writes raw bytes into the next RX buffer of cell c and completes it with `used`
 * (what the broker claims it wrote). Returns 1, 0 when no RX buffer is posted, or a
 * core error. */
static inline int wire_inject(struct cell *c, const void *bytes, uint32_t n, uint32_t used)
{
	struct vq_seg seg[4];
	struct vq_chain ch;
	int r = vq_device_pop(&c->rx, &ch, seg, 4);

	if (r != 1)
		return r;
	if (n > seg[ch.n_out].len)
		n = seg[ch.n_out].len;
	memcpy(seg[ch.n_out].host, bytes, n);
	r = vq_device_push(&c->rx, ch.head, used);
	return r ? r : 1;
}

static inline void wire_hdr(const struct vsock_hdr *h, uint8_t out[GV_HDR_SIZE])
{
	vsock_hdr_encode(h, out);
}

/* Moves what it can from src to dst. Returns the number of pieces/chains moved. */
static inline int wire_move(struct wire *w, struct cell *src, struct cell *dst)
{
	int moved = 0;

	for (;;) {
		if (!src->busy) {
			struct vq_seg seg[8];
			struct vq_chain ch;
			uint32_t off = 0;
			int r;

			if (w->hold)
				return moved;
			r = vq_device_pop(&src->tx, &ch, seg, 8);
			if (r != 1)
				return moved;
			for (unsigned int i = 0; i < ch.n_out; i++) {
				uint32_t n = seg[i].len;

				if (off + n > WIRE_MAX_PKT)
					n = WIRE_MAX_PKT - off;
				memcpy(src->pkt + off, seg[i].host, n);
				off += n;
			}
			src->head = ch.head;
			src->pkt_len = off;
			src->done = 0;
			src->busy = true;
			moved++;
			{
				struct vsock_hdr h;

				vsock_hdr_decode(&h, src->pkt);
				if (h.op < 8)
					src->sent_ops[h.op]++;
				src->last = h;
				/* Like the broker: a header that lies about the payload or
				 * a spoofed source is not delivered. */
				if (off < GV_HDR_SIZE || h.len != off - GV_HDR_SIZE ||
				    h.src_cid != src->cid || h.dst_cid != dst->cid || w->drop) {
					vq_device_push(&src->tx, src->head, 0);
					src->busy = false;
					continue;
				}
			}
		}
		/* Deliver the next piece. */
		struct vsock_hdr h;
		struct vq_seg seg[4];
		struct vq_chain ch;
		uint32_t room, n, total;
		int r;

		vsock_hdr_decode(&h, src->pkt);
		total = h.len;
		r = vq_device_pop(&dst->rx, &ch, seg, 4);
		if (r != 1)
			return moved;
		room = ch.in_len - GV_HDR_SIZE;
		if (w->piece && room > w->piece)
			room = w->piece;
		n = total - src->done < room ? total - src->done : room;
		{
			struct vsock_hdr p = h;
			uint8_t hb[GV_HDR_SIZE];

			p.len = n;
			if (h.op == VSOCK_OP_RW && h.type == VSOCK_TYPE_SEQPACKET &&
			    src->done + n < total)
				p.flags &= ~(VSOCK_SEQ_EOM | VSOCK_SEQ_EOR);
			vsock_hdr_encode(&p, hb);
			/* One writable descriptor (gvsock posts them so). */
			memcpy(seg[ch.n_out].host, hb, GV_HDR_SIZE);
			memcpy((uint8_t *)seg[ch.n_out].host + GV_HDR_SIZE,
			       src->pkt + GV_HDR_SIZE + src->done, n);
		}
		vq_device_push(&dst->rx, ch.head, GV_HDR_SIZE + n);
		src->done += n;
		moved++;
		if (src->done == total) {
			vq_device_push(&src->tx, src->head, 0);
			src->busy = false;
		}
	}
}

/* Runs wire and both stacks until nothing moves (or `max` rounds). Returns rounds. */
static inline int wire_run(struct wire *w, int max)
{
	int rounds = 0;

	while (rounds < max) {
		int m = wire_move(w, &w->c[0], &w->c[1]) + wire_move(w, &w->c[1], &w->c[0]);
		int p0 = gv_process(w->c[0].st), p1 = gv_process(w->c[1].st);

		rounds++;
		if (m == 0 && p0 <= 0 && p1 <= 0)
			break;
	}
	return rounds;
}

#endif
