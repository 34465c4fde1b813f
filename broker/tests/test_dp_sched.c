/* Data plane: dispatch order under fp, edf and fifo, preemption between chunks,
 * policing and regulation, all driven by a fake clock (never by timing). */
#include "test_dp_harness.h"
#include "model.h"

#define A 3u
#define B 4u
#define C 5u

enum { FX, FY, FBULK }; /* flow indexes in sched_ini */

/* x: a -> c:1000, priority 1, deadline 5 ms; y: b -> c:2000, priority 2, deadline
 * 1 ms (so fp and edf disagree); bulk: b -> c:3000, best-effort. */
static void sched_ini(char *buf, size_t len, const char *policy, const char *extra)
{
	snprintf(buf, len,
		 "[broker]\npolicy = %s\nchunk = 1KiB\n%s"
		 "[cell a]\ncid = 3\n[cell b]\ncid = 4\n[cell c]\ncid = 5\n"
		 "[flow x]\nfrom = a\nto = c:1000\ntype = seqpacket\nsize = 64KiB\n"
		 "period = 100us\ndeadline = 5ms\npriority = 1\n"
		 "[flow y]\nfrom = b\nto = c:2000\ntype = seqpacket\nsize = 64KiB\n"
		 "period = 100us\ndeadline = 1ms\npriority = 2\n"
		 "[flow bulk]\nfrom = b\nto = c:3000\ntype = stream\nsize = 1MiB\n"
		 "class = best-effort\n",
		 policy, extra);
}

