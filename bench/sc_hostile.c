/* `rtvio bench hostile`: configs/demo.conf's flows and a generated set, each victim
 * flow's worst latency and broker residence against its bounds, first with the
 * hostile cell idle, then with `rtvio hostile` running each misbehaviour in turn and
 * all of them together. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "runner.h"

/* The hostile pair: `rtvio hostile` drives both (the helper is well behaved and
 * gives the hostile cell traffic). Their own flows are declared, so the analysis
 * charges what the hostile cell may do within them. */
#define HOSTILE_CID 20
#define HELPER_CID 21
/* Its REQUEST/RST/RW storms go to the control flow's receiver and port. */
#define VICTIM_CELL "controller"
#define VICTIM_PORT "1000"

static const char *const modes[] = { "callfd", "repost", "storm", "tinyrx", "rx1",
				     "noread", "vhuflood", "memtable", "attach", "punch",
				     "oversize", "all" };
#define NMODES (sizeof(modes) / sizeof(modes[0]))

/* Is mode a name of the comma-separated list? */
static bool listed(const char *list, const char *mode)
{
	size_t n = strlen(mode);

	for (const char *p = list; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (strcspn(p, ",") == n && !strncmp(p, mode, n))
			return true;
	}
	return false;
}

const char *bench_hostile_modes_check(const char *list, char *bad, size_t bad_len)
{
	for (const char *p = list;; p += strcspn(p, ",") + 1) {
		size_t n = strcspn(p, ",");
		bool known = false;

		for (size_t i = 0; i < NMODES && n; i++)
			known = known || (strlen(modes[i]) == n && !strncmp(modes[i], p, n));
		if (!known) {
			snprintf(bad, bad_len, "%.*s", (int)n, p);
			return bad;
		}
		if (!p[n])
			return NULL;
	}
}

/* The generated set: two more cells on cpu 0, four real-time flows between them,
 * messages at most 64 KiB into 64 KiB RX buffers (one piece each, as the analysis
 * assumes; see sc_bound.c). */
static const struct gen_flow {
	const char *from, *to, *type;
	unsigned int size, period_ms;
} gen_flows[] = {
	{ "ga", "gb", "seqpacket", 2048, 2 },	{ "gb", "ga", "stream", 8192, 5 },
	{ "ga", "gb", "seqpacket", 16384, 10 }, { "gb", "ga", "stream", 32768, 20 },
};

static void write_extra(FILE *f)
{
	for (int c = 0; c < 2; c++)
		fprintf(f, "\n[cell g%c]\ncid = %d\nregion = 16MiB\nrx_buf = 64KiB\ncpu = %d\n"
			   "rt_priority = %d\n", 'a' + c, 10 + c, CELL_CPU, RT_PRIO);
	for (size_t i = 0; i < sizeof(gen_flows) / sizeof(gen_flows[0]); i++) {
		const struct gen_flow *g = &gen_flows[i];

		fprintf(f, "\n[flow g%zu]\nfrom = %s\nto = %s:%zu\ntype = %s\nsize = %u\n"
			   "period = %ums\njitter = 200us\n", i + 1, g->from, g->to, 1101 + i,
			g->type, g->size, g->period_ms);
	}
	fprintf(f, "\n[cell hostile]\ncid = %d\nregion = 8MiB\ncpu = %d\n"
		   "\n[cell helper]\ncid = %d\nregion = 8MiB\ncpu = %d\n"
		   "\n[flow tohostile]\nfrom = helper\nto = hostile:900\ntype = stream\n"
		   "size = 4KiB\nclass = best-effort\n"
		   "\n[flow big]\nfrom = hostile\nto = helper:901\ntype = seqpacket\nsize = 64\n"
		   "period = 1ms\n", HOSTILE_CID, CELL_CPU, HELPER_CID, CELL_CPU);
}

/* demo.conf with a sleeping SCHED_FIFO broker, scratch socket_dir and the platform
 * plat, plus the generated set and the hostile pair. *victim_cid: the control
 * flow's receiver. */
static int hostile_config(struct bench *b, const struct rtvio_platform_cfg *plat, char *path,
			  size_t len, char *sockdir, size_t slen, unsigned long long *victim_cid)
{
	struct rtvio_config cfg;
	char err[512];
	FILE *f;
	int rc = 0;

	if (rtvio_config_load(bench_demo_conf(), &cfg, err, sizeof(err)))
		return -ENOENT;
	snprintf(path, len, "%s/hostile.conf", b->tmp);
	snprintf(cfg.broker.socket_dir, sizeof(cfg.broker.socket_dir), "%s/hostile", b->tmp);
	snprintf(sockdir, slen, "%s", cfg.broker.socket_dir);
	cfg.broker.poll = false;
	cfg.broker.rt_priority = BROKER_SLEEP_PRIO;
	cfg.platform = *plat;
	cfg.platform.present = RTVIO_PLAT_ALL;
	*victim_cid = 0;
	for (int i = 0; i < cfg.ncells; i++)
		if (!strcmp(cfg.cells[i].name, VICTIM_CELL))
			*victim_cid = (unsigned long long)cfg.cells[i].cid;
	f = fopen(path, "w");
	if (!f || rtvio_config_dump(&cfg, f))
		rc = -EIO;
	if (f) {
		write_extra(f);
		if (fclose(f))
			rc = -EIO;
	}
	rtvio_config_free(&cfg);
	return rc;
}

