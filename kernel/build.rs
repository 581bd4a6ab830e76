// The linker script is passed here (not in .cargo/config.toml) so its path is absolute.
// The digests of the server artifacts this kernel may run are compiled in from the file that
// `kwast-bench build` writes and names in KWAST_ARTIFACT_DIGESTS (see src/wasm/artifact.rs).
use std::fmt::Write;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/linker.ld");
    println!("cargo:rerun-if-changed=linker.ld");

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
