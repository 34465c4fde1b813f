/* Dispatch: the per-(flow, destination) queues, the heap of ready queues keyed by the
 * policy, the heap of queues the policer holds, and per destination the list of queues
 * waiting for its RX buffers. O(log queues) per packet, no scan of queues. */
#include <errno.h>
#include <stdint.h>

#include "dp_internal.h"

/* A configured flow's two queues are 2f (toward its listener) and 2f + 1 (back
 * toward its connector); the best-effort class has one per destination cell. */
uint32_t dp_queue_of(const struct dp *dp, uint32_t flow, uint32_t dst)
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

void dp_waiter_unlink(struct dp *dp, uint32_t q)
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
		dp_bit_clear(dp_core_of(dp, w->dst)->waitmap, w->dst);
}

/* q found no RX buffer at its destination: it waits on the destination's list (and
 * the cell's bit in waitmap) until an ingest pass sees buffers there. */
void dp_queue_block(struct dp *dp, uint32_t q)
{
	struct dp_queue *w = &dp->queues[q];
	struct dp_cell *c = &dp->cells[w->dst];

	dp_queue_unplace(dp, q);
	w->state = DP_Q_BLOCKED;
	w->wprev = -1;
	w->wnext = c->waiters;
	if (c->waiters >= 0)
		dp->queues[c->waiters].wprev = (int32_t)q;
	c->waiters = (int32_t)q;
	dp_bit_set(dp_core_of(dp, w->dst)->waitmap, w->dst);
}

/* Takes q out of whichever set it is in. */
void dp_queue_unplace(struct dp *dp, uint32_t q)
{
	struct dp_queue *w = &dp->queues[q];

	switch (w->state) {
	case DP_Q_READY:
		heap_remove(dp, &dp_core_of(dp, w->dst)->ready, q);
		break;
	case DP_Q_HELD:
		heap_remove(dp, &dp_core_of(dp, w->dst)->held, q);
		break;
	case DP_Q_BLOCKED:
		dp_waiter_unlink(dp, q);
		break;
	default:
		break;
	}
	w->state = DP_Q_IDLE;
}

/* Puts q where its head says: ready (keyed by policy), held (keyed by release) or
 * idle (empty). q must be unplaced. */
void dp_queue_place(struct dp *dp, uint32_t q, uint64_t now)
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
		heap_push(dp, &dp_core_of(dp, w->dst)->held, q);
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
		w->k2 = dp_pkt_eligible(p);
		break;
	}
	w->k3 = p->seq;
	w->state = DP_Q_READY;
	heap_push(dp, &dp_core_of(dp, w->dst)->ready, q);
}

void dp_queue_append(struct dp *dp, uint32_t q, int32_t pi, uint64_t now)
{
	struct dp_queue *w = &dp->queues[q];
	struct dp_pkt *p = &dp->pkts[pi];

	/* A packet held for its sender's control budget, and every packet behind it,
	 * waits for that release at the cell's own expense (docs/broker.md, "Per-cell
	 * budgets"): its residence, what the analysis bounds, starts there. An empty
	 * queue has nothing ahead to wait behind. */
	if (w->tail < 0)
		w->budget_rel = 0;
	if (p->budget_held && p->release > w->budget_rel)
		w->budget_rel = p->release;
	p->counted = p->arrival > w->budget_rel ? p->arrival : w->budget_rel;
	p->next = -1;
	p->queue = q;
	if (w->tail >= 0)
		dp->pkts[w->tail].next = pi;
	else
		w->head = pi;
	w->tail = pi;
	dp->flows[w->flow].queued++;
	if (w->head == pi)
		dp_queue_place(dp, q, now);
}

/* ------------------------------------------------ a cell going away ---- */

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
	} else if (!vq_device_add_used(c->rx, w->rx.head, 0)) {
		dp_notify(dp, w->dst, DP_QUEUE_RX, c->rx);
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
		dp_pkt_complete_tx(dp, p);
	dp_pkt_free(dp, pi);
}

