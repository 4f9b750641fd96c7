//! The user's own fault commands (`[[faults.commands]]`), run once per trial: `run` at
//! `at_ms` after the start gate, `undo` `duration_ms` after `run` ended. Each runs in a
//! process group of its own, its output appended to the trial's `commands.log`, and is
//! killed, group and all, at `timeout_ms`. The runner's watch loop drives them without
//! waiting on one: a step starts a command or looks whether it has ended.
//!
//! A command that fails (a non-zero exit, a timeout) fails the trial: a fault that did not
//! happen would make a safe verdict a lie. An `undo` still owed when the trial ends early,
//! fails or is interrupted is run before the runner goes on, so that a paused container
//! does not stay paused; only SIGKILL of the runner can skip it.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::crew::FaultEvent;
use crate::plan::notice::FaultKind;
use crate::scenario::{CommandLine, FaultCommand};
use crate::sys::clock::now_ns;
use crate::sys::process::{self, Signal};

/// The trial's log of its commands' output, in its folder.
pub const LOG: &str = "commands.log";

/// How often a running command is looked at.
const LOOK_EVERY: Duration = Duration::from_millis(10);

/// Where one command stands.
enum State {
    /// `run` starts at this moment.
    Planned(Instant),
    /// `run` (or `undo`, with `undoing`) runs since `started`.
    Running {
        child: Child,
        started: Instant,
        undoing: bool,
    },
    /// `undo` starts at this moment.
    Broken(Instant),
    /// Nothing is left to do.
    Done,
}

/// One command and where it stands.
struct Entry {
    index: usize,
    command: FaultCommand,
    state: State,
    /// Its event among the runner's, once `run` started.
    event: Option<usize>,
}

/// The fault commands of one trial.
pub struct Commands {
    entries: Vec<Entry>,
    log: PathBuf,
    dir: PathBuf,
    gate_ns: u64,
    /// What they did, as it happened.
    pub events: Vec<FaultEvent>,
}

impl Commands {
    /// The commands of a trial whose gate opened at `gate_ns` (now), logged in `dir`.
    pub fn new(commands: &[FaultCommand], dir: &Path, gate_ns: u64) -> Commands {
        let gate = Instant::now();
        Commands {
            entries: commands
                .iter()
                .enumerate()
                .map(|(index, c)| Entry {
                    index,
                    command: c.clone(),
                    state: State::Planned(gate + Duration::from_millis(c.at_ms)),
                    event: None,
                })
                .collect(),
            log: dir.join(LOG),
            dir: dir.to_path_buf(),
            gate_ns,
            events: Vec::new(),
        }
    }

