//! The checker: judges a trial from its history and its final stock alone.
//!
//! It knows nothing of the strategy that ran, so its verdicts are independent evidence.
//! Operations whose process died inside them are indeterminate: the checker counts both
//! possible outcomes for them and never calls them lost updates or oversells.

use std::collections::{BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

use crate::history::{History, Kind, Op, Outcome, Role, Worker};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
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
    let ops = &history.ops;
    let initial = facts.initial_stock;
    let mut values = StockValues::new(initial, ops);

    let mut attempts = 0u64;
    let mut sold = 0u64;
    let mut sold_out = 0u64;
    let mut torn_reads = 0u64;
    let mut indeterminate = 0u64;
    let (mut produced, mut dropped, mut put_ok, mut take_ok, mut pending_takes) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut wall_ns = history.workers.iter().filter_map(|w| w.finish_ns).max().unwrap_or(0);
    // The sold operations as (end or u64::MAX, ticket or NO_TICKET, op index), and the
    // completed purchases' latencies in ns.
    let mut by_end: Vec<(u64, i64, usize)> = Vec::new();
    let mut latencies: Vec<u64> = Vec::new();
    // The earliest per-operation anomalies; every one is counted, only these are described.
    let mut found = Earliest::new(MAX_ANOMALIES);

    for (i, op) in ops.iter().enumerate() {
        wall_ns = wall_ns.max(latest(op));
        match op.kind {
            Kind::Purchase => {
                attempts += 1;
                if op.outcome != Outcome::Pending
                    && let Some(end) = op.end()
                {
                    latencies.push(end.saturating_sub(op.start));
                }
                match op.outcome {
                    Outcome::Unreadable => {
                        torn_reads += 1;
                        found.push(Found::torn(op, i));
                    }
                    Outcome::Sold | Outcome::SoldOut => {
                        let slot = match op.value() {
                            Some(v) => match values.slot(v) {
                                Some(slot) => Some(slot),
                                None => {
                                    torn_reads += 1;
                                    found.push(Found::torn(op, i));
                                    continue;
                                }
                            },
                            None => None, // nothing recorded to judge; counted, without a ticket
                        };
                        if op.outcome == Outcome::SoldOut {
                            sold_out += 1;
                            continue;
                        }
                        sold += 1;
                        if let Some(slot) = slot {
                            values.counts[slot] += 1;
                        }
                        by_end.push((op.end().unwrap_or(u64::MAX), op.value().unwrap_or(NO_TICKET), i));
                    }
                    // Pending, and any outcome a purchase cannot have: its outcome is unknown.
                    _ => indeterminate += 1,
                }
            }
            Kind::Put => {
                produced += 1;
                match op.outcome {
                    Outcome::Ok => put_ok += 1,
                    Outcome::Dropped => dropped += 1,
                    _ => {}
                }
            }
            Kind::Take => match op.outcome {
                Outcome::Ok => take_ok += 1,
                Outcome::Pending => pending_takes += 1,
                _ => {}
            },
            // The seller's side of a buyer's purchase: only what it wrote counts (above), so
            // that a buyer killed while waiting for its reply leaves no false torn read.
            Kind::Sale => {}
        }
    }

    let oversold = sold.saturating_sub(initial.max(0) as u64);
    let duplicate_tickets = values.duplicates();
    let (final_stock, lost_updates) = match &facts.final_stock {
        FinalStock::Value(v) => {
            let fell = initial as i128 - *v as i128;
            (Some(*v), (sold as i128 - fell).clamp(0, u64::MAX as i128) as u64)
        }
        FinalStock::Unreadable(_) => (None, 0),
    };

    // The real-time order: a purchase that ended before another began holds a higher ticket.
    by_end.sort_unstable_by_key(|&(end, _, i)| (end, i));
    let mut by_start: Vec<(u64, i64, usize)> = by_end.iter().map(|&(_, t, i)| (ops[i].start, t, i)).collect();
    by_start.sort_unstable_by_key(|&(start, _, i)| (start, i));
    let mut order_violations = 0u64;
    let mut ended = 0;
    let mut lowest: Option<(i64, usize)> = None; // the lowest ticket among those ended, and its op
    for &(start, ticket, b) in &by_start {
        while ended < by_end.len() && by_end[ended].0 < start {
            let (_, t, a) = by_end[ended];
            if t != NO_TICKET && lowest.is_none_or(|(low, _)| t < low) {
                lowest = Some((t, a));
            }
            ended += 1;
        }
        if ticket != NO_TICKET
            && let Some((low, a)) = lowest
            && low <= ticket
        {
            order_violations += 1;
            found.push(Found {
                at_ns: read_at(&ops[b]),
                rank: 2,
                what: What::Order { b, a },
            });
        }
    }

    // Tickets issued more than once, each found when it was first issued twice: at the
    // second read of it.
    if duplicate_tickets > 0 {
        let mut reads = vec![(u64::MAX, u64::MAX); values.counts.len()]; // the two earliest
        for &(_, ticket, i) in &by_end {
            if ticket != NO_TICKET
                && let Some(slot) = values.slot(ticket).filter(|&s| values.counts[s] > 1)
            {
                let at = read_at(&ops[i]);
                let r = &mut reads[slot];
                if at < r.0 {
                    *r = (at, r.0);
                } else if at < r.1 {
                    r.1 = at;
                }
            }
        }
        for (slot, &(_, second)) in reads.iter().enumerate() {
            if second != u64::MAX {
                found.push(Found {
                    at_ns: second,
                    rank: 1,
                    what: What::Duplicate(slot),
                });
            }
        }
    }

    let servers_down: Vec<&Worker> = history
        .workers
        .iter()
        .filter(|w| matches!(w.role, Role::Seller | Role::EntryQueue | Role::Manager) && w.finish_ns.is_none())
        .collect();
    let final_unreadable = matches!(facts.final_stock, FinalStock::Unreadable(_));
    let verdict = if facts.deadline_hit {
        Verdict::Deadlock
    } else if !servers_down.is_empty() {
        Verdict::Crashed
    } else if oversold > 0 {
        Verdict::Oversold
    } else if duplicate_tickets > 0 || lost_updates > 0 || torn_reads > 0 || order_violations > 0 || final_unreadable {
        Verdict::Inconsistent
    } else {
        Verdict::Safe
    };

    // The anomalies: every summary one, then the earliest of the per-operation ones.
    let names = Names { history };
    let mut anomalies = Vec::new();
    if facts.deadline_hit {
        let running: Vec<usize> = (0..history.workers.len())
            .filter(|&w| history.workers[w].finish_ns.is_none())
            .collect();
        let mut text = String::from("the trial was still running at its deadline and was ended");
        if !running.is_empty() {
            let labels: Vec<String> = running.iter().map(|&w| history.workers[w].label()).collect();
            text += &format!(
                ": {} of {} processes had not finished ({})",
                running.len(),
                history.workers.len(),
                list(&labels, running.len())
            );
        }
        anomalies.push(Anomaly {
            kind: AnomalyKind::Deadlock,
            ops: Vec::new(),
            at_ns: wall_ns,
            text,
        });
    } else {
        for w in &servers_down {
            let worker = history
                .workers
                .iter()
                .position(|x| std::ptr::eq(x, *w))
                .expect("a worker of the history");
            let mine: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].worker as usize == worker).collect();
            let last_seen = mine
                .iter()
                .map(|&i| latest(&ops[i]))
                .max()
                .unwrap_or(w.ready_ns.max(0) as u64);
            anomalies.push(Anomaly {
                kind: AnomalyKind::Crashed,
                ops: mine
                    .into_iter()
                    .filter(|&i| ops[i].outcome == Outcome::Pending)
                    .collect(),
                at_ns: last_seen,
                text: format!(
                    "{} died before finishing its work (last seen at {}): the sale depends on it",
                    w.label(),
                    ms(last_seen)
                ),
            });
        }
    }
    if oversold > 0 {
        let beyond = initial.max(0) as usize; // sales in end order that the stock covered
        let (at_ns, over_ops) = match by_end.get(beyond) {
            Some(&(end, _, i)) => {
                let over_ops = if oversold as usize <= MAX_OVERSOLD_OPS {
                    by_end[beyond..].iter().map(|e| e.2).collect()
                } else {
                    Vec::new()
                };
                (if end == u64::MAX { read_at(&ops[i]) } else { end }, over_ops)
            }
            None => (wall_ns, Vec::new()),
        };
        anomalies.push(Anomaly {
            kind: AnomalyKind::Oversold,
            ops: over_ops,
            at_ns,
            text: format!("{sold} tickets sold from a stock of {initial}: {oversold} oversold"),
        });
    }
    if lost_updates > 0
        && let Some(end) = final_stock
    {
        let fell = initial as i128 - end as i128;
        let change = if fell >= 0 {
            format!("fell by only {fell}")
        } else {
            format!("rose by {}", -fell)
        };
        anomalies.push(Anomaly {
            kind: AnomalyKind::LostUpdate,
            ops: Vec::new(),
            at_ns: wall_ns,
            text: format!(
                "{sold} sold but the stock {change} ({initial} → {end}): {lost_updates} update{} lost",
                if lost_updates == 1 { "" } else { "s" }
            ),
        });
    }
    if let FinalStock::Unreadable(text) = &facts.final_stock {
        let shown: String = text.chars().take(60).collect();
        let more = if text.chars().nth(60).is_some() { "…" } else { "" };
        anomalies.push(Anomaly {
            kind: AnomalyKind::FinalStockUnreadable,
            ops: Vec::new(),
            at_ns: wall_ns,
            text: format!("the stock held no number when the trial ended: it read {shown:?}{more}"),
        });
    }
    anomalies.truncate(MAX_ANOMALIES);
    let room = MAX_ANOMALIES - anomalies.len();
    let mut found = found.heap.into_sorted_vec();
    found.truncate(room);
    // The receipts of the duplicated tickets listed, each group in the order of its reads.
    let mut receipts: HashMap<usize, Vec<(u64, usize)>> = found
        .iter()
        .filter_map(|f| {
            if let What::Duplicate(slot) = f.what {
                Some((slot, Vec::new()))
            } else {
                None
            }
        })
        .collect();
    if !receipts.is_empty() {
        for &(_, ticket, i) in &by_end {
            if ticket != NO_TICKET
                && let Some(group) = values.slot(ticket).and_then(|s| receipts.get_mut(&s))
            {
                group.push((read_at(&ops[i]), i));
            }
        }
        receipts.values_mut().for_each(|g| g.sort_unstable());
    }
    anomalies.extend(found.iter().map(|f| names.render(f, &receipts)));
    anomalies.sort_by_key(|a| a.at_ns);

    let wall_ms = wall_ns as f64 / 1e6;
    let completed = sold + sold_out + torn_reads;
    let purchases_per_s = if wall_ns == 0 {
        0.0
    } else {
        completed as f64 / (wall_ms / 1000.0)
    };

    Check {
        final_stock,
        attempts,
        sold,
        sold_out,
        oversold,
        duplicate_tickets,
        lost_updates,
        torn_reads,
        indeterminate,
        order_violations,
        produced,
        dropped,
        unconsumed: put_ok.saturating_sub(take_ok).saturating_sub(pending_takes),
        verdict,
        wall_ms,
        purchases_per_s,
        latency: latency(&mut latencies),
        anomalies,
    }
}

