//! A soak trial's segments, checked while its buyers go on: each segment a buyer closes is
//! read, handed to the streaming checker and, unless it is to be kept, removed. So the
//! runner holds one segment at a time, and with `--keep-histories anomalous` the disk holds
//! the segments in flight and those with an anomaly.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::ProgressBar;

use super::KeepHistories;
use crate::checker::stream::Stream;
use crate::history::{self, History};

/// How often the runner looks for closed segments and updates the progress line.
pub const LOOK_EVERY: Duration = Duration::from_millis(250);

/// The segments of one soak trial, and what the checker made of them so far.
pub struct Soak {
    dir: PathBuf,
    keep: KeepHistories,
    /// When the buyers stop buying.
    pub ends: Instant,
    /// The streaming checker's state.
    pub stream: Stream,
    /// The first error met, which ends the trial once the buyers are stopped.
    pub error: Option<anyhow::Error>,
    /// Segments kept on disk (all of them, or those with an anomaly).
    pub kept: u64,
    label: String,
}

impl Soak {
    /// The soak of a trial in `trial_dir`, whose buyers stop `duration` after now (the gate).
    pub fn new(trial_dir: &Path, initial: i64, duration: Duration, keep: KeepHistories, label: String) -> Soak {
        Soak {
            dir: trial_dir.join(history::SEGMENTS_DIR),
            keep,
            ends: Instant::now() + duration,
            stream: Stream::new(initial),
            error: None,
            kept: 0,
            label,
        }
    }

    /// Makes the folder the buyers write their segments into.
    pub fn make_folder(trial_dir: &Path) -> Result<()> {
        let dir = trial_dir.join(history::SEGMENTS_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))
    }

    /// Checks the segments closed since last time; with `ended`, also those the buyers left
    /// open (ended at the deadline), sealed here first. Shows the progress on `bar`.
    pub fn look(&mut self, gate_ns: u64, ended: bool, bar: &ProgressBar) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.take(gate_ns, ended) {
            self.error = Some(e);
        }
        let left = self.ends.saturating_duration_since(Instant::now()).as_secs();
        bar.set_message(format!(
            "{}: {}:{:02} left, {} purchases",
            self.label,
            left / 60,
            left % 60,
            self.stream.attempts()
        ));
    }

    fn take(&mut self, gate_ns: u64, ended: bool) -> Result<()> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .with_context(|| format!("reading {}", self.dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| match p.extension().and_then(|e| e.to_str()) {
                Some("bin") => true,
                Some("part") => ended,
                _ => false,
            })
            .collect();
        paths.sort();
        for path in paths {
            if path.extension().is_some_and(|e| e == "part") {
                history::seal_file(&path).with_context(|| format!("sealing {}", path.display()))?;
            }
            let segment = History::read(&path, gate_ns)?;
            let anomalous = self.stream.feed(&segment);
            let keep = match self.keep {
                KeepHistories::All => true,
                KeepHistories::Anomalous => anomalous,
                KeepHistories::None => false,
            };
            if keep {
                self.kept += 1;
                // Renamed out of the way, so that it is not taken again.
                let kept = path.with_extension("kept");
                std::fs::rename(&path, &kept).with_context(|| format!("keeping {}", path.display()))?;
            } else {
                std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        Ok(())
    }
}
