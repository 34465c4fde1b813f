/* The broker's data plane: the seam between the daemon (sockets, vhost-user, event
 * loop, control socket) and the part that moves packets (connections, flows,
 * policing, scheduling, chunked copy, regulation, statistics).
 *
 * Threading: with one core ([broker] cpus absent or one cpu) everything here runs in
 * the daemon's one data-path thread. The daemon calls dp_attach/dp_detach/dp_stats_*
 * between dp_run calls in that same thread (start-up/teardown/monitoring work, not
 * real-time work); nothing is locked. With several cores, dp_create starts one
 * thread per core that moves packets on its own (broker/dp_mc.c); the daemon's
 * thread calls everything else here as before, each call holding the control path's
 * lock, and dp_run only does what the cores left for that thread (cutting off a
 * broken cell: the broken hook runs there).
 *
 * Allocation: dp_create sizes every object for the configured worst case (per-flow
 * queues, connection table, packet metadata pool) and allocates it once. dp_run,
 * dp_attach and dp_detach allocate nothing and make no system call except the
 * notify hook (the daemon's eventfd write).
 *
 * Cells and flows are named by their index in the configuration (cfg->cells[i],
 * cfg->flows[i]). The data plane knows each cell's CID from the configuration; the
 * daemon knows which socket is which cell. Flow index cfg->nflows is the
 * best-effort class that carries connections no flow names under
 * `default = best-effort`.
 *
 * Queues: 0 = rx (the broker writes, the cell posts empty buffers), 1 = tx (the cell
 * posts packets). The data plane touches a cell's rings only through core's
 * vq_device (which validates every index, length and address against the cell's
 * memory table and makes "broken" sticky). */
#ifndef RTVIO_BROKER_DATAPLANE_H
#define RTVIO_BROKER_DATAPLANE_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

struct dp;
struct rtvio_config;
struct vq_device;

#define DP_QUEUE_RX 0u
#define DP_QUEUE_TX 1u

struct dp_hooks {
	/* The data plane pushed used buffers on `queue` of `cell` and core says the
	 * driver wants an interrupt (EVENT_IDX respected): signal the call eventfd. */
	void (*notify)(void *ctx, unsigned cell, unsigned queue);
	/* Every notify call since the last notify_flush may be held back until this
	 * one (the daemon signals them in one system call). NULL = notify is at once. */
	void (*notify_flush)(void *ctx);
	/* Several cores: as notify and notify_flush, called by core `core`'s thread
	 * after it released the data plane's mutex (the decision was taken under it),
	 * so each core must signal through a context of its own. Both or neither; NULL
	 * = the cores call notify and notify_flush under the mutex. */
	void (*notify_core)(void *ctx, unsigned core, unsigned cell, unsigned queue);
	void (*notify_flush_core)(void *ctx, unsigned core);
	/* A ring of `cell` broke the rules (err: negative errno from core). The data
	 * plane has already stopped touching that cell and reset its connections on the
	 * peers' side; the daemon is expected to call dp_detach and cut the cell off. */
	void (*broken)(void *ctx, unsigned cell, int err);
	/* `cell` asked for a connection beyond its `connections` limit (`limit`); the
	 * REQUEST was answered with RST. `count` refusals so far. NULL = nothing. */
	void (*conn_limit)(void *ctx, unsigned cell, uint32_t limit, uint64_t count);
	/* Monotonic time in ns. NULL = CLOCK_MONOTONIC (vDSO, no system call). Tests pass
	 * a fake clock. Read at most once per data-path step. */
	uint64_t (*now)(void *ctx);
	/* Several cores: a core thread left work for the loop thread (a cell to cut
	 * off, a refusal to report); the daemon should call dp_run soon. Called from
	 * a core thread: must not block. NULL = the next dp_run finds it. */
	void (*wake)(void *ctx);
	/* Several cores: the write gate (dp_ctl_lock) holds the loop thread until
	 * until_ns (the clock of `now`'s default, CLOCK_MONOTONIC); the daemon relays
	 * kicks meanwhile. May return early: the gate then sleeps the rest. NULL =
	 * sleep. */
	void (*gate_wait)(void *ctx, uint64_t until_ns);
};

/* Builds the data plane for `cfg` (kept by reference: it must outlive the dp).
 * Returns 0 and *out, or -EINVAL (config the data plane cannot run: e.g. more cells
 * than it supports) / -ENOMEM. */
