//! Everything specific to x86_64.

mod boot;
pub mod port;
pub mod qemu_exit;
pub mod serial;