static void connect_to_c(struct tenv *e, int from, uint32_t cid, uint32_t port, uint16_t type)
{
	struct vsock_hdr h = t_hdr(cid, 5000, C, port, type, VSOCK_OP_REQUEST, 0), r;
	uint8_t buf[16];

	t_send(&e->cell[from], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[2], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	h = t_hdr(C, port, cid, 5000, type, VSOCK_OP_RESPONSE, 0);
	t_send(&e->cell[2], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[from], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RESPONSE);
}

static void setup(struct tenv *e, const char *policy, const char *extra)
{
	static char ini[2048];

	sched_ini(ini, sizeof(ini), policy, extra);
	t_env_init(e, ini, 4096);
	/* c gets exactly the buffers the three REQUESTs take. */
	for (int i = 0; i < 3; i++)
		t_post_rx(&e->cell[i], i == 2 ? 3 : 4, false);
	connect_to_c(e, 0, A, 1000, VSOCK_TYPE_SEQPACKET);
	connect_to_c(e, 1, B, 2000, VSOCK_TYPE_SEQPACKET);
	connect_to_c(e, 1, B, 3000, VSOCK_TYPE_STREAM);
}

static void send_msg(struct tenv *e, int from, uint32_t cid, uint32_t port, uint32_t len)
{
	static uint8_t payload[65536];
	struct vsock_hdr h = t_hdr(cid, 5000, C, port,
				   port == 3000 ? VSOCK_TYPE_STREAM : VSOCK_TYPE_SEQPACKET,
				   VSOCK_OP_RW, len);

	memset(payload, (int)port, len);
	if (port != 3000)
		h.flags = VSOCK_SEQ_EOM;
	t_send(&e->cell[from], &h, payload);
}

/* The destination ports of the pieces c received, in ring order. */
static unsigned int received_ports(struct tenv *e, uint32_t *ports, unsigned int max)
{
	static uint8_t piece[4096];
	struct vsock_hdr r;
	unsigned int n = 0;

	while (n < max && t_recv(&e->cell[2], &r, piece, sizeof(piece)))
		ports[n++] = r.dst_port;
	return n;
}

/* ---- order of two ready flows ------------------------------------------------ */

/* x and y become ready in the same pass (a is ingested before b). */
static uint32_t first_of_simultaneous(const char *policy)
{
	static struct tenv e;
	uint32_t ports[16];
	unsigned int n;

	setup(&e, policy, "");
	t_post_rx(&e.cell[2], 8, false);
	send_msg(&e, 0, A, 1000, 3000);
	send_msg(&e, 1, B, 2000, 3000);
	t_run(&e);
	n = received_ports(&e, ports, 16);
	assert_int_equal(n, 2);
	t_env_fini(&e);
	return ports[0];
}

/* One of x and y arrives 10 us before the other; c has no RX buffers until both
 * are queued. */
static uint32_t first_of_staggered(const char *policy, bool y_first)
{
	static struct tenv e;
	uint32_t ports[16];
	unsigned int n;

	setup(&e, policy, "");
	if (y_first)
		send_msg(&e, 1, B, 2000, 3000);
	else
		send_msg(&e, 0, A, 1000, 3000);
	assert_int_equal(t_run(&e), 0);
	e.now += 10000;
	if (y_first)
		send_msg(&e, 0, A, 1000, 3000);
	else
		send_msg(&e, 1, B, 2000, 3000);
	assert_int_equal(t_run(&e), 0);
	t_post_rx(&e.cell[2], 8, false);
	t_run(&e);
	n = received_ports(&e, ports, 16);
	assert_int_equal(n, 2);
	t_env_fini(&e);
	return ports[0];
}

static void test_order_fp(void **state)
{
	(void)state;
	/* Priority wins, whatever the deadlines and arrival order. */
	assert_int_equal(first_of_simultaneous("fp"), 1000);
	assert_int_equal(first_of_staggered("fp", true), 1000);
	assert_int_equal(first_of_staggered("fp", false), 1000);
}

static void test_order_edf(void **state)
{
	(void)state;
	/* y's absolute deadline (arrival + 1 ms) is earlier than x's (+ 5 ms). */
	assert_int_equal(first_of_simultaneous("edf"), 2000);
	assert_int_equal(first_of_staggered("edf", true), 2000);
	/* x 10 us earlier still has the later absolute deadline. */
	assert_int_equal(first_of_staggered("edf", false), 2000);
}

static void test_order_fifo(void **state)
{
	(void)state;
	/* Arrival order only (within one ingest pass the order is the pass's). */
	assert_int_equal(first_of_staggered("fifo", true), 2000);
	assert_int_equal(first_of_staggered("fifo", false), 1000);
}

/* Equal priorities are served in arrival order under fp. */
static void test_fp_ties_fifo(void **state)
{
	static struct tenv e;
	static char ini[2048];
	uint32_t ports[16];

	(void)state;
	sched_ini(ini, sizeof(ini), "fp", "");
	*strstr(ini, "priority = 2") = '\0';
	strcat(ini, "priority = 1\n[flow bulk]\nfrom = b\nto = c:3000\ntype = stream\n"
		    "size = 1MiB\nclass = best-effort\n");
	t_env_init(&e, ini, 4096);
	for (int i = 0; i < 3; i++)
		t_post_rx(&e.cell[i], 4, false);
	connect_to_c(&e, 0, A, 1000, VSOCK_TYPE_SEQPACKET);
	connect_to_c(&e, 1, B, 2000, VSOCK_TYPE_SEQPACKET);
	send_msg(&e, 1, B, 2000, 100);
	assert_int_equal(t_run(&e), 0);
	e.now += 1000;
	send_msg(&e, 0, A, 1000, 100);
	assert_int_equal(t_run(&e), 0);
	t_post_rx(&e.cell[2], 8, false);
	t_run(&e);
	assert_int_equal(received_ports(&e, ports, 16), 2);
	assert_int_equal(ports[0], 2000);
	t_env_fini(&e);
}

/* ---- preemption between chunks ---------------------------------------------- */

static struct {
	unsigned int inject_at;    /* clock read at which x's message is posted */
	bool injected;
	uint64_t bulk_chunks_at_arrival;
	uint64_t bulk_packets_at_arrival;
	uint64_t x_chunks_at_arrival;
	uint64_t bulk_chunks_at_done;
	uint64_t bulk_packets_at_done;
	bool done;
} pre;

static void preempt_clock(struct tenv *e)
{
	struct dp_flow_stats fx, fb;

	dp_stats_flow(e->dp, FX, &fx);
	dp_stats_flow(e->dp, FBULK, &fb);
	if (!pre.injected && e->clock_reads == pre.inject_at) {
		send_msg(e, 0, A, 1000, 64);
		pre.injected = true;
		pre.bulk_chunks_at_arrival = fb.chunks;
		pre.bulk_packets_at_arrival = fb.packets;
		pre.x_chunks_at_arrival = fx.chunks;
	}
	/* x's 64 bytes are one step, delivered when it ends; the clock read after it
	 * sees its chunk (the packet itself is counted complete just after the read). */
	if (pre.injected && !pre.done && fx.chunks == pre.x_chunks_at_arrival + 1) {
		pre.done = true;
		pre.bulk_chunks_at_done = fb.chunks;
		pre.bulk_packets_at_done = fb.packets;
	}
}

/* A 60000-byte best-effort packet is being copied in 1 KiB chunks when x's 64-byte
 * message arrives (after the bulk's 5th chunk). */
static void run_preempt(const char *policy)
{
	static struct tenv e;
	uint32_t ports[64];
	unsigned int n;
	struct dp_flow_stats fb;

	setup(&e, policy, "");
	t_post_rx(&e.cell[2], 32, false);
	memset(&pre, 0, sizeof(pre));
	send_msg(&e, 1, B, 3000, 60000);
	e.on_clock = preempt_clock;
	pre.inject_at = e.clock_reads + 5;
	e.tick = 1000; /* 1 us per chunk */
	t_run(&e);
	e.on_clock = NULL;
	assert_true(pre.injected);
	assert_true(pre.done);
	n = received_ports(&e, ports, 64);
	assert_int_equal(n, 16); /* 60000 B in 4052 B pieces, and x's message */
	dp_stats_flow(e.dp, FBULK, &fb);
	assert_int_equal(fb.packets, 2 + 1);    /* REQUEST, RESPONSE, the data */
	assert_int_equal(fb.chunks, 2 + 60);    /* 15 pieces of 4 chunks */
	t_env_fini(&e);
}

static void test_preempt_fp(void **state)
{
	(void)state;
	run_preempt("fp");
	/* At most one bulk chunk between x's arrival and its delivery. */
	assert_true(pre.bulk_chunks_at_done - pre.bulk_chunks_at_arrival <= 1);
	assert_int_equal(pre.bulk_packets_at_done, pre.bulk_packets_at_arrival);
}

static void test_preempt_edf(void **state)
{
	(void)state;
	run_preempt("edf");
	assert_true(pre.bulk_chunks_at_done - pre.bulk_chunks_at_arrival <= 1);
	assert_int_equal(pre.bulk_packets_at_done, pre.bulk_packets_at_arrival);
}

static void test_preempt_fifo(void **state)
{
	(void)state;
	run_preempt("fifo");
	/* fifo: x waits for the whole bulk packet (what plain vsock back ends do). */
	assert_int_equal(pre.bulk_packets_at_done, pre.bulk_packets_at_arrival + 1);
	assert_int_equal(pre.bulk_chunks_at_done, 2 + 60);
}

/* ---- policing --------------------------------------------------------------- */

static void test_police_seqpacket(void **state)
{
	static struct tenv e;
	uint32_t ports[16];
	uint64_t t0, next;
	struct dp_flow_stats fs;

	(void)state;
	setup(&e, "fp", "");
	t_post_rx(&e.cell[2], 8, false);
	t0 = e.now;
	/* Three messages at once on a flow declared one per 100 us. */
	for (int i = 0; i < 3; i++)
		send_msg(&e, 0, A, 1000, 100);
	next = t_run(&e);
	assert_int_equal(received_ports(&e, ports, 16), 1);
	assert_int_equal(next, t0 + 100000);
	e.now = next - 1;
	assert_int_equal(t_run(&e), next);
	assert_int_equal(received_ports(&e, ports, 16), 0);
	e.now = next;
	next = t_run(&e);
	assert_int_equal(received_ports(&e, ports, 16), 1);
	assert_int_equal(next, t0 + 200000);
	e.now = next;
	assert_int_equal(t_run(&e), 0);
	assert_int_equal(received_ports(&e, ports, 16), 1);
	dp_stats_flow(e.dp, FX, &fs);
	assert_int_equal(fs.policed, 2);
	assert_int_equal(fs.packets, 3 + 2); /* + REQUEST, RESPONSE */
	/* Nothing was dropped: all TX chains came back. */
	assert_int_equal(t_tx_done(&e.cell[0]), 1 + 3);
	t_env_fini(&e);
}

/* Stream: 1000 bytes per 1 ms. Packets of 1000, 1000, 500, 500 at t0: the first goes
 * at once, the second at +1 ms, the halves at +1.5 and +2 ms. */
static void test_police_stream(void **state)
{
	static struct tenv e;
	static char ini[1024];
	uint64_t t0, next;
	uint8_t payload[1000] = { 0 };
	struct vsock_hdr h, r;
	struct dp_flow_stats fs;
	static const uint32_t lens[] = { 1000, 1000, 500, 500 };
	static const uint64_t at[] = { 0, 1000000, 1500000, 2000000 };

	(void)state;
	snprintf(ini, sizeof(ini),
		 "[broker]\nchunk = 1KiB\n[cell a]\ncid = 3\n[cell c]\ncid = 5\n"
		 "[flow s]\nfrom = a\nto = c:1000\ntype = stream\nsize = 1000\nperiod = 1ms\n");
	t_env_init(&e, ini, 4096);
	t_post_rx(&e.cell[0], 4, false);
	t_post_rx(&e.cell[1], 16, false);
	h = t_hdr(A, 5000, C, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[0], &h, NULL);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[1], &r, payload, sizeof(payload)), 1);
	h = t_hdr(C, 1000, A, 5000, VSOCK_TYPE_STREAM, VSOCK_OP_RESPONSE, 0);
	t_send(&e.cell[1], &h, NULL);
	t_run(&e);
	t0 = e.now;
	for (int i = 0; i < 4; i++) {
		h = t_hdr(A, 5000, C, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, lens[i]);
		t_send(&e.cell[0], &h, payload);
	}
	next = t_run(&e);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(e.now, t0 + at[i]);
		assert_int_equal(t_recv(&e.cell[1], &r, payload, sizeof(payload)), 1);
		assert_int_equal(r.len, lens[i]);
		assert_int_equal(t_recv(&e.cell[1], &r, payload, sizeof(payload)), 0);
		if (i < 3) {
			assert_int_equal(next, t0 + at[i + 1]);
			e.now = next;
			next = t_run(&e);
		}
	}
	assert_int_equal(next, 0);
	dp_stats_flow(e.dp, 0, &fs);
	assert_int_equal(fs.policed, 3);
	t_env_fini(&e);
}

