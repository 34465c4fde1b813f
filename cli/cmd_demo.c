/* `rtvio demo [CONFIG]`: a broker and one `rtvio cell` per process cell on the same
 * config, run for a while, stopped cleanly, then one row per flow: what the receiving
 * cell measured next to the bound `rtvio analyze` gives for it.
 *
 * The demo runs everything from one derived config file (the given one with
 * --policy applied, every default spelled out), so broker, cells and analysis see
 * exactly the same configuration. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cmd_demo.h"
#include "config.h"
#include "demo_platform.h"
#include "proc.h"
#include "stop.h"

#define DEFAULT_CONFIG "configs/demo.conf"

struct demo {
	struct rtvio_config cfg;
	char conf[64];          /* derived config file */
	double duration;
	bool json;
	struct proc broker;
	struct proc *cells;     /* one per process cell, indexed like cfg.cells */
	json_t *bounds;         /* flow name -> bound in µs (or null) */
	json_t *verdict;        /* the analysis's status, why, utilization, schedulable */
	struct demo_platform plat; /* the costs the bounds are computed from */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtvio demo [CONFIG] [--duration S] [--policy fp|edf|fifo] [--json]\n"
		"\n"
		"Starts a broker and one process cell per [cell] of CONFIG (default %s),\n"
		"runs their workloads for S seconds (default 10), stops everything cleanly\n"
		"and prints one row per flow: messages, lost, corrupt, one-way latency\n"
		"min/p50/p99/p99.9/max in microseconds, deadline misses and the analytical\n"
		"bound of `rtvio analyze` for the same config.\n"
		"\n"
		"The bounds use this machine's platform costs, measured by `rtvio calibrate\n"
		"--quick` (about 10 s) the first time in each boot and cached in\n"
		"$XDG_RUNTIME_DIR/rtvio (else /tmp/rtvio-UID); when that cannot run, the\n"
		"costs in CONFIG's [platform], and the report says which. Progress goes\n"
		"to stderr.\n",
		DEFAULT_CONFIG);
}

/* Something listens on the Unix socket at path (a file left by a broker that died
 * refuses the connection). */
static bool listening(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0 || strlen(path) >= sizeof(a.sun_path)) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* The broker is ready when its control socket answers: it opens that one after every
 * cell's socket. */
