/* Driver and device in two threads over one ring, waking each other through
 * semaphores only when the ring asks for it: data integrity, out-of-order completion
 * and no lost wake-up, with EVENT_IDX and with the flags. Runs under ThreadSanitizer
 * (suite 'threaded'): the ring's release/acquire accessors are the only
 * synchronisation between the threads' data accesses. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "virtq.h"
#include "vqenv.h"
#include "vqpair.h"

/* Long enough never to fire on a loaded machine, short enough to end a hung run. */
#define WAIT_S 20

struct sems {
	sem_t kick, call;
};

static int timed_wait(sem_t *s)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += WAIT_S;
	while (sem_timedwait(s, &t))
		if (errno != EINTR)
			return -1;
	return 0;
}

static void kick(void *ctx)
{
	sem_post(&((struct sems *)ctx)->kick);
}

static int wait_kick(void *ctx)
{
	return timed_wait(&((struct sems *)ctx)->kick);
}

static void call(void *ctx)
{
	sem_post(&((struct sems *)ctx)->call);
}

static int wait_call(void *ctx)
{
	return timed_wait(&((struct sems *)ctx)->call);
}

struct device_arg {
	struct vq_device *dev;
	const struct vqpair_ops *ops;
	unsigned int hold;
	struct vqpair_stats st;
	int result;
};

static void *device_thread(void *p)
{
	struct device_arg *a = p;

	a->result = vqpair_device(a->dev, a->ops, a->hold, &a->st);
	return NULL;
}

static void run(unsigned int num, uint64_t features, unsigned int hold, uint64_t total)
{
	struct vqenv *e = vqenv_new(num, features, num, 8);
	struct sems s;
	struct vqpair_ops ops = { kick, wait_kick, call, wait_call, &s };
	struct device_arg a = { .ops = &ops, .hold = hold };
	struct vqpair_stats st = { 0 };
	pthread_t t;

	assert_non_null(e);
	a.dev = &e->dev;
	assert_int_equal(sem_init(&s.kick, 0, 0), 0);
	assert_int_equal(sem_init(&s.call, 0, 0), 0);
	assert_int_equal(pthread_create(&t, NULL, device_thread, &a), 0);
	assert_int_equal(vqpair_driver(e, &ops, total, &st), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(a.result, 0);
	assert_int_equal(st.chains, total + 1);
	assert_int_equal(a.st.chains, total + 1);
	assert_int_equal(vq_device_inflight(&e->dev), 0);
	assert_int_equal(vq_driver_num_free(&e->drv), num);
	print_message("# num %u hold %u: %llu chains, %llu kicks, %llu calls, "
		      "%llu+%llu sleeps\n", num, hold, (unsigned long long)total,
		      (unsigned long long)st.kicks, (unsigned long long)a.st.calls,
		      (unsigned long long)st.sleeps, (unsigned long long)a.st.sleeps);
	sem_destroy(&s.kick);
	sem_destroy(&s.call);
	vqenv_free(e);
}

static void threads_event_idx(void **state)
{
	(void)state;
	run(8, 1ull << VIRTIO_F_EVENT_IDX, 3, 100000);
}

static void threads_flags(void **state)
{
	(void)state;
	run(8, 0, 3, 100000);
}

static void threads_event_idx_in_order(void **state)
{
	(void)state;
	run(256, 1ull << VIRTIO_F_EVENT_IDX, 1, 100000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(threads_event_idx),
		cmocka_unit_test(threads_flags),
		cmocka_unit_test(threads_event_idx_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
