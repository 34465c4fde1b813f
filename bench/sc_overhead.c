/* `rtvio bench overhead`: per-message and per-byte cost fitted on the size runs,
 * and the broker's CPU use. */
#include <jansson.h>
#include <stddef.h>
#include <string.h>

#include "fit.h"

#include "runner.h"

static void overhead_describe(json_t *sc)
{
	json_object_set_new(sc, "conditions", json_string(
		"A least-squares line through the median one-way latency of the size runs: "
		"latency = per_message + per_byte x size. per_message is the fixed cost "
		"(system calls, wake-ups, the broker's hop), per_byte the marginal cost of "
		"moving a byte end to end. Broker CPU is the broker's utime+stime "
		"(/proc/PID/stat) over the throughput runs divided by their wall time, process "
		"start-up included."));
	json_object_set_new(sc, "reading", json_string(
		"shm-ring is the floor: one copy in, one copy out, a futex wake-up, nothing "
		"between. rtvio's per-message cost over the floor is its second hop and "
		"notification; its per-byte cost should stay near the floor's because the "
		"broker copies once, sender buffer to receiver buffer. A polling broker shows "
		"~100 % CPU by design; the sleeping broker's CPU is what the traffic costs. The "
		"fit is only as straight as the data: r² well below 1 means noise or a "
		"non-linear cost (buffer sizes, chunking) and the line is a summary, not a "
		"model."));
}

void bench_scenario_overhead(struct bench *b)
{
	json_t *size = json_object_get(json_object_get(b->res, "scenarios"), "size");
	json_t *lat = json_object_get(size, "latency"), *tp = json_object_get(size, "throughput");
	json_t *trs = json_object_get(size, "transports"), *sc = json_object(), *rows = json_array();
	json_t *t, *r;
	size_t i, j;

	json_array_foreach(trs, j, t) {
		double x[16], y[16], cpu = 0, secs = 0;
		size_t n = 0;
		struct linfit fit;
		json_t *row = json_object();
		const char *name = json_string_value(t);

		json_array_foreach(lat, i, r) {
			json_t *p50 = json_object_get(json_object_get(r, "latency_us"), "p50");

			if (n < 16 && !strcmp(json_string_value(json_object_get(r, "transport")), name) &&
			    json_is_number(p50)) {
				x[n] = (double)json_integer_value(json_object_get(r, "size"));
				y[n++] = json_number_value(p50);
			}
		}
		json_array_foreach(tp, i, r)
			if (!strcmp(json_string_value(json_object_get(r, "transport")), name) &&
			    json_is_number(json_object_get(r, "broker_cpu_s"))) {
				cpu += json_number_value(json_object_get(r, "broker_cpu_s"));
				secs += json_number_value(json_object_get(r, "broker_cpu_s")) /
					json_number_value(json_object_get(r, "broker_cpu_pct")) * 100;
			}
		json_object_set_new(row, "transport", json_string(name));
		json_object_set_new(row, "points", json_integer((json_int_t)n));
		if (!fit_linear(x, y, n, &fit)) {
			json_object_set_new(row, "per_message_us", json_real(fit.intercept));
			json_object_set_new(row, "per_byte_ns", json_real(fit.slope * 1e3));
			json_object_set_new(row, "r2", json_real(fit.r2));
			json_object_set_new(row, "status", json_string("ok"));
		} else {
			json_object_set_new(row, "status", json_string("too few sizes measured"));
		}
		if (secs > 0)
			json_object_set_new(row, "broker_cpu_pct", json_real(100 * cpu / secs));
		json_array_append_new(rows, row);
	}
	json_object_set_new(sc, "rows", rows);
	overhead_describe(sc);
	json_object_set(json_object_get(b->res, "scenarios"), "overhead", sc);
	json_decref(sc);
}
