/* gvsock tests: two stacks joined by a wire that plays the broker with core's device
 * side (test_gvsock_wire.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_gvsock_wire.h"

#define PORT 1000u

static uint8_t pat(uint64_t i, uint32_t seed)
{
	uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;

	return (uint8_t)(x >> 29 ^ x >> 7);
}

/* Cell 0 listens on PORT, cell 1 connects; returns the two connected ids. */
static void pair(struct wire *w, unsigned int type, int *srv, int *cli)
{
	struct gv_stack *a = w->c[0].st, *b = w->c[1].st;
	int l = gv_socket(a, type), c, s;
	uint64_t pc = 0;
	uint32_t pp = 0, lp = 0;

	assert_true(l >= 0);
	assert_int_equal(gv_listen(a, l, PORT, 4), 0);
	c = gv_socket(b, type);
	assert_true(c >= 0);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EINPROGRESS);
	assert_false(gv_poll_events(b, c) & GV_POLLOUT);
	wire_run(w, 100);
	assert_true(gv_poll_events(a, l) & GV_POLLIN);
	s = gv_accept(a, l, &pc, &pp);
	assert_true(s >= 0);
	assert_int_equal(pc, 4);
	assert_int_equal(gv_sock_name(b, c, &lp, NULL, NULL), 0);
	assert_int_equal(pp, lp);
	assert_true(lp >= 49152);
	assert_int_equal(gv_accept(a, l, NULL, NULL), -EAGAIN);
	assert_true(gv_poll_events(b, c) & GV_POLLOUT);
	assert_int_equal(gv_sock_error(b, c), 0);
	/* The listener goes; the accepted connection stays. */
	assert_int_equal(gv_close(a, l), 0);
	*srv = s;
	*cli = c;
}

/* ---- layout ---- */

static void test_layout(void **state)
{
	struct gv_layout l;
	struct gv_layout_params p = { 0 };

	(void)state;
	assert_int_equal(gv_layout_compute(NULL, 2u << 20, &l), 0);
	assert_int_equal(l.queue_size, 128);
	assert_int_equal(l.rx_buf_size, 4096);
	assert_int_equal(l.rx_buf_count, 128);
	assert_int_equal(l.tx_payload, 65536);
	assert_true(l.tx_slot_count >= 16 && l.tx_slot_count <= 64);
	assert_true(l.footprint <= 2u << 20);
	assert_int_equal(l.rx_desc % 16, 0);
	assert_int_equal(l.tx_desc % 16, 0);
	assert_int_equal(l.rx_used % 4, 0);
	assert_int_equal(l.tx_used % 4, 0);
	/* Nothing overlaps: rings, then RX buffers, then TX headers, then TX slots. */
	assert_true(l.tx_desc >= l.rx_used + 4 + 8 * 128 + 2);
	assert_true(l.rx_bufs >= l.tx_used + 4 + 8 * 128 + 2);
	assert_true(l.tx_hdrs >= l.rx_bufs + 128 * 4096);
	assert_true(l.tx_bufs >= l.tx_hdrs + 128 * 44);
	assert_int_equal(l.footprint, l.tx_bufs + (uint64_t)l.tx_slot_count * 65536);

	/* Too small for even one TX slot. */
	assert_int_equal(gv_layout_compute(NULL, 512u << 10, &l), -ENOSPC);
	p.queue_size = 100;
	assert_int_equal(gv_layout_compute(&p, 2u << 20, &l), -EINVAL);
	p.queue_size = 16;
	p.rx_buf_size = 44;
	assert_int_equal(gv_layout_compute(&p, 2u << 20, &l), -EINVAL);
	p.rx_buf_size = 0;
	p.tx_slots = 9; /* more than queue_size / 2 */
	assert_int_equal(gv_layout_compute(&p, 2u << 20, &l), -EINVAL);
	p.tx_slots = 8;
	p.tx_payload = 4096;
	assert_int_equal(gv_layout_compute(&p, 1u << 20, &l), 0);
	assert_int_equal(l.tx_slot_count, 8);
	assert_int_equal(gv_layout_compute(&p, l.footprint - 1, &l), -ENOSPC);
}

static void test_errno_values(void **state)
{
	/* gvsock names Linux's numbers itself; on Linux they are <errno.h>'s. */
	static const int pairs[][2] = {
		{ GV_EIO, EIO }, { GV_EAGAIN, EAGAIN }, { GV_EINVAL, EINVAL },
		{ GV_EMFILE, EMFILE }, { GV_ENOSPC, ENOSPC }, { GV_EPIPE, EPIPE },
		{ GV_EMSGSIZE, EMSGSIZE }, { GV_EPROTONOSUPPORT, EPROTONOSUPPORT },
		{ GV_EADDRINUSE, EADDRINUSE }, { GV_EADDRNOTAVAIL, EADDRNOTAVAIL },
		{ GV_ECONNRESET, ECONNRESET }, { GV_EISCONN, EISCONN },
		{ GV_ENOTCONN, ENOTCONN }, { GV_ETIMEDOUT, ETIMEDOUT },
		{ GV_ECONNREFUSED, ECONNREFUSED }, { GV_EALREADY, EALREADY },
		{ GV_EINPROGRESS, EINPROGRESS },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		assert_int_equal(pairs[i][0], pairs[i][1]);
}

static void test_config_checked(void **state)
{
	struct gv_config cfg = { 0 };
	uint8_t *region = aligned_alloc(4096, 1u << 20);
	struct gv_stack *st;
	static uint8_t mem[64] __attribute__((aligned(64)));

	(void)state;
	assert_int_equal(gv_layout_compute(NULL, 1u << 20, &cfg.layout), 0);
	cfg.region = region;
	cfg.region_size = 1u << 20;
	cfg.region_dev = WIRE_GPA;
	cfg.max_sockets = 2;
	cfg.rcvbuf = 4096;
	cfg.ops = &wire_ops;
	assert_true(gv_stack_mem_size(&cfg) > 0);
	assert_int_equal(gv_stack_init(&cfg, mem, sizeof(mem), &st), -ENOSPC);
	cfg.rcvbuf = 16;
	assert_int_equal(gv_stack_mem_size(&cfg), 0);
	cfg.rcvbuf = 4096;
	cfg.region_size = cfg.layout.footprint - 1; /* layout does not fit */
	assert_int_equal(gv_stack_mem_size(&cfg), 0);
	cfg.region_size = 1u << 20;
	cfg.ops = NULL;
	assert_int_equal(gv_stack_mem_size(&cfg), 0);
	free(region);
}

/* ---- connection set-up ---- */

static void test_connect_accept_exchange(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	int s, c;
	char buf[64];

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_STREAM, &s, &c);
	assert_true(w.c[1].kicks[GV_QUEUE_TX] > 0);
	assert_int_equal(gv_send(b, c, "ping", 4, false), 4);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), -EAGAIN);
	wire_run(&w, 100);
	assert_true(gv_poll_events(a, s) & GV_POLLIN);
	assert_int_equal(gv_recv(a, s, buf, 2, GV_MSG_PEEK, NULL), 2);
	assert_memory_equal(buf, "pi", 2);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(gv_send(a, s, "pong!", 5, false), 5);
	wire_run(&w, 100);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, NULL), 5);
	assert_memory_equal(buf, "pong!", 5);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EISCONN);
	assert_true(w.c[0].sent_ops[VSOCK_OP_RESPONSE] == 1);
	assert_true(w.c[1].sent_ops[VSOCK_OP_REQUEST] == 1);
	wire_fini(&w);
}

