//! The runner: makes each trial's folder and stock, spawns the workers, opens the start gate,
//! watches them against the deadline, and hands their histories to the checker. It removes
//! what it created (semaphores, workers) also when a trial fails or the run is interrupted.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, PipeReader, PipeWriter, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::ChaCha8Rng;
use rand::seq::index::sample;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use crate::checker::{self, Facts, FinalStock};
use crate::clock::now_ns;
use crate::history::{History, Role};
use crate::ipc;
use crate::results::{Machine, Results, StrategyRun, Summary, TrialResult};
use crate::scenario::{Scenario, StoreKind};
use crate::store::{self, FileStock, Reading};
use crate::strategy::StrategyName;
use crate::strategy::semaphore::{self, OwnedSemaphore};
use crate::worker::TrialPlan;
use crate::worker::pool::Pool;

/// The worker groups of a trial, and the interrupt's place among the descriptors polled.
const BUYERS: usize = 0;
const PRODUCERS: usize = 1;
const SERVERS: usize = 2;
const STORE: usize = 3;
const INTERRUPT: usize = 4;

/// Written into every output folder sim makes, so that it never overwrites anything else.
pub const MARKER: &str = ".sim-run";

/// How a run ended.
pub enum RunEnd {
    Completed,
    /// Ctrl-C or SIGTERM: the results hold the trials that finished.
    Interrupted,
}

/// Receives SIGINT and SIGTERM as bytes on a socket that the runner can wait on.
pub struct Interrupts {
    wake: UnixStream,
}

impl Interrupts {
    pub fn install() -> Result<Interrupts> {
        let (wake, signal_end) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::low_level::pipe::register(signal, signal_end.try_clone()?)?;
        }
        Ok(Interrupts { wake })
    }

    fn pending(&self) -> bool {
        let mut buf = [0u8; 16];
        matches!((&self.wake).read(&mut buf), Ok(n) if n > 0)
    }
}

/// Runs every trial of every strategy of the scenario, writing into `out`.
pub fn run(scenario: &Scenario, out: &Path, interrupts: &Interrupts) -> Result<(Results, RunEnd)> {
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
    match run_trial(exe, scenario, out, strategy, 0, scenario.seed, interrupts)? {
        Some(ran) => ran.check(),
        None => bail!("interrupted"),
    }
}

