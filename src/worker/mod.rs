//! Worker processes: one process per buyer, producer, seller, entry queue or manager, each
//! forked by the trial's spawner (the `sim` binary re-executed once per trial in a hidden
//! mode, see [`spawner`]).
//!
//! Each worker has three descriptors: standard input is the start gate (a pipe whose writer
//! the runner closes to let everyone go at once), standard output is a pipe on which the
//! worker says it is ready and whose end-of-file tells the runner that every worker of its
//! group has exited, and standard error is the trial's `workers.log`.

mod buyer;
mod entry_queue;
mod manager;
pub mod pool;
mod producer;
mod seller;
pub mod spawner;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::history::{Recorder, Region, Role};
use crate::notice::{self, FaultKind, Notice};
use crate::scenario::{LockScope, PoolMode, Producers, StoreKind, WriteMode};
use crate::strategy::StrategyName;

/// Everything the workers of one trial need to know, written by the runner as `plan.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialPlan {
    pub strategy: StrategyName,
    pub scope: LockScope,
    pub store: StoreKind,
    pub write: WriteMode,
    pub stock_path: PathBuf,
    /// The trial's history file, and each worker's region of it.
    pub history: PathBuf,
    pub regions: Vec<Region>,
    /// Whether operations are stamped with the time-stamp counter (see `clock::ticks`).
    pub tsc: bool,
    pub seed: u64,
    pub runner_pid: u32,
    pub buyers: u32,
    pub attempts: u32,
    pub hold_us: u64,
    pub producers: Option<Producers>,
    pub semaphore: Option<String>,
    /// Abstract Unix socket names, unique to the trial (the seller's board is a file in
    /// `trial_dir`).
    pub queue_socket: String,
    pub manager_socket: String,
    pub socket_prefix: String,
    /// With a pool, the buyers' tasks run on this many processes.
    pub pool: Option<u32>,
    pub pool_mode: PoolMode,
    /// The trial's folder, where the pool's and the seller's shared files are.
    pub trial_dir: PathBuf,
    /// The faults planned for this trial: who is hit, at which of its sales.
    pub faults: Vec<PlannedFault>,
}

impl TrialPlan {
    pub fn semaphore_name(&self) -> io::Result<&str> {
        self.semaphore
            .as_deref()
            .ok_or_else(|| io::Error::other("the plan names no semaphore"))
    }

    /// How many operations a worker can record at most.
    pub fn capacity(&self, role: Role) -> usize {
        let entries = self.producers.as_ref().map(|p| p.count as usize * p.entries as usize);
        match role {
            // A pool process may end up running every buyer's task.
            Role::Buyer if self.pool.is_some() => entries.unwrap_or(self.buyers as usize * self.attempts as usize),
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
}

/// A worker hit between its read and its write, at its `attempt`-th sale (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFault {
    pub role: Role,
    pub index: u32,
    pub attempt: u32,
    pub kind: FaultKind,
}

/// The pause between reading and writing the stock: the race window. It is also where a
/// buyer chosen for a fault is killed, between its read and its write.
pub struct Hold {
    rng: ChaCha8Rng,
    hold_us: u64,
    attempt: u32,
    fault: Option<(u32, FaultKind)>,
}

impl Hold {
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
        }
    }

    /// Waits `hold_us` with ±50% seeded jitter, so that buyers do not move in lockstep; a
    /// worker chosen for a fault suffers it here, between its read and its write. The
    /// worker raises the signal itself, so that it lands exactly there, after telling the
    /// runner (which resumes a stopped worker and records the fault for the report).
    pub fn pause(&mut self) {
        self.fault_point();
        if self.hold_us > 0 {
            let us = self
                .rng
                .random_range(self.hold_us / 2..=self.hold_us + self.hold_us / 2);
            std::thread::sleep(Duration::from_micros(us));
        }
    }

    /// Where a worker chosen for a fault suffers it: counts one sale either way.
    pub fn fault_point(&mut self) {
        if let Some((attempt, kind)) = self.fault
            && attempt == self.attempt
        {
            let notice = Notice::Fault {
                kind,
                pid: std::process::id(),
                at_ns: crate::clock::now_ns(),
            };
            if notice::send(notice).is_ok() {
                let signal = match kind {
                    FaultKind::Kill => libc::SIGKILL,
                    FaultKind::Stop => libc::SIGSTOP,
                };
                // SAFETY: raising a signal on oneself; SIGSTOP returns once the runner resumes us.
                unsafe { libc::raise(signal) };
            }
        }
        self.attempt += 1;
    }
}

/// Reads the plan the runner wrote for a trial.
pub fn read_plan(path: &Path) -> Result<TrialPlan> {
    serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        .with_context(|| format!("parsing {}", path.display()))
}

/// One worker's life, in the process the spawner forked for it.
pub fn run(plan: &TrialPlan, role: Role, index: u32) -> Result<()> {
    crate::clock::use_tsc(plan.tsc);
    let Some(region) = plan.regions.iter().find(|r| r.role == role && r.index == index) else {
        bail!("the plan has no history region for {} {index}", role.name())
    };
    let mut recorder =
        Recorder::open(&plan.history, region).with_context(|| format!("opening {}", plan.history.display()))?;
    let result = match role {
        Role::Buyer => buyer::run(plan, index, &mut recorder),
        Role::Producer => producer::run(plan, index, &mut recorder),
        Role::Seller => seller::run(plan, &mut recorder),
        Role::EntryQueue => entry_queue::run(plan, &mut recorder),
        Role::Manager => manager::run(plan, &mut recorder),
    };
    result.with_context(|| format!("{} {index}", role.name()))?;
    recorder.finish();
    Ok(())
}

/// Ends this process when its parent dies, however it dies: the spawner with the runner,
/// each worker with the spawner, so that no worker outlives the runner.
fn die_with_parent(parent_pid: u32) {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number; getppid cannot fail.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // Holds of a few microseconds would otherwise last the default 50 µs of slack.
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
        if libc::getppid() as u32 != parent_pid {
            libc::_exit(3); // the parent died before the line above
        }
    }
}

/// Tells the runner this worker is ready, then waits at the start gate until it opens.
pub fn ready_then_wait_for_gate(recorder: &mut Recorder) -> Result<()> {
    recorder.ready();
    notice::send(Notice::Ready).context("telling the runner it is ready")?;
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: reading into a valid one-byte buffer from fd 0, the gate pipe.
        match unsafe { libc::read(0, byte.as_mut_ptr().cast(), 1) } {
            0 => return Ok(()), // the runner closed the gate's writer: go
            n if n > 0 => continue,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    bail!("waiting at the start gate: {e}");
                }
            }
        }
    }
}
