/* The host bridge's pass (model_host_pass, docs/analysis.md "Host bridge"): its
 * budget follows the host flows and the host's connections, and the analysis input
 * charges it with every batch gap, to the nanosecond. */
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

static const char conf_fmt[] =
	"[broker]\nsocket_dir = /tmp\n"
	"[host h]\nuds_path = /tmp/h.vsock\nconnections = %u\n"
	"[cell a]\ncid = 3\n"
	"[cell b]\ncid = 4\n"
	"[flow up]\nfrom = h\nto = a:5000\nsize = 64KiB\nperiod = 1ms\n"
	"[flow down]\nfrom = a\nto = h:6000\nsize = 1KiB\nperiod = 1ms\n"
	"[flow side]\nfrom = a\nto = b:7000\nsize = 8KiB\nperiod = 1ms\n";

static const char plain_conf[] =
	"[broker]\nsocket_dir = /tmp\n"
	"[cell a]\ncid = 3\n"
	"[cell b]\ncid = 4\n"
	"[flow side]\nfrom = a\nto = b:7000\nsize = 8KiB\nperiod = 1ms\n";

/* 2 GB/s, 1 us per step, 20 us per batch gap; ingest_packet = ceil(50001 / 128). */
static const struct rtvio_platform_cfg plat = {
	.copy_bandwidth = 2000000000ull, .chunk_overhead = 1000, .packet_overhead = 5000,
	.ingest_latency = 10000, .notify_latency = 50000, .ingest_step = 50001,
	.batch_gap = 20000, .present = RTVIO_PLAT_ALL,
};

static void load(const char *text, struct rtvio_config *cfg)
{
	char err[256];

	if (rtvio_config_parse(text, "test.conf", cfg, err, sizeof(err)) != 0) {
		print_error("%s\n", err);
		fail();
	}
}

/* batch_gap of the analysis input of text. */
static uint64_t input_gap(const char *text)
{
	struct rtvio_config cfg;
	struct model *m;
	struct an_broker b;
	struct an_flow fl[8];

	load(text, &cfg);
	assert_int_equal(model_create(&cfg, &m), 0);
	assert_true((size_t)cfg.nflows + 1 <= 8);
	an_input_from_config(&cfg, m, &plat, &b, fl);
	model_destroy(m);
	rtvio_config_free(&cfg);
	return b.plat.batch_gap;
}

static void test_budget_from_flows(void **state)
{
	char text[1024];
	struct rtvio_config cfg;
	struct model_host_pass hp;

	(void)state;
	snprintf(text, sizeof(text), conf_fmt, 4u);
	load(text, &cfg);
	model_host_pass(&cfg, &hp);
	assert_int_equal(hp.cell, rtvio_config_find_cell(&cfg, "h"));
	/* Two host flows (side is not one): a bridge each, a message of each across. */
	assert_int_equal(hp.bridges, 2);
	assert_int_equal(hp.bytes, 2 * MODEL_HOST_BUF + 2 * 1024);
	assert_int_equal(hp.calls, 2 * MODEL_HOST_BRIDGE_CALLS + MODEL_HOST_ACCEPT_CALLS);
	assert_int_equal(hp.rx_payload, 4096);
	rtvio_config_free(&cfg);

	/* Never more bridges than the host may have connections. */
	snprintf(text, sizeof(text), conf_fmt, 1u);
	load(text, &cfg);
	model_host_pass(&cfg, &hp);
	assert_int_equal(hp.bridges, 1);
	assert_int_equal(hp.calls, MODEL_HOST_BRIDGE_CALLS + MODEL_HOST_ACCEPT_CALLS);
	rtvio_config_free(&cfg);
}

static void test_no_host_no_charge(void **state)
{
	struct rtvio_config cfg;
	struct model_host_pass hp;

	(void)state;
	load(plain_conf, &cfg);
	model_host_pass(&cfg, &hp);
	assert_int_equal(hp.cell, -1);
	assert_int_equal(hp.calls, 0);
	assert_int_equal(hp.bytes, 0);
	rtvio_config_free(&cfg);
	assert_int_equal(input_gap(plain_conf), plat.batch_gap);
}

/* 15 calls x 20 us; e(34816 B) = 1 us + 17.408 us; 64 steps x (e(4096 B) = 3.048 us
 * + 0.391 us): 300 000 + 18 408 + 220 096 ns on top of the daemon's 20 us. */
static void test_charged_with_batch_gap(void **state)
{
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text), conf_fmt, 4u);
	assert_int_equal(input_gap(text), 20000 + 300000 + 18408 + 220096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_from_flows),
		cmocka_unit_test(test_no_host_no_charge),
		cmocka_unit_test(test_charged_with_batch_gap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
