/* Page faults on cell memory (model/faults.c, docs/analysis.md "Page faults on cell
 * memory"): the pages each action can touch, worked by hand, and their charge in the
 * analysis input when [platform] gives page_fault (and none without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "config.h"
#include "from_config.h"
#include "model.h"

static void test_span_pages(void **state)
{
	(void)state;
	assert_int_equal(model_span_pages(0, 16), 0);
	/* One byte is one page, however many segments are allowed. */
	assert_int_equal(model_span_pages(1, 16), 1);
	/* One segment: 4096 bytes off a page boundary cross one (2 pages), 8192 two. */
	assert_int_equal(model_span_pages(4096, 1), 2);
	assert_int_equal(model_span_pages(8192, 1), 3);
	assert_int_equal(model_span_pages(64, 1), 2);
	/* Ten bytes in ten segments: ten pages at most, never more than the bytes
	 * (ceil(0 / 4096) + 2 * 10 - 1 = 19 > 10). */
	assert_int_equal(model_span_pages(10, 16), 10);
	/* 16 segments: ceil((4096 - 16) / 4096) + 31 = 32; 4140 bytes (a chunk and a
	 * header): ceil(4124 / 4096) + 31 = 33; a 44-byte header: ceil(28 / 4096) + 31 = 32. */
	assert_int_equal(model_span_pages(4096, 16), 32);
	assert_int_equal(model_span_pages(4140, 16), 33);
	assert_int_equal(model_span_pages(44, 16), 32);
	/* Two segments of a 2-page run: ceil(4094 / 4096) + 3 = 4. */
	assert_int_equal(model_span_pages(4096, 2), 4);
}

static void test_fault_counts(void **state)
{
	struct model_faults f;

	(void)state;
	assert_int_equal(MODEL_MAX_SEG, 16);
	model_faults(4096, &f);
	/* step: 32 (TX side) + 33 (RX side, with the header) */
	assert_int_equal(f.step, 65);
	/* piece: RX pop (2 avail + 16 descriptors) + RX push (2 element + index + flags or
	 * used_event + avail_event) + TX push (5) */
	assert_int_equal(f.piece, 18 + 5 + 5);
	/* ingest: TX pop 18 + header 32 + push 5 */
	assert_int_equal(f.ingest, 18 + 32 + 5);
	/* A 64-byte chunk: 32 (ceil(48 / 4096) + 31) + 32 (108 bytes: ceil(92 / 4096) + 31). */
	model_faults(64, &f);
	assert_int_equal(f.step, 64);
	assert_int_equal(f.piece, 28);
	assert_int_equal(f.ingest, 55);
}

static const char conf[] =
	"[broker]\nsocket_dir = /tmp\nchunk = 4KiB\n"
	"[cell a]\ncid = 3\n"
	"[cell b]\ncid = 4\n"
	"[flow side]\nfrom = a\nto = b:7000\nsize = 8KiB\nperiod = 1ms\n";

/* The analysis input's platform for conf under plat. */
static struct an_platform input_plat(const struct rtvio_platform_cfg *plat)
{
	struct rtvio_config cfg;
	struct model *m;
	struct an_broker b;
	struct an_flow fl[4];
	char err[256];

	if (rtvio_config_parse(conf, "test.conf", &cfg, err, sizeof(err)) != 0) {
		print_error("%s\n", err);
		fail();
	}
	assert_int_equal(model_create(&cfg, &m), 0);
	an_input_from_config(&cfg, m, plat, &b, fl);
	model_destroy(m);
	rtvio_config_free(&cfg);
	return b.plat;
}

static void test_charge(void **state)
{
	/* 2 GB/s, 1 us per step, 5 us per packet; ingest_packet = ceil(50001 / 128) = 391. */
	struct rtvio_platform_cfg plat = {
		.copy_bandwidth = 2000000000ull, .chunk_overhead = 1000, .packet_overhead = 5000,
		.ingest_latency = 10000, .notify_latency = 50000, .ingest_step = 50001,
		.batch_gap = 20000, .page_fault = 300, .present = RTVIO_PLAT_ALL,
	};
	struct an_platform p;

	(void)state;
	/* Without the key nothing is charged, whatever the field holds. */
	p = input_plat(&plat);
	assert_int_equal(p.chunk_overhead, 1000);
	assert_int_equal(p.packet_overhead, 5000);
	assert_int_equal(p.ingest_packet, 391);
	/* 300 ns a fault: a step 1000 + 65 x 300 = 20500, a piece 5000 + 28 x 300 =
	 * 13400, a packet ingested 391 + 55 x 300 = 16891. */
	plat.present |= RTVIO_PLAT_PAGE_FAULT;
	p = input_plat(&plat);
	assert_int_equal(p.chunk_overhead, 20500);
	assert_int_equal(p.packet_overhead, 13400);
	assert_int_equal(p.ingest_packet, 16891);
	/* The batch gap and the latencies carry no fault of cell memory. */
	assert_int_equal(p.batch_gap, 20000);
	assert_int_equal(p.notify_latency, 50000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_span_pages),
		cmocka_unit_test(test_fault_counts),
		cmocka_unit_test(test_charge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
