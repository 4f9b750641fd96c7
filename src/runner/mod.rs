//! The runner: makes each trial's folder and plan, has the store and the strategy set up
//! what they need, spawns the workers, opens the start gate, watches them against the
//! deadline, and hands their histories to the checker. It removes what it and they created
//! (a semaphore, a board, workers) also when a trial fails or the run is interrupted. It
//! knows stores and strategies only through their traits.

mod commands;
mod crew;
mod folder;
mod nemesis;
mod soak;
mod space;
mod trial;

pub use crew::FaultEvent;
pub use folder::{FolderLock, MARKER, SERVER_DIR};
pub use trial::TrialResult;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::scenario::{Point, Scenario, StrategyName};
use crate::store::Service;
use crate::{store, strategy};
use trial::{TrialSetup, run_trial};

/// The checked trials of one strategy at one point of the scenario's sweep.
pub struct Trials {
    /// The strategy that ran.
    pub strategy: StrategyName,
    /// The buyers and race window, when the scenario sweeps over them.
    pub point: Option<Point>,
    /// Its trials, in order.
    pub trials: Vec<TrialResult>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Every trial ran.
    Completed,
    /// Ctrl-C or SIGTERM: the results hold the trials that finished.
    Interrupted,
    /// A trial could not be run or checked (the disk filled, a file could not be made): the
    /// run stopped there, and the results hold the trials that finished. Why, in words.
    Failed(String),
}

impl RunEnd {
    /// Why the run stopped before its last trial, in words; `None` if it completed.
    pub fn why_stopped(&self) -> Option<String> {
        match self {
            RunEnd::Completed => None,
            RunEnd::Interrupted => Some("interrupted by SIGINT or SIGTERM".into()),
            RunEnd::Failed(why) => Some(why.clone()),
        }
    }
}

/// Which trials keep their history file once checked (`--keep-histories`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
pub enum KeepHistories {
    /// Every trial's: the report can draw any of them.
    #[default]
    All,
    /// Only those of trials that are not safe: the evidence, for a fraction of the disk.
    Anomalous,
    /// None: results.json alone, for long or many runs.
    None,
}

impl KeepHistories {
    /// Whether a trial with this verdict keeps its history.
    pub(crate) fn keeps(self, verdict: crate::checker::Verdict) -> bool {
        match self {
            KeepHistories::All => true,
            KeepHistories::Anomalous => verdict != crate::checker::Verdict::Safe,
            KeepHistories::None => false,
        }
    }
}

/// How to run, from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Which histories stay on disk once checked.
    pub keep_histories: KeepHistories,
}

/// Receives SIGINT and SIGTERM as bytes on a socket that the runner can wait on.
pub struct Interrupts {
    wake: UnixStream,
}

impl Interrupts {
    /// Routes SIGINT and SIGTERM here, for the rest of the process's life.
    pub fn install() -> Result<Interrupts> {
        let (wake, signal_end) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::low_level::pipe::register(signal, signal_end.try_clone()?)?;
        }
        crate::sys::process::note_interrupts()?;
        Ok(Interrupts { wake })
    }

    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        Some(self.wake.as_fd())
    }

    /// Whether a signal came (and forgets it).
    fn pending(&self) -> bool {
        let mut buf = [0u8; 16];
        matches!((&self.wake).read(&mut buf), Ok(n) if n > 0)
    }
}

/// Runs every trial of every strategy of the scenario, writing into `out`, which the caller
/// has claimed ([`FolderLock::for_run`]). An error means nothing ran; a failure after the
/// first trial started ends the run early, as [`RunEnd::Failed`].
pub fn run(
    scenario: &Scenario,
    out: &Path,
    options: RunOptions,
    interrupts: &Interrupts,
) -> Result<(Vec<Trials>, RunEnd)> {
    let exe = std::env::current_exe().context("finding the sim binary to start workers")?;
    run_with(&exe, scenario, out, options, interrupts)
}

/// Runs one trial of `strategy` with the `sim` binary at `exe`, writing into `out`, and
/// checks it: for benchmarks, which are not the `sim` binary themselves.
pub fn run_one(
    exe: &Path,
    scenario: &Scenario,
    strategy: StrategyName,
    out: &Path,
    interrupts: &Interrupts,
) -> Result<TrialResult> {
    let _folder = FolderLock::for_run(out)?;
    let service = store::registry(scenario.stock.store).start(scenario, out)?;
    run_one_on(exe, scenario, strategy, out, interrupts, &*service)
}

/// [`run_one`] on a store's service that the caller started (`Store::start`) in `out`, which
/// the caller has claimed: so that benchmarks of a server store start its server once.
pub fn run_one_on(
    exe: &Path,
    scenario: &Scenario,
    strategy: StrategyName,
    out: &Path,
    interrupts: &Interrupts,
    service: &dyn Service,
) -> Result<TrialResult> {
    let trials = out.join("trials");
    if trials.exists() {
        std::fs::remove_dir_all(&trials).with_context(|| format!("removing the earlier {}", trials.display()))?;
    }
    let dir = format!("trials/{}/000", strategy.name());
    let setup = TrialSetup {
        exe,
        scenario,
        out,
        rel: &dir,
        strategy,
        n: 0,
        seed: scenario.seed,
        interrupts,
        keep: KeepHistories::All,
        bar: &ProgressBar::hidden(),
        service,
    };
    match run_trial(&setup)? {
        Some(ran) => ran.check(KeepHistories::All),
        None => bail!("interrupted"),
    }
}

