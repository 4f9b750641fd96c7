//! Safe wrappers over the system calls sim makes. Every `unsafe` block of the crate is here
//! (`#![deny(unsafe_code)]` everywhere else, and `tests/layers.rs` looks), each behind a
//! function that is safe to call: what a call needs is checked or kept inside, and its
//! `// SAFETY:` comment says how. Where rustix wraps a call safely, it goes through rustix.
//!
//! The calls inside a purchase (`pread`/`pwrite`, `sem_wait`/`sem_post`, `semop`, the OFD
//! lock, the robust mutex, the clocks) are direct libc calls or instructions in `#[inline]`
//! functions, with no allocation and no loop beyond a retry after a signal.

pub mod clock; // CLOCK_MONOTONIC and the time-stamp counter
pub mod cpu; // the CPUs a process may run on, and pinning a thread to one
pub mod fd; // reads and writes, at an offset too, copies, poll, inherited descriptors
pub mod file; // files in an output folder, made without following a planted link
pub mod ipc; // datagram sockets in the abstract namespace
pub mod lock; // open-file-description locks
pub mod process; // fork, _exit, the parent-death signal, signals, reaping, users
pub mod semaphore; // POSIX named semaphores
pub mod shm; // shared mappings, their atomics, the robust mutex, futexes
pub mod skew; // how far apart two CPUs' stamps of one moment can be
pub mod sysv; // System V semaphore sets
