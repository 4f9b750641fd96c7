//! A throwaway PostgreSQL primary with streaming standbys: what `[stock] replicas` starts for
//! store `postgres`, and what `[faults] failover` breaks.
//!
//! The primary is made with `initdb`, each standby with `pg_basebackup -R` from it, all run
//! as the user the single throwaway server runs as, each on a Unix socket of the run's
//! socket folder (ports 5432, 5433, …). Buyers are given one multi-host url naming them all
//! with `target_session_attrs=read-write`: the primary is the server that takes writes,
//! whichever it is, and a buyer that lost it finds the new one by connecting again.
//! `synchronous` sets the primary's `synchronous_standby_names` (`ANY 1 (*)`) and
//! `synchronous_commit` once its standbys stream.
//!
//! With `partition_ms` or `latency_ms`, each server's socket has a fault proxy in front of
//! it, in a folder of its own: buyers and standbys connect through it (a standby's
//! `primary_conninfo` names the primary's proxy), so a partition of the primary's proxy
//! holds both; sim's own looks at the servers go straight to them.
//!
//! A failover stops every standby at once as `pg_ctl stop -m immediate` does (SIGQUIT to
//! its postmaster): a stopped standby receives nothing, where a paused one would catch up
//! from the kernel's socket buffers. After `lag_ms` the primary and every process it started
//! are SIGKILLed, the standbys start again from what they had, and the one that replayed the
//! most is promoted (`pg_ctl promote`). The new primary commits alone, as an orchestrator's
//! non-strict synchronous mode does while no standby follows it. Before the next trial the
//! other servers are made again as its standbys. Every server gets the single server's care:
//! its own process group, stopped when dropped, stopped by the kernel when the runner dies;
//! the System V segment a killed primary leaves is removed once its processes are gone.

use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use postgres::{Client, NoTls};

use super::postgres::{Home, await_answer, describe};
use super::proxy::Proxy;
use super::server::{Server, SocketDir};
use super::{Nemesis, Service};
use crate::scenario::Synchronous;
use crate::sys::process::{self, Signal};

/// The first primary's place among the servers.
pub const PRIMARY: usize = 0;
/// The port in the name of the first server's socket; the others follow it.
const FIRST_PORT: u16 = 5432;
/// How long the standbys may take to stream from a new primary.
const STREAM_LIMIT: Duration = Duration::from_secs(60);
/// How long a stopped or killed server's processes may take to end.
const END_LIMIT: Duration = Duration::from_secs(10);

/// What a group is made with.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Standbys of the primary.
    pub replicas: u32,
    /// How the primary's commits wait for them.
    pub synchronous: Synchronous,
    /// Every server's settings (`-c`).
    pub settings: Vec<String>,
    /// Whether every server is reached through sim's fault proxy (`partition_ms`,
    /// `latency_ms`): buyers and standbys alike, sim's own looks straight.
    pub proxied: bool,
    /// What the proxies hold each chunk of bytes for.
    pub latency: Duration,
}

/// One server of the group.
struct Node {
    data: PathBuf,
    port: u16,
    server: Option<Server>,
    /// The System V segment of the server killed outright here, to remove once no process
    /// is attached to it.
    segment: Option<i32>,
}

impl Node {
    fn log(&self) -> String {
        format!("postgres-{}.log", self.port - FIRST_PORT)
    }

