/* gvsock zero-copy tests: TX loans and held RX buffers, over the same wire as
 * test_gvsock.c (test_gvsock_wire.h). */
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

static uint8_t pat(uint64_t i)
{
	return (uint8_t)(i * 131u + (i >> 8));
}

/* Cell 0 listens on PORT with `hold` buffers of zero copy, cell 1 connects. */
static void zpair(struct wire *w, unsigned int type, uint32_t hold, int *srv, int *cli)
{
	struct gv_stack *a = w->c[0].st, *b = w->c[1].st;
	int l = gv_socket(a, type), c;

	assert_true(l >= 0);
	assert_int_equal(gv_set_zerocopy(a, l, hold), 0);
	assert_int_equal(gv_listen(a, l, PORT, 4), 0);
	c = gv_socket(b, type);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EINPROGRESS);
	wire_run(w, 100);
	*srv = gv_accept(a, l, NULL, NULL);
	assert_true(*srv >= 0);
	assert_int_equal(gv_close(a, l), 0);
	*cli = c;
}

static bool in_region(const struct cell *c, const void *p, size_t n)
{
	const uint8_t *q = p;

	return q >= c->region && q + n <= c->region + c->region_size;
}

/* STREAM: loan/commit on one side, borrow/release on the other, the bytes intact
 * and read in place from the RX buffers, in pieces the wire cuts small. */
static void test_zc_stream(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	uint64_t sent = 0, got = 0, total = 1u << 20;
	int s, c, inplace = 0;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	w.piece = 1000;
	a = w.c[0].st;
	b = w.c[1].st;
	zpair(&w, GV_SOCK_STREAM, 16, &s, &c);
	while (got < total) {
		void *p;
		const void *q;
		size_t n;
		int r = sent < total ? gv_loan(b, c, 6000, &p) : -EAGAIN;

		if (r > 0) {
			assert_true(in_region(&w.c[1], p, (size_t)r));
			for (int i = 0; i < r; i++)
				((uint8_t *)p)[i] = pat(sent + (uint64_t)i);
			/* Commit less than granted: the rest of the loan is simply unused. */
			r = r > 7 ? r - 7 : r;
			assert_int_equal(gv_commit(b, c, (size_t)r, false), r);
			sent += (uint64_t)r;
		}
		wire_run(&w, 4);
		while ((r = gv_borrow(a, s, &q, &n, NULL)) > 0) {
			size_t take = n > 300 ? n / 2 : n; /* release in parts too */

			inplace += in_region(&w.c[0], q, n);
			for (size_t i = 0; i < take; i++)
				assert_int_equal(((const uint8_t *)q)[i], pat(got + i));
			assert_int_equal(gv_release(a, s, take), 0);
			got += take;
		}
		assert_int_equal(r, -EAGAIN);
	}
	assert_true(inplace > 0);
	assert_int_equal(gv_release(a, s, 1), -EINVAL); /* nothing borrowed */
	wire_fini(&w);
}

/* A recv between a borrow and its release ends the borrow: the release is refused,
 * and the bytes that follow, and another connection's, are still read intact and
 * in order (a release of the old length used to consume the next piece past its
 * end and hand out the next RX buffers, another connection's). */
static void test_zc_recv_ends_borrow(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	uint8_t out[1000], buf[2000];
	const void *q;
	size_t n;
	int s, c, s2, c2;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	zpair(&w, GV_SOCK_STREAM, 16, &s, &c);
	zpair(&w, GV_SOCK_STREAM, 16, &s2, &c2);
	for (int i = 0; i < 1000; i++)
		out[i] = pat((uint64_t)i);
	assert_int_equal(gv_send(b, c, out, sizeof(out), false), (int)sizeof(out));
	wire_run(&w, 20);
	memset(out, 'S', sizeof(out));
	assert_int_equal(gv_send(b, c2, out, sizeof(out), false), (int)sizeof(out));
	wire_run(&w, 20);
	assert_int_equal(gv_borrow(a, s, &q, &n, NULL), 1000);
	assert_int_equal(gv_recv(a, s, buf, 600, 0, NULL), 600);
	assert_int_equal(gv_release(a, s, 1000), -EINVAL);
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), 400);
	for (int i = 0; i < 400; i++)
		assert_int_equal(buf[i], pat(600 + (uint64_t)i));
	assert_int_equal(gv_recv(a, s, buf, sizeof(buf), 0, NULL), -EAGAIN);
	assert_int_equal(gv_recv(a, s2, buf, sizeof(buf), 0, NULL), 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf[i], 'S');
	wire_fini(&w);
}

