/* Response-time analysis of the flows a broker runs (DESIGN.md §Analysis model,
 * docs/analysis.md for every equation and its references).
 *
 * A pure library: no I/O, no floating point in any bound (only the displayed
 * utilisation and the overload pre-check use it; a case too close to call there is
 * left to the horizon), allocation only of scratch arrays in an_analyze, an_fp_flow
 * and an_assign_opa (start-up work, never on the real-time path). Every
 * time is an integer number of nanoseconds and every fixed point is computed in exact
 * uint64 arithmetic (saturating, so an overflow reads as "beyond the horizon" rather
 * than wrapping). Every fixed-point iteration is monotone and stops either at its
 * least fixed point or as soon as it passes the caller's horizon or spends the call's
 * work budget, which is then reported as AN_UNBOUNDED; utilisation above the capacity
 * is reported as AN_OVERLOAD before any iteration starts.
 *
 * The caller describes flows in struct an_flow, either by sizes (the library derives
 * the costs from the packet/chunk model and struct an_platform) or by costs already in
 * nanoseconds (explicit_costs), and the broker in struct an_broker.
 */
#ifndef RTVIO_ANALYSIS_H
#define RTVIO_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a virtio-vsock header: the regulator charges them with every piece. */
#define AN_HDR_BYTES 44u
/* Default analysis horizon: a busy period longer than this is reported unbounded. */
#define AN_DEFAULT_HORIZON_NS (10ull * 1000000000ull)
/* Most jobs (or test points) examined per flow before giving up as unbounded: keeps
 * the memory of a near-overloaded system finite and predictable. */
#define AN_MAX_POINTS 2000000u
/* Default work budget of one an_analyze or an_assign_opa call, in evaluations of one
 * flow's term in a fixed point (about a second of CPU): spent, the result is
 * AN_UNBOUNDED rather than a long wait. */
#define AN_DEFAULT_WORK 200000000ull

/* Entries of an_flow.own: two ends, each with a control and a short-piece budget. */
#define AN_OWN_MAX 4

enum an_policy {
	AN_FP,   /* limited-preemptive fixed priority (fixed preemption points) */
	AN_EDF,  /* limited-preemptive earliest deadline first */
	AN_FIFO, /* arrival order, best-effort traffic included: unbounded when present */
};

enum an_type {
	AN_STREAM,    /* its receiver sends one credit-update control packet per message */
	AN_SEQPACKET,
};

/* Platform costs, as `rtvio calibrate` measures them (worst case under interference). */
struct an_platform {
	uint64_t copy_bandwidth;  /* bytes per second, > 0 */
	uint64_t chunk_overhead;  /* ns per copy step (with the ingest pass before it that
				   * finds nothing new) */
	uint64_t packet_overhead; /* ns per piece, paid in its last step: RX completion,
				   * notification, and the TX packet's completion */
	uint64_t ingest_latency;  /* ns from a cell's kick to the broker seeing it */
	uint64_t notify_latency;  /* ns from the broker's notification to the receiver running */
	uint64_t ingest_packet;   /* ns to ingest one TX packet (pop, check, switch, queue) */
	uint64_t batch_gap;       /* ns the broker may spend outside the data plane after
				   * each run of run_steps steps (its event loop) */
	uint64_t change_apply;    /* ns: the longest apply step of a run-time change, a
				   * non-preemptive section between two runs, at most one
				   * per window (docs/analysis.md); 0 = not charged */
	uint64_t wake_write;      /* ns: one of the two wake-ups inside packet_overhead,
				   * which the multi-core data plane signals outside its
				   * mutex; 0 = unknown (L_done is then all of it) */
};

