/* rtvio analyze CONFIG [--platform FILE] [--assign dm|opa] [--json]
 *
 * Reads the configuration the broker runs, turns it into the analysis's input through
 * the broker's model (from_config.c: ranks, sizes, pools) and prints a latency bound
 * per flow. Exit status: 0 every real-time flow meets its deadline,
 * 1 some does not (or the system is overloaded), 2 bad input or usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "analyze_cmd.h"
#include "an_remote.h"
#include "analysis.h"
#include "config.h"
#include "from_config.h"
#include "mcore_config.h"
#include "model.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: rtvio analyze CONFIG [--platform FILE] [--assign dm|opa] [--json]\n"
		"\n"
		"Latency bound of every configured flow under the broker's policy (fp, edf or\n"
		"fifo) and copy-engine regulation, from the platform costs in CONFIG's\n"
		"[platform] section or FILE's (FILE's values take precedence).\n"
		"\n"
		"  --platform FILE  platform costs, e.g. as written by `rtvio calibrate`\n"
		"  --assign dm      fp priorities deadline-monotonic (default when the config\n"
		"                   gives none)\n"
		"  --assign opa     fp priorities by Audsley's optimal priority assignment;\n"
		"                   prints them, or says that none exists (on several\n"
		"                   broker cores both rank each core's flows apart)\n"
		"  --json           one JSON document on stdout instead of the table\n"
		"\n"
		"Exit status: 0 every real-time flow meets its deadline, 1 not (or overload),\n"
		"2 bad input or usage. The model is described in docs/analysis.md.\n");
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

/* Platform values: FILE's where it has them, else CONFIG's. */
static void merge_platform(struct rtvio_platform_cfg *dst, const struct rtvio_platform_cfg *src)
{
	if (src->present & RTVIO_PLAT_COPY_BANDWIDTH)
		dst->copy_bandwidth = src->copy_bandwidth;
	if (src->present & RTVIO_PLAT_CHUNK_OVERHEAD)
		dst->chunk_overhead = src->chunk_overhead;
	if (src->present & RTVIO_PLAT_PACKET_OVERHEAD)
		dst->packet_overhead = src->packet_overhead;
	if (src->present & RTVIO_PLAT_INGEST_LATENCY)
		dst->ingest_latency = src->ingest_latency;
	if (src->present & RTVIO_PLAT_NOTIFY_LATENCY)
		dst->notify_latency = src->notify_latency;
	if (src->present & RTVIO_PLAT_INGEST_STEP)
		dst->ingest_step = src->ingest_step;
	if (src->present & RTVIO_PLAT_BATCH_GAP)
		dst->batch_gap = src->batch_gap;
	if (src->present & RTVIO_PLAT_CHANGE_STEP)
		dst->change_step = src->change_step;
	if (src->present & RTVIO_PLAT_VHOST_USER_MSG)
		dst->vhost_user_msg = src->vhost_user_msg;
	if (src->present & RTVIO_PLAT_VHOST_USER_MAP)
		dst->vhost_user_map = src->vhost_user_map;
	if (src->present & RTVIO_PLAT_WAKE_WRITE)
		dst->wake_write = src->wake_write;
	dst->present |= src->present;
}

static json_t *num_us(uint64_t ns)
{
	return json_real(us(ns));
}

/* A remote flow's end-to-end bound and its three parts (an_remote.h). */
static json_t *composed_json(const struct rtvio_config *cfg, int i, const struct an_flow_result *r)
{
	struct an_composed c;

	an_remote_compose(cfg, i, r, &c);
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}",
			 "remote", cfg->remotes[cfg->flows[i].rem.remote].name,
			 "direction", cfg->flows[i].rem.incoming ? "in" : "out",
			 "local_us", r->bounded ? num_us(c.local) : json_null(),
			 "network_us", num_us(c.network),
			 "remote_us", c.far ? num_us(c.far) : json_null(),
			 "bound_us", c.bounded ? num_us(c.total) : json_null());
}

