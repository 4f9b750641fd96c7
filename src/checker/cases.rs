//! One function per anomaly kind, after Elle: each returns its cases as data (the
//! operations involved, their values and their times), and says nothing. The sentences are
//! written from these cases in [`super::render`].

use super::judge::{Judged, Told};
use super::{Facts, FinalStock};
use crate::history::{History, Kind, Outcome, Role};

/// Tickets sold beyond the stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversold {
    /// Purchases whose buyer was told it sold.
    pub sold: u64,
    /// The stock before the trial.
    pub initial: i64,
    /// sold − initial.
    pub oversold: u64,
    /// The sales beyond the stock, in the order they ended (none listed when there are more
    /// than [`MAX_OVERSOLD_OPS`]).
    pub ops: Vec<usize>,
    /// When the first sale beyond the stock ended.
    pub at_ns: u64,
}

/// The Oversold case lists the sales beyond the stock when there are at most this many.
pub const MAX_OVERSOLD_OPS: usize = 1000;

/// One ticket sold more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateTicket {
    /// The stock value every receipt of it read.
    pub ticket: i64,
    /// Every receipt of it as (when it read the stock, op), in the order of the reads.
    pub receipts: Vec<(u64, usize)>,
}

impl DuplicateTicket {
    /// When it was first issued twice: at the second read of it.
    pub fn at_ns(&self) -> u64 {
        self.receipts.get(1).map_or(0, |r| r.0)
    }
}

/// Sales that the final stock does not show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostUpdates {
    /// Purchases whose buyer was told it sold.
    pub sold: u64,
    /// The stock before the trial.
    pub initial: i64,
    /// The stock after it.
    pub final_stock: i64,
    /// sold − (initial − final).
    pub lost: u64,
    /// The last moment of the trial.
    pub at_ns: u64,
}

/// A read of an empty or unparseable stock, or of a number never written to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornRead {
    /// The purchase that read it.
    pub op: usize,
    /// The number it read; `None` when the stock held none.
    pub value: Option<i64>,
    /// When it read the stock.
    pub at_ns: u64,
}

/// The stock rose above where it started: tickets that never existed were offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhantomStock {
    /// The stock before the trial.
    pub initial: i64,
    /// The highest value the stock was seen to hold.
    pub highest: i64,
    /// highest − initial.
    pub phantom: u64,
    /// The first operation that read the highest value; `None` when only the final stock
    /// held it.
    pub op: Option<usize>,
    /// When it was read, or the trial's end.
    pub at_ns: u64,
}

/// A sale that began after another had ended, yet holds a ticket no lower than its.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderViolation {
    /// The later sale.
    pub later: usize,
    /// The earlier one, the lowest ticket ended before the later one began.
    pub earlier: usize,
    /// When the later one read the stock.
    pub at_ns: u64,
    /// From the earlier one's completion to the later one's invocation, in ns: more than
    /// `clock_uncertainty_ns`.
    pub gap_ns: u64,
    /// How far apart two processes' stamps of one moment can be, in ns.
    pub clock_uncertainty_ns: u64,
}

/// A sale whose buyer was told it succeeded, and that the store's own record of sales does
/// not hold: acknowledged, then lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostAcknowledged {
    /// The purchase.
    pub op: usize,
    /// The ticket it was told it bought.
    pub ticket: i64,
    /// When its buyer was told: its completion (or its read, if it recorded none).
    pub at_ns: u64,
}

/// The stock held no number at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalStockUnreadable {
    /// What the stock held, as text.
    pub text: String,
    /// The last moment of the trial.
    pub at_ns: u64,
}

/// A process the sale depends on (seller, entry queue, manager) died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crashed {
    /// Index into `History::workers`.
    pub worker: usize,
    /// Its operations left unfinished.
    pub pending: Vec<usize>,
    /// The last moment it recorded.
    pub last_seen: u64,
}

