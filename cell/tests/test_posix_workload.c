/* Workload bookkeeping of `rtvio cell`: histogram arithmetic, loss/reorder/corrupt
 * accounting on hand-made rtmsg sequences, stream reassembly across arbitrary
 * splits, and the periodic release plan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "workload.h"
#include "rtmsg.h"

static void hist_buckets_tile_the_range(void **state)
{
	(void)state;
	/* Consecutive buckets must be adjacent and every value must land in the
	 * bucket whose bounds contain it. */
	for (unsigned i = 0; i + 1 < 2 * WL_HIST_SUB + 59 * WL_HIST_SUB; i++)
		assert_int_equal(wl_hist_upper(i) + 1, wl_hist_lower(i + 1));
	uint64_t probes[] = { 0, 1, 31, 32, 33, 47, 48, 1000, 123456789, 1ull << 40,
			      (1ull << 63) - 1, 1ull << 63, UINT64_MAX };
	for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
		unsigned idx = wl_hist_index(probes[k]);

		assert_true(idx < WL_HIST_BUCKETS);
		assert_true(wl_hist_lower(idx) <= probes[k]);
		assert_true(wl_hist_upper(idx) >= probes[k]);
	}
	assert_int_equal(wl_hist_upper(wl_hist_index(UINT64_MAX)), UINT64_MAX);
}

static void hist_quantiles_within_resolution(void **state)
{
	struct wl_hist *h = malloc(sizeof(*h));

	(void)state;
	wl_hist_init(h);
	assert_int_equal(wl_hist_quantile(h, 0.5), 0);
	/* 1..10000 us: p50 ~ 5000 us, p99 ~ 9900 us, each within 1/16. */
	for (uint64_t v = 1; v <= 10000; v++)
		wl_hist_add(h, v * 1000);
	assert_int_equal(h->count, 10000);
	assert_int_equal(h->min_ns, 1000);
	assert_int_equal(h->max_ns, 10000000);
	uint64_t p50 = wl_hist_quantile(h, 0.5), p99 = wl_hist_quantile(h, 0.99);

	assert_true(p50 > 5000000 - 5000000 / 16 && p50 < 5000000 + 5000000 / 16);
	assert_true(p99 > 9900000 - 9900000 / 16 && p99 <= 10000000);
	assert_int_equal(wl_hist_quantile(h, 1.0), 10000000);
	/* One sample: every quantile is that sample exactly (clamped to min/max). */
	wl_hist_init(h);
	wl_hist_add(h, 777777);
	assert_int_equal(wl_hist_quantile(h, 0.001), 777777);
	assert_int_equal(wl_hist_quantile(h, 0.999), 777777);
	free(h);
}

static struct wl_rx_stats *rx_new(uint64_t deadline)
{
	struct wl_rx_stats *s = malloc(sizeof(*s));

	wl_rx_init(s, deadline);
	return s;
}

static void rx_in_order_with_latency(void **state)
{
	struct wl_rx_stats *s = rx_new(50000);
	uint8_t m[64];

	(void)state;
	for (uint64_t seq = 0; seq < 10; seq++) {
		rtmsg_fill(m, sizeof(m), seq, 1000000 + seq);
		/* Latencies 10 us .. 100 us: 5 of them above the 50 us deadline. */
		assert_int_equal(wl_rx_account(s, m, sizeof(m), 1000000 + seq + (seq + 1) * 10000), 0);
	}
	assert_int_equal(s->messages, 10);
	assert_int_equal(s->lost, 0);
	assert_int_equal(s->reordered, 0);
	assert_int_equal(s->corrupt, 0);
	assert_int_equal(s->deadline_misses, 5);
	assert_int_equal(s->lat.min_ns, 10000);
	assert_int_equal(s->lat.max_ns, 100000);
	assert_int_equal(s->bytes, 640);
	free(s);
}

/* The receiver keeps exactly the WL_SLOWEST slowest messages, each with its own
 * stamp and sequence number, whatever order they come in. */
