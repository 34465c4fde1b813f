/* Data plane: the RSTs of a detach are never lost (broker/dp_switch.c). An ended
 * connection's entry lives until its surviving end has been told, and the RST is made
 * from the entry into the entry's own packet slot, so no cell, however it detaches,
 * re-attaches or fails to read, can use up what another cell's detach needs. Each
 * scenario: a hostile cell first, then a victim pair c -> d whose connector leaves;
 * d must hear of each of its connections exactly once, header by header. */
#include "test_dp_harness.h"

#define A 3u /* CIDs of cells a, b, c, d */
#define B 4u
#define C 5u
#define D 6u
#define CONNS 8u   /* every cell's `connections` */
#define ROUNDS 6u  /* the hostile cell's detach rounds: more RSTs than the table holds */
#define PORTS 64u  /* ports counted from a base */

/* Every cell: a control budget of one packet per period, a share of 8 connections;
 * the table holds 32 entries, which ROUNDS x CONNS RSTs would overrun were they
 * held in a shared pool. */
static const char *const ini =
	"[broker]\npolicy = fp\nchunk = 1KiB\n"
	"[cell a]\ncid = 3\nallowance = 1\nconnections = 8\n"
	"[cell b]\ncid = 4\nallowance = 1\nconnections = 8\n"
	"[cell c]\ncid = 5\nallowance = 1\nconnections = 8\n"
	"[cell d]\ncid = 6\nallowance = 1\nconnections = 8\n"
	"[flow ab]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 4KiB\nperiod = 1ms\n"
	"[flow cd]\nfrom = c\nto = d:2000\ntype = seqpacket\nsize = 4KiB\nperiod = 1ms\n";

/* What one cell received from one peer: per source port (from base), each op. */
struct seen {
	uint32_t peer_cid, peer_base, cid, port;
	unsigned int req[PORTS], resp[PORTS], rst[PORTS];
};

static uint64_t next_period(const struct tenv *e)
{
	uint64_t k = (e->now - e->dp->budget_t0) / e->dp->budget_period + 1;

	return e->dp->budget_t0 + k * e->dp->budget_period;
}

/* Takes every piece cell `cell` received, reposting a buffer for each: each must be
 * a header-only control packet of the peer `s` expects, on a port it counts. */
static void collect(struct tenv *e, unsigned int cell, struct seen *s)
{
	struct vsock_hdr r;
	uint8_t buf[16];

	while (t_recv(&e->cell[cell], &r, buf, sizeof(buf)) == 1) {
		uint32_t i = r.src_port - s->peer_base;

		t_post_rx(&e->cell[cell], 1, false);
		assert_int_equal(r.src_cid, s->peer_cid);
		assert_int_equal(r.dst_cid, s->cid);
		assert_int_equal(r.dst_port, s->port);
		assert_int_equal(r.type, VSOCK_TYPE_SEQPACKET);
		assert_int_equal(r.len, 0);
		assert_true(r.src_port >= s->peer_base && i < PORTS);
		if (r.op == VSOCK_OP_REQUEST)
			s->req[i]++;
		else if (r.op == VSOCK_OP_RST)
			s->rst[i]++;
		else
			fail_msg("op %u from port %u", r.op, r.src_port);
	}
}

/* Runs `n` budget periods, the receivers taking what arrives. */
static void periods(struct tenv *e, unsigned int n, struct seen *at_b, struct seen *at_d)
{
	for (unsigned int i = 0; i < n; i++) {
		t_run(e);
		if (at_b)
			collect(e, 1, at_b);
		collect(e, 3, at_d);
		t_tx_done(&e->cell[2]);
		t_tx_done(&e->cell[3]);
		e->now = next_period(e);
	}
}

/* c opens CONNS connections to d:2000 from ports 7000...; d accepts each. */
static void open_cd(struct tenv *e, struct seen *at_d)
{
	struct vsock_hdr h, r;
	uint8_t buf[16];
	unsigned int got = 0;

	for (uint32_t j = 0; j < CONNS; j++) {
		h = t_hdr(C, 7000 + j, D, 2000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_REQUEST, 0);
		t_send(&e->cell[2], &h, NULL);
	}
	periods(e, CONNS + 1, NULL, at_d);
	for (uint32_t j = 0; j < CONNS; j++) {
		assert_int_equal(at_d->req[j], 1);
		h = t_hdr(D, 2000, C, 7000 + j, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RESPONSE, 0);
		t_send(&e->cell[3], &h, NULL);
	}
	for (unsigned int i = 0; i < CONNS + 1; i++) {
		t_run(e);
		while (t_recv(&e->cell[2], &r, buf, sizeof(buf)) == 1) {
			t_post_rx(&e->cell[2], 1, false);
			assert_int_equal(r.op, VSOCK_OP_RESPONSE);
			assert_int_equal(r.dst_port, 7000 + got);
			got++;
		}
		t_tx_done(&e->cell[3]);
		e->now = next_period(e);
	}
	assert_int_equal(got, CONNS);
	assert_int_equal(e->dp->flows[1].connections, CONNS);
}

static void setup(struct tenv *e, struct seen *at_d)
{
	t_env_init(e, ini, 256);
	t_post_rx(&e->cell[2], 16, false);
	t_post_rx(&e->cell[3], 16, false);
	*at_d = (struct seen){ .peer_cid = C, .peer_base = 7000, .cid = D, .port = 2000 };
	open_cd(e, at_d);
}

/* a sends CONNS REQUESTs to b:1000 from ports base... (held by its control budget
 * beyond the first, but switched: each opens a connection within its share). */
