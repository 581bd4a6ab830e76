//! Multiboot entry: QEMU starts us in 32-bit protected mode; we identity-map the first 4 GiB
//! with 2 MiB pages, enter long mode, turn SSE on (the prebuilt `core` uses it) and call `kmain`.

use core::arch::global_asm;

global_asm!(
    r#"
.set MB_MAGIC, 0x1BADB002
/* bit 0: page-align modules, bit 1: memory map, bit 16: address fields present (a.out kludge) */
.set MB_FLAGS, 0x00010003

.section .multiboot, "a"
.balign 4
multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long multiboot_header
    .long __kernel_start
    .long __load_end
    .long __bss_end
    .long _start32

.section .bss
.balign 4096
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4096 * 4
.balign 16
boot_stack_bottom: .skip 65536
.global boot_stack_top
boot_stack_top:

.section .rodata
.balign 8
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF   /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF   /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

.section .boot.text, "ax"
.code32
.global _start32
_start32:
    cli
    mov $boot_stack_top, %esp
    mov %eax, %edi              /* Multiboot magic: first argument of kmain */
    mov %ebx, %esi              /* Multiboot info: second argument */

    /* PML4[0] -> PDPT, PDPT[0..4] -> four page directories of 2 MiB pages */
    mov $boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, boot_pml4
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $boot_pd, %eax
    or $0x3, %eax
    mov %eax, boot_pdpt(,%ecx,8)
    inc %ecx
    cmp $4, %ecx
    jne 1b
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax              /* present, writable, 2 MiB */
    mov %eax, boot_pd(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jne 2b

    mov %cr4, %eax
    or $0x620, %eax             /* PAE, OSFXSR, OSXMMEXCPT */
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx       /* EFER: long mode enable, no-execute enable */
    rdmsr
    or $0x900, %eax
    wrmsr
    mov %cr0, %eax
    and $~0x4, %eax             /* EM off */
    or $0x80010022, %eax        /* PG, WP, NE, MP */
    mov %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $start64

.code64
start64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    mov %edi, %edi
    mov %esi, %esi
    call kmain
3:  cli
    hlt
    jmp 3b
"#,
    options(att_syntax)
);
