//! The clocks every process of a trial reads, so that their histories share a timeline.
//!
//! Two of them: [`now_ns`], `CLOCK_MONOTONIC`, for the runner and for moments that happen once
//! per worker; and [`ticks`], the stamp of every recorded operation. Reading `CLOCK_MONOTONIC`
//! costs 25 ns here, four times a purchase, which was most of what sim added to a bare loop of
//! flock or sem_wait; `rdtsc`, the processor's time-stamp counter, costs 10 ns. Where the
//! kernel itself keeps time with that counter (its clocksource is `tsc`: invariant and the
//! same on every CPU), the workers stamp with it, and a trial's history file carries two
//! [`Pair`]s, taken by the runner before the workers start and after they end, that turn
//! ticks back into `CLOCK_MONOTONIC` nanoseconds. Elsewhere ticks are those nanoseconds.

use std::sync::atomic::{AtomicBool, Ordering};

/// `CLOCK_MONOTONIC` in nanoseconds: system-wide on Linux, so comparable across processes,
/// and read through the vDSO, so no system call.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write into; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

static TSC: AtomicBool = AtomicBool::new(false);

/// Whether this machine's time-stamp counter can stamp operations: the kernel keeps time
/// with it, which it does only when the counter is invariant and synchronised across CPUs.
pub fn tsc_usable() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
}

/// Makes [`ticks`] read the time-stamp counter (`true`) or `CLOCK_MONOTONIC` (`false`, the
/// default). Every process of a trial is told the same, by the runner.
pub fn use_tsc(on: bool) {
    TSC.store(on && cfg!(target_arch = "x86_64"), Ordering::Relaxed);
}

/// The stamp of a recorded moment: the time-stamp counter or `CLOCK_MONOTONIC` (see
/// [`use_tsc`]); a [`Timebase`] turns it into nanoseconds. The counter is read with `rdtsc`,
/// which may run a few instructions ahead of those before it and behind those after it: for
/// moments no verdict rests on (a write, seen by others only later anyway). An invocation
/// takes [`ticks_ordered`], which nothing after it overtakes; a read or a completion takes
/// [`ticks_fenced`], which waits for everything before it. Stamped so, a stamp lies on the
/// right side of the memory step it stands for, and two processes' stamps of one moment
/// differ by no more than the bound [`super::skew::measure`] finds.
#[inline]
pub fn ticks() -> u64 {
    if TSC.load(Ordering::Relaxed) { tsc() } else { now_ns() }
}

/// [`ticks`] that waits for every instruction before it, loads included (`rdtscp`, twice the
/// cost of `rdtsc` here): for a read or a completion, which must not be stamped before the
/// load or the unlock it follows.
#[inline]
pub fn ticks_fenced() -> u64 {
    if !TSC.load(Ordering::Relaxed) {
        return now_ns();
    }
    #[cfg(target_arch = "x86_64")]
    {
        let mut aux = 0u32;
        // SAFETY: rdtscp exists on every x86_64 CPU whose TSC the kernel uses as its clock.
        unsafe { std::arch::x86_64::__rdtscp(&mut aux) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    now_ns()
}

/// [`ticks`] that no later instruction may overtake (`rdtsc` then `lfence`): for an
/// invocation, which must not be stamped after the first step it makes in shared memory (a
/// lock's compare-exchange, a load of the stock).
#[inline]
pub fn ticks_ordered() -> u64 {
    if !TSC.load(Ordering::Relaxed) {
        return now_ns();
    }
    #[cfg(target_arch = "x86_64")]
    {
        let t = tsc();
        // SAFETY: lfence has no preconditions on x86_64.
        unsafe { std::arch::x86_64::_mm_lfence() };
        t
    }
    #[cfg(not(target_arch = "x86_64"))]
    now_ns()
}

/// The time-stamp counter (`CLOCK_MONOTONIC` where there is none).
#[inline]
fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc has no preconditions on x86_64.
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    now_ns()
}

/// One moment read on both clocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pair {
    /// A reading of the time-stamp counter (or the stamp clock in use).
    pub ticks: u64,
    /// The `CLOCK_MONOTONIC` nanoseconds read beside it.
    pub ns: u64,
}

