//! What each worker of a trial is told: the trial's plan, the race window it holds, and the
//! start gate it waits at. It sits below the stores, strategies and workers, which all read
//! it, and above the scenario it is made from.

pub mod notice;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::history::{Recorder, Region, Role};
use crate::scenario::{Isolation, LockScope, PoolMode, Producers, StoreKind, StrategyName, WriteMode};
use crate::sys::fd;
use crate::sys::process::{self, Signal};
use notice::{FaultKind, Notice};

/// The plan's file in the trial's folder.
pub const FILE_NAME: &str = "plan.json";

/// Everything the workers of one trial need to know, written by the runner as `plan.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialPlan {
    /// The strategy that guards the sale.
    pub strategy: StrategyName,
    /// What a lock-style strategy's lock covers.
    pub scope: LockScope,
    /// Where the stock lives.
    pub store: StoreKind,
    /// How the `file` store writes its text.
    pub write: WriteMode,
    /// The stock written before the gate.
    pub initial_stock: i64,
    /// The stock file (every store keeps its final count there for the checker).
    pub stock_path: PathBuf,
    /// The trial's history file.
    pub history: PathBuf,
    /// Each worker's region of the history file.
    pub regions: Vec<Region>,
    /// Whether operations are stamped with the time-stamp counter (see `clock::ticks`).
    pub tsc: bool,
    /// The trial's seed: every random choice of every worker follows from it.
    pub seed: u64,
    /// The runner's pid: the spawner dies with it.
    pub runner_pid: u32,
    /// Buyer tasks (processes, without a pool).
    pub buyers: u32,
    /// Purchase attempts per buyer, without producers.
    pub attempts: u32,
    /// The race window between a buyer's read and its write.
    pub hold_us: u64,
    /// The permits of the `semaphore` strategy.
    pub permits: u32,
    /// The `lease` strategy's lease.
    pub lease_ms: u64,
    /// Whether a `lease` holder's writes carry its token, for the store to refuse old ones.
    pub fencing: bool,
    /// The trial's deadline: a server's own timeouts are set from it.
    #[serde(default)]
    pub deadline_ms: u64,
    /// At most this many retries of one purchase (`optimistic`, `transaction`).
    pub retries: u32,
    /// The isolation level of the `transaction` strategy.
    #[serde(default)]
    pub isolation: Isolation,
    /// How workers reach a store that is a server (see `store::Service`); empty for the
    /// others. A password in it is never written: workers take the url from the
    /// environment (`store::URL_VARIABLE`) when it has one.
    #[serde(default)]
    pub store_url: String,
    /// The url as given, password and all, in the runner only: it is never written.
    #[serde(skip)]
    pub store_secret_url: Option<String>,
    /// What sim keeps on a server for this run is named with it (a table, a key).
    #[serde(default)]
    pub store_name: String,
    /// Buyers that lose the store's primary find it again and go on, the purchase it was
    /// lost in indeterminate (a store with replicas, or behind sim's fault proxy).
    #[serde(default)]
    pub reconnect: bool,
    /// `[stock] wait_replicas`: replicas that confirm each sale before the buyer is told.
    #[serde(default)]
    pub wait_replicas: u32,
    /// The pid of the store's server, for `[faults] kill_store`; 0 if there is none.
    #[serde(default)]
    pub store_pid: u32,
    /// The producers and their entry queue, if any.
    pub producers: Option<Producers>,
    /// A name part unique to this trial on the machine: what a strategy or store makes for
    /// the trial (a semaphore, a socket) is named with it, see [`TrialPlan::name`].
    pub tag: String,
    /// With a pool, the buyers' tasks run on this many processes.
    pub pool: Option<u32>,
    /// How a pool runs its tasks.
    pub pool_mode: PoolMode,
    /// The trial's folder, where the pool's and the seller's shared files are.
    pub trial_dir: PathBuf,
    /// The faults planned for this trial: who is hit, at which of its sales.
    pub faults: Vec<PlannedFault>,
    /// A soak: buyers buy until this long after the gate, recording into segment files of
    /// their own (see `history::Segment`) rather than their region of the history.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// With store `service`: the variant the trial buys from, `{port}` and `{dir}` filled in
    /// (its headers' values are not written: workers find them in their environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<crate::scenario::ServiceVariant>,
    /// With store `service`: the run's service.log, where a command's standard error goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_log: Option<PathBuf>,
    /// An open loop: purchases per second over all buyers (`[buyers] rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// How an open loop spaces its purchases.
    #[serde(default)]
    pub arrivals: crate::scenario::Arrivals,
}

impl TrialPlan {
    /// `sim.<tag>.<what>`: the name of something made for this trial alone, such as an
    /// abstract socket.
    pub fn name(&self, what: &str) -> String {
        format!("sim.{}.{what}", self.tag)
    }

    /// The buyer processes: the pool's, or one per buyer.
    pub fn buyer_processes(&self) -> u32 {
        self.pool.unwrap_or(self.buyers)
    }

