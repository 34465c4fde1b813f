/* rtvio membench: how much DRAM bandwidth can be budgeted before memory saturates.
 *
 * The method of Schwäricke et al. (RTSS 2021): a latency-sensitive victim chases
 * pointers through a buffer well beyond the last-level cache on one core, while
 * interferers on the other cores stream through memory at controlled total rates, from
 * nothing to flat out. While the memory system has headroom the victim's latency stays
 * close to its unloaded value; past saturation it climbs steeply. The knee is the first
 * step where it exceeds factor x unloaded; the bandwidth achieved just below it is what
 * a regulator (MemGuard, Yun et al. 2013) may hand out. docs/platform.md explains how to
 * read and use the result.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "platform_cmds.h"
#include "fit.h"
#include "memload.h"
#include "units.h"

extern char **environ;

#define MIB (1ULL << 20)
#define MAX_CPUS 1024
#define MAX_STEPS 64
#define MAX_WINDOWS 64

struct mb_opts {
	bool quick;
	bool json;
	const char *out;
	double factor;
	enum mem_pattern pattern;
	uint64_t buffer;	/* 0: 4 x LLC, at least 64 MiB */
	int steps;		/* throttled steps (0, 1/steps, ... of peak), plus flat out */
};

struct mb_step {
	double target_Bps;	/* 0 for the unloaded step */
	bool flat_out;		/* interferers unthrottled; target_Bps is the calibrated peak */
	double achieved_Bps;	/* measured over the victim's windows */
	double victim_ns;	/* median over windows of ns per dependent access */
	double victim_min_ns, victim_max_ns;
	int windows;		/* samples in lat */
	double lat[MAX_WINDOWS];	/* ns per access of each window, all rounds */
	uint64_t bytes, ns;	/* interferer traffic and time, summed over rounds */
};

