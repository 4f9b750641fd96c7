//! `sim compare DIR_A DIR_B`: what changed between two runs of one scenario, perhaps made
//! at different commits or on different machines. Did it get slower, and did it start to
//! race?
//!
//! Per strategy (and point of a sweep) it sets B's trials against A's: the change in
//! purchases/s and in the p50 and p99 latency, each with a 95 % bootstrap interval over
//! trials; the change in the share of anomalous trials, with Fisher's exact test; and the
//! verdict counts side by side. A change whose interval reaches inside the noise band
//! (±`--noise`, 2 % unless told), or that a t-test cannot tell from luck, is called what it
//! is: within noise.
//!
//! It reads only the two `results.json`; it sits on top of [`crate::results`] and draws its
//! page with the report's charts ([`crate::report::side_by_side`]).

mod page;
pub mod stats;
mod text;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::checker::Verdict;
use crate::history::stats::{mean, median};
use crate::results::{Results, StrategyRun, Summary};
use crate::scenario::{Point, Scenario, StrategyName};
use stats::Interval;

/// The page `sim compare` writes, by default into DIR_B.
pub const FILE_NAME: &str = "compare.html";

/// The page's default place, `compare.html` in `dir` (the later run's output folder): a link
/// planted there is removed, so that the page replaces it rather than writing through it.
pub fn page_in(dir: &Path) -> Result<PathBuf> {
    let page = dir.join(FILE_NAME);
    if std::fs::symlink_metadata(&page).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(&page).with_context(|| format!("removing the link {}", page.display()))?;
    }
    Ok(page)
}

/// The noise band, in percent, unless `--noise` says otherwise: a change whose interval
/// reaches inside ±2 % is within noise. Trials of real processes on a shared machine wander
/// by a few percent from one run to the next.
pub const DEFAULT_NOISE_PCT: f64 = 2.0;

/// The significance level of Fisher's exact test, and the confidence of the intervals.
pub const SIGNIFICANCE: f64 = 0.05;

/// Scenario fields that may differ between two runs that are still "one scenario": they
/// do not change what one trial does.
const FREE_FIELDS: [&str; 5] = ["description", "trials", "seed", "strategies", "expect"];

/// What `sim compare` is asked to do besides comparing.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Compare two folders of different scenarios all the same.
    pub force: bool,
    /// The half-width of the noise band, in percent.
    pub noise_pct: f64,
    /// Fail when purchases/s fell by more than this many percent, with 95 % confidence.
    pub fail_if_slower_pct: Option<f64>,
    /// Fail when a strategy's share of anomalous trials rose significantly.
    pub fail_if_anomalous: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            force: false,
            noise_pct: DEFAULT_NOISE_PCT,
            fail_if_slower_pct: None,
            fail_if_anomalous: false,
        }
    }
}

/// One of the two runs: its folder and what it found.
#[derive(Debug, Clone)]
pub struct Side {
    /// The output folder, as given.
    pub dir: PathBuf,
    /// Its `results.json`.
    pub results: Results,
}

impl Side {
    /// Reads the `results.json` of an output folder; an error names the folder or file and
    /// what to do.
    pub fn read(dir: &Path) -> Result<Side> {
        if !dir.is_dir() {
            bail!(
                "{} is not a folder: give two output folders of `sim run` (each holds results.json), \
                 e.g. `sim compare reports/before reports/after`",
                dir.display()
            );
        }
        Ok(Side {
            dir: dir.to_path_buf(),
            results: Results::read(dir)?,
        })
    }
}

/// A scenario field whose value differs between A and B.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The field as the scenario file names it: `buyers.hold_us`.
    pub field: String,
    /// Its value in A, as JSON, or `(none)`.
    pub a: String,
    /// Its value in B.
    pub b: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {} in A and {} in B", self.field, self.a, self.b)
    }
}

/// What a run is compared by: a strategy, at a point of a sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Key {
    /// The strategy.
    pub strategy: StrategyName,
    /// The point of the sweep, if the scenario sweeps.
    pub point: Option<Point>,
}

impl Key {
    fn of(run: &StrategyRun) -> Key {
        Key {
            strategy: run.strategy,
            point: run.point,
        }
    }

