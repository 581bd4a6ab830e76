//! Endpoints: synchronous call / receive / reply. A call lends the receiver the caller's
//! request and reply buffers, and the caller sleeps until that receiver replies: the request is
//! copied once, into the receiver's buffer, and the reply once, into the caller's. A call to a
//! receiver already waiting (the fast path) copies its request into the buffer the receiver
//! registered, skipping the queue, and hands the CPU straight to it instead of queueing it
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
    /// waiting. The caller, still blocked, runs next when this thread blocks again (a server's
    /// next receive, `HandOff`), or is woken when the `HandOff` is dropped.
    /// Always inlined, into the reply of a server's loop: outlined, call+reply +11.
    #[inline(always)]
    pub fn answer(&self, irq: &InterruptGuard, data: &[u8]) -> Result<sched::HandOff> {
        if data.len() > MAX_MESSAGE {
            return Err(Error::TooBig);
        }
        let (caller, (endpoint, row)) = self.finish(irq, |lent| {
            if data.len() > lent.reply_capacity {
                return Err(Error::TooBig);
            }
            if data.len() > lent.reply_room {
                return Err(Error::BadAddress);
            }
            // SAFETY: the caller is still in the call (`finish` checked, under the lock).
            unsafe { crate::rt::copy_wide(irq, lent.reply, data.as_ptr(), data.len()) };
            Ok(data.len())
        })?;
        debug::ipc(irq, EventKind::IpcReply, sched::current_id(), endpoint, row, data.len());
        Ok(sched::HandOff::new(caller))
    }

    /// Ends the call with `error` and wakes its caller. `PeerDied` if the caller is no longer
    /// waiting.
    pub fn fail(&self, error: Error) -> Result<()> {
        let (caller, _) = self.finish(&InterruptGuard::new(), |_| Err(error))?;
        sched::wake(caller);
        Ok(())
    }

    /// Ends the call with what `answer` makes of the caller's buffers; the caller wakes to find
    /// it. Returns the caller, and the endpoint's id and debug row.
    fn finish(&self, irq: &InterruptGuard, answer: impl FnOnce(&Lent) -> Result<usize>) -> Result<(ThreadId, (u32, u32))> {
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
        Ok((caller, endpoint))
    }

    /// The handles a call delivered to a receiver carries, into `transfers`: theirs now, even if
    /// the caller has left meanwhile (its request is already theirs too).
    #[cold]
    fn take_transfers(&self, irq: &InterruptGuard, transfers: &mut Transfers) {
        transfers.extend(self.inner.lock_under(irq).transfers.drain(..));
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
        unsafe { copy_request(irq, inner.endpoint, inner.lent.request, target) };
        // Moved only when there are any: the inline array is large for a call that has none.
        if !inner.transfers.is_empty() {
            transfers.extend(inner.transfers.drain(..));
        }
        Ok((length, inner.badge))
    }
}

/// Copies a request into the receiver's `target`, with interrupts off (`irq`), corrupting it
/// if the workbench asked.
/// # Safety
/// `request` holds `target.len()` bytes.
unsafe fn copy_request(irq: &InterruptGuard, endpoint: u32, request: *const u8, target: &mut [u8]) {
    unsafe { crate::rt::copy_wide(irq, target.as_mut_ptr(), request, target.len()) };
    if crate::debug::control::corrupt_if_requested(target) {
        crate::kprintln!("endpoint {}: a message corrupted on request", endpoint);
    }
}

/// A receiver blocked on an endpoint, on its own stack, and where a caller may put its request
/// straight (the fast path): no trip through the queue, and no second look at the call. Used
/// through a raw pointer, by callers under the endpoint's lock only, while the receiver is in
/// `receivers`; the receiver takes itself off the list before it leaves.
struct Waiting {
    buffer: *mut u8,
    capacity: usize,
    /// A call made Received (an `Arc` made raw), its request in `buffer`: `length` bytes, and
    /// its badge. Stored last, by the caller that took the receiver off the list, so a receiver
    /// that finds it there needs no lock to know it is off the list and its call whole.
    delivered: AtomicPtr<Call>,
    length: usize,
    badge: u64,
    /// The delivered call carries handles, for the receiver to take from it (`Call::take_transfers`).
    handles: bool,
    thread: ThreadId,
    /// The receiver after it on the endpoint's list (`Receivers`).
    next: *mut Waiting,
}

impl Waiting {
    /// The call delivered to the receiver `me`, if one was.
    /// # Safety
    /// `me` is the receiver's own record.
    #[inline(always)]
    unsafe fn delivered(me: *mut Waiting) -> Option<Arc<Call>> {
        let raw = unsafe { (*me).delivered.swap(core::ptr::null_mut(), Ordering::Acquire) };
        // SAFETY: stored by `Endpoint::send` with `into_raw`, and the swap made it ours.
        (!raw.is_null()).then(|| unsafe { Arc::from_raw(raw) })
    }

