//! The checker: judges a trial from its history and its final stock alone.
//!
//! It knows nothing of the strategy that ran, so its verdicts are independent evidence. It is
//! shaped like Jepsen's Elle: [`judge`] applies every rule that classifies an operation, once;
//! [`cases`] has one function per anomaly kind, each returning its cases as data; [`render`]
//! writes the sentences from those cases. The report draws [`judge::Judged`] and the
//! anomalies, never its own reading of a history. Operations whose process died inside them
//! are indeterminate: the checker counts both possible outcomes for them and never calls
//! them lost updates or oversells. Throughput and latency are measured elsewhere
//! ([`crate::history::speed`]): they are no verdict.

pub mod cases;
pub mod judge;
pub mod render;
pub mod stream;

use serde::{Deserialize, Serialize};

use crate::history::{History, Kind, Outcome};
pub use judge::{Judged, Judgement, Told, judge};

/// What the checker is told besides the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Tickets written to the stock before the trial.
    pub initial_stock: i64,
    /// What the stock held when every worker had finished.
    pub final_stock: FinalStock,
    /// The trial was still running at its deadline and was ended.
    pub deadline_hit: bool,
    /// The store's own record of its sales (PostgreSQL and Redis keep one, written in the
    /// same step as the decrement), if it has one.
    pub sales_record: Option<Vec<RecordedSale>>,
    /// How far apart two processes' stamps of one moment can be, in ns, as measured for the
    /// trial (0 for a history from elsewhere unless told): the real-time order takes sales
    /// closer than this as concurrent.
    pub clock_uncertainty_ns: u64,
    /// When the store's primary was killed in a failover, ns after the gate, if it was: a
    /// ticket lost with it and sold again is told as lost in the failover.
    pub failover_ns: Option<u64>,
}

impl Facts {
    /// A trial that ended on its own (no deadline), from `initial` tickets to a readable
    /// `final_stock`, on a store that keeps no record of its sales.
    pub fn ended(initial: i64, final_stock: i64) -> Facts {
        Facts {
            initial_stock: initial,
            final_stock: FinalStock::Value(final_stock),
            deadline_hit: false,
            sales_record: None,
            clock_uncertainty_ns: 0,
            failover_ns: None,
        }
    }
}

/// The checks that need tickets to be stock values, said of a history whose tickets are ids.
pub fn not_checkable_with_ids() -> Vec<String> {
    ["order_violations", "torn_reads", "phantom_stock"]
        .iter()
        .map(|check| format!("{check}: not checkable: tickets are ids"))
        .collect()
}

/// One sale as the store recorded it: which worker bought which ticket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordedSale {
    /// The worker's role, as `buyer`.
    pub worker: String,
    /// Which of them.
    pub index: i64,
    /// The ticket: the stock value it decremented.
    pub ticket: i64,
}

/// What the stock held at the end of a trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalStock {
    /// A number.
    Value(i64),
    /// The stock file held no number; the text found, quoted.
    Unreadable(String),
}

/// The verdict of a trial, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Verdict {
    /// No anomaly (an undersold stock alone is a warning, not an anomaly).
    Safe,
    /// Duplicates, lost updates, torn reads, phantom stock, order violations or lost
    /// acknowledged sales, without overselling.
    Inconsistent,
    /// More tickets sold than the stock held.
    Oversold,
    /// A process the sale depends on died.
    Crashed,
    /// The trial hit its deadline.
    Deadlock,
}

/// One thing the checker found wrong, with the operations involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What kind of anomaly.
    pub kind: AnomalyKind,
    /// Indices into `History::ops`.
    pub ops: Vec<usize>,
    /// When it happened, ns after the start gate.
    pub at_ns: u64,
    /// One sentence a person can read.
    pub text: String,
}

/// The kinds of anomaly, one function each in [`cases`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// Tickets sold beyond the stock.
    Oversold,
    /// A ticket sold more than once.
    DuplicateTicket,
    /// Sales the final stock does not show.
    LostUpdate,
    /// A read of an empty or unparseable stock, or of a number never written.
    TornRead,
    /// The stock rose above where it started.
    PhantomStock,
    /// A purchase that finished before another began holds a lower ticket.
    Order,
    /// A sale its buyer was told succeeded that the store's own record of sales does not hold.
    LostAcknowledged,
    /// The stock held no number at the end.
    FinalStockUnreadable,
    /// A process the sale depends on died.
    Crashed,
    /// The trial hit its deadline.
    Deadlock,
    /// One purchase, sent again with its idempotency key, sold twice with different tickets.
    DuplicateSale,
}