    /// `file-lock`, `file-lock at 8 buyers, 200 µs hold`, or `atomic at 8 buyers, 1 ms hold,
    /// 300 ms lag`.
    pub fn label(&self) -> String {
        match self.point {
            None => self.strategy.name().to_string(),
            Some(p) => format!(
                "{} at {}, {} hold{}",
                self.strategy,
                crate::report::format::plural(p.buyers as u64, "buyer", "buyers"),
                crate::report::format::duration_axis(p.hold_us as f64),
                p.lag_ms.map(|l| format!(", {l} ms lag")).unwrap_or_default()
            ),
        }
    }
}

/// How a measure moved from A to B, judged against the noise band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    /// Better in B beyond noise, with 95 % confidence (significant, for anomalies).
    Better,
    /// Worse in B beyond noise, with 95 % confidence.
    Worse,
    /// The interval reaches inside the noise band, or the test is not significant.
    WithinNoise,
    /// Too few trials (fewer than two on a side) or nothing measured: no change can be told.
    Unknown,
}

/// The change of one measure: A's and B's value, and B against A with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// A's value: the mean of purchases/s, or the median over trials of a latency.
    pub a: f64,
    /// B's value.
    pub b: f64,
    /// B against A, with its 95 % interval; `None` when it cannot be told.
    pub interval: Option<Interval>,
    /// The t-test's p-value of the difference of the trials' means; `None` as above.
    pub p: Option<f64>,
    /// The judgement: beyond noise only when the whole interval lies outside the noise
    /// band and the t-test says p < 0.05, as criterion judges a change.
    pub shift: Shift,
}

impl Change {
    fn of(a: &[f64], b: &[f64], statistic: fn(&[f64]) -> f64, noise: f64, higher_is_better: bool) -> Change {
        let value = |v: &[f64]| if v.is_empty() { f64::NAN } else { statistic(v) };
        let interval = stats::bootstrap(a, b, statistic);
        let p = interval.and_then(|_| stats::t_test(a, b));
        let (up, down) = if higher_is_better {
            (Shift::Better, Shift::Worse)
        } else {
            (Shift::Worse, Shift::Better)
        };
        let shift = match (interval, p) {
            (Some(i), Some(p)) if p < SIGNIFICANCE && i.low > noise => up,
            (Some(i), Some(p)) if p < SIGNIFICANCE && i.high < -noise => down,
            (Some(_), Some(_)) => Shift::WithinNoise,
            _ => Shift::Unknown,
        };
        Change {
            a: value(a),
            b: value(b),
            interval,
            p,
            shift,
        }
    }
}

/// The change in the share of anomalous trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyChange {
    /// Anomalous trials of A.
    pub a: u32,
    /// Trials of A.
    pub trials_a: u32,
    /// Anomalous trials of B.
    pub b: u32,
    /// Trials of B.
    pub trials_b: u32,
    /// Fisher's exact test, two-sided.
    pub p: f64,
    /// `Worse`: the share rose significantly; `Better`: it fell significantly.
    pub shift: Shift,
}

impl AnomalyChange {
    fn of(a: &Summary, b: &Summary) -> AnomalyChange {
        let p = stats::fisher_exact(a.anomalous as u64, a.trials as u64, b.anomalous as u64, b.trials as u64);
        let share = |s: &Summary| s.anomalous as f64 / s.trials as f64;
        let shift = if a.trials == 0 || b.trials == 0 {
            Shift::Unknown
        } else if p < SIGNIFICANCE && share(b) > share(a) {
            Shift::Worse
        } else if p < SIGNIFICANCE && share(b) < share(a) {
            Shift::Better
        } else {
            Shift::WithinNoise
        };
        AnomalyChange {
            a: a.anomalous,
            trials_a: a.trials,
            b: b.anomalous,
            trials_b: b.trials,
            p,
            shift,
        }
    }
}

/// One strategy (at one point) in both runs.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is compared.
    pub key: Key,
    /// A's summary.
    pub a: Summary,
    /// B's summary.
    pub b: Summary,
    /// Purchases per second: the mean over trials.
    pub purchases: Change,
    /// The median over trials of each trial's p50 purchase latency.
    pub p50: Change,
    /// The same of p99.
    pub p99: Change,
    /// The share of anomalous trials.
    pub anomalous: AnomalyChange,
}