static int wait_broker_ready(struct demo *d, int timeout_ms)
{
	char path[RTVIO_PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/control.sock", d->cfg.broker.socket_dir);
	for (int waited = 0; waited < timeout_ms; waited += 50) {
		if (proc_wait(&d->broker, 0))
			return -ECHILD;
		if (listening(path))
			return 0;
		usleep(50000);
	}
	return -ETIMEDOUT;
}

static int start_all(struct demo *d)
{
	const char *self = proc_self_exe();
	char dur[32];
	int err;

	const char *bargv[] = { self, "broker", d->conf, NULL };
	err = proc_start(&d->broker, bargv, PROC_TO_STDERR);
	if (err) {
		fprintf(stderr, "rtvio demo: cannot start the broker: %s\n", strerror(-err));
		return err;
	}
	err = wait_broker_ready(d, 10000);
	if (err) {
		fprintf(stderr, "rtvio demo: the broker %s\n",
			err == -ECHILD ? "exited during start-up (see its message above)"
				       : "did not create its sockets within 10 s");
		return err;
	}
	fprintf(stderr, "rtvio demo: broker started (policy %s, sockets in %s)\n",
		rtvio_policy_name(d->cfg.broker.policy), d->cfg.broker.socket_dir);
	snprintf(dur, sizeof(dur), "%.3f", d->duration);
	for (int i = 0; i < d->cfg.ncells; i++) {
		const char *cargv[] = { self, "cell", d->conf, d->cfg.cells[i].name,
				  "--duration", dur, "--json", NULL };

		err = proc_start(&d->cells[i], cargv, PROC_CAPTURE);
		if (err) {
			fprintf(stderr, "rtvio demo: cannot start cell %s: %s\n",
				d->cfg.cells[i].name, strerror(-err));
			return err;
		}
	}
	fprintf(stderr, "rtvio demo: %d cell%s started, running for %g s\n", d->cfg.ncells,
		d->cfg.ncells == 1 ? "" : "s", d->duration);
	return 0;
}

/* Progress while the cells run: a line rewritten in place on a terminal, else a
 * line now and then (every second of a short run, every 10 s of a long one). */
static void progress(const struct demo *d, double el, int running, int *last)
{
	double left = d->duration - el;
	int step = d->duration <= 20 ? 1 : 10, mark;

	if (isatty(STDERR_FILENO)) {
		fprintf(stderr, "\rrtvio demo: %s, %.0f/%.0f s, %d cell%s running ",
			rtvio_policy_name(d->cfg.broker.policy), el < d->duration ? el : d->duration,
			d->duration, running, running == 1 ? "" : "s");
		return;
	}
	if (left <= 0)
		return;
	mark = (int)(left + 0.999) / step * step;
	if (mark > 0 && mark < *last) {
		fprintf(stderr, "rtvio demo: %d s left, %d cell%s running\n", mark, running,
			running == 1 ? "" : "s");
		*last = mark;
	}
}

/* Waits out the run with a progress line, then for the cells to report. */
static void run(struct demo *d)
{
	struct timespec t0, t;
	bool tty = isatty(STDERR_FILENO);
	int grace_ms = 20000, last = (int)(d->duration + 0.999);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		double el;
		int running = 0;

		for (int i = 0; i < d->cfg.ncells; i++)
			running += !proc_wait(&d->cells[i], 0);
		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
		progress(d, el, running, &last);
		if (!running)
			break;
		if (rtvio_stop_requested) {
			for (int i = 0; i < d->cfg.ncells; i++)
				if (!d->cells[i].reaped)
					kill(d->cells[i].pid, SIGTERM);
			rtvio_stop_requested = 0;
		}
		if (el > d->duration + grace_ms / 1000.0) {
			fprintf(stderr, "\nrtvio demo: cells still running %d s after the end; "
					"stopping them\n", grace_ms / 1000);
			for (int i = 0; i < d->cfg.ncells; i++)
				proc_stop(&d->cells[i], SIGTERM, 2000);
			break;
		}
		/* Drain the cells' reports as they come; a full pipe would stall them. */
		for (int i = 0; i < d->cfg.ncells; i++)
			proc_drain(&d->cells[i], 0);
		usleep(100000);
	}
	if (tty)
		fprintf(stderr, "\n");
	fprintf(stderr, "rtvio demo: run over, stopping the cells and the broker\n");
}

/* Bounds from `rtvio analyze CONFIG --json`: flow name -> latency_bound_us. */
static void load_bounds(struct demo *d)
{
	const char *aargv[] = { proc_self_exe(), "analyze", d->conf, "--json",
				d->plat.file[0] ? "--platform" : NULL, d->plat.file, NULL };
	struct proc a;
	json_t *doc, *flows, *f;
	size_t i;

	d->bounds = json_object();
	d->verdict = json_pack("{s:s, s:s, s:n, s:b}", "status", "failed",
			       "why", "rtvio analyze gave no answer", "utilization",
			       "schedulable", 0);
	if (proc_start(&a, aargv, PROC_CAPTURE))
		return;
	proc_wait(&a, 30000);
	proc_stop(&a, SIGKILL, 1000);
	doc = a.out ? json_loads(a.out, 0, NULL) : NULL;
	if (json_is_string(json_object_get(doc, "status"))) {
		json_decref(d->verdict);
		d->verdict = json_pack("{s:O, s:O?, s:O?, s:O?}",
				       "status", json_object_get(doc, "status"),
				       "why", json_object_get(doc, "why"),
				       "utilization", json_object_get(doc, "utilization"),
				       "schedulable", json_object_get(doc, "schedulable"));
	}
	flows = json_object_get(doc, "flows");
	json_array_foreach(flows, i, f) {
		const char *name = json_string_value(json_object_get(f, "name"));
		json_t *b = json_object_get(f, "latency_bound_us");

		if (name && json_is_number(b))
			json_object_set(d->bounds, name, b);
	}
	json_decref(doc);
	proc_free(&a);
}

