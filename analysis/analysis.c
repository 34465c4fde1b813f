/* Response-time analysis: see analysis.h for the interface and docs/analysis.md for
 * the model, each equation and its references. Every quantity is an integer number of
 * ns; additions and products saturate at UINT64_MAX, which always lies beyond the
 * horizon, so a saturated value can only ever be reported as unbounded. */
#include "analysis.h"

#include <errno.h>
#include <stdlib.h>

#define NS_PER_S 1000000000ull

static uint64_t sadd(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t smul(uint64_t a, uint64_t b)
{
	if (a && b > UINT64_MAX / a)
		return UINT64_MAX;
	return a * b;
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t an_chunk_cost(const struct an_platform *p, uint64_t bytes)
{
	/* 128-bit product: bytes * 1e9 overflows 64 bits above ~18 GB. */
	unsigned __int128 num = (unsigned __int128)bytes * NS_PER_S;
	unsigned __int128 t = num / p->copy_bandwidth + (num % p->copy_bandwidth != 0);

	if (t > UINT64_MAX)
		return UINT64_MAX;
	return sadd(p->chunk_overhead, (uint64_t)t);
}

/* Cost of a run of x bytes copied in steps of at most c bytes: e(c) per full step and
 * e(rest) for a short last one. */
static uint64_t run_cost(const struct an_platform *pl, uint64_t x, uint64_t c, uint64_t *last)
{
	uint64_t full = x / c, rem = x % c;

	*last = an_chunk_cost(pl, rem ? rem : c);
	return sadd(smul(full, an_chunk_cost(pl, c)), rem ? an_chunk_cost(pl, rem) : 0);
}

/* Cost of one TX packet of p payload bytes. The broker delivers it as pieces of at
 * most r bytes, one per destination RX buffer, each a packet of its own to the
 * receiver (its own header and used-ring entry: packet_overhead, paid in the piece's
 * last step), and copies each piece in steps of at most `chunk` bytes. */
static uint64_t packet_cost(const struct an_platform *pl, uint64_t p, uint64_t r, uint64_t chunk,
			    uint64_t *last)
{
	uint64_t full = p / r, rem = p % r, l, cost;

	cost = smul(full, sadd(run_cost(pl, r, chunk, &l), pl->packet_overhead));
	if (rem)
		cost = sadd(cost, sadd(run_cost(pl, rem, chunk, &l), pl->packet_overhead));
	*last = sadd(l, pl->packet_overhead);
	return cost;
}

int an_flow_costs(const struct an_flow *f, const struct an_broker *b, struct an_costs *c)
{
	const struct an_platform *pl = &b->plat;
	uint64_t r, plast, rlast, ctl, npk, rem, step;

	if (f->explicit_costs) {
		if (!f->last_step || f->last_step > f->max_step || f->max_step > f->cost)
			return -EINVAL;
		c->C = f->cost;
		c->q = f->last_step;
		c->Q = f->max_step;
		return 0;
	}
	if (!f->size || !f->rx_payload || !f->packet_size || !b->chunk || !pl->copy_bandwidth)
		return -EINVAL;
	r = f->rx_payload;
	npk = f->size / f->packet_size;
	rem = f->size % f->packet_size;
	c->C = smul(npk, packet_cost(pl, f->packet_size, r, b->chunk, &plast));
	if (rem) {
		c->C = sadd(c->C, packet_cost(pl, rem, r, b->chunk, &rlast));
		c->q = rlast;
	} else {
		c->q = plast;
	}
	/* The credit update a stream receiver sends back per message: a header-only
	 * packet, one step with its packet overhead, at the flow's priority. It is
	 * counted among the message's preemptable steps (before its last step). */
	ctl = f->type == AN_STREAM ? sadd(pl->packet_overhead, pl->chunk_overhead) : 0;
	c->C = sadd(c->C, ctl);
	/* Messages may be shorter than `size`: the longest single step any of them can
	 * have is a one-step piece of min(chunk, RX payload, packet, size) bytes with its
	 * packet overhead (every longer piece ends in a step no longer than that). */
	step = min_u64(min_u64(b->chunk, r), min_u64(f->packet_size, f->size));
	c->Q = max_u64(sadd(an_chunk_cost(pl, step), pl->packet_overhead), ctl);
	return 0;
}

uint64_t an_sbf(uint64_t pi, uint64_t theta, uint64_t t)
{
	uint64_t gap, tp, k, r;

	if (theta >= pi)
		return t;
	gap = pi - theta;
	/* The longest blackout of a periodic resource is 2(Pi - Theta): its budget served
	 * at the very start of one period and at the very end of the next. */
	if (t <= gap)
		return 0;
	tp = t - gap;
	k = tp / pi;
	r = tp - k * pi;
	return sadd(smul(k, theta), r > gap ? r - gap : 0);
}

uint64_t an_sbf_inv(uint64_t pi, uint64_t theta, uint64_t w)
{
	uint64_t k, rem;

	if (theta >= pi || w == 0)
		return w;
	if (theta == 0)
		return UINT64_MAX;
	k = (w - 1) / theta;          /* whole budgets served before the last one */
	rem = w - k * theta;          /* 1..theta from the last budget */
	return sadd(sadd(smul(2, pi - theta), smul(k, pi)), rem);
}

uint64_t an_regulated_theta(const struct an_broker *b, uint64_t max_step)
{
	unsigned __int128 t;
	uint64_t th, loss;

	if (!b->reg_budget)
		return b->reg_period;
	t = (unsigned __int128)b->reg_budget * NS_PER_S / b->plat.copy_bandwidth;
	/* A step granted just before a boundary may run past it (at most one step); a
	 * partial grant splits one step per period, costing one more chunk overhead; and
	 * a remainder too small for a header and one byte (at most 44 bytes, which take
	 * no longer than a chunk overhead: checked by an_validate) is forfeited. */
	loss = sadd(max_step, smul(2, b->plat.chunk_overhead));
	/* A budget that takes longer to copy than the period plus an overrunning step
	 * can never run out: the regulator never holds the engine back. */
	if (t >= (unsigned __int128)b->reg_period + loss)
		return b->reg_period;
	th = (uint64_t)t;
	th = th > loss ? th - loss : 0;
	return min_u64(th, b->reg_period);
}

const char *an_policy_name(enum an_policy p)
{
	switch (p) {
	case AN_FP:
		return "fp";
	case AN_EDF:
		return "edf";
	case AN_FIFO:
		return "fifo";
	}
	return "?";
}

const char *an_status_name(enum an_status s)
{
	switch (s) {
	case AN_OK:
		return "ok";
	case AN_OVERLOAD:
		return "overload";
	case AN_UNBOUNDED:
		return "unbounded";
	}
	return "?";
}

int an_validate(const struct an_flow *flows, size_t n, const struct an_broker *b,
		int *bad_flow, const char **why)
{
	const char *w = NULL;
	int bad = -1;
	struct an_costs c;

	if (b->policy != AN_FP && b->policy != AN_EDF && b->policy != AN_FIFO)
		w = "unknown policy";
	else if (!b->plat.copy_bandwidth)
		w = "copy_bandwidth must be > 0";
	else if (b->reg_budget && !b->reg_period)
		w = "regulation_period must be > 0 when regulation_budget is set";
	else if (b->reg_budget &&
		 (unsigned __int128)b->plat.chunk_overhead * b->plat.copy_bandwidth <
			 (unsigned __int128)AN_HDR_BYTES * NS_PER_S)
		/* The regulator charges each step's 44-byte header; the supply bound
		 * assumes the chunk overhead is at least the time to copy it. */
		w = "chunk_overhead must be at least the time to copy a 44-byte header when regulated";
	for (size_t i = 0; !w && i < n; i++) {
		const struct an_flow *f = &flows[i];

		bad = (int)i;
		if (f->explicit_costs && (!f->last_step || f->last_step > f->max_step ||
					  f->max_step > f->cost))
			w = "costs must satisfy 0 < last_step <= max_step <= cost";
		else if (!f->explicit_costs && (!f->size || !f->rx_payload || !f->packet_size))
			w = "size, RX buffer payload and packet size must be > 0";
		else if (!f->explicit_costs && !b->chunk)
			w = "chunk must be > 0";
		else if (!f->best_effort && (!f->period || !f->deadline))
			w = "period and deadline must be > 0";
		else if (!f->best_effort && b->policy == AN_FP && !f->priority)
			w = "no priority assigned";
		else if (an_flow_costs(f, b, &c))
			w = "inconsistent costs";
	}
	if (!w)
		return 0;
	if (bad_flow)
		*bad_flow = bad;
	if (why)
		*why = w;
	return -EINVAL;
}

/* The resource the fixed points run on: dedicated (theta >= pi) or regulated. */
struct supply {
	uint64_t pi, theta;
	bool regulated;
};

static uint64_t inv(const struct supply *s, uint64_t w)
{
	return s->regulated ? an_sbf_inv(s->pi, s->theta, w) : w;
}

static uint64_t horizon_of(const struct an_broker *b)
{
	/* Kept far below UINT64_MAX, so that a saturated sum always exceeds it. */
	if (!b->horizon)
		return AN_DEFAULT_HORIZON_NS;
	return min_u64(b->horizon, UINT64_MAX / 4);
}

/* Number of jobs of flow f released in [0, t] in the worst-case pattern (first job at
 * 0 after maximal jitter, the next ones as early as the period and jitter allow). */
static uint64_t released_upto(const struct an_flow *f, uint64_t t)
{
	return sadd(t, f->jitter) / f->period + 1;
}

/* Jobs released in [0, t): the count in busy-period equations. */
static uint64_t released_before(const struct an_flow *f, uint64_t t)
{
	return ceil_div(sadd(t, f->jitter), f->period);
}

/* Least t with sbf(t) >= base + sum over the selected flows of released_before(t) C_j:
 * a busy period. Returns UINT64_MAX when it passes the horizon. sel == NULL selects
 * every real-time flow. */
static uint64_t busy_period(const struct an_flow *flows, size_t n, const struct an_costs *costs,
			    const struct supply *s, uint64_t base, const bool *sel, uint64_t hz)
{
	uint64_t w = base, t;

	for (size_t j = 0; j < n; j++)
		if (!flows[j].best_effort && (!sel || sel[j]))
			w = sadd(w, costs[j].C);
	t = inv(s, w);
	for (unsigned it = 0; t <= hz && it < AN_MAX_POINTS; it++) {
		uint64_t nt;

		w = base;
		for (size_t j = 0; j < n; j++)
			if (!flows[j].best_effort && (!sel || sel[j]))
				w = sadd(w, smul(released_before(&flows[j], t), costs[j].C));
		nt = inv(s, w);
		if (nt == t)
			return t;
		t = nt;
	}
	return UINT64_MAX;
}

static void make_supply(const struct an_broker *b, const struct an_costs *costs,
			const struct an_flow *flows, size_t n, struct supply *s)
{
	uint64_t qmax = 0;

	(void)flows; /* every flow's step counts, best-effort ones too */
	for (size_t j = 0; j < n; j++)
		qmax = max_u64(qmax, costs[j].Q);
	s->pi = b->reg_budget ? b->reg_period : 1;
	s->theta = an_regulated_theta(b, qmax);
	s->regulated = b->reg_budget && s->theta < s->pi;
	if (!s->regulated)
		s->theta = s->pi;
}

/* Is flow j of higher or equal priority than flow i under prio[]? */
static bool hep(const struct an_flow *flows, const unsigned *prio, size_t i, size_t j)
{
	return !flows[j].best_effort && prio[j] <= prio[i];
}

static int fp_flow(const struct an_flow *flows, size_t n, const struct an_broker *b,
		   const struct an_costs *costs, const struct supply *s, const unsigned *prio,
		   size_t i, struct an_flow_result *r)
{
	const struct an_flow *fi = &flows[i];
	const struct an_costs *ci = &costs[i];
	uint64_t hz = horizon_of(b), B = b->plat.ingest_step, blk = 0, L, w, jobs;
	uint64_t prev = 0, worst = 0;
	unsigned worst_job = 1;

	r->costs = *ci;
	r->bounded = false;
	r->schedulable = false;
	r->jobs = 0;
	r->worst_job = 0;
	r->busy_period = 0;
	/* Blocking: the longest step of any lower-priority or best-effort flow, which may
	 * have started just before the critical instant, plus one ingest pass. */
	for (size_t j = 0; j < n; j++)
		if (j != i && (flows[j].best_effort || prio[j] > prio[i]))
			blk = max_u64(blk, costs[j].Q);
	B = sadd(B, blk);

	/* Level-i active period: L = B + sum_{hep(i)} ceil((L + J_j)/T_j) C_j. */
	w = B;
	for (size_t j = 0; j < n; j++)
		if (hep(flows, prio, i, j))
			w = sadd(w, costs[j].C);
	L = inv(s, w);
	for (unsigned it = 0;; it++) {
		uint64_t nl;

		if (L > hz || it >= AN_MAX_POINTS)
			return 1;
		w = B;
		for (size_t j = 0; j < n; j++)
			if (hep(flows, prio, i, j))
				w = sadd(w, smul(released_before(&flows[j], L), costs[j].C));
		nl = inv(s, w);
		if (nl == L)
			break;
		L = nl;
	}
	r->busy_period = L;
	jobs = released_before(fi, L);
	if (jobs > AN_MAX_POINTS)
		return 1;

	/* Every job k of the active period (Davis, Burns, Bril and Lukkien 2007). */
	for (uint64_t k = 1; k <= jobs; k++) {
		uint64_t F, resp;

		if (!s->regulated) {
			/* Start of the last step: everything of higher priority released up
			 * to and including S, the k-1 earlier jobs and all but the last step
			 * of this one:
			 * S = B + (k-1)C_i + C_i - q_i + sum_{hp} (floor((S+J_j)/T_j) + 1) C_j */
			uint64_t x = sadd(B, sadd(smul(k - 1, ci->C), ci->C - ci->q));
			uint64_t S = x;

			for (size_t j = 0; j < n; j++)
				if (j != i && hep(flows, prio, i, j))
					S = sadd(S, costs[j].C);
			/* S_k >= S_{k-1} + C_i: a valid start from below the least fixed point. */
			if (k > 1)
				S = max_u64(S, sadd(prev, ci->C));
			for (unsigned it = 0;; it++) {
				uint64_t nS = x;

				if (S > hz || it >= AN_MAX_POINTS)
					return 1;
				for (size_t j = 0; j < n; j++)
					if (j != i && hep(flows, prio, i, j))
						nS = sadd(nS, smul(released_upto(&flows[j], S),
								   costs[j].C));
				if (nS == S)
					break;
				S = nS;
			}
			prev = S;
			F = sadd(S, ci->q);
		} else {
			/* Regulated: a partial grant may split any step, and the broker may
			 * dispatch again between the pieces, so no step is relied on to be
			 * non-preemptive: F = least t with
			 * sbf(t) >= B + k C_i + sum_{hp} ceil((t+J_j)/T_j) C_j. */
			uint64_t base = sadd(B, smul(k, ci->C)), t;

			w = base;
			for (size_t j = 0; j < n; j++)
				if (j != i && hep(flows, prio, i, j))
					w = sadd(w, costs[j].C);
			t = inv(s, w);
			if (k > 1)
				t = max_u64(t, prev);
			for (unsigned it = 0;; it++) {
				uint64_t nt;

				if (t > hz || it >= AN_MAX_POINTS)
					return 1;
				w = base;
				for (size_t j = 0; j < n; j++)
					if (j != i && hep(flows, prio, i, j))
						w = sadd(w, smul(released_before(&flows[j], t),
								 costs[j].C));
				nt = inv(s, w);
				if (nt == t)
					break;
				t = nt;
			}
			prev = t;
			F = t;
		}
		if (F > hz)
			return 1;
		/* Job k arrives at (k-1)T_i - J_i at the latest-released pattern. */
		resp = sadd(F, fi->jitter) - min_u64(sadd(F, fi->jitter), smul(k - 1, fi->period));
		if (resp > worst) {
			worst = resp;
			worst_job = (unsigned)k;
		}
	}
	r->jobs = (unsigned)jobs;
	r->worst_job = worst_job;
	r->response = worst;
	r->bounded = true;
	return 0;
}

int an_fp_flow(const struct an_flow *flows, size_t n, const struct an_broker *b,
	       const struct an_costs *costs, const unsigned *prio, size_t i,
	       struct an_flow_result *r)
{
	struct supply s;

	if (i >= n || flows[i].best_effort || !flows[i].period)
		return -EINVAL;
	make_supply(b, costs, flows, n, &s);
	if (s.regulated && s.theta == 0) {
		r->costs = costs[i];
		r->bounded = false;
		r->schedulable = false;
		return 1;
	}
	return fp_flow(flows, n, b, costs, &s, prio, i, r);
}

/* EDF blocking for absolute deadline d: one ingest pass and the longest step of a
 * flow other than `self` whose jobs can have a later deadline (best-effort ones always). */
static uint64_t edf_block(const struct an_flow *flows, size_t n, const struct an_costs *costs,
			  const struct an_broker *b, size_t self, uint64_t d)
{
	uint64_t blk = 0;

	for (size_t j = 0; j < n; j++)
		if (j != self && (flows[j].best_effort || flows[j].deadline > d))
			blk = max_u64(blk, costs[j].Q);
	return sadd(b->plat.ingest_step, blk);
}

/* Jobs of flow j with absolute deadline <= d: arrivals in [-J_j, d - D_j]. */
static uint64_t due_by(const struct an_flow *f, uint64_t d)
{
	if (sadd(d, f->jitter) < f->deadline)
		return 0;
	return (sadd(d, f->jitter) - f->deadline) / f->period + 1;
}

/* Processor-demand test (Baruah 2005, limited preemption): for every absolute deadline
 * t in [0, L]: dbf(t) + B(t) <= sbf(t). Returns 0 (pass), 1 (fail at *at), 2 (too
 * many points). */
static int edf_demand(const struct an_flow *flows, size_t n, const struct an_broker *b,
		      const struct an_costs *costs, const struct supply *s, uint64_t L,
		      uint64_t *at)
{
	uint64_t points = 0, first = UINT64_MAX;

	for (size_t j = 0; j < n; j++) {
		const struct an_flow *fj = &flows[j];

		if (fj->best_effort)
			continue;
		if (fj->deadline <= fj->jitter) {
			/* A deadline inside the jitter window can pass before the release. */
			first = 0;
			continue;
		}
		for (uint64_t t = fj->deadline - fj->jitter; t <= L; t = sadd(t, fj->period)) {
			uint64_t dem = edf_block(flows, n, costs, b, SIZE_MAX, t);

			if (++points > AN_MAX_POINTS)
				return 2;
			for (size_t l = 0; l < n; l++)
				if (!flows[l].best_effort)
					dem = sadd(dem, smul(due_by(&flows[l], t), costs[l].C));
			if (dem > (s->regulated ? an_sbf(s->pi, s->theta, t) : t) && t < first)
				first = t;
			if (t == UINT64_MAX)
				break;
		}
	}
	*at = first;
	return first == UINT64_MAX ? 0 : 1;
}

/* Finish time of flow i's job released at offset a of the deadline busy period
 * (Spuri 1996, extended with limited-preemption blocking and the supply bound). */
static uint64_t edf_finish(const struct an_flow *flows, size_t n, const struct an_broker *b,
			   const struct an_costs *costs, const struct supply *s, size_t i,
			   uint64_t a, uint64_t hz)
{
	const struct an_flow *fi = &flows[i];
	const struct an_costs *ci = &costs[i];
	uint64_t d = sadd(a, fi->deadline);
	uint64_t m = sadd(a, fi->jitter) / fi->period; /* earlier own jobs in [0, a] */
	uint64_t B = edf_block(flows, n, costs, b, i, d);
	uint64_t x, t, w;

	if (!s->regulated) {
		/* S = B(d) + m C_i + C_i - q_i
		 *     + sum_{j != i} min(floor((S+J_j)/T_j) + 1, due_by_j(d)) C_j */
		x = sadd(B, sadd(smul(m, ci->C), ci->C - ci->q));
		t = x;
		for (size_t j = 0; j < n; j++)
			if (j != i && !flows[j].best_effort && due_by(&flows[j], d))
				t = sadd(t, costs[j].C);
		for (unsigned it = 0;; it++) {
			uint64_t nt = x;

			if (t > hz || it >= AN_MAX_POINTS)
				return UINT64_MAX;
			for (size_t j = 0; j < n; j++)
				if (j != i && !flows[j].best_effort)
					nt = sadd(nt, smul(min_u64(released_upto(&flows[j], t),
								   due_by(&flows[j], d)),
							   costs[j].C));
			if (nt == t)
				break;
			t = nt;
		}
		/* A job released after that work is done starts afresh: that case is the
		 * a = 0 point of a later busy period; max() keeps F >= release. */
		t = max_u64(t, sadd(a, ci->C - ci->q));
		return sadd(t, ci->q);
	}
	/* Regulated: no step relied on as non-preemptive (see fp_flow). */
	x = sadd(B, smul(m + 1, ci->C));
	w = x;
	for (size_t j = 0; j < n; j++)
		if (j != i && !flows[j].best_effort && due_by(&flows[j], d))
			w = sadd(w, costs[j].C);
	t = inv(s, w);
	for (unsigned it = 0;; it++) {
		uint64_t nt;

		if (t > hz || it >= AN_MAX_POINTS)
			return UINT64_MAX;
		w = x;
		for (size_t j = 0; j < n; j++)
			if (j != i && !flows[j].best_effort)
				w = sadd(w, smul(min_u64(released_before(&flows[j], t),
							 due_by(&flows[j], d)),
						 costs[j].C));
		nt = inv(s, w);
		if (nt == t)
			break;
		t = nt;
	}
	return max_u64(t, sadd(a, ci->C));
}

/* Worst response of flow i under EDF: the maximum over the release offsets a in
 * [0, L) at which F(a) can change (where a job of some flow gets due by a + D_i, an
 * own job is released, or a blocker drops out); F is constant between them and
 * F(a) - a decreases, so these left end points suffice. Returns 1 when unbounded. */
static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return (a > b) - (a < b);
}

/* Appends a candidate offset; returns false when the point budget is spent. */
static bool push_point(uint64_t **v, size_t *len, size_t *cap, uint64_t a)
{
	if (*len == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		uint64_t *nv;

		if (ncap > AN_MAX_POINTS)
			ncap = AN_MAX_POINTS;
		if (*len >= ncap)
			return false;
		nv = realloc(*v, ncap * sizeof(**v));
		if (!nv)
			return false;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*len)++] = a;
	return true;
}

