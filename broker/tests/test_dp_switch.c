/* Data plane: vsock switching between cells, end to end over real rings.
 * Connection set-up and teardown, integrity across pieces, admission (deny, spoofed
 * CID, unknown CID, no connection), splitting into RX buffers (both layouts),
 * a destination without RX buffers, detach, hostile rings. */
#include "test_dp_harness.h"

#define A 3u /* CIDs of cells a, b, c */
#define B 4u
#define C 5u

static const char *const base_ini =
	"[broker]\npolicy = fp\nchunk = 1KiB\n"
	"[cell a]\ncid = 3\n[cell b]\ncid = 4\n[cell c]\ncid = 5\n"
	"[flow s]\nfrom = a\nto = b:1000\ntype = stream\nsize = 64KiB\nperiod = 1ms\npriority = 2\n"
	"[flow q]\nfrom = a\nto = c:2000\ntype = seqpacket\nsize = 64KiB\nperiod = 1ms\npriority = 1\n";

static void fill(uint8_t *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 8));
}

/* a:5000 connects to dst:port and dst accepts; both see the other's packet. */
static void connect_pair(struct tenv *e, int from, uint32_t fcid, int to, uint32_t tcid,
			 uint32_t port, uint16_t type)
{
	struct vsock_hdr h = t_hdr(fcid, 5000, tcid, port, type, VSOCK_OP_REQUEST, 0), r;
	uint8_t buf[16];

	t_send(&e->cell[from], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[to], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	assert_int_equal(r.src_cid, fcid);
	assert_int_equal(r.src_port, 5000);
	assert_int_equal(r.dst_port, port);
	assert_int_equal(r.buf_alloc, 262144); /* credit fields travel end to end */
	h = t_hdr(tcid, port, fcid, 5000, type, VSOCK_OP_RESPONSE, 0);
	t_send(&e->cell[to], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[from], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RESPONSE);
	assert_int_equal(r.src_cid, tcid);
	assert_int_equal(t_tx_done(&e->cell[from]), 1);
	assert_int_equal(t_tx_done(&e->cell[to]), 1);
}

static void expect_rst(struct tcell *c, uint32_t src_cid, uint32_t src_port, uint32_t dst_cid,
		       uint32_t dst_port)
{
	struct vsock_hdr r;
	uint8_t buf[16];

	assert_int_equal(t_recv(c, &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(r.src_cid, src_cid);
	assert_int_equal(r.src_port, src_port);
	assert_int_equal(r.dst_cid, dst_cid);
	assert_int_equal(r.dst_port, dst_port);
	assert_int_equal(r.len, 0);
}

static void test_stream_end_to_end(void **state)
{
	static struct tenv e;
	static uint8_t msg[10000], got[10000], piece[4096];
	struct vsock_hdr h, r;
	size_t off = 0;
	unsigned int pieces = 0;
	struct dp_flow_stats fs;
	struct dp_cell_stats cs;

	(void)state;
	t_env_init(&e, base_ini, 4096);
	t_post_rx(&e.cell[0], 8, false);
	t_post_rx(&e.cell[1], 8, false);
	connect_pair(&e, 0, A, 1, B, 1000, VSOCK_TYPE_STREAM);

	fill(msg, sizeof(msg), 1);
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, sizeof(msg));
	h.fwd_cnt = 77;
	t_send_ex(&e.cell[0], &h, msg, true);
	/* poll = no: the broker asked for a kick once the ring drained. */
	assert_true(e.cell[0].kicked);
	t_run(&e);
	/* 10000 bytes into 4052-byte RX payloads: 3 pieces, each with its own header. */
	while (t_recv(&e.cell[1], &r, piece, sizeof(piece))) {
		assert_int_equal(r.op, VSOCK_OP_RW);
		assert_int_equal(r.src_cid, A);
		assert_int_equal(r.dst_cid, B);
		assert_int_equal(r.src_port, 5000);
		assert_int_equal(r.fwd_cnt, 77);
		assert_true(r.len <= 4096 - VSOCK_HDR_SIZE);
		memcpy(got + off, piece, r.len);
		off += r.len;
		pieces++;
	}
	assert_int_equal(off, sizeof(msg));
	assert_int_equal(pieces, 3);
	assert_memory_equal(got, msg, sizeof(msg));
	assert_int_equal(t_tx_done(&e.cell[0]), 1);

	/* Credit update back, then shutdown and RST close the connection. */
	h = t_hdr(B, 1000, A, 5000, VSOCK_TYPE_STREAM, VSOCK_OP_CREDIT_UPDATE, 0);
	h.fwd_cnt = 10000;
	t_send(&e.cell[1], &h, NULL);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[0], &r, piece, sizeof(piece)), 1);
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.fwd_cnt, 10000);
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
	t_send(&e.cell[0], &h, NULL);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[1], &r, piece, sizeof(piece)), 1);
	assert_int_equal(r.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(r.flags, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
	h = t_hdr(B, 1000, A, 5000, VSOCK_TYPE_STREAM, VSOCK_OP_RST, 0);
	t_send(&e.cell[1], &h, NULL);
	t_run(&e);
	expect_rst(&e.cell[0], B, 1000, A, 5000);
	assert_int_equal(dp_stats_flow(e.dp, 0, &fs), 0);
	assert_int_equal(fs.connections, 0);
	assert_int_equal(fs.packets, 6); /* REQUEST, RESPONSE, RW, CREDIT, SHUTDOWN, RST */
	assert_int_equal(fs.bytes, sizeof(msg));
	assert_int_equal(fs.queued, 0);
	assert_true(fs.chunks >= 10 + 5); /* 10000 B in 1 KiB chunks, plus headers alone */
	assert_int_equal(dp_stats_cell(e.dp, 1, &cs), 0);
	assert_int_equal(cs.bytes_out, sizeof(msg));
	assert_int_equal(cs.pkts_out, 3 + 2); /* 3 pieces, REQUEST, SHUTDOWN */
	assert_int_equal(cs.pkts_in, 3);      /* RESPONSE, CREDIT_UPDATE, RST */
	assert_int_equal(cs.bytes_in, 0);
	/* The connection is gone: data on it is answered with RST. */
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 10);
	t_send(&e.cell[0], &h, msg);
	t_run(&e);
	expect_rst(&e.cell[0], B, 1000, A, 5000);
	assert_int_equal(t_recv(&e.cell[1], &r, piece, sizeof(piece)), 0);
	t_env_fini(&e);
}