/* Whole messages (EOM) c received since the last call. */
static unsigned int received_msgs(struct tenv *e, unsigned int cell)
{
	static uint8_t piece[4096];
	struct vsock_hdr r;
	unsigned int n = 0;

	while (t_recv(&e->cell[cell], &r, piece, sizeof(piece)))
		n += !!(r.flags & VSOCK_SEQ_EOM);
	return n;
}

static void send_seq(struct tenv *e, uint32_t len, bool eom)
{
	static uint8_t payload[32768];
	struct vsock_hdr h = t_hdr(A, 5000, C, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, len);

	h.flags = eom ? VSOCK_SEQ_EOM : 0;
	t_send(&e->cell[0], &h, payload);
}

/* Seqpacket: at most `size` bytes per period as well as one message. A flow of 64 B
 * per 100 us that keeps to it (whole or split messages) is never held; 32 KiB
 * messages are, each until its 32768/64 periods of refill are paid (less the one
 * period of tolerance a full bucket gives), and the next (however small) waits
 * for the bucket after them. Nothing goes on credit. */
static void test_police_seqpacket_size(void **state)
{
	static struct tenv e;
	static char ini[1024];
	struct dp_flow_stats fs;
	struct vsock_hdr h, r;
	uint8_t buf[16];
	uint64_t t1, next;
	const uint64_t debt = 32768ull * 100000 / 64; /* 51.2 ms */

	(void)state;
	snprintf(ini, sizeof(ini),
		 "[broker]\nchunk = 4KiB\n[cell a]\ncid = 3\n[cell c]\ncid = 5\n"
		 "[flow s]\nfrom = a\nto = c:1000\ntype = seqpacket\nsize = 64\n"
		 "period = 100us\n");
	t_env_init(&e, ini, 4096);
	t_post_rx(&e.cell[0], 4, false);
	t_post_rx(&e.cell[1], 48, false);
	h = t_hdr(A, 5000, C, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[0], &h, NULL);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 1);
	h = t_hdr(C, 1000, A, 5000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RESPONSE, 0);
	t_send(&e.cell[1], &h, NULL);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[0], &r, buf, sizeof(buf)), 1);

	/* Conforming: 64 B each period, then 32 + 32 B (one message) each period. */
	for (int i = 0; i < 6; i++) {
		if (i < 3) {
			send_seq(&e, 64, true);
		} else {
			send_seq(&e, 32, false);
			send_seq(&e, 32, true);
		}
		assert_int_equal(t_run(&e), 0);
		assert_int_equal(received_msgs(&e, 1), 1);
		e.now += 100000;
	}
	dp_stats_flow(e.dp, 0, &fs);
	assert_int_equal(fs.policed, 0);
	assert_int_equal(fs.oversize, 0);

	/* Over-size: two 32 KiB messages at one instant, after a quiet millisecond. */
	e.now += 1000000;
	t_run(&e);
	t1 = e.now;
	send_seq(&e, 32768, true);
	send_seq(&e, 32768, true);
	/* Neither goes on credit: the first waits until its bytes are refilled, less
	 * the tolerance of one period a conforming message gets (the bucket was full). */
	next = t_run(&e);
	assert_int_equal(received_msgs(&e, 1), 0);
	assert_int_equal(next, t1 + debt - 100000);
	/* One period later the message rule alone would let it go: the bytes do not. */
	e.now = t1 + 100000;
	assert_int_equal(t_run(&e), t1 + debt - 100000);
	assert_int_equal(received_msgs(&e, 1), 0);
	e.now = t1 + debt - 100001;
	assert_int_equal(t_run(&e), t1 + debt - 100000);
	assert_int_equal(received_msgs(&e, 1), 0);
	e.now = t1 + debt - 100000;
	assert_int_equal(t_run(&e), t1 + 2 * debt - 100000);
	assert_int_equal(received_msgs(&e, 1), 1);
	/* The second's bytes are paid one debt later. */
	e.now = t1 + 2 * debt - 100001;
	assert_int_equal(t_run(&e), t1 + 2 * debt - 100000);
	assert_int_equal(received_msgs(&e, 1), 0);
	e.now = t1 + 2 * debt - 100000;
	assert_int_equal(t_run(&e), 0);
	assert_int_equal(received_msgs(&e, 1), 1);
	/* A conforming-size message right after waits until the bucket has its 64 B
	 * again: the second left it empty. */
	send_seq(&e, 64, true);
	assert_int_equal(t_run(&e), t1 + 2 * debt);
	assert_int_equal(received_msgs(&e, 1), 0);
	e.now = t1 + 2 * debt;
	assert_int_equal(t_run(&e), 0);
	assert_int_equal(received_msgs(&e, 1), 1);
	dp_stats_flow(e.dp, 0, &fs);
	assert_int_equal(fs.policed, 3);
	assert_int_equal(fs.oversize, 2); /* the two 32 KiB messages, each once */
	/* Delayed, never dropped: every TX chain came back. */
	assert_int_equal(t_tx_done(&e.cell[0]), 1 + 3 + 6 + 2 + 1);
	t_env_fini(&e);
}