impl Row {
    /// The verdicts, worst first, with A's and B's counts, for every verdict either has.
    pub fn verdicts(&self) -> Vec<(Verdict, u32, u32)> {
        let mut all: Vec<Verdict> = self.a.verdicts.keys().chain(self.b.verdicts.keys()).copied().collect();
        all.sort_by(|x, y| y.cmp(x));
        all.dedup();
        all.into_iter()
            .map(|v| {
                (
                    v,
                    self.a.verdicts.get(&v).copied().unwrap_or(0),
                    self.b.verdicts.get(&v).copied().unwrap_or(0),
                )
            })
            .collect()
    }
}

/// Two runs set side by side.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The earlier run, or the baseline.
    pub a: Side,
    /// The run judged against it.
    pub b: Side,
    /// How the two scenarios differ; empty unless `--force` let them through.
    pub differences: Vec<Difference>,
    /// One row per strategy (and point) that both ran, in A's order.
    pub rows: Vec<Row>,
    /// What only A ran.
    pub only_in_a: Vec<Key>,
    /// What only B ran.
    pub only_in_b: Vec<Key>,
    /// The noise band's half-width, as a fraction.
    pub noise: f64,
}

/// Reads both folders and compares them; refuses two different scenarios unless
/// `options.force`, naming each field that differs.
pub fn compare(dir_a: &Path, dir_b: &Path, options: &Options) -> Result<Comparison> {
    let a = Side::read(dir_a)?;
    let b = Side::read(dir_b)?;
    let differences = differences(&a.results.scenario, &b.results.scenario);
    if !differences.is_empty() && !options.force {
        let list: Vec<String> = differences.iter().map(|d| d.to_string()).collect();
        bail!(
            "{} and {} are runs of different scenarios: {}. Their figures would not say what a change \
             of code or machine did; compare two runs of one scenario, or give --force to compare them anyway",
            a.dir.join(crate::results::FILE_NAME).display(),
            b.dir.join(crate::results::FILE_NAME).display(),
            list.join("; ")
        );
    }
    Ok(sides(a, b, differences, options.noise_pct / 100.0))
}

/// Sets the runs of two sides against each other.
pub fn sides(a: Side, b: Side, differences: Vec<Difference>, noise: f64) -> Comparison {
    let same = |x: &Key, y: &Key| x.strategy == y.strategy && x.point == y.point;
    let mut rows = Vec::new();
    let mut only_in_a = Vec::new();
    for run_a in &a.results.runs {
        let key = Key::of(run_a);
        match b.results.runs.iter().find(|r| same(&Key::of(r), &key)) {
            Some(run_b) => rows.push(row(key, run_a, run_b, noise)),
            None => only_in_a.push(key),
        }
    }
    let only_in_b = b
        .results
        .runs
        .iter()
        .map(Key::of)
        .filter(|k| !a.results.runs.iter().any(|r| same(&Key::of(r), k)))
        .collect();
    Comparison {
        a,
        b,
        differences,
        rows,
        only_in_a,
        only_in_b,
        noise,
    }
}

fn row(key: Key, a: &StrategyRun, b: &StrategyRun, noise: f64) -> Row {
    let values = |run: &StrategyRun, f: fn(&crate::results::TrialResult) -> f64| -> Vec<f64> {
        run.trials.iter().map(f).collect()
    };
    let rate = |t: &crate::results::TrialResult| t.speed.purchases_per_s;
    let p50 = |t: &crate::results::TrialResult| t.speed.latency.p50_us;
    let p99 = |t: &crate::results::TrialResult| t.speed.latency.p99_us;
    // The summaries are recomputed from the trials, so that the figures and their tests
    // agree even if a results.json was edited by hand.
    let (sa, sb) = (Summary::of(&a.trials), Summary::of(&b.trials));
    Row {
        key,
        purchases: Change::of(&values(a, rate), &values(b, rate), mean, noise, true),
        p50: Change::of(&values(a, p50), &values(b, p50), median, noise, false),
        p99: Change::of(&values(a, p99), &values(b, p99), median, noise, false),
        anomalous: AnomalyChange::of(&sa, &sb),
        a: sa,
        b: sb,
    }
}

