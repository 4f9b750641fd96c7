//! The checker of a soak, streaming: it takes a soak trial's history a segment at a time,
//! in whatever order the segments are closed, and keeps only counts, one bit per ticket and
//! a fixed-size latency histogram, so that its memory does not grow with the soak's length
//! (but for the bit per ticket sold: 19 MB for 150 million tickets).
//!
//! It finds what can be found without holding the whole history: oversold tickets,
//! duplicate tickets (a ticket sold twice, whenever and by whoever), lost updates (from the
//! final stock), torn reads (unreadable reads, and values outside the stock's range),
//! indeterminate purchases, sales the store's record lost (matched by ticket: a soak keeps
//! one bit per ticket, not its buyer) and the processes the sale depends on that died. It
//! does not look for order violations, which need every purchase at once: a soak's
//! `order_violations` is always 0. The verdict is the checker's one rule,
//! [`super::verdict`].
//!
//! A service's purchases are judged as a trial's are: tickets that are ids are compared for
//! duplicates (a set of the ids sold, which grows with the sales) and the checks that need
//! numbers are not checkable; a retried purchase sold again with another ticket is a
//! `duplicate_sale` (the same buyer's same key, whose retries follow one another); and the
//! service time of an open loop's purchases is kept beside their latency.

use super::{RecordedSale, cases, render};
use crate::checker::{Anomaly, AnomalyKind, Check, Facts, FinalStock, MAX_ANOMALIES, Verdict, verdict};
use crate::history::speed::{LatencyHistogram, Speed};
use crate::history::{History, Kind, Outcome, Role};

/// What the streaming checker knows of a soak trial so far.
#[derive(Debug, Clone)]
pub struct Stream {
    initial: i64,
    attempts: u64,
    sold: u64,
    sold_out: u64,
    unreadable: u64,
    fenced: u64,
    gave_up: u64,
    failed: u64,
    retries: u64,
    recovered: u64,
    torn_reads: u64,
    indeterminate: u64,
    duplicates: u64,
    /// The highest stock value read.
    highest: i64,
    /// Bit `initial - ticket` is set once the ticket was sold.
    tickets: Vec<u64>,
    /// The bits of the tickets sold again, once for each receipt after the first.
    again: Vec<u64>,
    /// The latest completion, ns after the gate.
    last_ns: u64,
    latency: LatencyHistogram,
    /// An open loop's purchases, from their send to their answer.
    service_time: LatencyHistogram,
    /// The tickets sold that are ids, not stock values.
    ids: std::collections::HashSet<i64>,
    /// Whether any ticket was an id.
    id_tickets: bool,
    /// Each buyer's last sale with an idempotency key: (buyer, key) -> ticket.
    last_key: std::collections::HashMap<u32, (u64, i64)>,
    duplicate_sale: u64,
    anomalies: Vec<Anomaly>,
    segments: u64,
}

impl Stream {
    /// A stream for a trial that started with `initial` tickets.
    pub fn new(initial: i64) -> Stream {
        Stream {
            initial,
            attempts: 0,
            sold: 0,
            sold_out: 0,
            unreadable: 0,
            fenced: 0,
            gave_up: 0,
            failed: 0,
            retries: 0,
            recovered: 0,
            torn_reads: 0,
            indeterminate: 0,
            duplicates: 0,
            highest: initial,
            tickets: Vec::new(),
            again: Vec::new(),
            last_ns: 0,
            latency: LatencyHistogram::default(),
            service_time: LatencyHistogram::default(),
            ids: Default::default(),
            id_tickets: false,
            last_key: Default::default(),
            duplicate_sale: 0,
            anomalies: Vec::new(),
            segments: 0,
        }
    }

    /// Purchase attempts seen so far.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// Segments taken so far.
    pub fn segments(&self) -> u64 {
        self.segments
    }

