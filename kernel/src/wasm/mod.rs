//! The wasm runtime: wasmtime's no_std runtime running servers compiled on the host.

mod abi;
mod artifact;
pub mod engine;
mod guest;
mod platform;
pub mod server;
mod wasi;

use crate::boot::multiboot::BootInfo;

/// Starts every boot module as a server. Returns how many were started.
pub fn start_boot_servers(boot: &BootInfo) -> usize {
    let mut count = 0;
    for module in boot.modules() {
        let file_name = module.name();
        let name = file_name.split('.').next().unwrap_or(file_name);
        let args = module.cmdline.split_whitespace().skip(1).map(alloc::string::String::from).collect();
        server::start(name, file_name, args, module.bytes());
        count += 1;
    }
    count
}
