/* edf: limited-preemptive earliest deadline first, the processor-demand test and
 * per-flow responses (docs/analysis.md, "edf"). */
#include "analysis.h"
#include "an_arith.h"
#include "an_internal.h"

#include <stdlib.h>

/* EDF blocking for absolute deadline d: the pool, and the longest step of a task
 * other than `self` whose jobs can have a later deadline (best-effort ones and the
 * broker's RST replies always). */
static uint64_t edf_block(const struct ctx *x, size_t self, uint64_t d)
{
	uint64_t blk = x->rst;

	for (size_t j = 0; j < x->n; j++)
		if (j != self && (x->t[j].be || x->t[j].D > d))
			blk = max_u64(blk, x->t[j].Q);
	return sadd(x->pool, blk);
}

/* Jobs of task t with absolute deadline <= d. The broker's deadline is its release
 * (when it saw the job, or the policer let it go) plus D: releases in [0, d - D],
 * at most floor((d - D + J)/T) + 1 of them. */
static uint64_t due_by(const struct task *t, uint64_t d)
{
	/* The budget task (D = 0, J = T): every job released in [0, d]. */
	if (d < t->D)
		return 0;
	return sadd(d - t->D, t->J) / t->T + 1;
}

/* The most jobs of t that can run before a job with absolute deadline d finishes:
 * those due by d, or all of them for the broker's own work, which runs before every
 * step whatever the deadlines. */
static uint64_t cap_by(const struct task *t, uint64_t d)
{
	return t->always ? UINT64_MAX : due_by(t, d);
}

/* Calls fn(x, u, arg) for the points u in [lo, L] where due_by(t, u) grows: u = D and
 * u = D + kT - J for every k >= 1 with kT > J. Returns false when fn does. */
static bool due_points(struct ctx *x, const struct task *t, uint64_t off, uint64_t L,
		       bool (*fn)(struct ctx *x, uint64_t u, void *arg), void *arg)
{
	uint64_t k = t->J / t->T + 1, u;

	/* Points are u - off for a caller that wants offsets (edf_flow): u >= off. */
	if (t->D >= off && t->D - off <= L && !fn(x, t->D - off, arg))
		return false;
	u = sadd(smul(k, t->T), t->D) - t->J;
	if (u < off)
		u = sadd(u, smul(ceil_div(off - u, t->T), t->T));
	for (; u - off <= L; u = sadd(u, t->T)) {
		if (!fn(x, u - off, arg))
			return false;
		if (u == UINT64_MAX)
			break;
	}
	return true;
}

struct demand_arg {
	uint64_t first;
	uint64_t points;
};

static bool demand_at(struct ctx *x, uint64_t t, void *arg)
{
	struct demand_arg *a = arg;
	uint64_t dem = edf_block(x, SIZE_MAX, t);

	if (++a->points > AN_MAX_POINTS || !pay(x))
		return false;
	for (size_t l = 0; l < x->n; l++)
		if (!x->t[l].be)
			dem = sadd(dem, smul(due_by(&x->t[l], t), x->t[l].C));
	if (dem > an_vhu_supply(&x->s.vhu, t) && t < a->first)
		a->first = t;
	return true;
}

/* Processor-demand test (Baruah 2005, limited preemption): for every absolute deadline
 * t in [0, L]: dbf(t) + B(t) <= sbf(t). Returns 0 (pass), 1 (fail at *at), 2 (too
 * many points or the budget). */
static int edf_demand(struct ctx *x, uint64_t L, uint64_t *at)
{
	struct demand_arg a = { .first = UINT64_MAX };

	/* At the deadlines of the flows' jobs; the broker's own work (the budget task)
	 * is demand at each of them, not a deadline of its own. */
	for (size_t j = 0; j < x->n; j++)
		if (!x->t[j].be && !x->t[j].always &&
		    !due_points(x, &x->t[j], 0, L, demand_at, &a))
			return 2;
	*at = a.first;
	return a.first == UINT64_MAX ? 0 : 1;
}

/* Start of the last step (unregulated) or finish (regulated) of task i's job released
 * at offset a of the deadline busy period (Spuri 1996, extended with limited-
 * preemption blocking and the supply bound), given the blocking B for its deadline.
 * `from` is a value known not to exceed the result (warm start). UINT64_MAX when it
 * passes the horizon or the budget. */
