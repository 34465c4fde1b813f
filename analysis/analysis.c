/* Response-time analysis: see analysis.h for the interface and docs/analysis.md for
 * the model, each equation and its references. This file runs a whole analysis
 * (an_analyze): the costs, the tasks, the overload check, the policy's pass
 * repeated until the credit updates' jitter settles, and the results. The cost
 * model is in an_cost.c, the supply in an_supply.c, the shared context in an_ctx.c,
 * each policy in an_fp.c, an_edf.c and an_fifo.c, priority assignment in
 * an_assign.c. Every quantity is an integer number of ns (an_arith.h). */
#include "analysis.h"
#include "an_arith.h"
#include "an_internal.h"

#include <errno.h>
#include <stdlib.h>

/* Rounds of the credit-update jitter fixed point (an_analyze) before giving up. */
#define MAX_ROUNDS 64u

/* The latency bound and the verdict of flow f, from its response in r. */
void an_finish_flow(const struct an_flow *f, const struct an_broker *b,
		    struct an_flow_result *r)
{
	if (f->best_effort || !r->bounded) {
		r->schedulable = false;
		return;
	}
	/* The response is from the broker's sight of a message whose kick came at most
	 * ingest_latency before (fp knows it per job: from_kick); the receiver runs at
	 * most notify_latency after. */
	r->latency = sadd(r->from_kick ? r->from_kick : sadd(b->plat.ingest_latency, r->response),
			  b->plat.notify_latency);
	r->schedulable = r->latency <= f->deadline;
}

/* Clears the responses of the flows (their costs stay) and the demand test. */
static void reset_results(size_t nflows, struct an_result *res, struct an_flow_result *out)
{
	res->demand_ok = true;
	res->demand_fail_at = 0;
	for (size_t i = 0; i < nflows; i++) {
		struct an_costs c = out[i].costs;

		out[i] = (struct an_flow_result){ .costs = c };
	}
}

/* One policy pass over the tasks: responses of the flows (tasks 0..nflows). Sets
 * *unbounded when some flow has no bound, and res->why for a reason other than the
 * horizon. */
static void run_policy(struct ctx *x, const struct an_flow *flows, size_t nflows,
		       struct an_result *res, struct an_flow_result *out, bool *unbounded)
{
	bool unb = false;

	reset_results(nflows, res, out);
	switch (x->b->policy) {
	case AN_FP:
		unb = an_fp_run(x, flows, nflows, out);
		break;
	case AN_EDF:
		unb = an_edf_run(x, flows, nflows, res, out);
		break;
	case AN_FIFO:
		unb = an_fifo_run(x, flows, nflows, res, out);
		break;
	}
	if (unb)
		*unbounded = true;
}

/* an_analyze's scratch: costs and credit-update bases per flow, tasks and their
 * flows (a flow and its credit updates: up to 2n + 1). */
struct scratch {
	struct an_costs *costs;
	uint64_t *basis;
	struct task *t;
	size_t *owner;
};

static int scratch_alloc(struct scratch *sc, size_t n)
{
	sc->costs = calloc(n ? n : 1, sizeof(*sc->costs));
	sc->basis = calloc(n ? n : 1, sizeof(*sc->basis));
	sc->t = calloc(AN_MAX_TASKS(n), sizeof(*sc->t));
	sc->owner = calloc(AN_MAX_TASKS(n), sizeof(*sc->owner));
	return sc->costs && sc->basis && sc->t && sc->owner ? 0 : -ENOMEM;
}

static void scratch_free(struct scratch *sc)
{
	free(sc->costs);
	free(sc->basis);
	free(sc->t);
	free(sc->owner);
}

/* Fresh results with the utilisation and the supply; true when the utilisation is
 * beyond the capacity (no busy period closes). */
static bool start_result(const struct ctx *x, struct an_result *res)
{
	long double u = 0;

	for (size_t j = 0; j < x->n; j++)
		if (!x->t[j].be)
			u += (long double)x->t[j].C / x->t[j].T;
	u += an_vhu_utilization(&x->s.vhu);
	*res = (struct an_result){ 0 };
	res->status = AN_OK;
	res->demand_ok = true;
	res->utilization = (double)u;
	res->regulated = x->s.regulated;
	res->theta = x->s.regulated ? x->s.theta : 0;
	/* Regulated, the throttles are in the tasks' costs (byte surcharges): the
	 * broker's whole time is the capacity either way. */
	res->capacity = 1.0;
	/* The margin only keeps a rounding error from calling a utilisation of exactly 1
	 * overloaded; a value that close to the capacity is decided by the horizon
	 * instead. */
	if (u > (long double)res->capacity * (1.0L + 1e-12L) || (x->s.regulated && x->s.theta == 0)) {
		res->status = AN_OVERLOAD;
		res->why = "utilization above the copy engine's capacity";
		return true;
	}
	return false;
}

/* Raises each stream flow's credit-update basis to its latency bound where the bound
 * says its messages may come later; true when some basis changed. */
static bool raise_bases(const struct an_broker *b, const struct an_flow *flows, size_t n,
			const struct an_flow_result *out, uint64_t *basis)
{
	bool changed = false;

	for (size_t i = 0; i < n && !an_credits_in_budgets(b); i++) {
		uint64_t want;

		if (flows[i].best_effort || flows[i].type != AN_STREAM)
			continue;
		want = out[i].bounded ? out[i].latency : UINT64_MAX / 4;
		if (want > basis[i]) {
			basis[i] = want;
			changed = true;
		}
	}
	return changed;
}

/* Credit updates come back after their message reached the receiver: assume each by
 * its message's deadline, and where a flow's bound says its messages may come later,
 * by that bound instead, until the assumption and the bounds agree (a monotone fixed
 * point: later credit updates only ever lengthen responses). Sets the status; true
 * when no bound may be relied on at all. */
