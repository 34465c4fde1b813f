/* A loaded configuration's cores -> struct an_mcore (mcore_config.h). */
#include "mcore_config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "config.h"
#include "model.h"

/* TX slots of cell c as the data plane gives them (model.c size_pools). */
static uint64_t cell_slots(const struct rtvio_config *cfg, int c)
{
	return MODEL_INGEST_BUDGETS ? model_cell_ingest_budget(cfg, c) : MODEL_TX_SLOTS;
}

static uint32_t cell_core(const struct rtvio_config *cfg, int c)
{
	return c >= 0 && c < cfg->ncells ? (uint32_t)model_cell_core(cfg, c) : AN_ANY_CORE;
}

/* Whether flow a is a better ride than flow b (-1: none yet): the better rank, or
 * under edf the shorter deadline (from_config.c, ride_flow, on one core). */
static bool better_ride(const struct rtvio_config *cfg, const struct model *m, int a, int b)
{
	if (b < 0)
		return true;
	if (cfg->broker.policy == RTVIO_POLICY_EDF)
		return cfg->flows[a].deadline_ns < cfg->flows[b].deadline_ns;
	return m->flows[a].rank < m->flows[b].rank;
}

/* The real-time flow of cell c whose rank its control packets take on core k: of
 * the flows c is an end of whose other end is on k (a control packet goes to the
 * other end, whose core delivers it), the best; -1 for none. to_only: the flows
 * toward c (its short pieces, which c's own core delivers). */
static int ride_on(const struct rtvio_config *cfg, const struct model *m, int c,
		   uint32_t k, bool to_only)
{
	int best = -1;

	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];
		int peer = f->from == c ? f->to : f->from;

		if (f->vacant || f->best_effort || (f->to != c && (to_only || f->from != c)))
			continue;
		if (to_only)
			peer = c;
		if (cell_core(cfg, peer) != k || !better_ride(cfg, m, i, best))
			continue;
		best = i;
	}
	return best;
}

/* Every cell's budgets onto its core (ingest) and onto the flows they ride on the
 * cores that deliver them. A cell may spend its whole control budget toward any one
 * peer, so each core with a peer of it is charged all of it. */
static void budgets_by_core(const struct rtvio_config *cfg, const struct model *m, size_t n,
			    uint32_t ncores, struct an_mcore_input *in)
{
	for (int c = 0; c < cfg->ncells; c++) {
		struct model_cell_budget mb;
		int r;

		if (cfg->cells[c].vacant)
			continue;
		model_cell_budgets(cfg, c, &mb);
		in->budget_ingest[model_cell_core(cfg, c)] += mb.ingest;
		for (uint32_t k = 0; k < ncores; k++) {
			r = ride_on(cfg, m, c, k, false);
			if (r >= 0)
				in->ride_ctrl[(size_t)k * n + (size_t)r] += mb.ctrl;
		}
		r = ride_on(cfg, m, c, cell_core(cfg, c), true);
		if (r >= 0)
			in->ride_pieces[(size_t)cell_core(cfg, c) * n + (size_t)r] += mb.pieces;
	}
}

int an_mcore_from_config(const struct rtvio_config *cfg, const struct model *m, size_t n,
			 struct an_mcore_input *in)
{
	uint32_t nc = cfg->broker.ncores > 0 ? (uint32_t)cfg->broker.ncores : 1;
	bool budgets = nc > 1 && m->pools.budget_period;

	*in = (struct an_mcore_input){ 0 };
	in->core = calloc(n ? n : 1, sizeof(*in->core));
	in->credit_core = calloc(n ? n : 1, sizeof(*in->credit_core));
	in->tx_slots = calloc(nc, sizeof(*in->tx_slots));
	if (budgets) {
		in->budget_ingest = calloc(nc, sizeof(*in->budget_ingest));
		in->ride_ctrl = calloc((size_t)nc * (n ? n : 1), sizeof(*in->ride_ctrl));
		in->ride_pieces = calloc((size_t)nc * (n ? n : 1), sizeof(*in->ride_pieces));
	}
	if (!in->core || !in->credit_core || !in->tx_slots ||
	    (budgets && (!in->budget_ingest || !in->ride_ctrl || !in->ride_pieces))) {
		an_mcore_input_free(in);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		bool cfg_flow = i < (size_t)cfg->nflows;

		in->core[i] = cfg_flow ? cell_core(cfg, cfg->flows[i].to) : AN_ANY_CORE;
		in->credit_core[i] = cfg_flow ? cell_core(cfg, cfg->flows[i].from) : AN_ANY_CORE;
	}
	for (int c = 0; c < cfg->ncells; c++)
		in->tx_slots[model_cell_core(cfg, c)] += cell_slots(cfg, c);
	if (budgets)
		budgets_by_core(cfg, m, n, nc, in);
	/* [broker] copy_slots: k of the copy's k-exclusion lock (1..m, m when absent). */
	in->mc = (struct an_mcore){ .ncores = nc, .copy_slots = (uint32_t)cfg->broker.copy_slots,
				    .core = in->core,
				    .credit_core = in->credit_core, .tx_slots = in->tx_slots,
				    .budget_ingest = in->budget_ingest, .ride_ctrl = in->ride_ctrl,
				    .ride_pieces = in->ride_pieces,
				    .write_spacing = model_write_spacing(cfg) };
	return 0;
}

void an_mcore_input_free(struct an_mcore_input *in)
{
	free(in->core);
	free(in->credit_core);
	free(in->tx_slots);
	free(in->budget_ingest);
	free(in->ride_ctrl);
	free(in->ride_pieces);
	*in = (struct an_mcore_input){ 0 };
}
