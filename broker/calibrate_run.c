/* `rtvio calibrate`: the measurement. The real data plane (dp_run, unchanged) runs
 * against two synthetic process cells: core's driver side over memfd regions, as
 * cell/port_posix lays them out, with the data plane on the device side exactly as
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
 * look faster than it is.
 *
 * This file runs the measurements in order (cal_measure); each has its own file:
 * calibrate_steps.c, calibrate_pass.c (ingest pass, batch gap), calibrate_wake.c,
 * calibrate_latency.c, over the cells of calibrate_cell.c. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate_internal.h"

static const uint32_t chunk_sizes[] = { 64, 256, 1024, 4096, 16384, 65536 };
#define N_CHUNKS (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))

/* Everything one cal_measure call holds. */
struct measure {
	const struct cal_opts *o;
	struct ccell cells[2];
	struct crun r;
	struct gapprobe gp;
	struct gap *gaps;	/* the probe's log */
	uint64_t *ts_buf;
	struct stepset ss;
	size_t want_steps, want_pass, want_lat;
	struct prog pr;
	bool probing;
};

/* Cells, sample storage and the gap probe; the caller pinned nothing yet. */
static int measure_setup(struct measure *m, char *err, size_t errlen)
{
	int ret;

	for (int i = 0; i < 2; i++) {
		ret = cal_cell_open(&m->cells[i]);
		if (ret) {
			snprintf(err, errlen, "cannot set up a cell's memory: %s", strerror(-ret));
			return ret;
		}
	}
	/* each run may overshoot its share by one batch (32 packets of 8 chunks) */
	m->ss.cap = (2 * N_CHUNKS) * (m->want_steps + C_ROUNDS * (C_ROUNDS + 300));
	m->ss.s = malloc(m->ss.cap * sizeof(*m->ss.s));
	m->r.ts_cap = 1u << 16;
	m->ts_buf = malloc(m->r.ts_cap * sizeof(*m->ts_buf));
	m->r.ts_start = malloc(m->r.ts_cap);
	m->gaps = malloc(C_MAX_GAPS * sizeof(*m->gaps));
	if (!m->ss.s || !m->ts_buf || !m->r.ts_start || !m->gaps) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = gapprobe_start(&m->gp, m->gaps, C_MAX_GAPS, C_GAP_NS, m->o->other_cpu, NULL, NULL);
	if (ret) {
		snprintf(err, errlen, "cannot start the gap probe on cpu %d: %s",
			 m->o->other_cpu, strerror(-ret));
		return ret;
	}
	m->probing = true;
	return 0;
}

/* Every (chunk, packet) kind of copy step, then the copy costs fitted to them. */
static int measure_steps(struct measure *m, struct cal_results *res, char *err,
			 size_t errlen)
{
	size_t part = (m->want_steps + C_ROUNDS - 1) / C_ROUNDS;
	int ret;

	cal_progress(&m->pr, 0, "copy steps");
	/* Rounds over every kind rather than one kind after another: interference
	 * comes in bursts (another process, another guest), and a burst should raise
	 * every size a little rather than one size a lot, which would tilt the fit. */
	for (unsigned int round = 0; round < C_ROUNDS; round++) {
		for (size_t i = 0; i < N_CHUNKS; i++) {
			uint32_t k = chunk_sizes[i];
			uint32_t many = 8 * k < 65536 ? 8 * k : 65536;
			size_t before = m->ss.n;

			ret = cal_steps_run(&m->r, &m->gp, m->ts_buf, k, k, part, &m->ss, err,
					    errlen);
			if (!ret && many > k)
				ret = cal_steps_run(&m->r, &m->gp, m->ts_buf, k, many, part,
						    &m->ss, err, errlen);
			if (ret)
				return ret;
			cal_progress(&m->pr, (double)(m->ss.n - before), "copy steps");
		}
	}
	ret = cal_fit_steps(m->ss.s, m->ss.n, &res->steps);
	if (ret)
		snprintf(err, errlen, "no copy cost follows from the steps measured (%s)",
			 strerror(-ret));
	return ret;
}

/* The ingest pass and the batch gap, the last runs under the gap probe, which is
 * stopped after them and its gaps counted. */
