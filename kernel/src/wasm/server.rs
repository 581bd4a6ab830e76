//! A server: one boot module become a process with its own wasmtime instance, linear memory
//! and thread. Whatever the server does (trap, run away, exit), it ends alone: its thread
//! reports why, its process is destroyed, and the kernel and other servers go on.

use super::artifact;
use super::engine::engine;
use super::wasi::{Errno, Outcome, Wasi};
use crate::process::{self, Process, ProcessId};
use crate::sched::{self, Priority, WaitQueue};
use crate::sync::IrqMutex;
use crate::debug::state::EventKind;
use crate::ipc::handle::Capability;
use crate::ipc::notification::Notification;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use wasmtime::{Caller, Engine, Linker, Memory, Module, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline, Val};

/// Stack of a server's thread: the wasm stack limit plus room for the kernel and wasmtime.
const SERVER_STACK: u64 = kwast_engine_config::MAX_WASM_STACK as u64 + (512 << 10);
/// Linear memory a server may grow to; growing beyond it traps.
const MAX_MEMORY: usize = 16 << 20;
/// A server that computes for this long (CPU time, not time blocked) without calling the
/// kernel is stopped.
const WATCHDOG_MS: u64 = 2000;

const WASI: &str = "wasi_snapshot_preview1";
/// The WASI functions `linker` defines; any other the server imports answers ENOSYS.
const WASI_FUNCTIONS: &[&str] = &[
    "fd_write", "fd_close", "fd_seek", "fd_fdstat_get", "args_sizes_get", "args_get", "environ_sizes_get",
    "environ_get", "clock_time_get", "random_get", "sched_yield", "poll_oneoff", "proc_exit",
];

/// How a server ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It returned from `_start` or called `proc_exit`.
    Code(u32),
    /// It was killed: a trap, a refused artifact, a failed start. The reason, for humans.
    Killed(String),
}

pub struct ServerState {
    process: Arc<Process>,
    wasi: Wasi,
    limits: StoreLimits,
    /// The server thread's CPU time (ticks) at its last call into the kernel: the watchdog's
    /// reference.
    cpu_at_last_call: u64,
    /// The instance's exported memory, found once: looking an export up by name on every
    /// kernel call cost hundreds of instructions per IPC.
    memory: Option<Memory>,
}

impl ServerState {
    /// The server called the kernel: it is not running away.
    fn touch(&mut self) {
        self.cpu_at_last_call = sched::current_run_ticks();
    }

    /// Every kernel call starts here: it resets the watchdog, and a server that is to die stops.
    pub fn enter(&mut self) -> wasmtime::Result<()> {
        self.touch();
        self.check_killed()
    }

    /// Stops the server if it is to die: checked on every kernel call and every epoch.
    pub fn check_killed(&self) -> wasmtime::Result<()> {
        if self.process.kill_requested.load(core::sync::atomic::Ordering::Acquire) {
            return Err(wasmtime::Error::new(KilledOnRequest));
        }
        Ok(())
    }
}

/// The server's linear memory (its `memory` export).
pub fn memory_of(caller: &mut Caller<'_, ServerState>) -> wasmtime::Result<Memory> {
    if let Some(memory) = caller.data().memory {
        return Ok(memory);
    }
    // Not instantiated yet (a start function calling the kernel): look it up.
    caller
        .get_export("memory")
        .and_then(|export| export.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("the server exports no memory"))
}

/// A kill the workbench asked for (debug/control.rs), carried out of wasm as an error.
#[derive(Debug)]
struct KilledOnRequest;

impl core::fmt::Display for KilledOnRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "killed on request")
    }
}

impl core::error::Error for KilledOnRequest {}

/// `proc_exit`, carried out of wasm as an error.
#[derive(Debug)]
struct ProcExit(u32);

impl core::fmt::Display for ProcExit {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "exit({})", self.0)
    }
}

impl core::error::Error for ProcExit {}

static EXITED: WaitQueue = WaitQueue::new();
static RUNNING: IrqMutex<usize> = IrqMutex::new(0);
/// How each ended server ended, for whoever started it.
static EXITS: IrqMutex<BTreeMap<ProcessId, Exit>> = IrqMutex::new(BTreeMap::new());

/// Signalled when a server ends (its parent's wake-up).
pub type ExitSignal = (Arc<Notification>, u64);

