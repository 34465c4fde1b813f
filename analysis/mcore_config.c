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

int an_mcore_from_config(const struct rtvio_config *cfg, size_t n, struct an_mcore_input *in)
{
	uint32_t m = cfg->broker.ncores > 0 ? (uint32_t)cfg->broker.ncores : 1;

	in->core = calloc(n ? n : 1, sizeof(*in->core));
	in->credit_core = calloc(n ? n : 1, sizeof(*in->credit_core));
	in->tx_slots = calloc(m, sizeof(*in->tx_slots));
	if (!in->core || !in->credit_core || !in->tx_slots) {
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
	/* [broker] copy_slots: k of the copy's k-exclusion lock (1..m, m when absent). */
	in->mc = (struct an_mcore){ .ncores = m, .copy_slots = (uint32_t)cfg->broker.copy_slots,
				    .core = in->core,
				    .credit_core = in->credit_core, .tx_slots = in->tx_slots };
	return 0;
}

void an_mcore_input_free(struct an_mcore_input *in)
{
	free(in->core);
	free(in->credit_core);
	free(in->tx_slots);
	in->core = in->credit_core = NULL;
	in->tx_slots = NULL;
}
