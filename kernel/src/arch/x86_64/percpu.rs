//! Per-CPU data, reached through GS: GS base points at this CPU's `PerCpu`, whose first field
//! points at itself, so `mov rax, gs:[0]` finds it. One instance now; SMP adds one per CPU.

use core::cell::Cell;
use x86_64::registers::model_specific::GsBase;
use x86_64::VirtAddr;

#[repr(C)]
pub struct PerCpu {
    this: *const PerCpu,
    pub index: u32,
    /// Non-zero while preemption is disabled.
    pub preempt_disabled: Cell<u32>,
    /// A timer tick wanted a switch while preemption was disabled: switch when it is enabled.
    pub switch_deferred: Cell<bool>,
}

static mut BOOT_CPU: PerCpu = PerCpu {
    this: core::ptr::null(),
    index: 0,
    preempt_disabled: Cell::new(0),
    switch_deferred: Cell::new(false),
};

pub fn init_boot_cpu() {
    unsafe {
        let cpu = &raw mut BOOT_CPU;
        (*cpu).this = cpu;
        GsBase::write(VirtAddr::from_ptr(cpu));
    }
}

pub fn this_cpu() -> &'static PerCpu {
    let cpu: *const PerCpu;
    unsafe { core::arch::asm!("mov {}, gs:[0]", out(reg) cpu, options(nostack, readonly, preserves_flags)) };
    unsafe { &*cpu }
}
