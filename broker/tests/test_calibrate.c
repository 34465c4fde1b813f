/* `rtvio calibrate`: samples to platform values on synthetic data with known
 * answers, the written section read back by rtvio_platform_load() and by
 * `rtvio analyze`, the command's usage errors, and one quick real run whose output
 * is checked for structure (never for speed). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "analyze_cmd.h"
#include "broker_cmds.h"
#include "calibrate.h"

/* ---- helpers ---- */

static char tmp_dir[64];

static int setup_dir(void **state)
{
	(void)state;
	strcpy(tmp_dir, "/tmp/rtvio-test-calibrate-XXXXXX");
	return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmp_dir, name);
}

/* Runs a command with stdout sent to `out` (or /dev/null), so that its tables do
 * not mix with the TAP stream. */
static int run_quiet(int (*cmd)(int, char **), const char *out, int argc, char **argv)
{
	int saved, fd, rc;

	fflush(stdout);
	saved = dup(1);
	fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 1);
	close(fd);
	rc = cmd(argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	return rc;
}

/* The same with const arguments (copied: commands may permute argv). */
static int run_cmd(int (*cmd)(int, char **), const char *out, const char *const *args)
{
	char *argv[16];
	int n = 0, rc;

	while (args[n]) {
		assert_true(n < 15);
		argv[n] = strdup(args[n]);
		assert_non_null(argv[n]);
		n++;
	}
	argv[n] = NULL;
	rc = run_quiet(cmd, out, n, argv);
	for (int i = 0; i < n; i++)
		free(argv[i]);
	return rc;
}

/* Steps whose cost is exactly e(b) = oh + b * npb, plus pk on a packet's last
 * step, for sizes 64 B .. 64 KiB (the sizes calibrate uses), `per` of each kind. */
static size_t make_steps(struct cal_step *s, size_t per, double oh, double npb, double pk)
{
	static const uint32_t sizes[] = { 64, 256, 1024, 4096, 16384, 65536 };
	size_t n = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (int last = 0; last < 2; last++) {
			for (size_t k = 0; k < per; k++) {
				s[n++] = (struct cal_step){
					.bytes = sizes[i], .last = last,
					.ns = oh + sizes[i] * npb + (last ? pk : 0) };
			}
		}
	}
	return n;
}

static void fake_dist(struct cal_dist *d, double max)
{
	*d = (struct cal_dist){ .n = 100, .stall_checked = true, .min_ns = max / 4,
				.median_ns = max / 2, .p999_ns = max * 0.9, .max_ns = max };
}

/* Results as if measured: copy costs 200 ns + 0.1 ns/B, packets +1000 ns. */
static void fake_results(struct cal_results *r, struct cal_step *s)
{
	size_t n = make_steps(s, 50, 200, 0.1, 1000);

	memset(r, 0, sizeof(*r));
	assert_int_equal(cal_fit_steps(s, n, &r->steps), 0);
	fake_dist(&r->ingest_step, 40000);
	fake_dist(&r->batch_gap, 12000);
	r->ingest_ring = 128;
	r->ingest_fit = (struct linfit){ .slope = 250, .intercept = 1000, .r2 = 0.99, .n = 10 };
	fake_dist(&r->ingest_lat[CAL_POLL], 2500.4);
	fake_dist(&r->ingest_lat[CAL_SLEEP], 90000);
	fake_dist(&r->notify_lat[CAL_POLL], 3000);
	fake_dist(&r->notify_lat[CAL_SLEEP], 120000.2);
	fake_dist(&r->wake_write, 200); /* p99.9 180 ns */
	fake_dist(&r->vhu_msg, 5000.3);
	fake_dist(&r->vhu_map, 30000);
	fake_dist(&r->vhu_down, 20000);
	fake_dist(&r->vhu_dev, 8000.5);
	fake_dist(&r->page_fault, 1000); /* p99.9 900 ns */
	r->ingest_lat[CAL_SLEEP].stall_checked = false;
	r->gaps = 3;
	r->longest_gap_ns = 150000;
}