/* A loan never committed goes back on close: with one TX slot, a second socket can
 * send only once the first one's loan is returned. */
static void test_zc_loan_returned_on_close(void **state)
{
	struct wire w;
	struct wire_opts o = { .lp = { .tx_slots = 1 } };
	struct gv_stack *b;
	int s, c, s2, c2, c3;
	unsigned int wakes;
	void *p;
	char m[100] = "x";

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	b = w.c[1].st;
	zpair(&w, GV_SOCK_STREAM, 0, &s, &c);
	{
		struct gv_stack *a = w.c[0].st;
		int l = gv_socket(a, GV_SOCK_STREAM);

		assert_int_equal(gv_listen(a, l, PORT + 1, 1), 0);
		c2 = gv_socket(b, GV_SOCK_STREAM);
		assert_int_equal(gv_connect(b, c2, 3, PORT + 1), -EINPROGRESS);
		wire_run(&w, 100);
		s2 = gv_accept(a, l, NULL, NULL);
		assert_true(s2 >= 0);
	}
	assert_int_equal(gv_loan(b, c, 100, &p), 100);
	assert_int_equal(gv_loan(b, c, 100, &p), -EALREADY);
	assert_int_equal(gv_send(b, c2, m, sizeof(m), false), -EAGAIN);
	assert_int_equal(gv_close(b, c), 0);
	assert_int_equal(gv_send(b, c2, m, sizeof(m), false), (int)sizeof(m));
	wire_run(&w, 100);
	/* And a loan given back with a zero-length commit, which wakes a socket that
	 * waits for that room (no completion would). */
	c3 = gv_socket(b, GV_SOCK_STREAM);
	assert_int_equal(gv_connect(b, c3, 3, PORT + 1), -EINPROGRESS);
	wire_run(&w, 100);
	assert_int_equal(gv_loan(b, c2, 10, &p), 10);
	assert_int_equal(gv_send(b, c3, m, 1, false), -EAGAIN);
	wakes = w.c[1].wakes;
	assert_int_equal(gv_commit(b, c2, 0, false), 0);
	assert_true(w.c[1].wakes > wakes);
	assert_int_equal(gv_commit(b, c2, 1, false), -EINVAL);
	assert_int_equal(gv_send(b, c3, m, 1, false), 1);
	wire_run(&w, 100);
	assert_int_equal(gv_send(b, c2, m, 1, false), 1);
	(void)s;
	wire_fini(&w);
}

/* A borrowed buffer stays out of the ring; every other RX buffer keeps cycling,
 * so another socket's traffic goes on through a ring of 8 buffers. */
