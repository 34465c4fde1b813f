/* The broker data plane: see dataplane.h for the seam with the daemon.
 *
 * Objects, all sized and allocated in dp_create():
 *  - packets: DP_TX_SLOTS per cell, one per TX chain in flight (a cell that fills
 *    its slots simply waits: its chains stay on its avail ring), plus one
 *    broker-made RST per connection for resets the broker originates at detach.
 *    A packet holds the header (read once into broker memory) and the chain's
 *    translated segments; never its payload.
 *  - queues: one FIFO per (flow, destination): a configured flow has two (toward
 *    the listener, and back toward the connector: responses, credit updates, data
 *    sent back), the best-effort class one per destination cell. A queue waiting
 *    for RX buffers at its destination therefore holds back nothing else.
 *  - a binary heap of ready queues keyed by the policy (fp: rank then arrival; edf:
 *    class, absolute deadline, arrival; fifo: arrival), a heap of queues whose head
 *    the policer holds until a release time, and per destination cell a list of
 *    queues waiting for its RX buffers: O(log queues) per packet, no scan of queues.
 *  - connections: chained hash on the directed tuple (connector cell, port, listener
 *    cell, port); flows: open-addressed hash on (from cell, from port, to cell, to
 *    port); CIDs: open-addressed hash. All O(1) per packet.
 *
 * Trust: everything a cell can write (its rings, its packet headers, its payload)
 * is reached only through core's vq_device, which validates indices, lengths and
 * addresses against the cell's memory table. A header is read exactly once, into
 * struct dp_pkt, before anything looks at it; payload bytes are only ever copied,
 * never interpreted. A cell whose ring or headers break the rules is detached on the
 * spot (cell_break): its peers get RST, nothing of it is touched again.
 *
 * Real time: after dp_create nothing here allocates or makes a system call, except
 * the daemon's notify hook; time comes from the clock hook (vDSO by default).
 * Decisions between chunks (ingest, pick) are O(attached cells) index reads plus
 * O(log queues) per packet.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane.h"
#include "dp_internal.h"

/* ---------------------------------------------------------------- helpers ---- */

static uint64_t dp_clock(struct dp *dp)
{
	struct timespec ts;

	if (dp->hooks.now)
		return dp->hooks.now(dp->ctx);
	/* vDSO on Linux: no system call. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t hash32(uint64_t a, uint64_t b)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

static uint32_t pow2_at_least(uint64_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static void bit_set(uint64_t *map, uint32_t i)
{
	map[i / 64] |= 1ull << (i % 64);
}

static void bit_clear(uint64_t *map, uint32_t i)
{
	map[i / 64] &= ~(1ull << (i % 64));
}

/* Calls fn for every set bit in [lo, hi) of map, in order; fn may change the map. */
static void bits_each(struct dp *dp, const uint64_t *map, uint32_t lo, uint32_t hi,
		      void (*fn)(struct dp *dp, uint32_t i))
{
	for (uint32_t w = lo / 64; lo < hi && w <= (hi - 1) / 64; w++) {
		uint64_t word = map[w];

		if (w == lo / 64)
			word &= ~0ull << (lo % 64);
		if (w == (hi - 1) / 64 && hi % 64)
			word &= ~(~0ull << (hi % 64));
		while (word) {
			fn(dp, w * 64 + (uint32_t)__builtin_ctzll(word));
			word &= word - 1;
		}
	}
}

/* Copies n bytes from the segments src (starting src_off bytes in) to the segments
 * dst (starting dst_off bytes in) with fn, once per contiguous piece. The caller has
 * checked that both have room. */
static void seg_copy(dp_copy_fn fn, const struct vq_seg *dst, unsigned int nd,
		     uint64_t dst_off, const struct vq_seg *src, unsigned int ns,
		     uint64_t src_off, uint64_t n)
{
	unsigned int i = 0, j = 0;

	while (i < nd && dst_off >= dst[i].len)
		dst_off -= dst[i++].len;
	while (j < ns && src_off >= src[j].len)
		src_off -= src[j++].len;
	while (n && i < nd && j < ns) {
		uint64_t a = dst[i].len - dst_off, b = src[j].len - src_off;
		uint64_t k = a < b ? a : b;

		if (k > n)
			k = n;
		fn((uint8_t *)dst[i].host + dst_off, (const uint8_t *)src[j].host + src_off, k);
		n -= k;
		dst_off += k;
		src_off += k;
		if (dst_off == dst[i].len) {
			i++;
			dst_off = 0;
		}
		if (src_off == src[j].len) {
			j++;
			src_off = 0;
		}
	}
}

/* Gathers n bytes at offset 0 of the segments into private memory: each shared byte
 * is read exactly once. */
static void seg_gather(uint8_t *out, const struct vq_seg *src, unsigned int ns, uint64_t n)
{
	struct vq_seg d = { .host = out, .len = (uint32_t)n, .writable = true };

	seg_copy(dp_copy_normal, &d, 1, 0, src, ns, 0, n);
}

static void seg_scatter(const struct vq_seg *dst, unsigned int nd, const uint8_t *in,
			uint64_t n)
{
	struct vq_seg s = { .host = (void *)(uintptr_t)in, .len = (uint32_t)n };

	seg_copy(dp_copy_normal, dst, nd, 0, &s, 1, 0, n);
}

/* ------------------------------------------------------------ lookups ---- */

static int cell_by_cid(const struct dp *dp, uint64_t cid)
{
	uint32_t mask = dp->cid_hash_size - 1;

	if (cid > UINT32_MAX)
		return -1;
	for (uint32_t i = hash32(cid, 0) & mask;; i = (i + 1) & mask) {
		int32_t c = dp->cid_hash[i];

		if (c < 0)
			return -1;
		if (dp->cells[c].cid == cid)
			return c;
	}
}

static uint64_t flow_key_hi(uint32_t from, uint32_t from_port)
{
	return (uint64_t)from << 32 | from_port;
}

static uint64_t flow_key_lo(uint32_t to, uint32_t to_port)
{
	return (uint64_t)to << 32 | to_port;
}

static int flow_lookup1(const struct dp *dp, uint32_t from, uint32_t from_port, uint32_t to,
			uint32_t to_port)
{
	uint32_t mask = dp->flow_hash_size - 1;
	uint64_t hi = flow_key_hi(from, from_port), lo = flow_key_lo(to, to_port);

	for (uint32_t i = hash32(hi, lo) & mask;; i = (i + 1) & mask) {
		int32_t f = dp->flow_hash[i];
		const struct rtvio_flow_cfg *fc;

		if (f < 0)
			return -1;
		fc = &dp->cfg->flows[f];
		if ((uint32_t)fc->from == from && fc->from_port == from_port &&
		    (uint32_t)fc->to == to && fc->to_port == to_port)
			return f;
	}
}

/* The flow permitting from:port -> to:port, exact source port first, then "any". */
static int flow_match(const struct dp *dp, uint32_t from, uint32_t from_port, uint32_t to,
		      uint32_t to_port)
{
	int f = -1;

	if (from_port != RTVIO_PORT_ANY)
		f = flow_lookup1(dp, from, from_port, to, to_port);
	if (f < 0)
		f = flow_lookup1(dp, from, RTVIO_PORT_ANY, to, to_port);
	return f;
}

static uint32_t conn_bucket(const struct dp *dp, uint32_t a, uint32_t ap, uint32_t b,
			    uint32_t bp)
{
	return hash32((uint64_t)a << 32 | ap, (uint64_t)b << 32 | bp) & (dp->conn_hash_size - 1);
}

/* Finds the connection with connector (a, ap) and listener (b, bp). */
static int32_t conn_find(const struct dp *dp, uint32_t a, uint32_t ap, uint32_t b, uint32_t bp)
{
	for (int32_t c = dp->conn_hash[conn_bucket(dp, a, ap, b, bp)]; c >= 0;
	     c = dp->conns[c].hnext) {
		const struct dp_conn *k = &dp->conns[c];

		if (k->a == a && k->ap == ap && k->b == b && k->bp == bp)
			return c;
	}
	return -1;
}

static int32_t conn_new(struct dp *dp, uint32_t a, uint32_t ap, uint32_t b, uint32_t bp,
			uint32_t flow, uint16_t type)
{
	int32_t c = dp->conn_free;
	uint32_t bk;

	/* Each cell may open at most its share of the table: one cell's REQUEST flood
	 * never leaves the others without connections. */
	if (c < 0 || dp->cells[a].nconn >= DP_CONNS_PER_CELL)
		return -1;
	dp->cells[a].nconn++;
	dp->conn_free = dp->conns[c].hnext;
	bk = conn_bucket(dp, a, ap, b, bp);
	dp->conns[c] = (struct dp_conn){ .a = a, .ap = ap, .b = b, .bp = bp, .flow = flow,
					 .type = type, .state = DP_CONN_REQUESTED,
					 .hnext = dp->conn_hash[bk] };
	dp->conn_hash[bk] = c;
	dp->flows[flow].connections++;
	return c;
}

static void conn_free(struct dp *dp, int32_t c)
{
	struct dp_conn *k = &dp->conns[c];
	int32_t *pp = &dp->conn_hash[conn_bucket(dp, k->a, k->ap, k->b, k->bp)];

	while (*pp != c)
		pp = &dp->conns[*pp].hnext;
	*pp = k->hnext;
	dp->flows[k->flow].connections--;
	dp->cells[k->a].nconn--;
	k->state = DP_CONN_FREE;
	k->hnext = dp->conn_free;
	dp->conn_free = c;
}

/* ------------------------------------------------------------- queues ---- */

static uint32_t queue_of(const struct dp *dp, uint32_t flow, uint32_t dst)
{
	if (flow == dp->nflows)
		return 2 * dp->nflows + dst;
	return 2 * flow + ((uint32_t)dp->cfg->flows[flow].to == dst ? 0 : 1);
}

static bool key_less(const struct dp_queue *x, const struct dp_queue *y)
{
	if (x->k1 != y->k1)
		return x->k1 < y->k1;
	if (x->k2 != y->k2)
		return x->k2 < y->k2;
	return x->k3 < y->k3;
}

static void heap_swap(struct dp *dp, struct dp_heap *h, uint32_t i, uint32_t j)
{
	uint32_t t = h->q[i];

	h->q[i] = h->q[j];
	h->q[j] = t;
	dp->queues[h->q[i]].pos = (int32_t)i;
	dp->queues[h->q[j]].pos = (int32_t)j;
}

static void heap_up(struct dp *dp, struct dp_heap *h, uint32_t i)
{
	while (i) {
		uint32_t p = (i - 1) / 2;

		if (!key_less(&dp->queues[h->q[i]], &dp->queues[h->q[p]]))
			break;
		heap_swap(dp, h, i, p);
		i = p;
	}
}

static void heap_down(struct dp *dp, struct dp_heap *h, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->n && key_less(&dp->queues[h->q[l]], &dp->queues[h->q[m]]))
			m = l;
		if (r < h->n && key_less(&dp->queues[h->q[r]], &dp->queues[h->q[m]]))
			m = r;
		if (m == i)
			return;
		heap_swap(dp, h, i, m);
		i = m;
	}
}

