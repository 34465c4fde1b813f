/* The gateway's results: per flow, what it carried, what it counted instead of
 * passing on, and the DDS deadline misses, as one JSON document or a table. */
#include <stdio.h>

#include "gateway.h"

static json_t *flow_json(const struct gw *g, const struct gw_flow *f)
{
	const struct gw_counts *n = &f->n;
	const struct rtvio_flow_cfg *fl = f->f;

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:I, s:I, s:I, s:I, s:I, s:s}",
			 "flow", fl->name, "direction", f->out ? "out" : "in",
			 "type", rtvio_sock_type_name(fl->type), "remote", g->rm->name,
			 "far_cell", fl->rem.cell,
			 "messages", (json_int_t)n->messages, "bytes", (json_int_t)n->bytes,
			 "samples", (json_int_t)n->samples, "missing", (json_int_t)n->missing,
			 "duplicates", (json_int_t)n->duplicates, "corrupt", (json_int_t)n->corrupt,
			 "rejected", (json_int_t)n->rejected,
			 "unmatched", (json_int_t)n->unmatched,
			 "undelivered", (json_int_t)n->undelivered,
			 "incarnations", (json_int_t)n->incarnations,
			 "connections", (json_int_t)n->connections,
			 "write_errors", (json_int_t)n->write_errors,
			 "dds_deadline_missed", (json_int_t)n->deadline_missed,
			 "status", f->status ? f->status : "not started");
}

json_t *gw_report(const struct gw *g)
{
	json_t *flows = json_array();

	for (int i = 0; i < g->nfl; i++)
		json_array_append_new(flows, flow_json(g, &g->fl[i]));
	return json_pack("{s:s, s:s, s:s, s:i, s:o}", "config", g->conf, "remote", g->rm->name,
			 "gateway_cell", g->cfg.cells[g->rm->gateway].name, "domain",
			 (int)g->rm->domain, "flows", flows);
}

static unsigned long long num(json_t *o, const char *k)
{
	return (unsigned long long)json_integer_value(json_object_get(o, k));
}

void gw_print_table(json_t *doc)
{
	json_t *flows = json_object_get(doc, "flows"), *o;
	size_t i;

	printf("gateway %s (remote %s, DDS domain %d)\n",
	       json_string_value(json_object_get(doc, "gateway_cell")),
	       json_string_value(json_object_get(doc, "remote")),
	       (int)json_integer_value(json_object_get(doc, "domain")));
	printf("%-12s %-3s %-9s %-10s %9s %11s %8s %7s %5s %7s %6s %9s %7s %6s %8s  %s\n",
	       "flow", "dir", "type", "far cell", "messages", "bytes", "samples", "missing",
	       "dup", "corrupt", "reject", "unmatched", "undeliv", "incarn", "ddl-miss", "status");
	json_array_foreach(flows, i, o) {
		printf("%-12s %-3s %-9s %-10s %9llu %11llu %8llu %7llu %5llu %7llu %6llu %9llu "
		       "%7llu %6llu %8llu  %s\n",
		       json_string_value(json_object_get(o, "flow")),
		       json_string_value(json_object_get(o, "direction")),
		       json_string_value(json_object_get(o, "type")),
		       json_string_value(json_object_get(o, "far_cell")), num(o, "messages"),
		       num(o, "bytes"), num(o, "samples"), num(o, "missing"), num(o, "duplicates"),
		       num(o, "corrupt"), num(o, "rejected"), num(o, "unmatched"),
		       num(o, "undelivered"), num(o, "incarnations"), num(o, "dds_deadline_missed"),
		       json_string_value(json_object_get(o, "status")));
	}
}
