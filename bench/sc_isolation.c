/* `rtvio bench isolation`: control-flow latency with and without a bulk flow
 * beside it, through rtvio (fp, edf, fifo), a Unix-socket relay and iceoryx. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "clock.h"

#include "runner.h"

#define ISO_CTL_PORT 1000
#define ISO_BULK_PORT 3000
#define ISO_BULK_SIZE (1u << 20)
enum { SENSOR_CID = 3, CONTROLLER_CID, LOGGER_CID, SINK_CID };

void bench_iso_config(const char *sockdir, const char *policy, const char *budget, char *buf,
		      size_t len)
{
	snprintf(buf, len,
		"[broker]\npolicy = %s\nchunk = 4KiB\nsocket_dir = %s\ncpu = %d\n"
		"rt_priority = %d\npoll = no\ndefault = deny\nregulation_budget = %s\n"
		"regulation_period = 1ms\n\n"
		"[cell sensor]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		"[cell controller]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		"[cell logger]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		"[cell sink]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		"[flow control]\nfrom = sensor\nto = controller:%d\ntype = stream\nsize = 64\n"
		"period = 1ms\npriority = 1\n\n[workload wc]\nflow = control\npattern = off\n\n"
		"[flow bulk]\nfrom = logger\nto = sink:%d\ntype = stream\nsize = %u\n"
		"class = best-effort\n\n[workload wb]\nflow = bulk\npattern = off\n",
		policy, sockdir, BROKER_CPU, BROKER_SLEEP_PRIO, budget, SENSOR_CID, CELL_CPU,
		CONTROLLER_CID, CELL_CPU, LOGGER_CID, CELL_CPU, SINK_CID, CELL_CPU, ISO_CTL_PORT,
		ISO_BULK_PORT, ISO_BULK_SIZE);
}

/* The broker's cumulative policing count for flow `name`, or -1. */
static long long stat_policed(const char *sockdir, const char *name)
{
	json_t *doc = bench_stat_doc(sockdir), *f = bench_stat_flow(doc, name);
	long long v = json_is_integer(json_object_get(f, "policed"))
			      ? json_integer_value(json_object_get(f, "policed")) : -1;

	json_decref(doc);
	return v;
}

/* One control-latency run, with or without a bulk flow beside it. The endpoints
 * are chosen by kind; dir is the broker's socket_dir or the relay's directory. */
