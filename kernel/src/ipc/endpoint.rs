//! Endpoints: synchronous call / receive / reply. A call lends the receiver the caller's
//! request and reply buffers, and the caller sleeps until that receiver replies: the request is
//! copied once, into the receiver's buffer, and the reply once, into the caller's. A call to a
//! receiver already waiting hands the CPU straight to it (the fast path) instead of queueing it
//! behind other ready threads.
//!
//! Calls are pooled: once the pool has what the system uses, a round trip allocates nothing. A
//! call goes back to the pool only when its caller holds the last reference, so a reply
//! capability never names a call that was reused. Each CPU keeps one spare call beside the
//! pool, taken and given back with one atomic instruction instead of the pool's lock: a
//! caller usually finds there the call its last call left.

use super::error::{Error, Result};
use super::handle::Capability;
use super::notification::Notification;
use crate::debug::state::{copy_name, EndpointRow, EventKind, MAX_CPUS, NAME_LEN};
use crate::debug::{self, Slot};
use crate::arch::cpu::InterruptGuard;
use crate::sched::{self, ThreadId, Wait, WaitKind};
use crate::sync::IrqMutex;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// The largest message or reply, in bytes (ABI: KWAST_MAX_MESSAGE).
pub const MAX_MESSAGE: usize = 4096;
/// Handles passed with one message, at most (ABI: KWAST_MAX_TRANSFER).
pub const MAX_TRANSFER: usize = 4;
/// The capabilities one message carries, inline.
pub type Transfers = arrayvec::ArrayVec<Capability, MAX_TRANSFER>;
/// Idle calls kept for reuse.
const POOL_SIZE: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq)]
enum CallState {
    Queued,
    Received,
    Replied,
    /// The caller left (answered, gave up, or died): a reply has no one to go to.
    Abandoned,
}

/// The caller's memory a call reads its request from and writes the reply into: one copy each
/// way, from server to server. Raw, because other threads use it while the caller is blocked
/// in the call, and valid until the caller leaves it, which it marks (Abandoned) under the
/// call's lock: whoever copies holds that lock and checks the state first.
#[derive(Clone, Copy)]
pub struct Lent {
    request: *const u8,
    request_length: usize,
    reply: *mut u8,
    /// What the caller said its reply buffer holds: a longer reply is TooBig.
    reply_capacity: usize,
    /// What of it lies in memory the caller may lend: a reply longer than this is BadAddress.
    reply_room: usize,
}

impl Lent {
    /// # Safety
    /// `request` and `reply_room` bytes at `reply` stay valid, and untouched by anyone else,
    /// until the call that borrows them returns. They may overlap: they are never used at once.
    pub unsafe fn new(request: *const u8, request_length: usize, reply: *mut u8, reply_capacity: usize, reply_room: usize) -> Lent {
        Lent { request, request_length, reply, reply_capacity, reply_room }
    }

    /// A kernel caller's own buffers.
    pub fn buffers(request: &[u8], reply: &mut [u8]) -> Lent {
        Lent { request: request.as_ptr(), request_length: request.len(), reply: reply.as_mut_ptr(), reply_capacity: reply.len(), reply_room: reply.len() }
    }

    const NONE: Lent = Lent { request: core::ptr::null(), request_length: 0, reply: core::ptr::null_mut(), reply_capacity: 0, reply_room: 0 };
}

struct CallInner {
    state: CallState,
    endpoint: u32,
    caller: ThreadId,
    /// The caller's and the endpoint's rows in the debug-state block (`debug::NO_ROW`: none).
    caller_row: u32,
    endpoint_row: u32,
    badge: u64,
    lent: Lent,
    transfers: Transfers,
    /// Once Replied: the reply's length, or the error.
    result: Result<usize>,
}

/// One call in flight.
pub struct Call {
    inner: IrqMutex<CallInner>,
}

// SAFETY: the raw pointers in `Lent` are used only under the call's lock, while the caller,
// blocked in the call, keeps them valid (see `Lent`).
unsafe impl Send for Call {}
unsafe impl Sync for Call {}

static POOL: IrqMutex<Vec<Arc<Call>>> = IrqMutex::new(Vec::new());
/// Each CPU's spare call (null: none), an `Arc` turned into a raw pointer. Swapped atomically,
/// so a thread moved to another CPU between finding the slot and using it still uses it whole.
static SPARE: [AtomicPtr<Call>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];

fn spare() -> &'static AtomicPtr<Call> {
    &SPARE[crate::arch::percpu::index() as usize]
}

