//! How far apart two processes' stamps of one moment can be: the clock uncertainty that the
//! checker allows before it orders two operations by their stamps.
//!
//! Two sources, measured for each trial before its start gate opens. The counters of two
//! CPUs may differ by an offset; and a stamp is taken a little before or after the memory
//! step it stands for. Both are measured as the kernel checks its time-stamp counter across
//! CPUs (`check_tsc_warp`): two threads, pinned to two CPUs the trial may use, pass a stamp
//! back and forth through one cache line, each stamping with [`clock::ticks_fenced`], the
//! very function a worker stamps a read or a completion with. A stamp sent by A at a moment
//! and read by B later shows B's counter minus A's plus a positive transit time, so the
//! smallest gap seen from A to B bounds how far B's counter runs ahead of A's, and the
//! smallest from B to A how far it lags behind. The bound is the largest of these over the
//! pairs, plus the time one stamp takes to read (a stamp's moment lies within it). Measured
//! here: about 208 ticks each way between the two CPUs and 52 for a stamp, some 100 ns in all.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::clock;

/// Round trips per pair of CPUs: the smallest gap of a few dozen is the transit time, with
/// the occasional preempted one left aside.
const ROUNDS: u64 = 64;
/// How long one pair may take before its threads give up and keep what they saw: a thread
/// the scheduler left out (the machine is busy) is waited for no longer.
const PAIR_LIMIT: Duration = Duration::from_millis(50);
/// Beyond this many CPUs, every CPU is measured against the first alone rather than against
/// every other: a bound through the first is the sum of two gaps, but the pairs stay few.
const ALL_PAIRS_UP_TO: usize = 8;

/// The cache line the two threads share: a sequence number and the last stamp sent.
#[repr(C, align(128))]
struct Line {
    seq: AtomicU64,
    stamp: AtomicU64,
    quit: AtomicBool,
}

/// The smallest gap seen each way between the stamps of two CPUs, in ticks; `None` where no
/// round trip finished in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gaps {
    there: Option<i64>,
    back: Option<i64>,
    /// Every round trip finished: the threads were not kept off their CPUs for long.
    whole: bool,
}

impl Gaps {
    /// The smaller gap each way of two measurements of one pair: each gap bounds the offset,
    /// so the smaller is the tighter bound.
    fn min(self, other: Gaps) -> Gaps {
        let least = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Gaps {
            there: least(self.there, other.there),
            back: least(self.back, other.back),
            whole: self.whole || other.whole,
        }
    }
}

/// How many times a pair is measured at most while its threads keep being kept off their
/// CPUs (a busy machine): a round trip that waited for the scheduler gives a loose bound.
const TRIES: usize = 5;

/// The bound, in ticks of [`clock::ticks`], on how far two processes of this machine can
/// stamp one moment apart, over the CPUs this process may run on (and its workers, which
/// inherit its affinity). Takes well under a millisecond on a quiet machine; an error
/// when a pair of CPUs could not be measured at all.
pub fn measure() -> io::Result<u64> {
    let cpus = super::cpu::allowed()?;
    let slack = stamp_length();
    let pairs: Vec<(usize, usize)> = if cpus.len() <= ALL_PAIRS_UP_TO {
        cpus.iter()
            .enumerate()
            .flat_map(|(i, &a)| cpus[i + 1..].iter().map(move |&b| (a, b)))
            .collect()
    } else {
        cpus[1..].iter().map(|&b| (cpus[0], b)).collect()
    };
    let mut widest = 0i64;
    let (mut there, mut back) = (0i64, 0i64);
    for &(a, b) in &pairs {
        let mut gaps = ping_pong(a, b)?;
        for _ in 1..TRIES {
            if gaps.whole {
                break;
            }
            gaps = gaps.min(ping_pong(a, b)?);
        }
        let (Some(t), Some(k)) = (gaps.there, gaps.back) else {
            return Err(io::Error::other(format!(
                "CPUs {a} and {b} passed no stamp to each other within {} ms",
                PAIR_LIMIT.as_millis()
            )));
        };
        widest = widest.max(t).max(k);
        there = there.max(t);
        back = back.max(k);
    }
    if cpus.len() > ALL_PAIRS_UP_TO {
        // Through the first CPU: B ahead of A by at most (0 → B) + (A → 0).
        widest = there.max(0) + back.max(0);
    }
    Ok(widest.max(0) as u64 + slack)
}

