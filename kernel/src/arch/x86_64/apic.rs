//! The local APIC (xAPIC, memory-mapped at its default base, inside the identity map): its
//! timer drives preemption, calibrated once against the PIT.

use super::pit;
use super::trap::{SPURIOUS_VECTOR, TIMER_VECTOR};
use core::sync::atomic::{AtomicU64, Ordering};

const BASE: usize = 0xFEE0_0000;
const ID: usize = 0x20;
const EOI: usize = 0xB0;
const SPURIOUS: usize = 0xF0;
const LVT_TIMER: usize = 0x320;
const TIMER_INITIAL: usize = 0x380;
const TIMER_CURRENT: usize = 0x390;
const TIMER_DIVIDE: usize = 0x3E0;
const ICR_LOW: usize = 0x300;
const ICR_HIGH: usize = 0x310;
const ICR_PENDING: u32 = 1 << 12;
const ICR_INIT: u32 = 0b101 << 8 | 1 << 14;
const ICR_STARTUP: u32 = 0b110 << 8 | 1 << 14;
const ICR_FIXED: u32 = 1 << 14;

const ENABLE: u32 = 1 << 8;
const TIMER_PERIODIC: u32 = 1 << 17;
const TIMER_MASKED: u32 = 1 << 16;
const DIVIDE_BY_16: u32 = 0b0011;

static TIMER_TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);

fn read(register: usize) -> u32 {
    unsafe { core::ptr::read_volatile((BASE + register) as *const u32) }
}

fn write(register: usize, value: u32) {
    unsafe { core::ptr::write_volatile((BASE + register) as *mut u32, value) }
}

pub fn id() -> u32 {
    read(ID) >> 24
}

pub fn end_of_interrupt() {
    write(EOI, 0);
}

/// Enables this CPU's APIC.
pub fn enable() {
    write(SPURIOUS, ENABLE | SPURIOUS_VECTOR as u32);
}

fn send(apic_id: u32, command: u32) {
    // Two writes: an interrupt sending its own IPI between them would redirect ours.
    let _irq = super::cpu::InterruptGuard::new();
    write(ICR_HIGH, apic_id << 24);
    write(ICR_LOW, command);
    while read(ICR_LOW) & ICR_PENDING != 0 {
        core::hint::spin_loop();
    }
}

/// INIT to the CPU with local APIC id `apic_id`: it waits for a STARTUP.
pub fn send_init(apic_id: u32) {
    send(apic_id, ICR_INIT);
}

/// STARTUP: the CPU starts in real mode at `page` * 4096.
pub fn send_startup(apic_id: u32, page: u8) {
    send(apic_id, ICR_STARTUP | page as u32);
}

/// Interrupt `vector` on the CPU with local APIC id `apic_id`.
pub fn send_ipi(apic_id: u32, vector: u8) {
    send(apic_id, ICR_FIXED | vector as u32);
}


/// Enables the APIC and measures its timer and the TSC over 10 ms of PIT time.
/// Returns TSC ticks per microsecond.
pub fn init() -> u64 {
    enable();
    write(TIMER_DIVIDE, DIVIDE_BY_16);
    write(LVT_TIMER, TIMER_MASKED);

    const CALIBRATION_MS: u64 = 10;
    let pit_ticks = (pit::FREQUENCY_HZ * CALIBRATION_MS / 1000) as u16;
    write(TIMER_INITIAL, u32::MAX);
    let tsc_before = super::cpu::rdtsc();
    pit::wait_ticks(pit_ticks);
    let tsc_after = super::cpu::rdtsc();
    let elapsed = u32::MAX - read(TIMER_CURRENT);
    write(TIMER_INITIAL, 0);

    TIMER_TICKS_PER_MS.store(elapsed as u64 / CALIBRATION_MS, Ordering::Relaxed);
    (tsc_after - tsc_before) / (CALIBRATION_MS * 1000)
}

/// Starts the periodic timer interrupt at `hz`.
pub fn start_timer(hz: u64) {
    write(TIMER_DIVIDE, DIVIDE_BY_16); // as calibrated (another CPU's APIC starts at its reset value)
    let count = TIMER_TICKS_PER_MS.load(Ordering::Relaxed) * 1000 / hz;
    write(LVT_TIMER, TIMER_PERIODIC | TIMER_VECTOR as u32);
    write(TIMER_INITIAL, count.max(1) as u32);
}

pub fn timer_ticks_per_ms() -> u64 {
    TIMER_TICKS_PER_MS.load(Ordering::Relaxed)
}
