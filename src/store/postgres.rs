//! The `postgres` store: the stock is a row of a table in PostgreSQL, as a shop's inventory
//! is. Reads and writes are statements, each its own transaction unless a strategy opens one;
//! the store also offers a one-step decrement-if-positive (`UPDATE … WHERE n > 0
//! RETURNING`), a compare-and-set (`UPDATE … WHERE n = $read`), a fenced write (`UPDATE …
//! WHERE token <= $token`), transactions at each isolation level, row locks and advisory
//! locks.
//!
//! Every statement that lowers the stock also inserts the sale into a sales table, in the
//! same statement: the store's own record of what it sold, saved after each trial as
//! `sales.jsonl` for the checker to hold against what the buyers were told.
//!
//! With no `[stock] url`, the run has a throwaway server: `initdb` into `server/postgres` of
//! the output folder (or, when the `postgres` user that runs it cannot reach that folder,
//! into the run's short folder under /tmp), then `postgres` on a Unix socket only, with fsync
//! off, stopped (fast shutdown, SIGINT) and removed after the last trial; with `[stock]
//! replicas`, a primary and its streaming standbys ([`postgres_group`]). With a url, sim
//! uses the user's server and makes only its two tables, named after the run, dropped at the
//! end.
//!
//! The runner's setup and checks go through the `postgres` crate; each worker's statements
//! through [`pgwire`](super::pgwire), a lighter client of its own.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use postgres::error::SqlState;
use postgres::{Client, NoTls};

use super::pgwire::{self, Statement};
use super::postgres_group;
use super::server::{self, Restartable, Served, Server, SocketDir, WatcherStopper};
use super::{Conflict, FileStock, Indeterminate, Leases, Reading, Service, Stock, Store, Transactions};
use crate::checker::FinalStock;
use crate::checker::RecordedSale;
use crate::history::{Recorder, Role};
use crate::plan::{Fixture, TrialPlan};
use crate::scenario::{Isolation, Scenario, mask_password};
use crate::sys::process::Signal;

/// The package that holds the server's binaries.
const PACKAGE: &str = "postgresql";
/// The superuser the throwaway server is made with.
pub(super) const USER: &str = "sim";
/// How long a throwaway server may take to accept connections.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// The port in the name of a single throwaway server's socket.
const PORT: u16 = 5432;
/// The environment variable that names the folder of `initdb` and `postgres`, instead of
/// looking for them.
pub const BIN_VARIABLE: &str = "SIM_POSTGRES_BIN";

/// The `postgres` store.
pub struct PostgresStore;

/// What a throwaway server's data folder takes on disk, at most, as [`Store::disk_need`] says.
const THROWAWAY_DATA: u64 = 64 << 20;

impl Store for PostgresStore {
    /// A throwaway server's data folder: 39 MiB after `initdb` (PostgreSQL 15, `du -s`), and
    /// its write-ahead log's first segments as it runs.
    fn disk_need(&self, scenario: &Scenario) -> u64 {
        match scenario.stock.url {
            Some(_) => 0,
            None => THROWAWAY_DATA * (1 + scenario.stock.replicas as u64),
        }
    }