/// Each scenario field whose value differs, but for those that do not change what a
/// trial does (description, trials, seed, strategies, expectations).
pub fn differences(a: &Scenario, b: &Scenario) -> Vec<Difference> {
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    flatten("", &serde_json::to_value(a).unwrap_or(Value::Null), &mut fa);
    flatten("", &serde_json::to_value(b).unwrap_or(Value::Null), &mut fb);
    let free = |field: &str| {
        FREE_FIELDS
            .iter()
            .any(|f| field == *f || field.starts_with(&format!("{f}.")))
    };
    let mut fields: Vec<&String> = fa.iter().chain(&fb).map(|(f, _)| f).filter(|f| !free(f)).collect();
    fields.sort();
    fields.dedup();
    let get = |list: &[(String, String)], field: &str| {
        list.iter()
            .find(|(f, _)| f == field)
            .map_or_else(|| "(none)".to_string(), |(_, v)| v.clone())
    };
    fields
        .into_iter()
        .filter_map(|field| {
            let (va, vb) = (get(&fa, field), get(&fb, field));
            (va != vb).then(|| Difference {
                field: field.clone(),
                a: va,
                b: vb,
            })
        })
        .collect()
}

/// Every leaf of a JSON value, as (`a.b.c`, compact JSON); lists are leaves.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.to_string())),
    }
}

impl Comparison {
    /// Why `--fail-if-slower` or `--fail-if-anomalous` fails this comparison, one sentence
    /// per strategy that crossed; empty when it passes.
    pub fn failures(&self, options: &Options) -> Vec<String> {
        let mut out = Vec::new();
        for row in &self.rows {
            if let (Some(pct), Some(i)) = (options.fail_if_slower_pct, row.purchases.interval)
                && row.purchases.shift == Shift::Worse
                && i.high < -pct / 100.0
            {
                out.push(format!(
                    "{}: purchases/s fell by {} (95 % interval {} to {}, p = {}), past --fail-if-slower {pct}",
                    row.key.label(),
                    text::magnitude(i.estimate),
                    text::magnitude(i.high),
                    text::magnitude(i.low),
                    text::p_value(row.purchases.p.unwrap_or(1.0)),
                ));
            }
            if options.fail_if_anomalous && row.anomalous.shift == Shift::Worse {
                let c = &row.anomalous;
                out.push(format!(
                    "{}: anomalous trials rose from {} of {} to {} of {} (Fisher's exact test, p = {}), \
                     failing --fail-if-anomalous",
                    row.key.label(),
                    c.a,
                    c.trials_a,
                    c.b,
                    c.trials_b,
                    text::p_value(c.p)
                ));
            }
        }
        out
    }

    /// What the gates could not judge: strategies with too few trials to tell a change.
    pub fn unjudged(&self, options: &Options) -> Vec<String> {
        if options.fail_if_slower_pct.is_none() {
            return Vec::new();
        }
        self.rows
            .iter()
            .filter(|r| r.purchases.interval.is_none())
            .map(|r| {
                format!(
                    "{}: no interval for purchases/s ({} trials in A, {} in B; at least 2 on each side \
                     with purchases are needed): --fail-if-slower cannot judge it; run with --trials 5 or more",
                    r.key.label(),
                    r.a.trials,
                    r.b.trials
                )
            })
            .collect()
    }

    /// The terminal table; `colour` adds ANSI colours to the judgements and verdicts.
    pub fn table(&self, colour: bool) -> String {
        text::render(self, colour)
    }

    /// Writes the comparison's page to `path` and returns it.
    pub fn write_page(&self, path: &Path) -> Result<PathBuf> {
        page::write(self, path)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::{Limits, parse};

    fn scenario(toml: &str) -> Scenario {
        parse(Path::new("t.toml"), toml, Limits::default()).expect("a valid scenario")
    }

    #[test]
    fn only_fields_that_change_a_trial_make_a_different_scenario() {
        let a = scenario("name = \"t\"\n[buyers]\nhold_us = 0\n");
        let b = scenario(
            "name = \"t\"\ndescription = \"x\"\ntrials = 3\nseed = 9\nstrategy = [\"none\", \"queue\"]\n\
             [buyers]\nhold_us = 0\n[expect]\noversell = true\n",
        );
        assert_eq!(differences(&a, &b), []);
        let c = scenario("name = \"t\"\n[buyers]\nhold_us = 2000\n[lock]\nscope = \"write\"\n");
        let d = differences(&a, &c);
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["buyers.hold_us", "lock.scope"], "{d:?}");
        assert_eq!(d[0].to_string(), "buyers.hold_us is 0 in A and 2000 in B");
    }

