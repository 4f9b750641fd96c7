//! What the report reads besides results.json: every trial's history, kept whole for the
//! trial each strategy features and boiled down to purchase latencies for the others.

use std::cmp::Reverse;
use std::path::{Component, Path, PathBuf};

use anyhow::{Result, bail};
use rayon::prelude::*;

use crate::checker::Verdict;
use crate::history::{History, Kind, Outcome};
use crate::results::{Results, StrategyRun, TrialResult};
use crate::scenario::Point;
use crate::scenario::StrategyName;

/// One strategy's trials as the report shows them: all of its runs, one per point of a
/// sweep (a single run without one).
pub struct Evidence<'a> {
    pub strategy: StrategyName,
    pub runs: Vec<&'a StrategyRun>,
    /// Every trial of every run, in order.
    pub trials: Vec<&'a TrialResult>,
    /// The trial with the worst anomaly among those whose history was kept, whose history
    /// the timeline and the stock chart draw; `None` when no trial finished or none kept its
    /// history.
    pub featured: Option<Featured<'a>>,
    /// The purchase latencies of every trial whose history was kept.
    pub latency: LatencyHistogram,
}

impl Evidence<'_> {
    /// Trials whose verdict is not safe.
    pub fn anomalous(&self) -> usize {
        self.trials.iter().filter(|t| t.check.verdict != Verdict::Safe).count()
    }

    /// How many trials had each verdict, worst first.
    pub fn verdicts(&self) -> Vec<(Verdict, usize)> {
        let mut counts: Vec<(Verdict, usize)> = Vec::new();
        for t in &self.trials {
            match counts.iter_mut().find(|(v, _)| *v == t.check.verdict) {
                Some((_, n)) => *n += 1,
                None => counts.push((t.check.verdict, 1)),
            }
        }
        counts.sort_by_key(|c| Reverse(c.0));
        counts
    }
}

pub struct Featured<'a> {
    pub trial: &'a TrialResult,
    /// The point of the sweep it ran at, if the scenario sweeps.
    pub point: Option<Point>,
    pub history: History,
}

/// The trial to feature: the worst verdict, then the most tickets oversold, then the most
/// other anomalies, then the most indeterminate purchases; the first such trial.
pub fn featured_index(trials: &[&TrialResult]) -> Option<usize> {
    trials
        .iter()
        .enumerate()
        .max_by_key(|(i, t)| {
            let c = &t.check;
            let others = c
                .duplicate_tickets
                .saturating_add(c.lost_updates)
                .saturating_add(c.torn_reads)
                .saturating_add(c.order_violations);
            (c.verdict, c.oversold, others, c.indeterminate, Reverse(*i))
        })
        .map(|(i, _)| i)
}

/// Groups the runs by strategy, in the order they ran, and reads every trial's history in
/// parallel. A history that cannot be read is an error that names it: the report never
/// draws from part of the evidence without saying so.
pub fn gather<'a>(out: &Path, results: &'a Results) -> Result<Vec<Evidence<'a>>> {
    let mut evidence: Vec<Evidence> = Vec::new();
    for run in &results.runs {
        let at = match evidence.iter().position(|e| e.strategy == run.strategy) {
            Some(at) => at,
            None => {
                evidence.push(Evidence {
                    strategy: run.strategy,
                    runs: Vec::new(),
                    trials: Vec::new(),
                    featured: None,
                    latency: LatencyHistogram::default(),
                });
                evidence.len() - 1
            }
        };
        evidence[at].runs.push(run);
        evidence[at].trials.extend(&run.trials);
    }
    // Only the trials whose history the run kept (`--keep-histories`) are read and featured.
    let featured: Vec<Option<usize>> = evidence
        .iter()
        .map(|e| {
            let kept: Vec<usize> = (0..e.trials.len()).filter(|&t| e.trials[t].history_kept).collect();
            let trials: Vec<&TrialResult> = kept.iter().map(|&t| e.trials[t]).collect();
            featured_index(&trials).map(|i| kept[i])
        })
        .collect();
    let jobs: Vec<(usize, usize)> = evidence
        .iter()
        .enumerate()
        .flat_map(|(e, ev)| {
            (0..ev.trials.len())
                .filter(|&t| ev.trials[t].history_kept)
                .map(move |t| (e, t))
        })
        .collect();
    let read: Vec<Result<(LatencyHistogram, Option<History>)>> = jobs
        .par_iter()
        .map(|&(e, t)| {
            let ev = &evidence[e];
            let history = read_history(out, ev.strategy, ev.trials[t])?;
            let latency = LatencyHistogram::of(&history);
            Ok((latency, (featured[e] == Some(t)).then_some(history)))
        })
        .collect();

    for (&(e, t), got) in jobs.iter().zip(read) {
        let (latency, history) = got?;
        let ev = &mut evidence[e];
        ev.latency.merge(&latency);
        if let Some(history) = history {
            let trial = ev.trials[t];
            let point = ev
                .runs
                .iter()
                .find(|r| r.trials.iter().any(|x| std::ptr::eq(x, trial)))
                .and_then(|r| r.point);
            ev.featured = Some(Featured { trial, point, history });
        }
    }
    Ok(evidence)
}