/* A cell's TX chains come back in the order the broker finishes them: one toward a
 * destination without RX buffers stays out while seven later ones to another come
 * back. The sender's next packet must not reuse the buffer still out: the payload
 * the broker has yet to copy arrives intact once the destination posts buffers. */
static void test_tx_out_of_order(void **state)
{
	static const char ini[] =
		"[broker]\npolicy = fp\nchunk = 1KiB\n"
		"[cell a]\ncid = 3\n[cell b]\ncid = 4\n[cell c]\ncid = 5\n"
		"[flow s]\nfrom = a\nto = b:1000\ntype = stream\nsize = 64KiB\nperiod = 1ms\npriority = 2\n"
		"[flow t]\nfrom = a\nto = c:2000\ntype = stream\nsize = 64KiB\nperiod = 1ms\npriority = 1\n";
	static struct tenv e;
	static uint8_t msg[3000], other[100], got[4096];
	struct vsock_hdr h, r;

	(void)state;
	t_env_init(&e, ini, 4096);
	t_post_rx(&e.cell[0], 4, false);
	t_post_rx(&e.cell[1], 1, false); /* the REQUEST's only */
	t_post_rx(&e.cell[2], 16, false);
	connect_pair(&e, 0, A, 1, B, 1000, VSOCK_TYPE_STREAM);
	connect_pair(&e, 0, A, 2, C, 2000, VSOCK_TYPE_STREAM);
	fill(msg, sizeof(msg), 1);
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, sizeof(msg));
	t_send(&e.cell[0], &h, msg);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[1], &r, got, sizeof(got)), 0);
	/* Seven to c, then one more with the eighth chain's worth out: seven back. */
	for (unsigned int i = 0; i < 8; i++) {
		fill(other, sizeof(other), 100 + i);
		h = t_hdr(A, 5000, C, 2000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, sizeof(other));
		t_send(&e.cell[0], &h, other);
		t_run(&e);
		assert_int_equal(t_recv(&e.cell[2], &r, got, sizeof(got)), 1);
		assert_int_equal(r.len, sizeof(other));
		assert_memory_equal(got, other, sizeof(other));
		if (i == 6)
			assert_int_equal(t_tx_done(&e.cell[0]), 7);
	}
	assert_true(e.cell[0].tx_busy & 1u << 2); /* a's packet to b: buffer 2, still out */
	t_post_rx(&e.cell[1], 1, false);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[1], &r, got, sizeof(got)), 1);
	assert_int_equal(r.len, sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	assert_int_equal(t_tx_done(&e.cell[0]), 2);
	assert_int_equal(e.cell[0].tx_busy, 0);
	t_env_fini(&e);
}

