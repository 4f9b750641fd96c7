//! One trial: its folder, stock and plan, its workers from spawn to the start gate to the
//! end, and what the checker is then told.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use rand::rngs::ChaCha8Rng;
use rand::seq::index::sample;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::crew::{Crew, FaultEvent, Group, poll};
use super::nemesis::Nemesis;
use super::soak::{LOOK_EVERY, Soak};
use super::{Interrupts, KeepHistories};
use crate::checker::FinalStock;
use crate::checker::{self, Check, Facts};
use crate::history::speed::Speed;
use crate::history::{self, History, Role};
use crate::plan::notice::FaultKind;
use crate::plan::{Fixture, PlannedFault, TrialPlan};
use crate::scenario::{Scenario, StrategyName, mask_password};
use crate::store::Service;
use crate::sys::clock::{self, now_ns};
use crate::sys::ipc;
use crate::sys::skew;
use crate::worker::pool::Pool;
use crate::{store, strategy};

/// The worker groups of a trial. [STORE] and [SERVERS] hold the processes the sale depends
/// on; the interrupt's descriptor is polled after the groups'.
const BUYERS: usize = 0;
const PRODUCERS: usize = 1;
const SERVERS: usize = 2;
const STORE: usize = 3;
const INTERRUPT: usize = 4;

/// How long a server may take to stop when asked, before it is ended.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long workers may take to get to the start gate.
const SETUP_LIMIT: Duration = Duration::from_secs(30);

/// One trial, checked: the checker's findings with what the runner saw of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialResult {
    /// Its number among the strategy's trials, from 0.
    pub trial: u32,
    /// Its seed.
    pub seed: u64,
    /// The stock before the trial.
    pub initial_stock: i64,
    /// What the checker found.
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
    /// With `[faults] failover`: from the primary's kill to the end of the first sale made
    /// after it, on the new primary, in ms; none if no sale came after the kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_ms: Option<f64>,
    /// Whether its `history.bin` was kept (`--keep-histories`); the report draws only those.
    #[serde(default = "kept")]
    pub history_kept: bool,
}

fn kept() -> bool {
    true
}

/// A trial that ran to its end, waiting to be checked.
pub struct Ran {
    trial: u32,
    seed: u64,
    dir: String,
    history: PathBuf,
    gate_ns: u64,
    spawn_ms: f64,
    /// When the runner saw the trial end, on the workers' clock.
    ended_ns: u64,
    faults: Vec<FaultEvent>,
    facts: Facts,
    /// A soak's streaming check, every segment taken.
    soak: Option<Soak>,
}