    fn start(&self, scenario: &Scenario, out: &Path) -> Result<Box<dyn Service>> {
        let name = format!(
            "sim_{}_{}",
            std::process::id(),
            crate::sys::clock::now_ns() % 1_000_000_007
        );
        let workers = super::connections(scenario);
        let service: Box<dyn Service> = match &scenario.stock.url {
            Some(url) => {
                let mut client = Client::connect(url, NoTls).map_err(|e| {
                    anyhow::anyhow!(
                        "stock.url: cannot connect to {}: {}; check the url, or leave it out for a throwaway server",
                        mask_password(url),
                        describe(&e)
                    )
                })?;
                check_connections(&mut client, workers, &format!("the server at {}", mask_password(url)))?;
                Box::new(Served::users(url.clone(), name, forget))
            }
            None => throwaway(out, name, workers, scenario)?,
        };
        let mut client = connect(service.url())?;
        client
            .batch_execute(&format!(
                "CREATE TABLE {n}_stock (id int PRIMARY KEY, n bigint NOT NULL, token bigint NOT NULL DEFAULT 0);
                 CREATE TABLE {n}_sales (seq bigserial PRIMARY KEY, worker text NOT NULL, idx int NOT NULL, ticket bigint NOT NULL);
                 CREATE TABLE {n}_lease (id int PRIMARY KEY, holder int NOT NULL DEFAULT 0, expires timestamptz, token bigint NOT NULL DEFAULT 0);
                 INSERT INTO {n}_stock (id, n) VALUES (1, 0);
                 INSERT INTO {n}_lease (id) VALUES (1);",
                n = service.name()
            ))
            .map_err(|e| anyhow::anyhow!("making sim's tables: {}", describe(&e)))?;
        Ok(service)
    }

    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        FileStock::create(&plan.stock_path, plan.initial_stock)?;
        let fail = |e: postgres::Error| io::Error::other(describe(&e));
        let mut client = Client::connect(&super::url(plan), NoTls).map_err(fail)?;
        let n = &plan.store_name;
        client
            .batch_execute(&format!(
                "UPDATE {n}_stock SET n = {}, token = 0 WHERE id = 1; TRUNCATE {n}_sales; \
                 UPDATE {n}_lease SET holder = 0, expires = NULL, token = 0 WHERE id = 1;",
                plan.initial_stock
            ))
            .map_err(fail)?;
        Ok(Box::new(WatcherStopper::new(plan)))
    }

    fn servers(&self, scenario: &Scenario) -> &'static [Role] {
        server::watchers(scenario)
    }

    fn serve(&self, plan: &TrialPlan, _role: Role, recorder: &mut Recorder) -> Result<()> {
        let mut client = Client::connect(&super::url(plan), NoTls).map_err(|e| anyhow::anyhow!(describe(&e)))?;
        server::watch(plan, recorder, || client.simple_query("SELECT 1").is_ok())
    }

    fn open(&self, plan: &TrialPlan, role: Role, index: u32) -> io::Result<Box<dyn Stock>> {
        let session = Session {
            url: super::url(plan),
            name: plan.store_name.clone(),
            deadline_ms: plan.deadline_ms,
            reconnect: plan.reconnect,
        };
        let (client, statements) = session.connect()?;
        Ok(Box::new(Row {
            client,
            statements,
            worker: role.name(),
            index: index as i32,
            advisory_key: advisory_key(&plan.store_name),
            session,
            cut_off: false,
            last_ticket: i64::MAX,
        }))
    }

    fn final_stock(&self, plan: &TrialPlan) -> FinalStock {
        match final_stock(plan) {
            Ok(count) => super::kept_in_file(plan, count),
            Err(e) => FinalStock::Unreadable(format!("(cannot read the stock row: {e:#})")),
        }
    }
}

/// Refuses a server that would refuse some of the trial's connections.
fn check_connections(client: &mut Client, workers: u64, server: &str) -> Result<()> {
    let row = client
        .query_one(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int",
            &[],
        )
        .map_err(|e| anyhow::anyhow!("asking {server} for max_connections: {}", describe(&e)))?;
    let available: i32 = row.get(0);
    if workers > available.max(0) as u64 {
        bail!(
            "buyers.count: a trial needs {workers} connections at once (its buyers, and sim's own), and {server} \
             takes {available} (max_connections less the ones reserved for superusers): lower buyers.count, use \
             buyers.pool, or raise max_connections"
        );
    }
    Ok(())
}

/// Where a run's throwaway servers live: their programs, the user they run as, their socket
/// folder, the folder of their logs, and the folder their data folders go in.
#[derive(Clone)]
pub(super) struct Home {
    pub bin: PathBuf,
    pub run_as: Option<server::RunAs>,
    /// The socket folder, which the [`SocketDir`] made with the home removes.
    pub socket: PathBuf,
    pub logs: PathBuf,
    pub data: PathBuf,
}

impl Home {
    /// Makes the folders of `out`'s throwaway servers, whose programs are `programs`; the
    /// socket folder is removed when the [`SocketDir`] is dropped.
    fn make(out: &Path, programs: &[&str]) -> Result<(Home, SocketDir)> {
        let bin = binaries(programs)?;
        let run_as = server::run_as("postgres", PACKAGE)?;
        let socket = SocketDir::make("pg", run_as)?;
        // Absolute: the server's programs run in `/`, where a relative --out means nothing.
        let logs = std::path::absolute(out.join("server")).with_context(|| format!("finding {}", out.display()))?;
        std::fs::create_dir_all(&logs).with_context(|| format!("making {}", logs.display()))?;
        // The data folders belong in the output; a `postgres` user that cannot reach it (an
        // output folder under /root, a private temporary folder) gets them beside the socket.
        let data = match server::reachable(&logs, run_as) {
            true => logs.clone(),
            false => socket.0.clone(),
        };
        let home = Home {
            bin,
            run_as,
            socket: socket.0.clone(),
            logs,
            data,
        };
        Ok((home, socket))
    }

