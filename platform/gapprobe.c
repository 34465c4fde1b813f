/* Gap probe: see gapprobe.h. */
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "gapprobe.h"

uint64_t gapprobe_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t monotonic_clock(void *ctx)
{
	(void)ctx;
	return gapprobe_now();
}

static void *probe_main(void *arg)
{
	struct gapprobe *gp = arg;
	size_t n = 0;
	uint64_t prev = gp->clock(gp->clock_ctx);

	/* relaxed: stop only needs to be seen eventually; nothing is handed over by it. */
	while (!atomic_load_explicit(&gp->stop, memory_order_relaxed)) {
		uint64_t now = gp->clock(gp->clock_ctx);

		if (now > prev && now - prev > gp->threshold_ns) {
			if (n < gp->cap) {
				gp->gaps[n] = (struct gap){ .start_ns = prev,
							    .len_ns = now - prev };
				n++;
				/* release: orders the entry's store before the count that
				 * publishes it to gapprobe_query(). */
				atomic_store_explicit(&gp->n, n, memory_order_release);
			} else {
				atomic_fetch_add_explicit(&gp->dropped, 1, memory_order_relaxed);
			}
		}
		if (now > prev)
			prev = now;
		/* relaxed: a liveness hint for readers, it publishes no data. */
		atomic_store_explicit(&gp->last_ns, prev, memory_order_relaxed);
	}
	return NULL;
}

int gapprobe_start(struct gapprobe *gp, struct gap *storage, size_t cap, uint64_t threshold_ns,
		   int cpu, gapprobe_clock_fn clock, void *clock_ctx)
{
	pthread_attr_t attr;
	int err;

	if (!storage || !cap || !threshold_ns)
		return -EINVAL;
	gp->gaps = storage;
	gp->cap = cap;
	atomic_init(&gp->n, 0);
	atomic_init(&gp->dropped, 0);
	atomic_init(&gp->last_ns, 0);
	atomic_init(&gp->stop, false);
	gp->threshold_ns = threshold_ns;
	gp->clock = clock ? clock : monotonic_clock;
	gp->clock_ctx = clock_ctx;
	gp->cpu = cpu;
	gp->running = false;

	err = pthread_attr_init(&attr);
	if (err)
		return -err;
	if (cpu >= 0) {
		cpu_set_t set;

		if (cpu >= CPU_SETSIZE) {
			pthread_attr_destroy(&attr);
			return -EINVAL;
		}
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		err = pthread_attr_setaffinity_np(&attr, sizeof set, &set);
		if (err) {
			pthread_attr_destroy(&attr);
			return -err;
		}
	}
	err = pthread_create(&gp->thread, &attr, probe_main, gp);
	pthread_attr_destroy(&attr);
	if (err)
		return -err;
	gp->running = true;
	return 0;
}

void gapprobe_stop(struct gapprobe *gp)
{
	if (!gp->running)
		return;
	atomic_store_explicit(&gp->stop, true, memory_order_relaxed);
	pthread_join(gp->thread, NULL);
	gp->running = false;
}

size_t gapprobe_count(struct gapprobe *gp)
{
	/* acquire: pairs with the probe's release so the counted entries are readable. */
	return atomic_load_explicit(&gp->n, memory_order_acquire);
}

void gaps_overlapping(const struct gap *gaps, size_t n, uint64_t t0, uint64_t t1,
		      struct gap_overlap *out)
{
	size_t lo = 0, hi = n;

	*out = (struct gap_overlap){ 0 };
	if (t1 <= t0)
		return;
	/* Gaps are ordered and disjoint, so their ends are ordered too: find the first
	 * gap that ends after t0. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (gaps[mid].start_ns + gaps[mid].len_ns > t0)
			hi = mid;
		else
			lo = mid + 1;
	}
	for (size_t i = lo; i < n && gaps[i].start_ns < t1; i++) {
		uint64_t s = gaps[i].start_ns, e = s + gaps[i].len_ns;
		uint64_t a = s > t0 ? s : t0, b = e < t1 ? e : t1;

		out->count++;
		out->overlap_ns += b - a;
		if (gaps[i].len_ns > out->longest_ns)
			out->longest_ns = gaps[i].len_ns;
	}
}

void gapprobe_query(struct gapprobe *gp, uint64_t t0, uint64_t t1, struct gap_overlap *out)
{
	gaps_overlapping(gp->gaps, gapprobe_count(gp), t0, t1, out);
}
