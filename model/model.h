/* One model of the broker: what a loaded configuration means for the data plane and
 * for the analysis alike (DESIGN.md §How the new parts fit). Per flow its rank and
 * class, the sizes its messages travel in, and the broker's pools and constants.
 * broker/dataplane.c takes its ranks and classes from here and `rtvio analyze` its
 * input (analysis/from_config.c), so the two cannot drift apart.
 *
 * Plain data, computed once by model_create (one allocation, start-up only) from a
 * configuration the loader has already validated; nothing here allocates afterwards.
 */
#ifndef RTVIO_MODEL_H
#define RTVIO_MODEL_H

#include <stdbool.h>
#include <stdint.h>

struct rtvio_config;
struct rtvio_flow_cfg;

/* TX chains one cell can have in the broker at once: covers a ring of 256 entries
 * (the guest library uses 128, QEMU 128). A cell with more waits on its own ring. */
#define MODEL_TX_SLOTS 256u
/* Which ingest term the analysis charges (docs/analysis.md, "The broker's own work"):
 *   1: each cell's ingest budget, model_cell_ingest_budget: the packets its real-time
 *      flows (and the credit updates it returns for stream flows it receives) can
 *      have outstanding, plus MODEL_CELL_SLACK for control and best-effort
 *      traffic. The data plane enforces it: the cell gets exactly that many packet
 *      slots (dataplane.c init_cells), and a cell with more waits on its own ring.
 *   0: every TX slot of every cell (MODEL_TX_SLOTS per cell), in the broker and in
 *      the analysis alike. */
#ifndef MODEL_INGEST_BUDGETS
#define MODEL_INGEST_BUDGETS 1
#endif
/* Packets a cell may have in the broker beyond its flows' needs: connection
 * set-up and shut-down, RSTs, best-effort data. */
#define MODEL_CELL_SLACK 8u
/* Control packets and short RX pieces per budget period beyond its flows' needs
 * when the configuration does not say ([cell] allowance, RTVIO_ALLOWANCE_DEFAULT). */
#define MODEL_CELL_ALLOWANCE 1u
/* The budget period when the configuration leaves it 0 (a config built in code;
 * the loader's default is the same, RTVIO_BUDGET_PERIOD_DEFAULT_NS): every cell's
 * per-period budgets (struct model_cell_budget) start afresh on a grid of
 * model_budget_period() from the broker's start. */
#define MODEL_BUDGET_PERIOD_NS 1000000ull
/* Segments per chain the broker accepts (Linux uses 2 for TX, 1 for RX). */
#define MODEL_MAX_SEG 16u
/* RX chains the broker may hold for a cell without a piece to put in them. */
#define MODEL_RX_SPARE 8u
/* Most cells one broker serves. */
#define MODEL_MAX_CELLS 4096u
/* Copy steps in one data-plane run before the daemon's event loop gets a turn. */
#define MODEL_RUN_STEPS 64u
/* ingest_step is a pass over this many pending packets (docs/config.md; what `rtvio
 * calibrate` times): the analysis charges each packet ingested that share of it. */
#define MODEL_INGEST_STEP_PACKETS 128u
/* Payload of one RX buffer of Debian's Linux 6.1 guest driver: it posts one 4096-byte
 * skb per buffer, of which the shared-info tail (320 bytes on x86-64) is not usable,
 * and the 44-byte header shares the rest (docs/qemu-vhost-user.md: "about 3.7 KiB"):
 * 4096 - 320 - 44. A vm cell's rx_buf larger than this cannot be what the guest
 * really posts, so the piece count takes the smaller of the two. */
#define MODEL_LINUX_GUEST_RX_PAYLOAD 3732u

enum model_class {
	MODEL_REAL_TIME,   /* policed, has a deadline and a bound */
	MODEL_BEST_EFFORT, /* lowest band: no policing, no deadline, no bound */
};

struct model_flow {
	enum model_class cls;
	/* The data plane's fp key, smaller first: explicit priority p is (p, 0), an
	 * unprioritised real-time flow (INT_MAX + 1, deadline), a configured
	 * best-effort flow (UINT64_MAX - 1, 0), the implicit class (UINT64_MAX, 0).
	 * Equal keys are served in arrival order. */
	uint64_t rank_hi, rank_lo;
	/* The same order as a dense priority for the analysis: 1 = highest, equal keys
	 * share a rank (and interfere both ways); 0 for best-effort. */
	unsigned rank;
	/* Sizes (bytes). rx_payload: the smallest RX buffer payload the destination
	 * posts (sets the piece count); rx_max: the largest it may post (sets the
	 * longest step), 0 = not known (a guest's kernel decides); chunk: K =
	 * min(broker chunk, rx_payload), the copy step of a full piece; packet_size:
	 * the largest TX packet payload the sender emits. */
	uint64_t rx_payload, rx_max, chunk, packet_size;
};