    /// How many operations a worker can record at most.
    pub fn capacity(&self, role: Role) -> usize {
        let entries = self.producers.as_ref().map(|p| p.count as usize * p.entries as usize);
        match role {
            // A pool process may end up running every buyer's task.
            // A soak's buyers record into segments; their region keeps only its header.
            Role::Buyer if self.duration_ms.is_some() => 0,
            Role::Buyer if self.pool.is_some() => entries.unwrap_or(self.buyers as usize * self.attempts as usize),
            // A service's purchase may be sent again `retries` times, and once more to see it
            // replayed: room for each.
            Role::Buyer if let Some(s) = self.service.as_ref().filter(|s| s.retries > 0) => {
                (s.retries as usize + 2) * self.attempts as usize
            }
            Role::Buyer => entries.unwrap_or(self.attempts as usize),
            Role::Producer => self.producers.as_ref().map_or(0, |p| p.entries as usize),
            Role::EntryQueue => entries.unwrap_or(0),
            Role::Seller => entries.unwrap_or(self.buyers as usize * self.attempts as usize),
            Role::Manager => 0,
        }
    }

    /// A seeded generator of its own for each worker, so that a seed reproduces every choice.
    pub fn rng(&self, role: Role, index: u32) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(
            self.seed ^ ((role as u64) << 56) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
    }

    /// Writes the plan into the trial's folder; returns its path.
    pub fn write(&self) -> Result<PathBuf> {
        let path = self.trial_dir.join(FILE_NAME);
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Reads the plan the runner wrote for a trial.
    pub fn read(path: &Path) -> Result<TrialPlan> {
        let mut plan: TrialPlan =
            serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
                .with_context(|| format!("parsing {}", path.display()))?;
        if plan.store == StoreKind::Service {
            // A variant's name may also be a built-in strategy's (`atomic`).
            plan.strategy = plan.strategy.in_service();
        }
        Ok(plan)
    }
}

/// A worker hit between its read and its write, at its `attempt`-th sale (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// What the worker is for.
    pub role: Role,
    /// Which of them.
    pub index: u32,
    /// At which of its sales.
    pub attempt: u32,
    /// What hits it.
    pub kind: FaultKind,
}

/// What a strategy or a store made for one trial before its gate opened (a semaphore, a
/// board, a server). Dropping it removes what was made, on every way out of the trial,
/// interrupts included.
pub trait Fixture {
    /// Asks the server processes it added to the trial to stop, once the buyers and
    /// producers are done.
    fn stop(&self) {}
}

/// The fixture of a strategy or store that makes nothing.
impl Fixture for () {}

/// The pause between reading and writing the stock: the race window. It is also where a
/// buyer chosen for a fault is killed, between its read and its write.
pub struct Hold {
    rng: ChaCha8Rng,
    hold_us: u64,
    attempt: u32,
    fault: Option<(u32, FaultKind)>,
    store_pid: u32,
}

impl Hold {
    /// The race window of worker `role` `index`, with the fault planned for it.
    pub fn new(plan: &TrialPlan, role: Role, index: u32) -> Hold {
        let fault = plan
            .faults
            .iter()
            .find(|f| f.role == role && f.index == index)
            .map(|f| (f.attempt, f.kind));
        Hold {
            rng: plan.rng(role, index),
            hold_us: plan.hold_us,
            attempt: 0,
            fault,
            store_pid: plan.store_pid,
        }
    }

    /// Waits `hold_us` with ±50% seeded jitter, without a fault: the window of a retry.
    pub fn wait(&mut self) {
        if self.hold_us > 0 {
            let us = self
                .rng
                .random_range(self.hold_us / 2..=self.hold_us + self.hold_us / 2);
            std::thread::sleep(Duration::from_micros(us));
        }
    }

    /// Waits `hold_us` with ±50% seeded jitter, so that buyers do not move in lockstep; a
    /// worker chosen for a fault suffers it here, between its read and its write. The
    /// worker raises the signal itself, so that it lands exactly there, after telling the
    /// runner (which resumes a stopped worker and records the fault for the report).
    pub fn pause(&mut self) {
        self.fault_point();
        self.wait();
    }

    /// Where a worker chosen for a fault suffers it: counts one sale either way.
    pub fn fault_point(&mut self) {
        if let Some((attempt, kind)) = self.fault
            && attempt == self.attempt
        {
            let notice = Notice::Fault {
                kind,
                pid: std::process::id(),
                at_ns: crate::sys::clock::now_ns(),
            };
            if notice::send(notice).is_ok() {
                match kind {
                    FaultKind::Kill => process::raise(Signal::KILL),
                    // Returns once the runner resumes this worker.
                    FaultKind::Stop => process::raise(Signal::STOP),
                    // The store's server, whose pid the runner planned (0: none, refused).
                    FaultKind::KillStore => {
                        let _ = process::kill(self.store_pid, Signal::KILL);
                    }
                    // The runner acts on these; the buyer goes on with its sale.
                    FaultKind::Failover | FaultKind::Partition => {}
                    FaultKind::KillPrimary | FaultKind::Promotion | FaultKind::Command => {}
                }
            }
        }
        self.attempt += 1;
    }
}

/// Tells the runner this worker is ready, then waits at the start gate until it opens.
pub fn ready_then_wait_for_gate(recorder: &mut Recorder) -> Result<()> {
    recorder.ready();
    notice::send(Notice::Ready).context("telling the runner it is ready")?;
    let mut byte = [0u8; 1];
    loop {
        // Standard input is the gate's pipe.
        match fd::read(fd::stdin(), &mut byte) {
            Ok(0) => return Ok(()), // the runner closed the gate's writer: go
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => bail!("waiting at the start gate: {e}"),
        }
    }
}
