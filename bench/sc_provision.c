/* `rtvio bench provision`: what run-time changes cost (docs/bench.md, "provision").
 *   admit  time to admit one flow, request to reply on the control socket (the
 *          analysis of the whole configuration after the change in the broker's
 *          worker thread, then the apply step between two data-plane runs), against
 *          the number of flows already admitted: median and max of PROV_REPS adds of
 *          a probe flow (each removed again) at every point of prov_points;
 *   clone  request -> first message delivered, cold boot against instant clone, by
 *          scripts/vm/provision bench (QEMU, TCG): median and max over N each. No
 *          QEMU, no guest image or no template is a failure of the scenario;
 *   churn  the control flow's latency while a cell and flows are added and removed
 *          in a loop, against the same run without; the gap probes (stalls.c) say
 *          how long the host stopped this VM during each run. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "control.h"
#include "model.h"

#include "bench.h"
#include "runner.h"

#ifndef RTVIO_SOURCE_DIR
#define RTVIO_SOURCE_DIR "."
#endif
#define PROV_REPS 5
#define PROV_TIMEOUT_MS 60000
#define PROV_CLONE_TIMEOUT_MS (20 * 60 * 1000)
#define PROV_CTL_PORT 1000
#define PROV_FLOW_PORT 5000
enum { PROV_SENSOR_CID = 3, PROV_CONTROLLER_CID, PROV_CHURN_CID = 40 };

static const int prov_points[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256 };
#define PROV_NPOINTS ((int)(sizeof(prov_points) / sizeof(prov_points[0])))

/* ---- the broker and its control socket ------------------------------------------- */

/* The broker of every part: the control flow's two cells, room for `flows` more flows
 * and two more cells, and the platform the analysis judges by. */
static int prov_broker(struct bench *b, struct broker *br, const char *name, int flows,
		       const struct rtvio_platform_cfg *plat)
{
	FILE *f;

	snprintf(br->sockdir, sizeof(br->sockdir), "%s/prov-%s", b->tmp, name);
	snprintf(br->conf, sizeof(br->conf), "%s/prov-%s.conf", b->tmp, name);
	bench_proc_blank(&br->p);
	f = fopen(br->conf, "w");
	if (!f)
		return -errno;
	fprintf(f, "[broker]\npolicy = fp\nchunk = 4KiB\nsocket_dir = %s\ncpu = %d\n"
		   "rt_priority = %d\npoll = no\ndefault = deny\nmax_cells = 4\nmax_flows = %d\n"
		   "budget_period = 10ms\n\n"
		   "[cell sensor]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		   "[cell controller]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		   "[flow control]\nfrom = sensor\nto = controller:%d\ntype = stream\nsize = 64\n"
		   "period = 1ms\ndeadline = 20ms\npriority = 1\n\n[workload wc]\nflow = control\npattern = off\n\n",
		br->sockdir, BROKER_CPU, BROKER_SLEEP_PRIO, flows + 3, PROV_SENSOR_CID, CELL_CPU,
		PROV_CONTROLLER_CID, CELL_CPU, PROV_CTL_PORT);
	if (rtvio_platform_write(f, plat) < 0) {
		fclose(f);
		return -EIO;
	}
	if (fclose(f))
		return -EIO;
	return bench_broker_launch(br);
}

/* The apply step the analysis charges for conf's capacity (µs), -1 without
 * change_step in its platform. */
static double prov_apply_us(const char *conf)
{
	struct rtvio_config cfg;
	char err[256];
	double us = -1;

	if (rtvio_config_load(conf, &cfg, err, sizeof(err)) == 0 &&
	    (cfg.platform.present & RTVIO_PLAT_CHANGE_STEP))
		us = (double)model_change_slots(&cfg) * (double)cfg.platform.change_step / 1e3;
	rtvio_config_free(&cfg);
	return us;
}

/* One change request, repeated while the broker answers "busy" (a change in
 * analysis, or one applied less than ADMIT_SPACING_NS ago); 1 admitted (or removed),
 * 0 refused or failed. *ns: the round trip of the request that was answered; why
 * (why_len bytes, may be NULL): the broker's reasons for a refusal. */
