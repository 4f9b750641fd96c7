//! `transaction`: the read and the write in one transaction of the store, at `[transaction]
//! isolation`. At `read-committed` (PostgreSQL's default) the read takes no lock and the
//! write does not look back at it: two buyers read the same stock and both sell, although
//! "it was in a transaction". At `repeatable-read` and `serializable` the store aborts the
//! later of two conflicting transactions (SQLSTATE 40001); the buyer rolls back and tries
//! again, up to `[transaction] retries` times, then gives up.
//!
//! `row-lock` and `advisory-lock` run the same sale inside a transaction with a lock taken
//! first; this file holds that sale for all three.

use std::io;

use super::{Purchase, Strategy};
use crate::history::{NO_VALUE, Outcome, Record};
use crate::plan::{Hold, TrialPlan};
use crate::scenario::Isolation;
use crate::store::{Reading, Stock, is_conflict};

/// The `transaction` strategy.
pub struct Transaction;

impl Strategy for Transaction {
    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        Ok(Box::new(InTransaction {
            isolation: plan.isolation,
            guard: Guard::None,
            retries: plan.retries,
        }))
    }
}

/// What a transaction takes before it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Nothing: the isolation level alone.
    None,
    /// The stock's row, locked by the read (`SELECT … FOR UPDATE`).
    RowLock,
    /// The stock's advisory lock (`pg_advisory_xact_lock`), then a plain read.
    Advisory,
}

/// A buyer's side: the sale in one transaction, retried on a conflict.
pub struct InTransaction {
    /// The transaction's isolation level.
    pub isolation: Isolation,
    /// What it takes before it reads.
    pub guard: Guard,
    /// At most this many retries of one purchase.
    pub retries: u32,
}

impl Purchase for InTransaction {
    fn purchase(&mut self, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()> {
        let mut tries = 0;
        loop {
            match self.attempt(stock, op, hold, tries == 0) {
                Ok(()) => break,
                Err(e) if is_conflict(&e) => {
                    // Aborted by the store: nothing of it happened.
                    op.set_written(NO_VALUE);
                    transactions(stock)?.rollback()?;
                    if tries == self.retries {
                        op.set_outcome(Outcome::GaveUp);
                        break;
                    }
                    tries += 1;
                    op.count_retry();
                }
                Err(e) => return Err(e),
            }
        }
        op.stamp_end();
        Ok(())
    }
}

impl InTransaction {
    /// One try: begin, guard, read, hold, write if there is a ticket, commit.
    fn attempt(&self, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold, first: bool) -> io::Result<()> {
        let tx = transactions(stock)?;
        tx.begin(self.isolation)?;
        let reading = match self.guard {
            Guard::RowLock => tx.read_locked()?,
            Guard::Advisory => {
                tx.lock_advisory()?;
                stock.read()?
            }
            Guard::None => stock.read()?,
        };
        op.stamp_read();
        let value = match reading {
            Reading::Value(v) => v,
            Reading::Unreadable => {
                transactions(stock)?.commit()?;
                op.set_outcome(Outcome::Unreadable);
                return Ok(());
            }
        };
        op.set_value(value);
        // The first try is the sale's race window, where a planned fault lands; a retry
        // waits as long, without one.
        if first {
            hold.pause();
        } else {
            hold.wait();
        }
        if value <= 0 {
            transactions(stock)?.commit()?;
            op.set_outcome(Outcome::SoldOut);
            return Ok(());
        }
        // Recorded before the write and the commit, so that a buyer killed inside the
        // transaction still says what it may have written.
        op.set_written(value - 1);
        stock.write(value - 1)?;
        transactions(stock)?.commit()?;
        op.stamp_write();
        op.set_outcome(Outcome::Sold);
        Ok(())
    }
}

/// The store's transactions; validation refuses a store without them.
fn transactions(stock: &mut dyn Stock) -> io::Result<&mut dyn crate::store::Transactions> {
    stock
        .transactions()
        .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "this store does not offer transactions"))
}
