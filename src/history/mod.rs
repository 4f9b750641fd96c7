//! The history: every operation of a trial, as each worker recorded it.
//!
//! A trial has one history file, made by the runner: a header page, then a region per worker,
//! each page-aligned. Each worker maps its own region into memory, so that recording an event
//! is a few stores (no system call) and everything recorded before the worker died is still
//! in the file: the kernel keeps a shared mapping's pages when a process is killed. One file
//! rather than one per worker, because creating a hundred files where the previous run's
//! were just deleted cost ext4 as much as starting the hundred processes. An operation is
//! recorded as an invocation (its start) and, later, a completion (its outcome); one whose
//! completion never came is indeterminate, as Jepsen's `info`. Operations are stamped in
//! [`ticks`](crate::sys::clock::ticks); the header's two clock pairs turn them into nanoseconds when read.

pub mod export;
mod format;
pub mod import;
mod reader;
mod recorder;
pub mod speed;
pub mod stats;

pub use format::{
    FILE_NAME, NO_ENTRY, NO_VALUE, Record, Region, SEGMENT_OPS, SEGMENT_SECONDS, SEGMENTS_DIR, file_len, segment_path,
};
pub use reader::{HistoryError, clock_uncertainty};
pub use recorder::{Recorder, create_file, note_clock_uncertainty, note_clock_uncertainty_ns, seal_file};

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a worker process is for. The number is how a history file stores it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::FromRepr,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
#[repr(u8)]
pub enum Role {
    /// Makes purchase attempts.
    Buyer = 1,
    /// Puts entries into the entry queue.
    Producer = 2,
    /// Owns the stock under `queue` and sells on the buyers' requests.
    Seller = 3,
    /// Holds the entries between producers and buyers.
    EntryQueue = 4,
    /// Holds the stock of the `manager` store.
    Manager = 5,
}

impl Role {
    /// Its name, as a person reads it: `buyer`, `entry-queue`.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// What an operation did. The number is how a history file stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::FromRepr)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Kind {
    /// Read the stock, hold, write stock − 1 if it was above zero.
    Purchase = 1,
    /// A producer puts an entry into the entry queue.
    Put = 2,
    /// A buyer takes an entry from the entry queue.
    Take = 3,
    /// The seller's side of a purchase under `queue`: what it read and wrote for a request.
    Sale = 4,
}

/// How an operation ended, as the process that made it was told. The number is how a
/// history file stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::FromRepr)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Outcome {
    /// Invoked and never completed: the process died or was ended inside it.
    Pending = 0,
    /// Purchase: the stock was above zero and the buyer wrote it down by one.
    Sold = 1,
    /// Purchase: the stock read 0.
    SoldOut = 2,
    /// Purchase: the stock file was empty or unparseable.
    Unreadable = 3,
    /// Put or take: done.
    Ok = 4,
    /// Put: the queue was full and the put did not wait.
    Dropped = 5,
    /// Take: the producers are done and the queue is empty.
    Closed = 6,
    /// Purchase: the store refused the write, its lease's fencing token being older than
    /// one it had accepted; the buyer was told it failed.
    Fenced = 7,
    /// Purchase: every compare-and-set conflicted, up to `[transaction] retries`; the buyer
    /// gave up and was told it failed.
    GaveUp = 8,
    /// Purchase from a service: refused (another 4xx than sold out, a refused connection, an
    /// `error`); the buyer was told it failed, and it did not happen.
    Failed = 9,
    /// Purchase from a service: no answer sim could read (a 5xx, a timeout, a reset
    /// connection, `unknown`); it may have happened.
    Unknown = 10,
}

/// One worker process of a trial, as its history file describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worker {
    /// What the worker was for.
    pub role: Role,
    /// Which of them.
    pub index: u32,
    /// Its process id.
    pub pid: u32,
    /// At the start gate, ns after the gate opened (negative: before it).
    pub ready_ns: i64,
    /// Finished its work normally, ns after the gate; `None` if it died or was ended first.
    pub finish_ns: Option<u64>,
}