static void rx_keeps_the_slowest(void **state)
{
	struct wl_rx_stats *s = rx_new(0);
	uint8_t m[64];
	bool kept[100] = { false };

	(void)state;
	for (uint64_t seq = 0; seq < 100; seq++) {
		/* Latency (seq * 37) % 100 µs: every value 0..99 once, in a scrambled order. */
		uint64_t stamp = 5000000 + seq * 1000, lat = (seq * 37 % 100) * 1000;

		rtmsg_fill(m, sizeof(m), seq, stamp);
		assert_int_equal(wl_rx_account(s, m, sizeof(m), stamp + lat), 0);
	}
	assert_int_equal(s->nslowest, WL_SLOWEST);
	for (unsigned i = 0; i < s->nslowest; i++) {
		const struct wl_slow *w = &s->slowest[i];

		assert_true(w->latency_ns >= (100 - WL_SLOWEST) * 1000);
		assert_int_equal(w->stamp_ns, 5000000 + w->seq * 1000);
		assert_int_equal(w->latency_ns, (w->seq * 37 % 100) * 1000);
		assert_false(kept[w->latency_ns / 1000]);
		kept[w->latency_ns / 1000] = true;
	}
	free(s);
}

static void rx_loss_reorder_corrupt(void **state)
{
	struct wl_rx_stats *s = rx_new(0);
	uint8_t m[40];

	(void)state;
	/* 0, 1, 3, 2, 6: 3 arrives early (2 counted lost), 2 arrives late (reordered,
	 * no longer lost), 6 skips 4 and 5 (lost). */
	uint64_t order[] = { 0, 1, 3, 2, 6 };
	for (size_t i = 0; i < 5; i++) {
		rtmsg_fill(m, sizeof(m), order[i], 1);
		assert_int_equal(wl_rx_account(s, m, sizeof(m), 2), 0);
	}
	assert_int_equal(s->messages, 5);
	assert_int_equal(s->reordered, 1);
	assert_int_equal(s->lost, 2);
	/* Seq 7 arrives with a flipped payload bit: corrupt; then 8 arrives intact and
	 * the gap at 7 is the corrupt message, not a loss. */
	rtmsg_fill(m, sizeof(m), 7, 1);
	m[35] ^= 0x10;
	assert_int_equal(wl_rx_account(s, m, sizeof(m), 2), -EBADMSG);
	rtmsg_fill(m, sizeof(m), 8, 1);
	assert_int_equal(wl_rx_account(s, m, sizeof(m), 2), 0);
	assert_int_equal(s->corrupt, 1);
	assert_int_equal(s->lost, 2);
	assert_int_equal(s->next_seq, 9);
	/* A header whose length field lies is corrupt too, as is an empty message. */
	rtmsg_fill(m, sizeof(m), 9, 1);
	assert_int_equal(wl_rx_account(s, m, sizeof(m) - 1, 2), -EBADMSG);
	assert_int_equal(wl_rx_account(s, m, 0, 2), -EBADMSG);
	assert_int_equal(s->corrupt, 3);
	free(s);
}

/* Feeds seqs (-1: a corrupt message) and checks the counts. */
static void feed(struct wl_rx_stats *s, const long long *seqs, size_t n)
{
	uint8_t m[40];

	for (size_t i = 0; i < n; i++) {
		if (seqs[i] < 0) {
			memset(m, 0xEE, sizeof(m));
			assert_int_equal(wl_rx_account(s, m, sizeof(m), 2), -EBADMSG);
		} else {
			rtmsg_fill(m, sizeof(m), (uint64_t)seqs[i], 1);
			assert_int_equal(wl_rx_account(s, m, sizeof(m), 2), 0);
		}
	}
}

