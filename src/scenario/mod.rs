//! Scenario files: the TOML schema, its defaults and bounds, and validation errors that name
//! the file, the line and the field.

mod fields;
mod raw;

pub use fields::accepted_fields;
use raw::*;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use strum::{IntoEnumIterator, VariantArray};
use toml::Spanned;

/// Why a soak (`[buyers] duration_ms`) cannot run the `queue` strategy.
const SOAK_WITHOUT_QUEUE: &str = "a soak runs strategies whose buyers sell for themselves; the queue strategy's seller \
     records every sale in one region that a soak cannot bound: drop `queue`, or `duration_ms`";

/// The most buyer and producer processes one trial may start, whatever the scenario says: a
/// typo must not fork a million processes. sim's own few helpers (the spawner, a seller, the
/// entry queue, a manager) come on top. `--max-processes` lifts it.
pub const DEFAULT_MAX_PROCESSES: u64 = 1000;

/// A validated scenario with every default filled in; this is what `results.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Names the report folder `reports/<name>/`.
    pub name: String,
    /// One line shown in the report.
    pub description: String,
    /// Trials per strategy.
    pub trials: u32,
    /// The seed of trial 0; trial n uses seed + n.
    pub seed: u64,
    /// The strategies to run, each for `trials` trials.
    pub strategies: Vec<StrategyName>,
    /// A trial still running this long after its gate is ended and judged `deadlock`.
    pub deadline_ms: u64,
    /// `[stock]`.
    pub stock: Stock,
    /// `[buyers]`.
    pub buyers: Buyers,
    /// `[producers]`, if the scenario has them.
    pub producers: Option<Producers>,
    /// `[semaphore]`.
    pub semaphore: Semaphore,
    /// `[lock]`.
    pub lock: Lock,
    /// `[transaction]`.
    #[serde(default)]
    pub transaction: Transaction,
    /// `[faults]`.
    pub faults: Faults,
    /// `[expect]`.
    pub expect: Expect,
    /// Set when `buyers.count` or `buyers.hold_us` is a list: every combination is run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
}

/// The values a sweep runs through; `buyers.count` and `buyers.hold_us` hold the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// The buyer counts.
    pub count: Vec<u32>,
    /// The race windows.
    pub hold_us: Vec<u64>,
}

/// One combination of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// Buyer processes.
    pub buyers: u32,
    /// The race window.
    pub hold_us: u64,
}

impl Scenario {
    /// Every combination of buyers and race window to run, in order; one without a sweep.
    pub fn points(&self) -> Vec<Point> {
        match &self.sweep {
            None => vec![Point {
                buyers: self.buyers.count,
                hold_us: self.buyers.hold_us,
            }],
            Some(sweep) => sweep
                .count
                .iter()
                .flat_map(|&buyers| sweep.hold_us.iter().map(move |&hold_us| Point { buyers, hold_us }))
                .collect(),
        }
    }

    /// Runs these strategies instead of the file's (`--strategy`); refuses one that its store
    /// cannot serve.
    pub fn choose_strategies(&mut self, strategies: Vec<StrategyName>) -> Result<(), String> {
        if self.lock.fencing && !strategies.contains(&StrategyName::Lease) {
            return Err(
                "the scenario sets [lock] fencing, which only the \"lease\" strategy has: add --strategy lease".into(),
            );
        }
        for &strategy in &strategies {
            check_pairing(strategy, self.stock.store, self.lock.fencing)?;
            if strategy == StrategyName::Queue && self.buyers.duration_ms.is_some() {
                return Err(SOAK_WITHOUT_QUEUE.into());
            }
        }
        self.strategies = strategies;
        Ok(())
    }

    /// The scenario at one point of its sweep.
    pub fn at(&self, point: Point) -> Scenario {
        let mut one = self.clone();
        one.buyers.count = point.buyers;
        one.buyers.hold_us = point.hold_us;
        one.sweep = None;
        one
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// `[stock]`: what the stock is and where it lives.
pub struct Stock {
    /// Tickets written before each trial.
    pub initial: i64,
    /// The stock file, relative to the trial's folder.
    pub file: String,
    /// Where the stock lives.
    pub store: StoreKind,
    /// How the `file` store writes.
    pub write: WriteMode,
    /// `postgres` or `redis`: the user's own server (`postgres://…`, `redis://…`); `None`: a
    /// throwaway server for the run. Written with its password masked.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "masked_url")]
    pub url: Option<String>,
}

fn masked_url<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_some(&mask_password(url)),
        None => s.serialize_none(),
    }
}

/// The url with the password, if it has one, replaced by `***`: what may be printed or
/// written of it.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{masked}{}", &authority[at..])
        }
        None => authority.to_string(),
    };
    // A password can also be a parameter: `?password=…` (PostgreSQL), `?pass=…` (Redis).
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if matches!(key, "password" | "pass") => format!("{key}=***"),
                    _ => param.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Where the stock lives (docs/guide.md, "Stores and strategies"). Each is a file of `src/store/`, found
/// through `store::registry`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumIter, strum::Display,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum StoreKind {
    /// The text file, as `data.txt`.
    File,
    /// A server process holding the count, read and written by request.
    Manager,
    /// A 64-bit count in a shared memory mapping, as `multiprocessing.Value`.
    Shm,
    /// A row of a table in PostgreSQL.
    Postgres,
    /// A key in Redis.
    Redis,
}

