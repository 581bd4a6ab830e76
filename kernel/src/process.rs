//! Processes: what a server is to the kernel. A process has a name, its arguments, a handle
//! table of capabilities, and threads; when it dies its capabilities go, and partners blocked
//! on its endpoints learn that their peer died.

use crate::debug::ServerSlot;
use crate::ipc::handle::{Capability, HandleTable, Object, MAX_HANDLES};
use crate::sched::Name;
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

pub type ProcessId = u32;

pub struct Process {
    pub id: ProcessId,
    pub name: Name,
    pub args: Vec<String>,
    pub handles: IrqMutex<HandleTable>,
    /// Someone asked for it to die: its threads leave their waits and stop at the next check.
    pub kill_requested: AtomicBool,
    /// Timer ticks its threads ran.
    pub cpu_ticks: AtomicU64,
    /// Its server row in the debug-state block, if one was free.
    pub debug_row: Option<ServerSlot>,
}

impl Process {
    /// Shows its CPU time and handle-table use in its row. From the timer: a handle table
    /// locked by the interrupted code is left as last shown.
    pub fn publish(&self) {
        let Some(row) = &self.debug_row else { return };
        let handles = self.handles.try_lock().map(|table| table.len() as u32);
        let cpu_ticks = self.cpu_ticks.load(Ordering::Relaxed);
        row.update(|r| {
            r.cpu_ticks = cpu_ticks;
            if let Some(handles) = handles {
                r.handles = handles;
            }
        });
    }
}

static PROCESSES: IrqMutex<BTreeMap<ProcessId, Arc<Process>>> = IrqMutex::new(BTreeMap::new());
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

pub fn create(name: &str, args: Vec<String>) -> Arc<Process> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let debug_row = ServerSlot::claim(id, name);
    if let Some(row) = &debug_row {
        row.update(|r| r.handle_limit = MAX_HANDLES as u32);
    }
    let process = Arc::new(Process {
        id, name: Name::new(name), args, handles: IrqMutex::new(HandleTable::default()), kill_requested: AtomicBool::new(false),
        cpu_ticks: AtomicU64::new(0), debug_row,
    });
    PROCESSES.lock().insert(id, process.clone());
    process
}

/// Every process shows its CPU time and handles (`Process::publish`); from the timer, so
/// skipped if the interrupted code holds the process list.
pub fn publish_all() {
    if let Some(processes) = PROCESSES.try_lock() {
        processes.values().for_each(|p| p.publish());
    }
}

pub fn get(id: ProcessId) -> Option<Arc<Process>> {
    PROCESSES.lock().get(&id).cloned()
}

/// The process of the calling thread. Inline: every kernel call of a server asks (left out of
/// line, it cost an IPC round trip some 30 instructions).
#[inline]
pub fn current() -> Option<Arc<Process>> {
    let process = crate::arch::percpu::this_cpu().process.get();
    if process.is_null() {
        return None;
    }
    // SAFETY: the running thread holds an Arc of its process, so it is alive: take another.
    unsafe {
        Arc::increment_strong_count(process);
        Some(Arc::from_raw(process))
    }
}

/// `f` on the calling thread's process, borrowed rather than counted: the thread holds an Arc
/// of its process for as long as it runs. For the kernel calls on IPC's path, where taking and
/// dropping a count cost a round trip some 30 instructions.
#[inline]
pub fn with_current<R>(f: impl FnOnce(&Process) -> R) -> Option<R> {
    let process = crate::arch::percpu::this_cpu().process.get();
    // SAFETY: as `current`; the borrow ends with `f`, inside the running thread's kernel call.
    (!process.is_null()).then(|| f(unsafe { &*process }))
}

/// Asks process `id` to die: its threads are woken from any wait and stop where the runtime
/// next checks (`killed`). Safe from the timer interrupt.
pub fn request_kill(id: ProcessId) {
    if let Some(process) = PROCESSES.try_lock().and_then(|p| p.get(&id).cloned()) {
        process.kill_requested.store(true, Ordering::Release);
        crate::sched::wake_process(id);
    }
}

/// Whether the calling thread's process is to die.
#[inline]
pub fn current_killed() -> bool {
    // SAFETY: the running thread holds its process.
    unsafe { crate::arch::percpu::this_cpu().process.get().as_ref() }.is_some_and(|p| p.kill_requested.load(Ordering::Acquire))
}

/// Ends a process's hold on the system: its capabilities are dropped, the endpoints it served
/// closed (so their callers get `PeerDied`), its IRQs unbound.
pub fn destroy(id: ProcessId) {
    let Some(process) = PROCESSES.lock().remove(&id) else { return };
    let capabilities: Vec<Capability> = process.handles.lock().clear();
    for capability in capabilities {
        match capability.object {
            Object::Endpoint(endpoint) if endpoint.owner == id => endpoint.close(),
            Object::Reply(call) => {
                let _ = call.fail(crate::ipc::error::Error::PeerDied);
            }
            _ => {}
        }
    }
}
