//! A kernel panic prints its message and location, then ends QEMU with the failure code.

use crate::arch::qemu_exit::{exit, ExitCode};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    unsafe { crate::console::break_lock() };
    match info.location() {
        Some(at) => crate::kprintln!("KERNEL PANIC at {}:{}:{}: {}", at.file(), at.line(), at.column(), info.message()),
        None => crate::kprintln!("KERNEL PANIC: {}", info.message()),
    }
    exit(ExitCode::Failure)
}