static void test_refused(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	int c, l, c2, c3;
	char x = 0;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	/* Nobody listens on 77: cell 0 answers the REQUEST with RST. */
	c = gv_socket(b, GV_SOCK_STREAM);
	assert_int_equal(gv_connect(b, c, 3, 77), -EINPROGRESS);
	wire_run(&w, 100);
	assert_int_equal(w.c[0].sent_ops[VSOCK_OP_RST], 1);
	assert_true(gv_poll_events(b, c) & GV_POLLERR);
	assert_true(gv_poll_events(b, c) & GV_POLLHUP);
	assert_int_equal(gv_send(b, c, &x, 1, false), -ECONNREFUSED);
	assert_int_equal(gv_send(b, c, &x, 1, false), -EPIPE);
	assert_int_equal(gv_close(b, c), 0);

	/* A listener of the other type does not match either. */
	l = gv_socket(a, GV_SOCK_SEQPACKET);
	assert_int_equal(gv_listen(a, l, PORT, 1), 0);
	c = gv_socket(b, GV_SOCK_STREAM);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EINPROGRESS);
	wire_run(&w, 100);
	assert_int_equal(gv_sock_error(b, c), -ECONNREFUSED);
	assert_int_equal(gv_sock_error(b, c), 0);
	gv_close(b, c);

	/* Backlog 1: the second connection waiting for accept is refused. */
	c2 = gv_socket(b, GV_SOCK_SEQPACKET);
	c3 = gv_socket(b, GV_SOCK_SEQPACKET);
	assert_int_equal(gv_connect(b, c2, 3, PORT), -EINPROGRESS);
	assert_int_equal(gv_connect(b, c3, 3, PORT), -EINPROGRESS);
	wire_run(&w, 100);
	assert_int_equal(gv_sock_error(b, c2), 0);
	assert_true(gv_poll_events(b, c2) & GV_POLLOUT);
	assert_int_equal(gv_sock_error(b, c3), -ECONNREFUSED);
	assert_true(gv_accept(a, l, NULL, NULL) >= 0);
	assert_int_equal(gv_accept(a, l, NULL, NULL), -EAGAIN);
	wire_fini(&w);
}

static void test_connect_timeout(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *b;
	int c;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	b = w.c[1].st;
	w.drop = true;
	c = gv_socket(b, GV_SOCK_STREAM);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EINPROGRESS);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EALREADY);
	wire_run(&w, 100);
	assert_int_equal(gv_sock_error(b, c), 0);
	assert_int_equal(gv_next_deadline(b), w.now + 2000000000ull);
	w.now += 1999999999ull;
	wire_run(&w, 100);
	assert_int_equal(gv_sock_error(b, c), 0);
	w.now += 1;
	wire_run(&w, 100);
	assert_int_equal(gv_sock_error(b, c), -ETIMEDOUT);
	assert_int_equal(gv_next_deadline(b), UINT64_MAX);
	/* It told the peer it gave up. */
	assert_int_equal(w.c[1].sent_ops[VSOCK_OP_RST], 1);
	wire_fini(&w);
}

static void test_ports(void **state)
{
	struct wire w;
	struct wire_opts o = { .max_sockets = 4 };
	struct gv_stack *a;
	int x, y, ids[4];

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	x = gv_socket(a, GV_SOCK_STREAM);
	y = gv_socket(a, GV_SOCK_STREAM);
	assert_int_equal(gv_bind(a, x, 5000), 0);
	assert_int_equal(gv_bind(a, x, 5001), -EINVAL);
	assert_int_equal(gv_bind(a, y, 5000), -EADDRINUSE);
	assert_int_equal(gv_listen(a, y, 5000, 1), -EADDRINUSE);
	assert_int_equal(gv_close(a, x), 0);
	assert_int_equal(gv_listen(a, y, 5000, 1), 0);
	assert_int_equal(gv_close(a, y), 0);
	for (int i = 0; i < 4; i++)
		assert_true((ids[i] = gv_socket(a, GV_SOCK_STREAM)) >= 0);
	assert_int_equal(gv_socket(a, GV_SOCK_STREAM), -EMFILE);
	assert_int_equal(gv_socket(a, 7), -EINVAL);
	gv_close(a, ids[3]);
	assert_int_equal(gv_socket(a, GV_SOCK_SEQPACKET), ids[3]);
	assert_int_equal(gv_send(a, ids[0], "x", 1, false), -ENOTCONN);
	assert_int_equal(gv_recv(a, ids[0], NULL, 0, 0, NULL), -ENOTCONN);
	assert_int_equal(gv_send(a, 99, "x", 1, false), -EINVAL);
	assert_int_equal(gv_close(a, -1), -EINVAL);
	wire_fini(&w);
}

/* ---- STREAM data ---- */

/* Moves `total` bytes from cell 1 to cell 0, both sides using odd-sized calls, and
 * checks every byte. Returns the rounds used. */
static long stream_transfer(struct wire *w, int s, int c, uint64_t total, uint32_t seed)
{
	struct gv_stack *a = w->c[0].st, *b = w->c[1].st;
	static uint8_t tx[200000], rx[70001];
	uint64_t sent = 0, got = 0;
	long rounds = 0;
	uint32_t sz = 1;

	while (got < total) {
		assert_true(++rounds < 20000000); /* nothing stalls */
		if (sent < total) {
			uint32_t n = (uint32_t)(sizeof(tx) - (sent * 7 % 1000));

			sz = sz * 1103515245u + 12345u;
			n = 1 + (sz >> 8) % n;
			if (n > total - sent)
				n = (uint32_t)(total - sent);
			for (uint32_t i = 0; i < n; i++)
				tx[i] = pat(sent + i, seed);
			int r = gv_send(b, c, tx, n, false);

			if (r > 0)
				sent += (uint32_t)r;
			else
				assert_int_equal(r, -EAGAIN);
		}
		wire_move(w, &w->c[1], &w->c[0]);
		wire_move(w, &w->c[0], &w->c[1]);
		assert_true(gv_process(a) >= 0);
		assert_true(gv_process(b) >= 0);
		for (;;) {
			uint32_t want = 1 + (uint32_t)((got * 13 + rounds) % sizeof(rx));
			int r = gv_recv(a, s, rx, want, 0, NULL);

			if (r == -EAGAIN)
				break;
			assert_true(r > 0);
			for (int i = 0; i < r; i++)
				if (rx[i] != pat(got + (uint64_t)i, seed))
					fail_msg("byte %llu differs", (unsigned long long)(got + i));
			got += (uint32_t)r;
		}
	}
	return rounds;
}

/* MiB moved per receive budget; the long run (suite 'slow') moves more. */
static uint64_t stream_mib = 4;

static void test_stream_integrity(void **state)
{
	/* Receive budgets from tiny to normal: credit updates carry the flow. */
	static const uint32_t budgets[] = { 128, 1000, 4096, 65536 };

	(void)state;
	for (unsigned int i = 0; i < 4; i++) {
		struct wire w;
		struct wire_opts o = { .rcvbuf = budgets[i] };
		struct gv_stats sa, sb;
		int s, c;
		uint64_t total = (budgets[i] < 4096 ? stream_mib / 4 : stream_mib) << 20;

		assert_int_equal(wire_init(&w, &o), 0);
		pair(&w, GV_SOCK_STREAM, &s, &c);
		assert_int_equal(gv_sock_buf_alloc(w.c[0].st, s), budgets[i]);
		stream_transfer(&w, s, c, total, i);
		gv_get_stats(w.c[0].st, &sa);
		gv_get_stats(w.c[1].st, &sb);
		/* The receiver told the sender about space: a one-way flow needs it. */
		assert_true(sa.credit_updates_sent > 0);
		assert_true(sa.credit_updates_sent <= total / (budgets[i] / 2) + 2);
		assert_int_equal(sa.rx_bad_len + sa.rx_bad_hdr + sa.rx_bad_credit, 0);
		assert_int_equal(sb.rx_bad_len + sb.rx_bad_hdr + sb.rx_bad_credit, 0);
		assert_true(sb.tx_bytes == total);
		wire_fini(&w);
	}
}

static void test_stream_small_pieces(void **state)
{
	/* The broker may deliver in pieces smaller than the RX buffer. */
	struct wire w;
	struct wire_opts o = { .rcvbuf = 8192 };
	int s, c;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	w.piece = 1;
	pair(&w, GV_SOCK_STREAM, &s, &c);
	stream_transfer(&w, s, c, 50000, 9);
	w.piece = 333;
	stream_transfer(&w, s, c, 500000, 10);
	wire_fini(&w);
}

static void test_credit_wrap(void **state)
{
	/* Counters start just below 2^32: the transfer crosses the wrap many times
	 * over and the credit arithmetic must not notice. */
	struct wire w;
	struct wire_opts o = { .rcvbuf = 4096, .counter_base = 0xFFFFFFFFu - 5000 };
	struct gv_stack *a, *b;
	int s, c;
	uint8_t buf[8192];

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_STREAM, &s, &c);
	/* Credit is exact across the wrap: the sender can put exactly buf_alloc bytes
	 * in flight, no more. */
	memset(buf, 0x5A, sizeof(buf));
	assert_int_equal(gv_send(b, c, buf, sizeof(buf), false), 4096);
	assert_int_equal(gv_send(b, c, buf, 1, false), -EAGAIN);
	assert_false(gv_poll_events(b, c) & GV_POLLOUT);
	wire_run(&w, 100);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), 4096);
	wire_run(&w, 100);
	assert_true(gv_poll_events(b, c) & GV_POLLOUT);
	stream_transfer(&w, s, c, 1u << 20, 3);
	wire_fini(&w);
}