/// Everything the checker concludes about one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What the stock held at the end; `None` when it held no number.
    pub final_stock: Option<i64>,
    /// Purchase attempts: sold + sold_out + unreadable + fenced + gave_up + indeterminate.
    pub attempts: u64,
    /// Purchases the buyer was told succeeded, whatever number it read.
    pub sold: u64,
    /// Purchases told the sale was over.
    pub sold_out: u64,
    /// Purchases that found the stock empty or unparseable.
    #[serde(default)]
    pub unreadable: u64,
    /// Purchases whose write the store refused, its lease's fencing token being older than
    /// one it had accepted: the buyer was told it failed.
    #[serde(default)]
    pub fenced: u64,
    /// Purchases that gave up after `[transaction] retries` conflicts: the buyer was told it
    /// failed.
    #[serde(default)]
    pub gave_up: u64,
    /// Purchases a service refused (another 4xx than sold out, a refused connection, an
    /// `error`): the buyer was told it failed, and it did not happen.
    #[serde(default)]
    pub failed: u64,
    /// Conflicts retried, over every purchase (`optimistic`).
    #[serde(default)]
    pub retries: u64,
    /// Purchases that took their lock from a holder that had died, and repaired it (a robust
    /// mutex's `EOWNERDEAD`).
    #[serde(default)]
    pub recovered: u64,
    /// Tickets left in the stock at the end although a buyer gave up or was told sold out: a
    /// warning, not an anomaly.
    #[serde(default)]
    pub undersold: u64,
    /// max(0, sold − initial stock).
    pub oversold: u64,
    /// Receipts whose ticket was already issued to another receipt.
    pub duplicate_tickets: u64,
    /// sold − (initial − final), when positive and the stock never rose.
    pub lost_updates: u64,
    /// Unreadable attempts, and reads of a number never written (these may be sold or sold
    /// out too).
    pub torn_reads: u64,
    /// Tickets that never existed: the highest stock seen − the initial stock, when positive.
    #[serde(default)]
    pub phantom_stock: u64,
    /// Purchases whose process died inside them.
    pub indeterminate: u64,
    /// Sales that contradict the real-time order of a decrementing stock.
    pub order_violations: u64,
    /// Entries put into the entry queue.
    pub produced: u64,
    /// Entries a non-blocking put dropped.
    pub dropped: u64,
    /// Entries left in the queue.
    pub unconsumed: u64,
    /// Entries handed out to a buyer that was ended before it began their purchase (a daemon
    /// buyer ended between its take and its purchase): produced = attempts + unconsumed +
    /// abandoned + dropped.
    #[serde(default)]
    pub abandoned: u64,
    /// Sales a buyer was told succeeded that the store's own record of sales does not hold
    /// (PostgreSQL and Redis): acknowledged, then lost.
    #[serde(default)]
    pub lost_acknowledged: u64,
    /// Processes the sale depends on (a seller, an entry queue, a manager) that died before
    /// finishing their work.
    #[serde(default)]
    pub crashed: u64,
    /// How far apart two processes' stamps of one moment can be, in ns: measured for each
    /// trial before its start gate, and what the real-time order was judged with (0 in a
    /// results file whose run measured none).
    #[serde(default)]
    pub clock_uncertainty_ns: u64,
    /// Purchases a service sold a second time, with another ticket, when they were sent again
    /// with the same idempotency key.
    #[serde(default)]
    pub duplicate_sale: u64,
    /// The checks this trial could not make, each with why: a service whose tickets are ids
    /// leaves order violations, torn reads and phantom stock not checkable (never passed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_checkable: Vec<String>,
    /// The verdict, from the counts above and the processes' fate.
    pub verdict: Verdict,
    /// The first anomalies found, at most `MAX_ANOMALIES`, earliest first.
    pub anomalies: Vec<Anomaly>,
}

/// How many anomalies a trial lists; the counts above cover all of them.
pub const MAX_ANOMALIES: usize = 50;

/// Judges one trial.
pub fn check(history: &History, facts: &Facts) -> Check {
    let judged = judge(history, facts);
    let cases = cases::all(history, &judged, facts);
    verdict_of(history, &judged, &cases, facts)
}

/// The counts, the verdict and the sentences of a judged trial.
pub fn verdict_of(history: &History, judged: &Judged, cases: &cases::Cases, facts: &Facts) -> Check {
    let (mut sold, mut sold_out, mut unreadable, mut indeterminate, mut torn_reads) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut fenced, mut gave_up, mut failed, mut retries, mut recovered) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut lost_acknowledged = 0u64;
    for (j, op) in judged.ops.iter().zip(&history.ops) {
        match j.told() {
            Some(Told::Sold) => sold += 1,
            Some(Told::SoldOut) => sold_out += 1,
            Some(Told::Unreadable) => unreadable += 1,
            Some(Told::Failed) if op.outcome == Outcome::Fenced => fenced += 1,
            Some(Told::Failed) if op.outcome == Outcome::Failed => failed += 1,
            Some(Told::Failed) => gave_up += 1,
            Some(Told::Indeterminate) => indeterminate += 1,
            None => {}
        }
        if j.told().is_some() {
            retries += op.retries() as u64;
            recovered += op.recovered() as u64;
        }
        torn_reads += j.torn() as u64;
        lost_acknowledged += j.lost_acknowledged() as u64;
    }
    let final_stock = match facts.final_stock {
        FinalStock::Value(v) => Some(v),
        FinalStock::Unreadable(_) => None,
    };
    // Tickets left although a buyer was turned away: too many retries, or a sold-out read.
    let undersold = match final_stock {
        Some(left) if left > 0 && gave_up + sold_out > 0 => left as u64,
        _ => 0,
    };
    let entries = Entries::of(history);
    let oversold = cases.oversold.as_ref().map_or(0, |o| o.oversold);
    let duplicate_tickets = judged.duplicate_tickets();
    let lost_updates = cases.lost_updates.as_ref().map_or(0, |l| l.lost);
    let phantom_stock = cases.phantom_stock.as_ref().map_or(0, |p| p.phantom);
    let order_violations = judged.order.len() as u64;
    let mut check = Check {
        final_stock,
        attempts: sold + sold_out + unreadable + fenced + gave_up + failed + indeterminate,
        sold,
        sold_out,
        unreadable,
        fenced,
        gave_up,
        failed,
        retries,
        recovered,
        undersold,
        oversold,
        duplicate_tickets,
        lost_updates,
        torn_reads,
        phantom_stock,
        indeterminate,
        order_violations,
        produced: entries.produced,
        dropped: entries.dropped,
        unconsumed: entries.unconsumed,
        abandoned: entries.abandoned,
        lost_acknowledged,
        crashed: cases.crashed.len() as u64,
        clock_uncertainty_ns: facts.clock_uncertainty_ns,
        duplicate_sale: cases.duplicate_sales.len() as u64,
        not_checkable: match history.ops.iter().any(|op| op.id_ticket()) {
            true => not_checkable_with_ids(),
            false => Vec::new(),
        },
        verdict: Verdict::Safe,
        anomalies: render::anomalies(history, cases),
    };
    check.verdict = verdict(&check, facts.deadline_hit);
    check
}

