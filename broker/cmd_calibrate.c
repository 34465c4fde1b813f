/* rtvio calibrate [--quick] [--out FILE] [--json] [--poll yes|no] [--cpu N] [--copy C]
 *                 [--pm-qos yes|no]
 *
 * Measures the broker's own costs with the real data plane and writes the [platform]
 * section `rtvio analyze` reads (calibrate.h says how the values are chosen). */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker_cmds.h"
#include "units.h"
#include "pmqos.h"
#include "calibrate.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtvio calibrate [--quick] [--out FILE] [--json] [--poll yes|no] [--cpu N]\n"
		"                       [--copy normal|nt] [--pm-qos yes|no]\n"
		"\n"
		"Runs the broker's data plane against two synthetic process cells and measures\n"
		"what `rtvio analyze` needs: per-packet and per-chunk overhead and copy bandwidth\n"
		"(a fit of step time against bytes, 64 B .. 64 KiB), the longest ingest pass, and\n"
		"ingest and notify latency with poll = yes and poll = no. Each value is the\n"
		"largest sample that did not overlap a host stall (a gap probe records stalls).\n"
		"\n"
		"  --quick       fewer samples (under a minute); default a few minutes at most\n"
		"  --out FILE    write the [platform] section (with comments saying when, on\n"
		"                what and how) to FILE instead of stdout\n"
		"  --json        print one JSON document with every distribution on stdout\n"
		"  --poll yes|no which latencies go into the section: the broker's poll setting\n"
		"                (default yes; both are measured and shown in the comments)\n"
		"  --cpu N       cpu the data plane runs on (default: the last allowed cpu); the\n"
		"                cells and the gap probe use another allowed cpu\n"
		"  --copy normal|nt  the broker's copy routine to measure ([broker] copy;\n"
		"                default normal)\n"
		"  --pm-qos yes|no  keep idle cpus awake while measuring, as the broker does\n"
		"                with [broker] pm_qos (default yes)\n"
		"\n"
		"Two cpus are needed. Run on an otherwise idle machine; run `rtvio hog` on the\n"
		"other cpus meanwhile to include memory interference in the copy costs.\n");
}

struct opts {
	bool quick, json, poll, pm_qos;
	const char *out;
	const char *copy;
	int cpu;
};

