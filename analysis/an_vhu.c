/* The broker loop's vhost-user work as lost supply (docs/analysis.md, "vhost-user
 * budget"). Each cell's socket is served from two token buckets (broker/daemon_vhu.c):
 * in any interval of length t the loop handles for it at most N (1 + t/P) messages
 * and M (1 + t/Q) heavy ones (memory-table changes, device stops). With W0 the sum
 * over the cells of N vhost_user_msg and W1 that of M vhost_user_map, the work the
 * loop takes in any interval of length t is at most
 *     vhu(t) = W0 + ceil(W0 t / P) + W1 + ceil(W1 t / Q),
 * whatever the cells do; the data path gets at least t - vhu(t) of it. That work runs
 * between data-path steps, never inside one (a step in progress is not delayed), so
 * it is charged like the work of a higher priority: every fixed point solves
 * t = w + vhu(t) instead of t = w. */
#include "analysis.h"
#include "an_arith.h"
#include "an_internal.h"

static bool vhu_none(const struct an_vhu *v)
{
	for (int k = 0; k < AN_LOSS_KINDS; k++)
		if (v->work[k] && v->period[k])
			return false;
	return true;
}

uint64_t an_vhu_demand(const struct an_vhu *v, uint64_t t)
{
	uint64_t d = 0;

	for (int k = 0; k < AN_LOSS_KINDS; k++) {
		unsigned __int128 x;

		if (!v->work[k] || !v->period[k])
			continue;
		x = (unsigned __int128)v->work[k] * t;
		x = x / v->period[k] + (x % v->period[k] != 0);
		d = sadd(d, sadd(v->work[k], x >= UINT64_MAX ? UINT64_MAX : (uint64_t)x));
	}
	return d;
}

uint64_t an_vhu_inv(const struct an_vhu *v, uint64_t w)
{
	long double u = 0, start;
	uint64_t t;

	if (!w || vhu_none(v))
		return w;
	for (int k = 0; k < AN_LOSS_KINDS; k++)
		if (v->work[k] && v->period[k])
			u += (long double)v->work[k] / v->period[k];
	if (u >= 1.0L)
		return UINT64_MAX;
	/* The least fixed point of t = w + vhu(t) is at least where the version without
	 * the ceilings meets it, (w + W0 + W1) / (1 - W0/P - W1/Q): start a little below
	 * that (floating point only picks the start), then iterate up exactly. */
	start = (long double)sadd(w, an_vhu_demand(v, 0)) / (1.0L - u) - 4.0L;
	if (start >= (long double)(UINT64_MAX / 4))
		return UINT64_MAX;
	t = start > (long double)w ? (uint64_t)start : w;
	for (;;) {
		uint64_t nt = sadd(w, an_vhu_demand(v, t));

		if (nt >= UINT64_MAX / 4)
			return UINT64_MAX;
		/* t <= the least fixed point and g(t) <= t: t is it. */
		if (nt <= t)
			return t;
		t = nt;
	}
}

uint64_t an_vhu_supply(const struct an_vhu *v, uint64_t t)
{
	uint64_t d = an_vhu_demand(v, t);

	return d >= t ? 0 : t - d;
}

long double an_vhu_utilization(const struct an_vhu *v)
{
	long double u = 0;

	for (int k = 0; k < AN_LOSS_KINDS; k++)
		if (v->work[k] && v->period[k])
			u += (long double)v->work[k] / v->period[k];
	return u;
}
