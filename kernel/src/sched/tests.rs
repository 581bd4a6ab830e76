//! In-kernel tests of threads and the scheduler (run with `test=NAME`).

use super::*;
use crate::kernel_test;
use crate::time;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static CLOBBERED: AtomicBool = AtomicBool::new(false);

core::arch::global_asm!(
    r#"
// The registers a called function must give back as it found them (SysV ABI).
.macro save_callee_saved
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
.endm
.macro restore_callee_saved
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
.endm
// Adds 1 to rax unless `reg` holds r15 + offset; `reg` itself is the scratch (no register is
// free, and a shared scratch would overwrite a register not checked yet).
.macro register_check reg, offset
    sub \reg, r15
    xor \reg, \offset
    neg \reg
    adc rax, 0
.endm
"#
);

core::arch::global_asm!(
    r#"
// u64 register_survival(u64 pattern, u64 mode): loads every general register but rsp and
// every XMM register with values derived from `pattern`, gives up the CPU (mode 0: int 0x81;
// mode 1: spins until another thread, run by preemption, sets CLOBBERED), then counts the
// registers that changed: after `int 0x81`, which Rust raises declaring the caller-saved
// registers clobbered (rax and every XMM register among them), the callee-saved ones; after
// preemption, all.
.global register_survival
register_survival:
    save_callee_saved
    mov rax, rdi
    mov r15, rsi
    lea rbx, [rax + 1]
    lea rcx, [rax + 2]
    lea rdx, [rax + 3]
    lea rsi, [rax + 4]
    lea rdi, [rax + 5]
    lea rbp, [rax + 6]
    lea r8,  [rax + 7]
    lea r9,  [rax + 8]
    lea r10, [rax + 9]
    lea r11, [rax + 10]
    lea r12, [rax + 11]
    lea r13, [rax + 12]
    lea r14, [rax + 13]
    // SSE2 only (the qemu64 CPU has no SSE4.1): low half = rax, high half = rbx.
    push rbx
    push rax
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        movdqu xmm\n, [rsp]
    .endr
    add rsp, 16
    test r15, r15
    jnz 2f
    push rax
    int 0x81
    pop r15
    xor eax, eax
    .irp pair, "rbx,1","rbp,6","r12,11","r13,12","r14,13"
        register_check \pair
    .endr
    jmp 4f
2:  cmp byte ptr [rip + {clobbered}], 0
    je 2b
    mov r15, rax
    xor eax, eax
    .irp pair, "rbx,1","rcx,2","rdx,3","rsi,4","rdi,5","rbp,6","r8,7","r9,8","r10,9","r11,10","r12,11","r13,12","r14,13"
        register_check \pair
    .endr
3:  sub rsp, 16
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        movdqu [rsp], xmm\n
        mov r14, [rsp]
        cmp r14, r15
        setne r14b
        movzx r14, r14b
        add rax, r14
        mov r14, [rsp + 8]
        lea r13, [r15 + 1]
        cmp r14, r13
        setne r14b
        movzx r14, r14b
        add rax, r14
    .endr
    add rsp, 16
4:  restore_callee_saved
    ret

// u64 clobber_registers(u64 pattern): overwrites every general and XMM register.
.global clobber_registers
clobber_registers:
    save_callee_saved
    mov rax, rdi
    mov rbx, rdi
    mov rcx, rdi
    mov rdx, rdi
    mov rsi, rdi
    mov rbp, rdi
    mov r8, rdi
    mov r9, rdi
    mov r10, rdi
    mov r11, rdi
    mov r12, rdi
    mov r13, rdi
    mov r14, rdi
    mov r15, rdi
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        movq xmm\n, rdi
        punpcklqdq xmm\n, xmm\n
    .endr
    restore_callee_saved
    ret
"#,
    clobbered = sym CLOBBERED,
);

extern "C" {
    fn register_survival(pattern: u64, mode: u64) -> u64;
    fn clobber_registers(pattern: u64);
}

fn check_registers_survive(mode: u64) {
    CLOBBERED.store(false, Ordering::SeqCst);
    let mismatches = Arc::new(AtomicU64::new(u64::MAX));
    let result = mismatches.clone();
    let checker = spawn("checker", Priority::NORMAL, move || {
        result.store(unsafe { register_survival(0x1111_2222_3333_0000, mode) }, Ordering::SeqCst);
    })
    .unwrap();
    let clobberer = spawn("clobberer", Priority::NORMAL, || {
        unsafe { clobber_registers(0xDEAD_BEEF_DEAD_BEEF) };
        CLOBBERED.store(true, Ordering::SeqCst);
    })
    .unwrap();
    join(checker);
    join(clobberer);
    assert!(CLOBBERED.load(Ordering::SeqCst), "the other thread never ran");
    assert_eq!(mismatches.load(Ordering::SeqCst), 0, "registers changed across the switch");
}

kernel_test!(context_switch_preserves_registers, {
    check_registers_survive(0);
});

kernel_test!(preemption_preserves_registers, {
    check_registers_survive(1);
});

