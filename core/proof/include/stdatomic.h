/* The proof's model of <stdatomic.h> (Frama-C reads this one, never gcc).
 *
 * Frama-C 25's own <stdatomic.h> declares its load/store stubs without contracts, so
 * WP would assume they may write anything. Here each shared access is a volatile
 * access instead: WP (-wp-volatile, its default) gives every volatile read a fresh,
 * arbitrary value, which is exactly what a hostile cell can make a ring field hold at
 * any moment. A fence orders accesses between CPUs and changes no value a single
 * thread sees, so for WP's sequential semantics it is a no-op; the ordering itself is
 * outside what WP proves (docs/verification.md). */
#ifndef RTVIO_PROOF_STDATOMIC_H
#define RTVIO_PROOF_STDATOMIC_H

#define _Atomic

typedef enum {
	memory_order_relaxed,
	memory_order_consume,
	memory_order_acquire,
	memory_order_release,
	memory_order_acq_rel,
	memory_order_seq_cst
} memory_order;

#define atomic_load_explicit(obj, order) ((void)(order), *(volatile __typeof__(*(obj)) *)(obj))
#define atomic_store_explicit(obj, value, order) \
	((void)(order), (void)(*(volatile __typeof__(*(obj)) *)(obj) = (value)))

/*@ assigns \nothing; */
void atomic_thread_fence(memory_order order);

#endif
