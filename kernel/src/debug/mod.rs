//! What the kernel shows the workbench, and what the workbench may ask of it.
//!
//! - `state`: the layout of the block `KWAST_DEBUG_STATE`, declared once; the host reads it
//!   through the ELF's DWARF.
//! - `rows`: the tables of live objects: a `Slot` claims a row and frees it when dropped.
//! - `record`: events (each stamped here) and the CPU and IRQ counters.
//! - `servers`: a row per server name, kept after it ends (restarts, last exit).
//! - `control`: requests from the workbench (`KWAST_DEBUG_CONTROL`).
//! - `port`: the same requests on COM2, for a run QEMU records.
//!
//! The rest of the kernel writes the block only through `rows` and `record`.

pub mod control;
pub mod port;
mod record;
mod rows;
mod servers;
pub mod state;
mod tests;

pub use record::{
    count_irq, cpu_online, cpu_ticks, cpu_up, ipc, ipc_holding, irq_acknowledged, irq_bound, record, record_interrupts_off, record_holding, reply_pending, set_current, switched,
    NO_ROW,
};
pub use servers::ServerSlot;
pub use rows::Slot;
