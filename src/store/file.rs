//! The stock as a text file holding one decimal integer, like the lesson's `data.txt`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Reading, Stock, Store, parse};
use crate::history::Role;
use crate::plan::{Fixture, TrialPlan};
use crate::scenario::WriteMode;
use crate::sys::fd;

/// The `file` store.
pub struct FileStore;

impl Store for FileStore {
    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        FileStock::create(&plan.stock_path, plan.initial_stock)?;
        Ok(Box::new(()))
    }

    fn open(&self, plan: &TrialPlan, _role: Role, _index: u32) -> io::Result<Box<dyn Stock>> {
        Ok(Box::new(FileStock::open(&plan.stock_path, plan.write)?))
    }
}

/// A worker's view of the stock file: its own open file description.
pub struct FileStock {
    file: File,
    mode: WriteMode,
    /// The length of the text last read, so that an in-place write trims only when the number
    /// got shorter, as a careful C loop would.
    last_len: usize,
}

impl FileStock {
    /// Opens the stock file at `path`, to write it as `mode` says.
    pub fn open(path: &Path, mode: WriteMode) -> io::Result<FileStock> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(FileStock {
            file,
            mode,
            last_len: 0,
        })
    }

    /// Writes `text` at the start of the file: one `pwrite`, as a C loop makes it, with std's
    /// loop only for what is rare (a short write, a signal).
    fn write_at_start(&self, text: &[u8]) -> io::Result<()> {
        match fd::write_at(&self.file, text, 0) {
            Ok(n) if n == text.len() => return Ok(()),
            Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
            _ => {}
        }
        self.file.write_all_at(text, 0)
    }

    /// Writes the initial stock, replacing whatever the file held.
    pub fn create(path: &Path, value: i64) -> io::Result<()> {
        std::fs::write(path, value.to_string())
    }
}

impl Stock for FileStock {
    fn read(&mut self) -> io::Result<Reading> {
        let mut buf = [0u8; 24];
        let n = fd::read_at(&self.file, &mut buf, 0)?;
        self.last_len = n;
        Ok(if n == buf.len() {
            Reading::Unreadable
        } else {
            parse(&buf[..n])
        })
    }

    fn write(&mut self, value: i64) -> io::Result<()> {
        let mut buf = [0u8; 20];
        let text = decimal(value, &mut buf);
        match self.mode {
            // As open(path, "w") then write: between the two, a reader finds the file empty.
            WriteMode::Truncate => {
                self.file.set_len(0)?;
                self.write_at_start(text)?;
            }
            // Between the two, a reader can find the new digits over the tail of the old.
            WriteMode::InPlace => {
                self.write_at_start(text)?;
                if text.len() < self.last_len {
                    self.file.set_len(text.len() as u64)?;
                }
            }
        }
        Ok(())
    }
}

/// The decimal digits of a stock value (never negative: a buyer writes only v − 1 of a v > 0),
/// without the allocation of `to_string` on the hot path.
fn decimal(value: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = value.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_write_modes_leave_just_the_number() {
        for mode in [WriteMode::Truncate, WriteMode::InPlace] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("stock.txt");
            FileStock::create(&path, 10).unwrap();
            let mut stock = FileStock::open(&path, mode).unwrap();
            assert_eq!(stock.read().unwrap(), Reading::Value(10));
            stock.write(9).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "9", "{mode:?}");
            assert_eq!(stock.read().unwrap(), Reading::Value(9));
        }
    }
}
