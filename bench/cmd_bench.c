/* `rtvio bench [SCENARIO...] [--quick] [--out DIR]`: measures rtvio next to what a user
 * would pick instead, in one run, and writes results.json, report.md and plots.
 *
 * Every measured run is one sender and one receiver process (`rtvio bench peer`,
 * bench/peer.c), the same loops for every transport; rtvio runs go through a real
 * broker started from a generated config. It is a tool that writes reports: nothing
 * here passes or fails on speed. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench_cmd.h"
#include "pmqos.h"
#include "bench.h"
#include "runner.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtvio bench [SCENARIO...] [--quick] [--out DIR]\n"
		"\n"
		"Measures rtvio against the alternatives a user would pick (Unix sockets,\n"
		"pipes, iceoryx, a raw shared-memory ring) in one run and writes\n"
		"DIR/results.json, DIR/report.md and DIR/plots/*.png (default DIR %s).\n"
		"\n"
		"Scenarios (default: all available, in this order):\n"
		"  size      one-way latency p50/p99/max and throughput, 64 B .. 1 MiB:\n"
		"            rtvio (broker polling and sleeping, zero copy, polling\n"
		"            cells), unix stream and seqpacket, pipe, iceoryx and the\n"
		"            shared-memory ring (each also polling)\n"
		"  overhead  cost per message and per byte (fitted on the size runs) and the\n"
		"            broker's CPU use; runs size when it was not asked for\n"
		"  isolation control-flow latency CDF with and without a bulk flow under\n"
		"            fp, edf and fifo, through a Unix-socket relay and iceoryx\n"
		"  bound     observed worst case against `rtvio analyze`'s bound per flow,\n"
		"            demo.conf and flow sets at 10..90 %% utilization, host stalls\n"
		"            seen by probe threads told apart from rtvio's own misses\n"
		"  scale     broker CPU per message and control latency with 2..64 cells and\n"
		"            1..10 flows per cell\n"
		"  cores     broker throughput and control latency with 1 and 2 broker\n"
		"            cores ([broker] cpus) at 2..64 cells\n"
		"  interference control latency and bulk throughput with `rtvio hog` on\n"
		"            the cells' core, copy-engine regulation off and on\n"
		"  hostile   demo.conf's flows and a generated set against their bounds,\n"
		"            unloaded and next to `rtvio hostile` running each\n"
		"            misbehaviour in turn, then all together\n"
		"  isa       boot to first message and round trips of bare-metal cells on\n"
		"            x86_64, aarch64, riscv64, the Linux guest and a process cell\n"
		"            (QEMU, TCG; scripts/vm/isabench; a few minutes)\n"
		"  locks     acquire/release latency p50/p99/max and fairness of sync/'s\n"
		"            FIFO mutex, reader-writer and k-exclusion locks next to a\n"
		"            pthread mutex and a ticket lock, 2..8 threads\n"
		"  remote    a 64 B control flow across two brokers over Cyclone DDS (their\n"
		"            gateways, loopback) next to the same flow local and to\n"
		"            ddsperf ping/pong, alone and next to a remote bulk flow under\n"
		"            fp and fifo; host stalls counted (needs cyclonedds-tools)\n"
		"  provision time to admit a flow against the flows admitted, clone against\n"
		"            cold boot (QEMU, TCG; scripts/vm/provision bench), control\n"
		"            latency while cells and flows come and go, against none\n"
		"\n"
		"  --quick    fewer sizes and shorter runs (about three minutes; the\n"
		"             standard set takes under fifteen)\n"
		"  --out DIR  where results go\n"
		"  --modes LIST  the hostile scenario's misbehaviours, comma-separated\n"
		"             (default all: callfd,repost,storm,tinyrx,rx1,noread,vhuflood,\n"
		"             memtable,attach,punch,oversize,all); the unloaded run always\n"
		"             runs\n"
		"  --platform FILE  judge the bound and hostile scenarios by FILE's\n"
		"             [platform] costs (a config or `rtvio calibrate` output)\n"
		"             instead of running rtvio calibrate --quick --poll no\n"
		"  --broker-cores N  the bound scenario's brokers on N data-plane cores\n"
		"             (1 or 2; default 1: cpu %d; 2: cpus %d and the next)\n"
		"  --report-only  regenerate report.md and plots from DIR/results.json\n"
		"\n"
		"Sender and receiver are pinned to cpu %d, the broker to cpu %d. Numbers from\n"
		"a busy or virtual machine are noisy; report.md says what each figure means.\n"
		"Exit status: 0 the report was written, 1 a scenario could not run at all\n"
		"or a promised peer (iceoryx) could not run, 2 bad usage.\n",
		DEFAULT_OUT, BROKER_CPU, BROKER_CPU, CELL_CPU, BROKER_CPU);
}

/* ---- Machine, date, commit ---------------------------------------------------------- */

