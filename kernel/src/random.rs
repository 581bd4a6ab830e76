//! Kernel random numbers: ChaCha20 seeded at boot from RDRAND when the CPU has it, mixed with
//! TSC readings. Without RDRAND (QEMU's qemu64 model) the seed is only as unpredictable as the
//! boot timing: good for tests and hashing, not for secrets.

use crate::sync::IrqMutex;
use core::arch::x86_64::{__cpuid, _rdrand64_step};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

static RNG: IrqMutex<Option<ChaCha20Rng>> = IrqMutex::new(None);

fn has_rdrand() -> bool {
    __cpuid(1).ecx & (1 << 30) != 0
}

#[target_feature(enable = "rdrand")]
unsafe fn rdrand() -> u64 {
    let mut value = 0;
    for _ in 0..10 {
        if _rdrand64_step(&mut value) == 1 {
            break;
        }
    }
    value
}

pub fn init() {
    let rdrand_available = has_rdrand();
    let mut seed = [0u8; 32];
    for chunk in seed.chunks_mut(8) {
        let mut word = crate::arch::cpu::rdtsc().rotate_left(17);
        if rdrand_available {
            word ^= unsafe { rdrand() };
        }
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    *RNG.lock() = Some(ChaCha20Rng::from_seed(seed));
}

pub fn fill(buffer: &mut [u8]) {
    RNG.lock().as_mut().expect("random not initialised").fill_bytes(buffer);
}
