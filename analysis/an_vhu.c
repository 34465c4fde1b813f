/* The broker loop's vhost-user work as lost supply (docs/analysis.md, "vhost-user
 * budget"). Each cell's socket is served from two token buckets (broker/daemon_vhu.c):
 * in any interval of length t the loop handles for it at most N (1 + t/P) messages
 * and M (1 + t/Q) heavy ones (memory-table changes, device stops); all cells together
 * besides from the broker-wide pair, at most Ng (1 + t/Pg) messages and Mg (1 + t/Qg)
 * heavy ones. With W0 the sum over the cells of N vhost_user_msg, W1 that of M
 * vhost_user_map, G0 = Ng vhost_user_msg and G1 = Mg vhost_user_map, the work the
 * loop takes in any interval of length t is at most
 *     vhu(t) = min(W0 + ceil(W0 t / P), G0 + ceil(G0 t / Pg))
 *            + min(W1 + ceil(W1 t / Q), G1 + ceil(G1 t / Qg)),
 * whatever the cells do (every message passes both buckets of its kind, so the
 * count of each kind is within both); the data path gets at least t - vhu(t) of
 * it. That work runs between data-path steps, never inside one (a step in progress
 * is not delayed), so it is charged like the work of a higher priority: every fixed
 * point solves t = w + vhu(t) instead of t = w. */
#include "analysis.h"
#include "an_arith.h"
#include "an_internal.h"

/* A bucket of `work` per `period`: at most work + ceil(work t / period) in t. */
static uint64_t bucket(uint64_t work, uint64_t period, uint64_t t)
{
	unsigned __int128 x = (unsigned __int128)work * t;

	x = x / period + (x % period != 0);
	return sadd(work, x >= UINT64_MAX ? UINT64_MAX : (uint64_t)x);
}

static bool has(const struct an_vhu *v, int k)
{
	return v->work[k] && v->period[k];
}

static bool capped(const struct an_vhu *v, int k)
{
	return v->cap_work[k] && v->cap_period[k];
}

static bool vhu_none(const struct an_vhu *v)
{
	for (int k = 0; k < AN_LOSS_KINDS; k++)
		if (has(v, k))
			return false;
	return true;
}

uint64_t an_vhu_demand(const struct an_vhu *v, uint64_t t)
{
	uint64_t d = 0;

	for (int k = 0; k < AN_LOSS_KINDS; k++) {
		uint64_t x;

		if (!has(v, k))
			continue;
		x = bucket(v->work[k], v->period[k], t);
		if (capped(v, k))
			x = min_u64(x, bucket(v->cap_work[k], v->cap_period[k], t));
		d = sadd(d, x);
	}
	return d;
}

/* Kind k's long-run rate: the smaller bucket's. */
static long double rate(const struct an_vhu *v, int k)
{
	long double r = (long double)v->work[k] / v->period[k];

	if (capped(v, k) && (long double)v->cap_work[k] / v->cap_period[k] < r)
		r = (long double)v->cap_work[k] / v->cap_period[k];
	return r;
}

/* The least t with t >= w + vhu_real(t), where vhu_real is vhu without the ceilings:
 * a sum of minima of lines, concave, so w + vhu_real(t) - t is positive up to that t
 * and then no more. Between the kinks (where a kind's two lines cross) it is one
 * line: walk the pieces from 0 and solve on the first that meets. A lower bound of
 * the least fixed point of t = w + vhu(t), since vhu >= vhu_real. */
static long double real_crossing(const struct an_vhu *v, uint64_t w)
{
	long double kink[AN_LOSS_KINDS + 1], s = 0;
	int nk = 0;

	for (int k = 0; k < AN_LOSS_KINDS; k++) {
		long double a1, b1, a2, b2;

		if (!has(v, k) || !capped(v, k))
			continue;
		a1 = v->work[k];
		b1 = (long double)v->work[k] / v->period[k];
		a2 = v->cap_work[k];
		b2 = (long double)v->cap_work[k] / v->cap_period[k];
		if (b1 != b2 && (a2 - a1) / (b1 - b2) > 0)
			kink[nk++] = (a2 - a1) / (b1 - b2);
	}
	/* At most AN_LOSS_KINDS kinks: sort them by insertion. */
	for (int i = 1; i < nk; i++)
		for (int j = i; j > 0 && kink[j] < kink[j - 1]; j--) {
			long double x = kink[j];

			kink[j] = kink[j - 1];
			kink[j - 1] = x;
		}
	kink[nk] = -1; /* the last piece runs on */
	for (int p = 0; p <= nk; p++) {
		long double e = p < nk ? kink[p] : 0, m = p < nk ? (s + e) / 2 : s + 1;
		long double A = w, B = 0;

		for (int k = 0; k < AN_LOSS_KINDS; k++) {
			long double a, b;

			if (!has(v, k))
				continue;
			a = v->work[k];
			b = (long double)v->work[k] / v->period[k];
			if (capped(v, k)) {
				long double a2 = v->cap_work[k];
				long double b2 = (long double)v->cap_work[k] / v->cap_period[k];

				if (a2 + b2 * m < a + b * m) {
					a = a2;
					b = b2;
				}
			}
			A += a;
			B += b;
		}
		if (B < 1.0L) {
			long double x = A / (1.0L - B);

			if (p == nk || x <= e)
				return x > s ? x : s;
		}
		s = e;
	}
	return (long double)UINT64_MAX;
}

uint64_t an_vhu_inv(const struct an_vhu *v, uint64_t w)
{
	long double start;
	uint64_t t;

	if (!w || vhu_none(v))
		return w;
	if (an_vhu_utilization(v) >= 1.0L)
		return UINT64_MAX;
	/* Start a little below where the version without the ceilings meets the line
	 * (floating point only picks the start), then iterate up exactly. */
	start = real_crossing(v, w);
	start -= 4.0L + start * 1e-12L;
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
		if (has(v, k))
			u += rate(v, k);
	return u;
}
