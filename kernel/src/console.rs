//! The kernel console: `kprint!`/`kprintln!` to COM1.

use crate::arch::serial::Serial;
use core::fmt::Write;
use crate::sync::IrqMutex;

static CONSOLE: IrqMutex<Option<Serial>> = IrqMutex::new(None);

pub fn init() {
    *CONSOLE.lock() = Some(Serial::init());
}

pub fn print(args: core::fmt::Arguments) {
    if let Some(serial) = CONSOLE.lock().as_mut() {
        let _ = serial.write_fmt(args);
    }
}

/// For the panic path only: the panicking code may hold the lock, and it will never release it.
pub unsafe fn break_lock() {
    CONSOLE.force_unlock();
}

#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
