//! In-kernel tests of several CPUs: named `smp_*`, the workbench boots them with four. Each
//! fails, naming what it saw, if fewer than two CPUs are online.

use super::*;
use crate::arch::smp;
use crate::kernel_test;
use crate::mm::{frame, paging};
use crate::sync::IrqMutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

fn cpus() -> usize {
    let online = smp::online() as usize;
    assert!(online >= 2, "an SMP test with {} CPU online", online);
    online
}

fn me() -> u32 {
    this_cpu().index
}

/// Sleeps in steps until `done` holds or `ms` pass; says whether it holds.
fn until(ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = crate::time::ticks() + crate::time::ms_to_ticks(ms);
    while !done() && crate::time::ticks() < deadline {
        sleep_ms(1);
    }
    done()
}

kernel_test!(smp_threads_run_on_every_cpu, {
    let online = cpus();
    let seen = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<ThreadId> = (0..online)
        .map(|_| {
            let (seen, stop) = (seen.clone(), stop.clone());
            spawn("spinner", Priority::NORMAL, move || {
                while !stop.load(Ordering::Relaxed) {
                    seen.fetch_or(1 << me(), Ordering::Relaxed);
                    core::hint::spin_loop();
                }
            })
            .expect("spawn")
        })
        .collect();
    let all = u64::MAX >> (64 - online);
    let ran_everywhere = until(2000, || seen.load(Ordering::Relaxed) == all);
    stop.store(true, Ordering::Relaxed);
    spinners.into_iter().for_each(join);
    assert!(ran_everywhere, "threads ran on CPUs {:#b} of {:#b}", seen.load(Ordering::Relaxed), all);
});

static PING: WaitQueue = WaitQueue::new();
static PONG: WaitQueue = WaitQueue::new();

kernel_test!(smp_wakes_across_cpus_are_never_lost, {
    cpus();
    const ROUNDS: u32 = 3000;
    let turn = Arc::new(AtomicU32::new(0));
    let crossed = Arc::new(AtomicU32::new(0));
    // Two threads pinned to CPUs 0 and 1 take turns through two wait queues: every wake is
    // one CPU's for the other, by IPI.
    let partner = {
        let (turn, crossed) = (turn.clone(), crossed.clone());
        spawn_pinned(1, "partner", Priority::NORMAL, move || {
            for round in 0..ROUNDS {
                PING.wait_until(Wait::NONE, || turn.load(Ordering::Acquire) == 2 * round + 1);
                crossed.fetch_add((me() == 1) as u32, Ordering::Relaxed);
                turn.store(2 * round + 2, Ordering::Release);
                PONG.wake_one();
            }
        })
        .expect("spawn")
    };
    let starter = {
        let (turn, crossed) = (turn.clone(), crossed.clone());
        spawn_pinned(0, "starter", Priority::NORMAL, move || {
            for round in 0..ROUNDS {
                turn.store(2 * round + 1, Ordering::Release);
                PING.wake_one();
                PONG.wait_until(Wait::NONE, || turn.load(Ordering::Acquire) == 2 * round + 2);
                crossed.fetch_add((me() == 0) as u32, Ordering::Relaxed);
            }
        })
        .expect("spawn")
    };
    join(starter);
    join(partner);
    // Every round's wakes arrived (else this hangs), each on the pinned CPU.
    assert_eq!(crossed.load(Ordering::Relaxed), 2 * ROUNDS, "turns taken on the thread's own CPU");
});

kernel_test!(smp_lock_torture, {
    let online = cpus();
    const EACH: u64 = 20_000;
    // A plain (non-atomic) count under the lock: any two CPUs inside at once lose increments.
    let counter = Arc::new(IrqMutex::new(0u64));
    let workers: Vec<ThreadId> = (0..online)
        .map(|_| {
            let counter = counter.clone();
            spawn("torture", Priority::NORMAL, move || {
                for i in 0..EACH {
                    let mut count = counter.lock();
                    let seen = core::hint::black_box(*count);
                    *count = seen + 1;
                    drop(count);
                    if i % 64 == 0 {
                        // The debug block's writers' lock under contention too.
                        crate::debug::record(crate::debug::state::EventKind::Wake, 0, i, 0);
                    }
                }
            })
            .expect("spawn")
        })
        .collect();
    workers.into_iter().for_each(join);
    assert_eq!(*counter.lock(), EACH * online as u64, "increments lost under the lock");
    let state = unsafe { &*core::ptr::addr_of!(crate::debug::state::KWAST_DEBUG_STATE) };
    assert_eq!(state.sequence.load(Ordering::Acquire) % 2, 0, "the debug block is left mid-update");
});

