/* `rtvio analyze` end to end on temporary config files: exit status, the table and
 * the JSON document, and one clear line on stderr for every kind of bad input. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "analyze_cmd.h"

static char dir[] = "/tmp/rtvio-analyze-test-XXXXXX";
static char out_buf[65536], err_buf[8192];

static const char *write_file(const char *name, const char *text)
{
	static char path[4][256];
	static int next;
	char *p = path[next++ % 4];
	FILE *f;

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

static void slurp(int fd, char *buf, size_t len)
{
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

/* Runs cmd_analyze with stdout and stderr captured into out_buf / err_buf. */
static int run(int argc, const char **argv)
{
	char po[300], pe[300];
	int fo, fe, so, se, ret;

	snprintf(po, sizeof(po), "%s/stdout", dir);
	snprintf(pe, sizeof(pe), "%s/stderr", dir);
	fo = open(po, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fe = open(pe, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fo >= 0 && fe >= 0);
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	dup2(fo, 1);
	dup2(fe, 2);
	ret = cmd_analyze(argc, (char **)argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	slurp(fo, out_buf, sizeof(out_buf));
	slurp(fe, err_buf, sizeof(err_buf));
	close(fo);
	close(fe);
	return ret;
}

#define CELLS \
	"[cell a]\ncid = 3\n" \
	"[cell b]\ncid = 4\n"

#define PLATFORM_NO_GAP \
	"[platform]\ncopy_bandwidth = 1GB/s\nchunk_overhead = 100ns\npacket_overhead = 1us\n" \
	"ingest_latency = 2us\nnotify_latency = 3us\ningest_step = 500ns\n"
/* No vhost-user charge (an_vhu.c has its own tests): the figures below are the
 * data path's alone. */
#define PLATFORM PLATFORM_NO_GAP "batch_gap = 0\nvhost_user_msg = 0\nvhost_user_map = 0\n"

/* One 10000-byte seqpacket flow a -> b and a best-effort stream b -> a, chunk 4 KiB,
 * RX payload 4 KiB (the default rx_buf), 1 B/ns. Ingest: ceil(500 / 128) = 4 ns per
 * packet; two cells with ingest budgets of 8 + 1 (ctl: floor(100us / 1ms) + 1 pending
 * message of one packet) and 8 (a best-effort flow adds none): 17 TX slots
 * (model.h, MODEL_INGEST_BUDGETS); batch_gap 0.
 *   ctl: pieces 4096, 4096, 1808, one step each: e = 4196, 4196, 1908, plus 1000 per
 *        piece: C = 13300 (its packet's ingest is in the ingest budgets below, not
 *        charged again per packet); q = 1908 + 1000 = 2908.
 *   bulk (best-effort): Q = e(4096) + 1000 = 5196.
 *   Budgets per 1 ms period (model.h, model_cell_budgets; allowance 1): ingest
 *   a 9 + 1 + 1 (ctl's one message per period) = 11, b 8 + 1 = 9: 20 * 4 = 80 ns
 *   above every flow; a's control packet (its allowance), b's and b's short RX
 *   piece ride ctl, the only real-time flow of either: 3 * (100 + 1000) = 3300 ns
 *   at ctl's priority. Both cells are ctl's own ends, which conform (docs/
 *   analysis.md, "Own ends"): b posts RX buffers of its rx_buf, so its short piece
 *   is not charged to ctl's own test (neither cell receives a real-time stream
 *   flow: no credit updates to leave out): 2 * 1100 = 2200 ns charged. A window
 *   shorter than a period meets two: 2 * (80 + 2200).
 *   fp: B = 5196 (bulk's step; the free TX slots' ingest is in the budgets too);
 *   S = 5196 + 10392 + 4560 = 20148, F = S + 2908 = 23056; bound = 2000 + 23056 +
 *   3000 = 28056 ns (30256 with b's piece charged). */
static const char conf_ok[] =
	"[broker]\npolicy = fp\nchunk = 4KiB\n" CELLS
	"[flow ctl]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 10000\nperiod = 1ms\n"
	"deadline = 100us\n"
	"[flow bulk]\nfrom = b\nto = a:2000\ntype = stream\nsize = 64KiB\nclass = best-effort\n"
	PLATFORM;

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_json(void **state)
{
	const char *conf = write_file("ok.conf", conf_ok);
	const char *argv[] = { "analyze", conf, "--json" };
	json_t *doc, *flows, *f;
	json_error_t e;

	(void)state;
	assert_int_equal(run(3, argv), 0);
	doc = json_loads(out_buf, 0, &e);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "policy")), "fp");
	assert_true(json_is_true(json_object_get(doc, "schedulable")));
	/* 13300 + 3300 + 80 ns per 1 ms. */
	assert_true(json_real_value(json_object_get(doc, "utilization")) > 0.016679 &&
		    json_real_value(json_object_get(doc, "utilization")) < 0.016681);
	flows = json_object_get(doc, "flows");
	assert_int_equal(json_array_size(flows), 2);
	f = json_array_get(flows, 0);
	assert_string_equal(json_string_value(json_object_get(f, "name")), "ctl");
	assert_int_equal(json_integer_value(json_object_get(f, "priority")), 1);
	assert_true(json_real_value(json_object_get(f, "response_us")) == 23.056);
	assert_true(json_real_value(json_object_get(f, "latency_bound_us")) == 28.056);
	assert_true(json_real_value(json_object_get(f, "deadline_us")) == 100.0);
	assert_true(json_is_true(json_object_get(f, "schedulable")));
	/* Best-effort: null bounds. */
	f = json_array_get(flows, 1);
	assert_true(json_is_null(json_object_get(f, "response_us")));
	assert_true(json_is_null(json_object_get(f, "latency_bound_us")));
	assert_true(json_is_null(json_object_get(f, "priority")));
	json_decref(doc);
}

