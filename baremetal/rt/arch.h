/* What each ISA's runtime (baremetal/arch/<isa>/) gives the portable part of a
 * bare-metal cell. Everything runs on one CPU with interrupts off: the cell polls. */
#ifndef RTVIO_BAREMETAL_ARCH_H
#define RTVIO_BAREMETAL_ARCH_H

#include <stdint.h>

/* Name for the console and the result line ("x86_64", "aarch64", "riscv64"). */
extern const char arch_name[];

/* Boot: boot_arg is what the loader handed over (the PVH start_info on x86_64, the
 * DTB elsewhere). Sets up the console, the timer and the command line. */
void arch_init(uintptr_t boot_arg);

void arch_putc(char c);

/* A free-running counter and its frequency (fixed at arch_init). */
uint64_t arch_ticks(void);
uint64_t arch_tick_hz(void);

/* The kernel command line (-append), "" when there is none. */
const char *arch_cmdline(void);

/* The machine's virtio-mmio slots: slot n is at base + n * stride. */
struct arch_mmio {
	uintptr_t base;
	uintptr_t stride;
	unsigned int count;
};
void arch_mmio_slots(struct arch_mmio *out);

/* Stops the machine (QEMU exits); never returns. */
_Noreturn void arch_poweroff(int code);

/* The portable entry, called by each arch's start code after arch_init. */
_Noreturn void bm_main(void);

#endif
