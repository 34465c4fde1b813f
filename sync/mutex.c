/* The ticket lock's steps. sync/model/mutex.pml models exactly these. */
#include "mutex.h"

#include "relax.h"
#include "rterrno.h"

void sync_mutex_init(struct sync_mutex *m)
{
	atomic_init(&m->word, 0);
}

uint32_t sync_mutex_enqueue(struct sync_mutex *m)
{
	/* Relaxed: drawing a ticket publishes nothing and reads nothing protected; the
	 * hand-over is ordered by the holder's release and the waiter's acquire in
	 * sync_mutex_granted(). The upper half wraps off the top of the word. */
	return atomic_fetch_add_explicit(&m->word, SYNC_MUTEX_NEXT1, memory_order_relaxed) >> 16;
}

bool sync_mutex_granted(struct sync_mutex *m, uint32_t ticket)
{
	/* Acquire pairs with the release in sync_mutex_unlock(): the previous holder's
	 * critical section happens before ours. */
	return (atomic_load_explicit(&m->word, memory_order_acquire) & SYNC_MUTEX_SERVING) ==
	       ticket;
}

void sync_mutex_lock(struct sync_mutex *m)
{
	uint32_t t = sync_mutex_enqueue(m);

	while (!sync_mutex_granted(m, t))
		sync_cpu_relax();
}

int sync_mutex_trylock(struct sync_mutex *m)
{
	uint32_t v = atomic_load_explicit(&m->word, memory_order_relaxed);

	if ((v >> 16) != (v & SYNC_MUTEX_SERVING))
		return -RT_EBUSY;
	/* Draw the next ticket only if the word still says free. Acquire on success pairs
	 * with the last unlock's release, as in sync_mutex_granted(). */
	if (atomic_compare_exchange_strong_explicit(&m->word, &v, v + SYNC_MUTEX_NEXT1,
						    memory_order_acquire, memory_order_relaxed))
		return 0;
	return -RT_EBUSY;
}

void sync_mutex_unlock(struct sync_mutex *m)
{
	uint32_t v = atomic_load_explicit(&m->word, memory_order_relaxed);

	/* Advance serving within its half (a plain add would carry into next at the
	 * wrap). Requesters may add tickets meanwhile, so retry on their change: at most
	 * once per request drawn during the loop, i.e. bounded by the processors. Release
	 * orders the whole critical section before the next ticket's grant. */
	while (!atomic_compare_exchange_weak_explicit(
		&m->word, &v, (v & ~SYNC_MUTEX_SERVING) | ((v + 1) & SYNC_MUTEX_SERVING),
		memory_order_release, memory_order_relaxed))
		;
}