static void test_stream_both_ways(void **state)
{
	struct wire w;
	struct wire_opts o = { .rcvbuf = 2048 };
	struct gv_stack *a, *b;
	int s, c;
	uint64_t sa = 0, sb = 0, ra = 0, rb = 0, total = 400000;
	uint8_t buf[3000];
	long rounds = 0;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_STREAM, &s, &c);
	while (ra < total || rb < total) {
		int r;

		assert_true(++rounds < 100000);
		if (sa < total) {
			uint32_t n = (uint32_t)(total - sa < 2999 ? total - sa : 2999);

			for (uint32_t i = 0; i < n; i++)
				buf[i] = pat(sa + i, 1);
			if ((r = gv_send(a, s, buf, n, false)) > 0)
				sa += (uint32_t)r;
		}
		if (sb < total) {
			uint32_t n = (uint32_t)(total - sb < 1777 ? total - sb : 1777);

			for (uint32_t i = 0; i < n; i++)
				buf[i] = pat(sb + i, 2);
			if ((r = gv_send(b, c, buf, n, false)) > 0)
				sb += (uint32_t)r;
		}
		wire_run(&w, 4);
		while ((r = gv_recv(b, c, buf, sizeof(buf), 0, NULL)) > 0) {
			for (int i = 0; i < r; i++)
				assert_int_equal(buf[i], pat(rb + (uint64_t)i, 1));
			rb += (uint32_t)r;
		}
		while ((r = gv_recv(a, s, buf, sizeof(buf), 0, NULL)) > 0) {
			for (int i = 0; i < r; i++)
				assert_int_equal(buf[i], pat(ra + (uint64_t)i, 2));
			ra += (uint32_t)r;
		}
	}
	wire_fini(&w);
}

/* ---- SEQPACKET ---- */

static void test_seqpacket_boundaries(void **state)
{
	static const uint32_t sizes[] = { 1, 2, 43, 44, 45, 4051, 4052, 4053, 8104, 65535,
					  65536, 65537, 100000, 131072, 200001, 262144 };
	static uint8_t tx[262144 + 8], rx[262144 + 8];
	struct wire w;
	struct wire_opts o = { .rcvbuf = 400u << 10 };
	struct gv_stack *a, *b;
	int s, c;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_SEQPACKET, &s, &c);
	assert_true(gv_max_message(b, c) >= 262144);
	/* Each size alone, then several queued back to back before any read. */
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned int fl = 99;
		bool eor = i % 3 == 0;

		for (uint32_t j = 0; j < sizes[i]; j++)
			tx[j] = pat(j, i);
		assert_int_equal(gv_send(b, c, tx, sizes[i], eor), (int)sizes[i]);
		wire_run(&w, 1000);
		assert_true(gv_poll_events(a, s) & GV_POLLIN);
		memset(rx, 0, sizes[i] + 8);
		assert_int_equal(gv_recv(a, s, rx, sizes[i] + 8, 0, &fl), (int)sizes[i]);
		assert_int_equal(fl, eor ? GV_MSG_EOR : 0);
		assert_memory_equal(rx, tx, sizes[i]);
		assert_int_equal(gv_recv(a, s, rx, sizeof(rx), 0, NULL), -EAGAIN);
		wire_run(&w, 100);
	}
	{
		uint32_t lens[] = { 1, 5000, 3, 70000, 1, 1, 9000 };
		unsigned int fl;

		for (unsigned int i = 0; i < 7; i++) {
			memset(tx, (int)i + 1, lens[i]);
			assert_int_equal(gv_send(b, c, tx, lens[i], false), (int)lens[i]);
			wire_run(&w, 1000);
		}
		for (unsigned int i = 0; i < 7; i++) {
			/* A buffer of 2 truncates all but the 1-byte messages. */
			int r = gv_recv(a, s, rx, i == 2 ? 2 : sizeof(rx), 0, &fl);

			if (i == 2) {
				assert_int_equal(r, 2);
				assert_int_equal(fl, GV_MSG_TRUNC);
			} else {
				assert_int_equal(r, (int)lens[i]);
				assert_int_equal(fl, 0);
			}
			for (int j = 0; j < r; j++)
				assert_int_equal(rx[j], i + 1);
		}
		assert_int_equal(gv_recv(a, s, rx, sizeof(rx), 0, NULL), -EAGAIN);
	}
	wire_fini(&w);
}

static void test_seqpacket_flow(void **state)
{
	/* Many messages through a small budget: whole messages or -EAGAIN, credit
	 * requests resolve stalls, and nothing is lost or merged. */
	static uint8_t tx[3000], rx[3000];
	struct wire w;
	struct wire_opts o = { .rcvbuf = 5120 }; /* buf_alloc 4096 */
	struct gv_stack *a, *b;
	struct gv_stats st;
	int s, c;
	uint32_t sent = 0, got = 0, n_msgs = 3000;
	long rounds = 0;
	bool blocked = false;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_SEQPACKET, &s, &c);
	assert_int_equal(gv_sock_buf_alloc(a, s), 4096);
	assert_int_equal(gv_max_message(b, c), 4096);
	assert_int_equal(gv_send(b, c, tx, 4097, false), -EMSGSIZE);
	while (got < n_msgs) {
		assert_true(++rounds < 1000000);
		/* Like a blocking port: after -EAGAIN, try again only once POLLOUT
		 * says the refused size would now go. */
		while (sent < n_msgs && (!blocked || (gv_poll_events(b, c) & GV_POLLOUT))) {
			uint32_t len = 1 + sent * 997 % 2999;

			memset(tx, (int)(sent & 0xFF), len);
			memcpy(tx, &sent, len < 4 ? len : 4);
			int r = gv_send(b, c, tx, len, false);

			blocked = r == -EAGAIN;
			if (blocked)
				break;
			assert_int_equal(r, (int)len);
			sent++;
		}
		wire_run(&w, 3);
		if (rounds % 3 == 0)
			continue; /* let the receiver lag */
		for (;;) {
			uint32_t len = 1 + got * 997 % 2999, v = 0;
			unsigned int fl;
			int r = gv_recv(a, s, rx, sizeof(rx), 0, &fl);

			if (r == -EAGAIN)
				break;
			assert_int_equal(r, (int)len);
			memcpy(&v, rx, len < 4 ? len : 4);
			memcpy(tx, &got, 4);
			assert_memory_equal(&v, tx, len < 4 ? len : 4);
			if (len > 4)
				assert_int_equal(rx[len - 1], got & 0xFF);
			got++;
		}
	}
	gv_get_stats(b, &st);
	assert_true(st.credit_requests_sent > 0);
	wire_fini(&w);
}

static void test_seqpacket_credit_request(void **state)
{
	/* A message bigger than the credit the sender sees, while the receiver holds
	 * small unread messages: the sender asks once, and the receiver keeps telling
	 * it about every message it consumes until the big one fits, so a sender that
	 * waits for POLLOUT is never stranded. */
	static uint8_t buf[4096];
	struct wire w;
	struct wire_opts o = { .rcvbuf = 5120 }; /* buf_alloc 4096 */
	struct gv_stack *a, *b;
	struct gv_stats st;
	int s, c;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_SEQPACKET, &s, &c);
	for (int i = 0; i < 3; i++)
		assert_int_equal(gv_send(b, c, buf, 100, false), 100);
	wire_run(&w, 100);
	assert_int_equal(gv_send(b, c, buf, 3900, false), -EAGAIN);
	wire_run(&w, 100);
	gv_get_stats(b, &st);
	assert_int_equal(st.credit_requests_sent, 1);
	assert_false(gv_poll_events(b, c) & GV_POLLOUT);
	/* Retrying (a port that does not look at POLLOUT) does not ask again. */
	assert_int_equal(gv_send(b, c, buf, 3900, false), -EAGAIN);
	wire_run(&w, 100);
	assert_int_equal(gv_send(b, c, buf, 3900, false), -EAGAIN);
	wire_run(&w, 100);
	gv_get_stats(b, &st);
	assert_int_equal(st.credit_requests_sent, 1);
	/* One message read: 3896 free, still short. */
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), 100);
	wire_run(&w, 100);
	assert_false(gv_poll_events(b, c) & GV_POLLOUT);
	assert_int_equal(gv_send(b, c, buf, 3900, false), -EAGAIN);
	/* Far below half the buffer consumed, yet the receiver announces it. */
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), 100);
	wire_run(&w, 100);
	assert_true(gv_poll_events(b, c) & GV_POLLOUT);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), 100);
	wire_run(&w, 100);
	assert_int_equal(gv_send(b, c, buf, 3900, false), 3900);
	gv_get_stats(b, &st);
	assert_int_equal(st.credit_requests_sent, 1);
	/* The next stall asks again. */
	assert_int_equal(gv_send(b, c, buf, 300, false), -EAGAIN);
	gv_get_stats(b, &st);
	assert_int_equal(st.credit_requests_sent, 2);
	wire_run(&w, 100);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), 3900);
	wire_run(&w, 100);
	assert_true(gv_poll_events(b, c) & GV_POLLOUT);
	assert_int_equal(gv_send(b, c, buf, 300, false), 300);
	wire_fini(&w);
}

