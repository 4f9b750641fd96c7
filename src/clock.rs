//! The one clock every process of a trial reads, so that their histories share a timeline.

/// `CLOCK_MONOTONIC` in nanoseconds: system-wide on Linux, so comparable across processes,
/// and read through the vDSO, so no system call.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write into; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