static int prov_change(const char *sockdir, json_t *req, uint64_t *ns, char *why,
		       size_t why_len)
{
	char path[256], *line = json_dumps(req, JSON_COMPACT), *reply = NULL;
	char *nl = line ? malloc(strlen(line) + 2) : NULL;
	uint64_t until = rtvio_now_ns() + 30000000000ull;
	json_t *doc = NULL;
	int ok = 0;

	json_decref(req);
	if (!nl) {
		free(line);
		return 0;
	}
	sprintf(nl, "%s\n", line);
	free(line);
	snprintf(path, sizeof(path), "%s/%s", sockdir, CTL_SOCKET_NAME);
	for (;;) {
		uint64_t t0 = rtvio_now_ns();
		int rc = ctl_request(path, nl, &reply, PROV_TIMEOUT_MS);

		if (ns)
			*ns = rtvio_now_ns() - t0;
		if (rc < 0)
			break;
		doc = json_loads(reply, 0, NULL);
		free(reply);
		if (!json_is_true(json_object_get(doc, "busy")) || rtvio_now_ns() > until ||
		    rtvio_stop_requested)
			break;
		json_decref(doc);
		doc = NULL;
		nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
	}
	ok = json_is_true(json_object_get(doc, "ok")) &&
	     json_is_true(json_object_get(doc, "admitted"));
	if (!ok && why)
		snprintf(why, why_len, "%s",
			 json_string_value(json_object_get(doc, "reasons"))
				 ?: json_string_value(json_object_get(doc, "error"))
				 ?: "no answer from the broker's control socket");
	json_decref(doc);
	free(nl);
	return ok;
}

static json_t *prov_add(const char *frag)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "cmd", "change", "op", "add", "fragment", frag,
			 "name", "bench");
}

static json_t *prov_remove(const char *kind, const char *name)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "cmd", "change", "op", "remove", "kind", kind,
			 "name", name);
}

/* A light flow sensor -> controller on its own port: 64 B every 100 ms. */
static void prov_flow_frag(char *buf, size_t len, const char *name, int port)
{
	snprintf(buf, len, "[flow %s]\nfrom = sensor\nto = controller:%d\ntype = seqpacket\n"
			   "size = 64\nperiod = 100ms\n", name, port);
}

/* ---- admit: time against the number of flows admitted ----------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* PROV_REPS adds (and removes) of a probe flow; one row of the table, or NULL
 * with the reason noted in the report. */
static json_t *prov_admit_point(struct bench *b, const char *sockdir, int admitted)
{
	uint64_t t[PROV_REPS];
	char frag[256], why[512];

	prov_flow_frag(frag, sizeof(frag), "probe", PROV_FLOW_PORT - 1);
	for (int r = 0; r < PROV_REPS; r++)
		if (!prov_change(sockdir, prov_add(frag), &t[r], why, sizeof(why)) ||
		    !prov_change(sockdir, prov_remove("flow", "probe"), NULL, why,
				     sizeof(why))) {
			bench_note(b, "provision: with %d flows admitted, the probe flow's change "
				      "failed: %s", admitted, why);
			return NULL;
		}
	qsort(t, PROV_REPS, sizeof(t[0]), cmp_u64);
	return json_pack("{s:i, s:i, s:f, s:f, s:f}", "flows_admitted", admitted, "n", PROV_REPS,
			 "median_ms", (double)t[PROV_REPS / 2] / 1e6, "min_ms", (double)t[0] / 1e6,
			 "max_ms", (double)t[PROV_REPS - 1] / 1e6);
}

/* Fills the broker with flows f1..fN, measuring at each point of prov_points up to
 * `top`. */