static int edf_flow(const struct an_flow *flows, size_t n, const struct an_broker *b,
		    const struct an_costs *costs, const struct supply *s, size_t i, uint64_t L,
		    struct an_flow_result *r)
{
	const struct an_flow *fi = &flows[i];
	uint64_t hz = horizon_of(b), worst = 0, *pts = NULL;
	size_t npts = 0, cap = 0;
	int ret = 1;

	if (!push_point(&pts, &npts, &cap, 0))
		goto out;
	for (size_t j = 0; j < n; j++) {
		const struct an_flow *fj = &flows[j];
		uint64_t a0, step;

		if (fj->best_effort && j != i)
			continue;
		if (j == i) {
			/* Own releases: a = k T_i - J_i. */
			a0 = fi->jitter % fi->period ? fi->period - fi->jitter % fi->period : 0;
			step = fi->period;
		} else {
			/* a + D_i = k T_j + D_j - J_j; the first k that makes a >= 0. */
			uint64_t off = sadd(fi->deadline, fj->jitter), base = fj->deadline;

			if (base >= off) {
				a0 = base - off;
			} else {
				uint64_t k = ceil_div(off - base, fj->period);

				a0 = smul(k, fj->period) + base - off;
			}
			step = fj->period;
			/* The blocker of flow j drops out at a = D_j - D_i. */
			if (fj->deadline >= fi->deadline && fj->deadline - fi->deadline < L &&
			    !push_point(&pts, &npts, &cap, fj->deadline - fi->deadline))
				goto out;
		}
		for (uint64_t a = a0; a < L; a = sadd(a, step)) {
			if (!push_point(&pts, &npts, &cap, a))
				goto out;
			if (a == UINT64_MAX)
				break;
		}
	}
	/* Many flows share periods and deadlines: evaluate each offset once. */
	qsort(pts, npts, sizeof(*pts), cmp_u64);
	for (size_t k = 0; k < npts; k++) {
		uint64_t F;

		if (k && pts[k] == pts[k - 1])
			continue;
		F = edf_finish(flows, n, b, costs, s, i, pts[k], hz);
		if (F > hz)
			goto out;
		worst = max_u64(worst, sadd(F, fi->jitter) - pts[k]);
	}
	r->response = worst;
	r->bounded = true;
	r->busy_period = L;
	ret = 0;
out:
	free(pts);
	return ret;
}

