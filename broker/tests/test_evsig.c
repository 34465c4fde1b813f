/* evsig: a cell's eventfd, made blocking and full by the cell, is signalled without
 * the broker ever sleeping (the whole reason for evsig.h). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "evsig.h"

static void test_signal_adds_one(void **state)
{
	struct evsig s;
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	uint64_t v = 0;

	(void)state;
	assert_int_equal(evsig_open(&s), 0);
	assert_int_equal(evsig_signal(&s, fd), 0);
	assert_int_equal(evsig_signal(&s, fd), 0);
	assert_int_equal(read(fd, &v, sizeof(v)), (int)sizeof(v));
	assert_int_equal(v, 2);
	close(fd);
	evsig_close(&s);
}

/* The cell's move: O_NONBLOCK cleared, counter at the largest value write(2)
 * allows. A write(2) would now sleep; evsig returns, and the counter saturates. */
static void test_blocking_full_eventfd(void **state)
{
	struct evsig s;
	int fd = eventfd(0, EFD_CLOEXEC);
	uint64_t max = 0xfffffffffffffffeull, v = 0;

	(void)state;
	assert_int_equal(evsig_open(&s), 0);
	assert_int_equal(write(fd, &max, sizeof(max)), (int)sizeof(max));
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	for (unsigned int i = 0; i < 3 * EVSIG_RING; i++)
		assert_int_equal(evsig_signal(&s, fd), 0);
	assert_int_equal(read(fd, &v, sizeof(v)), (int)sizeof(v));
	assert_true(v >= max);
	close(fd);
	evsig_close(&s);
}

static void test_not_an_eventfd(void **state)
{
	struct evsig s;
	int p[2];

	(void)state;
	assert_int_equal(evsig_open(&s), 0);
	assert_int_equal(pipe(p), 0);
	assert_true(evsig_signal(&s, p[1]) < 0);
	assert_true(evsig_signal(&s, -1) < 0);
	assert_int_equal(s.failures, 1);
	close(p[0]);
	close(p[1]);
	evsig_close(&s);
}

/* A batch: every queued eventfd gets its signals from one io_submit; a refused
 * descriptor in the middle is counted and skipped, the ones after it still go. */
static void test_batch(void **state)
{
	struct evsig s;
	int a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int p[2];
	uint64_t v = 0;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(evsig_open(&s), 0);
	assert_int_equal(evsig_queue(&s, a), 0);
	assert_int_equal(evsig_queue(&s, b), 0);
	assert_int_equal(evsig_queue(&s, a), 0);
	assert_int_equal(s.submits, 0);
	assert_int_equal(evsig_flush(&s), 0);
	assert_int_equal(s.submits, 1);
	assert_int_equal(s.signals, 3);
	assert_int_equal(read(a, &v, sizeof(v)), (int)sizeof(v));
	assert_int_equal(v, 2);
	assert_int_equal(read(b, &v, sizeof(v)), (int)sizeof(v));
	assert_int_equal(v, 1);
	assert_int_equal(evsig_queue(&s, a), 0);
	assert_int_equal(evsig_queue(&s, p[1]), 0);
	assert_int_equal(evsig_queue(&s, b), 0);
	assert_true(evsig_flush(&s) < 0);
	assert_int_equal(s.failures, 1);
	assert_int_equal(s.signals, 5);
	assert_int_equal(read(a, &v, sizeof(v)), (int)sizeof(v));
	assert_int_equal(v, 1);
	assert_int_equal(read(b, &v, sizeof(v)), (int)sizeof(v));
	assert_int_equal(v, 1);
	/* A full batch goes by itself; an empty flush makes no system call. */
	for (unsigned int i = 0; i < EVSIG_BATCH; i++)
		assert_int_equal(evsig_queue(&s, a), 0);
	assert_int_equal(s.n_queued, 0);
	assert_int_equal(read(a, &v, sizeof(v)), (int)sizeof(v));
	assert_int_equal(v, EVSIG_BATCH);
	v = s.submits;
	assert_int_equal(evsig_flush(&s), 0);
	assert_int_equal(s.submits, v);
	close(a);
	close(b);
	close(p[0]);
	close(p[1]);
	evsig_close(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signal_adds_one),
		cmocka_unit_test(test_blocking_full_eventfd),
		cmocka_unit_test(test_not_an_eventfd),
		cmocka_unit_test(test_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
