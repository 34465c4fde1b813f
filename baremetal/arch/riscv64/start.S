/* riscv64 virt, S-mode payload of OpenSBI (fw_dynamic/fw_jump): a0 = hart id,
 * a1 = the DTB. Interrupts stay off; .bss is cleared before any C runs. */
	.section .text.boot, "ax"
	.globl _start
_start:
	csrw	sie, zero
	csrw	sstatus, zero
	.option push
	.option norelax
	la	gp, __global_pointer$
	.option pop
	la	sp, __stack_top
	mv	s0, a1
	la	t0, __bss_start
	la	t1, __bss_end
1:	bgeu	t0, t1, 2f
	sd	zero, 0(t0)
	addi	t0, t0, 8
	j	1b
2:	mv	a0, s0
	call	arch_init
	call	bm_main
3:	wfi
	j	3b
	.section .note.GNU-stack, "", @progbits
