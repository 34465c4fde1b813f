/* Run-time changes in the analysis (docs/analysis.md, "Run-time changes"): the apply
 * step, priced from the configuration's capacity and the platform's change_step, is
 * charged once per window as blocking. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "analysis.h"
#include "config.h"
#include "from_config.h"
#include "model.h"

static struct an_flow costed(const char *name, uint64_t C, uint64_t q, uint64_t T,
			     unsigned prio)
{
	struct an_flow f = { 0 };

	f.name = name;
	f.type = AN_SEQPACKET;
	f.explicit_costs = true;
	f.cost = C;
	f.last_step = f.max_step = q;
	f.period = f.deadline = T;
	f.priority = prio;
	return f;
}

static struct an_broker broker(enum an_policy p, uint64_t apply)
{
	struct an_broker b = { 0 };

	b.policy = p;
	b.chunk = 4096;
	b.plat.copy_bandwidth = 1000000000ull;
	b.plat.ingest_packet = 100;
	b.tx_slots = 4;
	b.plat.ingest_latency = 1000;
	b.plat.notify_latency = 2000;
	b.plat.change_apply = apply;
	return b;
}

/* One flow alone under fp: cost 4000 and 2 x 100 of ingest for its packet (4200),
 * q = 2000, T = D = 30000. Its window starts with the pool, (4 + 1) * 100 = 500, plus
 * the apply step A: S = 500 + A + 4200 - 2000, R = S + 2000 = 4700 + A; the latency
 * adds 1000 + 2000. */
static void test_fp_alone(void **state)
{
	struct an_flow f = costed("C", 4000, 2000, 30000, 1);
	struct an_result res;
	struct an_flow_result out;
	struct an_broker b = broker(AN_FP, 0);

	(void)state;
	assert_int_equal(an_analyze(&f, 1, &b, &res, &out), 0);
	assert_int_equal(out.response, 4700);
	assert_int_equal(out.latency, 7700);
	b = broker(AN_FP, 700);
	assert_int_equal(an_analyze(&f, 1, &b, &res, &out), 0);
	assert_int_equal(out.response, 5400);
	assert_int_equal(out.latency, 8400);
	assert_true(out.schedulable);
	/* An apply step longer than the slack makes the flow miss: 30000 - 7700 + 1. */
	b = broker(AN_FP, 22301);
	assert_int_equal(an_analyze(&f, 1, &b, &res, &out), 0);
	assert_false(out.schedulable);
}

/* Under every policy the charge lengthens every real-time flow's bound by at least A
 * (once: it is blocking, not interference). */
static void test_every_policy(void **state)
{
	static const enum an_policy pol[] = { AN_FP, AN_EDF, AN_FIFO };
	struct an_flow f[2] = { costed("A", 2000, 1000, 10000, 1),
				costed("B", 3000, 1500, 20000, 2) };

	(void)state;
	for (size_t p = 0; p < 3; p++) {
		struct an_result r0, r1;
		struct an_flow_result o0[2], o1[2];
		struct an_broker b0 = broker(pol[p], 0), b1 = broker(pol[p], 1000);

		assert_int_equal(an_analyze(f, 2, &b0, &r0, o0), 0);
		assert_int_equal(an_analyze(f, 2, &b1, &r1, o1), 0);
		for (int i = 0; i < 2; i++) {
			assert_true(o0[i].bounded && o1[i].bounded);
			assert_true(o1[i].latency >= o0[i].latency + 1000);
		}
	}
}

static const char conf_text[] =
	"[broker]\nmax_cells = 4\nmax_flows = 8\n"
	"[cell a]\ncid = 3\n[cell b]\ncid = 4\n"
	"[flow f]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 64\nperiod = 1ms\n"
	"[platform]\ncopy_bandwidth = 1GB/s\nchunk_overhead = 100ns\npacket_overhead = 1us\n"
	"ingest_latency = 5us\nnotify_latency = 20us\ningest_step = 2us\nbatch_gap = 1us\n";

/* Capacity 4 cells and 8 flows, two cells of 256 connections and two vacant slots of
 * the default 256: one operation visits 4 * 8 + 4 + 8 + 1024 = 1068 slots, a change
 * at most 12 operations: 12816 slots. */
static void test_slots(void **state)
{
	struct rtvio_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(rtvio_config_parse(conf_text, "t", &cfg, err, sizeof(err)), 0);
	assert_int_equal(model_change_op_slots(&cfg), 1068);
	assert_int_equal(model_change_slots(&cfg), 12816);
	rtvio_config_free(&cfg);
}

/* The input from a configuration: change_apply = slots x change_step, and 0 (not
 * charged) when the platform has no change_step. */
static void input_apply(const char *extra, uint64_t *apply)
{
	char text[2048], err[256];
	struct rtvio_config cfg;
	struct model *m;
	struct an_broker b;
	struct an_flow fl[4];

	snprintf(text, sizeof(text), "%s%s", conf_text, extra);
	assert_int_equal(rtvio_config_parse(text, "t", &cfg, err, sizeof(err)), 0);
	assert_int_equal(model_create(&cfg, &m), 0);
	an_input_from_config(&cfg, m, &cfg.platform, &b, fl);
	*apply = b.plat.change_apply;
	model_destroy(m);
	rtvio_config_free(&cfg);
}

static void test_from_config(void **state)
{
	uint64_t a;

	(void)state;
	input_apply("", &a);
	assert_int_equal(a, 0);
	input_apply("change_step = 3ns\n", &a);
	assert_int_equal(a, 3 * 12816);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fp_alone),
		cmocka_unit_test(test_every_policy),
		cmocka_unit_test(test_slots),
		cmocka_unit_test(test_from_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
