//! What happens, as the block shows it: the event ring and the CPU and IRQ counters.

use super::state::{update, update_interrupts_off, DebugState, Event, EventKind, EVENT_RING, MAX_IRQS};
use crate::sched::WaitKind;
use crate::arch::cpu::InterruptGuard;
use crate::sync::IrqMutexGuard;

/// No row in a table (`Slot::index` of an object that found none).
pub const NO_ROW: u32 = u32::MAX;

/// Appends an event stamped with the time stamp counter, overwriting the oldest when full.
/// Always inlined, as `update` is: wakes and signals are on IPC's hot path, and the compiler
/// outlined it once signals recorded events (signal+wait 1018 -> 1088, call+reply 2849 -> 2900).
#[inline(always)]
pub fn record(kind: EventKind, thread: u32, a: u64, b: u64) {
    update(#[inline(always)] |s| append(s, kind, thread, a, b));
}

/// `record` by a caller holding `_held`, an interrupt-safe lock: interrupts are off, so the
/// update need not save, clear and restore the flags again (a signal's event is on IPC's
/// signal+wait path).
#[inline(always)]
pub fn record_holding<T>(_held: &IrqMutexGuard<'_, T>, kind: EventKind, thread: u32, a: u64, b: u64) {
    update_interrupts_off(#[inline(always)] |s| append(s, kind, thread, a, b));
}

/// `record` from the scheduler, under its lock (interrupts off).
#[inline(always)]
pub fn record_interrupts_off(kind: EventKind, thread: u32, a: u64, b: u64) {
    debug_assert!(!x86_64::instructions::interrupts::are_enabled());
    update_interrupts_off(#[inline(always)] |s| append(s, kind, thread, a, b));
}

/// Always inlined: every event is one, and an outlined copy cost each a call (signal+wait +30).
#[inline(always)]
pub(super) fn append(s: &mut DebugState, kind: EventKind, thread: u32, a: u64, b: u64) {
    let tsc = crate::arch::cpu::rdtsc();
    let cpu = this_cpu() as u16;
    s.events[(s.events_written % EVENT_RING as u64) as usize] = Event { tsc, kind, cpu, thread, a, b };
    s.events_written += 1;
}

#[inline(always)]
fn this_cpu() -> usize {
    crate::arch::percpu::index() as usize
}

/// The calling CPU now runs `thread`.
pub fn set_current(thread: u32) {
    let cpu = this_cpu();
    update(|s| s.cpus[cpu].current_thread = thread);
}

/// A switch on the calling CPU: its event, the new current thread and the rows `rows` writes
/// (both threads') in one update, as switches are hot. The scheduler calls it under its
/// lock: interrupts are off.
#[inline(always)]
pub fn switched(from: u32, to: u32, rows: impl FnOnce(&mut DebugState)) {
    let cpu = this_cpu();
    debug_assert!(!x86_64::instructions::interrupts::are_enabled());
    // Always inlined, as the closure below: the scheduler inlines a switch in two places.
    update_interrupts_off(#[inline(always)] |s| {
        append(s, EventKind::Switch, from, to as u64, 0);
        s.cpus[cpu].current_thread = to;
        rows(s);
    });
}

/// The boot CPU is up; `tsc_per_us` turns event stamps into time.
pub fn cpu_online(tsc_per_us: u64) {
    update(|s| {
        s.cpu_count = 1;
        s.cpus[0].online = 1;
        s.tsc_per_us = tsc_per_us;
        s.ticks_per_second = crate::time::TICK_HZ;
    });
}

/// Another CPU, `index`, is online.
pub fn cpu_up(index: usize) {
    update(|s| {
        s.cpus[index].online = 1;
        s.cpu_count = s.cpu_count.max(index as u32 + 1);
    });
}

/// The calling CPU's timer ticks and the idle ones among them.
pub fn cpu_ticks(ticks: u64, idle_ticks: u64) {
    let cpu = this_cpu();
    update(|s| {
        s.cpus[cpu].ticks = ticks;
        s.cpus[cpu].idle_ticks = idle_ticks;
    });
}

/// An interrupt arrived on IRQ line `line`.
pub fn count_irq(line: usize) {
    if line < MAX_IRQS {
        update(|s| s.irqs[line].count += 1);
    }
}

/// IRQ `line` now signals `notification` (0: unbound), bound by process `owner`.
pub fn irq_bound(line: usize, notification: u32, owner: u32) {
    if line < MAX_IRQS {
        update(|s| {
            s.irqs[line].notification = notification;
            s.irqs[line].owner = owner;
        });
    }
}

pub fn irq_acknowledged(line: usize) {
    if line < MAX_IRQS {
        let tsc = crate::arch::cpu::rdtsc();
        update(|s| {
            s.irqs[line].acknowledged += 1;
            s.irqs[line].acknowledged_tsc = tsc;
        });
    }
}

/// An IPC call or reply (`kind`) of `bytes` on endpoint `endpoint`: its event, and the
/// endpoint's totals in row `row` (if that row is still the endpoint's), in one update.
/// Always inlined, as `record` (outlined by the compiler once, call+reply 2859 -> 2904). By
/// a kernel call that keeps interrupts off with `_irq`, as IPC does.
#[inline(always)]
pub fn ipc(_irq: &InterruptGuard, kind: EventKind, thread: u32, endpoint: u32, row: u32, bytes: usize) {
    update_interrupts_off(#[inline(always)] |s| account_ipc(s, kind, thread, endpoint, row, bytes));
}

/// `ipc` by a caller that holds a lock (the endpoint's), so interrupts are off already.
#[inline(always)]
pub fn ipc_holding<T>(_held: &IrqMutexGuard<'_, T>, kind: EventKind, thread: u32, endpoint: u32, row: u32, bytes: usize) {
    update_interrupts_off(#[inline(always)] |s| account_ipc(s, kind, thread, endpoint, row, bytes));
}

#[inline(always)]
fn account_ipc(s: &mut DebugState, kind: EventKind, thread: u32, endpoint: u32, row: u32, bytes: usize) {
    append(s, kind, thread, endpoint as u64, bytes as u64);
    if let Some(r) = s.endpoints.get_mut(row as usize).filter(|r| r.id == endpoint) {
        match kind {
            EventKind::IpcCall => r.calls += 1,
            _ => r.replies += 1,
        }
        r.bytes += bytes as u64;
    }
}

/// A receiver took the call of `thread`, whose row is `row`: it now waits for the reply. The
/// id check keeps a row reused meanwhile (the caller gone) untouched. Always inlined, as `ipc`.
#[inline(always)]
pub fn reply_pending(_irq: &InterruptGuard, row: u32, thread: u32) {
    update_interrupts_off(|s| {
        if let Some(r) = s.threads.get_mut(row as usize).filter(|r| r.id == thread) {
            r.wait.kind = WaitKind::Reply;
        }
    });
}