static char *first_line_of(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char buf[256] = "";

	if (!p)
		return NULL;
	if (!fgets(buf, sizeof(buf), p))
		buf[0] = 0;
	pclose(p);
	buf[strcspn(buf, "\n")] = 0;
	return buf[0] ? strdup(buf) : NULL;
}

static json_t *machine_info(void)
{
	json_t *m = json_object();
	struct utsname u;
	char *model = first_line_of("lscpu 2>/dev/null | sed -n 's/^Model name: *//p'");

	json_object_set_new(m, "cpu_model", json_string(model ? model : "unknown"));
	free(model);
	json_object_set_new(m, "cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	if (!uname(&u)) {
		char k[400];

		snprintf(k, sizeof(k), "%s %s %s", u.sysname, u.release, u.machine);
		json_object_set_new(m, "kernel", json_string(k));
	}
	return m;
}

static void stamp_run(struct bench *b)
{
	char date[64];
	time_t t = time(NULL);
	struct tm tm;
	char *commit = first_line_of("git rev-parse --short HEAD 2>/dev/null");
	char *dirty = first_line_of("git status --porcelain --untracked-files=no 2>/dev/null");

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
	json_object_set_new(b->res, "date", json_string(date));
	if (commit && dirty) {
		char c[80];

		snprintf(c, sizeof(c), "%s (working tree modified)", commit);
		json_object_set_new(b->res, "commit", json_string(c));
	} else {
		json_object_set_new(b->res, "commit", json_string(commit ? commit : "unknown"));
	}
	free(commit);
	free(dirty);
}

/* ---- Command ---------------------------------------------------------------------- */

static int write_results(struct bench *b)
{
	char path[4096];
	char cmd[4200];
	int err;

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", b->out);
	if (system(cmd) != 0)
		return -EIO;
	snprintf(path, sizeof(path), "%s/results.json", b->out);
	if (json_dump_file(b->res, path, JSON_INDENT(2) | JSON_SORT_KEYS)) {
		fprintf(stderr, "rtvio bench: cannot write %s\n", path);
		return -EIO;
	}
	err = bench_write_report(b->res, b->out, true);
	if (err)
		fprintf(stderr, "rtvio bench: report: %s\n", strerror(-err));
	return err;
}

static void remove_scratch(const struct bench *b)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "rtvio bench: could not remove %s\n", b->tmp);
}

static int run_overhead(struct bench *b)
{
	bench_scenario_overhead(b);
	return 0;
}

/* The scenarios in the order they run; `needs` is one that must run before (the
 * overhead fit is made on the size runs). */
static const struct scenario {
	const char *name;
	int (*run)(struct bench *b);
	int steps_std, steps_quick;	/* progress steps; size counts its own */
	int needs;
} scenarios[] = {
	{ "size", bench_scenario_size, 0, 0, -1 },
	{ "overhead", run_overhead, 0, 0, 0 },
	{ "isolation", bench_scenario_isolation, 10, 10, -1 },
	{ "bound", bench_scenario_bound, 10, 5, -1 },
	{ "scale", bench_scenario_scale, 8, 6, -1 },
	{ "cores", bench_scenario_cores, 8, 6, -1 },
	{ "interference", bench_scenario_interference, 4, 4, -1 },
	{ "hostile", bench_scenario_hostile, 12, 12, -1 },
	{ "isa", bench_scenario_isa, 1, 1, -1 },
	{ "locks", bench_scenario_locks, 5, 5, -1 },
	{ "remote", bench_scenario_remote, 5, 5, -1 },
	{ "provision", bench_scenario_provision, 4, 4, -1 },
};
#define NSCENARIOS ((int)(sizeof(scenarios) / sizeof(scenarios[0])))

static int scenario_index(const char *s)
{
	for (int i = 0; i < NSCENARIOS; i++)
		if (!strcmp(s, scenarios[i].name))
			return i;
	return -1;
}

/* Options and scenario names into b, want and *report_only. Returns -1 to go on, else
 * the exit status. */
/* "unknown scenario 'x' (expected size, overhead, ... or remote)", from the table. */
static void unknown_scenario(const char *name)
{
	fprintf(stderr, "rtvio bench: unknown scenario '%s' (expected ", name);
	for (int i = 0; i < NSCENARIOS; i++)
		fprintf(stderr, "%s%s", i == 0 ? "" : i == NSCENARIOS - 1 ? " or " : ", ",
			scenarios[i].name);
	fprintf(stderr, ")\n");
}

