//! A throwaway server for one run (PostgreSQL, Redis): the process, its folders, and the ways
//! it ends. It starts before the first trial and stops after the last; it stops too when the
//! run fails or is interrupted (dropping [`Server`] asks it to stop and waits), and if the
//! runner is killed outright the kernel sends the server its stop signal
//! (`PR_SET_PDEATHSIG`), so that it shuts down cleanly and leaves no shared memory behind.
//!
//! Its socket lives in a short folder under /tmp made for the run (a Unix socket's path must
//! stay under 107 bytes, and an output folder's path can be longer), removed when the server
//! stops; one left by a runner killed outright is swept by the next run, as its name carries
//! the dead runner's pid.

use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::history::{Recorder, Role};
use crate::plan::{Fixture, TrialPlan, ready_then_wait_for_gate};
use crate::sys::process::{self, Signal};

/// How long a server may take to stop when asked, before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The user a server runs as: `None` for sim's own; the `postgres` user's ids when sim runs
/// as root, since PostgreSQL refuses to run as root.
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    /// Its user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
}

/// The user a server runs as when sim runs as root: `user`, who must exist.
pub fn run_as(user: &str, package: &str) -> Result<Option<RunAs>> {
    if !process::is_root() {
        return Ok(None);
    }
    let Some((uid, gid)) = process::user_ids(user) else {
        bail!(
            "sim runs as root, and the server must run as the user {user:?}, which does not exist: \
             install the Debian package {package} (it makes the user), run sim as another user, or set \
             [stock] url to a server of your own"
        );
    };
    Ok(Some(RunAs { uid, gid }))
}

