//! Bounds-checked access to a server's linear memory. Every pointer a server hands the kernel
//! goes through here: out of range is an error for the server, never a kernel fault.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBounds;

pub struct Guest<'a> {
    memory: &'a mut [u8],
}

impl<'a> Guest<'a> {
    pub fn new(memory: &'a mut [u8]) -> Guest<'a> {
        Guest { memory }
    }

    fn range(&self, ptr: u32, len: u32) -> Result<core::ops::Range<usize>, OutOfBounds> {
        let start = ptr as usize;
        let end = start.checked_add(len as usize).ok_or(OutOfBounds)?;
        if end > self.memory.len() {
            return Err(OutOfBounds);
        }
        Ok(start..end)
    }

    pub fn bytes(&self, ptr: u32, len: u32) -> Result<&[u8], OutOfBounds> {
        let range = self.range(ptr, len)?;
        Ok(&self.memory[range])
    }

    pub fn bytes_mut(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], OutOfBounds> {
        let range = self.range(ptr, len)?;
        Ok(&mut self.memory[range])
    }

    /// Where `ptr` points, and how many bytes from there lie in memory (0 past its end).
    pub fn room(&mut self, ptr: u32) -> (*mut u8, usize) {
        let room = self.memory.len().saturating_sub(ptr as usize);
        (self.memory.as_mut_ptr().wrapping_add(ptr as usize), room)
    }

    pub fn write(&mut self, ptr: u32, data: &[u8]) -> Result<(), OutOfBounds> {
        self.bytes_mut(ptr, data.len() as u32)?.copy_from_slice(data);
        Ok(())
    }

    pub fn read_u32(&self, ptr: u32) -> Result<u32, OutOfBounds> {
        Ok(u32::from_le_bytes(self.bytes(ptr, 4)?.try_into().unwrap()))
    }

    pub fn read_u64(&self, ptr: u32) -> Result<u64, OutOfBounds> {
        Ok(u64::from_le_bytes(self.bytes(ptr, 8)?.try_into().unwrap()))
    }

    pub fn write_u32(&mut self, ptr: u32, value: u32) -> Result<(), OutOfBounds> {
        self.write(ptr, &value.to_le_bytes())
    }

    pub fn write_u64(&mut self, ptr: u32, value: u64) -> Result<(), OutOfBounds> {
        self.write(ptr, &value.to_le_bytes())
    }
}
