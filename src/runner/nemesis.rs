//! The nemesis of a store with replicas: what `[faults] failover` and `partition_ms` do to
//! the store's servers and links, at the sale a buyer was planned to say so; and the
//! user's own fault commands ([`Commands`]).
//!
//! A failover cuts every replica off from the primary, lets the sale go on for `lag_ms`,
//! SIGKILLs the primary, heals the replicas' links, and waits for a replica to be
//! promoted; a partition holds all traffic to and from the primary for `partition_ms`.
//! The runner's watch loop drives it: each step is quick, and the next one's moment joins
//! the loop's wake-ups. Each step is recorded as a [`FaultEvent`] for the report.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::commands::Commands;
use super::crew::{FaultEvent, Member};
use crate::plan::notice::{FaultKind, Notice};
use crate::scenario::Scenario;
use crate::store::Service;
use crate::sys::clock::now_ns;

/// How often a promotion is looked for.
const LOOK_EVERY: Duration = Duration::from_millis(20);
/// How long a promotion may take before the trial fails.
const PROMOTION_LIMIT: Duration = Duration::from_secs(30);

/// A step to take at its moment.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Kill the primary and heal the replicas' links, ending the cut recorded at `cut`.
    Kill { cut: usize },
    /// Look for a promoted replica, the primary having been killed at `killed`.
    Promote { killed: Instant, event: usize },
    /// Heal the partition recorded at `event`.
    Heal { event: usize },
}

/// The faults of one trial on the store's servers and links, and the user's own fault
/// commands.
pub struct Nemesis<'a> {
    service: &'a dyn Service,
    commands: Commands,
    lag: Duration,
    partition: Duration,
    gate_ns: u64,
    due: Vec<(Instant, Step)>,
    /// What it did, as it happened.
    pub events: Vec<FaultEvent>,
}

impl<'a> Nemesis<'a> {
    /// The nemesis of `scenario`'s faults on `service`, for a trial whose gate opened at
    /// `gate_ns`, whose fault commands log in `dir`.
    pub fn new(service: &'a dyn Service, scenario: &Scenario, gate_ns: u64, dir: &Path) -> Nemesis<'a> {
        Nemesis {
            service,
            commands: Commands::new(&scenario.faults.commands, dir, gate_ns),
            lag: Duration::from_millis(scenario.faults.lag_ms),
            partition: Duration::from_millis(scenario.faults.partition_ms),
            gate_ns,
            due: Vec::new(),
            events: Vec::new(),
        }
    }

    /// When the trial's gate opened, on `CLOCK_MONOTONIC`.
    pub fn gate_ns(&self) -> u64 {
        self.gate_ns
    }

    fn now(&self) -> u64 {
        now_ns().saturating_sub(self.gate_ns)
    }

    fn record(&mut self, kind: FaultKind, process: String) -> usize {
        self.events.push(FaultEvent {
            kind,
            process,
            at_ns: self.now(),
            until_ns: None,
        });
        self.events.len() - 1
    }

    /// Begins the failovers and partitions that buyers announced.
    pub fn hear(&mut self, notices: &[Notice], members: &[Member]) {
        let Some(target) = self.service.nemesis() else { return };
        for notice in notices {
            let Notice::Fault { kind, pid, .. } = *notice else {
                continue;
            };
            let buyer = members
                .iter()
                .find(|m| m.pid == pid)
                .map_or_else(|| format!("pid {pid}"), |m| format!("{} {}", m.role.name(), m.index));
            match kind {
                FaultKind::Failover => {
                    target.cut_replicas();
                    let cut = self.record(kind, format!("replicas cut off from the primary, at {buyer}'s sale"));
                    self.due.push((Instant::now() + self.lag, Step::Kill { cut }));
                }
                FaultKind::Partition => {
                    target.partition_primary();
                    let event = self.record(kind, format!("primary partitioned, at {buyer}'s sale"));
                    self.due.push((Instant::now() + self.partition, Step::Heal { event }));
                }
                _ => {}
            }
        }
    }

    /// The moment of the next step, if one is waiting.
    pub fn next(&self) -> Option<Instant> {
        self.due.iter().map(|d| d.0).chain(self.commands.next()).min()
    }

    /// Takes the steps that are due.
    pub fn act(&mut self) -> Result<()> {
        let now = Instant::now();
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.due).into_iter().partition(|d| d.0 <= now);
        self.due = later;
        for (_, step) in ready {
            self.take(step)?;
        }
        self.commands.act()
    }

    fn take(&mut self, step: Step) -> Result<()> {
        let Some(target) = self.service.nemesis() else {
            return Ok(());
        };
        match step {
            Step::Kill { cut } => {
                target.kill_primary()?;
                target.heal_replicas();
                let at = self.now();
                self.events[cut].until_ns = Some(at);
                self.record(FaultKind::KillPrimary, "primary killed (SIGKILL)".into());
                let event = self.record(FaultKind::Promotion, "waiting for a replica to be promoted".into());
                let killed = Instant::now();
                self.due.push((killed, Step::Promote { killed, event }));
            }
            Step::Promote { killed, event } => match target.promotion(killed.elapsed())? {
                Some(how) => {
                    self.events[event].until_ns = Some(self.now());
                    self.events[event].process = how;
                }
                None if killed.elapsed() > PROMOTION_LIMIT => {
                    anyhow::bail!(
                        "no replica was promoted within {} s of the primary's kill; see the logs in the output folder's server/",
                        PROMOTION_LIMIT.as_secs()
                    )
                }
                None => self
                    .due
                    .push((Instant::now() + LOOK_EVERY, Step::Promote { killed, event })),
            },
            Step::Heal { event } => {
                target.heal_primary();
                self.events[event].until_ns = Some(self.now());
            }
        }
        Ok(())
    }

    /// Takes every step left, now or when due, once the workers have ended: the store must
    /// have its primary back before its final stock is read.
    pub fn finish(&mut self) -> Result<()> {
        self.commands.finish()?;
        while let Some(next) = self.next() {
            let wait = next.saturating_duration_since(Instant::now());
            std::thread::sleep(wait.min(LOOK_EVERY));
            self.act()?;
        }
        self.events.append(&mut self.commands.events);
        Ok(())
    }
}
