//! `sim check --history`: a history recorded by any program, as operations in JSON lines,
//! judged by the same checker as sim's own trials, and written as a results.json and a
//! report of one trial.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::checker::{self, Check, Facts, Verdict};
use crate::history::speed::Speed;
use crate::history::{History, Kind, Role};
use crate::results::{self, Machine, Results, StrategyRun, Summary, TrialResult};
use crate::scenario::StrategyName;
use crate::scenario::{self, Limits};

/// The folder of the one trial in the output folder.
const TRIAL_DIR: &str = "trials/history/000";

/// A history judged.
pub struct Judged {
    /// What the checker concluded.
    pub check: Check,
    /// How fast it went.
    pub speed: Speed,
    /// The history, as read.
    pub history: History,
}

/// Bad input that is no line of the file: a stock count that cannot be.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadCount(String);

/// Reads and judges `file`, from a stock of `initial` that ended at `final_stock`, its
/// processes' stamps of one moment at most `clock_uncertainty_ns` apart.
pub fn check(file: &Path, initial: i64, final_stock: i64, clock_uncertainty_ns: u64) -> Result<Judged> {
    if initial < 0 {
        return Err(BadCount(format!(
            "--initial is {initial}, a negative count of tickets: give the stock the program started with"
        ))
        .into());
    }
    let history = crate::history::import::read(file)?;
    let facts = Facts {
        clock_uncertainty_ns,
        ..Facts::ended(initial, final_stock)
    };
    Ok(Judged {
        check: checker::check(&history, &facts),
        speed: Speed::of(&history, None),
        history,
    })
}

/// The verdict, the counts and the anomalies, as the terminal shows them.
pub fn summary(j: &Judged) -> String {
    let c = &j.check;
    let mut s = String::new();
    let verdict = serde_json::to_value(c.verdict)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let _ = writeln!(s, "verdict: {verdict}");
    let _ = writeln!(
        s,
        "clock uncertainty: {} ns (two operations are ordered in time only when one ended more than this before the other began)",
        c.clock_uncertainty_ns
    );
    let _ = writeln!(
        s,
        "attempts {}: sold {}, sold out {}, unreadable {}, indeterminate {}",
        c.attempts, c.sold, c.sold_out, c.unreadable, c.indeterminate
    );
    let _ = writeln!(
        s,
        "oversold {}, duplicate tickets {}, lost updates {}, torn reads {}, phantom stock {}, order violations {}",
        c.oversold, c.duplicate_tickets, c.lost_updates, c.torn_reads, c.phantom_stock, c.order_violations
    );
    if c.lost_acknowledged > 0 {
        let _ = writeln!(s, "lost acknowledged sales {}", c.lost_acknowledged);
    }
    if !c.anomalies.is_empty() {
        let more = if c.anomalies.len() >= checker::MAX_ANOMALIES {
            " (the first ones; the counts above cover all)"
        } else {
            ""
        };
        let _ = writeln!(s, "anomalies{more}:");
        for a in &c.anomalies {
            let kind = serde_json::to_value(a.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let _ = writeln!(s, "  {kind}: {}", a.text);
        }
    }
    s
}

/// Whether the history is free of anomalies.
pub fn is_safe(j: &Judged) -> bool {
    j.check.verdict == Verdict::Safe
}

/// Writes the history, results.json (one trial) and nothing else into `out`; the report is
/// the caller's next step. `file` is copied in, so that the report can be drawn again.
pub fn write(out: &Path, file: &Path, j: Judged, initial: i64) -> Result<Results> {
    if out.join(results::FILE_NAME).is_file() && !out.join(TRIAL_DIR).join(results::JSONL_NAME).is_file() {
        bail!(
            "{} holds the results of a sim run: give --out a folder of its own",
            out.display()
        );
    }
    let trial_dir = out.join(TRIAL_DIR);
    std::fs::create_dir_all(&trial_dir).with_context(|| format!("creating {}", trial_dir.display()))?;
    let copy = trial_dir.join(results::JSONL_NAME);
    // The history checked again from its own copy stays where it is (a copy onto itself
    // would empty it).
    let same = matches!((file.canonicalize(), copy.canonicalize()), (Ok(a), Ok(b)) if a == b);
    if !same {
        // Made anew: a link planted where the copy goes is removed, never written through.
        std::fs::File::open(file)
            .and_then(|mut from| std::io::copy(&mut from, &mut crate::sys::file::create(&copy)?))
            .with_context(|| format!("copying {} to {}", file.display(), copy.display()))?;
    }

    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut scenario = scenario::parse(
        Path::new("history.toml"),
        &format!("name = \"history\"\ntrials = 1\nstrategy = \"none\"\n[stock]\ninitial = {initial}\n"),
        Limits::default(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    scenario.name = name.clone();
    scenario.description = format!(
        "{}, recorded by another program and judged by sim's checker (the strategy it names, \"none\", stands for one sim did not choose)",
        file.display()
    );
    let buyers = j.history.workers.iter().filter(|w| w.role == Role::Buyer).count();
    let purchases = j.history.ops.iter().filter(|op| op.kind == Kind::Purchase).count();
    scenario.buyers.count = buyers as u32;
    scenario.buyers.attempts = purchases.div_ceil(buyers.max(1)) as u32;
    scenario.buyers.hold_us = 0;
    let trial = TrialResult {
        trial: 0,
        seed: 0,
        initial_stock: initial,
        check: j.check,
        speed: j.speed,
        final_stock_text: None,
        ended_ns: None,
        spawn_ms: 0.0,
        dir: TRIAL_DIR.into(),
        gate_ns: 0,
        faults: Vec::new(),
        failover_ms: None,
        history_kept: true,
    };
    let summary = Summary::of(std::slice::from_ref(&trial));
    let results = Results {
        scenario,
        runs: vec![StrategyRun {
            strategy: StrategyName::None,
            point: None,
            trials: vec![trial],
            summary,
        }],
        sim_version: env!("CARGO_PKG_VERSION").into(),
        created: results::utc_now(),
        machine: Machine::this(),
        interrupted: false,
        stopped: None,
        violations: Vec::new(),
    };
    results.write(out)?;
    Ok(results)
}