/// The verdict a trial's counts call for, worst first: the one rule of every checker, the
/// one of whole histories ([`verdict_of`]) and the streaming one of soaks
/// ([`stream::Stream::finish`]). `deadline_hit`: the trial was ended at its deadline.
pub fn verdict(c: &Check, deadline_hit: bool) -> Verdict {
    let inconsistent = [
        c.duplicate_tickets,
        c.lost_updates,
        c.torn_reads,
        c.phantom_stock,
        c.order_violations,
        c.lost_acknowledged,
        c.duplicate_sale,
    ];
    if deadline_hit {
        Verdict::Deadlock
    } else if c.crashed > 0 {
        Verdict::Crashed
    } else if c.oversold > 0 {
        Verdict::Oversold
    } else if inconsistent.iter().any(|&n| n > 0) || c.final_stock.is_none() {
        Verdict::Inconsistent
    } else {
        Verdict::Safe
    }
}

/// The entries of the producers' queue.
struct Entries {
    produced: u64,
    dropped: u64,
    unconsumed: u64,
    /// Entries handed out that no purchase names.
    abandoned: u64,
}

impl Entries {
    fn of(history: &History) -> Entries {
        let (mut produced, mut dropped, mut put_ok, mut take_ok, mut pending_takes) = (0u64, 0u64, 0u64, 0u64, 0u64);
        for op in &history.ops {
            match (op.kind, op.outcome) {
                (Kind::Put, outcome) => {
                    produced += 1;
                    match outcome {
                        Outcome::Ok => put_ok += 1,
                        Outcome::Dropped => dropped += 1,
                        _ => {}
                    }
                }
                (Kind::Take, Outcome::Ok) => take_ok += 1,
                (Kind::Take, Outcome::Pending) => pending_takes += 1,
                _ => {}
            }
        }
        let abandoned = match take_ok {
            0 => 0,
            _ => {
                let attempted: std::collections::HashSet<u64> = history
                    .ops
                    .iter()
                    .filter(|op| op.kind == Kind::Purchase)
                    .filter_map(|op| op.entry())
                    .collect();
                let handed_out = history
                    .ops
                    .iter()
                    .filter(|op| op.kind == Kind::Take && op.outcome == Outcome::Ok);
                handed_out
                    .filter(|op| op.entry().is_some_and(|e| !attempted.contains(&e)))
                    .count() as u64
            }
        };
        Entries {
            produced,
            dropped,
            unconsumed: put_ok.saturating_sub(take_ok).saturating_sub(pending_takes),
            abandoned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, Role, Worker};

    const US: u64 = 1_000;

    fn worker(role: Role, index: u32) -> Worker {
        Worker {
            role,
            index,
            pid: 1000 + index,
            ready_ns: -5_000,
            finish_ns: Some(10_000_000),
        }
    }

    fn buyers(n: u32) -> Vec<Worker> {
        (0..n).map(|i| worker(Role::Buyer, i)).collect()
    }

    /// A purchase that read `value` at start + 1 µs and, if it was above zero, wrote it
    /// down by one at `end` − 1 µs.
    fn purchase(worker: u32, start: u64, end: u64, value: i64) -> Op {
        let sold = value > 0;
        Op::new(
            worker,
            Kind::Purchase,
            if sold { Outcome::Sold } else { Outcome::SoldOut },
            start,
        )
        .with_read(Some(start + US))
        .with_write(sold.then_some(end - US))
        .with_end(Some(end))
        .with_value(Some(value))
        .with_written(sold.then_some(value - 1))
    }

    fn facts(initial: i64, end: i64) -> Facts {
        Facts::ended(initial, end)
    }

    fn kinds(c: &Check) -> Vec<AnomalyKind> {
        c.anomalies.iter().map(|a| a.kind).collect()
    }

    /// Every count that an anomalous trial makes non-zero.
    fn bad_counts(c: &Check) -> [u64; 6] {
        [
            c.oversold,
            c.duplicate_tickets,
            c.lost_updates,
            c.torn_reads,
            c.order_violations,
            c.phantom_stock,
        ]
    }

    /// `attempts` buyers, one attempt each, one after another, from a stock of `stock`.
    fn serial_sale(stock: i64, attempts: u32) -> History {
        let mut left = stock;
        let ops = (0..attempts)
            .map(|i| {
                let start = i as u64 * 10 * US;
                let op = purchase(i, start, start + 5 * US, left);
                left = (left - 1).max(0);
                op
            })
            .collect();
        History {
            workers: buyers(attempts),
            ops,
        }
    }

    #[test]
    fn a_clean_serial_sale_is_safe() {
        let c = check(&serial_sale(10, 30), &facts(10, 0));
        assert_eq!((c.attempts, c.sold, c.sold_out, c.indeterminate), (30, 10, 20, 0));
        assert_eq!(bad_counts(&c), [0; 6]);
        assert_eq!((c.produced, c.dropped, c.unconsumed), (0, 0, 0));
        assert_eq!(c.verdict, Verdict::Safe);
        assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
        assert_eq!(c.final_stock, Some(0));
    }

    #[test]
    fn two_buyers_reading_the_same_value_sell_one_ticket_twice_and_lose_a_write() {
        let workers = buyers(3);
        // Buyers 0 and 1 both read 3 and write 2; buyer 2 then sells 2.
        let ops = vec![
            purchase(0, 0, 50 * US, 3),
            purchase(1, 10 * US, 60 * US, 3),
            purchase(2, 70 * US, 80 * US, 2),
        ];
        let c = check(&History { workers, ops }, &facts(3, 1));
        assert_eq!(
            (
                c.sold,
                c.duplicate_tickets,
                c.lost_updates,
                c.oversold,
                c.order_violations
            ),
            (3, 1, 1, 0, 0)
        );
        assert_eq!(c.verdict, Verdict::Inconsistent);
        assert_eq!(kinds(&c), [AnomalyKind::DuplicateTicket, AnomalyKind::LostUpdate]);
        let dup = &c.anomalies[0];
        assert_eq!(dup.ops, [0, 1]);
        assert_eq!(dup.at_ns, 11 * US);
        assert_eq!(
            dup.text,
            "buyers 0 and 1 both read 3 (at 0.001 ms and 0.011 ms) and both sold ticket 3"
        );
        assert_eq!(
            c.anomalies[1].text,
            "3 sold but the stock fell by only 2 (3 → 1): 1 update lost"
        );
    }

    #[test]
    fn buyers_reading_the_last_ticket_together_oversell() {
        let workers = buyers(4);
        let ops = vec![
            purchase(0, 0, 50 * US, 1),
            purchase(1, 10 * US, 60 * US, 1),
            purchase(2, 20 * US, 70 * US, 1),
            purchase(3, 80 * US, 90 * US, 0),
        ];
        let c = check(&History { workers, ops }, &facts(1, 0));
        assert_eq!(
            (c.sold, c.sold_out, c.oversold, c.duplicate_tickets, c.lost_updates),
            (3, 1, 2, 2, 2)
        );
        assert_eq!(c.verdict, Verdict::Oversold);
        let over = c.anomalies.iter().find(|a| a.kind == AnomalyKind::Oversold).unwrap();
        assert_eq!(over.text, "3 tickets sold from a stock of 1: 2 oversold");
        assert_eq!(over.ops, [1, 2]);
        assert_eq!(over.at_ns, 60 * US);
        let dup = c
            .anomalies
            .iter()
            .find(|a| a.kind == AnomalyKind::DuplicateTicket)
            .unwrap();
        assert_eq!(dup.ops, [0, 1, 2]);
        assert_eq!(
            dup.text,
            "buyers 0, 1 and 2 all read 1 (at 0.001, 0.011 and 0.021 ms) and all sold ticket 1"
        );
        assert!(c.anomalies.is_sorted_by_key(|a| a.at_ns));
    }

    #[test]
    fn many_receipts_of_one_ticket_are_summed_up() {
        let ops = (0..9u32).map(|i| purchase(i, i as u64 * US, 100 * US, 4)).collect();
        let c = check(
            &History {
                workers: buyers(9),
                ops,
            },
            &facts(4, 3),
        );
        assert_eq!((c.sold, c.duplicate_tickets, c.oversold, c.lost_updates), (9, 8, 5, 8));
        let dup = c
            .anomalies
            .iter()
            .find(|a| a.kind == AnomalyKind::DuplicateTicket)
            .unwrap();
        assert_eq!(dup.ops.len(), 9);
        assert_eq!(
            dup.text,
            "buyers 0, 1, 2, 3, 4 and 4 others all read 4 (from 0.001 ms to 0.009 ms) and all sold ticket 4"
        );
    }

    #[test]
    fn an_empty_stock_file_is_a_torn_read() {
        let mut h = serial_sale(3, 3);
        h.workers.push(worker(Role::Buyer, 3));
        let torn = Op::new(3, Kind::Purchase, Outcome::Unreadable, US)
            .with_read(Some(2 * US))
            .with_end(Some(3 * US));
        h.ops.push(torn);
        let c = check(&h, &facts(3, 0));
        assert_eq!((c.attempts, c.sold, c.torn_reads), (4, 3, 1));
        assert_eq!(bad_counts(&c), [0, 0, 0, 1, 0, 0]);
        assert_eq!(c.verdict, Verdict::Inconsistent);
        assert_eq!(kinds(&c), [AnomalyKind::TornRead]);
        assert_eq!(c.anomalies[0].ops, [3]);
        assert_eq!(
            c.anomalies[0].text,
            "buyer 3 read an empty or unparseable stock file at 0.002 ms"
        );
    }

    #[test]
    fn a_number_never_written_is_a_torn_read_and_still_a_sale() {
        let mut h = serial_sale(10, 3);
        h.workers.push(worker(Role::Buyer, 3));
        // The stock torn in the middle of a write: a reader sees 5, never written, and sells.
        h.ops.push(purchase(3, 1_000 * US, 1_002 * US, 5));
        let c = check(&h, &facts(10, 4));
        assert_eq!((c.attempts, c.sold, c.torn_reads, c.unreadable), (4, 4, 1, 0));
        assert_eq!(bad_counts(&c), [0, 0, 0, 1, 0, 0]);
        assert_eq!(c.verdict, Verdict::Inconsistent);
        assert_eq!(kinds(&c), [AnomalyKind::TornRead]);
        assert_eq!(
            c.anomalies[0].text,
            "buyer 3 read 5, a number never written to the stock, at 1.001 ms"
        );
        // A sold-out read of a number never written is torn too, and sold out.
        let mut h = serial_sale(2, 2);
        h.ops.push(purchase(0, 100 * US, 101 * US, -4));
        let c = check(&h, &facts(2, 0));
        assert_eq!((c.sold, c.sold_out, c.torn_reads), (2, 1, 1));
    }

    #[test]
    fn a_stock_that_rose_is_phantom_stock_not_lost_updates() {
        // "10" overwritten in place by "9": a reader in between sees "90" and sells from it.
        let mut h = serial_sale(10, 3);
        h.workers.push(worker(Role::Buyer, 3));
        h.ops.push(purchase(3, 1_000 * US, 1_002 * US, 90));
        let c = check(&h, &facts(10, 89));
        assert_eq!((c.sold, c.torn_reads, c.phantom_stock, c.lost_updates), (4, 1, 80, 0));
        assert_eq!(c.verdict, Verdict::Inconsistent);
        assert_eq!(kinds(&c), [AnomalyKind::PhantomStock, AnomalyKind::TornRead]);
        assert_eq!(
            c.anomalies[0].text,
            "the stock rose from 10 to 90: a torn write made 80 tickets that never existed \
             (buyer 3 read it at 1.001 ms)"
        );

        // Left at the end and read by nobody, a stock that rose is still told, and by how much.
        let c = check(&serial_sale(100_000, 3), &facts(100_000, 999_788));
        assert_eq!((c.phantom_stock, c.lost_updates, c.torn_reads), (899_788, 0, 0));
        assert_eq!(kinds(&c), [AnomalyKind::PhantomStock]);
        assert_eq!(
            c.anomalies[0].text,
            "the stock rose from 100,000 to 999,788: a torn write made 899,788 tickets that never existed"
        );
    }

    #[test]
    fn the_stock_going_back_up_is_an_order_violation() {
        let workers = buyers(4);
        // A reads 10 and holds; B reads 10, writes 9; C reads 9, writes 8; A writes 9 at
        // last; D, starting after C has finished, reads 9 again.
        let ops = vec![
            purchase(0, US, 11 * US, 10),
            purchase(1, 2 * US, 5 * US, 10),
            purchase(2, 6 * US, 8 * US, 9),
            purchase(3, 12 * US, 14 * US, 9),
        ];
        let c = check(&History { workers, ops }, &facts(10, 8));
        assert_eq!(
            (c.sold, c.duplicate_tickets, c.lost_updates, c.order_violations),
            (4, 2, 2, 1)
        );
        assert_eq!(c.verdict, Verdict::Inconsistent);
        let order = c.anomalies.iter().find(|a| a.kind == AnomalyKind::Order).unwrap();
        assert_eq!(order.ops, [3, 2]);
        assert_eq!(
            order.text,
            "buyer 3 sold ticket 9 at 0.013 ms after buyer 2 had finished selling ticket 9 at 0.008 ms, \
             4.000 µs before it began (the clocks' uncertainty: 0 ns): the stock went back up"
        );
    }

    #[test]
    fn an_order_violation_alone_and_ties_that_do_not_order() {
        let workers = buyers(3);
        let ops = vec![
            purchase(0, 0, 4 * US, 6),
            purchase(1, 5 * US, 10 * US, 5),
            purchase(2, 20 * US, 25 * US, 7), // the stock held 7 after tickets 6 and 5 were sold
        ];
        let c = check(
            &History {
                workers: workers.clone(),
                ops,
            },
            &facts(7, 4),
        );
        assert_eq!(bad_counts(&c), [0, 0, 0, 0, 1, 0]);
        assert_eq!(c.verdict, Verdict::Inconsistent);
        assert_eq!(kinds(&c), [AnomalyKind::Order]);
        assert_eq!(
            c.anomalies[0].ops,
            [2, 1],
            "paired with the lowest ticket ended before it began"
        );

        // B starts at the very moment A ends: they overlap, so no order is implied.
        let ops = vec![purchase(0, 0, 4 * US, 5), purchase(1, 4 * US, 8 * US, 6)];
        let c = check(&History { workers, ops }, &facts(6, 4));
        assert_eq!(c.order_violations, 0);
        assert_eq!(c.verdict, Verdict::Safe);
    }

    #[test]
    fn a_buyer_killed_inside_its_purchase_is_indeterminate_not_a_loss() {
        let workers = buyers(2);
        // Killed after its read, before its write: another buyer then sells ticket 10.
        let killed = Op::new(0, Kind::Purchase, Outcome::Pending, US)
            .with_read(Some(2 * US))
            .with_value(Some(10));
        let ops = vec![killed, purchase(1, 10 * US, 20 * US, 10)];
        let mut h = History { workers, ops };
        h.workers[0].finish_ns = None;
        let c = check(&h, &facts(10, 9));
        assert_eq!((c.attempts, c.sold, c.indeterminate), (2, 1, 1));
        assert_eq!(bad_counts(&c), [0; 6]);
        assert_eq!(c.verdict, Verdict::Safe, "{:?}", c.anomalies);
        assert!(c.anomalies.is_empty());

        // Killed inside its write: the 9 it may have written is read next, and is no torn read;
        // the stock fell by two for one sale, which is no lost update either.
        h.ops[0] = h.ops[0].with_write(None).with_written(Some(9));
        h.ops[1] = purchase(1, 10 * US, 20 * US, 9);
        let c = check(&h, &facts(10, 8));
        assert_eq!((c.sold, c.indeterminate), (1, 1));
        assert_eq!(bad_counts(&c), [0; 6]);
        assert_eq!(c.verdict, Verdict::Safe);

        // A pending purchase never counts as a sale towards overselling.
        let killed = Op::new(0, Kind::Purchase, Outcome::Pending, US)
            .with_read(Some(2 * US))
            .with_value(Some(1))
            .with_written(Some(0));
        h.ops = vec![killed, purchase(1, 10 * US, 20 * US, 1)];
        let c = check(&h, &facts(1, 0));
        assert_eq!((c.sold, c.oversold, c.indeterminate), (1, 0, 1));
        assert_eq!(c.verdict, Verdict::Safe);
    }

    #[test]
    fn producers_count_what_they_dropped_and_what_no_buyer_took() {
        let workers = vec![
            worker(Role::Producer, 0),
            worker(Role::Producer, 1),
            worker(Role::EntryQueue, 0),
            worker(Role::Buyer, 0),
        ];
        let put = |w, outcome, t| Op::new(w, Kind::Put, outcome, t).with_end(Some(t + US));
        let take = |outcome, t| Op::new(2, Kind::Take, outcome, t).with_end((outcome == Outcome::Ok).then_some(t + US));
        let ops = vec![
            put(0, Outcome::Ok, 0),
            put(0, Outcome::Ok, 10 * US),
            put(0, Outcome::Dropped, 20 * US),
            put(1, Outcome::Ok, 0),
            put(1, Outcome::Ok, 10 * US),
            take(Outcome::Ok, 30 * US),
            take(Outcome::Ok, 40 * US),
            take(Outcome::Pending, 50 * US),
            purchase(3, 31 * US, 35 * US, 2),
            purchase(3, 41 * US, 45 * US, 1),
        ];
        let c = check(&History { workers, ops }, &facts(2, 0));
        assert_eq!((c.produced, c.dropped, c.unconsumed), (5, 1, 1));
        assert_eq!((c.attempts, c.sold), (2, 2));
        assert_eq!(c.verdict, Verdict::Safe);
        assert!(c.anomalies.is_empty());
    }

    #[test]
    fn a_trial_at_its_deadline_is_a_deadlock_whatever_else_happened() {
        let mut h = serial_sale(1, 3);
        h.ops[1] = purchase(1, 10 * US, 15 * US, 1); // an oversell
        h.workers.push(Worker {
            finish_ns: None,
            ..worker(Role::Seller, 0)
        });
        h.workers[2].finish_ns = None;
        let f = Facts {
            deadline_hit: true,
            ..facts(1, 0)
        };
        let c = check(&h, &f);
        assert_eq!(c.verdict, Verdict::Deadlock);
        assert_eq!(c.oversold, 1);
        let dead: Vec<&Anomaly> = c.anomalies.iter().filter(|a| a.kind == AnomalyKind::Deadlock).collect();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            dead[0].text,
            "the trial was still running at its deadline and was ended: 2 of 4 processes had not finished \
             (buyer 2 and seller 0)"
        );
        assert!(!kinds(&c).contains(&AnomalyKind::Crashed));
    }

