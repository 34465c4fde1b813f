/* bench/foreign_rt.c: the cpu time of other programs' real-time threads in a window.
 * A spread over samples checked by hand; a real-time thread of this process is never
 * counted; one of a process that is not a descendant (an orphaned grandchild) is,
 * with the time it spun (skipped where SCHED_FIFO is not allowed). */
#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "runner.h"

static void test_spread_over_samples(void **state)
{
	static struct frt_sample s[3] = {
		{ .t = 1000000, .ran_ns = 0 },
		{ .t = 2000000, .ran_ns = 400000 },	/* 0.4 ms in [1, 2) ms */
		{ .t = 4000000, .ran_ns = 1000000 },	/* 1 ms in [2, 4) ms */
	};
	struct foreign_rt f = { .on = true, .s = s, .n = 3 };

	(void)state;
	assert_float_equal(bench_foreign_in(&f, 0, 10000000), 1400.0, 1e-6);
	/* Half of the first interval, a quarter of the second. */
	assert_float_equal(bench_foreign_in(&f, 1500000, 2500000), 200.0 + 250.0, 1e-6);
	assert_float_equal(bench_foreign_in(&f, 5000000, 6000000), 0.0, 1e-9);
	f.on = false;
	assert_float_equal(bench_foreign_in(&f, 0, 10000000), 0.0, 1e-9);
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spins until this thread has had ms of cpu, however long other work holds it off. */
static void spin_ms(unsigned int ms)
{
	uint64_t end = cpu_ns() + (uint64_t)ms * 1000000u;

	while (cpu_ns() < end) {
	}
}

static bool fifo(int prio)
{
	struct sched_param sp = { .sched_priority = prio };

	return sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
}

/* A grandchild, orphaned at once (not our descendant any more), that waits for the
 * sampler to find it, spins 60 ms of cpu at SCHED_FIFO 1 and exits. */
static pid_t orphan_spinner(void)
{
	int p[2];
	pid_t mid, g = -1;

	assert_int_equal(pipe(p), 0);
	mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		pid_t k = fork();

		if (k == 0) {
			struct timespec wait = { 0, 300 * 1000000L };

			if (!fifo(1))
				_exit(1);
			nanosleep(&wait, NULL);
			spin_ms(60);
			_exit(0);
		}
		if (write(p[1], &k, sizeof(k)) != (ssize_t)sizeof(k))
			_exit(2);
		_exit(0);
	}
	waitpid(mid, NULL, 0);
	if (read(p[0], &g, sizeof(g)) != (ssize_t)sizeof(g))
		g = -1;
	close(p[0]);
	close(p[1]);
	return g;
}

static void test_others_counted_ours_not(void **state)
{
	struct foreign_rt *f = calloc(1, sizeof(*f));
	json_t *j = json_object(), *t;
	struct sched_param normal = { 0 };
	struct timespec run = { 0, 100 * 1000000L };
	uint64_t t0;
	pid_t g;
	size_t i;
	bool seen = false;

	(void)state;
	assert_non_null(f);
	if (!fifo(1)) {
		skip();
		return;
	}
	bench_foreign_start(f, 1);
	t0 = rtvio_now_ns();
	g = orphan_spinner();
	assert_true(g > 0);
	/* This thread is real-time too, and spins as long: it is ours. */
	spin_ms(60);
	sched_setscheduler(0, SCHED_OTHER, &normal);
	/* Until the orphan has spun and gone (init reaps it), 10 s at most. */
	for (int w = 0; w < 100 && kill(g, 0) == 0; w++)
		nanosleep(&run, NULL);
	bench_foreign_stop(f);
	/* The orphan had its 60 ms of cpu (this thread's 60 ms are not counted; the
	 * kernel's count lags by a tick at most). */
	assert_true(bench_foreign_in(f, t0, rtvio_now_ns()) >= 50000.0);
	bench_foreign_json(f, j);
	json_array_foreach(json_object_get(j, "threads"), i, t) {
		pid_t tid = (pid_t)json_integer_value(json_object_get(t, "tid"));

		assert_true(tid != getpid());
		if (tid == g) {
			seen = true;
			assert_true(json_number_value(json_object_get(t, "ran_ms")) >= 50.0);
			assert_true(json_number_value(json_object_get(t, "ran_ms")) < 100.0);
		}
	}
	assert_true(seen);
	json_decref(j);
	bench_foreign_free(f);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spread_over_samples),
		cmocka_unit_test(test_others_counted_ours_not),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
