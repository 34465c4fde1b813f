/* A discrete-event simulator of the broker's data plane on m cores, for the analysis
 * tests only (docs/analysis.md "Several cores"; docs/broker.md "Several cores").
 *
 * Every core runs the loop the data plane runs, one step at a time, each step inside
 * the reader side of W (phase-fair: a reader that finds a writer present or waiting
 * waits for that writer's end; a writer waits for the readers inside when it came):
 *   0. W's reader side, taken before the step's first M request;
 *   1. M (one FIFO mutex for all cores): an ingest pass over the core's cells at
 *      ingest_packet per packet (its flows' messages visible when the pass starts,
 *      stamped with that start, and hostile packets toward other cores filling the
 *      rest of the core's TX slots), chunk_overhead, and the pick (fp, edf or fifo
 *      among the core's messages);
 *   2. K (FIFO k-exclusion, k = copy_slots): the copy of the step's bytes;
 *   3. M again: the piece's completion when the step ends a piece, packet_overhead
 *      less its two wake-ups (an_mcore_l_done), which follow once M is released;
 *   4. W's reader side released when the step ends;
 * and after each run of run_steps steps the core leaves for batch_gap. A control path
 * takes W's writer side for write_section, again at most write_gap after the last
 * write ended and, with write_spacing, no sooner than that after the last write came
 * (the data plane's write gate, model_write_spacing). Requests are served in the order they are made (ties by core), as the
 * FIFO locks grant them. Every flow is a real-time seqpacket flow of the size model,
 * unregulated; messages are released as sim.h's SIM_CRITICAL (all at 0, then as
 * early as jitter allows) or SIM_RANDOM (random phases, jitter and ingest latency)
 * until until_ns, then drained.
 */
#ifndef RTVIO_ANALYSIS_SIM_MCORE_H
#define RTVIO_ANALYSIS_SIM_MCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analysis.h"
#include "sim.h"

struct sim_mc_config {
	const struct an_flow *flows;
	size_t n;
	const uint32_t *core;      /* per flow: the core that serves it */
	const unsigned *prio;      /* fp: per flow, 1 = highest */
	const struct an_broker *b; /* policy, chunk, platform, run_steps (tx_slots unused) */
	uint32_t ncores, copy_slots;
	const uint64_t *tx_slots;  /* per core */
	uint64_t write_section;    /* each control-path write holds W this long */
	uint64_t write_gap;        /* the next write comes within this after one ends */
	uint64_t write_spacing;    /* and no sooner than this after the last one came
				    * (the data plane's write gate; 0 = none) */
	bool no_writes;            /* the control path never writes */
	enum sim_pattern pattern;
	uint64_t seed;
	uint64_t until_ns;         /* no message is released from here on */
	uint64_t limit_ns;         /* give up after this time (returns -ETIME) */
};

/* The longest waits the simulation saw on each lock, ns. */
struct sim_mc_waits {
	uint64_t mutex, kex, rw_reader;
	uint64_t mutex_requests, kex_requests, writes;
};

/* Returns 0, -ETIME, -ENOMEM or -EINVAL (a flow the simulator does not model). */
int sim_mc_run(const struct sim_mc_config *c, struct sim_flow_stats *st,
	       struct sim_mc_waits *w);

#endif