/// A sold purchase with no value recorded: counted as sold, with no ticket to compare.
const NO_TICKET: i64 = i64::MAX;
/// The Oversold anomaly lists the sales beyond the stock when there are at most this many.
const MAX_OVERSOLD_OPS: usize = 1000;
/// Receipts of one ticket named one by one in a DuplicateTicket anomaly.
const SHOWN: usize = 6;

/// The values the stock ever held (the initial stock and every purchase's `written`, also
/// of the purchases that never completed), each with the count of receipts whose ticket it is.
struct StockValues {
    /// `Some(min)`: dense, the slot of v is v − min, and `NEVER` marks a value never written.
    /// `None`: `sorted` holds the distinct values, and a value's slot is its position there.
    min: Option<i64>,
    sorted: Vec<i64>,
    counts: Vec<u32>,
}

const NEVER: u32 = u32::MAX;

impl StockValues {
    fn new(initial: i64, ops: &[Op]) -> StockValues {
        let written = || {
            ops.iter()
                .filter(|op| matches!(op.kind, Kind::Purchase | Kind::Sale))
                .filter_map(|op| op.written())
        };
        let (mut min, mut max, mut n) = (initial, initial, 1u128);
        for v in written() {
            min = min.min(v);
            max = max.max(v);
            n += 1;
        }
        let span = (max as i128 - min as i128) as u128 + 1;
        if span <= 4 * n + 1024 {
            let mut counts = vec![NEVER; span as usize];
            for v in std::iter::once(initial).chain(written()) {
                counts[v.abs_diff(min) as usize] = 0;
            }
            StockValues {
                min: Some(min),
                sorted: Vec::new(),
                counts,
            }
        } else {
            let mut sorted: Vec<i64> = std::iter::once(initial).chain(written()).collect();
            sorted.sort_unstable();
            sorted.dedup();
            let counts = vec![0; sorted.len()];
            StockValues {
                min: None,
                sorted,
                counts,
            }
        }
    }

