//! In-kernel tests of capabilities and IPC, with kernel threads standing in for servers.

use super::*;
use crate::kernel_test;
use crate::process;
use crate::sched::{self, Priority, DEFAULT_STACK};
use alloc::string::String;
use alloc::vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

fn in_process(process: &Arc<Process>, name: &str, f: impl FnOnce() + Send + 'static) -> sched::ThreadId {
    sched::spawn_in(Some(process), name, Priority::NORMAL, DEFAULT_STACK, None, f).unwrap()
}

/// `call` with the answer copied out, as a server's kernel call does.
fn call(handle: Handle, request: &[u8], transfer: &[Handle], timeout_ms: u64) -> Result<Vec<u8>> {
    let mut reply = vec![0; endpoint::MAX_MESSAGE];
    let length = super::call(handle, endpoint::Lent::buffers(request, &mut reply), transfer, timeout_ms)?;
    reply.truncate(length);
    Ok(reply)
}

/// What the tests' `receive` got: a message with its request, or signals.
enum Incoming {
    Message(Received),
    Signals(u64),
}

struct Received {
    message: Message,
    data: Vec<u8>,
}

impl Received {
    fn data(&self) -> &[u8] {
        &self.data
    }
}

impl core::ops::Deref for Received {
    type Target = Message;
    fn deref(&self) -> &Message {
        &self.message
    }
}

/// `receive` into a buffer of `capacity` bytes.
fn receive(handle: Handle, capacity: usize, timeout_ms: u64) -> Result<Incoming> {
    let mut buffer = vec![0; capacity];
    Ok(match super::receive(handle, &mut buffer, timeout_ms)? {
        super::Incoming::Signals(bits) => Incoming::Signals(bits),
        super::Incoming::Message(message) => {
            buffer.truncate(message.length);
            Incoming::Message(Received { message, data: buffer })
        }
    })
}

/// A server process with an endpoint, a client process holding a call handle with `badge`.
fn pair(badge: u64) -> (Arc<Process>, Handle, Arc<Process>, Handle) {
    let server = process::create("server", vec![]);
    let (endpoint, receive_handle) = create_endpoint(&server).unwrap();
    let client = process::create("client", vec![]);
    let call_handle = grant(&client, Object::Endpoint(endpoint), Rights::CALL, badge).unwrap();
    (server, receive_handle, client, call_handle)
}

/// Serves `count` calls, replying with the request upper-cased and the badge appended.
fn uppercase_server(server: &Arc<Process>, handle: Handle, count: usize) -> sched::ThreadId {
    in_process(server, "upper", move || {
        for _ in 0..count {
            let Ok(Incoming::Message(message)) = receive(handle, endpoint::MAX_MESSAGE, FOREVER) else { panic!("receive failed") };
            let mut answer = message.data().to_ascii_uppercase();
            answer.extend_from_slice(&message.badge.to_le_bytes());
            reply(message.reply_handle, &answer).unwrap();
        }
    })
}

const BADGE: u64 = 0xB0D6E;
/// The largest request whose answer (request + 8-byte badge) still fits a message.
const LARGEST_ECHO: usize = endpoint::MAX_MESSAGE - 8;

kernel_test!(ipc_call_reply, {
    let (server, receive_handle, client, call_handle) = pair(BADGE);
    let server_thread = uppercase_server(&server, receive_handle, 2);
    let client_thread = in_process(&client, "client", move || {
        for text in [&b"hello"[..], &[b'x'; LARGEST_ECHO][..]] {
            let answer = call(call_handle, text, &[], 1000).expect("call");
            assert_eq!(&answer[..text.len()], &text.to_ascii_uppercase()[..]);
            assert_eq!(&answer[text.len()..], &(BADGE).to_le_bytes());
        }
    });
    sched::join(client_thread);
    sched::join(server_thread);
});


