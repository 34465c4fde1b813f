/* The data plane on m cores with its lock contention: see sim_mcore.h. Events are
 * taken in time order (the control path's first at equal times, then cores by index),
 * so each lock serves requests in the order they were made. */
#include "sim_mcore.h"
#include "an_mcore.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct mmsg {
	int64_t kick, vis, stamp;
	uint64_t seq;
	bool in;
};

struct mflow {
	uint64_t *cost, *bytes, *copy;
	bool *ends, *piece_end;
	size_t nsteps, step;
	uint64_t npk;
	struct mmsg *m;
	size_t nm, head;
};

enum cstate { C_START, C_M1, C_K, C_M2, C_END, C_WAIT_W, C_IDLE, C_DONE };

struct mcore {
	enum cstate st;
	int64_t t;          /* when its next action happens */
	int64_t wait_since; /* C_WAIT_W: when it asked for the reader side */
	uint64_t run;       /* steps in this run */
	bool reader, counted; /* holds W's reader side; a waiting writer waits for it */
	size_t cur;         /* flow of the step in progress */
	uint64_t in_pkts;   /* TX packets of its flows in the broker */
};

enum wstate { W_IDLE, W_PENDING, W_ACTIVE };

struct msim {
	const struct sim_mc_config *c;
	const struct an_broker *b;
	struct mflow *fl;
	struct mcore *co;
	struct sim_flow_stats *st;
	struct sim_mc_waits *w;
	uint64_t rng, seq;
	int64_t m_free;      /* M is free from then on */
	int64_t *k_free;     /* each of K's k slots */
	enum wstate ws;
	int64_t w_at;        /* W_IDLE: next write; W_ACTIVE: its end */
	int64_t w_req;       /* when the last write arrived (-1: none yet) */
};

static uint64_t rnd(struct msim *s)
{
	/* xorshift64* */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ull;
}