/// The trial was still running at its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlock {
    /// The workers that had not finished, indices into `History::workers`.
    pub running: Vec<usize>,
    /// The last moment of the trial.
    pub at_ns: u64,
}

/// Every case of every anomaly kind, found in one trial.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cases {
    /// See [`Deadlock`].
    pub deadlock: Option<Deadlock>,
    /// See [`Crashed`]; none when the trial hit its deadline (that says more).
    pub crashed: Vec<Crashed>,
    /// See [`Oversold`].
    pub oversold: Option<Oversold>,
    /// See [`LostUpdates`].
    pub lost_updates: Option<LostUpdates>,
    /// See [`PhantomStock`].
    pub phantom_stock: Option<PhantomStock>,
    /// See [`FinalStockUnreadable`].
    pub final_stock_unreadable: Option<FinalStockUnreadable>,
    /// See [`DuplicateTicket`], in the order of their `at_ns`.
    pub duplicate_tickets: Vec<DuplicateTicket>,
    /// See [`TornRead`], in the order of the operations.
    pub torn_reads: Vec<TornRead>,
    /// See [`OrderViolation`].
    pub order_violations: Vec<OrderViolation>,
    /// See [`LostAcknowledged`], in the order of the operations.
    pub lost_acknowledged: Vec<LostAcknowledged>,
    /// Purchases sold twice under one idempotency key.
    pub duplicate_sales: Vec<DuplicateSale>,
    /// When the store's primary was killed in a failover, ns after the gate, if it was.
    pub failover_ns: Option<u64>,
}

/// The last moment anything of the trial was recorded.
pub fn last_moment(history: &History) -> u64 {
    let finished = history.workers.iter().filter_map(|w| w.finish_ns).max().unwrap_or(0);
    history.ops.iter().map(|op| op.latest()).fold(finished, u64::max)
}

/// When an operation read the stock, or began if it did not record its read.
pub fn read_at(history: &History, op: usize) -> u64 {
    let op = &history.ops[op];
    op.read().unwrap_or(op.start)
}

/// Purchases told they sold.
pub fn sold(judged: &Judged) -> u64 {
    judged.ops.iter().filter(|j| j.told() == Some(Told::Sold)).count() as u64
}

/// The sales beyond the stock, if any.
pub fn oversold(history: &History, judged: &Judged, facts: &Facts) -> Option<Oversold> {
    let sold = sold(judged);
    let initial = facts.initial_stock;
    let oversold = sold.saturating_sub(initial.max(0) as u64);
    if oversold == 0 {
        return None;
    }
    let mut sales: Vec<(u64, usize)> = (0..judged.ops.len())
        .filter(|&i| judged.ops[i].told() == Some(Told::Sold))
        .map(|i| (history.ops[i].end().unwrap_or(u64::MAX), i))
        .collect();
    sales.sort_unstable();
    let beyond = &sales[initial.max(0) as usize..]; // the sales, in end order, the stock covered
    let (end, first) = beyond[0];
    let ops = if beyond.len() <= MAX_OVERSOLD_OPS {
        beyond.iter().map(|s| s.1).collect()
    } else {
        Vec::new()
    };
    Some(Oversold {
        sold,
        initial,
        oversold,
        ops,
        at_ns: if end == u64::MAX { read_at(history, first) } else { end },
    })
}

