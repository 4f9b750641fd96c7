//! The seller of the `queue` strategy: the one process that owns the stock. It takes every
//! request waiting at each wake-up and answers them in turn.

use anyhow::Result;

use super::{Hold, TrialPlan, ready_then_wait_for_gate};
use crate::history::{Recorder, Role};
use crate::ipc;
use crate::store;
use crate::strategy::queue::{REQUEST_LEN, Reply, STOP};
use crate::strategy::{self, NoLock};

pub fn run(plan: &TrialPlan, recorder: &mut Recorder) -> Result<()> {
    let socket = ipc::bind(&plan.seller_socket)?;
    socket.set_nonblocking(true)?;
    let mut stock = store::open(plan)?;
    let mut hold = Hold::new(plan, Role::Seller, 0);
    ready_then_wait_for_gate(recorder)?;
    let mut batch = Vec::with_capacity(256);
    loop {
        ipc::recv_batch(&socket, &mut batch, 256)?;
        for (from, bytes, n) in &batch {
            if bytes[..*n] == *STOP {
                return Ok(());
            }
            if *n != REQUEST_LEN {
                continue;
            }
            let mut op = crate::history::blank_record();
            strategy::sell(&mut *stock, &mut op, &mut hold, &mut NoLock, false)?;
            let reply = Reply {
                outcome: op.outcome,
                value: op.value,
                written: op.written,
                read_ns: op.read_ns,
                write_ns: op.write_ns,
            };
            // A buyer that died waiting has no socket left to answer: its sale stays
            // indeterminate in its own history, and the others are still served.
            let _ = socket.send_to_addr(&reply.encode(), from);
        }
    }
}
