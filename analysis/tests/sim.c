/* The broker dispatch simulator: see sim.h. Deliberately simple and direct: it scans
 * all flows at every decision, which is plenty fast for the test sizes. */
#include "sim.h"

#include <errno.h>
#include <stdlib.h>

#define NS 1000000000ull

static uint64_t copy_ns(const struct an_broker *b, uint64_t bytes)
{
	unsigned __int128 x = (unsigned __int128)bytes * NS;

	return (uint64_t)((x + b->plat.copy_bandwidth - 1) / b->plat.copy_bandwidth);
}

/* sim_steps, and in hdr[] (when not NULL) the steps that carry a piece's header. */
static int steps_hdr(const struct an_flow *f, const struct an_broker *b, uint64_t *cost,
		     uint64_t *bytes, bool *ends, bool *hdr, size_t max)
{
	const struct an_platform *p = &b->plat;
	size_t n = 0;

	if (f->explicit_costs) {
		/* One TX packet: all but the last step in pieces of at most max_step, then
		 * last_step. */
		uint64_t rest = f->cost - f->last_step;

		while (rest) {
			uint64_t s = rest < f->max_step ? rest : f->max_step;

			if (n == max)
				return -ENOSPC;
			cost[n] = s;
			bytes[n] = 0;
			if (hdr)
				hdr[n] = false;
			ends[n++] = false;
			rest -= s;
		}
		if (n == max)
			return -ENOSPC;
		cost[n] = f->last_step;
		bytes[n] = 0;
		if (hdr)
			hdr[n] = false;
		ends[n++] = true;
		return (int)n;
	}

	/* Packets of at most packet_size; each delivered in pieces of at most one RX
	 * buffer's payload, the piece's header charged with its first step and its
	 * packet overhead paid with its last; each piece copied in chunk-sized steps. */
	for (uint64_t off = 0; off < f->size; off += f->packet_size) {
		uint64_t pk = f->size - off < f->packet_size ? f->size - off : f->packet_size;

		for (uint64_t po = 0; po < pk; po += f->rx_payload) {
			uint64_t pc = pk - po < f->rx_payload ? pk - po : f->rx_payload;

			for (uint64_t c = 0; c < pc; c += b->chunk) {
				uint64_t len = pc - c < b->chunk ? pc - c : b->chunk;

				if (n == max)
					return -ENOSPC;
				cost[n] = p->chunk_overhead + copy_ns(b, len);
				bytes[n] = len + (c == 0 ? AN_HDR_BYTES : 0);
				if (hdr)
					hdr[n] = c == 0;
				ends[n] = false;
				if (c + len == pc)
					cost[n] += p->packet_overhead;
				n++;
			}
		}
		ends[n - 1] = true;
	}
	return (int)n;
}

int sim_steps(const struct an_flow *f, const struct an_broker *b, uint64_t *cost,
	      uint64_t *bytes, bool *ends, size_t max)
{
	return steps_hdr(f, b, cost, bytes, ends, NULL, max);
}

struct job {
	int64_t kick;     /* the sender's kick (a credit update: the receiver's) */
	int64_t vis;      /* visible to the broker */
	int64_t stamp;    /* start of the ingest pass that took it */
	uint64_t seq;     /* ingest order */
	bool in;          /* ingested */
};

/* A FIFO of jobs: v[head..len) are live. */
struct jq {
	struct job *v;
	size_t head, len, cap;
};

