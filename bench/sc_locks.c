/* `rtvio bench locks`: acquire and release latency of sync/'s locks under contention
 * (FIFO mutex, phase-fair reader-writer with one write in eight, k-exclusion with
 * k = 2) next to a pthread mutex and a plain ticket lock (written here as the
 * baseline), at 2..8 threads on this machine's cpus (more threads than cpus too):
 * p50/p99/max per lock and thread count, fairness (most minus fewest acquisitions of
 * one thread), the exclusion each lock promises checked in every critical section,
 * and the host stalls the gap probes saw during each run (stalls.c). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kex.h"
#include "mutex.h"
#include "relax.h"
#include "runner.h"
#include "rwlock.h"

#define MAX_THREADS 8
#define SAMPLES 100000 /* per thread: the first ones of the run */
#define KEX_K 2u

enum lock_kind { LK_PTHREAD, LK_TICKET, LK_FIFO, LK_RW, LK_KEX, LK_N };

static const char *const lock_names[LK_N] = { "pthread mutex", "ticket lock (baseline)",
					      "sync FIFO mutex", "sync phase-fair RW",
					      "sync k-exclusion (k=2)" };

/* The baseline: the textbook ticket lock (two counters, no wrap care). */
struct ticket {
	_Atomic uint32_t next, serving;
};

struct shared {
	enum lock_kind kind;
	pthread_mutex_t pm;
	struct ticket tk;
	struct sync_mutex fm;
	struct sync_rwlock rw;
	struct sync_kex kx;
	_Atomic int holders, writers; /* checked inside every critical section */
	_Atomic uint64_t violations;
	_Atomic bool stop;
	volatile uint64_t counter;
};

struct worker {
	pthread_t th;
	struct shared *s;
	int id, cpu;
	uint64_t acq, writes, nsamp;
	uint32_t *lat, *rel;   /* acquire and release latencies, ns */
	uint64_t write_max;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void ticket_lock(struct ticket *t)
{
	/* relaxed: the ticket only orders us among requesters; the acquire load of
	 * serving below pairs with the holder's release store. */
	uint32_t me = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);

	while (atomic_load_explicit(&t->serving, memory_order_acquire) != me)
		sync_cpu_relax();
}

static void ticket_unlock(struct ticket *t)
{
	/* release: the critical section's writes before the next holder's entry. */
	atomic_store_explicit(&t->serving,
			      atomic_load_explicit(&t->serving, memory_order_relaxed) + 1,
			      memory_order_release);
}

static void spin(unsigned n)
{
	for (volatile unsigned i = 0; i < n; i++)
		;
}

/* The critical section: checks the lock's promise, then a little shared work. */
static void section(struct shared *s, bool write)
{
	int h = atomic_fetch_add_explicit(&s->holders, 1, memory_order_relaxed) + 1;
	int w = atomic_fetch_add_explicit(&s->writers, write, memory_order_relaxed) + write;
	int most = s->kind == LK_KEX ? (int)KEX_K : s->kind == LK_RW ? MAX_THREADS : 1;

	if (h > most || (w && h > 1) || w > 1)
		atomic_fetch_add_explicit(&s->violations, 1, memory_order_relaxed);
	if (s->kind != LK_RW && s->kind != LK_KEX)
		s->counter++;
	spin(50);
	atomic_fetch_sub_explicit(&s->writers, write, memory_order_relaxed);
	atomic_fetch_sub_explicit(&s->holders, 1, memory_order_relaxed);
}

/* One acquisition: returns the slot (kex) or 0, after timing the request. */
static unsigned acquire(struct shared *s, bool write)
{
	switch (s->kind) {
	case LK_PTHREAD:
		pthread_mutex_lock(&s->pm);
		return 0;
	case LK_TICKET:
		ticket_lock(&s->tk);
		return 0;
	case LK_FIFO:
		sync_mutex_lock(&s->fm);
		return 0;
	case LK_RW:
		if (write)
			sync_rw_write_lock(&s->rw);
		else
			sync_rw_read_lock(&s->rw);
		return 0;
	default:
		return sync_kex_lock(&s->kx);
	}
}

