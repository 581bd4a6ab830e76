//! The CMOS real-time clock, read once at boot for the wall-clock time.

use super::port::{inb, outb};

fn register(index: u8) -> u8 {
    unsafe {
        outb(0x70, index);
        inb(0x71)
    }
}

fn updating() -> bool {
    register(0x0A) & 0x80 != 0
}

/// Days from 1970-01-01 to the given civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Seconds since the Unix epoch, as the RTC tells it (UTC on QEMU).
pub fn unix_time() -> u64 {
    while updating() {
        core::hint::spin_loop();
    }
    let read = || [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32].map(register);
    // Read until two reads agree: the clock may tick in between.
    let mut values = read();
    loop {
        while updating() {
            core::hint::spin_loop();
        }
        let again = read();
        if again == values {
            break;
        }
        values = again;
    }
    let binary = register(0x0B) & 0x04 != 0;
    let decode = |v: u8| if binary { v as u32 } else { ((v >> 4) * 10 + (v & 0xF)) as u32 };
    let [second, minute, hour, day, month, year, century] = values.map(decode);
    let century = if century == 0 { 20 } else { century };
    let days = days_from_civil((century * 100 + year) as i64, month, day);
    (days * 86400) as u64 + (hour * 3600 + minute * 60 + second) as u64
}
