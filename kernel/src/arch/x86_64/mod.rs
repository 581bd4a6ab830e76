//! Everything specific to x86_64.

pub mod acpi;
pub mod apic;
mod boot;
pub mod cpu;
mod divert;
mod exception;
pub mod gdt;
mod idt;
pub mod ioapic;
pub mod percpu;
mod pic;
mod pit;
pub mod port;
pub mod qemu_exit;
pub mod rtc;
pub mod serial;
pub mod smp;
pub mod trap;

/// Descriptor tables, per-CPU data, interrupt controllers. Returns TSC ticks per microsecond.
pub fn init() -> u64 {
    percpu::init_boot_cpu(); // first: the trap entry finds its stack through GS
    gdt::init();
    idt::init();
    cpu::enable_wide_copies(false);
    pic::disable();
    ioapic::init();
    apic::init()
}
