/* Fits, percentiles and knees on synthetic data with known answers. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fit.h"

/* cmocka 1.1 compares floats only; these answers need doubles. */
static void check_near(double a, double b, double eps, const char *file, int line)
{
	if (!(fabs(a - b) <= eps)) {
		print_error("%.17g != %.17g (within %g)\n", a, b, eps);
		_fail(file, line);
	}
}

#define assert_double_equal(a, b, eps) check_near((a), (b), (eps), __FILE__, __LINE__)

static void test_linear_exact(void **state)
{
	double x[] = { 64, 1024, 4096, 16384, 65536 };
	double y[5];
	struct linfit f;

	(void)state;
	/* 300 ns per chunk plus 0.125 ns per byte (8 GB/s) */
	for (size_t i = 0; i < 5; i++)
		y[i] = 300 + 0.125 * x[i];
	assert_int_equal(fit_linear(x, y, 5, &f), 0);
	assert_double_equal(f.slope, 0.125, 1e-12);
	assert_double_equal(f.intercept, 300, 1e-9);
	assert_double_equal(f.r2, 1.0, 1e-12);
	assert_int_equal(f.n, 5);
}

static void test_linear_noisy_known(void **state)
{
	/* x = 1..4, y = 2, 3, 5, 6: slope 1.4, intercept 0.5, r^2 = 0.98 */
	double x[] = { 1, 2, 3, 4 }, y[] = { 2, 3, 5, 6 };
	struct linfit f;

	(void)state;
	assert_int_equal(fit_linear(x, y, 4, &f), 0);
	assert_double_equal(f.slope, 1.4, 1e-12);
	assert_double_equal(f.intercept, 0.5, 1e-12);
	assert_double_equal(f.r2, 0.98, 1e-12);
}

static void test_linear_large_offsets(void **state)
{
	/* timestamps around 1e18 ns: a naive sum of squares loses everything */
	double x[] = { 1e15 + 0, 1e15 + 1000, 1e15 + 2000, 1e15 + 3000 };
	double y[] = { 5, 7, 9, 11 };
	struct linfit f;

	(void)state;
	assert_int_equal(fit_linear(x, y, 4, &f), 0);
	assert_double_equal(f.slope, 0.002, 1e-9);
	assert_double_equal(f.r2, 1.0, 1e-9);
}

static void test_linear_errors(void **state)
{
	double x[] = { 3, 3, 3 }, y[] = { 1, 2, 3 }, bad[] = { 1, NAN, 3 };
	struct linfit f;

	(void)state;
	assert_int_equal(fit_linear(x, y, 1, &f), -EINVAL);
	assert_int_equal(fit_linear(x, y, 3, &f), -EDOM);
	assert_int_equal(fit_linear(y, bad, 3, &f), -EINVAL);
	/* constant y: slope 0, a perfect (if dull) fit */
	assert_int_equal(fit_linear(y, x, 3, &f), 0);
	assert_double_equal(f.slope, 0, 1e-12);
	assert_double_equal(f.intercept, 3, 1e-12);
	assert_double_equal(f.r2, 1, 1e-12);
}

static void test_percentiles(void **state)
{
	double v[100];
	struct summary s;

	(void)state;
	/* 100 samples 1..100 in scrambled order */
	for (size_t i = 0; i < 100; i++)
		v[i] = (double)((i * 37) % 100 + 1);
	assert_int_equal(fit_summarize(v, 100, &s), 0);
	assert_int_equal(s.n, 100);
	assert_double_equal(s.min, 1, 0);
	assert_double_equal(s.max, 100, 0);
	assert_double_equal(s.median, 50.5, 1e-12);
	assert_double_equal(s.p90, 90, 0);
	assert_double_equal(s.p99, 99, 0);
	assert_double_equal(s.mean, 50.5, 1e-12);
	for (size_t i = 1; i < 100; i++)
		assert_true(v[i - 1] <= v[i]);
	/* nearest rank: smallest value with >= p% at or below it */
	assert_double_equal(fit_percentile_sorted(v, 100, 99.5), 100, 0);
	assert_double_equal(fit_percentile_sorted(v, 100, 0.5), 1, 0);
	assert_double_equal(fit_percentile_sorted(v, 100, 0), 1, 0);
	assert_double_equal(fit_percentile_sorted(v, 100, 100), 100, 0);
}