struct an_flow {
	const char *name;
	bool best_effort;       /* lowest band, no period, no bound; its sizes are not
				 * enforced: its steps are as long as chunk and rx_max allow */
	enum an_type type;
	/* Size model (when !explicit_costs): a message travels as TX packets of at
	 * most packet_size bytes, each delivered as pieces of at most rx_payload bytes
	 * (one per RX buffer, each with its own header: packet_overhead), each piece
	 * copied in steps of at most the broker's chunk. */
	uint64_t size;          /* max bytes per message, > 0 */
	uint64_t rx_payload;    /* payload bytes of one destination RX buffer, > 0 (the
				 * smallest the destination posts: sets the piece count) */
	uint64_t rx_max;        /* largest RX payload the destination may post (sets the
				 * longest step); 0 = not known, only chunk limits a step */
	uint64_t packet_size;   /* largest packet payload the sender emits, > 0 */
	/* Cost model (when explicit_costs): all in ns, 0 < last_step <= max_step <= cost;
	 * one TX packet of ceil((cost - last_step) / max_step) + 1 steps. */
	bool explicit_costs;
	uint64_t cost, last_step, max_step;
	/* Real-time flows only: */
	uint64_t period;        /* ns, > 0: minimum inter-arrival time */
	uint64_t deadline;      /* ns, > 0: relative to the message's arrival */
	uint64_t jitter;        /* ns: the sender's release jitter */
	unsigned priority;      /* fp only: 1 = highest; equal priorities interfere both ways */
	/* Cells' budgets that ride this flow (with b->budget_period): control packets
	 * and short RX pieces per budget period the broker may serve at this flow's
	 * priority (fp) or with deadlines no earlier than its (edf). */
	uint64_t budget_ctrl, budget_pieces;
	/* What of those budgets this flow's own ends (its sender and its receiver)
	 * leave out when they conform (docs/analysis.md, "Own ends"): per entry, the
	 * flow `ride` whose budget_ctrl and budget_pieces hold them, and how many of
	 * those control packets (credit updates of stream flows below this one) and
	 * short pieces (none, from an end posting RX buffers of its rx_buf) per budget
	 * period its own fp test does not charge. All 0: nothing left out. */
	struct an_own {
		size_t ride;
		uint64_t ctrl, pieces;
	} own[AN_OWN_MAX];
	/* Of the loop's vhost-user work (an_broker.vhu.work[k]), the buckets of this
	 * flow's own ends: conforming, they send no vhost-user message while it runs
	 * (docs/analysis.md, "Own ends"), so its own fp test leaves them out. */
	uint64_t own_vhu[2];
};

/* Supply the data path loses to work outside its steps (an_vhu.c): token buckets of
 * work[k] ns refilled per period[k] ns, all cells together: in any interval t at
 * most the sum of work[k] + ceil(work[k] t / period[k]). work 0 = none. [0] and [1]
 * the loop's vhost-user work (messages, heavy ones); [AN_LOSS_WRITES] on several
 * cores a core's waits on W for the control path's write sections, at most one
 * per write (an_mcore.c; never set on one core). A kind may also have a bucket of
 * cap_work[k] ns per cap_period[k] ns that the same work passes through as well (the
 * broker-wide vhost-user buckets): then its term is the smaller of the two
 * buckets' at every t. cap_work 0 = no such bucket. */
#define AN_LOSS_KINDS 3
#define AN_LOSS_WRITES 2
struct an_vhu {
	uint64_t work[AN_LOSS_KINDS], period[AN_LOSS_KINDS];
	uint64_t cap_work[AN_LOSS_KINDS], cap_period[AN_LOSS_KINDS];
};

struct an_broker {
	enum an_policy policy;
	uint64_t chunk;             /* bytes, > 0: largest non-preemptive copy step */
	uint64_t reg_budget;        /* bytes per period, 0 = unregulated */
	uint64_t reg_period;        /* ns, > 0 when regulated */
	uint64_t reg_reserve;       /* bytes of each period best-effort steps may not
				     * spend (the broker's model_rt_reserve); 0 = none */
	struct an_platform plat;
	uint64_t tx_slots;          /* TX packets all cells together may have in the
				     * broker at once (cells x DP_TX_SLOTS) */
	uint64_t run_steps;         /* steps per data-plane run (DP_RUN_STEPS); > 0 when
				     * batch_gap is */
	uint64_t pick_lead;         /* ns of every step's cost (inside chunk_overhead) that
				     * pass before the step picks its message: on several
				     * broker cores the first M wait, and W's where it is
				     * charged per step (an_mcore.h).
				     * A message's last byte is copied that long before
				     * its last step's cost ends. 0 on one core. */
	/* The cells' per-period budgets (model/model.h, model_cell_budgets; docs/
	 * analysis.md, "Per-cell budgets"): what the broker lets the cells cost it per
	 * budget_period whatever they do. budget_period 0: none charged. The ingest
	 * budgets (all cells added up) are work of the highest priority in every
	 * window; control packets and short RX pieces ride flows (an_flow). */
	uint64_t budget_period;     /* ns */
	uint64_t budget_ingest;     /* TX chains taken from the cells' rings */
	uint64_t piece_steps;       /* steps of one short RX piece at most */
	struct an_vhu vhu;          /* the loop's vhost-user work (all 0: none) */
	uint64_t horizon;           /* ns; 0 = AN_DEFAULT_HORIZON_NS */
	uint64_t work_budget;       /* 0 = AN_DEFAULT_WORK */
};