    /// Makes the empty data folder `data`, removing one an earlier run left.
    pub fn fresh_data(&self, data: &Path) -> Result<()> {
        if data.exists() {
            std::fs::remove_dir_all(data).with_context(|| format!("removing the earlier run's {}", data.display()))?;
        }
        server::make_private_dir(data, self.run_as).with_context(|| format!("making {}", data.display()))
    }

    /// Runs `program` of the server's (`initdb`, `pg_basebackup`, `pg_ctl`) to its end, as
    /// the server's user, its output in `log` of the logs' folder.
    pub fn run(&self, program: &str, args: &[&std::ffi::OsStr], log: &str) -> Result<()> {
        let mut command = Command::new(self.bin.join(program));
        command.args(args);
        server::run_to_end(command, self.run_as, &self.logs.join(log))
    }

    /// A new cluster in `data` (`initdb`), whose superuser is sim's.
    fn initdb(&self, data: &Path) -> Result<()> {
        self.fresh_data(data)?;
        let args = ["-D".as_ref(), data.as_os_str()]
            .into_iter()
            .chain(["-A", "trust", "-N", "--no-locale", "-E", "UTF8", "-U", USER].map(std::ffi::OsStr::new))
            .collect::<Vec<_>>();
        if let Err(e) = self.run("initdb", &args, "initdb.log") {
            // Half a data folder is of no use to anyone: its log says what went wrong.
            let _ = std::fs::remove_dir_all(data);
            return Err(e.context("making the throwaway PostgreSQL server"));
        }
        Ok(())
    }

