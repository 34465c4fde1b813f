/* A discrete-event simulator of the broker's dispatch, for the analysis tests only.
 *
 * It replays one scenario in integer nanoseconds: an optional blocking step already
 * running at time 0, then the flows' jobs released in the worst-case pattern the
 * analysis assumes (job k of flow j arrives at k T_j - J_j and is released at
 * max(0, k T_j - J_j)), dispatched step by step (fp, edf or fifo, choosing again
 * after every step), through an optional MemGuard-style regulator that grants bytes
 * per period, partially when the budget runs low. It derives the steps of a message
 * from its sizes on its own (not through the library), so that it checks the cost
 * model as well. It stops when the broker first becomes idle: the busy period that
 * starts at the critical instant is over.
 */
#ifndef RTVIO_ANALYSIS_SIM_H
#define RTVIO_ANALYSIS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analysis.h"

struct sim_config {
	const struct an_flow *flows;
	size_t n;
	const bool *include;     /* NULL = every real-time flow takes part */
	const unsigned *prio;    /* fp: per flow, 1 = highest */
	const struct an_broker *b;
	uint64_t block_ns;       /* blocking step running at time 0 */
	uint64_t block_bytes;    /* bytes it charges to the regulator */
	uint64_t reg_phase;      /* first regulation boundary, in (0, period] */
	uint64_t reg_used;       /* bytes already used in the period containing 0 */
	uint64_t limit_ns;       /* give up after this time (returns -ETIME) */
};

struct sim_flow_stats {
	uint64_t jobs;          /* jobs completed */
	uint64_t max_response;  /* finish - arrival, ns */
	uint64_t misses;        /* jobs that finished after arrival + deadline */
};

/* Returns 0 (the busy period closed), -ETIME (limit reached), -ENOMEM, -EINVAL. */
int sim_run(const struct sim_config *c, struct sim_flow_stats *st);

/* Step list of one message of flow f (sim's own derivation): fills cost[] and bytes[]
 * (up to max entries) and returns the count, or -ENOSPC. */
int sim_steps(const struct an_flow *f, const struct an_broker *b, uint64_t *cost,
	      uint64_t *bytes, size_t max);

#endif
