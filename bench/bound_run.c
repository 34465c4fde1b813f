/* `rtvio bench`: one run of a configuration with a broker and every cell, each
 * flow's observed latency and broker residence judged against `rtvio analyze`'s
 * bounds, and every violation attributed to host stalls or to rtvio. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "runner.h"

static json_t *cell_flow(json_t *rep, const char *name, const char *role)
{
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(rep, "flows"), i, f)
		if (!strcmp(json_string_value(json_object_get(f, "name")) ?: "", name) &&
		    !strcmp(json_string_value(json_object_get(f, "role")) ?: "", role))
			return f;
	return NULL;
}

/* Why a window [t0, t0 + len) lasted `excess` µs longer than it may: "host" when the
 * probes saw the VM stalled for at least that long in it, "foreign" when those stalls
 * and the cpu time other programs' real-time threads had in it (foreign_rt.c) add up
 * to it, else "unexplained" (rtvio, or platform numbers that are too optimistic). The
 * sampler knows that cpu time to one interval (and the kernel's count of it to a
 * tick): the window is taken one interval wider on each side for it. */
static const char *window_cause(struct probes *p, const struct foreign_rt *fr, uint64_t t0,
				uint64_t len, double excess)
{
	double stalled = bench_stalled_in(p, t0, t0 + len);
	uint64_t a = t0 > FRT_INTERVAL_NS ? t0 - FRT_INTERVAL_NS : 0;

	if (stalled >= excess)
		return "host";
	return stalled + bench_foreign_in(fr, a, t0 + len + FRT_INTERVAL_NS) >= excess
		       ? "foreign" : "unexplained";
}

/* Attributes each of the receiver's slowest messages that exceeded the bound
 * (window_cause). Returns the cause of the flow's violations: "host" when every
 * message is the host's, "foreign" when every one is the host's or other programs'
 * real-time threads', else "unexplained". */
static const char *attribute(struct probes *p, const struct foreign_rt *fr, json_t *worst,
			     double bound, json_t *row)
{
	long long over = 0, host = 0, foreign = 0;
	json_t *w;
	size_t i;

	json_array_foreach(worst, i, w) {
		double lat = json_number_value(json_object_get(w, "latency_us"));
		uint64_t t0 = (uint64_t)json_integer_value(json_object_get(w, "stamp_ns"));
		const char *why;

		if (lat <= bound || !t0)
			continue;
		over++;
		why = window_cause(p, fr, t0, (uint64_t)(lat * 1e3), lat - bound);
		host += !strcmp(why, "host");
		foreign += !strcmp(why, "foreign");
	}
	json_object_set_new(row, "over_bound_listed", json_integer(over));
	json_object_set_new(row, "over_bound_host", json_integer(host));
	json_object_set_new(row, "over_bound_foreign", json_integer(foreign));
	/* The receiver lists its slowest messages only: when every one of them is over
	 * the bound, more may be. */
	json_object_set_new(row, "over_bound_more", json_boolean(
		over && (size_t)over == json_array_size(worst)));
	if (over && host == over)
		return "host";
	return over && host + foreign == over ? "foreign" : "unexplained";
}

/* What one run holds while it runs. */
struct brun {
	const char *label, *conf;
	double dur;
	struct rtvio_config cfg;
	struct broker br;
	struct proc *cells;
	json_t **reps;		/* each cell's `rtvio cell --json` report, or NULL */
	json_t *an, *st;	/* `rtvio analyze` and the final `rtvio stat` documents */
	struct probes pr;
	struct foreign_rt fr;	/* other programs' real-time threads */
	struct bench_extra *extra;	/* a process started next to the cells, or NULL */
	bool *skip;		/* cells the extra process stands for */
	struct proc xp;
	uint64_t t0, t1;
	double longest, busy0;	/* longest stall seen (µs, -1: no probe); cpu 0 busy % */
};

