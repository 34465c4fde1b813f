/* The data plane's private objects and the helpers its files share (dataplane.c,
 * dp_*.c), also seen by its unit tests so that they can check invariants. Not part of
 * the seam with the daemon. */
#ifndef RTVIO_BROKER_DP_INTERNAL_H
#define RTVIO_BROKER_DP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "model.h"
#include "regulator.h"
#include "dataplane.h"
#include "dp_copy.h"
#include "virtq.h"
#include "vsock.h"

/* The broker's pools and constants live in the model (model/model.h), which the
 * analysis reads too; these are the data plane's names for them. */
#define DP_TX_SLOTS MODEL_TX_SLOTS
#define DP_MAX_SEG MODEL_MAX_SEG
#define DP_RX_SPARE MODEL_RX_SPARE
#define DP_MAX_CELLS MODEL_MAX_CELLS

/* A packet the broker is switching. Broker memory only: the header was read once out
 * of the sender's chain; seg[] are the chain's translated (readable) segments in the
 * sender's memory, from which payload is copied straight into the receiver's. */
struct dp_pkt {
	struct vsock_hdr h;  /* broker's copy, read once from the sender's chain */
	/* Translated by core; point into the sender's memory, which the sender can
	 * still write: only ever the source of a copy, never read to decide anything. */
	struct vq_seg seg[DP_MAX_SEG];
	uint32_t n_seg;
	uint16_t head;       /* TX chain head (not for synthetic packets) */
	bool synthetic;      /* made by the broker: no TX chain behind it */
	bool policed;
	bool budget_held;    /* its sender's control budget held it until release */
	uint32_t src, dst;   /* cell indexes */
	uint32_t sent;       /* payload bytes delivered so far */
	uint32_t queue;
	int32_t next;        /* queue or free-list link */
	uint64_t arrival;    /* ingest time */
	/* Where its residence starts: arrival, or the release its sender's control
	 * budget gave it or a packet ahead of it in its queue (dp_queue_append). */
	uint64_t counted;
	uint64_t release;    /* earliest time the policer lets it go */
	uint64_t deadline_abs;
	uint64_t seq;        /* global arrival order */
};

/* A popped RX chain of a destination: all device-writable. seg[] point into the
 * destination's memory; the broker only writes there (header, then payload). */
struct dp_rx {
	uint16_t head;
	uint32_t n_seg, n_out;
	uint32_t in_len;
	struct vq_seg seg[DP_MAX_SEG];
};

enum { DP_Q_IDLE, DP_Q_READY, DP_Q_HELD, DP_Q_BLOCKED };

struct dp_queue {
	int32_t head, tail;  /* packets, FIFO */
	uint32_t flow;       /* nflows = best-effort class */
	uint32_t dst;        /* destination cell */
	int state;           /* DP_Q_* */
	int32_t pos;         /* index in the ready or held heap */
	int32_t wnext, wprev; /* list of queues waiting for dst's RX buffers */
	uint64_t k1, k2, k3; /* heap key */
	/* The latest release the sender's control budget gave a packet appended here
	 * since the queue was last empty: no packet behind that one leaves before it
	 * (dp_queue_append). */
	uint64_t budget_rel;
	/* the piece being written into one RX buffer of dst */
	bool rx_open;
	bool hdr_written;
	uint32_t piece_len, piece_done;
	struct dp_rx rx;
	/* policer state for this direction of the flow */
	uint64_t tat;        /* byte bucket (both types): GCRA theoretical arrival time */
	uint64_t mtat;       /* seqpacket: GCRA theoretical arrival of the next message */
	uint64_t last_rel;   /* seqpacket: release of the current message's last packet */
	bool in_msg;         /* seqpacket: inside a message (no EOM yet) */
	bool msg_over;       /* seqpacket: the current message passed the flow's size */
	uint64_t msg_len;    /* seqpacket: payload bytes of the current message so far */
};

struct dp_heap {
	uint32_t *q;
	uint32_t n;
};

/* DP_CONN_RESETTING: the connection is gone (out of the hash, no packet finds it) but
 * an end has not been told yet: the entry lives on, still counted in its connector's
 * nconn, until the RSTs made from it (its own synthetic slots, dp_conn_rst_slot) are
 * delivered or dropped (their destination left too); `pending` counts them. */
