//! Notifications: a word of signal bits that senders OR in and a waiter takes all at once.
//! Bound to an endpoint, a signal also wakes that endpoint's receivers, so a server can wait
//! for calls and signals (IRQs, say) together.

use super::endpoint::Endpoint;
use super::error::{Error, Result};
use crate::debug::state::EventKind;
use crate::arch::cpu::InterruptGuard;
use crate::sched::{HandOff, Wait, WaitKind, WaitQueue};
use crate::sync::IrqMutex;
use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The bits a notification carries: 63, so that `wait` can return them to a server as a
/// positive i64, apart from the negative error codes.
pub const SIGNAL_BITS: u64 = i64::MAX as u64;

/// `bits` if they are all signal bits; bit 63 is refused rather than read back as an error.
pub fn signal_bits(bits: u64) -> Result<u64> {
    if bits & !SIGNAL_BITS == 0 { Ok(bits) } else { Err(Error::InvalidArgument) }
}

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

pub struct Notification {
    /// Names it to the debug view (a thread's wait, an IRQ's binding).
    pub id: u32,
    bits: AtomicU64,
    waiters: WaitQueue,
    bound: IrqMutex<Weak<Endpoint>>,
}

impl Notification {
    pub fn new() -> Arc<Notification> {
        Arc::new(Notification { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), bits: AtomicU64::new(0), waiters: WaitQueue::new(), bound: IrqMutex::new(Weak::new()) })
    }

    /// Signalled by the calling thread (the kernel's own: a server's exit to its parent).
    pub fn signal(&self, bits: u64) {
        let _ = self.deliver(&InterruptGuard::new(), crate::sched::current_id(), bits, false);
    }

    /// Signalled by a server's kernel call, which keeps interrupts off with `irq`: the longest
    /// waiter runs next here when the server blocks, as a server that signals usually waits
    /// next (the kernel's own signals wake without a hand-off, in turn with other wakes). That
    /// waiter is returned still blocked, for the server's block to switch to (`HandOff`).
    /// Always inlined, as the signal+wait path's other parts: outlined, signal+wait +18.
    #[inline(always)]
    pub fn signal_handing_off(&self, irq: &InterruptGuard, bits: u64) -> Option<HandOff> {
        self.deliver(irq, crate::sched::current_id(), bits, true)
    }

    /// Signalled by an IRQ (from its handler): no thread's doing.
    pub fn signal_from_irq(&self, bits: u64) {
        // SAFETY: an interrupt handler's.
        let _ = self.deliver(unsafe { &InterruptGuard::in_trap() }, 0, bits, false);
    }

    /// Safe from interrupt handlers: it only takes interrupt-safe locks. Inlined into both
    /// callers: `signal` is on signal+wait's path.
    #[inline(always)]
    fn deliver(&self, irq: &InterruptGuard, by: u32, bits: u64, hand_off: bool) -> Option<HandOff> {
        self.bits.fetch_or(bits, Ordering::SeqCst);
        // Held to the end, so interrupts stay off from the event to the wakes: the debug view
        // takes the `Wake` events right after a `Signal` as the threads it woke.
        let bound = self.bound.lock_under(irq);
        crate::debug::record_holding(&bound, EventKind::Signal, by, self.id as u64, bits);
        let (_, handed) = self.waiters.wake_all_under(irq, self.id, hand_off);
        if let Some(endpoint) = bound.upgrade() {
            endpoint.wake_receivers(irq, self.id as u64);
        }
        handed
    }

    /// Takes every pending bit (0 if none).
    pub fn take(&self) -> u64 {
        self.bits.swap(0, Ordering::SeqCst)
    }

    pub fn pending(&self) -> bool {
        self.bits.load(Ordering::SeqCst) != 0
    }

    /// Inline: it is on signal+wait's path, which an extra call lengthens. `hand_off` (the
    /// waiter of a notification the caller just signalled) runs in its place at its block.
    #[inline]
    pub fn wait(&self, irq: &InterruptGuard, deadline: Option<u64>, hand_off: Option<HandOff>) -> Result<u64> {
        if self.waiters.wait_under(irq, Wait::on(WaitKind::Notification, self.id, 0), || self.pending(), deadline, hand_off) {
            Ok(self.take())
        } else {
            Err(Error::TimedOut)
        }
    }

    pub fn bind(&self, endpoint: &Arc<Endpoint>) {
        *self.bound.lock() = Arc::downgrade(endpoint);
    }
}
