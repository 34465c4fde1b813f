/* A discrete-event simulator of the broker's dispatch, for the analysis tests only.
 *
 * It replays the broker's loop in integer nanoseconds (broker/dataplane.c dp_run and
 * the daemon around it), deriving every step from the flows' sizes on its own (not
 * through the library), so that it checks the cost model as well:
 *   - an ingest pass before every step takes every packet visible when it starts,
 *     at ingest_packet each, and stamps them with its start time (the broker's
 *     arrival, from which edf deadlines and fifo order run); a packet that becomes
 *     visible during a pass waits for the next one;
 *   - a hostile cell keeps the TX slots the real-time packets leave free full of
 *     packets that are ingested and never served (b->tx_slots in all), and takes
 *     every slot a completion frees;
 *   - after every b->run_steps steps the broker leaves for b->plat.batch_gap;
 *   - one step at a time, fp, edf (stamp + D) or fifo (stamp) choosing again
 *     between steps, through an optional MemGuard-style regulator that grants bytes
 *     per period, partially when the budget runs low;
 *   - a stream flow's receiver posts a credit update for each message it gets, by
 *     the message's deadline or at once when it gets it later, a control packet of
 *     its own at the flow's rank, unpoliced (with b->budget_period they are among
 *     the control packets of the budgets below, and not posted besides);
 *   - messages: a sender's kick, then visible within ingest_latency;
 *   - with b->budget_period, the cells' budgets spent in full at the start of every
 *     budget period: what the real-time ends do not use of b->budget_ingest
 *     (budget_rt) in chains the broker drops at once (ingest work, no slot held), and
 *     each flow's budget_ctrl + budget_pieces header-only steps at its priority and
 *     deadline (a short piece as one step: piece_steps 1); every chain any pass
 *     takes is within the period's b->budget_ingest, as the broker enforces, so the
 *     hostile cells fill no TX slots beyond it; with own1, one flow's ends conform
 *     and leave out of those steps what its own[] says (sim_config.own1).
 * SIM_CRITICAL replays the worst case the analysis assumes (everything at time 0,
 * then as early as jitter and ingest latency allow, every free slot filled, a gap
 * first, the credit updates of earlier messages as late as allowed and the next
 * ones at once) and stops when the broker first becomes idle; SIM_RANDOM draws phases,
 * jitter, ingest latencies, credit delays, junk and the gap phase from a seed and
 * runs until every message released before until_ns is done.
 */
#ifndef RTVIO_ANALYSIS_SIM_H
#define RTVIO_ANALYSIS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analysis.h"

enum sim_pattern {
	SIM_CRITICAL,
	SIM_RANDOM,
};

struct sim_config {
	const struct an_flow *flows;
	size_t n;
	const bool *include;     /* NULL = every real-time flow takes part */
	const unsigned *prio;    /* fp: per flow, 1 = highest */
	const struct an_broker *b;
	enum sim_pattern pattern;
	uint64_t seed;           /* SIM_RANDOM */
	uint64_t until_ns;       /* SIM_RANDOM: no message is released from here on */
	const uint64_t *phase;   /* SIM_RANDOM: each flow's first nominal release (NULL:
				  * drawn in [0, period)) */
	bool exact_first;        /* SIM_RANDOM: each flow's first message kicked at its
				  * phase and seen at once */
	uint64_t block_ns;       /* a lower step running at time 0 */
	uint64_t block_bytes;    /* bytes it charges to the regulator */
	uint64_t reg_phase;      /* first regulation boundary, in (0, period] */
	uint64_t reg_used;       /* bytes already used in the period containing 0 */
	uint64_t reg_wake;       /* ns a throttled broker runs again after the boundary
				  * (its wake-up from the epoll timeout; 0: at it) */
	uint64_t limit_ns;       /* give up after this time (returns -ETIME) */
	/* A best-effort flow with data always queued: whenever no real-time work is
	 * ready the broker copies a step of bulk_bytes of it (a chunk overhead, the
	 * copy and a packet overhead), charged against what b->reg_reserve leaves of
	 * the period's budget; refused, the broker waits for the next period or the
	 * next visible packet, and forfeits nothing (broker/dp_copy_step.c). */
	bool bulk;
	uint64_t bulk_bytes;
	/* With b->budget_period: the chains of b->budget_ingest per period that belong
	 * to the real-time flows' ends (their packets, credit updates and the control
	 * packets riding them), ingested as they come; the hostile cells spend the rest
	 * at the period's first pass and hold no TX slot beyond it. More chains of
	 * real-time messages in one period than budget_rt less the control packets:
	 * sim_run returns -ERANGE (the broker would have held them back, which the
	 * simulation does not model). */
	uint64_t budget_rt;
	/* With b->budget_period: 1 + the flow whose own ends conform (0: none). Each
	 * ride flow then spends what that flow's own[] entries leave out of it less per
	 * period (its ends' short pieces and their credit updates of lower flows); every
	 * other cell still spends all of its budgets. Only that flow's bound is then
	 * claimed (docs/analysis.md, "Own ends"). */
	size_t own1;
};

struct sim_flow_stats {
	uint64_t jobs;          /* messages completed */
	uint64_t max_response;  /* finish - the sender's kick, ns */
	uint64_t max_residence; /* finish - the broker's stamp, ns */
	uint64_t misses;        /* messages finished after the broker's deadline (stamp + D) */
};

/* Returns 0 (done), -ETIME (limit reached), -ENOMEM, -EINVAL, -ERANGE (budget_rt). */
int sim_run(const struct sim_config *c, struct sim_flow_stats *st);

/* Step list of one message of flow f (sim's own derivation): fills cost[] and bytes[]
 * (up to max entries), marks in ends[] the steps that end a TX packet, and returns the
 * count, or -ENOSPC. */
int sim_steps(const struct an_flow *f, const struct an_broker *b, uint64_t *cost,
	      uint64_t *bytes, bool *ends, size_t max);

#endif