/* The broker's own absence does not make a sender look bursty: messages posted one
 * period apart while the broker did not run all go at once; the same five posted at
 * one instant are spaced out. */
static void test_police_broker_stall(void **state)
{
	static struct tenv e;
	uint32_t ports[16];
	struct dp_flow_stats fs;
	uint64_t t0, next;

	(void)state;
	setup(&e, "fp", "");
	t_post_rx(&e.cell[2], 16, false);
	t0 = e.now;
	for (int i = 0; i < 5; i++) {
		send_msg(&e, 0, A, 1000, 100);
		e.now += 100000;
	}
	assert_int_equal(t_run(&e), 0);
	assert_int_equal(received_ports(&e, ports, 16), 5);
	dp_stats_flow(e.dp, FX, &fs);
	assert_int_equal(fs.policed, 0);
	/* Five at one instant, right after a pass: one goes, four wait 100 us each. */
	e.now += 1000000;
	t_run(&e);
	t0 = e.now;
	for (int i = 0; i < 5; i++)
		send_msg(&e, 0, A, 1000, 100);
	next = t_run(&e);
	assert_int_equal(received_ports(&e, ports, 16), 1);
	assert_int_equal(next, t0 + 100000);
	dp_stats_flow(e.dp, FX, &fs);
	assert_int_equal(fs.policed, 4);
	t_env_fini(&e);
}

