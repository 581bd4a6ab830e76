//! Which artifacts the kernel will run, and their modules. Artifacts are native code and loading
//! one is `unsafe`, so the kernel runs only those whose SHA-256 digest was recorded when it was
//! built (see build.rs): a corrupted or substituted artifact is refused before wasmtime sees it.
//! An artifact is checked and deserialised once; a server started from it again reuses that.

use crate::sched::{Wait, WaitQueue};
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;
use alloc::string::String;
use sha2::{Digest, Sha256};
use wasmtime::Module;

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

/// Modules by artifact file name (boot modules never change): loaded, or being loaded by a
/// thread that others starting the same artifact wait for (several CPUs start servers at once).
static LOADED: IrqMutex<BTreeMap<String, Option<Module>>> = IrqMutex::new(BTreeMap::new());
/// Woken when a load ends.
static LOAD_ENDED: WaitQueue = WaitQueue::new();

/// The module of the artifact `file_name`, and whether this call loaded it (rather than a
/// start before it); the reason it is refused, if it is.
pub fn load(file_name: &str, bytes: &[u8]) -> Result<(Module, bool), String> {
    let mut loaded = LOADED.lock();
    while let Some(entry) = loaded.get(file_name) {
        if let Some(module) = entry {
            return Ok((module.clone(), false));
        }
        drop(loaded);
        LOAD_ENDED.wait_until(Wait::NONE, || !matches!(LOADED.lock().get(file_name), Some(None)));
        loaded = LOADED.lock();
    }
    loaded.insert(String::from(file_name), None);
    drop(loaded);
    let module = verify(file_name, bytes)
        .map_err(|refusal| alloc::format!("artifact {} refused: {}", file_name, refusal))
        // Safe only for trusted artifacts: `verify` checked this one against the build's digests.
        .and_then(|_| unsafe { Module::deserialize(super::engine::engine(), bytes) }
            .map_err(|error| alloc::format!("artifact {} refused by wasmtime: {:#}", file_name, error)));
    let mut loaded = LOADED.lock();
    match &module {
        Ok(module) => loaded.insert(String::from(file_name), Some(module.clone())),
        Err(_) => loaded.remove(file_name), // the next start tries again, and says why again
    };
    drop(loaded);
    LOAD_ENDED.wake_all();
    module.map(|module| (module, true))
}

/// Checks `bytes` may be run; returns the artifact's recorded file name.
fn verify(file_name: &str, bytes: &[u8]) -> Result<&'static str, Refusal> {
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