/* FIFO: a message released x after the start of a busy period is copied once all work
 * released in [0, x] is, so it finishes by sbf^-1(B + sum_j (floor((x+J_j)/T_j)+1) C_j).
 * The bound max_x of that minus x holds for every flow alike (plus its own jitter). */
static int fifo_bound(const struct an_flow *flows, size_t n, const struct an_costs *costs,
		      const struct supply *s, uint64_t B, uint64_t L, uint64_t hz, uint64_t *out)
{
	uint64_t worst, points = 0, w = B;

	/* x = 0: every flow's first job, released together at the critical instant. */
	for (size_t l = 0; l < n; l++)
		if (!flows[l].best_effort)
			w = sadd(w, smul(released_upto(&flows[l], 0), costs[l].C));
	worst = inv(s, w);
	if (worst > hz)
		return 1;
	for (size_t j = 0; j < n; j++) {
		const struct an_flow *fj = &flows[j];
		uint64_t x0;

		if (fj->best_effort)
			continue;
		x0 = fj->jitter % fj->period ? fj->period - fj->jitter % fj->period : 0;
		for (uint64_t x = x0; x < L; x = sadd(x, fj->period)) {
			uint64_t F;

			w = B;
			if (++points > AN_MAX_POINTS)
				return 1;
			for (size_t l = 0; l < n; l++)
				if (!flows[l].best_effort)
					w = sadd(w, smul(released_upto(&flows[l], x), costs[l].C));
			F = inv(s, w);
			if (F > hz)
				return 1;
			worst = max_u64(worst, F - min_u64(F, x));
			if (x == UINT64_MAX)
				break;
		}
	}
	*out = worst;
	return 0;
}

