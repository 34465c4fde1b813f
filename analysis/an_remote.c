/* Composition of a remote flow's end-to-end bound (an_remote.h). The three parts are
 * added, never overlapped: the gateways' own time is inside the network budget the
 * user declares, and each broker's bound already ends with its receiver running. */
#include "an_remote.h"

void an_remote_compose(const struct rtvio_config *cfg, int i, const struct an_flow_result *r,
		       struct an_composed *c)
{
	const struct rtvio_flow_cfg *fl = &cfg->flows[i];

	*c = (struct an_composed){ .remote = fl->rem.remote >= 0 };
	if (!c->remote)
		return;
	const struct rtvio_remote_cfg *rm = &cfg->remotes[fl->rem.remote];

	c->local = r->latency;
	c->network = rm->network_budget_ns;
	c->far = rm->remote_bound_ns;
	/* A remote bound of 0 means "not given", and a local flow without a bound
	 * has none to compose. Each part is at most an hour: the sum cannot wrap. */
	c->bounded = r->bounded && !fl->best_effort && rm->remote_bound_ns > 0;
	c->total = c->bounded ? c->local + c->network + c->far : 0;
}
