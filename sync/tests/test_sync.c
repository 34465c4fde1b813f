/* sync/'s locks one state at a time, single-threaded: what each step grants and what
 * it refuses, across ticket wrap-around, and the blocking bounds' arithmetic. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bounds.h"
#include "kex.h"
#include "mutex.h"
#include "rterrno.h"
#include "rwlock.h"

static void errno_values_match(void **state)
{
	(void)state;
	assert_int_equal(RT_EBUSY, EBUSY);
	assert_int_equal(RT_EINVAL, EINVAL);
	assert_int_equal(-SYNC_KEX_PENDING, EAGAIN);
}

static void mutex_states(uint32_t start)
{
	struct sync_mutex m;
	uint32_t a, b;

	sync_mutex_init(&m);
	atomic_store(&m.word, start << 16 | start);
	assert_int_equal(sync_mutex_trylock(&m), 0);
	assert_int_equal(sync_mutex_trylock(&m), -RT_EBUSY);
	a = sync_mutex_enqueue(&m);
	b = sync_mutex_enqueue(&m);
	assert_int_equal(b, (a + 1) & 0xffff);
	assert_false(sync_mutex_granted(&m, a));
	sync_mutex_unlock(&m);
	assert_true(sync_mutex_granted(&m, a));
	assert_false(sync_mutex_granted(&m, b));
	/* Queued requests: a try must not jump them even between holders. */
	assert_int_equal(sync_mutex_trylock(&m), -RT_EBUSY);
	sync_mutex_unlock(&m);
	assert_true(sync_mutex_granted(&m, b));
	sync_mutex_unlock(&m);
	sync_mutex_lock(&m);
	sync_mutex_unlock(&m);
	assert_int_equal(sync_mutex_trylock(&m), 0);
	sync_mutex_unlock(&m);
}

static void mutex_fifo(void **state)
{
	(void)state;
	mutex_states(0);
	mutex_states(0xfffe); /* 16-bit tickets wrap while queued */
}

static void rw_readers_share(void **state)
{
	struct sync_rwlock rw;

	(void)state;
	sync_rw_init(&rw);
	assert_int_equal(sync_rw_read_trylock(&rw), 0);
	sync_rw_read_lock(&rw);
	assert_int_equal(sync_rw_write_trylock(&rw), -RT_EBUSY);
	sync_rw_read_unlock(&rw);
	sync_rw_read_unlock(&rw);
	/* The failed write try gave its writer turn back. */
	assert_int_equal(sync_rw_write_trylock(&rw), 0);
	assert_int_equal(sync_rw_read_trylock(&rw), -RT_EBUSY);
	assert_int_equal(sync_rw_write_trylock(&rw), -RT_EBUSY);
	sync_rw_write_unlock(&rw);
	sync_rw_write_lock(&rw);
	sync_rw_write_unlock(&rw);
	assert_int_equal(atomic_load(&rw.win), atomic_load(&rw.wout));
	assert_int_equal(atomic_load(&rw.rin), atomic_load(&rw.rout));
}

/* A writer phase, a reader arriving in it, and a second writer queued behind the
 * first: the reader goes before the second writer (phase-fair), and the second writer
 * drains it. Then a reader arriving while that writer waits goes after it. */
static void rw_phases(void **state)
{
	struct sync_rwlock rw;
	struct sync_rw_waiter w1, w2, r1, r2;

	(void)state;
	sync_rw_init(&rw);
	sync_rw_read_begin(&rw, &r1); /* a reader inside */
	assert_true(sync_rw_read_poll(&rw, &r1));
	sync_rw_write_begin(&rw, &w1);
	assert_false(sync_rw_write_poll(&rw, &w1)); /* waits for r1 to drain */
	sync_rw_read_begin(&rw, &r2);
	assert_false(sync_rw_read_poll(&rw, &r2)); /* w1 present: r2 waits */
	sync_rw_read_unlock(&rw);
	assert_true(sync_rw_write_poll(&rw, &w1));
	sync_rw_write_begin(&rw, &w2);
	assert_false(sync_rw_write_poll(&rw, &w2));
	assert_false(sync_rw_read_poll(&rw, &r2));
	sync_rw_write_unlock(&rw);
	/* w2 takes its turn at once and sets its bits; r2 still sees the phase change. */
	assert_false(sync_rw_write_poll(&rw, &w2));
	assert_true(sync_rw_read_poll(&rw, &r2));
	sync_rw_read_begin(&rw, &r1);
	assert_false(sync_rw_read_poll(&rw, &r1)); /* after w2 */
	sync_rw_read_unlock(&rw); /* r2 leaves */
	assert_true(sync_rw_write_poll(&rw, &w2));
	assert_false(sync_rw_read_poll(&rw, &r1));
	sync_rw_write_unlock(&rw);
	assert_true(sync_rw_read_poll(&rw, &r1));
	sync_rw_read_unlock(&rw);
	assert_int_equal(sync_rw_write_trylock(&rw), 0);
	sync_rw_write_unlock(&rw);
}