static void fake_meta(struct cal_meta *m)
{
	memset(m, 0, sizeof(*m));
	strcpy(m->date, "2026-01-02T03:04:05Z");
	strcpy(m->cpu_model, "Test CPU");
	strcpy(m->kernel, "6.1.0-test");
	m->copy = "normal";
	m->broker_cpu = 1;
	m->other_cpu = 0;
	m->quick = true;
}

/* ---- distributions ---- */

static void test_dist_known(void **state)
{
	double v[1000];
	struct cal_dist d;

	(void)state;
	/* 1000 .. 1, shuffled enough: descending. */
	for (int i = 0; i < 1000; i++)
		v[i] = 1000 - i;
	assert_int_equal(cal_dist_make(v, 1000, 7, true, &d), 0);
	assert_int_equal(d.n, 1000);
	assert_int_equal(d.stalled, 7);
	assert_true(d.stall_checked);
	assert_true(d.min_ns == 1);
	assert_true(d.max_ns == 1000);
	/* nearest rank: the 999th of 1000 */
	assert_true(d.p999_ns == 999);
	assert_true(d.median_ns >= 500 && d.median_ns <= 501);
}

static void test_dist_rejects(void **state)
{
	double v[3] = { 1, NAN, 3 }, w[2] = { 5, -1 };
	struct cal_dist d;

	(void)state;
	assert_int_equal(cal_dist_make(v, 0, 4, true, &d), -EINVAL);
	assert_int_equal(d.stalled, 4); /* still says how many were set aside */
	assert_int_equal(cal_dist_make(v, 3, 0, true, &d), -EINVAL);
	assert_int_equal(cal_dist_make(w, 2, 0, true, &d), -EINVAL);
}

/* ---- the step fit ---- */

static void test_fit_exact(void **state)
{
	struct cal_step *s = calloc(12 * 100, sizeof(*s));
	struct cal_steps_fit f;
	size_t n;

	(void)state;
	assert_non_null(s);
	n = make_steps(s, 100, 200, 0.1, 1000);
	assert_int_equal(cal_fit_steps(s, n, &f), 0);
	assert_int_equal(f.n, n);
	assert_int_equal(f.stalled, 0);
	assert_int_equal(f.ngroups, 12);
	assert_true(fabs(f.ns_per_byte - 0.1) < 1e-9);
	assert_true(fabs(f.raw.slope - 0.1) < 1e-9);
	assert_true(fabs(f.raw.intercept - 200) < 1e-6);
	assert_true(f.raw.r2 > 0.999999);
	assert_true(fabs(f.chunk_overhead_ns - 200) < 1e-6);
	assert_true(fabs(f.packet_overhead_ns - 1000) < 1e-6);
	free(s);
}

/* A stalled sample is set aside whatever its size; one unflagged outlier among a
 * thousand moves the maximum of its kind but not the p99.9 the costs come from. */
static void test_fit_stalls_and_outliers(void **state)
{
	struct cal_step *s = calloc(12 * 1000, sizeof(*s));
	struct cal_steps_fit f;
	size_t n;

	(void)state;
	assert_non_null(s);
	n = make_steps(s, 1000, 200, 0.1, 1000);
	s[3].ns = 5e6;
	s[3].stalled = true;	/* 64 B non-last: stalled, huge */
	s[1500].ns = 3e5;	/* 64 B last: an unflagged outlier */
	assert_int_equal(cal_fit_steps(s, n, &f), 0);
	assert_int_equal(f.stalled, 1);
	assert_int_equal(f.n, n - 1);
	assert_true(fabs(f.chunk_overhead_ns - 200) < 1e-6);
	assert_true(fabs(f.packet_overhead_ns - 1000) < 1e-6);
	for (size_t g = 0; g < f.ngroups; g++) {
		if (f.g[g].bytes == 64 && !f.g[g].last) {
			assert_int_equal(f.g[g].d.stalled, 1);
			assert_int_equal(f.g[g].d.n, 999);
			assert_true(f.g[g].d.max_ns < 1e6);
		}
		if (f.g[g].bytes == 64 && f.g[g].last)
			assert_true(f.g[g].d.max_ns == 3e5);
	}
	free(s);
}