static void heap_push(struct dp *dp, struct dp_heap *h, uint32_t q)
{
	h->q[h->n] = q;
	dp->queues[q].pos = (int32_t)h->n;
	heap_up(dp, h, h->n++);
}

static void heap_remove(struct dp *dp, struct dp_heap *h, uint32_t q)
{
	uint32_t i = (uint32_t)dp->queues[q].pos;

	h->n--;
	if (i != h->n) {
		heap_swap(dp, h, i, h->n);
		heap_down(dp, h, i);
		heap_up(dp, h, i);
	}
	dp->queues[q].pos = -1;
}

static void waiter_unlink(struct dp *dp, uint32_t q)
{
	struct dp_queue *w = &dp->queues[q];
	struct dp_cell *c = &dp->cells[w->dst];

	if (w->wprev >= 0)
		dp->queues[w->wprev].wnext = w->wnext;
	else
		c->waiters = w->wnext;
	if (w->wnext >= 0)
		dp->queues[w->wnext].wprev = w->wprev;
	w->wnext = w->wprev = -1;
	if (c->waiters < 0)
		bit_clear(dp->waitmap, w->dst);
}

/* Takes q out of whichever set it is in. */
static void queue_unplace(struct dp *dp, uint32_t q)
{
	struct dp_queue *w = &dp->queues[q];

	switch (w->state) {
	case DP_Q_READY:
		heap_remove(dp, &dp->ready, q);
		break;
	case DP_Q_HELD:
		heap_remove(dp, &dp->held, q);
		break;
	case DP_Q_BLOCKED:
		waiter_unlink(dp, q);
		break;
	default:
		break;
	}
	w->state = DP_Q_IDLE;
}

/* When p may go at the earliest: its ingest, or the policer's release when later
 * (the release may also lie before the ingest: see police()). */
static uint64_t pkt_eligible(const struct dp_pkt *p)
{
	return p->release > p->arrival ? p->release : p->arrival;
}

/* Puts q where its head says: ready (keyed by policy), held (keyed by release) or
 * idle (empty). q must be unplaced. */
