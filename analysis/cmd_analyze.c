/* rtvio analyze CONFIG [--platform FILE] [--assign dm|opa] [--json]
 *
 * Reads the configuration the broker runs, turns every flow into the analysis's input
 * (sizes, periods, the receiver's RX buffer, the sender's packet size) and prints a
 * latency bound per flow. Exit status: 0 every real-time flow meets its deadline,
 * 1 some does not (or the system is overloaded), 2 bad input or usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../broker/dp_internal.h" /* DP_TX_SLOTS, DP_RUN_STEPS: what the broker does */
#include "../cli/commands.h"
#include "analysis.h"
#include "config.h"

/* Payload of one RX buffer of Debian's Linux 6.1 guest driver: it posts one 4096-byte
 * skb per buffer, of which the shared-info tail (320 bytes on x86-64) is not
 * usable, and the 44-byte header shares the rest (notes/qemu-vhost-user.md: "about
 * 3.7 KiB"): 4096 - 320 - 44. A vm cell's rx_buf larger than this cannot be what
 * the guest really posts, so the piece count takes the smaller of the two. The
 * longest step does not: the broker sizes pieces by the buffers the guest really
 * posts, which the configuration does not bound. */
#define LINUX_GUEST_RX_PAYLOAD 3732u
/* ingest_step is a pass over this many pending packets (docs/config.md; what `rtvio
 * calibrate` times): the analysis charges each packet ingested that share of it. */
#define INGEST_STEP_PACKETS 128u

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
		"                   prints them, or says that none exists\n"
		"  --json           one JSON document on stdout instead of the table\n"
		"\n"
		"Exit status: 0 every real-time flow meets its deadline, 1 not (or overload),\n"
		"2 bad input or usage. The model is described in docs/analysis.md.\n");
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static enum an_policy policy_of(enum rtvio_policy p)
{
	switch (p) {
	case RTVIO_POLICY_EDF:
		return AN_EDF;
	case RTVIO_POLICY_FIFO:
		return AN_FIFO;
	case RTVIO_POLICY_FP:
		break;
	}
	return AN_FP;
}

/* The priorities the broker itself runs with (broker/dataplane.c rank_flows): flows
 * with a configured priority first, by that priority; then the others
 * deadline-monotonically. Flows of equal rank are served in arrival order, so they
 * get equal numbers here, which the analysis treats as interfering both ways. */
static void broker_ranks(const struct rtvio_config *cfg, struct an_flow *fl)
{
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];
		unsigned rank = 1;

		fl[i].priority = 0;
		if (f->best_effort)
			continue;
		/* 1 + the number of distinct ranks strictly ahead of this one. */
		for (int j = 0; j < cfg->nflows; j++) {
			const struct rtvio_flow_cfg *g = &cfg->flows[j];
			bool ahead, dup = false;

			if (g->best_effort)
				continue;
			if (f->priority > 0)
				ahead = g->priority > 0 && g->priority < f->priority;
			else
				ahead = g->priority > 0 || g->deadline_ns < f->deadline_ns;
			if (!ahead)
				continue;
			/* Count each distinct rank once. */
			for (int k = 0; k < j && !dup; k++) {
				const struct rtvio_flow_cfg *h = &cfg->flows[k];

				if (h->best_effort)
					continue;
				if (g->priority > 0)
					dup = h->priority == g->priority;
				else
					dup = h->priority <= 0 && h->deadline_ns == g->deadline_ns;
			}
			rank += !dup;
		}
		fl[i].priority = rank;
	}
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
	dst->present |= src->present;
}

static json_t *num_us(uint64_t ns)
{
	return json_real(us(ns));
}

static void print_json(const struct rtvio_config *cfg, const struct an_flow *fl,
		       const struct an_result *res, const struct an_flow_result *out,
		       enum an_policy pol)
{
	json_t *doc = json_object(), *arr = json_array();

