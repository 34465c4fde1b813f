/* Cells and flows that join or leave a running data plane (dataplane.h, "Run-time
 * changes"). The objects were sized at create for the configured capacity
 * ([broker] max_cells, max_flows), so a change only fills or frees slots that exist
 * and updates the hashes: nothing is allocated, and each call's work is bounded by
 * the capacity (a hash rebuild, one scan of the connection table). The daemon calls
 * these between dp_run calls, in the data-path thread, as it calls dp_attach; with
 * several cores each call holds the control path's lock (dp_ctl_lock). */
#include <errno.h>
#include <string.h>

#include "clock.h"
#include "dp_internal.h"

void dp_flow_queue_ends(struct dp *dp, uint32_t f)
{
	const struct rtvio_flow_cfg *fc = &dp->cfg->flows[f];

	dp->queues[2 * f].dst = fc->vacant ? 0 : (uint32_t)fc->to;
	dp->queues[2 * f + 1].dst = fc->vacant ? 0 : (uint32_t)fc->from;
}

/* Connection-table entries every slot's share leaves over. A slot holds its cell's
 * `connections`, or more while entries charged to it wait to tell a peer of a reset
 * (nconn: a removed cell's, or the previous occupant's; dp_switch.c): every cell can
 * then always open its whole share, as the table never holds more than the shares. */
static uint32_t conn_room(const struct dp *dp)
{
	uint64_t held = 0;

	for (uint32_t i = 0; i < dp->ncells; i++) {
		const struct dp_cell *c = &dp->cells[i];
		uint32_t limit = dp->cfg->cells[i].vacant ? 0 : c->conn_limit;

		held += c->nconn > limit ? c->nconn : limit;
	}
	return held >= dp->nconns ? 0 : (uint32_t)(dp->nconns - held);
}

static int cell_add(struct dp *dp, unsigned int cell)
{
	const struct rtvio_cell_cfg *cc;
	struct dp_cell *c;
	uint32_t limit;

	if (cell >= dp->ncells || dp->cfg->cells[cell].vacant)
		return -EINVAL;
	cc = &dp->cfg->cells[cell];
	c = &dp->cells[cell];
	if (c->attached)
		return -EBUSY;
	limit = model_cell_connections(dp->cfg, (int)cell);
	/* A vacant slot holds no share: the room must cover the whole limit (the slot
	 * is no longer vacant in the configuration, so its stale limit is cleared),
	 * less the entries still charged to the slot (a removed cell's resets not yet
	 * told): the new cell inherits them in its count, as a re-attached cell keeps
	 * its own, and opens connections as they are freed. */
	c->conn_limit = 0;
	if (limit > conn_room(dp) + c->nconn)
		return -ENOSPC;
	c->cid = cc->cid;
	c->conn_limit = limit;
	dp->cell_core[cell] = (uint32_t)model_cell_core(dp->cfg, (int)cell);
	c->broken = false;
	c->conn_limit_refusals = c->conn_limit_told = 0;
	c->refused = c->resets = 0;
	memset(&c->st, 0, sizeof(c->st));
	dp_budget_reset(dp, cell);
	if (dp_cid_table_add(dp, cell)) {
		c->conn_limit = 0;
		return -EEXIST;
	}
	dp_cells_budget(dp);
	return 0;
}

static void cell_remove(struct dp *dp, unsigned int cell)
{
	if (cell >= dp->ncells)
		return;
	/* Its connections are reset toward their peers and its packets returned. */
	dp_detach(dp, cell);
	dp_tables_rehash(dp, cell, UINT32_MAX);
	dp->cells[cell].conn_limit = 0;
	dp->cells[cell].cid = 0;
	dp_cells_budget(dp);
}

static int flow_add(struct dp *dp, unsigned int f)
{
	struct dp_flow *fl;
	int ret;

	if (f >= dp->nflows || dp->cfg->flows[f].vacant)
		return -EINVAL;
	fl = &dp->flows[f];
	if (fl->queued || fl->connections || dp->queues[2 * f].head >= 0 ||
	    dp->queues[2 * f + 1].head >= 0)
		return -EBUSY;
	dp_flow_queue_ends(dp, f);
	ret = dp_flow_table_add(dp, f);
	if (ret)
		return ret;
	dp_flow_rank(dp, f);
	fl->policed = 0;
	memset(&fl->st, 0, sizeof(fl->st));
	dp_cells_budget(dp);
	return 0;
}

static void flow_remove(struct dp *dp, unsigned int f)
{
	if (f >= dp->nflows)
		return;
	dp->now = dp->hooks.now ? dp->hooks.now(dp->ctx) : rtvio_now_ns();
	dp_flow_conns_reset(dp, f, dp->now);
	dp_queue_purge_all(dp, 2 * f);
	dp_queue_purge_all(dp, 2 * f + 1);
	dp_tables_rehash(dp, UINT32_MAX, f);
	dp_cells_budget(dp);
}

int dp_cell_add(struct dp *dp, unsigned int cell)
{
	int ret;

	dp_ctl_lock(dp);
	ret = cell_add(dp, cell);
	dp_ctl_unlock(dp);
	return ret;
}

void dp_cell_remove(struct dp *dp, unsigned int cell)
{
	dp_ctl_lock(dp);
	cell_remove(dp, cell);
	dp_ctl_unlock(dp);
}

int dp_flow_add(struct dp *dp, unsigned int f)
{
	int ret;

	dp_ctl_lock(dp);
	ret = flow_add(dp, f);
	dp_ctl_unlock(dp);
	return ret;
}

void dp_flow_remove(struct dp *dp, unsigned int f)
{
	dp_ctl_lock(dp);
	flow_remove(dp, f);
	dp_ctl_unlock(dp);
}

uint32_t dp_conn_room(const struct dp *dp)
{
	uint32_t room;

	dp_ctl_lock(dp);
	room = conn_room(dp);
	dp_ctl_unlock(dp);
	return room;
}