static void queue_place(struct dp *dp, uint32_t q, uint64_t now)
{
	struct dp_queue *w = &dp->queues[q];
	const struct dp_pkt *p;

	if (w->head < 0) {
		w->state = DP_Q_IDLE;
		return;
	}
	p = &dp->pkts[w->head];
	if (p->release > now && !w->rx_open) {
		w->k1 = p->release;
		w->k2 = 0;
		w->k3 = p->seq;
		w->state = DP_Q_HELD;
		heap_push(dp, &dp->held, q);
		return;
	}
	switch (dp->cfg->broker.policy) {
	case RTVIO_POLICY_FP:
		w->k1 = dp->flows[w->flow].rank_hi;
		w->k2 = dp->flows[w->flow].rank_lo;
		break;
	case RTVIO_POLICY_EDF:
		/* Best-effort flows have no deadline: a band below every real-time one. */
		w->k1 = dp->flows[w->flow].be;
		w->k2 = dp->flows[w->flow].be ? 0 : p->deadline_abs;
		break;
	default:
		/* Arrival order, a held packet counted from its release: one that waited
		 * out the policer queues behind what came meanwhile (seq alone would put
		 * it ahead of everything ingested after it). */
		w->k1 = 0;
		w->k2 = pkt_eligible(p);
		break;
	}
	w->k3 = p->seq;
	w->state = DP_Q_READY;
	heap_push(dp, &dp->ready, q);
}

static void queue_append(struct dp *dp, uint32_t q, int32_t pi, uint64_t now)
{
	struct dp_queue *w = &dp->queues[q];

	dp->pkts[pi].next = -1;
	dp->pkts[pi].queue = q;
	if (w->tail >= 0)
		dp->pkts[w->tail].next = pi;
	else
		w->head = pi;
	w->tail = pi;
	dp->flows[w->flow].queued++;
	if (w->head == pi)
		queue_place(dp, q, now);
}

/* ------------------------------------------------------------ packets ---- */

static int32_t pkt_alloc_tx(struct dp *dp, uint32_t cell)
{
	struct dp_cell *c = &dp->cells[cell];
	int32_t pi = c->tx_free;

	if (pi >= 0)
		c->tx_free = dp->pkts[pi].next;
	return pi;
}

static int32_t pkt_alloc_syn(struct dp *dp)
{
	int32_t pi = dp->syn_free;

	if (pi >= 0)
		dp->syn_free = dp->pkts[pi].next;
	return pi;
}

static void pkt_free(struct dp *dp, int32_t pi)
{
	struct dp_pkt *p = &dp->pkts[pi];

	if (p->synthetic) {
		p->next = dp->syn_free;
		dp->syn_free = pi;
	} else {
		p->next = dp->cells[p->src].tx_free;
		dp->cells[p->src].tx_free = pi;
	}
}

static void notify(struct dp *dp, uint32_t cell, unsigned int queue, struct vq_device *vq)
{
	if (vq_device_should_notify(vq) && dp->hooks.notify)
		dp->hooks.notify(dp->ctx, cell, queue);
}

static void cell_break(struct dp *dp, uint32_t cell, int err);

/* Returns the sender's TX chain: its packet is done (delivered, or answered). */
static void pkt_complete_tx(struct dp *dp, struct dp_pkt *p)
{
	struct dp_cell *c = &dp->cells[p->src];
	int err;

	if (p->synthetic || !c->attached)
		return;
	err = vq_device_push(c->tx, p->head, 0);
	/* Called in the middle of queue surgery (completion, purges): a failure is
	 * acted on at the next pass's start, never from here. */
	if (err)
		c->break_err = err;
	else
		notify(dp, p->src, DP_QUEUE_TX, c->tx);
}

/* ------------------------------------------------------- detach/break ---- */

static void rx_forget(struct dp *dp, struct dp_queue *w, bool keep)
{
	struct dp_cell *c = &dp->cells[w->dst];

	if (!w->rx_open)
		return;
	w->rx_open = false;
	w->hdr_written = false;
	/* An RX chain popped for a piece that will never be written goes back to the
	 * destination's spares (or, when those are full, back to the cell empty). */
	if (!keep || !c->attached)
		return;
	if (c->n_spare < DP_RX_SPARE) {
		c->spare[c->n_spare++] = w->rx;
	} else if (!vq_device_push(c->rx, w->rx.head, 0)) {
		notify(dp, w->dst, DP_QUEUE_RX, c->rx);
	} else {
		c->break_err = -EPROTO; /* acted on at the next pass */
	}
}

static void drop_pkt(struct dp *dp, struct dp_queue *w, int32_t pi, uint32_t gone)
{
	struct dp_pkt *p = &dp->pkts[pi];

	dp->flows[w->flow].queued--;
	/* A packet from a live cell toward the departing one: the sender gets its
	 * chain back (the connection's RST tells it why). */
	if (p->src != gone)
		pkt_complete_tx(dp, p);
	pkt_free(dp, pi);
}

/* Removes every packet from or to `gone` in queue q. */
static void queue_purge(struct dp *dp, uint32_t q, uint32_t gone)
{
	struct dp_queue *w = &dp->queues[q];
	int32_t pi = w->head, last = -1;
	bool head_gone = false;

	if (pi < 0)
		return;
	queue_unplace(dp, q);
	while (pi >= 0) {
		int32_t nx = dp->pkts[pi].next;
		struct dp_pkt *p = &dp->pkts[pi];

		if (p->src == gone || w->dst == gone) {
			if (pi == w->head)
				head_gone = true;
			if (last >= 0)
				dp->pkts[last].next = nx;
			else
				w->head = nx;
			drop_pkt(dp, w, pi, gone);
		} else {
			last = pi;
		}
		pi = nx;
	}
	w->tail = last;
	if (head_gone)
		rx_forget(dp, w, w->dst != gone);
	queue_place(dp, q, dp->now);
}

