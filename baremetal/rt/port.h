/* The bare-metal port of gvsock: one vsock device on virtio-mmio, the stack's
 * region and storage in static memory, polled. Guest-physical = virtual (every
 * runtime maps memory 1:1), so a ring address is the pointer's value. */
#ifndef RTVIO_BAREMETAL_PORT_H
#define RTVIO_BAREMETAL_PORT_H

#include <stdint.h>

#include "gvsock.h"

/* Finds the device, negotiates, lays out and hands over the three queues, starts
 * gvsock. 0 and *out, or a negative errno (reported on the console). */
int bm_port_open(struct gv_stack **out);

/* Monotonic ns on the arch's timer (the stack's clock and the executive's). */
uint64_t bm_now_ns(void);

/* Runs gv_process until it has nothing left; negative once the rings are broken. */
int bm_port_poll(struct gv_stack *s);

/* Writes garbage into the TX descriptor table and publishes an impossible avail
 * index, then kicks: a cell gone bad, for the broker's isolation test (the
 * `scribble` word). The stack must not be used afterwards. */
void bm_port_scribble(void);

#endif
