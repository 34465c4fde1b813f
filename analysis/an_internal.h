/* What the analysis's files share: the tasks one run puts on the broker, the supply
 * they run on, the context every fixed point reads, and the entry points of each
 * policy. Private to analysis/ (analysis.h is the API).
 *
 * Extending the model: a per-flow term (say the blocking a flow suffers on the
 * shared locks of a multi-core broker) is a field of struct task, set from the flow
 * in an_make_tasks; a term every task of a run shares is a field of struct ctx, set
 * in an_ctx_init. Each policy then reads it where it charges blocking (fp_blocking
 * in an_fp.c, edf_block in an_edf.c, the base of the busy period in an_fifo.c). */
#ifndef RTVIO_AN_INTERNAL_H
#define RTVIO_AN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analysis.h"
#include "an_arith.h"

/* One sporadic stream of work the broker serves: the messages of a flow, or the
 * credit updates a stream flow's receiver sends back. */
struct task {
	uint64_t C, q, Q;   /* ns: whole cost, last step, longest step */
	/* The longest step's own time, without its regulation surcharge: what it
	 * blocks a window for under fp, whose bytes were charged before the window
	 * (an_fp.c, fp_blocking). Q without regulation. */
	uint64_t Qb;
	uint64_t T, D;      /* minimum inter-arrival, relative deadline (the broker's) */
	uint64_t J;         /* release jitter as the broker sees (or orders) releases */
	unsigned prio;
	bool be;            /* best-effort: only ever blocks */
	/* The broker's own work within the cells' budgets (an_budget_work): runs
	 * before every step whatever the policy, so it is of the highest priority
	 * under fp (prio 0), due at once under edf (D 0, never capped by a deadline)
	 * and counted up to every finish under fifo. T = budget period, J = T: a
	 * window of length t overlaps at most ceil(t / T) + 1 periods. */
	bool always;
	/* A ride task (cells' control packets and short pieces on one flow): 1 + that
	 * flow's index; 0 for every other task. */
	size_t ride1;
	/* A flow's task: what its own conforming ends leave out of ride tasks
	 * (an_flow.own): 1 + the ride task's index, and the ns of its C that this
	 * flow's own fp test does not charge. */
	size_t cut_task1[AN_OWN_MAX];
	uint64_t cut[AN_OWN_MAX];
	/* A flow's task: the vhost-user work its own ends leave out (an_flow.own_vhu). */
	uint64_t vhu_cut[2];
};

/* owner[] of the budget task: no flow. */
#define AN_OWNER_NONE SIZE_MAX

/* The resource the fixed points run on. Regulated, the byte regulator's throttles
 * are folded into the work (docs/analysis.md, "Regulated copy engine"): every task's
 * C and Q carry the surcharge of their bytes and the pool one stall, so that time is
 * time on either resource; `regulated` only says that no step may be relied on as
 * non-preemptive (a partial grant splits it). theta: bytes every throttled period
 * serves (0: the budget cannot carry a header: overload). */
