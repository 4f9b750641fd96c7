//! Strategies: how a buyer's read-modify-write of the stock is protected.
//!
//! Each strategy is one file with a type behind the [`Strategy`] trait: what it makes before
//! the gate, the server processes it adds, and the buyer's side of a purchase. Adding one is
//! adding that file, its name in [`StrategyName`] (with the store operations it needs), and
//! its line in [`registry`].

mod advisory_lock;
mod atomic;
mod file_lock;
mod lease;
mod none;
mod ofd_lock;
mod optimistic;
pub mod queue;
mod robust_mutex;
mod row_lock;
pub mod semaphore;
mod service;
mod sysv_semaphore;
mod transaction;

use std::io;

use anyhow::{Result, bail};

use crate::history::{Outcome, Record, Recorder, Role};
use crate::plan::{Fixture, Hold, TrialPlan};
use crate::scenario::{LockScope, StrategyName};
use crate::store::{Reading, Stock};

pub use none::NoLock;

/// The strategy of this name.
pub fn registry(name: StrategyName) -> &'static dyn Strategy {
    match name {
        StrategyName::None => &none::Unprotected,
        StrategyName::FileLock => &file_lock::FileLock,
        StrategyName::Semaphore => &semaphore::Semaphore,
        StrategyName::Queue => &queue::Queue,
        StrategyName::OfdLock => &ofd_lock::OfdLock,
        StrategyName::SysvSemaphore => &sysv_semaphore::SysvSemaphore,
        StrategyName::RobustMutex => &robust_mutex::RobustMutex,
        StrategyName::Lease => &lease::Lease,
        StrategyName::Atomic => &atomic::Atomic,
        StrategyName::Optimistic => &optimistic::Optimistic,
        StrategyName::RowLock => &row_lock::RowLock,
        StrategyName::AdvisoryLock => &advisory_lock::AdvisoryLock,
        StrategyName::Transaction => &transaction::Transaction,
        StrategyName::Service(_) => &service::Variant,
    }
}

/// A strategy, as the runner and the workers know it.
pub trait Strategy: Sync {
    /// Makes what must exist before the gate opens (a semaphore, a board), under names taken
    /// from the plan. Dropping the fixture removes it.
    fn prepare(&self, _plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        Ok(Box::new(()))
    }

    /// The server processes it adds to each trial (a seller).
    fn servers(&self) -> &'static [Role] {
        &[]
    }

    /// Runs one of its server processes, in the process forked for it.
    fn serve(&self, _plan: &TrialPlan, role: Role, _recorder: &mut Recorder) -> Result<()> {
        bail!("this strategy has no {} process", role.name())
    }

    /// Removes what runs of sim that were killed left behind; how many it removed.
    fn sweep_stale(&self) -> usize {
        0
    }

    /// Opens buyer `buyer`'s side.
    fn buyer(&self, plan: &TrialPlan, buyer: u32) -> io::Result<Box<dyn Purchase>>;
}

/// A buyer's side of a strategy.
pub trait Purchase {
    /// Makes one purchase attempt, filling in `op` as it goes: read the stock, hold, write
    /// stock − 1 if it was above zero.
    fn purchase(&mut self, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()>;

    /// The next operation that the last purchase made besides its own, to be recorded after
    /// it: a service's purchase sent again, or its second sale to one retried purchase.
    fn next_record(&mut self) -> Option<Record> {
        None
    }
}

/// A mutual exclusion that a lock-style strategy holds around (part of) the sale.
pub trait Lock {
    /// Waits until this process holds it.
    fn acquire(&mut self) -> io::Result<()>;
    /// Lets it go.
    fn release(&mut self) -> io::Result<()>;
    /// Whether the last `acquire` took it from a holder that had died, and repaired it.
    fn took_over(&self) -> bool {
        false
    }
}

/// The buyer's side of a strategy that guards its own read-modify-write with a [`Lock`].
pub struct Locked<L: Lock> {
    lock: L,
    scope: LockScope,
}

impl<L: Lock> Locked<L> {
    /// Guards the part of the sale the plan's lock scope says with `lock`.
    pub fn new(lock: L, plan: &TrialPlan) -> Locked<L> {
        Locked {
            lock,
            scope: plan.scope,
        }
    }
}

impl<L: Lock> Purchase for Locked<L> {
    fn purchase(&mut self, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()> {
        let whole = self.scope == LockScope::ReadModifyWrite;
        if whole {
            self.lock.acquire()?;
            if self.lock.took_over() {
                op.mark_recovered();
            }
        }
        let sold = sell(stock, op, hold, &mut self.lock, !whole);
        // A sale the store left indeterminate gives the lock back too: the buyer goes on.
        if whole {
            self.lock.release()?;
        }
        sold?;
        op.stamp_end();
        Ok(())
    }
}

/// The sale itself, shared by every strategy (the seller runs it too): read the stock, hold,
/// and write stock − 1 if it was above zero. With `lock_write`, `lock` is held around the
/// write alone, after the read and the hold: the lesson's lock that comes too late.
pub fn sell(
    stock: &mut dyn Stock,
    op: &mut Record,
    hold: &mut Hold,
    lock: &mut dyn Lock,
    lock_write: bool,
) -> io::Result<()> {
    let reading = stock.read()?;
    op.stamp_read();
    let value = match reading {
        Reading::Value(v) => v,
        Reading::Unreadable => {
            op.set_outcome(Outcome::Unreadable);
            return Ok(());
        }
    };
    op.set_value(value);
    hold.pause();
    if value <= 0 {
        op.set_outcome(Outcome::SoldOut);
        return Ok(());
    }
    if lock_write {
        lock.acquire()?;
        if lock.took_over() {
            op.mark_recovered();
        }
    }
    // Recorded before the write, so that a buyer killed inside it still says what it may
    // have written.
    op.set_written(value - 1);
    let written = stock.write(value - 1);
    if written.is_ok() {
        op.stamp_write();
    }
    if lock_write {
        lock.release()?;
    }
    written?;
    op.set_outcome(Outcome::Sold);
    Ok(())
}
