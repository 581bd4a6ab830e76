//! Per-CPU data, reached through GS: GS base points at this CPU's `PerCpu`, whose first field
//! points at itself, so `mov rax, gs:[0]` finds it. The boot CPU's is static; `smp` makes one
//! for each other CPU.

use crate::debug::state::MAX_CPUS;
use core::cell::Cell;
use x86_64::registers::model_specific::GsBase;
use x86_64::VirtAddr;

#[repr(C)]
pub struct PerCpu {
    this: *const PerCpu,
    /// The stack trap handlers run on (`trap_common` loads it from here).
    pub trap_stack: u64,
    pub index: u32,
    /// This CPU's TSS slot the CPU saves ordinary traps below (`gdt::set_trap_stack`).
    pub trap_slot: Cell<*mut u64>,
    /// Non-zero while preemption is disabled.
    pub preempt_disabled: Cell<u32>,
    /// A timer tick wanted a switch while preemption was disabled: switch when it is enabled.
    pub switch_deferred: Cell<bool>,
    /// The running thread and its process (null for a kernel thread), set at each switch so
    /// kernel calls find them without the scheduler's lock.
    pub thread: Cell<u32>,
    /// The running thread's row in the debug-state block (`debug::NO_ROW`: none).
    pub thread_row: Cell<u32>,
    pub process: Cell<*const crate::process::Process>,
    /// Whether the running thread's last block ended by its deadline, not a wake.
    pub timed_out: Cell<bool>,
}

static mut BOOT_CPU: PerCpu = PerCpu {
    this: core::ptr::null(),
    trap_stack: 0,
    index: 0,
    trap_slot: Cell::new(core::ptr::null_mut()),
    preempt_disabled: Cell::new(0),
    switch_deferred: Cell::new(false),
    thread: Cell::new(0),
    thread_row: Cell::new(u32::MAX),
    process: Cell::new(core::ptr::null()),
    timed_out: Cell::new(false),
};

impl PerCpu {
    /// Another CPU's block; `install` it on that CPU.
    pub fn new(index: u32) -> PerCpu {
        assert!((index as usize) < MAX_CPUS, "CPU index {index} past MAX_CPUS");
        let trap_stack = crate::mm::stacks::allocate(32 << 10).expect("no trap stack for a CPU");
        let top = trap_stack.top();
        core::mem::forget(trap_stack); // the CPU's for good
        PerCpu {
            this: core::ptr::null(), trap_stack: top, index, trap_slot: Cell::new(core::ptr::null_mut()),
            preempt_disabled: Cell::new(0), switch_deferred: Cell::new(false),
            thread: Cell::new(0), thread_row: Cell::new(u32::MAX), process: Cell::new(core::ptr::null()),
            timed_out: Cell::new(false),
        }
    }
}

/// Makes `cpu` the block GS reaches on the calling CPU.
pub fn install(cpu: &'static mut PerCpu) {
    cpu.this = cpu;
    GsBase::write(VirtAddr::from_ptr(cpu));
}

pub fn init_boot_cpu() {
    unsafe {
        let cpu = &raw mut BOOT_CPU;
        (*cpu).this = cpu;
        (*cpu).trap_stack = super::gdt::trap_stack_top();
        GsBase::write(VirtAddr::from_ptr(cpu));
    }
}

/// Where `trap_common` finds the handler stack, GS-relative.
pub const TRAP_STACK_OFFSET: usize = core::mem::offset_of!(PerCpu, trap_stack);

/// This CPU's index: one GS-relative load, as hot paths (every event, every switch) ask for it.
/// Below `MAX_CPUS`, which the compiler is told: the per-CPU arrays it indexes need no bounds
/// checks (a switch made three).
#[inline(always)]
pub fn index() -> u32 {
    let index: u32;
    unsafe {
        core::arch::asm!("mov {:e}, gs:[{offset}]", out(reg) index, offset = const core::mem::offset_of!(PerCpu, index),
                         options(nostack, readonly, preserves_flags, pure));
        // SAFETY: the boot CPU's is 0, and `PerCpu::new` refuses any other at or above it.
        core::hint::assert_unchecked((index as usize) < MAX_CPUS);
    }
    index
}

pub fn this_cpu() -> &'static PerCpu {
    let cpu: *const PerCpu;
    unsafe { core::arch::asm!("mov {}, gs:[0]", out(reg) cpu, options(nostack, readonly, preserves_flags)) };
    unsafe { &*cpu }
}
