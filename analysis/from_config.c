/* A loaded configuration and its model -> the analysis's input (from_config.h). */
#include <stdint.h>
#include <string.h>

#include "an_arith.h"
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

/* The longest apply step of a run-time change at the configuration's capacity:
 * every slot visit it may make, priced by the platform's change_step. */
static uint64_t change_apply_of(const struct rtvio_config *cfg,
				const struct rtvio_platform_cfg *plat)
{
	uint64_t slots = model_change_slots(cfg);

	if (!(plat->present & RTVIO_PLAT_CHANGE_STEP))
		return 0;
	return plat->change_step && slots > UINT64_MAX / plat->change_step
		       ? UINT64_MAX : slots * plat->change_step;
}

static void broker_of(const struct rtvio_config *cfg, const struct model *m,
		      const struct rtvio_platform_cfg *plat, struct an_broker *b)
{
	memset(b, 0, sizeof(*b));
	b->policy = an_policy_of_config(cfg);
	b->chunk = cfg->broker.chunk;
	b->reg_budget = cfg->broker.regulation_budget;
	b->reg_period = cfg->broker.regulation_period_ns;
	b->reg_reserve = model_rt_reserve(cfg);
	b->plat.copy_bandwidth = plat->copy_bandwidth;
	b->plat.chunk_overhead = plat->chunk_overhead;
	b->plat.packet_overhead = plat->packet_overhead;
	b->plat.ingest_latency = plat->ingest_latency;
	b->plat.notify_latency = plat->notify_latency;
	b->plat.ingest_packet = model_ingest_packet_ns(plat->ingest_step);
	b->plat.batch_gap = plat->batch_gap;
	b->plat.wake_write = plat->wake_write;
	b->plat.change_apply = change_apply_of(cfg, plat);
	b->tx_slots = m->pools.tx_slots;
	b->run_steps = m->pools.run_steps;
	an_vhu_of_config(cfg, plat, &b->vhu);
	b->budget_period = m->pools.budget_period;
	b->budget_ingest = m->pools.budget_ingest;
	b->piece_steps = m->pools.piece_steps;
	/* The host bridge runs between the same two data-plane runs as the daemon's
	 * round: its pass budget lengthens every gap. */
	b->plat.batch_gap = sadd(b->plat.batch_gap, an_host_gap_of_config(cfg, b));
}

uint64_t an_host_gap_of_config(const struct rtvio_config *cfg, const struct an_broker *b)
{
	struct model_host_pass hp;

	model_host_pass(cfg, &hp);
	return an_host_gap(b, hp.calls, hp.bytes, hp.rx_payload);
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

/* The real-time flow cell c's control packets ride at the highest (to_only: its
 * short RX pieces, which only flows to c carry): the best rank (fp, fifo) or the
 * shortest deadline (edf) of the flows it is an end of; -1 for none (they then
 * ride the best-effort band, and block at most one step like the RST replies). */
static int ride_flow(const struct rtvio_config *cfg, const struct model *m, int c, bool to_only)
{
	int best = -1;

	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];

		if (f->vacant || f->best_effort || (f->to != c && (to_only || f->from != c)))
			continue;
		if (best < 0 || (cfg->broker.policy == RTVIO_POLICY_EDF ?
				 f->deadline_ns < cfg->flows[best].deadline_ns :
				 m->flows[i].rank < m->flows[best].rank))
			best = i;
	}
	return best;
}

/* Every cell's control and short-piece budgets onto the flows they ride. */
static void ride_budgets(const struct rtvio_config *cfg, const struct model *m,
			 struct an_flow *fl)
{
	for (int c = 0; c < cfg->ncells; c++) {
		struct model_cell_budget mb;
		int r;

		if (cfg->cells[c].vacant)
			continue;
		model_cell_budgets(cfg, c, &mb);
		r = ride_flow(cfg, m, c, false);
		if (r >= 0)
			fl[r].budget_ctrl += mb.ctrl;
		r = ride_flow(cfg, m, c, true);
		if (r >= 0)
			fl[r].budget_pieces += mb.pieces;
	}
}

