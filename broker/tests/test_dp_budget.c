/* Data plane: the per-cell budgets per budget period (broker/dp_budget.c). For each
 * budget, a cell beyond it is held back to its next period and counted, nothing is
 * lost, and a cell within it is served at once. */
#include "test_dp_harness.h"

#define A 3u /* CIDs of cells a, b */
#define B 4u

/* allowance = 2: two control packets and two short RX pieces per period beyond the
 * flows' needs. s is seqpacket, so no credit updates add to b's control budget. */
static const char *const ini =
	"[broker]\npolicy = fp\nchunk = 1KiB\n"
	"[cell a]\ncid = 3\nallowance = 2\n[cell b]\ncid = 4\nallowance = 2\n"
	"[flow s]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 4KiB\nperiod = 1ms\n";

static void fill(uint8_t *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 13 + seed);
}

/* The start of the next budget period after the data plane's clock now. */
static uint64_t next_period(const struct tenv *e)
{
	uint64_t k = (e->now - e->dp->budget_t0) / e->dp->budget_period + 1;

	return e->dp->budget_t0 + k * e->dp->budget_period;
}

/* a:5000 connects to b:1000 (one control packet of each), then a period passes so
 * that each test starts with whole budgets. */
static void connect_ab(struct tenv *e)
{
	struct vsock_hdr h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_REQUEST, 0), r;
	uint8_t buf[16];

	t_send(&e->cell[0], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[1], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	h = t_hdr(B, 1000, A, 5000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RESPONSE, 0);
	t_send(&e->cell[1], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[0], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RESPONSE);
	t_tx_done(&e->cell[0]);
	t_tx_done(&e->cell[1]);
	e->now = next_period(e);
}

static void setup_env_ini(struct tenv *e, const char *text)
{
	t_env_init(e, text, 4096 + VSOCK_HDR_SIZE);
	t_post_rx(&e->cell[0], 16, false);
	t_post_rx(&e->cell[1], 16, false);
	connect_ab(e);
}

static void setup_env(struct tenv *e)
{
	setup_env_ini(e, ini);
}

/* Ingest: a cell posting chains the broker drops at once (RSTs for no connection)
 * gets its ingest budget taken per period; the rest stays on its ring until the
 * next period (budget_waits counts the period once); a cell within its budget is
 * taken whole at once. */
static void test_ingest_budget(void **state)
{
	static struct tenv e;
	struct dp_cell_stats cs;
	uint32_t in, n;
	uint64_t next;

	(void)state;
	setup_env(&e);
	in = e.dp->cells[0].in_budget;
	assert_true(in > 2 && in < 40);
	/* Within the budget: all taken, nothing waits. */
	for (uint32_t i = 0; i < in - 1; i++) {
		struct vsock_hdr h = t_hdr(A, 6000 + i, B, 6000, VSOCK_TYPE_STREAM, VSOCK_OP_RST, 0);

		t_send(&e.cell[0], &h, NULL);
	}
	dp_stats_cell(e.dp, 0, &cs);
	n = (uint32_t)cs.pkts_in;
	assert_int_equal(t_run(&e), 0);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.pkts_in - n, in - 1);
	assert_int_equal(cs.budget_waits, 0);
	assert_int_equal(t_tx_done(&e.cell[0]), in - 1);
	/* Over it, in the next period: in taken, the rest waits for the period after
	 * (the ring holds T_QSIZE chains: post them in two rounds). */
	e.now = next_period(&e);
	n = (uint32_t)cs.pkts_in;
	for (uint32_t i = 0; i < in + 5; i++) {
		struct vsock_hdr h = t_hdr(A, 7000 + i, B, 7000, VSOCK_TYPE_STREAM, VSOCK_OP_RST, 0);

		t_send(&e.cell[0], &h, NULL);
	}
	next = t_run(&e);
	assert_int_equal(next, next_period(&e));
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.pkts_in - n, in);
	assert_int_equal(cs.budget_waits, 1);
	assert_int_equal(t_tx_done(&e.cell[0]), in);
	/* The other cell is served meanwhile: b's control packet goes through. */
	{
		struct vsock_hdr h = t_hdr(B, 1000, A, 5000, VSOCK_TYPE_SEQPACKET,
					   VSOCK_OP_CREDIT_UPDATE, 0), r;
		uint8_t buf[16];

		t_send(&e.cell[1], &h, NULL);
		t_run(&e);
		assert_int_equal(t_recv(&e.cell[0], &r, buf, sizeof(buf)), 1);
		assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	}
	/* Next period: the 5 left. */
	e.now = next;
	assert_int_equal(t_run(&e), 0);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.pkts_in - n, in + 5);
	assert_int_equal(cs.budget_waits, 1);
	assert_int_equal(t_tx_done(&e.cell[0]), 5);
	assert_int_equal(e.cell[0].broken_calls, 0);
	t_env_fini(&e);
}