kernel_test!(ipc_errors_never_panic, {
    let (server, receive_handle, client, call_handle) = pair(7);
    let notification = notification::Notification::new();
    let signal_handle = grant(&client, Object::Notification(notification), Rights::SIGNAL, 0).unwrap();
    let results = Arc::new(crate::sync::IrqMutex::new(alloc::vec::Vec::new()));
    let seen = results.clone();
    let server_keep = server.clone();
    let client_thread = in_process(&client, "client", move || {
        let log = |what: &'static str, error: Error| seen.lock().push((what, error));
        log("handle 0", call(0, b"x", &[], 10).unwrap_err());
        log("forged handle", call(0x1234_0042, b"x", &[], 10).unwrap_err());
        log("notification as endpoint", call(signal_handle, b"x", &[], 10).unwrap_err());
        log("receive on a call-only handle", receive(call_handle, endpoint::MAX_MESSAGE, 10).err().unwrap());
        log("too big", call(call_handle, &[0; endpoint::MAX_MESSAGE + 1], &[], 10).unwrap_err());
        log("transfer without grant", call(call_handle, b"x", &[signal_handle], 10).unwrap_err());
        log("timeout, nobody serving", call(call_handle, b"x", &[], 20).unwrap_err());
        log("reply with a call handle", reply(call_handle, b"x").unwrap_err());
        log("port without a grant", port_read8(call_handle, 0x60).unwrap_err());
        log("signal bit 63", signal(signal_handle, 1 << 63).unwrap_err());
        close(signal_handle).unwrap();
        log("stale handle", signal(signal_handle, 1).unwrap_err());
        // The server dies while we wait on it.
        log("peer died", call(call_handle, b"x", &[], FOREVER).unwrap_err());
    });
    // Let the client block in its last call, then end the server process.
    while seen_len(&results) < 11 {
        sched::sleep_ms(1);
    }
    sched::sleep_ms(5);
    process::destroy(server_keep.id);
    sched::join(client_thread);
    let _ = receive_handle;
    let got = results.lock().clone();
    let expected = [
        ("handle 0", Error::InvalidHandle),
        ("forged handle", Error::InvalidHandle),
        ("notification as endpoint", Error::WrongKind),
        ("receive on a call-only handle", Error::NoRights),
        ("too big", Error::TooBig),
        ("transfer without grant", Error::NoRights),
        ("timeout, nobody serving", Error::TimedOut),
        ("reply with a call handle", Error::WrongKind),
        ("port without a grant", Error::WrongKind),
        ("signal bit 63", Error::InvalidArgument),
        ("stale handle", Error::InvalidHandle),
        ("peer died", Error::PeerDied),
    ];
    assert_eq!(got.as_slice(), expected.as_slice());
    // A kernel thread has no process, hence no handles.
    assert_eq!(call(1, b"x", &[], 10).unwrap_err(), Error::InvalidHandle);
});

