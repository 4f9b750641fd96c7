//! The output folder of an earlier run, read again: its trials' histories judged afresh by
//! today's checker (`sim check DIR`), or written out as operations for other tools
//! (`sim export DIR`). A checker fix then reaches old runs, and a history that was edited
//! is judged as it now is.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use crate::history::export::{self, Format};
use crate::history::{self, History};
use crate::results::{self, Results, Summary, TrialResult};
use crate::scenario::StrategyName;

/// Judges every trial of the run in `dir` again and rewrites its results.json (the report is
/// the caller's next step). The expectations are checked again too. Each trial is judged
/// with the clock uncertainty its history holds; those of an earlier sim, which measured
/// none, with 0, and a note says which.
pub fn check_folder(dir: &Path) -> Result<(Results, Vec<String>)> {
    if !dir.is_dir() {
        bail!(
            "{} is not a folder: give the output folder of an earlier `sim run`",
            dir.display()
        );
    }
    let mut results = Results::read(dir)?;
    let mut trials: Vec<(StrategyName, &mut TrialResult)> = results
        .runs
        .iter_mut()
        .flat_map(|run| {
            let strategy = run.strategy;
            run.trials.iter_mut().map(move |t| (strategy, t))
        })
        .collect();
    let notes: Vec<Option<String>> = trials
        .par_iter_mut()
        .map(|(strategy, trial)| -> Result<Option<String>> {
            let history = trial.read_history(dir, *strategy)?;
            let sales = crate::store::read_sales(&crate::results::trial_dir(dir, &trial.dir)?)?;
            let bound = trial.saved_clock_uncertainty(dir)?;
            trial.judge_again(&history, sales, bound.unwrap_or(0));
            Ok(bound
                .is_none()
                .then(|| format!("trial {} of {}", trial.trial, strategy)))
        })
        .collect::<Result<_>>()?;
    let unmeasured: Vec<String> = notes.into_iter().flatten().collect();
    let mut said = Vec::new();
    if !unmeasured.is_empty() {
        said.push(format!(
            "note: {} of {} trials hold no clock uncertainty (their histories are from an earlier sim, which measured none): \
             judged with 0 ns, so two sales are ordered by their stamps alone ({})",
            unmeasured.len(),
            trials.len(),
            unmeasured.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                + if unmeasured.len() > 3 { ", …" } else { "" }
        ));
    }
    said.push(uncertainty_range(
        trials.iter().map(|(_, t)| t.check.clock_uncertainty_ns),
    ));
    for run in &mut results.runs {
        run.summary = Summary::of(&run.trials);
    }
    results.violations = crate::results::expect::violations(&results);
    results.write(dir)?;
    Ok((results, said))
}

/// The clock uncertainties the trials were judged with, as `sim check` says them.
fn uncertainty_range(bounds: impl Iterator<Item = u64>) -> String {
    let (low, high) = bounds.fold((u64::MAX, 0), |(l, h), b| (l.min(b), h.max(b)));
    let range = match (low, high) {
        (u64::MAX, _) => return "no trial to judge".into(),
        (l, h) if l == h => format!("{l} ns"),
        (l, h) => format!("{l}–{h} ns"),
    };
    format!(
        "clock uncertainty: {range} (two sales are ordered in time only when one ended more than this before the other began)"
    )
}

/// Where `sim export` writes.
pub enum Destination {
    /// One trial's operations to standard output.
    Stdout,
    /// One trial's operations to this file; for a run, the folder that receives a file per
    /// trial.
    Path(PathBuf),
}

/// Writes the histories in `dir` as operations: a trial's folder (it holds history.bin) to
/// `to`, a run's folder (it holds results.json) as one file per trial. Returns the files
/// written.
pub fn export(dir: &Path, format: Format, to: Destination) -> Result<Vec<PathBuf>> {
    if dir.join(results::FILE_NAME).is_file() {
        return export_run(dir, format, to);
    }
    let path = dir.join(history::FILE_NAME);
    if !path.is_file() {
        bail!(
            "{} holds neither results.json nor {}: give the output folder of a `sim run`, or one trial's folder in it (trials/STRATEGY/NNN)",
            dir.display(),
            history::FILE_NAME
        );
    }
    let gate_ns = gate_of(dir).unwrap_or(0);
    let history = History::read(&path, gate_ns)?;
    match to {
        Destination::Stdout => {
            let stdout = io::stdout();
            write_quietly(&history, format, &mut stdout.lock())?;
            Ok(Vec::new())
        }
        Destination::Path(file) => {
            write_file(&history, format, &file)?;
            Ok(vec![file])
        }
    }
}

fn export_run(dir: &Path, format: Format, to: Destination) -> Result<Vec<PathBuf>> {
    let results = Results::read(dir)?;
    let base = match to {
        Destination::Stdout => dir.to_path_buf(),
        Destination::Path(p) => p,
    };
    let name = format!("history.{}", format.extension());
    let jobs: Vec<(StrategyName, &TrialResult)> = results
        .runs
        .iter()
        .flat_map(|run| run.trials.iter().map(move |t| (run.strategy, t)))
        .collect();
    jobs.par_iter()
        .map(|&(strategy, trial)| {
            let history = trial.read_history(dir, strategy)?;
            let folder = results::trial_dir(&base, &trial.dir)?;
            std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
            let file = folder.join(&name);
            write_file(&history, format, &file)?;
            Ok(file)
        })
        .collect()
}

fn write_file(history: &History, format: Format, file: &Path) -> Result<()> {
    // Made anew: a link planted where the file goes is removed, never written through.
    let made = crate::sys::file::create(file).with_context(|| format!("creating {}", file.display()))?;
    let mut out = BufWriter::new(made);
    export::write(history, format, &mut out).with_context(|| format!("writing {}", file.display()))
}

/// Writes to a pipe, where a reader that stops early (`| head`) is no error.
fn write_quietly(history: &History, format: Format, out: &mut impl Write) -> Result<()> {
    match export::write(history, format, out) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the operations"),
    }
}

/// The moment the start gate of the trial in `dir` opened, from the results.json of the run
/// around it; `None` if there is none (times are then on `CLOCK_MONOTONIC`).
fn gate_of(dir: &Path) -> Option<u64> {
    let dir = dir.canonicalize().ok()?;
    for out in dir.ancestors().skip(1).take(4) {
        if out.join(results::FILE_NAME).is_file() {
            let results = Results::read(out).ok()?;
            return results
                .runs
                .iter()
                .flat_map(|r| &r.trials)
                .find(|t| results::trial_dir(out, &t.dir).is_ok_and(|d| d == dir))
                .map(|t| t.gate_ns);
        }
    }
    None
}