static void test_deny_rst(void **state)
{
	static struct tenv e;
	struct vsock_hdr h, r;
	uint8_t buf[16];
	struct dp_cell_stats cs;

	(void)state;
	t_env_init(&e, base_ini, 4096);
	t_post_rx(&e.cell[0], 8, false);
	t_post_rx(&e.cell[1], 8, false);
	/* No flow names b:1001, nor b -> a, nor a seqpacket to b:1000. */
	h = t_hdr(A, 5000, B, 1001, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[0], &h, NULL);
	h = t_hdr(B, 6000, A, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[1], &h, NULL);
	h = t_hdr(A, 5001, B, 1000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[0], &h, NULL);
	t_run(&e);
	expect_rst(&e.cell[0], B, 1001, A, 5000);
	expect_rst(&e.cell[0], B, 1000, A, 5001);
	expect_rst(&e.cell[1], A, 1000, B, 6000);
	assert_int_equal(t_recv(&e.cell[0], &r, buf, sizeof(buf)), 0);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	assert_int_equal(t_tx_done(&e.cell[0]), 2);
	assert_int_equal(dp_stats_cell(e.dp, 0, &cs), 0);
	assert_int_equal(cs.resets, 2);
	/* A RESPONSE nobody asked for is refused the same way. */
	h = t_hdr(B, 1000, A, 7000, VSOCK_TYPE_STREAM, VSOCK_OP_RESPONSE, 0);
	t_send(&e.cell[1], &h, NULL);
	/* An RST for nothing is dropped, never answered. */
	h = t_hdr(B, 1000, A, 7001, VSOCK_TYPE_STREAM, VSOCK_OP_RST, 0);
	t_send(&e.cell[1], &h, NULL);
	t_run(&e);
	expect_rst(&e.cell[1], A, 7000, B, 1000);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	assert_int_equal(t_recv(&e.cell[0], &r, buf, sizeof(buf)), 0);
	assert_int_equal(t_tx_done(&e.cell[1]), 3);
	t_env_fini(&e);
}

static void test_default_best_effort(void **state)
{
	static struct tenv e;
	static char ini[2048];
	struct vsock_hdr h, r;
	uint8_t buf[64];
	struct dp_flow_stats fs;

	(void)state;
	snprintf(ini, sizeof(ini), "%s", base_ini);
	/* Same config with default = best-effort. */
	{
		char *p = strstr(ini, "chunk = 1KiB\n");

		memmove(p + 23, p, strlen(p) + 1);
		memcpy(p, "default = best-effort\n\n", 23);
	}
	t_env_init(&e, ini, 4096);
	t_post_rx(&e.cell[0], 8, false);
	t_post_rx(&e.cell[1], 8, false);
	connect_pair(&e, 1, B, 0, A, 1234, VSOCK_TYPE_STREAM);
	h = t_hdr(B, 5000, A, 1234, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 40);
	fill(buf, 40, 9);
	t_send(&e.cell[1], &h, buf);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[0], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.len, 40);
	assert_int_equal(dp_nflows(e.dp), 3);
	assert_string_equal(dp_flow_name(e.dp, 2), "best-effort");
	assert_int_equal(dp_stats_flow(e.dp, 2, &fs), 0);
	assert_int_equal(fs.connections, 1);
	assert_int_equal(fs.packets, 3);
	assert_int_equal(fs.deadline_misses, 0);
	t_env_fini(&e);
}

static void test_spoofed_src_cid(void **state)
{
	static struct tenv e;
	struct vsock_hdr h, r;
	uint8_t buf[16];
	struct dp_cell_stats cs;

	(void)state;
	t_env_init(&e, base_ini, 4096);
	t_post_rx(&e.cell[0], 8, false);
	t_post_rx(&e.cell[1], 8, false);
	t_post_rx(&e.cell[2], 8, false);
	/* c (CID 5) claims to be a, on a flow a may use. */
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[2], &h, NULL);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	assert_int_equal(t_recv(&e.cell[0], &r, buf, sizeof(buf)), 0);
	/* The RST goes to the real sender only. */
	expect_rst(&e.cell[2], B, 1000, C, 5000);
	assert_int_equal(dp_stats_cell(e.dp, 2, &cs), 0);
	assert_int_equal(cs.refused, 1);
	assert_int_equal(t_tx_done(&e.cell[2]), 1);
	/* An established connection cannot be hijacked either. */
	connect_pair(&e, 0, A, 1, B, 1000, VSOCK_TYPE_STREAM);
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 4);
	t_send(&e.cell[2], &h, "evil");
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0);
	assert_int_equal(dp_stats_cell(e.dp, 2, &cs), 0);
	assert_int_equal(cs.refused, 2);
	t_env_fini(&e);
}

