//! The manager of the `manager` store: a server process that holds the stock's count and
//! answers reads and writes of it. When the runner stops it, it writes the count to the
//! stock file, where the checker reads the final stock as for the file store.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use anyhow::{Context, Result, bail};

use super::{TrialPlan, ready_then_wait_for_gate};
use crate::history::Recorder;
use crate::ipc::{self, Server};
use crate::store::manager::{GET, SET, SET_DONE};
use crate::store::{self, FileStock, Reading};

pub fn run(plan: &TrialPlan, recorder: &mut Recorder) -> Result<()> {
    let socket = ipc::bind(&plan.manager_socket)?;
    let text = std::fs::read(&plan.stock_path).with_context(|| format!("reading {}", plan.stock_path.display()))?;
    let Reading::Value(count) = store::parse(&text) else {
        bail!("the initial stock file {} holds no number", plan.stock_path.display())
    };
    ready_then_wait_for_gate(recorder)?;
    let mut manager = Manager { socket: &socket, count };
    ipc::serve(&socket, &mut manager)?;
    FileStock::create(&plan.stock_path, manager.count).context("writing the final stock")?;
    Ok(())
}

struct Manager<'a> {
    socket: &'a UnixDatagram,
    count: i64,
}

impl Server for Manager<'_> {
    fn handle(&mut self, from: &SocketAddr, request: &[u8]) -> io::Result<()> {
        let reply = match (request.first().copied(), request.len()) {
            (Some(GET), 1) => self.count.to_le_bytes().to_vec(),
            (Some(SET), 9) => {
                self.count = i64::from_le_bytes(request[1..9].try_into().expect("8 bytes"));
                vec![SET_DONE]
            }
            _ => return Ok(()), // not ours: ignore rather than die
        };
        // A client that died waiting has nobody left to read the answer.
        let _ = self.socket.send_to_addr(&reply, from);
        Ok(())
    }
}
