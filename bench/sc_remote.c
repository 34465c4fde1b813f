/* `rtvio bench remote`: a 64 B control flow across two brokers joined by their DDS
 * gateways (docs/gateway.md) on loopback, next to the same flow through one broker,
 * next to plain Cyclone DDS between two processes (its own `ddsperf`, ping/pong), and
 * the remote control flow next to a remote bulk flow under fp and fifo. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"

#include "bench.h"
#include "runner.h"

#define RM_CTL_PORT 1000
#define RM_BULK_PORT 3000
#define RM_BULK_SIZE (64u << 10)
/* A DDS domain of its own: the gateway demo uses 7, the gateway test its own. */
#define RM_DOMAIN 113
#define RM_DOMAIN_S "113"
/* DDS discovery between the two gateways (or ddsperf's two participants). */
#define RM_DISCOVERY_US 2500000
enum { A_SENSOR = 3, A_LOGGER, A_GW };
enum { B_GW = 3, B_CONTROLLER, B_SINK };

/* Cyclone's configuration of the gateways ([remote] peers = 127.0.0.1), given to
 * ddsperf too so that both DDS runs use the same transport: unicast on loopback. */
static const char dds_xml[] =
	"<CycloneDDS><Domain id=\"any\"><General><Interfaces><NetworkInterface "
	"address=\"127.0.0.1\"/></Interfaces><AllowMulticast>false</AllowMulticast></General>"
	"<Discovery><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>30"
	"</MaxAutoParticipantIndex><Peers><Peer address=\"127.0.0.1\"/></Peers></Discovery>"
	"</Domain></CycloneDDS>";

/* One side's config. Side a: sensor and logger send, gw carries to broker b. Side b:
 * gw delivers to controller and sink. */
static void remote_config(const char *sockdir, const char *policy, bool a, bool bulk, char *buf,
			  size_t len)
{
	const char *far = a ? "b" : "a";
	int n;

	n = snprintf(buf, len,
		     "[broker]\npolicy = %s\nchunk = 4KiB\nsocket_dir = %s\ncpu = %d\n"
		     "rt_priority = %d\npoll = no\ndefault = deny\n\n"
		     "[cell %s]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		     "[cell %s]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		     "[cell gw]\ncid = %d\nregion = 16MiB\n\n"
		     "[remote %s]\ngateway = gw\ndomain = %d\npeers = 127.0.0.1\n"
		     "network_budget = 2ms\n\n"
		     "[flow control]\nfrom = %s\nto = %s\ntype = stream\nsize = 64\n"
		     "period = 1ms\npriority = 1\n\n",
		     policy, sockdir, BROKER_CPU, BROKER_SLEEP_PRIO,
		     a ? "sensor" : "controller", a ? A_SENSOR : B_CONTROLLER, CELL_CPU,
		     a ? "logger" : "sink", a ? A_LOGGER : B_SINK, CELL_CPU, a ? A_GW : B_GW,
		     far, RM_DOMAIN, a ? "sensor" : "a/sensor",
		     a ? "b/controller:1000" : "controller:1000");
	if (bulk && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n,
			 "[flow bulk]\nfrom = %s\nto = %s\ntype = stream\nsize = %u\n"
			 "class = best-effort\n",
			 a ? "logger" : "a/logger", a ? "b/sink:3000" : "sink:3000", RM_BULK_SIZE);
}

/* Whether `chrt -f` works here: the gateways and ddsperf then run at the control
 * peers' SCHED_FIFO priority on their cpu, as a deployment would run them. */
static bool chrt_works(void)
{
	return system("chrt -f 1 true >/dev/null 2>&1") == 0;
}

