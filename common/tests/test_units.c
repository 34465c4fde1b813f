/* Values with units: every suffix, fractions, overflow, garbage, and formatting that
 * parses back to the same value. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "units.h"

static uint64_t size_ok(const char *s)
{
	uint64_t v = 12345;
	const char *why = NULL;
	int ret = rtvio_parse_size(s, 1, &v, &why);

	if (ret)
		fail_msg("'%s' refused: %s", s, why ? why : "?");
	return v;
}

static int size_err(const char *s)
{
	uint64_t v = 777;
	const char *why = NULL;
	int ret = rtvio_parse_size(s, 1, &v, &why);

	assert_true(ret < 0);
	assert_non_null(why);
	assert_int_equal(v, 777); /* untouched on error */
	return ret;
}

static uint64_t time_ok(const char *s)
{
	uint64_t v = 0;
	const char *why = NULL;

	if (rtvio_parse_time(s, RTVIO_NS_PER_S, &v, &why))
		fail_msg("'%s' refused: %s", s, why ? why : "?");
	return v;
}

static int time_err(const char *s)
{
	uint64_t v = 0;
	const char *why = NULL;
	int ret = rtvio_parse_time(s, RTVIO_NS_PER_S, &v, &why);

	assert_true(ret < 0);
	assert_non_null(why);
	return ret;
}

static void test_size_suffixes(void **state)
{
	(void)state;
	assert_int_equal(size_ok("0"), 0);
	assert_int_equal(size_ok("64"), 64);
	assert_int_equal(size_ok("64B"), 64);
	assert_int_equal(size_ok("3kB"), 3000);
	assert_int_equal(size_ok("3MB"), 3000000);
	assert_int_equal(size_ok("3GB"), 3000000000ull);
	assert_int_equal(size_ok("3TB"), 3000000000000ull);
	assert_int_equal(size_ok("3KiB"), 3072);
	assert_int_equal(size_ok("3MiB"), 3ull << 20);
	assert_int_equal(size_ok("3GiB"), 3ull << 30);
	assert_int_equal(size_ok("3TiB"), 3ull << 40);
	assert_int_equal(size_ok("4 KiB"), 4096);
	assert_int_equal(size_ok("  4\tKiB  "), 4096);
	assert_int_equal(size_ok("007"), 7);
}

static void test_size_fractions(void **state)
{
	(void)state;
	assert_int_equal(size_ok("1.5KiB"), 1536);
	assert_int_equal(size_ok("1.5kB"), 1500);
	assert_int_equal(size_ok("0.25MiB"), 262144);
	assert_int_equal(size_ok("2.000000000000000000000000GB"), 2000000000ull);
	assert_int_equal(size_ok("1.0"), 1);
	/* Not a whole number of bytes. */
	assert_int_equal(size_err("1.5"), -EINVAL);
	assert_int_equal(size_err("1.5B"), -EINVAL);
	assert_int_equal(size_err("0.1KiB"), -EINVAL);
	assert_int_equal(size_err("0.0000000000000000000001GB"), -EINVAL);
}

static void test_size_garbage(void **state)
{
	(void)state;
	const char *bad[] = { "", " ", "KiB", "4KB", "4kb", "4 K", "4Ki", "4 KiB x", "4KiBs",
			      "-1", "-0", "+5", "0x10", "1e3", "1.", ".5", "1..5", "1.2.3",
			      "4 4", "four", "4GB/s", "1,5KiB" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 99;
		const char *why = NULL;

		if (rtvio_parse_size(bad[i], 1, &v, &why) != -EINVAL)
			fail_msg("'%s' accepted as a size", bad[i]);
		assert_non_null(why);
		assert_int_equal(v, 99);
	}
}

static void test_size_overflow(void **state)
{
	(void)state;
	assert_int_equal(size_ok("18446744073709551615"), UINT64_MAX);
	assert_int_equal(size_ok("16777215TiB"), 16777215ull << 40);
	assert_int_equal(size_err("18446744073709551616"), -ERANGE);
	assert_int_equal(size_err("99999999999999999999999"), -ERANGE);
	assert_int_equal(size_err("16777216TiB"), -ERANGE);
	assert_int_equal(size_err("18446744073709552GB"), -ERANGE);
	assert_int_equal(size_err("18446744073709551615.5KiB"), -ERANGE);
}

static void test_size_bare_unit(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(rtvio_parse_size("3", 1024, &v, NULL), 0);
	assert_int_equal(v, 3072);
	assert_int_equal(rtvio_parse_size("3B", 1024, &v, NULL), 0);
	assert_int_equal(v, 3);
}

