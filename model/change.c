/* What applying one run-time change may cost the broker's loop (model.h; docs/
 * analysis.md, "Run-time changes"). The apply step (broker/admit.c, between two
 * data-plane runs) adds or removes cells and flows one at a time, and each of those
 * visits at most every slot of the tables sized for the capacity (broker/dp_tables.c:
 * the ingest budgets, every cell against every flow; a hash rebuild over the cells and
 * flows; a scan of the connection table). */
#include "config.h"
#include "model.h"

static uint64_t cells_capacity(const struct rtvio_config *cfg)
{
	int n = cfg->broker.max_cells > cfg->ncells ? cfg->broker.max_cells : cfg->ncells;

	return n > 0 ? (uint64_t)n : 0;
}

static uint64_t flows_capacity(const struct rtvio_config *cfg)
{
	int n = cfg->broker.max_flows > cfg->nflows ? cfg->broker.max_flows : cfg->nflows;

	return n > 0 ? (uint64_t)n : 0;
}

/* Connection-table entries: every cell's share, and the default share of every
 * vacant slot (what the data plane sizes its table for). */
static uint64_t conn_capacity(const struct rtvio_config *cfg)
{
	uint64_t n = 0;

	for (int i = 0; i < cfg->ncells; i++)
		n += cfg->cells[i].vacant ? RTVIO_CONNECTIONS_DEFAULT : model_cell_connections(cfg, i);
	return n + (cells_capacity(cfg) - (uint64_t)cfg->ncells) * RTVIO_CONNECTIONS_DEFAULT;
}

uint64_t model_change_op_slots(const struct rtvio_config *cfg)
{
	uint64_t c = cells_capacity(cfg), f = flows_capacity(cfg);

	return c * f + c + f + conn_capacity(cfg);
}

uint64_t model_change_slots(const struct rtvio_config *cfg)
{
	return (cells_capacity(cfg) + flows_capacity(cfg)) * model_change_op_slots(cfg);
}
