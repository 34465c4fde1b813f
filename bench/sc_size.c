/* `rtvio bench size`: one-way latency and throughput of every transport, 64 B to
 * 1 MiB, each through the same sender and receiver loops (bench/peer.c). */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "stop.h"

#include "bench.h"
#include "runner.h"

enum { TR_RTVIO_POLL, TR_RTVIO_SLEEP, TR_RTVIO_ZC, TR_RTVIO_POLL_CELLS, TR_UNIX_STREAM,
       TR_UNIX_SEQPACKET, TR_PIPE, TR_IOX, TR_IOX_POLL, TR_SHM, TR_SHM_POLL, TR_N };

static const char *const tr_label[TR_N] = {
	"rtvio-poll", "rtvio-sleep", "rtvio-zc", "rtvio-poll-cells", "unix-stream",
	"unix-seqpacket", "pipe", "iceoryx", "iceoryx-poll", "shm-ring", "shm-ring-poll",
};
static const char *const tr_peer[TR_N] = {
	"rtvio", "rtvio", "rtvio-zc", "rtvio-poll-cells", "unix-stream", "unix-seqpacket",
	"pipe", "iceoryx", "iceoryx", "shm", "shm",
};

/* The largest RX buffer the rtvio peers post: a piece is never longer than the
 * sender's packet (max_packet, 64 KiB), and 128 of them fit the 16 MiB region. */
#define RTVIO_RX_BUF_MAX 65536u
/* Spin of a polling receiver in throughput runs: bridges the gap between two
 * back-to-back messages, short against a scheduler slice of the shared core. */
#define TPUT_SPIN_US 50u
/* Receive budget (credit window) of the rtvio peers in throughput runs. The cell's
 * default, 256 KiB like Linux's vsock, holds four 64 KiB packets: the sender then
 * waits for a credit update that travels receiver, broker, sender, and the pipeline
 * drains meanwhile. The Unix-socket peers get a send buffer of twice the message
 * (and the kernel's receive queue besides); a 4 MiB window keeps the rtvio pipeline
 * full up to 1 MiB messages. */
#define TPUT_RCVBUF (4u << 20)
/* The sending cell's allowance: TX chains per budget period (1 ms) beyond what its
 * real-time flows need. With the default of 1 the best-effort bulk flow rides on
 * the real-time flows' share, about 50 chains per period here (3.3 GB/s in 64 KiB
 * packets), and the sender waits for its next period (`budget_waits`) instead of
 * the transport being measured; 256 chains per period is 16 GB/s. */
#define TX_ALLOWANCE 256u
/* Throughput runs per transport and size, each with fresh peers (fresh buffers).
 * On the development VM the rate of one pair moves by 2-3x from run to run: where
 * the host runs the two vCPUs (xcore.c) and where the buffers land (a plain memcpy
 * of 64 KiB pieces between two fresh 16 MiB buffers: 7.0 to 13.9 GB/s). The row is
 * the median run; every run's rate is kept next to it. */
#define TPUT_RUNS 3

static bool tr_rtvio(int tr)
{
	return tr == TR_RTVIO_POLL || tr == TR_RTVIO_SLEEP || tr == TR_RTVIO_ZC ||
	       tr == TR_RTVIO_POLL_CELLS;
}

/* Transports whose waits spin before they sleep: polling cells, subscribers, rings. */
static bool tr_spins(int tr)
{
	return tr == TR_RTVIO_POLL_CELLS || tr == TR_IOX_POLL || tr == TR_SHM_POLL;
}

static bool tr_iox(int tr)
{
	return tr == TR_IOX || tr == TR_IOX_POLL;
}

static bool tr_shm(int tr)
{
	return tr == TR_SHM || tr == TR_SHM_POLL;
}

static const uint64_t sizes_std[] = { 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576 };
static const uint64_t sizes_quick[] = { 64, 4096, 65536, 1048576 };

static uint64_t period_for(uint64_t size)
{
	if (size <= 16384)
		return 1000000;
	if (size <= 65536)
		return 2000000;
	if (size <= 262144)
		return 5000000;
	return 10000000;
}

static uint64_t count_for(const struct bench *b, uint64_t size)
{
	uint64_t cap = b->quick ? 300 : 2000;
	uint64_t span = b->quick ? 500000000ull : 3000000000ull;
	uint64_t n = span / period_for(size);

	return n < cap ? n : cap;
}

