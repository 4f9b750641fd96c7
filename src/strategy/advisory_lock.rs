//! `advisory-lock`: the sale in a transaction that first takes a lock of the application's
//! own (`pg_advisory_xact_lock`), held until the commit and given back by the server when
//! its holder's connection closes. The read and the write are plain statements: the lock,
//! not the row, serializes the buyers.

use std::io;

use super::transaction::{Guard, InTransaction};
use super::{Purchase, Strategy};
use crate::plan::TrialPlan;
use crate::scenario::Isolation;

/// The `advisory-lock` strategy.
pub struct AdvisoryLock;

impl Strategy for AdvisoryLock {
    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        Ok(Box::new(InTransaction {
            isolation: Isolation::ReadCommitted,
            guard: Guard::Advisory,
            retries: plan.retries,
        }))
    }
}