/* A message's costs (ns): C_i its whole cost (copy steps, the ingest work its packets
 * cause and its share of the broker's batch gaps), q_i its last non-preemptive step,
 * Q_i the longest non-preemptive step any of its messages (of any size up to `size`;
 * of any size at all for a best-effort flow) can occupy the broker with. */
struct an_costs {
	uint64_t C, q, Q;
	/* Bytes the regulator charges (payload and piece headers): a whole message, and
	 * the longest step. 0 for explicit costs (no bytes known). */
	uint64_t bytes, Qbytes;
};

enum an_status {
	AN_OK,
	AN_OVERLOAD,  /* utilisation above the copy engine's capacity */
	AN_UNBOUNDED, /* a busy period did not close within the horizon (or the work
		       * budget ran out first) */
};

struct an_flow_result {
	struct an_costs costs;
	bool bounded;        /* response/latency are meaningful */
	uint64_t response;   /* R_i: from the broker's sight of a message (its stamp) to
			      * the last byte copied; ingest_latency + R_i from the
			      * sender's kick (ns) */
	/* fp: from the sender's kick to the last byte, max(ingest_latency + F_1, R_k
	 * for k >= 2): job k >= 2's R_k already holds its ingest latency through its
	 * jitter (docs/analysis.md, fp "Response"). 0 where not computed (edf, fifo):
	 * the latency then takes ingest_latency + R_i. */
	uint64_t from_kick;
	uint64_t latency;    /* from_kick (else ingest_latency + R_i) + notify_latency (ns) */
	bool schedulable;    /* bounded && latency <= deadline (never for best-effort) */
	uint64_t busy_period; /* the busy period the bound was taken over (ns) */
	unsigned jobs;       /* fp: jobs of the busy period examined */
	unsigned worst_job;  /* fp: the job (1-based) that gave R_i */
};

struct an_result {
	enum an_status status;
	const char *why;      /* a static phrase explaining a status other than AN_OK */
	bool schedulable;     /* status == AN_OK and every real-time flow schedulable */
	bool demand_ok;       /* edf: the processor-demand test passed */
	uint64_t demand_fail_at; /* edf: first failing test point t (ns), when !demand_ok */
	double utilization;   /* sum C_i/T_i of real-time flows and their credit updates,
			       * for display only */
	double capacity;      /* 1: regulation is in the utilization (byte surcharges) */
	bool regulated;
	uint64_t theta;       /* regulated: bytes of work every throttled period serves
			       * at least (budget - 44) */
	/* fp, regulated with a reserve that covers the real-time demand (an_rt_demand):
	 * no real-time step is ever throttled, and the real-time flows were analysed
	 * on the unregulated engine (regulated is then false). */
	bool rt_reserved;
	uint64_t rt_demand;   /* an_rt_demand of the set, when regulated */
};

/* e(b) = chunk_overhead + ceil(b * 1e9 / copy_bandwidth). */
uint64_t an_chunk_cost(const struct an_platform *p, uint64_t bytes);

/* The host bridge's work in one pass between two data-plane runs (docs/analysis.md,
 * "Host bridge"), under b's platform costs before any host term is in batch_gap:
 * `calls` system calls of at most one batch_gap each, `bytes` copied at
 * copy_bandwidth, and the host stack's ring work after a run of run_steps steps (per
 * step a piece of at most rx_payload bytes copied into a socket's buffer and one TX
 * completion, ingest_packet). 0 when calls is 0 (no host endpoint). */
uint64_t an_host_gap(const struct an_broker *b, uint64_t calls, uint64_t bytes,
		     uint64_t rx_payload);
/* The work the cells' budgets allow per budget period (ns), 0 when b charges none:
 * an_ingest_work every chain the cells may have ingested; an_ride_work the control
 * packets' steps and the short pieces' steps and overheads riding flow f, with
 * their shares of the batch gaps and (regulated) of the throttles. */
uint64_t an_ingest_work(const struct an_broker *b);
/* The loop's vhost-user work's long-run share of the broker (an_vhu.c): per kind
 * the smaller of the two buckets' rates. */
long double an_vhu_utilization(const struct an_vhu *v);
uint64_t an_ride_work(const struct an_broker *b, const struct an_flow *f);
/* The same for `ctrl` control packets and `pieces` short pieces. */
uint64_t an_budget_steps(const struct an_broker *b, uint64_t ctrl, uint64_t pieces);

/* Costs of flow f under broker b (sizes -> ns, or the explicit costs). -EINVAL when
 * the flow's parameters are inconsistent. */