    #[test]
    fn a_dead_seller_crashes_the_trial_and_a_dead_buyer_does_not() {
        let mut h = serial_sale(3, 3);
        h.workers.push(Worker {
            finish_ns: None,
            ..worker(Role::Seller, 0)
        });
        h.workers[0].finish_ns = None;
        let c = check(&h, &facts(3, 0));
        assert_eq!(c.verdict, Verdict::Crashed);
        assert_eq!(kinds(&c), [AnomalyKind::Crashed]);
        assert!(
            c.anomalies[0].text.starts_with("seller 0 died"),
            "{}",
            c.anomalies[0].text
        );

        h.workers[3].finish_ns = Some(1);
        assert_eq!(check(&h, &facts(3, 0)).verdict, Verdict::Safe);
    }

    #[test]
    fn an_unreadable_final_stock_is_inconsistent_and_no_lost_update() {
        let h = serial_sale(3, 3);
        let f = Facts {
            final_stock: FinalStock::Unreadable(String::new()),
            ..facts(3, 0)
        };
        let c = check(&h, &f);
        assert_eq!((c.final_stock, c.lost_updates), (None, 0));
        assert_eq!(c.verdict, Verdict::Inconsistent);
        assert_eq!(kinds(&c), [AnomalyKind::FinalStockUnreadable]);
        assert_eq!(
            c.anomalies[0].text,
            "the stock held no number when the trial ended: it read \"\""
        );
    }

