//! The words: one sentence per case, written from the data of [`super::cases`] alone. Every
//! summary case is listed; of the per-operation ones (torn reads, duplicate tickets, order
//! violations), the earliest, up to [`MAX_ANOMALIES`] in all.

use super::cases::{self, Cases};
use super::{Anomaly, AnomalyKind, MAX_ANOMALIES};
use crate::history::{History, Worker};

/// Receipts of one ticket named one by one in a DuplicateTicket anomaly.
const SHOWN: usize = 6;

/// The anomalies of a trial, earliest first.
pub fn anomalies(history: &History, cases: &Cases) -> Vec<Anomaly> {
    let names = Names {
        history,
        lost: cases.lost_acknowledged.iter().map(|l| l.op).collect(),
        failover_ns: cases.failover_ns,
    };
    let mut out = Vec::new();
    if let Some(d) = &cases.deadlock {
        out.push(names.deadlock(d));
    }
    out.extend(cases.crashed.iter().map(|c| names.crashed(c)));
    if let Some(o) = &cases.oversold {
        out.push(Anomaly {
            kind: AnomalyKind::Oversold,
            ops: o.ops.clone(),
            at_ns: o.at_ns,
            text: format!(
                "{} tickets sold from a stock of {}: {} oversold",
                o.sold, o.initial, o.oversold
            ),
        });
    }
    if let Some(l) = &cases.lost_updates {
        let fell = l.initial as i128 - l.final_stock as i128;
        let change = if fell >= 0 {
            format!("fell by only {fell}")
        } else {
            format!("rose by {}", -fell)
        };
        out.push(Anomaly {
            kind: AnomalyKind::LostUpdate,
            ops: Vec::new(),
            at_ns: l.at_ns,
            text: format!(
                "{} sold but the stock {change} ({} → {}): {} update{} lost",
                l.sold,
                l.initial,
                l.final_stock,
                l.lost,
                if l.lost == 1 { "" } else { "s" }
            ),
        });
    }
    if let Some(p) = &cases.phantom_stock {
        let by = match p.op {
            Some(op) => format!(" ({} read it at {})", names.label(op), ms(p.at_ns)),
            None => String::new(),
        };
        out.push(Anomaly {
            kind: AnomalyKind::PhantomStock,
            ops: p.op.into_iter().collect(),
            at_ns: p.at_ns,
            text: format!(
                "the stock rose from {} to {}: a torn write made {} ticket{} that never existed{by}",
                count(p.initial),
                count(p.highest),
                count(p.phantom as i64),
                if p.phantom == 1 { "" } else { "s" }
            ),
        });
    }
    if let Some(f) = &cases.final_stock_unreadable {
        let shown: String = f.text.chars().take(60).collect();
        let more = if f.text.chars().nth(60).is_some() { "…" } else { "" };
        out.push(Anomaly {
            kind: AnomalyKind::FinalStockUnreadable,
            ops: Vec::new(),
            at_ns: f.at_ns,
            text: format!("the stock held no number when the trial ended: it read {shown:?}{more}"),
        });
    }
    out.extend(cases.duplicate_sales.iter().map(|d| names.duplicate_sale(d)));
    out.truncate(MAX_ANOMALIES);

    // The earliest per-operation cases: (when, rank at the same moment, which list, index).
    let room = MAX_ANOMALIES - out.len();
    let mut found: Vec<(u64, u8, usize)> = Vec::new();
    found.extend(cases.torn_reads.iter().enumerate().map(|(i, t)| (t.at_ns, 0, i)));
    found.extend(
        cases
            .duplicate_tickets
            .iter()
            .enumerate()
            .map(|(i, d)| (d.at_ns(), 1, i)),
    );
    found.extend(cases.order_violations.iter().enumerate().map(|(i, o)| (o.at_ns, 2, i)));
    found.extend(cases.lost_acknowledged.iter().enumerate().map(|(i, l)| (l.at_ns, 3, i)));
    if found.len() > room && room > 0 {
        found.select_nth_unstable(room - 1);
    }
    found.truncate(room);
    found.sort_unstable();
    for (_, rank, i) in found {
        out.push(match rank {
            0 => names.torn(&cases.torn_reads[i]),
            1 => names.duplicate(&cases.duplicate_tickets[i]),
            2 => names.order(&cases.order_violations[i]),
            _ => names.lost(&cases.lost_acknowledged[i]),
        });
    }
    out.sort_by_key(|a| a.at_ns);
    out
}

/// Names processes and writes the sentences.
struct Names<'a> {
    history: &'a History,
    /// The sales the store's record lost, though their buyers were told of them.
    lost: std::collections::HashSet<usize>,
    /// When the store's primary was killed in a failover, if it was.
    failover_ns: Option<u64>,
}