    /// What the receiver `me` gets of `call`, delivered to it: the handles it carries move to
    /// `transfers`.
    /// # Safety
    /// `me` is the receiver's own record, and `call` came from its `delivered`.
    #[inline(always)]
    unsafe fn received(me: *mut Waiting, irq: &InterruptGuard, call: Arc<Call>, transfers: &mut Transfers) -> Received {
        let me = unsafe { &*me };
        if me.handles {
            call.take_transfers(irq, transfers);
        }
        Received::Call(call, me.length, me.badge)
    }
}

/// Threads blocked in `receive`, longest first: their `Waiting` records, linked through
/// `next`, so joining and leaving touch a pointer or two rather than a ring buffer's indices
/// (a call takes the first receiver, and the receiver joins again, every round trip).
struct Receivers {
    head: *mut Waiting,
    tail: *mut Waiting,
}

impl Receivers {
    const EMPTY: Receivers = Receivers { head: core::ptr::null_mut(), tail: core::ptr::null_mut() };

    fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    fn front(&self) -> Option<*mut Waiting> {
        (!self.head.is_null()).then_some(self.head)
    }

    /// # Safety
    /// `waiting` stays valid until it is taken off the list, and is on no list now.
    unsafe fn push_back(&mut self, waiting: *mut Waiting) {
        // SAFETY: valid (the caller's promise).
        unsafe { (*waiting).next = core::ptr::null_mut() };
        match self.tail.is_null() {
            true => self.head = waiting,
            // SAFETY: on the list, so valid (the caller's promise when it joined).
            false => unsafe { (*self.tail).next = waiting },
        }
        self.tail = waiting;
    }

    fn pop_front(&mut self) -> Option<*mut Waiting> {
        let first = self.front()?;
        // SAFETY: on the list, so valid.
        self.head = unsafe { (*first).next };
        if self.head.is_null() {
            self.tail = core::ptr::null_mut();
        }
        Some(first)
    }

    /// Wakes every receiver (by the signal of notification `signal`, or 0), taking it off the
    /// list. Under the endpoint's lock: off it, a receiver woken by something else could
    /// leave, its record with it.
    fn wake_all(&mut self, irq: &InterruptGuard, signal: u64) {
        while let Some(receiver) = self.pop_front() {
            // SAFETY: on the list until just now, so still waiting (`Waiting`).
            sched::wake_under(irq, unsafe { (*receiver).thread }, signal);
        }
    }

    /// Takes `waiting` off the list if it is on it.
    fn remove(&mut self, waiting: *mut Waiting) {
        let mut before: *mut Waiting = core::ptr::null_mut();
        let mut at = self.head;
        while !at.is_null() && at != waiting {
            before = at;
            // SAFETY: on the list, so valid.
            at = unsafe { (*at).next };
        }
        if at.is_null() {
            return;
        }
        // SAFETY: `at` and `before` are on the list.
        let next = unsafe { (*at).next };
        match before.is_null() {
            true => self.head = next,
            false => unsafe { (*before).next = next },
        }
        if self.tail == at {
            self.tail = before;
        }
    }
}

struct Inner {
    queue: VecDeque<Arc<Call>>,
    /// Under the queue's lock, not a wait queue of their own: a call queues itself and takes
    /// its receiver in one lock, a receiver finds the queue empty and waits in one.
    receivers: Receivers,
    closed: bool,
    /// Its signals are received here too; under the queue's lock, as receive checks both.
    notification: Option<Arc<Notification>>,
}

// SAFETY: `receivers` points at records their threads keep until taken off the list, and is
// used under the endpoint's lock only (`Waiting`).
unsafe impl Send for Inner {}

pub struct Endpoint {
    pub id: u32,
    pub owner: u32,
    inner: IrqMutex<Inner>,
    debug_row: Option<Slot<EndpointRow>>,
    /// `debug_row`'s index, for calls to account on (`debug::ipc`).
    row: u32,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// What a receiver gets: a call, its request in the receive buffer (its length and badge), or
/// the bits of its bound notification.
pub enum Received {
    Call(Arc<Call>, usize, u64),
    Signals(u64),
}

/// What a receiver finds (`Endpoint::take`).
enum Taken {
    /// From a caller that found it waiting: the request is in its buffer.
    Delivered(Arc<Call>),
    /// From the queue, with its caller's debug row and id: the request is still the caller's.
    Queued(Arc<Call>, u32, ThreadId),
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
            inner: IrqMutex::new(Inner { queue: VecDeque::new(), receivers: Receivers::EMPTY, closed: false, notification: None }),
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
        self.inner.lock_under(irq).receivers.wake_all(irq, signal);
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
        // Given back here rather than by a guard's drop, which the compiler outlined (call+reply +13).
        let call = Call::take();
        let result = self.send(irq, &call, badge, lent, transfers, deadline);
        Call::recycle(call);
        if let (Err(error), Some(row)) = (result, &self.debug_row) {
            row.update(|e| {
                e.errors += 1;
                e.peer_died += (error == Error::PeerDied) as u64;
            });
        }
        result
    }

