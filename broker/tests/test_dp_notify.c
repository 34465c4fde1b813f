/* Notifications and used-ring publication one per batch (dp_notify.c): bulk pieces
 * and their TX completions are published and told once per dp_run, a real-time
 * packet's at its delivery, and a destination out of RX buffers hears of those it has
 * before dp_run goes on. The data always arrives whole and in order. */
#include "test_dp_harness.h"

#define A 3u
#define B 4u
#define PIECE (4096u - VSOCK_HDR_SIZE)

static const char *const ini =
	"[broker]\npolicy = fp\nchunk = 4096\n"
	"[cell a]\ncid = 3\n[cell b]\ncid = 4\n"
	"[flow rt]\nfrom = a\nto = b:1000\ntype = stream\nsize = 64KiB\nperiod = 1ms\n"
	"[flow bulk]\nfrom = a\nto = b:2000\ntype = stream\nsize = 64KiB\n"
	"class = best-effort\n";

static uint8_t msg[65536], got[2][65536];
static size_t got_len[2];
static unsigned int rx_seen_at_read[64];

static void connect_ab(struct tenv *e, uint32_t port)
{
	struct vsock_hdr h = t_hdr(A, 5000 + port, B, port, VSOCK_TYPE_STREAM,
				   VSOCK_OP_REQUEST, 0), r;
	uint8_t buf[16];

	t_send(&e->cell[0], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[1], &r, buf, sizeof(buf)), 1);
	h = t_hdr(B, port, A, 5000 + port, VSOCK_TYPE_STREAM, VSOCK_OP_RESPONSE, 0);
	t_send(&e->cell[1], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[0], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RESPONSE);
	t_tx_done(&e->cell[0]);
	t_tx_done(&e->cell[1]);
}

/* The receiver takes every piece it has; its driver asks for a notification at the
 * next one (EVENT_IDX, notifications on). */
static void drain_b(struct tenv *e)
{
	struct vsock_hdr r;
	uint8_t piece[4096];

	while (t_recv(&e->cell[1], &r, piece, sizeof(piece))) {
		unsigned int k = r.dst_port == 1000 ? 0 : 1;

		assert_int_equal(r.op, VSOCK_OP_RW);
		assert_true(got_len[k] + r.len <= sizeof(got[k]));
		memcpy(got[k] + got_len[k], piece, r.len);
		got_len[k] += r.len;
	}
}

/* Between steps (at each clock read): a receiver that keeps up, as a cell on
 * another cpu does. */
static void on_clock_drain(struct tenv *e)
{
	drain_b(e);
	if (e->clock_reads < 64)
		rx_seen_at_read[e->clock_reads] = e->cell[1].notified[DP_QUEUE_RX];
}

/* Between steps: only records what the receiver was told so far. */
static void on_clock_watch(struct tenv *e)
{
	if (e->clock_reads < 64)
		rx_seen_at_read[e->clock_reads] = e->cell[1].notified[DP_QUEUE_RX];
}

/* Between steps: the used index of b's RX ring and of a's TX ring, as the cells see
 * them. */
static uint16_t rx_used_at_read[64], tx_used_at_read[64];

static uint16_t used_idx(const struct vq_ring *r)
{
	return le16_load(&r->used->idx);
}

static void on_clock_used(struct tenv *e)
{
	if (e->clock_reads < 64) {
		rx_used_at_read[e->clock_reads] = used_idx(&e->cell[1].ring[DP_QUEUE_RX]);
		tx_used_at_read[e->clock_reads] = used_idx(&e->cell[0].ring[DP_QUEUE_TX]);
	}
}

static void setup(struct tenv *e)
{
	t_env_init(e, ini, 4096);
	t_post_rx(&e->cell[0], 4, false);
	t_post_rx(&e->cell[1], 2, false);
	connect_ab(e, 1000);
	connect_ab(e, 2000);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 131u + 7u);
	memset(got_len, 0, sizeof(got_len));
	memset(rx_seen_at_read, 0, sizeof(rx_seen_at_read));
	e->now += 10000000;
	e->clock_reads = 0;
	e->cell[0].notified[DP_QUEUE_TX] = e->cell[1].notified[DP_QUEUE_RX] = 0;
}

static void send_msg(struct tenv *e, uint32_t port, uint32_t len)
{
	struct vsock_hdr h = t_hdr(A, 5000 + port, B, port, VSOCK_TYPE_STREAM, VSOCK_OP_RW, len);

	t_send(&e->cell[0], &h, msg);
}

