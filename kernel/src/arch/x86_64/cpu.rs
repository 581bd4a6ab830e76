//! Small CPU facilities: the time stamp counter, interrupt masking and the AVX registers the
//! kernel's IPC copies use.

use core::sync::atomic::{AtomicUsize, Ordering};
use x86_64::instructions::interrupts;
use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::xcontrol::{XCr0, XCr0Flags};

pub fn rdtsc() -> u64 {
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Interrupts off until dropped, then back to what they were.
pub struct InterruptGuard {
    were_enabled: bool,
}

impl InterruptGuard {
    pub fn new() -> InterruptGuard {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        InterruptGuard { were_enabled }
    }

    /// A guard for a trap handler: the CPU entered it through an interrupt gate, which turned
    /// interrupts off, and `iretq` restores them: nothing to save or restore here.
    /// # Safety
    /// Interrupts are off, and stay so for the guard's life.
    #[inline(always)]
    pub unsafe fn in_trap() -> InterruptGuard {
        InterruptGuard { were_enabled: false }
    }

    /// A guard within this one: interrupts are off already, and it restores nothing (what a
    /// lock taken under this guard holds, `IrqMutex::lock_under`).
    #[inline(always)]
    pub fn nested(&self) -> InterruptGuard {
        InterruptGuard { were_enabled: false }
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if self.were_enabled {
            interrupts::enable();
        }
    }
}

pub fn enable_interrupts() {
    interrupts::enable();
}

/// Halts until the next interrupt, with interrupts on (the idle loop).
pub fn wait_for_interrupt() {
    interrupts::enable_and_hlt();
}

/// The shortest copy `rt::copy_wide` makes with AVX's 32-byte registers: a 128-byte block
/// when every CPU has them on, else never. One compare with it in memory decides a copy's way.
pub(crate) static WIDE_FROM: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Turns on AVX's 32-byte registers on this CPU if it has them (CPUID: XSAVE and AVX), for
/// the kernel's copies with interrupts off. A thread's context still
/// holds only the SSE state: wasm code is compiled without AVX (`wasm/engine.rs`), the kernel's
/// own code too, and a copy with interrupts off is never interrupted half-way, so no thread
/// ever leaves anything in these registers. The boot CPU decides for all (`wide_from`): the
/// `other` CPUs must match it.
pub fn enable_wide_copies(other: bool) {
    let features = core::arch::x86_64::__cpuid(1).ecx;
    let has = features & (1 << 26) != 0 && features & (1 << 28) != 0; // XSAVE, AVX
    if has {
        // SAFETY: the CPU has XSAVE (so OSXSAVE and XCR0 exist) and AVX, whose state XCR0 may
        // then enable with x87's and SSE's.
        unsafe {
            Cr4::update(|flags| flags.insert(Cr4Flags::OSXSAVE));
            XCr0::write(XCr0Flags::X87 | XCr0Flags::SSE | XCr0Flags::AVX);
        }
    }
    if !other {
        WIDE_FROM.store(if has { 128 } else { usize::MAX }, Ordering::Relaxed);
    } else if wide_from() != usize::MAX && !has {
        panic!("this CPU lacks AVX, which the boot CPU has: CPUs of one model only");
    }
}

/// The shortest copy to make with AVX's 32-byte moves (`enable_wide_copies`).
#[inline(always)]
pub fn wide_from() -> usize {
    WIDE_FROM.load(Ordering::Relaxed)
}
