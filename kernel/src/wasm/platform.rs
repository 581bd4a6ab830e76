//! The hooks wasmtime's custom platform calls (its `capi.rs`), implemented with the kernel's
//! page tables and threads: virtual memory for linear memories and compiled code, the
//! per-thread TLS slots, and the trap handler the kernel's fault handler calls. Memory comes
//! from the `WASM_BASE` region, backed by fresh zeroed frames: there is no demand paging, so
//! what is accessible is always backed, and a fault there is wasm's (a guard page).

use crate::mm::frame::{self, FRAME_SIZE};
use crate::mm::paging::{self, Access, WASM_BASE, WASM_SIZE};
use crate::sync::IrqMutex;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const PROT_READ: u32 = 1;
const PROT_WRITE: u32 = 2;
const PROT_EXEC: u32 = 4;

const ENOMEM: i32 = -12;
const EINVAL: i32 = -22;

/// Fresh address space is handed out upward.
static NEXT: AtomicU64 = AtomicU64::new(WASM_BASE);
/// Mappings given back, as (start, size), for the next mapping of that size: with a 4 GiB
/// reservation per linear memory the region would otherwise last some 250 servers. wasmtime
/// unmaps only whole mappings, so a range here is never still partly in use.
static RELEASED: IrqMutex<Vec<(u64, u64)>> = IrqMutex::new(Vec::new());

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
    let Some(mut pages) = pages(start, size) else { return EINVAL };
    let Some(access) = access(prot) else {
        // Inaccessible: nothing backs it (its contents are not kept). Only what is mapped is
        // visited: a 4 GiB reservation has few pages mapped.
        let end = start as u64 + size as u64;
        let mut from = start as u64;
        while let Some(page) = paging::next_mapped(from, end) {
            release(page);
            from = page + FRAME_SIZE;
        }
        return 0;
    };
    pages.try_for_each(|page| {
        if fresh {
            release(page);
        }
        back(page, access).then_some(()).ok_or(ENOMEM)
    })
    .map_or_else(|error| error, |()| 0)
}

#[no_mangle]
pub extern "C" fn wasmtime_page_size() -> usize {
    FRAME_SIZE as usize
}

#[no_mangle]
pub unsafe extern "C" fn wasmtime_mmap_new(size: usize, prot: u32, ret: *mut *mut u8) -> i32 {
    let size = (size as u64).next_multiple_of(FRAME_SIZE);
    let start = match take_released(size) {
        Some(start) => start,
        None => {
            let start = NEXT.fetch_add(size, Ordering::Relaxed);
            if start + size > WASM_BASE + WASM_SIZE {
                return ENOMEM;
            }
            start
        }
    };
    // A reservation (no access) has nothing mapped, fresh or released whole: nothing to do.
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

fn take_released(size: u64) -> Option<u64> {
    let mut released = RELEASED.lock();
    let index = released.iter().position(|&(_, length)| length == size)?;
    Some(released.swap_remove(index).0)
}

#[no_mangle]
pub extern "C" fn wasmtime_munmap(addr: *mut u8, size: usize) -> i32 {
    let result = set(addr, size, 0, true);
    if result == 0 {
        RELEASED.lock().push((addr as u64, (size as u64).next_multiple_of(FRAME_SIZE)));
    }
    result
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

/// wasmtime's handler for faults in the code it generated: `(pc, fp, has_address, address)`.
/// It returns if the fault is not a wasm trap; otherwise it unwinds to the wasm entry.
pub type TrapHandler = extern "C" fn(usize, usize, bool, usize);

static TRAP_HANDLER: AtomicUsize = AtomicUsize::new(0);

#[no_mangle]
pub extern "C" fn wasmtime_init_traps(handler: TrapHandler) -> i32 {
    TRAP_HANDLER.store(handler as usize, Ordering::Release);
    0
}

/// The handler to give a fault at `pc` to: set once an engine exists, and only for code in the
/// wasm region, where wasmtime's compiled code lives. Faults elsewhere stay kernel faults.
pub fn trap_handler_for(pc: u64) -> Option<TrapHandler> {
    let handler = TRAP_HANDLER.load(Ordering::Acquire);
    let in_region = (WASM_BASE..WASM_BASE + WASM_SIZE).contains(&pc);
    // SAFETY: the only non-zero value stored is a `TrapHandler`.
    (handler != 0 && in_region).then(|| unsafe { core::mem::transmute::<usize, TrapHandler>(handler) })
}

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
