//! IPC and capabilities: what a server can do, always through a handle of its own process.
//! These functions are the kernel side of the `kwast` ABI (servers/include/kwast.h); a missing,
//! stale or wrong-kind handle is an error code, never a panic.

pub mod endpoint;
pub mod error;
pub mod handle;
pub mod ioport;
pub mod irq;
pub mod notification;
pub use notification::signal_bits;
mod tests;

use crate::arch::cpu::InterruptGuard;
use crate::process::{self, Process};
use alloc::sync::Arc;
use alloc::vec::Vec;
use endpoint::{Endpoint, Received};
use error::{Error, Result};
use handle::{Capability, Handle, Object, Rights};

/// A timeout argument meaning "wait forever".
pub const FOREVER: u64 = u64::MAX;

fn deadline(timeout_ms: u64) -> Option<u64> {
    (timeout_ms != FOREVER).then(|| crate::time::ticks() + crate::time::ms_to_ticks(timeout_ms))
}

/// `f` on the caller's process, borrowed rather than counted (`process::with_current`).
fn with_me<R>(f: impl FnOnce(&Process) -> Result<R>) -> Result<R> {
    process::with_current(f).unwrap_or(Err(Error::InvalidHandle))
}

/// The capability behind `handle`, checked for kind (by `pick`) before rights. `irq` is the
/// kernel call's: IPC keeps interrupts off from its start to its end (blocks included), so
/// that its locks need not each save and restore the flags.
fn lookup<T>(irq: &InterruptGuard, handle: Handle, rights: Rights, pick: impl FnOnce(&Object) -> Option<T>) -> Result<(T, u64)> {
    with_me(|process| {
        let table = process.handles.lock_under(irq);
        let capability = table.get(handle)?;
        let object = pick(&capability.object).ok_or(Error::WrongKind)?;
        if !capability.rights.contains(rights) {
            return Err(Error::NoRights);
        }
        Ok((object, capability.badge))
    })
}

/// The endpoint behind `handle` and the handle's badge.
fn endpoint(irq: &InterruptGuard, handle: Handle, rights: Rights) -> Result<(Arc<Endpoint>, u64)> {
    lookup(irq, handle, rights, |o| match o {
        Object::Endpoint(e) => Some(e.clone()),
        _ => None,
    })
}

/// The notification behind `handle`.
fn notification(irq: &InterruptGuard, handle: Handle, rights: Rights) -> Result<Arc<notification::Notification>> {
    Ok(lookup(irq, handle, rights, |o| match o {
        Object::Notification(n) => Some(n.clone()),
        _ => None,
    })?.0)
}

/// Sends the request `lent` holds with copies of the handles `transfer` and waits for the
/// answer, which goes where `lent` says: its length.
pub fn call(handle: Handle, lent: endpoint::Lent, transfer: &[Handle], timeout_ms: u64) -> Result<usize> {
    let irq = InterruptGuard::new();
    let (endpoint, badge) = endpoint(&irq, handle, Rights::CALL)?;
    let mut transfers = endpoint::Transfers::new();
    if !transfer.is_empty() {
        with_me(|process| {
            let table = process.handles.lock_under(&irq);
            for &handle in transfer {
                transfers.push(table.get_with(handle, Rights::GRANT)?.clone());
            }
            Ok(())
        })?;
    }
    endpoint.call(&irq, badge, lent, &mut transfers, deadline(timeout_ms))
}

pub struct Message {
    pub badge: u64,
    /// Bytes of the request, at the start of the receive buffer.
    pub length: usize,
    /// Answer with `reply(reply_handle, ...)`, once.
    pub reply_handle: Handle,
    transferred: [Handle; endpoint::MAX_TRANSFER],
    transferred_count: usize,
}

impl Message {
    /// The handles that came with the request, now in the receiver's table.
    pub fn transferred(&self) -> &[Handle] {
        &self.transferred[..self.transferred_count]
    }
}

pub enum Incoming {
    Message(Message),
    Signals(u64),
}

/// Waits for a call, its request copied into `buffer`, or for signals. A call that cannot be
/// delivered whole fails its caller: one too big for `buffer` with TooBig, and the receiver
/// waits on, so no client can make a server's receive fail; one whose handles do not fit the
/// receiver's table with NoSpace, which the receiver gets too (its table is full).
pub fn receive(handle: Handle, buffer: &mut [u8], timeout_ms: u64) -> Result<Incoming> {
    receive_after(None, handle, buffer, timeout_ms)
}

/// A call answered (`answer`) whose caller has not run yet: it runs when the answering thread
/// next blocks, at once (`receive_after`), or is woken when this is dropped.
pub type Answered = crate::sched::HandOff;

