/* A FIFO mutex: a ticket lock. Requests are granted in the order their ticket was
 * drawn (one atomic fetch-add), so a request waits for at most the requests that were
 * already queued when it arrived: with one request per processor, at most m - 1
 * critical sections (docs/sync.md).
 *
 * Both counters share one 32-bit word (next ticket above, serving ticket below, 16 bits
 * each, so up to 65535 requests may be outstanding): a try can then see "free" (the
 * halves equal) and take the lock in one compare-exchange of the whole word, which no
 * wrap-around of the counters between its load and its exchange can fool.
 *
 * Freestanding C11, no allocation: the caller owns the struct. Two ways to wait:
 * sync_mutex_lock() spins with the cpu-relax hint; sync_mutex_enqueue() and
 * sync_mutex_granted() split the same steps so that a caller can wait its own way
 * (a test yields to the OS scheduler between polls). */
#ifndef RTVIO_SYNC_MUTEX_H
#define RTVIO_SYNC_MUTEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SYNC_MUTEX_NEXT1 0x10000u  /* one ticket in the upper half */
#define SYNC_MUTEX_SERVING 0xffffu /* the serving ticket's half */

struct sync_mutex {
	/* next << 16 | serving; next is fetch-added by requesters, serving advanced by
	 * the holder. */
	_Atomic uint32_t word;
};

void sync_mutex_init(struct sync_mutex *m);

/* Joins the queue; the ticket (16 bits) is the caller's place in it. */
uint32_t sync_mutex_enqueue(struct sync_mutex *m);
/* True once the ticket holds the lock (acquire: the previous holder's writes are
 * visible from here on). Poll it until true; never abandon a ticket. */
bool sync_mutex_granted(struct sync_mutex *m, uint32_t ticket);

void sync_mutex_lock(struct sync_mutex *m);
/* 0 and the lock, or -RT_EBUSY when it is held or requests are queued (a try never
 * jumps the queue). */
int sync_mutex_trylock(struct sync_mutex *m);
void sync_mutex_unlock(struct sync_mutex *m);

#endif
