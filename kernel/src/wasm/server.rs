//! A server's life: one boot module become a process with its own wasmtime instance, linear
//! memory and thread. Whatever the server does (trap, run away, exit), it ends alone: its thread
//! reports why (`kill_reason`), its process is destroyed, its end is kept (exits.rs), and the
//! kernel and other servers go on. Its imports are bound in link.rs, stops delivered by stop.rs.

use super::engine::engine;
use super::exits::{self, Exit, ExitSignal};
use super::link::{self, ProcExit};
use super::stop::{self, Stop};
use super::wasi::Wasi;
use super::{artifact, BootModule};
use crate::debug::state::EventKind;
use crate::ipc::handle::Capability;
use crate::process::{self, Process, ProcessId};
use crate::sched::{self, Priority};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use wasmtime::{Memory, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap, WasmBacktrace};

/// Stack of a server's thread: the wasm stack limit plus room for the kernel and wasmtime.
const SERVER_STACK: u64 = kwast_engine_config::MAX_WASM_STACK as u64 + (512 << 10);

/// What a server may use. Set per server in the config and in init's manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory it may grow to; past it `memory.grow` returns -1 (`malloc` gives NULL).
    pub memory: usize,
    /// Stop it after this much CPU time (ms) without a kernel call; None: computing is no fault.
    pub watchdog_ms: Option<u64>,
    /// The CPU its thread runs on, for good; None: where the scheduler places it.
    pub cpu: Option<usize>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory: 16 << 20, watchdog_ms: None, cpu: None }
    }
}

/// A server's limits, enforced by wasmtime's `StoreLimits`; the linear memory it is allowed to
/// grow to is shown in its server row.
struct Limiter {
    limits: StoreLimits,
    process: Arc<Process>,
    /// Where the server's memory is and how long it was when last asked
    /// (`link::memory_and_state`); dropped when it may grow.
    view: Option<MemoryView>,
}

/// A server's linear memory: its place and a length it has at least.
#[derive(Clone, Copy)]
pub(super) struct MemoryView(pub *mut u8, pub usize);

