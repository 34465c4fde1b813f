/* The blocking bounds of docs/sync.md as plain arithmetic (32-bit divisions only, so
 * that 32-bit freestanding builds need no libgcc helper). */
#include "bounds.h"

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* n * l from 32 x 32-bit products, which every 32-bit target multiplies inline. */
static uint64_t sat_mul(uint32_t n, uint64_t l)
{
	uint64_t hi = (uint64_t)n * (uint32_t)(l >> 32);
	uint64_t lo = (uint64_t)n * (uint32_t)l;

	if (hi >> 32)
		return UINT64_MAX;
	return sat_add(hi << 32, lo);
}

uint64_t sync_bound_mutex(uint32_t m, uint64_t l)
{
	return m <= 1 ? 0 : sat_mul(m - 1, l);
}

uint64_t sync_bound_rw_reader(uint32_t m, uint64_t l_r, uint64_t l_w)
{
	return m <= 1 ? 0 : sat_add(l_r, l_w);
}

uint64_t sync_bound_rw_writer(uint32_t m, uint64_t l_r, uint64_t l_w)
{
	return m <= 1 ? 0 : sat_add(sat_mul(m - 1, l_w), sat_mul(m, l_r));
}

uint64_t sync_bound_kex(uint32_t m, uint32_t k, uint64_t l)
{
	if (k == 0 || m <= k)
		return 0;
	/* ceil((m - k) / k) without overflow: m - k >= 1 here. */
	return sat_mul((m - k - 1) / k + 1, l);
}
