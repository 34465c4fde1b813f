/* A cyclic executive on the arch's timer: each task has a period (0 = run on every
 * pass, a background task) and is released on a fixed grid; the network is polled
 * (gv_process) before every pass. A release run more than half a period after its
 * time counts as late; a release missed entirely moves the grid (no catch-up burst). */
#ifndef RTVIO_BAREMETAL_EXEC_H
#define RTVIO_BAREMETAL_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include "gvsock.h"

struct bm_task {
	const char *name;
	uint64_t period_ns;
	/* One step; returns true once the task has finished for good. */
	bool (*step)(void *arg, uint64_t now_ns);
	void *arg;
	/* The executive's. */
	uint64_t next_ns;
	uint64_t releases;
	uint64_t late;
	bool done;
};

#define BM_MAX_TASKS 8u

/* Runs `tasks` until all are done or `limit_ns` (absolute) passes. Returns 0, -EIO
 * (rings broken) or -ETIMEDOUT. */
int bm_exec_run(struct gv_stack *s, struct bm_task *tasks, unsigned int n, uint64_t limit_ns);

/* Polls the stack for `ns` (lets closes and resets finish before power-off). */
void bm_exec_idle(struct gv_stack *s, uint64_t ns);

#endif
