/* x86_64 on QEMU's microvm: COM1 (0x3f8), the TSC calibrated against PIT channel
 * 0 (microvm has no port 0x61 to gate channel 2; channel 0 counts ungated and its
 * interrupt never reaches a CPU with interrupts off), virtio-mmio slots from
 * 0xfeb00000 (QEMU 7.2 microvm: 24 slots of 512 bytes), power-off through
 * isa-debug-exit at port 0xf4 (the launcher adds the device). */
#include <stdint.h>

#include "arch.h"

#define COM1 0x3f8u
#define COM_LSR 5u
#define COM_LSR_THRE 0x20u
#define PIT_CH0 0x40u
#define PIT_CMD 0x43u
#define PIT_HZ 1193182u
#define PIT_CAL_TICKS 60000u /* ~50 ms */
#define DEBUG_EXIT 0xf4u
#define START_INFO_MAGIC 0x336ec578u

const char arch_name[] = "x86_64";
static const char *cmdline = "";
static uint64_t tsc_hz;

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static uint16_t pit_read(void)
{
	uint8_t lo, hi;

	outb(PIT_CMD, 0x00); /* latch channel 0 */
	lo = inb(PIT_CH0);
	hi = inb(PIT_CH0);
	return (uint16_t)(lo | hi << 8);
}

/* TSC ticks over PIT_CAL_TICKS of the PIT's 1.193182 MHz (mode 2, reload 65536:
 * the counter runs down and wraps; the distance is taken modulo 2^16). */
static uint64_t calibrate_tsc(void)
{
	uint32_t elapsed = 0;
	uint16_t last;
	uint64_t t0;

	outb(PIT_CMD, 0x34); /* channel 0, lo/hi, mode 2 */
	outb(PIT_CH0, 0);
	outb(PIT_CH0, 0);
	last = pit_read();
	t0 = arch_ticks();
	while (elapsed < PIT_CAL_TICKS) {
		uint16_t now = pit_read();

		elapsed += (uint16_t)(last - now);
		last = now;
		if (arch_ticks() - t0 > (1ull << 36)) /* no PIT: ~20 s at 3 GHz */
			return 0;
	}
	return (arch_ticks() - t0) * PIT_HZ / elapsed;
}

void arch_init(uintptr_t boot_arg)
{
	const uint8_t *si = (const uint8_t *)boot_arg;

	if (si && *(const uint32_t *)(const void *)si == START_INFO_MAGIC) {
		uint64_t p = *(const uint64_t *)(const void *)(si + 24); /* cmdline_paddr */

		if (p)
			cmdline = (const char *)(uintptr_t)p;
	}
	tsc_hz = calibrate_tsc();
	if (!tsc_hz)
		tsc_hz = 1000000000u; /* said on the boot line: timer_hz */
}

void arch_putc(char c)
{
	while (!(inb(COM1 + COM_LSR) & COM_LSR_THRE))
		;
	outb(COM1, (uint8_t)c);
}

uint64_t arch_ticks(void)
{
	uint32_t lo, hi;

	/* lfence: the read is not taken before earlier instructions finish. */
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

uint64_t arch_tick_hz(void)
{
	return tsc_hz;
}

const char *arch_cmdline(void)
{
	return cmdline;
}

void arch_mmio_slots(struct arch_mmio *out)
{
	*out = (struct arch_mmio){ .base = 0xfeb00000u, .stride = 0x200u, .count = 24 };
}

_Noreturn void arch_poweroff(int code)
{
	outl(DEBUG_EXIT, (uint32_t)code); /* QEMU exits with (code << 1) | 1 */
	for (;;)
		__asm__ volatile("cli; hlt");
}
