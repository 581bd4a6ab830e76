//! The kernel heap: `linked_list_allocator` over a mapped region. Exhaustion is an error the
//! caller sees (a null allocation, `try_reserve` failing, or a panic naming the size), never a hang.

use super::paging::{map_fresh, HEAP_BASE};
use crate::sync::IrqMutex;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::Heap;

/// The allocator behind an `IrqMutex`: an interrupt handler (or a thread preempted mid-way)
/// can never find the heap locked by the code it interrupted.
struct KernelHeap(IrqMutex<Heap>);

unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.lock().allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.lock().deallocate(NonNull::new_unchecked(ptr), layout);
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(IrqMutex::new(Heap::empty()));

const MIN_SIZE: u64 = 4 << 20;
const MAX_SIZE: u64 = 64 << 20;

/// Maps a quarter of free memory (4 to 64 MiB) as the heap. Returns its size.
pub fn init() -> u64 {
    let (free, _) = super::frame::counts();
    let size = (free as u64 * super::frame::FRAME_SIZE / 4).clamp(MIN_SIZE, MAX_SIZE);
    map_fresh(HEAP_BASE, size).expect("no memory for the kernel heap");
    unsafe { HEAP.0.lock().init(HEAP_BASE as *mut u8, size as usize) };
    size
}

/// The heap, locked until the guard goes: for a test that has another CPU meet it held.
pub fn hold() -> crate::sync::IrqMutexGuard<'static, Heap> {
    HEAP.0.lock()
}

/// Bytes in use.
pub fn used() -> usize {
    HEAP.0.lock().used()
}

crate::kernel_test!(heap, {
    use alloc::{boxed::Box, string::String, vec::Vec};
    let before = used();
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for size in (1..=8192).step_by(61) {
        blocks.push((0..size).map(|i| (i * 7 + size) as u8).collect());
    }
    for block in blocks.iter_mut().step_by(2) {
        let old = block.len();
        block.resize(old * 3 + 5, 0xAB); // realloc, growing
        block.truncate(old);
        block.shrink_to_fit(); // realloc, shrinking
    }
    for block in &blocks {
        let size = block.len();
        assert!(block.iter().enumerate().all(|(i, &b)| b == (i * 7 + size) as u8), "block of {} corrupted", size);
    }
    let boxed = Box::new([0x5Au8; 3000]);
    let text: String = (0..500).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    assert!(boxed.iter().all(|&b| b == 0x5A) && text.len() == 500);
    drop((blocks, boxed, text));
    assert_eq!(used(), before, "everything freed");

    let mut huge: Vec<u8> = Vec::new();
    assert!(huge.try_reserve(1 << 40).is_err(), "1 TiB must not fit");
    // Through the allocator itself: LLVM may elide an unused `alloc::alloc::alloc`.
    let layout = Layout::from_size_align(MAX_SIZE as usize * 2, 8).unwrap();
    assert!(unsafe { HEAP.alloc(layout) }.is_null(), "exhaustion returns null");
});
