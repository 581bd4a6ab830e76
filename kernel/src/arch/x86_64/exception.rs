//! CPU exceptions: those of wasm code are its traps, handed to wasmtime on the faulting thread;
//! those of the kernel are bugs: report them by name with the whole register file, then end the
//! machine with the failure code. A page fault in a thread stack's guard page is reported as
//! that thread's stack overflow.

use super::qemu_exit::{exit, ExitCode};
use super::divert::divert;
use super::trap::TrapFrame;

const NAMES: [&str; 32] = [
    "divide error", "debug", "non-maskable interrupt", "breakpoint", "overflow",
    "bound range exceeded", "invalid opcode", "device not available", "double fault",
    "coprocessor segment overrun", "invalid TSS", "segment not present", "stack-segment fault",
    "general protection fault", "page fault", "reserved (15)", "x87 floating-point error",
    "alignment check", "machine check", "SIMD floating-point error", "virtualization exception",
    "control protection exception", "reserved (22)", "reserved (23)", "reserved (24)",
    "reserved (25)", "reserved (26)", "reserved (27)", "hypervisor injection exception",
    "VMM communication exception", "security exception", "reserved (31)",
];

const DIVIDE_ERROR: u64 = 0;
const INVALID_OPCODE: u64 = 6;
const PAGE_FAULT: u64 = 14;
/// What wasm code raises on purpose (engine/config): an access past its linear memory (a guard
/// page), a division by zero or overflow, a trap instruction (`ud2`).
const WASM_TRAPS: [u64; 3] = [DIVIDE_ERROR, INVALID_OPCODE, PAGE_FAULT];

/// A fault of wasm code goes on as a call to `wasm_fault` on the faulting thread: wasmtime's
/// handler unwinds that thread's stack to where it entered wasm.
pub fn handle(frame: &mut TrapFrame) {
    let address = if frame.vector == PAGE_FAULT { x86_64::registers::control::Cr2::read_raw() } else { 0 };
    let stack_overflow = frame.vector == PAGE_FAULT && crate::sched::stack_overflow_victim(address).is_some();
    if WASM_TRAPS.contains(&frame.vector) && !stack_overflow
        && crate::wasm::platform::trap_handler_for(frame.rip).is_some() {
        return divert(frame, wasm_fault, address);
    }
    report(frame, address)
}

extern "C" fn wasm_fault(saved: &TrapFrame, address: u64) -> ! {
    if let Some(handler) = crate::wasm::platform::trap_handler_for(saved.rip) {
        handler(saved.rip as usize, saved.rbp as usize, saved.vector == PAGE_FAULT, address as usize);
    }
    // Returned: code wasmtime generated, but no trap it knows of. A kernel fault after all.
    x86_64::instructions::interrupts::disable();
    report(saved, address)
}

fn report(frame: &TrapFrame, address: u64) -> ! {
    unsafe { crate::console::break_lock() };
    let name = NAMES[frame.vector as usize];
    let thread = crate::sched::current_name();
    if frame.vector == PAGE_FAULT {
        if let Some(owner) = crate::sched::stack_overflow_victim(address) {
            kprintln!("STACK OVERFLOW in thread {:?} (page fault in its guard page at {:#x})", owner, address);
        }
        kprintln!("EXCEPTION: {} (vector {}) in thread {:?} at rip {:#x}, error code {:#x}, address (cr2) {:#x}",
                  name, frame.vector, thread, frame.rip, frame.error_code, address);
    } else {
        kprintln!("EXCEPTION: {} (vector {}) in thread {:?} at rip {:#x}, error code {:#x}",
                  name, frame.vector, thread, frame.rip, frame.error_code);
    }
    dump_registers(frame);
    exit(ExitCode::Failure)
}

pub fn unexpected(frame: &mut TrapFrame) -> ! {
    unsafe { crate::console::break_lock() };
    kprintln!("EXCEPTION: unexpected interrupt vector {:#x} at rip {:#x}", frame.vector, frame.rip);
    dump_registers(frame);
    exit(ExitCode::Failure)
}

fn dump_registers(f: &TrapFrame) {
    kprintln!("  rax {:016x} rbx {:016x} rcx {:016x} rdx {:016x}", f.rax, f.rbx, f.rcx, f.rdx);
    kprintln!("  rsi {:016x} rdi {:016x} rbp {:016x} rsp {:016x}", f.rsi, f.rdi, f.rbp, f.rsp);
    kprintln!("  r8  {:016x} r9  {:016x} r10 {:016x} r11 {:016x}", f.r8, f.r9, f.r10, f.r11);
    kprintln!("  r12 {:016x} r13 {:016x} r14 {:016x} r15 {:016x}", f.r12, f.r13, f.r14, f.r15);
    kprintln!("  rip {:016x} rflags {:08x} cs {:04x} ss {:04x}", f.rip, f.rflags, f.cs, f.ss);
}
