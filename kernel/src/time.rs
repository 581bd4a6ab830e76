//! Kernel time: timer ticks (TICK_HZ per second, from the APIC timer) and the TSC for finer
//! stamps, calibrated at boot against the PIT.

use core::sync::atomic::{AtomicU64, Ordering};

pub const TICK_HZ: u64 = 1000;

static TICKS: AtomicU64 = AtomicU64::new(0);
static TSC_PER_US: AtomicU64 = AtomicU64::new(1);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static UNIX_AT_BOOT: AtomicU64 = AtomicU64::new(0);

pub fn init(tsc_per_us: u64) {
    TSC_PER_US.store(tsc_per_us.max(1), Ordering::Relaxed);
    TSC_AT_BOOT.store(crate::arch::cpu::rdtsc(), Ordering::Relaxed);
    UNIX_AT_BOOT.store(crate::arch::rtc::unix_time(), Ordering::Relaxed);
}

/// Nanoseconds since the Unix epoch: the RTC at boot plus the TSC since.
pub fn realtime_ns() -> u64 {
    UNIX_AT_BOOT.load(Ordering::Relaxed) * 1_000_000_000 + uptime_us() * 1000
}

pub fn tick() -> u64 {
    TICKS.fetch_add(1, Ordering::Relaxed) + 1
}

pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

pub fn tsc_per_us() -> u64 {
    TSC_PER_US.load(Ordering::Relaxed)
}

/// Microseconds since boot, from the TSC.
pub fn uptime_us() -> u64 {
    (crate::arch::cpu::rdtsc() - TSC_AT_BOOT.load(Ordering::Relaxed)) / tsc_per_us()
}

pub fn ms_to_ticks(ms: u64) -> u64 {
    (ms * TICK_HZ).div_ceil(1000)
}
