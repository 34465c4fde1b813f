/* What a bare-metal cell does, as executive tasks (see docs/baremetal.md):
 *  echo      listens on a port and returns every message (SEQPACKET) or every byte
 *            (STREAM) to its sender; finishes when its peer closes.
 *  sizes     connects to an echo peer and sends rtmsg messages of 1 B .. 256 KiB,
 *            one at a time; each must come back byte for byte.
 *  rtt       periodic SEQPACKET sender to an echo peer: round trips on this cell's
 *            own clock; lost, corrupt, late (round trip above the period) and late
 *            releases (the executive ran the sender more than half a period
 *            after its time) counted.
 *  scribble  after a delay, writes garbage into this cell's own TX descriptor table
 *            and avail index and kicks (rt/scribble.c): the broker must cut the
 *            cell off and nobody else may notice; then holds the VM up a while.
 * Each reports one RTVIO-RESULT JSON line when it finishes. */
#ifndef RTVIO_BAREMETAL_APP_H
#define RTVIO_BAREMETAL_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "exec.h"
#include "gvsock.h"

#define APP_MSG_MAX (256u << 10)

struct app_ctx {
	struct gv_stack *s;
	unsigned int failed;	/* results that were not ok */
};

/* Each fills *t and returns 0, or -EINVAL when no slot is left. */
int app_echo(struct app_ctx *c, struct bm_task *t, unsigned int type, uint32_t port);
int app_sizes(struct app_ctx *c, struct bm_task *t, unsigned int type, uint64_t cid,
	      uint32_t port);
/* Two tasks: a periodic sender and a background receiver. */
int app_rtt(struct app_ctx *c, struct bm_task t[2], uint64_t cid, uint32_t port,
	    uint64_t period_ns, uint32_t count, uint32_t size);

/* At most one; the network must not be used once it has run. */
int app_scribble(struct app_ctx *c, struct bm_task *t, uint64_t after_ms, uint64_t hold_ms);

/* Reports tasks that never finished (the executive's limit) as failed. */
void app_report_unfinished(struct app_ctx *c, struct bm_task *tasks, unsigned int n);

#endif