static void test_unknown_cid_rst(void **state)
{
	static struct tenv e;
	struct vsock_hdr h;

	(void)state;
	t_env_init(&e, base_ini, 4096);
	t_post_rx(&e.cell[0], 8, false);
	h = t_hdr(A, 5000, 99, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[0], &h, NULL);
	h = t_hdr(A, 5001, 2, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0); /* the host */
	t_send(&e.cell[0], &h, NULL);
	t_run(&e);
	expect_rst(&e.cell[0], 99, 1000, A, 5000);
	expect_rst(&e.cell[0], 2, 1000, A, 5001);
	/* A configured but detached cell is as good as unknown. */
	dp_detach(e.dp, 1);
	h = t_hdr(A, 5002, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[0], &h, NULL);
	t_run(&e);
	expect_rst(&e.cell[0], B, 1000, A, 5002);
	t_env_fini(&e);
}

/* A 10000-byte SEQPACKET message (EOM|EOR) into RX buffers of 2048 bytes with the
 * header in a descriptor of its own: per-piece headers, boundary flags on the last. */
static void test_seqpacket_split(void **state)
{
	static struct tenv e;
	static uint8_t msg[10000], got[10000], piece[4096];
	struct vsock_hdr h, r;
	size_t off = 0;
	unsigned int pieces = 0;

	(void)state;
	t_env_init(&e, base_ini, 2048);
	t_post_rx(&e.cell[0], 8, false);
	t_post_rx(&e.cell[2], 16, true);
	connect_pair(&e, 0, A, 2, C, 2000, VSOCK_TYPE_SEQPACKET);
	fill(msg, sizeof(msg), 3);
	h = t_hdr(A, 5000, C, 2000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, sizeof(msg));
	h.flags = VSOCK_SEQ_EOM | VSOCK_SEQ_EOR;
	t_send(&e.cell[0], &h, msg);
	t_run(&e);
	while (t_recv(&e.cell[2], &r, piece, sizeof(piece))) {
		bool last = off + r.len == sizeof(msg);

		assert_int_equal(r.type, VSOCK_TYPE_SEQPACKET);
		assert_true(r.len > 0 && r.len <= 2048 - VSOCK_HDR_SIZE);
		assert_int_equal(r.flags, last ? (VSOCK_SEQ_EOM | VSOCK_SEQ_EOR) : 0);
		memcpy(got + off, piece, r.len);
		off += r.len;
		pieces++;
	}
	assert_int_equal(off, sizeof(msg));
	assert_int_equal(pieces, (sizeof(msg) + 2003) / 2004);
	assert_memory_equal(got, msg, sizeof(msg));
	/* A message of exactly one buffer keeps its flags; a middle packet (no EOM)
	 * carries none on any piece. */
	h.len = 2004;
	h.flags = VSOCK_SEQ_EOM;
	t_send(&e.cell[0], &h, msg);
	h.flags = 0;
	h.len = 3000;
	t_send(&e.cell[0], &h, msg);
	e.now += 10000000; /* past the policer's period */
	t_run(&e);
	e.now += 10000000;
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[2], &r, piece, sizeof(piece)), 1);
	assert_int_equal(r.len, 2004);
	assert_int_equal(r.flags, VSOCK_SEQ_EOM);
	assert_int_equal(t_recv(&e.cell[2], &r, piece, sizeof(piece)), 1);
	assert_int_equal(r.flags, 0);
	assert_int_equal(t_recv(&e.cell[2], &r, piece, sizeof(piece)), 1);
	assert_int_equal(r.flags, 0);
	assert_int_equal(t_recv(&e.cell[2], &r, piece, sizeof(piece)), 0);
	t_env_fini(&e);
}

/* b posts no RX buffers: a's packets to b wait, a's packets to c go through, and
 * b's packets arrive once it posts buffers. */
