/* MemGuard-style regulator against a fake clock: the budget per period is never
 * exceeded, no period with budget left is skipped, and the counters are exact. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "regulator.h"

#define MS 1000000ULL

static void test_budget_then_refusal(void **state)
{
	struct regulator r;

	(void)state;
	assert_int_equal(reg_init(&r, 10000, MS, 0), 0);
	assert_int_equal(reg_grant(&r, 4096, 0), 4096);
	assert_int_equal(reg_grant(&r, 4096, 100), 4096);
	/* only 1808 left: a partial grant, then nothing */
	assert_int_equal(reg_grant(&r, 4096, 200), 1808);
	assert_int_equal(reg_grant(&r, 4096, 300), 0);
	assert_int_equal(reg_remaining(&r, 300), 0);
	assert_int_equal(reg_next_ns(&r), MS);
	/* the new period refills to exactly the budget, nothing carried over */
	assert_int_equal(reg_remaining(&r, MS), 10000);
	assert_int_equal(reg_grant(&r, 20000, MS), 10000);
}

static void test_never_exceeds_budget_per_period(void **state)
{
	struct regulator r;
	uint64_t per_period[200] = { 0 };
	uint64_t t = 0, seed = 12345, sum = 0;

	(void)state;
	/* Irregular requests at irregular times over 200 periods of 1 ms starting at an
	 * odd offset; grants are summed per period of the regulator's grid. */
	assert_int_equal(reg_init(&r, 65536, MS, 777), 0);
	while (t < 200 * MS) {
		uint64_t want, got;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		want = (seed >> 33) % 20000;
		got = reg_grant(&r, want, t + 777);
		assert_true(got <= want);
		per_period[t / MS] += got;
		/* a request is cut short only by a spent budget */
		if (got < want)
			assert_int_equal(per_period[t / MS], 65536);
		t += (seed >> 20) % 50000;
	}
	for (size_t i = 0; i < 200; i++) {
		assert_true(per_period[i] <= 65536);
		sum += per_period[i];
	}
	assert_int_equal(r.granted_bytes, sum);
	/* ~10 kB asked every 25 us on average: far more than the budget, so it bound */
	assert_true(r.throttled_periods > 100);
}

static void test_no_period_skipped_when_budget_remains(void **state)
{
	struct regulator r;

	(void)state;
	/* A caller that is always hungry gets the full budget in every period it asks
	 * in, including right at each boundary and after idle periods. */
	assert_int_equal(reg_init(&r, 1000, MS, 0), 0);
	for (uint64_t p = 0; p < 50; p++) {
		uint64_t t0 = p * MS;

		if (p % 10 == 9)
			continue;	/* idle period */
		assert_int_equal(reg_grant(&r, 600, t0), 600);
		assert_int_equal(reg_grant(&r, 600, t0 + MS / 2), 400);
		assert_int_equal(reg_grant(&r, 600, t0 + MS - 1), 0);
	}
	/* asked in 45 periods, refused in each of them */
	assert_int_equal(r.throttled_periods, 45);
	assert_int_equal(r.granted_bytes, 45 * 1000);
}

static void test_throttled_time(void **state)
{
	struct regulator r;

	(void)state;
	assert_int_equal(reg_init(&r, 100, 10 * MS, 0), 0);
	assert_int_equal(reg_grant(&r, 100, 0), 100);
	/* refused at 4 ms, and again at 6 ms: throttled from 4 ms to the boundary */
	assert_int_equal(reg_grant(&r, 1, 4 * MS), 0);
	assert_int_equal(reg_grant(&r, 1, 6 * MS), 0);
	assert_int_equal(r.throttled_periods, 1);
	assert_int_equal(r.throttled_ns, 0);	/* not settled until the period ends */
	/* the caller comes back late, at 25 ms: throttling still ended at 10 ms */
	assert_int_equal(reg_grant(&r, 100, 25 * MS), 100);
	assert_int_equal(r.throttled_ns, 6 * MS);
	assert_int_equal(reg_next_ns(&r), 30 * MS);
	assert_int_equal(reg_grant(&r, 1, 29 * MS), 0);
	reg_advance(&r, 30 * MS);
	assert_int_equal(r.throttled_ns, 7 * MS);
	assert_int_equal(r.throttled_periods, 2);
	/* a spent budget that nobody asks beyond is not throttling */
	assert_int_equal(reg_grant(&r, 100, 30 * MS), 100);
	reg_advance(&r, 45 * MS);
	assert_int_equal(r.throttled_periods, 2);
	assert_int_equal(r.throttled_ns, 7 * MS);
}

static void test_grid_does_not_drift(void **state)
{
	struct regulator r;

	(void)state;
	assert_int_equal(reg_init(&r, 10, 3, 1), 0);
	assert_int_equal(reg_grant(&r, 10, 1), 10);
	/* periods are [1,4) [4,7) [7,10) ...: asking at 9 is in the third one */
	assert_int_equal(reg_grant(&r, 10, 9), 10);
	assert_int_equal(reg_next_ns(&r), 10);
	assert_int_equal(reg_grant(&r, 1, 9), 0);
	assert_int_equal(reg_grant(&r, 1, 10), 1);
}

static void test_backwards_clock(void **state)
{
	struct regulator r;

	(void)state;
	assert_int_equal(reg_init(&r, 100, MS, 10 * MS), 0);
	assert_int_equal(reg_grant(&r, 100, 10 * MS), 100);
	/* an earlier time neither refills nor breaks the accounting */
	assert_int_equal(reg_grant(&r, 1, 5 * MS), 0);
	assert_int_equal(reg_remaining(&r, 5 * MS), 0);
	reg_advance(&r, 11 * MS);
	assert_int_equal(r.throttled_ns, MS);
	assert_int_equal(reg_grant(&r, 100, 11 * MS), 100);
}

static void test_unregulated_and_bad_input(void **state)
{
	struct regulator r;

	(void)state;
	assert_int_equal(reg_init(&r, 100, 0, 0), -EINVAL);
	assert_int_equal(reg_init(&r, 0, 0, 0), 0);
	assert_int_equal(reg_grant(&r, 1ULL << 40, 0), 1ULL << 40);
	assert_int_equal(reg_grant(&r, 1ULL << 40, 0), 1ULL << 40);
	assert_int_equal(r.throttled_periods, 0);
	assert_int_equal(r.granted_bytes, 1ULL << 41);
	assert_int_equal(reg_grant(&r, 0, 0), 0);
}

static void test_zero_request_is_not_throttling(void **state)
{
	struct regulator r;

	(void)state;
	assert_int_equal(reg_init(&r, 10, MS, 0), 0);
	assert_int_equal(reg_grant(&r, 10, 0), 10);
	assert_int_equal(reg_grant(&r, 0, 1), 0);
	assert_int_equal(r.throttled_periods, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_then_refusal),
		cmocka_unit_test(test_never_exceeds_budget_per_period),
		cmocka_unit_test(test_no_period_skipped_when_budget_remains),
		cmocka_unit_test(test_throttled_time),
		cmocka_unit_test(test_grid_does_not_drift),
		cmocka_unit_test(test_backwards_clock),
		cmocka_unit_test(test_unregulated_and_bad_input),
		cmocka_unit_test(test_zero_request_is_not_throttling),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
