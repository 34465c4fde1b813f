/* `rtvio bench`: host stalls seen by gap-probe threads, and /proc/stat's busy and
 * steal time per cpu, so that the bound scenario can tell the VM's stalls apart
 * from rtvio's own misses. */
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner.h"

static uint64_t sleeping_clock(void *ctx)
{
	struct probe_clock *pc = ctx;

	if (!pc->raised) {
		struct sched_param sp = { .sched_priority = 99 };

		pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
		pc->raised = true;
	} else {
		struct timespec ts = { 0, (long)PROBE_INTERVAL_NS };

		clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	}
	return gapprobe_now();
}

void bench_probes_start(struct probes *p)
{
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < NPROBES; i++) {
		p->st[i] = calloc(PROBE_CAP, sizeof(struct gap));
		p->on[i] = p->st[i] && !gapprobe_start(&p->gp[i], p->st[i], PROBE_CAP,
							PROBE_THRESHOLD_NS, i, sleeping_clock,
							&p->pc[i]);
	}
}

/* Stops the threads; the recorded gaps stay readable until bench_probes_free(). */
void bench_probes_stop(struct probes *p)
{
	for (int i = 0; i < NPROBES; i++)
		if (p->on[i])
			gapprobe_stop(&p->gp[i]);
}

void bench_probes_free(struct probes *p)
{
	for (int i = 0; i < NPROBES; i++) {
		free(p->st[i]);
		p->st[i] = NULL;
		p->on[i] = false;
	}
}

/* Per cpu: stalls seen in [t0, t1). Returns the longest stall (µs, the probe's own
 * sleep subtracted) of any cpu, -1 when no probe ran. */
double bench_probes_window(struct probes *p, uint64_t t0, uint64_t t1, json_t *out)
{
	double longest = -1;

	for (int i = 0; i < NPROBES; i++) {
		struct gap_overlap o;
		json_t *c = json_object();
		char k[16];
		double l;

		if (!p->on[i])
			continue;
		gapprobe_query(&p->gp[i], t0, t1, &o);
		l = o.count ? (double)(o.longest_ns - PROBE_INTERVAL_NS) / 1e3 : 0;
		json_object_set_new(c, "stalls", json_integer((json_int_t)o.count));
		json_object_set_new(c, "longest_us", json_real(l));
		json_object_set_new(c, "total_us", json_real((double)o.overlap_ns / 1e3));
		snprintf(k, sizeof(k), "cpu%d", i);
		json_object_set_new(out, k, c);
		if (l > longest)
			longest = l;
	}
	return longest;
}

void bench_cpu_ticks_read(struct cpu_ticks *t)
{
	FILE *f = fopen("/proc/stat", "r");
	char line[512];

	memset(t, 0, sizeof(*t));
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long v[8] = { 0 };
		int cpu;

		if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 9 || cpu < 0 || cpu >= NPROBES)
			continue;
		for (int i = 0; i < 8; i++)
			t->total[cpu] += v[i];
		t->busy[cpu] = t->total[cpu] - v[3] - v[4];
		t->steal[cpu] = v[7];
	}
	if (f)
		fclose(f);
}

void bench_cpu_ticks_json(const struct cpu_ticks *a, const struct cpu_ticks *b, json_t *out,
			  double *busy0)
{
	for (int i = 0; i < NPROBES; i++) {
		double tot = (double)(b->total[i] - a->total[i]);
		json_t *c = json_object_get(out, i ? "cpu1" : "cpu0");

		if (!c) {
			c = json_object();
			json_object_set_new(out, i ? "cpu1" : "cpu0", c);
		}
		if (tot <= 0)
			continue;
		json_object_set_new(c, "busy_pct", json_real(100 * (double)(b->busy[i] - a->busy[i]) / tot));
		json_object_set_new(c, "steal_pct", json_real(100 * (double)(b->steal[i] - a->steal[i]) / tot));
		if (!i && busy0)
			*busy0 = 100 * (double)(b->busy[i] - a->busy[i]) / tot;
	}
}

/* The time host stalls took out of [t0, t1) on the cpu that lost the most, in µs: the
 * probes see a stall as one gap between readings that are PROBE_INTERVAL_NS apart, so
 * that much of each gap is the probe's own sleep, not a stall. */
double bench_stalled_in(struct probes *p, uint64_t t0, uint64_t t1)
{
	double most = 0;

	for (int i = 0; i < NPROBES; i++) {
		struct gap_overlap o;
		double st;

		if (!p->on[i])
			continue;
		gapprobe_query(&p->gp[i], t0, t1, &o);
		st = (double)o.overlap_ns - (double)o.count * PROBE_INTERVAL_NS;
		if (st / 1e3 > most)
			most = st / 1e3;
	}
	return most;
}
