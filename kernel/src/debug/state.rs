//! The debug-state block: one `#[repr(C)]` structure at the symbol `KWAST_DEBUG_STATE` that the
//! workbench reads from guest memory while the guest runs, with its layout taken from this
//! file's DWARF. It is declared here and nowhere else.
//!
//! Consistency: writers make `sequence` odd, update, then make it even again; a reader that sees
//! an odd or changed sequence reads again. Capacities are fixed; what did not fit is counted.
//! Only `rows` and `record` in this folder write it: see `debug/mod.rs`.

use crate::sched::{RunState, Wait};
use core::sync::atomic::{compiler_fence, AtomicU64, Ordering};

pub const MAGIC: u64 = u64::from_le_bytes(*b"KWASTDBG");
/// Raised when a change breaks readers that go by field names (renames, changed meanings).
/// Adding a field does not need it: readers find fields by name in the DWARF.
/// 2: thread rows lost their `Free` state; a free row of any table is one whose id is 0.
/// 3: a thread's `wait_object` address became `wait` (kind, object id, detail); endpoint rows
///    count calls, replies, bytes, errors and PeerDied and carry a name; IRQ rows replaced
///    `irq_counts`; server rows.
pub const LAYOUT_VERSION: u32 = 3;

/// As many as a config may give a machine (workbench/config.py).
pub const MAX_CPUS: usize = 64;
pub const MAX_THREADS: usize = 64;
pub const MAX_ENDPOINTS: usize = 32;
pub const MAX_IRQS: usize = 24;
pub const MAX_SERVERS: usize = 32;
/// Big enough that `kwast-bench trace`, draining it a few times a millisecond from the host,
/// loses no event of the ping/pong benchmark's bursts (a switch every ~1000 instructions)
/// while the host is busy: 16384 events are 512 KiB, about 0.1 s of such a burst.
pub const EVENT_RING: usize = 16384;
pub const NAME_LEN: usize = 24;
pub const REASON_LEN: usize = 96;

/// `None` marks a ring slot never written. `u16`: an event's kind and CPU share a word.
#[repr(u16)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventKind {
    None = 0,
    Switch = 1,
    ThreadStart = 2,
    ThreadExit = 3,
    /// Thread `thread` made ready; `a`: the notification whose signal woke it (0: anything
    /// else: a deadline, a kill, the kernel). An IPC hand-off records none: its call or reply
    /// event and the switch that follows say it.
    Wake = 4,
    IpcCall = 5,
    IpcReply = 6,
    Trap = 7,
    Restart = 8,
    Irq = 9,
    /// The workbench asked for process `a` to be killed (`KWAST_DEBUG_CONTROL`).
    Kill = 10,
    /// Notification `a` signalled with bits `b`, by `thread` (0: an IRQ's). The threads it
    /// woke are the `Wake` events right after it that name it: both are recorded with
    /// interrupts off.
    Signal = 11,
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
    pub wait: Wait,
    pub run_ticks: u64,
    pub switches: u64,
}

/// An endpoint's row; free when `id` is 0 (endpoint ids start at 1). Totals only grow.
/// Its receivers and queued callers are the threads whose `wait` names it.
#[repr(C)]
pub struct EndpointRow {
    pub id: u32,
    pub owner: u32,
    /// Given by whoever created it (`kwast_endpoint_name`); empty if none was.
    pub name: [u8; NAME_LEN],
    pub calls: u64,
    pub replies: u64,
    /// Request and reply bytes.
    pub bytes: u64,
    /// Calls that failed, PeerDied included.
    pub errors: u64,
    pub peer_died: u64,
}

/// An ISA IRQ line: what it is bound to and how often it fired.
#[repr(C)]
pub struct IrqRow {
    /// The notification it signals; 0 when unbound.
    pub notification: u32,
    /// The process that bound it.
    pub owner: u32,
    pub count: u64,
    pub acknowledged: u64,
    /// Time stamp counter at the last acknowledge.
    pub acknowledged_tsc: u64,
}

/// `repr(u32)`: how a server is, as its row shows it.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ServerState {
    Running = 1,
    Exited = 2,
    Killed = 3,
}

/// A server by name: a restarted server takes its predecessor's row, so the row counts
/// restarts and keeps the last exit. Free when `id` is 0 (process ids start at 1). An ended
/// server's row is taken by a new server of another name only when no row is free.
#[repr(C)]
pub struct ServerRow {
    /// Its latest process.
    pub id: u32,
    pub state: ServerState,
    pub name: [u8; NAME_LEN],
    /// How it (or, while a restart runs, its predecessor) last ended: the exit code, or the
    /// reason it was killed (empty after an exit).
    pub exit_code: u32,
    /// Times it started again after ending.
    pub restarts: u32,
    pub handles: u32,
    pub handle_limit: u32,
    /// Linear memory now, and what it may grow to.
    pub memory: u64,
    pub memory_limit: u64,
    /// Timer ticks its threads ran.
    pub cpu_ticks: u64,
    /// Time stamp counter when it last ended: with every row taken, a new server takes the
    /// row of the server that ended longest ago.
    pub ended_tsc: u64,
    pub reason: [u8; REASON_LEN],
}