    /// Waits until its server has ended, if it had one.
    fn await_end(&mut self) {
        if let Some(server) = &mut self.server {
            let until = Instant::now() + END_LIMIT;
            while server.exited().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Stops its server, and removes the segment a kill left.
    fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
        if let Some(shmid) = self.segment.take() {
            remove_segment(shmid);
        }
    }
}

/// A fault proxy in front of each server's socket, in the folder `front` under `socket`;
/// that folder.
fn fronts(socket: &std::path::Path, nodes: &[Node], latency: Duration) -> Result<(PathBuf, Vec<Proxy>)> {
    let front = socket.join("front");
    std::fs::create_dir(&front).with_context(|| format!("making {}", front.display()))?;
    // The standbys' servers, run as another user, reach the primary through it.
    std::fs::set_permissions(&front, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let mut proxies = Vec::new();
    for node in nodes {
        let name = format!(".s.PGSQL.{}", node.port);
        let proxy = Proxy::start_unix(&front.join(&name), &socket.join(&name))
            .with_context(|| format!("starting the fault proxy of {}", front.join(&name).display()))?;
        proxy.set_latency(latency);
        proxies.push(proxy);
    }
    Ok((front, proxies))
}

/// Removes a killed server's System V segment once its last process has let go of it.
fn remove_segment(shmid: i32) {
    let until = Instant::now() + END_LIMIT;
    while crate::sys::shm::sysv_attached(shmid).is_some_and(|n| n > 0) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    if crate::sys::shm::sysv_attached(shmid) == Some(0) {
        let _ = crate::sys::shm::sysv_remove(shmid);
    }
}

/// The System V segment a server on `data` holds, as its `postmaster.pid` names it (line 7:
/// the key and the id).
fn segment_of(data: &std::path::Path) -> Option<i32> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    text.lines().nth(6)?.split_whitespace().nth(1)?.parse().ok()
}

/// A primary and its standbys, the run's store.
pub struct Standbys {
    home: Home,
    shape: Shape,
    nodes: RefCell<Vec<Node>>,
    /// The place of the server that is the primary now.
    primary: Cell<usize>,
    url: String,
    name: String,
    /// A fault hit the group in the last trial: its standbys are made again before the next.
    disturbed: Cell<bool>,
    /// The standby being promoted, once `pg_ctl promote` was run on it.
    promoting: Cell<Option<usize>>,
    /// What each standby had replayed at the last look, before one is chosen.
    replayed: RefCell<Option<Vec<i64>>>,
    /// With `proxied`, a fault proxy in front of each server's socket, in `front`.
    fronts: Vec<Proxy>,
    /// The folder buyers and standbys find the servers' sockets in: the proxies' with
    /// `proxied`, else the servers' own.
    front: PathBuf,
    /// Declared last: the socket folder goes once every server has stopped.
    _socket: SocketDir,
}

impl Standbys {
    /// Starts the primary (its data folder made by `initdb` in `home`) and `shape.replicas`
    /// standbys; sim's tables are named with `name`.
    pub fn start(home: Home, socket: SocketDir, shape: Shape, name: String) -> Result<Standbys> {
        let nodes = (0..=shape.replicas as u16)
            .map(|i| Node {
                data: home.data.join(format!("postgres-{i}")),
                port: FIRST_PORT + i,
                server: None,
                segment: None,
            })
            .collect::<Vec<_>>();
        let (front, fronts) = match shape.proxied {
            true => fronts(&home.socket, &nodes, shape.latency).context("starting the fault proxies")?,
            false => (home.socket.clone(), Vec::new()),
        };
        let url = format!(
            "host={} port={} user={} dbname=postgres target_session_attrs=read-write",
            vec![front.display().to_string(); nodes.len()].join(","),
            nodes.iter().map(|n| n.port.to_string()).collect::<Vec<_>>().join(","),
            super::postgres::USER
        );
        let group = Standbys {
            home,
            shape,
            nodes: RefCell::new(nodes),
            primary: Cell::new(PRIMARY),
            url,
            name,
            disturbed: Cell::new(false),
            promoting: Cell::new(None),
            replayed: RefCell::new(None),
            fronts,
            front,
            _socket: socket,
        };
        group
            .start_primary()
            .context("starting the throwaway PostgreSQL primary")?;
        group
            .make_standbys()
            .context("making the throwaway PostgreSQL primary's standbys")?;
        Ok(group)
    }

    /// A connection to the server at `i`, past the multi-host url.
    fn direct(&self, i: usize) -> Result<Client> {
        let url = self.home.url(self.nodes.borrow()[i].port);
        Client::connect(&url, NoTls).map_err(|e| anyhow::anyhow!("connecting to server {i}: {}", describe(&e)))
    }

    /// Starts the server at `i` on its data folder, and waits until it answers.
    fn start_server(&self, i: usize) -> Result<()> {
        let mut nodes = self.nodes.borrow_mut();
        let node = &mut nodes[i];
        let mut server = self
            .home
            .spawn(&node.data, node.port, &self.shape.settings, &node.log())?;
        let log = self.home.logs.join(node.log());
        await_answer(&mut server, &self.home.url(node.port), &log)?;
        node.server = Some(server);
        Ok(())
    }

    fn start_primary(&self) -> Result<()> {
        self.start_server(PRIMARY)
    }

