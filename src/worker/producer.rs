//! A producer: puts its entries into the entry queue, blocking or not, then says it is done
//! (and, with a joinable queue, waits until a buyer has processed every one).

use anyhow::{Result, bail};

use super::entry_queue::{done, entry_id, join, put};
use super::{TrialPlan, ready_then_wait_for_gate};
use crate::clock::ticks;
use crate::history::{Kind, Outcome, Recorder};
use crate::ipc;

pub fn run(plan: &TrialPlan, index: u32, recorder: &mut Recorder) -> Result<()> {
    let Some(producers) = &plan.producers else {
        bail!("a producer without [producers]")
    };
    let socket = ipc::connect(&format!("{}.put{index}", plan.socket_prefix), &plan.queue_socket)?;
    ready_then_wait_for_gate(recorder)?;
    for seq in 0..producers.entries {
        let entry = entry_id(index, seq);
        let Some(op) = recorder.begin(Kind::Put) else {
            bail!("history full: more puts than entries")
        };
        op.entry = entry;
        let accepted = put(&socket, entry, producers.blocking)?;
        op.outcome = if accepted { Outcome::Ok } else { Outcome::Dropped } as u8;
        op.end_tick = ticks();
    }
    done(&socket, index)?;
    if producers.joinable {
        join(&socket, index)?;
    }
    Ok(())
}