/* Control packets: beyond a cell's control budget they are held, in order, for its
 * next period with budget left, and whatever follows them on the connection waits
 * behind them; nothing is dropped. A cell within its budget is not held. */
static void test_ctrl_budget(void **state)
{
	static struct tenv e;
	static uint8_t msg[1000], got[4096];
	struct dp_cell_stats cs;
	struct vsock_hdr h, r;
	uint64_t next;

	(void)state;
	setup_env(&e);
	assert_int_equal(e.dp->cells[0].ctrl_budget, 2);
	/* Five credit updates from a (fwd_cnt 1..5), then a message. */
	for (uint32_t i = 1; i <= 5; i++) {
		h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_CREDIT_UPDATE, 0);
		h.fwd_cnt = i;
		t_send(&e.cell[0], &h, NULL);
	}
	fill(msg, sizeof(msg), 3);
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, sizeof(msg));
	h.flags = VSOCK_SEQ_EOM;
	t_send(&e.cell[0], &h, msg);
	/* This period: the first two; the other three are held, one period each
	 * two. */
	next = t_run(&e);
	assert_int_equal(next, next_period(&e));
	for (uint32_t i = 1; i <= 2; i++) {
		assert_int_equal(t_recv(&e.cell[1], &r, got, sizeof(got)), 1);
		assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
		assert_int_equal(r.fwd_cnt, i);
	}
	assert_int_equal(t_recv(&e.cell[1], &r, got, sizeof(got)), 0);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.ctrl_over_budget, 3);
	/* b is within its budget: its control packet goes at once. */
	h = t_hdr(B, 1000, A, 5000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_CREDIT_UPDATE, 0);
	t_send(&e.cell[1], &h, NULL);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[0], &r, got, sizeof(got)), 1);
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	dp_stats_cell(e.dp, 1, &cs);
	assert_int_equal(cs.ctrl_over_budget, 0);
	/* Next period: two more. */
	e.now = next;
	next = t_run(&e);
	assert_int_equal(next, next_period(&e));
	for (uint32_t i = 3; i <= 4; i++) {
		assert_int_equal(t_recv(&e.cell[1], &r, got, sizeof(got)), 1);
		assert_int_equal(r.fwd_cnt, i);
	}
	assert_int_equal(t_recv(&e.cell[1], &r, got, sizeof(got)), 0);
	/* The period after: the last one, then the message behind it, intact. */
	e.now = next;
	assert_int_equal(t_run(&e), 0);
	assert_int_equal(t_recv(&e.cell[1], &r, got, sizeof(got)), 1);
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.fwd_cnt, 5);
	assert_int_equal(t_recv(&e.cell[1], &r, got, sizeof(got)), 1);
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_int_equal(r.len, sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	assert_int_equal(t_tx_done(&e.cell[0]), 6);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.ctrl_over_budget, 3);
	t_env_fini(&e);
}

/* Short RX pieces: a receiver posting buffers of 64 payload bytes (its floor is its
 * rx_buf, 4 KiB) turns a message into one piece per 64 bytes; beyond its allowance
 * of such pieces per period the message waits for its next period, and arrives
 * whole. With buffers at its floor, nothing waits. */
