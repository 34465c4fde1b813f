/* Per-cell budgets per budget period (model.h, model_cell_budgets; docs/broker.md,
 * "Per-cell budgets"): the TX chains the broker takes from a cell's ring, the control
 * packets it switches for the cell, and the short RX pieces it writes into the
 * cell's buffers. Periods follow one grid of [broker] budget_period from the data
 * plane's start, the same for every cell, so the analysis can charge each cell's
 * budget once per period of any window. Work beyond a budget waits for a later
 * period of its cell: ingest stays on the cell's ring, a control packet is held in
 * its queue until a period with budget left, a piece waits in its queue. Nothing is
 * dropped. O(1) per packet, no allocation. */
#include <stdint.h>

#include "dp_internal.h"

static uint64_t period_of(const struct dp *dp, uint64_t now)
{
	return now > dp->budget_t0 ? (now - dp->budget_t0) / dp->budget_period : 0;
}

static uint64_t period_start(const struct dp *dp, uint64_t k)
{
	return dp->budget_t0 + k * dp->budget_period;
}

void dp_budget_cells(struct dp *dp)
{
	for (uint32_t i = 0; i < dp->ncells; i++) {
		struct dp_cell *c = &dp->cells[i];
		struct model_cell_budget mb;

		c->tx_budget = MODEL_INGEST_BUDGETS ?
			model_cell_ingest_budget(dp->cfg, (int)i) : DP_TX_SLOTS;
		if (dp->cfg->cells[i].vacant) {
			c->in_budget = c->ctrl_budget = c->piece_budget = 0;
			c->rx_floor = 0;
			continue;
		}
		model_cell_budgets(dp->cfg, (int)i, &mb);
		c->in_budget = mb.ingest;
		c->ctrl_budget = mb.ctrl;
		c->piece_budget = mb.pieces;
		c->rx_floor = mb.rx_floor;
	}
}

/* The cell's counters belong to the period of `now`. */
static void roll(struct dp *dp, struct dp_cell *c, uint64_t now)
{
	uint64_t k = period_of(dp, now);

	if (c->bud_period == k)
		return;
	c->bud_period = k;
	c->in_used = 0;
	c->piece_used = 0;
	c->in_waited = false;
}

bool dp_budget_ingest(struct dp *dp, uint32_t cell, uint64_t now)
{
	struct dp_cell *c = &dp->cells[cell];
	uint64_t next;

	roll(dp, c, now);
	if (c->in_used < c->in_budget) {
		c->in_used++;
		return true;
	}
	if (!c->in_waited) {
		c->in_waited = true;
		c->st.budget_waits++;
	}
	/* dp_run sleeps no longer than the next period: the rest is taken then. */
	next = period_start(dp, c->bud_period + 1);
	if (!dp_core_of(dp, cell)->budget_wake || next < dp_core_of(dp, cell)->budget_wake)
		dp_core_of(dp, cell)->budget_wake = next;
	return false;
}

uint64_t dp_budget_ctrl(struct dp *dp, uint32_t cell, uint64_t now)
{
	struct dp_cell *c = &dp->cells[cell];
	uint64_t k = period_of(dp, now);

	/* ctrl_period is the period the next control packet is charged to: never
	 * before now's, and one further each time a period's budget is spent, so
	 * that a storm is spread over the cell's later periods in order. */
	if (c->ctrl_period < k) {
		c->ctrl_period = k;
		c->ctrl_used = 0;
	}
	if (c->ctrl_used >= c->ctrl_budget) {
		c->ctrl_period++;
		c->ctrl_used = 0;
	}
	c->ctrl_used++;
	if (c->ctrl_period == k)
		return now;
	c->st.ctrl_over_budget++;
	return period_start(dp, c->ctrl_period);
}

/* A piece of a real-time packet into an RX buffer of less payload than the
 * destination's floor, which does not finish the packet: the analysis priced the
 * packet's pieces at the floor, so each such piece is one piece more than it
 * counted. */
static bool short_piece(const struct dp *dp, const struct dp_queue *w, const struct dp_pkt *p)
{
	uint64_t cap = w->rx.in_len - VSOCK_HDR_SIZE;

	return !dp->flows[w->flow].be && cap < dp->cells[w->dst].rx_floor &&
	       (uint64_t)p->h.len - p->sent > cap;
}

bool dp_budget_piece(struct dp *dp, uint32_t q, uint64_t now)
{
	struct dp_queue *w = &dp->queues[q];
	struct dp_cell *c = &dp->cells[w->dst];
	struct dp_pkt *p = &dp->pkts[w->head];

	if (!short_piece(dp, w, p))
		return true;
	roll(dp, c, now);
	if (c->piece_used < c->piece_budget) {
		c->piece_used++;
		return true;
	}
	/* The buffer goes back to the cell's spares (rx_get took it from there or
	 * from the ring with no spare left, so there is room), and the queue waits in
	 * the held heap for the cell's next period. */
	c->spare[c->n_spare++] = w->rx;
	c->st.chunks_over_budget++;
	p->release = period_start(dp, c->bud_period + 1);
	dp_queue_unplace(dp, q);
	dp_queue_place(dp, q, now);
	return false;
}

void dp_budget_unused(struct dp *dp, uint32_t cell)
{
	struct dp_cell *c = &dp->cells[cell];

	if (c->in_used)
		c->in_used--;
}

void dp_budget_reset(struct dp *dp, uint32_t cell)
{
	struct dp_cell *c = &dp->cells[cell];

	c->bud_period = period_of(dp, dp->now);
	c->in_used = c->piece_used = 0;
	c->in_waited = false;
	c->ctrl_period = c->bud_period;
	c->ctrl_used = 0;
}
