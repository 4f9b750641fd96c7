//! `ofd-lock`: an open-file-description byte-range lock (`fcntl` `F_OFD_SETLKW`) over the
//! whole stock file.
//!
//! Like a flock, it belongs to the open file description, so each buyer opens the file
//! itself and the kernel drops the lock when its holder dies; unlike a classic POSIX
//! (`F_SETLKW`) lock, it is not lost when the process closes any other descriptor of the file.

use std::fs::{File, OpenOptions};
use std::io;

use super::{Lock, Locked, Purchase, Strategy};
use crate::plan::TrialPlan;
use crate::sys::lock;

/// The `ofd-lock` strategy.
pub struct OfdLock;

impl Strategy for OfdLock {
    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        // A write lock needs a descriptor open for writing.
        let lock = WholeFile {
            file: OpenOptions::new().read(true).write(true).open(&plan.stock_path)?,
        };
        Ok(Box::new(Locked::new(lock, plan)))
    }
}

/// A buyer's own open file description of the stock file, to lock from its first byte to
/// past its last.
struct WholeFile {
    file: File,
}

impl Lock for WholeFile {
    fn acquire(&mut self) -> io::Result<()> {
        lock::lock_whole(&self.file)
    }

    fn release(&mut self) -> io::Result<()> {
        lock::unlock_whole(&self.file)
    }
}