/* One run: the hostile cell idle (mode NULL) or running mode. */
static json_t *hostile_run(const char *conf, const char *sockdir, const char *mode,
			   unsigned long long victim_cid, double dur, json_t *viol)
{
	static const char *const pair[] = { "hostile", "helper", NULL };
	char cmd[1024], vcid[24];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct bench_extra x = { .argv = mode ? argv : NULL, .cells = pair, .lead_ms = 500 };
	json_t *r;

	snprintf(vcid, sizeof(vcid), "%llu", victim_cid);
	/* On the cells' core, at ordinary priority: it competes with the victims' bulk
	 * threads, not with their SCHED_FIFO ones nor with the broker. */
	snprintf(cmd, sizeof(cmd), "exec taskset -c %d '%s' hostile %s '%s' hostile %d helper "
		 "%s %s %.0f", CELL_CPU, proc_self_exe(), mode ? mode : "-", sockdir, HOSTILE_CID,
		 vcid, VICTIM_PORT, dur + 30);
	r = bench_bound_run_with(mode ? mode : "unloaded", conf, dur, viol, &x);
	json_object_set_new(r, "mode", json_string(mode ? mode : "none"));
	if (mode)
		json_object_set_new(r, "hostile", json_string(x.said[0] ? x.said
									: "(printed nothing)"));
	return r;
}

static void hostile_describe(json_t *sc)
{
	json_object_set_new(sc, "conditions", json_string(
		"configs/demo.conf (its broker made a SCHED_FIFO 80 sleeper on cpu 1, as in the "
		"bound scenario) plus a generated set (cells ga and gb on cpu 0, four real-time "
		"flows of 2 to 32 KiB every 2 to 20 ms, 64 KiB RX buffers) plus the hostile pair: "
		"cell hostile (CID 20) and its well-behaved helper (CID 21), both driven by one "
		"`rtvio hostile` process pinned to cpu 0 at ordinary priority, with two declared "
		"flows (helper -> hostile:900 best-effort stream, hostile -> helper:901 SEQPACKET "
		"64 B every 1 ms). The first run leaves the pair idle; then one run per "
		"misbehaviour of `rtvio hostile` (its storms aimed at the control flow's "
		"receiver and port), then `all`. Every run judges each victim flow as the bound "
		"scenario does: the receiver's maximum one-way latency against `rtvio "
		"analyze`'s end-to-end bound, the broker's maximum residence against R, lost and "
		"corrupt messages, and any message over its bound attributed to host stalls by "
		"the probes or left unexplained."));
	json_object_set_new(sc, "reading", json_string(
		"Next to each misbehaviour, the victims' worst latency should stay within its "
		"bound and near the unloaded run, with nothing lost or corrupt; an 'unexplained' "
		"violation is the hostile cell reaching the victims. The hostile column is "
		"`rtvio hostile`'s own count: how often it attached, how often the broker cut it "
		"off (the broker's log names why), how many packets it got in."));
}

int bench_scenario_hostile(struct bench *b)
{
	json_t *sc = json_object(), *runs = json_array(), *viol = json_array();
	char conf[160], sockdir[160];
	double dur = b->quick ? 2 : 4;
	struct rtvio_platform_cfg plat;
	unsigned long long victim_cid;
	int ran = 0;

	bench_set_platform(sc, bench_bound_platform(b, false, &plat), &plat);
	if (hostile_config(b, &plat, conf, sizeof(conf), sockdir, sizeof(sockdir), &victim_cid)) {
		json_object_set_new(sc, "status", json_string("configs/demo.conf not loadable"));
	} else {
		for (int i = -1; i < (int)NMODES && !rtvio_stop_requested; i++) {
			const char *mode = i < 0 ? NULL : modes[i];

			if (mode && b->hostile_modes && !listed(b->hostile_modes, mode))
				continue;
			b->step++;
			bench_progress(b, "hostile: %s", mode ? mode : "unloaded");
			json_array_append_new(runs, hostile_run(conf, sockdir, mode, victim_cid, dur,
								viol));
			ran++;
		}
	}
	json_object_set_new(sc, "runs_detail", runs);
	json_object_set_new(sc, "violations", viol);
	hostile_describe(sc);
	json_object_set(json_object_get(b->res, "scenarios"), "hostile", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}