static void test_zc_borrow_blocks_one_buffer(void **state)
{
	struct wire w;
	struct wire_opts o = { .lp = { .queue_size = 8 } };
	struct gv_stack *a, *b;
	int s, c, s2, c2, l;
	const void *q;
	size_t n;
	uint8_t m[512], r[512];

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	zpair(&w, GV_SOCK_SEQPACKET, 1, &s, &c);
	l = gv_socket(a, GV_SOCK_SEQPACKET);
	assert_int_equal(gv_listen(a, l, PORT + 1, 1), 0);
	c2 = gv_socket(b, GV_SOCK_SEQPACKET);
	assert_int_equal(gv_connect(b, c2, 3, PORT + 1), -EINPROGRESS);
	wire_run(&w, 100);
	s2 = gv_accept(a, l, NULL, NULL);
	assert_true(s2 >= 0);

	memset(m, 'H', sizeof(m));
	assert_int_equal(gv_send(b, c, m, 100, false), 100);
	wire_run(&w, 100);
	assert_int_equal(gv_borrow(a, s, &q, &n, NULL), 100);
	/* Held one; the next message on the same socket goes to its ring. */
	memset(m, 'I', sizeof(m));
	assert_int_equal(gv_send(b, c, m, 50, false), 50);
	for (int i = 0; i < 200; i++) {
		memset(m, i, sizeof(m));
		assert_int_equal(gv_send(b, c2, m, sizeof(m), false), (int)sizeof(m));
		wire_run(&w, 100);
		assert_int_equal(gv_recv(a, s2, r, sizeof(r), 0, NULL), (int)sizeof(m));
		assert_memory_equal(r, m, sizeof(m));
	}
	assert_int_equal(((const uint8_t *)q)[0], 'H');
	assert_int_equal(gv_release(a, s, n), 0);
	assert_int_equal(gv_recv(a, s, r, sizeof(r), 0, NULL), 50);
	assert_int_equal(r[0], 'I');
	wire_fini(&w);
}

/* SEQPACKET: pieces carry EOM on a message's last one (and EOR when sent so);
 * gv_recv on a holding socket still returns whole messages, truncating alike. */
static void test_zc_seqpacket(void **state)
{
	static const uint32_t sizes[] = { 1, 44, 999, 1000, 1001, 5000, 20000 };
	static uint8_t tx[20000], rx[20000];
	struct wire w;
	struct wire_opts o = { .rcvbuf = 200u << 10 };
	struct gv_stack *a, *b;
	int s, c;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	w.piece = 1000;
	a = w.c[0].st;
	b = w.c[1].st;
	zpair(&w, GV_SOCK_SEQPACKET, 64, &s, &c);
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t got = 0, pieces = 0;
		unsigned int fl = 0;
		const void *q;
		size_t n;

		for (uint32_t j = 0; j < sizes[i]; j++)
			tx[j] = pat(j + i);
		assert_int_equal(gv_send(b, c, tx, sizes[i], i % 2), (int)sizes[i]);
		wire_run(&w, 1000);
		do {
			assert_true(gv_borrow(a, s, &q, &n, &fl) > 0);
			memcpy(rx + got, q, n);
			got += (uint32_t)n;
			pieces++;
			assert_int_equal(gv_release(a, s, n), 0);
		} while (!(fl & GV_MSG_EOM));
		assert_int_equal(got, sizes[i]);
		assert_int_equal(pieces, (sizes[i] + 999) / 1000);
		assert_int_equal(!!(fl & GV_MSG_EOR), i % 2);
		assert_memory_equal(rx, tx, sizes[i]);
		assert_int_equal(gv_borrow(a, s, &q, &n, NULL), -EAGAIN);
	}
	/* Copying reads on the same socket: whole messages, truncation, EOR. */
	for (unsigned int i = 0; i < 3; i++) {
		unsigned int fl;

		memset(tx, 'a' + (int)i, 5000);
		assert_int_equal(gv_send(b, c, tx, 5000, true), 5000);
		wire_run(&w, 1000);
		assert_int_equal(gv_recv(a, s, rx, i == 1 ? 10 : 6000, 0, &fl),
				 i == 1 ? 10 : 5000);
		assert_int_equal(fl, GV_MSG_EOR | (i == 1 ? GV_MSG_TRUNC : 0));
		assert_int_equal(rx[0], 'a' + (int)i);
	}
	assert_int_equal(gv_recv(a, s, rx, sizeof(rx), 0, NULL), -EAGAIN);
	wire_fini(&w);
}

/* A hostile broker's packet is rejected before anything holds it: the buffer goes
 * back, nothing can be borrowed, good traffic goes on. */