impl Names<'_> {
    /// A purchase sold twice: who bought, both tickets, and when.
    fn duplicate_sale(&self, d: &cases::DuplicateSale) -> Anomaly {
        let ops = &self.history.ops;
        let ticket = |i: usize| ops[i].value().map_or_else(|| "?".to_string(), |v| v.to_string());
        Anomaly {
            kind: AnomalyKind::DuplicateSale,
            ops: vec![d.first, d.second],
            at_ns: d.at_ns,
            text: format!(
                "{} was sold ticket {}, and when the same purchase was sent again with its idempotency key, \
                 ticket {} as well (at {}): the service sold twice to one retried purchase",
                self.label(d.first),
                ticket(d.first),
                ticket(d.second),
                ms(d.at_ns)
            ),
        }
    }

    fn worker(&self, op: usize) -> Option<&Worker> {
        self.history.workers.get(self.history.ops[op].worker as usize)
    }

    fn label(&self, op: usize) -> String {
        match self.worker(op) {
            Some(w) => w.label(),
            None => format!("process #{}", self.history.ops[op].worker),
        }
    }

    fn deadlock(&self, d: &cases::Deadlock) -> Anomaly {
        let workers = &self.history.workers;
        let mut text = String::from("the trial was still running at its deadline and was ended");
        if !d.running.is_empty() {
            let labels: Vec<String> = d.running.iter().map(|&w| workers[w].label()).collect();
            text += &format!(
                ": {} of {} processes had not finished ({})",
                d.running.len(),
                workers.len(),
                list(&labels, d.running.len())
            );
        }
        Anomaly {
            kind: AnomalyKind::Deadlock,
            ops: Vec::new(),
            at_ns: d.at_ns,
            text,
        }
    }

    fn crashed(&self, c: &cases::Crashed) -> Anomaly {
        Anomaly {
            kind: AnomalyKind::Crashed,
            ops: c.pending.clone(),
            at_ns: c.last_seen,
            text: format!(
                "{} died before finishing its work (last seen at {}): the sale depends on it",
                self.history.workers[c.worker].label(),
                ms(c.last_seen)
            ),
        }
    }

    fn torn(&self, t: &cases::TornRead) -> Anomaly {
        let who = self.label(t.op);
        let text = match t.value {
            Some(v) => format!(
                "{who} read {v}, a number never written to the stock, at {}",
                ms(t.at_ns)
            ),
            None => format!("{who} read an empty or unparseable stock file at {}", ms(t.at_ns)),
        };
        Anomaly {
            kind: AnomalyKind::TornRead,
            ops: vec![t.op],
            at_ns: t.at_ns,
            text,
        }
    }

    fn order(&self, o: &cases::OrderViolation) -> Anomaly {
        let ops = &self.history.ops;
        let (b, a) = (o.later, o.earlier);
        let text = format!(
            "{} sold ticket {} at {} after {} had finished selling ticket {} at {}, {} before it began \
             (the clocks' uncertainty: {}): the stock went back up",
            self.label(b),
            ops[b].value().unwrap_or_default(),
            ms(o.at_ns),
            self.label(a),
            ops[a].value().unwrap_or_default(),
            ms(ops[a].end().unwrap_or_default()),
            span(o.gap_ns),
            span(o.clock_uncertainty_ns),
        );
        Anomaly {
            kind: AnomalyKind::Order,
            ops: vec![b, a],
            at_ns: o.at_ns,
            text,
        }
    }

    fn lost(&self, l: &cases::LostAcknowledged) -> Anomaly {
        Anomaly {
            kind: AnomalyKind::LostAcknowledged,
            ops: vec![l.op],
            at_ns: l.at_ns,
            text: format!(
                "{} was told it bought ticket {} at {}; the store's record of sales does not hold it",
                self.label(l.op),
                l.ticket,
                ms(l.at_ns)
            ),
        }
    }

    fn duplicate(&self, d: &cases::DuplicateTicket) -> Anomaly {
        let group = &d.receipts;
        let ticket = d.ticket;
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
        let text = if let Some(text) = self.resold(d) {
            text
        } else if k == 2 {
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
            at_ns: d.at_ns(),
            text,
        }
    }

    /// A ticket sold twice whose first sale the failover lost, the second made after the
    /// kill: "ticket 4117 was sold to buyer 2 at 210.4 ms, lost in the failover at 300.9 ms,
    /// and sold again to buyer 0 at 311.2 ms".
    fn resold(&self, d: &cases::DuplicateTicket) -> Option<String> {
        let killed = self.failover_ns?;
        let [(_, first), (_, again)] = d.receipts[..] else {
            return None;
        };
        let ops = &self.history.ops;
        let (told, resold) = (ops[first].end()?, ops[again].end()?);
        (self.lost.contains(&first) && told <= killed && ops[again].start > killed).then(|| {
            format!(
                "ticket {} was sold to {} at {}, lost in the failover at {}, and sold again to {} at {}",
                d.ticket,
                self.label(first),
                ms(told),
                ms(killed),
                self.label(again),
                ms(resold)
            )
        })
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

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

/// A short span of time: "56 ns", "5.000 µs", "1.250 ms".
pub fn span(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.3} µs", ns as f64 / 1e3),
        _ => ms(ns),
    }
}

/// A count with thousands separated by commas: 899788 → "899,788".
fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}
