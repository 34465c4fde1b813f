/* The analysis on several cores (an_mcore.h, docs/analysis.md "Several cores"): the
 * lock terms from sync/bounds.h (each of them per step), each core's one-core broker,
 * and the flows of every core through an_analyze, with the credit updates a core
 * delivers for flows another core serves, until their release jitter settles. */
#include "an_mcore.h"
#include "an_arith.h"
#include "an_internal.h"
#include "bounds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Rounds of the cross-core credit-update fixed point before giving up. */
#define MAX_ROUNDS 64u

static uint32_t cores_of(const struct an_mcore *mc)
{
	return mc->ncores ? mc->ncores : 1;
}

static uint32_t slots_of(const struct an_mcore *mc)
{
	uint32_t m = cores_of(mc);

	return mc->copy_slots && mc->copy_slots < m ? mc->copy_slots : m;
}

static uint32_t core_of(const struct an_mcore *mc, size_t i)
{
	return mc->core ? mc->core[i] : 0;
}

/* Where flow i's credit updates are delivered: its sender's core. */
static uint32_t credit_core_of(const struct an_mcore *mc, size_t i)
{
	return mc->credit_core ? mc->credit_core[i] : core_of(mc, i);
}

/* One ingest pass over the TX slots of core c's cells (AN_ANY_CORE: the longest). */
static uint64_t pass_of(const struct an_broker *b, const struct an_mcore *mc, uint32_t c)
{
	uint64_t slots = 0;

	if (c != AN_ANY_CORE)
		return smul(mc->tx_slots[c], b->plat.ingest_packet);
	for (uint32_t k = 0; k < cores_of(mc); k++)
		slots = max_u64(slots, mc->tx_slots[k]);
	return smul(slots, b->plat.ingest_packet);
}

/* The pass a core's own steps are charged: with the cells' budgets, none (every
 * chain the core's pass takes is in the ingest budgets of its cells, which its
 * analysis charges as the highest-priority stream); else its pass over its slots. */
static uint64_t own_pass(const struct an_broker *b, const struct an_mcore *mc, uint32_t c)
{
	return b->budget_period ? 0 : pass_of(b, mc, c);
}

uint64_t an_mcore_l_done(const struct an_platform *p)
{
	uint64_t wakes = smul(2, p->wake_write);

	return p->packet_overhead > wakes ? p->packet_overhead - wakes : 0;
}

void an_mcore_terms(const struct an_broker *b, const struct an_mcore *mc,
		    const struct an_costs *costs, size_t n, struct an_mcore_terms *lt)
{
	const uint32_t m = cores_of(mc);
	const uint64_t pass = pass_of(b, mc, AN_ANY_CORE);
	uint64_t qmax = an_ctl_step(b), step;

	for (size_t j = 0; j < n; j++)
		qmax = max_u64(qmax, costs[j].Q);
	/* M guards the ingest pass, policing and the pick (a step's fixed work, which
	 * chunk_overhead times, and the pass over the core's TX slots), then the
	 * completion: packet_overhead less its two wake-ups, which a core signals
	 * after it released M (the notify decisions stay under M). */
	lt->l_pick = sadd(pass, b->plat.chunk_overhead);
	lt->l_done = an_mcore_l_done(&b->plat);
	lt->l_m = max_u64(lt->l_pick, lt->l_done);
	/* K guards one copy of at most a chunk: e(chunk) less its fixed overhead. */
	lt->l_copy = an_chunk_cost(&b->plat, b->chunk) - b->plat.chunk_overhead;
	lt->mutex = sync_bound_mutex(m, lt->l_m);
	lt->kex = sync_bound_kex(m, slots_of(mc), lt->l_copy);
	/* A step holds W's reader side from before its first M request to after its
	 * completion: the longest step of any core (Q_max: chunk_overhead, one chunk's
	 * copy, packet_overhead) with the longest pass and its own M and K waits. A
	 * reader waits only for the readers inside when a writer came, and only after it
	 * came itself: from then on it holds and asks for nothing, and no other core
	 * enters, so the readers inside contend among at most m - 1 cores for M and K.
	 * The wait for W itself comes before the section and is not in it. */
	step = sadd(sadd(qmax, pass),
		    sadd(smul(2, sync_bound_mutex(m - 1, lt->l_m)),
			 sync_bound_kex(m - 1, slots_of(mc), lt->l_copy)));
	lt->l_r = step;
	lt->l_w = mc->write_section ? mc->write_section : b->plat.batch_gap;
	lt->rw_reader = sync_bound_rw_reader(m, lt->l_r, lt->l_w);
	/* A phase-fair reader waits only while a writer is present, and then for at most
	 * one writer phase (B_W). With the writes spaced (the data plane's write gate),
	 * each write costs a core at most B_W once, at no step's expense: charged per
	 * write as lost supply (an_mcore_broker), every step's W term is 0. The
	 * argument needs B_W <= the spacing; else per step, as without the gate. */
	lt->write_spacing = mc->write_spacing >= lt->rw_reader ? mc->write_spacing : 0;
	lt->rw_step = lt->write_spacing ? 0 : lt->rw_reader;
}