impl Ran {
    /// The trial's folder.
    pub fn folder(&self) -> PathBuf {
        self.history.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// Reads the trial's history and checks it; removes the history file then unless `keep`
    /// keeps it.
    pub fn check(self, keep: KeepHistories) -> Result<TrialResult> {
        let history = History::read(&self.history, self.gate_ns)?;
        // The workers that were ended recorded nothing at the end: the runner saw it.
        let ended_ns = self
            .facts
            .deadline_hit
            .then(|| self.ended_ns.saturating_sub(self.gate_ns));
        let (check, speed) = match self.soak {
            Some(soak) => {
                if let Some(e) = soak.error {
                    return Err(e.context("checking the soak's segments"));
                }
                // A buyer that stopped before its time leaves a soak that says too little.
                if let Some(w) = history
                    .workers
                    .iter()
                    .find(|w| w.role == Role::Buyer && w.finish_ns.is_none())
                    && !self.facts.deadline_hit
                {
                    // Quoted, not pointed at: a trial that fails is removed with its log.
                    let log = std::fs::read_to_string(self.history.with_file_name("workers.log")).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(5).collect();
                    bail!(
                        "{} stopped before the soak's time was up; the end of the trial's workers.log:\n{}",
                        w.label(),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
                soak.stream.finish(&history, &self.facts)
            }
            None => (checker::check(&history, &self.facts), Speed::of(&history, ended_ns)),
        };
        let failover_ms = failover_ms(&history, &self.faults);
        drop(history);
        let history_kept = keep.keeps(check.verdict);
        if !history_kept {
            std::fs::remove_file(&self.history)
                .with_context(|| format!("removing {} (--keep-histories)", self.history.display()))?;
        }
        Ok(TrialResult {
            trial: self.trial,
            seed: self.seed,
            initial_stock: self.facts.initial_stock,
            check,
            speed,
            final_stock_text: match self.facts.final_stock {
                FinalStock::Unreadable(text) => Some(text),
                FinalStock::Value(_) => None,
            },
            ended_ns,
            spawn_ms: self.spawn_ms,
            dir: self.dir,
            gate_ns: self.gate_ns,
            faults: self.faults,
            failover_ms,
            history_kept,
        })
    }
}

/// From the primary's kill to the end of the first sale invoked after it (it can only have
/// been made on the new primary), in ms.
fn failover_ms(history: &History, faults: &[FaultEvent]) -> Option<f64> {
    let killed = faults.iter().find(|f| f.kind == FaultKind::KillPrimary)?.at_ns;
    history
        .ops
        .iter()
        .filter(|op| op.kind == history::Kind::Purchase && op.outcome == history::Outcome::Sold && op.start > killed)
        .filter_map(|op| op.end())
        .min()
        .map(|end| end.saturating_sub(killed) as f64 / 1e6)
}

/// A name part that no other trial, run or process on the machine shares.
fn unique_tag() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}.{}.{}",
        std::process::id(),
        now_ns() % 1_000_000_007,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes the trial's folder; returns it (absolute) and the stock file's path in it.
fn prepare(scenario: &Scenario, out: &Path, rel: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = out.join(rel);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let stock_path = dir.join(&scenario.stock.file);
    // The scenario's path was checked to stay inside; links are checked here, on disk.
    if let Some(parent) = stock_path.parent() {
        std::fs::create_dir_all(parent)?;
        if !parent.canonicalize()?.starts_with(&dir) {
            bail!(
                "stock.file {:?} resolves outside the trial folder {}: give a plain relative path",
                scenario.stock.file,
                dir.display()
            );
        }
    }
    if stock_path.is_symlink() || stock_path.is_dir() {
        bail!(
            "stock.file {:?} is a link or a folder in {}: give the path of a plain file",
            scenario.stock.file,
            dir.display()
        );
    }
    Ok((dir, stock_path))
}

/// Every worker of a trial, in the groups it is started in: the store's server first, then
/// the other servers, then the clients (clients send to servers as soon as the gate opens).
fn roster(scenario: &Scenario, strategy: StrategyName) -> Vec<(usize, Role, u32)> {
    let mut roster = Vec::new();
    let store = store::registry(scenario.stock.store);
    roster.extend(store.servers(scenario).iter().map(|&role| (STORE, role, 0)));
    roster.extend(
        strategy::registry(strategy)
            .servers()
            .iter()
            .map(|&role| (SERVERS, role, 0)),
    );
    if let Some(p) = &scenario.producers {
        roster.push((SERVERS, Role::EntryQueue, 0));
        roster.extend((0..p.count).map(|i| (PRODUCERS, Role::Producer, i)));
    }
    let b = &scenario.buyers;
    roster.extend((0..b.pool.unwrap_or(b.count)).map(|i| (BUYERS, Role::Buyer, i)));
    roster
}

/// Chooses, from the seed, who is hit by the scenario's faults and at which sale.
fn plan_faults(scenario: &Scenario, strategy: StrategyName, seed: u64) -> Vec<PlannedFault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x006e_656d_6573_6973); // "nemesis"
    let (b, f) = (&scenario.buyers, &scenario.faults);
    let processes = b.pool.unwrap_or(b.count);
    // With producers or a pool a buyer's number of sales is not known beforehand: its first.
    let fixed_attempts = scenario.producers.is_none() && b.pool.is_none();
    let hit = (f.kill_buyers + f.stop_buyers).min(processes);
    let mut faults: Vec<PlannedFault> = sample(&mut rng, processes as usize, hit as usize)
        .into_iter()
        .enumerate()
        .map(|(n, buyer)| PlannedFault {
            role: Role::Buyer,
            index: buyer as u32,
            attempt: if fixed_attempts {
                rng.random_range(0..b.attempts)
            } else {
                0
            },
            kind: if (n as u32) < f.kill_buyers {
                FaultKind::Kill
            } else {
                FaultKind::Stop
            },
        })
        .collect();
    // The store's faults (its kill, the failover, the partition), each at a buyer not hit by
    // another fault, within the first half of its sales, so that the sale goes on through the
    // fault and after it.
    for (on, kind) in [
        (f.kill_store, FaultKind::KillStore),
        (f.failover, FaultKind::Failover),
        (f.partition_ms > 0, FaultKind::Partition),
    ] {
        let hit: Vec<u32> = faults.iter().map(|f| f.index).collect();
        let free: Vec<u32> = (0..processes).filter(|i| !hit.contains(i)).collect();
        if on && !free.is_empty() {
            let index = free[rng.random_range(0..free.len())];
            let attempt = match fixed_attempts {
                true => rng.random_range(0..b.attempts.div_ceil(2).max(1)),
                false => 0,
            };
            faults.push(PlannedFault {
                role: Role::Buyer,
                index,
                attempt,
                kind,
            });
        }
    }
    if f.kill_seller && strategy::registry(strategy).servers().contains(&Role::Seller) {
        let sales = match &scenario.producers {
            Some(p) => p.count as u64 * p.entries as u64,
            None => b.count as u64 * b.attempts as u64,
        };
        let attempt = rng.random_range(0..(sales / 2).max(1)) as u32;
        faults.push(PlannedFault {
            role: Role::Seller,
            index: 0,
            attempt,
            kind: FaultKind::Kill,
        });
    }
    faults
}

