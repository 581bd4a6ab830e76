//! Interrupt and exception entry. Every vector has a 16-byte stub that pushes its number (and a
//! zero where the CPU pushes no error code) and joins `trap_common`, which saves the full
//! register file and the SSE state into a `TrapFrame` before any Rust code runs (the block and
//! yield traps, which only the kernel raises, save only the registers their caller keeps, and
//! go straight to their own handlers). The IST slot the CPU pushes to points just past the
//! running thread's own frame (`use_frame`), so the trap is saved where the thread keeps its
//! context: a switch copies nothing, it returns the next thread's frame for `trap_return` to
//! restore.

use core::arch::global_asm;

pub const TIMER_VECTOR: u64 = 0x20;
/// ISA IRQs routed through the I/O APIC land at IRQ_BASE + irq.
pub const IRQ_BASE: u64 = 0x30;
pub const IRQ_COUNT: u64 = 16;
/// From another CPU: a thread was made ready here, or this CPU's server is to stop.
pub const RESCHEDULE_VECTOR: u64 = 0x40;
/// From another CPU: invalidate the page of the shootdown in progress (`mm::tlb`).
pub const SHOOTDOWN_VECTOR: u64 = 0x41;
/// `int 0x81`: a thread gives up the CPU (yield, sleep, exit).
pub const YIELD_VECTOR: u64 = 0x81;
/// `int 0x82`: a thread blocks, rax pointing at what for (`sched::block_current`).
pub const BLOCK_VECTOR: u64 = 0x82;
pub const SPURIOUS_VECTOR: u64 = 0xFF;

/// The FXSAVE image: x87, MXCSR and the 16 XMM registers.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FxArea(pub [u8; 512]);