enum { DP_CONN_FREE, DP_CONN_REQUESTED, DP_CONN_ESTABLISHED, DP_CONN_RESETTING };

struct dp_conn {
	uint32_t a, ap;      /* connector: cell index, port */
	uint32_t b, bp;      /* listener */
	uint32_t flow;
	uint16_t type;
	uint8_t pending;     /* DP_CONN_RESETTING: its RSTs not yet delivered (1 or 2) */
	int state;
	int32_t hnext;       /* hash chain or free list */
};

struct dp_cell {
	uint32_t cid;
	bool attached, broken;
	struct vq_device *rx, *tx; /* the daemon's; valid while attached */
	int32_t tx_free;           /* free TX packet slots */
	uint32_t tx_budget;        /* its ingest budget: TX packets it may have in the
				    * broker at once (model_cell_ingest_budget) */
	uint32_t tx_held;          /* TX packets it has in the broker now */
	/* Per-period budgets (dp_budget.c) and what this period used of them. */
	uint32_t in_budget, ctrl_budget, piece_budget;
	uint64_t rx_floor;         /* RX payload the analysis prices its pieces at */
	uint64_t bud_period;       /* the period in_used and piece_used count for */
	uint32_t in_used, piece_used;
	bool in_waited;            /* this period's budget_waits is counted */
	uint64_t ctrl_period;      /* the period the next control packet is charged to */
	uint32_t ctrl_used;        /* control packets charged to ctrl_period */
	int32_t waiters;           /* queues waiting for our RX buffers */
	uint32_t nconn;            /* connections this cell opened */
	uint32_t conn_limit;       /* its `connections` key: most it may have opened */
	uint64_t conn_limit_refusals;
	uint64_t conn_limit_told;  /* refusals the conn_limit hook has heard of (cores) */
	int mc_err;                /* a core found the cell broken: the error (dp_mc.c) */
	uint64_t tx_empty_at;      /* last pass that found the TX ring empty */
	int break_err;             /* a ring error to act on at the next pass */
	bool tx_armed;             /* kicks requested since the TX ring last drained */
	/* A chain of this cell names memory not faulted in yet (VQ_NOT_READY): its rings
	 * are left alone until the memory thread has faulted in what was asked for
	 * (dp_mem_wait, dp_mem_ready). Set by the cell's core, cleared by the loop. */
	atomic_bool mem_wait;
	uint32_t n_spare;
	struct dp_rx spare[DP_RX_SPARE];
	uint64_t refused, resets;
	struct dp_cell_stats st;
};

struct dp_flow {
	uint64_t rank_hi, rank_lo; /* fp: smaller runs first */
	bool be;                   /* best-effort: no policing, no deadline */
	uint64_t policed;
	uint64_t oversize;         /* seqpacket messages larger than the flow's size */
	uint32_t queued, connections;
	struct dp_flow_stats st;
};

/* What belongs to one data-plane core (docs/broker.md "Several cores"): the queues
 * toward the cells it owns wait in its heaps, it ingests the attached cells of its
 * attmap, and it copies against its own share of the regulated DRAM budget. With one
 * core, core[0] is the whole data plane's. Every field is touched by its own core
 * under the data plane's mutex M, or by the control path under W's writer side. */
struct dp_core {
	struct dp_heap ready, held;
	uint64_t *attmap;          /* its cells attached */
	uint64_t *waitmap;         /* its cells with queues waiting for their RX buffers */
	uint32_t rr;               /* cell the next ingest pass starts with */
	bool ingest_more;          /* a pass left chains on a ring (per-pass limit) */
	struct regulator reg;      /* regulation_budget / ncores per period */
	uint64_t reg_bytes;
	uint64_t budget_wake;      /* one of its rings waits for this budget period's
				    * start (0: none) */
	/* Bytes of each period's budget best-effort steps may not spend (the real-time
	 * flows' demand, model_rt_reserve; one-core brokers only); set by
	 * dp_reg_reserve_update. */
	uint64_t reg_reserve;
	uint64_t reg_be_waits;     /* best-effort steps refused for the reserve */
};

struct dp_mc;

