//! A producer: puts its entries into the entry queue, blocking or not, then says it is done
//! (and, with a joinable queue, waits until a buyer has processed every one).

use anyhow::{Result, bail};

use super::entry_queue::{self, done, entry_id, join, put};
use crate::history::{Kind, Outcome, Recorder};
use crate::plan::{TrialPlan, ready_then_wait_for_gate};
use crate::sys::ipc;

/// Producer `index`'s life: its entries, then done.
pub fn run(plan: &TrialPlan, index: u32, recorder: &mut Recorder) -> Result<()> {
    let Some(producers) = &plan.producers else {
        bail!("a producer without [producers]")
    };
    let socket = ipc::connect(&plan.name(&format!("put{index}")), &entry_queue::socket(plan))?;
    ready_then_wait_for_gate(recorder)?;
    for seq in 0..producers.entries {
        let entry = entry_id(index, seq);
        let Some(op) = recorder.begin(Kind::Put) else {
            bail!("history full: more puts than entries")
        };
        op.set_entry(entry);
        let accepted = put(&socket, entry, producers.blocking)?;
        op.set_outcome(if accepted { Outcome::Ok } else { Outcome::Dropped });
        op.stamp_end();
    }
    done(&socket, index)?;
    if producers.joinable {
        join(&socket, index)?;
    }
    Ok(())
}