/* What the broker sizes at start (dp_create) and the analysis charges for. */
struct model_pools {
	uint32_t ncells, nflows;
	uint32_t nqueues;  /* 2 per flow (toward each end) + 1 per cell (best-effort) */
	uint32_t nconns;   /* every cell's `connections` limit, added up */
	uint32_t nsyn;     /* broker-made RSTs: two per connection-table entry, one
			    * toward each end (an ended entry lives until both are out) */
	uint32_t npkts;    /* MODEL_TX_SLOTS per cell + nsyn */
	/* TX packets all cells together may have in the broker: the analysis's S. The
	 * sum of the cells' ingest budgets (MODEL_INGEST_BUDGETS) or cells x
	 * MODEL_TX_SLOTS; tx_slots_all is always the latter. */
	uint64_t tx_slots, tx_slots_all;
	uint32_t run_steps;
	/* The cells' per-period budgets added up (model_cell_budgets), what the
	 * analysis charges per budget_period; piece_steps: the most steps one short
	 * RX piece takes (ceil(rx floor / chunk) over the cells). */
	uint64_t budget_period;
	uint64_t budget_ingest, budget_ctrl, budget_pieces, piece_steps;
};

struct model {
	struct model_pools pools;
	bool default_best_effort; /* connections no flow names run in class nflows */
	/* Flow indexes in fp dispatch order (ties by index; the broker serves ties in
	 * arrival order): nflows + 1 entries, the implicit class last. */
	uint32_t *order;
	/* Configured flows by config index, then the implicit best-effort class at
	 * index nflows (toward any cell: its sizes bound what any cell may post). */
	struct model_flow flows[];
};

/* Builds the model of cfg into one allocation. 0, -EINVAL (a flow names a cell that
 * does not exist, or counts out of range) or -ENOMEM. */
int model_create(const struct rtvio_config *cfg, struct model **out);
void model_destroy(struct model *m);

/* A flow's class and fp key (cls, rank_hi, rank_lo of mf; nothing else): they
 * depend on the flow alone, so a flow added at run time gets its key without a
 * model of the whole configuration. */
void model_flow_key(const struct rtvio_flow_cfg *f, struct model_flow *mf);

/* The connections cell i may have opened at once: its `connections` key (a config
 * built in code that leaves it 0 gets the loader's default). */
uint32_t model_cell_connections(const struct rtvio_config *cfg, int i);

/* Cell c's ingest budget: at most MODEL_TX_SLOTS, at least MODEL_CELL_SLACK;
 * per real-time flow from c, floor((D + J) / T) + 1 messages (what can be pending
 * while the flow meets its deadline) of ceil(size / max_packet) packets each; per
 * real-time stream flow to c as many credit updates. */
uint32_t model_cell_ingest_budget(const struct rtvio_config *cfg, int c);

/* The data-plane core (an index into [broker] cpus, 0 with one core) that serves
 * cell c: every packet delivered into c is dispatched there (model/cores.c). */
int model_cell_core(const struct rtvio_config *cfg, int c);
/* The first cell pinned to a cpu that a data-plane core runs on and that the core
 * does not outrank (the broker has no rt_priority, or one not above the cell's), or
 * -1. Such a cell can take the cpu from the broker, or from a core holding the data
 * plane's lock while the other cores spin: the analysis assumes that it cannot, so
 * no bound holds then (docs/broker.md, Known limitations). */
int model_cell_over_core(const struct rtvio_config *cfg);
/* Flow f's core: its destination cell's. */
int model_flow_core(const struct rtvio_config *cfg, int f);

/* Cell c's allowance: its [cell] allowance key, or MODEL_CELL_ALLOWANCE for a
 * configuration built in code that leaves it 0. */
uint32_t model_cell_allowance(const struct rtvio_config *cfg, int c);

/* The budget period P in ns: [broker] budget_period, or MODEL_BUDGET_PERIOD_NS for
 * a configuration built in code that leaves it 0. */
uint64_t model_budget_period(const struct rtvio_config *cfg);

/* On several broker cores the control path (attach, detach, run-time changes,
 * statistics, cut-offs) takes the write side of the data plane's lock W at most
 * MODEL_WRITES_PER_PERIOD times per budget period: two of its write sections begin
 * at least model_write_spacing() = P / MODEL_WRITES_PER_PERIOD apart (broker/dp_mc.c
 * enforces it; analysis/an_mcore.c charges a core's wait on W per write in a window
 * rather than per step: docs/analysis.md, "Several cores"). */
#define MODEL_WRITES_PER_PERIOD 2u
uint64_t model_write_spacing(const struct rtvio_config *cfg);

