//! `queue`: one seller process owns the stock; buyers send a request and wait for the reply.
//!
//! The seller is the only process that touches the stock, so there is no race to lose; its
//! cost is the round trip. The seller drains every waiting request at each wake-up (see
//! `worker::seller`), because a wake-up on the other CPU costs tens of microseconds.

use std::io;
use std::os::unix::net::UnixDatagram;

use super::Strategy;
use crate::clock::now_ns;
use crate::history::Record;
use crate::ipc;
use crate::store::Stock;
use crate::worker::{Hold, TrialPlan};

/// A buyer's request: its index. The seller answers with a [`Reply`].
pub const REQUEST_LEN: usize = 4;
pub const REPLY_LEN: usize = 40;

/// What the seller did for one request, sent back to the buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub outcome: u8,
    pub value: i64,
    pub written: i64,
    pub read_ns: u64,
    pub write_ns: u64,
}

impl Reply {
    pub fn encode(&self) -> [u8; REPLY_LEN] {
        let mut b = [0u8; REPLY_LEN];
        b[0] = self.outcome;
        b[8..16].copy_from_slice(&self.value.to_le_bytes());
        b[16..24].copy_from_slice(&self.written.to_le_bytes());
        b[24..32].copy_from_slice(&self.read_ns.to_le_bytes());
        b[32..40].copy_from_slice(&self.write_ns.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; REPLY_LEN]) -> Reply {
        let at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Reply {
            outcome: b[0],
            value: at(8) as i64,
            written: at(16) as i64,
            read_ns: at(24),
            write_ns: at(32),
        }
    }
}

/// A buyer's side: a socket of its own, connected to the seller.
pub struct Client {
    socket: UnixDatagram,
    buyer: u32,
}

impl Client {
    pub fn connect(plan: &TrialPlan, buyer: u32) -> io::Result<Client> {
        let name = format!("{}.buyer{buyer}", plan.socket_prefix);
        Ok(Client {
            socket: ipc::connect(&name, &plan.seller_socket)?,
            buyer,
        })
    }
}

impl Strategy for Client {
    fn purchase(&mut self, _stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()> {
        self.socket.send(&self.buyer.to_le_bytes())?;
        // The buyer's read-to-write window is the seller's; a fault planned for the buyer
        // hits it while it waits for the reply.
        hold.fault_point();
        let mut buf = [0u8; REPLY_LEN];
        let n = ipc::recv(&self.socket, &mut buf)?;
        if n != REPLY_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the seller sent {n} bytes, not a reply"),
            ));
        }
        let reply = Reply::decode(&buf);
        op.value = reply.value;
        op.written = reply.written;
        op.read_ns = reply.read_ns;
        op.write_ns = reply.write_ns;
        op.outcome = reply.outcome;
        op.end_ns = now_ns();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_survives_the_wire() {
        let r = Reply {
            outcome: 1,
            value: 7,
            written: 6,
            read_ns: 123,
            write_ns: 456,
        };
        assert_eq!(Reply::decode(&r.encode()), r);
    }
}
