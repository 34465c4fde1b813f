/* rtvio hog: a throttled memory-traffic generator for experiments (e.g. loading the
 * machine while the broker runs). It is one of membench's interferers, run alone. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform_cmds.h"
#include "memload.h"
#include "units.h"
#include "stop.h"

#define MIB (1ULL << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtvio hog --cpu N --rate RATE [--pattern read|write|copy]\n"
		"                 [--duration TIME] [--buffer SIZE] [--json]\n"
		"\n"
		"Generates memory traffic on CPU N at RATE (e.g. 2GB/s, 500MiB/s, or max for\n"
		"unthrottled) until SIGINT/SIGTERM or the duration ends, reporting the rate it\n"
		"achieved every second (stderr) and at the end (stdout). Read and written bytes\n"
		"both count, so a copy at 2GB/s copies 1 GB per second.\n"
		"\n"
		"  --pattern P    read, write or copy (default copy)\n"
		"  --duration T   e.g. 10s, 500ms; a bare number is seconds (default: until a\n"
		"                 signal)\n"
		"  --buffer SIZE  each of its two buffers (default 2 x last-level cache, at\n"
		"                 least 64MiB, so the traffic reaches DRAM)\n"
		"  --json         print {cpu, pattern, target_Bps, achieved_Bps, seconds}\n");
}

static bool cpu_allowed(int cpu)
{
	int cpus[1024];
	int n = memload_cpus(cpus, 1024);

	for (int i = 0; i < n; i++)
		if (cpus[i] == cpu)
			return true;
	return false;
}

struct hog_opts {
	enum mem_pattern pattern;
	uint64_t rate, duration_ns, buffer;
	long long cpu;
	bool json, have_rate;
};

/* One option into o. Returns -1 to go on, else the exit status. */
static int parse_opt(int c, struct hog_opts *o, char **argv)
{
	const char *why = NULL;

	switch (c) {
	case 'c':
		if (rtvio_parse_int(optarg, 0, 1 << 20, &o->cpu, &why)) {
			fprintf(stderr, "rtvio hog: --cpu '%s': expected a CPU number\n", optarg);
			return 2;
		}
		return -1;
	case 'r':
		o->have_rate = true;
		if (!strcmp(optarg, "max")) {
			o->rate = STREAM_FLAT_OUT;
		} else if (rtvio_parse_bandwidth(optarg, &o->rate, &why) || !o->rate) {
			fprintf(stderr, "rtvio hog: --rate '%s': expected a bandwidth such as "
				"2GB/s or 500MiB/s, or max\n", optarg);
			return 2;
		}
		return -1;
	case 'p':
		if (mem_pattern_parse(optarg, &o->pattern)) {
			fprintf(stderr, "rtvio hog: --pattern '%s': expected read, write or "
				"copy\n", optarg);
			return 2;
		}
		return -1;
	case 'd':
		if (rtvio_parse_time(optarg, 1000000000ULL, &o->duration_ns, &why) ||
		    !o->duration_ns) {
			fprintf(stderr, "rtvio hog: --duration '%s': expected a time such as "
				"10s or 500ms\n", optarg);
			return 2;
		}
		return -1;
	case 'b':
		if (rtvio_parse_size(optarg, 1, &o->buffer, &why) || o->buffer < MIB) {
			fprintf(stderr, "rtvio hog: --buffer '%s': expected a size of at "
				"least 1MiB\n", optarg);
			return 2;
		}
		return -1;
	case 'j':
		o->json = true;
		return -1;
	case 'h':
		usage(stdout);
		return 0;
	default:
		fprintf(stderr, "rtvio hog: unknown or incomplete option '%s'\n", argv[optind - 1]);
		usage(stderr);
		return 2;
	}
}

