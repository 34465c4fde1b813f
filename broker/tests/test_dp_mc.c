/* Data plane on two cores (broker/dp_mc.c): two core threads move four flows, two
 * that cross cores and two within one, while this thread plays the four cells. Every
 * byte is checked; a cell that breaks the rules is cut off by the loop thread (here:
 * this one, through dp_run) with its peers reset and the other flows intact. Run
 * under TSan by `make test` (suite threaded).
 *
 * The cells' side of the rings is driven only while holding the data plane's
 * control lock (dp_ctl_lock), between the cores' runs: the rings' own fences order
 * them for real cells in other processes, which TSan cannot see; the lock gives it
 * (and the test) a happens-before edge instead. The cores themselves run freely
 * against each other. Time is the real clock; nothing asserts a speed. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

/* The harness's single-threaded set-up (fake clock, t_env_init, t_run) is not used:
 * the cores read the clock themselves. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_dp_harness.h"

#define NCELLS 4
#define NFLOWS 4
#define PKTS 150u          /* RW packets per flow */
#define MAXLEN 3000u       /* payload of the largest: spans two RX buffers */
/* The senders' chains out per cell: the harness's T_TXBUFS TX buffers less room for
 * the RESPONSEs a cell sends as it reads a REQUEST, whatever it has out (b listens
 * for two flows). */
#define TX_INFLIGHT (T_TXBUFS - 2u)
#define DEADLINE_NS 20000000000ull

/* One copier at a time (copy_slots = 1): the cores also queue for the copy.
 * a, c on core 0; b, d on core 1 (cells dealt by slot). x: a -> b crosses to core 1,
 * y: c -> a stays on core 0, z: d -> b stays on core 1, w: b -> c crosses to core 0. */
static const char mc_ini[] =
	"[broker]\ncpus = 0,1\ncopy_slots = 1\nchunk = 1KiB\npolicy = fp\n"
	"[cell a]\ncid = 3\n[cell b]\ncid = 4\n[cell c]\ncid = 5\n[cell d]\ncid = 6\n"
	"[flow x]\nfrom = a\nto = b:1000\ntype = stream\nsize = 1MiB\nperiod = 1ms\npriority = 1\n"
	"[flow y]\nfrom = c\nto = a:2000\ntype = stream\nsize = 1MiB\nperiod = 1ms\npriority = 2\n"
	"[flow z]\nfrom = d\nto = b:3000\ntype = stream\nsize = 1MiB\nperiod = 1ms\npriority = 3\n"
	"[flow w]\nfrom = b\nto = c:4000\ntype = stream\nsize = 1MiB\nperiod = 1ms\npriority = 4\n";

static const int fl_from[NFLOWS] = { 0, 2, 3, 1 };
static const int fl_to[NFLOWS] = { 1, 0, 1, 2 };
static const uint32_t fl_port[NFLOWS] = { 1000, 2000, 3000, 4000 };

struct mcflow {
	bool connected, requested;
	uint32_t sent_pkts;
	uint64_t sent_bytes, recv_bytes;
	unsigned int resets;     /* RSTs its connector received */
};

struct mcenv {
	struct tenv t;
	struct mcflow f[NFLOWS];
	uint32_t tx_out[NCELLS];     /* TX chains not yet returned */
	uint32_t rx_posted[NCELLS];  /* RX buffers posted, not yet used */
	atomic_uint notifies, wakes;
	/* Per core, touched by that core's thread only (read after dp_destroy):
	 * signals decided and handed over, and those not yet flushed. */
	unsigned int core_notifies[2], core_unflushed[2], core_flushes[2];
	atomic_uint bad_core;
	unsigned int broken_calls[NCELLS];
	int broken_err[NCELLS];
	unsigned int gate_calls;     /* the write gate's waits (this thread) */
	uint64_t gate_until;
};

