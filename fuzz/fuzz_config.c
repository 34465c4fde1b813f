/* The configuration loader (common/config*.c) on arbitrary text. A configuration
 * that loads must dump, and its dump must load again into the same configuration
 * (the documented round trip of rtvio_config_dump). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cmocka.h"

static char *dump(const struct rtvio_config *cfg, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	assert_int_equal(rtvio_config_dump(cfg, f), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rtvio_config a, b;
	char err[256], *text = malloc(size + 1), *d1, *d2;
	size_t l1, l2;

	assert_non_null(text);
	memcpy(text, data, size);
	text[size] = 0;
	if (rtvio_config_parse(text, "fuzz.conf", &a, err, sizeof(err)) != 0) {
		/* A refusal must say why and leave nothing allocated. */
		assert_true(err[0] != 0);
		rtvio_config_free(&a);
		free(text);
		return 0;
	}
	d1 = dump(&a, &l1);
	if (rtvio_config_parse(d1, "dump.conf", &b, err, sizeof(err)) != 0) {
		fprintf(stderr, "dump does not load again: %s\n---\n%s---\n", err, d1);
		abort();
	}
	d2 = dump(&b, &l2);
	if (l1 != l2 || memcmp(d1, d2, l1) != 0) {
		fprintf(stderr, "dump changed on reload:\n---\n%s---\n%s---\n", d1, d2);
		abort();
	}
	rtvio_config_free(&a);
	rtvio_config_free(&b);
	free(d1);
	free(d2);
	free(text);
	return 0;
}
