/* The data plane on several cores ([broker] cpus = 1,2,...; docs/broker.md "Several
 * cores", and the contract the analysis shares in docs/analysis.md).
 *
 * One thread per core, pinned to its cpu (SCHED_FIFO when rt_priority is set). A core
 * owns the cells model_cell_core() gives it: it ingests their TX rings, and the
 * queues toward them wait in its heaps, so it alone dispatches what is delivered
 * into them. What the cores share (every TX ring's used side, the connection and flow
 * tables, the packet slots, the statistics) is guarded by one FIFO
 * mutex M (sync/mutex.h). A step of core c is
 *   L_pick  under M: ingest c's cells, release c's held queues, pick c's ready head
 *           and reserve its piece (RX buffer, regulator grant from c's share);
 *   L_copy  under the k-exclusion lock K (sync/kex.h, k = copy_slots): the bytes, outside
 *           M; the queue is c's, so no other core touches the piece meanwhile;
 *   L_done  under M: the piece's bookkeeping, used rings, statistics, notifications.
 * Each step (L_pick, L_copy, L_done) holds the read side of the phase-fair lock W
 * (sync/rwlock.h); the daemon's loop thread takes the write side for everything it
 * does to the data plane (attach, detach, run-time changes, statistics: dp_ctl_lock),
 * so a change lands between steps of every core, never inside one. Per step, not per
 * run: a reader then waits for at most one step of the others and one write section
 * (docs/analysis.md "Several cores", the reader wait). The loop's write sections
 * begin at least model_write_spacing apart (mc_write_gate), so that the analysis
 * charges that wait per write rather than per step.
 *
 * Nothing here blocks beyond those spins: the waits are FIFO-bounded (sync/bounds.c,
 * which the analysis charges). An idle core sleeps on a futex until a kick for one of
 * its cells (dp_kick, from the loop thread), work another core left it, or its next
 * release; no allocation happens after dp_create. Hooks from a core thread: the
 * notify decision is taken under M, the signal after M is released, through the
 * core's own context (notify_core, notify_flush_core), so no system call runs under
 * M; a broken ring and a refused REQUEST are deferred to the loop thread (dp_run).
 * A connection a detach ends (under W) keeps its entry until its RST is delivered by
 * the core owning the peer, which frees the entry under M (dp_conn_told). */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dp_internal.h"
#include "kex.h"
#include "mutex.h"
#include "rwlock.h"

/* An idle core looks again at least this often (a lost wake-up costs no more). */
#define MC_IDLE_MAX_NS 50000000ull

struct mc_core {
	struct dp *dp;
	uint32_t idx;
	pthread_t th;
	bool started;
	/* The futex word: bumped by whoever wakes this core. */
	_Atomic uint32_t wake_seq;
	/* Set by the core under M when it decides to sleep, cleared by the first waker
	 * (seq_cst on both sides: see mc_wake). */
	atomic_bool idle;
	uint64_t sleep_until;   /* under M: its next release, 0 = none */
	bool poked;             /* under M: another core freed one of its TX slots */
	/* Notifications decided under M, signalled after it (bit 2 * cell + TX):
	 * written by this core only. */
	uint64_t *notemap;
	bool noted;
};

struct dp_mc {
	struct sync_mutex m;
	struct sync_kex k;
	struct sync_rwlock w;
	unsigned int ctl_depth; /* the loop thread's nested dp_ctl_lock calls */
	/* The write gate (loop thread only): a write section begins at least `spacing`
	 * after the one before began (model_write_spacing), on the real clock. */
	uint64_t spacing;
	uint64_t last_write;    /* when the last write section asked for W; 0 = none */
	uint64_t writes, gate_waits; /* write sections, and those the gate held back */
	atomic_bool stop;
	atomic_bool pending;    /* deferred work for the loop thread */
	bool poll;
	struct mc_core core[RTVIO_MAX_BROKER_CORES];
};

/* ------------------------------------------------------------- waking ---- */

static void futex_wake_one(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* The waker bumps the word, then looks at idle; the sleeper sets idle, then reads the
 * word it will wait on (both seq_cst): either the waker sees idle and wakes it, or
 * the sleeper reads the bumped word and its futex wait returns at once. */
static void mc_wake(struct mc_core *mk)
{
	atomic_fetch_add_explicit(&mk->wake_seq, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&mk->idle, memory_order_seq_cst))
		futex_wake_one(&mk->wake_seq);
}

void dp_mc_wake(struct dp *dp, uint32_t k)
{
	if (dp->mc && k < dp->ncores)
		mc_wake(&dp->mc->core[k]);
}

void dp_wake_cores(struct dp *dp)
{
	for (uint32_t k = 0; dp->mc && k < dp->ncores; k++)
		mc_wake(&dp->mc->core[k]);
}