static int prov_admit(struct bench *b, const struct rtvio_platform_cfg *plat, json_t *sc)
{
	int top = b->quick ? 64 : prov_points[PROV_NPOINTS - 1], have = 0, rc = 0;
	json_t *rows = json_array();
	struct broker br = { 0 };
	char frag[256], name[32], why[512];

	b->step++;
	bench_progress(b, "provision: admission time, up to %d flows", top);
	if (prov_broker(b, &br, "admit", top + 1, plat)) {
		bench_note(b, "provision: the admission broker did not start");
		rc = -EIO;
	}
	for (int p = 0; !rc && p < PROV_NPOINTS && prov_points[p] <= top; p++) {
		json_t *row;

		/* The control flow counts: `have` admitted flows besides it. */
		for (; have < prov_points[p] - 1 && !rtvio_stop_requested; have++) {
			snprintf(name, sizeof(name), "f%d", have + 1);
			prov_flow_frag(frag, sizeof(frag), name, PROV_FLOW_PORT + have);
			if (!prov_change(br.sockdir, prov_add(frag), NULL, why, sizeof(why))) {
				bench_note(b, "provision: flow %s was not admitted: %s", name, why);
				rc = -EIO;
				break;
			}
		}
		row = rc || rtvio_stop_requested ? NULL : prov_admit_point(b, br.sockdir, have + 1);
		if (!row) {
			rc = -EIO;
			break;
		}
		json_array_append_new(rows, row);
	}
	json_object_set_new(sc, "admit_apply_bound_us", json_real(prov_apply_us(br.conf)));
	bench_broker_stop(&br);
	json_object_set_new(sc, "admit", rows);
	return json_array_size(rows) ? 0 : -EIO;
}

/* ---- clone: scripts/vm/provision bench ------------------------------------------- */

