/* Report generation from a tiny synthetic results document: the schema is checked,
 * report.md carries the tables, the plot script and its data files are written.
 * Nothing is timed and gnuplot is not run (the plots are its business). */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench.h"
#include "config.h"
#include "peer.h"

static const char *synthetic =
	"{\"schema\":\"rtvio-bench/1\",\"date\":\"2026-01-01 00:00:00 UTC\","
	"\"commit\":\"abc1234\",\"quick\":true,"
	"\"machine\":{\"cpu_model\":\"Test CPU\",\"cpus\":2,\"kernel\":\"Linux 6.1 x86_64\"},"
	"\"settings\":{\"cell_cpu\":0},\"notes\":[\"synthetic note\"],"
	"\"scenarios\":{"
	" \"size\":{\"transports\":[\"rtvio-poll\",\"pipe\"],"
	"  \"unavailable\":{\"iceoryx\":\"not installed\"},"
	"  \"conditions\":\"cond-size\",\"reading\":\"read-size\","
	"  \"latency\":["
	"   {\"transport\":\"rtvio-poll\",\"size\":64,\"period_us\":1000,\"sent\":10,\"messages\":10,"
	"    \"lost\":0,\"corrupt\":0,\"status\":\"ok\",\"latency_us\":{\"min\":1,\"p50\":2.5,"
	"    \"p99\":3,\"p999\":4,\"max\":5}},"
	"   {\"transport\":\"rtvio-poll\",\"size\":1048576,\"period_us\":10000,\"sent\":10,"
	"    \"messages\":10,\"lost\":0,\"corrupt\":0,\"status\":\"ok\",\"latency_us\":{\"min\":100,"
	"    \"p50\":200,\"p99\":300,\"p999\":300,\"max\":400}},"
	"   {\"transport\":\"pipe\",\"size\":64,\"status\":\"no result\"}],"
	"  \"throughput\":["
	"   {\"transport\":\"rtvio-poll\",\"size\":64,\"messages\":1000,\"seconds\":0.5,"
	"    \"gbps\":0.000128,\"msgps\":2000,\"status\":\"ok\"},"
	"   {\"transport\":\"pipe\",\"size\":64,\"messages\":2000,\"seconds\":0.5,"
	"    \"gbps\":0.000256,\"msgps\":4000,\"rx_sleeps\":500,\"sent\":2000,"
	"    \"tx_sleeps\":20,\"gbps_runs\":[1.5,0.000256,0.1],\"xcore_rtt_p50_runs\":[70,0,340],\"status\":\"ok\"}]},"
	" \"overhead\":{\"rows\":[{\"transport\":\"rtvio-poll\",\"per_message_us\":2.4,"
	"  \"per_byte_ns\":0.19,\"r2\":0.99,\"points\":2,\"status\":\"ok\"}]},"
	" \"isolation\":{\"conditions\":\"cond-iso\",\"runs\":[{\"label\":\"fp, bulk\","
	"  \"messages\":3,\"lost\":0,\"corrupt\":0,\"status\":\"ok\","
	"  \"latency_us\":{\"min\":1,\"p50\":2,\"p99\":3,\"p999\":3,\"max\":3},"
	"  \"cdf_us\":[1,2,3]}]},"
	" \"remote\":{\"conditions\":\"cond-remote\",\"reading\":\"read-remote\","
	"  \"unavailable\":{},\"runs\":[{\"label\":\"remote fp + bulk\",\"messages\":5,"
	"  \"lost\":0,\"corrupt\":0,\"status\":\"ok\",\"stalls\":2,\"longest_stall_us\":812,"
	"  \"bulk_gbps\":0.2,\"latency_us\":{\"min\":70,\"p50\":150,\"p99\":700,\"max\":900},"
	"  \"gateway_a\":{\"flows\":[{\"missing\":0,\"unmatched\":1,\"dds_deadline_missed\":3}]},"
	"  \"gateway_b\":{\"flows\":[{\"missing\":4,\"unmatched\":0,\"dds_deadline_missed\":2},"
	"   {\"missing\":5,\"unmatched\":0,\"dds_deadline_missed\":0}]}},"
	"  {\"label\":\"ddsperf ping/pong (half RTT)\",\"messages\":9,\"status\":\"ok\","
	"   \"latency_us\":{\"min\":8,\"p50\":17,\"p99\":37,\"max\":90}}]}"
	"}}";

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/rtvio-bench-test-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *rel)
{
	char path[256];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void test_report_written(void **state)
{
	json_t *res = json_loads(synthetic, 0, NULL);
	char *md, *gp, *dat;

	(void)state;
	assert_non_null(res);
	assert_int_equal(bench_write_report(res, dir, false), 0);
	md = slurp("report.md");
	assert_non_null(md);
	/* Header: machine, commit, date. */
	assert_non_null(strstr(md, "Test CPU, 2 cpus"));
	assert_non_null(strstr(md, "| commit | abc1234 |"));
	assert_non_null(strstr(md, "synthetic note"));
	/* The size tables, with the unavailable transport named and a failed row kept. */
	assert_non_null(strstr(md, "**iceoryx not measured:** not installed"));
	assert_non_null(strstr(md, "| rtvio-poll | 64 B | 1000 | 10 | 10 | 0 | 0 | 1.0 | 2.5 | 3.0 |"
				   " 4.0 | 5.0 | ok |"));
	assert_non_null(strstr(md, "| rtvio-poll | 1 MiB |"));
	assert_non_null(strstr(md, "| pipe | 64 B | – |"));
	assert_non_null(strstr(md, "no result"));
	/* Sleeps per message: the receiver's per message received, the sender's per
	 * message sent; a row without the counts shows none. */
	assert_non_null(strstr(md, "| pipe | 64 B | 2000 | 0.500 | 0.000 | 1.50 (70 ns) / 0.00 / 0.10 (340 ns) |"
				   " 4000 | 0.250 | 0.010 | ok |"));
	/* A run without a distance shows none; a row of one run (no gbps_runs) lists
	 * no runs. */
	assert_non_null(strstr(md, "| rtvio-poll | 64 B | 1000 | 0.500 | 0.000 | – | 2000 | – |"
				   " – | ok |"));
	assert_non_null(strstr(md, "| rtvio-poll | 2.40 | 0.1900 | 0.990 |"));
	assert_non_null(strstr(md, "| fp, bulk | 3 | 0 | 0 |"));
	assert_non_null(strstr(md, "plots/size_throughput.png"));
	assert_non_null(strstr(md, "plots/isolation_cdf.png"));
	/* remote: stalls, bulk rate and the gateways' counts summed over both sides. */
	assert_non_null(strstr(md, "cond-remote"));
	assert_non_null(strstr(md, "| remote fp + bulk | 5 | 0 | 0 | 70.0 | 150.0 | 700.0 | 900.0 |"
				   " 2 | 812 | 0.200 | 9 | 1 | 5 | ok |"));
	assert_non_null(strstr(md, "| ddsperf ping/pong (half RTT) | 9 | - | - | 8.0 | 17.0 | 37.0 |"
				   " 90.0 | - | - | - | - | - | - | ok |"));
	gp = slurp("plots/plots.gp");
	assert_non_null(gp);
	assert_non_null(strstr(gp, "pngcairo"));
	assert_non_null(strstr(gp, "'size_rtvio-poll.dat' using 1:2"));
	assert_non_null(strstr(gp, "'tput_pipe.dat' using 1:2"));
	assert_non_null(strstr(gp, "isolation_0_fp__bulk.dat"));
	dat = slurp("plots/size_rtvio-poll.dat");
	assert_non_null(dat);
	assert_non_null(strstr(dat, "64 2.5 3 5\n1048576 200 300 400\n"));
	free(dat);
	dat = slurp("plots/isolation_0_fp__bulk.dat");
	assert_non_null(dat);
	assert_string_equal(dat, "1 0.01\n2 0.02\n3 0.03\n");
	free(dat);
	free(gp);
	free(md);
	json_decref(res);
}

/* The hostile scenario: a summary line per run, and each victim flow beside the same
 * flow of the unloaded run, with a verdict. */
static const char *hostile_doc =
	"{\"schema\":\"rtvio-bench/1\",\"scenarios\":{\"hostile\":{"
	" \"platform_source\":\"plat-src\",\"conditions\":\"cond-h\",\"reading\":\"read-h\","
	" \"platform\":\"[platform]\\npacket_overhead = 45us\\n\","
	" \"runs_detail\":["
	"  {\"label\":\"unloaded\",\"mode\":\"none\",\"status\":\"ok\",\"flows\":["
	"   {\"flow\":\"control\",\"messages\":100,\"lost\":0,\"corrupt\":0,\"max_us\":50,"
	"    \"bound_us\":100,\"ratio\":0.5,\"residence_max_us\":10,\"response_us\":40,"
	"    \"residence_ratio\":0.25}]},"
	"  {\"label\":\"repost\",\"mode\":\"repost\",\"status\":\"ok\","
	"   \"foreign_rt\":{\"ran_ms\":12.25},"
	"   \"hostile\":\"hostile repost: attached 1, cut off 0\",\"flows\":["
	"   {\"flow\":\"control\",\"messages\":99,\"lost\":1,\"corrupt\":0,\"max_us\":300,"
	"    \"bound_us\":100,\"ratio\":3,\"violation\":true,\"cause\":\"unexplained\","
	"    \"residence_max_us\":20,\"response_us\":40,\"residence_ratio\":0.5}]}]}}}";

static void test_hostile_section(void **state)
{
	json_t *res = json_loads(hostile_doc, 0, NULL);
	char *md;

	(void)state;
	assert_non_null(res);
	assert_int_equal(bench_write_report(res, dir, false), 0);
	md = slurp("report.md");
	assert_non_null(md);
	assert_non_null(strstr(md, "## hostile: victims' bounds next to a misbehaving cell"));
	assert_non_null(strstr(md, "Platform judged by: **plat-src**."));
	assert_non_null(strstr(md, "```ini\n[platform]\npacket_overhead = 45us\n```\n"));
	assert_non_null(strstr(md, "| unloaded | 0 | 0 | 0.50 | 0.25 | 0 | – | ok | idle |"));
	assert_non_null(strstr(md, "| repost | 1 | 0 | 3.00 | 0.50 | 1 | 12.2 | ok | hostile repost: "
				   "attached 1, cut off 0 |"));
	assert_non_null(strstr(md, "| repost | control | 99 | 1 | 0 | 300.0 | 50.0 | 100.0 | 3.00 |"
				   " 20.0 | 10.0 | 40.0 | 0.50 | unexplained |"));
	assert_non_null(strstr(md, "read-h"));
	free(md);
	json_decref(res);
}

/* The platform a scenario judged by is kept as the [platform] section `rtvio analyze
 * --platform` reads: only the values present, in the config's own units. */
static void test_platform_recorded(void **state)
{
	struct rtvio_platform_cfg plat = {
		.copy_bandwidth = 2000000000ull, .packet_overhead = 45000, .change_step = 250,
		.present = RTVIO_PLAT_COPY_BANDWIDTH | RTVIO_PLAT_PACKET_OVERHEAD |
			   RTVIO_PLAT_CHANGE_STEP,
	};
	json_t *sc = json_object();

	(void)state;
	bench_set_platform(sc, "calibrated", &plat);
	assert_string_equal(json_string_value(json_object_get(sc, "platform_source")), "calibrated");
	assert_string_equal(json_string_value(json_object_get(sc, "platform")),
			    "[platform]\ncopy_bandwidth = 2GB/s\npacket_overhead = 45us\n"
			    "change_step = 250ns\n");
	json_decref(sc);
}

static void test_schema_refused(void **state)
{
	json_t *bad = json_loads("{\"schema\":\"other/2\",\"scenarios\":{}}", 0, NULL);
	json_t *noscen = json_loads("{\"schema\":\"rtvio-bench/1\"}", 0, NULL);
	json_t *num = json_integer(1);

	(void)state;
	assert_int_equal(bench_write_report(bad, dir, false), -EINVAL);
	assert_int_equal(bench_write_report(noscen, dir, false), -EINVAL);
	assert_int_equal(bench_write_report(num, dir, false), -EINVAL);
	json_decref(num);
	json_decref(bad);
	json_decref(noscen);
}

/* The receiver's checks: intact, corrupt header, corrupt payload, gaps, reordering. */
/* ddsperf ping's per-second lines: halved, the median of the medians, the largest
 * p99 and max, the smallest min, every count; other lines ignored. */
static void test_ddsperf_parse(void **state)
{
	static const char out[] =
		"[12445] participant vm:12445: new (self)\n"
		"[12445] 1.003  vm:12438 size 64 mean 41.5us min 17.6us 50% 36.0us 90% 59.1us "
		"99% 114.0us max 226.0us cnt 680\n"
		"[12445] 1.003  rss:7.4MB vcsw:1373 ivcsw:222 ddsperf:3%+1% recvUC:1%+0%\n"
		"[12445] 2.000  vm:12438 size 64 mean 43.3us min 16.0us 50% 30.0us 90% 69.2us "
		"99% 112.0us max 284.0us cnt 668\n"
		"[12445] 3.000  vm:12438 size 64 mean 39.4us min 14.8us 50% 40.0us 90% 57.3us "
		"99% 120.0us max 268.0us cnt 711\n";
	json_t *r = json_object(), *l;

	(void)state;
	assert_int_equal(bench_ddsperf_parse(out, r), 0);
	l = json_object_get(r, "latency_us");
	assert_true(json_number_value(json_object_get(l, "min")) == 7.4);
	assert_true(json_number_value(json_object_get(l, "p50")) == 18.0);
	assert_true(json_number_value(json_object_get(l, "p99")) == 60.0);
	assert_true(json_number_value(json_object_get(l, "max")) == 142.0);
	assert_int_equal(json_integer_value(json_object_get(r, "messages")), 680 + 668 + 711);
	assert_int_equal(json_integer_value(json_object_get(r, "seconds_reported")), 3);
	json_decref(r);
	r = json_object();
	assert_int_equal(bench_ddsperf_parse("[1] participant x: new (self)\n", r), -ENODATA);
	assert_null(json_object_get(r, "latency_us"));
	json_decref(r);
}

/* The median of n runs whose "v" are vals[] (a negative one: the run has none). */
static json_t *median_of(const double *vals, size_t n)
{
	json_t *runs = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *r = json_pack("{s:i}", "id", (json_int_t)i);

		if (vals[i] >= 0)
			json_object_set_new(r, "v", json_real(vals[i]));
		json_array_append_new(runs, r);
	}
	return bench_median_run(runs, "v", "v_runs");
}