/* Under M, before core `self` releases it: the idle cores that now have work (a
 * ready queue, an earlier release, a freed TX slot), taken off idle so that only one
 * waker calls. Returns them as a bit mask, woken after M is released. */
static uint32_t mc_to_wake(struct dp *dp, uint32_t self)
{
	uint32_t mask = 0;

	for (uint32_t j = 0; j < dp->ncores; j++) {
		struct mc_core *mk = &dp->mc->core[j];
		const struct dp_core *k = &dp->core[j];
		bool work;

		if (j == self || !atomic_load_explicit(&mk->idle, memory_order_relaxed))
			continue;
		work = k->ready.n || mk->poked ||
		       (k->held.n && (!mk->sleep_until ||
				      dp->queues[k->held.q[0]].k1 < mk->sleep_until));
		if (!work)
			continue;
		mk->poked = false;
		mask |= 1u << j;
	}
	return mask;
}

/* Under M: core `core` decided that the driver of a queue wants a notification. */
void dp_mc_note(struct dp *dp, uint32_t core, uint32_t cell, unsigned int queue)
{
	struct mc_core *mk = &dp->mc->core[core];

	dp_bit_set(mk->notemap, 2 * cell + (queue == DP_QUEUE_TX));
	mk->noted = true;
}

/* After M, still inside the step (W's read side: no cell is attached or detached
 * meanwhile): the signals the core decided under M, through its own context. */
static void mc_signal(struct dp *dp, struct mc_core *mk)
{
	uint32_t words = (2 * dp->ncells + 63) / 64;

	if (!mk->noted)
		return;
	mk->noted = false;
	for (uint32_t w = 0; w < words; w++) {
		uint64_t word = mk->notemap[w];

		mk->notemap[w] = 0;
		while (word) {
			uint32_t bit = w * 64 + (uint32_t)__builtin_ctzll(word);

			word &= word - 1;
			dp->hooks.notify_core(dp->ctx, mk->idx, bit / 2,
					      bit % 2 ? DP_QUEUE_TX : DP_QUEUE_RX);
		}
	}
	dp->hooks.notify_flush_core(dp->ctx, mk->idx);
}

static bool mc_signals_apart(const struct dp *dp)
{
	return dp->hooks.notify_core && dp->hooks.notify_flush_core;
}

static void mc_lock(struct dp *dp, uint32_t self)
{
	sync_mutex_lock(&dp->mc->m);
	if (mc_signals_apart(dp))
		dp->notify_core = self;
}

static void mc_unlock(struct dp *dp, uint32_t self)
{
	uint32_t mask = mc_to_wake(dp, self);

	dp->notify_core = DP_NOTE_AT_ONCE;
	sync_mutex_unlock(&dp->mc->m);
	for (uint32_t j = 0; mask; j++, mask >>= 1)
		if (mask & 1u)
			mc_wake(&dp->mc->core[j]);
	mc_signal(dp, &dp->mc->core[self]);
}

/* --------------------------------------------------------------- a run ---- */

/* L_copy: the step's bytes, at most k cores at once. */
static void mc_copy(struct dp *dp, uint32_t q, const struct dp_piece *pc)
{
	unsigned int slot = sync_kex_lock(&dp->mc->k);

	dp_step_copy(dp, q, pc);
	sync_kex_unlock(&dp->mc->k, slot);
}

/* L_done: completion; the sender's core is poked when its TX slot came free. */
static void mc_done(struct dp *dp, uint32_t self, uint32_t q, const struct dp_piece *pc,
		    uint64_t now)
{
	uint32_t src = dp->pkts[dp->queues[q].head].src;

	mc_lock(dp, self);
	if (dp_step_finish(dp, q, pc) == DP_STEP_DELIVERED) {
		dp_pkt_done(dp, q, now);
		if (dp->cell_core[src] != self)
			dp->mc->core[dp->cell_core[src]].poked = true;
	}
	mc_unlock(dp, self);
}

/* One run of core mk (W held for reading in each step): steps until nothing is ready or
 * DP_RUN_STEPS are done. Returns as dp_run does (0 idle, <= start at once, later: the
 * next release); *seen is the futex word read when the core went idle. */