int dp_create(const struct rtvio_config *cfg, const struct dp_hooks *hooks, void *ctx,
	      struct dp **out);
void dp_destroy(struct dp *dp);

/* Several cores: the control path's hold on the data plane (the write side of the
 * reader-writer lock every core's run holds for reading), taken by every call below
 * itself; the daemon takes it around a change of the configuration the dp holds by
 * reference (broker/admit.c), so that no core reads it half changed. Nests; only the
 * thread that calls dp_run may take it. No-op with one core. */
void dp_ctl_lock(const struct dp *dp);
void dp_ctl_unlock(const struct dp *dp);
/* Several cores: the write sections begun so far, and how many of them the write
 * gate held back (0, 0 on one core). Call under dp_ctl_lock. */
void dp_write_gate_stats(const struct dp *dp, uint64_t *writes, uint64_t *waits);

/* The configuration the dp holds by reference has changed (a run-time change of
 * cells or flows, broker/admit.c): every cell's ingest budget is taken again from it.
 * Allocates nothing. */
void dp_config_changed(struct dp *dp);

/* The cell's rings are set up (vhost-user SET_VRING_ENABLE seen for both queues):
 * the data plane starts ingesting from `tx` and delivering into `rx`. Both stay
 * owned by the daemon and must stay valid until dp_detach. -EINVAL bad cell index,
 * -EBUSY already attached. */
int dp_attach(struct dp *dp, unsigned cell, struct vq_device *rx, struct vq_device *tx);

/* The cell is going away (disconnect, death, broken ring, vring disable): every
 * connection it has gets RST toward its peer, packets queued toward it from other
 * cells are returned to their senders, and its own in-flight chains are forgotten
 * WITHOUT touching its rings or memory (the daemon is about to unmap them). No-op
 * for a cell that is not attached. */
void dp_detach(struct dp *dp, unsigned cell);

/* Hint from the daemon's event loop (poll = no): `cell` kicked `queue`. With one
 * core it does nothing, because every dp_run pass already reads every attached
 * cell's ring indexes (one read each), so a kick tells it nothing it would not
 * find. With several, it wakes the core that owns the cell if that core sleeps. */
void dp_kick(struct dp *dp, unsigned cell, unsigned queue);
/* From the daemon's event loop: the memory thread faulted in granules a data-plane
 * core asked for (populate.h); `cell`'s chains that waited for memory are looked at
 * again. */
void dp_mem_ready(struct dp *dp, unsigned cell);
/* Several cores: wakes every core that sleeps (work the daemon cannot name a cell for:
 * the host bridge moved bytes, cells that give no kicks). No-op with one core. */
void dp_wake_cores(struct dp *dp);

/* One data-path step batch, starting at time `now_ns`: ingest every TX ring (at most
 * DP_TX_SLOTS chains of one cell per pass), then dispatch/copy chunk by chunk
 * (ingesting again between chunks) until there is nothing left that may run now or
 * DP_RUN_STEPS chunks are done. Returns:
 *   0           idle: nothing to do until a kick (TX packet or RX buffers posted);
 *   <= now_ns   more work is ready (steps used up, or chains left on a ring): call
 *               again at once;
 *   > now_ns    the earliest policing/regulation time at which held work becomes
 *               ready; call again then (or on a kick, whichever comes first).
 * Packets waiting for RX buffers at their destination count as "until a kick": the
 * daemon must wake on rx-queue kicks as well as tx-queue kicks. */
#define DP_RUN_STEPS MODEL_RUN_STEPS
uint64_t dp_run(struct dp *dp, uint64_t now_ns);

/* ---- Run-time changes (dp_tables.c; docs/broker.md "Run-time changes") ----
 * The configuration the data plane was created with is the broker's live one
 * (broker/live.h): arrays of max_cells and max_flows slots, some vacant. To add, the
 * daemon fills a vacant slot of the configuration, then calls dp_*_add; to remove,
 * it calls dp_*_remove, then marks the slot vacant. Like dp_attach, these run
 * between dp_run calls in the data-path thread, allocate nothing, and do work
 * bounded by the capacity.
 *
 * dp_cell_add: -EINVAL bad or vacant slot, -EBUSY still attached, -ENOSPC its
 * `connections` do not fit in the connection table, -EEXIST CID in use.
 * dp_cell_remove: detaches it (peers get RST) and forgets its CID. Remove its flows
 * first.
 * dp_flow_add: -EINVAL bad or vacant slot (or ends), -EBUSY the slot still has
 * packets or connections.
 * dp_flow_remove: RST to both ends of each of its connections, its queued packets
 * returned to their senders, its table entry gone. */
