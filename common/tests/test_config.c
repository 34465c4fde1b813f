/* The configuration loader: the shipped demo, a full round trip through
 * rtvio_config_dump(), defaults, workloads, the [platform] loader, scale, and every
 * error with its exact message (files written to /tmp, loaded through the real path). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#ifndef RTVIO_SOURCE_ROOT
#error "RTVIO_SOURCE_ROOT must name the source tree"
#endif

static char tmp_path[64];

/* Writes text to a fresh temporary file; returns its path (valid until the next call). */
static const char *write_tmp(const char *text)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/rtvio-cfgtest-XXXXXX");
	int fd = mkstemp(tmp_path);

	assert_true(fd >= 0);
	size_t len = strlen(text);

	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return tmp_path;
}

static int load_text(const char *text, struct rtvio_config *cfg, char *err, size_t errlen)
{
	const char *path = write_tmp(text);
	int ret = rtvio_config_load(path, cfg, err, errlen);

	unlink(path);
	return ret;
}

static void load_ok(const char *text, struct rtvio_config *cfg)
{
	char err[512] = "";

	if (load_text(text, cfg, err, sizeof(err)))
		fail_msg("valid config refused: %s", err);
}

/* Loads text from a file and checks that it fails with exactly "<path>:<want>". */
static void expect_error(const char *text, const char *want)
{
	struct rtvio_config cfg;
	char err[512] = "", full[512];
	int ret = load_text(text, &cfg, err, sizeof(err));

	/* want is "LINE: message", or ": message" for errors of the whole file. */
	snprintf(full, sizeof(full), want[0] == ':' ? "%s%s" : "%s:%s", tmp_path, want);
	if (ret == 0)
		fail_msg("accepted, expected error: %s", want);
	assert_int_equal(ret, -EINVAL);
	if (strcmp(err, full) != 0)
		fail_msg("wrong message\n   got: %s\n  want: %s", err, full);
	/* A failed load leaves nothing to free, and freeing is still safe. */
	assert_null(cfg.cells);
	assert_null(cfg.flows);
	assert_int_equal(cfg.ncells, 0);
	rtvio_config_free(&cfg);
}

#define CELLS "[cell a]\ncid = 3\n[cell b]\ncid = 4\n"
#define FLOW "[flow f]\nfrom = a\nto = b:1000\nsize = 64\nperiod = 1ms\n"

