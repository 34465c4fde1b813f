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

#include "../cli/commands.h"
#include "memload.h"
#include "units.h"

#define MIB (1ULL << 20)

static volatile sig_atomic_t hog_stop;

static void on_signal(int sig)
{
	(void)sig;
	hog_stop = 1;
}

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

int cmd_hog(int argc, char **argv)
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
	enum mem_pattern pattern = MEM_COPY;
	uint64_t rate = 0, duration_ns = 0, buffer = 0, t0, last_t, last_b, bytes, end;
	long long cpu = -1;
	bool json = false, have_rate = false;
	struct sigaction sa = { .sa_handler = on_signal };
	struct streamer s;
	char a[32], t[32];
	int c, err;

	hog_stop = 0;
	optind = 0;	/* glibc: restart scanning from argv[1] */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		const char *why = NULL;

		switch (c) {
		case 'c':
			if (rtvio_parse_int(optarg, 0, 1 << 20, &cpu, &why)) {
				fprintf(stderr, "rtvio hog: --cpu '%s': expected a CPU number\n",
					optarg);
				return 2;
			}
			break;
		case 'r':
			have_rate = true;
			if (!strcmp(optarg, "max")) {
				rate = STREAM_FLAT_OUT;
			} else if (rtvio_parse_bandwidth(optarg, &rate, &why) || !rate) {
				fprintf(stderr, "rtvio hog: --rate '%s': expected a bandwidth such as "
					"2GB/s or 500MiB/s, or max\n", optarg);
				return 2;
			}
			break;
		case 'p':
			if (mem_pattern_parse(optarg, &pattern)) {
				fprintf(stderr, "rtvio hog: --pattern '%s': expected read, write or "
					"copy\n", optarg);
				return 2;
			}
			break;
		case 'd':
			if (rtvio_parse_time(optarg, 1000000000ULL, &duration_ns, &why) ||
			    !duration_ns) {
				fprintf(stderr, "rtvio hog: --duration '%s': expected a time such as "
					"10s or 500ms\n", optarg);
				return 2;
			}
			break;
		case 'b':
			if (rtvio_parse_size(optarg, 1, &buffer, &why) || buffer < MIB) {
				fprintf(stderr, "rtvio hog: --buffer '%s': expected a size of at "
					"least 1MiB\n", optarg);
				return 2;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "rtvio hog: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rtvio hog: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (cpu < 0 || !have_rate) {
		fprintf(stderr, "rtvio hog: --cpu and --rate are required\n");
		usage(stderr);
		return 2;
	}
	if (!cpu_allowed((int)cpu)) {
		fprintf(stderr, "rtvio hog: --cpu %lld: not a CPU this process may run on\n", cpu);
		return 2;
	}
	if (rate != STREAM_FLAT_OUT && rate > 1000000000000ULL) {
		fprintf(stderr, "rtvio hog: --rate: at most 1TB/s (or max)\n");
		return 2;
	}
	if (!buffer) {
		buffer = 2 * memload_llc_bytes();
		if (buffer < 64 * MIB)
			buffer = 64 * MIB;
	}

	/* No SA_RESTART: the sleep below must end when a signal arrives. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* Started idle, then given its rate: the clock starts before the token bucket
	 * does, so the reported rate never exceeds what the bucket allows. */
	err = streamer_start(&s, (int)cpu, pattern, buffer, STREAM_IDLE);
	if (err) {
		fprintf(stderr, "rtvio hog: cannot start on CPU %lld: %s\n", cpu, strerror(-err));
		return 2;
	}
	t0 = last_t = memload_now();
	streamer_set_rate(&s, rate);
	last_b = 0;
	end = duration_ns ? t0 + duration_ns : UINT64_MAX;
	if (rate == STREAM_FLAT_OUT)
		snprintf(t, sizeof t, "max");
	else
		memload_format_rate((double)rate, t, sizeof t);
	fprintf(stderr, "hog: %s on CPU %lld at %s; stop with Ctrl-C\n",
		mem_pattern_name(pattern), cpu, t);
	while (!hog_stop) {
		uint64_t now = memload_now(), left = end > now ? end - now : 0;
		struct timespec ts = { 0, 100000000 };

		if (!left)
			break;
		if (left < 100000000)
			ts.tv_nsec = (long)left;
		nanosleep(&ts, NULL);
		now = memload_now();
		if (now - last_t >= 1000000000ULL) {
			bytes = streamer_bytes(&s);
			memload_format_rate((double)(bytes - last_b) * 1e9 / (double)(now - last_t),
					    a, sizeof a);
			fprintf(stderr, "hog: %s\n", a);
			last_t = now;
			last_b = bytes;
		}
	}
	bytes = streamer_bytes(&s);
	end = memload_now();
	streamer_stop(&s);

	{
		double secs = (double)(end - t0) / 1e9;
		double achieved = secs > 0 ? (double)bytes / secs : 0;

		if (json) {
			json_t *o = json_object();

			json_object_set_new(o, "cpu", json_integer(cpu));
			json_object_set_new(o, "pattern", json_string(mem_pattern_name(pattern)));
			json_object_set_new(o, "target_Bps", rate == STREAM_FLAT_OUT ? json_null() :
					    json_integer((json_int_t)rate));
			json_object_set_new(o, "achieved_Bps",
					    json_integer((json_int_t)(achieved + 0.5)));
			json_object_set_new(o, "seconds", json_real(secs));
			json_dumpf(o, stdout, JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			json_decref(o);
		} else {
			memload_format_rate(achieved, a, sizeof a);
			printf("hog: %s on CPU %lld, target %s, achieved %s over %.1f s\n",
			       mem_pattern_name(pattern), cpu, t, a, secs);
		}
	}
	return 0;
}
