/* sync/'s locks under more threads than cores (6 threads; the development machine has
 * 2 cpus), under ThreadSanitizer in suite 'threaded': the protected data are plain
 * variables, so a lock that let two writers in is a data race as well as a wrong count.
 * Waiters poll through the split API and yield to the OS between polls, so a preempted
 * holder costs a yield, not a time slice of spinning per waiter.
 *
 * Checks: mutual exclusion (non-atomic counter), at most k holders and one owner per
 * slot, readers never beside a writer, FIFO grants (ticket == grant sequence for the
 * mutex, the writers and k = 1; for k > 1 every admitted ticket finds all but k - 1
 * earlier tickets finished), and every thread finishing its iterations. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kex.h"
#include "mutex.h"
#include "rwlock.h"

#define THREADS 6
#define ITERS 3000

/* Violations are counted here by the threads, asserted on by the main thread
 * (cmocka's assertions are not thread-safe). */
static atomic_uint bad_excl, bad_fifo, finished;
/* All threads start their loops together, or the first could finish before the last
 * is created and nothing would contend. */
static pthread_barrier_t start;

/* Now and then a holder yields inside its critical section, between reading and
 * writing the protected data: with a broken lock another thread runs in between and
 * an update is lost, however briefly critical sections overlap otherwise. */
static void hold_yield(int i)
{
	if (i % 16 == 0)
		sched_yield();
}

static void run_threads(void *(*fn)(void *))
{
	pthread_t t[THREADS];
	uintptr_t i;

	atomic_store(&bad_excl, 0);
	atomic_store(&bad_fifo, 0);
	atomic_store(&finished, 0);
	assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fn, (void *)i), 0);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&start);
	assert_int_equal(atomic_load(&bad_excl), 0);
	assert_int_equal(atomic_load(&bad_fifo), 0);
	assert_int_equal(atomic_load(&finished), THREADS);
}

/* Mutex: the counter, and the grant sequence, are protected by the lock alone. */
static struct sync_mutex mtx;
static uint64_t mtx_count;
static uint32_t mtx_grants;

static void *mutex_thread(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&start);
	for (int i = 0; i < ITERS; i++) {
		uint32_t t;

		if (i % 8 == 7 && sync_mutex_trylock(&mtx) == 0) {
			t = mtx_grants; /* a try takes the next ticket in sequence */
		} else {
			t = sync_mutex_enqueue(&mtx);
			while (!sync_mutex_granted(&mtx, t))
				sched_yield();
		}
		if (t != (mtx_grants & 0xffff))
			atomic_fetch_add(&bad_fifo, 1);
		mtx_grants++;
		uint64_t c = mtx_count;
		hold_yield(i);
		mtx_count = c + 1;
		sync_mutex_unlock(&mtx);
	}
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void mutex_stress(void **state)
{
	(void)state;
	sync_mutex_init(&mtx);
	mtx_count = 0;
	mtx_grants = 0;
	run_threads(mutex_thread);
	assert_int_equal(mtx_count, (uint64_t)THREADS * ITERS);
}

/* Reader-writer: writers keep a == b and count; readers check a == b and that no
 * writer is inside. */
static struct sync_rwlock rwl;
static uint64_t rw_a, rw_b;
static uint32_t rw_wgrants;
static atomic_uint rw_readers, rw_writers;

static void rw_write(uintptr_t id, int i)
{
	struct sync_rw_waiter w;

	sync_rw_write_begin(&rwl, &w);
	uint32_t ticket = w.ticket; /* the poll reuses the field */
	while (!sync_rw_write_poll(&rwl, &w))
		sched_yield();
	if (atomic_fetch_add(&rw_writers, 1) != 0 || atomic_load(&rw_readers) != 0)
		atomic_fetch_add(&bad_excl, 1);
	if (ticket != rw_wgrants)
		atomic_fetch_add(&bad_fifo, 1);
	rw_wgrants++;
	rw_a += id + 1;
	hold_yield(i);
	rw_b += id + 1;
	atomic_fetch_sub(&rw_writers, 1);
	sync_rw_write_unlock(&rwl);
}

