//! In-kernel tests of what the block shows: server rows over many servers' lives, and a
//! signal's event followed by its waiter's wake.

use super::state::{copy_name, DebugState, EventKind, ServerRow, ServerState, EVENT_RING, KWAST_DEBUG_STATE, MAX_SERVERS};
use crate::ipc::notification::Notification;
use crate::kernel_test;
use crate::process;
use crate::sched::{self, Priority, RunState};
use alloc::format;
use alloc::vec;

/// The block, read as the host reads it: one CPU, and no update is in flight in this thread.
fn block() -> &'static DebugState {
    unsafe { &*core::ptr::addr_of!(KWAST_DEBUG_STATE) }
}

fn server_row(name: &str) -> Option<&'static ServerRow> {
    let name = copy_name(name);
    block().servers.iter().find(|r| r.id != 0 && r.name == name)
}

kernel_test!(server_rows_outlast_the_table, {
    let kept = process::create("kept", vec![]);
    // Servers of as many names as the table has rows and more, each ending before the next
    // starts (as a supervisor's short jobs do): every one gets a row.
    for i in 0..MAX_SERVERS as u32 + 8 {
        let name = format!("job-{}", i);
        let job = process::create(&name, vec![]);
        job.debug_row.as_ref().expect("a row, the ended servers' being free to take").ended(Some(i), "");
        process::destroy(job.id);
        let row = server_row(&name).expect("its row shown");
        assert_eq!((row.id, row.state, row.exit_code, row.restarts), (job.id, ServerState::Exited, i, 0));
    }
    assert_eq!(block().servers_dropped, 0);
    // The rows taken were those that ended longest ago; the running server keeps its own.
    assert!(server_row("job-0").is_none() && server_row("job-8").is_none() && server_row("job-9").is_some());
    assert_eq!(server_row("kept").map(|r| (r.id, r.state)), Some((kept.id, ServerState::Running)));
    // A restart still takes its predecessor's row, keeping how it ended.
    let again = process::create("job-39", vec![]);
    let row = server_row("job-39").unwrap();
    assert_eq!((row.id, row.state, row.exit_code, row.restarts), (again.id, ServerState::Running, 39, 1));
    // With every row a running server's, the next server is counted, not shown.
    let running: vec::Vec<_> = (0..MAX_SERVERS - 2).map(|i| process::create(&format!("long-{}", i), vec![])).collect();
    assert!(running.iter().all(|p| p.debug_row.is_some()));
    let extra = process::create("extra", vec![]);
    assert!(extra.debug_row.is_none() && server_row("extra").is_none());
    assert_eq!(block().servers_dropped, 1);
    assert!(server_row("kept").is_some() && server_row("job-39").is_some());
});

kernel_test!(a_signal_is_recorded_before_the_wakes_it_causes, {
    let notification = Notification::new();
    let waiting = notification.clone();
    let waiter = sched::spawn("sig-waiter", Priority::NORMAL, move || {
        assert_eq!(waiting.wait(&crate::arch::cpu::InterruptGuard::new(), None, None), Ok(0b101));
    })
    .unwrap();
    while sched::state_of(waiter) != Some(RunState::Blocked) {
        sched::give_up_cpu();
    }
    notification.signal(0b101);
    let state = block();
    let newest = state.events_written;
    let event = |number: u64| &state.events[(number % EVENT_RING as u64) as usize];
    let signal = (newest.saturating_sub(8)..newest).rev().find(|&n| event(n).kind == EventKind::Signal).expect("a Signal event");
    let (signal_event, next) = (event(signal), event(signal + 1));
    assert_eq!((signal_event.thread, signal_event.a, signal_event.b), (sched::current_id(), notification.id as u64, 0b101));
    assert_eq!((next.kind, next.thread, next.a), (EventKind::Wake, waiter, notification.id as u64));
    sched::join(waiter);
});
