/* aarch64 on QEMU's virt machine at EL1: PL011 UART at 0x09000000, the generic
 * timer's virtual count (CNTVCT_EL0 at CNTFRQ_EL0), virtio-mmio slots from
 * 0x0a000000, power-off by PSCI SYSTEM_OFF (QEMU's own PSCI, HVC conduit, when no
 * firmware runs at EL2/EL3). */
#include <stdint.h>

#include "arch.h"
#include "dtb.h"

#define UART 0x09000000u
#define UART_FR 0x18u
#define UART_FR_TXFF 0x20u
#define RAM_BASE 0x40000000u
#define PSCI_SYSTEM_OFF 0x84000008u

const char arch_name[] = "aarch64";
static const char *cmdline = "";
static uint64_t freq;

void arch_init(uintptr_t boot_arg)
{
	cmdline = dtb_bootargs(boot_arg);
	if (!*cmdline)
		cmdline = dtb_bootargs(RAM_BASE);
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(freq));
}

void arch_putc(char c)
{
	volatile uint32_t *u = (volatile uint32_t *)UART;

	while (u[UART_FR / 4] & UART_FR_TXFF)
		;
	u[0] = (uint8_t)c;
}

uint64_t arch_ticks(void)
{
	uint64_t t;

	/* The isb keeps the read from being taken early, ahead of the code it times. */
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(t) : : "memory");
	return t;
}

uint64_t arch_tick_hz(void)
{
	return freq;
}

const char *arch_cmdline(void)
{
	return cmdline;
}

void arch_mmio_slots(struct arch_mmio *out)
{
	*out = (struct arch_mmio){ .base = 0x0a000000u, .stride = 0x200u, .count = 32 };
}

_Noreturn void arch_poweroff(int code)
{
	register uint64_t x0 __asm__("x0") = PSCI_SYSTEM_OFF;

	(void)code; /* PSCI has no exit status: the result line carries it */
	__asm__ volatile("hvc #0" : "+r"(x0) : : "memory");
	for (;;)
		__asm__ volatile("wfi");
}