void an_mcore_broker(const struct an_broker *b, const struct an_mcore *mc,
		     const struct an_mcore_terms *lt, uint32_t c, struct an_broker *bc)
{
	const uint32_t m = cores_of(mc);

	*bc = *b;
	if (m <= 1)
		return;
	/* Every step is longer by its lock waits (W's reader side, M twice, K) and by
	 * the pass over the core's cells (which may find packets toward other cores
	 * every time), unless the cells' ingest budgets charge that pass already. */
	bc->plat.chunk_overhead = sadd(b->plat.chunk_overhead,
				       sadd(sadd(smul(2, lt->mutex), lt->kex),
					    sadd(lt->rw_step, own_pass(b, mc, c))));
	/* The W wait and the first M wait come before the pick (the pass starts once M
	 * is granted): a message's last byte does not wait for them a second time. */
	bc->pick_lead = sadd(b->pick_lead, sadd(lt->rw_step, lt->mutex));
	/* Writes spaced at least write_spacing apart: in any window of length t their
	 * requests' effects on this core lie within 1 + floor((t + B_W) / spacing)
	 * writes, and the first loses the core at most B_W less how long before the
	 * window it came; summed, at most B_W + ceil(B_W t / spacing) for B_W <=
	 * spacing (docs/analysis.md, "Several cores"): a token bucket of lost supply. */
	if (lt->write_spacing) {
		bc->vhu.work[AN_LOSS_WRITES] = lt->rw_reader;
		bc->vhu.period[AN_LOSS_WRITES] = lt->write_spacing;
	}
	if (c != AN_ANY_CORE)
		bc->tx_slots = mc->tx_slots[c];
	/* A core ingests its own cells only: their budgets, not every cell's. */
	if (c != AN_ANY_CORE && mc->budget_ingest)
		bc->budget_ingest = mc->budget_ingest[c];
	/* The DRAM budget in equal fixed shares: a share too small for one byte is a
	 * budget of one byte, which the analysis calls an overload. */
	if (b->reg_budget)
		bc->reg_budget = max_u64(b->reg_budget / m, 1);
	/* The data plane keeps no real-time reserve on several cores
	 * (dp_reg_reserve_update): each core's share serves its heap in order. */
	bc->reg_reserve = 0;
}

static void blocking_of(const struct an_flow *f, const struct an_broker *b,
			const struct an_mcore *mc, const struct an_mcore_terms *lt, uint32_t c,
			struct an_blocking *bl)
{
	struct an_broker bc;
	struct an_costs c0 = { 0 }, c1 = { 0 };

