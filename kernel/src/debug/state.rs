//! The debug-state block: one `#[repr(C)]` structure at the symbol `KWAST_DEBUG_STATE` that the
//! workbench reads from guest memory while the guest runs, with its layout taken from this
//! file's DWARF. It is declared here and nowhere else.
//!
//! Consistency: writers make `sequence` odd, update, then make it even again; a reader that sees
//! an odd or changed sequence reads again. Capacities are fixed; what did not fit is counted.
//! Only `rows` and `record` in this folder write it: see `debug/mod.rs`.

use crate::sched::RunState;
use core::sync::atomic::{compiler_fence, AtomicU64, Ordering};

pub const MAGIC: u64 = u64::from_le_bytes(*b"KWASTDBG");
/// Raised when a change breaks readers that go by field names (renames, changed meanings).
/// Adding a field does not need it: readers find fields by name in the DWARF.
/// 2: thread rows lost their `Free` state; a free row of any table is one whose id is 0.
pub const LAYOUT_VERSION: u32 = 2;

pub const MAX_CPUS: usize = 8;
pub const MAX_THREADS: usize = 64;
pub const MAX_ENDPOINTS: usize = 32;
pub const MAX_IRQS: usize = 24;
/// Big enough that `kwast-bench trace`, draining it a few times a millisecond from the host,
/// loses no event of the ping/pong benchmark's bursts (a switch every ~1000 instructions)
/// while the host is busy: 16384 events are 512 KiB, about 0.1 s of such a burst.
pub const EVENT_RING: usize = 16384;
pub const NAME_LEN: usize = 24;

/// `None` marks a ring slot never written.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventKind {
    None = 0,
    Switch = 1,
    ThreadStart = 2,
    ThreadExit = 3,
    Wake = 4,
    IpcCall = 5,
    IpcReply = 6,
    Trap = 7,
    Restart = 8,
    Irq = 9,
    /// The workbench asked for process `a` to be killed (`KWAST_DEBUG_CONTROL`).
    Kill = 10,
}

#[repr(C)]
pub struct CpuState {
    pub online: u32,
    pub current_thread: u32,
    pub ticks: u64,
    pub idle_ticks: u64,
}

/// A thread's row; free when `id` is 0 (thread ids start at 1).
#[repr(C)]
pub struct ThreadRow {
    pub id: u32,
    pub process: u32,
    pub name: [u8; NAME_LEN],
    pub state: RunState,
    pub priority: u8,
    pub cpu: u8,
    pub wait_object: u32,
    pub run_ticks: u64,
    pub switches: u64,
}

/// An endpoint's row; free when `id` is 0 (endpoint ids start at 1).
#[repr(C)]
pub struct EndpointRow {
    pub id: u32,
    pub owner: u32,
    pub waiters: u32,
    pub messages: u64,
    pub bytes: u64,
    pub errors: u64,
}

#[repr(C)]
pub struct Event {
    /// Time stamp counter when it happened.
    pub tsc: u64,
    pub kind: EventKind,
    pub thread: u32,
    pub a: u64,
    pub b: u64,
}

#[repr(C)]
pub struct DebugState {
    pub magic: u64,
    pub layout_version: u32,
    pub cpu_count: u32,
    pub sequence: AtomicU64,
    /// Time stamp counter ticks per microsecond, to turn event stamps into time.
    pub tsc_per_us: u64,
    pub cpus: [CpuState; MAX_CPUS],
    /// Rows ever used: the first `thread_count`, some freed since.
    pub thread_count: u32,
    /// Threads that found no free row.
    pub threads_dropped: u32,
    pub threads: [ThreadRow; MAX_THREADS],
    pub endpoint_count: u32,
    pub endpoints_dropped: u32,
    pub endpoints: [EndpointRow; MAX_ENDPOINTS],
    pub irq_counts: [u64; MAX_IRQS],
    /// Events ever recorded; the newest is at `(events_written - 1) % EVENT_RING`.
    pub events_written: u64,
    pub events: [Event; EVENT_RING],
}

const EMPTY_CPU: CpuState = CpuState { online: 0, current_thread: 0, ticks: 0, idle_ticks: 0 };
/// A free row: id 0 is the mark; the state is whatever, readers skip the row.
pub(super) const FREE_THREAD: ThreadRow = ThreadRow {
    id: 0, process: 0, name: [0; NAME_LEN], state: RunState::Dead, priority: 0, cpu: 0,
    wait_object: 0, run_ticks: 0, switches: 0,
};
pub(super) const FREE_ENDPOINT: EndpointRow = EndpointRow { id: 0, owner: 0, waiters: 0, messages: 0, bytes: 0, errors: 0 };
const EMPTY_EVENT: Event = Event { tsc: 0, kind: EventKind::None, thread: 0, a: 0, b: 0 };

#[no_mangle]
#[used]
pub static mut KWAST_DEBUG_STATE: DebugState = DebugState {
    magic: MAGIC,
    layout_version: LAYOUT_VERSION,
    cpu_count: 0,
    sequence: AtomicU64::new(0),
    tsc_per_us: 0,
    cpus: [EMPTY_CPU; MAX_CPUS],
    thread_count: 0,
    threads_dropped: 0,
    threads: [FREE_THREAD; MAX_THREADS],
    endpoint_count: 0,
    endpoints_dropped: 0,
    endpoints: [FREE_ENDPOINT; MAX_ENDPOINTS],
    irq_counts: [0; MAX_IRQS],
    events_written: 0,
    events: [EMPTY_EVENT; EVENT_RING],
};

/// Runs `f` on the block as one update the host sees whole or not at all.
/// Interrupts are off meanwhile, so an interrupt cannot update it half-way through ours.
/// Always inlined: IPC updates the block six times a round trip, and an outlined copy costs
/// each a call and the closure's spills (call+reply 2842 -> 2986 when the compiler stopped).
#[inline(always)]
pub(super) fn update<R>(f: impl FnOnce(&mut DebugState) -> R) -> R {
    let _irq = crate::arch::cpu::InterruptGuard::new();
    let state = unsafe { &mut *core::ptr::addr_of_mut!(KWAST_DEBUG_STATE) };
    state.sequence.fetch_add(1, Ordering::AcqRel);
    compiler_fence(Ordering::SeqCst);
    let result = f(state);
    compiler_fence(Ordering::SeqCst);
    state.sequence.fetch_add(1, Ordering::AcqRel);
    result
}

pub fn copy_name(name: &str) -> [u8; NAME_LEN] {
    let mut out = [0; NAME_LEN];
    let n = name.len().min(NAME_LEN - 1);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}