impl Call {
    fn take() -> Arc<Call> {
        let spare = spare().swap(core::ptr::null_mut(), Ordering::Acquire);
        if !spare.is_null() {
            // SAFETY: `recycle` put an Arc there with `into_raw`, and the swap made it ours.
            return unsafe { Arc::from_raw(spare) };
        }
        POOL.lock().pop().unwrap_or_else(|| Arc::new(Call {
            inner: IrqMutex::new(CallInner {
                state: CallState::Abandoned, endpoint: 0, caller: 0, caller_row: debug::NO_ROW, endpoint_row: debug::NO_ROW, badge: 0, lent: Lent::NONE,
                transfers: Transfers::new(), result: Ok(0),
            }),
        }))
    }

    /// Back to the pool if no one else holds it (a receiver that never replied still may).
    /// Its lent buffers stay behind, unused: it is Abandoned until the next call sets them.
    fn recycle(mut call: Arc<Call>) {
        if let Some(only) = Arc::get_mut(&mut call) {
            let inner = only.inner.get_mut();
            if !inner.transfers.is_empty() {
                inner.transfers.clear(); // a call abandoned before delivery
            }
            let raw = Arc::into_raw(call).cast_mut();
            if spare().compare_exchange(core::ptr::null_mut(), raw, Ordering::Release, Ordering::Relaxed).is_ok() {
                return;
            }
            // SAFETY: not stored: still ours, from `into_raw` just above.
            let call = unsafe { Arc::from_raw(raw) };
            let mut pool = POOL.lock();
            if pool.len() < POOL_SIZE {
                pool.push(call);
            }
        }
    }

    /// The receiver's answer, copied straight into the caller's reply buffer (a reply too long
    /// for it is the caller's error, not the receiver's). `PeerDied` if the caller is no longer
    /// waiting.
    pub fn answer(&self, irq: &InterruptGuard, data: &[u8]) -> Result<()> {
        if data.len() > MAX_MESSAGE {
            return Err(Error::TooBig);
        }
        let (endpoint, row) = self.finish(irq, true, |lent| {
            if data.len() > lent.reply_capacity {
                return Err(Error::TooBig);
            }
            if data.len() > lent.reply_room {
                return Err(Error::BadAddress);
            }
            // SAFETY: the caller is still in the call (`finish` checked, under the lock).
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), lent.reply, data.len()) };
            Ok(data.len())
        })?;
        debug::ipc(irq, EventKind::IpcReply, sched::current_id(), endpoint, row, data.len());
        Ok(())
    }

    /// Ends the call with `error`. `PeerDied` if the caller is no longer waiting.
    pub fn fail(&self, error: Error) -> Result<()> {
        self.finish(&InterruptGuard::new(), false, |_| Err(error)).map(drop)
    }

    /// Ends the call with what `answer` makes of the caller's buffers, and wakes the caller;
    /// with `hand_off`, it runs next when this thread blocks again (a server's next receive).
    /// Returns the endpoint's id and debug row.
    fn finish(&self, irq: &InterruptGuard, hand_off: bool, answer: impl FnOnce(&Lent) -> Result<usize>) -> Result<(u32, u32)> {
        let (caller, endpoint) = {
            let mut inner = self.inner.lock_under(irq);
            match inner.state {
                CallState::Received | CallState::Queued => {}
                CallState::Abandoned => return Err(Error::PeerDied),
                CallState::Replied => return Err(Error::InvalidArgument),
            }
            inner.result = answer(&inner.lent);
            inner.state = CallState::Replied;
            (inner.caller, (inner.endpoint, inner.endpoint_row))
        };
        if hand_off {
            sched::wake_and_hand_off(irq, caller);
        } else {
            sched::wake(caller);
        }
        Ok(endpoint)
    }

    /// Takes the request for a receiver: copied from the caller's memory into `buffer`, which
    /// must hold it (TooBig), from a caller still waiting (PeerDied); the handles that came
    /// with it go to `transfers`. Returns its length and the badge.
    pub fn deliver(&self, irq: &InterruptGuard, buffer: &mut [u8], transfers: &mut Transfers) -> Result<(usize, u64)> {
        let mut inner = self.inner.lock_under(irq);
        if inner.state != CallState::Received {
            return Err(Error::PeerDied);
        }
        let length = inner.lent.request_length;
        let target = buffer.get_mut(..length).ok_or(Error::TooBig)?;
        // SAFETY: the caller is still in the call (checked above, under the lock).
        unsafe { core::ptr::copy_nonoverlapping(inner.lent.request, target.as_mut_ptr(), length) };
        if crate::debug::control::corrupt_if_requested(target) {
            crate::kprintln!("endpoint {}: a message corrupted on request", inner.endpoint);
        }
        // Moved only when there are any: the inline array is large for a call that has none.
        if !inner.transfers.is_empty() {
            transfers.extend(inner.transfers.drain(..));
        }
        Ok((length, inner.badge))
    }
}

