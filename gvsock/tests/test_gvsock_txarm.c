/* gvsock TX completion signals (tx_arm.c), over the wire of test_gvsock_wire.h with
 * EVENT_IDX: the broker is asked to signal TX completions only while a send, a loan
 * or a poll for POLLOUT found no room, and then it is asked before the caller could
 * sleep. Counts of signals the device would send, not time. */
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

/* Cell 0 listens on PORT, cell 1 connects: the sender is cell 1. */
static void pair(struct wire *w, int *srv, int *cli)
{
	struct gv_stack *a = w->c[0].st, *b = w->c[1].st;
	int l = gv_socket(a, GV_SOCK_STREAM), c;

	assert_true(l >= 0);
	assert_int_equal(gv_listen(a, l, PORT, 4), 0);
	c = gv_socket(b, GV_SOCK_STREAM);
	assert_int_equal(gv_connect(b, c, 3, PORT), -EINPROGRESS);
	wire_run(w, 100);
	*srv = gv_accept(a, l, NULL, NULL);
	assert_true(*srv >= 0);
	assert_int_equal(gv_close(a, l), 0);
	*cli = c;
	/* The handshake's completions are not what the tests count. */
	(void)vq_device_should_notify(&w->c[0].tx);
	(void)vq_device_should_notify(&w->c[1].tx);
}

/* One round of the broker and both cells; the TX completion signals the device
 * owes the sender (cell 1) for what it completed in it, 0 or 1. */
static unsigned int round_signals(struct wire *w)
{
	unsigned int sig;

	wire_move(w, &w->c[0], &w->c[1]);
	wire_move(w, &w->c[1], &w->c[0]);
	/* The batch of TX completions just published, against the used_event the
	 * sender left at its last pass. */
	sig = vq_device_should_notify(&w->c[1].tx) ? 1u : 0u;
	(void)vq_device_should_notify(&w->c[0].tx);
	gv_process(w->c[0].st);
	gv_process(w->c[1].st);
	return sig;
}

static void open_wire(struct wire *w)
{
	struct wire_opts o = { .event_idx = true, .rcvbuf = 1u << 20 };

	assert_int_equal(wire_init(w, &o), 0);
}

/* A sender that always finds room (the receiver keeps up) costs no TX signal. */
static void test_no_signal_without_waiter(void **state)
{
	static uint8_t buf[4096], in[8192];
	struct wire w;
	unsigned int sig = 0, rounds = 0;
	uint64_t got = 0, total = 4u << 20;
	int s, c, r;

	(void)state;
	open_wire(&w);
	pair(&w, &s, &c);
	memset(buf, 0x5A, sizeof(buf));
	while (got < total) {
		assert_int_equal(gv_send(w.c[1].st, c, buf, sizeof(buf), false), (int)sizeof(buf));
		sig += round_signals(&w);
		rounds++;
		while ((r = gv_recv(w.c[0].st, s, in, sizeof(in), 0, NULL)) > 0)
			got += (uint64_t)r;
	}
	/* Before tx_arm.c every pass armed the ring: one signal per round. */
	assert_true(rounds >= 1000);
	assert_int_equal(sig, 0);
	wire_fini(&w);
}

/* Fills the TX ring with the broker holding back (loans or sends), then lets the
 * broker complete everything without the sender running: the device must owe it a
 * signal, or a sender asleep on -EAGAIN would never wake. */