impl Worker {
    /// `buyer 3`.
    pub fn label(&self) -> String {
        format!("{} {}", self.role.name(), self.index)
    }
}

/// One operation, read back from a history; times in ns after the start gate opened.
///
/// A history holds two of these per sale under `queue`, so it is kept to 64 bytes: the parts
/// an operation may lack are stored with a sentinel for "none" (`NO_TIME`, `NO_VALUE`,
/// `NO_ENTRY`) and read through the methods of the same names, which give them as `Option`s.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// Index into `History::workers`.
    pub worker: u32,
    /// What it did.
    pub kind: Kind,
    /// How it ended, as its process was told.
    pub outcome: Outcome,
    /// Conflicts it retried (`optimistic`), with [`Op::RECOVERED`] as its top bit.
    retries: u16,
    /// Its invocation, ns after the start gate.
    pub start: u64,
    read: u64,
    write: u64,
    end: u64,
    value: i64,
    written: i64,
    entry: u64,
}

const _: () = assert!(std::mem::size_of::<Op>() <= 64);

impl Op {
    /// A moment that never came. (A real one `u64::MAX` ns, 584 years, after the gate would
    /// read as none too.)
    const NO_TIME: u64 = u64::MAX;

    /// An operation with only its invocation: no read, write, end, value, written or entry.
    pub fn new(worker: u32, kind: Kind, outcome: Outcome, start: u64) -> Op {
        Op {
            worker,
            kind,
            outcome,
            retries: 0,
            start,
            read: Op::NO_TIME,
            write: Op::NO_TIME,
            end: Op::NO_TIME,
            value: NO_VALUE,
            written: NO_VALUE,
            entry: NO_ENTRY,
        }
    }

    /// The bit of `retries` that says the operation recovered a lock from a dead holder.
    const RECOVERED: u16 = 1 << 15;
    /// The bit of `retries` that says its ticket is a service's id, not a stock number.
    const ID_TICKET: u16 = 1 << 14;
    /// The bit of `retries` that says its invocation is an open loop's planned send time.
    const PLANNED: u16 = 1 << 13;
    /// Every mark.
    const MARKS: u16 = Op::RECOVERED | Op::ID_TICKET | Op::PLANNED;

    /// Conflicts it retried before it ended (at most 8,191 are told apart).
    pub fn retries(&self) -> u32 {
        (self.retries & !Op::MARKS) as u32
    }

    /// Whether its ticket is an id a service gave (its value a number made from it), not the
    /// stock it was sold from: the checks that need numbers do not apply to it.
    pub fn id_ticket(&self) -> bool {
        self.retries & Op::ID_TICKET != 0
    }

    /// Whether its invocation is an open loop's planned send time, and its read when it was
    /// sent: its service time is from the read to the end.
    pub fn planned(&self) -> bool {
        self.retries & Op::PLANNED != 0
    }

    /// The same operation, planned (or not).
    pub fn with_planned(mut self, planned: bool) -> Op {
        self.retries = (self.retries & !Op::PLANNED) | if planned { Op::PLANNED } else { 0 };
        self
    }

    /// The same operation, its ticket an id (or not).
    pub fn with_id_ticket(mut self, id: bool) -> Op {
        self.retries = (self.retries & !Op::ID_TICKET) | if id { Op::ID_TICKET } else { 0 };
        self
    }

    /// Whether it took its lock from a holder that had died, and made it consistent.
    pub fn recovered(&self) -> bool {
        self.retries & Op::RECOVERED != 0
    }

    /// The same operation, having retried `retries` conflicts.
    pub fn with_retries(mut self, retries: u32) -> Op {
        self.retries = (self.retries & Op::MARKS) | retries.min(Op::PLANNED as u32 - 1) as u16;
        self
    }

    /// The same operation, having recovered its lock from a dead holder (or not).
    pub fn with_recovered(mut self, recovered: bool) -> Op {
        self.retries = (self.retries & !Op::RECOVERED) | if recovered { Op::RECOVERED } else { 0 };
        self
    }