    #[test]
    fn the_list_is_capped_but_the_counts_and_the_summary_are_not() {
        let mut h = serial_sale(5, 5);
        h.ops[4] = purchase(4, 40 * US, 45 * US, 1);
        h.ops.push(purchase(0, 500 * US, 505 * US, 1)); // a sixth sale, late
        for i in 0..200u64 {
            let t = 50 * US + i * US;
            h.ops.push(
                Op::new(1, Kind::Purchase, Outcome::Unreadable, t)
                    .with_read(Some(t))
                    .with_end(Some(t + 1)),
            );
        }
        let c = check(&h, &facts(5, 0));
        assert_eq!((c.torn_reads, c.oversold, c.duplicate_tickets), (200, 1, 1));
        assert_eq!(c.verdict, Verdict::Oversold);
        assert_eq!(c.anomalies.len(), MAX_ANOMALIES);
        assert!(c.anomalies.is_sorted_by_key(|a| a.at_ns));
        let k = kinds(&c);
        assert!(k.contains(&AnomalyKind::Oversold) && k.contains(&AnomalyKind::LostUpdate));
        let torn: Vec<u64> = c
            .anomalies
            .iter()
            .filter(|a| a.kind == AnomalyKind::TornRead)
            .map(|a| a.at_ns)
            .collect();
        assert_eq!(
            torn,
            (0..torn.len() as u64).map(|i| 50 * US + i * US).collect::<Vec<_>>(),
            "the earliest ones"
        );
    }

