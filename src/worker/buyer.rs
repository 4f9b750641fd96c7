//! A buyer: makes its purchase attempts, one per entry when there are producers.

use anyhow::{Context, Result};

use super::{Hold, TrialPlan, ready_then_wait_for_gate};
use crate::history::{Kind, Recorder, Role};
use crate::worker::entry_queue::{Take, take};
use crate::{ipc, store, strategy};

pub fn run(plan: &TrialPlan, index: u32, recorder: &mut Recorder) -> Result<()> {
    let mut stock = store::open(plan).context("opening the stock")?;
    let mut strategy = strategy::open(plan, index).context("opening the strategy")?;
    let mut hold = Hold::new(plan, Role::Buyer, index);
    let entries = match &plan.producers {
        Some(_) => Some(ipc::connect(
            &format!("{}.take{index}", plan.socket_prefix),
            &plan.queue_socket,
        )?),
        None => None,
    };
    ready_then_wait_for_gate(recorder)?;
    let full = || anyhow::anyhow!("history full: more attempts than the plan allows");
    match entries {
        None => {
            for _ in 0..plan.attempts {
                let op = recorder.begin(Kind::Purchase).ok_or_else(full)?;
                strategy.purchase(&mut *stock, op, &mut hold)?;
            }
        }
        Some(queue) => {
            let joinable = plan.producers.as_ref().is_some_and(|p| p.joinable);
            while let Take::Entry(entry) = take(&queue, index)? {
                let op = recorder.begin(Kind::Purchase).ok_or_else(full)?;
                op.entry = entry;
                strategy.purchase(&mut *stock, op, &mut hold)?;
                if joinable {
                    super::entry_queue::task_done(&queue, entry)?;
                }
            }
        }
    }
    Ok(())
}