static void test_demo_conf(void **state)
{
	struct rtvio_config cfg;
	char err[512] = "";

	(void)state;
	if (rtvio_config_load(RTVIO_SOURCE_ROOT "/configs/demo.conf", &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(cfg.broker.policy, RTVIO_POLICY_FP);
	assert_int_equal(cfg.broker.chunk, 4096);
	assert_string_equal(cfg.broker.socket_dir, "/tmp/rtvio-demo");
	assert_int_equal(cfg.broker.cpu, 1);
	assert_true(cfg.broker.poll);
	assert_false(cfg.broker.default_best_effort);
	assert_int_equal(cfg.ncells, 3);
	assert_int_equal(cfg.nflows, 3);

	int sensor = rtvio_config_find_cell(&cfg, "sensor");
	int controller = rtvio_config_find_cell(&cfg, "controller");
	int logger = rtvio_config_find_cell(&cfg, "logger");

	assert_true(sensor >= 0 && controller >= 0 && logger >= 0);
	assert_int_equal(cfg.cells[sensor].cpu, 0);
	assert_int_equal(rtvio_config_find_cell_by_cid(&cfg, cfg.cells[logger].cid), logger);
	assert_int_equal(rtvio_config_find_cell(&cfg, "nobody"), -ENOENT);

	const struct rtvio_flow_cfg *c = &cfg.flows[rtvio_config_find_flow(&cfg, "control")];

	assert_int_equal(c->from, sensor);
	assert_int_equal(c->to, controller);
	assert_int_equal(c->type, RTVIO_SEQPACKET);
	assert_int_equal(c->size, 64);
	assert_int_equal(c->period_ns, 1000000);
	assert_int_equal(c->deadline_ns, 2000000);
	assert_false(c->best_effort);
	assert_int_equal(c->traffic.pattern, RTVIO_PATTERN_PERIODIC);

	const struct rtvio_flow_cfg *t = &cfg.flows[rtvio_config_find_flow(&cfg, "telemetry")];

	assert_int_equal(t->size, 4096);
	assert_int_equal(t->period_ns, 10000000);
	assert_int_equal(t->deadline_ns, 10000000); /* defaults to the period */

	const struct rtvio_flow_cfg *b = &cfg.flows[rtvio_config_find_flow(&cfg, "bulk")];

	assert_true(b->best_effort);
	assert_int_equal(b->size, 1 << 20);
	assert_int_equal(b->traffic.pattern, RTVIO_PATTERN_BULK);
	assert_int_equal(b->traffic.size, 1 << 20);
	/* The demo's point: bulk shares no cell with the control flow. */
	assert_true(b->from != c->from && b->from != c->to && b->to != c->to);

	assert_int_equal(cfg.platform.present, RTVIO_PLAT_ALL);
	assert_true(cfg.platform.copy_bandwidth > 0);
	rtvio_config_free(&cfg);
}

static char *dump(const struct rtvio_config *cfg);

/* Every file shipped in configs/ loads, and survives a dump and reload. */
static void test_shipped_configs(void **state)
{
	DIR *d = opendir(RTVIO_SOURCE_ROOT "/configs");
	struct dirent *e;
	int loaded = 0;

	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char path[512], err[512] = "";
		struct rtvio_config cfg, again;

		if (n < 5 || strcmp(e->d_name + n - 5, ".conf") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/configs/%s", RTVIO_SOURCE_ROOT, e->d_name);
		if (rtvio_config_load(path, &cfg, err, sizeof(err)))
			fail_msg("%s", err);
		char *text = dump(&cfg);

		if (rtvio_config_parse(text, e->d_name, &again, err, sizeof(err)))
			fail_msg("dump of %s: %s", e->d_name, err);
		free(text);
		assert_int_equal(again.nflows, cfg.nflows);
		rtvio_config_free(&cfg);
		rtvio_config_free(&again);
		loaded++;
	}
	closedir(d);
	assert_true(loaded >= 2); /* demo.conf and vmdemo.conf at least */
}

/* Everything but line numbers and file names. */
static void assert_same_config(const struct rtvio_config *a, const struct rtvio_config *b)
{
	struct rtvio_broker_cfg ba = a->broker, bb = b->broker;

	ba.line = bb.line = 0;
	ba.socket_dir_line = bb.socket_dir_line = 0;
	assert_memory_equal(&ba, &bb, sizeof(ba));
	assert_int_equal(a->ncells, b->ncells);
	assert_int_equal(a->nflows, b->nflows);
	assert_int_equal(a->nworkloads, b->nworkloads);
	for (int i = 0; i < a->ncells; i++) {
		struct rtvio_cell_cfg x = a->cells[i], y = b->cells[i];

		x.line = y.line = 0;
		assert_memory_equal(&x, &y, sizeof(x));
	}
	for (int i = 0; i < a->nflows; i++) {
		struct rtvio_flow_cfg x = a->flows[i], y = b->flows[i];

		x.line = y.line = 0;
		assert_memory_equal(&x, &y, sizeof(x));
	}
	for (int i = 0; i < a->nworkloads; i++) {
		struct rtvio_workload_cfg x = a->workloads[i], y = b->workloads[i];

		x.line = y.line = 0;
		assert_memory_equal(&x, &y, sizeof(x));
	}
	struct rtvio_platform_cfg pa = a->platform, pb = b->platform;

	pa.line = pb.line = 0;
	memset(pa.path, 0, sizeof(pa.path));
	memset(pb.path, 0, sizeof(pb.path));
	assert_memory_equal(&pa, &pb, sizeof(pa));
}

static char *dump(const struct rtvio_config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(rtvio_config_dump(cfg, f), 0);
	fclose(f);
	return buf;
}

static const char full_config[] =
	"# every key of every section, units of every kind\n"
	"[broker]\n"
	"policy = edf\n"
	"chunk = 1.5KiB\n"
	"socket_dir = /tmp/rt x\n"
	"cpu = 0\n"
	"rt_priority = 99\n"
	"poll = no\n"
	"default = best-effort\n"
	"regulation_budget = 1MB\n"
	"regulation_period = 250us\n"
	"budget_period = 20ms\n"
	"vhost_user_total = 32/2ms\n"
	"vhost_user_total_maps = 3/20ms\n"
	"\n"
	"[cell p1]\n"
	"cid = 3\n"
	"region = 64KiB\n"
	"rx_buf = 2KiB\n"
	"max_packet = 1000\n"
	"cpu = 0\n"
	"rt_priority = 10\n"
	"[cell vm-2]\n"
	"cid = 4294967294\n"
	"vm = yes\n"
	"memory = 512MiB\n"
	"[cell p_3]\n"
	"cid = 77\n"
	"\n"
	"[flow rt1]\n"
	"from = p1:5\n"
	"to = vm-2:4294967294\n"
	"type = seqpacket\n"
	"size = 256KiB\n"
	"period = 0.5s\n"
	"deadline = 2s\n"
	"jitter = 3us\n"
	"priority = 7\n"
	"[flow rt2]\n"
	"from = p1:6\n"
	"to = vm-2:4294967294\n"
	"type = seqpacket\n"
	"size = 1\n"
	"period = 1ns\n"
	"class = real-time\n"
	"[flow be]\n"
	"from = vm-2\n"
	"to = p_3:9\n"
	"size = 3MB\n"
	"class = best-effort\n"
	"\n"
	"[workload w1]\n"
	"flow = be\n"
	"pattern = periodic\n"
	"period = 20ms\n"
	"offset = 1ms\n"
	"count = 1000\n"
	"[workload w2]\n"
	"flow = rt2\n"
	"pattern = off\n"
	"[workload w3]\n"
	"flow = rt1\n"
	"size = 100\n"
	"\n"
	"[platform]\n"
	"copy_bandwidth = 8GB/s\n"
	"chunk_overhead = 300ns\n"
	"packet_overhead = 1us\n"
	"ingest_latency = 5us\n"
	"notify_latency = 20\xc2\xb5s\n"
	"ingest_step = 2us\n"
	"batch_gap = 3us\n";

static void test_full_round_trip(void **state)
{
	struct rtvio_config a, b;
	char err[512] = "";

	(void)state;
	load_ok(full_config, &a);
	assert_int_equal(a.broker.policy, RTVIO_POLICY_EDF);
	assert_int_equal(a.broker.chunk, 1536);
	assert_string_equal(a.broker.socket_dir, "/tmp/rt x");
	assert_int_equal(a.broker.cpu, 0);
	assert_int_equal(a.broker.rt_priority, 99);
	assert_false(a.broker.poll);
	assert_true(a.broker.default_best_effort);
	assert_int_equal(a.broker.regulation_budget, 1000000);
	assert_int_equal(a.broker.regulation_period_ns, 250000);
	assert_int_equal(a.broker.budget_period_ns, 20000000);
	assert_int_equal(a.broker.vhu_total_msgs, 32);
	assert_int_equal(a.broker.vhu_total_period_ns, 2000000);
	assert_int_equal(a.broker.vhu_total_maps, 3);
	assert_int_equal(a.broker.vhu_total_map_period_ns, 20000000);
	assert_int_equal(a.broker.line, 2);

	assert_int_equal(a.ncells, 3);
	assert_int_equal(a.cells[0].region, 65536);
	assert_int_equal(a.cells[0].rx_buf, 2048);
	assert_int_equal(a.cells[0].max_packet, 1000);
	assert_int_equal(a.cells[0].rt_priority, 10);
	assert_int_equal(a.cells[0].line, 16);
	assert_int_equal(a.cells[1].cid, 4294967294u);
	assert_true(a.cells[1].vm);
	assert_int_equal(a.cells[1].memory, 512ull << 20);
	assert_int_equal(a.cells[2].cid, 77);
	assert_int_equal(a.cells[2].cpu, -1);

	const struct rtvio_flow_cfg *f = &a.flows[0];

	assert_int_equal(f->from, 0);
	assert_int_equal(f->from_port, 5);
	assert_int_equal(f->to, 1);
	assert_int_equal(f->to_port, 4294967294u);
	assert_int_equal(f->type, RTVIO_SEQPACKET);
	assert_int_equal(f->size, 256 * 1024);
	assert_int_equal(f->period_ns, 500000000);
	assert_int_equal(f->deadline_ns, 2000000000); /* longer than the period: allowed */
	assert_int_equal(f->jitter_ns, 3000);
	assert_int_equal(f->priority, 7);
	assert_int_equal(f->traffic.size, 100);
	assert_int_equal(f->traffic.period_ns, 500000000);
	assert_int_equal(f->traffic.workload, 2);
	f = &a.flows[1];
	assert_int_equal(f->type, RTVIO_SEQPACKET);
	assert_int_equal(f->period_ns, 1);
	assert_int_equal(f->traffic.pattern, RTVIO_PATTERN_OFF);
	f = &a.flows[2];
	assert_int_equal(f->type, RTVIO_STREAM);
	assert_true(f->best_effort);
	assert_int_equal(f->from_port, RTVIO_PORT_ANY);
	assert_int_equal(f->period_ns, 0);
	assert_int_equal(f->traffic.pattern, RTVIO_PATTERN_PERIODIC);
	assert_int_equal(f->traffic.period_ns, 20000000);
	assert_int_equal(f->traffic.offset_ns, 1000000);
	assert_int_equal(f->traffic.count, 1000);
	assert_int_equal(f->traffic.size, 3000000);
	assert_int_equal(a.workloads[0].flow, 2);

	assert_int_equal(a.platform.present, RTVIO_PLAT_ALL);
	assert_int_equal(a.platform.batch_gap, 3000);
	assert_int_equal(a.platform.copy_bandwidth, 8000000000ull);
	assert_int_equal(a.platform.chunk_overhead, 300);
	assert_int_equal(a.platform.notify_latency, 20000);

	/* Connection look-up: source ports tell rt1 and rt2 apart. */
	assert_int_equal(rtvio_config_match_flow(&a, 0, 5, 1, 4294967294u), 0);
	assert_int_equal(rtvio_config_match_flow(&a, 0, 6, 1, 4294967294u), 1);
	assert_int_equal(rtvio_config_match_flow(&a, 0, 7, 1, 4294967294u), -ENOENT);
	assert_int_equal(rtvio_config_match_flow(&a, 1, 12345, 2, 9), 2);
	assert_int_equal(rtvio_config_match_flow(&a, 2, 12345, 1, 9), -ENOENT);

	/* Dump, reload, compare; the second dump is identical to the first. */
	char *d1 = dump(&a);

	if (rtvio_config_parse(d1, "dump", &b, err, sizeof(err)))
		fail_msg("dump does not load: %s\n%s", err, d1);
	assert_same_config(&a, &b);
	char *d2 = dump(&b);

	assert_string_equal(d1, d2);
	free(d1);
	free(d2);
	rtvio_config_free(&a);
	rtvio_config_free(&b);
}

static void test_defaults(void **state)
{
	struct rtvio_config cfg;

	(void)state;
	load_ok(CELLS FLOW, &cfg);
	assert_int_equal(cfg.broker.policy, RTVIO_POLICY_FP);
	assert_int_equal(cfg.broker.chunk, 4096);
	assert_string_equal(cfg.broker.socket_dir, "/tmp/rtvio");
	assert_int_equal(cfg.broker.cpu, -1);
	assert_int_equal(cfg.broker.rt_priority, 0);
	assert_false(cfg.broker.poll);
	assert_false(cfg.broker.default_best_effort);
	assert_int_equal(cfg.broker.regulation_budget, 0);
	assert_int_equal(cfg.broker.regulation_period_ns, 1000000);
	assert_int_equal(cfg.broker.budget_period_ns, 1000000);
	assert_int_equal(cfg.broker.copy, RTVIO_COPY_NORMAL);
	assert_true(cfg.broker.pm_qos);
	assert_int_equal(cfg.broker.line, 0);
	assert_false(cfg.cells[0].vm);
	assert_int_equal(cfg.cells[0].region, 2 << 20);
	assert_int_equal(cfg.cells[0].rx_buf, 4096);
	assert_int_equal(cfg.cells[0].max_packet, 65536);
	assert_int_equal(cfg.cells[0].cpu, -1);
	assert_int_equal(cfg.cells[0].connections, 256);
	const struct rtvio_flow_cfg *f = &cfg.flows[0];

	assert_int_equal(f->type, RTVIO_STREAM);
	assert_int_equal(f->from_port, RTVIO_PORT_ANY);
	assert_int_equal(f->deadline_ns, 1000000);
	assert_int_equal(f->jitter_ns, 0);
	assert_int_equal(f->priority, 0);
	assert_false(f->best_effort);
	assert_int_equal(f->traffic.pattern, RTVIO_PATTERN_PERIODIC);
	assert_int_equal(f->traffic.size, 64);
	assert_int_equal(f->traffic.period_ns, 1000000);
	assert_int_equal(f->traffic.count, 0);
	assert_int_equal(f->traffic.workload, -1);
	assert_int_equal(cfg.platform.present, 0);
	assert_int_equal(cfg.platform.line, 0);
	char missing[256];

	assert_int_equal(rtvio_platform_missing(&cfg.platform, missing, sizeof(missing)), 7);
	assert_string_equal(missing, "copy_bandwidth, chunk_overhead, packet_overhead, "
				     "ingest_latency, notify_latency, ingest_step, batch_gap");
	rtvio_config_free(&cfg);

	/* Comments of both kinds, blank lines, odd spacing. */
	load_ok("; comment\n# comment\n\n  [ broker ]  \r\npolicy=fifo ; inline\r\n"
		"chunk   =   8 KiB\n[cell\ta ]\ncid = 3\n[cell b]\ncid = 4\n" FLOW, &cfg);
	assert_int_equal(cfg.broker.policy, RTVIO_POLICY_FIFO);
	assert_int_equal(cfg.broker.chunk, 8192);
	assert_int_equal(cfg.broker.line, 4);
	assert_string_equal(cfg.cells[0].name, "a");
	rtvio_config_free(&cfg);
}

static void test_platform_file(void **state)
{
	struct rtvio_platform_cfg p, q;
	char err[512] = "", missing[256];

	(void)state;
	/* Other sections, even ones the full loader would refuse, are ignored. */
	const char *path = write_tmp("; written by rtvio calibrate\n[broker]\nnonsense = 1\n"
				     "[whatever]\nx = y\n[platform]\ncopy_bandwidth = 4GiB/s\n"
				     "ingest_step = 3us\n");

	if (rtvio_platform_load(path, &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(p.present, RTVIO_PLAT_COPY_BANDWIDTH | RTVIO_PLAT_INGEST_STEP);
	assert_int_equal(p.copy_bandwidth, 4ull << 30);
	assert_int_equal(p.ingest_step, 3000);
	assert_int_equal(p.line, 6);
	assert_string_equal(p.path, path);
	assert_int_equal(rtvio_platform_missing(&p, missing, sizeof(missing)), 5);
	assert_string_equal(missing, "chunk_overhead, packet_overhead, ingest_latency, "
				     "notify_latency, batch_gap");
	unlink(path);

	/* rtvio_platform_write() output reads back identically. */
	p.present = RTVIO_PLAT_ALL;
	p.batch_gap = 7000;
	p.chunk_overhead = 123;
	p.packet_overhead = 1001;
	p.ingest_latency = 5000000;
	p.notify_latency = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_int_equal(rtvio_platform_write(f, &p), 0);
	fclose(f);
	path = write_tmp(buf);
	free(buf);
	if (rtvio_platform_load(path, &q, err, sizeof(err)))
		fail_msg("%s", err);
	unlink(path);
	assert_int_equal(q.present, RTVIO_PLAT_ALL);
	assert_int_equal(q.copy_bandwidth, p.copy_bandwidth);
	assert_int_equal(q.chunk_overhead, 123);
	assert_int_equal(q.packet_overhead, 1001);
	assert_int_equal(q.ingest_latency, 5000000);
	assert_int_equal(q.notify_latency, 0);
	assert_int_equal(q.ingest_step, 3000);
	assert_int_equal(q.batch_gap, 7000);
	assert_int_equal(rtvio_platform_missing(&q, missing, sizeof(missing)), 0);
	assert_string_equal(missing, "");
	path = write_tmp("[platform]\nbatch_gap = 1ms\n");
	if (rtvio_platform_load(path, &q, err, sizeof(err)))
		fail_msg("%s", err);
	unlink(path);
	assert_int_equal(q.present, RTVIO_PLAT_BATCH_GAP);
	assert_int_equal(q.batch_gap, 1000000);
	assert_int_equal(rtvio_platform_missing(&q, missing, sizeof(missing)), 6);
	assert_null(strstr(missing, "batch_gap"));

	/* A file without [platform] (a misspelt section, a config with none) is an
	 * error naming the file: it was given for its platform costs. */
	path = write_tmp(CELLS);
	assert_int_equal(rtvio_platform_load(path, &q, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "no [platform] section"));
	assert_int_equal(q.present, 0);
	unlink(path);

	/* Errors inside [platform] are still errors. */
	char want[512];

	path = write_tmp("[platform]\ncopy_bandwidth = 8GB\n");
	assert_int_equal(rtvio_platform_load(path, &q, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: [platform] key 'copy_bandwidth': '8GB': expected a "
		 "bandwidth such as 8GB/s or 500MiB/s", path);
	assert_string_equal(err, want);
	unlink(path);
	path = write_tmp("[platform]\ncopy_bandwith = 8GB/s\n");
	assert_int_equal(rtvio_platform_load(path, &q, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: [platform] key 'copy_bandwith': unknown key (expected "
		 "one of: copy_bandwidth, chunk_overhead, packet_overhead, ingest_latency, "
		 "notify_latency, ingest_step, batch_gap, change_step, vhost_user_msg, "
		 "vhost_user_map, wake_write)", path);
	assert_string_equal(err, want);
	unlink(path);
	/* page_fault is gone: an old file that gives it is told why. */
	path = write_tmp("[platform]\npage_fault = 700ns\n");
	assert_int_equal(rtvio_platform_load(path, &q, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: [platform] key 'page_fault': no longer a key: the "
		 "broker seals a process cell's memory and touches no cell memory before its "
		 "memory thread has faulted it in, so the data path takes no page fault a cell "
		 "can cause and none is charged (docs/analysis.md, \"Page faults on cell "
		 "memory\"): remove the line", path);
	assert_string_equal(err, want);
	unlink(path);
	assert_int_equal(rtvio_platform_load("/tmp", &q, err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "/tmp: cannot read: Is a directory");
	assert_int_equal(rtvio_platform_load("/nonexistent/p.conf", &q, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/p.conf: cannot open: No such file or directory");
}

static void test_workloads(void **state)
{
	struct rtvio_config cfg;

	(void)state;
	load_ok(CELLS FLOW "[flow be]\nfrom = b\nto = a:7\nsize = 1KiB\nclass = best-effort\n"
		"[workload x]\nflow = f\npattern = bulk\nsize = 32\n"
		"[workload y]\nflow = be\ncount = 5\n", &cfg);
	assert_int_equal(cfg.nworkloads, 2);
	assert_int_equal(cfg.flows[0].traffic.pattern, RTVIO_PATTERN_BULK);
	assert_int_equal(cfg.flows[0].traffic.size, 32);
	assert_int_equal(cfg.flows[0].traffic.period_ns, 0);
	assert_int_equal(cfg.flows[0].traffic.workload, 0);
	/* The declaration is untouched by its workload. */
	assert_int_equal(cfg.flows[0].size, 64);
	assert_int_equal(cfg.flows[0].period_ns, 1000000);
	assert_int_equal(cfg.flows[1].traffic.pattern, RTVIO_PATTERN_BULK);
	assert_int_equal(cfg.flows[1].traffic.count, 5);
	assert_int_equal(cfg.flows[1].traffic.size, 1024);
	rtvio_config_free(&cfg);
}

/* The scale benchmark's shape: 64 cells, 640 flows (10 per cell, to its neighbours). */
static void test_scale(void **state)
{
	size_t cap = 1 << 20, n = 0;
	char *text = malloc(cap);
	struct rtvio_config cfg;

	(void)state;
	assert_non_null(text);
	n += (size_t)snprintf(text + n, cap - n, "[broker]\nsocket_dir = /tmp/rtvio-scale\n");
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(text + n, cap - n, "[cell c%d]\ncid = %d\n", i, 100 + i);
	for (int i = 0; i < 640; i++)
		n += (size_t)snprintf(text + n, cap - n,
				      "[flow f%d]\nfrom = c%d\nto = c%d:%d\nsize = 64\n"
				      "period = %dus\n", i, i % 64, (i % 64 + 1 + i / 64) % 64,
				      1000 + i, 1000 + i);
	assert_true(n < cap);
	load_ok(text, &cfg);
	assert_int_equal(cfg.ncells, 64);
	assert_int_equal(cfg.nflows, 640);
	assert_int_equal(cfg.flows[639].period_ns, 1639000);
	assert_int_equal(rtvio_config_find_flow(&cfg, "f639"), 639);
	rtvio_config_free(&cfg);

	/* One cell over the limit. */
	n = 0;
	for (int i = 0; i <= RTVIO_MAX_CELLS; i++)
		n += (size_t)snprintf(text + n, cap - n, "[cell c%d]\ncid = %d\n", i, 100 + i);
	char want[128];

	snprintf(want, sizeof(want), "%d: too many cells (at most %d)", 2 * RTVIO_MAX_CELLS + 1,
		 RTVIO_MAX_CELLS);
	expect_error(text, want);
	free(text);
}

static void test_errors_keys(void **state)
{
	(void)state;
	expect_error(CELLS "[flow control]\nfrom = a\nto = b:1\nsize = 64\nperod = 1ms\n",
		     "9: [flow control] key 'perod': unknown key (expected one of: from, to, type, "
		     "size, period, deadline, jitter, priority, class)");
	expect_error("[broker]\npolcy = fp\n" CELLS,
		     "2: [broker] key 'polcy': unknown key (expected one of: policy, chunk, "
		     "socket_dir, cpu, rt_priority, poll, default, regulation_budget, "
		     "regulation_period, copy, pm_qos, max_cells, max_flows, cpus, copy_slots, "
		     "vhost_user_budget, vhost_user_maps, budget_period, vhost_user_total, "
		     "vhost_user_total_maps)");
	expect_error("[cell a]\ncid = 3\nregoin = 1MiB\n",
		     "3: [cell a] key 'regoin': unknown key (expected one of: cid, vm, region, "
		     "memory, rx_buf, max_packet, cpu, rt_priority, connections, poll_us, arch, kind, "
		     "image, args, cpu_max, broker_core, allowance)");
	expect_error(CELLS FLOW "[workload w]\nflow = f\npatern = bulk\n",
		     "12: [workload w] key 'patern': unknown key (expected one of: flow, pattern, "
		     "size, period, offset, count)");
	expect_error(CELLS "[cell c]\ncid = 5\ncid = 6\n",
		     "7: [cell c] key 'cid': given twice in one section (an indented line "
		     "continues the key above it)");
	expect_error(CELLS "[flow f]\nfrom = a\n  [flow g]\n",
		     "7: [flow f] key 'from': given twice in one section (an indented line "
		     "continues the key above it)");
	expect_error(CELLS "[flow f]\nfrom = a\n  to = b:1\n",
		     "7: [flow f] key 'from': given twice in one section (an indented line "
		     "continues the key above it)");
}

static void test_errors_values(void **state)
{
	(void)state;
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 4 KB\n",
		     "8: [flow f] key 'size': '4 KB': expected a size such as 64, 4KiB or 2MB "
		     "(units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 4\nperiod = 1 sec\n",
		     "9: [flow f] key 'period': '1 sec': expected a time such as 0, 500us or 1ms "
		     "(units ns, us, ms, s)");
	/* A time needs its unit: a bare 1000 is neither 1000 s nor 1000 ns. */
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 4\nperiod = 1000\n",
		     "9: [flow f] key 'period': '1000': a time needs a unit: ns, us, ms or s "
		     "(only 0 may be bare)");
	expect_error("[broker]\nregulation_period = 2\n" CELLS,
		     "2: [broker] key 'regulation_period': '2': a time needs a unit: ns, us, ms "
		     "or s (only 0 may be bare)");
	/* The per-cell budgets' period: 100us..1s, with its unit. */
	expect_error("[broker]\nbudget_period = 50us\n" CELLS,
		     "2: [broker] key 'budget_period': '50us': expected a time from 100us to 1s");
	expect_error("[broker]\nbudget_period = 2s\n" CELLS,
		     "2: [broker] key 'budget_period': '2s': expected a time from 100us to 1s");
	expect_error("[broker]\nbudget_period = 10\n" CELLS,
		     "2: [broker] key 'budget_period': '10': a time needs a unit: ns, us, ms "
		     "or s (only 0 may be bare)");
	expect_error(CELLS "[platform]\nnotify_latency = 20\n",
		     "6: [platform] key 'notify_latency': '20': a time needs a unit: ns, us, ms "
		     "or s (only 0 may be bare)");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 4\nperiod = 0\n",
		     "9: [flow f] key 'period': '0': expected a time from 1ns to 3600s");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 4\njitter = -1ms\n",
		     "9: [flow f] key 'jitter': '-1ms': negative values are not allowed");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 4\ndeadline = 2h\n",
		     "9: [flow f] key 'deadline': '2h': expected a time such as 0, 500us or 1ms "
		     "(units ns, us, ms, s)");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 4\ndeadline = 3601s\n",
		     "9: [flow f] key 'deadline': '3601s': expected a time from 1ns to 3600s");
	expect_error("[broker]\nchunk = 99999999999999999999\n" CELLS,
		     "2: [broker] key 'chunk': '99999999999999999999': value too large");
	expect_error("[broker]\nchunk = 2GiB\n" CELLS,
		     "2: [broker] key 'chunk': '2GiB': expected a size from 1B to 1GiB");
	expect_error("[broker]\nchunk = 0\n" CELLS,
		     "2: [broker] key 'chunk': '0': expected a size from 1B to 1GiB");
	expect_error("[broker]\ncpu = -2\n" CELLS,
		     "2: [broker] key 'cpu': '-2': expected a whole number from -1 to 1023");
	expect_error("[broker]\nrt_priority = 100\n" CELLS,
		     "2: [broker] key 'rt_priority': '100': expected a whole number from 0 to 99");
	expect_error("[broker]\npolicy = rm\n" CELLS,
		     "2: [broker] key 'policy': 'rm': expected fp, edf or fifo");
	expect_error("[broker]\ndefault = allow\n" CELLS,
		     "2: [broker] key 'default': 'allow': expected deny or best-effort");
	expect_error("[broker]\npoll = yes # busy\n" CELLS,
		     "2: [broker] key 'poll': 'yes # busy': expected yes or no");
	expect_error("[broker]\nsocket_dir =\n" CELLS,
		     "2: [broker] key 'socket_dir': expected a directory");
	expect_error("[cell a]\ncid = 2\n",
		     "2: [cell a] key 'cid': '2': expected a whole number from 3 to 4294967294");
	expect_error("[cell a]\ncid = 4294967295\n",
		     "2: [cell a] key 'cid': '4294967295': expected a whole number from 3 to "
		     "4294967294");
	expect_error("[cell a]\ncid = three\n",
		     "2: [cell a] key 'cid': 'three': expected a whole number from 3 to 4294967294");
	expect_error("[cell a]\ncid = 3\nregion = 65537\n",
		     "3: [cell a] key 'region': '65537': expected a multiple of 4KiB (a whole number "
		     "of pages)");
	expect_error("[cell a]\ncid = 3\nregion = 4KiB\n",
		     "3: [cell a] key 'region': '4KiB': expected a size from 64KiB to 16GiB");
	expect_error("[cell a]\ncid = 3\nvm = maybe\n",
		     "3: [cell a] key 'vm': 'maybe': expected yes or no");
	expect_error("[cell a]\ncid = 3\nvm = yes\nmemory = 100MB\n",
		     "4: [cell a] key 'memory': '100MB': expected a multiple of 1MiB");
	expect_error("[cell a]\ncid = 3\nrx_buf = 2MiB\n",
		     "3: [cell a] key 'rx_buf': '2MiB': expected a size from 64B to 1MiB");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b\n",
		     "7: [flow f] key 'to': 'b': expected CELL:PORT (the port the receiver listens "
		     "on)");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:0\n",
		     "7: [flow f] key 'to': 'b:0': expected a port from 1 to 4294967294 after ':'");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:4294967295\n",
		     "7: [flow f] key 'to': 'b:4294967295': expected a port from 1 to 4294967294 "
		     "after ':'");
	expect_error(CELLS "[flow f]\nfrom = a:x\n",
		     "6: [flow f] key 'from': 'a:x': expected a port from 1 to 4294967294 after ':'");
	expect_error(CELLS "[flow f]\nfrom = a b\n",
		     "6: [flow f] key 'from': 'a b': expected CELL or CELL:PORT, and 'a b' is not a "
		     "valid cell name");
	expect_error(CELLS "[flow f]\nfrom = :5\n",
		     "6: [flow f] key 'from': ':5': expected CELL or CELL:PORT");
	expect_error(CELLS "[flow f]\ntype = dgram\n",
		     "6: [flow f] key 'type': 'dgram': expected stream or seqpacket");
	expect_error(CELLS "[flow f]\nclass = rt\n",
		     "6: [flow f] key 'class': 'rt': expected real-time or best-effort");
	expect_error(CELLS "[flow f]\npriority = 0\n",
		     "6: [flow f] key 'priority': '0': expected a whole number from 1 to 1000000");
	expect_error(CELLS FLOW "[workload w]\nflow = f\ncount = -1\n",
		     "12: [workload w] key 'count': '-1': expected a whole number from 0 to "
		     "9223372036854775807");
	expect_error(CELLS FLOW "[workload w]\nflow = f\npattern = burst\n",
		     "12: [workload w] key 'pattern': 'burst': expected periodic, bulk or off");
	expect_error("[platform]\ncopy_bandwidth = 0GB/s\n" CELLS,
		     "2: [platform] key 'copy_bandwidth': '0GB/s': expected a bandwidth above zero");
}

/* [broker] copy: both values load, survive a dump and reload, and anything else is
 * refused with the choices named. */
static void test_copy_key(void **state)
{
	struct rtvio_config a, b;
	char err[512] = "";

	(void)state;
	load_ok("[broker]\ncopy = nt\n" CELLS FLOW, &a);
	assert_int_equal(a.broker.copy, RTVIO_COPY_NT);
	char *d = dump(&a);

	assert_non_null(strstr(d, "\ncopy = nt\n"));
	if (rtvio_config_parse(d, "dump", &b, err, sizeof(err)))
		fail_msg("dump does not load: %s\n%s", err, d);
	assert_int_equal(b.broker.copy, RTVIO_COPY_NT);
	assert_same_config(&a, &b);
	free(d);
	rtvio_config_free(&a);
	rtvio_config_free(&b);

	load_ok("[broker]\ncopy = normal\n" CELLS FLOW, &a);
	assert_int_equal(a.broker.copy, RTVIO_COPY_NORMAL);
	d = dump(&a);
	assert_non_null(strstr(d, "\ncopy = normal\n"));
	free(d);
	rtvio_config_free(&a);

	/* pm_qos: a yes/no that survives the dump as well */
	load_ok("[broker]\npm_qos = no\n" CELLS FLOW, &a);
	assert_false(a.broker.pm_qos);
	d = dump(&a);
	assert_non_null(strstr(d, "\npm_qos = no\n"));
	free(d);
	rtvio_config_free(&a);
	expect_error("[broker]\npm_qos = 0us\n" CELLS,
		     "2: [broker] key 'pm_qos': '0us': expected yes or no");
	/* max_cells / max_flows: room for run-time changes, at least what is configured */
	load_ok("[broker]\nmax_cells = 9\nmax_flows = 7\n" CELLS FLOW, &a);
	assert_int_equal(a.broker.max_cells, 9);
	assert_int_equal(a.broker.max_flows, 7);
	d = dump(&a);
	assert_non_null(strstr(d, "\nmax_cells = 9\nmax_flows = 7\n"));
	free(d);
	rtvio_config_free(&a);
	expect_error("[broker]\nmax_cells = 1\n" CELLS,
		     "2: [broker] key 'max_cells': 1 is smaller than the 2 cells configured");

	assert_string_equal(rtvio_copy_name(RTVIO_COPY_NT), "nt");
	assert_string_equal(rtvio_copy_name(RTVIO_COPY_NORMAL), "normal");
	expect_error("[broker]\ncopy = NT\n" CELLS,
		     "2: [broker] key 'copy': 'NT': expected normal or nt");
	expect_error("[broker]\ncopy = \n" CELLS,
		     "2: [broker] key 'copy': '': expected normal or nt");
	expect_error("[broker]\ncopy = nt\ncopy = normal\n" CELLS,
		     "3: [broker] key 'copy': given twice in one section (an indented line "
		     "continues the key above it)");
}

static void test_errors_sections(void **state)
{
	char longline[400];

	(void)state;
	expect_error(CELLS "[flows f]\nfrom = a\n",
		     "5: unknown section [flows f] (expected [broker], [cell NAME], [flow NAME], "
		     "[workload NAME] or [platform])");
	expect_error(CELLS "[brokr]\n",
		     "5: unknown section [brokr] (expected [broker], [cell NAME], [flow NAME], "
		     "[workload NAME] or [platform])");
	expect_error("[cell]\ncid = 3\n", "1: section [cell] needs a name (expected [cell NAME])");
	expect_error("[broker main]\ncpu = 1\n",
		     "1: section [broker main] takes no name (expected [broker])");
	expect_error("[cell a.b]\ncid = 3\n",
		     "1: [cell a.b]: invalid name 'a.b' (expected at most 31 letters, digits, '-' or "
		     "'_', starting with a letter or digit)");
	expect_error("[cell abcdefghijabcdefghijabcdefghijab]\ncid = 3\n",
		     "1: [cell abcdefghijabcdefghijabcdefghijab]: invalid name "
		     "'abcdefghijabcdefghijabcdefghijab' (expected at most 31 letters, digits, '-' or "
		     "'_', starting with a letter or digit)");
	expect_error("[broker]\ncpu = 1\n" CELLS "[broker]\npoll = yes\n",
		     "7: section [broker] given twice (first at line 1)");
	expect_error("[platform]\ningest_step = 1us\n[platform]\nchunk_overhead = 1us\n" CELLS,
		     "3: section [platform] given twice (first at line 1)");
	expect_error("cid = 3\n[cell a]\n",
		     "1: key outside any section (expected a [broker], [cell NAME], [flow NAME], "
		     "[workload NAME] or [platform] line first)");
	expect_error(CELLS "this is not ini\n",
		     "5: syntax error (expected '[section]', 'key = value' or a comment)");
	expect_error(CELLS "[flow f\nfrom = a\n",
		     "5: syntax error (expected '[section]', 'key = value' or a comment)");
	/* A syntax error before a semantic one is reported first. */
	expect_error("[cell a]\ncid\ncid = 2\n",
		     "2: syntax error (expected '[section]', 'key = value' or a comment)");
	expect_error(CELLS "[cell c]\n; nothing\n[flow f]\nfrom = a\n",
		     "5: section [cell c] has no keys (a cell needs at least 'cid')");
	expect_error(CELLS FLOW "[workload w]\n",
		     "10: section [workload w] has no keys (a workload needs at least 'flow')");
	expect_error(CELLS "[flow g]\n",
		     "5: section [flow g] has no keys (a flow needs at least 'from, to and size')");
	expect_error(CELLS "[cel x]\n",
		     "5: unknown section [cel x] (expected [broker], [cell NAME], [flow NAME], "
		     "[workload NAME] or [platform])");
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "[cell a]\ncid = 3\nregion = ", 26);
	longline[sizeof(longline) - 1] = '\0';
	expect_error(longline, "3: line too long (at most 199 characters)");
	expect_error("", ": no [cell NAME] section (a configuration needs at least one cell)");
	expect_error("[broker]\npoll = yes\n",
		     ": no [cell NAME] section (a configuration needs at least one cell)");
}

/* [broker] vhost_user_budget and vhost_user_maps, [platform] vhost_user_msg and
 * vhost_user_map: defaults, values and bad input. */
static void test_vhost_user_budget(void **state)
{
	struct rtvio_config cfg;

	(void)state;
	load_ok(CELLS FLOW, &cfg);
	assert_int_equal(cfg.broker.vhu_msgs, 8);
	assert_int_equal(cfg.broker.vhu_period_ns, 5000000);
	assert_int_equal(cfg.broker.vhu_maps, 1);
	assert_int_equal(cfg.broker.vhu_map_period_ns, 10000000);
	assert_int_equal(cfg.broker.vhu_total_msgs, 16);
	assert_int_equal(cfg.broker.vhu_total_period_ns, 5000000);
	assert_int_equal(cfg.broker.vhu_total_maps, 2);
	assert_int_equal(cfg.broker.vhu_total_map_period_ns, 10000000);
	assert_int_equal(cfg.platform.vhost_user_msg, 4000);
	assert_int_equal(cfg.platform.vhost_user_map, 40000);
	rtvio_config_free(&cfg);
	load_ok("[broker]\nvhost_user_budget = 40/5ms\nvhost_user_maps = 3/1s\n"
		"vhost_user_total = 100/20ms\nvhost_user_total_maps = 5/100ms\n" CELLS FLOW
		"[platform]\nvhost_user_msg = 2us\nvhost_user_map = 100us\n", &cfg);
	assert_int_equal(cfg.broker.vhu_msgs, 40);
	assert_int_equal(cfg.broker.vhu_period_ns, 5000000);
	assert_int_equal(cfg.broker.vhu_maps, 3);
	assert_int_equal(cfg.broker.vhu_map_period_ns, 1000000000);
	assert_int_equal(cfg.broker.vhu_total_msgs, 100);
	assert_int_equal(cfg.broker.vhu_total_period_ns, 20000000);
	assert_int_equal(cfg.broker.vhu_total_maps, 5);
	assert_int_equal(cfg.broker.vhu_total_map_period_ns, 100000000);
	assert_int_equal(cfg.platform.vhost_user_msg, 2000);
	assert_int_equal(cfg.platform.vhost_user_map, 100000);
	assert_true(cfg.platform.present & RTVIO_PLAT_VHOST_USER_MAP);
	rtvio_config_free(&cfg);
	expect_error("[broker]\nvhost_user_budget = 16\n" CELLS,
		     "2: [broker] key 'vhost_user_budget': '16': expected MESSAGES/PERIOD, for "
		     "example 8/5ms");
	expect_error("[broker]\nvhost_user_budget = 0/10ms\n" CELLS,
		     "2: [broker] key 'vhost_user_budget': '0/10ms': the message count must be a "
		     "whole number from 1 to 1024 (expected MESSAGES/PERIOD, for example 8/5ms)");
	expect_error("[broker]\nvhost_user_budget = 16/10\n" CELLS,
		     "2: [broker] key 'vhost_user_budget': '16/10': the period: a time needs a "
		     "unit: ns, us, ms or s (only 0 may be bare) (expected MESSAGES/PERIOD, for "
		     "example 8/5ms)");
	expect_error("[broker]\nvhost_user_budget = 16/10us\n" CELLS,
		     "2: [broker] key 'vhost_user_budget': '16/10us': the period must be from "
		     "100us to 1s");
	expect_error("[broker]\nvhost_user_maps = 1\n" CELLS,
		     "2: [broker] key 'vhost_user_maps': '1': expected MESSAGES/PERIOD, for "
		     "example 8/5ms");
	expect_error("[broker]\nvhost_user_total = 2000/5ms\n" CELLS,
		     "2: [broker] key 'vhost_user_total': '2000/5ms': the message count must be "
		     "a whole number from 1 to 1024 (expected MESSAGES/PERIOD, for example 8/5ms)");
	expect_error("[broker]\nvhost_user_total_maps = 2/2s\n" CELLS,
		     "2: [broker] key 'vhost_user_total_maps': '2/2s': the period must be from "
		     "100us to 1s");
}

static void test_errors_cross_checks(void **state)
{
	(void)state;
	/* Cells. */
	expect_error("[cell a]\ncid = 3\n[cell b]\ncid = 3\n",
		     "4: [cell b] key 'cid': duplicate cid 3 (already used by cell a at line 1)");
	expect_error("[cell a]\ncid = 3\n[cell a]\ncid = 4\n",
		     "3: duplicate cell name 'a' (first at line 1)");
	expect_error("[cell a]\ncid = 3\n[flow a]\nfrom = a\n[cell a]\ncid = 4\n",
		     "5: duplicate cell name 'a' (first at line 1)");
	expect_error("[cell a]\nvm = yes\n",
		     "1: [cell a]: missing key 'cid' (a vsock address, 3 or more)");
	expect_error("[cell control]\ncid = 3\n",
		     "1: [cell control]: the name 'control' is reserved (<socket_dir>/control.sock "
		     "is the broker's control socket)");
	expect_error("[cell a]\ncid = 3\nregion = 1MiB\nvm = yes\n",
		     "3: [cell a] key 'region': applies to process cells only (this cell has vm = "
		     "yes; use 'memory')");
	expect_error("[cell a]\ncid = 3\nmemory = 1GiB\n",
		     "3: [cell a] key 'memory': applies to vm cells only (add vm = yes, or use "
		     "'region')");
	expect_error("[broker]\nsocket_dir = /tmp/0123456789012345678901234567890123456789"
		     "0123456789012345678901234567890123456789\n"
		     "[cell abcdefghijklmnopqrstu]\ncid = 3\n",
		     "3: [cell abcdefghijklmnopqrstu]: socket path /tmp/0123456789012345678901234567"
		     "8901234567890123456789012345678901234567890123456789/abcdefghijklmnopqrstu.sock "
		     "is too long (at most 107 characters)");
#define DIR95 "/tmp/0123456789012345678901234567890123456789012345678901234567890123456789" \
	"01234567890123456789"
	expect_error("[broker]\nsocket_dir = " DIR95 "\n[cell a]\ncid = 3\n",
		     "2: [broker] key 'socket_dir': '" DIR95 "' is too long for a socket path "
		     "(at most 94 characters)");
#undef DIR95
	expect_error("[broker]\nregulation_budget = 1KiB\n" CELLS,
		     "2: [broker] key 'regulation_budget': 1KiB is smaller than chunk (4KiB), so a "
		     "chunk could never be copied (expected 0 or at least chunk)");
	/* Flows. */
	expect_error(CELLS "[flow f]\nfrom = a\nto = contrller:1000\nsize = 64\nperiod = 1ms\n",
		     "7: [flow f] key 'to': unknown cell 'contrller' (no [cell contrller] section)");
	expect_error(CELLS "[flow f]\nfrom = x\nto = b:1000\nsize = 64\nperiod = 1ms\n",
		     "6: [flow f] key 'from': unknown cell 'x' (no [cell x] section)");
	expect_error(CELLS "[flow f]\nto = b:1000\nsize = 64\nperiod = 1ms\n",
		     "5: [flow f]: missing key 'from' (the sending cell, CELL or CELL:PORT)");
	expect_error(CELLS "[flow f]\nfrom = a\nsize = 64\nperiod = 1ms\n",
		     "5: [flow f]: missing key 'to' (the receiving cell and its listening port, "
		     "CELL:PORT)");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nperiod = 1ms\n",
		     "5: [flow f]: missing key 'size' (bytes per message (seqpacket) or per period "
		     "(stream))");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 64\n",
		     "5: [flow f]: missing key 'period' (the minimum time between messages of a "
		     "real-time flow; or class = best-effort)");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 0\nperiod = 1ms\ntype = seqpacket\n",
		     "8: [flow f] key 'size': a seqpacket flow needs messages of at least 1 byte");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 0B\nperiod = 1ms\n",
		     "8: [flow f] key 'size': a stream flow needs at least 1 byte per period");
	expect_error(CELLS "[flow f]\nfrom = a\nto = a:1\nsize = 1\nperiod = 1ms\n",
		     "7: [flow f] key 'to': the flow starts and ends at cell a (a flow joins two "
		     "different cells)");
	expect_error(CELLS "[flow f]\nfrom = a\nto = b:1\nsize = 1\nclass = best-effort\n"
		     "priority = 3\n",
		     "10: [flow f] key 'priority': not for a best-effort flow (it has no period, "
		     "deadline or priority; a [workload] sets its pace)");
	expect_error(CELLS "[flow f]\nfrom = a\nperiod = 1ms\nto = b:1\nsize = 1\n"
		     "class = best-effort\n",
		     "7: [flow f] key 'period': not for a best-effort flow (it has no period, "
		     "deadline or priority; a [workload] sets its pace)");
	expect_error(CELLS FLOW "[flow f]\nfrom = b\nto = a:1\nsize = 1\nperiod = 1ms\n",
		     "10: duplicate flow name 'f' (first at line 5)");
	expect_error(CELLS FLOW "[flow g]\nfrom = a:7\nto = b:1000\nsize = 1\nperiod = 1ms\n",
		     "10: [flow g]: stream connections from a to b:1000 would also match flow f (line 5); "
		     "give each a distinct source port (from = CELL:PORT)");
	/* A port may carry flows of both socket types, as vsock allows: the loader
	 * accepts them (whether a cell can listen for both is the cell's to say). */
	{
		struct rtvio_config cfg;

		load_ok(CELLS "[cell c]\ncid = 5\n" FLOW
			"[flow g]\nfrom = c\nto = b:1000\ntype = seqpacket\nsize = 1\nperiod = 1ms\n",
			&cfg);
		assert_int_equal(cfg.nflows, 2);
		assert_int_equal(cfg.flows[0].type, RTVIO_STREAM);
		assert_int_equal(cfg.flows[1].type, RTVIO_SEQPACKET);
		assert_int_equal(cfg.flows[0].to_port, cfg.flows[1].to_port);
		assert_int_equal(cfg.flows[0].to, cfg.flows[1].to);
		rtvio_config_free(&cfg);
		load_ok(CELLS "[cell c]\ncid = 5\n"
			"[flow f]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 64\nperiod = 1ms\n"
			"[flow g]\nfrom = c\nto = b:1000\nsize = 1\nperiod = 1ms\n", &cfg);
		assert_int_equal(cfg.flows[0].type, RTVIO_SEQPACKET);
		assert_int_equal(cfg.flows[1].type, RTVIO_STREAM);
		rtvio_config_free(&cfg);
	}
	{
		struct rtvio_config cfg;

		/* The same cells and port with both types: two flows, told apart by the
		 * type of the connection (what the kernel's vsock_test suite needs). */
		load_ok(CELLS FLOW
			"[flow g]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 1\nperiod = 1ms\n",
			&cfg);
		assert_int_equal(cfg.nflows, 2);
		rtvio_config_free(&cfg);
		load_ok(CELLS "[cell c]\ncid = 5\n" FLOW
			"[flow g]\nfrom = c\nto = b:1000\nsize = 1\nperiod = 1ms\n"
			"[flow h]\nfrom = a\nto = c:1000\ntype = seqpacket\nsize = 1\nperiod = 1ms\n",
			&cfg);
		assert_int_equal(cfg.nflows, 3);
		rtvio_config_free(&cfg);
	}
	/* Workloads. */
	expect_error(CELLS FLOW "[workload w]\npattern = bulk\n",
		     "10: [workload w]: missing key 'flow' (the flow it drives)");
	expect_error(CELLS FLOW "[workload w]\nflow = g\n",
		     "11: [workload w] key 'flow': unknown flow 'g' (no [flow g] section)");
	expect_error(CELLS FLOW "[workload w]\nflow = f\n[workload v]\nflow = f\n",
		     "12: [workload v]: flow f already has a workload (w, line 10)");
	expect_error(CELLS FLOW "[workload w]\nflow = f\npattern = bulk\nperiod = 1ms\n",
		     "13: [workload w] key 'period': only for pattern = periodic");
	expect_error(CELLS "[flow be]\nfrom = a\nto = b:1\nsize = 1\nclass = best-effort\n"
		     "[workload w]\nflow = be\npattern = periodic\n",
		     "10: [workload w]: missing key 'period' (flow be is best-effort and has no "
		     "period of its own)");
	expect_error(CELLS FLOW "[workload w]\nflow = f\npattern = off\ncount = 3\n",
		     "10: [workload w]: pattern = off takes no size, offset or count");
	expect_error(CELLS FLOW "[workload w]\nflow = f\n[workload w]\nflow = f\n",
		     "12: duplicate workload name 'w' (first at line 10)");
}