	json_object_set_new(doc, "policy", json_string(an_policy_name(pol)));
	json_object_set_new(doc, "schedulable", json_boolean(res->schedulable));
	json_object_set_new(doc, "utilization", json_real(res->utilization));
	/* The share of the broker's time its copy engine may use: 1, or Θ/Π regulated. */
	json_object_set_new(doc, "capacity", json_real(res->capacity));
	json_object_set_new(doc, "status", json_string(an_status_name(res->status)));
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
		json_array_append_new(arr, f);
	}
	json_object_set_new(doc, "flows", arr);
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	fputc('\n', stdout);
	json_decref(doc);
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
		printf("copy engine regulated: %llu B per %.3f us, guaranteed %.3f us of copying "
		       "per period\n", (unsigned long long)b->reg_budget, us(b->reg_period),
		       us(res->theta));
	else if (b->reg_budget)
		printf("copy engine regulation never binds (budget exceeds what a period can copy)\n");
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
	printf("bound = ingest_latency %.3f us + response + notify_latency %.3f us\n",
	       us(b->plat.ingest_latency), us(b->plat.notify_latency));
	printf("ingest %.3f us per packet (ingest_step / %u), %llu TX slots; batch gap %.3f us "
	       "per %llu steps\n", us(b->plat.ingest_packet), INGEST_STEP_PACKETS,
	       (unsigned long long)b->tx_slots, us(b->plat.batch_gap),
	       (unsigned long long)b->run_steps);
}

