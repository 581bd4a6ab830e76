//! What the kernel shows the workbench.

pub mod control;
pub mod state;