    /// `call` with `call`, from the pool.
    fn send(&self, irq: &InterruptGuard, call: &Arc<Call>, badge: u64, lent: Lent, transfers: &mut Transfers, deadline: Option<u64>)
            -> Result<usize> {
        if lent.request_length > MAX_MESSAGE || transfers.len() > MAX_TRANSFER {
            return Err(Error::TooBig);
        }
        let me = sched::current_id();
        // Delivered, or queued, and its receiver (if one waits) woken, in one section with
        // interrupts off: the receiver cannot time out between being taken off the list and woken.
        let mut endpoint = self.inner.lock_under(irq);
        if endpoint.closed {
            return Err(Error::PeerDied);
        }
        debug::ipc_holding(&endpoint, EventKind::IpcCall, me, self.id, self.row, lent.request_length);
        let fill = |state: CallState, transfers: &mut Transfers| {
            let mut inner = call.inner.lock_under(irq);
            inner.state = state;
            inner.endpoint = self.id;
            inner.caller = me;
            inner.caller_row = sched::current_row();
            inner.endpoint_row = self.row;
            inner.badge = badge;
            inner.lent = lent;
            if !transfers.is_empty() {
                inner.transfers.extend(transfers.drain(..));
            }
        };
        let mut hand_off = None;
        // Taken at once, the caller waits for the reply; queued, for a receiver first.
        let wait = match endpoint.receivers.front() {
            // The fast path: a receiver waits.
            Some(receiver) => {
                // SAFETY: on the list, so still waiting (`Waiting`), its buffer valid; it stays
                // until the receiver takes its call, under this lock.
                let waiting = unsafe { &mut *receiver };
                if lent.request_length > waiting.capacity {
                    return Err(Error::TooBig); // the receiver waits on
                }
                // SAFETY: the request is the caller's own, here; the buffer the receiver's.
                unsafe { copy_request(irq, self.id, lent.request, core::slice::from_raw_parts_mut(waiting.buffer, lent.request_length)) };
                let carries_handles = !transfers.is_empty(); // moved into the call by `fill`
                fill(CallState::Received, transfers);
                endpoint.receivers.pop_front();
                waiting.length = lent.request_length;
                waiting.badge = badge;
                waiting.handles = carries_handles;
                waiting.delivered.store(Arc::into_raw(call.clone()).cast_mut(), Ordering::Release);
                // Woken by this thread's block, which runs it at once: until then it stays on
                // no list, its call delivered, where any other wake finds it.
                hand_off = Some(sched::HandOff::new(waiting.thread));
                WaitKind::Reply
            }
            receiver => {
                fill(CallState::Queued, transfers);
                endpoint.queue.push_back(call.clone());
                if let Some(receiver) = receiver {
                    endpoint.receivers.pop_front();
                    // SAFETY: as above.
                    sched::wake_and_hand_off(irq, unsafe { (*receiver).thread });
                }
                WaitKind::Call
            }
        };
        drop(endpoint);
        // Leaving the call, under its lock: from then on no one touches the lent memory.
        let leave = |inner: &mut CallInner, replied: bool| {
            inner.state = CallState::Abandoned;
            if replied { inner.result } else { Err(Error::TimedOut) }
        };
        let replied = sched::wait_for(irq, || {
            let mut inner = call.inner.lock_under(irq);
            (inner.state == CallState::Replied).then(|| leave(&mut inner, true))
        }, deadline, Wait::on(wait, self.id, badge), hand_off);
        let result = replied.unwrap_or_else(|| {
            leave(&mut call.inner.lock_under(irq), false)
        });
        if replied.is_none() {
            self.inner.lock_under(irq).queue.retain(|c| !Arc::ptr_eq(c, call));
        }
        result
    }