/* The earliest time core k's waiting work may go: t (0: none), its rings' next budget
 * period, its held queues' first release; 0 when nothing waits. */
uint64_t dp_next_wake(const struct dp *dp, const struct dp_core *k, uint64_t t);

struct dp {
	const struct rtvio_config *cfg;
	struct dp_hooks hooks;
	void *ctx;
	uint32_t ncells, nflows, nqueues, nconns, nsyn;
	struct dp_cell *cells;
	struct dp_flow *flows;     /* nflows + 1 */
	struct dp_queue *queues;   /* 2 * nflows (to listener, to connector) + ncells */
	/* ncells * DP_TX_SLOTS, then nsyn = 2 * nconns synthetic: connection entry c
	 * owns the two RSTs toward its connector and its listener (dp_conn_rst_slot). */
	struct dp_pkt *pkts;
	struct dp_conn *conns;
	int32_t conn_free;
	uint32_t ncores;           /* [broker] cpus: 1 unless several are given */
	struct dp_core *core;      /* ncores */
	uint32_t *cell_core;       /* the core that owns each cell (model_cell_core) */
	struct dp_mc *mc;          /* the core threads and locks; NULL with one core */
	uint64_t budget_t0;        /* the budget periods' grid starts here */
	uint64_t budget_period;    /* ns between them (model_budget_period) */
	int32_t *cid_hash, *flow_hash, *conn_hash;
	uint32_t cid_hash_size, flow_hash_size, conn_hash_size;
	uint64_t seq;
	uint64_t now;              /* time of the current pass */
	dp_copy_fn copy;           /* payload into RX buffers (`copy`), chosen at create */
	/* Notifications (dp_notify.c): while notify_defer is set, dp_notify only marks
	 * bit 2 * cell + (queue == TX) of notemap; dp_notify_flush decides for all. */
	bool notify_defer;
	bool notify_pending;
	uint64_t *notemap;
	/* Several cores: the core inside M (set by it under M), whose notifications
	 * are only marked (dp_mc_note) and signalled after it releases M;
	 * DP_NOTE_AT_ONCE on the control path and with one core. */
	uint32_t notify_core;
	uint64_t notify_checks;    /* notify decisions taken (each a full fence) */
	uint64_t notify_sent;      /* of which told the cell (the notify hook) */
};

#define DP_NOTE_AT_ONCE UINT32_MAX

/* ---- shared between the data plane's files ---- */

/* The core that owns `cell`: it ingests the cell's TX ring, and the queues toward the
 * cell are in its heaps. */
static inline struct dp_core *dp_core_of(const struct dp *dp, uint32_t cell)
{
	return &dp->core[dp->cell_core[cell]];
}

static inline void dp_bit_set(uint64_t *map, uint32_t i)
{
	map[i / 64] |= 1ull << (i % 64);
}

static inline void dp_bit_clear(uint64_t *map, uint32_t i)
{
	map[i / 64] &= ~(1ull << (i % 64));
}

/* When p may go at the earliest: its ingest, or the policer's release when later
 * (the release may also lie before the ingest: see dp_police()). */
static inline uint64_t dp_pkt_eligible(const struct dp_pkt *p)
{
	return p->release > p->arrival ? p->release : p->arrival;
}

/* dataplane.c: the data plane's clock (the hook's, else the vDSO's). */
uint64_t dp_clock(struct dp *dp);
/* dataplane.c: a flow's fp key and class from the model. */
void dp_flow_rank(struct dp *dp, uint32_t f);
/* dp_tables.c: the destinations of flow f's two queues (toward the listener, back
 * toward the connector) from its configuration. */
void dp_flow_queue_ends(struct dp *dp, uint32_t f);

/* dataplane.c: detaches a cell whose ring or headers broke the rules; its peers get
 * RST, nothing of it is touched again. */
void dp_cell_break(struct dp *dp, uint32_t cell, int err);
/* dataplane.c: the loop thread cuts off a cell a core found broken (dp_mc.c). */
void dp_cell_break_now(struct dp *dp, uint32_t cell);