/// Every ticket sold more than once.
pub fn duplicate_tickets(history: &History, judged: &Judged) -> Vec<DuplicateTicket> {
    if judged.duplicate_tickets() == 0 {
        return Vec::new();
    }
    let values = &judged.values;
    let mut groups: Vec<Option<DuplicateTicket>> = Vec::new();
    let mut group_of: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for &(_, ticket, i) in &judged.by_end {
        if let Some(slot) = values.slot(ticket).filter(|&s| values.counts[s] > 1) {
            let g = *group_of.entry(slot).or_insert_with(|| {
                groups.push(Some(DuplicateTicket {
                    ticket,
                    receipts: Vec::new(),
                }));
                groups.len() - 1
            });
            if let Some(group) = &mut groups[g] {
                group.receipts.push((read_at(history, i), i));
            }
        }
    }
    let mut groups: Vec<DuplicateTicket> = groups.into_iter().flatten().collect();
    for (&ticket, receipts) in &judged.ids {
        groups.push(DuplicateTicket {
            ticket,
            receipts: receipts.iter().map(|&i| (read_at(history, i), i)).collect(),
        });
    }
    for g in &mut groups {
        g.receipts.sort_unstable();
    }
    groups.sort_by_key(|g| (g.at_ns(), g.ticket));
    groups
}

/// Sales the final stock does not show. Not judged when the stock rose above where it
/// started: the tickets a torn write made hide how many sales it overwrote.
pub fn lost_updates(
    history: &History,
    judged: &Judged,
    facts: &Facts,
    phantom: Option<&PhantomStock>,
) -> Option<LostUpdates> {
    let FinalStock::Value(final_stock) = facts.final_stock else {
        return None;
    };
    if phantom.is_some() {
        return None;
    }
    let sold = sold(judged);
    let fell = facts.initial_stock as i128 - final_stock as i128;
    let lost = (sold as i128 - fell).clamp(0, u64::MAX as i128) as u64;
    (lost > 0).then(|| LostUpdates {
        sold,
        initial: facts.initial_stock,
        final_stock,
        lost,
        at_ns: last_moment(history),
    })
}

/// Every torn read.
pub fn torn_reads(history: &History, judged: &Judged) -> Vec<TornRead> {
    judged
        .ops
        .iter()
        .enumerate()
        .filter(|(_, j)| j.torn())
        .map(|(i, _)| TornRead {
            op: i,
            value: match history.ops[i].outcome {
                Outcome::Unreadable => None,
                _ => history.ops[i].value(),
            },
            at_ns: read_at(history, i),
        })
        .collect()
}

/// The stock seen above where it started, if it was: read by an operation, or left at the end.
pub fn phantom_stock(history: &History, judged: &Judged, facts: &Facts) -> Option<PhantomStock> {
    let initial = facts.initial_stock;
    let read = judged.highest_read.filter(|&(v, _)| v > initial);
    let left = match facts.final_stock {
        FinalStock::Value(v) if v > initial => Some(v),
        _ => None,
    };
    let (highest, op, at_ns) = match (read, left) {
        (Some((r, _)), Some(l)) if l > r => (l, None, last_moment(history)),
        (Some((r, i)), _) => (r, Some(i), read_at(history, i)),
        (None, Some(l)) => (l, None, last_moment(history)),
        (None, None) => return None,
    };
    Some(PhantomStock {
        initial,
        highest,
        phantom: (highest as i128 - initial as i128).clamp(0, u64::MAX as i128) as u64,
        op,
        at_ns,
    })
}

/// Every sale that contradicts the real-time order of a decrementing stock.
pub fn order_violations(history: &History, judged: &Judged) -> Vec<OrderViolation> {
    judged
        .order
        .iter()
        .map(|&(later, earlier)| OrderViolation {
            later,
            earlier,
            at_ns: read_at(history, later),
            gap_ns: history.ops[later]
                .start
                .saturating_sub(history.ops[earlier].end().unwrap_or_default()),
            clock_uncertainty_ns: judged.clock_uncertainty_ns,
        })
        .collect()
}

/// Every sale the store's record of sales lost, after its buyer was told.
pub fn lost_acknowledged(history: &History, judged: &Judged) -> Vec<LostAcknowledged> {
    judged
        .ops
        .iter()
        .enumerate()
        .filter(|(_, j)| j.lost_acknowledged())
        .map(|(i, _)| {
            let op = &history.ops[i];
            LostAcknowledged {
                op: i,
                ticket: op.value().unwrap_or_default(),
                at_ns: op.end().unwrap_or_else(|| read_at(history, i)),
            }
        })
        .collect()
}

