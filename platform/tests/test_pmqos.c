/* The PM QoS hold: the kernel's effective CPU latency target reads 0 while rtvio holds
 * it and goes back to what it was once the hold is released. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "pmqos.h"

/* The effective target (the least of every holder's request), or negative errno. */
static int64_t target(void)
{
	int32_t v;
	int fd = open("/dev/cpu_dma_latency", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, &v, sizeof(v));
	close(fd);
	return n == (ssize_t)sizeof(v) ? v : -EIO;
}

static void test_rejects_negative(void **state)
{
	(void)state;
	assert_int_equal(pmqos_hold(-1), -EINVAL);
	pmqos_release(-1); /* nothing held: nothing to do */
}

static void test_hold_and_release(void **state)
{
	int64_t before = target(), during, after;
	int fd;

	(void)state;
	fd = pmqos_hold(0);
	if (fd == -EACCES || fd == -EPERM || fd == -ENOENT || before < 0) {
		pmqos_release(fd);
		skip(); /* no privilege or no device here: nothing to observe */
	}
	assert_true(fd >= 0);
	during = target();
	pmqos_release(fd);
	after = target();
	assert_int_equal(during, 0);
	assert_int_equal(after, before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rejects_negative),
		cmocka_unit_test(test_hold_and_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