static void test_table_and_miss(void **state)
{
	char text[4096];
	const char *conf, *argv[2];

	(void)state;
	conf = write_file("ok.conf", conf_ok);
	argv[0] = "analyze";
	argv[1] = conf;
	assert_int_equal(run(2, argv), 0);
	assert_non_null(strstr(out_buf, "schedulable"));
	assert_non_null(strstr(out_buf, "28.056"));
	assert_non_null(strstr(out_buf, "0.004 us per packet"));
	assert_non_null(strstr(out_buf, "17 TX slots"));
	assert_non_null(strstr(out_buf, "20 packets ingested (0.080 us, above every flow), "
				   "2 control packets and 1 short RX pieces"));
	/* No page fault on cell memory is charged (the broker seals and populates it);
	 * a platform that still gives page_fault is refused, not silently ignored. */
	assert_null(strstr(out_buf, "page fault"));
	snprintf(text, sizeof(text), "%spage_fault = 1ns\n", conf_ok);
	argv[1] = write_file("faults.conf", text);
	assert_int_not_equal(run(2, argv), 0);
	/* A deadline below the 28.056 us bound: exit 1, "NO" in the table. */
	snprintf(text, sizeof(text), "%s", conf_ok);
	memcpy(strstr(text, "deadline = 100us"), "deadline = 20us ", 16);
	conf = write_file("miss.conf", text);
	argv[1] = conf;
	assert_int_equal(run(2, argv), 1);
	assert_non_null(strstr(out_buf, "NOT schedulable"));
	assert_non_null(strstr(out_buf, "NO"));
}

static void test_overload(void **state)
{
	/* 13300 ns every 9 us: utilisation 1.48. */
	char text[4096];
	const char *conf, *argv[3];

	(void)state;
	snprintf(text, sizeof(text), "%s", conf_ok);
	memcpy(strstr(text, "period = 1ms"), "period = 9us", 12);
	conf = write_file("over.conf", text);
	argv[0] = "analyze";
	argv[1] = conf;
	assert_int_equal(run(2, argv), 1);
	assert_non_null(strstr(out_buf, "OVERLOAD"));
	argv[2] = "--json";
	assert_int_equal(run(3, argv), 1);
	assert_non_null(strstr(out_buf, "\"overload\""));
	assert_non_null(strstr(out_buf, "\"latency_bound_us\": null"));
}

static void test_missing_platform(void **state)
{
	const char *conf = write_file("noplat.conf",
		"[broker]\npolicy = fp\n" CELLS
		"[flow ctl]\nfrom = a\nto = b:1000\nsize = 64\nperiod = 1ms\n"
		"[platform]\ncopy_bandwidth = 1GB/s\nchunk_overhead = 100ns\n");
	const char *argv[4] = { "analyze", conf };
	const char *plat;

	(void)state;
	assert_int_equal(run(2, argv), 2);
	/* Every missing key is named, on one line. */
	assert_non_null(strstr(err_buf, "packet_overhead"));
	assert_non_null(strstr(err_buf, "ingest_latency"));
	assert_non_null(strstr(err_buf, "notify_latency"));
	assert_non_null(strstr(err_buf, "ingest_step"));
	assert_non_null(strstr(err_buf, "batch_gap"));
	assert_null(strstr(err_buf, "copy_bandwidth"));
	assert_int_equal(strchr(err_buf, '\n') - err_buf + 1, (long)strlen(err_buf));
	/* --platform FILE fills them in (and its values win). */
	plat = write_file("plat.ini", PLATFORM);
	argv[2] = "--platform";
	argv[3] = plat;
	assert_int_equal(run(4, argv), 0);
	/* A platform file that does not exist. */
	argv[3] = "/nonexistent/plat.ini";
	assert_int_equal(run(4, argv), 2);
	assert_non_null(strstr(err_buf, "/nonexistent/plat.ini"));
	/* One with its section misspelt, and an empty one: errors naming the file, even
	 * where the config's own costs would have been complete. */
	argv[1] = write_file("fullplat.conf", conf_ok);
	argv[3] = write_file("misspelt.ini", "[platfrom]\ncopy_bandwidth = 1GB/s\n");
	assert_int_equal(run(4, argv), 2);
	assert_non_null(strstr(err_buf, "misspelt.ini"));
	assert_non_null(strstr(err_buf, "no [platform] section"));
	argv[3] = write_file("empty.ini", "");
	assert_int_equal(run(4, argv), 2);
	assert_non_null(strstr(err_buf, "empty.ini: no [platform] section"));
}

