//! `file-lock`: an exclusive advisory lock (flock, through fs2) on the stock file.
//!
//! A flock belongs to the open file description, so each buyer opens the file itself; the
//! kernel drops the lock when its holder dies, which is why a killed holder cannot wedge it.

use std::fs::File;
use std::io;

use super::{Lock, Locked, Purchase, Strategy};
use crate::plan::TrialPlan;

/// The `file-lock` strategy.
pub struct FileLock;

impl Strategy for FileLock {
    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        let flock = Flock {
            file: File::open(&plan.stock_path)?,
        };
        Ok(Box::new(Locked::new(flock, plan)))
    }
}

/// A buyer's own open file description of the stock file, to flock.
struct Flock {
    file: File,
}

impl Lock for Flock {
    fn acquire(&mut self) -> io::Result<()> {
        // Named through fs2: std's File::lock has the same name and would win.
        fs2::FileExt::lock_exclusive(&self.file)
    }

    fn release(&mut self) -> io::Result<()> {
        fs2::FileExt::unlock(&self.file)
    }
}
