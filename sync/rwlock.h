/* A phase-fair reader-writer lock (the ticket-based PF-T lock of Brandenburg and
 * Anderson, ECRTS 2009): reader phases and writer phases
 * alternate whenever both kinds wait. A reader waits for at most the one writer phase
 * that was pending or running when it arrived (and the reader phase before it), so a
 * read request is blocked for a constant time whatever the number of processors;
 * writers are granted among themselves in FIFO ticket order, each behind at most one
 * reader phase per writer ahead of it. docs/sync.md says why this, and not a strictly
 * FIFO (task-fair) reader-writer queue, fits the FIFO-scheduling analysis.
 *
 * Freestanding C11, no allocation. As with the mutex, each request can be split into a
 * queue step (..._begin) and a poll (..._poll) that the caller repeats until true; the
 * caller keeps the small waiter record between them. */
#ifndef RTVIO_SYNC_RWLOCK_H
#define RTVIO_SYNC_RWLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* rin's low two bits: a writer is present (waiting for readers to drain, or holding),
 * and the parity of its ticket, so that a spinning reader notices that a writer phase
 * ended even if the next writer has already set the present bit again. The count of
 * readers that arrived sits above them, in units of SYNC_RW_RINC. */
#define SYNC_RW_PRES 0x2u
#define SYNC_RW_PHID 0x1u
#define SYNC_RW_WBITS 0x3u
#define SYNC_RW_RINC 0x4u

struct sync_rwlock {
	_Atomic uint32_t rin;  /* readers arrived (count above WBITS) + writer bits */
	_Atomic uint32_t rout; /* readers departed, same units (low bits always 0) */
	_Atomic uint32_t win;  /* the next writer ticket (fetch-add by writers) */
	_Atomic uint32_t wout; /* the writer ticket whose turn it is (written by writers) */
};

/* A request in progress: filled by ..._begin, advanced by ..._poll. */
struct sync_rw_waiter {
	uint32_t wbits;  /* reader: writer bits seen on arrival; writer: bits it sets */
	uint32_t ticket; /* writer: its ticket, then the reader count it waits to drain */
	uint32_t phase;  /* writer: 0 waits for its turn, 1 waits for readers */
};

void sync_rw_init(struct sync_rwlock *rw);

void sync_rw_read_begin(struct sync_rwlock *rw, struct sync_rw_waiter *w);
bool sync_rw_read_poll(struct sync_rwlock *rw, const struct sync_rw_waiter *w);
void sync_rw_read_lock(struct sync_rwlock *rw);
/* 0 and a read hold, or -RT_EBUSY when a writer is present. */
int sync_rw_read_trylock(struct sync_rwlock *rw);
void sync_rw_read_unlock(struct sync_rwlock *rw);

void sync_rw_write_begin(struct sync_rwlock *rw, struct sync_rw_waiter *w);
bool sync_rw_write_poll(struct sync_rwlock *rw, struct sync_rw_waiter *w);
void sync_rw_write_lock(struct sync_rwlock *rw);
/* 0 and the write hold, or -RT_EBUSY when anyone holds it or a writer waits. */
int sync_rw_write_trylock(struct sync_rwlock *rw);
void sync_rw_write_unlock(struct sync_rwlock *rw);

#endif
