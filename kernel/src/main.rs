//! Kwast: a microkernel that runs WebAssembly servers in ring 0.

#![no_std]
#![no_main]

extern crate alloc;

#[macro_use]
mod console;
mod arch;
mod boot;
mod debug;
mod ipc;
mod ktest;
mod ktest_profile;
mod mm;
mod native_bench;
mod parallel_bench;
mod panic;
mod process;
mod rt;
mod sched;
mod sync;
mod time;
mod random;
mod wasm;

use arch::qemu_exit::{exit, ExitCode};
use boot::multiboot::BootInfo;

/// Kernel command-line words, e.g. `test=frame_alloc`.
fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_whitespace().find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

#[no_mangle]
extern "C" fn kmain(magic: u32, info_addr: usize) -> ! {
    console::init();
    debug::port::init();
    kprintln!("Kwast {} booting", env!("CARGO_PKG_VERSION"));
    let Some(boot) = (unsafe { BootInfo::new(magic, info_addr) }) else {
        panic!("not started by a Multiboot loader (magic {:#x})", magic);
    };
    kprintln!("command line: {:?}", boot.cmdline());
    for region in boot.memory_map() {
        let kind = if region.usable { "usable" } else { "reserved" };
        kprintln!("memory {:#012x}-{:#012x} {}", region.base, region.base + region.length, kind);
    }

    let count = boot.modules().count();
    kprintln!("modules: {}", count);
    for module in boot.modules() {
        kprintln!("  module {} ({} bytes) at {:#x}: {:?}", module.name(), module.bytes().len(), module.start, module.cmdline);
    }

    let tsc_per_us = arch::init();
    time::init(tsc_per_us);
    mm::frame::init(&boot);
    mm::paging::init();
    let heap = mm::heap::init();
    let (free, _) = mm::frame::counts();
    kprintln!("memory: {} KiB free after a {} KiB heap; TSC {} MHz, APIC timer {} ticks/ms",
              free as u64 * 4, heap >> 10, tsc_per_us, arch::apic::timer_ticks_per_ms());
    sched::init();
    // Published once the threads are: a reader that sees the CPU online sees kmain and idle.
    debug::cpu_online(tsc_per_us);
    match arch::acpi::platform() {
        Ok(platform) => {
            arch::ioapic::set_overrides(&platform.irq_overrides);
            // `cpu.phantom=ID,...`: APIC ids started first, as though the MADT listed them, as
            // firmware that names a CPU that is not there: the boot CPU must go on without it.
            let phantoms = cmdline_value(boot.cmdline(), "cpu.phantom").into_iter().flat_map(|ids| ids.split(','));
            let cpus: alloc::vec::Vec<u32> = phantoms.filter_map(|id| id.parse().ok()).chain(platform.cpus.iter().copied()).collect();
            // `smp.hold_heap_ms=N`: the heap is locked from before each CPU's STARTUP until N ms
            // after it, so that CPU meets a held lock on its way up (tests/test_kernel.py).
            let hold_heap_ms = cmdline_value(boot.cmdline(), "smp.hold_heap_ms").and_then(|ms| ms.parse().ok()).unwrap_or(0);
            arch::smp::start_others(&cpus, hold_heap_ms);
        }
        Err(why) => kprintln!("cpus: 1 online ({}: the boot CPU alone, ISA IRQs as numbered)", why),
    }
    random::init();
    if let Err(error) = wasm::engine::init() {
        panic!("the wasm engine does not start: {:#}", error);
    }
    arch::apic::start_timer(time::TICK_HZ);
    arch::cpu::enable_interrupts();

    if let Some(name) = cmdline_value(boot.cmdline(), "test") {
        ktest::run(name);
    }
    if cmdline_value(boot.cmdline(), "bench") == Some("native") {
        native_bench::run();
    }
    wasm::register_boot_modules(&boot);
    if cmdline_value(boot.cmdline(), "bench") == Some("parallel") {
        let number = |key, default| cmdline_value(boot.cmdline(), key).and_then(|v| v.parse().ok()).unwrap_or(default);
        parallel_bench::run(number("work", 300_000), number("pairs", 31) as usize);
        exit(ExitCode::Success);
    }
    let servers = wasm::start_boot_servers();
    kprintln!("started {} servers", servers);
    if boot.cmdline().split_whitespace().any(|word| word == "hold") {
        // Keep the machine up for a debugger or the state reader.
        kprintln!("holding: the machine stays up");
        loop {
            sched::sleep_ms(1000);
        }
    }
    wasm::exits::wait_all();
    kprintln!("nothing left to run: shutting down");
    exit(ExitCode::Success)
}
