//! Requests the workbench makes of a running kernel by writing guest memory (through GDB or
//! the RAM file): declared once here, found by the host through the symbol and DWARF, like the
//! state block. The timer polls it.

use core::sync::atomic::{AtomicU32, Ordering};

#[repr(C)]
pub struct DebugControl {
    /// A process id to kill, as if it had trapped ("killed on request"); 0 for none.
    pub kill_process: AtomicU32,
}

#[no_mangle]
#[used]
pub static KWAST_DEBUG_CONTROL: DebugControl = DebugControl { kill_process: AtomicU32::new(0) };

/// From the timer: carries out what the workbench asked for.
pub fn poll() {
    let process = KWAST_DEBUG_CONTROL.kill_process.swap(0, Ordering::AcqRel);
    if process != 0 {
        crate::process::request_kill(process);
    }
}
