//! The IDT: all 256 vectors point at the entry stubs of `trap.rs`, each on an IST stack.

use super::gdt::{IST_CRITICAL, IST_TRAP};
use super::trap::stub_address;
use spin::Once;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const INTERRUPT_GATE: u8 = 0x8E; // present, ring 0, interrupt gate: IF cleared on entry

static IDT: Once<[Gate; 256]> = Once::new();

pub fn init() {
    let (code, _) = super::gdt::kernel_selectors();
    let idt = IDT.call_once(|| {
        let mut gates = [Gate::default(); 256];
        for (vector, gate) in gates.iter_mut().enumerate() {
            let address = stub_address(vector);
            let ist = match vector {
                2 | 8 | 18 => IST_CRITICAL, // NMI, double fault, machine check
                _ => IST_TRAP,
            };
            *gate = Gate {
                offset_low: address as u16,
                selector: code,
                ist,
                type_attr: INTERRUPT_GATE,
                offset_mid: (address >> 16) as u16,
                offset_high: (address >> 32) as u32,
                reserved: 0,
            };
        }
        gates
    });
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of_val(idt) - 1) as u16,
        base: VirtAddr::from_ptr(idt.as_ptr()),
    };
    unsafe { lidt(&pointer) };
}
