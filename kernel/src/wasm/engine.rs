//! The kernel's one wasmtime engine: the shared configuration (engine/config) and this CPU's
//! features.

use spin::Once;
use wasmtime::{Config, Engine};

static ENGINE: Once<Engine> = Once::new();

/// What this CPU offers, by wasmtime's feature names. AVX, FMA and BMI (VEX-encoded) are
/// reported absent: a thread's context holds only the SSE state (the kernel uses AVX only for
/// its own copies with interrupts off, `rt::copy_wide`).
fn detect(feature: &str) -> Option<bool> {
    use core::arch::x86_64::__cpuid;
    let basic = __cpuid(1);
    let extended = __cpuid(0x8000_0001);
    let bit = |register: u32, bit: u32| register & (1 << bit) != 0;
    Some(match feature {
        "sse3" => bit(basic.ecx, 0),
        "ssse3" => bit(basic.ecx, 9),
        "cmpxchg16b" => bit(basic.ecx, 13),
        "sse4.1" => bit(basic.ecx, 19),
        "sse4.2" => bit(basic.ecx, 20),
        "popcnt" => bit(basic.ecx, 23),
        "lzcnt" => bit(extended.ecx, 5),
        "avx" | "avx2" | "fma" | "bmi1" | "bmi2" | "avx512f" | "avx512dq" | "avx512vl" | "avx512vbmi"
        | "avx512vnni" | "avx512bitalg" => false,
        _ => return None,
    })
}

pub fn init() -> wasmtime::Result<()> {
    let mut config = Config::new();
    kwast_engine_config::configure(&mut config);
    unsafe { config.detect_host_feature(detect) };
    let engine = Engine::new(&config)?;
    ENGINE.call_once(|| engine);
    Ok(())
}

pub fn engine() -> &'static Engine {
    ENGINE.get().expect("wasm engine not initialised")
}