/// `receive`, by a server that has just `answered` a call (a server's loop): that caller runs
/// as soon as the server waits, not after a wake, a queue and a pick.
pub fn receive_after(answered: Option<Answered>, handle: Handle, buffer: &mut [u8], timeout_ms: u64) -> Result<Incoming> {
    let irq = InterruptGuard::new();
    let (endpoint, _) = endpoint(&irq, handle, Rights::RECEIVE)?;
    let mut transfers = endpoint::Transfers::new();
    let (call, length, badge) = match endpoint.receive(&irq, buffer, &mut transfers, deadline(timeout_ms), answered)? {
        Received::Signals(bits) => return Ok(Incoming::Signals(bits)),
        Received::Call(call, length, badge) => (call, length, badge),
    };
    let inserted = with_me(|process| insert_all(&mut process.handles.lock_under(&irq), &call, &mut transfers));
    match inserted {
        Ok((handles, count)) => Ok(Incoming::Message(Message {
            badge,
            length,
            reply_handle: handles[0],
            transferred: handles[1..].try_into().expect("MAX_TRANSFER handles"),
            transferred_count: count - 1,
        })),
        Err(error) => {
            let _ = call.fail(error);
            Err(error)
        }
    }
}

/// The reply capability for `call` and the handles that came with it, into `table`: all or
/// nothing. Their handles, the reply's first, and how many.
fn insert_all(table: &mut handle::HandleTable, call: &Arc<endpoint::Call>, transfers: &mut endpoint::Transfers)
              -> Result<([Handle; 1 + endpoint::MAX_TRANSFER], usize)> {
    let mut handles = [0; 1 + endpoint::MAX_TRANSFER];
    handles[0] = table.insert(Capability { object: Object::Reply(call.clone()), rights: Rights(0), badge: 0 })?;
    let mut inserted = 1;
    // Drained only when there are any: a call with none spares the iterator.
    if !transfers.is_empty() {
        for capability in transfers.drain(..) {
            match table.insert(capability) {
                Ok(handle) => {
                    handles[inserted] = handle;
                    inserted += 1;
                }
                Err(error) => {
                    // Take back what went in.
                    for &handle in &handles[..inserted] {
                        let _ = table.remove(handle);
                    }
                    return Err(error);
                }
            }
        }
    }
    Ok((handles, inserted))
}

/// Takes the one-shot reply capability `reply_handle` out of the caller's table.
fn take_reply(irq: &InterruptGuard, reply_handle: Handle) -> Result<Arc<endpoint::Call>> {
    with_me(|process| {
        let taken = process.handles.lock_under(irq).take_if(reply_handle, |c| matches!(c.object, Object::Reply(_)))?;
        match taken.object {
            Object::Reply(call) => Ok(call),
            _ => unreachable!("taken only if a reply"),
        }
    })
}

/// Answers the call behind `reply_handle`; its caller runs when this thread next blocks.
pub fn reply(reply_handle: Handle, data: &[u8]) -> Result<()> {
    answer(reply_handle, data).map(drop)
}

/// `reply`, keeping the caller for the answering thread's next receive (`receive_after`).
/// Always inlined: outlined, its result went through memory (call+reply +5).
#[inline(always)]
pub fn answer(reply_handle: Handle, data: &[u8]) -> Result<Answered> {
    if data.len() > endpoint::MAX_MESSAGE {
        return Err(Error::TooBig);
    }
    let irq = InterruptGuard::new();
    take_reply(&irq, reply_handle)?.answer(&irq, data)
}

pub fn signal(handle: Handle, bits: u64) -> Result<()> {
    let bits = notification::signal_bits(bits)?;
    let irq = InterruptGuard::new();
    drop(notification(&irq, handle, Rights::SIGNAL)?.signal_handing_off(&irq, bits));
    Ok(())
}

pub fn wait(handle: Handle, timeout_ms: u64) -> Result<u64> {
    let irq = InterruptGuard::new();
    notification(&irq, handle, Rights::WAIT)?.wait(&irq, deadline(timeout_ms), None)
}

/// `signal`, then `wait` on `wait_handle` in the same kernel call: the waiter the signal gave
/// its bits runs as soon as the caller waits. An error of the signal is returned, and nothing
/// is waited for. Always inlined into its kernel call: outlined, signal+wait +17.
#[inline(always)]
pub fn signal_wait(signal_handle: Handle, bits: u64, wait_handle: Handle, timeout_ms: u64) -> Result<u64> {
    let bits = notification::signal_bits(bits)?;
    let irq = InterruptGuard::new();
    let handed = notification(&irq, signal_handle, Rights::SIGNAL)?.signal_handing_off(&irq, bits);
    notification(&irq, wait_handle, Rights::WAIT)?.wait(&irq, deadline(timeout_ms), handed)
}

pub fn irq_acknowledge(handle: Handle) -> Result<()> {
    let (line, _) = lookup(&InterruptGuard::new(), handle, Rights::ACK, |o| match o {
        Object::Irq(l) => Some(l.clone()),
        _ => None,
    })?;
    line.acknowledge();
    Ok(())
}

pub fn port_read8(handle: Handle, port: u16) -> Result<u8> {
    let (ports, _) = lookup(&InterruptGuard::new(), handle, Rights::IO, |o| match o {
        Object::IoPorts(p) => Some(*p),
        _ => None,
    })?;
    ports.read8(port)
}

pub fn port_write8(handle: Handle, port: u16, value: u8) -> Result<()> {
    let (ports, _) = lookup(&InterruptGuard::new(), handle, Rights::IO, |o| match o {
        Object::IoPorts(p) => Some(*p),
        _ => None,
    })?;
    ports.write8(port, value)
}

