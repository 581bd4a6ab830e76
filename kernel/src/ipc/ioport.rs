//! I/O-port capabilities: a server may touch exactly the ports it was granted.

use super::error::{Error, Result};
use crate::arch::port;

#[derive(Clone, Copy, Debug)]
pub struct IoPorts {
    pub base: u16,
    pub count: u16,
}

impl IoPorts {
    fn check(&self, port: u16) -> Result<()> {
        if port >= self.base && (port - self.base) < self.count {
            Ok(())
        } else {
            Err(Error::NoRights)
        }
    }

    pub fn read8(&self, port: u16) -> Result<u8> {
        self.check(port)?;
        Ok(unsafe { port::inb(port) })
    }

    pub fn write8(&self, port: u16, value: u8) -> Result<()> {
        self.check(port)?;
        unsafe { port::outb(port, value) };
        Ok(())
    }
}
