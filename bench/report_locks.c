/* report.md's section for `rtvio bench locks` (sc_locks.c). */
#include <jansson.h>
#include <stdio.h>

#include "bench.h"

static void cell_us(FILE *md, const json_t *row, const char *key)
{
	const json_t *v = json_object_get(row, key);

	if (json_is_number(v))
		fprintf(md, " %.2f |", json_number_value(v) / 1e3);
	else
		fprintf(md, " - |");
}

static void cell_int(FILE *md, const json_t *row, const char *key)
{
	const json_t *v = json_object_get(row, key);

	if (json_is_integer(v))
		fprintf(md, " %lld |", (long long)json_integer_value(v));
	else
		fprintf(md, " - |");
}

/* The longest stall any probe saw during the run, µs. */
static void cell_stall(FILE *md, const json_t *row)
{
	const json_t *st = json_object_get(row, "stalls"), *c;
	const char *k;
	double longest = 0;
	long long n = 0;

	json_object_foreach((json_t *)st, k, c) {
		n += (long long)json_integer_value(json_object_get(c, "stalls"));
		if (json_number_value(json_object_get(c, "longest_us")) > longest)
			longest = json_number_value(json_object_get(c, "longest_us"));
	}
	fprintf(md, " %lld (%.0f) |", n, longest);
}

void bench_report_locks(FILE *md, const json_t *sc)
{
	const json_t *rows = json_object_get(sc, "rows"), *r;
	const char *cond = json_string_value(json_object_get(sc, "conditions"));
	const char *reading = json_string_value(json_object_get(sc, "reading"));
	size_t i;

	fprintf(md, "\n## locks: acquire and release latency under contention (%lld cpus, "
		"load average %.2f)\n\n", (long long)json_integer_value(json_object_get(sc, "cpus")),
		json_number_value(json_object_get(sc, "loadavg")));
	if (cond)
		fprintf(md, "%s\n\n", cond);
	fprintf(md, "| lock | threads | acquire p50 µs | p99 µs | max µs | release p50 µs | "
		    "p99 µs | max µs | acquisitions | fairness | violations | host stalls "
		    "(longest µs) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	json_array_foreach(rows, i, r) {
		fprintf(md, "| %s |", json_string_value(json_object_get(r, "lock")));
		cell_int(md, r, "threads");
		cell_us(md, r, "acquire_p50_ns");
		cell_us(md, r, "acquire_p99_ns");
		cell_us(md, r, "acquire_max_ns");
		cell_us(md, r, "release_p50_ns");
		cell_us(md, r, "release_p99_ns");
		cell_us(md, r, "release_max_ns");
		cell_int(md, r, "acquisitions");
		cell_int(md, r, "fairness");
		cell_int(md, r, "violations");
		cell_stall(md, r);
		fprintf(md, "\n");
	}
	if (reading)
		fprintf(md, "\n%s\n", reading);
}
