//! How fast a trial sold: its wall time, purchases per second and purchase latencies,
//! measured from its history, outside the checker (they are no verdict). A trial that was
//! ended at its deadline recorded nothing at its end: the runner's own end time is used.

use serde::{Deserialize, Serialize};

use crate::history::{History, Kind, Outcome};

/// Purchase latency, invocation to completion, of the completed purchases, in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest.
    pub max_us: f64,
}

/// A trial's speed, as results.json holds it beside the checker's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Speed {
    /// From the start gate opening to the last worker finishing (or to the runner ending the
    /// trial at its deadline).
    pub wall_ms: f64,
    /// Completed purchase attempts (told sold, sold out or unreadable) per second of `wall_ms`.
    pub purchases_per_s: f64,
    /// See [`Latency`].
    pub latency: Latency,
}

impl Speed {
    /// Measures a history. `ended_ns`: when the runner ended the trial, ns after the gate, if
    /// it did (at the deadline); otherwise the last moment the history recorded is the end.
    pub fn of(history: &History, ended_ns: Option<u64>) -> Speed {
        let mut latencies: Vec<u64> = Vec::new();
        let mut completed = 0u64;
        let mut last = history.workers.iter().filter_map(|w| w.finish_ns).max().unwrap_or(0);
        for op in &history.ops {
            last = last.max(op.latest());
            if op.kind == Kind::Purchase && matches!(op.outcome, Outcome::Sold | Outcome::SoldOut | Outcome::Unreadable)
            {
                completed += 1;
            }
            if let Some(ns) = op.latency() {
                latencies.push(ns);
            }
        }
        let wall_ns = ended_ns.unwrap_or(last);
        let wall_ms = wall_ns as f64 / 1e6;
        Speed {
            wall_ms,
            purchases_per_s: if wall_ns == 0 {
                0.0
            } else {
                completed as f64 / (wall_ms / 1e3)
            },
            latency: latency(&mut latencies),
        }
    }
}

/// Nearest-rank percentiles of latencies in ns, reported in µs. Reorders `ns`.
fn latency(ns: &mut [u64]) -> Latency {
    let n = ns.len();
    if n == 0 {
        return Latency::default();
    }
    let rank = |p: usize| (p * n).div_ceil(100).max(1) - 1;
    let (i50, i90, i99) = (rank(50), rank(90), rank(99));
    let p50 = *ns.select_nth_unstable(i50).1;
    let p90 = *ns[i50..].select_nth_unstable(i90 - i50).1;
    let p99 = *ns[i90..].select_nth_unstable(i99 - i90).1;
    let max = ns[i99..].iter().copied().max().unwrap_or(p99);
    let us = |v: u64| v as f64 / 1e3;
    Latency {
        p50_us: us(p50),
        p90_us: us(p90),
        p99_us: us(p99),
        max_us: us(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, Role, Worker};

    const US: u64 = 1_000;

    fn buyer() -> Worker {
        Worker {
            role: Role::Buyer,
            index: 0,
            pid: 1,
            ready_ns: 0,
            finish_ns: Some(10_000_000),
        }
    }

    fn purchase(start: u64, end: u64, outcome: Outcome) -> Op {
        Op::new(0, Kind::Purchase, outcome, start).with_end(Some(end))
    }

    #[test]
    fn latency_percentiles_are_nearest_rank() {
        let ops = (1..=100u64)
            .map(|i| purchase(i * 1_000 * US, i * 1_000 * US + i * US, Outcome::SoldOut))
            .collect();
        let s = Speed::of(
            &History {
                workers: vec![buyer()],
                ops,
            },
            None,
        );
        assert_eq!(
            s.latency,
            Latency {
                p50_us: 50.0,
                p90_us: 90.0,
                p99_us: 99.0,
                max_us: 100.0
            }
        );
        // The last op ends at 100.1 ms, after the worker's finish: it is the end.
        assert_eq!(s.wall_ms, 100.1);
    }

    #[test]
    fn completed_purchases_per_second_of_the_wall_time() {
        let mut ops: Vec<Op> = (0..30u64)
            .map(|i| purchase(i * US, i * US + 5 * US, Outcome::Sold))
            .collect();
        ops.push(Op::new(0, Kind::Purchase, Outcome::Pending, 40 * US)); // no completion, no latency
        let h = History {
            workers: vec![buyer()],
            ops,
        };
        let s = Speed::of(&h, None);
        assert_eq!((s.wall_ms, s.purchases_per_s), (10.0, 3000.0));
        assert_eq!(s.latency.max_us, 5.0);
        // Ended at its deadline by the runner: the runner's end is the end.
        assert_eq!(Speed::of(&h, Some(20_000_000)).wall_ms, 20.0);
        assert_eq!(Speed::of(&History::default(), None), Speed::default());
    }
}
