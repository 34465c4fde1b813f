/* The spin-wait hint: tells the core that the loop around it only waits for another
 * core's store, so that it saves power, yields pipeline resources to a sibling
 * hardware thread and leaves the memory system alone between polls.
 *
 * It is a hint and orders nothing: every loop that calls it re-reads the lock word
 * with an atomic load that states its own memory order. */
#ifndef RTVIO_SYNC_RELAX_H
#define RTVIO_SYNC_RELAX_H

static inline void sync_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
	/* yield is a no-op on most cores; isb actually stalls the pipeline for a few
	 * cycles, which is what a polling loop wants (as Linux arm64 and Rust do). */
	__asm__ __volatile__("isb" ::: "memory");
#elif defined(__arm__)
	__asm__ __volatile__("yield" ::: "memory");
#elif defined(__riscv)
	/* Zihintpause's pause is a fence encoding older cores execute as a no-op hint,
	 * so this word is safe without the extension. */
	__asm__ __volatile__(".4byte 0x0100000f" ::: "memory");
#else
	/* No hint known: a compiler barrier keeps the loop from being folded. */
	__asm__ __volatile__("" ::: "memory");
#endif
}

#endif