/* Removes every packet from or to `gone` in queue q, except the RSTs an earlier
 * detach of `gone` left toward a live peer (still held for its control budget, or
 * waiting for the peer's buffers): the peer must still hear of that connection, and
 * the budget they were charged to is spent. */
void dp_queue_purge(struct dp *dp, uint32_t q, uint32_t gone)
{
	struct dp_queue *w = &dp->queues[q];
	int32_t pi = w->head, last = -1;
	bool head_gone = false;

	if (pi < 0)
		return;
	dp_queue_unplace(dp, q);
	while (pi >= 0) {
		int32_t nx = dp->pkts[pi].next;
		struct dp_pkt *p = &dp->pkts[pi];

		if (w->dst == gone || (p->src == gone && !p->synthetic)) {
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
	dp_queue_place(dp, q, dp->now);
}

/* Empties q (its flow is being removed): every packet's sender gets its chain back,
 * except the broker's own RSTs (a departing cell's, queued at its detach), which
 * move to the best-effort class toward the same cell so that the peer still hears
 * of it. An RX buffer popped for a piece goes back to the destination's spares, and
 * the policer starts afresh for whatever flow fills the slot next. */
void dp_queue_purge_all(struct dp *dp, uint32_t q)
{
	struct dp_queue *w = &dp->queues[q];
	int32_t pi = w->head;

	dp_queue_unplace(dp, q);
	/* The head's RX buffer goes back first: a moved RST starts afresh. */
	rx_forget(dp, w, true);
	w->head = w->tail = -1;
	while (pi >= 0) {
		int32_t nx = dp->pkts[pi].next;
		struct dp_pkt *p = &dp->pkts[pi];

		if (p->synthetic && p->h.op == VSOCK_OP_RST) {
			dp->flows[w->flow].queued--;
			/* A best-effort control packet is no control budget's: one its
			 * sender's budget held goes now, holding back no best-effort
			 * packet of another cell behind it in that queue. */
			if (p->budget_held) {
				p->release = dp->now;
				p->budget_held = false;
			}
			dp_queue_append(dp, dp_queue_of(dp, dp->nflows, p->dst), pi, dp->now);
		} else {
			drop_pkt(dp, w, pi, UINT32_MAX);
		}
		pi = nx;
	}
	w->tat = w->mtat = w->last_rel = 0;
	w->in_msg = false;
}

/* ------------------------------------------------------- each pass ---- */

/* Core k's queues whose head the policer has released since go back to its ready
 * heap. */
void dp_release_held(struct dp *dp, struct dp_core *k, uint64_t now)
{
	while (k->held.n) {
		uint32_t q = k->held.q[0];

		if (dp->queues[q].k1 > now)
			return;
		dp_queue_unplace(dp, q);
		dp_queue_place(dp, q, now);
	}
}

/* A cell with queues waiting for its RX buffers: one chain popped into the spares is
 * enough to let the waiters compete again. */
void dp_wake_rx_waiters(struct dp *dp, uint32_t s)
{
	struct dp_cell *c = &dp->cells[s];
	struct vq_chain ch;
	int r;

	if (c->waiters < 0 || !c->attached || dp_mem_waits(dp, s))
		return;
	if (!c->n_spare) {
		r = vq_device_pop(c->rx, &ch, c->spare[0].seg, DP_MAX_SEG);
		/* Empty: ask for a kick, and look again in case buffers came meanwhile. */
		if (!r && !dp->cfg->broker.poll && vq_device_enable_notify(c->rx))
			r = vq_device_pop(c->rx, &ch, c->spare[0].seg, DP_MAX_SEG);
		if (r == VQ_NOT_READY) {
			dp_mem_wait(dp, s, c->rx);
			return;
		}
		if (r < 0)
			dp_cell_break(dp, s, r);
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

		dp_waiter_unlink(dp, q);
		dp->queues[q].state = DP_Q_IDLE;
		dp_queue_place(dp, q, dp->now);
	}
}