static void size_config(const struct bench *b, const char *sockdir, bool poll,
			const uint64_t *sizes, size_t nsizes, char *buf, size_t len)
{
	size_t o = 0;

	(void)b;
	o += (size_t)snprintf(buf + o, len - o,
		"[broker]\npolicy = fp\nchunk = 4KiB\nsocket_dir = %s\ncpu = %d\n"
		"rt_priority = %d\npoll = %s\ndefault = deny\n\n"
		"[cell tx]\ncid = %d\nregion = 16MiB\nrx_buf = %u\ncpu = %d\nallowance = %u\n\n"
		"[cell rx]\ncid = %d\nregion = 16MiB\nrx_buf = %u\ncpu = %d\n\n",
		sockdir, BROKER_CPU, BROKER_SLEEP_PRIO, poll ? "yes" : "no", TX_CID,
		RTVIO_RX_BUF_MAX, CELL_CPU, TX_ALLOWANCE, RX_CID, RTVIO_RX_BUF_MAX, CELL_CPU);
	for (size_t i = 0; i < nsizes && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o,
			"[flow lat%zu]\nfrom = tx\nto = rx:%zu\ntype = stream\nsize = %llu\n"
			"period = %lluns\n\n[workload wlat%zu]\nflow = lat%zu\npattern = off\n\n"
			"[flow tput%zu]\nfrom = tx\nto = rx:%zu\ntype = stream\nsize = %llu\n"
			"class = best-effort\n\n[workload wtput%zu]\nflow = tput%zu\npattern = off\n\n",
			i, 1000 + i, (unsigned long long)sizes[i],
			(unsigned long long)period_for(sizes[i]), i, i,
			i, 2000 + i, (unsigned long long)sizes[i], i, i);
}

/* One latency or throughput run of one transport at one size. */
static json_t *size_run(struct bench *b, int tr, const char *endpoint, uint64_t size,
			size_t idx, bool tput)
{
	uint64_t period = period_for(size), count = count_for(b, size);
	uint64_t dur = b->quick ? 250000000ull : 500000000ull;
	struct peer_cmd rc, sc;
	char rpath[256], spath[256];
	json_t *r;
	/* Latency: both ends SCHED_FIFO like the demo's cells. Throughput: ordinary
	 * scheduling, so that a sender that spins while waiting for its receiver
	 * (iceoryx's WAIT_FOR_CONSUMER) cannot starve it on the shared core. */
	int prio = tput ? 0 : RT_PRIO;
	/* A polling receiver spins through the whole gap to the next message, at
	 * SCHED_FIFO one below the sender on its core: the sender preempts it to send,
	 * and nothing of ordinary priority takes its turn (at ordinary priority it
	 * waits for time slices of whatever else runs on that cpu). In throughput runs
	 * both ends are ordinary. */
	uint64_t spin = tput ? TPUT_SPIN_US : 2 * period / 1000;
	int rprio = tr_spins(tr) ? (tput ? 0 : RT_PRIO - 1) : prio;

	if (tr_rtvio(tr)) {
		snprintf(rpath, sizeof(rpath), "%s/rx.sock", endpoint);
		snprintf(spath, sizeof(spath), "%s/tx.sock", endpoint);
	} else {
		snprintf(rpath, sizeof(rpath), "%s", endpoint);
		snprintf(spath, sizeof(spath), "%s", endpoint);
	}
	bench_peer_cmd(&rc, false, tr_peer[tr], rpath, size, count, period, dur,
		 (tput ? 2000 : 1000) + idx, RX_CID, rprio, tput);
	/* In latency runs only the receiver polls: a SCHED_FIFO sender that spun while
	 * it waits for credit would keep its receiver, below it on the same cpu, from
	 * returning any (1 MiB messages took 160 ms to send that way). */
	bench_peer_cmd(&sc, true, tr == TR_RTVIO_POLL_CELLS && !tput ? "rtvio" : tr_peer[tr],
		       spath, size, count, period, dur, (tput ? 2000 : 1000) + idx, RX_CID,
		       prio, tput);
	if (tr_spins(tr)) {
		bench_peer_cmd_add(&rc, "--spin-us", spin);
		if (tput)
			bench_peer_cmd_add(&sc, "--spin-us", spin);
	}
	if (tr_rtvio(tr)) {
		uint64_t rxb = size < 4096 ? 4096 : size < RTVIO_RX_BUF_MAX ? size : RTVIO_RX_BUF_MAX;

		bench_peer_cmd_add(&rc, "--rx-buf", rxb);
		bench_peer_cmd_add(&sc, "--rx-buf", rxb);
		if (tput) {
			bench_peer_cmd_add(&rc, "--rcvbuf", TPUT_RCVBUF);
			bench_peer_cmd_add(&sc, "--rcvbuf", TPUT_RCVBUF);
		}
	}
	r = bench_run_pair(rc.argv, sc.argv, (int)((tput ? dur : count * period) / 1000000) + 20000);
	if (!r) {
		r = json_object();
		json_object_set_new(r, "status", json_string("no result"));
	}
	json_object_set_new(r, "transport", json_string(tr_label[tr]));
	json_object_set_new(r, "size", json_integer((json_int_t)size));
	if (!tput) {
		json_object_set_new(r, "period_us", json_real((double)period / 1e3));
		json_object_set_new(r, "count", json_integer((json_int_t)count));
	}
	return r;
}

