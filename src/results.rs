//! `results.json`: what a run found, written first; the report is drawn from it and the
//! histories beside it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::checker::{self, Check, Facts, FinalStock, Verdict};
use crate::history::History;
use crate::runner::FaultEvent;
use crate::scenario::{Point, Scenario};
use crate::speed::Speed;
use crate::strategy::StrategyName;

/// The name of the results file, in the output folder.
pub const FILE_NAME: &str = "results.json";

/// A trial's history as operations in JSON lines, in its folder, when it came from another
/// program (`sim check --history`).
pub const JSONL_NAME: &str = "history.jsonl";

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
            out.join(FILE_NAME).display(),
            out.display()
        );
    }
    Ok(out.join(rel))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub scenario: Scenario,
    pub runs: Vec<StrategyRun>,
    pub sim_version: String,
    /// UTC, ISO 8601.
    pub created: String,
    pub machine: Machine,
    /// The run was interrupted: `runs` holds the trials that finished.
    pub interrupted: bool,
    /// Expectations of `[expect]` that the run contradicted; empty when all held.
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyRun {
    pub strategy: StrategyName,
    /// The buyers and race window of this run, when the scenario sweeps over them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<Point>,
    pub trials: Vec<TrialResult>,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialResult {
    pub trial: u32,
    pub seed: u64,
    pub initial_stock: i64,
    #[serde(flatten)]
    pub check: Check,
    /// How fast it sold, measured beside the checker.
    #[serde(flatten)]
    pub speed: Speed,
    /// What the stock held at the end, as text, when it held no number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_stock_text: Option<String>,
    /// When the runner ended the trial at its deadline, ns after the gate; none if it ended
    /// by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ns: Option<u64>,
    /// From the start of the trial's spawner to every worker waiting at the start gate.
    pub spawn_ms: f64,
    /// The trial's folder, relative to the output folder: `plan.json`, `history.bin`, the stock.
    pub dir: String,
    /// The moment the start gate opened, on `CLOCK_MONOTONIC` (to which the history's stamps
    /// are converted): history times are relative to it.
    pub gate_ns: u64,
    /// The faults the trial suffered, as they happened.
    #[serde(default)]
    pub faults: Vec<FaultEvent>,
}

impl TrialResult {
    /// What the checker was told besides the history, as results.json keeps it. (A results
    /// file from before `ended_ns` was kept says "deadlock" in its verdict instead.)
    pub fn facts(&self) -> Facts {
        Facts {
            initial_stock: self.initial_stock,
            final_stock: match (self.check.final_stock, &self.final_stock_text) {
                (Some(v), _) => FinalStock::Value(v),
                (None, text) => FinalStock::Unreadable(text.clone().unwrap_or_default()),
            },
            deadline_hit: self.ended_ns.is_some() || self.check.verdict == Verdict::Deadlock,
        }
    }

    /// Reads the trial's history from its folder in `out`: `history.bin`, or, for a history
    /// recorded by another program and checked with `sim check --history`, `history.jsonl`.
    pub fn read_history(&self, out: &Path, strategy: StrategyName) -> Result<History> {
        let dir = trial_dir(out, &self.dir)?;
        let path = dir.join(crate::history::FILE_NAME);
        let operations = dir.join(JSONL_NAME);
        if !path.is_file() && operations.is_file() {
            return crate::import::read(&operations).map_err(anyhow::Error::new);
        }
        if !path.is_file() && dir.join("history").is_dir() {
            bail!(
                "the history of trial {} of {} is in {}, a folder of one file per worker as an earlier sim wrote it; this sim reads one history.bin per trial: run the scenario again to rebuild it",
                self.trial,
                strategy,
                dir.join("history").display()
            );
        }
        if !path.is_file() {
            bail!(
                "the history of trial {} of {} is missing: {} is not a file (was it deleted?); run the scenario again to rebuild it",
                self.trial,
                strategy,
                path.display()
            );
        }
        History::read(&path, self.gate_ns).map_err(|e| {
            anyhow::Error::new(e).context(format!("reading the history of trial {} of {}", self.trial, strategy))
        })
    }

    /// Judges the trial's history again, with the same facts, and measures its speed again.
    pub fn judge_again(&mut self, history: &History) {
        let facts = self.facts();
        let ended_ns = match self.ended_ns {
            Some(ns) => Some(ns),
            None if facts.deadline_hit => Some((self.speed.wall_ms * 1e6) as u64),
            None => None,
        };
        self.check = checker::check(history, &facts);
        self.speed = Speed::of(history, ended_ns);
        self.ended_ns = ended_ns;
    }
}

/// One strategy's trials at a glance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub trials: u32,
    /// Trials whose verdict is not `safe`.
    pub anomalous: u32,
    pub verdicts: BTreeMap<Verdict, u32>,
    pub max_oversold: u64,
    pub mean_purchases_per_s: f64,
    /// The median over trials of each trial's p50 and p99 purchase latency.
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_spawn_ms: f64,
}

impl Summary {
    pub fn of(trials: &[TrialResult]) -> Summary {
        let n = trials.len();
        if n == 0 {
            return Summary::default();
        }
        let mut verdicts = BTreeMap::new();
        for t in trials {
            *verdicts.entry(t.check.verdict).or_insert(0) += 1;
        }
        let median = |f: &dyn Fn(&TrialResult) -> f64| {
            let mut v: Vec<f64> = trials.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[n / 2]
        };
        Summary {
            trials: n as u32,
            anomalous: trials.iter().filter(|t| t.check.verdict != Verdict::Safe).count() as u32,
            verdicts,
            max_oversold: trials.iter().map(|t| t.check.oversold).max().unwrap_or(0),
            mean_purchases_per_s: trials.iter().map(|t| t.speed.purchases_per_s).sum::<f64>() / n as f64,
            p50_us: median(&|t| t.speed.latency.p50_us),
            p99_us: median(&|t| t.speed.latency.p99_us),
            mean_spawn_ms: trials.iter().map(|t| t.spawn_ms).sum::<f64>() / n as f64,
        }
    }
}

/// Where the figures came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub kernel: String,
    pub cpus: usize,
    pub cpu_model: String,
}

impl Machine {
    pub fn this() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            kernel: format!("Linux {}", read("/proc/sys/kernel/osrelease").trim()),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
        }
    }
}

impl Results {
    pub fn write(&self, out: &Path) -> Result<()> {
        let path = out.join(FILE_NAME);
        let tmp = out.join(".results.json.tmp");
        let json = serde_json::to_vec_pretty(self).context("encoding results")?;
        // Written aside, then renamed: an interrupted write never leaves half a file.
        std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    pub fn read(out: &Path) -> Result<Results> {
        let path = out.join(FILE_NAME);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read {}: give the folder of an earlier `sim run` (it holds results.json)",
                path.display()
            )
        })?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is not a results file that this sim can read (truncated or edited?): run the scenario again to rebuild it", path.display())
        })
    }
}

/// Now, as `2026-11-29T05:59:21Z`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_now_looks_like_a_date() {
        let now = super::utc_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }
}