kernel_test!(smp_no_cpu_reads_an_unmapped_page, {
    cpus();
    const PAGE: u64 = paging::SCRATCH_BASE + 0x9000;
    let old = frame::allocate_zeroed().expect("frame");
    let new = frame::allocate_zeroed().expect("frame");
    paging::map(PAGE, old).expect("map");
    unsafe { (PAGE as *mut u64).write_volatile(1) };
    // 0: reading; 1: asked to stop; 2: stopped; 3: read once more; 4: done.
    let phase = Arc::new(AtomicU32::new(0));
    let (seen, reads, reader_cpu) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU32::new(u32::MAX)));
    let reader = {
        let (phase, seen, reads, reader_cpu) = (phase.clone(), seen.clone(), reads.clone(), reader_cpu.clone());
        spawn("reader", Priority::NORMAL, move || {
            loop {
                match phase.load(Ordering::Acquire) {
                    0 => {
                        // Through this CPU's TLB, which now holds the page's entry.
                        seen.store(unsafe { (PAGE as *const u64).read_volatile() }, Ordering::Relaxed);
                        reads.fetch_add(1, Ordering::Release);
                    }
                    1 => phase.store(2, Ordering::Release),
                    3 => {
                        seen.store(unsafe { (PAGE as *const u64).read_volatile() }, Ordering::Relaxed);
                        reader_cpu.store(me(), Ordering::Relaxed);
                        phase.store(4, Ordering::Release);
                        return;
                    }
                    _ => core::hint::spin_loop(),
                }
            }
        })
        .expect("spawn")
    };
    assert!(until(2000, || reads.load(Ordering::Acquire) > 1000), "the reader never ran");
    phase.store(1, Ordering::Release);
    assert!(until(2000, || phase.load(Ordering::Acquire) == 2), "the reader never stopped");
    // The page moves to another frame while the reader's CPU still has the old entry cached.
    let writer_cpu = me();
    assert_eq!(paging::unmap(PAGE), Some(old));
    paging::map(PAGE, new).expect("map");
    unsafe { (PAGE as *mut u64).write_volatile(2) };
    phase.store(3, Ordering::Release);
    assert!(until(2000, || phase.load(Ordering::Acquire) == 4), "the reader never read again");
    join(reader);
    assert_ne!(reader_cpu.load(Ordering::Relaxed), writer_cpu, "the reader ran on the writer's CPU: nothing was shot down");
    assert_eq!(seen.load(Ordering::Relaxed), 2, "CPU {} read the unmapped frame through a stale TLB entry",
               reader_cpu.load(Ordering::Relaxed));
    paging::unmap(PAGE);
    frame::free(old);
    frame::free(new);
});

kernel_test!(smp_a_hand_off_its_cpu_does_not_switch_to_runs_elsewhere, {
    // A hand-off target is held beside its CPU's queues for the next switch; if the waker,
    // outranking it, computes on instead, the next tick queues it where an idle CPU takes it.
    cpus();
    let ran = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    let target = {
        let (ran, go) = (ran.clone(), go.clone());
        spawn("target", Priority::NORMAL, move || {
            wait_for(&InterruptGuard::new(), || go.load(Ordering::SeqCst).then_some(()), None, Wait::NONE, None);
            ran.store(true, Ordering::SeqCst);
        })
        .expect("spawn")
    };
    let seen = Arc::new(AtomicBool::new(false));
    let waker = {
        let (ran, go, seen) = (ran.clone(), go.clone(), seen.clone());
        spawn_pinned(0, "waker", Priority::HIGH, move || {
            while state_of(target) != Some(RunState::Blocked) {
                core::hint::spin_loop();
            }
            go.store(true, Ordering::SeqCst);
            wake_and_hand_off(&InterruptGuard::new(), target);
            // Never gives up CPU 0 while the target may run.
            let deadline = crate::time::ticks() + crate::time::ms_to_ticks(500);
            while !ran.load(Ordering::SeqCst) && crate::time::ticks() < deadline {
                core::hint::spin_loop();
            }
            seen.store(ran.load(Ordering::SeqCst), Ordering::SeqCst);
        })
        .expect("spawn")
    };
    join(waker);
    join(target);
    assert!(seen.load(Ordering::SeqCst), "the handed-off thread did not run while its waker computed for 500 ms");
});