    #[test]
    fn values_far_apart_are_still_checked() {
        // A stock so large that the written values are sparse in their range.
        let big = 1_i64 << 50;
        let workers = buyers(2);
        let ops = vec![
            purchase(0, 0, 5 * US, big),
            purchase(1, 10 * US, 15 * US, big),
            purchase(1, 20 * US, 25 * US, 3),
        ];
        let c = check(&History { workers, ops }, &facts(big, big - 1));
        // Three told they sold (the torn one too) for a stock that fell by one.
        assert_eq!((c.duplicate_tickets, c.torn_reads, c.lost_updates), (1, 1, 2));
    }

    #[test]
    fn a_million_clean_purchases_are_safe() {
        const BUYERS: u32 = 100;
        const ATTEMPTS: u64 = 1_000_000;
        const STOCK: i64 = 600_000;
        // One after another, buyers taking turns; ordered by worker as a history is.
        let mut per_worker: Vec<Vec<Op>> = vec![Vec::new(); BUYERS as usize];
        let mut left = STOCK;
        for n in 0..ATTEMPTS {
            let w = (n % BUYERS as u64) as u32;
            per_worker[w as usize].push(purchase(w, n * 10 * US, n * 10 * US + 4 * US, left));
            left = (left - 1).max(0);
        }
        let mut workers = buyers(BUYERS);
        for w in &mut workers {
            w.finish_ns = Some(ATTEMPTS * 10 * US);
        }
        let h = History {
            workers,
            ops: per_worker.concat(),
        };
        let c = check(&h, &facts(STOCK, 0));
        assert_eq!(
            (c.attempts, c.sold, c.sold_out),
            (ATTEMPTS, STOCK as u64, ATTEMPTS - STOCK as u64)
        );
        assert_eq!(bad_counts(&c), [0; 6]);
        assert_eq!(c.verdict, Verdict::Safe);
        assert!(c.anomalies.is_empty());
    }