static void detach(struct dp *dp, uint32_t cell, uint64_t now)
{
	struct dp_cell *c = &dp->cells[cell];

	if (!c->attached)
		return;
	/* From here on nothing touches this cell's rings or memory. */
	c->attached = false;
	bit_clear(dp->attmap, cell);
	for (uint32_t q = 0; q < dp->nqueues; q++)
		queue_purge(dp, q, cell);
	c->n_spare = 0;
	while (c->waiters >= 0)
		waiter_unlink(dp, (uint32_t)c->waiters);
	/* The peers learn at once that the connection is gone. */
	for (uint32_t k = 0; k < dp->nconns; k++) {
		struct dp_conn *cn = &dp->conns[k];
		uint32_t peer, peer_port, port;
		int32_t pi;

		if (cn->state == DP_CONN_FREE || (cn->a != cell && cn->b != cell))
			continue;
		peer = cn->a == cell ? cn->b : cn->a;
		peer_port = cn->a == cell ? cn->bp : cn->ap;
		port = cn->a == cell ? cn->ap : cn->bp;
		if (peer != cell && dp->cells[peer].attached) {
			pi = pkt_alloc_syn(dp);
			if (pi >= 0) {
				struct dp_pkt *p = &dp->pkts[pi];

				*p = (struct dp_pkt){
					.synthetic = true, .src = cell, .dst = peer,
					.arrival = now, .release = now, .seq = dp->seq++,
					.deadline_abs = now,
				};
				p->h = (struct vsock_hdr){
					.src_cid = c->cid, .dst_cid = dp->cells[peer].cid,
					.src_port = port, .dst_port = peer_port,
					.type = cn->type, .op = VSOCK_OP_RST,
				};
				dp->cells[peer].resets++;
				queue_append(dp, queue_of(dp, cn->flow, peer), pi, now);
			} else {
				dp->rst_lost++;
			}
		}
		conn_free(dp, (int32_t)k);
	}
	/* Every TX slot of this cell is free again: all its packets are purged. */
	c->rx = c->tx = NULL;
}

static void cell_break(struct dp *dp, uint32_t cell, int err)
{
	struct dp_cell *c = &dp->cells[cell];

	if (!c->attached)
		return;
	c->broken = true;
	detach(dp, cell, dp->now);
	if (dp->hooks.broken)
		dp->hooks.broken(dp->ctx, cell, err);
}

/* ------------------------------------------------------------- ingest ---- */

static bool op_known(uint16_t op)
{
	return op >= VSOCK_OP_REQUEST && op <= VSOCK_OP_CREDIT_REQUEST;
}

/* Turns p (a TX packet of cell s) into an RST back to s for the connection its header
 * names. The TX chain stays with the packet and goes back to s once the RST is
 * delivered: a cell provoking resets is slowed by its own TX slots, never by the
 * broker's memory. */
static void reply_rst(struct dp *dp, int32_t pi, uint64_t now)
{
	struct dp_pkt *p = &dp->pkts[pi];
	struct vsock_hdr h = p->h;
	struct dp_cell *c = &dp->cells[p->src];

	p->h = (struct vsock_hdr){
		.src_cid = h.dst_cid, .dst_cid = c->cid, .src_port = h.dst_port,
		.dst_port = h.src_port, .type = h.type, .op = VSOCK_OP_RST,
	};
	p->dst = p->src;
	p->release = now;
	p->deadline_abs = now;
	p->n_seg = 0;
	c->resets++;
	queue_append(dp, queue_of(dp, dp->nflows, p->src), pi, now);
}

/* The policer's byte bucket: `size` bytes refilled at size/period, the flow's
 * jitter as tolerance. tat = when the bucket is full again. byte_cost is what len
 * bytes cost in ns of refill; byte_conform the earliest time they fit. A packet
 * larger than the bucket waits for a full bucket and leaves the bucket in debt. */
static uint64_t byte_cost(const struct rtvio_flow_cfg *f, uint32_t len)
{
	unsigned __int128 c128 = (unsigned __int128)len * f->period_ns / f->size;

	return c128 > UINT64_MAX / 4 ? UINT64_MAX / 4 : (uint64_t)c128;
}

static uint64_t byte_conform(const struct rtvio_flow_cfg *f, uint64_t tat, uint64_t cost)
{
	uint64_t need = cost < f->period_ns ? cost : f->period_ns;
	uint64_t slack = f->period_ns + f->jitter_ns;

	return tat + need > slack ? tat + need - slack : 0;
}

/* The policer: the time at which p conforms to its flow's declaration, charged
 * against the queue's state at ingest so that release times are monotonic within
 * the queue. Every rule is a GCRA (virtual scheduling) with the flow's release
 * jitter as tolerance, so a sender within its declared (size, period, jitter) is
 * never held:
 *   seqpacket  message starts at least `period` apart (later packets of a message
 *              go no earlier than the one before), AND the byte bucket: a packet
 *              goes when both conform, so neither more than one message nor more
 *              than `size` bytes per period reach dispatch (plus the tolerance);
 *   stream     the byte bucket.
 * `seen` is when p can have been posted at the earliest: the last time this
 * sender's TX ring was seen empty. Judging by that rather than by the ingest time
 * means that the broker's own delays (a late pass, a host stall) never make a
 * sender look burstier than it was; the release times themselves still conform, so
 * the interference the flow can cause stays what it declared. */
static uint64_t police(struct dp *dp, struct dp_queue *w, const struct dp_pkt *p,
		       uint64_t seen)
{
	const struct rtvio_flow_cfg *f;
	uint64_t r = seen, t, cost;

	if (dp->flows[w->flow].be || p->h.op != VSOCK_OP_RW)
		return p->arrival;
	f = &dp->cfg->flows[w->flow];
	cost = byte_cost(f, p->h.len);
	t = byte_conform(f, w->tat, cost);
	if (t > r)
		r = t;
	if (f->type == RTVIO_SEQPACKET) {
		if (!w->in_msg) {
			t = w->mtat > f->jitter_ns ? w->mtat - f->jitter_ns : 0;
			if (t > r)
				r = t;
			w->mtat = (w->mtat > r ? w->mtat : r) + f->period_ns;
		} else if (w->last_rel > r) {
			r = w->last_rel;
		}
		w->last_rel = r;
		w->in_msg = !(p->h.flags & VSOCK_SEQ_EOM);
	}
	w->tat = (w->tat > r ? w->tat : r) + cost;
	return r;
}

