//! The parallel speed-up benchmark (`bench=parallel work=N pairs=P` on the command line): one copy of
//! the boot module `compute` (it counts the primes below N, calling the kernel only to print)
//! per CPU, all pinned to CPU 0 in one round, one pinned to each CPU in the other, and the guest
//! time (TSC) from the first start to the last end of each round. Under multi-threaded TCG the
//! CPUs run in parallel on the host, so the ratio of the two placements' times is the speed-up.

use crate::arch::smp;
use crate::wasm::{self, exits, SpawnLimits};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// `count` pairs of rounds, one of each placement back to back, in turns which goes first. The
/// host's own speed drifts (a loop timed on it varies 2x from one tenth of a second to the
/// next), so a ratio is taken within each pair, where both rounds saw about the same host, and
/// the median pair is the figure: a pair that straddled a slow spell is an outlier either way.
/// Many short rounds (about a tenth of a second at the default work) rather than a few long
/// ones, so that most pairs fall between the host's slow spells.
pub fn run(work: u64, count: usize) {
    let cpus = smp::online() as usize;
    // The module loaded once, so no round pays for it.
    round(1, |_| 0, "1000");
    let work = work.to_string();
    let mut pairs: Vec<(u64, u64)> = (0..count.max(1)) // a median needs one pair
        .map(|pair| {
            let together = || round(cpus, |_| 0, &work);
            let spread = || round(cpus, |i| i, &work);
            if pair % 2 == 0 {
                let t = together();
                (t, spread())
            } else {
                let s = spread();
                (together(), s)
            }
        })
        .collect();
    let ratio = |&(together, spread): &(u64, u64)| together * 100 / spread.max(1);
    let each: Vec<String> = pairs.iter().map(|p| alloc::format!("{}.{:02}", ratio(p) / 100, ratio(p) % 100)).collect();
    pairs.sort_by_key(ratio);
    let (together, spread) = pairs[pairs.len() / 2];
    let median = ratio(&(together, spread));
    kprintln!("parallel: {} servers on 1 CPU: {} cycles, on {} CPUs: {} cycles, speed-up {}.{:02} (median of {} pairs: {})",
              cpus, together, cpus, spread, median / 100, median % 100, pairs.len(), each.join(" "));
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
