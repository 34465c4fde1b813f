/* rtvio membench and rtvio hog as commands: usage errors, their JSON documents and
 * files, the single-CPU refusal, and hog's stop on SIGTERM. Measured values are only
 * checked for consistency with each other and with the token bucket's bound, never
 * against a speed. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "platform_cmds.h"
#include "memload.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char captured[1 << 16], captured_err[1 << 16];

/* Points descriptor fd at a fresh temporary file; returns the saved original. */
static int redirect(int fd, FILE **tmp)
{
	int saved;

	*tmp = tmpfile();
	assert_non_null(*tmp);
	saved = dup(fd);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(*tmp), fd) >= 0);
	return saved;
}

static void restore(int fd, int saved, FILE *tmp, char *buf, size_t len)
{
	size_t n;

	assert_true(dup2(saved, fd) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, len - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
}

/* Runs a command with its stdout going into captured, its stderr into captured_err. */
static int run_captured(int (*cmd)(int, char **), int argc, char **argv)
{
	FILE *out, *err;
	int saved_out, saved_err, rc;

	fflush(stdout);
	fflush(stderr);
	saved_out = redirect(1, &out);
	saved_err = redirect(2, &err);
	rc = cmd(argc, argv);
	fflush(stdout);
	fflush(stderr);
	restore(2, saved_err, err, captured_err, sizeof captured_err);
	restore(1, saved_out, out, captured, sizeof captured);
	return rc;
}

/* Every fractional number in a JSON text has at most 6 significant digits (what
 * the measurements support; 17 digits are binary noise). */
static void assert_reals_short(const char *text)
{
	for (const char *p = text; *p; p++) {
		int sig = 0;
		bool dot = false, lead = true;
		const char *q = p;

		if (!(*p >= '0' && *p <= '9') || (p > text && ((p[-1] >= '0' && p[-1] <= '9') ||
							       p[-1] == '.')))
			continue;
		for (; (*q >= '0' && *q <= '9') || *q == '.'; q++) {
			if (*q == '.') {
				dot = true;
				continue;
			}
			if (*q != '0')
				lead = false;
			if (!lead)
				sig++;
		}
		if (dot && sig > 6)
			fail_msg("'%.*s' has %d significant digits", (int)(q - p), p, sig);
		p = q - 1;
	}
}

static void test_membench_usage_errors(void **state)
{
	char a0[] = "membench", f[] = "--factor", one[] = "1", x[] = "abc";
	char p[] = "--pattern", bad[] = "scan", b[] = "--buffer", tiny[] = "1kB";
	char u[] = "--frobnicate", h[] = "--help", s[] = "--steps", zero[] = "0";
	char *v1[] = { a0, f, one }, *v2[] = { a0, f, x }, *v3[] = { a0, p, bad };
	char *v4[] = { a0, b, tiny }, *v5[] = { a0, u }, *v6[] = { a0, s, zero };
	char *v7[] = { a0, f }, *v8[] = { a0, h };

	(void)state;
	assert_int_equal(run_captured(cmd_membench, ARGC(v1), v1), 2);
	assert_int_equal(run_captured(cmd_membench, ARGC(v2), v2), 2);
	assert_int_equal(run_captured(cmd_membench, ARGC(v3), v3), 2);
	assert_int_equal(run_captured(cmd_membench, ARGC(v4), v4), 2);
	assert_int_equal(run_captured(cmd_membench, ARGC(v5), v5), 2);
	assert_int_equal(run_captured(cmd_membench, ARGC(v6), v6), 2);
	assert_int_equal(run_captured(cmd_membench, ARGC(v7), v7), 2);
	assert_int_equal(run_captured(cmd_membench, ARGC(v8), v8), 0);
	assert_non_null(strstr(captured, "usage: rtvio membench"));
}

static void test_membench_one_cpu_refuses(void **state)
{
	cpu_set_t saved, one;
	char a0[] = "membench", q[] = "--quick", o[] = "--out", dir[] = "/tmp/rtvio-mb-1cpu";
	char *v[] = { a0, q, o, dir };
	int cpus[1024];

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof saved, &saved), 0);
	assert_true(memload_cpus(cpus, 1024) >= 1);
	CPU_ZERO(&one);
	CPU_SET(cpus[0], &one);
	assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
	assert_int_equal(run_captured(cmd_membench, ARGC(v), v), 2);
	assert_int_equal(sched_setaffinity(0, sizeof saved, &saved), 0);
	rmdir(dir);
}

