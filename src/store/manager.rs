//! The `manager` store: the stock held by a manager process, read and written by request, as
//! a `multiprocessing.Manager().dict()` holds its values: each read and each write is a round
//! trip, and nothing makes a read and the write after it one step.
//!
//! The manager is a server process of the trial. When the runner stops it, it writes the
//! count to the stock file, where the checker reads the final stock as for the file store.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use anyhow::{Context, Result, bail};

use super::{FileStock, Reading, Stock, Store};
use crate::history::{Recorder, Role};
use crate::plan::{Fixture, TrialPlan, ready_then_wait_for_gate};
use crate::sys::ipc::{self, Server};

const GET: u8 = b'g';
const SET: u8 = b's';
const SET_DONE: u8 = b'k';

/// The `manager` store.
pub struct ManagerStore;

impl Store for ManagerStore {
    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        // The manager starts from the stock file.
        FileStock::create(&plan.stock_path, plan.initial_stock)?;
        Ok(Box::new(Stopper(socket(plan))))
    }

    fn servers(&self, _scenario: &crate::scenario::Scenario) -> &'static [Role] {
        &[Role::Manager]
    }

    fn serve(&self, plan: &TrialPlan, _role: Role, recorder: &mut Recorder) -> Result<()> {
        run(plan, recorder)
    }

    fn open(&self, plan: &TrialPlan, role: Role, index: u32) -> io::Result<Box<dyn Stock>> {
        let name = plan.name(&format!("{}{index}.stock", role.name()));
        Ok(Box::new(ManagerStock {
            socket: ipc::connect(&name, &socket(plan))?,
        }))
    }
}

/// The manager's abstract socket.
fn socket(plan: &TrialPlan) -> String {
    plan.name("manager")
}

/// The runner's way to stop the manager. Its socket is abstract: nothing to remove.
struct Stopper(String);

impl Fixture for Stopper {
    fn stop(&self) {
        let _ = ipc::send_once(&self.0, ipc::STOP);
    }
}

/// A worker's connection to the manager.
struct ManagerStock {
    socket: UnixDatagram,
}

impl ManagerStock {
    fn ask(&mut self, request: &[u8]) -> io::Result<[u8; 16]> {
        self.socket.send(request)?;
        let mut reply = [0u8; 16];
        let n = ipc::recv(&self.socket, &mut reply)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "empty reply from the manager",
            ));
        }
        Ok(reply)
    }
}

impl Stock for ManagerStock {
    fn read(&mut self) -> io::Result<Reading> {
        let reply = self.ask(&[GET])?;
        Ok(Reading::Value(i64::from_le_bytes(
            reply[..8].try_into().expect("8 bytes"),
        )))
    }

    fn write(&mut self, value: i64) -> io::Result<()> {
        let mut request = [0u8; 9];
        request[0] = SET;
        request[1..].copy_from_slice(&value.to_le_bytes());
        self.ask(&request).map(drop)
    }
}

/// The manager's life, in the process forked for it.
fn run(plan: &TrialPlan, recorder: &mut Recorder) -> Result<()> {
    let socket = ipc::bind(&socket(plan))?;
    let text = std::fs::read(&plan.stock_path).with_context(|| format!("reading {}", plan.stock_path.display()))?;
    let Reading::Value(count) = super::parse(&text) else {
        bail!("the initial stock file {} holds no number", plan.stock_path.display())
    };
    ready_then_wait_for_gate(recorder)?;
    let mut manager = Manager { socket: &socket, count };
    ipc::serve(&socket, &mut manager)?;
    FileStock::create(&plan.stock_path, manager.count).context("writing the final stock")?;
    Ok(())
}

/// The manager's state: the count.
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
