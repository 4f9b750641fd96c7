//! Stores: where the stock lives. Each store is one file with a type behind the [`Store`]
//! trait: it writes the initial stock, may add a server process, opens each worker's view of
//! the stock, and reads the final stock for the checker. Adding one is adding that file, its
//! name in [`StoreKind`] (with the operations it offers), and its line in [`registry`].

mod file;
pub mod manager;
mod pgwire;
mod postgres;
mod postgres_group;
pub mod proxy;
pub mod redis;
mod redis_group;
mod server;
pub mod service;
mod shm;

use std::io;
use std::path::Path;

use anyhow::{Result, bail};

pub use file::FileStock;

use crate::checker::{FinalStock, RecordedSale};
use crate::history::{Recorder, Role};
use crate::plan::{Fixture, TrialPlan};
use crate::scenario::{Isolation, Scenario, StoreKind};

/// The store of this kind.
pub fn registry(kind: StoreKind) -> &'static dyn Store {
    match kind {
        StoreKind::File => &file::FileStore,
        StoreKind::Manager => &manager::ManagerStore,
        StoreKind::Shm => &shm::ShmStore,
        StoreKind::Postgres => &postgres::PostgresStore,
        StoreKind::Redis => &redis::RedisStore,
        StoreKind::Service => &service::ServiceStore,
    }
}

/// The environment variable that hands workers the store's url when it holds a password,
/// which `plan.json` never does.
pub const URL_VARIABLE: &str = "SIM_STORE_URL";

/// The url to connect to: the runner's own copy, the one handed to workers in the
/// environment, or the plan's.
pub fn url(plan: &TrialPlan) -> String {
    match &plan.store_secret_url {
        Some(url) => url.clone(),
        None => std::env::var(URL_VARIABLE).unwrap_or_else(|_| plan.store_url.clone()),
    }
}

/// The file of a trial's folder where a store that keeps its own record of sales (a table, a
/// list) saves it at the end of the trial: one JSON object a line, `{"worker": "buyer",
/// "index": 3, "ticket": 10}`, for the checker to hold against what the buyers were told.
pub const SALES_FILE: &str = "sales.jsonl";

/// Saves a store's record of sales into the trial folder `dir`, one JSON object a line.
pub fn write_sales(dir: &Path, sales: impl IntoIterator<Item = RecordedSale>) -> io::Result<()> {
    use std::io::Write;
    let mut file = io::BufWriter::new(std::fs::File::create(dir.join(SALES_FILE))?);
    for sale in sales {
        serde_json::to_writer(&mut file, &sale)?;
        file.write_all(b"\n")?;
    }
    file.flush()
}

/// The store's record of sales saved in the trial folder `dir` (PostgreSQL and Redis), or
/// `None` when the store keeps none.
pub fn read_sales(dir: &Path) -> anyhow::Result<Option<Vec<RecordedSale>>> {
    let path = dir.join(SALES_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    };
    let sales = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| {
                anyhow::anyhow!(
                    "{}, line {}: {e}: a store's record of sales holds one {{\"worker\", \"index\", \"ticket\"}} a line; run the scenario again to rebuild it",
                    path.display(),
                    n + 1
                )
            })
        })
        .collect::<anyhow::Result<Vec<RecordedSale>>>()?;
    Ok(Some(sales))
}

/// The connections a trial may hold at once on a server store: one per buyer process (at
/// the sweep's largest count), a seller's, a watcher's, and the runner's.
pub(crate) fn connections(scenario: &Scenario) -> u64 {
    let b = &scenario.buyers;
    let buyers = scenario
        .sweep
        .as_ref()
        .and_then(|s| s.count.iter().max().copied())
        .unwrap_or(b.count)
        .max(b.count);
    b.pool.unwrap_or(buyers) as u64 + 3
}

