//! The kernel's own page tables. Layout (one address space for everything):
//! - 0 .. 4 GiB: identity map with 2 MiB pages (RAM, the kernel, MMIO), except the first
//!   4 KiB page, left unmapped so a null dereference faults;
//! - `HEAP_BASE` (512 GiB): the kernel heap, 4 KiB pages;
//! - `STACKS_BASE` (1 TiB): thread stacks with unmapped guard pages below each;
//! - `SCRATCH_BASE` (1.5 TiB): free for tests and temporary mappings;
//! - `WASM_BASE` (2 TiB): memory wasmtime asks for (linear memories, compiled code).
//! Page-table frames come from the frame allocator below 4 GiB, so the identity map reaches them.

use super::frame::{self, FRAME_SIZE};
use crate::sync::IrqMutex;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame,
    Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

pub const HEAP_BASE: u64 = 0x0080_0000_0000;
pub const STACKS_BASE: u64 = 0x0100_0000_0000;
pub const SCRATCH_BASE: u64 = 0x0180_0000_0000;
pub const WASM_BASE: u64 = 0x0200_0000_0000;
pub const WASM_SIZE: u64 = 0x0100_0000_0000;

const IDENTITY_LIMIT: u64 = 4 << 30;
const HUGE: u64 = 2 << 20;

static KERNEL_TABLES: IrqMutex<Option<OffsetPageTable<'static>>> = IrqMutex::new(None);

struct Frames;

unsafe impl FrameAllocator<Size4KiB> for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        frame::allocate_zeroed().map(|a| PhysFrame::containing_address(PhysAddr::new(a)))
    }
}

fn new_table() -> &'static mut PageTable {
    let address = frame::allocate_zeroed().expect("out of memory building the kernel page tables");
    unsafe { &mut *(address as *mut PageTable) }
}

#[derive(Debug)]
pub enum MapError {
    OutOfMemory,
    AlreadyMapped,
}

/// Builds the kernel page tables and switches to them.
pub fn init() {
    let writable = Flags::PRESENT | Flags::WRITABLE;
    let pml4 = new_table();
    let pdpt = new_table();
    pml4[0].set_addr(PhysAddr::new(pdpt as *mut _ as u64), writable);
    for gib in 0..IDENTITY_LIMIT >> 30 {
        let pd = new_table();
        pdpt[gib as usize].set_addr(PhysAddr::new(pd as *mut _ as u64), writable);
        for (i, entry) in pd.iter_mut().enumerate() {
            let address = (gib << 30) + i as u64 * HUGE;
            entry.set_addr(PhysAddr::new(address), writable | Flags::HUGE_PAGE);
        }
    }
    // The first 2 MiB as 4 KiB pages, all but page 0.
    let first_pd = unsafe { &mut *(pdpt[0].addr().as_u64() as *mut PageTable) };
    let low = new_table();
    for (i, entry) in low.iter_mut().enumerate().skip(1) {
        entry.set_addr(PhysAddr::new(i as u64 * FRAME_SIZE), writable);
    }
    first_pd[0].set_addr(PhysAddr::new(low as *mut _ as u64), writable);

    let root = PhysFrame::containing_address(PhysAddr::new(pml4 as *mut _ as u64));
    unsafe { Cr3::write(root, Cr3Flags::empty()) };
    *KERNEL_TABLES.lock() = Some(unsafe { OffsetPageTable::new(pml4, VirtAddr::new(0)) });
}

/// What a mapping allows, beyond reading.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Access {
    pub write: bool,
    pub execute: bool,
}

impl Access {
    pub const DATA: Access = Access { write: true, execute: false };

    fn flags(self) -> Flags {
        let mut flags = Flags::PRESENT;
        if self.write {
            flags |= Flags::WRITABLE;
        }
        if !self.execute {
            flags |= Flags::NO_EXECUTE;
        }
        flags
    }
}

/// Maps the 4 KiB page at `virt` to the frame at `phys`, writable and not executable.
pub fn map(virt: u64, phys: u64) -> Result<(), MapError> {
    map_with(virt, phys, Access::DATA)
}

pub fn map_with(virt: u64, phys: u64, access: Access) -> Result<(), MapError> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    let target = PhysFrame::containing_address(PhysAddr::new(phys));
    let flags = access.flags();
    let mut tables = KERNEL_TABLES.lock();
    let tables = tables.as_mut().expect("paging not initialised");
    match unsafe { tables.map_to(page, target, flags, &mut Frames) } {
        Ok(flush) => {
            flush.flush();
            Ok(())
        }
        Err(x86_64::structures::paging::mapper::MapToError::FrameAllocationFailed) => Err(MapError::OutOfMemory),
        Err(_) => Err(MapError::AlreadyMapped),
    }
}