static void test_seqpacket_slot_reuse(void **state)
{
	/* A SEQPACKET socket closed with unread messages leaves nothing behind: the
	 * next connection in the same slot sees its own boundaries only. */
	static uint8_t buf[512];
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	int s, c, s2, c2;
	unsigned int fl;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_SEQPACKET, &s, &c);
	for (int i = 0; i < 3; i++)
		assert_int_equal(gv_send(b, c, buf, 10, false), 10);
	wire_run(&w, 100);
	assert_int_equal(gv_close(a, s), 0);
	wire_run(&w, 100);
	assert_int_equal(gv_close(b, c), 0);
	wire_run(&w, 100);
	pair(&w, GV_SOCK_SEQPACKET, &s2, &c2);
	assert_int_equal(s2, s);
	memset(buf, 7, sizeof(buf));
	assert_int_equal(gv_send(b, c2, buf, 100, false), 100);
	wire_run(&w, 100);
	assert_int_equal(gv_recv(a, s2, buf, sizeof(buf), 0, &fl), 100);
	assert_int_equal(fl, 0);
	wire_fini(&w);
}

static void test_seqpacket_waits_for_tx_slots(void **state)
{
	/* Messages need all their TX slots at once: with 2 slots of 4 KiB a 9 KiB
	 * message can never go (EMSGSIZE), an 8 KiB one waits for both slots. */
	static uint8_t buf[16384];
	struct wire w;
	struct wire_opts o = { .rcvbuf = 1u << 20,
			       .lp = { .queue_size = 16, .tx_payload = 4096, .tx_slots = 2 } };
	struct gv_stack *a, *b;
	int s, c;
	unsigned int fl;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_SEQPACKET, &s, &c);
	assert_int_equal(gv_max_message(b, c), 8192);
	assert_int_equal(gv_send(b, c, buf, 8193, false), -EMSGSIZE);
	w.hold = true;
	assert_int_equal(gv_send(b, c, buf, 100, false), 100);
	assert_int_equal(gv_send(b, c, buf, 8192, false), -EAGAIN);
	assert_false(gv_poll_events(b, c) & GV_POLLOUT);
	assert_int_equal(gv_send(b, c, buf, 4096, false), 4096);
	assert_int_equal(gv_send(b, c, buf, 1, false), -EAGAIN);
	w.hold = false;
	wire_run(&w, 100);
	assert_true(gv_poll_events(b, c) & GV_POLLOUT);
	assert_int_equal(gv_send(b, c, buf, 8192, true), 8192);
	wire_run(&w, 100);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, &fl), 100);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, &fl), 4096);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, &fl), 8192);
	assert_int_equal(fl, GV_MSG_EOR);
	wire_fini(&w);
}

static void test_slow_socket_does_not_starve(void **state)
{
	/* One receiver never reads: its budget fills, and the RX buffers keep being
	 * recycled, so another connection on the same cell moves 1 MiB meanwhile. */
	static uint8_t buf[8192];
	struct wire w;
	struct wire_opts o = { .rcvbuf = 4096 };
	struct gv_stack *a, *b;
	int s1, c1, s2, c2;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_STREAM, &s1, &c1);
	pair(&w, GV_SOCK_STREAM, &s2, &c2);
	memset(buf, 1, sizeof(buf));
	assert_int_equal(gv_send(b, c1, buf, sizeof(buf), false), 4096);
	wire_run(&w, 100);
	assert_int_equal(gv_send(b, c1, buf, 1, false), -EAGAIN);
	stream_transfer(&w, s2, c2, 1u << 20, 5);
	/* The slow one still holds exactly its 4096 bytes, intact. */
	assert_int_equal(gv_recv(a, s1, buf, sizeof(buf), GV_MSG_PEEK, NULL), 4096);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 1);
	wire_fini(&w);
}

static void test_seqpacket_oversize_from_peer(void **state)
{
	/* A peer that ignores gv_max_message sends a message longer than our whole
	 * budget (within credit, packet by packet): we hand out its first buf_alloc
	 * bytes with TRUNC, drop the rest up to EOM, and the next message is whole. */
	static uint8_t pkt[GV_HDR_SIZE + 2048], buf[8192];
	struct wire w;
	struct wire_opts o = { .rcvbuf = 5120 }; /* buf_alloc 4096 */
	struct gv_stack *b;
	int s, c;
	uint32_t lp;
	unsigned int fl;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	b = w.c[1].st;
	pair(&w, GV_SOCK_SEQPACKET, &s, &c);
	gv_sock_name(b, c, &lp, NULL, NULL);
	struct vsock_hdr h = { .src_cid = 3, .dst_cid = 4, .src_port = PORT, .dst_port = lp,
			       .type = VSOCK_TYPE_SEQPACKET, .op = VSOCK_OP_RW, .len = 2048,
			       .buf_alloc = 4096 };

	for (int i = 0; i < 2; i++) {
		memset(pkt + GV_HDR_SIZE, 'a' + i, 2048);
		vsock_hdr_encode(&h, pkt);
		assert_int_equal(wire_inject(&w.c[1], pkt, sizeof(pkt), sizeof(pkt)), 1);
	}
	assert_true(gv_process(b) >= 0);
	assert_true(gv_poll_events(b, c) & GV_POLLIN);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, &fl), 4096);
	assert_int_equal(fl, GV_MSG_TRUNC);
	assert_int_equal(buf[0], 'a');
	assert_int_equal(buf[4095], 'b');
	/* Meanwhile our own sending stalls for credit ... */
	assert_int_equal(gv_send(b, c, buf, 4096, false), 4096);
	assert_int_equal(gv_send(b, c, buf, 1, false), -EAGAIN);
	assert_false(gv_poll_events(b, c) & GV_POLLOUT);
	/* ... until the peer's next header, though its payload is dropped: the tail of
	 * that message goes, its credit given back, and the header frees our send
	 * side, which is woken. */
	h.flags = VSOCK_SEQ_EOM;
	h.len = 100;
	h.fwd_cnt = 4096;
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, GV_HDR_SIZE + 100, GV_HDR_SIZE + 100), 1);
	{
		unsigned int wakes = w.c[1].wakes;

		assert_true(gv_process(b) >= 0);
		assert_true(w.c[1].wakes > wakes);
		assert_true(gv_poll_events(b, c) & GV_POLLOUT);
	}
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, &fl), -EAGAIN);
	h.len = 7;
	memset(pkt + GV_HDR_SIZE, 'z', 7);
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, GV_HDR_SIZE + 7, GV_HDR_SIZE + 7), 1);
	assert_true(gv_process(b) >= 0);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, &fl), 7);
	assert_int_equal(fl, 0);
	assert_int_equal(buf[6], 'z');
	/* Every byte counts as consumed, dropped ones too: asked for credit, the
	 * cell reports all 4203 bytes forwarded and its whole buffer free. */
	h.op = VSOCK_OP_CREDIT_REQUEST;
	h.flags = 0;
	h.len = 0;
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, GV_HDR_SIZE, GV_HDR_SIZE), 1);
	assert_true(gv_process(b) >= 0);
	wire_run(&w, 100);
	assert_int_equal(w.c[1].last.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(w.c[1].last.fwd_cnt, 4096 + 100 + 7);
	assert_int_equal(w.c[1].last.buf_alloc, 4096);
	wire_fini(&w);
}

