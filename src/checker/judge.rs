//! The rules that classify each operation: what its process was told (sold, sold out,
//! unreadable, indeterminate) and what the checker found in it (a torn read, a duplicate
//! ticket, phantom stock, an order violation, a sale the store's record lost). Every count
//! of [`super::Check`] and every colour the report draws is read from [`Judged`]; nothing
//! else applies these rules.

use std::collections::HashMap;

use super::{Facts, RecordedSale};
use crate::history::{History, Kind, Op, Outcome};

/// What a purchase's process was told; every attempt ends in exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Told {
    /// The buyer was told it bought a ticket, whatever number it read.
    Sold,
    /// The buyer read 0 (or less) and was told the sale was over.
    SoldOut,
    /// The buyer found the stock empty or unparseable.
    Unreadable,
    /// The buyer was told it failed: the store refused its write (`fenced`), or it gave up
    /// after its retries (`optimistic`).
    Failed,
    /// The buyer's process died or was ended inside the purchase: either may have happened.
    Indeterminate,
}

impl Told {
    /// What a purchase with this recorded outcome was told.
    pub fn of(outcome: Outcome) -> Told {
        match outcome {
            Outcome::Sold => Told::Sold,
            Outcome::SoldOut => Told::SoldOut,
            Outcome::Unreadable => Told::Unreadable,
            Outcome::Fenced | Outcome::GaveUp | Outcome::Failed => Told::Failed,
            // Pending, and any outcome a purchase cannot have: its outcome is unknown.
            _ => Told::Indeterminate,
        }
    }
}

const TORN: u8 = 1;
const DUPLICATE: u8 = 2;
const PHANTOM: u8 = 4;
const ORDER: u8 = 8;
const LOST: u8 = 16;

/// The checker's judgement of one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Judgement {
    told: Option<Told>,
    flags: u8,
}

impl Judgement {
    /// What the purchase's process was told; `None` for an operation that is no purchase.
    pub fn told(self) -> Option<Told> {
        self.told
    }

    /// It read an empty or unparseable stock, or a number never written to it.
    pub fn torn(self) -> bool {
        self.flags & TORN != 0
    }

    /// It sold a ticket that another receipt also holds (every receipt of it is marked).
    pub fn duplicate(self) -> bool {
        self.flags & DUPLICATE != 0
    }

    /// It read a stock higher than the initial one: tickets that never existed.
    pub fn phantom(self) -> bool {
        self.flags & PHANTOM != 0
    }

    /// It began after another sale had ended, by more than the clock uncertainty, yet sold
    /// a ticket no lower than that sale's.
    pub fn order_violation(self) -> bool {
        self.flags & ORDER != 0
    }

    /// Its buyer was told it sold, and the store's own record of sales does not hold the sale.
    pub fn lost_acknowledged(self) -> bool {
        self.flags & LOST != 0
    }
}

/// Every operation of a history judged, with what the anomaly functions need besides.
pub struct Judged {
    /// One judgement per operation of `History::ops`, at the same index.
    pub ops: Vec<Judgement>,
    /// The values the stock ever held, each with its count of receipts.
    pub(super) values: StockValues,
    /// The sold purchases with a ticket (read, and a value ever written), as (end or
    /// `u64::MAX`, ticket, op), ordered by end.
    pub(super) by_end: Vec<(u64, i64, usize)>,
    /// Each order violation as (the later op, the earlier op it contradicts).
    pub(super) order: Vec<(usize, usize)>,
    /// How far apart two processes' stamps of one moment can be, in ns: the order rule
    /// orders two sales only when they lie further apart than this.
    pub(super) clock_uncertainty_ns: u64,
    /// The highest stock value any operation read, and the first op that read it.
    pub(super) highest_read: Option<(i64, usize)>,
    /// The receipts of each ticket that is a service's id (its number made from the id) and
    /// was sold more than once, in the order of the history.
    pub(super) ids: std::collections::BTreeMap<i64, Vec<usize>>,
}

