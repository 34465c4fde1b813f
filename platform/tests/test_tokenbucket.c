/* Token bucket against a fake clock: exact token counts, burst cap, rate changes,
 * backwards clocks and the overflow guard. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tokenbucket.h"

static void test_starts_full_and_refuses_beyond(void **state)
{
	struct tokenbucket tb;

	(void)state;
	assert_int_equal(tb_init(&tb, 1000, 100, 0), 0);
	assert_true(tb_take(&tb, 60, 0));
	assert_false(tb_take(&tb, 41, 0));	/* 40 left: all-or-nothing */
	assert_int_equal(tb.tokens, 40);
	assert_true(tb_take(&tb, 40, 0));
	assert_false(tb_take(&tb, 1, 0));
}

static void test_refill_exact_rate(void **state)
{
	struct tokenbucket tb;

	(void)state;
	/* 1000 B/s: one byte per ms. */
	assert_int_equal(tb_init(&tb, 1000, 500, 0), 0);
	assert_true(tb_take(&tb, 500, 0));
	assert_false(tb_take(&tb, 1, 999999));	/* 0.999 ms: not yet */
	assert_true(tb_take(&tb, 1, 1000000));
	assert_false(tb_take(&tb, 1, 1000000));
	/* 250 ms later: exactly 250 bytes. */
	assert_false(tb_take(&tb, 251, 251000000));
	assert_true(tb_take(&tb, 250, 251000000));
}

static void test_fractional_refill_does_not_drift(void **state)
{
	struct tokenbucket tb;
	uint64_t taken = 0;

	(void)state;
	/* 3 B/s polled every 100 ms: each poll earns 0.3 B. Without the remainder the
	 * bucket would never earn anything; with it, 10 s yield exactly 30 B. */
	assert_int_equal(tb_init(&tb, 3, 1000, 0), 0);
	tb.tokens = 0;
	for (uint64_t t = 100000000; t <= 10000000000ULL; t += 100000000)
		while (tb_take(&tb, 1, t))
			taken++;
	assert_int_equal(taken, 30);
}

static void test_burst_caps_idle_time(void **state)
{
	struct tokenbucket tb;

	(void)state;
	assert_int_equal(tb_init(&tb, 1000000, 4096, 0), 0);
	assert_true(tb_take(&tb, 4096, 0));
	/* An hour idle still gives one burst only, and the huge elapsed time does not
	 * overflow the refill arithmetic. */
	tb_refill(&tb, 3600ULL * 1000000000ULL);
	assert_int_equal(tb.tokens, 4096);
	assert_false(tb_take(&tb, 4097, 3600ULL * 1000000000ULL));
}

static void test_large_rate_long_gap_no_overflow(void **state)
{
	struct tokenbucket tb;

	(void)state;
	assert_int_equal(tb_init(&tb, TB_MAX_RATE_BPS, TB_MAX_BURST, 0), 0);
	assert_true(tb_take(&tb, TB_MAX_BURST, 0));
	/* Just under the time that fills the bucket (2^30 B at 1 TB/s: 1073741.8 ns). */
	tb_refill(&tb, TB_MAX_BURST / 1000);
	assert_true(tb.tokens < TB_MAX_BURST);
	assert_true(tb.tokens >= TB_MAX_BURST - 1000);
	tb_refill(&tb, UINT64_MAX);
	assert_int_equal(tb.tokens, TB_MAX_BURST);
}

static void test_backwards_clock_earns_nothing(void **state)
{
	struct tokenbucket tb;

	(void)state;
	assert_int_equal(tb_init(&tb, 1000, 100, 5000000000ULL), 0);
	assert_true(tb_take(&tb, 100, 5000000000ULL));
	assert_false(tb_take(&tb, 1, 1000000000ULL));
	assert_int_equal(tb.tokens, 0);
	/* and time is measured from the latest reading, not the stale one */
	assert_true(tb_take(&tb, 1, 5001000000ULL));
}

static void test_wait_ns(void **state)
{
	struct tokenbucket tb;

	(void)state;
	assert_int_equal(tb_init(&tb, 1000, 100, 0), 0);
	assert_int_equal(tb_wait_ns(&tb, 100), 0);
	assert_true(tb_take(&tb, 100, 0));
	assert_int_equal(tb_wait_ns(&tb, 10), 10000000);
	assert_int_equal(tb_wait_ns(&tb, 101), UINT64_MAX);
	/* waiting the advertised time is enough, one ns less is not */
	assert_false(tb_take(&tb, 10, 9999999));
	assert_true(tb_take(&tb, 10, 10000000));
}

static void test_long_run_matches_rate(void **state)
{
	struct tokenbucket tb;
	uint64_t taken = 0, t = 0;

	(void)state;
	/* A greedy taker polling at irregular times gets rate * time + burst, no more. */
	assert_int_equal(tb_init(&tb, 2000000000ULL, 1 << 20, 0), 0);
	while (t < 1000000000ULL) {
		while (tb_take(&tb, 65536, t))
			taken += 65536;
		t += 1000 + (t % 7919);
	}
	assert_true(taken <= 2000000000ULL + (1 << 20));
	assert_true(taken >= 2000000000ULL + (1 << 20) - 2 * 65536);
}

static void test_set_rate_and_unlimited(void **state)
{
	struct tokenbucket tb;

	(void)state;
	assert_int_equal(tb_init(&tb, 1000, 1000, 0), 0);
	assert_true(tb_take(&tb, 1000, 0));
	/* 100 ms at 1000 B/s earns 100 before the change; 100 ms at 10 kB/s 1000 more,
	 * capped at the burst. */
	assert_int_equal(tb_set_rate(&tb, 10000, 100000000), 0);
	assert_int_equal(tb.tokens, 100);
	tb_refill(&tb, 150000000);
	assert_int_equal(tb.tokens, 600);
	assert_int_equal(tb_set_rate(&tb, 0, 150000000), 0);
	assert_true(tb_take(&tb, UINT64_MAX, 150000000));
	assert_int_equal(tb_wait_ns(&tb, UINT64_MAX), 0);
}

static void test_rejects_bad_parameters(void **state)
{
	struct tokenbucket tb;

	(void)state;
	assert_int_equal(tb_init(&tb, 1000, 0, 0), -EINVAL);
	assert_int_equal(tb_init(&tb, TB_MAX_RATE_BPS + 1, 100, 0), -EINVAL);
	assert_int_equal(tb_init(&tb, 1000, TB_MAX_BURST + 1, 0), -EINVAL);
	assert_int_equal(tb_init(&tb, 1000, 100, 0), 0);
	assert_int_equal(tb_set_rate(&tb, TB_MAX_RATE_BPS + 1, 0), -EINVAL);
	assert_int_equal(tb.rate_Bps, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_starts_full_and_refuses_beyond),
		cmocka_unit_test(test_refill_exact_rate),
		cmocka_unit_test(test_fractional_refill_does_not_drift),
		cmocka_unit_test(test_burst_caps_idle_time),
		cmocka_unit_test(test_large_rate_long_gap_no_overflow),
		cmocka_unit_test(test_backwards_clock_earns_nothing),
		cmocka_unit_test(test_wait_ns),
		cmocka_unit_test(test_long_run_matches_rate),
		cmocka_unit_test(test_set_rate_and_unlimited),
		cmocka_unit_test(test_rejects_bad_parameters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