static uint64_t edf_point(struct ctx *x, size_t i, uint64_t a, uint64_t B, uint64_t from)
{
	const struct task *ti = &x->t[i];
	uint64_t d = sadd(a, ti->D);
	uint64_t m = sadd(a, ti->J) / ti->T; /* earlier own jobs in [0, a] */
	uint64_t base, t, w;

	/* unregulated: S = B(d) + m C_i + C_i - q_i
	 *                  + sum_{j != i} min(floor((S+J_j)/T_j) + 1, due_by_j(d)) C_j
	 * regulated (no step relied on as non-preemptive, see fp_task): the least t with
	 * sbf(t) >= B(d) + (m+1) C_i + sum_{j != i} min(ceil((t+J_j)/T_j), due_by_j(d)) C_j */
	if (!x->s.regulated)
		base = sadd(B, sadd(smul(m, ti->C), ti->C - ti->q));
	else
		base = sadd(B, smul(m + 1, ti->C));
	w = base;
	for (size_t j = 0; j < x->n; j++)
		if (j != i && !x->t[j].be && due_by(&x->t[j], d))
			w = sadd(w, x->t[j].C);
	t = max_u64(inv(&x->s, w), from);
	for (unsigned it = 0;; it++) {
		uint64_t nt;

		if (t > x->hz || it >= AN_MAX_POINTS || !pay(x))
			return UINT64_MAX;
		w = base;
		for (size_t j = 0; j < x->n; j++) {
			const struct task *tj = &x->t[j];

			if (j == i || tj->be)
				continue;
			w = sadd(w, smul(min_u64(x->s.regulated ? released_before(tj, t) :
						 released_upto(tj, t), cap_by(tj, d)), tj->C));
		}
		nt = inv(&x->s, w);
		if (nt == t)
			return t;
		t = nt;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

struct points {
	uint64_t *v;
	size_t len, cap;
};

/* Appends a candidate offset; false when the point budget is spent. */
static bool push_point(struct ctx *x, uint64_t a, void *arg)
{
	struct points *p = arg;

	(void)x;
	if (p->len == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 64;
		uint64_t *nv;

		if (ncap > AN_MAX_POINTS)
			ncap = AN_MAX_POINTS;
		if (p->len >= ncap)
			return false;
		nv = realloc(p->v, ncap * sizeof(*nv));
		if (!nv)
			return false;
		p->v = nv;
		p->cap = ncap;
	}
	p->v[p->len++] = a;
	return true;
}

/* Worst response of task i under EDF: the maximum of F(a) - a over the release
 * offsets a in [0, L) at which F can change: a = 0, an own release (k T_i - J_i), a
 * deadline of another task meeting a + D_i (which also covers a blocker dropping out
 * at a = D_j - D_i). F is constant between them and F(a) - a falls, so these left
 * end points suffice. They are taken in increasing order: every term of the fixed
 * point grows with a except the blocking, which only falls; while it stays, the last
 * answer is a valid start for the next (warm start). Returns 1 when unbounded. */
static int edf_task(struct ctx *x, size_t i, uint64_t L, struct an_flow_result *r)
{
	const struct task *ti = &x->t[i];
	struct points p = { 0 };
	uint64_t worst = 0, prevB = UINT64_MAX, prevS = 0;
	int ret = 1;

	if (!push_point(x, 0, &p))
		goto out;
	{
		uint64_t a = ti->J % ti->T ? ti->T - ti->J % ti->T : 0;

		for (; a < L; a = sadd(a, ti->T))
			if (!push_point(x, a, &p))
				goto out;
	}
	for (size_t j = 0; j < x->n; j++)
		if (j != i && !x->t[j].be && L &&
		    !due_points(x, &x->t[j], ti->D, L - 1, push_point, &p))
			goto out;
	/* Many tasks share periods and deadlines: evaluate each offset once. */
	qsort(p.v, p.len, sizeof(*p.v), cmp_u64);
	for (size_t k = 0; k < p.len; k++) {
		uint64_t a = p.v[k], B, S, F;

		if (k && a == p.v[k - 1])
			continue;
		B = edf_block(x, i, sadd(a, ti->D));
		S = edf_point(x, i, a, B, B == prevB ? prevS : 0);
		if (S > x->hz)
			goto out;
		prevB = B;
		prevS = S;
		/* A job released after that work is done starts afresh: that case is the
		 * a = 0 point of a later busy period; max() keeps F at or after a + C. */
		if (!x->s.regulated)
			F = sadd(max_u64(S, sadd(a, ti->C - ti->q)), last_body(x, ti));
		else
			F = max_u64(S, sadd(a, ti->C));
		worst = max_u64(worst, F - a);
	}
	r->response = sadd(x->late, worst);
	r->bounded = true;
	r->busy_period = L;
	ret = 0;
out:
	free(p.v);
	return ret;
}

/* The deadline busy period (from the pool and the longest step of anyone), the
 * processor-demand test over it, then each real-time flow's response. */
bool an_edf_run(struct ctx *x, const struct an_flow *flows, size_t nflows,
		struct an_result *res, struct an_flow_result *out)
{
	uint64_t L, blk = x->rst;
	bool unbounded = false;
	int ret;

	for (size_t j = 0; j < x->n; j++)
		blk = max_u64(blk, x->t[j].Q);
	L = an_busy_period(x, sadd(x->pool, blk));
	if (L > x->hz)
		return true;
	ret = edf_demand(x, L, &res->demand_fail_at);
	if (ret == 2)
		return true;
	res->demand_ok = ret == 0;
	for (size_t i = 0; i < nflows; i++)
		if (!flows[i].best_effort && edf_task(x, i, L, &out[i]))
			unbounded = true;
	return unbounded;
}