static void release(struct shared *s, bool write, unsigned slot)
{
	switch (s->kind) {
	case LK_PTHREAD:
		pthread_mutex_unlock(&s->pm);
		break;
	case LK_TICKET:
		ticket_unlock(&s->tk);
		break;
	case LK_FIFO:
		sync_mutex_unlock(&s->fm);
		break;
	case LK_RW:
		if (write)
			sync_rw_write_unlock(&s->rw);
		else
			sync_rw_read_unlock(&s->rw);
		break;
	default:
		sync_kex_unlock(&s->kx, slot);
		break;
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct shared *s = w->s;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		bool write = s->kind == LK_RW && (w->acq + (uint64_t)w->id) % 8 == 0;
		uint64_t t0 = now_ns(), t1, t2;
		unsigned slot = acquire(s, write);

		t1 = now_ns();
		section(s, write);
		t2 = now_ns();
		release(s, write, slot);
		t2 = now_ns() - t2;
		if (w->nsamp < SAMPLES) {
			w->lat[w->nsamp] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
			w->rel[w->nsamp++] = (uint32_t)(t2 > UINT32_MAX ? UINT32_MAX : t2);
		}
		if (write) {
			w->writes++;
			if (t1 - t0 > w->write_max)
				w->write_max = t1 - t0;
		}
		w->acq++;
		spin(100);
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* p50, p99 and max of n samples (sorted in place) into o under `prefix`. */
static void quantiles(uint32_t *v, size_t n, const char *prefix, json_t *o)
{
	char k[48];

	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_u32);
	snprintf(k, sizeof(k), "%s_p50_ns", prefix);
	json_object_set_new(o, k, json_integer(v[n / 2]));
	snprintf(k, sizeof(k), "%s_p99_ns", prefix);
	json_object_set_new(o, k, json_integer(v[(n * 99) / 100]));
	snprintf(k, sizeof(k), "%s_max_ns", prefix);
	json_object_set_new(o, k, json_integer(v[n - 1]));
}

static void shared_init(struct shared *s, enum lock_kind kind)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	pthread_mutex_init(&s->pm, NULL);
	sync_mutex_init(&s->fm);
	sync_rw_init(&s->rw);
	sync_kex_init(&s->kx, KEX_K);
}

/* The figures of one run of nt workers into a row. */
static json_t *summarise(struct worker *w, int nt, double secs, const struct shared *s)
{
	json_t *row = json_object();
	uint64_t total = 0, most = 0, least = UINT64_MAX, nsamp = 0, writes = 0, wmax = 0;
	uint32_t *lat, *rel;

	for (int i = 0; i < nt; i++) {
		total += w[i].acq;
		most = w[i].acq > most ? w[i].acq : most;
		least = w[i].acq < least ? w[i].acq : least;
		nsamp += w[i].nsamp;
		writes += w[i].writes;
		wmax = w[i].write_max > wmax ? w[i].write_max : wmax;
	}
	lat = malloc(nsamp * sizeof(*lat) + 1);
	rel = malloc(nsamp * sizeof(*rel) + 1);
	if (lat && rel) {
		size_t k = 0;

		for (int i = 0; i < nt; i++) {
			memcpy(lat + k, w[i].lat, w[i].nsamp * sizeof(*lat));
			memcpy(rel + k, w[i].rel, w[i].nsamp * sizeof(*rel));
			k += w[i].nsamp;
		}
		quantiles(lat, nsamp, "acquire", row);
		quantiles(rel, nsamp, "release", row);
	}
	free(lat);
	free(rel);
	json_object_set_new(row, "acquisitions", json_integer((json_int_t)total));
	json_object_set_new(row, "per_s", json_real(secs > 0 ? (double)total / secs : 0));
	json_object_set_new(row, "fairness", json_integer((json_int_t)(most - least)));
	json_object_set_new(row, "least", json_integer((json_int_t)least));
	json_object_set_new(row, "most", json_integer((json_int_t)most));
	json_object_set_new(row, "violations", json_integer((json_int_t)s->violations));
	if (s->kind == LK_RW) {
		json_object_set_new(row, "writes", json_integer((json_int_t)writes));
		json_object_set_new(row, "write_acquire_max_ns", json_integer((json_int_t)wmax));
	}
	return row;
}