static void test_piece_budget(void **state)
{
	static struct tenv e;
	static uint8_t msg[1000], got[4096], whole[1000];
	struct dp_cell_stats cs;
	struct vsock_hdr h, r;
	unsigned int periods = 0, pieces = 0;
	size_t off = 0;
	uint64_t next;

	(void)state;
	setup_env(&e);
	assert_int_equal(e.dp->cells[1].piece_budget, 2);
	assert_int_equal(e.dp->cells[1].rx_floor, 4096);
	/* Within: buffers of the floor, one piece, nothing held. */
	fill(msg, sizeof(msg), 5);
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, sizeof(msg));
	h.flags = VSOCK_SEQ_EOM;
	t_send(&e.cell[0], &h, msg);
	assert_int_equal(t_run(&e), 0);
	assert_int_equal(t_recv(&e.cell[1], &r, got, sizeof(got)), 1);
	assert_int_equal(r.len, sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	dp_stats_cell(e.dp, 1, &cs);
	assert_int_equal(cs.chunks_over_budget, 0);
	/* Beyond: b's 14 buffers left of 16 (the REQUEST and the message took two)
	 * are used up, then it posts 64-byte ones (16 pieces: 15 short, the last
	 * holds the rest). */
	e.now = next_period(&e);
	for (int i = 0; i < 14; i++) {
		struct vsock_hdr x = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, 1);

		x.flags = VSOCK_SEQ_EOM;
		t_send(&e.cell[0], &x, msg);
		t_run(&e);
		assert_int_equal(t_recv(&e.cell[1], &r, got, sizeof(got)), 1);
		t_tx_done(&e.cell[0]);
		e.now = next_period(&e); /* a fresh policer and budget each time */
	}
	e.cell[1].rx_size = 64 + VSOCK_HDR_SIZE;
	t_post_rx(&e.cell[1], 32, false);
	fill(msg, sizeof(msg), 9);
	t_send(&e.cell[0], &h, msg);
	for (next = t_run(&e);; next = t_run(&e)) {
		unsigned int now_pieces = 0;

		while (t_recv(&e.cell[1], &r, got, sizeof(got))) {
			assert_int_equal(r.op, VSOCK_OP_RW);
			memcpy(whole + off, got, r.len);
			off += r.len;
			now_pieces++;
		}
		/* At most the allowance of short pieces per period, plus the last
		 * piece, which ends the packet and is not short. */
		assert_true(now_pieces <= 2 + (off == sizeof(msg)));
		pieces += now_pieces;
		periods++;
		if (!next)
			break;
		assert_int_equal(next, next_period(&e));
		e.now = next;
	}
	assert_int_equal(off, sizeof(msg));
	assert_int_equal(pieces, 16);
	assert_memory_equal(whole, msg, sizeof(msg));
	assert_int_equal(periods, 8);
	assert_true(r.flags & VSOCK_SEQ_EOM);
	dp_stats_cell(e.dp, 1, &cs);
	assert_int_equal(cs.chunks_over_budget, 7);
	assert_int_equal(e.cell[1].broken_calls, 0);
	t_env_fini(&e);
}

/* [broker] budget_period = 5ms: the grid is 5 ms from the data plane's start, the
 * budgets are the model's for that period (s's ceil(5ms / 1ms) = 5 messages a
 * period, not 1), and a cell over its budget waits for the next 5 ms period, not
 * for the next millisecond. */