static json_int_t id_of(json_t *r)
{
	json_int_t id = json_integer_value(json_object_get(r, "id"));

	json_decref(r);
	return id;
}

/* The row a repeated throughput run shows: the median run itself, ties in the
 * order they ran, a run without a rate as 0, every value kept in run order. */
static void test_median_run(void **state)
{
	static const double odd[] = { 5, 1, 3 }, even[] = { 4, 2, 8, 6 };
	static const double ties[] = { 2, 2, 1 }, missing[] = { 7, -1, 9 }, one[] = { 0.5 };
	json_t *r = median_of(odd, 3), *v = json_object_get(r, "v_runs");

	(void)state;
	assert_int_equal(json_array_size(v), 3);
	assert_true(json_number_value(json_array_get(v, 0)) == 5);
	assert_true(json_number_value(json_array_get(v, 2)) == 3);
	assert_int_equal(id_of(r), 2);
	assert_int_equal(id_of(median_of(even, 4)), 3);	/* 2 4 [6] 8: the upper middle */
	assert_int_equal(id_of(median_of(ties, 3)), 0);	/* 1 [2] 2: the first 2 */
	assert_int_equal(id_of(median_of(missing, 3)), 0); /* 0 [7] 9 */
	assert_int_equal(id_of(median_of(one, 1)), 0);
	r = bench_median_run(json_array(), "v", "v_runs");
	assert_string_equal(json_string_value(json_object_get(r, "status")), "no result");
	json_decref(r);
}

