//! The block's tables of live kernel objects (threads, endpoints): a row is claimed when the
//! object is made and freed when its `Slot` is dropped with it. A free row is one whose id is 0:
//! claiming looks for that, freeing writes it, and readers skip such rows. No other mark exists.

use super::state::{update, update_interrupts_off, DebugState, EndpointRow, ThreadRow, FREE_ENDPOINT, FREE_THREAD};
use core::marker::PhantomData;

pub trait Row: Sized {
    const FREE: Self;
    fn id(&self) -> u32;
    /// The table's rows, its count of rows ever used and its count of objects left out.
    fn table(state: &mut DebugState) -> (&mut [Self], &mut u32, &mut u32);
}

impl Row for ThreadRow {
    const FREE: Self = FREE_THREAD;
    fn id(&self) -> u32 {
        self.id
    }
    fn table(s: &mut DebugState) -> (&mut [Self], &mut u32, &mut u32) {
        (&mut s.threads, &mut s.thread_count, &mut s.threads_dropped)
    }
}

impl Row for EndpointRow {
    const FREE: Self = FREE_ENDPOINT;
    fn id(&self) -> u32 {
        self.id
    }
    fn table(s: &mut DebugState) -> (&mut [Self], &mut u32, &mut u32) {
        (&mut s.endpoints, &mut s.endpoint_count, &mut s.endpoints_dropped)
    }
}

/// One object's row, held by the object: dropping it frees the row.
pub struct Slot<R: Row> {
    index: usize,
    row: PhantomData<fn() -> R>,
}

impl<R: Row> Slot<R> {
    /// Claims a free row and fills it with `row`, whose id must not be 0. None when the table is
    /// full: the object is counted as left out and simply not shown.
    pub fn claim(row: R) -> Option<Slot<R>> {
        update(|s| {
            let (rows, used, dropped) = R::table(s);
            let Some(index) = rows.iter().position(|r| r.id() == 0) else {
                *dropped += 1;
                return None;
            };
            rows[index] = row;
            *used = (*used).max(index as u32 + 1);
            Some(Slot { index, row: PhantomData })
        })
    }

    /// Always inlined: every switch publishes threads' rows through it (the compiler outlined
    /// it once the debug module grew, and every switch paid a call).
    #[inline(always)]
    pub fn update(&self, f: impl FnOnce(&mut R)) {
        update(|s| f(&mut R::table(s).0[self.index]));
    }

    /// `update` for a caller that has interrupts off already (the scheduler, under its lock):
    /// spares saving and restoring the flags on every switch and wake.
    #[inline(always)]
    pub fn update_interrupts_off(&self, f: impl FnOnce(&mut R)) {
        debug_assert!(!x86_64::instructions::interrupts::are_enabled());
        update_interrupts_off(|s| f(&mut R::table(s).0[self.index]));
    }

    /// Writes the row inside an update the caller is making (`debug::switched`'s).
    #[inline(always)]
    pub fn write_in(&self, s: &mut DebugState, f: impl FnOnce(&mut R)) {
        f(&mut R::table(s).0[self.index]);
    }

    /// Its index in the table, for the hot paths of `record` that take a row by index.
    pub fn index(&self) -> u32 {
        self.index as u32
    }
}

impl<R: Row> Drop for Slot<R> {
    fn drop(&mut self) {
        update(|s| R::table(s).0[self.index] = R::FREE);
    }
}
