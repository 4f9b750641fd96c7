//! Safe wrappers over the system calls sim makes. Every `unsafe` block of the crate is here,
//! each behind a function whose `# Safety` note names what its caller must keep.

pub mod clock;
pub mod ipc;
pub mod shm;
