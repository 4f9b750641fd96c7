//! `results.json`: what a run found, written first; the report is drawn from it and the
//! histories beside it.

pub mod expect;
pub mod foreign;
pub mod saved;
pub mod spreadsheet;
pub mod summary;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::checker::{self, Facts, FinalStock, Verdict};
use crate::history::History;
use crate::history::speed::Speed;
use crate::history::stats::{mean, median};
use crate::runner::Trials;
use crate::scenario::{Point, Scenario, StrategyName};

pub use crate::runner::{FaultEvent, TrialResult};

/// The file's name in the output folder.
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

/// What a run found: everything the report and `sim check` need besides the histories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The scenario as it ran, every default filled in.
    pub scenario: Scenario,
    /// Each strategy's trials (at each point of a sweep).
    pub runs: Vec<StrategyRun>,
    /// The sim that ran it.
    pub sim_version: String,
    /// When it ran: UTC, RFC 3339 to the second.
    pub created: String,
    /// Where it ran.
    pub machine: Machine,
    /// The run was interrupted: `runs` holds the trials that finished.
    pub interrupted: bool,
    /// Why the run stopped before its last trial (interrupted, or a trial that failed, such
    /// as on a full disk); `None` when every trial ran. `runs` holds the trials that finished.
    #[serde(default)]
    pub stopped: Option<String>,
    /// Expectations of `[expect]` that the run contradicted; empty when all held.
    pub violations: Vec<String>,
}

/// One strategy's trials (at one point of a sweep), with their summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyRun {
    /// The strategy.
    pub strategy: StrategyName,
    /// The buyers and race window of this run, when the scenario sweeps over them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<Point>,
    /// Its trials, in order.
    pub trials: Vec<TrialResult>,
    /// Its trials at a glance.
    pub summary: Summary,
}

impl TrialResult {
    /// What the checker was told besides the history, as results.json keeps it. (A results
    /// file without `ended_ns` says whether the deadline was hit by its verdict alone:
    /// "deadlock".)
    pub fn facts(&self) -> Facts {
        Facts {
            initial_stock: self.initial_stock,
            final_stock: match (self.check.final_stock, &self.final_stock_text) {
                (Some(v), _) => FinalStock::Value(v),
                (None, text) => FinalStock::Unreadable(text.clone().unwrap_or_default()),
            },
            deadline_hit: self.ended_ns.is_some() || self.check.verdict == Verdict::Deadlock,
            sales_record: None,
            clock_uncertainty_ns: self.check.clock_uncertainty_ns,
            failover_ns: self
                .faults
                .iter()
                .find(|f| f.kind == crate::plan::notice::FaultKind::KillPrimary)
                .map(|f| f.at_ns),
        }
    }

    /// The clock uncertainty the trial's history holds (its header's, as measured before its
    /// gate); for a history from elsewhere, the one it was checked with. `None` for a
    /// history.bin of an earlier sim, which measured none.
    pub fn saved_clock_uncertainty(&self, out: &Path) -> Result<Option<u64>> {
        let path = trial_dir(out, &self.dir)?.join(crate::history::FILE_NAME);
        if !path.is_file() {
            return Ok(Some(self.check.clock_uncertainty_ns));
        }
        Ok(crate::history::clock_uncertainty(&path)?)
    }