    /// The server on `data`, answering on its socket `port` with `settings`, its output in
    /// `log` of the logs' folder.
    pub fn spawn(&self, data: &Path, port: u16, settings: &[String], log: &str) -> Result<Server> {
        let mut postgres = Command::new(self.bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(data)
            .arg("-k")
            .arg(&self.socket)
            .args(["-p", &port.to_string()]);
        for setting in settings {
            postgres.arg("-c").arg(setting);
        }
        Server::spawn(postgres, self.run_as, &self.logs.join(log), Signal::INT).context("starting PostgreSQL")
    }

    /// The url of the server on socket `port`.
    pub fn url(&self, port: u16) -> String {
        format!("host={} port={port} user={USER} dbname=postgres", self.socket.display())
    }
}

/// The settings of a throwaway server for `workers` connections; `durable` when what it
/// acknowledged must survive its kill.
fn settings(workers: u64, durable: bool) -> Vec<String> {
    let max_connections = (workers + 10).max(100);
    let durable = if durable { "on" } else { "off" };
    vec![
        "listen_addresses=".to_string(),
        format!("max_connections={max_connections}"),
        format!("fsync={durable}"),
        format!("full_page_writes={durable}"),
        // Its dynamic shared memory in the data folder, not /dev/shm: nothing outside it.
        "dynamic_shared_memory_type=mmap".into(),
        "unix_socket_permissions=0700".into(),
    ]
}

/// Waits until the server on `url` answers, unless it exits first.
pub(super) fn await_answer(process: &mut Server, url: &str, log: &Path) -> Result<Client> {
    server::await_ready(process, READY_LIMIT, log, || {
        Client::connect(url, NoTls).map_err(|e| anyhow::anyhow!("connecting: {}", describe(&e)))
    })
}

/// Starts the run's throwaway servers: one, or a primary with `replicas` standbys.
fn throwaway(out: &Path, name: String, workers: u64, scenario: &Scenario) -> Result<Box<dyn Service>> {
    let replicas = scenario.stock.replicas;
    let programs: &[&str] = match replicas {
        0 => &["initdb", "postgres"],
        _ => &["initdb", "postgres", "pg_basebackup", "pg_ctl"],
    };
    let (home, socket) = Home::make(out, programs)?;
    let data = home.data.join(match replicas {
        0 => "postgres".to_string(),
        _ => format!("postgres-{}", postgres_group::PRIMARY),
    });
    home.initdb(&data)?;
    let data_kept = data.clone();
    // A throwaway server: what it holds is lost with it anyway, unless it is to be killed
    // and started again, when what it acknowledged must survive.
    let settings = settings(workers, scenario.faults.kill_store);
    if replicas > 0 {
        let shape = postgres_group::Shape {
            replicas,
            synchronous: scenario.stock.synchronous,
            settings,
            proxied: scenario.faults.partition_ms > 0 || scenario.faults.latency_ms > 0,
            latency: Duration::from_millis(scenario.faults.latency_ms),
        };
        return Ok(Box::new(postgres_group::Standbys::start(home, socket, shape, name)?));
    }
    let url = home.url(PORT);
    let ready_url = url.clone();
    let start = move || -> Result<Server> {
        await_old_backends(&data);
        let mut process = home.spawn(&data, PORT, &settings, "postgres.log")?;
        await_answer(&mut process, &ready_url, &home.logs.join("postgres.log"))
            .context("starting the throwaway PostgreSQL server")?;
        Ok(process)
    };
    let kept = data_kept.clone();
    Ok(Box::new(Served::throwaway(
        url,
        name,
        Restartable::new(Box::new(start))?,
        socket,
        Some(kept),
    )))
}

/// Waits until no process of a killed server is attached to its System V interlock segment
/// (named in the data folder's `postmaster.pid`): the server started again then finds it
/// unused and removes it. Started while the old backends still hold it, it would fail, lose
/// the file that names the segment, and leave the segment behind.
fn await_old_backends(data: &Path) {
    let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return; // a clean start: nothing to wait for
    };
    // Line 7 holds the segment's key and id.
    let Some(shmid) = text
        .lines()
        .nth(6)
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|id| id.parse::<i32>().ok())
    else {
        return;
    };
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < until {
        if crate::sys::shm::sysv_attached(shmid).unwrap_or(0) == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The folder of `initdb` and `postgres`: `SIM_POSTGRES_BIN`, the newest Debian install, or
/// `PATH`.
fn binaries(programs: &[&str]) -> Result<PathBuf> {
    let named = programs.join(", ");
    if let Some(dir) = std::env::var_os(BIN_VARIABLE) {
        let dir = PathBuf::from(dir);
        return match programs.iter().all(|p| dir.join(p).is_file()) {
            true => Ok(dir),
            false => bail!(missing(&format!(
                "{BIN_VARIABLE}={} does not hold all of {named}",
                dir.display()
            ))),
        };
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort_by_key(|p| {
        let version = p
            .parent()
            .and_then(|v| v.file_name())
            .map(|v| v.to_string_lossy().into_owned());
        std::cmp::Reverse(version.and_then(|v| v.parse::<u32>().ok()).unwrap_or(0))
    });
    server::find_binaries(versions, programs)
        .ok_or_else(|| anyhow::anyhow!(missing(&format!("{named} are not all installed"))))
}

fn missing(what: &str) -> String {
    format!(
        "stock.store = \"postgres\" starts a throwaway PostgreSQL server, and {what}: install the Debian package \
         {PACKAGE} (apt-get install {PACKAGE}), or set [stock] url = \"postgres://…\" to a server of your own"
    )
}

/// A connection to the run's server, for its set-up; errors name the url, masked.
fn connect(url: &str) -> Result<Client> {
    Client::connect(url, NoTls).map_err(|e| anyhow::anyhow!("connecting to {}: {}", mask_password(url), describe(&e)))
}

/// Removes sim's tables from the user's server at the end of the run.
fn forget(url: &str, name: &str) {
    if let Ok(mut client) = connect(url) {
        let _ = client.batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}_stock, {name}_sales, {name}_lease"
        ));
    }
}

/// The final count, and the sales record saved into the trial's folder.
fn final_stock(plan: &TrialPlan) -> Result<i64> {
    let mut client = Client::connect(&super::url(plan), NoTls).map_err(|e| anyhow::anyhow!(describe(&e)))?;
    let n = &plan.store_name;
    let count: i64 = client
        .query_one(&format!("SELECT n FROM {n}_stock WHERE id = 1"), &[])
        .map_err(|e| anyhow::anyhow!(describe(&e)))?
        .get(0);
    let rows = client
        .query(&format!("SELECT worker, idx, ticket FROM {n}_sales ORDER BY seq"), &[])
        .map_err(|e| anyhow::anyhow!(describe(&e)))?;
    let sales = rows.into_iter().map(|row| {
        let (worker, index, ticket): (String, i32, i64) = (row.get(0), row.get(1), row.get(2));
        RecordedSale {
            worker,
            index: index as i64,
            ticket,
        }
    });
    super::write_sales(&plan.trial_dir, sales)?;
    Ok(count)
}

