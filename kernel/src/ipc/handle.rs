//! Capabilities: each process has a handle table; a handle names a kernel object with rights.
//! A handle is `(generation << 16) | (index + 1)`: removing an entry bumps its slot's
//! generation, so an old handle to a reused slot is recognised as stale. 0 is never valid.

use super::endpoint::{Call, Endpoint};
use super::error::{Error, Result};
use super::ioport::IoPorts;
use super::irq::IrqLine;
use super::notification::Notification;
use alloc::sync::Arc;
use alloc::vec::Vec;

pub type Handle = u32;

pub const MAX_HANDLES: usize = 256;

/// A new slot's generation.
const FIRST_GENERATION: u16 = 1;

const fn encode(generation: u16, index: usize) -> Handle {
    ((generation as u32) << 16) | (index as u32 + 1)
}

/// The handle the `index`-th capability put into a new table gets: a new server's grants are
/// these (kwast.h: KWAST_GRANT).
pub const fn first_handle(index: usize) -> Handle {
    encode(FIRST_GENERATION, index)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Rights(pub u32);

impl Rights {
    pub const CALL: Rights = Rights(1 << 0);
    pub const RECEIVE: Rights = Rights(1 << 1);
    pub const SIGNAL: Rights = Rights(1 << 2);
    pub const WAIT: Rights = Rights(1 << 3);
    /// May be passed on to another process in a message.
    pub const GRANT: Rights = Rights(1 << 4);
    pub const ACK: Rights = Rights(1 << 5);
    pub const IO: Rights = Rights(1 << 6);

    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
}

#[derive(Clone)]
pub enum Object {
    Endpoint(Arc<Endpoint>),
    Notification(Arc<Notification>),
    Irq(Arc<IrqLine>),
    IoPorts(IoPorts),
    /// The right to answer one received call, once.
    Reply(Arc<Call>),
    /// A process this one started: to ask how it ended.
    Process(crate::process::ProcessId),
    /// Authority to start servers from the boot modules (init's).
    SpawnControl,
    /// Authority to bind any ISA IRQ (init's, to hand drivers their line).
    IrqControl,
    /// Authority over every I/O port (init's, to hand drivers their range).
    PortControl,
}

#[derive(Clone)]
pub struct Capability {
    pub object: Object,
    pub rights: Rights,
    /// Given to the server with every call made through this handle.
    pub badge: u64,
}

struct Slot {
    generation: u16,
    capability: Option<Capability>,
}

#[derive(Default)]
pub struct HandleTable {
    slots: Vec<Slot>,
}

impl HandleTable {
    /// How many handles are live.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.capability.is_some()).count()
    }

    pub fn insert(&mut self, capability: Capability) -> Result<Handle> {
        let index = match self.slots.iter().position(|s| s.capability.is_none()) {
            Some(index) => index,
            None if self.slots.len() < MAX_HANDLES => {
                self.slots.push(Slot { generation: FIRST_GENERATION, capability: None });
                self.slots.len() - 1
            }
            None => return Err(Error::NoSpace),
        };
        let slot = &mut self.slots[index];
        slot.capability = Some(capability);
        Ok(encode(slot.generation, index))
    }

    fn slot(&self, handle: Handle) -> Result<&Slot> {
        let index = (handle & 0xFFFF).checked_sub(1).ok_or(Error::InvalidHandle)? as usize;
        let slot = self.slots.get(index).ok_or(Error::InvalidHandle)?;
        if slot.generation as u32 != handle >> 16 || slot.capability.is_none() {
            return Err(Error::InvalidHandle);
        }
        Ok(slot)
    }

    pub fn get(&self, handle: Handle) -> Result<&Capability> {
        Ok(self.slot(handle)?.capability.as_ref().expect("checked by slot()"))
    }

    /// The capability, if it holds `rights`.
    pub fn get_with(&self, handle: Handle, rights: Rights) -> Result<&Capability> {
        let capability = self.get(handle)?;
        if !capability.rights.contains(rights) {
            return Err(Error::NoRights);
        }
        Ok(capability)
    }

    pub fn remove(&mut self, handle: Handle) -> Result<Capability> {
        self.take_if(handle, |_| true)
    }

    /// Removes the capability if `wanted` (its kind, say) accepts it; otherwise WrongKind, and
    /// it stays. One look at the slot, where a check and a `remove` took two.
    pub fn take_if(&mut self, handle: Handle, wanted: impl FnOnce(&Capability) -> bool) -> Result<Capability> {
        self.slot(handle)?;
        let slot = &mut self.slots[(handle & 0xFFFF) as usize - 1];
        if !wanted(slot.capability.as_ref().expect("checked by slot()")) {
            return Err(Error::WrongKind);
        }
        slot.generation = slot.generation.wrapping_add(1).max(FIRST_GENERATION);
        Ok(slot.capability.take().expect("checked by slot()"))
    }

    /// Drops every capability (the process died).
    pub fn clear(&mut self) -> Vec<Capability> {
        self.slots.iter_mut().filter_map(|s| s.capability.take()).collect()
    }
}
