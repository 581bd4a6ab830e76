//! Thread stacks, each in its own slot of the stacks region with the slot's lower part left
//! unmapped: running off the bottom faults in a guard page instead of corrupting memory.

use super::paging::{map_fresh, unmap_and_free, MapError, STACKS_BASE};
use crate::sync::IrqMutex;

const SLOT_SIZE: u64 = 4 << 20;
const SLOTS: usize = 256;
/// Largest stack; the rest of the slot (at least 64 KiB) is guard.
pub const MAX_STACK: u64 = SLOT_SIZE - (64 << 10);

/// The mapped size of each slot's stack; 0 for a free slot.
static SLOT_SIZES: IrqMutex<[u64; SLOTS]> = IrqMutex::new([0; SLOTS]);

pub struct Stack {
    pub slot: usize,
    pub size: u64,
}

fn slot_top(slot: usize) -> u64 {
    STACKS_BASE + (slot as u64 + 1) * SLOT_SIZE
}

impl Stack {
    pub fn top(&self) -> u64 {
        slot_top(self.slot)
    }
}

#[derive(Debug)]
pub enum StackError {
    NoSlot,
    TooBig,
    OutOfMemory,
}

pub fn allocate(size: u64) -> Result<Stack, StackError> {
    let size = size.next_multiple_of(super::frame::FRAME_SIZE);
    if size > MAX_STACK {
        return Err(StackError::TooBig);
    }
    let slot = {
        let mut sizes = SLOT_SIZES.lock();
        let slot = sizes.iter().position(|&s| s == 0).ok_or(StackError::NoSlot)?;
        sizes[slot] = size;
        slot
    };
    let stack = Stack { slot, size };
    match map_fresh(stack.top() - size, size) {
        Ok(()) => Ok(stack),
        Err(MapError::OutOfMemory | MapError::AlreadyMapped) => Err(StackError::OutOfMemory), // dropping `stack` frees it
    }
}

/// A stack is freed (unmapped, its frames returned, its slot reusable) when its thread is reaped.
impl Drop for Stack {
    fn drop(&mut self) {
        unmap_and_free(self.top() - self.size, self.size);
        SLOT_SIZES.lock()[self.slot] = 0;
    }
}

/// The slot whose guard area holds `address`, if any. Called from the page-fault report, so it
/// does not wait for a lock the faulting code may hold.
pub fn guard_slot(address: u64) -> Option<usize> {
    let slot = (address.checked_sub(STACKS_BASE)? / SLOT_SIZE) as usize;
    let sizes = SLOT_SIZES.try_lock()?;
    let size = *sizes.get(slot)?;
    (size != 0 && address < slot_top(slot) - size).then_some(slot)
}
