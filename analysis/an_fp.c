/* fp: limited-preemptive fixed priority with fixed preemption points
 * (docs/analysis.md, "fp"). */
#include "analysis.h"
#include "an_arith.h"
#include "an_internal.h"

#include <errno.h>
#include <stdlib.h>

/* Is task j of higher or equal priority than task i? */
static bool hep(const struct ctx *x, size_t i, size_t j)
{
	return !x->t[j].be && x->t[j].prio <= x->t[i].prio;
}

/* Task j's cost as task i's test charges it: C, less what i's own conforming ends
 * leave out of j when j is a ride task (docs/analysis.md, "Own ends"). */
static uint64_t charged(const struct ctx *x, size_t i, size_t j)
{
	uint64_t c = x->t[j].C;

	for (size_t e = 0; e < AN_OWN_MAX; e++)
		if (x->t[i].cut_task1[e] == j + 1)
			c -= min_u64(c, x->t[i].cut[e]);
	return c;
}

/* Work of the tasks of higher or equal priority than i (i itself when `self`): each
 * task's C times count(task, u), or once each when count is NULL. */
static uint64_t hep_work(const struct ctx *x, size_t i, bool self, uint64_t u,
			 uint64_t (*count)(const struct task *, uint64_t))
{
	uint64_t w = 0;

	for (size_t j = 0; j < x->n; j++)
		if ((self || j != i) && hep(x, i, j))
			w = sadd(w, count ? smul(count(&x->t[j], u), charged(x, i, j)) :
					    charged(x, i, j));
	return w;
}

/* Blocking: the longest step of a lower-priority or best-effort task (or the
 * broker's RST reply), which may have started just before the critical instant, and
 * the pool of ingest and gap work (see struct ctx). Regulated, the step blocks for
 * its own time only (task.Qb, no byte surcharge): the regulator charged its bytes
 * when it granted them, at its start, before the window, so they can only have
 * spent the budget of the period the window starts in, whose one throttle the pool
 * holds; every later throttle needs a period's budget of grants made in the window,
 * all of them steps of hep(i), whose C carry the surcharge (docs/analysis.md,
 * "Regulated copy engine"). A step a partial grant cut short leaves a rest that is
 * a step of its own, picked by priority: not before i's job is done. */
static uint64_t fp_blocking(const struct ctx *x, size_t i)
{
	uint64_t blk = x->rst_blk;

	for (size_t j = 0; j < x->n; j++)
		if (j != i && (x->t[j].be || x->t[j].prio > x->t[i].prio))
			blk = max_u64(blk, x->t[j].Qb);
	return sadd(x->pool, blk);
}

/* Is the level-i utilisation (the tasks of hep(i) as i's test charges them, and the
 * loop's vhost-user work it is left with) beyond the capacity? Then no level-i
 * active period closes; below it one does, whatever the tasks below i demand, so
 * under fp a flow keeps its bound when only flows below it overload the broker. */
static bool level_overloaded(const struct ctx *x, size_t i)
{
	long double u = an_vhu_utilization(&x->s.vhu);

	for (size_t j = 0; j < x->n; j++)
		if (hep(x, i, j))
			u += (long double)charged(x, i, j) / x->t[j].T;
	return u > 1.0L + 1e-12L;
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
	uint64_t S = inv(&x->s, sadd(x0, hep_work(x, i, false, 0, NULL)));

	/* S_k >= S_{k-1} + C_i: a valid start from below the least fixed point. */
	if (k > 1)
		S = max_u64(S, sadd(*prev, ti->C));
	for (unsigned it = 0;; it++) {
		uint64_t nS;

		if (S > x->hz || it >= AN_MAX_POINTS || !pay(x))
			return 1;
		nS = inv(&x->s, sadd(x0, hep_work(x, i, false, S, released_upto)));
		if (nS == S)
			break;
		S = nS;
	}
	*prev = S;
	*F = sadd(S, last_body(x, ti));
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

/* From the sender's kick of job k to its last byte, given its residence bound resp
 * (fp_job_response). Job 1 was seen at 0 and kicked at most ingest_latency before.
 * Job k >= 2 was kicked at least (k-1)T_i - J_i after job 1's kick, so at least
 * (k-1)T_i - J_i - ingest_latency after 0: F_k - (k-1)T_i + J'_i, which is its
 * residence bound already (J'_i = J_i + ingest_latency is the jitter of its sight):
 * its ingest latency is not added a second time (docs/analysis.md, fp "Response"). */
static uint64_t fp_job_from_kick(const struct ctx *x, uint64_t k, uint64_t resp)
{
	return k == 1 ? sadd(x->b->plat.ingest_latency, resp) : resp;
}

static int fp_task(struct ctx *x, size_t i, struct an_flow_result *r);

/* Task i's test runs on the supply its own ends leave: the loop's vhost-user work
 * less their buckets (task.vhu_cut; docs/analysis.md, "Own ends"). */
int an_fp_task(struct ctx *x, size_t i, struct an_flow_result *r)
{
	const struct an_vhu all = x->s.vhu;
	int ret;

	for (int k = 0; k < 2; k++)
		x->s.vhu.work[k] -= min_u64(x->s.vhu.work[k], x->t[i].vhu_cut[k]);
	ret = fp_task(x, i, r);
	x->s.vhu = all;
	return ret;
}

static int fp_task(struct ctx *x, size_t i, struct an_flow_result *r)
{
	uint64_t B = fp_blocking(x, i), L, jobs, prev = 0, worst = 0, kick = 0;
	unsigned worst_job = 1;

	r->bounded = false;
	r->schedulable = false;
	r->jobs = 0;
	r->worst_job = 0;
	r->busy_period = 0;
	r->from_kick = 0;
	if (level_overloaded(x, i) || fp_active_period(x, i, B, &L))
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
		kick = max_u64(kick, fp_job_from_kick(x, k, resp));
	}
	r->from_kick = kick;
	r->jobs = (unsigned)jobs;
	r->worst_job = worst_job;
	r->response = worst;
	r->bounded = true;
	return 0;
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
	t = calloc(AN_MAX_TASKS(n), sizeof(*t));
	owner = calloc(AN_MAX_TASKS(n), sizeof(*owner));
	if (!t || !owner) {
		free(t);
		free(owner);
		return -ENOMEM;
	}
	nt = an_make_tasks(flows, n, b, costs, prio, NULL, t, owner);
	an_ctx_init(&x, b, t, nt, costs, n);
	*r = (struct an_flow_result){ .costs = costs[i] };
	if (!(x.s.regulated && x.s.theta == 0))
		ret = an_fp_task(&x, i, r);
	if (ret)
		r->bounded = false;
	free(t);
	free(owner);
	return ret;
}

bool an_fp_run(struct ctx *x, const struct an_flow *flows, size_t nflows,
	       struct an_flow_result *out)
{
	bool unbounded = false;

	for (size_t i = 0; i < nflows; i++)
		if (!flows[i].best_effort && an_fp_task(x, i, &out[i]))
			unbounded = true;
	return unbounded;
}
