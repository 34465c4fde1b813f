/* Which data-plane core serves which cell ([broker] cpus, docs/broker.md "Several
 * cores"). A core owns the destinations assigned to it: the flows, and the replies,
 * delivered into a cell are dispatched by that cell's core. The analysis charges each
 * flow on the core this says, so the data plane and `rtvio analyze` agree. */
#include "model.h"

#include "config.h"

static int ncores(const struct rtvio_config *cfg)
{
	return cfg->broker.ncores > 0 ? cfg->broker.ncores : 1;
}

/* A cell's broker_core when given; otherwise cells are dealt to the cores by their
 * index (slot) in the configuration, which a run-time change never moves. */
int model_cell_core(const struct rtvio_config *cfg, int c)
{
	int k = cfg->cells[c].broker_core;

	return k >= 0 && k < ncores(cfg) ? k : c % ncores(cfg);
}

int model_cell_over_core(const struct rtvio_config *cfg)
{
	const struct rtvio_broker_cfg *b = &cfg->broker;

	for (int c = 0; c < cfg->ncells; c++) {
		const struct rtvio_cell_cfg *cc = &cfg->cells[c];

		if (cc->vacant || cc->cpu < 0 ||
		    (b->rt_priority > 0 && cc->rt_priority < b->rt_priority))
			continue;
		for (int k = 0; k < ncores(cfg); k++)
			if (b->cpus[k] == cc->cpu)
				return c;
	}
	return -1;
}

int model_flow_core(const struct rtvio_config *cfg, int f)
{
	return model_cell_core(cfg, cfg->flows[f].to);
}
