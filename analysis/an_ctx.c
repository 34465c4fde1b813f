/* The shared analysis context: the tasks a flow set puts on the broker, the supply
 * they run on, the blocking pool, the horizon and the work budget (an_internal.h). */
#include "analysis.h"
#include "an_arith.h"
#include "an_internal.h"

static uint64_t horizon_of(const struct an_broker *b)
{
	/* Kept far below UINT64_MAX, so that a saturated sum always exceeds it. */
	if (!b->horizon)
		return AN_DEFAULT_HORIZON_NS;
	return min_u64(b->horizon, UINT64_MAX / 4);
}

/* Least t with sbf(t) >= base + sum over the real-time tasks of released_before(t) C_j:
 * the synchronous busy period. Returns UINT64_MAX when it passes the horizon or the
 * budget. */
uint64_t an_busy_period(struct ctx *x, uint64_t base)
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

static void make_supply(const struct an_broker *b, struct supply *s)
{
	s->regulated = b->reg_budget != 0;
	s->pi = s->regulated ? b->reg_period : 1;
	s->theta = s->regulated ? an_reg_served(b) : 1;
	s->vhu = b->vhu;
}

/* The longest step of any flow or of the broker's own RST replies. */
static uint64_t longest_step(const struct an_broker *b, const struct an_costs *costs, size_t n)
{
	uint64_t q = an_ctl_step(b);

	for (size_t j = 0; j < n; j++)
		q = max_u64(q, costs[j].Q);
	return q;
}

/* How much later than it became visible a packet may be stamped (struct ctx): the
 * rest of a pass, then a step, a batch gap or (regulated) a throttle before the next
 * pass. */
static uint64_t stamp_late(const struct an_broker *b, uint64_t qmax)
{
	/* The loop's turn after a run: its gap, a run-time change's apply step and the
	 * vhost-user work of at most a full bucket per cell (an_vhu.c). */
	uint64_t wait = max_u64(qmax, sadd(sadd(b->plat.batch_gap, b->plat.change_apply),
					   an_vhu_demand(&b->vhu, 0)));

	if (b->policy == AN_FP)
		return 0;
	if (b->reg_budget)
		wait = max_u64(wait, sadd(b->reg_period, b->plat.ingest_latency));
	return sadd(smul(b->tx_slots, b->plat.ingest_packet), wait);
}

/* ... and the whole spread of stamps around visibility, for the tasks' jitter. */
static uint64_t stamp_spread(const struct an_broker *b, uint64_t qmax)
{
	if (b->policy == AN_FP)
		return 0;
	return sadd(stamp_late(b, qmax), b->plat.packet_overhead);
}

/* The ingest a window holds beyond its tasks' packets: every packet the free TX
 * slots hold and the one the blocking step's completion lets in. None with the
 * cells' budgets: their ingest stream (an_make_tasks) charges every chain any pass
 * takes in the window, those included. */
static uint64_t slot_ingest(const struct an_broker *b)
{
	if (b->budget_period)
		return 0;
	return smul(sadd(b->tx_slots, 1), b->plat.ingest_packet);
}

/* Sets up x for tasks t[0..n) of flows with costs[0..nflows): supply, pool, budget. */
void an_ctx_init(struct ctx *x, const struct an_broker *b, const struct task *t, size_t n,
		 const struct an_costs *costs, size_t nflows)
{
	/* Every step counts for the regulator's loss, best-effort and RST ones too. */
	uint64_t qmax = longest_step(b, costs, nflows);

	x->b = b;
	x->t = t;
	x->n = n;
	x->hz = horizon_of(b);
	x->rst_blk = an_ctl_step(b);
	x->rst = sadd(x->rst_blk, an_reg_surcharge(b, AN_HDR_BYTES));
	x->pool = sadd(sadd(slot_ingest(b), b->plat.batch_gap),
		       sadd(an_gap_share(b), an_reg_stall(b)));
	/* At most one run-time change is applied per window (docs/analysis.md). */
	x->pool = sadd(x->pool, b->plat.change_apply);
	x->late = stamp_late(b, qmax);
	x->work = b->work_budget ? b->work_budget : AN_DEFAULT_WORK;
	x->spent = false;
	make_supply(b, &x->s);
}

/* What each flow's own conforming ends leave out of the ride tasks t[n..m)
 * (docs/analysis.md, "Own ends"): their short pieces always; the credit updates of
 * stream flows below it only with the flows' own priorities (prio NULL), which
 * from_config compared when it counted them; and their vhost-user buckets. */