static void test_membench_quick_json(void **state)
{
	char dir[] = "/tmp/rtvio-mb-XXXXXX", path[64];
	char a0[] = "membench", q[] = "--quick", j[] = "--json", o[] = "--out";
	char b[] = "--buffer", size[] = "4MiB", s[] = "--steps", two[] = "2";
	char *v[] = { a0, q, j, o, dir, b, size, s, two };
	json_error_t jerr;
	json_t *doc, *steps, *knee;
	double best = 0, unloaded;
	const char *key;
	json_t *val;
	struct stat st;
	FILE *csv;
	char line[256];
	int lines = 0, cpus[1024];

	(void)state;
	if (memload_cpus(cpus, 1024) < 2)
		skip();
	assert_non_null(mkdtemp(dir));
	assert_int_equal(run_captured(cmd_membench, ARGC(v), v), 0);
	/* It says where its files go, and not on the JSON's stdout. */
	assert_non_null(strstr(captured_err, "writing membench.csv"));
	assert_non_null(strstr(captured_err, dir));
	assert_reals_short(captured);
	doc = json_loads(captured, 0, &jerr);
	assert_non_null(doc);
	/* exactly the documented keys */
	assert_int_equal(json_object_size(doc), 4);
	json_object_foreach(doc, key, val)
		assert_true(!strcmp(key, "unloaded_ns") || !strcmp(key, "knee_bandwidth_Bps") ||
			    !strcmp(key, "budgetable_Bps") || !strcmp(key, "steps"));
	unloaded = json_number_value(json_object_get(doc, "unloaded_ns"));
	assert_true(unloaded > 0);
	steps = json_object_get(doc, "steps");
	assert_true(json_is_array(steps));
	assert_int_equal(json_array_size(steps), 3);	/* 0, 1/2 of peak, flat out */
	for (size_t i = 0; i < 3; i++) {
		json_t *st_i = json_array_get(steps, i);
		double t = json_number_value(json_object_get(st_i, "target_Bps"));
		double a = json_number_value(json_object_get(st_i, "achieved_Bps"));
		double l = json_number_value(json_object_get(st_i, "victim_ns"));

		assert_int_equal(json_object_size(st_i), 3);
		assert_true(l > 0);
		assert_true(a >= 0);
		if (i == 0) {
			assert_true(t == 0);
			assert_true(a == 0);	/* idle interferers generate nothing */
			assert_true(fabs(l - unloaded) < 0.01);
		} else {
			assert_true(t > 0);
			assert_true(a > 0);
		}
		if (a > best)
			best = a;
	}
	/* half the peak, then the peak itself (flat out) */
	assert_true(json_number_value(json_object_get(json_array_get(steps, 1), "target_Bps")) <
		    json_number_value(json_object_get(json_array_get(steps, 2), "target_Bps")));
	assert_true(json_number_value(json_object_get(doc, "budgetable_Bps")) <= best + 1);
	knee = json_object_get(doc, "knee_bandwidth_Bps");
	assert_true(json_is_null(knee) || json_is_integer(knee));
	if (json_is_integer(knee))
		assert_true(json_number_value(json_object_get(doc, "budgetable_Bps")) <
			    json_number_value(knee));
	json_decref(doc);

	snprintf(path, sizeof path, "%s/membench.csv", dir);
	csv = fopen(path, "r");
	assert_non_null(csv);
	while (fgets(line, sizeof line, csv))
		lines++;
	fclose(csv);
	assert_int_equal(lines, 4);	/* header + 3 steps */
	unlink(path);
	snprintf(path, sizeof path, "%s/membench.png", dir);
	assert_int_equal(stat(path, &st), 0);	/* gnuplot is a build dependency */
	assert_true(st.st_size > 1000);
	unlink(path);
	snprintf(path, sizeof path, "%s/membench.gp", dir);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

static void test_hog_usage_errors(void **state)
{
	char a0[] = "hog", c[] = "--cpu", zero[] = "0", big[] = "99999", r[] = "--rate";
	char fast[] = "fast", nos[] = "2GB", ok[] = "1GB/s", d[] = "--duration";
	char bad_d[] = "soon", p[] = "--pattern", bad_p[] = "scan", h[] = "--help";
	char *v1[] = { a0, c, zero }, *v2[] = { a0, r, ok };
	char *v3[] = { a0, c, big, r, ok }, *v4[] = { a0, c, zero, r, fast };
	char *v5[] = { a0, c, zero, r, nos }, *v6[] = { a0, c, zero, r, ok, d, bad_d };
	char *v7[] = { a0, c, zero, r, ok, p, bad_p }, *v8[] = { a0, h };

	(void)state;
	assert_int_equal(run_captured(cmd_hog, ARGC(v1), v1), 2);
	assert_int_equal(run_captured(cmd_hog, ARGC(v2), v2), 2);
	assert_int_equal(run_captured(cmd_hog, ARGC(v3), v3), 2);
	assert_int_equal(run_captured(cmd_hog, ARGC(v4), v4), 2);
	assert_int_equal(run_captured(cmd_hog, ARGC(v5), v5), 2);
	assert_int_equal(run_captured(cmd_hog, ARGC(v6), v6), 2);
	assert_int_equal(run_captured(cmd_hog, ARGC(v7), v7), 2);
	assert_int_equal(run_captured(cmd_hog, ARGC(v8), v8), 0);
	assert_non_null(strstr(captured, "usage: rtvio hog"));
}

static void check_hog_json(double rate, const char *pattern)
{
	json_error_t jerr;
	json_t *doc = json_loads(captured, 0, &jerr);
	double secs, achieved;

	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "pattern")), pattern);
	assert_true(json_number_value(json_object_get(doc, "target_Bps")) == rate);
	secs = json_number_value(json_object_get(doc, "seconds"));
	achieved = json_number_value(json_object_get(doc, "achieved_Bps"));
	assert_true(secs > 0);
	assert_true(achieved > 0);
	/* the token bucket's bound: rate * time + its burst (4 chunks at this rate),
	 * with 1 % for the moment between the bucket's start and the command's clock */
	assert_true(achieved * secs <= (rate * secs + 4 * STREAM_CHUNK) * 1.01);
	json_decref(doc);
}

