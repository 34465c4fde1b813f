/* bench/peer.c's payload pattern: byte o of a message is (uint8_t)(base + o), written
 * and checked in blocks. Checked against a byte loop at odd offsets and lengths, and
 * one changed byte anywhere (first, inside a block, last) is found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "peer.h"

static uint8_t buf[140000];

static void test_fill_matches_definition(void **state)
{
	static const size_t offs[] = { 0, 1, 32, 255, 256, 1000 };
	static const size_t lens[] = { 0, 1, 255, 256, 257, 2999, 65536, 65537, 139000 };

	(void)state;
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			memset(buf, 0xA5, sizeof(buf));
			peer_fill_range(buf, offs[i], lens[j], 77);
			for (size_t k = 0; k < lens[j]; k++)
				assert_int_equal(buf[k], (uint8_t)(77 + offs[i] + k));
			/* Nothing past the range is written. */
			if (lens[j] < sizeof(buf))
				assert_int_equal(buf[lens[j]], 0xA5);
			assert_int_equal(peer_pattern_diff(buf, offs[i], lens[j], 77), 0);
		}
}

static void test_diff_finds_one_byte(void **state)
{
	static const size_t at[] = { 0, 100, 255, 256, 1999, 65535, 65536, 70000, 99999 };

	(void)state;
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		peer_fill_range(buf, 33, 100000, 5);
		buf[at[i]] ^= 0x10;
		assert_int_not_equal(peer_pattern_diff(buf, 33, 100000, 5), 0);
	}
	/* Another base or offset is another pattern. */
	peer_fill_range(buf, 33, 2000, 5);
	assert_int_not_equal(peer_pattern_diff(buf, 33, 2000, 6), 0);
	assert_int_not_equal(peer_pattern_diff(buf, 34, 2000, 5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fill_matches_definition),
		cmocka_unit_test(test_diff_finds_one_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