/// What a store keeps up for a whole run: a throwaway server, or sim's table on the user's
/// server. Dropping it stops the server or removes the table, on every way out of the run.
pub trait Service {
    /// How workers reach the store: a connection url; empty for a store on this machine.
    fn url(&self) -> &str {
        ""
    }

    /// What sim made on the server for this run is named with it (a table, a key).
    fn name(&self) -> &str {
        ""
    }

    /// The pid of the throwaway server, if there is one (for `[faults] kill_store`).
    fn pid(&self) -> Option<u32> {
        None
    }

    /// Starts the throwaway server again if it died (killed by `[faults] kill_store`):
    /// called before each trial, and after a trial in which it was `killed`, when it first
    /// waits for the server to be gone (a SIGKILL takes a moment to end a process).
    fn revive(&self, _killed: bool) -> Result<()> {
        Ok(())
    }

    /// Before each trial, once the plan is made: readies what the store keeps for the
    /// trial's strategy and fills in what its workers need to reach it (the user's service:
    /// the variant started, once, and its stock reset to the plan's).
    fn begin_trial(&self, _plan: &mut TrialPlan) -> Result<()> {
        Ok(())
    }

    /// What the trial's workers find in their environment: secrets that plan.json never
    /// holds (a url with its password).
    fn environment(&self) -> Vec<(&'static str, String)> {
        match self.url() {
            "" => Vec::new(),
            url => vec![(URL_VARIABLE, url.to_string())],
        }
    }

    /// The final stock, when the store's service is the one that reads it.
    fn final_stock(&self, _plan: &TrialPlan) -> Option<FinalStock> {
        None
    }

    /// What the store's own log says last, for a message about a trial that failed.
    fn log_tail(&self) -> Option<String> {
        None
    }

    /// What the runner's nemesis can break: a throwaway primary with replicas, or a server
    /// behind sim's fault proxy.
    fn nemesis(&self) -> Option<&dyn Nemesis> {
        None
    }
}

/// The faults a store's throwaway servers and their links suffer, as the runner's nemesis
/// drives them (`[faults] failover` and `partition_ms`). Each call returns at once.
pub trait Nemesis {
    /// Cuts every replica off from the primary: their links closed, reconnections refused.
    fn cut_replicas(&self);
    /// Lets the replicas reach the primary again.
    fn heal_replicas(&self);
    /// SIGKILLs the primary.
    fn kill_primary(&self) -> Result<()>;
    /// What promoted a replica, once one is; `waited` since the primary was killed. A store
    /// whose own failover takes too long or refuses promotes one itself.
    fn promotion(&self, waited: std::time::Duration) -> Result<Option<String>>;
    /// Holds all traffic between the primary and its replicas and buyers.
    fn partition_primary(&self);
    /// Lets it through again.
    fn heal_primary(&self);
}

/// The service of a store that needs none.
impl Service for () {}

/// A store, as the runner and the workers know it.
pub trait Store: Sync {
    /// Starts what the store needs for the whole run, before its first trial (a throwaway
    /// server in `out`, or a connection to the user's, tried before anything runs).
    fn start(&self, _scenario: &Scenario, _out: &Path) -> Result<Box<dyn Service>> {
        Ok(Box::new(()))
    }

    /// The bytes its [`Store::start`] puts into the output folder (a throwaway server's data
    /// folder), for the check of the disk's room before a run.
    fn disk_need(&self, _scenario: &Scenario) -> u64 {
        0
    }

    /// Writes the plan's initial stock and makes what must exist before the gate opens.
    /// Dropping the fixture removes what was made.
    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>>;

    /// The server processes it adds to each trial (a manager; for a throwaway server that
    /// `[faults] kill_store` kills, a watcher that stands for it in the history).
    fn servers(&self, _scenario: &Scenario) -> &'static [Role] {
        &[]
    }

    /// Runs one of its server processes, in the process forked for it.
    fn serve(&self, _plan: &TrialPlan, role: Role, _recorder: &mut Recorder) -> Result<()> {
        bail!("this store has no {} process", role.name())
    }

    /// Opens the stock as worker `role` `index` sees it.
    fn open(&self, plan: &TrialPlan, role: Role, index: u32) -> io::Result<Box<dyn Stock>>;

    /// What the stock holds once every worker of the trial has ended.
    fn final_stock(&self, plan: &TrialPlan) -> FinalStock {
        read_final(plan)
    }
}

