//! The seller of the `queue` strategy: the one process that owns the stock. It scans the
//! board's slots and answers every request waiting there, until the runner tells it to stop.

use anyhow::{Context, Result};

use super::Reply;
use super::board::Board;
use crate::history::{Kind, Recorder, Role};
use crate::plan::{Hold, TrialPlan, ready_then_wait_for_gate};
use crate::store;
use crate::strategy::{NoLock, sell};

/// The seller's life, in the process forked for it.
pub fn run(plan: &TrialPlan, recorder: &mut Recorder) -> Result<()> {
    let board = Board::open(&plan.trial_dir).context("opening the seller's board")?;
    let mut stock = store::registry(plan.store).open(plan, Role::Seller, 0)?;
    let mut hold = Hold::new(plan, Role::Seller, 0);
    ready_then_wait_for_gate(recorder)?;
    board.serve(|| {
        // Recorded, so that what the seller wrote is known even when the buyer it wrote for
        // died before taking the reply.
        let op = recorder
            .begin(Kind::Sale)
            .ok_or_else(|| std::io::Error::other("history full: more sales than planned"))?;
        sell(&mut *stock, op, &mut hold, &mut NoLock, false)?;
        op.stamp_end();
        Ok(Reply::of(op))
    })?;
    Ok(())
}