/* A SEQPACKET peer that behaves like Linux's virtio transport, played by hand on
 * cell 0's side of a connection to cell 1: a message goes out in as many RW packets
 * as the credit it sees allows (EOM on the last, pieces of at most one RX buffer),
 * it waits for credit without ever asking (no CREDIT_REQUEST), and it learns our
 * credit from every header cell 1 sends. */
struct split_peer {
	struct wire *w;
	uint32_t lport;          /* cell 1's port */
	uint32_t tx_cnt, peer_fwd_cnt, peer_buf_alloc;
	unsigned int updates;    /* CREDIT_UPDATEs seen */
};

/* Takes what cell 1 sent (header only; the peer sends nothing back). */
static void split_peer_drain(struct split_peer *p)
{
	struct cell *c = &p->w->c[1];
	struct vq_seg seg[8];
	struct vq_chain ch;

	while (vq_device_pop(&c->tx, &ch, seg, 8) == 1) {
		struct vsock_hdr h;

		assert_true(seg[0].len >= GV_HDR_SIZE);
		vsock_hdr_decode(&h, seg[0].host);
		if (h.dst_port == PORT && h.src_port == p->lport) {
			p->peer_fwd_cnt = h.fwd_cnt;
			p->peer_buf_alloc = h.buf_alloc;
			if (h.op == VSOCK_OP_CREDIT_UPDATE)
				p->updates++;
			assert_int_not_equal(h.op, VSOCK_OP_RST);
		}
		assert_int_equal(vq_device_push(&c->tx, ch.head, 0), 0);
	}
	assert_true(gv_process(c->st) >= 0);
}

/* Sends up to n bytes of a message (eom: they end it) within the credit it sees;
 * returns the bytes sent. */
static uint32_t split_peer_send(struct split_peer *p, const uint8_t *m, uint32_t n, bool eom)
{
	static uint8_t pkt[WIRE_MAX_PKT];
	struct cell *c = &p->w->c[1];
	uint32_t fr = vsock_peer_free(p->peer_buf_alloc, p->tx_cnt, p->peer_fwd_cnt);
	uint32_t off = 0, room = c->lay.rx_buf_size - GV_HDR_SIZE;

	assert_true(room <= sizeof(pkt) - GV_HDR_SIZE);

	if (n > fr) {
		n = fr;
		eom = false;
	}
	while (off < n) {
		uint32_t k = n - off < room ? n - off : room;
		struct vsock_hdr h = { .src_cid = 3, .dst_cid = 4, .src_port = PORT,
				       .dst_port = p->lport, .type = VSOCK_TYPE_SEQPACKET,
				       .op = VSOCK_OP_RW, .len = k, .buf_alloc = 65536 };

		if (eom && off + k == n)
			h.flags = VSOCK_SEQ_EOM;
		vsock_hdr_encode(&h, pkt);
		memcpy(pkt + GV_HDR_SIZE, m + off, k);
		assert_int_equal(wire_inject(c, pkt, GV_HDR_SIZE + k, GV_HDR_SIZE + k), 1);
		off += k;
	}
	p->tx_cnt += n;
	assert_true(gv_process(c->st) >= 0);
	return n;
}

static void split_peer_init(struct split_peer *p, struct wire *w, int c)
{
	memset(p, 0, sizeof(*p));
	p->w = w;
	gv_sock_name(w->c[1].st, c, &p->lport, NULL, NULL);
	p->peer_buf_alloc = gv_sock_buf_alloc(w->c[1].st, c);
}

/* Message `i` of a split_flow: its length (`fixed`, or 1..4096) and its bytes: the
 * number, then its low byte repeated. */
static uint32_t split_len(uint32_t i, uint32_t fixed)
{
	return fixed ? fixed : 1 + i * 2713 % 4096;
}

static void split_fill(uint8_t *m, uint32_t i, uint32_t len)
{
	memset(m, (int)(i & 0xFF), len);
	memcpy(m, &i, len < 4 ? len : 4);
}

/* n_msgs messages from the splitting peer to socket c of cell 1, read by a reader
 * that takes 0 to read_mod - 1 messages a round at random: the flow never stalls,
 * every message comes whole (nothing cut or merged), and the receiver sends at most
 * one update per message it reads. Returns how many messages went out in more than
 * one credit window. */
static uint32_t split_flow(struct split_peer *p, struct gv_stack *b, int c, uint32_t n_msgs,
			   uint32_t fixed, uint32_t read_mod)
{
	static uint8_t msg[8192], buf[8192], want[8192];
	uint32_t sent = 0, got = 0, off = 0, x = 12345, splits = 0;
	unsigned int u0 = p->updates, fl;

	for (long rounds = 0; got < n_msgs; rounds++) {
		bool moved = false;

		assert_true(rounds < 10000000);
		if (sent < n_msgs) {
			uint32_t len = split_len(sent, fixed), n;

			split_fill(msg, sent, len);
			n = split_peer_send(p, msg + off, len - off, true);
			moved = n > 0;
			if (n < len - off)
				splits += off == 0 || n > 0;
			off += n;
			if (off == len) {
				sent++;
				off = 0;
			}
		}
		x = x * 1103515245u + 12345u;
		for (uint32_t k = (x >> 16) % read_mod; k > 0; k--) {
			uint32_t len = split_len(got, fixed);
			int r = gv_recv(b, c, buf, sizeof(buf), 0, &fl);

			if (r == -EAGAIN)
				break;
			assert_int_equal(r, (int)len);
			assert_int_equal(fl, 0);
			split_fill(want, got, len);
			assert_memory_equal(buf, want, len);
			got++;
			moved = true;
		}
		split_peer_drain(p);
		if (!moved && (x >> 16) % read_mod)
			fail_msg("stalled: %u of %u messages read, peer sees %u bytes free", got,
				 sent, vsock_peer_free(p->peer_buf_alloc, p->tx_cnt, p->peer_fwd_cnt));
	}
	assert_true(p->updates - u0 <= n_msgs);
	return splits;
}

static void test_seqpacket_split_sender(void **state)
{
	/* The receiver must announce space whenever the peer sees none while no whole
	 * message waits to be read: a splitting sender does not ask, and the reader
	 * waits for the rest of the message it holds the start of. */
	static uint8_t msg[8192], buf[8192];
	struct wire w;
	struct wire_opts o = { .rcvbuf = 5120 }; /* buf_alloc 4096 */
	struct split_peer p;
	struct gv_stack *b;
	struct gv_stats st;
	int s, c;
	unsigned int fl;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	b = w.c[1].st;
	pair(&w, GV_SOCK_SEQPACKET, &s, &c);
	split_peer_init(&p, &w, c);
	assert_int_equal(p.peer_buf_alloc, 4096);
	/* A (1600 bytes) whole, then 2496 of B's 2800 fill the buffer. */
	memset(msg, 'A', 1600);
	assert_int_equal(split_peer_send(&p, msg, 1600, true), 1600);
	memset(msg, 'B', 2800);
	assert_int_equal(split_peer_send(&p, msg, 2800, true), 2496);
	split_peer_drain(&p);
	assert_int_equal(p.updates, 0);
	/* Reading A frees less than half the buffer, but nothing else can be read
	 * until the rest of B comes, which needs that space. */
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, &fl), 1600);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, &fl), -EAGAIN);
	split_peer_drain(&p);
	assert_int_equal(p.updates, 1);
	assert_int_equal(p.peer_fwd_cnt, 1600);
	assert_int_equal(split_peer_send(&p, msg + 2496, 304, true), 304);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, &fl), 2800);
	assert_int_equal(fl, 0);
	for (int i = 0; i < 2800; i++)
		assert_int_equal(buf[i], 'B');
	split_peer_drain(&p);
	assert_int_equal(p.updates, 2); /* 2800 >= half the buffer */

	/* The other way round: the reader empties the buffer with less than half of it
	 * unannounced; the peer fills what it sees free with the start of a message,
	 * and that arrival is what must be announced. */
	memset(msg, 'C', 1000);
	assert_int_equal(split_peer_send(&p, msg, 1000, true), 1000);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, &fl), 1000);
	split_peer_drain(&p);
	assert_int_equal(p.updates, 2);
	memset(msg, 'D', 4000);
	assert_int_equal(split_peer_send(&p, msg, 4000, true), 3096);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, &fl), -EAGAIN);
	split_peer_drain(&p);
	assert_int_equal(p.updates, 3);
	assert_int_equal(split_peer_send(&p, msg + 3096, 904, true), 904);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, &fl), 4000);
	for (int i = 0; i < 4000; i++)
		assert_int_equal(buf[i], 'D');

	/* Many messages of random sizes, the reader lagging at random. */
	split_flow(&p, b, c, 3000, 0, 4);
	gv_get_stats(b, &st);
	assert_int_equal(st.rx_bad_len + st.rx_bad_hdr + st.rx_bad_credit, 0);
	assert_int_equal(st.credit_requests_sent, 0);
	(void)s;
	wire_fini(&w);
}

