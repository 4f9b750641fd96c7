//! What the report reads besides results.json: every trial's history, kept whole for the
//! trial each strategy features and boiled down to purchase latencies for the others.

use std::cmp::Reverse;
use std::path::Path;

use anyhow::Result;
use rayon::prelude::*;

use crate::checker::{self, Judged, Verdict};
use crate::history::History;
use crate::history::speed::LatencyHistogram;
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
    /// The checker's judgement of every operation of it: what the charts draw.
    pub judged: Judged,
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
                .saturating_add(c.phantom_stock)
                .saturating_add(c.order_violations)
                .saturating_add(c.lost_acknowledged);
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
            let history = ev.trials[t].read_history(out, ev.strategy)?;
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
            // As the checker judged it: with the trial's clock uncertainty and the store's
            // record of sales.
            let facts = checker::Facts {
                sales_record: crate::store::read_sales(&crate::results::trial_dir(out, &trial.dir)?)?,
                ..trial.facts()
            };
            let judged = checker::judge(&history, &facts);
            ev.featured = Some(Featured {
                trial,
                point,
                history,
                judged,
            });
        }
    }
    Ok(evidence)
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
        assert_eq!(
            crate::results::trial_dir(out, "trials/none/000").unwrap(),
            out.join("trials/none/000")
        );
        for bad in ["", "../x", "trials/../../x", "/etc"] {
            let e = crate::results::trial_dir(out, bad).unwrap_err().to_string();
            assert!(e.contains("results.json") && e.contains("not inside"), "{bad}: {e}");
        }
    }
}
