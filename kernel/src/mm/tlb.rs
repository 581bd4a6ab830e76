//! TLB invalidation after unmapping. This is the one place a shootdown happens: with other
//! CPUs online (SMP), it must also interrupt each of them to invalidate the same pages.

use x86_64::instructions::tlb;
use x86_64::VirtAddr;

pub fn flush_page(address: u64) {
    tlb::flush(VirtAddr::new(address));
}
