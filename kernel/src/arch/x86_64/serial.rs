//! 16550 UARTs, polled: COM1 is the kernel console until a console server owns the line; COM2,
//! when the machine has one, is the workbench's debug port (`debug::port`).

use super::port::{inb, outb};

const COM1: u16 = 0x3f8;
pub const COM2: u16 = 0x2f8;
const LINE_STATUS: u16 = 5;
const SCRATCH: u16 = 7;
const DATA_READY: u8 = 1 << 0;
const TRANSMIT_EMPTY: u8 = 1 << 5;

pub struct Serial {
    base: u16,
}

impl Serial {
    /// COM1 at 115200 baud, 8N1, FIFOs on, UART interrupts off.
    pub fn init() -> Serial {
        Serial::open(COM1)
    }

    /// The UART at `base` set up as COM1 is, if the machine has one there: an absent one reads
    /// all ones, so its scratch register does not keep what is written to it.
    pub fn probe(base: u16) -> Option<Serial> {
        unsafe {
            outb(base + SCRATCH, 0x5a);
            if inb(base + SCRATCH) != 0x5a {
                return None;
            }
        }
        Some(Serial::open(base))
    }

    fn open(base: u16) -> Serial {
        unsafe {
            outb(base + 1, 0x00);
            outb(base + 3, 0x80);
            outb(base, 0x01);
            outb(base + 1, 0x00);
            outb(base + 3, 0x03);
            outb(base + 2, 0xC7);
            outb(base + 4, 0x03);
        }
        Serial { base }
    }

    /// The next byte received, if one is waiting.
    pub fn read_byte(&mut self) -> Option<u8> {
        unsafe { (inb(self.base + LINE_STATUS) & DATA_READY != 0).then(|| inb(self.base)) }
    }

    fn write_byte(&mut self, byte: u8) {
        unsafe {
            while inb(self.base + LINE_STATUS) & TRANSMIT_EMPTY == 0 {
                core::hint::spin_loop();
            }
            outb(self.base, byte);
        }
    }
}

impl core::fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}