struct mb_run {
	struct mb_opts o;
	int cpus[MAX_CPUS];
	int ncpus;
	uint64_t llc;
	bool llc_guessed;
	struct chase chase;
	struct streamer *streamers;
	int nstreamers;		/* running now */
	int ninterferers;	/* used for the measurement, for the report */
	uint64_t window_accesses;
	int rounds;		/* passes over all steps */
	int windows;		/* per step and round */
	uint64_t settle_ns;
	double peak_Bps;
	struct mb_step steps[MAX_STEPS];
	int nsteps;
	struct knee knee;
	int short_steps;	/* throttled steps well below their target */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtvio membench [--quick] [--json] [--out DIR] [--factor F]\n"
		"                      [--pattern read|write|copy] [--buffer SIZE] [--steps N]\n"
		"\n"
		"Finds how much DRAM bandwidth can be budgeted before memory saturates: a\n"
		"pointer-chasing victim on the first CPU, throttled interferers on all others,\n"
		"the total interfering rate stepped from 0 to flat out.\n"
		"\n"
		"  --quick        fewer, shorter steps (well under a minute)\n"
		"  --json         print {unloaded_ns, knee_bandwidth_Bps, budgetable_Bps, steps}\n"
		"  --out DIR      where membench.csv, membench.gp and membench.png go\n"
		"                 (default platform-results, in the current directory)\n"
		"  --factor F     knee: first step with victim latency > F x unloaded\n"
		"                 (default 1.5)\n"
		"  --pattern P    interferer traffic: read, write or copy (default copy)\n"
		"  --buffer SIZE  victim buffer (default 4 x last-level cache, at least 64MiB)\n"
		"  --steps N      throttled steps at 0, 1/N, ... (N-1)/N of the peak rate, then\n"
		"                 flat out (default 10, 5 with --quick)\n");
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL),
			       .tv_nsec = (long)(ns % 1000000000ULL) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int parse_opts(int argc, char **argv, struct mb_opts *o)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },   { "json", no_argument, NULL, 'j' },
		{ "out", required_argument, NULL, 'o' }, { "factor", required_argument, NULL, 'f' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "buffer", required_argument, NULL, 'b' },
		{ "steps", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, steps = 0;

	*o = (struct mb_opts){ .out = "platform-results", .factor = 1.5, .pattern = MEM_COPY };
	optind = 0;	/* glibc: restart scanning from argv[1] */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		const char *why = NULL;
		char *end;
		long long v;

		switch (c) {
		case 'q':
			o->quick = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'o':
			if (!*optarg) {
				fprintf(stderr, "rtvio membench: --out needs a directory\n");
				return -EINVAL;
			}
			o->out = optarg;
			break;
		case 'f':
			errno = 0;
			o->factor = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(o->factor) ||
			    o->factor <= 1) {
				fprintf(stderr, "rtvio membench: --factor '%s': expected a number "
					"greater than 1\n", optarg);
				return -EINVAL;
			}
			break;
		case 'p':
			if (mem_pattern_parse(optarg, &o->pattern)) {
				fprintf(stderr, "rtvio membench: --pattern '%s': expected read, "
					"write or copy\n", optarg);
				return -EINVAL;
			}
			break;
		case 'b':
			if (rtvio_parse_size(optarg, 1, &o->buffer, &why) || o->buffer < MIB) {
				fprintf(stderr, "rtvio membench: --buffer '%s': expected a size of "
					"at least 1MiB%s%s\n", optarg, why ? ": " : "",
					why ? why : "");
				return -EINVAL;
			}
			break;
		case 's':
			if (rtvio_parse_int(optarg, 1, MAX_STEPS - 1, &v, &why)) {
				fprintf(stderr, "rtvio membench: --steps '%s': expected a whole "
					"number from 1 to %d\n", optarg, MAX_STEPS - 1);
				return -EINVAL;
			}
			steps = (int)v;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			fprintf(stderr, "rtvio membench: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rtvio membench: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	o->steps = steps ? steps : (o->quick ? 5 : 10);
	return 0;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0777) && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

static void progress(const struct mb_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void progress(const struct mb_run *r, const char *fmt, ...)
{
	va_list ap;

	(void)r;
	va_start(ap, fmt);
	fputs("membench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint64_t total_bytes(struct mb_run *r)
{
	uint64_t sum = 0;

	for (int i = 0; i < r->nstreamers; i++)
		sum += streamer_bytes(&r->streamers[i]);
	return sum;
}

static void set_total_rate(struct mb_run *r, double total_Bps, bool flat_out)
{
	uint64_t each = (uint64_t)llround(total_Bps / r->nstreamers);

	for (int i = 0; i < r->nstreamers; i++)
		streamer_set_rate(&r->streamers[i], flat_out ? STREAM_FLAT_OUT :
				  each ? each : STREAM_IDLE);
	/* Wait for every interferer to switch, so no traffic of the previous step is
	 * counted in this one (a streamer can be preempted in the middle of a chunk). */
	for (int i = 0; i < r->nstreamers; i++)
		while (!streamer_rate_applied(&r->streamers[i]))
			sleep_ns(100000);
}

/* Runs the victim for one round's windows while the interferers run at whatever rate
 * they were given, adding the samples and the interferers' traffic to the step. */
static void measure_round(struct mb_run *r, struct mb_step *s, void **cursor)
{
	uint64_t t0, b0;

	sleep_ns(r->settle_ns);
	b0 = total_bytes(r);
	t0 = memload_now();
	for (int w = 0; w < r->windows; w++) {
		uint64_t ws = memload_now();

		*cursor = chase_run(*cursor, r->window_accesses);
		s->lat[s->windows++] = (double)(memload_now() - ws) / (double)r->window_accesses;
	}
	s->bytes += total_bytes(r) - b0;
	s->ns += memload_now() - t0;
}

static void finish_step(struct mb_step *s)
{
	struct summary sum;

	s->achieved_Bps = s->ns ? (double)s->bytes * 1e9 / (double)s->ns : 0;
	fit_summarize(s->lat, (size_t)s->windows, &sum);
	s->victim_ns = sum.median;
	s->victim_min_ns = sum.min;
	s->victim_max_ns = sum.max;
}

/* The CPUs this process may use (the first is the victim's) and the LLC size. */
static int setup_cpus(struct mb_run *r)
{
	r->ncpus = memload_cpus(r->cpus, MAX_CPUS);
	if (r->ncpus < 0) {
		fprintf(stderr, "rtvio membench: cannot read this process's CPU affinity: %s\n",
			strerror(-r->ncpus));
		return r->ncpus;
	}
	if (r->ncpus < 2) {
		fprintf(stderr, "rtvio membench: needs at least 2 CPUs (a victim and an "
			"interferer), but this process may run on only %d\n", r->ncpus);
		return -EINVAL;
	}
	r->llc = memload_llc_bytes();
	if (!r->llc) {
		r->llc = 32 * MIB;
		r->llc_guessed = true;
		progress(r, "last-level cache size unknown (no sysfs cache info); assuming 32MiB");
	}
	return 0;
}

/* The victim's buffer and each interferer's two buffers. */
static int setup_sizes(struct mb_run *r, uint64_t *victim_bytes, uint64_t *stream_bytes)
{
	*victim_bytes = r->o.buffer ? r->o.buffer : 4 * r->llc;
	if (!r->o.buffer && *victim_bytes < 64 * MIB)
		*victim_bytes = 64 * MIB;
	if (*victim_bytes / MEMLOAD_LINE > UINT32_MAX) {
		fprintf(stderr, "rtvio membench: --buffer is too large (at most %llu GiB)\n",
			(unsigned long long)((UINT32_MAX * (uint64_t)MEMLOAD_LINE) >> 30));
		return -EINVAL;
	}
	/* Each interferer streams through two buffers of twice the LLC, so its traffic
	 * reaches DRAM; capped so that many cores do not need many GiB. */
	r->nstreamers = 0;
	r->ninterferers = r->ncpus - 1;
	*stream_bytes = 2 * r->llc;
	if (*stream_bytes < 16 * MIB)
		*stream_bytes = 16 * MIB;
	if (*stream_bytes * 2 * (uint64_t)r->ninterferers > (4096 * MIB) &&
	    (4096 * MIB) / (2 * (uint64_t)r->ninterferers) >= 4 * MIB)
		*stream_bytes = (4096 * MIB) / (2 * (uint64_t)r->ninterferers);
	return 0;
}

/* Pins the victim, builds its pointer chase and starts the interferers, idle. */
static int setup_start(struct mb_run *r, uint64_t victim_bytes, uint64_t stream_bytes)
{
	int err = memload_pin_self(r->cpus[0]);

	if (err) {
		fprintf(stderr, "rtvio membench: cannot pin the victim to CPU %d: %s\n",
			r->cpus[0], strerror(-err));
		return err;
	}
	progress(r, "victim on CPU %d over %llu MiB (LLC %llu MiB), %d %s interferer%s",
		 r->cpus[0], (unsigned long long)(victim_bytes / MIB),
		 (unsigned long long)(r->llc / MIB), r->ninterferers,
		 mem_pattern_name(r->o.pattern), r->ninterferers > 1 ? "s" : "");
	err = chase_build(&r->chase, victim_bytes, 0x5eed ^ (uint64_t)time(NULL));
	if (err) {
		fprintf(stderr, "rtvio membench: cannot build the %llu MiB victim buffer: %s\n",
			(unsigned long long)(victim_bytes / MIB), strerror(-err));
		return err;
	}
	r->streamers = calloc((size_t)r->ninterferers, sizeof *r->streamers);
	if (!r->streamers)
		return -ENOMEM;
	for (int i = 0; i < r->ninterferers; i++) {
		err = streamer_start(&r->streamers[i], r->cpus[i + 1], r->o.pattern,
				     stream_bytes, STREAM_IDLE);
		if (err) {
			fprintf(stderr, "rtvio membench: cannot start the interferer on CPU %d: "
				"%s\n", r->cpus[i + 1], strerror(-err));
			return err;
		}
		r->nstreamers = i + 1;
	}
	return 0;
}

/* One full lap warms the page tables; then size the windows from the speed of an
 * unloaded walk. */
static void size_windows(struct mb_run *r)
{
	void *p = chase_run(r->chase.start, r->chase.lines);
	uint64_t t0 = memload_now();
	double ns, window_ns = r->o.quick ? 5e6 : 20e6;

	p = chase_run(p, 1 << 16);
	ns = (double)(memload_now() - t0) / (1 << 16);
	if (ns < 1)
		ns = 1;
	r->window_accesses = (uint64_t)(window_ns / ns);
	if (r->window_accesses < 1000)
		r->window_accesses = 1000;
	(void)p;
	r->rounds = 3;
	r->windows = r->o.quick ? 5 : 15;
	r->settle_ns = r->o.quick ? 50000000ULL : 200000000ULL;
}

/* The peak the steps are fractions of: all interferers flat out, no victim. */
static int measure_peak(struct mb_run *r)
{
	uint64_t span = r->o.quick ? 300000000ULL : 1000000000ULL, b0, c0;
	char a[32], b[32];

	set_total_rate(r, 0, true);
	sleep_ns(r->settle_ns);
	b0 = total_bytes(r);
	c0 = memload_now();
	sleep_ns(span);
	r->peak_Bps = (double)(total_bytes(r) - b0) * 1e9 / (double)(memload_now() - c0);
	set_total_rate(r, 0, false);
	memload_format_rate(r->peak_Bps, a, sizeof a);
	memload_format_rate(r->peak_Bps / r->nstreamers, b, sizeof b);
	progress(r, "interferers flat out: %s (%s each)", a, b);
	if (!(r->peak_Bps > 0)) {
		fprintf(stderr, "rtvio membench: the interferers generated no traffic\n");
		return -EIO;
	}
	return 0;
}

static int setup(struct mb_run *r)
{
	uint64_t victim_bytes, stream_bytes;
	int err;

	err = setup_cpus(r);
	if (!err)
		err = setup_sizes(r, &victim_bytes, &stream_bytes);
	if (!err)
		err = setup_start(r, victim_bytes, stream_bytes);
	if (err)
		return err;
	size_windows(r);
	return measure_peak(r);
}

static void teardown(struct mb_run *r)
{
	for (int i = 0; i < r->nstreamers; i++)
		streamer_stop(&r->streamers[i]);
	free(r->streamers);
	r->streamers = NULL;
	r->nstreamers = 0;
	chase_free(&r->chase);
}

/* Every step is measured in several rounds, up and down the rates in turn, so that a
 * disturbance lasting a moment (the host preempting this VM, another process on the
 * victim's core) spreads over several steps' samples instead of deciding one step's
 * median, and slow drifts do not line up with the rate. */
static void run_steps(struct mb_run *r)
{
	struct sched_param fifo = { .sched_priority = 10 }, other = { .sched_priority = 0 };
	void *cursor = r->chase.start;
	int done = 0, err;

	/* SCHED_FIFO keeps ordinary processes off the victim's core while it measures.
	 * Only the victim: spinning interferers at real-time priority would starve their
	 * cores' other work. The victim sleeps between rounds, far below the kernel's
	 * real-time throttling limit. */
	err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo);
	if (err)
		progress(r, "victim at normal priority (SCHED_FIFO refused: %s)", strerror(err));

	r->nsteps = r->o.steps + 1;
	for (int i = 0; i < r->nsteps; i++) {
		struct mb_step *s = &r->steps[i];

		s->flat_out = i == r->o.steps;
		s->target_Bps = s->flat_out ? r->peak_Bps : r->peak_Bps * i / r->o.steps;
	}
	for (int round = 0; round < r->rounds; round++) {
		for (int j = 0; j < r->nsteps; j++) {
			int i = round % 2 ? r->nsteps - 1 - j : j;
			struct mb_step *s = &r->steps[i];

			set_total_rate(r, s->target_Bps, s->flat_out);
			measure_round(r, s, &cursor);
			done++;
			if (isatty(2))
				fprintf(stderr, "\rmembench: measuring %3d%%", 100 * done /
					(r->rounds * r->nsteps));
		}
	}
	if (isatty(2))
		fputc('\n', stderr);
	if (!err)
		pthread_setschedparam(pthread_self(), SCHED_OTHER, &other);
	set_total_rate(r, 0, false);
	for (int i = 0; i < r->nsteps; i++) {
		struct mb_step *s = &r->steps[i];
		char t[32], a[32];

		finish_step(s);
		memload_format_rate(s->target_Bps, t, sizeof t);
		memload_format_rate(s->achieved_Bps, a, sizeof a);
		progress(r, "step %d/%d: target %s%s, achieved %s, victim %.1f ns", i + 1,
			 r->nsteps, s->flat_out ? "flat out " : "", t, a, s->victim_ns);
		if (!s->flat_out && s->achieved_Bps < 0.8 * s->target_Bps)
			r->short_steps++;
	}
	/* The knee is placed on measured rates, so a shortfall does not falsify it, but
	 * it means the steps do not cover the range they were meant to. */
	if (r->short_steps)
		progress(r, "warning: in %d step%s the interferers reached less than 80%% of "
			 "their target: other work competes for their CPUs, and the steps are "
			 "closer together than planned", r->short_steps,
			 r->short_steps > 1 ? "s" : "");
}

static int analyse(struct mb_run *r)
{
	double bw[MAX_STEPS], lat[MAX_STEPS];

	for (int i = 0; i < r->nsteps; i++) {
		bw[i] = r->steps[i].achieved_Bps;
		lat[i] = r->steps[i].victim_ns;
	}
	return fit_knee(bw, lat, (size_t)r->nsteps, r->steps[0].victim_ns, r->o.factor,
			&r->knee);
}

static int write_csv(const struct mb_run *r, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "step,target_Bps,achieved_Bps,victim_ns,victim_min_ns,victim_max_ns,"
		"windows,flat_out\n");
	for (int i = 0; i < r->nsteps; i++) {
		const struct mb_step *s = &r->steps[i];

		fprintf(f, "%d,%.0f,%.0f,%.2f,%.2f,%.2f,%d,%d\n", i, s->target_Bps,
			s->achieved_Bps, s->victim_ns, s->victim_min_ns, s->victim_max_ns,
			s->windows, s->flat_out);
	}
	if (fclose(f))
		return -errno;
	return 0;
}

/* Runs gnuplot with argv; quiet silences its output (used to probe terminals). */
static int run_gnuplot(char *const argv[], bool quiet)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int err, status;

	posix_spawn_file_actions_init(&fa);
	if (quiet) {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	}
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	err = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err)
		return -err;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	/* posix_spawnp may report a missing program as exit status 127. */
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -ENOENT;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

/* A vertical line at bw with its label beside it, on whichever side has room. */
static void plot_marker(FILE *f, double bw, double xmax, const char *what, const char *color,
			int dash, double height)
{
	bool right_half = bw > 0.6 * xmax;

	fprintf(f, "set arrow from %.4f, graph 0 to %.4f, graph 1 nohead dt %d lw 2 "
		"lc rgb '%s'\n", bw / 1e9, bw / 1e9, dash, color);
	fprintf(f, "set label '%s %.2f GB/s' at %.4f, graph %.2f %s offset %s,0 "
		"tc rgb '%s'\n", what, bw / 1e9, bw / 1e9, height, right_half ? "right" : "left",
		right_half ? "-0.5" : "0.5", color);
}

/* Writes DIR/membench.gp and renders DIR/membench.png with it. */
static int write_plot(const struct mb_run *r, const char *dir, char *png, size_t pnglen)
{
	char gp[4096], csv[4096];
	const char *term = "pngcairo size 960,600";
	/* posix_spawn takes char *const argv[]: give it writable strings. */
	char prog[] = "gnuplot", dash_e[] = "-e", cmd[] = "set terminal pngcairo";
	char *probe[] = { prog, dash_e, cmd, NULL };
	char *plot[] = { prog, gp, NULL };
	double unloaded = r->steps[0].victim_ns, xmax = 0;
	FILE *f;
	int err;

	if (strchr(dir, '\'') || strchr(dir, '\n'))
		return -EINVAL;	/* cannot be quoted in a gnuplot string */
	snprintf(gp, sizeof gp, "%s/membench.gp", dir);
	snprintf(csv, sizeof csv, "%s/membench.csv", dir);
	snprintf(png, pnglen, "%s/membench.png", dir);
	err = run_gnuplot(probe, true);
	if (err == -ENOENT)
		return err;
	if (err)
		term = "png size 960,600";	/* gnuplot built without cairo */

	f = fopen(gp, "w");
	if (!f)
		return -errno;
	fprintf(f, "# rtvio membench plot: gnuplot %s/membench.gp\n", dir);
	fprintf(f, "set terminal %s\nset output '%s'\n", term, png);
	fprintf(f, "set datafile separator ','\n");
	fprintf(f, "set title \"Victim latency against interfering memory traffic (%d %s "
		"interferer%s)\"\n", r->ninterferers, mem_pattern_name(r->o.pattern),
		r->ninterferers > 1 ? "s" : "");
	fprintf(f, "set xlabel 'achieved interfering bandwidth (GB/s)'\n");
	fprintf(f, "set ylabel 'victim latency (ns per dependent access)'\n");
	fprintf(f, "set grid\nset key right bottom box opaque\nset yrange [0:*]\n"
		"set xrange [0:*]\n");
	for (int i = 0; i < r->nsteps; i++)
		if (r->steps[i].achieved_Bps > xmax)
			xmax = r->steps[i].achieved_Bps;
	if (r->knee.found)
		plot_marker(f, r->knee.knee_bw, xmax, "knee", "red", 2, 0.95);
	plot_marker(f, r->knee.budgetable_bw, xmax, "budgetable", "dark-green", 3, 0.88);
	fprintf(f, "plot '%s' skip 1 using ($3/1e9):4 with linespoints pt 7 lw 2 "
		"title 'victim, median window', \\\n", csv);
	fprintf(f, "     '' skip 1 using ($3/1e9):6 with points pt 6 "
		"title 'victim, slowest window', \\\n");
	fprintf(f, "     %.3f with lines dt 2 lc rgb 'red' title '%.2f x unloaded (%.1f ns)'\n",
		unloaded * r->o.factor, r->o.factor, unloaded);
	if (fclose(f))
		return -errno;
	return run_gnuplot(plot, false);
}

/* Files appear in the current directory unless --out says otherwise: said before
 * the run, on stderr so that --json's stdout stays one document. */
static void announce_out(const char *dir)
{
	char abs[PATH_MAX];

	fprintf(stderr, "rtvio membench: writing membench.csv, membench.gp and membench.png "
		"to %s (--out DIR to change)\n", realpath(dir, abs) ? abs : dir);
}

/* Six significant digits: a latency or a time in these documents is not known
 * better than that, and 17 digits ("17.033000000000001") only show binary noise. */
#define MB_JSON_PRECISION 6

static void print_json(const struct mb_run *r)
{
	json_t *root = json_object(), *steps = json_array();

	json_object_set_new(root, "unloaded_ns",
			    json_real(round(r->steps[0].victim_ns * 100) / 100));
	json_object_set_new(root, "knee_bandwidth_Bps", r->knee.found ?
			    json_integer((json_int_t)llround(r->knee.knee_bw)) : json_null());
	json_object_set_new(root, "budgetable_Bps",
			    json_integer((json_int_t)llround(r->knee.budgetable_bw)));
	for (int i = 0; i < r->nsteps; i++) {
		const struct mb_step *s = &r->steps[i];
		json_t *js = json_object();

		json_object_set_new(js, "target_Bps",
				    json_integer((json_int_t)llround(s->target_Bps)));
		json_object_set_new(js, "achieved_Bps",
				    json_integer((json_int_t)llround(s->achieved_Bps)));
		json_object_set_new(js, "victim_ns", json_real(round(s->victim_ns * 100) / 100));
		json_array_append_new(steps, js);
	}
	json_object_set_new(root, "steps", steps);
	json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
		   JSON_REAL_PRECISION(MB_JSON_PRECISION));
	fputc('\n', stdout);
	json_decref(root);
}

