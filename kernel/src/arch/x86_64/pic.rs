//! The legacy 8259 PICs: moved out of the exception vectors and masked, since the local APIC
//! and the I/O APIC deliver our interrupts. Spurious IRQs they may still raise land at 0xE0+.

use super::port::outb;

pub fn disable() {
    unsafe {
        outb(0x20, 0x11);
        outb(0xA0, 0x11);
        outb(0x21, 0xE0);
        outb(0xA1, 0xE8);
        outb(0x21, 0x04);
        outb(0xA1, 0x02);
        outb(0x21, 0x01);
        outb(0xA1, 0x01);
        outb(0x21, 0xFF);
        outb(0xA1, 0xFF);
    }
}
