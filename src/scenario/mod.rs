//! Scenario files: the TOML schema, its defaults and bounds, and validation errors that name
//! the file, the line and the field.

mod commands;
mod fields;
mod names;
mod raw;
mod secret;
mod service;
mod validate;

pub use commands::{CommandLine, FaultCommand};
pub use fields::accepted_fields;
use names::quoted;
pub use names::*;
use secret::masked_url;
pub use secret::{expand_env, mask_password, mask_text};
pub use service::{Endpoint, ServiceVariant, pem_certificates};
pub use validate::{load, parse};

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use strum::VariantArray;

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
    /// Set when `buyers.count`, `buyers.hold_us` or `faults.lag_ms` is a list: every
    /// combination is run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
    /// `[service.NAME]`: the variants of the user's own service, with store `service`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service: BTreeMap<String, ServiceVariant>,
}

/// The values a sweep runs through; `buyers.count`, `buyers.hold_us` and `faults.lag_ms`
/// hold the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// The buyer counts.
    pub count: Vec<u32>,
    /// The race windows.
    pub hold_us: Vec<u64>,
    /// The replication lags before a failover, when `faults.lag_ms` is a list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lag_ms: Vec<u64>,
}

/// One combination of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// Buyer processes.
    pub buyers: u32,
    /// The race window.
    pub hold_us: u64,
    /// The replication lag before the failover, when the sweep runs over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
}

impl Point {
    /// Its trials' folder under the strategy's: `b8-h200`, or `b8-h200-l300` with a lag.
    pub fn folder(&self) -> String {
        let lag = self.lag_ms.map(|l| format!("-l{l}")).unwrap_or_default();
        format!("b{}-h{}{lag}", self.buyers, self.hold_us)
    }

    /// As the progress bar names it: `8 buyers 200 µs`, with `lag 300 ms` when swept.
    pub fn label(&self) -> String {
        let lag = self.lag_ms.map(|l| format!(" lag {l} ms")).unwrap_or_default();
        format!("{} buyers {} µs{lag}", self.buyers, self.hold_us)
    }
}

impl Scenario {
    /// Every combination of buyers, race window and lag to run, in order; one without a sweep.
    pub fn points(&self) -> Vec<Point> {
        match &self.sweep {
            None => vec![Point {
                buyers: self.buyers.count,
                hold_us: self.buyers.hold_us,
                lag_ms: None,
            }],
            Some(sweep) => {
                let lags: Vec<Option<u64>> = match sweep.lag_ms.is_empty() {
                    true => vec![None],
                    false => sweep.lag_ms.iter().copied().map(Some).collect(),
                };
                let mut points = Vec::new();
                for &buyers in &sweep.count {
                    for &hold_us in &sweep.hold_us {
                        points.extend(lags.iter().map(|&lag_ms| Point {
                            buyers,
                            hold_us,
                            lag_ms,
                        }));
                    }
                }
                points
            }
        }
    }

    /// Runs these strategies instead of the file's (`--strategy`); refuses one that its store
    /// cannot serve.
    pub fn choose_strategies(&mut self, strategies: Vec<StrategyName>) -> Result<(), String> {
        if self.stock.store == StoreKind::Service {
            let strategies: Vec<StrategyName> = strategies.into_iter().map(StrategyName::in_service).collect();
            if let Some(unknown) = strategies.iter().find(|s| !self.service.contains_key(s.name())) {
                return Err(format!(
                    "\"{unknown}\" is not a [service.NAME] table of the scenario: name one of {}",
                    quoted(self.service.keys().map(String::as_str))
                ));
            }
            self.strategies = strategies;
            return Ok(());
        }
        if let Some(variant) = strategies.iter().find_map(|s| s.variant()) {
            return Err(format!(
                "\"{}\" is not a strategy: use one of {}",
                variant.name(),
                StrategyName::list()
            ));
        }
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
        if let Some(lag) = point.lag_ms {
            one.faults.lag_ms = lag;
        }
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
    /// The throwaway server's replicas: 0 for a single server.
    #[serde(default)]
    pub replicas: u32,
    /// `redis`: `WAIT` for this many replicas after each sale, before the buyer is told.
    #[serde(default)]
    pub wait_replicas: u32,
    /// `redis`: the primary refuses writes while fewer replicas are in reach.
    #[serde(default)]
    pub min_replicas_to_write: u32,
    /// `postgres`: how commits wait for the standbys.
    #[serde(default)]
    pub synchronous: Synchronous,
}

/// `[stock] synchronous`: whether a PostgreSQL commit waits for a standby.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Synchronous {
    /// Asynchronous standbys: a commit is told as soon as the primary has it.
    #[default]
    Off,
    /// A commit waits until a standby has flushed it.
    On,
    /// A commit waits until a standby has applied it.
    RemoteApply,
}

