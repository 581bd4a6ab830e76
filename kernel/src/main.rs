//! Kwast: a microkernel that runs WebAssembly servers in ring 0.

#![no_std]
#![no_main]

mod arch;
mod boot;
mod debug;
#[macro_use]
mod console;
mod ktest;
mod panic;
mod rt;

use arch::qemu_exit::{exit, ExitCode};
use boot::multiboot::BootInfo;

/// Kernel command-line words, e.g. `test=frame_alloc`.
fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_whitespace().find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

#[no_mangle]
extern "C" fn kmain(magic: u32, info_addr: usize) -> ! {
    console::init();
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

    debug::state::update(|state| {
        state.cpu_count = 1;
        state.cpus[0].online = 1;
    });

    if let Some(name) = cmdline_value(boot.cmdline(), "test") {
        ktest::run(name);
    }
    if boot.cmdline().split_whitespace().any(|word| word == "hold") {
        // Keep the machine up for a debugger or the state reader.
        kprintln!("holding: the machine stays up");
        loop {
            unsafe { core::arch::asm!("hlt") };
        }
    }
    // Nothing runs servers yet: the system is idle, so it shuts down cleanly.
    kprintln!("nothing left to run: shutting down");
    exit(ExitCode::Success)
}