static int prov_clone(struct bench *b, json_t *sc)
{
	char script[4096];
	const char *n = b->quick ? "3" : "10";
	const char *argv[] = { "python3", script, "bench", proc_self_exe(), "-n", n, "--json",
			       NULL };
	struct proc p;
	json_t *doc = NULL;
	bool done;

	b->step++;
	bench_progress(b, "provision: cold boot against clone, %s each (QEMU)", n);
	snprintf(script, sizeof(script), "%s/scripts/vm/provision", RTVIO_SOURCE_DIR);
	bench_proc_blank(&p);
	done = !proc_start(&p, argv, PROC_CAPTURE) && proc_wait(&p, PROV_CLONE_TIMEOUT_MS);
	if (!done)
		proc_stop(&p, SIGTERM, 10000);
	else
		doc = p.out ? json_loads(p.out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	proc_free(&p);
	if (!json_is_object(json_object_get(doc, "clone")) ||
	    !json_is_object(json_object_get(doc, "cold"))) {
		json_decref(doc);
		bench_note(b, "provision: scripts/vm/provision bench failed (QEMU, the guest image "
			      "from scripts/vm/build-image and a saved template are needed): no "
			      "clone against cold boot figures");
		json_object_set_new(sc, "clone_error",
				    json_string(done ? "scripts/vm/provision bench failed"
						     : "scripts/vm/provision bench did not finish"));
		return -EIO;
	}
	json_object_set_new(sc, "clone", doc);
	return 0;
}

/* ---- churn: the control flow with and without changes ----------------------------- */

struct churn {
	const char *sockdir;
	atomic_bool stop;
	unsigned long cycles, failed;
	uint64_t worst_ns;
};

/* One cycle: a cell with a flow to the controller joins, a flow between the
 * running cells joins, then both leave again. */
static void *churn_main(void *arg)
{
	struct churn *c = arg;
	static const char cell[] =
		"[cell churn]\ncid = 40\nregion = 1MiB\n\n[flow churnf]\nfrom = churn\n"
		"to = controller:4000\ntype = seqpacket\nsize = 64\nperiod = 100ms\n";
	char flow[256];

	prov_flow_frag(flow, sizeof(flow), "churnflow", 4001);
	while (!atomic_load(&c->stop)) {
		uint64_t t[4] = { 0 };
		int ok = prov_change(c->sockdir, prov_add(cell), &t[0], NULL, 0) &
			 prov_change(c->sockdir, prov_add(flow), &t[1], NULL, 0) &
			 prov_change(c->sockdir, prov_remove("flow", "churnflow"), &t[2], NULL, 0) &
			 prov_change(c->sockdir, prov_remove("cell", "churn"), &t[3], NULL, 0);

		c->cycles++;
		c->failed += !ok;
		for (int i = 0; i < 4; i++)
			if (t[i] > c->worst_ns)
				c->worst_ns = t[i];
	}
	return NULL;
}

/* One run of the control flow, with the churn thread when `churn`; *bad is set when
 * the churn made no change at all (every one refused): then it measured nothing. */
static json_t *prov_churn_run(struct bench *b, struct broker *br, struct probes *pr, bool churn,
			      bool *bad)
{
	struct churn c = { .sockdir = br->sockdir };
	pthread_t th;
	bool started = false;
	uint64_t t0, t1;
	json_t *r, *st = json_object();

	b->step++;
	bench_progress(b, "provision: control flow %s churn", churn ? "under" : "without");
	t0 = rtvio_now_ns();
	if (churn)
		started = !pthread_create(&th, NULL, churn_main, &c);
	r = bench_iso_run(b, ISO_RTVIO, br->sockdir, false, br->p.pid);
	if (started) {
		atomic_store(&c.stop, true);
		pthread_join(th, NULL);
	}
	t1 = rtvio_now_ns();
	json_object_set_new(r, "label", json_string(churn ? "control + churn" : "control"));
	json_object_set_new(r, "bulk", json_false());
	if (churn) {
		json_object_set_new(r, "churn_cycles", json_integer((json_int_t)c.cycles));
		json_object_set_new(r, "churn_failed", json_integer((json_int_t)c.failed));
		json_object_set_new(r, "churn_worst_change_ms", json_real((double)c.worst_ns / 1e6));
		if (!started || c.failed == c.cycles) {
			const char *why = started ? "every change was refused"
						  : "the churn thread did not start";

			json_object_set_new(r, "status", json_string(why));
			bench_note(b, "provision: the churn run changed nothing (%s; `rtvio analyze "
				      "%s` tells why a change is refused)", why, br->conf);
			*bad = true;
		}
	}
	json_object_set_new(r, "longest_stall_us", json_real(bench_probes_window(pr, t0, t1, st)));
	json_object_set_new(r, "stalls", st);
	return r;
}

/* The control flow's latency bound by `rtvio analyze` of the churn broker's
 * configuration (before any change), into sc.control_bound_us. */
static void prov_bound(const char *conf, json_t *sc)
{
	json_t *doc = bench_analyze(conf), *f;
	size_t i;

	json_array_foreach(json_object_get(doc, "flows"), i, f)
		if (!strcmp(json_string_value(json_object_get(f, "name")) ?: "", "control"))
			json_object_set(sc, "control_bound_us", json_object_get(f, "latency_bound_us"));
	json_decref(doc);
}

static int prov_churn(struct bench *b, const struct rtvio_platform_cfg *plat, json_t *sc)
{
	struct broker br = { 0 };
	struct probes pr;
	json_t *runs = json_array();
	bool bad = false;

	if (prov_broker(b, &br, "churn", 4, plat)) {
		bench_broker_stop(&br);
		bench_note(b, "provision: the churn broker did not start");
		b->step += 2;
		json_object_set_new(sc, "runs", runs);
		return -EIO;
	}
	prov_bound(br.conf, sc);
	json_object_set_new(sc, "churn_apply_bound_us", json_real(prov_apply_us(br.conf)));
	memset(&pr, 0, sizeof(pr));
	bench_probes_start(&pr);
	for (int churn = 0; churn < 2 && !rtvio_stop_requested; churn++)
		json_array_append_new(runs, prov_churn_run(b, &br, &pr, churn, &bad));
	bench_probes_stop(&pr);
	bench_probes_free(&pr);
	bench_broker_stop(&br);
	json_object_set_new(sc, "runs", runs);
	return json_array_size(runs) && !bad ? 0 : -EIO;
}

static void prov_describe(json_t *sc, const char *plat_src,
			  const struct rtvio_platform_cfg *plat)
{
	bench_set_platform(sc, plat_src, plat);
	json_object_set_new(sc, "conditions", json_string(
		"One broker on cpu 1 (policy fp, sleeping on kicks at SCHED_FIFO 80) with the "
		"control flow (64 B every 1 ms, sensor -> controller, SCHED_FIFO 50 peers on "
		"cpu 0; deadline 20 ms and cells' budgets per 10 ms: room for the apply step "
		"charged at 259 flow slots, while the receiver's credit budget, one update per "
		"message that can be pending within the deadline or released in a budget "
		"period, stays a small share of the broker) and configs/demo.conf's [platform] "
		"with this run's change_step (fixed: what is timed is the analysis and the "
		"apply step, and whether a change fits must not depend on one calibration of "
		"a busy machine). admit: a flow of 64 B every 100 ms is added through the "
		"control socket and removed again, 5 times at each "
		"number of flows already admitted; the time is request to reply (the analysis "
		"of the whole configuration after the change, then the apply step between two "
		"data-plane runs). clone: scripts/vm/provision bench, request -> first message "
		"delivered, cold boot and clone alternated. churn: the control flow alone, then "
		"while a thread adds a cell with a flow to the controller and a flow between "
		"the running cells and removes both, in a loop as fast as the broker answers; "
		"the gap probes (SCHED_FIFO 99 on each cpu) record host stalls in each run."));
	json_object_set_new(sc, "reading", json_string(
		"Admission time grows with the flows the analysis has to bound; it is spent in "
		"the broker's worker thread, off the data path. The control flow under churn "
		"should look like the control flow alone: what a change costs the data path "
		"is the apply step between two runs, bounded by the slots [broker] max_cells "
		"and max_flows provide and charged by the analysis as blocking "
		"(docs/analysis.md). A maximum above the no-churn run's that coincides with a "
		"stall of the same length is the host's, not the broker's."));
}

/* The platform admissions are judged by: configs/demo.conf's, not this run's
 * calibration. What is timed here is the analysis and the apply step, which a
 * platform's numbers hardly change, while whether the probe flow fits does change
 * with them: on a busy VM one calibration made the base configuration
 * unschedulable and the scenario measured nothing. demo.conf has no change_step
 * (its flows are fixed): this run's calibrated one is added, so that the apply step
 * is charged. Returns a description. */
static const char *prov_platform(struct bench *b, struct rtvio_platform_cfg *plat)
{
	struct rtvio_platform_cfg cal;
	bool demo = bench_demo_platform(plat);

	if (!(plat->present & RTVIO_PLAT_CHANGE_STEP)) {
		(void)bench_bound_platform(b, false, &cal);
		if (!(cal.present & RTVIO_PLAT_CHANGE_STEP))
			return "configs/demo.conf's [platform] (no change_step: the apply step "
			       "is not charged)";
		plat->change_step = cal.change_step;
		plat->present |= RTVIO_PLAT_CHANGE_STEP;
	}
	return demo ? "configs/demo.conf's [platform], change_step this run's if it has none"
		    : "a built-in copy of configs/demo.conf's [platform] (the file was not "
		      "found), change_step this run's";
}

int bench_scenario_provision(struct bench *b)
{
	struct rtvio_platform_cfg plat;
	json_t *sc = json_object();
	const char *src = prov_platform(b, &plat);
	int admit, clone, churn;

	prov_describe(sc, src, &plat);
	admit = prov_admit(b, &plat, sc);
	churn = rtvio_stop_requested ? -EINTR : prov_churn(b, &plat, sc);
	clone = rtvio_stop_requested ? -EINTR : prov_clone(b, sc);
	json_object_set(json_object_get(b->res, "scenarios"), "provision", sc);
	json_decref(sc);
	/* Every part must have run: a missing one is a failure, not a shorter report. */
	return admit || churn || clone ? -EIO : 0;
}