fn run_with(exe: &Path, scenario: &Scenario, out: &Path, interrupts: &Interrupts) -> Result<(Results, RunEnd)> {
    prepare_out(out)?;
    let removed = semaphore::sweep_stale();
    if removed > 0 {
        eprintln!("note: removed {removed} semaphore(s) left by sim runs that were killed");
    }
    let mut results = Results {
        scenario: scenario.clone(),
        runs: Vec::new(),
        sim_version: env!("CARGO_PKG_VERSION").to_string(),
        created: crate::results::utc_now(),
        machine: Machine::this(),
        interrupted: false,
        violations: Vec::new(),
    };
    let total = scenario.strategies.len() as u64 * scenario.trials as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} {msg:>10} [{bar:30}] {pos}/{len} trials, {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut end = RunEnd::Completed;
    for &strategy in &scenario.strategies {
        bar.set_message(strategy.name());
        let mut ran = Vec::new();
        for n in 0..scenario.trials {
            let seed = scenario.seed.wrapping_add(n as u64);
            match run_trial(exe, scenario, out, strategy, n, seed, interrupts)? {
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
        results.runs.push(StrategyRun {
            strategy,
            summary: Summary::of(&trials),
            trials,
        });
        if matches!(end, RunEnd::Interrupted) {
            break;
        }
    }
    bar.finish_and_clear();
    results.interrupted = matches!(end, RunEnd::Interrupted);
    Ok((results, end))
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
        for old in ["trials", "index.html", crate::results::FILE_NAME] {
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

/// A name part that no other trial, run or process on the machine shares.
fn unique_tag() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}.{}.{}",
        std::process::id(),
        now_ns() % 1_000_000_007,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The workers of a trial, grouped: each group shares a pipe whose end-of-file says that
/// every member has exited.
struct Crew {
    members: Vec<(Role, u32, Child)>,
}

impl Crew {
    fn kill(&mut self, role: Option<Role>) {
        for (r, _, child) in &mut self.members {
            if role.is_none_or(|want| want == *r) {
                let _ = child.kill();
            }
        }
    }

    fn reap(&mut self) {
        for (_, _, child) in &mut self.members {
            let _ = child.wait();
        }
    }
}

impl Drop for Crew {
    /// Whatever path a trial leaves by, no worker outlives it.
    fn drop(&mut self) {
        self.kill(None);
        self.reap();
    }
}

struct Group {
    reader: PipeReader,
    writer: Option<PipeWriter>,
    open: bool,
    size: usize,
}

impl Group {
    fn new() -> io::Result<Group> {
        let (reader, writer) = io::pipe()?;
        Ok(Group {
            reader,
            writer: Some(writer),
            open: true,
            size: 0,
        })
    }

    /// Reads what is waiting; false at end-of-file.
    fn drain(&mut self) -> usize {
        let mut buf = [0u8; 512];
        match self.reader.read(&mut buf) {
            Ok(0) => {
                self.open = false;
                0
            }
            Ok(n) => buf[..n].iter().filter(|&&b| b == b'R').count(),
            Err(_) => 0,
        }
    }
}

/// Waits until one of `fds` is readable or `timeout` passes; returns which are readable.
fn poll(fds: &[i32], timeout: Option<Duration>) -> Vec<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32 + 1);
    // SAFETY: a valid array of pollfds for the duration of the call.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return vec![false; fds.len()];
    }
    pfds.iter().map(|p| p.revents != 0).collect()
}

/// A trial that ran to its end, waiting to be checked.
struct Ran {
    trial: u32,
    seed: u64,
    dir: String,
    history_dir: PathBuf,
    gate_ns: u64,
    spawn_ms: f64,
    facts: Facts,
}

impl Ran {
    fn check(self) -> Result<TrialResult> {
        let history = History::read_dir(&self.history_dir, self.gate_ns)?;
        let check = checker::check(&history, &self.facts);
        Ok(TrialResult {
            trial: self.trial,
            seed: self.seed,
            initial_stock: self.facts.initial_stock,
            check,
            spawn_ms: self.spawn_ms,
            dir: self.dir,
            gate_ns: self.gate_ns,
        })
    }
}

