/* Response-time analysis: see analysis.h for the interface and docs/analysis.md for
 * the model, each equation and its references. Every quantity is an integer number of
 * ns; additions and products saturate at UINT64_MAX, which always lies beyond the
 * horizon, so a saturated value can only ever be reported as unbounded. */
#include "analysis.h"

#include <errno.h>
#include <stdlib.h>

#define NS_PER_S 1000000000ull
/* Rounds of the credit-update jitter fixed point (an_analyze) before giving up. */
#define MAX_ROUNDS 64u

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

/* What one message is made of: its copy cost, its last step, how many steps and TX
 * packets. */
struct shape {
	uint64_t copy, last, steps, packets;
};

/* A run of x bytes copied in steps of at most c bytes: e(c) per full step and
 * e(rest) for a short last one. */
static void run_shape(const struct an_platform *pl, uint64_t x, uint64_t c, struct shape *s)
{
	uint64_t full = x / c, rem = x % c;

	s->last = an_chunk_cost(pl, rem ? rem : c);
	s->copy = sadd(s->copy, sadd(smul(full, an_chunk_cost(pl, c)),
				     rem ? an_chunk_cost(pl, rem) : 0));
	s->steps = sadd(s->steps, full + (rem != 0));
}

/* One TX packet of p payload bytes. The broker delivers it as pieces of at most r
 * bytes, one per destination RX buffer, each a packet of its own to the receiver (its
 * own header and used-ring entry: packet_overhead, paid in the piece's last step),
 * and copies each piece in steps of at most `chunk` bytes. Added to *s, times `times`. */
static void packet_shape(const struct an_platform *pl, uint64_t p, uint64_t r, uint64_t chunk,
			 uint64_t times, struct shape *s)
{
	uint64_t full = p / r, rem = p % r;
	struct shape one = { 0 }, piece = { 0 };

	if (full) {
		run_shape(pl, r, chunk, &piece);
		one.copy = smul(full, sadd(piece.copy, pl->packet_overhead));
		one.steps = smul(full, piece.steps);
		one.last = piece.last;
	}
	if (rem) {
		piece = (struct shape){ 0 };
		run_shape(pl, rem, chunk, &piece);
		one.copy = sadd(one.copy, sadd(piece.copy, pl->packet_overhead));
		one.steps = sadd(one.steps, piece.steps);
		one.last = piece.last;
	}
	s->copy = sadd(s->copy, smul(times, one.copy));
	s->steps = sadd(s->steps, smul(times, one.steps));
	s->packets = sadd(s->packets, times);
	s->last = sadd(one.last, pl->packet_overhead);
}

/* The broker leaves its loop after every run_steps steps for at most batch_gap: a
 * window of n steps holds at most floor(n / run_steps) + 1 gaps, covered by charging
 * every step this share and one whole gap as blocking. */
static uint64_t gap_share(const struct an_broker *b)
{
	return b->run_steps ? ceil_div(b->plat.batch_gap, b->run_steps) : 0;
}

/* Ingest work charged per TX packet: its own ingest, and that of the packet another
 * cell may put into the TX slot its completion frees (docs/analysis.md). */
static uint64_t ingest_charge(const struct an_broker *b)
{
	return smul(2, b->plat.ingest_packet);
}

/* Extra cost of a message made of `steps` steps and `packets` TX packets: its share of
 * the batch gaps and its ingest work, all before its last step. */
static uint64_t extras(const struct an_broker *b, uint64_t steps, uint64_t packets)
{
	return sadd(smul(steps, gap_share(b)), smul(packets, ingest_charge(b)));
}

/* A credit update (and any other header-only control packet): one step with its
 * packet overhead. */
static uint64_t ctl_step(const struct an_broker *b)
{
	return sadd(b->plat.chunk_overhead, b->plat.packet_overhead);
}