/* dp_pkt.c: packet slots, and the sender's TX chain returned when its packet is done. */
int32_t dp_pkt_alloc_tx(struct dp *dp, uint32_t cell);
/* Every cell's ingest budget from the configuration now in force (at create, and
 * after every run-time change of cells or flows). */
void dp_cells_budget(struct dp *dp);

/* dp_budget.c: per-cell budgets per budget period.
 * dp_budget_cells: every cell's budgets from the configuration in force.
 * dp_budget_ingest: charges one TX chain of `cell` at `now`; false when the
 *   period's ingest budget is spent (counted once per period in budget_waits; the
 *   pass leaves the ring and dp_run wakes at the next period).
 * dp_budget_ctrl: charges one control packet of `cell`; returns `now`, or the start
 *   of the later period it is charged to (counted in ctrl_over_budget): its release.
 * dp_budget_piece: queue q's piece just got its RX buffer; false when it is a short
 *   piece beyond the destination's period budget: the buffer is back in the spares,
 *   the queue held until the next period (counted in chunks_over_budget). */
void dp_budget_cells(struct dp *dp);
bool dp_budget_ingest(struct dp *dp, uint32_t cell, uint64_t now);
/* A new cell in the slot: nothing of the last one's periods is charged to it. */
void dp_budget_reset(struct dp *dp, uint32_t cell);
/* Gives back the charge of a dp_budget_ingest whose pop found the ring empty. */
void dp_budget_unused(struct dp *dp, uint32_t cell);
uint64_t dp_budget_ctrl(struct dp *dp, uint32_t cell, uint64_t now);
bool dp_budget_piece(struct dp *dp, uint32_t q, uint64_t now);
/* The synthetic slot of connection entry c's RST toward its listener (to_b) or its
 * connector: each entry has its own two, so a reset is never short of a packet. */
static inline int32_t dp_conn_rst_slot(const struct dp *dp, int32_t c, bool to_b)
{
	return (int32_t)(dp->ncells * DP_TX_SLOTS + 2 * (uint32_t)c + to_b);
}

/* Frees a packet slot: a TX slot back to its cell; a synthetic RST's, the last of
 * its connection entry's, frees that entry (dp_conn_told). */
void dp_pkt_free(struct dp *dp, int32_t pi);
/* dp_notify.c: a cell's queue has new used elements, added (vq_device_add_used) and
 * not yet published. Published and decided at once, or, while dp->notify_defer is
 * set, at the next dp_notify_flush (one index store and one decision per batch).
 * Every vq_device_add_used of the data plane is followed by a dp_notify. */
void dp_notify(struct dp *dp, uint32_t cell, unsigned int queue, struct vq_device *vq);
void dp_notify_flush(struct dp *dp);
void dp_pkt_complete_tx(struct dp *dp, struct dp_pkt *p);

/* dp_switch.c: CID, flow and connection tables; switching one packet. The table_add
 * calls fill the tables at create time: -EINVAL for a duplicate or a bad cell. */
int dp_cid_table_add(struct dp *dp, uint32_t cell);
int dp_flow_table_add(struct dp *dp, uint32_t flow);
void dp_switch_pkt(struct dp *dp, int32_t pi, uint64_t now);
/* Ends every connection of `cell`, queueing an RST made from the entry to each
 * attached peer; the entry is freed once that RST is delivered or dropped. */
void dp_conns_reset(struct dp *dp, uint32_t cell, uint64_t now);
/* Ends every connection of `flow`, queueing an RST to both ends (best-effort class). */
void dp_flow_conns_reset(struct dp *dp, uint32_t flow, uint64_t now);
/* One RST made from entry c is delivered or dropped: the last one frees the entry. */
void dp_conn_told(struct dp *dp, int32_t c);
/* Rebuilds the CID and flow hashes from the configuration's present slots, leaving
 * out skip_cell and skip_flow (UINT32_MAX: none): how an entry leaves an
 * open-addressed table. O(cells + flows), control path only. */
void dp_tables_rehash(struct dp *dp, uint32_t skip_cell, uint32_t skip_flow);

/* dp_police.c: the release time of p, charged against queue w's policer state. */
uint64_t dp_police(struct dp *dp, struct dp_queue *w, const struct dp_pkt *p, uint64_t seen);

