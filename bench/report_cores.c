/* report.md's section for `rtvio bench cores` (sc_cores.c). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static void num(FILE *md, const json_t *o, const char *key, int prec)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_number(v))
		fprintf(md, " %.*f |", prec, json_number_value(v));
	else
		fprintf(md, " - |");
}

static const json_t *flow_row(const json_t *run, const char *name)
{
	const json_t *f;
	size_t i;

	json_array_foreach(json_object_get(run, "flows"), i, f)
		if (!strcmp(json_string_value(json_object_get(f, "flow")) ?: "", name))
			return f;
	return NULL;
}

void bench_report_cores(FILE *md, const json_t *sc)
{
	const char *cond = json_string_value(json_object_get(sc, "conditions"));
	const char *reading = json_string_value(json_object_get(sc, "reading"));
	const json_t *r;
	size_t i;

	fprintf(md, "\n## cores: one and two broker cores, 2..64 cells\n\n");
	bench_report_platform(md, sc);
	if (cond)
		fprintf(md, "%s\n\n", cond);
	fprintf(md, "| cells | broker cores | bulk MB/s | messages | broker CPU %% | "
		    "control p50 µs | control p99 µs | control max µs | control bound µs | "
		    "lost | status |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
	json_array_foreach(json_object_get(sc, "runs_detail"), i, r) {
		const json_t *ctl = flow_row(r, "control");

		fprintf(md, "|");
		num(md, r, "cells", 0);
		num(md, r, "broker_cores", 0);
		num(md, r, "best_effort_mb_s", 1);
		num(md, r, "messages", 0);
		num(md, r, "broker_cpu_pct", 1);
		num(md, ctl, "p50_us", 1);
		num(md, ctl, "p99_us", 1);
		num(md, ctl, "max_us", 1);
		num(md, ctl, "bound_us", 1);
		num(md, ctl, "lost", 0);
		fprintf(md, " %s |\n", json_string_value(json_object_get(r, "status")) ?: "?");
	}
	if (reading)
		fprintf(md, "\n%s\n", reading);
}
