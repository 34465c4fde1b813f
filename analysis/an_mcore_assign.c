/* Priority assignment on several broker cores (an_mcore.h, docs/analysis.md
 * "Several cores" and "Priorities"): each core dispatches only the flows toward the
 * cells it owns, so ranks are assigned within each core's set, deadline-monotonic or
 * by Audsley's search with the fp test of that core's broker (the lock terms and the
 * pass folded in, an_mcore_broker). */
#include "an_mcore.h"

#include <errno.h>
#include <stdlib.h>

static uint32_t cores_of(const struct an_mcore *mc)
{
	return mc->ncores ? mc->ncores : 1;
}

/* Core c's flows into sub[0..k) (map[j]: their index in flows): its own, and those
 * any core may serve (the default best-effort class, which gets no rank). */
static size_t core_set(const struct an_flow *flows, size_t n, const struct an_mcore *mc,
		       uint32_t c, struct an_flow *sub, size_t *map)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t own = mc->core ? mc->core[i] : 0;

		if (own == c || own == AN_ANY_CORE) {
			sub[k] = flows[i];
			map[k++] = i;
		}
	}
	return k;
}

/* The ranks one core's search gave, back into prio[] (only the core's own flows). */
static void put_ranks(const struct an_mcore *mc, uint32_t c, const size_t *map,
		      const unsigned *sprio, size_t k, unsigned *prio)
{
	for (size_t j = 0; j < k; j++)
		if (!mc->core || mc->core[map[j]] == c)
			prio[map[j]] = sprio[j];
}

struct assign_buf {
	struct an_flow *sub;
	size_t *map;
	unsigned *sprio;
	struct an_costs *costs;
};

static int buf_alloc(struct assign_buf *a, size_t n)
{
	a->sub = calloc(n ? n : 1, sizeof(*a->sub));
	a->map = calloc(n ? n : 1, sizeof(*a->map));
	a->sprio = calloc(n ? n : 1, sizeof(*a->sprio));
	a->costs = calloc(n ? n : 1, sizeof(*a->costs));
	return a->sub && a->map && a->sprio && a->costs ? 0 : -ENOMEM;
}

static void buf_free(struct assign_buf *a)
{
	free(a->sub);
	free(a->map);
	free(a->sprio);
	free(a->costs);
}

static int check_assign(const struct an_flow *flows, size_t n, const struct an_mcore *mc)
{
	for (size_t i = 0; mc->core && i < n; i++)
		if (mc->core[i] >= cores_of(mc) &&
		    !(mc->core[i] == AN_ANY_CORE && flows[i].best_effort))
			return -EINVAL;
	return 0;
}

int an_mcore_assign_dm(const struct an_flow *flows, size_t n, const struct an_mcore *mc,
		       unsigned *prio)
{
	struct assign_buf a = { 0 };
	int ret;

	if (cores_of(mc) <= 1) {
		an_assign_dm(flows, n, prio);
		return 0;
	}
	ret = check_assign(flows, n, mc);
	if (!ret)
		ret = buf_alloc(&a, n);
	for (size_t i = 0; !ret && i < n; i++)
		prio[i] = 0;
	for (uint32_t c = 0; !ret && c < cores_of(mc); c++) {
		size_t k = core_set(flows, n, mc, c, a.sub, a.map);

		an_assign_dm(a.sub, k, a.sprio);
		put_ranks(mc, c, a.map, a.sprio, k, prio);
	}
	buf_free(&a);
	return ret;
}

/* Audsley's search on core c's set, with c's broker. */
static int opa_core(const struct an_flow *flows, size_t n, const struct an_broker *b,
		    const struct an_mcore *mc, const struct an_mcore_terms *lt, uint32_t c,
		    struct assign_buf *a, unsigned *prio)
{
	struct an_broker bc;
	size_t k = core_set(flows, n, mc, c, a->sub, a->map);
	int ret;

	an_mcore_broker(b, mc, lt, c, &bc);
	for (size_t j = 0; j < k; j++) {
		ret = an_flow_costs(&a->sub[j], &bc, &a->costs[j]);
		if (ret)
			return ret;
	}
	ret = an_assign_opa(a->sub, k, &bc, a->costs, a->sprio);
	if (!ret)
		put_ranks(mc, c, a->map, a->sprio, k, prio);
	return ret;
}

int an_mcore_assign_opa(const struct an_flow *flows, size_t n, const struct an_broker *b,
			const struct an_mcore *mc, unsigned *prio)
{
	struct an_mcore_terms lt;
	struct assign_buf a = { 0 };
	int ret;

	if (cores_of(mc) <= 1) {
		ret = buf_alloc(&a, n);
		for (size_t i = 0; !ret && i < n; i++)
			ret = an_flow_costs(&flows[i], b, &a.costs[i]);
		if (!ret)
			ret = an_assign_opa(flows, n, b, a.costs, prio);
		buf_free(&a);
		return ret;
	}
	ret = check_assign(flows, n, mc);
	if (ret || !mc->tx_slots)
		return -EINVAL;
	ret = buf_alloc(&a, n);
	for (size_t i = 0; !ret && i < n; i++)
		ret = an_flow_costs(&flows[i], b, &a.costs[i]);
	if (!ret)
		an_mcore_terms(b, mc, a.costs, n, &lt);
	for (size_t i = 0; !ret && i < n; i++)
		prio[i] = 0;
	for (uint32_t c = 0; !ret && c < cores_of(mc); c++)
		ret = opa_core(flows, n, b, mc, &lt, c, &a, prio);
	buf_free(&a);
	return ret;
}