static void mc_notify(void *ctx, unsigned int cell, unsigned int queue)
{
	struct mcenv *m = ctx;

	(void)cell;
	(void)queue;
	atomic_fetch_add(&m->notifies, 1);
}

/* Called from dp_run, in this thread. */
static void mc_broken(void *ctx, unsigned int cell, int err)
{
	struct mcenv *m = ctx;

	m->broken_calls[cell]++;
	m->broken_err[cell] = err;
}

static void mc_wake_hook(void *ctx)
{
	struct mcenv *m = ctx;

	atomic_fetch_add(&m->wakes, 1);
}

/* From a core's thread, after it released the data plane's mutex. */
static void mc_notify_core(void *ctx, unsigned int core, unsigned int cell, unsigned int queue)
{
	struct mcenv *m = ctx;

	if (core >= 2 || cell >= NCELLS || queue > DP_QUEUE_TX) {
		atomic_fetch_add(&m->bad_core, 1);
		return;
	}
	m->core_notifies[core]++;
	m->core_unflushed[core]++;
}

static void mc_notify_flush_core(void *ctx, unsigned int core)
{
	struct mcenv *m = ctx;

	if (core >= 2) {
		atomic_fetch_add(&m->bad_core, 1);
		return;
	}
	m->core_unflushed[core] = 0;
	m->core_flushes[core]++;
}

/* The write gate's wait, from the thread that takes the control lock: returns at
 * once, so the gate sleeps the rest itself. */
static void mc_gate_wait(void *ctx, uint64_t until)
{
	struct mcenv *m = ctx;

	m->gate_calls++;
	m->gate_until = until;
}

static const struct dp_hooks mc_hooks = { .notify = mc_notify, .broken = mc_broken,
					  .wake = mc_wake_hook, .notify_core = mc_notify_core,
					  .notify_flush_core = mc_notify_flush_core,
					  .gate_wait = mc_gate_wait };

/* The stream's byte at offset off of flow f: any lost, doubled or misplaced byte
 * shows. */
static uint8_t pat(int f, uint64_t off)
{
	return (uint8_t)(f * 31 + off * 7 + off / 251);
}

static uint32_t cid_of(int cell)
{
	return 3u + (uint32_t)cell;
}

static void mc_init(struct mcenv *m)
{
	char err[256];

	memset(m, 0, sizeof(*m));
	if (rtvio_config_parse(mc_ini, "test.conf", &m->t.cfg, err, sizeof(err))) {
		print_error("config: %s\n", err);
		fail();
	}
	assert_int_equal(m->t.cfg.broker.ncores, 2);
	assert_int_equal(dp_create(&m->t.cfg, &mc_hooks, m, &m->t.dp), 0);
	for (int i = 0; i < NCELLS; i++) {
		t_cell_init(&m->t.cell[i], 2048);
		assert_int_equal(dp_attach(m->t.dp, (unsigned int)i, &m->t.cell[i].dev[0],
					   &m->t.cell[i].dev[1]), 0);
	}
}

static void mc_fini(struct mcenv *m)
{
	/* The core threads stop first: nothing touches the rings after this. */
	dp_destroy(m->t.dp);
	for (int i = 0; i < NCELLS; i++)
		free(m->t.cell[i].region);
	rtvio_config_free(&m->t.cfg);
}

static void mc_send(struct mcenv *m, int cell, const struct vsock_hdr *h, const void *pl)
{
	/* A TX buffer not in flight is left for every packet (TX_INFLIGHT). */
	assert_true(m->tx_out[cell] < T_TXBUFS);
	t_send(&m->t.cell[cell], h, pl);
	m->tx_out[cell]++;
}

/* One piece received by `cell`: a handshake step, an RST, or stream bytes checked
 * against the pattern. */