/* Control packets cell c's ctrl budget holds for the credit updates of real-time
 * stream flows to c ranked below flow i: a conforming c sends those at their own
 * flows' ranks (docs/analysis.md, "Own ends"), below i under fp. */
static uint64_t credits_below(const struct rtvio_config *cfg, const struct model *m, int c,
			      int i)
{
	uint64_t n = 0;

	for (int s = 0; s < cfg->nflows; s++)
		if (cfg->flows[s].to == c && m->flows[s].cls == MODEL_REAL_TIME &&
		    m->flows[s].rank > m->flows[i].rank)
			n += model_flow_credits(cfg, s);
	return n;
}

/* What flow i's own ends, conforming, leave out of the budgets they put on the
 * flows they ride (an_flow.own): their short pieces, and under fp the credit
 * updates of stream flows below i. */
static void own_ends(const struct rtvio_config *cfg, const struct model *m, int i,
		     struct an_flow *f)
{
	const int ends[2] = { cfg->flows[i].to, cfg->flows[i].from };
	size_t e = 0;

	if (cfg->flows[i].vacant || f->best_effort)
		return;
	for (int k = 0; k < 2; k++) {
		struct model_cell_budget mb;
		int c = ends[k], r;

		if (k == 1 && c == ends[0])
			break;
		model_cell_budgets(cfg, c, &mb);
		r = ride_flow(cfg, m, c, false);
		if (r >= 0 && cfg->broker.policy == RTVIO_POLICY_FP)
			f->own[e++] = (struct an_own){ .ride = (size_t)r,
						       .ctrl = credits_below(cfg, m, c, i) };
		r = ride_flow(cfg, m, c, true);
		if (r >= 0)
			f->own[e++] = (struct an_own){ .ride = (size_t)r, .pieces = mb.pieces };
	}
}

/* The vhost-user buckets of flow i's own ends, out of b->vhu (an_vhu_of_config:
 * every cell with a socket has the same buckets, so each holds work / cells). */
static void own_vhu(const struct rtvio_config *cfg, const struct an_broker *b, int i,
		    struct an_flow *f)
{
	const int ends[2] = { cfg->flows[i].to, cfg->flows[i].from };
	uint64_t cells = 0, own = 0;

	if (cfg->flows[i].vacant || f->best_effort)
		return;
	for (int c = 0; c < cfg->ncells; c++)
		if (!cfg->cells[c].vacant && !cfg->cells[c].host)
			cells++;
	for (int k = 0; k < 2; k++) {
		const struct rtvio_cell_cfg *cc = &cfg->cells[ends[k]];

		if ((k == 0 || ends[1] != ends[0]) && !cc->vacant && !cc->host)
			own++;
	}
	for (int k = 0; k < 2 && cells; k++)
		f->own_vhu[k] = b->vhu.work[k] / cells * own;
}

size_t an_input_from_config(const struct rtvio_config *cfg, const struct model *m,
			    const struct rtvio_platform_cfg *plat, struct an_broker *b,
			    struct an_flow *fl)
{
	size_t n = (size_t)cfg->nflows;

	broker_of(cfg, m, plat, b);
	for (size_t i = 0; i < n; i++)
		flow_of(&cfg->flows[i], &m->flows[i], &fl[i]);
	if (b->budget_period) {
		ride_budgets(cfg, m, fl);
		for (size_t i = 0; i < n; i++)
			own_ends(cfg, m, (int)i, &fl[i]);
	}
	for (size_t i = 0; i < n; i++)
		own_vhu(cfg, b, (int)i, &fl[i]);
	if (!cfg->broker.default_best_effort)
		return n;
	default_class_of(cfg, &m->flows[n], &fl[n]);
	return n + 1;
}
