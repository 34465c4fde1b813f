/* `rtvio bench cores`: broker throughput and control-flow latency with one and two
 * broker cores ([broker] cpus), 2..64 cells. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <unistd.h>

#include "bench.h"
#include "runner.h"

/* The broker's cpus for `ncores` data-plane cores: core 0 on the broker's own cpu,
 * the next ones on the other cpus in order (on a 2-cpu machine core 1 shares cpu 0
 * with the cells). One core: `cpu = BROKER_CPU`, as every other scenario. */
void bench_broker_cpus(FILE *f, int ncores)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);

	if (ncores <= 1) {
		fprintf(f, "cpu = %d\n", BROKER_CPU);
		return;
	}
	fprintf(f, "cpus = %d", BROKER_CPU);
	for (int c = 0, n = 1; n < ncores && c < online; c++)
		if (c != BROKER_CPU) {
			fprintf(f, ",%d", c);
			n++;
		}
	fprintf(f, "\n");
}

/* n cells in a ring, each sending 64 B every 10 ms to the next (seqpacket), the
 * measured control flow (64 B every 1 ms, priority 1) from c0 to c1, and a
 * best-effort bulk stream from the last cell to c0 that takes what the broker has
 * left: its bytes are the throughput. Cells are dealt to the cores by slot, so with
 * two cores the control flow and the bulk flow cross them. */
static int cores_config(struct bench *b, int n, int ncores,
			const struct rtvio_platform_cfg *plat, char *path, size_t len)
{
	FILE *fp;

	snprintf(path, len, "%s/cores-%d-%d.conf", b->tmp, n, ncores);
	fp = fopen(path, "w");
	if (!fp)
		return -errno;
	fprintf(fp, "[broker]\npolicy = fp\nchunk = 4KiB\nsocket_dir = %s/cores-%d-%d\n"
		    "rt_priority = %d\npoll = no\ndefault = deny\n", b->tmp, n, ncores,
		BROKER_SLEEP_PRIO);
	bench_broker_cpus(fp, ncores);
	for (int c = 0; c < n; c++)
		fprintf(fp, "\n[cell c%d]\ncid = %d\nregion = 4MiB\ncpu = %d\nrt_priority = %d\n", c,
			3 + c, bench_cell_cpu(c), RT_PRIO);
	fprintf(fp, "\n[flow control]\nfrom = c0:999\nto = c1:999\ntype = seqpacket\nsize = 64\n"
		    "period = 1ms\npriority = 1\n");
	for (int c = 0; c < n; c++)
		fprintf(fp, "\n[flow ring%d]\nfrom = c%d\nto = c%d:%d\ntype = seqpacket\nsize = 64\n"
			    "period = 10ms\n", c, c, (c + 1) % n, 1000 + c);
	fprintf(fp, "\n[flow bulk]\nfrom = c%d\nto = c0:2000\ntype = stream\nsize = 256KiB\n"
		    "class = best-effort\n\n", n - 1);
	rtvio_platform_write(fp, plat);
	return fclose(fp) ? -EIO : 0;
}

static void cores_describe(json_t *sc)
{
	json_object_set_new(sc, "conditions", json_string(
		"N process cells (`rtvio cell`, real-time threads SCHED_FIFO 50, spread over every "
		"online cpu but cpu 1: all on cpu 0 on a 2-cpu machine) in a ring of seqpacket "
		"flows (64 B every 10 ms), the control flow (64 B every 1 ms, priority 1) from c0 "
		"to c1, and a best-effort bulk stream from the last cell to c0 as fast as its "
		"sender writes. The broker sleeps on kicks at SCHED_FIFO 80, policy fp, with one "
		"data-plane core on cpu 1 or two (`cpus = 1,0`: the second on the cells' cpu when "
		"the machine has two). Cells are dealt to the cores by slot, so with two cores "
		"the control and bulk flows cross them. Throughput is the bulk flow's bytes "
		"through the broker over the run."));
	json_object_set_new(sc, "reading", json_string(
		"A second core helps when the broker, not the cells, is the bottleneck and the "
		"core has a cpu of its own. On a 2-cpu machine the second core shares cpu 0 with "
		"every cell: at SCHED_FIFO 80 it preempts the cells whenever it has work, so "
		"what it adds in copy capacity it takes from the cells that produce and consume "
		"the traffic, and its pick and completion sections contend with core 0 for the "
		"data plane's mutex. Expect no gain in throughput there, and control latency "
		"that reflects the cells' wake-ups on a busier cpu 0."));
}

int bench_scenario_cores(struct bench *b)
{
	static const int cells_std[] = { 2, 8, 32, 64 };
	static const int cells_quick[] = { 2, 8, 32 };
	const int *cells = b->quick ? cells_quick : cells_std;
	int nc = b->quick ? 3 : 4, ran = 0;
	double dur = b->quick ? 1.5 : 3;
	json_t *sc = json_object(), *runs = json_array(), *viol = json_array();
	struct rtvio_platform_cfg plat;
	char path[160], label[48];

	bench_set_platform(sc, bench_bound_platform(b, false, &plat), &plat);
	for (int i = 0; i < nc && !rtvio_stop_requested; i++)
		for (int k = 1; k <= 2 && !rtvio_stop_requested; k++) {
			json_t *r;

			b->step++;
			snprintf(label, sizeof(label), "%d cells, %d broker core%s", cells[i], k,
				 k > 1 ? "s" : "");
			bench_progress(b, "cores: %s", label);
			if (cores_config(b, cells[i], k, &plat, path, sizeof(path))) {
				r = json_object();
				json_object_set_new(r, "label", json_string(label));
				json_object_set_new(r, "status", json_string("could not write the config"));
			} else {
				r = bench_bound_run(label, path, dur, viol);
				ran++;
			}
			json_object_set_new(r, "cells", json_integer(cells[i]));
			json_object_set_new(r, "broker_cores", json_integer(k));
			json_array_append_new(runs, r);
		}
	json_object_set_new(sc, "runs_detail", runs);
	json_object_set_new(sc, "violations", viol);
	cores_describe(sc);
	json_object_set(json_object_get(b->res, "scenarios"), "cores", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}
