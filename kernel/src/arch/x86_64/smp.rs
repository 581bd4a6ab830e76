//! Starting the other CPUs. Each one ACPI's MADT names gets INIT, then STARTUP twice (Intel's
//! MP start-up sequence) pointing at a real-mode trampoline copied below 1 MiB, which takes it
//! to long mode on the kernel's page tables and its own stack. There it loads its own GDT,
//! TSS and per-CPU block, the shared IDT, enables its local APIC and its timer, says it is
//! online and joins the scheduler as that CPU's idle thread.

use super::{apic, gdt, idt, percpu};
use crate::debug::state::MAX_CPUS;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, Ordering};

/// Where the trampoline runs: a page below 1 MiB (a STARTUP vector names a page there) that
/// the frame allocator never hands out (it starts above the kernel).
const TRAMPOLINE: u64 = 0x8000;
/// How long a CPU may take to come up before the boot CPU goes on without it. Under TCG one
/// host thread runs every vCPU, so the answer waits for that thread's turns: 64 CPUs on a
/// loaded 2-core host took up to 74 ms each, and 100 ms once failed CI. (Linux waits 10 s.)
const ANSWER_US: u64 = 1_000_000;

/// CPUs up, the boot CPU included: indices `0..ONLINE`.
static ONLINE: AtomicU32 = AtomicU32::new(1);
/// The index the CPU being started is to take; none once the boot CPU stopped waiting for it
/// (a CPU that comes up late must not take an index twice).
static STARTING: AtomicU32 = AtomicU32::new(NONE);
const NONE: u32 = u32::MAX;
/// Local APIC ids by CPU index, for IPIs.
static APIC_IDS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

/// CPUs online: `0..online()` are their indices.
#[inline]
pub fn online() -> u32 {
    ONLINE.load(Ordering::Acquire)
}

/// Interrupts CPU `index` to reschedule.
pub fn reschedule(index: usize) {
    interrupt(index, super::trap::RESCHEDULE_VECTOR as u8);
}

/// Interrupts CPU `index` with `vector`.
pub fn interrupt(index: usize, vector: u8) {
    apic::send_ipi(APIC_IDS[index].load(Ordering::Relaxed), vector);
}

/// Interrupts every other online CPU with `vector`.
pub fn interrupt_others(vector: u8) {
    let me = percpu::index() as usize;
    (0..online() as usize).filter(|&cpu| cpu != me).for_each(|cpu| interrupt(cpu, vector));
}

extern "C" {
    static ap_trampoline: u8;
    static ap_trampoline_end: u8;
    static ap_cr3: u8;
    static ap_stack: u8;
    static ap_percpu: u8;
    static ap_entry: u8;
}

core::arch::global_asm!(
    r#"
.section .rodata
.balign 16
.global ap_trampoline, ap_trampoline_end, ap_cr3, ap_stack, ap_percpu, ap_entry
.set TRAMPOLINE, 0x8000
ap_trampoline:
.code16
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    lgdtl ap_gdt_pointer - ap_trampoline + TRAMPOLINE
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $(ap_protected - ap_trampoline + TRAMPOLINE)
.code32
ap_protected:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $0x620, %eax                         /* PAE, OSFXSR, OSXMMEXCPT: as the boot CPU */
    mov %eax, %cr4
    mov ap_cr3 - ap_trampoline + TRAMPOLINE, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx                   /* EFER: long mode, no-execute */
    rdmsr
    or $0x900, %eax
    wrmsr
    mov %cr0, %eax
    and $~0x4, %eax
    or $0x80010022, %eax                    /* PG, WP, NE, MP */
    mov %eax, %cr0
    ljmp $0x18, $(ap_long - ap_trampoline + TRAMPOLINE)
.code64
ap_long:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov ap_stack - ap_trampoline + TRAMPOLINE, %rsp
    mov ap_percpu - ap_trampoline + TRAMPOLINE, %rdi
    mov ap_entry - ap_trampoline + TRAMPOLINE, %rax
    call *%rax
.balign 8
ap_gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF                /* 0x08: 32-bit code */
    .quad 0x00CF92000000FFFF                /* 0x10: data */
    .quad 0x00AF9A000000FFFF                /* 0x18: 64-bit code */
ap_gdt_pointer:
    .word ap_gdt_pointer - ap_gdt - 1
    .long ap_gdt - ap_trampoline + TRAMPOLINE
.balign 8
ap_cr3:   .quad 0
ap_stack: .quad 0
ap_percpu: .quad 0
ap_entry: .quad 0
ap_trampoline_end:
.text
"#,
    options(att_syntax)
);

/// A trampoline field's address in its copy at TRAMPOLINE.
fn field(symbol: *const u8) -> *mut u64 {
    (TRAMPOLINE + (symbol as u64 - (&raw const ap_trampoline) as u64)) as *mut u64
}

