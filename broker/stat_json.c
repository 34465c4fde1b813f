/* The document `rtvio stat` shows (docs/broker.md, "rtvio stat"): the broker's
 * configuration summary, each cell's and each flow's statistics, the regulator's,
 * read through the daemon's and the data plane's accessors. */
#include <stdbool.h>
#include <stdlib.h>
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

/* The data plane's counters, all read in one write section of its lock (on several
 * cores one pass of the write gate, not one per accessor: docs/broker.md "Several
 * cores"), so that they are consistent with each other. The arrays are allocated
 * before and turned into JSON after: the section itself allocates nothing. */
struct stat_snap {
	struct dp_cell_stats *cell;
	struct dp_flow_stats *flow;
	bool *flow_ok;
	struct dp_reg_stats reg;
	struct dp_notify_stats ns;
	uint64_t writes, gate_waits;
};

static int snap_take(const struct broker *b, struct dp *dp, struct stat_snap *s)
{
	unsigned int nc = broker_ncells(b), nf = dp_nflows(dp);

	s->cell = calloc(nc ? nc : 1, sizeof(*s->cell));
	s->flow = calloc(nf ? nf : 1, sizeof(*s->flow));
	s->flow_ok = calloc(nf ? nf : 1, sizeof(*s->flow_ok));
	if (!s->cell || !s->flow || !s->flow_ok)
		return -1;
	dp_ctl_lock(dp);
	for (unsigned int i = 0; i < nc; i++)
		if (!broker_cell_present(b, i) || dp_stats_cell(dp, i, &s->cell[i]) < 0)
			memset(&s->cell[i], 0, sizeof(s->cell[i]));
	for (unsigned int f = 0; f < nf; f++)
		s->flow_ok[f] = dp_flow_name(dp, f) && dp_stats_flow(dp, f, &s->flow[f]) >= 0;
	dp_stats_reg(dp, &s->reg);
	dp_stats_notify(dp, &s->ns);
	dp_write_gate_stats(dp, &s->writes, &s->gate_waits);
	dp_ctl_unlock(dp);
	return 0;
}

static void snap_free(struct stat_snap *s)
{
	free(s->cell);
	free(s->flow);
	free(s->flow_ok);
}

/* One present cell's line: its vhost-user state and its data-path counters. */
static json_t *cell_json(const struct broker *b, unsigned int i, const struct dp_cell_stats *cs)
{
	struct broker_cell_info ci;
	json_t *c;

	broker_cell_info(b, i, &ci);
	c = json_pack("{s:s, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
		      "s:I, s:I, s:I, s:I, s:I}",
		      "name", ci.name, "cid", (json_int_t)ci.cid, "state",
		      broker_cell_state_name(ci.state), "running", ci.running,
		      "connects", (json_int_t)ci.connects, "kicks", (json_int_t)ci.kicks,
		      "packets_in", (json_int_t)cs->pkts_in, "bytes_in", (json_int_t)cs->bytes_in,
		      "packets_out", (json_int_t)cs->pkts_out, "bytes_out",
		      (json_int_t)cs->bytes_out, "refused", (json_int_t)cs->refused,
		      "resets", (json_int_t)cs->resets, "connections_refused",
		      (json_int_t)ci.refused, "connection_limit_refusals",
		      (json_int_t)cs->conn_limit_refusals, "budget_waits",
		      (json_int_t)cs->budget_waits, "ctrl_over_budget",
		      (json_int_t)cs->ctrl_over_budget, "chunks_over_budget",
		      (json_int_t)cs->chunks_over_budget, "mem_waits",
		      (json_int_t)cs->mem_waits, "vhu_deferred", (json_int_t)ci.vhu_deferred);
	return c;
}

/* One configured (or best-effort) flow's line. */
static json_t *flow_json(const struct rtvio_config *cfg, struct dp *dp, unsigned int f,
			 const struct dp_flow_stats *fs)
{
	bool be = f >= (unsigned int)cfg->nflows;

	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:I, s:o}",
			 "name", dp_flow_name(dp, f), "class",
			 be || cfg->flows[f].best_effort ? "best-effort" : "real-time",
			 "deadline_ns", (json_int_t)(be ? 0 : cfg->flows[f].deadline_ns),
			 "packets", (json_int_t)fs->packets, "bytes", (json_int_t)fs->bytes,
			 "chunks", (json_int_t)fs->chunks, "policed", (json_int_t)fs->policed,
			 "oversize", (json_int_t)fs->oversize,
			 "deadline_misses", (json_int_t)fs->deadline_misses,
			 "max_residence_ns", (json_int_t)fs->max_residence_ns,
			 "max_residence_at_ns", (json_int_t)fs->max_residence_at,
			 "max_budget_wait_ns", (json_int_t)fs->max_budget_wait_ns, "queued",
			 (json_int_t)fs->queued, "connections", (json_int_t)fs->connections,
			 "residence_hist", hist_json(fs->hist));
}

/* The broker-wide part: configuration, regulation and notification counters. */
static json_t *broker_json(const struct broker *b, const struct stat_snap *snap,
			   json_t *cells, json_t *flows)
{
	const struct rtvio_config *cfg = broker_config(b);
	json_t *st;

	st = json_pack("{s:I, s:s, s:b, s:I, s:s, s:f, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, "
		       "s:{s:I, s:I}, s:o, s:o}",
		       "generation", (json_int_t)broker_generation(b), "policy",
		       rtvio_policy_name(cfg->broker.policy), "poll", cfg->broker.poll,
		       "chunk", (json_int_t)cfg->broker.chunk, "copy",
		       rtvio_copy_name(cfg->broker.copy), "uptime_s",
		       (double)broker_uptime_ns(b) / 1e9, "regulation", "budget",
		       (json_int_t)snap->reg.budget, "period_ns", (json_int_t)snap->reg.period_ns,
		       "bytes", (json_int_t)snap->reg.bytes, "throttled_periods",
		       (json_int_t)snap->reg.throttled_periods, "throttled_ns",
		       (json_int_t)snap->reg.throttled_ns, "reserve", (json_int_t)snap->reg.reserve,
		       "best_effort_waits", (json_int_t)snap->reg.be_waits, "notifications",
		       "checks", (json_int_t)snap->ns.checks, "sent", (json_int_t)snap->ns.sent,
		       "cells", cells, "flows", flows);
	if (st && cfg->broker.ncores > 1)
		json_object_set_new(st, "write_gate",
				    json_pack("{s:I, s:I}", "writes", (json_int_t)snap->writes,
					      "waits", (json_int_t)snap->gate_waits));
	return st;
}

json_t *broker_stat_json(const struct broker *b)
{
	struct dp *dp = broker_dp(b);
	struct stat_snap snap = { 0 };
	json_t *cells = json_array(), *flows = json_array(), *st;

	if (!cells || !flows || snap_take(b, dp, &snap))
		goto fail;
	for (unsigned int i = 0; i < broker_ncells(b); i++)
		if (broker_cell_present(b, i))
			json_array_append_new(cells, cell_json(b, i, &snap.cell[i]));
	for (unsigned int f = 0; f < dp_nflows(dp); f++)
		if (snap.flow_ok[f]) /* else a vacant slot */
			json_array_append_new(flows, flow_json(broker_config(b), dp, f,
							       &snap.flow[f]));
	st = broker_json(b, &snap, cells, flows);
	snap_free(&snap);
	return st;
fail:
	snap_free(&snap);
	json_decref(cells);
	json_decref(flows);
	return NULL;
}