/* What the analysis says of the run as a whole. */
static void brun_analysis(struct brun *r, json_t *run)
{
	double cap;

	r->an = bench_analyze(r->conf);
	json_object_set(run, "utilization", json_object_get(r->an, "utilization") ?: json_null());
	json_object_set(run, "capacity", json_object_get(r->an, "capacity") ?: json_null());
	cap = json_number_value(json_object_get(r->an, "capacity"));
	if (cap > 0)
		json_object_set_new(run, "load", json_real(
			json_number_value(json_object_get(r->an, "utilization")) / cap));
	json_object_set(run, "schedulable", json_object_get(r->an, "schedulable") ?: json_null());
	json_object_set_new(run, "policy", json_string(rtvio_policy_name(r->cfg.broker.policy)));
	json_object_set_new(run, "regulation_budget", json_integer(
		(json_int_t)r->cfg.broker.regulation_budget));
}

/* Drains the cells' output for up to ms milliseconds or until every one has ended. */
static void brun_wait_cells(struct brun *r, int ms, int step_ms, bool stop_on_signal)
{
	for (int waited = 0; waited < ms && !(stop_on_signal && rtvio_stop_requested);
	     waited += step_ms) {
		int running = 0;

		for (int i = 0; i < r->cfg.ncells; i++) {
			if (r->skip[i])
				continue;
			proc_drain(&r->cells[i], 0);
			running += !proc_wait(&r->cells[i], 0);
		}
		if (!running)
			break;
		usleep((useconds_t)step_ms * 1000);
	}
}

/* The extra process, when there is one, starts first: the cells run next to what it
 * does from their first message on. */
static void brun_extra_start(struct brun *r)
{
	bench_proc_blank(&r->xp);
	if (!r->extra || !r->extra->argv)
		return;
	if (proc_start(&r->xp, r->extra->argv, 1) == 0)
		usleep(r->extra->lead_ms * 1000u);
}

/* Stops the extra process (SIGTERM) and keeps the last line it printed. */
static void brun_extra_stop(struct brun *r)
{
	char *nl;

	if (!r->extra || !r->extra->argv)
		return;
	proc_stop(&r->xp, SIGTERM, 5000);
	if (r->xp.out) {
		while ((nl = strrchr(r->xp.out, '\n')) && !nl[1])
			*nl = 0;
		nl = strrchr(r->xp.out, '\n');
		snprintf(r->extra->said, sizeof(r->extra->said), "%s", nl ? nl + 1 : r->xp.out);
	}
	proc_free(&r->xp);
}

/* One `rtvio cell` per cell (but those the extra process stands for) for r->dur
 * seconds; their reports into r->reps. */
static void brun_cells(struct brun *r)
{
	char sdur[32];
	int grace = 20000;

	snprintf(sdur, sizeof(sdur), "%.3f", r->dur);
	brun_extra_start(r);
	for (int i = 0; i < r->cfg.ncells; i++) {
		if (r->skip[i]) {
			bench_proc_blank(&r->cells[i]);
			continue;
		}
		const char *argv[] = { proc_self_exe(), "cell", r->conf, r->cfg.cells[i].name,
				       "--duration", sdur, "--json", NULL };

		bench_proc_blank(&r->cells[i]);
		proc_start(&r->cells[i], argv, 1);
	}
	brun_wait_cells(r, (int)(r->dur * 1000) + grace, 100, true);
	/* Signal every cell first, then collect: one by one, 64 slow cells would take
	 * minutes. */
	for (int i = 0; i < r->cfg.ncells; i++)
		if (!r->skip[i] && !r->cells[i].reaped && r->cells[i].pid > 0)
			kill(r->cells[i].pid, SIGTERM);
	brun_wait_cells(r, 5000, 50, false);
	brun_extra_stop(r);
	for (int i = 0; i < r->cfg.ncells; i++) {
		if (r->skip[i])
			continue;
		proc_stop(&r->cells[i], SIGKILL, 1000);
		r->reps[i] = r->cells[i].out ? json_loads(r->cells[i].out, JSON_DISABLE_EOF_CHECK,
							  NULL) : NULL;
	}
}