static void blocked_then_signalled(bool loan, bool by_poll)
{
	static uint8_t buf[4096];
	struct wire w;
	struct gv_stack *b;
	unsigned int sig;
	int s, c, r, n = 0;

	open_wire(&w);
	pair(&w, &s, &c);
	b = w.c[1].st;
	w.hold = true;
	for (;;) {
		void *p;

		if (loan) {
			r = gv_loan(b, c, sizeof(buf), &p);
			if (r > 0)
				r = gv_commit(b, c, (size_t)r, false);
		} else {
			r = gv_send(b, c, buf, sizeof(buf), false);
		}
		if (r < 0)
			break;
		n++;
		assert_true(n < 10000);
	}
	assert_int_equal(r, -EAGAIN);
	if (by_poll)
		assert_false(gv_poll_events(b, c) & GV_POLLOUT);
	/* The sender would sleep now; the broker completes its chains. */
	w.hold = false;
	wire_move(&w, &w.c[1], &w.c[0]);
	sig = vq_device_should_notify(&w.c[1].tx) ? 1u : 0u;
	assert_int_equal(sig, 1);
	/* Woken, it finds room again; once it does not wait, signals stop. */
	gv_process(b);
	assert_true(gv_poll_events(b, c) & GV_POLLOUT);
	while (gv_recv(w.c[0].st, s, buf, sizeof(buf), 0, NULL) > 0)
		;
	gv_process(w.c[0].st);
	assert_int_equal(gv_send(b, c, buf, 100, false), 100);
	assert_int_equal(round_signals(&w), 0);
	wire_fini(&w);
}

static void test_send_waiter_signalled(void **state)
{
	(void)state;
	blocked_then_signalled(false, false);
}

static void test_loan_waiter_signalled(void **state)
{
	(void)state;
	blocked_then_signalled(true, false);
}

static void test_poll_waiter_signalled(void **state)
{
	(void)state;
	blocked_then_signalled(false, true);
}

/* Completions already on the used ring when the send runs out of room are taken
 * there and then: the send goes on instead of waiting for a signal that was never
 * asked for. */
static void test_pending_completions_reclaimed(void **state)
{
	static uint8_t buf[4096];
	struct wire w;
	struct gv_stack *b;
	int s, c, r, n = 0;

	(void)state;
	open_wire(&w);
	pair(&w, &s, &c);
	b = w.c[1].st;
	w.hold = true;
	while ((r = gv_send(b, c, buf, sizeof(buf), false)) > 0)
		n++;
	assert_int_equal(r, -EAGAIN);
	/* Completed behind the sender's back, no gv_process since. */
	w.hold = false;
	wire_move(&w, &w.c[1], &w.c[0]);
	assert_int_equal(gv_send(b, c, buf, sizeof(buf), false), (int)sizeof(buf));
	assert_true(n > 1);
	wire_fini(&w);
}

/* The used-buffer signals the device owes cell 0 (the receiver) after the sender's
 * message of `len` bytes is moved to it: 0 or 1. */
static unsigned int deliver_signals(struct wire *w, int c, unsigned int len)
{
	static const uint8_t buf[64];

	assert_int_equal(gv_send(w->c[1].st, c, buf, len, false), (int)len);
	wire_move(w, &w->c[1], &w->c[0]);
	return vq_device_should_notify(&w->c[0].rx) ? 1u : 0u;
}

/* gv_notify_hold: while a port's thread spins on the rings, the receiver is owed no
 * signal, even when another thread of the cell runs gv_process meanwhile (before,
 * every gv_process turned the notifications back on under the spinner); released,
 * the next gv_process turns them on and the next message is signalled again. */
static void test_notify_hold(void **state)
{
	static uint8_t in[64];
	struct wire w;
	unsigned int sig = 0;
	int s, c;

	(void)state;
	open_wire(&w);
	pair(&w, &s, &c);
	(void)vq_device_should_notify(&w.c[0].rx);
	gv_notify_hold(w.c[0].st, true);
	for (int k = 0; k < 20; k++) {
		sig += deliver_signals(&w, c, 16);
		gv_process(w.c[0].st); /* another thread of the cell pumps */
		gv_process(w.c[1].st);
		assert_int_equal(gv_recv(w.c[0].st, s, in, sizeof(in), 0, NULL), 16);
	}
	assert_int_equal(sig, 0);
	gv_notify_hold(w.c[0].st, false);
	assert_int_equal(gv_process(w.c[0].st), 0);
	assert_int_equal(deliver_signals(&w, c, 16), 1);
	wire_fini(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_signal_without_waiter),
		cmocka_unit_test(test_send_waiter_signalled),
		cmocka_unit_test(test_loan_waiter_signalled),
		cmocka_unit_test(test_poll_waiter_signalled),
		cmocka_unit_test(test_pending_completions_reclaimed),
		cmocka_unit_test(test_notify_hold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
