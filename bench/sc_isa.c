/* `rtvio bench isa`: boot-to-first-message time and round-trip latency of a cell of
 * each kind — bare metal on x86_64, aarch64 and riscv64, the Linux guest, a process
 * cell — through one broker to a process-cell echo. The VMs are QEMU (TCG), which
 * scripts/vm/isabench starts and measures; this keeps its JSON in the results. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "runner.h"

#ifndef RTVIO_SOURCE_DIR
#define RTVIO_SOURCE_DIR "."
#endif
#define ISA_TIMEOUT_MS (12 * 60 * 1000) /* five cells, each under its own 120 s limit */

static void isa_describe(json_t *sc)
{
	json_object_set_new(sc, "conditions", json_string(
		"One broker (policy fp, sleeping), one cell of each kind at a time, each sending "
		"a 64 B SEQPACKET message every 20 ms to its own process-cell echo "
		"(tests/e2e_tool echo). Boot to first message: host time from starting QEMU "
		"(or the process) to the broker's first packet from the cell, `rtvio stat` "
		"polled every 10 ms. Round trips on the sending cell's own clock."));
	json_object_set_new(sc, "reading", json_string(
		"Every VM is emulated (TCG) on a shared 2-cpu machine: its times are "
		"milliseconds and say how heavy each ISA's emulation is, not what the hardware "
		"would do. Boot to first message covers QEMU start-up, firmware (OpenSBI on "
		"riscv64), the image's own start-up and the connection set-up; a Linux guest "
		"adds its kernel boot."));
}

int bench_scenario_isa(struct bench *b)
{
	char script[4096], tool[4200], build[4096];
	const char *self = proc_self_exe();
	struct proc p;
	json_t *doc, *sc;

	b->step++;
	bench_progress(b, "isa: five cells, one at a time, under QEMU");
	snprintf(script, sizeof(script), "%s/scripts/vm/isabench", RTVIO_SOURCE_DIR);
	snprintf(build, sizeof(build), "%s", strchr(self, '/') ? self : "./rtvio");
	*strrchr(build, '/') = '\0'; /* the build directory: e2e_tool and the images */
	snprintf(tool, sizeof(tool), "%s/tests/e2e_tool", build);
	const char *argv[] = { "python3", script, self, tool, build, "--count",
			       b->quick ? "50" : "200", NULL };

	bench_proc_blank(&p);
	if (proc_start(&p, argv, PROC_CAPTURE) < 0 || !proc_wait(&p, ISA_TIMEOUT_MS)) {
		proc_stop(&p, SIGTERM, 5000);
		proc_free(&p);
		bench_note(b, "isa: scripts/vm/isabench did not finish");
		return -EIO;
	}
	doc = p.out ? json_loads(p.out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	proc_free(&p);
	if (!json_is_array(json_object_get(doc, "cells"))) {
		json_decref(doc);
		bench_note(b, "isa: scripts/vm/isabench gave no result");
		return -EIO;
	}
	sc = json_object();
	json_object_set(sc, "cells", json_object_get(doc, "cells"));
	json_decref(doc);
	isa_describe(sc);
	json_object_set(json_object_get(b->res, "scenarios"), "isa", sc);
	json_decref(sc);
	return 0;
}