impl Pair {
    /// Now, on both clocks: `ticks` between two `now_ns`, their midpoint kept from the
    /// tightest of a few tries, so that a preemption in between does not skew it.
    pub fn now() -> Pair {
        if !TSC.load(Ordering::Relaxed) {
            let ns = now_ns(); // ticks are nanoseconds: the line through such pairs is exact
            return Pair { ticks: ns, ns };
        }
        Pair::read(tsc)
    }

    fn read(ticks: fn() -> u64) -> Pair {
        let mut best = (u64::MAX, Pair::default());
        for _ in 0..5 {
            let before = now_ns();
            let ticks = ticks();
            let after = now_ns();
            if after - before < best.0 {
                best = (
                    after - before,
                    Pair {
                        ticks,
                        ns: before + (after - before) / 2,
                    },
                );
            }
        }
        best.1
    }
}

/// Turns ticks into `CLOCK_MONOTONIC` nanoseconds by the straight line through two pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timebase {
    /// The pair taken before the workers started.
    pub start: Pair,
    /// The pair taken after they ended.
    pub end: Pair,
}

impl Timebase {
    /// For stamps that are nanoseconds already.
    pub const IDENTITY: Timebase = Timebase {
        start: Pair { ticks: 0, ns: 0 },
        end: Pair { ticks: 1, ns: 1 },
    };

    /// The `CLOCK_MONOTONIC` nanoseconds of a stamp, on the line through the two pairs.
    pub fn ns(&self, ticks: u64) -> u64 {
        let (t0, n0) = (self.start.ticks as i128, self.start.ns as i128);
        let (dt, dn) = (self.end.ticks as i128 - t0, self.end.ns as i128 - n0);
        let since = ticks as i128 - t0;
        let ns = if dt > 0 {
            match since.checked_mul(dn) {
                Some(product) => n0.saturating_add(product / dt),
                // Only a garbled file's pairs lie that far apart; its stamps are nonsense
                // either way, and the checker then says what is wrong with them.
                None => n0.saturating_add((since as f64 * dn as f64 / dt as f64) as i128),
            }
        } else {
            n0 + since // a line of one point: stamps taken in nanoseconds
        };
        ns.clamp(0, u64::MAX as i128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timebase_maps_its_own_pairs_and_the_line_between() {
        let tb = Timebase {
            start: Pair { ticks: 1_000, ns: 500 },
            end: Pair {
                ticks: 3_000,
                ns: 1_500,
            },
        };
        assert_eq!(tb.ns(1_000), 500);
        assert_eq!(tb.ns(3_000), 1_500);
        assert_eq!(tb.ns(2_000), 1_000);
        assert_eq!(Timebase::IDENTITY.ns(123_456_789), 123_456_789);
    }

    #[test]
    fn a_timebase_from_a_garbled_file_gives_a_number_not_a_panic() {
        let far = Timebase {
            start: Pair { ticks: 0, ns: 0 },
            end: Pair { ticks: 1, ns: u64::MAX },
        };
        assert_eq!(far.ns(u64::MAX), u64::MAX);
        assert_eq!(far.ns(0), 0);
        let backwards = Timebase {
            start: Pair {
                ticks: u64::MAX,
                ns: u64::MAX,
            },
            end: Pair { ticks: u64::MAX, ns: 0 },
        };
        assert_eq!(backwards.ns(0), 0);
    }

    #[test]
    fn ticks_turned_into_nanoseconds_agree_with_the_monotonic_clock() {
        if !tsc_usable() {
            return; // its ticks are the monotonic clock's, checked by the test above
        }
        // The counter itself, whatever this test process's other tests use.
        let start = Pair::read(tsc);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (before, t, after) = (now_ns(), tsc(), now_ns());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let tb = Timebase {
            start,
            end: Pair::read(tsc),
        };
        let ns = tb.ns(t);
        // Within a few µs of the moment it was read, whatever the counter's rate.
        assert!(ns + 5_000 >= before && ns <= after + 5_000, "{before} ≤ {ns} ≤ {after}");
    }
}
