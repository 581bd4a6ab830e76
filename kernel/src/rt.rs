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