static void size_sizes(const struct bench *b, const uint64_t **sizes, size_t *n)
{
	*sizes = b->quick ? sizes_quick : sizes_std;
	*n = b->quick ? sizeof(sizes_quick) / sizeof(sizes_quick[0])
		      : sizeof(sizes_std) / sizeof(sizes_std[0]);
}

int bench_size_steps(const struct bench *b)
{
	const uint64_t *sizes;
	size_t n;

	size_sizes(b, &sizes, &n);
	return TR_N * (int)n * 2;
}

/* One transport's block of runs: what it needs running (a broker, RouDi) and where
 * its peers meet. */
struct size_block {
	int tr;
	struct xcore *xc;	/* the scenario's cross-core sampler */
	bool rtvio;
	struct broker br;
	struct proc roudi;
	char ep[160];
	double cpu_t0, wall0;	/* the broker's CPU seconds and the time at the start */
};

/* Starts what transport blk->tr needs. Returns 0, or -1 with the reason recorded
 * in un. */
static int size_block_start(struct bench *b, struct size_block *blk, const uint64_t *sizes,
			    size_t nsizes, json_t *un)
{
	char text[16384], why[256];
	int tr = blk->tr;

	if (blk->rtvio) {
		snprintf(blk->br.sockdir, sizeof(blk->br.sockdir), "%s/%s", b->tmp, tr_label[tr]);
		size_config(b, blk->br.sockdir, tr != TR_RTVIO_SLEEP, sizes, nsizes, text,
			    sizeof(text));
		if (bench_broker_start(b, &blk->br, tr_label[tr], text)) {
			json_object_set_new(un, tr_label[tr], json_string("the broker did not start"));
			bench_broker_stop(&blk->br);
			return -1;
		}
		snprintf(blk->ep, sizeof(blk->ep), "%s", blk->br.sockdir);
		blk->cpu_t0 = bench_proc_cpu_s(blk->br.p.pid);
		blk->wall0 = (double)rtvio_now_ns() / 1e9;
	} else if (tr_iox(tr)) {
		if (bench_roudi_start(b, &blk->roudi, why, sizeof(why))) {
			json_object_set_new(un, tr_label[tr], json_string(why));
			return -1;
		}
		snprintf(blk->ep, sizeof(blk->ep), "iceoryx");
	} else {
		snprintf(blk->ep, sizeof(blk->ep), "%s/%s", b->tmp,
			 tr_shm(tr) ? "ring" : tr == TR_PIPE ? "fifo" : "sock");
	}
	return 0;
}

/* The broker's side of latency run `idx`: the median bucket of flow lat<idx>'s
 * residence histogram (ingest to completion, power-of-two buckets: [lo, hi) µs),
 * and how many of its packets the policer held. The rest of the one-way latency is
 * the sender's call (send_call_us), reaching the broker, and the receiver. */
static void size_broker_share(const struct size_block *blk, size_t idx, json_t *r)
{
	json_t *doc = bench_stat_doc(blk->br.sockdir), *f, *h, *e;
	char name[32];
	json_int_t total = 0, seen = 0;
	size_t k;

	snprintf(name, sizeof(name), "lat%zu", idx);
	f = bench_stat_flow(doc, name);
	h = json_object_get(f, "residence_hist");
	json_array_foreach(h, k, e)
		total += json_integer_value(json_object_get(e, "count"));
	json_array_foreach(h, k, e) {
		seen += json_integer_value(json_object_get(e, "count"));
		if (2 * seen >= total && total) {
			json_t *range = json_array();

			json_array_append_new(range, json_real(
				(double)json_integer_value(json_object_get(e, "lo_ns")) / 1e3));
			json_array_append_new(range, json_real(
				(double)json_integer_value(json_object_get(e, "hi_ns")) / 1e3));
			json_object_set_new(r, "broker_residence_p50_us", range);
			break;
		}
	}
	if (json_object_get(f, "policed"))
		json_object_set(r, "policed", json_object_get(f, "policed"));
	json_decref(doc);
}