static void kex_init_checks_k(void **state)
{
	struct sync_kex x;

	(void)state;
	assert_int_equal(sync_kex_init(&x, 0), -RT_EINVAL);
	assert_int_equal(sync_kex_init(&x, SYNC_KEX_MAX + 1), -RT_EINVAL);
	assert_int_equal(sync_kex_init(&x, SYNC_KEX_MAX), 0);
	for (unsigned int i = 0; i < SYNC_KEX_MAX; i++)
		assert_int_equal(sync_kex_lock(&x), i);
	assert_int_equal(sync_kex_trylock(&x), -RT_EBUSY);
	sync_kex_unlock(&x, 31);
	assert_int_equal(sync_kex_trylock(&x), 31);
}

static void kex_states(uint32_t start)
{
	struct sync_kex x;
	uint32_t t1, t2;

	assert_int_equal(sync_kex_init(&x, 2), 0);
	atomic_store(&x.next, start);
	atomic_store(&x.admit, start);
	atomic_store(&x.done, start);
	assert_int_equal(sync_kex_lock(&x), 0);
	assert_int_equal(sync_kex_trylock(&x), 1);
	assert_int_equal(sync_kex_trylock(&x), -RT_EBUSY);
	t1 = sync_kex_enqueue(&x);
	t2 = sync_kex_enqueue(&x);
	assert_int_equal(sync_kex_poll(&x, t2), SYNC_KEX_PENDING); /* not its turn */
	assert_int_equal(sync_kex_poll(&x, t1), SYNC_KEX_PENDING); /* k hold */
	sync_kex_unlock(&x, 0);
	assert_int_equal(sync_kex_trylock(&x), -RT_EBUSY); /* t1, t2 queued */
	assert_int_equal(sync_kex_poll(&x, t2), SYNC_KEX_PENDING);
	assert_int_equal(sync_kex_poll(&x, t1), 0); /* the freed slot */
	assert_int_equal(sync_kex_poll(&x, t2), SYNC_KEX_PENDING);
	sync_kex_unlock(&x, 1);
	assert_int_equal(sync_kex_poll(&x, t2), 1);
	sync_kex_unlock(&x, 0);
	sync_kex_unlock(&x, 1);
	assert_int_equal(atomic_load(&x.busy), 0);
	assert_int_equal(sync_kex_trylock(&x), 0);
	sync_kex_unlock(&x, 0);
}

static void kex_fifo_slots(void **state)
{
	(void)state;
	kex_states(0);
	kex_states(UINT32_MAX - 2);
}

static void bounds(void **state)
{
	(void)state;
	assert_int_equal(sync_bound_mutex(0, 10), 0);
	assert_int_equal(sync_bound_mutex(1, 10), 0);
	assert_int_equal(sync_bound_mutex(4, 10), 30);
	assert_int_equal(sync_bound_rw_reader(1, 3, 5), 0);
	assert_int_equal(sync_bound_rw_reader(8, 3, 5), 8);
	assert_int_equal(sync_bound_rw_writer(4, 3, 5), 3 * 5 + 4 * 3);
	assert_int_equal(sync_bound_kex(4, 4, 10), 0);
	assert_int_equal(sync_bound_kex(4, 1, 10), 30); /* k = 1 is the mutex */
	assert_int_equal(sync_bound_kex(5, 2, 10), 20); /* ceil(3 / 2) */
	assert_int_equal(sync_bound_kex(6, 2, 10), 20);
	assert_int_equal(sync_bound_kex(4, 0, 10), 0);
	assert_true(sync_bound_mutex(3, UINT64_MAX / 2 + 1) == UINT64_MAX);
	assert_true(sync_bound_mutex(UINT32_MAX, 1ull << 40) == UINT64_MAX);
	assert_true(sync_bound_rw_writer(2, UINT64_MAX, 1) == UINT64_MAX);
	assert_true(sync_bound_mutex(3, 1ull << 40) == 2ull << 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(errno_values_match),
		cmocka_unit_test(mutex_fifo),
		cmocka_unit_test(rw_readers_share),
		cmocka_unit_test(rw_phases),
		cmocka_unit_test(kex_init_checks_k),
		cmocka_unit_test(kex_fifo_slots),
		cmocka_unit_test(bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
