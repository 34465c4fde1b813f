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
 *
 * Where each part lives (dp_internal.h declares what they share):
 *  dataplane.c     create/destroy, attach/detach/kick, dp_run, statistics
 *  dp_ingest.c     the ingest pass: TX rings, header validation, per-pass limits
 *  dp_switch.c     CID/flow/connection tables, connection state, RST replies
 *  dp_police.c     the GCRA policer
 *  dp_dispatch.c   queues, ready and held heaps, RX waiters, purges at detach
 *  dp_copy_step.c  one chunk into an RX buffer (regulated), packet completion
 *  dp_copy.c       the byte-copy routines (`copy = normal | nt`)
 *  dp_pkt.c        packet slots, returning TX chains
 *  dp_budget.c     per-cell budgets per budget period (ingest, control, short pieces)
 *  dp_notify.c     notifications to cells, one decision per batch
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "dataplane.h"
#include "dp_internal.h"
#include "vq_ready.h"

/* ---------------------------------------------------------------- helpers ---- */

/* The data plane's clock: the hook's when set (tests, rtvio calibrate). */
uint64_t dp_clock(struct dp *dp)
{
	if (dp->hooks.now)
		return dp->hooks.now(dp->ctx);
	return rtvio_now_ns();
}

static uint32_t pow2_at_least(uint64_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/* ------------------------------------------------------- detach/break ---- */

static void detach(struct dp *dp, uint32_t cell, uint64_t now)
{
	struct dp_cell *c = &dp->cells[cell];

	if (!c->attached)
		return;
	/* From here on nothing touches this cell's rings or memory. */
	c->attached = false;
	dp_bit_clear(dp_core_of(dp, cell)->attmap, cell);
	for (uint32_t q = 0; q < dp->nqueues; q++)
		dp_queue_purge(dp, q, cell);
	c->n_spare = 0;
	while (c->waiters >= 0)
		dp_waiter_unlink(dp, (uint32_t)c->waiters);
	dp_conns_reset(dp, cell, now);
	/* Every TX slot of this cell is free again: all its packets are purged. */
	c->rx = c->tx = NULL;
}

void dp_cell_break(struct dp *dp, uint32_t cell, int err)
{
	struct dp_cell *c = &dp->cells[cell];

	if (!c->attached)
		return;
	if (dp->mc) {
		/* A core thread, other cores in the middle of steps: cut off by the
		 * loop thread once every core is between runs (dp_mc.c). */
		dp_mc_break_defer(dp, cell, err);
		return;
	}
	c->broken = true;
	detach(dp, cell, dp->now);
	if (dp->hooks.broken)
		dp->hooks.broken(dp->ctx, cell, err);
}

/* ------------------------------------------------------------- dp_run ---- */

/* A cell the loop thread cuts off for a core (dp_mc.c), with every core between
 * runs: what dp_cell_break does with one core. */
void dp_cell_break_now(struct dp *dp, uint32_t cell)
{
	struct dp_cell *c = &dp->cells[cell];

	if (!c->attached)
		return;
	dp->now = dp_clock(dp);
	detach(dp, cell, dp->now);
	if (dp->hooks.broken)
		dp->hooks.broken(dp->ctx, cell, c->mc_err);
}

uint64_t dp_next_wake(const struct dp *dp, const struct dp_core *k, uint64_t t)
{
	if (k->budget_wake && (!t || k->budget_wake < t))
		t = k->budget_wake;
	if (k->held.n && (!t || dp->queues[k->held.q[0]].k1 < t))
		t = dp->queues[k->held.q[0]].k1;
	return t;
}

/* One copy step of q with the notifications of its pushes deferred. They go out
 * (dp_notify_flush) when a real-time packet is delivered, so that its receiver and
 * sender hear of it at once, and when a queue found no RX buffer, so that the
 * destination hears of every buffer it has to take in before it can post more; the
 * rest, bulk pieces and their TX completions, when dp_run returns: one decision per
 * batch of at most DP_RUN_STEPS steps, not one per piece. */
static enum dp_step run_step(struct dp *dp, uint32_t q, uint64_t *now)
{
	bool rt = !dp->flows[dp->queues[q].flow].be;
	enum dp_step r;

	dp->notify_defer = true;
	r = dp_copy_step(dp, q, *now);
	if (r != DP_STEP_BLOCKED && r != DP_STEP_THROTTLED) {
		/* The one clock read per step, taken after it: a packet completed by this
		 * step is stamped with it, so residence includes its last copy (rtvio
		 * calibrate also times steps by these reads). */
		*now = dp_clock(dp);
		if (r == DP_STEP_DELIVERED)
			dp_pkt_done(dp, q, *now);
	}
	dp->notify_defer = false;
	if (r == DP_STEP_BLOCKED || (r == DP_STEP_DELIVERED && rt))
		dp_notify_flush(dp);
	return r;
}

static uint64_t run_steps(struct dp *dp, uint64_t now_ns)
{
	struct dp_core *k = &dp->core[0];
	uint64_t now = now_ns;
	unsigned int steps = 0;

	for (;;) {
		enum dp_step r;

		dp_ingest_pass(dp, k, now);
		if (!k->ready.n)
			break;
		/* More is ready: the call's own start time says "at once" (the clock
		 * has moved on during the steps; a later time would read as a wait). */
		if (steps == DP_RUN_STEPS)
			return now_ns;
		r = run_step(dp, k->ready.q[0], &now);
		if (r == DP_STEP_THROTTLED)
			return dp_next_wake(dp, k, reg_next_ns(&k->reg));
		if (r != DP_STEP_BLOCKED)
			steps++;
	}
	if (k->ingest_more)
		return now_ns;
	return dp_next_wake(dp, k, 0);
}

uint64_t dp_run(struct dp *dp, uint64_t now_ns)
{
	uint64_t next;

	if (dp->mc)
		return dp_mc_service(dp);
	next = run_steps(dp, now_ns);

	dp_notify_flush(dp);
	return next;
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
	dp_ctl_lock(dp);
	c->rx = rx;
	c->tx = tx;
	c->attached = true;
	c->break_err = 0;
	c->tx_armed = true;
	atomic_store_explicit(&c->mem_wait, false, memory_order_relaxed);
	c->tx_empty_at = dp->now;
	dp_bit_set(dp_core_of(dp, cell)->attmap, cell);
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
	dp_ctl_unlock(dp);
	return 0;
}

void dp_detach(struct dp *dp, unsigned int cell)
{
	if (cell < dp->ncells) {
		dp_ctl_lock(dp);
		dp->now = dp_clock(dp);
		detach(dp, cell, dp->now);
		dp_ctl_unlock(dp);
	}
}

void dp_kick(struct dp *dp, unsigned int cell, unsigned int queue)
{
	/* Every pass looks at every attached ring (one index read each), so a kick
	 * carries no information the pass would not find itself; with several cores
	 * it wakes the core that owns the cell, should it sleep. */
	(void)queue;
	if (dp->mc && cell < dp->ncells)
		dp_mc_wake(dp, dp->cell_core[cell]);
}

void dp_mem_wait(struct dp *dp, uint32_t s, const struct vq_device *vq)
{
	struct dp_cell *c = &dp->cells[s];

	c->st.mem_waits++;
	atomic_store_explicit(&c->mem_wait, true, memory_order_relaxed);
	/* The want is a release store (vq_ready.h): the flag above is set before the
	 * memory thread can see the request, and so before the loop clears it. In by
	 * now (the thread finished it after the chain's look, before it saw the
	 * request, and tells nobody): the cell waits for nothing, and its core makes
	 * another pass, which looks at its rings again. */
	if (vq_mem_want(vq->mem, vq->n_mem, vq->want, vq->want_len)) {
		atomic_store_explicit(&c->mem_wait, false, memory_order_relaxed);
		dp_core_of(dp, s)->ingest_more = true;
	}
}

bool dp_mem_waits(const struct dp *dp, uint32_t s)
{
	/* Acquire: pairs with dp_mem_ready's release, after which the granules the
	 * memory thread reported are seen in. */
	return atomic_load_explicit(&dp->cells[s].mem_wait, memory_order_acquire);
}

void dp_mem_ready(struct dp *dp, unsigned int cell)
{
	/* Release: the loop heard of the granules through the thread's eventfd; the
	 * core that sees the flag clear sees them in. A cell that waits for nothing
	 * costs no wake-up. */
	if (cell < dp->ncells && atomic_exchange_explicit(&dp->cells[cell].mem_wait, false,
							  memory_order_acq_rel))
		dp_kick(dp, cell, 0);
}

/* ------------------------------------------------------- create/destroy ---- */

/* Ranks and classes are the model's (model/model.h), which the analysis reads too. */
void dp_flow_rank(struct dp *dp, uint32_t f)
{
	struct model_flow mf;

	model_flow_key(&dp->cfg->flows[f], &mf);
	dp->flows[f].rank_hi = mf.rank_hi;
	dp->flows[f].rank_lo = mf.rank_lo;
	dp->flows[f].be = mf.cls == MODEL_BEST_EFFORT;
}

static void rank_flows(struct dp *dp)
{
	for (uint32_t i = 0; i < dp->nflows; i++)
		if (!dp->cfg->flows[i].vacant)
			dp_flow_rank(dp, i);
	/* The implicit class: below every configured flow (model.h). */
	dp->flows[dp->nflows].rank_hi = UINT64_MAX;
	dp->flows[dp->nflows].rank_lo = 0;
	dp->flows[dp->nflows].be = true;
}

/* What the data plane relies on and the config loader may not have checked (a
 * config built in code, as the tests and rtvio calibrate build theirs). */
static bool config_ok(const struct rtvio_config *cfg)
{
	if (cfg->ncells <= 0 || cfg->ncells > (int)DP_MAX_CELLS || cfg->nflows < 0 ||
	    !cfg->broker.chunk || cfg->broker.chunk > UINT32_MAX)
		return false;
	for (int i = 0; i < cfg->nflows; i++)
		if (!cfg->flows[i].vacant && !cfg->flows[i].best_effort &&
		    (!cfg->flows[i].size || !cfg->flows[i].period_ns))
			return false;
	return true;
}

/* Sizes every object from the config and allocates it: the only allocation the
 * data plane makes. */
static int alloc_objects(struct dp *dp)
{
	uint32_t npkts;

	dp->ncells = (uint32_t)dp->cfg->ncells;
	dp->nflows = (uint32_t)dp->cfg->nflows;
	dp->nqueues = 2 * dp->nflows + dp->ncells;
	/* A free slot (a cell added at run time) holds the default share; a cell with
	 * more is admitted only while the table has room (dp_tables.c). */
	dp->nconns = 0;
	for (uint32_t i = 0; i < dp->ncells; i++)
		dp->nconns += dp->cfg->cells[i].vacant ? RTVIO_CONNECTIONS_DEFAULT :
							  model_cell_connections(dp->cfg, (int)i);
	dp->nsyn = 2 * dp->nconns; /* each entry's RSTs toward its two ends */
	npkts = dp->ncells * DP_TX_SLOTS + dp->nsyn;
	dp->cid_hash_size = pow2_at_least(2 * (uint64_t)dp->ncells);
	dp->flow_hash_size = pow2_at_least(2 * (uint64_t)dp->nflows + 2);
	dp->conn_hash_size = pow2_at_least(2 * (uint64_t)dp->nconns);

	dp->ncores = dp->cfg->broker.ncores > 1 ? (uint32_t)dp->cfg->broker.ncores : 1;
	dp->core = calloc(dp->ncores, sizeof(*dp->core));
	dp->cell_core = calloc(dp->ncells, sizeof(*dp->cell_core));
	if (!dp->core || !dp->cell_core)
		return -ENOMEM;
	for (uint32_t k = 0; k < dp->ncores; k++) {
		struct dp_core *c = &dp->core[k];

		c->ready.q = calloc(dp->nqueues, sizeof(uint32_t));
		c->held.q = calloc(dp->nqueues, sizeof(uint32_t));
		c->attmap = calloc(dp->ncells / 64 + 1, sizeof(uint64_t));
		c->waitmap = calloc(dp->ncells / 64 + 1, sizeof(uint64_t));
		if (!c->ready.q || !c->held.q || !c->attmap || !c->waitmap)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < dp->ncells; i++)
		dp->cell_core[i] = (uint32_t)model_cell_core(dp->cfg, (int)i);
	dp->cells = calloc(dp->ncells, sizeof(*dp->cells));
	dp->flows = calloc(dp->nflows + 1, sizeof(*dp->flows));
	dp->queues = calloc(dp->nqueues, sizeof(*dp->queues));
	dp->pkts = calloc(npkts, sizeof(*dp->pkts));
	dp->conns = calloc(dp->nconns, sizeof(*dp->conns));
	dp->notemap = calloc((2 * dp->ncells + 63) / 64, sizeof(uint64_t));
	dp->notify_core = DP_NOTE_AT_ONCE;
	dp->cid_hash = malloc(dp->cid_hash_size * sizeof(int32_t));
	dp->flow_hash = malloc(dp->flow_hash_size * sizeof(int32_t));
	dp->conn_hash = malloc(dp->conn_hash_size * sizeof(int32_t));
	if (!dp->cells || !dp->flows || !dp->queues || !dp->pkts || !dp->conns ||
	    !dp->notemap || !dp->cid_hash || !dp->flow_hash || !dp->conn_hash)
		return -ENOMEM;
	memset(dp->cid_hash, 0xff, dp->cid_hash_size * sizeof(int32_t));
	memset(dp->flow_hash, 0xff, dp->flow_hash_size * sizeof(int32_t));
	memset(dp->conn_hash, 0xff, dp->conn_hash_size * sizeof(int32_t));
	return 0;
}

/* Cells into the CID table, each with its free list of DP_TX_SLOTS packet slots of
 * which it may hold its ingest budget at once (the analysis charges exactly that many
 * per cell; a cell that posts more waits on its own ring); then the synthetic slots,
 * two per connection-table entry (dp_conn_rst_slot), on no free list. */
static int init_cells(struct dp *dp)
{
	for (uint32_t i = 0; i < dp->ncells; i++) {
		struct dp_cell *c = &dp->cells[i];

		c->waiters = -1;
		if (!dp->cfg->cells[i].vacant) {
			c->cid = dp->cfg->cells[i].cid;
			c->conn_limit = model_cell_connections(dp->cfg, (int)i);
			if (dp_cid_table_add(dp, i))
				return -EINVAL;
		}
		c->tx_free = -1;
		for (uint32_t j = 0; j < DP_TX_SLOTS; j++) {
			int32_t pi = (int32_t)(i * DP_TX_SLOTS + j);

			dp->pkts[pi].src = i;
			dp->pkts[pi].next = c->tx_free;
			c->tx_free = pi;
		}
	}
	for (uint32_t j = 0; j < dp->nsyn; j++) {
		int32_t pi = (int32_t)(dp->ncells * DP_TX_SLOTS + j);

		dp->pkts[pi].synthetic = true;
		dp->pkts[pi].next = -1;
	}
	return 0;
}

/* Queues empty and unplaced, each with its flow and destination (dp_queue_of's
 * numbering); every connection on the free list. */
static void init_queues_conns(struct dp *dp)
{
	for (uint32_t q = 0; q < dp->nqueues; q++) {
		struct dp_queue *w = &dp->queues[q];

		w->head = w->tail = -1;
		w->pos = w->wnext = w->wprev = -1;
		if (q < 2 * dp->nflows) {
			w->flow = q / 2;
			dp_flow_queue_ends(dp, q / 2);
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
}

/* A core's share of the regulated budget: never 0 (which would read as unregulated). */
static uint64_t reg_share(uint64_t budget, uint32_t ncores)
{
	return budget && budget < ncores ? 1 : budget / ncores;
}

/* Everything after allocation; any error leaves dp for dp_destroy. */
static int init_objects(struct dp *dp)
{
	int ret = alloc_objects(dp);

	if (!ret)
		ret = init_cells(dp);
	if (!ret)
		dp_cells_budget(dp);
	for (uint32_t f = 0; !ret && f < dp->nflows; f++)
		if (!dp->cfg->flows[f].vacant)
			ret = dp_flow_table_add(dp, f);
	if (ret)
		return ret;
	rank_flows(dp);
	init_queues_conns(dp);
	dp->budget_period = model_budget_period(dp->cfg);
	dp->budget_t0 = dp_clock(dp);
	/* The DRAM budget in equal fixed shares: no core can spend another's. */
	for (uint32_t k = 0; k < dp->ncores; k++)
		if (reg_init(&dp->core[k].reg, reg_share(dp->cfg->broker.regulation_budget, dp->ncores),
			     dp->cfg->broker.regulation_period_ns, dp->budget_t0))
			return -EINVAL;
	dp_reg_reserve_update(dp);
	return dp_mc_create(dp);
}

int dp_create(const struct rtvio_config *cfg, const struct dp_hooks *hooks, void *ctx,
	      struct dp **out)
{
	struct dp *dp;
	int ret;

	*out = NULL;
	if (!config_ok(cfg))
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
	ret = init_objects(dp);
	if (ret) {
		dp_destroy(dp);
		return ret;
	}
	*out = dp;
	return 0;
}

void dp_destroy(struct dp *dp)
{
	if (!dp)
		return;
	dp_mc_destroy(dp);
	for (uint32_t k = 0; dp->core && k < dp->ncores; k++) {
		free(dp->core[k].ready.q);
		free(dp->core[k].held.q);
		free(dp->core[k].attmap);
		free(dp->core[k].waitmap);
	}
	free(dp->core);
	free(dp->cell_core);
	free(dp->cells);
	free(dp->flows);
	free(dp->queues);
	free(dp->pkts);
	free(dp->conns);
	free(dp->notemap);
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
		return dp->cfg->flows[flow].vacant ? NULL : dp->cfg->flows[flow].name;
	return flow == dp->nflows ? "best-effort" : NULL;
}

int dp_stats_cell(const struct dp *dp, unsigned int cell, struct dp_cell_stats *out)
{
	const struct dp_cell *c;

	if (cell >= dp->ncells)
		return -EINVAL;
	c = &dp->cells[cell];
	dp_ctl_lock(dp);
	*out = c->st;
	out->attached = c->attached;
	out->broken = c->broken;
	out->refused = c->refused;
	out->resets = c->resets;
	out->conn_limit_refusals = c->conn_limit_refusals;
	dp_ctl_unlock(dp);
	return 0;
}

int dp_stats_flow(const struct dp *dp, unsigned int flow, struct dp_flow_stats *out)
{
	const struct dp_flow *f;

	if (flow > dp->nflows)
		return -EINVAL;
	f = &dp->flows[flow];
	dp_ctl_lock(dp);
	*out = f->st;
	out->policed = f->policed;
	out->oversize = f->oversize;
	out->queued = f->queued;
	out->connections = f->connections;
	dp_ctl_unlock(dp);
	return 0;
}

/* Summed over the cores: the budget is the configured one (each core holds its
 * share), throttling counted per core. */
void dp_stats_reg(const struct dp *dp, struct dp_reg_stats *out)
{
	*out = (struct dp_reg_stats){ .period_ns = dp->cfg->broker.regulation_period_ns };
	dp_ctl_lock(dp);
	for (uint32_t k = 0; k < dp->ncores; k++) {
		struct regulator r = dp->core[k].reg;

		/* Settle a throttled period that has ended, on a copy: stats never move
		 * the regulator itself. */
		reg_advance(&r, dp->now);
		out->budget += r.budget;
		out->period_ns = r.period_ns;
		out->bytes += dp->core[k].reg_bytes;
		out->throttled_periods += r.throttled_periods;
		out->throttled_ns += r.throttled_ns;
		out->reserve += dp->core[k].reg_reserve;
		out->be_waits += dp->core[k].reg_be_waits;
	}
	dp_ctl_unlock(dp);
}