// SAFETY: it points into the memory of the store it is kept in, which goes with the store.
unsafe impl Send for MemoryView {}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.view = None;
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if let Some(row) = self.process.debug_row.as_ref().filter(|_| allowed) {
            row.update(|r| r.memory = desired as u64);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// What a server's store holds for the kernel's side of its calls.
pub struct ServerState {
    process: Arc<Process>,
    pub(super) wasi: Wasi,
    limits: Limiter,
    /// What the timer interrupt stops it by, while it runs wasm (wasm/stop.rs).
    stop: stop::Registered,
    /// The instance's exported memory, found once: looking an export up by name on every
    /// kernel call cost hundreds of instructions per IPC.
    pub(super) memory: Option<Memory>,
}

impl ServerState {
    /// Every kernel call starts here: it resets the watchdog, and a server that is to die stops.
    #[inline]
    pub fn enter(&mut self) -> wasmtime::Result<()> {
        self.stop.touch();
        self.check_killed()
    }

    /// The view of its memory kept from an earlier kernel call, unless the memory may have
    /// grown since (then None, and `keep_view` keeps a new one).
    #[inline]
    pub(super) fn view(&self) -> Option<MemoryView> {
        self.limits.view
    }

    pub(super) fn keep_view(&mut self, view: MemoryView) {
        self.limits.view = Some(view);
    }

    /// Stops the server if it is to die: checked on every kernel call (in wasm code, the timer
    /// interrupt stops it).
    #[inline]
    pub fn check_killed(&self) -> wasmtime::Result<()> {
        if self.process.kill_requested.load(core::sync::atomic::Ordering::Acquire) {
            return Err(wasmtime::Error::new(stop::Reason::Killed));
        }
        Ok(())
    }
}

fn finish(process: &Arc<Process>, exit: Exit, on_exit: Option<ExitSignal>) {
    let name = process.name;
    match &exit {
        Exit::Code(code) => crate::kprintln!("server {} exited with code {}", name.as_str(), code),
        Exit::Killed(reason) => crate::kprintln!("server {} killed: {}", name.as_str(), reason),
    }
    if let Some(row) = &process.debug_row {
        process.publish();
        match &exit {
            Exit::Code(code) => row.ended(Some(*code), ""),
            Exit::Killed(reason) => row.ended(None, reason),
        }
    }
    if matches!(exit, Exit::Killed(_)) {
        crate::debug::record(EventKind::Trap, sched::current_id(), process.id as u64, 0);
    }
    process::destroy(process.id);
    exits::ended(process.id, exit, on_exit);
}

/// Starts `module` as a server, holding `grants` as its first handles (see KWAST_GRANT in
/// kwast.h).
pub fn start(mut module: BootModule, grants: Vec<Capability>, on_exit: Option<ExitSignal>) -> ProcessId {
    // The process takes the name and arguments: kept in the module for the server's lifetime
    // they would sit in the heap in front of IPC's allocations (call+reply 11028 -> 11813).
    let process = process::create(&core::mem::take(&mut module.name), core::mem::take(&mut module.args));
    let name = process.name;
    let id = process.id;
    {
        let mut table = process.handles.lock();
        for grant in grants {
            table.insert(grant).expect("a new handle table has room for the grants");
        }
    }
    exits::started();
    if let Some(cpu) = module.limits.cpu.filter(|&cpu| cpu >= crate::arch::smp::online() as usize) {
        crate::kprintln!("server {}: CPU {} is not online; the scheduler places it", name.as_str(), cpu);
    }
    let owner = process.clone();
    let spawned = sched::spawn_in(Some(&owner), name.as_str(), Priority::NORMAL, SERVER_STACK, module.limits.cpu, move || {
        let exit = run(&process, &module);
        finish(&process, exit, on_exit);
    });
    if let Err(error) = spawned {
        finish(&process::get(id).expect("just created"), Exit::Killed(alloc::format!("no thread: {:?}", error)), None);
    }
    id
}

fn run(process: &Arc<Process>, module: &BootModule) -> Exit {
    let (name, file_name, limits, bytes) = (process.name.as_str(), module.file_name.as_str(), module.limits, module.bytes);
    let started = crate::arch::cpu::rdtsc();
    let (module, first) = match artifact::load(file_name, bytes) {
        Ok(loaded) => loaded,
        Err(refusal) => return Exit::Killed(refusal),
    };
    if let Some(row) = &process.debug_row {
        row.update(|r| r.memory_limit = limits.memory as u64);
    }
    let state = ServerState {
        process: process.clone(),
        wasi: Wasi::new(name, &process.args),
        limits: Limiter { limits: StoreLimitsBuilder::new().memory_size(limits.memory).build(), process: process.clone(), view: None },
        stop: Stop::register(&module, process.clone(), limits.watchdog_ms),
        memory: None,
    };
    let mut store = Store::new(engine(), state);
    store.limiter(|state| &mut state.limits);
    let prepared = match link::prepared(&mut store, file_name, &module) {
        Ok(prepared) => prepared,
        Err(error) => return Exit::Killed(alloc::format!("cannot link: {:#}", error)),
    };
    let start = prepared.instantiate(&mut store).and_then(|instance| {
        store.data_mut().memory = instance.get_memory(&mut store, "memory");
        instance.get_typed_func::<(), ()>(&mut store, "_start")
    });
    // Cycles are guest instructions under -icount shift=0 (`kwast-bench bench --suite start`).
    let cycles = crate::arch::cpu::rdtsc() - started;
    // Where its code is, once: `kwast-bench profile` names wasm functions by it.
    let how = match first {
        true => alloc::format!("first start, code at {:#x}", module.text().as_ptr() as u64),
        false => String::from("module kept from an earlier start"),
    };
    // The TSC since reset too: under -icount, every instruction the machine ran to get here
    // (`kwast-bench bench --suite boot`).
    crate::kprintln!("server {}: {} ready in {} us, {} cycles ({} bytes, {}) at TSC {}", name, file_name,
                     cycles / crate::time::tsc_per_us(), cycles, bytes.len(), how, started + cycles);
    let result = start.and_then(|start| start.call(&mut store, ()));
    store.data_mut().wasi.flush();
    match result {
        Ok(()) => Exit::Code(0),
        Err(error) => match error.downcast_ref::<ProcExit>() {
            Some(ProcExit(code)) => Exit::Code(*code),
            None => Exit::Killed(kill_reason(&error, store.data().stop.reason())),
        },
    }
}

/// What happened and where: `out of bounds memory access in poke ← main ← _start`. Functions
/// are named from the module's name section, else `func[INDEX]@0xOFFSET` (module offset); a
/// function repeated (recursion) is said once with its count, `deeper ×4000`. A server stopped
/// in wasm code (`stopped`) was unwound through a trap site it did not reach: the stop is what
/// happened.
fn kill_reason(error: &wasmtime::Error, stopped: Option<stop::Reason>) -> String {
    use core::fmt::Write;
    let mut reason = match (stopped, error.downcast_ref::<Trap>()) {
        (Some(stop), _) => alloc::format!("{}", stop),
        // wasmtime says "wasm trap: <what>"; every kill reason is one, so only <what> is kept.
        (None, Some(trap)) => {
            let text = alloc::format!("{}", trap);
            String::from(text.strip_prefix("wasm trap: ").unwrap_or(&text))
        }
        // The root cause names what happened; the outer layers only add the backtrace.
        (None, None) => alloc::format!("{}", error.root_cause()),
    };
    let frames = error.downcast_ref::<WasmBacktrace>().map(WasmBacktrace::frames).unwrap_or(&[]);
    let name = |frame: &wasmtime::FrameInfo| match frame.func_name() {
        Some(name) => String::from(name),
        None => alloc::format!("func[{}]@{:#x}", frame.func_index(), frame.module_offset().unwrap_or(0)),
    };
    let mut rest = frames.iter().map(name).peekable();
    let mut first = true;
    while let Some(function) = rest.next() {
        let mut times = 1;
        while rest.next_if_eq(&function).is_some() {
            times += 1;
        }
        reason.push_str(if first { " in " } else { " \u{2190} " });
        first = false;
        let _ = match times {
            1 => write!(reason, "{}", function),
            _ => write!(reason, "{} \u{d7}{}", function, times),
        };
    }
    reason
}