/* The analysis' end-to-end bound and broker response time of a flow (µs, -1: none). */
static void brun_bounds(const struct brun *r, const char *name, double *bound, double *resp)
{
	json_t *af;
	size_t k;

	*bound = *resp = -1;
	json_array_foreach(json_object_get(r->an, "flows"), k, af) {
		if (strcmp(json_string_value(json_object_get(af, "name")) ?: "", name))
			continue;
		if (json_is_number(json_object_get(af, "latency_bound_us")))
			*bound = json_number_value(json_object_get(af, "latency_bound_us"));
		if (json_is_number(json_object_get(af, "response_us")))
			*resp = json_number_value(json_object_get(af, "response_us"));
	}
}

/* What the receiving and sending cells and the broker saw of a flow. */
static void brun_observed(const struct rtvio_flow_cfg *fl, json_t *rx, json_t *tx, json_t *sf,
			  json_t *row)
{
	json_t *lat = json_object_get(rx, "latency_us");

	json_object_set_new(row, "flow", json_string(fl->name));
	json_object_set_new(row, "size", json_integer((json_int_t)fl->size));
	json_object_set_new(row, "period_us", json_real((double)fl->period_ns / 1e3));
	json_object_set(row, "messages", json_object_get(rx, "messages") ?: json_null());
	json_object_set(row, "lost", json_object_get(rx, "lost") ?: json_null());
	json_object_set(row, "corrupt", json_object_get(rx, "corrupt") ?: json_null());
	json_object_set(row, "p50_us", json_object_get(lat, "p50") ?: json_null());
	json_object_set(row, "p99_us", json_object_get(lat, "p99") ?: json_null());
	json_object_set(row, "max_us", json_object_get(lat, "max") ?: json_null());
	json_object_set(row, "late_releases", json_object_get(tx, "late_releases") ?: json_null());
	json_object_set(row, "lost_periods", json_object_get(tx, "lost_periods") ?: json_null());
	json_object_set(row, "policed", json_object_get(sf, "policed") ?: json_null());
}

/* The broker's longest residence against R: the broker says when its slowest packet
 * arrived, so the probes can tell whether the VM was stalled for the excess then. */
static void brun_residence(struct brun *r, json_t *sf, double resp, json_t *row)
{
	double res = -1;

	if (json_is_integer(json_object_get(sf, "max_residence_ns")))
		res = (double)json_integer_value(json_object_get(sf, "max_residence_ns")) / 1e3;
	json_object_set_new(row, "residence_max_us", res >= 0 ? json_real(res) : json_null());
	if (resp > 0 && res >= 0) {
		json_object_set_new(row, "residence_ratio", json_real(res / resp));
		json_object_set_new(row, "residence_violation", json_boolean(res > resp));
	}
	if (resp > 0 && res > resp) {
		uint64_t at = (uint64_t)json_integer_value(json_object_get(sf, "max_residence_at_ns"));

		json_object_set_new(row, "residence_cause", json_string(
			at ? window_cause(&r->pr, &r->fr, at, (uint64_t)(res * 1e3), res - resp)
			   : "unexplained"));
	}
}

/* The receiver's worst latency against the end-to-end bound; a violation is
 * explained and added to violations. */
static void brun_latency(struct brun *r, json_t *rx, double bound, json_t *row,
			 json_t *violations)
{
	json_t *lat = json_object_get(rx, "latency_us"), *v;
	double mx = json_is_number(json_object_get(lat, "max"))
			    ? json_number_value(json_object_get(lat, "max")) : -1;
	const char *why;
	char expl[480];

	if (bound > 0 && mx >= 0) {
		json_object_set_new(row, "ratio", json_real(mx / bound));
		json_object_set_new(row, "violation", json_boolean(mx > bound));
	}
	if (!(bound > 0 && mx > bound))
		return;
	why = attribute(&r->pr, &r->fr, json_object_get(rx, "slowest"), bound, row);
	snprintf(expl, sizeof(expl),
		 "%s: excess %.0f µs; of the receiver's slowest messages %lld were over "
		 "the bound%s, %lld of them while the probes saw the VM stalled for longer "
		 "than the excess, %lld more while other programs' real-time threads ran for "
		 "the rest (longest stall in the run %.0f µs; cpu 0 %.0f %% busy)", why,
		 mx - bound,
		 json_integer_value(json_object_get(row, "over_bound_listed")),
		 json_is_true(json_object_get(row, "over_bound_more")) ? " (or more)" : "",
		 json_integer_value(json_object_get(row, "over_bound_host")),
		 json_integer_value(json_object_get(row, "over_bound_foreign")),
		 r->longest < 0 ? 0 : r->longest, r->busy0);
	json_object_set_new(row, "explanation", json_string(expl));
	json_object_set_new(row, "cause", json_string(why));
	v = json_deep_copy(row);
	json_object_set_new(v, "run", json_string(r->label));
	json_array_append_new(violations, v);
}