    /// Waits until tick `deadline` for a call, its request copied into `buffer` and its handles
    /// into `transfers`, or for a signal on the bound notification. A caller that finds the
    /// receiver waiting copies its request itself (the fast path); a queued call is copied
    /// here. One that cannot be delivered whole fails its caller (TooBig: `buffer` too small)
    /// and the receiver waits on. Interrupts off (`irq`) from the look at the queue to the
    /// block: on this CPU no caller comes between; one on another CPU finds this thread on the
    /// list (and a wake that comes before the block makes the block return at once).
    /// `hand_off` (the caller a server just answered) runs in its place at its first block.
    pub fn receive(&self, irq: &InterruptGuard, buffer: &mut [u8], transfers: &mut Transfers, deadline: Option<u64>,
                   mut hand_off: Option<sched::HandOff>) -> Result<Received> {
        let mut waiting = Waiting {
            buffer: buffer.as_mut_ptr(), capacity: buffer.len(), delivered: AtomicPtr::new(core::ptr::null_mut()), length: 0, badge: 0, handles: false, thread: sched::current_id(),
            next: core::ptr::null_mut(),
        };
        // From here on used through this pointer only: callers on other CPUs use it too.
        let me: *mut Waiting = &mut waiting;
        loop {
            let mut inner = self.inner.lock_under(irq);
            let taken = match Self::take(irq, &mut inner, me) {
                Some(taken) => taken,
                // A thread whose process is being killed does not wait any more.
                None if crate::process::current_killed() => return Err(Error::TimedOut),
                None => {
                    // SAFETY: this thread's own record, which it takes off the list before it
                    // leaves (`take`), unless a caller did.
                    unsafe { inner.receivers.push_back(me) };
                    drop(inner);
                    if sched::block_handing_off(Wait::on(WaitKind::Receive, self.id, 0), deadline, hand_off.take()) {
                        // SAFETY: our own record. Delivered: off the list already, no lock needed.
                        if let Some(call) = unsafe { Waiting::delivered(me) } {
                            // SAFETY: as above; filled before `delivered` was stored.
                            return Ok(unsafe { Waiting::received(me, irq, call, transfers) });
                        }
                        continue;
                    }
                    // The deadline, which no caller took this thread off the list for: a last look.
                    Self::take(irq, &mut self.inner.lock_under(irq), me).ok_or(Error::TimedOut)?
                }
            };
            match taken? {
                // SAFETY: the receiver's own record, filled by the caller that took it off the list.
                Taken::Delivered(call) => return Ok(unsafe { Waiting::received(me, irq, call, transfers) }),
                Taken::Signals(bits) => return Ok(Received::Signals(bits)),
                Taken::Queued(call, caller_row, caller) => {
                    debug::reply_pending(irq, caller_row, caller);
                    // SAFETY: `buffer`, through the pointer taken from it.
                    let buffer = unsafe { core::slice::from_raw_parts_mut((*me).buffer, (*me).capacity) };
                    match call.deliver(irq, buffer, transfers) {
                        Ok((length, badge)) => return Ok(Received::Call(call, length, badge)),
                        Err(Error::TooBig) => drop(call.fail(Error::TooBig)),
                        Err(_) => {} // its caller left meanwhile
                    }
                }
            }
        }
    }

    /// What a receiver finds under the lock: a call a caller delivered to it; PeerDied if the
    /// endpoint closed; a queued call (now Received, with its caller's debug row and id); or
    /// the bound notification's signals. `me` leaves the list of receivers first, if a wake
    /// that was not a caller's (a kill, a signal) left it there.
    #[inline(always)]
    fn take(irq: &InterruptGuard, inner: &mut Inner, me: *mut Waiting) -> Option<Result<Taken>> {
        // SAFETY: the receiver's own record; callers use it under this lock only.
        if let Some(call) = unsafe { Waiting::delivered(me) } {
            return Some(Ok(Taken::Delivered(call)));
        }
        if !inner.receivers.is_empty() {
            inner.receivers.remove(me);
        }
        if inner.closed {
            return Some(Err(Error::PeerDied));
        }
        if let Some(call) = inner.queue.pop_front() {
            let mut taken = call.inner.lock_under(irq);
            taken.state = CallState::Received;
            let (row, caller) = (taken.caller_row, taken.caller);
            drop(taken);
            return Some(Ok(Taken::Queued(call, row, caller)));
        }
        let bits = inner.notification.as_ref().map(|n| n.take()).filter(|&b| b != 0)?;
        Some(Ok(Taken::Signals(bits)))
    }

    /// The owner died: every queued caller gets `PeerDied` (a call being served ends when its
    /// reply capability goes, with the process that holds it).
    pub fn close(&self) {
        let irq = InterruptGuard::new();
        let queued = {
            let mut inner = self.inner.lock_under(&irq);
            inner.closed = true;
            inner.receivers.wake_all(&irq, 0);
            core::mem::take(&mut inner.queue)
        };
        drop(irq);
        for call in queued.iter() {
            let _ = call.fail(Error::PeerDied);
        }
    }
}