    #[test]
    fn a_change_is_judged_against_the_noise_band() {
        let a = [100.0, 101.0, 99.0, 100.5, 99.5];
        let slower = [50.0, 51.0, 49.0, 50.5, 49.5];
        let c = Change::of(&a, &slower, mean, 0.02, true);
        assert_eq!(c.shift, Shift::Worse);
        assert_eq!(c.a, 100.0);
        assert_eq!(c.b, 50.0);
        // Latency: higher is worse, so the same numbers read the other way.
        assert_eq!(Change::of(&a, &slower, median, 0.02, false).shift, Shift::Better);
        // 1 % lower, however sure, is inside a 2 % band.
        let close = [99.0, 100.0, 98.0, 99.0, 99.5];
        assert_eq!(Change::of(&a, &close, mean, 0.02, true).shift, Shift::WithinNoise);
        assert_eq!(Change::of(&a, &a, mean, 0.0, true).shift, Shift::WithinNoise);
        assert_eq!(Change::of(&a[..1], &a, mean, 0.02, true).shift, Shift::Unknown);
        assert!(Change::of(&[], &[], mean, 0.02, true).a.is_nan());
    }

    fn trial(n: u32, verdict: &str, rate: f64) -> crate::results::TrialResult {
        serde_json::from_value(serde_json::json!({
            "trial": n, "seed": n, "initial_stock": 10,
            "final_stock": 0, "attempts": 10, "sold": 10, "sold_out": 0,
            "oversold": 0, "duplicate_tickets": 0, "lost_updates": 0,
            "torn_reads": 0, "indeterminate": 0, "order_violations": 0, "produced": 0,
            "dropped": 0, "unconsumed": 0, "verdict": verdict, "wall_ms": 1.0,
            "purchases_per_s": rate,
            "latency": { "p50_us": 1.0, "p90_us": 1.0, "p99_us": 1.0, "max_us": 1.0 },
            "anomalies": [], "spawn_ms": 0.0, "dir": "t", "gate_ns": 0
        }))
        .expect("a trial as results.json holds it")
    }

    fn run(strategy: StrategyName, point: Option<(u32, u64)>, rates: &[f64]) -> StrategyRun {
        let trials: Vec<_> = rates
            .iter()
            .enumerate()
            .map(|(i, &r)| trial(i as u32, "safe", r))
            .collect();
        StrategyRun {
            strategy,
            point: point.map(|(buyers, hold_us)| Point {
                buyers,
                hold_us,
                lag_ms: None,
            }),
            summary: Summary::of(&trials),
            trials,
        }
    }

    fn side(runs: Vec<StrategyRun>) -> Side {
        Side {
            dir: "x".into(),
            results: Results {
                scenario: scenario("name = \"t\"\n"),
                runs,
                sim_version: "0".into(),
                created: "2026-12-02T00:00:00Z".into(),
                machine: crate::results::Machine {
                    kernel: "Linux".into(),
                    cpus: 2,
                    cpu_model: "cpu".into(),
                },
                interrupted: false,
                stopped: None,
                violations: Vec::new(),
            },
        }
    }