/// What a read of the stock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// A whole number.
    Value(i64),
    /// Empty or not a number: a torn read.
    Unreadable,
}

/// The stock as one process sees it. A store implements the operations it offers
/// (`StoreKind::offers`); validation keeps a strategy from calling one it does not.
pub trait Stock {
    /// Reads the stock.
    fn read(&mut self) -> io::Result<Reading>;

    /// Writes `value` as the stock.
    fn write(&mut self, value: i64) -> io::Result<()>;

    /// Writes `new` only if the stock still holds `expected`; whether it did.
    fn compare_and_set(&mut self, _expected: i64, _new: i64) -> io::Result<bool> {
        Err(unoffered("compare-and-set"))
    }

    /// Takes one ticket in one step if there is one: the value it found, which it lowered
    /// by one if it was above zero.
    fn decrement_if_positive(&mut self) -> io::Result<i64> {
        Err(unoffered("decrement-if-positive"))
    }

    /// Writes `value` unless a write with a newer fencing token than `token` was accepted;
    /// whether it did.
    fn fenced_write(&mut self, _value: i64, _token: u64) -> io::Result<bool> {
        Err(unoffered("fenced write"))
    }

    /// Buys one ticket from a service that keeps its stock to itself: the answer, judged.
    /// An error is sim's or the scenario's failure (a reply that does not fit `ticket`).
    fn buy(&mut self, _request: &BuyRequest) -> io::Result<Answer> {
        Err(unoffered("a purchase from a service"))
    }

    /// The store's own transactions, for the strategies that run the sale inside one (a
    /// store that offers `Ops::TRANSACTIONS`); reads and writes in between go through this
    /// `Stock` as usual.
    fn transactions(&mut self) -> Option<&mut dyn Transactions> {
        None
    }

    /// The store's own lease (Redis's `SET NX PX`), if it keeps one: the `lease` strategy
    /// takes it there rather than in the trial's folder.
    fn leases(&mut self) -> Option<&mut dyn Leases> {
        None
    }
}

/// One purchase sent to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyRequest {
    /// The buyer's purchase number, from 0: `{attempt}`.
    pub attempt: u32,
    /// Its idempotency key, the same when it is sent again: `{key}`.
    pub key: String,
}

/// A service's answer to a purchase, as sim judges it (after Jepsen's clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx with a ticket: sold.
    Sold(Ticket),
    /// A `sold_out` status: sold out.
    SoldOut,
    /// Another 4xx, a refused connection or an `error`: it did not happen.
    Failed(String),
    /// A 5xx, a timeout, a reset connection, or `unknown`: it may have happened.
    Unknown(String),
}

/// The ticket a service sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ticket {
    /// The stock it was sold from: every check applies.
    Number(i64),
    /// An id: only duplicates can be checked.
    Id(String),
}

impl Ticket {
    /// The number a history records: the ticket itself, or for an id a number made from it
    /// (FNV-1a, kept above zero), the same for the same id.
    pub fn value(&self) -> i64 {
        match self {
            Ticket::Number(n) => *n,
            Ticket::Id(id) => {
                let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
                });
                (hash >> 2) as i64 + 1
            }
        }
    }
}

/// A lease kept by the store: a lock that expires, and a token that grows with each grant.
pub trait Leases {
    /// Tries once to take the lease for `lease_ms` as `holder`: the token granted, or how
    /// long the current holder's lease has left.
    fn try_take(&mut self, holder: u32, lease_ms: u64) -> io::Result<Result<u64, std::time::Duration>>;
    /// Gives the lease back, if `holder` still holds it.
    fn give_back(&mut self, holder: u32) -> io::Result<()>;
}

