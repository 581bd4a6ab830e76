//! What a server's imports are bound to: WASI preview1 (wasi.rs does the work on the server's
//! memory; here each function is wrapped) and the `kwast` ABI (abi.rs). A WASI function this
//! table does not define answers by its descriptor (`wasi::by_descriptor`) or ENOSYS. A module
//! is linked once; its next servers are instantiated from that.

use super::server::{MemoryView, ServerState};
use super::wasi::{self, Errno, Outcome, Wasi};
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use wasmtime::{Caller, InstancePre, Linker, Memory, Module, Store, Val};

const WASI: &str = "wasi_snapshot_preview1";

/// `proc_exit`, carried out of wasm as an error.
#[derive(Debug)]
pub struct ProcExit(pub u32);

impl core::fmt::Display for ProcExit {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "exit({})", self.0)
    }
}

impl core::error::Error for ProcExit {}

/// The server's linear memory (its `memory` export).
#[inline]
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

/// The server's linear memory and its state. wasmtime finding the memory (`Memory::data_mut`)
/// cost dozens of instructions a kernel call; but a linear memory never moves (engine/config:
/// `memory_may_move(false)`) and only grows through `memory.grow`, which asks the limiter
/// first. So its place and length are kept, and asked again only after the limiter saw a growth.
#[inline(always)]
pub fn memory_and_state<'a>(caller: &'a mut Caller<'_, ServerState>) -> wasmtime::Result<(&'a mut [u8], &'a mut ServerState)> {
    let MemoryView(base, length) = match caller.data().view() {
        Some(view) => view,
        None => {
            let data = memory_of(caller)?.data_mut(&mut *caller);
            let view = MemoryView(data.as_mut_ptr(), data.len());
            caller.data_mut().keep_view(view);
            view
        }
    };
    // SAFETY: the memory is there for as long as the store the caller borrows, at this place,
    // at least this long; only the server's own thread, here in a kernel call, touches it.
    let memory = unsafe { core::slice::from_raw_parts_mut(base, length) };
    Ok((memory, caller.data_mut()))
}

/// Runs a WASI call with the server's linear memory, and turns its outcome into wasm's.
#[inline]
fn wasi_call(caller: &mut Caller<'_, ServerState>, f: impl FnOnce(&mut Wasi, &mut [u8]) -> Outcome) -> wasmtime::Result<i32> {
    caller.data_mut().enter()?;
    let (data, state) = memory_and_state(caller)?;
    let outcome = f(&mut state.wasi, data);
    state.check_killed()?;
    match outcome {
        Outcome::Return(errno) => Ok(errno as i32),
        Outcome::Exit(code) => Err(wasmtime::Error::new(ProcExit(code))),
    }
}

/// Modules already linked, by artifact file name.
static LINKED: IrqMutex<BTreeMap<String, InstancePre<ServerState>>> = IrqMutex::new(BTreeMap::new());

/// `module` (the artifact `file_name`) with its imports resolved, ready to instantiate.
pub fn prepared(store: &mut Store<ServerState>, file_name: &str, module: &Module) -> wasmtime::Result<InstancePre<ServerState>> {
    if let Some(prepared) = LINKED.lock().get(file_name) {
        return Ok(prepared.clone());
    }
    let prepared = linker(store, module)?.instantiate_pre(module)?;
    LINKED.lock().insert(String::from(file_name), prepared.clone());
    Ok(prepared)
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