/// The final stock, when it held no number.
pub fn final_stock_unreadable(history: &History, facts: &Facts) -> Option<FinalStockUnreadable> {
    match &facts.final_stock {
        FinalStock::Unreadable(text) => Some(FinalStockUnreadable {
            text: text.clone(),
            at_ns: last_moment(history),
        }),
        FinalStock::Value(_) => None,
    }
}

/// Every process the sale depends on that died before finishing its work.
pub fn crashed(history: &History) -> Vec<Crashed> {
    let ops = &history.ops;
    history
        .workers
        .iter()
        .enumerate()
        .filter(|(_, w)| matches!(w.role, Role::Seller | Role::EntryQueue | Role::Manager) && w.finish_ns.is_none())
        .map(|(worker, w)| {
            let mine = || (0..ops.len()).filter(move |&i| ops[i].worker as usize == worker);
            Crashed {
                worker,
                pending: mine().filter(|&i| ops[i].outcome == Outcome::Pending).collect(),
                last_seen: mine()
                    .map(|i| ops[i].latest())
                    .max()
                    .unwrap_or(w.ready_ns.max(0) as u64),
            }
        })
        .collect()
}

/// The trial at its deadline, if it hit it.
pub fn deadlock(history: &History, facts: &Facts) -> Option<Deadlock> {
    facts.deadline_hit.then(|| Deadlock {
        running: (0..history.workers.len())
            .filter(|&w| history.workers[w].finish_ns.is_none())
            .collect(),
        at_ns: last_moment(history),
    })
}

/// Every case of every kind.
pub fn all(history: &History, judged: &Judged, facts: &Facts) -> Cases {
    let deadlock = deadlock(history, facts);
    let phantom_stock = phantom_stock(history, judged, facts);
    Cases {
        crashed: if deadlock.is_some() {
            Vec::new()
        } else {
            crashed(history)
        },
        deadlock,
        oversold: oversold(history, judged, facts),
        lost_updates: lost_updates(history, judged, facts, phantom_stock.as_ref()),
        phantom_stock,
        final_stock_unreadable: final_stock_unreadable(history, facts),
        duplicate_tickets: duplicate_tickets(history, judged),
        torn_reads: torn_reads(history, judged),
        order_violations: order_violations(history, judged),
        lost_acknowledged: lost_acknowledged(history, judged),
        duplicate_sales: duplicate_sales(history, judged),
        failover_ns: facts.failover_ns,
    }
}

/// One purchase sold twice: two sales of one idempotency key (the same worker and entry)
/// with different tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateSale {
    /// The first sale.
    pub first: usize,
    /// The sale with another ticket, to the same purchase sent again.
    pub second: usize,
    /// When the second sale ended.
    pub at_ns: u64,
}

/// Every purchase a service sold more than once: sales of the same worker and entry (a
/// service purchase's idempotency key) whose tickets differ. A replayed answer, the same
/// ticket again, is none.
pub fn duplicate_sales(history: &History, judged: &Judged) -> Vec<DuplicateSale> {
    let mut first: std::collections::HashMap<(u32, u64), usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (i, op) in history.ops.iter().enumerate() {
        let (Some(entry), Some(ticket)) = (op.entry(), op.value()) else {
            continue;
        };
        if op.kind != Kind::Purchase || judged.ops[i].told() != Some(Told::Sold) {
            continue;
        }
        match first.get(&(op.worker, entry)) {
            Some(&f) if history.ops[f].value() != Some(ticket) => out.push(DuplicateSale {
                first: f,
                second: i,
                at_ns: op.end().unwrap_or(op.start),
            }),
            Some(_) => {}
            None => {
                first.insert((op.worker, entry), i);
            }
        }
    }
    out
}
