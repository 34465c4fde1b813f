/* `rtvio bench remote` (sc_remote.c): ddsperf's output summed up, and report.md's
 * section: one row per run, the control flow's one-way latency, the host stalls seen
 * meanwhile and what the gateways counted instead of passing on. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* ddsperf prints, once a second, the round trips of that second:
 *   "[pid] 1.003  host:pid size 64 mean 41.5us min 17.6us 50% 36.2us 90% 59.2us 99% 114.5us
 *    max 226.2us cnt 680"
 * Summed up here: the smallest min, the median of the per-second medians, the largest
 * per-second p99 and max, every count; halved (one way). 0 when it found a line. */
int bench_ddsperf_parse(const char *out, json_t *r)
{
	double med[600], mn = 1e30, p99 = 0, mx = 0;
	unsigned long total = 0;
	size_t n = 0;

	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *m = strstr(l, " mean ");
		const char *e = strchr(l, '\n');
		double v[6];
		unsigned long cnt;

		if (!m || (e && m > e))
			continue;
		if (sscanf(m, " mean %lfus min %lfus 50%% %lfus 90%% %lfus 99%% %lfus max %lfus cnt %lu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &cnt) != 7 || !cnt)
			continue;
		if (n < sizeof(med) / sizeof(med[0]))
			med[n++] = v[2];
		mn = v[1] < mn ? v[1] : mn;
		p99 = v[4] > p99 ? v[4] : p99;
		mx = v[5] > mx ? v[5] : mx;
		total += cnt;
	}
	if (!n)
		return -ENODATA;
	for (size_t i = 1; i < n; i++)	/* n is small: insertion sort */
		for (size_t j = i; j > 0 && med[j - 1] > med[j]; j--) {
			double t = med[j];

			med[j] = med[j - 1];
			med[j - 1] = t;
		}
	json_t *lat = json_object();

	json_object_set_new(lat, "min", json_real(mn / 2));
	json_object_set_new(lat, "p50", json_real(med[n / 2] / 2));
	json_object_set_new(lat, "p99", json_real(p99 / 2));
	json_object_set_new(lat, "max", json_real(mx / 2));
	json_object_set_new(r, "latency_us", lat);
	json_object_set_new(r, "messages", json_integer((json_int_t)total));
	json_object_set_new(r, "seconds_reported", json_integer((json_int_t)n));
	return 0;
}

static void num(FILE *md, const json_t *v, int prec)
{
	if (json_is_number(v))
		fprintf(md, " %.*f |", prec, json_number_value(v));
	else
		fprintf(md, " - |");
}

/* Summed over both gateways' flows: key (missing, corrupt, unmatched...). */
static json_int_t gw_sum(const json_t *r, const char *key, bool *any)
{
	static const char *const sides[] = { "gateway_a", "gateway_b" };
	json_int_t n = 0;

	for (int s = 0; s < 2; s++) {
		const json_t *flows = json_object_get(json_object_get(r, sides[s]), "flows"), *f;
		size_t i;

		json_array_foreach(flows, i, f) {
			n += json_integer_value(json_object_get(f, key));
			*any = true;
		}
	}
	return n;
}

static void gw_cell(FILE *md, const json_t *r, const char *key)
{
	bool any = false;
	json_int_t n = gw_sum(r, key, &any);

	if (any)
		fprintf(md, " %lld |", (long long)n);
	else
		fprintf(md, " - |");
}

void bench_report_remote(FILE *md, const json_t *sc)
{
	const json_t *runs = json_object_get(sc, "runs"), *r, *c;
	const char *k;
	size_t i;

	fprintf(md, "\n## remote: a control flow across two brokers over Cyclone DDS\n\n%s\n",
		json_string_value(json_object_get(sc, "conditions")));
	json_object_foreach((json_t *)json_object_get(sc, "unavailable"), k, c)
		fprintf(md, "\n- **%s not measured:** %s\n", k, json_string_value(c));
	fprintf(md, "\n| run | messages | lost | corrupt | min µs | p50 µs | p99 µs | max µs |"
		    " stalls | longest stall µs | bulk GB/s | DDS missing | DDS unmatched |"
		    " DDS deadline missed | status |\n"
		    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	json_array_foreach(runs, i, r) {
		const json_t *l = json_object_get(r, "latency_us");

		fprintf(md, "| %s |", json_string_value(json_object_get(r, "label")));
		num(md, json_object_get(r, "messages"), 0);
		num(md, json_object_get(r, "lost"), 0);
		num(md, json_object_get(r, "corrupt"), 0);
		num(md, json_object_get(l, "min"), 1);
		num(md, json_object_get(l, "p50"), 1);
		num(md, json_object_get(l, "p99"), 1);
		num(md, json_object_get(l, "max"), 1);
		num(md, json_object_get(r, "stalls"), 0);
		num(md, json_object_get(r, "longest_stall_us"), 0);
		num(md, json_object_get(r, "bulk_gbps"), 3);
		gw_cell(md, r, "missing");
		gw_cell(md, r, "unmatched");
		gw_cell(md, r, "dds_deadline_missed");
		c = json_object_get(r, "status");
		fprintf(md, " %s |\n", json_is_string(c) ? json_string_value(c) : "?");
	}
	fprintf(md, "\n%s\n", json_string_value(json_object_get(sc, "reading")));
}