fn read_history(out: &Path, strategy: StrategyName, trial: &TrialResult) -> Result<History> {
    let dir = trial_dir(out, &trial.dir)?;
    let path = dir.join(crate::history::FILE_NAME);
    if !path.is_file() && dir.join("history").is_dir() {
        bail!(
            "the history of trial {} of {} is in {}, a folder of one file per worker as an earlier sim wrote it; this sim reads one history.bin per trial: run the scenario again to rebuild it",
            trial.trial,
            strategy,
            dir.join("history").display()
        );
    }
    if !path.is_file() {
        bail!(
            "the history of trial {} of {} is missing: {} is not a file (was it deleted?); run the scenario again to rebuild it",
            trial.trial,
            strategy,
            path.display()
        );
    }
    History::read(&path, trial.gate_ns).map_err(|e| {
        anyhow::Error::new(e).context(format!("reading the history of trial {} of {}", trial.trial, strategy))
    })
}

/// The trial folder that results.json names, refused if it leaves the output folder.
pub fn trial_dir(out: &Path, dir: &str) -> Result<PathBuf> {
    let rel = Path::new(dir);
    if dir.is_empty()
        || !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        bail!(
            "{} names the trial folder \"{dir}\", which is not inside {}: the file was edited or is not from sim",
            out.join(crate::results::FILE_NAME).display(),
            out.display()
        );
    }
    Ok(out.join(rel))
}

/// Purchase latencies (invocation to completion) in buckets 2.3 % wide on a log scale, from
/// 1 ns to 1000 s: mergeable across trials, fixed in size, and accurate enough for a chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
}

const PER_DECADE: usize = 100;
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
        for op in &history.ops {
            if op.kind == Kind::Purchase
                && op.outcome != Outcome::Pending
                && let Some(end) = op.end()
            {
                h.record(end.saturating_sub(op.start));
            }
        }
        h
    }

    pub fn record(&mut self, ns: u64) {
        let at = Self::bucket(ns);
        self.counts[at] += 1;
        self.total += 1;
    }

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

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    pub fn total(&self) -> u64 {
        self.total
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

    fn trial(n: u32, verdict: Verdict, oversold: u64, duplicates: u64) -> TrialResult {
        crate::report::testing::trial(n, verdict, oversold, duplicates)
    }

    fn featured_index(trials: &[TrialResult]) -> Option<usize> {
        super::featured_index(&trials.iter().collect::<Vec<_>>())
    }

    #[test]
    fn the_featured_trial_is_the_worst_and_the_first_of_equals() {
        assert_eq!(featured_index(&[]), None);
        let safe = [trial(0, Verdict::Safe, 0, 0), trial(1, Verdict::Safe, 0, 0)];
        assert_eq!(featured_index(&safe), Some(0));
        let mixed = [
            trial(0, Verdict::Inconsistent, 0, 9),
            trial(1, Verdict::Oversold, 2, 3),
            trial(2, Verdict::Oversold, 5, 1),
            trial(3, Verdict::Oversold, 5, 1),
            trial(4, Verdict::Safe, 0, 0),
        ];
        assert_eq!(featured_index(&mixed), Some(2));
        let dead = [trial(0, Verdict::Oversold, 5, 5), trial(1, Verdict::Deadlock, 0, 0)];
        assert_eq!(featured_index(&dead), Some(1));
    }

    #[test]
    fn trial_folders_stay_inside_the_output_folder() {
        let out = Path::new("/tmp/out");
        assert_eq!(trial_dir(out, "trials/none/000").unwrap(), out.join("trials/none/000"));
        for bad in ["", "../x", "trials/../../x", "/etc"] {
            let e = trial_dir(out, bad).unwrap_err().to_string();
            assert!(e.contains("results.json") && e.contains("not inside"), "{bad}: {e}");
        }
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