/* argv for `chrt -f RT_PRIO taskset -c CELL_CPU CMD...` (or CMD alone). */
static void rt_argv(const char **argv, size_t cap, bool rt, const char *const cmd[])
{
	static char prio[8], cpu[8];
	size_t n = 0;

	snprintf(prio, sizeof(prio), "%d", RT_PRIO);
	snprintf(cpu, sizeof(cpu), "%d", CELL_CPU);
	if (rt) {
		const char *pre[] = { "chrt", "-f", prio, "taskset", "-c", cpu };

		for (size_t i = 0; i < 6; i++)
			argv[n++] = pre[i];
	}
	for (size_t i = 0; cmd[i] && n + 1 < cap; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
}

static int gateway_start(struct proc *p, const char *conf, const char *remote, bool rt)
{
	const char *cmd[] = { proc_self_exe(), "gateway", conf, remote, "--json", NULL };
	const char *argv[16];

	rt_argv(argv, 16, rt, cmd);
	bench_proc_blank(p);
	return proc_start(p, argv, PROC_CAPTURE);
}

/* The gateway's per-flow document after SIGTERM (null when it printed none), and
 * how it ended, into r under key and key_exit. */
static void gateway_stop(struct proc *p, json_t *r, const char *key)
{
	json_t *doc = NULL;
	char st[64], k[64];

	if (p->pid) {
		proc_stop(p, SIGTERM, 5000);
		doc = p->out ? json_loads(p->out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
		snprintf(k, sizeof(k), "%s_exit", key);
		json_object_set_new(r, k, json_string(proc_status_str(p, st, sizeof(st))));
		p->pid = 0;
	}
	if (!json_object_get(r, key))
		json_object_set_new(r, key, doc ? doc : json_null());
	else
		json_decref(doc);
	proc_free(p);
}

/* Stalls the probes saw in [t0, t1), into r. */
static void add_stalls(struct probes *pr, uint64_t t0, uint64_t t1, json_t *r)
{
	json_t *st = json_object(), *c;
	const char *k;
	json_int_t n = 0;
	double longest;

	bench_probes_stop(pr);
	longest = bench_probes_window(pr, t0, t1, st);
	json_object_foreach(st, k, c)
		n += json_integer_value(json_object_get(c, "stalls"));
	json_object_set_new(r, "stalls", json_integer(n));
	json_object_set_new(r, "longest_stall_us", longest >= 0 ? json_real(longest) : json_null());
	json_object_set_new(r, "stalls_per_cpu", st);
	bench_probes_free(pr);
}

/* The control flow through one broker (the isolation scenario's set-up, fp). */
static json_t *run_local(struct bench *b)
{
	struct broker brk = { 0 };
	struct probes pr;
	char text[4096];
	uint64_t t0, t1;
	json_t *r;

	snprintf(brk.sockdir, sizeof(brk.sockdir), "%s/remote-local", b->tmp);
	bench_iso_config(brk.sockdir, "fp", "0", text, sizeof(text));
	if (bench_broker_start(b, &brk, "remote-local", text)) {
		bench_broker_stop(&brk);
		r = json_object();
		json_object_set_new(r, "status", json_string("the broker did not start"));
		return r;
	}
	bench_probes_start(&pr);
	t0 = rtvio_now_ns();
	r = bench_iso_run(b, ISO_RTVIO, brk.sockdir, false, brk.p.pid);
	t1 = rtvio_now_ns();
	add_stalls(&pr, t0, t1, r);
	bench_broker_stop(&brk);
	return r;
}

struct side {
	struct broker brk;
	struct proc gw;
};

static int side_start(struct bench *b, struct side *s, const char *policy, bool a, bool bulk,
		      bool rt)
{
	char text[4096], name[64];

	snprintf(name, sizeof(name), "remote-%s-%s%s", policy, a ? "a" : "b", bulk ? "-bulk" : "");
	snprintf(s->brk.sockdir, sizeof(s->brk.sockdir), "%s/%s", b->tmp, name);
	mkdir(s->brk.sockdir, 0700);
	remote_config(s->brk.sockdir, policy, a, bulk, text, sizeof(text));
	bench_proc_blank(&s->gw);
	if (bench_broker_start(b, &s->brk, name, text))
		return -ECHILD;
	return gateway_start(&s->gw, s->brk.conf, a ? "b" : "a", rt);
}

/* Stops the side's gateway (when still running) and broker; records how each ended. */
static void side_stop(struct side *s, json_t *r, const char *key)
{
	char st[64], k[64];

	gateway_stop(&s->gw, r, key);
	if (s->brk.p.pid) {
		proc_stop(&s->brk.p, SIGTERM, 5000);
		snprintf(k, sizeof(k), "broker_%c_exit", key[strlen(key) - 1]);
		json_object_set_new(r, k, json_string(proc_status_str(&s->brk.p, st, sizeof(st))));
	}
	proc_free(&s->brk.p);
}

/* Bytes broker b has delivered on flow `name` so far, or -1. */
static double flow_bytes(const char *sockdir, const char *name)
{
	json_t *doc = bench_stat_doc(sockdir), *f = bench_stat_flow(doc, name);
	double v = json_is_integer(json_object_get(f, "bytes"))
			   ? (double)json_integer_value(json_object_get(f, "bytes")) : -1;

	json_decref(doc);
	return v;
}

/* The bulk pair's end: its sender stops at its duration; the receiver's connection
 * from gateway b never ends by itself (samples carry no end of stream), so gateway b
 * is stopped first, which closes it. Then the receiver reports. */
static void bulk_finish(struct side *sb, struct pair *bp, uint64_t dur_ns, json_t *r)
{
	json_t *bres, *v;

	proc_wait(&bp->s, (int)(dur_ns / 1000000) + 10000);
	gateway_stop(&sb->gw, r, "gateway_b");
	bres = bench_pair_finish(bp, 10000);
	json_object_set_new(r, "bulk_status",
			    json_string(bres ? json_string_value(json_object_get(bres, "status"))
					     : "no result"));
	v = json_object_get(bres, "corrupt");
	json_object_set_new(r, "bulk_corrupt", v ? json_copy(v) : json_null());
	v = json_object_get(bres, "lost");
	json_object_set_new(r, "bulk_lost", v ? json_copy(v) : json_null());
	json_decref(bres);
}

/* The control flow (and the bulk flow) across the two brokers and their gateways.
 * The bulk rate is what broker b delivered to the sink while the control flow ran. */
static json_t *remote_flows(struct bench *b, struct side *sa, struct side *sb, bool bulk)
{
	uint64_t count = b->quick ? 1000 : 5000, period = 1000000;
	uint64_t bulk_dur = count * period + 1500000000ull;
	char cr[256], cs[256], br[256], bs[256];
	struct peer_cmd crc, csc, brc, bsc;
	struct pair bp;
	double by0 = -1, by1 = -1, w0, w1;
	json_t *r;

	snprintf(cr, sizeof(cr), "%s/controller.sock", sb->brk.sockdir);
	snprintf(cs, sizeof(cs), "%s/sensor.sock", sa->brk.sockdir);
	snprintf(br, sizeof(br), "%s/sink.sock", sb->brk.sockdir);
	snprintf(bs, sizeof(bs), "%s/logger.sock", sa->brk.sockdir);
	/* The sender connects to the gateway cell of its broker on the flow's port. */
	bench_peer_cmd(&crc, false, "rtvio", cr, 64, count, period, 0, RM_CTL_PORT, B_CONTROLLER,
		       RT_PRIO, false);
	bench_peer_cmd(&csc, true, "rtvio", cs, 64, count, period, 0, RM_CTL_PORT, A_GW, RT_PRIO,
		       false);
	bench_peer_cmd(&brc, false, "rtvio", br, RM_BULK_SIZE, 0, 0, bulk_dur, RM_BULK_PORT, B_SINK,
		       0, true);
	bench_peer_cmd(&bsc, true, "rtvio", bs, RM_BULK_SIZE, 0, 0, bulk_dur, RM_BULK_PORT, A_GW, 0,
		       true);
	if (bulk) {
		bench_pair_start(&bp, brc.argv, bsc.argv);
		usleep(300000);
		by0 = flow_bytes(sb->brk.sockdir, "bulk");
	}
	w0 = (double)rtvio_now_ns() / 1e9;
	r = bench_run_pair(crc.argv, csc.argv, (int)(count * period / 1000000) + 20000);
	w1 = (double)rtvio_now_ns() / 1e9;
	if (!r) {
		r = json_object();
		json_object_set_new(r, "status", json_string("no result"));
	}
	json_object_del(r, "bytes");
	if (bulk) {
		by1 = flow_bytes(sb->brk.sockdir, "bulk");
		json_object_set_new(r, "bulk_gbps", by0 >= 0 && by1 >= by0 && w1 > w0
					    ? json_real((by1 - by0) / (w1 - w0) / 1e9) : json_null());
		bulk_finish(sb, &bp, bulk_dur, r);
	}
	return r;
}

static json_t *run_remote(struct bench *b, const char *policy, bool bulk, bool rt)
{
	struct side sa = { 0 }, sb = { 0 };
	struct probes pr;
	uint64_t t0, t1;
	json_t *r;

	if (side_start(b, &sb, policy, false, bulk, rt) ||
	    side_start(b, &sa, policy, true, bulk, rt)) {
		r = json_object();
		json_object_set_new(r, "status", json_string("a broker or gateway did not start"));
	} else {
		usleep(RM_DISCOVERY_US);
		bench_probes_start(&pr);
		t0 = rtvio_now_ns();
		r = remote_flows(b, &sa, &sb, bulk);
		t1 = rtvio_now_ns();
		add_stalls(&pr, t0, t1, r);
	}
	side_stop(&sa, r, "gateway_a");
	side_stop(&sb, r, "gateway_b");
	return r;
}

/* ---- plain Cyclone DDS: ddsperf ping/pong --------------------------------------------- */

static bool in_path(const char *prog)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

static json_t *run_ddsperf(struct bench *b, bool rt, json_t *un)
{
	unsigned secs = b->quick ? 2 : 5;
	char dping[16], dpong[16];
	const char *pong_cmd[] = { "ddsperf", "-D", dpong, "-i", RM_DOMAIN_S, "pong", NULL };
	const char *ping_cmd[] = { "ddsperf", "-D", dping, "-i", RM_DOMAIN_S, "-Qminmatch:1",
				   "-Qinitwait:10", "ping", "1000Hz", "size", "64", NULL };
	const char *argv[24];
	struct proc pong, ping;
	struct probes pr;
	uint64_t t0, t1;
	json_t *r = json_object();
	char st[64];

	snprintf(dping, sizeof(dping), "%u", secs);
	snprintf(dpong, sizeof(dpong), "%u", secs + 15);
	bench_proc_blank(&pong);
	bench_proc_blank(&ping);
	setenv("CYCLONEDDS_URI", dds_xml, 1);
	rt_argv(argv, 24, rt, pong_cmd);
	if (proc_start(&pong, argv, PROC_CAPTURE) == 0) {
		rt_argv(argv, 24, rt, ping_cmd);
		bench_probes_start(&pr);
		t0 = rtvio_now_ns();
		if (proc_start(&ping, argv, PROC_CAPTURE) == 0)
			proc_wait(&ping, (int)(secs + 20) * 1000);
		t1 = rtvio_now_ns();
		add_stalls(&pr, t0, t1, r);
	}
	unsetenv("CYCLONEDDS_URI");
	proc_stop(&ping, SIGTERM, 2000);
	proc_stop(&pong, SIGTERM, 2000);
	if (!ping.out || bench_ddsperf_parse(ping.out, r)) {
		snprintf(b->peer_failed, sizeof(b->peer_failed), "ddsperf ran but reported no "
			 "round trips (%s)", proc_status_str(&ping, st, sizeof(st)));
		json_object_set_new(un, "ddsperf", json_string(b->peer_failed));
		json_object_set_new(r, "status", json_string("no round trips"));
	} else {
		json_object_set_new(r, "status", json_string("ok"));
	}
	proc_free(&ping);
	proc_free(&pong);
	return r;
}

/* ---- the scenario ---------------------------------------------------------------------- */

static void remote_describe(json_t *sc)
{
	json_object_set_new(sc, "conditions", json_string(
		"A 64 B control message every 1 ms (stream, real-time, priority 1; SCHED_FIFO 50 "
		"sender and receiver on cpu 0). local: one broker (the isolation scenario's "
		"set-up, fp). remote: two brokers on cpu 1 (SCHED_FIFO 80, sleeping on kicks), "
		"the sender a cell of broker a, the receiver a cell of broker b, each broker's "
		"gateway cell (`rtvio gateway`) carrying the flow over Cyclone DDS on loopback "
		"(unicast, RELIABLE, KEEP_LAST); the gateways run at SCHED_FIFO 50 on cpu 0 "
		"when chrt works. remote + bulk: a best-effort stream of 64 KiB messages sent "
		"back to back from another cell of broker a to one of broker b through the same "
		"gateways, starting 0.3 s before the control flow, under fp and under fifo on "
		"both brokers. ddsperf: Cyclone DDS's own ping/pong between two processes with "
		"the gateways' DDS settings, 64 B at 1 kHz, SCHED_FIFO 50 on cpu 0; it prints "
		"round trips per second, so its row is half the round trip: the smallest min, "
		"the median of the per-second medians and the largest per-second p99 and max. "
		"stalls: intervals over 300 us in which the probe threads (SCHED_FIFO 99, one "
		"per cpu) did not run, i.e. this VM was preempted by its host."));
	json_object_set_new(sc, "reading", json_string(
		"remote minus local is what the two gateways and DDS add to one hop: two more "
		"processes to wake, a DDS write, loopback UDP and a DDS take, then a second "
		"broker. ddsperf is the floor for that DDS part alone (half a round trip between "
		"two processes, no broker, no gateway). Under fp each broker serves the control "
		"flow ahead of the bulk flow chunk by chunk, but the gateways and DDS carry both "
		"flows through one participant and one loopback socket: the bulk flow's tail "
		"effect there is what fp on the brokers cannot remove. Under fifo a control "
		"message also queues behind bulk data in both brokers. A max well above p99 "
		"with stalls counted in the same run is the host, not rtvio."));
}

int bench_scenario_remote(struct bench *b)
{
	static const struct { const char *label, *policy; bool bulk; } runs_def[] = {
		{ "remote fp", "fp", false },
		{ "remote fp + bulk", "fp", true },
		{ "remote fifo + bulk", "fifo", true },
	};
	json_t *sc = json_object(), *runs = json_array(), *un = json_object(), *r;
	bool rt = chrt_works();
	int ran = 0;

	b->step++;
	bench_progress(b, "remote: local");
	r = run_local(b);
	bench_iso_add(runs, r, "local fp", false);
	ran++;
	for (size_t i = 0; i < sizeof(runs_def) / sizeof(runs_def[0]) && !rtvio_stop_requested;
	     i++) {
		b->step++;
		bench_progress(b, "remote: %s", runs_def[i].label);
		r = run_remote(b, runs_def[i].policy, runs_def[i].bulk, rt);
		bench_iso_add(runs, r, runs_def[i].label, runs_def[i].bulk);
		ran++;
	}
	if (!rtvio_stop_requested) {
		b->step++;
		bench_progress(b, "remote: ddsperf");
		if (!in_path("ddsperf")) {
			snprintf(b->peer_failed, sizeof(b->peer_failed),
				 "ddsperf is not installed (Debian's cyclonedds-tools; "
				 "scripts/install-deps)");
			json_object_set_new(un, "ddsperf", json_string(b->peer_failed));
		} else {
			bench_iso_add(runs, run_ddsperf(b, rt, un), "ddsperf ping/pong (half RTT)",
				      false);
			ran++;
		}
	}
	if (!rt)
		bench_note(b, "remote: chrt -f is not permitted here: the gateways and ddsperf "
			      "ran at ordinary priority.");
	json_object_set_new(sc, "runs", runs);
	json_object_set_new(sc, "unavailable", un);
	remote_describe(sc);
	json_object_set(json_object_get(b->res, "scenarios"), "remote", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}
