//! GDT and TSS. The TSS matters for its Interrupt Stack Table: no interrupt or exception pushes
//! onto the interrupted thread's stack, because the prebuilt `core` uses the red zone below
//! `rsp` that a same-stack interrupt frame would overwrite. Ordinary traps are pushed into the
//! running thread's saved-context frame (`set_trap_stack`) and handled on the trap stack.

use alloc::boxed::Box;
use core::mem::size_of;
use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slot (1-based, as the IDT counts) for ordinary interrupts and exceptions: points just
/// past the frame the trap is saved into.
pub const IST_TRAP: u8 = 1;
/// A separate stack for faults that may hit while the first one is in use: #DF, NMI, #MC.
pub const IST_CRITICAL: u8 = 2;

const IST_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_SIZE]);

/// Where trap handlers run, once `trap_common` has saved the frame.
static mut TRAP_STACK: Stack = Stack([0; IST_SIZE]);
static mut CRITICAL_STACK: Stack = Stack([0; IST_SIZE]);
/// Where traps are saved before the scheduler gives the boot code a thread frame.
static mut BOOT_FRAME: crate::arch::trap::TrapFrame = unsafe { core::mem::zeroed() };

/// Written on every thread switch (`set_trap_stack`); the CPU reads it at each trap.
static mut TSS: TaskStateSegment = TaskStateSegment::new();
static GDT: Once<(GlobalDescriptorTable, SegmentSelector, SegmentSelector, SegmentSelector)> = Once::new();

fn stack_top(stack: *mut Stack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_SIZE as u64
}

pub fn init() {
    // SAFETY: before interrupts are enabled, on the one CPU.
    let tss: &'static TaskStateSegment = unsafe {
        let tss = &mut *(&raw mut TSS);
        tss.interrupt_stack_table[IST_TRAP as usize - 1] = VirtAddr::from_ptr(&raw mut BOOT_FRAME) + size_of::<crate::arch::trap::TrapFrame>() as u64;
        tss.interrupt_stack_table[IST_CRITICAL as usize - 1] = stack_top(&raw mut CRITICAL_STACK);
        super::percpu::this_cpu().trap_slot.set(trap_slot(tss));
        tss
    };
    let (gdt, code, data, tss_selector) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss_selector = gdt.append(Descriptor::tss_segment(tss));
        (gdt, code, data, tss_selector)
    });
    gdt.load();
    unsafe {
        CS::set_reg(*code);
        DS::set_reg(*data);
        ES::set_reg(*data);
        SS::set_reg(*data);
        load_tss(*tss_selector);
    }
}

/// Another CPU's descriptor tables, TSS and IST stacks, loaded on it. Its ordinary traps are
/// saved in a frame of its own until it runs threads.
pub fn init_other_cpu() {
    let frame = Box::leak(Box::new(unsafe { core::mem::zeroed::<crate::arch::trap::TrapFrame>() }));
    let critical = crate::mm::stacks::allocate(IST_SIZE as u64).expect("no critical-fault stack for a CPU");
    let tss = Box::leak(Box::new(TaskStateSegment::new()));
    tss.interrupt_stack_table[IST_TRAP as usize - 1] = VirtAddr::from_ptr(frame) + size_of::<crate::arch::trap::TrapFrame>() as u64;
    tss.interrupt_stack_table[IST_CRITICAL as usize - 1] = VirtAddr::new(critical.top());
    core::mem::forget(critical); // the CPU's for good
    super::percpu::this_cpu().trap_slot.set(trap_slot(tss));
    let gdt = Box::leak(Box::new(GlobalDescriptorTable::new()));
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_selector = gdt.append(Descriptor::tss_segment(tss));
    // The boot CPU's selectors: the same entries in the same order.
    debug_assert_eq!((code.0, data.0), kernel_selectors());
    gdt.load();
    unsafe {
        CS::set_reg(code);
        DS::set_reg(data);
        ES::set_reg(data);
        SS::set_reg(data);
        load_tss(tss_selector);
    }
}

fn trap_slot(tss: &TaskStateSegment) -> *mut u64 {
    (&raw const tss.interrupt_stack_table[IST_TRAP as usize - 1]) as *mut u64
}

/// Where this CPU saves its next ordinary trap: just past the running thread's frame. Called
/// with interrupts off.
#[inline(always)]
pub fn set_trap_stack(top: u64) {
    // SAFETY: a single store into this CPU's own TSS (packed: unaligned); the CPU reads the
    // slot only when it takes a trap.
    unsafe { super::percpu::this_cpu().trap_slot.get().write_unaligned(top) };
}

/// The top of the stack trap handlers run on.
pub fn trap_stack_top() -> u64 {
    stack_top(&raw mut TRAP_STACK).as_u64()
}

/// Selectors a new thread's first frame needs.
pub fn kernel_selectors() -> (u16, u16) {
    let (_, code, data, _) = GDT.get().expect("GDT not loaded");
    (code.0, data.0)
}