/// A call taken from the pool, going back when dropped.
struct Pooled(Option<Arc<Call>>);

impl Pooled {
    fn call(&self) -> &Arc<Call> {
        self.0.as_ref().expect("taken only on drop")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            Call::recycle(call);
        }
    }
}

struct Inner {
    queue: VecDeque<Arc<Call>>,
    /// Threads blocked in `receive`, longest first. Under the queue's lock, not a wait queue of
    /// their own: a call queues itself and takes its receiver in one lock, a receiver finds the
    /// queue empty and waits in one.
    receivers: VecDeque<ThreadId>,
    closed: bool,
    /// Its signals are received here too; under the queue's lock, as receive checks both.
    notification: Option<Arc<Notification>>,
}

pub struct Endpoint {
    pub id: u32,
    pub owner: u32,
    inner: IrqMutex<Inner>,
    debug_row: Option<Slot<EndpointRow>>,
    /// `debug_row`'s index, for calls to account on (`debug::ipc`).
    row: u32,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// What a receiver gets: a call, or the bits of its bound notification.
pub enum Received {
    Call(Arc<Call>),
    Signals(u64),
}

impl Endpoint {
    pub fn new(owner: u32) -> Arc<Endpoint> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let debug_row = Slot::claim(EndpointRow {
            id, owner, name: [0; NAME_LEN], calls: 0, replies: 0, bytes: 0, errors: 0, peer_died: 0,
        });
        let row = debug_row.as_ref().map_or(debug::NO_ROW, Slot::index);
        Arc::new(Endpoint {
            id, owner, row,
            inner: IrqMutex::new(Inner { queue: VecDeque::new(), receivers: VecDeque::new(), closed: false, notification: None }),
            debug_row,
        })
    }

    /// Lets `receive` also return this notification's signals.
    pub fn bind_notification(self: &Arc<Endpoint>, notification: Arc<Notification>) {
        notification.bind(self);
        self.inner.lock().notification = Some(notification);
    }

    /// Its bound notification was signalled: every receiver looks again.
    pub(super) fn wake_receivers(&self, irq: &InterruptGuard, signal: u64) {
        let mut inner = self.inner.lock_under(irq);
        while let Some(receiver) = inner.receivers.pop_front() {
            sched::wake_under(irq, receiver, signal);
        }
    }

    /// Names it in the debug-state block (what init's manifest calls it).
    pub fn set_name(&self, name: &str) {
        if let Some(row) = &self.debug_row {
            let name = copy_name(name);
            row.update(|e| e.name = name);
        }
    }

    /// Sends the request `lent` holds, with the capabilities taken from `transfers`, and waits until tick `deadline` for
    /// the reply, which goes where `lent` says; returns its length. A failed call counts as
    /// an error on the endpoint (and as a PeerDied, if it is one).
    pub fn call(&self, irq: &InterruptGuard, badge: u64, lent: Lent, transfers: &mut Transfers, deadline: Option<u64>) -> Result<usize> {
        let result = self.send(irq, badge, lent, transfers, deadline);
        if let (Err(error), Some(row)) = (result, &self.debug_row) {
            row.update(|e| {
                e.errors += 1;
                e.peer_died += (error == Error::PeerDied) as u64;
            });
        }
        result
    }

