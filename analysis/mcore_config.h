/* The several-core part of the analysis's input for a loaded configuration
 * ([broker] cpus, [cell] broker_core): each flow's core through the broker's model
 * (model_flow_core, the core the data plane dispatches it on), the core of its
 * sender (which delivers its credit updates), and the TX slots of the cells each
 * core owns and ingests; with the cells' budgets, each core's share of them (its
 * cells' ingest, and the control packets and short pieces it delivers, each at the
 * rank of the flow it rides there). */
#ifndef RTVIO_ANALYSIS_MCORE_CONFIG_H
#define RTVIO_ANALYSIS_MCORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "an_mcore.h"

struct model;
struct rtvio_config;

struct an_mcore_input {
	struct an_mcore mc;   /* points into the arrays below */
	uint32_t *core, *credit_core;
	uint64_t *tx_slots;
	uint64_t *budget_ingest, *ride_ctrl, *ride_pieces; /* NULL without budgets */
};

/* Fills in for the n analysis entries an_input_from_config made from cfg and its
 * model m (the configured flows, then the default best-effort class, which may go to
 * any core). Returns 0 or -ENOMEM; release with an_mcore_input_free. */
int an_mcore_from_config(const struct rtvio_config *cfg, const struct model *m, size_t n,
			 struct an_mcore_input *in);
void an_mcore_input_free(struct an_mcore_input *in);

#endif
