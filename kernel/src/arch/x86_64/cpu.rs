//! Small CPU facilities: the time stamp counter and interrupt masking.

use x86_64::instructions::interrupts;

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