#[repr(C)]
pub struct Event {
    /// Time stamp counter when it happened.
    pub tsc: u64,
    pub kind: EventKind,
    /// The CPU it happened on.
    pub cpu: u16,
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
    /// Timer ticks per second, to turn ticks (CPU time, deadlines) into time.
    pub ticks_per_second: u64,
    pub cpus: [CpuState; MAX_CPUS],
    /// Rows ever used: the first `thread_count`, some freed since.
    pub thread_count: u32,
    /// Threads that found no free row.
    pub threads_dropped: u32,
    pub threads: [ThreadRow; MAX_THREADS],
    pub endpoint_count: u32,
    pub endpoints_dropped: u32,
    pub endpoints: [EndpointRow; MAX_ENDPOINTS],
    pub irqs: [IrqRow; MAX_IRQS],
    /// Rows ever used; servers whose name found no row.
    pub server_count: u32,
    pub servers_dropped: u32,
    pub servers: [ServerRow; MAX_SERVERS],
    /// Events ever recorded; the newest is at `(events_written - 1) % EVENT_RING`.
    pub events_written: u64,
    pub events: [Event; EVENT_RING],
}

const EMPTY_CPU: CpuState = CpuState { online: 0, current_thread: 0, ticks: 0, idle_ticks: 0 };
/// A free row: id 0 is the mark; the state is whatever, readers skip the row.
pub(super) const FREE_THREAD: ThreadRow = ThreadRow {
    id: 0, process: 0, name: [0; NAME_LEN], state: RunState::Dead, priority: 0, cpu: 0,
    wait: Wait::NONE, run_ticks: 0, switches: 0,
};
pub(super) const FREE_ENDPOINT: EndpointRow = EndpointRow {
    id: 0, owner: 0, name: [0; NAME_LEN], calls: 0, replies: 0, bytes: 0, errors: 0, peer_died: 0,
};
const UNBOUND_IRQ: IrqRow = IrqRow { notification: 0, owner: 0, count: 0, acknowledged: 0, acknowledged_tsc: 0 };
pub(super) const FREE_SERVER: ServerRow = ServerRow {
    id: 0, state: ServerState::Running, name: [0; NAME_LEN], exit_code: 0, restarts: 0, handles: 0,
    handle_limit: 0, memory: 0, memory_limit: 0, cpu_ticks: 0, ended_tsc: 0, reason: [0; REASON_LEN],
};
const EMPTY_EVENT: Event = Event { tsc: 0, kind: EventKind::None, cpu: 0, thread: 0, a: 0, b: 0 };

#[no_mangle]
#[used]
pub static mut KWAST_DEBUG_STATE: DebugState = DebugState {
    magic: MAGIC,
    layout_version: LAYOUT_VERSION,
    cpu_count: 0,
    sequence: AtomicU64::new(0),
    tsc_per_us: 0,
    ticks_per_second: 0,
    cpus: [EMPTY_CPU; MAX_CPUS],
    thread_count: 0,
    threads_dropped: 0,
    threads: [FREE_THREAD; MAX_THREADS],
    endpoint_count: 0,
    endpoints_dropped: 0,
    endpoints: [FREE_ENDPOINT; MAX_ENDPOINTS],
    irqs: [UNBOUND_IRQ; MAX_IRQS],
    server_count: 0,
    servers_dropped: 0,
    servers: [FREE_SERVER; MAX_SERVERS],
    events_written: 0,
    events: [EMPTY_EVENT; EVENT_RING],
};

/// Runs `f` on the block as one update the host sees whole or not at all.
/// Interrupts are off meanwhile, so an interrupt cannot update it half-way through ours; the
/// odd sequence is also the writers' lock: a CPU that finds it odd waits for the other CPU's
/// update to end, so updates from several CPUs never interleave. A reader still sees an even,
/// unchanged sequence only around a whole update.
/// Always inlined: IPC updates the block six times a round trip, and an outlined copy costs
/// each a call and the closure's spills (call+reply 2842 -> 2986 when the compiler stopped).
#[inline(always)]
pub(super) fn update<R>(f: impl FnOnce(&mut DebugState) -> R) -> R {
    let _irq = crate::arch::cpu::InterruptGuard::new();
    update_interrupts_off(f)
}

/// `update` for a caller that has interrupts off already: spares a hot path saving and
/// restoring the flags again. Callers prove it by holding an `IrqMutexGuard`.
#[inline(always)]
pub(super) fn update_interrupts_off<R>(f: impl FnOnce(&mut DebugState) -> R) -> R {
    let state = unsafe { &mut *core::ptr::addr_of_mut!(KWAST_DEBUG_STATE) };
    // Odd: a writer holds it. Setting the low bit takes it; adding one then makes it even
    // again, one higher than before: one atomic instruction each way, as a plain seqlock.
    while state.sequence.fetch_or(1, Ordering::Acquire) & 1 != 0 {
        crate::mm::tlb::serve(); // as any spin with interrupts off (sync.rs)
        core::hint::spin_loop();
    }
    compiler_fence(Ordering::SeqCst);
    let result = f(state);
    compiler_fence(Ordering::SeqCst);
    state.sequence.fetch_add(1, Ordering::Release);
    result
}

/// `text` cut to fit `N - 1` bytes (at a character boundary) and NUL-terminated.
pub fn copy_text<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0; N];
    let mut n = text.len().min(N - 1);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

pub fn copy_name(name: &str) -> [u8; NAME_LEN] {
    copy_text(name)
}
