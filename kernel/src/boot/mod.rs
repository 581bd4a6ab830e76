pub mod multiboot;