/* One throughput run with the cross-core distance sampled through it; its median
 * round trip (ns, 0 when no sample came) is appended to rtts too. */
static json_t *tput_run(struct bench *b, struct size_block *blk, uint64_t size, size_t i,
			json_t *rtts)
{
	uint64_t t0 = rtvio_now_ns(), t1;
	json_t *r;

	atomic_store(&blk->xc->active, true);
	r = size_run(b, blk->tr, blk->ep, size, i, true);
	atomic_store(&blk->xc->active, false);
	t1 = rtvio_now_ns();
	bench_xcore_window(blk->xc, t0, t1, r);
	json_array_append_new(rtts, json_integer(json_integer_value(
		json_object_get(json_object_get(r, "xcore_rtt_ns"), "p50"))));
	return r;
}

/* The latency run and the throughput runs of one size; the throughput row carries
 * the broker's CPU use over all its runs. */
static void size_one(struct bench *b, struct size_block *blk, uint64_t size, size_t i,
		     json_t *lat, json_t *tp)
{
	double c0, c1, w0, w1;
	json_t *r, *runs = json_array(), *rtts = json_array();

	b->step++;
	bench_progress(b, "size: %s %llu B latency", tr_label[blk->tr], (unsigned long long)size);
	r = size_run(b, blk->tr, blk->ep, size, i, false);
	if (blk->rtvio)
		size_broker_share(blk, i, r);
	json_array_append_new(lat, r);
	b->step++;
	bench_progress(b, "size: %s %llu B throughput (%d runs)", tr_label[blk->tr],
		       (unsigned long long)size, TPUT_RUNS);
	c0 = blk->rtvio ? bench_proc_cpu_s(blk->br.p.pid) : -1;
	w0 = (double)rtvio_now_ns() / 1e9;
	for (int k = 0; k < TPUT_RUNS && (!k || !rtvio_stop_requested); k++)
		json_array_append_new(runs, tput_run(b, blk, size, i, rtts));
	c1 = blk->rtvio ? bench_proc_cpu_s(blk->br.p.pid) : -1;
	w1 = (double)rtvio_now_ns() / 1e9;
	r = bench_median_run(runs, "gbps", "gbps_runs");
	json_object_set_new(r, "xcore_rtt_p50_runs", rtts);
	if (blk->rtvio && c0 >= 0 && c1 >= 0) {
		/* Over the whole pairs of processes' lifetimes, set-up included. */
		json_object_set_new(r, "broker_cpu_s", json_real(c1 - c0));
		json_object_set_new(r, "broker_cpu_pct", json_real(100 * (c1 - c0) / (w1 - w0)));
	}
	json_array_append_new(tp, r);
}

/* Stops what size_block_start() started; records the broker's CPU over the block. */
static void size_block_stop(struct size_block *blk, json_t *bcpu)
{
	if (blk->rtvio) {
		double c = bench_proc_cpu_s(blk->br.p.pid), w = (double)rtvio_now_ns() / 1e9;

		if (c >= 0)
			json_object_set_new(bcpu, tr_label[blk->tr],
					    json_real(100 * (c - blk->cpu_t0) / (w - blk->wall0)));
		bench_broker_stop(&blk->br);
	}
	if (tr_iox(blk->tr)) {
		proc_stop(&blk->roudi, SIGINT, 5000);
		proc_free(&blk->roudi);
	}
}

