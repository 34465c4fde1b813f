/* [workload NAME] sections: what a flow's sender does (periodic, bulk or off), laid
 * over the workload a flow implies. */
#include "config_int.h"

#include <limits.h>
#include <string.h>

int cfg_open_workload(struct parser *ps, int line, const char *name)
{
	struct rtvio_config *cfg = ps->cfg;

	for (int i = 0; i < cfg->nworkloads; i++) {
		if (strcmp(cfg->workloads[i].name, name) == 0)
			return cfg_fail(ps, line, "duplicate workload name '%s' (first at line %d)",
					name, cfg->workloads[i].line);
	}
	if (cfg->nworkloads >= RTVIO_MAX_FLOWS)
		return cfg_fail(ps, line, "too many workloads (at most %d)", RTVIO_MAX_FLOWS);
	/* The workloads and their raw records share one capacity, ps->cap_wls. */
	int cap = ps->cap_wls;
	struct rtvio_workload_cfg *w = cfg_grow(cfg->workloads, &cap, cfg->nworkloads + 1,
						sizeof(*w));

	if (!w)
		return cfg_fail(ps, line, "out of memory");
	cfg->workloads = w;
	struct raw *r = cfg_grow(ps->wl_raw, &ps->cap_wls, cfg->nworkloads + 1, sizeof(*r));

	if (!r)
		return cfg_fail(ps, line, "out of memory");
	ps->wl_raw = r;
	w = &cfg->workloads[cfg->nworkloads];
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->flow = -1;
	w->line = line;
	ps->index = cfg->nworkloads++;
	return 0;
}

int cfg_workload_key(struct parser *ps, const struct keyctx *k, int key)
{
	static const char *const patterns[] = { "periodic", "bulk", "off", NULL };
	struct rtvio_workload_cfg *w = &ps->cfg->workloads[ps->index];
	struct raw *r = &ps->wl_raw[ps->index];
	long long v;
	int p;

	switch (key) {
	case WK_FLOW:
		if (!cfg_valid_name(k->value))
			return cfg_key_fail(k, "'%s': expected the name of a flow", k->value);
		snprintf(r->from, sizeof(r->from), "%s", k->value);
		return 0;
	case WK_PATTERN:
		if (cfg_get_word(k, patterns, &p))
			return ps->ret;
		w->pattern = (enum rtvio_pattern)p;
		w->set |= RTVIO_WL_PATTERN;
		return 0;
	case WK_SIZE:
		w->set |= RTVIO_WL_SIZE;
		return cfg_get_size(k, 1, RTVIO_MAX_MSG_SIZE, &w->size);
	case WK_PERIOD:
		w->set |= RTVIO_WL_PERIOD;
		return cfg_get_time(k, 1, &w->period_ns);
	case WK_OFFSET:
		w->set |= RTVIO_WL_OFFSET;
		return cfg_get_time(k, 0, &w->offset_ns);
	case WK_COUNT:
		if (cfg_get_int(k, 0, LLONG_MAX, &v))
			return ps->ret;
		w->count = (uint64_t)v;
		w->set |= RTVIO_WL_COUNT;
		return 0;
	}
	return 0;
}

int cfg_check_workloads(struct parser *ps)
{
	struct rtvio_config *cfg = ps->cfg;

	for (int i = 0; i < cfg->nworkloads; i++) {
		struct rtvio_workload_cfg *w = &cfg->workloads[i];
		struct raw *r = &ps->wl_raw[i];

		if (!(r->set & (1u << WK_FLOW)))
			return cfg_fail(ps, w->line, "[workload %s]: missing key 'flow' (the flow it drives)",
				    w->name);
		w->flow = rtvio_config_find_flow(cfg, r->from);
		if (w->flow < 0)
			return cfg_fail(ps, r->key_line[WK_FLOW], "[workload %s] key 'flow': unknown flow "
				    "'%s' (no [flow %s] section)", w->name, r->from, r->from);
		struct rtvio_flow_cfg *fl = &cfg->flows[w->flow];
		struct rtvio_traffic *t = &fl->traffic;

		if (t->workload >= 0)
			return cfg_fail(ps, w->line, "[workload %s]: flow %s already has a workload (%s, "
				    "line %d)", w->name, fl->name, cfg->workloads[t->workload].name,
				    cfg->workloads[t->workload].line);
		t->workload = i;
		if (w->set & RTVIO_WL_PATTERN)
			t->pattern = w->pattern;
		else
			w->pattern = t->pattern;
		if (w->set & RTVIO_WL_SIZE)
			t->size = w->size;
		if (w->set & RTVIO_WL_OFFSET)
			t->offset_ns = w->offset_ns;
		if (w->set & RTVIO_WL_COUNT)
			t->count = w->count;
		if (t->pattern == RTVIO_PATTERN_PERIODIC) {
			if (w->set & RTVIO_WL_PERIOD)
				t->period_ns = w->period_ns;
			else if (fl->best_effort)
				return cfg_fail(ps, w->line, "[workload %s]: missing key 'period' (flow %s is "
					    "best-effort and has no period of its own)", w->name,
					    fl->name);
		} else {
			if (w->set & RTVIO_WL_PERIOD)
				return cfg_fail(ps, r->key_line[WK_PERIOD], "[workload %s] key 'period': "
					    "only for pattern = periodic", w->name);
			t->period_ns = 0;
		}
		if (t->pattern == RTVIO_PATTERN_OFF && (w->set & (RTVIO_WL_SIZE | RTVIO_WL_OFFSET |
								  RTVIO_WL_COUNT)))
			return cfg_fail(ps, w->line, "[workload %s]: pattern = off takes no size, offset "
				    "or count", w->name);
	}
	return 0;
}
