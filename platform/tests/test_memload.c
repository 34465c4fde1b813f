/* The victim's chase structure and the throttled interferers. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "memload.h"

static void test_chase_is_one_cycle(void **state)
{
	static const size_t sizes[] = { 128, 192, 4096, 1 << 20, 3 << 20 };

	(void)state;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		struct chase c;

		assert_int_equal(chase_build(&c, sizes[i], 42 + i), 0);
		assert_int_equal(c.lines, sizes[i] / MEMLOAD_LINE);
		assert_int_equal(chase_verify(&c), 0);
		/* walking the whole cycle returns to the start */
		assert_ptr_equal(chase_run(c.start, c.lines), c.start);
		assert_ptr_not_equal(chase_run(c.start, c.lines - 1), c.start);
		chase_free(&c);
	}
}

static void test_chase_order_depends_on_seed(void **state)
{
	struct chase a, b;

	(void)state;
	assert_int_equal(chase_build(&a, 1 << 16, 1), 0);
	assert_int_equal(chase_build(&b, 1 << 16, 2), 0);
	/* same seed gives the same walk; different seeds (almost surely) do not */
	assert_int_not_equal((char *)chase_run(a.start, 100) - (char *)a.mem,
			     (char *)chase_run(b.start, 100) - (char *)b.mem);
	chase_free(&b);
	assert_int_equal(chase_build(&b, 1 << 16, 1), 0);
	assert_int_equal((char *)chase_run(a.start, 100) - (char *)a.mem,
			 (char *)chase_run(b.start, 100) - (char *)b.mem);
	chase_free(&a);
	chase_free(&b);
}

static void test_chase_verify_catches_damage(void **state)
{
	struct chase c;
	char *start, *next, *bad;

	(void)state;
	assert_int_equal(chase_build(&c, 1 << 14, 7), 0);
	start = c.start;
	memcpy(&next, start, sizeof next);
	/* a short cycle: the start points to itself */
	memcpy(start, &start, sizeof(char *));
	assert_int_equal(chase_verify(&c), -EINVAL);
	/* a pointer into the middle of a line */
	bad = next + 8;
	memcpy(start, &bad, sizeof bad);
	assert_int_equal(chase_verify(&c), -EINVAL);
	/* a pointer out of the buffer */
	bad = (char *)c.mem + c.bytes;
	memcpy(start, &bad, sizeof bad);
	assert_int_equal(chase_verify(&c), -EINVAL);
	memcpy(start, &next, sizeof next);
	assert_int_equal(chase_verify(&c), 0);
	chase_free(&c);
}

static void test_chase_rejects_tiny(void **state)
{
	struct chase c;

	(void)state;
	assert_int_equal(chase_build(&c, 64, 1), -EINVAL);
	assert_int_equal(chase_build(&c, 0, 1), -EINVAL);
}

static void test_patterns(void **state)
{
	enum mem_pattern p;

	(void)state;
	assert_int_equal(mem_pattern_parse("read", &p), 0);
	assert_int_equal(p, MEM_READ);
	assert_int_equal(mem_pattern_parse("write", &p), 0);
	assert_int_equal(p, MEM_WRITE);
	assert_int_equal(mem_pattern_parse("copy", &p), 0);
	assert_int_equal(p, MEM_COPY);
	assert_string_equal(mem_pattern_name(MEM_COPY), "copy");
	assert_int_equal(mem_pattern_parse("Copy", &p), -EINVAL);
	assert_int_equal(mem_pattern_parse(NULL, &p), -EINVAL);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts))
		;
}

static void test_streamer_respects_rate(void **state)
{
	static const enum mem_pattern pats[] = { MEM_READ, MEM_WRITE, MEM_COPY };
	const uint64_t rate = 100000000;	/* 100 MB/s */

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct streamer s;
		uint64_t t0, t1, bytes, bound;

		t0 = memload_now();
		assert_int_equal(streamer_start(&s, -1, pats[i], 1 << 20, rate), 0);
		sleep_ms(100);
		/* a loaded machine may not have run the thread yet: give it time */
		for (int tries = 0; tries < 1000 && !streamer_bytes(&s); tries++)
			sleep_ms(10);
		bytes = streamer_bytes(&s);
		t1 = memload_now();
		/* A token bucket admits at most rate * time + its burst (here 4 chunks,
		 * since 1 ms of 100 MB/s is less), counted in whole chunks. */
		bound = rate * (t1 - t0) / 1000000000ULL + 4 * STREAM_CHUNK;
		assert_true(bytes <= bound);
		assert_true(bytes > 0);
		assert_int_equal(bytes % STREAM_CHUNK, 0);
		streamer_stop(&s);
	}
}

static void test_streamer_idle_then_throttled(void **state)
{
	struct streamer s;
	uint64_t before, t0, t1, after;

	(void)state;
	assert_int_equal(streamer_start(&s, -1, MEM_COPY, 1 << 20, STREAM_IDLE), 0);
	sleep_ms(30);
	assert_int_equal(streamer_bytes(&s), 0);
	before = streamer_bytes(&s);
	t0 = memload_now();
	streamer_set_rate(&s, 50000000);
	sleep_ms(60);
	for (int tries = 0; tries < 1000 && streamer_bytes(&s) == before; tries++)
		sleep_ms(10);
	after = streamer_bytes(&s);
	t1 = memload_now();
	assert_true(after > before);
	assert_true(after - before <= 50000000ULL * (t1 - t0) / 1000000000ULL + 4 * STREAM_CHUNK);
	/* once back to idle is acknowledged, the count stands still */
	streamer_set_rate(&s, STREAM_IDLE);
	while (!streamer_rate_applied(&s))
		sched_yield();
	before = streamer_bytes(&s);
	sleep_ms(20);
	assert_int_equal(streamer_bytes(&s), before);
	streamer_stop(&s);
}

static void test_streamer_bad_buffer(void **state)
{
	struct streamer s;

	(void)state;
	assert_int_equal(streamer_start(&s, -1, MEM_READ, STREAM_CHUNK - 1, 0), -EINVAL);
}

static void test_format_rate(void **state)
{
	char buf[32];

	(void)state;
	memload_format_rate(12346e6, buf, sizeof buf);
	assert_string_equal(buf, "12.35 GB/s");
	memload_format_rate(250e6, buf, sizeof buf);
	assert_string_equal(buf, "250.0 MB/s");
	memload_format_rate(0, buf, sizeof buf);
	assert_string_equal(buf, "0 B/s");
}

static void test_cpus_and_llc(void **state)
{
	int cpus[1024];
	int n = memload_cpus(cpus, 1024);

	(void)state;
	assert_true(n >= 1);
	for (int i = 1; i < n; i++)
		assert_true(cpus[i] > cpus[i - 1]);
	assert_int_equal(memload_pin_self(cpus[0]), 0);
	assert_int_equal(sched_getcpu(), cpus[0]);
	assert_int_equal(memload_pin_self(-1), -EINVAL);
	/* sysfs may lack cache info (some containers); when present it is plausible */
	if (memload_llc_bytes())
		assert_true(memload_llc_bytes() >= 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chase_is_one_cycle),
		cmocka_unit_test(test_chase_order_depends_on_seed),
		cmocka_unit_test(test_chase_verify_catches_damage),
		cmocka_unit_test(test_chase_rejects_tiny),
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_streamer_respects_rate),
		cmocka_unit_test(test_streamer_idle_then_throttled),
		cmocka_unit_test(test_streamer_bad_buffer),
		cmocka_unit_test(test_format_rate),
		cmocka_unit_test(test_cpus_and_llc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