static bool settle_credits(struct ctx *x, const struct an_flow *flows, size_t n,
			   struct scratch *sc, struct an_result *res, struct an_flow_result *out)
{
	bool unbounded = false, void_all = false;

	for (unsigned round = 0;; round++) {
		unbounded = false;
		run_policy(x, flows, n, res, out, &unbounded);
		for (size_t i = 0; i < n; i++)
			an_finish_flow(&flows[i], x->b, &out[i]);
		if (x->spent || !raise_bases(x->b, flows, n, out, sc->basis))
			break;
		if (round + 1 >= MAX_ROUNDS) {
			unbounded = void_all = true;
			res->why = "the credit updates' release jitter did not settle";
			break;
		}
		an_make_tasks(flows, n, x->b, sc->costs, NULL, sc->basis, sc->t, sc->owner);
	}
	/* Without a settled fixed point no bound can be relied on, not even one
	 * computed before the budget ran out. */
	if (x->spent) {
		unbounded = void_all = true;
		res->why = "the analysis work budget ran out before the busy periods closed "
			   "(a set close to saturation)";
	}
	if (unbounded && res->status == AN_OK) {
		res->status = AN_UNBOUNDED;
		if (!res->why)
			res->why = "a busy period exceeds the analysis horizon";
	}
	return void_all;
}

static void final_results(const struct an_flow *flows, size_t n, const struct an_broker *b,
			  bool void_all, struct an_result *res, struct an_flow_result *out)
{
	bool all = true;

	/* Under fp a flow whose level-i utilisation is below the capacity keeps its
	 * bound when the whole set is overloaded (an_fp.c, level_overloaded). */
	for (size_t i = 0; i < n; i++) {
		if ((res->status == AN_OVERLOAD && b->policy != AN_FP) || void_all)
			out[i].bounded = false;
		an_finish_flow(&flows[i], b, &out[i]);
		if (!flows[i].best_effort && !out[i].schedulable)
			all = false;
	}
	res->schedulable = res->status == AN_OK && all && res->demand_ok;
}

/* One analysis of every flow under b, with the costs in sc already computed. */
static void analyze_under(const struct an_flow *flows, size_t n, const struct an_broker *b,
			  struct scratch *sc, struct an_result *res, struct an_flow_result *out)
{
	struct ctx x;
	bool void_all = false;
	size_t nt;

	for (size_t i = 0; i < n; i++) {
		out[i] = (struct an_flow_result){ 0 };
		out[i].costs = sc->costs[i];
		sc->basis[i] = flows[i].deadline;
	}
	nt = an_make_tasks(flows, n, b, sc->costs, NULL, sc->basis, sc->t, sc->owner);
	an_ctx_init(&x, b, sc->t, nt, sc->costs, n);
	/* Overloaded, fp still bounds the flows whose own level is not (the
	 * policies that serve every flow in one busy period have no bound at all);
	 * a regulator whose period cannot carry a header serves nothing. */
	if (!start_result(&x, res) ||
	    (b->policy == AN_FP && !(x.s.regulated && x.s.theta == 0)))
		void_all = settle_credits(&x, flows, n, sc, res, out);
	final_results(flows, n, b, void_all, res, out);
}

/* fp with a reserve covering the real-time demand: analysed on the unregulated
 * engine, which holds when every real-time flow then meets its deadline. Suppose a
 * real-time step were first trimmed or refused at t*. Up to t* the broker ran the
 * real-time flows as the unregulated analysis assumes (best-effort steps are only
 * fewer or shorter, and still at most one blocks), so every message charged in the
 * period of t* is copied within its unregulated response bound of its sight, and the
 * period's real-time charges, t*'s step included, stay within
 * an_rt_demand_bounded <= reserve; best-effort charges stay within budget -
 * reserve: the step fits, a contradiction. The regulated analysis is the answer
 * otherwise. */
static bool rt_reserved(const struct an_flow *flows, size_t n, const struct an_broker *b,
			struct scratch *sc, struct an_result *res, struct an_flow_result *out)
{
	struct an_broker ub = *b;
	uint64_t demand;

	if (b->policy != AN_FP || !b->reg_budget || !b->reg_reserve ||
	    b->reg_reserve > b->reg_budget)
		return false;
	ub.reg_budget = 0;
	ub.reg_reserve = 0;
	analyze_under(flows, n, &ub, sc, res, out);
	if (!res->schedulable)
		return false;
	/* Every real-time step up to t* belongs to a message copied within its
	 * unregulated response bound: counted by those bounds (no more than by the
	 * deadlines, an_rt_demand). */
	demand = an_rt_demand_bounded(flows, n, b, sc->costs, out);
	if (demand > b->reg_reserve)
		return false;
	res->rt_reserved = true;
	res->rt_demand = demand;
	return true;
}

int an_analyze(const struct an_flow *flows, size_t n, const struct an_broker *b,
	       struct an_result *res, struct an_flow_result *out)
{
	struct scratch sc;
	int ret = an_validate(flows, n, b, NULL, NULL);

	if (ret)
		return ret;
	ret = scratch_alloc(&sc, n);
	if (ret)
		goto free;
	for (size_t i = 0; i < n; i++)
		an_flow_costs(&flows[i], b, &sc.costs[i]);
	if (!rt_reserved(flows, n, b, &sc, res, out)) {
		analyze_under(flows, n, b, &sc, res, out);
		if (b->reg_budget)
			res->rt_demand = an_rt_demand(flows, n, b, sc.costs);
	}
free:
	scratch_free(&sc);
	return ret;
}