/* One row per measured real-time flow; returns the messages received in all. */
static long long brun_rows(struct brun *r, json_t *flows, json_t *violations)
{
	long long total = 0;

	for (int i = 0; i < r->cfg.nflows; i++) {
		const struct rtvio_flow_cfg *fl = &r->cfg.flows[i];
		json_t *rx = r->reps[fl->to] ? cell_flow(r->reps[fl->to], fl->name, "recv") : NULL;
		json_t *tx = r->reps[fl->from] ? cell_flow(r->reps[fl->from], fl->name, "send")
					       : NULL;
		json_t *sf = bench_stat_flow(r->st, fl->name), *row;
		double bound, resp;

		if (fl->best_effort || fl->traffic.pattern == RTVIO_PATTERN_OFF ||
		    r->skip[fl->from] || r->skip[fl->to])
			continue;
		row = json_object();
		brun_bounds(r, fl->name, &bound, &resp);
		brun_observed(fl, rx, tx, sf, row);
		total += json_integer_value(json_object_get(rx, "messages"));
		json_object_set_new(row, "bound_us", bound >= 0 ? json_real(bound) : json_null());
		json_object_set_new(row, "response_us", resp >= 0 ? json_real(resp) : json_null());
		brun_residence(r, sf, resp, row);
		brun_latency(r, rx, bound, row, violations);
		if (!rx)
			json_object_set_new(row, "status", json_string("no receiver report"));
		json_array_append_new(flows, row);
	}
	return total;
}

/* The best-effort flows' bytes through the broker over the run, and their rate. */
static void brun_best_effort(struct brun *r, json_t *run)
{
	long long bytes = 0;
	int n = 0;

	for (int i = 0; i < r->cfg.nflows; i++) {
		json_t *sf;

		if (!r->cfg.flows[i].best_effort)
			continue;
		sf = bench_stat_flow(r->st, r->cfg.flows[i].name);
		bytes += json_integer_value(json_object_get(sf, "bytes"));
		n++;
	}
	if (!n || r->t1 <= r->t0)
		return;
	json_object_set_new(run, "best_effort_bytes", json_integer(bytes));
	json_object_set_new(run, "best_effort_mb_s",
			    json_real((double)bytes / ((double)(r->t1 - r->t0) / 1e9) / 1e6));
}

/* The lowest real-time priority of the run's broker and cells: another program's
 * thread at that priority or above can hold a cpu they need. */
static int brun_min_prio(const struct brun *r)
{
	int p = r->cfg.broker.rt_priority > 0 ? r->cfg.broker.rt_priority : 99;

	for (int i = 0; i < r->cfg.ncells; i++)
		if (r->cfg.cells[i].rt_priority > 0 && r->cfg.cells[i].rt_priority < p)
			p = r->cfg.cells[i].rt_priority;
	return p;
}

/* The measured interval: probes, other programs' real-time threads and CPU counters
 * around the cells' run. */