/// Makes `dir` (mode 700), owned by `run_as` if there is one.
pub fn make_private_dir(dir: &Path, run_as: Option<RunAs>) -> io::Result<()> {
    std::fs::create_dir(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    if let Some(who) = run_as {
        std::os::unix::fs::chown(dir, Some(who.uid), Some(who.gid))?;
    }
    Ok(())
}

/// Whether `run_as` can reach `dir`: every folder on the way is its own or open to others.
pub fn reachable(dir: &Path, run_as: Option<RunAs>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(who) = run_as else { return true };
    let Ok(dir) = dir.canonicalize() else { return false };
    dir.ancestors()
        .all(|folder| std::fs::metadata(folder).is_ok_and(|m| m.uid() == who.uid || m.mode() & 0o001 != 0))
}

/// The run's short folder under /tmp for a server's socket: `/tmp/sim-<what>.<pid>.<n>`.
pub struct SocketDir(pub PathBuf);

impl SocketDir {
    /// Makes it, after sweeping those of runs that were killed outright.
    pub fn make(what: &str, run_as: Option<RunAs>) -> Result<SocketDir> {
        sweep(what);
        let dir = PathBuf::from(format!(
            "/tmp/sim-{what}.{}.{}",
            std::process::id(),
            crate::sys::clock::now_ns() % 1_000_000_007
        ));
        make_private_dir(&dir, run_as).with_context(|| format!("making the socket folder {}", dir.display()))?;
        Ok(SocketDir(dir))
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes the socket folders of runs whose runner is gone.
fn sweep(what: &str) {
    let Ok(entries) = std::fs::read_dir("/tmp") else { return };
    let prefix = format!("sim-{what}.");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|rest| rest.split('.').next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if process::is_gone(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Runs a set-up command (`initdb`) to its end as `run_as`, its output in `log`.
pub fn run_to_end(mut command: Command, run_as: Option<RunAs>, log: &Path) -> Result<()> {
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .current_dir("/");
    if let Some(who) = run_as {
        command.uid(who.uid).gid(who.gid);
    }
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command.status().with_context(|| format!("starting {program}"))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        bail!(
            "{program} failed ({status}); the end of {}:\n{}",
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

/// A server process of the run, stopped with `stop_signal` when dropped or when the runner
/// dies.
pub struct Server {
    child: Child,
    stop_signal: Signal,
}

impl Server {
    /// Starts `command` as `run_as`, in a process group of its own (a Ctrl-C at the terminal
    /// reaches the runner alone, which stops it in order), its output in `log`.
    pub fn spawn(mut command: Command, run_as: Option<RunAs>, log: &Path, stop_signal: Signal) -> Result<Server> {
        // Appended to: a server started again after a kill keeps what the first one said.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        if let Some(who) = run_as {
            std::os::unix::fs::chown(log, Some(who.uid), Some(who.gid))?;
            command.uid(who.uid).gid(who.gid);
        }
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .current_dir("/")
            .process_group(0);
        // Stopped as when asked to if the runner dies; std runs the hook after the change of
        // user, which would clear it.
        process::die_with_parent_after_exec(&mut command, stop_signal);
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command.spawn().with_context(|| format!("starting {program}"))?;
        Ok(Server { child, stop_signal })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILLs it, without waiting: a crash, not a stop.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// How it ended, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Asks it to stop and waits; kills it if it takes longer than the grace.
    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        // Our own child, which has not been reaped: its pid is its own.
        let _ = process::kill(self.child.id(), self.stop_signal);
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `ready` succeeds, the server exits, or `limit` passes; the error of the last
/// try.
pub fn await_ready<T>(
    server: &mut Server,
    limit: Duration,
    log: &Path,
    mut ready: impl FnMut() -> Result<T>,
) -> Result<T> {
    let until = Instant::now() + limit;
    loop {
        let error = match ready() {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        if let Some(status) = server.exited() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            bail!(
                "the server exited as it started ({status}); the end of {}:\n{}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if Instant::now() >= until {
            return Err(error.context(format!("the server was not ready within {} s", limit.as_secs())));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first folder of `dirs` that holds every one of `programs`, or of `PATH`.
pub fn find_binaries(dirs: impl IntoIterator<Item = PathBuf>, programs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    dirs.into_iter()
        .chain(std::env::split_paths(&path))
        .find(|dir| programs.iter().all(|p| dir.join(p).is_file()))
}

/// A throwaway server that is started again before the next trial if `[faults] kill_store`
/// killed it.
pub struct Restartable {
    server: std::cell::RefCell<Server>,
    start: Box<dyn Fn() -> Result<Server>>,
}

impl Restartable {
    /// Starts the server with `start`, which returns once it answers.
    pub fn new(start: Box<dyn Fn() -> Result<Server>>) -> Result<Restartable> {
        let server = start()?;
        Ok(Restartable {
            server: std::cell::RefCell::new(server),
            start,
        })
    }

    /// The running server's pid.
    pub fn pid(&self) -> u32 {
        self.server.borrow().pid()
    }

    /// Starts it again if it died; if it was `killed`, once it is gone.
    pub fn revive(&self, killed: bool) -> Result<()> {
        if killed {
            let until = Instant::now() + STOP_GRACE;
            while self.server.borrow_mut().exited().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let dead = self.server.borrow_mut().exited().is_some();
        if !dead {
            return Ok(());
        }
        // The killed server's children may take a moment to notice and go, and a new
        // PostgreSQL refuses to start while they hold its shared memory: try a few times.
        let mut tries = 0;
        loop {
            match (self.start)() {
                Ok(server) => {
                    *self.server.borrow_mut() = server;
                    return Ok(());
                }
                Err(e) if tries >= 10 => return Err(e.context("starting the store's server again after it was killed")),
                Err(_) => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// Stops it.
    pub fn stop(&self) {
        self.server.borrow_mut().stop();
    }
}

/// The server a run keeps its stock on, as the runner holds it until the run ends.
pub struct Served {
    url: String,
    name: String,
    kind: ServedKind,
}

enum ServedKind {
    /// Started by sim for the run: stopped at the end, its folders removed.
    Throwaway {
        server: Restartable,
        /// Removed when dropped, after the server has stopped.
        _socket: SocketDir,
        /// Its data folder, if it keeps one.
        data: Option<PathBuf>,
    },
    /// The user's own: only what sim made is removed, by `forget(url, name)`.
    Users { forget: fn(&str, &str) },
}

impl Served {
    /// A throwaway server at `url`, started and answering, whose socket is in `socket`.
    pub fn throwaway(
        url: String,
        name: String,
        server: Restartable,
        socket: SocketDir,
        data: Option<PathBuf>,
    ) -> Served {
        Served {
            url,
            name,
            kind: ServedKind::Throwaway {
                server,
                _socket: socket,
                data,
            },
        }
    }

    /// The user's server at `url`, from which `forget` removes what sim named `name`.
    pub fn users(url: String, name: String, forget: fn(&str, &str)) -> Served {
        Served {
            url,
            name,
            kind: ServedKind::Users { forget },
        }
    }
}

impl super::Service for Served {
    fn url(&self) -> &str {
        &self.url
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn pid(&self) -> Option<u32> {
        match &self.kind {
            ServedKind::Throwaway { server, .. } => Some(server.pid()),
            ServedKind::Users { .. } => None,
        }
    }

    fn revive(&self, killed: bool) -> Result<()> {
        match &self.kind {
            ServedKind::Throwaway { server, .. } => server.revive(killed),
            ServedKind::Users { .. } => Ok(()),
        }
    }
}

impl Drop for Served {
    /// Stops a throwaway server and removes its data folder (its socket folder goes with
    /// it); on the user's server, removes what sim made.
    fn drop(&mut self) {
        match &self.kind {
            ServedKind::Throwaway { server, data, .. } => {
                server.stop();
                if let Some(data) = data {
                    let _ = std::fs::remove_dir_all(data);
                }
            }
            ServedKind::Users { forget } => forget(&self.url, &self.name),
        }
    }
}

/// The server processes of a store with a throwaway server: a watcher, which stands for the
/// server in the history, when `[faults] kill_store` may kill it.
pub fn watchers(scenario: &crate::scenario::Scenario) -> &'static [Role] {
    match scenario.faults.kill_store {
        true => &[Role::Manager],
        false => &[],
    }
}

/// The watcher's socket, by which the runner tells it the trial is over.
fn watcher_socket(plan: &TrialPlan) -> String {
    plan.name("watcher")
}

/// The runner's way to stop a trial's watcher; nothing to remove (an abstract socket).
pub struct WatcherStopper(String);

impl WatcherStopper {
    /// The stopper of the plan's watcher, if it has one.
    pub fn new(plan: &TrialPlan) -> WatcherStopper {
        WatcherStopper(watcher_socket(plan))
    }
}

impl Fixture for WatcherStopper {
    fn stop(&self) {
        let _ = crate::sys::ipc::send_once(&self.0, crate::sys::ipc::STOP);
    }
}

/// The life of a trial's watcher, a process that stands for the store's server in the
/// history when `[faults] kill_store` may kill it: it finishes when the runner stops it, and
/// dies, unfinished, when `alive` finds the server gone, so that the checker judges the
/// trial `crashed` and the runner ends the clients waiting on the server.
pub fn watch(plan: &TrialPlan, recorder: &mut Recorder, mut alive: impl FnMut() -> bool) -> Result<()> {
    let socket = crate::sys::ipc::bind(&watcher_socket(plan))?;
    socket.set_nonblocking(true)?;
    ready_then_wait_for_gate(recorder)?;
    let mut buf = [0u8; 16];
    loop {
        match socket.recv(&mut buf) {
            // Clients that lost the server end at once, and the runner then stops the
            // watcher: it looks once more before it calls the trial whole.
            Ok(n) if &buf[..n] == crate::sys::ipc::STOP => match alive() {
                true => return Ok(()),
                false => bail!("the store's server died"),
            },
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        if !alive() {
            bail!("the store's server died");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
