/* The copy engine's innermost routine: moving payload bytes from a sender's TX
 * segment into a receiver's RX segment (`[broker] copy`, docs/config.md).
 *
 * Both routines copy exactly n bytes and write nothing outside [dst, dst + n). The
 * source lies in memory the sender can still write while it is copied: its bytes are
 * only moved, never looked at. Neither routine allocates or makes a system call: they
 * run on the real-time path.
 *
 * When a routine returns, every byte it stored is ordered before any later store of
 * the calling thread (in particular the used-ring index store that hands the buffer
 * to the receiver), so the caller publishes with its ordinary release ordering
 * whichever routine it used. */
#ifndef RTVIO_BROKER_DP_COPY_H
#define RTVIO_BROKER_DP_COPY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef void (*dp_copy_fn)(void *dst, const void *src, size_t n);

/* memcpy: ordinary, cached stores. */
void dp_copy_normal(void *dst, const void *src, size_t n);

/* Non-temporal stores for the 16-byte-aligned middle of the destination (x86-64:
 * SSE2 streaming stores, which bypass the cache and go to memory through
 * write-combining buffers), ordinary stores for the unaligned head and tail, then a
 * store fence. Copies shorter than DP_COPY_NT_MIN use ordinary stores only. Where
 * dp_copy_nt_native() is false it is memcpy. */
void dp_copy_nt(void *dst, const void *src, size_t n);

/* Below this many bytes a streaming copy is not worth it: partial write-combining
 * lines are flushed piecemeal, and the fence costs more than the cache it spares. */
#define DP_COPY_NT_MIN 64u

/* true when dp_copy_nt really uses non-temporal stores on this build. */
bool dp_copy_nt_native(void);

/* The routine for a configured copy mode. */
dp_copy_fn dp_copy_select(enum rtvio_copy mode);

#endif
