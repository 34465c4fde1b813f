/* The subset of cmocka the core/ tests use, for running them where cmocka is not
 * installed: on a big-endian target under qemu-user (tests/check-bigendian.sh).
 * Same TAP output; a failed assertion ends the case. */
#ifndef RTVIO_CORE_TESTS_SHIM_CMOCKA_H
#define RTVIO_CORE_TESTS_SHIM_CMOCKA_H

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct CMUnitTest {
	const char *name;
	void (*fn)(void **state);
};

static jmp_buf shim_jmp;

#define shim_fail(...)                                                         \
	do {                                                                   \
		printf("# %s:%d: ", __FILE__, __LINE__);                       \
		printf(__VA_ARGS__);                                           \
		printf("\n");                                                  \
		longjmp(shim_jmp, 1);                                          \
	} while (0)

#define assert_true(c) do { if (!(c)) shim_fail("%s", #c); } while (0)
#define assert_false(c) assert_true(!(c))
#define assert_int_equal(a, b)                                                 \
	do {                                                                   \
		uintmax_t shim_a = (uintmax_t)(a), shim_b = (uintmax_t)(b);    \
		if (shim_a != shim_b)                                          \
			shim_fail("%#jx != %#jx", shim_a, shim_b);             \
	} while (0)
#define assert_ptr_equal(a, b) assert_true((const void *)(a) == (const void *)(b))
#define assert_null(a) assert_true((a) == NULL)
#define assert_non_null(a) assert_true((a) != NULL)
#define assert_memory_equal(a, b, n) assert_true(memcmp((a), (b), (n)) == 0)
#define fail_msg(...) shim_fail(__VA_ARGS__)
#define print_message(...) printf(__VA_ARGS__)
#define cmocka_unit_test(f) { #f, f }
#define cmocka_run_group_tests(t, setup, teardown)                             \
	shim_run(t, sizeof(t) / sizeof((t)[0]))

static inline int shim_run(const struct CMUnitTest *t, size_t n)
{
	volatile int failed = 0;

	printf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		void *state = NULL;

		fflush(stdout);
		if (setjmp(shim_jmp) == 0) {
			t[i].fn(&state);
			printf("ok %zu - %s\n", i + 1, t[i].name);
		} else {
			printf("not ok %zu - %s\n", i + 1, t[i].name);
			failed++;
		}
	}
	return failed != 0;
}

#endif