fn seen_len(results: &Arc<crate::sync::IrqMutex<alloc::vec::Vec<(&'static str, Error)>>>) -> usize {
    results.lock().len()
}

/// Who ran when, in `hand_off_order`: 'B' the bystander, the rest as its callers mark it.
static ORDER: crate::sync::IrqMutex<String> = crate::sync::IrqMutex::new(String::new());

fn ran(who: char) {
    ORDER.lock().push(who);
}

/// The order in which threads run when a client, preemption off, makes a bystander ready and
/// then `ask`s a server blocked in `serve`'s first kernel call; `serve` and `ask` mark their
/// own progress with `ran`. A hand-off runs the server before the bystander.
fn hand_off_order(server: &Arc<Process>, serve: impl FnOnce() + Send + 'static, client: &Arc<Process>,
                  ask: impl FnOnce() + Send + 'static) -> String {
    ask_a_waiting_server(server, "server", serve, client, move |_| {
        let no_preempt = sched::PreemptGuard::new();
        let bystander = sched::spawn("bystander", Priority::NORMAL, || ran('B')).unwrap();
        ask();
        drop(no_preempt);
        sched::join(bystander);
    });
    ORDER.lock().clone()
}

/// Runs `serve` as thread `name` of `server` and, once that has blocked (in its first kernel
/// call), `ask` as a thread of `client`, given the server's thread; returns when both have.
fn ask_a_waiting_server(server: &Arc<Process>, name: &str, serve: impl FnOnce() + Send + 'static, client: &Arc<Process>,
                        ask: impl FnOnce(sched::ThreadId) + Send + 'static) {
    let server_thread = in_process(server, name, serve);
    while sched::state_of(server_thread) != Some(sched::RunState::Blocked) {
        sched::give_up_cpu();
    }
    let client_thread = in_process(client, "client", move || ask(server_thread));
    sched::join(client_thread);
    sched::join(server_thread);
}

kernel_test!(ipc_fast_path_hands_off_to_the_server, {
    // A bystander is ready before the call; the waiting server must still run first.
    let (server, receive_handle, client, call_handle) = pair(1);
    let order = hand_off_order(&server, move || {
        let Ok(Incoming::Message(m)) = receive(receive_handle, endpoint::MAX_MESSAGE, FOREVER) else { panic!() };
        ran('S');
        reply(m.reply_handle, b"").unwrap();
    }, &client, move || {
        call(call_handle, b"ping", &[], FOREVER).unwrap();
        ran('C');
    });
    assert!(order.starts_with('S'), "the server ran first: {}", order);
});

kernel_test!(ipc_a_server_loop_hands_the_cpu_back_to_its_caller, {
    // The server answers and waits again in one step (a server's loop): the caller it
    // answered runs next, before the bystander that was ready all along.
    let (server, receive_handle, client, call_handle) = pair(1);
    let order = hand_off_order(&server, move || {
        let Ok(Incoming::Message(m)) = receive(receive_handle, endpoint::MAX_MESSAGE, FOREVER) else { panic!() };
        ran('S');
        let answered = answer(m.reply_handle, b"").unwrap();
        assert_eq!(receive_after(Some(answered), receive_handle, &mut [0; 4], 50).err(), Some(Error::TimedOut));
    }, &client, move || {
        call(call_handle, b"ping", &[], FOREVER).unwrap();
        ran('C');
    });
    assert_eq!(order, "SCB");
});

/// Two notifications: "there", which the client signals and the server waits on, and "back",
/// the other way. The id of "there", and the handles: the server's wait there and signal back,
/// the client's signal there and wait back.
fn notifications_both_ways(server: &Arc<Process>, client: &Arc<Process>) -> (u64, [Handle; 4]) {
    let (there, back) = (notification::Notification::new(), notification::Notification::new());
    let there_id = there.id as u64;
    let handles = [
        grant(server, Object::Notification(there.clone()), Rights::WAIT, 0).unwrap(),
        grant(server, Object::Notification(back.clone()), Rights::SIGNAL, 0).unwrap(),
        grant(client, Object::Notification(there), Rights::SIGNAL, 0).unwrap(),
        grant(client, Object::Notification(back), Rights::WAIT, 0).unwrap(),
    ];
    (there_id, handles)
}

kernel_test!(ipc_a_signal_hands_off_to_its_waiter, {
    // As a call to a waiting server: a bystander is ready before the signal, and the thread
    // waiting on the notification still runs first once the signaller waits in turn.
    let (server, _, client, _) = pair(1);
    let (_, [waits_there, signals_back, signals_there, waits_back]) = notifications_both_ways(&server, &client);
    let order = hand_off_order(&server, move || {
        assert_eq!(wait(waits_there, FOREVER), Ok(1));
        ran('S');
        signal(signals_back, 1).unwrap();
    }, &client, move || {
        signal(signals_there, 1).unwrap();
        assert_eq!(wait(waits_back, FOREVER), Ok(1));
        ran('C');
    });
    assert!(order.starts_with('S'), "the waiter ran first: {}", order);
});

kernel_test!(ipc_signal_wait_runs_the_waiter_at_once, {
    // The signal and the wait in one kernel call: the waiter the signal gave its bits runs as
    // soon as the signaller waits, before a ready bystander, and its Wake, recorded by the
    // switch to it, still comes right after the Signal and names the notification.
    let (server, _, client, _) = pair(1);
    let (there_id, [waits_there, signals_back, signals_there, waits_back]) = notifications_both_ways(&server, &client);
    let order = hand_off_order(&server, move || {
        assert_eq!(wait(waits_there, FOREVER), Ok(1));
        ran('S');
        // SAFETY: one CPU, and no update is in flight in this thread's own code.
        let state = unsafe { &*core::ptr::addr_of!(crate::debug::state::KWAST_DEBUG_STATE) };
        let event = |n: u64| &state.events[(n % crate::debug::state::EVENT_RING as u64) as usize];
        let newest = state.events_written;
        let signalled = (newest.saturating_sub(8)..newest).rev().find(|&n| event(n).kind == crate::debug::state::EventKind::Signal)
            .expect("the Signal event");
        let next = event(signalled + 1);
        assert_eq!((next.kind, next.thread, next.a), (crate::debug::state::EventKind::Wake, sched::current_id(), there_id));
        signal(signals_back, 1).unwrap();
    }, &client, move || {
        assert_eq!(signal_wait(signals_there, 1, waits_back, FOREVER), Ok(1));
        ran('C');
        // An error of the signal returns at once: no wait (this one would be forever).
        assert_eq!(signal_wait(signals_there, 1 << 63, waits_back, FOREVER), Err(Error::InvalidArgument));
        assert_eq!(signal_wait(waits_back, 1, waits_back, FOREVER), Err(Error::NoRights));
    });
    assert_eq!(order, "SCB");
});

kernel_test!(ipc_handles_pass_in_messages, {
    let (server, receive_handle, client, call_handle) = pair(3);
    let notification = notification::Notification::new();
    let waiter_handle = grant(&client, Object::Notification(notification.clone()), Rights::WAIT, 0).unwrap();
    let given = grant(&client, Object::Notification(notification), Rights::SIGNAL.union(Rights::GRANT), 0).unwrap();
    let server_thread = in_process(&server, "server", move || {
        let Ok(Incoming::Message(m)) = receive(receive_handle, endpoint::MAX_MESSAGE, FOREVER) else { panic!() };
        assert_eq!(m.transferred().len(), 1);
        signal(m.transferred()[0], 0b101).unwrap();
        reply(m.reply_handle, b"signalled").unwrap();
    });
    let client_thread = in_process(&client, "client", move || {
        assert_eq!(call(call_handle, b"take this", &[given], FOREVER).unwrap(), b"signalled");
        assert_eq!(wait(waiter_handle, 100).unwrap(), 0b101);
        assert_eq!(wait(waiter_handle, 10).unwrap_err(), Error::TimedOut, "bits were taken");
    });
    sched::join(client_thread);
    sched::join(server_thread);
});

kernel_test!(irq_to_notification_to_receiver, {
    // An endpoint with a bound notification that an IRQ line signals: the receiver gets the
    // bits from the same `receive` that serves calls. The interrupt is raised with `int`.
    let server = process::create("driver", vec![]);
    let (endpoint, receive_handle) = create_endpoint(&server).unwrap();
    let notification = notification::Notification::new();
    endpoint.bind_notification(notification.clone());
    let line = irq::IrqLine::bind(5, notification, 1 << 5, 0).unwrap();
    assert_eq!(irq::IrqLine::bind(5, notification::Notification::new(), 1, 0).err(), Some(Error::Busy));
    let irq_handle = grant(&server, Object::Irq(line.clone()), Rights::ACK, 0).unwrap();
    static GOT: AtomicU64 = AtomicU64::new(0);
    let driver = in_process(&server, "driver", move || {
        let Ok(Incoming::Signals(bits)) = receive(receive_handle, endpoint::MAX_MESSAGE, 1000) else { panic!("no signal") };
        GOT.store(bits, Ordering::SeqCst);
        irq_acknowledge(irq_handle).unwrap();
    });
    sched::sleep_ms(2);
    unsafe { core::arch::asm!("int {}", const crate::arch::trap::IRQ_BASE + 5) };
    sched::join(driver);
    assert_eq!(GOT.load(Ordering::SeqCst), 1 << 5);
    drop(line);
    process::destroy(server.id);
    let rebound = irq::IrqLine::bind(5, notification::Notification::new(), 1, 0);
    assert!(rebound.is_ok(), "the line is free once no capability holds it");
});

kernel_test!(ipc_round_trips_under_load, {
    static DONE: AtomicU32 = AtomicU32::new(0);
    let (server, receive_handle, client, call_handle) = pair(9);
    let server_thread = uppercase_server(&server, receive_handle, 1000);
    let client_thread = in_process(&client, "client", move || {
        for i in 0..1000u32 {
            let request = i.to_le_bytes();
            let answer = call(call_handle, &request, &[], 1000).unwrap();
            assert_eq!(&answer[..4], &request.to_ascii_uppercase());
            DONE.fetch_add(1, Ordering::Relaxed);
        }
    });
    sched::join(client_thread);
    sched::join(server_thread);
    assert_eq!(DONE.load(Ordering::Relaxed), 1000);
});

kernel_test!(io_port_grants_are_exact, {
    // Port 0x80 (the POST diagnostic port) is harmless to write.
    let driver = process::create("ports", vec![]);
    let ports = grant(&driver, Object::IoPorts(ioport::IoPorts { base: 0x80, count: 1 }), Rights::IO, 0).unwrap();
    let no_io = grant(&driver, Object::IoPorts(ioport::IoPorts { base: 0x80, count: 1 }), Rights(0), 0).unwrap();
    let thread = in_process(&driver, "ports", move || {
        assert_eq!(port_write8(ports, 0x80, 0x42), Ok(()));
        assert_eq!(port_write8(ports, 0x81, 0), Err(Error::NoRights), "outside the grant");
        assert_eq!(port_read8(ports, 0x7F), Err(Error::NoRights), "outside the grant");
        assert_eq!(port_read8(no_io, 0x80), Err(Error::NoRights), "without the IO right");
    });
    sched::join(thread);
});

kernel_test!(ipc_mint_keeps_badges, {
    let (server, receive_handle, client, call_handle) = pair(7);
    let unbadged = grant(&client, Object::Notification(notification::Notification::new()), Rights::SIGNAL, 0).unwrap();
    let client_keep = client.clone();
    let thread = in_process(&client, "minter", move || {
        let badge = |handle| client_keep.handles.lock().get(handle).map(|c| c.badge);
        let kept = mint(call_handle, Rights::CALL, 0).unwrap();
        assert_eq!(badge(kept), Ok(7), "0 keeps the badge");
        assert_eq!(badge(mint(call_handle, Rights::CALL, 7).unwrap()), Ok(7), "the same badge is fine");
        assert_eq!(mint(call_handle, Rights::CALL, 9), Err(Error::InvalidArgument), "a badge stays");
        assert_eq!(mint(call_handle, Rights::RECEIVE, 0), Err(Error::NoRights), "rights only shrink");
        assert_eq!(badge(mint(unbadged, Rights::SIGNAL, 5).unwrap()), Ok(5), "an unbadged handle takes one");
    });
    sched::join(thread);
    let _ = (server, receive_handle);
});

kernel_test!(ipc_undeliverable_calls_fail_their_caller_only, {
    let (server, receive_handle, client, call_handle) = pair(1);
    let passed = grant(&client, Object::Notification(notification::Notification::new()), Rights::SIGNAL.union(Rights::GRANT), 0).unwrap();
    let server_keep = server.clone();
    let server_thread = in_process(&server, "small-buffer", move || {
        // The 8-byte call never reaches this 4-byte buffer: the receive goes on to the next.
        let Ok(Incoming::Message(m)) = receive(receive_handle, 4, FOREVER) else { panic!("receive failed") };
        assert_eq!(m.data(), b"fit");
        reply(m.reply_handle, b"ok").unwrap();
        // Fill the table but for one slot: a call with a handle needs two (reply + handle).
        let used = server_keep.handles.lock().len();
        let fillers: Vec<Handle> = (used..handle::MAX_HANDLES - 1).map(|_| notification_new().unwrap()).collect();
        assert_eq!(receive(receive_handle, 4, FOREVER).err(), Some(Error::NoSpace));
        assert_eq!(server_keep.handles.lock().len(), handle::MAX_HANDLES - 1, "nothing left behind");
        for filler in fillers {
            close(filler).unwrap();
        }
    });
    let client_thread = in_process(&client, "caller", move || {
        assert_eq!(call(call_handle, b"too long", &[], FOREVER), Err(Error::TooBig));
        assert_eq!(call(call_handle, b"fit", &[], FOREVER).as_deref(), Ok(&b"ok"[..]));
        assert_eq!(call(call_handle, b"x", &[passed], FOREVER), Err(Error::NoSpace));
    });
    sched::join(client_thread);
    sched::join(server_thread);
});

/// Receives into a 16-byte buffer full of 0xEE: what came, and that no byte past it changed.
fn receive_marked(handle: Handle) -> (Message, Vec<u8>) {
    let mut buffer = [0xEEu8; 16];
    let Ok(super::Incoming::Message(m)) = super::receive(handle, &mut buffer, FOREVER) else { panic!("receive failed") };
    assert!(buffer[m.length..].iter().all(|&b| b == 0xEE), "bytes past the request are untouched");
    let data = buffer[..m.length].to_vec();
    (m, data)
}

kernel_test!(ipc_a_request_lands_in_the_receivers_buffer_either_way, {
    // Once copied by the caller into the buffer of a receiver already waiting (the fast path),
    // once by the receiver from a call that was queued before it came: the same bytes, and the
    // handle each carries, which the server can use.
    let (server, receive_handle, client, call_handle) = pair(BADGE);
    let notification = notification::Notification::new();
    let waits = grant(&client, Object::Notification(notification.clone()), Rights::WAIT, 0).unwrap();
    let given = grant(&client, Object::Notification(notification), Rights::SIGNAL.union(Rights::GRANT), 0).unwrap();
    let serve = move |expected: &[u8], answer: &[u8], bits: u64| {
        let (m, data) = receive_marked(receive_handle);
        assert_eq!((data.as_slice(), m.badge, m.transferred().len()), (expected, BADGE, 1));
        signal(m.transferred()[0], bits).unwrap();
        reply(m.reply_handle, answer).unwrap();
    };
    ask_a_waiting_server(&server, "server", move || {
        serve(b"waited", b"1", 0b01);
        sched::sleep_ms(20); // the second call queues meanwhile
        serve(b"queued", b"2", 0b10);
    }, &client, move |_| {
        assert_eq!(call(call_handle, b"waited", &[given], FOREVER).as_deref(), Ok(&b"1"[..]));
        assert_eq!(wait(waits, 100), Ok(0b01));
        assert_eq!(call(call_handle, b"queued", &[given], FOREVER).as_deref(), Ok(&b"2"[..]));
        assert_eq!(wait(waits, 100), Ok(0b10));
    });
});

kernel_test!(ipc_a_waiting_receiver_whose_buffer_is_too_small_waits_on, {
    // The caller gets TooBig at once; the receiver is not even woken, and takes the next call.
    let (server, receive_handle, client, call_handle) = pair(0);
    ask_a_waiting_server(&server, "small-server", move || {
        let Ok(Incoming::Message(m)) = receive(receive_handle, 4, FOREVER) else { panic!("receive failed") };
        assert_eq!(m.data(), b"fit");
        reply(m.reply_handle, b"ok").unwrap();
    }, &client, move |server_thread| {
        let switches = with_debug_row("small-server", |row| row.switches);
        assert_eq!(call(call_handle, b"too long", &[], FOREVER), Err(Error::TooBig));
        assert_eq!(sched::state_of(server_thread), Some(sched::RunState::Blocked), "the receiver still waits");
        assert_eq!(with_debug_row("small-server", |row| row.switches), switches, "the receiver did not run");
        assert_eq!(call(call_handle, b"fit", &[], FOREVER).as_deref(), Ok(&b"ok"[..]));
    });
});

kernel_test!(ipc_reply_lands_in_the_callers_buffer_only, {
    // The reply is copied once, straight into the lent buffer: its bytes, and not one more.
    let (server, receive_handle, client, call_handle) = pair(0);
    let server_thread = in_process(&server, "server", move || {
        let Ok(Incoming::Message(m)) = receive(receive_handle, 8, FOREVER) else { panic!("receive failed") };
        assert_eq!(m.data(), b"question");
        reply(m.reply_handle, b"answer").unwrap();
    });
    let client_thread = in_process(&client, "client", move || {
        let mut reply_buffer = [0xEEu8; 16];
        let length = super::call(call_handle, endpoint::Lent::buffers(b"question", &mut reply_buffer[..8]), &[], FOREVER);
        assert_eq!(length, Ok(6));
        assert_eq!(&reply_buffer[..6], b"answer");
        assert!(reply_buffer[6..].iter().all(|&b| b == 0xEE), "bytes past the reply are untouched");
    });
    sched::join(client_thread);
    sched::join(server_thread);
});

kernel_test!(ipc_a_caller_killed_mid_call_leaves_its_call_to_the_server, {
    // The caller is killed while the server holds its call: the caller leaves at once, the
    // server's late reply finds no one (PeerDied), and the call is not reused meanwhile: a
    // second client's call through the same endpoint gets its own answer.
    static STAGE: AtomicU32 = AtomicU32::new(0);
    let (server, receive_handle, client, call_handle) = pair(1);
    let second = process::create("second", vec![]);
    let second_handle = grant(&second, Object::Endpoint(endpoint_of(&client, call_handle)), Rights::CALL, 2).unwrap();
    let server_thread = in_process(&server, "server", move || {
        let Ok(Incoming::Message(first)) = receive(receive_handle, 16, FOREVER) else { panic!("receive failed") };
        STAGE.store(1, Ordering::SeqCst);
        while STAGE.load(Ordering::SeqCst) < 2 {
            sched::sleep_ms(1);
        }
        assert_eq!(reply(first.reply_handle, b"late"), Err(Error::PeerDied));
        let Ok(Incoming::Message(next)) = receive(receive_handle, 16, FOREVER) else { panic!("receive failed") };
        assert_eq!((next.data(), next.badge), (&b"second"[..], 2));
        reply(next.reply_handle, b"yours").unwrap();
    });
    let client_thread = in_process(&client, "doomed", move || {
        assert!(call(call_handle, b"first", &[], FOREVER).is_err(), "a killed caller leaves its call");
    });
    while STAGE.load(Ordering::SeqCst) < 1 {
        sched::sleep_ms(1);
    }
    process::request_kill(client.id);
    sched::join(client_thread);
    STAGE.store(2, Ordering::SeqCst);
    let second_thread = in_process(&second, "second", move || {
        assert_eq!(call(second_handle, b"second", &[], FOREVER).as_deref(), Ok(&b"yours"[..]));
    });
    sched::join(second_thread);
    sched::join(server_thread);
});

kernel_test!(ipc_a_receiver_killed_mid_call_fails_the_caller, {
    // The server dies holding the call: its reply capability goes with it, and the caller
    // learns PeerDied instead of waiting for ever.
    static RECEIVED: AtomicU32 = AtomicU32::new(0);
    let (server, receive_handle, client, call_handle) = pair(1);
    let server_thread = in_process(&server, "server", move || {
        let Ok(Incoming::Message(_)) = receive(receive_handle, 16, FOREVER) else { panic!("receive failed") };
        RECEIVED.store(1, Ordering::SeqCst);
    });
    let client_thread = in_process(&client, "caller", move || {
        assert_eq!(call(call_handle, b"hello", &[], FOREVER), Err(Error::PeerDied));
    });
    sched::join(server_thread);
    assert_eq!(RECEIVED.load(Ordering::SeqCst), 1);
    process::destroy(server.id);
    sched::join(client_thread);
});

kernel_test!(ipc_a_timeout_racing_a_reply_never_delivers_it_late, {
    // The caller gives up just before the reply: it gets TimedOut, the reply PeerDied, and the
    // caller's next call gets the next reply, not the stale one.
    let (server, receive_handle, client, call_handle) = pair(1);
    let server_thread = in_process(&server, "server", move || {
        let Ok(Incoming::Message(slow)) = receive(receive_handle, 16, FOREVER) else { panic!("receive failed") };
        sched::sleep_ms(20);
        assert_eq!(reply(slow.reply_handle, b"stale"), Err(Error::PeerDied));
        let Ok(Incoming::Message(next)) = receive(receive_handle, 16, FOREVER) else { panic!("receive failed") };
        reply(next.reply_handle, b"fresh").unwrap();
    });
    let client_thread = in_process(&client, "caller", move || {
        assert_eq!(call(call_handle, b"slow", &[], 5), Err(Error::TimedOut));
        assert_eq!(call(call_handle, b"again", &[], FOREVER).as_deref(), Ok(&b"fresh"[..]));
    });
    sched::join(client_thread);
    sched::join(server_thread);
});

/// The endpoint behind a process's handle (a test's set-up, to give another process a copy).
fn endpoint_of(process: &Process, handle: Handle) -> Arc<Endpoint> {
    match &process.handles.lock().get(handle).unwrap().object {
        Object::Endpoint(endpoint) => endpoint.clone(),
        _ => panic!("not an endpoint"),
    }
}

/// `f` of the debug-state row of the thread named `name` (the test reads the block as the
/// host does).
fn with_debug_row<R>(name: &str, f: impl FnOnce(&crate::debug::state::ThreadRow) -> R) -> R {
    // SAFETY: one CPU, and no update is in flight in this thread's own code.
    let state = unsafe { &*core::ptr::addr_of!(crate::debug::state::KWAST_DEBUG_STATE) };
    let wanted = crate::debug::state::copy_name(name);
    f(state.threads.iter().find(|r| r.id != 0 && r.name == wanted).expect("a row for the thread"))
}

fn debug_thread(name: &str) -> (sched::RunState, sched::Wait) {
    with_debug_row(name, |row| (row.state, row.wait))
}

kernel_test!(ipc_waits_and_totals_show_in_the_debug_state, {
    let (server, receive_handle, client, call_handle) = pair(BADGE);
    let endpoint = match &server.handles.lock().get(receive_handle).unwrap().object {
        Object::Endpoint(e) => e.clone(),
        _ => unreachable!(),
    };
    endpoint.set_name("shown");
    let id = endpoint.id;
    let server_thread = in_process(&server, "shown-server", move || {
        let Ok(Incoming::Message(message)) = receive(receive_handle, 64, FOREVER) else { panic!("receive failed") };
        // Its call taken, the caller waits for the reply, no longer for a receiver.
        let (state, wait) = debug_thread("shown-client");
        assert_eq!(state, sched::RunState::Blocked);
        assert_eq!(wait, sched::Wait::on(sched::WaitKind::Reply, id, BADGE));
        reply(message.reply_handle, b"ok").unwrap();
    });
    let client_thread = in_process(&client, "shown-client", move || {
        let (_, wait) = debug_thread("shown-server");
        assert_eq!(wait, sched::Wait::on(sched::WaitKind::Receive, id, 0));
        assert_eq!(call(call_handle, b"ping", &[], 1000).expect("call"), b"ok");
    });
    sched::join(client_thread);
    sched::join(server_thread);
    let state = unsafe { &*core::ptr::addr_of!(crate::debug::state::KWAST_DEBUG_STATE) };
    let row = state.endpoints.iter().find(|r| r.id == id).expect("the endpoint's row");
    assert_eq!(row.name, crate::debug::state::copy_name("shown"));
    assert_eq!((row.calls, row.replies, row.bytes, row.errors, row.peer_died), (1, 1, 6, 0, 0));
});

kernel_test!(ipc_receivers_are_served_longest_first_and_leave_from_anywhere, {
    // Four receivers wait on one endpoint, in order; the second and the last give up (their
    // deadline), leaving from the middle and the end of the list, and a fifth joins after them.
    // Calls then reach the other three, longest waiting first; a receiver on the emptied list
    // is woken by its endpoint's close with PeerDied.
    let server = process::create("server", vec![]);
    let (endpoint, receive_handle) = create_endpoint(&server).unwrap();
    let client = process::create("client", vec![]);
    let call_handle = grant(&client, Object::Endpoint(endpoint.clone()), Rights::CALL, 0).unwrap();
    let waiting = |name: &'static str, timeout_ms: u64, expect: Option<Error>| {
        let thread = in_process(&server, name, move || match receive(receive_handle, 16, timeout_ms) {
            Ok(Incoming::Message(m)) if expect.is_none() => reply(m.reply_handle, name.as_bytes()).unwrap(),
            Err(error) if Some(error) == expect => {}
            _ => panic!("{} did not get {:?}", name, expect),
        });
        while sched::state_of(thread) != Some(sched::RunState::Blocked) {
            sched::give_up_cpu();
        }
        thread
    };
    let first = waiting("first", FOREVER, None);
    let middle = waiting("middle", 20, Some(Error::TimedOut));
    let second = waiting("second", FOREVER, None);
    let end = waiting("end", 20, Some(Error::TimedOut));
    sched::join(middle);
    sched::join(end);
    let third = waiting("third", FOREVER, None);
    let client_thread = in_process(&client, "client", move || {
        for expected in ["first", "second", "third"] {
            assert_eq!(call(call_handle, b"?", &[], 1000).as_deref(), Ok(expected.as_bytes()));
        }
    });
    for thread in [client_thread, first, second, third] {
        sched::join(thread);
    }
    let last = waiting("last", FOREVER, Some(Error::PeerDied));
    endpoint.close();
    sched::join(last);
});