static void test_percentile_small_and_empty(void **state)
{
	double one[] = { 7 }, three[] = { 30, 10, 20 }, bad[] = { 1, NAN };
	struct summary s;

	(void)state;
	assert_int_equal(fit_summarize(one, 1, &s), 0);
	assert_double_equal(s.p99, 7, 0);
	assert_double_equal(s.median, 7, 0);
	assert_int_equal(fit_summarize(three, 3, &s), 0);
	assert_double_equal(s.median, 20, 0);
	assert_double_equal(s.p90, 30, 0);
	assert_double_equal(fit_percentile_sorted(three, 3, 50), 20, 0);
	assert_double_equal(fit_percentile_sorted(three, 3, 33.4), 20, 0);
	assert_double_equal(fit_percentile_sorted(three, 3, 33.3), 10, 0);
	assert_true(isnan(fit_percentile_sorted(three, 0, 50)));
	assert_true(isnan(fit_median(three, 0)));
	assert_int_equal(fit_summarize(three, 0, &s), -EINVAL);
	assert_int_equal(fit_summarize(bad, 2, &s), -EINVAL);
}

static void test_knee_found(void **state)
{
	/* a classic saturation curve: flat, then latency climbs past 1.5 x 100 ns */
	double bw[] = { 0, 2e9, 4e9, 6e9, 8e9, 9e9, 9.5e9 };
	double lat[] = { 100, 102, 105, 120, 149.9, 160, 300 };
	struct knee k;

	(void)state;
	assert_int_equal(fit_knee(bw, lat, 7, 100, 1.5, &k), 0);
	assert_true(k.found);
	assert_int_equal(k.index, 5);
	assert_double_equal(k.knee_bw, 9e9, 0);
	assert_double_equal(k.budgetable_bw, 8e9, 0);
	/* a stricter factor moves the knee down */
	assert_int_equal(fit_knee(bw, lat, 7, 100, 1.1, &k), 0);
	assert_int_equal(k.index, 3);
	assert_double_equal(k.budgetable_bw, 4e9, 0);
}

static void test_knee_uses_measured_bandwidth(void **state)
{
	/* Interferers fell short of their targets: step 3 achieved more than the knee
	 * step itself, so it cannot be budgeted; the answer is the best step below. */
	double bw[] = { 0, 3e9, 5e9, 7.5e9, 7e9, 7.2e9 };
	double lat[] = { 80, 81, 90, 100, 130, 200 };
	struct knee k;

	(void)state;
	assert_int_equal(fit_knee(bw, lat, 6, 80, 1.5, &k), 0);
	assert_true(k.found);
	assert_int_equal(k.index, 4);
	assert_double_equal(k.knee_bw, 7e9, 0);
	assert_double_equal(k.budgetable_bw, 5e9, 0);
}

static void test_knee_absent_and_first(void **state)
{
	double bw[] = { 0, 1e9, 2e9 };
	double flat[] = { 100, 110, 140 };
	double steep[] = { 100, 400, 500 };
	struct knee k;

	(void)state;
	assert_int_equal(fit_knee(bw, flat, 3, 100, 1.5, &k), 0);
	assert_false(k.found);
	assert_double_equal(k.budgetable_bw, 2e9, 0);
	assert_int_equal(fit_knee(bw, steep, 3, 100, 1.5, &k), 0);
	assert_true(k.found);
	assert_int_equal(k.index, 1);
	assert_double_equal(k.budgetable_bw, 0, 0);
	/* equal to the limit is not over it */
	assert_int_equal(fit_knee(bw, flat, 3, 100, 1.4, &k), 0);
	assert_false(k.found);
}

static void test_knee_bad_input(void **state)
{
	double bw[] = { 0, 1e9 }, lat[] = { 100, 200 }, nan_lat[] = { 100, NAN };
	struct knee k;

	(void)state;
	assert_int_equal(fit_knee(bw, lat, 0, 100, 1.5, &k), -EINVAL);
	assert_int_equal(fit_knee(bw, lat, 2, 100, 1.0, &k), -EINVAL);
	assert_int_equal(fit_knee(bw, lat, 2, 0, 1.5, &k), -EINVAL);
	assert_int_equal(fit_knee(bw, lat, 2, 100, NAN, &k), -EINVAL);
	assert_int_equal(fit_knee(bw, nan_lat, 2, 100, 1.5, &k), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linear_exact),
		cmocka_unit_test(test_linear_noisy_known),
		cmocka_unit_test(test_linear_large_offsets),
		cmocka_unit_test(test_linear_errors),
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_percentile_small_and_empty),
		cmocka_unit_test(test_knee_found),
		cmocka_unit_test(test_knee_uses_measured_bandwidth),
		cmocka_unit_test(test_knee_absent_and_first),
		cmocka_unit_test(test_knee_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
