//! The wasm runtime: wasmtime's no_std runtime running servers compiled on the host.
//!
//! At boot, if there is a module named `init`, only init starts, holding the authority to
//! start the other boot modules, bind IRQs and grant I/O ports: it brings the system up from
//! its manifest and supervises it. Without init, every boot module starts as a server.

mod abi;
mod artifact;
pub mod engine;
mod guest;
mod platform;
pub mod server;
mod wasi;

use crate::boot::multiboot::BootInfo;
use crate::ipc::handle::{Capability, Object, Rights};
use crate::sync::IrqMutex;
use alloc::string::String;
use alloc::vec::Vec;

/// A boot module: what `kwast_spawn` can start by name.
pub struct BootModule {
    pub name: String,
    pub file_name: String,
    pub args: Vec<String>,
    pub bytes: &'static [u8],
}

static BOOT_MODULES: IrqMutex<Vec<BootModule>> = IrqMutex::new(Vec::new());

/// Starts init, or every module if there is none. Returns how many servers were started.
pub fn start_boot_servers(boot: &BootInfo) -> usize {
    let mut modules = BOOT_MODULES.lock();
    for module in boot.modules() {
        let file_name = module.name();
        modules.push(BootModule {
            name: String::from(file_name.split('.').next().unwrap_or(file_name)),
            file_name: String::from(file_name),
            args: module.cmdline.split_whitespace().skip(1).map(String::from).collect(),
            bytes: module.bytes(),
        });
    }
    let has_init = modules.iter().any(|m| m.name == "init");
    let to_start: Vec<(String, String, Vec<String>, &'static [u8])> = modules
        .iter()
        .filter(|m| !has_init || m.name == "init")
        .map(|m| (m.name.clone(), m.file_name.clone(), m.args.clone(), m.bytes))
        .collect();
    // Starting a server may switch threads: never with a lock held.
    drop(modules);
    let root = |object| Capability { object, rights: Rights::GRANT, badge: 0 };
    for (name, file_name, args, bytes) in &to_start {
        let grants = if has_init {
            // KWAST_GRANT(0..3) of init: spawn, IRQ and port authority.
            alloc::vec![root(Object::SpawnControl), root(Object::IrqControl), root(Object::PortControl)]
        } else {
            Vec::new()
        };
        server::start(name, file_name, args.clone(), bytes, grants, None);
    }
    to_start.len()
}

/// Starts the boot module `name` on behalf of a server holding the spawn capability.
pub fn spawn(name: &str, args: Vec<String>, grants: Vec<Capability>, on_exit: Option<server::ExitSignal>)
    -> Option<crate::process::ProcessId> {
    let modules = BOOT_MODULES.lock();
    let module = modules.iter().find(|m| m.name == name)?;
    let (file_name, bytes) = (module.file_name.clone(), module.bytes);
    drop(modules);
    Some(server::start(name, &file_name, args, bytes, grants, on_exit))
}