int dp_cell_add(struct dp *dp, unsigned cell);
void dp_cell_remove(struct dp *dp, unsigned cell);
int dp_flow_add(struct dp *dp, unsigned flow);
void dp_flow_remove(struct dp *dp, unsigned flow);
/* Connection-table entries no present cell's `connections` holds. */
uint32_t dp_conn_room(const struct dp *dp);

/* ---- statistics (`rtvio stat`) ----
 * Snapshots copied out of the data plane's own counters; call from the data-path
 * thread. Residence time = ingest of a packet to completion of its last piece; for a
 * packet its sender's control budget held (or one queued behind it), from that
 * release instead (the wait is max_budget_wait_ns). */

/* Bucket b counts residence times r with 2^b <= r < 2^(b+1) ns (bucket 0 also
 * holds r = 0); the last bucket holds everything longer. */
#define DP_HIST_BUCKETS 40u

struct dp_cell_stats {
	bool attached;
	bool broken;           /* a ring broke the rules since the last attach */
	uint64_t pkts_in;      /* TX packets accepted from this cell */
	uint64_t bytes_in;     /* their payload bytes */
	uint64_t pkts_out;     /* RX pieces delivered to this cell (one per RX buffer) */
	uint64_t bytes_out;    /* their payload bytes */
	uint64_t refused;      /* packets with a spoofed src_cid (answered with RST) */
	uint64_t resets;       /* RST packets the broker generated toward this cell */
	uint64_t conn_limit_refusals; /* REQUESTs refused: the cell had `connections` open */
	/* Per-cell budgets (docs/broker.md, "Per-cell budgets"): */
	uint64_t budget_waits;       /* periods in which its ingest budget ran out */
	uint64_t ctrl_over_budget;   /* control packets held for a later period */
	uint64_t chunks_over_budget; /* short RX pieces into it held for its next period */
	uint64_t mem_waits;          /* its chains that waited for memory not yet in */
};

struct dp_flow_stats {
	uint64_t packets;      /* packets completed (all pieces delivered) */
	uint64_t bytes;        /* their payload bytes */
	uint64_t chunks;       /* copy steps */
	uint64_t policed;      /* packets held back by the policer (GCRA on the
				* flow's period, size and jitter) */
	uint64_t oversize;     /* seqpacket messages with more payload than the
				* flow's size (held as their real size, dp_police) */
	uint64_t deadline_misses; /* residence > the flow's deadline */
	uint64_t max_residence_ns;
	uint64_t max_residence_at; /* the data plane's clock when that residence began */
	/* The longest a packet waited, before its residence, for its sender's control
	 * budget (held itself, or behind a held packet in its queue). */
	uint64_t max_budget_wait_ns;
	uint64_t hist[DP_HIST_BUCKETS];
	uint32_t queued;       /* packets queued now */
	uint32_t connections;  /* live connections now */
};

struct dp_reg_stats {
	uint64_t budget;            /* bytes per period; 0 = unregulated */
	uint64_t period_ns;
	uint64_t bytes;             /* bytes copied (payload and headers) */
	uint64_t throttled_periods; /* periods in which the budget ran out */
	uint64_t throttled_ns;      /* time work waited for replenishment */
	uint64_t reserve;           /* bytes per period best-effort steps may not spend */
	uint64_t be_waits;          /* best-effort steps refused for the reserve */
};

unsigned dp_ncells(const struct dp *dp);
/* Configured flows plus one best-effort class (index cfg->nflows). */
unsigned dp_nflows(const struct dp *dp);
/* "best-effort" for the extra class, NULL for a vacant slot. */
const char *dp_flow_name(const struct dp *dp, unsigned flow);
int dp_stats_cell(const struct dp *dp, unsigned cell, struct dp_cell_stats *out);
int dp_stats_flow(const struct dp *dp, unsigned flow, struct dp_flow_stats *out);
void dp_stats_reg(const struct dp *dp, struct dp_reg_stats *out);

/* Notifications to cells: decisions taken (one per queue per batch, each a full
 * fence) and how many of them signalled the cell (the notify hook). */
struct dp_notify_stats {
	uint64_t checks;
	uint64_t sent;
};
void dp_stats_notify(const struct dp *dp, struct dp_notify_stats *out);

#endif