/* Below the table: local + network + remote for every flow through a gateway. */
static void print_composed(const struct rtvio_config *cfg, const struct an_flow_result *out)
{
	bool header = false;

	for (int i = 0; i < cfg->nflows; i++) {
		struct an_composed c;

		an_remote_compose(cfg, i, &out[i], &c);
		if (!c.remote)
			continue;
		if (!header)
			printf("\nremote flows: end-to-end bound = local (to/from the gateway) + "
			       "network_budget + remote_bound\n%-20s %-8s %-3s %12s %12s %12s "
			       "%12s\n", "flow", "remote", "dir", "local_us", "network_us",
			       "remote_us", "bound_us");
		header = true;
		printf("%-20s %-8s %-3s ", cfg->flows[i].name,
		       cfg->remotes[cfg->flows[i].rem.remote].name,
		       cfg->flows[i].rem.incoming ? "in" : "out");
		if (out[i].bounded)
			printf("%12.3f ", us(c.local));
		else
			printf("%12s ", "-");
		printf("%12.3f ", us(c.network));
		if (c.far)
			printf("%12.3f ", us(c.far));
		else
			printf("%12s ", "-");
		if (c.bounded)
			printf("%12.3f\n", us(c.total));
		else
			printf("%12s  (%s)\n", "-", c.far ? "no local bound" :
			       "remote_bound not given");
	}
}

/* A flow's core and what the shared locks cost it (an_mcore.h), on several cores. */
static json_t *blocking_json(const struct an_blocking *bl)
{
	return json_pack("{s:o, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			 "mutex", num_us(bl->mutex), "mutex_per_step", (json_int_t)bl->mutex_per_step,
			 "kex", num_us(bl->kex), "rw_reader", num_us(bl->rw_reader),
			 "rw_per_write", num_us(bl->rw_write),
			 "write_spacing", num_us(bl->write_spacing),
			 "ingest_pass", num_us(bl->ingest_pass), "per_step", num_us(bl->per_step),
			 "pick_lead", num_us(bl->pick_lead), "per_job", num_us(bl->per_job));
}

static json_t *core_json(const struct an_blocking *bl)
{
	return bl->core == AN_ANY_CORE ? json_string("any") : json_integer(bl->core);
}

static void print_json(const struct rtvio_config *cfg, const struct an_flow *fl,
		       const struct an_result *res, const struct an_flow_result *out,
		       enum an_policy pol, const struct an_blocking *blk)
{
	json_t *doc = json_object(), *arr = json_array();

	json_object_set_new(doc, "policy", json_string(an_policy_name(pol)));
	json_object_set_new(doc, "schedulable", json_boolean(res->schedulable));
	json_object_set_new(doc, "utilization", json_real(res->utilization));
	/* The share of the broker's time the work may use: 1 (regulation is in the work). */
	json_object_set_new(doc, "capacity", json_real(res->capacity));
	json_object_set_new(doc, "status", json_string(an_status_name(res->status)));
	/* Regulated: the reserve the broker keeps for real-time flows, their demand per
	 * period, and whether they were analysed unregulated (docs/analysis.md). */
	if (cfg->broker.regulation_budget) {
		json_object_set_new(doc, "rt_reserve_bytes",
				    json_integer((json_int_t)model_rt_reserve(cfg)));
		json_object_set_new(doc, "rt_demand_bytes",
				    json_integer((json_int_t)res->rt_demand));
		json_object_set_new(doc, "rt_reserved", json_boolean(res->rt_reserved));
	}
	/* Why there is no bound (overload, a busy period past the horizon, ...). */
	json_object_set_new(doc, "why", res->status != AN_OK && res->why ?
				 json_string(res->why) : json_null());
	for (int i = 0; i < cfg->nflows; i++) {
		json_t *f = json_object();
		bool be = fl[i].best_effort;

		json_object_set_new(f, "name", json_string(cfg->flows[i].name));
		json_object_set_new(f, "priority", !be && pol == AN_FP ?
					 json_integer(fl[i].priority) : json_null());
		json_object_set_new(f, "response_us", !be && out[i].bounded ?
					 num_us(out[i].response) : json_null());
		json_object_set_new(f, "latency_bound_us", !be && out[i].bounded ?
					 num_us(out[i].latency) : json_null());
		json_object_set_new(f, "deadline_us", be ? json_null() : num_us(fl[i].deadline));
		json_object_set_new(f, "schedulable", be ? json_null() :
					 json_boolean(out[i].schedulable));
		if (cfg->flows[i].rem.remote >= 0)
			json_object_set_new(f, "composed", composed_json(cfg, i, &out[i]));
		if (cfg->broker.ncores > 1) {
			json_object_set_new(f, "core", core_json(&blk[i]));
			json_object_set_new(f, "blocking", blocking_json(&blk[i]));
		}
		json_array_append_new(arr, f);
	}
	json_object_set_new(doc, "flows", arr);
	if (cfg->broker.ncores > 1)
		json_object_set_new(doc, "cores", json_integer(cfg->broker.ncores));
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	fputc('\n', stdout);
	json_decref(doc);
}