/// The advisory lock's key, from the table's name.
fn advisory_key(name: &str) -> i64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) as i64
}

/// What a worker needs to connect, again if the server cut it off.
struct Session {
    url: String,
    name: String,
    deadline_ms: u64,
    /// A lost primary is found again (a multi-host url with
    /// `target_session_attrs=read-write`) for the next purchase, and the purchase it was
    /// lost in is indeterminate.
    reconnect: bool,
}

impl Session {
    /// A connection with the server's timeouts set, and the statements prepared on it.
    fn connect(&self) -> io::Result<(pgwire::Client, Statements)> {
        let mut client = pgwire::Client::connect(&self.url).map_err(to_io)?;
        // A buyer paused inside its transaction is cut off by the server well before the
        // trial's deadline, and its lock given back, so that the others go on; one waiting
        // for a lock longer than that rolls back and tries again.
        let idle = (self.deadline_ms / 4).max(1);
        let lock = (self.deadline_ms / 2).max(1);
        client
            .batch_execute(&format!(
                "SET idle_in_transaction_session_timeout = {idle}; SET lock_timeout = {lock}"
            ))
            .map_err(to_io)?;
        let n = &self.name;
        let mut prepare = |sql: String| client.prepare(&sql).map_err(to_io);
        // Each statement that lowers the stock records the sale in the same statement; the
        // worker and its index are the parameters from `$k` on.
        let sale = |update: String, ticket: &str, k: u32| {
            format!(
                "WITH u AS ({update} RETURNING n) INSERT INTO {n}_sales (worker, idx, ticket) \
                 SELECT ${k}::text, ${}::int, ({ticket})::bigint FROM u",
                k + 1
            )
        };
        let statements = Statements {
            read: prepare(format!("SELECT n FROM {n}_stock WHERE id = 1"))?,
            read_locked: prepare(format!("SELECT n FROM {n}_stock WHERE id = 1 FOR UPDATE"))?,
            write: prepare(sale(format!("UPDATE {n}_stock SET n = $1 WHERE id = 1"), "$1 + 1", 2))?,
            compare_and_set: prepare(sale(
                format!("UPDATE {n}_stock SET n = $1 WHERE id = 1 AND n = $2"),
                "$2",
                3,
            ))?,
            decrement: prepare(format!(
                "WITH u AS (UPDATE {n}_stock SET n = n - 1 WHERE id = 1 AND n > 0 RETURNING n + 1 AS ticket), \
                 s AS (INSERT INTO {n}_sales (worker, idx, ticket) SELECT $1::text, $2::int, ticket FROM u) \
                 SELECT ticket FROM u"
            ))?,
            fenced_write: prepare(sale(
                format!("UPDATE {n}_stock SET n = $1, token = $2 WHERE id = 1 AND token <= $2"),
                "$1 + 1",
                3,
            ))?,
            // The lease is a row with a holder and an expiry, on the server's clock.
            take_lease: prepare(format!(
                "UPDATE {n}_lease SET holder = $1, expires = clock_timestamp() + make_interval(secs => $2::float8 / 1000), \
                 token = token + 1 WHERE id = 1 AND (holder = 0 OR expires <= clock_timestamp()) RETURNING token"
            ))?,
            lease_left: prepare(format!(
                "SELECT greatest(0, extract(epoch FROM expires - clock_timestamp()) * 1000)::float8 FROM {n}_lease WHERE id = 1"
            ))?,
            give_back: prepare(format!("UPDATE {n}_lease SET holder = 0 WHERE id = 1 AND holder = $1"))?,
            lock_advisory: prepare("SELECT pg_advisory_xact_lock($1::bigint)".into())?,
            lowest_sale: prepare(format!(
                "SELECT coalesce(min(ticket), 0) FROM {n}_sales WHERE worker = $1::text AND idx = $2::int"
            ))?,
        };
        Ok((client, statements))
    }
}

