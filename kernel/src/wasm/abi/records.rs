//! The ABI's records and numbers, declared once. servers/include/kwast.h spells them for C;
//! tests/test_abi.py checks every number and field offset there against this module's DWARF.

use crate::ipc::endpoint::{MAX_MESSAGE, MAX_TRANSFER};
use crate::ipc::handle::{first_handle, Handle, Object, Rights};
use crate::ipc::notification::SIGNAL_BITS;
use crate::ipc::{Incoming, FOREVER};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `kwast_message`: what `kwast_receive` reports besides the data. `IntoBytes` proves at
/// compile time that it has no padding, so its bytes can go to the guest as they are.
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub struct KwastMessage {
    pub badge: u64,
    pub signals: u64,
    pub kind: MessageKind,
    pub length: u32,
    pub reply: Handle,
    pub transferred_count: u32,
    pub transferred: [Handle; MAX_TRANSFER],
}

/// `kwast_message.kind`: kwast.h's KWAST_MESSAGE and KWAST_SIGNALS.
#[repr(u32)]
#[derive(IntoBytes, Immutable)]
pub enum MessageKind {
    Message = 0,
    Signals = 1,
}

impl KwastMessage {
    /// The record for what a receive got; the data itself goes to the buffer.
    pub fn of(incoming: &Incoming) -> KwastMessage {
        let mut record = KwastMessage {
            badge: 0,
            signals: 0,
            kind: MessageKind::Message,
            length: 0,
            reply: 0,
            transferred_count: 0,
            transferred: [0; MAX_TRANSFER],
        };
        match incoming {
            Incoming::Signals(bits) => {
                record.kind = MessageKind::Signals;
                record.signals = *bits;
            }
            Incoming::Message(message) => {
                record.badge = message.badge;
                record.length = message.length as u32;
                record.reply = message.reply_handle;
                for (slot, &handle) in record.transferred.iter_mut().zip(message.transferred()) {
                    *slot = handle;
                    record.transferred_count += 1;
                }
            }
        }
        record
    }
}

/// `struct kwast_limits`: read from the guest, so any bytes are a valid value (`FromBytes`).
#[repr(C)]
#[derive(FromBytes, KnownLayout, Immutable)]
pub struct KwastLimits {
    pub memory_bytes: u64,
    pub watchdog_ms: u64,
    /// 1 + the CPU the server runs on, for good; 0: where the scheduler places it.
    pub cpu: u64,
}

/// Handles one spawn may give the new server.
pub const MAX_GRANTS: usize = 16;

/// init's grants, in the order it gets them: KWAST_GRANT(0) is the first.
pub const INIT_GRANTS: [Object; 3] = [Object::SpawnControl, Object::IrqControl, Object::PortControl];

/// The ABI's numbers for the workbench. kwast.h names each `KWAST_` and its field path in
/// capitals, joined by `_` (`right.call` is KWAST_RIGHT_CALL); `grant[i]` is KWAST_GRANT(i).
/// Error codes are `ipc::error::Error`'s and the message kinds `MessageKind`'s enumerators.
#[repr(C)]
pub struct AbiNumbers {
    pub max_message: u32,
    pub max_transfer: u32,
    pub signal_bits: u64,
    pub forever: u64,
    pub right: RightBits,
    pub grant: [Handle; MAX_GRANTS],
    pub init: InitHandles,
    /// `kwast_limits.cpu` for each CPU a config may have: `cpu[i]` is KWAST_CPU(i).
    pub cpu: [u64; CPU_NUMBERS],
}

/// CPUs a config may give a machine (workbench/config.py).
const CPU_NUMBERS: usize = 64;

/// 0 in `kwast_limits.cpu` leaves the placement to the scheduler: CPU n is n + 1.
const fn cpu_numbers() -> [u64; CPU_NUMBERS] {
    let mut numbers = [0; CPU_NUMBERS];
    let mut i = 0;
    while i < CPU_NUMBERS {
        numbers[i] = i as u64 + 1;
        i += 1;
    }
    numbers
}

#[repr(C)]
pub struct RightBits {
    pub call: Rights,
    pub receive: Rights,
    pub signal: Rights,
    pub wait: Rights,
    pub grant: Rights,
    pub ack: Rights,
    pub io: Rights,
}

/// init's handles for `INIT_GRANTS`.
#[repr(C)]
pub struct InitHandles {
    pub spawn: Handle,
    pub irqs: Handle,
    pub ports: Handle,
}

/// A new server's grants are the first handles of its new table.
const fn grant_handles() -> [Handle; MAX_GRANTS] {
    let mut handles = [0; MAX_GRANTS];
    let mut i = 0;
    while i < MAX_GRANTS {
        handles[i] = first_handle(i);
        i += 1;
    }
    handles
}

/// init's handle for `wanted`, one of `INIT_GRANTS` (a build error if it is not there).
const fn init_handle(wanted: &Object) -> Handle {
    let mut i = 0;
    loop {
        match (&INIT_GRANTS[i], wanted) {
            (Object::SpawnControl, Object::SpawnControl)
            | (Object::IrqControl, Object::IrqControl)
            | (Object::PortControl, Object::PortControl) => return first_handle(i),
            _ => i += 1,
        }
    }
}

#[no_mangle]
#[used]
pub static KWAST_ABI: AbiNumbers = AbiNumbers {
    max_message: MAX_MESSAGE as u32,
    max_transfer: MAX_TRANSFER as u32,
    signal_bits: SIGNAL_BITS,
    forever: FOREVER,
    right: RightBits {
        call: Rights::CALL,
        receive: Rights::RECEIVE,
        signal: Rights::SIGNAL,
        wait: Rights::WAIT,
        grant: Rights::GRANT,
        ack: Rights::ACK,
        io: Rights::IO,
    },
    grant: grant_handles(),
    init: InitHandles {
        spawn: init_handle(&Object::SpawnControl),
        irqs: init_handle(&Object::IrqControl),
        ports: init_handle(&Object::PortControl),
    },
    cpu: cpu_numbers(),
};