static void test_bad_configs(void **state)
{
	const char *argv[3] = { "analyze" };
	const char *conf;

	(void)state;
	/* Unknown key: the config loader's line, file and key. */
	conf = write_file("typo.conf", "[broker]\npolicy = fp\n" CELLS
			  "[flow ctl]\nfrom = a\nto = b:1000\nsize = 64\nperod = 1ms\n" PLATFORM);
	argv[1] = conf;
	assert_int_equal(run(2, argv), 2);
	assert_non_null(strstr(err_buf, "typo.conf"));
	assert_non_null(strstr(err_buf, "perod"));
	/* A file that does not exist. */
	argv[1] = "/nonexistent/x.conf";
	assert_int_equal(run(2, argv), 2);
	assert_non_null(strstr(err_buf, "/nonexistent/x.conf"));
	/* Some priorities given and others not: like the broker, the given ones first,
	 * then the rest deadline-monotonically. */
	conf = write_file("prio.conf", "[broker]\npolicy = fp\n" CELLS
			  "[flow x]\nfrom = a\nto = b:1\nsize = 64\nperiod = 1ms\n"
			  "[flow y]\nfrom = a\nto = b:2\nsize = 64\nperiod = 1ms\npriority = 5\n"
			  PLATFORM);
	argv[1] = conf;
	argv[2] = "--json";
	assert_int_equal(run(3, argv), 0);
	{
		json_t *doc = json_loads(out_buf, 0, NULL), *fl;

		assert_non_null(doc);
		fl = json_object_get(doc, "flows");
		assert_int_equal(json_integer_value(json_object_get(json_array_get(fl, 0),
								    "priority")), 2);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(fl, 1),
								    "priority")), 1);
		json_decref(doc);
	}
	argv[2] = "--assign";
	assert_int_equal(run(3, argv), 2); /* --assign without a value */
	{
		const char *a4[4] = { "analyze", conf, "--assign", "dm" };

		/* DM: equal deadlines, configuration order: x 1, y 2. */
		assert_int_equal(run(4, a4), 0);
		assert_non_null(strstr(out_buf, "x=1 y=2"));
		a4[3] = "rm";
		assert_int_equal(run(4, a4), 2);
		assert_non_null(strstr(err_buf, "expected dm or opa"));
	}
	/* Usage errors. */
	{
		const char *a1[1] = { "analyze" };
		const char *a2[2] = { "analyze", "--bogus" };
		const char *a3[3] = { "analyze", conf, conf };

		assert_int_equal(run(1, a1), 2);
		assert_int_equal(run(2, a2), 2);
		assert_int_equal(run(3, a3), 2);
		a2[1] = "--help";
		assert_int_equal(run(2, a2), 0);
		assert_non_null(strstr(out_buf, "usage: rtvio analyze"));
	}
	/* --assign on a policy without priorities. */
	conf = write_file("edf.conf", "[broker]\npolicy = edf\n" CELLS
			  "[flow x]\nfrom = a\nto = b:1\nsize = 64\nperiod = 1ms\n" PLATFORM);
	{
		const char *a4[4] = { "analyze", conf, "--assign", "opa" };

		assert_int_equal(run(4, a4), 2);
		assert_non_null(strstr(err_buf, "fp only"));
		assert_int_equal(run(2, a4), 0);
	}
}

/* OPA where deadline-monotonic fails (the a/b/c set of test_analysis.c's
 * test_opa_hand in sizes): no platform costs but 1 B/ns, each message one chunk.
 *   a: 400 B, D 1450 ns; b: 1000 B, D 3000 ns; c: 100 B, D 10 us; T = 10 us; chunk
 *   4 KiB. DM puts a first; it is blocked by b's 1000 ns message: 1400 <= 1450 fine;
 *   so make a's deadline 1350: DM fails (1400), and so does every order: OPA says
 *   none exists (exit 1). */
