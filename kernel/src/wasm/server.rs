//! A server: one boot module become a process with its own wasmtime instance, linear memory
//! and thread. Whatever the server does (trap, run away, exit), it ends alone: its thread
//! reports why, its process is destroyed, and the kernel and other servers go on.

use super::{artifact, BootModule};
use super::engine::engine;
use super::stop::{self, Stop};
use super::wasi::{self, Errno, Outcome, Wasi};
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
use wasmtime::{Caller, Linker, Memory, Module, Store, StoreLimits, StoreLimitsBuilder, Trap, Val, WasmBacktrace};

/// Stack of a server's thread: the wasm stack limit plus room for the kernel and wasmtime.
const SERVER_STACK: u64 = kwast_engine_config::MAX_WASM_STACK as u64 + (512 << 10);
const WASI: &str = "wasi_snapshot_preview1";

/// What a server may use. Set per server in the config and in init's manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory it may grow to; past it `memory.grow` returns -1 (`malloc` gives NULL).
    pub memory: usize,
    /// Stop it after this much CPU time (ms) without a kernel call; None: computing is no fault.
    pub watchdog_ms: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory: 16 << 20, watchdog_ms: None }
    }
}

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
    /// What the timer interrupt stops it by, while it runs wasm (wasm/stop.rs).
    stop: stop::Registered,
    /// The instance's exported memory, found once: looking an export up by name on every
    /// kernel call cost hundreds of instructions per IPC.
    memory: Option<Memory>,
}

impl ServerState {
    /// Every kernel call starts here: it resets the watchdog, and a server that is to die stops.
    pub fn enter(&mut self) -> wasmtime::Result<()> {
        self.stop.touch();
        self.check_killed()
    }