/* The cost line lies above every step kind's p99.9. */
static void assert_line_covers(const struct cal_steps_fit *f)
{
	for (size_t g = 0; g < f->ngroups; g++) {
		double e = f->chunk_overhead_ns + f->g[g].bytes * f->ns_per_byte +
			   (f->g[g].last ? f->packet_overhead_ns : 0);

		assert_true(e >= f->g[g].d.p999_ns - 1e-6);
	}
}

/* The line keeps the fitted slope and rises above the worst size. */
static void test_fit_line_covers_every_size(void **state)
{
	struct cal_step *s = calloc(12 * 100, sizeof(*s));
	struct cal_steps_fit f;
	size_t n;

	(void)state;
	assert_non_null(s);
	n = make_steps(s, 100, 200, 0.1, 1000);
	for (size_t i = 0; i < n; i++) {
		if (s[i].bytes == 1024 && !s[i].last)
			s[i].ns += 500; /* this size is slower than the line */
	}
	assert_int_equal(cal_fit_steps(s, n, &f), 0);
	assert_line_covers(&f);
	assert_true(f.chunk_overhead_ns > 200);
	free(s);
}

/* A burst of interference that hit only the small sizes' worst steps tilts the p99.9
 * envelope downwards; the slope then comes from the medians, and the line still
 * rises above every size's p99.9. */
static void test_fit_tilted_envelope(void **state)
{
	struct cal_step *s = calloc(12 * 100, sizeof(*s));
	struct cal_steps_fit f;
	size_t n;

	(void)state;
	assert_non_null(s);
	n = make_steps(s, 100, 200, 0.1, 1000);
	for (size_t i = 0; i < n; i++) {
		if (s[i].bytes <= 256 && !s[i].last && i % 100 < 5)
			s[i].ns = 50000; /* 5 % of the 64 B and 256 B steps */
	}
	assert_int_equal(cal_fit_steps(s, n, &f), 0);
	assert_true(f.envelope.slope <= 0);
	assert_true(f.slope_from_medians);
	assert_true(fabs(f.ns_per_byte - 0.1) < 1e-9);
	assert_line_covers(&f);
	free(s);
}

static void test_fit_rejects(void **state)
{
	struct cal_step s[8] = { 0 };
	struct cal_steps_fit f;

	(void)state;
	assert_int_equal(cal_fit_steps(s, 0, &f), -EINVAL);
	/* one size only: no slope */
	for (int i = 0; i < 4; i++)
		s[i] = (struct cal_step){ .bytes = 64, .last = i & 1, .ns = 100 };
	assert_int_equal(cal_fit_steps(s, 4, &f), -EINVAL);
	/* no last step: no packet overhead */
	for (int i = 0; i < 4; i++)
		s[i] = (struct cal_step){ .bytes = 64u << (2 * i), .ns = 100.0 + i };
	assert_int_equal(cal_fit_steps(s, 4, &f), -EINVAL);
	/* time falls with size: no bandwidth */
	for (int i = 0; i < 4; i++)
		s[i] = (struct cal_step){ .bytes = 64u << (2 * i), .ns = 1000.0 - i };
	s[4] = (struct cal_step){ .bytes = 64, .last = true, .ns = 2000 };
	assert_int_equal(cal_fit_steps(s, 5, &f), -EDOM);
	/* every step of the other sizes stalled: only one size left */
	for (int i = 0; i < 4; i++)
		s[i] = (struct cal_step){ .bytes = 64u << (2 * i), .ns = 100.0 + i,
					  .stalled = i > 0 };
	assert_int_equal(cal_fit_steps(s, 5, &f), -EINVAL);
}

/* ---- platform values and the section ---- */

