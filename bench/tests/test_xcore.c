/* bench/xcore.c: the cross-core sampler. Its window statistics over samples set by
 * hand (the window's bounds, given-up samples left out, min/median/max), and the two
 * threads live: samples only while active, each stamped inside the active stretch,
 * and a clean stop. What a round trip measures is not asserted: it is the host's. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"
#include "runner.h"

static json_int_t stat_of(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(json_object_get(o, "xcore_rtt_ns"), k));
}

static void test_window(void **state)
{
	static uint64_t at[] = { 100, 200, 300, 400, 500, 600 };
	static uint32_t rtt[] = { 70, 340, 0, 65, 80, 900 };
	struct xcore x = { .at = at, .rtt = rtt };
	json_t *o = json_object();

	(void)state;
	atomic_store(&x.n, 6);
	/* [200, 600): 340, given up, 65, 80: three samples. */
	bench_xcore_window(&x, 200, 600, o);
	assert_int_equal(stat_of(o, "samples"), 3);
	assert_int_equal(stat_of(o, "min"), 65);
	assert_int_equal(stat_of(o, "p50"), 80);
	assert_int_equal(stat_of(o, "max"), 340);
	json_decref(o);
	/* Only given-up samples, or none at all: nothing is added. */
	o = json_object();
	bench_xcore_window(&x, 300, 301, o);
	bench_xcore_window(&x, 700, 800, o);
	assert_null(json_object_get(o, "xcore_rtt_ns"));
	json_decref(o);
	/* Samples not yet published are not read. */
	atomic_store(&x.n, 1);
	o = json_object();
	bench_xcore_window(&x, 0, 1000, o);
	assert_int_equal(stat_of(o, "samples"), 1);
	json_decref(o);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void test_live(void **state)
{
	struct xcore x;
	uint64_t t0, t1;

	(void)state;
	assert_int_equal(bench_xcore_start(&x), 0);
	sleep_ms(3 * XCORE_INTERVAL_NS / 1000000);
	assert_int_equal(atomic_load(&x.n), 0);	/* not active: no sample */
	t0 = rtvio_now_ns();
	atomic_store(&x.active, true);
	sleep_ms(5 * XCORE_INTERVAL_NS / 1000000);
	atomic_store(&x.active, false);
	sleep_ms(2 * XCORE_INTERVAL_NS / 1000000);	/* a tick in flight ends */
	t1 = rtvio_now_ns();
	bench_xcore_stop(&x);
	assert_true(atomic_load(&x.n) >= 2);
	for (uint32_t i = 0; i < atomic_load(&x.n); i++)
		assert_true(x.at[i] >= t0 && x.at[i] < t1);
	bench_xcore_free(&x);
	bench_xcore_free(&x);	/* twice: nothing left to free */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_live),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