static void on_piece(struct mcenv *m, int cell, const struct vsock_hdr *h, const uint8_t *pl)
{
	for (int f = 0; f < NFLOWS; f++) {
		struct mcflow *fl = &m->f[f];

		if (cell == fl_to[f] && h->dst_port == fl_port[f]) {
			assert_int_equal(h->src_cid, cid_of(fl_from[f]));
			if (h->op == VSOCK_OP_REQUEST) {
				struct vsock_hdr r = t_hdr(cid_of(cell), fl_port[f], h->src_cid,
							   h->src_port, VSOCK_TYPE_STREAM,
							   VSOCK_OP_RESPONSE, 0);

				mc_send(m, cell, &r, NULL);
				return;
			}
			if (h->op != VSOCK_OP_RW)
				return;
			for (uint32_t i = 0; i < h->len; i++)
				if (pl[i] != pat(f, fl->recv_bytes + i)) {
					print_error("flow %d: byte %llu is %u, want %u\n", f,
						    (unsigned long long)(fl->recv_bytes + i), pl[i],
						    pat(f, fl->recv_bytes + i));
					fail();
				}
			fl->recv_bytes += h->len;
			return;
		}
		if (cell == fl_from[f] && h->src_port == fl_port[f]) {
			if (h->op == VSOCK_OP_RESPONSE)
				fl->connected = true;
			else if (h->op == VSOCK_OP_RST)
				fl->resets++;
			return;
		}
	}
	print_error("cell %d: unexpected piece op %u to port %u\n", cell, h->op, h->dst_port);
	fail();
}

/* The flows' senders: a REQUEST first, then RW packets of varying size while the
 * cell has TX buffers. */