static void finish_flow(const struct an_flow *f, const struct an_broker *b,
			struct an_flow_result *r)
{
	if (f->best_effort || !r->bounded) {
		r->schedulable = false;
		return;
	}
	r->latency = sadd(sadd(b->plat.ingest_latency, r->response), b->plat.notify_latency);
	r->schedulable = r->latency <= f->deadline;
}

int an_analyze(const struct an_flow *flows, size_t n, const struct an_broker *b,
	       struct an_result *res, struct an_flow_result *out)
{
	struct supply s;
	uint64_t hz = horizon_of(b), L, B;
	long double u = 0;
	struct an_costs *costs;
	unsigned *prio;
	bool unbounded = false, all = true;
	int ret;

	ret = an_validate(flows, n, b, NULL, NULL);
	if (ret)
		return ret;
	costs = calloc(n ? n : 1, sizeof(*costs));
	prio = calloc(n ? n : 1, sizeof(*prio));
	if (!costs || !prio) {
		free(costs);
		free(prio);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		out[i] = (struct an_flow_result){ 0 };
		an_flow_costs(&flows[i], b, &costs[i]);
		out[i].costs = costs[i];
		prio[i] = flows[i].priority;
		if (!flows[i].best_effort)
			u += (long double)costs[i].C / flows[i].period;
	}
	make_supply(b, costs, flows, n, &s);
	*res = (struct an_result){ 0 };
	res->status = AN_OK;
	res->demand_ok = true;
	res->utilization = (double)u;
	res->regulated = s.regulated;
	res->theta = s.regulated ? s.theta : 0;
	res->capacity = s.regulated ? (double)s.theta / (double)s.pi : 1.0;
	/* Utilisation beyond the capacity: no busy period closes. The margin only keeps a
	 * rounding error from calling a utilisation of exactly 1 overloaded; a value that
	 * close to the capacity is decided by the horizon instead. */
	if (u > (long double)res->capacity * (1.0L + 1e-12L) || (s.regulated && s.theta == 0)) {
		res->status = AN_OVERLOAD;
		res->why = "utilization above the copy engine's capacity";
		goto out;
	}

