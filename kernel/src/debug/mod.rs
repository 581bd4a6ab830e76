//! What the kernel shows the workbench.

pub mod state;