/// Starts `bytes` (the module file `file_name`) as a server named `name`, holding `grants` as
/// its first handles (see KWAST_GRANT in kwast.h).
pub fn start(name: &str, file_name: &str, args: Vec<String>, bytes: &'static [u8], grants: Vec<Capability>,
             on_exit: Option<ExitSignal>) -> ProcessId {
    let process = process::create(name, args);
    let id = process.id;
    {
        let mut table = process.handles.lock();
        for grant in grants {
            table.insert(grant).expect("a new handle table has room for the grants");
        }
    }
    *RUNNING.lock() += 1;
    let file_name = String::from(file_name);
    let spawned = sched::spawn_in(Some(id), name, Priority::NORMAL, SERVER_STACK, move || {
        let exit = run(&process, &file_name, bytes);
        finish(&process, exit, on_exit);
    });
    if let Err(error) = spawned {
        finish(&process::get(id).expect("just created"), Exit::Killed(alloc::format!("no thread: {:?}", error)), None);
    }
    id
}

fn finish(process: &Arc<Process>, exit: Exit, on_exit: Option<ExitSignal>) {
    let name = process.name;
    match &exit {
        Exit::Code(code) => crate::kprintln!("server {} exited with code {}", name.as_str(), code),
        Exit::Killed(reason) => crate::kprintln!("server {} killed: {}", name.as_str(), reason),
    }
    if matches!(exit, Exit::Killed(_)) {
        let tsc = crate::arch::cpu::rdtsc();
        crate::debug::state::update(|s| s.record(tsc, EventKind::Trap, sched::current_id(), process.id as u64, 0));
    }
    process::destroy(process.id);
    EXITS.lock().insert(process.id, exit);
    *RUNNING.lock() -= 1;
    if let Some((notification, bits)) = on_exit {
        notification.signal(bits);
    }
    EXITED.wake_all();
}

/// How server `id` ended; None while it runs.
pub fn exit_of(id: ProcessId) -> Option<Exit> {
    EXITS.lock().get(&id).cloned()
}

/// Waits until every server has ended.
pub fn wait_all() {
    EXITED.wait_until(|| *RUNNING.lock() == 0);
}