impl Judged {
    /// Receipts whose ticket another receipt already holds.
    pub fn duplicate_tickets(&self) -> u64 {
        self.values.duplicates() + self.ids.values().map(|r| r.len() as u64 - 1).sum::<u64>()
    }
}

/// Judges every operation of `history` by what the checker is told besides: the initial
/// stock, the clock uncertainty, and the store's record of sales if it keeps one.
pub fn judge(history: &History, facts: &Facts) -> Judged {
    let (initial, bound) = (facts.initial_stock, facts.clock_uncertainty_ns);
    let ops = &history.ops;
    let mut values = StockValues::new(initial, ops);
    let mut judged = vec![Judgement::default(); ops.len()];
    let mut by_end: Vec<(u64, i64, usize)> = Vec::new();
    // The same sales by start, gathered here rather than looked up from `by_end` later: in
    // end order the operations lie all over memory.
    let mut by_start: Vec<(u64, i64, usize)> = Vec::new();
    let mut highest_read: Option<(i64, usize)> = None;
    let mut ids: std::collections::BTreeMap<i64, Vec<usize>> = std::collections::BTreeMap::new();

    for (i, op) in ops.iter().enumerate() {
        if !matches!(op.kind, Kind::Purchase | Kind::Sale) {
            continue;
        }
        if op.id_ticket() {
            // A service's id says nothing of the stock: counted, and compared for duplicates.
            let told = Told::of(op.outcome);
            judged[i].told = Some(told);
            if let (Told::Sold, Some(id)) = (told, op.value()) {
                ids.entry(id).or_default().push(i);
            }
            continue;
        }
        // An unreadable stock held no number, whatever a record says.
        let read = if op.outcome == Outcome::Unreadable {
            None
        } else {
            op.value()
        };
        if let Some(v) = read
            && highest_read.is_none_or(|(h, _)| v > h)
        {
            highest_read = Some((v, i));
        }
        if op.kind != Kind::Purchase {
            continue;
        }
        let told = Told::of(op.outcome);
        let j = &mut judged[i];
        j.told = Some(told);
        if read.is_some_and(|v| v > initial) {
            j.flags |= PHANTOM;
        }
        match told {
            Told::Unreadable => j.flags |= TORN,
            Told::Sold | Told::SoldOut => {
                let slot = match op.value() {
                    Some(v) => match values.slot(v) {
                        Some(slot) => Some(slot),
                        None => {
                            j.flags |= TORN;
                            continue; // no ticket the stock ever held: nothing more to compare
                        }
                    },
                    None => None, // nothing recorded to judge; counted, without a ticket
                };
                if told == Told::Sold
                    && let (Some(slot), Some(ticket)) = (slot, op.value())
                {
                    values.counts[slot] += 1;
                    by_end.push((op.end().unwrap_or(u64::MAX), ticket, i));
                    by_start.push((op.start, ticket, i));
                }
            }
            Told::Failed | Told::Indeterminate => {}
        }
    }

    ids.retain(|_, receipts| receipts.len() > 1);
    for &i in ids.values().flatten() {
        judged[i].flags |= DUPLICATE;
    }
    // Every receipt of a ticket sold more than once.
    if values.duplicates() > 0 {
        for &(_, ticket, i) in &by_end {
            if values.slot(ticket).is_some_and(|s| values.counts[s] > 1) {
                judged[i].flags |= DUPLICATE;
            }
        }
    }

    // The real-time order: a sale that ended before another began holds a higher ticket.
    // Stamps of one moment taken by two processes may differ by up to the clock uncertainty:
    // a sale orders another only when it ended more than that before the other began. Closer
    // than that, they are concurrent, and no anomaly rests on their stamps. Stable sorts: the sales come worker by worker, each worker's in order, and a stable
    // sort only merges such runs (`checker/check-1M-ops` took 113 ms with them, 223 ms with
    // unstable ones, on the same busy machine).
    by_end.sort_by_key(|&(end, _, i)| (end, i));
    by_start.sort_by_key(|&(start, _, i)| (start, i));
    let mut order = Vec::new();
    let mut ended = 0;
    let mut lowest: Option<(i64, usize)> = None; // the lowest ticket among those ended, and its op
    for &(start, ticket, b) in &by_start {
        while ended < by_end.len() && by_end[ended].0.saturating_add(bound) < start {
            let (_, t, a) = by_end[ended];
            if lowest.is_none_or(|(low, _)| t < low) {
                lowest = Some((t, a));
            }
            ended += 1;
        }
        if let Some((low, a)) = lowest
            && low <= ticket
        {
            judged[b].flags |= ORDER;
            order.push((b, a));
        }
    }

    if let Some(record) = &facts.sales_record {
        mark_lost(history, &mut judged, record);
    }

    Judged {
        ops: judged,
        values,
        by_end,
        order,
        highest_read,
        clock_uncertainty_ns: bound,
        ids,
    }
}

