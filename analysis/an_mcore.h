/* Response-time analysis of a broker whose data plane runs on m cores
 * (docs/analysis.md, "Several cores"; the data plane's design is docs/broker.md
 * "Several cores"). Each core dispatches the flows toward the cells it owns; each of
 * its steps takes the reader side of a phase-fair reader-writer lock W (against the
 * control path's writes) for the whole step, and inside it one FIFO mutex M twice and
 * a k-exclusion lock K once (around the copy), whose blocking bounds come from
 * sync/bounds.h. Every core is then analysed as a one-core broker (an_analyze) whose
 * steps are longer by the blocking and by a pass over its cells' TX slots, and whose
 * regulator has budget / m. The wait on W is charged per control-path write (lost
 * supply), the writes being spaced by the data plane's write gate, or per step where
 * the spacing is shorter than that wait.
 *
 * With m <= 1 an_analyze_mcore is an_analyze, result for result. */
#ifndef RTVIO_ANALYSIS_AN_MCORE_H
#define RTVIO_ANALYSIS_AN_MCORE_H

#include <stddef.h>
#include <stdint.h>

#include "analysis.h"

/* A flow every core may have to serve (the default best-effort class: any cell). */
#define AN_ANY_CORE UINT32_MAX

struct an_mcore {
	uint32_t ncores;          /* m; 0 or 1 = one core */
	uint32_t copy_slots;      /* k of K, 1..m; 0 = m (no copy waits for another) */
	const uint32_t *core;     /* per flow: its core (< m) or AN_ANY_CORE */
	const uint32_t *credit_core; /* per flow: the core that delivers its credit
				   * updates (its sender's); NULL = its own core */
	const uint64_t *tx_slots; /* per core: TX packets the cells it owns may hold in
				   * the broker at once (it ingests them) */
	uint64_t write_section;   /* L_W (ns): the longest control-path write section;
				   * 0 = the platform's batch_gap */
	uint64_t write_spacing;   /* ns: two write sections begin at least this far apart
				   * (model_write_spacing); 0 = no such limit. With it (and
				   * at least B_W), a core's W waits are charged per write
				   * as lost supply, not per step */
	/* The cells' per-period budgets by core (with b->budget_period; docs/analysis.md
	 * "Several cores", the budgets): a core ingests only its own cells, and a
	 * control packet or short piece is delivered by the core of the cell it goes
	 * to. NULL: every core is charged b->budget_ingest and the flows' own
	 * budget_ctrl and budget_pieces on the flow's core. */
	const uint64_t *budget_ingest; /* per core: chains its cells may hand it */
	const uint64_t *ride_ctrl;     /* [c * n + i]: control packets core c delivers
					* at flow i's rank (and deadline) per period */
	const uint64_t *ride_pieces;   /* [c * n + i]: short pieces, likewise */
};

/* The lock terms of one analysis (ns), the same for every core but the pass. */
struct an_mcore_terms {
	uint64_t l_pick, l_done, l_m; /* M's sections and their maximum */
	uint64_t l_copy;              /* K's section: one chunk's copy */
	uint64_t l_r, l_w;            /* W's sections: one step, one write */
	uint64_t mutex;               /* sync_bound_mutex(m, l_m) */
	uint64_t kex;                 /* sync_bound_kex(m, k, l_copy) */
	uint64_t rw_reader;           /* sync_bound_rw_reader(m, l_r, l_w) */
	uint64_t rw_step;             /* what every step is charged for W: rw_reader, or 0
				       * when the writes are charged per write */
	uint64_t write_spacing;       /* > 0: per write, rw_reader per write_spacing */
};

/* What one flow suffers on its core. */
struct an_blocking {
	uint32_t core;            /* AN_ANY_CORE: the worst core's figures */
	uint64_t mutex;           /* ns per M request */
	uint32_t mutex_per_step;  /* M requests per step: 2 (0 on one core) */
	uint64_t kex;             /* ns per step on K */
	uint64_t rw_reader;       /* ns per step on W (0 when charged per write) */
	uint64_t rw_write;        /* ns per write section on W (0 when charged per step) */
	uint64_t write_spacing;   /* ns between two write sections' starts, at least */
	uint64_t ingest_pass;     /* ns per step: the pass over the core's TX slots */
	uint64_t per_step;        /* 2 mutex + kex + rw_reader + ingest_pass */
	uint64_t pick_lead;       /* rw_reader + mutex: the part of per_step before the
				   * pick, which a message's last byte does not wait for */
	uint64_t per_job;         /* what these terms add to one message's cost C */
};

/* L_done, the completion under the data plane's mutex M: packet_overhead less the
 * two wake-ups (wake_write) it holds, which a core signals after releasing M. */
uint64_t an_mcore_l_done(const struct an_platform *p);

/* The lock terms for broker b, the flows' costs under b (costs[0..n)) and mc. */
void an_mcore_terms(const struct an_broker *b, const struct an_mcore *mc,
		    const struct an_costs *costs, size_t n, struct an_mcore_terms *lt);

/* The one-core broker core c is analysed as (b with the terms of lt folded in). */
void an_mcore_broker(const struct an_broker *b, const struct an_mcore *mc,
		     const struct an_mcore_terms *lt, uint32_t c, struct an_broker *bc);

/* The whole analysis on mc->ncores cores: out[] and blk[] (NULL allowed) have n
 * entries; res says the worst core's status and utilisation, schedulable when every
 * real-time flow on every core is. Returns 0, -EINVAL (bad input: a flow's core out
 * of range, no TX slots per core, or what an_validate refuses) or -ENOMEM. */
int an_analyze_mcore(const struct an_flow *flows, size_t n, const struct an_broker *b,
		     const struct an_mcore *mc, struct an_result *res,
		     struct an_flow_result *out, struct an_blocking *blk);

/* Priorities ranked within each core's set (1 = highest on that core; best-effort
 * flows get 0), as an_assign_dm and an_assign_opa do for one core, which they are
 * when m <= 1. The opa search on core c uses core c's broker (an_mcore_broker: the
 * lock terms, its pass and its budget share) and its own flows; the credit updates
 * it delivers for flows another core serves are outside the search, so the m-core
 * analysis of the result has the last word. Return 0, -ESRCH (opa: some core has no
 * assignment; prio[] undefined), -ETIME (opa: work budget spent), -EINVAL (a real-time
 * flow without a core, or no TX slots per core) or -ENOMEM. */
int an_mcore_assign_dm(const struct an_flow *flows, size_t n, const struct an_mcore *mc,
		       unsigned *prio);
int an_mcore_assign_opa(const struct an_flow *flows, size_t n, const struct an_broker *b,
			const struct an_mcore *mc, unsigned *prio);

#endif
