//! `optimistic`: read, hold, then compare-and-set from the value read; on a conflict (the
//! stock moved meanwhile), read again and retry, up to `[transaction] retries` times. A buyer
//! that runs out of retries gives up and is told it failed: safe, but it may leave tickets
//! unsold.

use std::io;

use super::{Purchase, Strategy};
use crate::history::{Outcome, Record};
use crate::plan::{Hold, TrialPlan};
use crate::store::{Reading, Stock};
use crate::sys::clock::ticks_fenced;

/// The `optimistic` strategy.
pub struct Optimistic;

impl Strategy for Optimistic {
    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        Ok(Box::new(Retrying { retries: plan.retries }))
    }
}

/// A buyer's side, with its bound on retries.
struct Retrying {
    retries: u32,
}

impl Purchase for Retrying {
    fn purchase(&mut self, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()> {
        // Its steps are loads and a compare-exchange, nanoseconds long: the stamps are ordered
        // around them, or two buyers' sales could look out of real-time order.
        op.restamp_start_ordered();
        let mut tries = 0;
        loop {
            let reading = stock.read()?;
            op.stamp_read();
            let Reading::Value(value) = reading else {
                op.set_outcome(Outcome::Unreadable);
                break;
            };
            op.set_value(value);
            // The first try is the sale's race window, where a planned fault lands; a retry
            // waits as long, without one.
            if tries == 0 {
                hold.pause();
            } else {
                hold.wait();
            }
            if value <= 0 {
                op.set_outcome(Outcome::SoldOut);
                break;
            }
            // One step: no process can die inside it, so what it wrote is noted after.
            if stock.compare_and_set(value, value - 1)? {
                op.set_written(value - 1);
                op.set_write_tick(ticks_fenced());
                op.set_outcome(Outcome::Sold);
                break;
            }
            if tries == self.retries {
                op.set_outcome(Outcome::GaveUp);
                break;
            }
            tries += 1;
            op.count_retry();
        }
        op.set_end_tick(ticks_fenced());
        Ok(())
    }
}