impl StoreKind {
    /// The operations on the stock it offers.
    pub const fn offers(self) -> Ops {
        match self {
            StoreKind::File | StoreKind::Manager => Ops::READ_WRITE,
            StoreKind::Shm => Ops::READ_WRITE
                .and(Ops::COMPARE_AND_SET)
                .and(Ops::DECREMENT_IF_POSITIVE)
                .and(Ops::FENCED_WRITE),
            StoreKind::Postgres => Ops::READ_WRITE
                .and(Ops::COMPARE_AND_SET)
                .and(Ops::DECREMENT_IF_POSITIVE)
                .and(Ops::TRANSACTIONS)
                .and(Ops::FENCED_WRITE),
            StoreKind::Redis => Ops::READ_WRITE
                .and(Ops::COMPARE_AND_SET)
                .and(Ops::DECREMENT_IF_POSITIVE)
                .and(Ops::FENCED_WRITE),
        }
    }

    /// Its name in a scenario: `file`, `manager`.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The scheme of a `[stock] url` for this store, if it is a server that can have one.
    pub const fn url_scheme(self) -> Option<&'static str> {
        match self {
            StoreKind::Postgres => Some("postgres"),
            StoreKind::Redis => Some("redis"),
            _ => None,
        }
    }
}

/// The strategies a scenario can name (docs/guide.md, "Stores and strategies"), in the order the report
/// lists them, each with the store operations it needs. Each is a file of `src/strategy/`,
/// found through `strategy::registry`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
    strum::Display,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum StrategyName {
    /// Nothing protects the stock.
    None,
    /// An exclusive `flock` around the read-modify-write.
    FileLock,
    /// A POSIX named semaphore with `permits`.
    Semaphore,
    /// One seller process owns the stock; buyers post requests and wait.
    Queue,
    /// An open-file-description byte-range lock (`F_OFD_SETLKW`) on the stock file.
    OfdLock,
    /// A System V semaphore taken with `SEM_UNDO`.
    SysvSemaphore,
    /// A process-shared robust pthread mutex in shared memory.
    RobustMutex,
    /// A lock that expires `[lock] lease_ms` after it was taken.
    Lease,
    /// The store's own one-step decrement-if-positive.
    Atomic,
    /// Read, hold, then compare-and-set from the value read; retry on conflict.
    Optimistic,
    /// `SELECT … FOR UPDATE` in a transaction.
    RowLock,
    /// `pg_advisory_xact_lock` in a transaction.
    AdvisoryLock,
    /// Read and write in one transaction at `[transaction] isolation`, retried on a
    /// serialization failure.
    Transaction,
}

impl StrategyName {
    /// Every strategy, in the order the report lists them.
    pub const ALL: &'static [StrategyName] = StrategyName::VARIANTS;

    /// The operations on the stock it needs from its store; `fencing` is `[lock] fencing`.
    pub const fn needs(self, fencing: bool) -> Ops {
        match self {
            StrategyName::Atomic => Ops::DECREMENT_IF_POSITIVE,
            StrategyName::Optimistic => Ops::READ_WRITE.and(Ops::COMPARE_AND_SET),
            StrategyName::Lease if fencing => Ops::READ_WRITE.and(Ops::FENCED_WRITE),
            StrategyName::RowLock | StrategyName::AdvisoryLock | StrategyName::Transaction => {
                Ops::READ_WRITE.and(Ops::TRANSACTIONS)
            }
            _ => Ops::READ_WRITE,
        }
    }

    /// Its name in a scenario: `file-lock`.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The strategy of this name, if there is one.
    pub fn parse(name: &str) -> Option<StrategyName> {
        name.parse().ok()
    }

    /// The names, quoted, for error messages.
    pub fn list() -> String {
        quoted(StrategyName::ALL.iter().map(|s| s.name()))
    }
}

/// `"a", "b" or "c"`, for error messages.
fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

/// A set of operations on the stock: what a store offers, what a strategy needs
/// (docs/guide.md, "Stores and strategies").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ops(u8);

impl Ops {
    /// Read the stock, and write it.
    pub const READ_WRITE: Ops = Ops(1);
    /// Write a new value only if the stock still holds the one read.
    pub const COMPARE_AND_SET: Ops = Ops(1 << 1);
    /// Take one ticket if there is one, in one step.
    pub const DECREMENT_IF_POSITIVE: Ops = Ops(1 << 2);
    /// Read and write in one transaction.
    pub const TRANSACTIONS: Ops = Ops(1 << 3);
    /// Refuse a write whose fencing token is older than one already accepted.
    pub const FENCED_WRITE: Ops = Ops(1 << 4);

