/* Gap probe: the interval query on synthetic gaps with known answers, and the probe
 * thread itself driven by a scripted clock that stalls at known times. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gapprobe.h"

/* gaps at [100,150) [200,210) [1000,1500) [2000,2001) */
static const struct gap synth[] = {
	{ 100, 50 }, { 200, 10 }, { 1000, 500 }, { 2000, 1 },
};
#define NSYNTH (sizeof synth / sizeof synth[0])

static void test_query_none(void **state)
{
	struct gap_overlap o;

	(void)state;
	gaps_overlapping(synth, NSYNTH, 0, 100, &o);	/* ends where the first starts */
	assert_int_equal(o.count, 0);
	gaps_overlapping(synth, NSYNTH, 150, 200, &o);	/* exactly between two */
	assert_int_equal(o.count, 0);
	gaps_overlapping(synth, NSYNTH, 3000, 4000, &o);
	assert_int_equal(o.count, 0);
	gaps_overlapping(synth, NSYNTH, 120, 120, &o);	/* empty window */
	assert_int_equal(o.count, 0);
	gaps_overlapping(synth, 0, 0, 5000, &o);
	assert_int_equal(o.count, 0);
}

static void test_query_partial_and_whole(void **state)
{
	struct gap_overlap o;

	(void)state;
	gaps_overlapping(synth, NSYNTH, 140, 205, &o);
	assert_int_equal(o.count, 2);
	assert_int_equal(o.overlap_ns, 10 + 5);
	assert_int_equal(o.longest_ns, 50);
	gaps_overlapping(synth, NSYNTH, 1200, 1300, &o);	/* inside one gap */
	assert_int_equal(o.count, 1);
	assert_int_equal(o.overlap_ns, 100);
	assert_int_equal(o.longest_ns, 500);
	gaps_overlapping(synth, NSYNTH, 0, 10000, &o);
	assert_int_equal(o.count, 4);
	assert_int_equal(o.overlap_ns, 561);
	gaps_overlapping(synth, NSYNTH, 2000, 2001, &o);
	assert_int_equal(o.count, 1);
	assert_int_equal(o.overlap_ns, 1);
	gaps_overlapping(synth, NSYNTH, 149, 1001, &o);
	assert_int_equal(o.count, 3);
	assert_int_equal(o.overlap_ns, 1 + 10 + 1);
}

static void test_query_many(void **state)
{
	static struct gap many[10000];
	struct gap_overlap o;

	(void)state;
	/* a gap of 7 ns every 100 ns; a window of 1000 ns at an offset of 3 catches the
	 * tail of one gap and nine whole ones plus the head of the next */
	for (size_t i = 0; i < 10000; i++)
		many[i] = (struct gap){ .start_ns = i * 100, .len_ns = 7 };
	gaps_overlapping(many, 10000, 5003, 6003, &o);
	assert_int_equal(o.count, 11);
	assert_int_equal(o.overlap_ns, 4 + 9 * 7 + 3);
}

/* A clock that advances 100 ns per reading, and jumps at scripted readings. */
struct script {
	_Atomic uint64_t reads;
	uint64_t now;
};

static uint64_t script_clock(void *ctx)
{
	struct script *s = ctx;
	uint64_t r = atomic_fetch_add_explicit(&s->reads, 1, memory_order_relaxed);

	/* only the probe thread calls this, so now is single-writer */
	if (r == 1000)
		s->now += 30000;	/* a 30 us stall */
	else if (r == 2000)
		s->now += 19900;	/* with the usual 100: exactly the threshold, not above */
	else if (r == 3000)
		s->now += 5000000;	/* a 5 ms stall */
	s->now += 100;
	return s->now;
}