static void test_no_rx_buffer_blocks_only_that_flow(void **state)
{
	static struct tenv e;
	static uint8_t msg[3000], piece[4096];
	struct vsock_hdr h, r;
	struct dp_flow_stats fs;

	(void)state;
	t_env_init(&e, base_ini, 4096);
	t_post_rx(&e.cell[0], 8, false);
	t_post_rx(&e.cell[1], 2, false);
	t_post_rx(&e.cell[2], 8, false);
	connect_pair(&e, 0, A, 1, B, 1000, VSOCK_TYPE_STREAM);
	connect_pair(&e, 0, A, 2, C, 2000, VSOCK_TYPE_SEQPACKET);
	/* b has one RX buffer left... and gets two packets. */
	fill(msg, sizeof(msg), 5);
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 3000);
	t_send(&e.cell[0], &h, msg);
	t_send(&e.cell[0], &h, msg);
	h = t_hdr(A, 5000, C, 2000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, 100);
	h.flags = VSOCK_SEQ_EOM;
	t_send(&e.cell[0], &h, msg);
	assert_int_equal(t_run(&e), 0);
	assert_int_equal(t_recv(&e.cell[2], &r, piece, sizeof(piece)), 1);
	assert_int_equal(r.len, 100);
	assert_int_equal(t_recv(&e.cell[1], &r, piece, sizeof(piece)), 1);
	assert_int_equal(t_recv(&e.cell[1], &r, piece, sizeof(piece)), 0);
	assert_int_equal(t_tx_done(&e.cell[0]), 2);
	assert_int_equal(dp_stats_flow(e.dp, 0, &fs), 0);
	assert_int_equal(fs.queued, 1);
	/* b posts a buffer: the waiting packet goes. */
	t_post_rx(&e.cell[1], 1, false);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[1], &r, piece, sizeof(piece)), 1);
	assert_int_equal(r.len, 3000);
	assert_memory_equal(piece, msg, 3000);
	assert_int_equal(t_tx_done(&e.cell[0]), 1);
	t_env_fini(&e);
}

static void test_detach_resets_peers(void **state)
{
	static struct tenv e;
	static uint8_t msg[3000], piece[4096];
	struct vsock_hdr h, r;
	struct dp_flow_stats fs;
	struct dp_cell_stats cs;

	(void)state;
	t_env_init(&e, base_ini, 4096);
	t_post_rx(&e.cell[0], 8, false);
	t_post_rx(&e.cell[1], 2, false);
	t_post_rx(&e.cell[2], 8, false);
	connect_pair(&e, 0, A, 1, B, 1000, VSOCK_TYPE_STREAM);
	connect_pair(&e, 0, A, 2, C, 2000, VSOCK_TYPE_SEQPACKET);
	/* A packet toward b waits for buffers when b goes away: a gets it back. */
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 3000);
	t_send(&e.cell[0], &h, msg);
	t_send(&e.cell[0], &h, msg);
	t_run(&e);
	assert_int_equal(t_tx_done(&e.cell[0]), 1);
	/* b sends something that will never be copied (its memory is going). */
	h = t_hdr(B, 1000, A, 5000, VSOCK_TYPE_STREAM, VSOCK_OP_CREDIT_UPDATE, 0);
	t_send(&e.cell[1], &h, NULL);
	dp_detach(e.dp, 1);
	assert_int_equal(t_tx_done(&e.cell[0]), 1);
	t_run(&e);
	expect_rst(&e.cell[0], B, 1000, A, 5000);
	assert_int_equal(t_recv(&e.cell[0], &r, piece, sizeof(piece)), 0);
	assert_int_equal(dp_stats_flow(e.dp, 0, &fs), 0);
	assert_int_equal(fs.connections, 0);
	assert_int_equal(fs.queued, 0);
	assert_int_equal(dp_stats_cell(e.dp, 1, &cs), 0);
	assert_false(cs.attached);
	/* b's ring was not touched after detach: its TX chain is still in flight. */
	assert_int_equal(t_tx_done(&e.cell[1]), 0);
	/* a's other connection carries on. */
	h = t_hdr(A, 5000, C, 2000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, 10);
	h.flags = VSOCK_SEQ_EOM;
	t_send(&e.cell[0], &h, msg);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[2], &r, piece, sizeof(piece)), 1);
	assert_int_equal(r.len, 10);
	assert_int_equal(t_tx_done(&e.cell[0]), 1);
	/* Attach again (a fresh ring) works and a new connection can be made. */
	free(e.cell[1].region);
	t_cell_init(&e.cell[1], 4096);
	assert_int_equal(dp_attach(e.dp, 1, &e.cell[1].dev[0], &e.cell[1].dev[1]), 0);
	assert_int_equal(dp_attach(e.dp, 1, &e.cell[1].dev[0], &e.cell[1].dev[1]), -EBUSY);
	t_post_rx(&e.cell[1], 8, false);
	connect_pair(&e, 0, A, 1, B, 1000, VSOCK_TYPE_STREAM);
	free(e.cell[1].region);
	e.cell[1].region = NULL;
	dp_detach(e.dp, 1);
	t_run(&e);
	expect_rst(&e.cell[0], B, 1000, A, 5000);
	t_env_fini(&e);
}

