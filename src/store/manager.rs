//! The stock held by a manager process, read and written by request, as a
//! `multiprocessing.Manager().dict()` holds its values: each read and each write is a round
//! trip, and nothing makes a read and the write after it one step.

use std::io;
use std::os::unix::net::UnixDatagram;

use super::{Reading, Stock};
use crate::ipc;

pub const GET: u8 = b'g';
pub const SET: u8 = b's';
pub const SET_DONE: u8 = b'k';

pub struct ManagerStock {
    socket: UnixDatagram,
}

impl ManagerStock {
    /// Connects from a socket named `name` to the manager at `manager`.
    pub fn connect(name: &str, manager: &str) -> io::Result<ManagerStock> {
        Ok(ManagerStock {
            socket: ipc::connect(name, manager)?,
        })
    }

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
