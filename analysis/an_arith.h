/* Saturating uint64 arithmetic shared by the analysis's files: every quantity is an
 * integer number of ns, and additions and products saturate at UINT64_MAX, which
 * always lies beyond the horizon, so a saturated value can only ever be reported as
 * unbounded. Private to analysis/. */
#ifndef RTVIO_AN_ARITH_H
#define RTVIO_AN_ARITH_H

#include <stdint.h>

#define NS_PER_S 1000000000ull

static inline uint64_t sadd(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static inline uint64_t smul(uint64_t a, uint64_t b)
{
	if (a && b > UINT64_MAX / a)
		return UINT64_MAX;
	return a * b;
}

static inline uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

#endif
