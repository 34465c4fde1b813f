/* common/log.h and common/clock.h: trace_error reports where an error was born (and
 * only when enabled), conversions are exact, absolute sleeps never return early, not
 * even when a signal interrupts them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define RTVIO_TRACE_ERRORS
#include "log.h"
#include "clock.h"

int quiet_failure(void); /* log_off.c: the same call without RTVIO_TRACE_ERRORS */

static int traced_line;

static int failing_function(void)
{
	traced_line = __LINE__ + 1;
	return trace_error(-EINVAL);
}

/* Runs fn with stderr sent to a temporary file; returns what it wrote. */
static char *capture_stderr(int (*fn)(void), int *ret)
{
	static char out[512];
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);

	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	*ret = fn();
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	size_t n = fread(out, 1, sizeof(out) - 1, tmp);

	out[n] = '\0';
	fclose(tmp);
	return out;
}

static void test_trace_error(void **state)
{
	char want[128];
	int ret = 0;

	(void)state;
	char *out = capture_stderr(failing_function, &ret);

	assert_int_equal(ret, -EINVAL);
	snprintf(want, sizeof(want), "test_log_clock.c:%d: failing_function: error -22 "
		 "(Invalid argument)\n", traced_line);
	if (!strstr(out, want))
		fail_msg("got '%s', want '...%s'", out, want);

	/* Disabled, it returns the code and prints nothing. */
	out = capture_stderr(quiet_failure, &ret);
	assert_int_equal(ret, -ENOSPC);
	assert_string_equal(out, "");
}

static void test_conversions(void **state)
{
	const uint64_t values[] = { 0, 1, 999999999, 1000000000, 1000000001,
				    18446744073709551615ull / 2 };

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		struct timespec ts = rtvio_ns_to_timespec(values[i]);

		assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
		assert_true(rtvio_timespec_to_ns(&ts) == values[i]);
	}
	struct timespec neg = { .tv_sec = -1, .tv_nsec = 0 };

	assert_true(rtvio_timespec_to_ns(&neg) == 0);
}

static void test_monotonic(void **state)
{
	(void)state;
	uint64_t prev = rtvio_now_ns();

	assert_true(prev > 0);
	for (int i = 0; i < 100000; i++) {
		uint64_t t = rtvio_now_ns();

		assert_true(t >= prev);
		prev = t;
	}
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void test_sleep_until(void **state)
{
	(void)state;
	/* A time in the past returns at once, successfully. */
	assert_int_equal(rtvio_sleep_until_ns(0), 0);

	uint64_t target = rtvio_now_ns() + 3000000;

	assert_int_equal(rtvio_sleep_until_ns(target), 0);
	assert_true(rtvio_now_ns() >= target);

	/* Interrupted by signals every millisecond, it still sleeps to the target. */
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
	struct itimerval it = { .it_interval = { 0, 1000 }, .it_value = { 0, 1000 } };
	struct itimerval off = { { 0, 0 }, { 0, 0 } };

	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	alarms = 0;
	target = rtvio_now_ns() + 30000000;
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	int ret = rtvio_sleep_until_ns(target);
	uint64_t woke = rtvio_now_ns();

	assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
	signal(SIGALRM, SIG_DFL);
	assert_int_equal(ret, 0);
	assert_true(woke >= target);
	assert_true(alarms > 0); /* the loop was exercised */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trace_error),
		cmocka_unit_test(test_conversions),
		cmocka_unit_test(test_monotonic),
		cmocka_unit_test(test_sleep_until),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