/* On stderr, as the run's progress: the analysis did not find the whole set
 * schedulable, and why. Under fp a flow whose own priority level fits keeps its
 * bound in an overloaded set (docs/analysis.md): those are named. */
static void say_no_bounds(const struct demo *d)
{
	const char *st = json_string_value(json_object_get(d->verdict, "status"));
	const char *why = json_string_value(json_object_get(d->verdict, "why"));
	const char *name;
	json_t *b;
	bool some = false;

	if (!st || !strcmp(st, "ok"))
		return;
	fprintf(stderr, "rtvio demo: %s: the analysis finds %s%s%s%s with the platform "
		"costs of %s", json_object_size(d->bounds) ? "bounds for some flows only" :
		"no bounds", st, why ? " (" : "", why ? why : "", why ? ")" : "",
		d->plat.source);
	json_object_foreach(d->bounds, name, b) {
		fprintf(stderr, "%s%s", some ? ", " : "; bounded: ", name);
		some = true;
	}
	fputc('\n', stderr);
}

/* The receiving cell's entry for flow `name`, or NULL. */
static json_t *recv_entry(json_t *cellrep, const char *name)
{
	json_t *flows = json_object_get(cellrep, "flows"), *f;
	size_t i;

	json_array_foreach(flows, i, f) {
		const char *n = json_string_value(json_object_get(f, "name"));
		const char *role = json_string_value(json_object_get(f, "role"));

		if (n && role && !strcmp(n, name) && !strcmp(role, "recv"))
			return f;
	}
	return NULL;
}

static json_t *num_or_null(json_t *v)
{
	return json_is_number(v) ? json_copy(v) : json_null();
}

/* One JSON document, the form `--json` prints and the table is drawn from. */
static json_t *build_report(struct demo *d, int *failures)
{
	json_t *doc = json_object(), *flows = json_array();
	json_t **reps = calloc((size_t)d->cfg.ncells, sizeof(*reps));

	for (int i = 0; i < d->cfg.ncells; i++) {
		char st[64];

		reps[i] = d->cells[i].out ? json_loads(d->cells[i].out, 0, NULL) : NULL;
		if (!reps[i]) {
			fprintf(stderr, "rtvio demo: cell %s gave no report (%s)\n",
				d->cfg.cells[i].name, proc_status_str(&d->cells[i], st, sizeof(st)));
			(*failures)++;
		}
	}
	json_object_set_new(doc, "policy", json_string(rtvio_policy_name(d->cfg.broker.policy)));
	json_object_set_new(doc, "duration_s", json_real(d->duration));
	for (int i = 0; i < d->cfg.nflows; i++) {
		const struct rtvio_flow_cfg *fl = &d->cfg.flows[i];
		json_t *r = reps[fl->to] ? recv_entry(reps[fl->to], fl->name) : NULL;
		json_t *row = json_object(), *lat = json_object();
		static const char *const q[] = { "min", "p50", "p99", "p999", "max" };
		json_t *rl = json_object_get(r, "latency_us");

		if (fl->traffic.pattern == RTVIO_PATTERN_OFF)
			continue;
		json_object_set_new(row, "name", json_string(fl->name));
		json_object_set_new(row, "class", json_string(fl->best_effort ? "best-effort"
									   : "real-time"));
		json_object_set_new(row, "messages", num_or_null(json_object_get(r, "messages")));
		json_object_set_new(row, "lost", num_or_null(json_object_get(r, "lost")));
		json_object_set_new(row, "corrupt", num_or_null(json_object_get(r, "corrupt")));
		for (size_t k = 0; k < sizeof(q) / sizeof(q[0]); k++)
			json_object_set_new(lat, q[k], num_or_null(json_object_get(rl, q[k])));
		json_object_set_new(row, "latency_us", lat);
		json_object_set_new(row, "deadline_us",
				    fl->best_effort ? json_null()
						    : json_real((double)fl->deadline_ns / 1e3));
		json_object_set_new(row, "deadline_misses",
				    num_or_null(json_object_get(r, "deadline_misses")));
		json_object_set_new(row, "bound_us",
				    num_or_null(json_object_get(d->bounds, fl->name)));
		json_array_append_new(flows, row);
		if (!r) {
			fprintf(stderr, "rtvio demo: no receiver report for flow %s\n", fl->name);
			(*failures)++;
		}
	}
	json_object_set_new(doc, "flows", flows);
	/* What the bounds rest on: with no bound, the analysis's reason stands here. */
	json_object_set(doc, "analysis", d->verdict);
	for (int i = 0; i < d->cfg.ncells; i++)
		json_decref(reps[i]);
	free(reps);
	return doc;
}