/* 1 = --help printed, 0 = go, -EINVAL = usage error (reported). */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "quick", no_argument, NULL, 'q' }, { "out", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },  { "poll", required_argument, NULL, 'p' },
		{ "cpu", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' },
		{ "copy", required_argument, NULL, 'y' },
		{ "pm-qos", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->poll = true;
	o->pm_qos = true;
	o->cpu = -1;
	o->copy = rtvio_copy_name(RTVIO_COPY_NORMAL);
	optind = 0; /* full reset: the command may run more than once in a process */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
		switch (c) {
		case 'q':
			o->quick = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'p':
		case 'm': {
			bool *flag = c == 'p' ? &o->poll : &o->pm_qos;

			if (!strcmp(optarg, "yes")) {
				*flag = true;
			} else if (!strcmp(optarg, "no")) {
				*flag = false;
			} else {
				fprintf(stderr, "rtvio calibrate: --%s '%s': expected yes or no\n",
					c == 'p' ? "poll" : "pm-qos", optarg);
				return -EINVAL;
			}
			break;
		}
		case 'c': {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 0 || v >= CPU_SETSIZE) {
				fprintf(stderr, "rtvio calibrate: --cpu '%s': expected a cpu number\n",
					optarg);
				return -EINVAL;
			}
			o->cpu = (int)v;
			break;
		}
		case 'y':
			if (strcmp(optarg, rtvio_copy_name(RTVIO_COPY_NORMAL)) &&
			    strcmp(optarg, rtvio_copy_name(RTVIO_COPY_NT))) {
				fprintf(stderr, "rtvio calibrate: --copy '%s': expected normal or nt\n",
					optarg);
				return -EINVAL;
			}
			o->copy = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			fprintf(stderr, "rtvio calibrate: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rtvio calibrate: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* The data plane's cpu and another one for the cells, both from the allowed set. */
static int pick_cpus(int want, int *broker, int *other)
{
	cpu_set_t set;
	int last = -1, first = -1;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -errno;
	if (want >= 0 && !CPU_ISSET(want, &set)) {
		fprintf(stderr, "rtvio calibrate: --cpu %d: not a cpu this process may use\n", want);
		return -EINVAL;
	}
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (want < 0)
			last = c;
		if (first < 0 && c != want)
			first = c;
	}
	*broker = want >= 0 ? want : last;
	if (want < 0) {
		first = -1;
		for (int c = 0; c < CPU_SETSIZE; c++) {
			if (CPU_ISSET(c, &set) && c != *broker) {
				first = c;
				break;
			}
		}
	}
	if (first < 0) {
		fprintf(stderr, "rtvio calibrate: needs two cpus (one for the data plane, one for "
			"the cells); this process may use only cpu %d\n", *broker);
		return -EINVAL;
	}
	*other = first;
	return 0;
}

static void show_progress(void *ctx, double frac, const char *phase)
{
	const int width = 30;
	int fill = (int)(frac * width + 0.5);

	(void)ctx;
	if (fill > width)
		fill = width;
	fprintf(stderr, "\rrtvio calibrate [%.*s%.*s] %3d%% %-16s", fill,
		"##############################", width - fill,
		"..............................", (int)(frac * 100 + 0.5), phase);
	fflush(stderr);
}

static void print_row(const char *name, const struct cal_dist *d)
{
	char st[32] = "n/a";

	if (d->stall_checked)
		snprintf(st, sizeof(st), "%zu", d->stalled);
	printf("%-22s %10.0f %10.0f %10.0f %8zu %8s\n", name, d->max_ns, d->p999_ns,
	       d->median_ns, d->n, st);
}

static void print_human(const struct cal_results *r, const struct rtvio_platform_cfg *p,
			bool poll)
{
	char b[48];

	printf("copy steps: %zu samples (%zu overlapped host stalls); fit %.4f ns/B + %.0f ns, "
	       "r^2 %.4f\n", r->steps.n, r->steps.stalled, r->steps.raw.slope,
	       r->steps.raw.intercept, r->steps.raw.r2);
	rtvio_fmt_bandwidth(b, sizeof(b), p->copy_bandwidth);
	printf("  copy_bandwidth  %s\n", b);
	rtvio_fmt_time(b, sizeof(b), p->chunk_overhead);
	printf("  chunk_overhead  %s\n", b);
	rtvio_fmt_time(b, sizeof(b), p->packet_overhead);
	printf("  packet_overhead %s\n", b);
	printf("%-22s %10s %10s %10s %8s %8s\n", "distribution", "max ns", "p99.9 ns",
	       "median ns", "samples", "stalled");
	print_row("ingest_step", &r->ingest_step);
	print_row("batch_gap", &r->batch_gap);
	printf("%-22s %10.3f %10.3f %10.3f %8zu %8zu\n", "change_step per slot", r->change_step.max_ns,
	       r->change_step.p999_ns, r->change_step.median_ns, r->change_step.n,
	       r->change_step.stalled);
	print_row("ingest_latency poll", &r->ingest_lat[CAL_POLL]);
	print_row("ingest_latency sleep", &r->ingest_lat[CAL_SLEEP]);
	print_row("notify_latency poll", &r->notify_lat[CAL_POLL]);
	print_row("notify_latency sleep", &r->notify_lat[CAL_SLEEP]);
	print_row("wake_write", &r->wake_write);
	printf("stalls recorded (host, or other load on a probed cpu): %zu (longest %llu ns); "
	       "latencies written: poll = %s\n",
	       r->gaps, (unsigned long long)r->longest_gap_ns, poll ? "yes" : "no");
}

int cmd_calibrate(int argc, char **argv)
{
	struct opts o;
	struct cal_opts co = { 0 };
	struct cal_results *r;
	struct cal_meta m;
	struct rtvio_platform_cfg p;
	char err[256] = "";
	struct timespec t0, t1;
	int ret = parse_opts(argc, argv, &o), qos = -1;

	if (ret)
		return ret > 0 ? 0 : 2;
	if (pick_cpus(o.cpu, &co.broker_cpu, &co.other_cpu))
		return 2;
	co.quick = o.quick;
	co.copy = o.copy;
	if (isatty(2))
		co.progress = show_progress;
	r = calloc(1, sizeof(*r));
	if (!r) {
		fprintf(stderr, "rtvio calibrate: out of memory\n");
		return 2;
	}
	memset(&m, 0, sizeof(m));
	cal_meta_fill(&m);
	m.broker_cpu = co.broker_cpu;
	m.other_cpu = co.other_cpu;
	m.quick = o.quick;
	m.copy = o.copy;
	m.pm_qos = "not held awake (--pm-qos no)";
	if (o.pm_qos) {
		qos = pmqos_hold(0);
		if (qos < 0) {
			fprintf(stderr, "rtvio calibrate: warning: cannot keep idle cpus awake "
				"(/dev/cpu_dma_latency: %s); measuring without\n", strerror(-qos));
			m.pm_qos = "not held awake (no permission or no /dev/cpu_dma_latency)";
		} else {
			m.pm_qos = "held awake (PM QoS cpu latency 0)";
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = cal_measure(&co, r, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pmqos_release(qos);
	if (co.progress)
		fprintf(stderr, "\n");
	if (ret) {
		fprintf(stderr, "rtvio calibrate: %s\n", err[0] ? err : strerror(-ret));
		free(r);
		return 2;
	}
	m.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (cal_platform(r, o.poll, &p)) {
		fprintf(stderr, "rtvio calibrate: the measurements give no usable platform values\n");
		free(r);
		return 2;
	}
	if (o.out) {
		FILE *f = fopen(o.out, "w");

		if (!f) {
			fprintf(stderr, "rtvio calibrate: cannot write '%s': %s\n", o.out,
				strerror(errno));
			free(r);
			return 2;
		}
		ret = cal_write_section(f, r, &m, o.poll);
		if (fclose(f) && !ret)
			ret = -EIO;
		if (ret) {
			fprintf(stderr, "rtvio calibrate: cannot write '%s': %s\n", o.out,
				strerror(-ret));
			free(r);
			return 2;
		}
	}
	if (o.json) {
		json_t *doc = cal_json(r, &m, o.poll);

		if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(12))) {
			fprintf(stderr, "rtvio calibrate: cannot print the JSON document\n");
			json_decref(doc);
			free(r);
			return 2;
		}
		putchar('\n');
		json_decref(doc);
	} else if (o.out) {
		print_human(r, &p, o.poll);
		printf("wrote %s\n", o.out);
	} else {
		ret = cal_write_section(stdout, r, &m, o.poll);
		if (ret) {
			free(r);
			return 2;
		}
	}
	free(r);
	return 0;
}
