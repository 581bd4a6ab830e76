//! 16550 UARTs, polled: COM1 is the kernel console until a console server owns the line; COM2,
//! when the machine has one, is the workbench's debug port (`debug::port`), only read.
//!
//! The console's data port is an immediate in every `out` that writes it: `kwast-bench profile`
//! finds console bytes in QEMU's log by it (and by names with "serial" but not "init").

use super::port::{inb, outb};

const COM1: u16 = 0x3f8;
pub const COM2: u16 = 0x2f8;
const LINE_STATUS: u16 = 5;
const SCRATCH: u16 = 7;
const DATA_READY: u8 = 1 << 0;
const TRANSMIT_EMPTY: u8 = 1 << 5;

/// 115200 baud, 8N1, FIFOs on and emptied, UART interrupts off.
fn init_uart(base: u16) {
    unsafe {
        outb(base + 1, 0x00);
        outb(base + 3, 0x80);
        outb(base, 0x01);
        outb(base + 1, 0x00);
        outb(base + 3, 0x03);
        outb(base + 2, 0xC7);
        outb(base + 4, 0x03);
    }
}

/// COM1, the console.
pub struct Serial;

impl Serial {
    pub fn init() -> Serial {
        init_uart(COM1);
        Serial
    }

    fn write_byte(&mut self, byte: u8) {
        unsafe {
            while inb(COM1 + LINE_STATUS) & TRANSMIT_EMPTY == 0 {
                core::hint::spin_loop();
            }
            outb(COM1, byte);
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

/// A UART the kernel only reads.
pub struct Receiver {
    base: u16,
}

impl Receiver {
    /// The UART at `base`, set up, if the machine has one there: an absent one reads all ones,
    /// so its scratch register does not keep what is written to it.
    pub fn init_if_present(base: u16) -> Option<Receiver> {
        unsafe {
            outb(base + SCRATCH, 0x5a);
            if inb(base + SCRATCH) != 0x5a {
                return None;
            }
        }
        init_uart(base);
        Some(Receiver { base })
    }

    /// The next byte received, if one is waiting.
    pub fn read_byte(&mut self) -> Option<u8> {
        unsafe { (inb(self.base + LINE_STATUS) & DATA_READY != 0).then(|| inb(self.base)) }
    }
}
