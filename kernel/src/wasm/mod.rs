//! The wasm runtime: wasmtime's no_std runtime running servers compiled on the host.
//!
//! At boot, if there is a module named `init`, only init starts, holding the authority to
//! start the other boot modules, bind IRQs and grant I/O ports: it brings the system up from
//! its manifest and supervises it. Without init, every boot module starts as a server.

mod abi;
mod artifact;
pub mod engine;
pub mod exits;
mod guest;
mod link;
pub mod platform;
pub mod server;
pub mod stop;
mod wasi;

use crate::boot::multiboot::{BootInfo, Module};
use crate::debug::state::EventKind;
use crate::ipc::handle::{Capability, Rights};
use crate::process::ProcessId;
use crate::sync::IrqMutex;
use alloc::string::String;
use alloc::vec::Vec;

/// A boot module: what `kwast_spawn` can start by name.
#[derive(Clone)]
pub struct BootModule {
    pub name: String,
    pub file_name: String,
    pub args: Vec<String>,
    /// Its limits unless its starter gives others.
    pub limits: server::Limits,
    pub bytes: &'static [u8],
    /// The server `spawn` last started from it, to tell a restart from a first start.
    last_started: Option<ProcessId>,
}

impl BootModule {
    /// A module's command line is `FILE [SETTING=VALUE ... --] ARGS...`: the settings before a
    /// `--` are the kernel's (`memory=BYTES`, `watchdog_ms=MS`, `cpu=N`), the rest the server's
    /// arguments.
    fn parse(module: &Module) -> Result<BootModule, String> {
        let file_name = String::from(module.name());
        let words: Vec<&str> = module.cmdline.split_whitespace().skip(1).collect();
        let (settings, args) = match words.iter().position(|&w| w == "--") {
            Some(end) => (&words[..end], &words[end + 1..]),
            None => (&[][..], &words[..]),
        };
        let mut limits = server::Limits::default();
        for setting in settings {
            let value = |v: &str| v.parse::<u64>().map_err(|_| alloc::format!("{}: {} is not a number", file_name, setting));
            match setting.split_once('=') {
                Some(("memory", v)) => limits.memory = value(v)? as usize,
                Some(("watchdog_ms", v)) => limits.watchdog_ms = Some(value(v)?),
                Some(("cpu", v)) => limits.cpu = Some(value(v)? as usize),
                _ => return Err(alloc::format!("{}: unknown setting {}", file_name, setting)),
            }
        }
        Ok(BootModule {
            name: String::from(file_name.split('.').next().unwrap_or(&file_name)),
            args: args.iter().map(|&a| String::from(a)).collect(),
            file_name,
            limits,
            bytes: module.bytes(),
            last_started: None,
        })
    }
}

static BOOT_MODULES: IrqMutex<Vec<BootModule>> = IrqMutex::new(Vec::new());

/// Takes the boot modules that are servers: `spawn` starts them by name.
pub fn register_boot_modules(boot: &BootInfo) {
    let mut modules = BOOT_MODULES.lock();
    for module in boot.modules() {
        match BootModule::parse(&module) {
            Ok(parsed) => modules.push(parsed),
            Err(why) => crate::kprintln!("module ignored: {}", why),
        }
    }
}

/// Starts init, or every module if there is none. Returns how many servers were started.
pub fn start_boot_servers() -> usize {
    let modules = BOOT_MODULES.lock();
    let has_init = modules.iter().any(|m| m.name == "init");
    let to_start: Vec<BootModule> = modules.iter().filter(|m| !has_init || m.name == "init").cloned().collect();
    // Starting a server may switch threads: never with a lock held.
    drop(modules);
    let root = |object| Capability { object, rights: Rights::GRANT, badge: 0 };
    let count = to_start.len();
    for module in to_start {
        let grants = if has_init {
            abi::INIT_GRANTS.into_iter().map(root).collect()
        } else {
            Vec::new()
        };
        server::start(module, grants, None);
    }
    count
}

/// Starts the boot module `name` on behalf of a server holding the spawn capability, with the
/// module's own limits where `limits` leaves them unset.
pub fn spawn(name: &str, args: Vec<String>, limits: SpawnLimits, grants: Vec<Capability>,
             on_exit: Option<exits::ExitSignal>) -> Option<ProcessId> {
    let modules = BOOT_MODULES.lock();
    let boot = modules.iter().find(|m| m.name == name)?;
    let previous = boot.last_started;
    let module = BootModule {
        name: boot.name.clone(),
        file_name: boot.file_name.clone(),
        args,
        limits: server::Limits {
            memory: limits.memory.unwrap_or(boot.limits.memory),
            watchdog_ms: limits.watchdog_ms.or(boot.limits.watchdog_ms),
            cpu: limits.cpu.or(boot.limits.cpu),
        },
        bytes: boot.bytes,
        last_started: None,
    };
    drop(modules);
    let id = server::start(module, grants, on_exit);
    if let Some(boot) = BOOT_MODULES.lock().iter_mut().find(|m| m.name == name) {
        boot.last_started = Some(id);
    }
    // Started again once its last server has ended: a supervisor restarting it.
    if let Some(previous) = previous.filter(|&p| exits::exit_of(p).is_some()) {
        crate::debug::record(EventKind::Restart, crate::sched::current_id(), id as u64, previous as u64);
    }
    Some(id)
}

/// The limits a starter asks for; None keeps the boot module's.
#[derive(Clone, Copy, Default)]
pub struct SpawnLimits {
    pub memory: Option<usize>,
    pub watchdog_ms: Option<u64>,
    pub cpu: Option<usize>,
}