    /// The moment of the next step, if one is waiting.
    pub fn next(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|e| match &e.state {
                State::Planned(at) | State::Broken(at) => Some(*at),
                State::Running { .. } => Some(Instant::now() + LOOK_EVERY),
                State::Done => None,
            })
            .min()
    }

    /// Takes the steps that are due: starts what is due, notes what ended.
    pub fn act(&mut self) -> Result<()> {
        for i in 0..self.entries.len() {
            self.step(i, false)?;
        }
        Ok(())
    }

    /// Once the sale has ended: a command not yet started is not run; one running is waited
    /// for; an `undo` still owed runs now.
    pub fn finish(&mut self) -> Result<()> {
        for i in 0..self.entries.len() {
            if let State::Planned(_) = self.entries[i].state {
                let note = format!(
                    "== {}: not run, the trial ended before its at_ms ==\n",
                    self.entries[i].command.name
                );
                self.note(&note);
                self.entries[i].state = State::Done;
            }
            while !matches!(self.entries[i].state, State::Done) {
                self.step(i, true)?;
                if matches!(self.entries[i].state, State::Running { .. }) {
                    std::thread::sleep(LOOK_EVERY);
                }
            }
        }
        Ok(())
    }

    fn now(&self) -> u64 {
        now_ns().saturating_sub(self.gate_ns)
    }

    /// Appends a line to the log; a log that cannot be written loses only the line.
    fn note(&self, text: &str) {
        if let Ok(mut f) = File::options().create(true).append(true).open(&self.log) {
            let _ = f.write_all(text.as_bytes());
        }
    }

    /// One step of command `i`; `ending`: the trial is over, so an undo is due at once.
    fn step(&mut self, i: usize, ending: bool) -> Result<()> {
        let now = Instant::now();
        let state = std::mem::replace(&mut self.entries[i].state, State::Done);
        self.entries[i].state = match state {
            State::Planned(at) if at > now && !ending => State::Planned(at),
            State::Broken(at) if at > now && !ending => State::Broken(at),
            State::Planned(_) => {
                let at_ns = self.now();
                let child = self.start(i, false)?;
                self.events.push(FaultEvent {
                    kind: FaultKind::Command,
                    process: self.entries[i].command.name.clone(),
                    at_ns,
                    until_ns: None,
                });
                self.entries[i].event = Some(self.events.len() - 1);
                State::Running {
                    child,
                    started: now,
                    undoing: false,
                }
            }
            State::Broken(_) => State::Running {
                child: self.start(i, true)?,
                started: now,
                undoing: true,
            },
            State::Running {
                mut child,
                started,
                undoing,
            } => {
                let failed = match child.try_wait() {
                    Ok(Some(status)) if status.success() => None,
                    Ok(Some(status)) => Some(format!("ended with {status}")),
                    Ok(None) if started.elapsed() < Duration::from_millis(self.entries[i].command.timeout_ms) => {
                        self.entries[i].state = State::Running {
                            child,
                            started,
                            undoing,
                        };
                        return Ok(());
                    }
                    _ => {
                        stop(&mut child);
                        Some("did not end within its timeout_ms, and its process group was killed".into())
                    }
                };
                if let Some(how) = failed {
                    // A `run` that failed may have done part of its work: its undo is still
                    // owed, and runs as the trial is given up.
                    if !undoing && self.entries[i].command.undo.is_some() {
                        self.entries[i].state = State::Broken(now);
                    }
                    return Err(self.failure(i, undoing, &how));
                }
                self.ended(i, undoing)
            }
            State::Done => State::Done,
        };
        Ok(())
    }

    /// What follows the end of `run` or `undo`.
    fn ended(&mut self, i: usize, undoing: bool) -> State {
        let e = &self.entries[i];
        let after = Duration::from_millis(e.command.duration_ms);
        match (undoing, e.command.undo.is_some()) {
            (false, true) => State::Broken(Instant::now() + after),
            _ => {
                let until = self.now();
                if let Some(event) = e.event {
                    self.events[event].until_ns = Some(until);
                }
                State::Done
            }
        }
    }

    /// Starts `run` or `undo` of command `i`, in a process group of its own that dies with
    /// the runner, its output appended to the log.
    fn start(&mut self, i: usize, undoing: bool) -> Result<Child> {
        let e = &self.entries[i];
        let line: &CommandLine = match undoing {
            true => e.command.undo.as_ref().context("an undo to run")?,
            false => &e.command.run,
        };
        let (what, shown) = (if undoing { "undo" } else { "run" }, line.shown());
        self.note(&format!(
            "== {} {what} at {:.3} ms: {shown} ==\n",
            e.command.name,
            self.now() as f64 / 1e6
        ));
        let argv = line.argv();
        let out = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .env("SIM_TRIAL_DIR", &self.dir)
            .process_group(0);
        process::die_with_parent_after_exec(&mut command, Signal::KILL);
        command.spawn().map_err(|err| {
            anyhow::anyhow!(
                "[[faults.commands]] {} (faults.commands[{}].{what}, \"{}\") could not start: {err}; \
                 check that the program is installed and on the PATH",
                argv[0],
                e.index,
                e.command.name,
            )
        })
    }

    /// The one-paragraph error of a command that failed, with the end of its log.
    fn failure(&self, i: usize, undoing: bool, how: &str) -> anyhow::Error {
        let e = &self.entries[i];
        let what = if undoing { "undo" } else { "run" };
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        anyhow::anyhow!(
            "the fault command \"{}\" (faults.commands[{}].{what}) {how}; a fault that did not happen as \
             planned would make the verdict wrong, so the trial failed. Run it by hand to see why. The end \
             of its log:\n{}",
            e.command.name,
            e.index,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}

impl Drop for Commands {
    /// A trial that ended in an error or an interrupt: what runs is killed, and each undo
    /// still owed is run, each within its timeout.
    fn drop(&mut self) {
        for i in 0..self.entries.len() {
            let owed = match std::mem::replace(&mut self.entries[i].state, State::Done) {
                State::Running { mut child, undoing, .. } => {
                    stop(&mut child);
                    !undoing
                }
                State::Broken(_) => true,
                State::Planned(_) | State::Done => false,
            };
            if owed && self.entries[i].command.undo.is_some() {
                self.entries[i].state = State::Broken(Instant::now());
                let until = Instant::now() + Duration::from_millis(self.entries[i].command.timeout_ms) * 2;
                while !matches!(self.entries[i].state, State::Done) && Instant::now() < until {
                    if self.step(i, true).is_err() {
                        break;
                    }
                    std::thread::sleep(LOOK_EVERY);
                }
            }
            if let State::Running { mut child, .. } = std::mem::replace(&mut self.entries[i].state, State::Done) {
                stop(&mut child);
            }
        }
    }
}

/// Kills a command's whole process group, and reaps it.
fn stop(child: &mut Child) {
    process::kill_group(child.id(), Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}
