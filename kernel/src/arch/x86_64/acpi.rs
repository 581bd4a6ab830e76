//! ACPI's static tables, parsed by the `acpi` crate: the MADT names the CPUs there are and
//! where ISA IRQs reach the I/O APIC.

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use alloc::vec::Vec;
use core::ptr::NonNull;

/// Physical memory below 4 GiB is identity-mapped: a table's address is where to read it.
#[derive(Clone)]
struct Identity;

impl AcpiHandler for Identity {
    unsafe fn map_physical_region<T>(&self, physical: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virtual_start = NonNull::new(physical as *mut T).expect("ACPI table at address 0");
        unsafe { PhysicalMapping::new(physical, virtual_start, size, size, Identity) }
    }

    fn unmap_physical_region<T>(_: &PhysicalMapping<Self, T>) {}
}

/// The RSDP in the BIOS area (0xE0000-0xFFFFF, 16-byte aligned), where SeaBIOS puts it. The
/// EBDA, the other place ACPI allows, is found through a pointer in page 0, which the kernel
/// leaves unmapped (a null pointer must fault).
fn rsdp() -> Option<usize> {
    (0xE0000..0x100000).step_by(16).find(|&address| {
        // SAFETY: the BIOS area is identity-mapped and readable.
        unsafe { core::slice::from_raw_parts(address as *const u8, 8) == b"RSD PTR " }
    })
}

/// An ISA IRQ the firmware wired elsewhere than to the I/O APIC input of its number.
pub struct IrqOverride {
    pub irq: u8,
    pub gsi: u32,
    /// MPS INTI flags: bits 0-1 polarity (3: active low), bits 2-3 trigger (3: level).
    pub flags: u16,
}

/// What the MADT says.
pub struct Platform {
    /// The local APIC ids of the enabled CPUs, in the MADT's order (the boot CPU's among them).
    pub cpus: Vec<u32>,
    pub irq_overrides: Vec<IrqOverride>,
}

pub fn platform() -> Result<Platform, &'static str> {
    let rsdp = rsdp().ok_or("no ACPI RSDP in the BIOS area")?;
    // SAFETY: `rsdp` holds the RSDP signature; the crate checks the rest.
    let tables = unsafe { AcpiTables::from_rsdp(Identity, rsdp) }.map_err(|_| "the ACPI RSDP or RSDT is invalid")?;
    let madt = tables.find_table::<Madt>().map_err(|_| "no ACPI MADT")?;
    let mut platform = Platform { cpus: Vec::new(), irq_overrides: Vec::new() };
    for entry in madt.get().entries() {
        match entry {
            MadtEntry::LocalApic(cpu) if { cpu.flags } & 1 != 0 => platform.cpus.push(cpu.apic_id as u32),
            MadtEntry::LocalX2Apic(cpu) if { cpu.flags } & 1 != 0 => platform.cpus.push(cpu.x2apic_id),
            MadtEntry::InterruptSourceOverride(o) if o.bus == 0 => platform.irq_overrides.push(IrqOverride {
                irq: o.irq, gsi: o.global_system_interrupt, flags: o.flags,
            }),
            _ => {}
        }
    }
    Ok(platform)
}
