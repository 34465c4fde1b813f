/* `rtvio calibrate`: the measurement. The real data plane (dp_run, unchanged) runs
 * against two synthetic process cells: core's driver side over memfd regions, as
 * guest/port_posix lays them out, with the data plane on the device side exactly as
 * the daemon attaches it. Nothing here is on a real-time path: it allocates freely
 * before and after each timed run, never inside one.
 *
 * What is timed, and how (docs/platform.md, "Calibrating the platform costs"):
 * - copy steps: dp_run reads its clock once after every copy step and nowhere else
 *   (dataplane.h), so the clock hook sees the end of each step; the interval between
 *   two reads inside one dp_run call is one step plus the ingest pass before it. The
 *   first interval of a call also holds the call's first ingest pass and is dropped.
 *   Which step is which follows from the chunk, the packet size and RX buffers large
 *   enough for a whole packet (one piece per packet).
 * - the ingest pass: dp_run over a TX ring holding a full ring of packets whose
 *   destination has no RX buffers, so nothing is copied: one pass that takes every
 *   packet, one copy attempt that finds no buffer, one empty pass.
 * - ingest latency: a sender thread stamps each packet just before it publishes and
 *   kicks; the broker thread stamps the dp_run call whose pass took it.
 * - notify latency: the notify hook stamps the notification (and, with poll = no,
 *   writes the call eventfd as the daemon does); the receiver thread stamps the moment
 *   it holds the used buffer.
 * Host stalls: during single-threaded runs a gap probe spins on the other cpu; a
 * spinning thread (poll = yes) is its own probe and records its own gaps. Sleeping
 * runs (poll = no) have no probe: one would keep a cpu awake and make every wake-up
 * look faster than it is. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate_internal.h"

static const uint32_t chunk_sizes[] = { 64, 256, 1024, 4096, 16384, 65536 };
#define N_CHUNKS (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))

int cal_measure(const struct cal_opts *o, struct cal_results *res, char *err, size_t errlen)
{
	struct ccell cells[2];
	struct crun r;
	struct gapprobe gp;
	struct gap *gaps = NULL;
	uint64_t *ts_buf = NULL;
	struct stepset ss = { 0 };
	size_t want_steps = o->quick ? CAL_STEPS_QUICK : CAL_STEPS_FULL;
	size_t want_pass = o->quick ? CAL_PASSES_QUICK : CAL_PASSES_FULL;
	size_t want_lat = o->quick ? CAL_LAT_QUICK : CAL_LAT_FULL;
	struct prog pr = { .o = o };
	bool probing = false;
	cpu_set_t old;
	int ret;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	memset(cells, 0, sizeof(cells));
	for (int i = 0; i < 2; i++)
		cells[i].kick[0] = cells[i].kick[1] = cells[i].call[0] = cells[i].call[1] = -1;
	r.c = cells;
	r.copy = o->copy ? o->copy : "normal";
	pr.total = (double)(2 * N_CHUNKS - 1) * (double)want_steps + W_PASS * (double)want_pass +
		   5.0 * W_LAT * (double)want_lat;
	pthread_getaffinity_np(pthread_self(), sizeof(old), &old);
	for (int i = 0; i < 2; i++) {
		ret = cal_cell_open(&cells[i]);
		if (ret) {
			snprintf(err, errlen, "cannot set up a cell's memory: %s", strerror(-ret));
			goto out;
		}
	}
	/* each run may overshoot its share by one batch (32 packets of 8 chunks) */
	ss.cap = (2 * N_CHUNKS) * (want_steps + C_ROUNDS * (C_ROUNDS + 300));
	ss.s = malloc(ss.cap * sizeof(*ss.s));
	r.ts_cap = 1u << 16;
	ts_buf = malloc(r.ts_cap * sizeof(*ts_buf));
	r.ts_start = malloc(r.ts_cap);
	gaps = malloc(C_MAX_GAPS * sizeof(*gaps));
	if (!ss.s || !ts_buf || !r.ts_start || !gaps) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret = gapprobe_start(&gp, gaps, C_MAX_GAPS, C_GAP_NS, o->other_cpu, NULL, NULL);
	if (ret) {
		snprintf(err, errlen, "cannot start the gap probe on cpu %d: %s", o->other_cpu,
			 strerror(-ret));
		goto out;
	}
	probing = true;
	/* SCHED_FIFO keeps other processes off the measured cpu; the runs sleep
	 * between batches, so RT throttling (95 %) never cuts into a step. */
	ret = cal_pin(o->broker_cpu, true);
	if (ret) {
		snprintf(err, errlen, "cannot pin to cpu %d: %s", o->broker_cpu, strerror(-ret));
		goto out;
	}
	cal_progress(&pr, 0, "copy steps");
	/* Rounds over every kind rather than one kind after another: interference
	 * comes in bursts (another process, another guest), and a burst should raise
	 * every size a little rather than one size a lot, which would tilt the fit. */
	for (unsigned int round = 0; round < C_ROUNDS; round++) {
		for (size_t i = 0; i < N_CHUNKS; i++) {
			uint32_t k = chunk_sizes[i];
			uint32_t many = 8 * k < 65536 ? 8 * k : 65536;
			size_t before = ss.n, part = (want_steps + C_ROUNDS - 1) / C_ROUNDS;

			ret = cal_steps_run(&r, &gp, ts_buf, k, k, part, &ss, err, errlen);
			if (!ret && many > k)
				ret = cal_steps_run(&r, &gp, ts_buf, k, many, part, &ss, err, errlen);
			if (ret)
				goto out;
			cal_progress(&pr, (double)(ss.n - before), "copy steps");
		}
	}
	ret = cal_fit_steps(ss.s, ss.n, &res->steps);
	if (ret) {
		snprintf(err, errlen, "no copy cost follows from the steps measured (%s)",
			 strerror(-ret));
		goto out;
	}
	ret = cal_ingest_pass_run(&r, &gp, want_pass, res, err, errlen);
	if (!ret)
		ret = cal_batch_gap_run(&gp, want_pass, &res->batch_gap, err, errlen);
	if (ret)
		goto out;
	cal_progress(&pr, W_PASS * (double)want_pass, "ingest pass");
	gapprobe_stop(&gp);
	probing = false;
	res->gaps = gapprobe_count(&gp);
	for (size_t g = 0; g < res->gaps && g < C_MAX_GAPS; g++) {
		if (gaps[g].len_ns > res->longest_gap_ns)
			res->longest_gap_ns = gaps[g].len_ns;
	}
	/* Still on the broker's cpu at its priority, with the probe's cpu now free. */
	ret = cal_wake_run(o, want_lat, &res->wake_write, &pr, err, errlen);
	if (ret)
		goto out;
	/* The latency runs place their own threads; this one only watches. */
	cal_pin_restore(&old);
	for (int notify = 0; notify < 2; notify++) {
		for (int poll = 1; poll >= 0; poll--) {
			struct cal_dist *d = notify ? &res->notify_lat[poll] : &res->ingest_lat[poll];

			ret = cal_latency_run(&r, o, notify, poll, want_lat, d, res, &pr, err, errlen);
			if (ret)
				goto out;
		}
	}
out:
	if (probing)
		gapprobe_stop(&gp);
	cal_pin_restore(&old);
	free(ss.s);
	free(ts_buf);
	free(r.ts_start);
	free(gaps);
	for (int i = 0; i < 2; i++)
		cal_cell_close(&cells[i]);
	return ret;
}