/* Below the table on several cores: each flow's core and its blocking (us). */
static void print_cores(const struct rtvio_config *cfg, const struct an_blocking *blk)
{
	if (cfg->broker.ncores <= 1)
		return;
	printf("\n%d broker cores: each flow is dispatched by its destination's core; per step "
	       "2 x mutex + kex + rw_reader + ingest_pass (docs/analysis.md, \"Several "
	       "cores\")\n%-20s %5s %10s %10s %10s %10s %10s %10s\n", cfg->broker.ncores, "flow",
	       "core", "mutex_us", "kex_us", "rw_rd_us", "pass_us", "step_us", "job_us");
	for (int i = 0; i < cfg->nflows; i++) {
		const struct an_blocking *bl = &blk[i];
		char core[16];

		if (bl->core == AN_ANY_CORE)
			snprintf(core, sizeof(core), "any");
		else
			snprintf(core, sizeof(core), "%u", bl->core);
		printf("%-20s %5s %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n", cfg->flows[i].name,
		       core, us(bl->mutex), us(bl->kex), us(bl->rw_reader), us(bl->ingest_pass),
		       us(bl->per_step), us(bl->per_job));
	}
	if (cfg->nflows && blk[0].write_spacing)
		printf("W's writes (the control path) at most one per %.3f us: a core's wait on "
		       "W charged per write, %.3f us each, as lost supply (rw_rd_us 0)\n",
		       us(blk[0].write_spacing), us(blk[0].rw_write));
}

/* The host bridge's pass budget, which the batch gap above includes. */
static void print_host_pass(const struct rtvio_config *cfg)
{
	struct model_host_pass hp;

	model_host_pass(cfg, &hp);
	if (hp.cell < 0)
		return;
	printf("batch gap includes the host bridge's pass: %u bridge(s), %llu B copied, %llu "
	       "system calls (docs/analysis.md, \"Host bridge\")\n", hp.bridges,
	       (unsigned long long)hp.bytes, (unsigned long long)hp.calls);
}