static void brun_measure(struct brun *r, json_t *run, json_t *flows, json_t *stalls,
			 json_t *foreign, json_t *violations)
{
	struct cpu_ticks ta, tb;
	double cpu_b0, cpu_b1;
	long long total_msgs;

	cpu_b0 = bench_proc_cpu_s(r->br.p.pid);
	bench_probes_start(&r->pr);
	bench_foreign_start(&r->fr, brun_min_prio(r));
	bench_cpu_ticks_read(&ta);
	r->t0 = rtvio_now_ns();
	brun_cells(r);
	r->st = bench_stat_doc(r->br.sockdir);
	r->t1 = rtvio_now_ns();
	cpu_b1 = bench_proc_cpu_s(r->br.p.pid);
	bench_cpu_ticks_read(&tb);
	bench_probes_stop(&r->pr);
	bench_foreign_stop(&r->fr);
	r->longest = bench_probes_window(&r->pr, r->t0, r->t1, stalls);
	bench_foreign_json(&r->fr, foreign);
	bench_cpu_ticks_json(&ta, &tb, stalls, &r->busy0);
	json_object_set_new(run, "seconds", json_real((double)(r->t1 - r->t0) / 1e9));
	total_msgs = brun_rows(r, flows, violations);
	brun_best_effort(r, run);
	bench_probes_free(&r->pr);
	bench_foreign_free(&r->fr);
	json_object_set_new(run, "status", json_string("ok"));
	json_object_set_new(run, "messages", json_integer(total_msgs));
	if (cpu_b0 >= 0 && cpu_b1 >= cpu_b0) {
		json_object_set_new(run, "broker_cpu_pct", json_real(
			100 * (cpu_b1 - cpu_b0) / ((double)(r->t1 - r->t0) / 1e9)));
		if (total_msgs)
			json_object_set_new(run, "broker_us_per_msg",
					    json_real((cpu_b1 - cpu_b0) * 1e6 / (double)total_msgs));
	}
}

/* One run of config `conf` (already carrying the platform to judge it by): broker and
 * one `rtvio cell` per cell for dur seconds, probes watching; one row per flow. Each
 * flow is judged twice: the receiver's one-way latency against the end-to-end bound,
 * and the broker's own residence time (ingest to delivery, `rtvio stat`) against the
 * broker response time R that the bound is built on. */
json_t *bench_bound_run(const char *label, const char *conf, double dur, json_t *violations)
{
	return bench_bound_run_with(label, conf, dur, violations, NULL);
}

/* Marks the cells the extra process stands for. */
static void brun_skip(struct brun *r)
{
	for (int i = 0; r->extra && i < r->cfg.ncells; i++)
		for (const char *const *n = r->extra->cells; n && *n; n++)
			r->skip[i] |= !strcmp(*n, r->cfg.cells[i].name);
}

json_t *bench_bound_run_with(const char *label, const char *conf, double dur,
			     json_t *violations, struct bench_extra *extra)
{
	struct brun r = { .label = label, .conf = conf, .dur = dur, .extra = extra };
	json_t *run = json_object(), *flows = json_array(), *stalls = json_object();
	json_t *foreign = json_object();
	char err[512];

	json_object_set_new(run, "label", json_string(label));
	if (rtvio_config_load(conf, &r.cfg, err, sizeof(err))) {
		json_object_set_new(run, "status", json_string(err));
		json_decref(flows);
		json_decref(stalls);
		json_decref(foreign);
		return run;
	}
	brun_analysis(&r, run);
	snprintf(r.br.conf, sizeof(r.br.conf), "%s", conf);
	snprintf(r.br.sockdir, sizeof(r.br.sockdir), "%s", r.cfg.broker.socket_dir);
	r.cells = calloc((size_t)r.cfg.ncells, sizeof(*r.cells));
	r.reps = calloc((size_t)r.cfg.ncells, sizeof(*r.reps));
	r.skip = calloc((size_t)r.cfg.ncells, sizeof(*r.skip));
	if (r.skip)
		brun_skip(&r);
	if (!r.cells || !r.reps || !r.skip || bench_broker_launch(&r.br))
		json_object_set_new(run, "status", json_string("the broker did not start"));
	else
		brun_measure(&r, run, flows, stalls, foreign, violations);
	bench_broker_stop(&r.br);
	for (int i = 0; r.cells && r.reps && i < r.cfg.ncells; i++) {
		proc_free(&r.cells[i]);
		json_decref(r.reps[i]);
	}
	free(r.cells);
	free(r.reps);
	free(r.skip);
	json_decref(r.st);
	json_object_set_new(run, "flows", flows);
	json_object_set_new(run, "host", stalls);
	json_object_set_new(run, "foreign_rt", foreign);
	json_decref(r.an);
	rtvio_config_free(&r.cfg);
	return run;
}
