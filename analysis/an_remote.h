/* The end-to-end bound of a flow carried to or from another broker by a gateway
 * (docs/gateway.md): the local bound (between the local cell and the gateway cell,
 * as the analysis computes it for any flow) + the remote's declared network budget
 * + the remote end's bound (the far broker's, as its `rtvio analyze` gives it). */
#ifndef RTVIO_ANALYSIS_AN_REMOTE_H
#define RTVIO_ANALYSIS_AN_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "analysis.h"
#include "config.h"

struct an_composed {
	bool remote;   /* the flow has an end on another broker */
	bool bounded;  /* all three parts are known: total is meaningful */
	uint64_t local, network, far, total; /* ns */
};

/* Composes flow i's bound from its local result r. */
void an_remote_compose(const struct rtvio_config *cfg, int i, const struct an_flow_result *r,
		       struct an_composed *c);

#endif