    /// The slot of `v`, if it was ever written to the stock.
    fn slot(&self, v: i64) -> Option<usize> {
        match self.min {
            Some(min) => {
                let slot = usize::try_from(v.checked_sub(min)?).ok()?;
                (*self.counts.get(slot)? != NEVER).then_some(slot)
            }
            None => self.sorted.binary_search(&v).ok(),
        }
    }

    /// Receipts whose ticket another receipt already holds.
    fn duplicates(&self) -> u64 {
        self.counts
            .iter()
            .filter(|&&c| c != NEVER)
            .map(|&c| c.saturating_sub(1) as u64)
            .sum()
    }
}

/// A per-operation anomaly, found cheaply; its sentence is written only if it is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Found {
    at_ns: u64,
    /// Orders anomalies found at the same moment.
    rank: u8,
    what: What,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    /// Torn read by this op.
    Torn(usize),
    /// The ticket of this `StockValues` slot was sold more than once.
    Duplicate(usize),
    /// `b` began after `a` had ended, yet holds a ticket no lower than `a`'s.
    Order { b: usize, a: usize },
}

impl Found {
    fn torn(op: &Op, i: usize) -> Found {
        Found {
            at_ns: read_at(op),
            rank: 0,
            what: What::Torn(i),
        }
    }
}