pub fn close(handle: Handle) -> Result<()> {
    with_me(|process| process.handles.lock().remove(handle).map(drop))
}

/// A new endpoint owned by the caller (it closes when the caller dies), with full rights.
pub fn endpoint_new() -> Result<Handle> {
    with_me(|process| {
        let endpoint = Endpoint::new(process.id);
        grant(process, Object::Endpoint(endpoint), Rights::CALL.union(Rights::RECEIVE).union(Rights::GRANT), 0)
    })
}

/// Names the endpoint behind `handle` (any rights) for the debug view.
pub fn endpoint_name(handle: Handle, name: &[u8]) -> Result<()> {
    let (endpoint, _) = endpoint(&InterruptGuard::new(), handle, Rights(0))?;
    endpoint.set_name(core::str::from_utf8(name).map_err(|_| Error::InvalidArgument)?);
    Ok(())
}

pub fn notification_new() -> Result<Handle> {
    with_me(|process| {
        let notification = notification::Notification::new();
        grant(process, Object::Notification(notification), Rights::SIGNAL.union(Rights::WAIT).union(Rights::GRANT), 0)
    })
}

/// A copy of `handle` with fewer rights and, if it had none, a badge: what init hands a client.
pub fn mint(handle: Handle, rights: Rights, badge: u64) -> Result<Handle> {
    with_me(|process| {
        let mut table = process.handles.lock();
        let original = table.get(handle)?.clone();
        if !original.rights.contains(rights) {
            return Err(Error::NoRights);
        }
        // A badge, once set, stays: a copy keeps it (asked for with 0 or the same badge).
        let badge = match (original.badge, badge) {
            (0, new) => new,
            (kept, 0) => kept,
            (kept, new) if kept == new => kept,
            _ => return Err(Error::InvalidArgument),
        };
        table.insert(Capability { object: original.object, rights, badge })
    })
}

/// Binds ISA IRQ `irq` to signal `bits` on `notification`; needs the IRQ-control capability.
pub fn irq_bind(control: Handle, irq: u8, notification: Handle, bits: u64) -> Result<Handle> {
    let guard = InterruptGuard::new();
    lookup(&guard, control, Rights(0), |o| matches!(o, Object::IrqControl).then_some(()))?;
    let notification = self::notification(&guard, notification, Rights::SIGNAL)?;
    drop(guard);
    with_me(|process| {
        let line = irq::IrqLine::bind(irq, notification, notification::signal_bits(bits)?, process.id)?;
        grant(process, Object::Irq(line), Rights::ACK.union(Rights::GRANT), 0)
    })
}

/// A capability for ports `base..base + count`; needs the port-control capability.
pub fn ports_grant(control: Handle, base: u16, count: u16) -> Result<Handle> {
    lookup(&InterruptGuard::new(), control, Rights(0), |o| matches!(o, Object::PortControl).then_some(()))?;
    if count == 0 || base.checked_add(count - 1).is_none() {
        return Err(Error::InvalidArgument);
    }
    with_me(|process| grant(process, Object::IoPorts(ioport::IoPorts { base, count }), Rights::IO.union(Rights::GRANT), 0))
}

/// Copies of the caller's `handles` (each needs GRANT), to give a new process.
pub fn grants(handles: &[Handle]) -> Result<Vec<Capability>> {
    with_me(|process| {
        let table = process.handles.lock();
        handles.iter().map(|&h| table.get_with(h, Rights::GRANT).cloned()).collect()
    })
}

/// The process behind a process handle.
pub fn process_of(handle: Handle) -> Result<crate::process::ProcessId> {
    Ok(lookup(&InterruptGuard::new(), handle, Rights(0), |o| match o {
        Object::Process(id) => Some(*id),
        _ => None,
    })?.0)
}

/// Checks the caller holds the spawn capability `handle`.
pub fn check_spawn(handle: Handle) -> Result<()> {
    lookup(&InterruptGuard::new(), handle, Rights(0), |o| matches!(o, Object::SpawnControl).then_some(())).map(drop)
}

/// The notification behind `handle`, for the kernel to signal later (needs SIGNAL).
pub fn notification_of(handle: Handle) -> Result<Arc<notification::Notification>> {
    notification(&InterruptGuard::new(), handle, Rights::SIGNAL)
}

/// A new endpoint served by `owner`, with a receive handle in its table.
pub fn create_endpoint(owner: &Process) -> Result<(Arc<Endpoint>, Handle)> {
    let endpoint = Endpoint::new(owner.id);
    let capability = Capability { object: Object::Endpoint(endpoint.clone()), rights: Rights::RECEIVE.union(Rights::GRANT), badge: 0 };
    let handle = owner.handles.lock().insert(capability)?;
    Ok((endpoint, handle))
}

/// Gives `process` a capability (a boot grant from the manifest, or a test's set-up).
pub fn grant(process: &Process, object: Object, rights: Rights, badge: u64) -> Result<Handle> {
    process.handles.lock().insert(Capability { object, rights, badge })
}