    #[test]
    fn an_entry_handed_out_to_a_buyer_that_died_before_its_purchase_is_abandoned() {
        let history = History {
            workers: vec![worker(Role::Buyer, 0), worker(Role::EntryQueue, 0)],
            ops: vec![
                purchase(0, 0, 5 * US, 2).with_entry(Some(7)),
                Op::new(1, Kind::Take, Outcome::Ok, 0)
                    .with_entry(Some(7))
                    .with_end(Some(US)),
                // Handed out; its buyer was ended before it began the purchase.
                Op::new(1, Kind::Take, Outcome::Ok, 6 * US)
                    .with_entry(Some(8))
                    .with_end(Some(7 * US)),
            ],
        };
        let c = check(&history, &facts(2, 1));
        assert_eq!((c.attempts, c.sold, c.indeterminate, c.abandoned), (1, 1, 0, 1));
        assert_eq!(c.verdict, Verdict::Safe);
    }

    #[test]
    fn a_sale_the_stores_record_lacks_was_acknowledged_and_lost() {
        let h = History {
            workers: buyers(2),
            ops: vec![purchase(0, 0, 5 * US, 2), purchase(1, 10 * US, 15 * US, 1)],
        };
        let sale = |index, ticket| RecordedSale {
            worker: "buyer".into(),
            index,
            ticket,
        };
        let with = |record: Vec<RecordedSale>| Facts {
            sales_record: Some(record),
            ..facts(2, 0)
        };
        let c = check(&h, &with(vec![sale(0, 2), sale(1, 1)]));
        assert_eq!((c.lost_acknowledged, c.verdict), (0, Verdict::Safe));
        // Buyer 1 was told it sold ticket 1; the store never recorded it.
        let c = check(&h, &with(vec![sale(0, 2)]));
        assert_eq!((c.lost_acknowledged, c.verdict), (1, Verdict::Inconsistent));
        assert_eq!(kinds(&c), [AnomalyKind::LostAcknowledged]);
        assert_eq!(c.anomalies[0].ops, [1]);
        assert_eq!(
            c.anomalies[0].text,
            "buyer 1 was told it bought ticket 1 at 0.015 ms; the store's record of sales does not hold it"
        );
        // A recorded sale whose buyer never heard of it is no loss.
        let c = check(&h, &with(vec![sale(0, 2), sale(1, 1), sale(1, 0)]));
        assert_eq!(c.lost_acknowledged, 0);
        // Nor one recorded under the buyer's name with the ticket it was told.
        let c = check(&h, &with(vec![sale(1, 2), sale(0, 1)]));
        assert_eq!(c.lost_acknowledged, 2);
    }

