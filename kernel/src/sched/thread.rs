//! A kernel thread: its saved context (full register file and SSE state), its stack, and what
//! the scheduler and the debug-state block need to know about it.

use crate::arch::trap::TrapFrame;
use crate::debug::state::{copy_name, ThreadRow, NAME_LEN};
use crate::debug::Slot;
use crate::mm::stacks::Stack;
use alloc::boxed::Box;

pub type ThreadId = u32;

pub const TLS_SLOTS: usize = 2;

/// Higher runs first; round-robin among equals.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Priority(pub u8);

impl Priority {
    pub const IDLE: Priority = Priority(0);
    pub const LOW: Priority = Priority(1);
    pub const NORMAL: Priority = Priority(4);
    pub const HIGH: Priority = Priority(6);
    pub const LEVELS: usize = 8;
}

/// `repr(u8)`: the debug-state block shows it as is (`ThreadRow::state`).
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RunState {
    Ready,
    Running,
    Blocked,
    Sleeping,
    Dead,
}

/// What a blocked or sleeping thread waits for, by kind: `repr(u32)` as the block shows it.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WaitKind {
    None = 0,
    /// A call on endpoint `object`.
    Receive = 1,
    /// Its call on endpoint `object` to be taken (badge in `detail`).
    Call = 2,
    /// The answer to its call on endpoint `object`, which a receiver has taken.
    Reply = 3,
    /// Signals on notification `object`.
    Notification = 4,
    /// Tick `detail`.
    Sleep = 5,
    /// Thread `object` to exit.
    Join = 6,
    /// Every server to end.
    Servers = 7,
}

/// What a thread waits for, by kind and object id, never by address: the debug-state block
/// shows it and the workbench names it.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Wait {
    pub kind: WaitKind,
    pub object: u32,
    /// The call's badge, or the tick a sleep ends.
    pub detail: u64,
}

impl Wait {
    pub const NONE: Wait = Wait { kind: WaitKind::None, object: 0, detail: 0 };

    pub const fn on(kind: WaitKind, object: u32, detail: u64) -> Wait {
        Wait { kind, object, detail }
    }
}

/// A thread name, fixed-size so fault reports can print it without allocating.
#[derive(Clone, Copy)]
pub struct Name(pub [u8; NAME_LEN]);

impl Name {
    pub fn new(name: &str) -> Name {
        Name(copy_name(name))
    }

    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.0[..len]).unwrap_or("?")
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

pub struct Thread {
    pub id: ThreadId,
    pub name: Name,
    pub priority: Priority,
    pub state: RunState,
    pub context: Box<TrapFrame>,
    /// None for the boot thread, which runs on the boot stack.
    pub stack: Option<Stack>,
    /// What it runs first; taken when it starts.
    pub entry: Option<Box<dyn FnOnce() + Send>>,
    /// The CPU whose queue it is on, or that runs it or ran it last.
    pub cpu: u32,
    /// It runs on `cpu` only: never taken by another CPU, never moved by a hand-off.
    pub pinned: bool,
    /// Some CPU runs it (its context is live there, not in `context`).
    pub on_cpu: bool,
    /// A wake came while it was not blocked (another CPU, as it was about to block): its next
    /// block returns at once.
    pub wake_pending: bool,
    /// Tick at which a sleeping thread wakes, or a blocked one gives up waiting.
    pub wake_at: u64,
    /// Set when a blocked thread was woken by its deadline rather than by `wake`.
    pub timed_out: bool,
    /// The process it belongs to; None for kernel threads.
    pub process: Option<alloc::sync::Arc<crate::process::Process>>,
    /// What a blocked or sleeping thread waits for (for the debug view).
    pub wait: Wait,
    pub quantum_left: u32,
    pub run_ticks: u64,
    pub switches: u64,
    /// Its row in the debug-state block, if one was free.
    pub debug_row: Option<Slot<ThreadRow>>,
    /// Thread-local slots of the wasm runtime (wasmtime_tls_get/set).
    pub tls: [usize; TLS_SLOTS],
}

impl Thread {
    /// Shows what changes of it (state, wait, CPU time, switches) in its debug-state row.
    /// Called under the scheduler's lock: interrupts are off. Always inlined: each switch and
    /// wake publishes, and an outlined copy cost each a call (call+reply +40).
    #[inline(always)]
    pub fn publish(&self) {
        if let Some(row) = &self.debug_row {
            row.update_interrupts_off(|r| self.show(r));
        }
    }

    /// What a switch changes of the thread leaving the CPU (its state and wait, and the CPU
    /// time it has just had), inside the switch's update: its switches and CPU were shown when
    /// it entered, and have not changed since.
    #[inline(always)]
    pub fn publish_left_in(&self, s: &mut crate::debug::state::DebugState) {
        if let Some(row) = &self.debug_row {
            row.write_in(s, |r| {
                r.state = self.state;
                r.wait = self.wait;
                r.run_ticks = self.run_ticks;
            });
        }
    }

    /// What a switch changes of the thread entering the CPU (its state, wait, switches and
    /// CPU), inside the switch's update: its CPU time was shown when it last left.
    #[inline(always)]
    pub fn publish_entered_in(&self, s: &mut crate::debug::state::DebugState) {
        if let Some(row) = &self.debug_row {
            row.write_in(s, |r| {
                r.state = self.state;
                r.wait = self.wait;
                r.switches = self.switches;
                r.cpu = self.cpu as u8;
            });
        }
    }

    #[inline(always)]
    fn show(&self, r: &mut ThreadRow) {
        r.state = self.state;
        r.wait = self.wait;
        r.run_ticks = self.run_ticks;
        r.switches = self.switches;
        r.cpu = self.cpu as u8;
    }

    /// What the debug-state block shows of it.
    pub fn row(&self) -> ThreadRow {
        ThreadRow {
            id: self.id,
            process: self.process.as_ref().map_or(0, |p| p.id),
            name: self.name.0,
            state: self.state,
            priority: self.priority.0,
            cpu: self.cpu as u8,
            wait: self.wait,
            run_ticks: self.run_ticks,
            switches: self.switches,
        }
    }
}