static void test_opa(void **state)
{
	const char *conf = write_file("opa.conf",
		"[broker]\npolicy = fp\nchunk = 4KiB\n" CELLS
		"[flow a]\nfrom = a\nto = b:1\ntype = seqpacket\nsize = 400\nperiod = 10us\n"
		"deadline = 1350ns\n"
		"[flow b]\nfrom = a\nto = b:2\ntype = seqpacket\nsize = 1000\nperiod = 10us\n"
		"deadline = 3us\n"
		"[flow c]\nfrom = a\nto = b:3\ntype = seqpacket\nsize = 100\nperiod = 10us\n"
		"[platform]\ncopy_bandwidth = 1GB/s\nchunk_overhead = 0\npacket_overhead = 0\n"
		"ingest_latency = 0\nnotify_latency = 0\ningest_step = 0\nbatch_gap = 0\n");
	const char *argv[4] = { "analyze", conf, "--assign", "opa" };

	(void)state;
	assert_int_equal(run(4, argv), 1);
	assert_non_null(strstr(err_buf, "no priority assignment"));
	/* With D_a = 1500 ns, OPA finds c 1, b 2, a 3 (see test_opa_hand) and prints it. */
	conf = write_file("opa2.conf",
		"[broker]\npolicy = fp\nchunk = 4KiB\n" CELLS
		"[flow a]\nfrom = a\nto = b:1\ntype = seqpacket\nsize = 400\nperiod = 10us\n"
		"deadline = 1500ns\n"
		"[flow b]\nfrom = a\nto = b:2\ntype = seqpacket\nsize = 1000\nperiod = 10us\n"
		"deadline = 3us\n"
		"[flow c]\nfrom = a\nto = b:3\ntype = seqpacket\nsize = 100\nperiod = 10us\n"
		"[platform]\ncopy_bandwidth = 1GB/s\nchunk_overhead = 0\npacket_overhead = 0\n"
		"ingest_latency = 0\nnotify_latency = 0\ningest_step = 0\nbatch_gap = 0\n"
		"vhost_user_msg = 0\nvhost_user_map = 0\n");
	argv[1] = conf;
	assert_int_equal(run(4, argv), 0);
	assert_non_null(strstr(out_buf, "a=3 b=2 c=1"));
}

/* On two cores (cells a, b dealt to cores 0, 1) --assign ranks each core's flows
 * apart: x, y toward b (core 1), z toward a (core 0). */
static void test_assign_per_core(void **state)
{
	const char *conf = write_file("assign2.conf",
		"[broker]\npolicy = fp\ncpus = 0,1\n" CELLS
		"[flow x]\nfrom = a\nto = b:1\ntype = seqpacket\nsize = 100\nperiod = 1ms\n"
		"deadline = 200us\n"
		"[flow y]\nfrom = a\nto = b:2\ntype = seqpacket\nsize = 100\nperiod = 1ms\n"
		"deadline = 100us\n"
		"[flow z]\nfrom = b\nto = a:3\ntype = seqpacket\nsize = 100\nperiod = 1ms\n"
		"deadline = 300us\n" PLATFORM);
	const char *argv[4] = { "analyze", conf, "--assign", "dm" };

	(void)state;
	assert_int_equal(run(4, argv), 0);
	assert_non_null(strstr(out_buf, "priorities (dm, ranked within each broker core;"));
	assert_non_null(strstr(out_buf, "x=2 y=1 z=1"));
	argv[3] = "opa";
	assert_int_equal(run(4, argv), 0);
	assert_non_null(strstr(out_buf, "priorities (opa, ranked within each broker core;"));
	/* Audsley's search gives the lowest level on core 1 to the first flow that meets
	 * its deadline there: x. */
	assert_non_null(strstr(out_buf, "x=2 y=1 z=1"));
}

/* Response of the first flow in the --json output of CONF (us), or -1. */
static double first_response(const char *conf)
{
	const char *argv[3] = { "analyze", conf, "--json" };
	json_t *doc, *v;
	double r = -1;

	if (run(3, argv) != 0)
		return -1;
	doc = json_loads(out_buf, 0, NULL);
	v = json_object_get(json_array_get(json_object_get(doc, "flows"), 0), "response_us");
	if (json_is_number(v))
		r = json_number_value(v);
	json_decref(doc);
	return r;
}

/* One 8000-byte seqpacket flow a -> b, chunk 4 KiB, 1 B/ns, overheads as PLATFORM:
 * ingest 4 ns per packet, ingest budgets 8 + 2 (ctl: floor(1ms / 1ms) + 1 messages of
 * one packet) and 8: 18 TX slots (in the budgets: no slot term in the pool), the
 * broker's RST reply a step of 100 + 1000 = 1100. Budgets per 1 ms: ingest a 10 + 1 + 1, b 8 + 1: 21 * 4
 * = 84 ns; a's and b's control packets and b's short piece ride ctl: 3300 ns, of
 * which ctl's own test leaves out b's piece (b is its receiver, "Own ends"): 2200
 * ns; two periods of each in every window below 1 ms: 2 * 2284 = 4568.
 * Process cell b (rx_buf 4096): pieces 4096, 3904: 4196 + 4004 + 2 * 1000: C =
 * 10200 (no per-packet ingest: it is in the budgets); no lower flow, the RST reply
 * blocks: B = 1100, R = 1100 + 10200 + 4568 = 15868.
 * vm cell b: RX payload at most 3732 (Linux 6.1 guest): pieces 3732, 3732, 536:
 * C = 2 * 3832 + 636 + 3 * 1000 = 11300, R = 16968.
 * default = best-effort: unnamed connections may block by a whole chunk (the
 * largest RX buffer a cell posts is 4096), e(4096) + 1000 = 5196: R = 5196 +
 * 10200 + 4568 = 19964; under fifo: unbounded.
 * fifo without it (no own ends left out: fifo's one busy period serves every flow
 * and charges all budgets): nothing blocks, B = 0; W(0) = 10200 + 2 * 3384 = 16968; stamps up to
 * 18 * 4 + 5196 = 5268 late (a pass over every slot, then ctl's step): 22236. */