static void requests_ab(struct tenv *e, uint32_t base)
{
	for (uint32_t j = 0; j < CONNS; j++) {
		struct vsock_hdr h = t_hdr(A, base + j, B, 1000, VSOCK_TYPE_SEQPACKET,
					   VSOCK_OP_REQUEST, 0);

		t_send(&e->cell[0], &h, NULL);
	}
	t_run(e);
}

/* a leaves and comes back with fresh rings, in the same instant. */
static void reattach_a(struct tenv *e)
{
	uint32_t rx_size = e->cell[0].rx_size;

	dp_detach(e->dp, 0);
	free(e->cell[0].region);
	t_cell_init(&e->cell[0], rx_size);
	assert_int_equal(dp_attach(e->dp, 0, &e->cell[0].dev[0], &e->cell[0].dev[1]), 0);
}

/* c leaves; then d hears of each of its CONNS connections exactly once. */
static void victims_told(struct tenv *e, struct seen *at_b, struct seen *at_d)
{
	struct dp_cell_stats cs;

	dp_detach(e->dp, 2);
	periods(e, 4 * CONNS, at_b, at_d);
	for (uint32_t j = 0; j < CONNS; j++)
		assert_int_equal(at_d->rst[j], 1);
	for (uint32_t j = CONNS; j < PORTS; j++)
		assert_int_equal(at_d->rst[j], 0);
	assert_int_equal(dp_stats_cell(e->dp, 3, &cs), 0);
	assert_int_equal(cs.resets, CONNS);
}

/* A cell detaches and re-attaches in a loop with CONNS connections open and a control
 * budget of one packet per period, so that its RSTs pile up behind its budget
 * (seven more per round were it to open new connections each round). Its pending
 * entries count toward its own `connections`: after the first round its new
 * REQUESTs are refused, not the table drained; b hears of each connection that
 * existed exactly once, and c's detach still tells d of all of its. */
static void test_reattach_loop_loses_none(void **state)
{
	static struct tenv e;
	struct seen at_b = { .peer_cid = A, .peer_base = 5000, .cid = B, .port = 1000 };
	struct seen at_d;
	struct dp_cell_stats cs;

	(void)state;
	setup(&e, &at_d);
	t_post_rx(&e.cell[1], 32, false);
	for (uint32_t r = 0; r < ROUNDS; r++) {
		requests_ab(&e, 5000 + r * CONNS);
		reattach_a(&e);
		/* One round per period: its budget lets one RST out meanwhile (its
		 * ingest budget takes a round's REQUESTs in one period). */
		e.now = next_period(&e);
	}
	assert_int_equal(e.dp->flows[0].connections, 0);
	victims_told(&e, &at_b, &at_d);
	/* Its first round's entries stayed a's until b had their RSTs: the later
	 * rounds' REQUESTs were refused. */
	assert_int_equal(dp_stats_cell(e.dp, 0, &cs), 0);
	assert_int_equal(cs.conn_limit_refusals, (ROUNDS - 1) * CONNS);
	/* b: one RST for each connection of the first round, each REQUEST it saw
	 * among them, nothing of the refused rounds. */
	for (uint32_t j = 0; j < PORTS; j++) {
		assert_int_equal(at_b.rst[j], j < CONNS ? 1 : 0);
		assert_true(at_b.req[j] <= at_b.rst[j]);
	}
	assert_int_equal(dp_stats_cell(e.dp, 1, &cs), 0);
	assert_int_equal(cs.resets, CONNS);
	/* Every entry freed once its RST was delivered: a may open its share again. */
	assert_int_equal(t_conns_used(e.dp), 0);
	assert_int_equal(e.dp->cells[0].nconn, 0);
	requests_ab(&e, 6000);
	assert_int_equal(e.dp->cells[0].nconn, CONNS);
	assert_int_equal(e.cell[1].broken_calls + e.cell[3].broken_calls, 0);
	t_env_fini(&e);
}

/* b posts no RX buffer while a, connected to it, leaves and comes back round after
 * round: the RSTs toward b wait for b's buffers. They are b's to read, their entries
 * a's to carry (a's later REQUESTs are refused), and nothing of it reaches c and d:
 * c's detach tells d of each connection. When b leaves too, the entries are freed. */
static void test_nonreader_loses_none(void **state)
{
	static struct tenv e;
	struct seen at_d;
	struct dp_cell_stats cs;

	(void)state;
	setup(&e, &at_d);
	for (uint32_t r = 0; r < ROUNDS; r++) {
		requests_ab(&e, 5000 + r * CONNS);
		/* a's budget releases everything it holds: what remains waits for b. */
		periods(&e, 2 * CONNS, NULL, &at_d);
		reattach_a(&e);
	}
	victims_told(&e, NULL, &at_d);
	/* What remains: a's first round, its RSTs queued toward b. */
	assert_int_equal(dp_stats_cell(e.dp, 1, &cs), 0);
	assert_int_equal(cs.resets, CONNS);
	assert_int_equal(dp_stats_cell(e.dp, 0, &cs), 0);
	assert_int_equal(cs.conn_limit_refusals, (ROUNDS - 1) * CONNS);
	assert_int_equal(t_conns_used(e.dp), CONNS);
	assert_int_equal(e.dp->cells[0].nconn, CONNS);
	/* b leaves: the RSTs toward it are dropped, their entries freed. */
	dp_detach(e.dp, 1);
	assert_int_equal(t_conns_used(e.dp), 0);
	assert_int_equal(e.dp->cells[0].nconn, 0);
	assert_int_equal(e.cell[3].broken_calls, 0);
	t_env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reattach_loop_loses_none),
		cmocka_unit_test(test_nonreader_loses_none),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
