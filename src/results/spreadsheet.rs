//! The results as tables that other tools read, for `--export-markdown` and `--export-csv`
//! of `sim run` and `sim report`: the summary as a Markdown table (for a README or a pull
//! request), and one CSV row per trial with every count (for pandas or a spreadsheet).
//!
//! Both are drawn from `results.json` alone. The CSV's columns are listed in docs/reference/results.md;
//! a count the checker gains later still gets a column (after the known ones, by name), so
//! that no count is ever silently left out.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::results::summary::{lost_per_failover, verdict_name};
use crate::results::{Results, StrategyRun, TrialResult};

/// The CSV's first columns, in order; any other plain field of a trial's results follows
/// them, in the order of their names (see [`csv`]).
pub const CSV_COLUMNS: [&str; 44] = [
    "strategy",
    "buyers",
    "hold_us",
    "trial",
    "seed",
    "verdict",
    "initial_stock",
    "final_stock",
    "attempts",
    "sold",
    "sold_out",
    "oversold",
    "duplicate_tickets",
    "lost_updates",
    "torn_reads",
    "unreadable",
    "phantom_stock",
    "indeterminate",
    "fenced",
    "gave_up",
    "failed",
    "retries",
    "recovered",
    "undersold",
    "order_violations",
    "produced",
    "dropped",
    "unconsumed",
    "abandoned",
    "lost_acknowledged",
    "crashed",
    "clock_uncertainty_ns",
    "duplicate_sale",
    "wall_ms",
    "purchases_per_s",
    "p50_us",
    "p90_us",
    "p99_us",
    "max_us",
    "spawn_ms",
    "faults",
    "dir",
    "history_kept",
    "lag_ms",
];

/// Fields of a trial in results.json that are no column: the clock reading of the start
/// gate (meaningless outside the trial), the latency (its four figures are columns), and
/// the listed anomalies (at most a few per trial; their counts are columns).
const NOT_COLUMNS: [&str; 3] = ["gate_ns", "latency", "anomalies"];

