//! The debug port: requests from the workbench arriving on COM2, for runs QEMU records. A
//! debugger's write into guest memory is not among the inputs QEMU's record/replay logs, and a
//! stop to make it at a known instruction can itself not replay (workbench/replay.py); bytes a
//! UART receives are logged, so a replay receives them at the same instruction.
//!
//! A frame (`WriteFrame`, then its bytes) asks for a write into the kernel's own data, made at
//! the next poll, as a debugger would make it. Receive only: QEMU replays a UART's output only
//! into a file.

use crate::arch::serial::{Receiver, COM2};
use crate::sync::IrqMutex;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, Ordering};

/// Where the port is and what a frame may hold, for the workbench (read from the ELF).
#[repr(C)]
pub struct DebugPort {
    /// The UART's I/O base.
    pub base: u16,
    /// A write frame's first byte.
    pub write_tag: u8,
    /// The longest write a frame may ask for.
    pub max_write: u16,
    /// The most bytes the workbench may send ahead of `bytes_taken`: the UART's receive FIFO.
    /// (Recorded, QEMU hands the guest received bytes later than it takes them in, and drops
    /// what overflows the FIFO meanwhile.)
    pub window: u16,
    /// Bytes received and handled so far: a frame's write is made when its last byte counts.
    pub bytes_taken: AtomicU32,
}

#[no_mangle]
#[used]
pub static KWAST_DEBUG_PORT: DebugPort = DebugPort {
    base: COM2,
    write_tag: b'W',
    max_write: MAX_WRITE as u16,
    window: 16,
    bytes_taken: AtomicU32::new(0),
};

/// A write frame's header, followed by `length` bytes; integers little-endian.
#[repr(C)]
pub struct WriteFrame {
    pub tag: u8,
    pub address: [u8; 8],
    pub length: [u8; 2],
}

const HEADER: usize = size_of::<WriteFrame>();
// The tag leads: the poll finds a frame's start by it.
const _: () = assert!(offset_of!(WriteFrame, tag) == 0);
const MAX_WRITE: usize = 64;

/// Polls (10 ms of guest time each) a frame begun may wait for its next byte before it is
/// dropped: a frame cut short (bytes sent before `init` emptied the UART) must not swallow the
/// next one.
const PATIENCE: u32 = 10;

struct Port {
    uart: Option<Receiver>,
    frame: [u8; HEADER + MAX_WRITE],
    filled: usize,
    idle_polls: u32,
}

static PORT: IrqMutex<Port> =
    IrqMutex::new(Port { uart: None, frame: [0; HEADER + MAX_WRITE], filled: 0, idle_polls: 0 });

/// At boot, before the workbench can have sent anything: setting the UART up empties it.
pub fn init() {
    PORT.lock().uart = Receiver::init_if_present(KWAST_DEBUG_PORT.base);
}

/// From the poll: takes what the port received and makes each complete frame's write.
pub fn poll() {
    let mut port = PORT.lock();
    if port.filled > 0 {
        port.idle_polls += 1;
        if port.idle_polls > PATIENCE {
            crate::kprintln!("debug port: an incomplete frame of {} bytes dropped", port.filled);
            port.filled = 0;
        }
    }
    while let Some(byte) = port.uart.as_mut().and_then(Receiver::read_byte) {
        port.idle_polls = 0;
        take(&mut port, byte);
        KWAST_DEBUG_PORT.bytes_taken.fetch_add(1, Ordering::Release);
    }
}

fn take(port: &mut Port, byte: u8) {
    if port.filled == 0 && byte != KWAST_DEBUG_PORT.write_tag {
        return; // between frames: not the start of one
    }
    port.frame[port.filled] = byte;
    port.filled += 1;
    if port.filled < HEADER {
        return;
    }
    // SAFETY: the buffer holds a whole header; the struct is bytes only.
    let header = unsafe { core::ptr::read_unaligned(port.frame.as_ptr() as *const WriteFrame) };
    let length = u16::from_le_bytes(header.length) as usize;
    if length > MAX_WRITE {
        crate::kprintln!("debug port: a write of {} bytes refused (at most {})", length, MAX_WRITE);
    } else if port.filled == HEADER + length {
        write(u64::from_le_bytes(header.address), &port.frame[HEADER..HEADER + length]);
    } else {
        return;
    }
    port.filled = 0;
}

/// Writes `bytes` at `address` if they lie in the kernel's own data (its statics: the control
/// and state blocks), where a write cannot fault.
fn write(address: u64, bytes: &[u8]) {
    extern "C" {
        static __writable_start: u8;
        static __kernel_end: u8;
    }
    let data = (&raw const __writable_start) as u64..(&raw const __kernel_end) as u64;
    let end = address.checked_add(bytes.len() as u64);
    if !data.contains(&address) || end.is_none_or(|end| end > data.end) {
        crate::kprintln!("debug port: a write of {} bytes at {:#x} refused: outside the kernel's data {:#x}..{:#x}",
                         bytes.len(), address, data.start, data.end);
        return;
    }
    for (offset, byte) in bytes.iter().enumerate() {
        // Volatile: the kernel reads these statics as memory another agent writes.
        unsafe { core::ptr::write_volatile((address as *mut u8).add(offset), *byte) };
    }
}
