/* Gap probe: tells host stalls apart from a measurement's own outliers.
 *
 * This machine is a VM that its host preempts now and then (docs/machine.md: a 1 ms
 * timer wakes up to 6 ms late). A probe thread spins reading the clock and records every
 * interval longer than a threshold in which it did not run. A measurement whose sample
 * window overlaps a recorded gap was disturbed from outside (or by whatever else shares
 * the probe's core) and can be flagged instead of being taken as the system's own
 * latency.
 *
 * Storage is the caller's; the probe allocates nothing. Gaps are recorded in time order
 * and never overlap, which the interval query relies on.
 */
#ifndef RTVIO_PLATFORM_GAPPROBE_H
#define RTVIO_PLATFORM_GAPPROBE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gap {
	uint64_t start_ns;	/* last clock reading before the gap */
	uint64_t len_ns;	/* until the first reading after it */
};

/* Returns the time in ns; the probe calls it in a tight loop. */
typedef uint64_t (*gapprobe_clock_fn)(void *ctx);

struct gapprobe {
	/* Written by the probe thread only; an entry is published by the release store
	 * of n that follows it, so readers acquire n and read entries below it. */
	struct gap *gaps;
	size_t cap;
	_Atomic size_t n;
	_Atomic uint64_t dropped;	/* gaps seen after the storage was full */
	_Atomic uint64_t last_ns;	/* latest clock reading: the probe was alive then */

	/* Set by the owner. */
	atomic_bool stop;
	uint64_t threshold_ns;
	gapprobe_clock_fn clock;
	void *clock_ctx;
	int cpu;
	pthread_t thread;
	bool running;
};

struct gap_overlap {
	size_t count;		/* gaps overlapping the window */
	uint64_t overlap_ns;	/* total time of those gaps inside the window */
	uint64_t longest_ns;	/* longest of those gaps (whole length) */
};

/* CLOCK_MONOTONIC in ns: the default clock, and the one to stamp windows with. */
uint64_t gapprobe_now(void);

/* Starts the probe thread, pinned to cpu (or unpinned if cpu < 0). clock may be NULL
 * for CLOCK_MONOTONIC. Negative errno on failure (bad arguments, affinity, thread). */
int gapprobe_start(struct gapprobe *gp, struct gap *storage, size_t cap, uint64_t threshold_ns,
		   int cpu, gapprobe_clock_fn clock, void *clock_ctx);

/* Stops and joins the probe; the recorded gaps stay readable. */
void gapprobe_stop(struct gapprobe *gp);

/* Gaps recorded so far (safe while the probe runs). */
size_t gapprobe_count(struct gapprobe *gp);

/* Gaps overlapping the window [t0, t1): a gap [s, s + len) overlaps it when s < t1 and
 * s + len > t0. gaps must be in time order and non-overlapping, as the probe records
 * them. O(log n + overlapping gaps). */
void gaps_overlapping(const struct gap *gaps, size_t n, uint64_t t0, uint64_t t1,
		      struct gap_overlap *out);

/* The same on a running or stopped probe. */
void gapprobe_query(struct gapprobe *gp, uint64_t t0, uint64_t t1, struct gap_overlap *out);

#endif
