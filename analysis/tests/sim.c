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

int sim_steps(const struct an_flow *f, const struct an_broker *b, uint64_t *cost,
	      uint64_t *bytes, size_t max)
{
	const struct an_platform *p = &b->plat;
	size_t n = 0;

	if (f->explicit_costs) {
		/* All but the last step in pieces of at most max_step, then last_step. */
		uint64_t rest = f->cost - f->last_step;

		while (rest) {
			uint64_t s = rest < f->max_step ? rest : f->max_step;

			if (n == max)
				return -ENOSPC;
			cost[n] = s;
			bytes[n++] = 0;
			rest -= s;
		}
		if (n == max)
			return -ENOSPC;
		cost[n] = f->last_step;
		bytes[n++] = 0;
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
				if (c + len == pc)
					cost[n] += p->packet_overhead;
				n++;
			}
		}
	}
	if (f->type == AN_STREAM) {
		/* The credit update goes before the message's last step, as the model
		 * places it; move the last step one slot on. */
		if (n == max)
			return -ENOSPC;
		cost[n] = cost[n - 1];
		bytes[n] = bytes[n - 1];
		cost[n - 1] = p->packet_overhead + p->chunk_overhead;
		bytes[n - 1] = AN_HDR_BYTES;
		n++;
	}
	return (int)n;
}

struct sflow {
	uint64_t *cost, *bytes;
	size_t nsteps;
	uint64_t head;       /* index of the oldest unfinished job */
	size_t step;         /* its current step */
	bool started;        /* the current step has begun (rem_* are valid) */
	uint64_t rem_work;
	uint64_t rem_bytes;
	bool in;
};

static uint64_t release_of(const struct an_flow *f, uint64_t k)
{
	uint64_t a = k * f->period;

	return a > f->jitter ? a - f->jitter : 0;
}

static int64_t arrival_of(const struct an_flow *f, uint64_t k)
{
	return (int64_t)(k * f->period) - (int64_t)f->jitter;
}

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

int sim_run(const struct sim_config *c, struct sim_flow_stats *st)
{
	const struct an_broker *b = c->b;
	struct sflow *fl = calloc(c->n ? c->n : 1, sizeof(*fl));
	struct reg rg = { 0 };
	uint64_t t = 0;
	int ret = 0;

	if (!fl)
		return -ENOMEM;
	for (size_t j = 0; j < c->n; j++) {
		st[j] = (struct sim_flow_stats){ 0 };
		fl[j].in = !c->flows[j].best_effort && (!c->include || c->include[j]);
		if (!fl[j].in)
			continue;
		const struct an_flow *f = &c->flows[j];
		/* At most one step per chunk of every packet, plus one per packet for a
		 * short last chunk, plus the credit update. */
		size_t maxsteps = f->explicit_costs ?
			(size_t)(f->cost / f->max_step + 2) :
			(size_t)(f->size / b->chunk + 2 * (f->size / f->rx_payload) +
				 2 * (f->size / f->packet_size) + 4);

		fl[j].cost = calloc(maxsteps, sizeof(uint64_t));
		fl[j].bytes = calloc(maxsteps, sizeof(uint64_t));
		if (!fl[j].cost || !fl[j].bytes) {
			ret = -ENOMEM;
			goto out;
		}
		int ns = sim_steps(f, b, fl[j].cost, fl[j].bytes, maxsteps);

		if (ns <= 0) {
			ret = -EINVAL;
			goto out;
		}
		fl[j].nsteps = (size_t)ns;
	}
	if (b->reg_budget) {
		rg.on = true;
		rg.budget = b->reg_budget;
		rg.period = b->reg_period;
		rg.next = c->reg_phase;
		rg.used = c->reg_used;
	}
	/* The blocking step started just before 0: charged then, runs to its end. */
	if (c->block_ns) {
		if (rg.on) {
			uint64_t left = rg.budget - rg.used;

			rg.used += c->block_bytes < left ? c->block_bytes : left;
		}
		t = c->block_ns;
	}

	for (;;) {
		size_t best = SIZE_MAX;
		int64_t best_key = 0;
		uint64_t best_rel = 0;

		if (t > c->limit_ns) {
			ret = -ETIME;
			break;
		}
		reg_tick(&rg, t);
		for (size_t j = 0; j < c->n; j++) {
			const struct an_flow *f = &c->flows[j];
			int64_t key;
			uint64_t rel;

			if (!fl[j].in)
				continue;
			rel = release_of(f, fl[j].head);
			if (rel > t)
				continue;
			switch (b->policy) {
			case AN_FP:
				key = (int64_t)c->prio[j];
				break;
			case AN_EDF:
				key = arrival_of(f, fl[j].head) + (int64_t)f->deadline;
				break;
			default:
				key = (int64_t)rel;
				break;
			}
			/* Ties: the lower index (and, for fifo, the earlier release first). */
			if (best == SIZE_MAX || key < best_key) {
				best = j;
				best_key = key;
				best_rel = rel;
			}
		}
		(void)best_rel;
		if (best == SIZE_MAX)
			break; /* idle: the busy period is over */

		struct sflow *s = &fl[best];
		const struct an_flow *f = &c->flows[best];
		uint64_t piece;
		bool done;

		if (!s->started) {
			s->started = true;
			s->rem_work = s->cost[s->step];
			s->rem_bytes = s->bytes[s->step];
		}
		if (rg.on && s->rem_bytes) {
			uint64_t left = rg.budget - rg.used;
			uint64_t g = s->rem_bytes < left ? s->rem_bytes : left;

			if (!g) {
				t = rg.next; /* wait for the replenishment */
				continue;
			}
			rg.used += g;
			if (g < s->rem_bytes) {
				/* A partial piece: its own chunk overhead plus the copy of g
				 * bytes; the rest keeps one chunk overhead for later. */
				uint64_t co = b->plat.chunk_overhead;
				uint64_t cp = copy_ns(b, g);

				if (s->rem_work < co)
					co = s->rem_work;
				if (cp > s->rem_work - co)
					cp = s->rem_work - co;
				piece = co + cp;
				s->rem_work -= cp;
				s->rem_bytes -= g;
				done = false;
			} else {
				piece = s->rem_work;
				done = true;
			}
		} else {
			piece = s->rem_work;
			done = true;
		}
		t += piece;
		if (!done)
			continue;
		s->started = false;
		if (++s->step < s->nsteps)
			continue;
		{
			int64_t resp = (int64_t)t - arrival_of(f, s->head);

			st[best].jobs++;
			if ((uint64_t)resp > st[best].max_response)
				st[best].max_response = (uint64_t)resp;
			if ((uint64_t)resp > f->deadline)
				st[best].misses++;
		}
		s->head++;
		s->step = 0;
	}
out:
	for (size_t j = 0; j < c->n; j++) {
		free(fl[j].cost);
		free(fl[j].bytes);
	}
	free(fl);
	return ret;
}