/// Unmaps the page at `virt` and returns the frame it mapped.
pub fn unmap(virt: u64) -> Option<u64> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    let mut tables = KERNEL_TABLES.lock();
    let (frame, flush) = tables.as_mut().expect("paging not initialised").unmap(page).ok()?;
    flush.ignore();
    drop(tables);
    // Every CPU's, before the caller may reuse the frame.
    super::tlb::flush_page(virt);
    Some(frame.start_address().as_u64())
}

/// Changes what the mapped page at `virt` allows; false if it is not mapped.
pub fn protect(virt: u64, access: Access) -> bool {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    let mut guard = KERNEL_TABLES.lock();
    let tables = guard.as_mut().expect("paging not initialised");
    let Ok(flush) = (unsafe { tables.update_flags(page, access.flags()) }) else { return false };
    flush.ignore();
    drop(guard);
    // Every CPU's: one may hold the old rights (a write to a page now read-only).
    super::tlb::flush_page(virt);
    true
}

/// The first mapped 4 KiB page in `[from, end)`, skipping unmapped tables whole: a 4 GiB
/// linear-memory reservation has few pages mapped, and asking page by page cost 200 million
/// instructions per reservation released.
pub fn next_mapped(from: u64, end: u64) -> Option<u64> {
    let tables = KERNEL_TABLES.lock();
    let root = tables.as_ref()?.level_4_table();
    let mut address = from & !(FRAME_SIZE - 1);
    'walk: while address < end {
        let mut table = root;
        for shift in [39, 30, 21, 12] {
            let entry = &table[((address >> shift) & 511) as usize];
            if !entry.flags().contains(Flags::PRESENT) {
                address = ((address >> shift) + 1) << shift; // the next entry at this level
                continue 'walk;
            }
            if shift == 12 || entry.flags().contains(Flags::HUGE_PAGE) {
                return Some(address);
            }
            // Page-table frames are identity-mapped (below 4 GiB).
            table = unsafe { &*(entry.addr().as_u64() as *const PageTable) };
        }
    }
    None
}

pub fn translate(virt: u64) -> Option<u64> {
    let tables = KERNEL_TABLES.lock();
    tables.as_ref()?.translate_addr(VirtAddr::new(virt)).map(|a| a.as_u64())
}

/// Backs `[start, start + size)` with fresh frames.
pub fn map_fresh(start: u64, size: u64) -> Result<(), MapError> {
    for page in (start..start + size).step_by(FRAME_SIZE as usize) {
        let frame = frame::allocate().ok_or(MapError::OutOfMemory)?;
        map(page, frame).inspect_err(|_| frame::free(frame))?;
    }
    Ok(())
}

/// Unmaps `[start, start + size)` and returns its frames.
pub fn unmap_and_free(start: u64, size: u64) {
    for page in (start..start + size).step_by(FRAME_SIZE as usize) {
        if let Some(frame) = unmap(page) {
            frame::free(frame);
        }
    }
}

crate::kernel_test!(paging, {
    let phys = frame::allocate().unwrap();
    let virt = SCRATCH_BASE + 0x5000;
    assert_eq!(translate(virt), None);
    map(virt, phys).unwrap();
    assert_eq!(translate(virt + 0x123), Some(phys + 0x123));
    assert!(matches!(map(virt, phys), Err(MapError::AlreadyMapped)));
    unsafe {
        core::ptr::write_volatile(virt as *mut u64, 0x1122_3344_5566_7788);
        assert_eq!(core::ptr::read_volatile(phys as *const u64), 0x1122_3344_5566_7788, "alias sees the write");
    }
    assert_eq!(next_mapped(SCRATCH_BASE, SCRATCH_BASE + (8 << 30)), Some(virt));
    assert_eq!(next_mapped(virt + FRAME_SIZE, SCRATCH_BASE + (8 << 30)), None);
    assert_eq!(unmap(virt), Some(phys));
    assert_eq!(translate(virt), None);
    assert_eq!(translate(0), None, "page 0 is unmapped");
    assert_eq!(translate(0x20_0000), Some(0x20_0000), "identity map");
    frame::free(phys);
});

crate::kernel_test!(fault_null_dereference, expect_fault = "EXCEPTION: page fault (vector 14)", {
    let value = unsafe { core::ptr::read_volatile(core::hint::black_box(8usize) as *const u64) };
    crate::kprintln!("read {:#x} from a null pointer", value);
});
