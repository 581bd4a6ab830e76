//! The wasmtime configuration shared by the host precompiler and the kernel. wasmtime checks
//! these settings when the kernel deserialises an artifact; keeping them in one function makes
//! a mismatch impossible rather than merely detected.
#![no_std]

use wasmtime::Config;

/// Artifacts are built for, and the kernel is, the host Linux target triple (the kernel is a
/// freestanding binary for that target; see kernel/.cargo/config.toml).
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Largest wasm stack a server may use before trapping with a stack overflow.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// Address space reserved for each linear memory: all a 32-bit index can reach (see `configure`).
pub const MEMORY_RESERVATION: u64 = 4 << 30;

/// Inaccessible address space after each reservation: an access at index + offset below
/// 4 GiB + this needs no bounds check either (wasmtime's default on 64-bit hosts).
pub const MEMORY_GUARD: u64 = 32 << 20;

/// CPU features to compile for, per QEMU CPU model (configs' `cpu.model`); None if unknown.
/// The kernel accepts an artifact only if the CPU it runs on has every feature named here.
/// Nothing VEX-encoded (AVX, AVX2, FMA, BMI): a thread's context holds only the SSE state (the
/// kernel turns AVX on only for its own copies, with interrupts off), and the kernel reports
/// these features absent.
pub fn cpu_features(model: &str) -> Option<&'static [&'static str]> {
    const NEHALEM: &[&str] = &["sse3", "ssse3", "sse4.1", "sse4.2", "popcnt"];
    const HASWELL: &[&str] = &["sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "lzcnt"];
    Some(match model {
        "qemu64" | "max" => &["sse3"],
        "Nehalem" | "Westmere" | "SandyBridge" | "IvyBridge" => NEHALEM,
        "Haswell" | "Broadwell" | "Skylake-Client" => HASWELL,
        _ => return None,
    })
}

pub fn configure(config: &mut Config) {
    // Guard pages instead of bounds checks, as wasmtime on Linux: each linear memory reserves
    // every address a 32-bit index plus an offset can reach, the kernel's page tables back only
    // what it has grown to, and an access past that is a page fault that the kernel's fault
    // handler hands to wasmtime (wasm/platform.rs), which turns it into the trap it is. So
    // Cranelift emits no bounds check; division by zero and `unreachable` trap in hardware too.
    config.signals_based_traps(true);
    config.memory_reservation(MEMORY_RESERVATION);
    config.memory_guard_size(MEMORY_GUARD);
    config.memory_reservation_for_growth(0);
    config.guard_before_linear_memory(false);
    config.memory_may_move(false);
    config.memory_init_cow(false);
    // No epoch checks: they cost a third of the instructions of compute loops. The kernel stops
    // a server that computes (a kill, its watchdog) from its timer interrupt instead, through
    // the trap handler (kernel/src/wasm/stop.rs).
    config.epoch_interruption(false);
    config.max_wasm_stack(MAX_WASM_STACK);
    // Servers are plain C: no SIMD (the baseline qemu64 CPU lacks the SSE4.1 Cranelift's SIMD
    // lowering wants), no shared memory.
    config.wasm_simd(false);
    config.wasm_relaxed_simd(false);
}
