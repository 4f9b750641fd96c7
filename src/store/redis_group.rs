//! A throwaway Redis primary with replicas, watched by three Sentinels, every link behind
//! sim's fault proxy: what `[stock] replicas` starts for store `redis`, and what `[faults]
//! failover`, `partition_ms` and `latency_ms` break.
//!
//! Each server listens on a port of 127.0.0.1 and is reached through a front proxy of its
//! own: buyers, Sentinels and (after a failover) replicas go through it, since each server
//! announces the front's port as its address. The replicas reach the first primary through
//! one more proxy, the replication link, which a failover cuts while the sale goes on: a
//! paused replica would catch up from the kernel's socket buffers, a cut one cannot. The
//! Sentinels are written a whole configuration (each other, every replica) so that they
//! watch from their first moment. They call a server down only after 5 s of silence: the
//! nemesis kills the primary and asks a Sentinel to fail over at once (`SENTINEL
//! FAILOVER`), so that a machine busy with the sale never fails over on its own.
//!
//! Buyers find the primary by asking the Sentinels (`redis+sentinel://`), and ask again
//! when their connection is lost. A group that suffered a fault is stopped and started
//! afresh before the next trial. Every process gets the same care as a single throwaway
//! server: its own process group, stopped when dropped, and stopped by the kernel when the
//! runner dies.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use redis::Connection;

use super::proxy::Proxy;
use super::server::{self, Server};
use super::{Nemesis, Service};
use crate::sys::process::Signal;

/// The name the Sentinels know the primary by.
pub const MASTER: &str = "sim";
/// How long a Sentinel hears nothing from a server before it calls it down: long enough
/// that a machine busy with a sale (or a build) never fails over by itself. 200 ms made
/// the Sentinels here fail over healthy primaries again and again.
const DOWN_AFTER_MS: u64 = 5000;
/// How long a server may take to start and catch up.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// How long the Sentinels have to promote a replica, once asked, before sim promotes one
/// by hand.
const SENTINEL_LIMIT: Duration = Duration::from_secs(10);
/// How soon after asking sim looks whether the Sentinel gave the failover up.
const GIVE_UP_LOOK: Duration = Duration::from_millis(300);

/// What a group is made with.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Replicas of the primary.
    pub replicas: u32,
    /// The primary's `min-replicas-to-write`.
    pub min_replicas_to_write: u32,
    /// Held on every buyer's link.
    pub latency: Duration,
}

/// The ports and proxies of a group, made once for the run: a group started again after a
/// fault listens where the first did, so that the url buyers are given stays true.
struct Wiring {
    /// Each server's port, the first primary's first.
    ports: Vec<u16>,
    /// Each server's front proxy.
    fronts: Vec<Proxy>,
    /// The replicas' link to the first primary.
    replication: Proxy,
    /// The Sentinels' ports; none without replicas.
    sentinels: Vec<u16>,
}

impl Wiring {
    fn new(shape: &Shape) -> Result<Wiring> {
        // The servers' ports stay held while the proxies take theirs, or the kernel could
        // hand a proxy a port just let go.
        let held: Vec<std::net::TcpListener> = (0..=shape.replicas)
            .map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
            .collect::<Result<_, _>>()?;
        let ports: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<_, _>>()?;
        let fronts: Vec<Proxy> = ports
            .iter()
            .map(|&p| Proxy::start(local(p)))
            .collect::<Result<_, _>>()?;
        for front in &fronts {
            front.set_latency(shape.latency);
        }
        let sentinels = match shape.replicas {
            0 => Vec::new(),
            _ => (0..3).map(|_| free_port()).collect::<Result<_, _>>()?,
        };
        let replication = Proxy::start_streaming(local(ports[0]))?;
        drop(held);
        Ok(Wiring {
            replication,
            ports,
            fronts,
            sentinels,
        })
    }