static void rx_accounting_is_exact(void **state)
{
	struct wl_rx_stats *s = rx_new(0);

	(void)state;
	/* The corrupt message stands for 1 (gap at 2); 3 is lost (gap at 4). When 1
	 * comes after all, the corrupt one was not 1 and stands for nothing: 3 stays
	 * lost. */
	feed(s, (const long long[]){ 0, -1, 2, 4 }, 4);
	assert_int_equal(s->lost, 1);
	feed(s, (const long long[]){ 1 }, 1);
	assert_int_equal(s->lost, 1);
	assert_int_equal(s->reordered, 1);
	assert_int_equal(s->corrupt, 1);
	assert_int_equal(s->messages, 4);
	/* A gap of two with one corrupt message: one lost. When the number the corrupt
	 * one stood for comes late, it stands for the other: nothing lost. */
	wl_rx_init(s, 0);
	feed(s, (const long long[]){ 0, -1, 3 }, 3);
	assert_int_equal(s->lost, 1);
	feed(s, (const long long[]){ 1 }, 1);
	assert_int_equal(s->lost, 0);
	/* ... and when that one comes too, the corrupt message stands for nothing,
	 * and no loss elsewhere is taken back: 4 and 5 stay lost. */
	feed(s, (const long long[]){ 6, 2 }, 2);
	assert_int_equal(s->lost, 2);
	assert_int_equal(s->reordered, 2);
	/* A number seen twice is a duplicate, not a reordering, and not a second
	 * message. */
	wl_rx_init(s, 0);
	feed(s, (const long long[]){ 0, 1, 1, 3, 2, 2, 0 }, 7);
	assert_int_equal(s->messages, 4);
	assert_int_equal(s->duplicates, 3);
	assert_int_equal(s->reordered, 1);
	assert_int_equal(s->lost, 0);
	assert_int_equal(s->bytes, 160);
	/* Beyond the window a late message cannot be told from a duplicate: it is
	 * counted reordered, and the loss it might take back stays counted. */
	wl_rx_init(s, 0);
	feed(s, (const long long[]){ 0, 2, WL_SEQ_WINDOW + 3, 1 }, 4);
	assert_int_equal(s->lost, WL_SEQ_WINDOW + 1);
	assert_int_equal(s->reordered, 1);
	assert_int_equal(s->duplicates, 0);
	/* Inside it, after a gap longer than the window, a late one is exact. */
	feed(s, (const long long[]){ WL_SEQ_WINDOW + 2, WL_SEQ_WINDOW + 2 }, 2);
	assert_int_equal(s->lost, WL_SEQ_WINDOW);
	assert_int_equal(s->reordered, 2);
	assert_int_equal(s->duplicates, 1);
	free(s);
}

static void rx_short_messages_untimed(void **state)
{
	struct wl_rx_stats *s = rx_new(0);
	uint8_t m[8];

	(void)state;
	for (uint64_t seq = 0; seq < 3; seq++) {
		rtmsg_fill(m, 1 + seq, seq, 99);
		assert_int_equal(wl_rx_account(s, m, 1 + seq, 100), 0);
	}
	assert_int_equal(s->untimed, 3);
	assert_int_equal(s->lat.count, 0);
	/* A short message with the wrong pattern for the expected seq is corrupt. */
	rtmsg_fill(m, 4, 7, 99);
	assert_int_equal(wl_rx_account(s, m, 4, 100), -EBADMSG);
	free(s);
}

struct sink {
	struct wl_rx_stats *s;
	unsigned calls;
};

static void sink_fn(void *arg, const uint8_t *m, size_t len)
{
	struct sink *k = arg;

	k->calls++;
	assert_int_equal(wl_rx_account(k->s, m, len, 5), 0);
}