json_t *bench_iso_run(struct bench *b, enum iso_kind kind, const char *dir, bool bulk,
		      pid_t hub)
{
	uint64_t count = b->quick ? 1000 : 5000, period = 1000000;
	uint64_t bulk_dur = count * period + 1500000000ull;
	char cr[256], cs[256], br[256], bs[256];
	const char *tr = kind == ISO_RTVIO ? "rtvio" : kind == ISO_RELAY ? "unix-stream" : "iceoryx";
	struct peer_cmd crc, csc, brc, bsc;
	struct pair bp;
	json_t *r, *bres = NULL;
	double c0, c1, w0, w1;
	long long pol0, pol1;

	if (kind == ISO_RTVIO) {
		snprintf(cr, sizeof(cr), "%s/controller.sock", dir);
		snprintf(cs, sizeof(cs), "%s/sensor.sock", dir);
		snprintf(br, sizeof(br), "%s/sink.sock", dir);
		snprintf(bs, sizeof(bs), "%s/logger.sock", dir);
	} else {
		snprintf(cr, sizeof(cr), "%s/ctl.out", dir);
		snprintf(cs, sizeof(cs), "%s/ctl.in", dir);
		snprintf(br, sizeof(br), "%s/bulk.out", dir);
		snprintf(bs, sizeof(bs), "%s/bulk.in", dir);
	}
	bench_peer_cmd(&crc, false, tr, cr, 64, count, period, 0, ISO_CTL_PORT, CONTROLLER_CID,
		 RT_PRIO, false);
	bench_peer_cmd(&csc, true, tr, cs, 64, count, period, 0, ISO_CTL_PORT, CONTROLLER_CID,
		 RT_PRIO, false);
	bench_peer_cmd(&brc, false, tr, br, ISO_BULK_SIZE, 0, 0, bulk_dur, ISO_BULK_PORT, SINK_CID, 0,
		 true);
	bench_peer_cmd(&bsc, true, tr, bs, ISO_BULK_SIZE, 0, 0, bulk_dur, ISO_BULK_PORT, SINK_CID, 0,
		 true);
	if (bulk) {
		bench_pair_start(&bp, brc.argv, bsc.argv);
		/* Let the bulk flow fill the queues before the control flow starts. */
		usleep(300000);
	}
	pol0 = kind == ISO_RTVIO ? stat_policed(dir, "control") : -1;
	c0 = hub > 0 ? bench_proc_cpu_s(hub) : -1;
	w0 = (double)rtvio_now_ns() / 1e9;
	r = bench_run_pair(crc.argv, csc.argv, (int)(count * period / 1000000) + 20000);
	c1 = hub > 0 ? bench_proc_cpu_s(hub) : -1;
	w1 = (double)rtvio_now_ns() / 1e9;
	pol1 = kind == ISO_RTVIO ? stat_policed(dir, "control") : -1;
	if (bulk)
		bres = bench_pair_finish(&bp, (int)(bulk_dur / 1000000) + 10000);
	if (!r) {
		r = json_object();
		json_object_set_new(r, "status", json_string("no result"));
	}
	json_object_del(r, "bytes");
	if (pol0 >= 0 && pol1 >= pol0)
		json_object_set_new(r, "control_policed", json_integer(pol1 - pol0));
	if (c0 >= 0 && c1 >= 0)
		json_object_set_new(r, "broker_cpu_pct", json_real(100 * (c1 - c0) / (w1 - w0)));
	if (bulk) {
		json_t *g = json_object_get(bres, "gbps");

		json_object_set_new(r, "bulk_gbps", json_is_number(g) ? json_copy(g) : json_null());
		json_object_set_new(r, "bulk_status",
				    json_string(bres ? json_string_value(json_object_get(bres, "status"))
						     : "no result"));
		json_object_set_new(r, "bulk_corrupt", json_copy(json_object_get(bres, "corrupt")));
	}
	json_decref(bres);
	return r;
}

void bench_iso_add(json_t *runs, json_t *r, const char *label, bool bulk)
{
	json_object_set_new(r, "label", json_string(label));
	json_object_set_new(r, "bulk", json_boolean(bulk));
	json_array_append_new(runs, r);
}

static void iso_describe(json_t *sc)
{
	json_object_set_new(sc, "conditions", json_string(
		"A 64 B control message every 1 ms (SCHED_FIFO 50 sender and receiver on cpu 0), "
		"alone and next to a bulk flow of 1 MiB messages sent back to back between two "
		"other processes on cpu 0 at ordinary priority (it starts 0.3 s before the "
		"control flow and outlasts it). rtvio: four process cells (control "
		"sensor->controller, real-time, priority 1; bulk logger->sink, best-effort), a "
		"broker on cpu 1 sleeping on kicks at SCHED_FIFO 80, chunk 4 KiB, policy fp, edf "
		"or fifo. unix relay: one process on cpu 1 at SCHED_FIFO 80 that forwards every "
		"connection's bytes in one poll() loop (read up to 64 KiB, write it all on), as "
		"a user would build a broker from Unix sockets. iceoryx: publish/subscribe "
		"through shared memory with RouDi, receivers waiting in a WaitSet; no broker on "
		"the data path. Broker CPU is the broker's (or relay's) utime+stime over the "
		"control run."));
	json_object_set_new(sc, "reading", json_string(
		"The question is how much the bulk flow moves the control flow's distribution. "
		"Under fp and edf the broker copies bulk data in 4 KiB chunks and looks for "
		"control work between chunks, so a control message waits for at most one chunk "
		"plus whatever the shared cpu 0 adds (the bulk processes run there too, below the "
		"control threads). Under fifo, and in the relay, a control message queues behind "
		"bulk data already accepted. iceoryx has no hop to queue in, but gives no "
		"isolation either: every process maps the shared segment, and a bulk publisher "
		"can exhaust the mempool others loan from. The CDF's right end (p99.9, max) "
		"includes host preemptions of this VM; the `bound` scenario of a later version "
		"separates them with the gap probe."));
}