static void test_seqpacket_split_sender_cell_sizes(void **state)
{
	/* What `rtvio cell` meets from a Linux guest: a 256 KiB budget (buf_alloc
	 * 209664, not a power of two), RX buffers of 4 KiB payload, 8 KiB messages,
	 * and a reader that falls behind now and then, so that the sender's view of
	 * the buffer runs out mid-message and the ring wraps many times. */
	struct wire w;
	struct wire_opts o = { .rcvbuf = 256u << 10, .region = 4u << 20,
			       .lp = { .rx_buf_size = 4096 + GV_HDR_SIZE } };
	struct split_peer p;
	struct gv_stats st;
	int s, c;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	pair(&w, GV_SOCK_SEQPACKET, &s, &c);
	split_peer_init(&p, &w, c);
	assert_int_equal(p.peer_buf_alloc, 209664);
	assert_true(split_flow(&p, w.c[1].st, c, 3000, 8192, 3) > 0);
	gv_get_stats(w.c[1].st, &st);
	assert_int_equal(st.rx_bad_len + st.rx_bad_hdr + st.rx_bad_credit, 0);
	(void)s;
	wire_fini(&w);
}

static void test_listener_close_resets_waiting(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	int l, c1, c2;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	l = gv_socket(a, GV_SOCK_STREAM);
	assert_int_equal(gv_listen(a, l, PORT, 4), 0);
	c1 = gv_socket(b, GV_SOCK_STREAM);
	c2 = gv_socket(b, GV_SOCK_STREAM);
	assert_int_equal(gv_connect(b, c1, 3, PORT), -EINPROGRESS);
	assert_int_equal(gv_connect(b, c2, 3, PORT), -EINPROGRESS);
	wire_run(&w, 100);
	assert_true(gv_poll_events(b, c1) & GV_POLLOUT);
	/* Data sent to a not-yet-accepted connection is kept for it. */
	assert_int_equal(gv_send(b, c1, "early", 5, false), 5);
	wire_run(&w, 100);
	assert_int_equal(gv_close(a, l), 0);
	wire_run(&w, 100);
	assert_int_equal(gv_sock_error(b, c1), -ECONNRESET);
	assert_int_equal(gv_sock_error(b, c2), -ECONNRESET);
	/* The table is empty again on the listening side. */
	for (int i = 0; i < 8; i++)
		assert_int_equal(gv_socket(a, GV_SOCK_STREAM), i);
	wire_fini(&w);
}

/* ---- shutdown and close ---- */

static void test_shutdown_eof(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	int s, c, s2;
	char buf[16];

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_STREAM, &s, &c);
	assert_int_equal(gv_send(b, c, "last", 4, false), 4);
	assert_int_equal(gv_shutdown(b, c, GV_SHUT_WR), 0);
	assert_int_equal(gv_send(b, c, "x", 1, false), -EPIPE);
	wire_run(&w, 100);
	/* Data first, then end of stream, and it stays at end of stream. */
	assert_true(gv_poll_events(a, s) & GV_POLLRDHUP);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), 4);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), 0);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), 0);
	/* The other direction still works. */
	assert_int_equal(gv_send(a, s, "back", 4, false), 4);
	wire_run(&w, 100);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, NULL), 4);
	assert_memory_equal(buf, "back", 4);
	/* The reader shuts down reading: the writer gets EPIPE. */
	assert_int_equal(gv_shutdown(b, c, GV_SHUT_RD), 0);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, NULL), 0);
	wire_run(&w, 100);
	assert_int_equal(gv_send(a, s, "more", 4, false), -EPIPE);
	/* Both directions of b are shut: a sees that, b's close ends it, a's slot
	 * is freed once a closes too. */
	assert_int_equal(gv_close(b, c), 0);
	wire_run(&w, 100);
	assert_int_equal(gv_close(a, s), 0);
	wire_run(&w, 100);
	/* Everything is free again: the same ids come back. */
	s2 = gv_socket(a, GV_SOCK_STREAM);
	assert_true(s2 >= 0 && s2 <= s);
	assert_int_equal(gv_shutdown(a, s2, GV_SHUT_WR), -ENOTCONN);
	wire_fini(&w);
}

static void test_close_with_data_in_flight(void **state)
{
	static uint8_t big[60000], rx[70000];
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	int s, c, r;
	uint32_t got = 0;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_STREAM, &s, &c);
	for (uint32_t i = 0; i < sizeof(big); i++)
		big[i] = pat(i, 77);
	/* Sent and closed before the wire moved anything: all of it still arrives,
	 * then end of stream. */
	assert_int_equal(gv_send(b, c, big, sizeof(big), false), (int)sizeof(big));
	assert_int_equal(gv_close(b, c), 0);
	assert_int_equal(gv_send(b, c, big, 1, false), -EINVAL);
	wire_run(&w, 1000);
	while ((r = gv_recv(a, s, rx + got, sizeof(rx) - got, 0, NULL)) > 0)
		got += (uint32_t)r;
	assert_int_equal(r, 0);
	assert_int_equal(got, sizeof(big));
	assert_memory_equal(rx, big, sizeof(big));
	assert_int_equal(gv_send(a, s, "x", 1, false), -EPIPE);
	assert_int_equal(gv_close(a, s), 0);
	wire_run(&w, 100);
	/* b lingered until a's RST: its slot is free now. */
	assert_int_equal(gv_next_deadline(b), UINT64_MAX);

	/* The receiver closes with unread data: the sender sees its peer gone. */
	pair(&w, GV_SOCK_STREAM, &s, &c);
	assert_int_equal(gv_send(b, c, big, 1000, false), 1000);
	wire_run(&w, 100);
	assert_int_equal(gv_close(a, s), 0);
	wire_run(&w, 100);
	assert_int_equal(gv_send(b, c, big, 10, false), -EPIPE);
	assert_int_equal(gv_recv(b, c, rx, 10, 0, NULL), 0);
	assert_true(gv_poll_events(b, c) & GV_POLLHUP);
	gv_close(b, c);
	wire_run(&w, 100);

	/* A peer that never answers our SHUTDOWN: RST after the linger timeout. */
	pair(&w, GV_SOCK_STREAM, &s, &c);
	w.drop = true;
	assert_int_equal(gv_close(b, c), 0);
	wire_run(&w, 100);
	assert_true(gv_next_deadline(b) != UINT64_MAX);
	w.now += 2000000001ull;
	unsigned int rst = w.c[1].sent_ops[VSOCK_OP_RST];

	wire_run(&w, 100);
	assert_int_equal(w.c[1].sent_ops[VSOCK_OP_RST], rst + 1);
	assert_int_equal(gv_next_deadline(b), UINT64_MAX);
	wire_fini(&w);
}

static void test_reset_by_peer(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	int s, c;
	uint8_t hb[GV_HDR_SIZE];
	char buf[8];
	uint32_t lp;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_STREAM, &s, &c);
	assert_int_equal(gv_send(a, s, "abc", 3, false), 3);
	wire_run(&w, 100);
	gv_sock_name(b, c, &lp, NULL, NULL);
	struct vsock_hdr h = { .src_cid = 3, .dst_cid = 4, .src_port = PORT, .dst_port = lp,
			       .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST };

	vsock_hdr_encode(&h, hb);
	assert_int_equal(wire_inject(&w.c[1], hb, sizeof(hb), sizeof(hb)), 1);
	assert_true(gv_process(b) >= 0);
	/* Queued data is still readable, then the reset, then end. */
	assert_true(gv_poll_events(b, c) & GV_POLLERR);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, NULL), 3);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, NULL), -ECONNRESET);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, NULL), 0);
	assert_int_equal(gv_send(b, c, buf, 1, false), -EPIPE);
	wire_fini(&w);
}