int cmd_analyze(int argc, char **argv)
{
	const char *conf = NULL, *platfile = NULL, *assign = NULL;
	bool json = false;
	struct rtvio_config cfg = { 0 };
	struct rtvio_platform_cfg plat;
	char err[512], missing[256];
	struct an_flow *fl = NULL;
	struct an_flow_result *out = NULL;
	struct an_costs *costs = NULL;
	unsigned *prio = NULL;
	struct an_broker b = { 0 };
	struct an_result res;
	enum an_policy pol;
	int ret = 2, bad;
	const char *why;
	bool opa_none = false;
	size_t nfl;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--platform") || !strcmp(argv[i], "--assign")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "rtvio analyze: %s needs a value\n", argv[i]);
				return 2;
			}
			if (!strcmp(argv[i], "--platform"))
				platfile = argv[++i];
			else
				assign = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "rtvio analyze: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (!conf) {
			conf = argv[i];
		} else {
			fprintf(stderr, "rtvio analyze: one CONFIG only ('%s' is extra)\n", argv[i]);
			return 2;
		}
	}
	if (!conf) {
		usage(stderr);
		return 2;
	}
	if (assign && strcmp(assign, "dm") && strcmp(assign, "opa")) {
		fprintf(stderr, "rtvio analyze: --assign '%s': expected dm or opa\n", assign);
		return 2;
	}
	if (rtvio_config_load(conf, &cfg, err, sizeof(err))) {
		fprintf(stderr, "rtvio analyze: %s\n", err);
		return 2;
	}
	pol = policy_of(cfg.broker.policy);
	if (assign && pol != AN_FP) {
		fprintf(stderr, "rtvio analyze: --assign applies to policy fp only (%s uses %s)\n",
			conf, an_policy_name(pol));
		goto out;
	}

	plat = cfg.platform;
	if (platfile) {
		struct rtvio_platform_cfg fp;

		if (rtvio_platform_load(platfile, &fp, err, sizeof(err))) {
			fprintf(stderr, "rtvio analyze: %s\n", err);
			goto out;
		}
		merge_platform(&plat, &fp);
	}
	if (rtvio_platform_missing(&plat, missing, sizeof(missing))) {
		fprintf(stderr, "rtvio analyze: missing platform values: %s (give them in a "
			"[platform] section of %s or of --platform FILE; `rtvio calibrate` "
			"measures them)\n", missing, conf);
		goto out;
	}

	b.policy = pol;
	b.chunk = cfg.broker.chunk;
	b.reg_budget = cfg.broker.regulation_budget;
	b.reg_period = cfg.broker.regulation_period_ns;
	b.plat.copy_bandwidth = plat.copy_bandwidth;
	b.plat.chunk_overhead = plat.chunk_overhead;
	b.plat.packet_overhead = plat.packet_overhead;
	b.plat.ingest_latency = plat.ingest_latency;
	b.plat.notify_latency = plat.notify_latency;
	b.plat.ingest_packet = plat.ingest_step / INGEST_STEP_PACKETS +
			       (plat.ingest_step % INGEST_STEP_PACKETS != 0);
	b.plat.batch_gap = plat.batch_gap;
	/* Every configured cell may attach and fill its TX slots, flows or not. */
	b.tx_slots = (uint64_t)cfg.ncells * DP_TX_SLOTS;
	b.run_steps = DP_RUN_STEPS;

	/* One spare entry for the default best-effort class. */
	fl = calloc((size_t)cfg.nflows + 1, sizeof(*fl));
	out = calloc((size_t)cfg.nflows + 1, sizeof(*out));
	costs = calloc((size_t)cfg.nflows + 1, sizeof(*costs));
	prio = calloc((size_t)cfg.nflows + 1, sizeof(*prio));
	if (!fl || !out || !costs || !prio) {
		fprintf(stderr, "rtvio analyze: out of memory\n");
		goto out;
	}
	for (int i = 0; i < cfg.nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg.flows[i];
		const struct rtvio_cell_cfg *dst = &cfg.cells[f->to];
		const struct rtvio_cell_cfg *src = &cfg.cells[f->from];

		fl[i].name = f->name;
		fl[i].best_effort = f->best_effort;
		fl[i].type = f->type == RTVIO_STREAM ? AN_STREAM : AN_SEQPACKET;
		fl[i].size = f->size;
		fl[i].rx_payload = dst->rx_buf;
		/* A process cell posts rx_buf (rtvio cell does); a guest what its
		 * kernel posts. */
		fl[i].rx_max = dst->vm ? 0 : dst->rx_buf;
		if (dst->vm && fl[i].rx_payload > LINUX_GUEST_RX_PAYLOAD)
			fl[i].rx_payload = LINUX_GUEST_RX_PAYLOAD;
		fl[i].packet_size = src->max_packet;
		fl[i].period = f->period_ns;
		fl[i].deadline = f->deadline_ns;
		fl[i].jitter = f->jitter_ns;
	}
	nfl = (size_t)cfg.nflows;
	if (cfg.broker.default_best_effort) {
		/* Connections no flow names run in the best-effort class: one more lowest
		 * band flow, toward any cell, whose steps may be as long as a chunk and
		 * the largest RX buffer any cell posts allow. */
		uint64_t rxm = 0;

		for (int c = 0; c < cfg.ncells; c++) {
			if (cfg.cells[c].vm) {
				rxm = 0;
				break;
			}
			if (cfg.cells[c].rx_buf > rxm)
				rxm = cfg.cells[c].rx_buf;
		}
		fl[nfl].name = "(default best-effort)";
		fl[nfl].best_effort = true;
		fl[nfl].type = AN_SEQPACKET;
		fl[nfl].size = cfg.broker.chunk;
		fl[nfl].rx_payload = rxm ? rxm : cfg.broker.chunk;
		fl[nfl].rx_max = rxm;
		fl[nfl].packet_size = cfg.broker.chunk;
		nfl++;
	}
	if (pol == AN_FP) {
		if (!assign)
			broker_ranks(&cfg, fl);
		else
			an_assign_dm(fl, nfl, prio);
		if (assign)
			for (size_t i = 0; i < nfl; i++)
				fl[i].priority = prio[i];
	}
	if (an_validate(fl, nfl, &b, &bad, &why)) {
		if (bad >= 0)
			fprintf(stderr, "rtvio analyze: %s: flow %s: %s\n", conf,
				cfg.flows[bad].name, why);
		else
			fprintf(stderr, "rtvio analyze: %s: %s\n", conf, why);
		goto out;
	}
	if (assign && !strcmp(assign, "opa")) {
		int r;

		for (size_t i = 0; i < nfl; i++)
			an_flow_costs(&fl[i], &b, &costs[i]);
		r = an_assign_opa(fl, nfl, &b, costs, prio);
		if (r == -ESRCH) {
			opa_none = true;
			an_assign_dm(fl, nfl, prio);
		} else if (r) {
			fprintf(stderr, "rtvio analyze: priority assignment failed: %s\n",
				strerror(-r));
			goto out;
		}
		for (size_t i = 0; i < nfl; i++)
			fl[i].priority = prio[i];
	}
	if (an_analyze(fl, nfl, &b, &res, out)) {
		fprintf(stderr, "rtvio analyze: %s: inconsistent flow parameters\n", conf);
		goto out;
	}
	if (opa_none)
		fprintf(stderr, "rtvio analyze: no priority assignment makes every flow meet its "
			"deadline (Audsley's OPA); showing deadline-monotonic priorities\n");
	if (json) {
		print_json(&cfg, fl, &res, out, pol);
	} else {
		if (assign && !opa_none) {
			printf("priorities (%s; write them into the config for the broker to "
			       "use them):", assign);
			for (int i = 0; i < cfg.nflows; i++)
				if (!fl[i].best_effort)
					printf(" %s=%u", cfg.flows[i].name, fl[i].priority);
			printf("\n");
		}
		print_table(&cfg, fl, &b, &res, out, pol);
	}
	ret = res.schedulable && !opa_none ? 0 : 1;
out:
	free(fl);
	free(out);
	free(costs);
	free(prio);
	rtvio_config_free(&cfg);
	return ret;
}
