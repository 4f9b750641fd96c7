//! `queue`: one seller process owns the stock; buyers post a request and wait for the reply.
//!
//! The seller is the only process that touches the stock, so there is no race to lose; its
//! cost is the round trip. Requests and replies go through a [Board] in shared memory, and
//! either side polls a little before it sleeps on a futex, because a wake-up on the other
//! CPU costs tens of microseconds (a Unix datagram round trip made the queue 3x slower).

use std::io;

use super::Strategy;
use crate::clock::ticks_fenced;
use crate::history::Record;
use crate::store::Stock;
use crate::worker::{Hold, TrialPlan};

pub mod board;

use board::Board;

/// What the seller did for one request, written back into the buyer's slot of the [Board].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub outcome: u8,
    pub value: i64,
    pub written: i64,
    pub read_tick: u64,
    pub write_tick: u64,
}

impl Reply {
    /// The reply that tells a buyer what the seller's sale `op` did.
    pub fn of(op: &Record) -> Reply {
        Reply {
            outcome: op.outcome,
            value: op.value,
            written: op.written,
            read_tick: op.read_tick,
            write_tick: op.write_tick,
        }
    }
}

/// A buyer's side: its slot of the board it shares with the seller.
pub struct Client {
    board: Board,
    slot: usize,
}

impl Client {
    pub fn connect(plan: &TrialPlan, buyer: u32) -> io::Result<Client> {
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

impl Strategy for Client {
    fn purchase(&mut self, _stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()> {
        self.board.post(self.slot);
        // The buyer's read-to-write window is the seller's; a fault planned for the buyer
        // hits it while it waits for the reply.
        hold.fault_point();
        let reply = self.board.wait_reply(self.slot);
        op.value = reply.value;
        op.written = reply.written;
        op.read_tick = reply.read_tick;
        op.write_tick = reply.write_tick;
        op.outcome = reply.outcome;
        op.end_tick = ticks_fenced(); // the reply was seen in memory, not through a system call
        Ok(())
    }
}