/// The plan of a trial of `strategy` in the folder `dir`, but for its history's regions and
/// the store's service.
fn plan(scenario: &Scenario, strategy: StrategyName, dir: &Path, stock_path: PathBuf, seed: u64) -> TrialPlan {
    let b = &scenario.buyers;
    let tsc = clock::tsc_usable();
    clock::use_tsc(tsc);
    TrialPlan {
        strategy,
        scope: scenario.lock.scope,
        store: scenario.stock.store,
        write: scenario.stock.write,
        initial_stock: scenario.stock.initial,
        stock_path,
        history: dir.join(history::FILE_NAME),
        regions: Vec::new(),
        tsc,
        seed,
        runner_pid: std::process::id(),
        buyers: b.count,
        attempts: b.attempts,
        hold_us: b.hold_us,
        permits: scenario.semaphore.permits,
        lease_ms: scenario.lock.lease_ms,
        fencing: scenario.lock.fencing,
        deadline_ms: scenario.deadline_ms,
        retries: scenario.transaction.retries,
        isolation: scenario.transaction.isolation,
        store_url: String::new(),
        store_secret_url: None,
        store_name: String::new(),
        reconnect: scenario.stock.proxied(&scenario.faults)
            || scenario
                .stock
                .url
                .as_deref()
                .is_some_and(|u| u.starts_with("redis+sentinel://") || u.contains("target_session_attrs=read-write")),
        wait_replicas: scenario.stock.wait_replicas,
        store_pid: 0,
        producers: scenario.producers.clone(),
        tag: unique_tag(),
        pool: b.pool,
        pool_mode: b.pool_mode,
        trial_dir: dir.to_path_buf(),
        faults: plan_faults(scenario, strategy, seed),
        duration_ms: b.duration_ms,
        service: strategy.variant().and_then(|v| scenario.service.get(v.name()).cloned()),
        service_log: None,
        rate: b.rate,
        arrivals: b.arrivals,
    }
}

/// What one trial of `strategy` puts on disk: its history file's bytes, and its workers.
pub fn footprint(scenario: &Scenario, strategy: StrategyName) -> (u64, usize) {
    let plan = plan(scenario, strategy, Path::new(""), PathBuf::new(), scenario.seed);
    let roster = roster(scenario, strategy);
    let history = history::file_len(roster.iter().map(|&(_, role, _)| plan.capacity(role)));
    (history, roster.len())
}