    /// Makes every server but the primary again as its standby (`pg_basebackup -R`), waits
    /// until each streams, and sets the primary's synchronous commit.
    fn make_standbys(&self) -> Result<()> {
        let primary = self.primary.get();
        let primary_port = self.nodes.borrow()[primary].port;
        let count = self.nodes.borrow().len();
        for i in (0..count).filter(|&i| i != primary) {
            let data = {
                let mut nodes = self.nodes.borrow_mut();
                nodes[i].stop();
                nodes[i].data.clone()
            };
            self.home.fresh_data(&data)?;
            let port = primary_port.to_string();
            let args: Vec<&OsStr> = ["-D".as_ref(), data.as_os_str()]
                .into_iter()
                .chain(
                    ["-R", "-X", "stream", "-c", "fast", "-h"]
                        .map(OsStr::new)
                        .into_iter()
                        .chain([self.front.as_os_str()])
                        .chain(["-p", &port, "-U", super::postgres::USER].map(OsStr::new)),
                )
                .collect();
            self.home
                .run("pg_basebackup", &args, &format!("pg_basebackup-{i}.log"))
                .with_context(|| format!("copying the primary for standby {i}"))?;
            self.start_server(i).with_context(|| format!("starting standby {i}"))?;
        }
        self.await_streaming()?;
        let (names, commit) = match self.shape.synchronous {
            Synchronous::Off => ("''", "on"),
            Synchronous::On => ("'ANY 1 (*)'", "on"),
            Synchronous::RemoteApply => ("'ANY 1 (*)'", "remote_apply"),
        };
        let mut client = self.direct(primary)?;
        // One statement at a time: ALTER SYSTEM refuses to run inside a transaction.
        for sql in [
            format!("ALTER SYSTEM SET synchronous_standby_names = {names}"),
            format!("ALTER SYSTEM SET synchronous_commit = {commit}"),
            "SELECT pg_reload_conf()".into(),
        ] {
            client
                .simple_query(&sql)
                .map_err(|e| anyhow::anyhow!("setting synchronous commit on the primary: {}", describe(&e)))?;
        }
        Ok(())
    }

