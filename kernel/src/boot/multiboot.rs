//! The Multiboot (v1) information structure QEMU hands us: command line, modules, memory map.

use core::ffi::CStr;

pub const BOOTLOADER_MAGIC: u32 = 0x2BADB002;

const FLAG_CMDLINE: u32 = 1 << 2;
const FLAG_MODS: u32 = 1 << 3;
const FLAG_MMAP: u32 = 1 << 6;

#[repr(C)]
struct RawInfo {
    flags: u32,
    mem_lower: u32,
    mem_upper: u32,
    boot_device: u32,
    cmdline: u32,
    mods_count: u32,
    mods_addr: u32,
    syms: [u32; 4],
    mmap_length: u32,
    mmap_addr: u32,
}

#[repr(C)]
struct RawModule {
    start: u32,
    end: u32,
    string: u32,
    reserved: u32,
}

#[repr(C, packed)]
struct RawMmapEntry {
    size: u32,
    base: u64,
    length: u64,
    kind: u32,
}

/// A boot module: a file QEMU loaded for us (`-initrd`), with its command line.
pub struct Module {
    pub start: usize,
    pub end: usize,
    pub cmdline: &'static str,
}

impl Module {
    pub fn bytes(&self) -> &'static [u8] {
        unsafe { core::slice::from_raw_parts(self.start as *const u8, self.end - self.start) }
    }

    /// The first word of the command line: the file name without its directories.
    pub fn name(&self) -> &'static str {
        let path = self.cmdline.split_whitespace().next().unwrap_or("");
        path.rsplit('/').next().unwrap_or(path)
    }
}

#[derive(Clone, Copy)]
pub struct MemoryRegion {
    pub base: u64,
    pub length: u64,
    pub usable: bool,
}

pub struct BootInfo {
    info: &'static RawInfo,
}

unsafe fn c_str(addr: u32) -> &'static str {
    CStr::from_ptr(addr as usize as *const core::ffi::c_char).to_str().unwrap_or("<not utf-8>")
}

impl BootInfo {
    /// # Safety
    /// `addr` must be the Multiboot information address the loader passed in EBX.
    pub unsafe fn new(magic: u32, addr: usize) -> Option<BootInfo> {
        (magic == BOOTLOADER_MAGIC).then(|| BootInfo { info: &*(addr as *const RawInfo) })
    }

    pub fn cmdline(&self) -> &'static str {
        if self.info.flags & FLAG_CMDLINE == 0 {
            return "";
        }
        unsafe { c_str(self.info.cmdline) }
    }

    /// The end of everything the loader handed us: info block, command lines, modules, memory
    /// map. The frame allocator keeps all of it.
    pub fn highest_address(&self) -> u64 {
        let info = self.info as *const RawInfo as u64 + core::mem::size_of::<RawInfo>() as u64;
        let string_end = |s: &str| s.as_ptr() as u64 + s.len() as u64 + 1;
        let mut end = info.max(string_end(self.cmdline()));
        if self.info.flags & FLAG_MODS != 0 {
            let table = self.info.mods_addr as u64 + self.info.mods_count as u64 * core::mem::size_of::<RawModule>() as u64;
            end = end.max(table);
        }
        if self.info.flags & FLAG_MMAP != 0 {
            end = end.max(self.info.mmap_addr as u64 + self.info.mmap_length as u64);
        }
        for module in self.modules() {
            end = end.max(module.end as u64).max(string_end(module.cmdline));
        }
        end
    }

    pub fn modules(&self) -> impl Iterator<Item = Module> + '_ {
        let count = if self.info.flags & FLAG_MODS != 0 { self.info.mods_count } else { 0 };
        let table = self.info.mods_addr as usize as *const RawModule;
        (0..count as usize).map(move |i| {
            let raw = unsafe { &*table.add(i) };
            Module {
                start: raw.start as usize,
                end: raw.end as usize,
                cmdline: unsafe { c_str(raw.string) },
            }
        })
    }

    pub fn memory_map(&self) -> impl Iterator<Item = MemoryRegion> + '_ {
        let (mut at, end) = if self.info.flags & FLAG_MMAP != 0 {
            let start = self.info.mmap_addr as usize;
            (start, start + self.info.mmap_length as usize)
        } else {
            (0, 0)
        };
        core::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let entry = unsafe { core::ptr::read_unaligned(at as *const RawMmapEntry) };
            at += entry.size as usize + 4;
            Some(MemoryRegion { base: entry.base, length: entry.length, usable: entry.kind == 1 })
        })
    }
}