static void print_table(const struct rtvio_config *cfg, const struct an_flow *fl,
			const struct an_broker *b, const struct an_result *res,
			const struct an_flow_result *out, enum an_policy pol)
{
	printf("policy %s, chunk %llu B, utilization %.4f of %.4f: %s%s%s%s\n",
	       an_policy_name(pol), (unsigned long long)b->chunk, res->utilization,
	       res->capacity,
	       res->status == AN_OK ? (res->schedulable ? "schedulable" : "NOT schedulable") :
	       res->status == AN_OVERLOAD ? "OVERLOAD" : "UNBOUNDED",
	       res->why ? " (" : "", res->why ? res->why : "", res->why ? ")" : "");
	if (res->regulated)
		printf("copy engine regulated: %llu B per %.3f us; every throttle serves at least "
		       "%llu B and costs at most %.3f us (charged per byte in C and Q)\n",
		       (unsigned long long)b->reg_budget, us(b->reg_period),
		       (unsigned long long)res->theta, us(an_reg_stall(b)));
	if (res->rt_reserved)
		printf("copy engine regulated: %llu B per %.3f us, of which %llu B are kept for "
		       "the real-time flows, which charge at most %llu B per period: they are "
		       "never throttled and are analysed unregulated\n",
		       (unsigned long long)b->reg_budget, us(b->reg_period),
		       (unsigned long long)b->reg_reserve, (unsigned long long)res->rt_demand);
	else if (res->regulated && b->reg_reserve)
		printf("(%llu B per period kept for the real-time flows, which may charge up to "
		       "%llu B per period: not enough to leave them unthrottled)\n",
		       (unsigned long long)b->reg_reserve, (unsigned long long)res->rt_demand);
	if (pol == AN_EDF && !res->demand_ok)
		printf("edf demand test fails at t = %.3f us\n", us(res->demand_fail_at));
	printf("%-20s %5s %10s %10s %10s %12s %12s %12s  %s\n", "flow", "prio", "C_us", "q_us",
	       "Q_us", "response_us", "bound_us", "deadline_us", "ok");
	for (int i = 0; i < cfg->nflows; i++) {
		const struct an_flow_result *r = &out[i];
		char prio[16];

		if (fl[i].best_effort)
			snprintf(prio, sizeof(prio), "be");
		else if (pol == AN_FP)
			snprintf(prio, sizeof(prio), "%u", fl[i].priority);
		else
			snprintf(prio, sizeof(prio), "-");
		printf("%-20s %5s %10.3f %10.3f %10.3f ", cfg->flows[i].name, prio,
		       us(r->costs.C), us(r->costs.q), us(r->costs.Q));
		if (fl[i].best_effort)
			printf("%12s %12s %12s  %s\n", "-", "-", "-", "best-effort (no bound)");
		else if (!r->bounded)
			printf("%12s %12s %12.3f  %s\n", "-", "-", us(fl[i].deadline),
			       res->status == AN_OVERLOAD ? "no (overload)" : "no (unbounded)");
		else
			printf("%12.3f %12.3f %12.3f  %s\n", us(r->response), us(r->latency),
			       us(fl[i].deadline), r->schedulable ? "yes" : "NO");
	}
	print_composed(cfg, out);
	printf("bound = ingest_latency %.3f us + response + notify_latency %.3f us\n",
	       us(b->plat.ingest_latency), us(b->plat.notify_latency));
	for (int i = 0; i < cfg->nflows; i++)
		if (out[i].bounded && out[i].from_kick &&
		    out[i].from_kick < b->plat.ingest_latency + out[i].response) {
			printf("  fp: less where a later job of the flow's window is its worst: "
			       "that job's response holds its ingest latency already\n");
			break;
		}
	printf("ingest %.3f us per packet (ingest_step / %u), %llu TX slots; batch gap %.3f us "
	       "per %llu steps\n", us(b->plat.ingest_packet), MODEL_INGEST_STEP_PACKETS,
	       (unsigned long long)b->tx_slots, us(b->plat.batch_gap),
	       (unsigned long long)b->run_steps);
	print_host_pass(cfg);
	if (b->budget_period) {
		uint64_t ctl = 0, pcs = 0, w = 0;

		for (int i = 0; i < cfg->nflows; i++) {
			ctl += fl[i].budget_ctrl;
			pcs += fl[i].budget_pieces;
			w += an_ride_work(b, &fl[i]);
		}
		printf("cells' budgets per %.3f us: %llu packets ingested (%.3f us, above every "
		       "flow), %llu control packets and %llu short RX pieces at their flows' "
		       "priorities (%.3f us)\n", us(b->budget_period),
		       (unsigned long long)b->budget_ingest, us(an_ingest_work(b)),
		       (unsigned long long)ctl, (unsigned long long)pcs, us(w));
	}
	if (b->plat.change_apply)
		printf("run-time change: apply step up to %.3f us (%llu slot visits x change_step), "
		       "blocking once per window\n", us(b->plat.change_apply),
		       (unsigned long long)model_change_slots(cfg));
	else
		printf("run-time change: not charged (no change_step in [platform])\n");
	printf("vhost-user work of all cells: %.3f us per %.3f ms (messages) + %.3f us per "
	       "%.3f ms (heavy ones), as lost supply\n", us(b->vhu.work[0]),
	       us(b->vhu.period[0]) / 1000.0, us(b->vhu.work[1]), us(b->vhu.period[1]) / 1000.0);
	if (b->vhu.cap_work[0] || b->vhu.cap_work[1])
		printf("  at most the broker-wide buckets: %.3f us per %.3f ms (messages) + %.3f us "
		       "per %.3f ms (heavy ones); charged: the smaller at every t, %.2f %% of the "
		       "broker\n", us(b->vhu.cap_work[0]), us(b->vhu.cap_period[0]) / 1000.0,
		       us(b->vhu.cap_work[1]), us(b->vhu.cap_period[1]) / 1000.0,
		       (double)(100.0L * an_vhu_utilization(&b->vhu)));
	printf("C = broker time per message, q = its last non-preemptive step, Q = the longest\n"
	       "step it can hold the broker for; response = R from the broker's sight of a\n"
	       "message to its last byte (docs/analysis.md)\n");
}

