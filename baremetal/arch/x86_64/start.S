/* x86_64 on QEMU's microvm, booted through PVH: QEMU finds the 32-bit entry in the
 * Xen ELF note below and enters it in flat protected mode, paging off, with %ebx
 * the physical address of the hvm_start_info (command line). Before any C: .bss
 * cleared, the first 4 GiB identity-mapped with 2 MiB pages (RAM and the
 * virtio-mmio slots at 0xfeb00000), long mode on, a 64-bit GDT. */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a", @note
	.balign 4
	.long	4			/* namesz: "Xen\0" */
	.long	8			/* descsz: QEMU reads a 64-bit address */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.balign 4
	.quad	_start32

	.section .text.boot, "ax"
	.code32
	.globl _start32
_start32:
	cli
	cld
	mov	%ebx, %esi
	/* Clear .bss (page tables included) */
	mov	$__bss_start, %edi
	mov	$__bss_end, %ecx
	sub	%edi, %ecx
	shr	$2, %ecx
	xor	%eax, %eax
	rep stosl
	mov	%esi, boot_info
	/* PML4[0] -> PDPT; PDPT[0..3] -> PD0..PD3; PDk[i] = (k GiB + i * 2 MiB) | PS|RW|P */
	mov	$pdpt, %eax
	or	$3, %eax
	mov	%eax, pml4
	mov	$pd, %edi
	xor	%ecx, %ecx
1:	mov	%ecx, %eax
	shl	$21, %eax
	or	$0x83, %eax
	mov	%eax, (%edi,%ecx,8)
	mov	%ecx, %eax
	shr	$11, %eax		/* bits 32+ of the address: i * 2 MiB >> 32 */
	mov	%eax, 4(%edi,%ecx,8)
	inc	%ecx
	cmp	$2048, %ecx
	jb	1b
	xor	%ecx, %ecx
2:	mov	%ecx, %eax
	shl	$12, %eax
	add	$pd, %eax
	or	$3, %eax
	mov	%eax, pdpt(,%ecx,8)
	inc	%ecx
	cmp	$4, %ecx
	jb	2b
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax	/* PG | PE */
	mov	%eax, %cr0
	lgdt	gdt_ptr
	ljmp	$0x08, $start64

	.code64
start64:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%ax, %fs
	mov	%ax, %gs
	mov	$__stack_top, %rsp
	mov	boot_info(%rip), %edi
	call	arch_init
	call	bm_main
3:	hlt
	jmp	3b

	.section .rodata
	.balign 8
gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad	0x00cf92000000ffff	/* 0x10: data */
gdt_ptr:
	.word	gdt_ptr - gdt - 1
	.long	gdt

	.section .bss.pgtable, "aw", @nobits
	.balign 4096
pml4:	.skip	4096
pdpt:	.skip	4096
pd:	.skip	4 * 4096
boot_info:
	.skip	8
	.section .note.GNU-stack, "", @progbits
