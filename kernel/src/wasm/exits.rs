//! The exit registry: how each server ended, for whoever started it (`kwast_process_status`,
//! its parent's exit signal), and the count of servers still running (the kernel shuts down
//! when it reaches zero).

use crate::ipc::notification::Notification;
use crate::process::ProcessId;
use crate::sched::{Wait, WaitKind, WaitQueue};
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;

/// How a server ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It returned from `_start` or called `proc_exit`.
    Code(u32),
    /// It was killed: a trap, a refused artifact, a failed start. The reason, for humans.
    Killed(String),
}

/// Signalled when a server ends (its parent's wake-up).
pub type ExitSignal = (Arc<Notification>, u64);

static EXITED: WaitQueue = WaitQueue::new();
static RUNNING: IrqMutex<usize> = IrqMutex::new(0);
static EXITS: IrqMutex<BTreeMap<ProcessId, Exit>> = IrqMutex::new(BTreeMap::new());

/// A server is starting: the kernel runs until it has ended.
pub fn started() {
    *RUNNING.lock() += 1;
}

/// Server `id` ended as `exit`: kept for whoever asks, and its parent signalled.
pub fn ended(id: ProcessId, exit: Exit, on_exit: Option<ExitSignal>) {
    EXITS.lock().insert(id, exit);
    *RUNNING.lock() -= 1;
    // The kernel's waiters first: the wakes right after a `Signal` event are that signal's
    // (the debug view draws an arrow from the signal to each).
    EXITED.wake_all();
    if let Some((notification, bits)) = on_exit {
        notification.signal(bits);
    }
}

/// How server `id` ended; None while it runs.
pub fn exit_of(id: ProcessId) -> Option<Exit> {
    EXITS.lock().get(&id).cloned()
}

/// Waits until every server has ended.
pub fn wait_all() {
    EXITED.wait_until(Wait::on(WaitKind::Servers, 0, 0), || *RUNNING.lock() == 0);
}
