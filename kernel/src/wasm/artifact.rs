//! Which artifacts the kernel will run. Artifacts are native code and loading one is `unsafe`,
//! so the kernel runs only those whose SHA-256 digest was recorded when it was built (see
//! build.rs): a corrupted or substituted artifact is refused before wasmtime sees it.

use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/trusted_artifacts.rs"));

#[derive(Debug)]
pub enum Refusal {
    /// Not a precompiled artifact at all (a raw .wasm, say).
    NotAnArtifact,
    /// Its digest is not among those this kernel was built with.
    UnknownDigest([u8; 32]),
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Refusal::NotAnArtifact => write!(f, "not a precompiled artifact (.cwasm): run `kwast-bench build`"),
            Refusal::UnknownDigest(digest) => {
                write!(f, "digest ")?;
                for byte in digest {
                    write!(f, "{:02x}", byte)?;
                }
                write!(f, " is not one this kernel was built with ({} trusted): corrupted, or rebuild with `kwast-bench build`",
                       TRUSTED_ARTIFACTS.len())
            }
        }
    }
}

/// Checks `bytes` may be run; returns the artifact's recorded file name.
pub fn verify(file_name: &str, bytes: &[u8]) -> Result<&'static str, Refusal> {
    if !file_name.ends_with(".cwasm") {
        return Err(Refusal::NotAnArtifact);
    }
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    TRUSTED_ARTIFACTS
        .iter()
        .find(|(trusted, _)| *trusted == digest)
        .map(|&(_, name)| name)
        .ok_or(Refusal::UnknownDigest(digest))
}