fn delay_us(us: u64) {
    let end = super::cpu::rdtsc() + us * crate::time::tsc_per_us();
    while super::cpu::rdtsc() < end {
        core::hint::spin_loop();
    }
}

/// Starts every other CPU of `cpus` (local APIC ids), one after the other; says which did not
/// answer. `hold_heap_ms`: how long to keep the heap locked after each STARTUP, held from
/// before it (a test's).
pub fn start_others(cpus: &[u32], hold_heap_ms: u64) {
    let me = apic::id();
    APIC_IDS[0].store(me, Ordering::Relaxed);
    // SAFETY: the trampoline page is identity-mapped, below the frames the allocator hands out.
    unsafe {
        let length = (&raw const ap_trampoline_end) as usize - (&raw const ap_trampoline) as usize;
        core::ptr::copy_nonoverlapping(&raw const ap_trampoline, TRAMPOLINE as *mut u8, length);
        field(&raw const ap_cr3).write(x86_64::registers::control::Cr3::read().0.start_address().as_u64());
        field(&raw const ap_entry).write(ap_main as *const () as u64);
    }
    for &apic_id in cpus.iter().filter(|&&id| id != me) {
        let index = ONLINE.load(Ordering::Acquire);
        if index as usize >= crate::debug::state::MAX_CPUS {
            crate::kprintln!("cpu with APIC id {}: more CPUs than the kernel keeps ({}), left off", apic_id, index);
            continue;
        }
        let Ok(stack) = crate::mm::stacks::allocate(crate::sched::DEFAULT_STACK) else {
            crate::kprintln!("cpu with APIC id {}: no stack for it, left off", apic_id);
            continue;
        };
        // Made here, not by the CPU: until it has its per-CPU block it must take no lock (a
        // contended lock's spin serves TLB shootdowns through that block, and a fault there,
        // before its IDT, resets the machine), and allocating takes the heap's.
        let cpu = Box::into_raw(Box::new(percpu::PerCpu::new(index)));
        // SAFETY: no CPU runs the trampoline now: the previous one has answered or given up.
        unsafe {
            field(&raw const ap_stack).write(stack.top());
            field(&raw const ap_percpu).write(cpu as u64);
        }
        core::mem::forget(stack); // the CPU's for good, as its block
        APIC_IDS[index as usize].store(apic_id, Ordering::Relaxed);
        STARTING.store(index, Ordering::Release);
        let held = (hold_heap_ms > 0).then(crate::mm::heap::hold);
        apic::send_init(apic_id);
        delay_us(10_000);
        for _ in 0..2 {
            apic::send_startup(apic_id, (TRAMPOLINE >> 12) as u8);
            delay_us(200);
        }
        if held.is_some() {
            delay_us(hold_heap_ms * 1000);
            drop(held);
        }
        let deadline = super::cpu::rdtsc() + ANSWER_US * crate::time::tsc_per_us();
        while ONLINE.load(Ordering::Acquire) == index && super::cpu::rdtsc() < deadline {
            core::hint::spin_loop();
        }
        // Taken back unless the CPU took it: then it is past the trampoline, about to be online.
        if STARTING.swap(NONE, Ordering::AcqRel) == index {
            // Back to waiting for a STARTUP: a CPU that is merely slow must not run the
            // trampoline while the next CPU's stack and block are written into it.
            apic::send_init(apic_id);
            crate::kprintln!("cpu {} (APIC id {}) did not answer in {} ms: running without it", index, apic_id, ANSWER_US / 1000);
            continue;
        }
        while ONLINE.load(Ordering::Acquire) == index {
            core::hint::spin_loop();
        }
        crate::debug::cpu_up(index as usize);
        crate::kprintln!("cpu {} online (APIC id {})", index, apic_id);
    }
    crate::kprintln!("cpus: {} online", ONLINE.load(Ordering::Acquire));
}

/// Where each started CPU arrives from the trampoline, on its own stack.
extern "C" fn ap_main(cpu: *mut percpu::PerCpu) -> ! {
    // SAFETY: the block `start_others` made for this CPU and left to it.
    let cpu = unsafe { &mut *cpu };
    let index = cpu.index;
    if STARTING.compare_exchange(index, NONE, Ordering::AcqRel, Ordering::Acquire).is_err() {
        loop {
            // Too late: the boot CPU went on without this one.
            unsafe { core::arch::asm!("cli", "hlt") };
        }
    }
    percpu::install(cpu); // first: any lock's spin reaches it
    gdt::init_other_cpu();
    idt::init();
    super::cpu::enable_wide_copies(true);
    apic::enable();
    // Online first: from here it answers TLB shootdowns, before anything can run on it.
    ONLINE.fetch_add(1, Ordering::Release);
    crate::sched::join_cpu(index as usize);
    apic::start_timer(crate::time::TICK_HZ);
    loop {
        crate::arch::cpu::wait_for_interrupt();
    }
}
