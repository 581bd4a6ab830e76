//! GDT and TSS. The TSS matters for its Interrupt Stack Table: every interrupt and exception
//! runs on an IST stack, never on the interrupted thread's stack, because the prebuilt `core`
//! uses the red zone below `rsp` that a same-stack interrupt frame would overwrite.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slot (1-based, as the IDT counts) for ordinary interrupts and exceptions.
pub const IST_TRAP: u8 = 1;
/// A separate stack for faults that may hit while the first one is in use: #DF, NMI, #MC.
pub const IST_CRITICAL: u8 = 2;

const IST_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_SIZE]);

static mut TRAP_STACK: Stack = Stack([0; IST_SIZE]);
static mut CRITICAL_STACK: Stack = Stack([0; IST_SIZE]);

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(GlobalDescriptorTable, SegmentSelector, SegmentSelector, SegmentSelector)> = Once::new();

fn stack_top(stack: *mut Stack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_SIZE as u64
}

pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.interrupt_stack_table[IST_TRAP as usize - 1] = stack_top(&raw mut TRAP_STACK);
        tss.interrupt_stack_table[IST_CRITICAL as usize - 1] = stack_top(&raw mut CRITICAL_STACK);
        tss
    });
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

/// Selectors a new thread's first frame needs.
pub fn kernel_selectors() -> (u16, u16) {
    let (_, code, data, _) = GDT.get().expect("GDT not loaded");
    (code.0, data.0)
}