    const NAMES: [(Ops, &'static str); 5] = [
        (Ops::READ_WRITE, "read and write"),
        (Ops::COMPARE_AND_SET, "compare-and-set"),
        (Ops::DECREMENT_IF_POSITIVE, "decrement-if-positive"),
        (Ops::TRANSACTIONS, "transactions"),
        (Ops::FENCED_WRITE, "fenced write"),
    ];

    /// Both sets together.
    pub const fn and(self, other: Ops) -> Ops {
        Ops(self.0 | other.0)
    }

    /// Whether every operation of `other` is in this set.
    pub const fn contains(self, other: Ops) -> bool {
        self.0 & other.0 == other.0
    }

    /// What of this set `other` lacks.
    pub const fn beyond(self, other: Ops) -> Ops {
        Ops(self.0 & !other.0)
    }

    /// The operations' names, for messages: `compare-and-set, transactions`.
    pub fn names(self) -> String {
        let names: Vec<&str> = Ops::NAMES
            .iter()
            .filter(|(op, _)| self.contains(*op))
            .map(|(_, name)| *name)
            .collect();
        names.join(", ")
    }
}

/// Refuses a strategy whose store lacks an operation it needs, naming both and the stores
/// that would do.
pub fn check_pairing(strategy: StrategyName, store: StoreKind, fencing: bool) -> Result<(), String> {
    let needs = strategy.needs(fencing);
    let missing = needs.beyond(store.offers());
    if missing == Ops(0) {
        return Ok(());
    }
    let able: Vec<&str> = StoreKind::iter()
        .filter(|s| s.offers().contains(needs))
        .map(|s| s.name())
        .collect();
    let instead = match able.len() {
        0 => "no store offers them yet".to_string(),
        _ => format!("use it with stock.store = {}", quoted(able.into_iter())),
    };
    let with = if fencing && strategy == StrategyName::Lease {
        " with fencing"
    } else {
        ""
    };
    Err(format!(
        "strategy \"{strategy}\"{with} needs {} of its store, and store \"{store}\" does not offer it: {instead}, \
         or choose another strategy",
        missing.names()
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
/// How the `file` store writes the stock's text.
pub enum WriteMode {
    /// Empty the file, then write the digits, as `open(path, "w")`.
    Truncate,
    /// Overwrite the digits, then trim the file when the number got shorter.
    InPlace,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// `[buyers]`: the processes that buy.
pub struct Buyers {
    /// Buyer processes (tasks, with a pool).
    pub count: u32,
    /// Purchase attempts per buyer, without producers.
    pub attempts: u32,
    /// The race window between a buyer's read and its write.
    pub hold_us: u64,
    /// With a pool, the processes that run the buyers' tasks.
    pub pool: Option<u32>,
    /// How the pool runs its tasks.
    pub pool_mode: PoolMode,
    /// Buyers end as soon as every producer has.
    pub daemon: bool,
    /// A soak: each buyer buys until this long after the gate, instead of making `attempts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
/// How a pool runs its tasks.
pub enum PoolMode {
    /// One task at a time, as `Pool.apply`.
    Sync,
    /// Up to the pool's size at once, as `Pool.apply_async`.
    Async,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// `[producers]`: processes that feed buyers entries through a bounded queue.
pub struct Producers {
    /// Producer processes.
    pub count: u32,
    /// Entries each producer puts.
    pub entries: u32,
    /// The entry queue's bound.
    pub queue_capacity: u32,
    /// A put waits for room, rather than drop the entry.
    pub blocking: bool,
    /// A producer finishes only once every entry it put was processed.
    pub joinable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// `[semaphore]`.
pub struct Semaphore {
    /// Permits of the `semaphore` strategy.
    pub permits: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// `[lock]`.
pub struct Lock {
    /// What the lock covers.
    pub scope: LockScope,
    /// `lease`: the lock expires this long after it was taken.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// `lease`: the store refuses a write whose token is older than one it accepted.
    #[serde(default)]
    pub fencing: bool,
}

fn default_lease_ms() -> u64 {
    DEFAULT_LEASE_MS
}

/// `[lock] lease_ms` when the scenario does not say.
pub const DEFAULT_LEASE_MS: u64 = 50;

/// `[transaction]`: how strategies that can conflict retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// At most this many retries of one purchase (`optimistic`, `transaction`); then the
    /// buyer gives up.
    pub retries: u32,
    /// The isolation level of the `transaction` strategy.
    #[serde(default)]
    pub isolation: Isolation,
}

impl Default for Transaction {
    fn default() -> Self {
        Transaction {
            retries: 100,
            isolation: Isolation::default(),
        }
    }
}

/// `[transaction] isolation`: the SQL isolation level of the `transaction` strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::Display)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Isolation {
    /// Each statement sees what was committed before it: a read and a later write race.
    #[default]
    ReadCommitted,
    /// The transaction sees one snapshot; a concurrent update of a row it writes fails it.
    RepeatableRead,
    /// As if the transactions ran one at a time; the ones that cannot be so ordered fail.
    Serializable,
}

impl Isolation {
    /// The level as SQL names it: `READ COMMITTED`.
    pub fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
/// What a lock-style strategy's lock covers.
pub enum LockScope {
    /// The lock is held from before the read to after the write.
    ReadModifyWrite,
    /// The read happens before the lock; only the write is inside it.
    Write,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
/// `[faults]`: what hits the processes, chosen by the seed.
pub struct Faults {
    /// Buyers killed between their read and their write.
    pub kill_buyers: u32,
    /// Buyers stopped there, and resumed `stop_ms` later.
    pub stop_buyers: u32,
    /// How long a stopped buyer stays stopped.
    pub stop_ms: u64,
    /// Kill the `queue` strategy's seller in the middle of a sale.
    pub kill_seller: bool,
    /// SIGKILL the store's throwaway server in the middle of a sale.
    #[serde(default)]
    pub kill_store: bool,
}

/// What every trial must show; `[expect.<strategy>]` overrides keys for one strategy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expect {
    /// Expectations for every strategy.
    pub all: Expectations,
    /// Expectations for one strategy, over the general ones.
    pub per_strategy: BTreeMap<StrategyName, Expectations>,
}

/// Each key: `false` means no trial shows it; `true` means at least one trial does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expectations {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    /// Each key and whether some trial shows it.
    pub flags: BTreeMap<ExpectKey, bool>,
    /// Every trial ends with exactly this stock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_stock: Option<i64>,
}

/// Something a trial can show, named in `[expect]`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ExpectKey {
    /// More tickets sold than there were.
    Oversell,
    /// A ticket sold twice.
    DuplicateTickets,
    /// Sales that the final stock does not reflect.
    LostUpdates,
    /// A read of an empty, unparseable or never-written stock.
    TornReads,
    /// A sale that read a stock already sold below.
    OrderViolations,
    /// Any verdict but safe.
    Anomaly,
    /// Entries dropped by a full queue.
    Dropped,
    /// Entries left in the queue.
    Unconsumed,
    /// Operations whose process died inside them.
    Indeterminate,
    /// A trial ended at its deadline.
    Deadlock,
    /// A trial whose server died.
    Crashed,
    /// Tickets that never existed, offered for sale.
    PhantomStock,
    /// Late writes the store refused by their fencing token.
    Fenced,
    /// Purchases that gave up after their retries.
    GaveUp,
    /// Conflicts retried.
    Retries,
    /// Locks taken from a holder that had died, and repaired.
    Recovered,
    /// Tickets left unsold although a buyer was turned away.
    Undersold,
}

impl ExpectKey {
    /// Every key.
    pub const ALL: &'static [ExpectKey] = ExpectKey::VARIANTS;

    /// Its name in `[expect]`: `duplicate_tickets`.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl Expect {
    /// The expectations for one strategy: its own keys over the general ones.
    pub fn for_strategy(&self, strategy: StrategyName) -> Expectations {
        let mut merged = self.all.clone();
        if let Some(own) = self.per_strategy.get(&strategy) {
            merged.flags.extend(own.flags.iter().map(|(k, v)| (*k, *v)));
            if own.final_stock.is_some() {
                merged.final_stock = own.final_stock;
            }
        }
        merged
    }
}

/// A scenario file that cannot be run, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}{}{}: {message}",
    file.display(),
    line.map(|l| format!(", line {l}")).unwrap_or_default(),
    field.as_ref().map(|f| format!(", field `{f}`")).unwrap_or_default()
)]
pub struct ScenarioError {
    /// The scenario file.
    pub file: PathBuf,
    /// The line the error is on, when one is to blame.
    pub line: Option<usize>,
    /// The field, as written in the file: `buyers.count`.
    pub field: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

/// Limits that the command line may lift.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most buyer and producer processes one trial may start (sim's helpers aside).
    pub max_processes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_processes: DEFAULT_MAX_PROCESSES,
        }
    }
}

/// Reads and validates a scenario file.
pub fn load(path: &Path, limits: Limits) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_path_buf(),
        line: None,
        field: None,
        message: format!("cannot read the scenario file: {e}; give the path of a .toml scenario (see scenarios/)"),
    })?;
    parse(path, &text, limits)
}