static void test_cells_and_default_class(void **state)
{
	static const char base[] = "[broker]\npolicy = %s\n%s"
		"[cell a]\ncid = 3\n[cell b]\ncid = 4\n%s"
		"[flow ctl]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 8000\n"
		"period = 1ms\n" PLATFORM_NO_GAP "vhost_user_msg = 0\nvhost_user_map = 0\n";
	char text[2048];
	const char *argv[2] = { "analyze" };

	(void)state;
	snprintf(text, sizeof(text), base, "fp", "", "");
	strcat(text, "batch_gap = 0\n");
	assert_true(first_response(write_file("p.conf", text)) == 15.868);
	snprintf(text, sizeof(text), base, "fp", "", "vm = yes\n");
	strcat(text, "batch_gap = 0\n");
	assert_true(first_response(write_file("v.conf", text)) == 16.968);
	snprintf(text, sizeof(text), base, "fp", "default = best-effort\n", "");
	strcat(text, "batch_gap = 0\n");
	assert_true(first_response(write_file("d.conf", text)) == 19.964);
	snprintf(text, sizeof(text), base, "fifo", "default = best-effort\n", "");
	strcat(text, "batch_gap = 0\n");
	argv[1] = write_file("f.conf", text);
	assert_int_equal(run(2, argv), 1);
	assert_non_null(strstr(out_buf, "UNBOUNDED"));
	/* Without the default class, fifo has a bound. */
	snprintf(text, sizeof(text), base, "fifo", "", "");
	strcat(text, "batch_gap = 0\n");
	assert_true(first_response(write_file("g.conf", text)) == 22.236);
	/* A batch gap of 6400 ns (one per 64 steps): 100 ns per step, ctl's 2 steps:
	 * C = 10400; pool 6400 + 100 = 6500, B = 6500 + 1100 = 7600; each control
	 * packet and short piece riding ctl carries a share too: 2 * (2 * 1200 + 84)
	 * (b's piece left out): R = 7600 + 10400 + 4968 = 22968. */
	snprintf(text, sizeof(text), base, "fp", "", "");
	strcat(text, "batch_gap = 6400ns\n");
	assert_true(first_response(write_file("gap.conf", text)) == 22.968);
}

/* Response of flow k in the --json output of CONF (us), or -1. */
static double nth_response(const char *conf, size_t k)
{
	const char *argv[3] = { "analyze", conf, "--json" };
	json_t *doc, *v;
	double r = -1;

	if (run(3, argv) != 0)
		return -1;
	doc = json_loads(out_buf, 0, NULL);
	v = json_object_get(json_array_get(json_object_get(doc, "flows"), k), "response_us");
	if (json_is_number(v))
		r = json_number_value(v);
	json_decref(doc);
	return r;
}

/* Own ends (docs/analysis.md): ctl a -> b (8000 B per 1 ms, priority 1) and a stream
 * str b -> a (1000 B per 2 ms, priority 2), process cells (rx_buf 4096), chunk 4 KiB,
 * PLATFORM_NO_GAP with batch_gap 0 and vhost_user_msg 1 us (default buckets 8/5ms).
 *   ctl: pieces 4096, 3904: C = 4196 + 4004 + 2 * 1000 = 10200, q = 5004.
 *   str: one piece: C = q = Q = 1100 + 1000 = 2100.
 *   Budgets per 1 ms, allowance 1: a receives str, pending (2 + 0) / 2 + 1 = 2 and
 *   ceil(1 / 2) = 1 credit updates: K_a = 1 + 3 = 4, riding ctl (a's highest);
 *   P_a = 1 riding str (the only flow to a); K_b = 1 and P_b = 1 riding ctl. Ingest
 *   I_a = (8 + 2 + 2) + 1 + 1 + 1 = 15, I_b = (8 + 2) + 1 + 1 = 12: 27 * 4 = 108 ns
 *   per period. Ride of ctl: 5 control packets + 1 piece = 6600 ns; of str: 1100.
 *   vhost-user: 2 cells * 8 * 1 us = 16 us per 5 ms.
 *   ctl's own test: both cells are its ends. a's 3 credit updates belong to str,
 *   ranked below ctl, and b posts no short piece: ctl's ride charges 2 * 1100 =
 *   2200 per period; no vhost-user work (both buckets are its ends'). B = Q of str
 *   = 2100; S = 2100 + 5196 + 2 * 108 + 2 * 2200 = 11912, F = S + 5004 = 16916
 *   (charging everything: S = 2100 + 5196 + 216 + 13200 = 20712 and the least
 *   t = 20712 + 16000 + ceil(16000 t / 5 ms) = 36830, F = 41834).
 *   str's own test: a's credit updates are str's own rank (they stay), a's short
 *   piece (on str's ride) and b's (on ctl's) go: ctl's ride charges 5500; B = 1100
 *   (the RST reply, nothing lower); S = 1100 + 10200 + 2 * 5500 + 2 * 108 = 22516,
 *   F = S + 2100 = 24616. */