static void test_time(void **state)
{
	(void)state;
	assert_int_equal(time_ok("0"), 0);
	assert_int_equal(time_ok("1"), RTVIO_NS_PER_S); /* bare = seconds */
	assert_int_equal(time_ok("0.001"), 1000000);
	assert_int_equal(time_ok("7ns"), 7);
	assert_int_equal(time_ok("7us"), 7000);
	assert_int_equal(time_ok("7\xc2\xb5s"), 7000);
	assert_int_equal(time_ok("7ms"), 7000000);
	assert_int_equal(time_ok("7s"), 7 * RTVIO_NS_PER_S);
	assert_int_equal(time_ok("2.5us"), 2500);
	assert_int_equal(time_ok("1 ms"), 1000000);
	assert_int_equal(time_ok("18446744073s"), 18446744073000000000ull);
	assert_int_equal(time_err("18446744074s"), -ERANGE);
	assert_int_equal(time_err("1.5ns"), -EINVAL);
	assert_int_equal(time_err("0.0000000001"), -EINVAL);
	assert_int_equal(time_err("1sec"), -EINVAL);
	assert_int_equal(time_err("1 m"), -EINVAL);
	assert_int_equal(time_err("1h"), -EINVAL);
	assert_int_equal(time_err("1MS"), -EINVAL);
	assert_int_equal(time_err("-1ms"), -EINVAL);
	assert_int_equal(time_err("ms"), -EINVAL);
	assert_int_equal(time_err("1KiB"), -EINVAL);
}

/* Where the caller requires a unit (the configuration), a bare number other than 0
 * is refused with a message that names the units, never taken as seconds. */
static void test_time_unit_required(void **state)
{
	uint64_t v = 5;
	const char *why = NULL;

	(void)state;
	assert_int_equal(rtvio_parse_time("1000", RTVIO_UNIT_REQUIRED, &v, &why), -EINVAL);
	assert_int_equal(v, 5);
	assert_non_null(why);
	assert_non_null(strstr(why, "needs a unit"));
	assert_non_null(strstr(why, "ns, us, ms or s"));
	assert_int_equal(rtvio_parse_time("0.5", RTVIO_UNIT_REQUIRED, &v, &why), -EINVAL);
	assert_int_equal(rtvio_parse_time("0", RTVIO_UNIT_REQUIRED, &v, &why), 0);
	assert_int_equal(v, 0);
	assert_int_equal(rtvio_parse_time(" 0.0 ", RTVIO_UNIT_REQUIRED, &v, &why), 0);
	assert_int_equal(v, 0);
	assert_int_equal(rtvio_parse_time("1000us", RTVIO_UNIT_REQUIRED, &v, &why), 0);
	assert_int_equal(v, 1000000);
}

static void test_bandwidth(void **state)
{
	uint64_t v = 0;
	const char *why = NULL;

	(void)state;
	assert_int_equal(rtvio_parse_bandwidth("8GB/s", &v, NULL), 0);
	assert_int_equal(v, 8000000000ull);
	assert_int_equal(rtvio_parse_bandwidth("500 MiB / s", &v, NULL), 0);
	assert_int_equal(v, 500ull << 20);
	assert_int_equal(rtvio_parse_bandwidth("1.5GB/s", &v, NULL), 0);
	assert_int_equal(v, 1500000000ull);
	assert_int_equal(rtvio_parse_bandwidth("1000", &v, NULL), 0);
	assert_int_equal(v, 1000);
	const char *bad[] = { "8GB", "8 B", "8GB/ms", "8GB/", "/s", "8GB/s/s", "8 GB per s",
			      "8Gb/s", "-8GB/s", "8GB/s x", "99999999999GB/s" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (rtvio_parse_bandwidth(bad[i], &v, &why) == 0)
			fail_msg("'%s' accepted as a bandwidth", bad[i]);
		assert_non_null(why);
	}
	assert_int_equal(rtvio_parse_bandwidth("99999999999GB/s", &v, NULL), -ERANGE);
}

static void test_bool(void **state)
{
	bool v = false;
	const char *why = NULL;

	(void)state;
	const char *yes[] = { "yes", "YES", "true", "On", "1" };
	const char *no[] = { "no", "No", "false", "off", "0" };

	for (size_t i = 0; i < 5; i++) {
		v = false;
		assert_int_equal(rtvio_parse_bool(yes[i], &v, NULL), 0);
		assert_true(v);
		assert_int_equal(rtvio_parse_bool(no[i], &v, NULL), 0);
		assert_false(v);
	}
	assert_int_equal(rtvio_parse_bool("yess", &v, &why), -EINVAL);
	assert_string_equal(why, "expected yes or no");
	assert_int_equal(rtvio_parse_bool("", &v, NULL), -EINVAL);
	assert_int_equal(rtvio_parse_bool("2", &v, NULL), -EINVAL);
}

