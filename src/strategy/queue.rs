//! `queue`: one seller process owns the stock; buyers post a request and wait for the reply.
//!
//! The seller is the only process that touches the stock, so there is no race to lose; its
//! cost is the round trip. Requests and replies go through a [Board] in shared memory, and
//! either side polls a little before it sleeps on a futex, because a wake-up on the other
//! CPU costs tens of microseconds (a Unix datagram round trip made the queue 3x slower).

use std::io;
use std::path::PathBuf;

use anyhow::Result;

use super::{Purchase, Strategy};
use crate::history::{Outcome, Record, Recorder, Role};
use crate::plan::{Fixture, Hold, TrialPlan};
use crate::store::Stock;
use crate::sys::clock::ticks_fenced;

pub mod board;
mod seller;

use board::Board;

/// The `queue` strategy.
pub struct Queue;

impl Strategy for Queue {
    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        Board::create(&plan.trial_dir, plan.buyer_processes())?;
        Ok(Box::new(BoardFile(plan.trial_dir.join(board::FILE))))
    }

    fn servers(&self) -> &'static [Role] {
        &[Role::Seller]
    }

    fn serve(&self, plan: &TrialPlan, _role: Role, recorder: &mut Recorder) -> Result<()> {
        seller::run(plan, recorder)
    }

    fn buyer(&self, plan: &TrialPlan, buyer: u32) -> io::Result<Box<dyn Purchase>> {
        Ok(Box::new(Client::connect(plan, buyer)?))
    }
}

/// The runner's hold on the board: it tells the seller to stop, and removes the board's file
/// after the trial. The board carried requests, not evidence: the sales are in the seller's
/// history.
struct BoardFile(PathBuf);

impl Fixture for BoardFile {
    fn stop(&self) {
        if let Some(dir) = self.0.parent()
            && let Ok(board) = Board::open(dir)
        {
            board.stop();
        }
    }
}

impl Drop for BoardFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What the seller did for one request, written back into the buyer's slot of the [Board].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// How the sale ended.
    pub outcome: Outcome,
    /// The stock value the seller read.
    pub value: i64,
    /// The stock value it wrote.
    pub written: i64,
    /// When it read the stock, in ticks.
    pub read_tick: u64,
    /// When it wrote the stock, in ticks.
    pub write_tick: u64,
}

impl Reply {
    /// The reply that tells a buyer what the seller's sale `op` did.
    pub fn of(op: &Record) -> Reply {
        Reply {
            outcome: op.outcome(),
            value: op.value(),
            written: op.written(),
            read_tick: op.read_tick(),
            write_tick: op.write_tick(),
        }
    }
}

/// A buyer's side: its slot of the board it shares with the seller.
struct Client {
    board: Board,
    slot: usize,
}

impl Client {
    fn connect(plan: &TrialPlan, buyer: u32) -> io::Result<Client> {
        let board = Board::open(&plan.trial_dir)?;
        let slot = buyer as usize;
        if slot >= board.slots() {
            return Err(io::Error::other(format!(
                "buyer {buyer} has no slot on a board of {}",
                board.slots()
            )));
        }
        Ok(Client { board, slot })
    }
}

impl Purchase for Client {
    fn purchase(&mut self, _stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()> {
        self.board.post(self.slot);
        // The buyer's read-to-write window is the seller's; a fault planned for the buyer
        // hits it while it waits for the reply.
        hold.fault_point();
        let reply = self.board.wait_reply(self.slot);
        op.set_value(reply.value);
        op.set_written(reply.written);
        op.set_read_tick(reply.read_tick);
        op.set_write_tick(reply.write_tick);
        op.set_outcome(reply.outcome);
        op.set_end_tick(ticks_fenced()); // the reply was seen in memory, not through a system call
        Ok(())
    }
}
