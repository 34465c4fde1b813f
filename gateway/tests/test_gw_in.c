/* The incoming side of the gateway (gw_in.c) without DDS or a broker: gw_in_main is
 * run with dds_* and rtvio_* replaced at link time (-Wl,--wrap, meson.build) by a
 * script of samples and a destination that records what it is sent. Samples come
 * from the network, so each case is one a forger or a stray publisher could make:
 * a number far ahead, an older incarnation, data that is no message of the flow. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "gateway.h"
#include "gw_sample.h"
#include "rtmsg.h"

#define MAXS 64
#define DATA 4096

/* ---- The script: samples taken one per dds_take, sends and closes recorded ---- */

static struct script {
	struct gw *g;
	rtvio_gw_sample s[MAXS];
	uint8_t data[MAXS][DATA];
	int ns, next;
	size_t sent_len[MAXS];
	uint64_t sent_seq[MAXS];	/* the sample each send came from */
	int nsent, nclosed, nsockets;
	size_t max_message;		/* rtvio_send: -EMSGSIZE above this */
} sc;

dds_entity_t __wrap_dds_create_waitset(dds_entity_t pp);
dds_entity_t __wrap_dds_create_readcondition(dds_entity_t rd, uint32_t mask);
dds_return_t __wrap_dds_waitset_attach(dds_entity_t ws, dds_entity_t e, dds_attach_t x);
dds_return_t __wrap_dds_waitset_wait(dds_entity_t ws, dds_attach_t *xs, size_t nxs,
				     dds_duration_t t);
dds_return_t __wrap_dds_take(dds_entity_t rd, void **buf, dds_sample_info_t *si, size_t bufsz,
			     uint32_t maxs);
dds_return_t __wrap_dds_return_loan(dds_entity_t e, void **buf, int32_t n);
dds_return_t __wrap_dds_delete(dds_entity_t e);
int __wrap_rtvio_socket(struct rtvio_cell *c, unsigned int type);
int __wrap_rtvio_connect(struct rtvio_cell *c, int id, uint64_t cid, uint32_t port, int ms);
ssize_t __wrap_rtvio_send(struct rtvio_cell *c, int id, const void *buf, size_t len,
			  unsigned int flags, int ms);
int __wrap_rtvio_close(struct rtvio_cell *c, int id);

dds_entity_t __wrap_dds_create_waitset(dds_entity_t pp)
{
	(void)pp;
	return 101;
}

dds_entity_t __wrap_dds_create_readcondition(dds_entity_t rd, uint32_t mask)
{
	(void)rd;
	(void)mask;
	return 102;
}

dds_return_t __wrap_dds_waitset_attach(dds_entity_t ws, dds_entity_t e, dds_attach_t x)
{
	(void)ws;
	(void)e;
	(void)x;
	return 0;
}

/* Data while the script lasts; then the gateway is told to stop. */
dds_return_t __wrap_dds_waitset_wait(dds_entity_t ws, dds_attach_t *xs, size_t nxs,
				     dds_duration_t t)
{
	(void)ws;
	(void)xs;
	(void)nxs;
	(void)t;
	if (sc.next < sc.ns)
		return 1;
	atomic_store(&sc.g->stop, true);
	return 0;
}

dds_return_t __wrap_dds_take(dds_entity_t rd, void **buf, dds_sample_info_t *si, size_t bufsz,
			     uint32_t maxs)
{
	(void)rd;
	(void)bufsz;
	(void)maxs;
	if (sc.next >= sc.ns)
		return 0;
	memset(si, 0, sizeof(*si));
	si[0].valid_data = true;
	buf[0] = &sc.s[sc.next++];
	return 1;
}

dds_return_t __wrap_dds_return_loan(dds_entity_t e, void **buf, int32_t n)
{
	(void)e;
	(void)buf;
	(void)n;
	return 0;
}

dds_return_t __wrap_dds_delete(dds_entity_t e)
{
	(void)e;
	return 0;
}