fn run_with(
    exe: &Path,
    scenario: &Scenario,
    out: &Path,
    options: RunOptions,
    interrupts: &Interrupts,
) -> Result<(Vec<Trials>, RunEnd)> {
    space::check(scenario, out, options.keep_histories)?;
    if scenario.buyers.duration_ms.is_some() && options.keep_histories == KeepHistories::All {
        let _ = writeln!(
            std::io::stderr(),
            "note: a soak that keeps every history writes 64 bytes a purchase, hundreds of MB a minute; \
             --keep-histories anomalous removes the segments once checked"
        );
    }
    for &name in &scenario.strategies {
        let removed = strategy::registry(name).sweep_stale();
        if removed > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "note: removed {removed} thing(s) of the {name} strategy left by sim runs that were killed"
            );
        }
    }
    // The store's server for the whole run, stopped when this returns, however it returns.
    let service = match store::registry(scenario.stock.store).start(scenario, out) {
        Ok(service) => service,
        // A Ctrl-C reaches the server's set-up too (`initdb` in the same process group), which
        // then fails: the interrupt is what happened, and nothing half-made stays.
        Err(_) if interrupts.pending() => {
            let _ = std::fs::remove_dir_all(out.join(SERVER_DIR));
            return Ok((Vec::new(), RunEnd::Interrupted));
        }
        Err(e) => return Err(e),
    };
    let mut runs = Vec::new();
    let total = (scenario.strategies.len() * scenario.points().len()) as u64 * scenario.trials as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} {msg:>10} [{bar:30}] {pos}/{len} trials, {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut end = RunEnd::Completed;
    let points = scenario.points();
    let combinations = scenario
        .strategies
        .iter()
        .flat_map(|&s| points.iter().map(move |&p| (s, p)));
    for (strategy, point) in combinations {
        let sweeping = scenario.sweep.is_some();
        let (at, dir) = match sweeping {
            true => (
                scenario.at(point),
                format!("trials/{}/{}", strategy.name(), point.folder()),
            ),
            false => (scenario.clone(), format!("trials/{}", strategy.name())),
        };
        bar.set_message(match sweeping {
            true => format!("{strategy} {}", point.label()),
            false => strategy.to_string(),
        });
        let first = TrialSetup {
            exe,
            scenario: &at,
            out,
            rel: &dir,
            strategy,
            n: 0,
            seed: scenario.seed,
            interrupts,
            keep: options.keep_histories,
            bar: &bar,
            service: &*service,
        };
        let (trials, ended) = run_trials(&first);
        runs.push(Trials {
            strategy,
            point: sweeping.then_some(point),
            trials,
        });
        end = ended;
        if end != RunEnd::Completed {
            break;
        }
    }
    bar.finish_and_clear();
    Ok((runs, end))
}

/// Runs and checks the trials of one strategy at one point of the sweep, each in a folder of
/// its own under `first.rel`, with the seeds that follow `first.seed`. The trials checked,
/// and whether the run goes on: it stops at the first trial that is interrupted or fails.
fn run_trials(first: &TrialSetup) -> (Vec<TrialResult>, RunEnd) {
    let (keep, strategy, out) = (first.keep, first.strategy, first.out);
    let mut end = RunEnd::Completed;
    let mut ran = Vec::new();
    let mut checked = Vec::new();
    for n in 0..first.scenario.trials {
        let seed = first.seed.wrapping_add(n as u64);
        let rel = format!("{}/{n:03}", first.rel);
        let ran_trial = match run_trial(&TrialSetup {
            rel: &rel,
            n,
            seed,
            ..*first
        }) {
            // A trial whose set-up a Ctrl-C cut short (a service still not ready) was
            // interrupted, not failed.
            Err(_) if crate::sys::process::interrupted() => Ok(None),
            ran => ran,
        };
        match ran_trial {
            // Keeping only some histories, each is checked (and removed) before the next
            // trial starts: one history on disk at a time, whatever the number of trials.
            Ok(Some(trial)) if keep != KeepHistories::All => checked.push(judged(trial, keep)),
            Ok(Some(trial)) => ran.push(trial),
            // Nothing half-made stays: the unfinished trial's folder goes (its workers are
            // gone by now), the finished stay.
            Ok(None) => {
                let _ = std::fs::remove_dir_all(out.join(&rel));
                end = RunEnd::Interrupted;
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(out.join(&rel));
                end = RunEnd::Failed(format!("trial {n} of {strategy} failed: {e:#}"));
            }
        }
        if end != RunEnd::Completed {
            break;
        }
        first.bar.inc(1);
    }
    // Keeping every history, they are checked once the strategy's trials are over, so that
    // checking runs in parallel without taking a CPU from a trial being measured.
    checked.extend(
        ran.into_par_iter()
            .map(|r| judged(r, keep))
            .collect::<Vec<Result<TrialResult>>>(),
    );
    let mut trials = Vec::with_capacity(checked.len());
    for result in checked {
        match result {
            Ok(trial) => trials.push(trial),
            Err(e) if end == RunEnd::Completed => {
                end = RunEnd::Failed(format!("checking a trial of {strategy} failed: {e:#}"))
            }
            Err(_) => {}
        }
    }
    (trials, end)
}

/// A trial checked; a trial that cannot be judged is in no results, and its folder goes too.
fn judged(trial: trial::Ran, keep: KeepHistories) -> Result<TrialResult> {
    let folder = trial.folder();
    trial.check(keep).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&folder);
    })
}
