//! The `redis` store: the stock is a key in Redis, as a flash sale's counter is. A read is a
//! `GET` and a write a `SET`; the store also offers a one-step decrement-if-positive and a
//! fenced write (Lua scripts, which Redis runs atomically, called by `EVALSHA`), and a
//! compare-and-set (`WATCH`, `GET`, then `MULTI`/`SET`/`EXEC`, which Redis aborts when the
//! watched key changed in between).
//!
//! Every step that lowers the stock also appends the sale to a list, in the same script or
//! `MULTI`: the store's own record of what it sold, saved after each trial as `sales.jsonl`.
//!
//! With no `[stock] url`, the run has a throwaway server: `redis-server` on a Unix socket in
//! the run's short folder under /tmp, with no port, no snapshots and no append-only file,
//! stopped (SIGTERM) after the last trial. With a url, sim uses the user's server and makes
//! only keys named after the run, deleted at the end.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use redis::{Connection, Script, Value};

use super::redis_group::{Replicated, Shape};
use super::server::{self, Restartable, Served, Server, SocketDir, WatcherStopper};
use super::{FileStock, Indeterminate, Leases, Reading, Service, Stock, Store};
use crate::checker::FinalStock;
use crate::checker::RecordedSale;
use crate::history::{Recorder, Role};
use crate::plan::{Fixture, TrialPlan};
use crate::scenario::{Scenario, mask_password};
use crate::sys::process::Signal;

/// The package that holds the server.
const PACKAGE: &str = "redis-server";
/// How long a sale waits for `[stock] wait_replicas` replicas to confirm it (`WAIT`)
/// before it is told as indeterminate.
pub const WAIT_MS: u64 = 100;
/// How long a throwaway server may take to answer.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// The environment variable that names the `redis-server` to start, instead of looking for
/// it.
pub const BIN_VARIABLE: &str = "SIM_REDIS_SERVER";

/// Sets the stock and records the sale: KEYS stock, sales; ARGV value, sale.
const WRITE: &str = "redis.call('SET', KEYS[1], ARGV[1]) redis.call('RPUSH', KEYS[2], ARGV[2]) return 1";
/// Takes one ticket if there is one and records the sale; the count it found.
pub const DECREMENT: &str = "local n = tonumber(redis.call('GET', KEYS[1])) \
    if n > 0 then redis.call('SET', KEYS[1], n - 1) redis.call('RPUSH', KEYS[2], ARGV[1] .. ' ' .. n) end \
    return n";
/// Writes the stock unless a newer token was accepted: KEYS stock, sales, token; ARGV value,
/// token, sale.
const FENCED_WRITE: &str = "if tonumber(ARGV[2]) >= tonumber(redis.call('GET', KEYS[3])) then \
    redis.call('SET', KEYS[3], ARGV[2]) redis.call('SET', KEYS[1], ARGV[1]) redis.call('RPUSH', KEYS[2], ARGV[3]) \
    return 1 end return 0";

/// Takes the lease if nobody holds it (`SET NX PX`) and grants the next token; else how many
/// milliseconds it has left, negated: KEYS lease, lease token; ARGV holder, lease_ms.
const TAKE_LEASE: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then \
    return redis.call('INCR', KEYS[2]) end return -math.max(redis.call('PTTL', KEYS[1]), 0)";
/// Deletes the lease if the holder still holds it: KEYS lease; ARGV holder.
const GIVE_BACK: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/// The `redis` store.
pub struct RedisStore;