/* --broker-cores N: 1 or 2, at most the online cpus; 0, or 2 for bad usage. */
static int opt_broker_cores(struct bench *b, const char *arg)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (*end || n < 1 || n > sysconf(_SC_NPROCESSORS_ONLN) || n > 2) {
		fprintf(stderr, "rtvio bench: --broker-cores '%s': want 1 or 2, at most the "
				"online cpus\n", arg);
		return 2;
	}
	b->broker_cores = (int)n;
	return 0;
}

/* --modes LIST: misbehaviours of the hostile scenario. */
static int opt_modes(struct bench *b, const char *arg)
{
	char bad[64];

	if (bench_hostile_modes_check(arg, bad, sizeof(bad))) {
		fprintf(stderr, "rtvio bench: --modes: '%s' is not a mode of the hostile "
				"scenario (see rtvio bench --help)\n", bad);
		return 2;
	}
	b->hostile_modes = arg;
	return 0;
}

/* --platform FILE: the costs every scenario uses instead of calibrating. */
static int opt_platform(struct bench *b, const char *arg)
{
	static char src[300];
	char err[512];

	if (rtvio_platform_load(arg, &b->plat, err, sizeof(err)) ||
	    rtvio_platform_missing(&b->plat, err, sizeof(err))) {
		fprintf(stderr, "rtvio bench: --platform: %s\n", err);
		return 2;
	}
	snprintf(src, sizeof(src), "%s [platform] (given with --platform)", arg);
	b->plat_src = src;
	return 0;
}

/* The scenarios named after the options (all when none is), each with the ones it
 * needs; 2 for a name that is no scenario. */
static int want_scenarios(int argc, char **argv, bool want[NSCENARIOS])
{
	bool any = false;

	for (int i = optind; i < argc; i++) {
		int k = scenario_index(argv[i]);

		if (k < 0) {
			unknown_scenario(argv[i]);
			return 2;
		}
		want[k] = any = true;
	}
	for (int i = 0; i < NSCENARIOS; i++)
		want[i] = want[i] || !any;
	for (int i = NSCENARIOS - 1; i >= 0; i--)
		if (want[i] && scenarios[i].needs >= 0)
			want[scenarios[i].needs] = true;
	return -1;
}