/// The statements a worker prepares once.
struct Statements {
    read: Statement,
    read_locked: Statement,
    write: Statement,
    compare_and_set: Statement,
    decrement: Statement,
    fenced_write: Statement,
    take_lease: Statement,
    lease_left: Statement,
    give_back: Statement,
    lock_advisory: Statement,
    /// The lowest ticket the store's record holds as this worker's.
    lowest_sale: Statement,
}

/// A worker's connection to the stock row.
struct Row {
    client: pgwire::Client,
    statements: Statements,
    worker: &'static str,
    index: i32,
    advisory_key: i64,
    session: Session,
    /// The server ended the session (its idle-in-transaction timeout): connect again before
    /// the next try.
    cut_off: bool,
    /// The last ticket a one-step decrement sold it: the lowest, as the stock only falls.
    last_ticket: i64,
}

impl Row {
    /// Notes a session the server ended, for `rollback` to connect again.
    fn noting<T>(&mut self, result: Result<T, pgwire::Error>) -> io::Result<T> {
        result.map_err(|e| {
            if self.session.reconnect && lost_primary(&e) {
                return self.lost(e);
            }
            // Before COMMIT, a session the server ended (idle in its transaction too long)
            // committed nothing: a conflict, retried on a new connection.
            if e.is_closed() || e.code() == Some(SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT.code()) {
                self.cut_off = true;
                return io::Error::other(Conflict(format!("the server ended the session: {e}")));
            }
            to_io(e)
        })
    }
}

impl Row {
    /// The error of a statement that lost the primary: connects again, through the url, to
    /// the primary found now (trying until the trial's deadline), and tells the purchase as
    /// indeterminate: the statement may have committed.
    fn lost(&mut self, e: pgwire::Error) -> io::Error {
        let until = std::time::Instant::now() + Duration::from_millis(self.session.deadline_ms);
        while std::time::Instant::now() < until {
            if let Ok((client, statements)) = self.session.connect() {
                (self.client, self.statements, self.cut_off) = (client, statements, false);
                break;
            }
            // Each try forks a backend on every standby it asks: not too often.
            std::thread::sleep(Duration::from_millis(25));
        }
        Indeterminate::error(format!("the primary was lost: {e}"), None)
    }

    /// A decrement left indeterminate by a lost primary, with what it found if the primary
    /// found since holds it: its record then has a ticket of this worker's below the last
    /// one it was told (the stock only falls, and the worker sold nothing since), which the
    /// lost decrement sold. Its purchase stays indeterminate, the buyer never told; the
    /// checker knows the value it wrote, which later reads find.
    fn found_after_loss(&mut self, error: io::Error) -> io::Error {
        if !super::is_indeterminate(&error) {
            return error;
        }
        let lowest: Result<i64, _> = self
            .client
            .query_one(&self.statements.lowest_sale, &[&self.worker, &self.index]);
        match lowest {
            Ok(ticket) if ticket > 0 && ticket < self.last_ticket => {
                self.last_ticket = ticket;
                Indeterminate::error(
                    format!("{error}; the new primary's record holds its sale of ticket {ticket}"),
                    Some(ticket),
                )
            }
            _ => error,
        }
    }

    /// The error of a statement outside `noting`: a lost primary, or the store's error.
    fn failed(&mut self, e: pgwire::Error) -> io::Error {
        match self.session.reconnect && lost_primary(&e) {
            true => self.lost(e),
            false => to_io(e),
        }
    }
}

/// Whether a statement's error leaves a buyer without the primary: the connection is gone,
/// or the server shuts down, or takes no writes.
fn lost_primary(e: &pgwire::Error) -> bool {
    let gone = [
        SqlState::READ_ONLY_SQL_TRANSACTION,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
    ];
    e.is_closed() || gone.iter().any(|c| e.code() == Some(c.code()))
}

impl Stock for Row {
    fn read(&mut self) -> io::Result<Reading> {
        let result = self.client.query_one(&self.statements.read, &[]);
        self.noting(result).map(Reading::Value)
    }

    fn write(&mut self, value: i64) -> io::Result<()> {
        let result = self
            .client
            .execute(&self.statements.write, &[&value, &self.worker, &self.index]);
        let updated = self.noting(result)?;
        match updated {
            1 => Ok(()),
            n => Err(io::Error::other(format!("the stock row is missing: {n} rows written"))),
        }
    }