static void test_platform_values(void **state)
{
	struct cal_step *s = calloc(12 * 50, sizeof(*s));
	struct cal_results r;
	struct rtvio_platform_cfg p;

	(void)state;
	assert_non_null(s);
	fake_results(&r, s);
	assert_int_equal(cal_platform(&r, true, &p), 0);
	assert_int_equal(p.present, RTVIO_PLAT_ALL | RTVIO_PLAT_WAKE_WRITE |
				    RTVIO_PLAT_VHOST_USER_MSG | RTVIO_PLAT_VHOST_USER_MAP);
	/* vhost-user messages: their maxima, rounded up */
	assert_int_equal(p.vhost_user_msg, 5001);
	/* the table change (above the 20000 teardown) and the device's stop and start:
	 * 30000 + 8000.5, rounded up */
	assert_int_equal(p.vhost_user_map, 38001);
	/* a teardown longer than the table change: it plus the stop and start */
	fake_dist(&r.vhu_down, 45000);
	assert_int_equal(cal_platform(&r, true, &p), 0);
	assert_int_equal(p.vhost_user_map, 53001);
	fake_dist(&r.vhu_down, 20000);
	/* 0.1 ns/B with the margin: 1e9 / 0.11, rounded down */
	assert_int_equal(p.copy_bandwidth, (uint64_t)floor(1e9 / (0.1 * CAL_MARGIN)));
	assert_int_equal(p.chunk_overhead, 220);
	/* (1000 + two wake-ups of 180 ns) with the margin */
	assert_int_equal(p.packet_overhead, 1496);
	/* one wake-up with the margin, rounded down (it is subtracted): 180 x 1.1 */
	assert_int_equal(p.wake_write, 198);
	/* maxima, rounded up; the mode picks the latencies */
	assert_int_equal(p.ingest_latency, 2501);
	/* receivers sleep in either mode */
	assert_int_equal(p.notify_latency, 120001);
	/* per-step costs: their p99.9 (fake: 0.9 of the max) */
	assert_int_equal(p.ingest_step, 36000);
	assert_int_equal(p.batch_gap, 10800);
	assert_int_equal(cal_platform(&r, false, &p), 0);
	assert_int_equal(p.ingest_latency, 90000);
	assert_int_equal(p.notify_latency, 120001);
	/* a missing distribution is no value at all */
	r.notify_lat[CAL_POLL].n = 0;
	assert_int_equal(cal_platform(&r, true, &p), 0);
	r.ingest_lat[CAL_SLEEP].n = 0;
	assert_int_equal(cal_platform(&r, false, &p), -EDOM);
	assert_int_equal(cal_platform(&r, true, &p), 0);
	r.wake_write.n = 0;
	assert_int_equal(cal_platform(&r, true, &p), -EDOM);
	r.wake_write.n = 100;
	/* without vhost-user samples the analysis keeps its defaults */
	r.vhu_msg.n = r.vhu_map.n = 0;
	assert_int_equal(cal_platform(&r, true, &p), 0);
	assert_false(p.present & (RTVIO_PLAT_VHOST_USER_MSG | RTVIO_PLAT_VHOST_USER_MAP));
	r.steps.ns_per_byte = 0;
	assert_int_equal(cal_platform(&r, true, &p), -EDOM);
	free(s);
}