	switch (b->policy) {
	case AN_FP:
		for (size_t i = 0; i < n; i++) {
			if (flows[i].best_effort)
				continue;
			if (fp_flow(flows, n, b, costs, &s, prio, i, &out[i]))
				unbounded = true;
		}
		break;
	case AN_EDF:
		B = 0;
		for (size_t j = 0; j < n; j++)
			B = max_u64(B, costs[j].Q);
		L = busy_period(flows, n, costs, &s, sadd(B, b->plat.ingest_step), NULL, hz);
		if (L > hz) {
			unbounded = true;
			break;
		}
		ret = edf_demand(flows, n, b, costs, &s, L, &res->demand_fail_at);
		if (ret == 2) {
			unbounded = true;
			break;
		}
		res->demand_ok = ret == 0;
		for (size_t i = 0; i < n; i++) {
			if (flows[i].best_effort)
				continue;
			if (edf_flow(flows, n, b, costs, &s, i, L, &out[i]))
				unbounded = true;
		}
		break;
	case AN_FIFO:
		/* Arrival order for everyone, best-effort traffic included: a message may
		 * find any amount of best-effort data queued ahead of it, which nothing
		 * in the configuration bounds. */
		for (size_t j = 0; j < n; j++)
			if (flows[j].best_effort)
				res->why = "under fifo, best-effort data queues in arrival order "
					   "with real-time messages, and nothing bounds it";
		if (res->why) {
			unbounded = true;
			break;
		}
		B = b->plat.ingest_step;
		L = busy_period(flows, n, costs, &s, B, NULL, hz);
		if (L > hz) {
			unbounded = true;
			break;
		}
		{
			uint64_t worst;

			if (fifo_bound(flows, n, costs, &s, B, L, hz, &worst)) {
				unbounded = true;
				break;
			}
			for (size_t i = 0; i < n; i++) {
				if (flows[i].best_effort)
					continue;
				out[i].response = sadd(worst, flows[i].jitter);
				out[i].bounded = true;
				out[i].busy_period = L;
			}
		}
		break;
	}
	if (unbounded) {
		res->status = AN_UNBOUNDED;
		if (!res->why)
			res->why = "a busy period exceeds the analysis horizon";
	}
out:
	for (size_t i = 0; i < n; i++) {
		if (res->status == AN_OVERLOAD)
			out[i].bounded = false;
		finish_flow(&flows[i], b, &out[i]);
		if (!flows[i].best_effort && !out[i].schedulable)
			all = false;
	}
	res->schedulable = res->status == AN_OK && all && res->demand_ok;
	free(costs);
	free(prio);
	return 0;
}