static int parse_args(int argc, char **argv, struct bench *b, bool want[NSCENARIOS],
		      bool *report_only)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "out", required_argument, NULL, 'o' },
		{ "report-only", no_argument, NULL, 'r' },
		{ "broker-cores", required_argument, NULL, 'c' },
		{ "modes", required_argument, NULL, 'm' },
		{ "platform", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc = 0;

	optind = 0;
	while (!rc && (c = getopt_long(argc, argv, "qo:h", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			b->quick = true;
			break;
		case 'o':
			b->out = optarg;
			break;
		case 'r':
			*report_only = true;
			break;
		case 'c':
			rc = opt_broker_cores(b, optarg);
			break;
		case 'm':
			rc = opt_modes(b, optarg);
			break;
		case 'p':
			rc = opt_platform(b, optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	return rc ? rc : want_scenarios(argc, argv, want);
}

/* --report-only: report.md and plots again from DIR/results.json. */
static int report_only(const char *out)
{
	char path[4096];
	json_t *res;
	int err;

	snprintf(path, sizeof(path), "%s/results.json", out);
	res = json_load_file(path, 0, NULL);
	if (!res) {
		fprintf(stderr, "rtvio bench: cannot read %s\n", path);
		return 2;
	}
	err = bench_write_report(res, out, true);
	json_decref(res);
	if (err)
		fprintf(stderr, "rtvio bench: %s: not a results document of this "
				"version (%s)\n", path, strerror(-err));
	return err ? 2 : 0;
}

static json_t *settings(const struct bench *b, int qos)
{
	json_t *s = json_object();

	json_object_set_new(s, "idle_cpus", json_string(qos >= 0 ? "held awake (PM QoS "
			    "cpu latency 0), for every transport" : "not held awake"));
	json_object_set_new(s, "cell_cpu", json_integer(CELL_CPU));
	json_object_set_new(s, "broker_cpu", json_integer(BROKER_CPU));
	json_object_set_new(s, "cell_rt_priority", json_integer(RT_PRIO));
	json_object_set_new(s, "broker_chunk", json_string("4KiB"));
	json_object_set_new(s, "broker_rt_priority_poll", json_integer(BROKER_SLEEP_PRIO));
	json_object_set_new(s, "broker_rt_priority_sleep", json_integer(BROKER_SLEEP_PRIO));
	json_object_set_new(s, "throughput_run_s", json_real(b->quick ? 0.25 : 0.5));
	json_object_set_new(s, "latency_messages_max", json_integer(b->quick ? 300 : 2000));
	return s;
}

/* The results document's header: schema, machine, date, settings and notes. Holds
 * the idle cpus awake and returns pmqos_hold()'s handle. */
static int start_results(struct bench *b)
{
	int qos;

	b->res = json_object();
	json_object_set_new(b->res, "schema", json_string(BENCH_SCHEMA));
	json_object_set_new(b->res, "quick", json_boolean(b->quick));
	json_object_set_new(b->res, "machine", machine_info());
	json_object_set_new(b->res, "notes", json_array());
	json_object_set_new(b->res, "scenarios", json_object());
	stamp_run(b);
	/* Every transport runs on the same platform: idle cpus held awake for the whole
	 * run, as an rtvio broker holds them by default ([broker] pm_qos), so that no
	 * transport's wake-ups pay for a halted vCPU that another's do not. */
	qos = pmqos_hold(0);
	if (qos < 0)
		bench_note(b, "Idle cpus could not be held awake (/dev/cpu_dma_latency: %s): every "
			      "wake-up of a sleeping receiver includes waking a halted cpu.",
			   strerror(-qos));
	json_object_set_new(b->res, "settings", settings(b, qos));
	bench_note(b, "This machine: %lld online cpus. Absolute numbers drift by 20 %% or more "
		      "between runs of a VM; compare ratios measured in the same run.",
		   (long long)sysconf(_SC_NPROCESSORS_ONLN));
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		bench_note(b, "Fewer than 2 cpus: the broker shares the cells' core and every "
			      "comparison with it is distorted.");
	return qos;
}

/* Runs the wanted scenarios in table order; 1 when one of them could not run at all.
 * The first one starts even after an early signal (and records that it was cut). */
static int run_scenarios(struct bench *b, const bool want[NSCENARIOS])
{
	const char *failed[NSCENARIOS];
	int rc = 0, nfailed = 0;

	b->nsteps = want[0] ? bench_size_steps(b) : 0;
	for (int i = 1; i < NSCENARIOS; i++)
		if (want[i])
			b->nsteps += b->quick ? scenarios[i].steps_quick : scenarios[i].steps_std;
	for (int i = 0; i < NSCENARIOS; i++)
		if (want[i] && (!i || !rtvio_stop_requested) && scenarios[i].run(b)) {
			bench_note(b, "FAILED: scenario %s did not complete (the other notes say "
				      "which part).", scenarios[i].name);
			failed[nfailed++] = scenarios[i].name;
			rc = 1;
		}
	if (b->tty)
		fprintf(stderr, "\n");
	for (int i = 0; i < nfailed; i++)
		fprintf(stderr, "rtvio bench: FAILED: scenario %s did not complete (its notes "
				"in %s/report.md say which part)\n", failed[i], b->out);
	if (rtvio_stop_requested)
		bench_note(b, "The run was interrupted: the scenarios are incomplete.");
	return rc;
}

int cmd_bench(int argc, char **argv)
{
	struct bench b = { .out = DEFAULT_OUT, .broker_cores = 1 };
	bool want[NSCENARIOS] = { false }, only = false;
	int rc, qos;

	if (argc > 1 && !strcmp(argv[1], "peer"))
		return bench_peer_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "relay"))
		return bench_relay_main(argc - 1, argv + 1);
	rc = parse_args(argc, argv, &b, want, &only);
	if (rc >= 0)
		return rc;
	if (only)
		return report_only(b.out);
	b.tty = isatty(STDERR_FILENO);
	snprintf(b.tmp, sizeof(b.tmp), "/tmp/rtvio-bench-XXXXXX");
	if (!mkdtemp(b.tmp)) {
		fprintf(stderr, "rtvio bench: cannot create a scratch directory: %s\n",
			strerror(errno));
		return 1;
	}
	/* size and isolation promise iceoryx next to rtvio: no report without it. */
	if ((want[0] || want[2]) && !bench_iox_available()) {
		fprintf(stderr, "rtvio bench: FAILED: iceoryx cannot run: rtvio was built without "
				"libiceoryx-binding-c-dev (scripts/install-deps bench, then make bench, "
				"which reconfigures the build)\n");
		remove_scratch(&b);
		return 1;
	}
	rtvio_stop_on_signals();
	qos = start_results(&b);
	rc = run_scenarios(&b, want);
	pmqos_release(qos);
	if (b.peer_failed[0]) {
		bench_note(&b, "FAILED: a promised peer could not run (%s).", b.peer_failed);
		rc = 1;
	}
	if (write_results(&b))
		rc = 1;
	else
		fprintf(stderr, "rtvio bench: wrote %s/results.json, report.md and plots/\n", b.out);
	remove_scratch(&b);
	json_decref(b.res);
	if (b.peer_failed[0])
		fprintf(stderr, "rtvio bench: FAILED: %s\n", b.peer_failed);
	return rc;
}