/* A relative socket_dir is the directory next to the config file, whatever the
 * current directory; the loader hands every command the absolute path. */
static void test_socket_dir_relative(void **state)
{
	char dir[] = "/tmp/rtvio-cfgdir-XXXXXX", path[128], want[160], cwd[4096];
	struct rtvio_config cfg;
	char err[512] = "";
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[broker]\nsocket_dir = ./sock\n[cell a]\ncid = 3\n", f);
	fclose(f);
	snprintf(want, sizeof(want), "%s/sock", dir);
	assert_int_equal(rtvio_config_load(path, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.broker.socket_dir, want);
	assert_int_equal(cfg.broker.socket_dir_line, 2);
	rtvio_config_free(&cfg);
	/* The same file named relative to another current directory. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/tmp"), 0);
	assert_int_equal(rtvio_config_load(path + strlen("/tmp/"), &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.broker.socket_dir, want);
	rtvio_config_free(&cfg);
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(rtvio_config_load("x.conf", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.broker.socket_dir, want);
	rtvio_config_free(&cfg);
	assert_int_equal(chdir(cwd), 0);
	unlink(path);
	rmdir(dir);
	/* Absolute ones and the default are kept as they are. */
	load_ok("[broker]\nsocket_dir = /tmp/rtvio-abs\n" CELLS, &cfg);
	assert_string_equal(cfg.broker.socket_dir, "/tmp/rtvio-abs");
	rtvio_config_free(&cfg);
	load_ok(CELLS, &cfg);
	assert_int_equal(cfg.broker.socket_dir_line, 0);
	rtvio_config_free(&cfg);
}

/* A socket_dir that cannot be a directory is a config error at its line. */
static void test_socket_dir_errors(void **state)
{
	(void)state;
	expect_error("[broker]\npolicy = fp\nsocket_dir = /dev/null\n" CELLS,
		     "3: [broker] key 'socket_dir': /dev/null exists and is not a directory");
	expect_error("[broker]\nsocket_dir = /dev/null/rtvio\n" CELLS,
		     "2: [broker] key 'socket_dir': /dev/null/rtvio: a part of the path is not a "
		     "directory");
}

/* A UTF-8 byte order mark at the top of the file is not text: the file reads as
 * without it, and lines are still counted from the first. */
static void test_bom(void **state)
{
	struct rtvio_config cfg;

	(void)state;
	load_ok("\xef\xbb\xbf[cell a]\ncid = 3\n", &cfg);
	assert_int_equal(cfg.ncells, 1);
	assert_string_equal(cfg.cells[0].name, "a");
	assert_int_equal(cfg.cells[0].line, 1);
	rtvio_config_free(&cfg);
	load_ok("\xef\xbb\xbf; rtvio\n[broker]\npolicy = edf\n" CELLS, &cfg);
	assert_int_equal(cfg.broker.policy, RTVIO_POLICY_EDF);
	assert_int_equal(cfg.broker.line, 2);
	rtvio_config_free(&cfg);
	assert_int_equal(rtvio_config_parse("\xef\xbb\xbf[cell a]\ncid = 3\n", "bom.conf", &cfg,
					    NULL, 0), 0);
	rtvio_config_free(&cfg);
	expect_error("\xef\xbb\xbf[cell a]\ncid = 2\n",
		     "2: [cell a] key 'cid': '2': expected a whole number from 3 to 4294967294");
}

/* [cell] connections: the cell's share of the broker's connection table. */
/* [cell] poll_us: microseconds a blocking call of `rtvio cell` spins before it
 * sleeps; 0 (the default) sleeps at once. */
/* [broker] cpus and [cell] broker_core: the list, its errors and the round trip. */
static void test_broker_cpus(void **state)
{
	struct rtvio_config cfg, again;
	char *text;

	(void)state;
	load_ok("[broker]\ncpu = 3\n" CELLS, &cfg);
	assert_int_equal(cfg.broker.ncores, 1);
	assert_int_equal(cfg.broker.cpus[0], 3);
	assert_int_equal(cfg.broker.copy_slots, 1);
	rtvio_config_free(&cfg);
	load_ok("[broker]\ncpus = 0, 1\ncopy_slots = 1\n" CELLS "[cell c]\ncid = 5\nbroker_core = 0\n",
		&cfg);
	assert_int_equal(cfg.broker.ncores, 2);
	assert_int_equal(cfg.broker.copy_slots, 1);
	assert_int_equal(cfg.broker.cpu, 0);
	assert_int_equal(cfg.broker.cpus[1], 1);
	assert_int_equal(cfg.cells[0].broker_core, -1);
	assert_int_equal(cfg.cells[2].broker_core, 0);
	text = dump(&cfg);
	assert_non_null(strstr(text, "cpus = 0,1\n"));
	assert_non_null(strstr(text, "broker_core = 0\n"));
	assert_non_null(strstr(text, "copy_slots = 1\n"));
	load_ok(text, &again);
	assert_int_equal(again.broker.copy_slots, 1);
	assert_same_config(&cfg, &again);
	rtvio_config_free(&again);
	rtvio_config_free(&cfg);
	free(text);
	expect_error("[broker]\ncpus = 1,1\n" CELLS,
		     "2: [broker] key 'cpus': '1,1': cpu 1 is listed twice");
	expect_error("[broker]\ncpus = 1;2\n" CELLS,
		     "2: [broker] key 'cpus': '1;2': expected a list of cpu numbers 0..1023, "
		     "separated by commas");
	expect_error("[broker]\ncpus = 0,1,2,3,4,5,6,7,8\n" CELLS,
		     "2: [broker] key 'cpus': '0,1,2,3,4,5,6,7,8': at most 8 cores");
	expect_error("[broker]\ncpu = 1\ncpus = 1,2\n" CELLS,
		     "3: [broker] key 'cpus': 'cpu' is given too (line 2): give one of them");
	expect_error("[broker]\ncpus = 1,2\n[cell a]\ncid = 3\nbroker_core = 2\n",
		     "5: [cell a] key 'broker_core': 2, but the broker has 2 cores (expected "
		     "0..1: an index into [broker] cpus)");
	expect_error("[broker]\ncopy_slots = 0\n" CELLS,
		     "2: [broker] key 'copy_slots': '0': expected a whole number from 1 to 8");
}

/* [broker] copy_slots: 1..ncores, ncores when absent; kept by the round trip. */
static void test_broker_copy_slots(void **state)
{
	struct rtvio_config cfg, again;
	char *text;

	(void)state;
	load_ok("[broker]\ncpus = 0,1,2\ncopy_slots = 1\n" CELLS, &cfg);
	assert_int_equal(cfg.broker.ncores, 3);
	assert_int_equal(cfg.broker.copy_slots, 1);
	text = dump(&cfg);
	assert_non_null(strstr(text, "copy_slots = 1\n"));
	load_ok(text, &again);
	assert_same_config(&cfg, &again);
	rtvio_config_free(&again);
	rtvio_config_free(&cfg);
	free(text);
	/* One core: 1 is the only choice, and the dump of a one-core broker is unchanged. */
	load_ok("[broker]\ncopy_slots = 1\n" CELLS, &cfg);
	assert_int_equal(cfg.broker.copy_slots, 1);
	text = dump(&cfg);
	assert_null(strstr(text, "copy_slots"));
	rtvio_config_free(&cfg);
	free(text);
	expect_error("[broker]\ncpus = 1,2\ncopy_slots = 3\n" CELLS,
		     "3: [broker] key 'copy_slots': 3, but the broker has 2 cores (expected "
		     "1..2: at most every core copies at once)");
	expect_error("[broker]\ncopy_slots = 2\n" CELLS,
		     "2: [broker] key 'copy_slots': 2, but the broker has 1 core (expected "
		     "1..1: at most every core copies at once)");
	expect_error("[broker]\ncpus = 1,2\ncopy_slots = 0\n" CELLS,
		     "3: [broker] key 'copy_slots': '0': expected a whole number from 1 to 8");
	expect_error("[broker]\ncpus = 1,2\ncopy_slots = two\n" CELLS,
		     "3: [broker] key 'copy_slots': 'two': expected a whole number from 1 to 8");
}

static void test_cell_poll_us(void **state)
{
	struct rtvio_config cfg;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	load_ok("[cell a]\ncid = 3\npoll_us = 50\n[cell b]\ncid = 4\npoll_us = 1000000\n"
		"[cell c]\ncid = 5\n", &cfg);
	assert_int_equal(cfg.cells[0].poll_us, 50);
	assert_int_equal(cfg.cells[1].poll_us, 1000000);
	assert_int_equal(cfg.cells[2].poll_us, 0);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(rtvio_config_dump(&cfg, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "poll_us = 50\n"));
	assert_non_null(strstr(text, "poll_us = 0\n"));
	rtvio_config_free(&cfg);
	load_ok(text, &cfg);
	assert_int_equal(cfg.cells[0].poll_us, 50);
	assert_int_equal(cfg.cells[1].poll_us, 1000000);
	rtvio_config_free(&cfg);
	free(text);
	expect_error("[cell a]\ncid = 3\npoll_us = -1\n",
		     "3: [cell a] key 'poll_us': '-1': expected a whole number from 0 to 1000000");
	expect_error("[cell a]\ncid = 3\npoll_us = 1000001\n",
		     "3: [cell a] key 'poll_us': '1000001': expected a whole number from 0 to "
		     "1000000");
}

static void test_cell_connections(void **state)
{
	struct rtvio_config cfg;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	load_ok("[cell a]\ncid = 3\nconnections = 1\n[cell b]\ncid = 4\nconnections = 65535\n"
		"[cell c]\ncid = 5\n", &cfg);
	assert_int_equal(cfg.cells[0].connections, 1);
	assert_int_equal(cfg.cells[1].connections, 65535);
	assert_int_equal(cfg.cells[2].connections, 256);
	/* The dump spells it out, and reads back the same. */
	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(rtvio_config_dump(&cfg, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "[cell a]\ncid = 3\n"));
	assert_non_null(strstr(text, "connections = 1\n"));
	assert_non_null(strstr(text, "connections = 65535\n"));
	assert_non_null(strstr(text, "connections = 256\n"));
	rtvio_config_free(&cfg);
	load_ok(text, &cfg);
	assert_int_equal(cfg.cells[0].connections, 1);
	assert_int_equal(cfg.cells[1].connections, 65535);
	rtvio_config_free(&cfg);
	free(text);
	expect_error("[cell a]\ncid = 3\nconnections = 0\n",
		     "3: [cell a] key 'connections': '0': expected a whole number from 1 to 65535");
	expect_error("[cell a]\ncid = 3\nconnections = 65536\n",
		     "3: [cell a] key 'connections': '65536': expected a whole number from 1 to "
		     "65535");
	expect_error("[cell a]\ncid = 3\nconnections = many\n",
		     "3: [cell a] key 'connections': 'many': expected a whole number from 1 to "
		     "65535");
}

/* [cell] allowance: per budget period beyond the cell's flows (model.h); default 1,
 * 1 to 65535, dumped and read back. */
static void test_cell_allowance(void **state)
{
	struct rtvio_config cfg;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	load_ok("[cell a]\ncid = 3\nallowance = 4\n[cell b]\ncid = 4\n", &cfg);
	assert_int_equal(cfg.cells[0].allowance, 4);
	assert_int_equal(cfg.cells[1].allowance, RTVIO_ALLOWANCE_DEFAULT);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(rtvio_config_dump(&cfg, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "allowance = 4\n"));
	assert_non_null(strstr(text, "allowance = 1\n"));
	rtvio_config_free(&cfg);
	load_ok(text, &cfg);
	assert_int_equal(cfg.cells[0].allowance, 4);
	assert_int_equal(cfg.cells[1].allowance, 1);
	rtvio_config_free(&cfg);
	free(text);
	expect_error("[cell a]\ncid = 3\nallowance = 0\n",
		     "3: [cell a] key 'allowance': '0': expected a whole number from 1 to 65535");
	expect_error("[cell a]\ncid = 3\nallowance = lots\n",
		     "3: [cell a] key 'allowance': 'lots': expected a whole number from 1 to "
		     "65535");
}

static void test_error_open(void **state)
{
	struct rtvio_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(rtvio_config_load("/nonexistent/x.conf", &cfg, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/x.conf: cannot open: No such file or directory");
	assert_int_equal(rtvio_config_load("/tmp", &cfg, err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "/tmp: cannot read: Is a directory");
	assert_null(cfg.cells);
	/* A short buffer truncates the message but never overruns. */
	char small[16];

	assert_int_equal(rtvio_config_parse("[cell a]\ncid = 1\n", "some/long/name.conf", &cfg,
					    small, sizeof(small)), -EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* Hostile input: random bytes and random mutations of a valid file never crash,
 * leak or hang, and a refusal always comes with a message naming the file. */
static void test_fuzz(void **state)
{
	static const char alphabet[] = "[]=:;#\n \t.-_abcflowpsizeKiBms0123456789\xc2\xb5";
	size_t base_len = strlen(full_config);
	char *buf = malloc(base_len + 64);
	uint64_t seed = 12345;
	int accepted = 0, refused = 0;

	(void)state;
	assert_non_null(buf);
	for (int iter = 0; iter < 4000; iter++) {
		struct rtvio_config cfg;
		char err[512] = "";

		if (iter % 2) {
			size_t len = 0;

			memcpy(buf, full_config, base_len + 1);
			len = base_len;
			for (int m = 0; m < 3; m++) {
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				size_t pos = (seed >> 33) % len;

				buf[pos] = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
			}
		} else {
			size_t len = 0;

			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			len = (seed >> 40) % (base_len + 60);
			for (size_t i = 0; i < len; i++) {
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				buf[i] = (char)(seed >> 56);
				if (buf[i] == 0)
					buf[i] = '\n';
			}
			buf[len] = '\0';
		}
		int ret = rtvio_config_parse(buf, "fuzz.conf", &cfg, err, sizeof(err));

		if (ret == 0) {
			accepted++;
			/* Whatever loads satisfies the invariants consumers rely on. */
			assert_true(cfg.ncells >= 1);
			for (int i = 0; i < cfg.nflows; i++) {
				assert_true(cfg.flows[i].from >= 0 && cfg.flows[i].from < cfg.ncells);
				assert_true(cfg.flows[i].to >= 0 && cfg.flows[i].to < cfg.ncells);
				assert_true(cfg.flows[i].from != cfg.flows[i].to);
				assert_true(cfg.flows[i].size > 0);
				assert_true(cfg.flows[i].best_effort || cfg.flows[i].period_ns > 0);
			}
			rtvio_config_free(&cfg);
		} else {
			refused++;
			assert_int_equal(ret, -EINVAL);
			assert_memory_equal(err, "fuzz.conf:", 10);
			assert_null(cfg.cells);
		}
	}
	free(buf);
	/* Both outcomes were exercised. */
	assert_true(accepted > 0);
	assert_true(refused > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_conf),
		cmocka_unit_test(test_shipped_configs),
		cmocka_unit_test(test_full_round_trip),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_platform_file),
		cmocka_unit_test(test_workloads),
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_errors_keys),
		cmocka_unit_test(test_errors_values),
		cmocka_unit_test(test_vhost_user_budget),
		cmocka_unit_test(test_copy_key),
		cmocka_unit_test(test_errors_sections),
		cmocka_unit_test(test_errors_cross_checks),
		cmocka_unit_test(test_socket_dir_relative),
		cmocka_unit_test(test_socket_dir_errors),
		cmocka_unit_test(test_bom),
		cmocka_unit_test(test_cell_connections),
		cmocka_unit_test(test_cell_allowance),
		cmocka_unit_test(test_cell_poll_us),
		cmocka_unit_test(test_broker_cpus),
		cmocka_unit_test(test_broker_copy_slots),
		cmocka_unit_test(test_error_open),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