	an_mcore_broker(b, mc, lt, c, &bc);
	an_flow_costs(f, b, &c0);
	an_flow_costs(f, &bc, &c1);
	*bl = (struct an_blocking){ .core = c, .mutex = lt->mutex, .mutex_per_step = 2,
				    .kex = lt->kex, .rw_reader = lt->rw_step,
				    .rw_write = lt->write_spacing ? lt->rw_reader : 0,
				    .write_spacing = lt->write_spacing,
				    .ingest_pass = own_pass(b, mc, c) };
	bl->per_step = sadd(sadd(smul(2, bl->mutex), bl->kex),
			    sadd(bl->rw_reader, bl->ingest_pass));
	bl->pick_lead = sadd(bl->rw_reader, bl->mutex);
	bl->per_job = c1.C > c0.C ? c1.C - c0.C : 0;
}

/* What the per-core passes share. */
struct mc_run {
	const struct an_flow *flows;
	size_t n;
	const struct an_broker *b;
	const struct an_mcore *mc;
	struct an_mcore_terms lt;
	uint64_t *basis;          /* per flow: when its credit updates are posted at most */
	struct an_flow *sub;      /* one core's flows, then its foreign credit updates and
				   * the carriers of what it delivers at other cores' ranks */
	size_t *map;              /* sub[j] is flows[map[j]] */
	struct an_flow_result *sout;
	bool *seen;               /* a flow's result has been taken from some core */
};

/* The credit updates of flow i delivered by core c while another core serves i: a
 * header-only packet per message at i's rate and rank, posted up to basis[i] after
 * the message's release. */
static struct an_flow credit_flow(const struct mc_run *r, const struct an_broker *bc, size_t i)
{
	const struct an_flow *f = &r->flows[i];
	uint64_t step = sadd(an_ctl_step(bc), an_reg_surcharge(bc, AN_HDR_BYTES));

	return (struct an_flow){ .name = f->name, .type = AN_SEQPACKET, .explicit_costs = true,
				 .cost = step, .last_step = step, .max_step = step,
				 .period = f->period, .deadline = f->deadline,
				 .jitter = sadd(f->jitter, r->basis[i]), .priority = f->priority };
}

/* The credit updates are in the receivers' control budgets, which ride_ctrl puts on
 * the cores that deliver them (an_credits_in_budgets). */
static bool credits_ride(const struct mc_run *r)
{
	return an_credits_in_budgets(r->b) && r->mc->ride_ctrl && r->mc->ride_pieces;
}

static bool foreign_credit(const struct mc_run *r, size_t i, uint32_t c)
{
	const struct an_flow *f = &r->flows[i];
	uint32_t own = core_of(r->mc, i);

	return !f->best_effort && f->type == AN_STREAM && own != AN_ANY_CORE &&
	       credit_core_of(r->mc, i) == c && own != c && !credits_ride(r);
}

static uint64_t ride_of(const struct mc_run *r, const uint64_t *ride, uint32_t c, size_t i)
{
	return ride[(size_t)c * r->n + i];
}

/* Core c delivers control packets at the rank of flow i, which another core serves
 * (a cell's packets toward a peer on c: credit updates of a flow c's cell sends,
 * set-up and close of a flow toward another core). */
static bool foreign_ride(const struct mc_run *r, const struct an_broker *bc, size_t i,
			 uint32_t c)
{
	uint32_t own = core_of(r->mc, i);

	return bc->budget_period && r->mc->ride_ctrl && r->mc->ride_pieces &&
	       !r->flows[i].best_effort && own != c && own != AN_ANY_CORE &&
	       (ride_of(r, r->mc->ride_ctrl, c, i) || ride_of(r, r->mc->ride_pieces, c, i));
}

/* Those packets on core c: a stream at flow i's rank and deadline whose own message
 * is one of them (a header-only step per budget period, with jitter one period as
 * the budget streams have) and which carries the rest as its budgets. Its result
 * is not a flow's. */