/* A declared release jitter is tolerated, and no more. */
static void test_police_jitter(void **state)
{
	static struct tenv e;
	static char ini[2048];
	uint32_t ports[16];
	struct dp_flow_stats fs;
	uint64_t t0;

	(void)state;
	sched_ini(ini, sizeof(ini), "fp", "");
	{
		char *p = strstr(ini, "deadline = 5ms\n");

		memmove(p + 14, p, strlen(p) + 1);
		memcpy(p, "jitter = 50us\n", 14);
	}
	t_env_init(&e, ini, 4096);
	for (int i = 0; i < 3; i++)
		t_post_rx(&e.cell[i], i == 2 ? 3 : 4, false);
	connect_to_c(&e, 0, A, 1000, VSOCK_TYPE_SEQPACKET);
	t_post_rx(&e.cell[2], 8, false);
	t0 = e.now;
	send_msg(&e, 0, A, 1000, 100);
	assert_int_equal(t_run(&e), 0);
	/* 40 us early: within the jitter. */
	e.now = t0 + 60000;
	send_msg(&e, 0, A, 1000, 100);
	assert_int_equal(t_run(&e), 0);
	assert_int_equal(received_ports(&e, ports, 16), 2);
	/* The next is due at t0 + 200 us; 50 us early is the most allowed. */
	e.now = t0 + 120000;
	send_msg(&e, 0, A, 1000, 100);
	assert_int_equal(t_run(&e), t0 + 150000);
	assert_int_equal(received_ports(&e, ports, 16), 0);
	e.now = t0 + 150000;
	assert_int_equal(t_run(&e), 0);
	assert_int_equal(received_ports(&e, ports, 16), 1);
	dp_stats_flow(e.dp, FX, &fs);
	assert_int_equal(fs.policed, 1);
	t_env_fini(&e);
}

/* A message the policer held is ordered from its release, not from its ingest.
 * y sends two messages at t0 on a flow declared one per 100 us: the second is held
 * until t0 + 100 us. c has no RX buffers until then, and x's message waits there
 * too. Returns the destination ports of the three pieces in delivery order. */
static void held_order(const char *policy, int64_t x_from_t0, uint32_t *ports)
{
	static struct tenv e;
	struct dp_flow_stats fs;
	uint64_t t0, x_at;

	setup(&e, policy, "");
	e.now += 10000000;
	t0 = e.now;
	x_at = t0 + (uint64_t)x_from_t0;
	if (x_at < t0) {
		e.now = x_at;
		send_msg(&e, 0, A, 1000, 3000);
		assert_int_equal(t_run(&e), 0);
		e.now = t0;
	}
	/* A pass at t0 first: the policer then knows b's ring was empty at t0. */
	assert_int_equal(t_run(&e), 0);
	send_msg(&e, 1, B, 2000, 3000);
	send_msg(&e, 1, B, 2000, 3000);
	/* Both queue behind c's missing buffers; the second is held all the same. */
	assert_int_equal(t_run(&e), 0);
	dp_stats_flow(e.dp, FY, &fs);
	assert_int_equal(fs.policed, 1);
	if (x_at >= t0) {
		e.now = x_at;
		send_msg(&e, 0, A, 1000, 3000);
		assert_int_equal(t_run(&e), 0);
	}
	e.now = t0 + 100000;
	assert_int_equal(t_run(&e), 0);
	t_post_rx(&e.cell[2], 3, false);
	assert_int_equal(t_run(&e), 0);
	assert_int_equal(received_ports(&e, ports, 3), 3);
	t_env_fini(&e);
}

/* edf: x (deadline 5 ms) arrives 3.95 ms before t0, so it is due at t0 + 1.05 ms.
 * y's first message is due at t0 + 1 ms; the held one at t0 + 100 us + 1 ms, after
 * x. (Keyed by its ingest it would be due at t0 + 1 ms and go before x.) */
static void test_held_edf_deadline(void **state)
{
	uint32_t ports[3];

	(void)state;
	held_order("edf", -3950000, ports);
	assert_int_equal(ports[0], 2000);
	assert_int_equal(ports[1], 1000);
	assert_int_equal(ports[2], 2000);
}