/// A store's transactions (PostgreSQL's).
pub trait Transactions {
    /// Begins a transaction at `isolation`.
    fn begin(&mut self, isolation: Isolation) -> io::Result<()>;
    /// Takes the stock's advisory lock, held until the transaction ends.
    fn lock_advisory(&mut self) -> io::Result<()>;
    /// Reads the stock and locks its row until the transaction ends (`FOR UPDATE`).
    fn read_locked(&mut self) -> io::Result<Reading>;
    /// Commits; a serialization failure or deadlock is a [`Conflict`].
    fn commit(&mut self) -> io::Result<()>;
    /// Rolls back, after a conflict.
    fn rollback(&mut self) -> io::Result<()>;
}

/// A transaction the store aborted to keep its isolation (a serialization failure, a
/// deadlock): the purchase may be tried again.
#[derive(Debug, thiserror::Error)]
#[error("the store aborted the transaction: {0}")]
pub struct Conflict(pub String);

/// An operation whose outcome the store left unknown: the connection was lost inside it, or
/// the replicas did not confirm it in time (`WAIT`). The buyer records it as indeterminate
/// and goes on with its next purchase.
#[derive(Debug, thiserror::Error)]
#[error("the outcome is unknown: {why}")]
pub struct Indeterminate {
    /// Why, in words.
    pub why: String,
    /// What a one-step decrement found, when it ran and only its confirmation failed.
    pub found: Option<i64>,
}

impl Indeterminate {
    /// The error of an operation left indeterminate for `why`.
    pub fn error(why: String, found: Option<i64>) -> io::Error {
        io::Error::other(Indeterminate { why, found })
    }
}

/// Whether `error` is an [`Indeterminate`] outcome.
pub fn is_indeterminate(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|e| e.is::<Indeterminate>())
}

/// What the one-step decrement left indeterminate by `error` found, if it ran.
pub fn found_in(error: &io::Error) -> Option<i64> {
    error.get_ref()?.downcast_ref::<Indeterminate>()?.found
}

/// Whether `error` is a [`Conflict`].
pub fn is_conflict(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|e| e.is::<Conflict>())
}

/// The error of an operation the store does not offer: validation should have refused the
/// scenario before it ran.
fn unoffered(op: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("this store does not offer {op}"))
}

/// Parses the stock file's text: one decimal integer, optionally followed by a newline.
pub fn parse(bytes: &[u8]) -> Reading {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if text.is_empty() || text.len() > 18 || !text.iter().all(u8::is_ascii_digit) {
        return Reading::Unreadable;
    }
    Reading::Value(text.iter().fold(0i64, |n, d| n * 10 + (d - b'0') as i64))
}

/// The final stock `count`, read from where a store other than the file keeps it, written to
/// the trial's stock file too: the file shows the end, as it does for the file store.
fn kept_in_file(plan: &TrialPlan, count: i64) -> FinalStock {
    let _ = FileStock::create(&plan.stock_path, count);
    FinalStock::Value(count)
}

/// The final stock as the plan's stock file holds it, where every store leaves it.
fn read_final(plan: &TrialPlan) -> FinalStock {
    match std::fs::read(&plan.stock_path) {
        Ok(bytes) => match parse(&bytes) {
            Reading::Value(v) => FinalStock::Value(v),
            Reading::Unreadable => FinalStock::Unreadable(String::from_utf8_lossy(&bytes).into_owned()),
        },
        Err(e) => FinalStock::Unreadable(format!("(cannot read: {e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_number_parses() {
        assert_eq!(parse(b"10"), Reading::Value(10));
        assert_eq!(parse(b"0\n"), Reading::Value(0));
        for torn in [&b""[..], b"\n", b"1 0", b"-1", b"abc", b"99999999999999999999", b"1\0"] {
            assert_eq!(parse(torn), Reading::Unreadable, "{torn:?}");
        }
    }
}