impl Stock {
    /// Whether sim starts the store's servers behind its fault proxy: with replicas, or a
    /// fault on the links.
    pub fn proxied(&self, faults: &Faults) -> bool {
        self.url.is_none() && (self.replicas > 0 || faults.partition_ms > 0 || faults.latency_ms > 0)
    }
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
    /// An open loop (store `service`): purchases per second over all buyers, each sent at
    /// its planned time; `None`: a closed loop, each buyer's next purchase as soon as the
    /// last is answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// How an open loop spaces its purchases.
    #[serde(default)]
    pub arrivals: Arrivals,
}

/// `[buyers] arrivals`: how an open loop's purchases are spaced.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Arrivals {
    /// Evenly: each buyer's share of the rate, staggered across buyers.
    #[default]
    Constant,
    /// A Poisson process: exponential gaps drawn from the seed.
    Poisson,
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
    /// Once per trial, at a planned sale: cut the replicas off from the primary for
    /// `lag_ms` while the sale goes on, kill the primary, heal, promote a replica.
    #[serde(default)]
    pub failover: bool,
    /// How long the replicas are cut off before the primary is killed.
    #[serde(default)]
    pub lag_ms: u64,
    /// Once per trial, at a planned sale: cut the primary off from its replicas and the
    /// buyers for this long (0: never).
    #[serde(default)]
    pub partition_ms: u64,
    /// Every byte between buyers and the store is held this long (0: none).
    #[serde(default)]
    pub latency_ms: u64,
    /// `[[faults.commands]]`: the user's own fault commands, run once per trial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<FaultCommand>,
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
    /// A service sold twice to one purchase sent again with its idempotency key.
    DuplicateSale,
    /// Sales a buyer was told of that the store's record of sales does not hold.
    LostAcknowledged,
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
        // A variant saved in results.json may read back as the built-in strategy of its name.
        let own = self.per_strategy.get(&strategy).or_else(|| {
            self.per_strategy
                .iter()
                .find(|(s, _)| s.name() == strategy.name())
                .map(|(_, e)| e)
        });
        if let Some(own) = own {
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
    "{}{}{}: {}",
    file.display(),
    line.map(|l| format!(", line {l}")).unwrap_or_default(),
    field.as_ref().map(|f| format!(", field `{f}`")).unwrap_or_default(),
    // A message may quote the file's text: its secrets are masked wherever it is shown.
    mask_text(message)
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
    fn a_list_of_lags_sweeps_the_failover_over_each_and_names_its_points() {
        let base = "strategy = \"atomic\"\n[stock]\nstore = \"redis\"\nreplicas = 2\n[buyers]\ncount = 8\nhold_us = 100\n[faults]\nfailover = true\n";
        let s = parse_str(&format!("{base}lag_ms = [0, 300, 1000]\n")).unwrap();
        assert_eq!(
            s.faults.lag_ms, 0,
            "the first lag, as buyers.count holds the first count"
        );
        let points = s.points();
        assert_eq!(
            points
                .iter()
                .map(|p| (p.buyers, p.hold_us, p.lag_ms))
                .collect::<Vec<_>>(),
            [(8, 100, Some(0)), (8, 100, Some(300)), (8, 100, Some(1000))]
        );
        assert_eq!(s.at(points[1]).faults.lag_ms, 300);
        assert_eq!(points[2].folder(), "b8-h100-l1000");
        let both = parse_str(&format!("{base}lag_ms = [0, 300]\n").replace("count = 8", "count = [2, 8]")).unwrap();
        assert_eq!(both.points().len(), 4, "every count at every lag");
        let one = parse_str(&format!("{base}lag_ms = 300\n")).unwrap();
        assert!(
            one.sweep.is_none() && one.points()[0].lag_ms.is_none(),
            "one lag is no sweep"
        );
        for (list, said) in [
            ("[0, 0]", "listed twice"),
            ("[]", "from 1 to 50"),
            ("[-1]", "out of bounds"),
        ] {
            let e = parse_str(&format!("{base}lag_ms = {list}\n")).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("faults.lag_ms"), "{e}");
            assert!(e.to_string().contains(said), "{e}");
        }
        let e = parse_str("[stock]\nstore = \"redis\"\nreplicas = 1\n[faults]\nlag_ms = [0, 10]\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("faults.lag_ms"), "{e}");
    }

    #[test]
    fn fault_commands_take_a_list_or_a_line_and_their_errors_name_the_table_and_field() {
        let s = parse_str(
            "[stock]\nstore = \"redis\"\nurl = \"redis://127.0.0.1:1\"\n[[faults.commands]]\nname = \"pause\"\n\
             run = [\"docker\", \"pause\", \"db\"]\nundo = \"docker unpause db\"\nat_ms = 200\nduration_ms = 500\n\
             [[faults.commands]]\nrun = \"true\"\n",
        )
        .unwrap();
        let [pause, second] = &s.faults.commands[..] else {
            panic!("{:?}", s.faults.commands)
        };
        assert_eq!(pause.run.argv(), ["docker", "pause", "db"]);
        assert_eq!(pause.undo.as_ref().unwrap().argv(), ["sh", "-c", "docker unpause db"]);
        assert_eq!((pause.at_ms, pause.duration_ms, pause.timeout_ms), (200, 500, 10_000));
        assert_eq!((second.name.as_str(), second.at_ms), ("command 1", 0));
        let secret =
            parse_str("[[faults.commands]]\nrun = [\"psql\", \"postgres://admin:hunter2@db/shop\"]\n").unwrap();
        let saved = serde_json::to_string(&secret.faults.commands).unwrap();
        assert!(saved.contains("admin:***@db") && !saved.contains("hunter2"), "{saved}");
        for (table, field) in [
            ("name = \"x\"\n", "faults.commands[0].run"),
            ("run = []\n", "faults.commands[0].run"),
            ("run = [\"a\", 1]\n", "faults.commands[0].run"),
            ("run = \" \"\n", "faults.commands[0].run"),
            ("run = \"a\"\nduration_ms = 5\n", "faults.commands[0].duration_ms"),
            ("run = \"a\"\ntimeout_ms = 0\n", "faults.commands[0].timeout_ms"),
            ("run = \"a\"\nname = \"\"\n", "faults.commands[0].name"),
        ] {
            let e = parse_str(&format!("[[faults.commands]]\n{table}")).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{table}: {e}");
        }
        let e = parse_str(
            "[[faults.commands]]\nrun = \"a\"\nname = \"x\"\n[[faults.commands]]\nrun = \"b\"\nname = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("faults.commands[1].name"), "{e}");
        assert!(
            parse_str("[[faults.commands]]\nrun = \"a\"\nwhen = 3\n").is_err(),
            "an unknown field"
        );
    }

    #[test]
    fn replicas_and_their_faults_are_refused_where_they_cannot_act() {
        let s = parse_str(
            "strategy = \"atomic\"\n[stock]\nstore = \"redis\"\nreplicas = 2\nwait_replicas = 1\n[faults]\nfailover = true\n",
        )
        .unwrap();
        assert_eq!((s.stock.replicas, s.stock.wait_replicas), (2, 1));
        assert_eq!((s.faults.failover, s.faults.lag_ms), (true, validate::DEFAULT_LAG_MS));
        for (text, field) in [
            ("[stock]\nreplicas = 1\n", "stock.replicas"),
            (
                "[stock]\nstore = \"redis\"\nreplicas = 1\nwait_replicas = 2\n",
                "stock.wait_replicas",
            ),
            (
                "[stock]\nstore = \"postgres\"\nwait_replicas = 1\n",
                "stock.wait_replicas",
            ),
            (
                "[stock]\nstore = \"redis\"\nsynchronous = \"on\"\n",
                "stock.synchronous",
            ),
            (
                "[stock]\nstore = \"redis\"\n[faults]\nfailover = true\n",
                "faults.failover",
            ),
            (
                "[stock]\nstore = \"redis\"\nreplicas = 1\n[faults]\nlag_ms = 10\n",
                "faults.lag_ms",
            ),
            (
                "[stock]\nstore = \"shm\"\n[faults]\nlatency_ms = 10\n",
                "faults.latency_ms",
            ),
            (
                "[stock]\nstore = \"redis\"\nreplicas = 1\n[faults]\nfailover = true\nkill_store = true\n",
                "faults.failover",
            ),
        ] {
            let e = parse_str(text).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{text}: {e}");
        }
    }

    #[test]
    fn postgres_standbys_take_a_way_to_commit_and_a_failover() {
        let s = parse_str(
            "strategy = \"atomic\"\n[stock]\nstore = \"postgres\"\nreplicas = 2\nsynchronous = \"remote_apply\"\n[faults]\nfailover = true\n",
        )
        .unwrap();
        assert_eq!((s.stock.replicas, s.stock.synchronous), (2, Synchronous::RemoteApply));
        assert!(s.faults.failover);
        let s = parse_str("[stock]\nstore = \"postgres\"\nreplicas = 1\n[faults]\npartition_ms = 10\nlatency_ms = 2\n")
            .unwrap();
        assert_eq!(
            (s.faults.partition_ms, s.faults.latency_ms),
            (10, 2),
            "standbys have the proxy's links"
        );
        for (text, field) in [
            (
                "[stock]\nstore = \"postgres\"\nsynchronous = \"on\"\n",
                "stock.synchronous",
            ),
            (
                "[stock]\nstore = \"postgres\"\nreplicas = 1\nsynchronous = \"remote-apply\"\n",
                "stock.synchronous",
            ),
            (
                "[stock]\nstore = \"postgres\"\n[faults]\npartition_ms = 10\n",
                "faults.partition_ms",
            ),
            (
                "[stock]\nstore = \"postgres\"\nurl = \"postgres://a,b/db\"\nreplicas = 1\n",
                "stock.replicas",
            ),
            (
                "[stock]\nstore = \"postgres\"\nreplicas = 1\n[faults]\nkill_store = true\n",
                "faults.kill_store",
            ),
        ] {
            let e = parse_str(text).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{text}: {e}");
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
