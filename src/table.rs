//! The short table a finished run prints, one line per strategy (and point of a sweep).

use std::fmt::Write;

use crate::results::Results;

/// The run's summary table, one line per strategy (and sweep point), for the terminal.
pub fn render(results: &Results) -> String {
    let mut s = String::new();
    let sweep = results.scenario.sweep.is_some();
    if sweep {
        let _ = write!(s, "{:>6} {:>8} ", "buyers", "hold µs");
    }
    let _ = writeln!(
        s,
        "{:<14} {:>6} {:>9} {:>12} {:>12} {:>10} {:>10}  verdicts",
        "strategy", "trials", "anomalous", "max oversold", "purchases/s", "p50 µs", "p99 µs"
    );
    for run in &results.runs {
        if let Some(p) = run.point {
            let _ = write!(s, "{:>6} {:>8} ", p.buyers, p.hold_us);
        }
        let m = &run.summary;
        let verdicts: Vec<String> = m
            .verdicts
            .iter()
            .map(|(&v, n)| format!("{n} {}", <&str>::from(v)))
            .collect();
        let _ = writeln!(
            s,
            "{:<14} {:>6} {:>9} {:>12} {:>12.0} {:>10.1} {:>10.1}  {}",
            run.strategy.name(),
            m.trials,
            m.anomalous,
            m.max_oversold,
            m.mean_purchases_per_s,
            m.p50_us,
            m.p99_us,
            verdicts.join(", ")
        );
    }
    s
}