struct opts {
	const char *conf, *platfile, *assign;
	bool json;
};

/* Everything one run owns; released by run_free. */
struct run {
	struct rtvio_config cfg;
	struct rtvio_platform_cfg plat;
	struct model *model;
	struct an_broker b;
	struct an_flow *fl;          /* n entries (room for cfg.nflows + 1) */
	struct an_flow_result *out;
	struct an_blocking *blk;     /* n entries: each flow's core and lock terms */
	struct an_mcore_input mi;
	size_t n;
	struct an_result res;
	bool opa_none;               /* --assign opa found no assignment */
};

/* -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			o->json = true;
		} else if (!strcmp(argv[i], "--platform") || !strcmp(argv[i], "--assign")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "rtvio analyze: %s needs a value\n", argv[i]);
				return 2;
			}
			if (!strcmp(argv[i], "--platform"))
				o->platfile = argv[++i];
			else
				o->assign = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "rtvio analyze: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (!o->conf) {
			o->conf = argv[i];
		} else {
			fprintf(stderr, "rtvio analyze: one CONFIG only ('%s' is extra)\n", argv[i]);
			return 2;
		}
	}
	if (!o->conf) {
		usage(stderr);
		return 2;
	}
	if (o->assign && strcmp(o->assign, "dm") && strcmp(o->assign, "opa")) {
		fprintf(stderr, "rtvio analyze: --assign '%s': expected dm or opa\n", o->assign);
		return 2;
	}
	return -1;
}

/* The bounds assume that no cell can take a data-plane core's cpu: said when a
 * configuration lets one (model_cell_over_core). */
static void over_core_warning(const struct rtvio_config *cfg)
{
	int c = model_cell_over_core(cfg);

	if (c >= 0)
		fprintf(stderr, "rtvio analyze: warning: cell %s runs on cpu %d, which a "
			"data-plane core shares without a real-time priority above the cell's: "
			"the bounds below assume it cannot delay the broker, which it can\n",
			cfg->cells[c].name, cfg->cells[c].cpu);
}

/* The configuration, and the platform costs: FILE's where it has them, else
 * CONFIG's. */
static int load(const struct opts *o, struct run *r)
{
	char err[512], missing[256];

	if (rtvio_config_load(o->conf, &r->cfg, err, sizeof(err))) {
		fprintf(stderr, "rtvio analyze: %s\n", err);
		return -EINVAL;
	}
	if (o->assign && an_policy_of_config(&r->cfg) != AN_FP) {
		fprintf(stderr, "rtvio analyze: --assign applies to policy fp only (%s uses %s)\n",
			o->conf, an_policy_name(an_policy_of_config(&r->cfg)));
		return -EINVAL;
	}
	over_core_warning(&r->cfg);
	r->plat = r->cfg.platform;
	if (o->platfile) {
		struct rtvio_platform_cfg fp;

		if (rtvio_platform_load(o->platfile, &fp, err, sizeof(err))) {
			fprintf(stderr, "rtvio analyze: %s\n", err);
			return -EINVAL;
		}
		merge_platform(&r->plat, &fp);
	}
	if (rtvio_platform_missing(&r->plat, missing, sizeof(missing))) {
		fprintf(stderr, "rtvio analyze: missing platform values: %s (give them in a "
			"[platform] section of %s or of --platform FILE; `rtvio calibrate` "
			"measures them)\n", missing, o->conf);
		return -EINVAL;
	}
	return 0;
}

/* The broker's model, the analysis's input from it (the broker's own priorities, or
 * deadline-monotonic ones under --assign), checked. */
