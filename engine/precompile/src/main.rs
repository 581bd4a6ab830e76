//! kwast-precompile --cpu MODEL IN.wasm OUT.cwasm
//!
//! Compiles a server with Cranelift for the kernel's wasmtime configuration and the CPU
//! features of a QEMU CPU model. A module wasmtime rejects (invalid wasm, a feature the kernel
//! does not enable) fails here with wasmtime's reason.

use std::process::ExitCode;
use wasmtime::{Config, Engine};

fn compile(cpu: &str, input: &str, output: &str) -> Result<usize, String> {
    let features = kwast_engine_config::cpu_features(cpu)
        .ok_or_else(|| format!("unknown CPU model {cpu:?}: see cpu_features in engine/config"))?;
    let mut config = Config::new();
    kwast_engine_config::configure(&mut config);
    config.target(kwast_engine_config::TARGET).map_err(|e| format!("{e:#}"))?;
    for feature in features {
        // Cranelift names x86 features has_<name> without dots (sse4.1 -> has_sse41).
        let flag = format!("has_{}", feature.replace('.', ""));
        unsafe { config.cranelift_flag_enable(&flag) };
    }
    let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
    let wasm = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let artifact = engine.precompile_module(&wasm).map_err(|e| format!("{input}: {e:#}"))?;
    std::fs::write(output, &artifact).map_err(|e| format!("{output}: {e}"))?;
    Ok(artifact.len())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flag, cpu, input, output] = args.as_slice() else {
        eprintln!("usage: kwast-precompile --cpu MODEL IN.wasm OUT.cwasm");
        return ExitCode::from(2);
    };
    if flag != "--cpu" {
        eprintln!("usage: kwast-precompile --cpu MODEL IN.wasm OUT.cwasm");
        return ExitCode::from(2);
    }
    match compile(cpu, input, output) {
        Ok(size) => {
            println!("{output}: {size} bytes for {cpu}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
