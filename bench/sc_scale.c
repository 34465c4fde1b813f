/* `rtvio bench scale`: broker CPU per message and control latency with 2..64 cells
 * and 1..10 flows per cell. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "runner.h"

/* n cells in a ring, f flows out of each (64 B every 10·f ms to the next cells: every
 * cell sends 100 messages a second however many flows carry them, so that cpu 0 keeps
 * up with 64 cells too, and what grows is what the broker keeps track of), plus the
 * measured control flow (64 B every 1 ms, priority 1) from the first cell to the
 * second. The broker sleeps on kicks at SCHED_FIFO, so its CPU time is what the
 * traffic costs. */
static int scale_config(struct bench *b, int n, int f, const struct rtvio_platform_cfg *plat,
			char *path, size_t len)
{
	FILE *fp;

	snprintf(path, len, "%s/scale-%d-%d.conf", b->tmp, n, f);
	fp = fopen(path, "w");
	if (!fp)
		return -errno;
	/* The cells declare what they send: each sets up two or three connections once
	 * and then sends only data, so one control packet (allowance 1, the least) per
	 * 20 ms budget period is more than they use; the default 1 ms period would
	 * declare a thousand a second per cell, which with 64 cells is what their
	 * flows' priorities could not carry (docs/bench.md, "scale"). */
	fprintf(fp, "[broker]\npolicy = fp\nchunk = 4KiB\nsocket_dir = %s/scale-%d-%d\ncpu = %d\n"
		    "rt_priority = %d\npoll = no\ndefault = deny\nbudget_period = 20ms\n\n", b->tmp,
		n, f, BROKER_CPU, BROKER_SLEEP_PRIO);
	/* Cells spread over every cpu but the broker's, so that the scenario measures
	 * the broker rather than one overloaded cell core (a 2-cpu machine has only
	 * cpu 0 for them). */
	for (int c = 0; c < n; c++)
		fprintf(fp, "[cell c%d]\ncid = %d\nregion = 2MiB\ncpu = %d\nrt_priority = %d\n\n", c,
			3 + c, bench_cell_cpu(c), RT_PRIO);
	fprintf(fp, "[flow control]\nfrom = c0:999\nto = c1:999\ntype = seqpacket\nsize = 64\n"
		    "period = 1ms\npriority = 1\n\n");
	for (int c = 0; c < n; c++)
		for (int k = 0; k < f; k++)
			fprintf(fp, "[flow c%df%d]\nfrom = c%d\nto = c%d:%d\ntype = seqpacket\n"
				    "size = 64\nperiod = %dms\n\n", c, k, c, (c + 1 + k % (n - 1)) % n,
				1000 + c * 16 + k, 10 * f);
	rtvio_platform_write(fp, plat);
	return fclose(fp) ? -EIO : 0;
}

static void scale_describe(json_t *sc)
{
	json_object_set_new(sc, "conditions", json_string(
		"N process cells (`rtvio cell`, real-time threads SCHED_FIFO 50, spread in turn over "
		"every online cpu but the broker's: all on cpu 0 on a 2-cpu machine) in "
		"a ring, each sending F seqpacket flows of 64 B every 10·F ms to its neighbours "
		"(100 messages a second per cell, however many flows carry them), "
		"plus one control flow (64 B every 1 ms, priority 1) from c0 to c1. The broker "
		"sleeps on kicks at SCHED_FIFO 80 on cpu 1, policy fp, budget_period 20 ms (the "
		"cells' one control packet per period is more than they send). Broker CPU is its "
		"utime+stime over the run; per message it is divided by every message received "
		"in the run."));
	json_object_set_new(sc, "reading", json_string(
		"Broker µs per message should stay roughly flat as cells and flows grow (its "
		"ingest visits every ring, so a slow rise with the number of cells is the cost "
		"of that scan). The control flow's latency shows whether more cells and flows "
		"delay the highest-priority flow. With 2 cpus, all the cells' threads share cpu 0 "
		"(the only one the broker leaves): at 64 cells their wake-ups, not the broker, can "
		"dominate the control latency; see cell_cpus for the spread this run had."));
	json_object_set_new(sc, "cell_cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN) > 2 ?
							  sysconf(_SC_NPROCESSORS_ONLN) - 1 : 1));
}

int bench_scenario_scale(struct bench *b)
{
	/* (cells, flows per cell); 32 and 64 cells with 10 flows each start 640 to 1280
	 * threads on cpu 0, which only the standard set affords. */
	static const int grid_std[][2] = { { 2, 1 }, { 8, 1 }, { 32, 1 }, { 64, 1 },
					   { 2, 10 }, { 8, 10 }, { 32, 10 }, { 64, 10 } };
	static const int grid_quick[][2] = { { 2, 1 }, { 8, 1 }, { 32, 1 }, { 64, 1 },
					     { 2, 10 }, { 8, 10 } };
	const int (*grid)[2] = b->quick ? grid_quick : grid_std;
	int ng = b->quick ? 6 : 8, ran = 0;
	double dur = b->quick ? 1.5 : 3;
	json_t *sc = json_object(), *runs = json_array(), *viol = json_array();
	struct rtvio_platform_cfg plat;
	char path[160], label[48];

	bench_set_platform(sc, bench_bound_platform(b, false, &plat), &plat);
	for (int i = 0; i < ng && !rtvio_stop_requested; i++) {
		json_t *r;

		b->step++;
		snprintf(label, sizeof(label), "%d cells x %d flows", grid[i][0], grid[i][1]);
		bench_progress(b, "scale: %s", label);
		if (scale_config(b, grid[i][0], grid[i][1], &plat, path, sizeof(path))) {
			r = json_object();
			json_object_set_new(r, "label", json_string(label));
			json_object_set_new(r, "status", json_string("could not write the config"));
		} else {
			r = bench_bound_run(label, path, dur, viol);
			ran++;
		}
		json_object_set_new(r, "cells", json_integer(grid[i][0]));
		json_object_set_new(r, "flows_per_cell", json_integer(grid[i][1]));
		json_array_append_new(runs, r);
	}
	json_object_set_new(sc, "runs_detail", runs);
	json_object_set_new(sc, "violations", viol);
	scale_describe(sc);
	json_object_set(json_object_get(b->res, "scenarios"), "scale", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}
