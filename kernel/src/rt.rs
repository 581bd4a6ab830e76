//! What a hosted toolchain would supply and a freestanding kernel must define itself.
//!
//! The host `compiler_builtins` has no `mem*` functions, and the prebuilt `core` was compiled
//! with unwinding, so it references the unwinder's symbols even though `panic=abort` never
//! calls them. The copies use `rep movs`/`rep stos` so LLVM cannot turn them back into calls:
//! eight bytes at a time, then the rest byte by byte. Each iteration of a `rep` is one
//! instruction to QEMU's count, so a byte-wise copy of a 688-byte trap frame counted 688.

use core::arch::asm;

#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    copy(dest, src, n);
    dest
}

/// `memcpy` inline, for the copies on IPC's path (a request, a reply): a call to `memcpy`
/// costs the call and the moves that keep the caller's registers around it.
/// # Safety
/// As `memcpy`: `n` bytes at `src` readable, at `dest` writable, not overlapping.
#[inline(always)]
pub unsafe fn copy(dest: *mut u8, src: *const u8, n: usize) {
    asm!("rep movsq", "mov rcx, {tail}", "rep movsb", tail = in(reg) n % 8,
         inout("rcx") n / 8 => _, inout("rdi") dest => _, inout("rsi") src => _,
         options(nostack, preserves_flags));
}

/// `copy` for IPC's copies (a request, a reply), made with interrupts off (`_irq`): on CPUs
/// with AVX (`cpu::wide_from`) whole 128-byte blocks go in 32-byte moves, twelve instructions
/// a block where `rep movsq` counts sixteen, and the rest as `copy` does. Only with interrupts
/// off: a thread's context does not hold these registers (`cpu::enable_wide_copies`).
/// # Safety
/// As `copy`.
#[inline(always)]
pub unsafe fn copy_wide(_irq: &crate::arch::cpu::InterruptGuard, dest: *mut u8, src: *const u8, n: usize) {
    // One block of assembly for both ways, comparing with the threshold where it lies in
    // memory: the short copies' way costs one compare more than `copy`, and no register (with
    // the threshold loaded into one, the IPC path's register allocation cost +9). The upper halves are cleared after (`vzeroupper`): SSE code that
    // follows pays no transition on real CPUs, and no thread finds anything there.
    asm!("cmp rcx, qword ptr [rip + {from}]", "jb 3f",
         "mov {blocks}, rcx", "shr {blocks}, 7", "and rcx, 127",
         "2:",
         "vmovdqu ymm0, [rsi]", "vmovdqu ymm1, [rsi + 32]", "vmovdqu ymm2, [rsi + 64]", "vmovdqu ymm3, [rsi + 96]",
         "vmovdqu [rdi], ymm0", "vmovdqu [rdi + 32], ymm1", "vmovdqu [rdi + 64], ymm2", "vmovdqu [rdi + 96], ymm3",
         "add rsi, 128", "add rdi, 128", "dec {blocks}", "jnz 2b",
         "vzeroupper",
         "3:",
         "mov {blocks}, rcx", "and {blocks}, 7", "shr rcx, 3", "rep movsq", "mov rcx, {blocks}", "rep movsb",
         from = sym crate::arch::cpu::WIDE_FROM, blocks = out(reg) _,
         inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
         out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
         options(nostack));
}

#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        return memcpy(dest, src, n);
    }
    // Overlapping with dest above src: copy backwards.
    asm!("std", "rep movsb", "cld",
         inout("rcx") n => _, inout("rdi") dest.add(n).wrapping_sub(1) => _,
         inout("rsi") src.add(n).wrapping_sub(1) => _, options(nostack));
    dest
}

#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
    let pattern = (value as u8 as u64) * 0x0101_0101_0101_0101;
    asm!("rep stosq", "mov rcx, {tail}", "rep stosb", tail = in(reg) n % 8,
         inout("rcx") n / 8 => _, inout("rdi") dest => _, in("rax") pattern,
         options(nostack, preserves_flags));
    dest
}

#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        let (x, y) = (*a.add(i), *b.add(i));
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    memcmp(a, b, n)
}

#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    loop {}
}

#[no_mangle]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    while *s.add(n) != 0 {
        n += 1;
    }
    n
}

// Every length up to 300 bytes and the longest messages, at eight alignments of each end,
// against the source; the bytes around the target stay as they were. It says which way
// copied, so that tests/test_kernel.py sees the AVX way run on a CPU that has it.
crate::kernel_test!(wide_copy, {
    let source: alloc::vec::Vec<u8> = (0..4200u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut target = alloc::vec![0xAAu8; 4200];
    let irq = crate::arch::cpu::InterruptGuard::new();
    for n in (0..=300).chain([4095, 4096]) {
        for from in 0..8 {
            for to in 8..16 {
                // SAFETY: both buffers hold `n` bytes past these offsets (4096 + 16 < 4200).
                unsafe { copy_wide(&irq, target.as_mut_ptr().add(to), source.as_ptr().add(from), n) };
                assert!(target[to..to + n] == source[from..from + n], "{} bytes from +{} to +{} differ", n, from, to);
                assert!(target[to - 8..to].iter().chain(&target[to + n..to + n + 8]).all(|&b| b == 0xAA),
                        "{} bytes from +{} to +{} wrote outside", n, from, to);
                target[to..to + n].fill(0xAA);
            }
        }
    }
    match crate::arch::cpu::wide_from() {
        usize::MAX => crate::kprintln!("ktest wide_copy: rep movs only (no AVX)"),
        from => crate::kprintln!("ktest wide_copy: 32-byte moves from {} bytes", from),
    }
});