/* Hostile TX rings: each breaks only its own cell. */
static void hostile(void (*scribble)(struct tcell *c))
{
	static struct tenv e;
	static uint8_t piece[4096];
	struct vsock_hdr h, r;
	struct dp_cell_stats cs;

	t_env_init(&e, base_ini, 4096);
	t_post_rx(&e.cell[0], 8, false);
	t_post_rx(&e.cell[1], 8, false);
	t_post_rx(&e.cell[2], 8, false);
	connect_pair(&e, 0, A, 1, B, 1000, VSOCK_TYPE_STREAM);
	connect_pair(&e, 0, A, 2, C, 2000, VSOCK_TYPE_SEQPACKET);
	scribble(&e.cell[1]);
	h = t_hdr(A, 5000, C, 2000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, 10);
	h.flags = VSOCK_SEQ_EOM;
	t_send(&e.cell[0], &h, "0123456789");
	t_run(&e);
	assert_int_equal(e.cell[1].broken_calls, 1);
	assert_true(e.cell[1].broken_err < 0);
	assert_int_equal(e.cell[0].broken_calls + e.cell[2].broken_calls, 0);
	assert_int_equal(dp_stats_cell(e.dp, 1, &cs), 0);
	assert_true(cs.broken);
	assert_false(cs.attached);
	/* a's connection to b is reset; a -> c is untouched. */
	expect_rst(&e.cell[0], B, 1000, A, 5000);
	assert_int_equal(t_recv(&e.cell[2], &r, piece, sizeof(piece)), 1);
	assert_memory_equal(piece, "0123456789", 10);
	dp_detach(e.dp, 1); /* what the daemon does next: harmless */
	t_env_fini(&e);
}

static void bad_len(struct tcell *c)
{
	struct vsock_hdr h = t_hdr(B, 1000, A, 5000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 100);
	uint8_t *b = c->region + c->tx_off;
	struct vq_buf out = { .addr = t_gpa(c, b), .len = VSOCK_HDR_SIZE + 50 };

	vsock_hdr_encode(&h, b);
	assert_int_equal(vq_driver_add(&c->drv[1], &out, 1, NULL, 0, b), 0);
	vq_driver_publish(&c->drv[1]);
}

static void bad_op(struct tcell *c)
{
	struct vsock_hdr h = t_hdr(B, 1000, A, 5000, VSOCK_TYPE_STREAM, 42, 0);

	t_send(c, &h, NULL);
}

static void bad_type(struct tcell *c)
{
	struct vsock_hdr h = t_hdr(B, 1000, A, 5000, 9, VSOCK_OP_RW, 0);

	t_send(c, &h, NULL);
}

static void short_chain(struct tcell *c)
{
	uint8_t *b = c->region + c->tx_off;
	struct vq_buf out = { .addr = t_gpa(c, b), .len = 20 };

	assert_int_equal(vq_driver_add(&c->drv[1], &out, 1, NULL, 0, b), 0);
	vq_driver_publish(&c->drv[1]);
}

static void wild_addr(struct tcell *c)
{
	uint8_t *b = c->region + c->tx_off;
	struct vq_buf out = { .addr = 0x1000, .len = 64 };

	assert_int_equal(vq_driver_add(&c->drv[1], &out, 1, NULL, 0, b), 0);
	vq_driver_publish(&c->drv[1]);
}

/* The buffer of a chain already made available is written again before the broker
 * used the chain (as by a driver reusing it too early): the header the broker reads
 * no longer matches the chain's length. */
static void rewritten(struct tcell *c)
{
	struct vsock_hdr h = t_hdr(B, 1000, A, 5000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 0);
	uint8_t *b = c->region + c->tx_off + (size_t)t_tx_slot(c) * T_TXBUF;

	t_send(c, &h, NULL);
	h.len = 1285;
	vsock_hdr_encode(&h, b);
}

static void garbage_avail(struct tcell *c)
{
	/* The avail index jumps far ahead of anything posted. */
	shm_store_release(&c->ring[1].avail->idx, 5000);
}