static void test_own_ends(void **state)
{
	static const char conf[] = "[broker]\npolicy = fp\nchunk = 4KiB\n" CELLS
		"[flow ctl]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 8000\n"
		"period = 1ms\npriority = 1\n"
		"[flow str]\nfrom = b\nto = a:2000\ntype = stream\nsize = 1000\n"
		"period = 2ms\npriority = 2\n"
		PLATFORM_NO_GAP "batch_gap = 0\nvhost_user_msg = 1us\nvhost_user_map = 0\n";
	const char *path = write_file("own.conf", conf);

	(void)state;
	assert_true(nth_response(path, 0) == 16.916);
	assert_true(nth_response(path, 1) == 24.616);
}

/* A 64-byte control flow every 1 ms (D = 1 ms, J = 0) next to best-effort bulk, the
 * broker regulated. Its demand per period by its deadline: (1 + 1) / 1 + 1 = 3
 * messages of 64 + 44 bytes = 324 B, and the headers of the control packets and
 * short pieces the cells' budgets let ride it: a (its sender) has its allowance of 1
 * control packet, b (its receiver) 1 + 3 credit updates (floor((D + J)/T) + 1 = 2
 * pending, ceil(P/T) = 1 more) and 1 short piece; c and d are ends of no real-time
 * flow. 6 headers per 1 ms budget period; charged when copied, up to D after the
 * budget released them, so those copied in one regulation period were released in
 * (a - D, a + Pi): ceil((1 ms + 1 ms) / 1 ms) + 1 = 3 budget periods, 18 * 44 = 792 B
 * (the credit updates among them). 1116 B, the broker's reserve (the model's). By its
 * unregulated response R (under 1 ms; one piece, nothing else real-time) the analysis
 * counts floor((1 ms + R + 2 us) / 1 ms) + 1 = 2 messages (an_rt_demand_bounded) and
 * ceil((1 ms + R + 2 us) / 1 ms) + 1 = 3 budget periods of headers: 216 + 792 = 1008 B,
 * within the reserve: the flow runs unregulated. With a budget of 1200 B (chunk 256)
 * the reserve is capped at 1200 - 150 = 1050 B, which still covers 1008 B; with 1100 B
 * it is capped at 1100 - 137 = 963 B and the regulated analysis answers, with at least
 * one refill charged. */
static void test_rt_reserve(void **state)
{
	static const char base[] = "[broker]\npolicy = fp\nchunk = 256\nregulation_budget = %s\n"
		"regulation_period = 1ms\n"
		"[cell a]\ncid = 3\n[cell b]\ncid = 4\n[cell c]\ncid = 5\n[cell d]\ncid = 6\n"
		"[flow ctl]\nfrom = a\nto = b:1000\ntype = stream\nsize = 64\nperiod = 1ms\n"
		"[flow bulk]\nfrom = c\nto = d:2000\ntype = stream\nsize = 1MiB\n"
		"class = best-effort\n" PLATFORM;
	char text[2048];
	const char *argv[2] = { "analyze" };
	double unreg, reserved, capped;
	json_t *doc;

	(void)state;
	snprintf(text, sizeof(text), base, "0");
	unreg = first_response(write_file("u.conf", text));
	snprintf(text, sizeof(text), base, "512KiB");
	argv[1] = write_file("r.conf", text);
	reserved = first_response(argv[1]);
	doc = json_loads(out_buf, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(doc, "rt_reserve_bytes")), 1116);
	assert_int_equal(json_integer_value(json_object_get(doc, "rt_demand_bytes")), 1008);
	assert_true(json_is_true(json_object_get(doc, "rt_reserved")));
	json_decref(doc);
	assert_true(unreg > 0 && reserved == unreg);
	assert_int_equal(run(2, argv), 0);
	assert_non_null(strstr(out_buf, "of which 1116 B are kept for the real-time flows, "
				"which charge at most 1008 B per period"));
	snprintf(text, sizeof(text), base, "1200");
	assert_true(first_response(write_file("c1200.conf", text)) == unreg);
	doc = json_loads(out_buf, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(doc, "rt_reserve_bytes")), 1050);
	assert_true(json_is_true(json_object_get(doc, "rt_reserved")));
	json_decref(doc);
	snprintf(text, sizeof(text), base, "1100");
	{
		const char *jargv[3] = { "analyze", write_file("c.conf", text), "--json" };
		json_t *r;

		assert_int_equal(run(3, jargv), 1); /* not schedulable any more */
		doc = json_loads(out_buf, 0, NULL);
		assert_int_equal(json_integer_value(json_object_get(doc, "rt_reserve_bytes")),
				 963);
		assert_false(json_is_true(json_object_get(doc, "rt_reserved")));
		r = json_object_get(json_array_get(json_object_get(doc, "flows"), 0),
				    "response_us");
		/* At least one refill of 1 ms charged, or no bound at all. */
		capped = json_is_number(r) ? json_number_value(r) : 1e12;
		json_decref(doc);
	}
	assert_true(capped > unreg + 1000.0);
}

