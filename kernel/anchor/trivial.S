/* The boot benchmark's anchor: the least a Multiboot kernel can be. QEMU loads it as it loads
 * Kwast (-kernel, the a.out-kludge header) and it leaves at once through isa-debug-exit, so
 * its boot time is QEMU's and the firmware's alone (`kwast-bench bench --suite boot`). */
    .section .text
    .code32
    .globl _start
    .balign 4
header:
    .long 0x1BADB002                    /* Multiboot magic */
    .long 0x00010000                    /* flags: the address fields below are valid */
    .long -(0x1BADB002 + 0x00010000)    /* checksum */
    .long header                        /* header_addr */
    .long header                        /* load_addr: the file from the header on */
    .long 0                             /* load_end_addr: to the end of the file */
    .long 0                             /* bss_end_addr: none */
    .long _start                        /* entry_addr */
_start:
    mov $0xf4, %dx                      /* isa-debug-exit: QEMU exits with (0 << 1) | 1 */
    xor %eax, %eax
    out %eax, %dx
1:  hlt
    jmp 1b