    /// Takes one segment of the history; returns whether it held an anomaly (a duplicate
    /// ticket, a torn read, an indeterminate purchase).
    pub fn feed(&mut self, segment: &History) -> bool {
        self.segments += 1;
        let before = self.duplicates + self.torn_reads + self.indeterminate + self.duplicate_sale;
        for op in segment.ops.iter().filter(|op| op.kind == Kind::Purchase) {
            self.attempts += 1;
            if let Some(end) = op.end() {
                self.last_ns = self.last_ns.max(end);
            }
            if let Some(ns) = op.latency() {
                self.latency.record(ns);
                if op.planned()
                    && let (Some(sent), Some(end)) = (op.read(), op.end())
                {
                    self.service_time.record(end.saturating_sub(sent));
                }
            }
            self.retries += op.retries() as u64;
            self.recovered += op.recovered() as u64;
            let who = || {
                segment
                    .workers
                    .get(op.worker as usize)
                    .map_or_else(|| "a buyer".to_string(), |w| w.label())
            };
            if op.outcome == Outcome::Sold
                && let (Some(entry), Some(ticket)) = (op.entry(), op.value())
            {
                let buyer = segment.workers.get(op.worker as usize).map_or(op.worker, |w| w.index);
                match self.last_key.insert(buyer, (entry, ticket)) {
                    Some((key, first)) if key == entry && first != ticket => {
                        self.duplicate_sale += 1;
                        self.note(Anomaly {
                            kind: AnomalyKind::DuplicateSale,
                            ops: Vec::new(),
                            at_ns: op.end().unwrap_or(op.start),
                            text: format!(
                                "{} was sold ticket {first}, and when the same purchase was sent again with its \
                                 idempotency key, ticket {ticket} as well (segment {} of the soak): the service \
                                 sold twice to one retried purchase",
                                who(),
                                self.segments
                            ),
                        });
                    }
                    _ => {}
                }
            }
            if op.id_ticket() {
                // An id says nothing of the stock: counted, and compared with the ids sold.
                self.id_tickets = true;
                match op.outcome {
                    Outcome::Sold => {
                        self.sold += 1;
                        if let Some(id) = op.value()
                            && !self.ids.insert(id)
                        {
                            self.sold_again(who(), id, op.read().unwrap_or(op.start));
                        }
                    }
                    outcome => self.count(outcome),
                }
                continue;
            }
            let value = op.value();
            if let Some(v) = value {
                self.highest = self.highest.max(v);
            }
            if value.is_some_and(|v| v > self.initial || v < 0) {
                // A number never written: the stock only ever held initial down to 0.
                self.torn_reads += 1;
            }
            match op.outcome {
                Outcome::Sold => {
                    self.sold += 1;
                    if let Some(ticket) = value.filter(|&v| v > 0 && v <= self.initial)
                        && !self.take_ticket(ticket)
                    {
                        self.again.push((self.initial - ticket) as u64);
                        self.sold_again(who(), ticket, op.read().unwrap_or(op.start));
                    }
                }
                outcome => self.count(outcome),
            }
        }
        self.duplicates + self.torn_reads + self.indeterminate + self.duplicate_sale > before
    }

