//! Room on the disk: what a run will write, worked out before its first trial, against what
//! the output folder's filesystem has free. A run that cannot fit is refused before it
//! starts, rather than stopping halfway with a full disk (and a disk that fills anyway, by
//! another program's doing, is met by the history's allocation up front: see
//! `history::create_file`).

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::KeepHistories;
use super::trial::footprint;
use crate::scenario::Scenario;

/// A trial's files besides its history: the plan, the stock, the log, a board or a pool's
/// files; a few blocks, and a plan line and a board slot per worker.
const TRIAL_FILES: u64 = 32 << 10;
const PER_WORKER: u64 = 256;
/// results.json per trial, and the report (whose size does not grow with the trials).
const RESULTS_PER_TRIAL: u64 = 4 << 10;
const REPORT: u64 = 4 << 20;

/// What a run will put on disk, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The history files that are on disk at once at the most.
    pub histories: u64,
    /// Everything else: trial folders, results.json, the report.
    pub rest: u64,
}

/// What `scenario` will write with `keep`: every history with `all`; with fewer kept, the
/// largest single history, as each is checked and removed before the next trial starts
/// (counted as if every trial were safe: an anomalous history stays, and if the disk then
/// fills, the allocation of the next history says so).
pub fn need(scenario: &Scenario, keep: KeepHistories) -> Need {
    let trials = scenario.trials as u64;
    // A store's throwaway server keeps its data in the output folder too.
    let server = crate::store::registry(scenario.stock.store).disk_need(scenario);
    let (mut all, mut largest, mut rest) = (0u64, 0u64, REPORT + server);
    for &strategy in &scenario.strategies {
        for &point in &scenario.points() {
            let at = match scenario.sweep {
                Some(_) => scenario.at(point),
                None => scenario.clone(),
            };
            let (mut history, workers) = footprint(&at, strategy);
            if at.buyers.duration_ms.is_some() {
                // A soak's buyers write segments, two each at once at the most (one being
                // written, one closed and not yet checked); with every history kept, more.
                let segment = crate::history::file_len([crate::history::SEGMENT_OPS]);
                history += 2 * at.buyers.count as u64 * segment;
            }
            all = all.saturating_add(history.saturating_mul(trials));
            largest = largest.max(history);
            rest = rest.saturating_add(trials * (TRIAL_FILES + PER_WORKER * workers as u64 + RESULTS_PER_TRIAL));
        }
    }
    Need {
        histories: match keep {
            KeepHistories::All => all,
            KeepHistories::Anomalous | KeepHistories::None => largest,
        },
        rest,
    }
}

/// Refuses the run if the filesystem of `out` has less room free than it needs.
pub fn check(scenario: &Scenario, out: &Path, keep: KeepHistories) -> Result<()> {
    let need = need(scenario, keep);
    let free = fs2::available_space(out).with_context(|| format!("finding the free space of {}", out.display()))?;
    if need.histories.saturating_add(need.rest) <= free {
        return Ok(());
    }
    let hint = match keep {
        KeepHistories::All => "lower attempts or trials, or use --keep-histories anomalous",
        _ => "lower attempts or buyers, or give an --out on a larger disk",
    };
    bail!(
        "this run needs {} for its histories (and {} for the rest); {} has {} free; {hint}",
        human(need.histories),
        human(need.rest),
        out.display(),
        human(free)
    )
}

/// Bytes as a person reads them: "1.9 GB", "400 MB", "12 kB".
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{:.0} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.0} MB", b / 1e6),
        _ => format!("{:.1} GB", b / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Limits, parse};

    fn scenario(text: &str) -> Scenario {
        parse(Path::new("t.toml"), text, Limits::default()).unwrap()
    }

    #[test]
    fn histories_count_every_record_of_every_trial() {
        // 10 buyers × 1000 attempts of 64 bytes, a page of header each, and the file's page.
        let s = scenario("trials = 3\nstrategy = \"file-lock\"\n[buyers]\ncount = 10\nattempts = 1000\n");
        let one = 4096 + 10 * (64_000_u64 + 64).div_ceil(4096) * 4096;
        assert_eq!(need(&s, KeepHistories::All).histories, 3 * one);
        let two = scenario("trials = 3\nstrategy = [\"file-lock\", \"none\"]\n[buyers]\ncount = 10\nattempts = 1000\n");
        assert_eq!(need(&two, KeepHistories::All).histories, 6 * one);
        assert_eq!(need(&two, KeepHistories::Anomalous).histories, one);
    }

    #[test]
    fn a_throwaway_postgres_servers_data_folder_is_counted() {
        let text = "trials = 1\nstrategy = \"atomic\"\n[stock]\nstore = \"postgres\"\n";
        let own = format!("{text}url = \"postgres://u@127.0.0.1:1/db\"\n");
        let (throwaway, theirs) = (
            need(&scenario(text), KeepHistories::All),
            need(&scenario(&own), KeepHistories::All),
        );
        // initdb alone writes 39 MiB here (PostgreSQL 15).
        assert!(
            throwaway.rest >= theirs.rest + (39 << 20),
            "{throwaway:?} against {theirs:?}"
        );
    }

    #[test]
    fn sizes_read_as_a_person_says_them() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(400_000_000), "400 MB");
        assert_eq!(human(1_900_000_000), "1.9 GB");
    }
}