/* issue 7: calibrate's output parses back exactly, comments and all. */
static void test_section_parses_back(void **state)
{
	struct cal_step *s = calloc(12 * 50, sizeof(*s));
	struct cal_results r;
	struct cal_meta m;
	struct rtvio_platform_cfg want, got;
	char path[256], err[256], line[512];
	bool saw_date = false, saw_how = false, saw_fault = false;
	FILE *f;

	(void)state;
	assert_non_null(s);
	fake_results(&r, s);
	fake_meta(&m);
	for (int poll = 0; poll < 2; poll++) {
		path_in(path, sizeof(path), poll ? "poll.ini" : "sleep.ini");
		f = fopen(path, "w");
		assert_non_null(f);
		assert_int_equal(cal_write_section(f, &r, &m, poll), 0);
		assert_int_equal(fclose(f), 0);
		assert_int_equal(rtvio_platform_load(path, &got, err, sizeof(err)), 0);
		assert_int_equal(cal_platform(&r, poll, &want), 0);
		assert_int_equal(got.present, RTVIO_PLAT_ALL | RTVIO_PLAT_WAKE_WRITE |
					      RTVIO_PLAT_VHOST_USER_MSG | RTVIO_PLAT_VHOST_USER_MAP);
		assert_int_equal(got.wake_write, want.wake_write);
		assert_int_equal(got.vhost_user_msg, 5001);
		assert_int_equal(got.vhost_user_map, 38001);
		assert_int_equal(got.copy_bandwidth, want.copy_bandwidth);
		assert_int_equal(got.chunk_overhead, want.chunk_overhead);
		assert_int_equal(got.packet_overhead, want.packet_overhead);
		assert_int_equal(got.ingest_latency, want.ingest_latency);
		assert_int_equal(got.notify_latency, want.notify_latency);
		assert_int_equal(got.ingest_step, want.ingest_step);
	}
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "2026-01-02T03:04:05Z") && strstr(line, "--quick"))
			saw_date = true;
		if (strstr(line, "Test CPU") && strstr(line, "6.1.0-test"))
			saw_how = true;
		/* no line suggesting a fault charge: the data path takes no fault on
		 * cell memory */
		if (strstr(line, "page_fault ="))
			saw_fault = true;
	}
	fclose(f);
	assert_true(saw_date);
	assert_true(saw_how);
	assert_false(saw_fault);
	free(s);
}

/* The same file through `rtvio analyze --platform`: accepted (the flow set is
 * schedulable with these costs: 0), where without it the values are missing (2). */
static void test_section_through_analyze(void **state)
{
	static const char conf[] =
		"[broker]\npolicy = fp\nchunk = 4KiB\n"
		"[cell a]\ncid = 3\n[cell b]\ncid = 4\n"
		"[flow f]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 64\nperiod = 10ms\n";
	struct cal_step *s = calloc(12 * 50, sizeof(*s));
	struct cal_results r;
	struct cal_meta m;
	char cpath[256], ppath[256], opath[256];
	FILE *f;
	json_t *doc;
	json_error_t jerr;

	(void)state;
	assert_non_null(s);
	fake_results(&r, s);
	fake_meta(&m);
	path_in(cpath, sizeof(cpath), "flows.conf");
	path_in(ppath, sizeof(ppath), "platform.ini");
	path_in(opath, sizeof(opath), "analyze.json");
	f = fopen(cpath, "w");
	assert_non_null(f);
	fputs(conf, f);
	fclose(f);
	f = fopen(ppath, "w");
	assert_non_null(f);
	assert_int_equal(cal_write_section(f, &r, &m, true), 0);
	fclose(f);
	{
		const char *argv[] = { "analyze", cpath, NULL };

		assert_int_equal(run_cmd(cmd_analyze, NULL, argv), 2);
	}
	{
		const char *argv[] = { "analyze", cpath, "--platform", ppath, "--json", NULL };

		assert_int_equal(run_cmd(cmd_analyze, opath, argv), 0);
	}
	doc = json_load_file(opath, 0, &jerr);
	assert_non_null(doc);
	assert_true(json_is_true(json_object_get(doc, "schedulable")));
	assert_int_equal(json_array_size(json_object_get(doc, "flows")), 1);
	json_decref(doc);
	free(s);
}

static void test_json_document(void **state)
{
	struct cal_step *s = calloc(12 * 50, sizeof(*s));
	struct cal_results r;
	struct cal_meta m;
	json_t *doc, *o;

	(void)state;
	assert_non_null(s);
	fake_results(&r, s);
	fake_meta(&m);
	doc = cal_json(&r, &m, false);
	assert_non_null(doc);
	assert_int_equal(json_array_size(json_object_get(json_object_get(doc, "steps"), "groups")),
			 12);
	o = json_object_get(json_object_get(doc, "notify_latency"), "sleep");
	assert_int_equal(json_integer_value(json_object_get(o, "samples")), 100);
	assert_true(json_real_value(json_object_get(o, "max_ns")) == 120000.2);
	o = json_object_get(json_object_get(doc, "ingest_latency"), "sleep");
	assert_true(json_is_false(json_object_get(o, "stall_checked")));
	o = json_object_get(json_object_get(doc, "ingest_step"), "per_packet");
	assert_true(json_real_value(json_object_get(o, "ns_per_packet")) == 250);
	assert_int_equal(json_integer_value(json_object_get(o, "n")), 10);
	o = json_object_get(doc, "wake_write");
	assert_true(json_real_value(json_object_get(o, "p999_ns")) == 180);
	o = json_object_get(doc, "platform");
	assert_int_equal(json_integer_value(json_object_get(o, "notify_latency_ns")), 120001);
	assert_true(json_is_false(json_object_get(doc, "poll")));
	json_decref(doc);
	/* nothing to report without platform values */
	r.ingest_step.n = 0;
	assert_null(cal_json(&r, &m, false));
	free(s);
}

