//! The seller of the `queue` strategy: the one process that owns the stock. It takes every
//! request waiting at each wake-up and answers them in turn.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use anyhow::Result;

use super::{Hold, TrialPlan, ready_then_wait_for_gate};
use crate::history::{Kind, Recorder, Role};
use crate::ipc::{self, Server};
use crate::store::{self, Stock};
use crate::strategy::queue::{REQUEST_LEN, Reply};
use crate::strategy::{self, NoLock};

pub fn run(plan: &TrialPlan, recorder: &mut Recorder) -> Result<()> {
    let socket = ipc::bind(&plan.seller_socket)?;
    let stock = store::open(plan, Role::Seller, 0)?;
    let hold = Hold::new(plan, Role::Seller, 0);
    ready_then_wait_for_gate(recorder)?;
    ipc::serve(
        &socket,
        &mut Seller {
            socket: &socket,
            stock,
            hold,
            recorder,
        },
    )?;
    Ok(())
}

struct Seller<'a> {
    socket: &'a UnixDatagram,
    stock: Box<dyn Stock>,
    hold: Hold,
    recorder: &'a mut Recorder,
}

impl Server for Seller<'_> {
    fn handle(&mut self, from: &SocketAddr, request: &[u8]) -> io::Result<()> {
        if request.len() != REQUEST_LEN {
            return Ok(()); // not a buyer's request: ignore rather than die
        }
        // Recorded, so that what the seller wrote is known even when the buyer it wrote for
        // died before hearing the reply.
        let op = self
            .recorder
            .begin(Kind::Sale)
            .ok_or_else(|| io::Error::other("history full: more sales than planned"))?;
        strategy::sell(&mut *self.stock, op, &mut self.hold, &mut NoLock, false)?;
        op.end_ns = crate::clock::now_ns();
        let reply = Reply {
            outcome: op.outcome,
            value: op.value,
            written: op.written,
            read_ns: op.read_ns,
            write_ns: op.write_ns,
        };
        // A buyer that died waiting has no socket left to answer: its sale stays
        // indeterminate in its own history, and the others are still served.
        let _ = self.socket.send_to_addr(&reply.encode(), from);
        Ok(())
    }
}