impl Store for RedisStore {
    fn start(&self, scenario: &Scenario, out: &Path) -> Result<Box<dyn Service>> {
        let name = format!(
            "sim:{}:{}",
            std::process::id(),
            crate::sys::clock::now_ns() % 1_000_000_007
        );
        let service = match &scenario.stock.url {
            Some(url) => {
                let mut con = connect(url).map_err(|e| {
                    anyhow::anyhow!(
                        "stock.url: cannot connect to {}: {e}; check the url, or leave it out for a throwaway server",
                        mask_password(url)
                    )
                })?;
                // A server that does not say (CONFIG may be disabled) is taken at its word.
                let said: redis::RedisResult<Vec<String>> =
                    redis::cmd("CONFIG").arg("GET").arg("maxclients").query(&mut con);
                let maxclients = said.ok().and_then(|v| v.get(1).and_then(|n| n.parse::<u64>().ok()));
                let needed = super::connections(scenario);
                if let Some(max) = maxclients
                    && needed > max
                {
                    bail!(
                        "buyers.count: a trial needs {needed} connections at once (its buyers, and sim's own), and the \
                         server at {} takes {max} (maxclients): lower buyers.count, use buyers.pool, or raise maxclients",
                        mask_password(url)
                    );
                }
                Served::users(url.clone(), name, forget)
            }
            None if scenario.stock.proxied(&scenario.faults) => {
                let shape = Shape {
                    replicas: scenario.stock.replicas,
                    min_replicas_to_write: scenario.stock.min_replicas_to_write,
                    latency: Duration::from_millis(scenario.faults.latency_ms),
                };
                let home = out.join("server");
                std::fs::create_dir_all(&home).with_context(|| format!("making {}", home.display()))?;
                // The servers run in /, and their folders are named to them: absolute.
                let home = home
                    .canonicalize()
                    .with_context(|| format!("finding {}", home.display()))?;
                return Ok(Box::new(Replicated::start(program()?, home, shape, name)?));
            }
            None => throwaway(out, name)?,
        };
        Ok(Box::new(service))
    }

    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        FileStock::create(&plan.stock_path, plan.initial_stock)?;
        let mut con = connect(&super::url(plan)).map_err(io::Error::other)?;
        let keys = Keys::of(&plan.store_name);
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(&keys.sales)
            .cmd("SET")
            .arg(&keys.stock)
            .arg(plan.initial_stock)
            .cmd("SET")
            .arg(&keys.token)
            .arg(0)
            .cmd("DEL")
            .arg(&keys.lease)
            .cmd("SET")
            .arg(&keys.lease_token)
            .arg(0)
            .query::<Value>(&mut con)
            .map_err(io::Error::other)?;
        Ok(Box::new(WatcherStopper::new(plan)))
    }

    fn servers(&self, scenario: &Scenario) -> &'static [Role] {
        server::watchers(scenario)
    }

    fn serve(&self, plan: &TrialPlan, _role: Role, recorder: &mut Recorder) -> Result<()> {
        let mut con = connect(&super::url(plan))?;
        server::watch(plan, recorder, || redis::cmd("PING").query::<String>(&mut con).is_ok())
    }

    fn open(&self, plan: &TrialPlan, role: Role, index: u32) -> io::Result<Box<dyn Stock>> {
        let url = super::url(plan);
        let con = connect(&url).map_err(io::Error::other)?;
        Ok(Box::new(Key {
            con,
            url,
            reconnect: plan.reconnect,
            wait_replicas: plan.wait_replicas,
            deadline: Duration::from_millis(plan.deadline_ms),
            keys: Keys::of(&plan.store_name),
            seller: format!("{} {index}", role.name()),
            write: Script::new(WRITE),
            decrement: Script::new(DECREMENT),
            fenced_write: Script::new(FENCED_WRITE),
            take_lease: Script::new(TAKE_LEASE),
            give_back: Script::new(GIVE_BACK),
        }))
    }

    fn final_stock(&self, plan: &TrialPlan) -> FinalStock {
        match final_stock(plan) {
            Ok(count) => super::kept_in_file(plan, count),
            Err(e) => FinalStock::Unreadable(format!("(cannot read the stock key: {e:#})")),
        }
    }
}

/// A connection to the server at `url`, or to the primary that the Sentinels of a
/// `redis+sentinel://` url name.
fn connect(url: &str) -> redis::RedisResult<Connection> {
    let mut con = match sentinels(url) {
        Some((nodes, master, info)) => redis::sentinel::Sentinel::build(nodes)?
            .master_for(&master, Some(&info))?
            .get_connection_with_timeout(Duration::from_secs(2))?,
        None => redis::Client::open(url)?.get_connection()?,
    };
    redis::cmd("PING").query::<String>(&mut con)?;
    Ok(con)
}

