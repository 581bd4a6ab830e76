//! The I/O APIC at its default base: routes ISA IRQs to vectors IRQ_BASE + irq on this CPU.
//! ISA IRQs are assumed identity-mapped to GSIs (true for IRQ 1, the keyboard, on QEMU's pc
//! machine); the ACPI MADT overrides (IRQ 0 → GSI 2) are not read yet.

use super::trap::IRQ_BASE;

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

/// Delivers `irq` (edge-triggered, active high, as ISA IRQs are) to the APIC `apic_id`.
pub fn route(irq: u8, apic_id: u32) {
    let entry = REDIRECTION_TABLE + 2 * irq as u32;
    write(entry + 1, apic_id << 24);
    write(entry, IRQ_BASE as u32 + irq as u32);
}

/// The raw redirection entry of `irq` (low, high words).
pub fn entry(irq: u8) -> (u32, u32) {
    let entry = REDIRECTION_TABLE + 2 * irq as u32;
    (read(entry), read(entry + 1))
}

pub fn mask(irq: u8) {
    let entry = REDIRECTION_TABLE + 2 * irq as u32;
    write(entry, read(entry) | MASKED);
}

crate::kernel_test!(ioapic_routing, {
    route(1, super::apic::id());
    let (low, high) = entry(1);
    assert_eq!(low & 0xFF, IRQ_BASE as u32 + 1, "vector");
    assert_eq!(low & MASKED, 0, "unmasked");
    assert_eq!(high >> 24, super::apic::id(), "destination");
    mask(1);
    assert_ne!(entry(1).0 & MASKED, 0, "masked again");
});
