//! `none`: nothing protects the stock. Two buyers can read the same value and both sell it.

use std::io;

use super::{Lock, Locked, Purchase, Strategy};
use crate::plan::TrialPlan;

/// The `none` strategy.
pub struct Unprotected;

impl Strategy for Unprotected {
    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        Ok(Box::new(Locked::new(NoLock, plan)))
    }
}

/// A lock that never waits: what `none` holds, and what the seller holds alone.
pub struct NoLock;

impl Lock for NoLock {
    fn acquire(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn release(&mut self) -> io::Result<()> {
        Ok(())
    }
}