/* ---- the command ---- */

static void test_usage(void **state)
{
	const char *a1[] = { "calibrate", "--poll", "maybe", NULL };
	const char *a2[] = { "calibrate", "--bogus", NULL };
	const char *a3[] = { "calibrate", "extra", NULL };
	const char *a4[] = { "calibrate", "--cpu", "4095", NULL };
	const char *a5[] = { "calibrate", "--cpu", "x1", NULL };
	const char *a6[] = { "calibrate", "--help", NULL };
	const char *a7[] = { "calibrate", "--out", NULL };
	const char *a8[] = { "calibrate", "--copy", "fast", NULL };

	(void)state;
	assert_int_equal(run_cmd(cmd_calibrate, NULL, a1), 2);
	assert_int_equal(run_cmd(cmd_calibrate, NULL, a2), 2);
	assert_int_equal(run_cmd(cmd_calibrate, NULL, a3), 2);
	assert_int_equal(run_cmd(cmd_calibrate, NULL, a4), 2);
	assert_int_equal(run_cmd(cmd_calibrate, NULL, a5), 2);
	assert_int_equal(run_cmd(cmd_calibrate, NULL, a6), 0);
	assert_int_equal(run_cmd(cmd_calibrate, NULL, a7), 2);
	assert_int_equal(run_cmd(cmd_calibrate, NULL, a8), 2);
}

static int allowed_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	return CPU_COUNT(&set);
}

/* One real quick run: the file it writes loads with every key, and its JSON
 * accounts for every latency sample (kept or stalled). Structure only. */
