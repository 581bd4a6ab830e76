//! Wait queues: threads block on one until another thread (or an interrupt) wakes them.

use super::thread::ThreadId;
use crate::arch::cpu::InterruptGuard;
use alloc::collections::VecDeque;
use crate::sync::IrqMutex;

pub struct WaitQueue {
    waiters: IrqMutex<VecDeque<ThreadId>>,
}

impl WaitQueue {
    pub const fn new() -> WaitQueue {
        WaitQueue { waiters: IrqMutex::new(VecDeque::new()) }
    }

    /// Blocks the calling thread until `condition` holds. The condition is checked with
    /// interrupts off and the thread queued before it sleeps, so a wake-up cannot be lost.
    pub fn wait_until(&self, mut condition: impl FnMut() -> bool) {
        loop {
            let _irq = InterruptGuard::new();
            if condition() {
                return;
            }
            self.waiters.lock().push_back(super::current_id());
            super::block_current(self as *const WaitQueue as u32);
        }
    }

    /// Wakes the longest waiter; false if nobody waited.
    pub fn wake_one(&self) -> bool {
        let _irq = InterruptGuard::new();
        let waiter = self.waiters.lock().pop_front();
        waiter.map(super::wake).is_some()
    }

    pub fn wake_all(&self) -> usize {
        let _irq = InterruptGuard::new();
        let waiters: VecDeque<ThreadId> = core::mem::take(&mut *self.waiters.lock());
        waiters.iter().for_each(|&t| super::wake(t));
        waiters.len()
    }
}
