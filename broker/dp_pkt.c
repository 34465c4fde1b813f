/* The data plane's packet slots: DP_TX_SLOTS per cell for TX chains in flight, and
 * the broker-made RSTs (two per connection-table entry, dp_conn_rst_slot); and giving
 * a sender its TX chain back once its packet is done. */
#include "dp_internal.h"

/* A slot for one of cell's TX chains, or -1: none free, or the cell holds its whole
 * ingest budget (the rest waits on its own ring). */
int32_t dp_pkt_alloc_tx(struct dp *dp, uint32_t cell)
{
	struct dp_cell *c = &dp->cells[cell];
	int32_t pi = c->tx_free;

	if (pi < 0 || c->tx_held >= c->tx_budget)
		return -1;
	c->tx_free = dp->pkts[pi].next;
	c->tx_held++;
	return pi;
}

void dp_config_changed(struct dp *dp)
{
	dp_ctl_lock(dp);
	dp_cells_budget(dp);
	dp_reg_reserve_update(dp);
	dp_ctl_unlock(dp);
}

void dp_cells_budget(struct dp *dp)
{
	dp_budget_cells(dp);
}

void dp_pkt_free(struct dp *dp, int32_t pi)
{
	struct dp_pkt *p = &dp->pkts[pi];

	if (p->synthetic) {
		/* The RST its connection entry owned: one end of it is told. */
		p->next = -1;
		dp_conn_told(dp, (int32_t)((uint32_t)pi - dp->ncells * DP_TX_SLOTS) / 2);
	} else {
		p->next = dp->cells[p->src].tx_free;
		dp->cells[p->src].tx_free = pi;
		dp->cells[p->src].tx_held--;
	}
}

/* Returns the sender's TX chain: its packet is done (delivered, or answered). The used
 * element is published with its batch (dp_notify). */
void dp_pkt_complete_tx(struct dp *dp, struct dp_pkt *p)
{
	struct dp_cell *c = &dp->cells[p->src];
	int err;

	if (p->synthetic || !c->attached)
		return;
	err = vq_device_add_used(c->tx, p->head, 0);
	/* Called in the middle of queue surgery (completion, purges): a failure is
	 * acted on at the next pass's start, never from here. */
	if (err)
		c->break_err = err;
	else
		dp_notify(dp, p->src, DP_QUEUE_TX, c->tx);
}
