//! The names of stores and strategies, the store operations each offers or needs, and the
//! check that a strategy's store can serve it.

use serde::{Deserialize, Serialize};
use strum::{IntoEnumIterator, VariantArray};

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
pub(super) fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
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