static void test_hog_duration_json(void **state)
{
	char a0[] = "hog", c[] = "--cpu", cpu[16], r[] = "--rate", rate[] = "200MB/s";
	char d[] = "--duration", dur[] = "300ms", b[] = "--buffer", size[] = "4MiB";
	char j[] = "--json", p[] = "--pattern", rd[] = "read";
	char *v[] = { a0, c, cpu, r, rate, d, dur, b, size, j, p, rd };
	int cpus[1024];

	(void)state;
	assert_true(memload_cpus(cpus, 1024) >= 1);
	snprintf(cpu, sizeof cpu, "%d", cpus[0]);
	assert_int_equal(run_captured(cmd_hog, ARGC(v), v), 0);
	check_hog_json(200e6, "read");
	/* It stops by itself: no Ctrl-C to ask for, and the time it runs said. */
	assert_null(strstr(captured_err, "Ctrl-C"));
	assert_non_null(strstr(captured_err, "for 300ms"));
	assert_reals_short(captured);
}

static void *send_sigterm(void *arg)
{
	struct timespec ts = { 0, 500000000 };

	(void)arg;
	nanosleep(&ts, NULL);
	kill(getpid(), SIGTERM);
	return NULL;
}

static void test_hog_stops_on_sigterm(void **state)
{
	char a0[] = "hog", c[] = "--cpu", cpu[16], r[] = "--rate", rate[] = "100MB/s";
	char b[] = "--buffer", size[] = "4MiB", j[] = "--json";
	char *v[] = { a0, c, cpu, r, rate, b, size, j };
	int cpus[1024];
	pthread_t t;
	json_t *doc;
	json_error_t jerr;
	double secs;

	(void)state;
	assert_true(memload_cpus(cpus, 1024) >= 1);
	snprintf(cpu, sizeof cpu, "%d", cpus[0]);
	assert_int_equal(pthread_create(&t, NULL, send_sigterm, NULL), 0);
	/* no --duration: only the signal ends it */
	assert_int_equal(run_captured(cmd_hog, ARGC(v), v), 0);
	pthread_join(t, NULL);
	check_hog_json(100e6, "copy");
	assert_non_null(strstr(captured_err, "stop with Ctrl-C"));
	doc = json_loads(captured, 0, &jerr);
	/* It ran until the signal came: some time passed, and it reports it. How
	 * much depends on how soon this loaded machine ran it, so no more is asked. */
	secs = json_number_value(json_object_get(doc, "seconds"));
	assert_true(secs > 0);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_membench_usage_errors),
		cmocka_unit_test(test_membench_one_cpu_refuses),
		cmocka_unit_test(test_membench_quick_json),
		cmocka_unit_test(test_hog_usage_errors),
		cmocka_unit_test(test_hog_duration_json),
		cmocka_unit_test(test_hog_stops_on_sigterm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