    #[test]
    fn a_ticket_lost_in_a_failover_and_sold_again_is_told_as_both() {
        // Buyer 0 is told it bought ticket 2; the primary is killed at 8 µs and its successor
        // never had that sale; buyer 1 buys ticket 2 again from it.
        let h = History {
            workers: buyers(2),
            ops: vec![purchase(0, 0, 5 * US, 2), purchase(1, 10 * US, 15 * US, 2)],
        };
        let record = vec![RecordedSale {
            worker: "buyer".into(),
            index: 1,
            ticket: 2,
        }];
        let facts = |failover_ns| Facts {
            sales_record: Some(record.clone()),
            failover_ns,
            ..facts(2, 1)
        };
        let c = check(&h, &facts(Some(8 * US)));
        assert_eq!((c.duplicate_tickets, c.lost_acknowledged), (1, 1));
        let resold: Vec<&str> = c
            .anomalies
            .iter()
            .filter(|a| a.kind == AnomalyKind::DuplicateTicket)
            .map(|a| a.text.as_str())
            .collect();
        assert_eq!(
            resold,
            [
                "ticket 2 was sold to buyer 0 at 0.005 ms, lost in the failover at 0.008 ms, and sold again to buyer 1 at 0.015 ms"
            ]
        );
        // Without a failover, the same two sales are a plain duplicate.
        let c = check(&h, &facts(None));
        assert!(
            c.anomalies
                .iter()
                .any(|a| a.kind == AnomalyKind::DuplicateTicket && a.text.contains("both sold ticket 2")),
            "{:?}",
            c.anomalies
        );
    }

    #[test]
    fn sales_closer_than_the_clock_uncertainty_are_concurrent_and_further_ones_ordered() {
        // B began 50 ns after A ended, and sold a ticket no lower: within a clock uncertainty
        // of 100 ns that is no order, 5 µs apart it is.
        let workers = buyers(2);
        let pair = |gap: u64| {
            let ops = vec![purchase(0, 0, 4 * US, 5), purchase(1, 4 * US + gap, 10 * US + gap, 6)];
            History {
                workers: workers.clone(),
                ops,
            }
        };
        let within = |bound| Facts {
            clock_uncertainty_ns: bound,
            ..facts(6, 4)
        };
        let c = check(&pair(50), &within(100));
        assert_eq!(
            (c.order_violations, c.verdict, c.clock_uncertainty_ns),
            (0, Verdict::Safe, 100)
        );
        let c = check(&pair(50), &within(0));
        assert_eq!(c.order_violations, 1, "stamps taken as exact");
        let c = check(&pair(5 * US), &within(100));
        assert_eq!((c.order_violations, c.verdict), (1, Verdict::Inconsistent));
        assert!(
            c.anomalies[0]
                .text
                .contains("5.000 µs before it began (the clocks' uncertainty: 100 ns)"),
            "{}",
            c.anomalies[0].text
        );
        // Just past the bound is ordered; at it, not.
        assert_eq!(check(&pair(101), &within(100)).order_violations, 1);
        assert_eq!(check(&pair(100), &within(100)).order_violations, 0);
    }

    #[test]
    fn one_rule_gives_every_verdict_from_the_counts() {
        let c = check(&serial_sale(3, 3), &facts(3, 0));
        assert_eq!(verdict(&c, false), Verdict::Safe);
        assert_eq!(verdict(&c, true), Verdict::Deadlock);
        type Change = fn(&mut Check);
        let cases: [(Change, Verdict); 6] = [
            (|c: &mut Check| c.crashed = 1, Verdict::Crashed),
            (|c: &mut Check| c.oversold = 1, Verdict::Oversold),
            (|c: &mut Check| c.lost_acknowledged = 1, Verdict::Inconsistent),
            (|c: &mut Check| c.order_violations = 1, Verdict::Inconsistent),
            (|c: &mut Check| c.final_stock = None, Verdict::Inconsistent),
            (|c: &mut Check| c.undersold = 3, Verdict::Safe),
        ];
        for (count, want) in cases {
            let mut bad = c.clone();
            count(&mut bad);
            assert_eq!(verdict(&bad, false), want, "{bad:?}");
        }
    }
}
