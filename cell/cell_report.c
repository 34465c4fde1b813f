/* `rtvio cell`'s results: per-flow numbers as one JSON document or a table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cell_run.h"

/* The receiver's slowest messages, slowest first: [{seq, stamp_ns, latency_us}]. */
static json_t *slowest_json(const struct wl_rx_stats *st)
{
	struct wl_slow w[WL_SLOWEST];
	unsigned n = st->nslowest;
	json_t *a = json_array();

	memcpy(w, st->slowest, n * sizeof(w[0]));
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && w[j].latency_ns > w[j - 1].latency_ns; j--) {
			struct wl_slow t = w[j];

			w[j] = w[j - 1];
			w[j - 1] = t;
		}
	for (unsigned i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:I, s:I, s:f}", "seq", (json_int_t)w[i].seq,
						   "stamp_ns", (json_int_t)w[i].stamp_ns,
						   "latency_us", (double)w[i].latency_ns / 1e3));
	return a;
}

static json_t *us_or_null(const struct wl_hist *h, double q)
{
	if (!h->count)
		return json_null();
	return json_real((double)(q < 0 ? h->min_ns : wl_hist_quantile(h, q)) / 1e3);
}

json_t *cell_report(const struct run *r)
{
	json_t *doc = json_object(), *flows = json_array();

	json_object_set_new(doc, "cell", json_string(r->cell->name));
	json_object_set_new(doc, "cid", json_integer((json_int_t)rtvio_cell_cid(r->c)));
	json_object_set_new(doc, "mlocked", json_boolean(rtvio_cell_mlocked(r->c)));
	{
		/* What the cell's stack saw, including what it refused from the broker. */
		struct gv_stats st;
		json_t *o = json_object();

		rtvio_cell_stats(r->c, &st);
		json_object_set_new(o, "rx_packets", json_integer((json_int_t)st.rx_packets));
		json_object_set_new(o, "rx_bytes", json_integer((json_int_t)st.rx_bytes));
		json_object_set_new(o, "tx_packets", json_integer((json_int_t)st.tx_packets));
		json_object_set_new(o, "tx_bytes", json_integer((json_int_t)st.tx_bytes));
		json_object_set_new(o, "rx_bad", json_integer((json_int_t)(st.rx_bad_len +
									    st.rx_bad_hdr +
									    st.rx_bad_credit)));
		json_object_set_new(o, "credit_updates_sent",
				    json_integer((json_int_t)st.credit_updates_sent));
		json_object_set_new(o, "ring_errors", json_integer((json_int_t)st.ring_errors));
		json_object_set_new(doc, "stack", o);
	}
	for (int i = 0; i < r->nw; i++) {
		const struct worker *w = &r->w[i];
		const struct rtvio_flow_cfg *f = w->flow;
		bool rx = w->role == ROLE_RECV;
		json_t *o = json_object(), *lat = json_object();

		json_object_set_new(o, "name", json_string(f->name));
		json_object_set_new(o, "role", json_string(rx ? "recv" : "send"));
		json_object_set_new(o, "type", json_string(rtvio_sock_type_name(f->type)));
		json_object_set_new(o, "class",
				    json_string(f->best_effort ? "best-effort" : "real-time"));
		json_object_set_new(o, "status", json_string(w->status ? w->status : "not run"));
		json_object_set_new(o, "messages",
				    json_integer((json_int_t)(rx ? w->rx.messages : w->sent)));
		json_object_set_new(o, "bytes",
				    json_integer((json_int_t)(rx ? w->rx.bytes : w->sent_bytes)));
		json_object_set_new(o, "lost", json_integer((json_int_t)w->rx.lost));
		json_object_set_new(o, "reordered", json_integer((json_int_t)w->rx.reordered));
		json_object_set_new(o, "duplicates", json_integer((json_int_t)w->rx.duplicates));
		json_object_set_new(o, "corrupt", json_integer((json_int_t)w->rx.corrupt));
		json_object_set_new(lat, "min", us_or_null(&w->rx.lat, -1));
		json_object_set_new(lat, "p50", us_or_null(&w->rx.lat, 0.5));
		json_object_set_new(lat, "p99", us_or_null(&w->rx.lat, 0.99));
		json_object_set_new(lat, "p999", us_or_null(&w->rx.lat, 0.999));
		json_object_set_new(lat, "max", us_or_null(&w->rx.lat, 1.0));
		json_object_set_new(o, "latency_us", lat);
		json_object_set_new(o, "deadline_us",
				    f->best_effort ? json_null()
						   : json_real((double)f->deadline_ns / 1e3));
		json_object_set_new(o, "deadline_misses",
				    json_integer((json_int_t)w->rx.deadline_misses));
		if (rx)
			json_object_set_new(o, "slowest", slowest_json(&w->rx));
		if (!rx && f->traffic.pattern == RTVIO_PATTERN_PERIODIC) {
			json_object_set_new(o, "late_releases",
					    json_integer((json_int_t)w->late));
			json_object_set_new(o, "lost_periods",
					    json_integer((json_int_t)w->overruns));
		}
		json_array_append_new(flows, o);
	}
	json_object_set_new(doc, "flows", flows);
	return doc;
}

static void print_num(const json_t *v, int width)
{
	if (json_is_number(v))
		printf(" %*.1f", width, json_number_value(v));
	else
		printf(" %*s", width, "-");
}

void cell_print_table(json_t *doc)
{
	json_t *flows = json_object_get(doc, "flows"), *f;
	size_t i;

	printf("cell %s (cid %lld); latency one-way in microseconds\n",
	       json_string_value(json_object_get(doc, "cell")),
	       (long long)json_integer_value(json_object_get(doc, "cid")));
	printf("%-12s %-4s %-12s %9s %6s %6s %7s %8s %8s %8s %8s %8s %6s\n", "flow", "role",
	       "status", "messages", "lost", "reord", "corrupt", "min", "p50", "p99", "p99.9",
	       "max", "misses");
	json_array_foreach(flows, i, f) {
		json_t *lat = json_object_get(f, "latency_us");

		printf("%-12s %-4s %-12s %9lld %6lld %6lld %7lld",
		       json_string_value(json_object_get(f, "name")),
		       json_string_value(json_object_get(f, "role")),
		       json_string_value(json_object_get(f, "status")),
		       (long long)json_integer_value(json_object_get(f, "messages")),
		       (long long)json_integer_value(json_object_get(f, "lost")),
		       (long long)json_integer_value(json_object_get(f, "reordered")),
		       (long long)json_integer_value(json_object_get(f, "corrupt")));
		print_num(json_object_get(lat, "min"), 8);
		print_num(json_object_get(lat, "p50"), 8);
		print_num(json_object_get(lat, "p99"), 8);
		print_num(json_object_get(lat, "p999"), 8);
		print_num(json_object_get(lat, "max"), 8);
		printf(" %6lld\n", (long long)json_integer_value(json_object_get(f, "deadline_misses")));
	}
}
