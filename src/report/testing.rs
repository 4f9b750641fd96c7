//! Results to draw from, for the report's unit tests.

use crate::checker::Verdict;
use crate::results::TrialResult;

/// A trial of ten tickets with the given verdict and counts; read through serde, so that
/// fields added later with a default do not break these tests.
pub fn trial(n: u32, verdict: Verdict, oversold: u64, duplicates: u64) -> TrialResult {
    serde_json::from_value(serde_json::json!({
        "trial": n, "seed": n, "initial_stock": 10,
        "final_stock": 0, "attempts": 30, "sold": 10 + oversold, "sold_out": 0,
        "oversold": oversold, "duplicate_tickets": duplicates, "lost_updates": 0,
        "torn_reads": 0, "indeterminate": 0, "order_violations": 0, "produced": 0,
        "dropped": 0, "unconsumed": 0, "verdict": verdict, "wall_ms": 1.0,
        "purchases_per_s": 1000.0,
        "latency": { "p50_us": 1.0, "p90_us": 1.0, "p99_us": 1.0, "max_us": 1.0 },
        "anomalies": [], "spawn_ms": 0.0, "dir": format!("trials/none/{n:03}"), "gate_ns": 0
    }))
    .expect("a trial as results.json holds it")
}
