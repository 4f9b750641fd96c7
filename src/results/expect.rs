//! Judges a run against its scenario's `[expect]`.

use crate::checker::{Check, Verdict};
use crate::results::{Results, TrialResult};
use crate::scenario::ExpectKey;

/// Whether one trial shows what `key` names.
fn shows(key: ExpectKey, c: &Check) -> bool {
    match key {
        ExpectKey::Oversell => c.oversold > 0,
        ExpectKey::DuplicateTickets => c.duplicate_tickets > 0,
        ExpectKey::LostUpdates => c.lost_updates > 0,
        ExpectKey::TornReads => c.torn_reads > 0,
        ExpectKey::OrderViolations => c.order_violations > 0,
        ExpectKey::Anomaly => c.verdict != Verdict::Safe,
        ExpectKey::Dropped => c.dropped > 0,
        ExpectKey::Unconsumed => c.unconsumed > 0,
        ExpectKey::Indeterminate => c.indeterminate > 0,
        ExpectKey::Deadlock => c.verdict == Verdict::Deadlock,
        ExpectKey::Crashed => c.verdict == Verdict::Crashed,
        ExpectKey::PhantomStock => c.phantom_stock > 0,
        ExpectKey::Fenced => c.fenced > 0,
        ExpectKey::GaveUp => c.gave_up > 0,
        ExpectKey::Retries => c.retries > 0,
        ExpectKey::Recovered => c.recovered > 0,
        ExpectKey::Undersold => c.undersold > 0,
        ExpectKey::DuplicateSale => c.duplicate_sale > 0,
        ExpectKey::LostAcknowledged => c.lost_acknowledged > 0,
    }
}

/// Every expectation the run contradicts, one sentence each.
pub fn violations(results: &Results) -> Vec<String> {
    let mut out = Vec::new();
    // A sweep runs a strategy at several points: its expectations cover all of them.
    for &strategy in &results.scenario.strategies {
        let trials: Vec<&TrialResult> = results
            .runs
            .iter()
            .filter(|r| r.strategy == strategy)
            .flat_map(|r| &r.trials)
            .collect();
        let want = results.scenario.expect.for_strategy(strategy);
        let n = trials.len();
        for (&key, &expected) in &want.flags {
            let showing = trials.iter().filter(|t| shows(key, &t.check)).count();
            if expected && showing == 0 && n > 0 {
                out.push(format!(
                    "{}: expected {} in at least one trial, but none of {n} trials showed it",
                    strategy,
                    key.name()
                ));
            }
            if !expected && showing > 0 {
                out.push(format!(
                    "{}: expected no {}, but {showing} of {n} trials showed it",
                    strategy,
                    key.name()
                ));
            }
        }
        if let Some(stock) = want.final_stock {
            let off: Vec<String> = trials
                .iter()
                .filter(|t| t.check.final_stock != Some(stock))
                .map(|t| {
                    format!(
                        "trial {} ended at {}",
                        t.trial,
                        t.check
                            .final_stock
                            .map_or("an unreadable stock".into(), |v| v.to_string())
                    )
                })
                .collect();
            if !off.is_empty() {
                out.push(format!(
                    "{}: expected a final stock of {stock}, but {}",
                    strategy,
                    off.join(", ")
                ));
            }
        }
    }
    out
}