/* The shipped configs that carry their own [platform] costs are schedulable with them
 * (the demos show a bound per flow; a config the analysis rejects would show bounds
 * above deadlines), and the table explains its columns. */
static void test_shipped_configs(void **state)
{
	static const char *const confs[] = { "demo.conf", "vmdemo.conf", "hetdemo.conf" };
	char path[4096];
	const char *argv[2] = { "analyze", path };

	(void)state;
	for (size_t i = 0; i < sizeof(confs) / sizeof(confs[0]); i++) {
		snprintf(path, sizeof(path), "%s/configs/%s", RTVIO_SOURCE_ROOT, confs[i]);
		if (run(2, argv) != 0)
			fail_msg("%s: not schedulable with its own costs:\n%s%s", path, out_buf,
				 err_buf);
		assert_non_null(strstr(out_buf, ": schedulable"));
		assert_non_null(strstr(out_buf, "C = broker time per message, q = its last"));
	}
}

/* The analyze document of `text` (written as `name`); returns the exit status. */
static int analyze_json(const char *name, const char *text, json_t **doc)
{
	const char *argv[3] = { "analyze", write_file(name, text), "--json" };
	json_error_t e;
	int ret = run(3, argv);

	*doc = json_loads(out_buf, 0, &e);
	if (!*doc)
		fail_msg("%s: no JSON document (%s):\n%s%s", name, e.text, out_buf, err_buf);
	return ret;
}

/* configs/twocore.conf, a broker on two cores: with its budget_period = 10ms every
 * real-time flow is schedulable with its own costs (docs/analysis.md, "Several
 * cores"); the same file with the default 1 ms period is overloaded, the cells'
 * allowance being charged as lock-carrying steps ten times as often. (demo.conf on
 * two cores is schedulable with no period: its control flow's 1 ms deadline leaves
 * less than one such step after its own and a blocking one, docs/analysis.md.) */
static void test_twocore_budget_period(void **state)
{
	static const char *const core_of[] = { "control", "status", "telemetry" };
	static const int core[] = { 1, 1, 0 };
	static char text[16384];
	char path[4096], *line;
	size_t len;
	json_t *doc, *flows;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/configs/twocore.conf", RTVIO_SOURCE_ROOT);
	f = fopen(path, "r");
	assert_non_null(f);
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	if (analyze_json("twocore.conf", text, &doc) != 0)
		fail_msg("twocore.conf: not schedulable:\n%s%s", out_buf, err_buf);
	assert_int_equal(json_integer_value(json_object_get(doc, "cores")), 2);
	assert_true(json_is_true(json_object_get(doc, "schedulable")));
	assert_string_equal(json_string_value(json_object_get(doc, "status")), "ok");
	flows = json_object_get(doc, "flows");
	for (size_t i = 0; i < 3; i++) {
		json_t *fl = json_array_get(flows, i);

		assert_string_equal(json_string_value(json_object_get(fl, "name")), core_of[i]);
		assert_int_equal(json_integer_value(json_object_get(fl, "core")), core[i]);
		assert_true(json_is_true(json_object_get(fl, "schedulable")));
	}
	json_decref(doc);
	/* The default period: the same flows, overloaded. */
	line = strstr(text, "\nbudget_period = 10ms");
	assert_non_null(line);
	memcpy(line, "\nbudget_period =  1ms", strlen("\nbudget_period =  1ms"));
	assert_int_equal(analyze_json("twocore1.conf", text, &doc), 1);
	assert_false(json_is_true(json_object_get(doc, "schedulable")));
	assert_string_equal(json_string_value(json_object_get(doc, "status")), "overload");
	json_decref(doc);
}

/* conf_ok with its [broker] section led by `extra`. */
static const char *with_broker(const char *name, const char *extra)
{
	static char text[4096];
	const char *rest = conf_ok + strlen("[broker]\n");

	snprintf(text, sizeof(text), "[broker]\n%s%s", extra, rest);
	return write_file(name, text);
}

