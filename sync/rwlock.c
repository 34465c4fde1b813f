/* The phase-fair lock's steps. sync/model/rwlock.pml models exactly these. */
#include "rwlock.h"

#include "relax.h"
#include "rterrno.h"

void sync_rw_init(struct sync_rwlock *rw)
{
	atomic_init(&rw->rin, 0);
	atomic_init(&rw->rout, 0);
	atomic_init(&rw->win, 0);
	atomic_init(&rw->wout, 0);
}

void sync_rw_read_begin(struct sync_rwlock *rw, struct sync_rw_waiter *w)
{
	/* Acquire: when no writer is present the reader is granted here and now, so this
	 * must see the last writer's critical section (released by its clearing of the
	 * bits in sync_rw_write_unlock). The add itself is the reader's place in the
	 * phase order: a writer that sets its bits later waits for this reader. */
	w->wbits = atomic_fetch_add_explicit(&rw->rin, SYNC_RW_RINC, memory_order_acquire) &
		   SYNC_RW_WBITS;
}

bool sync_rw_read_poll(struct sync_rwlock *rw, const struct sync_rw_waiter *w)
{
	/* Granted when no writer was present on arrival, or once the writer bits differ
	 * from those seen then: that writer has left (bits cleared, or set again by the
	 * next writer with the other phase id, who waits for us). Acquire pairs with the
	 * writer's release when it clears the bits. */
	return w->wbits == 0 ||
	       (atomic_load_explicit(&rw->rin, memory_order_acquire) & SYNC_RW_WBITS) !=
		       w->wbits;
}

void sync_rw_read_lock(struct sync_rwlock *rw)
{
	struct sync_rw_waiter w;

	sync_rw_read_begin(rw, &w);
	while (!sync_rw_read_poll(rw, &w))
		sync_cpu_relax();
}

int sync_rw_read_trylock(struct sync_rwlock *rw)
{
	uint32_t r = atomic_load_explicit(&rw->rin, memory_order_relaxed);

	/* Count ourselves in only if no writer is present at that very moment; acquire on
	 * success for the reason given in sync_rw_read_begin(). */
	while (!(r & SYNC_RW_WBITS))
		if (atomic_compare_exchange_weak_explicit(&rw->rin, &r, r + SYNC_RW_RINC,
							  memory_order_acquire,
							  memory_order_relaxed))
			return 0;
	return -RT_EBUSY;
}

void sync_rw_read_unlock(struct sync_rwlock *rw)
{
	/* Release: our reads of the protected data happen before a writer that sees
	 * this departure (its acquire load of rout) writes the data. */
	atomic_fetch_add_explicit(&rw->rout, SYNC_RW_RINC, memory_order_release);
}

void sync_rw_write_begin(struct sync_rwlock *rw, struct sync_rw_waiter *w)
{
	/* Relaxed: a ticket publishes nothing; the turn is handed over through wout. */
	w->ticket = atomic_fetch_add_explicit(&rw->win, 1, memory_order_relaxed);
	w->wbits = SYNC_RW_PRES | (w->ticket & SYNC_RW_PHID);
	w->phase = 0;
}

bool sync_rw_write_poll(struct sync_rwlock *rw, struct sync_rw_waiter *w)
{
	if (w->phase == 0) {
		/* Acquire pairs with the previous writer's release of wout. */
		if (atomic_load_explicit(&rw->wout, memory_order_acquire) != w->ticket)
			return false;
		/* Our turn among writers: set the writer bits. Readers counted before this
		 * must drain; readers after it wait for our phase to end. Relaxed: the count
		 * it returns is exact by the modification order of rin alone, and our
		 * critical section is ordered by the acquire load of rout below; readers
		 * are ordered after us by the release that clears the bits. */
		w->ticket = atomic_fetch_or_explicit(&rw->rin, w->wbits, memory_order_relaxed) &
			    ~SYNC_RW_WBITS;
		w->phase = 1;
	}
	/* Granted once every reader counted before the bits has departed. Acquire pairs
	 * with their release in sync_rw_read_unlock(). */
	return atomic_load_explicit(&rw->rout, memory_order_acquire) == w->ticket;
}

void sync_rw_write_lock(struct sync_rwlock *rw)
{
	struct sync_rw_waiter w;

	sync_rw_write_begin(rw, &w);
	while (!sync_rw_write_poll(rw, &w))
		sync_cpu_relax();
}

int sync_rw_write_trylock(struct sync_rwlock *rw)
{
	uint32_t t = atomic_load_explicit(&rw->wout, memory_order_acquire);
	uint32_t r;

	/* A writer ticket only if no writer holds or waits (win == wout). */
	if (!atomic_compare_exchange_strong_explicit(&rw->win, &t, t + 1,
						     memory_order_relaxed, memory_order_relaxed))
		return -RT_EBUSY;
	/* Now no other writer can set bits; set ours only if no reader is inside (the
	 * arrived count equals the departed one; rout never passes rin, so equality at
	 * the exchange means zero). Acquire: the last reader's departure and the last
	 * writer's critical section happen before ours. */
	r = atomic_load_explicit(&rw->rout, memory_order_acquire);
	if (atomic_compare_exchange_strong_explicit(&rw->rin, &r,
						    r | SYNC_RW_PRES | (t & SYNC_RW_PHID),
						    memory_order_acquire, memory_order_relaxed))
		return 0;
	/* Readers inside: give the writer turn on unused, as if taken and released at
	 * once. Release keeps the protocol's pairing with the next writer's acquire. */
	atomic_store_explicit(&rw->wout, t + 1, memory_order_release);
	return -RT_EBUSY;
}

void sync_rw_write_unlock(struct sync_rwlock *rw)
{
	/* Only the holder writes wout, so its own relaxed read is exact. */
	uint32_t t = atomic_load_explicit(&rw->wout, memory_order_relaxed);

	/* Release on both: the critical section happens before the readers that see the
	 * bits clear and before the next writer that sees its turn. The bits go first so
	 * that readers waiting on this phase can run before the next writer's phase. */
	atomic_fetch_and_explicit(&rw->rin, ~SYNC_RW_WBITS, memory_order_release);
	atomic_store_explicit(&rw->wout, t + 1, memory_order_release);
}