/* A bulk packet of 15 pieces to a receiver that takes each piece as soon as it is
 * there: at most one notification for the batch, not one per piece. */
static void test_bulk_one_per_batch(void **state)
{
	static struct tenv e;
	uint32_t len = 15 * PIECE;

	(void)state;
	setup(&e);
	t_post_rx(&e.cell[1], 15, false);
	drain_b(&e);
	send_msg(&e, 2000, len);
	e.on_clock = on_clock_drain;
	assert_int_equal(dp_run(e.dp, e.now), 0);
	e.on_clock = NULL;
	drain_b(&e);
	assert_int_equal(got_len[1], len);
	assert_memory_equal(got[1], msg, len);
	/* Told per piece, the receiver would have been woken 15 times. Told per
	 * batch, it has taken every piece before the decision, so nothing is due. */
	assert_true(e.cell[1].notified[DP_QUEUE_RX] <= 1);
	assert_int_equal(e.cell[0].notified[DP_QUEUE_TX], 1);
	assert_int_equal(t_tx_done(&e.cell[0]), 1);
	t_env_fini(&e);
}

/* A real-time packet queued before a bulk one: its receiver and sender are told
 * right after its delivery, before the bulk pieces are copied; the bulk pieces are
 * told once, when dp_run returns. */
static void test_rt_told_at_delivery(void **state)
{
	static struct tenv e;
	uint32_t rt_len = 2 * PIECE, bulk_len = 10 * PIECE;
	struct dp_notify_stats ns;

	(void)state;
	setup(&e);
	t_post_rx(&e.cell[1], 14, false);
	drain_b(&e);
	send_msg(&e, 1000, rt_len);
	send_msg(&e, 2000, bulk_len);
	e.on_clock = on_clock_watch;
	assert_int_equal(dp_run(e.dp, e.now), 0);
	e.on_clock = NULL;
	/* Reads 1 and 2 follow the rt pieces (told after read 2, at its delivery);
	 * read 3 follows the first bulk piece. */
	assert_int_equal(rx_seen_at_read[2], 0);
	assert_int_equal(rx_seen_at_read[3], 1);
	assert_int_equal(rx_seen_at_read[12], 1);
	assert_int_equal(e.cell[1].notified[DP_QUEUE_RX], 1); /* the bulk pieces: not asked */
	assert_int_equal(e.cell[0].notified[DP_QUEUE_TX], 1);
	drain_b(&e);
	assert_int_equal(got_len[0], rt_len);
	assert_memory_equal(got[0], msg, rt_len);
	assert_int_equal(got_len[1], bulk_len);
	assert_memory_equal(got[1], msg, bulk_len);
	assert_int_equal(t_tx_done(&e.cell[0]), 2);
	dp_stats_notify(e.dp, &ns);
	assert_true(ns.sent <= ns.checks);
	t_env_fini(&e);
}

/* The used index moves once per batch: a real-time packet's pieces and its TX
 * completion are published at its delivery, before the bulk packet's first piece is
 * copied; the ten bulk pieces stay unpublished until dp_run returns, then appear
 * together, whole and in order. */
static void test_used_published_per_batch(void **state)
{
	static struct tenv e;
	uint32_t rt_len = 2 * PIECE, bulk_len = 10 * PIECE;
	uint16_t rx0, tx0;

	(void)state;
	setup(&e);
	t_post_rx(&e.cell[1], 14, false);
	drain_b(&e);
	rx0 = used_idx(&e.cell[1].ring[DP_QUEUE_RX]);
	tx0 = used_idx(&e.cell[0].ring[DP_QUEUE_TX]);
	send_msg(&e, 1000, rt_len);
	send_msg(&e, 2000, bulk_len);
	e.on_clock = on_clock_used;
	assert_int_equal(dp_run(e.dp, e.now), 0);
	e.on_clock = NULL;
	/* Reads 1 and 2 follow the rt pieces: not yet published (the batch is the
	 * packet), then published with its delivery. */
	assert_int_equal(rx_used_at_read[1], rx0);
	assert_int_equal(rx_used_at_read[2], rx0);
	assert_int_equal(tx_used_at_read[2], tx0);
	for (unsigned int r = 3; r <= 12; r++) {
		assert_int_equal(rx_used_at_read[r], (uint16_t)(rx0 + 2));
		assert_int_equal(tx_used_at_read[r], (uint16_t)(tx0 + 1));
	}
	assert_int_equal(used_idx(&e.cell[1].ring[DP_QUEUE_RX]), (uint16_t)(rx0 + 12));
	assert_int_equal(used_idx(&e.cell[0].ring[DP_QUEUE_TX]), (uint16_t)(tx0 + 2));
	assert_int_equal(vq_device_unpublished(&e.cell[1].dev[DP_QUEUE_RX]), 0);
	assert_int_equal(vq_device_unpublished(&e.cell[0].dev[DP_QUEUE_TX]), 0);
	drain_b(&e);
	assert_int_equal(got_len[0], rt_len);
	assert_memory_equal(got[0], msg, rt_len);
	assert_int_equal(got_len[1], bulk_len);
	assert_memory_equal(got[1], msg, bulk_len);
	assert_int_equal(t_tx_done(&e.cell[0]), 2);
	t_env_fini(&e);
}