static void test_quick_run(void **state)
{
	char fpath[256], jpath[256], err[256];
	const char *argv[] = { "calibrate", "--quick", "--json", "--copy", "nt", "--out", fpath,
			       NULL };
	struct rtvio_platform_cfg p;
	json_t *doc, *steps;
	json_error_t jerr;
	static const char *const lat[] = { "ingest_latency", "notify_latency" };

	(void)state;
	if (allowed_cpus() < 2)
		skip();
	path_in(fpath, sizeof(fpath), "measured.ini");
	path_in(jpath, sizeof(jpath), "measured.json");
	assert_int_equal(run_cmd(cmd_calibrate, jpath, argv), 0);
	assert_int_equal(rtvio_platform_load(fpath, &p, err, sizeof(err)), 0);
	assert_int_equal(p.present,
			 RTVIO_PLAT_ALL | RTVIO_PLAT_CHANGE_STEP | RTVIO_PLAT_WAKE_WRITE |
			 RTVIO_PLAT_VHOST_USER_MSG | RTVIO_PLAT_VHOST_USER_MAP);
	/* a light message and a memory-table change: at least a ns each (rounded up) */
	assert_true(p.vhost_user_msg >= 1 && p.vhost_user_map >= 1);
	/* two wake-ups are inside packet_overhead */
	assert_true(2 * p.wake_write <= p.packet_overhead);
	assert_true(p.copy_bandwidth > 0);
	/* a run-time change's apply step: at least a ns per slot visit (rounded up) */
	assert_true(p.change_step >= 1);
	doc = json_load_file(jpath, 0, &jerr);
	assert_non_null(doc);
	for (int i = 0; i < 2; i++) {
		const char *mode[] = { "poll", "sleep" };

		for (int k = 0; k < 2; k++) {
			json_t *d = json_object_get(json_object_get(doc, lat[i]), mode[k]);

			assert_non_null(d);
			assert_int_equal(json_integer_value(json_object_get(d, "samples")) +
					 json_integer_value(json_object_get(d, "stalled")),
					 CAL_LAT_QUICK);
			assert_true(json_real_value(json_object_get(d, "max_ns")) >=
				    json_real_value(json_object_get(d, "p999_ns")));
		}
	}
	/* the daemon's round between runs: every sample kept or counted as stalled */
	{
		json_t *g = json_object_get(doc, "batch_gap");

		assert_int_equal(json_integer_value(json_object_get(g, "samples")) +
				 json_integer_value(json_object_get(g, "stalled")), CAL_PASSES_QUICK);
	}
	/* the apply step of run-time changes: every operation kept or counted as stalled */
	{
		json_t *c = json_object_get(doc, "change_step_per_slot");

		assert_int_equal(json_integer_value(json_object_get(c, "samples")) +
				 json_integer_value(json_object_get(c, "stalled")),
				 CAL_PASSES_QUICK / 10);
		assert_true(json_real_value(json_object_get(c, "max_ns")) > 0);
	}
	/* the vhost-user messages and the page faults: every one kept or counted as
	 * stalled; the platform's values are the messages' maxima */
	{
		static const char *const k[] = { "vhost_user_msg", "vhost_user_map",
						 "vhost_user_teardown", "vhost_user_device",
						 "page_fault" };
		static const size_t want[] = { CAL_PASSES_QUICK / 10, CAL_PASSES_QUICK / 40 + 1,
					       CAL_PASSES_QUICK / 40 + 1, CAL_PASSES_QUICK / 100,
					       CAL_PASSES_QUICK / 10 };
		json_t *pl = json_object_get(doc, "platform");

		for (int i = 0; i < 5; i++) {
			json_t *d = json_object_get(doc, k[i]);

			assert_int_equal(json_integer_value(json_object_get(d, "samples")) +
					 json_integer_value(json_object_get(d, "stalled")),
					 (json_int_t)want[i]);
		}
		assert_int_equal(json_integer_value(json_object_get(pl, "vhost_user_msg_ns")),
				 (json_int_t)p.vhost_user_msg);
		assert_int_equal(json_integer_value(json_object_get(pl, "vhost_user_map_ns")),
				 (json_int_t)p.vhost_user_map);
		assert_null(json_object_get(pl, "page_fault_ns"));
	}
	/* every notification timed woke a waiting thread: one sample per write */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "wake_write"),
							    "samples")), CAL_LAT_QUICK);
	/* the per-packet line of the ingest pass: every fill level took part */
	assert_true(json_integer_value(json_object_get(json_object_get(json_object_get(doc,
			"ingest_step"), "per_packet"), "n")) > 0);
	steps = json_object_get(doc, "steps");
	/* 6 chunk sizes x {1 chunk, many chunks} kinds, 64 KiB has one kind only:
	 * last steps at 6 sizes, non-last at 5. */
	assert_int_equal(json_array_size(json_object_get(steps, "groups")), 11);
	assert_true(json_integer_value(json_object_get(steps, "samples")) +
		    json_integer_value(json_object_get(steps, "stalled")) >=
		    11 * CAL_STEPS_QUICK);
	assert_string_equal(json_string_value(json_object_get(doc, "copy")), "nt");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "platform"),
							    "copy_bandwidth_Bps")),
			 (json_int_t)p.copy_bandwidth);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dist_known),
		cmocka_unit_test(test_dist_rejects),
		cmocka_unit_test(test_fit_exact),
		cmocka_unit_test(test_fit_stalls_and_outliers),
		cmocka_unit_test(test_fit_line_covers_every_size),
		cmocka_unit_test(test_fit_tilted_envelope),
		cmocka_unit_test(test_fit_rejects),
		cmocka_unit_test(test_platform_values),
		cmocka_unit_test(test_section_parses_back),
		cmocka_unit_test(test_section_through_analyze),
		cmocka_unit_test(test_json_document),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_quick_run),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
