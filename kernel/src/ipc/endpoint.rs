//! Endpoints: synchronous call / receive / reply. A caller's message is copied into the kernel,
//! handed to one receiver, and the caller sleeps until that receiver replies. A call to a
//! receiver already waiting hands the CPU straight to it (the fast path) instead of queueing
//! it behind other ready threads.

use super::error::{Error, Result};
use super::handle::Capability;
use super::notification::Notification;
use crate::debug::state::{EndpointRow, EventKind};
use crate::debug::{self, Slot};
use crate::sched::{self, WaitQueue};
use crate::sync::IrqMutex;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

/// The largest message or reply, in bytes (ABI: KWAST_MAX_MESSAGE).
pub const MAX_MESSAGE: usize = 4096;
/// Handles passed with one message, at most (ABI: KWAST_MAX_TRANSFER).
pub const MAX_TRANSFER: usize = 4;

enum CallState {
    Queued,
    Received,
    Replied(Result<Vec<u8>>),
    /// The caller gave up (timeout) or died: a reply has no one to go to.
    Abandoned,
}

/// One call in flight.
pub struct Call {
    endpoint: u32,
    pub badge: u64,
    pub request: Vec<u8>,
    pub transfers: Vec<Capability>,
    state: IrqMutex<CallState>,
    done: WaitQueue,
}

impl Call {
    /// The receiver's answer. `PeerDied` if the caller is no longer waiting.
    pub fn answer(&self, data: Vec<u8>) -> Result<()> {
        if data.len() > MAX_MESSAGE {
            return Err(Error::TooBig);
        }
        let length = data.len() as u64;
        self.reply(Ok(data))?;
        debug::record(EventKind::IpcReply, sched::current_id(), self.endpoint as u64, length);
        Ok(())
    }

    /// Ends the call with `result`. `PeerDied` if the caller is no longer waiting.
    pub fn reply(&self, result: Result<Vec<u8>>) -> Result<()> {
        {
            let mut state = self.state.lock();
            match *state {
                CallState::Received | CallState::Queued => *state = CallState::Replied(result),
                CallState::Abandoned => return Err(Error::PeerDied),
                CallState::Replied(_) => return Err(Error::InvalidArgument),
            }
        }
        self.done.wake_all();
        Ok(())
    }
}

struct Inner {
    queue: VecDeque<Arc<Call>>,
    /// Calls received and not yet answered: failed if the endpoint closes.
    unanswered: Vec<Arc<Call>>,
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
            inner: IrqMutex::new(Inner { queue: VecDeque::new(), unanswered: Vec::new(), closed: false }),
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
        let waiting = self.inner.lock().queue.len() as u32;
        if let Some(row) = &self.debug_row {
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

    /// Sends `request` and waits for the reply until tick `deadline`.
    pub fn call(&self, badge: u64, request: Vec<u8>, transfers: Vec<Capability>, deadline: Option<u64>) -> Result<Vec<u8>> {
        let length = request.len();
        let result = self.call_inner(badge, request, transfers, deadline);
        self.account(length + result.as_ref().map_or(0, |r| r.len()), result.is_err());
        result
    }

    fn call_inner(&self, badge: u64, mut request: Vec<u8>, transfers: Vec<Capability>, deadline: Option<u64>) -> Result<Vec<u8>> {
        if request.len() > MAX_MESSAGE || transfers.len() > MAX_TRANSFER {
            return Err(Error::TooBig);
        }
        if crate::debug::control::corrupt_if_requested(&mut request) {
            crate::kprintln!("endpoint {}: a message corrupted on request", self.id);
        }
        let call = Arc::new(Call {
            endpoint: self.id,
            badge, request, transfers,
            state: IrqMutex::new(CallState::Queued), done: WaitQueue::new(),
        });
        {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Err(Error::PeerDied);
            }
            inner.queue.push_back(call.clone());
        }
        let length = call.request.len() as u64;
        debug::record(EventKind::IpcCall, sched::current_id(), self.id as u64, length);
        if let Some(receiver) = self.receivers.wake_one() {
            sched::hand_off_to(receiver);
        }
        let replied = call.done.wait_until_deadline(|| matches!(*call.state.lock(), CallState::Replied(_)), deadline);
        let mut state = call.state.lock();
        if !replied {
            *state = CallState::Abandoned;
            drop(state);
            self.inner.lock().queue.retain(|c| !Arc::ptr_eq(c, &call));
            return Err(Error::TimedOut);
        }
        match core::mem::replace(&mut *state, CallState::Abandoned) {
            CallState::Replied(result) => result,
            _ => unreachable!("checked above"),
        }
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
                *call.state.lock() = CallState::Received;
                inner.unanswered.retain(|c| matches!(*c.state.lock(), CallState::Received));
                inner.unanswered.push(call.clone());
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

    /// The owner died: every caller, queued or being served, gets `PeerDied`.
    pub fn close(&self) {
        let (queued, unanswered) = {
            let mut inner = self.inner.lock();
            inner.closed = true;
            (core::mem::take(&mut inner.queue), core::mem::take(&mut inner.unanswered))
        };
        for call in queued.iter().chain(unanswered.iter()) {
            let _ = call.reply(Err(Error::PeerDied));
        }
        self.receivers.wake_all();
    }
}