/* What the options say together. Returns -1 to go on, else the exit status. */
static int check_opts(struct hog_opts *o)
{
	if (o->cpu < 0 || !o->have_rate) {
		fprintf(stderr, "rtvio hog: --cpu and --rate are required\n");
		usage(stderr);
		return 2;
	}
	if (!cpu_allowed((int)o->cpu)) {
		fprintf(stderr, "rtvio hog: --cpu %lld: not a CPU this process may run on\n",
			o->cpu);
		return 2;
	}
	if (o->rate != STREAM_FLAT_OUT && o->rate > 1000000000000ULL) {
		fprintf(stderr, "rtvio hog: --rate: at most 1TB/s (or max)\n");
		return 2;
	}
	if (!o->buffer) {
		o->buffer = 2 * memload_llc_bytes();
		if (o->buffer < 64 * MIB)
			o->buffer = 64 * MIB;
	}
	return -1;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct hog_opts *o)
{
	static const struct option longopts[] = {
		{ "cpu", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ "buffer", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	optind = 0;	/* glibc: restart scanning from argv[1] */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
		if ((rc = parse_opt(c, o, argv)) >= 0)
			return rc;
	if (optind < argc) {
		fprintf(stderr, "rtvio hog: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return check_opts(o);
}

/* Sleeps until a signal or the end, printing the rate of every second on stderr. */
static void hog_wait(struct streamer *s, uint64_t t0, uint64_t end)
{
	uint64_t last_t = t0, last_b = 0, bytes;
	char a[32];

	while (!rtvio_stop_requested) {
		uint64_t now = memload_now(), left = end > now ? end - now : 0;
		struct timespec ts = { 0, 100000000 };

		if (!left)
			break;
		if (left < 100000000)
			ts.tv_nsec = (long)left;
		nanosleep(&ts, NULL);
		now = memload_now();
		if (now - last_t >= 1000000000ULL) {
			bytes = streamer_bytes(s);
			memload_format_rate((double)(bytes - last_b) * 1e9 / (double)(now - last_t),
					    a, sizeof a);
			fprintf(stderr, "hog: %s\n", a);
			last_t = now;
			last_b = bytes;
		}
	}
}

static void hog_report(const struct hog_opts *o, const char *t, uint64_t bytes, double secs)
{
	double achieved = secs > 0 ? (double)bytes / secs : 0;
	char a[32];

	if (o->json) {
		json_t *j = json_object();

		json_object_set_new(j, "cpu", json_integer(o->cpu));
		json_object_set_new(j, "pattern", json_string(mem_pattern_name(o->pattern)));
		json_object_set_new(j, "target_Bps", o->rate == STREAM_FLAT_OUT ? json_null() :
				    json_integer((json_int_t)o->rate));
		json_object_set_new(j, "achieved_Bps", json_integer((json_int_t)(achieved + 0.5)));
		json_object_set_new(j, "seconds", json_real(secs));
		/* Six significant digits: more is binary noise, not measurement. */
		json_dumpf(j, stdout, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
		fputc('\n', stdout);
		json_decref(j);
	} else {
		memload_format_rate(achieved, a, sizeof a);
		printf("hog: %s on CPU %lld, target %s, achieved %s over %.1f s\n",
		       mem_pattern_name(o->pattern), o->cpu, t, a, secs);
	}
}

/* Ctrl-C is the way to stop only a hog that runs until stopped. */
static void hog_announce(const struct hog_opts *o, const char *t)
{
	char d[32];

	if (o->duration_ns)
		fprintf(stderr, "hog: %s on CPU %lld at %s for %s\n", mem_pattern_name(o->pattern),
			o->cpu, t, rtvio_fmt_time(d, sizeof d, o->duration_ns));
	else
		fprintf(stderr, "hog: %s on CPU %lld at %s; stop with Ctrl-C\n",
			mem_pattern_name(o->pattern), o->cpu, t);
}

int cmd_hog(int argc, char **argv)
{
	struct hog_opts o = { .pattern = MEM_COPY, .cpu = -1 };
	uint64_t t0, bytes, end;
	struct streamer s;
	char t[32];
	int rc, err;

	rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	/* No SA_RESTART there: the sleep in hog_wait() must end when a signal arrives. */
	rtvio_stop_on_signals();

	/* Started idle, then given its rate: the clock starts before the token bucket
	 * does, so the reported rate never exceeds what the bucket allows. */
	err = streamer_start(&s, (int)o.cpu, o.pattern, o.buffer, STREAM_IDLE);
	if (err) {
		fprintf(stderr, "rtvio hog: cannot start on CPU %lld: %s\n", o.cpu, strerror(-err));
		return 2;
	}
	t0 = memload_now();
	streamer_set_rate(&s, o.rate);
	end = o.duration_ns ? t0 + o.duration_ns : UINT64_MAX;
	if (o.rate == STREAM_FLAT_OUT)
		snprintf(t, sizeof t, "max");
	else
		memload_format_rate((double)o.rate, t, sizeof t);
	hog_announce(&o, t);
	hog_wait(&s, t0, end);
	bytes = streamer_bytes(&s);
	end = memload_now();
	streamer_stop(&s);
	hog_report(&o, t, bytes, (double)(end - t0) / 1e9);
	return 0;
}