impl FxArea {
    /// The state a new thread starts with: x87 control word 0x37F, MXCSR 0x1F80 (all masked).
    pub const INITIAL: FxArea = {
        let mut area = [0u8; 512];
        area[0] = 0x7F;
        area[1] = 0x03;
        area[24] = 0x80;
        area[25] = 0x1F;
        FxArea(area)
    };
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct TrapFrame {
    pub fx: FxArea,
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

// The CPU aligns the IST pointer down to 16: the frame must end where it begins pushing.
const _: () = assert!(core::mem::size_of::<TrapFrame>() % 16 == 0);

pub const RFLAGS_IF: u64 = 1 << 9;

/// Traps from now on are saved into `frame` (the running thread's context).
pub fn use_frame(frame: *mut TrapFrame) {
    super::gdt::set_trap_stack(frame as u64 + core::mem::size_of::<TrapFrame>() as u64);
}

impl TrapFrame {
    /// The first frame of a new kernel thread: it "returns" into `entry(arg)` on `stack_top`.
    pub fn new_thread(entry: extern "C" fn(usize) -> !, arg: usize, stack_top: u64) -> TrapFrame {
        let (code, data) = super::gdt::kernel_selectors();
        let mut frame: TrapFrame = unsafe { core::mem::zeroed() };
        frame.fx = FxArea::INITIAL;
        frame.rip = entry as usize as u64;
        frame.rdi = arg as u64;
        frame.cs = code as u64;
        frame.ss = data as u64;
        frame.rflags = RFLAGS_IF | 0x2;
        // As if called: the return-address slot makes rsp ≡ 8 (mod 16) at entry.
        frame.rsp = stack_top - 8;
        frame
    }
}

extern "C" {
    static trap_stubs: u8;
}

/// The entry stub of `vector`: stubs are 16 bytes apart.
pub fn stub_address(vector: usize) -> u64 {
    (&raw const trap_stubs) as u64 + 16 * vector as u64
}

global_asm!(
    r#"
.section .text
.balign 16
.global trap_stubs
trap_stubs:
.set vector, 0
.rept 256
    .balign 16
    .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
        push 0
    .endif
    push vector
    .if (vector == 2) || (vector == 8) || (vector == 18)
        jmp trap_critical
    .elseif vector == 0x81
        jmp trap_yield
    .elseif vector == 0x82
        jmp trap_block
    .else
        jmp trap_common
    .endif
    .set vector, vector + 1
.endr

// The SSE state below the general registers; rdi points at the whole frame for `dispatch`.
.macro save_sse
    sub rsp, 512
    fxsave64 [rsp]
    mov rdi, rsp
    cld
.endm

.macro save_frame
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    save_sse
.endm

// `dispatch` on this CPU's trap stack; the frame it returns is the one resumed.
.macro dispatch_on_trap_stack
    mov rsp, gs:[{trap_stack}]
    call {dispatch}
    mov rsp, rax
.endm

// NMI, #DF, #MC: saved on, and handled on, their own IST stack.
trap_critical:
    save_frame
    call {dispatch}
    mov rsp, rax
    jmp trap_return

// `int` YIELD_VECTOR or BLOCK_VECTOR from kernel code that declares the caller-saved registers
// clobbered (sched: `clobber_abi("C")`), the SSE registers among them: only rax (the request)
// and the callee-saved ones are kept; the other slots, the SSE area too, keep what this
// thread's last trap left there, and `trap_return` restores none of them (`voluntary_return`).
// MXCSR and the x87 control word are callee-saved but never changed from their start values
// (neither Rust nor Cranelift's wasm code sets them), so every thread's are the CPU's. The
// direction flag is clear: Rust's `asm!` raises these traps, and it keeps the flag so.
.macro voluntary handler
    push rax
    push rbx
    sub rsp, 32
    push rbp
    sub rsp, 32
    push r12
    push r13
    push r14
    push r15
    sub rsp, 512
    mov rdi, rsp
    // Straight to `handler`, on the trap stack; it never returns: it resumes the frame the
    // scheduler chose (`resume`), and what its prologue saved is never popped.
    mov rsp, gs:[{trap_stack}]
    call \handler
.endm

trap_yield:
    voluntary {yield_trap}

trap_block:
    voluntary {block_trap}

// The frame is the running thread's own: the handler runs on the trap stack.
trap_common:
    save_frame
    dispatch_on_trap_stack
.global trap_return
trap_return:
    cmp qword ptr [rsp + {vector}], {block_vector}
    je voluntary_return
    cmp qword ptr [rsp + {vector}], {yield_}
    je voluntary_return
    fxrstor64 [rsp]
    add rsp, 512
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

// A frame `voluntary` saved: the callee-saved registers only.
voluntary_return:
    add rsp, 512
    pop r15
    pop r14
    pop r13
    pop r12
    add rsp, 32
    pop rbp
    add rsp, 32
    pop rbx
    add rsp, 24
    iretq
"#,
    dispatch = sym dispatch,
    yield_trap = sym yield_trap,
    block_trap = sym block_trap,
    vector = const core::mem::offset_of!(TrapFrame, vector),
    block_vector = const BLOCK_VECTOR,
    yield_ = const YIELD_VECTOR,
    trap_stack = const super::percpu::TRAP_STACK_OFFSET,
);

/// A server that is to stop (killed, or its watchdog) was running wasm: wasmtime unwinds it on
/// its own thread; if it cannot from here, the thread goes on and the next tick tries again.
extern "C" fn stop_wasm(saved: &TrapFrame, _: u64) -> ! {
    crate::wasm::stop::deliver(saved.rip, saved.rbp);
    resume(saved)
}

/// A thread gives up the CPU: yield, sleep, exit.
extern "C" fn yield_trap(frame: &mut TrapFrame) -> ! {
    resume(crate::sched::on_yield(frame))
}

/// IPC's trap, twice a round trip.
extern "C" fn block_trap(frame: &mut TrapFrame) -> ! {
    resume(crate::sched::on_block(frame))
}

/// Goes on where `frame` was saved (registers, SSE state as its trap kept them, flags, stack),
/// through `trap_return`: a thread's own frame after a voluntary trap, or a diverted thread's
/// copy on its own stack (`divert`).
pub fn resume(frame: *const TrapFrame) -> ! {
    // SAFETY: a whole frame as a trap entry lays it out, 16-byte aligned, that nothing else
    // writes while it is restored: interrupts use the IST stacks.
    unsafe { core::arch::asm!("mov rsp, {frame}", "jmp trap_return", frame = in(reg) frame, options(noreturn)) }
}

/// Handles the trap saved in `frame`; returns the frame to resume: `frame`, or another
/// thread's after a switch.
extern "C" fn dispatch(frame: &mut TrapFrame) -> *mut TrapFrame {
    match frame.vector {
        0..=31 => super::exception::handle(frame),
        TIMER_VECTOR => {
            super::apic::end_of_interrupt();
            // The boot CPU keeps time; every CPU's timer drives its own scheduling.
            let keeps_time = super::percpu::index() == 0;
            let now = if keeps_time { crate::time::tick() } else { crate::time::ticks() };
            if crate::wasm::stop::due(frame.rip) {
                super::divert::divert(frame, stop_wasm, 0);
            }
            if keeps_time && now % 10 == 0 {
                crate::debug::control::poll();
            }
            return crate::sched::on_timer_tick(frame, now);
        }
        RESCHEDULE_VECTOR => {
            super::apic::end_of_interrupt();
            if crate::wasm::stop::due(frame.rip) {
                super::divert::divert(frame, stop_wasm, 0);
            }
            return crate::sched::on_reschedule(frame);
        }
        SHOOTDOWN_VECTOR => {
            crate::mm::tlb::serve();
            super::apic::end_of_interrupt();
        }
        v if (IRQ_BASE..IRQ_BASE + IRQ_COUNT).contains(&v) => {
            crate::debug::count_irq((v - IRQ_BASE) as usize);
            crate::ipc::irq::on_interrupt((v - IRQ_BASE) as u8);
            super::apic::end_of_interrupt();
        }
        SPURIOUS_VECTOR => {}
        _ => super::exception::unexpected(frame),
    }
    frame
}
