/* report.md's tables for `rtvio bench provision` (sc_provision.c): admission time
 * against the flows admitted, clone against cold boot, and what the churn runs saw
 * beside their latency (which report.c's latency section shows). */
#include <jansson.h>
#include <stdio.h>

#include "bench.h"

static double num(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : -1;
}

static void admit_table(FILE *md, const json_t *rows)
{
	const json_t *r;
	size_t i;

	fprintf(md, "\n### Time to admit one flow\n\n"
		    "| flows admitted | n | median (ms) | min (ms) | max (ms) |\n|---|---|---|---|---|\n");
	json_array_foreach(rows, i, r)
		fprintf(md, "| %.0f | %.0f | %.2f | %.2f | %.2f |\n", num(r, "flows_admitted"),
			num(r, "n"), num(r, "median_ms"), num(r, "min_ms"), num(r, "max_ms"));
	if (!json_array_size(rows))
		fprintf(md, "| - | - | - | - | - |\n");
}

static void apply_line(FILE *md, const json_t *sc, const char *key, const char *what)
{
	double a = num(sc, key);

	if (a >= 0)
		fprintf(md, "\nApply step the analysis charges (blocking, once per window) %s: "
			    "%.1f µs.\n", what, a);
}

static void clone_table(FILE *md, const json_t *sc)
{
	const json_t *c = json_object_get(sc, "clone");
	const char *err = json_string_value(json_object_get(sc, "clone_error"));

	fprintf(md, "\n### Request to first message: cold boot against instant clone\n\n");
	if (!json_is_object(c)) {
		fprintf(md, "**Not measured:** %s.\n", err ? err : "no result");
		return;
	}
	fprintf(md, "| kind | n | median (s) | max (s) |\n|---|---|---|---|\n");
	for (int k = 0; k < 2; k++) {
		const json_t *x = json_object_get(c, k ? "clone" : "cold");

		fprintf(md, "| %s | %.0f | %.2f | %.2f |\n", k ? "clone" : "cold boot", num(x, "n"),
			num(x, "median_s"), num(x, "max_s"));
	}
	fprintf(md, "\nClone is %.2f× faster (medians); the template was saved once in %.1f s, "
		    "not counted.\n", num(c, "speedup_median"), num(c, "template_save_s"));
}

static void churn_table(FILE *md, const json_t *runs)
{
	const json_t *r;
	size_t i;

	fprintf(md, "\n### Churn runs: changes made and host stalls seen\n\n"
		    "| run | change cycles | failed cycles | slowest change (ms) | longest stall (µs) |\n"
		    "|---|---|---|---|---|\n");
	json_array_foreach(runs, i, r) {
		fprintf(md, "| %s |", json_string_value(json_object_get(r, "label")));
		if (json_object_get(r, "churn_cycles"))
			fprintf(md, " %.0f | %.0f | %.2f |", num(r, "churn_cycles"),
				num(r, "churn_failed"), num(r, "churn_worst_change_ms"));
		else
			fprintf(md, " - | - | - |");
		if (num(r, "longest_stall_us") >= 0)
			fprintf(md, " %.0f |\n", num(r, "longest_stall_us"));
		else
			fprintf(md, " - |\n");
	}
}

void bench_report_provision(FILE *md, const json_t *sc)
{
	churn_table(md, json_object_get(sc, "runs"));
	apply_line(md, sc, "churn_apply_bound_us", "at the churn broker's capacity (4 cells, 7 flows)");
	if (num(sc, "control_bound_us") >= 0)
		fprintf(md, "\nThe control flow's latency bound (`rtvio analyze`, before any change): "
			    "%.1f µs.\n", num(sc, "control_bound_us"));
	admit_table(md, json_object_get(sc, "admit"));
	apply_line(md, sc, "admit_apply_bound_us", "at this broker's capacity (4 cells, flows "
		   "up to the last point + 3)");
	clone_table(md, sc);
	fprintf(md, "\n");
	bench_report_platform(md, sc);
}