static void own_cuts(const struct an_flow *flows, size_t n, const struct an_broker *b,
		     const unsigned *prio, struct task *t, size_t m)
{
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < 2; k++)
			t[i].vhu_cut[k] = min_u64(flows[i].own_vhu[k], b->vhu.work[k]);
		for (size_t e = 0; e < AN_OWN_MAX; e++) {
			const struct an_own *o = &flows[i].own[e];

			if (o->ride >= n || flows[i].best_effort)
				continue;
			for (size_t k = n; k < m; k++) {
				if (t[k].ride1 != o->ride + 1)
					continue;
				t[i].cut_task1[e] = k + 1;
				t[i].cut[e] = min_u64(t[k].C, an_budget_steps(b, prio ? 0 : o->ctrl,
									     o->pieces));
			}
		}
	}
}

/* The tasks of a flow set: t[i] = flow i for i < n, then one credit-update task per
 * real-time stream flow (owner[] names its flow; none when the cells' budgets hold
 * them, an_credits_in_budgets), then, when b charges the cells'
 * budgets, one task per flow their control packets and short pieces ride and one
 * for their ingest (owner AN_OWNER_NONE). A credit update is posted by its
 * receiver within basis[j] of its message's arrival (NULL: by the message's
 * deadline) and seen within ingest_latency; it is not policed, and the broker ranks
 * it with its flow. Returns the number of tasks. */
size_t an_make_tasks(const struct an_flow *flows, size_t n, const struct an_broker *b,
		     const struct an_costs *costs, const unsigned *prio, const uint64_t *basis,
		     struct task *t, size_t *owner)
{
	/* Releases as the broker orders them: visible within ingest_latency of the kick,
	 * stamped within the spread of that (edf, fifo). */
	const uint64_t il = sadd(b->plat.ingest_latency,
				 stamp_spread(b, longest_step(b, costs, n)));
	/* A credit update charges the regulator its header. */
	const uint64_t hdr = an_reg_surcharge(b, AN_HDR_BYTES);
	size_t m = n;

	for (size_t i = 0; i < n; i++) {
		const struct an_flow *f = &flows[i];

		t[i] = (struct task){ .C = sadd(costs[i].C, an_reg_surcharge(b, costs[i].bytes)),
				      .q = costs[i].q,
				      .Q = sadd(costs[i].Q, an_reg_surcharge(b, costs[i].Qbytes)),
				      .Qb = costs[i].Q,
				      .T = f->period, .D = f->deadline, .J = sadd(f->jitter, il),
				      .prio = prio ? prio[i] : f->priority,
				      .be = f->best_effort };
		owner[i] = i;
	}
	for (size_t i = 0; i < n; i++) {
		const struct an_flow *f = &flows[i];
		uint64_t post = basis ? basis[i] : f->deadline;

		if (f->best_effort || f->type != AN_STREAM || an_credits_in_budgets(b))
			continue;
		t[m] = (struct task){ .C = sadd(sadd(an_ctl_step(b), an_extras(b, 1, 1)), hdr),
				      .q = an_ctl_step(b), .Q = sadd(an_ctl_step(b), hdr),
				      .Qb = an_ctl_step(b),
				      .T = f->period, .D = f->deadline,
				      .J = sadd(sadd(f->jitter, post), il), .prio = t[i].prio };
		owner[m++] = i;
	}
	if (!b->budget_period)
		return m;
	/* The cells' budgets: a window of length t overlaps at most ceil(t / P) + 1
	 * budget periods, which T = J = P counts. Control packets and short pieces
	 * ride their flow: its priority (the highest of all under an assignment
	 * being tried, where the cell's highest flow is not known), its deadline. */
	for (size_t i = 0; i < n; i++) {
		uint64_t w = an_ride_work(b, &flows[i]);

		if (!w || flows[i].best_effort)
			continue;
		t[m] = (struct task){ .C = w, .q = an_ctl_step(b), .Q = an_ctl_step(b),
				      .Qb = an_ctl_step(b),
				      .T = b->budget_period, .D = flows[i].deadline,
				      .J = b->budget_period, .prio = prio ? 0 : t[i].prio,
				      .ride1 = i + 1 };
		owner[m++] = AN_OWNER_NONE;
	}
	own_cuts(flows, n, b, prio, t, m);
	{
		uint64_t w = an_ingest_work(b);

		t[m] = (struct task){ .C = w, .q = w, .Q = w, .Qb = w, .T = b->budget_period, .D = 0,
				      .J = b->budget_period, .prio = 0, .always = true };
		owner[m++] = AN_OWNER_NONE;
	}
	return m;
}