/// A connection to the server at `url`, tried again for up to `limit`: the Sentinels may
/// still be settling on a new primary.
fn connect_within(url: &str, limit: Duration) -> redis::RedisResult<Connection> {
    let until = std::time::Instant::now() + limit;
    loop {
        match connect(url) {
            Err(e) if sentinels(url).is_some() && std::time::Instant::now() < until && lost_primary_or_unnamed(&e) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

/// Whether the Sentinels named no primary that answers as one, or the primary was lost.
fn lost_primary_or_unnamed(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::MasterNameNotFoundBySentinel || lost_primary(e)
}

/// The Sentinels of a `redis+sentinel://[user:password@]host:port[,host:port…]/master[/db]`
/// url, the primary's name, and how to reach it (the password and database are the
/// primary's; the Sentinels are asked without).
fn sentinels(url: &str) -> Option<(Vec<String>, String, redis::sentinel::SentinelNodeConnectionInfo)> {
    let rest = url.strip_prefix("redis+sentinel://")?;
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((auth, rest)) => (Some(auth), rest),
        None => (None, rest),
    };
    let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut parts = path.split('/');
    let master = parts.next().filter(|m| !m.is_empty()).unwrap_or("mymaster").to_string();
    let mut info = redis::RedisConnectionInfo::default();
    if let Some(db) = parts.next().and_then(|d| d.parse().ok()) {
        info = info.set_db(db);
    }
    if let Some(auth) = auth {
        let (user, password) = auth.split_once(':').unwrap_or(("", auth));
        if !user.is_empty() {
            info = info.set_username(user);
        }
        if !password.is_empty() {
            info = info.set_password(password);
        }
    }
    let nodes = hosts.split(',').map(|h| format!("redis://{h}/")).collect();
    let node = redis::sentinel::SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
    Some((nodes, master, node))
}

/// Whether a command's error leaves the buyer without the primary: the connection was lost
/// or refused, or the server is no longer a primary that takes writes.
fn lost_primary(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING" | "NOREPLICAS"))
}

/// The keys of a run.
struct Keys {
    stock: String,
    sales: String,
    /// The newest fencing token a fenced write was accepted with.
    token: String,
    lease: String,
    /// The last token the lease was granted with.
    lease_token: String,
}

impl Keys {
    fn of(name: &str) -> Keys {
        Keys {
            stock: format!("{name}:stock"),
            sales: format!("{name}:sales"),
            token: format!("{name}:token"),
            lease: format!("{name}:lease"),
            lease_token: format!("{name}:lease-token"),
        }
    }
}

/// The `redis-server` to start: `SIM_REDIS_SERVER`, or the one installed.
fn program() -> Result<PathBuf> {
    let program = match std::env::var_os(BIN_VARIABLE) {
        Some(path) => PathBuf::from(path),
        None => server::find_binaries([PathBuf::from("/usr/bin")], &["redis-server"])
            .map(|dir| dir.join("redis-server"))
            .ok_or_else(|| anyhow::anyhow!(missing("redis-server is not installed")))?,
    };
    if !program.is_file() {
        bail!(missing(&format!("{} is not there", program.display())));
    }
    Ok(program)
}

/// Starts a throwaway server for the run.
fn throwaway(out: &Path, name: String) -> Result<Served> {
    let program = program()?;
    let socket = SocketDir::make("redis", None)?;
    // Absolute: the server's programs run in `/`, where a relative --out means nothing.
    let home = std::path::absolute(out.join("server")).with_context(|| format!("finding {}", out.display()))?;
    std::fs::create_dir_all(&home).with_context(|| format!("making {}", home.display()))?;
    let path = socket.0.join("redis.sock");
    let log = home.join("redis.log");
    let url = format!("redis+unix://{}", path.display());
    let (dir, ready_url) = (socket.0.clone(), url.clone());
    let start = move || -> Result<Server> {
        let mut command = Command::new(&program);
        command
            .args(["--port", "0", "--unixsocket"])
            .arg(&path)
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir);
        let mut process = Server::spawn(command, None, &log, Signal::TERM).context("starting redis-server")?;
        server::await_ready(&mut process, READY_LIMIT, &log, || {
            connect(&ready_url).map_err(|e| anyhow::anyhow!("connecting: {e}"))
        })
        .context("starting the throwaway Redis server")?;
        Ok(process)
    };
    Ok(Served::throwaway(
        url,
        name,
        Restartable::new(Box::new(start))?,
        socket,
        None,
    ))
}

fn missing(what: &str) -> String {
    format!(
        "stock.store = \"redis\" starts a throwaway Redis server, and {what}: install the Debian package {PACKAGE} \
         (apt-get install {PACKAGE}), or set [stock] url = \"redis://…\" to a server of your own"
    )
}

/// Removes sim's keys from the user's server at the end of the run.
fn forget(url: &str, name: &str) {
    if let Ok(mut con) = connect(url) {
        let keys = Keys::of(name);
        let _ = redis::cmd("DEL")
            .arg(&keys.stock)
            .arg(&keys.sales)
            .arg(&keys.token)
            .arg(&keys.lease)
            .arg(&keys.lease_token)
            .query::<Value>(&mut con);
    }
}

/// The final count, and the sales record saved into the trial's folder.
fn final_stock(plan: &TrialPlan) -> Result<i64> {
    let mut con = connect_within(&super::url(plan), Duration::from_secs(10))?;
    let keys = Keys::of(&plan.store_name);
    let count: Option<i64> = redis::cmd("GET").arg(&keys.stock).query(&mut con)?;
    let sales: Vec<String> = redis::cmd("LRANGE").arg(&keys.sales).arg(0).arg(-1).query(&mut con)?;
    let sales = sales.into_iter().map(|sale| {
        let mut parts = sale.split(' ');
        let (worker, index, ticket) = (parts.next(), parts.next(), parts.next());
        RecordedSale {
            worker: worker.unwrap_or("").to_string(),
            index: index.and_then(|i| i.parse().ok()).unwrap_or(-1),
            ticket: ticket.and_then(|t| t.parse().ok()).unwrap_or(-1),
        }
    });
    super::write_sales(&plan.trial_dir, sales)?;
    // A server without persistence that was killed comes back empty.
    count.ok_or_else(|| anyhow::anyhow!("the stock key is gone: the server lost it"))
}

/// A worker's connection to the stock key.
struct Key {
    con: Connection,
    url: String,
    /// A lost primary is found again (through the Sentinels) for the next purchase, and
    /// the purchase it was lost in is indeterminate.
    reconnect: bool,
    /// Replicas that must confirm each sale (`WAIT`) before the buyer is told.
    wait_replicas: u32,
    /// How long it tries to find the primary again: the trial's deadline.
    deadline: Duration,
    keys: Keys,
    /// `buyer 3`: who a sale in the record is by.
    seller: String,
    write: Script,
    decrement: Script,
    fenced_write: Script,
    take_lease: Script,
    give_back: Script,
}

impl Key {
    fn sale(&self, ticket: i64) -> String {
        format!("{} {ticket}", self.seller)
    }

    /// The error of a failed command. A buyer that reconnects and lost the primary inside
    /// it connects again, to the primary found now, and tells the purchase as
    /// indeterminate: the command may have run.
    fn failed(&mut self, e: redis::RedisError) -> io::Error {
        if !self.reconnect || !lost_primary(&e) {
            return io::Error::other(e);
        }
        let until = std::time::Instant::now() + self.deadline;
        while std::time::Instant::now() < until {
            if let Ok(con) = connect(&self.url) {
                self.con = con;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Indeterminate::error(format!("the primary was lost: {e}"), None)
    }

    /// Waits for `wait_replicas` replicas to confirm what this connection wrote (`WAIT`,
    /// after the script: inside one it does not block). A sale they did not confirm in
    /// time is indeterminate: the primary has it, and may lose it.
    fn confirmed(&mut self) -> io::Result<()> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let acked: redis::RedisResult<i64> = redis::cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(WAIT_MS)
            .query(&mut self.con);
        match acked {
            Ok(n) if n >= self.wait_replicas as i64 => Ok(()),
            Ok(n) => Err(Indeterminate::error(
                format!(
                    "{n} of {} replicas confirmed the sale within {WAIT_MS} ms",
                    self.wait_replicas
                ),
                None,
            )),
            Err(e) => Err(self.failed(e)),
        }
    }
}

impl Stock for Key {
    fn read(&mut self) -> io::Result<Reading> {
        let value: redis::RedisResult<Option<String>> = redis::cmd("GET").arg(&self.keys.stock).query(&mut self.con);
        let value = value.map_err(|e| self.failed(e))?;
        Ok(match value.and_then(|v| v.parse().ok()) {
            Some(n) => Reading::Value(n),
            None => Reading::Unreadable,
        })
    }

    fn write(&mut self, value: i64) -> io::Result<()> {
        let sale = self.sale(value + 1);
        let done = self
            .write
            .key(&self.keys.stock)
            .key(&self.keys.sales)
            .arg(value)
            .arg(sale)
            .invoke::<i64>(&mut self.con);
        done.map_err(|e| self.failed(e))?;
        self.confirmed()
    }

    fn compare_and_set(&mut self, expected: i64, new: i64) -> io::Result<bool> {
        let watched = redis::cmd("WATCH").arg(&self.keys.stock).query::<()>(&mut self.con);
        watched.map_err(|e| self.failed(e))?;
        let now: redis::RedisResult<Option<i64>> = redis::cmd("GET").arg(&self.keys.stock).query(&mut self.con);
        if now.map_err(|e| self.failed(e))? != Some(expected) {
            let unwatched = redis::cmd("UNWATCH").query::<()>(&mut self.con);
            unwatched.map_err(|e| self.failed(e))?;
            return Ok(false);
        }
        let sale = format!("{} {expected}", self.seller);
        // EXEC answers nil when the watched key changed since WATCH: nothing was done.
        let done: redis::RedisResult<Value> = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&self.keys.stock)
            .arg(new)
            .cmd("RPUSH")
            .arg(&self.keys.sales)
            .arg(sale)
            .query(&mut self.con);
        let set = !matches!(done.map_err(|e| self.failed(e))?, Value::Nil);
        if set {
            self.confirmed()?;
        }
        Ok(set)
    }

    fn decrement_if_positive(&mut self) -> io::Result<i64> {
        let found: redis::RedisResult<i64> = self
            .decrement
            .key(&self.keys.stock)
            .key(&self.keys.sales)
            .arg(&self.seller)
            .invoke(&mut self.con);
        let found = found.map_err(|e| self.failed(e))?;
        if found > 0 {
            self.confirmed().map_err(|e| match e.into_inner() {
                Some(inner) => match inner.downcast::<Indeterminate>() {
                    Ok(why) => Indeterminate::error(why.why, Some(found)),
                    Err(other) => io::Error::other(other),
                },
                None => io::Error::other("the confirmation failed"),
            })?;
        }
        Ok(found)
    }

    fn fenced_write(&mut self, value: i64, token: u64) -> io::Result<bool> {
        let sale = self.sale(value + 1);
        let done: redis::RedisResult<i64> = self
            .fenced_write
            .key(&self.keys.stock)
            .key(&self.keys.sales)
            .key(&self.keys.token)
            .arg(value)
            .arg(token)
            .arg(sale)
            .invoke(&mut self.con);
        let written = done.map_err(|e| self.failed(e))? == 1;
        if written {
            self.confirmed()?;
        }
        Ok(written)
    }

    fn leases(&mut self) -> Option<&mut dyn Leases> {
        Some(self)
    }
}

impl Leases for Key {
    fn try_take(&mut self, holder: u32, lease_ms: u64) -> io::Result<Result<u64, Duration>> {
        let answer: redis::RedisResult<i64> = self
            .take_lease
            .key(&self.keys.lease)
            .key(&self.keys.lease_token)
            .arg(holder)
            .arg(lease_ms.max(1))
            .invoke(&mut self.con);
        Ok(match answer.map_err(|e| self.failed(e))? {
            token if token > 0 => Ok(token as u64),
            left => Err(Duration::from_millis(left.unsigned_abs())),
        })
    }

    fn give_back(&mut self, holder: u32) -> io::Result<()> {
        let given: redis::RedisResult<i64> = self.give_back.key(&self.keys.lease).arg(holder).invoke(&mut self.con);
        given.map(drop).map_err(|e| self.failed(e))
    }
}