static void rw_read(int try, int i)
{
	struct sync_rw_waiter w;

	if (!try || sync_rw_read_trylock(&rwl) != 0) {
		sync_rw_read_begin(&rwl, &w);
		while (!sync_rw_read_poll(&rwl, &w))
			sched_yield();
	}
	atomic_fetch_add(&rw_readers, 1);
	uint64_t a = rw_a;
	hold_yield(i);
	if (atomic_load(&rw_writers) != 0 || a != rw_b)
		atomic_fetch_add(&bad_excl, 1);
	atomic_fetch_sub(&rw_readers, 1);
	sync_rw_read_unlock(&rwl);
}

static void *rw_thread(void *arg)
{
	uintptr_t id = (uintptr_t)arg;

	pthread_barrier_wait(&start);
	for (int i = 0; i < ITERS; i++) {
		if ((i + id) % 3 == 0)
			rw_write(id, i);
		else
			rw_read(i % 5 == 0, i);
	}
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void rw_stress(void **state)
{
	(void)state;
	sync_rw_init(&rwl);
	rw_a = rw_b = 0;
	rw_wgrants = 0;
	run_threads(rw_thread);
	assert_true(rw_a == rw_b);
	assert_int_equal(rw_wgrants, atomic_load(&rwl.win));
}

/* k-exclusion: holders counted; each slot's owner field is plain memory that only
 * its holder touches; released tickets are flagged so that an admitted ticket can
 * check that all but k - 1 earlier ones have finished. */
static struct sync_kex kx;
static unsigned int kx_k;
static atomic_uint kx_holders;
static uintptr_t kx_owner[SYNC_KEX_MAX];
static uint64_t kx_count[SYNC_KEX_MAX];
static uint32_t kx_grants; /* k == 1 only: protected like the mutex's */
static atomic_uchar kx_released[THREADS * ITERS];

static unsigned int released_below(uint32_t ticket)
{
	unsigned int n = 0;

	for (uint32_t u = 0; u < ticket; u++)
		n += atomic_load_explicit(&kx_released[u], memory_order_acquire);
	return n;
}

static void *kex_thread(void *arg)
{
	uintptr_t id = (uintptr_t)arg;

	pthread_barrier_wait(&start);
	for (int i = 0; i < ITERS; i++) {
		uint32_t t = sync_kex_enqueue(&kx);
		int s;

		while ((s = sync_kex_poll(&kx, t)) < 0)
			sched_yield();
		if (atomic_fetch_add(&kx_holders, 1) >= kx_k || (unsigned int)s >= kx_k)
			atomic_fetch_add(&bad_excl, 1);
		/* Only every 64th ticket counts (the scan is linear in the ticket). */
		if (t % 64 == 0 && released_below(t) + kx_k - 1 < t)
			atomic_fetch_add(&bad_fifo, 1);
		if (kx_k == 1 && t != kx_grants++)
			atomic_fetch_add(&bad_fifo, 1);
		kx_owner[s] = id;
		uint64_t c = kx_count[s];
		hold_yield(i);
		kx_count[s] = c + 1;
		if (kx_owner[s] != id)
			atomic_fetch_add(&bad_excl, 1);
		atomic_fetch_sub(&kx_holders, 1);
		atomic_store_explicit(&kx_released[t], 1, memory_order_release);
		sync_kex_unlock(&kx, (unsigned int)s);
	}
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void kex_run(unsigned int k)
{
	uint64_t total = 0;

	assert_int_equal(sync_kex_init(&kx, k), 0);
	kx_k = k;
	kx_grants = 0;
	memset(kx_count, 0, sizeof(kx_count));
	for (size_t u = 0; u < THREADS * ITERS; u++)
		atomic_init(&kx_released[u], 0);
	run_threads(kex_thread);
	for (unsigned int s = 0; s < SYNC_KEX_MAX; s++)
		total += kx_count[s];
	assert_int_equal(total, (uint64_t)THREADS * ITERS);
	assert_int_equal(atomic_load(&kx.busy), 0);
}

static void kex_stress_k1(void **state)
{
	(void)state;
	kex_run(1);
}

static void kex_stress_k2(void **state)
{
	(void)state;
	kex_run(2);
}

static void kex_stress_k3(void **state)
{
	(void)state;
	kex_run(3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mutex_stress),
		cmocka_unit_test(rw_stress),
		cmocka_unit_test(kex_stress_k1),
		cmocka_unit_test(kex_stress_k2),
		cmocka_unit_test(kex_stress_k3),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