static void test_hostile_len(void **s) { (void)s; hostile(bad_len); }
static void test_hostile_op(void **s) { (void)s; hostile(bad_op); }
static void test_hostile_type(void **s) { (void)s; hostile(bad_type); }
static void test_hostile_short(void **s) { (void)s; hostile(short_chain); }
static void test_hostile_addr(void **s) { (void)s; hostile(wild_addr); }
static void test_hostile_avail(void **s) { (void)s; hostile(garbage_avail); }
static void test_hostile_rewritten(void **s) { (void)s; hostile(rewritten); }

/* An RX ring offering a buffer too small for a header breaks the destination only. */
static void test_hostile_rx(void **state)
{
	static struct tenv e;
	struct vsock_hdr h, r;
	uint8_t buf[16];
	struct vq_buf in;

	(void)state;
	t_env_init(&e, base_ini, 4096);
	t_post_rx(&e.cell[0], 8, false);
	in = (struct vq_buf){ .addr = t_gpa(&e.cell[1], e.cell[1].region + e.cell[1].rx_off),
			      .len = 16 };
	assert_int_equal(vq_driver_add(&e.cell[1].drv[0], NULL, 0, &in, 1, (void *)1), 0);
	vq_driver_publish(&e.cell[1].drv[0]);
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[0], &h, NULL);
	t_run(&e);
	assert_int_equal(e.cell[1].broken_calls, 1);
	assert_int_equal(e.cell[0].broken_calls, 0);
	expect_rst(&e.cell[0], B, 1000, A, 5000);
	assert_int_equal(t_recv(&e.cell[0], &r, buf, sizeof(buf)), 0);
	assert_int_equal(t_tx_done(&e.cell[0]), 1);
	t_env_fini(&e);
}

#define LIMIT_A 5u

/* One cell cannot take every connection: past its `connections` limit (5 here) its
 * REQUESTs get RST and are counted, and another cell still connects. */
