//! The checker: judges a trial from its history and its final stock alone.
//!
//! It knows nothing of the strategy that ran, so its verdicts are independent evidence.
//! Operations whose process died inside them are indeterminate: the checker counts both
//! possible outcomes for them and never calls them lost updates or oversells.

use serde::{Deserialize, Serialize};

use crate::history::History;

/// What the checker is told besides the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Tickets written to the stock before the trial.
    pub initial_stock: i64,
    /// What the stock held when every worker had finished.
    pub final_stock: FinalStock,
    /// The trial was still running at its deadline and was ended.
    pub deadline_hit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalStock {
    Value(i64),
    /// The stock file held no number; the text found, quoted.
    Unreadable(String),
}

/// The verdict of a trial, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Safe,
    Inconsistent,
    Oversold,
    Crashed,
    Deadlock,
}

/// One thing the checker found wrong, with the operations involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// Indices into `History::ops`.
    pub ops: Vec<usize>,
    /// When it happened, ns after the start gate.
    pub at_ns: u64,
    /// One sentence a person can read.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    Oversold,
    DuplicateTicket,
    LostUpdate,
    TornRead,
    /// A purchase that finished before another began holds a lower ticket.
    Order,
    FinalStockUnreadable,
    Crashed,
    Deadlock,
}

/// Purchase latency, invocation to completion, of the completed purchases, in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

/// Everything the checker concludes about one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub final_stock: Option<i64>,
    pub attempts: u64,
    pub sold: u64,
    pub sold_out: u64,
    pub oversold: u64,
    pub duplicate_tickets: u64,
    pub lost_updates: u64,
    pub torn_reads: u64,
    pub indeterminate: u64,
    pub order_violations: u64,
    pub produced: u64,
    pub dropped: u64,
    pub unconsumed: u64,
    pub verdict: Verdict,
    pub wall_ms: f64,
    pub purchases_per_s: f64,
    pub latency: Latency,
    /// The first anomalies found, at most `MAX_ANOMALIES`, earliest first.
    pub anomalies: Vec<Anomaly>,
}

/// How many anomalies a trial lists; the counts above cover all of them.
pub const MAX_ANOMALIES: usize = 50;

/// Judges one trial.
pub fn check(history: &History, facts: &Facts) -> Check {
    let _ = (history, facts);
    todo!("the checker")
}
