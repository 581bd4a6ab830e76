//! Stopping a server that is running wasm: a kill on request, or its watchdog. Compiled code
//! carries no epoch checks (they cost a third of its instructions, see README), so the timer
//! interrupt does it: when it finds the thread of a server that is to stop running wasm code,
//! it diverts the thread (arch/x86_64/divert.rs) to `deliver`, which has wasmtime unwind it as
//! if the function it was in had trapped there. The kernel then names the real reason.

use super::platform::trap_handler_for;
use crate::sched::{self, ThreadId};
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// Why a server was stopped: carried out of a kernel call as an error, and what a stop in wasm
/// code is said to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Killed,
    /// Its watchdog (ms of CPU without a kernel call).
    Watchdog(u64),
}

impl core::fmt::Display for Reason {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match *self {
            Reason::Killed => write!(f, "killed on request"),
            Reason::Watchdog(ms) if ms % 1000 == 0 => write!(f, "watchdog: {} s of CPU without a kernel call", ms / 1000),
            Reason::Watchdog(ms) => write!(f, "watchdog: {} ms of CPU without a kernel call", ms),
        }
    }
}

impl core::error::Error for Reason {}

/// One server thread's stop state, shared by its store and the timer interrupt.
pub struct Stop {
    /// Its compiled functions, as sorted `[start, end)` addresses: it is stopped only inside
    /// one, never in a trampoline between wasm and the kernel.
    functions: Vec<(u64, u64)>,
    watchdog_ms: Option<u64>,
    /// Set by each kernel call; the timer interrupt turns it into `cpu_at_last_call` (a store
    /// here costs a kernel call one instruction, the CPU time would cost it the scheduler lock).
    called: AtomicBool,
    /// Its CPU time (ticks) when the timer interrupt last saw it had called the kernel: the
    /// watchdog's reference.
    cpu_at_last_call: AtomicU64,
    process: Arc<crate::process::Process>,
    /// 0: running; 1: killed; 2: watchdog (set once, by the interrupt).
    stopped: AtomicU8,
}

static RUNNING: IrqMutex<BTreeMap<ThreadId, Arc<Stop>>> = IrqMutex::new(BTreeMap::new());

impl Stop {
    /// Registers the calling thread, which runs `module` for `process`, until the result is dropped.
    pub fn register(module: &wasmtime::Module, process: Arc<crate::process::Process>, watchdog_ms: Option<u64>) -> Registered {
        let text = module.text().as_ptr() as u64;
        let mut functions: Vec<(u64, u64)> = module.functions()
            .map(|f| (text + f.offset as u64, text + (f.offset + f.len) as u64))
            .collect();
        functions.sort_unstable();
        let stop = Arc::new(Stop {
            functions, watchdog_ms, process, stopped: AtomicU8::new(0), called: AtomicBool::new(false),
            cpu_at_last_call: AtomicU64::new(sched::current_run_ticks()),
        });
        RUNNING.lock().insert(sched::current_id(), stop.clone());
        Registered(stop)
    }

    /// The server called the kernel: it is not running away.
    #[inline]
    pub fn touch(&self) {
        self.called.store(true, Ordering::Relaxed);
    }

    /// Why it was stopped while running wasm, if it was.
    pub fn reason(&self) -> Option<Reason> {
        match self.stopped.load(Ordering::Acquire) {
            1 => Some(Reason::Killed),
            2 => Some(Reason::Watchdog(self.watchdog_ms.unwrap_or(0))),
            _ => None,
        }
    }

    fn function_at(&self, pc: u64) -> Option<(u64, u64)> {
        let after = self.functions.partition_point(|&(start, _)| start <= pc);
        let (start, end) = *self.functions.get(after.checked_sub(1)?)?;
        (pc < end).then_some((start, end))
    }

    fn due(&self, run_ticks: u64) -> Option<u8> {
        if self.process.kill_requested.load(Ordering::Acquire) {
            return Some(1);
        }
        let limit = self.watchdog_ms?;
        if self.called.swap(false, Ordering::Relaxed) {
            self.cpu_at_last_call.store(run_ticks, Ordering::Relaxed);
        }
        let computing = run_ticks.saturating_sub(self.cpu_at_last_call.load(Ordering::Relaxed));
        (computing * 1000 / crate::time::TICK_HZ > limit).then_some(2)
    }
}

/// Unregisters the thread when its server's run ends.
pub struct Registered(Arc<Stop>);

impl core::ops::Deref for Registered {
    type Target = Stop;
    fn deref(&self) -> &Stop {
        &self.0
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        RUNNING.lock().retain(|_, stop| !Arc::ptr_eq(stop, &self.0));
    }
}

/// From the timer interrupt, with the interrupted thread's `pc`: whether to divert it to
/// `deliver` because its server is to stop and it is inside one of its wasm functions.
pub fn due(pc: u64) -> bool {
    if trap_handler_for(pc).is_none() {
        return false; // not in compiled wasm: kernel code stops the server at its next check
    }
    // Another CPU may hold the table for a moment: then the next tick decides.
    let Some(running) = RUNNING.try_lock() else { return false };
    let Some(stop) = running.get(&sched::current_id()) else { return false };
    if stop.function_at(pc).is_none() {
        return false;
    }
    let Some(reason) = stop.due(sched::current_run_ticks()) else { return false };
    let _ = stop.stopped.compare_exchange(0, reason, Ordering::AcqRel, Ordering::Acquire);
    true
}

/// On the diverted thread, as if called at `pc` with frame pointer `fp`: has wasmtime unwind it
/// from a trap site of the function it was in (the first `ud2` after `pc`: Cranelift puts them
/// at the function's end), as though that had trapped. Returns if none is found, and the thread
/// goes on where it was; the next tick tries again.
pub fn deliver(pc: u64, fp: u64) {
    let Some(handler) = trap_handler_for(pc) else { return };
    let end = {
        let running = RUNNING.lock();
        match running.get(&sched::current_id()).and_then(|stop| stop.function_at(pc)) {
            Some((_, end)) => end,
            None => return,
        }
    };
    // SAFETY: [pc, end) is the function's code, mapped and readable for as long as it runs.
    let code = unsafe { core::slice::from_raw_parts(pc as *const u8, (end - pc) as usize) };
    for at in code.windows(2).enumerate().filter(|(_, bytes)| *bytes == [0x0f, 0x0b]).map(|(i, _)| pc + i as u64) {
        // Does not return if `at` is a trap site; two such bytes inside another instruction are not.
        handler(at as usize, fp as usize, false, 0);
    }
}
