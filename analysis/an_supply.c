/* The supply of the copy engine: the supply bound function of a periodic resource
 * and what the regulator guarantees per period (docs/analysis.md, "Regulation"). */
#include "analysis.h"
#include "an_arith.h"

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

/* The byte regulator (platform/regulator.c, broker/dp_copy_step.c regulate) charges
 * bytes only; overheads, ingest and gaps take time and no budget. A throttle lasts
 * until the next boundary (at most a period) and happens only once the period's
 * budget is granted; a step that needs a header forfeits a rest of at most 44 bytes,
 * so every throttled period but the first of a window served at least budget - 44
 * bytes of the window's work. */
uint64_t an_reg_served(const struct an_broker *b)
{
	if (!b->reg_budget)
		return 0;
	return b->reg_budget > AN_HDR_BYTES ? b->reg_budget - AN_HDR_BYTES : 0;
}

/* A throttle: the wait for the next boundary (at most a period), the broker's
 * wake-up after it, and the chunk overhead of the step a partial grant split. A
 * sleeping broker waits in epoll_pwait2 with the boundary as its timeout and runs
 * again only when the scheduler wakes it, which is the same path as its wake-up by
 * a kick, so ingest_latency bounds it (a polling broker never sleeps, and its
 * ingest_latency is its own). The wait can be a whole period: the refused step may
 * come at once after the boundary, when the period's budget went in one fast grant. */
uint64_t an_reg_stall(const struct an_broker *b)
{
	if (!b->reg_budget)
		return 0;
	return sadd(sadd(b->reg_period, b->plat.ingest_latency), b->plat.chunk_overhead);
}

/* A window whose work charges w bytes throttles at most 1 + floor((w - 1) / served)
 * times, at most 1 + w / served: one stall charged once per window (the pool) and
 * w * stall / served spread over the bytes, so that every fixed point stays linear. */
uint64_t an_reg_surcharge(const struct an_broker *b, uint64_t bytes)
{
	uint64_t served = an_reg_served(b);
	unsigned __int128 num;

	if (!b->reg_budget || !bytes)
		return 0;
	if (!served)
		return UINT64_MAX;
	num = (unsigned __int128)bytes * an_reg_stall(b);
	num = num / served + (num % served != 0);
	return num > UINT64_MAX ? UINT64_MAX : (uint64_t)num;
}

/* Regulation serving real-time flows first (docs/analysis.md): best-effort steps get
 * at most budget - reserve per period, real-time steps the whole budget. A step is
 * granted when the period's charges so far plus its own stay within the budget, so a
 * real-time step is trimmed or refused only once the real-time charges of its period
 * pass the reserve. Copied within a period [a, a + Pi), a message of a flow that
 * meets its deadline was released in (a - D, a + Pi): at most
 * floor((Pi + D + J) / T) + 1 of them (release jitter J), each charging `bytes`; a
 * stream flow's credit update (a header) is posted within D of its message's release
 * and copied within D of that: floor((Pi + 2D + J) / T) + 1 of them.
 * With the cells' budgets the control packets and short pieces that ride real-time
 * flows are real-time steps too, a header each. The budget limits them when they are
 * released (broker/dp_switch.c holds them to a period with budget left), the
 * regulator charges them when they are copied: by their flow's deadline after their
 * release, or (out) within its response bound R plus ingest_latency. Copied within
 * [a, a + Pi), they were released in (a - D, a + Pi), D the longest such delay of
 * the real-time flows they may be sent on: at most the budgets of the
 * ceil((Pi + D) / P) + 1 budget periods that interval overlaps (budget_headers). A
 * credit update is one of those control packets, so it is not counted again. */
static uint64_t ride_delay(const struct an_flow *flows, size_t n, const struct an_broker *b,
			   const struct an_flow_result *out)
{
	uint64_t d = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t di = flows[i].deadline;

		if (flows[i].best_effort)
			continue;
		if (out)
			di = min_u64(di, sadd(out[i].response, b->plat.ingest_latency));
		d = d > di ? d : di;
	}
	return d;
}

static uint64_t budget_headers(const struct an_flow *flows, size_t n, const struct an_broker *b,
			       const struct an_flow_result *out)
{
	uint64_t per = 0, d = ride_delay(flows, n, b, out);

	for (size_t i = 0; i < n; i++)
		if (!flows[i].best_effort)
			per = sadd(per, sadd(flows[i].budget_ctrl, flows[i].budget_pieces));
	return smul(smul(ceil_div(sadd(b->reg_period, d), b->budget_period) + 1, per),
		    AN_HDR_BYTES);
}

static uint64_t rt_demand(const struct an_flow *flows, size_t n, const struct an_broker *b,
			  const struct an_costs *costs, const struct an_flow_result *out)
{
	uint64_t sum = b->budget_period ? budget_headers(flows, n, b, out) : 0;

	for (size_t i = 0; i < n; i++) {
		const struct an_flow *f = &flows[i];
		uint64_t msgs;

		if (f->best_effort)
			continue;
		if (f->explicit_costs || !f->period || (out && !out[i].bounded))
			return UINT64_MAX;
		msgs = sadd(sadd(b->reg_period, f->deadline), f->jitter) / f->period + 1;
		/* A step charged at s in [a, a + Pi) belongs to a message seen at or after
		 * s - R (it is done by then), kicked at most ingest_latency before its
		 * sight and released nominally at most J before its kick. */
		if (out)
			msgs = min_u64(msgs, sadd(sadd(sadd(b->reg_period, out[i].response),
						       b->plat.ingest_latency), f->jitter) /
						     f->period + 1);
		sum = sadd(sum, smul(msgs, costs[i].bytes));
		/* A credit update is posted up to D after its message's release and
		 * copied within D of that. */
		if (f->type == AN_STREAM && !b->budget_period)
			sum = sadd(sum, smul(sadd(sadd(b->reg_period, smul(2, f->deadline)),
						  f->jitter) / f->period + 1, AN_HDR_BYTES));
	}
	return sum;
}

uint64_t an_rt_demand(const struct an_flow *flows, size_t n, const struct an_broker *b,
		      const struct an_costs *costs)
{
	return rt_demand(flows, n, b, costs, NULL);
}

uint64_t an_rt_demand_bounded(const struct an_flow *flows, size_t n,
			      const struct an_broker *b, const struct an_costs *costs,
			      const struct an_flow_result *out)
{
	return rt_demand(flows, n, b, costs, out);
}
