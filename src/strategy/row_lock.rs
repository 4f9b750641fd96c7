//! `row-lock`: the sale in a transaction that reads the stock's row with `SELECT … FOR
//! UPDATE`, which locks it until the commit: a second buyer's read waits for the first
//! buyer's commit, and then reads what it wrote. If the holder dies, the server sees its
//! connection close, rolls its transaction back and lets the next one in.

use std::io;

use super::transaction::{Guard, InTransaction};
use super::{Purchase, Strategy};
use crate::plan::TrialPlan;
use crate::scenario::Isolation;

/// The `row-lock` strategy.
pub struct RowLock;

impl Strategy for RowLock {
    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        Ok(Box::new(InTransaction {
            isolation: Isolation::ReadCommitted,
            guard: Guard::RowLock,
            retries: plan.retries,
        }))
    }
}