static uint64_t mc_run(struct dp *dp, struct mc_core *mk, uint32_t *seen)
{
	struct dp_core *k = &dp->core[mk->idx];
	uint64_t start = dp_clock(dp), now = start, next;
	unsigned int steps = 0;

	for (;;) {
		struct dp_piece pc;
		enum dp_step r;
		uint32_t q;

		/* W's read side for one step: the loop thread's writes (attach, detach,
		 * changes, stats) come between any core's steps, never inside one. */
		sync_rw_read_lock(&dp->mc->w);
		mc_lock(dp, mk->idx);
		dp_ingest_pass(dp, k, now);
		if (!k->ready.n) {
			next = k->ingest_more ? start : dp_next_wake(dp, k, 0);
			break;
		}
		if (steps == DP_RUN_STEPS) {
			next = start;
			break;
		}
		q = k->ready.q[0];
		r = dp_step_reserve(dp, q, now, &pc);
		if (r == DP_STEP_THROTTLED) {
			next = dp_next_wake(dp, k, reg_next_ns(&k->reg));
			break;
		}
		if (r == DP_STEP_BLOCKED) {
			/* Its destination broke (cut off later by the loop thread): the
			 * queue waits, as for RX buffers, instead of being picked again. */
			if (dp->queues[q].state == DP_Q_READY)
				dp_queue_block(dp, q);
			mc_unlock(dp, mk->idx);
			sync_rw_read_unlock(&dp->mc->w);
			continue;
		}
		mc_unlock(dp, mk->idx);
		mc_copy(dp, q, &pc);
		/* The one clock read per step, after it (as dp_run). */
		now = dp_clock(dp);
		mc_done(dp, mk->idx, q, &pc, now);
		sync_rw_read_unlock(&dp->mc->w);
		steps++;
	}
	/* Still under M: going idle is decided where no other core can add work. */
	if (next == 0 || next > start) {
		mk->sleep_until = next;
		atomic_store_explicit(&mk->idle, true, memory_order_seq_cst);
		*seen = atomic_load_explicit(&mk->wake_seq, memory_order_seq_cst);
	}
	mc_unlock(dp, mk->idx);
	sync_rw_read_unlock(&dp->mc->w);
	return next;
}

/* Sleeps until woken or `next` (0: none; capped at MC_IDLE_MAX_NS). */
static void mc_sleep(struct dp *dp, struct mc_core *mk, uint32_t seen, uint64_t next)
{
	uint64_t now = dp_clock(dp), wait = MC_IDLE_MAX_NS;
	struct timespec ts;

	if (next && next <= now)
		wait = 0;
	else if (next && next - now < wait)
		wait = next - now;
	if (wait) {
		ts.tv_sec = (time_t)(wait / 1000000000ull);
		ts.tv_nsec = (long)(wait % 1000000000ull);
		syscall(SYS_futex, &mk->wake_seq, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
	}
	atomic_store_explicit(&mk->idle, false, memory_order_seq_cst);
}

/* ------------------------------------------------------- the threads ---- */

static void mc_place(const struct dp *dp, uint32_t idx)
{
	const struct rtvio_broker_cfg *bc = &dp->cfg->broker;
	int cpu = bc->cpus[idx];

	if (cpu >= 0) {
		cpu_set_t set;
		int rc;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		if (rc)
			fprintf(stderr, "rtvio broker: warning: core %u: cannot pin to cpu %d (%s): "
				"running unpinned\n", idx, cpu, strerror(rc));
	}
	if (bc->rt_priority > 0) {
		struct sched_param sp = { .sched_priority = bc->rt_priority };
		int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);

		if (rc)
			fprintf(stderr, "rtvio broker: warning: core %u: cannot use SCHED_FIFO "
				"priority %d (%s): running SCHED_OTHER\n", idx, bc->rt_priority,
				strerror(rc));
	}
}

static void *mc_main(void *arg)
{
	struct mc_core *mk = arg;
	struct dp *dp = mk->dp;
	struct dp_mc *mc = dp->mc;

	mc_place(dp, mk->idx);
	while (!atomic_load_explicit(&mc->stop, memory_order_acquire)) {
		uint32_t seen = 0;
		uint64_t next;

		next = mc_run(dp, mk, &seen);
		if (!atomic_load_explicit(&mk->idle, memory_order_relaxed))
			continue;
		if (mc->poll)
			atomic_store_explicit(&mk->idle, false, memory_order_seq_cst);
		else
			mc_sleep(dp, mk, seen, next);
	}
	return NULL;
}

/* The core threads, created with every asynchronous signal blocked: the daemon
 * takes its signals through a signalfd in its own thread, and one delivered to a core
 * would take the default action. Faults (SIGBUS from a cell's memory: the guard in
 * vhost_user.c) stay deliverable, as they must. */
