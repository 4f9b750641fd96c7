//! The `shm` store: the stock is a 64-bit count in a shared memory mapping, read and written
//! with plain loads and stores, as `multiprocessing.Value` keeps it. Nothing makes a read
//! and the write after it one step, but the mapping also offers the steps that are: a
//! compare-and-set, a decrement-if-positive, and a write fenced by a lease's token.
//!
//! The mapping is a file of the trial's folder, `stock.shm`: it needs no name in /dev/shm,
//! so a killed run leaves nothing behind, and its final count is the evidence the checker
//! reads. The stock file is written too, with the initial count, for the strategies that
//! lock it, and with the final count at the end.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use super::{FileStock, Reading, Stock, Store};
use crate::checker::FinalStock;
use crate::history::Role;
use crate::plan::{Fixture, TrialPlan};
use crate::sys::shm::{Mapping, yield_cpu};

/// The mapping's file in the trial's folder.
const FILE: &str = "stock.shm";

/// The count, a signed 64-bit word.
const COUNT: usize = 0;
/// The newest fencing token a fenced write was accepted with.
const TOKEN: usize = 8;
/// A word that makes a fenced write's check of the token and its store one step.
const FENCE: usize = 16;
/// The mapping's length.
const LEN: usize = 64;

/// The `shm` store.
pub struct ShmStore;

impl Store for ShmStore {
    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        FileStock::create(&plan.stock_path, plan.initial_stock)?;
        let path = file(plan);
        std::fs::write(&path, [0u8; LEN])?;
        Mapping::open(&path)?
            .atomic_i64(COUNT)
            .store(plan.initial_stock, SeqCst);
        Ok(Box::new(()))
    }

    fn open(&self, plan: &TrialPlan, _role: Role, _index: u32) -> io::Result<Box<dyn Stock>> {
        Ok(Box::new(SharedCount {
            map: Mapping::open(&file(plan))?,
        }))
    }

    fn final_stock(&self, plan: &TrialPlan) -> FinalStock {
        match Mapping::open(&file(plan)) {
            Ok(map) if map.len() == LEN => super::kept_in_file(plan, map.atomic_i64(COUNT).load(SeqCst)),
            Ok(map) => FinalStock::Unreadable(format!("({} is {} bytes, not {LEN})", FILE, map.len())),
            Err(e) => FinalStock::Unreadable(format!("(cannot map {FILE}: {e})")),
        }
    }
}

fn file(plan: &TrialPlan) -> PathBuf {
    Path::new(&plan.trial_dir).join(FILE)
}

/// A worker's mapping of the count.
struct SharedCount {
    map: Mapping,
}

impl Stock for SharedCount {
    fn read(&mut self) -> io::Result<Reading> {
        // Relaxed: a plain load, as Value's unlocked `.value` is.
        Ok(Reading::Value(self.map.atomic_i64(COUNT).load(Relaxed)))
    }

    fn write(&mut self, value: i64) -> io::Result<()> {
        self.map.atomic_i64(COUNT).store(value, Relaxed);
        Ok(())
    }

    fn compare_and_set(&mut self, expected: i64, new: i64) -> io::Result<bool> {
        Ok(self
            .map
            .atomic_i64(COUNT)
            .compare_exchange(expected, new, SeqCst, Relaxed)
            .is_ok())
    }

    fn decrement_if_positive(&mut self) -> io::Result<i64> {
        let count = self.map.atomic_i64(COUNT);
        let mut seen = count.load(Relaxed);
        while seen > 0 {
            match count.compare_exchange_weak(seen, seen - 1, SeqCst, Relaxed) {
                Ok(_) => return Ok(seen),
                Err(now) => seen = now,
            }
        }
        Ok(seen)
    }

    fn fenced_write(&mut self, value: i64, token: u64) -> io::Result<bool> {
        let fence = self.map.atomic_u32(FENCE);
        while fence.compare_exchange_weak(0, 1, Acquire, Relaxed).is_err() {
            yield_cpu();
        }
        let newest = self.map.atomic_u64(TOKEN);
        let accepted = token >= newest.load(Relaxed);
        if accepted {
            newest.store(token, Relaxed);
            self.map.atomic_i64(COUNT).store(value, Relaxed);
        }
        fence.store(0, Release);
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(dir: &Path) -> SharedCount {
        let path = dir.join(FILE);
        std::fs::write(&path, [0u8; LEN]).unwrap();
        SharedCount {
            map: Mapping::open(&path).unwrap(),
        }
    }

    #[test]
    fn decrement_if_positive_stops_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = count(dir.path());
        c.write(2).unwrap();
        assert_eq!(c.decrement_if_positive().unwrap(), 2);
        assert_eq!(c.decrement_if_positive().unwrap(), 1);
        assert_eq!(c.decrement_if_positive().unwrap(), 0);
        assert_eq!(c.read().unwrap(), Reading::Value(0));
    }

    #[test]
    fn compare_and_set_needs_the_value_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = count(dir.path());
        c.write(5).unwrap();
        assert!(!c.compare_and_set(6, 4).unwrap());
        assert!(c.compare_and_set(5, 4).unwrap());
        assert_eq!(c.read().unwrap(), Reading::Value(4));
    }

    #[test]
    fn a_fenced_write_with_an_older_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = count(dir.path());
        c.write(10).unwrap();
        assert!(c.fenced_write(9, 2).unwrap());
        assert!(!c.fenced_write(9, 1).unwrap(), "token 1 is older than 2");
        assert!(c.fenced_write(8, 3).unwrap());
        assert_eq!(c.read().unwrap(), Reading::Value(8));
    }
}
