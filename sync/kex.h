/* A FIFO k-exclusion lock: at most k holders at once, admitted in the order their
 * ticket was drawn, each owning one slot 0..k-1 for as long as it holds (a copy engine
 * keeps a per-slot budget there). A request waits for at most ceil((m - k) / k)
 * critical sections under m processors (docs/sync.md).
 *
 * Admission is a relay: ticket t may pass only when admit == t (so no later ticket
 * overtakes it while it is slow to notice) and fewer than k earlier tickets still hold;
 * it then claims a free slot and hands admission to t + 1. Slots are claimed only
 * inside the admission turn, so two claimers never race for one slot.
 *
 * Freestanding C11, no allocation; the split ..._enqueue/..._poll form lets the caller
 * wait its own way. */
#ifndef RTVIO_SYNC_KEX_H
#define RTVIO_SYNC_KEX_H

#include <stdatomic.h>
#include <stdint.h>

/* Slots are the bits of one word. */
#define SYNC_KEX_MAX 32u
/* sync_kex_poll()'s "not yet" (-EAGAIN's value on Linux; core/rterrno.h has no
 * EAGAIN because core/ never waits). */
#define SYNC_KEX_PENDING (-11)

struct sync_kex {
	_Atomic uint32_t next;  /* the next ticket to hand out (fetch-add by requesters) */
	_Atomic uint32_t admit; /* the ticket allowed to pass admission (written by it) */
	_Atomic uint32_t done;  /* releases so far (fetch-add by holders leaving) */
	_Atomic uint32_t busy;  /* bit s set while slot s is held */
	uint32_t k;             /* holders allowed at once, 1..SYNC_KEX_MAX */
};

/* 0, or -RT_EINVAL for k outside 1..SYNC_KEX_MAX. */
int sync_kex_init(struct sync_kex *x, uint32_t k);

uint32_t sync_kex_enqueue(struct sync_kex *x);
/* The slot (0..k-1) once the ticket is admitted, SYNC_KEX_PENDING until then. Poll until it
 * returns a slot; never abandon a ticket. */
int sync_kex_poll(struct sync_kex *x, uint32_t ticket);
/* The slot granted. */
unsigned int sync_kex_lock(struct sync_kex *x);
/* A slot, or -RT_EBUSY when k requests hold or anyone waits (no queue jumping). */
int sync_kex_trylock(struct sync_kex *x);
void sync_kex_unlock(struct sync_kex *x, unsigned int slot);

#endif