static void cell_num(const json_t *v, int width, int prec)
{
	if (json_is_number(v))
		printf(" %*.*f", width, prec, json_number_value(v));
	else
		printf(" %*s", width, "-");
}

/* Some flow's largest latency is above its bound. */
static bool max_above_bound(json_t *flows)
{
	json_t *f;
	size_t i;

	json_array_foreach(flows, i, f) {
		json_t *max = json_object_get(json_object_get(f, "latency_us"), "max");
		json_t *bound = json_object_get(f, "bound_us");

		if (json_is_number(max) && json_is_number(bound) &&
		    json_number_value(max) > json_number_value(bound))
			return true;
	}
	return false;
}

/* When the analysis did not find the set schedulable: why, in one line (under fp
 * the flows whose own level fits keep their bounds, in the table). */
static void verdict_line(json_t *v, bool some_bounds)
{
	const char *status = json_string_value(json_object_get(v, "status"));
	const char *why = json_string_value(json_object_get(v, "why"));
	json_t *u = json_object_get(v, "utilization");

	if (!status || !strcmp(status, "ok"))
		return;
	printf("%s: the analysis finds %s%s%s%s with these costs",
	       some_bounds ? "BOUNDS FOR SOME FLOWS ONLY" : "NO BOUNDS", status,
	       why ? " (" : "", why ? why : "", why ? ")" : "");
	if (json_is_number(u))
		printf(", utilization %.3f", json_number_value(u));
	printf("\n");
}

static void print_table(const struct demo *d, json_t *doc)
{
	json_t *flows = json_object_get(doc, "flows"), *f;
	size_t i;

	printf("policy %s, %g s; latency is one-way, cell to cell, in microseconds\n",
	       json_string_value(json_object_get(doc, "policy")),
	       json_number_value(json_object_get(doc, "duration_s")));
	printf("bounds: `rtvio analyze` with the platform costs of %s\n", d->plat.source);
	verdict_line(json_object_get(doc, "analysis"), json_object_size(d->bounds) > 0);
	printf("\n");
	printf("%-12s %-11s %9s %6s %7s %8s %8s %8s %8s %8s %9s %6s %8s\n", "flow", "class",
	       "messages", "lost", "corrupt", "min", "p50", "p99", "p99.9", "max", "deadline",
	       "misses", "bound");
	json_array_foreach(flows, i, f) {
		json_t *lat = json_object_get(f, "latency_us");

		printf("%-12s %-11s", json_string_value(json_object_get(f, "name")),
		       json_string_value(json_object_get(f, "class")));
		cell_num(json_object_get(f, "messages"), 9, 0);
		cell_num(json_object_get(f, "lost"), 6, 0);
		cell_num(json_object_get(f, "corrupt"), 7, 0);
		cell_num(json_object_get(lat, "min"), 8, 1);
		cell_num(json_object_get(lat, "p50"), 8, 1);
		cell_num(json_object_get(lat, "p99"), 8, 1);
		cell_num(json_object_get(lat, "p999"), 8, 1);
		cell_num(json_object_get(lat, "max"), 8, 1);
		cell_num(json_object_get(f, "deadline_us"), 9, 0);
		cell_num(json_object_get(f, "deadline_misses"), 6, 0);
		cell_num(json_object_get(f, "bound_us"), 8, 1);
		printf("\n");
	}
	if (max_above_bound(flows))
		printf("\nmax above bound on this machine usually means the host preempted the VM\n"
		       "(see `rtvio bench bound`, which tells host stalls apart from misses).\n");
}