/// The shortest time between two stamps read back to back: a stamp's moment lies somewhere
/// within its reading.
fn stamp_length() -> u64 {
    (0..1000)
        .map(|_| {
            let a = clock::ticks_fenced();
            clock::ticks_fenced().saturating_sub(a)
        })
        .min()
        .unwrap_or(0)
        .max(1)
}

/// Passes a stamp between CPUs `a` and `b` [`ROUNDS`] times each way.
fn ping_pong(a: usize, b: usize) -> io::Result<Gaps> {
    let line = Line {
        seq: AtomicU64::new(0),
        stamp: AtomicU64::new(0),
        quit: AtomicBool::new(false),
    };
    let until = Instant::now() + PAIR_LIMIT;
    // Both sides on threads of their own: pinning is for the thread's life, and the caller's
    // must keep its CPUs.
    std::thread::scope(|s| {
        let side_0 = s.spawn(|| side(&line, a, 0, until));
        let side_1 = s.spawn(|| side(&line, b, 1, until));
        let joined = |side: std::thread::ScopedJoinHandle<'_, io::Result<(Option<i64>, bool)>>| {
            side.join().map_err(|_| io::Error::other("a clock thread panicked"))?
        };
        // Side 1 receives what side 0 sent: the gaps from a to b.
        let ((back, whole_0), (there, whole_1)) = (joined(side_0)?, joined(side_1)?);
        Ok(Gaps {
            there,
            back,
            whole: whole_0 && whole_1,
        })
    })
}

/// One thread of a ping-pong, pinned to `cpu`: it sends on even turns (`me` = 0) or odd
/// ones (`me` = 1) and returns the smallest gap it received, and whether it finished every
/// round.
fn side(line: &Line, cpu: usize, me: u64, until: Instant) -> io::Result<(Option<i64>, bool)> {
    let pinned = super::cpu::pin_this_thread(cpu);
    if pinned.is_err() {
        line.quit.store(true, Ordering::Release);
        return pinned.map(|_| (None, false));
    }
    let mut smallest: Option<i64> = None;
    for turn in 0..2 * ROUNDS {
        if turn % 2 == me {
            // Send: stamp, then publish; the stamp is read before the store can be seen.
            let t = clock::ticks_fenced();
            line.stamp.store(t, Ordering::Relaxed);
            line.seq.store(turn + 1, Ordering::Release);
        } else {
            // Receive: wait for the turn, then stamp after the load that saw it.
            let mut spins = 0u32;
            while line.seq.load(Ordering::Acquire) != turn + 1 {
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(1024) && (line.quit.load(Ordering::Acquire) || Instant::now() >= until) {
                    line.quit.store(true, Ordering::Release);
                    return Ok((smallest, false));
                }
            }
            let now = clock::ticks_fenced();
            let sent = line.stamp.load(Ordering::Relaxed);
            let gap = now.wrapping_sub(sent) as i64;
            smallest = Some(smallest.map_or(gap, |s| s.min(gap)));
        }
    }
    Ok((smallest, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_covers_a_stamps_length_and_both_ways_between_two_cpus() {
        let bound = measure().unwrap();
        assert!(bound >= stamp_length(), "{bound}");
        let cpus = super::super::cpu::allowed().unwrap();
        if let [a, b, ..] = cpus[..] {
            let gaps = ping_pong(a, b).unwrap();
            // A stamp passed there and back again took some time in all.
            let (there, back) = (gaps.there.unwrap(), gaps.back.unwrap());
            assert!(there + back > 0, "{gaps:?}");
        }
        assert_eq!(super::super::cpu::allowed().unwrap(), cpus, "the caller keeps its CPUs");
    }
}
