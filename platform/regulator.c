/* MemGuard-style regulator: see regulator.h. Freestanding (core/'s error numbers), so
 * a cell could regulate itself with it too. */
#include "rterrno.h"

#include "regulator.h"

int reg_init(struct regulator *r, uint64_t budget, uint64_t period_ns, uint64_t now_ns)
{
	if (budget && !period_ns)
		return -RT_EINVAL;
	*r = (struct regulator){
		.budget = budget,
		.period_ns = period_ns,
		.period_start = now_ns,
	};
	return 0;
}

void reg_advance(struct regulator *r, uint64_t now_ns)
{
	uint64_t end, k;

	if (!r->budget || now_ns < r->period_start)
		return;
	end = r->period_start + r->period_ns;
	if (now_ns < end)
		return;
	if (r->throttled) {
		/* Throttling lasts until the replenishment, however late the caller
		 * comes back to notice it. */
		r->throttled_ns += end - r->throttle_since;
		r->throttled = false;
	}
	/* Jump over idle periods in one step: boundaries stay on the original grid. */
	k = (now_ns - r->period_start) / r->period_ns;
	r->period_start += k * r->period_ns;
	r->used = 0;
}

uint64_t reg_remaining(struct regulator *r, uint64_t now_ns)
{
	if (!r->budget)
		return UINT64_MAX;
	reg_advance(r, now_ns);
	return r->budget - r->used;
}

uint64_t reg_grant(struct regulator *r, uint64_t want, uint64_t now_ns)
{
	uint64_t left, n;

	if (!r->budget) {
		r->granted_bytes += want;
		return want;
	}
	reg_advance(r, now_ns);
	left = r->budget - r->used;
	n = want < left ? want : left;
	if (want && !n && !r->throttled) {
		r->throttled = true;
		/* A clock behind the period start counts from the period start. */
		r->throttle_since = now_ns > r->period_start ? now_ns : r->period_start;
		r->throttled_periods++;
	}
	r->used += n;
	r->granted_bytes += n;
	return n;
}

uint64_t reg_next_ns(const struct regulator *r)
{
	return r->period_start + r->period_ns;
}
