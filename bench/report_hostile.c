/* report.md's section for `rtvio bench hostile` (sc_hostile.c): per misbehaviour,
 * each victim flow's worst latency and broker residence against its bounds, next to
 * the unloaded run. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static const char *str_of(const json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : dflt;
}

static double num_of(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : -1;
}

static void cell_num(FILE *md, double v, int prec)
{
	if (v < 0)
		fprintf(md, " – |");
	else
		fprintf(md, " %.*f |", prec, v);
}

/* Flow `name` of a run, or NULL. */
static const json_t *run_flow(const json_t *run, const char *name)
{
	const json_t *f;
	size_t i;

	json_array_foreach(json_object_get(run, "flows"), i, f)
		if (!strcmp(str_of(f, "flow", ""), name))
			return f;
	return NULL;
}

/* "ok", "host" (every message over its bound attributed to a host stall), or
 * "unexplained"; the same for the residence against R. */
static const char *verdict(const json_t *f)
{
	if (json_is_true(json_object_get(f, "violation")))
		return str_of(f, "cause", "unexplained");
	if (json_is_true(json_object_get(f, "residence_violation")))
		return str_of(f, "residence_cause", "unexplained");
	return "ok";
}

static void flow_row(FILE *md, const json_t *run, const json_t *f, const json_t *base)
{
	fprintf(md, "| %s | %s |", str_of(run, "label", "?"), str_of(f, "flow", "?"));
	cell_num(md, num_of(f, "messages"), 0);
	cell_num(md, num_of(f, "lost"), 0);
	cell_num(md, num_of(f, "corrupt"), 0);
	cell_num(md, num_of(f, "max_us"), 1);
	cell_num(md, base ? num_of(base, "max_us") : -1, 1);
	cell_num(md, num_of(f, "bound_us"), 1);
	cell_num(md, num_of(f, "ratio"), 2);
	cell_num(md, num_of(f, "residence_max_us"), 1);
	cell_num(md, base ? num_of(base, "residence_max_us") : -1, 1);
	cell_num(md, num_of(f, "response_us"), 1);
	cell_num(md, num_of(f, "residence_ratio"), 2);
	fprintf(md, " %s |\n", verdict(f));
}

/* One line per run: what the hostile cell did, and the victims' totals. */
static void run_summary(FILE *md, const json_t *run)
{
	const json_t *f;
	double lost = 0, corrupt = 0, worst = -1, worst_res = -1;
	size_t i, bad = 0;

	json_array_foreach(json_object_get(run, "flows"), i, f) {
		lost += num_of(f, "lost") > 0 ? num_of(f, "lost") : 0;
		corrupt += num_of(f, "corrupt") > 0 ? num_of(f, "corrupt") : 0;
		if (num_of(f, "ratio") > worst)
			worst = num_of(f, "ratio");
		if (num_of(f, "residence_ratio") > worst_res)
			worst_res = num_of(f, "residence_ratio");
		bad += !strcmp(verdict(f), "unexplained");
	}
	fprintf(md, "| %s |", str_of(run, "label", "?"));
	cell_num(md, lost, 0);
	cell_num(md, corrupt, 0);
	cell_num(md, worst, 2);
	cell_num(md, worst_res, 2);
	fprintf(md, " %zu |", bad);
	cell_num(md, json_is_number(json_object_get(json_object_get(run, "foreign_rt"), "ran_ms"))
			     ? num_of(json_object_get(run, "foreign_rt"), "ran_ms") : -1, 1);
	fprintf(md, " %s | %s |\n", str_of(run, "status", "?"), str_of(run, "hostile", "idle"));
}

void bench_report_hostile(FILE *md, const json_t *sc)
{
	const json_t *runs = json_object_get(sc, "runs_detail"), *base = NULL, *r, *f;
	size_t i, j;

	json_array_foreach(runs, i, r)
		if (!strcmp(str_of(r, "mode", ""), "none"))
			base = r;
	fprintf(md, "\n## hostile: victims' bounds next to a misbehaving cell\n\n");
	bench_report_platform(md, sc);
	fprintf(md, "%s\n\n"
		    "| run | lost | corrupt | worst max/bound | worst broker max/R | unexplained "
		    "flows | other programs' real-time ms | status | hostile cell |\n"
		    "|---|---|---|---|---|---|---|---|---|\n",
		str_of(sc, "conditions", ""));
	json_array_foreach(runs, i, r)
		run_summary(md, r);
	fprintf(md, "\n### Per victim flow (unloaded: the same flow with the hostile cell "
		    "idle)\n\n| run | flow | messages | lost | corrupt | max µs | unloaded max µs |"
		    " bound µs | max/bound | broker max µs | unloaded broker max µs | R µs |"
		    " broker max/R | verdict |\n"
		    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	json_array_foreach(runs, i, r)
		json_array_foreach(json_object_get(r, "flows"), j, f)
			flow_row(md, r, f, base ? run_flow(base, str_of(f, "flow", "")) : NULL);
	fprintf(md, "\n%s\n", str_of(sc, "reading", ""));
}
