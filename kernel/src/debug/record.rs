//! What happens, as the block shows it: the event ring and the CPU and IRQ counters.

use super::state::{update, DebugState, Event, EventKind, EVENT_RING, MAX_IRQS};

/// Appends an event stamped with the time stamp counter, overwriting the oldest when full.
pub fn record(kind: EventKind, thread: u32, a: u64, b: u64) {
    update(|s| append(s, kind, thread, a, b));
}

fn append(s: &mut DebugState, kind: EventKind, thread: u32, a: u64, b: u64) {
    let tsc = crate::arch::cpu::rdtsc();
    s.events[(s.events_written % EVENT_RING as u64) as usize] = Event { tsc, kind, thread, a, b };
    s.events_written += 1;
}

/// CPU 0 now runs `thread`.
pub fn set_current(thread: u32) {
    update(|s| s.cpus[0].current_thread = thread);
}

/// A switch on CPU 0: its event and the new current thread in one update, as switches are hot.
pub fn switched(from: u32, to: u32) {
    update(|s| {
        append(s, EventKind::Switch, from, to as u64, 0);
        s.cpus[0].current_thread = to;
    });
}

/// The boot CPU is up; `tsc_per_us` turns event stamps into time.
pub fn cpu_online(tsc_per_us: u64) {
    update(|s| {
        s.cpu_count = 1;
        s.cpus[0].online = 1;
        s.tsc_per_us = tsc_per_us;
    });
}

/// Another CPU, `index`, is online.
pub fn cpu_up(index: usize) {
    update(|s| {
        s.cpus[index].online = 1;
        s.cpu_count = s.cpu_count.max(index as u32 + 1);
    });
}

pub fn cpu_ticks(ticks: u64, idle_ticks: u64) {
    update(|s| {
        s.cpus[0].ticks = ticks;
        s.cpus[0].idle_ticks = idle_ticks;
    });
}

/// An interrupt arrived on IRQ line `line`.
pub fn count_irq(line: usize) {
    if line < MAX_IRQS {
        update(|s| s.irq_counts[line] += 1);
    }
}
