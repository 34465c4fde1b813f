/* riscv64 on QEMU's virt machine, S-mode under OpenSBI: 16550 UART at 0x10000000,
 * the `time` CSR at the virt machine's 10 MHz timebase, virtio-mmio slots from
 * 0x10001000, power-off through the SiFive test device (sifive_test). */
#include <stdint.h>

#include "arch.h"
#include "dtb.h"

#define UART 0x10000000u
#define UART_LSR 5u
#define UART_LSR_THRE 0x20u
#define TEST_DEV 0x100000u
#define TEST_PASS 0x5555u
#define TEST_FAIL 0x3333u
#define TIMEBASE_HZ 10000000u

const char arch_name[] = "riscv64";
static const char *cmdline = "";

void arch_init(uintptr_t boot_arg)
{
	cmdline = dtb_bootargs(boot_arg);
}

void arch_putc(char c)
{
	volatile uint8_t *u = (volatile uint8_t *)UART;

	while (!(u[UART_LSR] & UART_LSR_THRE))
		;
	u[0] = (uint8_t)c;
}

uint64_t arch_ticks(void)
{
	uint64_t t;

	__asm__ volatile("rdtime %0" : "=r"(t));
	return t;
}

uint64_t arch_tick_hz(void)
{
	return TIMEBASE_HZ;
}

const char *arch_cmdline(void)
{
	return cmdline;
}

void arch_mmio_slots(struct arch_mmio *out)
{
	*out = (struct arch_mmio){ .base = 0x10001000u, .stride = 0x1000u, .count = 8 };
}

_Noreturn void arch_poweroff(int code)
{
	*(volatile uint32_t *)TEST_DEV = code ? ((uint32_t)code << 16 | TEST_FAIL) : TEST_PASS;
	for (;;)
		__asm__ volatile("wfi");
}