    /// Stops the server if it is to die: checked on every kernel call (in wasm code, the timer
    /// interrupt stops it).
    pub fn check_killed(&self) -> wasmtime::Result<()> {
        if self.process.kill_requested.load(core::sync::atomic::Ordering::Acquire) {
            return Err(wasmtime::Error::new(Stopped(stop::Reason::Killed)));
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

/// A stop (a kill on request, the watchdog), carried out of a kernel call as an error, and
/// what a stop in wasm code is said to be.
#[derive(Debug)]
struct Stopped(stop::Reason);

impl core::fmt::Display for Stopped {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self.0 {
            stop::Reason::Killed => write!(f, "killed on request"),
            stop::Reason::Watchdog(ms) if ms % 1000 == 0 => write!(f, "watchdog: {} s of CPU without a kernel call", ms / 1000),
            stop::Reason::Watchdog(ms) => write!(f, "watchdog: {} ms of CPU without a kernel call", ms),
        }
    }
}

impl core::error::Error for Stopped {}

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
    *RUNNING.lock() += 1;
    let spawned = sched::spawn_in(Some(id), name.as_str(), Priority::NORMAL, SERVER_STACK, move || {
        let exit = run(&process, &module);
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
        crate::debug::record(EventKind::Trap, sched::current_id(), process.id as u64, 0);
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

fn run(process: &Arc<Process>, module: &BootModule) -> Exit {
    let (name, file_name, limits, bytes) = (process.name.as_str(), module.file_name.as_str(), module.limits, module.bytes);
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
        limits: StoreLimitsBuilder::new().memory_size(limits.memory).build(),
        stop: Stop::register(&module, process.clone(), limits.watchdog_ms),
        memory: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits);
    let linker = match linker(&mut store, &module) {
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
    let mut reason = match error.downcast_ref::<Trap>() {
        _ if stopped.is_some() => alloc::format!("{}", Stopped(stopped.unwrap())),
        // wasmtime says "wasm trap: <what>"; every kill reason is one, so only <what> is kept.
        Some(trap) => {
            let text = alloc::format!("{}", trap);
            String::from(text.strip_prefix("wasm trap: ").unwrap_or(&text))
        }
        // The root cause names what happened; the outer layers only add the backtrace.
        None => alloc::format!("{}", error.root_cause()),
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

fn linker(store: &mut Store<ServerState>, module: &Module) -> wasmtime::Result<Linker<ServerState>> {
    let mut linker = Linker::new(store.engine());
    linker.func_wrap(WASI, "fd_write", |mut c: Caller<'_, ServerState>, fd: i32, iovs: i32, len: i32, written: i32| {
        wasi_call(&mut c, |w, m| w.fd_write(m, fd as u32, iovs as u32, len as u32, written as u32))
    })?;
    linker.func_wrap(WASI, "fd_read", |mut c: Caller<'_, ServerState>, fd: i32, iovs: i32, len: i32, read: i32| {
        wasi_call(&mut c, |w, m| w.fd_read(m, fd as u32, iovs as u32, len as u32, read as u32))
    })?;
    linker.func_wrap(WASI, "fd_close", |mut c: Caller<'_, ServerState>, fd: i32| wasi_call(&mut c, |w, _| w.fd_close(fd as u32)))?;
    linker.func_wrap(WASI, "fd_renumber", |mut c: Caller<'_, ServerState>, from: i32, to: i32| {
        wasi_call(&mut c, |w, _| w.fd_renumber(from as u32, to as u32))
    })?;
    linker.func_wrap(WASI, "fd_fdstat_get", |mut c: Caller<'_, ServerState>, fd: i32, stat: i32| {
        wasi_call(&mut c, |w, m| w.fd_fdstat_get(m, fd as u32, stat as u32))
    })?;
    linker.func_wrap(WASI, "fd_filestat_get", |mut c: Caller<'_, ServerState>, fd: i32, stat: i32| {
        wasi_call(&mut c, |w, m| w.fd_filestat_get(m, fd as u32, stat as u32))
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
    linker.func_wrap(WASI, "clock_res_get", |mut c: Caller<'_, ServerState>, clock: i32, resolution: i32| {
        wasi_call(&mut c, |w, m| w.clock_res_get(m, clock as u32, resolution as u32))
    })?;
    linker.func_wrap(WASI, "random_get", |mut c: Caller<'_, ServerState>, buffer: i32, len: i32| {
        wasi_call(&mut c, |w, m| w.random_get(m, buffer as u32, len as u32))
    })?;
    linker.func_wrap(WASI, "sched_yield", |mut c: Caller<'_, ServerState>| wasi_call(&mut c, |w, _| w.sched_yield()))?;
    linker.func_wrap(WASI, "poll_oneoff", |mut c: Caller<'_, ServerState>, input: i32, output: i32, count: i32, events: i32| {
        wasi_call(&mut c, |w, m| w.poll_oneoff(m, input as u32, output as u32, count as u32, events as u32))
    })?;
    linker.func_wrap(WASI, "proc_exit", |mut c: Caller<'_, ServerState>, code: i32| -> wasmtime::Result<()> {
        wasi_call(&mut c, |w, _| w.proc_exit(code as u32)).map(drop)
    })?;
    super::abi::define(&mut linker)?;
    // The other WASI functions the module imports: those that only look at their descriptor
    // answer by it (wasi::by_descriptor), the rest (none that wasi-libc reaches) ENOSYS.
    let imports: Vec<_> = module.imports().filter(|i| i.module() == WASI).collect();
    for import in imports {
        let Some(ty) = import.ty().func().cloned() else { continue };
        if linker.get(&mut *store, WASI, import.name()).is_ok() {
            continue;
        }
        let rule = wasi::by_descriptor(import.name());
        linker.func_new(WASI, import.name(), ty, move |mut caller, params, results| {
            caller.data_mut().enter()?;
            let errno = match (&rule, params.get(rule.as_ref().map_or(0, |r| r.argument))) {
                (Some(rule), Some(Val::I32(fd))) => caller.data().wasi.answer(rule, *fd as u32),
                _ => Errno::Nosys,
            };
            if let Some(result) = results.first_mut() {
                *result = Val::I32(errno as i32);
            }
            Ok(())
        })?;
    }
    Ok(linker)
}