static void test_rx_accounting(void **state)
{
	uint8_t m[256];
	double lat[8];
	struct peer_rx rx = { .lat_ns = lat, .cap = 8 };

	(void)state;
	peer_fill_payload(m, sizeof(m), 0);
	peer_stamp(m, sizeof(m), 0, 1000);
	peer_rx_account(&rx, m, sizeof(m), 1500);
	assert_int_equal(rx.messages, 1);
	assert_int_equal(rx.nlat, 1);
	assert_true(lat[0] == 500.0);
	/* seq 2 arrives: seq 1 counted lost; then 1 arrives late: reordered. */
	peer_fill_payload(m, sizeof(m), 2);
	peer_stamp(m, sizeof(m), 2, 2000);
	peer_rx_account(&rx, m, sizeof(m), 2100);
	assert_int_equal(rx.lost, 1);
	peer_fill_payload(m, sizeof(m), 1);
	peer_stamp(m, sizeof(m), 1, 1900);
	peer_rx_account(&rx, m, sizeof(m), 2200);
	assert_int_equal(rx.reordered, 1);
	/* A flipped payload byte and a flipped header byte are both corrupt. */
	peer_fill_payload(m, sizeof(m), 3);
	peer_stamp(m, sizeof(m), 3, 3000);
	m[200] ^= 1;
	peer_rx_account(&rx, m, sizeof(m), 3100);
	assert_int_equal(rx.corrupt, 1);
	m[200] ^= 1;
	m[9] ^= 1;
	peer_rx_account(&rx, m, sizeof(m), 3100);
	assert_int_equal(rx.corrupt, 2);
	/* A length that does not match what was received. */
	m[9] ^= 1;
	peer_rx_account(&rx, m, sizeof(m) - 1, 3100);
	assert_int_equal(rx.corrupt, 3);
	assert_int_equal(rx.messages, 3);
	assert_int_equal(rx.bytes, 3 * sizeof(m));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_report_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_refused, setup, teardown),
		cmocka_unit_test(test_platform_recorded),
		cmocka_unit_test(test_rx_accounting),
		cmocka_unit_test(test_median_run),
		cmocka_unit_test(test_ddsperf_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
