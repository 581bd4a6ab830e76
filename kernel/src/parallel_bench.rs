//! The parallel speed-up benchmark (`bench=parallel work=N` on the command line): one copy of
//! the boot module `compute` (it counts the primes below N, calling the kernel only to print)
//! per CPU, first all pinned to CPU 0, then one pinned to each CPU, and the guest time (TSC)
//! from the first start to the last end of each round. Under multi-threaded TCG the CPUs run
//! in parallel on the host, so the ratio of the two placements' times is the speed-up.

use crate::arch::smp;
use crate::wasm::{self, exits, SpawnLimits};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Rounds of each placement, taking turns: the fastest of each counts, as a host busy with
/// something else slows a round down but never speeds one up.
const ROUNDS: usize = 3;

pub fn run(work: u64) {
    let cpus = smp::online() as usize;
    // The module loaded once, so no round pays for it.
    round(1, |_| 0, "1000");
    let work = work.to_string();
    let (mut together, mut spread) = (u64::MAX, u64::MAX);
    for _ in 0..ROUNDS {
        together = together.min(round(cpus, |_| 0, &work));
        spread = spread.min(round(cpus, |i| i, &work));
    }
    let ratio = together * 100 / spread.max(1);
    kprintln!("parallel: {} servers on 1 CPU: {} cycles, on {} CPUs: {} cycles, speed-up {}.{:02}",
              cpus, together, cpus, spread, ratio / 100, ratio % 100);
}

/// Guest time from starting `count` copies of compute, copy i on CPU `cpu_of(i)`, to their end.
fn round(count: usize, cpu_of: impl Fn(usize) -> usize, work: &str) -> u64 {
    let start = crate::arch::cpu::rdtsc();
    let limits = |i| SpawnLimits { cpu: Some(cpu_of(i)), ..SpawnLimits::default() };
    let servers: Vec<_> = (0..count)
        .map(|i| wasm::spawn("compute", alloc::vec![String::from(work)], limits(i), Vec::new(), None)
            .expect("bench=parallel needs the boot module compute"))
        .collect();
    while servers.iter().any(|&id| exits::exit_of(id).is_none()) {
        crate::sched::sleep_ms(1);
    }
    crate::arch::cpu::rdtsc() - start
}
