//! The native side of the wasm-vs-native benchmark: the compute kernels of `servers/bench`,
//! compiled for x86-64 by build.rs from the same C the `bench` server is compiled from, run in
//! ring 0 when the command line says `bench=native`. Under -icount shift=0 the TSC counts guest
//! instructions, so `kwast-bench bench` compares the two counts exactly.

use core::ffi::{c_char, CStr};

/// `struct bench_kernel` of servers/bench/kernels.h.
#[repr(C)]
struct BenchKernel {
    name: *const c_char,
    run: extern "C" fn(u32) -> u32,
    size: u32,
}

extern "C" {
    static bench_kernels: [BenchKernel; 0];
    static bench_kernel_count: u32;
}

/// Runs each kernel once to warm up and once counted, as the server does, and prints its count
/// and checksum: `native sort: 1234 instructions, checksum 0badcafe`.
pub fn run() {
    // SAFETY: the C table holds `bench_kernel_count` entries and lives forever.
    let kernels = unsafe { core::slice::from_raw_parts(bench_kernels.as_ptr(), bench_kernel_count as usize) };
    for kernel in kernels {
        let name = unsafe { CStr::from_ptr(kernel.name) }.to_str().unwrap_or("?");
        (kernel.run)(kernel.size);
        let start = crate::arch::cpu::rdtsc();
        let checksum = (kernel.run)(kernel.size);
        let spent = crate::arch::cpu::rdtsc() - start;
        kprintln!("native {}: {} instructions, checksum {:08x}", name, spent, checksum);
    }
}
