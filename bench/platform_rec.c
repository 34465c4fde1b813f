/* The platform a scenario's bounds were judged by, kept in its results: see bench.h. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "config.h"

void bench_set_platform(json_t *sc, const char *src, const struct rtvio_platform_cfg *plat)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int ret;

	json_object_set_new(sc, "platform_source", json_string(src));
	if (!f)
		return;
	ret = rtvio_platform_write(f, plat);
	if (!fclose(f) && !ret)
		json_object_set_new(sc, "platform", json_string(text));
	free(text);
}