void an_assign_dm(const struct an_flow *flows, size_t n, unsigned *prio)
{
	/* Rank = 1 + the number of flows that come first: shorter deadline, or equal
	 * deadline and earlier in the configuration. O(n^2), start-up only. */
	for (size_t i = 0; i < n; i++) {
		unsigned rank = 1;

		prio[i] = 0;
		if (flows[i].best_effort)
			continue;
		for (size_t j = 0; j < n; j++)
			if (!flows[j].best_effort &&
			    (flows[j].deadline < flows[i].deadline ||
			     (flows[j].deadline == flows[i].deadline && j < i)))
				rank++;
		prio[i] = rank;
	}
}

int an_assign_opa(const struct an_flow *flows, size_t n, const struct an_broker *b,
		  const struct an_costs *costs, unsigned *prio)
{
	struct supply s;
	unsigned nrt = 0;
	bool *done;

	for (size_t i = 0; i < n; i++)
		if (!flows[i].best_effort) {
			if (!flows[i].period || !flows[i].deadline)
				return -EINVAL;
			nrt++;
		}
	done = calloc(n ? n : 1, sizeof(*done));
	if (!done)
		return -ENOMEM;
	make_supply(b, costs, flows, n, &s);
	/* Audsley: fill the levels from the lowest up. At each level try the unassigned
	 * flows in configuration order; a flow fits when it meets its deadline with every
	 * other unassigned flow above it. The fp test depends only on which flows are
	 * above and which below, never on their order, so this is optimal. */
	for (unsigned level = nrt; level >= 1; level--) {
		bool found = false;

		for (size_t i = 0; i < n && !found; i++) {
			struct an_flow_result r;

			if (flows[i].best_effort || done[i])
				continue;
			for (size_t j = 0; j < n; j++)
				if (!flows[j].best_effort && !done[j])
					prio[j] = j == i ? level : level - 1;
			r = (struct an_flow_result){ 0 };
			if (s.regulated && s.theta == 0)
				continue;
			if (fp_flow(flows, n, b, costs, &s, prio, i, &r))
				continue;
			finish_flow(&flows[i], b, &r);
			if (r.schedulable) {
				done[i] = true;
				prio[i] = level;
				found = true;
			}
		}
		if (!found) {
			free(done);
			return -ESRCH;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (flows[i].best_effort)
			prio[i] = 0;
	free(done);
	return 0;
}