/* The control flow alone and next to the bulk flow, labelled "NAME" and "NAME + bulk".
 * Returns how many ran. */
static int iso_pair(struct bench *b, json_t *runs, enum iso_kind kind, const char *dir,
		    pid_t hub, const char *name)
{
	char label[64];
	int ran = 0;

	for (int bulk = 0; bulk < 2 && !rtvio_stop_requested; bulk++) {
		b->step++;
		snprintf(label, sizeof(label), "%s%s", name, bulk ? " + bulk" : "");
		bench_progress(b, "isolation: %s", label);
		bench_iso_add(runs, bench_iso_run(b, kind, dir, bulk, hub), label, bulk);
		ran++;
	}
	return ran;
}

static int iso_rtvio(struct bench *b, json_t *runs, json_t *un)
{
	static const char *const policies[] = { "fp", "edf", "fifo" };
	char text[4096], label[64];
	int ran = 0;

	for (size_t p = 0; p < 3 && !rtvio_stop_requested; p++) {
		struct broker brk = { 0 };

		snprintf(brk.sockdir, sizeof(brk.sockdir), "%s/iso-%s", b->tmp, policies[p]);
		bench_iso_config(brk.sockdir, policies[p], "0", text, sizeof(text));
		snprintf(label, sizeof(label), "rtvio %s", policies[p]);
		if (bench_broker_start(b, &brk, policies[p], text)) {
			bench_broker_stop(&brk);
			b->step += 2;
			json_object_set_new(un, label, json_string("the broker did not start"));
			continue;
		}
		ran += iso_pair(b, runs, ISO_RTVIO, brk.sockdir, brk.p.pid, label);
		bench_broker_stop(&brk);
	}
	return ran;
}

/* The relay a user would write, on the broker's core at the broker's priority. */
static int iso_relay(struct bench *b, json_t *runs, json_t *un)
{
	char dir[160], cpu[8], prio[8];
	const char *argv[] = { proc_self_exe(), "bench", "relay", dir, cpu, prio, "ctl",
			       "bulk", NULL };
	struct proc hub;
	int ran = 0;

	snprintf(dir, sizeof(dir), "%s/relay", b->tmp);
	mkdir(dir, 0700);
	snprintf(cpu, sizeof(cpu), "%d", BROKER_CPU);
	snprintf(prio, sizeof(prio), "%d", BROKER_SLEEP_PRIO);
	bench_proc_blank(&hub);
	if (proc_start(&hub, argv, 1) == 0) {
		for (int w = 0; w < 5000 && !(hub.out && strstr(hub.out, "ready")); w += 50)
			proc_drain(&hub, 50);
		ran = iso_pair(b, runs, ISO_RELAY, dir, hub.pid, "unix relay");
		proc_stop(&hub, SIGTERM, 3000);
	} else {
		json_object_set_new(un, "unix relay", json_string("could not start"));
	}
	proc_free(&hub);
	return ran;
}

static int iso_iceoryx(struct bench *b, json_t *runs, json_t *un)
{
	char why[256];
	struct proc roudi;
	int ran = 0;

	if (!rtvio_stop_requested && bench_roudi_start(b, &roudi, why, sizeof(why)) == 0) {
		ran = iso_pair(b, runs, ISO_IOX, "iceoryx", 0, "iceoryx");
		proc_stop(&roudi, SIGINT, 5000);
		proc_free(&roudi);
	} else if (!rtvio_stop_requested) {
		json_object_set_new(un, "iceoryx", json_string(why));
		b->step += 2;
	}
	return ran;
}

int bench_scenario_isolation(struct bench *b)
{
	json_t *sc = json_object(), *runs = json_array(), *un = json_object();
	int ran = 0;

	ran += iso_rtvio(b, runs, un);
	ran += iso_relay(b, runs, un);
	ran += iso_iceoryx(b, runs, un);
	json_object_set_new(sc, "runs", runs);
	json_object_set_new(sc, "unavailable", un);
	iso_describe(sc);
	json_object_set(json_object_get(b->res, "scenarios"), "isolation", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}
