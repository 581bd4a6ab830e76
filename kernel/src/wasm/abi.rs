//! The `kwast` import module: the kernel ABI of servers (servers/include/kwast.h). Every
//! function takes handles of the calling server's own process and pointers into its linear
//! memory, checked here; failures are negative `ipc::error::Error` codes, never traps.

mod records;

pub use records::INIT_GRANTS;

use super::guest::{Guest, OutOfBounds};
use super::exits::Exit;
use super::link::memory_and_state;
use super::server::ServerState;
use crate::ipc::handle::{Object, Rights};
use crate::ipc::{self, error::Error};
use alloc::string::String;
use alloc::vec::Vec;
use core::mem::size_of;
use records::{KwastLimits, KwastMessage, MAX_GRANTS};
use wasmtime::{Caller, FuncType, Linker, ValRaw, ValType};
use ValType::{I32, I64};
use zerocopy::{FromBytes, IntoBytes};

const MODULE: &str = "kwast";

impl From<OutOfBounds> for Error {
    fn from(_: OutOfBounds) -> Error {
        Error::BadAddress
    }
}

fn code(result: Result<i64, Error>) -> i64 {
    result.unwrap_or_else(|error| error as i64)
}

/// Always inlined: every kernel call passes here (the compiler outlined it when the debug
/// module grew, and wasmtime's host-call glue around it with it: signal+wait 1029 -> 1089).
#[inline(always)]
fn enter(caller: &mut Caller<'_, ServerState>) -> wasmtime::Result<()> {
    caller.data_mut().enter()
}

/// Runs `f` with the server's memory, after `enter`.
fn with_guest<R>(caller: &mut Caller<'_, ServerState>, f: impl FnOnce(&mut Guest) -> R) -> wasmtime::Result<R> {
    enter(caller)?;
    Ok(f(&mut Guest::new(memory_and_state(caller)?.0)))
}

/// A message in guest memory: TooBig before any bounds check, as the ABI orders its errors.
fn message<'g>(guest: &'g Guest, ptr: u32, len: u32) -> Result<&'g [u8], Error> {
    if len as usize > ipc::endpoint::MAX_MESSAGE {
        return Err(Error::TooBig);
    }
    Ok(guest.bytes(ptr, len)?)
}

/// Runs a blocking kernel call `f` with the server's memory (a server's linear memory never
/// moves, and only its own thread touches it), then stops the server if it failed because it
/// was killed meanwhile (a kill ends every wait with an error).
#[inline(always)]
fn blocking(caller: &mut Caller<'_, ServerState>, f: impl FnOnce(&mut Guest) -> Result<i64, Error>) -> wasmtime::Result<i64> {
    enter(caller)?;
    let (memory, state) = memory_and_state(caller)?;
    ended(state, f(&mut Guest::new(memory)))
}

/// Runs a blocking kernel call `f` that needs no memory (a wait), then stops the server if it
/// was killed meanwhile. (Checked on success too: on signal+wait's path, `ended` measured +9.)
#[inline(always)]
fn waiting(caller: &mut Caller<'_, ServerState>, f: impl FnOnce() -> Result<i64, Error>) -> wasmtime::Result<i64> {
    enter(caller)?;
    let result = f();
    caller.data().check_killed()?;
    Ok(code(result))
}

/// A blocking call's result for the server, or its stop if it failed for a kill. A call that
/// succeeded as the kill came returns: the server stops at its next kernel call, or the timer
/// stops it in wasm code, as a computing server's kill does. Checked on failure only: the
/// check on every success cost each round trip about 10 instructions.
#[inline(always)]
fn ended(state: &ServerState, result: Result<i64, Error>) -> wasmtime::Result<i64> {
    if result.is_err() {
        state.check_killed()?;
    }
    Ok(code(result))
}