    fn time(t: u64) -> Option<u64> {
        (t != Op::NO_TIME).then_some(t)
    }

    fn value_of(v: i64) -> Option<i64> {
        (v != NO_VALUE).then_some(v)
    }

    /// When the stock was read (for a purchase).
    pub fn read(&self) -> Option<u64> {
        Op::time(self.read)
    }

    /// When the stock was written (for a sold purchase).
    pub fn write(&self) -> Option<u64> {
        Op::time(self.write)
    }

    /// Completion: after the unlock or the reply; none if it never completed.
    pub fn end(&self) -> Option<u64> {
        Op::time(self.end)
    }

    /// The stock value read: the ticket, for a sold purchase.
    pub fn value(&self) -> Option<i64> {
        Op::value_of(self.value)
    }

    /// The stock value written.
    pub fn written(&self) -> Option<i64> {
        Op::value_of(self.written)
    }

    /// The entry put or taken: producer index in the high 32 bits, its sequence number below.
    pub fn entry(&self) -> Option<u64> {
        (self.entry != NO_ENTRY).then_some(self.entry)
    }

    /// The latest moment the operation recorded: its completion, else its write, its read,
    /// or its invocation. The one definition of when an operation was last seen.
    pub fn latest(&self) -> u64 {
        [self.end(), self.write(), self.read()]
            .into_iter()
            .flatten()
            .fold(self.start, u64::max)
    }

    /// A purchase's latency, invocation to completion, in ns: `None` for any other kind and
    /// for a purchase that never completed. The one definition the checker's neighbours use.
    pub fn latency(&self) -> Option<u64> {
        if self.kind != Kind::Purchase || self.outcome == Outcome::Pending {
            return None;
        }
        self.end().map(|end| end.saturating_sub(self.start))
    }

    /// The same operation with its read set; `None` for none. So for the other `with_`s.
    #[must_use]
    pub fn with_read(mut self, read: Option<u64>) -> Op {
        self.read = read.unwrap_or(Op::NO_TIME);
        self
    }

    #[must_use]
    /// The same operation, written at `write`.
    pub fn with_write(mut self, write: Option<u64>) -> Op {
        self.write = write.unwrap_or(Op::NO_TIME);
        self
    }

    #[must_use]
    /// The same operation, completed at `end`.
    pub fn with_end(mut self, end: Option<u64>) -> Op {
        self.end = end.unwrap_or(Op::NO_TIME);
        self
    }

    #[must_use]
    /// The same operation, having read `value`.
    pub fn with_value(mut self, value: Option<i64>) -> Op {
        self.value = value.unwrap_or(NO_VALUE);
        self
    }

    #[must_use]
    /// The same operation, having written `written`.
    pub fn with_written(mut self, written: Option<i64>) -> Op {
        self.written = written.unwrap_or(NO_VALUE);
        self
    }

    #[must_use]
    /// The same operation, for `entry`.
    pub fn with_entry(mut self, entry: Option<u64>) -> Op {
        self.entry = entry.unwrap_or(NO_ENTRY);
        self
    }
}

/// The sentinels shown as `None`, as the accessors give them.
impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Op")
            .field("worker", &self.worker)
            .field("kind", &self.kind)
            .field("outcome", &self.outcome)
            .field("start", &self.start)
            .field("read", &self.read())
            .field("write", &self.write())
            .field("end", &self.end())
            .field("value", &self.value())
            .field("written", &self.written())
            .field("entry", &self.entry())
            .finish()
    }
}

/// `Purchase Sold at 1.250 ms`.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:?} at {:.3} ms",
            self.kind,
            self.outcome,
            self.start as f64 / 1e6
        )
    }
}

/// Every operation of one trial.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The trial's worker processes that started.
    pub workers: Vec<Worker>,
    /// Ordered by worker, then by the worker's own order.
    pub ops: Vec<Op>,
}