static void test_replies_wait_for_tx_room(void **state)
{
	/* The broker stops completing TX chains: RST replies and a RESPONSE queue up
	 * (32 RSTs at most, the rest dropped and counted) and go out in order once
	 * the ring drains; nothing is lost that was promised. */
	uint8_t pkt[GV_HDR_SIZE];
	struct wire w;
	struct wire_opts o = { .lp = { .queue_size = 16, .tx_payload = 4096 } };
	struct gv_stack *a, *b;
	struct gv_stats st;
	int l, c, s2, n = 0;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	l = gv_socket(a, GV_SOCK_STREAM);
	assert_int_equal(gv_listen(a, l, PORT, 1), 0);
	w.hold = true;
	struct vsock_hdr h = { .src_cid = 4, .dst_cid = 3, .src_port = 7, .dst_port = 4242,
			       .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW };

	vsock_hdr_encode(&h, pkt);
	/* 16 fill the TX ring, 32 wait, 4 are dropped. */
	while (n < 52) {
		int r = wire_inject(&w.c[0], pkt, sizeof(pkt), sizeof(pkt));

		if (r == 1) {
			n++;
			continue;
		}
		assert_int_equal(r, 0);
		assert_true(gv_process(a) >= 0);
	}
	assert_true(gv_process(a) >= 0);
	gv_get_stats(a, &st);
	assert_int_equal(st.rx_no_sock, 52);
	assert_int_equal(st.rst_dropped, 4);
	assert_int_equal(st.tx_packets, 16);
	/* A connection request meanwhile: its RESPONSE waits behind the RSTs. */
	c = gv_socket(b, GV_SOCK_STREAM);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EINPROGRESS);
	w.hold = false;
	wire_move(&w, &w.c[1], &w.c[0]);
	w.hold = true;
	assert_true(gv_process(a) >= 0);
	assert_false(gv_poll_events(b, c) & GV_POLLOUT);
	/* Accepted and closed at once, still before the RESPONSE could go: the
	 * peer must see RESPONSE then SHUTDOWN (connected, then end of stream),
	 * never a SHUTDOWN for a connection it does not have yet. */
	s2 = gv_accept(a, l, NULL, NULL);
	assert_true(s2 >= 0);
	assert_int_equal(gv_send(a, s2, "x", 1, false), -EAGAIN);
	assert_int_equal(gv_close(a, s2), 0);
	w.hold = false;
	wire_run(&w, 1000);
	gv_get_stats(a, &st);
	assert_int_equal(w.c[0].sent_ops[VSOCK_OP_RST], 48);
	assert_int_equal(w.c[0].sent_ops[VSOCK_OP_RESPONSE], 1);
	assert_int_equal(w.c[0].sent_ops[VSOCK_OP_SHUTDOWN], 1);
	assert_int_equal(gv_sock_error(b, c), 0);
	assert_int_equal(gv_recv(b, c, pkt, sizeof(pkt), 0, NULL), 0);
	assert_int_equal(gv_send(b, c, "x", 1, false), -EPIPE);
	wire_fini(&w);
}

/* An application's connect loop (baremetal/rt/app.c conn_step): connect, wait for
 * the 2 s timeout, close, retry. The broker holds every TX chain meanwhile (a
 * destination that takes nothing), so the ring fills with REQUESTs and the RSTs of
 * the attempts that timed out. Closed sockets must not keep their slots for the
 * control packets still owed: a REQUEST that never left needs no RST, and an RST the
 * ring cannot take yet waits in the stack's RST queue, not in a socket slot. */
static void test_connect_retries_while_tx_held(void **state)
{
	uint8_t pkt[GV_HDR_SIZE];
	struct wire w;
	struct wire_opts o = { .lp = { .queue_size = 16, .tx_payload = 4096 },
			       .max_sockets = 4 };
	struct gv_stack *a, *b;
	struct gv_stats st;
	struct gv_tx_info ti;
	struct gv_slot_info si;
	int l, c;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	w.hold = true;
	/* One RST reply first, so that the ring fills after a REQUEST, before its RST. */
	struct vsock_hdr h = { .src_cid = 3, .dst_cid = 4, .src_port = 7, .dst_port = 4242,
			       .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW };

	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, sizeof(pkt), sizeof(pkt)), 1);
	assert_true(gv_process(b) >= 0);
	for (int i = 0; i < 40; i++) {
		c = gv_socket(b, GV_SOCK_STREAM);
		assert_true(c >= 0); /* never -EMFILE */
		assert_int_equal(gv_connect(b, c, 3, PORT), -EINPROGRESS);
		wire_run(&w, 10);
		assert_true(gv_sock_connecting(b, c));
		w.now += 2000000000ull;
		wire_run(&w, 10);
		assert_false(gv_sock_connecting(b, c));
		assert_int_equal(gv_sock_error(b, c), -ETIMEDOUT);
		assert_int_equal(gv_close(b, c), 0);
		w.now += 100000000ull;
		wire_run(&w, 10);
		/* Nothing of the closed attempts holds a slot. */
		for (uint32_t j = 0; j < 4; j++) {
			assert_int_equal(gv_slot_info(b, j, &si), 0);
			assert_int_equal(si.state, GV_SLOT_FREE);
		}
	}
	assert_int_equal(gv_slot_info(b, 4, &si), -EINVAL);
	/* 1 RST reply, then 7 REQUEST + RST pairs and an 8th REQUEST fill the ring of
	 * 16; the 8th RST waits in the RST queue; the other 32 REQUESTs never left. */
	gv_get_stats(b, &st);
	assert_int_equal(st.tx_packets, 16);
	assert_int_equal(st.rst_parked, 1);
	gv_tx_info(b, &ti);
	assert_int_equal(ti.hdr_free, 0);
	assert_int_equal(ti.desc_free, 0);
	assert_int_equal(ti.rst_queued, 1);
	/* All 16 published, none taken back: the broker holds them. */
	assert_int_equal(ti.tx.published, 16);
	assert_int_equal(ti.tx.used, 0);
	assert_int_equal(ti.tx.taken, 0);
	/* The broker goes on: the queued RST goes out, then everything works again. */
	w.hold = false;
	wire_run(&w, 1000);
	assert_int_equal(w.c[1].sent_ops[VSOCK_OP_REQUEST], 8);
	assert_int_equal(w.c[1].sent_ops[VSOCK_OP_RST], 9);
	gv_tx_info(b, &ti);
	assert_int_equal(ti.hdr_free, 16);
	assert_int_equal(ti.desc_free, 16);
	assert_int_equal(ti.rst_queued, 0);
	assert_int_equal(ti.tx.published, 17);
	assert_int_equal(ti.tx.used, 17);
	assert_int_equal(ti.tx.taken, 17);
	l = gv_socket(a, GV_SOCK_STREAM);
	assert_int_equal(gv_listen(a, l, PORT, 1), 0);
	c = gv_socket(b, GV_SOCK_STREAM);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EINPROGRESS);
	wire_run(&w, 100);
	assert_false(gv_sock_connecting(b, c));
	assert_int_equal(gv_sock_error(b, c), 0);
	assert_true(gv_accept(a, l, NULL, NULL) >= 0);
	assert_int_equal(gv_slot_info(b, (uint32_t)c, &si), 0);
	assert_int_equal(si.state, GV_SLOT_CONNECTED);
	assert_int_equal(si.peer_cid, 3);
	assert_int_equal(si.peer_port, PORT);
	wire_fini(&w);
}

/* The RESPONSE is on the used ring when the cell next looks, but its clock has
 * passed the connect deadline meanwhile (the cell was not running): the answer that
 * came in time wins over the timeout. */
static void test_connect_answer_before_timeout(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	int l, c;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	l = gv_socket(a, GV_SOCK_SEQPACKET);
	assert_int_equal(gv_listen(a, l, PORT, 1), 0);
	c = gv_socket(b, GV_SOCK_SEQPACKET);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EINPROGRESS);
	assert_int_equal(wire_move(&w, &w.c[1], &w.c[0]), 2); /* REQUEST popped, delivered */
	assert_true(gv_process(a) > 0);                       /* RESPONSE sent */
	assert_int_equal(wire_move(&w, &w.c[0], &w.c[1]), 2); /* and delivered */
	w.now += 5000000000ull;
	assert_true(gv_process(b) >= 0);
	assert_false(gv_sock_connecting(b, c));
	assert_int_equal(gv_sock_error(b, c), 0);
	assert_true(gv_poll_events(b, c) & GV_POLLOUT);
	assert_int_equal(w.c[1].sent_ops[VSOCK_OP_RST], 0);
	wire_fini(&w);
}

