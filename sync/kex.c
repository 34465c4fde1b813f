/* The k-exclusion lock's steps. sync/model/kex.pml models exactly these. */
#include "kex.h"

#include "relax.h"
#include "rterrno.h"

int sync_kex_init(struct sync_kex *x, uint32_t k)
{
	if (k == 0 || k > SYNC_KEX_MAX)
		return -RT_EINVAL;
	atomic_init(&x->next, 0);
	atomic_init(&x->admit, 0);
	atomic_init(&x->done, 0);
	atomic_init(&x->busy, 0);
	x->k = k;
	return 0;
}

uint32_t sync_kex_enqueue(struct sync_kex *x)
{
	/* Relaxed: a ticket publishes nothing; admission is handed over through admit. */
	return atomic_fetch_add_explicit(&x->next, 1, memory_order_relaxed);
}

/* Inside the admission turn: claims the lowest free slot and passes the turn on.
 * At most k - 1 other tickets hold (the caller checked), every one of them has its
 * slot already (claimed inside its own turn), and slots are only freed meanwhile, so
 * one pass over the word finds a free bit. */
static unsigned int claim_and_pass(struct sync_kex *x, uint32_t ticket)
{
	/* Acquire pairs with the release that freed the slot: the previous owner's use of
	 * the slot's data happens before ours. */
	uint32_t busy = atomic_load_explicit(&x->busy, memory_order_acquire);
	unsigned int s = 0;

	while (s < x->k - 1 && (busy & (1u << s)))
		s++;
	/* Relaxed: only the admission turn sets bits, and nothing is published by it. */
	atomic_fetch_or_explicit(&x->busy, 1u << s, memory_order_relaxed);
	/* Release: our claim of the slot is visible to the next ticket's claim, which
	 * acquires admit before reading busy. */
	atomic_store_explicit(&x->admit, ticket + 1, memory_order_release);
	return s;
}

int sync_kex_poll(struct sync_kex *x, uint32_t ticket)
{
	/* Acquire pairs with the previous ticket's release of admit (its claim). */
	if (atomic_load_explicit(&x->admit, memory_order_acquire) != ticket)
		return SYNC_KEX_PENDING;
	/* Fewer than k earlier tickets still hold: ticket - done counts them (all earlier
	 * tickets are admitted, done of them released). Acquire pairs with the release of
	 * done in sync_kex_unlock(). Unsigned differences stay right across wrap-around. */
	if (ticket - atomic_load_explicit(&x->done, memory_order_acquire) >= x->k)
		return SYNC_KEX_PENDING;
	return (int)claim_and_pass(x, ticket);
}

unsigned int sync_kex_lock(struct sync_kex *x)
{
	uint32_t t = sync_kex_enqueue(x);
	int s;

	while ((s = sync_kex_poll(x, t)) < 0)
		sync_cpu_relax();
	return (unsigned int)s;
}

int sync_kex_trylock(struct sync_kex *x)
{
	/* Acquire: if the ticket below is ours, these loads ordered us after the last
	 * admission and the last release, as sync_kex_poll() would have. */
	uint32_t a = atomic_load_explicit(&x->admit, memory_order_acquire);
	uint32_t d = atomic_load_explicit(&x->done, memory_order_acquire);

	if (a - d >= x->k)
		return -RT_EBUSY;
	/* Take ticket a only if nobody is queued (next == admit): then admit stays a
	 * until we pass it on, and done only grows, so the check above still holds. */
	if (!atomic_compare_exchange_strong_explicit(&x->next, &a, a + 1,
						     memory_order_relaxed, memory_order_relaxed))
		return -RT_EBUSY;
	return (int)claim_and_pass(x, a);
}

void sync_kex_unlock(struct sync_kex *x, unsigned int slot)
{
	/* Release on both: our use of the slot happens before its next owner's claim, and
	 * our whole hold before the admission this release allows. The slot is freed
	 * first, so that whoever the new done value admits finds it free. */
	atomic_fetch_and_explicit(&x->busy, ~(1u << slot), memory_order_release);
	atomic_fetch_add_explicit(&x->done, 1, memory_order_release);
}