static void test_zc_hostile(void **state)
{
	struct wire w;
	struct wire_opts o = { 0 };
	struct gv_stack *a, *b;
	struct gv_stats st;
	uint8_t pkt[4096];
	uint32_t lp;
	int s, c;
	const void *q;
	size_t n;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	zpair(&w, GV_SOCK_STREAM, 8, &s, &c);
	gv_sock_name(b, c, &lp, NULL, NULL);
	struct vsock_hdr h = { .src_cid = 4, .dst_cid = 3, .src_port = lp, .dst_port = PORT,
			       .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW, .len = 100,
			       .buf_alloc = 65536 };

	memset(pkt, 'E', sizeof(pkt));
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[0], pkt, 144, 143), 1); /* len beyond used */
	h.len = 5;
	h.dst_cid = 9; /* not ours */
	vsock_hdr_encode(&h, pkt);
	assert_int_equal(wire_inject(&w.c[0], pkt, 49, 49), 1);
	for (int i = 0; i < 200; i++) {
		assert_true(gv_process(a) >= 0);
		assert_int_equal(gv_borrow(a, s, &q, &n, NULL), -EAGAIN);
		if (i == 0)
			assert_int_equal(gv_send(b, c, "ok", 2, false), 2);
		wire_run(&w, 10);
		if (gv_borrow(a, s, &q, &n, NULL) == 2)
			break;
	}
	assert_int_equal(gv_borrow(a, s, &q, &n, NULL), 2);
	assert_memory_equal(q, "ok", 2);
	assert_int_equal(gv_release(a, s, 2), 0);
	gv_get_stats(a, &st);
	assert_int_equal(st.rx_bad_len, 1);
	assert_int_equal(st.rx_bad_hdr, 1);
	wire_fini(&w);
}

/* TX payload slots come back oldest-freed first: loan after loan, each sent and
 * completed before the next, walks every slot in turn (a stack would hand out the
 * slot just completed again and again); a loan given back unused is the next one
 * handed out. */
static uint32_t slot_of(const struct cell *c, const void *p)
{
	return (uint32_t)(((const uint8_t *)p - (c->region + c->lay.tx_bufs)) / c->lay.tx_payload);
}

static void test_zc_slots_oldest_first(void **state)
{
	struct wire w;
	struct wire_opts o = { .lp = { .tx_slots = 5 } };
	struct gv_stack *a, *b;
	uint8_t m[64];
	int s, c;
	void *p;

	(void)state;
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	assert_int_equal(w.c[1].lay.tx_slot_count, 5);
	zpair(&w, GV_SOCK_STREAM, 0, &s, &c);
	for (uint32_t i = 0; i < 12; i++) {
		assert_int_equal(gv_loan(b, c, 10, &p), 10);
		assert_int_equal(slot_of(&w.c[1], p), i % 5);
		memset(p, (int)i, 10);
		assert_int_equal(gv_commit(b, c, 10, false), 10);
		wire_run(&w, 100);
		assert_int_equal(gv_recv(a, s, m, sizeof(m), 0, NULL), 10);
		assert_int_equal(m[9], (uint8_t)i);
	}
	/* Slot 2 is next; given back unused, it is next again. */
	assert_int_equal(gv_loan(b, c, 10, &p), 10);
	assert_int_equal(slot_of(&w.c[1], p), 2);
	assert_int_equal(gv_commit(b, c, 0, false), 0);
	assert_int_equal(gv_loan(b, c, 10, &p), 10);
	assert_int_equal(slot_of(&w.c[1], p), 2);
	assert_int_equal(gv_commit(b, c, 0, false), 0);
	/* An ordinary send takes the same ring. */
	assert_int_equal(gv_send(b, c, m, 10, false), 10);
	assert_int_equal(gv_loan(b, c, 10, &p), 10);
	assert_int_equal(slot_of(&w.c[1], p), 3);
	assert_int_equal(gv_commit(b, c, 0, false), 0);
	wire_fini(&w);
}