static void size_describe(json_t *sc)
{
	json_object_set_new(sc, "conditions", json_string(
		"Sender and receiver are separate processes pinned to cpu 0 (SCHED_FIFO 50 in "
		"latency runs, ordinary scheduling in throughput runs); the broker (rtvio) is "
		"pinned to cpu 1 at SCHED_FIFO 80, either busy-polling (rtvio-poll, rtvio-zc, "
		"rtvio-poll-cells; it pauses 60 µs of every millisecond so that ordinary work on "
		"cpu 1 gets its share in slivers, not in one 50 ms piece) or sleeping on kicks "
		"(rtvio-sleep). Every receiver blocks while waiting (its core is shared "
		"with the sender): rtvio in its blocking recv, iceoryx in a WaitSet, the ring on "
		"a futex. The -poll variants (rtvio-poll-cells: cells with poll_us; iceoryx-poll, "
		"shm-ring-poll) first spin, pausing between looks: in latency runs the receiver "
		"alone, for twice the period at SCHED_FIFO 49, so that the sender preempts the "
		"spinning receiver and ordinary work on cpu 0 cannot; in throughput runs both "
		"ends, for 50 µs at ordinary priority. rtvio rows carry the broker's share: "
		"the median residence bucket (ingest to completion) and the packets the "
		"policer held; every latency row carries the send call's duration "
		"(send_call_us). rtvio-zc uses the zero-copy calls on a polling broker: the "
		"sender writes each message in place in loaned TX slots (payload "
		"first, the stamp right before the first commit, as iceoryx), the receiver checks "
		"it in place in borrowed RX buffers. rtvio peers post RX buffers as large as the "
		"message, at least 4 KiB and at most 64 KiB (the largest packet); in throughput runs their sockets have a 4 MiB receive budget (the sender's credit window) and the sending cell an allowance of 256 TX chains per 1 ms budget period. rtvio carries a stream connection through a configured flow (latency: "
		"real-time, one message per period; throughput: best-effort). Messages use the "
		"rtmsg layout; latency is from the stamp taken right before the send call to the "
		"moment the receiver has the message's last byte, CLOCK_MONOTONIC on one "
		"machine. The pipe is a FIFO with a 1 MiB buffer; unix sockets get a send buffer "
		"of twice the message size so a seqpacket message fits; iceoryx writes the "
		"payload in its loaned chunk before the stamp (zero copy), the others copy it."));
	json_object_set_new(sc, "reading", json_string(
		"Compare rows of the same size taken in this run; absolute numbers move by 20 % "
		"or more between runs of a virtual machine. p50 shows the usual path (wake-ups "
		"dominate small messages: ~20 µs for a halted vCPU here), p99 and max show "
		"disturbances, including the host preempting this VM (single outliers of "
		"hundreds of µs are that, not the transport). rtvio's extra hop (cell -> broker "
		"-> cell, two notifications) is the price of isolation: neither cell maps the "
		"other's memory, and the broker polices and schedules the flow. Throughput of "
		"transports whose ends share one core measures that core's copying and "
		"switching as much as the transport; rtvio's copy runs on the broker's core."));
}

/* RTVIO_BENCH_SIZE_ONLY=label,label,...: only these transports (for looking at a
 * few rows again; a full run leaves it unset). */
static bool tr_wanted(int tr)
{
	const char *only = getenv("RTVIO_BENCH_SIZE_ONLY");
	size_t n = strlen(tr_label[tr]);

	if (!only || !*only)
		return true;
	for (const char *p = only; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, tr_label[tr], n) && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

int bench_scenario_size(struct bench *b)
{
	const uint64_t *sizes;
	size_t nsizes;
	json_t *sc = json_object(), *lat = json_array(), *tp = json_array();
	json_t *trs = json_array(), *un = json_object(), *bcpu = json_object();
	struct xcore xc;
	int ran = 0;

	size_sizes(b, &sizes, &nsizes);
	json_object_set_new(b->res, "scenarios",
			    json_object_get(b->res, "scenarios") ? json_incref(
				    json_object_get(b->res, "scenarios")) : json_object());
	if (bench_xcore_start(&xc))
		bench_note(b, "size: the cross-core sampler did not start; throughput rows "
			      "have no xcore_rtt_ns.");
	for (int tr = 0; tr < TR_N && !rtvio_stop_requested; tr++) {
		struct size_block blk = { .tr = tr, .xc = &xc };

		blk.rtvio = tr_rtvio(tr);
		if (!tr_wanted(tr)) {
			b->step += (int)nsizes * 2;
			continue;
		}
		if (size_block_start(b, &blk, sizes, nsizes, un)) {
			b->step += (int)nsizes * 2;
			continue;
		}
		json_array_append_new(trs, json_string(tr_label[tr]));
		for (size_t i = 0; i < nsizes && !rtvio_stop_requested; i++, ran++)
			size_one(b, &blk, sizes[i], i, lat, tp);
		size_block_stop(&blk, bcpu);
	}
	bench_xcore_free(&xc);
	json_object_set_new(sc, "transports", trs);
	json_object_set_new(sc, "unavailable", un);
	json_object_set_new(sc, "broker_cpu_pct_whole_block", bcpu);
	json_object_set_new(sc, "latency", lat);
	json_object_set_new(sc, "throughput", tp);
	size_describe(sc);
	json_object_set(json_object_get(b->res, "scenarios"), "size", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}