/// Defines the kernel call `name`, of types `params` -> `result`, as a host function that reads
/// its arguments straight from wasmtime's array of them: `func_wrap` first loads them into a
/// tuple, which cost each of IPC's two eight-argument calls 6 instructions more (no change for
/// `signal_wait`'s four). `f` returns the result's value.
fn raw<const N: usize>(linker: &mut Linker<ServerState>, name: &str, params: [ValType; N], result: ValType,
                       f: impl Fn(&mut Caller<'_, ServerState>, [ValRaw; N]) -> wasmtime::Result<ValRaw> + Send + Sync + 'static)
                       -> wasmtime::Result<()> {
    let ty = FuncType::new(linker.engine(), params, [result]);
    // SAFETY: wasmtime passes an array as long as the type's parameters (N) and its one result,
    // each of its type; `f` may read any of them as any type (a `ValRaw` is plain bits), and it
    // makes the result's value, of the type it declares.
    unsafe {
        linker.func_new_unchecked(MODULE, name, ty, move |mut c, args| {
            let value = f(&mut c, core::array::from_fn(|i| args.get_unchecked(i).assume_init()))?;
            args.get_unchecked_mut(0).write(value);
            Ok(())
        })?;
    }
    Ok(())
}

/// A loop rather than a collect: collecting no handles cost every call about 70 instructions more.
fn handles_in(guest: &Guest, ptr: u32, count: u32) -> Result<arrayvec::ArrayVec<u32, { ipc::endpoint::MAX_TRANSFER }>, Error> {
    if count as usize > ipc::endpoint::MAX_TRANSFER {
        return Err(Error::TooBig);
    }
    let mut handles = arrayvec::ArrayVec::new();
    for i in 0..count {
        handles.push(guest.read_u32(ptr + 4 * i)?);
    }
    Ok(handles)
}

/// `kwast_receive` on the server's memory, after the call it `answered`, if any. Always
/// inlined: outlined, it cost call+reply 30 instructions and its callers more.
#[inline(always)]
fn receive(g: &mut Guest, answered: Option<ipc::Answered>, endpoint: i32, buffer: i32, capacity: i32, info: i32, timeout: i64)
           -> Result<i64, Error> {
    // Check the buffers before blocking, so a bad pointer cannot swallow a message.
    g.bytes(info as u32, size_of::<KwastMessage>() as u32)?;
    let incoming = ipc::receive_after(answered, endpoint as u32, g.bytes_mut(buffer as u32, capacity as u32)?, timeout as u64)?;
    g.write(info as u32, KwastMessage::of(&incoming).as_bytes())?;
    Ok(0)
}

pub fn define(linker: &mut Linker<ServerState>) -> wasmtime::Result<()> {
    raw(linker, "call", [I32, I32, I32, I32, I32, I32, I32, I64], I32, |c, args| {
        let [endpoint, request, request_len, reply, reply_capacity, transfer, transfer_count, _] = args.map(|a| a.get_i32());
        let timeout = args[7].get_i64();
        blocking(c, move |g| {
            let handles = handles_in(g, transfer as u32, transfer_count as u32)?;
            let request = message(g, request as u32, request_len as u32)?.as_ptr();
            let (reply, room) = g.room(reply as u32);
            // SAFETY: the server's memory stays, and only its own thread, blocked in the call,
            // would touch it (a server has one thread).
            let lent = unsafe { ipc::endpoint::Lent::new(request, request_len as usize, reply, reply_capacity as usize, room) };
            Ok(ipc::call(endpoint as u32, lent, &handles, timeout as u64)? as i64)
        }).map(|code| ValRaw::i32(code as i32))
    })?;
    linker.func_wrap(MODULE, "receive", |mut c: Caller<'_, ServerState>, endpoint: i32, buffer: i32, capacity: i32,
                                          info: i32, timeout: i64| {
        blocking(&mut c, move |g| receive(g, None, endpoint, buffer, capacity, info, timeout)).map(|code| code as i32)
    })?;
    raw(linker, "reply_receive", [I32, I32, I32, I32, I32, I32, I32, I64], I32, |c, args| {
        let [reply, data, len, endpoint, buffer, capacity, info, _] = args.map(|a| a.get_i32());
        let timeout = args[7].get_i64();
        blocking(c, move |g| {
            // Answered first: the reply may come from the buffer the receive fills.
            let answered = match reply {
                0 => None,
                _ => match ipc::answer(reply as u32, message(g, data as u32, len as u32)?) {
                    Ok(answered) => Some(answered),
                    Err(Error::PeerDied) => None,
                    Err(error) => return Err(error),
                },
            };
            receive(g, answered, endpoint, buffer, capacity, info, timeout)
        }).map(|code| ValRaw::i32(code as i32))
    })?;
    linker.func_wrap(MODULE, "reply", |mut c: Caller<'_, ServerState>, reply: i32, data: i32, len: i32| {
        with_guest(&mut c, |g| code(message(g, data as u32, len as u32).and_then(|data| ipc::reply(reply as u32, data)).map(|()| 0)) as i32)
    })?;
    linker.func_wrap(MODULE, "signal", |mut c: Caller<'_, ServerState>, notification: i32, bits: i64| {
        enter(&mut c)?;
        Ok(code(ipc::signal(notification as u32, bits as u64).map(|()| 0)) as i32)
    })?;
    linker.func_wrap(MODULE, "wait", |mut c: Caller<'_, ServerState>, notification: i32, timeout: i64| {
        waiting(&mut c, || ipc::wait(notification as u32, timeout as u64).map(|bits| bits as i64))
    })?;
    linker.func_wrap(MODULE, "signal_wait", |mut c: Caller<'_, ServerState>, notification: i32, bits: i64, wait: i32, timeout: i64| {
        waiting(&mut c, || ipc::signal_wait(notification as u32, bits as u64, wait as u32, timeout as u64).map(|bits| bits as i64))
    })?;
    linker.func_wrap(MODULE, "irq_ack", |mut c: Caller<'_, ServerState>, irq: i32| {
        enter(&mut c)?;
        Ok(code(ipc::irq_acknowledge(irq as u32).map(|()| 0)) as i32)
    })?;
    linker.func_wrap(MODULE, "port_in8", |mut c: Caller<'_, ServerState>, ports: i32, port: i32| {
        enter(&mut c)?;
        Ok(code(ipc::port_read8(ports as u32, port as u16).map(i64::from)) as i32)
    })?;
    linker.func_wrap(MODULE, "port_out8", |mut c: Caller<'_, ServerState>, ports: i32, port: i32, value: i32| {
        enter(&mut c)?;
        Ok(code(ipc::port_write8(ports as u32, port as u16, value as u8).map(|()| 0)) as i32)
    })?;
    linker.func_wrap(MODULE, "close", |mut c: Caller<'_, ServerState>, handle: i32| {
        enter(&mut c)?;
        Ok(code(ipc::close(handle as u32).map(|()| 0)) as i32)
    })?;
    linker.func_wrap(MODULE, "endpoint_create", |mut c: Caller<'_, ServerState>| {
        enter(&mut c)?;
        Ok(code(ipc::endpoint_new().map(i64::from)) as i32)
    })?;
    linker.func_wrap(MODULE, "endpoint_name", |mut c: Caller<'_, ServerState>, endpoint: i32, name: i32, name_len: i32| {
        with_guest(&mut c, |g| {
            let named = g.bytes(name as u32, name_len as u32).map_err(Error::from).and_then(|name| ipc::endpoint_name(endpoint as u32, name));
            code(named.map(|()| 0)) as i32
        })
    })?;
    linker.func_wrap(MODULE, "notification_create", |mut c: Caller<'_, ServerState>| {
        enter(&mut c)?;
        Ok(code(ipc::notification_new().map(i64::from)) as i32)
    })?;
    linker.func_wrap(MODULE, "mint", |mut c: Caller<'_, ServerState>, handle: i32, rights: i32, badge: i64| {
        enter(&mut c)?;
        Ok(code(ipc::mint(handle as u32, Rights(rights as u32), badge as u64).map(i64::from)) as i32)
    })?;
    linker.func_wrap(MODULE, "irq_bind", |mut c: Caller<'_, ServerState>, control: i32, irq: i32, notification: i32, bits: i64| {
        enter(&mut c)?;
        let irq = u8::try_from(irq).map_err(|_| Error::InvalidArgument);
        Ok(code(irq.and_then(|irq| ipc::irq_bind(control as u32, irq, notification as u32, bits as u64)).map(i64::from)) as i32)
    })?;
    linker.func_wrap(MODULE, "ports_grant", |mut c: Caller<'_, ServerState>, control: i32, base: i32, count: i32| {
        enter(&mut c)?;
        let range = u16::try_from(base).and_then(|b| Ok((b, u16::try_from(count)?))).map_err(|_| Error::InvalidArgument);
        Ok(code(range.and_then(|(base, count)| ipc::ports_grant(control as u32, base, count)).map(i64::from)) as i32)
    })?;
    linker.func_wrap(MODULE, "spawn", |mut c: Caller<'_, ServerState>, control: i32, name: i32, name_len: i32, args: i32,
                                        args_len: i32, grants: i32, grant_count: i32, exit_notification: i32, exit_bits: i64,
                                        limits: i32| {
        let request = with_guest(&mut c, |g| -> Result<_, Error> {
            let limits = match limits {
                0 => super::SpawnLimits::default(),
                at => spawn_limits(&read_limits(g, at as u32)?)?,
            };
            let name = core::str::from_utf8(g.bytes(name as u32, name_len as u32)?).map_err(|_| Error::InvalidArgument)?;
            let args = core::str::from_utf8(g.bytes(args as u32, args_len as u32)?).map_err(|_| Error::InvalidArgument)?;
            if grant_count as u32 as usize > MAX_GRANTS {
                return Err(Error::TooBig);
            }
            let handles: Vec<u32> = (0..grant_count as u32).map(|i| g.read_u32(grants as u32 + 4 * i)).collect::<Result<_, _>>()?;
            Ok((String::from(name), args.split_whitespace().map(String::from).collect::<Vec<_>>(), handles, limits))
        })?;
        let result = request.and_then(|(name, args, handles, limits)| {
            ipc::check_spawn(control as u32)?;
            let grants = ipc::grants(&handles)?;
            let on_exit = match exit_notification {
                0 => None,
                handle => Some((ipc::notification_of(handle as u32)?, ipc::signal_bits(exit_bits as u64)?)),
            };
            let child = super::spawn(&name, args, limits, grants, on_exit).ok_or(Error::InvalidArgument)?;
            let me = crate::process::current().ok_or(Error::InvalidHandle)?;
            ipc::grant(&me, Object::Process(child), Rights(0), 0)
        });
        Ok(code(result.map(i64::from)) as i32)
    })?;
    linker.func_wrap(MODULE, "process_status", |mut c: Caller<'_, ServerState>, process: i32, reason: i32, capacity: i32| {
        let exit = ipc::process_of(process as u32).and_then(|id| super::exits::exit_of(id).ok_or(Error::StillRunning));
        with_guest(&mut c, |g| {
            code(exit.and_then(|exit| match exit {
                Exit::Code(status) => Ok(status as i64),
                Exit::Killed(why) => {
                    let text = &why.as_bytes()[..why.len().min(capacity.max(1) as usize - 1)];
                    g.write(reason as u32, text)?;
                    g.write(reason as u32 + text.len() as u32, &[0])?;
                    Err(Error::Killed)
                }
            })) as i32
        })
    })?;
    linker.func_wrap(MODULE, "cycles", |_: Caller<'_, ServerState>| crate::arch::cpu::rdtsc() as i64)?;
    Ok(())
}

fn read_limits(guest: &Guest, at: u32) -> Result<KwastLimits, Error> {
    let bytes = guest.bytes(at, size_of::<KwastLimits>() as u32)?;
    KwastLimits::read_from_bytes(bytes).map_err(|_| Error::BadAddress)
}

/// 0 in a field keeps the boot module's setting. Linear memory is 32-bit: no limit above
/// 4 GiB means anything. A CPU must be online.
fn spawn_limits(limits: &KwastLimits) -> Result<super::SpawnLimits, Error> {
    let (memory, watchdog_ms, cpu) = (limits.memory_bytes, limits.watchdog_ms, limits.cpu);
    if memory > 1 << 32 || cpu > crate::arch::smp::online() as u64 {
        return Err(Error::InvalidArgument);
    }
    Ok(super::SpawnLimits {
        memory: (memory != 0).then_some(memory as usize),
        watchdog_ms: (watchdog_ms != 0).then_some(watchdog_ms),
        cpu: (cpu != 0).then(|| cpu as usize - 1),
    })
}