    #[test]
    fn runs_are_matched_by_strategy_and_point_of_a_sweep() {
        use StrategyName::{FileLock, None as Unguarded, Queue};
        let a = side(vec![
            run(Unguarded, Some((1, 0)), &[100.0, 101.0, 99.0, 100.5, 99.5]),
            run(Unguarded, Some((8, 0)), &[400.0, 401.0, 399.0, 400.5, 399.5]),
            run(FileLock, Some((1, 0)), &[50.0, 51.0]),
        ]);
        let b = side(vec![
            run(Unguarded, Some((8, 0)), &[200.0, 201.0, 199.0, 200.5, 199.5]),
            run(Unguarded, Some((1, 0)), &[100.0, 99.0, 101.0, 99.5, 100.5]),
            run(Queue, Some((1, 0)), &[10.0, 11.0]),
        ]);
        let c = sides(a, b, Vec::new(), 0.02);
        let labels: Vec<String> = c.rows.iter().map(|r| r.key.label()).collect();
        assert_eq!(labels, ["none at 1 buyer, 0 µs hold", "none at 8 buyers, 0 µs hold"]);
        assert_eq!(c.rows[0].purchases.shift, Shift::WithinNoise);
        assert_eq!(c.rows[1].purchases.shift, Shift::Worse);
        assert_eq!(c.only_in_a.len(), 1);
        assert_eq!(c.only_in_a[0].strategy, FileLock);
        assert_eq!(c.only_in_b[0].strategy, Queue);

        let slower = Options {
            fail_if_slower_pct: Some(40.0),
            ..Options::default()
        };
        let failures = c.failures(&slower);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].starts_with("none at 8 buyers, 0 µs hold: purchases/s fell by 50.0 %"),
            "{failures:?}"
        );
        // Half as fast is not past a 60 % gate.
        let lenient = Options {
            fail_if_slower_pct: Some(60.0),
            ..Options::default()
        };
        assert!(c.failures(&lenient).is_empty());
        let table = c.table(false);
        assert!(table.contains("only in A: file-lock"), "{table}");
        assert!(
            table.contains("Worse in B: none at 8 buyers, 0 µs hold: purchases/s -50.0 %"),
            "{table}"
        );
    }

    #[test]
    fn a_single_trial_cannot_be_judged_and_the_gate_says_so() {
        let c = sides(
            side(vec![run(StrategyName::FileLock, None, &[100.0])]),
            side(vec![run(StrategyName::FileLock, None, &[10.0])]),
            Vec::new(),
            0.02,
        );
        assert_eq!(c.rows[0].purchases.shift, Shift::Unknown);
        let gate = Options {
            fail_if_slower_pct: Some(10.0),
            ..Options::default()
        };
        assert!(c.failures(&gate).is_empty());
        let unjudged = c.unjudged(&gate);
        assert_eq!(unjudged.len(), 1);
        assert!(unjudged[0].contains("--fail-if-slower cannot judge it"), "{unjudged:?}");
        assert!(c.table(false).contains("too few trials"));
    }

    fn odd_number() -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![
            0.0..1e6,
            Just(0.0),
            Just(-1.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::MAX),
            Just(1e-300),
        ]
    }

    fn odd_trials() -> impl proptest::strategy::Strategy<Value = Vec<(f64, f64, f64, u8)>> {
        proptest::collection::vec((odd_number(), odd_number(), odd_number(), 0u8..5), 0..7)
    }

    fn odd_run(trials: &[(f64, f64, f64, u8)]) -> StrategyRun {
        let verdicts = ["safe", "inconsistent", "oversold", "crashed", "deadlock"];
        let trials: Vec<_> = trials
            .iter()
            .enumerate()
            .map(|(i, &(rate, p50, p99, v))| {
                let mut t = trial(i as u32, verdicts[v as usize], 0.0);
                t.speed.purchases_per_s = rate;
                t.speed.latency.p50_us = p50;
                t.speed.latency.p99_us = p99;
                t
            })
            .collect();
        StrategyRun {
            strategy: StrategyName::FileLock,
            point: None,
            summary: Summary::of(&trials),
            trials,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
        /// results.json comes from outside: whatever figures it holds, comparing them, printing
        /// the table and drawing the page give an answer, never a panic.
        #[test]
        fn any_figures_compare_without_a_panic(a in odd_trials(), b in odd_trials(), noise in 0.0..0.5f64) {
            let c = sides(side(vec![odd_run(&a)]), side(vec![odd_run(&b)]), Vec::new(), noise);
            let options = Options { fail_if_slower_pct: Some(10.0), fail_if_anomalous: true, ..Options::default() };
            let _ = c.failures(&options);
            let _ = c.unjudged(&options);
            let table = c.table(true);
            proptest::prop_assert!(table.contains("file-lock"));
            let dir = tempfile::tempdir().unwrap();
            let page = c.write_page(&dir.path().join("c.html")).unwrap();
            proptest::prop_assert!(std::fs::read_to_string(page).unwrap().contains("</html>"));
            let _ = crate::results::spreadsheet::csv(&c.b.results);
            let _ = crate::results::spreadsheet::markdown(&c.b.results);
        }
    }

    #[test]
    fn anomalies_rise_only_when_fisher_says_so() {
        let s = |anomalous, trials| Summary {
            anomalous,
            trials,
            ..Summary::default()
        };
        assert_eq!(AnomalyChange::of(&s(0, 6), &s(6, 6)).shift, Shift::Worse);
        assert_eq!(AnomalyChange::of(&s(6, 6), &s(0, 6)).shift, Shift::Better);
        assert_eq!(AnomalyChange::of(&s(0, 3), &s(1, 3)).shift, Shift::WithinNoise);
        assert_eq!(AnomalyChange::of(&s(0, 0), &s(1, 3)).shift, Shift::Unknown);
    }
}