/* What cell c may cost the broker per budget period P (model_budget_period;
 * docs/broker.md, "Per-cell budgets"); work beyond it waits for the cell's next
 * period.
 *   ingest: TX chains the broker takes from c's ring, whatever becomes of them
 *           (queued, answered with RST, dropped at once): its ingest budget (what
 *           it may have in the broker at once, model_cell_ingest_budget) and its
 *           allowance, plus, per
 *           real-time flow from c, ceil(P / T) messages of ceil(size / max_packet)
 *           packets, and per real-time stream flow to c ceil(P / T) credit updates;
 *   ctrl:   control packets (every op but RW) the broker switches for c: its
 *           allowance plus, per real-time stream flow to c, floor((D + J) / T) + 1
 *           + ceil(P / T) credit updates;
 *   pieces: short RX pieces into c (a buffer of less payload than its rx floor
 *           holding a real-time piece that does not end its packet): its allowance;
 *   rx_floor: the RX payload the analysis prices c's pieces at (model_flow's
 *           rx_payload of every flow to c). */
struct model_cell_budget {
	uint32_t ingest, ctrl, pieces;
	uint64_t rx_floor;
};
void model_cell_budgets(const struct rtvio_config *cfg, int c, struct model_cell_budget *out);
/* Credit updates per budget period that flow i's receiver's ctrl budget holds for
 * it: floor((D + J) / T) + 1 + ceil(P / T) for a real-time stream flow, else 0. */
uint32_t model_flow_credits(const struct rtvio_config *cfg, int i);

/* Bytes of a virtio-vsock header: the regulator charges them with every piece. */
#define MODEL_HDR_BYTES 44u
/* Regulated, best-effort steps always keep at least 1/MODEL_BULK_SHARE of each
 * period's budget: the real-time reserve is capped there, so that connection set-up
 * and bulk traffic are never starved outright. */
#define MODEL_BULK_SHARE 8u

/* Bytes the regulator may charge the real-time flows within one regulation period
 * while each meets its deadline: per flow floor((period + D + J) / T) + 1 messages of
 * size + 44 per piece, and a header for each control packet and short piece the
 * cells' budgets let ride real-time flows (credit updates among them) in the
 * ceil(period / budget period) + 1 budget periods one regulation period overlaps
 * (analysis/an_supply.c an_rt_demand counts the same). */
uint64_t model_rt_demand(const struct rtvio_config *cfg);

/* The part of each regulation period's budget that best-effort steps may not spend
 * (docs/broker.md, "6. Regulation"): the real-time demand, at most
 * budget - budget / MODEL_BULK_SHARE; 0 when unregulated. */
uint64_t model_rt_reserve(const struct rtvio_config *cfg);

/* The analysis's share of ingest_step per packet ingested (ns, rounded up). */
uint64_t model_ingest_packet_ns(uint64_t ingest_step_ns);

/* Host endpoint ([host NAME], broker/host.c): bytes each bridge buffers per
 * direction, the system calls one bridge's step makes at most (read, send, shutdown,
 * and epoll_ctl + close when it ends), and those of the one new connection a pass
 * takes (accept4 + epoll_ctl; socket + connect + epoll_ctl or close). */
#define MODEL_HOST_BUF 16384u
#define MODEL_HOST_BRIDGE_CALLS 5u
#define MODEL_HOST_ACCEPT_CALLS 5u

/* The host bridge's budget for one pass (one host_step between two dp_run calls),
 * which broker/host.c enforces and the analysis charges with every batch gap:
 * bridges stepped (round robin), bytes copied (Unix socket reads and writes and the
 * gvsock sends and receives, all counted) and system calls, at most. Per host flow
 * one bridge and twice min(size, MODEL_HOST_BUF) bytes (a message crosses the bridge
 * in one pass: into the bridge buffer, out of it), at least MODEL_HOST_LINE_MIN; never more
 * bridges than the host cell's connections. All 0 without a [host]. */
#define MODEL_HOST_LINE_MIN 32u
struct model_host_pass {
	int cell;          /* the [host] cell, -1 none */
	uint32_t bridges;
	uint64_t bytes;
	uint64_t calls;
	uint64_t rx_payload; /* the host cell's RX buffer payload: a piece its stack takes */
};
void model_host_pass(const struct rtvio_config *cfg, struct model_host_pass *p);

/* Run-time changes (model/change.c). One cell or flow added or removed visits at most
 * model_change_op_slots() table slots of the capacity ([broker] max_cells, max_flows:
 * cells x flows ingest budgets, every cell and flow once, every connection-table
 * entry); one change holds at most max_cells + max_flows of them, so its apply step
 * visits at most model_change_slots() slots. The platform's change_step prices one
 * visit. */
uint64_t model_change_op_slots(const struct rtvio_config *cfg);
uint64_t model_change_slots(const struct rtvio_config *cfg);

#endif