/// The summary table, one row per strategy (and point of a sweep), as GitHub-flavoured
/// Markdown: the columns of the table `sim run` prints.
pub fn markdown(results: &Results) -> String {
    let sweep = results.runs.iter().any(|r| r.point.is_some());
    let lags = results.runs.iter().any(|r| r.point.is_some_and(|p| p.lag_ms.is_some()));
    let mut header = vec!["strategy"];
    if sweep {
        header.extend(["buyers", "hold µs"]);
    }
    if lags {
        header.extend(["lag ms", "lost/failover"]);
    }
    header.extend([
        "trials",
        "anomalous",
        "max oversold",
        "purchases/s",
        "p50 µs",
        "p99 µs",
        "verdicts",
    ]);
    let mut s = String::new();
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let align: Vec<&str> = header
        .iter()
        .map(|h| {
            if matches!(*h, "strategy" | "verdicts") {
                ":---"
            } else {
                "---:"
            }
        })
        .collect();
    let _ = writeln!(s, "| {} |", align.join(" | "));
    for run in &results.runs {
        let m = &run.summary;
        let mut cells = vec![run.strategy.name().to_string()];
        if sweep {
            let (buyers, hold) = point(results, run);
            cells.extend([buyers.to_string(), hold.to_string()]);
        }
        if lags {
            let lag = lag(results, run).map_or(String::new(), |l| l.to_string());
            cells.extend([lag, format!("{:.1}", lost_per_failover(&run.trials))]);
        }
        let verdicts: Vec<String> = m
            .verdicts
            .iter()
            .map(|(v, n)| format!("{n} {}", verdict_name(*v)))
            .collect();
        cells.extend([
            m.trials.to_string(),
            m.anomalous.to_string(),
            m.max_oversold.to_string(),
            format!("{:.0}", m.mean_purchases_per_s),
            format!("{:.1}", m.p50_us),
            format!("{:.1}", m.p99_us),
            verdicts.join(", "),
        ]);
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s
}

/// The buyers and hold of a run: its point of the sweep, or the scenario's.
fn point(results: &Results, run: &StrategyRun) -> (u32, u64) {
    match run.point {
        Some(p) => (p.buyers, p.hold_us),
        None => (results.scenario.buyers.count, results.scenario.buyers.hold_us),
    }
}

/// The replication lag before a run's failover: its point of the sweep, or the scenario's;
/// none without a failover.
fn lag(results: &Results, run: &StrategyRun) -> Option<u64> {
    let faults = &results.scenario.faults;
    run.point
        .and_then(|p| p.lag_ms)
        .or(faults.failover.then_some(faults.lag_ms))
}

/// One row per trial of every strategy (and point), with a header: [`CSV_COLUMNS`], then any
/// count that results.json holds and they do not, by name. Numbers as results.json has them;
/// an unknown final stock is an empty cell.
pub fn csv(results: &Results) -> String {
    let trials: Vec<(&StrategyRun, &TrialResult, serde_json::Map<String, Value>)> = results
        .runs
        .iter()
        .flat_map(|run| run.trials.iter().map(move |t| (run, t)))
        .map(|(run, t)| (run, t, fields(t)))
        .collect();
    let mut extra: Vec<String> = trials
        .iter()
        .flat_map(|(_, _, f)| f.iter())
        .filter(|(k, v)| !CSV_COLUMNS.contains(&k.as_str()) && !NOT_COLUMNS.contains(&k.as_str()) && scalar(v))
        .map(|(k, _)| k.clone())
        .collect();
    extra.sort();
    extra.dedup();

    let mut s = String::new();
    let header: Vec<String> = CSV_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(extra.iter().cloned())
        .collect();
    let _ = writeln!(s, "{}", header.iter().map(|h| quote(h)).collect::<Vec<_>>().join(","));
    for (run, t, f) in &trials {
        let (buyers, hold) = point(results, run);
        let latency = &t.speed.latency;
        let mut row: Vec<String> = Vec::with_capacity(header.len());
        for column in CSV_COLUMNS {
            row.push(match column {
                "strategy" => run.strategy.name().to_string(),
                "buyers" => buyers.to_string(),
                "hold_us" => hold.to_string(),
                "verdict" => verdict_name(t.check.verdict),
                "final_stock" => t.check.final_stock.map_or(String::new(), |v| v.to_string()),
                "p50_us" => latency.p50_us.to_string(),
                "p90_us" => latency.p90_us.to_string(),
                "p99_us" => latency.p99_us.to_string(),
                "max_us" => latency.max_us.to_string(),
                "faults" => t.faults.len().to_string(),
                "lag_ms" => lag(results, run).map_or(String::new(), |l| l.to_string()),
                other => cell(f.get(other)),
            });
        }
        row.extend(extra.iter().map(|k| cell(f.get(k))));
        let _ = writeln!(s, "{}", row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
    }
    s
}

/// A trial's fields as results.json names them (the checker's counts flattened in).
fn fields(t: &TrialResult) -> serde_json::Map<String, Value> {
    match serde_json::to_value(t) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

fn scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A CSV field, quoted as RFC 4180 asks when it holds a comma, a quote or a line break.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Writes an export to `path`; `what` names the flag in an error.
pub fn write(path: &Path, text: &str, what: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| {
        format!(
            "cannot write {what} {}: give a file in a folder that exists and that you can write to",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial() -> TrialResult {
        serde_json::from_value(serde_json::json!({
            "trial": 0, "seed": 42, "initial_stock": 10,
            "final_stock": null, "attempts": 30, "sold": 12, "sold_out": 18,
            "oversold": 2, "duplicate_tickets": 2, "lost_updates": 1,
            "torn_reads": 0, "indeterminate": 0, "order_violations": 0, "produced": 0,
            "dropped": 0, "unconsumed": 0, "verdict": "oversold", "wall_ms": 1.5,
            "purchases_per_s": 1000.0,
            "latency": { "p50_us": 1.0, "p90_us": 2.0, "p99_us": 3.0, "max_us": 4.0 },
            "anomalies": [], "spawn_ms": 0.5, "dir": "trials/none/000", "gate_ns": 7,
            "history_kept": true
        }))
        .expect("a trial as results.json holds it")
    }

    #[test]
    fn every_field_of_a_trial_is_a_column_or_deliberately_not() {
        // A count added to the checker would still get a column, after these; this test asks
        // that it be named here and in docs/reference/results.md instead.
        let t = trial();
        for key in fields(&t).keys() {
            assert!(
                CSV_COLUMNS.contains(&key.as_str()) || NOT_COLUMNS.contains(&key.as_str()),
                "results.json has `{key}`, which the CSV neither lists nor leaves out on purpose"
            );
        }
    }

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(quote("none"), "none");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell(None), "");
        assert_eq!(cell(Some(&Value::Null)), "");
        assert_eq!(cell(Some(&serde_json::json!(1.5))), "1.5");
    }
}