static void test_probe_records_scripted_stalls(void **state)
{
	struct gap storage[8];
	struct gapprobe gp;
	struct script s = { .now = 1000000 };
	struct gap_overlap o;

	(void)state;
	atomic_init(&s.reads, 0);
	assert_int_equal(gapprobe_start(&gp, storage, 8, 20000, -1, script_clock, &s), 0);
	while (atomic_load_explicit(&s.reads, memory_order_relaxed) < 5000)
		sched_yield();
	gapprobe_stop(&gp);
	assert_int_equal(gapprobe_count(&gp), 2);
	/* reading 1000 returns 1000000 + 1001*100 + 30000; the previous one 1000*100 */
	assert_int_equal(storage[0].start_ns, 1000000 + 1000 * 100);
	assert_int_equal(storage[0].len_ns, 30100);
	assert_int_equal(storage[1].start_ns, 1000000 + 3000 * 100 + 30000 + 19900);
	assert_int_equal(storage[1].len_ns, 5000100);
	assert_int_equal(atomic_load(&gp.dropped), 0);
	gapprobe_query(&gp, storage[1].start_ns + 100, storage[1].start_ns + 200, &o);
	assert_int_equal(o.count, 1);
	assert_int_equal(o.longest_ns, 5000100);
}

static uint64_t stall_every_clock(void *ctx)
{
	struct script *s = ctx;
	uint64_t r = atomic_fetch_add_explicit(&s->reads, 1, memory_order_relaxed);

	s->now += r % 10 == 9 ? 50000 : 10;
	return s->now;
}

static void test_probe_full_storage_counts_drops(void **state)
{
	struct gap storage[3];
	struct gapprobe gp;
	struct script s = { .now = 0 };

	(void)state;
	atomic_init(&s.reads, 0);
	assert_int_equal(gapprobe_start(&gp, storage, 3, 20000, -1, stall_every_clock, &s), 0);
	while (atomic_load_explicit(&s.reads, memory_order_relaxed) < 200)
		sched_yield();
	gapprobe_stop(&gp);
	assert_int_equal(gapprobe_count(&gp), 3);
	assert_true(atomic_load(&gp.dropped) >= 10);
	for (size_t i = 1; i < 3; i++)
		assert_true(storage[i].start_ns >= storage[i - 1].start_ns + storage[i - 1].len_ns);
}

static void test_probe_real_clock_well_formed(void **state)
{
	struct gap storage[256];
	struct gapprobe gp;
	uint64_t t0 = gapprobe_now();

	(void)state;
	/* Whatever the host does, what is recorded must be ordered, disjoint and above
	 * the threshold, and the probe must have been running. */
	assert_int_equal(gapprobe_start(&gp, storage, 256, 20000, -1, NULL, NULL), 0);
	while (gapprobe_now() - t0 < 50000000)
		sched_yield();
	gapprobe_stop(&gp);
	assert_true(atomic_load(&gp.last_ns) > t0);
	for (size_t i = 0; i < gapprobe_count(&gp); i++) {
		assert_true(storage[i].len_ns > 20000);
		assert_true(storage[i].start_ns >= t0);
		if (i)
			assert_true(storage[i].start_ns >=
				    storage[i - 1].start_ns + storage[i - 1].len_ns);
	}
}

static void test_start_rejects_bad_arguments(void **state)
{
	struct gap storage[1];
	struct gapprobe gp;

	(void)state;
	assert_int_equal(gapprobe_start(&gp, NULL, 1, 20000, -1, NULL, NULL), -EINVAL);
	assert_int_equal(gapprobe_start(&gp, storage, 0, 20000, -1, NULL, NULL), -EINVAL);
	assert_int_equal(gapprobe_start(&gp, storage, 1, 0, -1, NULL, NULL), -EINVAL);
	assert_int_equal(gapprobe_start(&gp, storage, 1, 20000, CPU_SETSIZE, NULL, NULL),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_none),
		cmocka_unit_test(test_query_partial_and_whole),
		cmocka_unit_test(test_query_many),
		cmocka_unit_test(test_probe_records_scripted_stalls),
		cmocka_unit_test(test_probe_full_storage_counts_drops),
		cmocka_unit_test(test_probe_real_clock_well_formed),
		cmocka_unit_test(test_start_rejects_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