int an_flow_costs(const struct an_flow *f, const struct an_broker *b, struct an_costs *c)
{
	const struct an_platform *pl = &b->plat;
	struct shape s = { 0 };
	uint64_t step;

	if (f->explicit_costs) {
		if (!f->last_step || f->last_step > f->max_step || f->max_step > f->cost)
			return -EINVAL;
		s.copy = f->cost;
		s.last = f->last_step;
		s.steps = ceil_div(f->cost - f->last_step, f->max_step) + 1;
		s.packets = 1;
		c->Q = f->max_step;
	} else {
		if (!f->size || !f->rx_payload || !f->packet_size || !b->chunk ||
		    !pl->copy_bandwidth || (f->rx_max && f->rx_max < f->rx_payload))
			return -EINVAL;
		if (f->size / f->packet_size)
			packet_shape(pl, f->packet_size, f->rx_payload, b->chunk,
				     f->size / f->packet_size, &s);
		if (f->size % f->packet_size)
			packet_shape(pl, f->size % f->packet_size, f->rx_payload, b->chunk, 1, &s);
		/* The longest single step: a one-step piece with its packet overhead (every
		 * longer piece ends in a step no longer than that). A real-time message is
		 * at most `size` in packets of at most packet_size; a best-effort one is
		 * held to neither, only to chunk and the RX buffers its receiver posts. */
		step = b->chunk;
		if (f->rx_max)
			step = min_u64(step, f->rx_max);
		if (!f->best_effort)
			step = min_u64(step, min_u64(f->packet_size, f->size));
		c->Q = sadd(an_chunk_cost(pl, step), pl->packet_overhead);
	}
	c->q = s.last;
	c->C = sadd(s.copy, extras(b, s.steps, s.packets));
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
	else if (b->plat.batch_gap && !b->run_steps)
		w = "run_steps must be > 0 when batch_gap is";
	for (size_t i = 0; !w && i < n; i++) {
		const struct an_flow *f = &flows[i];

		bad = (int)i;
		if (f->explicit_costs && (!f->last_step || f->last_step > f->max_step ||
					  f->max_step > f->cost))
			w = "costs must satisfy 0 < last_step <= max_step <= cost";
		else if (!f->explicit_costs && (!f->size || !f->rx_payload || !f->packet_size))
			w = "size, RX buffer payload and packet size must be > 0";
		else if (!f->explicit_costs && f->rx_max && f->rx_max < f->rx_payload)
			w = "the largest RX buffer payload is below the smallest";
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

/* ------------------------------------------------------------------ model ---- */

/* One sporadic stream of work the broker serves: the messages of a flow, or the
 * credit updates a stream flow's receiver sends back. */
struct task {
	uint64_t C, q, Q;   /* ns: whole cost, last step, longest step */
	uint64_t T, D;      /* minimum inter-arrival, relative deadline (the broker's) */
	uint64_t J;         /* release jitter as the broker sees (or orders) releases */
	unsigned prio;
	bool be;            /* best-effort: only ever blocks */
};

/* The resource the fixed points run on: dedicated (theta >= pi) or regulated. */
struct supply {
	uint64_t pi, theta;
	bool regulated;
};

/* Everything one analysis run shares. */
struct ctx {
	const struct an_broker *b;
	const struct task *t;
	size_t n;            /* tasks */
	struct supply s;
	uint64_t hz;
	/* Blocking work besides one step: the ingest of every packet the cells' free
	 * TX slots hold plus one more (the blocking step's completion frees a slot),
	 * one batch gap and the blocking step's own share of gaps. */
	uint64_t pool;
	uint64_t rst;        /* the broker's own RST reply: a step in the lowest band */
	/* edf and fifo order by the broker's stamp, the start of the ingest pass that
	 * took a packet: up to `late` after it became visible (the rest of a pass over
	 * every TX slot, then a step or a batch gap), or up to a packet overhead before
	 * (the pass's clock was read before the last step's completion work). Tasks
	 * carry both in their jitter; responses add `late`. 0 under fp. */
	uint64_t late;
	uint64_t work;       /* evaluations left in the budget */
	bool spent;
};

/* Pays for one pass over the tasks; false once the budget is spent. */
static bool pay(struct ctx *x)
{
	if (x->work <= x->n) {
		x->spent = true;
		return false;
	}
	x->work -= x->n + 1;
	return true;
}

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

/* Releases of task t in [0, u] in the worst-case pattern (the first at 0 after
 * maximal jitter, the next ones as early as the period and jitter allow). */
static uint64_t released_upto(const struct task *t, uint64_t u)
{
	return sadd(u, t->J) / t->T + 1;
}

/* Releases in [0, u): the count in busy-period equations. */
static uint64_t released_before(const struct task *t, uint64_t u)
{
	return ceil_div(sadd(u, t->J), t->T);
}

/* Least t with sbf(t) >= base + sum over the real-time tasks of released_before(t) C_j:
 * the synchronous busy period. Returns UINT64_MAX when it passes the horizon or the
 * budget. */
static uint64_t busy_period(struct ctx *x, uint64_t base)
{
	uint64_t w = base, t;

	for (size_t j = 0; j < x->n; j++)
		if (!x->t[j].be)
			w = sadd(w, x->t[j].C);
	t = inv(&x->s, w);
	for (unsigned it = 0; t <= x->hz && it < AN_MAX_POINTS && pay(x); it++) {
		uint64_t nt;

		w = base;
		for (size_t j = 0; j < x->n; j++)
			if (!x->t[j].be)
				w = sadd(w, smul(released_before(&x->t[j], t), x->t[j].C));
		nt = inv(&x->s, w);
		if (nt == t)
			return t;
		t = nt;
	}
	return UINT64_MAX;
}

static void make_supply(const struct an_broker *b, uint64_t qmax, struct supply *s)
{
	s->pi = b->reg_budget ? b->reg_period : 1;
	s->theta = an_regulated_theta(b, qmax);
	s->regulated = b->reg_budget && s->theta < s->pi;
	if (!s->regulated)
		s->theta = s->pi;
}

/* The longest step of any flow or of the broker's own RST replies. */
static uint64_t longest_step(const struct an_broker *b, const struct an_costs *costs, size_t n)
{
	uint64_t q = ctl_step(b);

	for (size_t j = 0; j < n; j++)
		q = max_u64(q, costs[j].Q);
	return q;
}

/* How much later than it became visible a packet may be stamped (struct ctx). */
static uint64_t stamp_late(const struct an_broker *b, uint64_t qmax)
{
	if (b->policy == AN_FP)
		return 0;
	return sadd(smul(b->tx_slots, b->plat.ingest_packet), max_u64(qmax, b->plat.batch_gap));
}

/* ... and the whole spread of stamps around visibility, for the tasks' jitter. */
static uint64_t stamp_spread(const struct an_broker *b, uint64_t qmax)
{
	if (b->policy == AN_FP)
		return 0;
	return sadd(stamp_late(b, qmax), b->plat.packet_overhead);
}

/* Sets up x for tasks t[0..n) of flows with costs[0..nflows): supply, pool, budget. */
static void ctx_init(struct ctx *x, const struct an_broker *b, const struct task *t, size_t n,
		     const struct an_costs *costs, size_t nflows)
{
	/* Every step counts for the regulator's loss, best-effort and RST ones too. */
	uint64_t qmax = longest_step(b, costs, nflows);

	x->b = b;
	x->t = t;
	x->n = n;
	x->hz = horizon_of(b);
	x->rst = ctl_step(b);
	x->pool = sadd(sadd(smul(sadd(b->tx_slots, 1), b->plat.ingest_packet),
			    b->plat.batch_gap), gap_share(b));
	x->late = stamp_late(b, qmax);
	x->work = b->work_budget ? b->work_budget : AN_DEFAULT_WORK;
	x->spent = false;
	make_supply(b, qmax, &x->s);
}

/* The tasks of a flow set: t[i] = flow i for i < n, then one credit-update task per
 * real-time stream flow (owner[] names its flow). A credit update is posted by its
 * receiver within basis[j] of its message's arrival (NULL: by the message's
 * deadline) and seen within ingest_latency; it is not policed, and the broker ranks
 * it with its flow. Returns the number of tasks. */
static size_t make_tasks(const struct an_flow *flows, size_t n, const struct an_broker *b,
			 const struct an_costs *costs, const unsigned *prio, const uint64_t *basis,
			 struct task *t, size_t *owner)
{
	/* Releases as the broker orders them: visible within ingest_latency of the kick,
	 * stamped within the spread of that (edf, fifo). */
	const uint64_t il = sadd(b->plat.ingest_latency,
				 stamp_spread(b, longest_step(b, costs, n)));
	size_t m = n;

	for (size_t i = 0; i < n; i++) {
		const struct an_flow *f = &flows[i];

		t[i] = (struct task){ .C = costs[i].C, .q = costs[i].q, .Q = costs[i].Q,
				      .T = f->period, .D = f->deadline, .J = sadd(f->jitter, il),
				      .prio = prio ? prio[i] : f->priority,
				      .be = f->best_effort };
		owner[i] = i;
	}
	for (size_t i = 0; i < n; i++) {
		const struct an_flow *f = &flows[i];
		uint64_t post = basis ? basis[i] : f->deadline;

		if (f->best_effort || f->type != AN_STREAM)
			continue;
		t[m] = (struct task){ .C = sadd(ctl_step(b), extras(b, 1, 1)), .q = ctl_step(b),
				      .Q = ctl_step(b), .T = f->period, .D = f->deadline,
				      .J = sadd(sadd(f->jitter, post), il), .prio = t[i].prio };
		owner[m++] = i;
	}
	return m;
}

/* ----------------------------------------------------------------------- fp ---- */

/* Is task j of higher or equal priority than task i? */
static bool hep(const struct ctx *x, size_t i, size_t j)
{
	return !x->t[j].be && x->t[j].prio <= x->t[i].prio;
}

/* Work of the tasks of higher or equal priority than i (i itself when `self`): each
 * task's C times count(task, u), or once each when count is NULL. */
static uint64_t hep_work(const struct ctx *x, size_t i, bool self, uint64_t u,
			 uint64_t (*count)(const struct task *, uint64_t))
{
	uint64_t w = 0;

	for (size_t j = 0; j < x->n; j++)
		if ((self || j != i) && hep(x, i, j))
			w = sadd(w, count ? smul(count(&x->t[j], u), x->t[j].C) : x->t[j].C);
	return w;
}

/* Blocking: the longest step of a lower-priority or best-effort task (or the
 * broker's RST reply), which may have started just before the critical instant, and
 * the pool of ingest and gap work (see struct ctx). */
static uint64_t fp_blocking(const struct ctx *x, size_t i)
{
	uint64_t blk = x->rst;

	for (size_t j = 0; j < x->n; j++)
		if (j != i && (x->t[j].be || x->t[j].prio > x->t[i].prio))
			blk = max_u64(blk, x->t[j].Q);
	return sadd(x->pool, blk);
}

/* Level-i active period: L = B + sum_{hep(i)} ceil((L + J_j)/T_j) C_j. 0, or 1 past
 * the horizon or the budget. */
static int fp_active_period(struct ctx *x, size_t i, uint64_t B, uint64_t *out)
{
	uint64_t L = inv(&x->s, sadd(B, hep_work(x, i, true, 0, NULL)));

	for (unsigned it = 0;; it++) {
		uint64_t nl;

		if (L > x->hz || it >= AN_MAX_POINTS || !pay(x))
			return 1;
		nl = inv(&x->s, sadd(B, hep_work(x, i, true, L, released_before)));
		if (nl == L)
			break;
		L = nl;
	}
	*out = L;
	return 0;
}

/* Unregulated: job k's last step starts once everything of higher priority released
 * up to and including its start, the k-1 earlier jobs and all but the last step of
 * this one are done:
 * S = B + (k-1)C_i + C_i - q_i + sum_{hp} (floor((S+J_j)/T_j) + 1) C_j.
 * *prev is S_{k-1} in, S_k out; *F the job's finish. */
static int fp_finish_dedicated(struct ctx *x, size_t i, uint64_t k, uint64_t B,
			       uint64_t *prev, uint64_t *F)
{
	const struct task *ti = &x->t[i];
	uint64_t x0 = sadd(B, sadd(smul(k - 1, ti->C), ti->C - ti->q));
	uint64_t S = sadd(x0, hep_work(x, i, false, 0, NULL));

	/* S_k >= S_{k-1} + C_i: a valid start from below the least fixed point. */
	if (k > 1)
		S = max_u64(S, sadd(*prev, ti->C));
	for (unsigned it = 0;; it++) {
		uint64_t nS;

		if (S > x->hz || it >= AN_MAX_POINTS || !pay(x))
			return 1;
		nS = sadd(x0, hep_work(x, i, false, S, released_upto));
		if (nS == S)
			break;
		S = nS;
	}
	*prev = S;
	*F = sadd(S, ti->q);
	return 0;
}

/* Regulated: a partial grant may split any step, and the broker may dispatch again
 * between the pieces, so no step is relied on to be non-preemptive: F = least t with
 * sbf(t) >= B + k C_i + sum_{hp} ceil((t+J_j)/T_j) C_j. *prev is F_{k-1} in, F_k out. */
static int fp_finish_regulated(struct ctx *x, size_t i, uint64_t k, uint64_t B,
			       uint64_t *prev, uint64_t *F)
{
	uint64_t base = sadd(B, smul(k, x->t[i].C));
	uint64_t t = inv(&x->s, sadd(base, hep_work(x, i, false, 0, NULL)));

	if (k > 1)
		t = max_u64(t, *prev);
	for (unsigned it = 0;; it++) {
		uint64_t nt;

		if (t > x->hz || it >= AN_MAX_POINTS || !pay(x))
			return 1;
		nt = inv(&x->s, sadd(base, hep_work(x, i, false, t, released_before)));
		if (nt == t)
			break;
		t = nt;
	}
	*prev = t;
	*F = t;
	return 0;
}

/* From the broker's sight of job k (its residence; the caller adds the ingest
 * latency before it): the first job was seen at 0 at the earliest, job k at least
 * (k-1)T_i - J_i after it. */
static uint64_t fp_job_response(const struct task *ti, uint64_t k, uint64_t F)
{
	if (k == 1)
		return F;
	return sadd(F, ti->J) - min_u64(sadd(F, ti->J), smul(k - 1, ti->T));
}

static int fp_task(struct ctx *x, size_t i, struct an_flow_result *r)
{
	uint64_t B = fp_blocking(x, i), L, jobs, prev = 0, worst = 0;
	unsigned worst_job = 1;

	r->bounded = false;
	r->schedulable = false;
	r->jobs = 0;
	r->worst_job = 0;
	r->busy_period = 0;
	if (fp_active_period(x, i, B, &L))
		return 1;
	r->busy_period = L;
	jobs = released_before(&x->t[i], L);
	if (jobs > AN_MAX_POINTS)
		return 1;
	/* Every job k of the active period (Davis, Burns, Bril and Lukkien 2007). */
	for (uint64_t k = 1; k <= jobs; k++) {
		uint64_t F, resp;
		int ret = x->s.regulated ? fp_finish_regulated(x, i, k, B, &prev, &F) :
					   fp_finish_dedicated(x, i, k, B, &prev, &F);

		if (ret || F > x->hz)
			return 1;
		resp = fp_job_response(&x->t[i], k, F);
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

/* ---------------------------------------------------------------------- edf ---- */

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
	if (d < t->D)
		return 0;
	return sadd(d - t->D, t->J) / t->T + 1;
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
	if (dem > (x->s.regulated ? an_sbf(x->s.pi, x->s.theta, t) : t) && t < a->first)
		a->first = t;
	return true;
}

/* Processor-demand test (Baruah 2005, limited preemption): for every absolute deadline
 * t in [0, L]: dbf(t) + B(t) <= sbf(t). Returns 0 (pass), 1 (fail at *at), 2 (too
 * many points or the budget). */
static int edf_demand(struct ctx *x, uint64_t L, uint64_t *at)
{
	struct demand_arg a = { .first = UINT64_MAX };

	for (size_t j = 0; j < x->n; j++)
		if (!x->t[j].be && !due_points(x, &x->t[j], 0, L, demand_at, &a))
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
						 released_upto(tj, t), due_by(tj, d)), tj->C));
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
			F = sadd(max_u64(S, sadd(a, ti->C - ti->q)), ti->q);
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

/* --------------------------------------------------------------------- fifo ---- */

/* FIFO: a message released x after the start of a busy period is copied once all work
 * released in [0, x] is, so it finishes by sbf^-1(B + sum_j (floor((x+J_j)/T_j)+1) C_j).
 * The bound max_x of that minus x holds for every flow alike. */
static bool fifo_at(struct ctx *x, uint64_t u, uint64_t B, uint64_t *worst)
{
	uint64_t w = B, F;

	if (!pay(x))
		return false;
	for (size_t l = 0; l < x->n; l++)
		if (!x->t[l].be)
			w = sadd(w, smul(released_upto(&x->t[l], u), x->t[l].C));
	F = inv(&x->s, w);
	if (F > x->hz)
		return false;
	*worst = max_u64(*worst, F - min_u64(F, u));
	return true;
}

static int fifo_bound(struct ctx *x, uint64_t B, uint64_t L, uint64_t *out)
{
	uint64_t worst = 0, points = 0;

	/* u = 0: every task's first job, released together at the critical instant. */
	if (!fifo_at(x, 0, B, &worst))
		return 1;
	for (size_t j = 0; j < x->n; j++) {
		const struct task *tj = &x->t[j];
		uint64_t u0;

		if (tj->be)
			continue;
		u0 = tj->J % tj->T ? tj->T - tj->J % tj->T : 0;
		for (uint64_t u = u0; u < L; u = sadd(u, tj->T)) {
			if (++points > AN_MAX_POINTS || !fifo_at(x, u, B, &worst))
				return 1;
			if (u == UINT64_MAX)
				break;
		}
	}
	*out = worst;
	return 0;
}

/* ----------------------------------------------------------------- results ---- */

static void finish_flow(const struct an_flow *f, const struct an_broker *b,
			struct an_flow_result *r)
{
	if (f->best_effort || !r->bounded) {
		r->schedulable = false;
		return;
	}
	/* The response is from the broker's sight of a message whose kick came at most
	 * ingest_latency before; the receiver runs at most notify_latency after. */
	r->latency = sadd(sadd(b->plat.ingest_latency, r->response), b->plat.notify_latency);
	r->schedulable = r->latency <= f->deadline;
}

/* One policy pass over the tasks: responses of the flows (tasks 0..nflows). Sets
 * *unbounded when some flow has no bound, and res->why for a reason other than the
 * horizon. */
static void run_policy(struct ctx *x, const struct an_flow *flows, size_t nflows,
		       struct an_result *res, struct an_flow_result *out, bool *unbounded)
{
	uint64_t L, blk;

	res->demand_ok = true;
	res->demand_fail_at = 0;
	for (size_t i = 0; i < nflows; i++) {
		struct an_costs c = out[i].costs;

		out[i] = (struct an_flow_result){ .costs = c };
	}
	switch (x->b->policy) {
	case AN_FP:
		for (size_t i = 0; i < nflows; i++)
			if (!flows[i].best_effort && fp_task(x, i, &out[i]))
				*unbounded = true;
		break;
	case AN_EDF: {
		int ret;

		blk = x->rst;
		for (size_t j = 0; j < x->n; j++)
			blk = max_u64(blk, x->t[j].Q);
		L = busy_period(x, sadd(x->pool, blk));
		if (L > x->hz) {
			*unbounded = true;
			break;
		}
		ret = edf_demand(x, L, &res->demand_fail_at);
		if (ret == 2) {
			*unbounded = true;
			break;
		}
		res->demand_ok = ret == 0;
		for (size_t i = 0; i < nflows; i++)
			if (!flows[i].best_effort && edf_task(x, i, L, &out[i]))
				*unbounded = true;
		break;
	}
	case AN_FIFO: {
		uint64_t worst;

		/* Arrival order for everyone, best-effort traffic included: a message may
		 * find any amount of best-effort data queued ahead of it, which nothing
		 * in the configuration bounds. */
		for (size_t j = 0; j < nflows; j++)
			if (flows[j].best_effort)
				res->why = "under fifo, best-effort data queues in arrival order "
					   "with real-time messages, and nothing bounds it";
		if (res->why) {
			*unbounded = true;
			break;
		}
		/* No step blocks: whatever runs at the start of a busy period came in it
		 * (the broker's RST replies are assumed away under fifo: see the docs). */
		L = busy_period(x, x->pool);
		if (L > x->hz || fifo_bound(x, x->pool, L, &worst)) {
			*unbounded = true;
			break;
		}
		for (size_t i = 0; i < nflows; i++) {
			if (flows[i].best_effort)
				continue;
			out[i].response = sadd(x->late, worst);
			out[i].bounded = true;
			out[i].busy_period = L;
		}
		break;
	}
	}
}

/* an_analyze's scratch: costs and credit-update bases per flow, tasks and their
 * flows (a flow and its credit updates: up to 2n + 1). */
struct scratch {
	struct an_costs *costs;
	uint64_t *basis;
	struct task *t;
	size_t *owner;
};

static int scratch_alloc(struct scratch *sc, size_t n)
{
	sc->costs = calloc(n ? n : 1, sizeof(*sc->costs));
	sc->basis = calloc(n ? n : 1, sizeof(*sc->basis));
	sc->t = calloc(2 * n + 1, sizeof(*sc->t));
	sc->owner = calloc(2 * n + 1, sizeof(*sc->owner));
	return sc->costs && sc->basis && sc->t && sc->owner ? 0 : -ENOMEM;
}

static void scratch_free(struct scratch *sc)
{
	free(sc->costs);
	free(sc->basis);
	free(sc->t);
	free(sc->owner);
}

/* Fresh results with the utilisation and the supply; true when the utilisation is
 * beyond the capacity (no busy period closes). */
static bool start_result(const struct ctx *x, struct an_result *res)
{
	long double u = 0;

	for (size_t j = 0; j < x->n; j++)
		if (!x->t[j].be)
			u += (long double)x->t[j].C / x->t[j].T;
	*res = (struct an_result){ 0 };
	res->status = AN_OK;
	res->demand_ok = true;
	res->utilization = (double)u;
	res->regulated = x->s.regulated;
	res->theta = x->s.regulated ? x->s.theta : 0;
	res->capacity = x->s.regulated ? (double)x->s.theta / (double)x->s.pi : 1.0;
	/* The margin only keeps a rounding error from calling a utilisation of exactly 1
	 * overloaded; a value that close to the capacity is decided by the horizon
	 * instead. */
	if (u > (long double)res->capacity * (1.0L + 1e-12L) || (x->s.regulated && x->s.theta == 0)) {
		res->status = AN_OVERLOAD;
		res->why = "utilization above the copy engine's capacity";
		return true;
	}
	return false;
}

/* Raises each stream flow's credit-update basis to its latency bound where the bound
 * says its messages may come later; true when some basis changed. */
static bool raise_bases(const struct an_flow *flows, size_t n,
			const struct an_flow_result *out, uint64_t *basis)
{
	bool changed = false;

	for (size_t i = 0; i < n; i++) {
		uint64_t want;

		if (flows[i].best_effort || flows[i].type != AN_STREAM)
			continue;
		want = out[i].bounded ? out[i].latency : UINT64_MAX / 4;
		if (want > basis[i]) {
			basis[i] = want;
			changed = true;
		}
	}
	return changed;
}

/* Credit updates come back after their message reached the receiver: assume each by
 * its message's deadline, and where a flow's bound says its messages may come later,
 * by that bound instead, until the assumption and the bounds agree (a monotone fixed
 * point: later credit updates only ever lengthen responses). Sets the status; true
 * when no bound may be relied on at all. */
static bool settle_credits(struct ctx *x, const struct an_flow *flows, size_t n,
			   struct scratch *sc, struct an_result *res, struct an_flow_result *out)
{
	bool unbounded = false, void_all = false;

	for (unsigned round = 0;; round++) {
		unbounded = false;
		run_policy(x, flows, n, res, out, &unbounded);
		for (size_t i = 0; i < n; i++)
			finish_flow(&flows[i], x->b, &out[i]);
		if (x->spent || !raise_bases(flows, n, out, sc->basis))
			break;
		if (round + 1 >= MAX_ROUNDS) {
			unbounded = void_all = true;
			res->why = "the credit updates' release jitter did not settle";
			break;
		}
		make_tasks(flows, n, x->b, sc->costs, NULL, sc->basis, sc->t, sc->owner);
	}
	/* Without a settled fixed point no bound can be relied on, not even one
	 * computed before the budget ran out. */
	if (x->spent) {
		unbounded = void_all = true;
		res->why = "the analysis work budget ran out before the busy periods closed "
			   "(a set close to saturation)";
	}
	if (unbounded) {
		res->status = AN_UNBOUNDED;
		if (!res->why)
			res->why = "a busy period exceeds the analysis horizon";
	}
	return void_all;
}

static void final_results(const struct an_flow *flows, size_t n, const struct an_broker *b,
			  bool void_all, struct an_result *res, struct an_flow_result *out)
{
	bool all = true;

	for (size_t i = 0; i < n; i++) {
		if (res->status == AN_OVERLOAD || void_all)
			out[i].bounded = false;
		finish_flow(&flows[i], b, &out[i]);
		if (!flows[i].best_effort && !out[i].schedulable)
			all = false;
	}
	res->schedulable = res->status == AN_OK && all && res->demand_ok;
}

int an_analyze(const struct an_flow *flows, size_t n, const struct an_broker *b,
	       struct an_result *res, struct an_flow_result *out)
{
	struct scratch sc;
	struct ctx x;
	bool void_all = false;
	size_t nt;
	int ret = an_validate(flows, n, b, NULL, NULL);

	if (ret)
		return ret;
	ret = scratch_alloc(&sc, n);
	if (ret)
		goto free;
	for (size_t i = 0; i < n; i++) {
		out[i] = (struct an_flow_result){ 0 };
		an_flow_costs(&flows[i], b, &sc.costs[i]);
		out[i].costs = sc.costs[i];
		sc.basis[i] = flows[i].deadline;
	}
	nt = make_tasks(flows, n, b, sc.costs, NULL, sc.basis, sc.t, sc.owner);
	ctx_init(&x, b, sc.t, nt, sc.costs, n);
	if (!start_result(&x, res))
		void_all = settle_credits(&x, flows, n, &sc, res, out);
	final_results(flows, n, b, void_all, res, out);
free:
	scratch_free(&sc);
	return ret;
}

/* The fp test of flow i with credit updates by their message's deadline. */
int an_fp_flow(const struct an_flow *flows, size_t n, const struct an_broker *b,
	       const struct an_costs *costs, const unsigned *prio, size_t i,
	       struct an_flow_result *r)
{
	struct an_broker bf = *b;
	struct task *t;
	size_t *owner, nt;
	struct ctx x;
	int ret = 1;

	if (i >= n || flows[i].best_effort || !flows[i].period)
		return -EINVAL;
	bf.policy = AN_FP; /* the fp test, whatever the broker's policy */
	b = &bf;
	t = calloc(2 * n + 1, sizeof(*t));
	owner = calloc(2 * n + 1, sizeof(*owner));
	if (!t || !owner) {
		free(t);
		free(owner);
		return -ENOMEM;
	}
	nt = make_tasks(flows, n, b, costs, prio, NULL, t, owner);
	ctx_init(&x, b, t, nt, costs, n);
	*r = (struct an_flow_result){ .costs = costs[i] };
	if (!(x.s.regulated && x.s.theta == 0))
		ret = fp_task(&x, i, r);
	if (ret)
		r->bounded = false;
	free(t);
	free(owner);
	return ret;
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
	struct an_broker bf = *b;
	struct task *t = NULL;
	size_t *owner = NULL, nt;
	unsigned nrt = 0;
	bool *done = NULL;
	struct ctx x;
	int ret = 0;

	bf.policy = AN_FP;
	b = &bf;

	for (size_t i = 0; i < n; i++)
		if (!flows[i].best_effort) {
			if (!flows[i].period || !flows[i].deadline)
				return -EINVAL;
			nrt++;
		}
	done = calloc(n ? n : 1, sizeof(*done));
	t = calloc(2 * n + 1, sizeof(*t));
	owner = calloc(2 * n + 1, sizeof(*owner));
	if (!done || !t || !owner) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		prio[i] = 0;
	/* Credit updates by their message's deadline: true of every flow once the
	 * assignment is found (each meets its deadline), which is all OPA claims. Task
	 * parameters do not depend on the order, only each task's priority does. */
	nt = make_tasks(flows, n, b, costs, prio, NULL, t, owner);
	ctx_init(&x, b, t, nt, costs, n);
	/* Audsley: fill the levels from the lowest up. At each level try the unassigned
	 * flows in configuration order; a flow fits when it meets its deadline with every
	 * other unassigned flow above it. The fp test depends only on which flows are
	 * above and which below, never on their order, so this is optimal. */
	for (unsigned level = nrt; level >= 1; level--) {
		bool found = false;

		for (size_t i = 0; i < n && !found; i++) {
			struct an_flow_result r = { 0 };

			if (flows[i].best_effort || done[i])
				continue;
			for (size_t j = 0; j < n; j++)
				if (!flows[j].best_effort && !done[j])
					prio[j] = j == i ? level : level - 1;
			for (size_t j = 0; j < nt; j++)
				t[j].prio = prio[owner[j]];
			if (x.s.regulated && x.s.theta == 0)
				continue;
			if (fp_task(&x, i, &r)) {
				if (x.spent) {
					ret = -ETIME;
					goto out;
				}
				continue;
			}
			finish_flow(&flows[i], b, &r);
			if (r.schedulable) {
				done[i] = true;
				prio[i] = level;
				found = true;
			}
		}
		if (!found) {
			ret = -ESRCH;
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (flows[i].best_effort)
			prio[i] = 0;
out:
	free(done);
	free(t);
	free(owner);
	return ret;
}