static struct an_flow ride_carrier(const struct mc_run *r, const struct an_broker *bc,
				   size_t i, uint32_t c)
{
	const struct an_flow *f = &r->flows[i];
	uint64_t step = sadd(an_ctl_step(bc), an_reg_surcharge(bc, AN_HDR_BYTES));
	uint64_t ctrl = ride_of(r, r->mc->ride_ctrl, c, i);

	return (struct an_flow){ .name = f->name, .type = AN_SEQPACKET, .explicit_costs = true,
				 .cost = step, .last_step = step, .max_step = step,
				 .period = bc->budget_period, .deadline = f->deadline,
				 .jitter = bc->budget_period, .priority = f->priority,
				 .budget_ctrl = ctrl ? ctrl - 1 : 0,
				 .budget_pieces = ride_of(r, r->mc->ride_pieces, c, i) };
}

/* Folds core c's result for flow i into out[i]: a flow served on every core takes
 * its worst. */
static void take(struct mc_run *r, size_t i, const struct an_flow_result *s,
		 struct an_flow_result *out)
{
	if (!r->seen[i] || (out[i].bounded && (!s->bounded || s->latency > out[i].latency)))
		out[i] = *s;
	r->seen[i] = true;
}

static void merge_result(struct an_result *res, const struct an_result *rc, bool first)
{
	if (first) {
		*res = *rc;
		return;
	}
	if (rc->status != AN_OK && (res->status == AN_OK || rc->status == AN_OVERLOAD)) {
		res->status = rc->status;
		res->why = rc->why;
	}
	if (!rc->demand_ok && res->demand_ok) {
		res->demand_ok = false;
		res->demand_fail_at = rc->demand_fail_at;
	}
	if (rc->utilization > res->utilization)
		res->utilization = rc->utilization;
	res->regulated = res->regulated || rc->regulated;
}

/* One core through an_analyze. */
static int run_core(struct mc_run *r, uint32_t c, struct an_result *res, bool first,
		    struct an_flow_result *out)
{
	struct an_broker bc;
	struct an_result rc;
	size_t k = 0;
	int ret;

	an_mcore_broker(r->b, r->mc, &r->lt, c, &bc);
	for (size_t i = 0; i < r->n; i++) {
		uint32_t own = core_of(r->mc, i);

		if (own == c || own == AN_ANY_CORE) {
			r->sub[k] = r->flows[i];
			/* own[] names flows of the whole set, not of this core's. */
			memset(r->sub[k].own, 0, sizeof(r->sub[k].own));
			memset(r->sub[k].own_vhu, 0, sizeof(r->sub[k].own_vhu));
			if (r->mc->ride_ctrl && r->mc->ride_pieces) {
				r->sub[k].budget_ctrl = ride_of(r, r->mc->ride_ctrl, c, i);
				r->sub[k].budget_pieces = ride_of(r, r->mc->ride_pieces, c, i);
			}
			r->map[k++] = i;
		}
	}
	for (size_t i = 0; i < r->n; i++) {
		if (foreign_credit(r, i, c)) {
			r->sub[k] = credit_flow(r, &bc, i);
			r->map[k++] = SIZE_MAX;
		}
		if (foreign_ride(r, &bc, i, c)) {
			r->sub[k] = ride_carrier(r, &bc, i, c);
			r->map[k++] = SIZE_MAX;
		}
	}
	ret = an_analyze(r->sub, k, &bc, &rc, r->sout);
	if (ret)
		return ret;
	merge_result(res, &rc, first);
	for (size_t j = 0; j < k; j++)
		if (r->map[j] != SIZE_MAX)
			take(r, r->map[j], &r->sout[j], out);
	return 0;
}

/* Raises the credit-update bases of the flows whose updates another core delivers
 * where their bound says messages may arrive later; true when one changed. */