static int build_input(const struct opts *o, struct run *r)
{
	const char *why;
	int bad;

	/* One spare entry for the default best-effort class. */
	r->fl = calloc((size_t)r->cfg.nflows + 1, sizeof(*r->fl));
	r->out = calloc((size_t)r->cfg.nflows + 1, sizeof(*r->out));
	r->blk = calloc((size_t)r->cfg.nflows + 1, sizeof(*r->blk));
	if (!r->fl || !r->out || !r->blk || model_create(&r->cfg, &r->model)) {
		fprintf(stderr, "rtvio analyze: out of memory\n");
		return -ENOMEM;
	}
	r->n = an_input_from_config(&r->cfg, r->model, &r->plat, &r->b, r->fl);
	if (an_mcore_from_config(&r->cfg, r->model, r->n, &r->mi)) {
		fprintf(stderr, "rtvio analyze: out of memory\n");
		return -ENOMEM;
	}
	if (o->assign) {
		unsigned *prio = calloc(r->n, sizeof(*prio));

		/* Ranked within each broker core's flows (one core: all of them). */
		int ret = prio ? an_mcore_assign_dm(r->fl, r->n, &r->mi.mc, prio) : -ENOMEM;

		if (ret) {
			free(prio);
			fprintf(stderr, "rtvio analyze: priority assignment failed: %s\n",
				strerror(-ret));
			return ret;
		}
		for (size_t i = 0; i < r->n; i++)
			r->fl[i].priority = prio[i];
		free(prio);
	}
	if (an_validate(r->fl, r->n, &r->b, &bad, &why)) {
		if (bad >= 0)
			fprintf(stderr, "rtvio analyze: %s: flow %s: %s\n", o->conf,
				r->fl[bad].name, why);
		else
			fprintf(stderr, "rtvio analyze: %s: %s\n", o->conf, why);
		return -EINVAL;
	}
	return 0;
}

/* Audsley's assignment into r->fl, within each broker core's flows;
 * deadline-monotonic when none exists. */
static int assign_opa(struct run *r)
{
	unsigned *prio = calloc(r->n, sizeof(*prio));
	int ret = -ENOMEM;

	if (prio) {
		ret = an_mcore_assign_opa(r->fl, r->n, &r->b, &r->mi.mc, prio);
		if (ret == -ESRCH) {
			r->opa_none = true;
			ret = an_mcore_assign_dm(r->fl, r->n, &r->mi.mc, prio);
		}
	}
	if (ret)
		fprintf(stderr, "rtvio analyze: priority assignment failed: %s\n",
			strerror(-ret));
	else
		for (size_t i = 0; i < r->n; i++)
			r->fl[i].priority = prio[i];
	free(prio);
	return ret;
}

static int run_analysis(const struct opts *o, struct run *r)
{
	if (o->assign && !strcmp(o->assign, "opa") && assign_opa(r))
		return -EINVAL;
	if (an_analyze_mcore(r->fl, r->n, &r->b, &r->mi.mc, &r->res, r->out, r->blk)) {
		fprintf(stderr, "rtvio analyze: %s: inconsistent flow parameters\n", o->conf);
		return -EINVAL;
	}
	if (r->opa_none)
		fprintf(stderr, "rtvio analyze: no priority assignment makes every flow meet its "
			"deadline (Audsley's OPA); showing deadline-monotonic priorities\n");
	return 0;
}

static void print(const struct opts *o, const struct run *r)
{
	if (o->json) {
		print_json(&r->cfg, r->fl, &r->res, r->out, r->b.policy, r->blk);
		return;
	}
	if (o->assign && !r->opa_none) {
		printf("priorities (%s%s; write them into the config for the broker to use them):",
		       o->assign, r->cfg.broker.ncores > 1 ? ", ranked within each broker core" : "");
		for (int i = 0; i < r->cfg.nflows; i++)
			if (!r->fl[i].best_effort)
				printf(" %s=%u", r->cfg.flows[i].name, r->fl[i].priority);
		printf("\n");
	}
	print_table(&r->cfg, r->fl, &r->b, &r->res, r->out, r->b.policy);
	print_cores(&r->cfg, r->blk);
}

static void run_free(struct run *r)
{
	free(r->fl);
	free(r->out);
	free(r->blk);
	an_mcore_input_free(&r->mi);
	model_destroy(r->model);
	rtvio_config_free(&r->cfg);
}

int cmd_analyze(int argc, char **argv)
{
	struct opts o = { 0 };
	struct run r = { 0 };
	int ret = parse_opts(argc, argv, &o);

	if (ret >= 0)
		return ret;
	ret = 2;
	if (!load(&o, &r) && !build_input(&o, &r) && !run_analysis(&o, &r)) {
		print(&o, &r);
		ret = r.res.schedulable && !r.opa_none ? 0 : 1;
	}
	run_free(&r);
	return ret;
}