kernel_test!(preemption_of_busy_loops, {
    let counters: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    for i in 0..2 {
        let counters = counters.clone();
        spawn(if i == 0 { "spinner-a" } else { "spinner-b" }, Priority::LOW, move || loop {
            counters[i].fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    }
    // The spinners never yield: only the timer can let this thread (higher priority) back in.
    sleep_ms(100);
    let first = [counters[0].load(Ordering::Relaxed), counters[1].load(Ordering::Relaxed)];
    sleep_ms(100);
    let second = [counters[0].load(Ordering::Relaxed), counters[1].load(Ordering::Relaxed)];
    crate::kprintln!("spinner counts after 100 ms {:?}, after 200 ms {:?}", first, second);
    assert!(first[0] > 0 && first[1] > 0, "both spinners ran: {:?}", first);
    assert!(second[0] > first[0] && second[1] > first[1], "both keep running: {:?} then {:?}", first, second);
});

kernel_test!(wait_queue_wakeup, {
    static QUEUE: WaitQueue = WaitQueue::new();
    static GO: AtomicBool = AtomicBool::new(false);
    static WOKEN: AtomicU64 = AtomicU64::new(0);
    assert!(QUEUE.wake_one().is_none(), "nobody waits yet");
    let mut waiters = alloc::vec::Vec::new();
    for _ in 0..3 {
        waiters.push(spawn("waiter", Priority::NORMAL, || {
            QUEUE.wait_until(crate::sched::Wait::NONE, || GO.load(Ordering::SeqCst));
            WOKEN.fetch_add(1, Ordering::SeqCst);
        }).unwrap());
    }
    while waiters.iter().any(|&w| state_of(w) != Some(RunState::Blocked)) {
        give_up_cpu();
    }
    assert!(QUEUE.wake_one().is_some(), "a spurious wake-up: the condition still fails");
    sleep_ms(5);
    assert_eq!(WOKEN.load(Ordering::SeqCst), 0, "woken without the condition");
    GO.store(true, Ordering::SeqCst);
    assert!(QUEUE.wake_all() >= 2);
    waiters.iter().for_each(|&w| join(w));
    assert_eq!(WOKEN.load(Ordering::SeqCst), 3);
});

kernel_test!(sleep_accuracy, {
    for ms in [1u64, 10, 50] {
        let start = time::uptime_us();
        sleep_ms(ms);
        let slept = time::uptime_us() - start;
        crate::kprintln!("sleep_ms({}) took {} us", ms, slept);
        assert!(slept >= ms * 1000 - 1000, "woke early: {} us for {} ms", slept, ms);
        assert!(slept <= ms * 1000 + 20_000, "woke late: {} us for {} ms", slept, ms);
    }
});

kernel_test!(ticks_deferred_while_preemption_disabled, {
    static RAN: AtomicBool = AtomicBool::new(false);
    let other;
    let ticks_before;
    {
        let _no_preempt = PreemptGuard::new();
        other = spawn("other", Priority::NORMAL, || RAN.store(true, Ordering::SeqCst)).unwrap();
        ticks_before = time::ticks();
        // Spin through several quanta: ticks arrive and count, but must not switch.
        while time::ticks() < ticks_before + 30 {
            core::hint::spin_loop();
        }
        assert!(!RAN.load(Ordering::SeqCst), "preempted while preemption was disabled");
    }
    // Enabling preemption performs the deferred switch at once.
    assert!(RAN.load(Ordering::SeqCst), "the deferred switch was lost");
    assert!(time::ticks() >= ticks_before + 30);
    join(other);
});

kernel_test!(thread_exit_and_reaping, {
    // A first thread may leave a page table behind for its stack slot; that one stays.
    join(spawn("warm-up", Priority::NORMAL, || {}).unwrap());
    let (free_before, _) = crate::mm::frame::counts();
    for round in 0..20 {
        let id = spawn("short-lived", Priority::NORMAL, move || {
            core::hint::black_box(round);
        }).unwrap();
        join(id);
        assert_eq!(state_of(id), None, "thread {} reaped", id);
    }
    assert_eq!(crate::mm::frame::counts().0, free_before, "every stack's frames came back");
});

kernel_test!(priorities_run_higher_first, {
    static ORDER: crate::sync::IrqMutex<alloc::vec::Vec<u8>> = crate::sync::IrqMutex::new(alloc::vec::Vec::new());
    let _no_preempt = PreemptGuard::new();
    let low = spawn("low", Priority::LOW, || ORDER.lock().push(1)).unwrap();
    let high = spawn("high", Priority::HIGH, || ORDER.lock().push(6)).unwrap();
    drop(_no_preempt);
    join(low);
    join(high);
    assert_eq!(*ORDER.lock(), [6, 1]);
});

kernel_test!(fault_stack_overflow, expect_fault = "STACK OVERFLOW in thread \"overflow\"", {
    #[allow(unconditional_recursion)]
    fn recurse(depth: u64) -> u64 {
        let buffer = core::hint::black_box([depth; 64]);
        recurse(depth + 1) + buffer[(depth % 64) as usize]
    }
    let id = spawn("overflow", Priority::NORMAL, || {
        core::hint::black_box(recurse(0));
    }).unwrap();
    join(id);
});
