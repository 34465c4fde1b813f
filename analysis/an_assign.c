/* Priority assignment: deadline-monotonic, and Audsley's optimal assignment with
 * the fp test (docs/analysis.md, "Priority assignment"). */
#include "analysis.h"
#include "an_arith.h"
#include "an_internal.h"

#include <errno.h>
#include <stdlib.h>

void an_assign_dm(const struct an_flow *flows, size_t n, unsigned *prio)
{
	/* Rank = 1 + the number of flows that come first: shorter deadline, or equal
	 * deadline and earlier in the configuration. O(n^2), start-up only. */
	for (size_t i = 0; i < n; i++) {
		unsigned rank = 1;

		prio[i] = 0;
		if (flows[i].best_effort)
			continue;
		for (size_t j = 0; j < n; j++)
			if (!flows[j].best_effort &&
			    (flows[j].deadline < flows[i].deadline ||
			     (flows[j].deadline == flows[i].deadline && j < i)))
				rank++;
		prio[i] = rank;
	}
}

/* Audsley's search: the context of the fp test, the tasks it runs on and which
 * flows already have their level. */
struct opa {
	const struct an_flow *flows;
	size_t n;
	const struct an_broker *b;
	unsigned *prio;
	struct task *t;
	size_t *owner, nt;
	bool *done;
	struct ctx x;
};

/* Real-time flows (the levels to fill), or -EINVAL when one lacks a period or
 * deadline. */
static int opa_levels(const struct an_flow *flows, size_t n, unsigned *nrt)
{
	*nrt = 0;
	for (size_t i = 0; i < n; i++)
		if (!flows[i].best_effort) {
			if (!flows[i].period || !flows[i].deadline)
				return -EINVAL;
			(*nrt)++;
		}
	return 0;
}

static int opa_alloc(struct opa *o, size_t n)
{
	o->done = calloc(n ? n : 1, sizeof(*o->done));
	o->t = calloc(AN_MAX_TASKS(n), sizeof(*o->t));
	o->owner = calloc(AN_MAX_TASKS(n), sizeof(*o->owner));
	return o->done && o->t && o->owner ? 0 : -ENOMEM;
}

static void opa_free(struct opa *o)
{
	free(o->done);
	free(o->t);
	free(o->owner);
}

/* Does unassigned flow i meet its deadline at `level`, every other unassigned flow
 * above it? 1 yes, 0 no, -ETIME when the work budget ran out. */
static int opa_fits(struct opa *o, size_t i, unsigned level)
{
	struct an_flow_result r = { 0 };

	for (size_t j = 0; j < o->n; j++)
		if (!o->flows[j].best_effort && !o->done[j])
			o->prio[j] = j == i ? level : level - 1;
	for (size_t j = 0; j < o->nt; j++)
		if (o->owner[j] != AN_OWNER_NONE)
			o->t[j].prio = o->prio[o->owner[j]];
	if (o->x.s.regulated && o->x.s.theta == 0)
		return 0;
	if (an_fp_task(&o->x, i, &r))
		return o->x.spent ? -ETIME : 0;
	an_finish_flow(&o->flows[i], o->b, &r);
	return r.schedulable;
}

/* Gives `level` to the first unassigned flow, in configuration order, that fits
 * there. 0, -ESRCH when none does, -ETIME. */
static int opa_level(struct opa *o, unsigned level)
{
	for (size_t i = 0; i < o->n; i++) {
		int fits;

		if (o->flows[i].best_effort || o->done[i])
			continue;
		fits = opa_fits(o, i, level);
		if (fits < 0)
			return fits;
		if (fits) {
			o->done[i] = true;
			o->prio[i] = level;
			return 0;
		}
	}
	return -ESRCH;
}

int an_assign_opa(const struct an_flow *flows, size_t n, const struct an_broker *b,
		  const struct an_costs *costs, unsigned *prio)
{
	struct an_broker bf = *b;
	struct opa o = { .flows = flows, .n = n, .b = &bf, .prio = prio };
	unsigned nrt;
	int ret;

	bf.policy = AN_FP;
	ret = opa_levels(flows, n, &nrt);
	if (ret)
		return ret;
	ret = opa_alloc(&o, n);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++)
		prio[i] = 0;
	/* Credit updates by their message's deadline: true of every flow once the
	 * assignment is found (each meets its deadline), which is all OPA claims. Task
	 * parameters do not depend on the order, only each task's priority does. */
	o.nt = an_make_tasks(flows, n, &bf, costs, prio, NULL, o.t, o.owner);
	an_ctx_init(&o.x, &bf, o.t, o.nt, costs, n);
	/* Audsley: fill the levels from the lowest up. A flow fits a level when it meets
	 * its deadline with every other unassigned flow above it. The fp test depends
	 * only on which flows are above and which below, never on their order, so this
	 * is optimal. */
	for (unsigned level = nrt; level >= 1 && !ret; level--)
		ret = opa_level(&o, level);
	if (!ret)
		for (size_t i = 0; i < n; i++)
			if (flows[i].best_effort)
				prio[i] = 0;
out:
	opa_free(&o);
	return ret;
}