static void senders(struct mcenv *m, const bool *live)
{
	static uint8_t pl[MAXLEN];

	for (int f = 0; f < NFLOWS; f++) {
		struct mcflow *fl = &m->f[f];
		int s = fl_from[f];
		uint32_t len;
		struct vsock_hdr h;

		if (!live[f] || m->tx_out[s] >= TX_INFLIGHT)
			continue;
		if (!fl->requested) {
			h = t_hdr(cid_of(s), fl_port[f], cid_of(fl_to[f]), fl_port[f],
				  VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
			mc_send(m, s, &h, NULL);
			fl->requested = true;
			continue;
		}
		if (!fl->connected || fl->sent_pkts == PKTS)
			continue;
		len = 1 + (fl->sent_pkts * 977u + (uint32_t)f * 131u) % MAXLEN;
		for (uint32_t i = 0; i < len; i++)
			pl[i] = pat(f, fl->sent_bytes + i);
		h = t_hdr(cid_of(s), fl_port[f], cid_of(fl_to[f]), fl_port[f], VSOCK_TYPE_STREAM,
			  VSOCK_OP_RW, len);
		mc_send(m, s, &h, pl);
		fl->sent_pkts++;
		fl->sent_bytes += len;
	}
}

/* One turn of the cells, between the cores' runs: take what arrived, give back RX
 * buffers, reap TX chains, send more. */
static void cells_turn(struct mcenv *m, const bool *live)
{
	static uint8_t pl[4096];

	dp_ctl_lock(m->t.dp);
	for (int c = 0; c < NCELLS; c++) {
		struct tcell *tc = &m->t.cell[c];
		struct vsock_hdr h;

		while (t_recv(tc, &h, pl, sizeof(pl))) {
			m->rx_posted[c]--;
			on_piece(m, c, &h, pl);
		}
		/* Split buffers (odd cells) take two descriptors of the ring's 64. */
		if (m->rx_posted[c] < T_QSIZE / 4) {
			t_post_rx(tc, T_QSIZE / 4, c & 1);
			m->rx_posted[c] += T_QSIZE / 4;
		}
		m->tx_out[c] -= t_tx_done(tc);
	}
	senders(m, live);
	dp_ctl_unlock(m->t.dp);
}

static bool flows_done(const struct mcenv *m, const bool *live)
{
	for (int f = 0; f < NFLOWS; f++)
		if (live[f] && (m->f[f].sent_pkts < PKTS || m->f[f].recv_bytes < m->f[f].sent_bytes))
			return false;
	return true;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Turns until every live flow has sent and delivered all its bytes. */
static void run_until_done(struct mcenv *m, const bool *live)
{
	uint64_t end = mono_ns() + DEADLINE_NS;

	while (!flows_done(m, live)) {
		if (mono_ns() > end) {
			for (int f = 0; f < NFLOWS; f++)
				print_error("flow %d: sent %u packets, %llu bytes, received %llu\n", f,
					    m->f[f].sent_pkts, (unsigned long long)m->f[f].sent_bytes,
					    (unsigned long long)m->f[f].recv_bytes);
			fail_msg("the flows did not complete");
		}
		cells_turn(m, live);
		dp_run(m->t.dp, mono_ns());
		sched_yield();
	}
}

/* Four flows, two across cores and two within one: every byte arrives once, in
 * order, and the statistics the cores kept add up. */
static void test_two_cores_integrity(void **state)
{
	static struct mcenv m;
	const bool live[NFLOWS] = { true, true, true, true };

	(void)state;
	mc_init(&m);
	run_until_done(&m, live);
	for (int f = 0; f < NFLOWS; f++) {
		struct dp_flow_stats fs;

		assert_int_equal(dp_stats_flow(m.t.dp, (unsigned int)f, &fs), 0);
		/* The REQUEST, the RESPONSE (the other way) and the RW packets. */
		assert_int_equal(fs.packets, PKTS + 2);
		assert_int_equal(fs.bytes, m.f[f].sent_bytes);
		assert_int_equal(fs.queued, 0);
	}
	for (int c = 0; c < NCELLS; c++) {
		struct dp_cell_stats cs;

		assert_int_equal(dp_stats_cell(m.t.dp, (unsigned int)c, &cs), 0);
		assert_true(cs.attached);
		assert_false(cs.broken);
		assert_int_equal(m.broken_calls[c], 0);
	}
	mc_fini(&m);
	/* Each core signalled what it decided through its own hooks, and flushed every
	 * batch (each core delivers into two of the cells). */
	assert_int_equal(atomic_load(&m.bad_core), 0);
	for (int k = 0; k < 2; k++) {
		assert_true(m.core_notifies[k] > 0);
		assert_true(m.core_flushes[k] > 0);
		assert_int_equal(m.core_unflushed[k], 0);
	}
}

/* Cell d posts a chain with an unknown op: its core defers the cut-off, the loop
 * thread (dp_run) detaches it and calls the broken hook there; b, the listener of its
 * flow, gets an RST; the other flows go on intact. */
static void test_two_cores_broken_cell(void **state)
{
	static struct mcenv m;
	bool live[NFLOWS] = { true, true, true, true };
	struct vsock_hdr bad = t_hdr(6, 3000, 4, 3000, VSOCK_TYPE_STREAM, 99, 0);
	struct dp_cell_stats cs;
	uint64_t end;

	(void)state;
	mc_init(&m);
	run_until_done(&m, live);
	live[2] = false;
	for (int f = 0; f < NFLOWS; f++)
		m.f[f].sent_pkts = f == 2 ? PKTS : 0;
	dp_ctl_lock(m.t.dp);
	mc_send(&m, 3, &bad, NULL);
	dp_ctl_unlock(m.t.dp);
	end = mono_ns() + DEADLINE_NS;
	while (!m.broken_calls[3]) {
		assert_true(mono_ns() < end);
		dp_run(m.t.dp, mono_ns());
		sched_yield();
	}
	assert_true(atomic_load(&m.wakes) > 0);
	assert_int_equal(m.broken_calls[3], 1);
	assert_int_equal(m.broken_err[3], -EPROTO);
	assert_int_equal(dp_stats_cell(m.t.dp, 3, &cs), 0);
	assert_false(cs.attached);
	assert_true(cs.broken);
	/* The others carry on: a second round on x, y and w, every byte checked. */
	run_until_done(&m, live);
	for (int c = 0; c < 3; c++) {
		assert_int_equal(dp_stats_cell(m.t.dp, (unsigned int)c, &cs), 0);
		assert_true(cs.attached);
		assert_int_equal(m.broken_calls[c], 0);
	}
	/* b heard of z's end: the broker's RST toward the listener. */
	assert_true(dp_stats_cell(m.t.dp, 1, &cs) == 0 && cs.resets >= 1);
	mc_fini(&m);
}


/* The write gate: two write sections of the control lock begin at least
 * model_write_spacing apart (the analysis charges the cores' W waits per write on
 * that), the gate's wait goes through the gate_wait hook, a nested lock is no new
 * section, and the counts `rtvio stat` shows add up. */
static void test_write_gate(void **state)
{
	static struct mcenv m;
	uint64_t spacing, t0, t1, w0, g0, w1, g1;

	(void)state;
	mc_init(&m);
	spacing = model_write_spacing(&m.t.cfg);
	assert_true(spacing > 0);
	dp_ctl_lock(m.t.dp);
	dp_write_gate_stats(m.t.dp, &w0, &g0);
	dp_ctl_unlock(m.t.dp);
	t0 = mono_ns();
	dp_ctl_lock(m.t.dp);
	dp_ctl_lock(m.t.dp);
	dp_ctl_unlock(m.t.dp);
	dp_ctl_unlock(m.t.dp);
	dp_ctl_lock(m.t.dp);
	t1 = mono_ns();
	dp_write_gate_stats(m.t.dp, &w1, &g1);
	dp_ctl_unlock(m.t.dp);
	/* The first section here began after t0, the second at least spacing later. */
	assert_true(t1 - t0 >= spacing);
	assert_int_equal(w1 - w0, 2);
	assert_true(g1 - g0 >= 1);
	assert_true(m.gate_calls >= 1);
	assert_true(m.gate_until >= t0 + spacing && m.gate_until <= t1);
	mc_fini(&m);
}

/* ------------------------------------------- residence on two cores ---- */

/* Cell b (core 1) opens three flows at once with a control budget of one packet per
 * 10 ms period (its allowance; it receives no stream): p toward a (core 0), q toward
 * c (core 0), r toward d (core 1). The clock is the test's: it moves only while the
 * cores are between steps (under the control lock). */
static const char res_ini[] =
	"[broker]\ncpus = 0,1\nchunk = 1KiB\npolicy = fp\nbudget_period = 10ms\n"
	"[cell a]\ncid = 3\n[cell b]\ncid = 4\n[cell c]\ncid = 5\n[cell d]\ncid = 6\n"
	"[flow p]\nfrom = b\nto = a:1000\ntype = stream\nsize = 4KiB\nperiod = 1ms\n"
	"[flow q]\nfrom = b\nto = c:2000\ntype = stream\nsize = 4KiB\nperiod = 1ms\n"
	"[flow r]\nfrom = b\nto = d:3000\ntype = stream\nsize = 4KiB\nperiod = 1ms\n";

#define RES_T0 1000000000ull
#define RES_MS 1000000ull

struct resenv {
	struct tenv t;
	_Atomic uint64_t clock;
	unsigned int got[NCELLS][VSOCK_OP_CREDIT_REQUEST + 1]; /* pieces by op */
};

static uint64_t res_now(void *ctx)
{
	struct resenv *e = ctx;

	return atomic_load(&e->clock);
}

static void res_nop_notify(void *ctx, unsigned int cell, unsigned int queue)
{
	(void)ctx;
	(void)cell;
	(void)queue;
}

static void res_nop_core(void *ctx, unsigned int core, unsigned int cell, unsigned int queue)
{
	(void)ctx;
	(void)core;
	(void)cell;
	(void)queue;
}

static void res_nop_flush(void *ctx, unsigned int core)
{
	(void)ctx;
	(void)core;
}

static const struct dp_hooks res_hooks = { .notify = res_nop_notify, .now = res_now,
					   .notify_core = res_nop_core,
					   .notify_flush_core = res_nop_flush };

/* Under the control lock: what the cells received, counted by op. */
static void res_take(struct resenv *e)
{
	static uint8_t pl[4096];

	for (int c = 0; c < NCELLS; c++) {
		struct vsock_hdr h;

		while (t_recv(&e->t.cell[c], &h, pl, sizeof(pl)))
			if (h.op <= VSOCK_OP_CREDIT_REQUEST)
				e->got[c][h.op]++;
		t_tx_done(&e->t.cell[c]);
	}
}

/* Waits (real time) until cell `cell` has received `n` pieces of op `op`. */
static void res_wait(struct resenv *e, int cell, uint16_t op, unsigned int n)
{
	uint64_t end = mono_ns() + DEADLINE_NS;

	for (;;) {
		bool done;

		dp_ctl_lock(e->t.dp);
		res_take(e);
		done = e->got[cell][op] >= n;
		dp_ctl_unlock(e->t.dp);
		if (done)
			return;
		if (mono_ns() > end)
			fail_msg("cell %d never received op %u", cell, op);
		sched_yield();
	}
}

static void res_send(struct resenv *e, int from, uint32_t port, int to, uint16_t op,
		     uint32_t len)
{
	static uint8_t pl[128];
	struct vsock_hdr h = t_hdr(cid_of(from), port, cid_of(to), port, VSOCK_TYPE_STREAM, op,
				   len);

	t_send(&e->t.cell[from], &h, pl);
}

/* Moves the clock while every core is between steps; the unlock wakes them. */
static void res_clock(struct resenv *e, uint64_t t)
{
	dp_ctl_lock(e->t.dp);
	atomic_store(&e->clock, t);
	dp_ctl_unlock(e->t.dp);
}

static void res_flow(struct resenv *e, unsigned int f, uint64_t res, uint64_t at, uint64_t wait)
{
	struct dp_flow_stats fs;

	dp_ctl_lock(e->t.dp);
	assert_int_equal(dp_stats_flow(e->t.dp, f, &fs), 0);
	dp_ctl_unlock(e->t.dp);
	assert_int_equal(fs.max_residence_ns, res);
	assert_int_equal(fs.max_residence_at, at);
	assert_int_equal(fs.max_budget_wait_ns, wait);
	assert_int_equal(fs.queued, 0);
}

/* The two-core data plane of res_ini on the test clock at RES_T0, every cell attached
 * with RX buffers posted. */
static void res_start(struct resenv *e)
{
	char err[256];

	memset(e, 0, sizeof(*e));
	atomic_store(&e->clock, RES_T0);
	if (rtvio_config_parse(res_ini, "test.conf", &e->t.cfg, err, sizeof(err)))
		fail_msg("config: %s", err);
	assert_int_equal(dp_create(&e->t.cfg, &res_hooks, e, &e->t.dp), 0);
	for (int i = 0; i < NCELLS; i++) {
		t_cell_init(&e->t.cell[i], 2048);
		t_post_rx(&e->t.cell[i], T_QSIZE / 4, false);
		assert_int_equal(dp_attach(e->t.dp, (unsigned int)i, &e->t.cell[i].dev[0],
					   &e->t.cell[i].dev[1]), 0);
	}
}

static void res_end(struct resenv *e)
{
	dp_destroy(e->t.dp);
	for (int i = 0; i < NCELLS; i++)
		free(e->t.cell[i].region);
	rtvio_config_free(&e->t.cfg);
}

/* A control packet its sender's budget holds waits at the sender's expense: its
 * residence (what `rtvio analyze`'s R bounds) starts at the release the budget gave
 * it, whichever core ingested it and whichever delivers it, and so does that of a
 * packet queued behind it; the wait itself is max_budget_wait_ns. */
static void test_two_cores_budget_residence(void **state)
{
	static struct resenv e;
	struct dp_cell_stats cs;

	(void)state;
	res_start(&e);
	/* At t0 b opens p, q and r: p goes in this period, q waits for the next
	 * (t0 + 10 ms), r for the one after (t0 + 20 ms). */
	dp_ctl_lock(e.t.dp);
	res_send(&e, 1, 1000, 0, VSOCK_OP_REQUEST, 0);
	res_send(&e, 1, 2000, 2, VSOCK_OP_REQUEST, 0);
	res_send(&e, 1, 3000, 3, VSOCK_OP_REQUEST, 0);
	dp_ctl_unlock(e.t.dp);
	res_wait(&e, 0, VSOCK_OP_REQUEST, 1);
	dp_ctl_lock(e.t.dp);
	res_send(&e, 0, 1000, 1, VSOCK_OP_RESPONSE, 0);
	dp_ctl_unlock(e.t.dp);
	res_wait(&e, 1, VSOCK_OP_RESPONSE, 1);
	/* Still t0: b shuts p down (held for t0 + 30 ms) and sends data behind it. */
	dp_ctl_lock(e.t.dp);
	res_send(&e, 1, 1000, 0, VSOCK_OP_SHUTDOWN, 0);
	res_send(&e, 1, 1000, 0, VSOCK_OP_RW, 100);
	dp_ctl_unlock(e.t.dp);
	for (uint64_t end = mono_ns() + DEADLINE_NS;;) {
		struct dp_flow_stats fs;

		dp_ctl_lock(e.t.dp);
		assert_int_equal(dp_stats_flow(e.t.dp, 0, &fs), 0);
		dp_ctl_unlock(e.t.dp);
		if (fs.queued == 2)
			break;
		assert_true(mono_ns() < end);
		sched_yield();
	}
	/* Nothing held has gone early. */
	dp_ctl_lock(e.t.dp);
	res_take(&e);
	assert_int_equal(e.got[2][VSOCK_OP_REQUEST] + e.got[3][VSOCK_OP_REQUEST], 0);
	assert_int_equal(e.got[0][VSOCK_OP_SHUTDOWN] + e.got[0][VSOCK_OP_RW], 0);
	dp_ctl_unlock(e.t.dp);
	/* q, ingested by core 1 and delivered by core 0, 2 ms after its release. */
	res_clock(&e, RES_T0 + 12 * RES_MS);
	res_wait(&e, 2, VSOCK_OP_REQUEST, 1);
	/* r, within core 1, 5 ms after its release. */
	res_clock(&e, RES_T0 + 25 * RES_MS);
	res_wait(&e, 3, VSOCK_OP_REQUEST, 1);
	/* The SHUTDOWN 3 ms after its release, and the data behind it with it. */
	res_clock(&e, RES_T0 + 33 * RES_MS);
	res_wait(&e, 0, VSOCK_OP_RW, 1);
	assert_int_equal(e.got[0][VSOCK_OP_SHUTDOWN], 1);
	res_flow(&e, 0, 3 * RES_MS, RES_T0 + 30 * RES_MS, 30 * RES_MS);
	res_flow(&e, 1, 2 * RES_MS, RES_T0 + 10 * RES_MS, 10 * RES_MS);
	res_flow(&e, 2, 5 * RES_MS, RES_T0 + 20 * RES_MS, 20 * RES_MS);
	dp_ctl_lock(e.t.dp);
	assert_int_equal(dp_stats_cell(e.t.dp, 1, &cs), 0);
	dp_ctl_unlock(e.t.dp);
	assert_int_equal(cs.ctrl_over_budget, 3);
	res_end(&e);
}

/* Several cores: b (core 1) has p, q and r open when it detaches at t0 + 30 ms. The
 * RSTs toward a and c (core 0) and d (core 1) are b's control packets: one per 10 ms
 * period of b's budget, whichever core delivers them, none early. */
static void test_two_cores_detach_rst(void **state)
{
	static struct resenv e;
	struct dp_cell_stats cs;

	(void)state;
	res_start(&e);
	/* The three connections, b's REQUESTs one per period (t0, +10, +20 ms). */
	dp_ctl_lock(e.t.dp);
	res_send(&e, 1, 1000, 0, VSOCK_OP_REQUEST, 0);
	res_send(&e, 1, 2000, 2, VSOCK_OP_REQUEST, 0);
	res_send(&e, 1, 3000, 3, VSOCK_OP_REQUEST, 0);
	dp_ctl_unlock(e.t.dp);
	res_clock(&e, RES_T0 + 20 * RES_MS);
	res_wait(&e, 0, VSOCK_OP_REQUEST, 1);
	res_wait(&e, 2, VSOCK_OP_REQUEST, 1);
	res_wait(&e, 3, VSOCK_OP_REQUEST, 1);
	dp_ctl_lock(e.t.dp);
	res_send(&e, 0, 1000, 1, VSOCK_OP_RESPONSE, 0);
	res_send(&e, 2, 2000, 1, VSOCK_OP_RESPONSE, 0);
	res_send(&e, 3, 3000, 1, VSOCK_OP_RESPONSE, 0);
	dp_ctl_unlock(e.t.dp);
	res_wait(&e, 1, VSOCK_OP_RESPONSE, 3);
	dp_ctl_lock(e.t.dp);
	assert_int_equal(dp_stats_cell(e.t.dp, 1, &cs), 0);
	dp_ctl_unlock(e.t.dp);
	assert_int_equal(cs.ctrl_over_budget, 2);
	/* b leaves at t0 + 30 ms, a fresh period: a hears at once. */
	res_clock(&e, RES_T0 + 30 * RES_MS);
	dp_detach(e.t.dp, 1);
	res_wait(&e, 0, VSOCK_OP_RST, 1);
	dp_ctl_lock(e.t.dp);
	res_take(&e);
	assert_int_equal(e.got[2][VSOCK_OP_RST] + e.got[3][VSOCK_OP_RST], 0);
	/* The entries of the two held RSTs live on, still b's (their connector's). */
	assert_int_equal(t_conns_used(e.t.dp), 2);
	assert_int_equal(e.t.dp->cells[1].nconn, 2);
	dp_ctl_unlock(e.t.dp);
	/* c (core 0) at t0 + 40 ms, d (core 1) at t0 + 50 ms. */
	res_clock(&e, RES_T0 + 40 * RES_MS);
	res_wait(&e, 2, VSOCK_OP_RST, 1);
	dp_ctl_lock(e.t.dp);
	res_take(&e);
	assert_int_equal(e.got[3][VSOCK_OP_RST], 0);
	dp_ctl_unlock(e.t.dp);
	res_clock(&e, RES_T0 + 50 * RES_MS);
	res_wait(&e, 3, VSOCK_OP_RST, 1);
	dp_ctl_lock(e.t.dp);
	res_take(&e);
	for (int i = 0; i < NCELLS; i++)
		assert_int_equal(e.got[i][VSOCK_OP_RST], i == 1 ? 0 : 1);
	assert_int_equal(dp_stats_cell(e.t.dp, 1, &cs), 0);
	/* Each entry freed with its delivered RST, on the core that delivered it. */
	assert_int_equal(t_conns_used(e.t.dp), 0);
	assert_int_equal(e.t.dp->cells[1].nconn, 0);
	dp_ctl_unlock(e.t.dp);
	assert_int_equal(cs.ctrl_over_budget, 4);
	res_end(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_cores_integrity),
		cmocka_unit_test(test_two_cores_broken_cell),
		cmocka_unit_test(test_two_cores_budget_residence),
		cmocka_unit_test(test_two_cores_detach_rst),
		cmocka_unit_test(test_write_gate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