/// Keeps the `cap` earliest anomalies pushed into it, in O(log cap) a push at worst.
struct Earliest {
    heap: BinaryHeap<Found>,
    cap: usize,
}

impl Earliest {
    fn new(cap: usize) -> Earliest {
        Earliest {
            heap: BinaryHeap::with_capacity(cap + 1),
            cap,
        }
    }

    fn push(&mut self, found: Found) {
        if self.heap.len() < self.cap {
            self.heap.push(found);
        } else if let Some(mut latest) = self.heap.peek_mut()
            && found < *latest
        {
            *latest = found;
        }
    }
}

/// Writes the sentences of the listed anomalies.
struct Names<'a> {
    history: &'a History,
}

impl Names<'_> {
    fn worker(&self, op: usize) -> Option<&Worker> {
        self.history.workers.get(self.history.ops[op].worker as usize)
    }

    fn label(&self, op: usize) -> String {
        match self.worker(op) {
            Some(w) => w.label(),
            None => format!("process #{}", self.history.ops[op].worker),
        }
    }

    fn render(&self, found: &Found, receipts: &HashMap<usize, Vec<(u64, usize)>>) -> Anomaly {
        let ops = &self.history.ops;
        let at_ns = found.at_ns;
        match found.what {
            What::Torn(i) => {
                let who = self.label(i);
                let text = match (ops[i].outcome, ops[i].value()) {
                    (Outcome::Sold | Outcome::SoldOut, Some(v)) => {
                        format!("{who} read {v}, a number never written to the stock, at {}", ms(at_ns))
                    }
                    _ => format!("{who} read an empty or unparseable stock file at {}", ms(at_ns)),
                };
                Anomaly {
                    kind: AnomalyKind::TornRead,
                    ops: vec![i],
                    at_ns,
                    text,
                }
            }
            What::Order { b, a } => {
                let text = format!(
                    "{} sold ticket {} at {} after {} had finished selling ticket {} at {}: the stock went back up",
                    self.label(b),
                    ops[b].value().unwrap_or_default(),
                    ms(at_ns),
                    self.label(a),
                    ops[a].value().unwrap_or_default(),
                    ms(ops[a].end().unwrap_or_default()),
                );
                Anomaly {
                    kind: AnomalyKind::Order,
                    ops: vec![b, a],
                    at_ns,
                    text,
                }
            }
            What::Duplicate(slot) => {
                let group = &receipts[&slot];
                let ticket = ops[group[0].1].value().unwrap_or_default();
                let k = group.len();
                let shown: Vec<usize> = group
                    .iter()
                    .take(if k > SHOWN { SHOWN - 1 } else { k })
                    .map(|g| g.1)
                    .collect();
                let who = self.who(&shown, k);
                let time = |g: &(u64, usize)| format!("{:.3}", g.0 as f64 / 1e6);
                let times: Vec<String> = if k <= SHOWN {
                    group.iter().map(time).collect()
                } else {
                    vec![time(&group[0]), time(&group[k - 1])]
                };
                let text = if k == 2 {
                    format!(
                        "{who} both read {ticket} (at {} ms and {} ms) and both sold ticket {ticket}",
                        times[0], times[1]
                    )
                } else if k <= SHOWN {
                    format!(
                        "{who} all read {ticket} (at {} ms) and all sold ticket {ticket}",
                        list(&times, k)
                    )
                } else {
                    format!(
                        "{who} all read {ticket} (from {} ms to {} ms) and all sold ticket {ticket}",
                        times[0], times[1]
                    )
                };
                Anomaly {
                    kind: AnomalyKind::DuplicateTicket,
                    ops: group.iter().map(|g| g.1).collect(),
                    at_ns,
                    text,
                }
            }
        }
    }

    /// Names the processes of `shown` ops, of `total`: "buyers 7 and 12", "buyer 3, seller 0
    /// and 4 others".
    fn who(&self, shown: &[usize], total: usize) -> String {
        let workers: Vec<Option<&Worker>> = shown.iter().map(|&i| self.worker(i)).collect();
        let role = workers.first().copied().flatten().map(|w| w.role);
        match role {
            Some(role) if workers.iter().all(|w| w.is_some_and(|w| w.role == role)) => {
                let numbers: Vec<String> = workers.iter().flatten().map(|w| w.index.to_string()).collect();
                format!("{}s {}", role.name(), list(&numbers, total))
            }
            _ => list(&shown.iter().map(|&i| self.label(i)).collect::<Vec<_>>(), total),
        }
    }
}