static void print_table(const struct mb_run *r)
{
	double unloaded = r->steps[0].victim_ns;
	char t[32], a[32], k[32], b[32];

	printf("rtvio membench: victim on CPU %d, %d %s interferer%s, victim buffer %llu MiB "
	       "(LLC %llu MiB%s)\n\n", r->cpus[0], r->ninterferers, mem_pattern_name(r->o.pattern),
	       r->ninterferers > 1 ? "s" : "", (unsigned long long)(r->chase.bytes / MIB),
	       (unsigned long long)(r->llc / MIB), r->llc_guessed ? ", assumed" : "");
	printf("%4s  %-20s  %-12s  %9s  %9s  %10s\n", "step", "target", "achieved",
	       "victim ns", "slowest", "x unloaded");
	for (int i = 0; i < r->nsteps; i++) {
		const struct mb_step *s = &r->steps[i];
		char target[64];

		memload_format_rate(s->target_Bps, t, sizeof t);
		memload_format_rate(s->achieved_Bps, a, sizeof a);
		snprintf(target, sizeof target, "%s%s", s->flat_out ? "flat out " : "",
			 i ? t : "0 (unloaded)");
		printf("%4d  %-20s  %-12s  %9.1f  %9.1f  %10.2f%s\n", i, target, a, s->victim_ns,
		       s->victim_max_ns, s->victim_ns / unloaded,
		       r->knee.found && (size_t)i == r->knee.index ? "  <- knee" : "");
	}
	memload_format_rate(r->knee.budgetable_bw, b, sizeof b);
	printf("\nunloaded victim latency: %.1f ns per access\n", unloaded);
	if (r->knee.found) {
		memload_format_rate(r->knee.knee_bw, k, sizeof k);
		printf("knee: %s (step %zu, victim %.1f ns > %.2f x unloaded)\n", k, r->knee.index,
		       r->steps[r->knee.index].victim_ns, r->o.factor);
	} else {
		printf("knee: none (victim latency stayed within %.2f x unloaded even flat out)\n",
		       r->o.factor);
	}
	printf("budgetable: %s of interfering traffic (read + written bytes)%s\n", b,
	       r->knee.found ? "" : ", a lower bound: memory did not saturate");
	if (r->knee.found && !(r->knee.budgetable_bw > 0))
		printf("no step lay below the knee: run again with more --steps\n");
}