static void test_connection_share(void **state)
{
	static struct tenv e;
	static char ini[2048];
	struct vsock_hdr h, r;
	uint8_t buf[16];
	unsigned int accepted = 0, reset = 0;

	(void)state;
	struct dp_cell_stats st;
	const char *cell_a = strstr(base_ini, "[cell b]");

	snprintf(ini, sizeof(ini), "%.*sconnections = %u\n%s[flow s2]\nfrom = c\nto = b:1000\n"
		 "type = stream\nsize = 1KiB\nperiod = 1ms\n", (int)(cell_a - base_ini), base_ini,
		 LIMIT_A, cell_a);
	t_env_init(&e, ini, 4096);
	for (uint32_t port = 0; port < LIMIT_A + 2; port++) {
		if (port == 0)
			t_post_rx(&e.cell[0], 8, false);
		if (port % 32 == 0)
			t_post_rx(&e.cell[1], 32, false);
		h = t_hdr(A, 10000 + port, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
		t_send(&e.cell[0], &h, NULL);
		t_run(&e);
		while (t_recv(&e.cell[1], &r, buf, sizeof(buf)))
			accepted++;
		while (t_recv(&e.cell[0], &r, buf, sizeof(buf))) {
			assert_int_equal(r.op, VSOCK_OP_RST);
			reset++;
		}
		t_tx_done(&e.cell[0]);
	}
	assert_int_equal(accepted, LIMIT_A);
	assert_int_equal(reset, 2);
	assert_int_equal(dp_stats_cell(e.dp, 0, &st), 0);
	assert_int_equal(st.conn_limit_refusals, 2);
	assert_int_equal(e.cell[0].conn_limit_calls, 2);
	t_post_rx(&e.cell[2], 4, false);
	h = t_hdr(C, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[2], &h, NULL);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.src_cid, C);
	/* Closing one of a's connections gives it room again. */
	h = t_hdr(A, 10000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_RST, 0);
	t_send(&e.cell[0], &h, NULL);
	h = t_hdr(A, 20000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	t_send(&e.cell[0], &h, NULL);
	t_run(&e);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	assert_int_equal(r.src_port, 20000);
	t_env_fini(&e);
}

/* Random garbage in b's TX descriptors, avail ring and packet headers, many times
 * over: whatever b does, the broker stays sound (the sanitizers watch), b alone is
 * cut off or served, and a's flow to c is delivered intact every time. */
static void test_hostile_random(void **state)
{
	static struct tenv e;
	static uint8_t piece[4096];
	struct vsock_hdr h, r;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned int broken = 0;

	(void)state;
	for (int iter = 0; iter < 150; iter++) {
		struct tcell *b;

		t_env_init(&e, base_ini, 4096);
		b = &e.cell[1];
		t_post_rx(&e.cell[0], 8, false);
		t_post_rx(&e.cell[1], 8, false);
		t_post_rx(&e.cell[2], 8, false);
		connect_pair(&e, 0, A, 2, C, 2000, VSOCK_TYPE_SEQPACKET);
		/* A few plausible packets first, so that garbage lands on live state. */
		for (int k = 0; k < 3; k++) {
			h = t_hdr(B, 7000 + k, A, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
			t_send(b, &h, NULL);
		}
		for (int k = 0; k < 40; k++) {
			size_t off;
			uint8_t *base;
			size_t span;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			switch (x % 3) {
			case 0: /* descriptor table */
				base = (uint8_t *)b->ring[1].desc;
				span = T_QSIZE * 16;
				break;
			case 1: /* avail ring, index included */
				base = (uint8_t *)b->ring[1].avail;
				span = 4 + 2 * T_QSIZE;
				break;
			default: /* the packet buffers (headers) */
				base = b->region + b->tx_off;
				span = 3 * T_TXBUF;
				break;
			}
			off = (size_t)(x >> 8) % span;
			base[off] = (uint8_t)(x >> 40);
		}
		h = t_hdr(A, 5000, C, 2000, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, 10);
		h.flags = VSOCK_SEQ_EOM;
		t_send(&e.cell[0], &h, "0123456789");
		t_run(&e);
		assert_int_equal(e.cell[0].broken_calls + e.cell[2].broken_calls, 0);
		assert_true(e.cell[1].broken_calls <= 1);
		broken += e.cell[1].broken_calls;
		assert_int_equal(t_recv(&e.cell[2], &r, piece, sizeof(piece)), 1);
		assert_int_equal(r.len, 10);
		assert_memory_equal(piece, "0123456789", 10);
		t_env_fini(&e);
	}
	/* The garbage did break b most of the time (the test exercised something). */
	assert_true(broken > 50);
}

/* poll = yes: the broker asks the cells not to kick, and still serves them. */
static void test_poll_mode(void **state)
{
	static struct tenv e;
	static char ini[2048];
	static uint8_t msg[5000], piece[4096];
	struct vsock_hdr h, r;
	size_t off = 0;

	(void)state;
	snprintf(ini, sizeof(ini), "%s", base_ini);
	{
		char *p = strstr(ini, "chunk = 1KiB\n");

		memmove(p + 11, p, strlen(p) + 1);
		memcpy(p, "poll = yes\n", 11);
	}
	t_env_init(&e, ini, 4096);
	t_post_rx(&e.cell[0], 8, false);
	t_post_rx(&e.cell[1], 8, false);
	connect_pair(&e, 0, A, 1, B, 1000, VSOCK_TYPE_STREAM);
	fill(msg, sizeof(msg), 11);
	h = t_hdr(A, 5000, B, 1000, VSOCK_TYPE_STREAM, VSOCK_OP_RW, sizeof(msg));
	/* With EVENT_IDX the driver kicks only if the device asked: it did not. */
	t_send(&e.cell[0], &h, msg);
	assert_false(e.cell[0].kicked);
	t_run(&e);
	while (t_recv(&e.cell[1], &r, piece, sizeof(piece))) {
		assert_memory_equal(piece, msg + off, r.len);
		off += r.len;
	}
	assert_int_equal(off, sizeof(msg));
	t_env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_end_to_end),
		cmocka_unit_test(test_tx_out_of_order),
		cmocka_unit_test(test_deny_rst),
		cmocka_unit_test(test_default_best_effort),
		cmocka_unit_test(test_spoofed_src_cid),
		cmocka_unit_test(test_unknown_cid_rst),
		cmocka_unit_test(test_seqpacket_split),
		cmocka_unit_test(test_no_rx_buffer_blocks_only_that_flow),
		cmocka_unit_test(test_detach_resets_peers),
		cmocka_unit_test(test_hostile_len),
		cmocka_unit_test(test_hostile_op),
		cmocka_unit_test(test_hostile_type),
		cmocka_unit_test(test_hostile_short),
		cmocka_unit_test(test_hostile_addr),
		cmocka_unit_test(test_hostile_avail),
		cmocka_unit_test(test_hostile_rewritten),
		cmocka_unit_test(test_hostile_rx),
		cmocka_unit_test(test_connection_share),
		cmocka_unit_test(test_hostile_random),
		cmocka_unit_test(test_poll_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
