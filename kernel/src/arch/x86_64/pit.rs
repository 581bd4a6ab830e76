//! The PIT (8254), used once: as the known clock the APIC timer and the TSC are measured against.

use super::port::{inb, outb};

pub const FREQUENCY_HZ: u64 = 1_193_182;

/// Busy-waits `ticks` PIT ticks (at most 65535) on channel 2, whose output we can poll.
pub fn wait_ticks(ticks: u16) {
    unsafe {
        // Gate channel 2 on, speaker off; mode 0 (terminal count), binary, low then high byte.
        outb(0x61, (inb(0x61) & !0x02) | 0x01);
        outb(0x43, 0b1011_0000);
        outb(0x42, ticks as u8);
        outb(0x42, (ticks >> 8) as u8);
        while inb(0x61) & 0x20 == 0 {
            core::hint::spin_loop();
        }
    }
}
