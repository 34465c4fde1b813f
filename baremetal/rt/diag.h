/* What the stack holds when a task gives up: its counters, its TX resources and
 * every socket slot in use, on the console, so a failed run explains itself. */
#ifndef RTVIO_BAREMETAL_DIAG_H
#define RTVIO_BAREMETAL_DIAG_H

#include <stdint.h>

#include "gvsock.h"

/* RTVIO-DIAG lines: one {"task","port","stats":{..},"tx":{..}} and one per slot that
 * is not free ({"slot","state","type","pend","err",ports, "deadline_in_ms"}). */
void bm_diag(struct gv_stack *s, const char *task, uint32_t port);

#endif