/// One trial to run: which, in which folder, and what the run lends it.
pub struct TrialSetup<'a> {
    /// The `sim` binary, which the trial's spawner runs again.
    pub exe: &'a Path,
    /// The scenario, at the trial's point of a sweep.
    pub scenario: &'a Scenario,
    /// The run's output folder.
    pub out: &'a Path,
    /// The trial's folder, relative to `out`.
    pub rel: &'a str,
    /// The strategy it runs.
    pub strategy: StrategyName,
    /// Its number among the strategy's trials, from 0.
    pub n: u32,
    /// Its seed.
    pub seed: u64,
    /// Ctrl-C and SIGTERM, which end it.
    pub interrupts: &'a Interrupts,
    /// Which histories stay on disk once checked: a soak applies it segment by segment.
    pub keep: KeepHistories,
    /// The run's progress line, which a soak keeps up to date.
    pub bar: &'a ProgressBar,
    /// The store's server (or none) for the whole run.
    pub service: &'a dyn Service,
}

/// Runs one trial; `None` if it was interrupted.
pub fn run_trial(t: &TrialSetup) -> Result<Option<Ran>> {
    let (dir, stock_path) = prepare(t.scenario, t.out, t.rel)?;
    t.service.revive(false)?;
    let roster = roster(t.scenario, t.strategy);
    let plan = plan_with_files(t, &dir, stock_path, &roster)?;
    // What the store and the strategy make is removed when these are dropped, on every way
    // out of this function, and only after the crew below: no worker uses it any more.
    let store = store::registry(plan.store);
    let fixtures: [Box<dyn Fixture>; 2] = [
        store
            .prepare(&plan)
            .with_context(|| format!("setting up the {} store", plan.store))?,
        strategy::registry(t.strategy)
            .prepare(&plan)
            .with_context(|| format!("setting up the {} strategy", t.strategy))?,
    ];
    let plan_path = plan.write()?;

    let mut groups = [Group::new(0)?, Group::new(1)?, Group::new(2)?, Group::new(3)?];
    let Some((mut crew, gate_writer, spawn_ms)) = spawn_to_gate(t, &plan_path, &dir, &roster, &mut groups)? else {
        return Ok(None);
    };
    // Every worker waits at the gate, off the CPUs: the clocks are measured now.
    let clock_uncertainty_ns = clock_uncertainty(&plan.history)?;
    let gate_ns = now_ns();
    drop(gate_writer); // every worker's read of the gate returns: they all start now
    let mut soak = plan.duration_ms.map(|ms| {
        let label = format!("{} trial {}", t.strategy, t.n);
        Soak::new(&dir, plan.initial_stock, Duration::from_millis(ms), t.keep, label)
    });
    let mut nemesis = Nemesis::new(t.service, t.scenario, gate_ns, &dir);
    let watching = watch(t, &mut crew, &mut groups, &plan, &fixtures, soak.as_mut(), &mut nemesis);
    let Some(ending) = watching? else {
        return Ok(None);
    };
    let ended_ns = now_ns();
    crew.reap();
    history::seal_file(&plan.history).with_context(|| format!("sealing {}", plan.history.display()))?;
    if let Some(soak) = &mut soak {
        soak.look(gate_ns, true, t.bar);
    }
    let mut faults = std::mem::take(&mut crew.faults);
    drop(crew);
    drop(fixtures);
    // The store gets its primary back before its final stock is read.
    nemesis.finish()?;
    faults.append(&mut nemesis.events);
    faults.sort_by_key(|f| f.at_ns);

    let facts = Facts {
        clock_uncertainty_ns,
        ..facts(t, &dir, &plan, &faults, ending)?
    };
    Ok(Some(Ran {
        ended_ns,
        trial: t.n,
        seed: t.seed,
        dir: t.rel.to_string(),
        history: plan.history,
        gate_ns,
        spawn_ms,
        faults,
        facts,
        soak,
    }))
}

/// The trial's plan, with the store's service in it, and the files it names made: the
/// history file with a region for each of `roster`, a soak's segment folder, a pool's files.
fn plan_with_files(
    t: &TrialSetup,
    dir: &Path,
    stock_path: PathBuf,
    roster: &[(usize, Role, u32)],
) -> Result<TrialPlan> {
    let mut plan = plan(t.scenario, t.strategy, dir, stock_path, t.seed);
    let service = t.service;
    plan.store_url = mask_password(service.url());
    plan.store_secret_url = Some(service.url().to_string());
    plan.store_name = service.name().to_string();
    plan.store_pid = service.pid().unwrap_or(0);
    service.begin_trial(&mut plan)?;
    let workers: Vec<_> = roster
        .iter()
        .map(|&(_, role, i)| (role, i, plan.capacity(role)))
        .collect();
    plan.regions = history::create_file(&plan.history, &workers)
        .with_context(|| format!("creating {}", plan.history.display()))?;
    if plan.duration_ms.is_some() {
        Soak::make_folder(dir)?;
    }
    if t.scenario.buyers.pool.is_some() {
        Pool::create(dir).context("creating the pool's files")?;
    }
    Ok(plan)
}