    /// The url buyers find the primary by.
    fn url(&self) -> String {
        match self.sentinels.is_empty() {
            true => format!("redis://127.0.0.1:{}/", self.fronts[0].addr().port()),
            false => format!(
                "redis+sentinel://{}/{MASTER}",
                self.sentinels
                    .iter()
                    .map(|p| format!("127.0.0.1:{p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    /// Lets every link through again, with no connection left from a group that stopped.
    fn heal(&self) {
        for proxy in self.fronts.iter().chain([&self.replication]) {
            proxy.heal();
            proxy.reset();
        }
    }
}

/// A primary, its replicas and the Sentinels that watch them: the processes.
struct Group {
    nodes: Vec<Server>,
    sentinels: Vec<Server>,
}

/// Another process listened on a server's port before the server could.
#[derive(Debug)]
struct PortTaken(u16);

impl std::fmt::Display for PortTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another process took port {} before redis-server could listen there",
            self.0
        )
    }
}

impl std::error::Error for PortTaken {}

/// A port of 127.0.0.1 that nobody listens on now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A connection straight to the server or Sentinel on `port`, past the proxies.
fn direct(port: u16) -> redis::RedisResult<Connection> {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?
        .get_connection_with_timeout(Duration::from_secs(2))?;
    con.set_read_timeout(Some(Duration::from_secs(5)))?;
    redis::cmd("PING").query::<String>(&mut con)?;
    Ok(con)
}

impl Group {
    /// Starts the group in `home`, with `program` as `redis-server`, wired by `wiring`.
    fn start(program: &Path, home: &Path, shape: &Shape, wiring: &Wiring) -> Result<Group> {
        let mut group = Group {
            nodes: Vec::new(),
            sentinels: Vec::new(),
        };
        for (i, (&port, front)) in wiring.ports.iter().zip(&wiring.fronts).enumerate() {
            let dir = home.join(format!("redis-{i}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
            let mut command = Command::new(program);
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(&dir)
                .args(["--repl-diskless-sync-delay", "0", "--shutdown-timeout", "0"])
                .args(["--replica-announce-ip", "127.0.0.1"])
                .args(["--replica-announce-port", &front.addr().port().to_string()])
                .args(["--min-replicas-to-write", &shape.min_replicas_to_write.to_string()]);
            if i > 0 {
                command.args([
                    "--replicaof",
                    "127.0.0.1",
                    &wiring.replication.addr().port().to_string(),
                ]);
            }
            let log = dir.join("redis.log");
            let mut process = Server::spawn(command, None, &log, Signal::TERM).context("starting redis-server")?;
            server::await_ready(&mut process, READY_LIMIT, &log, || {
                direct(port).map_err(|e| anyhow::anyhow!("connecting: {e}"))
            })
            .with_context(|| format!("starting Redis server {i} of the group"))?;
            // Another process may have taken the port between its choice and the server's
            // bind: then what answers there is not this server, which has exited.
            let info: String = redis::cmd("INFO").arg("server").query(&mut direct(port)?)?;
            let answering = info
                .lines()
                .find_map(|l| l.strip_prefix("process_id:"))
                .and_then(|pid| pid.trim().parse::<u32>().ok());
            if answering != Some(process.pid()) {
                bail!(PortTaken(port));
            }
            group.nodes.push(process);
        }
        await_replicas(&wiring.ports[1..], home)?;
        await_streaming(wiring.ports[0], wiring.ports.len() - 1)?;
        if !wiring.sentinels.is_empty() {
            group.start_sentinels(program, home, wiring)?;
        }
        Ok(group)
    }

    /// Starts three Sentinels that know each other and every replica from the start.
    fn start_sentinels(&mut self, program: &Path, home: &Path, wiring: &Wiring) -> Result<()> {
        let ports = &wiring.sentinels;
        let ids: Vec<String> = (0..3).map(|i| format!("{:040x}", 0x5e47_1e10 + i)).collect();
        for i in 0..3 {
            let dir = home.join(format!("sentinel-{i}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
            let mut conf = format!(
                "port {}\nbind 127.0.0.1\ndir {}\nsentinel myid {}\nsentinel monitor {MASTER} 127.0.0.1 {} 2\n\
                 sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\nsentinel failover-timeout {MASTER} 2000\n\
                 sentinel parallel-syncs {MASTER} 16\n",
                ports[i],
                dir.display(),
                ids[i],
                wiring.fronts[0].addr().port()
            );
            for front in &wiring.fronts[1..] {
                conf += &format!("sentinel known-replica {MASTER} 127.0.0.1 {}\n", front.addr().port());
            }
            for j in (0..3).filter(|&j| j != i) {
                conf += &format!("sentinel known-sentinel {MASTER} 127.0.0.1 {} {}\n", ports[j], ids[j]);
            }
            // A Sentinel rewrites its configuration as it learns: the file must be its own.
            let file = dir.join("sentinel.conf");
            std::fs::write(&file, conf).with_context(|| format!("writing {}", file.display()))?;
            let mut command = Command::new(program);
            command.arg(&file).arg("--sentinel");
            let log = dir.join("sentinel.log");
            let mut process = Server::spawn(command, None, &log, Signal::TERM).context("starting redis-sentinel")?;
            let replicas = wiring.ports.len() - 1;
            server::await_ready(&mut process, READY_LIMIT, &log, || sentinel_sees(ports[i], replicas))
                .with_context(|| format!("starting Sentinel {i} of the group"))?;
            self.sentinels.push(process);
        }
        Ok(())
    }
}

/// Waits until the primary on `port` streams its writes to each of its `replicas`: after a
/// diskless sync it holds them back until the replica's first acknowledgement, which comes
/// up to a second later, and a link cut before then loses everything written since (a
/// promoted replica here lacked the stock itself). A write every replica confirms (`WAIT`)
/// shows the streams are on.
fn await_streaming(port: u16, replicas: usize) -> Result<()> {
    if replicas == 0 {
        return Ok(());
    }
    let mut con = direct(port)?;
    // With min_replicas_to_write, the primary refuses writes (NOREPLICAS) until enough
    // replicas have acknowledged it once, up to a second after they synced.
    let until = Instant::now() + READY_LIMIT;
    loop {
        match redis::cmd("SET").arg("sim:streaming").arg(1).query::<()>(&mut con) {
            Ok(()) => break,
            Err(e) if e.code() == Some("NOREPLICAS") && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let confirmed: i64 = redis::cmd("WAIT")
        .arg(replicas)
        .arg(READY_LIMIT.as_millis() as u64)
        .query(&mut con)?;
    if confirmed < replicas as i64 {
        bail!(
            "{confirmed} of {replicas} replicas confirmed a first write within {} s; see their redis.log",
            READY_LIMIT.as_secs()
        );
    }
    Ok(())
}

/// Waits until the link of each replica on `ports` (the group's nodes from 1 on, each with
/// its folder in `home`) to its primary is up.
fn await_replicas(ports: &[u16], home: &Path) -> Result<()> {
    let until = Instant::now() + READY_LIMIT;
    for (i, &port) in ports.iter().enumerate() {
        loop {
            let info: String = redis::cmd("INFO").arg("replication").query(&mut direct(port)?)?;
            if info.contains("master_link_status:up") {
                break;
            }
            if Instant::now() > until {
                // The log is gone with the run's folder: its last lines go in the message.
                let log = std::fs::read_to_string(home.join(format!("redis-{}", i + 1)).join("redis.log"))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!(
                    "the replica on port {port} never caught up with its primary within {} s; \
                     the last lines of its redis.log:\n{}",
                    READY_LIMIT.as_secs(),
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}

impl Wiring {
    /// The front port of the primary the Sentinels name, once one names another than the
    /// first as up and done with its failover: what buyers asking them will be given.
    fn promoted(&self) -> Option<u16> {
        let first = self.fronts[0].addr().port();
        self.sentinels.iter().find_map(|p| {
            let master: Vec<String> = redis::cmd("SENTINEL")
                .arg("MASTER")
                .arg(MASTER)
                .query(&mut direct(*p).ok()?)
                .ok()?;
            let field = |name: &str| master.chunks(2).find(|kv| kv[0] == name).map(|kv| kv[1].as_str());
            let port: u16 = field("port")?.parse().ok()?;
            // Just switched, the new primary may still be flagged `disconnected`: buyers
            // are given it all the same, unless it is down.
            let flags = field("flags")?;
            let up = !flags.contains("s_down") && !flags.contains("o_down") && !flags.contains("failover_in_progress");
            (port != first && up).then_some(port)
        })
    }

    /// Whether any Sentinel names another primary than the first, done or not: a failover
    /// under way or over, which sim must not race with its own promotion.
    fn switched(&self) -> bool {
        let first = self.fronts[0].addr().port().to_string();
        self.sentinels.iter().any(|p| {
            let addr: redis::RedisResult<Vec<String>> = direct(*p).and_then(|mut con| {
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(MASTER)
                    .query(&mut con)
            });
            addr.is_ok_and(|a| a.get(1).is_some_and(|port| *port != first))
        })
    }

    /// Asks the Sentinels in turn to fail over now: the one that took it on, or why none did.
    fn ask_failover(&self) -> Result<u16, String> {
        let mut why = String::from("no Sentinel answers");
        for &port in &self.sentinels {
            let answer = direct(port).and_then(|mut con| {
                redis::cmd("SENTINEL")
                    .arg("FAILOVER")
                    .arg(MASTER)
                    .query::<String>(&mut con)
            });
            match answer {
                Ok(_) => return Ok(port),
                Err(e) => why = e.to_string(),
            }
        }
        Err(why)
    }

    /// Whether the Sentinel on `port` is still failing over: one that took a failover on
    /// may give it up (`-failover-abort-no-good-slave`) after it said yes.
    fn failing_over(&self, port: u16) -> bool {
        let master: redis::RedisResult<Vec<String>> =
            direct(port).and_then(|mut con| redis::cmd("SENTINEL").arg("MASTER").arg(MASTER).query(&mut con));
        master.is_ok_and(|m| {
            m.chunks(2)
                .any(|kv| kv[0] == "flags" && kv[1].contains("failover_in_progress"))
        })
    }

    /// Promotes the replica furthest along (`REPLICAOF NO ONE`), points the others and the
    /// Sentinels at it; its front port.
    fn promote_by_hand(&self) -> Result<u16> {
        let mut best: Option<(i64, usize)> = None;
        for (i, &port) in self.ports.iter().enumerate().skip(1) {
            let Ok(mut con) = direct(port) else { continue };
            let info: String = redis::cmd("INFO").arg("replication").query(&mut con)?;
            let offset = info
                .lines()
                .find_map(|l| l.strip_prefix("slave_repl_offset:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(-1);
            if best.is_none_or(|(o, _)| offset > o) {
                best = Some((offset, i));
            }
        }
        let Some((_, chosen)) = best else {
            bail!("no replica answers to be promoted")
        };
        redis::cmd("REPLICAOF")
            .arg("NO")
            .arg("ONE")
            .query::<String>(&mut direct(self.ports[chosen])?)?;
        let front = self.fronts[chosen].addr().port();
        for (_, &port) in self.ports.iter().enumerate().skip(1).filter(|&(i, _)| i != chosen) {
            if let Ok(mut con) = direct(port) {
                let _ = redis::cmd("REPLICAOF")
                    .arg("127.0.0.1")
                    .arg(front)
                    .query::<String>(&mut con);
            }
        }
        for &p in &self.sentinels {
            let Ok(mut con) = direct(p) else { continue };
            let _ = redis::cmd("SENTINEL")
                .arg("REMOVE")
                .arg(MASTER)
                .query::<String>(&mut con);
            let _ = redis::cmd("SENTINEL")
                .arg("MONITOR")
                .arg(MASTER)
                .arg("127.0.0.1")
                .arg(front)
                .arg(2)
                .query::<String>(&mut con);
            let _ = redis::cmd("SENTINEL")
                .arg("SET")
                .arg(MASTER)
                .arg("down-after-milliseconds")
                .arg(DOWN_AFTER_MS)
                .query::<String>(&mut con);
        }
        Ok(front)
    }
}

impl Drop for Group {
    /// The Sentinels go first, or they would fail over as the primary stops.
    fn drop(&mut self) {
        for sentinel in &mut self.sentinels {
            sentinel.stop();
        }
        for node in self.nodes.iter_mut().rev() {
            node.stop();
        }
    }
}

/// Whether the Sentinel on `port` watches a primary that is up, with `replicas` replicas
/// and two other Sentinels.
fn sentinel_sees(port: u16, replicas: usize) -> Result<()> {
    let mut con = direct(port)?;
    let master: Vec<String> = redis::cmd("SENTINEL").arg("MASTER").arg(MASTER).query(&mut con)?;
    let field = |name: &str| {
        master
            .chunks(2)
            .find(|kv| kv[0] == name)
            .map(|kv| kv[1].clone())
            .unwrap_or_default()
    };
    let seen: Vec<Vec<String>> = redis::cmd("SENTINEL").arg("REPLICAS").arg(MASTER).query(&mut con)?;
    let up = seen
        .iter()
        .filter(|r| r.chunks(2).any(|kv| kv[0] == "flags" && kv[1] == "slave"))
        .count();
    if field("flags") != "master" || up < replicas || field("num-other-sentinels") != "2" {
        bail!(
            "the Sentinel sees a primary flagged {:?}, {up} of {replicas} replicas up and {} other Sentinels",
            field("flags"),
            field("num-other-sentinels")
        );
    }
    Ok(())
}

/// The group a run keeps its stock on, started again after a trial that broke it.
pub struct Replicated {
    /// Declared before the wiring: its servers stop before the proxies close.
    group: RefCell<Option<Group>>,
    wiring: Wiring,
    url: String,
    program: PathBuf,
    home: PathBuf,
    shape: Shape,
    name: String,
    /// A fault hit it in the last trial: it is started afresh before the next.
    disturbed: Cell<bool>,
    /// The Sentinel that took this trial's failover on, once one has.
    asked: Cell<Option<u16>>,
}

impl Replicated {
    /// Starts a group of `shape` in `home`, with `program` as `redis-server`; sim's keys
    /// are named with `name`.
    pub fn start(program: PathBuf, home: PathBuf, shape: Shape, name: String) -> Result<Replicated> {
        let mut tries = 0;
        let (wiring, group) = loop {
            let wiring = Wiring::new(&shape)?;
            match Group::start(&program, &home, &shape, &wiring) {
                Ok(group) => break (wiring, group),
                // Ports chosen afresh, a few times.
                Err(e) if e.is::<PortTaken>() && tries < 3 => tries += 1,
                Err(e) => return Err(e.context("starting the throwaway Redis group")),
            }
        };
        Ok(Replicated {
            url: wiring.url(),
            group: RefCell::new(Some(group)),
            wiring,
            program,
            home,
            shape,
            name,
            disturbed: Cell::new(false),
            asked: Cell::new(None),
        })
    }
}

impl Service for Replicated {
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
        self.asked.set(None);
        // The old group stops before the new one starts on the same ports.
        self.group.borrow_mut().take();
        self.wiring.heal();
        for i in 0..=self.shape.replicas {
            let _ = std::fs::remove_dir_all(self.home.join(format!("redis-{i}")));
        }
        let group = Group::start(&self.program, &self.home, &self.shape, &self.wiring)
            .context("starting the Redis group again after a fault")?;
        *self.group.borrow_mut() = Some(group);
        Ok(())
    }

    fn nemesis(&self) -> Option<&dyn Nemesis> {
        Some(self)
    }
}

impl Nemesis for Replicated {
    fn cut_replicas(&self) {
        self.disturbed.set(true);
        self.wiring.replication.cut();
    }

    fn heal_replicas(&self) {
        self.wiring.replication.heal();
    }

    fn kill_primary(&self) -> Result<()> {
        self.disturbed.set(true);
        if let Some(group) = self.group.borrow_mut().as_mut() {
            group.nodes[0].kill();
        }
        Ok(())
    }

    fn promotion(&self, waited: Duration) -> Result<Option<String>> {
        let by_hand = |why: String| -> Result<Option<String>> {
            let port = self.wiring.promote_by_hand()?;
            Ok(Some(format!(
                "{why}; sim promoted the replica at 127.0.0.1:{port} with REPLICAOF NO ONE"
            )))
        };
        let leader = match self.asked.get() {
            Some(leader) => leader,
            // At once, as an orchestrator would: a Sentinel chooses the replica furthest
            // along and points the others at it. It refuses a replica cut off for longer
            // than ten times down-after: sim then promotes the one furthest along itself.
            None => match self.wiring.ask_failover() {
                Ok(leader) => {
                    self.asked.set(Some(leader));
                    leader
                }
                Err(refusal) => return by_hand(format!("the Sentinels refused ({refusal})")),
            },
        };
        if let Some(port) = self.wiring.promoted() {
            return Ok(Some(format!(
                "SENTINEL FAILOVER promoted the replica at 127.0.0.1:{port}"
            )));
        }
        // Given up: no Sentinel fails over, nor names another primary (a Sentinel names the
        // replica it promotes as soon as it is promoted, before the others follow).
        let given_up = waited >= GIVE_UP_LOOK && !self.wiring.failing_over(leader) && !self.wiring.switched();
        if given_up || (waited >= SENTINEL_LIMIT && !self.wiring.switched()) {
            return by_hand(format!(
                "the Sentinel that took the failover on gave it up, or had not finished it in {} s",
                SENTINEL_LIMIT.as_secs()
            ));
        }
        Ok(None)
    }

    fn partition_primary(&self) {
        self.disturbed.set(true);
        self.wiring.fronts[0].partition();
        self.wiring.replication.partition();
    }

    fn heal_primary(&self) {
        self.wiring.fronts[0].heal();
        self.wiring.replication.heal();
    }
}
