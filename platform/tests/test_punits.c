/* Unit parsing for hog and membench options. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "punits.h"

static void test_sizes(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(pu_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(pu_parse_size("64MiB", &v), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(pu_parse_size("2GB", &v), 0);
	assert_int_equal(v, 2000000000ULL);
	assert_int_equal(pu_parse_size("1.5KiB", &v), 0);
	assert_int_equal(v, 1536);
	assert_int_equal(pu_parse_size("4kB", &v), 0);
	assert_int_equal(v, 4000);
	assert_int_equal(pu_parse_size("", &v), -EINVAL);
	assert_int_equal(pu_parse_size("MiB", &v), -EINVAL);
	assert_int_equal(pu_parse_size("12XB", &v), -EINVAL);
	assert_int_equal(pu_parse_size("-5", &v), -EINVAL);
	assert_int_equal(pu_parse_size("1e30", &v), -ERANGE);
	assert_int_equal(pu_parse_size("nan", &v), -EINVAL);
}

static void test_rates(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(pu_parse_rate("2GB/s", &v), 0);
	assert_int_equal(v, 2000000000ULL);
	assert_int_equal(pu_parse_rate("500MiB/s", &v), 0);
	assert_int_equal(v, 500ULL << 20);
	assert_int_equal(pu_parse_rate("1e9", &v), 0);
	assert_int_equal(v, 1000000000ULL);
	assert_int_equal(pu_parse_rate("2GB", &v), -EINVAL);
	assert_int_equal(pu_parse_rate("/s", &v), -EINVAL);
	assert_int_equal(pu_parse_rate("fast", &v), -EINVAL);
}

static void test_durations(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(pu_parse_duration("10", &v), 0);
	assert_int_equal(v, 10000000000ULL);
	assert_int_equal(pu_parse_duration("2.5s", &v), 0);
	assert_int_equal(v, 2500000000ULL);
	assert_int_equal(pu_parse_duration("500ms", &v), 0);
	assert_int_equal(v, 500000000ULL);
	assert_int_equal(pu_parse_duration("20us", &v), 0);
	assert_int_equal(v, 20000);
	assert_int_equal(pu_parse_duration("7ns", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(pu_parse_duration("3min", &v), -EINVAL);
}

static void test_format(void **state)
{
	char buf[32];

	(void)state;
	pu_format_rate(12346e6, buf, sizeof buf);
	assert_string_equal(buf, "12.35 GB/s");
	pu_format_rate(250e6, buf, sizeof buf);
	assert_string_equal(buf, "250.0 MB/s");
	pu_format_rate(0, buf, sizeof buf);
	assert_string_equal(buf, "0 B/s");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
