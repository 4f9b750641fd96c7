//! `file-lock`: an exclusive advisory lock (flock, through fs2) on the stock file.
//!
//! A flock belongs to the open file description, so each buyer opens the file itself; the
//! kernel drops the lock when its holder dies, which is why a killed holder cannot wedge it.

use std::fs::File;
use std::io;
use std::path::Path;

use super::Lock;

pub struct FileLock {
    file: File,
}

impl FileLock {
    pub fn open(stock_path: &Path) -> io::Result<FileLock> {
        Ok(FileLock {
            file: File::open(stock_path)?,
        })
    }
}

impl Lock for FileLock {
    fn acquire(&mut self) -> io::Result<()> {
        // Named through fs2: std's File::lock has the same name and would win.
        fs2::FileExt::lock_exclusive(&self.file)
    }

    fn release(&mut self) -> io::Result<()> {
        fs2::FileExt::unlock(&self.file)
    }
}
