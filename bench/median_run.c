/* bench_median_run (bench.h): which of repeated runs a report row shows. */
#include <stdlib.h>

#include "bench.h"

json_t *bench_median_run(json_t *runs, const char *field, const char *runs_key)
{
	size_t n = json_array_size(runs), i, k;
	size_t *order = calloc(n, sizeof(*order));
	json_t *values, *r;

	if (!n || !order) {
		free(order);
		json_decref(runs);
		return json_pack("{s:s}", "status", "no result");
	}
	values = json_array();
	for (i = 0; i < n; i++) {
		double v = json_number_value(json_object_get(json_array_get(runs, i), field));

		json_array_append_new(values, json_real(v));
		/* Insertion by value: order[0..i] holds the runs so far, smallest first,
		 * equal values in the order they ran. */
		for (k = i; k > 0 && json_number_value(json_array_get(values, order[k - 1])) > v; k--)
			order[k] = order[k - 1];
		order[k] = i;
	}
	r = json_incref(json_array_get(runs, order[n / 2]));
	json_object_set_new(r, runs_key, values);
	free(order);
	json_decref(runs);
	return r;
}