/// Starts the trial's spawner and every worker of `roster`, and waits until all wait at the
/// start gate. The crew, the gate's writer (the gate opens when it is dropped) and how long
/// spawning took in ms; `None` if interrupted.
fn spawn_to_gate(
    t: &TrialSetup,
    plan_path: &Path,
    dir: &Path,
    roster: &[(usize, Role, u32)],
    groups: &mut [Group; 4],
) -> Result<Option<(Crew, io::PipeWriter, f64)>> {
    let (gate_reader, gate_writer) = io::pipe()?;
    let stop_for = Duration::from_millis(t.scenario.faults.stop_ms);
    // Spawning starts with the spawner's own start.
    let started = Instant::now();
    let mut crew = Crew::new(
        t.exe,
        plan_path,
        gate_reader,
        &dir.join("workers.log"),
        stop_for,
        groups,
        &t.service.environment(),
    )?;
    let setup_deadline = started + SETUP_LIMIT;
    // Each stage ready before the next starts: the store's server, the other servers, the
    // clients.
    for stage in [&[STORE][..], &[SERVERS], &[PRODUCERS, BUYERS]] {
        for &(g, role, i) in roster.iter().filter(|(g, ..)| stage.contains(g)) {
            crew.spawn(&mut groups[g], role, i)?;
        }
        for &g in stage {
            if !crew.await_ready(&mut groups[g], setup_deadline, t.interrupts)? {
                return Ok(None);
            }
        }
    }
    let spawn_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(Some((crew, gate_writer, spawn_ms)))
}

/// What the checker is told besides the history of a trial whose workers are gone: the final
/// stock and the store's record of sales. Fails if a worker reported an error that no fault
/// explains.
fn facts(t: &TrialSetup, dir: &Path, plan: &TrialPlan, faults: &[FaultEvent], ending: Ending) -> Result<Facts> {
    // Workers that lost a store's server killed by the scenario fail, as they should: the
    // trial is crashed, not sim broken.
    let store_killed = faults.iter().any(|f| f.kind == FaultKind::KillStore);
    if ending == Ending::Done && !store_killed {
        worker_errors(&dir.join("workers.log")).map_err(|e| match t.service.log_tail() {
            Some(tail) => e.context(tail),
            None => e,
        })?;
    }
    if store_killed {
        // What survived the kill is read from the server started again: the final stock
        // and the store's record of sales, to hold against what buyers were told.
        t.service.revive(true)?;
    }
    let final_stock = match t.service.final_stock(plan) {
        Some(told) => told,
        None => store::registry(plan.store).final_stock(plan), // also saves the store's record of sales
    };
    Ok(Facts {
        initial_stock: t.scenario.stock.initial,
        final_stock,
        deadline_hit: ending == Ending::Deadline,
        sales_record: store::read_sales(dir)?,
        clock_uncertainty_ns: 0, // measured before the gate, and filled in by the caller
        failover_ns: faults
            .iter()
            .find(|f| f.kind == FaultKind::KillPrimary)
            .map(|f| f.at_ns),
    })
}

/// The bound on how far apart two workers' stamps of one moment can be, measured now and
/// noted in the history file's header, in ns. Where the measurement fails (a pair of CPUs
/// passed no stamp within its time: the machine is too busy), [`UNMEASURED_NS`].
fn clock_uncertainty(history: &Path) -> Result<u64> {
    let noted = match skew::measure() {
        Ok(ticks) => history::note_clock_uncertainty(history, ticks),
        Err(_) => history::note_clock_uncertainty_ns(history, UNMEASURED_NS),
    };
    noted.with_context(|| format!("noting the clock uncertainty in {}", history.display()))
}

/// The clock uncertainty taken when it could not be measured: larger than any measured here
/// (about 100 ns), and small beside a race a scenario means to show.
const UNMEASURED_NS: u64 = 10_000;

