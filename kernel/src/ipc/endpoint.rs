//! Endpoints: synchronous call / receive / reply. A caller's message is copied into a call,
//! handed to one receiver, and the caller sleeps until that receiver replies. A call to a
//! receiver already waiting hands the CPU straight to it (the fast path) instead of queueing
//! it behind other ready threads.
//!
//! Calls are pooled with their buffers: once the pool has what the system uses, a round trip
//! allocates nothing. A call goes back to the pool only when its caller holds the last
//! reference, so a reply capability never names a call that was reused.

use super::error::{Error, Result};
use super::handle::Capability;
use super::notification::Notification;
use crate::debug::state::{EndpointRow, EventKind};
use crate::debug::{self, Slot};
use crate::sched::{self, ThreadId, WaitQueue};
use crate::sync::IrqMutex;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

/// The largest message or reply, in bytes (ABI: KWAST_MAX_MESSAGE).
pub const MAX_MESSAGE: usize = 4096;
/// Handles passed with one message, at most (ABI: KWAST_MAX_TRANSFER).
pub const MAX_TRANSFER: usize = 4;
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

struct CallInner {
    state: CallState,
    endpoint: u32,
    caller: ThreadId,
    badge: u64,
    request: Vec<u8>,
    transfers: Vec<Capability>,
    /// Once Replied: the answer is `reply`, or this error.
    result: Result<()>,
    reply: Vec<u8>,
}

/// One call in flight.
pub struct Call {
    inner: IrqMutex<CallInner>,
}

static POOL: IrqMutex<Vec<Arc<Call>>> = IrqMutex::new(Vec::new());

impl Call {
    fn take() -> Arc<Call> {
        POOL.lock().pop().unwrap_or_else(|| Arc::new(Call {
            inner: IrqMutex::new(CallInner {
                state: CallState::Abandoned, endpoint: 0, caller: 0, badge: 0,
                request: Vec::new(), transfers: Vec::new(), result: Ok(()), reply: Vec::new(),
            }),
        }))
    }

    /// Back to the pool if no one else holds it (a receiver that never replied still may).
    fn recycle(call: &Arc<Call>) {
        if Arc::strong_count(call) == 1 {
            call.inner.lock().transfers.clear();
            let mut pool = POOL.lock();
            if pool.len() < POOL_SIZE {
                pool.push(call.clone());
            }
        }
    }

    /// The receiver's answer. `PeerDied` if the caller is no longer waiting.
    pub fn answer(&self, data: &[u8]) -> Result<()> {
        if data.len() > MAX_MESSAGE {
            return Err(Error::TooBig);
        }
        let endpoint = self.finish(Ok(()), |reply| reply.extend_from_slice(data))?;
        // The caller runs next when this receiver blocks again (its next receive).
        sched::hand_off_to(self.inner.lock().caller);
        debug::record(EventKind::IpcReply, sched::current_id(), endpoint as u64, data.len() as u64);
        Ok(())
    }

    /// Ends the call with `error`. `PeerDied` if the caller is no longer waiting.
    pub fn fail(&self, error: Error) -> Result<()> {
        self.finish(Err(error), |_| {}).map(drop)
    }

    fn finish(&self, result: Result<()>, fill: impl FnOnce(&mut Vec<u8>)) -> Result<u32> {
        let (caller, endpoint) = {
            let mut inner = self.inner.lock();
            match inner.state {
                CallState::Received | CallState::Queued => {}
                CallState::Abandoned => return Err(Error::PeerDied),
                CallState::Replied => return Err(Error::InvalidArgument),
            }
            inner.reply.clear();
            fill(&mut inner.reply);
            inner.result = result;
            inner.state = CallState::Replied;
            (inner.caller, inner.endpoint)
        };
        sched::wake(caller);
        Ok(endpoint)
    }

    /// Takes the request for a receiver: copied into `buffer`, which must hold it. Returns its
    /// length, the badge and the handles that came with it.
    pub fn deliver(&self, buffer: &mut [u8]) -> Result<(usize, u64, Vec<Capability>)> {
        let mut inner = self.inner.lock();
        let length = inner.request.len();
        let target = buffer.get_mut(..length).ok_or(Error::TooBig)?;
        target.copy_from_slice(&inner.request);
        Ok((length, inner.badge, core::mem::take(&mut inner.transfers)))
    }
}

/// What a call got back: the reply, read before the call goes back to the pool.
pub struct Answer(Arc<Call>);

impl Answer {
    /// The reply's length.
    pub fn len(&self) -> usize {
        self.0.inner.lock().reply.len()
    }

    /// Copies the reply into `buffer`; its length, or TooBig if it does not fit.
    pub fn copy_to(&self, buffer: &mut [u8]) -> Result<usize> {
        let inner = self.0.inner.lock();
        let target = buffer.get_mut(..inner.reply.len()).ok_or(Error::TooBig)?;
        target.copy_from_slice(&inner.reply);
        Ok(target.len())
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        Call::recycle(&self.0);
    }
}

