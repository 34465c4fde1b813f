/* fifo: arrival order, best-effort traffic included (docs/analysis.md, "fifo"). */
#include "analysis.h"
#include "an_arith.h"
#include "an_internal.h"

/* FIFO: a message released x after the start of a busy period is copied once all work
 * released in [0, x] is, so it finishes by sbf^-1(B + sum_j (floor((x+J_j)/T_j)+1) C_j).
 * The bound max_x of that minus x holds for every flow alike. */
static bool fifo_at(struct ctx *x, uint64_t u, uint64_t B, uint64_t *worst)
{
	uint64_t w = B, F, nF;

	if (!pay(x))
		return false;
	for (size_t l = 0; l < x->n; l++)
		if (!x->t[l].be && !x->t[l].always)
			w = sadd(w, smul(released_upto(&x->t[l], u), x->t[l].C));
	/* The broker's own work (the cells' budgets) does not wait its turn: all of it
	 * up to the finish counts, a fixed point F = w + sum released_upto(F) C. */
	for (F = inv(&x->s, w);; F = nF) {
		uint64_t wf = w;

		if (F > x->hz || !pay(x))
			return false;
		for (size_t l = 0; l < x->n; l++)
			if (x->t[l].always)
				wf = sadd(wf, smul(released_upto(&x->t[l], F), x->t[l].C));
		nF = inv(&x->s, wf);
		if (nF == F)
			break;
	}
	*worst = max_u64(*worst, F - min_u64(F, u));
	return true;
}

static int fifo_bound(struct ctx *x, uint64_t B, uint64_t L, uint64_t *out)
{
	uint64_t worst = 0, points = 0;

	/* u = 0: every task's first job, released together at the critical instant. */
	if (!fifo_at(x, 0, B, &worst))
		return 1;
	for (size_t j = 0; j < x->n; j++) {
		const struct task *tj = &x->t[j];
		uint64_t u0;

		if (tj->be)
			continue;
		u0 = tj->J % tj->T ? tj->T - tj->J % tj->T : 0;
		for (uint64_t u = u0; u < L; u = sadd(u, tj->T)) {
			if (++points > AN_MAX_POINTS || !fifo_at(x, u, B, &worst))
				return 1;
			if (u == UINT64_MAX)
				break;
		}
	}
	*out = worst;
	return 0;
}

bool an_fifo_run(struct ctx *x, const struct an_flow *flows, size_t nflows,
		 struct an_result *res, struct an_flow_result *out)
{
	uint64_t L, worst;

	/* Arrival order for everyone, best-effort traffic included: a message may
	 * find any amount of best-effort data queued ahead of it, which nothing
	 * in the configuration bounds. */
	for (size_t j = 0; j < nflows; j++)
		if (flows[j].best_effort)
			res->why = "under fifo, best-effort data queues in arrival order "
				   "with real-time messages, and nothing bounds it";
	if (res->why)
		return true;
	/* No step blocks: whatever runs at the start of a busy period came in it
	 * (the broker's RST replies are assumed away under fifo: see the docs). */
	L = an_busy_period(x, x->pool);
	if (L > x->hz || fifo_bound(x, x->pool, L, &worst))
		return true;
	for (size_t i = 0; i < nflows; i++) {
		if (flows[i].best_effort)
			continue;
		out[i].response = sadd(x->late, worst);
		out[i].bounded = true;
		out[i].busy_period = L;
	}
	return false;
}