struct supply {
	uint64_t pi, theta;
	bool regulated;
	struct an_vhu vhu;  /* the loop's vhost-user work (an_vhu.c) */
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
	uint64_t pool;       /* regulated: and one throttle (an_reg_stall) */
	uint64_t rst;        /* the broker's own RST reply: a step in the lowest band */
	uint64_t rst_blk;    /* ... its time without the regulation surcharge (task.Qb) */
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
static inline bool pay(struct ctx *x)
{
	if (x->work <= x->n) {
		x->spent = true;
		return false;
	}
	x->work -= x->n + 1;
	return true;
}

/* From the pick of a task's last step to its last byte: q less the waits every step
 * spends before its pick (an_broker.pick_lead). Those waits stay in every step's
 * cost: they are the lead of the step after, which a finished message does not wait
 * for, and the blocking term (a lower step and the lead after it, or at least the
 * RST reply, which carries the lead) covers the lead before the first pick. */
static inline uint64_t last_body(const struct ctx *x, const struct task *t)
{
	return t->q - min_u64(t->q, x->b->pick_lead);
}

/* ---- an_vhu.c: the loop's vhost-user work ---- */

/* Most of that work in any interval of length t. */
uint64_t an_vhu_demand(const struct an_vhu *v, uint64_t t);
/* The least t with t >= w + an_vhu_demand(t): w when there is none (or w is 0),
 * UINT64_MAX when it takes the whole broker. */
uint64_t an_vhu_inv(const struct an_vhu *v, uint64_t w);
/* What the data path is left of an interval of length t: t - demand, at least 0. */
uint64_t an_vhu_supply(const struct an_vhu *v, uint64_t t);
/* Its long-run share of the broker: sum of work / period. */
long double an_vhu_utilization(const struct an_vhu *v);

/* The least t that supplies w of work: throttles are part of the work, and the loop's
 * vhost-user work is taken out of the supply. */
static inline uint64_t inv(const struct supply *s, uint64_t w)
{
	return an_vhu_inv(&s->vhu, w);
}

/* Releases of task t in [0, u] in the worst-case pattern (the first at 0 after
 * maximal jitter, the next ones as early as the period and jitter allow). */
static inline uint64_t released_upto(const struct task *t, uint64_t u)
{
	return sadd(u, t->J) / t->T + 1;
}

/* Releases in [0, u): the count in busy-period equations. */
static inline uint64_t released_before(const struct task *t, uint64_t u)
{
	return ceil_div(sadd(u, t->J), t->T);
}

/* With the cells' budgets a stream flow's credit updates are control packets of its
 * receiver's control budget, which rides a flow at least as urgent as theirs
 * (docs/analysis.md, "Per-cell budgets"): they are charged there, not as a stream of
 * their own. */
static inline bool an_credits_in_budgets(const struct an_broker *b)
{
	return b->budget_period != 0;
}

/* ---- an_cost.c: pieces of the cost model the tasks are made of ---- */

/* The share of the broker's batch gaps every step is charged. */
uint64_t an_gap_share(const struct an_broker *b);
/* Extra cost of a message of `steps` steps and `packets` TX packets: its share of
 * the batch gaps and its ingest work, all before its last step. */
uint64_t an_extras(const struct an_broker *b, uint64_t steps, uint64_t packets);
/* A credit update (or any other header-only control packet): one step with its
 * packet overhead. */
uint64_t an_ctl_step(const struct an_broker *b);

/* ---- an_ctx.c: the context ---- */

/* The tasks of a flow set: t[i] = flow i for i < n, then one credit-update task per
 * real-time stream flow (owner[] names its flow), then with b->budget_period one
 * task per flow the cells' budgets ride and the ingest budgets' (always), owner
 * AN_OWNER_NONE; prio NULL: the flows' own, basis NULL: credit updates by their
 * message's deadline. t[] and owner[] hold AN_MAX_TASKS(n) entries. Returns the
 * number of tasks. */
#define AN_MAX_TASKS(n) (3 * (n) + 1)
size_t an_make_tasks(const struct an_flow *flows, size_t n, const struct an_broker *b,
		     const struct an_costs *costs, const unsigned *prio, const uint64_t *basis,
		     struct task *t, size_t *owner);
/* Sets up x for tasks t[0..n) of flows with costs[0..nflows): supply, pool, budget. */
void an_ctx_init(struct ctx *x, const struct an_broker *b, const struct task *t, size_t n,
		 const struct an_costs *costs, size_t nflows);
/* The synchronous busy period from `base` (UINT64_MAX past the horizon or budget). */
uint64_t an_busy_period(struct ctx *x, uint64_t base);

/* ---- the policies: responses of the flows (tasks 0..nflows) in out[]; true when
 * some real-time flow has no bound ---- */

/* an_fp.c: the fp test of task i into *r; 0, or 1 when unbounded. */
int an_fp_task(struct ctx *x, size_t i, struct an_flow_result *r);
bool an_fp_run(struct ctx *x, const struct an_flow *flows, size_t nflows,
	       struct an_flow_result *out);
/* an_edf.c: also the processor-demand test into res. */
bool an_edf_run(struct ctx *x, const struct an_flow *flows, size_t nflows,
		struct an_result *res, struct an_flow_result *out);
/* an_fifo.c: res->why when best-effort traffic makes every bound void. */
bool an_fifo_run(struct ctx *x, const struct an_flow *flows, size_t nflows,
		 struct an_result *res, struct an_flow_result *out);

/* ---- analysis.c ---- */

/* The latency bound and verdict of flow f from its response in r. */
void an_finish_flow(const struct an_flow *f, const struct an_broker *b,
		    struct an_flow_result *r);

#endif