/* fifo: x arrives at t0 + 50 us, before the held message's release at t0 + 100 us,
 * and goes before it. (By ingest order the held message would go first.) */
static void test_held_fifo_order(void **state)
{
	uint32_t ports[3];

	(void)state;
	held_order("fifo", 50000, ports);
	assert_int_equal(ports[0], 2000);
	assert_int_equal(ports[1], 1000);
	assert_int_equal(ports[2], 2000);
}

/* ---- regulation ------------------------------------------------------------- */

static void test_regulation(void **state)
{
	static struct tenv e;
	uint32_t ports[64];
	unsigned int pieces = 0, periods = 0;
	uint64_t period_start, next, last_bytes = 0, share;
	struct dp_reg_stats rs;
	struct dp_flow_stats fb;

	(void)state;
	setup(&e, "fp", "regulation_budget = 3000\nregulation_period = 1ms\n");
	t_post_rx(&e.cell[2], 32, false);
	dp_stats_reg(e.dp, &rs);
	assert_int_equal(rs.budget, 3000);
	assert_int_equal(rs.period_ns, 1000000);
	/* x and y may take 64 KiB every 100 us: more than the budget, so the reserve
	 * is capped and bulk keeps an eighth of it. */
	assert_int_equal(rs.reserve, 3000 - 3000 / 8);
	assert_int_equal(rs.reserve, model_rt_reserve(&e.cfg));
	share = rs.budget - rs.reserve;
	/* Start at a period boundary of the regulator's grid. */
	next = t_run(&e);
	assert_int_equal(next, 0);
	send_msg(&e, 1, B, 3000, 60000);
	period_start = e.now;
	next = t_run(&e);
	dp_stats_reg(e.dp, &rs);
	last_bytes = rs.bytes;
	assert_true(rs.bytes <= share);
	while (next) {
		/* Waiting: the broker asks to be woken at the next replenishment. */
		assert_true(next > e.now);
		assert_true(next <= period_start + 1000000 || next == e.now);
		periods++;
		e.now = next;
		period_start = next;
		next = t_run(&e);
		dp_stats_reg(e.dp, &rs);
		/* Never more than bulk's share in one period, and never a period wasted
		 * while work waits. */
		assert_true(rs.bytes - last_bytes <= share);
		assert_true(rs.bytes - last_bytes > 0);
		last_bytes = rs.bytes;
		assert_true(periods < 400);
	}
	pieces = received_ports(&e, ports, 64);
	assert_int_equal(pieces, 15);
	dp_stats_flow(e.dp, FBULK, &fb);
	assert_int_equal(fb.packets, 2 + 1);
	/* 60000 B + 15 headers at under 375 B per period: at least 160 periods, each
	 * ended by a refusal for the reserve (which forfeits nothing: no throttle). */
	assert_true(periods >= 160);
	dp_stats_reg(e.dp, &rs);
	assert_true(rs.be_waits >= 160);
	assert_int_equal(rs.throttled_periods, 0);
	assert_int_equal(rs.bytes, last_bytes);
	t_env_fini(&e);
}

/* Regulation serves real-time flows first: bulk has spent its share of the period,
 * and a real-time message still goes in the same period, whole; real-time steps
 * are throttled only once the whole budget is spent, and then the period's rest is
 * forfeited as before. */
static void test_regulation_rt_first(void **state)
{
	static struct tenv e;
	uint32_t ports[64];
	uint64_t next, t0, before;
	struct dp_reg_stats rs;
	struct dp_flow_stats fy, fx;
	unsigned int n, got_y = 0, got_x = 0;

	(void)state;
	setup(&e, "fp", "regulation_budget = 3000\nregulation_period = 1ms\n");
	t_post_rx(&e.cell[2], 32, false);
	assert_int_equal(t_run(&e), 0);
	send_msg(&e, 1, B, 3000, 60000);
	next = t_run(&e);
	t0 = e.now;
	assert_true(next > e.now);
	dp_stats_reg(e.dp, &rs);
	before = rs.bytes;
	assert_true(before <= rs.budget - rs.reserve);
	assert_true(rs.be_waits >= 1);
	/* Same period: y's 2000 B (one piece) go at once, out of the reserve. */
	send_msg(&e, 1, B, 2000, 2000);
	dp_run(e.dp, e.now);
	assert_int_equal(e.now, t0);
	dp_stats_flow(e.dp, FY, &fy);
	assert_int_equal(fy.packets, 2 + 1); /* REQUEST, RESPONSE and this message */
	assert_int_equal(fy.max_residence_ns, 0);
	dp_stats_reg(e.dp, &rs);
	assert_int_equal(rs.bytes - before, 2000 + 44);
	assert_int_equal(rs.throttled_periods, 0);
	/* Still the same period: x's 4000 B find less than that left of the whole
	 * budget; x gets what is left, then is throttled to the next period. */
	send_msg(&e, 0, A, 1000, 4000);
	next = dp_run(e.dp, e.now);
	assert_int_equal(next, t0 - (t0 - 1000000000ull) % 1000000 + 1000000);
	dp_stats_reg(e.dp, &rs);
	/* The clock has not moved since the connections were set up: all of it, their
	 * headers included, in one period, which got the whole budget and no more. */
	assert_int_equal(rs.bytes, 3000);
	assert_int_equal(rs.throttled_periods, 1);
	/* x (priority 1) goes before the bulk rest in the periods that follow. */
	for (unsigned int k = 0; next && k < 400; k++) {
		e.now = next;
		next = t_run(&e);
		dp_stats_flow(e.dp, FX, &fx);
		if (k == 1)
			assert_int_equal(fx.packets, 2 + 1);
	}
	assert_int_equal(next, 0);
	dp_stats_flow(e.dp, FX, &fx);
	assert_int_equal(fx.packets, 2 + 1);
	n = received_ports(&e, ports, 64);
	for (unsigned int i = 0; i < n; i++) {
		got_y += ports[i] == 2000;
		got_x += ports[i] == 1000;
	}
	assert_int_equal(got_y, 1);
	assert_true(got_x >= 1);
	t_env_fini(&e);
}