/* Switches one validated TX packet: connection state, admission, queueing. */
static void switch_pkt(struct dp *dp, int32_t pi, uint64_t now)
{
	struct dp_pkt *p = &dp->pkts[pi];
	struct vsock_hdr *h = &p->h;
	uint32_t s = p->src;
	int d = cell_by_cid(dp, h->dst_cid);
	int32_t cn;
	uint32_t flow, q;
	bool from_connector;
	struct dp_queue *w;

	/* Impersonation: refused and counted. The sender gets an RST for the
	 * connection it named (addressed to its real CID, so nobody else sees it): a
	 * spoofed connect fails at once instead of hanging. */
	if (h->src_cid != dp->cells[s].cid) {
		dp->cells[s].refused++;
		goto refuse;
	}
	if (d < 0 || !dp->cells[d].attached)
		goto refuse;
	p->dst = (uint32_t)d;

	cn = conn_find(dp, s, h->src_port, (uint32_t)d, h->dst_port);
	from_connector = cn >= 0;
	if (cn < 0)
		cn = conn_find(dp, (uint32_t)d, h->dst_port, s, h->src_port);

	if (h->op == VSOCK_OP_REQUEST) {
		int f;

		if (cn >= 0)
			goto refuse; /* a second REQUEST on a live connection */
		f = flow_match(dp, s, h->src_port, (uint32_t)d, h->dst_port);
		if (f >= 0 && h->type != (dp->cfg->flows[f].type == RTVIO_SEQPACKET ?
					  VSOCK_TYPE_SEQPACKET : VSOCK_TYPE_STREAM))
			f = -1;
		if (f < 0) {
			if (!dp->cfg->broker.default_best_effort)
				goto refuse;
			f = (int)dp->nflows;
		}
		cn = conn_new(dp, s, h->src_port, (uint32_t)d, h->dst_port, (uint32_t)f, h->type);
		if (cn < 0)
			goto refuse;
		from_connector = true;
	} else {
		if (cn < 0 || h->type != dp->conns[cn].type) {
			if (h->op == VSOCK_OP_RST)
				goto drop; /* never answer an RST */
			goto refuse;
		}
		if (h->op == VSOCK_OP_RESPONSE) {
			if (from_connector || dp->conns[cn].state != DP_CONN_REQUESTED)
				goto refuse;
			dp->conns[cn].state = DP_CONN_ESTABLISHED;
		} else if (h->op != VSOCK_OP_RST &&
			   dp->conns[cn].state != DP_CONN_ESTABLISHED) {
			goto refuse;
		}
	}
	flow = dp->conns[cn].flow;
	if (h->op == VSOCK_OP_RST)
		conn_free(dp, cn); /* later packets of it get RST; this one still goes */
	q = queue_of(dp, flow, (uint32_t)d);
	w = &dp->queues[q];
	p->release = police(dp, w, p, dp->cells[s].tx_empty_at);
	if (p->release > p->arrival) {
		p->policed = true;
		dp->flows[flow].policed++;
	}
	/* A held packet's deadline runs from its release, as a conforming sender's
	 * would: holding a burst must not hand it earlier deadlines than the flow's
	 * declared rate allows (the edf analysis counts deadlines that way). */
	p->deadline_abs = dp->flows[flow].be ? UINT64_MAX :
			  pkt_eligible(p) + dp->cfg->flows[flow].deadline_ns;
	queue_append(dp, q, pi, now);
	return;
refuse:
	if (h->op != VSOCK_OP_RST) {
		reply_rst(dp, pi, now);
		return;
	}
drop:
	pkt_complete_tx(dp, p);
	pkt_free(dp, pi);
}

/* Pops and validates the available TX chains of one cell: at most DP_TX_SLOTS in one
 * pass. A chain the broker drops at once (an RST for no connection, a refused
 * packet) frees its slot again, so without that limit a cell that keeps posting such
 * chains would hold the pass, and every other cell, for as long as it liked. */
static void ingest_cell(struct dp *dp, uint32_t s, uint64_t now)
{
	struct dp_cell *c = &dp->cells[s];

	for (uint32_t taken = 0; c->attached; taken++) {
		int32_t pi;
		struct dp_pkt *p;
		struct vq_chain ch;
		uint8_t raw[VSOCK_HDR_SIZE];
		int r;

		if (taken == DP_TX_SLOTS) {
			/* The rest in a later pass: dp_run says there may be more. */
			dp->ingest_more = true;
			return;
		}
		pi = pkt_alloc_tx(dp, s);
		if (pi < 0)
			return; /* all slots busy: the rest waits on the ring */
		p = &dp->pkts[pi];
		r = vq_device_pop(c->tx, &ch, p->seg, DP_MAX_SEG);
		if (r <= 0) {
			pkt_free(dp, pi);
			if (r < 0) {
				cell_break(dp, s, r);
				return;
			}
			c->tx_empty_at = now;
			/* Sleeping on kicks: ask for one, once per drained ring (a full
			 * fence each time), and look again in case packets came meanwhile. */
			if (dp->cfg->broker.poll || c->tx_armed)
				return;
			c->tx_armed = true;
			if (!vq_device_enable_notify(c->tx))
				return;
			continue;
		}
		c->tx_armed = false;
		/* A TX chain is header + payload, all device-readable, and its length
		 * matches the header exactly; anything else is a hostile ring. */
		if (ch.n_seg != ch.n_out || ch.out_len < VSOCK_HDR_SIZE) {
			pkt_free(dp, pi);
			cell_break(dp, s, -EPROTO);
			return;
		}
		seg_gather(raw, p->seg, ch.n_out, VSOCK_HDR_SIZE);
		/* Field by field: seg[] holds the chain just popped. */
		p->n_seg = ch.n_out;
		p->head = ch.head;
		p->synthetic = false;
		p->policed = false;
		p->src = p->dst = s;
		p->sent = 0;
		p->arrival = p->release = now;
		p->deadline_abs = UINT64_MAX;
		p->seq = dp->seq++;
		vsock_hdr_decode(&p->h, raw);
		if ((uint64_t)p->h.len + VSOCK_HDR_SIZE != ch.out_len || !op_known(p->h.op) ||
		    (p->h.type != VSOCK_TYPE_STREAM && p->h.type != VSOCK_TYPE_SEQPACKET) ||
		    (p->h.op != VSOCK_OP_RW && p->h.len)) {
			pkt_free(dp, pi);
			cell_break(dp, s, -EPROTO);
			return;
		}
		c->st.pkts_in++;
		c->st.bytes_in += p->h.len;
		switch_pkt(dp, pi, now);
	}
}

static void release_held(struct dp *dp, uint64_t now)
{
	while (dp->held.n) {
		uint32_t q = dp->held.q[0];

		if (dp->queues[q].k1 > now)
			return;
		queue_unplace(dp, q);
		queue_place(dp, q, now);
	}
}

/* Cells with queues waiting for RX buffers: one chain popped into the spares is
 * enough to let the waiters compete again. */
static void check_waiters1(struct dp *dp, uint32_t s)
{
	struct dp_cell *c = &dp->cells[s];
	struct vq_chain ch;
	int r;

	if (c->waiters < 0 || !c->attached)
		return;
	if (!c->n_spare) {
		r = vq_device_pop(c->rx, &ch, c->spare[0].seg, DP_MAX_SEG);
		/* Empty: ask for a kick, and look again in case buffers came meanwhile. */
		if (!r && !dp->cfg->broker.poll && vq_device_enable_notify(c->rx))
			r = vq_device_pop(c->rx, &ch, c->spare[0].seg, DP_MAX_SEG);
		if (r < 0)
			cell_break(dp, s, r);
		if (r <= 0)
			return;
		c->spare[0].head = ch.head;
		c->spare[0].n_seg = ch.n_seg;
		c->spare[0].n_out = ch.n_out;
		c->spare[0].in_len = ch.in_len;
		c->n_spare = 1;
	}
	while (c->waiters >= 0) {
		uint32_t q = (uint32_t)c->waiters;

		waiter_unlink(dp, q);
		dp->queues[q].state = DP_Q_IDLE;
		queue_place(dp, q, dp->now);
	}
}