static void test_int(void **state)
{
	long long v = 5;

	(void)state;
	assert_int_equal(rtvio_parse_int("-1", -1, 1023, &v, NULL), 0);
	assert_int_equal(v, -1);
	assert_int_equal(rtvio_parse_int("1023", -1, 1023, &v, NULL), 0);
	assert_int_equal(v, 1023);
	assert_int_equal(rtvio_parse_int("1024", -1, 1023, &v, NULL), -ERANGE);
	assert_int_equal(rtvio_parse_int("-2", -1, 1023, &v, NULL), -ERANGE);
	assert_int_equal(rtvio_parse_int("-1", 0, 10, &v, NULL), -ERANGE);
	assert_int_equal(rtvio_parse_int("-9223372036854775808", LLONG_MIN, 0, &v, NULL), 0);
	assert_true(v == LLONG_MIN);
	assert_int_equal(rtvio_parse_int("9223372036854775807", 0, LLONG_MAX, &v, NULL), 0);
	assert_true(v == LLONG_MAX);
	assert_int_equal(rtvio_parse_int("9223372036854775808", 0, LLONG_MAX, &v, NULL), -ERANGE);
	assert_int_equal(rtvio_parse_int("99999999999999999999999", 0, LLONG_MAX, &v, NULL),
			 -ERANGE);
	assert_int_equal(rtvio_parse_int("12x", 0, 100, &v, NULL), -EINVAL);
	assert_int_equal(rtvio_parse_int("", 0, 100, &v, NULL), -EINVAL);
	assert_int_equal(rtvio_parse_int("-", -5, 100, &v, NULL), -EINVAL);
	assert_int_equal(rtvio_parse_int("0x1", 0, 100, &v, NULL), -EINVAL);
	assert_int_equal(rtvio_parse_int("1.0", 0, 100, &v, NULL), -EINVAL);
}

static void test_format_round_trip(void **state)
{
	char buf[48];
	uint64_t v;

	(void)state;
	assert_string_equal(rtvio_fmt_size(buf, sizeof(buf), 0), "0B");
	assert_string_equal(rtvio_fmt_size(buf, sizeof(buf), 64), "64B");
	assert_string_equal(rtvio_fmt_size(buf, sizeof(buf), 4096), "4KiB");
	assert_string_equal(rtvio_fmt_size(buf, sizeof(buf), 1500), "1500B");
	assert_string_equal(rtvio_fmt_size(buf, sizeof(buf), 2000000), "2MB");
	assert_string_equal(rtvio_fmt_size(buf, sizeof(buf), 1ull << 20), "1MiB");
	assert_string_equal(rtvio_fmt_time(buf, sizeof(buf), 0), "0ns");
	assert_string_equal(rtvio_fmt_time(buf, sizeof(buf), 1000000), "1ms");
	assert_string_equal(rtvio_fmt_time(buf, sizeof(buf), 2500), "2500ns");
	assert_string_equal(rtvio_fmt_time(buf, sizeof(buf), 3000), "3us");
	assert_string_equal(rtvio_fmt_time(buf, sizeof(buf), 7 * RTVIO_NS_PER_S), "7s");
	assert_string_equal(rtvio_fmt_bandwidth(buf, sizeof(buf), 8000000000ull), "8GB/s");

	/* Every value formats to something that parses back to itself. */
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < 20000; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		uint64_t x = seed >> (seed % 64);

		if (i % 3 == 0)
			x = (seed % 1000) << (10 * (seed % 5));
		rtvio_fmt_size(buf, sizeof(buf), x);
		assert_int_equal(rtvio_parse_size(buf, 1, &v, NULL), 0);
		assert_true(v == x);
		rtvio_fmt_time(buf, sizeof(buf), x);
		assert_int_equal(rtvio_parse_time(buf, RTVIO_NS_PER_S, &v, NULL), 0);
		assert_true(v == x);
		rtvio_fmt_bandwidth(buf, sizeof(buf), x);
		assert_int_equal(rtvio_parse_bandwidth(buf, &v, NULL), 0);
		assert_true(v == x);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_suffixes),
		cmocka_unit_test(test_size_fractions),
		cmocka_unit_test(test_size_garbage),
		cmocka_unit_test(test_size_overflow),
		cmocka_unit_test(test_size_bare_unit),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_time_unit_required),
		cmocka_unit_test(test_bandwidth),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_format_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