/// Validates scenario text; `path` is only used to name the file in errors and default the name.
pub fn parse(path: &Path, text: &str, limits: Limits) -> Result<Scenario, ScenarioError> {
    let v = Validator { path, text };
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        // toml's message carries the line, a caret snippet and what was expected.
        let line = e.span().map(|s| v.line(s.start));
        ScenarioError {
            file: path.to_path_buf(),
            line,
            field: None,
            message: e.message().trim_end().to_string() + &v.snippet(e.span()),
        }
    })?;
    v.scenario(raw, limits)
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    fn snippet(&self, span: Option<Range<usize>>) -> String {
        let Some(span) = span else { return String::new() };
        let line = self.line(span.start);
        let content = self.text.lines().nth(line - 1).unwrap_or("");
        format!(" (line {line}: `{}`)", content.trim())
    }

    fn error(&self, span: Option<Range<usize>>, field: &str, message: String) -> ScenarioError {
        ScenarioError {
            file: self.path.to_path_buf(),
            line: span.map(|s| self.line(s.start)),
            field: Some(field.to_string()),
            message,
        }
    }

    /// A whole number within bounds, or its default.
    fn number(
        &self,
        value: &Option<Spanned<i64>>,
        field: &str,
        default: u64,
        min: u64,
        max: u64,
        hint: &str,
    ) -> Result<u64, ScenarioError> {
        let Some(value) = value else { return Ok(default) };
        let n = *value.get_ref();
        if n < min as i64 || n as u64 > max {
            return Err(self.error(
                Some(value.span()),
                field,
                format!("{n} is out of bounds: it must be a whole number from {min} to {max}{hint}"),
            ));
        }
        Ok(n as u64)
    }

    /// A whole number within bounds, or a list of them (a sweep), or the default.
    fn numbers(
        &self,
        value: &Option<Spanned<toml::Value>>,
        field: &str,
        default: u64,
        min: u64,
        max: u64,
        hint: &str,
    ) -> Result<Vec<u64>, ScenarioError> {
        let Some(value) = value else { return Ok(vec![default]) };
        let span = Some(value.span());
        let items: Vec<&toml::Value> = match value.get_ref() {
            toml::Value::Array(items) if !items.is_empty() && items.len() <= 50 => items.iter().collect(),
            toml::Value::Array(_) => {
                return Err(self.error(span, field, "a sweep lists from 1 to 50 values".into()));
            }
            one => vec![one],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let n = match item.as_integer() {
                Some(n) if n >= min as i64 && n as u64 <= max => n as u64,
                Some(n) => {
                    return Err(self.error(
                        span,
                        field,
                        format!("{n} is out of bounds: it must be a whole number from {min} to {max}{hint}"),
                    ));
                }
                None => {
                    return Err(self.error(
                        span,
                        field,
                        format!("{item} is not a whole number: give one, or a list of them to sweep over"),
                    ));
                }
            };
            if out.contains(&n) {
                return Err(self.error(span, field, format!("{n} is listed twice")));
            }
            out.push(n);
        }
        Ok(out)
    }

    fn scenario(&self, raw: RawScenario, limits: Limits) -> Result<Scenario, ScenarioError> {
        let name = match &raw.name {
            Some(name) => {
                let n = name.get_ref();
                if n.is_empty()
                    || n.len() > 100
                    || !n.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c))
                    || n.starts_with('.')
                {
                    return Err(self.error(
                        Some(name.span()),
                        "name",
                        format!("{n:?} cannot name the report folder: use 1 to 100 letters, digits, '-', '_' or '.' (not first)"),
                    ));
                }
                n.clone()
            }
            None => self
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into()),
        };
        let trials = self.number(&raw.trials, "trials", 10, 1, 100_000, "")? as u32;
        let seed = match &raw.seed {
            Some(s) if *s.get_ref() < 0 => {
                return Err(self.error(
                    Some(s.span()),
                    "seed",
                    format!("{} is negative: a seed is a whole number from 0 up", s.get_ref()),
                ));
            }
            Some(s) => *s.get_ref() as u64,
            None => 42,
        };
        let strategies = self.strategies(&raw.strategy)?;
        let deadline_ms = self.number(&raw.deadline_ms, "deadline_ms", 60_000, 1, 3_600_000, " (one hour)")?;

        let stock = Stock {
            initial: self.number(&raw.stock.initial, "stock.initial", 10, 0, 1_000_000_000_000, "")? as i64,
            file: self.stock_file(&raw.stock.file)?,
            store: raw.stock.store.unwrap_or(StoreKind::File),
            write: raw.stock.write.unwrap_or(WriteMode::Truncate),
            url: None,
        };
        let stock = Stock {
            url: self.url(&raw.stock.url, stock.store)?,
            ..stock
        };

        for &strategy in &strategies {
            if let Err(why) = check_pairing(
                strategy,
                stock.store,
                raw.lock.fencing.as_ref().is_some_and(|f| *f.get_ref()),
            ) {
                return Err(self.error(raw.strategy.as_ref().map(|v| v.span()), "strategy", why));
            }
        }

        let max = limits.max_processes;
        let lift = format!(" (at most {max} processes in a trial; --max-processes N lifts it)");
        let b = &raw.buyers;
        let counts: Vec<u32> = self
            .numbers(&b.count, "buyers.count", 30, 1, max, &lift)?
            .into_iter()
            .map(|n| n as u32)
            .collect();
        let holds = self.numbers(&b.hold_us, "buyers.hold_us", 500, 0, 10_000_000, " (ten seconds)")?;
        let sweep = (counts.len() > 1 || holds.len() > 1).then(|| Sweep {
            count: counts.clone(),
            hold_us: holds.clone(),
        });
        // Bounds that depend on the count hold for the largest one.
        let count = counts.iter().copied().max().unwrap_or(30);
        let mut buyers = Buyers {
            count,
            attempts: self.number(&b.attempts, "buyers.attempts", 1, 1, 100_000_000, "")? as u32,
            hold_us: holds[0],
            pool: match &b.pool {
                Some(_) => Some(self.number(&b.pool, "buyers.pool", 1, 1, max, &lift)? as u32),
                None => None,
            },
            pool_mode: b.pool_mode.unwrap_or(PoolMode::Async),
            daemon: b.daemon.unwrap_or(false),
            duration_ms: match &b.duration_ms {
                Some(_) => Some(self.number(&b.duration_ms, "buyers.duration_ms", 1, 1, 86_400_000, " (a day)")?),
                None => None,
            },
        };
        if let Some(d) = &b.duration_ms {
            let span = Some(d.span());
            let why = if b.attempts.is_some() {
                Some("a soak buys for a time, not a number of attempts: give `attempts` or `duration_ms`, not both")
            } else if raw.producers.is_some() || b.pool.is_some() {
                Some("a soak runs plain buyers: drop `[producers]` and `pool`, or `duration_ms`")
            } else if strategies.contains(&StrategyName::Queue) {
                Some(SOAK_WITHOUT_QUEUE)
            } else if [&raw.faults.kill_buyers, &raw.faults.stop_buyers]
                .iter()
                .any(|f| f.as_ref().is_some_and(|n| *n.get_ref() > 0))
                || raw.faults.kill_seller == Some(true)
            {
                Some("a soak runs without faults: drop the `[faults]` or `duration_ms`")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(self.error(span, "buyers.duration_ms", why.into()));
            }
        }
        if buyers.count as u64 * buyers.attempts as u64 > 100_000_000 {
            return Err(self.error(
                b.attempts.as_ref().map(|a| a.span()),
                "buyers.attempts",
                format!(
                    "{} buyers × {} attempts is more than 100,000,000 purchases in one trial: lower either",
                    buyers.count, buyers.attempts
                ),
            ));
        }

        let producers = match &raw.producers {
            None => None,
            Some(p) => Some(Producers {
                count: self.number(&p.count, "producers.count", 1, 1, max, &lift)? as u32,
                entries: self.number(&p.entries, "producers.entries", 1, 1, 10_000_000, "")? as u32,
                queue_capacity: self.number(&p.queue_capacity, "producers.queue_capacity", 1, 1, 10_000_000, "")?
                    as u32,
                blocking: p.blocking.unwrap_or(true),
                joinable: p.joinable.unwrap_or(false),
            }),
        };
        if let Some(p) = &producers
            && p.count as u64 * p.entries as u64 > 100_000_000
        {
            let span = raw
                .producers
                .as_ref()
                .and_then(|p| p.entries.as_ref())
                .map(|e| e.span());
            return Err(self.error(
                span,
                "producers.entries",
                format!(
                    "{} producers × {} entries is more than 100,000,000: lower either",
                    p.count, p.entries
                ),
            ));
        }
        if buyers.daemon && producers.is_none() {
            let message = "daemon buyers are ended when every producer has finished, and there are no producers: \
                           add a [producers] table or drop daemon";
            return Err(self.error(None, "buyers.daemon", message.into()));
        }
        // The bound is on the processes the user asked for: buyers (or the pool's) and
        // producers. sim's own helpers (the spawner, a seller, the entry queue, a manager)
        // are a few more whatever the scenario, and do not count against it.
        if let (Some(p), Some(raw_p)) = (&producers, &raw.producers) {
            let (buyer_field, buyer_processes) = match buyers.pool {
                Some(pool) => ("buyers.pool", pool),
                None => ("buyers.count", buyers.count),
            };
            let processes = buyer_processes as u64 + p.count as u64;
            if processes > max {
                return Err(self.error(
                    raw_p.count.as_ref().map(|c| c.span()),
                    "producers.count",
                    format!(
                        "{} producers with {buyer_processes} buyer processes (`{buyer_field}`) make {processes} worker processes{lift}: lower either",
                        p.count
                    ),
                ));
            }
        }

        let semaphore = Semaphore {
            permits: self.number(&raw.semaphore.permits, "semaphore.permits", 1, 1, 10_000, "")? as u32,
        };
        let lock = self.lock(&raw.lock, &strategies)?;
        let transaction = Transaction {
            retries: self.number(&raw.transaction.retries, "transaction.retries", 100, 0, 1_000_000, "")? as u32,
            isolation: raw.transaction.isolation.unwrap_or_default(),
        };
        let f = &raw.faults;
        let faults = Faults {
            kill_buyers: self.number(
                &f.kill_buyers,
                "faults.kill_buyers",
                0,
                0,
                count as u64,
                " (the number of buyers)",
            )? as u32,
            stop_buyers: self.number(
                &f.stop_buyers,
                "faults.stop_buyers",
                0,
                0,
                count as u64,
                " (the number of buyers)",
            )? as u32,
            stop_ms: self.number(&f.stop_ms, "faults.stop_ms", 200, 0, 600_000, " (ten minutes)")?,
            kill_seller: f.kill_seller.unwrap_or(false),
            kill_store: match &f.kill_store {
                Some(kill) if *kill.get_ref() && (stock.store.url_scheme().is_none() || stock.url.is_some()) => {
                    return Err(self.error(
                        Some(kill.span()),
                        "faults.kill_store",
                        format!(
                            "kill_store kills the throwaway server sim starts for store \"postgres\" or \"redis\"; \
                             store \"{}\"{} has none: use one of those stores without [stock] url, or drop kill_store",
                            stock.store,
                            if stock.url.is_some() { " with a url" } else { "" }
                        ),
                    ));
                }
                Some(kill) => *kill.get_ref(),
                None => false,
            },
        };
        let expect = self.expect(&raw.expect)?;
        buyers.count = counts[0];
        Ok(Scenario {
            name,
            description: raw.description.unwrap_or_default(),
            trials,
            seed,
            strategies,
            deadline_ms,
            stock,
            buyers,
            producers,
            semaphore,
            lock,
            transaction,
            faults,
            expect,
            sweep,
        })
    }

    fn strategies(&self, value: &Option<Spanned<toml::Value>>) -> Result<Vec<StrategyName>, ScenarioError> {
        let Some(value) = value else {
            return Ok(vec![StrategyName::None]);
        };
        let span = Some(value.span());
        let names: Vec<&toml::Value> = match value.get_ref() {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        if names.is_empty() {
            return Err(self.error(
                span,
                "strategy",
                format!("the list is empty: name one or more of {}", StrategyName::list()),
            ));
        }
        let mut out = Vec::new();
        for name in names {
            let parsed = name.as_str().and_then(StrategyName::parse);
            let Some(s) = parsed else {
                return Err(self.error(
                    span,
                    "strategy",
                    format!(
                        "{name} is not a strategy: use one of {}, or a list of them",
                        StrategyName::list()
                    ),
                ));
            };
            if out.contains(&s) {
                return Err(self.error(span, "strategy", format!("\"{}\" is listed twice", s.name())));
            }
            out.push(s);
        }
        Ok(out)
    }

    /// `[lock]`, whose lease fields belong to the `lease` strategy alone.
    fn lock(&self, raw: &RawLock, strategies: &[StrategyName]) -> Result<Lock, ScenarioError> {
        let leasing = strategies.contains(&StrategyName::Lease);
        let not_leasing = |field: &str, span: Range<usize>| {
            self.error(
                Some(span),
                field,
                format!(
                    "only the \"lease\" strategy has a lease, and this scenario runs {}: add \"lease\" to `strategy`, or drop {field}",
                    quoted(strategies.iter().map(|s| s.name()))
                ),
            )
        };
        if let Some(lease) = &raw.lease_ms
            && !leasing
        {
            return Err(not_leasing("lock.lease_ms", lease.span()));
        }
        if let Some(fencing) = &raw.fencing
            && *fencing.get_ref()
            && !leasing
        {
            return Err(not_leasing("lock.fencing", fencing.span()));
        }
        Ok(Lock {
            scope: raw.scope.unwrap_or(LockScope::ReadModifyWrite),
            lease_ms: self.number(
                &raw.lease_ms,
                "lock.lease_ms",
                DEFAULT_LEASE_MS,
                1,
                3_600_000,
                " (a lease of 0 ms is never held)",
            )?,
            fencing: raw.fencing.as_ref().is_some_and(|f| *f.get_ref()),
        })
    }

    /// `[stock] url`: a url of the store's own scheme, for a store that is a server.
    fn url(&self, value: &Option<Spanned<String>>, store: StoreKind) -> Result<Option<String>, ScenarioError> {
        let Some(value) = value else { return Ok(None) };
        let url = value.get_ref();
        if url.is_empty() {
            return Ok(None); // empty: a throwaway server, as DESIGN.md's example writes it
        }
        let span = Some(value.span());
        let shown = mask_password(url);
        let Some(scheme) = store.url_scheme() else {
            return Err(self.error(
                span,
                "stock.url",
                format!(
                    "store \"{store}\" keeps its stock on this machine and takes no url: a url is for \"postgres\" or \"redis\""
                ),
            ));
        };
        let given = url.split_once("://").map(|(s, _)| s);
        let fits = match store {
            StoreKind::Postgres => matches!(given, Some("postgres" | "postgresql")),
            _ => matches!(given, Some(s) if s == scheme || s == "redis+unix" || s == "unix"),
        };
        if !fits {
            return Err(self.error(
                span,
                "stock.url",
                format!("{shown:?} is not a url of store \"{store}\": it must start with {scheme}://"),
            ));
        }
        Ok(Some(url.clone()))
    }

    fn stock_file(&self, value: &Option<Spanned<String>>) -> Result<String, ScenarioError> {
        let Some(value) = value else {
            return Ok("stock.txt".into());
        };
        let file = value.get_ref();
        if let Err(why) = check_inside(Path::new(file)) {
            return Err(self.error(
                Some(value.span()),
                "stock.file",
                format!("{file:?} {why}: give a relative path inside the trial's folder, such as \"stock.txt\""),
            ));
        }
        Ok(file.clone())
    }

    fn expect(&self, value: &Option<Spanned<toml::Table>>) -> Result<Expect, ScenarioError> {
        let Some(value) = value else {
            return Ok(Expect::default());
        };
        let span = Some(value.span());
        let mut expect = Expect::default();
        for (key, v) in value.get_ref() {
            if let Some(strategy) = StrategyName::parse(key) {
                let toml::Value::Table(table) = v else {
                    return Err(self.error(
                        span,
                        &format!("expect.{key}"),
                        format!("must be a table: [expect.{key}] with keys such as oversell = true"),
                    ));
                };
                let mut own = Expectations::default();
                for (k, v) in table {
                    self.expectation(&mut own, &format!("expect.{key}"), k, v, span.clone())?;
                }
                expect.per_strategy.insert(strategy, own);
            } else {
                self.expectation(&mut expect.all, "expect", key, v, span.clone())?;
            }
        }
        Ok(expect)
    }

    fn expectation(
        &self,
        into: &mut Expectations,
        table: &str,
        key: &str,
        v: &toml::Value,
        span: Option<Range<usize>>,
    ) -> Result<(), ScenarioError> {
        let field = format!("{table}.{key}");
        if key == "final_stock" {
            match v.as_integer() {
                Some(n) if n >= 0 => into.final_stock = Some(n),
                _ => {
                    return Err(self.error(
                        span,
                        &field,
                        format!("{v} is not a stock: give a whole number from 0 up"),
                    ));
                }
            }
            return Ok(());
        }
        let Ok(k) = key.parse::<ExpectKey>() else {
            let keys: Vec<&str> = ExpectKey::ALL.iter().map(|k| k.name()).collect();
            return Err(self.error(
                span,
                &field,
                format!(
                    "unknown expectation: use one of {}, final_stock, or a strategy's own table ({})",
                    keys.join(", "),
                    StrategyName::list()
                ),
            ));
        };
        let Some(b) = v.as_bool() else {
            return Err(self.error(
                span,
                &field,
                format!("{v} is not true or false: false means no trial shows it, true that at least one does"),
            ));
        };
        into.flags.insert(k, b);
        Ok(())
    }
}

