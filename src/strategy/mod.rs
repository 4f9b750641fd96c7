//! Strategies: how a buyer's read-modify-write of the stock is protected.
//!
//! Each strategy is one file behind the [`Strategy`] trait; adding one is adding a file and a
//! line in [`StrategyName`] and [`open`].

mod file_lock;
mod none;
pub mod queue;
pub mod semaphore;

use std::io;

use serde::{Deserialize, Serialize};

use crate::clock::ticks;
use crate::history::{Outcome, Record};
use crate::scenario::LockScope;
use crate::store::{Reading, Stock};
use crate::worker::{Hold, TrialPlan};

pub use none::NoLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyName {
    None,
    FileLock,
    Semaphore,
    Queue,
}

impl StrategyName {
    pub const ALL: [StrategyName; 4] = [
        StrategyName::None,
        StrategyName::FileLock,
        StrategyName::Semaphore,
        StrategyName::Queue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StrategyName::None => "none",
            StrategyName::FileLock => "file-lock",
            StrategyName::Semaphore => "semaphore",
            StrategyName::Queue => "queue",
        }
    }

    pub fn parse(name: &str) -> Option<StrategyName> {
        StrategyName::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The names, quoted, for error messages.
    pub fn list() -> String {
        StrategyName::ALL
            .iter()
            .map(|s| format!("\"{}\"", s.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for StrategyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A buyer's side of a strategy.
pub trait Strategy {
    /// Makes one purchase attempt, filling in `op` as it goes: read the stock, hold, write
    /// stock − 1 if it was above zero.
    fn purchase(&mut self, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()>;
}

/// A mutual exclusion that a lock-style strategy holds around (part of) the sale.
pub trait Lock {
    fn acquire(&mut self) -> io::Result<()>;
    fn release(&mut self) -> io::Result<()>;
}

/// The strategies that guard the buyer's own read-modify-write with a [`Lock`].
pub struct Locked<L: Lock> {
    lock: L,
    scope: LockScope,
}

impl<L: Lock> Strategy for Locked<L> {
    fn purchase(&mut self, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()> {
        let whole = self.scope == LockScope::ReadModifyWrite;
        if whole {
            self.lock.acquire()?;
        }
        sell(stock, op, hold, &mut self.lock, !whole)?;
        if whole {
            self.lock.release()?;
        }
        op.end_tick = ticks();
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
    op.read_tick = ticks();
    let value = match reading {
        Reading::Value(v) => v,
        Reading::Unreadable => {
            op.outcome = Outcome::Unreadable as u8;
            return Ok(());
        }
    };
    op.value = value;
    hold.pause();
    if value <= 0 {
        op.outcome = Outcome::SoldOut as u8;
        return Ok(());
    }
    if lock_write {
        lock.acquire()?;
    }
    // Recorded before the write, so that a buyer killed inside it still says what it may
    // have written.
    op.written = value - 1;
    stock.write(value - 1)?;
    op.write_tick = ticks();
    if lock_write {
        lock.release()?;
    }
    op.outcome = Outcome::Sold as u8;
    Ok(())
}

/// Opens a buyer's side of the plan's strategy.
pub fn open(plan: &TrialPlan, buyer: u32) -> io::Result<Box<dyn Strategy>> {
    let scope = plan.scope;
    Ok(match plan.strategy {
        StrategyName::None => Box::new(Locked { lock: NoLock, scope }),
        StrategyName::FileLock => Box::new(Locked {
            lock: file_lock::FileLock::open(&plan.stock_path)?,
            scope,
        }),
        StrategyName::Semaphore => Box::new(Locked {
            lock: semaphore::SemaphoreLock::open(plan.semaphore_name()?)?,
            scope,
        }),
        StrategyName::Queue => Box::new(queue::Client::connect(plan, buyer)?),
    })
}
