//! `robust-mutex`: a process-shared robust pthread mutex in a shared mapping.
//!
//! When its holder dies, the mutex is not lost, as a semaphore's permit is: the next process
//! to lock it gets `EOWNERDEAD`, makes it consistent, and goes on. That recovery is marked on
//! the purchase that made it, and the report shows it.

use std::io;
use std::path::PathBuf;

use super::{Lock, Locked, Purchase, Strategy};
use crate::plan::{Fixture, TrialPlan};
use crate::sys::shm::{Mapping, Taken};

/// The mutex's file in the trial's folder.
const FILE: &str = "robust.mutex";

/// The `robust-mutex` strategy.
pub struct RobustMutex;

impl Strategy for RobustMutex {
    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        let path = plan.trial_dir.join(FILE);
        std::fs::write(&path, [0u8; 64])?;
        Mapping::open(&path)?.init_robust_mutex(0)?;
        Ok(Box::new(MutexFile(path)))
    }

    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        let lock = SharedMutex {
            map: Mapping::open(&plan.trial_dir.join(FILE))?,
            took_over: false,
        };
        Ok(Box::new(Locked::new(lock, plan)))
    }
}

/// The mutex's file, removed after the trial: it holds no evidence.
struct MutexFile(PathBuf);

impl Fixture for MutexFile {}

impl Drop for MutexFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A buyer's mapping of the mutex.
struct SharedMutex {
    map: Mapping,
    took_over: bool,
}

impl Lock for SharedMutex {
    fn acquire(&mut self) -> io::Result<()> {
        self.took_over = self.map.robust_mutex(0).lock()? == Taken::Recovered;
        Ok(())
    }

    fn release(&mut self) -> io::Result<()> {
        self.map.robust_mutex(0).unlock()
    }

    fn took_over(&self) -> bool {
        self.took_over
    }
}
