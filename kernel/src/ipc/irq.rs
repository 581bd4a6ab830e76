//! IRQ objects: a hardware IRQ bound to a notification bit. The interrupt masks the line and
//! signals; the driver server handles the device and acknowledges, which unmasks it again.

use super::error::{Error, Result};
use super::notification::Notification;
use crate::arch::{apic, ioapic};
use crate::debug::state::EventKind;
use crate::sync::IrqMutex;
use alloc::sync::{Arc, Weak};

const ISA_IRQS: usize = 16;

/// Weak: a line stays bound while some process holds a capability to it, and is freed (masked)
/// when the last one goes, e.g. when the driver and init holding it both die.
static BOUND: IrqMutex<[Weak<IrqLine>; ISA_IRQS]> = IrqMutex::new([const { Weak::new() }; ISA_IRQS]);

pub struct IrqLine {
    pub irq: u8,
    notification: Arc<Notification>,
    bits: u64,
}

impl IrqLine {
    /// Binds `irq` to signal `bits` on `notification` for process `owner`, and unmasks it.
    pub fn bind(irq: u8, notification: Arc<Notification>, bits: u64, owner: u32) -> Result<Arc<IrqLine>> {
        if irq as usize >= ISA_IRQS || bits == 0 {
            return Err(Error::InvalidArgument);
        }
        let notification_id = notification.id;
        let line = Arc::new(IrqLine { irq, notification, bits });
        {
            let mut bound = BOUND.lock();
            if bound[irq as usize].strong_count() > 0 {
                return Err(Error::Busy);
            }
            bound[irq as usize] = Arc::downgrade(&line);
        }
        crate::debug::irq_bound(irq as usize, notification_id, owner);
        ioapic::route(irq, apic::id());
        Ok(line)
    }

    /// The driver is done with the last interrupt: let the next one in.
    pub fn acknowledge(&self) {
        crate::debug::irq_acknowledged(self.irq as usize);
        ioapic::route(self.irq, apic::id());
    }
}

impl Drop for IrqLine {
    fn drop(&mut self) {
        ioapic::mask(self.irq);
        crate::debug::irq_bound(self.irq as usize, 0, 0);
    }
}

/// From the trap handler: mask the line until the driver acknowledges, and signal it.
/// Each delivery is an event: the mask paces them to the driver's acknowledgements, so a storm
/// on the line cannot flood the event ring faster than the driver's own IPC does.
pub fn on_interrupt(irq: u8) {
    let line = BOUND.lock().get(irq as usize).and_then(Weak::upgrade);
    if let Some(line) = line {
        ioapic::mask(irq);
        // Thread 0: an interrupt is no thread's doing.
        crate::debug::record(EventKind::Irq, 0, irq as u64, line.bits);
        line.notification.signal_from_irq(line.bits);
    }
}