/* One core named in `cpus` is today's broker: the table and the JSON document are
 * byte for byte those of the config without the key. */
static void test_one_core_identical(void **state)
{
	static char first[sizeof(out_buf)];
	const char *plain = write_file("plain.conf", conf_ok);
	const char *one = with_broker("one.conf", "cpus = 3\n");

	(void)state;
	for (int json = 0; json < 2; json++) {
		const char *a1[] = { "analyze", plain, "--json" };
		const char *a2[] = { "analyze", one, "--json" };

		assert_int_equal(run(2 + json, a1), 0);
		strcpy(first, out_buf);
		assert_int_equal(run(2 + json, a2), 0);
		assert_string_equal(out_buf, first);
		assert_null(strstr(out_buf, "core"));
	}
}

/* Two cores (cells a, b dealt to cores 0, 1): ctl (toward b) on core 1, bulk on 0.
 * Ingest budgets 9 (a) and 8 (b) TX slots at 4 ns: passes 36 and 32 ns. M's sections:
 * L_pick = 36 + 100, L_done = 1000: mutex (2 - 1) 1000 = 1 us; K has k = m: 0. W's
 * reader section, one step of the other core, which then waits for no one: the
 * longest (bulk's 5196) + pass 36 = 5232 ns; L_W = batch_gap = 0: B_W 5.232 us, per
 * write, as the control path writes at most twice per 1 ms budget period (spacing
 * 500 us >= B_W), so no step carries it. ctl: per step 2000 ns (the core's own pass
 * is in its cells' ingest budgets, not charged per step), per job 3 steps of it =
 * 6 us; before the pick, the first mutex wait: 1 us. With copy_slots = 1, K: kex =
 * one chunk's copy 4096 ns, ctl's per step 6.096 us. */
static void test_two_cores(void **state)
{
	const char *two = with_broker("two.conf", "cpus = 0,1\n");
	const char *argv[] = { "analyze", two, "--json" };
	json_t *doc, *f, *bl;
	json_error_t e;

	(void)state;
	run(3, argv);
	doc = json_loads(out_buf, 0, &e);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc, "cores")), 2);
	f = json_array_get(json_object_get(doc, "flows"), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "core")), 1);
	bl = json_object_get(f, "blocking");
	assert_true(json_real_value(json_object_get(bl, "mutex")) == 1.0);
	assert_int_equal(json_integer_value(json_object_get(bl, "mutex_per_step")), 2);
	assert_true(json_real_value(json_object_get(bl, "kex")) == 0.0);
	assert_true(json_real_value(json_object_get(bl, "rw_reader")) == 0.0);
	assert_true(json_real_value(json_object_get(bl, "rw_per_write")) == 5.232);
	assert_true(json_real_value(json_object_get(bl, "write_spacing")) == 500.0);
	assert_true(json_real_value(json_object_get(bl, "ingest_pass")) == 0.0);
	assert_true(json_real_value(json_object_get(bl, "per_step")) == 2.0);
	assert_true(json_real_value(json_object_get(bl, "pick_lead")) == 1.0);
	assert_true(json_real_value(json_object_get(bl, "per_job")) == 6.0);
	f = json_array_get(json_object_get(doc, "flows"), 1);
	assert_int_equal(json_integer_value(json_object_get(f, "core")), 0);
	json_decref(doc);
	/* The table names each flow's core and blocking. */
	argv[2] = NULL;
	run(2, argv);
	assert_non_null(strstr(out_buf, "2 broker cores"));
	assert_non_null(strstr(out_buf, "ctl                      1      1.000      0.000      "
				"0.000      0.000      2.000      6.000"));
	assert_non_null(strstr(out_buf, "at most one per 500.000 us"));
	/* One copy slot: a core may wait for the other's chunk. */
	argv[1] = with_broker("one_slot.conf", "cpus = 0,1\ncopy_slots = 1\n");
	argv[2] = "--json";
	run(3, argv);
	doc = json_loads(out_buf, 0, &e);
	assert_non_null(doc);
	bl = json_object_get(json_array_get(json_object_get(doc, "flows"), 0), "blocking");
	assert_true(json_real_value(json_object_get(bl, "kex")) == 4.096);
	assert_true(json_real_value(json_object_get(bl, "rw_reader")) == 0.0);
	assert_true(json_real_value(json_object_get(bl, "per_step")) == 6.096);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_table_and_miss),
		cmocka_unit_test(test_overload),
		cmocka_unit_test(test_missing_platform),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_opa),
		cmocka_unit_test(test_assign_per_core),
		cmocka_unit_test(test_cells_and_default_class),
		cmocka_unit_test(test_rt_reserve),
		cmocka_unit_test(test_shipped_configs),
		cmocka_unit_test(test_own_ends),
		cmocka_unit_test(test_one_core_identical),
		cmocka_unit_test(test_two_cores),
		cmocka_unit_test(test_twocore_budget_period),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