/// "a", "a and b", "a, b and c", or "a, b, c and 7 others" when `total` exceeds the items.
fn list(items: &[String], total: usize) -> String {
    let shown = if total > items.len() {
        &items[..items.len().min(SHOWN - 1)]
    } else {
        &items[..items.len().min(SHOWN)]
    };
    let rest = total - shown.len();
    match (shown, rest) {
        ([], _) => format!("{rest} others"),
        ([one], 0) => one.clone(),
        (many, 0) => format!("{} and {}", many[..many.len() - 1].join(", "), many[many.len() - 1]),
        (some, rest) => format!(
            "{} and {rest} other{}",
            some.join(", "),
            if rest == 1 { "" } else { "s" }
        ),
    }
}

/// The latest moment an operation recorded.
fn latest(op: &Op) -> u64 {
    [op.end(), op.write(), op.read()]
        .into_iter()
        .flatten()
        .fold(op.start, u64::max)
}

/// When an operation read the stock, or began if it did not record its read.
fn read_at(op: &Op) -> u64 {
    op.read().unwrap_or(op.start)
}

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

/// Nearest-rank percentiles of latencies in ns, reported in µs. Reorders `ns`.
fn latency(ns: &mut [u64]) -> Latency {
    let n = ns.len();
    if n == 0 {
        return Latency::default();
    }
    let rank = |p: usize| (p * n).div_ceil(100).max(1) - 1;
    let (i50, i90, i99) = (rank(50), rank(90), rank(99));
    let p50 = *ns.select_nth_unstable(i50).1;
    let p90 = *ns[i50..].select_nth_unstable(i90 - i50).1;
    let p99 = *ns[i90..].select_nth_unstable(i99 - i90).1;
    let max = *ns[i99..].iter().max().expect("at least one");
    let us = |v: u64| v as f64 / 1e3;
    Latency {
        p50_us: us(p50),
        p90_us: us(p90),
        p99_us: us(p99),
        max_us: us(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        Facts {
            initial_stock: initial,
            final_stock: FinalStock::Value(end),
            deadline_hit: false,
        }
    }

    fn kinds(c: &Check) -> Vec<AnomalyKind> {
        c.anomalies.iter().map(|a| a.kind).collect()
    }

    /// Every count that an anomalous trial makes non-zero.
    fn bad_counts(c: &Check) -> [u64; 5] {
        [
            c.oversold,
            c.duplicate_tickets,
            c.lost_updates,
            c.torn_reads,
            c.order_violations,
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
        assert_eq!(bad_counts(&c), [0; 5]);
        assert_eq!((c.produced, c.dropped, c.unconsumed), (0, 0, 0));
        assert_eq!(c.verdict, Verdict::Safe);
        assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
        assert_eq!(c.final_stock, Some(0));
        assert_eq!(c.wall_ms, 10.0); // the workers' finish, after the last op
        assert_eq!(c.purchases_per_s, 3000.0);
        assert_eq!(
            c.latency,
            Latency {
                p50_us: 5.0,
                p90_us: 5.0,
                p99_us: 5.0,
                max_us: 5.0
            }
        );
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
        assert_eq!(bad_counts(&c), [0, 0, 0, 1, 0]);
        assert_eq!(c.verdict, Verdict::Inconsistent);
        assert_eq!(kinds(&c), [AnomalyKind::TornRead]);
        assert_eq!(c.anomalies[0].ops, [3]);
        assert_eq!(
            c.anomalies[0].text,
            "buyer 3 read an empty or unparseable stock file at 0.002 ms"
        );
    }

    #[test]
    fn a_number_never_written_is_a_torn_read() {
        let mut h = serial_sale(10, 3);
        h.workers.push(worker(Role::Buyer, 3));
        // "10" overwritten in place by "9": a reader in between sees "90".
        h.ops.push(purchase(3, 1_000 * US, 1_002 * US, 90));
        let c = check(&h, &facts(10, 7));
        assert_eq!((c.sold, c.torn_reads), (3, 1));
        assert_eq!(bad_counts(&c), [0, 0, 0, 1, 0]);
        assert_eq!(c.verdict, Verdict::Inconsistent);
        assert_eq!(
            c.anomalies[0].text,
            "buyer 3 read 90, a number never written to the stock, at 1.001 ms"
        );
        // A sold-out read of a number never written is torn too.
        let mut h = serial_sale(2, 2);
        h.ops.push(purchase(0, 100 * US, 101 * US, -4));
        assert_eq!(check(&h, &facts(2, 0)).torn_reads, 1);
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
            "buyer 3 sold ticket 9 at 0.013 ms after buyer 2 had finished selling ticket 9 at 0.008 ms: \
             the stock went back up"
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
        assert_eq!(bad_counts(&c), [0, 0, 0, 0, 1]);
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
        assert_eq!(bad_counts(&c), [0; 5]);
        assert_eq!(c.verdict, Verdict::Safe, "{:?}", c.anomalies);
        assert!(c.anomalies.is_empty());
        assert_eq!(c.latency.max_us, 10.0, "a pending purchase has no latency");

        // Killed inside its write: the 9 it may have written is read next, and is no torn read;
        // the stock fell by two for one sale, which is no lost update either.
        h.ops[0] = h.ops[0].with_write(None).with_written(Some(9));
        h.ops[1] = purchase(1, 10 * US, 20 * US, 9);
        let c = check(&h, &facts(10, 8));
        assert_eq!((c.sold, c.indeterminate), (1, 1));
        assert_eq!(bad_counts(&c), [0; 5]);
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
    fn latency_percentiles_are_nearest_rank() {
        let ops = (1..=100u64)
            .map(|i| purchase(0, i * 1_000 * US, i * 1_000 * US + i * US, 0))
            .collect();
        let c = check(
            &History {
                workers: buyers(1),
                ops,
            },
            &facts(0, 0),
        );
        assert_eq!(
            c.latency,
            Latency {
                p50_us: 50.0,
                p90_us: 90.0,
                p99_us: 99.0,
                max_us: 100.0
            }
        );
        assert_eq!(c.verdict, Verdict::Safe);
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
        assert_eq!((c.duplicate_tickets, c.torn_reads, c.lost_updates), (1, 1, 1));
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
        assert_eq!(bad_counts(&c), [0; 5]);
        assert_eq!(c.verdict, Verdict::Safe);
        assert!(c.anomalies.is_empty());
    }
}