static uint64_t upto(struct msim *s, uint64_t hi)
{
	return rnd(s) % (hi + 1);
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Every message of flow j released before until_ns, as sim.c's gen makes them. */
static int make_msgs(struct msim *s, size_t j)
{
	const struct an_flow *f = &s->c->flows[j];
	struct mflow *mf = &s->fl[j];
	const int64_t il = (int64_t)s->b->plat.ingest_latency;
	int64_t nominal = (int64_t)upto(s, f->period - 1), last_kick = 0, last_vis = 0;

	mf->m = calloc(s->c->until_ns / f->period + 2, sizeof(*mf->m));
	if (!mf->m)
		return -ENOMEM;
	for (uint64_t k = 0;; k++) {
		struct mmsg jb = { 0 };

		if (s->c->pattern == SIM_CRITICAL) {
			int64_t a = (int64_t)(k * f->period) - (int64_t)f->jitter - il;

			jb.kick = k ? max64(a, -il) : -il;
			jb.vis = max64(jb.kick, 0);
		} else {
			if (k)
				nominal += (int64_t)(f->period +
						     (rnd(s) % 4 ? 0 : upto(s, f->period / 2)));
			jb.kick = max64(nominal + (int64_t)upto(s, f->jitter), last_kick);
			jb.vis = max64(jb.kick + (int64_t)upto(s, (uint64_t)il), last_vis);
		}
		if (jb.vis >= (int64_t)s->c->until_ns)
			return 0;
		last_kick = jb.kick;
		last_vis = jb.vis;
		mf->m[mf->nm++] = jb;
	}
}

/* Flow j's steps: sim_steps's costs, split into the copy (K) and whether the step
 * ends a piece (its packet_overhead, under M). */
static int make_steps(struct msim *s, size_t j)
{
	const struct an_flow *f = &s->c->flows[j];
	struct mflow *mf = &s->fl[j];
	struct an_broker b0 = *s->b;
	size_t max = (size_t)(f->size / s->b->chunk + 2 * (f->size / f->rx_payload) +
			      2 * (f->size / f->packet_size) + 4);
	uint64_t *c0 = calloc(max, sizeof(*c0));
	int n = -ENOMEM;

	mf->cost = calloc(max, sizeof(*mf->cost));
	mf->bytes = calloc(max, sizeof(*mf->bytes));
	mf->copy = calloc(max, sizeof(*mf->copy));
	mf->ends = calloc(max, sizeof(*mf->ends));
	mf->piece_end = calloc(max, sizeof(*mf->piece_end));
	if (c0 && mf->cost && mf->bytes && mf->copy && mf->ends && mf->piece_end) {
		b0.plat.packet_overhead = 0;
		b0.plat.chunk_overhead = 0;
		n = sim_steps(f, s->b, mf->cost, mf->bytes, mf->ends, max);
		if (n > 0 && sim_steps(f, &b0, c0, mf->bytes, mf->ends, max) == n)
			for (int q = 0; q < n; q++) {
				mf->copy[q] = c0[q];
				mf->piece_end[q] = mf->cost[q] > c0[q] + s->b->plat.chunk_overhead;
			}
	}
	free(c0);
	if (n <= 0)
		return n ? n : -EINVAL;
	mf->nsteps = (size_t)n;
	for (size_t q = 0; q < mf->nsteps; q++)
		mf->npk += mf->ends[q];
	return 0;
}

/* The earliest visibility of core k's messages not yet ingested (INT64_MAX: none). */
static int64_t next_vis(const struct msim *s, uint32_t k)
{
	int64_t v = INT64_MAX;

	for (size_t j = 0; j < s->c->n; j++) {
		const struct mflow *mf = &s->fl[j];

		if (s->c->core[j] != k)
			continue;
		for (size_t q = mf->head; q < mf->nm; q++)
			if (!mf->m[q].in) {
				if (mf->m[q].vis < v)
					v = mf->m[q].vis;
				break;
			}
	}
	return v;
}

static bool has_work(const struct msim *s, uint32_t k, int64_t t)
{
	for (size_t j = 0; j < s->c->n; j++)
		if (s->c->core[j] == k && s->fl[j].head < s->fl[j].nm &&
		    (s->fl[j].m[s->fl[j].head].in || s->fl[j].m[s->fl[j].head].vis <= t))
			return true;
	return false;
}

/* The reader side leaves; a writer waiting for it may start. */
static void reader_leave(struct msim *s, uint32_t k, int64_t now)
{
	struct mcore *co = &s->co[k];
	bool others = false;

	if (!co->reader)
		return;
	co->reader = false;
	if (!co->counted)
		return;
	co->counted = false;
	for (uint32_t i = 0; i < s->c->ncores; i++)
		others = others || s->co[i].counted;
	if (s->ws == W_PENDING && !others) {
		s->ws = W_ACTIVE;
		s->w_at = now + (int64_t)s->c->write_section;
	}
}

static void writer_event(struct msim *s)
{
	int64_t now = s->w_at;
	bool any = false;

	if (s->ws == W_ACTIVE) {
		/* The write ends: the readers waiting for it enter together. */
		for (uint32_t i = 0; i < s->c->ncores; i++) {
			struct mcore *co = &s->co[i];

			if (co->st != C_WAIT_W)
				continue;
			if ((uint64_t)(now - co->wait_since) > s->w->rw_reader)
				s->w->rw_reader = (uint64_t)(now - co->wait_since);
			co->reader = true;
			co->st = C_M1;
			co->t = now;
		}
		s->ws = W_IDLE;
		s->w_at = now + (int64_t)upto(s, s->c->write_gap);
		/* The data plane's write gate: the next write arrives no sooner than
		 * write_spacing after this one did. */
		if (s->c->write_spacing && s->w_at < s->w_req + (int64_t)s->c->write_spacing)
			s->w_at = s->w_req + (int64_t)s->c->write_spacing;
		return;
	}
	/* A write arrives: it waits for the readers inside. */
	s->w->writes++;
	s->w_req = now;
	for (uint32_t i = 0; i < s->c->ncores; i++) {
		s->co[i].counted = s->co[i].reader;
		any = any || s->co[i].reader;
	}
	s->ws = any ? W_PENDING : W_ACTIVE;
	if (!any)
		s->w_at = now + (int64_t)s->c->write_section;
}

/* M granted at g: the pass over core k's cells, then the pick. Returns the hold. */
static uint64_t pick(struct msim *s, uint32_t k, int64_t g)
{
	struct mcore *co = &s->co[k];
	const struct an_platform *pl = &s->b->plat;
	uint64_t count = 0, room, junk;
	int64_t bk1 = 0, bk2 = 0;
	uint64_t bseq = 0;

	co->cur = SIZE_MAX;
	for (size_t j = 0; j < s->c->n; j++) {
		struct mflow *mf = &s->fl[j];

		if (s->c->core[j] != k)
			continue;
		for (size_t q = mf->head; q < mf->nm && mf->m[q].vis <= g; q++)
			if (!mf->m[q].in) {
				mf->m[q].in = true;
				mf->m[q].stamp = g;
				mf->m[q].seq = s->seq++;
				count += mf->npk;
				co->in_pkts += mf->npk;
			}
	}
	/* Packets toward other cores fill the rest of the core's slots at every pass
	 * (their own cores complete them at once); at random, some of it. */
	room = s->c->tx_slots[k] > co->in_pkts ? s->c->tx_slots[k] - co->in_pkts : 0;
	junk = s->c->pattern == SIM_CRITICAL ? room : upto(s, room);
	for (size_t j = 0; j < s->c->n; j++) {
		const struct mflow *mf = &s->fl[j];
		const struct mmsg *jb;
		int64_t k1 = 0, k2 = 0;

		if (s->c->core[j] != k || mf->head >= mf->nm || !mf->m[mf->head].in)
			continue;
		jb = &mf->m[mf->head];
		if (s->b->policy == AN_FP)
			k1 = (int64_t)s->c->prio[j];
		else
			k2 = jb->stamp + (s->b->policy == AN_EDF ? (int64_t)s->c->flows[j].deadline : 0);
		if (co->cur == SIZE_MAX || k1 < bk1 || (k1 == bk1 && k2 < bk2) ||
		    (k1 == bk1 && k2 == bk2 && jb->seq < bseq)) {
			co->cur = j;
			bk1 = k1;
			bk2 = k2;
			bseq = jb->seq;
		}
	}
	return (count + junk) * pl->ingest_packet + pl->chunk_overhead;
}

/* The step of core k ends at `end`: the message may be done. */
static void step_done(struct msim *s, uint32_t k, int64_t end)
{
	struct mcore *co = &s->co[k];
	struct mflow *mf = &s->fl[co->cur];
	struct sim_flow_stats *st = &s->st[co->cur];

	if (mf->ends[mf->step] && co->in_pkts)
		co->in_pkts--;
	co->run++;
	if (++mf->step == mf->nsteps) {
		const struct mmsg *jb = &mf->m[mf->head];

		st->jobs++;
		if ((uint64_t)(end - jb->kick) > st->max_response)
			st->max_response = (uint64_t)(end - jb->kick);
		if ((uint64_t)(end - jb->stamp) > st->max_residence)
			st->max_residence = (uint64_t)(end - jb->stamp);
		if (end > jb->stamp + (int64_t)s->c->flows[co->cur].deadline)
			st->misses++;
		mf->step = 0;
		mf->head++;
	}
	/* The step's reader side ends with it. */
	reader_leave(s, k, end);
	co->st = C_START;
	co->t = end;
	if (s->b->run_steps && co->run >= s->b->run_steps) {
		/* dp_run returns: the batch gap, outside W. */
		co->t = end + (int64_t)s->b->plat.batch_gap;
		co->run = 0;
	}
}

static void mutex_wait(struct msim *s, int64_t t, int64_t g)
{
	s->w->mutex_requests++;
	if ((uint64_t)(g - t) > s->w->mutex)
		s->w->mutex = (uint64_t)(g - t);
}

/* Core k's action at co->t. */
static void core_event(struct msim *s, uint32_t k)
{
	struct mcore *co = &s->co[k];
	int64_t t = co->t, g;
	uint32_t slot = 0;

	switch (co->st) {
	case C_IDLE:
	case C_START:
		if (!has_work(s, k, t)) {
			reader_leave(s, k, t);
			co->run = 0;
			co->t = next_vis(s, k);
			co->st = co->t == INT64_MAX ? C_DONE : C_IDLE;
			return;
		}
		/* Each step asks for W's reader side anew. */
		if (s->ws != W_IDLE) {
			co->st = C_WAIT_W;
			co->wait_since = t;
			return;
		}
		co->reader = true;
		co->st = C_M1;
		return;
	case C_M1:
		g = max64(t, s->m_free);
		mutex_wait(s, t, g);
		s->m_free = g + (int64_t)pick(s, k, g);
		co->t = s->m_free;
		co->st = co->cur == SIZE_MAX ? C_END : C_K;
		return;
	case C_K:
		for (uint32_t i = 1; i < s->c->copy_slots; i++)
			if (s->k_free[i] < s->k_free[slot])
				slot = i;
		g = max64(t, s->k_free[slot]);
		s->w->kex_requests++;
		if ((uint64_t)(g - t) > s->w->kex)
			s->w->kex = (uint64_t)(g - t);
		s->k_free[slot] = g + (int64_t)s->fl[co->cur].copy[s->fl[co->cur].step];
		co->t = s->k_free[slot];
		co->st = C_M2;
		return;
	case C_M2:
		g = max64(t, s->m_free);
		mutex_wait(s, t, g);
		if (s->fl[co->cur].piece_end[s->fl[co->cur].step]) {
			/* The completion under M, then its wake-ups after M. */
			uint64_t done = an_mcore_l_done(&s->b->plat);

			s->m_free = g + (int64_t)done;
			co->t = s->m_free + (int64_t)(s->b->plat.packet_overhead - done);
		} else {
			s->m_free = g;
			co->t = g;
		}
		co->st = C_END;
		return;
	case C_END:
		/* At the step's end, so a write arriving before it finds the reader in. */
		if (co->cur != SIZE_MAX) {
			step_done(s, k, t);
			return;
		}
		reader_leave(s, k, t);
		co->st = C_START;
		return;
	case C_WAIT_W:
	case C_DONE:
		return;
	}
}

static bool all_done(const struct msim *s)
{
	for (uint32_t k = 0; k < s->c->ncores; k++)
		if (s->co[k].st != C_DONE)
			return false;
	return true;
}

static int loop(struct msim *s)
{
	while (!all_done(s)) {
		int64_t best = INT64_MAX;
		uint32_t bk = UINT32_MAX;

		for (uint32_t k = 0; k < s->c->ncores; k++)
			if (s->co[k].st != C_WAIT_W && s->co[k].st != C_DONE && s->co[k].t < best) {
				best = s->co[k].t;
				bk = k;
			}
		if (!s->c->no_writes && s->ws != W_PENDING && s->w_at <= best) {
			writer_event(s);
			continue;
		}
		if (bk == UINT32_MAX)
			return -EINVAL; /* every core waits for a write that never starts */
		if (best > (int64_t)s->c->limit_ns)
			return -ETIME;
		core_event(s, bk);
	}
	return 0;
}

static int check(const struct sim_mc_config *c)
{
	if (!c->ncores || !c->copy_slots || c->copy_slots > c->ncores || c->b->reg_budget)
		return -EINVAL;
	for (size_t j = 0; j < c->n; j++)
		if (c->flows[j].best_effort || c->flows[j].type != AN_SEQPACKET ||
		    c->flows[j].explicit_costs || c->core[j] >= c->ncores)
			return -EINVAL;
	return 0;
}

int sim_mc_run(const struct sim_mc_config *c, struct sim_flow_stats *st,
	       struct sim_mc_waits *w)
{
	struct msim s = { .c = c, .b = c->b, .st = st, .w = w, .rng = c->seed | 1 };
	int ret = check(c);

	if (ret)
		return ret;
	*w = (struct sim_mc_waits){ 0 };
	s.fl = calloc(c->n ? c->n : 1, sizeof(*s.fl));
	s.co = calloc(c->ncores, sizeof(*s.co));
	s.k_free = calloc(c->copy_slots, sizeof(*s.k_free));
	ret = s.fl && s.co && s.k_free ? 0 : -ENOMEM;
	for (size_t j = 0; !ret && j < c->n; j++) {
		st[j] = (struct sim_flow_stats){ 0 };
		ret = make_steps(&s, j);
		if (!ret)
			ret = make_msgs(&s, j);
	}
	s.w_at = (int64_t)upto(&s, c->write_gap);
	s.w_req = -1;
	for (uint32_t k = 0; !ret && k < c->ncores; k++)
		s.co[k].run = c->pattern == SIM_RANDOM ? upto(&s, c->b->run_steps) : 0;
	if (!ret)
		ret = loop(&s);
	for (size_t j = 0; s.fl && j < c->n; j++) {
		free(s.fl[j].cost);
		free(s.fl[j].bytes);
		free(s.fl[j].copy);
		free(s.fl[j].ends);
		free(s.fl[j].piece_end);
		free(s.fl[j].m);
	}
	free(s.fl);
	free(s.co);
	free(s.k_free);
	return ret;
}