    fn send(&self, irq: &InterruptGuard, badge: u64, lent: Lent, transfers: &mut Transfers, deadline: Option<u64>) -> Result<usize> {
        if lent.request_length > MAX_MESSAGE || transfers.len() > MAX_TRANSFER {
            return Err(Error::TooBig);
        }
        let pooled = Pooled(Some(Call::take()));
        let call = pooled.call();
        {
            let mut inner = call.inner.lock_under(irq);
            inner.state = CallState::Queued;
            inner.endpoint = self.id;
            inner.caller = sched::current_id();
            inner.caller_row = sched::current_row();
            inner.endpoint_row = self.row;
            inner.badge = badge;
            inner.lent = lent;
            if !transfers.is_empty() {
                inner.transfers.extend(transfers.drain(..));
            }
        }
        {
            // Queued, and its receiver (if one waits) woken, in one section with interrupts
            // off: the receiver cannot time out between being taken off the list and woken.
            let mut inner = self.inner.lock_under(irq);
            if inner.closed {
                call.inner.lock_under(irq).state = CallState::Abandoned;
                return Err(Error::PeerDied);
            }
            inner.queue.push_back(call.clone());
            debug::ipc_holding(&inner, EventKind::IpcCall, sched::current_id(), self.id, self.row, lent.request_length);
            if let Some(receiver) = inner.receivers.pop_front() {
                sched::wake_and_hand_off(irq, receiver);
            }
        }
        // Leaving the call, under its lock: from then on no one touches the lent memory.
        let leave = |inner: &mut CallInner, replied: bool| {
            inner.state = CallState::Abandoned;
            if replied { inner.result } else { Err(Error::TimedOut) }
        };
        let replied = sched::wait_for(irq, || {
            let mut inner = call.inner.lock_under(irq);
            (inner.state == CallState::Replied).then(|| leave(&mut inner, true))
        }, deadline, Wait::on(WaitKind::Call, self.id, badge));
        let result = replied.unwrap_or_else(|| {
            leave(&mut call.inner.lock_under(irq), false)
        });
        if replied.is_none() {
            self.inner.lock_under(irq).queue.retain(|c| !Arc::ptr_eq(c, call));
        }
        result
    }

    /// Waits for a call (or a signal on the bound notification) until tick `deadline`.
    /// Interrupts off (`irq`) from the look at the queue to the block: on this CPU no caller
    /// comes between; one on another CPU finds this thread on the list (and a wake that comes
    /// before the block makes the block return at once).
    pub fn receive(&self, irq: &InterruptGuard, deadline: Option<u64>) -> Result<Received> {
        let me = sched::current_id();
        loop {
            {
                let mut inner = self.inner.lock_under(irq);
                if let Some(taken) = Self::take(irq, &mut inner, me) {
                    drop(inner);
                    return Self::taken(irq, taken);
                }
                // A thread whose process is being killed does not wait any more.
                if crate::process::current_killed() {
                    return Err(Error::TimedOut);
                }
                inner.receivers.push_back(me);
            }
            if !sched::block_current(Wait::on(WaitKind::Receive, self.id, 0), deadline) {
                // The deadline, which no caller took this thread off the list for: a last look.
                let taken = Self::take(irq, &mut self.inner.lock_under(irq), me);
                return taken.map_or(Err(Error::TimedOut), |taken| Self::taken(irq, taken));
            }
        }
    }

    /// What a receiver finds under the lock: PeerDied if the endpoint closed, a call (now
    /// Received, with its caller's debug row and id), or the bound notification's signals.
    /// `me` leaves the list of receivers first, if a wake that was not a caller's (a kill, a
    /// signal) left it there.
    fn take(irq: &InterruptGuard, inner: &mut Inner, me: ThreadId) -> Option<Result<(Received, Option<(u32, ThreadId)>)>> {
        if !inner.receivers.is_empty() {
            inner.receivers.retain(|&t| t != me);
        }
        if inner.closed {
            return Some(Err(Error::PeerDied));
        }
        if let Some(call) = inner.queue.pop_front() {
            let mut taken = call.inner.lock_under(irq);
            taken.state = CallState::Received;
            let caller = (taken.caller_row, taken.caller);
            drop(taken);
            return Some(Ok((Received::Call(call), Some(caller))));
        }
        let bits = inner.notification.as_ref().map(|n| n.take()).filter(|&b| b != 0)?;
        Some(Ok((Received::Signals(bits), None)))
    }

    fn taken(irq: &InterruptGuard, taken: Result<(Received, Option<(u32, ThreadId)>)>) -> Result<Received> {
        let (received, caller) = taken?;
        if let Some((row, thread)) = caller {
            debug::reply_pending(irq, row, thread);
        }
        Ok(received)
    }

    /// The owner died: every queued caller gets `PeerDied` (a call being served ends when its
    /// reply capability goes, with the process that holds it).
    pub fn close(&self) {
        let (queued, receivers) = {
            let mut inner = self.inner.lock();
            inner.closed = true;
            (core::mem::take(&mut inner.queue), core::mem::take(&mut inner.receivers))
        };
        for call in queued.iter() {
            let _ = call.fail(Error::PeerDied);
        }
        for receiver in receivers {
            sched::wake(receiver);
        }
    }
}