static void ingest1(struct dp *dp, uint32_t s)
{
	ingest_cell(dp, s, dp->now);
}

/* One ingest pass: every attached cell's TX ring, starting one cell further each
 * pass (round robin: no cell is always last), then the destinations that got RX
 * buffers, then the policer's releases. Bitmaps keep the cost per pass to one index
 * read per attached cell plus O(1) per packet. */
static void break_pending1(struct dp *dp, uint32_t s)
{
	int err = dp->cells[s].break_err;

	if (err) {
		dp->cells[s].break_err = 0;
		cell_break(dp, s, err);
	}
}

static void ingest(struct dp *dp, uint64_t now)
{
	uint32_t start = dp->rr;

	dp->now = now;
	dp->ingest_more = false;
	bits_each(dp, dp->attmap, 0, dp->ncells, break_pending1);
	dp->rr = dp->rr + 1 < dp->ncells ? dp->rr + 1 : 0;
	bits_each(dp, dp->attmap, start, dp->ncells, ingest1);
	bits_each(dp, dp->attmap, 0, start, ingest1);
	bits_each(dp, dp->waitmap, 0, dp->ncells, check_waiters1);
	release_held(dp, now);
}

/* --------------------------------------------------------------- copy ---- */

/* Gets an RX buffer of the destination for q's next piece: 1 got it, 0 none posted
 * (q now waits), -1 the destination broke. */
static int rx_get(struct dp *dp, uint32_t q)
{
	struct dp_queue *w = &dp->queues[q];
	struct dp_cell *c = &dp->cells[w->dst];

	if (c->n_spare) {
		w->rx = c->spare[--c->n_spare];
	} else {
		struct vq_chain ch;
		int r = vq_device_pop(c->rx, &ch, w->rx.seg, DP_MAX_SEG);

		if (r < 0) {
			cell_break(dp, w->dst, r);
			return -1;
		}
		if (!r) {
			queue_unplace(dp, q);
			w->state = DP_Q_BLOCKED;
			w->wprev = -1;
			w->wnext = c->waiters;
			if (c->waiters >= 0)
				dp->queues[c->waiters].wprev = (int32_t)q;
			c->waiters = (int32_t)q;
			bit_set(dp->waitmap, w->dst);
			return 0;
		}
		w->rx.head = ch.head;
		w->rx.n_seg = ch.n_seg;
		w->rx.n_out = ch.n_out;
		w->rx.in_len = ch.in_len;
	}
	/* An RX buffer is all device-writable and holds a header and at least one
	 * payload byte; anything else is a hostile ring. */
	if (w->rx.n_out || w->rx.in_len <= VSOCK_HDR_SIZE) {
		cell_break(dp, w->dst, -EPROTO);
		return -1;
	}
	return 1;
}

static void record_residence(struct dp_flow *f, uint64_t arrival, uint64_t r,
			     uint64_t deadline)
{
	unsigned int b = 0;

	if (r)
		b = 63u - (unsigned int)__builtin_clzll(r);
	if (b >= DP_HIST_BUCKETS)
		b = DP_HIST_BUCKETS - 1;
	f->st.hist[b]++;
	if (r > f->st.max_residence_ns) {
		f->st.max_residence_ns = r;
		f->st.max_residence_at = arrival;
	}
	if (deadline && r > deadline)
		f->st.deadline_misses++;
}

/* The packet at q's head is fully delivered. */
static void pkt_done(struct dp *dp, uint32_t q, uint64_t now)
{
	struct dp_queue *w = &dp->queues[q];
	int32_t pi = w->head;
	struct dp_pkt *p = &dp->pkts[pi];
	struct dp_flow *f = &dp->flows[w->flow];

	queue_unplace(dp, q);
	w->head = p->next;
	if (w->head < 0)
		w->tail = -1;
	f->queued--;
	f->st.packets++;
	f->st.bytes += p->h.len;
	record_residence(f, p->arrival, now - p->arrival,
			 f->be ? 0 : dp->cfg->flows[w->flow].deadline_ns);
	queue_place(dp, q, now);
	pkt_complete_tx(dp, p);
	pkt_free(dp, pi);
}

/* One non-preemptive step of queue q's head packet: at most one chunk into one RX
 * buffer. Returns 2 progress that delivered the packet's last piece (the caller
 * calls pkt_done with the time after the step), 1 other progress, 0 q could not
 * run (it now waits for RX buffers, or the destination broke), -1 the regulator's
 * budget is spent. */
static int copy_step(struct dp *dp, uint32_t q, uint64_t now)
{
	struct dp_queue *w = &dp->queues[q];
	struct dp_pkt *p = &dp->pkts[w->head];
	struct dp_cell *dc = &dp->cells[w->dst];
	uint64_t n, hdr, want;

	if (!w->rx_open) {
		int r = rx_get(dp, q);

		if (r <= 0)
			return 0;
		w->rx_open = true;
		w->piece_done = 0;
		w->piece_len = p->h.len - p->sent;
		if (w->piece_len > w->rx.in_len - VSOCK_HDR_SIZE)
			w->piece_len = w->rx.in_len - VSOCK_HDR_SIZE;
	}
	n = w->piece_len - w->piece_done;
	if (n > dp->cfg->broker.chunk)
		n = dp->cfg->broker.chunk;
	hdr = w->piece_done == 0 && !w->hdr_written ? VSOCK_HDR_SIZE : 0;
	want = hdr + n;
	if (dp->cfg->broker.regulation_budget) {
		uint64_t rem = reg_remaining(&dp->reg, now), g;

		if (rem < hdr + (n ? 1 : 0)) {
			/* Too little left for a step that makes progress: the rest of this
			 * period is forfeited (never overspent) and the wait counted. */
			if (rem)
				reg_grant(&dp->reg, rem, now);
			reg_grant(&dp->reg, want, now);
			return -1;
		}
		g = reg_grant(&dp->reg, want, now);
		n = g - hdr;
	}
	if (hdr) {
		struct vsock_hdr ph = p->h;
		uint8_t raw[VSOCK_HDR_SIZE];

		ph.len = w->piece_len;
		/* Message boundaries belong to the last piece only. */
		if (p->sent + w->piece_len < p->h.len && ph.type == VSOCK_TYPE_SEQPACKET)
			ph.flags &= ~(uint32_t)(VSOCK_SEQ_EOM | VSOCK_SEQ_EOR);
		vsock_hdr_encode(&ph, raw);
		seg_scatter(w->rx.seg, w->rx.n_seg, raw, VSOCK_HDR_SIZE);
		w->hdr_written = true;
	}
	if (n)
		seg_copy(dp->copy, w->rx.seg, w->rx.n_seg, VSOCK_HDR_SIZE + w->piece_done,
			 p->seg, p->n_seg, VSOCK_HDR_SIZE + (uint64_t)p->sent, n);
	w->piece_done += (uint32_t)n;
	p->sent += (uint32_t)n;
	dp->reg_bytes += hdr + n;
	dp->flows[w->flow].st.chunks++;
	if (w->piece_done < w->piece_len)
		return 1;
	/* The piece is complete: to the destination's used ring. */
	w->rx_open = false;
	w->hdr_written = false;
	{
		int err = vq_device_push(dc->rx, w->rx.head, VSOCK_HDR_SIZE + w->piece_len);

		if (err) {
			cell_break(dp, w->dst, err);
			return 0;
		}
	}
	dc->st.pkts_out++;
	dc->st.bytes_out += w->piece_len;
	notify(dp, w->dst, DP_QUEUE_RX, dc->rx);
	return p->sent == p->h.len ? 2 : 1;
}