    /// Counts a purchase that sold nothing.
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::SoldOut => self.sold_out += 1,
            Outcome::Unreadable => {
                self.unreadable += 1;
                self.torn_reads += 1;
            }
            Outcome::Fenced => self.fenced += 1,
            Outcome::GaveUp => self.gave_up += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Pending | Outcome::Unknown => self.indeterminate += 1,
            _ => {}
        }
    }

    /// Counts a ticket (a stock value or an id) that `who` sold when it had already been
    /// sold, and says so.
    fn sold_again(&mut self, who: String, ticket: i64, at_ns: u64) {
        self.duplicates += 1;
        self.note(Anomaly {
            kind: AnomalyKind::DuplicateTicket,
            ops: Vec::new(),
            at_ns,
            text: format!(
                "{who} sold ticket {ticket}, which had already been sold (segment {} of the soak)",
                self.segments
            ),
        });
    }

    /// Keeps `anomaly`, while there is room.
    fn note(&mut self, anomaly: Anomaly) {
        if self.anomalies.len() < MAX_ANOMALIES {
            self.anomalies.push(anomaly);
        }
    }

    /// Marks `ticket` sold; false if it already was.
    fn take_ticket(&mut self, ticket: i64) -> bool {
        let bit = (self.initial - ticket) as usize;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if word >= self.tickets.len() {
            self.tickets.resize(word + 1, 0);
        }
        let fresh = self.tickets[word] & mask == 0;
        self.tickets[word] |= mask;
        fresh
    }

    /// The trial's check, once every segment was taken.
    pub fn finish(mut self, history: &History, facts: &Facts) -> (Check, Speed) {
        let final_stock = match &facts.final_stock {
            FinalStock::Value(v) => Some(*v),
            FinalStock::Unreadable(_) => None,
        };
        let oversold = self.sold.saturating_sub(self.initial.max(0) as u64);
        let highest = final_stock.map_or(self.highest, |f| self.highest.max(f));
        let phantom_stock = highest.saturating_sub(self.initial).max(0) as u64;
        // A stock that rose hides how many sales it overwrote: those are not counted.
        let lost_updates = match phantom_stock {
            0 => final_stock.map_or(0, |f| {
                let taken = (self.initial - f).max(0) as u64;
                self.sold.saturating_sub(taken)
            }),
            _ => 0,
        };
        let (anomalies, lost_acknowledged, crashed) = self.what_else_happened(history, facts);
        let wall_ms = self.last_ns as f64 / 1e6;
        let completed = self.attempts - self.indeterminate;
        let speed = Speed {
            wall_ms,
            purchases_per_s: completed as f64 / (wall_ms / 1e3).max(1e-9),
            latency: self.latency.latency().unwrap_or_default(),
            service_time: self.service_time.latency(),
        };
        let check = Check {
            final_stock,
            attempts: self.attempts,
            sold: self.sold,
            sold_out: self.sold_out,
            unreadable: self.unreadable,
            fenced: self.fenced,
            gave_up: self.gave_up,
            failed: self.failed,
            duplicate_sale: self.duplicate_sale,
            not_checkable: match self.id_tickets {
                true => super::not_checkable_with_ids(),
                false => Vec::new(),
            },
            retries: self.retries,
            recovered: self.recovered,
            undersold: match final_stock {
                Some(left) if left > 0 && self.gave_up + self.sold_out > 0 => left as u64,
                _ => 0,
            },
            oversold,
            duplicate_tickets: self.duplicates,
            lost_updates,
            torn_reads: self.torn_reads,
            phantom_stock,
            indeterminate: self.indeterminate,
            order_violations: 0,
            produced: 0,
            dropped: 0,
            unconsumed: 0,
            abandoned: 0,
            lost_acknowledged,
            crashed,
            clock_uncertainty_ns: facts.clock_uncertainty_ns,
            verdict: Verdict::Safe,
            anomalies,
        };
        let check = Check {
            verdict: verdict(&check, facts.deadline_hit),
            ..check
        };
        (check, speed)
    }

    /// Besides the segments' findings: the processes the sale depends on that died (from
    /// `history`, the trial's own file, as a whole trial's check finds them), and the sales
    /// the store's record lost. The anomalies, earliest first, with the counts of both.
    fn what_else_happened(&mut self, history: &History, facts: &Facts) -> (Vec<Anomaly>, u64, u64) {
        let dead = cases::Cases {
            deadlock: cases::deadlock(history, facts),
            crashed: if facts.deadline_hit {
                Vec::new()
            } else {
                cases::crashed(history)
            },
            ..cases::Cases::default()
        };
        let mut anomalies = render::anomalies(history, &dead);
        let lost = facts
            .sales_record
            .as_deref()
            .map_or_else(Vec::new, |record| self.lost_acknowledged(record));
        anomalies.extend(lost.iter().take(MAX_ANOMALIES).map(|ticket| Anomaly {
            kind: AnomalyKind::LostAcknowledged,
            ops: Vec::new(),
            at_ns: self.last_ns,
            text: format!(
                "a buyer was told it bought ticket {ticket} during the soak; the store's record of sales does not hold it"
            ),
        }));
        anomalies.append(&mut self.anomalies);
        anomalies.sort_by_key(|a| a.at_ns);
        anomalies.truncate(MAX_ANOMALIES);
        (anomalies, lost.len() as u64, dead.crashed.len() as u64)
    }

    /// The tickets of the receipts the store's record of sales does not hold, one for each
    /// such receipt: a record entry answers one receipt of its ticket, whoever its buyer.
    fn lost_acknowledged(&self, record: &[RecordedSale]) -> Vec<i64> {
        let in_range = |t: i64| t > 0 && t <= self.initial;
        let mut held: Vec<u64> = record
            .iter()
            .filter(|s| s.worker == Role::Buyer.name() && in_range(s.ticket))
            .map(|s| (self.initial - s.ticket) as u64)
            .collect();
        held.sort_unstable();
        let mut again = self.again.clone();
        again.sort_unstable();
        let (mut h, mut a) = (0, 0);
        let mut lost = Vec::new();
        for (w, &word) in self.tickets.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let bit = (w * 64) as u64 + bits.trailing_zeros() as u64;
                bits &= bits - 1;
                let mut receipts = 1;
                while a < again.len() && again[a] == bit {
                    (receipts, a) = (receipts + 1, a + 1);
                }
                while h < held.len() && held[h] < bit {
                    h += 1;
                }
                let mut recorded = 0;
                while h < held.len() && held[h] == bit {
                    (recorded, h) = (recorded + 1, h + 1);
                }
                for _ in recorded..receipts {
                    lost.push(self.initial - bit as i64);
                }
            }
        }
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, Role, Worker};

    fn segment(ops: &[(Outcome, i64)]) -> History {
        History {
            workers: vec![Worker {
                role: Role::Buyer,
                index: 0,
                pid: 1,
                ready_ns: 0,
                finish_ns: Some(1000),
            }],
            ops: ops
                .iter()
                .enumerate()
                .map(|(i, &(outcome, value))| {
                    let t = i as u64 * 100;
                    Op::new(0, Kind::Purchase, outcome, t)
                        .with_read(Some(t + 10))
                        .with_end(Some(t + 50))
                        .with_value(Some(value))
                })
                .collect(),
        }
    }

    fn facts(initial: i64, end: i64) -> Facts {
        Facts::ended(initial, end)
    }

    #[test]
    fn a_serial_sale_in_segments_is_safe() {
        let mut s = Stream::new(4);
        assert!(!s.feed(&segment(&[(Outcome::Sold, 4), (Outcome::Sold, 3)])));
        assert!(!s.feed(&segment(&[
            (Outcome::Sold, 2),
            (Outcome::Sold, 1),
            (Outcome::SoldOut, 0)
        ])));
        let (c, speed) = s.finish(&History::default(), &facts(4, 0));
        assert_eq!((c.attempts, c.sold, c.sold_out, c.verdict), (5, 4, 1, Verdict::Safe));
        assert_eq!(speed.latency.p50_us.round(), 0.0, "50 ns");
    }

    #[test]
    fn a_ticket_sold_twice_in_different_segments_is_found() {
        let mut s = Stream::new(4);
        s.feed(&segment(&[(Outcome::Sold, 4), (Outcome::Sold, 3)]));
        assert!(s.feed(&segment(&[(Outcome::Sold, 3)])));
        let (c, _) = s.finish(&History::default(), &facts(4, 2));
        assert_eq!(c.duplicate_tickets, 1);
        assert_eq!(c.lost_updates, 1, "3 sold, the stock went down by 2");
        assert_eq!(c.verdict, Verdict::Inconsistent);
        assert_eq!(c.anomalies.len(), 1);
        assert!(c.anomalies[0].text.contains("ticket 3"), "{}", c.anomalies[0].text);
    }

    #[test]
    fn selling_past_the_stock_is_oversold() {
        let mut s = Stream::new(1);
        s.feed(&segment(&[(Outcome::Sold, 1), (Outcome::Sold, 1)]));
        let (c, _) = s.finish(&History::default(), &facts(1, 0));
        assert_eq!((c.oversold, c.verdict), (1, Verdict::Oversold));
    }

    #[test]
    fn sales_the_stores_record_lost_are_counted_as_a_whole_trials_check_counts_them() {
        let mut s = Stream::new(5);
        s.feed(&segment(&[(Outcome::Sold, 5), (Outcome::Sold, 4), (Outcome::Sold, 3)]));
        s.feed(&segment(&[(Outcome::Sold, 3), (Outcome::Sold, 2)])); // ticket 3 twice
        let sale = |ticket| RecordedSale {
            worker: "buyer".into(),
            index: 0,
            ticket,
        };
        let with = |record: Vec<RecordedSale>| Facts {
            sales_record: Some(record),
            ..facts(5, 1)
        };
        let (c, _) = s
            .clone()
            .finish(&History::default(), &with((1..=5).rev().map(sale).collect()));
        assert_eq!(c.lost_acknowledged, 1, "ticket 3's second receipt");
        // The record emptied after the first three sales.
        let (c, _) = s.finish(&History::default(), &with(vec![sale(3), sale(2)]));
        assert_eq!((c.lost_acknowledged, c.verdict), (3, Verdict::Inconsistent));
        let lost: Vec<&str> = c
            .anomalies
            .iter()
            .filter(|a| a.kind == AnomalyKind::LostAcknowledged)
            .map(|a| a.text.as_str())
            .collect();
        assert_eq!(lost.len(), 3);
        assert!(
            lost[0].contains("ticket 5") && lost[0].contains("record of sales does not hold it"),
            "{lost:?}"
        );
    }

    #[test]
    fn a_soak_whose_manager_died_is_crashed() {
        let mut s = Stream::new(3);
        s.feed(&segment(&[(Outcome::Sold, 3)]));
        let trial = History {
            workers: vec![Worker {
                role: Role::Manager,
                index: 0,
                pid: 2,
                ready_ns: 0,
                finish_ns: None,
            }],
            ops: Vec::new(),
        };
        let (c, _) = s.finish(&trial, &facts(3, 2));
        assert_eq!((c.crashed, c.verdict), (1, Verdict::Crashed));
        assert_eq!(c.anomalies[0].kind, AnomalyKind::Crashed);
    }
}