/* Residence times: histogram, maximum and deadline misses. */
static void test_residence_stats(void **state)
{
	static struct tenv e;
	uint32_t ports[16];
	struct dp_flow_stats fy;
	uint64_t sum = 0;

	(void)state;
	setup(&e, "fp", "");
	/* y's message waits 2 ms for an RX buffer: past its 1 ms deadline. */
	send_msg(&e, 1, B, 2000, 100);
	t_run(&e);
	e.now += 2000000;
	t_post_rx(&e.cell[2], 4, false);
	t_run(&e);
	assert_int_equal(received_ports(&e, ports, 16), 1);
	dp_stats_flow(e.dp, FY, &fy);
	assert_int_equal(fy.deadline_misses, 1);
	assert_int_equal(fy.max_residence_ns, 2000000);
	/* and when it came: before the 2 ms wait */
	assert_int_equal(fy.max_residence_at, e.now - 2000000);
	for (unsigned int b = 0; b < DP_HIST_BUCKETS; b++)
		sum += fy.hist[b];
	assert_int_equal(sum, fy.packets);
	/* 2 ms lies in [2^20, 2^21) ns. */
	assert_true(fy.hist[20] >= 1);
	t_env_fini(&e);
}

/* Residence ends after the step that delivers a packet's last piece: a one-chunk
 * message whose copy step takes 1.5 ms of (fake) time resides 1.5 ms, past y's
 * 1 ms deadline; a two-chunk one resides two steps. */
static void test_residence_includes_last_step(void **state)
{
	static struct tenv e;
	uint32_t ports[16];
	struct dp_flow_stats fy, fx;
	const uint64_t step = 1500000;

	(void)state;
	setup(&e, "fp", "");
	t_post_rx(&e.cell[2], 8, false);
	dp_stats_flow(e.dp, FY, &fy);
	assert_int_equal(fy.max_residence_ns, 0);
	assert_int_equal(fy.deadline_misses, 0);
	e.tick = step; /* every clock read, i.e. every copy step, takes 1.5 ms */
	send_msg(&e, 1, B, 2000, 100);
	t_run(&e);
	assert_int_equal(received_ports(&e, ports, 16), 1);
	dp_stats_flow(e.dp, FY, &fy);
	assert_int_equal(fy.packets, 2 + 1);
	assert_int_equal(fy.max_residence_ns, step);
	assert_int_equal(fy.deadline_misses, 1);
	/* 1.5 ms lies in [2^20, 2^21) ns; REQUEST and RESPONSE took no step time. */
	assert_int_equal(fy.hist[20], 1);
	assert_int_equal(fy.hist[0], 2);
	/* x (chunk 1 KiB): 1500 bytes are two steps; its 5 ms deadline holds. */
	send_msg(&e, 0, A, 1000, 1500);
	t_run(&e);
	assert_int_equal(received_ports(&e, ports, 16), 1);
	dp_stats_flow(e.dp, FX, &fx);
	assert_int_equal(fx.chunks, 2 + 2);
	assert_int_equal(fx.max_residence_ns, 2 * step);
	assert_int_equal(fx.deadline_misses, 0);
	assert_int_equal(fx.hist[21], 1);
	t_env_fini(&e);
}

/* dp_run stops after DP_RUN_STEPS chunks and says so (a time not after now). */
static void test_run_budget(void **state)
{
	static struct tenv e;
	uint32_t ports[64];
	uint64_t next, t0;
	struct dp_flow_stats fb;

	(void)state;
	setup(&e, "fp", "");
	t_post_rx(&e.cell[2], 40, false);
	send_msg(&e, 1, B, 3000, 60000);
	send_msg(&e, 1, B, 3000, 60000);
	/* The clock moves during the steps: "at once" is still a time not after the
	 * call's start, not the time the run ended (which reads as a wait). */
	t0 = e.now;
	e.tick = 1000;
	next = dp_run(e.dp, t0);
	assert_true(next != 0 && next <= t0);
	e.tick = 0;
	dp_stats_flow(e.dp, FBULK, &fb);
	assert_int_equal(fb.chunks, 2 + DP_RUN_STEPS);
	assert_int_equal(t_run(&e), 0);
	dp_stats_flow(e.dp, FBULK, &fb);
	assert_int_equal(fb.chunks, 2 + 120);
	assert_int_equal(received_ports(&e, ports, 64), 30);
	t_env_fini(&e);
}

