/* Shared-memory ordering for core/: named fences and index accessors.
 *
 * Every access to a field that the other side of a ring reads or writes concurrently
 * (ring indices, flags, event indices) goes through one of the accessors below, and
 * each names its C11 memory order. Ring contents (descriptors, ring slots, used
 * elements) are plain memory: they are ordered by the release store of the index that
 * publishes them and the acquire load of the index that discovers them.
 *
 * Shared fields are declared _Atomic uint16_t in virtq.h so that these are ordinary
 * C11 atomics (and ThreadSanitizer sees the synchronisation); their layout is that of
 * uint16_t (checked with _Static_assert there). The accessors convert between the
 * field's little-endian bytes and host order, so callers only ever see host order.
 *
 * core/model/virtq.pml checks the ring protocol that uses these under a weak memory
 * model (store buffers draining out of order, loads reordered against loads), with
 * one switch per fence of core/virtq.c; docs/verification.md says which property
 * each fence protects.
 *
 * <stdatomic.h> is one of the headers a freestanding C11 implementation provides. */
#ifndef RTVIO_CORE_FENCE_H
#define RTVIO_CORE_FENCE_H

#include <stdatomic.h>
#include <stdint.h>

#include "le.h"

/* A shared 16-bit field (index, flags or event index) in little-endian byte order. */
typedef _Atomic uint16_t shm_le16;

/* Discovers what the other side published before storing this index: the ring
 * entries it covers are visible after this load. */
/*@ requires \valid_read(p);
    assigns \nothing; */
static inline uint16_t shm_load_acquire(const shm_le16 *p)
{
	return le16_to_cpu(atomic_load_explicit(p, memory_order_acquire));
}

/* Publishes every earlier write (descriptors, ring slots, used elements) before the
 * new index value becomes visible. */
/*@ requires \valid(p);
    assigns *p; */
static inline void shm_store_release(shm_le16 *p, uint16_t v)
{
	atomic_store_explicit(p, cpu_to_le16(v), memory_order_release);
}

/* Flags and event indices carry no data of their own; their ordering against the
 * indices comes from fence_sync() at the places that need it. */
/*@ requires \valid_read(p);
    assigns \nothing; */
static inline uint16_t shm_load_relaxed(const shm_le16 *p)
{
	return le16_to_cpu(atomic_load_explicit(p, memory_order_relaxed));
}

/*@ requires \valid(p);
    assigns *p; */
static inline void shm_store_relaxed(shm_le16 *p, uint16_t v)
{
	atomic_store_explicit(p, cpu_to_le16(v), memory_order_relaxed);
}

/* Orders every earlier store before every later load (and everything else): the
 * store-load barrier that a release/acquire pair does not give. Needed wherever one
 * side publishes something and then reads what the other side published, and each
 * side does the same in the opposite roles (Dekker): publishing an index and then
 * reading the peer's event index or flags, or re-enabling notifications and then
 * re-reading the peer's index. Without it both sides can miss each other's store and
 * a notification is lost. */
/*@ assigns \nothing; */
static inline void fence_sync(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}

/* Orders earlier loads and stores before later stores (release fence): for callers
 * that publish through a plain store of their own. core/virtq.c does not use it (its
 * release stores order themselves), so the model has no switch for it. */
/*@ assigns \nothing; */
static inline void fence_ord_write(void)
{
	atomic_thread_fence(memory_order_release);
}

/* Orders earlier loads before later loads and stores (acquire fence): for callers
 * that discovered an index through a relaxed load. Not used by core/virtq.c either. */
/*@ assigns \nothing; */
static inline void fence_ord_read(void)
{
	atomic_thread_fence(memory_order_acquire);
}

#endif
