/* report.md's section for `rtvio bench isa` (sc_isa.c, scripts/vm/isabench). */
#include <jansson.h>
#include <stdio.h>

#include "bench.h"

static void cell_ms(FILE *md, const json_t *v, double scale)
{
	if (json_is_number(v))
		fprintf(md, " %.2f |", json_number_value(v) * scale);
	else
		fprintf(md, " - |");
}

void bench_report_isa(FILE *md, const json_t *sc)
{
	const json_t *cells = json_object_get(sc, "cells"), *c;
	const char *cond = json_string_value(json_object_get(sc, "conditions"));
	const char *reading = json_string_value(json_object_get(sc, "reading"));
	size_t i;

	fprintf(md, "\n## isa: bare metal on three ISAs, the Linux guest, a process cell\n\n");
	if (cond)
		fprintf(md, "%s\n\n", cond);
	fprintf(md, "| cell | kind | ISA | boot to first message (ms) | rtt min (ms) | "
		    "rtt p50 (ms) | rtt p99 (ms) | rtt max (ms) | note |\n"
		    "|---|---|---|---|---|---|---|---|---|\n");
	json_array_foreach(cells, i, c) {
		const json_t *rtt = json_object_get(c, "rtt_us");
		const char *err = json_string_value(json_object_get(c, "error"));

		fprintf(md, "| %s | %s | %s |", json_string_value(json_object_get(c, "name")),
			json_string_value(json_object_get(c, "kind")),
			json_string_value(json_object_get(c, "arch")));
		cell_ms(md, json_object_get(c, "boot_to_first_ms"), 1);
		cell_ms(md, json_object_get(rtt, "min"), 1e-3);
		cell_ms(md, json_object_get(rtt, "p50"), 1e-3);
		cell_ms(md, json_object_get(rtt, "p99"), 1e-3);
		cell_ms(md, json_object_get(rtt, "max"), 1e-3);
		fprintf(md, " %s |\n", err ? err : "");
	}
	if (reading)
		fprintf(md, "\n%s\n", reading);
}
