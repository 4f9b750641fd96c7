//! A pool of buyer processes, as `multiprocessing.Pool(n)`: `pool` processes run the buyers'
//! tasks between them, each taking the next task when it is free.
//!
//! Tasks are handed out through a counter in a shared file that each pool process maps and
//! increments atomically. In `sync` mode a task runs under an exclusive lock on the pool's
//! lock file, so that one runs at a time, as `Pool.apply` waits for each result before it
//! submits the next task; in `async` mode up to `pool` run at once, as `apply_async`.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;

use crate::scenario::PoolMode;
use crate::sys::shm::Mapping;

/// A pool process's side of the pool.
pub struct Pool {
    /// The 8-byte counter of tasks claimed, shared by every pool process.
    counter: Mapping,
    turn: Option<File>,
}

impl Pool {
    /// Creates the pool's counter and lock files in the trial's folder (the runner's part).
    pub fn create(dir: &Path) -> io::Result<()> {
        std::fs::write(dir.join("pool.tasks"), [0u8; 8])?;
        std::fs::write(dir.join("pool.lock"), [])
    }

    /// Opens the pool's files in the trial's folder, to run tasks as `mode` says.
    pub fn open(dir: &Path, mode: PoolMode) -> io::Result<Pool> {
        let counter = Mapping::open(&dir.join("pool.tasks"))?;
        let turn = match mode {
            PoolMode::Sync => Some(File::open(dir.join("pool.lock"))?),
            PoolMode::Async => None,
        };
        Ok(Pool { counter, turn })
    }

    /// Claims the next task, or `None` once `tasks` have all been claimed.
    pub fn next(&mut self, tasks: u64) -> Option<u64> {
        let task = self.counter.atomic_u64(0).fetch_add(1, Ordering::Relaxed);
        (task < tasks).then_some(task)
    }

    /// Runs `task` in its turn: alone in `sync` mode, at once in `async` mode.
    pub fn run<T>(&mut self, task: impl FnOnce() -> T) -> io::Result<T> {
        if let Some(turn) = &self.turn {
            fs2::FileExt::lock_exclusive(turn)?;
        }
        let result = task();
        if let Some(turn) = &self.turn {
            fs2::FileExt::unlock(turn)?;
        }
        Ok(result)
    }
}