    /// Reads the trial's history from its folder in `out`: `history.bin`, or, for a history
    /// recorded by another program and checked with `sim check --history`, `history.jsonl`.
    pub fn read_history(&self, out: &Path, strategy: StrategyName) -> Result<History> {
        let dir = trial_dir(out, &self.dir)?;
        let path = dir.join(crate::history::FILE_NAME);
        let operations = dir.join(JSONL_NAME);
        if !path.is_file() && operations.is_file() {
            return crate::history::import::read(&operations).map_err(anyhow::Error::new);
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

    /// Judges the trial's history again, with the same facts, the store's record of sales
    /// (if it keeps one) and the clock uncertainty its history holds, and measures its speed
    /// again.
    pub fn judge_again(
        &mut self,
        history: &History,
        sales_record: Option<Vec<checker::RecordedSale>>,
        clock_uncertainty_ns: u64,
    ) {
        let facts = Facts {
            sales_record,
            clock_uncertainty_ns,
            ..self.facts()
        };
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
    /// How many trials ran.
    pub trials: u32,
    /// Trials whose verdict is not `safe`.
    pub anomalous: u32,
    /// How many trials had each verdict.
    pub verdicts: BTreeMap<Verdict, u32>,
    /// The most tickets oversold in one trial.
    pub max_oversold: u64,
    /// The mean over trials of purchases per second.
    pub mean_purchases_per_s: f64,
    /// The median over trials of each trial's p50 purchase latency.
    pub p50_us: f64,
    /// The median over trials of each trial's p99 purchase latency.
    pub p99_us: f64,
    /// The mean time from the spawner's start to every worker at the gate.
    pub mean_spawn_ms: f64,
}

impl Summary {
    /// The summary of `trials`.
    pub fn of(trials: &[TrialResult]) -> Summary {
        let n = trials.len();
        if n == 0 {
            return Summary::default();
        }
        let mut verdicts = BTreeMap::new();
        for t in trials {
            *verdicts.entry(t.check.verdict).or_insert(0) += 1;
        }
        let of = |f: fn(&TrialResult) -> f64| -> Vec<f64> { trials.iter().map(f).collect() };
        Summary {
            trials: n as u32,
            anomalous: trials.iter().filter(|t| t.check.verdict != Verdict::Safe).count() as u32,
            verdicts,
            max_oversold: trials.iter().map(|t| t.check.oversold).max().unwrap_or(0),
            mean_purchases_per_s: mean(&of(|t| t.speed.purchases_per_s)),
            p50_us: median(&of(|t| t.speed.latency.p50_us)),
            p99_us: median(&of(|t| t.speed.latency.p99_us)),
            mean_spawn_ms: mean(&of(|t| t.spawn_ms)),
        }
    }
}

/// Where the figures came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The kernel, as `Linux 6.1.0`.
    pub kernel: String,
    /// The CPUs this process could use.
    pub cpus: usize,
    /// The processor, as /proc/cpuinfo names it.
    pub cpu_model: String,
}

impl Machine {
    /// This machine.
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
    /// The results of a run of `scenario` that ran `runs` on this machine, now.
    pub fn new(scenario: &Scenario, runs: Vec<Trials>, interrupted: bool) -> Results {
        Results {
            scenario: scenario.clone(),
            runs: runs
                .into_iter()
                .map(|run| StrategyRun {
                    strategy: run.strategy,
                    point: run.point,
                    summary: Summary::of(&run.trials),
                    trials: run.trials,
                })
                .collect(),
            sim_version: env!("CARGO_PKG_VERSION").to_string(),
            created: utc_now(),
            machine: Machine::this(),
            interrupted,
            stopped: None,
            violations: Vec::new(),
        }
    }

    /// How many trials finished and were checked.
    pub fn finished_trials(&self) -> usize {
        self.runs.iter().map(|r| r.trials.len()).sum()
    }

    /// The trials whose history was not kept (`--keep-histories`), one line per strategy
    /// (and point of a sweep) that has any: "file-lock: trials 0, 2, 3 (of 4) have no history".
    pub fn missing_histories(&self) -> Vec<String> {
        self.runs
            .iter()
            .filter_map(|run| {
                let missing: Vec<String> = run
                    .trials
                    .iter()
                    .filter(|t| !t.history_kept)
                    .map(|t| t.trial.to_string())
                    .collect();
                if missing.is_empty() {
                    return None;
                }
                let at = run.point.map(|p| format!(" at {}", p.label())).unwrap_or_default();
                Some(format!(
                    "{}{at}: trial(s) {} (of {}) have no history (the run kept only some: --keep-histories)",
                    run.strategy,
                    missing.join(", "),
                    run.trials.len()
                ))
            })
            .collect()
    }

    /// Writes `results.json` into the output folder `out`, whole or not at all.
    pub fn write(&self, out: &Path) -> Result<()> {
        let path = out.join(FILE_NAME);
        let json = serde_json::to_vec_pretty(self).context("encoding results")?;
        // Written aside, then renamed: an interrupted write never leaves half a file, and a
        // link planted in the folder is replaced, never written through.
        crate::sys::file::replace(&path, &json).with_context(|| format!("writing {}", path.display()))
    }

    /// The checks some trial could not make, once per strategy and why: `racy:
    /// order_violations: not checkable: tickets are ids`.
    pub fn not_checkable(&self) -> Vec<String> {
        let mut notes: Vec<String> = Vec::new();
        for run in &self.runs {
            for why in run.trials.iter().flat_map(|t| &t.check.not_checkable) {
                let note = format!("{}: {why}", run.strategy);
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
        notes
    }

    /// Reads the `results.json` of the output folder `out`.
    pub fn read(out: &Path) -> Result<Results> {
        let path = out.join(FILE_NAME);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read {}: give the folder of an earlier `sim run` (it holds results.json)",
                path.display()
            )
        })?;
        let mut results: Results = serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is not a results file that this sim can read (truncated or edited?): run the scenario again to rebuild it", path.display())
        })?;
        if results.scenario.stock.store == crate::scenario::StoreKind::Service {
            // A variant's name may also be a built-in strategy's (`atomic`): with a service
            // every name is a variant's.
            let s = &mut results.scenario;
            s.strategies = s.strategies.iter().map(|n| n.in_service()).collect();
            s.expect.per_strategy = std::mem::take(&mut s.expect.per_strategy)
                .into_iter()
                .map(|(n, e)| (n.in_service(), e))
                .collect();
            for run in &mut results.runs {
                run.strategy = run.strategy.in_service();
            }
        }
        Ok(results)
    }
}

/// Now, as `2026-11-29T05:59:21Z`.
pub fn utc_now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
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
