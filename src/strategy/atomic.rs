//! `atomic`: the store's own one-step decrement-if-positive (a compare-exchange loop on
//! `shm`). There is no window between a read and a write to race in: the step is both.

use std::io;

use super::{Purchase, Strategy};
use crate::history::{Outcome, Record};
use crate::plan::{Hold, TrialPlan};
use crate::store::Stock;

/// The `atomic` strategy.
pub struct Atomic;

impl Strategy for Atomic {
    fn buyer(&self, _plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        Ok(Box::new(OneStep))
    }
}

/// A buyer's side: one call to the store.
struct OneStep;

impl Purchase for OneStep {
    fn purchase(&mut self, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()> {
        // The hold comes before the step, which has no inside: a fault planned for this
        // buyer lands before it, and the purchase never happened.
        hold.pause();
        // The step takes nanoseconds, and a stamp out of order by as many would put two
        // buyers' sales in the wrong real-time order: the stamps are ordered around it.
        op.restamp_start_ordered();
        let found = match stock.decrement_if_positive() {
            Ok(found) => found,
            Err(e) => {
                // It ran, and its outcome is unknown (its replicas did not confirm it): what it
                // found and wrote is noted, for a later read of it to make sense.
                if let Some(found) = crate::store::found_in(&e) {
                    op.set_value(found);
                    op.set_written(found - 1);
                }
                return Err(e);
            }
        };
        op.stamp_step_fenced(found > 0);
        op.set_value(found);
        if found > 0 {
            op.set_written(found - 1);
            op.set_outcome(Outcome::Sold);
        } else {
            op.set_outcome(Outcome::SoldOut);
        }
        Ok(())
    }
}
