/* `rtvio stat [--json] [SOCKET_DIR|CONFIG]`: a running broker's statistics, read
 * from its control socket. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "broker_cmds.h"
#include "config.h"
#include "control.h"

#define DEFAULT_SOCKET_DIR "/tmp/rtvio"
#define TIMEOUT_MS 2000

static void usage(FILE *f)
{
	fprintf(f, "usage: rtvio stat [--json] [SOCKET_DIR|CONFIG]\n"
		   "\n"
		   "Asks the broker serving SOCKET_DIR (or CONFIG's socket_dir; default\n"
		   DEFAULT_SOCKET_DIR ") for its statistics: per cell (state, packets and\n"
		   "bytes in and out) and per flow (packets, bytes, chunks, policing events,\n"
		   "deadline misses, broker residence time), plus the copy-engine regulation.\n"
		   "\n"
		   "  --json   print the broker's JSON document instead of tables\n"
		   "\n"
		   "Exit status: 0 success, 2 bad usage or no broker reachable.\n");
}

static uint64_t u(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

/* Upper bound (ns) of the bucket holding quantile q of a log2 histogram; 0 when
 * empty, UINT64_MAX when it falls in the open last bucket. */
static uint64_t hist_quantile(json_t *hist, double q)
{
	uint64_t total = 0, seen = 0, want;
	size_t i;
	json_t *e;

	json_array_foreach(hist, i, e)
		total += u(e, "count");
	if (!total)
		return 0;
	want = (uint64_t)(q * (double)total);
	if (want >= total)
		want = total - 1;
	json_array_foreach(hist, i, e) {
		seen += u(e, "count");
		if (seen > want) {
			json_t *hi = json_object_get(e, "hi_ns");

			return json_is_integer(hi) ? (uint64_t)json_integer_value(hi) : UINT64_MAX;
		}
	}
	return UINT64_MAX;
}

static void print_us(char *buf, size_t n, uint64_t ns)
{
	if (ns == UINT64_MAX)
		snprintf(buf, n, "long");
	else if (ns == 0)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.1f", (double)ns / 1000.0);
}

static void print_tables(json_t *st)
{
	json_t *reg = json_object_get(st, "regulation"), *cells = json_object_get(st, "cells");
	json_t *flows = json_object_get(st, "flows"), *e;
	size_t i;

	printf("broker: generation %" PRIu64 ", policy %s, poll %s, chunk %" PRIu64 " B, up %.1f s\n",
	       u(st, "generation"), json_string_value(json_object_get(st, "policy")) ?: "?",
	       json_is_true(json_object_get(st, "poll")) ? "yes" : "no", u(st, "chunk"),
	       json_real_value(json_object_get(st, "uptime_s")));
	if (u(reg, "budget"))
		printf("regulation: %" PRIu64 " B per %" PRIu64 " ns, %" PRIu64
		       " B copied, throttled %" PRIu64 " periods (%.3f ms)\n",
		       u(reg, "budget"), u(reg, "period_ns"), u(reg, "bytes"),
		       u(reg, "throttled_periods"), (double)u(reg, "throttled_ns") / 1e6);
	if (u(reg, "budget") && u(reg, "reserve"))
		printf("regulation: %" PRIu64 " B per period kept for real-time flows, "
		       "best-effort steps refused for it %" PRIu64 " times\n",
		       u(reg, "reserve"), u(reg, "best_effort_waits"));
	if (!u(reg, "budget"))
		printf("regulation: off, %" PRIu64 " B copied\n", u(reg, "bytes"));
	printf("\n%-16s %6s %-10s %10s %12s %10s %12s %8s %7s\n", "CELL", "CID", "STATE",
	       "PKTS_IN", "BYTES_IN", "PKTS_OUT", "BYTES_OUT", "REFUSED", "RESETS");
	json_array_foreach(cells, i, e)
		printf("%-16s %6" PRIu64 " %-10s %10" PRIu64 " %12" PRIu64 " %10" PRIu64
		       " %12" PRIu64 " %8" PRIu64 " %7" PRIu64 "\n",
		       json_string_value(json_object_get(e, "name")) ?: "?", u(e, "cid"),
		       json_string_value(json_object_get(e, "state")) ?: "?", u(e, "packets_in"),
		       u(e, "bytes_in"), u(e, "packets_out"), u(e, "bytes_out"), u(e, "refused"),
		       u(e, "resets"));
	printf("\n%-16s %-11s %10s %12s %10s %8s %7s %9s %9s %9s\n", "FLOW", "CLASS", "PACKETS",
	       "BYTES", "CHUNKS", "POLICED", "MISSES", "P50<=us", "P99<=us", "MAX_us");
	json_array_foreach(flows, i, e) {
		json_t *h = json_object_get(e, "residence_hist");
		char p50[24], p99[24], mx[24];

		print_us(p50, sizeof(p50), hist_quantile(h, 0.5));
		print_us(p99, sizeof(p99), hist_quantile(h, 0.99));
		print_us(mx, sizeof(mx), u(e, "max_residence_ns"));
		printf("%-16s %-11s %10" PRIu64 " %12" PRIu64 " %10" PRIu64 " %8" PRIu64
		       " %7" PRIu64 " %9s %9s %9s\n",
		       json_string_value(json_object_get(e, "name")) ?: "?",
		       json_string_value(json_object_get(e, "class")) ?: "?", u(e, "packets"),
		       u(e, "bytes"), u(e, "chunks"), u(e, "policed"), u(e, "deadline_misses"),
		       p50, p99, mx);
	}
}

int cmd_stat(int argc, char **argv)
{
	const char *target = NULL;
	char dir[RTVIO_PATH_MAX], path[RTVIO_PATH_MAX + 16];
	bool json = false;
	char *reply = NULL;
	json_error_t jerr;
	json_t *doc, *st;
	struct stat sb;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "rtvio stat: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (!target) {
			target = argv[i];
		} else {
			fprintf(stderr, "rtvio stat: more than one SOCKET_DIR|CONFIG given\n");
			return 2;
		}
	}
	snprintf(dir, sizeof(dir), "%s", target ? target : DEFAULT_SOCKET_DIR);
	if (target && stat(target, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
		struct rtvio_config cfg;
		char err[512];

		memset(&cfg, 0, sizeof(cfg));
		if (rtvio_config_load(target, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "rtvio stat: %s\n", err);
			rtvio_config_free(&cfg);
			return 2;
		}
		snprintf(dir, sizeof(dir), "%s", cfg.broker.socket_dir);
		rtvio_config_free(&cfg);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, CTL_SOCKET_NAME);
	rc = ctl_request(path, "{\"cmd\":\"stat\"}\n", &reply, TIMEOUT_MS);
	if (rc < 0) {
		fprintf(stderr, "rtvio stat: no broker answers on %s: %s\n", path, strerror(-rc));
		return 2;
	}
	doc = json_loads(reply, 0, &jerr);
	free(reply);
	st = json_object_get(doc, "stat");
	if (!json_is_object(st)) {
		json_t *e = json_object_get(doc, "error");

		fprintf(stderr, "rtvio stat: the broker on %s did not return statistics%s%s\n", path,
			json_is_string(e) ? ": " : "", json_is_string(e) ? json_string_value(e) : "");
		json_decref(doc);
		return 2;
	}
	if (json) {
		json_dumpf(st, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
		putchar('\n');
	} else {
		print_tables(st);
	}
	json_decref(doc);
	return 0;
}
