//! COM1 16550 UART, polled: the kernel console until a console server owns the line.

use super::port::{inb, outb};

const COM1: u16 = 0x3f8;
const LINE_STATUS: u16 = COM1 + 5;
const TRANSMIT_EMPTY: u8 = 1 << 5;

pub struct Serial;

impl Serial {
    /// 115200 baud, 8N1, FIFOs on, UART interrupts off.
    pub fn init() -> Serial {
        unsafe {
            outb(COM1 + 1, 0x00);
            outb(COM1 + 3, 0x80);
            outb(COM1, 0x01);
            outb(COM1 + 1, 0x00);
            outb(COM1 + 3, 0x03);
            outb(COM1 + 2, 0xC7);
            outb(COM1 + 4, 0x03);
        }
        Serial
    }

    fn write_byte(&mut self, byte: u8) {
        unsafe {
            while inb(LINE_STATUS) & TRANSMIT_EMPTY == 0 {
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