/* One lock at nt threads for `ms`; the row, or NULL when a thread could not start. */
static json_t *run_one(struct probes *pr, enum lock_kind kind, int nt, unsigned ms, int ncpu)
{
	static struct shared s;
	struct worker w[MAX_THREADS];
	json_t *row = NULL, *st = json_object();
	uint64_t t0, t1;
	int started = 0;

	shared_init(&s, kind);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < nt; i++) {
		w[i] = (struct worker){ .s = &s, .id = i, .cpu = i % ncpu };
		w[i].lat = calloc(SAMPLES, sizeof(uint32_t));
		w[i].rel = calloc(SAMPLES, sizeof(uint32_t));
	}
	t0 = now_ns();
	for (int i = 0; i < nt; i++, started++)
		if (!w[i].lat || !w[i].rel || pthread_create(&w[i].th, NULL, work, &w[i]))
			break;
	if (started == nt)
		usleep(ms * 1000u);
	atomic_store_explicit(&s.stop, true, memory_order_relaxed);
	for (int i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	t1 = now_ns();
	if (started == nt) {
		row = summarise(w, nt, (double)(t1 - t0) / 1e9, &s);
		json_object_set_new(row, "lock", json_string(lock_names[kind]));
		json_object_set_new(row, "threads", json_integer(nt));
		bench_probes_window(pr, t0, t1, st);
		json_object_set(row, "stalls", st);
	}
	json_decref(st);
	for (int i = 0; i < nt; i++) {
		free(w[i].lat);
		free(w[i].rel);
	}
	pthread_mutex_destroy(&s.pm);
	return row;
}

static void locks_describe(json_t *sc, int ncpu, unsigned ms)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "Each thread, pinned to cpu (index mod %d), loops: take the lock, a critical "
		 "section of ~50 empty iterations that checks the lock's promise (one holder; "
		 "at most k = %u; readers never beside a writer), release, ~100 iterations "
		 "outside. %u ms per lock and thread count. Acquire = request to grant "
		 "(clock_gettime around the call), release = the unlock call; quantiles over "
		 "the first %d requests of every thread. fairness = most - fewest acquisitions "
		 "of one thread. RW: every eighth request of a thread writes. The gap probes "
		 "(SCHED_FIFO 99, 100 us sleeps) run meanwhile and preempt a holder for a "
		 "moment.", ncpu, KEX_K, ms, SAMPLES);
	json_object_set_new(sc, "conditions", json_string(text));
	json_object_set_new(sc, "reading", json_string(
		"With one thread per cpu and nothing else running, a FIFO lock's request waits "
		"for at most (threads - 1) critical sections, a k-exclusion request for "
		"ceil((threads - k) / k) (docs/sync.md), and fairness stays small; the pthread "
		"mutex lets the releasing thread take it again (barging): faster, less fair. "
		"Any longer wait is a holder, or the next in line, that lost its cpu: to the "
		"gap probes, to other processes (this scenario reserves no cpu; loadavg says "
		"how busy the machine was) or, with more threads than cpus, to each other, "
		"for a scheduler time slice (milliseconds). That is why the broker runs one "
		"pinned data-plane thread per core on cpus of its own, and why the analysis's "
		"lock terms hold only there; the sleeping pthread mutex degrades less."));
}

/* /proc/loadavg's first figure: how busy the machine was around the runs. */
static void loadavg(json_t *sc)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double l;

	if (f && fscanf(f, "%lf", &l) == 1)
		json_object_set_new(sc, "loadavg", json_real(l));
	if (f)
		fclose(f);
}

int bench_scenario_locks(struct bench *b)
{
	static const int counts[] = { 2, 3, 4, 8 };
	json_t *sc = json_object(), *rows = json_array();
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	int ncpu = n > 0 ? (int)n : 1;
	unsigned ms = b->quick ? 50 : 200;
	struct probes pr;
	int ran = 0;

	bench_probes_start(&pr);
	for (int k = 0; k < LK_N && !rtvio_stop_requested; k++) {
		b->step++;
		bench_progress(b, "locks: %s", lock_names[k]);
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			json_t *row = run_one(&pr, (enum lock_kind)k, counts[c], ms, ncpu);

			if (row) {
				json_array_append_new(rows, row);
				ran++;
			}
		}
	}
	bench_probes_stop(&pr);
	bench_probes_free(&pr);
	json_object_set_new(sc, "rows", rows);
	json_object_set_new(sc, "cpus", json_integer(ncpu));
	loadavg(sc);
	locks_describe(sc, ncpu, ms);
	json_object_set(json_object_get(b->res, "scenarios"), "locks", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}