static void test_budget_period(void **state)
{
	static char text[512];
	static struct tenv e;
	struct model_cell_budget mb;
	struct dp_cell_stats cs;
	uint64_t next, n;
	uint32_t in;

	(void)state;
	snprintf(text, sizeof(text), "[broker]\nbudget_period = 5ms\n%s",
		 ini + strlen("[broker]\n"));
	setup_env_ini(&e, text);
	assert_int_equal(e.dp->budget_period, 5000000);
	assert_int_equal((e.now - e.dp->budget_t0) % 5000000, 0);
	model_cell_budgets(&e.cfg, 0, &mb);
	in = e.dp->cells[0].in_budget;
	assert_int_equal(in, mb.ingest);
	/* The default 1 ms period's budget, for comparison: 4 of s's messages less. */
	e.cfg.broker.budget_period_ns = 1000000;
	model_cell_budgets(&e.cfg, 0, &mb);
	e.cfg.broker.budget_period_ns = 5000000;
	assert_int_equal(in - mb.ingest, 4);
	dp_stats_cell(e.dp, 0, &cs);
	n = cs.pkts_in;
	for (uint32_t i = 0; i < in + 5; i++) {
		struct vsock_hdr h = t_hdr(A, 7000 + i, B, 7000, VSOCK_TYPE_STREAM, VSOCK_OP_RST, 0);

		t_send(&e.cell[0], &h, NULL);
	}
	next = t_run(&e);
	assert_int_equal(next, e.now + 5000000);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.pkts_in - n, in);
	assert_int_equal(t_tx_done(&e.cell[0]), in);
	/* 1 ms on, still the same period: nothing more is taken. */
	e.now += 1000000;
	assert_int_equal(t_run(&e), next);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.pkts_in - n, in);
	/* The next period takes the 5 left. */
	e.now = next;
	assert_int_equal(t_run(&e), 0);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.pkts_in - n, in + 5);
	assert_int_equal(cs.budget_waits, 1);
	assert_int_equal(t_tx_done(&e.cell[0]), 5);
	assert_int_equal(e.cell[0].broken_calls, 0);
	t_env_fini(&e);
}