/* dp_dispatch.c: queues and where they wait (ready heap, held heap, RX waiters). */
uint32_t dp_queue_of(const struct dp *dp, uint32_t flow, uint32_t dst);
void dp_queue_place(struct dp *dp, uint32_t q, uint64_t now);
void dp_queue_unplace(struct dp *dp, uint32_t q);
void dp_queue_append(struct dp *dp, uint32_t q, int32_t pi, uint64_t now);
void dp_queue_block(struct dp *dp, uint32_t q);
void dp_waiter_unlink(struct dp *dp, uint32_t q);
void dp_queue_purge(struct dp *dp, uint32_t q, uint32_t gone);
void dp_queue_purge_all(struct dp *dp, uint32_t q);
void dp_release_held(struct dp *dp, struct dp_core *k, uint64_t now);
void dp_wake_rx_waiters(struct dp *dp, uint32_t cell);

/* dataplane.c: a pop of cell s's ring vq said VQ_NOT_READY: the cell's rings wait,
 * counted in mem_waits, and the memory thread is asked for the range (vq->want) */
void dp_mem_wait(struct dp *dp, uint32_t s, const struct vq_device *vq);
/* Does cell s wait for memory (its rings are left alone until dp_mem_ready)? */
bool dp_mem_waits(const struct dp *dp, uint32_t s);

/* dp_ingest.c: one ingest pass over core k's attached cells at time now (with one
 * core: every attached cell). */
void dp_ingest_pass(struct dp *dp, struct dp_core *k, uint64_t now);

/* dp_copy_step.c: segments, one copy step, completion. */
void dp_seg_gather(uint8_t *out, const struct vq_seg *src, unsigned int ns, uint64_t n);

/* What one copy step did. */
enum dp_step {
	DP_STEP_BLOCKED,    /* q could not run: it waits for RX buffers, or dst broke */
	DP_STEP_PROGRESS,   /* a chunk (or header) went, the packet is not yet done */
	DP_STEP_DELIVERED,  /* the packet's last piece went: call dp_pkt_done */
	DP_STEP_THROTTLED,  /* the regulator's budget is spent for this period */
};
enum dp_step dp_copy_step(struct dp *dp, uint32_t q, uint64_t now);
/* The same step in three parts, for a core that copies outside the mutex M
 * (dp_mc.c): reserve (an RX buffer, the regulator's grant; BLOCKED, THROTTLED or
 * PROGRESS = go on) and finish (the piece's bookkeeping and completion) under M, the
 * bytes in between without it. dp_copy_step is exactly reserve, copy, finish. */
struct dp_piece {
	uint64_t n, hdr;           /* payload and header bytes of this step */
};
enum dp_step dp_step_reserve(struct dp *dp, uint32_t q, uint64_t now, struct dp_piece *pc);
void dp_step_copy(struct dp *dp, uint32_t q, const struct dp_piece *pc);
enum dp_step dp_step_finish(struct dp *dp, uint32_t q, const struct dp_piece *pc);
void dp_pkt_done(struct dp *dp, uint32_t q, uint64_t now);
/* The real-time reserve from the configuration now in force (at create and after
 * every run-time change). */
void dp_reg_reserve_update(struct dp *dp);

/* dp_mc.c: several cores (docs/broker.md "Several cores"). All no-ops with one. */
int dp_mc_create(struct dp *dp);
void dp_mc_destroy(struct dp *dp);
/* From a core thread under M: cell's ring broke; it is cut off by the loop thread
 * (dp_run) once no core is inside a run. */
void dp_mc_break_defer(struct dp *dp, uint32_t cell, int err);
/* From a core thread under M: something for the loop thread (a refused REQUEST to
 * log). */
void dp_mc_defer(struct dp *dp);
/* Under M, from core `core`: the driver of `queue` of `cell` wants a notification
 * (decided); the core signals it after releasing M, from its own context. */
void dp_mc_note(struct dp *dp, uint32_t core, uint32_t cell, unsigned int queue);
/* Wakes core k if it sleeps (a kick for one of its cells, work in its heaps). */
void dp_mc_wake(struct dp *dp, uint32_t k);
/* The loop thread's share of dp_run with several cores: the deferred work. */
uint64_t dp_mc_service(struct dp *dp);

#endif