static int jq_push(struct jq *q, struct job j)
{
	if (q->len == q->cap) {
		size_t ncap = q->cap ? 2 * q->cap : 16;
		struct job *nv = realloc(q->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		q->v = nv;
		q->cap = ncap;
	}
	q->v[q->len++] = j;
	return 0;
}

static struct job *jq_front(struct jq *q)
{
	return q->head < q->len ? &q->v[q->head] : NULL;
}

/* A header-only step in progress. */
struct hstep {
	bool started, hdr;
	uint64_t rem_work, rem_bytes;
};

struct sflow {
	bool in;
	uint64_t *cost, *bytes;
	bool *ends, *hdrs;
	size_t nsteps;
	uint64_t npk;          /* TX packets per message */
	struct jq msgs, credits, rides;
	/* Message generation (one job ahead of the clock). */
	uint64_t k;
	int64_t nominal, last_kick, last_vis, last_cvis;
	bool exhausted;
	/* Progress of the head message, of the head credit update and of the head
	 * control packet of the budgets. */
	size_t step;
	bool started;
	bool hdr;              /* the head step's header is not charged yet */
	uint64_t rem_work, rem_bytes;
	struct hstep cst, rst;
};

/* Regulator, as platform/regulator.h describes it: periods start at phase + k*period;
 * a request gets min(want, budget left); unused budget is lost at the boundary. */
struct reg {
	bool on;
	uint64_t budget, period, next, used;
};

static void reg_tick(struct reg *r, uint64_t t)
{
	if (!r->on)
		return;
	while (t >= r->next) {
		r->next += r->period;
		r->used = 0;
	}
}

struct sim {
	const struct sim_config *c;
	const struct an_broker *b;
	struct sflow *fl;
	struct sim_flow_stats *st;
	uint64_t rng;
	uint64_t t;
	uint64_t seq;
	uint64_t rt_in;        /* real-time packets in the broker (TX slots they hold) */
	uint64_t junk_in;      /* hostile packets ingested (never served) */
	uint64_t junk_wait;    /* hostile packets posted, not yet ingested */
	bool first_pass;
	uint64_t run;          /* steps since the broker last entered dp_run */
	/* The cells' budgets (b->budget_period): the next period's start, and
	 * whether this period's ingest budget was spent yet. */
	int64_t bud_next;
	bool bud_spent;
	uint64_t bud_rt;       /* chains of real-time messages ingested this period */
	uint64_t bud_ctl;      /* control packets and short pieces per period */
	int ret;
};

static uint64_t rnd(struct sim *s)
{
	/* xorshift64* */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ull;
}

static uint64_t upto(struct sim *s, uint64_t hi)
{
	return rnd(s) % (hi + 1);
}

/* Generates flow j's next message; false when there is none (SIM_RANDOM past
 * until_ns). */
static bool gen(struct sim *s, size_t j)
{
	const struct an_flow *f = &s->c->flows[j];
	struct sflow *sf = &s->fl[j];
	const int64_t il = (int64_t)s->b->plat.ingest_latency;
	struct job jb = { 0 };

	if (sf->exhausted)
		return false;
	if (s->c->pattern == SIM_CRITICAL) {
		/* The first kicked ingest_latency before 0 and seen at 0; the next ones as
		 * early as the sender's jitter allows, and seen at once. */
		int64_t a = (int64_t)(sf->k * f->period) - (int64_t)f->jitter - il;

		jb.kick = sf->k ? (a > -il ? a : -il) : -il;
		jb.vis = jb.kick > 0 ? jb.kick : 0;
	} else {
		if (sf->k)
			sf->nominal += (int64_t)(f->period +
						 (rnd(s) % 4 ? 0 : upto(s, f->period / 2)));
		jb.kick = sf->nominal + (int64_t)(sf->k || !s->c->exact_first ? upto(s, f->jitter) : 0);
		if (sf->k && jb.kick < sf->last_kick)
			jb.kick = sf->last_kick;
		jb.vis = jb.kick + (int64_t)(sf->k || !s->c->exact_first ? upto(s, (uint64_t)il) : 0);
		if (sf->k && jb.vis < sf->last_vis)
			jb.vis = sf->last_vis;
		if (jb.vis >= (int64_t)s->c->until_ns) {
			sf->exhausted = true;
			return false;
		}
	}
	sf->last_kick = jb.kick;
	sf->last_vis = jb.vis;
	sf->k++;
	return jq_push(&sf->msgs, jb) == 0;
}

/* The last generated message of flow j, visible or not: one always lies ahead. */
static const struct job *lookahead(struct sim *s, size_t j)
{
	struct sflow *sf = &s->fl[j];

	if (sf->msgs.len == sf->msgs.head || sf->msgs.v[sf->msgs.len - 1].in)
		if (!gen(s, j))
			return NULL;
	return &sf->msgs.v[sf->msgs.len - 1];
}

/* Control packets and short pieces per budget period riding flow j: its budgets,
 * less what the conforming ends of flow own1 - 1 leave out of them. */
static uint64_t ride_count(const struct sim_config *c, size_t j)
{
	const struct an_flow *f = &c->flows[j];
	uint64_t m = f->budget_ctrl + f->budget_pieces;

	if (!c->own1 || c->own1 > c->n)
		return m;
	for (size_t e = 0; e < AN_OWN_MAX; e++) {
		const struct an_own *o = &c->flows[c->own1 - 1].own[e];
		uint64_t cut = o->ctrl + o->pieces;

		if (o->ride == j && (o->ctrl || o->pieces))
			m -= cut < m ? cut : m;
	}
	return m;
}

/* Flow j's control packets and short pieces of one budget period, all visible at
 * its start: header-only steps at the flow's priority and deadline. */
static void ride_jobs(struct sim *s, int64_t at)
{
	for (size_t j = 0; j < s->c->n; j++) {
		uint64_t m = ride_count(s->c, j);

		if (!s->fl[j].in)
			continue;
		for (uint64_t k = 0; k < m; k++) {
			struct job jb = { .kick = at, .vis = at };

			if (jq_push(&s->fl[j].rides, jb))
				s->ret = -ENOMEM;
		}
	}
}

/* A new budget period every b->budget_period from bud_next: every cell may spend
 * its budgets again. The hostile cells spend them at once: the ingest budget on
 * chains the broker drops (they hold no slot), the rest on control packets. */
static void budget_tick(struct sim *s, int64_t now)
{
	if (!s->b->budget_period)
		return;
	while (now >= s->bud_next) {
		s->bud_spent = false;
		s->bud_rt = 0;
		ride_jobs(s, s->bud_next);
		s->bud_next += (int64_t)s->b->budget_period;
	}
}

/* One ingest pass at s->t: every packet visible at its start, at ingest_packet each,
 * stamped with that start. */
static void pass(struct sim *s)
{
	const int64_t now = (int64_t)s->t;
	uint64_t count = 0, rt = 0;

	budget_tick(s, now);
	if (s->b->budget_period && !s->bud_spent) {
		s->bud_spent = true;
		if (s->b->budget_ingest > s->c->budget_rt)
			count += s->b->budget_ingest - s->c->budget_rt;
	}

	for (size_t j = 0; j < s->c->n; j++) {
		struct sflow *sf = &s->fl[j];
		const struct job *la;

		if (!sf->in)
			continue;
		/* Generate every message visible by now (and one beyond). */
		while ((la = lookahead(s, j)) && la->vis <= now && gen(s, j))
			;
		for (size_t q = sf->msgs.head; q < sf->msgs.len; q++) {
			struct job *jb = &sf->msgs.v[q];

			if (jb->in || jb->vis > now)
				continue;
			jb->in = true;
			jb->stamp = now;
			jb->seq = s->seq++;
			count += sf->npk;
			rt += sf->npk;
			s->rt_in += sf->npk;
		}
		for (size_t q = sf->credits.head; q < sf->credits.len; q++) {
			struct job *jb = &sf->credits.v[q];

			if (jb->in || jb->vis > now)
				continue;
			jb->in = true;
			jb->stamp = now;
			jb->seq = s->seq++;
			count++;
			rt++;
			s->rt_in++;
		}
		/* Chains of the ingest budget too; they hold no slot. */
		for (size_t q = sf->rides.head; q < sf->rides.len; q++) {
			struct job *jb = &sf->rides.v[q];

			if (jb->in || jb->vis > now)
				continue;
			jb->in = true;
			jb->stamp = now;
			jb->seq = s->seq++;
			count++;
		}
	}
	/* The real-time messages' chains this period, within their part of the budget
	 * (the broker would hold the rest back). The control packets are the budgets'
	 * by construction, one period's worth per period (those of the period
	 * containing 0 may be taken in the next). */
	if (s->b->budget_period) {
		s->bud_rt += rt;
		if (s->bud_rt + s->bud_ctl > s->c->budget_rt)
			s->ret = -ERANGE;
	}
	/* Critical: the hostile cell had every slot the real-time packets leave free
	 * filled before time 0. */
	if (s->first_pass && s->c->pattern == SIM_CRITICAL && s->b->tx_slots > s->rt_in &&
	    !s->b->budget_period)
		s->junk_wait = s->b->tx_slots - s->rt_in;
	s->first_pass = false;
	count += s->junk_wait;
	s->junk_in += s->junk_wait;
	s->junk_wait = 0;
	s->t += count * s->b->plat.ingest_packet;
}

/* A TX packet left the broker: its slot is free, and the hostile cell takes it. */
static void slot_freed(struct sim *s)
{
	if (s->rt_in)
		s->rt_in--;
	if (!s->b->budget_period && s->rt_in + s->junk_in + s->junk_wait < s->b->tx_slots &&
	    (s->c->pattern == SIM_CRITICAL || rnd(s) % 2))
		s->junk_wait++;
}

static void sort_key(const struct sim *s, size_t j, const struct job *jb, int64_t *k1,
		     int64_t *k2)
{
	const struct an_flow *f = &s->c->flows[j];

	switch (s->b->policy) {
	case AN_FP:
		*k1 = (int64_t)s->c->prio[j];
		*k2 = 0;
		break;
	case AN_EDF:
		*k1 = 0;
		*k2 = jb->stamp + (int64_t)f->deadline;
		break;
	default:
		*k1 = 0;
		*k2 = jb->stamp;
		break;
	}
}

/* Runs one step of work of `work` ns charging `bytes` to the regulator (*hdr: they
 * start with a header not charged yet). Returns true when the step is finished;
 * false when only a partial grant ran (rem_* updated) or the regulator made the
 * broker wait. Like dp_copy_step's regulate, a step that cannot get its header and
 * one byte (the header alone for a header-only step) forfeits the period's rest. */
static bool do_step(struct sim *s, struct reg *rg, uint64_t *rem_work, uint64_t *rem_bytes,
		    bool *hdr)
{
	uint64_t piece;

	if (rg->on && *rem_bytes) {
		uint64_t left = rg->budget - rg->used;
		uint64_t need = *hdr ? AN_HDR_BYTES + (*rem_bytes > AN_HDR_BYTES) : 1;
		uint64_t g = *rem_bytes < left ? *rem_bytes : left;

		if (left < need) {
			rg->used = rg->budget;
			g = 0;
		}
		if (!g) {
			/* dp_run returns; the daemon sleeps until the replenishment (its own
			 * work assumed within the wait), wakes reg_wake after it and starts a
			 * new run. */
			s->t = rg->next + s->c->reg_wake;
			s->run = 0;
			return false;
		}
		rg->used += g;
		if (g < *rem_bytes) {
			/* A partial piece: its own chunk overhead plus the copy of g bytes;
			 * the rest keeps one chunk overhead for later. */
			uint64_t co = s->b->plat.chunk_overhead;
			uint64_t cp = copy_ns(s->b, g);

			if (*rem_work < co)
				co = *rem_work;
			if (cp > *rem_work - co)
				cp = *rem_work - co;
			piece = co + cp;
			*rem_work -= cp;
			*rem_bytes -= g;
			*hdr = false;
			s->t += piece;
			s->run++;
			return false;
		}
	}
	s->t += *rem_work;
	s->run++;
	return true;
}

/* The bulk flow's step when nothing real-time is ready: true when one ran. Like
 * regulate_be, it takes what the reserve leaves, partially, and forfeits nothing. */
static bool bulk_step(struct sim *s, struct reg *rg)
{
	uint64_t want = AN_HDR_BYTES + s->c->bulk_bytes, g = want;

	if (!s->c->bulk)
		return false;
	if (rg->on) {
		uint64_t left = rg->budget - rg->used;

		left = left > s->b->reg_reserve ? left - s->b->reg_reserve : 0;
		if (left < AN_HDR_BYTES + 1)
			return false;
		g = want < left ? want : left;
		rg->used += g;
	}
	s->t += s->b->plat.chunk_overhead + copy_ns(s->b, g - AN_HDR_BYTES) +
		s->b->plat.packet_overhead;
	s->run++;
	return true;
}

/* The cells' vhost-user work (b->vhu, analysis/an_vhu.c): per kind a token bucket of
 * work (all cells' buckets together) and, when the kind has one, the broker-wide
 * bucket it passes through as well; each full at start under SIM_CRITICAL (half
 * full at random otherwise), refilled at work per period; at every batch gap the loop
 * takes as much as both hold (hostile cells keep their sockets full). Levels are
 * kept times the period (exact integers). */
struct vhu_sim {
	unsigned __int128 lvl[2], cap[2];
	uint64_t at;
};

static void vhu_fill(unsigned __int128 *lvl, uint64_t work, uint64_t period, uint64_t dt)
{
	unsigned __int128 top = (unsigned __int128)work * period;

	*lvl += (unsigned __int128)dt * work;
	if (*lvl > top)
		*lvl = top;
}

static uint64_t vhu_take(struct vhu_sim *v, const struct an_vhu *b, uint64_t t)
{
	uint64_t spend = 0;

	for (int k = 0; k < 2; k++) {
		unsigned __int128 got;
		bool capped = b->cap_work[k] && b->cap_period[k];

		if (!b->work[k] || !b->period[k])
			continue;
		vhu_fill(&v->lvl[k], b->work[k], b->period[k], t - v->at);
		got = v->lvl[k] / b->period[k];
		if (capped) {
			unsigned __int128 c;

			vhu_fill(&v->cap[k], b->cap_work[k], b->cap_period[k], t - v->at);
			c = v->cap[k] / b->cap_period[k];
			if (c < got)
				got = c;
			v->cap[k] -= got * b->cap_period[k];
		}
		v->lvl[k] -= got * b->period[k];
		spend += (uint64_t)got;
	}
	v->at = t;
	return spend;
}

int sim_run(const struct sim_config *c, struct sim_flow_stats *st)
{
	struct vhu_sim vs = { { 0, 0 }, { 0, 0 }, 0 };
	const struct an_broker *b = c->b;
	const struct an_platform *pl = &b->plat;
	struct sim s = { .c = c, .b = b, .st = st, .rng = c->seed | 1, .first_pass = true };
	struct reg rg = { 0 };
	int ret = 0;

	s.fl = calloc(c->n ? c->n : 1, sizeof(*s.fl));
	if (!s.fl)
		return -ENOMEM;
	for (size_t j = 0; j < c->n; j++) {
		const struct an_flow *f = &c->flows[j];
		struct sflow *sf = &s.fl[j];
		size_t maxsteps;
		int ns;

		st[j] = (struct sim_flow_stats){ 0 };
		sf->in = !f->best_effort && (!c->include || c->include[j]);
		if (!sf->in)
			continue;
		/* At most one step per chunk of every piece, plus one per piece and per
		 * packet for short last chunks. */
		maxsteps = f->explicit_costs ?
			(size_t)(f->cost / f->max_step + 2) :
			(size_t)(f->size / b->chunk + 2 * (f->size / f->rx_payload) +
				 2 * (f->size / f->packet_size) + 4);
		sf->cost = calloc(maxsteps, sizeof(uint64_t));
		sf->bytes = calloc(maxsteps, sizeof(uint64_t));
		sf->ends = calloc(maxsteps, sizeof(bool));
		sf->hdrs = calloc(maxsteps, sizeof(bool));
		if (!sf->cost || !sf->bytes || !sf->ends || !sf->hdrs) {
			ret = -ENOMEM;
			goto out;
		}
		ns = steps_hdr(f, b, sf->cost, sf->bytes, sf->ends, sf->hdrs, maxsteps);
		if (ns <= 0) {
			ret = -EINVAL;
			goto out;
		}
		sf->nsteps = (size_t)ns;
		for (size_t q = 0; q < sf->nsteps; q++)
			sf->npk += sf->ends[q];
		if (c->pattern == SIM_RANDOM)
			sf->nominal = (int64_t)(c->phase ? c->phase[j] : upto(&s, f->period - 1));
		/* Critical: the messages before time 0 (one period and more before the
		 * first) had their credit updates posted as late as allowed, at their
		 * deadlines, D - k T; the later ones come as early as they can. */
		for (uint64_t k = 1; c->pattern == SIM_CRITICAL && f->type == AN_STREAM &&
				     !b->budget_period && k * f->period <= f->deadline; k++) {
			struct job cj = { .kick = (int64_t)(f->deadline - k * f->period) };

			cj.vis = cj.kick;
			if (jq_push(&sf->credits, cj)) {
				ret = -ENOMEM;
				goto out;
			}
		}
		if (sf->credits.len)
			sf->last_cvis = sf->credits.v[0].vis;
	}
	if (c->pattern == SIM_RANDOM) {
		s.junk_wait = b->budget_period ? 0 : upto(&s, b->tx_slots / 2);
		s.run = upto(&s, b->run_steps);
	} else {
		s.run = b->run_steps; /* a batch gap comes first */
	}
	if (b->budget_period) {
		/* The period containing 0 spends its budgets at 0; critical: the next
		 * one begins 1 ns later (two periods in a window of any length > 0). */
		s.bud_next = c->pattern == SIM_CRITICAL ? 1 :
			     1 + (int64_t)upto(&s, b->budget_period - 1);
		ride_jobs(&s, 0);
		for (size_t j = 0; j < c->n; j++)
			if (s.fl[j].in)
				s.bud_ctl += ride_count(c, j);
	}
	for (int k = 0; k < 2; k++) {
		unsigned div = c->pattern == SIM_CRITICAL ? 1 : 2;

		if (b->vhu.work[k] && b->vhu.period[k])
			vs.lvl[k] = (unsigned __int128)b->vhu.work[k] * b->vhu.period[k] / div;
		if (b->vhu.cap_work[k] && b->vhu.cap_period[k])
			vs.cap[k] = (unsigned __int128)b->vhu.cap_work[k] * b->vhu.cap_period[k] /
				    div;
	}
	if (b->reg_budget) {
		rg.on = true;
		rg.budget = b->reg_budget;
		rg.period = b->reg_period;
		rg.next = c->reg_phase;
		rg.used = c->reg_used;
	}
	/* The blocking step started just before 0: charged then, runs to its end, and
	 * frees its packet's slot. */
	if (c->block_ns) {
		if (rg.on) {
			uint64_t left = rg.budget - rg.used;

			rg.used += c->block_bytes < left ? c->block_bytes : left;
		}
		s.t = c->block_ns;
		s.run++;
		slot_freed(&s);
	}

	for (;;) {
		size_t best = SIZE_MAX;
		int best_credit = 0;
		int64_t bk1 = 0, bk2 = 0;
		uint64_t bseq = 0;
		struct sflow *sf;
		const struct an_flow *f;

		if (s.t > c->limit_ns) {
			ret = -ETIME;
			break;
		}
		if (s.ret) {
			ret = s.ret;
			break;
		}
		reg_tick(&rg, s.t);
		pass(&s);
		if (b->run_steps && s.run >= b->run_steps) {
			/* dp_run returns after run_steps steps; the daemon's loop runs, and
			 * the next dp_run starts with a pass. */
			s.t += pl->batch_gap;
			s.t += vhu_take(&vs, &b->vhu, s.t);
			s.run = 0;
			reg_tick(&rg, s.t);
			pass(&s);
		}
		for (size_t j = 0; j < c->n; j++) {
			for (int cr = 0; cr < 3; cr++) {
				struct job *jb = jq_front(cr == 2 ? &s.fl[j].rides :
							  cr ? &s.fl[j].credits : &s.fl[j].msgs);
				int64_t k1, k2;

				if (!s.fl[j].in || !jb || !jb->in)
					continue;
				sort_key(&s, j, jb, &k1, &k2);
				if (best == SIZE_MAX || k1 < bk1 || (k1 == bk1 && k2 < bk2) ||
				    (k1 == bk1 && k2 == bk2 && jb->seq < bseq)) {
					best = j;
					best_credit = cr;
					bk1 = k1;
					bk2 = k2;
					bseq = jb->seq;
				}
			}
		}
		if (best == SIZE_MAX) {
			/* Idle: the next visible packet starts a new busy period and a new
			 * run of dp_run. */
			int64_t next = INT64_MAX;

			if (c->pattern == SIM_CRITICAL)
				break;
			for (size_t j = 0; j < c->n; j++) {
				const struct job *la;

				if (!s.fl[j].in)
					continue;
				la = lookahead(&s, j);
				if (la && !la->in && la->vis < next)
					next = la->vis;
				for (size_t q = s.fl[j].credits.head; q < s.fl[j].credits.len; q++)
					if (!s.fl[j].credits.v[q].in && s.fl[j].credits.v[q].vis < next)
						next = s.fl[j].credits.v[q].vis;
			}
			if (next == INT64_MAX)
				break;
			if (bulk_step(&s, &rg))
				continue;
			/* Bulk waits for its share of the next period. */
			if (c->bulk && rg.on && (int64_t)rg.next < next)
				next = (int64_t)rg.next;
			/* A budget period's control packets come when it begins: the broker
			 * serves them then, not in a burst with those of later periods. */
			if (b->budget_period && s.bud_next < next)
				next = s.bud_next;
			if (next > (int64_t)s.t)
				s.t = (uint64_t)next;
			s.run = 0;
			continue;
		}

		sf = &s.fl[best];
		f = &c->flows[best];
		if (best_credit) {
			/* A header-only control packet: one step with its packet overhead.
			 * 1: a credit update, 2: a control packet or short piece of the
			 * budgets (its own progress; it frees no slot). */
			struct hstep *hs = best_credit == 1 ? &sf->cst : &sf->rst;

			if (!hs->started) {
				hs->started = true;
				hs->rem_work = pl->chunk_overhead + pl->packet_overhead;
				hs->rem_bytes = AN_HDR_BYTES;
				hs->hdr = true;
			}
			if (!do_step(&s, &rg, &hs->rem_work, &hs->rem_bytes, &hs->hdr))
				continue;
			hs->started = false;
			if (best_credit == 1) {
				slot_freed(&s);
				sf->credits.head++;
			} else {
				sf->rides.head++;
			}
			continue;
		}
		if (!sf->started) {
			sf->started = true;
			sf->rem_work = sf->cost[sf->step];
			sf->rem_bytes = sf->bytes[sf->step];
			sf->hdr = sf->hdrs[sf->step];
		}
		if (!do_step(&s, &rg, &sf->rem_work, &sf->rem_bytes, &sf->hdr))
			continue;
		sf->started = false;
		if (sf->ends[sf->step])
			slot_freed(&s);
		if (++sf->step < sf->nsteps)
			continue;
		{
			struct job *jb = jq_front(&sf->msgs);
			int64_t done = (int64_t)s.t;
			uint64_t resp = (uint64_t)(done - jb->kick);

			st[best].jobs++;
			if (resp > st[best].max_response)
				st[best].max_response = resp;
			if ((uint64_t)(done - jb->stamp) > st[best].max_residence)
				st[best].max_residence = (uint64_t)(done - jb->stamp);
			if (done > jb->stamp + (int64_t)f->deadline)
				st[best].misses++;
			/* With budgets a receiver's credit updates are among the control
			 * packets of its budget, all spent at each period's start. */
			if (f->type == AN_STREAM && !b->budget_period) {
				/* The receiver posts its credit update once it has the message
				 * and by its deadline (or at once, when notified past it: the
				 * analysis's assumption), seen within ingest_latency. */
				struct job cj = { 0 };
				int64_t latest = jb->kick + (int64_t)f->deadline;

				if (latest < done + (int64_t)pl->notify_latency)
					latest = done + (int64_t)pl->notify_latency;
				cj.kick = c->pattern == SIM_CRITICAL ? done + (int64_t)pl->notify_latency :
					done + (int64_t)upto(&s, (uint64_t)(latest - done));
				cj.vis = cj.kick + (int64_t)(c->pattern == SIM_CRITICAL ? 0 :
							     upto(&s, pl->ingest_latency));
				if (cj.vis < sf->last_cvis)
					cj.vis = sf->last_cvis;
				sf->last_cvis = cj.vis;
				if (jq_push(&sf->credits, cj)) {
					ret = -ENOMEM;
					break;
				}
			}
			sf->msgs.head++;
			sf->step = 0;
		}
	}
out:
	for (size_t j = 0; j < c->n; j++) {
		free(s.fl[j].cost);
		free(s.fl[j].bytes);
		free(s.fl[j].ends);
		free(s.fl[j].hdrs);
		free(s.fl[j].msgs.v);
		free(s.fl[j].credits.v);
		free(s.fl[j].rides.v);
	}
	free(s.fl);
	return ret;
}
