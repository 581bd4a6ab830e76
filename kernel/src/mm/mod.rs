//! Memory: physical frames, the kernel's page tables, the heap, thread stacks.

pub mod frame;
pub mod heap;
pub mod paging;
pub mod stacks;
pub mod tlb;