/* ---- hostile broker ---- */

static void test_hostile_rx(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	struct gv_stats st;
	int s, c;
	uint8_t pkt[4096];
	char buf[64];
	uint32_t lp;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	pair(&w, GV_SOCK_STREAM, &s, &c);
	gv_sock_name(b, c, &lp, NULL, NULL);
	struct vsock_hdr good = { .src_cid = 3, .dst_cid = 4, .src_port = PORT, .dst_port = lp,
				  .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW, .len = 5,
				  .buf_alloc = 65536 };
	struct vsock_hdr h;

	memset(pkt, 'E', sizeof(pkt));
	/* Header len beyond the used length. */
	h = good;
	h.len = 100;
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, 144, 143), 1);
	/* Used length below a header. */
	vsock_hdr_encode(&good, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, 49, 43), 1);
	/* Unknown op, unknown type, wrong dst_cid, non-RW with payload. */
	h = good;
	h.op = 9;
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, 49, 49), 1);
	h = good;
	h.type = 3;
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, 49, 49), 1);
	h = good;
	h.dst_cid = 5;
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, 49, 49), 1);
	h = good;
	h.op = VSOCK_OP_CREDIT_UPDATE;
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, 49, 49), 1);
	assert_true(gv_process(b) >= 0);
	gv_get_stats(b, &st);
	assert_int_equal(st.rx_bad_len, 2);
	assert_int_equal(st.rx_bad_hdr, 4);
	/* None of it reached the socket. */
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, NULL), -EAGAIN);

	/* A packet for a connection that does not exist is answered by RST. */
	h = good;
	h.dst_port = 4242;
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[1], pkt, 49, 49), 1);
	assert_true(gv_process(b) >= 0);
	gv_get_stats(b, &st);
	assert_int_equal(st.rx_no_sock, 1);
	wire_run(&w, 100);
	assert_int_equal(w.c[1].sent_ops[VSOCK_OP_RST], 1);

	/* The connection still works after all that. */
	assert_int_equal(gv_send(a, s, "fine", 4, false), 4);
	wire_run(&w, 100);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, NULL), 4);
	assert_memory_equal(buf, "fine", 4);

	/* A peer that ignores our credit: the connection is reset, not overrun. */
	h = good;
	h.len = 4000;
	vsock_hdr_encode(&h, pkt);
	for (int i = 0; i < 17; i++)
		assert_int_equal(wire_inject(&w.c[1], pkt, 4044, 4044), 1);
	assert_true(gv_process(b) >= 0);
	gv_get_stats(b, &st);
	assert_int_equal(st.rx_bad_credit, 1);
	assert_true(gv_poll_events(b, c) & GV_POLLERR);
	assert_int_equal(gv_recv(b, c, buf, sizeof(buf), 0, NULL), 64);
	wire_fini(&w);
}

static void test_broken_ring_is_sticky(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *b;
	int s, c;
	uint8_t pkt[64] = { 0 };

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	b = w.c[1].st;
	pair(&w, GV_SOCK_STREAM, &s, &c);
	/* A used length larger than the buffer breaks the ring rules. */
	assert_int_equal(wire_inject(&w.c[1], pkt, sizeof(pkt), 5000), 1);
	assert_int_equal(gv_process(b), -EIO);
	assert_int_equal(gv_process(b), -EIO);
	assert_true(gv_poll_events(b, c) & GV_POLLERR);
	assert_int_equal(gv_sock_error(b, c), -ECONNRESET);
	assert_int_equal(gv_send(b, c, "x", 1, false), -EPIPE);
	c = gv_socket(b, GV_SOCK_STREAM);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EIO);
	wire_fini(&w);
}

static void test_event_idx_and_many_connections(void **state)
{
	/* With EVENT_IDX, several connections at once, interleaved. */
	struct wire w;
	struct wire_opts o = { .event_idx = true, .max_sockets = 8, .rcvbuf = 3000 };
	struct gv_stack *a, *b;
	int l, cs[6], ss[6];
	uint64_t sent[6] = { 0 }, got[6] = { 0 };
	uint8_t buf[4000];
	long rounds = 0;
	const uint64_t total = 200000;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	l = gv_socket(a, GV_SOCK_STREAM);
	assert_int_equal(gv_listen(a, l, PORT, 6), 0);
	for (int i = 0; i < 6; i++) {
		cs[i] = gv_socket(b, GV_SOCK_STREAM);
		assert_int_equal(gv_connect(b, cs[i], 3, PORT), -EINPROGRESS);
	}
	wire_run(&w, 100);
	for (int i = 0; i < 6; i++) {
		uint32_t lp, pp;

		ss[i] = gv_accept(a, l, NULL, &pp);
		assert_true(ss[i] >= 0);
		/* Accepted in connect order. */
		gv_sock_name(b, cs[i], &lp, NULL, NULL);
		assert_int_equal(pp, lp);
	}
	assert_int_equal(gv_socket(a, GV_SOCK_STREAM), 7);
	for (;;) {
		bool done = true;

		assert_true(++rounds < 100000);
		for (int i = 0; i < 6; i++) {
			uint32_t n = 1 + (uint32_t)((rounds * 31 + i * 7) % 3999);
			int r;

			if (sent[i] < total) {
				if (n > total - sent[i])
					n = (uint32_t)(total - sent[i]);
				for (uint32_t j = 0; j < n; j++)
					buf[j] = pat(sent[i] + j, (uint32_t)i);
				if ((r = gv_send(b, cs[i], buf, n, false)) > 0)
					sent[i] += (uint32_t)r;
			}
			while ((r = gv_recv(a, ss[i], buf, sizeof(buf), 0, NULL)) > 0) {
				for (int j = 0; j < r; j++)
					assert_int_equal(buf[j], pat(got[i] + (uint64_t)j, (uint32_t)i));
				got[i] += (uint32_t)r;
			}
			if (got[i] < total)
				done = false;
		}
		if (done)
			break;
		wire_run(&w, 2);
	}
	/* EVENT_IDX suppressed some kicks: fewer kicks than packets. */
	struct gv_stats st;

	gv_get_stats(b, &st);
	assert_true(w.c[1].kicks[GV_QUEUE_TX] < st.tx_packets);
	wire_fini(&w);
}

int main(int argc, char **argv)
{
	/* --long: only the bulk transfer, with 64 MiB per budget. */
	const struct CMUnitTest long_tests[] = {
		cmocka_unit_test(test_stream_integrity),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_errno_values),
		cmocka_unit_test(test_config_checked),
		cmocka_unit_test(test_connect_accept_exchange),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_stream_integrity),
		cmocka_unit_test(test_stream_small_pieces),
		cmocka_unit_test(test_credit_wrap),
		cmocka_unit_test(test_stream_both_ways),
		cmocka_unit_test(test_seqpacket_boundaries),
		cmocka_unit_test(test_seqpacket_flow),
		cmocka_unit_test(test_seqpacket_credit_request),
		cmocka_unit_test(test_seqpacket_slot_reuse),
		cmocka_unit_test(test_seqpacket_waits_for_tx_slots),
		cmocka_unit_test(test_slow_socket_does_not_starve),
		cmocka_unit_test(test_seqpacket_oversize_from_peer),
		cmocka_unit_test(test_seqpacket_split_sender),
		cmocka_unit_test(test_seqpacket_split_sender_cell_sizes),
		cmocka_unit_test(test_listener_close_resets_waiting),
		cmocka_unit_test(test_shutdown_eof),
		cmocka_unit_test(test_close_with_data_in_flight),
		cmocka_unit_test(test_reset_by_peer),
		cmocka_unit_test(test_replies_wait_for_tx_room),
		cmocka_unit_test(test_connect_retries_while_tx_held),
		cmocka_unit_test(test_connect_answer_before_timeout),
		cmocka_unit_test(test_hostile_rx),
		cmocka_unit_test(test_broken_ring_is_sticky),
		cmocka_unit_test(test_event_idx_and_many_connections),
	};

	if (argc > 1 && strcmp(argv[1], "--long") == 0) {
		stream_mib = 64;
		return cmocka_run_group_tests(long_tests, NULL, NULL);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