static int parse_args(struct demo *d, int argc, char **argv, const char **path,
		      const char **policy)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "policy", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	d->duration = 10;
	while ((c = getopt_long(argc, argv, "d:p:jh", opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'd':
			d->duration = strtod(optarg, &end);
			if (*end || !(d->duration > 0) || d->duration > 86400) {
				fprintf(stderr, "rtvio demo: --duration '%s': expected seconds "
						"in (0, 86400]\n", optarg);
				return 2;
			}
			break;
		case 'p':
			*policy = optarg;
			break;
		case 'j':
			d->json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		*path = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "rtvio demo: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return -1;
}

/* Loads the config, applies --policy, refuses what a process demo cannot run, and
 * writes the derived file everything else reads. */
static int prepare(struct demo *d, const char *path, const char *policy)
{
	char err[512];
	FILE *f;
	int fd;

	if (rtvio_config_load(path, &d->cfg, err, sizeof(err))) {
		fprintf(stderr, "rtvio demo: %s\n", err);
		return 2;
	}
	if (policy && rtvio_policy_parse(policy, &d->cfg.broker.policy)) {
		fprintf(stderr, "rtvio demo: --policy '%s': expected fp, edf or fifo\n", policy);
		return 2;
	}
	for (int i = 0; i < d->cfg.ncells; i++)
		if (d->cfg.cells[i].vm) {
			fprintf(stderr, "rtvio demo: %s:%d: cell %s is a VM (vm = yes); "
					"the process demo runs process cells only (see make vmdemo)\n",
				path, d->cfg.cells[i].line, d->cfg.cells[i].name);
			return 2;
		}
	snprintf(d->conf, sizeof(d->conf), "/tmp/rtvio-demo-XXXXXX.conf");
	fd = mkstemps(d->conf, 5);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f || rtvio_config_dump(&d->cfg, f) || fclose(f)) {
		fprintf(stderr, "rtvio demo: cannot write %s: %s\n", d->conf, strerror(errno));
		if (fd >= 0) {
			if (!f)
				close(fd);
			unlink(d->conf);
		}
		return 2;
	}
	return 0;
}

/* The default config is found from the working directory, else in the source tree
 * the binary was built from. */
static const char *default_config(void)
{
	if (access(DEFAULT_CONFIG, R_OK) == 0)
		return DEFAULT_CONFIG;
	return RTVIO_SOURCE_DIR "/" DEFAULT_CONFIG;
}

int cmd_demo(int argc, char **argv)
{
	struct demo d = { 0 };
	const char *path = default_config(), *policy = NULL;
	int rc = parse_args(&d, argc, argv, &path, &policy), failures = 0;
	json_t *doc;

	if (rc >= 0)
		return rc;
	rc = prepare(&d, path, policy);
	if (rc)
		goto out;
	fprintf(stderr, "rtvio demo: %s, policy %s, %d cells, %d flows, %g s\n", path,
		rtvio_policy_name(d.cfg.broker.policy), d.cfg.ncells, d.cfg.nflows, d.duration);
	/* Measured before anything starts, so the demo's own load is not measured. */
	demo_platform(&d.cfg, path, &d.plat);
	d.cells = calloc((size_t)d.cfg.ncells, sizeof(*d.cells));
	rtvio_stop_on_signals();
	if (!d.cells || start_all(&d)) {
		rc = 1;
		goto stop;
	}
	run(&d);
stop:
	for (int i = 0; d.cells && i < d.cfg.ncells; i++)
		proc_stop(&d.cells[i], SIGTERM, 3000);
	proc_stop(&d.broker, SIGTERM, 5000);
	if (rc)
		goto out;
	fprintf(stderr, "rtvio demo: computing the bounds with rtvio analyze\n");
	load_bounds(&d);
	say_no_bounds(&d);
	doc = build_report(&d, &failures);
	if (d.json) {
		/* Six significant digits: latencies are not known better than that. */
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		printf("\n");
	} else {
		print_table(&d, doc);
	}
	json_decref(doc);
	rc = failures ? 1 : 0;
out:
	for (int i = 0; d.cells && i < d.cfg.ncells; i++)
		proc_free(&d.cells[i]);
	free(d.cells);
	proc_free(&d.broker);
	json_decref(d.bounds);
	json_decref(d.verdict);
	if (d.conf[0])
		unlink(d.conf);
	rtvio_config_free(&d.cfg);
	return rc;
}