static int mc_start(struct dp *dp)
{
	struct dp_mc *mc = dp->mc;
	sigset_t all, old;
	int rc = 0;

	sigfillset(&all);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (uint32_t k = 0; k < dp->ncores && !rc; k++) {
		struct mc_core *mk = &mc->core[k];

		mk->dp = dp;
		mk->idx = k;
		rc = pthread_create(&mk->th, NULL, mc_main, mk) ? -EAGAIN : 0;
		mk->started = !rc;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int dp_mc_create(struct dp *dp)
{
	struct dp_mc *mc;

	if (dp->ncores <= 1)
		return 0;
	mc = calloc(1, sizeof(*mc));
	if (!mc)
		return -ENOMEM;
	dp->mc = mc;
	sync_mutex_init(&mc->m);
	sync_rw_init(&mc->w);
	/* k = copy_slots: at most that many cores copy at once. */
	if (sync_kex_init(&mc->k, dp->cfg->broker.copy_slots > 0 ?
				  (uint32_t)dp->cfg->broker.copy_slots : dp->ncores))
		return -EINVAL;
	mc->poll = dp->cfg->broker.poll;
	mc->spacing = model_write_spacing(dp->cfg);
	for (uint32_t k = 0; k < dp->ncores; k++) {
		mc->core[k].notemap = calloc((2 * dp->ncells + 63) / 64 + 1, sizeof(uint64_t));
		if (!mc->core[k].notemap)
			return -ENOMEM;
	}
	return mc_start(dp);
}

void dp_mc_destroy(struct dp *dp)
{
	struct dp_mc *mc = dp->mc;

	if (!mc)
		return;
	atomic_store_explicit(&mc->stop, true, memory_order_release);
	for (uint32_t k = 0; k < dp->ncores; k++)
		if (mc->core[k].started)
			mc_wake(&mc->core[k]);
	for (uint32_t k = 0; k < dp->ncores; k++)
		if (mc->core[k].started)
			pthread_join(mc->core[k].th, NULL);
	for (uint32_t k = 0; k < dp->ncores; k++)
		free(mc->core[k].notemap);
	free(mc);
	dp->mc = NULL;
}

/* ------------------------------------------------ the control path ---- */

/* The loop thread waits, in its own thread and holding nothing the cores take, until
 * `spacing` has passed since the last write section began: then a window of length t
 * holds at most 1 + t / spacing of them, which is what the analysis charges the
 * cores' reader waits by (docs/analysis.md, "Several cores"). Work of the loop's
 * that needs W is deferred that long, the cores never. */
static void mc_write_gate(const struct dp *dp, struct dp_mc *mc)
{
	uint64_t now = rtvio_now_ns(), at = mc->last_write + mc->spacing;

	if (mc->last_write && now < at) {
		mc->gate_waits++;
		if (dp->hooks.gate_wait)
			dp->hooks.gate_wait(dp->ctx, at);
		rtvio_sleep_until_ns(at);
		now = rtvio_now_ns();
	}
	mc->last_write = now;
	mc->writes++;
}

void dp_ctl_lock(const struct dp *dp)
{
	struct dp_mc *mc = dp->mc;

	if (mc && mc->ctl_depth++ == 0) {
		mc_write_gate(dp, mc);
		sync_rw_write_lock(&mc->w);
	}
}

void dp_write_gate_stats(const struct dp *dp, uint64_t *writes, uint64_t *waits)
{
	*writes = dp->mc ? dp->mc->writes : 0;
	*waits = dp->mc ? dp->mc->gate_waits : 0;
}

void dp_ctl_unlock(const struct dp *dp)
{
	struct dp_mc *mc = dp->mc;

	if (!mc || --mc->ctl_depth)
		return;
	sync_rw_write_unlock(&mc->w);
	/* Whatever changed (a cell attached, a change applied) may be work for any. */
	for (uint32_t k = 0; k < dp->ncores; k++)
		mc_wake(&mc->core[k]);
}

void dp_mc_break_defer(struct dp *dp, uint32_t cell, int err)
{
	struct dp_cell *c = &dp->cells[cell];

	if (c->broken)
		return;
	/* From here on no core ingests it; what is queued toward it finds its ring
	 * broken and waits; the loop thread detaches it. */
	c->broken = true;
	c->mc_err = err;
	dp_bit_clear(dp_core_of(dp, cell)->attmap, cell);
	dp_mc_defer(dp);
}

void dp_mc_defer(struct dp *dp)
{
	atomic_store_explicit(&dp->mc->pending, true, memory_order_release);
	if (dp->hooks.wake)
		dp->hooks.wake(dp->ctx);
}

/* The loop thread: cells the cores found broken are cut off, refused REQUESTs
 * reported, with every core between runs. */
uint64_t dp_mc_service(struct dp *dp)
{
	struct dp_mc *mc = dp->mc;

	if (!atomic_exchange_explicit(&mc->pending, false, memory_order_acq_rel))
		return 0;
	dp_ctl_lock(dp);
	for (uint32_t i = 0; i < dp->ncells; i++) {
		struct dp_cell *c = &dp->cells[i];

		if (c->attached && c->broken)
			dp_cell_break_now(dp, i);
		if (c->conn_limit_refusals != c->conn_limit_told) {
			c->conn_limit_told = c->conn_limit_refusals;
			if (dp->hooks.conn_limit)
				dp->hooks.conn_limit(dp->ctx, i, c->conn_limit,
						     c->conn_limit_refusals);
		}
	}
	dp_ctl_unlock(dp);
	return 0;
}
