//! Intentionally empty: see engine/README.md.
#![no_std]