/* Notifications per message, zero copy against copying, for one fixed workload: each
 * round the sender puts three 64 KiB messages on the ring, the broker delivers them
 * (one piece each) and the receiver drains what it has. Both receivers are signalled
 * once per drain, not once per piece, and neither sender is signalled for its TX
 * completions (it never waits for room); zero copy kicks the broker no more often for
 * its reposted buffers than copying does. Counts, not time. */
struct nf_counts {
	unsigned int msgs, rx_signals, tx_signals, rx_kicks;
};

static void notify_counts(bool zc, unsigned int rounds, struct nf_counts *out)
{
	static uint8_t m[65536];
	struct wire w;
	struct wire_opts o = { .event_idx = true, .rcvbuf = 4u << 20, .region = 16u << 20,
			       .lp = { .rx_buf_size = 65536 + GV_HDR_SIZE, .queue_size = 128 } };
	struct gv_stack *a, *b;
	int s, c, r;

	memset(out, 0, sizeof(*out));
	assert_int_equal(wire_init(&w, &o), 0);
	a = w.c[0].st;
	b = w.c[1].st;
	zpair(&w, GV_SOCK_STREAM, zc ? 64 : 0, &s, &c);
	(void)vq_device_should_notify(&w.c[0].rx);
	(void)vq_device_should_notify(&w.c[1].tx);
	w.c[0].kicks[GV_QUEUE_RX] = 0;
	for (unsigned int i = 0; i < rounds; i++) {
		for (int k = 0; k < 3; k++) {
			void *p;

			if (zc) {
				assert_int_equal(gv_loan(b, c, sizeof(m), &p), (int)sizeof(m));
				memset(p, k, sizeof(m));
				r = gv_commit(b, c, sizeof(m), false);
			} else {
				r = gv_send(b, c, m, sizeof(m), false);
			}
			assert_int_equal(r, (int)sizeof(m));
			out->msgs++;
		}
		wire_move(&w, &w.c[1], &w.c[0]);
		wire_move(&w, &w.c[0], &w.c[1]);
		out->rx_signals += vq_device_should_notify(&w.c[0].rx) ? 1u : 0u;
		out->tx_signals += vq_device_should_notify(&w.c[1].tx) ? 1u : 0u;
		gv_process(a);
		gv_process(b);
		if (zc) {
			const void *q;
			size_t n;

			while (gv_borrow(a, s, &q, &n, NULL) > 0)
				assert_int_equal(gv_release(a, s, n), 0);
		} else {
			while (gv_recv(a, s, m, sizeof(m), 0, NULL) > 0)
				;
		}
		gv_process(a);
		gv_process(b);
	}
	out->rx_kicks = w.c[0].kicks[GV_QUEUE_RX];
	wire_fini(&w);
}

static void test_zc_batches_like_copying(void **state)
{
	struct nf_counts cp, zc;
	const unsigned int rounds = 100;

	(void)state;
	notify_counts(false, rounds, &cp);
	notify_counts(true, rounds, &zc);
	assert_int_equal(cp.msgs, 3 * rounds);
	assert_int_equal(zc.msgs, 3 * rounds);
	assert_int_equal(cp.rx_signals, rounds);
	assert_int_equal(zc.rx_signals, rounds);
	assert_int_equal(cp.tx_signals, 0);
	assert_int_equal(zc.tx_signals, 0);
	assert_true(zc.rx_kicks <= cp.rx_kicks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zc_stream),
		cmocka_unit_test(test_zc_recv_ends_borrow),
		cmocka_unit_test(test_zc_loan_returned_on_close),
		cmocka_unit_test(test_zc_borrow_blocks_one_buffer),
		cmocka_unit_test(test_zc_seqpacket),
		cmocka_unit_test(test_zc_hostile),
		cmocka_unit_test(test_zc_slots_oldest_first),
		cmocka_unit_test(test_zc_batches_like_copying),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