uint64_t dp_run(struct dp *dp, uint64_t now_ns)
{
	uint64_t now = now_ns;
	unsigned int steps = 0;

	for (;;) {
		int r;
		uint32_t q;

		ingest(dp, now);
		if (!dp->ready.n)
			break;
		/* More is ready: the call's own start time says "at once" (the clock
		 * has moved on during the steps; a later time would read as a wait). */
		if (steps == DP_RUN_STEPS)
			return now_ns;
		q = dp->ready.q[0];
		r = copy_step(dp, q, now);
		if (r < 0) {
			uint64_t t = reg_next_ns(&dp->reg);

			if (dp->held.n && dp->queues[dp->held.q[0]].k1 < t)
				t = dp->queues[dp->held.q[0]].k1;
			return t;
		}
		if (r > 0) {
			steps++;
			/* The one clock read per step, taken after it: a packet completed
			 * by this step is stamped with it, so residence includes its last
			 * copy (rtvio calibrate also times steps by these reads). */
			now = dp_clock(dp);
			if (r == 2)
				pkt_done(dp, q, now);
		}
	}
	if (dp->ingest_more)
		return now_ns;
	if (dp->held.n)
		return dp->queues[dp->held.q[0]].k1;
	return 0;
}

/* ------------------------------------------------------------ control ---- */

int dp_attach(struct dp *dp, unsigned int cell, struct vq_device *rx, struct vq_device *tx)
{
	struct dp_cell *c;

	if (cell >= dp->ncells || !rx || !tx)
		return -EINVAL;
	c = &dp->cells[cell];
	if (c->attached)
		return -EBUSY;
	c->rx = rx;
	c->tx = tx;
	c->attached = true;
	c->break_err = 0;
	c->tx_armed = true;
	c->tx_empty_at = dp->now;
	bit_set(dp->attmap, cell);
	c->broken = false;
	c->n_spare = 0;
	c->waiters = -1;
	if (dp->cfg->broker.poll) {
		/* Busy polling: kicks would only cost the cell a system call. */
		vq_device_disable_notify(tx);
		vq_device_disable_notify(rx);
	} else {
		vq_device_enable_notify(tx);
	}
	return 0;
}

void dp_detach(struct dp *dp, unsigned int cell)
{
	if (cell < dp->ncells) {
		dp->now = dp_clock(dp);
		detach(dp, cell, dp->now);
	}
}

void dp_kick(struct dp *dp, unsigned int cell, unsigned int queue)
{
	/* Every pass looks at every attached ring (one index read each), so a kick
	 * carries no information the pass would not find itself. */
	(void)dp;
	(void)cell;
	(void)queue;
}

/* ------------------------------------------------------- create/destroy ---- */

/* Ranks and classes are the model's (model/model.h), which the analysis reads too. */
static int rank_flows(struct dp *dp)
{
	struct model *m;
	int r = model_create(dp->cfg, &m);

	if (r)
		return r;
	for (uint32_t i = 0; i <= dp->nflows; i++) {
		dp->flows[i].rank_hi = m->flows[i].rank_hi;
		dp->flows[i].rank_lo = m->flows[i].rank_lo;
		dp->flows[i].be = m->flows[i].cls == MODEL_BEST_EFFORT;
	}
	model_destroy(m);
	return 0;
}

int dp_create(const struct rtvio_config *cfg, const struct dp_hooks *hooks, void *ctx,
	      struct dp **out)
{
	struct dp *dp;
	uint32_t npkts;

	*out = NULL;
	if (cfg->ncells <= 0 || cfg->ncells > (int)DP_MAX_CELLS || cfg->nflows < 0 ||
	    !cfg->broker.chunk || cfg->broker.chunk > UINT32_MAX)
		return -EINVAL;
	for (int i = 0; i < cfg->nflows; i++)
		if (!cfg->flows[i].best_effort && (!cfg->flows[i].size || !cfg->flows[i].period_ns))
			return -EINVAL;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->cfg = cfg;
	if (hooks)
		dp->hooks = *hooks;
	dp->ctx = ctx;
	/* Chosen once: the copy path pays an indirect call per segment piece, nothing
	 * per byte. */
	dp->copy = dp_copy_select(cfg->broker.copy);
	if (cfg->broker.copy == RTVIO_COPY_NT && !dp_copy_nt_native())
		fprintf(stderr, "rtvio broker: copy = nt: no non-temporal stores on this "
			"architecture, copying with memcpy\n");
	dp->ncells = (uint32_t)cfg->ncells;
	dp->nflows = (uint32_t)cfg->nflows;
	dp->nqueues = 2 * dp->nflows + dp->ncells;
	dp->nconns = DP_CONNS_PER_CELL * dp->ncells;
	dp->nsyn = dp->nconns;
	npkts = dp->ncells * DP_TX_SLOTS + dp->nsyn;
	dp->cid_hash_size = pow2_at_least(2 * (uint64_t)dp->ncells);
	dp->flow_hash_size = pow2_at_least(2 * (uint64_t)dp->nflows + 2);
	dp->conn_hash_size = pow2_at_least(2 * (uint64_t)dp->nconns);

