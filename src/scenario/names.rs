//! The names of stores and strategies, the store operations each offers or needs, and the
//! check that a strategy's store can serve it.

use serde::{Deserialize, Serialize};
use strum::IntoEnumIterator;

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
    /// The user's own service, which sim only buys from (`[service.NAME]`).
    Service,
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
            StoreKind::Service => Ops::BUY,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::EnumString, strum::IntoStaticStr)]
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
    /// A variant of the user's own service, a `[service.NAME]` table (`store = "service"`):
    /// it keeps its stock and its guard to itself, and sim only buys from it.
    #[strum(disabled)]
    Service(Variant),
}

/// The name of a `[service.NAME]` table. Names are interned, so that a [`StrategyName`] stays
/// `Copy` and can be compared and hashed like the built-in ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Variant(&'static str);

/// Every variant's name, in the order first named.
static VARIANT_NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

impl Variant {
    /// The variant named `name`.
    pub fn new(name: &str) -> Variant {
        let mut names = VARIANT_NAMES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&known) = names.iter().find(|n| **n == name) {
            return Variant(known);
        }
        // A scenario names a handful: each is kept for the life of the process.
        let kept: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.push(kept);
        Variant(kept)
    }

    /// Its place among the variants this process has named, from 0.
    pub fn index(self) -> usize {
        VARIANT_NAMES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .position(|n| *n == self.0)
            .unwrap_or(0)
    }

    /// Its name: the table's `NAME`.
    pub fn name(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for StrategyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for StrategyName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A built-in strategy's name reads as that strategy, any other as a variant of a service: a
/// saved run of store `service` maps its names back with [`StrategyName::in_service`].
impl<'de> Deserialize<'de> for StrategyName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StrategyName, D::Error> {
        let name = String::deserialize(d)?;
        Ok(StrategyName::parse(&name).unwrap_or_else(|| StrategyName::Service(Variant::new(&name))))
    }
}

impl StrategyName {
    /// Every strategy, in the order the report lists them.
    pub const ALL: &'static [StrategyName] = &[
        StrategyName::None,
        StrategyName::FileLock,
        StrategyName::Semaphore,
        StrategyName::Queue,
        StrategyName::OfdLock,
        StrategyName::SysvSemaphore,
        StrategyName::RobustMutex,
        StrategyName::Lease,
        StrategyName::Atomic,
        StrategyName::Optimistic,
        StrategyName::RowLock,
        StrategyName::AdvisoryLock,
        StrategyName::Transaction,
    ];

    /// The operations on the stock it needs from its store; `fencing` is `[lock] fencing`.
    pub const fn needs(self, fencing: bool) -> Ops {
        match self {
            StrategyName::Atomic => Ops::DECREMENT_IF_POSITIVE,
            StrategyName::Optimistic => Ops::READ_WRITE.and(Ops::COMPARE_AND_SET),
            StrategyName::Lease if fencing => Ops::READ_WRITE.and(Ops::FENCED_WRITE),
            StrategyName::RowLock | StrategyName::AdvisoryLock | StrategyName::Transaction => {
                Ops::READ_WRITE.and(Ops::TRANSACTIONS)
            }
            StrategyName::Service(_) => Ops::BUY,
            _ => Ops::READ_WRITE,
        }
    }

    /// Its name in a scenario: `file-lock`, or a variant's `NAME`.
    pub fn name(self) -> &'static str {
        match self {
            StrategyName::Service(variant) => variant.name(),
            builtin => builtin.into(),
        }
    }

    /// The variant of the user's service, if it is one.
    pub fn variant(self) -> Option<Variant> {
        match self {
            StrategyName::Service(variant) => Some(variant),
            _ => None,
        }
    }

    /// The same name as a variant of a service: what a name saved by a run of store
    /// `service` means, whatever built-in strategy it also names (`atomic`).
    pub fn in_service(self) -> StrategyName {
        match self {
            StrategyName::Service(_) => self,
            builtin => StrategyName::Service(Variant::new(builtin.name())),
        }
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
    /// Buy from a service that keeps its stock and its guard to itself.
    pub const BUY: Ops = Ops(1 << 5);

    const NAMES: [(Ops, &'static str); 6] = [
        (Ops::READ_WRITE, "read and write"),
        (Ops::COMPARE_AND_SET, "compare-and-set"),
        (Ops::DECREMENT_IF_POSITIVE, "decrement-if-positive"),
        (Ops::TRANSACTIONS, "transactions"),
        (Ops::FENCED_WRITE, "fenced write"),
        (Ops::BUY, "a purchase from your own service"),
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