fn run(process: &Arc<Process>, file_name: &str, bytes: &[u8]) -> Exit {
    let name = process.name.as_str();
    if let Err(refusal) = artifact::verify(file_name, bytes) {
        return Exit::Killed(alloc::format!("artifact {} refused: {}", file_name, refusal));
    }
    let engine = engine();
    let started = crate::time::uptime_us();
    // Safe only for trusted artifacts: `verify` checked this one against the build's digests.
    let module = match unsafe { Module::deserialize(engine, bytes) } {
        Ok(module) => module,
        Err(error) => return Exit::Killed(alloc::format!("artifact {} refused by wasmtime: {:#}", file_name, error)),
    };
    crate::kprintln!("server {}: {} loaded in {} us ({} bytes)", name, file_name, crate::time::uptime_us() - started, bytes.len());

    let state = ServerState {
        process: process.clone(),
        wasi: Wasi::new(name, &process.args),
        limits: StoreLimitsBuilder::new().memory_size(MAX_MEMORY).trap_on_grow_failure(true).build(),
        cpu_at_last_call: sched::current_run_ticks(),
        memory: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|context| {
        context.data().check_killed()?;
        let computing = sched::current_run_ticks() - context.data().cpu_at_last_call;
        if computing * 1000 / crate::time::TICK_HZ > WATCHDOG_MS {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
    let linker = match linker(engine, &module) {
        Ok(linker) => linker,
        Err(error) => return Exit::Killed(alloc::format!("cannot link: {:#}", error)),
    };
    let result = linker
        .instantiate(&mut store, &module)
        .and_then(|instance| {
            store.data_mut().memory = instance.get_memory(&mut store, "memory");
            instance.get_typed_func::<(), ()>(&mut store, "_start")
        })
        .and_then(|start| start.call(&mut store, ()));
    store.data_mut().wasi.flush();
    match result {
        Ok(()) => Exit::Code(0),
        Err(error) => {
            if let Some(ProcExit(code)) = error.downcast_ref::<ProcExit>() {
                Exit::Code(*code)
            } else if let Some(trap) = error.downcast_ref::<Trap>() {
                Exit::Killed(alloc::format!("{}", trap)) // "wasm trap: <what>"
            } else {
                // The root cause names what happened; the outer layers only add a backtrace.
                Exit::Killed(alloc::format!("{}", error.root_cause()))
            }
        }
    }
}

/// Runs a WASI call with the server's linear memory, and turns its outcome into wasm's.
fn wasi_call(caller: &mut Caller<'_, ServerState>, f: impl FnOnce(&mut Wasi, &mut [u8]) -> Outcome) -> wasmtime::Result<i32> {
    caller.data_mut().enter()?;
    let memory = memory_of(caller)?;
    let (data, state) = memory.data_and_store_mut(caller);
    let outcome = f(&mut state.wasi, data);
    state.check_killed()?;
    match outcome {
        Outcome::Return(errno) => Ok(errno as i32),
        Outcome::Exit(code) => Err(wasmtime::Error::new(ProcExit(code))),
    }
}

fn linker(engine: &Engine, module: &Module) -> wasmtime::Result<Linker<ServerState>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(WASI, "fd_write", |mut c: Caller<'_, ServerState>, fd: i32, iovs: i32, len: i32, written: i32| {
        wasi_call(&mut c, |w, m| w.fd_write(m, fd as u32, iovs as u32, len as u32, written as u32))
    })?;
    linker.func_wrap(WASI, "fd_close", |mut c: Caller<'_, ServerState>, fd: i32| wasi_call(&mut c, |w, _| w.fd_close(fd as u32)))?;
    linker.func_wrap(WASI, "fd_seek", |mut c: Caller<'_, ServerState>, fd: i32, _offset: i64, _whence: i32, _new: i32| {
        wasi_call(&mut c, |w, _| w.fd_seek(fd as u32))
    })?;
    linker.func_wrap(WASI, "fd_fdstat_get", |mut c: Caller<'_, ServerState>, fd: i32, stat: i32| {
        wasi_call(&mut c, |w, m| w.fd_fdstat_get(m, fd as u32, stat as u32))
    })?;
    linker.func_wrap(WASI, "args_sizes_get", |mut c: Caller<'_, ServerState>, count: i32, size: i32| {
        wasi_call(&mut c, |w, m| w.args_sizes_get(m, count as u32, size as u32))
    })?;
    linker.func_wrap(WASI, "args_get", |mut c: Caller<'_, ServerState>, argv: i32, buffer: i32| {
        wasi_call(&mut c, |w, m| w.args_get(m, argv as u32, buffer as u32))
    })?;
    linker.func_wrap(WASI, "environ_sizes_get", |mut c: Caller<'_, ServerState>, count: i32, size: i32| {
        wasi_call(&mut c, |w, m| w.environ_sizes_get(m, count as u32, size as u32))
    })?;
    linker.func_wrap(WASI, "environ_get", |mut c: Caller<'_, ServerState>, environ: i32, buffer: i32| {
        wasi_call(&mut c, |w, m| w.environ_get(m, environ as u32, buffer as u32))
    })?;
    linker.func_wrap(WASI, "clock_time_get", |mut c: Caller<'_, ServerState>, clock: i32, _precision: i64, time: i32| {
        wasi_call(&mut c, |w, m| w.clock_time_get(m, clock as u32, time as u32))
    })?;
    linker.func_wrap(WASI, "random_get", |mut c: Caller<'_, ServerState>, buffer: i32, len: i32| {
        wasi_call(&mut c, |w, m| w.random_get(m, buffer as u32, len as u32))
    })?;
    linker.func_wrap(WASI, "sched_yield", |mut c: Caller<'_, ServerState>| wasi_call(&mut c, |w, _| w.sched_yield()))?;
    linker.func_wrap(WASI, "poll_oneoff", |mut c: Caller<'_, ServerState>, input: i32, output: i32, count: i32, events: i32| {
        wasi_call(&mut c, |w, m| w.poll_oneoff(m, input as u32, output as u32, count as u32, events as u32))
    })?;
    super::abi::define(&mut linker)?;
    linker.func_wrap(WASI, "proc_exit", |mut c: Caller<'_, ServerState>, code: i32| -> wasmtime::Result<()> {
        wasi_call(&mut c, |w, _| w.proc_exit(code as u32)).map(drop)
    })?;
    // Every other WASI function the module imports answers ENOSYS.
    for import in module.imports().filter(|i| i.module() == WASI && !WASI_FUNCTIONS.contains(&i.name())) {
        let Some(ty) = import.ty().func().cloned() else { continue };
        linker.func_new(WASI, import.name(), ty, |_caller, _params, results| {
            if let Some(result) = results.first_mut() {
                *result = Val::I32(Errno::Nosys as i32);
            }
            Ok(())
        })?;
    }
    Ok(linker)
}
