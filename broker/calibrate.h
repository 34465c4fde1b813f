/* `rtvio calibrate`: measures the broker's own costs by running the real data plane
 * against synthetic process cells, and turns the samples into the [platform] values
 * that `rtvio analyze` reads.
 *
 * Two halves: cal_measure() (calibrate_run.c) drives the data plane and collects raw
 * samples; everything else here is pure arithmetic on those samples, unit-tested on
 * synthetic data.
 *
 * The values chosen for the analysis:
 * - latencies and the ingest pass: the largest sample that did not overlap a
 *   recorded host stall (a stall measures the host, not rtvio). Each occurs once per
 *   message, so a bound needs the maximum.
 * - copy costs: a line whose slope is fitted to each size's p99.9 step time, raised
 *   until it lies on or above every size's p99.9, plus CAL_MARGIN. Not the maximum:
 *   a message takes thousands of short steps, and the largest of tens of thousands of
 *   them is set by an interrupt or a preemption of the broker's cpu (which the gap
 *   probe, on the other cpu, cannot see), not by the copy. The maxima are reported.
 * The p99.9 is reported beside every maximum and the maximum beside every p99.9. */
#ifndef RTVIO_BROKER_CALIBRATE_H
#define RTVIO_BROKER_CALIBRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "config.h"
#include "fit.h"

/* The percentile reported beside each maximum, and used for the copy costs. */
#define CAL_PERCENTILE 99.9
/* Copy costs are charged this much above the p99.9 line (bandwidth divided by it). */
#define CAL_MARGIN 1.10

/* One distribution of durations, after stalled samples were set aside. */
struct cal_dist {
	size_t n;		/* samples kept */
	size_t stalled;		/* samples excluded: they overlapped a host stall */
	bool stall_checked;	/* false: no probe could watch this run (see docs) */
	double min_ns, median_ns, p999_ns, max_ns;
};

/* Summarises the kept samples v[0..n) (sorted in place); `stalled` and `checked` are
 * only recorded. -EINVAL for n == 0 or a sample that is negative or not finite. */
int cal_dist_make(double *v, size_t n, size_t stalled, bool checked, struct cal_dist *out);

/* One copy step of the data plane: `bytes` of payload in one chunk; `last` when the
 * step completed its packet (it then also pushed the RX buffer, notified, and
 * returned the sender's TX chain: the per-packet work). */
struct cal_step {
	uint32_t bytes;
	bool last;
	bool stalled;
	double ns;
};

#define CAL_MAX_GROUPS 64

/* The steps of one (bytes, last) kind. */
struct cal_group {
	uint32_t bytes;
	bool last;
	struct cal_dist d;
};

struct cal_steps_fit {
	/* Every kept non-last step: ns against payload bytes (the fit's quality). */
	struct linfit raw;
	/* p99.9 step time per size against size; its slope is the per-byte cost. */
	struct linfit envelope;
	/* Median step time per size against size: the per-byte cost when interference
	 * bent the envelope flat or downwards (p99.9 of small steps above large ones). */
	struct linfit medians;
	bool slope_from_medians;
	double ns_per_byte;
	double chunk_overhead_ns;	/* the line with that slope above every p99.9 */
	double packet_overhead_ns;	/* a last step's p99.9 beyond that line, at most */
	size_t n, stalled;
	size_t ngroups;
	struct cal_group g[CAL_MAX_GROUPS];
};

/* Fits e(b) = chunk_overhead + b * ns_per_byte above every measured size's p99.9
 * non-last step time, and packet_overhead as the largest excess of a last-step
 * size's p99.9 over e(b). Margins are cal_platform()'s. Needs kept non-last steps
 * of at least two sizes and at least one kept last step: -EINVAL otherwise (or more
 * than CAL_MAX_GROUPS kinds); -EDOM when the time does not grow with the size (no
 * bandwidth can be derived); -ENOMEM. */
int cal_fit_steps(const struct cal_step *s, size_t n, struct cal_steps_fit *out);