/// How the workers of a trial came to their end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Each finished (or was killed by its planned fault), and the servers stopped.
    Done,
    /// A server died while clients still needed it; the clients were ended.
    ServerDied,
    /// The deadline came first; everyone was ended.
    Deadline,
}

/// Fails on an error that a worker reported in `workers.log` in a trial where nothing was
/// ended from outside: a worker that cannot do its job is sim's failure or the setup's, not
/// a finding about the strategy, and its purchases must not pass for indeterminate ones.
fn worker_errors(log: &Path) -> Result<()> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error:")).take(3).collect();
    if !errors.is_empty() {
        bail!(
            "a worker failed in the middle of the trial; the first errors in {}:\n{}",
            log.display(),
            errors.join("\n")
        );
    }
    Ok(())
}

/// Watches the workers from the open gate to the end: resumes the stopped, ends daemon
/// buyers with the producers, stops the servers once the clients are done, and ends
/// everyone at the deadline or when a server dies. How it ended, or `None` if
/// interrupted.
fn watch(
    t: &TrialSetup,
    crew: &mut Crew,
    groups: &mut [Group; 4],
    plan: &TrialPlan,
    fixtures: &[Box<dyn Fixture>],
    mut soak: Option<&mut Soak>,
    nemesis: &mut Nemesis,
) -> Result<Option<Ending>> {
    let (scenario, interrupts, gate_ns) = (t.scenario, t.interrupts, nemesis.gate_ns());
    // A soak's deadline counts from the end of its buying time.
    let soaking = Duration::from_millis(plan.duration_ms.unwrap_or(0));
    let deadline = Instant::now() + soaking + Duration::from_millis(scenario.deadline_ms);
    let mut stopping: Option<Instant> = None;
    let mut notices = Vec::new();
    let mut look_at = Instant::now() + LOOK_EVERY;
    loop {
        if let Some(soak) = &mut soak
            && Instant::now() >= look_at
        {
            soak.look(gate_ns, false, t.bar);
            look_at = Instant::now() + LOOK_EVERY;
        }
        let clients_done = !groups[BUYERS].open && !groups[PRODUCERS].open;
        if clients_done && !groups[SERVERS].open && !groups[STORE].open {
            return Ok(Some(Ending::Done));
        }
        if clients_done && stopping.is_none() {
            for fixture in fixtures {
                fixture.stop();
            }
            if plan.producers.is_some() {
                let _ = ipc::send_once(&crate::worker::entry_queue_socket(plan), ipc::STOP);
            }
            stopping = Some(Instant::now() + STOP_GRACE);
        }
        let now = Instant::now();
        if stopping.is_some_and(|t| now >= t) {
            crew.kill(None); // a server that does not stop when asked is ended
            return Ok(Some(Ending::Done));
        }
        if now >= deadline {
            crew.kill(None);
            return Ok(Some(Ending::Deadline));
        }
        let look = soak.is_some().then_some(look_at);
        let next = [Some(deadline), stopping, crew.next_resume(), look, nemesis.next()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(deadline);
        let mut fds: Vec<Option<BorrowedFd<'_>>> = groups.iter().map(Group::fd).collect();
        fds.push(interrupts.fd());
        let readable = poll(&fds, next.saturating_duration_since(now));
        if readable[INTERRUPT] && interrupts.pending() {
            crew.kill(None);
            crew.reap();
            return Ok(None);
        }
        notices.clear();
        for (g, group) in groups.iter_mut().enumerate() {
            if readable[g] {
                group.drain(&mut notices);
            }
        }
        crew.hear(&notices, gate_ns);
        nemesis.hear(&notices, &crew.members);
        nemesis.act()?;
        crew.resume_due(gate_ns);
        if readable[PRODUCERS] && !groups[PRODUCERS].open && scenario.buyers.daemon {
            crew.kill(Some(Role::Buyer)); // daemon buyers end with the producers
        }
        let clients_done = !groups[BUYERS].open && !groups[PRODUCERS].open;
        let server_died = [SERVERS, STORE].into_iter().any(|g| readable[g] && !groups[g].open);
        if server_died && !clients_done {
            // A process the sale depends on died: nobody will answer the clients, and a
            // client may fail before it is ended.
            crew.kill(None);
            return Ok(Some(Ending::ServerDied));
        }
    }
}