static bool raise_bases(struct mc_run *r, const struct an_flow_result *out)
{
	bool changed = false;

	for (size_t i = 0; i < r->n; i++) {
		uint64_t want;

		if (r->flows[i].best_effort || r->flows[i].type != AN_STREAM ||
		    credit_core_of(r->mc, i) == core_of(r->mc, i) || credits_ride(r))
			continue;
		want = out[i].bounded ? out[i].latency : UINT64_MAX / 4;
		if (want > r->basis[i]) {
			r->basis[i] = want;
			changed = true;
		}
	}
	return changed;
}

static void finish(struct mc_run *r, struct an_result *res, struct an_flow_result *out,
		   struct an_blocking *blk)
{
	bool all = true;

	for (size_t i = 0; i < r->n; i++) {
		if (!r->flows[i].best_effort && !out[i].schedulable)
			all = false;
		if (blk)
			blocking_of(&r->flows[i], r->b, r->mc, &r->lt, core_of(r->mc, i), &blk[i]);
	}
	res->capacity = 1.0;
	res->schedulable = res->status == AN_OK && res->demand_ok && all;
}

/* The cores until the credit updates' jitter settles. */
static int settle(struct mc_run *r, struct an_result *res, struct an_flow_result *out)
{
	for (unsigned round = 0;; round++) {
		for (size_t i = 0; i < r->n; i++)
			r->seen[i] = false;
		for (uint32_t c = 0; c < cores_of(r->mc); c++) {
			int ret = run_core(r, c, res, c == 0, out);

			if (ret)
				return ret;
		}
		if (!raise_bases(r, out))
			return 0;
		if (round + 1 >= MAX_ROUNDS) {
			for (size_t i = 0; i < r->n; i++)
				out[i].bounded = out[i].schedulable = false;
			res->status = AN_UNBOUNDED;
			res->why = "the credit updates' release jitter did not settle";
			return 0;
		}
	}
}

static int check_cores(const struct an_mcore *mc, size_t n)
{
	const uint32_t m = cores_of(mc);

	if (!mc->tx_slots)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = core_of(mc, i), cc = credit_core_of(mc, i);

		if ((c >= m && c != AN_ANY_CORE) || (cc >= m && cc != AN_ANY_CORE))
			return -EINVAL;
	}
	return 0;
}

int an_analyze_mcore(const struct an_flow *flows, size_t n, const struct an_broker *b,
		     const struct an_mcore *mc, struct an_result *res,
		     struct an_flow_result *out, struct an_blocking *blk)
{
	struct mc_run r = { .flows = flows, .n = n, .b = b, .mc = mc };
	struct an_costs *costs = NULL;
	int ret;

	if (cores_of(mc) <= 1) {
		ret = an_analyze(flows, n, b, res, out);
		for (size_t i = 0; !ret && blk && i < n; i++)
			blk[i] = (struct an_blocking){ .core = 0 };
		return ret;
	}
	ret = an_validate(flows, n, b, NULL, NULL);
	if (!ret)
		ret = check_cores(mc, n);
	if (ret)
		return ret;
	costs = calloc(n ? n : 1, sizeof(*costs));
	r.basis = calloc(n ? n : 1, sizeof(*r.basis));
	r.sub = calloc(3 * n + 1, sizeof(*r.sub));
	r.map = calloc(3 * n + 1, sizeof(*r.map));
	r.sout = calloc(3 * n + 1, sizeof(*r.sout));
	r.seen = calloc(n ? n : 1, sizeof(*r.seen));
	ret = -ENOMEM;
	if (costs && r.basis && r.sub && r.map && r.sout && r.seen) {
		for (size_t i = 0; i < n; i++) {
			an_flow_costs(&flows[i], b, &costs[i]);
			r.basis[i] = flows[i].deadline;
		}
		an_mcore_terms(b, mc, costs, n, &r.lt);
		ret = settle(&r, res, out);
		if (!ret)
			finish(&r, res, out, blk);
	}
	free(costs);
	free(r.basis);
	free(r.sub);
	free(r.map);
	free(r.sout);
	free(r.seen);
	return ret;
}
