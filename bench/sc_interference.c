/* `rtvio bench interference`: control latency and bulk throughput with `rtvio hog`
 * on the cells' core, the broker's copy engine unregulated and regulated. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"

#define REG_BUDGET "512KiB"	/* per 1 ms: 0.5 GB/s for the copy engine */

static void intf_describe(json_t *sc)
{
	json_object_set_new(sc, "conditions", json_string(
		"The isolation scenario's rtvio set-up under policy fp with the bulk flow always "
		"on (control: 64 B every 1 ms; bulk: 1 MiB messages back to back), with and "
		"without `rtvio hog --cpu 0 --rate max` (copy pattern through buffers larger "
		"than the last-level cache, at ordinary priority on the cells' core, the one "
		"the broker does not use), and with the broker's copy engine unregulated or "
		"regulated to " REG_BUDGET " per 1 ms."));
	json_object_set_new(sc, "reading", json_string(
		"The hog competes for the memory system the broker copies through (and for cpu "
		"0 with the ordinary-priority bulk processes, not with the SCHED_FIFO control "
		"threads). Regulation caps the broker's own memory traffic, protecting other "
		"cores' memory bandwidth from the broker: bulk throughput should drop to about "
		"the budget, while the control flow, which needs little of it, should keep its "
		"latency unless it waits for a budget refill behind bulk chunks. On a VM the "
		"host's own memory traffic is an unmeasured third party."));
}

int bench_scenario_interference(struct bench *b)
{
	json_t *sc = json_object(), *runs = json_array();
	char text[4096], label[96], cmd[512];
	int ran = 0;

	for (int hog = 0; hog < 2 && !rtvio_stop_requested; hog++) {
		for (int reg = 0; reg < 2 && !rtvio_stop_requested; reg++) {
			struct broker brk = { 0 };
			struct proc h;
			json_t *r, *hj = NULL;

			b->step++;
			snprintf(label, sizeof(label), "hog %s, regulation %s", hog ? "on" : "off",
				 reg ? "on (" REG_BUDGET "/ms)" : "off");
			bench_progress(b, "interference: %s", label);
			snprintf(brk.sockdir, sizeof(brk.sockdir), "%s/intf-%d%d", b->tmp, hog, reg);
			bench_iso_config(brk.sockdir, "fp", reg ? REG_BUDGET : "0", text, sizeof(text));
			snprintf(cmd, sizeof(cmd), "intf-%d%d", hog, reg);
			if (bench_broker_start(b, &brk, cmd, text)) {
				bench_broker_stop(&brk);
				continue;
			}
			bench_proc_blank(&h);
			if (hog) {
				/* Its once-a-second rate lines would break the progress line. */
				snprintf(cmd, sizeof(cmd), "exec '%s' hog --cpu %d --rate max --json "
					 "2>/dev/null", proc_self_exe(), CELL_CPU);
				const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
				proc_start(&h, argv, 1);
				usleep(500000);
			}
			r = bench_iso_run(b, ISO_RTVIO, brk.sockdir, true, brk.p.pid);
			if (hog) {
				proc_stop(&h, SIGTERM, 3000);
				hj = h.out ? json_loads(h.out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
				if (json_is_number(json_object_get(hj, "achieved_Bps")))
					json_object_set_new(r, "hog_gbps", json_real(json_number_value(
						json_object_get(hj, "achieved_Bps")) / 1e9));
				json_decref(hj);
			}
			proc_free(&h);
			json_object_set_new(r, "hog", json_boolean(hog));
			json_object_set_new(r, "regulation", json_boolean(reg));
			bench_iso_add(runs, r, label, true);
			bench_broker_stop(&brk);
			ran++;
		}
	}
	json_object_set_new(sc, "runs", runs);
	intf_describe(sc);
	json_object_set(json_object_get(b->res, "scenarios"), "interference", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}
