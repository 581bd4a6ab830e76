//! The I/O APIC at its default base: routes ISA IRQs to vectors IRQ_BASE + irq on this CPU.
//! An ISA IRQ reaches the input of its number, polarity and trigger as ISA's (active high,
//! edge), unless the MADT overrides it (QEMU's pc machine: IRQ 0 at input 2; PCI's IRQs level).

use super::acpi::IrqOverride;
use super::trap::IRQ_BASE;
use core::sync::atomic::{AtomicU32, Ordering};

const ACTIVE_LOW: u32 = 1 << 13;
const LEVEL: u32 = 1 << 15;
const ISA_IRQS: usize = 16;

/// Per ISA IRQ: its input (low byte) and its polarity and trigger bits, as the MADT says.
static WIRING: [AtomicU32; ISA_IRQS] = [const { AtomicU32::new(u32::MAX) }; ISA_IRQS];

/// Takes the MADT's overrides of ISA IRQs.
pub fn set_overrides(overrides: &[IrqOverride]) {
    for o in overrides.iter().filter(|o| (o.irq as usize) < ISA_IRQS && o.gsi <= max_entry()) {
        let polarity = if o.flags & 0b11 == 0b11 { ACTIVE_LOW } else { 0 };
        let trigger = if (o.flags >> 2) & 0b11 == 0b11 { LEVEL } else { 0 };
        WIRING[o.irq as usize].store(o.gsi | polarity | trigger, Ordering::Relaxed);
    }
}

/// The redirection entry (its register) and the polarity and trigger bits of ISA IRQ `irq`.
fn wiring(irq: u8) -> (u32, u32) {
    match WIRING.get(irq as usize).map(|w| w.load(Ordering::Relaxed)) {
        Some(wired) if wired != u32::MAX => (REDIRECTION_TABLE + 2 * (wired & 0xFF), wired & (ACTIVE_LOW | LEVEL)),
        _ => (REDIRECTION_TABLE + 2 * irq as u32, 0),
    }
}

const BASE: usize = 0xFEC0_0000;
const REDIRECTION_TABLE: u32 = 0x10;
const MASKED: u32 = 1 << 16;

fn write(register: u32, value: u32) {
    unsafe {
        core::ptr::write_volatile(BASE as *mut u32, register);
        core::ptr::write_volatile((BASE + 0x10) as *mut u32, value);
    }
}

fn read(register: u32) -> u32 {
    unsafe {
        core::ptr::write_volatile(BASE as *mut u32, register);
        core::ptr::read_volatile((BASE + 0x10) as *const u32)
    }
}

fn max_entry() -> u32 {
    (read(1) >> 16) & 0xFF
}

/// Masks every input: nothing reaches us until a driver asks for its IRQ.
pub fn init() {
    for irq in 0..=max_entry() {
        write(REDIRECTION_TABLE + 2 * irq, MASKED | (IRQ_BASE as u32 + irq));
    }
}

/// Delivers ISA IRQ `irq` to the APIC `apic_id`, as vector IRQ_BASE + irq.
pub fn route(irq: u8, apic_id: u32) {
    let (entry, lines) = wiring(irq);
    write(entry + 1, apic_id << 24);
    write(entry, lines | IRQ_BASE as u32 + irq as u32);
}

/// The raw redirection entry of ISA IRQ `irq` (low, high words).
pub fn entry(irq: u8) -> (u32, u32) {
    let (entry, _) = wiring(irq);
    (read(entry), read(entry + 1))
}

pub fn mask(irq: u8) {
    let (entry, _) = wiring(irq);
    write(entry, read(entry) | MASKED);
}

crate::kernel_test!(ioapic_takes_the_madt_overrides, {
    // QEMU's pc machine wires ISA IRQ 0 to input 2 (the MADT says so): routing IRQ 0 sets that
    // entry, with IRQ 0's vector, and leaves input 0 alone.
    let untouched = (read(REDIRECTION_TABLE), read(REDIRECTION_TABLE + 1));
    route(0, super::apic::id());
    assert_eq!(read(REDIRECTION_TABLE + 4) & 0xFF, IRQ_BASE as u32, "input 2 carries IRQ 0's vector");
    assert_eq!(read(REDIRECTION_TABLE + 4) & MASKED, 0, "unmasked");
    assert_eq!((read(REDIRECTION_TABLE), read(REDIRECTION_TABLE + 1)), untouched, "input 0 untouched");
    mask(0);
    assert_ne!(read(REDIRECTION_TABLE + 4) & MASKED, 0, "masked again");
});

crate::kernel_test!(ioapic_routing, {
    route(1, super::apic::id());
    let (low, high) = entry(1);
    assert_eq!(low & 0xFF, IRQ_BASE as u32 + 1, "vector");
    assert_eq!(low & MASKED, 0, "unmasked");
    assert_eq!(high >> 24, super::apic::id(), "destination");
    mask(1);
    assert_ne!(entry(1).0 & MASKED, 0, "masked again");
});
