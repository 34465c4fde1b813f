/* [flow NAME] sections: defaults, keys, and the checks across flows (their cells,
 * one flow per connection, one socket type per port). */
#include "config_int.h"

#include <string.h>

int cfg_open_flow(struct parser *ps, int line, const char *name)
{
	struct rtvio_config *cfg = ps->cfg;
	int i = rtvio_config_find_flow(cfg, name);

	if (i >= 0)
		return cfg_fail(ps, line, "duplicate flow name '%s' (first at line %d)", name,
				cfg->flows[i].line);
	if (cfg->nflows >= RTVIO_MAX_FLOWS)
		return cfg_fail(ps, line, "too many flows (at most %d)", RTVIO_MAX_FLOWS);
	/* The flows and their raw records share one capacity, ps->cap_flows. */
	int cap = ps->cap_flows;
	struct rtvio_flow_cfg *fl = cfg_grow(cfg->flows, &cap, cfg->nflows + 1, sizeof(*fl));

	if (!fl)
		return cfg_fail(ps, line, "out of memory");
	cfg->flows = fl;
	struct raw *r = cfg_grow(ps->flow_raw, &ps->cap_flows, cfg->nflows + 1, sizeof(*r));

	if (!r)
		return cfg_fail(ps, line, "out of memory");
	ps->flow_raw = r;
	fl = &cfg->flows[cfg->nflows];
	snprintf(fl->name, sizeof(fl->name), "%s", name);
	fl->from = fl->to = -1;
	fl->type = RTVIO_STREAM;
	fl->traffic.workload = -1;
	fl->rem.remote = -1;
	fl->line = line;
	ps->index = cfg->nflows++;
	return 0;
}

int cfg_flow_key(struct parser *ps, const struct keyctx *k, int key)
{
	static const char *const types[] = { "stream", "seqpacket", NULL };
	static const char *const classes[] = { "real-time", "best-effort", NULL };
	struct rtvio_flow_cfg *fl = &ps->cfg->flows[ps->index];
	struct raw *r = &ps->flow_raw[ps->index];
	bool has_port;
	long long v;
	int w;

	/* BROKER/CELL: an end on another broker, reached through a gateway. */
	if ((key == FK_FROM || key == FK_TO) && strchr(k->value, '/'))
		return cfg_remote_flow_end(ps, k, key == FK_TO);
	switch (key) {
	case FK_FROM:
		return cfg_get_endpoint(k, r->from, &fl->from_port, &has_port);
	case FK_TO:
		if (cfg_get_endpoint(k, r->to, &fl->to_port, &has_port))
			return ps->ret;
		if (!has_port)
			return cfg_key_fail(k, "'%s': expected CELL:PORT (the port the receiver listens on)",
					k->value);
		return 0;
	case FK_TYPE:
		if (cfg_get_word(k, types, &w))
			return ps->ret;
		fl->type = (enum rtvio_sock_type)w;
		return 0;
	case FK_SIZE:
		/* 0 is read here and refused after the section, where the type is known. */
		return cfg_get_size(k, 0, RTVIO_MAX_MSG_SIZE, &fl->size);
	case FK_PERIOD:
		return cfg_get_time(k, 1, &fl->period_ns);
	case FK_DEADLINE:
		return cfg_get_time(k, 1, &fl->deadline_ns);
	case FK_JITTER:
		return cfg_get_time(k, 0, &fl->jitter_ns);
	case FK_PRIORITY:
		if (cfg_get_int(k, 1, 1000000, &v))
			return ps->ret;
		fl->priority = (int)v;
		return 0;
	case FK_CLASS:
		if (cfg_get_word(k, classes, &w))
			return ps->ret;
		fl->best_effort = w == 1;
		return 0;
	}
	return 0;
}

static int resolve_end(struct parser *ps, int flow, int key, const char *cell, int *out)
{
	struct rtvio_flow_cfg *fl = &ps->cfg->flows[flow];
	int i = rtvio_config_find_cell(ps->cfg, cell);

	if (i < 0)
		return cfg_fail(ps, ps->flow_raw[flow].key_line[key], "[flow %s] key '%s': unknown cell "
			    "'%s' (no [cell %s] section)", fl->name, cfg_flow_keys[key], cell, cell);
	*out = i;
	return 0;
}