static void stream_reassembles_any_split(void **state)
{
	size_t sizes[] = { 32, 33, 100, 4096, 70000 };
	size_t total = 0, off = 0;
	uint8_t *wire, *buf = malloc(1 << 17);

	(void)state;
	for (size_t i = 0; i < 5; i++)
		total += sizes[i];
	wire = malloc(total);
	for (size_t i = 0; i < 5; i++) {
		rtmsg_fill(wire + off, sizes[i], i, 1);
		off += sizes[i];
	}
	/* Feed the same stream in chunks of 1, 7, 4096 and all at once. */
	size_t steps[] = { 1, 7, 4096, total };
	for (size_t t = 0; t < 4; t++) {
		struct wl_stream st;
		struct sink k = { rx_new(0), 0 };

		wl_stream_init(&st, buf, 1 << 17);
		for (off = 0; off < total; off += steps[t]) {
			size_t n = total - off < steps[t] ? total - off : steps[t];

			assert_int_equal(wl_stream_feed(&st, wire + off, n, sink_fn, &k), 0);
		}
		assert_int_equal(k.calls, 5);
		assert_int_equal(k.s->messages, 5);
		assert_int_equal(k.s->bytes, total);
		assert_int_equal(st.have, 0);
		free(k.s);
	}
	free(wire);
	free(buf);
}

static void stream_rejects_bad_framing(void **state)
{
	uint8_t buf[256], m[64];
	struct wl_stream st;
	struct sink k = { rx_new(0), 0 };

	(void)state;
	/* A length larger than the buffer cannot be reassembled. */
	rtmsg_fill(m, sizeof(m), 0, 1);
	rtmsg_put32(m + 4, 100000);
	wl_stream_init(&st, buf, sizeof(buf));
	assert_int_equal(wl_stream_feed(&st, m, sizeof(m), sink_fn, &k), -EBADMSG);
	/* Dead from then on, even for good data. */
	rtmsg_fill(m, sizeof(m), 0, 1);
	assert_int_equal(wl_stream_feed(&st, m, sizeof(m), sink_fn, &k), -EBADMSG);
	/* A length below the header, and a wrong magic. */
	rtmsg_put32(m + 4, 8);
	wl_stream_init(&st, buf, sizeof(buf));
	assert_int_equal(wl_stream_feed(&st, m, sizeof(m), sink_fn, &k), -EBADMSG);
	rtmsg_fill(m, sizeof(m), 0, 1);
	m[0] ^= 1;
	wl_stream_init(&st, buf, sizeof(buf));
	assert_int_equal(wl_stream_feed(&st, m, sizeof(m), sink_fn, &k), -EBADMSG);
	assert_int_equal(k.calls, 0);
	free(k.s);
}

static void period_keeps_minimum_interarrival(void **state)
{
	struct wl_period p;

	(void)state;
	wl_period_init(&p, 1000, 100);
	assert_int_equal(p.next_ns, 1000);
	/* On time (or early wake-ups reported as the release time): the grid holds,
	 * no drift. */
	assert_int_equal(wl_period_next(&p, 1000), 1100);
	assert_int_equal(wl_period_next(&p, 1100), 1200);
	assert_int_equal(p.late, 0);
	/* Released 30 late: the next release is a whole period after it, never
	 * sooner, whatever the grid said. */
	assert_int_equal(wl_period_next(&p, 1230), 1330);
	assert_int_equal(p.late, 1);
	assert_int_equal(p.overruns, 0);
	/* Far behind: the lost periods are counted, and still no burst follows. */
	assert_int_equal(wl_period_next(&p, 1990), 2090);
	assert_int_equal(p.late, 2);
	assert_int_equal(p.overruns, 6);
	/* Every gap between consecutive releases is at least the period. */
	uint64_t prev = 1990, rel;

	for (int i = 0; i < 100; i++) {
		rel = p.next_ns + (uint64_t)(i % 7) * 13;
		assert_true(rel - prev >= 100);
		wl_period_next(&p, rel);
		prev = rel;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hist_buckets_tile_the_range),
		cmocka_unit_test(hist_quantiles_within_resolution),
		cmocka_unit_test(rx_in_order_with_latency),
		cmocka_unit_test(rx_keeps_the_slowest),
		cmocka_unit_test(rx_loss_reorder_corrupt),
		cmocka_unit_test(rx_accounting_is_exact),
		cmocka_unit_test(rx_short_messages_untimed),
		cmocka_unit_test(stream_reassembles_any_split),
		cmocka_unit_test(stream_rejects_bad_framing),
		cmocka_unit_test(period_keeps_minimum_interarrival),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