    fn compare_and_set(&mut self, expected: i64, new: i64) -> io::Result<bool> {
        let updated = self
            .client
            .execute(
                &self.statements.compare_and_set,
                &[&new, &expected, &self.worker, &self.index],
            )
            .map_err(|e| self.failed(e))?;
        Ok(updated == 1)
    }

    fn decrement_if_positive(&mut self) -> io::Result<i64> {
        let result = self
            .client
            .query_opt(&self.statements.decrement, &[&self.worker, &self.index]);
        match result {
            Ok(ticket) => {
                let ticket = ticket.unwrap_or(0);
                if ticket > 0 {
                    self.last_ticket = ticket;
                }
                Ok(ticket)
            }
            Err(e) => {
                let error = self.failed(e);
                Err(self.found_after_loss(error))
            }
        }
    }

    fn fenced_write(&mut self, value: i64, token: u64) -> io::Result<bool> {
        let updated = self
            .client
            .execute(
                &self.statements.fenced_write,
                &[&value, &(token as i64), &self.worker, &self.index],
            )
            .map_err(|e| self.failed(e))?;
        Ok(updated == 1)
    }

    fn transactions(&mut self) -> Option<&mut dyn Transactions> {
        Some(self)
    }

    fn leases(&mut self) -> Option<&mut dyn Leases> {
        Some(self)
    }
}

impl Leases for Row {
    fn try_take(&mut self, holder: u32, lease_ms: u64) -> io::Result<Result<u64, Duration>> {
        let granted: Option<i64> = self
            .client
            .query_opt(
                &self.statements.take_lease,
                &[&(holder as i32), &(lease_ms.max(1) as f64)],
            )
            .map_err(|e| self.failed(e))?;
        if let Some(token) = granted {
            return Ok(Ok(token as u64));
        }
        let left: Option<f64> = self
            .client
            .query_one(&self.statements.lease_left, &[])
            .map_err(|e| self.failed(e))?;
        Ok(Err(Duration::from_secs_f64(left.unwrap_or(0.0).max(0.0) / 1e3)))
    }

    fn give_back(&mut self, holder: u32) -> io::Result<()> {
        self.client
            .execute(&self.statements.give_back, &[&(holder as i32)])
            .map(drop)
            .map_err(|e| self.failed(e))
    }
}

impl Transactions for Row {
    fn begin(&mut self, isolation: Isolation) -> io::Result<()> {
        let result = self
            .client
            .batch_execute(&format!("BEGIN ISOLATION LEVEL {}", isolation.sql()));
        self.noting(result)
    }

    fn lock_advisory(&mut self) -> io::Result<()> {
        let result = self
            .client
            .execute(&self.statements.lock_advisory, &[&self.advisory_key]);
        self.noting(result).map(drop)
    }

    fn read_locked(&mut self) -> io::Result<Reading> {
        let result = self.client.query_one(&self.statements.read_locked, &[]);
        self.noting(result).map(Reading::Value)
    }

    fn commit(&mut self) -> io::Result<()> {
        // A connection lost here leaves the outcome unknown: not a conflict to retry.
        match self.client.batch_execute("COMMIT") {
            Err(e) if self.session.reconnect && lost_primary(&e) => Err(self.lost(e)),
            Err(e) if e.is_closed() => Err(io::Error::other(format!(
                "the connection closed during COMMIT, whose outcome is unknown: {e}"
            ))),
            result => self.noting(result),
        }
    }

    fn rollback(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.cut_off) {
            // The server rolled the transaction back as it ended the session: a new one.
            (self.client, self.statements) = self.session.connect()?;
            return Ok(());
        }
        self.client.batch_execute("ROLLBACK").map_err(to_io)
    }
}

/// The server's error in one line: its message and SQLSTATE, or what failed on the way.
pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

/// A serialization failure, a deadlock, a lock waited for too long and a session ended for
/// idling in its transaction abort the transaction: a [`Conflict`], to retry. The rest are
/// errors.
fn to_io(e: pgwire::Error) -> io::Error {
    let conflict = [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
    ]
    .iter()
    .any(|c| e.code() == Some(c.code()));
    match conflict {
        true => io::Error::other(Conflict(e.to_string())),
        false => io::Error::other(e.to_string()),
    }
}