int cfg_check_flows(struct parser *ps)
{
	struct rtvio_config *cfg = ps->cfg;

	for (int i = 0; i < cfg->nflows; i++) {
		struct rtvio_flow_cfg *fl = &cfg->flows[i];
		struct raw *r = &ps->flow_raw[i];
		static const int required[] = { FK_FROM, FK_TO, FK_SIZE };
		static const char *const what[] = { "the sending cell, CELL or CELL:PORT",
			"the receiving cell and its listening port, CELL:PORT",
			"bytes per message (seqpacket) or per period (stream)" };

		for (int j = 0; j < 3; j++) {
			if (!(r->set & (1u << required[j])))
				return cfg_fail(ps, fl->line, "[flow %s]: missing key '%s' (%s)", fl->name,
					    cfg_flow_keys[required[j]], what[j]);
		}
		if (cfg_remote_resolve_flow(ps, i) ||
		    resolve_end(ps, i, FK_FROM, r->from, &fl->from) ||
		    resolve_end(ps, i, FK_TO, r->to, &fl->to))
			return ps->ret;
		if (fl->from == fl->to)
			return cfg_fail(ps, r->key_line[FK_TO], "[flow %s] key 'to': the flow starts and "
				    "ends at cell %s (a flow joins two different cells)", fl->name,
				    r->to);
		if (fl->size == 0)
			return cfg_fail(ps, r->key_line[FK_SIZE], "[flow %s] key 'size': %s", fl->name,
				    fl->type == RTVIO_SEQPACKET ?
				    "a seqpacket flow needs messages of at least 1 byte" :
				    "a stream flow needs at least 1 byte per period");
		if (fl->best_effort) {
			static const int rt_only[] = { FK_PERIOD, FK_DEADLINE, FK_JITTER, FK_PRIORITY };

			for (int j = 0; j < 4; j++) {
				if (r->set & (1u << rt_only[j]))
					return cfg_fail(ps, r->key_line[rt_only[j]], "[flow %s] key '%s': "
						    "not for a best-effort flow (it has no period, "
						    "deadline or priority; a [workload] sets its pace)",
						    fl->name, cfg_flow_keys[rt_only[j]]);
			}
		} else {
			if (!(r->set & (1u << FK_PERIOD)))
				return cfg_fail(ps, fl->line, "[flow %s]: missing key 'period' (the minimum "
					    "time between messages of a real-time flow; or "
					    "class = best-effort)", fl->name);
			if (!(r->set & (1u << FK_DEADLINE)))
				fl->deadline_ns = fl->period_ns;
		}
		/* One flow per connection: the broker must know which flow a connection
		 * is from its endpoints and socket type alone (a STREAM and a SEQPACKET
		 * flow may share all the rest). */
		for (int j = 0; j < i; j++) {
			const struct rtvio_flow_cfg *o = &cfg->flows[j];

			if (o->from == fl->from && o->to == fl->to && o->to_port == fl->to_port &&
			    o->type == fl->type &&
			    (o->from_port == RTVIO_PORT_ANY || fl->from_port == RTVIO_PORT_ANY ||
			     o->from_port == fl->from_port))
				return cfg_fail(ps, fl->line, "[flow %s]: %s connections from %s to %s:%u "
					    "would also match flow %s (line %d); give each a distinct "
					    "source port (from = CELL:PORT)", fl->name,
					    rtvio_sock_type_name(fl->type), cfg->cells[fl->from].name,
					    cfg->cells[fl->to].name, fl->to_port, o->name, o->line);
		}
		/* The implied workload; [workload] sections refine it below. */
		fl->traffic.pattern = fl->best_effort ? RTVIO_PATTERN_BULK : RTVIO_PATTERN_PERIODIC;
		fl->traffic.size = fl->size;
		fl->traffic.period_ns = fl->period_ns;
		fl->traffic.offset_ns = 0;
		fl->traffic.count = 0;
		fl->traffic.workload = -1;
	}
	return 0;
}
