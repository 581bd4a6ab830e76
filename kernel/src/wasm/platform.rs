//! The hooks wasmtime's custom platform calls (its `capi.rs`), implemented with the kernel's
//! page tables and threads: virtual memory for linear memories and compiled code, and the
//! per-thread TLS slots. Memory comes from the `WASM_BASE` region, backed by fresh zeroed
//! frames: there is no demand paging, so what is accessible is always backed.

use crate::mm::frame::{self, FRAME_SIZE};
use crate::mm::paging::{self, Access, WASM_BASE, WASM_SIZE};
use core::sync::atomic::{AtomicU64, Ordering};

const PROT_READ: u32 = 1;
const PROT_WRITE: u32 = 2;
const PROT_EXEC: u32 = 4;

const ENOMEM: i32 = -12;
const EINVAL: i32 = -22;

/// Address space is handed out upward and never reused: a terabyte outlasts any boot.
static NEXT: AtomicU64 = AtomicU64::new(WASM_BASE);

fn access(prot: u32) -> Option<Access> {
    (prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0)
        .then_some(Access { write: prot & PROT_WRITE != 0, execute: prot & PROT_EXEC != 0 })
}

fn pages(start: *mut u8, size: usize) -> Option<impl Iterator<Item = u64>> {
    let start = start as u64;
    let end = start.checked_add(size as u64)?;
    (start % FRAME_SIZE == 0 && start >= WASM_BASE && end <= WASM_BASE + WASM_SIZE)
        .then(|| (start..end.next_multiple_of(FRAME_SIZE)).step_by(FRAME_SIZE as usize))
}

fn release(page: u64) {
    if let Some(frame) = paging::unmap(page) {
        frame::free(frame);
    }
}

/// Makes `page` accessible as `access`, backing it with a zeroed frame if it has none.
fn back(page: u64, access: Access) -> bool {
    if paging::protect(page, access) {
        return true;
    }
    let Some(frame) = frame::allocate_zeroed() else { return false };
    if paging::map_with(page, frame, access).is_err() {
        frame::free(frame);
        return false;
    }
    true
}

fn set(start: *mut u8, size: usize, prot: u32, fresh: bool) -> i32 {
    let Some(pages) = pages(start, size) else { return EINVAL };
    for page in pages {
        if fresh {
            release(page);
        }
        match access(prot) {
            Some(access) => {
                if !back(page, access) {
                    return ENOMEM;
                }
            }
            // Inaccessible: nothing backs it (its contents are not kept).
            None => release(page),
        }
    }
    0
}

#[no_mangle]
pub extern "C" fn wasmtime_page_size() -> usize {
    FRAME_SIZE as usize
}

#[no_mangle]
pub unsafe extern "C" fn wasmtime_mmap_new(size: usize, prot: u32, ret: *mut *mut u8) -> i32 {
    let size = (size as u64).next_multiple_of(FRAME_SIZE);
    let start = NEXT.fetch_add(size, Ordering::Relaxed);
    if start + size > WASM_BASE + WASM_SIZE {
        return ENOMEM;
    }
    // A reservation (no access) is fresh address space: nothing to unmap, nothing to back.
    let result = if access(prot).is_none() { 0 } else { set(start as *mut u8, size as usize, prot, false) };
    if result != 0 {
        set(start as *mut u8, size as usize, 0, true);
        return result;
    }
    *ret = start as *mut u8;
    0
}

#[no_mangle]
pub extern "C" fn wasmtime_mmap_remap(addr: *mut u8, size: usize, prot: u32) -> i32 {
    set(addr, size, prot, true)
}

#[no_mangle]
pub extern "C" fn wasmtime_munmap(addr: *mut u8, size: usize) -> i32 {
    set(addr, size, 0, true)
}

#[no_mangle]
pub extern "C" fn wasmtime_mprotect(addr: *mut u8, size: usize, prot: u32) -> i32 {
    set(addr, size, prot, false)
}

/// No copy-on-write images: wasmtime then initialises linear memory by copying.
#[no_mangle]
pub unsafe extern "C" fn wasmtime_memory_image_new(_data: *const u8, _len: usize, ret: *mut *mut u8) -> i32 {
    *ret = core::ptr::null_mut();
    0
}

#[no_mangle]
pub extern "C" fn wasmtime_memory_image_map_at(_image: *mut u8, _addr: *mut u8, _len: usize) -> i32 {
    EINVAL
}

#[no_mangle]
pub extern "C" fn wasmtime_memory_image_free(_image: *mut u8) {}

#[no_mangle]
pub extern "C" fn wasmtime_tls_get(slot: usize) -> *mut u8 {
    crate::sched::tls_get(slot) as *mut u8
}

#[no_mangle]
pub extern "C" fn wasmtime_tls_set(slot: usize, value: *mut u8) {
    crate::sched::tls_set(slot, value as usize);
}

// Locks for wasmtime's shared state (engine, type registry), used from several server threads.
// The word is 0 when free; an exclusive holder sets WRITER, readers count up. A thread that
// finds the lock taken yields: the holder may be a preempted thread that needs the CPU.

const WRITER: usize = 1 << (usize::BITS - 1);

unsafe fn word<'a>(lock: *mut usize) -> &'a core::sync::atomic::AtomicUsize {
    core::sync::atomic::AtomicUsize::from_ptr(lock)
}

fn acquire(lock: &core::sync::atomic::AtomicUsize, try_once: impl Fn(usize) -> Option<usize>) {
    loop {
        let current = lock.load(Ordering::Relaxed);
        if let Some(next) = try_once(current) {
            if lock.compare_exchange_weak(current, next, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return;
            }
        } else {
            crate::sched::give_up_cpu();
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn wasmtime_sync_lock_acquire(lock: *mut usize) {
    acquire(word(lock), |current| (current == 0).then_some(WRITER));
}

#[no_mangle]
pub unsafe extern "C" fn wasmtime_sync_lock_release(lock: *mut usize) {
    word(lock).store(0, Ordering::Release);
}

#[no_mangle]
pub extern "C" fn wasmtime_sync_lock_free(_lock: *mut usize) {}

#[no_mangle]
pub unsafe extern "C" fn wasmtime_sync_rwlock_read(lock: *mut usize) {
    acquire(word(lock), |current| (current & WRITER == 0).then_some(current + 1));
}

#[no_mangle]
pub unsafe extern "C" fn wasmtime_sync_rwlock_read_release(lock: *mut usize) {
    word(lock).fetch_sub(1, Ordering::Release);
}

#[no_mangle]
pub unsafe extern "C" fn wasmtime_sync_rwlock_write(lock: *mut usize) {
    acquire(word(lock), |current| (current == 0).then_some(WRITER));
}

#[no_mangle]
pub unsafe extern "C" fn wasmtime_sync_rwlock_write_release(lock: *mut usize) {
    word(lock).store(0, Ordering::Release);
}

#[no_mangle]
pub extern "C" fn wasmtime_sync_rwlock_free(_lock: *mut usize) {}
