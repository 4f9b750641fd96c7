//! How fast a trial sold: its wall time, purchases per second and purchase latencies,
//! measured from its history, outside the checker (they are no verdict). A trial that was
//! ended at its deadline recorded nothing at its end: the runner's own end time is used.
//! Latencies too many to keep (a soak's, or every trial's of a run, for the report) go into
//! a [`LatencyHistogram`], of a fixed size.

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
    /// An open loop's service time: from each purchase's send to its answer, beside its
    /// latency from the planned send time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time: Option<Latency>,
}

impl Speed {
    /// Measures a history. `ended_ns`: when the runner ended the trial, ns after the gate, if
    /// it did (at the deadline); otherwise the last moment the history recorded is the end.
    pub fn of(history: &History, ended_ns: Option<u64>) -> Speed {
        let mut latencies: Vec<u64> = Vec::new();
        let mut service: Vec<u64> = Vec::new();
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
                if op.planned()
                    && let (Some(sent), Some(end)) = (op.read(), op.end())
                {
                    service.push(end.saturating_sub(sent));
                }
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
            service_time: (!service.is_empty()).then(|| latency(&mut service)),
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

/// Purchase latencies (invocation to completion) in buckets 2.3 % wide on a log scale, from
/// 1 ns to 1000 s: mergeable across trials, fixed in size, and accurate enough for a chart.
/// The report draws the latencies of many trials with it; a soak's streaming checker takes
/// its percentiles from it, in memory that does not grow with the soak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
}

/// Buckets a decade: each 2.3 % wide.
const PER_DECADE: usize = 100;
/// Decades, from 1 ns to 1000 s.
const DECADES: usize = 12;

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; PER_DECADE * DECADES],
            total: 0,
        }
    }
}

impl LatencyHistogram {
    /// The latencies of a history's completed purchases, as the checker measures them.
    pub fn of(history: &History) -> LatencyHistogram {
        let mut h = LatencyHistogram::default();
        for ns in history.ops.iter().filter_map(|op| op.latency()) {
            h.record(ns);
        }
        h
    }

    /// Counts one latency, in ns.
    pub fn record(&mut self, ns: u64) {
        let at = Self::bucket(ns);
        self.counts[at] += 1;
        self.total += 1;
    }

    /// The bucket of a latency in ns; those beyond either end go into the end's bucket.
    fn bucket(ns: u64) -> usize {
        if ns <= 1 {
            return 0;
        }
        let at = ((ns as f64).log10() * PER_DECADE as f64).floor() as usize;
        at.min(PER_DECADE * DECADES - 1)
    }

    /// The upper edge of a bucket, in µs.
    fn upper_us(bucket: usize) -> f64 {
        10f64.powf((bucket + 1) as f64 / PER_DECADE as f64) / 1e3
    }

    /// Adds another histogram's counts: the latencies of more trials.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The latencies counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Its median, 90th and 99th percentiles and slowest; `None` when it counted none.
    pub fn latency(&self) -> Option<Latency> {
        let q = |q: f64| self.quantile_us(q).unwrap_or(0.0);
        (self.total > 0).then(|| Latency {
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            max_us: q(1.0),
        })
    }

    /// The latency below which a fraction `q` of the purchases completed, in µs (to the
    /// bucket's upper edge); `None` when there are none.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::upper_us(i));
            }
        }
        None
    }

    /// The cumulative distribution as (latency in µs, fraction completed by then), one point
    /// per occupied bucket, plus a starting point at zero.
    pub fn cdf(&self) -> Vec<(f64, f64)> {
        let mut points = Vec::new();
        if self.total == 0 {
            return points;
        }
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if points.is_empty() {
                points.push((Self::upper_us(i.saturating_sub(1)), 0.0));
            }
            seen += c;
            points.push((Self::upper_us(i), seen as f64 / self.total as f64));
        }
        points
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

    #[test]
    fn latency_quantiles_are_within_a_bucket() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile_us(0.5), None);
        assert!(h.cdf().is_empty());
        for us in 1..=100u64 {
            h.record(us * 1000);
        }
        assert_eq!(h.total(), 100);
        let close = |got: f64, want: f64| (got - want).abs() / want < 0.03;
        assert!(close(h.quantile_us(0.5).unwrap(), 50.0), "{:?}", h.quantile_us(0.5));
        assert!(close(h.quantile_us(0.99).unwrap(), 99.0));
        assert!(close(h.quantile_us(1.0).unwrap(), 100.0));
        let cdf = h.cdf();
        assert_eq!(cdf[0].1, 0.0);
        assert_eq!(cdf.last().unwrap().1, 1.0);
        assert!(cdf.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));

        let mut twice = h.clone();
        twice.merge(&h);
        assert_eq!(twice.total(), 200);
        assert_eq!(twice.quantile_us(0.5), h.quantile_us(0.5));

        // Zero and absurd latencies land in the end buckets rather than out of range.
        h.record(0);
        h.record(u64::MAX);
        assert_eq!(h.total(), 102);
    }
}