int an_flow_costs(const struct an_flow *f, const struct an_broker *b, struct an_costs *c);

/* Checks every parameter; on error returns -EINVAL and, when bad_flow is not NULL,
 * the index of the offending flow (-1 for the broker) and a static phrase. */
int an_validate(const struct an_flow *flows, size_t n, const struct an_broker *b,
		int *bad_flow, const char **why);

/* The whole analysis under b->policy. out[] has n entries. Returns 0 (the answer is in
 * res and out) or -EINVAL (bad input: see an_validate). */
int an_analyze(const struct an_flow *flows, size_t n, const struct an_broker *b,
	       struct an_result *res, struct an_flow_result *out);

/* The fp test of one flow i under the priorities prio[] (1 = highest; best-effort
 * flows are ignored in prio), with costs[] already computed. Credit updates are
 * taken as posted by their message's deadline, which holds when every flow meets its
 * deadline (the test Audsley's assignment runs; an_analyze does not rely on it).
 * Fills *r; returns 0, or 1 when the busy period passed the horizon or the work budget
 * (r->bounded = false), or -EINVAL. */
int an_fp_flow(const struct an_flow *flows, size_t n, const struct an_broker *b,
	       const struct an_costs *costs, const unsigned *prio, size_t i,
	       struct an_flow_result *r);

/* Deadline-monotonic priorities for the real-time flows (ties by index), written into
 * prio[] (best-effort flows get 0). */
void an_assign_dm(const struct an_flow *flows, size_t n, unsigned *prio);

/* Audsley's optimal priority assignment with the fp test of an_fp_flow (a flow is
 * feasible at a level when its latency bound meets its deadline). costs[] as from
 * an_flow_costs.
 * Returns 0 with prio[] filled, -ESRCH when no assignment exists (prio[] undefined),
 * -EINVAL on bad input. */
int an_assign_opa(const struct an_flow *flows, size_t n, const struct an_broker *b,
		  const struct an_costs *costs, unsigned *prio);

/* Supply bound function of the periodic resource (pi, theta) (Shin and Lee 2003), and
 * its pseudo-inverse: the least t with sbf(t) >= w. theta >= pi means a dedicated
 * resource (sbf(t) = t). Saturate at UINT64_MAX. */
uint64_t an_sbf(uint64_t pi, uint64_t theta, uint64_t t);
uint64_t an_sbf_inv(uint64_t pi, uint64_t theta, uint64_t w);

/* Bytes the regulator may charge the real-time flows within one regulation period
 * while every one of them meets its deadline: per flow floor((period + D + J) / T) + 1
 * messages of costs[i].bytes, and for a stream flow floor((period + 2D + J) / T) + 1
 * credit updates of 44 bytes.
 * UINT64_MAX when a real-time flow has explicit costs (no bytes known). */
uint64_t an_rt_demand(const struct an_flow *flows, size_t n, const struct an_broker *b,
		      const struct an_costs *costs);
/* The same while every real-time message is copied within its response bound of the
 * broker's sight of it (out[i].response, from an unregulated fp analysis in which
 * every real-time flow is bounded): per flow at most
 * floor((period + R + ingest_latency + J) / T) + 1 messages, and never more than
 * an_rt_demand counts. UINT64_MAX when some real-time flow has no bound. */
uint64_t an_rt_demand_bounded(const struct an_flow *flows, size_t n,
			      const struct an_broker *b, const struct an_costs *costs,
			      const struct an_flow_result *out);

/* Theta guaranteed by the regulator per period, in ns of work (docs/analysis.md);
 * max_step is the longest step of any flow (or of the broker's own RST replies):
 * floor(budget * 1e9 / bw) - max_step - 2 chunk_overhead, at least 0; the period
 * itself when unregulated or when the budget cannot run out within a period. */
uint64_t an_regulated_theta(const struct an_broker *b, uint64_t max_step);

/* The regulator as the broker runs it (docs/analysis.md, "Regulated copy engine"):
 * bytes every throttled period serves at least (budget - 44, 0 when the budget
 * cannot carry a header and a byte), the time one throttle costs at most (the
 * period and the chunk overhead of the step a partial grant splits), and the time
 * surcharge of `bytes` regulated bytes: ceil(bytes * stall / served). 0 unregulated. */
uint64_t an_reg_served(const struct an_broker *b);
uint64_t an_reg_stall(const struct an_broker *b);
uint64_t an_reg_surcharge(const struct an_broker *b, uint64_t bytes);

const char *an_policy_name(enum an_policy p);
const char *an_status_name(enum an_status s);

#endif