int __wrap_rtvio_socket(struct rtvio_cell *c, unsigned int type)
{
	(void)c;
	(void)type;
	return 10 + sc.nsockets++;
}

int __wrap_rtvio_connect(struct rtvio_cell *c, int id, uint64_t cid, uint32_t port, int ms)
{
	(void)c;
	(void)id;
	(void)cid;
	(void)port;
	(void)ms;
	return 0;
}

ssize_t __wrap_rtvio_send(struct rtvio_cell *c, int id, const void *buf, size_t len,
			  unsigned int flags, int ms)
{
	(void)c;
	(void)id;
	(void)buf;
	(void)flags;
	(void)ms;
	if (len > sc.max_message)
		return -EMSGSIZE;
	assert_true(sc.nsent < MAXS);
	sc.sent_len[sc.nsent] = len;
	sc.sent_seq[sc.nsent++] = sc.s[sc.next - 1].seq;
	return (ssize_t)len;
}

int __wrap_rtvio_close(struct rtvio_cell *c, int id)
{
	(void)c;
	(void)id;
	sc.nclosed++;
	return 0;
}

/* ---- Helpers ---------------------------------------------------------------- */

static struct gw g;
static struct rtvio_cell_cfg cells[2];
static struct rtvio_flow_cfg flow;
static struct gw_flow f;

static int setup(void **state)
{
	(void)state;
	memset(&sc, 0, sizeof(sc));
	memset(&g, 0, sizeof(g));
	memset(&flow, 0, sizeof(flow));
	memset(&f, 0, sizeof(f));
	sc.g = &g;
	sc.max_message = 1u << 20;
	cells[1].cid = 7;
	g.cfg.cells = cells;
	g.cfg.ncells = 2;
	flow.to = 1;
	flow.to_port = 1000;
	flow.type = RTVIO_SEQPACKET;
	f.gw = &g;
	f.f = &flow;
	f.sock = -1;
	f.cap = 64;
	return 0;
}

/* A sample of data[0, len) as the far gateway would publish it. */
static void add_raw(uint64_t inc, uint64_t seq, const uint8_t *data, size_t len)
{
	int i = sc.ns++;

	assert_true(i < MAXS && len <= DATA);
	memcpy(sc.data[i], data, len);
	sc.s[i] = (rtvio_gw_sample){
		.incarnation = inc, .seq = seq, .check = gw_checksum(sc.data[i], len),
		.data = { ._maximum = (uint32_t)len, ._length = (uint32_t)len,
			  ._buffer = sc.data[i] },
	};
}

static void add(uint64_t inc, uint64_t seq, size_t len)
{
	uint8_t m[DATA];

	memset(m, (int)(seq & 0xff), len);
	add_raw(inc, seq, m, len);
}

/* One rtmsg record of len bytes whose length field says `says`. */
static void add_record(uint64_t inc, uint64_t seq, size_t len, uint32_t says)
{
	uint8_t m[DATA] = { 0 };

	rtmsg_put32(m, RTMSG_MAGIC);
	rtmsg_put32(m + 4, says);
	rtmsg_put64(m + 8, seq);
	add_raw(inc, seq, m, len);
}

static void run(void)
{
	gw_in_main(&f);
	assert_int_equal(sc.next, sc.ns);
}

static void assert_sent(const uint64_t *seqs, int n)
{
	assert_int_equal(sc.nsent, n);
	for (int i = 0; i < n; i++)
		assert_int_equal(sc.sent_seq[i], seqs[i]);
}

#define INC 0x6000000000000000ull

/* ---- 1. Numbers within one incarnation ---------------------------------------- */

/* One forged number near 2^64 is dropped, and the real numbering goes on. */
static void test_seq_far_ahead_rejected(void **state)
{
	(void)state;
	add(INC, 0, 16);
	add(INC, UINT64_MAX - 1, 16);
	add(INC, 1, 16);
	add(INC, 2, 16);
	run();
	assert_sent((uint64_t[]){ 0, 1, 2 }, 3);
	assert_int_equal(f.n.rejected, 1);
	assert_int_equal(f.n.duplicates, 0);
	assert_int_equal(f.n.missing, 0);
	assert_int_equal(f.n.messages, 3);
}