/* A cell that reposts a chain the broker drops (an RST for no connection) as soon as
 * the broker hands the last one back, as a hostile cell on another core can: one
 * ingest pass takes at most the cell's TX slot budget of them and dp_run says there
 * is more; within one budget period the broker takes at most the cell's period
 * budget, then waits for the next period (counted once in budget_waits), and so on
 * period by period until the cell stops. */
static unsigned int reposts;

static void repost_rst(struct tenv *e, unsigned int cell, unsigned int queue)
{
	struct tcell *c = &e->cell[cell];
	struct vsock_hdr h = t_hdr(A, 7000, C, 7001, VSOCK_TYPE_STREAM, VSOCK_OP_RST, 0);

	if (cell != 0 || queue != DP_QUEUE_TX || reposts == 1000)
		return;
	t_tx_done(c);
	vq_driver_enable_cb(&c->drv[1]);
	reposts++;
	t_send(c, &h, NULL);
}

static void t_notify_repost(void *ctx, unsigned int cell, unsigned int queue)
{
	t_notify(ctx, cell, queue);
	repost_rst(ctx, cell, queue);
}

static void test_ingest_pass_bounded(void **state)
{
	static struct tenv e;
	static const struct dp_hooks hooks = { .notify = t_notify_repost, .broken = t_broken,
					       .now = t_now };
	struct vsock_hdr h = t_hdr(A, 7000, C, 7001, VSOCK_TYPE_STREAM, VSOCK_OP_RST, 0);
	struct dp_cell_stats cs;
	unsigned int calls = 0, periods = 1;
	uint32_t in;
	uint64_t next;

	(void)state;
	setup(&e, "fp", "");
	/* The same environment, with a data plane whose TX completions repost. */
	for (int i = 0; i < e.cfg.ncells; i++)
		dp_detach(e.dp, (unsigned int)i);
	dp_destroy(e.dp);
	assert_int_equal(dp_create(&e.cfg, &hooks, &e, &e.dp), 0);
	for (int i = 0; i < e.cfg.ncells; i++)
		assert_int_equal(dp_attach(e.dp, (unsigned int)i, &e.cell[i].dev[0],
					   &e.cell[i].dev[1]), 0);
	reposts = 0;
	t_tx_done(&e.cell[0]); /* its REQUEST's completion: then each push notifies */
	vq_driver_enable_cb(&e.cell[0].drv[1]);
	t_send(&e.cell[0], &h, NULL);
	next = dp_run(e.dp, e.now);
	/* One pass took the cell's ingest budget of chains and stopped; more are
	 * waiting. */
	assert_true(e.dp->cells[0].tx_budget < DP_TX_SLOTS);
	assert_int_equal(reposts, e.dp->cells[0].tx_budget);
	assert_true(next != 0 && next <= e.now);
	in = e.dp->cells[0].in_budget;
	assert_true(in > e.dp->cells[0].tx_budget && in < 1001);
	do {
		next = dp_run(e.dp, e.now);
		calls++;
	} while (next && next <= e.now && calls < 1000);
	/* The period's budget is spent: the broker sleeps until the next period. */
	assert_true(next > e.now);
	assert_int_equal(next - e.dp->budget_t0, MODEL_BUDGET_PERIOD_NS);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.pkts_in, in);
	assert_int_equal(cs.budget_waits, 1);
	/* Each later period takes at most the budget again. */
	while (next) {
		if (next > e.now) {
			e.now = next;
			periods++;
		}
		next = dp_run(e.dp, e.now);
		dp_stats_cell(e.dp, 0, &cs);
		assert_true(cs.pkts_in <= (uint64_t)in * periods);
	}
	assert_int_equal(reposts, 1000);
	assert_int_equal(cs.pkts_in, 1001);
	assert_int_equal(periods, (1001 + in - 1) / in);
	assert_int_equal(cs.budget_waits, periods - 1);
	t_env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_fp),
		cmocka_unit_test(test_ingest_pass_bounded),
		cmocka_unit_test(test_order_edf),
		cmocka_unit_test(test_order_fifo),
		cmocka_unit_test(test_fp_ties_fifo),
		cmocka_unit_test(test_preempt_fp),
		cmocka_unit_test(test_preempt_edf),
		cmocka_unit_test(test_preempt_fifo),
		cmocka_unit_test(test_police_seqpacket),
		cmocka_unit_test(test_police_seqpacket_size),
		cmocka_unit_test(test_police_stream),
		cmocka_unit_test(test_police_broker_stall),
		cmocka_unit_test(test_police_jitter),
		cmocka_unit_test(test_held_edf_deadline),
		cmocka_unit_test(test_held_fifo_order),
		cmocka_unit_test(test_regulation),
		cmocka_unit_test(test_regulation_rt_first),
		cmocka_unit_test(test_residence_stats),
		cmocka_unit_test(test_residence_includes_last_step),
		cmocka_unit_test(test_run_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
