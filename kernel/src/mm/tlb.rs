//! TLB invalidation after unmapping or re-protecting a page: the one place a shootdown happens.
//! With other CPUs online, each is interrupted (`SHOOTDOWN_VECTOR`) to invalidate the same page,
//! and the caller waits until every one has: a frame is reused only once no CPU can still reach
//! it through a stale entry. A CPU spinning for a lock with interrupts off serves shootdowns
//! while it spins (`sync.rs`), so the wait never deadlocks against a CPU that waits for a lock
//! the initiator holds.

use crate::arch::cpu::InterruptGuard;
use crate::arch::percpu;
use crate::arch::smp;
use crate::debug::state::MAX_CPUS;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use x86_64::instructions::tlb;
use x86_64::VirtAddr;

/// One shootdown at a time: its page, the CPUs asked, how many have yet to answer.
static BUSY: AtomicBool = AtomicBool::new(false);
static PAGE: AtomicU64 = AtomicU64::new(0);
static ASKED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static PENDING: AtomicU32 = AtomicU32::new(0);

pub fn flush_page(address: u64) {
    tlb::flush(VirtAddr::new(address));
    let cpus = smp::online();
    if cpus == 1 {
        return;
    }
    let _irq = InterruptGuard::new();
    while BUSY.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        serve();
        core::hint::spin_loop();
    }
    let me = percpu::index() as usize;
    PAGE.store(address, Ordering::Relaxed);
    PENDING.store(cpus - 1, Ordering::Relaxed);
    for (cpu, asked) in ASKED.iter().enumerate().take(cpus as usize) {
        if cpu != me {
            asked.store(true, Ordering::Release);
        }
    }
    // One IPI per CPU: with the all-but-self shorthand, QEMU 7.2's TCG left a halted CPU
    // without its interrupt (seen in scenarios/smp-stress.yaml), and every CPU waited.
    smp::interrupt_others(crate::arch::trap::SHOOTDOWN_VECTOR as u8);
    while PENDING.load(Ordering::Acquire) != 0 {
        serve();
        core::hint::spin_loop();
    }
    BUSY.store(false, Ordering::Release);
}

/// Invalidates the page of the shootdown in progress if this CPU was asked to: from the
/// shootdown interrupt, and from any spin with interrupts off.
#[inline]
pub fn serve() {
    let asked = &ASKED[percpu::index() as usize];
    if asked.load(Ordering::Relaxed) && asked.swap(false, Ordering::AcqRel) {
        tlb::flush(VirtAddr::new(PAGE.load(Ordering::Acquire)));
        PENDING.fetch_sub(1, Ordering::AcqRel);
    }
}
