/* A loaded configuration and its model -> the analysis's input (from_config.h). */
#include <string.h>

#include "config.h"
#include "an_vhu_config.h"
#include "from_config.h"
#include "model.h"

enum an_policy an_policy_of_config(const struct rtvio_config *cfg)
{
	switch (cfg->broker.policy) {
	case RTVIO_POLICY_EDF:
		return AN_EDF;
	case RTVIO_POLICY_FIFO:
		return AN_FIFO;
	case RTVIO_POLICY_FP:
		break;
	}
	return AN_FP;
}

static void broker_of(const struct rtvio_config *cfg, const struct model *m,
		      const struct rtvio_platform_cfg *plat, struct an_broker *b)
{
	memset(b, 0, sizeof(*b));
	b->policy = an_policy_of_config(cfg);
	b->chunk = cfg->broker.chunk;
	b->reg_budget = cfg->broker.regulation_budget;
	b->reg_period = cfg->broker.regulation_period_ns;
	b->plat.copy_bandwidth = plat->copy_bandwidth;
	b->plat.chunk_overhead = plat->chunk_overhead;
	b->plat.packet_overhead = plat->packet_overhead;
	b->plat.ingest_latency = plat->ingest_latency;
	b->plat.notify_latency = plat->notify_latency;
	b->plat.ingest_packet = model_ingest_packet_ns(plat->ingest_step);
	b->plat.batch_gap = plat->batch_gap;
	b->tx_slots = m->pools.tx_slots;
	b->run_steps = m->pools.run_steps;
	an_vhu_of_config(cfg, plat, &b->vhu);
}

/* The sizes and rank every flow entry takes from the model. */
static void model_part(const struct model_flow *mf, struct an_flow *f)
{
	f->best_effort = mf->cls == MODEL_BEST_EFFORT;
	f->rx_payload = mf->rx_payload;
	f->rx_max = mf->rx_max;
	f->packet_size = mf->packet_size;
	f->priority = mf->rank;
}

static void flow_of(const struct rtvio_flow_cfg *fc, const struct model_flow *mf,
		    struct an_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->name = fc->name;
	f->type = fc->type == RTVIO_STREAM ? AN_STREAM : AN_SEQPACKET;
	f->size = fc->size;
	f->period = fc->period_ns;
	f->deadline = fc->deadline_ns;
	f->jitter = fc->jitter_ns;
	model_part(mf, f);
}

/* Connections no flow names: one more lowest-band flow toward any cell, whose
 * messages are single packets of a chunk (its sizes are not enforced anyway). */
static void default_class_of(const struct rtvio_config *cfg, const struct model_flow *mf,
			     struct an_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->name = AN_DEFAULT_CLASS_NAME;
	f->type = AN_SEQPACKET;
	f->size = cfg->broker.chunk;
	model_part(mf, f);
}

size_t an_input_from_config(const struct rtvio_config *cfg, const struct model *m,
			    const struct rtvio_platform_cfg *plat, struct an_broker *b,
			    struct an_flow *fl)
{
	size_t n = (size_t)cfg->nflows;

	broker_of(cfg, m, plat, b);
	for (size_t i = 0; i < n; i++)
		flow_of(&cfg->flows[i], &m->flows[i], &fl[i]);
	if (!cfg->broker.default_best_effort)
		return n;
	default_class_of(cfg, &m->flows[n], &fl[n]);
	return n + 1;
}