/* Skips within the window are losses: delivered, and the gap counted missing. */
static void test_seq_gap_within_window(void **state)
{
	(void)state;
	add(INC, 0, 16);
	add(INC, 10, 16);
	add(INC, 10 + 8 * GW_HISTORY + 1, 16); /* 8 x history skipped: the limit */
	run();
	assert_sent((uint64_t[]){ 0, 10, 10 + 8 * GW_HISTORY + 1 }, 3);
	assert_int_equal(f.n.missing, 9 + 8 * GW_HISTORY);
	assert_int_equal(f.n.rejected, 0);
}

/* Just beyond the window: rejected, and the expected number has not moved. */
static void test_seq_just_beyond_window(void **state)
{
	(void)state;
	add(INC, 0, 16);
	add(INC, 1 + 8 * GW_HISTORY + 1, 16);
	add(INC, 1, 16);
	run();
	assert_sent((uint64_t[]){ 0, 1 }, 2);
	assert_int_equal(f.n.rejected, 1);
	assert_int_equal(f.n.missing, 0);
}

/* A real gap longer than the window (a partition): a run of samples in order is
 * followed after all, so the flow does not stay dead; scattered forgeries are not. */
static void test_seq_resync_after_long_gap(void **state)
{
	(void)state;
	add(INC, 0, 16);
	add(INC, 5000, 16);
	add(INC, 1, 16);	/* the real publisher, heard: resets the run */
	add(INC, 9000, 16);
	add(INC, 9001, 16);
	add(INC, 9003, 16);
	add(INC, 9004, 16);	/* the fourth in order: followed */
	add(INC, 9005, 16);
	add(INC, 2, 16);	/* the past now */
	run();
	assert_sent((uint64_t[]){ 0, 1, 9004, 9005 }, 4);
	assert_int_equal(f.n.rejected, 4);
	assert_int_equal(f.n.duplicates, 1);
	assert_int_equal(f.n.missing, 0);
}

/* ---- 2. Incarnations ---------------------------------------------------------- */

/* A replay of an older incarnation is not delivered again; a newer one is followed. */
static void test_older_incarnation_dropped(void **state)
{
	(void)state;
	add(INC + 100, 0, 16);
	add(INC + 100, 1, 16);
	add(INC, 0, 16);	/* replay of the far gateway's previous run */
	add(INC, 1, 16);
	add(INC + 100, 2, 16);
	add(INC + 200, 0, 16);	/* the far gateway restarted */
	run();
	assert_sent((uint64_t[]){ 0, 1, 2, 0 }, 4);
	assert_int_equal(f.n.rejected, 2);
	assert_int_equal(f.n.incarnations, 2);
	assert_int_equal(f.n.duplicates, 0);
}

/* Two publishers alternating: the newer one is followed, the older one counted, and
 * duplicates of the newer one are still caught. */
static void test_alternating_publishers(void **state)
{
	(void)state;
	for (uint64_t k = 0; k < 6; k++) {
		add(INC + 100, k, 16);
		add(INC, k + 50, 16);
	}
	add(INC + 100, 3, 16);
	run();
	assert_sent((uint64_t[]){ 0, 1, 2, 3, 4, 5 }, 6);
	assert_int_equal(f.n.rejected, 6);
	assert_int_equal(f.n.duplicates, 1);
	assert_int_equal(f.n.incarnations, 1);
}

/* A forged incarnation far in the future holds the real publisher back only until a
 * few of its samples in a row are followed. */
static void test_future_incarnation_resync(void **state)
{
	(void)state;
	add(INC, 0, 16);
	add(UINT64_MAX, 0, 16);
	for (uint64_t k = 1; k <= 5; k++)
		add(INC, k, 16);
	run();
	assert_sent((uint64_t[]){ 0, 0, 4, 5 }, 4);
	assert_int_equal(f.n.rejected, 3);
	assert_int_equal(f.n.incarnations, 3);
}