/* a:port -> b:1000 on s, one connection per period so that no budget waits. */
static void connect_more(struct tenv *e, uint32_t port)
{
	struct vsock_hdr h = t_hdr(A, port, B, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_REQUEST, 0), r;
	uint8_t buf[16];

	t_send(&e->cell[0], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[1], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	assert_int_equal(r.src_port, port);
	h = t_hdr(B, 1000, A, port, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RESPONSE, 0);
	t_send(&e->cell[1], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[0], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RESPONSE);
	t_tx_done(&e->cell[0]);
	t_tx_done(&e->cell[1]);
	e->now = next_period(e);
}

/* b's next piece is the RST of a's connection from `port`, exactly. */
static void expect_rst(struct tenv *e, uint32_t port)
{
	struct vsock_hdr r;
	uint8_t buf[16];

	assert_int_equal(t_recv(&e->cell[1], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(r.type, VSOCK_TYPE_SEQPACKET);
	assert_int_equal(r.src_cid, A);
	assert_int_equal(r.src_port, port);
	assert_int_equal(r.dst_cid, B);
	assert_int_equal(r.dst_port, 1000);
	assert_int_equal(r.len, 0);
}

/* Detach: the RSTs a cell's detach sends its peers are its control packets. With
 * five connections open and a control budget of two, b hears of two at once, two
 * in the next period and the last in the one after, in the order the connections
 * were opened; the three later ones count in a's ctrl_over_budget. The budget
 * survives the detach: a re-attached at once gets no fresh one, its REQUEST waits
 * behind its own RSTs, and RSTs still held when it detaches again are not lost. */
static void test_detach_rst_budget(void **state)
{
	static struct tenv e;
	struct dp_cell_stats cs;
	struct vsock_hdr h, r;
	uint8_t buf[16];
	uint64_t next;

	(void)state;
	setup_env(&e);
	for (uint32_t port = 5001; port <= 5004; port++)
		connect_more(&e, port);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.ctrl_over_budget, 0);
	assert_int_equal(e.dp->flows[0].connections, 5);
	e.now += 1000; /* inside the period */
	dp_detach(e.dp, 0);
	assert_int_equal(e.dp->flows[0].connections, 0);
	next = t_run(&e);
	assert_int_equal(next, next_period(&e));
	expect_rst(&e, 5000);
	expect_rst(&e, 5001);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.ctrl_over_budget, 3);
	/* Re-attached in the same period, a opens a connection again. */
	assert_int_equal(dp_attach(e.dp, 0, &e.cell[0].dev[0], &e.cell[0].dev[1]), 0);
	h = t_hdr(A, 6000, B, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[0], &h, NULL);
	assert_int_equal(t_run(&e), next);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	/* The next period: two more RSTs, still no REQUEST. */
	e.now = next;
	next = t_run(&e);
	assert_int_equal(next, next_period(&e));
	expect_rst(&e, 5002);
	expect_rst(&e, 5003);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	/* The one after: the last RST, then the REQUEST behind it. */
	e.now = next;
	assert_int_equal(t_run(&e), 0);
	expect_rst(&e, 5004);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	assert_int_equal(r.src_port, 6000);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.ctrl_over_budget, 4);
	/* Still in that period (its budget spent), a opens 6001 too (held for the
	 * next period), then detaches and re-attaches twice: the REQUEST is dropped,
	 * the RSTs of 6000 and 6001 follow it, one period each, and survive the second
	 * detach (they are a's, but toward b, which is still there). Their entries
	 * live on, a's, until b has them. */
	h = t_hdr(A, 6001, B, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[0], &h, NULL);
	next = t_run(&e);
	assert_int_equal(next, next_period(&e));
	dp_detach(e.dp, 0);
	assert_int_equal(dp_attach(e.dp, 0, &e.cell[0].dev[0], &e.cell[0].dev[1]), 0);
	dp_detach(e.dp, 0);
	assert_int_equal(t_run(&e), next);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	assert_int_equal(t_conns_used(e.dp), 2);
	assert_int_equal(e.dp->cells[0].nconn, 2);
	e.now = next;
	next = t_run(&e);
	assert_int_equal(next, next_period(&e));
	/* The connection table's order: 6000 took the entry of 5001, freed when its
	 * RST was delivered, 6001 the one of 5004. */
	expect_rst(&e, 6000);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	assert_int_equal(t_conns_used(e.dp), 1);
	e.now = next;
	assert_int_equal(t_run(&e), 0);
	expect_rst(&e, 6001);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	dp_stats_cell(e.dp, 0, &cs);
	assert_int_equal(cs.ctrl_over_budget, 7);
	dp_stats_cell(e.dp, 1, &cs);
	assert_int_equal(cs.resets, 7);
	assert_int_equal(t_conns_used(e.dp), 0);
	assert_int_equal(e.cell[0].broken_calls + e.cell[1].broken_calls, 0);
	t_env_fini(&e);
}

/* The flow of held detach RSTs is removed: they move to the best-effort class, which
 * no control budget holds, and go at once (nothing best-effort toward b waits behind
 * a's budget). */
static void test_detach_rst_flow_removed(void **state)
{
	static struct tenv e;
	struct vsock_hdr r;
	uint8_t buf[16];

	(void)state;
	setup_env(&e);
	for (uint32_t port = 5001; port <= 5004; port++)
		connect_more(&e, port);
	dp_detach(e.dp, 0);
	assert_int_equal(t_run(&e), next_period(&e));
	expect_rst(&e, 5000);
	expect_rst(&e, 5001);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	dp_flow_remove(e.dp, 0);
	e.cfg.flows[0].vacant = true;
	assert_int_equal(t_run(&e), 0);
	expect_rst(&e, 5002);
	expect_rst(&e, 5003);
	expect_rst(&e, 5004);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	assert_int_equal(e.dp->flows[e.dp->nflows].queued, 0);
	t_env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ingest_budget),
		cmocka_unit_test(test_ctrl_budget),
		cmocka_unit_test(test_piece_budget),
		cmocka_unit_test(test_budget_period),
		cmocka_unit_test(test_detach_rst_budget),
		cmocka_unit_test(test_detach_rst_flow_removed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