struct Inner {
    queue: VecDeque<Arc<Call>>,
    closed: bool,
}

pub struct Endpoint {
    pub id: u32,
    pub owner: u32,
    inner: IrqMutex<Inner>,
    receivers: WaitQueue,
    notification: IrqMutex<Option<Arc<Notification>>>,
    debug_row: Option<Slot<EndpointRow>>,
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
        let debug_row = Slot::claim(EndpointRow { id, owner, waiters: 0, messages: 0, bytes: 0, errors: 0 });
        Arc::new(Endpoint {
            id, owner,
            inner: IrqMutex::new(Inner { queue: VecDeque::new(), closed: false }),
            receivers: WaitQueue::new(),
            notification: IrqMutex::new(None),
            debug_row,
        })
    }

    /// Lets `receive` also return this notification's signals.
    pub fn bind_notification(self: &Arc<Endpoint>, notification: Arc<Notification>) {
        notification.bind(self);
        *self.notification.lock() = Some(notification);
    }

    pub(super) fn wake_receivers(&self) {
        self.receivers.wake_all();
    }

    fn account(&self, bytes: usize, error: bool) {
        if let Some(row) = &self.debug_row {
            let waiting = self.inner.lock().queue.len() as u32;
            row.update(|e| {
                e.waiters = waiting;
                if error {
                    e.errors += 1;
                } else {
                    e.messages += 1;
                    e.bytes += bytes as u64;
                }
            });
        }
    }

    /// Sends `request` with `transfers` and waits for the reply until tick `deadline`.
    pub fn call(&self, badge: u64, request: &[u8], transfers: Vec<Capability>, deadline: Option<u64>) -> Result<Answer> {
        if request.len() > MAX_MESSAGE || transfers.len() > MAX_TRANSFER {
            return Err(Error::TooBig);
        }
        let answer = Answer(Call::take());
        let call = &answer.0;
        {
            let mut inner = call.inner.lock();
            inner.state = CallState::Queued;
            inner.endpoint = self.id;
            inner.caller = sched::current_id();
            inner.badge = badge;
            inner.request.clear();
            inner.request.extend_from_slice(request);
            inner.transfers = transfers;
            if crate::debug::control::corrupt_if_requested(&mut inner.request) {
                crate::kprintln!("endpoint {}: a message corrupted on request", self.id);
            }
        }
        {
            let mut inner = self.inner.lock();
            if inner.closed {
                call.inner.lock().state = CallState::Abandoned;
                return Err(Error::PeerDied);
            }
            inner.queue.push_back(call.clone());
        }
        debug::record(EventKind::IpcCall, sched::current_id(), self.id as u64, request.len() as u64);
        if let Some(receiver) = self.receivers.wake_one() {
            sched::hand_off_to(receiver);
        }
        let replied = sched::wait_for(|| call.inner.lock().state == CallState::Replied, deadline, Arc::as_ptr(call) as u32);
        let result = {
            let mut inner = call.inner.lock();
            let result = if replied { inner.result } else { Err(Error::TimedOut) };
            inner.state = CallState::Abandoned;
            result.map(|()| inner.reply.len())
        };
        if !replied {
            self.inner.lock().queue.retain(|c| !Arc::ptr_eq(c, call));
        }
        self.account(request.len() + result.unwrap_or(0), result.is_err());
        result.map(|_| answer)
    }

    /// Waits for a call (or a signal on the bound notification) until tick `deadline`.
    pub fn receive(&self, deadline: Option<u64>) -> Result<Received> {
        let notification = self.notification.lock().clone();
        let mut received = None;
        let ready = self.receivers.wait_until_deadline(|| {
            let mut inner = self.inner.lock();
            if inner.closed {
                return true;
            }
            if let Some(call) = inner.queue.pop_front() {
                call.inner.lock().state = CallState::Received;
                received = Some(Received::Call(call));
                return true;
            }
            if let Some(bits) = notification.as_ref().map(|n| n.take()).filter(|&b| b != 0) {
                received = Some(Received::Signals(bits));
                return true;
            }
            false
        }, deadline);
        match received {
            Some(received) => Ok(received),
            None if ready => Err(Error::PeerDied),
            None => Err(Error::TimedOut),
        }
    }

    /// The owner died: every queued caller gets `PeerDied` (a call being served ends when its
    /// reply capability goes, with the process that holds it).
    pub fn close(&self) {
        let queued = {
            let mut inner = self.inner.lock();
            inner.closed = true;
            core::mem::take(&mut inner.queue)
        };
        for call in queued.iter() {
            let _ = call.fail(Error::PeerDied);
        }
        self.receivers.wake_all();
    }
}