/* ---- 3. Data that is no message of the flow ------------------------------------ */

/* SEQPACKET: longer than the flow's messages, or empty: dropped and counted; the
 * connection stays, and the numbering is not moved by them. */
static void test_seqpacket_size(void **state)
{
	(void)state;
	add(INC, 0, 64);		/* cap exactly */
	add(INC, 1, 65);
	add(INC, UINT64_MAX - 1, 4000);
	add(INC, 2, 0);
	add(INC, 3, 1);
	run();
	assert_sent((uint64_t[]){ 0, 3 }, 2);
	assert_int_equal(sc.sent_len[0], 64);
	assert_int_equal(f.n.rejected, 3);
	assert_int_equal(f.n.missing, 2);	/* 1 and 2 never arrived as messages */
	assert_int_equal(f.n.undelivered, 0);
	assert_int_equal(f.n.connections, 1);
	assert_int_equal(sc.nclosed, 1);	/* at the end only */
}

/* A message the destination's connection cannot take (-EMSGSIZE) is undelivered,
 * not a reset: the connection stays for the next one. */
static void test_seqpacket_emsgsize_keeps_connection(void **state)
{
	(void)state;
	sc.max_message = 48;
	add(INC, 0, 16);
	add(INC, 1, 60);
	add(INC, 2, 16);
	run();
	assert_sent((uint64_t[]){ 0, 2 }, 2);
	assert_int_equal(f.n.undelivered, 1);
	assert_int_equal(f.n.connections, 1);
	assert_int_equal(sc.nclosed, 1);
}

/* STREAM: a sample is delivered only when it is one whole rtmsg record, so the
 * receiver never gets half of one, or two glued. */
static void test_stream_framing(void **state)
{
	(void)state;
	flow.type = RTVIO_STREAM;
	f.cap = 256;
	add_record(INC, 0, 48, 48);	/* good */
	add_record(INC, 1, 48, 96);	/* the first half of a record */
	add_record(INC, 2, 96, 48);	/* a record and a half */
	add_record(INC, 3, 20, 20);	/* shorter than the header */
	add_record(INC, 4, 512, 512);	/* longer than the flow's records */
	add(INC, 5, 48);		/* no magic */
	add(INC, 6, 0);
	add_record(INC, 7, 32, 32);	/* good: a header only */
	add_record(INC, 8, 256, 256);	/* good: cap exactly */
	run();
	assert_sent((uint64_t[]){ 0, 7, 8 }, 3);
	assert_int_equal(f.n.rejected, 6);
	assert_int_equal(f.n.connections, 1);
	assert_int_equal(f.n.undelivered, 0);
}

/* A damaged sample is still caught first, as corrupt. */
static void test_corrupt_first(void **state)
{
	(void)state;
	add(INC, 0, 16);
	add(INC, 1, 16);
	sc.s[1].check ^= 1;
	run();
	assert_sent((uint64_t[]){ 0 }, 1);
	assert_int_equal(f.n.corrupt, 1);
	assert_int_equal(f.n.rejected, 0);
	assert_int_equal(f.n.samples, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_seq_far_ahead_rejected, setup),
		cmocka_unit_test_setup(test_seq_gap_within_window, setup),
		cmocka_unit_test_setup(test_seq_just_beyond_window, setup),
		cmocka_unit_test_setup(test_seq_resync_after_long_gap, setup),
		cmocka_unit_test_setup(test_older_incarnation_dropped, setup),
		cmocka_unit_test_setup(test_alternating_publishers, setup),
		cmocka_unit_test_setup(test_future_incarnation_resync, setup),
		cmocka_unit_test_setup(test_seqpacket_size, setup),
		cmocka_unit_test_setup(test_seqpacket_emsgsize_keeps_connection, setup),
		cmocka_unit_test_setup(test_stream_framing, setup),
		cmocka_unit_test_setup(test_corrupt_first, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
