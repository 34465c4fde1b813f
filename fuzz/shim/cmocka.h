/* The few cmocka assertions the broker's test harness headers use, for the fuzz
 * harnesses that reuse those headers: a failed assertion is a finding, so it aborts
 * (libFuzzer then saves the input). */
#ifndef RTVIO_FUZZ_CMOCKA_SHIM_H
#define RTVIO_FUZZ_CMOCKA_SHIM_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(c, what)                                                              \
	do {                                                                             \
		if (!(c)) {                                                              \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				what);                                                   \
			abort();                                                         \
		}                                                                        \
	} while (0)
#define assert_true(c) FUZZ_CHECK((c), #c)
#define assert_false(c) FUZZ_CHECK(!(c), "!(" #c ")")
#define assert_non_null(p) FUZZ_CHECK((p) != NULL, #p " != NULL")
#define assert_null(p) FUZZ_CHECK((p) == NULL, #p " == NULL")
#define assert_int_equal(a, b) FUZZ_CHECK((long long)(a) == (long long)(b), #a " == " #b)
#define print_error(...) fprintf(stderr, __VA_ARGS__)
#define fail() FUZZ_CHECK(0, "fail()")

#endif
