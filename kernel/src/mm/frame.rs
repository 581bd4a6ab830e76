//! Physical frame allocator: a bitmap over the first 4 GiB (the kernel's identity map), built
//! from the Multiboot memory map with the low megabyte, the kernel image, the boot modules and
//! the Multiboot data taken out.

use crate::boot::multiboot::BootInfo;
use crate::sync::IrqMutex;

pub const FRAME_SIZE: u64 = 4096;
const MAX_MEMORY: u64 = 4 << 30;
const FRAMES: usize = (MAX_MEMORY / FRAME_SIZE) as usize;
const WORDS: usize = FRAMES / 64;

/// One bit per frame, set when the frame is in use or not RAM.
struct Bitmap {
    used: [u64; WORDS],
    free: usize,
    total: usize,
    /// Where the next search starts: allocations go upward, frees move it back.
    hint: usize,
}

static FRAMES_MAP: IrqMutex<Bitmap> = IrqMutex::new(Bitmap { used: [u64::MAX; WORDS], free: 0, total: 0, hint: 0 });

impl Bitmap {
    fn is_used(&self, frame: usize) -> bool {
        self.used[frame / 64] & (1 << (frame % 64)) != 0
    }

    fn set_free(&mut self, frame: usize) {
        self.used[frame / 64] &= !(1 << (frame % 64));
    }

    fn set_used(&mut self, frame: usize) {
        self.used[frame / 64] |= 1 << (frame % 64);
    }
}

pub fn init(boot: &BootInfo) {
    extern "C" {
        static __kernel_start: u8;
        static __kernel_end: u8;
    }
    let kernel = (&raw const __kernel_start) as u64..(&raw const __kernel_end) as u64;
    // Everything Multiboot handed us (modules, their strings, the info block) lies below this.
    let boot_data_end = boot.highest_address().max(kernel.end);
    let reserved_end = boot_data_end.div_ceil(FRAME_SIZE);

    let mut map = FRAMES_MAP.lock();
    for region in boot.memory_map().filter(|r| r.usable) {
        let first = region.base.div_ceil(FRAME_SIZE).max(reserved_end);
        let end = ((region.base + region.length) / FRAME_SIZE).min(FRAMES as u64);
        for frame in first..end {
            map.set_free(frame as usize);
            map.free += 1;
        }
    }
    map.total = map.free;
    map.hint = reserved_end as usize;
}

/// A free frame's physical address, or None when memory is exhausted.
pub fn allocate() -> Option<u64> {
    let mut map = FRAMES_MAP.lock();
    let start = map.hint;
    let found = (start..FRAMES).chain(0..start).find(|&f| {
        // Skip whole used words quickly.
        if f % 64 == 0 && map.used[f / 64] == u64::MAX {
            return false;
        }
        !map.is_used(f)
    })?;
    map.set_used(found);
    map.free -= 1;
    map.hint = found + 1;
    Some(found as u64 * FRAME_SIZE)
}

/// A zero-filled frame.
pub fn allocate_zeroed() -> Option<u64> {
    let frame = allocate()?;
    unsafe { core::ptr::write_bytes(frame as *mut u8, 0, FRAME_SIZE as usize) };
    Some(frame)
}

pub fn free(address: u64) {
    let frame = (address / FRAME_SIZE) as usize;
    let mut map = FRAMES_MAP.lock();
    assert!(address % FRAME_SIZE == 0 && map.is_used(frame), "freeing frame {:#x} that is not allocated", address);
    map.set_free(frame);
    map.free += 1;
    map.hint = map.hint.min(frame);
}

/// (free, total) frames.
pub fn counts() -> (usize, usize) {
    let map = FRAMES_MAP.lock();
    (map.free, map.total)
}

crate::kernel_test!(frame_alloc, {
    extern "C" {
        static __kernel_end: u8;
    }
    let kernel_end = (&raw const __kernel_end) as u64;
    let (free_before, total) = counts();
    assert!(total > 1000, "only {} frames", total);
    let mut frames = alloc::vec::Vec::new();
    for i in 0..1000u64 {
        let frame = allocate().expect("out of frames");
        assert_eq!(frame % FRAME_SIZE, 0);
        assert!(frame >= kernel_end, "frame {:#x} inside the kernel image or below it", frame);
        unsafe { core::ptr::write_volatile(frame as *mut u64, i) };
        frames.push(frame);
    }
    let mut sorted = frames.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), frames.len(), "a frame was handed out twice");
    for (i, &frame) in frames.iter().enumerate() {
        assert_eq!(unsafe { core::ptr::read_volatile(frame as *const u64) }, i as u64);
    }
    assert_eq!(counts().0, free_before - 1000);
    for &frame in &frames {
        free(frame);
    }
    assert_eq!(counts().0, free_before);
    let again = allocate().unwrap();
    assert!(frames.contains(&again), "freed frames are reused");
    free(again);
});
