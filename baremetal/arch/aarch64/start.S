/* aarch64 virt, loaded by -kernel as an ELF at 0x40200000 and entered at EL1 with
 * the MMU off. QEMU puts the DTB at the start of RAM (0x40000000) for such images;
 * x0 is used instead when it points at one. Before any C: interrupts masked, .bss
 * cleared, an identity map switched on (1 GiB blocks: the first GiB Device-nGnRnE
 * for the UART and virtio-mmio, the next three Normal write-back, so that C may
 * make unaligned and exclusive accesses to RAM), caches on. */
#define MAIR_VALUE 0xff00			/* attr0 Device-nGnRnE, attr1 Normal WB */
#define TCR_VALUE ((32) | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))
				/* T0SZ 32 (4 GiB), WB WA walks, inner shareable, 4 KiB
				 * granule, no TTBR1 walks, 32-bit PA */
#define BLOCK_DEVICE ((1 << 10) | (0 << 2) | 1 | (3 << 53))	/* AF, attr0, XN */
#define BLOCK_NORMAL ((1 << 10) | (3 << 8) | (1 << 2) | 1)	/* AF, ISH, attr1 */

	.section .text.boot, "ax"
	.globl _start
_start:
	msr	daifset, #0xf
	mov	x19, x0
	ldr	x1, =__stack_top
	mov	sp, x1
	ldr	x1, =__bss_start
	ldr	x2, =__bss_end
1:	cmp	x1, x2
	b.hs	2f
	str	xzr, [x1], #8
	b	1b
2:	ldr	x1, =l1_table
	ldr	x2, =BLOCK_DEVICE
	str	x2, [x1]
	mov	x3, #1
3:	lsl	x4, x3, #30
	ldr	x2, =BLOCK_NORMAL
	orr	x2, x2, x4
	str	x2, [x1, x3, lsl #3]
	add	x3, x3, #1
	cmp	x3, #4
	b.lo	3b
	ldr	x2, =MAIR_VALUE
	msr	mair_el1, x2
	ldr	x2, =TCR_VALUE
	msr	tcr_el1, x2
	msr	ttbr0_el1, x1
	dsb	ish
	tlbi	vmalle1
	dsb	ish
	isb
	mrs	x2, sctlr_el1
	orr	x2, x2, #(1 << 0)	/* M */
	orr	x2, x2, #(1 << 2)	/* C */
	orr	x2, x2, #(1 << 12)	/* I */
	bic	x2, x2, #(1 << 1)	/* A: no alignment faults */
	msr	sctlr_el1, x2
	isb
	mov	x0, x19
	bl	arch_init
	bl	bm_main
4:	wfi
	b	4b

	.section .bss.pgtable, "aw", @nobits
	.balign 4096
l1_table:
	.skip	4096
	.section .note.GNU-stack, "", @progbits
