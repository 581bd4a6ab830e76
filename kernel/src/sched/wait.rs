//! Wait queues: threads block on one until another thread (or an interrupt) wakes them.

use super::thread::{ThreadId, Wait};
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

    /// Blocks the calling thread until `condition` holds; `wait` says what for (the debug
    /// view). Wakers make the condition true, then wake. The condition is checked again once
    /// the thread is queued: a waker on another CPU that changed it after the first check
    /// either is seen by the second or finds the thread queued (and a wake that comes before
    /// the block makes the block return at once), so a wake-up cannot be lost.
    pub fn wait_until(&self, wait: Wait, condition: impl FnMut() -> bool) {
        self.wait_until_deadline(wait, condition, None);
    }

    /// As `wait_until`, giving up at tick `deadline`: returns whether the condition holds.
    pub fn wait_until_deadline(&self, wait: Wait, condition: impl FnMut() -> bool, deadline: Option<u64>) -> bool {
        self.wait_under(&InterruptGuard::new(), wait, condition, deadline, None)
    }

    /// `wait_until_deadline` by a caller that keeps interrupts off with `irq` (a kernel call);
    /// `hand_off` runs in its place at its first block. Always inlined: outlined, signal+wait +41.
    #[inline(always)]
    pub fn wait_under(&self, irq: &InterruptGuard, wait: Wait, mut condition: impl FnMut() -> bool, deadline: Option<u64>,
                      mut hand_off: Option<super::HandOff>) -> bool {
        loop {
            if condition() {
                return true;
            }
            let me = super::current_id();
            // A thread whose process is being killed does not wait any more (and leaves the
            // queue, if the kill's wake found it there).
            if crate::process::current_killed() {
                self.leave(irq, me);
                return false;
            }
            self.waiters.lock_under(irq).push_back(me);
            // With one CPU, interrupts off since the first check kept every waker out.
            if crate::arch::smp::online() > 1 && condition() {
                self.leave(irq, me);
                return true;
            }
            // A waker took us off the queue; a deadline did not (nor a kill: see above).
            if !super::block_handing_off(wait, deadline, hand_off.take()) {
                self.leave(irq, me);
                return condition();
            }
        }
    }

    /// Takes `me` off the queue if no waker did: no stale entry is left for a later wake to be
    /// spent on. (Usually the queue is empty by now.)
    fn leave(&self, irq: &InterruptGuard, me: ThreadId) {
        let mut waiters = self.waiters.lock_under(irq);
        if !waiters.is_empty() {
            waiters.retain(|&t| t != me);
        }
    }

    /// Wakes the longest waiter and says which it was.
    pub fn wake_one(&self) -> Option<ThreadId> {
        let _irq = InterruptGuard::new();
        let waiter = self.waiters.lock().pop_front();
        waiter.inspect(|&t| super::wake(t))
    }

    pub fn wake_all(&self) -> usize {
        self.wake_all_under(&InterruptGuard::new(), 0, false).0
    }

    /// `wake_all` by a caller that keeps interrupts off with `irq`, for the signal of
    /// notification `signal` (0: not a signal; the `Wake` events name it): how many it woke.
    /// With `hand_off`, the longest waiter is not woken but returned, to run next on this CPU
    /// when the caller blocks (a server that signals and then waits), as an IPC hand-off does
    /// (`sched::HandOff`).
    #[inline]
    pub fn wake_all_under(&self, irq: &InterruptGuard, signal: u32, hand_off: bool) -> (usize, Option<super::HandOff>) {
        // One at a time, keeping the queue's buffer: a wait then never allocates. Under the
        // queue's lock throughout: the scheduler, whose lock a wake takes, never takes this one.
        let mut waiters = self.waiters.lock_under(irq);
        let first = if hand_off { waiters.pop_front().map(|waiter| super::HandOff::by_signal(waiter, signal)) } else { None };
        let mut woken = 0;
        while let Some(waiter) = waiters.pop_front() {
            super::wake_under(irq, waiter, signal as u64);
            woken += 1;
        }
        (woken, first)
    }
}