/* Indexes of the two modes measured. */
enum { CAL_SLEEP = 0, CAL_POLL = 1 };

struct cal_results {
	struct cal_steps_fit steps;
	struct cal_dist ingest_step;	/* one pass over a full TX ring */
	struct cal_dist batch_gap;	/* the daemon's epoll round between data-plane runs */
	struct cal_dist change_step;	/* a run-time change: ns per slot visit of one cell or
					 * flow added or removed (calibrate_change.c) */
	unsigned ingest_ring;		/* packets on the ring in that pass */
	struct linfit ingest_fit;	/* pass ns against packets (1, 32, full ring) */
	struct cal_dist ingest_lat[2];	/* [CAL_SLEEP], [CAL_POLL] */
	struct cal_dist notify_lat[2];
	/* An eventfd write that wakes a thread waiting on the other cpu: what the broker
	 * pays for a notification inside a step (the step runs wake nobody). */
	struct cal_dist wake_write;
	/* The broker loop's vhost-user work (calibrate_vhu.c): one message that is not
	 * heavy, one memory-table change; and one minor fault on a cell's page. */
	struct cal_dist vhu_msg;
	struct cal_dist vhu_map;
	struct cal_dist vhu_down;	/* a connection's teardown (calibrate_vhu.c) */
	struct cal_dist vhu_dev;	/* the device stop and start of a heavy message */
	struct cal_dist page_fault;
	size_t gaps;			/* host stalls the probes recorded */
	uint64_t longest_gap_ns;
};

/* When, on what and how: printed as comments and in the JSON document. */
struct cal_meta {
	char date[64];		/* UTC, ISO 8601 */
	char cpu_model[128];
	char kernel[128];
	int broker_cpu, other_cpu;
	bool quick;
	const char *copy;	/* the copy routine measured: "normal" or "nt" */
	const char *pm_qos;	/* how idle cpus were kept (pmqos.h), as text */
	double seconds;		/* how long the measurement took */
};

/* The platform values for a broker running with poll = yes (poll true) or no:
 * every key present, CAL_MARGIN applied to the copy costs, copy_bandwidth rounded
 * down, times rounded up. -EDOM when a
 * needed value is missing or not usable (no samples, bandwidth below 1 B/s). */
int cal_platform(const struct cal_results *r, bool poll, struct rtvio_platform_cfg *out);

/* Writes comment lines (when, on what, how, each value's distribution) and the
 * [platform] section for `poll`, which rtvio_platform_load() reads back exactly. */
int cal_write_section(FILE *f, const struct cal_results *r, const struct cal_meta *m,
		      bool poll);

/* The whole measurement as one JSON document (new reference), or NULL on ENOMEM or
 * when no platform values follow from r. */
json_t *cal_json(const struct cal_results *r, const struct cal_meta *m, bool poll);

/* Fills m's date, cpu model and kernel from the running system. */
void cal_meta_fill(struct cal_meta *m);

/* ---- the measurement (calibrate_run.c) ---- */

/* Samples per measurement, --quick and full: timed copy steps per (chunk, packet)
 * kind (at least), ingest passes, and latencies per (ingest|notify, poll) run
 * (exactly: each is either kept or counted as stalled). */
#define CAL_STEPS_QUICK 5000u
#define CAL_STEPS_FULL 50000u
#define CAL_PASSES_QUICK 3000u
#define CAL_PASSES_FULL 30000u
#define CAL_LAT_QUICK 2000u
#define CAL_LAT_FULL 20000u

struct cal_opts {
	bool quick;
	int broker_cpu;		/* the data plane runs here */
	int other_cpu;		/* cells' threads and the gap probe run here */
	const char *copy;	/* [broker] copy = normal | nt, as the broker will run */
	/* Progress, 0..1, with the current phase; may be NULL. */
	void (*progress)(void *ctx, double frac, const char *phase);
	void *progress_ctx;
};

/* Runs every measurement. Returns 0, or a negative errno with one line in err. */
int cal_measure(const struct cal_opts *o, struct cal_results *r, char *err, size_t errlen);

#endif
