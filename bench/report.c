/* report.md, plot data and the gnuplot script from a results document. Everything
 * here works from results.json alone, so a report can be regenerated (and tested)
 * without measuring anything. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

struct out {
	const char *dir;
	FILE *md;
	FILE *gp;
	int nplots;
};

static const char *jstr(const json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : dflt;
}

static double jnum(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : -1;
}

static void size_str(double b, char *buf, size_t len)
{
	if (b >= 1048576 && (long long)b % 1048576 == 0)
		snprintf(buf, len, "%.0f MiB", b / 1048576);
	else if (b >= 1024 && (long long)b % 1024 == 0)
		snprintf(buf, len, "%.0f KiB", b / 1024);
	else
		snprintf(buf, len, "%.0f B", b);
}

/* A table cell: the number, or "–" for a missing one. */
static void md_num(FILE *f, double v, int prec)
{
	if (v < 0)
		fprintf(f, " – |");
	else
		fprintf(f, " %.*f |", prec, v);
}

static FILE *open_data(struct out *o, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/plots/%s.dat", o->dir, name);
	return fopen(path, "w");
}

/* Transport (or run label) names are used in file names: keep them tame. */
static void file_safe(const char *in, char *out, size_t len)
{
	size_t i = 0;

	for (; *in && i + 1 < len; in++)
		out[i++] = (char)((*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z') ||
				  (*in >= '0' && *in <= '9') || *in == '-' ? *in : '_');
	out[i] = 0;
}

/* How the x axis is drawn. */
enum xaxis { X_LINEAR, X_LOG, X_LOG_BYTES };

static void plot_header(struct out *o, const char *png, const char *title, const char *xl,
			const char *yl, enum xaxis x, bool logy)
{
	fprintf(o->gp, "\nset output '%s.png'\nset title \"%s\"\nset xlabel \"%s\"\n"
		       "set ylabel \"%s\"\n%s\n%s\nunset xrange\nset key outside right\n",
		png, title, xl, yl,
		x == X_LOG_BYTES ? "set logscale x 2\nset format x '%.0b %BB'"
		: x == X_LOG	 ? "set logscale x 10\nset format x '%g'"
				 : "unset logscale x\nset format x '%g'",
		logy ? "set logscale y" : "unset logscale y");
	fprintf(o->md, "\n![%s](plots/%s.png)\n", title, png);
	o->nplots++;
}

/* ---- size ------------------------------------------------------------------------- */

static void size_latency_table(struct out *o, const json_t *lat)
{
	const json_t *r;
	size_t i;
	char sz[96];

	fprintf(o->md, "\n### Latency (µs, stamp before send to last byte received)\n\n"
		       "| transport | size | period µs | sent | received | lost | corrupt | min |"
		       " p50 | p99 | p99.9 | max | status |\n"
		       "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	json_array_foreach(lat, i, r) {
		const json_t *l = json_object_get(r, "latency_us");

		size_str(jnum(r, "size"), sz, sizeof(sz));
		fprintf(o->md, "| %s | %s |", jstr(r, "transport", "?"), sz);
		md_num(o->md, jnum(r, "period_us"), 0);
		md_num(o->md, jnum(r, "sent"), 0);
		md_num(o->md, jnum(r, "messages"), 0);
		md_num(o->md, jnum(r, "lost"), 0);
		md_num(o->md, jnum(r, "corrupt"), 0);
		md_num(o->md, jnum(l, "min"), 1);
		md_num(o->md, jnum(l, "p50"), 1);
		md_num(o->md, jnum(l, "p99"), 1);
		md_num(o->md, jnum(l, "p999"), 1);
		md_num(o->md, jnum(l, "max"), 1);
		fprintf(o->md, " %s |\n", jstr(r, "status", "?"));
	}
}

/* r's count under key per message under per (both whole-run counts), or -1. */
static double per_msg(const json_t *r, const char *key, const char *per)
{
	double n = jnum(r, key), m = jnum(r, per);

	return n >= 0 && m > 0 ? n / m : -1;
}

/* A table cell listing every run's rate of a throughput row, each with the median
 * cpu 0 - cpu 1 round trip seen during it ("–" without runs). */
static void md_runs(FILE *f, const json_t *r)
{
	const json_t *runs = json_object_get(r, "gbps_runs"), *v;
	const json_t *rtts = json_object_get(r, "xcore_rtt_p50_runs");
	size_t i;

	if (!json_array_size(runs)) {
		fprintf(f, " – |");
		return;
	}
	json_array_foreach(runs, i, v) {
		json_int_t ns = json_integer_value(json_array_get(rtts, i));

		fprintf(f, "%s%.2f", i ? " / " : " ", json_number_value(v));
		if (ns > 0)
			fprintf(f, " (%lld ns)", (long long)ns);
	}
	fprintf(f, " |");
}

static void size_throughput_table(struct out *o, const json_t *tp)
{
	const json_t *r;
	size_t i;
	char sz[96];

	fprintf(o->md, "\n### Throughput (messages back to back)\n\n"
		       "Each row is the median of its runs (fresh peers each time). Every run's "
		       "rate is listed in the order they ran, with the median round trip of a "
		       "cache line between cpu 0 and cpu 1 during it (sampled every 50 ms): "
		       "where the host runs the two vCPUs, which rtvio's bytes cross and a "
		       "pair sharing cpu 0 does not.\n\n"
		       "| transport | size | messages | seconds | GB/s | every run, GB/s (cpu 0-1 "
		       "round trip) | "
		       "messages/s | receiver sleeps/msg | sender sleeps/msg | status |\n"
		       "|---|---|---|---|---|---|---|---|---|---|\n");
	json_array_foreach(tp, i, r) {
		size_str(jnum(r, "size"), sz, sizeof(sz));
		fprintf(o->md, "| %s | %s |", jstr(r, "transport", "?"), sz);
		md_num(o->md, jnum(r, "messages"), 0);
		md_num(o->md, jnum(r, "seconds"), 3);
		md_num(o->md, jnum(r, "gbps"), 3);
		md_runs(o->md, r);
		md_num(o->md, jnum(r, "msgps"), 0);
		md_num(o->md, per_msg(r, "rx_sleeps", "messages"), 3);
		md_num(o->md, per_msg(r, "tx_sleeps", "sent"), 3);
		fprintf(o->md, " %s |\n", jstr(r, "status", "?"));
	}
}

/* The references every other transport is read against, in the same run: the
 * socket a user would pick, and the floor (one copy in, one out). */
static const char *const size_refs[] = { "unix-stream", "shm-ring" };

/* field (gbps, or latency_us.p50) of the row of transport tr at size, or -1. */
static double size_value(const json_t *rows, const char *tr, double size, const char *field)
{
	const json_t *r;
	size_t i;

	json_array_foreach(rows, i, r) {
		const json_t *o = strcmp(field, "p50") ? r : json_object_get(r, "latency_us");

		if (!strcmp(jstr(r, "transport", ""), tr) && jnum(r, "size") == size)
			return jnum(o, field);
	}
	return -1;
}

/* Throughput and median latency as ratios against size_refs: above 1 is faster
 * in throughput, slower in latency. */
static void size_ratio_table(struct out *o, const json_t *rows, const char *field,
			     const char *title)
{
	const json_t *r;
	size_t i;
	char sz[96];

	fprintf(o->md, "\n### %s against unix-stream and shm-ring (same run)\n\n"
		       "| transport | size | × unix-stream | × shm-ring |\n|---|---|---|---|\n", title);
	json_array_foreach(rows, i, r) {
		const char *tr = jstr(r, "transport", "?");
		double size = jnum(r, "size"), v = size_value(rows, tr, size, field);

		size_str(size, sz, sizeof(sz));
		fprintf(o->md, "| %s | %s |", tr, sz);
		for (size_t k = 0; k < sizeof(size_refs) / sizeof(size_refs[0]); k++) {
			double ref = size_value(rows, size_refs[k], size, field);

			md_num(o->md, v >= 0 && ref > 0 ? v / ref : -1, 2);
		}
		fprintf(o->md, "\n");
	}
}

/* One data file per transport for latency, one for throughput. */
static void size_data(struct out *o, const json_t *trs, const json_t *lat, const json_t *tp)
{
	const json_t *r, *t;
	size_t i, j;
	char sz[96], fn[64];

	json_array_foreach(trs, j, t) {
		FILE *d;

		file_safe(json_string_value(t), fn, sizeof(fn));
		snprintf(sz, sizeof(sz), "size_%s", fn);
		d = open_data(o, sz);
		if (!d)
			continue;
		fprintf(d, "# size p50_us p99_us max_us\n");
		json_array_foreach(lat, i, r) {
			const json_t *l = json_object_get(r, "latency_us");

			if (!strcmp(jstr(r, "transport", ""), json_string_value(t)) &&
			    jnum(l, "p50") >= 0)
				fprintf(d, "%.0f %g %g %g\n", jnum(r, "size"), jnum(l, "p50"),
					jnum(l, "p99"), jnum(l, "max"));
		}
		fclose(d);
	}
	json_array_foreach(trs, j, t) {
		FILE *d;

		file_safe(json_string_value(t), fn, sizeof(fn));
		snprintf(sz, sizeof(sz), "tput_%s", fn);
		d = open_data(o, sz);
		if (!d)
			continue;
		fprintf(d, "# size gbps msgps\n");
		json_array_foreach(tp, i, r)
			if (!strcmp(jstr(r, "transport", ""), json_string_value(t)) &&
			    jnum(r, "gbps") >= 0)
				fprintf(d, "%.0f %g %g\n", jnum(r, "size"), jnum(r, "gbps"),
					jnum(r, "msgps"));
		fclose(d);
	}
}

static void size_plots(struct out *o, const json_t *trs)
{
	static const struct { const char *png, *title, *yl, *prefix; int col; } plots[] = {
		{ "size_latency_p50", "one-way latency, median", "latency µs", "size", 2 },
		{ "size_latency_p99", "one-way latency, 99th percentile", "latency µs", "size", 3 },
		{ "size_throughput", "throughput", "GB/s", "tput", 2 },
	};
	const json_t *t;
	size_t j;
	char fn[64];
	bool first;

	for (size_t p = 0; p < sizeof(plots) / sizeof(plots[0]); p++) {
		plot_header(o, plots[p].png, plots[p].title, "message size (bytes)", plots[p].yl,
			    X_LOG_BYTES, true);
		fprintf(o->gp, "plot ");
		first = true;
		json_array_foreach(trs, j, t) {
			file_safe(json_string_value(t), fn, sizeof(fn));
			fprintf(o->gp, "%s'%s_%s.dat' using 1:%d with linespoints title '%s'",
				first ? "" : ", \\\n     ", plots[p].prefix, fn, plots[p].col,
				json_string_value(t));
			first = false;
		}
		if (first)
			fprintf(o->gp, "NaN notitle");
		fprintf(o->gp, "\n");
	}
}

static void size_section(struct out *o, const json_t *sc)
{
	const json_t *lat = json_object_get(sc, "latency"), *tp = json_object_get(sc, "throughput");
	const json_t *trs = json_object_get(sc, "transports"), *un = json_object_get(sc, "unavailable");
	const json_t *t;
	const char *k;

	fprintf(o->md, "\n## size: one-way latency and throughput by message size\n\n%s\n",
		jstr(sc, "conditions", ""));
	json_object_foreach((json_t *)un, k, t)
		fprintf(o->md, "\n- **%s not measured:** %s\n", k, json_string_value(t));
	size_latency_table(o, lat);
	size_throughput_table(o, tp);
	size_ratio_table(o, tp, "gbps", "Throughput");
	size_ratio_table(o, lat, "p50", "Median latency");
	size_data(o, trs, lat, tp);
	size_plots(o, trs);
	fprintf(o->md, "\n%s\n", jstr(sc, "reading", ""));
}

/* ---- CDF-style scenarios (isolation, interference, scale) ------------------------- */

static void cdf_section(struct out *o, const char *name, const json_t *sc)
{
	const json_t *runs = json_object_get(sc, "runs"), *r, *c;
	const char *k;
	size_t i, j;
	char fn[96], file[128], png[64];
	bool first = true;

	fprintf(o->md, "\n## %s\n\n%s\n", name, jstr(sc, "conditions", ""));
	json_object_foreach((json_t *)json_object_get(sc, "unavailable"), k, c)
		fprintf(o->md, "\n- **%s not measured:** %s\n", k, json_string_value(c));
	fprintf(o->md, "\n"
		       "| run | messages | lost | corrupt | min | p50 | p99 | p99.9 | max | bulk GB/s |"
		       " broker CPU %% | status |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	json_array_foreach(runs, i, r) {
		const json_t *l = json_object_get(r, "latency_us");

		fprintf(o->md, "| %s |", jstr(r, "label", "?"));
		md_num(o->md, jnum(r, "messages"), 0);
		md_num(o->md, jnum(r, "lost"), 0);
		md_num(o->md, jnum(r, "corrupt"), 0);
		md_num(o->md, jnum(l, "min"), 1);
		md_num(o->md, jnum(l, "p50"), 1);
		md_num(o->md, jnum(l, "p99"), 1);
		md_num(o->md, jnum(l, "p999"), 1);
		md_num(o->md, jnum(l, "max"), 1);
		md_num(o->md, jnum(r, "bulk_gbps"), 3);
		md_num(o->md, jnum(r, "broker_cpu_pct"), 1);
		fprintf(o->md, " %s |\n", jstr(r, "status", "?"));
	}
	snprintf(png, sizeof(png), "%s_cdf", name);
	plot_header(o, png, "control-flow latency CDF", "one-way latency (µs)",
		    "fraction of messages", X_LOG, false);
	fprintf(o->gp, "set key bottom right\nplot ");
	json_array_foreach(runs, i, r) {
		const json_t *cdf = json_object_get(r, "cdf_us");
		FILE *d;

		if (!json_array_size(cdf))
			continue;
		file_safe(jstr(r, "label", "run"), fn, sizeof(fn));
		snprintf(file, sizeof(file), "%s_%zu_%s", name, i, fn);
		d = open_data(o, file);
		if (!d)
			continue;
		json_array_foreach(cdf, j, c)
			fprintf(d, "%g %g\n", json_number_value(c), (double)(j + 1) / 100.0);
		fclose(d);
		/* A run under load dashed, so that each pair reads as one colour pair. */
		fprintf(o->gp, "%s'%s.dat' using 1:2 with lines lw 2%s title '%s'",
			first ? "" : ", \\\n     ", file,
			strstr(jstr(r, "label", ""), "+ ") ? " dt 2" : "", jstr(r, "label", "run"));
		first = false;
	}
	if (first)
		fprintf(o->gp, "NaN notitle");
	fprintf(o->gp, "\n");
	fprintf(o->md, "\n%s\n", jstr(sc, "reading", ""));
}

/* ---- overhead ----------------------------------------------------------------------- */

static void overhead_section(struct out *o, const json_t *sc)
{
	const json_t *rows = json_object_get(sc, "rows"), *r;
	size_t i;

	fprintf(o->md, "\n## overhead: cost per message and per byte\n\n%s\n\n"
		       "| transport | per message µs | per byte ns | fit r² | broker CPU %% |"
		       " sizes | status |\n|---|---|---|---|---|---|---|\n",
		jstr(sc, "conditions", ""));
	json_array_foreach(rows, i, r) {
		fprintf(o->md, "| %s |", jstr(r, "transport", "?"));
		md_num(o->md, jnum(r, "per_message_us"), 2);
		md_num(o->md, jnum(r, "per_byte_ns"), 4);
		md_num(o->md, jnum(r, "r2"), 3);
		md_num(o->md, jnum(r, "broker_cpu_pct"), 1);
		md_num(o->md, jnum(r, "points"), 0);
		fprintf(o->md, " %s |\n", jstr(r, "status", "?"));
	}
	fprintf(o->md, "\n%s\n", jstr(sc, "reading", ""));
}

/* ---- bound ------------------------------------------------------------------------ */

void bench_report_platform(FILE *md, const json_t *sc)
{
	const char *text = jstr(sc, "platform", NULL);

	fprintf(md, "Platform judged by: **%s**.\n\n", jstr(sc, "platform_source", "?"));
	if (text)
		fprintf(md, "```ini\n%s```\n\n", text);
}

static void bound_section(struct out *o, const json_t *sc)
{
	const json_t *runs = json_object_get(sc, "runs_detail"), *viol = json_object_get(sc, "violations");
	const json_t *r, *f;
	size_t i, j, nres = 0;
	FILE *d;

	fprintf(o->md, "\n## bound: observed worst case against the analytical bound\n\n");
	bench_report_platform(o->md, sc);
	fprintf(o->md, "%s\n\n"
		       "| run | load %% | budget B/period | schedulable | flows | over bound |"
		       " broker over R | cpu0 stalls (longest µs) | cpu1 stalls (longest µs) |"
		       " cpu0 busy %% | steal %% cpu0/cpu1 | status |\n"
		       "|---|---|---|---|---|---|---|---|---|---|---|---|\n",
		jstr(sc, "conditions", ""));
	json_array_foreach(runs, i, r) {
		const json_t *h = json_object_get(r, "host"), *c0 = json_object_get(h, "cpu0"),
			     *c1 = json_object_get(h, "cpu1");
		size_t nv = 0, nr = 0;

		json_array_foreach(json_object_get(r, "flows"), j, f) {
			nv += json_is_true(json_object_get(f, "violation"));
			nr += json_is_true(json_object_get(f, "residence_violation"));
		}
		nres += nr;
		fprintf(o->md, "| %s |", jstr(r, "label", "?"));
		md_num(o->md, jnum(r, "load") * 100, 1);
		md_num(o->md, jnum(r, "regulation_budget") > 0 ? jnum(r, "regulation_budget") : -1, 0);
		fprintf(o->md, " %s | %zu | %zu | %zu | %.0f (%.0f) | %.0f (%.0f) |",
			json_is_boolean(json_object_get(r, "schedulable"))
				? (json_is_true(json_object_get(r, "schedulable")) ? "yes" : "no") : "–",
			json_array_size(json_object_get(r, "flows")), nv, nr, jnum(c0, "stalls"),
			jnum(c0, "longest_us"), jnum(c1, "stalls"), jnum(c1, "longest_us"));
		md_num(o->md, jnum(c0, "busy_pct"), 0);
		fprintf(o->md, " %.1f / %.1f | %s |\n", jnum(c0, "steal_pct"), jnum(c1, "steal_pct"),
			jstr(r, "status", "?"));
	}
	fprintf(o->md, "\n### Per flow\n\n| run | flow | size | period µs | messages | lost |"
		       " corrupt | p99 µs | max µs | bound µs | max/bound | broker max µs | R µs |"
		       " broker max/R |\n"
		       "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	d = open_data(o, "bound_ratio");
	if (d)
		fprintf(d, "# load_pct max_over_bound broker_max_over_R\n");
	json_array_foreach(runs, i, r) {
		json_array_foreach(json_object_get(r, "flows"), j, f) {
			char sz[32];

			size_str(jnum(f, "size"), sz, sizeof(sz));
			fprintf(o->md, "| %s | %s | %s |", jstr(r, "label", "?"), jstr(f, "flow", "?"), sz);
			md_num(o->md, jnum(f, "period_us"), 0);
			md_num(o->md, jnum(f, "messages"), 0);
			md_num(o->md, jnum(f, "lost"), 0);
			md_num(o->md, jnum(f, "corrupt"), 0);
			md_num(o->md, jnum(f, "p99_us"), 1);
			md_num(o->md, jnum(f, "max_us"), 1);
			md_num(o->md, jnum(f, "bound_us"), 1);
			md_num(o->md, jnum(f, "ratio"), 2);
			md_num(o->md, jnum(f, "residence_max_us"), 1);
			md_num(o->md, jnum(f, "response_us"), 1);
			md_num(o->md, jnum(f, "residence_ratio"), 2);
			fprintf(o->md, "\n");
			if (d && jnum(r, "load") >= 0)
				fprintf(d, "%g %g %g\n", jnum(r, "load") * 100,
					jnum(f, "ratio") >= 0 ? jnum(f, "ratio") : NAN,
					jnum(f, "residence_ratio") >= 0 ? jnum(f, "residence_ratio") : NAN);
		}
	}
	if (d)
		fclose(d);
	fprintf(o->md, "\n### End-to-end violations (%zu)\n\n", json_array_size(viol));
	if (!json_array_size(viol))
		fprintf(o->md, "None: every observed maximum stayed within its bound.\n");
	json_array_foreach(viol, i, f)
		fprintf(o->md, "- %s, flow %s: max %.1f µs > bound %.1f µs — %s\n", jstr(f, "run", "?"),
			jstr(f, "flow", "?"), jnum(f, "max_us"), jnum(f, "bound_us"),
			jstr(f, "explanation", ""));
	fprintf(o->md, "\n### Broker residence above R (%zu)\n\n", nres);
	if (!nres)
		fprintf(o->md, "None: no packet stayed in the broker longer than its flow's R.\n");
	json_array_foreach(runs, i, r) {
		json_array_foreach(json_object_get(r, "flows"), j, f) {
			if (json_is_true(json_object_get(f, "residence_violation")))
				fprintf(o->md, "- %s, flow %s: %.1f µs > R %.1f µs — %s\n",
					jstr(r, "label", "?"), jstr(f, "flow", "?"),
					jnum(f, "residence_max_us"), jnum(f, "response_us"),
					jstr(f, "residence_cause", "?"));
		}
	}
	plot_header(o, "bound_ratio", "observed max / analytical bound per flow",
		    "analysed load of the copy engine (%)", "observed / bound", X_LINEAR, true);
	fprintf(o->gp, "set key top left\nset xrange [0:100]\n"
		       "plot 'bound_ratio.dat' using 1:2 with points pt 7 title 'end to end: max / bound', "
		       "'' using ($1+1):3 with points pt 6 title 'broker: residence max / R', "
		       "1 with lines dt 2 title 'bound'\n");
	fprintf(o->md, "\n%s\n", jstr(sc, "reading", ""));
}

/* ---- scale ------------------------------------------------------------------------ */

static void scale_section(struct out *o, const json_t *sc)
{
	const json_t *runs = json_object_get(sc, "runs_detail"), *r, *f;
	size_t i, j;
	FILE *d[3] = { NULL, NULL, NULL };
	int fpcs[3] = { 0, 0, 0 }, nd = 0;

	fprintf(o->md, "\n## scale: broker cost and control latency against cells and flows\n\n");
	bench_report_platform(o->md, sc);
	fprintf(o->md, "%s\n\n| cells | flows/cell | messages | broker CPU %% | broker µs/msg |"
		       " control p50 µs | control p99 µs | control max µs | control bound µs |"
		       " cpu0 stalls (longest µs) | status |\n"
		       "|---|---|---|---|---|---|---|---|---|---|---|\n",
		jstr(sc, "conditions", ""));
	json_array_foreach(runs, i, r) {
		const json_t *ctl = NULL, *c0 = json_object_get(json_object_get(r, "host"), "cpu0");
		int fpc = (int)jnum(r, "flows_per_cell"), k;

		json_array_foreach(json_object_get(r, "flows"), j, f)
			if (!strcmp(jstr(f, "flow", ""), "control"))
				ctl = f;
		fprintf(o->md, "|");
		md_num(o->md, jnum(r, "cells"), 0);
		md_num(o->md, fpc, 0);
		md_num(o->md, jnum(r, "messages"), 0);
		md_num(o->md, jnum(r, "broker_cpu_pct"), 1);
		md_num(o->md, jnum(r, "broker_us_per_msg"), 2);
		md_num(o->md, jnum(ctl, "p50_us"), 1);
		md_num(o->md, jnum(ctl, "p99_us"), 1);
		md_num(o->md, jnum(ctl, "max_us"), 1);
		md_num(o->md, jnum(ctl, "bound_us"), 1);
		fprintf(o->md, " %.0f (%.0f) | %s |\n", jnum(c0, "stalls"), jnum(c0, "longest_us"),
			jstr(r, "status", "?"));
		for (k = 0; k < nd && fpcs[k] != fpc; k++)
			;
		if (k == nd && nd < 3) {
			char name[32];

			snprintf(name, sizeof(name), "scale_f%d", fpc);
			fpcs[nd] = fpc;
			d[nd++] = open_data(o, name);
		}
		if (k < nd && d[k] && jnum(r, "broker_us_per_msg") >= 0)
			fprintf(d[k], "%g %g %g\n", jnum(r, "cells"), jnum(r, "broker_us_per_msg"),
				jnum(ctl, "p99_us"));
	}
	for (int k = 0; k < nd; k++)
		if (d[k])
			fclose(d[k]);
	plot_header(o, "scale_cost", "broker CPU per message", "cells", "µs per message", X_LOG,
		    false);
	fprintf(o->gp, "plot ");
	for (int k = 0; k < nd; k++)
		fprintf(o->gp, "%s'scale_f%d.dat' using 1:2 with linespoints title '%d flows/cell'",
			k ? ", \\\n     " : "", fpcs[k], fpcs[k]);
	fprintf(o->gp, "%s\n", nd ? "" : "NaN notitle");
	fprintf(o->md, "\n%s\n", jstr(sc, "reading", ""));
}

/* ---- the whole report --------------------------------------------------------------- */

static int run_gnuplot_in(const char *dir)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (!pid) {
		if (chdir(dir) < 0)
			_exit(127);
		execlp("gnuplot", "gnuplot", "plots.gp", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return -ENOENT;
	return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
}

int bench_write_report(const json_t *res, const char *dir, bool run_gnuplot)
{
	struct out o = { .dir = dir };
	char path[4096];
	const json_t *m = json_object_get(res, "machine"), *set = json_object_get(res, "settings");
	const json_t *sc = json_object_get(res, "scenarios"), *v, *notes;
	const char *k;
	size_t i;
	int err = 0;

	if (!json_is_object(res) || strcmp(jstr(res, "schema", ""), BENCH_SCHEMA) ||
	    !json_is_object(sc))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/plots", dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/report.md", dir);
	o.md = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/plots/plots.gp", dir);
	o.gp = fopen(path, "w");
	if (!o.md || !o.gp) {
		err = -errno;
		goto out;
	}
	fprintf(o.gp, "# Generated by rtvio bench; run in this directory: gnuplot plots.gp\n"
		      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		      "  set terminal pngcairo size 900,560 noenhanced\n"
		      "} else {\n  set terminal png size 900,560 noenhanced\n}\n"
		      "set grid\nset key outside right\n"
		      /* Ten distinguishable lines (gnuplot's own cycle repeats after eight). */
		      "set linetype 1 lc rgb '#1f77b4'\nset linetype 2 lc rgb '#ff7f0e'\n"
		      "set linetype 3 lc rgb '#2ca02c'\nset linetype 4 lc rgb '#d62728'\n"
		      "set linetype 5 lc rgb '#9467bd'\nset linetype 6 lc rgb '#8c564b'\n"
		      "set linetype 7 lc rgb '#e377c2'\nset linetype 8 lc rgb '#7f7f7f'\n"
		      "set linetype 9 lc rgb '#bcbd22'\nset linetype 10 lc rgb '#17becf'\n"
		      "set linetype cycle 10\n");
	fprintf(o.md, "# rtvio bench report\n\n"
		      "| | |\n|---|---|\n| date | %s |\n| commit | %s |\n| machine | %s, %.0f cpus |\n"
		      "| kernel | %s |\n| mode | %s |\n| scenarios | ",
		jstr(res, "date", "?"), jstr(res, "commit", "?"), jstr(m, "cpu_model", "?"),
		jnum(m, "cpus"), jstr(m, "kernel", "?"),
		json_is_true(json_object_get(res, "quick")) ? "--quick" : "standard");
	i = 0;
	json_object_foreach((json_t *)sc, k, v)
		fprintf(o.md, "%s%s", i++ ? ", " : "", k);
	fprintf(o.md, " |\n\n### Settings\n\n| setting | value |\n|---|---|\n");
	json_object_foreach((json_t *)set, k, v) {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

		fprintf(o.md, "| %s | %s |\n", k, s ? s : "?");
		free(s);
	}
	notes = json_object_get(res, "notes");
	if (json_array_size(notes)) {
		fprintf(o.md, "\n### Conditions and caveats\n\n");
		json_array_foreach(notes, i, v)
			fprintf(o.md, "- %s\n", json_string_value(v));
	}
	json_object_foreach((json_t *)sc, k, v) {
		if (!strcmp(k, "size"))
			size_section(&o, v);
		else if (!strcmp(k, "bound"))
			bound_section(&o, v);
		else if (!strcmp(k, "scale"))
			scale_section(&o, v);
		else if (!strcmp(k, "overhead"))
			overhead_section(&o, v);
		else if (!strcmp(k, "isa"))
			bench_report_isa(o.md, v);
		else if (!strcmp(k, "hostile"))
			bench_report_hostile(o.md, v);
		else if (!strcmp(k, "locks"))
			bench_report_locks(o.md, v);
		else if (!strcmp(k, "remote"))
			bench_report_remote(o.md, v);
		else if (!strcmp(k, "cores"))
			bench_report_cores(o.md, v);
		else if (!strcmp(k, "provision")) {
			cdf_section(&o, k, v);
			bench_report_provision(o.md, v);
		}
		else if (json_is_array(json_object_get(v, "runs")))
			cdf_section(&o, k, v);
	}
out:
	if (o.md && fclose(o.md) && !err)
		err = -errno;
	if (o.gp && fclose(o.gp) && !err)
		err = -errno;
	if (!err && run_gnuplot && o.nplots) {
		snprintf(path, sizeof(path), "%s/plots", dir);
		err = run_gnuplot_in(path);
		if (err == -ENOENT) {
			fprintf(stderr, "rtvio bench: gnuplot not found; plots/plots.gp is ready for it\n");
			err = 0;
		}
	}
	return err;
}