int cmd_membench(int argc, char **argv)
{
	struct mb_run *r = calloc(1, sizeof *r);
	char csv[4096], png[4096];
	int err, ret = 2;

	if (!r) {
		fprintf(stderr, "rtvio membench: out of memory\n");
		return 2;
	}
	err = parse_opts(argc, argv, &r->o);
	if (err) {
		free(r);
		return err > 0 ? 0 : 2;
	}
	err = make_dirs(r->o.out);
	if (err) {
		fprintf(stderr, "rtvio membench: cannot create output directory '%s': %s\n",
			r->o.out, strerror(-err));
		free(r);
		return 2;
	}
	announce_out(r->o.out);
	if (setup(r))
		goto out;
	run_steps(r);
	teardown(r);
	if (analyse(r)) {
		fprintf(stderr, "rtvio membench: the unloaded step measured no latency\n");
		goto out;
	}

	snprintf(csv, sizeof csv, "%s/membench.csv", r->o.out);
	err = write_csv(r, csv);
	if (err) {
		fprintf(stderr, "rtvio membench: cannot write %s: %s\n", csv, strerror(-err));
		goto out;
	}
	err = write_plot(r, r->o.out, png, sizeof png);
	if (err == -ENOENT)
		fprintf(stderr, "rtvio membench: gnuplot not found (scripts/install-deps "
			"installs it); wrote %s only\n", csv);
	else if (err)
		fprintf(stderr, "rtvio membench: could not render %s with gnuplot (%s); the "
			"data is in %s\n", png, strerror(-err), csv);

	if (r->o.json) {
		print_json(r);
	} else {
		print_table(r);
		printf("wrote %s%s%s\n", csv, err ? "" : " and ", err ? "" : png);
	}
	ret = 0;
out:
	teardown(r);
	free(r);
	return ret;
}
