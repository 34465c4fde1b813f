/* Worst-case waiting per request (spin or suspension counted as computation, the
 * suspension-oblivious view) for sync/'s locks, when the jobs that request them are
 * scheduled FIFO on m processors: a running job is then never preempted, so every
 * holder runs, and each processor has at most one request outstanding. Times are in
 * any one unit (rtvio uses nanoseconds): L is the longest critical section of the
 * requests concerned. The arguments are in docs/sync.md. Results saturate at
 * UINT64_MAX; m == 0 is treated as one processor. */
#ifndef RTVIO_SYNC_BOUNDS_H
#define RTVIO_SYNC_BOUNDS_H

#include <stdint.h>

/* FIFO mutex: (m - 1) L. */
uint64_t sync_bound_mutex(uint32_t m, uint64_t l);
/* Phase-fair reader: l_r + l_w (one reader phase draining, then one writer phase);
 * 0 when m <= 1. */
uint64_t sync_bound_rw_reader(uint32_t m, uint64_t l_r, uint64_t l_w);
/* Phase-fair writer: (m - 1) l_w + m l_r (every writer ahead, and a reader phase
 * before each of them and before itself); 0 when m <= 1. */
uint64_t sync_bound_rw_writer(uint32_t m, uint64_t l_r, uint64_t l_w);
/* FIFO k-exclusion: ceil((m - k) / k) L, 0 when m <= k. */
uint64_t sync_bound_kex(uint32_t m, uint32_t k, uint64_t l);

#endif