/* A destination with fewer RX buffers than the packet has pieces: it is told of the
 * full ones as soon as the copy stops for lack of buffers, and the rest follows
 * once it posts more. */
static void test_blocked_tells_destination(void **state)
{
	static struct tenv e;
	uint32_t len = 6 * PIECE;

	(void)state;
	setup(&e);
	t_post_rx(&e.cell[1], 2, false);
	drain_b(&e);
	send_msg(&e, 2000, len);
	e.on_clock = on_clock_watch;
	assert_int_equal(dp_run(e.dp, e.now), 0);
	/* Two pieces copied (reads 1, 2); the third step blocked and told it. */
	assert_int_equal(rx_seen_at_read[2], 0);
	assert_int_equal(e.cell[1].notified[DP_QUEUE_RX], 1);
	assert_int_equal(e.cell[0].notified[DP_QUEUE_TX], 0); /* not delivered yet */
	drain_b(&e);
	assert_int_equal(got_len[1], 2 * PIECE);
	t_post_rx(&e.cell[1], 8, false);
	t_run(&e);
	e.on_clock = NULL;
	drain_b(&e);
	assert_int_equal(got_len[1], len);
	assert_memory_equal(got[1], msg, len);
	assert_int_equal(e.cell[0].notified[DP_QUEUE_TX], 1);
	assert_int_equal(t_tx_done(&e.cell[0]), 1);
	t_env_fini(&e);
}

/* With a notify_flush hook (the daemon's: one system call per batch), every notify
 * is followed by a flush before dp_run returns, and one flush covers a batch. */
static unsigned int unflushed, flushes, notifies;

static void count_notify(void *ctx, unsigned int cell, unsigned int queue)
{
	t_notify(ctx, cell, queue);
	unflushed++;
	notifies++;
}

static void count_flush(void *ctx)
{
	(void)ctx;
	assert_true(unflushed > 0);
	unflushed = 0;
	flushes++;
}

static void test_flush_hook(void **state)
{
	static struct tenv e;
	static const struct dp_hooks hooks = { .notify = count_notify,
					       .notify_flush = count_flush,
					       .broken = t_broken, .now = t_now };
	uint32_t len = 6 * PIECE;

	(void)state;
	setup(&e);
	/* The same cells on a data plane with the counting hooks. */
	for (int i = 0; i < e.cfg.ncells; i++)
		dp_detach(e.dp, (unsigned int)i);
	dp_destroy(e.dp);
	assert_int_equal(dp_create(&e.cfg, &hooks, &e, &e.dp), 0);
	for (int i = 0; i < e.cfg.ncells; i++)
		assert_int_equal(dp_attach(e.dp, (unsigned int)i, &e.cell[i].dev[0],
					   &e.cell[i].dev[1]), 0);
	unflushed = flushes = notifies = 0;
	t_post_rx(&e.cell[0], 2, false);
	t_post_rx(&e.cell[1], 9, false);
	connect_ab(&e, 1000);
	assert_int_equal(unflushed, 0);
	drain_b(&e);
	e.now += 10000000;
	send_msg(&e, 1000, len);
	notifies = flushes = 0;
	assert_int_equal(dp_run(e.dp, e.now), 0);
	assert_int_equal(unflushed, 0);
	/* The receiver and the sender told at the delivery: two signals, one flush. */
	assert_int_equal(notifies, 2);
	assert_int_equal(flushes, 1);
	drain_b(&e);
	assert_int_equal(got_len[0], len);
	assert_memory_equal(got[0], msg, len);
	t_env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bulk_one_per_batch),
		cmocka_unit_test(test_rt_told_at_delivery),
		cmocka_unit_test(test_used_published_per_batch),
		cmocka_unit_test(test_blocked_tells_destination),
		cmocka_unit_test(test_flush_hook),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