/// Runs one trial; `None` if it was interrupted.
fn run_trial(
    exe: &Path,
    scenario: &Scenario,
    out: &Path,
    strategy: StrategyName,
    n: u32,
    seed: u64,
    interrupts: &Interrupts,
) -> Result<Option<Ran>> {
    let rel = format!("trials/{}/{n:03}", strategy.name());
    let dir = out.join(&rel);
    let history_dir = dir.join("history");
    std::fs::create_dir_all(&history_dir).with_context(|| format!("creating {}", history_dir.display()))?;
    let dir = dir.canonicalize()?;
    let stock_path = dir.join(&scenario.stock.file);
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
    FileStock::create(&stock_path, scenario.stock.initial)
        .with_context(|| format!("writing the stock file {}", stock_path.display()))?;

    let tag = unique_tag();
    let sem = match strategy {
        StrategyName::Semaphore => {
            Some(OwnedSemaphore::create(&tag, scenario.semaphore.permits).context("creating the named semaphore")?)
        }
        _ => None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let b = &scenario.buyers;
    let kill_at: BTreeMap<u32, u32> = sample(
        &mut rng,
        b.pool.unwrap_or(b.count) as usize,
        (scenario.faults.kill_buyers.min(b.pool.unwrap_or(b.count))) as usize,
    )
    .into_iter()
    .map(|buyer| {
        (
            buyer as u32,
            if scenario.producers.is_some() {
                0
            } else {
                rng.random_range(0..b.attempts)
            },
        )
    })
    .collect();
    let plan = TrialPlan {
        strategy,
        scope: scenario.lock.scope,
        store: scenario.stock.store,
        write: scenario.stock.write,
        stock_path: stock_path.clone(),
        history_dir: history_dir.canonicalize()?,
        seed,
        runner_pid: std::process::id(),
        buyers: b.count,
        attempts: b.attempts,
        hold_us: b.hold_us,
        producers: scenario.producers.clone(),
        semaphore: sem.as_ref().map(|s| s.name().to_string()),
        seller_socket: format!("sim.{tag}.seller"),
        queue_socket: format!("sim.{tag}.queue"),
        manager_socket: format!("sim.{tag}.manager"),
        socket_prefix: format!("sim.{tag}"),
        pool: b.pool,
        pool_mode: b.pool_mode,
        trial_dir: dir.clone(),
        kill_at,
    };
    if b.pool.is_some() {
        Pool::create(&dir).context("creating the pool's files")?;
    }
    let plan_path = dir.join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan)?)?;
    let log_path = dir.join("workers.log");
    let log = File::create(&log_path)?;

    let (gate_reader, gate_writer) = io::pipe()?;
    // Each group shares a pipe; [STORE] and [SERVERS] are the processes the sale depends on.
    let mut groups = [Group::new()?, Group::new()?, Group::new()?, Group::new()?];
    let mut crew = Crew { members: Vec::new() };
    let spawn = |crew: &mut Crew, group: &mut Group, role: Role, index: u32| -> Result<()> {
        let writer = group.writer.as_ref().expect("spawning before the group is sealed");
        let child = Command::new(exe)
            .arg("__worker")
            .arg(&plan_path)
            .arg(role.name())
            .arg(index.to_string())
            .stdin(Stdio::from(gate_reader.try_clone()?))
            .stdout(Stdio::from(writer.try_clone()?))
            .stderr(Stdio::from(log.try_clone()?))
            .spawn()
            .with_context(|| format!("starting {} {index}", role.name()))?;
        crew.members.push((role, index, child));
        group.size += 1;
        Ok(())
    };

    let started = Instant::now();
    let setup_deadline = started + Duration::from_secs(30);
    // Servers first, the store's before those that use it: clients send to them as soon as
    // the gate opens.
    if scenario.stock.store == StoreKind::Manager {
        spawn(&mut crew, &mut groups[STORE], Role::Manager, 0)?;
    }
    await_ready(&mut groups[STORE], &mut crew, setup_deadline, &log_path)?;
    if strategy == StrategyName::Queue {
        spawn(&mut crew, &mut groups[SERVERS], Role::Seller, 0)?;
    }
    if scenario.producers.is_some() {
        spawn(&mut crew, &mut groups[SERVERS], Role::EntryQueue, 0)?;
    }
    await_ready(&mut groups[SERVERS], &mut crew, setup_deadline, &log_path)?;
    for i in 0..scenario.producers.as_ref().map_or(0, |p| p.count) {
        spawn(&mut crew, &mut groups[PRODUCERS], Role::Producer, i)?;
    }
    for i in 0..b.pool.unwrap_or(b.count) {
        spawn(&mut crew, &mut groups[BUYERS], Role::Buyer, i)?;
    }
    await_ready(&mut groups[PRODUCERS], &mut crew, setup_deadline, &log_path)?;
    await_ready(&mut groups[BUYERS], &mut crew, setup_deadline, &log_path)?;
    let spawn_ms = started.elapsed().as_secs_f64() * 1e3;

    let gate_ns = now_ns();
    drop(gate_writer); // every worker's read of the gate returns: they all start now
    let deadline = Instant::now() + Duration::from_millis(scenario.deadline_ms);
    let mut deadline_hit = false;
    let mut stopping_servers: Option<Instant> = None;
    loop {
        let clients_done = !groups[BUYERS].open && !groups[PRODUCERS].open;
        let servers_done = !groups[SERVERS].open && !groups[STORE].open;
        if clients_done && servers_done {
            break;
        }
        if clients_done && stopping_servers.is_none() {
            for server in [&plan.seller_socket, &plan.queue_socket, &plan.manager_socket] {
                let _ = ipc::send_once(server, ipc::STOP);
            }
            stopping_servers = Some(Instant::now() + Duration::from_secs(5));
        }
        let now = Instant::now();
        if stopping_servers.is_some_and(|t| now >= t) {
            crew.kill(None); // a server that does not stop when asked is ended
            break;
        }
        if now >= deadline {
            deadline_hit = true;
            crew.kill(None);
            break;
        }
        let wait = deadline.min(stopping_servers.unwrap_or(deadline)) - now;
        // A closed group's pipe would be readable forever: poll skips negative descriptors.
        let mut fds: Vec<i32> = groups
            .iter()
            .map(|g| if g.open { g.reader.as_raw_fd() } else { -1 })
            .collect();
        fds.push(interrupts.wake.as_fd().as_raw_fd());
        let ready = poll(&fds, Some(wait));
        if ready[INTERRUPT] && interrupts.pending() {
            crew.kill(None);
            crew.reap();
            return Ok(None);
        }
        for (g, group) in groups.iter_mut().enumerate() {
            if ready[g] && group.open {
                group.drain();
            }
        }
        if ready[PRODUCERS] && !groups[PRODUCERS].open && scenario.buyers.daemon {
            crew.kill(Some(Role::Buyer)); // daemon buyers end with the producers
        }
        let clients_done = !groups[BUYERS].open && !groups[PRODUCERS].open;
        let server_died = [SERVERS, STORE].into_iter().any(|g| ready[g] && !groups[g].open);
        if server_died && !clients_done {
            // A process the sale depends on died: nobody will answer the clients.
            crew.kill(None);
            break;
        }
    }
    crew.reap();
    drop(crew);
    drop(sem); // unlinks the semaphore

    let final_stock = match std::fs::read(&stock_path).map(|b| store::parse(&b)) {
        Ok(Reading::Value(v)) => FinalStock::Value(v),
        Ok(Reading::Unreadable) => FinalStock::Unreadable(
            String::from_utf8_lossy(&std::fs::read(&stock_path).unwrap_or_default()).into_owned(),
        ),
        Err(e) => FinalStock::Unreadable(format!("(cannot read: {e})")),
    };
    let facts = Facts {
        initial_stock: scenario.stock.initial,
        final_stock,
        deadline_hit,
    };
    Ok(Some(Ran {
        trial: n,
        seed,
        dir: rel,
        history_dir,
        gate_ns,
        spawn_ms,
        facts,
    }))
}

/// Waits until every member of `group` has said it is ready; fails, with the last lines of
/// the workers' log, if one of the crew exits first.
fn await_ready(group: &mut Group, crew: &mut Crew, deadline: Instant, log_path: &Path) -> Result<()> {
    drop(group.writer.take()); // from now on only the members hold the writer
    if group.size == 0 {
        group.open = false;
        return Ok(());
    }
    let mut ready = 0;
    while ready < group.size {
        let now = Instant::now();
        if now >= deadline {
            bail!("workers did not get ready within 30 s; see {}", log_path.display());
        }
        if poll(
            &[group.reader.as_raw_fd()],
            Some((deadline - now).min(Duration::from_millis(20))),
        )[0]
        {
            ready += group.drain();
        }
        let exited = crew.members.iter_mut().find_map(|(role, index, child)| {
            child
                .try_wait()
                .ok()
                .flatten()
                .map(|status| format!("{} {index} ({status})", role.name()))
        });
        if let Some(who) = exited {
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            let last: Vec<&str> = log.lines().rev().take(5).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            bail!(
                "{who} exited before the start gate opened; the last lines of {}:\n  {}",
                log_path.display(),
                last.join("\n  ")
            );
        }
    }
    Ok(())
}
