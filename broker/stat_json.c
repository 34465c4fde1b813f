/* The document `rtvio stat` shows (docs/broker.md, "rtvio stat"): the broker's
 * configuration summary, each cell's and each flow's statistics, the regulator's,
 * read through the daemon's and the data plane's accessors. */
#include <stdbool.h>
#include <string.h>

#include "config.h"
#include "dataplane.h"
#include "stat_json.h"

static json_t *hist_json(const uint64_t *hist)
{
	json_t *a = json_array();

	for (unsigned int k = 0; a && k < DP_HIST_BUCKETS; k++) {
		json_t *e;

		if (!hist[k])
			continue;
		e = json_pack("{s:I, s:o, s:I}", "lo_ns", (json_int_t)(k ? 1ull << k : 0),
			      "hi_ns",
			      k + 1 < DP_HIST_BUCKETS ? json_integer((json_int_t)(1ull << (k + 1)))
						      : json_null(),
			      "count", (json_int_t)hist[k]);
		json_array_append_new(a, e);
	}
	return a;
}

json_t *broker_stat_json(const struct broker *b)
{
	const struct rtvio_config *cfg = broker_config(b);
	struct dp *dp = broker_dp(b);
	struct dp_reg_stats reg;
	struct dp_notify_stats ns;
	json_t *cells = json_array(), *flows = json_array(), *st;

	if (!cells || !flows)
		goto fail;
	for (unsigned int i = 0; i < broker_ncells(b); i++) {
		struct broker_cell_info ci;
		struct dp_cell_stats cs;

		if (!broker_cell_present(b, i))
			continue;
		broker_cell_info(b, i, &ci);
		if (dp_stats_cell(dp, i, &cs) < 0)
			memset(&cs, 0, sizeof(cs));
		json_array_append_new(
			cells,
			json_pack("{s:s, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
				  "s:I, s:I, s:I}",
				  "name", ci.name, "cid", (json_int_t)ci.cid, "state",
				  broker_cell_state_name(ci.state), "running", ci.running,
				  "connects", (json_int_t)ci.connects, "kicks", (json_int_t)ci.kicks,
				  "packets_in",
				  (json_int_t)cs.pkts_in, "bytes_in", (json_int_t)cs.bytes_in,
				  "packets_out", (json_int_t)cs.pkts_out, "bytes_out",
				  (json_int_t)cs.bytes_out, "refused", (json_int_t)cs.refused,
				  "resets", (json_int_t)cs.resets, "connections_refused",
				  (json_int_t)ci.refused, "connection_limit_refusals",
				  (json_int_t)cs.conn_limit_refusals, "budget_waits",
				  (json_int_t)cs.budget_waits, "ctrl_over_budget",
				  (json_int_t)cs.ctrl_over_budget, "chunks_over_budget",
				  (json_int_t)cs.chunks_over_budget));
		json_object_set_new(json_array_get(cells, json_array_size(cells) - 1),
				    "vhu_deferred", json_integer((json_int_t)ci.vhu_deferred));
	}
	for (unsigned int f = 0; f < dp_nflows(dp); f++) {
		struct dp_flow_stats fs;
		bool be = f >= (unsigned int)cfg->nflows;

		if (!dp_flow_name(dp, f) || dp_stats_flow(dp, f, &fs) < 0)
			continue; /* a vacant slot */
		json_array_append_new(
			flows,
			json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
				  "s:I, s:o}",
				  "name", dp_flow_name(dp, f), "class",
				  be || cfg->flows[f].best_effort ? "best-effort" : "real-time",
				  "deadline_ns", (json_int_t)(be ? 0 : cfg->flows[f].deadline_ns),
				  "packets", (json_int_t)fs.packets, "bytes", (json_int_t)fs.bytes,
				  "chunks", (json_int_t)fs.chunks, "policed", (json_int_t)fs.policed,
				  "oversize", (json_int_t)fs.oversize,
				  "deadline_misses", (json_int_t)fs.deadline_misses,
				  "max_residence_ns", (json_int_t)fs.max_residence_ns,
				  "max_residence_at_ns", (json_int_t)fs.max_residence_at,
				  "max_budget_wait_ns", (json_int_t)fs.max_budget_wait_ns, "queued",
				  (json_int_t)fs.queued, "connections", (json_int_t)fs.connections,
				  "residence_hist", hist_json(fs.hist)));
	}
	dp_stats_reg(dp, &reg);
	dp_stats_notify(dp, &ns);
	st = json_pack("{s:I, s:s, s:b, s:I, s:s, s:f, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, "
		       "s:{s:I, s:I}, s:o, s:o}",
		       "generation", (json_int_t)broker_generation(b), "policy", rtvio_policy_name(cfg->broker.policy), "poll", cfg->broker.poll,
		       "chunk", (json_int_t)cfg->broker.chunk, "copy",
		       rtvio_copy_name(cfg->broker.copy), "uptime_s",
		       (double)broker_uptime_ns(b) / 1e9, "regulation", "budget",
		       (json_int_t)reg.budget, "period_ns", (json_int_t)reg.period_ns, "bytes",
		       (json_int_t)reg.bytes, "throttled_periods",
		       (json_int_t)reg.throttled_periods, "throttled_ns",
		       (json_int_t)reg.throttled_ns, "reserve", (json_int_t)reg.reserve,
		       "best_effort_waits", (json_int_t)reg.be_waits, "notifications", "checks",
		       (json_int_t)ns.checks, "sent", (json_int_t)ns.sent, "cells", cells,
		       "flows", flows);
	return st;
fail:
	json_decref(cells);
	json_decref(flows);
	return NULL;
}