static int measure_passes(struct measure *m, struct cal_results *res, char *err,
			  size_t errlen)
{
	int ret = cal_ingest_pass_run(&m->r, &m->gp, m->want_pass, res, err, errlen);

	if (!ret)
		ret = cal_batch_gap_run(&m->gp, m->want_pass, &res->batch_gap, err, errlen);
	if (!ret)
		ret = cal_change_run(&m->gp, m->want_pass / 10, &res->change_step, err, errlen);
	if (!ret)
		ret = cal_vhu_run(&m->gp, m->want_pass / 10, res, err, errlen);
	if (!ret)
		ret = cal_device_run(&m->r, &m->gp, m->want_pass / 100, &res->vhu_dev, err, errlen);
	if (ret)
		return ret;
	cal_progress(&m->pr, W_PASS * (double)m->want_pass, "ingest pass");
	gapprobe_stop(&m->gp);
	m->probing = false;
	res->gaps = gapprobe_count(&m->gp);
	for (size_t g = 0; g < res->gaps && g < C_MAX_GAPS; g++) {
		if (m->gaps[g].len_ns > res->longest_gap_ns)
			res->longest_gap_ns = m->gaps[g].len_ns;
	}
	return 0;
}

/* The wake-up cost, then the latency runs (each places its own threads). */
static int measure_latencies(struct measure *m, const cpu_set_t *old,
			     struct cal_results *res, char *err, size_t errlen)
{
	/* Still on the broker's cpu at its priority, with the probe's cpu now free. */
	int ret = cal_wake_run(m->o, m->want_lat, &res->wake_write, &m->pr, err, errlen);

	if (ret)
		return ret;
	/* The latency runs place their own threads; this one only watches. */
	cal_pin_restore(old);
	for (int notify = 0; notify < 2; notify++) {
		for (int poll = 1; poll >= 0; poll--) {
			struct cal_dist *d = notify ? &res->notify_lat[poll] : &res->ingest_lat[poll];

			ret = cal_latency_run(&m->r, m->o, notify, poll, m->want_lat, d, res,
					      &m->pr, err, errlen);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static void measure_free(struct measure *m, const cpu_set_t *old)
{
	if (m->probing)
		gapprobe_stop(&m->gp);
	cal_pin_restore(old);
	free(m->ss.s);
	free(m->ts_buf);
	free(m->r.ts_start);
	free(m->gaps);
	for (int i = 0; i < 2; i++)
		cal_cell_close(&m->cells[i]);
}

int cal_measure(const struct cal_opts *o, struct cal_results *res, char *err, size_t errlen)
{
	struct measure ms, *m = &ms;
	cpu_set_t old;
	int ret;

	memset(res, 0, sizeof(*res));
	memset(m, 0, sizeof(*m));
	m->o = o;
	for (int i = 0; i < 2; i++)
		m->cells[i].kick[0] = m->cells[i].kick[1] = m->cells[i].call[0] =
			m->cells[i].call[1] = -1;
	m->r.c = m->cells;
	m->r.copy = o->copy ? o->copy : "normal";
	m->want_steps = o->quick ? CAL_STEPS_QUICK : CAL_STEPS_FULL;
	m->want_pass = o->quick ? CAL_PASSES_QUICK : CAL_PASSES_FULL;
	m->want_lat = o->quick ? CAL_LAT_QUICK : CAL_LAT_FULL;
	m->pr.o = o;
	m->pr.total = (double)(2 * N_CHUNKS - 1) * (double)m->want_steps +
		      W_PASS * (double)m->want_pass + 5.0 * W_LAT * (double)m->want_lat;
	pthread_getaffinity_np(pthread_self(), sizeof(old), &old);
	ret = measure_setup(m, err, errlen);
	/* SCHED_FIFO keeps other processes off the measured cpu; the runs sleep
	 * between batches, so RT throttling (95 %) never cuts into a step. */
	if (!ret && (ret = cal_pin(o->broker_cpu, true)))
		snprintf(err, errlen, "cannot pin to cpu %d: %s", o->broker_cpu, strerror(-ret));
	if (!ret)
		ret = measure_steps(m, res, err, errlen);
	if (!ret)
		ret = measure_passes(m, res, err, errlen);
	if (!ret)
		ret = measure_latencies(m, &old, res, err, errlen);
	measure_free(m, &old);
	return ret;
}
