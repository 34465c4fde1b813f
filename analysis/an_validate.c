/* Input checks and the names of the analysis's enums. */
#include "analysis.h"
#include "an_arith.h"

#include <errno.h>

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

/* Flow i's own[] entries name flows, and leave out of each no more control packets
 * and short pieces than that flow's budgets hold. */
static bool own_fits(const struct an_flow *flows, size_t n, size_t i)
{
	const struct an_own *o = flows[i].own;

	for (size_t e = 0; e < AN_OWN_MAX; e++) {
		uint64_t ctrl = 0, pieces = 0;

		if (!o[e].ctrl && !o[e].pieces)
			continue;
		if (o[e].ride >= n)
			return false;
		for (size_t k = 0; k < AN_OWN_MAX; k++)
			if (o[k].ride == o[e].ride) {
				ctrl = sadd(ctrl, o[k].ctrl);
				pieces = sadd(pieces, o[k].pieces);
			}
		if (ctrl > flows[o[e].ride].budget_ctrl || pieces > flows[o[e].ride].budget_pieces)
			return false;
	}
	return true;
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
		else if (f->own_vhu[0] > b->vhu.work[0] || f->own_vhu[1] > b->vhu.work[1])
			w = "its own ends' vhost-user work exceeds all cells'";
		else if (!own_fits(flows, n, i))
			w = "its own ends leave out more of a flow's budgets than it carries";
	}
	if (!w)
		return 0;
	if (bad_flow)
		*bad_flow = bad;
	if (why)
		*why = w;
	return -EINVAL;
}
