//! Locking rule of this kernel: every spin lock is held with interrupts off. An interrupt
//! handler may then take any lock (its holder cannot be the code it interrupted), and a
//! preempted thread never holds a lock another thread spins on.

use crate::arch::cpu::InterruptGuard;
use core::ops::{Deref, DerefMut};

pub struct IrqMutex<T> {
    inner: spin::Mutex<T>,
}

pub struct IrqMutexGuard<'a, T> {
    // Field order matters: the lock is released before interrupts come back on.
    guard: spin::MutexGuard<'a, T>,
    _irq: InterruptGuard,
}

impl<T> IrqMutex<T> {
    pub const fn new(value: T) -> IrqMutex<T> {
        IrqMutex { inner: spin::Mutex::new(value) }
    }

    /// Inlined: it is a few instructions, taken dozens of times per IPC round trip, and the
    /// compiler stops inlining it into everything once the kernel grows past a size.
    #[inline(always)]
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        let irq = InterruptGuard::new();
        let guard = match self.inner.try_lock() {
            Some(guard) => guard,
            None => self.contended(),
        };
        IrqMutexGuard { guard, _irq: irq }
    }

    /// `lock` for a caller whose guard `held` has interrupts off already: spares saving,
    /// clearing and restoring the flags again (the IPC path takes a dozen locks a round trip).
    #[inline(always)]
    pub fn lock_under(&self, held: &InterruptGuard) -> IrqMutexGuard<'_, T> {
        let guard = match self.inner.try_lock() {
            Some(guard) => guard,
            None => self.contended(),
        };
        IrqMutexGuard { guard, _irq: held.nested() }
    }

    /// Held by another CPU: spin, serving TLB shootdowns meanwhile (interrupts are off here,
    /// and the holder may be waiting for this CPU's answer).
    #[cold]
    fn contended(&self) -> spin::MutexGuard<'_, T> {
        loop {
            while self.inner.is_locked() {
                crate::mm::tlb::serve();
                core::hint::spin_loop();
            }
            if let Some(guard) = self.inner.try_lock() {
                return guard;
            }
        }
    }

    /// The value, to its only owner: no lock to take.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// For fault reports: never waits.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let irq = InterruptGuard::new();
        Some(IrqMutexGuard { guard: self.inner.try_lock()?, _irq: irq })
    }

    /// For the panic path only: the holder will never run again.
    pub unsafe fn force_unlock(&self) {
        self.inner.force_unlock();
    }
}

impl<T> Deref for IrqMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for IrqMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}