/// Marks the purchases told sold that the store's record does not hold, each record entry
/// answering one purchase of the same worker and ticket, in the order of the history.
fn mark_lost(history: &History, judged: &mut [Judgement], record: &[RecordedSale]) {
    let mut held: HashMap<(&str, i64, i64), u64> = HashMap::new();
    for sale in record {
        *held.entry((sale.worker.as_str(), sale.index, sale.ticket)).or_default() += 1;
    }
    for (j, op) in judged.iter_mut().zip(&history.ops) {
        if j.told != Some(Told::Sold) {
            continue;
        }
        let (Some(worker), Some(ticket)) = (history.workers.get(op.worker as usize), op.value()) else {
            continue;
        };
        match held.get_mut(&(worker.role.name(), worker.index as i64, ticket)) {
            Some(n) if *n > 0 => *n -= 1,
            _ => j.flags |= LOST,
        }
    }
}

/// What was written to the stock, as (when, value), in time order: by buyers and by the
/// seller alike. A write recorded twice (a buyer's copy of the seller's) is listed once.
pub fn writes(history: &History) -> Vec<(u64, i64)> {
    let mut writes: Vec<(u64, i64)> = history
        .ops
        .iter()
        .filter(|op| matches!(op.kind, Kind::Purchase | Kind::Sale))
        .filter_map(|op| Some((op.write()?, op.written()?)))
        .collect();
    writes.sort_unstable();
    writes.dedup();
    writes
}

/// The values the stock ever held (the initial stock and every purchase's and sale's
/// `written`, also of those that never completed), each with the count of receipts whose
/// ticket it is.
pub(super) struct StockValues {
    /// `Some(min)`: dense, the slot of v is v − min, and `NEVER` marks a value never written.
    /// `None`: `sorted` holds the distinct values, and a value's slot is its position there.
    min: Option<i64>,
    sorted: Vec<i64>,
    pub(super) counts: Vec<u32>,
}

const NEVER: u32 = u32::MAX;

impl StockValues {
    fn new(initial: i64, ops: &[Op]) -> StockValues {
        // A service's purchase whose answer was lost may have sold any ticket, and written
        // one less: then every ticket read from 0 to the initial stock may have been written.
        let unknown = ops.iter().any(|op| op.outcome == Outcome::Unknown);
        let written = || {
            let read = ops
                .iter()
                .filter(move |op| unknown && op.kind == Kind::Purchase)
                .filter_map(|op| op.value())
                .filter(move |v| (0..=initial).contains(v));
            ops.iter()
                .filter(|op| matches!(op.kind, Kind::Purchase | Kind::Sale))
                .filter_map(|op| op.written())
                .chain(read)
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
    pub(super) fn slot(&self, v: i64) -> Option<usize> {
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