/// Refuses a path that could leave the folder it is relative to.
pub fn check_inside(path: &Path) -> Result<(), &'static str> {
    if path.as_os_str().is_empty() {
        return Err("is empty");
    }
    for component in path.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("leaves the output folder through '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("is absolute, outside the output folder"),
        }
    }
    if path.components().all(|c| c == Component::CurDir) {
        return Err("names the folder itself, not a file");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Scenario, ScenarioError> {
        parse(Path::new("scenarios/t.toml"), text, Limits::default())
    }

    #[test]
    fn an_empty_file_takes_every_default() {
        let s = parse_str("").unwrap();
        assert_eq!(s.name, "t");
        assert_eq!((s.trials, s.seed, s.deadline_ms), (10, 42, 60_000));
        assert_eq!(s.strategies, vec![StrategyName::None]);
        assert_eq!((s.stock.initial, s.stock.file.as_str()), (10, "stock.txt"));
        assert_eq!((s.stock.store, s.stock.write), (StoreKind::File, WriteMode::Truncate));
        assert_eq!((s.buyers.count, s.buyers.attempts, s.buyers.hold_us), (30, 1, 500));
        assert_eq!(s.producers, None);
        assert_eq!(s.semaphore.permits, 1);
        assert_eq!(s.lock.scope, LockScope::ReadModifyWrite);
    }

    #[test]
    fn the_design_example_parses() {
        let s = parse_str(
            r#"
name = "lottery"
strategy = ["none", "file-lock", "semaphore", "queue"]
[stock]
initial = 5
write = "in-place"
[buyers]
count = 100
hold_us = 0
[producers]
count = 10
queue_capacity = 2
blocking = false
[expect]
oversell = false
[expect.none]
oversell = true
"#,
        )
        .unwrap();
        assert_eq!(s.strategies.len(), 4);
        assert_eq!(s.producers.as_ref().unwrap().queue_capacity, 2);
        assert!(!s.producers.unwrap().blocking);
        assert!(s.expect.for_strategy(StrategyName::None).flags[&ExpectKey::Oversell]);
        assert!(!s.expect.for_strategy(StrategyName::Queue).flags[&ExpectKey::Oversell]);
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let e = parse_str("trials = 3\n[buyers]\ncount = 0\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.field.as_deref(), Some("buyers.count"));
        assert!(
            e.to_string()
                .starts_with("scenarios/t.toml, line 3, field `buyers.count`: 0 is out of bounds"),
            "{e}"
        );

        let e = parse_str("strategy = \"mutex\"").unwrap_err();
        assert!(e.to_string().contains("\"mutex\" is not a strategy"), "{e}");
        assert!(e.to_string().contains("file-lock"), "{e}");

        let e = parse_str("[buyers]\ncont = 3\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().contains("unknown field `cont`"), "{e}");

        let e = parse_str("[buyers]\ncount = \"many\"\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");

        let e = parse_str("trials = [").unwrap_err();
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn a_stock_file_outside_the_trial_folder_is_refused() {
        for bad in ["../x.txt", "/etc/passwd", "a/../../b", "", "."] {
            let e = parse_str(&format!("[stock]\nfile = {bad:?}\n")).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("stock.file"), "{bad}: {e}");
        }
        assert_eq!(
            parse_str("[stock]\nfile = \"sub/s.txt\"\n").unwrap().stock.file,
            "sub/s.txt"
        );
    }

    #[test]
    fn the_process_bound_counts_buyers_and_producers_only() {
        let s = parse_str("[buyers]\ncount = 1000\n").unwrap();
        assert_eq!(s.buyers.count, 1000);
        let s = parse_str("[buyers]\ncount = 999\n[producers]\ncount = 1\n").unwrap();
        assert_eq!(s.producers.unwrap().count, 1);
        let e = parse_str("[buyers]\ncount = 1001\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("buyers.count"), "{e}");
        let e = parse_str("[buyers]\ncount = 10\npool = 1001\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("buyers.pool"), "{e}");
        let e = parse_str("[buyers]\ncount = 999\n[producers]\ncount = 2\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("producers.count"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().contains("1001 worker processes"), "{e}");
        assert!(e.to_string().contains("`buyers.count`"), "{e}");
    }

    #[test]
    fn process_counts_are_bounded_and_the_bound_can_be_lifted() {
        let e = parse_str("[buyers]\ncount = 5000\n").unwrap_err();
        assert!(e.to_string().contains("--max-processes"), "{e}");
        let s = parse(
            Path::new("t.toml"),
            "[buyers]\ncount = 5000\n",
            Limits { max_processes: 6000 },
        )
        .unwrap();
        assert_eq!(s.buyers.count, 5000);
    }

    #[test]
    fn isolation_levels_parse_and_a_wrong_one_names_the_field() {
        let s = parse_str("[transaction]\nisolation = \"serializable\"\n").unwrap();
        assert_eq!(s.transaction.isolation, Isolation::Serializable);
        assert_eq!(parse_str("").unwrap().transaction.isolation, Isolation::ReadCommitted);
        let e = parse_str("[transaction]\nisolation = \"snapshot\"\n").unwrap_err();
        assert!(e.to_string().contains("isolation"), "{e}");
    }

    #[test]
    fn transactions_are_refused_on_a_store_without_them() {
        for strategy in ["row-lock", "advisory-lock", "transaction"] {
            let e = parse_str(&format!("strategy = \"{strategy}\"\n[stock]\nstore = \"redis\"\n")).unwrap_err();
            assert!(e.to_string().contains("\"postgres\""), "{e}");
        }
        parse_str("strategy = [\"row-lock\", \"atomic\"]\n[stock]\nstore = \"postgres\"\n").unwrap();
    }

    #[test]
    fn a_password_in_a_url_is_masked() {
        for (url, shown) in [
            (
                "postgres://buyer:hunter2@db:5432/shop",
                "postgres://buyer:***@db:5432/shop",
            ),
            ("postgres://buyer@db/shop", "postgres://buyer@db/shop"),
            ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
            (
                "redis+unix:///run/redis.sock?db=1&pass=hunter2",
                "redis+unix:///run/redis.sock?db=1&pass=***",
            ),
            (
                "postgresql:///shop?host=/run&password=hunter2",
                "postgresql:///shop?host=/run&password=***",
            ),
            ("host=/tmp/x user=sim", "host=/tmp/x user=sim"),
        ] {
            assert_eq!(mask_password(url), shown);
        }
    }

    #[test]
    fn unknown_expectations_are_refused() {
        let e = parse_str("[expect]\noversel = true\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("expect.oversel"));
        let e = parse_str("[expect.none]\noversell = 3\n").unwrap_err();
        assert!(e.to_string().contains("not true or false"), "{e}");
    }
}
