// The linker script is passed here (not in .cargo/config.toml) so its path is absolute.
// The digests of the server artifacts this kernel may run are compiled in from the file that
// `kwast-bench build` writes and names in KWAST_ARTIFACT_DIGESTS (see src/wasm/artifact.rs).
// The compute kernels of servers/bench are compiled natively into the kernel, for the
// wasm-vs-native benchmark (see src/native_bench.rs).
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/linker.ld");
    println!("cargo:rerun-if-changed=linker.ld");
    compile_native_bench(Path::new(&dir).join("../servers/bench").as_path());

    println!("cargo:rerun-if-env-changed=KWAST_ARTIFACT_DIGESTS");
    let mut table = String::from("pub static TRUSTED_ARTIFACTS: &[([u8; 32], &str)] = &[\n");
    match std::env::var("KWAST_ARTIFACT_DIGESTS") {
        Ok(path) => {
            println!("cargo:rerun-if-changed={path}");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let (hex, name) = line.split_once(' ').unwrap_or_else(|| panic!("{path}:{}: expected `DIGEST NAME`", number + 1));
                assert!(hex.len() == 64, "{path}:{}: not a SHA-256 digest", number + 1);
                let bytes: Vec<String> = (0..32).map(|i| format!("0x{}", &hex[2 * i..2 * i + 2])).collect();
                writeln!(table, "    ([{}], {:?}),", bytes.join(", "), name.trim()).unwrap();
            }
        }
        Err(_) => println!("cargo:warning=KWAST_ARTIFACT_DIGESTS is not set: this kernel will refuse every server (build with `kwast-bench build`)"),
    }
    table.push_str("];\n");
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(format!("{out}/trusted_artifacts.rs"), table).unwrap();
}

/// The benchmark's C files but its wasm `main.c`, as the wasm server gets them but for x86-64:
/// the same -O2, freestanding, and what the kernel needs (no red zone: interrupts push onto the
/// running stack; static code at the kernel's addresses).
fn compile_native_bench(source: &Path) {
    println!("cargo:rerun-if-changed={}", source.display());
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut objects = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(source).unwrap_or_else(|e| panic!("{}: {e}", source.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "c") && !path.ends_with("main.c"))
        .collect();
    files.sort();
    for file in files {
        let object = out.join(file.file_name().unwrap()).with_extension("o");
        let status = Command::new("clang")
            .args(["--target=x86_64-unknown-none-elf", "-O2", "-ffreestanding", "-ffp-contract=off", "-mno-red-zone",
                   "-fno-pic", "-fno-stack-protector", "-Wall", "-Wextra", "-Werror", "-c"])
            .arg(&file).arg("-o").arg(&object)
            .status().expect("clang is missing (scripts/setup installs it)");
        assert!(status.success(), "compiling {} failed", file.display());
        objects.push(object);
    }
    let archive = out.join("libnative_bench.a");
    let _ = std::fs::remove_file(&archive);
    let status = Command::new("llvm-ar").arg("crs").arg(&archive).args(&objects).status().expect("llvm-ar is missing");
    assert!(status.success(), "archiving the native benchmark failed");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=native_bench");
}