    /// Waits until the primary streams to every standby.
    fn await_streaming(&self) -> Result<()> {
        let want = self.shape.replicas as i64;
        let until = Instant::now() + STREAM_LIMIT;
        let mut client = self.direct(self.primary.get())?;
        loop {
            let streaming: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                    &[],
                )
                .map_err(|e| anyhow::anyhow!("asking the primary for its standbys: {}", describe(&e)))?
                .get(0);
            if streaming >= want {
                return Ok(());
            }
            if Instant::now() > until {
                bail!(
                    "{streaming} of {want} standbys stream from the primary after {} s; see the logs in {}",
                    STREAM_LIMIT.as_secs(),
                    self.home.logs.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What each standby has replayed, once every one answers.
    fn replayed_now(&self) -> Result<Option<Vec<(usize, i64)>>> {
        let primary = self.primary.get();
        let count = self.nodes.borrow().len();
        let mut found = Vec::new();
        for i in (0..count).filter(|&i| i != primary) {
            let (running, exited) = {
                let mut nodes = self.nodes.borrow_mut();
                let server = nodes[i].server.as_mut();
                (server.is_some(), server.and_then(|s| s.exited()))
            };
            if !running {
                bail!(
                    "standby {i} could not be started again after the primary's kill; see {}",
                    self.home.logs.join(self.nodes.borrow()[i].log()).display()
                );
            }
            if let Some(status) = exited {
                bail!(
                    "standby {i} exited ({status}) as it started again after the primary's kill; see {}",
                    self.home.logs.join(self.nodes.borrow()[i].log()).display()
                );
            }
            let Ok(mut client) = self.direct(i) else {
                return Ok(None);
            };
            let lsn = client.query_one(
                "SELECT (coalesce(pg_last_wal_replay_lsn(), '0/0') - '0/0'::pg_lsn)::bigint",
                &[],
            );
            match lsn {
                Ok(row) => found.push((i, row.get(0))),
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(found))
    }

    /// The standby to promote: the one that replayed the most, once two looks in a row
    /// found the same (a standby started again replays what it had before it answers, and
    /// may go on for a moment after).
    fn choose(&self) -> Result<Option<usize>> {
        let Some(now) = self.replayed_now()? else {
            return Ok(None);
        };
        let lsns: Vec<i64> = now.iter().map(|(_, lsn)| *lsn).collect();
        let before = self.replayed.replace(Some(lsns.clone()));
        if before.as_ref() != Some(&lsns) {
            return Ok(None);
        }
        Ok(now
            .iter()
            .max_by_key(|(i, lsn)| (*lsn, std::cmp::Reverse(*i)))
            .map(|(i, _)| *i))
    }

    /// Whether the server at `i` takes writes; if it does, its synchronous commit is turned
    /// off (no standby follows it yet).
    fn promoted(&self, i: usize) -> bool {
        let Ok(mut client) = self.direct(i) else { return false };
        let writes = client
            .query_one("SELECT NOT pg_is_in_recovery()", &[])
            .is_ok_and(|row| row.get::<_, bool>(0));
        writes
            && client
                .simple_query("ALTER SYSTEM RESET synchronous_standby_names")
                .is_ok()
            && client.simple_query("SELECT pg_reload_conf()").is_ok()
    }
}

impl Standbys {
    /// Removes the System V segment of a killed server once none of its processes holds it:
    /// at once, rather than before the next trial, so that a runner killed outright in
    /// between leaves none behind.
    fn release_segments(&self) {
        for node in self.nodes.borrow_mut().iter_mut() {
            if let Some(shmid) = node.segment
                && crate::sys::shm::sysv_attached(shmid).is_none_or(|n| n == 0)
            {
                let _ = crate::sys::shm::sysv_remove(shmid);
                node.segment = None;
            }
        }
    }
}

impl Service for Standbys {
    fn url(&self) -> &str {
        &self.url
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn revive(&self, _killed: bool) -> Result<()> {
        if !self.disturbed.replace(false) {
            return Ok(());
        }
        if let Some(promoted) = self.promoting.take() {
            self.primary.set(promoted);
        }
        self.replayed.take();
        self.make_standbys()
            .context("making the PostgreSQL standbys again after a failover")
    }

    fn nemesis(&self) -> Option<&dyn Nemesis> {
        Some(self)
    }
}

impl Nemesis for Standbys {
    /// Stops every standby at once, as `pg_ctl stop -m immediate` does.
    fn cut_replicas(&self) {
        self.disturbed.set(true);
        let primary = self.primary.get();
        for (_, node) in self.nodes.borrow().iter().enumerate().filter(|(i, _)| *i != primary) {
            if let Some(server) = &node.server {
                let _ = process::kill(server.pid(), Signal::QUIT);
            }
        }
    }

    /// Starts the stopped standbys again, without waiting for them to answer.
    fn heal_replicas(&self) {
        let primary = self.primary.get();
        let mut nodes = self.nodes.borrow_mut();
        for (_, node) in nodes.iter_mut().enumerate().filter(|(i, _)| *i != primary) {
            node.await_end();
            if node.server.as_mut().is_some_and(|s| s.exited().is_some()) {
                node.server = self
                    .home
                    .spawn(&node.data, node.port, &self.shape.settings, &node.log())
                    .ok();
            }
        }
    }

    /// SIGKILLs the primary: the postmaster and every process it started. Each backend is a
    /// process group of its own, and one orphaned by its postmaster's death goes on serving
    /// the statements already sent to it until it next waits: here one sold a ticket after
    /// the kill. The postmaster is stopped first, so that it starts no more of them.
    fn kill_primary(&self) -> Result<()> {
        self.disturbed.set(true);
        let mut nodes = self.nodes.borrow_mut();
        let node = &mut nodes[self.primary.get()];
        node.segment = segment_of(&node.data);
        if let Some(server) = &mut node.server {
            let _ = process::kill(server.pid(), Signal::STOP);
            for child in process::descendants(server.pid()) {
                let _ = process::kill(child, Signal::KILL);
            }
            server.kill();
        }
        Ok(())
    }

    fn promotion(&self, _waited: Duration) -> Result<Option<String>> {
        self.release_segments();
        let chosen = match self.promoting.get() {
            Some(chosen) => chosen,
            None => {
                let Some(chosen) = self.choose()? else { return Ok(None) };
                let data = self.nodes.borrow()[chosen].data.clone();
                self.home
                    .run(
                        "pg_ctl",
                        &["promote", "-W", "-D"]
                            .map(OsStr::new)
                            .into_iter()
                            .chain([data.as_os_str()])
                            .collect::<Vec<_>>(),
                        &format!("pg_ctl-{chosen}.log"),
                    )
                    .with_context(|| format!("promoting standby {chosen}"))?;
                self.promoting.set(Some(chosen));
                chosen
            }
        };
        if !self.promoted(chosen) {
            return Ok(None);
        }
        let replayed = self.replayed.borrow().clone().unwrap_or_default();
        let lsn = replayed.iter().max().copied().unwrap_or(0);
        Ok(Some(format!(
            "pg_ctl promote promoted standby {chosen}, of the {} the one that had replayed the most WAL (to {:X}/{:X})",
            replayed.len(),
            lsn >> 32,
            lsn & 0xffff_ffff
        )))
    }

    /// Holds all traffic through the primary's proxy: its buyers' and its standbys'.
    fn partition_primary(&self) {
        if let Some(front) = self.fronts.get(self.primary.get()) {
            front.partition();
        }
    }

    fn heal_primary(&self) {
        for front in &self.fronts {
            front.heal();
        }
    }
}

impl Drop for Standbys {
    /// The standbys stop first, then the primary; every data folder is removed.
    fn drop(&mut self) {
        let primary = self.primary.get();
        let mut nodes = self.nodes.borrow_mut();
        for (_, node) in nodes.iter_mut().enumerate().filter(|(i, _)| *i != primary) {
            node.stop();
        }
        nodes[primary].stop();
        for node in nodes.iter() {
            let _ = std::fs::remove_dir_all(&node.data);
        }
    }
}
