/* `rtvio bench`: how far apart the host has put cpu 0 and cpu 1, sampled through a
 * scenario. A cache line bounced between a thread on each cpu takes a round trip
 * that depends on where the host runs the two vCPUs: on the development VM about
 * 70 ns (one core's threads, or one cache) or about 340 ns (farther), and the host
 * moves between the two every few seconds. rtvio's bytes cross from one cpu to the
 * other (cell, broker, cell), so its throughput follows that distance; a transport
 * whose ends share cpu 0 does not. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "runner.h"

/* Round trips of one sample, and how long either thread waits for the other before
 * it gives that sample up (both wake on the same tick; a late one loses the sample,
 * and a wait this short keeps the broker's core at most this long). */
#define XCORE_TRIPS 32
#define XCORE_MEET_NS 100000ull

static void xcore_pin(int cpu)
{
	cpu_set_t set;
	struct sched_param sp = { .sched_priority = 99 };

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	/* Above the broker, so that a sample is not a wait for a time slice; without
	 * the privilege the samples are still tried at ordinary priority. */
	pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
}

/* Sleeps until the next multiple of XCORE_INTERVAL_NS, so that both threads wake
 * together; true when sampling is on then. */
static bool xcore_tick(struct xcore *x)
{
	uint64_t next = (rtvio_now_ns() / XCORE_INTERVAL_NS + 1) * XCORE_INTERVAL_NS;
	struct timespec ts = { (time_t)(next / 1000000000u), (long)(next % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	return atomic_load(&x->active) && !atomic_load(&x->stop);
}

/* Waits while the line is `v`, for at most XCORE_MEET_NS: true when it moved. The
 * line is the only thing the two threads share, every access seq_cst: its travel
 * between the cpus is what is measured, nothing is published through it. */
static bool xcore_moved(struct xcore *x, uint32_t v)
{
	uint64_t until = rtvio_now_ns() + XCORE_MEET_NS;

	while (atomic_load(&x->line) == v)
		if (rtvio_now_ns() > until)
			return false;
	return true;
}

/* The partner on cpu 1: turns each odd value of the line into the next even one,
 * as many times as a sample takes, or until the leader stops asking. */
static void *xcore_partner(void *arg)
{
	struct xcore *x = arg;

	xcore_pin(1);
	while (!atomic_load(&x->stop)) {
		if (!xcore_tick(x))
			continue;
		for (int i = 0; i <= XCORE_TRIPS; i++) {
			uint32_t v = atomic_load(&x->line);

			/* Even: the leader's next odd value is still to come. */
			if (!(v & 1) && !xcore_moved(x, v))
				break;
			atomic_store(&x->line, atomic_load(&x->line) + 1);
		}
	}
	return NULL;
}

/* One sample (leader, cpu 0): one trip to meet the partner, then XCORE_TRIPS timed
 * ones. Mean ns per round trip, or 0 when the partner did not keep up (a line left
 * odd by a given-up sample is answered late and given up again). */
static uint32_t xcore_sample(struct xcore *x)
{
	uint32_t v = atomic_load(&x->line);
	uint64_t t0 = 0;

	if (v & 1)
		return 0;
	for (int i = 0; i <= XCORE_TRIPS; i++) {
		if (i == 1)
			t0 = rtvio_now_ns();
		atomic_store(&x->line, ++v);
		if (!xcore_moved(x, v))
			return 0;
		v++;
	}
	return (uint32_t)((rtvio_now_ns() - t0) / XCORE_TRIPS);
}

static void *xcore_leader(void *arg)
{
	struct xcore *x = arg;

	xcore_pin(0);
	while (!atomic_load(&x->stop)) {
		/* Relaxed: this thread is the count's only writer. */
		uint32_t n = atomic_load_explicit(&x->n, memory_order_relaxed), rtt;

		if (!xcore_tick(x) || n >= XCORE_CAP)
			continue;
		rtt = xcore_sample(x);
		x->at[n] = rtvio_now_ns();
		x->rtt[n] = rtt;
		/* Release: the sample before the count that exposes it to readers. */
		atomic_store_explicit(&x->n, n + 1, memory_order_release);
	}
	return NULL;
}

int bench_xcore_start(struct xcore *x)
{
	memset(x, 0, sizeof(*x));
	x->at = calloc(XCORE_CAP, sizeof(*x->at));
	x->rtt = calloc(XCORE_CAP, sizeof(*x->rtt));
	if (!x->at || !x->rtt)
		goto fail;
	if (pthread_create(&x->partner, NULL, xcore_partner, x))
		goto fail;
	if (pthread_create(&x->leader, NULL, xcore_leader, x)) {
		atomic_store(&x->stop, true);
		pthread_join(x->partner, NULL);
		goto fail;
	}
	x->on = true;
	return 0;
fail:
	free(x->at);
	free(x->rtt);
	x->at = NULL;
	x->rtt = NULL;
	return -1;
}

void bench_xcore_stop(struct xcore *x)
{
	if (!x->on)
		return;
	atomic_store(&x->stop, true);
	pthread_join(x->leader, NULL);
	pthread_join(x->partner, NULL);
	x->on = false;
}

void bench_xcore_free(struct xcore *x)
{
	bench_xcore_stop(x);
	free(x->at);
	free(x->rtt);
	x->at = NULL;
	x->rtt = NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void bench_xcore_window(const struct xcore *x, uint64_t t0, uint64_t t1, json_t *out)
{
	/* Acquire, pairing with the leader's release: the first n samples are written. */
	uint32_t n = x->at ? atomic_load_explicit(&x->n, memory_order_acquire) : 0;
	uint32_t *v = n ? malloc(n * sizeof(*v)) : NULL, k = 0;

	for (uint32_t i = 0; v && i < n; i++)
		if (x->at[i] >= t0 && x->at[i] < t1 && x->rtt[i])
			v[k++] = x->rtt[i];
	if (k) {
		json_t *o = json_object();

		qsort(v, k, sizeof(*v), cmp_u32);
		json_object_set_new(o, "samples", json_integer(k));
		json_object_set_new(o, "min", json_integer(v[0]));
		json_object_set_new(o, "p50", json_integer(v[k / 2]));
		json_object_set_new(o, "max", json_integer(v[k - 1]));
		json_object_set_new(out, "xcore_rtt_ns", o);
	}
	free(v);
}
