//! Requests the workbench makes of a running kernel by writing guest memory (through GDB, or
//! the debug port in a recorded run): declared once here, found by the host through the symbol
//! and DWARF, like the state block. The timer polls it.

use core::sync::atomic::{AtomicU32, Ordering};

#[repr(C)]
pub struct DebugControl {
    /// A process id to kill, as if it had trapped ("killed on request"); 0 for none.
    pub kill_process: AtomicU32,
    /// Non-zero: the next IPC message sent has every byte inverted on its way (a fault injected
    /// into the channel, to see that servers and kernel survive it).
    pub corrupt_next_message: AtomicU32,
}

#[no_mangle]
#[used]
pub static KWAST_DEBUG_CONTROL: DebugControl =
    DebugControl { kill_process: AtomicU32::new(0), corrupt_next_message: AtomicU32::new(0) };

/// Applies a requested corruption to a message being sent; true if it did.
pub fn corrupt_if_requested(message: &mut [u8]) -> bool {
    if KWAST_DEBUG_CONTROL.corrupt_next_message.swap(0, Ordering::AcqRel) == 0 {
        return false;
    }
    message.iter_mut().for_each(|byte| *byte = !*byte);
    true
}

/// From the timer: carries out what the workbench asked for, written by a debugger or arrived
/// on the debug port.
pub fn poll() {
    super::port::poll();
    let process = KWAST_DEBUG_CONTROL.kill_process.swap(0, Ordering::AcqRel);
    if process != 0 {
        // Thread 0: no thread's doing, the workbench's.
        super::record(super::state::EventKind::Kill, 0, process as u64, 0);
        crate::process::request_kill(process);
    }
}
