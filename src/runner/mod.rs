//! The runner: makes each trial's folder and plan, has the store and the strategy set up
//! what they need, spawns the workers, opens the start gate, watches them against the
//! deadline, and hands their histories to the checker. It removes what it and they created
//! (a semaphore, a board, workers) also when a trial fails or the run is interrupted. It
//! knows stores and strategies only through their traits.

mod crew;
mod trial;

pub use crew::FaultEvent;
pub use trial::TrialResult;

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::scenario::{Point, Scenario, StrategyName};
use crate::store::Service;
use crate::{store, strategy};
use trial::{Ran, run_trial};

/// Written into every output folder sim makes, so that it never overwrites anything else.
pub const MARKER: &str = ".sim-run";

/// What a run leaves in its output folder besides the marker, removed before the next run
/// into it: the trials, the results and report made from them, and a store's server folder.
const EARLIER_RUN: [&str; 4] = ["trials", "index.html", "results.json", "server"];

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
pub enum RunEnd {
    /// Every trial ran.
    Completed,
    /// Ctrl-C or SIGTERM: the results hold the trials that finished.
    Interrupted,
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
        Ok(Interrupts { wake })
    }

    fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.wake.as_raw_fd()
    }

    /// Whether a signal came (and forgets it).
    fn pending(&self) -> bool {
        let mut buf = [0u8; 16];
        matches!((&self.wake).read(&mut buf), Ok(n) if n > 0)
    }
}

/// Runs every trial of every strategy of the scenario, writing into `out`.
pub fn run(scenario: &Scenario, out: &Path, interrupts: &Interrupts) -> Result<(Vec<Trials>, RunEnd)> {
    let exe = std::env::current_exe().context("finding the sim binary to start workers")?;
    run_with(&exe, scenario, out, interrupts)
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
    prepare_out(out)?;
    let service = store::registry(scenario.stock.store).start(scenario, out)?;
    run_one_on(exe, scenario, strategy, out, interrupts, &*service)
}

/// [`run_one`] on a store's service that the caller started (`Store::start`), so that
/// benchmarks of a server store start its server once.
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
    match run_trial(
        exe,
        scenario,
        out,
        &dir,
        strategy,
        0,
        scenario.seed,
        interrupts,
        service,
    )? {
        Some(ran) => ran.check(),
        None => bail!("interrupted"),
    }
}

fn run_with(exe: &Path, scenario: &Scenario, out: &Path, interrupts: &Interrupts) -> Result<(Vec<Trials>, RunEnd)> {
    prepare_out(out)?;
    for &name in &scenario.strategies {
        let removed = strategy::registry(name).sweep_stale();
        if removed > 0 {
            eprintln!("note: removed {removed} thing(s) of the {name} strategy left by sim runs that were killed");
        }
    }
    // The store's server for the whole run, stopped when this returns, however it returns.
    let service = store::registry(scenario.stock.store).start(scenario, out)?;
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
                format!("trials/{}/b{}-h{}", strategy.name(), point.buyers, point.hold_us),
            ),
            false => (scenario.clone(), format!("trials/{}", strategy.name())),
        };
        bar.set_message(match sweeping {
            true => format!("{strategy} {} buyers {} µs", point.buyers, point.hold_us),
            false => strategy.to_string(),
        });
        let mut ran = Vec::new();
        for n in 0..scenario.trials {
            let seed = scenario.seed.wrapping_add(n as u64);
            match run_trial(
                exe,
                &at,
                out,
                &format!("{dir}/{n:03}"),
                strategy,
                n,
                seed,
                interrupts,
                &*service,
            )? {
                Some(trial) => ran.push(trial),
                None => end = RunEnd::Interrupted,
            }
            if matches!(end, RunEnd::Interrupted) {
                break;
            }
            bar.inc(1);
        }
        // Checked once the strategy's trials are over, so that checking runs in parallel
        // without taking a CPU from a trial being measured.
        let trials = ran.into_par_iter().map(Ran::check).collect::<Result<Vec<_>>>()?;
        runs.push(Trials {
            strategy,
            point: sweeping.then_some(point),
            trials,
        });
        if matches!(end, RunEnd::Interrupted) {
            break;
        }
    }
    bar.finish_and_clear();
    Ok((runs, end))
}

/// Makes `out` ready for a run: a new folder, or one sim made before (its old trials go).
fn prepare_out(out: &Path) -> Result<()> {
    if out.exists() {
        if !out.is_dir() {
            bail!(
                "--out {} is a file, not a folder: give a folder for the report",
                out.display()
            );
        }
        let marker = out.join(MARKER);
        let empty = std::fs::read_dir(out)?.next().is_none();
        if !marker.exists() && !empty {
            bail!(
                "{} holds files that sim did not write; refusing to overwrite them: give another --out, or empty that folder",
                out.display()
            );
        }
        for old in EARLIER_RUN {
            let path = out.join(old);
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing the earlier run's {}", path.display()))?;
            } else if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing the earlier run's {}", path.display()))?;
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating the output folder {}", out.display()))?;
    std::fs::write(
        out.join(MARKER),
        "written by sim: `sim run` may replace what is in this folder\n",
    )?;
    Ok(())
}