	dp->cells = calloc(dp->ncells, sizeof(*dp->cells));
	dp->flows = calloc(dp->nflows + 1, sizeof(*dp->flows));
	dp->queues = calloc(dp->nqueues, sizeof(*dp->queues));
	dp->pkts = calloc(npkts, sizeof(*dp->pkts));
	dp->conns = calloc(dp->nconns, sizeof(*dp->conns));
	dp->ready.q = calloc(dp->nqueues, sizeof(uint32_t));
	dp->held.q = calloc(dp->nqueues, sizeof(uint32_t));
	dp->attmap = calloc(dp->ncells / 64 + 1, sizeof(uint64_t));
	dp->waitmap = calloc(dp->ncells / 64 + 1, sizeof(uint64_t));
	dp->cid_hash = malloc(dp->cid_hash_size * sizeof(int32_t));
	dp->flow_hash = malloc(dp->flow_hash_size * sizeof(int32_t));
	dp->conn_hash = malloc(dp->conn_hash_size * sizeof(int32_t));
	if (!dp->cells || !dp->flows || !dp->queues || !dp->pkts || !dp->conns ||
	    !dp->ready.q || !dp->held.q || !dp->attmap || !dp->waitmap || !dp->cid_hash || !dp->flow_hash || !dp->conn_hash) {
		dp_destroy(dp);
		return -ENOMEM;
	}
	memset(dp->cid_hash, 0xff, dp->cid_hash_size * sizeof(int32_t));
	memset(dp->flow_hash, 0xff, dp->flow_hash_size * sizeof(int32_t));
	memset(dp->conn_hash, 0xff, dp->conn_hash_size * sizeof(int32_t));

	for (uint32_t i = 0; i < dp->ncells; i++) {
		struct dp_cell *c = &dp->cells[i];
		uint32_t mask = dp->cid_hash_size - 1, k;

		c->cid = cfg->cells[i].cid;
		c->waiters = -1;
		if (cell_by_cid(dp, c->cid) >= 0) {
			dp_destroy(dp);
			return -EINVAL;
		}
		for (k = hash32(c->cid, 0) & mask; dp->cid_hash[k] >= 0; k = (k + 1) & mask)
			;
		dp->cid_hash[k] = (int32_t)i;
		c->tx_free = -1;
		for (uint32_t j = 0; j < DP_TX_SLOTS; j++) {
			int32_t pi = (int32_t)(i * DP_TX_SLOTS + j);

			dp->pkts[pi].src = i;
			dp->pkts[pi].next = c->tx_free;
			c->tx_free = pi;
		}
	}
	dp->syn_free = -1;
	for (uint32_t j = 0; j < dp->nsyn; j++) {
		int32_t pi = (int32_t)(dp->ncells * DP_TX_SLOTS + j);

		dp->pkts[pi].synthetic = true;
		dp->pkts[pi].next = dp->syn_free;
		dp->syn_free = pi;
	}
	for (uint32_t f = 0; f < dp->nflows; f++) {
		const struct rtvio_flow_cfg *fc = &cfg->flows[f];
		uint32_t mask = dp->flow_hash_size - 1, k;

		if (fc->from < 0 || fc->from >= cfg->ncells || fc->to < 0 ||
		    fc->to >= cfg->ncells || flow_lookup1(dp, (uint32_t)fc->from, fc->from_port,
							  (uint32_t)fc->to, fc->to_port) >= 0) {
			dp_destroy(dp);
			return -EINVAL;
		}
		k = hash32(flow_key_hi((uint32_t)fc->from, fc->from_port),
			   flow_key_lo((uint32_t)fc->to, fc->to_port)) & mask;
		while (dp->flow_hash[k] >= 0)
			k = (k + 1) & mask;
		dp->flow_hash[k] = (int32_t)f;
	}
	if (rank_flows(dp)) { /* cells and flows checked above: out of memory */
		dp_destroy(dp);
		return -ENOMEM;
	}
	for (uint32_t q = 0; q < dp->nqueues; q++) {
		struct dp_queue *w = &dp->queues[q];

		w->head = w->tail = -1;
		w->pos = w->wnext = w->wprev = -1;
		if (q < 2 * dp->nflows) {
			w->flow = q / 2;
			w->dst = (uint32_t)(q % 2 ? cfg->flows[q / 2].from : cfg->flows[q / 2].to);
		} else {
			w->flow = dp->nflows;
			w->dst = q - 2 * dp->nflows;
		}
	}
	dp->conn_free = -1;
	for (uint32_t k = dp->nconns; k-- > 0;) {
		dp->conns[k].hnext = dp->conn_free;
		dp->conn_free = (int32_t)k;
	}
	if (reg_init(&dp->reg, cfg->broker.regulation_budget, cfg->broker.regulation_period_ns,
		     dp_clock(dp))) {
		dp_destroy(dp);
		return -EINVAL;
	}
	*out = dp;
	return 0;
}

void dp_destroy(struct dp *dp)
{
	if (!dp)
		return;
	free(dp->cells);
	free(dp->flows);
	free(dp->queues);
	free(dp->pkts);
	free(dp->conns);
	free(dp->ready.q);
	free(dp->held.q);
	free(dp->attmap);
	free(dp->waitmap);
	free(dp->cid_hash);
	free(dp->flow_hash);
	free(dp->conn_hash);
	free(dp);
}

/* ---------------------------------------------------------------- stats ---- */

unsigned int dp_ncells(const struct dp *dp)
{
	return dp->ncells;
}

unsigned int dp_nflows(const struct dp *dp)
{
	return dp->nflows + 1;
}

const char *dp_flow_name(const struct dp *dp, unsigned int flow)
{
	if (flow < dp->nflows)
		return dp->cfg->flows[flow].name;
	return flow == dp->nflows ? "best-effort" : NULL;
}

int dp_stats_cell(const struct dp *dp, unsigned int cell, struct dp_cell_stats *out)
{
	const struct dp_cell *c;

	if (cell >= dp->ncells)
		return -EINVAL;
	c = &dp->cells[cell];
	*out = c->st;
	out->attached = c->attached;
	out->broken = c->broken;
	out->refused = c->refused;
	out->resets = c->resets;
	return 0;
}

int dp_stats_flow(const struct dp *dp, unsigned int flow, struct dp_flow_stats *out)
{
	const struct dp_flow *f;

	if (flow > dp->nflows)
		return -EINVAL;
	f = &dp->flows[flow];
	*out = f->st;
	out->policed = f->policed;
	out->queued = f->queued;
	out->connections = f->connections;
	return 0;
}

void dp_stats_reg(const struct dp *dp, struct dp_reg_stats *out)
{
	struct regulator r = dp->reg;

	/* Settle a throttled period that has ended, on a copy: stats never move the
	 * regulator itself. */
	reg_advance(&r, dp->now);
	*out = (struct dp_reg_stats){
		.budget = r.budget,
		.period_ns = r.period_ns,
		.bytes = dp->reg_bytes,
		.throttled_periods = r.throttled_periods,
		.throttled_ns = r.throttled_ns,
	};
}
